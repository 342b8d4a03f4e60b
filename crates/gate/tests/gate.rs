//! Integration tests of the gate's decision library, by topic.

use std::net::IpAddr;
use std::sync::Arc;

use http::{HeaderMap, HeaderValue, Method, Uri};
use proptest::prelude::*;
use sha2::{Digest, Sha256};
use wikiguard_gate::*;

const SECRET: &str = "test-secret-test-secret-test-secret-42";
const T0: u64 = 1_700_000_000_000;
const FIREFOX: &str = "Mozilla/5.0 (X11; Linux x86_64; rv:128.0) Gecko/20100101 Firefox/128.0";

fn config() -> GateConfig {
    GateConfig {
        secret: SECRET.into(),
        ..GateConfig::default()
    }
}

fn gate_with(policy: Policy) -> Gate {
    Gate::new(&config(), policy, Arc::new(MemoryRateStore::new(100_000))).unwrap()
}

fn gate() -> Gate {
    gate_with(Policy::default_policy())
}

fn browser_headers() -> HeaderMap {
    let mut h = HeaderMap::new();
    h.insert("user-agent", HeaderValue::from_static(FIREFOX));
    h.insert("accept", HeaderValue::from_static("text/html,application/xhtml+xml"));
    h.insert("accept-language", HeaderValue::from_static("en-GB,en;q=0.5"));
    h
}

fn ua_headers(ua: &str) -> HeaderMap {
    let mut h = HeaderMap::new();
    h.insert("user-agent", HeaderValue::from_str(ua).unwrap());
    h
}

struct Req {
    method: Method,
    uri: Uri,
    headers: HeaderMap,
    ip: IpAddr,
}

impl Req {
    fn new(url: &str, headers: HeaderMap, ip: &str) -> Req {
        Req {
            method: Method::GET,
            uri: url.parse().unwrap(),
            headers,
            ip: ip.parse().unwrap(),
        }
    }
    fn facts(&self) -> RequestFacts<'_> {
        RequestFacts {
            method: &self.method,
            uri: &self.uri,
            headers: &self.headers,
            client_ip: self.ip,
        }
    }
}

mod classification {
    use super::*;

    fn c(method: &str, url: &str) -> Classified {
        classify(&method.parse().unwrap(), &url.parse().unwrap())
    }

    #[test]
    fn table_of_real_urls() {
        let cases: &[(&str, &str, Class, Option<&str>)] = &[
            ("GET", "/wiki/Main_Page", Class::PageView, None),
            ("GET", "/wiki/", Class::PageView, None),
            ("GET", "/", Class::PageView, None),
            ("GET", "/wiki/File:Example.jpg", Class::PageView, None),
            ("GET", "/wiki/Caf%C3%A9", Class::PageView, None),
            ("GET", "/wiki/Main_Page?printable=yes", Class::PageView, None),
            ("GET", "/w/index.php?title=Main_Page", Class::PageView, None),
            (
                "GET",
                "/w/index.php?title=Main_Page&oldid=12345",
                Class::OldRevision,
                None,
            ),
            (
                "GET",
                "/w/index.php?title=Main_Page&diff=prev&oldid=12345",
                Class::Diff,
                None,
            ),
            ("GET", "/w/index.php?diff=12346&oldid=12345", Class::Diff, None),
            ("GET", "/wiki/Main_Page?diff=cur", Class::Diff, None),
            (
                "GET",
                "/w/index.php?title=Main_Page&action=history",
                Class::History,
                None,
            ),
            (
                "GET",
                "/w/index.php?title=Main_Page&action=history&offset=20230101&limit=500",
                Class::History,
                None,
            ),
            (
                "GET",
                "/w/index.php?title=Main_Page&action=history&feed=atom",
                Class::Feed,
                None,
            ),
            ("GET", "/w/index.php?title=Main_Page&action=edit", Class::EditForm, None),
            (
                "POST",
                "/w/index.php?title=Main_Page&action=submit",
                Class::EditForm,
                None,
            ),
            ("GET", "/w/index.php?title=Main_Page&action=raw", Class::Raw, None),
            (
                "GET",
                "/w/index.php?title=MediaWiki:Common.css&action=raw&ctype=text/css",
                Class::Raw,
                None,
            ),
            (
                "GET",
                "/w/index.php?title=Main_Page&action=raw&oldid=5",
                Class::Raw,
                None,
            ),
            ("GET", "/w/index.php?title=Main_Page&action=info", Class::Other, None),
            (
                "GET",
                "/wiki/Special:RecentChanges",
                Class::Special,
                Some("RecentChanges"),
            ),
            (
                "GET",
                "/wiki/Special:Recentchanges?days=30&limit=500",
                Class::Special,
                Some("RecentChanges"),
            ),
            (
                "GET",
                "/wiki/special:recentchanges",
                Class::Special,
                Some("RecentChanges"),
            ),
            (
                "GET",
                "/w/index.php?title=Special:RecentChanges&feed=atom",
                Class::Feed,
                Some("RecentChanges"),
            ),
            (
                "GET",
                "/wiki/Special:RecentChangesLinked/Main_Page",
                Class::Special,
                Some("RecentChangesLinked"),
            ),
            (
                "GET",
                "/wiki/Special:Search?search=foo&fulltext=1",
                Class::Search,
                Some("Search"),
            ),
            (
                "GET",
                "/w/index.php?search=foo&title=Special%3ASearch&go=Go",
                Class::Search,
                Some("Search"),
            ),
            ("GET", "/w/index.php?search=foo", Class::Search, None),
            ("GET", "/wiki/Special:Export/Main_Page", Class::Export, Some("Export")),
            (
                "POST",
                "/w/index.php?title=Special:Export",
                Class::Export,
                Some("Export"),
            ),
            (
                "GET",
                "/wiki/Special:Contributions/Example",
                Class::Special,
                Some("Contributions"),
            ),
            (
                "GET",
                "/wiki/Special:WhatLinksHere/Main_Page",
                Class::Special,
                Some("WhatLinksHere"),
            ),
            (
                "POST",
                "/w/index.php?title=Special:UserLogin&returnto=Main+Page",
                Class::Special,
                Some("UserLogin"),
            ),
            ("GET", "/wiki/Special:Random", Class::Special, Some("Random")),
            (
                "GET",
                "/w/api.php?action=query&list=recentchanges&rclimit=500&format=json",
                Class::Api,
                None,
            ),
            ("GET", "/w/api.php", Class::Api, None),
            ("POST", "/w/api.php", Class::Api, None),
            ("GET", "/api.php?action=parse&page=Main_Page", Class::Api, None),
            ("GET", "/w/rest.php/v1/page/Main_Page/html", Class::Rest, None),
            ("GET", "/w/rest.php/v1/search/page?q=foo&limit=10", Class::Rest, None),
            (
                "GET",
                "/w/load.php?lang=en&modules=startup&only=scripts&skin=vector",
                Class::Load,
                None,
            ),
            ("GET", "/w/images/a/a9/Example.jpg", Class::Media, None),
            (
                "GET",
                "/w/images/thumb/a/a9/Example.jpg/120px-Example.jpg",
                Class::Media,
                None,
            ),
            ("GET", "/w/thumb.php?f=Example.jpg&width=100", Class::Media, None),
            ("GET", "/static/images/icons/wikipedia.png", Class::Static, None),
            (
                "GET",
                "/w/skins/Vector/resources/common/images/link-external.svg",
                Class::Static,
                None,
            ),
            (
                "GET",
                "/w/resources/assets/poweredby_mediawiki.svg",
                Class::Static,
                None,
            ),
            ("GET", "/favicon.ico", Class::Static, None),
            ("GET", "/robots.txt", Class::Static, None),
            ("GET", "/index.php/Main_Page", Class::PageView, None),
            ("GET", "/index.php?title=Main_Page&diff=2", Class::Diff, None),
            ("GET", "/something/else", Class::Other, None),
        ];
        for (method, url, class, special) in cases {
            let got = c(method, url);
            assert_eq!(got.class, *class, "{method} {url}: {got:?}");
            assert_eq!(got.special.as_deref(), *special, "{method} {url}: {got:?}");
        }
    }

    #[test]
    fn api_facts() {
        let got = c(
            "GET",
            "/w/api.php?action=query&list=recentchanges|logevents&rclimit=max&prop=revisions",
        );
        assert_eq!(got.api_module.as_deref(), Some("query"));
        assert_eq!(got.api_submodules, vec!["recentchanges", "logevents", "revisions"]);
        assert_eq!(got.limit, Some(LIMIT_MAX));
        assert_eq!(c("GET", "/wiki/Special:RecentChanges?limit=250").limit, Some(250));
        assert_eq!(
            c("GET", "/w/index.php?title=Caf%C3%A9+au+lait").title.as_deref(),
            Some("Café_au_lait")
        );
    }

    #[test]
    fn machine_classes() {
        for class in Class::ALL {
            let machine = matches!(
                class,
                Class::Api | Class::Rest | Class::Feed | Class::Raw | Class::Export
            );
            assert_eq!(class.is_machine(), machine, "{class}");
            assert_eq!(Class::from_name(class.as_str()), Some(class));
        }
    }

    proptest! {
        #[test]
        fn classify_never_panics(path in "(/[a-zA-Z0-9%:._~+-]{0,12}){0,5}", query in "[a-z=&%0-9|.+-]{0,60}") {
            let url = if query.is_empty() { path.clone() } else { format!("{path}?{query}") };
            if let Ok(uri) = url.parse::<Uri>() {
                let _ = classify(&Method::GET, &uri);
            }
        }

        #[test]
        fn classify_never_panics_on_any_valid_uri(s in "\\PC{0,80}") {
            if let Ok(uri) = s.parse::<Uri>() {
                let _ = classify(&Method::POST, &uri);
            }
        }
    }
}

mod forwarded {
    use super::*;

    fn h(pairs: &[(&str, &str)]) -> HeaderMap {
        let mut m = HeaderMap::new();
        for (k, v) in pairs {
            m.append(
                http::HeaderName::from_bytes(k.as_bytes()).unwrap(),
                HeaderValue::from_str(v).unwrap(),
            );
        }
        m
    }

    fn ip(s: &str) -> IpAddr {
        s.parse().unwrap()
    }

    #[test]
    fn untrusted_peer_headers_ignored() {
        let trusted = IpSet::parse(&["10.0.0.0/8".into()]).unwrap();
        let spoof = h(&[("x-forwarded-for", "1.2.3.4"), ("forwarded", "for=5.6.7.8")]);
        assert_eq!(client_ip(ip("203.0.113.5"), &spoof, &trusted), ip("203.0.113.5"));
        assert_eq!(client_ip(ip("203.0.113.5"), &spoof, &IpSet::new()), ip("203.0.113.5"));
    }

    #[test]
    fn trusted_proxy_rightmost_untrusted_hop() {
        let trusted = IpSet::parse(&["10.0.0.0/8".into(), "2001:db8:ffff::/48".into()]).unwrap();
        // The client spoofed "1.2.3.4"; our proxy appended the real address 198.51.100.7.
        let xff = h(&[("x-forwarded-for", "1.2.3.4, 198.51.100.7")]);
        assert_eq!(client_ip(ip("10.0.0.1"), &xff, &trusted), ip("198.51.100.7"));
        // Two trusted hops.
        let xff = h(&[("x-forwarded-for", "1.2.3.4, 198.51.100.7, 10.1.1.1")]);
        assert_eq!(client_ip(ip("10.0.0.1"), &xff, &trusted), ip("198.51.100.7"));
        // Several header instances are one list.
        let xff = h(&[("x-forwarded-for", "1.2.3.4"), ("x-forwarded-for", "198.51.100.8")]);
        assert_eq!(client_ip(ip("10.0.0.1"), &xff, &trusted), ip("198.51.100.8"));
        // Ports and brackets.
        let xff = h(&[("x-forwarded-for", "[2001:db8::1]:443")]);
        assert_eq!(client_ip(ip("2001:db8:ffff::2"), &xff, &trusted), ip("2001:db8::1"));
        let xff = h(&[("x-forwarded-for", "198.51.100.9:1234")]);
        assert_eq!(client_ip(ip("10.0.0.1"), &xff, &trusted), ip("198.51.100.9"));
        // No header: the proxy itself.
        assert_eq!(client_ip(ip("10.0.0.1"), &HeaderMap::new(), &trusted), ip("10.0.0.1"));
        // Everything trusted: leftmost.
        let xff = h(&[("x-forwarded-for", "10.9.9.9, 10.8.8.8")]);
        assert_eq!(client_ip(ip("10.0.0.1"), &xff, &trusted), ip("10.9.9.9"));
        // Garbage stops the walk at the last hop known for sure.
        let xff = h(&[("x-forwarded-for", "198.51.100.7, garbage")]);
        assert_eq!(client_ip(ip("10.0.0.1"), &xff, &trusted), ip("10.0.0.1"));
        let xff = h(&[("x-forwarded-for", "198.51.100.7, garbage, 10.2.2.2")]);
        assert_eq!(client_ip(ip("10.0.0.1"), &xff, &trusted), ip("10.2.2.2"));
    }

    #[test]
    fn rfc7239_forwarded() {
        let trusted = IpSet::parse(&["10.0.0.0/8".into()]).unwrap();
        let f = h(&[("forwarded", "for=1.2.3.4, for=\"[2001:db8::7]:80\";proto=https")]);
        assert_eq!(client_ip(ip("10.0.0.1"), &f, &trusted), ip("2001:db8::7"));
        let f = h(&[("forwarded", "for=198.51.100.1;by=10.0.0.1")]);
        assert_eq!(client_ip(ip("10.0.0.1"), &f, &trusted), ip("198.51.100.1"));
        // Explicit choice ignores the other header.
        let both = h(&[("forwarded", "for=198.51.100.1"), ("x-forwarded-for", "1.2.3.4")]);
        assert_eq!(
            client_ip_from(ip("10.0.0.1"), &both, &trusted, ForwardedHeader::Forwarded),
            ip("198.51.100.1")
        );
        assert_eq!(client_ip(ip("10.0.0.1"), &both, &trusted), ip("1.2.3.4"));
    }
}

mod ipset {
    use super::*;

    fn naive(ranges: &[(u32, u8)], ip: u32) -> bool {
        ranges.iter().any(|(net, len)| {
            let mask = if *len == 0 { 0 } else { u32::MAX << (32 - len) };
            (ip & mask) == (net & mask)
        })
    }

    fn naive6(ranges: &[(u128, u8)], ip: u128) -> bool {
        ranges.iter().any(|(net, len)| {
            let mask = if *len == 0 { 0 } else { u128::MAX << (128 - len) };
            (ip & mask) == (net & mask)
        })
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(24))]
        #[test]
        fn v4_matches_naive_scan(
            ranges in prop::collection::vec((any::<u32>(), 8u8..=32), 1000..3000),
            probes in prop::collection::vec(any::<u32>(), 200),
        ) {
            let text: Vec<String> = ranges.iter().map(|(n, l)| format!("{}/{l}", std::net::Ipv4Addr::from(*n))).collect();
            let set = IpSet::parse(&text).unwrap();
            // Probe both random addresses and addresses inside listed ranges.
            for (i, p) in probes.iter().enumerate() {
                let inside = ranges[i % ranges.len()].0 ^ (p & 0xff);
                for ip in [*p, inside] {
                    prop_assert_eq!(set.contains(IpAddr::from(std::net::Ipv4Addr::from(ip))), naive(&ranges, ip));
                }
            }
        }

        #[test]
        fn v6_matches_naive_scan(
            ranges in prop::collection::vec((any::<u128>(), 16u8..=128), 500..1500),
            probes in prop::collection::vec(any::<u128>(), 200),
        ) {
            let ranges: Vec<(u128, u8)> = ranges.into_iter().filter(|(n, _)| (n >> 32) != 0xffff).collect();
            let text: Vec<String> = ranges.iter().map(|(n, l)| format!("{}/{l}", std::net::Ipv6Addr::from(*n))).collect();
            let set = IpSet::parse(&text).unwrap();
            for (i, p) in probes.iter().enumerate() {
                let inside = ranges[i % ranges.len()].0 ^ (p & 0xffff);
                for ip in [*p, inside] {
                    if (ip >> 32) == 0xffff { continue; }
                    prop_assert_eq!(set.contains(IpAddr::from(std::net::Ipv6Addr::from(ip))), naive6(&ranges, ip));
                }
            }
        }

        #[test]
        fn parse_never_panics(s in "\\PC{0,40}") {
            let _ = IpSet::parse(&[s]);
        }
    }
}

mod gcra {
    use super::*;

    /// A per-IP limit of `rate` units per `period` seconds with bursts of `burst`.
    fn ip_limit(name: &str, rate: u64, period: u64, burst: u64) -> RateLimit {
        RateLimit {
            name: name.into(),
            rate,
            period_seconds: period,
            burst,
            key: vec![KeyPart::Ip],
        }
    }

    /// The leaky bucket as a meter, stepped in plain integer microseconds.
    struct Naive {
        level_us: u64,
        last_us: u64,
    }

    impl Naive {
        fn step(&mut self, l: &RateLimit, cost: u32, now_ms: u64) -> (bool, u64) {
            let now = now_ms * 1000;
            let t = (l.period_seconds * 1_000_000 / l.rate).max(1);
            let cap = t * l.burst;
            let drained = now.saturating_sub(self.last_us);
            self.level_us = self.level_us.saturating_sub(drained);
            self.last_us = self.last_us.max(now);
            let add = u64::from(cost).min(l.burst) * t;
            if self.level_us + add <= cap {
                self.level_us += add;
                (true, 0)
            } else {
                (false, (self.level_us + add - cap).div_ceil(1000))
            }
        }
    }

    proptest! {
        #[test]
        fn matches_naive_reference(
            rate in 1u64..2000,
            period in 1u64..600,
            burst in 1u64..500,
            steps in prop::collection::vec((0u64..5000, 0u32..60), 1..200),
        ) {
            let l = ip_limit("x", rate, period, burst);
            let store = MemoryRateStore::new(10);
            let mut naive = Naive { level_us: 0, last_us: 0 };
            let mut now = T0;
            for (dt, cost) in steps {
                now += dt;
                let got = store.gcra("k", &l, cost, now);
                let (allowed, retry) = naive.step(&l, cost, now);
                prop_assert_eq!(got.allowed, allowed);
                prop_assert_eq!(got.retry_after_ms, retry);
            }
        }

        #[test]
        fn retry_after_is_exact(rate in 1u64..100, burst in 1u64..50, cost in 1u32..50) {
            let l = ip_limit("x", rate, 60, burst);
            let store = MemoryRateStore::new(10);
            // Exhaust.
            while store.gcra("k", &l, cost, T0).allowed {}
            let denied = store.gcra("k", &l, cost, T0);
            prop_assert!(!denied.allowed);
            prop_assert!(store.gcra("k", &l, cost, T0 + denied.retry_after_ms).allowed);
        }
    }

    #[test]
    fn cost_weights_share_one_budget() {
        let l = ip_limit("x", 60, 60, 30);
        let s = MemoryRateStore::new(10);
        assert!(s.gcra("k", &l, 20, T0).allowed); // a diff
        let o = s.gcra("k", &l, 1, T0); // a page view
        assert!(o.allowed);
        assert_eq!(o.remaining, 9);
        assert!(!s.gcra("k", &l, 10, T0).allowed); // a history page no longer fits
        assert!(s.gcra("k", &l, 9, T0).allowed);
    }

    #[test]
    fn bounded_under_a_flood_of_keys() {
        let l = ip_limit("x", 1, 3600, 5);
        let s = MemoryRateStore::new(1000);
        for i in 0..50_000u64 {
            s.gcra(&format!("flood-{i}"), &l, 1, T0 + i);
            assert!(s.key_count() <= s.capacity());
        }
        assert!(s.key_count() <= 1008);
        // A key in use right now survives the flood's eviction (least recently used go first).
        let s = MemoryRateStore::new(160);
        for round in 0..100u64 {
            s.gcra("hot", &l, 0, T0 + round * 100);
            s.gcra("hot", &l, 1, T0 + round * 100);
            for i in 0..50 {
                s.gcra(&format!("cold-{round}-{i}"), &l, 1, T0 + round * 100 + 1);
            }
        }
        let peek = s.gcra("hot", &l, 0, T0 + 10_000);
        assert_eq!(peek.remaining, 0, "the hot key's state was kept");
    }

    #[test]
    fn drained_buckets_are_swept_long_before_the_store_is_full() {
        // Page views from a flood of one-off readers: each bucket drains 100 ms after its one
        // request, so only about the last 100 ms of clients need a key.
        let l = ip_limit("unknown", 600, 60, 300);
        let s = MemoryRateStore::new(1_000_000);
        // One heavy client spends its whole burst at the start: its bucket stays live for 30 s.
        assert!(s.gcra("heavy", &l, 300, T0).allowed);
        let mut most = 0;
        for i in 0..200_000u64 {
            let now = T0 + i / 10; // ten new clients a millisecond
            s.gcra(
                &format!("unknown|10.{}.{}.{}", i >> 16 & 255, i >> 8 & 255, i & 255),
                &l,
                1,
                now,
            );
            if i % 100 == 0 {
                most = most.max(s.key_count());
            }
        }
        assert!(most <= 20_000, "the store grew to {most} keys for about 1000 live ones");
        // 20 s on, the heavy client's bucket has drained by 200 units, not been forgotten.
        let heavy = s.gcra("heavy", &l, 0, T0 + 20_000);
        assert_eq!(
            heavy.remaining, 200,
            "the live bucket was kept through the sweeps: {heavy:?}"
        );
    }
}

mod policy_files {
    use super::*;

    fn err(src: &str) -> GateError {
        Policy::from_toml(src).unwrap_err()
    }

    #[test]
    fn errors_name_the_rule_and_position() {
        let src = "[limits.a]\nrate = 10\n\n[[rules]]\nname = \"first\"\naction = \"allow\"\n\n[[rules]]\nname = \"bad-regex\"\nuser_agent = \"(\"\naction = \"deny\"\n";
        let e = err(src);
        let GateError::Policy {
            line, rule, message, ..
        } = &e
        else {
            panic!("{e:?}")
        };
        assert_eq!(rule.as_deref(), Some("bad-regex"));
        assert_eq!(*line, 8);
        assert!(message.contains("invalid regex"), "{message}");
        assert!(
            e.to_string()
                .starts_with("policy line 8, column 1 (rule \"bad-regex\"): invalid regex"),
            "{e}"
        );

        let src = "[[rules]]\nname = \"typo\"\nactoin = \"deny\"\n";
        let e = err(src);
        let GateError::Policy {
            line, rule, message, ..
        } = &e
        else {
            panic!("{e:?}")
        };
        assert_eq!(rule.as_deref(), Some("typo"), "{e}");
        assert_eq!(*line, 3, "{e}");
        assert!(message.contains("actoin"), "{message}");

        let e = err("[[rules]]\nname = \"lim\"\naction = \"limit\"\nlimit = \"nope\"\n");
        assert!(
            e.to_string().contains("(rule \"lim\")") && e.to_string().contains("\"nope\""),
            "{e}"
        );

        let e = err("[[rules]]\nname = \"w\"\nweight = 5\ntier = [\"abusive\"]\n");
        assert!(e.to_string().contains("cannot match on tier"), "{e}");

        let e = err("[[rules]]\nname = \"both\"\nweight = 5\naction = \"deny\"\n");
        assert!(e.to_string().contains("either action or weight"), "{e}");

        let e = err("[[rules]]\nname = \"dup\"\naction = \"deny\"\n[[rules]]\nname = \"dup\"\naction = \"deny\"\n");
        assert!(e.to_string().contains("same name"), "{e}");

        let e = err("[[rules]]\nname = \"cidr\"\nip = [\"10.0.0.0/40\"]\naction = \"deny\"\n");
        assert!(
            e.to_string().contains("(rule \"cidr\")") && e.to_string().contains("10.0.0.0/40"),
            "{e}"
        );

        let e = err("[[rules]]\nname = \"cls\"\nclass = [\"diffs\"]\naction = \"deny\"\n");
        assert!(e.to_string().contains("(rule \"cls\")"), "{e}");

        let e = err("[tiers.unknown]\nlimits = [\"missing\"]\n");
        assert!(e.to_string().contains("[tiers.unknown]"), "{e}");

        let e = err("x = [\n");
        assert!(matches!(e, GateError::Policy { line: 1.., .. }), "{e}");
    }

    #[test]
    fn empty_policy_is_valid() {
        let p = Policy::from_toml("").unwrap();
        assert!(p.rules().is_empty());
    }

    #[test]
    fn default_policy_costs() {
        let p = Policy::default_policy();
        let cost = |url: &str| p.cost(&classify(&Method::GET, &url.parse().unwrap()));
        assert_eq!(cost("/wiki/Main_Page"), 1);
        assert_eq!(cost("/w/load.php?modules=startup"), 0);
        assert_eq!(cost("/w/index.php?title=X&diff=prev&oldid=2"), 20);
        assert_eq!(cost("/w/index.php?title=X&action=history"), 10);
        assert_eq!(cost("/wiki/Special:RecentChanges"), 20);
        assert_eq!(cost("/wiki/Special:RecentChanges?limit=500"), 30);
        assert_eq!(cost("/wiki/Special:Export/X"), 50);
        assert_eq!(cost("/w/api.php?action=query&meta=siteinfo"), 2);
        assert_eq!(cost("/w/api.php?action=query&list=recentchanges&rclimit=500"), 20);
        assert_eq!(cost("/w/api.php?action=query&list=recentchanges&rclimit=max"), 110);
    }

    proptest! {
        #[test]
        fn parsing_never_panics(s in "\\PC{0,200}") {
            let _ = Policy::from_toml(&s);
        }

        #[test]
        fn rule_like_text_never_panics(
            name in "[a-z\"]{0,8}",
            key in "(class|user_agent|path|ip|action|weight|limit|tier|headers|method)",
            value in "(\"[a-z(\\[]{0,6}\"|\\[\"[a-z0-9./]{0,10}\"\\]|-?[0-9]{1,3}|\\{ name = \"x\" \\})",
        ) {
            let src = format!("[[rules]]\nname = \"{name}\"\n{key} = {value}\n");
            let _ = Policy::from_toml(&src);
        }
    }
}

/// Solves a challenge the way docs/gate-challenge.md says any client can.
fn solve(challenge: &str, difficulty: u32) -> String {
    for nonce in 0u64.. {
        let digest = Sha256::digest(format!("{challenge}{nonce}").as_bytes());
        let mut zeros = 0;
        for b in digest {
            if b == 0 {
                zeros += 8;
            } else {
                zeros += b.leading_zeros();
                break;
            }
        }
        if zeros >= difficulty {
            return nonce.to_string();
        }
    }
    unreachable!()
}

/// The JSON parameters embedded in a challenge page.
fn page_params(page: &str) -> serde_json::Value {
    let start_tag = "<script type=\"application/json\" id=\"wikiguard-challenge\">";
    let start = page.find(start_tag).unwrap() + start_tag.len();
    let end = start + page[start..].find("</script>").unwrap();
    serde_json::from_str(&page[start..end]).unwrap()
}

fn with_cookie(mut headers: HeaderMap, set_cookie: &str) -> HeaderMap {
    let pair = set_cookie.split(';').next().unwrap();
    headers.insert("cookie", HeaderValue::from_str(pair).unwrap());
    headers
}

mod decisions {
    use super::*;

    #[test]
    fn page_views_pass() {
        let g = gate();
        for i in 0..200 {
            let r = Req::new("/wiki/Main_Page", browser_headers(), "198.51.100.10");
            let d = g.decide(&r.facts(), T0 + i * 100);
            assert!(
                matches!(
                    d,
                    Decision::Allow {
                        tier: Tier::Unknown,
                        ..
                    }
                ),
                "{i}: {d:?}"
            );
        }
        let r = Req::new("/w/load.php?modules=startup", HeaderMap::new(), "198.51.100.10");
        assert!(matches!(g.decide(&r.facts(), T0), Decision::Allow { .. }));
    }

    #[test]
    fn api_over_budget_gets_429_with_etiquette_never_a_challenge() {
        let g = gate();
        let ua = "ExampleBot/1.0 (https://example.org/bot; bot@example.org)";
        let mut saw_limit = None;
        for i in 0..400 {
            let r = Req::new(
                "/w/api.php?action=query&list=recentchanges&rclimit=500&format=json",
                ua_headers(ua),
                "198.51.100.20",
            );
            match g.decide(&r.facts(), T0 + i) {
                Decision::Allow { .. } => {}
                d @ Decision::Limit { .. } => {
                    saw_limit = Some(d);
                    break;
                }
                d => panic!("a machine client got {d:?}"),
            }
        }
        let d = saw_limit.expect("the budget ran out");
        let Decision::Limit {
            retry_after_secs,
            machine_message,
            policy_name,
            limit,
            ..
        } = &d
        else {
            unreachable!()
        };
        assert!(*retry_after_secs >= 1);
        assert_eq!(policy_name, "unknown");
        assert_eq!(*limit, 300);
        assert!(machine_message.as_deref().unwrap().contains("User-Agent"));
        let headers = d.headers();
        assert!(headers.iter().any(|(k, _)| *k == "retry-after"));
        assert!(headers.iter().any(|(k, _)| *k == "ratelimit-remaining"));
        assert_eq!(d.status(), Some(429));
    }

    #[test]
    fn suspicious_api_client_is_limited_not_challenged() {
        let g = gate();
        let mut kinds = Vec::new();
        for i in 0..40 {
            let r = Req::new(
                "/w/api.php?action=query&prop=revisions&titles=X",
                ua_headers("python-requests/2.31"),
                "198.51.100.21",
            );
            kinds.push(g.decide(&r.facts(), T0 + i).kind());
        }
        assert!(!kinds.contains(&"challenge"));
        assert!(kinds.contains(&"limit"), "{kinds:?}");
        assert_eq!(kinds[0], "allow");
    }

    #[test]
    fn suspicious_browser_is_challenged_on_expensive_pages() {
        let g = gate();
        // A browser user agent without Accept / Accept-Language: score 50, suspicious.
        let r = Req::new(
            "/w/index.php?title=X&diff=prev&oldid=5",
            ua_headers(FIREFOX),
            "198.51.100.30",
        );
        let d = g.decide(&r.facts(), T0);
        assert!(matches!(d, Decision::Challenge { difficulty: 16, .. }), "{d:?}");
        assert_eq!(d.status(), Some(403));
        // ... but reads current pages.
        let r = Req::new("/wiki/X", ua_headers(FIREFOX), "198.51.100.30");
        assert!(matches!(
            g.decide(&r.facts(), T0),
            Decision::Allow {
                tier: Tier::Suspicious,
                ..
            }
        ));
    }

    #[test]
    fn abusive_client_challenged_then_denied() {
        let g = gate();
        let mut kinds = Vec::new();
        for i in 0..15 {
            // No user agent (60) + headless… no: empty UA + generic library is impossible;
            // empty UA and browser-like checks: use a headless UA without headers.
            let r = Req::new("/wiki/X", ua_headers("Mozilla/5.0 HeadlessChrome/120"), "198.51.100.40");
            kinds.push(g.decide(&r.facts(), T0 + i * 1000).kind());
        }
        assert_eq!(kinds[0], "challenge");
        assert_eq!(kinds[9], "challenge");
        assert_eq!(kinds[10], "deny", "{kinds:?}");
    }

    #[test]
    fn denied_cidr_is_denied() {
        let src = format!(
            "[[rules]]\nname = \"deny-bad-network\"\nip = [\"203.0.113.0/24\", \"2001:db8:bad::/48\"]\naction = \"deny\"\nreason = \"This network sent abusive traffic.\"\n\n{}",
            DEFAULT_POLICY_TOML.replace("version = 1", "")
        );
        let p = Policy::from_toml(&src).unwrap();
        let g = gate_with(p);
        for ip in ["203.0.113.77", "2001:db8:bad:1::5"] {
            let r = Req::new("/wiki/Main_Page", browser_headers(), ip);
            let d = g.decide(&r.facts(), T0);
            let Decision::Deny { reason, reference } = &d else {
                panic!("{d:?}")
            };
            assert_eq!(reason, "This network sent abusive traffic.");
            assert_eq!(reference.len(), 12);
            let page = deny_page(reason, reference);
            assert!(page.contains(reference.as_str()) && page.contains("lang=\"en\""));
        }
        let r = Req::new("/wiki/Main_Page", browser_headers(), "203.0.114.1");
        assert!(matches!(g.decide(&r.facts(), T0), Decision::Allow { .. }));
    }

    #[test]
    fn unknown_browser_over_budget_gets_an_easy_challenge() {
        let g = gate();
        let mut last = None;
        for i in 0..40 {
            let r = Req::new(
                "/w/index.php?title=X&diff=prev&oldid=5",
                browser_headers(),
                "198.51.100.50",
            );
            let d = g.decide(&r.facts(), T0 + i);
            if !matches!(d, Decision::Allow { .. }) {
                last = Some(d);
                break;
            }
        }
        assert!(
            matches!(last, Some(Decision::Challenge { difficulty: 12, .. })),
            "{last:?}"
        );
    }

    #[test]
    fn good_bot_needs_ua_and_ip() {
        let g = gate();
        let ua = "Mozilla/5.0 (compatible; Googlebot/2.1; +http://www.google.com/bot.html)";
        let r = Req::new("/wiki/X?diff=1", ua_headers(ua), "66.249.66.1");
        assert!(matches!(g.evaluate(&r.facts(), T0).tier, Tier::KnownGood));
        let r = Req::new("/wiki/X?diff=1", ua_headers(ua), "198.51.100.60");
        assert_ne!(g.evaluate(&r.facts(), T0).tier, Tier::KnownGood);
    }

    #[test]
    fn references_are_distinct() {
        let g = gate();
        let r = Req::new("/wiki/X", browser_headers(), "198.51.100.61");
        let a = g.decide(&r.facts(), T0);
        let b = g.decide(&r.facts(), T0);
        assert_ne!(a.reference(), b.reference());
    }

    #[test]
    fn references_are_twelve_hex_digits_in_text_json_and_pages() {
        let g = gate();
        let r = Req::new("/wiki/X", browser_headers(), "198.51.100.65");
        let d = g.decide(&r.facts(), T0);
        let text = d.reference().to_string();
        assert_eq!(text.len(), 12);
        assert!(
            text.bytes().all(|b| b.is_ascii_hexdigit() && !b.is_ascii_uppercase()),
            "{text}"
        );
        assert_eq!(d.reference().as_str(), text);
        assert_eq!(format!("{:?}", d.reference()), format!("{text:?}"));
        let json = serde_json::to_value(&d).unwrap();
        assert_eq!(json["reference"], text.as_str());
        assert!(deny_page("no", d.reference()).contains(&text));
    }

    #[test]
    fn policy_reload_is_atomic_and_takes_effect() {
        let g = gate();
        let r = Req::new("/wiki/X", browser_headers(), "198.51.100.62");
        assert!(matches!(g.decide(&r.facts(), T0), Decision::Allow { .. }));
        g.set_policy(Policy::from_toml("[[rules]]\nname = \"deny-all\"\naction = \"deny\"\n").unwrap());
        assert!(matches!(g.decide(&r.facts(), T0), Decision::Deny { .. }));
    }

    #[test]
    fn each_gate_and_thread_sees_its_own_policy_and_every_reload() {
        // Workers keep the policy they last read per thread: two gates on one thread must not
        // see each other's, and a reload on one thread must reach the others.
        let deny_all = || Policy::from_toml("[[rules]]\nname = \"deny-all\"\naction = \"deny\"\n").unwrap();
        let open = Arc::new(gate());
        let closed = Arc::new(gate_with(deny_all()));
        let r = Req::new("/wiki/X", browser_headers(), "198.51.100.63");
        for _ in 0..3 {
            assert!(matches!(open.decide(&r.facts(), T0), Decision::Allow { .. }));
            assert!(matches!(closed.decide(&r.facts(), T0), Decision::Deny { .. }));
        }
        let (to_worker, worker_rx) = std::sync::mpsc::channel::<()>();
        let (to_main, main_rx) = std::sync::mpsc::channel::<bool>();
        let worker = {
            let open = open.clone();
            std::thread::spawn(move || {
                let r = Req::new("/wiki/X", browser_headers(), "198.51.100.64");
                while worker_rx.recv().is_ok() {
                    let allowed = matches!(open.decide(&r.facts(), T0), Decision::Allow { .. });
                    to_main.send(allowed).unwrap();
                }
            })
        };
        to_worker.send(()).unwrap();
        assert!(main_rx.recv().unwrap(), "the worker first sees the open policy");
        open.set_policy(deny_all());
        to_worker.send(()).unwrap();
        assert!(
            !main_rx.recv().unwrap(),
            "the worker sees the reload made on another thread"
        );
        open.set_policy(Policy::default_policy());
        to_worker.send(()).unwrap();
        assert!(main_rx.recv().unwrap(), "and the next one");
        assert!(matches!(open.decide(&r.facts(), T0), Decision::Allow { .. }));
        assert!(matches!(closed.decide(&r.facts(), T0), Decision::Deny { .. }));
        drop(to_worker);
        worker.join().unwrap();
    }
}

mod challenges {
    use super::*;

    fn challenged() -> (Gate, Req) {
        let g = gate();
        let r = Req::new(
            "/w/index.php?title=X&diff=prev&oldid=5",
            ua_headers(FIREFOX),
            "198.51.100.70",
        );
        (g, r)
    }

    #[test]
    fn solve_verify_then_pass() {
        let (g, r) = challenged();
        let d = g.decide(&r.facts(), T0);
        let Decision::Challenge { difficulty, reference } = d else {
            panic!("{d:?}")
        };
        let page = g.challenge_page(&r.facts(), difficulty, &reference, T0);
        assert!(page.contains("<html lang=\"en\">") && page.contains("<h1>") && page.contains("role=\"status\""));
        assert!(page.contains("aria-live=\"polite\"") && page.contains("<noscript>"));
        let params = page_params(&page);
        assert_eq!(params["difficulty"], 16);
        assert_eq!(params["verify"], VERIFY_PATH);
        assert_eq!(params["return"], "/w/index.php?title=X&diff=prev&oldid=5");
        let challenge = params["challenge"].as_str().unwrap();
        let nonce = solve(challenge, 16);
        let body = format!("challenge={challenge}&nonce={nonce}&return=%2Fwiki%2FX");
        let verify = Req {
            method: Method::POST,
            ..Req::new(VERIFY_PATH, ua_headers(FIREFOX), "198.51.100.71")
        };
        let pass = g
            .verify_challenge_pass(body.as_bytes(), &verify.facts(), T0 + 2000)
            .unwrap();
        assert_eq!(pass.return_to, "/wiki/X");
        assert!(pass.set_cookie.starts_with("wikiguard_pass=1."));
        for attr in ["HttpOnly", "SameSite=Lax", "Path=/", "Max-Age=86400"] {
            assert!(pass.set_cookie.contains(attr), "{}", pass.set_cookie);
        }
        // Same /24, same user agent: known-good now, no challenge.
        let again = Req::new(
            "/w/index.php?title=X&diff=prev&oldid=5",
            with_cookie(ua_headers(FIREFOX), &pass.set_cookie),
            "198.51.100.70",
        );
        let d = g.decide(&again.facts(), T0 + 3000);
        assert!(
            matches!(
                d,
                Decision::Allow {
                    tier: Tier::KnownGood,
                    ..
                }
            ),
            "{d:?}"
        );
        // JSON answers work too.
        let json = serde_json::json!({"challenge": challenge, "nonce": nonce.parse::<u64>().unwrap()}).to_string();
        assert!(g.verify_challenge(json.as_bytes(), &verify.facts(), T0 + 2000).is_ok());
    }

    #[test]
    fn wrong_work_forged_expired_and_rebound_challenges_are_refused() {
        let (g, r) = challenged();
        let page = g.challenge_page(&r.facts(), 16, "ref", T0);
        let challenge = page_params(&page)["challenge"].as_str().unwrap().to_string();
        let nonce = solve(&challenge, 16);
        let ok = |body: String, req: &Req, now| g.verify_challenge(body.as_bytes(), &req.facts(), now);
        let form = |c: &str, n: &str| format!("challenge={}&nonce={n}", c.replace('=', "%3D"));
        // Not enough work (a nonce that does not solve it, almost surely).
        let bad_nonce = (0..)
            .map(|n: u64| n.to_string())
            .find(|n| !work_is_sufficient(&challenge, n, 16))
            .unwrap();
        assert_eq!(
            ok(form(&challenge, &bad_nonce), &r, T0),
            Err(ChallengeError::InsufficientWork)
        );
        // Lowering the difficulty in the token breaks the signature.
        let parts: Vec<&str> = challenge.split('.').collect();
        let mut forged = parts.clone();
        forged[3] = "1";
        let forged = forged.join(".");
        assert_eq!(
            ok(form(&forged, &solve(&forged, 1)), &r, T0),
            Err(ChallengeError::BadSignature)
        );
        // Expired.
        assert_eq!(
            ok(form(&challenge, &nonce), &r, T0 + 301_000),
            Err(ChallengeError::Expired)
        );
        // Another network or user agent.
        let other_net = Req::new("/", ua_headers(FIREFOX), "198.51.101.70");
        assert_eq!(
            ok(form(&challenge, &nonce), &other_net, T0),
            Err(ChallengeError::WrongClient)
        );
        let other_ua = Req::new("/", ua_headers("Mozilla/5.0 Other"), "198.51.100.70");
        assert_eq!(
            ok(form(&challenge, &nonce), &other_ua, T0),
            Err(ChallengeError::WrongClient)
        );
        // Another gate's secret.
        let other = Gate::new(
            &GateConfig {
                secret: "another-secret-another-secret-another".into(),
                ..GateConfig::default()
            },
            Policy::default_policy(),
            Arc::new(MemoryRateStore::new(10)),
        )
        .unwrap();
        assert_eq!(
            other.verify_challenge(form(&challenge, &nonce).as_bytes(), &r.facts(), T0),
            Err(ChallengeError::BadSignature)
        );
        // Garbage.
        for body in [
            "",
            "challenge=",
            "nonce=1",
            "challenge=x&nonce=abc",
            "{\"challenge\": 5",
            "challenge=a.b&nonce=1",
        ] {
            let e = g
                .verify_challenge(body.as_bytes(), &Req::new("/", HeaderMap::new(), "1.2.3.4").facts(), T0)
                .unwrap_err();
            assert!(
                matches!(e, ChallengeError::Malformed(_) | ChallengeError::BadSignature),
                "{body:?}: {e:?}"
            );
        }
        assert_eq!(ChallengeError::Expired.code(), "challenge_expired");
    }

    #[test]
    fn slow_no_javascript_path() {
        let (g, r) = challenged();
        let page = g.challenge_page(&r.facts(), 16, "ref", T0);
        let params = page_params(&page);
        let slow = params["slow_seconds"].as_u64().unwrap();
        assert_eq!(slow, 30);
        assert!(page.contains(&format!("content=\"{}", slow + 1)));
        // The meta refresh URL, un-escaped from HTML.
        let start = page.find("url=").unwrap() + 4;
        let end = start + page[start..].find('"').unwrap();
        let url = page[start..end].replace("&amp;", "&");
        let slow_req = Req::new(&url, ua_headers(FIREFOX), "198.51.100.70");
        let early = g.verify_challenge(b"", &slow_req.facts(), T0 + 5_000);
        assert!(
            matches!(early, Err(ChallengeError::TooEarly { wait_secs: 25 })),
            "{early:?}"
        );
        let pass = g.verify_challenge_pass(b"", &slow_req.facts(), T0 + 31_000).unwrap();
        assert_eq!(pass.return_to, "/w/index.php?title=X&diff=prev&oldid=5");
    }

    #[test]
    fn forged_expired_and_rebound_cookies_are_refused() {
        let (g, r) = challenged();
        let cookie = g.pass_cookie(&r.facts(), T0);
        let value = cookie.split(';').next().unwrap().split_once('=').unwrap().1.to_string();
        let status = |v: &str, ip: &str, ua: &str, now: u64| {
            let mut h = ua_headers(ua);
            h.insert(
                "cookie",
                HeaderValue::from_str(&format!("a=b; wikiguard_pass={v}")).unwrap(),
            );
            g.pass(&Req::new("/", h, ip).facts(), now)
        };
        assert_eq!(status(&value, "198.51.100.99", FIREFOX, T0 + 1000), PassStatus::Valid);
        assert_eq!(
            status(&value, "198.51.100.99", FIREFOX, T0 + 86_401_000),
            PassStatus::Expired
        );
        assert_eq!(status(&value, "198.51.101.1", FIREFOX, T0 + 1000), PassStatus::Rebound);
        assert_eq!(
            status(&value, "198.51.100.99", "curl/8", T0 + 1000),
            PassStatus::Rebound
        );
        let parts: Vec<&str> = value.split('.').collect();
        let longer = format!("1.{}.{}", parts[1].parse::<u64>().unwrap() + 1000, parts[2]);
        assert_ne!(status(&longer, "198.51.100.99", FIREFOX, T0 + 1000), PassStatus::Valid);
        assert_eq!(
            status("1.99999999999.AAAA", "198.51.100.99", FIREFOX, T0),
            PassStatus::Forged
        );
        assert_eq!(status("garbage", "198.51.100.99", FIREFOX, T0), PassStatus::Forged);
        // A refused cookie does not make the client known-good.
        let mut h = ua_headers(FIREFOX);
        h.insert(
            "cookie",
            HeaderValue::from_str(&format!("wikiguard_pass={value}")).unwrap(),
        );
        let d = g.decide(&Req::new("/wiki/X?diff=1", h, "198.51.101.1").facts(), T0 + 1000);
        assert!(matches!(d, Decision::Challenge { .. }), "{d:?}");
    }

    #[test]
    fn key_rotation() {
        let (old, r) = challenged();
        let cookie = old.pass_cookie(&r.facts(), T0);
        let page = old.challenge_page(&r.facts(), 8, "ref", T0);
        let challenge = page_params(&page)["challenge"].as_str().unwrap().to_string();
        let rotated_config = GateConfig {
            secret: "the-new-secret-the-new-secret-the-new".into(),
            previous_secrets: vec![SECRET.into()],
            ..GateConfig::default()
        };
        let new = Gate::new(
            &rotated_config,
            Policy::default_policy(),
            Arc::new(MemoryRateStore::new(10)),
        )
        .unwrap();
        let with = Req::new("/", with_cookie(ua_headers(FIREFOX), &cookie), "198.51.100.70");
        assert_eq!(new.pass(&with.facts(), T0 + 1), PassStatus::Valid);
        let body = format!("challenge={challenge}&nonce={}", solve(&challenge, 8));
        assert!(new.verify_challenge(body.as_bytes(), &r.facts(), T0 + 1).is_ok());
        // Once the old secret is dropped, its cookies stop working.
        let dropped = GateConfig {
            secret: "the-new-secret-the-new-secret-the-new".into(),
            ..GateConfig::default()
        };
        let newer = Gate::new(&dropped, Policy::default_policy(), Arc::new(MemoryRateStore::new(10))).unwrap();
        assert_ne!(newer.pass(&with.facts(), T0 + 1), PassStatus::Valid);
    }

    #[test]
    fn page_escapes_what_it_embeds() {
        let g = gate();
        let r = Req::new(
            "/wiki/%3Cscript%3E?x=%22%3E%3Cimg%20src=x%3E&y=%3C/script%3E",
            ua_headers(FIREFOX),
            "198.51.100.80",
        );
        let page = g.challenge_page(&r.facts(), 12, "<ref>", T0);
        assert!(!page.contains("<ref>") && page.contains("&lt;ref&gt;"));
        assert!(!page.contains("</script>\"") && !page.contains("<img"));
        assert_eq!(page.matches("</script>").count(), 2);
        let params = page_params(&page);
        assert!(params["return"].as_str().unwrap().starts_with("/wiki/"));
        assert_eq!(safe_return(Some("//evil.example/")), "/");
        assert_eq!(safe_return(Some("https://evil.example/")), "/");
        assert_eq!(safe_return(Some("/\\evil.example")), "/");
    }
}

mod sessions {
    use super::*;

    #[test]
    fn logged_in_session_is_never_challenged() {
        let g = gate();
        let login = Req {
            method: Method::POST,
            ..Req::new(
                "/w/index.php?title=Special:UserLogin",
                ua_headers(FIREFOX),
                "198.51.100.90",
            )
        };
        let mut resp = HeaderMap::new();
        resp.append(
            "set-cookie",
            HeaderValue::from_static("wiki_session=s3cr3tsession; path=/; HttpOnly"),
        );
        resp.append("set-cookie", HeaderValue::from_static("wiki_UserID=7; path=/"));
        resp.append("set-cookie", HeaderValue::from_static("wiki_UserName=Editor; path=/"));
        g.observe_response(login.facts().headers, 302, &resp, T0);
        assert_eq!(g.sessions().len(), 1);
        assert!(!format!("{:?}", g.sessions()).contains("s3cr3t"));
        let mut h = ua_headers(FIREFOX); // suspicious-looking headers, but logged in
        h.insert(
            "cookie",
            HeaderValue::from_static("wiki_session=s3cr3tsession; wiki_UserName=Editor"),
        );
        for i in 0..40 {
            let r = Req::new("/w/index.php?title=X&diff=prev&oldid=5", h.clone(), "198.51.100.90");
            let d = g.decide(&r.facts(), T0 + 10 + i);
            assert!(
                matches!(
                    d,
                    Decision::Allow {
                        tier: Tier::KnownGood,
                        ..
                    }
                ),
                "{d:?}"
            );
        }
        // A made-up session cookie is not enough.
        let mut h = ua_headers(FIREFOX);
        h.insert("cookie", HeaderValue::from_static("wiki_session=guessed"));
        let d = g.decide(
            &Req::new("/w/index.php?title=X&diff=prev&oldid=5", h, "198.51.100.91").facts(),
            T0 + 10,
        );
        assert!(matches!(d, Decision::Challenge { .. }), "{d:?}");
    }
}

mod explain_and_shadow {
    use super::*;

    #[test]
    fn explain_does_not_consume_budget() {
        let g = gate();
        let r = Req::new(
            "/w/index.php?title=X&diff=prev&oldid=5",
            browser_headers(),
            "198.51.100.100",
        );
        let before = g.explain(&r.facts(), T0);
        for _ in 0..1000 {
            g.explain(&r.facts(), T0);
        }
        let after = g.explain(&r.facts(), T0);
        assert_eq!(before.limits, after.limits);
        assert_eq!(before.limits[0].remaining, 280); // 300 - 20 after this diff
        assert_eq!(before.cost, 20);
        assert_eq!(before.class, Class::Diff);
        assert_eq!(before.tier, Tier::Unknown);
        assert!(before
            .rules
            .iter()
            .any(|t| t.name == "allow-static" && !t.matched && t.evaluated));
        assert!(matches!(before.decision, Decision::Allow { .. }));
        let json = serde_json::to_value(&before).unwrap();
        assert_eq!(json["class"], "diff");
        assert_eq!(json["decision"]["decision"], "allow");
        // After real requests, explain shows the state.
        g.decide(&r.facts(), T0);
        let x = g.explain(&r.facts(), T0);
        assert_eq!(x.limits[0].remaining, 260);
    }

    #[test]
    fn explain_names_matched_rules_and_score() {
        let g = gate();
        let r = Req::new(
            "/wiki/Special:RecentChanges?limit=500",
            ua_headers("python-requests/2.31"),
            "198.51.100.101",
        );
        let x = g.explain(&r.facts(), T0);
        assert_eq!(x.score, 50);
        assert_eq!(x.tier, Tier::Suspicious);
        assert!(x
            .rules
            .iter()
            .any(|t| t.name == "generic-http-library" && t.matched && t.weight == Some(50)));
        assert_eq!(x.deciding_rule.as_deref(), Some("challenge-suspicious-expensive"));
        assert!(matches!(x.decision, Decision::Challenge { difficulty: 16, .. }));
        assert!(x.rules.iter().any(|t| t.name == "limit-login-posts" && !t.evaluated));
    }

    #[test]
    fn shadow_mode_reports_but_allows() {
        let cfg = GateConfig {
            shadow: true,
            ..config()
        };
        let g = Gate::new(&cfg, Policy::default_policy(), Arc::new(MemoryRateStore::new(100))).unwrap();
        let r = Req::new(
            "/w/index.php?title=X&diff=prev&oldid=5",
            ua_headers(FIREFOX),
            "198.51.100.110",
        );
        let o = g.evaluate(&r.facts(), T0);
        assert!(o.shadow);
        assert!(matches!(o.would_be, Decision::Challenge { .. }));
        assert!(matches!(o.decision, Decision::Allow { .. }));
        assert_eq!(o.decision.reference(), o.would_be.reference());
        assert!(matches!(g.decide(&r.facts(), T0), Decision::Allow { .. }));
    }

    #[test]
    fn shadow_rule_reports_only() {
        let p = Policy::from_toml(
            "[[rules]]\nname = \"try-deny-diffs\"\nclass = [\"diff\"]\naction = \"deny\"\nshadow = true\n",
        )
        .unwrap();
        let g = gate_with(p);
        let r = Req::new("/wiki/X?diff=2", browser_headers(), "198.51.100.111");
        let o = g.evaluate(&r.facts(), T0);
        assert!(matches!(o.decision, Decision::Allow { .. }));
        assert_eq!(o.shadow_rules, vec!["try-deny-diffs".to_string()]);
        let p = Policy::from_toml(
            "shadow = true\n[[rules]]\nname = \"deny-diffs\"\nclass = [\"diff\"]\naction = \"deny\"\n",
        )
        .unwrap();
        let g = gate_with(p);
        let o = g.evaluate(&r.facts(), T0);
        assert!(
            o.shadow && matches!(o.would_be, Decision::Deny { .. }) && matches!(o.decision, Decision::Allow { .. })
        );
    }
}
