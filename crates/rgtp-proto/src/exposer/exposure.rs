//! The [`Exposure`]: an immutable dataset, sealed, Merkle-committed and
//! FEC-coded once at build time, and the packets its entries become.
//!
//! All cryptographic work happens in [`Exposure::build`]: every chunk is
//! sealed, the Merkle tree is built and FEC parity is computed. The store
//! holds each chunk as its ready Chunk_Data packet (header, ciphertext, tag),
//! so serving an entry is a table look-up and at most one copy ([`entry_len`],
//! [`emit_entry`]), and a run of consecutive chunks is one slice of the store
//! ([`Exposure::packets_range`]) a driver can send as it lies.

use rgtp_wire::{
    ChunkData, ChunkDataWithProof, ExposureId, FecParity, Hash, Manifest, ManifestFlags, Repr,
    HASH_LEN, NAK_PARITY_BIT,
};

use crate::crypto::{CipherId, CipherSuite, KeyMode, TAG_LEN};
use crate::fec::{FecCodec, FecError, FecParams, FecScheme};
use crate::merkle::{MerkleScheme, MerkleTree};
use crate::suite::{SuiteError, SuiteId};

/// Backing memory for an exposure's sealed chunks (a `Vec`, or an anonymous map for large
/// files), laid out in slots of [`slot_len`] bytes.
pub trait ChunkStore: Send + Sync + 'static {
    /// The bytes.
    fn bytes(&self) -> &[u8];
    /// The bytes, mutably (only during [`Exposure::build`]).
    fn bytes_mut(&mut self) -> &mut [u8];
}

impl ChunkStore for Vec<u8> {
    fn bytes(&self) -> &[u8] {
        self
    }
    fn bytes_mut(&mut self) -> &mut [u8] {
        self
    }
}

/// Why an exposure could not be built.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum BuildError {
    /// Chunk size 0, or larger than a packet can carry (with a proof, since any puller
    /// may ask for one).
    BadChunkSize,
    /// More chunks than 32-bit indices (or FEC block numbers) allow.
    TooManyChunks,
    /// The store handed in has the wrong length.
    StoreSize {
        /// Bytes needed.
        needed: usize,
        /// Bytes given.
        given: usize,
    },
    /// The suite cannot be signalled in a Manifest.
    Suite(SuiteError),
    /// The FEC codec failed.
    Fec(FecError),
    /// Sealing failed.
    Seal,
    /// [`Exposure::from_sealed`] was given a tree over another number of chunks.
    LeafCount {
        /// Leaves needed.
        needed: usize,
        /// Leaves given.
        given: usize,
    },
}

impl core::fmt::Display for BuildError {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        match self {
            BuildError::BadChunkSize => f.write_str(
                "chunk size must be at least 1 and small enough that a chunk with its Merkle proof fits a 65507-byte datagram",
            ),
            BuildError::TooManyChunks => f.write_str("too many chunks for 32-bit chunk indices"),
            BuildError::StoreSize { needed, given } => {
                write!(f, "chunk store has {given} bytes, {needed} needed")
            }
            BuildError::Suite(e) => write!(f, "suite cannot be signalled: {e:?}"),
            BuildError::Fec(e) => write!(f, "FEC encoding failed: {e}"),
            BuildError::Seal => f.write_str("AEAD sealing failed"),
            BuildError::LeafCount { needed, given } => {
                write!(f, "{given} leaf hashes given for {needed} chunks")
            }
        }
    }
}

impl std::error::Error for BuildError {}

/// Largest chunk size we accept (a chunk plus headers must fit a 65,507-byte UDP datagram).
pub const MAX_CHUNK_SIZE: u32 = 65_000;

/// Largest datagram an exposer ever emits: the UDP payload limit.
pub const MAX_DATAGRAM: usize = 65_507;

/// Size of a Chunk_Data_With_Proof carrying a full chunk of `chunk_size` for `chunk_count` chunks:
/// the exposure's largest packet, since any puller may ask for proofs.
pub fn max_packet_len(chunk_size: u32, chunk_count: u32) -> usize {
    25 + HASH_LEN * crate::merkle::proof_depth(chunk_count) + chunk_size as usize + TAG_LEN
}

/// An immutable, pre-encrypted, Merkle-committed, FEC-coded dataset.
pub struct Exposure {
    id: ExposureId,
    suite: SuiteId,
    total_size: u64,
    chunk_size: u32,
    chunk_count: u32,
    tree: MerkleTree,
    store: Box<dyn ChunkStore>,
    parity: Vec<u8>,
}

impl core::fmt::Debug for Exposure {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.debug_struct("Exposure")
            .field("id", &self.id)
            .field("suite", &self.suite)
            .field("total_size", &self.total_size)
            .field("chunk_size", &self.chunk_size)
            .field("chunk_count", &self.chunk_count)
            .finish_non_exhaustive()
    }
}

/// Rejects chunk sizes no packet can carry (checked before anything is allocated).
fn check_chunk_size(chunk_size: u32) -> Result<(), BuildError> {
    if chunk_size == 0 || chunk_size > MAX_CHUNK_SIZE {
        return Err(BuildError::BadChunkSize);
    }
    Ok(())
}

/// Bytes of store one chunk occupies: its Chunk_Data packet (a 24-byte header, the
/// ciphertext and the 16-byte tag), the exposure's last chunk padded to full length.
pub fn slot_len(chunk_size: u32) -> usize {
    ChunkData::HEADER_LEN + chunk_size as usize + TAG_LEN
}

/// Number of chunks for `total` bytes in chunks of `chunk_size`.
pub fn chunk_count(total: u64, chunk_size: u32) -> u64 {
    total.div_ceil(u64::from(chunk_size.max(1)))
}

impl Exposure {
    /// Bytes of store [`Exposure::build_into`] needs.
    pub fn store_len(total_size: u64, chunk_size: u32) -> usize {
        (chunk_count(total_size, chunk_size) * slot_len(chunk_size) as u64) as usize
    }

    /// Seals `data` chunk by chunk into a fresh `Vec`, builds the tree and parity.
    ///
    /// `cipher` is already keyed; `key_mode` says with what (the ticket key or the
    /// key derived from it, see [`KeyMode::chunk_key`]) and is announced in the
    /// Manifest flags.
    #[allow(clippy::too_many_arguments)]
    pub fn build<C, H, F>(
        id: ExposureId,
        data: &[u8],
        chunk_size: u32,
        cipher: &C,
        key_mode: KeyMode,
        hash: &H,
        fec: &F,
        proofs: bool,
    ) -> Result<Exposure, BuildError>
    where
        C: CipherSuite + ?Sized,
        H: MerkleScheme + ?Sized,
        F: FecCodec + ?Sized,
    {
        check_chunk_size(chunk_size)?;
        let store = vec![0u8; Self::store_len(data.len() as u64, chunk_size)];
        Self::build_into(
            id,
            data,
            chunk_size,
            cipher,
            key_mode,
            hash,
            fec,
            proofs,
            Box::new(store),
        )
    }

    /// As [`Exposure::build`], sealing into a store the caller allocated
    /// (exactly [`Exposure::store_len`] bytes).
    #[allow(clippy::too_many_arguments)]
    pub fn build_into<C, H, F>(
        id: ExposureId,
        data: &[u8],
        chunk_size: u32,
        cipher: &C,
        key_mode: KeyMode,
        hash: &H,
        fec: &F,
        proofs: bool,
        mut store: Box<dyn ChunkStore>,
    ) -> Result<Exposure, BuildError>
    where
        C: CipherSuite + ?Sized,
        H: MerkleScheme + ?Sized,
        F: FecCodec + ?Sized,
    {
        let total = data.len() as u64;
        Self::check(total, chunk_size, cipher.id(), hash, fec, proofs, key_mode)?;
        let needed = Self::store_len(total, chunk_size);
        if store.bytes().len() != needed {
            return Err(BuildError::StoreSize {
                needed,
                given: store.bytes().len(),
            });
        }
        let mut leaves = vec![[0u8; HASH_LEN]; data.len().div_ceil(chunk_size as usize)];
        crate::merkle::leaves_of(hash, data, chunk_size as usize, &mut leaves);
        let tree = MerkleTree::from_leaves(hash, leaves);
        seal_chunks(cipher, &id, data, chunk_size, 0, store.bytes_mut())?;
        Self::from_sealed(
            id,
            total,
            chunk_size,
            cipher.id(),
            key_mode,
            hash,
            fec,
            proofs,
            store,
            tree,
        )
    }

    /// Checks that `total` bytes in chunks of `chunk_size` can be exposed with these
    /// layers, and returns the suite they make.
    #[allow(clippy::too_many_arguments)]
    pub fn check<H, F>(
        total: u64,
        chunk_size: u32,
        cipher: CipherId,
        hash: &H,
        fec: &F,
        proofs: bool,
        key_mode: KeyMode,
    ) -> Result<SuiteId, BuildError>
    where
        H: MerkleScheme + ?Sized,
        F: FecCodec + ?Sized,
    {
        check_chunk_size(chunk_size)?;
        let count = chunk_count(total, chunk_size);
        if count > u64::from(u32::MAX) {
            return Err(BuildError::TooManyChunks);
        }
        let count = count as u32;
        if max_packet_len(chunk_size, count) > MAX_DATAGRAM {
            return Err(BuildError::BadChunkSize);
        }
        let params = fec.params();
        if params.scheme != FecScheme::None {
            let blocks = count.div_ceil(u32::from(params.k));
            if blocks >= 1 << 23 {
                return Err(BuildError::TooManyChunks);
            }
        }
        let suite = SuiteId {
            cipher,
            hash: hash.id(),
            fec: params,
            proofs,
            key_mode,
        };
        suite.manifest_flags().map_err(BuildError::Suite)?;
        Ok(suite)
    }

    /// Builds an exposure of `total` bytes from chunks already sealed into `store` (by
    /// [`seal_chunks`], possibly over disjoint ranges at once) under a cipher of suite
    /// `cipher`, and the Merkle tree over the chunks' plaintext: computes the parity.
    /// The caller vouches that `store` and `tree` match: a wrong leaf makes a root no
    /// puller's data will match, never a wrong transfer.
    #[allow(clippy::too_many_arguments)]
    pub fn from_sealed<H, F>(
        id: ExposureId,
        total: u64,
        chunk_size: u32,
        cipher: CipherId,
        key_mode: KeyMode,
        hash: &H,
        fec: &F,
        proofs: bool,
        store: Box<dyn ChunkStore>,
        tree: MerkleTree,
    ) -> Result<Exposure, BuildError>
    where
        H: MerkleScheme + ?Sized,
        F: FecCodec + ?Sized,
    {
        let suite = Self::check(total, chunk_size, cipher, hash, fec, proofs, key_mode)?;
        let needed = Self::store_len(total, chunk_size);
        if store.bytes().len() != needed {
            return Err(BuildError::StoreSize {
                needed,
                given: store.bytes().len(),
            });
        }
        let count = chunk_count(total, chunk_size) as u32;
        if tree.leaf_count() != count || (count == 0 && tree.root() != hash.leaf(&[])) {
            return Err(BuildError::LeafCount {
                needed: count as usize,
                given: tree.leaf_count() as usize,
            });
        }
        let mut exposure = Exposure {
            id,
            suite,
            total_size: total,
            chunk_size,
            chunk_count: count,
            tree,
            store,
            parity: Vec::new(),
        };
        exposure.parity = exposure.encode_parity(fec)?;
        Ok(exposure)
    }

    fn encode_parity<F: FecCodec + ?Sized>(&self, fec: &F) -> Result<Vec<u8>, BuildError> {
        let params = self.suite.fec;
        if params.scheme == FecScheme::None || self.chunk_count == 0 {
            return Ok(Vec::new());
        }
        let k = usize::from(params.k);
        let m = params.parity();
        let shard = self.shard_len();
        let blocks = self.block_count() as usize;
        let mut parity = vec![0u8; blocks * m * shard];
        let zero = vec![0u8; shard];
        let mut padded: Vec<Vec<u8>> = Vec::new();
        for b in 0..blocks {
            padded.clear();
            let mut data: Vec<&[u8]> = Vec::with_capacity(k);
            // Shards are full-length except the exposure's last chunk, which is padded.
            let mut last_padded = None;
            for j in 0..k {
                let idx = b * k + j;
                if idx >= self.chunk_count as usize {
                    data.push(&zero);
                } else {
                    let c = self.ciphertext(idx as u32);
                    if c.len() == shard {
                        data.push(c);
                    } else {
                        let mut p = c.to_vec();
                        p.resize(shard, 0);
                        last_padded = Some(p);
                        data.push(&[]);
                    }
                }
            }
            if let Some(p) = last_padded.as_ref() {
                for d in data.iter_mut() {
                    if d.is_empty() {
                        *d = p;
                    }
                }
            }
            let region = &mut parity[b * m * shard..(b + 1) * m * shard];
            let mut outs: Vec<&mut [u8]> = region.chunks_mut(shard).collect();
            fec.encode(&data, &mut outs).map_err(BuildError::Fec)?;
        }
        Ok(parity)
    }

    /// Exposure_ID.
    pub fn id(&self) -> &ExposureId {
        &self.id
    }

    /// The suite.
    pub fn suite(&self) -> SuiteId {
        self.suite
    }

    /// Plaintext size.
    pub fn total_size(&self) -> u64 {
        self.total_size
    }

    /// Plaintext bytes per chunk.
    pub fn chunk_size(&self) -> u32 {
        self.chunk_size
    }

    /// Number of chunks.
    pub fn chunk_count(&self) -> u32 {
        self.chunk_count
    }

    /// Merkle root.
    pub fn root(&self) -> Hash {
        self.tree.root()
    }

    /// FEC shard length: chunk size plus tag.
    pub fn shard_len(&self) -> usize {
        self.chunk_size as usize + TAG_LEN
    }

    /// Number of FEC blocks (0 without FEC).
    pub fn block_count(&self) -> u32 {
        match self.suite.fec.scheme {
            FecScheme::None => 0,
            _ => self.chunk_count.div_ceil(u32::from(self.suite.fec.k)),
        }
    }

    /// Ciphertext‖tag of chunk `index`.
    ///
    /// # Panics
    /// If `index >= chunk_count()`.
    pub fn ciphertext(&self, index: u32) -> &[u8] {
        &self.packet(index)[ChunkData::HEADER_LEN..]
    }

    /// The Chunk_Data packet serving chunk `index`, as it goes on the wire.
    ///
    /// # Panics
    /// If `index >= chunk_count()`.
    pub fn packet(&self, index: u32) -> &[u8] {
        &self.store.bytes()[self.packets_range(index, 1)]
    }

    /// Where in [`Exposure::store_bytes`] the Chunk_Data packets of chunks `first`,
    /// `first + 1`, … (`count` of them, at least one) lie back to back.
    ///
    /// # Panics
    /// If a chunk is out of range or `count` is 0.
    pub fn packets_range(&self, first: u32, count: u32) -> core::ops::Range<usize> {
        assert!(count > 0, "no packets");
        let last = first
            .checked_add(count - 1)
            .filter(|&l| l < self.chunk_count)
            .expect("chunks in range");
        let stride = slot_len(self.chunk_size);
        let end = last as usize * stride
            + ChunkData::HEADER_LEN
            + plain_len(self.total_size, self.chunk_size, last)
            + TAG_LEN;
        first as usize * stride..end
    }

    /// The store: each chunk's Chunk_Data packet, [`slot_len`] bytes apart.
    pub fn store_bytes(&self) -> &[u8] {
        self.store.bytes()
    }

    /// Parity shard `p` of block `block`.
    ///
    /// # Panics
    /// If out of range.
    pub fn parity(&self, block: u32, p: u8) -> &[u8] {
        let m = self.suite.fec.parity();
        let shard = self.shard_len();
        let start = (block as usize * m + usize::from(p)) * shard;
        &self.parity[start..start + shard]
    }

    /// The Merkle tree.
    pub fn tree(&self) -> &MerkleTree {
        &self.tree
    }

    /// The Manifest for this exposure (without a token).
    pub fn manifest(&self) -> Manifest {
        Manifest {
            exposure_id: self.id,
            total_size: self.total_size,
            chunk_count: self.chunk_count,
            chunk_size: self.chunk_size,
            merkle_root: self.tree.root(),
            fec_n: self.suite.fec.n,
            fec_k: self.suite.fec.k,
            flags: self
                .suite
                .manifest_flags()
                .unwrap_or(ManifestFlags::empty()),
            token: None,
            rate_cap: None,
        }
    }

    /// Bytes held: ciphertext, parity and tree.
    pub fn memory_bytes(&self) -> usize {
        self.store.bytes().len() + self.parity.len() + self.chunk_count as usize * 2 * HASH_LEN
    }
}

/// Seals the chunks of `data`, the first of which is chunk `first` of exposure `id`,
/// into `out` (their slots, [`slot_len`] bytes apart: the part of an
/// [`Exposure::store_len`] store from slot `first` on). Each slot becomes the
/// chunk's Chunk_Data packet: header, ciphertext, tag. Touches nothing else, so
/// disjoint ranges may be sealed at once on several threads before
/// [`Exposure::from_sealed`].
pub fn seal_chunks<C: CipherSuite + ?Sized>(
    cipher: &C,
    id: &ExposureId,
    data: &[u8],
    chunk_size: u32,
    first: u32,
    out: &mut [u8],
) -> Result<(), BuildError> {
    check_chunk_size(chunk_size)?;
    let stride = slot_len(chunk_size);
    let count = data.len().div_ceil(chunk_size as usize);
    let full = data.len() / chunk_size as usize;
    let needed = full * stride
        + if count > full {
            ChunkData::HEADER_LEN + data.len() - full * chunk_size as usize + TAG_LEN
        } else {
            0
        };
    if out.len() < needed {
        return Err(BuildError::StoreSize {
            needed,
            given: out.len(),
        });
    }
    for (i, plain) in data.chunks(chunk_size as usize).enumerate() {
        let at = i * stride;
        let slot = &mut out[at..at + ChunkData::HEADER_LEN + plain.len() + TAG_LEN];
        let (header, sealed) = slot.split_at_mut(ChunkData::HEADER_LEN);
        let (body, tag) = sealed.split_at_mut(plain.len());
        body.copy_from_slice(plain);
        let index = first
            .checked_add(i as u32)
            .ok_or(BuildError::TooManyChunks)?;
        let t = cipher.seal(index, body).map_err(|_| BuildError::Seal)?;
        tag.copy_from_slice(&t);
        ChunkData::emit_header(id, index, plain.len() + TAG_LEN, header);
    }
    Ok(())
}

/// Plaintext length of chunk `index`.
pub fn plain_len(total: u64, chunk_size: u32, index: u32) -> usize {
    let start = u64::from(index) * u64::from(chunk_size);
    (total.saturating_sub(start)).min(u64::from(chunk_size)) as usize
}

/// Splits a parity entry into (block, parity index).
pub fn parity_entry(e: u32) -> (u32, u8) {
    ((e & !NAK_PARITY_BIT) >> 8, (e & 0xff) as u8)
}

/// Builds a parity entry.
pub fn make_parity_entry(block: u32, p: u8) -> u32 {
    NAK_PARITY_BIT | (block << 8) | u32::from(p)
}

/// Length of the datagram serving entry `e` (a chunk, with or without its proof, or a
/// parity shard); `None` if `e` names nothing in `x`.
pub(super) fn entry_len(x: &Exposure, e: u32, proofs: bool) -> Option<usize> {
    if e & NAK_PARITY_BIT != 0 {
        let (block, p) = parity_entry(e);
        if block >= x.block_count() || usize::from(p) >= x.suite.fec.parity() {
            return None;
        }
        Some(28 + x.shard_len())
    } else if e < x.chunk_count {
        let payload = plain_len(x.total_size, x.chunk_size, e) + TAG_LEN;
        Some(if proofs {
            25 + HASH_LEN * x.tree.depth() + payload
        } else {
            24 + payload
        })
    } else {
        None
    }
}

/// Writes the datagram serving entry `e` into `out`, exactly [`entry_len`] bytes.
pub(super) fn emit_entry(x: &Exposure, e: u32, proofs: bool, out: &mut [u8]) {
    if e & NAK_PARITY_BIT != 0 {
        let (block, p) = parity_entry(e);
        let FecParams { n, k, .. } = x.suite.fec;
        Repr::FecParity(FecParity {
            exposure_id: x.id,
            block_index: block,
            parity_index: p,
            fec_n: n,
            fec_k: k,
            payload: x.parity(block, p),
        })
        .emit(out);
    } else if proofs {
        // The proof goes straight into the datagram, where it sits right before the
        // payload: emitted as zeros first, then written in place.
        static UNWRITTEN: [u8; HASH_LEN * 32] = [0; HASH_LEN * 32];
        let len = x.tree.depth() * HASH_LEN;
        let payload = x.ciphertext(e);
        Repr::ChunkDataWithProof(ChunkDataWithProof {
            exposure_id: x.id,
            chunk_index: e,
            proof: &UNWRITTEN[..len],
            payload,
        })
        .emit(out);
        let at = out.len() - payload.len() - len;
        x.tree.write_proof(e, &mut out[at..at + len]);
    } else {
        out.copy_from_slice(x.packet(e));
    }
}
