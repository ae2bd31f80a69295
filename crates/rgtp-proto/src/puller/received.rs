//! What was accepted: the received set, the leaf hashes, the anti-replay window
//! and the failures seen since the last accepted chunk.
//!
//! State only: the behaviour that uses it is `output.rs`.

use super::event::PullError;
use crate::replay::ReplayWindow;
use rgtp_wire::{Hash, HASH_LEN};

/// Which chunks were accepted and their leaf hashes, and the failures seen since the
/// last accepted chunk.
pub(super) struct Output {
    /// One bit per chunk.
    pub(super) received: Vec<u64>,
    /// Leaf hashes by chunk index (empty in deferred-root mode).
    pub(super) leaves: Vec<Hash>,
    pub(super) replay: ReplayWindow,
    /// AEAD failures in a row.
    pub(super) auth_streak: u32,
    /// AEAD failures since the last accepted chunk.
    pub(super) stall_auth: u64,
    /// Merkle failures since the last accepted chunk.
    pub(super) stall_merkle: u64,
}

impl Output {
    pub(super) fn new() -> Self {
        Output {
            received: Vec::new(),
            leaves: Vec::new(),
            replay: ReplayWindow::new(),
            auth_streak: 0,
            stall_auth: 0,
            stall_merkle: 0,
        }
    }

    /// Sizes the received set (and the leaves, unless the driver checks the root) for
    /// `count` chunks.
    pub(super) fn size_for(&mut self, count: usize, deferred_root: bool) {
        self.received = vec![0; count.div_ceil(64)];
        // Deferred-root pulls never read the leaves: the driver hashes the output.
        self.leaves = if deferred_root {
            Vec::new()
        } else {
            vec![[0; HASH_LEN]; count]
        };
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
