//! The Merkle tree over the leaves accepted so far, folded as it fills.
//!
//! Leaves arrive in any order. A leaf, or a node, is kept only while its
//! sibling is still missing; once both are in they are replaced by their
//! parent. Subtrees that hold only padding (past `Chunk_Count`) are known in
//! advance, one hash per height. So memory follows the gaps in what was
//! accepted (in order arrival keeps O(window + log n) nodes), never the
//! Chunk_Count a Manifest declared (spec §8.11), and the root costs the same
//! `chunk_count - 1 + O(log chunk_count)` node hashes as building it at the end.

use std::collections::HashMap;
use std::hash::BuildHasherDefault;

use rgtp_wire::{Hash, HASH_LEN};

use super::inflight::IndexHasher;
use crate::merkle::{proof_depth, MerkleScheme};

/// True hashes of tree nodes by (height, position), from verified proofs: keys a
/// sender cannot pick freely, so the cheap multiplicative [`IndexHasher`] serves.
pub(super) type Vouched = HashMap<(u8, u32), Hash, BuildHasherDefault<IndexHasher>>;

/// A node's place: height above the leaves in the high half, position in its
/// level in the low half.
fn key(height: usize, pos: u32) -> u64 {
    (height as u64) << 32 | u64::from(pos)
}

/// A padded Merkle tree being filled leaf by leaf, in any order.
#[derive(Debug, Default)]
pub(super) struct PartialTree {
    /// Real leaves (`Chunk_Count`).
    count: u32,
    /// `pads[h]`: the hash of an all-padding subtree of height `h`.
    pads: Vec<Hash>,
    /// Nodes waiting for their sibling, by [`key`] (height, position).
    pending: HashMap<u64, Hash, BuildHasherDefault<IndexHasher>>,
    /// Set once every leaf is in.
    root: Option<Hash>,
}

impl PartialTree {
    /// An empty tree for `count` leaves (`count >= 1`).
    pub(super) fn new<M: MerkleScheme + ?Sized>(scheme: &M, count: u32) -> Self {
        let depth = proof_depth(count);
        let mut pads = Vec::with_capacity(depth);
        let mut pad = [0u8; HASH_LEN];
        for h in 0..depth {
            if h > 0 {
                pad = scheme.node(&pad, &pad);
            }
            pads.push(pad);
        }
        PartialTree {
            count,
            pads,
            pending: HashMap::default(),
            root: None,
        }
    }

    /// Adds leaf `idx` (each index at most once, `idx < count`), folding every
    /// subtree it completes. Returns the height of the largest: the nodes
    /// `(h, idx >> h)` for `h` up to it are now complete.
    pub(super) fn insert<M: MerkleScheme + ?Sized>(
        &mut self,
        scheme: &M,
        idx: u32,
        leaf: Hash,
    ) -> usize {
        debug_assert!(idx < self.count);
        let mut node = leaf;
        let mut pos = idx;
        for (h, pad) in self.pads.iter().enumerate() {
            let sibling = pos ^ 1;
            let sibling_hash = if u64::from(sibling) << h >= u64::from(self.count) {
                *pad
            } else if let Some(s) = self.pending.remove(&key(h, sibling)) {
                s
            } else {
                self.pending.insert(key(h, pos), node);
                return h;
            };
            node = if pos & 1 == 0 {
                scheme.node(&node, &sibling_hash)
            } else {
                scheme.node(&sibling_hash, &node)
            };
            pos >>= 1;
        }
        self.root = Some(node);
        self.pads.len()
    }

    /// True if node `(h, pos)` is complete and waiting for its sibling.
    pub(super) fn is_pending(&self, h: usize, pos: u32) -> bool {
        self.pending.contains_key(&key(h, pos))
    }

    /// True if node `(h, pos)` covers only padding.
    pub(super) fn is_padding(&self, h: usize, pos: u32) -> bool {
        u64::from(pos) << h >= u64::from(self.count)
    }

    /// Checks `leaf`, a chunk not accepted yet, without a proof of its own: folds it
    /// up through the complete subtrees beside it (all verified: this is used only
    /// once proofs are mandatory) until a node whose true hash `vouched` holds, or
    /// the root. `Some(true)` if it matches there, `Some(false)` if not, `None` if
    /// a missing sibling stops the fold first.
    pub(super) fn check_leaf<M: MerkleScheme + ?Sized>(
        &self,
        scheme: &M,
        idx: u32,
        leaf: Hash,
        vouched: &Vouched,
        root: &Hash,
    ) -> Option<bool> {
        let mut node = leaf;
        let mut pos = idx;
        for (h, pad) in self.pads.iter().enumerate() {
            if let Some(v) = vouched.get(&(h as u8, pos)) {
                return Some(v == &node);
            }
            let sibling = pos ^ 1;
            let sibling_hash = if self.is_padding(h, sibling) {
                pad
            } else {
                self.pending.get(&key(h, sibling))?
            };
            node = if pos & 1 == 0 {
                scheme.node(&node, sibling_hash)
            } else {
                scheme.node(sibling_hash, &node)
            };
            pos >>= 1;
        }
        Some(&node == root)
    }

    /// The root, once every leaf is in.
    pub(super) fn root(&self) -> Option<Hash> {
        self.root
    }

    /// Nodes held while waiting for a sibling.
    #[cfg(test)]
    pub(super) fn pending(&self) -> usize {
        self.pending.len()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::merkle::{root_of, TestingHash};

    fn leaves(n: u32) -> Vec<Hash> {
        (0..n).map(|i| TestingHash.leaf(&i.to_le_bytes())).collect()
    }

    fn fill(n: u32, order: impl Iterator<Item = u32>) -> PartialTree {
        let l = leaves(n);
        let mut t = PartialTree::new(&TestingHash, n);
        for i in order {
            assert!(t.root().is_none());
            t.insert(&TestingHash, i, l[i as usize]);
        }
        t
    }

    #[test]
    fn any_order_gives_the_root_of_the_padded_tree() {
        for n in [1u32, 2, 3, 5, 8, 9, 31, 64, 100, 1000] {
            let want = root_of(&TestingHash, &leaves(n));
            let t = fill(n, 0..n);
            assert_eq!(t.root(), Some(want), "in order, {n}");
            assert_eq!(t.pending(), 0);
            let t = fill(n, (0..n).rev());
            assert_eq!(t.root(), Some(want), "reversed, {n}");
            // A fixed scramble: multiply by an odd number modulo the next power of two.
            let p = n.next_power_of_two();
            let t = fill(
                n,
                (0..p)
                    .map(|i| i.wrapping_mul(2_654_435_761) % p)
                    .filter(|&i| i < n),
            );
            assert_eq!(t.root(), Some(want), "scrambled, {n}");
        }
    }

    #[test]
    fn in_order_arrival_keeps_a_logarithmic_number_of_nodes() {
        let n = 1 << 16;
        let l = leaves(n);
        let mut t = PartialTree::new(&TestingHash, n);
        let mut most = 0;
        for i in 0..n {
            t.insert(&TestingHash, i, l[i as usize]);
            most = most.max(t.pending());
        }
        assert!(most <= 16, "{most}");
    }

    #[test]
    fn check_leaf_folds_through_complete_neighbours_to_a_vouched_hash() {
        let n = 8;
        let l = leaves(n);
        let root = root_of(&TestingHash, &l);
        let mut t = PartialTree::new(&TestingHash, n);
        let mut vouched = Vouched::default();
        // Nothing beside leaf 5 and nothing vouched: cannot tell.
        assert_eq!(t.check_leaf(&TestingHash, 5, l[5], &vouched, &root), None);
        for i in [0, 1, 2, 3, 4, 6, 7] {
            t.insert(&TestingHash, i, l[i as usize]);
        }
        // Every other leaf in: the fold reaches the root.
        assert_eq!(
            t.check_leaf(&TestingHash, 5, l[5], &vouched, &root),
            Some(true)
        );
        assert_eq!(
            t.check_leaf(&TestingHash, 5, l[0], &vouched, &root),
            Some(false)
        );
        // A vouched hash is decisive where the fold meets it.
        vouched.insert((0, 5), l[0]);
        assert_eq!(
            t.check_leaf(&TestingHash, 5, l[0], &vouched, &root),
            Some(true)
        );
    }
}
