//! IP addresses and ranges as MediaWiki's `IPUtils` reads them, for `ip_in_range(s)`.
//!
//! `IPUtils` works on strings: an address becomes an upper-case hex key (`0A000001`, or
//! `v6-` and 32 digits), a range becomes the keys of its ends, and membership is `strcmp`.
//! Its validity check (a regex) and its parser (PHP's `ip2long`, which refuses leading zeros)
//! disagree on some inputs, and AbuseFilter shows the result of both: a range that passes
//! the check but does not parse compares as the empty string, so it contains exactly the
//! addresses that do not parse either. We keep those semantics rather than "fix" them, so a
//! wiki's filters answer as they did under AbuseFilter.

/// A range that AbuseFilter accepted; `bounds` is `None` where `IPUtils::parseRange` failed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Range {
    bounds: Option<(String, String)>,
}

/// PHP's `/^…$/`: `$` also matches before one final newline.
fn anchored(s: &str) -> &str {
    s.strip_suffix('\n').unwrap_or(s)
}

/// `RE_IP_BYTE`: 1 to 3 digits worth at most 255 (leading zeros allowed).
fn is_byte(s: &str) -> bool {
    (1..=3).contains(&s.len()) && s.bytes().all(|b| b.is_ascii_digit()) && s.parse::<u32>().is_ok_and(|v| v <= 255)
}

/// `RE_IP_ADD`.
fn is_v4_add(s: &str) -> bool {
    let mut n = 0;
    for part in s.split('.') {
        n += 1;
        if n > 4 || !is_byte(part) {
            return false;
        }
    }
    n == 4
}

/// A prefix length in `RE_IP_PREFIX` / `RE_IPV6_PREFIX`: no leading zero, at most `max`.
fn is_prefix(s: &str, max: u32) -> bool {
    !s.is_empty()
        && s.len() <= 3
        && s.bytes().all(|b| b.is_ascii_digit())
        && (s.len() == 1 || !s.starts_with('0'))
        && s.parse::<u32>().is_ok_and(|v| v <= max)
}

fn is_word(s: &str) -> bool {
    (1..=4).contains(&s.len()) && s.bytes().all(|b| b.is_ascii_hexdigit())
}

fn words(s: &str) -> Option<usize> {
    let mut n = 0;
    for w in s.split(':') {
        if !is_word(w) {
            return None;
        }
        n += 1;
    }
    Some(n)
}

/// `RE_IPV6_ADD`: eight words, or at most seven around exactly one `::` (no dotted quads).
fn is_v6_add(s: &str) -> bool {
    match s.split_once("::") {
        None => words(s) == Some(8),
        Some((a, b)) => {
            let left = if a.is_empty() { Some(0) } else { words(a) };
            let right = if b.is_empty() { Some(0) } else { words(b) };
            matches!((left, right), (Some(l), Some(r)) if l + r <= 7)
        }
    }
}

/// An address with an optional `/prefix`, as `isIPv4` / `isIPv6` accept it.
fn with_prefix(s: &str, add: fn(&str) -> bool, max: u32) -> bool {
    let s = anchored(s);
    match s.split_once('/') {
        Some((a, p)) => add(a) && is_prefix(p, max),
        None => add(s),
    }
}

fn is_ipv4(s: &str) -> bool {
    with_prefix(s, is_v4_add, 32)
}

fn is_ipv6(s: &str) -> bool {
    with_prefix(s, is_v6_add, 128)
}

/// `isIPAddress`: an address of either family, with an optional prefix.
fn is_ip_address(s: &str) -> bool {
    is_ipv4(s) || is_ipv6(s)
}

/// `isValidRange`: `a/n`, or `a - b` (one optional space on each side) of one family.
fn is_valid_range(s: &str) -> bool {
    let s = anchored(s);
    if let Some((a, p)) = s.split_once('/') {
        return (is_v4_add(a) && is_prefix(p, 32)) || (is_v6_add(a) && is_prefix(p, 128));
    }
    let Some((a, b)) = s.split_once('-') else {
        return false;
    };
    let a = a.strip_suffix(' ').unwrap_or(a);
    let b = b.strip_prefix(' ').unwrap_or(b);
    (is_v4_add(a) && is_v4_add(b)) || (is_v6_add(a) && is_v6_add(b))
}

/// PHP's `trim` characters.
fn php_trim(s: &str) -> &str {
    s.trim_matches([' ', '\t', '\n', '\r', '\0', '\x0B'])
}

/// PHP's `ip2long` (through `inet_pton`): exactly four decimal octets, no leading zeros.
fn ip2long(s: &str) -> Option<u32> {
    let mut out = 0u32;
    let mut n = 0;
    for part in s.split('.') {
        n += 1;
        if n > 4 || part.is_empty() || part.len() > 3 || !part.bytes().all(|b| b.is_ascii_digit()) {
            return None;
        }
        if part.len() > 1 && part.starts_with('0') {
            return None;
        }
        let v: u32 = part.parse().ok()?;
        if v > 255 {
            return None;
        }
        out = (out << 8) | v;
    }
    (n == 4).then_some(out)
}

/// `sanitizeIP` for an IPv4 address: leading zeros of each octet dropped (one digit kept).
fn sanitize_v4(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    let mut at_octet_start = true;
    let bytes = s.as_bytes();
    for (i, &b) in bytes.iter().enumerate() {
        let next = bytes.get(i + 1).copied();
        if at_octet_start && b == b'0' && next.is_some_and(|n| n.is_ascii_digit()) {
            continue;
        }
        at_octet_start = b == b'.';
        out.push(char::from(b));
    }
    out
}

/// `sanitizeIP` for an IPv6 address (possibly with `/prefix`): upper case, `::` expanded,
/// leading zeros of each word dropped.
fn sanitize_v6(s: &str) -> String {
    let mut ip = s.to_ascii_uppercase();
    if let Some(pos) = ip.find("::") {
        let address_end = ip.find('/').unwrap_or(ip.len()).saturating_sub(1);
        let colons = ip.matches(':').count();
        let (repeat, extra, pad) = if pos == 0 {
            ("0:", if ip == "::" { "0" } else { "" }, 9usize)
        } else if pos + 1 == address_end {
            (":0", "", 9)
        } else {
            (":0", ":", 8)
        };
        let fill = repeat.repeat(pad.saturating_sub(colons)) + extra;
        ip = ip.replace("::", &fill);
    }
    // `(^|:)0+([0-9A-F]{1,4})` → `$1$2`
    ip.split(':')
        .map(|block| {
            let zeros = block.bytes().take_while(|&b| b == b'0').count();
            let rest = block.get(zeros..).unwrap_or_default();
            if zeros == 0 {
                block
            } else if rest.bytes().next().is_some_and(|b| b.is_ascii_hexdigit()) {
                rest
            } else {
                block.get(zeros - 1..).unwrap_or(block)
            }
        })
        .collect::<Vec<_>>()
        .join(":")
}

/// `IPv6ToRawHex`: each word of the sanitized form padded to four characters.
fn v6_raw_hex(s: &str) -> String {
    sanitize_v6(php_trim(s))
        .split(':')
        .map(|w| format!("{w:0>4}"))
        .collect()
}

/// `IPUtils::toHex`; `None` is PHP's `false`.
fn to_hex(ip: &str) -> Option<String> {
    if is_ipv6(ip) {
        Some(format!("v6-{}", v6_raw_hex(ip)))
    } else if is_ipv4(ip) {
        ip2long(&sanitize_v4(php_trim(ip))).map(|n| format!("{n:08X}"))
    } else {
        None
    }
}

/// PHP 8's `>` on two strings: numerically when both are numeric strings (a hex key such as
/// `1E000000` is one), by bytes otherwise.
fn php_str_gt(a: &str, b: &str) -> bool {
    fn numeric(s: &str) -> Option<f64> {
        let (m, e) = s.split_once(['e', 'E']).unwrap_or((s, "0"));
        let digits = |t: &str| !t.is_empty() && t.bytes().all(|b| b.is_ascii_digit());
        if digits(m) && digits(e) {
            s.parse().ok()
        } else {
            None
        }
    }
    match (numeric(a), numeric(b)) {
        (Some(x), Some(y)) => x > y,
        _ => a > b,
    }
}

fn v6_bounds(network: &str, bits: u32) -> Option<(String, String)> {
    let hex = v6_raw_hex(network);
    let addr = u128::from_str_radix(&hex, 16).ok()?;
    let host = 128 - bits.min(128);
    let mask = if host == 128 { u128::MAX } else { (1u128 << host) - 1 };
    Some((format!("v6-{:032X}", addr & !mask), format!("v6-{:032X}", addr | mask)))
}

fn explicit(a: &str, b: &str) -> Option<(String, String)> {
    let (start, end) = (to_hex(a)?, to_hex(b)?);
    (!php_str_gt(&start, &end)).then_some((start, end))
}

/// `IPUtils::parseRange` on a range that passed AbuseFilter's check.
fn parse_bounds(range: &str) -> Option<(String, String)> {
    if let Some((network, bits)) = range.split_once('/') {
        let bits: u32 = php_trim(bits).parse().ok()?;
        if is_ipv6(range) {
            let (network, _) = sanitize_v6(php_trim(range))
                .split_once('/')
                .map(|(n, b)| (n.to_owned(), b.to_owned()))?;
            return v6_bounds(&network, bits);
        }
        // parseCIDR hands the network to ip2long unsanitized: `10.01.0.0/16` does not parse.
        let network = ip2long(network)?;
        let host = 32 - bits.min(32);
        let mask = if host == 32 { u32::MAX } else { (1u32 << host) - 1 };
        let start = network & !mask;
        return Some((
            format!("{start:08X}"),
            format!("{:08X}", u64::from(start) + u64::from(mask)),
        ));
    }
    if let Some((a, b)) = range.split_once('-') {
        let (a, b) = (php_trim(a), php_trim(b));
        if (is_ipv6(a) && is_ipv6(b)) || (is_ipv4(a) && is_ipv4(b)) {
            return explicit(a, b);
        }
        return None;
    }
    let key = to_hex(range)?;
    Some((key.clone(), key))
}

/// A range as `ip_in_range` takes it: `None` where AbuseFilter throws `invalidiprange`
/// (`!isValidRange && !isIPAddress`).
pub fn parse_range(s: &str) -> Option<Range> {
    if !is_valid_range(s) && !is_ip_address(s) {
        return None;
    }
    Some(Range {
        bounds: parse_bounds(s),
    })
}

/// `IPUtils::isInRange`: `strcmp` of the keys, PHP's `false` reading as the empty string.
pub fn in_range(ip: &str, range: &Range) -> bool {
    let key = to_hex(ip).unwrap_or_default();
    let (start, end) = range
        .bounds
        .as_ref()
        .map_or(("", ""), |(s, e)| (s.as_str(), e.as_str()));
    key.as_str() >= start && key.as_str() <= end
}

#[cfg(test)]
mod tests {
    use super::*;

    fn hit(ip: &str, range: &str) -> Option<bool> {
        parse_range(range).map(|r| in_range(ip, &r))
    }

    #[test]
    fn ranges() {
        assert_eq!(hit("1.2.3.4", "1.2.3.0/24"), Some(true));
        assert_eq!(hit("1.2.4.4", "1.2.3.0/24"), Some(false));
        assert_eq!(hit("0:0::1", "::1"), Some(true));
        assert_eq!(hit("2001:db8:1::5", "2001:db8::/32"), Some(true));
        assert_eq!(hit("1.2.3.4", "2001:db8::/32"), Some(false));
        assert_eq!(hit("2001:db8::1", "0.0.0.0/0"), Some(false));
        assert_eq!(parse_range("1.2.3.0/33"), None);
        assert_eq!(parse_range("300.1.1.1"), None);
        assert_eq!(parse_range("nonsense"), None);
        assert_eq!(hit("9.9.9.9", "0.0.0.0/0"), Some(true));
        assert_eq!(hit("123.200.1.1", "123.0.0.0 - 124.0.0.0"), Some(true));
        assert_eq!(hit("124.0.0.1", "123.0.0.0-124.0.0.0"), Some(false));
        assert_eq!(hit("010.000.0.1", "10.0.0.0/8"), Some(true));
        assert_eq!(hit("2001:DB8::FFFF", "2001:db8::1 - 2001:db8::ffff"), Some(true));
    }

    #[test]
    fn ipv4_mapped_and_zoned_addresses_are_not_ranges() {
        assert_eq!(parse_range("::ffff:10.0.0.1"), None);
        assert_eq!(parse_range("fe80::1%eth0"), None);
        assert_eq!(parse_range("1::2::3"), None);
        assert_eq!(parse_range("1:2:3:4:5:6:7:8::"), None);
    }

    #[test]
    fn a_range_that_passes_the_check_but_not_ip2long_holds_only_unparsable_addresses() {
        // The octet `01` passes IPUtils' regex; ip2long refuses it.
        assert_eq!(hit("1.10.192.256", "10.01.192.1/31"), Some(true));
        assert_eq!(hit("10.1.192.1", "10.01.192.1/31"), Some(false));
        // A backwards explicit range does not parse either.
        assert_eq!(hit("nonsense", "1.2.3.4 - 1.2.3.1"), Some(true));
        assert_eq!(hit("1.2.3.2", "1.2.3.4 - 1.2.3.1"), Some(false));
    }

    #[test]
    fn sanitizing_follows_ipv6_expansion() {
        assert_eq!(sanitize_v6("::"), "0:0:0:0:0:0:0:0");
        assert_eq!(sanitize_v6("::1"), "0:0:0:0:0:0:0:1");
        assert_eq!(sanitize_v6("2001:0db8::"), "2001:DB8:0:0:0:0:0:0");
        assert_eq!(sanitize_v6("1::2"), "1:0:0:0:0:0:0:2");
        assert_eq!(sanitize_v6("2001:db8::/32"), "2001:DB8:0:0:0:0:0:0/32");
        assert_eq!(sanitize_v4("010.000.00.1"), "10.0.0.1");
    }

    #[test]
    fn numeric_hex_keys_compare_as_numbers() {
        // 30.0.0.7 is "1E000007", 1e7 to PHP, less than 25.0.0.0's 19000000: PHP finds
        // 25.0.0.0 - 30.0.0.7 backwards (checked against AbuseFilter 1.39).
        assert!(php_str_gt("19000000", "1E000007"));
        assert!(!php_str_gt("0A000000", "19000000"));
        assert_eq!(hit("nonsense", "25.0.0.0 - 30.0.0.7"), Some(true));
        assert_eq!(hit("26.0.0.0", "25.0.0.0 - 30.0.0.7"), Some(false));
        assert_eq!(hit("2001:db8::1/64", "2001:db8::/32"), Some(true));
        assert_eq!(hit("1.2.3.4\n", "1.2.3.4\n"), Some(true));
    }
}
