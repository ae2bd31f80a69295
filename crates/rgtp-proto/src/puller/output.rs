//! Output and verification: every chunk is opened with the AEAD before it is
//! handed out, checked against its Merkle proof when it carries one (and
//! dropped without one once proofs were negotiated, spec §8.11), and recorded
//! once; the root over all leaves is folded as they arrive and checked at the
//! end (here, or by the driver in deferred-root mode).

use super::kept::Judged;
use super::tree::ProofChecker;
use super::{Phase, PullError, Puller, PullerEvent, SuiteFactory};
use crate::crypto::{CipherSuite, TAG_LEN};
use crate::exposer::plain_len;
use crate::merkle::{self, MerkleScheme};
use redgiant_base::Instant;
use rgtp_wire::{Hash, HASH_LEN};

impl<S: SuiteFactory> Puller<S> {
    pub(super) fn is_received(&self, idx: u32) -> bool {
        self.output.contains(idx)
    }

    /// Authenticates, verifies and records one chunk; returns (index, offset, plaintext
    /// length, whether it goes out unverified with its proof for the driver to check).
    pub(super) fn on_chunk(
        &mut self,
        now: Instant,
        idx: u32,
        payload: &mut [u8],
        proof: Option<&[u8]>,
    ) -> Option<(u32, u64, usize, bool)> {
        let Some(m) = self.manifest else {
            self.stats.unexpected += 1;
            return None;
        };
        if self.phase != Phase::Transfer {
            return None;
        }
        if idx >= m.chunk_count {
            self.stats.malformed += 1;
            return None;
        }
        let plen = plain_len(m.total_size, m.chunk_size, idx);
        if payload.len() != plen + TAG_LEN {
            self.stats.malformed += 1;
            return None;
        }
        if self.search.is_some() {
            return self
                .on_probe_answer(now, idx, payload, proof)
                .map(|(i, o, l)| (i, o, l, false));
        }
        if self.is_received(idx) || self.output.replay.contains(idx) || self.output.is_pending(idx)
        {
            self.stats.duplicates += 1;
            return None;
        }
        let layers = self.layers.as_ref().expect("layers exist in Transfer");
        let fec_block = layers
            .fec
            .as_ref()
            .map(|_| idx / u32::from(self.suite.fec.k));
        // FEC works on ciphertext: keep a copy before opening in place.
        let shard_copy = fec_block.map(|_| {
            let mut s = payload.to_vec();
            s.resize(m.chunk_size as usize + TAG_LEN, 0);
            s
        });
        let (body, tag) = payload.split_at_mut(plen);
        let tag: &[u8; TAG_LEN] = (&*tag).try_into().expect("length checked");
        if layers.cipher.open(idx, body, tag).is_err() {
            // Never fatal by itself: anyone who can reach our port can send these.
            // A stall with failures and nothing accepted is reported at the idle
            // timeout (spec §8.11).
            self.stats.auth_failures += 1;
            self.output.stall_auth += 1;
            return None;
        }
        if proof.is_none() && self.output.proofs_required && !self.output.runs {
            // Authentic but unverifiable before the end: only a key holder can make
            // one, and accepting it would let it spoil the whole pull at the root
            // check. Drop it; the chunk stays in flight and is re-requested.
            self.stats.missing_proofs += 1;
            self.output.stall_merkle += 1;
            return None;
        }
        if self.output.offload {
            // The driver checks the proof on another core (without one, under proof
            // runs: with its run) and reports its verdict (`handle_verdict`). Its
            // request is answered now (an RTT sample); it counts as delivered, and as
            // progress, once it passes.
            self.output.set_pending(idx, true);
            if proof.is_none() {
                self.stats.proof_run_members += 1;
            }
            if let Some(f) = self.flights.remove(idx) {
                self.answered(now, &f);
            }
            if let (Some(b), Some(shard)) = (fec_block, shard_copy) {
                let slot = (idx % u32::from(self.suite.fec.k)) as usize;
                self.add_shard(now, b, slot, shard, true);
            }
            self.release_kept(idx);
            return Some((idx, u64::from(idx) * u64::from(m.chunk_size), plen, true));
        }
        let leaf = if proof.is_some() || !self.cfg.deferred_root {
            layers.hash.leaf(body)
        } else {
            [0; HASH_LEN]
        };
        if let Some(proof) = proof {
            if !self.check_proof(idx, &leaf, proof, m.chunk_count, &m.merkle_root) {
                self.stats.merkle_failures += 1;
                self.output.stall_merkle += 1;
                return None;
            }
        }
        if let Some(f) = self.flights.remove(idx) {
            self.answered(now, &f);
        }
        self.on_delivery(now);
        self.accept(idx, leaf);
        if let (Some(b), Some(shard)) = (fec_block, shard_copy) {
            let slot = (idx % u32::from(self.suite.fec.k)) as usize;
            self.add_shard(now, b, slot, shard, true);
        }
        if self.stats.chunks_received == u64::from(m.chunk_count) {
            self.finish(now);
        }
        Some((idx, u64::from(idx) * u64::from(m.chunk_size), plen, false))
    }

    /// True once proofs were negotiated and, under
    /// [`PullerConfig::offload_proofs`](super::PullerConfig::offload_proofs), the driver
    /// is to check them: from the [`PullerEvent::Manifest`] on.
    pub fn offloads_proofs(&self) -> bool {
        self.output.offload
    }

    /// Takes the driver's verdict on chunk `idx`, handed out unverified under
    /// [`PullerConfig::offload_proofs`](super::PullerConfig::offload_proofs) (in a
    /// [`Delivered`](super::Delivered) with its proof, or a rebuilt chunk in
    /// [`PullerEvent::Recovered`] marked `unverified`): accepts it, or requests it
    /// again. Ignored for a chunk not waiting for one.
    pub fn handle_verdict(&mut self, now: Instant, idx: u32, verdict: super::Verdict) {
        if !self.output.is_pending(idx) {
            return;
        }
        let resumed = match self.output.kept.judge(idx) {
            // Not handed out yet: no verdict can be due.
            Judged::NotHandedOut => return,
            Judged::Kept => true,
            Judged::NotKept => false,
        };
        self.output.set_pending(idx, false);
        let Some(m) = self.manifest else { return };
        if self.phase != Phase::Transfer || self.is_received(idx) {
            return;
        }
        let rebuilt = !self.output.rebuilt.is_empty() && self.output.rebuilt.remove(&idx);
        match verdict {
            super::Verdict::Verified => {
                if resumed {
                    // Nothing the exposer sent: no delivery, and no news of the path.
                    self.stats.chunks_resumed += 1;
                } else {
                    self.on_delivery(now);
                }
                self.accept(idx, [0; HASH_LEN]);
                self.stats.offloaded_checks += 1;
                if rebuilt {
                    self.stats.fec_recoveries += 1;
                }
                if self.stats.chunks_received == u64::from(m.chunk_count) {
                    self.finish(now);
                }
            }
            super::Verdict::Failed | super::Verdict::Unproven => {
                if resumed {
                    // Spoiled on disk since the earlier run, not the exposer's doing:
                    // fetched again, with its proof.
                    if verdict == super::Verdict::Failed {
                        self.stats.repaired_chunks += 1;
                    }
                } else if verdict == super::Verdict::Failed {
                    self.stats.merkle_failures += 1;
                    self.output.stall_merkle += 1;
                }
                if rebuilt {
                    self.stats.unproven_rebuilds += 1;
                }
                // Whatever flight it had was answered when it was handed out.
                self.flights.remove(idx);
                self.requests.retransmit.push_back((idx, 1));
            }
        }
    }

    /// Checks chunk `idx`'s proof: with the tree kept here, by the [`ProofChecker`]
    /// (which stops at hashes earlier proofs verified); in deferred-root mode, folded
    /// all the way to the root.
    fn check_proof(
        &mut self,
        idx: u32,
        leaf: &Hash,
        proof: &[u8],
        chunk_count: u32,
        root: &Hash,
    ) -> bool {
        let Some(layers) = self.layers.as_ref() else {
            return false;
        };
        match self.output.checker.as_mut() {
            Some(c) => c.check_proof(&layers.hash, idx, leaf, proof),
            None => merkle::verify_proof(
                &layers.hash,
                leaf,
                idx,
                chunk_count,
                proof
                    .chunks_exact(HASH_LEN)
                    .map(|s| <&Hash>::try_from(s).expect("32")),
                root,
            ),
        }
    }

    /// Takes chunk `idx` as already held from an earlier run of the same pull (the
    /// plaintext `data`, read back from a partial output): it is not requested again.
    ///
    /// Nothing vouches for it yet: it is trusted no more than any chunk is before the
    /// root check, which covers it (here, or over the output in deferred-root mode), and
    /// a mismatch is traced to the wrong chunks and repaired (spec §8.12).
    ///
    /// With proofs negotiated, a chunk read back has no proof: without
    /// [`PullerConfig::offload_proofs`](super::PullerConfig::offload_proofs) nothing is
    /// taken. Offloading, it is judged with its run (spec §3.6) by the driver's checker:
    /// the first chunk of each run is never taken (it is fetched, with its proof, and
    /// [`Puller::kept_bitmap`] claims it until the new copy is judged), and
    /// once that one is handed out, so are the run's kept chunks
    /// ([`PullerEvent::Kept`]); each counts as resumed once it passes, and one that
    /// fails is fetched again.
    ///
    /// Hand chunks over as the Manifest event is taken: no chunk is asked for before
    /// the driver's next [`Puller::handle_timeout`], which [`Puller::poll_timeout`]
    /// makes due at once, whether the driver drains transmits or events first.
    ///
    /// Returns whether it was taken: only in transfer, only once, only at its exact
    /// length.
    pub fn resume_chunk(&mut self, idx: u32, data: &[u8]) -> bool {
        let Some(m) = self.manifest else { return false };
        if self.phase != Phase::Transfer
            || self.search.is_some()
            || (self.output.proofs_required && !self.output.offload)
            || idx >= m.chunk_count
            || self.is_received(idx)
            || self.flights.contains(idx)
            || data.len() != plain_len(m.total_size, m.chunk_size, idx)
            || self.output.is_pending(idx)
        {
            return false;
        }
        if self.output.offload {
            // A run's first chunk is fetched again, with its proof (claimed until
            // its new copy is judged: `kept_bitmap`); once it is in hand, its run's
            // kept chunks would never be handed out.
            let head = self.output.kept.head_of(idx);
            let in_hand = self.is_received(head) || self.output.is_pending(head);
            if !self.output.kept.keep(idx, in_hand) {
                return false;
            }
            self.output.set_pending(idx, true);
            return true;
        }
        let leaf = match (&self.layers, self.cfg.deferred_root) {
            (Some(layers), false) => layers.hash.leaf(data),
            _ => [0; HASH_LEN],
        };
        self.accept(idx, leaf);
        self.stats.chunks_resumed += 1;
        if self.stats.chunks_received == u64::from(m.chunk_count) {
            // The last instant the puller was given: the Manifest's arrival.
            self.finish(self.timers.last_progress);
        }
        true
    }

    /// Once chunk `idx` is handed out unverified: if it heads a proof run whose
    /// other chunks were kept from an earlier run, hands those out too, to be judged
    /// with it ([`PullerEvent::Kept`]).
    pub(super) fn release_kept(&mut self, idx: u32) {
        if let Some(kept) = self.output.kept.release(idx) {
            self.events.push_back(kept);
        }
    }

    /// One bit per chunk accepted so far (bit `i % 64` of word `i / 64`): what a driver
    /// keeps beside a partial output so that a later run can resume it, together
    /// with [`Puller::kept_bitmap`].
    pub fn received_bitmap(&self) -> &[u64] {
        &self.output.received
    }

    /// One bit per chunk taken from an earlier run's output ([`Puller::resume_chunk`])
    /// that still waits for its verdict (offloading only; empty otherwise). Such a
    /// chunk is in the output as the earlier run left it, so a record of what the
    /// output holds claims it too: a pull stopped before its runs were judged keeps
    /// them for the next. One that fails leaves this set when it does.
    pub fn kept_bitmap(&self) -> &[u64] {
        self.output.kept.bitmap()
    }

    /// Records chunk `idx` (received or rebuilt) with its leaf hash.
    pub(super) fn accept(&mut self, idx: u32, leaf: Hash) {
        let out = &mut self.output;
        out.received[idx as usize / 64] |= 1 << (idx % 64);
        if let Some(leaves) = out.leaves.as_mut() {
            leaves.set(idx, leaf);
        }
        if let (Some(checker), Some(layers)) = (out.checker.as_mut(), self.layers.as_ref()) {
            checker.insert(&layers.hash, idx, leaf);
        }
        out.replay.check_and_set(idx);
        if let Some(log) = out.log.as_mut() {
            log.push((idx, leaf));
        }
        self.stats.chunks_received += 1;
        out.stall_auth = 0;
        out.stall_merkle = 0;
    }

    /// Checks a rebuilt chunk's leaf once proofs are mandatory (spec §8.11): `Some(true)`
    /// if the verified hashes around it lead to a true hash it matches, `Some(false)` if
    /// they contradict it, `None` if they cannot tell.
    pub(super) fn check_rebuilt(&self, idx: u32, leaf: Hash) -> Option<bool> {
        let layers = self.layers.as_ref()?;
        self.output
            .checker
            .as_ref()?
            .check_leaf(&layers.hash, idx, leaf)
    }

    /// Every chunk is in: check the root, or hand the check to the driver.
    pub(super) fn finish(&mut self, now: Instant) {
        let Some(m) = self.manifest else { return };
        if (self.cfg.deferred_root || self.output.offload) && m.chunk_count > 0 {
            self.phase = Phase::Verifying;
            self.reassembly.clear();
            self.events.push_back(PullerEvent::VerifyRoot);
            return;
        }
        let layers = self.layers.as_ref().expect("layers");
        let root = if m.chunk_count == 0 {
            Some(layers.hash.leaf(&[]))
        } else {
            self.output.checker.as_ref().and_then(ProofChecker::root)
        };
        let Some(root) = root else {
            // Unreachable: every chunk accepted means every leaf folded in.
            self.fail(PullError::MerkleFailed);
            return;
        };
        if bool::from(subtle::ConstantTimeEq::ct_eq(&root[..], &m.merkle_root[..])) {
            self.phase = Phase::Done;
            self.reassembly.clear();
            self.events.push_back(PullerEvent::Complete);
        } else if let Some(leaves) = self.output.leaves.take() {
            // A chunk authentic under the key but with the wrong plaintext: find and
            // replace it (spec §8.12).
            self.output.checker = None;
            self.start_repair(Some(now), leaves.into_leaves());
        } else {
            self.stats.merkle_failures += 1;
            self.fail(PullError::MerkleFailed);
        }
    }

    /// The Merkle scheme of the accepted Manifest (for deferred-root verification).
    pub fn hash_scheme(&self) -> Option<&S::Hash> {
        self.layers.as_ref().map(|l| &l.hash)
    }

    /// Completes a deferred-root pull: `root` is the Merkle root the driver computed over
    /// the reassembled output. Ignored unless [`PullerEvent::VerifyRoot`] was emitted.
    /// A wrong root fails the pull; [`Puller::handle_leaves`] repairs it instead.
    pub fn handle_root(&mut self, root: &Hash) {
        if self.phase != Phase::Verifying {
            return;
        }
        let m = self.manifest.expect("verifying implies a manifest");
        if bool::from(subtle::ConstantTimeEq::ct_eq(&root[..], &m.merkle_root[..])) {
            self.phase = Phase::Done;
            self.events.push_back(PullerEvent::Complete);
        } else {
            self.stats.merkle_failures += 1;
            self.fail(PullError::MerkleFailed);
        }
    }
}
