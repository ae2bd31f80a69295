//! Repair after a root mismatch (spec §8.12): chunks authentic under the key but
//! with the wrong plaintext, accepted without proofs, are located with proofs and
//! fetched again; an exposer that cannot prove its own data still fails the pull.

use std::cell::RefCell;
use std::collections::BTreeSet;
use std::rc::Rc;

use rgtp_wire::{ChunkData, ChunkDataWithProof, Repr};

use crate::exposer::ExposerConfig;
use crate::merkle::proof_depth;
use crate::puller::{PullError, PullerConfig, PullerEvent};

use super::emit;
use super::hostile::forged_chunk;
use super::util::{data, exposure, Dir, Pair};

const CHUNK: u32 = 1_000;

/// The first answer for each chunk of `forge` is replaced by an authentic forgery
/// (right key, wrong plaintext, no proof). Returns the set still to be forged.
fn forge_first_answers(pair: &mut Pair, forge: BTreeSet<u32>) -> Rc<RefCell<BTreeSet<u32>>> {
    let left = Rc::new(RefCell::new(forge));
    let set = Rc::clone(&left);
    pair.set_hook(move |dir, d| {
        if dir != Dir::ToPuller {
            return true;
        }
        if let Ok(Repr::ChunkData(c)) = Repr::parse(d, 65_507) {
            let (idx, len) = (c.chunk_index, c.payload.len() - crate::crypto::TAG_LEN);
            if set.borrow_mut().remove(&idx) {
                *d = forged_chunk(idx, &vec![0xee; len]);
            }
        }
        true
    });
    left
}

fn pull_with_forgeries(len: usize, forge: BTreeSet<u32>, cfg: PullerConfig) -> (Pair, Vec<u8>) {
    let data = data(len);
    let mut pair = Pair::new(exposure(&data, CHUNK), ExposerConfig::default(), cfg);
    let left = forge_first_answers(&mut pair, forge);
    pair.drive();
    assert!(left.borrow().is_empty(), "every forgery was delivered");
    (pair, data)
}

#[test]
fn one_forged_chunk_is_located_and_fetched_again() {
    let (pair, data) = pull_with_forgeries(64_500, [37].into(), Pair::puller_config());
    assert!(pair.puller.is_complete(), "{:?}", pair.events.last());
    assert_eq!(pair.output, data);
    let s = pair.puller.stats();
    assert_eq!(s.repaired_chunks, 1);
    // One probe per level at most: the root's, then one per wrong subtree below it.
    let depth = proof_depth(65) as u64;
    assert!(s.repair_fetches <= depth + 1, "{}", s.repair_fetches);
    assert_eq!(s.merkle_failures, 0);
}

#[test]
fn a_hundred_forged_chunks_are_located_and_fetched_again() {
    let forge: BTreeSet<u32> = (0..100).map(|i| i * 3 + 1).collect();
    let (pair, data) = pull_with_forgeries(400_000, forge, Pair::puller_config());
    assert!(pair.puller.is_complete(), "{:?}", pair.events.last());
    assert_eq!(pair.output, data);
    let s = pair.puller.stats();
    assert_eq!(s.repaired_chunks, 100);
    let depth = proof_depth(400) as u64;
    assert!(
        s.repair_fetches <= 100 * (depth + 1),
        "{}",
        s.repair_fetches
    );
}

#[test]
fn forged_chunk_at_the_last_index_of_an_uneven_count_is_repaired() {
    let (pair, data) = pull_with_forgeries(12_345, [12].into(), Pair::puller_config());
    assert!(pair.puller.is_complete(), "{:?}", pair.events.last());
    assert_eq!(pair.output, data);
    assert_eq!(pair.puller.stats().repaired_chunks, 1);
}

#[test]
fn deferred_root_repairs_from_the_drivers_leaves() {
    let mut cfg = Pair::puller_config();
    cfg.deferred_root = true;
    let forge: BTreeSet<u32> = (0..100).map(|i| i * 2).collect();
    let (mut pair, data) = pull_with_forgeries(250_000, forge, cfg);
    assert_eq!(pair.events.last(), Some(&PullerEvent::VerifyRoot));
    let leaves = pair.output_leaves(CHUNK);
    // Hashing a large output takes the driver longer than the idle timeout.
    pair.now = pair.now + std::time::Duration::from_secs(60);
    pair.puller.handle_leaves(leaves);
    pair.drive();
    assert!(pair.puller.is_complete(), "{:?}", pair.events.last());
    assert_eq!(pair.output, data);
    assert_eq!(pair.puller.stats().repaired_chunks, 100);
}

#[test]
fn deferred_root_with_the_right_leaves_completes_at_once() {
    let mut cfg = Pair::puller_config();
    cfg.deferred_root = true;
    let (mut pair, data) = pull_with_forgeries(20_000, BTreeSet::new(), cfg);
    let leaves = pair.output_leaves(CHUNK);
    pair.puller.handle_leaves(leaves);
    pair.drive();
    assert!(pair.puller.is_complete());
    assert_eq!(pair.output, data);
    assert_eq!(pair.puller.stats().repair_fetches, 0);
}

/// Every answer for `bad` carries wrong plaintext (sealed with the key); answers with
/// a proof keep the exposer's proof: an exposer serving a wrong chunk.
fn exposer_serves_wrong(pair: &mut Pair, bad: u32) {
    pair.set_hook(move |dir, d| {
        if dir != Dir::ToPuller {
            return true;
        }
        match Repr::parse(d, 65_507) {
            Ok(Repr::ChunkData(c)) if c.chunk_index == bad => {
                let len = c.payload.len() - crate::crypto::TAG_LEN;
                *d = forged_chunk(bad, &vec![0xee; len]);
            }
            Ok(Repr::ChunkDataWithProof(c)) if c.chunk_index == bad => {
                let proof = c.proof.to_vec();
                let len = c.payload.len() - crate::crypto::TAG_LEN;
                let forged = forged_chunk(bad, &vec![0xee; len]);
                let Ok(Repr::ChunkData(f)) = Repr::parse(&forged, 65_507) else {
                    unreachable!()
                };
                *d = emit(&Repr::ChunkDataWithProof(ChunkDataWithProof {
                    exposure_id: f.exposure_id,
                    chunk_index: bad,
                    payload: f.payload,
                    proof: &proof,
                }));
            }
            _ => {}
        }
        true
    });
}

#[test]
fn an_exposer_serving_a_wrong_chunk_still_fails_with_merkle_failed() {
    let data = data(64_000);
    let mut pair = Pair::with(exposure(&data, CHUNK));
    exposer_serves_wrong(&mut pair, 9);
    let start = pair.now;
    pair.drive();
    assert_eq!(
        pair.events.last(),
        Some(&PullerEvent::Failed(PullError::MerkleFailed))
    );
    let s = pair.puller.stats();
    assert_eq!(s.repaired_chunks, 0);
    // Bounded: one probe per level, each asked for at most PROBE_TRIES times.
    let depth = proof_depth(64) as u64;
    assert!(s.repair_fetches <= (depth + 1) * 6, "{}", s.repair_fetches);
    assert!(s.merkle_failures >= 1);
    // Within the idle timeout of the repair's start, at the latest.
    assert!(pair.now.saturating_since(start) < std::time::Duration::from_secs(30));
}

#[test]
fn an_exposer_that_never_sends_proofs_fails_the_repair() {
    let data = data(32_000);
    let mut pair = Pair::with(exposure(&data, CHUNK));
    let mut forged = false;
    pair.set_hook(move |dir, d| {
        if dir != Dir::ToPuller {
            return true;
        }
        match Repr::parse(d, 65_507) {
            Ok(Repr::ChunkData(c)) if c.chunk_index == 5 && !forged => {
                forged = true;
                let len = c.payload.len() - crate::crypto::TAG_LEN;
                *d = forged_chunk(5, &vec![0xee; len]);
            }
            Ok(Repr::ChunkDataWithProof(c)) => {
                let payload = c.payload.to_vec();
                *d = emit(&Repr::ChunkData(ChunkData {
                    exposure_id: c.exposure_id,
                    chunk_index: c.chunk_index,
                    payload: &payload,
                }));
            }
            _ => {}
        }
        true
    });
    pair.drive();
    assert_eq!(
        pair.events.last(),
        Some(&PullerEvent::Failed(PullError::MerkleFailed))
    );
    let s = pair.puller.stats();
    assert!(s.missing_proofs >= 1);
    assert!(s.repair_fetches <= 6, "{}", s.repair_fetches);
}

#[test]
fn the_probe_cap_ends_a_search_for_too_many_wrong_chunks() {
    let mut cfg = Pair::puller_config();
    cfg.max_repair_probes = 4;
    let forge: BTreeSet<u32> = (0..50).map(|i| i * 4).collect();
    let (pair, _) = pull_with_forgeries(200_000, forge, cfg);
    assert_eq!(
        pair.events.last(),
        Some(&PullerEvent::Failed(PullError::MerkleFailed))
    );
    assert!(pair.puller.stats().repair_fetches <= 4 * 6);
}
