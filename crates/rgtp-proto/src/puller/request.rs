//! Request scheduling: what the puller sends next, and when.
//!
//! In the handshake the puller repeats its Pull_Request with backoff. In the
//! transfer it sends, in this order of priority: a Pull_Request to refresh the
//! token, a Rate_Report when one is due, a NAK filling the window (re-requests
//! first, then parity, then new chunks), and a Keepalive when nothing else was
//! sent for a while. A lost chunk waits for its block's parity when that parity
//! may still rebuild it. The first NAK waits for the driver's `handle_timeout`
//! after the Manifest (due at once), so that chunks the driver hands over as it
//! takes the Manifest event (`resume_chunk`) are never asked for.

use super::{Phase, Puller, SuiteFactory};
use crate::exposer::{make_parity_entry, parity_entry};
use crate::fec::FecScheme;
use redgiant_base::Instant;
use rgtp_wire::{
    IndexList, Keepalive, Nak, NakFlags, PullFlags, PullRequest, RateReport, Repr, NAK_PARITY_BIT,
    VERSION,
};
use std::time::Duration;

/// Writes `repr` into `buf`; returns its length.
fn emit(buf: &mut Vec<u8>, repr: &Repr<'_>) -> usize {
    let len = repr.buffer_len();
    buf.resize(len, 0);
    repr.emit(buf);
    len
}

impl<S: SuiteFactory> Puller<S> {
    /// Whether chunk `idx` waits in the retransmission queue (for tests).
    #[cfg(test)]
    pub(crate) fn queued_for_retransmit(&self, idx: u32) -> bool {
        self.requests.retransmit.iter().any(|&(i, _)| i == idx)
    }

    pub(super) fn pull_request(&mut self, now: Instant, buf: &mut Vec<u8>) -> usize {
        self.timers.want_pull_request = false;
        if self.phase == Phase::Handshake {
            self.timers.handshake_tries += 1;
            let backoff =
                self.cfg.handshake_interval * (1 << (self.timers.handshake_tries - 1).min(3));
            self.timers.handshake_next = now + backoff.min(Duration::from_secs(1));
        }
        self.timers.last_pull_request = now;
        self.stats.pull_requests_sent += 1;
        // Both extensions are understood: tokens (§5) and an exposer's rate cap (§8.3.3).
        let mut flags = PullFlags::ADDR_VALIDATION | PullFlags::RATE_CAP;
        if self.cfg.want_proofs {
            flags |= PullFlags::PROOFS;
        }
        // Runs are asked for by a puller that may check proofs off the receive
        // path: one that wants them, or takes up those an exposure offers.
        if (self.cfg.want_proofs || self.cfg.take_offered_proofs)
            && self.cfg.offload_proofs
            && self.cfg.proof_runs
        {
            flags |= PullFlags::PROOF_RUNS;
        }
        if self.cfg.use_fec {
            flags |= PullFlags::FEC;
        }
        emit(
            buf,
            &Repr::PullRequest(PullRequest {
                exposure_id: self.cfg.exposure_id,
                window_size: self.cc.window(),
                loss_rate_q16: self.cc.loss_q16(),
                flags,
                version_min: u16::from(VERSION),
                version_max: u16::from(VERSION),
            }),
        )
    }

    pub(super) fn rate_report(&mut self, now: Instant, buf: &mut Vec<u8>) -> usize {
        self.timers.want_rate_report = false;
        self.stats.rate_reports_sent += 1;
        emit(
            buf,
            &Repr::RateReport(RateReport {
                exposure_id: self.cfg.exposure_id,
                rtt_us: self
                    .cc
                    .rtt
                    .srtt()
                    .map_or(0, |d| d.as_micros().min(u32::MAX as u128) as u32),
                loss_rate_q16: self.cc.loss_q16(),
                window_size: self.cc.window(),
                timestamp_us: now.total_micros(),
            }),
        )
    }

    pub(super) fn keepalive(&mut self, now: Instant, buf: &mut Vec<u8>) -> usize {
        self.timers.want_keepalive = false;
        self.stats.keepalives_sent += 1;
        emit(
            buf,
            &Repr::Keepalive(Keepalive {
                exposure_id: self.cfg.exposure_id,
                timestamp_us: now.total_micros(),
            }),
        )
    }

    /// Parity shards to ask for up front for a block of `k` shards, given the loss seen.
    fn proactive_parity(&self) -> usize {
        let fec = self.suite.fec;
        let k = usize::from(fec.k) as f64;
        let l = self.cc.loss().min(0.5);
        if l < 0.002 {
            return 0;
        }
        let extra = self
            .layers
            .as_ref()
            .map_or(0, |x| x.min_shards.saturating_sub(usize::from(fec.k)));
        let want = (k * l / (1.0 - l) * 1.5).ceil() as usize + 1 + extra;
        want.min(fec.parity())
    }

    /// Writes a NAK filling the window, if there is room and anything to ask for.
    pub(super) fn build_nak(&mut self, now: Instant, buf: &mut Vec<u8>) -> Option<usize> {
        let m = self.manifest?;
        let window = self.cc.window() as usize;
        if self.flights.len() >= window {
            return None;
        }
        let room = (window - self.flights.len()).min(self.cfg.max_entries_per_nak);
        let room = self.pacing.clip(now, room);
        if room == 0 {
            return None;
        }
        let (mut entries, mut attempts) = std::mem::take(&mut self.requests.nak_scratch);
        entries.clear();
        attempts.clear();
        let mut rerequests = 0u64;
        let fec_on = self.layers.as_ref().is_some_and(|l| l.fec.is_some());
        // While searching for wrong chunks (spec §8.12) every chunk is in: only
        // probes are asked for, each with its proof.
        let repairing = self.search.is_some();
        for (idx, attempt) in self.repair_entries(room) {
            entries.push(idx);
            attempts.push(attempt);
        }
        while !repairing && entries.len() < room {
            if let Some((idx, attempt)) = self.requests.retransmit.pop_front() {
                // A chunk that arrived late, after it was given up for lost, may be
                // waiting for its verdict (offloaded proofs): not asked for again.
                if !self.is_received(idx)
                    && !self.flights.contains(idx)
                    && !self.output.is_pending(idx)
                {
                    entries.push(idx);
                    attempts.push(attempt);
                    rerequests += 1;
                }
                continue;
            }
            if let Some(e) = self.requests.parity_queue.pop_front() {
                let (block, _) = parity_entry(e);
                if self.block_wanted(block) && !self.flights.contains(e) {
                    entries.push(e);
                    attempts.push(0);
                } else {
                    self.parity_resolved(block);
                }
                continue;
            }
            // Re-requested chunks come with their proofs; chunks asked for the first
            // time with a proof a run (spec §3.6): the two never share a NAK.
            if self.output.runs && rerequests > 0 {
                break;
            }
            let idx = if self.requests.scheduled {
                match self.requests.next_assigned() {
                    Some(i) if i < m.chunk_count => i,
                    Some(_) => continue,
                    None => break,
                }
            } else {
                if self.requests.next_new >= m.chunk_count {
                    break;
                }
                self.requests.next_new += 1;
                self.requests.next_new - 1
            };
            // Pending: handed out for its verdict, or kept from an earlier run.
            if self.is_received(idx) || self.flights.contains(idx) || self.output.is_pending(idx) {
                continue;
            }
            entries.push(idx);
            attempts.push(0);
            if fec_on {
                let k = u32::from(self.suite.fec.k);
                let block = idx / k;
                let last = ((block + 1) * k).min(m.chunk_count) - 1;
                if idx == last {
                    let count = self.proactive_parity();
                    for p in 0..count {
                        self.requests
                            .parity_queue
                            .push_back(make_parity_entry(block, p as u8));
                    }
                    if count > 0 {
                        *self.requests.parity_pending.entry(block).or_default() += count as u32;
                    }
                }
            }
        }
        if entries.is_empty() {
            self.requests.nak_scratch = (entries, attempts);
            return None;
        }
        self.pacing.spend(now, entries.len());
        for (&e, &attempt) in entries.iter().zip(&attempts) {
            self.flights.insert(e, attempt, now);
            if repairing {
                self.stats.repair_fetches += 1;
            } else if e & NAK_PARITY_BIT != 0 {
                self.stats.parity_requested += 1;
            } else if attempt == 0 {
                self.stats.chunks_requested += 1;
            } else {
                self.stats.chunks_rerequested += 1;
            }
        }
        self.stats.naks_sent += 1;
        if rerequests > 0 {
            self.stats.retransmit_naks += 1;
        }
        let mut flags = NakFlags::empty();
        if self.token.is_some() {
            flags |= NakFlags::TOKEN;
        }
        if self.cfg.want_proofs || self.output.proofs_required || repairing {
            flags |= NakFlags::PROOFS;
        }
        if self.output.runs && !repairing && rerequests == 0 {
            flags |= NakFlags::PROOF_RUNS;
        }
        let repr = Repr::Nak(Nak {
            exposure_id: self.cfg.exposure_id,
            flags,
            indices: IndexList::Slice(&entries),
            token: self.token,
        });
        let len = emit(buf, &repr);
        self.requests.nak_scratch = (entries, attempts);
        Some(len)
    }

    /// True while some chunk of `block` is still missing.
    fn block_wanted(&self, block: u32) -> bool {
        let Some(m) = self.manifest else { return false };
        let k = u32::from(self.suite.fec.k);
        let first = block * k;
        let end = (first + k).min(m.chunk_count);
        (first..end).any(|i| !self.is_received(i))
    }

    /// A lost data chunk is re-requested, unless parity for its block is still on its way:
    /// then it waits, since the block may be rebuilt without another round trip.
    pub(super) fn chunk_lost(&mut self, idx: u32, attempt: u32) {
        let q = &mut self.requests;
        if self.suite.fec.scheme != FecScheme::None {
            let block = idx / u32::from(self.suite.fec.k);
            let pending = q.parity_pending.get(&block).copied().unwrap_or(0) as usize;
            let waiting = q.fec_wait.get(&block).map_or(0, Vec::len);
            if pending > waiting {
                q.fec_wait.entry(block).or_default().push((idx, attempt));
                return;
            }
            // More chunks lost than parity on its way could rebuild: ask again now.
            for (i, a) in q.fec_wait.remove(&block).unwrap_or_default() {
                q.retransmit.push_back((i, a));
            }
        }
        q.retransmit.push_back((idx, attempt));
    }

    /// One parity request of `block` was answered, lost or dropped; when none is left,
    /// chunks still missing from the block are re-requested.
    pub(super) fn parity_resolved(&mut self, block: u32) {
        let Some(n) = self.requests.parity_pending.get_mut(&block) else {
            return;
        };
        *n = n.saturating_sub(1);
        if *n > 0 {
            return;
        }
        self.requests.parity_pending.remove(&block);
        for (idx, attempt) in self.requests.fec_wait.remove(&block).unwrap_or_default() {
            if !self.output.contains(idx) {
                self.requests.retransmit.push_back((idx, attempt));
            }
        }
    }
}
