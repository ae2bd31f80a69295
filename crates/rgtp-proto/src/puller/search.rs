//! The search for the chunks that spoiled the root (spec §8.12).
//!
//! State only: the behaviour that uses it is `repair.rs`.

use std::collections::{HashMap, VecDeque};

use crate::merkle::MerkleTree;

/// Requests of one probe (after timeouts or answers without a verifying proof)
/// before the exposer is taken to be unable to prove its own data.
pub(super) const PROBE_TRIES: u32 = 6;

/// One chunk asked for with its proof.
#[derive(Debug, Clone, Copy)]
pub(super) struct Probe {
    /// Height of the suspect subtree this chunk is the first leaf of: the proof's
    /// siblings below it are compared with the local tree.
    pub(super) scope: u8,
    /// Requests so far, less one.
    pub(super) tries: u32,
}

/// The local tree over every chunk accepted and the probes still open.
#[derive(Debug)]
pub(super) struct Search {
    /// The Merkle tree over the leaves as received (and as repaired since).
    pub(super) tree: MerkleTree,
    /// Probe chunks waiting to be requested.
    pub(super) queue: VecDeque<u32>,
    /// Probes not yet answered with a verifying proof, by chunk.
    pub(super) probes: HashMap<u32, Probe>,
    /// Distinct probes opened so far.
    pub(super) opened: u32,
    /// The search began without a clock: restart the idle timer at the next one.
    pub(super) restart_clock: bool,
}

impl Search {
    pub(super) fn new(tree: MerkleTree) -> Self {
        Search {
            tree,
            queue: VecDeque::new(),
            probes: HashMap::new(),
            opened: 0,
            restart_clock: false,
        }
    }

    /// Opens a probe of the subtree of height `scope` whose first leaf is `chunk`;
    /// `false` once `limit` probes were opened.
    pub(super) fn open(&mut self, chunk: u32, scope: u8, limit: u32) -> bool {
        if self.probes.contains_key(&chunk) {
            return true;
        }
        if self.opened >= limit {
            return false;
        }
        self.opened += 1;
        self.probes.insert(chunk, Probe { scope, tries: 0 });
        self.queue.push_back(chunk);
        true
    }
}
