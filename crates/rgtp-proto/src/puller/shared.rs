//! A puller as one source of a multi-source pull ([`crate::multi`]): chunks are
//! requested only once assigned, what is accepted is logged for the other sources,
//! and what another source delivered is taken as held.

use std::ops::Range;

use super::{Phase, Puller, SuiteFactory};
use redgiant_base::Instant;
use rgtp_wire::{Hash, NAK_PARITY_BIT};

impl<S: SuiteFactory> Puller<S> {
    /// A puller that requests only the chunks [`Puller::assign`] gives it and logs
    /// every chunk it accepts for [`Puller::take_accepted`].
    pub(crate) fn scheduled(cfg: super::PullerConfig, factory: S, now: Instant) -> Self {
        let mut p = Puller::new(cfg, factory, now);
        p.requests.scheduled = true;
        p.output.log = Some(Vec::new());
        p
    }

    /// Adds `chunks` to what this puller requests.
    pub(crate) fn assign(&mut self, chunks: Range<u32>) {
        if !chunks.is_empty() {
            self.requests.assigned.push_back(chunks);
        }
    }

    /// Chunks assigned and not requested yet.
    pub(crate) fn unrequested(&self) -> usize {
        self.requests.assigned_len()
    }

    /// Chunks this puller still owes: assigned, in flight, or waiting to be re-requested.
    pub(crate) fn backlog(&self) -> usize {
        let q = &self.requests;
        q.assigned_len()
            + self.flights.len()
            + q.retransmit.len()
            + q.fec_wait.values().map(Vec::len).sum::<usize>()
    }

    /// Gives back up to `max` of the assigned chunks not requested yet, from the end.
    pub(crate) fn steal(&mut self, max: u32) -> Option<Range<u32>> {
        let last = self.requests.assigned.back_mut()?;
        let n = (last.len() as u32).min(max);
        let taken = last.end - n..last.end;
        last.end -= n;
        if last.start == last.end {
            self.requests.assigned.pop_back();
        }
        (!taken.is_empty()).then_some(taken)
    }

    /// Gives back every chunk this puller owes and has not accepted (its source is
    /// being dropped): assigned, in flight, or waiting to be re-requested.
    pub(crate) fn take_back(&mut self) -> Vec<u32> {
        let mut out: Vec<u32> = Vec::new();
        for r in self.requests.assigned.drain(..) {
            out.extend(r);
        }
        out.extend(
            self.flights
                .map
                .drain()
                .into_iter()
                .map(|(e, _)| e)
                .filter(|e| e & NAK_PARITY_BIT == 0),
        );
        out.extend(self.requests.retransmit.drain(..).map(|(i, _)| i));
        for (_, v) in self.requests.fec_wait.drain() {
            out.extend(v.into_iter().map(|(i, _)| i));
        }
        self.requests.parity_queue.clear();
        self.requests.parity_pending.clear();
        out.retain(|&i| !self.is_received(i));
        out.sort_unstable();
        out.dedup();
        out
    }

    /// The chunks accepted since the last call, with their leaves (zero in
    /// deferred-root mode), appended to `into`.
    pub(crate) fn take_accepted(&mut self, into: &mut Vec<(u32, Hash)>) {
        if let Some(log) = self.output.log.as_mut() {
            into.append(log);
        }
    }

    /// True while chunks are being fetched (the Manifest accepted, not all in).
    pub(crate) fn transferring(&self) -> bool {
        self.phase == Phase::Transfer && self.search.is_none()
    }

    /// Takes chunk `idx`, with its `leaf`, as delivered by another source of the same
    /// exposure (which verified it): it is not requested here any more.
    pub(crate) fn accept_elsewhere(&mut self, now: Instant, idx: u32, leaf: Hash) {
        let Some(m) = self.manifest else { return };
        if !self.transferring() || idx >= m.chunk_count || self.is_received(idx) {
            return;
        }
        self.flights.remove(idx);
        self.accept(idx, leaf);
        if let Some(log) = self.output.log.as_mut() {
            log.pop();
        }
        self.timers.last_progress = now;
        if self.stats.chunks_received == u64::from(m.chunk_count) {
            self.finish(now);
        }
    }

    /// Marks chunk `idx` as judged elsewhere (a chunk kept from an earlier run, which
    /// the multi-source pull judges itself), or no longer: while marked it is neither
    /// requested nor taken from the exposer.
    pub(crate) fn hold_for_verdict(&mut self, idx: u32, on: bool) {
        self.output.set_pending(idx, on);
    }

    /// True if chunk `idx` waits here for the driver's verdict.
    pub(crate) fn awaits_verdict(&self, idx: u32) -> bool {
        self.output.is_pending(idx)
    }

    /// Requests chunk `idx` again, with its proof: a chunk judged elsewhere failed.
    pub(crate) fn refetch(&mut self, idx: u32) {
        self.output.set_pending(idx, false);
        if !self.is_received(idx) {
            self.requests.retransmit.push_back((idx, 1));
        }
    }

    /// Chunks in a proof run (spec §3.6), once offloading: 64, or fewer in a tree
    /// shallower than that.
    pub(crate) fn run_len(&self) -> u32 {
        1 << self.output.run_shift
    }

    /// The exposer this puller pulls from.
    pub(crate) fn config_exposer(&self) -> redgiant_base::Peer {
        self.cfg.exposer
    }

    /// Whether the driver checks the root over the output.
    pub(crate) fn config_deferred_root(&self) -> bool {
        self.cfg.deferred_root
    }
}
