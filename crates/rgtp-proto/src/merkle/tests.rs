//! Tree, proof and root tests against a naive padded tree, and the testing scheme
//! against `spec/vectors/merkle.txt`.

use super::*;

/// A structure-testing hash: four FNV-1a lanes with distinct bases and a
/// final avalanche. NOT a cryptographic hash.
struct ToyHash;

impl ToyHash {
    fn digest(parts: &[&[u8]]) -> Hash {
        let mut lanes = [
            0xcbf2_9ce4_8422_2325u64,
            0x9e37_79b9_7f4a_7c15,
            0x6a09_e667_f3bc_c908,
            0xbb67_ae85_84ca_a73b,
        ];
        for part in parts {
            for &b in *part {
                for (k, lane) in lanes.iter_mut().enumerate() {
                    *lane = (*lane ^ u64::from(b) ^ k as u64).wrapping_mul(0x0000_0100_0000_01b3);
                }
            }
        }
        let mut out = [0u8; 32];
        for (k, lane) in lanes.iter().enumerate() {
            let mut z = lane.wrapping_add(0x9e37_79b9_7f4a_7c15);
            z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
            z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
            z ^= z >> 31;
            out[8 * k..8 * k + 8].copy_from_slice(&z.to_le_bytes());
        }
        out
    }
}

impl MerkleScheme for ToyHash {
    fn id(&self) -> HashId {
        HashId::Sha256
    }
    fn leaf(&self, chunk: &[u8]) -> Hash {
        Self::digest(&[&[0x00], chunk])
    }
    fn node(&self, left: &Hash, right: &Hash) -> Hash {
        Self::digest(&[&[0x01], left, right])
    }
}

fn leaves(n: usize) -> Vec<Hash> {
    (0..n)
        .map(|i| ToyHash.leaf(&(i as u32).to_le_bytes()))
        .collect()
}

/// The spec's construction, literally: pad to a power of two with zero
/// hashes and hash every node. Returns all levels, leaves first.
fn naive_levels(leaves: &[Hash]) -> Vec<Vec<Hash>> {
    let mut level = leaves.to_vec();
    level.resize(leaves.len().next_power_of_two(), ZERO_HASH);
    let mut levels = vec![level];
    while levels.last().unwrap().len() > 1 {
        let next = levels
            .last()
            .unwrap()
            .chunks(2)
            .map(|p| ToyHash.node(&p[0], &p[1]))
            .collect();
        levels.push(next);
    }
    levels
}

#[test]
fn depth_table() {
    let table = [
        (0, 0),
        (1, 0),
        (2, 1),
        (3, 2),
        (4, 2),
        (5, 3),
        (8, 3),
        (9, 4),
        (1 << 20, 20),
        ((1 << 20) + 1, 21),
        (u32::MAX, 32),
    ];
    for (n, d) in table {
        assert_eq!(proof_depth(n), d, "n = {n}");
    }
}

#[test]
fn empty_exposure() {
    let tree = MerkleTree::from_leaves(&ToyHash, Vec::new());
    assert_eq!(tree.root(), ToyHash.leaf(&[]));
    assert_eq!(tree.leaf_count(), 0);
    assert_eq!(tree.depth(), 0);
    assert!(tree.leaves().is_empty());
    assert_eq!(root_of(&ToyHash, &[]), ToyHash.leaf(&[]));
    let root = tree.root();
    assert!(!verify_proof(&ToyHash, &root, 0, 0, [].iter(), &root));
}

#[test]
fn single_chunk() {
    let leaf = ToyHash.leaf(b"only");
    let tree = MerkleTree::from_leaves(&ToyHash, vec![leaf]);
    assert_eq!(tree.root(), leaf);
    assert_eq!(tree.depth(), 0);
    assert_eq!(tree.siblings(0).len(), 0);
    tree.write_proof(0, &mut []);
    assert!(verify_proof(&ToyHash, &leaf, 0, 1, [].iter(), &leaf));
    assert!(!verify_proof(&ToyHash, &leaf, 1, 1, [].iter(), &leaf));
    assert!(!verify_proof(&ToyHash, &leaf, 0, 1, [leaf].iter(), &leaf));
}

#[test]
fn matches_naive_padded_tree() {
    for n in 1..=70 {
        let leaves = leaves(n);
        let naive = naive_levels(&leaves);
        let root = naive.last().unwrap()[0];
        let tree = MerkleTree::from_leaves(&ToyHash, leaves.clone());
        assert_eq!(tree.root(), root, "n = {n}");
        assert_eq!(root_of(&ToyHash, &leaves), root, "n = {n}");
        assert_eq!(tree.depth(), naive.len() - 1);
        assert_eq!(tree.leaves(), &leaves[..]);
        for i in 0..n {
            let expected: Vec<Hash> = (0..tree.depth()).map(|h| naive[h][(i >> h) ^ 1]).collect();
            let got: Vec<Hash> = tree.siblings(i as u32).copied().collect();
            assert_eq!(got, expected, "n = {n}, i = {i}");
            let mut buf = vec![0xa5; 32 * tree.depth()];
            tree.write_proof(i as u32, &mut buf);
            assert_eq!(buf, expected.concat());
        }
    }
}

#[test]
fn proofs_verify_and_tampering_fails() {
    for n in 1..=33u32 {
        let leaves = leaves(n as usize);
        let tree = MerkleTree::from_leaves(&ToyHash, leaves.clone());
        let root = tree.root();
        for i in 0..n {
            let leaf = &leaves[i as usize];
            let proof: Vec<Hash> = tree.siblings(i).copied().collect();
            assert!(verify_proof(&ToyHash, leaf, i, n, proof.iter(), &root));
            // Wrong index (same depth) fails.
            for j in (0..n).filter(|&j| j != i) {
                assert!(!verify_proof(&ToyHash, leaf, j, n, proof.iter(), &root));
            }
            // Index out of range fails even if the bits would fold right.
            let alias = i + (1 << proof.len());
            assert!(!verify_proof(&ToyHash, leaf, alias, n, proof.iter(), &root));
            // Wrong chunk count changes the required depth.
            if proof_depth(n + 1) != proof.len() {
                assert!(!verify_proof(&ToyHash, leaf, i, n + 1, proof.iter(), &root));
            }
            // Flipped bits anywhere fail.
            let mut bad_leaf = *leaf;
            bad_leaf[(i as usize) % 32] ^= 0x80;
            assert!(!verify_proof(
                &ToyHash,
                &bad_leaf,
                i,
                n,
                proof.iter(),
                &root
            ));
            for s in 0..proof.len() {
                let mut bad = proof.clone();
                bad[s][31 - s % 32] ^= 1;
                assert!(!verify_proof(&ToyHash, leaf, i, n, bad.iter(), &root));
            }
            let mut bad_root = root;
            bad_root[0] ^= 1;
            assert!(!verify_proof(&ToyHash, leaf, i, n, proof.iter(), &bad_root));
            // Too short and too long fail.
            if let Some((_, shorter)) = proof.split_last() {
                assert!(!verify_proof(&ToyHash, leaf, i, n, shorter.iter(), &root));
            }
            let mut longer = proof.clone();
            longer.push(ZERO_HASH);
            assert!(!verify_proof(&ToyHash, leaf, i, n, longer.iter(), &root));
        }
    }
}

/// An iterator that claims a length it does not have.
struct Liar<'a>(core::slice::Iter<'a, Hash>, usize);

impl<'a> Iterator for Liar<'a> {
    type Item = &'a Hash;
    fn next(&mut self) -> Option<&'a Hash> {
        self.0.next()
    }
    fn size_hint(&self) -> (usize, Option<usize>) {
        (self.1, Some(self.1))
    }
}

impl ExactSizeIterator for Liar<'_> {}

#[test]
fn lying_iterator_fails() {
    // Two leaves: a proof of depth 1 claimed, none given. Folding nothing
    // leaves the leaf itself, which is made to equal the "root".
    let leaf = ToyHash.leaf(b"x");
    assert!(!verify_proof(
        &ToyHash,
        &leaf,
        0,
        2,
        Liar([].iter(), 1),
        &leaf
    ));
}

#[test]
fn builder_matches_root_of_at_every_prefix() {
    let leaves = leaves(300);
    let mut builder = MerkleRootBuilder::new();
    for (i, leaf) in leaves.iter().enumerate() {
        builder.push(&ToyHash, leaf);
        assert_eq!(builder.leaf_count(), i as u64 + 1);
        let expected = naive_levels(&leaves[..=i]).last().unwrap()[0];
        assert_eq!(builder.clone().finish(&ToyHash), expected, "n = {}", i + 1);
    }
}

/// Leaves pushed in runs (whole aligned runs of 64 hashed a level at a time)
/// give the root pushing them one by one gives, wherever the runs start and end.
#[test]
fn push_many_matches_push_wherever_runs_split() {
    let leaves = leaves(400);
    for n in [0, 1, 63, 64, 65, 127, 128, 129, 200, 256, 300, 400] {
        let mut one_by_one = MerkleRootBuilder::new();
        for leaf in &leaves[..n] {
            one_by_one.push(&ToyHash, leaf);
        }
        let expected = one_by_one.finish(&ToyHash);
        if n > 0 {
            assert_eq!(expected, naive_levels(&leaves[..n]).last().unwrap()[0]);
        }
        for first in [0, 1, 5, 63, 64, 65, 100, 130] {
            let first = first.min(n);
            let mut builder = MerkleRootBuilder::new();
            builder.push_many(&ToyHash, &leaves[..first]);
            for part in leaves[first..n].chunks(77) {
                builder.push_many(&ToyHash, part);
            }
            assert_eq!(builder.leaf_count(), n as u64);
            assert_eq!(
                builder.finish(&ToyHash),
                expected,
                "n = {n}, first run {first}"
            );
        }
    }
}

/// [`ToyHash`], counting the nodes it hashes alone and those it hashes through
/// [`MerkleScheme::nodes`].
#[derive(Default)]
struct CountingToy {
    alone: std::sync::atomic::AtomicUsize,
    batched: std::sync::atomic::AtomicUsize,
}

impl MerkleScheme for CountingToy {
    fn id(&self) -> HashId {
        ToyHash.id()
    }
    fn leaf(&self, chunk: &[u8]) -> Hash {
        ToyHash.leaf(chunk)
    }
    fn node(&self, left: &Hash, right: &Hash) -> Hash {
        self.alone
            .fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        ToyHash.node(left, right)
    }
    fn nodes(&self, children: &[Hash], out: &mut [Hash]) {
        self.batched
            .fetch_add(out.len(), std::sync::atomic::Ordering::Relaxed);
        ToyHash.nodes(children, out)
    }
}

/// However the leaves are split between calls, every whole run of 64 is hashed
/// through `nodes`: leaves handed over a few at a time, out of step with the runs
/// (as the puller's leaf thread hands over the leaves without a gap, after each
/// batch), cost no more lone node hashes than leaves handed over at once.
#[test]
fn whole_runs_are_hashed_together_however_the_calls_split_them() {
    let leaves = leaves(1000);
    let at_once = CountingToy::default();
    let mut b = MerkleRootBuilder::new();
    b.push_many(&at_once, &leaves);
    let root = b.finish(&at_once);
    for part in [1, 7, 77, 100, 129] {
        let split = CountingToy::default();
        let mut b = MerkleRootBuilder::new();
        for p in leaves.chunks(part) {
            b.push_many(&split, p);
        }
        assert_eq!(b.finish(&split), root, "parts of {part}");
        let batched = split.batched.load(std::sync::atomic::Ordering::Relaxed);
        let alone = split.alone.load(std::sync::atomic::Ordering::Relaxed);
        // 15 whole runs of 63 nodes each; the last 40 leaves and what lies above
        // the runs, alone.
        assert_eq!(batched, 15 * 63, "parts of {part}");
        assert_eq!(
            alone,
            at_once.alone.load(std::sync::atomic::Ordering::Relaxed),
            "parts of {part}"
        );
    }
}

/// `spec/vectors/merkle.txt`, BLAKE2b-256, zero to two chunks.
#[test]
fn testing_hash_is_blake2b_256_of_the_vectors() {
    let h = |s: &str| -> Hash { hex::decode(s).unwrap().try_into().unwrap() };
    assert_eq!(
        root_of(&TestingHash, &[]),
        h("03170a2e7597b7b7e3d84c05391d139a62b157e78786d8c082f29dcf4c111314")
    );
    let leaves = [
        TestingHash.leaf(&[0x00]),
        TestingHash.leaf(&hex::decode("010e1b2835424f5c697683").unwrap()),
    ];
    assert_eq!(
        leaves[0],
        h("9ee6dfb61a2fb903df487c401663825643bb825d41695e63df8af6162ab145a6")
    );
    assert_eq!(
        leaves[1],
        h("d61ffdea07f9725c4c20bff33de1460eeda42adcece34758b83bf4c779cbbc97")
    );
    assert_eq!(
        root_of(&TestingHash, &leaves),
        h("500265b4b797d1bfb02150cb80a0edac5471a705a0aa336382e692ce19f03bd9")
    );
}

#[test]
#[should_panic(expected = "out of range")]
fn proof_index_out_of_range_panics() {
    let tree = MerkleTree::from_leaves(&ToyHash, leaves(3));
    tree.write_proof(3, &mut [0u8; 64]);
}

#[test]
#[should_panic(expected = "32 * depth")]
fn proof_buffer_wrong_length_panics() {
    let tree = MerkleTree::from_leaves(&ToyHash, leaves(3));
    tree.write_proof(0, &mut [0u8; 32]);
}

#[test]
fn node_reads_every_level_of_the_padded_tree() {
    for n in [1usize, 2, 3, 5, 8, 13, 33] {
        let l = leaves(n);
        let tree = MerkleTree::from_leaves(&ToyHash, l.clone());
        let naive = naive_levels(&l);
        for (h, level) in naive.iter().enumerate() {
            for (p, want) in level.iter().enumerate() {
                assert_eq!(tree.node(h, p as u32), want, "n={n} h={h} p={p}");
            }
        }
    }
}

#[test]
fn replace_leaf_gives_the_tree_built_over_the_new_leaves() {
    for n in [1usize, 2, 3, 7, 16, 21] {
        let mut l = leaves(n);
        let mut tree = MerkleTree::from_leaves(&ToyHash, l.clone());
        for i in (0..n).step_by(2) {
            let new = ToyHash.leaf(&[0xee, i as u8]);
            l[i] = new;
            tree.replace_leaf(&ToyHash, i as u32, new);
            assert_eq!(tree.root(), root_of(&ToyHash, &l), "n={n} i={i}");
        }
    }
}
