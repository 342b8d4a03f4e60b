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

fn now_ms() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_millis() as u64)
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
