use proptest::prelude::*;

use super::*;

static DATA_BYTES: [u8; 10] = [0x1d, 0x12, 0x34, 0x56, 0x78, b'h', b'e', b'l', b'l', b'o'];
static RECV_BYTES: [u8; 5] = [0x5f, 0xde, 0xad, 0xbe, 0xef];

/// A 6-byte magic and 2-byte types: DATA starts its payload at offset 12.
fn wide() -> Profile {
    Profile::new(
        b"GTUDP1".to_vec(),
        vec![0, 0x1d],
        vec![0, 0x5f],
        vec![0, 0xae],
    )
    .unwrap()
}

#[test]
fn test_deconstruct() {
    let profile = Profile::reference();
    let p = Packet::new_checked(&DATA_BYTES[..], &profile).unwrap();
    assert_eq!(p.magic(), b"");
    assert_eq!(p.type_code(), [0x1d]);
    assert_eq!(p.kind(), Some(Kind::Data));
    assert_eq!(p.identity(), Identity::from_u32(0x1234_5678));
    assert_eq!(p.payload(), b"hello");
}

#[test]
fn test_construct() {
    let profile = Profile::reference();
    let mut buf = vec![0xa5; DATA_BYTES.len()];
    let mut p = Packet::new_unchecked(&mut buf[..], &profile);
    p.set_magic();
    p.set_kind(Kind::Data);
    p.set_identity(Identity::from_u32(0x1234_5678));
    p.payload_mut().copy_from_slice(b"hello");
    assert_eq!(buf, DATA_BYTES);
}

#[test]
fn test_parse() {
    let profile = Profile::reference();
    assert_eq!(
        Repr::parse(&DATA_BYTES, &profile),
        Ok(Repr::Data {
            id: Identity::from_u32(0x1234_5678),
            payload: b"hello"
        })
    );
    assert_eq!(
        Repr::parse(&RECV_BYTES, &profile),
        Ok(Repr::Recv {
            id: Identity::from_u32(0xdead_beef)
        })
    );
}

#[test]
fn test_emit() {
    let profile = Profile::reference();
    let repr = Repr::Recv {
        id: Identity::from_u32(0xdead_beef),
    };
    let mut buf = vec![0xa5; repr.buffer_len(&profile) + 2];
    repr.emit(&profile, &mut buf);
    assert_eq!(&buf[..5], RECV_BYTES);
    assert_eq!(&buf[5..], [0xa5, 0xa5], "bytes beyond the packet untouched");
}

#[test]
fn wide_profile_puts_data_at_offset_12() {
    let profile = wide();
    assert_eq!(profile.header_len(), 12);
    let repr = Repr::Data {
        id: Identity::from_u32(1),
        payload: b"xy",
    };
    let mut buf = vec![0xa5; repr.buffer_len(&profile)];
    repr.emit(&profile, &mut buf);
    assert_eq!(&buf[..6], b"GTUDP1");
    assert_eq!(&buf[6..8], [0, 0x1d]);
    assert_eq!(&buf[8..12], [0, 0, 0, 1]);
    assert_eq!(&buf[12..], b"xy");
}

#[test]
fn test_malformed() {
    let r = Profile::reference();
    let w = wide();
    // Shorter than type + identity: the reference would read a short identity.
    assert_eq!(Repr::parse(&[], &r), Err(Error::Truncated));
    assert_eq!(Repr::parse(&[0x1d, 1, 2, 3], &r), Err(Error::Truncated));
    assert_eq!(Repr::parse(&[0x5f], &r), Err(Error::Truncated));
    assert_eq!(
        Repr::parse(b"GTUDP1\x00\x1d\x00\x00\x00", &w),
        Err(Error::Truncated)
    );
    // Truncation is checked before the magic.
    assert_eq!(Repr::parse(b"XXXXXX", &w), Err(Error::Truncated));
    assert_eq!(
        Repr::parse(b"XTUDP1\x00\x1d\x00\x00\x00\x01", &w),
        Err(Error::WrongMagic)
    );
    assert_eq!(
        Repr::parse(&[0x1e, 0, 0, 0, 1], &r),
        Err(Error::UnknownType)
    );
    assert_eq!(
        Repr::parse(b"GTUDP1\x1d\x00\x00\x00\x00\x01", &w),
        Err(Error::UnknownType)
    );
    assert_eq!(
        Repr::parse(&[0xae, 0, 0, 0, 1, 0], &r),
        Err(Error::TrailingBytes)
    );
    assert_eq!(
        Repr::parse(&[0x5f, 0, 0, 0, 1, 0], &r),
        Err(Error::TrailingBytes)
    );
    // An empty DATA is a DATA.
    assert_eq!(
        Repr::parse(&[0x1d, 0, 0, 0, 1], &r),
        Ok(Repr::Data {
            id: Identity::from_u32(1),
            payload: &[]
        })
    );
}

#[test]
fn profiles_are_checked() {
    let t = |d: &[u8], r: &[u8], a: &[u8]| Profile::new(vec![], d.to_vec(), r.to_vec(), a.to_vec());
    assert_eq!(t(&[], &[1], &[2]), Err(ProfileError::EmptyType));
    assert_eq!(t(&[1], &[2, 0], &[3]), Err(ProfileError::TypeLengthsDiffer));
    assert_eq!(t(&[1], &[1], &[3]), Err(ProfileError::TypesNotDistinct));
    assert_eq!(t(&[0x1d], &[0x5f], &[0xae]), Ok(Profile::reference()));
}

/// One record of `spec/vectors/gtudp.txt`.
struct Vector {
    magic: Vec<u8>,
    types: [Vec<u8>; 3],
    kind: String,
    identity: Vec<u8>,
    payload: Vec<u8>,
    packet: Vec<u8>,
    expect: String,
}

fn vectors() -> Vec<Vector> {
    let text = include_str!("../../../../spec/vectors/gtudp.txt");
    let mut out = Vec::new();
    for record in text.split("\n\n") {
        let fields: Vec<(&str, &str)> = record
            .lines()
            .filter(|l| !l.starts_with('#') && !l.is_empty())
            .map(|l| {
                let (k, v) = l.split_once('=').expect("name = value");
                (k.trim(), v.trim())
            })
            .collect();
        // The authenticated profile's records are checked in tests/auth.rs.
        if fields.is_empty() || fields.iter().any(|f| f.0 == "key") {
            continue;
        }
        let get = |name: &str| {
            fields
                .iter()
                .find(|f| f.0 == name)
                .unwrap_or_else(|| panic!("{name} missing in {record}"))
                .1
        };
        let hex = |name: &str| hex::decode(get(name)).unwrap();
        let types: Vec<Vec<u8>> = get("types")
            .split(',')
            .map(|t| hex::decode(t).unwrap())
            .collect();
        out.push(Vector {
            magic: hex("magic"),
            types: [types[0].clone(), types[1].clone(), types[2].clone()],
            kind: get("kind").to_owned(),
            identity: hex("identity"),
            payload: hex("payload"),
            packet: hex("packet"),
            expect: get("expect").to_owned(),
        });
    }
    out
}

#[test]
fn spec_vectors() {
    let vectors = vectors();
    assert_eq!(vectors.len(), 19);
    for v in &vectors {
        let [d, r, a] = v.types.clone();
        let profile = Profile::new(v.magic.clone(), d, r, a).unwrap();
        let parsed = Repr::parse(&v.packet, &profile);
        let expected = match v.expect.as_str() {
            "ok" => {
                let id = Identity(v.identity.as_slice().try_into().unwrap());
                Ok(match v.kind.as_str() {
                    "data" => Repr::Data {
                        id,
                        payload: &v.payload,
                    },
                    "recv" => Repr::Recv { id },
                    "ack" => Repr::Ack { id },
                    k => panic!("kind {k}"),
                })
            }
            "truncated" => Err(Error::Truncated),
            "wrong-magic" => Err(Error::WrongMagic),
            "unknown-type" => Err(Error::UnknownType),
            "trailing-bytes" => Err(Error::TrailingBytes),
            e => panic!("expect {e}"),
        };
        assert_eq!(parsed, expected, "packet {}", hex::encode(&v.packet));
        if let Ok(repr) = parsed {
            let mut buf = Vec::new();
            repr.emit_vec(&profile, &mut buf);
            assert_eq!(buf, v.packet);
        }
    }
}

fn profile_strategy() -> impl Strategy<Value = Profile> {
    (
        proptest::collection::vec(any::<u8>(), 0..8),
        1usize..4,
        any::<[u8; 3]>(),
    )
        .prop_map(|(magic, len, seed)| {
            // Distinct codes of one length: differ in the last byte.
            let code = |i: u8| {
                let mut c = vec![seed[0]; len];
                c[len - 1] = seed[1].wrapping_add(i.wrapping_mul(85));
                c
            };
            Profile::new(magic, code(0), code(1), code(2)).unwrap()
        })
}

fn repr_parts() -> impl Strategy<Value = (u8, u32, Vec<u8>)> {
    (
        0u8..3,
        any::<u32>(),
        proptest::collection::vec(any::<u8>(), 0..64),
    )
}

proptest! {
    #[test]
    fn round_trip(profile in profile_strategy(), (kind, id, payload) in repr_parts()) {
        let id = Identity::from_u32(id);
        let repr = match kind {
            0 => Repr::Data { id, payload: &payload },
            1 => Repr::Recv { id },
            _ => Repr::Ack { id },
        };
        let mut buf = vec![0xa5; repr.buffer_len(&profile)];
        repr.emit(&profile, &mut buf);
        prop_assert_eq!(Repr::parse(&buf, &profile), Ok(repr));
    }

    #[test]
    fn parse_never_panics(profile in profile_strategy(), data in proptest::collection::vec(any::<u8>(), 0..32)) {
        if let Ok(repr) = Repr::parse(&data, &profile) {
            let mut buf = Vec::new();
            repr.emit_vec(&profile, &mut buf);
            prop_assert_eq!(&buf, &data);
        }
        if let Ok(p) = Packet::new_checked(&data[..], &profile) {
            let _ = (p.magic(), p.type_code(), p.kind(), p.identity(), p.payload());
        }
    }

    #[test]
    fn reference_parse_never_panics(data in proptest::collection::vec(any::<u8>(), 0..16)) {
        let _ = Repr::parse(&data, &Profile::reference());
    }
}
