//! FEC reassembly: shards (ciphertext‖tag, zero-padded) are collected per
//! block, and once enough are in the codec rebuilds the missing data shards.
//! Rebuilt chunks are opened with the AEAD like received ones, so a corrupt
//! parity shard can fail a rebuild but never slip a chunk through; once proofs
//! are mandatory their leaves must also be vouched for by verified proofs.

use super::blocks::Block;
use super::{Phase, Puller, PullerEvent, SuiteFactory};
use crate::crypto::{CipherSuite, TAG_LEN};
use crate::exposer::{make_parity_entry, plain_len};
use crate::fec::{FecCodec, FecScheme};
use crate::merkle::MerkleScheme;
use redgiant_base::Instant;
use rgtp_wire::{FecParity, Hash, HASH_LEN};

impl<S: SuiteFactory> Puller<S> {
    pub(super) fn on_parity(&mut self, now: Instant, p: &FecParity<'_>) {
        let Some(m) = self.manifest else {
            self.stats.unexpected += 1;
            return;
        };
        if self.phase != Phase::Transfer {
            return;
        }
        let fec = self.suite.fec;
        let shard_len = m.chunk_size as usize + TAG_LEN;
        let blocks = m.chunk_count.div_ceil(u32::from(fec.k.max(1)));
        if fec.scheme == FecScheme::None
            || p.fec_n != fec.n
            || p.fec_k != fec.k
            || p.block_index >= blocks
            || usize::from(p.parity_index) >= fec.parity()
            || p.payload.len() != shard_len
        {
            self.stats.malformed += 1;
            return;
        }
        self.stats.parity_received += 1;
        let entry = make_parity_entry(p.block_index, p.parity_index);
        if let Some(f) = self.flights.remove(entry) {
            self.answered(now, &f);
            self.on_delivery(now);
            self.parity_resolved(p.block_index);
        }
        if self.layers.as_ref().is_none_or(|l| l.fec.is_none()) {
            return;
        }
        let slot = usize::from(fec.k) + usize::from(p.parity_index);
        self.add_shard(now, p.block_index, slot, p.payload.to_vec(), false);
    }

    /// Records a shard of `block`; rebuilds missing chunks once enough shards are in.
    pub(super) fn add_shard(
        &mut self,
        now: Instant,
        block: u32,
        slot: usize,
        shard: Vec<u8>,
        is_data: bool,
    ) {
        let m = self.manifest.expect("manifest");
        let (n, k) = (usize::from(self.suite.fec.n), usize::from(self.suite.fec.k));
        let first = block as usize * k;
        if !self.reassembly.blocks.contains_key(&block) {
            let mut shards: Vec<Option<Vec<u8>>> = vec![None; n];
            let mut have = 0;
            let mut missing = 0;
            for (j, s) in shards.iter_mut().enumerate().take(k) {
                let idx = first + j;
                if idx >= m.chunk_count as usize {
                    *s = Some(vec![0; m.chunk_size as usize + TAG_LEN]);
                    have += 1;
                } else if !self.is_received(idx as u32) || (is_data && j == slot) {
                    missing += 1;
                }
            }
            if missing == 0 {
                return;
            }
            self.reassembly.blocks.insert(
                block,
                Block {
                    shards,
                    have,
                    missing_data: missing,
                },
            );
        }
        let b = self.reassembly.blocks.get_mut(&block).expect("inserted");
        if b.shards[slot].is_some() {
            return;
        }
        b.shards[slot] = Some(shard);
        b.have += 1;
        if is_data {
            b.missing_data -= 1;
        }
        if b.missing_data == 0 {
            self.reassembly.blocks.remove(&block);
            return;
        }
        let min = self.layers.as_ref().map_or(k, |l| l.min_shards);
        if b.have >= min.min(n) {
            self.try_rebuild(now, block);
        }
    }

    fn try_rebuild(&mut self, now: Instant, block: u32) {
        let m = self.manifest.expect("manifest");
        let k = usize::from(self.suite.fec.k);
        let Some(mut b) = self.reassembly.blocks.remove(&block) else {
            return;
        };
        let layers = self.layers.as_ref().expect("layers");
        let Some(fec) = layers.fec.as_ref() else {
            return;
        };
        let mut shards = b.shards.clone();
        if fec.reconstruct(&mut shards).is_err() {
            // Not enough yet (RaptorQ can need one more symbol): keep collecting.
            self.reassembly.blocks.insert(block, b);
            return;
        }
        let mut rebuilt = Vec::new();
        for (j, shard) in shards.iter_mut().enumerate().take(k) {
            let idx = (block as usize * k + j) as u32;
            if idx >= m.chunk_count || self.is_received(idx) || self.output.is_pending(idx) {
                continue;
            }
            let Some(mut s) = shard.take() else { continue };
            let plen = plain_len(m.total_size, m.chunk_size, idx);
            s.truncate(plen + TAG_LEN);
            let (body, tag) = s.split_at_mut(plen);
            let tag: [u8; TAG_LEN] = (&*tag).try_into().expect("16");
            if layers.cipher.open(idx, body, &tag).is_err() {
                // A corrupt parity shard poisoned the rebuild: forget parity, keep data.
                self.stats.fec_failures += 1;
                for p in b.shards.iter_mut().skip(k) {
                    if p.take().is_some() {
                        b.have -= 1;
                    }
                }
                self.reassembly.blocks.insert(block, b);
                return;
            }
            s.truncate(plen);
            let leaf = if self.output.offload
                || (self.cfg.deferred_root && !self.output.proofs_required)
            {
                [0; HASH_LEN]
            } else {
                layers.hash.leaf(&s)
            };
            rebuilt.push((idx, leaf, s));
        }
        // Once proofs are mandatory a rebuilt chunk, which has none, is accepted only
        // if verified hashes vouch for its leaf; otherwise it stays missing and is
        // requested again, with its proof (spec §8.11). Accepting one can vouch for
        // the next, so go round until nothing changes.
        if self.output.offload {
            // The driver checks them against what verified proofs showed it.
            for (idx, _, data) in std::mem::take(&mut rebuilt) {
                self.output.set_pending(idx, true);
                self.output.rebuilt.insert(idx);
                self.flights.remove(idx);
                self.events.push_back(PullerEvent::Recovered {
                    index: idx,
                    offset: u64::from(idx) * u64::from(m.chunk_size),
                    data,
                    unverified: true,
                });
                self.release_kept(idx);
            }
        } else if self.output.proofs_required {
            let mut unsure = rebuilt;
            rebuilt = Vec::new();
            loop {
                let before = unsure.len();
                let mut still = Vec::new();
                for (idx, leaf, data) in unsure {
                    match self.check_rebuilt(idx, leaf) {
                        Some(true) => self.accept_rebuilt(idx, leaf, data, m.chunk_size),
                        Some(false) => {
                            self.stats.merkle_failures += 1;
                            self.stats.unproven_rebuilds += 1;
                        }
                        None => still.push((idx, leaf, data)),
                    }
                }
                unsure = still;
                if unsure.len() == before || unsure.is_empty() {
                    break;
                }
            }
            self.stats.unproven_rebuilds += unsure.len() as u64;
        }
        for (idx, leaf, data) in rebuilt {
            self.accept_rebuilt(idx, leaf, data, m.chunk_size);
        }
        if self.stats.chunks_received == u64::from(m.chunk_count) {
            self.finish(now);
        }
    }

    /// Records a rebuilt chunk and hands it out.
    fn accept_rebuilt(&mut self, idx: u32, leaf: Hash, data: Vec<u8>, chunk_size: u32) {
        self.flights.remove(idx);
        self.accept(idx, leaf);
        self.stats.fec_recoveries += 1;
        self.events.push_back(PullerEvent::Recovered {
            index: idx,
            offset: u64::from(idx) * u64::from(chunk_size),
            data,
            unverified: false,
        });
    }
}
