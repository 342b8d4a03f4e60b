//! [`IpSet`]: a set of IPv4 and IPv6 CIDR ranges in a binary prefix trie, so a lookup costs
//! at most 32 (or 128) steps however many thousands of ranges a policy lists.

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

use crate::GateError;

const NONE: u32 = u32::MAX;

#[derive(Debug, Clone, Copy)]
struct Node {
    child: [u32; 2],
    terminal: bool,
}

impl Node {
    const EMPTY: Node = Node {
        child: [NONE, NONE],
        terminal: false,
    };
}

/// One binary trie over the address bits, most significant first.
#[derive(Debug, Clone)]
struct Trie {
    nodes: Vec<Node>,
}

impl Trie {
    fn new() -> Self {
        Trie {
            nodes: vec![Node::EMPTY],
        }
    }

    fn insert(&mut self, bits: u128, width: u32, len: u32) {
        let mut at = 0usize;
        for i in 0..len {
            if self.nodes[at].terminal {
                return; // a shorter range already covers this one
            }
            let bit = ((bits >> (width - 1 - i)) & 1) as usize;
            let next = self.nodes[at].child[bit];
            at = if next == NONE {
                self.nodes.push(Node::EMPTY);
                let idx = self.nodes.len() - 1;
                self.nodes[at].child[bit] = idx as u32;
                idx
            } else {
                next as usize
            };
        }
        self.nodes[at].terminal = true;
        // The subtree below is now redundant; leaving it costs memory only, not correctness.
        self.nodes[at].child = [NONE, NONE];
    }

    fn contains(&self, bits: u128, width: u32) -> bool {
        let mut at = 0usize;
        for i in 0..=width {
            let Some(node) = self.nodes.get(at) else { return false };
            if node.terminal {
                return true;
            }
            if i == width {
                return false;
            }
            let bit = ((bits >> (width - 1 - i)) & 1) as usize;
            let next = node.child[bit];
            if next == NONE {
                return false;
            }
            at = next as usize;
        }
        false
    }
}

/// Up to this many ranges per family are also kept as a list, scanned instead of walking the
/// trie: the trusted-proxy and good-bot sets every request consults are a handful of ranges,
/// where a few mask-and-compares beat up to 32 dependent steps through the trie.
const SCAN_MAX: usize = 8;

/// A set of CIDR ranges (IPv4 and IPv6). IPv4-mapped IPv6 addresses (`::ffff:192.0.2.1`) are
/// looked up as the IPv4 address they carry.
#[derive(Debug, Clone)]
pub struct IpSet {
    v4: Trie,
    v6: Trie,
    /// `(network, mask)` of every IPv4 range while there are at most [`SCAN_MAX`].
    v4_list: Option<Vec<(u32, u32)>>,
    /// The same for IPv6.
    v6_list: Option<Vec<(u128, u128)>>,
    len: usize,
}

impl Default for IpSet {
    fn default() -> Self {
        IpSet::new()
    }
}

impl IpSet {
    /// An empty set.
    pub fn new() -> Self {
        IpSet {
            v4: Trie::new(),
            v6: Trie::new(),
            v4_list: Some(Vec::new()),
            v6_list: Some(Vec::new()),
            len: 0,
        }
    }

    /// Parses ranges such as `"192.0.2.0/24"`, `"2001:db8::/32"` or a bare address (a /32 or
    /// /128). Host bits below the prefix are ignored. Fails on the first bad entry, naming it.
    pub fn parse(ranges: &[String]) -> Result<IpSet, GateError> {
        let mut set = IpSet::new();
        for range in ranges {
            let (addr, len) = parse_cidr(range)?;
            set.insert(addr, len);
        }
        Ok(set)
    }

    /// Adds `addr/len` (`len` is clamped to the address width).
    pub fn insert(&mut self, addr: IpAddr, len: u8) {
        match canonical(addr) {
            IpAddr::V4(a) => {
                let len = u32::from(len.min(32));
                self.v4.insert(u128::from(u32::from(a)), 32, len);
                let mask = u32::MAX.checked_shl(32 - len).unwrap_or(0);
                push_scanned(&mut self.v4_list, (u32::from(a) & mask, mask));
            }
            IpAddr::V6(a) => {
                let len = u32::from(len.min(128));
                self.v6.insert(u128::from(a), 128, len);
                let mask = u128::MAX.checked_shl(128 - len).unwrap_or(0);
                push_scanned(&mut self.v6_list, (u128::from(a) & mask, mask));
            }
        }
        self.len += 1;
    }

    /// True when `ip` lies in one of the ranges.
    pub fn contains(&self, ip: IpAddr) -> bool {
        match canonical(ip) {
            IpAddr::V4(a) => match &self.v4_list {
                Some(list) => list.iter().any(|(net, mask)| u32::from(a) & mask == *net),
                None => self.v4.contains(u128::from(u32::from(a)), 32),
            },
            IpAddr::V6(a) => match &self.v6_list {
                Some(list) => list.iter().any(|(net, mask)| u128::from(a) & mask == *net),
                None => self.v6.contains(u128::from(a), 128),
            },
        }
    }

    /// How many ranges were inserted (duplicates and covered ranges included).
    pub fn len(&self) -> usize {
        self.len
    }

    /// True when no range was inserted.
    pub fn is_empty(&self) -> bool {
        self.len == 0
    }
}

/// Adds a range to a scan list, or drops the list (the trie answers) once it passes SCAN_MAX.
fn push_scanned<T>(list: &mut Option<Vec<T>>, range: T) {
    if let Some(l) = list {
        if l.len() < SCAN_MAX {
            l.push(range);
        } else {
            *list = None;
        }
    }
}

/// Parses one `addr[/len]`.
pub fn parse_cidr(text: &str) -> Result<(IpAddr, u8), GateError> {
    let err = |message: &str| GateError::Cidr {
        value: text.to_string(),
        message: message.to_string(),
    };
    let trimmed = text.trim();
    let (addr, len) = match trimmed.split_once('/') {
        Some((a, l)) => (a, Some(l)),
        None => (trimmed, None),
    };
    let addr: IpAddr = addr.parse().map_err(|_| err("not an IPv4 or IPv6 address"))?;
    let max = if addr.is_ipv4() { 32 } else { 128 };
    let len = match len {
        None => max,
        Some(l) => {
            let l: u8 = l.parse().map_err(|_| err("the prefix length is not a number"))?;
            if l > max {
                return Err(err(&format!("the prefix length is larger than {max}")));
            }
            l
        }
    };
    // ::ffff:a.b.c.d/len is stored as the IPv4 range it means.
    if let IpAddr::V6(v6) = addr {
        if let Some(v4) = v6.to_ipv4_mapped() {
            if len >= 96 {
                return Ok((IpAddr::V4(v4), len - 96));
            }
        }
    }
    Ok((addr, len))
}

/// IPv4-mapped IPv6 addresses become IPv4.
pub(crate) fn canonical(ip: IpAddr) -> IpAddr {
    match ip {
        IpAddr::V6(v6) => match v6.to_ipv4_mapped() {
            Some(v4) => IpAddr::V4(v4),
            None => IpAddr::V6(v6),
        },
        v4 => v4,
    }
}

/// The network a client is counted in: its /24 for IPv4, its /64 for IPv6 (one household or
/// one hosting customer, typically), as text such as `"203.0.113.0/24"`.
pub fn client_prefix(ip: IpAddr) -> String {
    let mut out = String::new();
    write_client_prefix(&mut out, ip);
    out
}

/// [`client_prefix`] appended to `out`.
pub(crate) fn write_client_prefix(out: &mut String, ip: IpAddr) {
    use std::fmt::Write;
    match canonical(ip) {
        IpAddr::V4(a) => {
            push_ipv4(out, Ipv4Addr::from(u32::from(a) & 0xffff_ff00));
            out.push_str("/24");
        }
        IpAddr::V6(a) => {
            let _ = write!(out, "{}/64", Ipv6Addr::from(u128::from(a) & !((1u128 << 64) - 1)));
        }
    }
}

/// The address's usual text (as `Display` writes it) appended to `out`. Every rate-limited
/// request names its client in a counter key, so IPv4 skips the formatting machinery.
pub fn push_ip(out: &mut String, ip: IpAddr) {
    use std::fmt::Write;
    match ip {
        IpAddr::V4(a) => push_ipv4(out, a),
        IpAddr::V6(a) => {
            let _ = write!(out, "{a}");
        }
    }
}

fn push_ipv4(out: &mut String, a: Ipv4Addr) {
    for (i, n) in a.octets().into_iter().enumerate() {
        if i > 0 {
            out.push('.');
        }
        if n >= 100 {
            out.push(char::from(b'0' + n / 100));
        }
        if n >= 10 {
            out.push(char::from(b'0' + n / 10 % 10));
        }
        out.push(char::from(b'0' + n % 10));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn set(r: &[&str]) -> IpSet {
        IpSet::parse(&r.iter().map(|s| s.to_string()).collect::<Vec<_>>()).unwrap()
    }

    #[test]
    fn push_ip_writes_what_display_writes() {
        for a in [
            0u32,
            1,
            9,
            10,
            99,
            100,
            199,
            255,
            0x0a00_0001,
            0xc000_0207,
            0xffff_ffff,
            0x6464_0a0a,
        ] {
            let ip = IpAddr::V4(Ipv4Addr::from(a));
            let mut out = String::from("k|");
            push_ip(&mut out, ip);
            assert_eq!(out, format!("k|{ip}"));
        }
        let ip: IpAddr = "2001:db8::1".parse().unwrap();
        let mut out = String::new();
        push_ip(&mut out, ip);
        assert_eq!(out, "2001:db8::1");
    }

    proptest::proptest! {
        #[test]
        fn push_ip_matches_display(a: u32, b: u128) {
            for ip in [IpAddr::V4(Ipv4Addr::from(a)), IpAddr::V6(Ipv6Addr::from(b))] {
                let mut out = String::new();
                push_ip(&mut out, ip);
                proptest::prop_assert_eq!(&out, &ip.to_string());
                let mut prefix = String::new();
                write_client_prefix(&mut prefix, ip);
                let (net, len) = prefix.split_once('/').unwrap();
                let net: IpAddr = net.parse().unwrap();
                let expected = match canonical(ip) {
                    IpAddr::V4(v4) => (IpAddr::V4(Ipv4Addr::from(u32::from(v4) & 0xffff_ff00)), "24"),
                    IpAddr::V6(v6) => (IpAddr::V6(Ipv6Addr::from(u128::from(v6) >> 64 << 64)), "64"),
                };
                proptest::prop_assert_eq!((net, len), expected);
            }
        }
    }

    proptest::proptest! {
        #[test]
        fn short_lists_answer_as_the_trie(
            v4 in proptest::collection::vec((proptest::num::u32::ANY, 0u8..=32), 0..12),
            v6 in proptest::collection::vec((proptest::num::u128::ANY, 0u8..=128), 0..12),
            probes in proptest::collection::vec(proptest::num::u32::ANY, 1..40),
        ) {
            let mut set = IpSet::new();
            for (a, l) in &v4 {
                set.insert(IpAddr::V4(Ipv4Addr::from(*a)), *l);
            }
            for (a, l) in &v6 {
                set.insert(IpAddr::V6(Ipv6Addr::from(*a)), *l);
            }
            proptest::prop_assert_eq!(set.v4_list.is_some(), v4.len() <= SCAN_MAX);
            // Probe the ranges' own networks, their neighbours and random addresses.
            let mut ips: Vec<IpAddr> = probes.iter().map(|p| IpAddr::V4(Ipv4Addr::from(*p))).collect();
            for (a, _) in &v4 {
                ips.extend([a.wrapping_sub(1), *a, a.wrapping_add(1)].map(|x| IpAddr::V4(Ipv4Addr::from(x))));
            }
            for (a, _) in &v6 {
                ips.extend([a.wrapping_sub(1), *a, a.wrapping_add(1)].map(|x| IpAddr::V6(Ipv6Addr::from(x))));
            }
            for ip in ips {
                let trie = match canonical(ip) {
                    IpAddr::V4(a) => set.v4.contains(u128::from(u32::from(a)), 32),
                    IpAddr::V6(a) => set.v6.contains(u128::from(a), 128),
                };
                proptest::prop_assert_eq!(set.contains(ip), trie, "{}", ip);
            }
        }
    }

    #[test]
    fn basic_membership() {
        let s = set(&["10.0.0.0/8", "192.0.2.7", "2001:db8::/32", "0.0.0.0/0"][..3]);
        assert!(s.contains("10.1.2.3".parse().unwrap()));
        assert!(!s.contains("11.0.0.1".parse().unwrap()));
        assert!(s.contains("2001:db8:1::5".parse().unwrap()));
        assert!(!s.contains("2001:db9::1".parse().unwrap()));
        assert!(s.contains("::ffff:10.9.9.9".parse().unwrap()));
        let all = set(&["0.0.0.0/0"]);
        assert!(all.contains("1.2.3.4".parse().unwrap()));
        assert!(!all.contains("::1".parse().unwrap()));
    }

    #[test]
    fn bad_ranges_are_named() {
        let e = IpSet::parse(&["10.0.0.0/33".to_string()]).unwrap_err();
        assert_eq!(
            e.to_string(),
            "invalid IP range \"10.0.0.0/33\": the prefix length is larger than 32"
        );
        assert!(IpSet::parse(&["bogus".to_string()]).is_err());
        assert!(IpSet::parse(&["10.0.0.0/x".to_string()]).is_err());
    }

    #[test]
    fn prefixes() {
        assert_eq!(client_prefix("203.0.113.77".parse().unwrap()), "203.0.113.0/24");
        assert_eq!(
            client_prefix("2001:db8:1:2:3:4:5:6".parse().unwrap()),
            "2001:db8:1:2::/64"
        );
        assert_eq!(client_prefix("::ffff:203.0.113.77".parse().unwrap()), "203.0.113.0/24");
    }
}
