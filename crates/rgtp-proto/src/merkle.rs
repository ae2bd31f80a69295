//! The Merkle layer: a hash scheme and the binary tree built with it.
//!
//! Leaf = H(0x00 ‖ plaintext chunk); node = H(0x01 ‖ left ‖ right). The leaf
//! level is padded to a power of two with all-zero 32-byte hashes, and proofs
//! list sibling hashes from the leaf up to the root (spec §6.4). A one-chunk
//! exposure has proof depth 0 and its root is its leaf hash. An empty exposure
//! (zero chunks) has the leaf hash of the empty string as its root.
//!
//! Guarantees of this module:
//! - [`MerkleTree`], [`root_of`] and [`MerkleRootBuilder`] compute the same
//!   root for the same leaves, and that root is the root of the padded tree
//!   described above. Subtrees made only of padding are hashed once per level,
//!   never per node, so building costs `chunk_count - 1 + O(log chunk_count)`
//!   node hashes.
//! - [`verify_proof`] folds siblings as upstream §4.4 does (bit 0 of the index
//!   clear: the running hash is the left child), rejects a proof whose length is
//!   not [`proof_depth`]`(chunk_count)` or whose index is not below
//!   `chunk_count`, and compares roots in constant time.
//! - Nothing here allocates per node: a tree allocates one vector per level and
//!   the streaming root needs no heap at all.

use rgtp_wire::Hash;
use subtle::ConstantTimeEq;

/// Which hash a scheme uses; this is what the Manifest flags and tickets carry.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum HashId {
    /// BLAKE2b with 256-bit output; the upstream default.
    Blake2b256,
    /// SHA-256.
    Sha256,
    /// BLAKE3 (256-bit output).
    Blake3,
}

impl HashId {
    /// Name used on the command line and in tickets.
    pub fn name(self) -> &'static str {
        match self {
            HashId::Blake2b256 => "blake2b-256",
            HashId::Sha256 => "sha256",
            HashId::Blake3 => "blake3",
        }
    }

    /// Parses [`HashId::name`].
    pub fn from_name(s: &str) -> Option<Self> {
        match s {
            "blake2b-256" | "blake2b" | "blake2" => Some(HashId::Blake2b256),
            "sha256" | "sha-256" => Some(HashId::Sha256),
            "blake3" => Some(HashId::Blake3),
            _ => None,
        }
    }
}

/// A domain-separated 256-bit hash for Merkle trees.
pub trait MerkleScheme: Send + Sync + 'static {
    /// Which hash this is.
    fn id(&self) -> HashId;
    /// H(0x00 ‖ chunk).
    fn leaf(&self, chunk: &[u8]) -> Hash;
    /// H(0x01 ‖ left ‖ right).
    fn node(&self, left: &Hash, right: &Hash) -> Hash;
    /// [`leaf`](Self::leaf) of each of `chunks`, into `out` (as long as `chunks`).
    ///
    /// Hashes that can compress several independent messages at once (one per
    /// SIMD lane, or interleaved on a hash unit) do it here; the result is always
    /// what `leaf` gives one by one, which is all the default does.
    fn leaves(&self, chunks: &[&[u8]], out: &mut [Hash]) {
        assert_eq!(chunks.len(), out.len(), "one leaf per chunk");
        for (o, c) in out.iter_mut().zip(chunks) {
            *o = self.leaf(c);
        }
    }
    /// [`node`](Self::node) of each pair of consecutive `children` (an even
    /// number of them), into `out` (half as long); batched as [`leaves`](Self::leaves) is.
    fn nodes(&self, children: &[Hash], out: &mut [Hash]) {
        assert_eq!(children.len(), 2 * out.len(), "one node per pair");
        for (o, pair) in out.iter_mut().zip(children.chunks_exact(2)) {
            *o = self.node(&pair[0], &pair[1]);
        }
    }
}

/// Every leaf of `data` cut into `chunk_size` chunks (the last one may be short),
/// into `out` (one per chunk), through [`MerkleScheme::leaves`] a batch at a time.
pub fn leaves_of<M: MerkleScheme + ?Sized>(
    scheme: &M,
    data: &[u8],
    chunk_size: usize,
    out: &mut [Hash],
) {
    const BATCH: usize = 64;
    assert_eq!(
        out.len(),
        data.len().div_ceil(chunk_size.max(1)),
        "one leaf per chunk"
    );
    let mut bodies: [&[u8]; BATCH] = [&[]; BATCH];
    for (plain, leaves) in data
        .chunks(chunk_size.max(1).saturating_mul(BATCH))
        .zip(out.chunks_mut(BATCH))
    {
        for (b, c) in bodies.iter_mut().zip(plain.chunks(chunk_size.max(1))) {
            *b = c;
        }
        scheme.leaves(&bodies[..leaves.len()], leaves);
    }
}

impl<T: MerkleScheme + ?Sized> MerkleScheme for Box<T> {
    fn id(&self) -> HashId {
        (**self).id()
    }
    fn leaf(&self, chunk: &[u8]) -> Hash {
        (**self).leaf(chunk)
    }
    fn node(&self, left: &Hash, right: &Hash) -> Hash {
        (**self).node(left, right)
    }
    fn leaves(&self, chunks: &[&[u8]], out: &mut [Hash]) {
        (**self).leaves(chunks, out)
    }
    fn nodes(&self, children: &[Hash], out: &mut [Hash]) {
        (**self).nodes(children, out)
    }
}

/// Proof depth for `chunk_count` chunks: ceil(log2(chunk_count)), 0 for 0 or 1.
pub fn proof_depth(chunk_count: u32) -> usize {
    depth_for(u64::from(chunk_count))
}

/// ceil(log2(n)), 0 for 0 or 1.
fn depth_for(n: u64) -> usize {
    if n <= 1 {
        0
    } else {
        (u64::BITS - (n - 1).leading_zeros()) as usize
    }
}

/// The hash standing in for a missing leaf.
const ZERO_HASH: Hash = [0u8; 32];

/// A complete tree: every level kept, so any proof can be read off.
///
/// Only nodes that cover at least one real leaf are stored; a node whose
/// subtree is all padding is the same at every position of its level, so one
/// hash per level (`pads`) stands in for all of them.
#[derive(Debug, Clone)]
pub struct MerkleTree {
    /// `levels[0]` holds the real leaves, `levels[h]` the real nodes of height
    /// `h`, and the last level the root alone. An empty tree stores its root
    /// (the leaf hash of the empty string) as the only level.
    levels: Vec<Vec<Hash>>,
    /// `pads[h]`: the hash of an all-padding subtree of height `h`, for `h < depth`.
    pads: Vec<Hash>,
    /// Number of real leaves.
    leaf_count: u32,
}

impl MerkleTree {
    /// Builds the tree over leaf hashes (unpadded; padding happens here).
    ///
    /// # Panics
    /// If there are more than `u32::MAX` leaves.
    pub fn from_leaves<M: MerkleScheme + ?Sized>(scheme: &M, leaves: Vec<Hash>) -> Self {
        Self::from_leaves_with(scheme, leaves, &|below, pad, out| {
            fill_level(scheme, below, pad, out)
        })
    }

    /// As [`MerkleTree::from_leaves`], each level above the leaves computed by `level`
    /// from the one below (`level(below, pad, out)` must do what [`fill_level`] does:
    /// a caller may run it over disjoint parts at once).
    ///
    /// # Panics
    /// If there are more than `u32::MAX` leaves.
    pub fn from_leaves_with<M: MerkleScheme + ?Sized>(
        scheme: &M,
        leaves: Vec<Hash>,
        level: &LevelFn<'_>,
    ) -> Self {
        let leaf_count = u32::try_from(leaves.len()).expect("at most u32::MAX chunks");
        if leaves.is_empty() {
            return MerkleTree {
                levels: vec![vec![scheme.leaf(&[])]],
                pads: Vec::new(),
                leaf_count,
            };
        }
        let depth = proof_depth(leaf_count);
        let mut pads = Vec::with_capacity(depth);
        let mut pad = ZERO_HASH;
        for h in 0..depth {
            if h > 0 {
                pad = scheme.node(&pad, &pad);
            }
            pads.push(pad);
        }
        let mut levels = Vec::with_capacity(depth + 1);
        levels.push(leaves);
        for pad in &pads {
            let below: &Vec<Hash> = levels.last().expect("at least the leaf level");
            let mut above = vec![ZERO_HASH; below.len().div_ceil(2)];
            level(below, pad, &mut above);
            levels.push(above);
        }
        MerkleTree {
            levels,
            pads,
            leaf_count,
        }
    }

    /// The root.
    pub fn root(&self) -> Hash {
        self.levels.last().expect("a tree has at least one level")[0]
    }

    /// Number of real (unpadded) leaves.
    pub fn leaf_count(&self) -> u32 {
        self.leaf_count
    }

    /// Proof depth (siblings per proof).
    pub fn depth(&self) -> usize {
        self.pads.len()
    }

    /// The real (unpadded) leaf hashes.
    pub fn leaves(&self) -> &[Hash] {
        &self.levels[0][..self.leaf_count as usize]
    }

    /// The node at `height` (0 = leaves) and `position` in its level: a stored real
    /// node, or the padding hash of that height past the real ones. `height` is at
    /// most [`MerkleTree::depth`]; at the depth, position 0 is the root.
    ///
    /// # Panics
    /// If `height > depth()`.
    pub fn node(&self, height: usize, position: u32) -> &Hash {
        match self.levels[height].get(position as usize) {
            Some(h) => h,
            None => &self.pads[height],
        }
    }

    /// Replaces leaf `index` and rehashes its path to the root (depth node hashes).
    ///
    /// # Panics
    /// If `index >= leaf_count()`.
    pub fn replace_leaf<M: MerkleScheme + ?Sized>(&mut self, scheme: &M, index: u32, leaf: Hash) {
        assert!(index < self.leaf_count, "leaf {index} out of range");
        let mut pos = index as usize;
        self.levels[0][pos] = leaf;
        for h in 0..self.depth() {
            let sibling = *self.node(h, (pos ^ 1) as u32);
            let here = self.levels[h][pos];
            let parent = if pos & 1 == 0 {
                scheme.node(&here, &sibling)
            } else {
                scheme.node(&sibling, &here)
            };
            pos >>= 1;
            self.levels[h + 1][pos] = parent;
        }
    }

    /// The proof for `index`: sibling hashes from the leaf up to the root.
    ///
    /// # Panics
    /// If `index >= leaf_count()`.
    pub fn siblings(&self, index: u32) -> impl ExactSizeIterator<Item = &Hash> + '_ {
        assert!(
            index < self.leaf_count,
            "proof index {index} out of range for {} chunks",
            self.leaf_count
        );
        (0..self.depth()).map(move |h| {
            let sibling = (index as usize >> h) ^ 1;
            self.levels[h].get(sibling).unwrap_or(&self.pads[h])
        })
    }

    /// Writes the proof for `index` (leaf→root, 32 bytes per sibling) into `out`,
    /// which must be exactly `32 * depth()` bytes.
    ///
    /// # Panics
    /// If `index >= leaf_count()` or `out` has the wrong length.
    pub fn write_proof(&self, index: u32, out: &mut [u8]) {
        assert_eq!(
            out.len(),
            32 * self.depth(),
            "proof buffer must be 32 * depth bytes"
        );
        for (slot, sibling) in out.chunks_exact_mut(32).zip(self.siblings(index)) {
            slot.copy_from_slice(sibling);
        }
    }
}

/// Root over unpadded leaf hashes without keeping the levels (pullers use this).
///
/// What [`MerkleTree::from_leaves_with`] calls to hash a level: (below, pad, out).
pub type LevelFn<'a> = dyn Fn(&[Hash], &Hash, &mut [Hash]) + 'a;

/// One level of a tree from the level below: `out[j]` is the node over `below[2j]`
/// and `below[2j + 1]`, or over `below[2j]` and `pad` where `below` ends first.
/// `out` must hold `below.len().div_ceil(2)` hashes; disjoint parts of a level may be
/// filled at once (`out[a..b]` from `below[2a..2b]`, clipped to its end).
///
/// # Panics
/// If `out` has the wrong length.
pub fn fill_level<M: MerkleScheme + ?Sized>(
    scheme: &M,
    below: &[Hash],
    pad: &Hash,
    out: &mut [Hash],
) {
    assert_eq!(out.len(), below.len().div_ceil(2), "one node per pair");
    let pairs = below.len() / 2;
    scheme.nodes(&below[..2 * pairs], &mut out[..pairs]);
    if let ([left], [last]) = (&below[2 * pairs..], &mut out[pairs..]) {
        *last = scheme.node(left, pad);
    }
}

/// Same result as [`MerkleTree::from_leaves`]`(..).root()`, with no allocation.
pub fn root_of<M: MerkleScheme + ?Sized>(scheme: &M, leaves: &[Hash]) -> Hash {
    let mut builder = MerkleRootBuilder::new();
    builder.push_many(scheme, leaves);
    builder.finish(scheme)
}

/// Computes a Merkle root from leaves pushed one at a time, in order, keeping
/// only O(log n) hashes (one per set bit of the leaf count) and never allocating.
///
/// Leaves wait in a run of 64 until it is whole, which is then hashed a level
/// at a time through [`MerkleScheme::nodes`] (several nodes at once where the
/// scheme can), however the leaves were split between calls; only the nodes above
/// the runs, and those of the last, partial run at [`finish`](Self::finish), are
/// hashed one at a time.
///
/// The same `scheme` must be passed to every call.
#[derive(Debug, Clone)]
pub struct MerkleRootBuilder {
    /// Roots of complete subtrees, largest first; their heights are the set
    /// bits of `count`, highest first.
    stack: [Hash; 64],
    /// Number of leaves merged into `stack`: a whole number of runs.
    count: u64,
    /// Leaves pushed since the last whole run, waiting for the rest of theirs.
    run: [Hash; RUN],
    /// How many of `run` are pushed.
    run_len: usize,
}

/// Leaves in one run of [`MerkleRootBuilder`]: a complete subtree of height
/// `RUN_HEIGHT`.
const RUN_HEIGHT: u32 = 6;
const RUN: usize = 1 << RUN_HEIGHT;

impl Default for MerkleRootBuilder {
    fn default() -> Self {
        Self::new()
    }
}

impl MerkleRootBuilder {
    /// An empty builder.
    pub fn new() -> Self {
        MerkleRootBuilder {
            stack: [ZERO_HASH; 64],
            count: 0,
            run: [ZERO_HASH; RUN],
            run_len: 0,
        }
    }

    /// Number of leaves pushed so far.
    pub fn leaf_count(&self) -> u64 {
        self.count + self.run_len as u64
    }

    /// Appends the next leaf hash.
    pub fn push<M: MerkleScheme + ?Sized>(&mut self, scheme: &M, leaf: &Hash) {
        self.push_many(scheme, core::slice::from_ref(leaf));
    }

    /// Appends the next leaf hashes, in order: the same as [`push`](Self::push)ing
    /// them one by one.
    pub fn push_many<M: MerkleScheme + ?Sized>(&mut self, scheme: &M, leaves: &[Hash]) {
        let mut rest = leaves;
        if self.run_len > 0 {
            let take = (RUN - self.run_len).min(rest.len());
            self.run[self.run_len..self.run_len + take].copy_from_slice(&rest[..take]);
            self.run_len += take;
            rest = &rest[take..];
            if self.run_len < RUN {
                return;
            }
            let run = self.run;
            self.merge_run(scheme, &run);
            self.run_len = 0;
        }
        let mut runs = rest.chunks_exact(RUN);
        for run in &mut runs {
            self.merge_run(scheme, run.try_into().expect("chunks of RUN"));
        }
        let tail = runs.remainder();
        self.run[..tail.len()].copy_from_slice(tail);
        self.run_len = tail.len();
    }

    /// Merges a whole run, whose subtree is hashed a level at a time.
    fn merge_run<M: MerkleScheme + ?Sized>(&mut self, scheme: &M, run: &[Hash; RUN]) {
        let mut level = *run;
        let mut above = [ZERO_HASH; RUN / 2];
        let mut width = RUN;
        while width > 1 {
            scheme.nodes(&level[..width], &mut above[..width / 2]);
            level[..width / 2].copy_from_slice(&above[..width / 2]);
            width /= 2;
        }
        self.merge(scheme, level[0], RUN_HEIGHT);
    }

    /// Merges the root of a complete subtree of `height` (0: a leaf) at a count
    /// that is a multiple of its size (every count, for a leaf): it merges as a
    /// leaf does, `height` levels up the count.
    fn merge<M: MerkleScheme + ?Sized>(&mut self, scheme: &M, root: Hash, height: u32) {
        let mut len = self.count.count_ones() as usize;
        let mut hash = root;
        // Every trailing one bit of the count at this height is a complete
        // subtree of the same height as `hash` sitting just left of it: merge.
        for _ in 0..(self.count >> height).trailing_ones() {
            len -= 1;
            hash = scheme.node(&self.stack[len], &hash);
        }
        self.stack[len] = hash;
        self.count += 1 << height;
    }

    /// The root of the tree over all pushed leaves (padded as [`MerkleTree`] pads).
    pub fn finish<M: MerkleScheme + ?Sized>(mut self, scheme: &M) -> Hash {
        let run = self.run;
        for leaf in &run[..self.run_len] {
            self.merge(scheme, *leaf, 0);
        }
        let n = self.count;
        if n == 0 {
            return scheme.leaf(&[]);
        }
        let depth = depth_for(n);
        let mut len = n.count_ones() as usize;
        // The smallest complete subtree is the rightmost; carry it up to the
        // root. At each height, a set bit of `n` means a complete subtree sits
        // just left of the carry; otherwise the carry's right sibling is padding.
        let lowest = n.trailing_zeros() as usize;
        len -= 1;
        let mut carry = self.stack[len];
        if lowest == depth {
            // A power of two: the single complete subtree is the whole tree.
            return carry;
        }
        let mut pad = ZERO_HASH;
        for h in 0..depth {
            if h > lowest && (n >> h) & 1 == 1 {
                len -= 1;
                carry = scheme.node(&self.stack[len], &carry);
            } else if h >= lowest {
                carry = scheme.node(&carry, &pad);
            }
            if h + 1 < depth {
                pad = scheme.node(&pad, &pad);
            }
        }
        debug_assert_eq!(len, 0);
        carry
    }
}

/// Checks a proof: folds `siblings` (leaf→root) into `leaf` by the bits of `index`
/// and compares with `root` in constant time. A proof of the wrong depth for
/// `chunk_count` fails.
pub fn verify_proof<'a, M: MerkleScheme + ?Sized>(
    scheme: &M,
    leaf: &Hash,
    index: u32,
    chunk_count: u32,
    siblings: impl ExactSizeIterator<Item = &'a Hash>,
    root: &Hash,
) -> bool {
    let depth = proof_depth(chunk_count);
    if index >= chunk_count || siblings.len() != depth {
        return false;
    }
    let mut hash = *leaf;
    let mut position = index;
    let mut folded = 0usize;
    for sibling in siblings {
        hash = if position & 1 == 0 {
            scheme.node(&hash, sibling)
        } else {
            scheme.node(sibling, &hash)
        };
        position >>= 1;
        folded += 1;
    }
    // Do not trust `len()` alone: an iterator that lied about its length
    // must not pass.
    if folded != depth {
        return false;
    }
    hash.ct_eq(root).into()
}

/// A Merkle scheme for tests and fuzzing: BLAKE2b-256 with the domain separation
/// of spec §6.4, built on the `blake2` crate the core already uses for tokens, so
/// that the core can test itself with no provider crate.
///
/// Real code takes its schemes from `rgtp-providers`; this one is only compiled for
/// this crate's tests and under the `testing` feature.
#[cfg(any(test, feature = "testing"))]
#[derive(Debug, Clone, Copy, Default)]
pub struct TestingHash;

#[cfg(any(test, feature = "testing"))]
impl TestingHash {
    fn digest(prefix: u8, parts: &[&[u8]]) -> Hash {
        use blake2::digest::consts::U32;
        use blake2::digest::Digest;
        let mut h = blake2::Blake2b::<U32>::new();
        h.update([prefix]);
        for part in parts {
            h.update(part);
        }
        h.finalize().into()
    }
}

#[cfg(any(test, feature = "testing"))]
impl MerkleScheme for TestingHash {
    fn id(&self) -> HashId {
        HashId::Blake2b256
    }
    fn leaf(&self, chunk: &[u8]) -> Hash {
        Self::digest(0x00, &[chunk])
    }
    fn node(&self, left: &Hash, right: &Hash) -> Hash {
        Self::digest(0x01, &[left, right])
    }
}

#[cfg(test)]
mod tests;
