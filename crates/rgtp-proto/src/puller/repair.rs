//! Repair after a root mismatch (spec §8.12).
//!
//! Without proofs a chunk is authenticated by the AEAD alone, and anyone holding
//! the key can seal a chunk with the wrong plaintext; it is found out only when
//! the root over every leaf does not match the Manifest's. The puller keeps a
//! local tree over the leaves it accepted and searches it with proofs:
//!
//! - The whole tree is the first suspect. A suspect subtree is probed by asking
//!   for its first chunk with a proof (a NAK with `PROOFS`).
//! - An answer counts only if its proof verifies against the Manifest root. Its
//!   siblings are then the true hashes of the subtrees beside the chunk's path;
//!   each sibling inside the probed subtree that differs from the local hash is
//!   a new suspect, one level lower, and a chunk whose leaf differs from the
//!   local one is replaced (handed out again, like any verified chunk).
//! - Once the local root equals the Manifest root the pull is complete.
//!
//! Each wrong chunk costs at most one probe per level (depth + 1), the probes of
//! one level go out together, and the total is capped by
//! `PullerConfig::max_repair_probes`. A probe left without a verifying answer
//! after [`PROBE_TRIES`] requests means the exposer cannot prove its own data:
//! the pull fails with [`PullError::MerkleFailed`].

use super::search::{Search, PROBE_TRIES};
use super::{Phase, PullError, Puller, PullerEvent, SuiteFactory};
use crate::crypto::{CipherSuite, TAG_LEN};
use crate::exposer::plain_len;
use crate::merkle::{self, proof_depth, MerkleScheme, MerkleTree};
use redgiant_base::Instant;
use rgtp_wire::{Hash, HASH_LEN};

impl<S: SuiteFactory> Puller<S> {
    /// The root over `leaves` (every chunk's, in order) did not match: search for the
    /// wrong chunks. Back in the transfer, with the whole tree as the first suspect.
    /// `now` is `None` when called from the driver, which has no clock to hand: the
    /// idle timer then restarts at the next call that has one.
    pub(super) fn start_repair(&mut self, now: Option<Instant>, leaves: Vec<Hash>) {
        let Some(m) = self.manifest else { return };
        let Some(layers) = self.layers.as_ref() else {
            return;
        };
        tracing::debug!("root mismatch: searching for wrong chunks");
        let tree = MerkleTree::from_leaves(&layers.hash, leaves);
        let mut search = Search::new(tree);
        let depth = proof_depth(m.chunk_count) as u8;
        if !search.open(0, depth, self.cfg.max_repair_probes) {
            self.stats.merkle_failures += 1;
            self.fail(PullError::MerkleFailed);
            return;
        }
        match now {
            Some(now) => self.timers.last_progress = now,
            None => search.restart_clock = true,
        }
        self.search = Some(search);
        self.phase = Phase::Transfer;
    }

    /// Restarts the idle timer if the search began without a clock.
    pub(super) fn repair_clock(&mut self, now: Instant) {
        if let Some(s) = self.search.as_mut().filter(|s| s.restart_clock) {
            s.restart_clock = false;
            self.timers.last_progress = now;
        }
    }

    /// Probe chunks to request now (at most `room`), with their attempt numbers.
    pub(super) fn repair_entries(&mut self, room: usize) -> Vec<(u32, u32)> {
        let Some(s) = self.search.as_mut() else {
            return Vec::new();
        };
        let mut out = Vec::new();
        while out.len() < room {
            let Some(idx) = s.queue.pop_front() else {
                break;
            };
            if let Some(p) = s.probes.get(&idx) {
                if !self.flights.contains(idx) {
                    out.push((idx, p.tries));
                }
            }
        }
        out
    }

    /// A probe went unanswered (or was answered without a verifying proof) for its
    /// retransmission timeout: ask again, or give up after [`PROBE_TRIES`] requests.
    pub(super) fn probe_lost(&mut self, idx: u32) {
        let Some(s) = self.search.as_mut() else {
            return;
        };
        let Some(p) = s.probes.get_mut(&idx) else {
            return;
        };
        p.tries += 1;
        if p.tries >= PROBE_TRIES {
            self.fail(PullError::MerkleFailed);
        } else {
            s.queue.push_back(idx);
        }
    }

    /// A chunk arrived during the search; it counts only as the answer to an open
    /// probe, with a proof that verifies. Returns what to write out if the chunk
    /// replaces a wrong one.
    pub(super) fn on_probe_answer(
        &mut self,
        now: Instant,
        idx: u32,
        payload: &mut [u8],
        proof: Option<&[u8]>,
    ) -> Option<(u32, u64, usize)> {
        let m = self.manifest?;
        let scope = match self.search.as_ref().and_then(|s| s.probes.get(&idx)) {
            Some(p) => p.scope,
            None => {
                self.stats.duplicates += 1;
                return None;
            }
        };
        let layers = self.layers.as_ref()?;
        let plen = plain_len(m.total_size, m.chunk_size, idx);
        let (body, tag) = payload.split_at_mut(plen);
        let tag: &[u8; TAG_LEN] = (&*tag).try_into().ok()?;
        if layers.cipher.open(idx, body, tag).is_err() {
            self.stats.auth_failures += 1;
            self.output.stall_auth += 1;
            return None;
        }
        let Some(proof) = proof else {
            // Dropped, not counted against the probe: anyone with the key can send
            // these. An exposer that never sends proofs runs the probe out of tries.
            self.stats.missing_proofs += 1;
            self.output.stall_merkle += 1;
            return None;
        };
        let leaf = layers.hash.leaf(body);
        let siblings: Vec<Hash> = proof
            .chunks_exact(HASH_LEN)
            .map(|c| c.try_into().expect("32"))
            .collect();
        if !merkle::verify_proof(
            &layers.hash,
            &leaf,
            idx,
            m.chunk_count,
            siblings.iter(),
            &m.merkle_root,
        ) {
            self.stats.merkle_failures += 1;
            self.output.stall_merkle += 1;
            return None;
        }
        if let Some(f) = self.flights.remove(idx) {
            self.answered(now, &f);
        }
        self.on_delivery(now);
        self.output.stall_auth = 0;
        self.output.stall_merkle = 0;
        let limit = self.cfg.max_repair_probes;
        let layers = self.layers.as_ref().expect("checked above");
        let search = self.search.as_mut().expect("checked above");
        search.probes.remove(&idx);
        // Siblings inside the probed subtree that differ are the next suspects.
        let mut over = false;
        for (h, sibling) in siblings.iter().enumerate().take(usize::from(scope)) {
            let pos = (idx >> h) ^ 1;
            let first = u64::from(pos) << h;
            if first >= u64::from(m.chunk_count) {
                continue; // padding only: fixed by the count, never wrong
            }
            if search.tree.node(h, pos) != sibling && !search.open(first as u32, h as u8, limit) {
                over = true;
            }
        }
        let replaced = search.tree.node(0, idx) != &leaf;
        if replaced {
            search.tree.replace_leaf(&layers.hash, idx, leaf);
            self.stats.repaired_chunks += 1;
        }
        let done = search.tree.root() == m.merkle_root;
        let stuck = search.probes.is_empty();
        if done {
            self.search = None;
            self.phase = Phase::Done;
            self.reassembly.clear();
            self.events.push_back(PullerEvent::Complete);
        } else if over || stuck {
            // Too many wrong chunks, or nothing left to probe although the root still
            // differs (the exposer's proofs disagree with one another).
            self.stats.merkle_failures += 1;
            self.fail(PullError::MerkleFailed);
        }
        replaced.then(|| (idx, u64::from(idx) * u64::from(m.chunk_size), plen))
    }

    /// Deferred-root mode: the driver hashed every chunk of its output. Completes the
    /// pull if their root matches, else searches for the wrong chunks as in §8.12.
    /// Ignored unless [`PullerEvent::VerifyRoot`] was emitted; `leaves` must hold one
    /// leaf a chunk, in order.
    pub fn handle_leaves(&mut self, leaves: Vec<Hash>) {
        self.check_leaves(leaves, None)
    }

    /// [`Puller::handle_leaves`] with their root already computed by the caller
    /// (with the Manifest's scheme, e.g. on another thread while the pull ran):
    /// `root` must be the Merkle root of `leaves`.
    pub fn handle_leaves_with_root(&mut self, leaves: Vec<Hash>, root: Hash) {
        self.check_leaves(leaves, Some(root))
    }

    fn check_leaves(&mut self, leaves: Vec<Hash>, root: Option<Hash>) {
        if self.phase != Phase::Verifying {
            return;
        }
        let m = self.manifest.expect("verifying implies a manifest");
        let Some(layers) = self.layers.as_ref() else {
            return;
        };
        if leaves.len() != m.chunk_count as usize {
            self.stats.merkle_failures += 1;
            self.fail(PullError::MerkleFailed);
            return;
        }
        let root = root.unwrap_or_else(|| merkle::root_of(&layers.hash, &leaves));
        if bool::from(subtle::ConstantTimeEq::ct_eq(&root[..], &m.merkle_root[..])) {
            self.phase = Phase::Done;
            self.events.push_back(PullerEvent::Complete);
        } else {
            self.start_repair(None, leaves);
        }
    }
}
