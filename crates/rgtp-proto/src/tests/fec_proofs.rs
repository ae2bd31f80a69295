//! FEC-rebuilt chunks once proofs are mandatory (spec §8.11): a rebuilt chunk has no
//! proof of its own, so it is accepted only if verified proofs vouch for its leaf.

use std::sync::Arc;

use rgtp_wire::{FecParity, Repr};

use crate::crypto::{CipherId, CipherSuite, KeyMode, NullCipherAs, TAG_LEN};
use crate::exposer::{ExposerConfig, Exposure};
use crate::fec::XorParity;
use crate::merkle::TestingHash;

use super::emit;
use super::util::{data, key, Dir, Pair, ID};

const CHUNK: usize = 1_000;
const K: u8 = 4;

fn exposure_fec_proofs(data: &[u8]) -> Arc<Exposure> {
    let cipher = NullCipherAs::new(CipherId::ChaCha20Poly1305, &key());
    let fec = XorParity::new(K).expect("k");
    Arc::new(
        Exposure::build(
            ID,
            data,
            CHUNK as u32,
            &cipher,
            KeyMode::Raw,
            &TestingHash,
            &fec,
            true,
        )
        .expect("builds"),
    )
}

/// The shard of chunk `idx` holding `plain`: sealed, tagged, zero-padded.
fn shard(idx: u32, plain: &[u8]) -> Vec<u8> {
    let cipher = NullCipherAs::new(CipherId::ChaCha20Poly1305, &key());
    let mut s = plain.to_vec();
    let tag = cipher.seal(idx, &mut s).expect("seal");
    s.extend_from_slice(&tag);
    s.resize(CHUNK + TAG_LEN, 0);
    s
}

/// A parity packet for `block` that rebuilds chunk `target` as `plain`, the other
/// chunks as they are in `data`.
fn parity_for(data: &[u8], block: u32, target: u32, plain: &[u8]) -> Vec<u8> {
    let mut p = vec![0u8; CHUNK + TAG_LEN];
    for j in 0..u32::from(K) {
        let idx = block * u32::from(K) + j;
        let s = if idx == target {
            shard(idx, plain)
        } else {
            let at = idx as usize * CHUNK;
            shard(idx, &data[at..(at + CHUNK).min(data.len())])
        };
        for (a, b) in p.iter_mut().zip(&s) {
            *a ^= b;
        }
    }
    emit(&Repr::FecParity(FecParity {
        exposure_id: ID,
        block_index: block,
        parity_index: 0,
        fec_n: K + 1,
        fec_k: K,
        payload: &p,
    }))
}

/// Pulls with proofs and FEC; the first answer for chunk 5 is replaced by a parity
/// packet for its block that rebuilds chunk 5 as `rebuilt`.
/// `offload`: the driver checks proofs (`PullerConfig::offload_proofs`).
fn pull_rebuilding_chunk5_as(
    offload: bool,
    rebuilt: impl Fn(&[u8]) -> Vec<u8> + 'static,
) -> (Pair, Vec<u8>) {
    let data = data(16 * CHUNK);
    let mut cfg = Pair::puller_config();
    cfg.want_proofs = true;
    cfg.offload_proofs = offload;
    let mut pair = Pair::new(exposure_fec_proofs(&data), ExposerConfig::default(), cfg);
    let copy = data.clone();
    let mut done = false;
    pair.set_hook(move |dir, d| {
        if dir == Dir::ToPuller && !done {
            // With proofs a run at a time (offloaded), chunk 5 comes without one.
            let index = match Repr::parse(d, 65_507) {
                Ok(Repr::ChunkDataWithProof(c)) => Some(c.chunk_index),
                Ok(Repr::ChunkData(c)) => Some(c.chunk_index),
                _ => None,
            };
            {
                if index == Some(5) {
                    done = true;
                    let plain = rebuilt(&copy[5 * CHUNK..6 * CHUNK]);
                    *d = parity_for(&copy, 1, 5, &plain);
                }
            }
        }
        true
    });
    pair.drive();
    (pair, data)
}

//= spec/rgtp-v1.md#8.11
//# Once proofs were negotiated the puller MUST accept
//# it only if hashes it verified vouch for its leaf, and otherwise leave the
//# chunk missing, to be requested again with its proof.
#[test]
fn a_rebuilt_chunk_vouched_for_by_a_neighbours_proof_is_accepted() {
    for offload in [false, true] {
        let (pair, data) = pull_rebuilding_chunk5_as(offload, <[u8]>::to_vec);
        assert!(pair.puller.is_complete(), "{:?}", pair.events.last());
        assert_eq!(pair.puller.offloads_proofs(), offload);
        assert_eq!(pair.output, data);
        let s = pair.puller.stats();
        assert_eq!(s.fec_recoveries, 1, "offload {offload}");
        assert_eq!(s.unproven_rebuilds, 0);
    }
}

#[test]
fn a_rebuilt_chunk_with_the_wrong_plaintext_is_refused_and_fetched_with_its_proof() {
    // Parity a key holder made: the rebuild authenticates but holds other bytes.
    for offload in [false, true] {
        let (pair, data) =
            pull_rebuilding_chunk5_as(offload, |p| p.iter().map(|b| b ^ 0x5a).collect());
        assert!(pair.puller.is_complete(), "{:?}", pair.events.last());
        assert_eq!(pair.output, data, "offload {offload}");
        let s = pair.puller.stats();
        assert_eq!(s.fec_recoveries, 0);
        assert_eq!(s.unproven_rebuilds, 1);
        assert!(s.merkle_failures >= 1);
        assert!(s.chunks_rerequested >= 1);
    }
}
