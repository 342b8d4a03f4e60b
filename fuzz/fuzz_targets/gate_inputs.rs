//! The gate's parsers on arbitrary bytes: a policy file, a request target, forwarding headers
//! and cookies, and a challenge answer. Any panic is a bug: all of these come from outside.

#![no_main]

use std::net::{IpAddr, Ipv4Addr};
use std::sync::{Arc, OnceLock};

use http::{HeaderMap, HeaderValue, Method, Uri};
use libfuzzer_sys::fuzz_target;
use wikiguard_gate::{Gate, GateConfig, IpSet, MemoryRateStore, Policy, RequestFacts};

fn gate() -> &'static Gate {
    static GATE: OnceLock<Gate> = OnceLock::new();
    GATE.get_or_init(|| {
        let config = GateConfig {
            upstream: "http://127.0.0.1:80".into(),
            secret: "fuzz-secret-0123456789abcdef0123456789".into(),
            ..GateConfig::default()
        };
        match Gate::new(&config, Policy::default_policy(), Arc::new(MemoryRateStore::new(4096))) {
            Ok(g) => g,
            Err(e) => panic!("the default gate must build: {e}"),
        }
    })
}

fuzz_target!(|data: &[u8]| {
    let text = String::from_utf8_lossy(data);
    let _ = Policy::from_toml(&text);
    let uri = Uri::try_from(data).unwrap_or_else(|_| Uri::from_static("/"));
    let _ = wikiguard_gate::classify(&Method::GET, &uri);
    let mut headers = HeaderMap::new();
    if let Ok(v) = HeaderValue::from_bytes(data) {
        for name in ["x-forwarded-for", "forwarded", "cookie", "user-agent", "accept-language"] {
            headers.insert(name, v.clone());
        }
    }
    let trusted = IpSet::parse(&["127.0.0.0/8".to_string()]).unwrap_or_default();
    let peer = IpAddr::V4(Ipv4Addr::LOCALHOST);
    let ip = wikiguard_gate::client_ip(peer, &headers, &trusted);
    let facts = RequestFacts { method: &Method::GET, uri: &uri, headers: &headers, client_ip: ip };
    let g = gate();
    let _ = g.decide(&facts, 1_700_000_000_000);
    let _ = g.verify_challenge(data, &facts, 1_700_000_000_000);
});
