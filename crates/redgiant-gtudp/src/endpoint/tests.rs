use super::*;
use crate::id::ReferenceIds;

const A: Peer = Peer::Mem(1);
const B: Peer = Peer::Mem(2);

fn ms(n: u64) -> Instant {
    Instant::from_millis(n)
}

/// Every datagram due at `now`, as (destination, bytes).
fn drain(e: &mut Gtudp, now: Instant) -> Vec<(Peer, Vec<u8>)> {
    let mut buf = Vec::new();
    let mut out = Vec::new();
    while let Some(t) = e.poll_transmit(now, &mut buf) {
        out.extend(t.datagrams(&buf).map(|d| (t.destination, d.to_vec())));
    }
    out
}

fn events(e: &mut Gtudp) -> Vec<Event> {
    std::iter::from_fn(|| e.poll_event()).collect()
}

fn parse(bytes: &[u8]) -> Repr<'_> {
    Repr::parse(bytes, &Profile::reference()).unwrap()
}

#[test]
fn one_exchange_end_to_end() {
    let mut a = Gtudp::new(Config::default(), ReferenceIds::new(0));
    let mut b = Gtudp::seeded(Config::default(), 1);
    let x = a.send_to(B, b"hello");
    let sent = drain(&mut a, ms(0));
    assert_eq!(sent.len(), 1);
    assert_eq!(sent[0].0, B);
    // The reference's identity: adler32("hello") + 1.
    assert_eq!(
        sent[0].1,
        [0x1d, 0x06, 0x2c, 0x02, 0x16, b'h', b'e', b'l', b'l', b'o']
    );

    let mut data = sent[0].1.clone();
    let d = b.handle_datagram(ms(10), A, &mut data).unwrap();
    assert_eq!((d.from, d.payload), (A, &b"hello"[..]));
    let id = d.id;
    assert_eq!(events(&mut b), [Event::Received { from: A, id }]);
    let recv = drain(&mut b, ms(10));
    assert_eq!(parse(&recv[0].1), Repr::Recv { id });

    let mut r = recv[0].1.clone();
    assert!(a.handle_datagram(ms(20), B, &mut r).is_none());
    assert_eq!(events(&mut a), [Event::Confirmed(x)]);
    let ack = drain(&mut a, ms(20));
    assert_eq!(parse(&ack[0].1), Repr::Ack { id });
    assert_eq!(a.poll_timeout(), None);
    assert!(a.is_idle());
    // RFC 6298 first sample: srtt 20 ms, rttvar 10 ms, rto = 60 ms.
    assert_eq!(a.rto(B), Duration::from_millis(60));

    assert!(!b.is_idle());
    let mut k = ack[0].1.clone();
    assert!(b.handle_datagram(ms(30), A, &mut k).is_none());
    assert_eq!(b.poll_timeout(), None);
    assert!(b.is_idle());
    // A copy of the DATA after the ACK: not delivered, not answered.
    let mut again = sent[0].1.clone();
    assert!(b.handle_datagram(ms(40), A, &mut again).is_none());
    assert!(drain(&mut b, ms(40)).is_empty());
    assert_eq!(b.stats().duplicates, 1);
    assert_eq!(b.stats().delivered, 1);
}

#[test]
fn duplicates_before_the_ack_are_answered_not_delivered() {
    let mut b = Gtudp::seeded(Config::default(), 1);
    let mut d = vec![0x1d, 0, 0, 0, 7, 1, 2];
    assert!(b.handle_datagram(ms(0), A, &mut d.clone()).is_some());
    assert_eq!(drain(&mut b, ms(0)).len(), 1);
    assert!(b.handle_datagram(ms(5), A, &mut d).is_none());
    let again = drain(&mut b, ms(5));
    assert_eq!(
        parse(&again[0].1),
        Repr::Recv {
            id: Identity::from_u32(7)
        }
    );
    // The same identity from another peer is another exchange.
    let mut d2 = vec![0x1d, 0, 0, 0, 7, 9];
    assert_eq!(b.handle_datagram(ms(6), B, &mut d2).unwrap().payload, [9]);
}

#[test]
fn reference_timers_repeat_data_six_times_then_fail() {
    let mut a = Gtudp::seeded(Config::reference(), 3);
    let x = a.send_to(B, b"x");
    let mut now = ms(0);
    let mut sends = drain(&mut a, now).len();
    while let Some(t) = a.poll_timeout() {
        assert_eq!(t, now + Duration::from_millis(500));
        now = t;
        a.handle_timeout(now);
        sends += drain(&mut a, now).len();
    }
    assert_eq!(sends, 6);
    assert_eq!(now, ms(3000));
    assert_eq!(events(&mut a), [Event::Failed(x, FailReason::Attempts)]);
}

#[test]
fn recv_is_repeated_ten_times_at_most() {
    let mut b = Gtudp::new(Config::reference(), ReferenceIds::new(0));
    b.handle_datagram(ms(0), A, &mut [0x1d, 0, 0, 0, 1]);
    let mut now = ms(0);
    let mut sends = drain(&mut b, now).len();
    while let Some(t) = b.poll_timeout() {
        now = t;
        b.handle_timeout(now);
        sends += drain(&mut b, now).len();
    }
    assert_eq!(sends, 10);
    assert!(b.is_idle());
}

#[test]
fn rtt_timers_back_off() {
    let mut a = Gtudp::seeded(Config::default(), 3);
    a.send_to(B, b"x");
    let mut now = ms(0);
    drain(&mut a, now);
    let mut gaps = Vec::new();
    while let Some(t) = a.poll_timeout() {
        gaps.push((t - now).as_millis());
        now = t;
        a.handle_timeout(now);
        drain(&mut a, now);
    }
    assert_eq!(gaps, [500, 1000, 2000, 4000, 8000, 8000]);
}

#[test]
fn deadline_bounds_a_confirmed_send() {
    let mut a = Gtudp::seeded(Config::default(), 3);
    let x = a.send_confirmed(B, b"x", ms(20_000));
    let mut now = ms(0);
    let mut sends = drain(&mut a, now).len();
    while let Some(t) = a.poll_timeout() {
        now = t;
        a.handle_timeout(now);
        sends += drain(&mut a, now).len();
    }
    assert_eq!(now, ms(20_000));
    // 0, 0.5, 1.5, 3.5, 7.5, 15.5 s.
    assert_eq!(sends, 6);
    assert_eq!(events(&mut a), [Event::Failed(x, FailReason::Deadline)]);
}

#[test]
fn unknown_recv_is_acked_and_foreign_datagrams_counted() {
    let mut a = Gtudp::seeded(Config::default(), 3);
    assert!(a
        .handle_datagram(ms(0), B, &mut [0x5f, 1, 2, 3, 4])
        .is_none());
    let out = drain(&mut a, ms(0));
    assert_eq!(
        parse(&out[0].1),
        Repr::Ack {
            id: Identity([1, 2, 3, 4])
        }
    );
    assert!(a.handle_datagram(ms(0), B, &mut [0x1d, 1]).is_none());
    assert!(a
        .handle_datagram(ms(0), B, &mut [0x00, 1, 2, 3, 4])
        .is_none());
    assert!(a
        .handle_datagram(ms(0), B, &mut [0xae, 1, 2, 3, 4, 5])
        .is_none());
    assert!(a
        .handle_datagram(ms(0), B, &mut [0xae, 1, 2, 3, 4])
        .is_none());
    assert!(drain(&mut a, ms(0)).is_empty());
    let s = a.stats();
    assert_eq!(
        (
            s.unknown_recv,
            s.truncated,
            s.unknown_type,
            s.trailing_bytes,
            s.unknown_ack
        ),
        (1, 1, 1, 1, 1)
    );
    assert_eq!(s.datagrams_in, 5);
}

#[test]
fn a_full_table_refuses_new_data_and_forgets_after_the_ttl() {
    let config = Config {
        dedup_capacity: 2,
        dedup_ttl: Duration::from_secs(1),
        dedup_linger: Duration::ZERO,
        ..Config::default()
    };
    let mut b = Gtudp::seeded(config, 1);
    assert!(b
        .handle_datagram(ms(0), A, &mut [0x1d, 0, 0, 0, 1])
        .is_some());
    assert!(b
        .handle_datagram(ms(0), A, &mut [0x1d, 0, 0, 0, 2])
        .is_some());
    assert!(b
        .handle_datagram(ms(0), A, &mut [0x1d, 0, 0, 0, 3])
        .is_none());
    assert_eq!(b.stats().refused_full, 1);
    drain(&mut b, ms(0));
    // A duplicate at 0.5 s keeps identity 1 for another second.
    assert!(b
        .handle_datagram(ms(500), A, &mut [0x1d, 0, 0, 0, 1])
        .is_none());
    assert!(b
        .handle_datagram(ms(1000), A, &mut [0x1d, 0, 0, 0, 3])
        .is_some());
    assert!(b
        .handle_datagram(ms(1400), A, &mut [0x1d, 0, 0, 0, 1])
        .is_none());
    assert_eq!(b.stats().duplicates, 2);
}

#[test]
fn an_acknowledged_entry_is_held_for_the_linger_after_its_last_copy() {
    let config = Config {
        dedup_linger: Duration::from_millis(300),
        ..Config::default()
    };
    assert_eq!(config.dedup_ttl, Duration::from_secs(42));
    let mut b = Gtudp::seeded(config, 1);
    assert!(b
        .handle_datagram(ms(0), A, &mut [0x1d, 0, 0, 0, 1])
        .is_some());
    drain(&mut b, ms(0));
    assert!(b
        .handle_datagram(ms(10), A, &mut [0xae, 0, 0, 0, 1])
        .is_none());
    assert_eq!(b.remembered(), 1);
    // A copy trailing the ACK is still a duplicate, and renews the linger.
    assert!(b
        .handle_datagram(ms(200), A, &mut [0x1d, 0, 0, 0, 1])
        .is_none());
    assert!(b.handle_datagram(ms(450), A, &mut [0x2d, 0]).is_none());
    assert_eq!(b.remembered(), 1);
    b.handle_timeout(ms(500));
    assert_eq!(b.remembered(), 0);
    assert!(b.is_idle());
    assert_eq!(b.stats().duplicates, 1);
}

#[test]
fn an_unacknowledged_entry_is_held_for_the_ttl() {
    let mut b = Gtudp::seeded(Config::reference(), 1);
    assert_eq!(b.config().dedup_ttl, Duration::from_millis(4500));
    assert!(b
        .handle_datagram(ms(0), A, &mut [0x1d, 0, 0, 0, 1])
        .is_some());
    // No ACK ever: the RECV is repeated (10 sends over 4.5 s), and the entry
    // outlives the last one by the linger.
    let mut now = ms(0);
    drain(&mut b, now);
    while let Some(t) = b.poll_timeout() {
        now = t;
        b.handle_timeout(now);
        drain(&mut b, now);
    }
    assert_eq!(now, ms(4500));
    assert!(b
        .handle_datagram(ms(6499), A, &mut [0x1d, 0, 0, 0, 1])
        .is_none());
    assert_eq!(b.stats().duplicates, 1);
    // That copy renewed the entry for the TTL.
    b.handle_timeout(ms(10_998));
    assert_eq!(b.remembered(), 1);
    b.handle_timeout(ms(10_999));
    assert_eq!(b.remembered(), 0);
}

/// Exchanges completed back to back on virtual time, `per_ms` a millisecond.
fn lockstep(config: Config, total: u32, per_ms: u32) -> (Gtudp, Gtudp, u64) {
    let mut a = Gtudp::new(config.clone(), ReferenceIds::new(9));
    let mut b = Gtudp::seeded(config, 1);
    let mut delivered = 0;
    let mut most = 0;
    let payload = [7u8; 16];
    for i in 0..total {
        let now = ms(1 + u64::from(i / per_ms));
        a.send_to(B, &payload);
        for (_, mut d) in drain(&mut a, now) {
            delivered += u64::from(b.handle_datagram(now, A, &mut d).is_some());
        }
        for (_, mut d) in drain(&mut b, now) {
            a.handle_datagram(now, B, &mut d);
        }
        for (_, mut d) in drain(&mut a, now) {
            b.handle_datagram(now, A, &mut d);
        }
        most = most.max(b.remembered());
    }
    assert!(most > 0);
    (a, b, delivered)
}

#[test]
fn defaults_sustain_far_more_than_200k_new_datagrams_a_second() {
    // 1.2 M exchanges at 400 per virtual millisecond: 3 s at 400 000/s.
    let (a, b, delivered) = lockstep(Config::default(), 1_200_000, 400);
    assert_eq!(delivered, 1_200_000);
    assert_eq!(b.stats().refused_full, 0);
    assert_eq!(a.stats().confirmed, 1_200_000);
    // Bounded by the rate times the linger, well under the capacity.
    assert!(b.remembered() <= 400 * 2_001, "{}", b.remembered());
    assert!(a.in_flight() == 0 && a.is_idle() && b.is_idle());
}

#[test]
fn a_full_table_throttles_a_peer_without_redelivery() {
    let config = Config {
        dedup_capacity: 1000,
        dedup_linger: Duration::from_millis(100),
        ..Config::default()
    };
    // 20 000 a second against room for 1 000 per 100 ms: half are refused
    // the first time, none delivered twice.
    let (_, b, delivered) = lockstep(config, 20_000, 20);
    let s = b.stats();
    assert!(s.refused_full > 0 && delivered >= 1000);
    assert_eq!(delivered + s.refused_full, 20_000);
    assert_eq!(s.duplicates, 0);
    assert!(b.remembered() <= 1000);
}

#[test]
fn oversized_payloads_fail_at_once() {
    let config = Config {
        max_payload: 4,
        ..Config::default()
    };
    let mut a = Gtudp::seeded(config, 1);
    let x = a.send_to(B, b"12345");
    assert!(drain(&mut a, ms(0)).is_empty());
    assert_eq!(events(&mut a), [Event::Failed(x, FailReason::TooLarge)]);
}

#[test]
fn identities_in_use_are_skipped() {
    struct Stuck;
    impl IdSource for Stuck {
        fn next_id(&mut self, _: &[u8]) -> Identity {
            Identity::from_u32(9)
        }
    }
    let mut a = Gtudp::new(Config::default(), Stuck);
    a.send_to(B, b"1");
    let y = a.send_to(B, b"2");
    assert_eq!(events(&mut a), [Event::Failed(y, FailReason::NoIdentity)]);
    // Another peer may get the same identity.
    a.send_to(A, b"3");
    assert_eq!(drain(&mut a, ms(0)).len(), 2);
}

#[test]
fn packets_of_one_size_for_one_peer_go_out_in_one_batch() {
    let mut a = Gtudp::seeded(Config::default(), 3);
    for _ in 0..3 {
        a.send_to(B, &[7; 100]);
    }
    a.send_to(B, &[7; 50]);
    a.send_to(A, &[7; 50]);
    let mut buf = Vec::new();
    let t = a.poll_transmit(ms(0), &mut buf).unwrap();
    assert_eq!((t.destination, t.size, t.segment_size), (B, 315, Some(105)));
    let t = a.poll_transmit(ms(0), &mut buf).unwrap();
    assert_eq!((t.destination, t.size, t.segment_size), (B, 55, None));
    let t = a.poll_transmit(ms(0), &mut buf).unwrap();
    assert_eq!((t.destination, t.size, t.segment_size), (A, 55, None));
    assert!(a.poll_transmit(ms(0), &mut buf).is_none());
}

#[test]
fn acks_and_new_data_interleaved_go_out_as_two_batches() {
    let mut a = Gtudp::new(Config::default(), ReferenceIds::new(0));
    let mut b = Gtudp::seeded(Config::default(), 1);
    for _ in 0..3 {
        a.send_to(B, b"first");
    }
    for (_, mut d) in drain(&mut a, ms(0)) {
        b.handle_datagram(ms(1), A, &mut d);
    }
    // Each RECV is answered with an ACK, and each confirmation opens a new
    // exchange, as a windowed sender does.
    for (_, mut r) in drain(&mut b, ms(1)) {
        a.handle_datagram(ms(2), B, &mut r);
        while let Some(ev) = a.poll_event() {
            assert!(matches!(ev, Event::Confirmed(_)));
            a.send_to(B, b"second");
        }
    }
    let mut buf = Vec::new();
    let acks = a.poll_transmit(ms(2), &mut buf).unwrap();
    assert_eq!((acks.size, acks.segment_size), (15, Some(5)));
    assert!(buf.chunks(5).all(|c| c[0] == 0xae));
    let data = a.poll_transmit(ms(2), &mut buf).unwrap();
    assert_eq!((data.size, data.segment_size), (33, Some(11)));
    assert!(buf.chunks(11).all(|c| c[0] == 0x1d && &c[5..] == b"second"));
    assert!(a.poll_transmit(ms(2), &mut buf).is_none());
}
