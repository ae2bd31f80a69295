//! Proofs checked on another core (`rgtp::proofs::Verifier`): a verdict for every
//! chunk handed over, only the true plaintext with its true proof passes, and the
//! root folded over what passed is the exposure's.

use std::time::{Duration, Instant};

use rgtp::proofs::Verifier;
use rgtp_proto::merkle::{MerkleScheme, MerkleTree};
use rgtp_proto::puller::Verdict;
use rgtp_providers::hash::{Blake3, Sha256};

const CHUNK: usize = 1000;

fn proof(tree: &MerkleTree, i: u32) -> Vec<u8> {
    let mut p = vec![0u8; tree.depth() * 32];
    tree.write_proof(i, &mut p);
    p
}

/// Settles until every chunk handed over has its verdict (or a minute passes).
fn drain(v: &mut Verifier, got: &mut Vec<(u32, Verdict)>) {
    let until = Instant::now() + Duration::from_secs(60);
    loop {
        let more = v.settle(|i, verdict| got.push((i, verdict))).unwrap();
        if more.is_none() {
            return;
        }
        assert!(
            Instant::now() < until,
            "verdicts missing: {}",
            v.outstanding()
        );
        std::thread::sleep(Duration::from_millis(1));
    }
}

#[test]
fn only_true_chunks_pass_and_the_root_is_the_exposures() {
    verdicts_are_right(&Sha256::new());
    verdicts_are_right(&Blake3);
}

fn verdicts_are_right<M: MerkleScheme + Clone>(scheme: &M) {
    let data: Vec<u8> = (0..2_000_000usize)
        .map(|i| (i * 7 + i / 991) as u8)
        .collect();
    let chunks: Vec<&[u8]> = data.chunks(CHUNK).collect();
    let n = chunks.len() as u32;
    let leaves: Vec<_> = chunks.iter().map(|c| scheme.leaf(c)).collect();
    let tree = MerkleTree::from_leaves(scheme, leaves);
    let mut v = Verifier::start(scheme, n, tree.root());
    let mut got = Vec::new();
    // Chunk 1000 first of all, with the proof of 1001: nothing else vouches for it
    // yet, so its own proof decides, and fails. Then all in order, so whole runs of
    // 64 are judged together, but chunk 100 (inside such a run) with wrong bytes,
    // and chunk 1500 twice in a row.
    v.push(1000, chunks[1000], Some(&proof(&tree, 1001)))
        .unwrap();
    let wrong = vec![0xee; CHUNK];
    for i in 0..n {
        let p = proof(&tree, i);
        let bytes = if i == 100 {
            &wrong[..]
        } else {
            chunks[i as usize]
        };
        v.push(i, bytes, Some(&p)).unwrap();
        if i == 1500 {
            v.push(i, chunks[1500], Some(&p)).unwrap();
        }
    }
    drain(&mut v, &mut got);
    let failed: Vec<u32> = got
        .iter()
        .filter(|(_, v)| *v != Verdict::Verified)
        .map(|&(i, _)| i)
        .collect();
    assert_eq!(failed, vec![1000, 100]);
    assert_eq!(got.len(), n as usize + 2);
    assert_eq!(v.root(), None, "chunk 100 has not passed");
    // The good copy of 100, rebuilt (no proof): the proofs its neighbours brought
    // vouch for it.
    v.push(100, chunks[100], None).unwrap();
    got.clear();
    drain(&mut v, &mut got);
    assert_eq!(got, vec![(100, Verdict::Verified)]);
    assert_eq!(v.root(), Some(tree.root()));
}

#[test]
fn a_rebuilt_chunk_nothing_vouches_for_is_unproven() {
    let scheme = Sha256::new();
    let data: Vec<u8> = (0..300_000usize).map(|i| (i * 3) as u8).collect();
    let chunks: Vec<&[u8]> = data.chunks(CHUNK).collect();
    let leaves: Vec<_> = chunks.iter().map(|c| scheme.leaf(c)).collect();
    let tree = MerkleTree::from_leaves(&scheme, leaves);
    let mut v = Verifier::start(&scheme, chunks.len() as u32, tree.root());
    let mut got = Vec::new();
    v.push(7, chunks[7], None).unwrap();
    v.push(200, &[1u8; CHUNK], None).unwrap();
    drain(&mut v, &mut got);
    assert_eq!(got, vec![(7, Verdict::Unproven), (200, Verdict::Unproven)]);
    // Its neighbour's proof vouches for it; a wrong rebuild is contradicted.
    v.push(6, chunks[6], Some(&proof(&tree, 6))).unwrap();
    v.push(7, chunks[7], None).unwrap();
    v.push(9, &[1u8; CHUNK], None).unwrap();
    v.push(8, chunks[8], Some(&proof(&tree, 8))).unwrap();
    got.clear();
    drain(&mut v, &mut got);
    got.sort_by_key(|&(i, _)| i);
    assert_eq!(
        got,
        vec![
            (6, Verdict::Verified),
            (7, Verdict::Verified),
            (8, Verdict::Verified),
            (9, Verdict::Failed)
        ]
    );
}
