//! Two flow endpoints on an impaired in-memory network, stepped by hand in
//! virtual time so every timer firing is checked against the endpoint
//! contract: after `handle_timeout(now)` and every transmit drained, the
//! endpoint either sent something or asks to be woken strictly later (else
//! a driver spins without progress). And a reliable transfer always ends,
//! whatever the losses, the SDU sizes, the limits and how the application
//! writes and reads.

use std::time::Duration;

use proptest::prelude::*;
use redgiant_base::{DatagramEndpoint, Endpoint, Instant, Peer};
use redgiant_flow::{Config, Event, FlowEndpoint, FlowError, FlowId, QoS};
use rgtp_link::{ImpairmentConfig, SimNet};

const A: Peer = Peer::Mem(1);
const B: Peer = Peer::Mem(2);
const START: Instant = Instant::from_millis(1_000);
const NAME: &str = "sink";

/// SDU `i` of `len` bytes: its index first (when there is room), then
/// bytes derived from it.
fn sdu(i: u32, len: usize) -> Vec<u8> {
    let mut p: Vec<u8> = i.to_be_bytes().into_iter().take(len).collect();
    p.extend((p.len()..len).map(|j| (j as u32).wrapping_mul(131).wrapping_add(i) as u8));
    p
}

/// One scenario.
#[derive(Debug, Clone)]
struct Case {
    qos: QoS,
    sizes: Vec<usize>,
    /// SDUs the writer tries per turn.
    write_burst: usize,
    /// SDUs the reader takes per read, and how often it reads (0: every turn).
    read_burst: usize,
    read_every: Duration,
    send_buffer: usize,
    recv_buffer: usize,
    window: u32,
    max_in_flight: usize,
    net: ImpairmentConfig,
    seed: u64,
}

/// What a run saw.
struct Outcome {
    /// The allocation was never answered within its timeout (every ALLOC
    /// or every answer lost): the run ended there.
    alloc_gave_up: bool,
    got: Vec<Vec<u8>>,
    written: usize,
    drained: bool,
    end: Instant,
    sender: FlowEndpoint,
    receiver: FlowEndpoint,
}

/// Fires the endpoint's timers if due, sends everything it has and checks
/// the contract.
fn fire_and_send(
    e: &mut FlowEndpoint,
    me: Peer,
    now: Instant,
    net: &mut SimNet,
    buf: &mut Vec<u8>,
) -> Result<(), TestCaseError> {
    let fired = e.poll_timeout().is_some_and(|d| d <= now);
    if fired {
        e.handle_timeout(now);
    }
    let mut sent = 0;
    while let Some(t) = e.poll_transmit(now, buf) {
        for d in t.datagrams(buf) {
            net.send(now, me, t.destination, d);
        }
        sent += 1;
    }
    if fired {
        let next = e.poll_timeout();
        prop_assert!(
            sent > 0 || next.map_or(true, |d| d > now),
            "{me:?} at {now:?}: timers fired, nothing sent, next deadline {next:?}"
        );
    }
    Ok(())
}

fn run(case: &Case, limit: Duration) -> Result<Outcome, TestCaseError> {
    let config = Config {
        send_buffer: case.send_buffer,
        recv_buffer: case.recv_buffer,
        window: case.window,
        max_in_flight: case.max_in_flight,
        ..Config::default()
    };
    let mut a = FlowEndpoint::new(config.clone()).unwrap();
    let mut b = FlowEndpoint::new(config).unwrap();
    b.register(NAME).unwrap();
    let mut net = SimNet::new(case.net.clone(), case.seed);
    let flow = a.alloc(START, B, NAME, case.qos).unwrap();
    let sdus: Vec<Vec<u8>> = case
        .sizes
        .iter()
        .enumerate()
        .map(|(i, &n)| sdu(i as u32, n))
        .collect();
    let mut written = 0;
    let mut up = false;
    let mut drained = false;
    let mut incoming: Option<FlowId> = None;
    let mut got = Vec::new();
    let mut next_read = START;
    let mut now = START;
    let mut buf = Vec::new();
    let mut arrivals = Vec::new();
    let reliable = case.qos.loss == 0;
    let mut turns = 0u64;
    let mut blocked = false;
    // SDUs wait for the reader (it stops at the first empty read).
    let mut readable = false;
    loop {
        turns += 1;
        prop_assert!(turns < 2_000_000, "no end after {turns} turns at {now:?}");
        // The writer: as many SDUs as fit, up to its burst.
        if up {
            blocked = false;
            for _ in 0..case.write_burst {
                let Some(s) = sdus.get(written) else { break };
                match a.write(now, flow, s) {
                    Ok(()) => written += 1,
                    Err(FlowError::WouldBlock) => {
                        // Tried again when something else happens.
                        blocked = true;
                        break;
                    }
                    Err(e) => return Err(TestCaseError::fail(format!("write: {e}"))),
                }
            }
        }
        fire_and_send(&mut a, A, now, &mut net, &mut buf)?;
        fire_and_send(&mut b, B, now, &mut net, &mut buf)?;
        arrivals.clear();
        net.deliver_due(now, &mut arrivals);
        for (to, from, bytes) in arrivals.iter_mut() {
            // An acknowledgement may free room for the writer.
            blocked &= *to != A;
            let e = if *to == A { &mut a } else { &mut b };
            let _ = e.handle_datagram(now, *from, bytes);
        }
        let mut gave_up = false;
        while let Some(ev) = a.poll_event() {
            match ev {
                Event::Up(_) => up = true,
                Event::Down(_) if !up => gave_up = true,
                Event::Drained(_) => drained = written == sdus.len(),
                Event::Down(_) | Event::Refused { .. } | Event::Closed(_) => {
                    return Err(TestCaseError::fail(format!("sender: {ev:?}")))
                }
                _ => {}
            }
        }
        while let Some(ev) = b.poll_event() {
            match ev {
                Event::Alloc { flow, .. } => {
                    b.accept(now, flow).unwrap();
                    incoming = Some(flow);
                }
                Event::Readable(_) => readable = true,
                _ => {}
            }
        }
        // The reader: its burst, at its pace.
        if let Some(f) = incoming {
            if now >= next_read {
                for _ in 0..case.read_burst {
                    let Some(s) = b.read(f) else {
                        readable = false;
                        break;
                    };
                    got.push(s);
                }
                next_read = now + case.read_every;
            }
        }
        if gave_up {
            return Ok(Outcome {
                alloc_gave_up: true,
                got,
                written,
                drained,
                end: now,
                sender: a,
                receiver: b,
            });
        }
        let done = if reliable {
            got.len() == sdus.len()
        } else {
            drained
        };
        if done || now > START + limit {
            break;
        }
        let next = [a.poll_timeout(), b.poll_timeout(), net.next_delivery()]
            .into_iter()
            .flatten()
            .chain(readable.then_some(next_read))
            .chain((up && !blocked && written < sdus.len()).then_some(now))
            .min();
        let Some(next) = next else {
            return Err(TestCaseError::fail(format!(
                "nothing left to wait for at {now:?}"
            )));
        };
        now = next.max(now + Duration::from_micros(1));
    }
    Ok(Outcome {
        alloc_gave_up: false,
        got,
        written,
        drained,
        end: now,
        sender: a,
        receiver: b,
    })
}

fn net() -> impl Strategy<Value = ImpairmentConfig> {
    (0.0..0.3f64, 0.0..0.3f64, 0.0..0.1f64, 0u64..20, 0u64..5).prop_map(
        |(loss, reorder, dup, delay, jitter)| {
            ImpairmentConfig::perfect()
                .with_loss(loss)
                .with_reorder(reorder)
                .with_reorder_delay(Duration::from_millis(15))
                .with_duplicate(dup)
                .with_delay(Duration::from_millis(delay))
                .with_jitter(Duration::from_millis(jitter))
        },
    )
}

fn qos(reliable: bool) -> impl Strategy<Value = QoS> {
    let base = if reliable {
        prop_oneof![
            Just(QoS::DATA),
            Just(QoS::RAW.with_loss(0)),
            Just(QoS::DATA.with_timeout(0)),
        ]
        .boxed()
    } else {
        prop_oneof![
            Just(QoS::RAW),
            Just(QoS::BEST_EFFORT),
            Just(QoS::VOICE),
            Just(QoS::VIDEO),
        ]
        .boxed()
    };
    // Sometimes a pacer, from 200 kbit/s to 50 Mbit/s.
    (base, prop::option::of(200_000u64..50_000_000)).prop_map(|(mut q, rate)| {
        if let Some(r) = rate {
            q.bandwidth = r;
        }
        q
    })
}

fn case(reliable: bool) -> impl Strategy<Value = Case> {
    (
        qos(reliable),
        prop::collection::vec(
            prop_oneof![
                0usize..64,
                64usize..1300,
                1300usize..6000,
                6000usize..40_000
            ],
            1..60,
        ),
        1usize..16,
        1usize..8,
        prop_oneof![Just(0u64), 1u64..50],
        prop_oneof![Just(4usize << 20), 2_000usize..100_000],
        prop_oneof![Just(4usize << 20), 2_000usize..60_000],
        prop_oneof![Just(1024u32), 2u32..64],
        prop_oneof![Just(256usize), 1usize..32],
        net(),
        any::<u64>(),
    )
        .prop_map(
            |(qos, sizes, wb, rb, re, sb, rbuf, window, inflight, net, seed)| Case {
                qos,
                sizes,
                write_burst: wb,
                read_burst: rb,
                read_every: Duration::from_millis(re),
                send_buffer: sb,
                recv_buffer: rbuf,
                window,
                max_in_flight: inflight,
                net,
                seed,
            },
        )
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 64, ..ProptestConfig::default() })]

    #[test]
    fn a_reliable_transfer_always_completes_and_timers_never_stall(c in case(true)) {
        let r = run(&c, Duration::from_secs(3_600))?;
        if r.alloc_gave_up {
            // Possible under heavy loss; nothing was written.
            prop_assert_eq!(r.written, 0);
            return Ok(());
        }
        prop_assert_eq!(r.written, c.sizes.len());
        prop_assert_eq!(r.got.len(), c.sizes.len(), "ended at {:?}", r.end);
        let in_order = c.qos.in_order == 1;
        let mut seen = vec![false; c.sizes.len()];
        for (k, s) in r.got.iter().enumerate() {
            let i = (0..c.sizes.len())
                .find(|&i| !seen[i] && sdu(i as u32, c.sizes[i]) == *s)
                .ok_or_else(|| TestCaseError::fail(format!("SDU {k} was never written")))?;
            seen[i] = true;
            if in_order {
                prop_assert_eq!(i, k, "out of order");
            }
        }
        prop_assert!(r.sender.stats().data_sent > 0 || c.sizes.is_empty());
    }

    #[test]
    fn unreliable_flows_drain_and_timers_never_stall(c in case(false)) {
        let r = run(&c, Duration::from_secs(600))?;
        if r.alloc_gave_up {
            prop_assert_eq!(r.written, 0);
            return Ok(());
        }
        prop_assert!(r.drained, "the sender never drained (ended at {:?})", r.end);
        prop_assert!(r.got.len() <= c.sizes.len());
        for s in &r.got {
            prop_assert!(
                (0..c.sizes.len()).any(|i| sdu(i as u32, c.sizes[i]) == *s),
                "an SDU that was never written"
            );
        }
        prop_assert_eq!(r.receiver.stats().malformed, 0);
    }
}

/// Later SDUs fill the receive buffer while the oldest misses a lost
/// fragment: the retransmission of that fragment is still taken, so the
/// flow goes on.
#[test]
fn a_full_receive_buffer_still_takes_the_oldest_missing_fragment() {
    let mut filled = 0;
    for seed in 0..8 {
        let c = Case {
            qos: QoS::DATA,
            sizes: vec![6_000; 80],
            write_burst: 80,
            read_burst: 80,
            read_every: Duration::ZERO,
            send_buffer: 4 << 20,
            recv_buffer: 30_000,
            window: 1024,
            max_in_flight: 256,
            net: ImpairmentConfig::perfect()
                .with_loss(0.05)
                .with_delay(Duration::from_millis(5)),
            seed,
        };
        let r = run(&c, Duration::from_secs(3_600)).unwrap();
        assert!(!r.alloc_gave_up, "seed {seed}");
        assert_eq!(r.got.len(), 80, "seed {seed}: ended at {:?}", r.end);
        for (i, s) in r.got.iter().enumerate() {
            assert_eq!(*s, sdu(i as u32, 6_000), "seed {seed}: SDU {i}");
        }
        if r.receiver.stats().dropped_buffer > 0 {
            filled += 1;
        }
    }
    assert!(filled > 0, "no run filled the receive buffer");
}
