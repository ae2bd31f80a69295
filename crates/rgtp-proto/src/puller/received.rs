//! What was accepted: the received set, the Merkle tree folded over the
//! leaves so far, whether proofs are required, the anti-replay window and
//! the failures seen since the last accepted chunk.
//!
//! State only: the behaviour that uses it is `output.rs`.

use rgtp_wire::Hash;

use super::event::PullError;
use super::leaves::LeafStore;
use super::tree::{PartialTree, Vouched};
use crate::merkle::MerkleScheme;
use crate::replay::ReplayWindow;

/// Which chunks were accepted and the tree over their leaves, and the failures seen
/// since the last accepted chunk.
pub(super) struct Output {
    /// One bit per chunk.
    pub(super) received: Vec<u64>,
    /// The Merkle tree over the leaves accepted so far (none in deferred-root mode).
    pub(super) tree: Option<PartialTree>,
    /// Every leaf accepted, kept when the root is checked here without proofs: a
    /// root mismatch is then traced to the chunks that caused it.
    pub(super) leaves: Option<LeafStore>,
    /// Proofs were negotiated: a chunk without one is dropped (spec §8.11).
    pub(super) proofs_required: bool,
    /// Proofs are mandatory: keep `vouched` (proofs verified against it stop early;
    /// FEC-rebuilt chunks are checked against it).
    pub(super) vouch: bool,
    /// True hashes of subtrees not complete yet, by (height, position), from the
    /// siblings and path nodes of verified proofs: what later proofs stop at, and what
    /// an FEC-rebuilt chunk, which has no proof of its own, is checked against
    /// (spec §8.11). Entries go when their subtree
    /// completes, so this follows the gaps in what was accepted.
    pub(super) vouched: Vouched,
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
            tree: None,
            leaves: None,
            proofs_required: false,
            vouch: false,
            vouched: Vouched::default(),
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
        deferred_root: bool,
        proofs_required: bool,
    ) {
        self.received = vec![0; (count as usize).div_ceil(64)];
        // Deferred-root pulls never need the leaves: the driver hashes the output.
        self.tree = (!deferred_root && count > 0).then(|| PartialTree::new(scheme, count));
        self.leaves =
            (!deferred_root && !proofs_required && count > 0).then(|| LeafStore::new(count));
        self.proofs_required = proofs_required;
        self.vouch = proofs_required;
    }

    /// True if chunk `idx` was accepted.
    pub(super) fn contains(&self, idx: u32) -> bool {
        self.received
            .get(idx as usize / 64)
            .is_some_and(|w| w & (1 << (idx % 64)) != 0)
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
