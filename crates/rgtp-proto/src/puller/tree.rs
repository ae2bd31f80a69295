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

use super::event::Verdict;
use super::inflight::IndexHasher;
use crate::merkle::{proof_depth, MerkleScheme};

/// True hashes of tree nodes by (height, position), from verified proofs: keys a
/// sender cannot pick freely, so the cheap multiplicative [`IndexHasher`] serves.
pub(super) type Vouched = HashMap<(u8, u32), Hash, BuildHasherDefault<IndexHasher>>;

/// The largest subtree [`ProofChecker::judge_subtree`] takes: 64 leaves.
pub const SUBTREE_MAX: usize = 6;

/// Nodes of a subtree of height [`SUBTREE_MAX`], leaves included.
pub const SUBTREE_NODES: usize = (2 << SUBTREE_MAX) - 1;

/// Where level `k` (leaves at 0) of a subtree of `height` starts in the nodes
/// [`ProofChecker::subtree_levels`] keeps.
pub fn level_start(height: usize, k: usize) -> usize {
    (0..k).map(|j| 1usize << (height - j)).sum()
}

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
    ///
    /// `known` holds true hashes of nodes: a parent found there is taken instead of
    /// hashed. Only for a leaf that was verified, whose completed neighbours were too:
    /// the parent of two true hashes is the true parent.
    pub(super) fn insert<M: MerkleScheme + ?Sized>(
        &mut self,
        scheme: &M,
        idx: u32,
        leaf: Hash,
        known: Option<&Vouched>,
    ) -> usize {
        self.insert_at(scheme, 0, idx, leaf, known)
    }

    /// Adds node `(height, pos)`, a whole subtree none of whose leaves is in yet,
    /// as [`PartialTree::insert`] adds a leaf.
    pub(super) fn insert_at<M: MerkleScheme + ?Sized>(
        &mut self,
        scheme: &M,
        height: usize,
        pos: u32,
        hash: Hash,
        known: Option<&Vouched>,
    ) -> usize {
        debug_assert!(u64::from(pos) << height < u64::from(self.count));
        let mut node = hash;
        let mut pos = pos;
        for (h, pad) in self.pads.iter().enumerate().skip(height) {
            let sibling = pos ^ 1;
            let sibling_hash = if u64::from(sibling) << h >= u64::from(self.count) {
                *pad
            } else if let Some(s) = self.pending.remove(&key(h, sibling)) {
                s
            } else {
                self.pending.insert(key(h, pos), node);
                return h;
            };
            node = match known.and_then(|k| k.get(&((h + 1) as u8, pos >> 1))) {
                Some(parent) => *parent,
                None if pos & 1 == 0 => scheme.node(&node, &sibling_hash),
                None => scheme.node(&sibling_hash, &node),
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

/// Checks chunks against Merkle proofs as a pull runs, and folds the tree over
/// the leaves it accepted: the state a [`Puller`](super::Puller) keeps when it
/// checks proofs itself, and what a driver runs on another core under
/// [`PullerConfig::offload_proofs`](super::PullerConfig::offload_proofs).
///
/// A proof is folded up from the leaf until a node whose true hash is already
/// known (the root, or one an earlier proof verified), so chunks arriving in
/// order cost about one node hash each instead of one per tree level. When it
/// `vouches` (proofs are mandatory), every node a verified fold computed and
/// every sibling below the point of comparison is kept as true until its
/// subtree completes: memory follows the gaps in what was accepted, never the
/// Chunk_Count a Manifest declared (spec §8.11).
#[derive(Debug)]
pub struct ProofChecker {
    tree: PartialTree,
    vouched: Vouched,
    vouch: bool,
    count: u32,
    root: Hash,
}

impl ProofChecker {
    /// A checker for `count` chunks (`count >= 1`) under Merkle root `root`;
    /// `vouch`: remember what verified proofs show (proofs are mandatory).
    pub fn new<M: MerkleScheme + ?Sized>(scheme: &M, count: u32, root: Hash, vouch: bool) -> Self {
        ProofChecker {
            tree: PartialTree::new(scheme, count),
            vouched: Vouched::default(),
            vouch,
            count,
            root,
        }
    }

    /// Checks chunk `idx`'s `proof` (siblings leaf to root, [`proof_depth`] hashes)
    /// for `leaf`. Does not accept the chunk: [`ProofChecker::insert`] does.
    pub fn check_proof<M: MerkleScheme + ?Sized>(
        &mut self,
        scheme: &M,
        idx: u32,
        leaf: &Hash,
        proof: &[u8],
    ) -> bool {
        if idx >= self.count {
            return false;
        }
        self.check_from(scheme, 0, idx, leaf, proof)
    }

    /// Checks node `(height, pos)` (a leaf at height 0) against `siblings`, the
    /// proof's hashes from that height up: folds until a true hash already known,
    /// then (when it vouches) keeps what the fold showed.
    fn check_from<M: MerkleScheme + ?Sized>(
        &mut self,
        scheme: &M,
        height: usize,
        pos: u32,
        node: &Hash,
        siblings: &[u8],
    ) -> bool {
        let depth = self.tree.pads.len();
        if height > depth || siblings.len() != (depth - height) * HASH_LEN {
            return false;
        }
        let start = pos;
        let mut node = *node;
        let mut pos = pos;
        let mut path = [[0u8; HASH_LEN]; 32];
        let mut reached = depth;
        for (h, sibling) in (height..).zip(siblings.chunks_exact(HASH_LEN)) {
            if self.vouch && self.vouched.contains_key(&(h as u8, pos)) {
                reached = h;
                break;
            }
            path[h - height] = node;
            let sibling: &Hash = sibling.try_into().expect("32");
            node = if pos & 1 == 0 {
                scheme.node(&node, sibling)
            } else {
                scheme.node(sibling, &node)
            };
            pos >>= 1;
        }
        let against = if reached == depth {
            &self.root
        } else {
            self.vouched
                .get(&(reached as u8, pos))
                .expect("found in the loop")
        };
        if !bool::from(subtle::ConstantTimeEq::ct_eq(&node[..], &against[..])) {
            return false;
        }
        if self.vouch {
            // `path` and `siblings` both start at `height`.
            let below = path.iter().zip(
                siblings
                    .chunks_exact(HASH_LEN)
                    .map(|s| Hash::try_from(s).expect("32")),
            );
            for (h, (mine_hash, sib_hash)) in (height..reached).zip(below) {
                let mine = start >> (h - height);
                // The node checked itself goes into the tree, not here.
                if h > height && !self.tree.is_pending(h, mine) {
                    self.vouched.entry((h as u8, mine)).or_insert(*mine_hash);
                }
                let sib = mine ^ 1;
                if !self.tree.is_padding(h, sib) && !self.tree.is_pending(h, sib) {
                    self.vouched.entry((h as u8, sib)).or_insert(sib_hash);
                }
            }
        }
        true
    }

    /// Judges the chunks of aligned subtree `pos` of `2^height` leaves at once, none
    /// of them accepted yet: `leaves` theirs in index order (all `2^height`, or, for
    /// the subtree holding the last chunk, up to it), `proof` the whole proof of any
    /// one of them (they share its hashes from `height` up). Builds the subtree's
    /// root with the hashes taken many at a time and checks that node alone; if it
    /// passes, every leaf does, and the subtree goes into the tree whole. `false`:
    /// not checked this way (a wrong count, height or proof length), or some leaf
    /// is wrong; judge them one by one then.
    pub fn judge_subtree<M: MerkleScheme + ?Sized>(
        &mut self,
        scheme: &M,
        height: usize,
        pos: u32,
        leaves: &[Hash],
        proof: &[u8],
    ) -> bool {
        let depth = self.tree.pads.len();
        let Some(root) = self.subtree_root(scheme, height, pos, leaves) else {
            return false;
        };
        proof.len() == depth * HASH_LEN
            && self.judge_node(scheme, height, pos, root, Some(&proof[height * HASH_LEN..]))
                == Some(true)
    }

    /// Judges `node`, the root of aligned subtree `(height, pos)` none of whose
    /// leaves is accepted yet (see [`ProofChecker::subtree_root`]): by `siblings`,
    /// a proof's hashes from `height` up, or, without them, against the true hash
    /// a verified proof showed for that node (or the Merkle root, for the whole
    /// tree). `Some(true)`: it passed and the subtree is in the tree whole, every
    /// leaf under it accepted; `Some(false)`: some leaf under it is wrong (or the
    /// proof is); `None`: nothing verified vouches for that node yet.
    pub fn judge_node<M: MerkleScheme + ?Sized>(
        &mut self,
        scheme: &M,
        height: usize,
        pos: u32,
        node: Hash,
        siblings: Option<&[u8]>,
    ) -> Option<bool> {
        let depth = self.tree.pads.len();
        if height > depth || u64::from(pos) << height >= u64::from(self.count) {
            return Some(false);
        }
        let passed = match siblings {
            Some(s) => self.check_from(scheme, height, pos, &node, s),
            None => {
                let against = if height == depth {
                    self.root
                } else {
                    *self.vouched.get(&(height as u8, pos))?
                };
                bool::from(subtle::ConstantTimeEq::ct_eq(&node[..], &against[..]))
            }
        };
        if passed {
            self.place_subtree(scheme, height, pos, node);
        }
        Some(passed)
    }

    /// The root of aligned subtree `(height, pos)` (`1 <= height <= SUBTREE_MAX`)
    /// over `leaves`, its leaves in index order (padded past the last chunk), with
    /// the hashes taken many at a time; `None` if they do not fill it exactly.
    pub fn subtree_root<M: MerkleScheme + ?Sized>(
        &self,
        scheme: &M,
        height: usize,
        pos: u32,
        leaves: &[Hash],
    ) -> Option<Hash> {
        let mut levels = [[0u8; HASH_LEN]; SUBTREE_NODES];
        self.subtree_levels(scheme, height, pos, leaves, &mut levels)
    }

    /// As [`ProofChecker::subtree_root`], keeping every node of the subtree in
    /// `levels`: level `k` (leaves at 0) from [`level_start`]`(height, k)`, in order.
    pub fn subtree_levels<M: MerkleScheme + ?Sized>(
        &self,
        scheme: &M,
        height: usize,
        pos: u32,
        leaves: &[Hash],
        levels: &mut [Hash; SUBTREE_NODES],
    ) -> Option<Hash> {
        let depth = self.tree.pads.len();
        let first = u64::from(pos) << height;
        let span = 1u64 << height;
        let real = (u64::from(self.count).saturating_sub(first)).min(span);
        if height == 0
            || height > depth
            || height > SUBTREE_MAX
            || real == 0
            || leaves.len() as u64 != real
        {
            return None;
        }
        // Padding leaves are all zero, as the tree's are.
        levels[..leaves.len()].copy_from_slice(leaves);
        levels[leaves.len()..1 << height].fill([0; HASH_LEN]);
        for k in 0..height {
            let (at, n) = (level_start(height, k), 1usize << (height - k));
            let (lower, upper) = levels.split_at_mut(at + n);
            scheme.nodes(&lower[at..], &mut upper[..n / 2]);
        }
        Some(levels[level_start(height, height)])
    }

    /// Puts subtree `(height, pos)`, checked, into the tree whole.
    fn place_subtree<M: MerkleScheme + ?Sized>(
        &mut self,
        scheme: &M,
        height: usize,
        pos: u32,
        root: Hash,
    ) {
        let known = (self.vouch && !self.vouched.is_empty()).then_some(&self.vouched);
        let top = self.tree.insert_at(scheme, height, pos, root, known);
        if self.vouch && !self.vouched.is_empty() {
            for h in height..=top {
                self.vouched.remove(&(h as u8, pos >> (h - height)));
            }
        }
    }

    /// Accepts chunk `idx` (each index at most once, `idx` below the count) with
    /// `leaf`: folds it into the tree and forgets what its completed subtrees
    /// no longer need.
    pub fn insert<M: MerkleScheme + ?Sized>(&mut self, scheme: &M, idx: u32, leaf: Hash) {
        if idx >= self.count {
            return;
        }
        let known = (self.vouch && !self.vouched.is_empty()).then_some(&self.vouched);
        let top = self.tree.insert(scheme, idx, leaf, known);
        if self.vouch && !self.vouched.is_empty() {
            for h in 0..=top {
                self.vouched.remove(&(h as u8, idx >> h));
            }
        }
    }

    /// Checks `leaf`, of chunk `idx` not accepted yet and without a proof of its own
    /// (an FEC-rebuilt chunk, spec §8.11): `Some(true)` if the verified hashes around
    /// it lead to a true hash it matches, `Some(false)` if they contradict it, `None`
    /// if they cannot tell.
    pub fn check_leaf<M: MerkleScheme + ?Sized>(
        &self,
        scheme: &M,
        idx: u32,
        leaf: Hash,
    ) -> Option<bool> {
        if idx >= self.count {
            return Some(false);
        }
        self.tree
            .check_leaf(scheme, idx, leaf, &self.vouched, &self.root)
    }

    /// Judges chunk `idx`, handed out unverified, by its `proof`, or (a rebuilt chunk,
    /// `None`) by what verified proofs vouch for, and inserts its leaf if it passes.
    /// `None`: a rebuilt chunk nothing vouches for yet (a later proof may).
    pub fn judge<M: MerkleScheme + ?Sized>(
        &mut self,
        scheme: &M,
        idx: u32,
        leaf: Hash,
        proof: Option<&[u8]>,
    ) -> Option<Verdict> {
        let passed = match proof {
            Some(p) => self.check_proof(scheme, idx, &leaf, p),
            None => self.check_leaf(scheme, idx, leaf)?,
        };
        if !passed {
            return Some(Verdict::Failed);
        }
        self.insert(scheme, idx, leaf);
        Some(Verdict::Verified)
    }

    /// The root over the leaves inserted, once every chunk is in.
    pub fn root(&self) -> Option<Hash> {
        self.tree.root()
    }

    /// Hashes held: nodes waiting for a sibling and true hashes kept from proofs.
    pub fn held(&self) -> usize {
        self.tree.pending.len() + self.vouched.len()
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
            t.insert(&TestingHash, i, l[i as usize], None);
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
            t.insert(&TestingHash, i, l[i as usize], None);
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
            t.insert(&TestingHash, i, l[i as usize], None);
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

    /// [`TestingHash`], counting node hashes.
    #[derive(Default)]
    struct Counting(std::sync::atomic::AtomicU64);

    impl MerkleScheme for Counting {
        fn id(&self) -> crate::merkle::HashId {
            TestingHash.id()
        }
        fn leaf(&self, chunk: &[u8]) -> Hash {
            TestingHash.leaf(chunk)
        }
        fn node(&self, left: &Hash, right: &Hash) -> Hash {
            self.0.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
            TestingHash.node(left, right)
        }
    }

    fn proof_of(tree: &crate::merkle::MerkleTree, i: u32) -> Vec<u8> {
        let mut p = vec![0u8; tree.depth() * HASH_LEN];
        tree.write_proof(i, &mut p);
        p
    }

    /// Checks and accepts chunks in `order`, every proof honest; returns the
    /// checker and the node hashes spent.
    fn check_all(n: u32, order: &[u32]) -> (ProofChecker, u64) {
        let l = leaves(n);
        let tree = crate::merkle::MerkleTree::from_leaves(&TestingHash, l.clone());
        let scheme = Counting::default();
        let mut c = ProofChecker::new(&scheme, n, tree.root(), true);
        let before = scheme.0.load(std::sync::atomic::Ordering::Relaxed);
        for &i in order {
            assert!(
                c.check_proof(&scheme, i, &l[i as usize], &proof_of(&tree, i)),
                "{i}"
            );
            c.insert(&scheme, i, l[i as usize]);
        }
        let spent = scheme.0.load(std::sync::atomic::Ordering::Relaxed) - before;
        assert_eq!(c.root(), Some(tree.root()));
        (c, spent)
    }

    #[test]
    fn checking_in_order_costs_about_one_node_hash_a_chunk() {
        let n = 1 << 14;
        let order: Vec<u32> = (0..n).collect();
        let (c, spent) = check_all(n, &order);
        // Building the tree alone takes n - 1; checking each proof on top of that
        // would double it. Nodes a proof showed are taken, not hashed again.
        assert!(
            spent < u64::from(n) * 11 / 10,
            "{spent} node hashes for {n} chunks"
        );
        assert_eq!(c.held(), 0);
    }

    #[test]
    fn any_order_checks_and_folds_to_the_root() {
        for n in [1u32, 2, 3, 7, 64, 100, 1000] {
            let p = n.next_power_of_two();
            let scrambled: Vec<u32> = (0..p)
                .map(|i| i.wrapping_mul(2_654_435_761) % p)
                .filter(|&i| i < n)
                .collect();
            check_all(n, &scrambled);
            check_all(n, &(0..n).rev().collect::<Vec<_>>());
        }
    }

    #[test]
    fn a_wrong_leaf_or_sibling_fails_wherever_the_fold_stops() {
        let n = 100;
        let l = leaves(n);
        let tree = crate::merkle::MerkleTree::from_leaves(&TestingHash, l.clone());
        let mut c = ProofChecker::new(&TestingHash, n, tree.root(), true);
        for i in 0..50 {
            assert!(c.check_proof(&TestingHash, i, &l[i as usize], &proof_of(&tree, i)));
            c.insert(&TestingHash, i, l[i as usize]);
        }
        // Chunks 0-49 in: later folds stop at hashes their proofs vouched for. A
        // wrong leaf fails there, as does a doctored or cut proof.
        let good = proof_of(&tree, 51);
        assert!(!c.check_proof(&TestingHash, 51, &l[52], &good));
        let mut bad = good.clone();
        bad[HASH_LEN * 3] ^= 1;
        assert!(!c.check_proof(&TestingHash, 60, &l[60], &bad));
        assert!(!c.check_proof(&TestingHash, 51, &l[51], &good[..HASH_LEN]));
        assert!(!c.check_proof(&TestingHash, n, &l[0], &good));
        assert!(c.check_proof(&TestingHash, 51, &l[51], &good));
        // A rebuilt chunk is judged by what verified proofs vouch for: chunk 50's
        // leaf was a sibling in chunk 51's proof; nothing vouches near chunk 90.
        assert_eq!(c.check_leaf(&TestingHash, 50, l[50]), Some(true));
        assert_eq!(c.check_leaf(&TestingHash, 50, l[7]), Some(false));
        assert_eq!(c.check_leaf(&TestingHash, 90, l[90]), None);
    }

    #[test]
    fn whole_subtrees_judged_at_once_fold_to_the_same_root() {
        for n in [64u32, 100, 128, 1000, 4096] {
            let l = leaves(n);
            let tree = crate::merkle::MerkleTree::from_leaves(&TestingHash, l.clone());
            let mut c = ProofChecker::new(&TestingHash, n, tree.root(), true);
            // Every other aligned run of 64 whole, the rest one by one, in order.
            let mut i = 0;
            while i < n {
                let whole = (i / 64) % 2 == 0;
                if whole
                    && c.judge_subtree(
                        &TestingHash,
                        6,
                        i / 64,
                        &l[i as usize..(i + 64).min(n) as usize],
                        &proof_of(&tree, i),
                    )
                {
                    i += 64;
                    continue;
                }
                // Every run is taken whole, the last one too (padded).
                assert!(!whole, "run at {i} of {n}");
                assert_eq!(
                    c.judge(&TestingHash, i, l[i as usize], Some(&proof_of(&tree, i))),
                    Some(Verdict::Verified)
                );
                i += 1;
            }
            assert_eq!(c.root(), Some(tree.root()), "{n}");
            assert_eq!(c.held(), 0);
        }
    }

    #[test]
    fn a_subtree_with_one_wrong_leaf_is_refused_and_changes_nothing() {
        let n = 256;
        let l = leaves(n);
        let tree = crate::merkle::MerkleTree::from_leaves(&TestingHash, l.clone());
        let mut c = ProofChecker::new(&TestingHash, n, tree.root(), true);
        assert!(c.judge_subtree(&TestingHash, 6, 0, &l[..64], &proof_of(&tree, 0)));
        let mut bad = l[64..128].to_vec();
        bad[17] = l[3];
        let held = c.held();
        assert!(!c.judge_subtree(&TestingHash, 6, 1, &bad, &proof_of(&tree, 64)));
        assert_eq!(c.held(), held);
        // A wrong count, height or proof is refused too.
        assert!(!c.judge_subtree(&TestingHash, 6, 1, &l[64..127], &proof_of(&tree, 64)));
        assert!(!c.judge_subtree(&TestingHash, 7, 0, &l[..128], &proof_of(&tree, 0)));
        assert!(!c.judge_subtree(&TestingHash, 6, 1, &l[64..128], &proof_of(&tree, 0)[32..]));
        // One by one, the wrong leaf fails and the others pass.
        for i in 64..128u32 {
            let leaf = bad[(i - 64) as usize];
            let v = c.judge(&TestingHash, i, leaf, Some(&proof_of(&tree, i)));
            assert_eq!(v == Some(Verdict::Verified), i != 81, "{i}");
            if i == 81 {
                assert_eq!(
                    c.judge(&TestingHash, i, l[81], Some(&proof_of(&tree, i))),
                    Some(Verdict::Verified)
                );
            }
        }
        assert!(c.judge_subtree(&TestingHash, 6, 3, &l[192..256], &proof_of(&tree, 200)));
        assert!(c.judge_subtree(&TestingHash, 6, 2, &l[128..192], &proof_of(&tree, 130)));
        assert_eq!(c.root(), Some(tree.root()));
        assert_eq!(c.held(), 0);
    }
}
