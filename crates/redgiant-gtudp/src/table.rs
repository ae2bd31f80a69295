//! A map whose entries expire: the memory behind duplicate suppression.

use std::collections::{HashMap, VecDeque};
use std::hash::Hash;

use redgiant_base::Instant;

/// Number of lanes: entries of one lane share one holding time.
pub(crate) const LANES: usize = 2;

#[derive(Debug)]
struct Entry<V> {
    expires: Instant,
    lane: u8,
    value: V,
}

/// Entries with an expiry time, each in one of [`LANES`] lanes. Every lane
/// keeps a queue of its keys in the order they were queued; as all entries
/// of a lane are held for the same time, that is (nearly) expiry order, so
/// [`Expiring::purge`] costs amortised O(1) per entry and stops at the first
/// entry not yet expired. An entry whose expiry moved later is queued again
/// when it reaches the front; one moved to another lane leaves a stale item
/// that is dropped when reached. An entry is never removed before its expiry.
#[derive(Debug)]
pub(crate) struct Expiring<K, V> {
    map: HashMap<K, Entry<V>>,
    order: [VecDeque<(Instant, K)>; LANES],
}

impl<K: Copy + Eq + Hash, V> Expiring<K, V> {
    pub(crate) fn new() -> Self {
        Expiring {
            map: HashMap::new(),
            order: Default::default(),
        }
    }

    pub(crate) fn len(&self) -> usize {
        self.map.len()
    }

    pub(crate) fn get_mut(&mut self, k: &K) -> Option<&mut V> {
        self.map.get_mut(k).map(|e| &mut e.value)
    }

    pub(crate) fn contains(&self, k: &K) -> bool {
        self.map.contains_key(k)
    }

    pub(crate) fn values(&self) -> impl Iterator<Item = &V> {
        self.map.values().map(|e| &e.value)
    }

    /// Inserts (or replaces) `k` in `lane`, expiring at `expires`.
    pub(crate) fn insert(&mut self, k: K, lane: usize, expires: Instant, value: V) {
        self.map.insert(
            k,
            Entry {
                expires,
                lane: lane as u8,
                value,
            },
        );
        self.order[lane].push_back((expires, k));
    }

    /// Moves the expiry of `k` to `expires`, if that is later.
    pub(crate) fn refresh(&mut self, k: &K, expires: Instant) {
        if let Some(e) = self.map.get_mut(k) {
            e.expires = e.expires.max(expires);
        }
    }

    /// Moves `k` to `lane`, expiring at `expires` (earlier or later).
    pub(crate) fn move_to(&mut self, k: &K, lane: usize, expires: Instant) {
        if let Some(e) = self.map.get_mut(k) {
            e.expires = expires;
            e.lane = lane as u8;
            self.order[lane].push_back((expires, *k));
        }
    }

    /// Removes every entry expired at `now`, handing each to `gone`.
    pub(crate) fn purge(&mut self, now: Instant, mut gone: impl FnMut(K, V)) {
        for lane in 0..LANES {
            while let Some(&(queued, k)) = self.order[lane].front() {
                if queued > now {
                    break;
                }
                self.order[lane].pop_front();
                let Some(e) = self.map.get(&k) else {
                    continue;
                };
                if usize::from(e.lane) != lane {
                    continue;
                }
                if e.expires > now {
                    self.order[lane].push_back((e.expires, k));
                    continue;
                }
                let e = self.map.remove(&k).expect("looked up above");
                gone(k, e.value);
            }
        }
    }

    /// Removes the entry queued longest ago in the first lane that has one.
    pub(crate) fn evict_oldest(&mut self) -> Option<(K, V)> {
        for lane in (0..LANES).rev() {
            while let Some((_, k)) = self.order[lane].pop_front() {
                if self
                    .map
                    .get(&k)
                    .is_some_and(|e| usize::from(e.lane) == lane)
                {
                    let e = self.map.remove(&k).expect("looked up above");
                    return Some((k, e.value));
                }
            }
        }
        None
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ms(n: u64) -> Instant {
        Instant::from_millis(n)
    }

    #[test]
    fn purge_removes_expired_entries_only() {
        let mut t = Expiring::new();
        t.insert(1, 0, ms(10), 'a');
        t.insert(2, 0, ms(20), 'b');
        t.insert(3, 0, ms(30), 'c');
        t.refresh(&1, ms(40));
        let mut gone = Vec::new();
        t.purge(ms(25), |k, v| gone.push((k, v)));
        assert_eq!(gone, [(2, 'b')]);
        assert!(t.contains(&1) && t.contains(&3));
        t.purge(ms(45), |k, v| gone.push((k, v)));
        assert_eq!(gone, [(2, 'b'), (3, 'c'), (1, 'a')]);
        assert_eq!(t.len(), 0);
    }

    #[test]
    fn an_entry_moved_to_a_shorter_lane_expires_there() {
        let mut t = Expiring::new();
        t.insert(1, 0, ms(100), ());
        t.insert(2, 0, ms(100), ());
        t.move_to(&1, 1, ms(20));
        let mut gone = Vec::new();
        t.purge(ms(19), |k, _| gone.push(k));
        assert!(gone.is_empty());
        t.purge(ms(20), |k, _| gone.push(k));
        assert_eq!(gone, [1]);
        // The stale item in lane 0 does not remove a re-inserted key early.
        t.insert(1, 1, ms(200), ());
        t.purge(ms(100), |k, _| gone.push(k));
        assert_eq!(gone, [1, 2]);
        assert!(t.contains(&1));
        t.purge(ms(200), |k, _| gone.push(k));
        assert_eq!(gone, [1, 2, 1]);
    }

    #[test]
    fn evict_oldest_prefers_the_last_lane_and_skips_stale_items() {
        let mut t = Expiring::new();
        t.insert(1, 0, ms(10), ());
        t.insert(2, 0, ms(20), ());
        t.insert(3, 1, ms(5), ());
        t.move_to(&1, 1, ms(30));
        assert_eq!(t.evict_oldest().map(|e| e.0), Some(3));
        assert_eq!(t.evict_oldest().map(|e| e.0), Some(1));
        assert_eq!(t.evict_oldest().map(|e| e.0), Some(2));
        assert!(t.evict_oldest().is_none());
    }
}
