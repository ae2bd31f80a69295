//! Proofs checked on another core (`rgtp::proofs::Verifier`), a run of 64 at a
//! time: a verdict for every chunk handed over, only the true plaintext (with its
//! true proof, if it carries one) passes, and the root folded over what passed is
//! the exposure's.

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
    // As proof runs arrive: each run's first chunk with its proof, the others
    // without. But chunk 100 with wrong bytes, and chunk 1000 with chunk 1001's
    // proof (right from the run up, wrong below it).
    let wrong = vec![0xee; CHUNK];
    for i in 0..n {
        let p = match i {
            1000 => Some(proof(&tree, 1001)),
            _ if i % 64 == 0 => Some(proof(&tree, i)),
            _ => None,
        };
        let bytes = if i == 100 {
            &wrong[..]
        } else {
            chunks[i as usize]
        };
        v.push(i, bytes, p.as_deref()).unwrap();
    }
    drain(&mut v, &mut got);
    assert_eq!(got.len(), n as usize, "one verdict a chunk");
    got.sort_unstable_by_key(|&(i, _)| i);
    let not_passed: Vec<(u32, Verdict)> = got
        .iter()
        .copied()
        .filter(|(_, v)| *v != Verdict::Verified)
        .collect();
    // Chunk 64's proof showed the true hash of 96..128: that part fails whole.
    // Chunk 1000 fails by its own proof; what chunk 960's proof showed for
    // 992..1024 cannot be checked without it: the others there are unproven.
    let mut want: Vec<(u32, Verdict)> = (96..128).map(|i| (i, Verdict::Failed)).collect();
    want.extend((992..1024).map(|i| {
        let v = if i == 1000 {
            Verdict::Failed
        } else {
            Verdict::Unproven
        };
        (i, v)
    }));
    assert_eq!(not_passed, want);
    assert_eq!(v.root(), None, "not every chunk has passed");
    // Asked for again, they come with their proofs and pass one by one; one that
    // passed already passes again.
    for i in (96..128).chain(992..1024) {
        v.push(i, chunks[i as usize], Some(&proof(&tree, i)))
            .unwrap();
    }
    v.push(5, chunks[5], None).unwrap();
    got.clear();
    drain(&mut v, &mut got);
    assert_eq!(got.len(), 65);
    assert!(got.iter().all(|&(_, v)| v == Verdict::Verified), "{got:?}");
    assert_eq!(v.root(), Some(tree.root()));
}

#[test]
fn a_run_without_a_proof_waits_for_what_vouches_for_it() {
    let scheme = Sha256::new();
    let data: Vec<u8> = (0..300_000usize).map(|i| (i * 3) as u8).collect();
    let chunks: Vec<&[u8]> = data.chunks(CHUNK).collect();
    let leaves: Vec<_> = chunks.iter().map(|c| scheme.leaf(c)).collect();
    let tree = MerkleTree::from_leaves(&scheme, leaves);
    let mut v = Verifier::start(&scheme, chunks.len() as u32, tree.root());
    let mut got = Vec::new();
    // Run 1 (64..128) whole, without a proof: nothing vouches for it yet, so its
    // first chunk is unproven (to be asked for again) and the others wait.
    for i in 64..128u32 {
        v.push(i, chunks[i as usize], None).unwrap();
    }
    settle_until(&mut v, &mut got, 1);
    assert_eq!(got, vec![(64, Verdict::Unproven)]);
    assert_eq!(v.outstanding(), 63);
    // Run 0 with a chunk missing has no verdicts yet.
    got.clear();
    for i in (0..64u32).filter(|&i| i != 7) {
        let p = (i == 0).then(|| proof(&tree, 0));
        v.push(i, chunks[i as usize], p.as_deref()).unwrap();
    }
    v.settle(|i, verdict| got.push((i, verdict))).unwrap();
    std::thread::sleep(Duration::from_millis(50));
    v.settle(|i, verdict| got.push((i, verdict))).unwrap();
    assert!(got.is_empty(), "{got:?}");
    assert_eq!(v.outstanding(), 63 + 63);
    // Chunk 7, rebuilt (no proof), completes run 0: all pass, and chunk 0's proof
    // vouches for run 1, which passes once chunk 64 is back, rebuilt too.
    v.push(7, chunks[7], None).unwrap();
    v.push(64, chunks[64], None).unwrap();
    drain(&mut v, &mut got);
    assert_eq!(got.len(), 128);
    assert!(got.iter().all(|&(_, v)| v == Verdict::Verified));
}

/// Settles until `n` verdicts came back (or a minute passes).
fn settle_until(v: &mut Verifier, got: &mut Vec<(u32, Verdict)>, n: usize) {
    let until = Instant::now() + Duration::from_secs(60);
    while got.len() < n {
        v.settle(|i, verdict| got.push((i, verdict))).unwrap();
        assert!(Instant::now() < until, "verdicts missing");
        std::thread::sleep(Duration::from_millis(1));
    }
}
