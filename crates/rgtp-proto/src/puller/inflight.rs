//! The requests in flight: each requested entry with when and in which order it
//! was asked for, per retry level.
//!
//! State only: the behaviour that uses it is `loss.rs`.

use redgiant_base::Instant;
use std::collections::{HashMap, VecDeque};
use std::hash::{BuildHasherDefault, Hasher};

/// An in-flight entry counts as lost once this many later-requested entries were answered
/// (and 9/8 RTT passed): loss detection by order, as QUIC does, with room for reordering.
pub const PACKET_THRESHOLD: u64 = 128;

/// Retry levels with their own backoff (2^level × RTO); later retries share the last.
pub(super) const RETRY_LEVELS: usize = 6;

/// Hasher for chunk indices and tree positions the puller itself bounds (its own
/// requests; Merkle nodes of chunks that authenticated): keys a sender cannot pick
/// freely, so no flooding concern, and a multiplicative mix is far cheaper than
/// SipHash on the per-chunk path.
#[derive(Default)]
pub(super) struct IndexHasher(u64);

impl Hasher for IndexHasher {
    fn finish(&self) -> u64 {
        self.0
    }
    fn write(&mut self, bytes: &[u8]) {
        for &b in bytes {
            self.0 = (self.0.rotate_left(8) ^ u64::from(b)).wrapping_mul(0x9e37_79b9_7f4a_7c15);
        }
    }
    fn write_u32(&mut self, i: u32) {
        // Mixed into what came before: a (height, position) key hashes both.
        self.0 = (self.0.rotate_left(8) ^ u64::from(i)).wrapping_mul(0x9e37_79b9_7f4a_7c15);
    }
    fn write_u64(&mut self, i: u64) {
        // Fold the high half back so the table's low bits see every input bit.
        let x = i.wrapping_mul(0x9e37_79b9_7f4a_7c15);
        self.0 = x ^ (x >> 32);
    }
}

/// One requested, unanswered entry.
#[derive(Debug, Clone, Copy)]
pub(super) struct Flight {
    pub(super) sent: Instant,
    pub(super) attempt: u32,
    /// Request sequence number: the order entries were asked for.
    pub(super) seq: u64,
}

/// Requested entries and their flights: a direct-mapped table indexed by the entry's
/// low bits, which holds every entry of a window of consecutive chunks without a
/// collision (an entry whose slot is taken, a parity entry or a straggler far from
/// the window, goes to a small map beside it). Cheaper per chunk than a hash map,
/// with the same answers.
pub(super) struct FlightMap {
    /// `(entry, flight)`; a slot is empty when its flight's `seq` is [`EMPTY`].
    slots: Box<[(u32, Flight)]>,
    mask: u32,
    overflow: HashMap<u32, Flight, BuildHasherDefault<IndexHasher>>,
    len: usize,
}

/// The `seq` of an empty slot (request sequence numbers never reach it).
const EMPTY: u64 = u64::MAX;

impl FlightMap {
    /// A table with a slot for each of at least `window` consecutive entries.
    fn new(window: u32) -> Self {
        let n = (window.max(1) as usize * 2)
            .next_power_of_two()
            .clamp(1 << 10, 1 << 16);
        let empty = Flight {
            sent: Instant::ZERO,
            attempt: 0,
            seq: EMPTY,
        };
        FlightMap {
            slots: vec![(0, empty); n].into_boxed_slice(),
            mask: n as u32 - 1,
            overflow: HashMap::default(),
            len: 0,
        }
    }

    fn slot(&self, entry: u32) -> usize {
        (entry & self.mask) as usize
    }

    /// Entries held.
    pub(super) fn len(&self) -> usize {
        self.len
    }

    /// The flight of `entry`, if it is in flight.
    pub(super) fn get(&self, entry: &u32) -> Option<&Flight> {
        let (e, f) = &self.slots[self.slot(*entry)];
        if f.seq != EMPTY && *e == *entry {
            return Some(f);
        }
        if self.overflow.is_empty() {
            return None;
        }
        self.overflow.get(entry)
    }

    /// True if `entry` is in flight.
    pub(super) fn contains_key(&self, entry: &u32) -> bool {
        self.get(entry).is_some()
    }

    /// Forgets `entry`, returning its flight if it was in flight.
    pub(super) fn remove(&mut self, entry: &u32) -> Option<Flight> {
        let i = self.slot(*entry);
        let (e, f) = &mut self.slots[i];
        let taken = if f.seq != EMPTY && *e == *entry {
            let out = *f;
            f.seq = EMPTY;
            Some(out)
        } else if self.overflow.is_empty() {
            None
        } else {
            self.overflow.remove(entry)
        };
        self.len -= usize::from(taken.is_some());
        taken
    }

    /// Empties the table, returning what it held (in no particular order).
    pub(super) fn drain(&mut self) -> Vec<(u32, Flight)> {
        let mut out = Vec::with_capacity(self.len);
        for (e, f) in self.slots.iter_mut().filter(|(_, f)| f.seq != EMPTY) {
            out.push((*e, *f));
            f.seq = EMPTY;
        }
        out.extend(self.overflow.drain());
        self.len = 0;
        out
    }

    /// Records `flight` for `entry`, replacing an earlier one.
    pub(super) fn insert(&mut self, entry: u32, flight: Flight) {
        debug_assert_ne!(flight.seq, EMPTY);
        // Whichever place held it before is emptied first: an entry lives in one place.
        self.remove(&entry);
        let i = self.slot(entry);
        let (e, f) = &mut self.slots[i];
        if f.seq == EMPTY {
            *e = entry;
            *f = flight;
        } else {
            self.overflow.insert(entry, flight);
        }
        self.len += 1;
    }
}

/// The entries in flight, in request order per retry level.
pub(super) struct InFlight {
    pub(super) map: FlightMap,
    /// In-flight entries in request order, one queue per retry level (stale ones are
    /// skipped lazily). Within a level all entries share one RTO multiplier, so request
    /// order is deadline order and no entry waits behind a longer-backed-off one.
    pub(super) order: [VecDeque<(u64, u32)>; RETRY_LEVELS],
    /// Sequence number of the next request.
    pub(super) next_seq: u64,
    /// Highest request sequence number answered so far.
    pub(super) largest_answered: Option<u64>,
}

impl InFlight {
    /// Entries in flight, with room for a window of `window` chunks in the table.
    pub(super) fn new(window: u32) -> Self {
        InFlight {
            map: FlightMap::new(window),
            order: Default::default(),
            next_seq: 0,
            largest_answered: None,
        }
    }

    /// Entries in flight.
    pub(super) fn len(&self) -> usize {
        self.map.len()
    }

    /// True if `entry` is in flight.
    pub(super) fn contains(&self, entry: u32) -> bool {
        self.map.contains_key(&entry)
    }

    /// Forgets `entry`, returning its flight if it was in flight.
    pub(super) fn remove(&mut self, entry: u32) -> Option<Flight> {
        self.map.remove(&entry)
    }

    /// Records a request for `entry` sent at `now` as attempt `attempt`.
    pub(super) fn insert(&mut self, entry: u32, attempt: u32, now: Instant) {
        let seq = self.next_seq;
        self.next_seq += 1;
        self.map.insert(
            entry,
            Flight {
                sent: now,
                attempt,
                seq,
            },
        );
        self.order[(attempt as usize).min(RETRY_LEVELS - 1)].push_back((seq, entry));
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[derive(Debug, Clone)]
    enum Op {
        Insert(u32),
        Remove(u32),
        Get(u32),
        Drain,
    }

    /// Entries as a puller asks for them: mostly a window near the front, some
    /// stragglers far behind it (sharing slots with the window), parity entries.
    fn entry() -> impl Strategy<Value = u32> {
        prop_oneof![
            8 => 5_000u32..7_000,
            2 => (0u32..8).prop_map(|k| 5_000 + k * 1_024),
            1 => (0u32..64).prop_map(|b| crate::exposer::make_parity_entry(b, 3)),
            1 => Just(u32::MAX),
        ]
    }

    fn op() -> impl Strategy<Value = Op> {
        prop_oneof![
            6 => entry().prop_map(Op::Insert),
            4 => entry().prop_map(Op::Remove),
            4 => entry().prop_map(Op::Get),
            1 => Just(Op::Drain),
        ]
    }

    proptest! {
        #[test]
        fn the_table_answers_as_a_map_does(ops in prop::collection::vec(op(), 1..600)) {
            let mut table = FlightMap::new(512);
            let mut model: HashMap<u32, Flight> = HashMap::new();
            for (seq, op) in ops.into_iter().enumerate() {
                let flight = Flight {
                    sent: Instant::from_micros(seq as u64),
                    attempt: seq as u32 % 3,
                    seq: seq as u64,
                };
                match op {
                    Op::Insert(e) => {
                        table.insert(e, flight);
                        model.insert(e, flight);
                    }
                    Op::Remove(e) => {
                        let (a, b) = (table.remove(&e), model.remove(&e));
                        prop_assert_eq!(a.map(|f| f.seq), b.map(|f| f.seq));
                    }
                    Op::Get(e) => {
                        let (a, b) = (table.get(&e), model.get(&e));
                        prop_assert_eq!(a.map(|f| f.seq), b.map(|f| f.seq));
                        prop_assert_eq!(table.contains_key(&e), b.is_some());
                    }
                    Op::Drain => {
                        let mut a: Vec<_> =
                            table.drain().into_iter().map(|(e, f)| (e, f.seq)).collect();
                        let mut b: Vec<_> = model.drain().map(|(e, f)| (e, f.seq)).collect();
                        a.sort_unstable();
                        b.sort_unstable();
                        prop_assert_eq!(a, b);
                    }
                }
                prop_assert_eq!(table.len(), model.len());
            }
        }
    }

    #[test]
    fn a_window_of_consecutive_chunks_fits_without_the_overflow() {
        let mut table = FlightMap::new(4096);
        for (seq, e) in (1_000_000..1_004_096).enumerate() {
            let sent = Instant::ZERO;
            table.insert(
                e,
                Flight {
                    sent,
                    attempt: 0,
                    seq: seq as u64,
                },
            );
        }
        assert_eq!(table.len(), 4096);
        assert!(table.overflow.is_empty());
        // A straggler sharing a slot with the window goes beside it, and is found.
        let straggler = 1_000_000 - 8192;
        let f = Flight {
            sent: Instant::ZERO,
            attempt: 2,
            seq: 99_999,
        };
        table.insert(straggler, f);
        assert_eq!(table.overflow.len(), 1);
        assert_eq!(table.get(&straggler).map(|f| f.attempt), Some(2));
        assert_eq!(table.get(&1_000_000).map(|f| f.seq), Some(0));
    }
}
