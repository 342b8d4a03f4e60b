//! Rate-limit counters shared by several gate nodes through Redis, with a local fallback.
//!
//! Each GCRA step is one Lua script run (atomic in Redis): it reads the key's theoretical
//! arrival time, applies exactly [`wikiguard_gate::gcra_step`]'s arithmetic, and stores the new
//! time with an expiry when the request fits. The outcome is then recomputed here from the
//! stored time by `gcra_step` itself, so both sides agree by construction.
//!
//! When Redis does not answer (connect or read timeout, an error), the gate keeps working on
//! its local [`MemoryRateStore`]: `up()` turns false, a warning is logged (once per outage)
//! and Redis is tried again after a second.

use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use crate::gate_proxy::now_ms;
use wikiguard_gate::{gcra_step, GcraOutcome, MemoryRateStore, RateLimit, RateStore};

/// Times are microseconds since the epoch: below 2^53, so exact in Lua's doubles.
const SCRIPT: &str = r#"
local tat = tonumber(redis.call('GET', KEYS[1]) or '0')
local now = tonumber(ARGV[1])
local t = tonumber(ARGV[2])
local cap = tonumber(ARGV[3])
local cost = tonumber(ARGV[4])
local base = math.max(tat, now)
local new_tat = base + cost * t
local ahead = new_tat - now
if ahead <= cap and cost > 0 then
  redis.call('SET', KEYS[1], string.format('%.0f', new_tat), 'PX', math.ceil(ahead / 1000) + 1000)
end
return string.format('%.0f', tat)
"#;

/// One Redis server as both stores use it: a small pool of connections with timeouts, and the
/// outage rule: after a failure the store falls back to local counters, says so once, and
/// tries Redis again after a second.
struct RedisLink {
    client: redis::Client,
    conns: Mutex<Vec<redis::Connection>>,
    up: AtomicBool,
    retry_at_ms: AtomicU64,
    timeout: Duration,
    /// What falls back, for the log lines ("gate rate limits", "login throttles").
    what: &'static str,
}

/// Idle connections kept per store.
const MAX_IDLE: usize = 16;

impl RedisLink {
    fn new(url: &str, timeout: Duration, what: &'static str) -> anyhow::Result<RedisLink> {
        let client = redis::Client::open(url).map_err(|e| anyhow::anyhow!("redis = {url:?}: {e}"))?;
        Ok(RedisLink {
            client,
            conns: Mutex::new(Vec::new()),
            up: AtomicBool::new(true),
            retry_at_ms: AtomicU64::new(0),
            timeout,
            what,
        })
    }

    fn up(&self) -> bool {
        self.up.load(Ordering::Relaxed)
    }

    /// Runs `f` on a pooled connection; `None` while Redis is away (the caller falls back).
    fn with<T>(&self, f: impl FnOnce(&mut redis::Connection) -> redis::RedisResult<T>) -> Option<T> {
        let wall = now_ms();
        if !self.up() && wall < self.retry_at_ms.load(Ordering::Relaxed) {
            return None;
        }
        let pooled = self.conns.lock().unwrap_or_else(|p| p.into_inner()).pop();
        let conn = match pooled {
            Some(c) => Ok(c),
            None => self.client.get_connection_with_timeout(self.timeout).and_then(|c| {
                c.set_read_timeout(Some(self.timeout))?;
                c.set_write_timeout(Some(self.timeout))?;
                Ok(c)
            }),
        };
        match conn.and_then(|mut c| f(&mut c).map(|v| (v, c))) {
            Ok((v, c)) => {
                if !self.up.swap(true, Ordering::Relaxed) {
                    tracing::info!("Redis is back; {} are shared again", self.what);
                }
                let mut pool = self.conns.lock().unwrap_or_else(|p| p.into_inner());
                if pool.len() < MAX_IDLE {
                    pool.push(c);
                }
                Some(v)
            }
            Err(e) => {
                if self.up.swap(false, Ordering::Relaxed) {
                    tracing::warn!(error = %e, "Redis is unreachable; {} fall back to this node's counters", self.what);
                }
                self.retry_at_ms.store(wall + 1000, Ordering::Relaxed);
                None
            }
        }
    }
}

/// A [`RateStore`] in Redis, falling back to local counters while Redis is away.
pub struct RedisRateStore {
    link: RedisLink,
    script: redis::Script,
    local: Arc<MemoryRateStore>,
    failures: AtomicU64,
}

/// Where the gate's GCRA state lives in Redis.
const GATE_PREFIX: &str = "wikiguard:gate:";

impl RedisRateStore {
    /// Connects lazily to `url` (`redis://127.0.0.1:6379/0`); `local` serves while Redis is down.
    pub fn new(url: &str, timeout: Duration, local: Arc<MemoryRateStore>) -> anyhow::Result<RedisRateStore> {
        Ok(RedisRateStore {
            link: RedisLink::new(url, timeout, "gate rate limits")?,
            script: redis::Script::new(SCRIPT),
            local,
            failures: AtomicU64::new(0),
        })
    }

    /// Whether the last attempt reached Redis.
    pub fn up(&self) -> bool {
        self.link.up()
    }

    /// Requests served from local counters because Redis was down.
    pub fn fallbacks(&self) -> u64 {
        self.failures.load(Ordering::Relaxed)
    }
}

impl RateStore for RedisRateStore {
    fn gcra(&self, key: &str, limit: &RateLimit, cost: u32, now: u64) -> GcraOutcome {
        let charged = u64::from(cost).min(limit.burst.max(1));
        let tat = self.link.with(|c| {
            self.script
                .key(format!("{GATE_PREFIX}{}:{key}", limit.name))
                .arg(now.saturating_mul(1000))
                .arg(limit.emission_interval_us())
                .arg(limit.capacity_us())
                .arg(charged)
                .invoke::<String>(c)
        });
        match tat {
            Some(tat) => gcra_step(tat.parse().unwrap_or(0), limit, cost, now).0,
            None => {
                self.failures.fetch_add(1, Ordering::Relaxed);
                self.local.gcra(key, limit, cost, now)
            }
        }
    }

    fn key_count(&self) -> usize {
        self.local.key_count()
    }
}

/// Login-throttle counters in Redis, shared by every node (the accounts door's
/// `ThrottleCounters`), falling back to this node's counters while Redis is away — the same
/// counter store the gate's rate limits use.
pub struct RedisThrottleCounters {
    link: RedisLink,
    increment: redis::Script,
    local: wikiguard_accounts::throttle::InMemoryCounters,
}

/// `increment`: a live counter counts one more; an absent or expired one starts at 1 with the
/// window's expiry. Times are the caller's (Unix seconds), so every node decides alike.
const INCREMENT: &str = r#"
local now = tonumber(ARGV[1])
local window = tonumber(ARGV[2])
local exp = tonumber(redis.call('HGET', KEYS[1], 'e') or '0')
local count
if exp > now then
  count = redis.call('HINCRBY', KEYS[1], 'c', 1)
else
  exp = now + window
  redis.call('HSET', KEYS[1], 'c', 1, 'e', exp)
  count = 1
end
redis.call('EXPIREAT', KEYS[1], exp + 1)
return {count, exp}
"#;

impl RedisThrottleCounters {
    /// Counters at `url`; `max_local` bounds the fallback.
    pub fn new(url: &str, timeout: Duration, max_local: usize) -> anyhow::Result<Self> {
        Ok(RedisThrottleCounters {
            link: RedisLink::new(url, timeout, "login throttles")?,
            increment: redis::Script::new(INCREMENT),
            local: wikiguard_accounts::throttle::InMemoryCounters::new(max_local),
        })
    }
}

fn throttle_key(key: &str) -> String {
    format!("wikiguard:login:{key}")
}

impl wikiguard_accounts::throttle::ThrottleCounters for RedisThrottleCounters {
    fn get(&self, key: &str, now: u64) -> Option<wikiguard_accounts::throttle::CounterValue> {
        let k = throttle_key(key);
        match self.link.with(|c| {
            redis::cmd("HMGET")
                .arg(&k)
                .arg("c")
                .arg("e")
                .query::<(Option<u64>, Option<u64>)>(c)
        }) {
            Some((Some(count), Some(expires_at))) if expires_at > now => {
                Some(wikiguard_accounts::throttle::CounterValue { count, expires_at })
            }
            Some(_) => None,
            None => self.local.get(key, now),
        }
    }

    fn increment(&self, key: &str, window_secs: u64, now: u64) -> wikiguard_accounts::throttle::CounterValue {
        let k = throttle_key(key);
        match self
            .link
            .with(|c| self.increment.key(&k).arg(now).arg(window_secs).invoke::<(u64, u64)>(c))
        {
            Some((count, expires_at)) => wikiguard_accounts::throttle::CounterValue { count, expires_at },
            None => self.local.increment(key, window_secs, now),
        }
    }

    fn expire_at(&self, key: &str, at: u64, now: u64) {
        let k = throttle_key(key);
        let done = self.link.with(|c| {
            let live: Option<u64> = redis::cmd("HGET").arg(&k).arg("e").query(c)?;
            if live.is_some_and(|e| e > now) {
                redis::pipe()
                    .cmd("HSET")
                    .arg(&k)
                    .arg("e")
                    .arg(at)
                    .cmd("EXPIREAT")
                    .arg(&k)
                    .arg(at + 1)
                    .query::<()>(c)?;
            }
            Ok(())
        });
        if done.is_none() {
            self.local.expire_at(key, at, now);
        }
    }

    fn remove(&self, key: &str) {
        let k = throttle_key(key);
        if self.link.with(|c| redis::cmd("DEL").arg(&k).query::<()>(c)).is_none() {
            self.local.remove(key);
        }
    }
}
