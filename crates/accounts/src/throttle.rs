//! Login throttling, and the cap on second factors after a right password.
//!
//! MediaWiki asks [`Throttle::attempt`] before it checks a password and reports the outcome
//! with [`Throttle::result`]. Failures are counted in three **scopes**, each with a budget of
//! failures per window, plus one account-wide counter:
//!
//! | counter | key | over budget means |
//! |---|---|---|
//! | per IP | the address | [`AttemptDecision::Throttle`] for that address |
//! | per prefix | its /24 or /64 | `Throttle` for the whole network |
//! | per account + prefix | user and /24 or /64 | `Throttle` for that account from that network only |
//! | per account | user, any network | [`AttemptDecision::RequireChallenge`], never a lock |
//!
//! The last row is the rule that keeps owners in: an attacker spraying one account from
//! many networks drives up only the account-wide counter, which asks everyone (owner
//! included) to solve a challenge (CAPTCHA) but never refuses the owner outright. There is
//! no "locked" answer at all. Throttles are per network, so the owner, on their own network,
//! is never throttled by someone else's failures.
//!
//! Each scope is this state machine (`n` = failures in the current window):
//!
//! ```text
//!   Clear ──failure──▶ Counting(n)           window elapsed: back to Clear
//!                        │ failure, n+1 >= budget
//!                        ▼
//!              Blocked(until = now + base · 2^(n+1-budget), capped at max_delay)
//!                        │ attempt before `until`: Throttle { retry_after = until - now }
//!                        │ now >= until: Counting(n) again; the next failure blocks for twice as long
//!                        ▼
//!   account+prefix only: success ──▶ Clear (the owner signing in resets their network)
//! ```
//!
//! IP and prefix counters are not reset by a success: one working account must not buy an
//! attacker a fresh budget for spraying others.
//!
//! **Stolen password.** A failed second factor after the right password means someone else
//! may know the password. [`Throttle::second_factor_failed`] counts these per account; at
//! `second_factor.max_failures` in the window further second-factor attempts are blocked
//! for a growing time, and once the count reaches `notify_after_failures` the owner is told,
//! at most once per `notify_window_secs`. The default waits for 3 failures, not 1: a single
//! mistyped code is the owner far more often than a thief, and false alarms teach people to
//! ignore the real one.
//!
//! Counters live behind [`ThrottleCounters`] (the gate's counter store: memory or Redis);
//! [`InMemoryCounters`] is a bounded implementation for tests and single-node use. Keys
//! contain addresses and user names; they expire with their window.

use crate::net::{canonical, network_prefix};
use crate::policy::mediawiki_normalise;
use serde::{Deserialize, Serialize};
use std::collections::HashMap;
use std::net::IpAddr;
use std::sync::Mutex;

/// A counter's value and when it expires.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct CounterValue {
    /// Increments in the current window.
    pub count: u64,
    /// Unix time the counter disappears.
    pub expires_at: u64,
}

/// Expiring counters. Implementations must treat a counter whose `expires_at <= now` as
/// absent.
pub trait ThrottleCounters {
    /// The live counter at `key`, if any.
    fn get(&self, key: &str, now: u64) -> Option<CounterValue>;
    /// Adds one to `key`, starting a new counter expiring at `now + window_secs` if none is
    /// live; an existing counter keeps its expiry. Returns the new value.
    fn increment(&self, key: &str, window_secs: u64, now: u64) -> CounterValue;
    /// Sets the expiry of the live counter at `key` to `at` (no-op if none).
    fn expire_at(&self, key: &str, at: u64, now: u64);
    /// Deletes `key`.
    fn remove(&self, key: &str);
}

/// A bounded in-memory [`ThrottleCounters`]. When full it drops expired counters, then the
/// tenth of counters closest to expiry: an attacker filling the table can at worst shorten
/// throttles, never make it grow without bound.
#[derive(Debug)]
pub struct InMemoryCounters {
    max_entries: usize,
    map: Mutex<HashMap<String, CounterValue>>,
}

impl InMemoryCounters {
    /// A store holding at most `max_entries` counters.
    pub fn new(max_entries: usize) -> Self {
        InMemoryCounters {
            max_entries: max_entries.max(10),
            map: Mutex::new(HashMap::new()),
        }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<String, CounterValue>> {
        // A panic while holding the lock cannot leave a counter half-written (values are Copy).
        self.map.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Live and expired counters currently held.
    pub fn len(&self) -> usize {
        self.lock().len()
    }

    /// Whether no counter is held.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

impl ThrottleCounters for InMemoryCounters {
    fn get(&self, key: &str, now: u64) -> Option<CounterValue> {
        self.lock().get(key).copied().filter(|v| v.expires_at > now)
    }

    fn increment(&self, key: &str, window_secs: u64, now: u64) -> CounterValue {
        let mut map = self.lock();
        if let Some(v) = map.get_mut(key) {
            if v.expires_at > now {
                v.count = v.count.saturating_add(1);
                return *v;
            }
        }
        if map.len() >= self.max_entries && !map.contains_key(key) {
            map.retain(|_, v| v.expires_at > now);
            if map.len() >= self.max_entries {
                let mut expiries: Vec<u64> = map.values().map(|v| v.expires_at).collect();
                expiries.sort_unstable();
                let cut = expiries.get(self.max_entries / 10).copied().unwrap_or(u64::MAX);
                map.retain(|_, v| v.expires_at > cut);
            }
        }
        let v = CounterValue {
            count: 1,
            expires_at: now.saturating_add(window_secs.max(1)),
        };
        map.insert(key.to_owned(), v);
        v
    }

    fn expire_at(&self, key: &str, at: u64, now: u64) {
        if let Some(v) = self.lock().get_mut(key) {
            if v.expires_at > now {
                v.expires_at = at;
            }
        }
    }

    fn remove(&self, key: &str) {
        self.lock().remove(key);
    }
}

/// Failures allowed per window.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Budget {
    /// Failures before the scope is blocked (or, for the account, challenged).
    pub max_failures: u64,
    /// Window in seconds.
    pub window_secs: u64,
}

/// Throttle settings; the defaults suit a small wiki.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct ThrottleConfig {
    /// Per address. Default 20 per hour (NAT and schools share addresses).
    pub ip: Budget,
    /// Per /24 or /64. Default 100 per hour.
    pub prefix: Budget,
    /// Per account and network. Default 5 per 15 minutes.
    pub account_prefix: Budget,
    /// Per account from anywhere: a challenge after this many. Default 10 per hour.
    pub account: Budget,
    /// First block in seconds; doubles with each failure over budget. Default 30.
    pub base_delay_secs: u64,
    /// Longest block. Default 3600.
    pub max_delay_secs: u64,
    /// Failed second factors after a right password. Default 5 per 15 minutes.
    pub second_factor: Budget,
    /// First second-factor block in seconds (doubles). Default 900.
    pub second_factor_block_secs: u64,
    /// Failed second factors before the owner is told. Default 3.
    pub notify_after_failures: u64,
    /// At most one stolen-password notice per this many seconds. Default one day.
    pub notify_window_secs: u64,
}

impl Default for ThrottleConfig {
    fn default() -> Self {
        ThrottleConfig {
            ip: Budget {
                max_failures: 20,
                window_secs: 3600,
            },
            prefix: Budget {
                max_failures: 100,
                window_secs: 3600,
            },
            account_prefix: Budget {
                max_failures: 5,
                window_secs: 900,
            },
            account: Budget {
                max_failures: 10,
                window_secs: 3600,
            },
            base_delay_secs: 30,
            max_delay_secs: 3600,
            second_factor: Budget {
                max_failures: 5,
                window_secs: 900,
            },
            second_factor_block_secs: 900,
            notify_after_failures: 3,
            notify_window_secs: 86_400,
        }
    }
}

/// A throttled scope.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Scope {
    /// One address.
    Ip,
    /// One /24 or /64.
    Prefix,
    /// One account from one network.
    AccountPrefix,
}

/// Why a challenge is asked for.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum ChallengeReason {
    /// Many failures for this account from many networks.
    AccountUnderAttack,
    /// No user agent, from an address that already failed.
    NoUserAgent,
}

impl ChallengeReason {
    /// Stable code: `account-under-attack`, `no-user-agent`.
    pub fn as_str(self) -> &'static str {
        match self {
            ChallengeReason::AccountUnderAttack => "account-under-attack",
            ChallengeReason::NoUserAgent => "no-user-agent",
        }
    }
}

/// The answer to [`Throttle::attempt`] (wire form: `{"decision": "allow"}`, …).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "decision", rename_all = "kebab-case")]
pub enum AttemptDecision {
    /// Check the password.
    Allow,
    /// Check the password only if the client solves a challenge (CAPTCHA) in this request.
    RequireChallenge {
        /// Why.
        reason: ChallengeReason,
    },
    /// Do not check the password; answer "try again later".
    Throttle {
        /// Seconds until the block ends.
        retry_after_secs: u64,
        /// Which scope is blocked (the longest-lasting one).
        scope: Scope,
    },
}

/// What a reported failure changed.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
pub struct ResultEffect {
    /// Scopes this failure blocked, with the block length.
    pub throttled: Vec<(Scope, u64)>,
    /// The account-wide counter reached its challenge threshold with this failure.
    pub challenge_started: bool,
}

/// The answer to [`Throttle::second_factor_failed`].
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct SecondFactorOutcome {
    /// Failed second factors in the current window.
    pub failures: u64,
    /// Second factors are blocked for this many seconds (refuse without checking).
    pub blocked_for_secs: Option<u64>,
    /// Tell the owner their password is known to someone (emit
    /// [`crate::audit::EventKind::StolenPasswordNotice`]).
    pub notify_owner: bool,
}

/// The login throttle over a counter store.
#[derive(Debug)]
pub struct Throttle<C> {
    config: ThrottleConfig,
    counters: C,
}

struct Keys {
    ip: String,
    prefix: String,
    account_prefix: String,
    account: String,
}

fn keys(username: &str, ip: IpAddr) -> Keys {
    let user = mediawiki_normalise(username);
    let ip = canonical(ip);
    let prefix = network_prefix(ip);
    Keys {
        ip: format!("accounts:ip|{ip}"),
        prefix: format!("accounts:prefix|{prefix}"),
        account_prefix: format!("accounts:ap|{prefix}|{user}"),
        account: format!("accounts:acct|{user}"),
    }
}

fn block_key(key: &str) -> String {
    format!("{key}|blocked")
}

impl<C: ThrottleCounters> Throttle<C> {
    /// A throttle with `config` over `counters`.
    pub fn new(config: ThrottleConfig, counters: C) -> Self {
        Throttle { config, counters }
    }

    /// The counter store.
    pub fn counters(&self) -> &C {
        &self.counters
    }

    fn delay(&self, base: u64, over: u64) -> u64 {
        let factor = 1u64.checked_shl(over.min(40) as u32).unwrap_or(u64::MAX);
        base.saturating_mul(factor).min(self.config.max_delay_secs.max(base))
    }

    /// Before checking a password for `username` from `ip`.
    pub fn attempt(&self, username: &str, ip: IpAddr, user_agent: &str, now: u64) -> AttemptDecision {
        let k = keys(username, ip);
        let mut worst: Option<(u64, Scope)> = None;
        for (key, scope) in [
            (&k.ip, Scope::Ip),
            (&k.prefix, Scope::Prefix),
            (&k.account_prefix, Scope::AccountPrefix),
        ] {
            if let Some(b) = self.counters.get(&block_key(key), now) {
                let left = b.expires_at.saturating_sub(now);
                if worst.is_none_or(|(w, _)| left > w) {
                    worst = Some((left, scope));
                }
            }
        }
        if let Some((retry_after_secs, scope)) = worst {
            return AttemptDecision::Throttle {
                retry_after_secs,
                scope,
            };
        }
        let account = self.counters.get(&k.account, now).map_or(0, |v| v.count);
        if account >= self.config.account.max_failures {
            return AttemptDecision::RequireChallenge {
                reason: ChallengeReason::AccountUnderAttack,
            };
        }
        if user_agent.trim().is_empty() && self.counters.get(&k.ip, now).is_some() {
            return AttemptDecision::RequireChallenge {
                reason: ChallengeReason::NoUserAgent,
            };
        }
        AttemptDecision::Allow
    }

    /// After checking a password: `success` is whether it was right.
    pub fn result(&self, username: &str, ip: IpAddr, success: bool, now: u64) -> ResultEffect {
        let k = keys(username, ip);
        let mut effect = ResultEffect::default();
        if success {
            self.counters.remove(&k.account_prefix);
            self.counters.remove(&block_key(&k.account_prefix));
            return effect;
        }
        let c = &self.config;
        for (key, scope, budget) in [
            (&k.ip, Scope::Ip, c.ip),
            (&k.prefix, Scope::Prefix, c.prefix),
            (&k.account_prefix, Scope::AccountPrefix, c.account_prefix),
        ] {
            let v = self.counters.increment(key, budget.window_secs, now);
            if v.count >= budget.max_failures.max(1) {
                let delay = self.delay(c.base_delay_secs, v.count - budget.max_failures.max(1));
                let bk = block_key(key);
                self.counters.increment(&bk, delay, now);
                self.counters.expire_at(&bk, now.saturating_add(delay), now);
                effect.throttled.push((scope, delay));
            }
        }
        let v = self.counters.increment(&k.account, c.account.window_secs, now);
        effect.challenge_started = v.count == c.account.max_failures;
        effect
    }

    /// Before checking a second factor: `Some(seconds)` if second factors are blocked.
    pub fn second_factor_blocked(&self, username: &str, now: u64) -> Option<u64> {
        let key = format!("accounts:2fa|{}|blocked", mediawiki_normalise(username));
        self.counters.get(&key, now).map(|v| v.expires_at.saturating_sub(now))
    }

    /// A second factor failed after the right password for `username`.
    pub fn second_factor_failed(&self, username: &str, ip: IpAddr, now: u64) -> SecondFactorOutcome {
        let _ = ip; // Counted per account: a thief may change networks between tries.
        let user = mediawiki_normalise(username);
        let c = &self.config;
        let key = format!("accounts:2fa|{user}");
        let v = self.counters.increment(&key, c.second_factor.window_secs, now);
        let max = c.second_factor.max_failures.max(1);
        let mut blocked_for_secs = None;
        if v.count >= max {
            let delay = self.delay(c.second_factor_block_secs, v.count - max);
            let bk = block_key(&key);
            self.counters.increment(&bk, delay, now);
            self.counters.expire_at(&bk, now.saturating_add(delay), now);
            blocked_for_secs = Some(delay);
        }
        let mut notify_owner = false;
        if v.count >= c.notify_after_failures.max(1) {
            let nk = format!("accounts:2fa-notified|{user}");
            if self.counters.get(&nk, now).is_none() {
                self.counters.increment(&nk, c.notify_window_secs, now);
                notify_owner = true;
            }
        }
        SecondFactorOutcome {
            failures: v.count,
            blocked_for_secs,
            notify_owner,
        }
    }

    /// A second factor succeeded: the failure sequence ends (a notice already sent stays
    /// rate-limited by its window).
    pub fn second_factor_succeeded(&self, username: &str) {
        self.counters
            .remove(&format!("accounts:2fa|{}", mediawiki_normalise(username)));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn throttle() -> Throttle<InMemoryCounters> {
        Throttle::new(ThrottleConfig::default(), InMemoryCounters::new(100_000))
    }

    fn ip(s: &str) -> IpAddr {
        s.parse().unwrap()
    }

    const UA: &str = "Mozilla/5.0";

    #[test]
    fn spraying_one_account_from_many_networks_never_locks_the_owner_out() {
        let t = throttle();
        let mut now = 1_000_000;
        // 2000 attempts from 1000 different /24s, two each.
        for i in 0..1000u32 {
            let addr = ip(&format!("10.{}.{}.7", i / 256, i % 256));
            for _ in 0..2 {
                let d = t.attempt("Admin", addr, UA, now);
                assert!(
                    !matches!(d, AttemptDecision::Throttle { .. }),
                    "attacker at {addr} throttled: {d:?}"
                );
                if d == AttemptDecision::Allow || matches!(d, AttemptDecision::RequireChallenge { .. }) {
                    t.result("Admin", addr, false, now);
                }
                now += 1;
            }
        }
        // The owner, from home: a challenge, not a lock; after solving it, they sign in.
        let home = ip("198.51.100.20");
        assert_eq!(
            t.attempt("Admin", home, UA, now),
            AttemptDecision::RequireChallenge {
                reason: ChallengeReason::AccountUnderAttack
            }
        );
        t.result("Admin", home, true, now);
        // Other accounts are unaffected.
        assert_eq!(t.attempt("Bob", home, UA, now), AttemptDecision::Allow);
        // Name variants count as the same account.
        assert!(matches!(
            t.attempt("admin", home, UA, now),
            AttemptDecision::RequireChallenge { .. }
        ));
    }

    #[test]
    fn one_network_hammering_one_account_is_throttled_for_that_network_only() {
        let t = throttle();
        let now = 1_000_000;
        let attacker = ip("203.0.113.5");
        for _ in 0..5 {
            assert_eq!(t.attempt("Alice", attacker, UA, now), AttemptDecision::Allow);
            t.result("Alice", attacker, false, now);
        }
        assert_eq!(
            t.attempt("Alice", attacker, UA, now),
            AttemptDecision::Throttle {
                retry_after_secs: 30,
                scope: Scope::AccountPrefix
            }
        );
        // A neighbour in the same /24 is throttled for Alice too (same network)…
        assert!(matches!(
            t.attempt("Alice", ip("203.0.113.9"), UA, now),
            AttemptDecision::Throttle { .. }
        ));
        // …but Alice from elsewhere is not, and the attacker can still try other accounts.
        assert_eq!(t.attempt("Alice", ip("192.0.2.1"), UA, now), AttemptDecision::Allow);
        assert_eq!(t.attempt("Carol", attacker, UA, now), AttemptDecision::Allow);
        // Growing delays: after the block, one more failure blocks for 60 s, then 120 s.
        let now = now + 31;
        assert_eq!(t.attempt("Alice", attacker, UA, now), AttemptDecision::Allow);
        let e = t.result("Alice", attacker, false, now);
        assert_eq!(e.throttled, vec![(Scope::AccountPrefix, 60)]);
        let now = now + 61;
        assert_eq!(
            t.result("Alice", attacker, false, now).throttled,
            vec![(Scope::AccountPrefix, 120)]
        );
        // The owner signing in from that network clears it.
        t.result("Alice", attacker, true, now);
        assert_eq!(t.attempt("Alice", attacker, UA, now), AttemptDecision::Allow);
    }

    #[test]
    fn an_address_spraying_many_accounts_is_throttled() {
        let t = throttle();
        let now = 5_000;
        let bot = ip("2001:db8::1");
        for i in 0..20 {
            let user = format!("User{i}");
            assert_eq!(t.attempt(&user, bot, UA, now), AttemptDecision::Allow, "{i}");
            t.result(&user, bot, false, now);
        }
        assert_eq!(
            t.attempt("Someone", bot, UA, now),
            AttemptDecision::Throttle {
                retry_after_secs: 30,
                scope: Scope::Ip
            }
        );
        // A success from the address does not reset its budget.
        t.result("Mine", bot, true, now);
        assert!(matches!(
            t.attempt("Someone", bot, UA, now),
            AttemptDecision::Throttle { scope: Scope::Ip, .. }
        ));
        // The window ends the count.
        assert_eq!(t.attempt("Someone", bot, UA, now + 3601), AttemptDecision::Allow);
    }

    #[test]
    fn prefix_budget_catches_address_hopping() {
        let t = throttle();
        let now = 7_000;
        for i in 0..100u32 {
            let a = ip(&format!("2001:db8:0:1::{:x}", i + 1));
            t.result(&format!("U{i}"), a, false, now);
        }
        assert_eq!(
            t.attempt("Fresh", ip("2001:db8:0:1::ffff"), UA, now),
            AttemptDecision::Throttle {
                retry_after_secs: 30,
                scope: Scope::Prefix
            }
        );
        assert_eq!(
            t.attempt("Fresh", ip("2001:db8:0:2::1"), UA, now),
            AttemptDecision::Allow
        );
    }

    #[test]
    fn missing_user_agent_after_failures_needs_a_challenge() {
        let t = throttle();
        let a = ip("192.0.2.50");
        assert_eq!(t.attempt("X", a, "", 1), AttemptDecision::Allow);
        t.result("X", a, false, 1);
        assert_eq!(
            t.attempt("X", a, " ", 2),
            AttemptDecision::RequireChallenge {
                reason: ChallengeReason::NoUserAgent
            }
        );
    }

    #[test]
    fn stolen_password_is_capped_and_notified_once() {
        let t = throttle();
        let a = ip("192.0.2.60");
        let mut now = 10_000;
        let mut notices = 0;
        for i in 1..=5u64 {
            assert_eq!(t.second_factor_blocked("Admin", now), None);
            let o = t.second_factor_failed("Admin", a, now);
            assert_eq!(o.failures, i);
            notices += u32::from(o.notify_owner);
            assert_eq!(o.notify_owner, i == 3, "failure {i}");
            assert_eq!(o.blocked_for_secs, (i == 5).then_some(900));
            now += 10;
        }
        assert_eq!(t.second_factor_blocked("Admin", now), Some(890));
        // After the block (the 15-minute count has ended too) a new sequence starts; the owner
        // was already told today, so no second notice.
        now += 900;
        assert_eq!(t.second_factor_blocked("Admin", now), None);
        for i in 1..=5u64 {
            let o = t.second_factor_failed("Admin", a, now);
            assert_eq!((o.failures, o.notify_owner), (i, false));
            notices += u32::from(o.notify_owner);
        }
        assert_eq!(notices, 1);
        // Success ends the sequence.
        t.second_factor_succeeded("Admin");
        assert_eq!(t.second_factor_failed("Admin", a, now).failures, 1);
    }

    #[test]
    fn memory_is_bounded() {
        let c = InMemoryCounters::new(100);
        for i in 0..1000 {
            c.increment(&format!("k{i}"), 60 + i, 0);
            assert!(c.len() <= 100);
        }
        assert_eq!(c.get("k999", 0).map(|v| v.count), Some(1));
        assert_eq!(c.get("k999", 60 + 999), None);
    }

    #[test]
    fn wire_form() {
        let d = AttemptDecision::Throttle {
            retry_after_secs: 5,
            scope: Scope::AccountPrefix,
        };
        assert_eq!(
            serde_json::to_string(&d).unwrap(),
            r#"{"decision":"throttle","retry_after_secs":5,"scope":"account-prefix"}"#
        );
        let d = AttemptDecision::RequireChallenge {
            reason: ChallengeReason::AccountUnderAttack,
        };
        assert_eq!(
            serde_json::to_string(&d).unwrap(),
            r#"{"decision":"require-challenge","reason":"account-under-attack"}"#
        );
        assert_eq!(
            serde_json::to_string(&AttemptDecision::Allow).unwrap(),
            r#"{"decision":"allow"}"#
        );
    }
}
