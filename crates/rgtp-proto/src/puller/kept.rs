//! Chunks kept from an earlier run's output when proofs are checked by the driver:
//! they carry no proof, so each is judged with its proof run (spec §3.6), once
//! that run's first chunk is fetched again with its proof and handed out.
//!
//! The bookkeeping is the same whether one source or several fetch the runs'
//! first chunks: [`Puller`](super::Puller) and
//! [`MultiPuller`](crate::MultiPuller) each own one of these.

use super::bits::{bit, ones, set_bit, take_run};
use super::event::PullerEvent;

/// Which chunks were kept from an earlier run, which of those are still to be
/// handed out, and what a record of the output may still claim.
#[derive(Debug)]
pub(crate) struct KeptRuns {
    /// Chunks in a proof run: a power of two, 64 or fewer.
    run_len: u32,
    /// Kept chunks whose run's first chunk was not handed out yet.
    waiting: Vec<u64>,
    /// Kept chunks not judged yet, and the first chunks of their runs until their
    /// new copies are judged: what the output may hold as the earlier run left it,
    /// or as this one wrote it before a verdict came.
    claimed: Vec<u64>,
}

/// What a verdict on a chunk means for the kept runs.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Judged {
    /// Not a kept chunk: a copy some source sent.
    NotKept,
    /// A kept chunk not handed out yet: no verdict can be due.
    NotHandedOut,
    /// A kept chunk, judged now: it is no longer claimed.
    Kept,
}

impl KeptRuns {
    /// Nothing kept, nothing to keep: proofs are not offloaded.
    pub(crate) fn new() -> Self {
        KeptRuns {
            run_len: 1,
            waiting: Vec::new(),
            claimed: Vec::new(),
        }
    }

    /// Room for `count` chunks in proof runs of `run_len` (a power of two, 64 or
    /// fewer), or none when proofs are not offloaded.
    pub(crate) fn size_for(&mut self, count: u32, run_len: u32, offload: bool) {
        debug_assert!(run_len.is_power_of_two() && run_len <= 64);
        let words = if offload {
            (count as usize).div_ceil(64)
        } else {
            0
        };
        self.run_len = run_len;
        (self.waiting, self.claimed) = (vec![0; words], vec![0; words]);
    }

    /// The first chunk of the proof run `idx` is in.
    pub(crate) fn head_of(&self, idx: u32) -> u32 {
        idx & !(self.run_len - 1)
    }

    /// True if a record of the output may claim chunk `idx`.
    pub(crate) fn claims(&self, idx: u32) -> bool {
        bit(&self.claimed, idx)
    }

    /// Takes chunk `idx`, read back from an earlier run's output, unless its run's
    /// first chunk is in hand already (`head_in_hand`: its kept chunks would never
    /// be handed out). A run's first chunk is never taken: it is fetched again with
    /// its proof, and claimed until then. Returns whether `idx` was taken.
    pub(crate) fn keep(&mut self, idx: u32, head_in_hand: bool) -> bool {
        if head_in_hand {
            return false;
        }
        set_bit(&mut self.claimed, idx, true);
        if self.head_of(idx) == idx {
            return false;
        }
        set_bit(&mut self.waiting, idx, true);
        true
    }

    /// Chunk `idx` was handed out: if it heads a run with kept chunks, those are to
    /// be handed out with it ([`PullerEvent::Kept`]). It stays claimed until its
    /// verdict: the output holds one copy or the other in between, and a record
    /// taken then must not lose it.
    pub(crate) fn release(&mut self, idx: u32) -> Option<PullerEvent> {
        if self.claimed.is_empty() || self.head_of(idx) != idx {
            return None;
        }
        let members = take_run(&mut self.waiting, idx, self.run_len);
        (members != 0).then_some(PullerEvent::Kept {
            first: idx,
            members,
        })
    }

    /// A verdict on chunk `idx` came: whether it was a kept chunk's. A run's first
    /// chunk is never one (its copy came from a source), and leaves the claim here:
    /// from now on it is received or fetched again.
    pub(crate) fn judge(&mut self, idx: u32) -> Judged {
        if !self.claims(idx) {
            Judged::NotKept
        } else if self.head_of(idx) == idx {
            set_bit(&mut self.claimed, idx, false);
            Judged::NotKept
        } else if bit(&self.waiting, idx) {
            Judged::NotHandedOut
        } else {
            set_bit(&mut self.claimed, idx, false);
            Judged::Kept
        }
    }

    /// One bit per chunk a record of the output may claim (see [`KeptRuns::claims`]).
    pub(crate) fn bitmap(&self) -> &[u64] {
        &self.claimed
    }

    /// The kept chunks not judged yet (not the runs' first chunks), in order.
    pub(crate) fn unjudged(&self) -> impl Iterator<Item = u32> + '_ {
        ones(&self.claimed).filter(move |&idx| self.head_of(idx) != idx)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn runs(count: u32, len: u32) -> KeptRuns {
        let mut k = KeptRuns::new();
        k.size_for(count, len, true);
        k
    }

    #[test]
    fn a_runs_first_chunk_is_claimed_not_taken() {
        let mut k = runs(256, 64);
        assert!(!k.keep(64, false));
        assert!(k.claims(64));
        assert!(k.keep(65, false));
        assert!(!k.keep(130, true), "its run's first chunk is in hand");
        assert!(!k.claims(130));
        assert_eq!(ones(k.bitmap()).collect::<Vec<_>>(), [64, 65]);
        assert_eq!(k.unjudged().collect::<Vec<_>>(), [65]);
    }

    #[test]
    fn kept_chunks_go_out_with_their_runs_first_chunk_and_leave_at_their_verdicts() {
        let mut k = runs(200, 16);
        for idx in [17, 18, 31, 33] {
            assert!(k.keep(idx, false));
        }
        assert_eq!(k.judge(17), Judged::NotHandedOut);
        assert_eq!(k.release(17), None, "not a run's first chunk");
        assert_eq!(
            k.release(16),
            Some(PullerEvent::Kept {
                first: 16,
                members: 1 << 1 | 1 << 2 | 1 << 15
            })
        );
        assert_eq!(k.release(16), None, "once");
        assert_eq!(k.judge(16), Judged::NotKept);
        assert!(!k.claims(16), "judged");
        assert_eq!(k.judge(17), Judged::Kept);
        assert_eq!(k.judge(17), Judged::NotKept, "once");
        assert_eq!(k.judge(20), Judged::NotKept);
        assert_eq!(ones(k.bitmap()).collect::<Vec<_>>(), [18, 31, 33]);
        assert_eq!(k.judge(33), Judged::NotHandedOut);
    }

    /// A record taken between a run's first chunk going out and its verdict (a
    /// pull stopped then) still claims it: the output holds a copy all along.
    #[test]
    fn a_runs_first_chunk_stays_claimed_until_its_verdict() {
        let mut k = runs(128, 64);
        assert!(!k.keep(64, false));
        assert!(k.keep(65, false));
        assert!(k.release(64).is_some());
        assert_eq!(ones(k.bitmap()).collect::<Vec<_>>(), [64, 65]);
        assert_eq!(k.judge(65), Judged::Kept);
        assert_eq!(ones(k.bitmap()).collect::<Vec<_>>(), [64]);
        assert_eq!(k.judge(64), Judged::NotKept);
        assert!(k.bitmap().iter().all(|&w| w == 0));
        // A first chunk kept alone, with no members, likewise.
        assert!(!k.keep(0, false));
        assert_eq!(k.release(0), None);
        assert!(k.claims(0));
        assert_eq!(k.judge(0), Judged::NotKept);
        assert!(!k.claims(0));
    }

    #[test]
    fn nothing_is_kept_without_offloading() {
        let mut k = KeptRuns::new();
        k.size_for(100, 64, false);
        assert!(!k.claims(3));
        assert_eq!(k.release(0), None);
        assert_eq!(k.judge(3), Judged::NotKept);
        assert!(k.bitmap().is_empty());
    }
}
