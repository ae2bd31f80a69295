//! Loss detection and the retransmission timeout.
//!
//! Every requested entry (chunk or parity) is in flight until answered. An
//! entry is lost once [`PACKET_THRESHOLD`] later-requested entries were
//! answered and 9/8 RTT passed (loss by order, as QUIC does, with room for
//! reordering), or once its retransmission timeout expired. Timeouts back off
//! per retry level; each level keeps its entries in request order, which is
//! then deadline order.

use super::inflight::{Flight, PACKET_THRESHOLD, RETRY_LEVELS};
use super::{Puller, SuiteFactory};
use crate::exposer::parity_entry;
use redgiant_base::Instant;
use rgtp_wire::NAK_PARITY_BIT;
use std::time::Duration;

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
    pub(super) fn sample_rtt(&mut self, now: Instant, sample: Duration, seq: Option<u64>) {
        self.cc
            .on_rtt_sample(now, sample, seq, self.flights.next_seq);
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
            self.sample_rtt(now, now.saturating_since(f.sent), Some(f.seq));
        }
    }

    /// A requested entry arrived: the transfer progresses and the window grows.
    pub(super) fn on_delivery(&mut self, now: Instant) {
        self.timers.last_progress = now;
        self.cc.on_delivery(now, self.flights.next_seq);
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
                self.cc.on_loss(now, f.seq, self.flights.next_seq);
                if entry & NAK_PARITY_BIT != 0 {
                    self.parity_resolved(parity_entry(entry).0);
                } else if !self.is_received(entry) {
                    self.chunk_lost(entry, f.attempt + 1);
                } else if self.search.is_some() {
                    self.probe_lost(entry);
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
