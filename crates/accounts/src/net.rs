//! Network prefixes: the unit in which throttles and new-device notices think about
//! networks. A home or office usually keeps its IPv4 /24 or IPv6 /64 while single addresses
//! change (DHCP, privacy extensions), so counting per prefix catches an attacker hopping
//! addresses inside one network without blaming the whole Internet.

use std::fmt;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

/// A network prefix: the address with its host bits cleared, and the prefix length.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct Prefix {
    /// The network address.
    pub network: IpAddr,
    /// The prefix length in bits.
    pub len: u8,
}

impl fmt::Display for Prefix {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}/{}", self.network, self.len)
    }
}

/// The address itself, with IPv4-mapped IPv6 addresses (`::ffff:a.b.c.d`) turned into IPv4,
/// so one client is not counted under two names.
pub fn canonical(ip: IpAddr) -> IpAddr {
    match ip {
        IpAddr::V6(v6) => match v6.to_ipv4_mapped() {
            Some(v4) => IpAddr::V4(v4),
            None => IpAddr::V6(v6),
        },
        v4 => v4,
    }
}

/// The /24 (IPv4) or /64 (IPv6) containing `ip`.
pub fn network_prefix(ip: IpAddr) -> Prefix {
    match canonical(ip) {
        IpAddr::V4(v4) => {
            let o = v4.octets();
            Prefix {
                network: IpAddr::V4(Ipv4Addr::new(o[0], o[1], o[2], 0)),
                len: 24,
            }
        }
        IpAddr::V6(v6) => {
            let bits = u128::from(v6) & !((1u128 << 64) - 1);
            Prefix {
                network: IpAddr::V6(Ipv6Addr::from(bits)),
                len: 64,
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn prefixes() {
        let p = network_prefix("192.0.2.77".parse().unwrap());
        assert_eq!(p.to_string(), "192.0.2.0/24");
        let p = network_prefix("2001:db8:1:2:3:4:5:6".parse().unwrap());
        assert_eq!(p.to_string(), "2001:db8:1:2::/64");
        let p = network_prefix("::ffff:198.51.100.9".parse().unwrap());
        assert_eq!(p.to_string(), "198.51.100.0/24");
    }
}
