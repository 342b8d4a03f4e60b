//! End-to-end tests: Debian's MediaWiki with the WikiGuard extension, talking to a real
//! `wikiguard serve`, driven through the Action API (and a headless Chromium for passkeys) as
//! bots and users drive a wiki. Each test has its own wiki and service on loopback ports.
//!
//! They skip (with a message) where MediaWiki or PHP is not installed; `scripts/test`
//! installs both, so CI always runs them.

#[path = "../../crates/wikiguard/tests/common/mod.rs"]
mod common;
mod harness;

mod accounts;
mod bench;
mod cdp;
mod checks;
mod passkey;
