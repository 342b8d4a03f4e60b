//! TOTP second factor (RFC 6238 over RFC 4226 HOTP).
//!
//! Verification is a pure function of the secret, the submitted code, `now` and the user's
//! [`TotpState`], and returns the new state for the caller to persist **in the store**
//! (not a cache that may evict it: the replay guard is only as good as its memory):
//!
//! - the window is configurable, default ±1 step (OATHAuth accepts ±4, which multiplies a
//!   guesser's odds by nine);
//! - every code in the window is computed and compared in constant time, without stopping at
//!   the first match, so timing does not tell which step matched;
//! - replay: a code whose step is `<=` the last accepted step is refused, as OATHAuth's
//!   `TOTPKey::verify` does with its "last window";
//! - failures are capped per user by this state machine:
//!
//! ```text
//!                 wrong code (failures + 1 < max_failures)
//!                ┌──────────┐
//!                ▼          │
//!   ──▶ Open { failures } ──┘
//!        ▲   │  wrong code (failures + 1 == max_failures)
//!        │   ▼
//!        │  Locked { until = now + base_lock · 2^lockouts (capped), lockouts += 1 }
//!        │   │  any code before `until`: refused as Locked, not even checked
//!        │   │  now >= until: back to Open { failures: 0 }, lockouts kept
//!        │   ▼
//!        └── right code: Open { failures: 0 }, lockouts = 0, last_step = matched step
//! ```
//!
//! Enrolment is two-step: [`begin_enrollment`] makes a secret, its `otpauth://` URI and a QR
//! code; [`confirm_enrollment`] turns the [`PendingEnrollment`] into a [`TotpState`] only
//! once the user typed a valid code, proving their app has the secret.

use crate::base32;
use crate::random::RandomSource;
use hmac::{Hmac, Mac};
use serde::{Deserialize, Serialize};
use std::fmt;
use subtle::ConstantTimeEq;

/// The HMAC hash of a TOTP secret. Authenticator apps widely support only SHA-1, the default.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "UPPERCASE")]
pub enum Algorithm {
    /// HMAC-SHA-1 (RFC 6238 default).
    #[default]
    Sha1,
    /// HMAC-SHA-256.
    Sha256,
    /// HMAC-SHA-512.
    Sha512,
}

impl Algorithm {
    /// The name used in `otpauth://` URIs.
    pub fn uri_name(self) -> &'static str {
        match self {
            Algorithm::Sha1 => "SHA1",
            Algorithm::Sha256 => "SHA256",
            Algorithm::Sha512 => "SHA512",
        }
    }
}

/// How codes are made: hash, number of digits, step length.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct TotpParams {
    /// HMAC hash.
    pub algorithm: Algorithm,
    /// Digits per code, 6 to 8.
    pub digits: u32,
    /// Step length in seconds.
    pub period: u64,
}

impl Default for TotpParams {
    fn default() -> Self {
        TotpParams {
            algorithm: Algorithm::Sha1,
            digits: 6,
            period: 30,
        }
    }
}

impl TotpParams {
    fn checked(&self) -> Result<(), TotpError> {
        if !(6..=8).contains(&self.digits) || self.period == 0 || self.period > 3600 {
            return Err(TotpError::BadParams);
        }
        Ok(())
    }
}

/// Verification settings (see the module doc for the state machine they drive).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct VerifyConfig {
    /// Steps accepted on each side of the current one (clock drift). Default 1.
    pub window: u64,
    /// Consecutive wrong codes before a lock. Default 5.
    pub max_failures: u32,
    /// First lock length in seconds; doubles with each further lock. Default 60.
    pub base_lock_secs: u64,
    /// Longest lock in seconds. Default 3600.
    pub max_lock_secs: u64,
}

impl Default for VerifyConfig {
    fn default() -> Self {
        VerifyConfig {
            window: 1,
            max_failures: 5,
            base_lock_secs: 60,
            max_lock_secs: 3600,
        }
    }
}

/// A user's TOTP enrolment as stored: the secret (encrypt it at rest with
/// [`crate::secretbox`] before writing it), its parameters, the replay guard and the failure
/// state. The stored form; the wire form is [`VerifyOutcome`].
#[derive(Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct TotpState {
    /// The raw secret bytes.
    pub secret: Vec<u8>,
    /// Code parameters.
    pub params: TotpParams,
    /// The last accepted step (`unix_time / period`); codes at or before it are refused.
    pub last_step: Option<u64>,
    /// Consecutive wrong codes since the last success or lock.
    pub failures: u32,
    /// Locked until this Unix time, if locked.
    pub locked_until: Option<u64>,
    /// Locks since the last success (the lock length doubles with each).
    pub lockouts: u32,
}

impl fmt::Debug for TotpState {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("TotpState")
            .field("secret", &"***")
            .field("params", &self.params)
            .field("last_step", &self.last_step)
            .field("failures", &self.failures)
            .field("locked_until", &self.locked_until)
            .field("lockouts", &self.lockouts)
            .finish()
    }
}

impl TotpState {
    /// A fresh state for `secret` (used by import; enrolment goes through
    /// [`confirm_enrollment`]).
    pub fn new(secret: Vec<u8>, params: TotpParams) -> Self {
        TotpState {
            secret,
            params,
            last_step: None,
            failures: 0,
            locked_until: None,
            lockouts: 0,
        }
    }
}

/// Why a code was refused. `code()` gives the stable string for the API's `reason`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "reason", rename_all = "kebab-case")]
pub enum Rejection {
    /// Not a string of the right number of digits.
    Malformed,
    /// Matches no step in the window.
    Wrong,
    /// Matches a step at or before the last accepted one.
    Replayed,
    /// Too many wrong codes; try again after the given seconds.
    Locked {
        /// Seconds until codes are checked again.
        retry_after_secs: u64,
    },
}

impl Rejection {
    /// Stable reason code: `malformed`, `wrong-code`, `replayed`, `locked`.
    pub fn code(&self) -> &'static str {
        match self {
            Rejection::Malformed => "malformed",
            Rejection::Wrong => "wrong-code",
            Rejection::Replayed => "replayed",
            Rejection::Locked { .. } => "locked",
        }
    }

    /// A message for the user.
    pub fn message(&self) -> String {
        match self {
            Rejection::Malformed => "The code must be the digits shown in your authenticator app.".into(),
            Rejection::Wrong => "That code is not valid. Check your device's clock and try the current code.".into(),
            Rejection::Replayed => "That code was already used. Wait for the next code.".into(),
            Rejection::Locked { retry_after_secs } => {
                format!("Too many wrong codes. Try again in {retry_after_secs} seconds.")
            }
        }
    }
}

/// The result of [`verify`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum VerifyOutcome {
    /// The code is valid; `step` is now the last used step.
    Accepted {
        /// The matched step.
        step: u64,
    },
    /// The code is refused.
    Rejected(Rejection),
}

/// Errors of TOTP set-up (not of a user's code, which is a [`Rejection`]).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum TotpError {
    /// Digits outside 6..=8 or a period of 0 or over an hour.
    #[error("TOTP parameters out of range: digits must be 6 to 8 and the period 1 to 3600 seconds")]
    BadParams,
    /// The URI is too long for a QR code.
    #[error("the otpauth URI is too long for a QR code")]
    Qr,
    /// The pending enrolment has expired.
    #[error("the enrolment expired; start again")]
    Expired,
    /// The confirmation code was refused.
    #[error("confirmation code refused: {}", .0.code())]
    Refused(Rejection),
}

fn hmac_digest(algorithm: Algorithm, key: &[u8], msg: &[u8]) -> Vec<u8> {
    #[allow(clippy::expect_used)] // HMAC takes keys of any length (RFC 2104): this cannot fail.
    fn run<M: Mac + hmac::digest::KeyInit>(key: &[u8], msg: &[u8]) -> Vec<u8> {
        let mut m = <M as hmac::digest::KeyInit>::new_from_slice(key).expect("HMAC accepts any key length");
        m.update(msg);
        m.finalize().into_bytes().to_vec()
    }
    match algorithm {
        Algorithm::Sha1 => run::<Hmac<sha1::Sha1>>(key, msg),
        Algorithm::Sha256 => run::<Hmac<sha2::Sha256>>(key, msg),
        Algorithm::Sha512 => run::<Hmac<sha2::Sha512>>(key, msg),
    }
}

/// RFC 4226 HOTP value for `counter`, as a zero-padded string of `params.digits` digits.
pub fn hotp(secret: &[u8], counter: u64, params: &TotpParams) -> String {
    let digest = hmac_digest(params.algorithm, secret, &counter.to_be_bytes());
    let offset = usize::from(digest.last().copied().unwrap_or(0) & 0x0f);
    let word = match digest.get(offset..offset + 4) {
        Some(&[a, b, c, d]) => u32::from_be_bytes([a & 0x7f, b, c, d]),
        _ => 0,
    };
    let digits = params.digits.clamp(6, 8);
    let value = word % 10u32.pow(digits);
    format!("{value:0width$}", width = digits as usize)
}

/// The step containing Unix time `now`.
pub fn step_at(params: &TotpParams, now: u64) -> u64 {
    now / params.period.max(1)
}

/// The code valid at Unix time `now`.
pub fn code_at(secret: &[u8], params: &TotpParams, now: u64) -> String {
    hotp(secret, step_at(params, now), params)
}

/// Strips the separators people type (spaces, dashes) and checks the shape.
fn normalise_code(code: &str, digits: u32) -> Option<String> {
    let c: String = code.chars().filter(|c| !c.is_whitespace() && *c != '-').collect();
    (c.len() == digits as usize && c.bytes().all(|b| b.is_ascii_digit())).then_some(c)
}

/// The step in `[step(now) - window, step(now) + window]` that `code` matches, comparing
/// every step in constant time. Returns all matching steps (codes can collide).
fn matching_steps(secret: &[u8], params: &TotpParams, code: &str, now: u64, window: u64) -> Vec<u64> {
    let current = step_at(params, now);
    let first = current.saturating_sub(window);
    let last = current.saturating_add(window);
    let mut matched = Vec::new();
    for step in first..=last {
        let expected = hotp(secret, step, params);
        if bool::from(expected.as_bytes().ct_eq(code.as_bytes())) {
            matched.push(step);
        }
    }
    matched
}

fn lock_length(config: &VerifyConfig, lockouts: u32) -> u64 {
    let factor = 1u64.checked_shl(lockouts.min(32)).unwrap_or(u64::MAX);
    config
        .base_lock_secs
        .saturating_mul(factor)
        .min(config.max_lock_secs.max(config.base_lock_secs))
}

/// Verifies `code` for the user whose state is `state` at Unix time `now`.
///
/// Returns the outcome and the state to persist (always persist it: failures count too).
pub fn verify(state: &TotpState, code: &str, now: u64, config: &VerifyConfig) -> (VerifyOutcome, TotpState) {
    let mut next = state.clone();
    // Locked: refuse without looking at the code, so guesses during a lock teach nothing.
    if let Some(until) = state.locked_until {
        if now < until {
            return (
                VerifyOutcome::Rejected(Rejection::Locked {
                    retry_after_secs: until - now,
                }),
                next,
            );
        }
        next.locked_until = None;
        next.failures = 0;
    }
    let rejection = match normalise_code(code, state.params.digits) {
        None => Rejection::Malformed,
        Some(code) => {
            let matched = matching_steps(&state.secret, &state.params, &code, now, config.window);
            let fresh = matched
                .iter()
                .copied()
                .filter(|s| state.last_step.is_none_or(|last| *s > last))
                .max();
            match fresh {
                Some(step) => {
                    next.last_step = Some(step);
                    next.failures = 0;
                    next.lockouts = 0;
                    return (VerifyOutcome::Accepted { step }, next);
                }
                None if !matched.is_empty() => Rejection::Replayed,
                None => Rejection::Wrong,
            }
        }
    };
    next.failures = next.failures.saturating_add(1);
    if next.failures >= config.max_failures.max(1) {
        let length = lock_length(config, next.lockouts);
        next.locked_until = Some(now.saturating_add(length));
        next.lockouts = next.lockouts.saturating_add(1);
        next.failures = 0;
    }
    (VerifyOutcome::Rejected(rejection), next)
}

/// Percent-encodes everything outside RFC 3986's unreserved set.
fn percent_encode(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for b in s.bytes() {
        if b.is_ascii_alphanumeric() || matches!(b, b'-' | b'.' | b'_' | b'~') {
            out.push(char::from(b));
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}

fn percent_decode(s: &str) -> Option<String> {
    let bytes = s.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while let Some(&b) = bytes.get(i) {
        if b == b'%' {
            let hex = std::str::from_utf8(bytes.get(i + 1..i + 3)?).ok()?;
            out.push(u8::from_str_radix(hex, 16).ok()?);
            i += 3;
        } else {
            out.push(b);
            i += 1;
        }
    }
    String::from_utf8(out).ok()
}

/// The parts of an `otpauth://totp/` URI.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OtpAuthUri {
    /// Who issues the account (the wiki's name).
    pub issuer: String,
    /// The account name.
    pub account: String,
    /// The raw secret.
    pub secret: Vec<u8>,
    /// Code parameters.
    pub params: TotpParams,
}

/// Why an `otpauth://` URI was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum UriError {
    /// Not `otpauth://totp/...`.
    #[error("not an otpauth://totp/ URI")]
    Scheme,
    /// Bad percent-encoding or non-UTF-8 text.
    #[error("bad percent-encoding in the URI")]
    Encoding,
    /// A missing or invalid parameter.
    #[error("missing or invalid parameter `{0}`")]
    Param(&'static str),
}

impl OtpAuthUri {
    /// The URI: `otpauth://totp/{issuer}:{account}?secret=..&issuer=..&algorithm=..&digits=..&period=..`,
    /// issuer and account percent-encoded (the `:` between them is literal, one inside
    /// either is encoded).
    pub fn to_uri(&self) -> String {
        format!(
            "otpauth://totp/{}:{}?secret={}&issuer={}&algorithm={}&digits={}&period={}",
            percent_encode(&self.issuer),
            percent_encode(&self.account),
            base32::encode(&self.secret),
            percent_encode(&self.issuer),
            self.params.algorithm.uri_name(),
            self.params.digits,
            self.params.period
        )
    }

    /// Parses a URI as written by [`OtpAuthUri::to_uri`] (and by most issuers).
    pub fn parse(uri: &str) -> Result<Self, UriError> {
        let rest = uri.strip_prefix("otpauth://totp/").ok_or(UriError::Scheme)?;
        let (label, query) = rest.split_once('?').unwrap_or((rest, ""));
        let (label_issuer, account) = match label.split_once(':') {
            Some((i, a)) => (Some(percent_decode(i).ok_or(UriError::Encoding)?), a),
            None => (None, label),
        };
        let account = percent_decode(account).ok_or(UriError::Encoding)?;
        let mut secret = None;
        let mut issuer = None;
        let mut params = TotpParams::default();
        for pair in query.split('&').filter(|p| !p.is_empty()) {
            let (k, v) = pair.split_once('=').unwrap_or((pair, ""));
            let v = percent_decode(v).ok_or(UriError::Encoding)?;
            match k {
                "secret" => secret = Some(base32::decode(&v).map_err(|_| UriError::Param("secret"))?),
                "issuer" => issuer = Some(v),
                "algorithm" => {
                    params.algorithm = match v.to_ascii_uppercase().as_str() {
                        "SHA1" => Algorithm::Sha1,
                        "SHA256" => Algorithm::Sha256,
                        "SHA512" => Algorithm::Sha512,
                        _ => return Err(UriError::Param("algorithm")),
                    }
                }
                "digits" => params.digits = v.parse().map_err(|_| UriError::Param("digits"))?,
                "period" => params.period = v.parse().map_err(|_| UriError::Param("period"))?,
                _ => {}
            }
        }
        params.checked().map_err(|_| UriError::Param("digits/period"))?;
        let secret = secret.filter(|s| !s.is_empty()).ok_or(UriError::Param("secret"))?;
        let issuer = issuer.or(label_issuer).unwrap_or_default();
        Ok(OtpAuthUri {
            issuer,
            account,
            secret,
            params,
        })
    }
}

/// A QR code of `text` as an SVG document.
pub fn qr_svg(text: &str) -> Result<String, TotpError> {
    let code =
        qrcode::QrCode::with_error_correction_level(text.as_bytes(), qrcode::EcLevel::M).map_err(|_| TotpError::Qr)?;
    Ok(code
        .render::<qrcode::render::svg::Color<'_>>()
        .min_dimensions(200, 200)
        .build())
}

/// Bytes of a new secret: 160 bits, the length RFC 4226 recommends.
pub const SECRET_LEN: usize = 20;

/// How long a pending enrolment may wait for its confirmation code.
pub const ENROLLMENT_TTL_SECS: u64 = 15 * 60;

/// An enrolment waiting for its first code. Keep it server-side (encrypted like a secret);
/// never send it to the client beyond what [`Enrollment`] shows.
#[derive(Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PendingEnrollment {
    /// The new secret.
    pub secret: Vec<u8>,
    /// Code parameters.
    pub params: TotpParams,
    /// Unix time after which [`confirm_enrollment`] refuses it.
    pub expires_at: u64,
}

impl fmt::Debug for PendingEnrollment {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("PendingEnrollment")
            .field("secret", &"***")
            .field("params", &self.params)
            .field("expires_at", &self.expires_at)
            .finish()
    }
}

/// What [`begin_enrollment`] shows the user, and the pending enrolment to keep.
#[derive(Debug, Clone)]
pub struct Enrollment {
    /// The secret in base32, for typing into an app.
    pub secret: String,
    /// The `otpauth://` URI.
    pub uri: String,
    /// The URI as a QR code (SVG document).
    pub qr_svg: String,
    /// To keep until confirmation.
    pub pending: PendingEnrollment,
}

/// Starts an enrolment: a fresh secret from `rng`, its URI and QR code.
pub fn begin_enrollment(
    rng: &mut dyn RandomSource,
    issuer: &str,
    account: &str,
    params: TotpParams,
    now: u64,
) -> Result<Enrollment, TotpError> {
    params.checked()?;
    let mut secret = vec![0u8; SECRET_LEN];
    rng.fill_bytes(&mut secret);
    let uri = OtpAuthUri {
        issuer: issuer.to_owned(),
        account: account.to_owned(),
        secret: secret.clone(),
        params,
    }
    .to_uri();
    let qr_svg = qr_svg(&uri)?;
    Ok(Enrollment {
        secret: base32::encode(&secret),
        uri,
        qr_svg,
        pending: PendingEnrollment {
            secret,
            params,
            expires_at: now.saturating_add(ENROLLMENT_TTL_SECS),
        },
    })
}

/// Completes an enrolment if `code` is valid now; the returned state already has the
/// confirmation code's step as used, so the same code cannot then sign in.
pub fn confirm_enrollment(
    pending: &PendingEnrollment,
    code: &str,
    now: u64,
    config: &VerifyConfig,
) -> Result<TotpState, TotpError> {
    if now >= pending.expires_at {
        return Err(TotpError::Expired);
    }
    let state = TotpState::new(pending.secret.clone(), pending.params);
    match verify(&state, code, now, config) {
        (VerifyOutcome::Accepted { .. }, next) => Ok(next),
        (VerifyOutcome::Rejected(r), _) => Err(TotpError::Refused(r)),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::random::TestRandom;
    use proptest::prelude::*;

    const SEED: &[u8] = b"12345678901234567890";

    #[test]
    fn rfc6238_appendix_b_sha1() {
        let p = TotpParams {
            digits: 8,
            ..TotpParams::default()
        };
        for (t, code) in [
            (59, "94287082"),
            (1_111_111_109, "07081804"),
            (1_111_111_111, "14050471"),
            (1_234_567_890, "89005924"),
            (2_000_000_000, "69279037"),
            (20_000_000_000, "65353130"),
        ] {
            assert_eq!(code_at(SEED, &p, t), code, "T = {t}");
        }
    }

    #[test]
    fn rfc6238_appendix_b_sha256_sha512() {
        let p = TotpParams {
            digits: 8,
            algorithm: Algorithm::Sha256,
            period: 30,
        };
        assert_eq!(code_at(b"12345678901234567890123456789012", &p, 59), "46119246");
        let p = TotpParams {
            digits: 8,
            algorithm: Algorithm::Sha512,
            period: 30,
        };
        let seed64 = b"1234567890123456789012345678901234567890123456789012345678901234";
        assert_eq!(code_at(seed64, &p, 59), "90693936");
    }

    #[test]
    fn rfc4226_hotp_six_digits() {
        let p = TotpParams::default();
        let expected = ["755224", "287082", "359152", "969429", "338314"];
        for (i, e) in expected.iter().enumerate() {
            assert_eq!(hotp(SEED, i as u64, &p), *e);
        }
    }

    fn state() -> TotpState {
        TotpState::new(SEED.to_vec(), TotpParams::default())
    }

    #[test]
    fn window_edges() {
        let cfg = VerifyConfig::default();
        let now = 1_000_000_020; // step 33_333_334, 20 s into it
        let step = step_at(&TotpParams::default(), now);
        for (offset, ok) in [(-2i64, false), (-1, true), (0, true), (1, true), (2, false)] {
            let s = (step as i64 + offset) as u64;
            let code = hotp(SEED, s, &TotpParams::default());
            let (out, _) = verify(&state(), &code, now, &cfg);
            if ok {
                assert_eq!(out, VerifyOutcome::Accepted { step: s }, "offset {offset}");
            } else {
                assert_eq!(out, VerifyOutcome::Rejected(Rejection::Wrong), "offset {offset}");
            }
        }
        // A wider window accepts ±2; window 0 only the current step.
        let code = hotp(SEED, step - 2, &TotpParams::default());
        let wide = VerifyConfig { window: 2, ..cfg };
        assert!(matches!(
            verify(&state(), &code, now, &wide).0,
            VerifyOutcome::Accepted { .. }
        ));
        let code = hotp(SEED, step - 1, &TotpParams::default());
        let narrow = VerifyConfig { window: 0, ..cfg };
        assert_eq!(
            verify(&state(), &code, now, &narrow).0,
            VerifyOutcome::Rejected(Rejection::Wrong)
        );
        // The step boundary: the last second of a step and the first of the next.
        let p = TotpParams::default();
        assert_eq!(step_at(&p, 59), 1);
        assert_eq!(step_at(&p, 60), 2);
    }

    #[test]
    fn replay_is_refused() {
        let cfg = VerifyConfig::default();
        let now = 1_000_000_000;
        let code = code_at(SEED, &TotpParams::default(), now);
        let (out, s1) = verify(&state(), &code, now, &cfg);
        let step = step_at(&TotpParams::default(), now);
        assert_eq!(out, VerifyOutcome::Accepted { step });
        assert_eq!(s1.last_step, Some(step));
        // Same code again, even 10 s later in the same step.
        let (out, s2) = verify(&s1, &code, now + 10, &cfg);
        assert_eq!(out, VerifyOutcome::Rejected(Rejection::Replayed));
        assert_eq!(s2.failures, 1);
        // The previous step's code is in the window but before the last used step.
        let older = hotp(SEED, step - 1, &TotpParams::default());
        assert_eq!(
            verify(&s1, &older, now, &cfg).0,
            VerifyOutcome::Rejected(Rejection::Replayed)
        );
        // The next step's code is fine.
        let newer = hotp(SEED, step + 1, &TotpParams::default());
        assert_eq!(
            verify(&s1, &newer, now + 30, &cfg).0,
            VerifyOutcome::Accepted { step: step + 1 }
        );
    }

    #[test]
    fn malformed_and_separators() {
        let cfg = VerifyConfig::default();
        let now = 1_000_000_000;
        let code = code_at(SEED, &TotpParams::default(), now);
        let spaced = format!("{} {}", &code[..3], &code[3..]);
        assert!(matches!(
            verify(&state(), &spaced, now, &cfg).0,
            VerifyOutcome::Accepted { .. }
        ));
        for bad in ["", "12345", "1234567", "12a456", "１２３４５６"] {
            assert_eq!(
                verify(&state(), bad, now, &cfg).0,
                VerifyOutcome::Rejected(Rejection::Malformed)
            );
        }
    }

    #[test]
    fn failure_cap_locks_with_growing_delay() {
        let cfg = VerifyConfig::default();
        let mut st = state();
        let mut now = 1_000_000_000;
        let good = |t| code_at(SEED, &TotpParams::default(), t);
        let wrong = |t: u64| {
            let g = good(t);
            // A code that certainly differs from every code in the window.
            (0..1_000_000u32).map(|n| format!("{n:06}")).find(|c| {
                let s = step_at(&TotpParams::default(), t);
                (s - 1..=s + 1).all(|x| hotp(SEED, x, &TotpParams::default()) != *c) && *c != g
            })
        };
        for i in 0..5 {
            let (out, next) = verify(&st, &wrong(now).unwrap(), now, &cfg);
            assert_eq!(out, VerifyOutcome::Rejected(Rejection::Wrong), "attempt {i}");
            st = next;
        }
        assert_eq!(st.locked_until, Some(now + 60));
        // While locked, even the right code is refused.
        let (out, st2) = verify(&st, &good(now + 1), now + 1, &cfg);
        assert_eq!(out, VerifyOutcome::Rejected(Rejection::Locked { retry_after_secs: 59 }));
        st = st2;
        // After the lock, five more failures lock for twice as long.
        now += 61;
        for _ in 0..5 {
            st = verify(&st, &wrong(now).unwrap(), now, &cfg).1;
        }
        assert_eq!(st.locked_until, Some(now + 120));
        // A success after the lock resets everything.
        now += 121;
        let (out, st3) = verify(&st, &good(now), now, &cfg);
        assert!(matches!(out, VerifyOutcome::Accepted { .. }));
        assert_eq!((st3.failures, st3.lockouts, st3.locked_until), (0, 0, None));
    }

    #[test]
    fn lock_length_is_capped() {
        let cfg = VerifyConfig::default();
        assert_eq!(lock_length(&cfg, 0), 60);
        assert_eq!(lock_length(&cfg, 3), 480);
        assert_eq!(lock_length(&cfg, 40), 3600);
    }

    #[test]
    fn uri_format_and_encoding() {
        let uri = OtpAuthUri {
            issuer: "My Wiki: test".into(),
            account: "Jürgen & co".into(),
            secret: b"12345678901234567890".to_vec(),
            params: TotpParams::default(),
        };
        assert_eq!(
            uri.to_uri(),
            "otpauth://totp/My%20Wiki%3A%20test:J%C3%BCrgen%20%26%20co?secret=GEZDGNBVGY3TQOJQGEZDGNBVGY3TQOJQ\
             &issuer=My%20Wiki%3A%20test&algorithm=SHA1&digits=6&period=30"
        );
        assert_eq!(OtpAuthUri::parse(&uri.to_uri()).unwrap(), uri);
        assert_eq!(OtpAuthUri::parse("https://x"), Err(UriError::Scheme));
        assert_eq!(
            OtpAuthUri::parse("otpauth://totp/a:b?issuer=a"),
            Err(UriError::Param("secret"))
        );
        assert_eq!(
            OtpAuthUri::parse("otpauth://totp/a:b?secret=GE&digits=9"),
            Err(UriError::Param("digits/period"))
        );
        assert_eq!(
            OtpAuthUri::parse("otpauth://totp/a%zz:b?secret=GE"),
            Err(UriError::Encoding)
        );
    }

    #[test]
    fn enrolment_is_two_step() {
        let mut rng = TestRandom::new(1);
        let cfg = VerifyConfig::default();
        let now = 1_700_000_000;
        let e = begin_enrollment(&mut rng, "Wiki", "Alice", TotpParams::default(), now).unwrap();
        assert_eq!(e.secret.len(), 32);
        assert!(e.uri.starts_with("otpauth://totp/Wiki:Alice?secret="));
        assert!(e.qr_svg.contains("<svg"));
        assert!(!format!("{:?}", e.pending).contains(&format!("{:?}", e.pending.secret)));
        let refused = confirm_enrollment(&e.pending, "000000", now, &cfg);
        let good = code_at(&e.pending.secret, &TotpParams::default(), now);
        if good != "000000" {
            assert_eq!(refused, Err(TotpError::Refused(Rejection::Wrong)));
        }
        let st = confirm_enrollment(&e.pending, &good, now, &cfg).unwrap();
        // The confirmation code cannot be replayed to sign in.
        assert_eq!(
            verify(&st, &good, now, &cfg).0,
            VerifyOutcome::Rejected(Rejection::Replayed)
        );
        assert_eq!(
            confirm_enrollment(&e.pending, &good, now + ENROLLMENT_TTL_SECS, &cfg),
            Err(TotpError::Expired)
        );
        assert_eq!(
            begin_enrollment(
                &mut rng,
                "W",
                "A",
                TotpParams {
                    digits: 4,
                    ..TotpParams::default()
                },
                now
            )
            .err(),
            Some(TotpError::BadParams)
        );
    }

    #[test]
    fn debug_masks_secret() {
        let s = format!("{:?}", state());
        assert!(s.contains("***") && !s.contains("49, 50"));
    }

    proptest! {
        #[test]
        fn uri_round_trip(issuer in "\\PC{0,20}", account in "\\PC{0,20}",
                          secret in proptest::collection::vec(any::<u8>(), 1..40),
                          digits in 6u32..=8, period in 1u64..=120) {
            let issuer = if issuer.is_empty() { "x".to_string() } else { issuer };
            let u = OtpAuthUri { issuer, account, secret,
                                 params: TotpParams { digits, period, algorithm: Algorithm::Sha1 } };
            prop_assert_eq!(OtpAuthUri::parse(&u.to_uri()).unwrap(), u);
        }

        #[test]
        fn uri_parse_never_panics(s in "otpauth://totp/\\PC{0,60}") {
            let _ = OtpAuthUri::parse(&s);
        }

        #[test]
        fn current_code_always_verifies(secret in proptest::collection::vec(any::<u8>(), 10..40),
                                        now in 0u64..10_000_000_000) {
            let st = TotpState::new(secret.clone(), TotpParams::default());
            let code = code_at(&secret, &st.params, now);
            let accepted = matches!(verify(&st, &code, now, &VerifyConfig::default()).0,
                                    VerifyOutcome::Accepted { .. });
            prop_assert!(accepted);
        }
    }
}
