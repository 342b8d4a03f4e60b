//! Accounts: second factors (TOTP, recovery codes), the second-factor policy, login
//! throttling, new-device notices, breached-password checks, and the audit events they emit.
//!
//! Pure: no I/O (except reading a breach-list index file), no clock (`now` is an argument),
//! no network. State lives behind traits that the store implements.

#![deny(missing_docs)]
#![cfg_attr(not(test), deny(clippy::unwrap_used, clippy::expect_used, clippy::panic))]
