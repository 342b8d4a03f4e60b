//! RFC 4648 base32 (alphabet `A-Z2-7`), written without padding.
//!
//! Decoding is lenient where authenticator apps and OATHAuth are: lower case is accepted,
//! spaces and dashes (group separators) and trailing `=` padding are skipped. Anything else
//! is an error with its position.

const ALPHABET: &[u8; 32] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZ234567";

/// Why a base32 string was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum Base32Error {
    /// A character outside the base32 alphabet.
    #[error("character {ch:?} at position {position} is not base32 (A-Z, 2-7)")]
    InvalidChar {
        /// The character.
        ch: char,
        /// 1-based character position.
        position: usize,
    },
    /// A number of symbols no byte string encodes to (1, 3 or 6 modulo 8).
    #[error("{0} base32 symbols cannot encode whole bytes")]
    InvalidLength(usize),
}

/// Encodes `bytes` as upper-case base32 without padding.
pub fn encode(bytes: &[u8]) -> String {
    let mut out = String::with_capacity(bytes.len().div_ceil(5) * 8);
    let mut buffer: u32 = 0;
    let mut bits = 0u32;
    for &b in bytes {
        buffer = (buffer << 8) | u32::from(b);
        bits += 8;
        while bits >= 5 {
            bits -= 5;
            out.push(symbol((buffer >> bits) & 31));
        }
        buffer &= (1 << bits) - 1;
    }
    if bits > 0 {
        out.push(symbol((buffer << (5 - bits)) & 31));
    }
    out
}

fn symbol(v: u32) -> char {
    ALPHABET.get(v as usize).map_or('A', |&c| char::from(c))
}

/// Decodes base32 (see the module doc for what is tolerated).
pub fn decode(text: &str) -> Result<Vec<u8>, Base32Error> {
    let mut out = Vec::with_capacity(text.len() * 5 / 8);
    let mut buffer: u32 = 0;
    let mut bits = 0u32;
    let mut symbols = 0usize;
    let mut padding = false;
    for (i, ch) in text.chars().enumerate() {
        let v = match ch {
            'A'..='Z' => ch as u32 - 'A' as u32,
            'a'..='z' => ch as u32 - 'a' as u32,
            '2'..='7' => ch as u32 - '2' as u32 + 26,
            ' ' | '-' | '\t' | '\n' | '\r' if !padding => continue,
            '=' => {
                padding = true;
                continue;
            }
            _ => return Err(Base32Error::InvalidChar { ch, position: i + 1 }),
        };
        if padding {
            return Err(Base32Error::InvalidChar { ch, position: i + 1 });
        }
        symbols += 1;
        buffer = (buffer << 5) | v;
        bits += 5;
        if bits >= 8 {
            bits -= 8;
            out.push(((buffer >> bits) & 0xff) as u8);
            buffer &= (1 << bits) - 1;
        }
    }
    if matches!(symbols % 8, 1 | 3 | 6) {
        return Err(Base32Error::InvalidLength(symbols));
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn rfc4648_vectors() {
        for (plain, enc) in [
            ("", ""),
            ("f", "MY"),
            ("fo", "MZXQ"),
            ("foo", "MZXW6"),
            ("foob", "MZXW6YQ"),
            ("fooba", "MZXW6YTB"),
            ("foobar", "MZXW6YTBOI"),
        ] {
            assert_eq!(encode(plain.as_bytes()), enc);
            assert_eq!(decode(enc).unwrap(), plain.as_bytes());
        }
    }

    #[test]
    fn lenient_decoding() {
        assert_eq!(decode("mzxw 6ytb-oi======").unwrap(), b"foobar");
        assert_eq!(decode("MZ1"), Err(Base32Error::InvalidChar { ch: '1', position: 3 }));
        assert_eq!(decode("M"), Err(Base32Error::InvalidLength(1)));
        assert_eq!(decode("MY=A"), Err(Base32Error::InvalidChar { ch: 'A', position: 4 }));
    }

    proptest! {
        #[test]
        fn round_trip(bytes in proptest::collection::vec(any::<u8>(), 0..64)) {
            let enc = encode(&bytes);
            prop_assert!(!enc.contains('='));
            prop_assert_eq!(decode(&enc).unwrap(), bytes.clone());
            prop_assert_eq!(decode(&enc.to_lowercase()).unwrap(), bytes);
        }

        #[test]
        fn decode_never_panics(s in ".{0,80}") {
            let _ = decode(&s);
        }
    }
}
