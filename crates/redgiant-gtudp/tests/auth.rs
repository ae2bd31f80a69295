//! The authenticated profile: round trip and every tamper class counted and
//! dropped.

use std::time::Duration;

use redgiant_base::endpoint::{DatagramEndpoint, Endpoint};
use redgiant_base::{Instant, Peer};
use redgiant_gtudp::{AuthConfig, AuthKey, Config, Event, Gtudp, ReferenceIds, Stats};

const A: Peer = Peer::Mem(1);
const B: Peer = Peer::Mem(2);
const KEY: AuthKey = AuthKey([0x5a; 32]);

fn ms(n: u64) -> Instant {
    Instant::from_millis(n)
}

fn config(key: AuthKey, session: u64) -> Config {
    Config::default().with_auth(AuthConfig::new(key, session))
}

fn drain(e: &mut Gtudp, now: Instant) -> Vec<Vec<u8>> {
    let mut buf = Vec::new();
    let mut out = Vec::new();
    while let Some(t) = e.poll_transmit(now, &mut buf) {
        out.extend(t.datagrams(&buf).map(<[u8]>::to_vec));
    }
    out
}

fn events(e: &mut Gtudp) -> Vec<Event> {
    std::iter::from_fn(|| e.poll_event()).collect()
}

/// Hands `d` to `e`, returning the payload handed out.
fn feed(e: &mut Gtudp, now: Instant, from: Peer, d: &[u8]) -> Option<Vec<u8>> {
    let mut d = d.to_vec();
    e.handle_datagram(now, from, &mut d)
        .map(|g| g.payload.to_vec())
}

fn pair() -> (Gtudp, Gtudp) {
    (
        Gtudp::new(config(KEY, 1), ReferenceIds::new(0)),
        Gtudp::seeded(config(KEY, 2), 3),
    )
}

fn rejected(s: Stats) -> u64 {
    s.auth_failed + s.replayed
}

#[test]
fn a_sealed_exchange_round_trips() {
    let (mut a, mut b) = pair();
    a.send_to(B, b"secret payload");
    let data = drain(&mut a, ms(0));
    assert_eq!(data.len(), 1);
    // header 5, session 8, counter 8, payload 14, tag 16.
    assert_eq!(data[0].len(), 5 + 16 + 14 + 16);
    assert_eq!(&data[0][5..13], &1u64.to_be_bytes());
    assert!(!data[0].windows(6).any(|w| w == b"secret"));
    assert_eq!(
        feed(&mut b, ms(1), A, &data[0]).as_deref(),
        Some(&b"secret payload"[..])
    );
    let recv = drain(&mut b, ms(1));
    assert_eq!(recv[0].len(), 5 + 32);
    feed(&mut a, ms(2), B, &recv[0]);
    assert!(matches!(events(&mut a)[..], [Event::Confirmed(_)]));
    let ack = drain(&mut a, ms(2));
    feed(&mut b, ms(3), A, &ack[0]);
    assert!(b.is_idle() && a.is_idle());
    assert_eq!(rejected(a.stats()) + rejected(b.stats()), 0);
}

#[test]
fn every_tampered_data_is_counted_and_dropped() {
    let (mut a, _) = pair();
    a.send_to(B, b"payload!");
    let data = drain(&mut a, ms(0)).remove(0);
    // (what, byte index): identity, session, counter, payload, tag.
    let classes = [
        ("type", 0),
        ("identity", 2),
        ("session", 6),
        ("counter", 20),
        ("payload", 23),
        ("tag", data.len() - 1),
    ];
    for (what, i) in classes {
        let (_, mut b) = pair();
        let mut t = data.clone();
        t[i] ^= 0x01;
        assert_eq!(feed(&mut b, ms(1), A, &t), None, "{what}");
        let s = b.stats();
        // A flipped type code is no longer a gtUDP type: counted as such.
        let counted = if what == "type" {
            s.unknown_type
        } else {
            s.auth_failed
        };
        assert_eq!(counted, 1, "{what}");
        assert_eq!((s.delivered, s.recv_sent), (0, 0), "{what}");
        assert!(drain(&mut b, ms(1)).is_empty(), "{what}: answered");
    }
    // Cut short, or with its tag stripped.
    let (_, mut b) = pair();
    assert_eq!(feed(&mut b, ms(1), A, &data[..5 + 31]), None);
    assert_eq!(feed(&mut b, ms(1), A, &data[..data.len() - 16]), None);
    assert_eq!(b.stats().truncated + b.stats().auth_failed, 2);
    // Another key.
    let mut other = Gtudp::seeded(config(AuthKey([0x5b; 32]), 2), 3);
    assert_eq!(feed(&mut other, ms(1), A, &data), None);
    assert_eq!(other.stats().auth_failed, 1);
    // Plain gtUDP at an authenticated endpoint, and the reverse.
    let (_, mut b) = pair();
    let mut plain_data = b"\x1d\0\0\0\x01".to_vec();
    plain_data.extend_from_slice(&[b'p'; 40]);
    assert_eq!(feed(&mut b, ms(1), A, &plain_data), None);
    assert_eq!(feed(&mut b, ms(1), A, b"\x1d\0\0\0\x01short"), None);
    assert_eq!((b.stats().auth_failed, b.stats().truncated), (1, 1));
    let mut plain = Gtudp::seeded(Config::default(), 4);
    let got = feed(&mut plain, ms(1), A, &data).unwrap();
    assert_ne!(
        got, b"payload!",
        "a plain endpoint sees only the sealed bytes"
    );
}

#[test]
fn a_replay_long_after_the_exchange_is_refused() {
    let (mut a, mut b) = pair();
    a.send_to(B, b"once");
    let data = drain(&mut a, ms(0)).remove(0);
    assert!(feed(&mut b, ms(1), A, &data).is_some());
    let recv = drain(&mut b, ms(1)).remove(0);
    feed(&mut a, ms(2), B, &recv);
    let ack = drain(&mut a, ms(2)).remove(0);
    feed(&mut b, ms(3), A, &ack);
    // Right away, and after the duplicate memory forgot the identity.
    assert_eq!(feed(&mut b, ms(4), A, &data), None);
    let later = ms(3) + b.config().dedup_ttl + Duration::from_secs(1);
    b.handle_timeout(later);
    assert_eq!(b.remembered(), 0);
    assert_eq!(feed(&mut b, later, A, &data), None);
    assert_eq!(feed(&mut b, later, A, &ack), None);
    let s = b.stats();
    assert_eq!((s.replayed, s.delivered, s.duplicates), (3, 1, 0));
    assert!(drain(&mut b, later).is_empty());
}

#[test]
fn a_forged_recv_does_not_confirm_and_a_forged_ack_does_not_cancel() {
    let (mut a, mut b) = pair();
    a.send_to(B, b"x");
    let data = drain(&mut a, ms(0)).remove(0);
    let id = &data[1..5];
    // An attacker without the key, knowing the identity from the wire.
    let mut forged = vec![0x5f];
    forged.extend_from_slice(id);
    forged.extend_from_slice(&2u64.to_be_bytes());
    forged.extend_from_slice(&0u64.to_be_bytes());
    forged.extend_from_slice(&[0; 16]);
    feed(&mut a, ms(1), B, &forged);
    assert!(events(&mut a).is_empty());
    assert_eq!(a.in_flight(), 1);
    assert_eq!(a.stats().auth_failed, 1);
    assert!(drain(&mut a, ms(1)).is_empty(), "no ACK for a forged RECV");

    feed(&mut b, ms(1), A, &data);
    drain(&mut b, ms(1));
    forged[0] = 0xae;
    // A's real session, and a counter A has not used yet.
    forged[5..13].copy_from_slice(&1u64.to_be_bytes());
    forged[13..21].copy_from_slice(&7u64.to_be_bytes());
    feed(&mut b, ms(2), A, &forged);
    assert_eq!(b.stats().auth_failed, 1);
    assert!(!b.is_idle(), "the RECV is still to be repeated");
    let t = b.poll_timeout().unwrap();
    b.handle_timeout(t);
    assert_eq!(drain(&mut b, t).len(), 1);
}

#[test]
fn mismatched_keys_deliver_nothing_and_the_exchange_fails() {
    let mut a = Gtudp::new(config(KEY, 1), ReferenceIds::new(0));
    let mut b = Gtudp::seeded(config(AuthKey([1; 32]), 2), 3);
    a.send_to(B, b"lost");
    let mut now = ms(0);
    for d in drain(&mut a, now) {
        assert!(feed(&mut b, now, A, &d).is_none());
    }
    while let Some(t) = a.poll_timeout() {
        now = t;
        a.handle_timeout(now);
        for d in drain(&mut a, now) {
            assert!(feed(&mut b, now, A, &d).is_none());
        }
    }
    assert!(matches!(events(&mut a)[..], [Event::Failed(..)]));
    assert_eq!(b.stats().auth_failed, 6);
    assert_eq!(b.stats().delivered, 0);
}

/// The authenticated records of `spec/vectors/gtudp.txt`, as name/value lists.
fn sealed_vectors() -> Vec<Vec<(String, String)>> {
    let text = include_str!("../../../spec/vectors/gtudp.txt");
    text.split("\n\n")
        .map(|record| {
            record
                .lines()
                .filter(|l| !l.starts_with('#') && !l.is_empty())
                .map(|l| {
                    let (k, v) = l.split_once('=').expect("name = value");
                    (k.trim().to_owned(), v.trim().to_owned())
                })
                .collect::<Vec<_>>()
        })
        .filter(|f| f.iter().any(|(k, _)| k == "key"))
        .collect()
}

#[test]
fn sealed_vectors_seal_and_open() {
    let vectors = sealed_vectors();
    assert_eq!(vectors.len(), 5);
    for v in &vectors {
        let get = |name: &str| {
            v.iter()
                .find(|f| f.0 == name)
                .unwrap_or_else(|| panic!("{name} missing"))
                .1
                .clone()
        };
        let hex = |name: &str| hex::decode(get(name)).unwrap();
        let word = |name: &str| u64::from_str_radix(&get(name), 16).unwrap();
        let key = AuthKey::from_hex(&get("key")).unwrap();
        let (session, counter) = (word("session"), word("counter"));
        let types: Vec<Vec<u8>> = get("types")
            .split(',')
            .map(|t| hex::decode(t).unwrap())
            .collect();
        let kind = get("kind");
        let code = &types[["data", "recv", "ack"]
            .iter()
            .position(|k| *k == kind)
            .unwrap()];
        let packet = hex("packet");
        // Seal field by field and compare.
        let mut buf = hex("magic");
        buf.extend_from_slice(code);
        buf.extend(hex("identity"));
        buf.extend_from_slice(&session.to_be_bytes());
        buf.extend_from_slice(&counter.to_be_bytes());
        let body = buf.len();
        buf.extend(hex("payload"));
        key.session(session).seal(counter, &mut buf, 0, body);
        assert_eq!(buf, packet, "{kind} {session:x}/{counter:x}");

        // An endpoint of the profile with the key accepts it.
        let profile = redgiant_gtudp::Profile::new(
            hex("magic"),
            types[0].clone(),
            types[1].clone(),
            types[2].clone(),
        )
        .unwrap();
        let mut e = Gtudp::seeded(
            Config::default()
                .with_profile(profile)
                .with_auth(AuthConfig::new(key, !session)),
            1,
        );
        let got = feed(&mut e, ms(1), A, &packet);
        let s = e.stats();
        assert_eq!(rejected(s) + s.truncated + s.trailing_bytes, 0, "{kind}");
        match kind.as_str() {
            "data" => assert_eq!(got, Some(hex("payload"))),
            "recv" => assert_eq!(s.unknown_recv, 1),
            _ => assert_eq!(s.unknown_ack, 1),
        }
    }
}

#[test]
fn the_first_sealed_data_of_a_session_is_the_vector() {
    let mut a = Gtudp::new(config(KEY, 0x0123_4567_89ab_cdef), ReferenceIds::new(0));
    a.send_to(B, b"hello");
    let v = &sealed_vectors()[0];
    let packet = &v.iter().find(|f| f.0 == "packet").unwrap().1;
    assert_eq!(hex::encode(&drain(&mut a, ms(0))[0]), *packet);
}

mod properties {
    use super::*;
    use proptest::prelude::*;

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(256))]

        #[test]
        fn sealed_data_round_trips_and_any_flipped_bit_is_refused(
            payload in proptest::collection::vec(any::<u8>(), 0..1500),
            session in any::<u64>(),
            flip in any::<proptest::sample::Index>(),
            bit in 0u8..8,
        ) {
            let mut a = Gtudp::new(config(KEY, session), ReferenceIds::new(5));
            a.send_to(B, &payload);
            let data = drain(&mut a, ms(0)).remove(0);
            prop_assert_eq!(data.len(), 5 + 32 + payload.len());
            let mut t = data.clone();
            let i = flip.index(t.len());
            t[i] ^= 1 << bit;
            let mut b = Gtudp::seeded(config(KEY, !session), 1);
            prop_assert_eq!(feed(&mut b, ms(1), A, &t), None);
            let s = b.stats();
            prop_assert_eq!(s.auth_failed + s.unknown_type, 1);
            prop_assert_eq!(feed(&mut b, ms(1), A, &data), Some(payload));
            prop_assert_eq!(feed(&mut b, ms(1), A, &data), None);
            prop_assert_eq!(b.stats().replayed, 1);
        }

        #[test]
        fn arbitrary_bytes_are_never_delivered(
            datagrams in proptest::collection::vec(
                proptest::collection::vec(any::<u8>(), 0..80), 1..20),
        ) {
            let mut b = Gtudp::seeded(config(KEY, 9), 1);
            for d in &datagrams {
                prop_assert_eq!(feed(&mut b, ms(1), A, d), None);
            }
            let s = b.stats();
            prop_assert_eq!(s.delivered, 0);
            prop_assert_eq!(s.recv_sent + s.ack_sent, 0);
            prop_assert_eq!(
                s.truncated + s.wrong_magic + s.unknown_type + s.trailing_bytes
                    + s.auth_failed + s.replayed,
                datagrams.len() as u64
            );
        }
    }
}
