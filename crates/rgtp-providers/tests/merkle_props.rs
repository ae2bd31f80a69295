//! Property tests for Merkle trees over the real hash schemes.

use proptest::prelude::*;
use rgtp_proto::merkle::{
    leaves_of, proof_depth, root_of, verify_proof, HashId, MerkleScheme, MerkleTree,
};
use rgtp_providers::hash::{Blake2b256, Blake3, Sha256};
use rgtp_providers::AnyHash;

fn any_hash() -> impl Strategy<Value = AnyHash> {
    prop::sample::select(vec![HashId::Blake2b256, HashId::Sha256, HashId::Blake3])
        .prop_map(|id| AnyHash::new(id).expect("built in"))
}

/// 1..200 chunks. Each starts with its index so no two are equal: two equal
/// sibling leaves make swapping them undetectable, which is expected and not
/// what these properties are about.
fn chunks() -> impl Strategy<Value = Vec<Vec<u8>>> {
    prop::collection::vec(prop::collection::vec(any::<u8>(), 0..64), 1..200).prop_map(|cs| {
        cs.into_iter()
            .enumerate()
            .map(|(i, mut c)| {
                let mut chunk = (i as u32).to_le_bytes().to_vec();
                chunk.append(&mut c);
                chunk
            })
            .collect()
    })
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(128))]

    #[test]
    fn every_proof_verifies_and_tampering_fails(
        scheme in any_hash(),
        chunks in chunks(),
        pick in any::<prop::sample::Index>(),
        other in any::<prop::sample::Index>(),
        bit in 0usize..256,
    ) {
        let n = chunks.len() as u32;
        let leaves: Vec<[u8; 32]> = chunks.iter().map(|c| scheme.leaf(c)).collect();
        let tree = MerkleTree::from_leaves(&scheme, leaves.clone());
        let root = tree.root();
        prop_assert_eq!(root_of(&scheme, &leaves), root);
        prop_assert_eq!(tree.depth(), proof_depth(n));

        for i in 0..n {
            let proof: Vec<[u8; 32]> = tree.siblings(i).copied().collect();
            prop_assert!(verify_proof(&scheme, &leaves[i as usize], i, n, proof.iter(), &root));
        }

        let i = pick.index(chunks.len()) as u32;
        let leaf = leaves[i as usize];
        let proof: Vec<[u8; 32]> = tree.siblings(i).copied().collect();
        let flip = |h: &mut [u8; 32]| h[bit / 8] ^= 1 << (bit % 8);

        let mut bad_leaf = leaf;
        flip(&mut bad_leaf);
        prop_assert!(!verify_proof(&scheme, &bad_leaf, i, n, proof.iter(), &root));

        for s in 0..proof.len() {
            let mut bad = proof.clone();
            flip(&mut bad[s]);
            prop_assert!(!verify_proof(&scheme, &leaf, i, n, bad.iter(), &root));
        }

        let j = other.index(chunks.len()) as u32;
        if j != i {
            prop_assert!(!verify_proof(&scheme, &leaf, j, n, proof.iter(), &root));
        }
        // An index past the end fails even where its low bits match.
        prop_assert!(!verify_proof(&scheme, &leaf, i + n, n, proof.iter(), &root));
        prop_assert!(!verify_proof(&scheme, &leaf, i | (1 << proof.len()), n, proof.iter(), &root));

        let mut bad_root = root;
        flip(&mut bad_root);
        prop_assert!(!verify_proof(&scheme, &leaf, i, n, proof.iter(), &bad_root));
    }

    #[test]
    fn root_of_matches_tree(scheme in any_hash(), leaves in prop::collection::vec(any::<[u8; 32]>(), 0..300)) {
        let tree = MerkleTree::from_leaves(&scheme, leaves.clone());
        prop_assert_eq!(root_of(&scheme, &leaves), tree.root());
    }
}

#[test]
fn any_hash_matches_concrete_schemes() {
    let (l, r) = ([1u8; 32], [2u8; 32]);
    let cases: [(HashId, Box<dyn MerkleScheme>); 3] = [
        (HashId::Blake2b256, Box::new(Blake2b256::new())),
        (HashId::Sha256, Box::new(Sha256::new())),
        (HashId::Blake3, Box::new(Blake3)),
    ];
    for (id, concrete) in cases {
        let any = AnyHash::new(id).expect("built in");
        assert_eq!(any.id(), id);
        assert_eq!(concrete.id(), id);
        assert_eq!(any.leaf(b"chunk"), concrete.leaf(b"chunk"));
        assert_eq!(any.node(&l, &r), concrete.node(&l, &r));
        // Domain separation: a leaf over 64 bytes is not the node over them.
        assert_ne!(any.leaf(&[l, r].concat()), any.node(&l, &r));
        assert_ne!(any.node(&l, &r), any.node(&r, &l));
    }
}

/// A tree the size of a 64 MiB exposure at 1200-byte chunks builds, and its
/// padding (55 924 leaves → 65 536) is handled without hashing padding nodes.
#[test]
fn medium_tree() {
    let scheme = AnyHash::new(HashId::Blake3).expect("built in");
    let leaves: Vec<[u8; 32]> = (0u32..55_924)
        .map(|i| scheme.leaf(&i.to_le_bytes()))
        .collect();
    let tree = MerkleTree::from_leaves(&scheme, leaves.clone());
    assert_eq!(tree.depth(), 16);
    assert_eq!(root_of(&scheme, &leaves), tree.root());
    let last = 55_923;
    let proof: Vec<[u8; 32]> = tree.siblings(last).copied().collect();
    assert!(verify_proof(
        &scheme,
        &leaves[last as usize],
        last,
        55_924,
        proof.iter(),
        &tree.root()
    ));
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(64))]

    /// Hashing many messages at once (SHA-256's multi-message kernel; the loop
    /// elsewhere) gives exactly what hashing them one by one gives, whatever the
    /// lengths (mixed, across block boundaries, empty) and however many.
    #[test]
    fn batched_leaves_and_nodes_equal_one_at_a_time(
        scheme in any_hash(),
        chunks in prop::collection::vec(prop::collection::vec(any::<u8>(), 0..300), 0..70),
        long in prop::collection::vec(any::<u8>(), 0..5000),
        chunk_size in 1usize..1500,
    ) {
        let mut bodies: Vec<&[u8]> = chunks.iter().map(|c| &c[..]).collect();
        bodies.push(&long);
        let one: Vec<[u8; 32]> = bodies.iter().map(|c| scheme.leaf(c)).collect();
        let mut many = vec![[0u8; 32]; bodies.len()];
        scheme.leaves(&bodies, &mut many);
        prop_assert_eq!(&many, &one);

        let pairs = one.len() / 2;
        let mut nodes = vec![[0u8; 32]; pairs];
        scheme.nodes(&one[..2 * pairs], &mut nodes);
        for (i, n) in nodes.iter().enumerate() {
            prop_assert_eq!(*n, scheme.node(&one[2 * i], &one[2 * i + 1]));
        }

        let mut cut = vec![[0u8; 32]; long.len().div_ceil(chunk_size)];
        leaves_of(&scheme, &long, chunk_size, &mut cut);
        let expected: Vec<[u8; 32]> = long.chunks(chunk_size).map(|c| scheme.leaf(c)).collect();
        prop_assert_eq!(cut, expected);
    }
}

/// SHA-256 through the batch path matches the `sha2` crate on messages of every
/// length from 0 to 300 bytes at once (every padding case, one and two final blocks).
#[test]
fn sha256_batches_match_sha2_at_every_length() {
    use sha2::Digest;
    let data: Vec<u8> = (0..300u32).map(|i| (i * 31 + 7) as u8).collect();
    let bodies: Vec<&[u8]> = (0..=300).map(|n| &data[..n]).collect();
    let mut many = vec![[0u8; 32]; bodies.len()];
    Sha256::new().leaves(&bodies, &mut many);
    for (b, h) in bodies.iter().zip(&many) {
        let want: [u8; 32] = sha2::Sha256::new()
            .chain_update([0u8])
            .chain_update(b)
            .finalize()
            .into();
        assert_eq!(*h, want, "length {}", b.len());
    }
}

/// BLAKE2b-256 through the batch path (`blake2b_simd`'s lanes, messages gathered
/// behind their prefix) matches RustCrypto's `blake2` at every length from 0 to
/// 300 bytes, and for bodies around and beyond the gathering buffer (32 KiB),
/// which are hashed alone, mixed in one call with short ones; the nodes too.
#[test]
fn blake2b_batches_match_blake2_at_every_length() {
    use blake2::Digest;
    type Reference = blake2::Blake2b<blake2::digest::consts::U32>;
    let data: Vec<u8> = (0..70_000u32).map(|i| (i * 31 + 7) as u8).collect();
    let mut lengths: Vec<usize> = (0..=300).collect();
    lengths.extend([
        1200, 16_383, 32_767, 32_768, 32_769, 40_000, 1, 65_000, 0, 1200,
    ]);
    let bodies: Vec<&[u8]> = lengths.iter().map(|&n| &data[..n]).collect();
    let mut many = vec![[0u8; 32]; bodies.len()];
    Blake2b256::new().leaves(&bodies, &mut many);
    for (b, h) in bodies.iter().zip(&many) {
        let want: [u8; 32] = Reference::new()
            .chain_update([0u8])
            .chain_update(b)
            .finalize()
            .into();
        assert_eq!(*h, want, "leaf of length {}", b.len());
    }
    let mut nodes = vec![[0u8; 32]; many.len() / 2];
    Blake2b256::new().nodes(&many[..2 * nodes.len()], &mut nodes);
    for (i, n) in nodes.iter().enumerate() {
        let want: [u8; 32] = Reference::new()
            .chain_update([1u8])
            .chain_update(many[2 * i])
            .chain_update(many[2 * i + 1])
            .finalize()
            .into();
        assert_eq!(*n, want, "node {i}");
    }
}
