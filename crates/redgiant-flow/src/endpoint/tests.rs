use super::*;

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

#[test]
fn test_unreliable_order_skips_a_gap_after_max_gap() {
    let qos = QoS {
        max_gap: 100,
        ..QoS::BEST_EFFORT
    };
    let (_a, mut b, fa, fb) = pair(Config::default(), qos);
    // SDU 0 is lost; 1 and 2 wait behind it.
    for seq in [1, 2] {
        let mut d = data(fa, fb, seq, 0, 1, &[seq as u8]);
        b.handle_datagram(t(10), A, &mut d);
    }
    assert_eq!(b.read(fb), None);
    assert_eq!(b.poll_timeout(), Some(t(110)));
    b.handle_timeout(t(109));
    assert_eq!(b.read(fb), None);
    b.handle_timeout(t(110));
    assert_eq!(events(&mut b), [Event::Readable(fb)]);
    assert_eq!(b.read(fb), Some(vec![1]));
    assert_eq!(b.read(fb), Some(vec![2]));
    assert_eq!(b.stats().sdus_lost, 1);
    // SDU 0 arriving late is not handed out after its successors.
    let mut d = data(fa, fb, 0, 0, 1, &[0]);
    b.handle_datagram(t(120), A, &mut d);
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
