//! Merkle hash schemes behind [`rgtp_proto::MerkleScheme`].
//!
//! Every scheme is a 256-bit hash with domain separation (upstream §4.4):
//! leaf = H(0x00 ‖ chunk), node = H(0x01 ‖ left ‖ right). BLAKE2b-256 is
//! BLAKE2b with a 32-byte digest length parameter (not a truncated
//! BLAKE2b-512), SHA-256 is FIPS 180-4, and BLAKE3 is the default
//! (unkeyed) BLAKE3 hash with 32 bytes of output. `spec/vectors/merkle.txt`
//! pins all three down.

use core::fmt;
use core::marker::PhantomData;

use digest::consts::U32;
use digest::Digest;
use rgtp_proto::merkle::{HashId, MerkleScheme};
/// A 256-bit hash (the wire's `Hash`).
type Hash = [u8; 32];

/// Domain-separation prefix of a leaf hash.
const LEAF_PREFIX: [u8; 1] = [0x00];
/// Domain-separation prefix of an interior node hash.
const NODE_PREFIX: [u8; 1] = [0x01];

/// A `digest` hash RGTP can use: 256-bit output.
pub trait RgtpDigest: Digest<OutputSize = U32> + Sized + 'static {
    /// The identifier carried in Manifest flags and tickets.
    const ID: HashId;

    /// `H(prefix ‖ body)` of each of `bodies`, into `out` (as long). A hash with a
    /// multi-message kernel overrides this; by default one message at a time.
    fn hash_prefixed(prefix: &[u8], bodies: &[&[u8]], out: &mut [Hash]) {
        for (o, b) in out.iter_mut().zip(bodies) {
            *o = Self::new()
                .chain_update(prefix)
                .chain_update(b)
                .finalize()
                .into();
        }
    }

    /// `H(prefix ‖ left ‖ right)` of each pair, into `out` (as long as both).
    fn hash_pairs(prefix: &[u8], left: &[&[u8]], right: &[&[u8]], out: &mut [Hash]) {
        for ((o, l), r) in out.iter_mut().zip(left).zip(right) {
            *o = Self::new()
                .chain_update(prefix)
                .chain_update(l)
                .chain_update(r)
                .finalize()
                .into();
        }
    }
}

/// BLAKE2b-256 many messages at a time: `blake2b_simd` runs one message per
/// 64-bit SIMD lane (four with AVX2), where one message alone gets little from
/// SIMD. One by one (`leaf`, `node`) it stays on RustCrypto's `blake2`, which
/// `tests/merkle_props.rs` checks the batches against.
#[cfg(feature = "hash-blake2b")]
impl RgtpDigest for blake2::Blake2b<U32> {
    const ID: HashId = HashId::Blake2b256;

    fn hash_prefixed(prefix: &[u8], bodies: &[&[u8]], out: &mut [Hash]) {
        blake2b_many::prefixed(prefix, bodies, out);
    }

    fn hash_pairs(prefix: &[u8], left: &[&[u8]], right: &[&[u8]], out: &mut [Hash]) {
        blake2b_many::pairs(prefix, left, right, out);
    }
}

#[cfg(feature = "hash-blake2b")]
mod blake2b_many {
    use super::Hash;
    use blake2b_simd::many::{hash_many, HashManyJob};
    use blake2b_simd::Params;

    /// Messages hashed together: enough to keep every lane busy.
    const GROUP: usize = 16;
    /// Bytes of the stack buffer messages are gathered in.
    const GATHER: usize = 32 << 10;

    /// `H(prefix ‖ body)` for each body.
    pub(super) fn prefixed(prefix: &[u8], bodies: &[&[u8]], out: &mut [Hash]) {
        gathered(out, |k| [prefix, bodies[k], &[]]);
    }

    /// `H(prefix ‖ left ‖ right)` for each pair (the Merkle nodes).
    pub(super) fn pairs(prefix: &[u8], left: &[&[u8]], right: &[&[u8]], out: &mut [Hash]) {
        gathered(out, |k| [prefix, left[k], right[k]]);
    }

    /// The hash of each message `k` of `out.len()`, given as the parts `parts(k)`
    /// in order. The parts of each message are copied one after the other into a
    /// buffer on the stack, up to [`GROUP`] messages at a time, and hashed whole
    /// across the lanes, final blocks included: a message's first bytes (the
    /// prefix) need no block of their own. A message longer than the buffer is
    /// hashed alone.
    fn gathered<'a>(out: &mut [Hash], parts: impl Fn(usize) -> [&'a [u8]; 3]) {
        let mut params = Params::new();
        params.hash_length(32);
        let mut buf = [0u8; GATHER];
        let mut first = 0;
        while first < out.len() {
            let mut ends = [0usize; GROUP];
            let mut n = 0;
            let mut used = 0;
            while n < GROUP && first + n < out.len() {
                let message = parts(first + n);
                let len: usize = message.iter().map(|p| p.len()).sum();
                if used + len > GATHER {
                    break;
                }
                for part in message {
                    buf[used..used + part.len()].copy_from_slice(part);
                    used += part.len();
                }
                ends[n] = used;
                n += 1;
            }
            if n == 0 {
                let mut state = params.to_state();
                for part in parts(first) {
                    state.update(part);
                }
                out[first].copy_from_slice(state.finalize().as_bytes());
                first += 1;
                continue;
            }
            let mut jobs: [HashManyJob<'_>; GROUP] = core::array::from_fn(|k| {
                let start = if k == 0 { 0 } else { ends[k - 1] };
                HashManyJob::new(&params, &buf[start.min(ends[k])..ends[k]])
            });
            hash_many(jobs[..n].iter_mut());
            for (o, job) in out[first..first + n].iter_mut().zip(&jobs) {
                o.copy_from_slice(job.to_hash().as_bytes());
            }
            first += n;
        }
    }
}

/// SHA-256 many messages at a time: `tape-sha256` interleaves four messages on
/// the SHA extensions (or runs 8 or 16 SIMD lanes where those are faster): on
/// this project's benchmark machine 1,200-byte leaves go 1.5× (read from memory)
/// to 2× (in cache, `benches/benches/hash.rs`, `hash/leaves`) as fast as one by
/// one, and the 65-byte interior nodes 2.4×. Its output is checked against
/// `sha2` by `tests/merkle_props.rs`.
#[cfg(feature = "hash-sha256")]
impl RgtpDigest for sha2::Sha256 {
    const ID: HashId = HashId::Sha256;

    fn hash_prefixed(prefix: &[u8], bodies: &[&[u8]], out: &mut [Hash]) {
        tape_sha256::hash_many_prefixed(prefix, bodies, out);
    }

    fn hash_pairs(prefix: &[u8], left: &[&[u8]], right: &[&[u8]], out: &mut [Hash]) {
        tape_sha256::hash_pairs(prefix, left, right, out);
    }
}

/// A Merkle scheme over any [`RgtpDigest`]. Stateless: a fresh hasher per call.
pub struct DigestScheme<D> {
    _digest: PhantomData<fn() -> D>,
}

/// BLAKE2b-256 Merkle scheme; the upstream default.
#[cfg(feature = "hash-blake2b")]
pub type Blake2b256 = DigestScheme<blake2::Blake2b<U32>>;

/// SHA-256 Merkle scheme.
#[cfg(feature = "hash-sha256")]
pub type Sha256 = DigestScheme<sha2::Sha256>;

impl<D> DigestScheme<D> {
    /// The scheme (it holds no state).
    pub const fn new() -> Self {
        DigestScheme {
            _digest: PhantomData,
        }
    }
}

impl<D> Default for DigestScheme<D> {
    fn default() -> Self {
        Self::new()
    }
}

impl<D> Clone for DigestScheme<D> {
    fn clone(&self) -> Self {
        *self
    }
}

impl<D> Copy for DigestScheme<D> {}

impl<D: RgtpDigest> fmt::Debug for DigestScheme<D> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "DigestScheme({})", D::ID.name())
    }
}

impl<D: RgtpDigest> MerkleScheme for DigestScheme<D> {
    fn id(&self) -> HashId {
        D::ID
    }

    fn leaf(&self, chunk: &[u8]) -> Hash {
        D::new()
            .chain_update(LEAF_PREFIX)
            .chain_update(chunk)
            .finalize()
            .into()
    }

    fn node(&self, left: &Hash, right: &Hash) -> Hash {
        D::new()
            .chain_update(NODE_PREFIX)
            .chain_update(left)
            .chain_update(right)
            .finalize()
            .into()
    }

    fn leaves(&self, chunks: &[&[u8]], out: &mut [Hash]) {
        assert_eq!(chunks.len(), out.len(), "one leaf per chunk");
        D::hash_prefixed(&LEAF_PREFIX, chunks, out);
    }

    fn nodes(&self, children: &[Hash], out: &mut [Hash]) {
        assert_eq!(children.len(), 2 * out.len(), "one node per pair");
        // The pairs go in batches named on the stack: no allocation.
        const BATCH: usize = 64;
        let mut left: [&[u8]; BATCH] = [&[]; BATCH];
        let mut right: [&[u8]; BATCH] = [&[]; BATCH];
        for (pairs, out) in children.chunks(2 * BATCH).zip(out.chunks_mut(BATCH)) {
            for ((l, r), pair) in left
                .iter_mut()
                .zip(right.iter_mut())
                .zip(pairs.chunks_exact(2))
            {
                *l = &pair[0];
                *r = &pair[1];
            }
            let n = out.len();
            D::hash_pairs(&NODE_PREFIX, &left[..n], &right[..n], out);
        }
    }
}

/// BLAKE3 Merkle scheme (native `blake3` hasher, SIMD where available).
#[cfg(feature = "hash-blake3")]
#[derive(Debug, Clone, Copy, Default)]
pub struct Blake3;

#[cfg(feature = "hash-blake3")]
impl MerkleScheme for Blake3 {
    fn id(&self) -> HashId {
        HashId::Blake3
    }

    fn leaf(&self, chunk: &[u8]) -> Hash {
        let mut h = blake3::Hasher::new();
        h.update(&LEAF_PREFIX);
        h.update(chunk);
        h.finalize().into()
    }

    fn node(&self, left: &Hash, right: &Hash) -> Hash {
        let mut input = [0u8; 65];
        input[0] = NODE_PREFIX[0];
        input[1..33].copy_from_slice(left);
        input[33..].copy_from_slice(right);
        blake3::hash(&input).into()
    }
}

/// A scheme picked at run time from a Manifest, ticket or command line.
#[derive(Debug, Clone, Copy)]
pub enum AnyHash {
    /// BLAKE2b-256.
    #[cfg(feature = "hash-blake2b")]
    Blake2b256(Blake2b256),
    /// SHA-256.
    #[cfg(feature = "hash-sha256")]
    Sha256(Sha256),
    /// BLAKE3.
    #[cfg(feature = "hash-blake3")]
    Blake3(Blake3),
}

impl AnyHash {
    /// The scheme for `id`; `None` when it is left out of this build
    /// ([`Provider::check`](crate::features::Provider::check) says which feature brings it in).
    pub fn new(id: HashId) -> Option<AnyHash> {
        match id {
            #[cfg(feature = "hash-blake2b")]
            HashId::Blake2b256 => Some(AnyHash::Blake2b256(Blake2b256::new())),
            #[cfg(feature = "hash-sha256")]
            HashId::Sha256 => Some(AnyHash::Sha256(Sha256::new())),
            #[cfg(feature = "hash-blake3")]
            HashId::Blake3 => Some(AnyHash::Blake3(Blake3)),
            #[allow(unreachable_patterns)]
            _ => None,
        }
    }
}

// `match *self`, so that a build with no scheme at all (an empty enum) still compiles.
#[cfg_attr(
    not(any(
        feature = "hash-sha256",
        feature = "hash-blake2b",
        feature = "hash-blake3"
    )),
    allow(unused_variables)
)]
impl MerkleScheme for AnyHash {
    fn id(&self) -> HashId {
        match *self {
            #[cfg(feature = "hash-blake2b")]
            AnyHash::Blake2b256(s) => s.id(),
            #[cfg(feature = "hash-sha256")]
            AnyHash::Sha256(s) => s.id(),
            #[cfg(feature = "hash-blake3")]
            AnyHash::Blake3(s) => s.id(),
        }
    }

    fn leaf(&self, chunk: &[u8]) -> Hash {
        match *self {
            #[cfg(feature = "hash-blake2b")]
            AnyHash::Blake2b256(s) => s.leaf(chunk),
            #[cfg(feature = "hash-sha256")]
            AnyHash::Sha256(s) => s.leaf(chunk),
            #[cfg(feature = "hash-blake3")]
            AnyHash::Blake3(s) => s.leaf(chunk),
        }
    }

    fn node(&self, left: &Hash, right: &Hash) -> Hash {
        match *self {
            #[cfg(feature = "hash-blake2b")]
            AnyHash::Blake2b256(s) => s.node(left, right),
            #[cfg(feature = "hash-sha256")]
            AnyHash::Sha256(s) => s.node(left, right),
            #[cfg(feature = "hash-blake3")]
            AnyHash::Blake3(s) => s.node(left, right),
        }
    }

    fn leaves(&self, chunks: &[&[u8]], out: &mut [Hash]) {
        match *self {
            #[cfg(feature = "hash-blake2b")]
            AnyHash::Blake2b256(s) => s.leaves(chunks, out),
            #[cfg(feature = "hash-sha256")]
            AnyHash::Sha256(s) => s.leaves(chunks, out),
            #[cfg(feature = "hash-blake3")]
            AnyHash::Blake3(s) => s.leaves(chunks, out),
        }
    }

    fn nodes(&self, children: &[Hash], out: &mut [Hash]) {
        match *self {
            #[cfg(feature = "hash-blake2b")]
            AnyHash::Blake2b256(s) => s.nodes(children, out),
            #[cfg(feature = "hash-sha256")]
            AnyHash::Sha256(s) => s.nodes(children, out),
            #[cfg(feature = "hash-blake3")]
            AnyHash::Blake3(s) => s.nodes(children, out),
        }
    }
}
