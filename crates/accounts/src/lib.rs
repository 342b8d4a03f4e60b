//! Accounts: second factors (TOTP, recovery codes), the second-factor policy, login
//! throttling, new-device notices, breached-password checks, and the audit events they emit.
//!
//! Pure: no I/O (except reading a breach-list index file), no clock (`now` is an argument,
//! Unix seconds), no network, no randomness of its own (random bytes come from the caller
//! through [`RandomSource`]). State lives behind traits that the store implements, or is
//! returned to the caller as a value to persist.
//!
//! Map of the crate:
//!
//! | module | owns |
//! |---|---|
//! | [`totp`] | RFC 6238 codes, verification window, replay refusal, per-user failure cap, two-step enrolment, `otpauth://` URI, QR code |
//! | [`base32`] | RFC 4648 base32 (no padding) used by TOTP secrets and recovery codes |
//! | [`secretbox`] | TOTP secrets encrypted at rest (XChaCha20-Poly1305) with named keys and rotation |
//! | [`passkey`] | passkeys (WebAuthn, via webauthn-rs): discoverable registration, sign-in with or without a username, sign-counter clone detection |
//! | [`recovery`] | ten single-use recovery codes stored as HMAC-SHA256 hashes |
//! | [`policy`] | which groups need a second factor, which factors count, password rules (NIST SP 800-63B) |
//! | [`throttle`] | login throttling per IP, per network prefix and per account+prefix; stolen-password cap |
//! | [`device`] | signed device cookies and new-device notices |
//! | [`audit`] | the audit [`audit::Event`] with pseudonymised IP addresses |
//! | [`oathauth`] | importing OATHAuth's stored TOTP enrolments |
//! | [`keys`] | parsing key material from config strings, masked in `Debug` |
//! | [`net`] | network prefixes (/24, /64) of an address |
//!
//! ```
//! use wikiguard_accounts::totp::{self, TotpParams};
//! let secret = b"12345678901234567890";
//! // RFC 6238 Appendix B, SHA-1, T = 59 s.
//! assert_eq!(totp::code_at(secret, &TotpParams { digits: 8, ..TotpParams::default() }, 59), "94287082");
//! ```

#![deny(missing_docs)]
#![cfg_attr(not(test), deny(clippy::unwrap_used, clippy::expect_used, clippy::panic))]

pub mod audit;
pub mod base32;
pub mod breach;
pub mod device;
pub mod keys;
pub mod net;
pub mod oathauth;
pub mod passkey;
pub mod policy;
pub mod random;
pub mod recovery;
pub mod secretbox;
pub mod throttle;
pub mod totp;

pub use random::RandomSource;
