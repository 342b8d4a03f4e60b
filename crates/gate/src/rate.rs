//! Cost-weighted rate limiting with GCRA (the generic cell rate algorithm), and
//! [`MemoryRateStore`], the bounded in-memory counter store.
//!
//! A limit allows `rate` cost units per `period_seconds`, with bursts of up to `burst`
//! units. GCRA keeps one number per key, the theoretical arrival time (TAT) of the next
//! unit: with emission interval `T = period / rate`, a request of cost `c` at time `t` is
//! allowed iff `max(TAT, t) + c·T − t ≤ burst·T`, and then `TAT = max(TAT, t) + c·T`.
//! That is a leaky bucket of capacity `burst·T` draining at one unit per `T`, stored as the
//! time it will be empty. A request costing more than `burst` is charged as `burst` (it could
//! otherwise never pass). Cost 0 never changes the state, so it is a read-only peek.
//!
//! Times inside are microseconds so that `T` stays exact enough for rates up to a million
//! units per second; the interface is milliseconds like the rest of the crate.

use std::collections::HashMap;
use std::hash::{BuildHasherDefault, Hasher};
use std::sync::Mutex;

use serde::{Deserialize, Serialize};

/// What a limit's counter is keyed by; a limit names any combination.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum KeyPart {
    /// The client IP address.
    Ip,
    /// The client's /24 (IPv4) or /64 (IPv6).
    Prefix,
    /// The user agent (hashed).
    UserAgent,
    /// The MediaWiki session cookie (keyed hash; "none" without a session).
    Session,
    /// The request class.
    Class,
}

/// A named rate limit.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct RateLimit {
    /// Its name in the policy (`[limits.NAME]`), reported as the RateLimit-Policy.
    pub name: String,
    /// Cost units allowed per period.
    pub rate: u64,
    /// The period, in seconds.
    pub period_seconds: u64,
    /// Most cost units allowed at once (bucket size); at least 1.
    pub burst: u64,
    /// What the counter is keyed by.
    pub key: Vec<KeyPart>,
}

impl RateLimit {
    /// The emission interval `T` in microseconds (at least 1).
    pub fn emission_interval_us(&self) -> u64 {
        let period_us = u128::from(self.period_seconds) * 1_000_000;
        let t = period_us / u128::from(self.rate.max(1));
        u64::try_from(t).unwrap_or(u64::MAX).max(1)
    }

    /// Burst tolerance `burst·T` in microseconds: how far the TAT may run ahead of now.
    pub fn capacity_us(&self) -> u64 {
        self.emission_interval_us().saturating_mul(self.burst.max(1))
    }
}

/// The result of one GCRA step.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub struct GcraOutcome {
    /// Whether the request fits the budget (and was charged).
    pub allowed: bool,
    /// Whole cost units still available right now (after this request, if allowed).
    pub remaining: u64,
    /// When denied: milliseconds until this request would be allowed; 0 when allowed.
    pub retry_after_ms: u64,
    /// Milliseconds until the bucket is completely empty (the full burst is available again).
    pub reset_ms: u64,
}

/// The pure GCRA step: given the stored TAT (µs, 0 when none) returns the outcome and the new
/// TAT to store. Backends (memory, Redis Lua) must compute exactly this.
pub fn gcra_step(tat_us: u64, limit: &RateLimit, cost: u32, now_ms: u64) -> (GcraOutcome, u64) {
    let now = now_ms.saturating_mul(1000);
    let t = limit.emission_interval_us();
    let cap = limit.capacity_us();
    let cost = u64::from(cost).min(limit.burst.max(1));
    let base = tat_us.max(now);
    let new_tat = base.saturating_add(cost.saturating_mul(t));
    let ahead = new_tat - now;
    if ahead <= cap {
        let remaining = (cap - ahead) / t;
        let out = GcraOutcome {
            allowed: true,
            remaining,
            retry_after_ms: 0,
            reset_ms: ceil_ms(if cost == 0 { base - now } else { ahead }),
        };
        (out, if cost == 0 { tat_us } else { new_tat })
    } else {
        let backlog = base - now;
        let remaining = cap.saturating_sub(backlog) / t;
        let out = GcraOutcome {
            allowed: false,
            remaining,
            retry_after_ms: ceil_ms(ahead - cap),
            reset_ms: ceil_ms(backlog),
        };
        (out, tat_us)
    }
}

fn ceil_ms(us: u64) -> u64 {
    us.div_ceil(1000)
}

/// Where GCRA state lives. Implementations must be atomic per key (two concurrent requests
/// never both spend the last unit) and treat `cost == 0` as a read-only peek.
pub trait RateStore: Send + Sync {
    /// Charges `cost` units against `key` under `limit` at `now_ms` (see [`gcra_step`]).
    fn gcra(&self, key: &str, limit: &RateLimit, cost: u32, now_ms: u64) -> GcraOutcome;
    /// How many keys are stored (for the limiter key-count metric).
    fn key_count(&self) -> usize;
}

#[derive(Debug, Clone, Copy)]
struct Entry {
    tat_us: u64,
    last_used_ms: u64,
}

/// The map of one shard. Its keys are already the store's keyed SipHash of the counter's name,
/// so the map uses them as they are instead of hashing them again.
type ShardMap = HashMap<u64, Entry, BuildHasherDefault<KeyHashHasher>>;

/// A shard below this many keys is not swept for drained ones.
const MIN_SWEEP: usize = 1024;

struct Shard {
    map: ShardMap,
    /// Sweep drained keys out when the map reaches this size.
    sweep_at: usize,
}

impl Default for Shard {
    fn default() -> Self {
        Shard {
            map: ShardMap::default(),
            sweep_at: MIN_SWEEP,
        }
    }
}

impl Shard {
    /// Makes room for one more key at `now_us`.
    fn make_room(&mut self, per_shard: usize, now_us: u64) {
        let map = &mut self.map;
        if map.len() < self.sweep_at.min(per_shard) {
            return;
        }
        map.retain(|_, e| e.tat_us > now_us);
        let target = per_shard - (per_shard / 8).max(1);
        if map.len() >= per_shard {
            let mut ages: Vec<u64> = map.values().map(|e| e.last_used_ms).collect();
            let drop = map.len() - target;
            let (_, cutoff, _) = ages.select_nth_unstable(drop - 1);
            let cutoff = *cutoff;
            let mut dropped = 0;
            map.retain(|_, e| {
                if dropped < drop && e.last_used_ms <= cutoff {
                    dropped += 1;
                    false
                } else {
                    true
                }
            });
        }
        self.sweep_at = (2 * map.len()).max(MIN_SWEEP);
        // A table left big by an earlier flood would keep its survivors spread over cold memory.
        if map.capacity() > 4 * self.sweep_at {
            map.shrink_to(self.sweep_at);
        }
    }
}

/// A shard with its lock, aligned to its own cache lines: the gate's workers lock shards all
/// the time, and two shards' mutexes sharing a line would bounce it between cores on every
/// request. The lock word and the map's header lie in the same line.
#[repr(align(128))]
struct LockedShard(Mutex<Shard>);

/// Hands a `u64` map key (a keyed hash already) through as its own hash.
#[derive(Default)]
struct KeyHashHasher(u64);

impl Hasher for KeyHashHasher {
    fn finish(&self) -> u64 {
        self.0
    }

    fn write(&mut self, bytes: &[u8]) {
        // Only `write_u64` is used (the keys are u64); anything else still hashes all its bytes.
        for b in bytes {
            self.0 = (self.0.rotate_left(8) ^ u64::from(*b)).wrapping_mul(0x9e37_79b9_7f4a_7c15);
        }
    }

    fn write_u64(&mut self, n: u64) {
        self.0 = n;
    }
}

/// Thread-safe, bounded in-memory [`RateStore`]: keys are spread over sharded mutexes. Keys
/// whose bucket has drained hold the same state as "never seen", so dropping them loses
/// nothing: a shard sweeps them out whenever it has doubled since its last sweep, which keeps
/// it near the number of clients active within one bucket's drain time (a flood of one-off
/// clients stays a small, cache-resident table, not a million cold entries) at an amortised
/// cost of about two entries visited per insert. A shard full of live buckets drops its least
/// recently used, an eighth of the shard at a time so the cost is spread over many inserts.
///
/// A counter is stored under a 64-bit SipHash of its name with this store's random key, not
/// under the name: an entry is 24 bytes in place, with no allocation per key and no pointer to
/// follow on a lookup, which matters when a flood of distinct clients fills the store with
/// its million keys. Two names share a counter only if their hashes collide: about one chance in
/// 3·10⁷ for a full store, and not something a client can aim at without the key.
pub struct MemoryRateStore {
    shards: Vec<LockedShard>,
    per_shard: usize,
    hasher: std::collections::hash_map::RandomState,
}

impl std::fmt::Debug for MemoryRateStore {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("MemoryRateStore")
            .field("shards", &self.shards.len())
            .field("per_shard", &self.per_shard)
            .finish()
    }
}

const SHARDS: usize = 16;

impl MemoryRateStore {
    /// A store holding at most about `max_keys` keys (at least one per shard).
    pub fn new(max_keys: usize) -> Self {
        let per_shard = max_keys.div_ceil(SHARDS).max(1);
        MemoryRateStore {
            shards: (0..SHARDS).map(|_| LockedShard(Mutex::new(Shard::default()))).collect(),
            per_shard,
            hasher: std::collections::hash_map::RandomState::new(),
        }
    }

    /// The most keys this store will hold.
    pub fn capacity(&self) -> usize {
        self.per_shard * SHARDS
    }

    /// The key's hash and its shard. The shard comes from bits the map does not lean on (it
    /// takes its bucket from the low bits and its tag from the top seven).
    fn locate(&self, key: &str) -> (u64, &Mutex<Shard>) {
        use std::hash::BuildHasher;
        let h = self.hasher.hash_one(key);
        let i = ((h >> 32) as usize) % self.shards.len();
        (h, &self.shards[i].0)
    }
}

impl RateStore for MemoryRateStore {
    fn gcra(&self, key: &str, limit: &RateLimit, cost: u32, now_ms: u64) -> GcraOutcome {
        let (h, shard) = self.locate(key);
        // A poisoned shard still holds consistent entries (each update is one assignment).
        let mut shard = match shard.lock() {
            Ok(m) => m,
            Err(poisoned) => poisoned.into_inner(),
        };
        let tat = shard.map.get(&h).map_or(0, |e| e.tat_us);
        let (out, new_tat) = gcra_step(tat, limit, cost, now_ms);
        if new_tat != tat {
            if let Some(e) = shard.map.get_mut(&h) {
                *e = Entry {
                    tat_us: new_tat,
                    last_used_ms: now_ms,
                };
            } else {
                shard.make_room(self.per_shard, now_ms.saturating_mul(1000));
                shard.map.insert(
                    h,
                    Entry {
                        tat_us: new_tat,
                        last_used_ms: now_ms,
                    },
                );
            }
        } else if let Some(e) = shard.map.get_mut(&h) {
            e.last_used_ms = now_ms;
        }
        out
    }

    fn key_count(&self) -> usize {
        self.shards
            .iter()
            .map(|s| {
                s.0.lock()
                    .map(|m| m.map.len())
                    .unwrap_or_else(|p| p.into_inner().map.len())
            })
            .sum()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn lim(rate: u64, period: u64, burst: u64) -> RateLimit {
        RateLimit {
            name: "t".into(),
            rate,
            period_seconds: period,
            burst,
            key: vec![KeyPart::Ip],
        }
    }

    #[test]
    fn burst_then_steady_rate() {
        let s = MemoryRateStore::new(100);
        let l = lim(60, 60, 5); // 1 unit per second, burst 5
        for i in 0..5 {
            let o = s.gcra("k", &l, 1, 1_000_000);
            assert!(o.allowed, "{i}");
            assert_eq!(o.remaining, 4 - i);
        }
        let o = s.gcra("k", &l, 1, 1_000_000);
        assert!(!o.allowed);
        assert_eq!(o.retry_after_ms, 1000);
        assert_eq!(o.reset_ms, 5000);
        assert!(s.gcra("k", &l, 1, 1_001_000).allowed);
        // cost 0 peeks
        let p = s.gcra("k", &l, 0, 1_001_000);
        assert!(p.allowed);
        assert_eq!(p.remaining, 0);
    }

    #[test]
    fn distinct_keys_keep_distinct_counters() {
        // The store keys its map by a hash of the name; thousands of names must still each
        // have a bucket of their own.
        let s = MemoryRateStore::new(100_000);
        let l = lim(60, 60, 3);
        for i in 0..20_000 {
            let k = format!("unknown|10.{}.{}.1", i / 256, i % 256);
            let o = s.gcra(&k, &l, 1, 5_000);
            assert!(o.allowed && o.remaining == 2, "{k}: {o:?}");
        }
        assert!(s.gcra("unknown|10.0.0.1", &l, 2, 5_000).allowed);
        assert!(!s.gcra("unknown|10.0.0.1", &l, 1, 5_000).allowed);
        assert_eq!(s.gcra("unknown|10.0.1.1", &l, 0, 5_000).remaining, 2);
        assert_eq!(s.key_count(), 20_000);
    }

    #[test]
    fn cost_over_burst_is_capped() {
        let s = MemoryRateStore::new(100);
        let l = lim(10, 60, 3);
        assert!(s.gcra("k", &l, 50, 0).allowed);
        assert!(!s.gcra("k", &l, 1, 0).allowed);
    }
}
