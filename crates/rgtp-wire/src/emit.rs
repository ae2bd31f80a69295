//! The hand-written emitter and the repr checks behind [`crate::Repr`].

use crate::packet::field;
use crate::parse::manifest_flags;
use crate::{
    Error, IndexList, ManifestFlags, NakFlags, Packet, Repr, HASH_LEN, TOKEN_LEN, VERSION,
};

/// Largest packet the 16-bit Length field can describe.
const MAX_PACKET_LEN: usize = u16::MAX as usize;

pub(crate) fn buffer_len(repr: &Repr<'_>) -> usize {
    let token_len = |present: bool| if present { TOKEN_LEN } else { 0 };
    match repr {
        Repr::PullRequest(_) => field::pull::LEN,
        Repr::Manifest(r) => {
            field::manifest::LEN
                + token_len(r.token.is_some())
                + if r.rate_cap.is_some() {
                    field::manifest::RATE_CAP_LEN
                } else {
                    0
                }
        }
        Repr::ChunkData(r) => field::chunk::PAYLOAD + r.payload.len(),
        Repr::ChunkDataWithProof(r) => field::proof::PROOF + r.proof.len() + r.payload.len(),
        Repr::FecParity(r) => field::fec::PAYLOAD + r.payload.len(),
        Repr::Nak(r) => {
            field::nak::INDICES
                + r.indices.len() * field::nak::ENTRY_LEN
                + token_len(r.token.is_some())
        }
        Repr::RateReport(_) => field::rate::LEN,
        Repr::Keepalive(_) => field::keepalive::LEN,
    }
}

pub(crate) fn check(repr: &Repr<'_>) -> Result<(), Error> {
    match repr {
        Repr::Manifest(r) => {
            manifest_flags(r.flags.bits())?;
            if r.flags.contains(ManifestFlags::TOKEN) != r.token.is_some()
                || r.flags.contains(ManifestFlags::RATE_CAP) != r.rate_cap.is_some()
            {
                return Err(Error::BadFlags);
            }
        }
        Repr::ChunkDataWithProof(r) => {
            if r.proof.len() % HASH_LEN != 0 || r.proof.len() > field::proof::MAX_DEPTH * HASH_LEN {
                return Err(Error::BadProofDepth);
            }
        }
        Repr::Nak(r) => {
            if r.flags.contains(NakFlags::TOKEN) != r.token.is_some() {
                return Err(Error::BadFlags);
            }
            if let IndexList::Wire(bytes) = r.indices {
                if bytes.len() % field::nak::ENTRY_LEN != 0 {
                    return Err(Error::BadNakCount);
                }
            }
            if r.indices.len() > usize::from(u16::MAX) {
                return Err(Error::BadNakCount);
            }
        }
        Repr::PullRequest(_)
        | Repr::ChunkData(_)
        | Repr::FecParity(_)
        | Repr::RateReport(_)
        | Repr::Keepalive(_) => {}
    }
    if buffer_len(repr) > MAX_PACKET_LEN {
        return Err(Error::BadLength);
    }
    Ok(())
}

fn put_u16(buf: &mut [u8], at: field::Field, value: u16) {
    buf[at].copy_from_slice(&value.to_be_bytes());
}

fn put_u32(buf: &mut [u8], at: field::Field, value: u32) {
    buf[at].copy_from_slice(&value.to_be_bytes());
}

fn put_u64(buf: &mut [u8], at: field::Field, value: u64) {
    buf[at].copy_from_slice(&value.to_be_bytes());
}

pub(crate) fn emit(repr: &Repr<'_>, buf: &mut [u8]) {
    if let Err(e) = check(repr) {
        panic!("emitting a repr that check() rejects: {e}");
    }
    let len = buffer_len(repr);
    let buf = &mut buf[..len];
    {
        let mut packet = Packet::new_unchecked(&mut *buf);
        packet.set_version(VERSION);
        packet.set_packet_type(repr.packet_type());
        // `check` bounds the length by u16::MAX.
        packet.set_length(len as u16);
        packet.set_exposure_id(repr.exposure_id());
    }
    match repr {
        Repr::PullRequest(r) => {
            use field::pull::*;
            put_u32(buf, WINDOW_SIZE, r.window_size);
            put_u32(buf, LOSS_RATE, r.loss_rate_q16);
            put_u32(buf, FLAGS, r.flags.bits());
            put_u16(buf, VERSION_MIN, r.version_min);
            put_u16(buf, VERSION_MAX, r.version_max);
        }
        Repr::Manifest(r) => {
            use field::manifest::*;
            put_u64(buf, TOTAL_SIZE, r.total_size);
            put_u32(buf, CHUNK_COUNT, r.chunk_count);
            put_u32(buf, CHUNK_SIZE, r.chunk_size);
            buf[MERKLE_ROOT].copy_from_slice(&r.merkle_root);
            buf[FEC_N] = r.fec_n;
            buf[FEC_K] = r.fec_k;
            put_u16(buf, FLAGS, r.flags.bits());
            let mut at = LEN;
            if let Some(token) = &r.token {
                buf[TOKEN].copy_from_slice(token);
                at = TOKEN.end;
            }
            if let Some(cap) = r.rate_cap {
                put_u64(buf, at..at + RATE_CAP_LEN, cap);
            }
        }
        Repr::ChunkData(r) => {
            use field::chunk::*;
            put_u32(buf, CHUNK_INDEX, r.chunk_index);
            buf[PAYLOAD..].copy_from_slice(r.payload);
        }
        Repr::ChunkDataWithProof(r) => {
            use field::proof::*;
            put_u32(buf, CHUNK_INDEX, r.chunk_index);
            // `check` bounds the depth by 32.
            buf[PROOF_DEPTH] = r.depth() as u8;
            let payload_at = PROOF + r.proof.len();
            buf[PROOF..payload_at].copy_from_slice(r.proof);
            buf[payload_at..].copy_from_slice(r.payload);
        }
        Repr::FecParity(r) => {
            use field::fec::*;
            put_u32(buf, BLOCK_INDEX, r.block_index);
            buf[PARITY_INDEX] = r.parity_index;
            buf[FEC_N] = r.fec_n;
            buf[FEC_K] = r.fec_k;
            buf[RESERVED] = 0;
            buf[PAYLOAD..].copy_from_slice(r.payload);
        }
        Repr::Nak(r) => {
            use field::nak::*;
            // `check` bounds the count by u16::MAX.
            put_u16(buf, NAK_COUNT, r.indices.len() as u16);
            put_u16(buf, FLAGS, r.flags.bits());
            let list_end = INDICES + r.indices.len() * ENTRY_LEN;
            match r.indices {
                IndexList::Wire(bytes) => buf[INDICES..list_end].copy_from_slice(bytes),
                IndexList::Slice(values) => {
                    for (out, value) in buf[INDICES..list_end]
                        .chunks_exact_mut(ENTRY_LEN)
                        .zip(values)
                    {
                        out.copy_from_slice(&value.to_be_bytes());
                    }
                }
            }
            if let Some(token) = &r.token {
                buf[list_end..].copy_from_slice(token);
            }
        }
        Repr::RateReport(r) => {
            use field::rate::*;
            put_u32(buf, RTT_US, r.rtt_us);
            put_u32(buf, LOSS_RATE, r.loss_rate_q16);
            put_u32(buf, WINDOW_SIZE, r.window_size);
            put_u32(buf, RESERVED, 0);
            put_u64(buf, TIMESTAMP_US, r.timestamp_us);
        }
        Repr::Keepalive(r) => {
            use field::keepalive::*;
            put_u64(buf, TIMESTAMP_US, r.timestamp_us);
            put_u32(buf, RESERVED, 0);
        }
    }
}
