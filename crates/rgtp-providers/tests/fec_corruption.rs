//! FEC does not detect corruption; the AEAD does. A corrupted shard that
//! takes part in a rebuild yields a rebuilt block that differs from the
//! original (so the AEAD open of that chunk fails), with no panic and no
//! error claiming anything about integrity.

use rand::{Rng, RngCore, SeedableRng};
use rand_chacha::ChaCha8Rng;
use rgtp_proto::fec::FecCodec;
use rgtp_providers::fec::{RaptorQ, ReedSolomon};

fn encode_all(codec: &dyn FecCodec, rng: &mut ChaCha8Rng, t: usize) -> Vec<Vec<u8>> {
    let p = codec.params();
    let mut all: Vec<Vec<u8>> = (0..usize::from(p.n))
        .map(|_| {
            let mut s = vec![0u8; t];
            rng.fill_bytes(&mut s);
            s
        })
        .collect();
    let (data, parity) = all.split_at_mut(usize::from(p.k));
    let d: Vec<&[u8]> = data.iter().map(Vec::as_slice).collect();
    let mut pr: Vec<&mut [u8]> = parity.iter_mut().map(Vec::as_mut_slice).collect();
    codec.encode(&d, &mut pr).unwrap();
    all
}

/// Erases data shards `0..missing` (`missing ≤ min(k, n - k)`), keeps exactly `k` shards (so every kept
/// one is needed), flips one byte of the first kept parity shard, rebuilds.
/// Returns whether the codec produced a (wrong) rebuild.
fn corrupted_rebuild(codec: &dyn FecCodec, seed: u64, missing: usize) -> bool {
    let mut rng = ChaCha8Rng::seed_from_u64(seed);
    let (n, k) = (usize::from(codec.params().n), usize::from(codec.params().k));
    let t = rng.gen_range(1..=300);
    let all = encode_all(codec, &mut rng, t);
    let mut rx: Vec<Option<Vec<u8>>> = all.iter().cloned().map(Some).collect();
    for s in &mut rx[..missing] {
        *s = None;
    }
    for s in &mut rx[k + missing..n] {
        *s = None;
    }
    let byte = rng.gen_range(0..t);
    rx[k].as_mut().unwrap()[byte] ^= 1 << rng.gen_range(0..8);

    // Either the codec cannot solve (RaptorQ may need more than k) or it
    // "succeeds" with wrong data; it must never panic or hand back the original.
    let solved = codec.reconstruct(&mut rx).is_ok();
    if solved {
        let rebuilt: Vec<&Vec<u8>> = rx[..missing].iter().map(|s| s.as_ref().unwrap()).collect();
        let original: Vec<&Vec<u8>> = all[..missing].iter().collect();
        assert_ne!(
            rebuilt, original,
            "({n},{k}) seed {seed}: corruption went unnoticed in the rebuilt shards"
        );
    }
    solved
}

/// Rebuilds out of 20 the test wants to see (RS always; RaptorQ from exactly
/// `k` shards fails about 1% of the time).
const MIN_SOLVED: usize = 15;

#[test]
fn reed_solomon_passes_corruption_through() {
    for (n, k) in [(6u8, 4u8), (10, 8), (3, 1), (255, 223)] {
        let codec = ReedSolomon::new(n, k).unwrap();
        let m = usize::from(n - k).min(usize::from(k));
        let solved = (0..20)
            .filter(|&seed| corrupted_rebuild(&codec, seed, 1 + (seed as usize) % m))
            .count();
        assert!(
            solved >= MIN_SOLVED,
            "({n},{k}): only {solved} of 20 rebuilt"
        );
    }
}

#[test]
fn raptorq_passes_corruption_through() {
    for (n, k) in [(6u8, 4u8), (20, 10), (3, 1), (80, 64)] {
        let codec = RaptorQ::new(n, k).unwrap();
        let m = usize::from(n - k).min(usize::from(k));
        let solved = (0..20)
            .filter(|&seed| corrupted_rebuild(&codec, seed, 1 + (seed as usize) % m))
            .count();
        assert!(
            solved >= MIN_SOLVED,
            "({n},{k}): only {solved} of 20 rebuilt"
        );
    }
}
