//! The Merkle layer: a hash scheme and the binary tree built with it.
//!
//! Leaf = H(0x00 ‖ plaintext chunk); node = H(0x01 ‖ left ‖ right). The leaf
//! level is padded to a power of two with all-zero 32-byte hashes, and proofs
//! list sibling hashes from the leaf up to the root (spec §6.4). A one-chunk
//! exposure has proof depth 0 and its root is its leaf hash. An empty exposure
//! (zero chunks) has the leaf hash of the empty string as its root.

use rgtp_wire::Hash;

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
}

/// Proof depth for `chunk_count` chunks: ceil(log2(chunk_count)), 0 for 0 or 1.
pub fn proof_depth(chunk_count: u32) -> usize {
    let _ = chunk_count;
    todo!("merkle proof_depth")
}

/// A complete tree: every level kept, so any proof can be read off.
#[derive(Debug, Clone)]
pub struct MerkleTree {
    // Private representation chosen by the implementation.
    levels: Vec<Vec<Hash>>,
}

impl MerkleTree {
    /// Builds the tree over leaf hashes (unpadded; padding happens here).
    pub fn from_leaves<M: MerkleScheme + ?Sized>(scheme: &M, leaves: Vec<Hash>) -> Self {
        let _ = (scheme, leaves);
        todo!("merkle from_leaves")
    }

    /// The root.
    pub fn root(&self) -> Hash {
        let _ = &self.levels;
        todo!("merkle root")
    }

    /// Number of real (unpadded) leaves.
    pub fn leaf_count(&self) -> u32 {
        todo!("merkle leaf_count")
    }

    /// Proof depth (siblings per proof).
    pub fn depth(&self) -> usize {
        todo!("merkle depth")
    }

    /// Writes the proof for `index` (leaf→root, 32 bytes per sibling) into `out`,
    /// which must be exactly `32 * depth()` bytes.
    ///
    /// # Panics
    /// If `index >= leaf_count()` or `out` has the wrong length.
    pub fn write_proof(&self, index: u32, out: &mut [u8]) {
        let _ = (index, out);
        todo!("merkle write_proof")
    }
}

/// Root over unpadded leaf hashes without keeping the levels (pullers use this).
pub fn root_of<M: MerkleScheme + ?Sized>(scheme: &M, leaves: &[Hash]) -> Hash {
    let _ = (scheme, leaves);
    todo!("merkle root_of")
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
    let _ = (scheme, leaf, index, chunk_count, siblings, root);
    todo!("merkle verify_proof")
}
