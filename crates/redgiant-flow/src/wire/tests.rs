use proptest::prelude::*;

use super::*;
use crate::seal::{FlowCipher, FlowKey};

/// DATA from flow 7 to flow 9, SDU 0x00010002, fragment 2 of 3, payload "hi".
static PACKET_BYTES: [u8; 20] = [
    0x01, 0x04, 0x00, 0x00, 0x00, 0x07, 0x00, 0x00, 0x00, 0x09, 0x00, 0x01, 0x00, 0x02, 0x00, 0x02,
    0x00, 0x03, b'h', b'i',
];

fn packet_repr() -> Repr<'static> {
    Repr {
        src: FlowId(7),
        dst: FlowId(9),
        message: Message::Data {
            seq: 0x0001_0002,
            frag: Frag { index: 2, count: 3 },
            payload: b"hi",
        },
    }
}

#[test]
fn test_deconstruct() {
    let p = Packet::new_checked(&PACKET_BYTES[..]).unwrap();
    assert_eq!(p.version(), 1);
    assert_eq!(p.kind_code(), Kind::Data as u8);
    assert_eq!(p.src(), FlowId(7));
    assert_eq!(p.dst(), FlowId(9));
    assert_eq!(p.seq(), 0x0001_0002);
    assert_eq!(p.frag(), Frag { index: 2, count: 3 });
    assert_eq!(p.body(), b"hi");
}

#[test]
fn test_construct() {
    let mut bytes = vec![0xa5; PACKET_BYTES.len()];
    let mut p = Packet::new_unchecked(&mut bytes);
    p.set_version(VERSION);
    p.set_kind(Kind::Data);
    p.set_src(FlowId(7));
    p.set_dst(FlowId(9));
    p.set_seq(0x0001_0002);
    p.set_frag(Frag { index: 2, count: 3 });
    p.body_mut().copy_from_slice(b"hi");
    assert_eq!(bytes, PACKET_BYTES);
}

#[test]
fn test_parse() {
    assert_eq!(Repr::parse(&PACKET_BYTES).unwrap(), packet_repr());
}

#[test]
fn test_emit() {
    let r = packet_repr();
    assert_eq!(r.buffer_len(), PACKET_BYTES.len());
    let mut bytes = vec![0xa5; r.buffer_len()];
    r.emit(&mut bytes);
    assert_eq!(bytes, PACKET_BYTES);
}

#[test]
fn test_short_view_is_refused() {
    assert_eq!(
        Packet::new_checked(&PACKET_BYTES[..HEADER_LEN - 1]).unwrap_err(),
        Error::Truncated
    );
    assert!(Packet::new_checked(&PACKET_BYTES[..HEADER_LEN]).is_ok());
}

#[test]
fn test_validate() {
    let mut r = packet_repr();
    assert_eq!(r.validate(), Ok(()));
    r.src = FlowId(0);
    assert_eq!(r.validate(), Err(Error::ZeroFlowId));
    let long = "n".repeat(MAX_NAME_LEN + 1);
    let alloc = Repr {
        src: FlowId(1),
        dst: FlowId(0),
        message: Message::Alloc {
            qos: QoS::DATA,
            name: &long,
        },
    };
    assert_eq!(alloc.validate(), Err(Error::NameTooLong));
    let alloc = Repr {
        message: Message::Alloc {
            qos: QoS::DATA,
            name: &long[..MAX_NAME_LEN],
        },
        ..alloc
    };
    assert_eq!(alloc.validate(), Ok(()));
    let refused = Repr {
        src: FlowId(0),
        dst: FlowId(3),
        message: Message::AllocRefused(Reason::NoSuchName),
    };
    assert_eq!(refused.validate(), Ok(()));
}

/// One record of `spec/vectors/flow.txt`.
type Record = Vec<(String, String)>;

fn records() -> Vec<Record> {
    let text = include_str!("../../../../spec/vectors/flow.txt");
    text.split("\n\n")
        .map(|block| {
            block
                .lines()
                .filter(|l| !l.starts_with('#') && !l.trim().is_empty())
                .map(|l| {
                    let (k, v) = l.split_once('=').expect("key = value");
                    (k.trim().to_owned(), v.trim().to_owned())
                })
                .collect::<Record>()
        })
        .filter(|r| !r.is_empty())
        .collect()
}

fn field<'r>(r: &'r Record, key: &str) -> &'r str {
    r.iter()
        .find(|(k, _)| k == key)
        .map(|(_, v)| v.as_str())
        .unwrap_or_else(|| panic!("record {r:?} lacks {key}"))
}

fn error_name(e: Error) -> &'static str {
    match e {
        Error::Truncated => "truncated",
        Error::BadVersion => "bad-version",
        Error::UnknownKind => "unknown-kind",
        Error::ZeroFlowId => "zero-flow-id",
        Error::UnexpectedFlowId => "unexpected-flow-id",
        Error::NonZeroField => "non-zero-field",
        Error::BadFragment => "bad-fragment",
        Error::BadQoS => "bad-qos",
        Error::EmptyName => "empty-name",
        Error::NameNotUtf8 => "name-not-utf8",
        Error::UnknownReason => "unknown-reason",
        Error::TrailingBytes => "trailing-bytes",
        Error::NameTooLong => "name-too-long",
        Error::BadParity => "bad-parity",
        Error::NotSealable => "not-sealable",
    }
}

fn parse_frag(s: &str) -> Frag {
    let (i, c) = s.split_once('/').unwrap();
    Frag {
        index: i.parse().unwrap(),
        count: c.parse().unwrap(),
    }
}

fn opt<'r>(r: &'r Record, key: &str) -> Option<&'r str> {
    r.iter().find(|(k, _)| k == key).map(|(_, v)| v.as_str())
}

fn bytes<const N: usize>(r: &Record, key: &str) -> [u8; N] {
    hex::decode(field(r, key)).unwrap().try_into().unwrap()
}

fn parse_group(s: &str) -> Group {
    let v: Vec<u8> = s.split(',').map(|x| x.parse().unwrap()).collect();
    Group {
        data: v[0],
        parity: v[1],
        index: v[2],
    }
}

fn parse_kind(s: &str) -> Kind {
    match s {
        "data" => Kind::Data,
        "ack" => Kind::Ack,
        "dealloc" => Kind::Dealloc,
        "keepalive" => Kind::Keepalive,
        "parity" => Kind::Parity,
        k => panic!("unknown inner kind {k}"),
    }
}

/// Checks the keys of a keyed record: tags verify, and sealed datagrams
/// open to their plain body and seal back to the same bytes.
fn check_keyed(r: &Record, packet: &[u8], repr: &Repr<'_>) {
    let case = field(r, "case");
    let key = FlowKey::new(bytes(r, "key"));
    let head = &packet[..packet.len() - TAG_LEN];
    match repr.message {
        Message::SealedAlloc { salt, tag, .. } => {
            assert!(key.check_alloc_tag(&salt, head, &tag), "{case}");
            assert_eq!(key.alloc_tag(&salt, head), tag, "{case}");
            assert!(!FlowKey::new([0; 32]).check_alloc_tag(&salt, head, &tag));
        }
        Message::SealedAllocOk { salt, tag } => {
            let sa = bytes(r, "salt-a");
            let allocator = FlowCipher::allocator(&key, &sa, &salt);
            assert!(allocator.check_confirm_tag(head, &tag), "{case}");
            let acceptor = FlowCipher::acceptor(&key, &sa, &salt);
            assert_eq!(acceptor.confirm_tag(head), tag, "{case}");
        }
        Message::Sealed {
            kind,
            seq,
            frag,
            pn,
            ..
        } => {
            let (sa, sr) = (bytes(r, "salt-a"), bytes(r, "salt-r"));
            let by_allocator = field(r, "from") == "allocator";
            let (mut sender, mut receiver) = if by_allocator {
                (
                    FlowCipher::allocator(&key, &sa, &sr),
                    FlowCipher::acceptor(&key, &sa, &sr),
                )
            } else {
                (
                    FlowCipher::acceptor(&key, &sa, &sr),
                    FlowCipher::allocator(&key, &sa, &sr),
                )
            };
            let plain = hex::decode(field(r, "plain")).unwrap();
            let mut opened = packet.to_vec();
            receiver.open(pn, &mut opened).expect(case);
            let body = &opened[SEALED_HEADER_LEN..opened.len() - TAG_LEN];
            assert_eq!(body, plain.as_slice(), "{case}");
            let inner = Message::open(kind, seq, frag, body).expect(case);
            assert_eq!(sender.next_pn(), pn, "{case}: vectors use the first number");
            let mut out = Vec::new();
            let at = Repr {
                message: inner,
                ..*repr
            }
            .emit_to_seal(pn, &mut out)
            .unwrap();
            sender.seal(&mut out, 0, at);
            assert_eq!(out, packet, "{case}");
        }
        _ => panic!("{case}: keys on an unsealed record"),
    }
}

fn parse_qos(s: &str) -> QoS {
    let v: Vec<u64> = s.split(',').map(|x| x.parse().unwrap()).collect();
    assert_eq!(v.len(), 9);
    QoS {
        delay: v[0] as u32,
        bandwidth: v[1],
        availability: v[2] as u8,
        loss: v[3] as u32,
        ber: v[4] as u32,
        in_order: v[5] as u8,
        max_gap: v[6] as u32,
        cypher_s: v[7] as u16,
        timeout: v[8] as u32,
    }
}

#[test]
fn test_vectors() {
    let records = records();
    let mut ok = 0;
    let mut bad = 0;
    let mut keyed = 0;
    for r in &records {
        let case = field(r, "case");
        let packet = hex::decode(field(r, "packet")).unwrap();
        let expect = field(r, "expect");
        if expect != "ok" {
            let e = Repr::parse(&packet).expect_err(case);
            assert_eq!(error_name(e), expect, "{case}");
            bad += 1;
            continue;
        }
        let src = FlowId(field(r, "src").parse().unwrap());
        let dst = FlowId(field(r, "dst").parse().unwrap());
        let payload;
        let message = match field(r, "kind") {
            "alloc" => Message::Alloc {
                qos: parse_qos(field(r, "qos")),
                name: field(r, "name"),
            },
            "alloc-ok" => Message::AllocOk,
            "alloc-refused" => Message::AllocRefused(
                Reason::from_code(field(r, "reason").parse().unwrap()).unwrap(),
            ),
            "data" => {
                payload = hex::decode(field(r, "payload")).unwrap();
                Message::Data {
                    seq: field(r, "seq").parse().unwrap(),
                    frag: parse_frag(field(r, "frag")),
                    payload: &payload,
                }
            }
            "ack" => Message::Ack {
                seq: field(r, "seq").parse().unwrap(),
                frag: parse_frag(field(r, "frag")),
            },
            "dealloc" => Message::Dealloc,
            "keepalive" => Message::Keepalive,
            "alloc-sealed" => Message::SealedAlloc {
                qos: parse_qos(field(r, "qos")),
                name: field(r, "name"),
                salt: bytes(r, "salt"),
                tag: bytes(r, "tag"),
            },
            "alloc-ok-sealed" => Message::SealedAllocOk {
                salt: bytes(r, "salt"),
                tag: bytes(r, "tag"),
            },
            "sealed" => Message::Sealed {
                kind: parse_kind(field(r, "inner")),
                seq: field(r, "seq").parse().unwrap(),
                frag: parse_frag(field(r, "frag")),
                pn: field(r, "pn").parse().unwrap(),
                sealed: &packet[SEALED_HEADER_LEN..],
            },
            "parity" => {
                payload = hex::decode(field(r, "shard")).unwrap();
                Message::Parity {
                    first: field(r, "seq").parse().unwrap(),
                    frag: parse_frag(field(r, "frag")),
                    group: parse_group(field(r, "group")),
                    shard: &payload,
                }
            }
            k => panic!("unknown kind {k}"),
        };
        let want = Repr { src, dst, message };
        assert_eq!(Repr::parse(&packet), Ok(want), "{case}");
        assert_eq!(want.validate(), Ok(()), "{case}");
        let mut out = Vec::new();
        want.emit_vec(&mut out);
        assert_eq!(out, packet, "{case}");
        if opt(r, "key").is_some() {
            check_keyed(r, &packet, &want);
            keyed += 1;
        }
        ok += 1;
    }
    // Every kind and every parse error appears.
    assert!(ok >= 15, "{ok} valid records");
    assert!(bad >= 25, "{bad} malformed records");
    assert!(keyed >= 6, "{keyed} keyed records");
    for e in [
        "truncated",
        "bad-version",
        "unknown-kind",
        "zero-flow-id",
        "unexpected-flow-id",
        "non-zero-field",
        "bad-fragment",
        "bad-qos",
        "empty-name",
        "name-not-utf8",
        "unknown-reason",
        "trailing-bytes",
        "bad-parity",
    ] {
        assert!(
            records.iter().any(|r| field(r, "expect") == e),
            "no vector for {e}"
        );
    }
}

/// An owned repr for proptest.
#[derive(Debug, Clone)]
enum Owned {
    Alloc(QoS, String),
    AllocOk,
    AllocRefused(Reason),
    Data(u32, Frag, Vec<u8>),
    Ack(u32, Frag),
    Dealloc,
    Keepalive,
    Parity(u32, Frag, Group, Vec<u8>),
    SealedAlloc(QoS, String, [u8; SALT_LEN], [u8; TAG_LEN]),
    SealedAllocOk([u8; SALT_LEN], [u8; TAG_LEN]),
    Sealed(Kind, u32, Frag, u64, Vec<u8>),
}

fn any_group() -> impl Strategy<Value = Group> {
    (1u8..=254)
        .prop_flat_map(|data| (Just(data), 1u8..=255 - data))
        .prop_flat_map(|(data, parity)| (Just(data), Just(parity), 0..parity))
        .prop_map(|(data, parity, index)| Group {
            data,
            parity,
            index,
        })
}

fn any_qos() -> impl Strategy<Value = QoS> {
    (
        (any::<u32>(), any::<u64>(), any::<u8>(), any::<u32>()),
        (
            any::<u32>(),
            0u8..=1,
            any::<u32>(),
            any::<u16>(),
            any::<u32>(),
        ),
    )
        .prop_map(
            |(
                (delay, bandwidth, availability, loss),
                (ber, in_order, max_gap, cypher_s, timeout),
            )| {
                QoS {
                    delay,
                    bandwidth,
                    availability,
                    loss,
                    ber,
                    in_order,
                    max_gap,
                    cypher_s,
                    timeout,
                }
            },
        )
}

fn any_frag() -> impl Strategy<Value = Frag> {
    (1u16..=u16::MAX)
        .prop_flat_map(|count| (0..count, Just(count)))
        .prop_map(|(index, count)| Frag { index, count })
}

fn any_reason() -> impl Strategy<Value = Reason> {
    prop_oneof![
        Just(Reason::NoSuchName),
        Just(Reason::Refused),
        Just(Reason::UnsupportedQoS),
        Just(Reason::NoResources),
        Just(Reason::NoKey),
        Just(Reason::KeyMismatch),
    ]
}

fn any_owned() -> impl Strategy<Value = Owned> {
    prop_oneof![
        (any_qos(), "[a-z0-9.é-]{1,60}").prop_map(|(q, n)| Owned::Alloc(q, n)),
        Just(Owned::AllocOk),
        any_reason().prop_map(Owned::AllocRefused),
        (
            any::<u32>(),
            any_frag(),
            proptest::collection::vec(any::<u8>(), 0..300)
        )
            .prop_map(|(s, f, p)| Owned::Data(s, f, p)),
        (any::<u32>(), any_frag()).prop_map(|(s, f)| Owned::Ack(s, f)),
        Just(Owned::Dealloc),
        Just(Owned::Keepalive),
        (
            any::<u32>(),
            any_frag(),
            any_group(),
            proptest::collection::vec(any::<u8>(), 0..300)
        )
            .prop_map(|(s, f, g, p)| Owned::Parity(s, f, g, p)),
        (
            any_qos(),
            "[a-z0-9.é-]{1,60}",
            any::<[u8; 16]>(),
            any::<[u8; 16]>()
        )
            .prop_map(|(q, n, s, t)| Owned::SealedAlloc(q, n, s, t)),
        (any::<[u8; 16]>(), any::<[u8; 16]>()).prop_map(|(s, t)| Owned::SealedAllocOk(s, t)),
        (
            prop_oneof![
                Just(Kind::Data),
                Just(Kind::Ack),
                Just(Kind::Dealloc),
                Just(Kind::Keepalive),
                Just(Kind::Parity)
            ],
            any::<u32>(),
            any_frag(),
            any::<u64>(),
            proptest::collection::vec(any::<u8>(), TAG_LEN..300)
        )
            .prop_map(|(k, s, f, pn, b)| {
                // Kinds without fragment fields carry zeros.
                if matches!(k, Kind::Data | Kind::Ack | Kind::Parity) {
                    Owned::Sealed(k, s, f, pn, b)
                } else {
                    Owned::Sealed(k, 0, Frag::default(), pn, b)
                }
            }),
    ]
}

fn repr_of(o: &Owned, src: u32, dst: u32) -> Repr<'_> {
    let message = match o {
        Owned::Alloc(q, n) => Message::Alloc { qos: *q, name: n },
        Owned::AllocOk => Message::AllocOk,
        Owned::AllocRefused(r) => Message::AllocRefused(*r),
        Owned::Data(s, f, p) => Message::Data {
            seq: *s,
            frag: *f,
            payload: p,
        },
        Owned::Ack(s, f) => Message::Ack { seq: *s, frag: *f },
        Owned::Dealloc => Message::Dealloc,
        Owned::Keepalive => Message::Keepalive,
        Owned::Parity(s, f, g, p) => Message::Parity {
            first: *s,
            frag: *f,
            group: *g,
            shard: p,
        },
        Owned::SealedAlloc(q, n, salt, tag) => Message::SealedAlloc {
            qos: *q,
            name: n,
            salt: *salt,
            tag: *tag,
        },
        Owned::SealedAllocOk(salt, tag) => Message::SealedAllocOk {
            salt: *salt,
            tag: *tag,
        },
        Owned::Sealed(k, s, f, pn, b) => Message::Sealed {
            kind: *k,
            seq: *s,
            frag: *f,
            pn: *pn,
            sealed: b,
        },
    };
    let dst = if matches!(o, Owned::Alloc(..) | Owned::SealedAlloc(..)) {
        0
    } else {
        dst
    };
    Repr {
        src: FlowId(src),
        dst: FlowId(dst),
        message,
    }
}

proptest! {
    #[test]
    fn prop_round_trip(o in any_owned(), src in 1u32.., dst in 1u32..) {
        let r = repr_of(&o, src, dst);
        prop_assert_eq!(r.validate(), Ok(()));
        let mut buf = vec![0xa5; r.buffer_len()];
        r.emit(&mut buf);
        prop_assert_eq!(Repr::parse(&buf), Ok(r));
        // A byte more or less breaks every fixed-length body; DATA, PARITY
        // and sealed bodies take any length.
        if !matches!(r.kind(), Kind::Data | Kind::Parity) && !matches!(r.message, Message::Sealed { .. }) {
            buf.push(0);
            prop_assert_eq!(Repr::parse(&buf), Err(Error::TrailingBytes));
            buf.truncate(buf.len() - 2);
            prop_assert!(Repr::parse(&buf).is_err());
        }
    }

    #[test]
    fn prop_parse_never_panics(data in proptest::collection::vec(any::<u8>(), 0..400)) {
        if let Ok(r) = Repr::parse(&data) {
            // Whatever parses re-emits to the same bytes.
            prop_assert_eq!(r.validate(), Ok(()));
            let mut out = Vec::new();
            r.emit_vec(&mut out);
            prop_assert_eq!(out, data);
        }
    }

    #[test]
    fn prop_header_prefix_never_panics(
        kind in 0u8..10,
        src in prop_oneof![Just(0u32), any::<u32>()],
        dst in prop_oneof![Just(0u32), any::<u32>()],
        seq in prop_oneof![Just(0u32), any::<u32>()],
        index in 0u16..4,
        count in 0u16..4,
        body in proptest::collection::vec(any::<u8>(), 0..80),
    ) {
        let mut data = vec![VERSION, kind];
        data.extend_from_slice(&src.to_be_bytes());
        data.extend_from_slice(&dst.to_be_bytes());
        data.extend_from_slice(&seq.to_be_bytes());
        data.extend_from_slice(&index.to_be_bytes());
        data.extend_from_slice(&count.to_be_bytes());
        data.extend_from_slice(&body);
        if let Ok(r) = Repr::parse(&data) {
            let mut out = Vec::new();
            r.emit_vec(&mut out);
            prop_assert_eq!(out, data);
        }
    }
}

#[test]
fn test_emit_to_seal_lays_out_header_and_packet_number() {
    let r = packet_repr();
    let mut out = vec![0xee];
    let at = r.emit_to_seal(0x0102_0304_0506_0708, &mut out).unwrap();
    assert_eq!(at, 1 + SEALED_HEADER_LEN);
    assert_eq!(out[1], VERSION);
    assert_eq!(out[2], Kind::Data as u8 | SEALED);
    assert_eq!(&out[3..1 + HEADER_LEN], &PACKET_BYTES[2..HEADER_LEN]);
    assert_eq!(&out[1 + HEADER_LEN..at], &[1, 2, 3, 4, 5, 6, 7, 8]);
    assert_eq!(&out[at..], b"hi");
    // Handshake messages are sealed their own way.
    let ok = Repr {
        src: FlowId(1),
        dst: FlowId(2),
        message: Message::AllocOk,
    };
    let mut out = Vec::new();
    assert_eq!(ok.emit_to_seal(1, &mut out), Err(Error::NotSealable));
    assert!(out.is_empty());
    // A sealed repr of a handshake kind does not validate.
    let bad = Repr {
        src: FlowId(1),
        dst: FlowId(2),
        message: Message::Sealed {
            kind: Kind::AllocOk,
            seq: 0,
            frag: Frag::default(),
            pn: 1,
            sealed: &[0; TAG_LEN],
        },
    };
    assert_eq!(bad.validate(), Err(Error::NotSealable));
}
