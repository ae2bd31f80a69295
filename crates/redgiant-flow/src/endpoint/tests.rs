use super::*;
use crate::seal::FlowKey;
use crate::wire::{Kind, PARITY_PREFIX_LEN, SEAL_OVERHEAD};

const A: Peer = Peer::Mem(1);
const B: Peer = Peer::Mem(2);

fn t(ms: u64) -> Instant {
    Instant::from_millis(1_000 + ms)
}

/// Moves every datagram each endpoint has to send to the other, until
/// neither has any. Returns how many moved.
fn pump(now: Instant, a: &mut FlowEndpoint, b: &mut FlowEndpoint) -> usize {
    let mut buf = Vec::new();
    let mut moved = 0;
    loop {
        let mut any = false;
        while let Some(tx) = a.poll_transmit(now, &mut buf) {
            assert_eq!(tx.destination, B);
            b.handle_datagram(now, A, &mut buf[..tx.size]);
            any = true;
            moved += 1;
        }
        while let Some(tx) = b.poll_transmit(now, &mut buf) {
            assert_eq!(tx.destination, A);
            a.handle_datagram(now, B, &mut buf[..tx.size]);
            any = true;
            moved += 1;
        }
        if !any {
            return moved;
        }
    }
}

fn events(e: &mut FlowEndpoint) -> Vec<Event> {
    std::iter::from_fn(|| e.poll_event()).collect()
}

/// A flow from A to B's "sink" with `qos`, up at both ends.
fn pair(config: Config, qos: QoS) -> (FlowEndpoint, FlowEndpoint, FlowId, FlowId) {
    let mut a = FlowEndpoint::new(config.clone()).unwrap();
    let mut b = FlowEndpoint::new(config).unwrap();
    b.register("sink").unwrap();
    let fa = a.alloc(t(0), B, "sink", qos).unwrap();
    pump(t(0), &mut a, &mut b);
    let fb = match events(&mut b).as_slice() {
        [Event::Alloc {
            flow,
            peer,
            name,
            qos: q,
        }] => {
            assert_eq!((*peer, name.as_str(), *q), (A, "sink", qos));
            *flow
        }
        other => panic!("expected one Alloc, got {other:?}"),
    };
    b.accept(t(0), fb).unwrap();
    pump(t(0), &mut a, &mut b);
    assert_eq!(events(&mut a), [Event::Up(fa)]);
    assert!(a.is_up(fa) && b.is_up(fb));
    (a, b, fa, fb)
}

#[test]
fn test_config_validation() {
    assert_eq!(Config::default().validate(), Ok(()));
    let small = Config {
        max_datagram: HEADER_LEN,
        ..Config::default()
    };
    assert_eq!(small.validate(), Err(ConfigError::DatagramTooSmall));
    let huge = Config {
        max_sdu: 1 << 30,
        ..Config::default()
    };
    assert_eq!(huge.validate(), Err(ConfigError::SduTooLarge));
    let zero = Config {
        window: 0,
        ..Config::default()
    };
    assert!(FlowEndpoint::new(zero).is_err());
}

#[test]
fn test_unknown_name_is_refused() {
    let mut a = FlowEndpoint::new(Config::default()).unwrap();
    let mut b = FlowEndpoint::new(Config::default()).unwrap();
    b.register("other").unwrap();
    let fa = a.alloc(t(0), B, "sink", QoS::RAW).unwrap();
    pump(t(0), &mut a, &mut b);
    assert_eq!(events(&mut b), []);
    assert_eq!(
        events(&mut a),
        [Event::Refused {
            flow: fa,
            reason: Reason::NoSuchName
        }]
    );
    assert_eq!(a.flow_count(), 0);
    assert_eq!(b.flow_count(), 0);
}

#[test]
fn test_refusal_is_repeated_not_asked_again() {
    let mut a = FlowEndpoint::new(Config::default()).unwrap();
    let mut b = FlowEndpoint::new(Config::default()).unwrap();
    b.register("sink").unwrap();
    let fa = a.alloc(t(0), B, "sink", QoS::DATA).unwrap();
    // The first ALLOC reaches B, which refuses; the answer is lost.
    let mut buf = Vec::new();
    let tx = a.poll_transmit(t(0), &mut buf).unwrap();
    b.handle_datagram(t(0), A, &mut buf[..tx.size]);
    let fb = match events(&mut b).as_slice() {
        [Event::Alloc { flow, .. }] => *flow,
        other => panic!("{other:?}"),
    };
    b.refuse(t(1), fb).unwrap();
    assert!(b.poll_transmit(t(1), &mut buf).is_some());
    // A repeats its ALLOC; B answers the same without asking again.
    a.handle_timeout(t(400));
    pump(t(400), &mut a, &mut b);
    assert_eq!(events(&mut b), []);
    assert_eq!(
        events(&mut a),
        [Event::Refused {
            flow: fa,
            reason: Reason::Refused
        }]
    );
}

#[test]
fn test_sdu_round_trip_and_layers() {
    let (mut a, mut b, fa, fb) = pair(Config::default(), QoS::DATA);
    assert_eq!(a.layers(fa).unwrap().names(), ["reorder", "arq", "timeout"]);
    assert_eq!(b.layers(fb), a.layers(fa));
    a.write(t(1), fa, b"hello").unwrap();
    a.write(t(1), fa, b"").unwrap();
    pump(t(1), &mut a, &mut b);
    assert_eq!(events(&mut b), [Event::Readable(fb)]);
    assert_eq!(b.read(fb).as_deref(), Some(&b"hello"[..]));
    assert_eq!(b.read(fb).as_deref(), Some(&b""[..]));
    assert_eq!(b.read(fb), None);
    // Acknowledged: nothing left to send.
    assert_eq!(a.unsent(fa), 0);
    assert_eq!(a.stats().data_retransmitted, 0);
}

#[test]
fn test_write_errors() {
    let config = Config {
        max_sdu: 10_000,
        send_buffer: 15_000,
        ..Config::default()
    };
    let (mut a, _b, fa, _fb) = pair(config, QoS::DATA);
    assert_eq!(
        a.write(t(1), fa, &[0; 10_001]),
        Err(FlowError::TooLarge {
            len: 10_001,
            max: 10_000
        })
    );
    a.write(t(1), fa, &[0; 10_000]).unwrap();
    assert_eq!(a.write(t(1), fa, &[0; 6_000]), Err(FlowError::WouldBlock));
    assert_eq!(a.write(t(1), FlowId(999), b"x"), Err(FlowError::NoSuchFlow));
    assert_eq!(
        a.alloc(t(1), B, "sink", QoS::DATA_CRYPT),
        Err(FlowError::NoKey)
    );
    assert_eq!(a.alloc(t(1), B, "", QoS::DATA), Err(FlowError::BadName));
}

#[test]
fn test_encrypted_alloc_is_refused() {
    let mut b = FlowEndpoint::new(Config::default()).unwrap();
    b.register("sink").unwrap();
    let mut d = Vec::new();
    Repr {
        src: FlowId(5),
        dst: FlowId(0),
        message: Message::Alloc {
            qos: QoS::VOICE_CRYPT,
            name: "sink",
        },
    }
    .emit_vec(&mut d);
    b.handle_datagram(t(0), A, &mut d);
    assert_eq!(events(&mut b), []);
    let mut buf = Vec::new();
    let tx = b.poll_transmit(t(0), &mut buf).unwrap();
    let r = Repr::parse(&buf[..tx.size]).unwrap();
    assert_eq!(r.dst, FlowId(5));
    assert_eq!(r.message, Message::AllocRefused(Reason::UnsupportedQoS));
}

#[test]
fn test_too_many_flows() {
    let config = Config {
        max_flows: 2,
        ..Config::default()
    };
    let mut a = FlowEndpoint::new(config).unwrap();
    a.alloc(t(0), B, "x", QoS::RAW).unwrap();
    a.alloc(t(0), B, "x", QoS::RAW).unwrap();
    assert_eq!(
        a.alloc(t(0), B, "x", QoS::RAW),
        Err(FlowError::TooManyFlows)
    );
}

fn data(src: FlowId, dst: FlowId, seq: u32, index: u16, count: u16, payload: &[u8]) -> Vec<u8> {
    let mut d = Vec::new();
    Repr {
        src,
        dst,
        message: Message::Data {
            seq,
            frag: Frag { index, count },
            payload,
        },
    }
    .emit_vec(&mut d);
    d
}

#[test]
fn test_declared_sizes_allocate_nothing() {
    let config = Config {
        max_sdu: 64 << 10,
        recv_buffer: 32 << 10,
        ..Config::default()
    };
    let (_a, mut b, fa, fb) = pair(config.clone(), QoS::DATA);
    // A fragment count beyond what max_sdu allows is dropped.
    let mut d = data(fa, fb, 0, 0, u16::MAX, &[1; 100]);
    b.handle_datagram(t(1), A, &mut d);
    assert_eq!(b.stats().dropped_bad_fragment, 1);
    assert_eq!(b.held(fb), 0);
    // Within the count, memory follows the bytes that came, up to the buffer.
    let count = config.max_fragments() as u16;
    for seq in 0..40u32 {
        for index in 0..3 {
            let mut d = data(fa, fb, seq, index, count, &[7; 1000]);
            b.handle_datagram(t(1), A, &mut d);
        }
    }
    assert!(b.held(fb) <= config.recv_buffer, "{}", b.held(fb));
    assert!(b.stats().dropped_buffer > 0);
    // A second count for the same SDU is refused.
    let before = b.stats().dropped_bad_fragment;
    let mut d = data(fa, fb, 0, 5, count - 1, &[1; 10]);
    b.handle_datagram(t(1), A, &mut d);
    assert_eq!(b.stats().dropped_bad_fragment, before + 1);
}

#[test]
fn test_window_bounds_arq_receiver() {
    let (_a, mut b, fa, fb) = pair(Config::default(), QoS::DATA);
    let far = Config::default().window;
    let mut d = data(fa, fb, far, 0, 1, b"far");
    b.handle_datagram(t(1), A, &mut d);
    assert_eq!(b.stats().dropped_window, 1);
    let mut buf = Vec::new();
    assert!(b.poll_transmit(t(1), &mut buf).is_none(), "no ACK for it");
}

#[test]
fn test_foreign_datagrams_are_counted() {
    let (_a, mut b, fa, fb) = pair(Config::default(), QoS::RAW);
    let mut d = data(fa, FlowId(777), 0, 0, 1, b"x");
    b.handle_datagram(t(1), A, &mut d);
    let mut d = data(FlowId(778), fb, 0, 0, 1, b"x");
    b.handle_datagram(t(1), A, &mut d);
    let mut d = data(fa, fb, 0, 0, 1, b"x");
    b.handle_datagram(t(1), Peer::Mem(9), &mut d);
    assert_eq!(b.stats().unknown_flow, 3);
    b.handle_datagram(t(1), A, &mut [1, 2, 3]);
    assert_eq!(b.stats().malformed, 1);
    assert_eq!(b.read(fb), None);
}

#[test]
fn test_dealloc_closes_the_peer_and_keeps_what_arrived() {
    let (mut a, mut b, fa, fb) = pair(Config::default(), QoS::RAW);
    a.write(t(1), fa, b"last words").unwrap();
    pump(t(1), &mut a, &mut b);
    a.dealloc(t(2), fa).unwrap();
    pump(t(2), &mut a, &mut b);
    assert_eq!(events(&mut b), [Event::Readable(fb), Event::Closed(fb)]);
    assert_eq!(b.read(fb).as_deref(), Some(&b"last words"[..]));
    assert_eq!(b.write(t(3), fb, b"x"), Err(FlowError::WrongState));
    // Forgotten after the linger.
    b.handle_timeout(t(2) + Config::default().linger);
    assert_eq!(b.flow_count(), 0);
}

#[test]
fn test_unanswered_alloc_goes_down() {
    let mut a = FlowEndpoint::new(Config::default()).unwrap();
    let fa = a
        .alloc(t(0), B, "sink", QoS::RAW.with_timeout(2_000))
        .unwrap();
    let mut buf = Vec::new();
    let mut sends = 0;
    let mut now = t(0);
    while let Some(deadline) = a.poll_timeout() {
        now = deadline.max(now);
        a.handle_timeout(now);
        while a.poll_transmit(now, &mut buf).is_some() {
            sends += 1;
        }
        if let Some(ev) = a.poll_event() {
            assert_eq!(ev, Event::Down(fa));
            break;
        }
    }
    assert_eq!(now, t(2_000));
    // 0, 300, 900, 2100 ms with doubling: three before the timeout.
    assert_eq!(sends, 3);
}

/// A receiver whose reorder wait leaves the QoS's max gap in charge.
fn patient() -> Config {
    Config {
        reorder_wait: Duration::from_secs(10),
        ..Config::default()
    }
}

#[test]
fn test_unreliable_order_skips_a_gap_after_max_gap() {
    // A gap loose enough that no parity is chosen.
    let qos = QoS {
        max_gap: 300,
        ..QoS::BEST_EFFORT
    };
    assert!(Layers::for_qos(&qos).fec.is_none());
    let (_a, mut b, fa, fb) = pair(patient(), qos);
    // SDU 0 is lost; 1 and 2 wait behind it.
    for seq in [1, 2] {
        let mut d = data(fa, fb, seq, 0, 1, &[seq as u8]);
        b.handle_datagram(t(10), A, &mut d);
    }
    assert_eq!(b.read(fb), None);
    assert_eq!(b.poll_timeout(), Some(t(310)));
    b.handle_timeout(t(309));
    assert_eq!(b.read(fb), None);
    b.handle_timeout(t(310));
    assert_eq!(events(&mut b), [Event::Readable(fb)]);
    assert_eq!(b.read(fb), Some(vec![1]));
    assert_eq!(b.read(fb), Some(vec![2]));
    assert_eq!(b.stats().sdus_lost, 1);
    // SDU 0 arriving late is not handed out after its successors.
    let mut d = data(fa, fb, 0, 0, 1, &[0]);
    b.handle_datagram(t(320), A, &mut d);
    assert_eq!(b.read(fb), None);
    assert_eq!(b.stats().duplicates, 1);
}

#[test]
fn test_pacer_holds_data_to_the_bandwidth() {
    // 80 kbit/s: 10 000 bytes a second, with a burst of two datagrams.
    let qos = QoS::RAW.with_bandwidth(80_000);
    let (mut a, mut b, fa, fb) = pair(Config::default(), qos);
    assert_eq!(a.layers(fa).unwrap().pacer, Some(80_000));
    for _ in 0..20 {
        a.write(t(0), fa, &[9; 1000]).unwrap();
    }
    let mut buf = Vec::new();
    let mut now = t(0);
    let mut sent = 0usize;
    while sent < 20 {
        while let Some(tx) = a.poll_transmit(now, &mut buf) {
            b.handle_datagram(now, A, &mut buf[..tx.size]);
            sent += 1;
        }
        if sent == 20 {
            break;
        }
        let next = a.poll_timeout().expect("a deadline while data waits");
        assert!(next > now, "no busy wait");
        now = next;
        a.handle_timeout(now);
    }
    // 20 × 1018 bytes, less a 2400-byte burst, at 10 000 bytes a second.
    let least = Duration::from_micros((20 * 1018 - 2400) * 100);
    assert!(now - t(0) >= least, "{:?}", now - t(0));
    assert!(
        now - t(0) <= least + Duration::from_millis(200),
        "{:?}",
        now - t(0)
    );
    let mut n = 0;
    while b.read(fb).is_some() {
        n += 1;
    }
    assert_eq!(n, 20);
}

fn keyed(key: Option<[u8; 32]>, seed: u8) -> FlowEndpoint {
    let config = Config {
        key: key.map(FlowKey::new),
        ..Config::default()
    };
    FlowEndpoint::seeded(config, [seed; 32]).unwrap()
}

/// Datagrams `e` has to send now.
fn drain(now: Instant, e: &mut FlowEndpoint) -> Vec<Vec<u8>> {
    let mut buf = Vec::new();
    let mut out = Vec::new();
    while let Some(tx) = e.poll_transmit(now, &mut buf) {
        out.push(buf[..tx.size].to_vec());
    }
    out
}

/// An encrypted flow from A to B's "sink", both with `key`.
fn sealed_pair(qos: QoS) -> (FlowEndpoint, FlowEndpoint, FlowId, FlowId) {
    let key = Some([0x5c; 32]);
    let mut a = keyed(key, 1);
    let mut b = keyed(key, 2);
    b.register("sink").unwrap();
    let fa = a.alloc(t(0), B, "sink", qos).unwrap();
    let alloc = drain(t(0), &mut a);
    assert_eq!(alloc.len(), 1);
    assert!(Repr::parse(&alloc[0]).unwrap().is_sealed());
    b.handle_datagram(t(0), A, &mut alloc[0].clone());
    let fb = match events(&mut b).as_slice() {
        [Event::Alloc { flow, .. }] => *flow,
        other => panic!("{other:?}"),
    };
    b.accept(t(0), fb).unwrap();
    pump(t(0), &mut a, &mut b);
    assert_eq!(events(&mut a), [Event::Up(fa)]);
    (a, b, fa, fb)
}

#[test]
fn test_keyed_config_needs_a_seed() {
    let config = Config {
        key: Some(FlowKey::new([1; 32])),
        ..Config::default()
    };
    assert_eq!(
        FlowEndpoint::new(config.clone()).unwrap_err(),
        ConfigError::KeyWithoutSeed
    );
    assert!(FlowEndpoint::seeded(config, [0; 32]).is_ok());
    let tiny = Config {
        key: Some(FlowKey::new([1; 32])),
        max_datagram: HEADER_LEN + SEAL_OVERHEAD + PARITY_PREFIX_LEN,
        ..Config::default()
    };
    assert_eq!(tiny.validate(), Err(ConfigError::DatagramTooSmall));
}

#[test]
fn test_encrypted_flow_carries_sdus_sealed_both_ways() {
    let (mut a, mut b, fa, fb) = sealed_pair(QoS::DATA_CRYPT);
    assert!(a.layers(fa).unwrap().aead && b.layers(fb).unwrap().aead);
    let secret = b"attack at dawn, bring the large map".repeat(100);
    a.write(t(1), fa, &secret).unwrap();
    b.write(t(1), fb, b"understood").unwrap();
    let (mut to_b, mut to_a) = (drain(t(1), &mut a), drain(t(1), &mut b));
    for d in to_b.iter().chain(&to_a) {
        let r = Repr::parse(d).unwrap();
        assert!(r.is_sealed(), "{r:?}");
        assert!(!d.windows(14).any(|w| w == &secret[..14]));
        assert!(!d.windows(10).any(|w| w == b"understood"));
    }
    for d in &mut to_b {
        b.handle_datagram(t(2), A, d);
    }
    for d in &mut to_a {
        a.handle_datagram(t(2), B, d);
    }
    pump(t(2), &mut a, &mut b);
    assert_eq!(b.read(fb).unwrap(), secret);
    assert_eq!(a.read(fa).unwrap(), b"understood");
    // The ACKs came back sealed and retired everything.
    assert_eq!(a.unsent(fa), 0);
    assert_eq!(b.stats().auth_failed + a.stats().auth_failed, 0);
    // DEALLOC is sealed too, and closes the flow.
    a.dealloc(t(3), fa).unwrap();
    let d = drain(t(3), &mut a);
    assert!(Repr::parse(&d[0]).unwrap().is_sealed());
    b.handle_datagram(t(3), A, &mut d[0].clone());
    assert_eq!(events(&mut b).last(), Some(&Event::Closed(fb)));
}

#[test]
fn test_tampered_replayed_and_plain_datagrams_are_dropped() {
    let (mut a, mut b, fa, fb) = sealed_pair(QoS::RAW_CRYPT);
    a.write(t(1), fa, b"one").unwrap();
    let d = drain(t(1), &mut a).remove(0);
    // Any flipped byte: refused, counted, nothing delivered.
    for i in 0..d.len() {
        let mut x = d.clone();
        x[i] ^= 0x01;
        b.handle_datagram(t(1), A, &mut x);
    }
    let s = b.stats();
    assert_eq!(b.read(fb), None);
    assert_eq!(s.auth_failed + s.malformed + s.unknown_flow, d.len() as u64);
    assert!(s.auth_failed >= d.len() as u64 - 18, "{s:?}");
    // The genuine one opens once; again it is a replay.
    b.handle_datagram(t(2), A, &mut d.clone());
    assert_eq!(b.read(fb).unwrap(), b"one");
    b.handle_datagram(t(2), A, &mut d.clone());
    assert_eq!(b.stats().replayed, 1);
    assert_eq!(b.read(fb), None);
    // A plain DATA on an encrypted flow is refused.
    let mut plain = Vec::new();
    Repr {
        src: fa,
        dst: fb,
        message: Message::Data {
            seq: 1,
            frag: Frag::WHOLE,
            payload: b"forged",
        },
    }
    .emit_vec(&mut plain);
    let before = b.stats().auth_failed;
    b.handle_datagram(t(3), A, &mut plain);
    assert_eq!(b.stats().auth_failed, before + 1);
    assert_eq!(b.read(fb), None);
    // A sealed DATA on a plain flow is not ours either.
    let (mut c, mut e, _fc, _fe) = pair(Config::default(), QoS::RAW);
    let before = e.stats().unknown_flow;
    let mut x = d.clone();
    e.handle_datagram(t(3), A, &mut x);
    assert_eq!(e.stats().unknown_flow, before + 1);
    let _ = drain(t(3), &mut c);
}

#[test]
fn test_acceptor_without_key_refuses_with_no_key() {
    let mut a = keyed(Some([3; 32]), 1);
    let mut b = FlowEndpoint::new(Config::default()).unwrap();
    b.register("sink").unwrap();
    let fa = a.alloc(t(0), B, "sink", QoS::VOICE_CRYPT).unwrap();
    pump(t(0), &mut a, &mut b);
    assert_eq!(events(&mut b), []);
    assert_eq!(
        events(&mut a),
        [Event::Refused {
            flow: fa,
            reason: Reason::NoKey
        }]
    );
    assert!(Reason::NoKey.to_string().contains("RGTP_FLOW_KEY"));
}

#[test]
fn test_different_keys_are_refused_with_key_mismatch() {
    let mut a = keyed(Some([3; 32]), 1);
    let mut b = keyed(Some([4; 32]), 2);
    b.register("sink").unwrap();
    let fa = a.alloc(t(0), B, "sink", QoS::DATA_CRYPT).unwrap();
    pump(t(0), &mut a, &mut b);
    assert_eq!(events(&mut b), []);
    assert_eq!(
        events(&mut a),
        [Event::Refused {
            flow: fa,
            reason: Reason::KeyMismatch
        }]
    );
    // A plain ALLOC asking for encryption is still refused as unsupported.
    let mut d = Vec::new();
    Repr {
        src: FlowId(77),
        dst: FlowId(0),
        message: Message::Alloc {
            qos: QoS::DATA_CRYPT,
            name: "sink",
        },
    }
    .emit_vec(&mut d);
    b.handle_datagram(t(1), A, &mut d);
    let r = drain(t(1), &mut b);
    assert_eq!(
        Repr::parse(&r[0]).unwrap().message,
        Message::AllocRefused(Reason::UnsupportedQoS)
    );
}

#[test]
fn test_forged_alloc_ok_leaves_the_flow_allocating() {
    let key = Some([6; 32]);
    let mut a = keyed(key, 1);
    let mut b = keyed(key, 2);
    b.register("sink").unwrap();
    let fa = a.alloc(t(0), B, "sink", QoS::DATA_CRYPT).unwrap();
    let alloc = drain(t(0), &mut a);
    b.handle_datagram(t(0), A, &mut alloc[0].clone());
    let fb = match events(&mut b).as_slice() {
        [Event::Alloc { flow, .. }] => *flow,
        other => panic!("{other:?}"),
    };
    b.accept(t(0), fb).unwrap();
    let ok = drain(t(0), &mut b).remove(0);
    let mut forged = ok.clone();
    let n = forged.len();
    forged[n - 20] ^= 0x80; // the salt
    a.handle_datagram(t(1), B, &mut forged);
    assert_eq!(a.stats().auth_failed, 1);
    assert!(!a.is_up(fa));
    // A plain ALLOC_OK does not do either.
    let mut plain = ok[..HEADER_LEN].to_vec();
    plain[1] = Kind::AllocOk as u8;
    a.handle_datagram(t(1), B, &mut plain);
    assert_eq!(a.stats().auth_failed, 2);
    assert!(!a.is_up(fa));
    a.handle_datagram(t(2), B, &mut ok.clone());
    assert_eq!(events(&mut a), [Event::Up(fa)]);
}

#[test]
fn test_fec_rebuilds_lost_sdus_without_a_round_trip() {
    let qos = QoS::VIDEO;
    let fec = Layers::for_qos(&qos).fec.unwrap();
    let (mut a, mut b, fa, fb) = pair(Config::default(), qos);
    let sdus: Vec<Vec<u8>> = (0..fec.data)
        .map(|i| vec![i; 100 + 37 * usize::from(i)])
        .collect();
    for s in &sdus {
        a.write(t(1), fa, s).unwrap();
    }
    let out = drain(t(1), &mut a);
    let kinds: Vec<Kind> = out.iter().map(|d| Repr::parse(d).unwrap().kind()).collect();
    let parity = kinds.iter().filter(|&&k| k == Kind::Parity).count();
    assert_eq!(parity, usize::from(fec.parity));
    assert_eq!(kinds.len(), usize::from(fec.data) + parity);
    // Lose SDUs 2 and 5; the rest and the parity arrive.
    for (i, d) in out.into_iter().enumerate() {
        if i != 2 && i != 5 {
            b.handle_datagram(t(2), A, &mut d.clone());
        }
    }
    let mut got = Vec::new();
    while let Some(s) = b.read(fb) {
        got.push(s);
    }
    assert_eq!(got, sdus);
    let s = b.stats();
    assert_eq!(s.sdus_recovered, 2);
    assert_eq!(s.acks_sent, 0);
    assert!(drain(t(2), &mut b).is_empty(), "nothing asked again");
    assert_eq!(a.stats().parity_sent, 2);
}

#[test]
fn test_fec_group_closes_after_the_flush() {
    let qos = QoS::VOICE;
    let fec = Layers::for_qos(&qos).fec.unwrap();
    let (mut a, mut b, fa, fb) = pair(Config::default(), qos);
    for i in 0..3u8 {
        a.write(t(1), fa, &[i; 40]).unwrap();
    }
    // Paced voice: send what the pacer lets out now, then the rest.
    let mut datagrams = Vec::new();
    let mut now = t(1);
    while datagrams.len() < 3 {
        datagrams.extend(drain(now, &mut a));
        now = now + Duration::from_millis(1);
    }
    assert!(datagrams
        .iter()
        .all(|d| Repr::parse(d).unwrap().kind() == Kind::Data));
    // The group is not full: its parity waits for the flush.
    let flush = t(1) + fec.flush;
    assert!(a.poll_timeout().unwrap() <= flush);
    a.handle_timeout(flush);
    let mut parity = Vec::new();
    let mut now = flush;
    while parity.is_empty() {
        parity.extend(drain(now, &mut a));
        now = now + Duration::from_millis(1);
    }
    let r = Repr::parse(&parity[0]).unwrap();
    match r.message {
        Message::Parity { first, group, .. } => {
            assert_eq!(first, 0);
            assert_eq!((group.data, group.parity), (3, 1));
        }
        other => panic!("{other:?}"),
    }
    // SDU 1 lost: parity alone rebuilds it.
    b.handle_datagram(now, A, &mut datagrams[0].clone());
    b.handle_datagram(now, A, &mut datagrams[2].clone());
    b.handle_datagram(now, A, &mut parity[0].clone());
    let got: Vec<Vec<u8>> = std::iter::from_fn(|| b.read(fb)).collect();
    assert_eq!(got, [[0u8; 40], [1; 40], [2; 40]]);
    assert_eq!(b.stats().sdus_recovered, 1);
}

#[test]
fn test_sealed_fec_flow_rebuilds_from_sealed_parity() {
    let (mut a, mut b, fa, fb) = sealed_pair(QoS::VIDEO_CRYPT);
    for i in 0..8u8 {
        a.write(t(1), fa, &[i; 300]).unwrap();
    }
    let out = drain(t(1), &mut a);
    assert_eq!(out.len(), 10);
    for (i, d) in out.into_iter().enumerate() {
        let r = Repr::parse(&d).unwrap();
        assert!(r.is_sealed());
        if i != 0 && i != 7 {
            b.handle_datagram(t(2), A, &mut d.clone());
        }
    }
    let got: Vec<Vec<u8>> = std::iter::from_fn(|| b.read(fb)).collect();
    assert_eq!(got, (0..8u8).map(|i| vec![i; 300]).collect::<Vec<_>>());
    assert_eq!(b.stats().sdus_recovered, 2);
}

#[test]
fn test_unreliable_order_waits_no_longer_than_the_reorder_wait() {
    // Best effort sets no gap bound; a looser one than the reorder wait is
    // cut to it too (with a bound at the wait or below, parity is chosen,
    // which waits less).
    for (max_gap, waited) in [(u32::MAX, 100), (300, 100)] {
        let qos = QoS {
            max_gap,
            ..QoS::BEST_EFFORT
        };
        assert!(Layers::for_qos(&qos).fec.is_none());
        let (_a, mut b, fa, fb) = pair(Config::default(), qos);
        b.handle_datagram(t(10), A, &mut data(fa, fb, 1, 0, 1, &[1]));
        assert_eq!(b.poll_timeout(), Some(t(10 + waited)), "max_gap {max_gap}");
        b.handle_timeout(t(9 + waited));
        assert_eq!(b.read(fb), None);
        b.handle_timeout(t(10 + waited));
        assert_eq!(b.read(fb), Some(vec![1]), "max_gap {max_gap}");
        assert_eq!(b.stats().sdus_lost, 1);
    }
}

#[test]
fn test_each_gap_waits_from_when_its_successor_completed() {
    let qos = QoS {
        max_gap: 300,
        ..QoS::BEST_EFFORT
    };
    let (_a, mut b, fa, fb) = pair(patient(), qos);
    // 0 and 2 are lost; 1 completes at 10 ms, 3 at 200 ms.
    b.handle_datagram(t(10), A, &mut data(fa, fb, 1, 0, 1, &[1]));
    b.handle_datagram(t(200), A, &mut data(fa, fb, 3, 0, 1, &[3]));
    assert_eq!(b.poll_timeout(), Some(t(310)));
    b.handle_timeout(t(310));
    assert_eq!(b.read(fb), Some(vec![1]));
    assert_eq!(b.read(fb), None);
    // The second gap counts from 200 ms, not from the first skip.
    assert_eq!(b.poll_timeout(), Some(t(500)));
    b.handle_timeout(t(500));
    assert_eq!(b.read(fb), Some(vec![3]));
    assert_eq!(b.stats().sdus_lost, 2);
}

#[test]
fn test_gaps_already_overdue_are_skipped_together() {
    let qos = QoS {
        max_gap: 300,
        ..QoS::BEST_EFFORT
    };
    let (_a, mut b, fa, fb) = pair(Config::default(), qos);
    b.handle_datagram(t(10), A, &mut data(fa, fb, 1, 0, 1, &[1]));
    b.handle_datagram(t(20), A, &mut data(fa, fb, 3, 0, 1, &[3]));
    b.handle_timeout(t(400));
    assert_eq!(b.read(fb), Some(vec![1]));
    assert_eq!(b.read(fb), Some(vec![3]));
}

#[test]
fn test_parity_from_a_hostile_peer_stays_bounded() {
    let (_a, mut b, fa, fb) = pair(Config::default(), QoS::VIDEO);
    let parity = |first: u32, index: u16, count: u16, shard: &[u8]| {
        let mut d = Vec::new();
        Repr {
            src: fa,
            dst: fb,
            message: Message::Parity {
                first,
                frag: Frag { index, count },
                group: Group {
                    data: 8,
                    parity: 2,
                    index: 0,
                },
                shard,
            },
        }
        .emit_vec(&mut d);
        d
    };
    // Empty pieces never make a shard.
    b.handle_datagram(t(1), A, &mut parity(0, 0, 2, &[]));
    assert_eq!(b.stats().dropped_bad_fragment, 1);
    // Many groups: at most MAX_FEC_GROUPS are held.
    for g in 0..(MAX_FEC_GROUPS as u32 + 40) {
        b.handle_datagram(t(1), A, &mut parity(g * 8, 0, 3, &[1; 10]));
    }
    let f = b.flows.get(&fb).unwrap();
    assert_eq!(f.fec_rx.groups.len(), MAX_FEC_GROUPS);
    assert_eq!(f.fec_rx.bytes, MAX_FEC_GROUPS * 10);
    // A shard that disagrees with its group's shape is dropped.
    let before = b.stats().dropped_bad_fragment;
    let mut d = parity(100 * 8, 1, 3, &[1; 10]);
    d[HEADER_LEN] = 7;
    b.handle_datagram(t(1), A, &mut d);
    assert_eq!(b.stats().dropped_bad_fragment, before + 1);
    // Nothing was handed out from garbage.
    assert_eq!(b.read(fb), None);
}

#[test]
fn test_queue_lens_follow_what_each_end_holds() {
    let (mut a, mut b, fa, fb) = pair(Config::default(), QoS::DATA);
    assert_eq!(a.queue_lens(fa), Some(QueueLens::default()));
    // One SDU of three fragments and two of one.
    let frag = Config::default().fragment_len();
    a.write(t(1), fa, &vec![7; 2 * frag + 1]).unwrap();
    a.write(t(1), fa, b"x").unwrap();
    a.write(t(1), fa, b"y").unwrap();
    assert_eq!(a.queue_lens(fa), Some(QueueLens { rx: 0, tx: 5 }));
    // Sent but not acknowledged: still held.
    let sent = drain(t(2), &mut a);
    assert_eq!(sent.len(), 5);
    assert_eq!(a.queue_lens(fa).unwrap().tx, 5);
    for mut d in sent {
        b.handle_datagram(t(3), A, &mut d);
    }
    assert_eq!(b.queue_lens(fb), Some(QueueLens { rx: 3, tx: 0 }));
    assert!(b.read(fb).is_some());
    assert_eq!(b.queue_lens(fb).unwrap().rx, 2);
    // The acknowledgements empty the sender's queue.
    for mut d in drain(t(4), &mut b) {
        a.handle_datagram(t(5), B, &mut d);
    }
    assert_eq!(a.queue_lens(fa).unwrap().tx, 0);
    assert_eq!(a.queue_lens(FlowId(0xdead)), None);
}
