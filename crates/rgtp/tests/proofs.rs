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

/// A verifier that writes the output: every chunk lands at its offset, one that
/// failed is overwritten by its good copy handed over later, and a chunk's verdict
/// comes back only once its bytes are in the file.
#[test]
fn a_writing_verifier_writes_before_it_answers_and_good_copies_overwrite_bad() {
    use rgtp::sink::{FileSink, Sink};
    use std::os::unix::fs::FileExt;
    let scheme = Sha256::new();
    let data: Vec<u8> = (0..700_000usize)
        .map(|i| (i * 13 + i / 977) as u8)
        .collect();
    let chunks: Vec<&[u8]> = data.chunks(CHUNK).collect();
    let n = chunks.len() as u32;
    let leaves: Vec<_> = chunks.iter().map(|c| scheme.leaf(c)).collect();
    let tree = MerkleTree::from_leaves(&scheme, leaves);
    let dir = tempfile::tempdir().unwrap();
    let mut sink = FileSink::create(&dir.path().join("out")).unwrap();
    sink.manifest(&rgtp_proto::puller::ManifestInfo {
        exposure_id: [0; 16],
        total_size: data.len() as u64,
        chunk_count: n,
        chunk_size: CHUNK as u32,
        merkle_root: tree.root(),
        suite: rgtp_proto::SuiteId::default(),
        rate_cap: None,
    })
    .unwrap();
    let writer = sink.detach_writer().unwrap();
    let mut v = Verifier::start_writing(&scheme, n, tree.root(), CHUNK as u32, writer).unwrap();
    assert!(v.writes());
    let file = std::fs::File::open(sink.partial_path()).unwrap();
    let on_disk = |i: u32| {
        let mut b = vec![0u8; chunks[i as usize].len()];
        file.read_exact_at(&mut b, u64::from(i) * CHUNK as u64)
            .unwrap();
        b
    };
    let wrong = vec![0xee; CHUNK];
    let mut got = Vec::new();
    for i in 0..n {
        let p = (i % 64 == 0).then(|| proof(&tree, i));
        let bytes = if i == 300 {
            &wrong[..]
        } else {
            chunks[i as usize]
        };
        v.push(i, bytes, p.as_deref()).unwrap();
        v.check().unwrap();
        // Each verdict as it comes: its chunk is already in the file.
        v.settle(|i, verdict| {
            let want: &[u8] = if i == 300 { &wrong } else { chunks[i as usize] };
            assert!(on_disk(i) == want, "verdict for chunk {i} before its bytes");
            got.push((i, verdict));
        })
        .unwrap();
    }
    drain(&mut v, &mut got);
    assert_eq!(got.len(), n as usize);
    let failed: Vec<u32> = got
        .iter()
        .filter(|(_, v)| *v != Verdict::Verified)
        .map(|&(i, _)| i)
        .collect();
    assert!(failed.contains(&300), "{failed:?}");
    assert_eq!(
        on_disk(300),
        wrong,
        "a failed chunk is written all the same"
    );
    // The good copies, each with its own proof, as a puller asks for them again.
    for &i in &failed {
        v.push(i, chunks[i as usize], Some(&proof(&tree, i)))
            .unwrap();
    }
    let mut again = Vec::new();
    drain(&mut v, &mut again);
    assert!(
        again.iter().all(|(_, v)| *v == Verdict::Verified),
        "{again:?}"
    );
    assert_eq!(v.root(), Some(tree.root()));
    let (writer, result) = v.wait();
    result.unwrap();
    sink.attach_writer(writer.expect("the writer comes back"));
    assert!(sink.contents().unwrap() == &data[..], "output differs");
}
