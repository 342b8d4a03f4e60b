//! IP addresses and ranges as MediaWiki's `IPUtils` reads them, for `ip_in_range(s)`.

use std::net::Ipv6Addr;

/// An address as a 128-bit number plus its family (IPv4 addresses are not mapped into IPv6:
/// IPUtils never matches an IPv4 address against an IPv6 range or the reverse).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Addr {
    V4(u32),
    V6(u128),
}

/// IPUtils' IPv4 byte: `25[0-5]|2[0-4][0-9]|1[0-9][0-9]|0?[0-9]?[0-9]` (a leading zero is allowed).
fn parse_v4(s: &str) -> Option<u32> {
    let parts: Vec<&str> = s.split('.').collect();
    if parts.len() != 4 {
        return None;
    }
    let mut out = 0u32;
    for p in parts {
        if p.is_empty() || p.len() > 3 || !p.bytes().all(|b| b.is_ascii_digit()) {
            return None;
        }
        let v: u32 = p.parse().ok()?;
        if v > 255 {
            return None;
        }
        out = (out << 8) | v;
    }
    Some(out)
}

fn parse_addr(s: &str) -> Option<Addr> {
    let s = s.trim();
    if let Some(v4) = parse_v4(s) {
        return Some(Addr::V4(v4));
    }
    if s.contains(':') {
        if let Ok(v6) = s.parse::<Ipv6Addr>() {
            return Some(Addr::V6(u128::from(v6)));
        }
    }
    None
}

/// An inclusive range of addresses of one family.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Range {
    v6: bool,
    first: u128,
    last: u128,
}

fn split(a: Addr) -> (bool, u128, u32) {
    match a {
        Addr::V4(v) => (false, u128::from(v), 32),
        Addr::V6(v) => (true, v, 128),
    }
}

/// Parses `a.b.c.d/n`, `a:b::/n`, `first - last` (spaces optional), or a single address, as
/// `IPUtils::isValidRange || isIPAddress` accepts them. `None` is AbuseFilter's `invalidiprange`.
pub fn parse_range(s: &str) -> Option<Range> {
    if let Some((a, n)) = s.split_once('/') {
        if n.is_empty() || n.len() > 3 || !n.bytes().all(|b| b.is_ascii_digit()) {
            return None;
        }
        let prefix: u32 = n.parse().ok()?;
        let (v6, addr, bits) = split(parse_addr(a)?);
        if prefix > bits {
            return None;
        }
        let host_bits = bits - prefix;
        let mask = if host_bits == 128 { u128::MAX } else { (1u128 << host_bits) - 1 };
        return Some(Range { v6, first: addr & !mask, last: addr | mask });
    }
    if let Some((a, b)) = s.split_once('-') {
        let a = a.strip_suffix(' ').unwrap_or(a);
        let b = b.strip_prefix(' ').unwrap_or(b);
        let (v6a, first, _) = split(parse_addr_exact(a)?);
        let (v6b, last, _) = split(parse_addr_exact(b)?);
        return (v6a == v6b).then_some(Range { v6: v6a, first, last });
    }
    let (v6, addr, _) = split(parse_addr_exact(s)?);
    Some(Range { v6, first: addr, last: addr })
}

/// An address with no surrounding spaces (range syntax allows none).
fn parse_addr_exact(s: &str) -> Option<Addr> {
    if s.trim() != s {
        return None;
    }
    parse_addr(s)
}

/// Whether `ip` lies in `range`; an unparsable address is in no range.
pub fn in_range(ip: &str, range: &Range) -> bool {
    match parse_addr(ip).map(split) {
        Some((v6, a, _)) => v6 == range.v6 && range.first <= a && a <= range.last,
        None => false,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ranges() {
        let r = parse_range("1.2.3.0/24");
        assert!(r.is_some_and(|r| in_range("1.2.3.4", &r)));
        assert!(r.is_some_and(|r| !in_range("1.2.4.4", &r)));
        assert!(parse_range("::1").is_some_and(|r| in_range("0:0::1", &r)));
        assert!(parse_range("2001:db8::/32").is_some_and(|r| in_range("2001:db8:1::5", &r)));
        assert!(parse_range("2001:db8::/32").is_some_and(|r| !in_range("1.2.3.4", &r)));
        assert_eq!(parse_range("1.2.3.0/33"), None);
        assert_eq!(parse_range("300.1.1.1"), None);
        assert_eq!(parse_range("nonsense"), None);
        assert!(parse_range("0.0.0.0/0").is_some_and(|r| in_range("9.9.9.9", &r)));
        assert!(parse_range("123.0.0.0 - 124.0.0.0").is_some_and(|r| in_range("123.200.1.1", &r)));
        assert!(parse_range("123.0.0.0-124.0.0.0").is_some_and(|r| !in_range("124.0.0.1", &r)));
    }
}
