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

/// The entries in flight, in request order per retry level.
pub(super) struct InFlight {
    pub(super) map: HashMap<u32, Flight, BuildHasherDefault<IndexHasher>>,
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
    pub(super) fn new() -> Self {
        InFlight {
            map: HashMap::default(),
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
