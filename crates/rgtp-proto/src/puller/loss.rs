//! Loss detection and the retransmission timeout.
//!
//! Every requested entry (chunk or parity) is in flight until answered. An
//! entry is lost once [`PACKET_THRESHOLD`] later-requested entries were
//! answered and 9/8 RTT passed (loss by order, as QUIC does, with room for
//! reordering), or once its retransmission timeout expired. Timeouts back off
//! per retry level; each level keeps its entries in request order, which is
//! then deadline order.

use std::collections::{HashMap, VecDeque};
use std::hash::{BuildHasherDefault, Hasher};
use std::time::Duration;

use rgtp_wire::NAK_PARITY_BIT;

use crate::exposer::parity_entry;
use redgiant_base::Instant;

use super::{Puller, SuiteFactory};

/// An in-flight entry counts as lost once this many later-requested entries were answered
/// (and 9/8 RTT passed): loss detection by order, as QUIC does, with room for reordering.
pub const PACKET_THRESHOLD: u64 = 128;

/// Retry levels with their own backoff (2^level × RTO); later retries share the last.
const RETRY_LEVELS: usize = 6;

/// Hasher for the puller's own chunk indices (not peer-chosen, so no flooding concern):
/// a multiplicative mix is enough and far cheaper than SipHash.
#[derive(Default)]
struct IndexHasher(u64);

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
        self.0 = u64::from(i).wrapping_mul(0x9e37_79b9_7f4a_7c15);
    }
}

/// One requested, unanswered entry.
#[derive(Debug, Clone, Copy)]
pub(super) struct Flight {
    sent: Instant,
    attempt: u32,
    /// Request sequence number: the order entries were asked for.
    seq: u64,
}

/// The entries in flight, in request order per retry level.
pub(super) struct InFlight {
    map: HashMap<u32, Flight, BuildHasherDefault<IndexHasher>>,
    /// In-flight entries in request order, one queue per retry level (stale ones are
    /// skipped lazily). Within a level all entries share one RTO multiplier, so request
    /// order is deadline order and no entry waits behind a longer-backed-off one.
    order: [VecDeque<(u64, u32)>; RETRY_LEVELS],
    /// Sequence number of the next request.
    pub(super) next_seq: u64,
    /// Highest request sequence number answered so far.
    largest_answered: Option<u64>,
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

impl<S: SuiteFactory> Puller<S> {
    /// The retransmission timeout of an entry's `attempt`-th re-request.
    fn rto(&self, attempt: u32) -> Duration {
        let base = match self.cc.rtt.srtt() {
            Some(srtt) => (srtt * 2).max(srtt + self.cc.rtt.rttvar() * 4),
            None => Duration::from_millis(200),
        };
        base.max(self.cfg.min_rto) * (1 << attempt.min(RETRY_LEVELS as u32 - 1))
    }

    /// Takes an RTT sample; `seq` is the request it answers, if it answers one.
    pub(super) fn sample_rtt(&mut self, sample: Duration, seq: Option<u64>) {
        self.cc.on_rtt_sample(sample, seq, self.flights.next_seq);
    }

    /// An in-flight entry was answered: when the answer is unambiguous (a first request,
    /// Karn's rule), advance the packet-threshold mark and sample the RTT.
    pub(super) fn answered(&mut self, now: Instant, f: &Flight) {
        // An answer to a re-requested entry may be the late original: it proves nothing
        // about the order of later requests (and, moved forward, would make every older
        // outstanding entry look overtaken at once).
        if f.attempt == 0 {
            self.flights.largest_answered = Some(
                self.flights
                    .largest_answered
                    .map_or(f.seq, |l| l.max(f.seq)),
            );
            self.sample_rtt(now.saturating_since(f.sent), Some(f.seq));
        }
    }

    /// A requested entry arrived: the transfer progresses and the window grows.
    pub(super) fn on_delivery(&mut self, now: Instant) {
        self.timers.last_progress = now;
        self.cc.on_delivery(self.cfg.max_window);
    }

    /// Time after which an entry overtaken by [`PACKET_THRESHOLD`] later answers is lost.
    fn reorder_window(&self) -> Duration {
        (self.cc.rtt.srtt().unwrap_or(Duration::from_millis(100)) * 9 / 8)
            .max(Duration::from_millis(1))
    }

    /// When the oldest in-flight entry will count as lost, if nothing arrives first.
    fn loss_deadline(&self, seq: u64, f: &Flight) -> Instant {
        let mut t = f.sent + self.rto(f.attempt);
        if self
            .flights
            .largest_answered
            .is_some_and(|l| l >= seq + PACKET_THRESHOLD)
        {
            t = t.min(f.sent + self.reorder_window());
        }
        t
    }

    /// Declares lost the oldest entries that either were overtaken by [`PACKET_THRESHOLD`]
    /// later answers and are older than 9/8 RTT, or outlived their retransmission timeout.
    pub(super) fn detect_losses(&mut self, now: Instant) {
        for level in 0..RETRY_LEVELS {
            while let Some(&(seq, entry)) = self.flights.order[level].front() {
                let Some(f) = self.flights.map.get(&entry).copied() else {
                    self.flights.order[level].pop_front();
                    continue;
                };
                if f.seq != seq {
                    self.flights.order[level].pop_front(); // superseded by a later request
                    continue;
                }
                if self.loss_deadline(seq, &f) > now {
                    break;
                }
                self.flights.order[level].pop_front();
                self.flights.map.remove(&entry);
                self.cc.on_loss(f.seq, self.flights.next_seq);
                if entry & NAK_PARITY_BIT != 0 {
                    self.parity_resolved(parity_entry(entry).0);
                } else if !self.is_received(entry) {
                    self.chunk_lost(entry, f.attempt + 1);
                }
            }
        }
    }

    /// The earliest loss deadline over the retry levels (a stale front only makes it early).
    pub(super) fn next_loss_deadline(&self) -> Option<Instant> {
        self.flights
            .order
            .iter()
            .filter_map(|q| q.front())
            .map(|(seq, entry)| match self.flights.map.get(entry) {
                Some(f) if f.seq == *seq => self.loss_deadline(*seq, f),
                _ => Instant::ZERO,
            })
            .min()
    }
}
