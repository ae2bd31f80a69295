//! What was accepted: the received set, the Merkle tree folded over the
//! leaves so far, whether proofs are required, the anti-replay window and
//! the failures seen since the last accepted chunk.
//!
//! State only: the behaviour that uses it is `output.rs`.

use std::collections::HashSet;
use std::hash::BuildHasherDefault;

use rgtp_wire::Hash;

use super::bits::{bit, set_bit};
use super::event::PullError;
use super::inflight::IndexHasher;
use super::kept::KeptRuns;
use super::leaves::LeafStore;
use super::tree::{ProofChecker, SUBTREE_MAX};
use crate::merkle::{proof_depth, MerkleScheme};
use crate::replay::ReplayWindow;

/// Which chunks were accepted and the tree over their leaves, and the failures seen
/// since the last accepted chunk.
pub(super) struct Output {
    /// One bit per chunk.
    pub(super) received: Vec<u64>,
    /// The proof checker and the Merkle tree over the leaves accepted so far (none
    /// in deferred-root mode, nor when the driver checks proofs).
    pub(super) checker: Option<ProofChecker>,
    /// Every leaf accepted, kept when the root is checked here without proofs: a
    /// root mismatch is then traced to the chunks that caused it.
    pub(super) leaves: Option<LeafStore>,
    /// Proofs were negotiated: a chunk without one is dropped (spec §8.11).
    pub(super) proofs_required: bool,
    /// Proofs are required and the driver checks them
    /// ([`PullerConfig::offload_proofs`](super::PullerConfig::offload_proofs)): chunks
    /// handed out wait in `pending` for its verdict.
    pub(super) offload: bool,
    /// Offloading, proofs come a run at a time (spec §3.6): a chunk without one is
    /// handed out too, and judged with its run.
    pub(super) runs: bool,
    /// One bit per chunk handed out and waiting for the driver's verdict (offload only).
    pub(super) pending: Vec<u64>,
    /// Which of those were rebuilt from FEC (their verdicts count as rebuilds).
    pub(super) rebuilt: HashSet<u32, BuildHasherDefault<IndexHasher>>,
    /// log2 of the length of a proof run (spec §3.6) when offloading: 64 chunks,
    /// or fewer in a tree shallower than that.
    pub(super) run_shift: u32,
    /// Offloading: chunks taken from an earlier run's output, judged with their
    /// proof runs.
    pub(super) kept: KeptRuns,
    pub(super) replay: ReplayWindow,
    /// AEAD failures since the last accepted chunk.
    pub(super) stall_auth: u64,
    /// Merkle failures since the last accepted chunk.
    pub(super) stall_merkle: u64,
    /// Chunks accepted (received, rebuilt or resumed) with their leaves, not yet
    /// taken by the multi-source pull this puller is part of; `None` when alone.
    pub(super) log: Option<Vec<(u32, Hash)>>,
}

impl Output {
    pub(super) fn new() -> Self {
        Output {
            received: Vec::new(),
            checker: None,
            leaves: None,
            proofs_required: false,
            offload: false,
            runs: false,
            pending: Vec::new(),
            rebuilt: HashSet::default(),
            run_shift: 0,
            kept: KeptRuns::new(),
            replay: ReplayWindow::new(),
            stall_auth: 0,
            stall_merkle: 0,
            log: None,
        }
    }

    /// Sizes the received set for `count` chunks (one bit each) and, unless the driver
    /// checks the root, starts the tree over their leaves (which holds only what arrives).
    pub(super) fn size_for<M: MerkleScheme + ?Sized>(
        &mut self,
        scheme: &M,
        count: u32,
        root: Hash,
        deferred_root: bool,
        proofs_required: bool,
        offload: bool,
    ) {
        self.received = vec![0; (count as usize).div_ceil(64)];
        self.offload = offload && proofs_required && count > 0;
        self.runs = false;
        let offload = self.offload;
        self.pending = if offload {
            vec![0; (count as usize).div_ceil(64)]
        } else {
            Vec::new()
        };
        self.run_shift = proof_depth(count).min(SUBTREE_MAX) as u32;
        self.kept.size_for(count, 1 << self.run_shift, offload);
        // Deferred-root pulls never need the leaves: the driver hashes the output
        // (or, offloading, checks every proof and folds the tree itself).
        self.checker = (!deferred_root && !self.offload && count > 0)
            .then(|| ProofChecker::new(scheme, count, root, proofs_required));
        self.leaves =
            (!deferred_root && !proofs_required && count > 0).then(|| LeafStore::new(count));
        self.proofs_required = proofs_required;
    }

    /// True if chunk `idx` was handed out and waits for the driver's verdict.
    pub(super) fn is_pending(&self, idx: u32) -> bool {
        bit(&self.pending, idx)
    }

    /// Marks chunk `idx` as waiting for a verdict, or not.
    pub(super) fn set_pending(&mut self, idx: u32, on: bool) {
        set_bit(&mut self.pending, idx, on);
    }

    /// True if chunk `idx` was accepted.
    pub(super) fn contains(&self, idx: u32) -> bool {
        bit(&self.received, idx)
    }

    /// Why a transfer that stopped progressing failed.
    pub(super) fn stall_error(&self) -> PullError {
        if self.stall_merkle > 0 {
            PullError::MerkleFailed
        } else if self.stall_auth > 0 {
            PullError::AuthFailed
        } else {
            PullError::Timeout
        }
    }
}
