//! A smoltcp-style view over the common header of an RGTP v1 packet.
//!
//! [`Packet::new_checked`] runs the header checks of [`crate::Repr::parse`]
//! (steps 1 and the fixed-part length check); after it succeeds no accessor
//! panics. It lets a caller route a datagram by type and Exposure_ID before
//! paying for a full parse.

use crate::{Error, ExposureId, PacketType, HEADER_LEN, VERSION};

/// Byte offsets of every field, counted from the start of the packet
/// (header included).
pub(crate) mod field {
    #![allow(dead_code)]

    /// A byte range.
    pub(crate) type Field = core::ops::Range<usize>;

    pub(crate) const VERSION: usize = 0;
    pub(crate) const TYPE: usize = 1;
    pub(crate) const LENGTH: Field = 2..4;
    /// Every packet type carries the Exposure_ID right after the header.
    pub(crate) const EXPOSURE_ID: Field = 4..20;

    /// Pull_Request (§2.3).
    pub(crate) mod pull {
        use super::Field;
        pub(crate) const WINDOW_SIZE: Field = 20..24;
        pub(crate) const LOSS_RATE: Field = 24..28;
        pub(crate) const FLAGS: Field = 28..32;
        pub(crate) const VERSION_MIN: Field = 32..34;
        pub(crate) const VERSION_MAX: Field = 34..36;
        pub(crate) const LEN: usize = 36;
    }

    /// Manifest (§2.4), plus the token extension.
    pub(crate) mod manifest {
        use super::Field;
        pub(crate) const TOTAL_SIZE: Field = 20..28;
        pub(crate) const CHUNK_COUNT: Field = 28..32;
        pub(crate) const CHUNK_SIZE: Field = 32..36;
        pub(crate) const MERKLE_ROOT: Field = 36..68;
        pub(crate) const FEC_N: usize = 68;
        pub(crate) const FEC_K: usize = 69;
        pub(crate) const FLAGS: Field = 70..72;
        pub(crate) const LEN: usize = 72;
        pub(crate) const TOKEN: Field = 72..88;
        pub(crate) const LEN_WITH_TOKEN: usize = 88;
        /// The rate cap extension's length (after the token, if any).
        pub(crate) const RATE_CAP_LEN: usize = 8;
    }

    /// Chunk_Data (§2.5).
    pub(crate) mod chunk {
        use super::Field;
        pub(crate) const CHUNK_INDEX: Field = 20..24;
        pub(crate) const PAYLOAD: usize = 24;
    }

    /// Chunk_Data_With_Proof (§2.6).
    pub(crate) mod proof {
        use super::Field;
        pub(crate) const CHUNK_INDEX: Field = 20..24;
        pub(crate) const PROOF_DEPTH: usize = 24;
        pub(crate) const PROOF: usize = 25;
        /// Upper bound on Proof_Depth (a tree of 2^32 leaves).
        pub(crate) const MAX_DEPTH: usize = 32;
    }

    /// FEC_Parity (§2.7).
    pub(crate) mod fec {
        use super::Field;
        pub(crate) const BLOCK_INDEX: Field = 20..24;
        pub(crate) const PARITY_INDEX: usize = 24;
        pub(crate) const FEC_N: usize = 25;
        pub(crate) const FEC_K: usize = 26;
        pub(crate) const RESERVED: usize = 27;
        pub(crate) const PAYLOAD: usize = 28;
    }

    /// NAK (§2.8), plus the flags and token extensions.
    pub(crate) mod nak {
        use super::Field;
        pub(crate) const NAK_COUNT: Field = 20..22;
        pub(crate) const FLAGS: Field = 22..24;
        pub(crate) const INDICES: usize = 24;
        pub(crate) const ENTRY_LEN: usize = 4;
    }

    /// Rate_Report (§2.9).
    pub(crate) mod rate {
        use super::Field;
        pub(crate) const RTT_US: Field = 20..24;
        pub(crate) const LOSS_RATE: Field = 24..28;
        pub(crate) const WINDOW_SIZE: Field = 28..32;
        pub(crate) const RESERVED: Field = 32..36;
        pub(crate) const TIMESTAMP_US: Field = 36..44;
        pub(crate) const LEN: usize = 44;
    }

    /// Keepalive (§2.10).
    pub(crate) mod keepalive {
        use super::Field;
        pub(crate) const TIMESTAMP_US: Field = 20..28;
        pub(crate) const RESERVED: Field = 28..32;
        pub(crate) const LEN: usize = 32;
    }
}

impl PacketType {
    /// Length of this type's fixed part, header included: the whole packet for
    /// Pull_Request, Rate_Report and Keepalive, the token-less packet for
    /// Manifest, and everything before the variable part otherwise.
    pub const fn fixed_len(self) -> usize {
        match self {
            PacketType::PullRequest => field::pull::LEN,
            PacketType::Manifest => field::manifest::LEN,
            PacketType::ChunkData => field::chunk::PAYLOAD,
            PacketType::ChunkDataWithProof => field::proof::PROOF,
            PacketType::FecParity => field::fec::PAYLOAD,
            PacketType::Nak => field::nak::INDICES,
            PacketType::RateReport => field::rate::LEN,
            PacketType::Keepalive => field::keepalive::LEN,
        }
    }
}

impl TryFrom<u8> for PacketType {
    type Error = Error;

    /// Maps a type byte onto a [`PacketType`], or [`Error::UnknownType`].
    fn try_from(value: u8) -> Result<Self, Error> {
        Ok(match value {
            0x01 => PacketType::PullRequest,
            0x02 => PacketType::Manifest,
            0x03 => PacketType::ChunkData,
            0x04 => PacketType::ChunkDataWithProof,
            0x05 => PacketType::FecParity,
            0x06 => PacketType::Nak,
            0x07 => PacketType::RateReport,
            0x08 => PacketType::Keepalive,
            other => return Err(Error::UnknownType(other)),
        })
    }
}

impl From<PacketType> for u8 {
    fn from(value: PacketType) -> u8 {
        value as u8
    }
}

/// A read/write view of an RGTP packet buffer.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Packet<T: AsRef<[u8]>> {
    buffer: T,
}

impl<T: AsRef<[u8]>> Packet<T> {
    /// Wraps a buffer without checking it; accessors may panic on a short buffer.
    pub const fn new_unchecked(buffer: T) -> Packet<T> {
        Packet { buffer }
    }

    /// Wraps a buffer and runs [`Packet::check_len`].
    pub fn new_checked(buffer: T) -> Result<Packet<T>, Error> {
        let packet = Packet::new_unchecked(buffer);
        packet.check_len()?;
        Ok(packet)
    }

    /// Checks, in this order: at least 4 bytes (`Truncated`), version 1
    /// (`UnknownVersion`), a known type (`UnknownType`), Length equal to the
    /// buffer's length (`LengthMismatch`), and at least the type's fixed part
    /// (`Truncated`). Afterwards no accessor of this view panics.
    pub fn check_len(&self) -> Result<(), Error> {
        let data = self.buffer.as_ref();
        if data.len() < HEADER_LEN {
            return Err(Error::Truncated);
        }
        if data[field::VERSION] != VERSION {
            return Err(Error::UnknownVersion(data[field::VERSION]));
        }
        let ty = PacketType::try_from(data[field::TYPE])?;
        let declared =
            u16::from_be_bytes([data[field::LENGTH.start], data[field::LENGTH.start + 1]]);
        if usize::from(declared) != data.len() {
            return Err(Error::LengthMismatch {
                declared,
                actual: data.len(),
            });
        }
        if data.len() < ty.fixed_len() {
            return Err(Error::Truncated);
        }
        Ok(())
    }

    /// Consumes the view, returning the buffer.
    pub fn into_inner(self) -> T {
        self.buffer
    }

    /// Version byte.
    pub fn version(&self) -> u8 {
        self.buffer.as_ref()[field::VERSION]
    }

    /// Raw type byte.
    pub fn type_byte(&self) -> u8 {
        self.buffer.as_ref()[field::TYPE]
    }

    /// Packet type, or `None` for an unknown type byte.
    pub fn packet_type(&self) -> Option<PacketType> {
        PacketType::try_from(self.type_byte()).ok()
    }

    /// Length field.
    pub fn length(&self) -> u16 {
        let data = self.buffer.as_ref();
        u16::from_be_bytes([data[field::LENGTH.start], data[field::LENGTH.start + 1]])
    }

    /// Exposure_ID, which every packet type carries right after the header.
    pub fn exposure_id(&self) -> ExposureId {
        let mut id = ExposureId::default();
        id.copy_from_slice(&self.buffer.as_ref()[field::EXPOSURE_ID]);
        id
    }

    /// Everything after the common header.
    pub fn body(&self) -> &[u8] {
        &self.buffer.as_ref()[HEADER_LEN..]
    }
}

impl<T: AsRef<[u8]> + AsMut<[u8]>> Packet<T> {
    /// Sets the version byte.
    pub fn set_version(&mut self, value: u8) {
        self.buffer.as_mut()[field::VERSION] = value;
    }

    /// Sets the type byte.
    pub fn set_packet_type(&mut self, value: PacketType) {
        self.buffer.as_mut()[field::TYPE] = value.into();
    }

    /// Sets the Length field.
    pub fn set_length(&mut self, value: u16) {
        self.buffer.as_mut()[field::LENGTH].copy_from_slice(&value.to_be_bytes());
    }

    /// Sets the Exposure_ID.
    pub fn set_exposure_id(&mut self, value: &ExposureId) {
        self.buffer.as_mut()[field::EXPOSURE_ID].copy_from_slice(value);
    }

    /// Everything after the common header, mutably.
    pub fn body_mut(&mut self) -> &mut [u8] {
        &mut self.buffer.as_mut()[HEADER_LEN..]
    }
}

impl<T: AsRef<[u8]>> AsRef<[u8]> for Packet<T> {
    fn as_ref(&self) -> &[u8] {
        self.buffer.as_ref()
    }
}
