//! Small cryptographic helpers: HMAC-SHA-256 (RFC 2104, written out over `sha2` so there is
//! no fallible key constructor to unwrap), constant-time comparison, base64url without
//! padding, hex, and the key ring used for rotation.

use sha2::{Digest, Sha256};
use subtle::ConstantTimeEq;

/// Raw HMAC-SHA-256 of one message (no separators); used for the RFC 4231 known answers.
#[cfg(test)]
pub(crate) fn hmac_raw(key: &[u8], msg: &[u8]) -> [u8; 32] {
    HmacKey::new(key).mac_with(|inner| inner.update(msg))
}

/// An HMAC-SHA-256 (RFC 2104) key with its two padded key blocks already hashed, so a MAC
/// of a short message costs two compressions rather than four. Keys used on every request
/// (references, sessions, pass cookies) are kept in this form.
#[derive(Clone)]
pub(crate) struct HmacKey {
    inner: Sha256,
    outer: Sha256,
}

impl HmacKey {
    pub(crate) fn new(key: &[u8]) -> Self {
        let mut block = [0u8; 64];
        if key.len() > 64 {
            block[..32].copy_from_slice(&Sha256::digest(key));
        } else {
            block[..key.len()].copy_from_slice(key);
        }
        let mut inner = Sha256::new();
        inner.update(block.map(|b| b ^ 0x36));
        let mut outer = Sha256::new();
        outer.update(block.map(|b| b ^ 0x5c));
        HmacKey { inner, outer }
    }

    /// HMAC-SHA-256 over the concatenation of `parts`, each followed by a 0x1f separator so
    /// that `("ab", "c")` and `("a", "bc")` never collide.
    pub(crate) fn mac(&self, parts: &[&[u8]]) -> [u8; 32] {
        self.mac_with(|inner| feed_parts(inner, parts))
    }

    /// The MAC of what `message` feeds to the inner hash.
    fn mac_with(&self, message: impl FnOnce(&mut Sha256)) -> [u8; 32] {
        let mut inner = self.inner.clone();
        message(&mut inner);
        let mut outer = self.outer.clone();
        outer.update(inner.finalize());
        outer.finalize().into()
    }
}

fn feed_parts(hash: &mut Sha256, parts: &[&[u8]]) {
    for part in parts {
        hash.update(part);
        hash.update([0x1f]);
    }
}

/// SHA-256 of `data`.
pub(crate) fn sha256(data: &[u8]) -> [u8; 32] {
    Sha256::digest(data).into()
}

/// Constant-time equality of two byte strings (length is not secret).
pub(crate) fn ct_eq(a: &[u8], b: &[u8]) -> bool {
    a.len() == b.len() && bool::from(a.ct_eq(b))
}

const B64: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";

/// base64url (RFC 4648 §5) without padding.
pub(crate) fn b64url(data: &[u8]) -> String {
    let mut out = String::with_capacity(data.len().div_ceil(3) * 4);
    for chunk in data.chunks(3) {
        let b = [chunk[0], *chunk.get(1).unwrap_or(&0), *chunk.get(2).unwrap_or(&0)];
        let n = (u32::from(b[0]) << 16) | (u32::from(b[1]) << 8) | u32::from(b[2]);
        let chars = chunk.len() + 1;
        for i in 0..chars {
            out.push(char::from(B64[((n >> (18 - 6 * i)) & 63) as usize]));
        }
    }
    out
}

/// Decodes unpadded base64url; `None` on any character outside the alphabet, a bad length, or
/// unused low bits that are not zero (every value has one spelling, so a pass cookie cannot be
/// altered in its last character and still verify).
pub(crate) fn b64url_decode(text: &str) -> Option<Vec<u8>> {
    let val = |c: u8| -> Option<u32> {
        Some(match c {
            b'A'..=b'Z' => c - b'A',
            b'a'..=b'z' => c - b'a' + 26,
            b'0'..=b'9' => c - b'0' + 52,
            b'-' => 62,
            b'_' => 63,
            _ => return None,
        } as u32)
    };
    let bytes = text.as_bytes();
    if bytes.len() % 4 == 1 {
        return None;
    }
    let mut out = Vec::with_capacity(bytes.len() * 3 / 4);
    for chunk in bytes.chunks(4) {
        let mut n = 0u32;
        for (i, &c) in chunk.iter().enumerate() {
            n |= val(c)? << (18 - 6 * i);
        }
        let unused = match chunk.len() {
            2 => n & 0xFFFF,
            3 => n & 0xFF,
            _ => 0,
        };
        if unused != 0 {
            return None;
        }
        out.push((n >> 16) as u8);
        if chunk.len() > 2 {
            out.push((n >> 8) as u8);
        }
        if chunk.len() > 3 {
            out.push(n as u8);
        }
    }
    Some(out)
}

/// Lowercase hex.
pub(crate) fn hex(data: &[u8]) -> String {
    let mut out = String::with_capacity(data.len() * 2);
    push_hex(&mut out, data);
    out
}

/// [`hex`] appended to `out`.
pub(crate) fn push_hex(out: &mut String, data: &[u8]) {
    for b in data {
        let [hi, lo] = hex_pair(*b);
        out.push(char::from(hi));
        out.push(char::from(lo));
    }
}

/// As many leading bytes of `data` as `out` has room for, in hex, written into `out`.
pub(crate) fn hex_into(out: &mut [u8], data: &[u8]) {
    for (pair, b) in out.chunks_exact_mut(2).zip(data) {
        pair.copy_from_slice(&hex_pair(*b));
    }
}

fn hex_pair(b: u8) -> [u8; 2] {
    const H: &[u8; 16] = b"0123456789abcdef";
    [H[usize::from(b >> 4)], H[usize::from(b & 15)]]
}

/// The current signing key and the previous ones still accepted for verification.
#[derive(Clone)]
pub(crate) struct Keys {
    current: HmacKey,
    previous: Vec<HmacKey>,
}

impl std::fmt::Debug for Keys {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "Keys {{ current: <redacted>, previous: {} <redacted> }}",
            self.previous.len()
        )
    }
}

impl Keys {
    pub(crate) fn new(current: &str, previous: &[String]) -> Self {
        Keys {
            current: HmacKey::new(current.as_bytes()),
            previous: previous.iter().map(|k| HmacKey::new(k.as_bytes())).collect(),
        }
    }

    /// Signs with the current key.
    pub(crate) fn sign(&self, domain: &[u8], parts: &[&[u8]]) -> [u8; 32] {
        sign_with(&self.current, domain, parts)
    }

    /// True when `mac` is the signature of `parts` under the current or any previous key.
    pub(crate) fn verify(&self, domain: &[u8], parts: &[&[u8]], mac: &[u8]) -> bool {
        let mut ok = false;
        // Every key is tried (no early exit) so timing does not tell which key matched.
        for key in std::iter::once(&self.current).chain(self.previous.iter()) {
            ok |= ct_eq(&sign_with(key, domain, parts), mac);
        }
        ok
    }

    /// Like [`Keys::verify`] for a MAC truncated to `mac.len()` bytes (8 to 32).
    pub(crate) fn verify_truncated(&self, domain: &[u8], parts: &[&[u8]], mac: &[u8]) -> bool {
        if mac.len() < 8 || mac.len() > 32 {
            return false;
        }
        let mut ok = false;
        for key in std::iter::once(&self.current).chain(self.previous.iter()) {
            let full = sign_with(key, domain, parts);
            ok |= ct_eq(full.get(..mac.len()).unwrap_or(&[]), mac);
        }
        ok
    }

    /// A key for another purpose derived from the current one (domain separation).
    pub(crate) fn derive(&self, purpose: &[u8]) -> [u8; 32] {
        self.current.mac(&[b"wikiguard-derive", purpose])
    }
}

/// The MAC of `domain` followed by `parts` (as [`HmacKey::mac`] of `[domain, parts…]`).
fn sign_with(key: &HmacKey, domain: &[u8], parts: &[&[u8]]) -> [u8; 32] {
    key.mac_with(|inner| {
        feed_parts(inner, &[domain]);
        feed_parts(inner, parts);
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hmac_rfc4231_case_1_and_6() {
        let out = hmac_raw(&[0x0b; 20], b"Hi There");
        assert_eq!(
            hex(&out),
            "b0344c61d8db38535ca8afceaf0bf12b881dc200c9833da726e9376c2e32cff7"
        );
        let out = hmac_raw(&[0xaa; 131], b"Test Using Larger Than Block-Size Key - Hash Key First");
        assert_eq!(
            hex(&out),
            "60e431591ee0b67f0d8a26aacbf5b77f8e0bc6213728c5140546040f0ee37f54"
        );
    }

    #[test]
    fn base64url_round_trips() {
        for len in 0..40 {
            let data: Vec<u8> = (0..len).map(|i| (i * 37 + 11) as u8).collect();
            assert_eq!(b64url_decode(&b64url(&data)).as_deref(), Some(&data[..]));
        }
        assert_eq!(b64url(b"\xfb\xff"), "-_8");
        assert_eq!(b64url_decode("a"), None);
        assert_eq!(b64url_decode("a=b="), None);
    }

    #[test]
    fn rotation_verifies_previous_keys() {
        let old = Keys::new("old-key-old-key-old-key-old-key-!", &[]);
        let new = Keys::new(
            "new-key-new-key-new-key-new-key-!",
            &["old-key-old-key-old-key-old-key-!".into()],
        );
        let mac = old.sign(b"d", &[b"x"]);
        assert!(new.verify(b"d", &[b"x"], &mac));
        assert!(!new.verify(b"e", &[b"x"], &mac));
        let fresh = Keys::new("new-key-new-key-new-key-new-key-!", &[]);
        assert!(!fresh.verify(b"d", &[b"x"], &mac));
    }
}
