//! A per-client table with a size cap (`RATE_LIMIT_MAX_CLIENTS`): when a new client would
//! push it over, the least recently seen clients are forgotten, in batches.
//!
//! Expired entries are swept by their owners; the cap is what bounds memory when many
//! addresses arrive within one window (a botnet, or forged `X-Forwarded-For` behind a
//! misconfigured proxy). Forgetting a client only ever resets its counts in its favour,
//! so the cap is a memory bound, not a security boundary: keep it well above the number
//! of clients a window normally sees.
//!
//! Eviction makes room for an eighth of the cap at once: one O(n) selection pays for
//! `n / 8` insertions, so each request costs amortised O(1), with no extra dependency and
//! no per-entry links to keep in order.

use std::collections::HashMap;
use std::hash::Hash;
use std::time::Instant;

/// The default cap per table: `RATE_LIMIT_MAX_CLIENTS`.
pub const DEFAULT_MAX_CLIENTS: usize = 100_000;

struct Entry<V> {
    value: V,
    seen: Instant,
}

pub struct ClientTable<K, V> {
    map: HashMap<K, Entry<V>>,
    max: usize,
}

impl<K: Hash + Eq + Copy, V> ClientTable<K, V> {
    /// A table that holds at most `max` clients (at least 1).
    pub fn new(max: usize) -> Self {
        Self {
            map: HashMap::new(),
            max: max.max(1),
        }
    }

    /// The client's entry, created by `new` when absent; either way it counts as seen `now`.
    pub fn touch(&mut self, key: K, now: Instant, new: impl FnOnce() -> V) -> &mut V {
        if !self.map.contains_key(&key) {
            self.make_room();
        }
        let entry = self.map.entry(key).or_insert_with(|| Entry {
            value: new(),
            seen: now,
        });
        entry.seen = entry.seen.max(now);
        &mut entry.value
    }

    /// The client's entry if it has one, which then counts as seen `now`.
    pub fn seen(&mut self, key: &K, now: Instant) -> Option<&mut V> {
        let entry = self.map.get_mut(key)?;
        entry.seen = entry.seen.max(now);
        Some(&mut entry.value)
    }

    pub fn remove(&mut self, key: &K) {
        self.map.remove(key);
    }

    /// Keeps only the entries for which `keep` says so.
    pub fn retain(&mut self, mut keep: impl FnMut(&K, &V) -> bool) {
        self.map.retain(|key, entry| keep(key, &entry.value));
    }

    pub fn len(&self) -> usize {
        self.map.len()
    }

    pub fn is_empty(&self) -> bool {
        self.map.is_empty()
    }

    /// At the cap, forgets the least recently seen eighth (at least one entry).
    fn make_room(&mut self) {
        if self.map.len() < self.max {
            return;
        }
        let keep = self.max - self.max.div_ceil(8);
        let excess = self.map.len() - keep;
        let mut seen: Vec<Instant> = self.map.values().map(|e| e.seen).collect();
        let (_, cutoff, _) = seen.select_nth_unstable(excess - 1);
        let cutoff = *cutoff;
        // Everything seen before the cutoff goes, and as many ties as are still needed.
        let older = self.map.values().filter(|e| e.seen < cutoff).count();
        let mut ties = excess - older;
        self.map.retain(|_, entry| {
            if entry.seen < cutoff {
                return false;
            }
            if entry.seen == cutoff && ties > 0 {
                ties -= 1;
                return false;
            }
            true
        });
    }
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use super::*;

    #[test]
    fn the_cap_holds_and_the_least_recently_seen_go_first() {
        let start = Instant::now();
        let at = |n: u64| start + Duration::from_millis(n);
        let mut table = ClientTable::new(100);
        *table.touch(0u32, at(0), || 0) += 1;
        for n in 1..1000u32 {
            table.touch(n, at(n.into()), || 0);
            // Client 0 comes back every tenth request, so it stays among the recent.
            if n % 10 == 0 {
                *table.touch(0, at(n.into()), || 0) += 1;
            }
            assert!(table.len() <= 100, "{} after {n}", table.len());
        }
        assert_eq!(*table.seen(&0, at(1000)).unwrap(), 100);
        assert!(table.seen(&999, at(1000)).is_some());
        assert!(table.seen(&1, at(1000)).is_none());
        // A batch made room: the next clients do not evict again one by one.
        assert!(table.len() < 100);
    }

    #[test]
    fn ties_are_evicted_only_as_far_as_needed() {
        let now = Instant::now();
        let mut table = ClientTable::new(8);
        for n in 0..8u32 {
            table.touch(n, now, || ());
        }
        table.touch(8, now, || ());
        // An eighth of 8 is one: one tie went, the new client came in.
        assert_eq!(table.len(), 8);
        let mut one = ClientTable::new(1);
        one.touch(1u32, now, || ());
        one.touch(2, now, || ());
        assert_eq!(one.len(), 1);
        assert!(one.seen(&2, now).is_some());
    }
}
