//! `arbitrary::Arbitrary` for the reprs (feature `arbitrary`), for fuzzers.
//!
//! Every generated [`Repr`] passes [`Repr::check`]: token flags agree with
//! the tokens, proofs hold 0..=32 hashes, and payloads are at most
//! [`MAX_PAYLOAD_UDP`] bytes, so `parse(emit(r), MAX_PAYLOAD_UDP) == r`.
//! Variable-length parts borrow from the fuzzer's input.

use arbitrary::{Arbitrary, Result, Unstructured};

use crate::{
    ChunkData, ChunkDataWithProof, FecParity, IndexList, Keepalive, Manifest, ManifestFlags, Nak,
    NakFlags, PacketType, PullFlags, PullRequest, RateReport, Repr, HASH_LEN, MAX_PAYLOAD_UDP,
};

/// Most NAK entries generated (keeps the packet far below 65535 bytes).
const MAX_NAK_ENTRIES: usize = 1024;

fn payload<'a>(u: &mut Unstructured<'a>) -> Result<&'a [u8]> {
    let len = u.int_in_range(0..=MAX_PAYLOAD_UDP.min(u.len()))?;
    u.bytes(len)
}

impl<'a> Arbitrary<'a> for PacketType {
    fn arbitrary(u: &mut Unstructured<'a>) -> Result<Self> {
        let byte = u.int_in_range(1u8..=8)?;
        PacketType::try_from(byte).map_err(|_| arbitrary::Error::IncorrectFormat)
    }
}

impl<'a> Arbitrary<'a> for PullFlags {
    fn arbitrary(u: &mut Unstructured<'a>) -> Result<Self> {
        Ok(PullFlags::from_bits_retain(u.arbitrary()?))
    }
}

impl<'a> Arbitrary<'a> for ManifestFlags {
    /// Valid flags only (at most one hash selector); `TOKEN` is arbitrary.
    fn arbitrary(u: &mut Unstructured<'a>) -> Result<Self> {
        let mut flags = ManifestFlags::from_bits_truncate(u.arbitrary()?);
        if flags.contains(ManifestFlags::HASH_SHA256 | ManifestFlags::HASH_BLAKE3) {
            flags.remove(ManifestFlags::HASH_BLAKE3);
        }
        Ok(flags)
    }
}

impl<'a> Arbitrary<'a> for NakFlags {
    fn arbitrary(u: &mut Unstructured<'a>) -> Result<Self> {
        Ok(NakFlags::from_bits_retain(u.arbitrary()?))
    }
}

impl<'a> Arbitrary<'a> for IndexList<'a> {
    /// Always [`IndexList::Wire`], borrowed from the input.
    fn arbitrary(u: &mut Unstructured<'a>) -> Result<Self> {
        let count = u.int_in_range(0..=MAX_NAK_ENTRIES.min(u.len() / 4))?;
        Ok(IndexList::Wire(u.bytes(count * 4)?))
    }
}

impl<'a> Arbitrary<'a> for PullRequest {
    fn arbitrary(u: &mut Unstructured<'a>) -> Result<Self> {
        Ok(PullRequest {
            exposure_id: u.arbitrary()?,
            window_size: u.arbitrary()?,
            loss_rate_q16: u.arbitrary()?,
            flags: u.arbitrary()?,
            version_min: u.arbitrary()?,
            version_max: u.arbitrary()?,
        })
    }
}

impl<'a> Arbitrary<'a> for Manifest {
    fn arbitrary(u: &mut Unstructured<'a>) -> Result<Self> {
        let exposure_id = u.arbitrary()?;
        let total_size = u.arbitrary()?;
        let chunk_count = u.arbitrary()?;
        let chunk_size = u.arbitrary()?;
        let merkle_root = u.arbitrary()?;
        let fec_n = u.arbitrary()?;
        let fec_k = u.arbitrary()?;
        let mut flags: ManifestFlags = u.arbitrary()?;
        let token: Option<crate::Token> = u.arbitrary()?;
        flags.set(ManifestFlags::TOKEN, token.is_some());
        let rate_cap: Option<u64> = u.arbitrary()?;
        flags.set(ManifestFlags::RATE_CAP, rate_cap.is_some());
        Ok(Manifest {
            exposure_id,
            total_size,
            chunk_count,
            chunk_size,
            merkle_root,
            fec_n,
            fec_k,
            flags,
            token,
            rate_cap,
        })
    }
}

impl<'a> Arbitrary<'a> for ChunkData<'a> {
    fn arbitrary(u: &mut Unstructured<'a>) -> Result<Self> {
        Ok(ChunkData {
            exposure_id: u.arbitrary()?,
            chunk_index: u.arbitrary()?,
            payload: payload(u)?,
        })
    }
}

impl<'a> Arbitrary<'a> for ChunkDataWithProof<'a> {
    fn arbitrary(u: &mut Unstructured<'a>) -> Result<Self> {
        let exposure_id = u.arbitrary()?;
        let chunk_index = u.arbitrary()?;
        let depth = u.int_in_range(0..=32usize.min(u.len() / HASH_LEN))?;
        let proof = u.bytes(depth * HASH_LEN)?;
        Ok(ChunkDataWithProof {
            exposure_id,
            chunk_index,
            proof,
            payload: payload(u)?,
        })
    }
}

impl<'a> Arbitrary<'a> for FecParity<'a> {
    fn arbitrary(u: &mut Unstructured<'a>) -> Result<Self> {
        Ok(FecParity {
            exposure_id: u.arbitrary()?,
            block_index: u.arbitrary()?,
            parity_index: u.arbitrary()?,
            fec_n: u.arbitrary()?,
            fec_k: u.arbitrary()?,
            payload: payload(u)?,
        })
    }
}

impl<'a> Arbitrary<'a> for Nak<'a> {
    fn arbitrary(u: &mut Unstructured<'a>) -> Result<Self> {
        let exposure_id = u.arbitrary()?;
        let mut flags: NakFlags = u.arbitrary()?;
        let token: Option<crate::Token> = u.arbitrary()?;
        flags.set(NakFlags::TOKEN, token.is_some());
        Ok(Nak {
            exposure_id,
            flags,
            indices: u.arbitrary()?,
            token,
        })
    }
}

impl<'a> Arbitrary<'a> for RateReport {
    fn arbitrary(u: &mut Unstructured<'a>) -> Result<Self> {
        Ok(RateReport {
            exposure_id: u.arbitrary()?,
            rtt_us: u.arbitrary()?,
            loss_rate_q16: u.arbitrary()?,
            window_size: u.arbitrary()?,
            timestamp_us: u.arbitrary()?,
        })
    }
}

impl<'a> Arbitrary<'a> for Keepalive {
    fn arbitrary(u: &mut Unstructured<'a>) -> Result<Self> {
        Ok(Keepalive {
            exposure_id: u.arbitrary()?,
            timestamp_us: u.arbitrary()?,
        })
    }
}

impl<'a> Arbitrary<'a> for Repr<'a> {
    fn arbitrary(u: &mut Unstructured<'a>) -> Result<Self> {
        Ok(match u.arbitrary::<PacketType>()? {
            PacketType::PullRequest => Repr::PullRequest(u.arbitrary()?),
            PacketType::Manifest => Repr::Manifest(u.arbitrary()?),
            PacketType::ChunkData => Repr::ChunkData(u.arbitrary()?),
            PacketType::ChunkDataWithProof => Repr::ChunkDataWithProof(u.arbitrary()?),
            PacketType::FecParity => Repr::FecParity(u.arbitrary()?),
            PacketType::Nak => Repr::Nak(u.arbitrary()?),
            PacketType::RateReport => Repr::RateReport(u.arbitrary()?),
            PacketType::Keepalive => Repr::Keepalive(u.arbitrary()?),
        })
    }
}
