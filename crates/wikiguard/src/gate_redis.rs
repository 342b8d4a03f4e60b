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

/// A [`RateStore`] in Redis, falling back to local counters while Redis is away.
pub struct RedisRateStore {
    client: redis::Client,
    script: redis::Script,
    conns: Mutex<Vec<redis::Connection>>,
    local: Arc<MemoryRateStore>,
    up: AtomicBool,
    retry_at_ms: AtomicU64,
    timeout: Duration,
    prefix: String,
    failures: AtomicU64,
}

impl RedisRateStore {
    /// Connects lazily to `url` (`redis://127.0.0.1:6379/0`); `local` serves while Redis is down.
    pub fn new(url: &str, timeout: Duration, local: Arc<MemoryRateStore>) -> anyhow::Result<RedisRateStore> {
        let client = redis::Client::open(url).map_err(|e| anyhow::anyhow!("gate.redis = {url:?}: {e}"))?;
        Ok(RedisRateStore {
            client,
            script: redis::Script::new(SCRIPT),
            conns: Mutex::new(Vec::new()),
            local,
            up: AtomicBool::new(true),
            retry_at_ms: AtomicU64::new(0),
            timeout,
            prefix: "wikiguard:gate:".into(),
            failures: AtomicU64::new(0),
        })
    }

    /// Whether the last attempt reached Redis.
    pub fn up(&self) -> bool {
        self.up.load(Ordering::Relaxed)
    }

    /// Requests served from local counters because Redis was down.
    pub fn fallbacks(&self) -> u64 {
        self.failures.load(Ordering::Relaxed)
    }

    fn connection(&self) -> redis::RedisResult<redis::Connection> {
        if let Some(c) = self.conns.lock().unwrap_or_else(|p| p.into_inner()).pop() {
            return Ok(c);
        }
        let c = self.client.get_connection_with_timeout(self.timeout)?;
        c.set_read_timeout(Some(self.timeout))?;
        c.set_write_timeout(Some(self.timeout))?;
        Ok(c)
    }

    fn try_redis(&self, key: &str, limit: &RateLimit, cost: u32, now_ms: u64) -> redis::RedisResult<u64> {
        let mut conn = self.connection()?;
        let cost = u64::from(cost).min(limit.burst.max(1));
        let tat: String = self
            .script
            .key(format!("{}{}:{key}", self.prefix, limit.name))
            .arg(now_ms.saturating_mul(1000))
            .arg(limit.emission_interval_us())
            .arg(limit.capacity_us())
            .arg(cost)
            .invoke(&mut conn)?;
        let mut pool = self.conns.lock().unwrap_or_else(|p| p.into_inner());
        if pool.len() < 16 {
            pool.push(conn);
        }
        Ok(tat.parse().unwrap_or(0))
    }
}

impl RateStore for RedisRateStore {
    fn gcra(&self, key: &str, limit: &RateLimit, cost: u32, now: u64) -> GcraOutcome {
        let wall = now_ms();
        if self.up() || wall >= self.retry_at_ms.load(Ordering::Relaxed) {
            match self.try_redis(key, limit, cost, now) {
                Ok(tat) => {
                    if !self.up.swap(true, Ordering::Relaxed) {
                        tracing::info!("gate: Redis is back; shared rate limits resume");
                    }
                    return gcra_step(tat, limit, cost, now).0;
                }
                Err(e) => {
                    if self.up.swap(false, Ordering::Relaxed) {
                        tracing::warn!(error = %e, "gate: Redis is unreachable; rate limits fall back to this node's counters");
                    }
                    self.retry_at_ms.store(wall + 1000, Ordering::Relaxed);
                }
            }
        }
        self.failures.fetch_add(1, Ordering::Relaxed);
        self.local.gcra(key, limit, cost, now)
    }

    fn key_count(&self) -> usize {
        self.local.key_count()
    }
}

/// Login-throttle counters in Redis, shared by every node (the accounts door's
/// `ThrottleCounters`), falling back to this node's counters while Redis is away — the same
/// counter store the gate's rate limits use.
pub struct RedisThrottleCounters {
    client: redis::Client,
    conns: Mutex<Vec<redis::Connection>>,
    local: wikiguard_accounts::throttle::InMemoryCounters,
    up: AtomicBool,
    retry_at_ms: AtomicU64,
    timeout: Duration,
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
        let client = redis::Client::open(url).map_err(|e| anyhow::anyhow!("redis = {url:?}: {e}"))?;
        Ok(RedisThrottleCounters {
            client,
            conns: Mutex::new(Vec::new()),
            local: wikiguard_accounts::throttle::InMemoryCounters::new(max_local),
            up: AtomicBool::new(true),
            retry_at_ms: AtomicU64::new(0),
            timeout,
        })
    }

    fn with<T>(&self, f: impl FnOnce(&mut redis::Connection) -> redis::RedisResult<T>) -> Option<T> {
        let wall = now_ms();
        if !self.up.load(Ordering::Relaxed) && wall < self.retry_at_ms.load(Ordering::Relaxed) {
            return None;
        }
        let conn = match self.conns.lock().unwrap_or_else(|p| p.into_inner()).pop() {
            Some(c) => Ok(c),
            None => self.client.get_connection_with_timeout(self.timeout).and_then(|c| {
                c.set_read_timeout(Some(self.timeout))?;
                c.set_write_timeout(Some(self.timeout))?;
                Ok(c)
            }),
        };
        let result = conn.and_then(|mut c| f(&mut c).map(|v| (v, c)));
        match result {
            Ok((v, c)) => {
                if !self.up.swap(true, Ordering::Relaxed) {
                    tracing::info!("accounts: Redis is back; login throttles are shared again");
                }
                let mut pool = self.conns.lock().unwrap_or_else(|p| p.into_inner());
                if pool.len() < 8 {
                    pool.push(c);
                }
                Some(v)
            }
            Err(e) => {
                if self.up.swap(false, Ordering::Relaxed) {
                    tracing::warn!(error = %e, "accounts: Redis is unreachable; login throttles fall back to this node's counters");
                }
                self.retry_at_ms.store(wall + 1000, Ordering::Relaxed);
                None
            }
        }
    }
}

fn throttle_key(key: &str) -> String {
    format!("wikiguard:login:{key}")
}

impl wikiguard_accounts::throttle::ThrottleCounters for RedisThrottleCounters {
    fn get(&self, key: &str, now: u64) -> Option<wikiguard_accounts::throttle::CounterValue> {
        let k = throttle_key(key);
        match self.with(|c| {
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
        let script = redis::Script::new(INCREMENT);
        match self.with(|c| script.key(&k).arg(now).arg(window_secs).invoke::<(u64, u64)>(c)) {
            Some((count, expires_at)) => wikiguard_accounts::throttle::CounterValue { count, expires_at },
            None => self.local.increment(key, window_secs, now),
        }
    }

    fn expire_at(&self, key: &str, at: u64, now: u64) {
        let k = throttle_key(key);
        let done = self.with(|c| {
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
        if self.with(|c| redis::cmd("DEL").arg(&k).query::<()>(c)).is_none() {
            self.local.remove(key);
        }
    }
}
