use proptest::prelude::*;

use super::*;

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
    }
}

fn parse_frag(s: &str) -> Frag {
    let (i, c) = s.split_once('/').unwrap();
    Frag {
        index: i.parse().unwrap(),
        count: c.parse().unwrap(),
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
            k => panic!("unknown kind {k}"),
        };
        let want = Repr { src, dst, message };
        assert_eq!(Repr::parse(&packet), Ok(want), "{case}");
        let mut out = Vec::new();
        want.emit_vec(&mut out);
        assert_eq!(out, packet, "{case}");
        ok += 1;
    }
    // Every kind and every parse error appears.
    assert!(ok >= 7, "{ok} valid records");
    assert!(bad >= 12, "{bad} malformed records");
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
    };
    let dst = if matches!(o, Owned::Alloc(..)) {
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
        // A byte more or less breaks every fixed-length body; DATA takes any length.
        if r.kind() != Kind::Data {
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
