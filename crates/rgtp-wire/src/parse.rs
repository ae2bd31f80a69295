//! The nom parser behind [`crate::Repr::parse`].
//!
//! Each body parser takes the bytes after the common header (the header has
//! already been checked by [`Packet::check_len`]) and fails with
//! `nom::Err::Failure` carrying the exact [`Error`]; running out of input
//! maps onto [`Error::Truncated`].

use nom::bytes::complete::take;
use nom::error::{ErrorKind, ParseError};
use nom::number::complete::{be_u16, be_u32, be_u64, be_u8};

use crate::packet::field;
use crate::{
    ChunkData, ChunkDataWithProof, Error, FecParity, IndexList, Keepalive, Manifest, ManifestFlags,
    Nak, NakFlags, Packet, PacketType, PullFlags, PullRequest, RateReport, Repr, HASH_LEN,
    HEADER_LEN, TOKEN_LEN,
};

/// nom's error type for our parsers: a wire [`Error`], `Truncated` unless a
/// check said otherwise.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct WireError(pub(crate) Error);

impl<I> ParseError<I> for WireError {
    fn from_error_kind(_input: I, _kind: ErrorKind) -> Self {
        WireError(Error::Truncated)
    }

    fn append(_input: I, _kind: ErrorKind, other: Self) -> Self {
        other
    }
}

type PResult<'a, O> = nom::IResult<&'a [u8], O, WireError>;

/// Fails the parse with `error`, without backtracking.
fn fail<'a, O>(error: Error) -> PResult<'a, O> {
    Err(nom::Err::Failure(WireError(error)))
}

fn array<const N: usize>(input: &[u8]) -> PResult<'_, [u8; N]> {
    let (input, bytes) = take(N)(input)?;
    let mut out = [0u8; N];
    out.copy_from_slice(bytes);
    Ok((input, out))
}

/// Parses a datagram; see [`Repr::parse`] for the order of checks.
pub(crate) fn parse(data: &[u8], max_payload: usize) -> Result<Repr<'_>, Error> {
    let packet = Packet::new_checked(data)?;
    let ty = packet
        .packet_type()
        .ok_or(Error::UnknownType(packet.type_byte()))?;
    let body = &data[HEADER_LEN..];
    let result = match ty {
        PacketType::PullRequest => pull_request(body).map(|(i, r)| (i, Repr::PullRequest(r))),
        PacketType::Manifest => manifest(body).map(|(i, r)| (i, Repr::Manifest(r))),
        PacketType::ChunkData => chunk_data(body).map(|(i, r)| (i, Repr::ChunkData(r))),
        PacketType::ChunkDataWithProof => {
            chunk_data_with_proof(body).map(|(i, r)| (i, Repr::ChunkDataWithProof(r)))
        }
        PacketType::FecParity => fec_parity(body).map(|(i, r)| (i, Repr::FecParity(r))),
        PacketType::Nak => nak(body).map(|(i, r)| (i, Repr::Nak(r))),
        PacketType::RateReport => rate_report(body).map(|(i, r)| (i, Repr::RateReport(r))),
        PacketType::Keepalive => keepalive(body).map(|(i, r)| (i, Repr::Keepalive(r))),
    };
    let repr = match result {
        Ok((_rest, repr)) => repr,
        Err(nom::Err::Error(e) | nom::Err::Failure(e)) => return Err(e.0),
        Err(nom::Err::Incomplete(_)) => return Err(Error::Truncated),
    };
    let payload = match repr {
        Repr::ChunkData(r) => r.payload.len(),
        Repr::ChunkDataWithProof(r) => r.payload.len(),
        Repr::FecParity(r) => r.payload.len(),
        _ => 0,
    };
    if payload > max_payload {
        return Err(Error::PayloadTooLarge);
    }
    Ok(repr)
}

/// Fails with `BadLength` unless `input` is exhausted.
fn end_of_fixed(input: &[u8]) -> PResult<'_, ()> {
    if input.is_empty() {
        Ok((input, ()))
    } else {
        fail(Error::BadLength)
    }
}

fn pull_request(input: &[u8]) -> PResult<'_, PullRequest> {
    let (input, exposure_id) = array(input)?;
    let (input, window_size) = be_u32(input)?;
    let (input, loss_rate_q16) = be_u32(input)?;
    let (input, flags) = be_u32(input)?;
    let (input, version_min) = be_u16(input)?;
    let (input, version_max) = be_u16(input)?;
    let (input, ()) = end_of_fixed(input)?;
    let flags = PullFlags::from_bits_retain(flags);
    Ok((
        input,
        PullRequest {
            exposure_id,
            window_size,
            loss_rate_q16,
            flags,
            version_min,
            version_max,
        },
    ))
}

/// Validates Manifest flags: only defined bits, at most one hash selector.
pub(crate) fn manifest_flags(bits: u16) -> Result<ManifestFlags, Error> {
    let flags = ManifestFlags::from_bits(bits).ok_or(Error::BadFlags)?;
    if flags.contains(ManifestFlags::HASH_SHA256 | ManifestFlags::HASH_BLAKE3) {
        return Err(Error::BadFlags);
    }
    Ok(flags)
}

fn manifest(input: &[u8]) -> PResult<'_, Manifest> {
    let (input, exposure_id) = array(input)?;
    let (input, total_size) = be_u64(input)?;
    let (input, chunk_count) = be_u32(input)?;
    let (input, chunk_size) = be_u32(input)?;
    let (input, merkle_root) = array(input)?;
    let (input, fec_n) = be_u8(input)?;
    let (input, fec_k) = be_u8(input)?;
    let (input, bits) = be_u16(input)?;
    // Length is checked against the raw TOKEN bit before the flags are
    // validated: `BadLength` wins over `BadFlags`.
    let has_token = bits & ManifestFlags::TOKEN.bits() != 0;
    let has_rate_cap = bits & ManifestFlags::RATE_CAP.bits() != 0;
    let expected_rest = if has_token { TOKEN_LEN } else { 0 }
        + if has_rate_cap {
            crate::packet::field::manifest::RATE_CAP_LEN
        } else {
            0
        };
    if input.len() != expected_rest {
        return fail(Error::BadLength);
    }
    let flags = match manifest_flags(bits) {
        Ok(flags) => flags,
        Err(e) => return fail(e),
    };
    let (input, token) = if has_token {
        let (input, token) = array(input)?;
        (input, Some(token))
    } else {
        (input, None)
    };
    let (input, rate_cap) = if has_rate_cap {
        let (input, cap) = be_u64(input)?;
        (input, Some(cap))
    } else {
        (input, None)
    };
    Ok((
        input,
        Manifest {
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
        },
    ))
}

fn chunk_data(input: &[u8]) -> PResult<'_, ChunkData<'_>> {
    let (input, exposure_id) = array(input)?;
    let (input, chunk_index) = be_u32(input)?;
    let (input, payload) = take(input.len())(input)?;
    Ok((
        input,
        ChunkData {
            exposure_id,
            chunk_index,
            payload,
        },
    ))
}

fn chunk_data_with_proof(input: &[u8]) -> PResult<'_, ChunkDataWithProof<'_>> {
    let (input, exposure_id) = array(input)?;
    let (input, chunk_index) = be_u32(input)?;
    let (input, depth) = be_u8(input)?;
    let depth = usize::from(depth);
    if depth > field::proof::MAX_DEPTH || depth * HASH_LEN > input.len() {
        return fail(Error::BadProofDepth);
    }
    let (input, proof) = take(depth * HASH_LEN)(input)?;
    let (input, payload) = take(input.len())(input)?;
    Ok((
        input,
        ChunkDataWithProof {
            exposure_id,
            chunk_index,
            proof,
            payload,
        },
    ))
}

fn fec_parity(input: &[u8]) -> PResult<'_, FecParity<'_>> {
    let (input, exposure_id) = array(input)?;
    let (input, block_index) = be_u32(input)?;
    let (input, parity_index) = be_u8(input)?;
    let (input, fec_n) = be_u8(input)?;
    let (input, fec_k) = be_u8(input)?;
    let (input, _reserved) = be_u8(input)?;
    let (input, payload) = take(input.len())(input)?;
    Ok((
        input,
        FecParity {
            exposure_id,
            block_index,
            parity_index,
            fec_n,
            fec_k,
            payload,
        },
    ))
}

fn nak(input: &[u8]) -> PResult<'_, Nak<'_>> {
    let (input, exposure_id) = array(input)?;
    let (input, count) = be_u16(input)?;
    let (input, flags) = be_u16(input)?;
    let flags = NakFlags::from_bits_retain(flags);
    let has_token = flags.contains(NakFlags::TOKEN);
    let list_len = usize::from(count) * field::nak::ENTRY_LEN;
    let expected_rest = list_len + if has_token { TOKEN_LEN } else { 0 };
    if input.len() != expected_rest {
        return fail(Error::BadNakCount);
    }
    let (input, list) = take(list_len)(input)?;
    let (input, token) = if has_token {
        let (input, token) = array(input)?;
        (input, Some(token))
    } else {
        (input, None)
    };
    Ok((
        input,
        Nak {
            exposure_id,
            flags,
            indices: IndexList::Wire(list),
            token,
        },
    ))
}

fn rate_report(input: &[u8]) -> PResult<'_, RateReport> {
    let (input, exposure_id) = array(input)?;
    let (input, rtt_us) = be_u32(input)?;
    let (input, loss_rate_q16) = be_u32(input)?;
    let (input, window_size) = be_u32(input)?;
    let (input, _reserved) = be_u32(input)?;
    let (input, timestamp_us) = be_u64(input)?;
    let (input, ()) = end_of_fixed(input)?;
    Ok((
        input,
        RateReport {
            exposure_id,
            rtt_us,
            loss_rate_q16,
            window_size,
            timestamp_us,
        },
    ))
}

fn keepalive(input: &[u8]) -> PResult<'_, Keepalive> {
    let (input, exposure_id) = array(input)?;
    let (input, timestamp_us) = be_u64(input)?;
    let (input, _reserved) = be_u32(input)?;
    let (input, ()) = end_of_fixed(input)?;
    Ok((
        input,
        Keepalive {
            exposure_id,
            timestamp_us,
        },
    ))
}
