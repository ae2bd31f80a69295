//! Datagrams waiting for their delivery time: the queue every impairing link
//! (the simulator's network, the in-process links, the lossy wrapper) keeps.

use std::cmp::{Ordering, Reverse};
use std::collections::BinaryHeap;

use redgiant_base::Instant;

/// Items by due time, ties in the order they were pushed (so a zero-delay
/// path never reorders).
#[derive(Debug)]
pub(crate) struct Schedule<T> {
    heap: BinaryHeap<Reverse<Due<T>>>,
    pushed: u64,
}

impl<T> Default for Schedule<T> {
    fn default() -> Self {
        Schedule {
            heap: BinaryHeap::new(),
            pushed: 0,
        }
    }
}

impl<T> Schedule<T> {
    /// Queues `item` for `at`.
    pub(crate) fn push(&mut self, at: Instant, item: T) {
        self.pushed += 1;
        self.heap.push(Reverse(Due {
            at,
            seq: self.pushed,
            item,
        }));
    }

    /// When the first item is due, if any is queued.
    pub(crate) fn next_at(&self) -> Option<Instant> {
        self.heap.peek().map(|d| d.0.at)
    }

    /// The first item, if it is due at or before `now`.
    pub(crate) fn peek_due(&self, now: Instant) -> Option<&T> {
        self.heap
            .peek()
            .filter(|d| d.0.at <= now)
            .map(|d| &d.0.item)
    }

    /// Takes the first item and its due time, if it is due at or before `now`.
    pub(crate) fn pop_due(&mut self, now: Instant) -> Option<(Instant, T)> {
        if self.next_at()? > now {
            return None;
        }
        self.heap.pop().map(|Reverse(d)| (d.at, d.item))
    }

    /// Items queued.
    pub(crate) fn len(&self) -> usize {
        self.heap.len()
    }
}

#[derive(Debug)]
struct Due<T> {
    at: Instant,
    seq: u64,
    item: T,
}

impl<T> PartialEq for Due<T> {
    fn eq(&self, other: &Self) -> bool {
        self.cmp(other) == Ordering::Equal
    }
}

impl<T> Eq for Due<T> {}

impl<T> PartialOrd for Due<T> {
    fn partial_cmp(&self, other: &Self) -> Option<Ordering> {
        Some(self.cmp(other))
    }
}

impl<T> Ord for Due<T> {
    fn cmp(&self, other: &Self) -> Ordering {
        (self.at, self.seq).cmp(&(other.at, other.seq))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn due_order_then_push_order() {
        let t = Instant::from_micros;
        let mut s = Schedule::default();
        s.push(t(30), "c");
        s.push(t(10), "a");
        s.push(t(30), "d");
        s.push(t(10), "b");
        assert_eq!(s.len(), 4);
        assert_eq!(s.next_at(), Some(t(10)));
        assert_eq!(s.pop_due(t(5)), None);
        assert_eq!(s.peek_due(t(10)), Some(&"a"));
        assert_eq!(s.pop_due(t(10)), Some((t(10), "a")));
        assert_eq!(s.pop_due(t(10)), Some((t(10), "b")));
        assert_eq!(s.pop_due(t(29)), None);
        assert_eq!(s.pop_due(t(100)), Some((t(30), "c")));
        assert_eq!(s.pop_due(t(100)), Some((t(30), "d")));
        assert_eq!(s.pop_due(t(100)), None);
        assert_eq!(s.len(), 0);
    }
}
