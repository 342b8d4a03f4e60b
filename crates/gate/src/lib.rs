//! The decision library of wikiguard's **gate**, the bot-defence reverse proxy in front of
//! MediaWiki. It owns: request classification ([`classify`]), the client address behind
//! trusted proxies ([`client_ip`], [`IpSet`]), the policy ([`Policy`]: ordered rules, named
//! cost-weighted GCRA limits, trust tiers, good bots), the counters ([`RateStore`],
//! [`MemoryRateStore`]), logged-in sessions ([`SessionRegistry`]), the proof-of-work
//! challenge and pass cookie, and the decision itself ([`Gate::decide`],
//! [`Gate::explain`]).
//!
//! It does no I/O, spawns nothing and reads no clock: `now` is always an argument, in Unix
//! **milliseconds** (`u64`). The HTTP server, the Redis store and the CLI live elsewhere and
//! call this API.
//!
//! ```
//! use std::sync::Arc;
//! use wikiguard_gate::{Decision, Gate, GateConfig, MemoryRateStore, Policy, RequestFacts};
//!
//! let config = GateConfig { secret: "0123456789abcdef0123456789abcdef".into(), ..GateConfig::default() };
//! let gate = Gate::new(&config, Policy::default_policy(), Arc::new(MemoryRateStore::new(10_000))).unwrap();
//! let (method, uri, headers) = (http::Method::GET, "/wiki/Main_Page".parse().unwrap(), http::HeaderMap::new());
//! let req = RequestFacts { method: &method, uri: &uri, headers: &headers, client_ip: "203.0.113.9".parse().unwrap() };
//! assert!(matches!(gate.decide(&req, 1_700_000_000_000), Decision::Allow { .. }));
//! ```

#![deny(missing_docs)]
#![cfg_attr(not(test), deny(clippy::unwrap_used, clippy::expect_used, clippy::panic))]

mod challenge;
mod classify;
mod client_ip;
mod config;
mod crypto;
mod error;
mod gate;
pub mod h1;
mod ipset;
mod policy;
mod rate;
mod session;

pub use challenge::{
    deny_page, escape_html, leading_zero_bits, limit_page, safe_return, work_is_sufficient, PassStatus,
    MAX_ANSWER_BYTES, VERIFY_PATH,
};
pub use classify::{classify, Class, Classified, LIMIT_MAX};
pub use client_ip::{client_ip, client_ip_from, ForwardedHeader, X_FORWARDED_FOR};
pub use config::{GateConfig, Timeouts, MIN_SECRET_LEN};
pub use error::{ChallengeError, GateError};
pub use gate::{
    ChallengePass, Decision, Explanation, Gate, LimitTrace, Outcome, Reference, RequestFacts, RuleTrace, Tier,
};
pub use ipset::{client_prefix, parse_cidr, push_ip, IpSet};
pub use policy::{
    Costs, Effect, GoodBot, OverBudget, Policy, Rule, TierPolicy, DEFAULT_MACHINE_MESSAGE, DEFAULT_POLICY_TOML,
    MAX_DIFFICULTY, MAX_POLICY_BYTES,
};
pub use rate::{gcra_step, GcraOutcome, KeyPart, MemoryRateStore, RateLimit, RateStore};
pub use session::SessionRegistry;
