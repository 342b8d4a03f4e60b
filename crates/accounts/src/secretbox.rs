//! Secrets at rest: XChaCha20-Poly1305 with named keys and rotation.
//!
//! TOTP secrets (and pending enrolments) are encrypted before they reach the store, so a
//! stolen database dump does not hand out everyone's second factor.
//!
//! **Keys** are named: a key id (1 to 64 bytes of `A-Z a-z 0-9 . _ -`, e.g. `2025-01`) and
//! 32 bytes of key, written in the config as 64 hex digits or 44 base64 characters
//! ([`crate::keys`]). One key is *current* and encrypts; every configured key decrypts.
//! Rotation: add a new key, make it current, run [`Keyring::rewrap`] over stored ciphertexts
//! (or let it happen as users sign in), then drop the old key once
//! [`Keyring::key_id_of`] no longer finds it.
//!
//! **Ciphertext format** (version 1), bytes:
//!
//! ```text
//! offset  length  content
//! 0       1       0x01, the format version
//! 1       1       L, the key id's length (1..=64)
//! 2       L       the key id, ASCII
//! 2+L     24      the XChaCha20 nonce, random from the caller's source
//! 26+L    n+16    the ciphertext of the n-byte plaintext, then the Poly1305 tag
//! ```
//!
//! The header (bytes `0 .. 2+L`) is the associated data, so changing the key id or the
//! version makes decryption fail rather than try another key. With 192-bit random nonces,
//! collisions are negligible for any number of encryptions a wiki will make.

use crate::keys::{parse_key32, KeyParseError};
use crate::random::RandomSource;
use chacha20poly1305::aead::{Aead, KeyInit, Payload};
use chacha20poly1305::{XChaCha20Poly1305, XNonce};
use std::fmt;

const VERSION: u8 = 1;
const NONCE_LEN: usize = 24;
const TAG_LEN: usize = 16;

/// Errors of key configuration, encryption and decryption.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SecretboxError {
    /// A key id that is empty, too long or has characters outside `A-Z a-z 0-9 . _ -`.
    #[error("key id {0:?} must be 1 to 64 characters of A-Z, a-z, 0-9, '.', '_' or '-'")]
    BadKeyId(String),
    /// The key material does not parse.
    #[error("key {id:?}: {source}")]
    BadKey {
        /// The key id.
        id: String,
        /// Why.
        source: KeyParseError,
    },
    /// Two keys share an id.
    #[error("key id {0:?} is configured twice")]
    DuplicateKeyId(String),
    /// The current key id names no configured key.
    #[error("the current key {0:?} is not among the configured keys")]
    UnknownCurrentKey(String),
    /// The ciphertext is too short or has an unknown version.
    #[error("not a wikiguard ciphertext (wrong version or truncated)")]
    Malformed,
    /// The ciphertext names a key that is not configured (was it removed too early?).
    #[error("the ciphertext was made with key {0:?}, which is not configured")]
    UnknownKey(String),
    /// Authentication failed: wrong key material or a modified ciphertext.
    #[error("decryption failed: the ciphertext was modified or the key {0:?} has changed")]
    Tampered(String),
    /// The AEAD refused to encrypt (plaintext too large).
    #[error("encryption failed")]
    Encrypt,
}

/// A named 32-byte key. `Debug` shows the id only.
#[derive(Clone)]
pub struct NamedKey {
    id: String,
    key: [u8; 32],
}

impl fmt::Debug for NamedKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("NamedKey")
            .field("id", &self.id)
            .field("key", &"***")
            .finish()
    }
}

fn valid_id(id: &str) -> bool {
    (1..=64).contains(&id.len())
        && id
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'.' | b'_' | b'-'))
}

impl NamedKey {
    /// A key from raw bytes.
    pub fn new(id: &str, key: [u8; 32]) -> Result<Self, SecretboxError> {
        if !valid_id(id) {
            return Err(SecretboxError::BadKeyId(id.to_owned()));
        }
        Ok(NamedKey { id: id.to_owned(), key })
    }

    /// A key from its config form (hex or base64, see [`crate::keys`]).
    pub fn parse(id: &str, text: &str) -> Result<Self, SecretboxError> {
        let key = parse_key32(text).map_err(|source| SecretboxError::BadKey {
            id: id.to_owned(),
            source,
        })?;
        NamedKey::new(id, key)
    }

    /// The key id.
    pub fn id(&self) -> &str {
        &self.id
    }
}

/// The configured keys, one of them current.
#[derive(Debug, Clone)]
pub struct Keyring {
    current: usize,
    keys: Vec<NamedKey>,
}

impl Keyring {
    /// A keyring encrypting with `current` and decrypting with any of `keys`.
    pub fn new(current: &str, keys: Vec<NamedKey>) -> Result<Self, SecretboxError> {
        for (i, k) in keys.iter().enumerate() {
            if keys.iter().take(i).any(|o| o.id == k.id) {
                return Err(SecretboxError::DuplicateKeyId(k.id.clone()));
            }
        }
        let current = keys
            .iter()
            .position(|k| k.id == current)
            .ok_or_else(|| SecretboxError::UnknownCurrentKey(current.to_owned()))?;
        Ok(Keyring { current, keys })
    }

    /// The id of the key that encrypts.
    pub fn current_id(&self) -> &str {
        self.keys.get(self.current).map_or("", |k| k.id.as_str())
    }

    /// Encrypts `plaintext` with the current key and a nonce from `rng`.
    pub fn seal(&self, plaintext: &[u8], rng: &mut dyn RandomSource) -> Result<Vec<u8>, SecretboxError> {
        let key = self.keys.get(self.current).ok_or(SecretboxError::Encrypt)?;
        let mut nonce = [0u8; NONCE_LEN];
        rng.fill_bytes(&mut nonce);
        let mut out = Vec::with_capacity(2 + key.id.len() + NONCE_LEN + plaintext.len() + TAG_LEN);
        out.push(VERSION);
        out.push(key.id.len() as u8);
        out.extend_from_slice(key.id.as_bytes());
        let header_len = out.len();
        let cipher = XChaCha20Poly1305::new((&key.key).into());
        let sealed = cipher
            .encrypt(
                XNonce::from_slice(&nonce),
                Payload {
                    msg: plaintext,
                    aad: &out,
                },
            )
            .map_err(|_| SecretboxError::Encrypt)?;
        debug_assert_eq!(header_len, out.len());
        out.extend_from_slice(&nonce);
        out.extend_from_slice(&sealed);
        Ok(out)
    }

    /// The key id a ciphertext was made with.
    pub fn key_id_of(ciphertext: &[u8]) -> Result<&str, SecretboxError> {
        split(ciphertext).map(|p| p.key_id)
    }

    /// Decrypts with whichever configured key the ciphertext names.
    pub fn open(&self, ciphertext: &[u8]) -> Result<Vec<u8>, SecretboxError> {
        let parts = split(ciphertext)?;
        let key = self
            .keys
            .iter()
            .find(|k| k.id == parts.key_id)
            .ok_or_else(|| SecretboxError::UnknownKey(parts.key_id.to_owned()))?;
        let cipher = XChaCha20Poly1305::new((&key.key).into());
        cipher
            .decrypt(
                XNonce::from_slice(parts.nonce),
                Payload {
                    msg: parts.sealed,
                    aad: parts.header,
                },
            )
            .map_err(|_| SecretboxError::Tampered(parts.key_id.to_owned()))
    }

    /// Whether `ciphertext` was made with a key other than the current one.
    pub fn needs_rewrap(&self, ciphertext: &[u8]) -> Result<bool, SecretboxError> {
        Ok(Keyring::key_id_of(ciphertext)? != self.current_id())
    }

    /// Moves a ciphertext to the current key (decrypt, then encrypt with a fresh nonce).
    /// Returns `None` when it already uses the current key.
    pub fn rewrap(&self, ciphertext: &[u8], rng: &mut dyn RandomSource) -> Result<Option<Vec<u8>>, SecretboxError> {
        if !self.needs_rewrap(ciphertext)? {
            // Still authenticate it, so a rewrap pass also finds corrupt rows.
            self.open(ciphertext)?;
            return Ok(None);
        }
        let plain = self.open(ciphertext)?;
        self.seal(&plain, rng).map(Some)
    }
}

struct Parts<'a> {
    header: &'a [u8],
    key_id: &'a str,
    nonce: &'a [u8],
    sealed: &'a [u8],
}

fn split(ct: &[u8]) -> Result<Parts<'_>, SecretboxError> {
    let (&version, rest) = ct.split_first().ok_or(SecretboxError::Malformed)?;
    let (&len, rest) = rest.split_first().ok_or(SecretboxError::Malformed)?;
    let len = usize::from(len);
    if version != VERSION || len == 0 || len > 64 || rest.len() < len + NONCE_LEN + TAG_LEN {
        return Err(SecretboxError::Malformed);
    }
    let (id, rest) = rest.split_at(len);
    let key_id = std::str::from_utf8(id).map_err(|_| SecretboxError::Malformed)?;
    let (nonce, sealed) = rest.split_at(NONCE_LEN);
    let header = ct.get(..2 + len).ok_or(SecretboxError::Malformed)?;
    Ok(Parts {
        header,
        key_id,
        nonce,
        sealed,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::random::TestRandom;
    use proptest::prelude::*;

    fn ring(current: &str) -> Keyring {
        Keyring::new(
            current,
            vec![
                NamedKey::new("old", [1; 32]).unwrap(),
                NamedKey::new("new", [2; 32]).unwrap(),
            ],
        )
        .unwrap()
    }

    #[test]
    fn format_is_as_documented() {
        let mut rng = TestRandom::new(3);
        let ct = ring("new").seal(b"secret", &mut rng).unwrap();
        assert_eq!(ct[0], 1);
        assert_eq!(ct[1], 3);
        assert_eq!(&ct[2..5], b"new");
        assert_eq!(ct.len(), 2 + 3 + 24 + 6 + 16);
        assert_eq!(Keyring::key_id_of(&ct).unwrap(), "new");
    }

    #[test]
    fn rotation() {
        let mut rng = TestRandom::new(4);
        let old_ct = ring("old").seal(b"totp secret", &mut rng).unwrap();
        let r = ring("new");
        assert_eq!(r.open(&old_ct).unwrap(), b"totp secret");
        assert!(r.needs_rewrap(&old_ct).unwrap());
        let new_ct = r.rewrap(&old_ct, &mut rng).unwrap().unwrap();
        assert_eq!(Keyring::key_id_of(&new_ct).unwrap(), "new");
        assert_eq!(r.rewrap(&new_ct, &mut rng).unwrap(), None);
        // Once "old" is dropped, only the rewrapped ciphertext opens.
        let only_new = Keyring::new("new", vec![NamedKey::new("new", [2; 32]).unwrap()]).unwrap();
        assert_eq!(only_new.open(&new_ct).unwrap(), b"totp secret");
        assert_eq!(only_new.open(&old_ct), Err(SecretboxError::UnknownKey("old".into())));
    }

    #[test]
    fn config_errors() {
        assert!(matches!(NamedKey::parse("k", "zz"), Err(SecretboxError::BadKey { .. })));
        assert!(matches!(
            NamedKey::new("bad id", [0; 32]),
            Err(SecretboxError::BadKeyId(_))
        ));
        let k = NamedKey::parse("k", &"ab".repeat(32)).unwrap();
        assert_eq!(
            Keyring::new("x", vec![k.clone()]).err(),
            Some(SecretboxError::UnknownCurrentKey("x".into()))
        );
        assert_eq!(
            Keyring::new("k", vec![k.clone(), k.clone()]).err(),
            Some(SecretboxError::DuplicateKeyId("k".into()))
        );
        assert_eq!(format!("{k:?}"), r#"NamedKey { id: "k", key: "***" }"#);
        assert!(!format!("{:?}", ring("new")).contains("[2"));
    }

    #[test]
    fn key_id_swap_is_detected() {
        // Same key material under two ids: renaming the id in the header must still fail.
        let r = Keyring::new(
            "a1",
            vec![
                NamedKey::new("a1", [5; 32]).unwrap(),
                NamedKey::new("a2", [5; 32]).unwrap(),
            ],
        )
        .unwrap();
        let mut ct = r.seal(b"x", &mut TestRandom::new(1)).unwrap();
        ct[3] = b'2';
        assert_eq!(r.open(&ct), Err(SecretboxError::Tampered("a2".into())));
    }

    proptest! {
        #[test]
        fn round_trip(plain in proptest::collection::vec(any::<u8>(), 0..100), seed in any::<u64>()) {
            let r = ring("new");
            let ct = r.seal(&plain, &mut TestRandom::new(seed)).unwrap();
            prop_assert_eq!(r.open(&ct).unwrap(), plain);
        }

        #[test]
        fn tampering_is_detected(plain in proptest::collection::vec(any::<u8>(), 0..50),
                                 pos in any::<prop::sample::Index>(), bit in 0u8..8) {
            let r = ring("new");
            let mut ct = r.seal(&plain, &mut TestRandom::new(9)).unwrap();
            let i = pos.index(ct.len());
            ct[i] ^= 1 << bit;
            prop_assert!(r.open(&ct).is_err());
        }

        #[test]
        fn open_never_panics(bytes in proptest::collection::vec(any::<u8>(), 0..80)) {
            let _ = ring("new").open(&bytes);
        }
    }
}
