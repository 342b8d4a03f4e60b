//! Recovery codes: ten single-use codes for when the authenticator is lost.
//!
//! Each code is 10 random bytes (80 bits) shown once as 16 base32 characters in groups,
//! `abcd-efgh-ijkl-mnop`. Only an HMAC-SHA256 of the normalised code is stored, keyed with
//! a key from the config: with 80 bits of entropy a slow password hash buys nothing, and the
//! key means a database dump alone does not even allow an offline check.
//!
//! Verification normalises what the user typed (case, dashes, spaces), compares against
//! every stored hash in constant time without stopping early, and marks the matched code
//! used. [`generate`] makes a whole new set; storing it replaces (invalidates) the old one.

use crate::base32;
use crate::keys::{to_hex, HmacKey};
use crate::random::RandomSource;
use serde::{Deserialize, Serialize};
use subtle::ConstantTimeEq;

/// Codes per set.
pub const CODE_COUNT: usize = 10;
/// Random bytes per code (80 bits).
pub const CODE_BYTES: usize = 10;
const CONTEXT: &[u8] = b"wikiguard recovery code v1";

/// One stored code: its keyed hash and when it was used, if it was.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct StoredCode {
    /// Lower-case hex of HMAC-SHA256(key, normalised code).
    pub hash: String,
    /// Unix time of use; a used code never matches again.
    pub used_at: Option<u64>,
}

/// A user's stored set of recovery codes.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct StoredCodes {
    /// Unix time the set was made.
    pub generated_at: u64,
    /// The codes.
    pub codes: Vec<StoredCode>,
}

impl StoredCodes {
    /// Codes not yet used.
    pub fn remaining(&self) -> usize {
        self.codes.iter().filter(|c| c.used_at.is_none()).count()
    }

    /// A stored set from existing plain codes (OATHAuth scratch tokens on import). Codes
    /// that normalise to nothing are skipped.
    pub fn from_plain(key: &HmacKey, plain: &[String], now: u64) -> Self {
        let codes = plain
            .iter()
            .map(|c| normalise(c))
            .filter(|c| !c.is_empty())
            .map(|c| StoredCode {
                hash: hash(key, &c),
                used_at: None,
            })
            .collect();
        StoredCodes {
            generated_at: now,
            codes,
        }
    }
}

/// A new set: the plain codes to show once, and what to store.
#[derive(Debug, Clone)]
pub struct NewCodes {
    /// The codes as shown to the user, `xxxx-xxxx-xxxx-xxxx`.
    pub plain: Vec<String>,
    /// What to store, replacing any previous set.
    pub stored: StoredCodes,
}

/// The event of a code's use, for the audit log and the owner's notification.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct CodeUsed {
    /// Unix time of use.
    pub at: u64,
    /// Which code of the set (0-based).
    pub index: usize,
    /// Unused codes left; at 0 the user must generate a new set.
    pub remaining: usize,
}

/// Why a recovery code was refused.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum RecoveryError {
    /// Matches no unused code.
    #[error("that recovery code is not valid or was already used")]
    NoMatch,
    /// Not 16 base32 characters after normalisation.
    #[error("a recovery code is 16 letters and digits, e.g. abcd-efgh-ijkl-mnop")]
    Malformed,
}

/// Upper case, without spaces, dashes and other separators.
pub fn normalise(code: &str) -> String {
    code.chars()
        .filter(|c| c.is_ascii_alphanumeric())
        .map(|c| c.to_ascii_uppercase())
        .collect()
}

fn hash(key: &HmacKey, normalised: &str) -> String {
    to_hex(&key.mac(CONTEXT, &[normalised.as_bytes()]))
}

fn display(normalised: &str) -> String {
    let lower = normalised.to_ascii_lowercase();
    let mut out = String::with_capacity(19);
    for (i, c) in lower.chars().enumerate() {
        if i > 0 && i % 4 == 0 {
            out.push('-');
        }
        out.push(c);
    }
    out
}

/// Makes a new set of [`CODE_COUNT`] codes.
pub fn generate(rng: &mut dyn RandomSource, key: &HmacKey, now: u64) -> NewCodes {
    let mut plain = Vec::with_capacity(CODE_COUNT);
    let mut codes = Vec::with_capacity(CODE_COUNT);
    for _ in 0..CODE_COUNT {
        let mut bytes = [0u8; CODE_BYTES];
        rng.fill_bytes(&mut bytes);
        let code = base32::encode(&bytes);
        codes.push(StoredCode {
            hash: hash(key, &code),
            used_at: None,
        });
        plain.push(display(&code));
    }
    NewCodes {
        plain,
        stored: StoredCodes {
            generated_at: now,
            codes,
        },
    }
}

/// Uses `input` against `stored`: on success returns the updated set to persist (the code
/// marked used) and the [`CodeUsed`] event.
pub fn use_code(
    stored: &StoredCodes,
    key: &HmacKey,
    input: &str,
    now: u64,
) -> Result<(StoredCodes, CodeUsed), RecoveryError> {
    let code = normalise(input);
    // OATHAuth's imported scratch tokens are 16 base32 characters too.
    if code.len() != 16 || base32::decode(&code).is_err() {
        return Err(RecoveryError::Malformed);
    }
    let candidate = hash(key, &code);
    let mut found = None;
    // Compare with every code, used or not, so timing does not reveal the set's state.
    for (i, c) in stored.codes.iter().enumerate() {
        let eq = bool::from(c.hash.as_bytes().ct_eq(candidate.as_bytes()));
        if eq && c.used_at.is_none() && found.is_none() {
            found = Some(i);
        }
    }
    let index = found.ok_or(RecoveryError::NoMatch)?;
    let mut next = stored.clone();
    if let Some(c) = next.codes.get_mut(index) {
        c.used_at = Some(now);
    }
    let remaining = next.remaining();
    Ok((
        next,
        CodeUsed {
            at: now,
            index,
            remaining,
        },
    ))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::random::TestRandom;
    use proptest::prelude::*;

    fn key() -> HmacKey {
        HmacKey::new([9; 32])
    }

    #[test]
    fn ten_codes_of_80_bits_shown_in_groups() {
        let n = generate(&mut TestRandom::new(1), &key(), 100);
        assert_eq!(n.plain.len(), 10);
        assert_eq!(n.stored.codes.len(), 10);
        for p in &n.plain {
            assert_eq!(p.len(), 19);
            assert_eq!(p.matches('-').count(), 3);
            assert_eq!(base32::decode(p).unwrap().len(), CODE_BYTES);
        }
        // No plain code appears in the stored form.
        let json = serde_json::to_string(&n.stored).unwrap();
        for p in &n.plain {
            assert!(!json.to_lowercase().contains(&normalise(p).to_lowercase()));
        }
    }

    #[test]
    fn single_use_and_normalised() {
        let n = generate(&mut TestRandom::new(2), &key(), 100);
        let typed = n.plain[3].to_uppercase().replace('-', " ");
        let (after, ev) = use_code(&n.stored, &key(), &typed, 200).unwrap();
        assert_eq!(
            ev,
            CodeUsed {
                at: 200,
                index: 3,
                remaining: 9
            }
        );
        assert_eq!(use_code(&after, &key(), &n.plain[3], 201), Err(RecoveryError::NoMatch));
        assert!(use_code(&after, &key(), &n.plain[4], 202).is_ok());
        assert_eq!(use_code(&after, &key(), "abc", 202), Err(RecoveryError::Malformed));
        // Another key does not match.
        assert_eq!(
            use_code(&n.stored, &HmacKey::new([1; 32]), &n.plain[0], 1),
            Err(RecoveryError::NoMatch)
        );
    }

    #[test]
    fn regenerate_invalidates_the_old_set() {
        let mut rng = TestRandom::new(3);
        let old = generate(&mut rng, &key(), 1);
        let new = generate(&mut rng, &key(), 2);
        assert_eq!(
            use_code(&new.stored, &key(), &old.plain[0], 3),
            Err(RecoveryError::NoMatch)
        );
        assert!(use_code(&new.stored, &key(), &new.plain[0], 3).is_ok());
    }

    #[test]
    fn imported_scratch_tokens() {
        let s = StoredCodes::from_plain(&key(), &["JBSWY3DPEHPK3PXP".into(), "".into()], 5);
        assert_eq!(s.codes.len(), 1);
        assert!(use_code(&s, &key(), "jbsw-y3dp-ehpk-3pxp", 6).is_ok());
    }

    proptest! {
        #[test]
        fn normalisation_accepts_any_spelling(bytes in proptest::array::uniform10(any::<u8>()),
                                              seps in proptest::collection::vec("[ \\-]{0,2}", 16),
                                              upper in proptest::collection::vec(any::<bool>(), 16)) {
            let code = base32::encode(&bytes);
            let stored = StoredCodes::from_plain(&key(), std::slice::from_ref(&code), 0);
            let typed: String = code.chars().zip(seps.iter().zip(upper.iter()))
                .map(|(c, (s, u))| format!("{}{}", if *u { c } else { c.to_ascii_lowercase() }, s))
                .collect();
            prop_assert!(use_code(&stored, &key(), &typed, 1).is_ok());
            prop_assert_eq!(normalise(&display(&code)), code);
        }

        #[test]
        fn use_code_never_panics(s in "\\PC{0,40}") {
            let n = generate(&mut TestRandom::new(1), &key(), 0);
            let _ = use_code(&n.stored, &key(), &s, 0);
        }
    }
}
