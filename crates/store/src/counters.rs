//! In-memory counters with a hard bound on how many keys they hold.
//!
//! Keys are spread over shards (each a `Mutex`) by a per-instance random hash, so one hot key
//! does not serialize every thread and nobody outside can aim keys at one shard. Each shard
//! keeps two ordered indexes beside its map: by expiry and by age. When a shard is full, a new
//! key first evicts an expired entry and, if none has expired, the oldest one; both take
//! `O(log n)`, so a flood of new keys (one per IP, say) costs the same per key as a quiet day.

use std::collections::hash_map::{HashMap, RandomState};
use std::collections::BTreeMap;
use std::hash::BuildHasher;
use std::sync::{Mutex, PoisonError};

use crate::Counters;

/// At most this many shards; fewer when `max_keys` is smaller, so each shard holds at least one.
const MAX_SHARDS: usize = 16;

/// [`Counters`] kept in memory, never more than `max_keys` keys at once (see the module doc
/// for which go first when full). Forgetting is allowed by the trait: an evicted throttle key
/// starts counting again, an evicted warning flag makes the user be warned again.
#[derive(Debug)]
pub struct MemoryCounters {
    shards: Vec<Mutex<Shard>>,
    hasher: RandomState,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Value {
    /// A throttle window: `count` events since `start`.
    Window { count: u64 },
    /// A warning flag.
    Flag,
}

#[derive(Debug)]
struct Slot {
    value: Value,
    /// When the window started or the flag was set.
    start: i64,
    /// The first second at which it no longer counts.
    expires: i64,
    /// Insertion order, so index keys are unique even for equal times.
    seq: u64,
}

#[derive(Debug)]
struct Shard {
    cap: usize,
    map: HashMap<String, Slot>,
    by_expiry: BTreeMap<(i64, u64), String>,
    by_age: BTreeMap<(i64, u64), String>,
    next_seq: u64,
}

impl Shard {
    fn new(cap: usize) -> Shard {
        Shard {
            cap,
            map: HashMap::new(),
            by_expiry: BTreeMap::new(),
            by_age: BTreeMap::new(),
            next_seq: 0,
        }
    }

    fn remove(&mut self, key: &str) -> Option<Slot> {
        let slot = self.map.remove(key)?;
        self.by_expiry.remove(&(slot.expires, slot.seq));
        self.by_age.remove(&(slot.start, slot.seq));
        Some(slot)
    }

    /// Stores `key` afresh (replacing whatever it held), evicting another key if full.
    fn insert(&mut self, key: &str, value: Value, start: i64, expires: i64) {
        self.remove(key);
        while self.map.len() >= self.cap {
            let expired = self.by_expiry.first_key_value().filter(|((exp, _), _)| *exp <= start);
            let victim = match expired {
                Some((_, victim)) => victim.clone(),
                None => match self.by_age.first_key_value() {
                    Some((_, victim)) => victim.clone(),
                    // The indexes and the map disagree; the map cannot be trusted to shrink.
                    None => {
                        self.map.clear();
                        self.by_expiry.clear();
                        break;
                    }
                },
            };
            self.remove(&victim);
        }
        let seq = self.next_seq;
        self.next_seq = self.next_seq.wrapping_add(1);
        self.by_expiry.insert((expires, seq), key.to_string());
        self.by_age.insert((start, seq), key.to_string());
        self.map.insert(
            key.to_string(),
            Slot {
                value,
                start,
                expires,
                seq,
            },
        );
    }
}

impl MemoryCounters {
    /// Counters that hold at most `max_keys` keys (at least one).
    pub fn new(max_keys: usize) -> MemoryCounters {
        let max_keys = max_keys.max(1);
        // Shards spread the lock, but a shard's share of a small bound would evict keys while
        // the whole store has room: keep at least 1024 keys per shard.
        let shards = (max_keys / 1024).clamp(1, MAX_SHARDS);
        let (base, extra) = (max_keys / shards, max_keys % shards);
        let shards = (0..shards)
            .map(|i| Mutex::new(Shard::new(base + usize::from(i < extra))))
            .collect();
        MemoryCounters {
            shards,
            hasher: RandomState::new(),
        }
    }

    /// How many keys are held now (expired ones included until they are evicted).
    pub fn len(&self) -> usize {
        self.shards
            .iter()
            .map(|s| s.lock().unwrap_or_else(PoisonError::into_inner).map.len())
            .sum()
    }

    /// Whether no key is held.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// The most keys these counters hold.
    pub fn capacity(&self) -> usize {
        self.shards
            .iter()
            .map(|s| s.lock().unwrap_or_else(PoisonError::into_inner).cap)
            .sum()
    }

    fn with_shard<T>(&self, key: &str, f: impl FnOnce(&mut Shard) -> T) -> T {
        let len = self.shards.len().max(1) as u64;
        let index = (self.hasher.hash_one(key) % len) as usize;
        let shard = match self.shards.get(index).or_else(|| self.shards.first()) {
            Some(shard) => shard,
            // `new` always makes at least one shard; an empty one would mean nothing is kept.
            None => return f(&mut Shard::new(1)),
        };
        f(&mut shard.lock().unwrap_or_else(PoisonError::into_inner))
    }
}

impl Default for MemoryCounters {
    /// Room for 100,000 keys: a few megabytes, more than a busy wiki's throttled users.
    fn default() -> MemoryCounters {
        MemoryCounters::new(100_000)
    }
}

fn end(start: i64, seconds: u64) -> i64 {
    start.saturating_add(i64::try_from(seconds).unwrap_or(i64::MAX))
}

impl Counters for MemoryCounters {
    fn hit(&self, key: &str, period: u64, now: i64) -> u64 {
        self.with_shard(key, |shard| {
            if let Some(slot) = shard.map.get_mut(key) {
                if let Value::Window { count } = &mut slot.value {
                    if now < slot.expires {
                        *count = count.saturating_add(1);
                        return *count;
                    }
                }
            }
            shard.insert(key, Value::Window { count: 1 }, now, end(now, period));
            1
        })
    }

    fn take_or_set_flag(&self, key: &str, ttl: u64, now: i64) -> bool {
        self.with_shard(key, |shard| {
            let set = shard
                .map
                .get(key)
                .is_some_and(|slot| slot.value == Value::Flag && now < slot.expires);
            if set {
                shard.remove(key);
                true
            } else {
                shard.insert(key, Value::Flag, now, end(now, ttl));
                false
            }
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn window_counts_from_the_first_event_and_restarts_after() {
        let c = MemoryCounters::new(10);
        assert_eq!(c.hit("u", 60, 1000), 1);
        assert_eq!(c.hit("u", 60, 1030), 2);
        assert_eq!(c.hit("u", 60, 1059), 3);
        // The window is [1000, 1060): the next event starts a new one.
        assert_eq!(c.hit("u", 60, 1060), 1);
        assert_eq!(c.hit("u", 60, 1119), 2);
        assert_eq!(c.hit("u", 60, 1120), 1);
    }

    #[test]
    fn keys_count_apart() {
        let c = MemoryCounters::new(10);
        assert_eq!(c.hit("a", 60, 0), 1);
        assert_eq!(c.hit("b", 60, 0), 1);
        assert_eq!(c.hit("a", 60, 1), 2);
        assert_eq!(c.len(), 2);
    }

    #[test]
    fn zero_period_counts_every_event_alone() {
        let c = MemoryCounters::new(10);
        assert_eq!(c.hit("u", 0, 5), 1);
        assert_eq!(c.hit("u", 0, 5), 1);
    }

    #[test]
    fn huge_period_and_times_do_not_overflow() {
        let c = MemoryCounters::new(10);
        assert_eq!(c.hit("u", u64::MAX, i64::MAX - 1), 1);
        assert_eq!(c.hit("u", u64::MAX, i64::MAX - 1), 2);
        assert!(!c.take_or_set_flag("f", u64::MAX, i64::MIN));
        assert!(
            c.take_or_set_flag("f", u64::MAX, -2),
            "i64::MIN + i64::MAX = -1 is the end"
        );
        assert!(!c.take_or_set_flag("f", u64::MAX, 0));
        assert!(c.take_or_set_flag("f", u64::MAX, i64::MAX - 1));
    }

    #[test]
    fn flag_is_set_then_taken() {
        let c = MemoryCounters::new(10);
        assert!(!c.take_or_set_flag("w", 120, 0), "first time: warn");
        assert!(c.take_or_set_flag("w", 120, 10), "resubmitted: let through");
        assert!(!c.take_or_set_flag("w", 120, 20), "taken: warn again");
    }

    #[test]
    fn flag_expires_after_ttl() {
        let c = MemoryCounters::new(10);
        assert!(!c.take_or_set_flag("w", 120, 0));
        assert!(
            !c.take_or_set_flag("w", 120, 120),
            "expired at 120: warn again, which sets it anew"
        );
        assert!(c.take_or_set_flag("w", 120, 239));
    }

    #[test]
    fn flags_and_windows_under_one_key_do_not_mix() {
        let c = MemoryCounters::new(10);
        assert_eq!(c.hit("k", 60, 0), 1);
        assert!(!c.take_or_set_flag("k", 60, 1), "a window is not a flag");
        assert_eq!(c.hit("k", 60, 2), 1, "a flag is not a window");
    }

    #[test]
    fn never_holds_more_than_max_keys() {
        for max in [1, 3, 16, 17, 100] {
            let c = MemoryCounters::new(max);
            assert_eq!(c.capacity(), max);
            for i in 0..(max * 5) {
                c.hit(&format!("k{i}"), 1_000_000, i as i64);
                assert!(c.len() <= max, "max {max}: {} keys after {i}", c.len());
            }
        }
        assert_eq!(MemoryCounters::new(0).capacity(), 1);
        assert_eq!(MemoryCounters::default().capacity(), 100_000);
    }

    #[test]
    fn full_shard_evicts_expired_before_oldest() {
        // One shard of three keys, so which key goes is predictable.
        let c = MemoryCounters::new(3);
        let c = MemoryCounters {
            shards: vec![Mutex::new(Shard::new(3))],
            hasher: c.hasher,
        };
        c.hit("old-long", 1000, 0);
        c.hit("young-short", 5, 10);
        c.hit("mid", 1000, 5);
        // At 20 "young-short" has expired although it is the youngest: it goes first.
        c.hit("new", 1000, 20);
        assert_eq!(c.len(), 3);
        assert_eq!(c.hit("old-long", 1000, 21), 2, "old-long kept");
        assert_eq!(c.hit("mid", 1000, 21), 2, "mid kept");
        // Nothing has expired now: the oldest ("old-long", started at 0) goes.
        c.hit("newer", 1000, 22);
        assert_eq!(c.hit("mid", 1000, 23), 3, "mid kept");
        assert_eq!(c.hit("new", 1000, 23), 2, "new kept");
        assert_eq!(c.hit("old-long", 1000, 23), 1, "old-long was evicted and starts again");
    }

    #[test]
    fn threads_share_counts() {
        let c = std::sync::Arc::new(MemoryCounters::new(1000));
        let handles: Vec<_> = (0..8)
            .map(|_| {
                let c = c.clone();
                std::thread::spawn(move || {
                    for _ in 0..1000 {
                        c.hit("shared", 60, 0);
                    }
                })
            })
            .collect();
        for h in handles {
            h.join().unwrap();
        }
        assert_eq!(c.hit("shared", 60, 0), 8001);
    }
}
