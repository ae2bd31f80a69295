//! A map whose entries expire: the memory behind duplicate suppression.

use std::collections::{HashMap, VecDeque};
use std::hash::Hash;

use redgiant_base::Instant;

/// Entries with an expiry time, kept in a queue by the time they were last
/// queued. An entry whose expiry moved later is queued again when it reaches
/// the front, so [`Expiring::purge`] removes every entry expired by `now`
/// and stops at the first that is not.
#[derive(Debug)]
pub(crate) struct Expiring<K, V> {
    map: HashMap<K, (Instant, V)>,
    order: VecDeque<(Instant, K)>,
}

impl<K: Copy + Eq + Hash, V> Expiring<K, V> {
    pub(crate) fn new() -> Self {
        Expiring {
            map: HashMap::new(),
            order: VecDeque::new(),
        }
    }

    pub(crate) fn len(&self) -> usize {
        self.map.len()
    }

    pub(crate) fn get_mut(&mut self, k: &K) -> Option<&mut V> {
        self.map.get_mut(k).map(|e| &mut e.1)
    }

    pub(crate) fn contains(&self, k: &K) -> bool {
        self.map.contains_key(k)
    }

    pub(crate) fn values(&self) -> impl Iterator<Item = &V> {
        self.map.values().map(|e| &e.1)
    }

    /// Inserts (or replaces) `k`, expiring at `expires`.
    pub(crate) fn insert(&mut self, k: K, expires: Instant, v: V) {
        self.map.insert(k, (expires, v));
        self.order.push_back((expires, k));
    }

    /// Moves the expiry of `k` to `expires`.
    pub(crate) fn refresh(&mut self, k: &K, expires: Instant) {
        if let Some(e) = self.map.get_mut(k) {
            e.0 = e.0.max(expires);
        }
    }

    /// Removes every entry expired at `now`, handing each to `gone`.
    pub(crate) fn purge(&mut self, now: Instant, mut gone: impl FnMut(K, V)) {
        while let Some(&(queued, k)) = self.order.front() {
            let Some(&(expires, _)) = self.map.get(&k) else {
                // Removed or replaced since: a stale queue entry.
                self.order.pop_front();
                continue;
            };
            if expires != queued && queued <= now {
                self.order.pop_front();
                if expires > queued {
                    self.order.push_back((expires, k));
                }
                continue;
            }
            if expires > now {
                return;
            }
            self.order.pop_front();
            let (_, v) = self.map.remove(&k).expect("looked up above");
            gone(k, v);
        }
    }

    /// Removes the entry queued longest ago, if any.
    pub(crate) fn evict_oldest(&mut self) -> Option<(K, V)> {
        while let Some((queued, k)) = self.order.pop_front() {
            if self.map.get(&k).is_some_and(|e| e.0 == queued) {
                let (_, v) = self.map.remove(&k).expect("looked up above");
                return Some((k, v));
            }
            if let Some(e) = self.map.get(&k) {
                if e.0 > queued {
                    self.order.push_back((e.0, k));
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
        t.insert(1, ms(10), 'a');
        t.insert(2, ms(20), 'b');
        t.insert(3, ms(30), 'c');
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
    fn evict_oldest_skips_stale_queue_entries() {
        let mut t = Expiring::new();
        t.insert(1, ms(10), ());
        t.insert(2, ms(20), ());
        t.refresh(&1, ms(30));
        assert_eq!(t.evict_oldest().map(|e| e.0), Some(2));
        assert_eq!(t.evict_oldest().map(|e| e.0), Some(1));
        assert!(t.evict_oldest().is_none());
    }
}
