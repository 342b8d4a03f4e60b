//! Which address is the client: the peer, unless the peer is a trusted proxy, in which case
//! the forwarding headers are walked from the right (the hop our trusted proxy appended),
//! skipping further trusted hops. Everything to the left of the first untrusted hop was
//! written by the client and could be anything, so it is never read.

use std::net::IpAddr;

use http::{HeaderMap, HeaderName};

use crate::IpSet;

/// Which forwarding header the trusted proxies write.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum ForwardedHeader {
    /// `X-Forwarded-For` when present, else `Forwarded` (what [`client_ip`] does).
    #[default]
    Auto,
    /// Only `X-Forwarded-For` (nginx `$proxy_add_x_forwarded_for`, HAProxy `option forwardfor`).
    XForwardedFor,
    /// Only RFC 7239 `Forwarded: for=…`.
    Forwarded,
}

/// The client address for a request that arrived from `peer`.
///
/// When `peer` is not in `trusted`, the headers are ignored entirely (any client can send
/// them). Otherwise `X-Forwarded-For` is used, or RFC 7239 `Forwarded` when there is no
/// `X-Forwarded-For`; the hops are walked from the right and the first one that is not a
/// trusted proxy is the client. When an entry cannot be parsed, the walk stops and the last
/// address known for sure (the trusted hop that appended the entry) is returned: a garbled
/// header must not let a client choose its address. When every hop is trusted, the leftmost
/// is returned.
///
/// If your proxies write only `Forwarded` while clients may send `X-Forwarded-For`, use
/// [`client_ip_from`] with [`ForwardedHeader::Forwarded`].
pub fn client_ip(peer: IpAddr, headers: &HeaderMap, trusted: &IpSet) -> IpAddr {
    client_ip_from(peer, headers, trusted, ForwardedHeader::Auto)
}

/// [`client_ip`] with an explicit choice of forwarding header.
pub fn client_ip_from(peer: IpAddr, headers: &HeaderMap, trusted: &IpSet, which: ForwardedHeader) -> IpAddr {
    let peer = crate::ipset::canonical(peer);
    if trusted.is_empty() || !trusted.contains(peer) {
        return peer;
    }
    let use_xff = match which {
        ForwardedHeader::XForwardedFor => true,
        ForwardedHeader::Forwarded => false,
        ForwardedHeader::Auto => headers.contains_key(&X_FORWARDED_FOR),
    };
    // Hops are read from the right (the nearest proxy first), lazily: only as far as the
    // first untrusted one.
    if use_xff {
        walk(peer, xff_hops(headers), trusted)
    } else {
        walk(peer, forwarded_hops(headers), trusted)
    }
}

/// Walks the hops (client first) back from the trusted `peer`: the first untrusted hop is the
/// client; an unparseable hop stops the walk at the last trusted address.
fn walk(peer: IpAddr, hops: impl DoubleEndedIterator<Item = Option<IpAddr>>, trusted: &IpSet) -> IpAddr {
    let mut current = peer;
    for hop in hops.rev() {
        let Some(ip) = hop else { return current };
        let ip = crate::ipset::canonical(ip);
        if !trusted.contains(ip) {
            return ip;
        }
        current = ip;
    }
    current
}

/// `X-Forwarded-For`, named once (a header named by a string is parsed again at every use).
pub static X_FORWARDED_FOR: HeaderName = HeaderName::from_static("x-forwarded-for");

/// Header values of every instance, in order, as one comma-separated list.
fn all_values<'a>(headers: &'a HeaderMap, name: &HeaderName) -> impl DoubleEndedIterator<Item = &'a str> {
    headers
        .get_all(name)
        .iter()
        // A value that is not visible ASCII is garbage: map it to an unparseable entry.
        .flat_map(|v| v.to_str().unwrap_or("\u{0}").split(','))
        .map(str::trim)
        .filter(|s| !s.is_empty())
}

fn xff_hops(headers: &HeaderMap) -> impl DoubleEndedIterator<Item = Option<IpAddr>> + '_ {
    all_values(headers, &X_FORWARDED_FOR).map(parse_node)
}

fn forwarded_hops(headers: &HeaderMap) -> impl DoubleEndedIterator<Item = Option<IpAddr>> + '_ {
    all_values(headers, &http::header::FORWARDED).filter_map(|element| {
        // An element without for= says nothing about the client; skip it.
        element.split(';').find_map(|pair| {
            let (k, v) = pair.split_once('=')?;
            k.trim()
                .eq_ignore_ascii_case("for")
                .then(|| parse_node(v.trim().trim_matches('"')))
        })
    })
}

/// `203.0.113.5`, `203.0.113.5:1234`, `2001:db8::1`, `[2001:db8::1]:1234`.
fn parse_node(text: &str) -> Option<IpAddr> {
    if let Ok(ip) = text.parse() {
        return Some(ip);
    }
    if let Some(rest) = text.strip_prefix('[') {
        let (inner, _) = rest.split_once(']')?;
        return inner.parse().ok();
    }
    let (host, port) = text.rsplit_once(':')?;
    port.parse::<u16>().ok()?;
    host.parse::<std::net::Ipv4Addr>().ok().map(IpAddr::V4)
}
