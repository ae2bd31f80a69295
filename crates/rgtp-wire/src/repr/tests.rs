use proptest::collection::vec;
use proptest::prelude::*;

use super::*;
use crate::packet::field;
use crate::{Packet, HEADER_LEN, MAX_PAYLOAD_UDP, TOKEN_LEN};

const ID: ExposureId = [
    0x00, 0x01, 0x02, 0x03, 0x04, 0x05, 0x06, 0x07, 0x08, 0x09, 0x0a, 0x0b, 0x0c, 0x0d, 0x0e, 0x0f,
];
const ROOT: Hash = [
    0x80, 0x81, 0x82, 0x83, 0x84, 0x85, 0x86, 0x87, 0x88, 0x89, 0x8a, 0x8b, 0x8c, 0x8d, 0x8e, 0x8f,
    0x90, 0x91, 0x92, 0x93, 0x94, 0x95, 0x96, 0x97, 0x98, 0x99, 0x9a, 0x9b, 0x9c, 0x9d, 0x9e, 0x9f,
];
const TOKEN: Token = [
    0xf0, 0xf1, 0xf2, 0xf3, 0xf4, 0xf5, 0xf6, 0xf7, 0xf8, 0xf9, 0xfa, 0xfb, 0xfc, 0xfd, 0xfe, 0xff,
];

#[rustfmt::skip]
static PULL_REQUEST_BYTES: [u8; 36] = [
    0x01, 0x01, 0x00, 0x24,
    0x00, 0x01, 0x02, 0x03, 0x04, 0x05, 0x06, 0x07, 0x08, 0x09, 0x0a, 0x0b, 0x0c, 0x0d, 0x0e, 0x0f,
    0x00, 0x00, 0x01, 0x00, // window_size 256
    0x00, 0x00, 0x0c, 0xcd, // loss_rate_q16 3277
    0x00, 0x00, 0x00, 0x03, // flags PROOFS | FEC
    0x00, 0x01,             // version_min
    0x00, 0x02,             // version_max
];

#[rustfmt::skip]
static MANIFEST_BYTES: [u8; 72] = [
    0x01, 0x02, 0x00, 0x48,
    0x00, 0x01, 0x02, 0x03, 0x04, 0x05, 0x06, 0x07, 0x08, 0x09, 0x0a, 0x0b, 0x0c, 0x0d, 0x0e, 0x0f,
    0x00, 0x00, 0x00, 0x00, 0x00, 0x10, 0x00, 0x00, // total_size 1 MiB
    0x00, 0x00, 0x03, 0x6a, // chunk_count 874
    0x00, 0x00, 0x04, 0xb0, // chunk_size 1200
    0x80, 0x81, 0x82, 0x83, 0x84, 0x85, 0x86, 0x87, 0x88, 0x89, 0x8a, 0x8b, 0x8c, 0x8d, 0x8e, 0x8f,
    0x90, 0x91, 0x92, 0x93, 0x94, 0x95, 0x96, 0x97, 0x98, 0x99, 0x9a, 0x9b, 0x9c, 0x9d, 0x9e, 0x9f,
    0x0a, 0x08,             // fec_n, fec_k
    0x00, 0x11,             // flags AES_256_GCM | PROOFS
];

#[rustfmt::skip]
static MANIFEST_TOKEN_BYTES: [u8; 88] = [
    0x01, 0x02, 0x00, 0x58,
    0x00, 0x01, 0x02, 0x03, 0x04, 0x05, 0x06, 0x07, 0x08, 0x09, 0x0a, 0x0b, 0x0c, 0x0d, 0x0e, 0x0f,
    0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, // total_size u64::MAX
    0x00, 0x00, 0x00, 0x00,
    0x00, 0x00, 0x00, 0x00,
    0x80, 0x81, 0x82, 0x83, 0x84, 0x85, 0x86, 0x87, 0x88, 0x89, 0x8a, 0x8b, 0x8c, 0x8d, 0x8e, 0x8f,
    0x90, 0x91, 0x92, 0x93, 0x94, 0x95, 0x96, 0x97, 0x98, 0x99, 0x9a, 0x9b, 0x9c, 0x9d, 0x9e, 0x9f,
    0x00, 0x00,
    0x00, 0x24,             // flags HASH_BLAKE3 | TOKEN
    0xf0, 0xf1, 0xf2, 0xf3, 0xf4, 0xf5, 0xf6, 0xf7, 0xf8, 0xf9, 0xfa, 0xfb, 0xfc, 0xfd, 0xfe, 0xff,
];

#[rustfmt::skip]
static CHUNK_DATA_BYTES: [u8; 28] = [
    0x01, 0x03, 0x00, 0x1c,
    0x00, 0x01, 0x02, 0x03, 0x04, 0x05, 0x06, 0x07, 0x08, 0x09, 0x0a, 0x0b, 0x0c, 0x0d, 0x0e, 0x0f,
    0x00, 0x00, 0x00, 0x2a, // chunk_index 42
    0xde, 0xad, 0xbe, 0xef, // payload
];

#[rustfmt::skip]
static CHUNK_DATA_WITH_PROOF_BYTES: [u8; 92] = [
    0x01, 0x04, 0x00, 0x5c,
    0x00, 0x01, 0x02, 0x03, 0x04, 0x05, 0x06, 0x07, 0x08, 0x09, 0x0a, 0x0b, 0x0c, 0x0d, 0x0e, 0x0f,
    0x00, 0x00, 0x00, 0x05, // chunk_index 5
    0x02,                   // proof_depth
    0x11, 0x11, 0x11, 0x11, 0x11, 0x11, 0x11, 0x11, 0x11, 0x11, 0x11, 0x11, 0x11, 0x11, 0x11, 0x11,
    0x11, 0x11, 0x11, 0x11, 0x11, 0x11, 0x11, 0x11, 0x11, 0x11, 0x11, 0x11, 0x11, 0x11, 0x11, 0x11,
    0x22, 0x22, 0x22, 0x22, 0x22, 0x22, 0x22, 0x22, 0x22, 0x22, 0x22, 0x22, 0x22, 0x22, 0x22, 0x22,
    0x22, 0x22, 0x22, 0x22, 0x22, 0x22, 0x22, 0x22, 0x22, 0x22, 0x22, 0x22, 0x22, 0x22, 0x22, 0x22,
    0xa1, 0xa2, 0xa3,       // payload
];

#[rustfmt::skip]
static FEC_PARITY_BYTES: [u8; 32] = [
    0x01, 0x05, 0x00, 0x20,
    0x00, 0x01, 0x02, 0x03, 0x04, 0x05, 0x06, 0x07, 0x08, 0x09, 0x0a, 0x0b, 0x0c, 0x0d, 0x0e, 0x0f,
    0x00, 0x00, 0x00, 0x07, // block_index 7
    0x01, 0x0a, 0x08, 0x00, // parity_index, fec_n, fec_k, reserved
    0xca, 0xfe, 0xba, 0xbe, // payload
];

#[rustfmt::skip]
static NAK_BYTES: [u8; 36] = [
    0x01, 0x06, 0x00, 0x24,
    0x00, 0x01, 0x02, 0x03, 0x04, 0x05, 0x06, 0x07, 0x08, 0x09, 0x0a, 0x0b, 0x0c, 0x0d, 0x0e, 0x0f,
    0x00, 0x03,             // nak_count
    0x00, 0x02,             // flags PROOFS
    0x00, 0x00, 0x00, 0x01,
    0x00, 0x00, 0x00, 0x05,
    0x80, 0x00, 0x07, 0x01, // parity entry: block 7, parity 1
];

#[rustfmt::skip]
static NAK_TOKEN_BYTES: [u8; 44] = [
    0x01, 0x06, 0x00, 0x2c,
    0x00, 0x01, 0x02, 0x03, 0x04, 0x05, 0x06, 0x07, 0x08, 0x09, 0x0a, 0x0b, 0x0c, 0x0d, 0x0e, 0x0f,
    0x00, 0x01,             // nak_count
    0x00, 0x01,             // flags TOKEN
    0x00, 0x00, 0x00, 0x09,
    0xf0, 0xf1, 0xf2, 0xf3, 0xf4, 0xf5, 0xf6, 0xf7, 0xf8, 0xf9, 0xfa, 0xfb, 0xfc, 0xfd, 0xfe, 0xff,
];

#[rustfmt::skip]
static RATE_REPORT_BYTES: [u8; 44] = [
    0x01, 0x07, 0x00, 0x2c,
    0x00, 0x01, 0x02, 0x03, 0x04, 0x05, 0x06, 0x07, 0x08, 0x09, 0x0a, 0x0b, 0x0c, 0x0d, 0x0e, 0x0f,
    0x00, 0x00, 0x61, 0xa8, // rtt_us 25000
    0x00, 0x00, 0x00, 0x64, // loss_rate_q16 100
    0x00, 0x00, 0x00, 0x40, // window_size 64
    0x00, 0x00, 0x00, 0x00, // reserved
    0x00, 0x06, 0x1c, 0x04, 0x4e, 0x6a, 0x10, 0x00, // timestamp_us
];

#[rustfmt::skip]
static KEEPALIVE_BYTES: [u8; 32] = [
    0x01, 0x08, 0x00, 0x20,
    0x00, 0x01, 0x02, 0x03, 0x04, 0x05, 0x06, 0x07, 0x08, 0x09, 0x0a, 0x0b, 0x0c, 0x0d, 0x0e, 0x0f,
    0x00, 0x06, 0x36, 0x04, 0x2b, 0x28, 0x40, 0x00, // timestamp_us
    0x00, 0x00, 0x00, 0x00, // reserved
];

static PROOF_BYTES: [u8; 64] = {
    let mut proof = [0x11; 64];
    let mut i = 32;
    while i < 64 {
        proof[i] = 0x22;
        i += 1;
    }
    proof
};

fn pull_request_repr() -> Repr<'static> {
    Repr::PullRequest(PullRequest {
        exposure_id: ID,
        window_size: 256,
        loss_rate_q16: 3277,
        flags: PullFlags::PROOFS | PullFlags::FEC,
        version_min: 1,
        version_max: 2,
    })
}

fn manifest_repr() -> Repr<'static> {
    Repr::Manifest(Manifest {
        exposure_id: ID,
        total_size: 1 << 20,
        chunk_count: 874,
        chunk_size: 1200,
        merkle_root: ROOT,
        fec_n: 10,
        fec_k: 8,
        flags: ManifestFlags::AES_256_GCM | ManifestFlags::PROOFS,
        token: None,
        rate_cap: None,
    })
}

fn manifest_token_repr() -> Repr<'static> {
    Repr::Manifest(Manifest {
        exposure_id: ID,
        total_size: u64::MAX,
        chunk_count: 0,
        chunk_size: 0,
        merkle_root: ROOT,
        fec_n: 0,
        fec_k: 0,
        flags: ManifestFlags::HASH_BLAKE3 | ManifestFlags::TOKEN,
        token: Some(TOKEN),
        rate_cap: None,
    })
}

fn chunk_data_repr() -> Repr<'static> {
    Repr::ChunkData(ChunkData {
        exposure_id: ID,
        chunk_index: 42,
        payload: &[0xde, 0xad, 0xbe, 0xef],
    })
}

fn chunk_data_with_proof_repr() -> Repr<'static> {
    Repr::ChunkDataWithProof(ChunkDataWithProof {
        exposure_id: ID,
        chunk_index: 5,
        proof: &PROOF_BYTES,
        payload: &[0xa1, 0xa2, 0xa3],
    })
}

fn fec_parity_repr() -> Repr<'static> {
    Repr::FecParity(FecParity {
        exposure_id: ID,
        block_index: 7,
        parity_index: 1,
        fec_n: 10,
        fec_k: 8,
        payload: &[0xca, 0xfe, 0xba, 0xbe],
    })
}

fn nak_repr() -> Repr<'static> {
    Repr::Nak(Nak {
        exposure_id: ID,
        flags: NakFlags::PROOFS,
        indices: IndexList::Slice(&[1, 5, NAK_PARITY_BIT | 7 << 8 | 1]),
        token: None,
    })
}

fn nak_token_repr() -> Repr<'static> {
    Repr::Nak(Nak {
        exposure_id: ID,
        flags: NakFlags::TOKEN,
        indices: IndexList::Slice(&[9]),
        token: Some(TOKEN),
    })
}

fn rate_report_repr() -> Repr<'static> {
    Repr::RateReport(RateReport {
        exposure_id: ID,
        rtt_us: 25_000,
        loss_rate_q16: 100,
        window_size: 64,
        timestamp_us: 0x0006_1c04_4e6a_1000,
    })
}

fn keepalive_repr() -> Repr<'static> {
    Repr::Keepalive(Keepalive {
        exposure_id: ID,
        timestamp_us: 0x0006_3604_2b28_4000,
    })
}

/// Every static sample with its repr.
fn samples() -> Vec<(&'static [u8], Repr<'static>)> {
    vec![
        (&PULL_REQUEST_BYTES[..], pull_request_repr()),
        (&MANIFEST_BYTES[..], manifest_repr()),
        (&MANIFEST_TOKEN_BYTES[..], manifest_token_repr()),
        (&CHUNK_DATA_BYTES[..], chunk_data_repr()),
        (
            &CHUNK_DATA_WITH_PROOF_BYTES[..],
            chunk_data_with_proof_repr(),
        ),
        (&FEC_PARITY_BYTES[..], fec_parity_repr()),
        (&NAK_BYTES[..], nak_repr()),
        (&NAK_TOKEN_BYTES[..], nak_token_repr()),
        (&RATE_REPORT_BYTES[..], rate_report_repr()),
        (&KEEPALIVE_BYTES[..], keepalive_repr()),
    ]
}

fn parse(bytes: &[u8]) -> Result<Repr<'_>, Error> {
    Repr::parse(bytes, MAX_PAYLOAD_UDP)
}

/// Copies `bytes`, applies `edit`, and rewrites the Length field to the new length.
fn edited(bytes: &[u8], edit: impl FnOnce(&mut Vec<u8>)) -> Vec<u8> {
    let mut out = bytes.to_vec();
    edit(&mut out);
    let len = u16::try_from(out.len()).unwrap();
    out[2..4].copy_from_slice(&len.to_be_bytes());
    out
}

#[test]
fn test_deconstruct() {
    let packet = Packet::new_checked(&CHUNK_DATA_BYTES[..]).unwrap();
    assert_eq!(packet.version(), 1);
    assert_eq!(packet.type_byte(), 0x03);
    assert_eq!(packet.packet_type(), Some(PacketType::ChunkData));
    assert_eq!(packet.length(), 28);
    assert_eq!(packet.exposure_id(), ID);
    assert_eq!(packet.body(), &CHUNK_DATA_BYTES[HEADER_LEN..]);
    for (bytes, repr) in samples() {
        let packet = Packet::new_checked(bytes).unwrap();
        assert_eq!(packet.packet_type(), Some(repr.packet_type()));
        assert_eq!(usize::from(packet.length()), bytes.len());
        assert_eq!(&packet.exposure_id(), repr.exposure_id());
    }
}

#[test]
fn test_construct() {
    let mut bytes = vec![0xa5; 28];
    let mut packet = Packet::new_unchecked(&mut bytes);
    packet.set_version(1);
    packet.set_packet_type(PacketType::ChunkData);
    packet.set_length(28);
    packet.set_exposure_id(&ID);
    packet.body_mut()[16..].copy_from_slice(&[0, 0, 0, 42, 0xde, 0xad, 0xbe, 0xef]);
    assert_eq!(packet.into_inner().as_slice(), &CHUNK_DATA_BYTES[..]);
}

#[test]
fn test_parse() {
    for (bytes, repr) in samples() {
        assert_eq!(parse(bytes), Ok(repr), "{:?}", repr.packet_type());
    }
}

#[test]
fn test_parse_fields() {
    let Ok(Repr::PullRequest(r)) = parse(&PULL_REQUEST_BYTES) else {
        panic!()
    };
    assert_eq!(r.exposure_id, ID);
    assert_eq!((r.window_size, r.loss_rate_q16), (256, 3277));
    assert_eq!(r.flags, PullFlags::PROOFS | PullFlags::FEC);
    assert_eq!((r.version_min, r.version_max), (1, 2));

    let Ok(Repr::Manifest(r)) = parse(&MANIFEST_TOKEN_BYTES) else {
        panic!()
    };
    assert_eq!(r.total_size, u64::MAX);
    assert_eq!((r.chunk_count, r.chunk_size), (0, 0));
    assert_eq!(r.merkle_root, ROOT);
    assert_eq!(r.flags, ManifestFlags::HASH_BLAKE3 | ManifestFlags::TOKEN);
    assert_eq!(r.token, Some(TOKEN));

    let Ok(Repr::ChunkDataWithProof(r)) = parse(&CHUNK_DATA_WITH_PROOF_BYTES) else {
        panic!()
    };
    assert_eq!(r.chunk_index, 5);
    assert_eq!(r.depth(), 2);
    let siblings: Vec<_> = r.siblings().collect();
    assert_eq!(siblings, [&[0x11; 32], &[0x22; 32]]);
    assert_eq!(r.payload, [0xa1, 0xa2, 0xa3]);
    // Zero-copy: the proof and payload borrow from the datagram.
    assert!(core::ptr::eq(
        r.proof.as_ptr(),
        &CHUNK_DATA_WITH_PROOF_BYTES[25]
    ));

    let Ok(Repr::FecParity(r)) = parse(&FEC_PARITY_BYTES) else {
        panic!()
    };
    assert_eq!(
        (r.block_index, r.parity_index, r.fec_n, r.fec_k),
        (7, 1, 10, 8)
    );
    assert_eq!(r.payload, [0xca, 0xfe, 0xba, 0xbe]);

    let Ok(Repr::Nak(r)) = parse(&NAK_BYTES) else {
        panic!()
    };
    assert!(matches!(r.indices, IndexList::Wire(b) if b.len() == 12));
    assert_eq!(r.indices.iter().collect::<Vec<_>>(), [1, 5, 0x8000_0701]);
    assert_eq!((r.flags, r.token), (NakFlags::PROOFS, None));

    let Ok(Repr::RateReport(r)) = parse(&RATE_REPORT_BYTES) else {
        panic!()
    };
    assert_eq!(
        (r.rtt_us, r.loss_rate_q16, r.window_size),
        (25_000, 100, 64)
    );
    assert_eq!(r.timestamp_us, 0x0006_1c04_4e6a_1000);
}

#[test]
fn test_emit() {
    for (bytes, repr) in samples() {
        assert_eq!(repr.check(), Ok(()));
        assert_eq!(repr.buffer_len(), bytes.len());
        let mut buf = vec![0xa5; repr.buffer_len()];
        repr.emit(&mut buf);
        assert_eq!(buf, bytes, "{:?}", repr.packet_type());
    }
}

#[test]
fn test_emit_leaves_tail_alone() {
    let repr = keepalive_repr();
    let mut buf = vec![0xa5; repr.buffer_len() + 3];
    repr.emit(&mut buf);
    assert_eq!(&buf[..32], &KEEPALIVE_BYTES[..]);
    assert_eq!(&buf[32..], [0xa5; 3]);
}

#[test]
#[should_panic]
fn test_emit_short_buffer_panics() {
    let repr = keepalive_repr();
    repr.emit(&mut [0; 31]);
}

#[test]
#[should_panic(expected = "check")]
fn test_emit_rejected_repr_panics() {
    let Repr::Manifest(mut m) = manifest_repr() else {
        unreachable!()
    };
    m.token = Some(TOKEN);
    Repr::Manifest(m).emit(&mut [0; 88]);
}

#[test]
fn test_reserved_ignored() {
    let fec = edited(&FEC_PARITY_BYTES, |b| b[field::fec::RESERVED] = 0xff);
    assert_eq!(parse(&fec), Ok(fec_parity_repr()));
    let rate = edited(&RATE_REPORT_BYTES, |b| b[field::rate::RESERVED].fill(0xff));
    assert_eq!(parse(&rate), Ok(rate_report_repr()));
    let keepalive = edited(&KEEPALIVE_BYTES, |b| {
        b[field::keepalive::RESERVED].fill(0xff)
    });
    assert_eq!(parse(&keepalive), Ok(keepalive_repr()));
}

#[test]
fn test_unknown_flag_bits_kept() {
    let pull = edited(&PULL_REQUEST_BYTES, |b| {
        b[field::pull::FLAGS].copy_from_slice(&[0xf0, 0, 0, 0x07])
    });
    let repr = parse(&pull).unwrap();
    let Repr::PullRequest(r) = repr else { panic!() };
    assert_eq!(r.flags.bits(), 0xf000_0007);
    let mut buf = vec![0xa5; repr.buffer_len()];
    repr.emit(&mut buf);
    assert_eq!(buf, pull);

    let nak = edited(&NAK_BYTES, |b| {
        b[field::nak::FLAGS].copy_from_slice(&[0x80, 0x02])
    });
    let repr = parse(&nak).unwrap();
    let Repr::Nak(r) = repr else { panic!() };
    assert_eq!(r.flags.bits(), 0x8002);
    let mut buf = vec![0xa5; repr.buffer_len()];
    repr.emit(&mut buf);
    assert_eq!(buf, nak);
}

#[test]
fn test_empty_payloads() {
    let chunk = edited(&CHUNK_DATA_BYTES, |b| b.truncate(24));
    let Ok(Repr::ChunkData(r)) = parse(&chunk) else {
        panic!()
    };
    assert!(r.payload.is_empty());
    let proof = edited(&CHUNK_DATA_WITH_PROOF_BYTES, |b| {
        b[24] = 0;
        b.truncate(25);
    });
    let Ok(Repr::ChunkDataWithProof(r)) = parse(&proof) else {
        panic!()
    };
    assert!(r.proof.is_empty() && r.payload.is_empty());
    let fec = edited(&FEC_PARITY_BYTES, |b| b.truncate(28));
    let Ok(Repr::FecParity(r)) = parse(&fec) else {
        panic!()
    };
    assert!(r.payload.is_empty());
}

#[test]
fn test_short_header() {
    for len in 0..HEADER_LEN {
        assert_eq!(parse(&KEEPALIVE_BYTES[..len]), Err(Error::Truncated));
    }
}

#[test]
fn test_unknown_version() {
    for version in [0, 2, 0xff] {
        let bytes = edited(&KEEPALIVE_BYTES, |b| b[0] = version);
        assert_eq!(parse(&bytes), Err(Error::UnknownVersion(version)));
    }
    // Version is checked before type and length.
    assert_eq!(parse(&[0, 0, 0, 0]), Err(Error::UnknownVersion(0)));
}

#[test]
fn test_unknown_type() {
    for ty in [0, 9, 0xff] {
        let bytes = edited(&KEEPALIVE_BYTES, |b| b[1] = ty);
        assert_eq!(parse(&bytes), Err(Error::UnknownType(ty)));
    }
    // Type is checked before length.
    assert_eq!(parse(&[1, 9, 0, 0]), Err(Error::UnknownType(9)));
}

#[test]
fn test_length_mismatch() {
    let mut bytes = KEEPALIVE_BYTES;
    bytes[3] = 33;
    assert_eq!(
        parse(&bytes),
        Err(Error::LengthMismatch {
            declared: 33,
            actual: 32
        })
    );
    bytes[3] = 31;
    assert_eq!(
        parse(&bytes),
        Err(Error::LengthMismatch {
            declared: 31,
            actual: 32
        })
    );
    // A datagram longer than any Length field can describe.
    let mut big = vec![0; 70_000];
    big[..4].copy_from_slice(&[1, 3, 0xff, 0xff]);
    assert_eq!(
        parse(&big),
        Err(Error::LengthMismatch {
            declared: 0xffff,
            actual: 70_000
        })
    );
}

#[test]
fn test_truncated_fixed_part() {
    let fixed = [
        (0x01, 36),
        (0x02, 72),
        (0x03, 24),
        (0x04, 25),
        (0x05, 28),
        (0x06, 24),
        (0x07, 44),
        (0x08, 32),
    ];
    for (ty, fixed_len) in fixed {
        assert_eq!(PacketType::try_from(ty).unwrap().fixed_len(), fixed_len);
        for len in HEADER_LEN..fixed_len {
            let bytes = edited(&[1, ty, 0, 0], |b| b.resize(len, 0));
            assert_eq!(parse(&bytes), Err(Error::Truncated), "type {ty} len {len}");
        }
    }
}

#[test]
fn test_truncated_every_prefix() {
    for (bytes, _) in samples() {
        for len in 0..bytes.len() {
            // As received: Length still claims the full packet.
            assert!(parse(&bytes[..len]).is_err());
            // Length rewritten to match: still never parses to a different type or panics.
            if len >= HEADER_LEN {
                let cut = edited(&bytes[..len], |_| {});
                let result = parse(&cut);
                if len < PacketType::try_from(bytes[1]).unwrap().fixed_len() {
                    assert_eq!(result, Err(Error::Truncated));
                }
            }
        }
    }
}

#[test]
fn test_fixed_too_long() {
    for bytes in [
        &PULL_REQUEST_BYTES[..],
        &RATE_REPORT_BYTES[..],
        &KEEPALIVE_BYTES[..],
    ] {
        let long = edited(bytes, |b| b.push(0));
        assert_eq!(parse(&long), Err(Error::BadLength));
    }
}

#[test]
fn test_manifest_bad_length() {
    let long = edited(&MANIFEST_BYTES, |b| b.push(0));
    assert_eq!(parse(&long), Err(Error::BadLength));
    let flag_no_token = edited(&MANIFEST_TOKEN_BYTES, |b| b.truncate(72));
    assert_eq!(parse(&flag_no_token), Err(Error::BadLength));
    let token_no_flag = edited(&MANIFEST_BYTES, |b| b.extend_from_slice(&TOKEN));
    assert_eq!(parse(&token_no_flag), Err(Error::BadLength));
    let token_too_long = edited(&MANIFEST_TOKEN_BYTES, |b| b.push(0));
    assert_eq!(parse(&token_too_long), Err(Error::BadLength));
    // Length is checked before the flags are validated.
    let both = edited(&MANIFEST_BYTES, |b| {
        b[field::manifest::FLAGS].copy_from_slice(&[0, 0x46]);
        b.push(0);
    });
    assert_eq!(parse(&both), Err(Error::BadLength));
}

#[test]
fn test_manifest_bad_flags() {
    for flags in [0x0200u16, 0x8000, 0xffdf, 0x0006, 0x0026, 0x0086] {
        let bytes = edited(&MANIFEST_BYTES, |b| {
            b[field::manifest::FLAGS].copy_from_slice(&flags.to_be_bytes());
            if flags & ManifestFlags::TOKEN.bits() != 0 {
                b.extend_from_slice(&TOKEN);
            }
            if flags & ManifestFlags::RATE_CAP.bits() != 0 {
                b.extend_from_slice(&[0, 0, 0, 0, 0, 0x1e, 0x84, 0x80]);
            }
        });
        assert_eq!(parse(&bytes), Err(Error::BadFlags), "flags {flags:#06x}");
    }
}

#[test]
fn test_manifest_rate_cap() {
    let cap = 2_000_000u64;
    let with_cap = |token: bool| {
        edited(
            if token {
                &MANIFEST_TOKEN_BYTES[..]
            } else {
                &MANIFEST_BYTES[..]
            },
            |b| {
                let f = u16::from_be_bytes([b[70], b[71]]) | ManifestFlags::RATE_CAP.bits();
                b[field::manifest::FLAGS].copy_from_slice(&f.to_be_bytes());
                b.extend_from_slice(&cap.to_be_bytes());
            },
        )
    };
    for token in [false, true] {
        let bytes = with_cap(token);
        assert_eq!(bytes.len(), if token { 96 } else { 80 });
        let Ok(Repr::Manifest(m)) = parse(&bytes) else {
            panic!("{:?}", parse(&bytes))
        };
        assert_eq!(m.rate_cap, Some(cap));
        assert_eq!(m.token.is_some(), token);
        // The cap follows the token: emitting the repr gives the same bytes.
        let mut out = vec![0; Repr::Manifest(m).buffer_len()];
        Repr::Manifest(m).emit(&mut out);
        assert_eq!(out, bytes);
        // The flag without the 8 bytes, or the bytes without the flag: BadLength.
        let mut short = bytes[..bytes.len() - 8].to_vec();
        let short_len = short.len() as u16;
        short[2..4].copy_from_slice(&short_len.to_be_bytes());
        assert_eq!(parse(&short), Err(Error::BadLength));
        let mut unflagged = bytes.clone();
        let f = u16::from_be_bytes([bytes[70], bytes[71]]) & !ManifestFlags::RATE_CAP.bits();
        unflagged[70..72].copy_from_slice(&f.to_be_bytes());
        assert_eq!(parse(&unflagged), Err(Error::BadLength));
        // A repr whose flag and field disagree does not emit.
        let bad = Manifest {
            rate_cap: None,
            ..m
        };
        assert_eq!(Repr::Manifest(bad).check(), Err(Error::BadFlags));
    }
}

#[test]
fn test_bad_proof_depth() {
    // Depth 33, with all 33 hashes present.
    let deep = edited(&CHUNK_DATA_WITH_PROOF_BYTES, |b| {
        b[24] = 33;
        b.truncate(25);
        b.resize(25 + 33 * 32, 0x11);
    });
    assert_eq!(parse(&deep), Err(Error::BadProofDepth));
    // Depth 32 exactly is fine.
    let max = edited(&deep, |b| {
        b[24] = 32;
        b.truncate(25 + 32 * 32);
    });
    assert!(
        matches!(parse(&max), Ok(Repr::ChunkDataWithProof(r)) if r.depth() == 32 && r.payload.is_empty())
    );
    // Depth pointing beyond the packet.
    let beyond = edited(&CHUNK_DATA_WITH_PROOF_BYTES, |b| b[24] = 3);
    assert_eq!(parse(&beyond), Err(Error::BadProofDepth));
    let huge = edited(&CHUNK_DATA_WITH_PROOF_BYTES, |b| b[24] = 0xff);
    assert_eq!(parse(&huge), Err(Error::BadProofDepth));
    // Proof depth is checked before the payload limit.
    assert_eq!(Repr::parse(&beyond, 0), Err(Error::BadProofDepth));
}

#[test]
fn test_bad_nak_count() {
    let more = edited(&NAK_BYTES, |b| b[21] = 4);
    assert_eq!(parse(&more), Err(Error::BadNakCount));
    let fewer = edited(&NAK_BYTES, |b| b[21] = 2);
    assert_eq!(parse(&fewer), Err(Error::BadNakCount));
    let ragged = edited(&NAK_BYTES, |b| b.push(0));
    assert_eq!(parse(&ragged), Err(Error::BadNakCount));
    let flag_no_token = edited(&NAK_TOKEN_BYTES, |b| b.truncate(28));
    assert_eq!(parse(&flag_no_token), Err(Error::BadNakCount));
    let token_no_flag = edited(&NAK_TOKEN_BYTES, |b| b[23] = 0);
    assert_eq!(parse(&token_no_flag), Err(Error::BadNakCount));
}

#[test]
fn test_payload_too_large() {
    for (bytes, payload_len) in [
        (&CHUNK_DATA_BYTES[..], 4),
        (&CHUNK_DATA_WITH_PROOF_BYTES[..], 3),
        (&FEC_PARITY_BYTES[..], 4),
    ] {
        assert!(Repr::parse(bytes, payload_len).is_ok());
        assert_eq!(
            Repr::parse(bytes, payload_len - 1),
            Err(Error::PayloadTooLarge)
        );
    }
    let big = edited(&CHUNK_DATA_BYTES, |b| b.resize(24 + MAX_PAYLOAD_UDP + 1, 0));
    assert_eq!(parse(&big), Err(Error::PayloadTooLarge));
    // Other types have no payload to bound.
    assert_eq!(Repr::parse(&NAK_BYTES, 0), Ok(nak_repr()));
}

#[test]
fn test_check() {
    let Repr::Manifest(m) = manifest_repr() else {
        unreachable!()
    };
    let bad = |m: Manifest| Repr::Manifest(m).check();
    assert_eq!(
        bad(Manifest {
            token: Some(TOKEN),
            ..m
        }),
        Err(Error::BadFlags)
    );
    let Repr::Manifest(t) = manifest_token_repr() else {
        unreachable!()
    };
    assert_eq!(bad(Manifest { token: None, ..t }), Err(Error::BadFlags));
    let both = ManifestFlags::HASH_SHA256 | ManifestFlags::HASH_BLAKE3;
    assert_eq!(bad(Manifest { flags: both, ..m }), Err(Error::BadFlags));
    let unknown = ManifestFlags::from_bits_retain(0x0200);
    assert_eq!(
        bad(Manifest {
            flags: unknown,
            ..m
        }),
        Err(Error::BadFlags)
    );

    let Repr::Nak(n) = nak_repr() else {
        unreachable!()
    };
    let nak = |n: Nak<'_>| Repr::Nak(n).check();
    assert_eq!(
        nak(Nak {
            token: Some(TOKEN),
            ..n
        }),
        Err(Error::BadFlags)
    );
    assert_eq!(
        nak(Nak {
            flags: NakFlags::TOKEN,
            ..n
        }),
        Err(Error::BadFlags)
    );
    assert_eq!(
        nak(Nak {
            indices: IndexList::Wire(&[0; 7]),
            ..n
        }),
        Err(Error::BadNakCount)
    );
    let many = vec![0u32; 65_536];
    assert_eq!(
        nak(Nak {
            indices: IndexList::Slice(&many),
            ..n
        }),
        Err(Error::BadNakCount)
    );
    // 16380 entries: count fits in u16 but the packet (65544 bytes) does not.
    assert_eq!(
        nak(Nak {
            indices: IndexList::Slice(&many[..16_380]),
            ..n
        }),
        Err(Error::BadLength)
    );
    assert_eq!(
        nak(Nak {
            indices: IndexList::Slice(&many[..16_377]),
            ..n
        }),
        Ok(())
    );

    let Repr::ChunkDataWithProof(c) = chunk_data_with_proof_repr() else {
        unreachable!()
    };
    let proof = |p: &[u8]| Repr::ChunkDataWithProof(ChunkDataWithProof { proof: p, ..c }).check();
    assert_eq!(proof(&[0; 33]), Err(Error::BadProofDepth));
    assert_eq!(proof(&[0; 33 * 32]), Err(Error::BadProofDepth));
    assert_eq!(proof(&[0; 32 * 32]), Ok(()));

    let payload = vec![0; 65_535 - 24];
    let chunk = ChunkData {
        exposure_id: ID,
        chunk_index: 0,
        payload: &payload,
    };
    assert_eq!(Repr::ChunkData(chunk).check(), Ok(()));
    let chunk = ChunkData {
        payload: &[0; 65_535 - 23],
        ..chunk
    };
    assert_eq!(Repr::ChunkData(chunk).check(), Err(Error::BadLength));
}

#[test]
fn test_largest_packet() {
    let payload = vec![0x5a; 65_535 - 28];
    let repr = Repr::FecParity(FecParity {
        exposure_id: ID,
        block_index: 1,
        parity_index: 2,
        fec_n: 3,
        fec_k: 4,
        payload: &payload,
    });
    let mut buf = vec![0xa5; repr.buffer_len()];
    repr.emit(&mut buf);
    assert_eq!(&buf[2..4], [0xff, 0xff]);
    assert_eq!(Repr::parse(&buf, usize::MAX), Ok(repr));
}

/// Emits `repr` (which must pass `check`), parses it back and compares.
fn round_trip(repr: Repr<'_>) -> Result<(), TestCaseError> {
    prop_assert_eq!(repr.check(), Ok(()));
    let mut buf = vec![0xa5; repr.buffer_len()];
    repr.emit(&mut buf);
    let parsed = Repr::parse(&buf, MAX_PAYLOAD_UDP);
    prop_assert_eq!(parsed, Ok(repr));
    Ok(())
}

fn manifest_flags() -> impl Strategy<Value = ManifestFlags> {
    any::<u16>().prop_map(|bits| {
        let mut flags = ManifestFlags::from_bits_truncate(bits);
        if flags.contains(ManifestFlags::HASH_SHA256) {
            flags.remove(ManifestFlags::HASH_BLAKE3);
        }
        flags
    })
}

fn payload() -> impl Strategy<Value = Vec<u8>> {
    vec(any::<u8>(), 0..=MAX_PAYLOAD_UDP)
}

proptest! {
    #[test]
    fn proptest_round_trip_pull_request(
        exposure_id in any::<ExposureId>(),
        window_size in any::<u32>(),
        loss_rate_q16 in any::<u32>(),
        flags in any::<u32>(),
        version_min in any::<u16>(),
        version_max in any::<u16>(),
    ) {
        let flags = PullFlags::from_bits_retain(flags);
        round_trip(Repr::PullRequest(PullRequest {
            exposure_id, window_size, loss_rate_q16, flags, version_min, version_max,
        }))?;
    }

    #[test]
    fn proptest_round_trip_manifest(
        exposure_id in any::<ExposureId>(),
        total_size in any::<u64>(),
        chunk_count in any::<u32>(),
        chunk_size in any::<u32>(),
        merkle_root in any::<Hash>(),
        fec_n in any::<u8>(),
        fec_k in any::<u8>(),
        mut flags in manifest_flags(),
        token in any::<Option<Token>>(),
        rate_cap in any::<Option<u64>>(),
    ) {
        flags.set(ManifestFlags::TOKEN, token.is_some());
        flags.set(ManifestFlags::RATE_CAP, rate_cap.is_some());
        round_trip(Repr::Manifest(Manifest {
            exposure_id, total_size, chunk_count, chunk_size, merkle_root, fec_n, fec_k, flags, token,
            rate_cap,
        }))?;
    }

    #[test]
    fn proptest_round_trip_chunk_data(
        exposure_id in any::<ExposureId>(),
        chunk_index in any::<u32>(),
        payload in payload(),
    ) {
        round_trip(Repr::ChunkData(ChunkData { exposure_id, chunk_index, payload: &payload }))?;
    }

    #[test]
    fn proptest_round_trip_chunk_data_with_proof(
        exposure_id in any::<ExposureId>(),
        chunk_index in any::<u32>(),
        proof in (0usize..=32).prop_flat_map(|depth| vec(any::<u8>(), depth * 32)),
        payload in payload(),
    ) {
        round_trip(Repr::ChunkDataWithProof(ChunkDataWithProof {
            exposure_id, chunk_index, proof: &proof, payload: &payload,
        }))?;
    }

    #[test]
    fn proptest_round_trip_fec_parity(
        exposure_id in any::<ExposureId>(),
        block_index in any::<u32>(),
        parity_index in any::<u8>(),
        fec_n in any::<u8>(),
        fec_k in any::<u8>(),
        payload in payload(),
    ) {
        round_trip(Repr::FecParity(FecParity {
            exposure_id, block_index, parity_index, fec_n, fec_k, payload: &payload,
        }))?;
    }

    #[test]
    fn proptest_round_trip_nak(
        exposure_id in any::<ExposureId>(),
        flags in any::<u16>(),
        indices in vec(any::<u32>(), 0..=300),
        token in any::<Option<Token>>(),
    ) {
        let mut flags = NakFlags::from_bits_retain(flags);
        flags.set(NakFlags::TOKEN, token.is_some());
        let repr = Repr::Nak(Nak { exposure_id, flags, indices: IndexList::Slice(&indices), token });
        round_trip(repr)?;
        // The same list given as wire bytes emits identically.
        let wire: Vec<u8> = indices.iter().flat_map(|i| i.to_be_bytes()).collect();
        let wire_repr = Repr::Nak(Nak { exposure_id, flags, indices: IndexList::Wire(&wire), token });
        prop_assert_eq!(repr, wire_repr);
        let (mut a, mut b) = (vec![0; repr.buffer_len()], vec![0; wire_repr.buffer_len()]);
        repr.emit(&mut a);
        wire_repr.emit(&mut b);
        prop_assert_eq!(a, b);
    }

    #[test]
    fn proptest_round_trip_rate_report(
        exposure_id in any::<ExposureId>(),
        rtt_us in any::<u32>(),
        loss_rate_q16 in any::<u32>(),
        window_size in any::<u32>(),
        timestamp_us in any::<u64>(),
    ) {
        round_trip(Repr::RateReport(RateReport {
            exposure_id, rtt_us, loss_rate_q16, window_size, timestamp_us,
        }))?;
    }

    #[test]
    fn proptest_round_trip_keepalive(exposure_id in any::<ExposureId>(), timestamp_us in any::<u64>()) {
        round_trip(Repr::Keepalive(Keepalive { exposure_id, timestamp_us }))?;
    }

    #[test]
    fn proptest_parse_never_panics(data in vec(any::<u8>(), 0..2048), max_payload in 0usize..2000) {
        let _ = Repr::parse(&data, max_payload);
    }

    /// Bytes behind a valid header: whatever parses re-emits to the same
    /// bytes, reserved fields aside.
    #[test]
    fn proptest_parse_emit_identity(ty in 1u8..=8, body in vec(any::<u8>(), 0..1600)) {
        let data = edited(&[1, ty, 0, 0], |b| b.extend_from_slice(&body));
        if let Ok(repr) = Repr::parse(&data, MAX_PAYLOAD_UDP) {
            prop_assert_eq!(repr.check(), Ok(()));
            let mut expected = data.clone();
            match repr {
                Repr::FecParity(_) => expected[field::fec::RESERVED] = 0,
                Repr::RateReport(_) => expected[field::rate::RESERVED].fill(0),
                Repr::Keepalive(_) => expected[field::keepalive::RESERVED].fill(0),
                _ => {}
            }
            let mut buf = vec![0xa5; repr.buffer_len()];
            repr.emit(&mut buf);
            prop_assert_eq!(buf, expected);
        }
    }
}

#[test]
fn test_token_len_is_consistent() {
    assert_eq!(field::manifest::TOKEN.len(), TOKEN_LEN);
    assert_eq!(
        field::manifest::LEN_WITH_TOKEN,
        field::manifest::LEN + TOKEN_LEN
    );
}

#[cfg(feature = "arbitrary")]
proptest! {
    #[test]
    fn proptest_round_trip_arbitrary(data in vec(any::<u8>(), 0..4096)) {
        use arbitrary::{Arbitrary, Unstructured};
        let mut u = Unstructured::new(&data);
        if let Ok(repr) = Repr::arbitrary(&mut u) {
            round_trip(repr)?;
        }
    }
}

#[test]
fn a_chunk_data_header_then_its_payload_is_the_emitted_packet() {
    for (index, payload_len) in [(0u32, 0usize), (7, 1216), (u32::MAX, 65_511)] {
        let payload: Vec<u8> = (0..payload_len).map(|i| (i * 13) as u8).collect();
        let id = [0x5a; 16];
        let repr = Repr::ChunkData(ChunkData {
            exposure_id: id,
            chunk_index: index,
            payload: &payload,
        });
        let mut emitted = vec![0xee; repr.buffer_len()];
        repr.emit(&mut emitted);
        let mut ready = vec![0xee; ChunkData::HEADER_LEN];
        ChunkData::emit_header(&id, index, payload_len, &mut ready);
        ready.extend_from_slice(&payload);
        assert_eq!(ready, emitted, "chunk {index}, {payload_len}-byte payload");
    }
}
