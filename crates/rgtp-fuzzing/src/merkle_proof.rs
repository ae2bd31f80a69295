//! `merkle_proof`: `verify_proof` never panics; a real tree's proof verifies; and a
//! mutated proof verifies exactly when it is still the genuine path of some leaf.

use arbitrary::{Arbitrary, Unstructured};
use rgtp_proto::merkle::{self, proof_depth, root_of, MerkleRootBuilder};
use rgtp_proto::{HashId, MerkleScheme, MerkleTree};
use rgtp_providers::AnyHash;
use rgtp_wire::Hash;

const HASHES: [HashId; 3] = [HashId::Blake2b256, HashId::Sha256, HashId::Blake3];

#[derive(Debug, Arbitrary)]
enum Mutation {
    None,
    FlipSibling { at: u8, byte: u8, bit: u8 },
    FlipLeaf { byte: u8, bit: u8 },
    FlipRoot { byte: u8, bit: u8 },
    Index(u32),
    IndexXor(u8),
    Count(u32),
    DropSibling(u8),
    AddSibling([u8; 32]),
    SwapSiblings(u8, u8),
    ZeroLeaf,
    OtherLeafHash(u16),
}

/// First byte even: raw — arbitrary leaf, index, count, siblings and root (no panic,
/// and a `true` only for a genuine proof of a tree the input spelled out).
/// Odd: a real tree of 1..=300 arbitrary leaves, one real proof, one mutation.
pub fn merkle_proof(data: &[u8]) {
    let Some((&mode, rest)) = data.split_first() else {
        return;
    };
    let mut u = Unstructured::new(rest);
    let scheme = AnyHash::new(HASHES[usize::from(mode >> 1) % 3]).expect("every hash is built");
    if mode & 1 == 0 {
        let _ = raw(&scheme, &mut u);
    } else {
        let _ = mutated(&scheme, &mut u);
    }
}

fn raw(scheme: &AnyHash, u: &mut Unstructured<'_>) -> arbitrary::Result<()> {
    let leaf: Hash = u.arbitrary()?;
    let index: u32 = u.arbitrary()?;
    let count: u32 = u.arbitrary()?;
    let root: Hash = u.arbitrary()?;
    let n = u.int_in_range(0..=40usize)?;
    let siblings: Vec<Hash> = (0..n).map(|_| u.arbitrary()).collect::<Result<_, _>>()?;
    let ok = merkle::verify_proof(scheme, &leaf, index, count, siblings.iter(), &root);
    if ok {
        // Then it must be well-formed, and folding by hand must give the root.
        assert!(index < count && siblings.len() == proof_depth(count));
        assert_eq!(fold(scheme, leaf, index, &siblings), root);
    }
    Ok(())
}

fn fold(scheme: &AnyHash, leaf: Hash, index: u32, siblings: &[Hash]) -> Hash {
    let mut h = leaf;
    let mut pos = index;
    for s in siblings {
        h = if pos & 1 == 0 {
            scheme.node(&h, s)
        } else {
            scheme.node(s, &h)
        };
        pos >>= 1;
    }
    h
}

/// The padded tree computed the slow, obvious way: `levels[0]` = leaves padded with
/// zero hashes to a power of two.
fn padded_levels(scheme: &AnyHash, leaves: &[Hash]) -> Vec<Vec<Hash>> {
    let width = 1usize << proof_depth(leaves.len() as u32);
    let mut level = leaves.to_vec();
    level.resize(width, [0; 32]);
    let mut levels = vec![level];
    while levels.last().expect("one level").len() > 1 {
        let next = levels
            .last()
            .expect("one level")
            .chunks(2)
            .map(|p| scheme.node(&p[0], &p[1]))
            .collect();
        levels.push(next);
    }
    levels
}

fn mutated(scheme: &AnyHash, u: &mut Unstructured<'_>) -> arbitrary::Result<()> {
    let n = u.int_in_range(1..=300usize)?;
    let leaves: Vec<Hash> = (0..n)
        .map(|i| {
            // Few distinct chunk contents, so equal leaves (and equal siblings) occur.
            let b: u8 = u.arbitrary().unwrap_or(i as u8);
            scheme.leaf(&[b & 0x0f])
        })
        .collect();
    let count = n as u32;
    let index = u.int_in_range(0..=count - 1)?;
    let tree = MerkleTree::from_leaves(scheme, leaves.clone());
    let levels = padded_levels(scheme, &leaves);
    let root = levels.last().expect("root level")[0];
    // Every root computation agrees with the obvious one.
    assert_eq!(
        tree.root(),
        root,
        "MerkleTree root differs from the padded tree"
    );
    assert_eq!(root_of(scheme, &leaves), root, "root_of differs");
    let mut b = MerkleRootBuilder::new();
    for l in &leaves {
        b.push(scheme, l);
    }
    assert_eq!(b.finish(scheme), root, "MerkleRootBuilder differs");
    let genuine = |i: u32| -> Vec<Hash> {
        (0..levels.len() - 1)
            .map(|h| levels[h][((i >> h) ^ 1) as usize])
            .collect()
    };

    let siblings: Vec<Hash> = tree.siblings(index).copied().collect();
    assert_eq!(
        siblings,
        genuine(index),
        "MerkleTree::siblings is not the genuine path"
    );
    let mut written = vec![0u8; siblings.len() * 32];
    tree.write_proof(index, &mut written);
    assert_eq!(
        written,
        siblings.concat(),
        "write_proof differs from siblings"
    );
    assert!(
        merkle::verify_proof(
            scheme,
            &leaves[index as usize],
            index,
            count,
            siblings.iter(),
            &root
        ),
        "a real proof does not verify"
    );

    let (mut leaf, mut idx, mut cnt, mut sibs, mut rt) =
        (leaves[index as usize], index, count, siblings, root);
    match Mutation::arbitrary(u)? {
        Mutation::None => {}
        Mutation::FlipSibling { at, byte, bit } => {
            let at = usize::from(at) % sibs.len().max(1);
            if let Some(s) = sibs.get_mut(at) {
                s[usize::from(byte) % 32] ^= 1 << (bit % 8);
            }
        }
        Mutation::FlipLeaf { byte, bit } => leaf[usize::from(byte) % 32] ^= 1 << (bit % 8),
        Mutation::FlipRoot { byte, bit } => rt[usize::from(byte) % 32] ^= 1 << (bit % 8),
        Mutation::Index(i) => idx = i,
        Mutation::IndexXor(x) => idx ^= u32::from(x),
        Mutation::Count(c) => cnt = c,
        Mutation::DropSibling(at) => {
            if !sibs.is_empty() {
                let at = usize::from(at) % sibs.len();
                sibs.remove(at);
            }
        }
        Mutation::AddSibling(h) => sibs.push(h),
        Mutation::SwapSiblings(a, b) => {
            if !sibs.is_empty() {
                let l = sibs.len();
                sibs.swap(usize::from(a) % l, usize::from(b) % l);
            }
        }
        Mutation::ZeroLeaf => leaf = [0; 32],
        Mutation::OtherLeafHash(j) => leaf = leaves[usize::from(j) % n],
    }
    let got = merkle::verify_proof(scheme, &leaf, idx, cnt, sibs.iter(), &rt);
    // Barring hash collisions, the proof verifies iff it is the genuine path of leaf
    // position `idx` of this tree (padding included), for a count of the same depth.
    let width = levels[0].len() as u64;
    let expected = idx < cnt
        && proof_depth(cnt) == proof_depth(count)
        && rt == root
        && u64::from(idx) < width
        && leaf == levels[0][idx as usize]
        && sibs == genuine(idx);
    assert_eq!(
        got, expected,
        "verify_proof = {got}, expected {expected} (index {idx}, count {cnt})"
    );
    Ok(())
}
