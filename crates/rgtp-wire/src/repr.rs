//! High-level packet representations.

use bitflags::bitflags;

use crate::{Error, ExposureId, Hash, Token};

/// Packet type byte.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[repr(u8)]
pub enum PacketType {
    /// 0x01, puller → exposer.
    PullRequest = 0x01,
    /// 0x02, exposer → puller.
    Manifest = 0x02,
    /// 0x03, exposer → puller.
    ChunkData = 0x03,
    /// 0x04, exposer → puller.
    ChunkDataWithProof = 0x04,
    /// 0x05, exposer → puller.
    FecParity = 0x05,
    /// 0x06, puller → exposer.
    Nak = 0x06,
    /// 0x07, puller → exposer.
    RateReport = 0x07,
    /// 0x08, puller → exposer.
    Keepalive = 0x08,
}

bitflags! {
    /// Pull_Request flags (32 bits).
    #[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
    pub struct PullFlags: u32 {
        /// Bit 0: the puller wants Merkle proofs with chunks.
        const PROOFS = 1 << 0;
        /// Bit 1: the puller will use FEC parity.
        const FEC = 1 << 1;
        /// Bit 2 (extension): the puller understands address-validation tokens.
        const ADDR_VALIDATION = 1 << 2;
        /// Bit 3 (extension): the puller honours an exposer's rate cap (spec §8.3.3).
        const RATE_CAP = 1 << 3;
        /// Bit 4 (extension): the puller checks chunks a whole aligned run of 64 at
        /// a time and would like proofs only on each run's first chunk (spec §3.6).
        const PROOF_RUNS = 1 << 4;
    }
}

bitflags! {
    /// Manifest flags (16 bits). All zero = upstream default suite
    /// (ChaCha20-Poly1305, BLAKE2b-256, Reed-Solomon if FEC_N/FEC_K are set).
    #[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
    pub struct ManifestFlags: u16 {
        /// Chunks are sealed with AES-256-GCM instead of ChaCha20-Poly1305.
        const AES_256_GCM = 1 << 0;
        /// Merkle hash is SHA-256 (exclusive with `HASH_BLAKE3`).
        const HASH_SHA256 = 1 << 1;
        /// Merkle hash is BLAKE3 (exclusive with `HASH_SHA256`).
        const HASH_BLAKE3 = 1 << 2;
        /// FEC parity is RaptorQ repair symbols instead of Reed-Solomon.
        const FEC_RAPTORQ = 1 << 3;
        /// The exposer sends Chunk_Data_With_Proof.
        const PROOFS = 1 << 4;
        /// A 16-byte address-validation token follows the fixed part.
        const TOKEN = 1 << 5;
        /// Chunks are sealed under a per-exposure key derived from the ticket key
        /// and the Exposure_ID (spec §6.6). Clear: under the ticket key itself.
        const DERIVED_KEY = 1 << 6;
        /// An 8-byte rate cap follows the fixed part and the token, if any (spec
        /// §8.3.3): the exposer serves this puller at most that many bytes per second.
        const RATE_CAP = 1 << 7;
        /// The exposer honours NakFlags `PROOF_RUNS` (spec §3.6); sent only to a
        /// puller that set PullFlags `PROOF_RUNS`.
        const PROOF_RUNS = 1 << 8;
    }
}

bitflags! {
    /// NAK flags: upstream's 16 reserved bits (extension).
    #[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
    pub struct NakFlags: u16 {
        /// A 16-byte address-validation token follows the index list.
        const TOKEN = 1 << 0;
        /// The puller wants Merkle proofs with the chunks it asks for.
        const PROOFS = 1 << 1;
        /// Of this NAK's chunk entries, only those whose index is a multiple of
        /// [`PROOF_RUN`](crate::PROOF_RUN) come with their proof (spec §3.6).
        const PROOF_RUNS = 1 << 2;
    }
}

/// Pull_Request (0x01), 36 bytes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PullRequest {
    /// Exposure asked for.
    pub exposure_id: ExposureId,
    /// Chunks the puller can take before its buffer is full.
    pub window_size: u32,
    /// Measured loss, Q16.
    pub loss_rate_q16: u32,
    /// Flags.
    pub flags: PullFlags,
    /// Lowest version the puller speaks.
    pub version_min: u16,
    /// Highest version the puller speaks.
    pub version_max: u16,
}

/// Manifest (0x02), 72 bytes, or 88 with a token.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Manifest {
    /// Exposure described.
    pub exposure_id: ExposureId,
    /// Plaintext size in bytes.
    pub total_size: u64,
    /// Number of data chunks.
    pub chunk_count: u32,
    /// Plaintext bytes per chunk (the last may be shorter).
    pub chunk_size: u32,
    /// Merkle root over the plaintext chunks.
    pub merkle_root: Hash,
    /// FEC codeword length, 0 without FEC.
    pub fec_n: u8,
    /// FEC data symbols per block, 0 without FEC.
    pub fec_k: u8,
    /// Flags; `TOKEN` is set exactly when `token` is `Some`.
    pub flags: ManifestFlags,
    /// Address-validation token (extension).
    pub token: Option<Token>,
    /// The exposer's cap for this puller, bytes per second (extension, spec
    /// §8.3.3); `RATE_CAP` is set exactly when it is `Some`.
    pub rate_cap: Option<u64>,
}

/// Chunk_Data (0x03): 24 bytes + payload.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ChunkData<'a> {
    /// Exposure.
    pub exposure_id: ExposureId,
    /// Chunk index.
    pub chunk_index: u32,
    /// Ciphertext followed by the 16-byte AEAD tag.
    pub payload: &'a [u8],
}

impl ChunkData<'_> {
    /// Bytes before the payload.
    pub const HEADER_LEN: usize = 24;

    /// Writes the first [`ChunkData::HEADER_LEN`] bytes of the Chunk_Data packet
    /// carrying chunk `chunk_index` of `exposure_id` with a payload of `payload_len`
    /// bytes: the packet [`Repr::emit`] would write, but for the payload, which the
    /// caller keeps right after it (an exposer whose store holds ready packets).
    ///
    /// # Panics
    /// If `buf` is shorter than the header, or the packet would exceed 65,535 bytes.
    pub fn emit_header(
        exposure_id: &ExposureId,
        chunk_index: u32,
        payload_len: usize,
        buf: &mut [u8],
    ) {
        let len = Self::HEADER_LEN + payload_len;
        let len = u16::try_from(len).expect("a Chunk_Data packet is at most 65,535 bytes");
        let mut packet = crate::Packet::new_unchecked(&mut buf[..Self::HEADER_LEN]);
        packet.set_version(crate::VERSION);
        packet.set_packet_type(crate::PacketType::ChunkData);
        packet.set_length(len);
        packet.set_exposure_id(exposure_id);
        buf[crate::packet::field::chunk::CHUNK_INDEX].copy_from_slice(&chunk_index.to_be_bytes());
    }
}

/// Chunk_Data_With_Proof (0x04): 25 + 32·depth bytes + payload.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ChunkDataWithProof<'a> {
    /// Exposure.
    pub exposure_id: ExposureId,
    /// Chunk index.
    pub chunk_index: u32,
    /// Sibling hashes leaf→root, concatenated; length is a multiple of 32, at most 32·32.
    pub proof: &'a [u8],
    /// Ciphertext followed by the 16-byte AEAD tag.
    pub payload: &'a [u8],
}

impl<'a> ChunkDataWithProof<'a> {
    /// Proof depth (number of sibling hashes).
    pub fn depth(&self) -> usize {
        self.proof.len() / crate::HASH_LEN
    }

    /// Iterates the sibling hashes leaf→root.
    pub fn siblings(&self) -> impl Iterator<Item = &'a Hash> + 'a {
        self.proof
            .chunks_exact(crate::HASH_LEN)
            .map(|c| <&Hash>::try_from(c).expect("chunks_exact yields 32-byte slices"))
    }
}

/// FEC_Parity (0x05): 28 bytes + payload.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct FecParity<'a> {
    /// Exposure.
    pub exposure_id: ExposureId,
    /// FEC block index.
    pub block_index: u32,
    /// Parity symbol index within the block (0..n-k).
    pub parity_index: u8,
    /// Codeword length.
    pub fec_n: u8,
    /// Data symbols per block.
    pub fec_k: u8,
    /// Parity symbol.
    pub payload: &'a [u8],
}

/// A list of 32-bit big-endian entries, either borrowed from a datagram or from a slice.
#[derive(Debug, Clone, Copy)]
pub enum IndexList<'a> {
    /// Raw big-endian bytes from the wire (length a multiple of 4).
    Wire(&'a [u8]),
    /// Host-order values to emit.
    Slice(&'a [u32]),
}

impl<'a> IndexList<'a> {
    /// Number of entries.
    pub fn len(&self) -> usize {
        match self {
            IndexList::Wire(b) => b.len() / 4,
            IndexList::Slice(s) => s.len(),
        }
    }

    /// True when there are no entries.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Iterates the entries in order.
    pub fn iter(&self) -> impl Iterator<Item = u32> + 'a {
        let (wire, slice): (&'a [u8], &'a [u32]) = match *self {
            IndexList::Wire(b) => (b, &[]),
            IndexList::Slice(s) => (&[], s),
        };
        wire.chunks_exact(4)
            .map(|c| u32::from_be_bytes([c[0], c[1], c[2], c[3]]))
            .chain(slice.iter().copied())
    }
}

impl PartialEq for IndexList<'_> {
    fn eq(&self, other: &Self) -> bool {
        self.len() == other.len() && self.iter().eq(other.iter())
    }
}

impl Eq for IndexList<'_> {}

/// Bit 31 of a NAK entry marks a parity request (extension, spec §3.4):
/// `0x8000_0000 | block << 8 | parity_index`.
pub const NAK_PARITY_BIT: u32 = 1 << 31;

/// NAK (0x06): 24 + 4·count bytes (+16 with a token).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Nak<'a> {
    /// Exposure.
    pub exposure_id: ExposureId,
    /// Flags (upstream's Reserved field).
    pub flags: NakFlags,
    /// Requested chunk indices (or parity entries with [`NAK_PARITY_BIT`]).
    pub indices: IndexList<'a>,
    /// Address-validation token; `Some` exactly when `flags` has `TOKEN`.
    pub token: Option<Token>,
}

/// Rate_Report (0x07), 44 bytes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RateReport {
    /// Exposure.
    pub exposure_id: ExposureId,
    /// Smoothed RTT in microseconds.
    pub rtt_us: u32,
    /// Smoothed loss, Q16.
    pub loss_rate_q16: u32,
    /// Current window in chunks.
    pub window_size: u32,
    /// Sender timestamp, microseconds since the Unix epoch.
    pub timestamp_us: u64,
}

/// Keepalive (0x08), 32 bytes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Keepalive {
    /// Exposure.
    pub exposure_id: ExposureId,
    /// Sender timestamp, microseconds since the Unix epoch.
    pub timestamp_us: u64,
}

/// Any RGTP v1 packet.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Repr<'a> {
    /// 0x01.
    PullRequest(PullRequest),
    /// 0x02.
    Manifest(Manifest),
    /// 0x03.
    ChunkData(ChunkData<'a>),
    /// 0x04.
    ChunkDataWithProof(ChunkDataWithProof<'a>),
    /// 0x05.
    FecParity(FecParity<'a>),
    /// 0x06.
    Nak(Nak<'a>),
    /// 0x07.
    RateReport(RateReport),
    /// 0x08.
    Keepalive(Keepalive),
}

impl<'a> Repr<'a> {
    /// Parses one datagram. `max_payload` bounds the payload of Chunk_Data,
    /// Chunk_Data_With_Proof and FEC_Parity ([`crate::MAX_PAYLOAD_UDP`] for v1 over UDP).
    ///
    /// Never panics. Payloads, proofs and NAK lists borrow from `data`
    /// (NAK lists as [`IndexList::Wire`]). Checks run in this order, and the
    /// first failure is returned:
    ///
    /// 1. fewer than 4 bytes → [`Error::Truncated`]; version ≠ 1 →
    ///    [`Error::UnknownVersion`]; type not 1..=8 → [`Error::UnknownType`];
    ///    Length ≠ datagram length → [`Error::LengthMismatch`];
    /// 2. shorter than the type's fixed part → [`Error::Truncated`];
    ///    Pull_Request, Rate_Report or Keepalive longer than its size, or a
    ///    Manifest whose length is not 72 (88 when the raw flags have `TOKEN`)
    ///    → [`Error::BadLength`];
    /// 3. Manifest flags with an undefined bit or both hash selectors →
    ///    [`Error::BadFlags`] (unknown [`PullFlags`] and [`NakFlags`] bits are kept);
    /// 4. Proof_Depth > 32 or beyond the packet → [`Error::BadProofDepth`];
    ///    NAK length ≠ 24 + 4·NAK_Count (+16 with `TOKEN`) → [`Error::BadNakCount`];
    /// 5. payload longer than `max_payload` → [`Error::PayloadTooLarge`].
    ///
    /// Reserved fields are ignored.
    pub fn parse(data: &'a [u8], max_payload: usize) -> Result<Repr<'a>, Error> {
        crate::parse::parse(data, max_payload)
    }

    /// Bytes [`Repr::emit`] writes.
    pub fn buffer_len(&self) -> usize {
        crate::emit::buffer_len(self)
    }

    /// Writes the packet into `buf[..self.buffer_len()]`.
    ///
    /// # Panics
    /// If `buf` is shorter than [`Repr::buffer_len`], or the repr is one
    /// [`Repr::check`] rejects (e.g. a proof longer than 32 hashes).
    ///
    /// Reserved fields are written as zero; bytes past `buffer_len()` are left alone.
    pub fn emit(&self, buf: &mut [u8]) {
        crate::emit::emit(self, buf)
    }

    /// Checks that the repr can be emitted (token flags agree, proof length a multiple of 32, …).
    ///
    /// Errors, checked in this order:
    /// - Manifest flags with an undefined bit or both hash selectors, or
    ///   whose `TOKEN` or `RATE_CAP` bit disagrees with `token` or `rate_cap` →
    ///   [`Error::BadFlags`];
    /// - a proof whose length is not a multiple of 32 or exceeds 32 hashes →
    ///   [`Error::BadProofDepth`];
    /// - NAK `TOKEN` flag disagreeing with `token.is_some()` → [`Error::BadFlags`];
    ///   a wire index list whose length is not a multiple of 4, or more than
    ///   65535 entries → [`Error::BadNakCount`];
    /// - a packet longer than 65535 bytes → [`Error::BadLength`].
    ///
    /// It does not bound payloads: that limit is the caller's `max_payload`.
    pub fn check(&self) -> Result<(), Error> {
        crate::emit::check(self)
    }

    /// The packet type.
    pub fn packet_type(&self) -> PacketType {
        match self {
            Repr::PullRequest(_) => PacketType::PullRequest,
            Repr::Manifest(_) => PacketType::Manifest,
            Repr::ChunkData(_) => PacketType::ChunkData,
            Repr::ChunkDataWithProof(_) => PacketType::ChunkDataWithProof,
            Repr::FecParity(_) => PacketType::FecParity,
            Repr::Nak(_) => PacketType::Nak,
            Repr::RateReport(_) => PacketType::RateReport,
            Repr::Keepalive(_) => PacketType::Keepalive,
        }
    }

    /// The Exposure_ID every packet type carries.
    pub fn exposure_id(&self) -> &ExposureId {
        match self {
            Repr::PullRequest(p) => &p.exposure_id,
            Repr::Manifest(p) => &p.exposure_id,
            Repr::ChunkData(p) => &p.exposure_id,
            Repr::ChunkDataWithProof(p) => &p.exposure_id,
            Repr::FecParity(p) => &p.exposure_id,
            Repr::Nak(p) => &p.exposure_id,
            Repr::RateReport(p) => &p.exposure_id,
            Repr::Keepalive(p) => &p.exposure_id,
        }
    }
}

#[cfg(test)]
mod tests;
