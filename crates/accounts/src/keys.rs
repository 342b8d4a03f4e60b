//! Key material from config strings.
//!
//! A key is written in the config as **64 hex digits** (32 bytes; the form OATHAuth's
//! `$wgOATHSecretKey` uses, e.g. `openssl rand -hex 32`) or as **44 characters of standard
//! padded base64** (`openssl rand -base64 32`). The two lengths never collide, so no prefix
//! is needed. Surrounding whitespace is ignored. Keys never appear in `Debug` output.

use hmac::{Hmac, Mac};
use sha2::Sha256;
use std::fmt;

/// Why a key string from the config was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum KeyParseError {
    /// The string is neither 64 hex digits nor 44 base64 characters.
    #[error("key must be 64 hex digits or 44 base64 characters (32 bytes), got {0} characters; generate one with `openssl rand -hex 32`")]
    BadLength(usize),
    /// The string has the length of a hex key but a non-hex character.
    #[error("key looks like hex but character {position} is not a hex digit")]
    BadHex {
        /// 1-based position of the offending character.
        position: usize,
    },
    /// The string has the length of a base64 key but does not decode to 32 bytes.
    #[error("key looks like base64 but is not valid base64 of 32 bytes")]
    BadBase64,
}

/// Parses 32 bytes of key material (hex or base64, see the module doc).
pub fn parse_key32(text: &str) -> Result<[u8; 32], KeyParseError> {
    let text = text.trim();
    let mut out = [0u8; 32];
    match text.len() {
        64 => {
            let bytes = text.as_bytes();
            // The digit at byte `at`, or the error naming its 1-based position.
            let digit = |at: usize| {
                bytes
                    .get(at)
                    .copied()
                    .and_then(hex_digit)
                    .ok_or(KeyParseError::BadHex { position: at + 1 })
            };
            for (i, slot) in out.iter_mut().enumerate() {
                *slot = (digit(2 * i)? << 4) | digit(2 * i + 1)?;
            }
            Ok(out)
        }
        44 => {
            use base64::Engine as _;
            let v = base64::engine::general_purpose::STANDARD
                .decode(text)
                .map_err(|_| KeyParseError::BadBase64)?;
            if v.len() != 32 {
                return Err(KeyParseError::BadBase64);
            }
            out.copy_from_slice(&v);
            Ok(out)
        }
        n => Err(KeyParseError::BadLength(n)),
    }
}

/// The value of one hex digit, either case.
pub(crate) fn hex_digit(c: u8) -> Option<u8> {
    match c {
        b'0'..=b'9' => Some(c - b'0'),
        b'a'..=b'f' => Some(c - b'a' + 10),
        b'A'..=b'F' => Some(c - b'A' + 10),
        _ => None,
    }
}

/// Lower-case hex of `bytes`.
pub fn to_hex(bytes: &[u8]) -> String {
    const DIGITS: &[u8; 16] = b"0123456789abcdef";
    let mut s = String::with_capacity(bytes.len() * 2);
    for b in bytes {
        s.push(char::from(DIGITS[usize::from(b >> 4)]));
        s.push(char::from(DIGITS[usize::from(b & 0xf)]));
    }
    s
}

/// A 32-byte HMAC-SHA256 key (recovery-code hashes, device cookies, IP pseudonyms).
///
/// Use a different key for each purpose so that one leaking does not help forge another.
#[derive(Clone)]
pub struct HmacKey([u8; 32]);

impl HmacKey {
    /// Wraps raw key bytes.
    pub fn new(bytes: [u8; 32]) -> Self {
        HmacKey(bytes)
    }

    /// Parses a key from its config form (see the module doc).
    pub fn parse(text: &str) -> Result<Self, KeyParseError> {
        parse_key32(text).map(HmacKey)
    }

    /// HMAC-SHA256 over the concatenation of `parts`, with a domain-separation `context`
    /// first so the same key used twice by mistake still gives unrelated outputs.
    pub(crate) fn mac(&self, context: &[u8], parts: &[&[u8]]) -> [u8; 32] {
        let mut mac = new_hmac(&self.0);
        mac.update(context);
        mac.update(&[0]);
        for p in parts {
            mac.update(p);
        }
        mac.finalize().into_bytes().into()
    }
}

impl fmt::Debug for HmacKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("HmacKey(***)")
    }
}

/// An HMAC-SHA256 instance for `key`.
pub(crate) fn new_hmac(key: &[u8]) -> Hmac<Sha256> {
    #[allow(clippy::expect_used)] // HMAC takes keys of any length (RFC 2104): this cannot fail.
    <Hmac<Sha256> as Mac>::new_from_slice(key).expect("HMAC accepts any key length")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_hex_and_base64() {
        let hex = "000102030405060708090a0b0c0d0e0f101112131415161718191a1b1c1d1e1F";
        let k = parse_key32(hex).unwrap();
        assert_eq!(k[31], 0x1f);
        let b64 = "AAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwdHh8=";
        assert_eq!(parse_key32(b64).unwrap(), k);
    }

    #[test]
    fn errors_are_clear() {
        assert_eq!(parse_key32("abc"), Err(KeyParseError::BadLength(3)));
        let mut bad = "0".repeat(63);
        bad.push('g');
        assert_eq!(parse_key32(&bad), Err(KeyParseError::BadHex { position: 64 }));
        assert_eq!(parse_key32(&"!".repeat(44)), Err(KeyParseError::BadBase64));
        assert!(KeyParseError::BadLength(3).to_string().contains("openssl rand -hex 32"));
    }

    #[test]
    fn debug_masks() {
        let k = HmacKey::new([7; 32]);
        assert_eq!(format!("{k:?}"), "HmacKey(***)");
    }
}
