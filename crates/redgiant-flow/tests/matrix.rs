//! The QoS-to-behaviour matrix: each layer a QoS selects, checked in the
//! simulator with seeded impairments, on plain and on encrypted flows.
//!
//! | QoS                         | behaviour checked here |
//! |-----------------------------|------------------------|
//! | `loss = 0` (**arq**)        | every SDU exactly once at 20 % loss and 5 % duplication |
//! | `in_order = 1` (**reorder**)| SDUs in sequence under heavy reordering |
//! | `cypher_s > 0` (**aead**)   | no SDU byte in clear on the wire; damaged datagrams never reach the application; another key or none is refused |
//! | `timeout` (**timeout**)     | a vanished peer brings the flow down within the timeout plus [`DOWN_MARGIN`] |
//! | loss tolerated, loose bounds| DATA sent once per SDU, never acknowledged; in order, a lost SDU holds the rest back no longer than the reorder wait |
//! | loss tolerated, tight bound (**fec**) | at 5 % loss at least [`FEC_MIN_DELIVERED`] of the SDUs, none later than `max_gap`, no retransmission |

use std::collections::HashSet;
use std::convert::Infallible;
use std::io;
use std::time::Duration;

use redgiant_base::driver::{simulate, Application, Network, Stepper, UntilEnd};
use redgiant_base::{Instant, Peer};
use redgiant_flow::wire::{Kind, Reason, Repr};
use redgiant_flow::{Config, Event, FlowEndpoint, FlowId, FlowKey, Layers, QoS};
use rgtp_link::{ImpairmentConfig, SimNet};

const A: Peer = Peer::Mem(1);
const B: Peer = Peer::Mem(2);
const START: Instant = Instant::from_millis(1_000);
const NAME: &str = "sink";
const KEY: [u8; 32] = [0x42; 32];

/// How late after the QoS timeout a flow whose peer vanished may go down:
/// the endpoint declares it down at the first timer at or after the
/// deadline, and the simulator moves time in steps of at least 1 µs.
const DOWN_MARGIN: Duration = Duration::from_millis(1);

/// The share of SDUs an **fec** flow delivers at 5 % random loss. Groups
/// of up to 8 SDUs with 2 parity shards lose SDUs only when 3 or more of
/// their datagrams are lost, a few groups in a thousand.
const FEC_MIN_DELIVERED: f64 = 0.99;

fn endpoint(key: Option<[u8; 32]>, seed: u8) -> FlowEndpoint {
    let config = Config {
        key: key.map(FlowKey::new),
        ..Config::default()
    };
    FlowEndpoint::seeded(config, [seed; 32]).unwrap()
}

/// The key an encrypted QoS needs.
fn key_for(qos: &QoS) -> Option<[u8; 32]> {
    (qos.cypher_s > 0).then_some(KEY)
}

/// A deterministic generator for SDU contents.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0
    }

    fn bytes(&mut self, n: usize) -> Vec<u8> {
        (0..n).map(|_| self.next() as u8).collect()
    }
}

/// SDU `i`: its index, then `len - 4` pseudo-random bytes.
fn sdu(rng: &mut Rng, i: u32, len: usize) -> Vec<u8> {
    let mut s = i.to_be_bytes().to_vec();
    s.extend(rng.bytes(len.max(4) - 4));
    s
}

fn index(s: &[u8]) -> u32 {
    u32::from_be_bytes([s[0], s[1], s[2], s[3]])
}

/// A [`SimNet`] that keeps a copy of every datagram sent.
struct Recorder {
    net: SimNet,
    sent: Vec<(Peer, Vec<u8>)>,
}

impl Recorder {
    fn new(config: ImpairmentConfig, seed: u64) -> Self {
        Recorder {
            net: SimNet::new(config, seed),
            sent: Vec::new(),
        }
    }

    fn count(&self, from: Peer, kind: Kind) -> u64 {
        self.sent
            .iter()
            .filter(|(p, d)| *p == from && Repr::parse(d).unwrap().kind() == kind)
            .count() as u64
    }

    fn all_from(&self, from: Peer) -> u64 {
        self.sent.iter().filter(|(p, _)| *p == from).count() as u64
    }
}

impl Network for Recorder {
    fn send(&mut self, now: Instant, from: Peer, to: Peer, data: &[u8]) {
        assert!(
            Repr::parse(data).is_ok(),
            "endpoints send well-formed datagrams"
        );
        self.sent.push((from, data.to_vec()));
        self.net.send(now, from, to, data);
    }

    fn deliver_due(&mut self, now: Instant, out: &mut Vec<(Peer, Peer, Vec<u8>)>) -> usize {
        self.net.deliver_due(now, out)
    }

    fn next_delivery(&self) -> Option<Instant> {
        self.net.next_delivery()
    }
}

#[derive(Debug, Clone, Copy, PartialEq)]
enum Goal {
    /// Everything written was sent (and, with **arq**, acknowledged).
    Drained,
    /// This many SDUs came back.
    Echoes(usize),
    /// The flow went down or was refused.
    Over,
    /// Run until the time limit.
    Never,
}

/// Allocates a flow to B, writes its SDUs once the flow is up and
/// collects what comes back.
struct Client {
    qos: QoS,
    to_write: Vec<Vec<u8>>,
    goal: Goal,
    flow: FlowId,
    got: Vec<Vec<u8>>,
    down_at: Option<Instant>,
    events: Vec<Event>,
}

fn client(
    qos: QoS,
    key: Option<[u8; 32]>,
    to_write: Vec<Vec<u8>>,
    goal: Goal,
) -> Stepper<FlowEndpoint, Client> {
    let mut e = endpoint(key, 1);
    let flow = e.alloc(START, B, NAME, qos).unwrap();
    let c = Client {
        qos,
        to_write,
        goal,
        flow,
        got: Vec::new(),
        down_at: None,
        events: Vec::new(),
    };
    Stepper::new(e, c, A)
}

impl Application<FlowEndpoint> for Client {
    type Output = ();
    type Error = io::Error;

    fn deliver(&mut self, d: Infallible) -> io::Result<()> {
        match d {}
    }

    fn event(&mut self, e: &mut FlowEndpoint, ev: Event) -> io::Result<Option<()>> {
        self.events.push(ev.clone());
        let now = e.now();
        match ev {
            Event::Up(f) => {
                for s in self.to_write.drain(..) {
                    e.write(now, f, &s)
                        .expect("the send buffer holds every SDU");
                }
            }
            Event::Readable(f) => self.got.extend(std::iter::from_fn(|| e.read(f))),
            Event::Down(_) | Event::Refused { .. } => self.down_at = Some(now),
            _ => {}
        }
        let done = match self.goal {
            Goal::Drained => matches!(ev, Event::Drained(_)),
            Goal::Echoes(n) => self.got.len() >= n,
            Goal::Over => self.down_at.is_some(),
            Goal::Never => false,
        };
        Ok(done.then_some(()))
    }
}

/// Accepts flows to [`NAME`] and records what arrives and when; with
/// `echo`, sends each SDU back.
#[derive(Default)]
struct Server {
    echo: bool,
    got: Vec<(Instant, Vec<u8>)>,
    events: Vec<Event>,
}

fn server(key: Option<[u8; 32]>, echo: bool) -> Stepper<FlowEndpoint, Server> {
    let mut e = endpoint(key, 2);
    e.register(NAME).unwrap();
    let s = Server {
        echo,
        ..Server::default()
    };
    Stepper::new(e, s, B).background()
}

impl Application<FlowEndpoint> for Server {
    type Output = ();
    type Error = io::Error;

    fn deliver(&mut self, d: Infallible) -> io::Result<()> {
        match d {}
    }

    fn event(&mut self, e: &mut FlowEndpoint, ev: Event) -> io::Result<Option<()>> {
        self.events.push(ev.clone());
        let now = e.now();
        match ev {
            Event::Alloc { flow, .. } => e.accept(now, flow).unwrap(),
            Event::Readable(f) => {
                while let Some(s) = e.read(f) {
                    if self.echo {
                        e.write(now, f, &s).unwrap();
                    }
                    self.got.push((now, s));
                }
            }
            _ => {}
        }
        Ok(None)
    }
}

struct Run {
    a: Stepper<FlowEndpoint, Client>,
    b: Stepper<FlowEndpoint, Server>,
    net: Recorder,
}

/// Runs a client to its goal (within `limit`), then the server alone for
/// another second to take what is still on the way.
fn run(
    impair: ImpairmentConfig,
    seed: u64,
    mut a: Stepper<FlowEndpoint, Client>,
    mut b: Stepper<FlowEndpoint, Server>,
    limit: Duration,
) -> Run {
    let mut net = Recorder::new(impair, seed);
    let ended = simulate(&mut net, &mut [&mut a, &mut b], START, START + limit);
    assert!(
        matches!(a.outcome(), Some(Ok(()))),
        "{:?}: goal not reached by {ended:?}: {:?}",
        a.app.qos,
        a.app.events
    );
    simulate(
        &mut net,
        &mut [&mut UntilEnd(&mut b)],
        ended,
        ended + Duration::from_secs(1),
    );
    Run { a, b, net }
}

fn lossy(loss: f64) -> ImpairmentConfig {
    ImpairmentConfig::perfect()
        .with_loss(loss)
        .with_delay(Duration::from_millis(10))
        .with_jitter(Duration::from_millis(3))
        .with_duplicate(0.05)
}

fn reordering() -> ImpairmentConfig {
    ImpairmentConfig::perfect()
        .with_delay(Duration::from_millis(5))
        .with_reorder(0.3)
        .with_reorder_delay(Duration::from_millis(30))
}

/// Which of `n` SDUs arrived, each checked against what was written and
/// counted; panics on a damaged SDU.
fn arrivals<'s>(n: usize, got: impl Iterator<Item = &'s Vec<u8>>, sent: &[Vec<u8>]) -> Vec<u32> {
    let mut seen = vec![0u32; n];
    for s in got {
        let i = index(s) as usize;
        assert_eq!(*s, sent[i], "SDU {i} damaged");
        seen[i] += 1;
    }
    seen
}

#[test]
fn arq_delivers_every_sdu_exactly_once_at_20_percent_loss() {
    const N: u32 = 300;
    for (qos, seed) in [
        (QoS::DATA, 1),
        (QoS::DATA_CRYPT, 2),
        (QoS::RAW_CRYPT.with_loss(0), 3),
    ] {
        let mut rng = Rng(seed + 100);
        let sdus: Vec<Vec<u8>> = (0..N)
            .map(|i| sdu(&mut rng, i, 4 + (i as usize * 397) % 3000))
            .collect();
        let key = key_for(&qos);
        let r = run(
            lossy(0.2),
            seed,
            client(qos, key, sdus.clone(), Goal::Drained),
            server(key, false),
            Duration::from_secs(600),
        );
        let seen = arrivals(N as usize, r.b.app.got.iter().map(|(_, s)| s), &sdus);
        assert!(seen.iter().all(|&n| n == 1), "{qos:?}: {seen:?}");
        if qos.in_order == 1 {
            let order: Vec<u32> = r.b.app.got.iter().map(|(_, s)| index(s)).collect();
            assert_eq!(order, (0..N).collect::<Vec<_>>(), "{qos:?}");
        }
        let (sa, sb) = (r.a.endpoint.stats(), r.b.endpoint.stats());
        assert!(sa.data_retransmitted > 0, "{qos:?}: {sa:?}");
        if key.is_some() {
            // Datagrams the network duplicated are replays to the receiver.
            assert!(sb.replayed > 0, "{qos:?}: {sb:?}");
            assert_eq!(sb.auth_failed, 0, "{qos:?}: {sb:?}");
        }
    }
}

#[test]
fn in_order_delivers_in_sequence_under_reordering() {
    const N: u32 = 200;
    let mut rng = Rng(7);
    let sdus: Vec<Vec<u8>> = (0..N)
        .map(|i| sdu(&mut rng, i, 4 + (i as usize * 13) % 1500))
        .collect();
    let order = |qos: QoS, seed: u64| -> (Vec<u32>, u64) {
        let key = key_for(&qos);
        let r = run(
            reordering(),
            seed,
            client(qos, key, sdus.clone(), Goal::Drained),
            server(key, false),
            Duration::from_secs(60),
        );
        let got = r.b.app.got.iter().map(|(_, s)| index(s)).collect();
        (got, r.net.net.impairment_stats().reordered)
    };
    let in_seq: Vec<u32> = (0..N).collect();
    for qos in [
        QoS::DATA,
        QoS::DATA_CRYPT,
        QoS::BEST_EFFORT,
        QoS::BEST_EFFORT_CRYPT,
    ] {
        let (got, reordered) = order(qos, 11);
        assert!(reordered > 10, "{qos:?}: {reordered}");
        assert_eq!(got, in_seq, "{qos:?}");
    }
    // Without the layer the same network shows its reordering.
    let (unordered, _) = order(QoS::RAW_CRYPT.with_loss(0), 11);
    assert_ne!(unordered, in_seq);
}

/// Every 12-byte window of the SDUs.
fn windows(sdus: &[Vec<u8>]) -> HashSet<[u8; 12]> {
    sdus.iter()
        .flat_map(|s| s.windows(12))
        .map(|w| w.try_into().unwrap())
        .collect()
}

/// How many recorded datagrams hold a 12-byte window of an SDU.
fn leaks(net: &Recorder, sdus: &[Vec<u8>]) -> usize {
    let w = windows(sdus);
    net.sent
        .iter()
        .filter(|(_, d)| {
            d.windows(12)
                .any(|x| w.contains(<&[u8; 12]>::try_from(x).unwrap()))
        })
        .count()
}

#[test]
fn encrypted_flow_leaves_no_plaintext_in_the_recorded_datagrams() {
    const N: u32 = 60;
    let mut rng = Rng(99);
    let sdus: Vec<Vec<u8>> = (0..N)
        .map(|i| sdu(&mut rng, i, 16 + (i as usize * 211) % 2500))
        .collect();
    for (qos, seed) in [
        (QoS::DATA_CRYPT, 21),
        (QoS::VIDEO_CRYPT, 22),
        (QoS::RAW_CRYPT, 23),
    ] {
        // The server echoes, so SDUs cross the network both ways.
        let lossless = qos.loss == 0;
        let impair = if lossless {
            lossy(0.1)
        } else {
            ImpairmentConfig::perfect().with_delay(Duration::from_millis(5))
        };
        let r = run(
            impair,
            seed,
            client(qos, Some(KEY), sdus.clone(), Goal::Echoes(N as usize)),
            server(Some(KEY), true),
            Duration::from_secs(600),
        );
        assert_eq!(r.a.app.got.len(), N as usize, "{qos:?}");
        assert_eq!(leaks(&r.net, &sdus), 0, "{qos:?}");
        // Every datagram but the ALLOC is sealed as well.
        assert!(r
            .net
            .sent
            .iter()
            .all(|(_, d)| Repr::parse(d).unwrap().is_sealed()));
        if Layers::for_qos(&qos).fec.is_some() {
            assert!(r.net.count(A, Kind::Parity) > 0, "{qos:?}");
        }
    }
    // The search finds the SDUs where they travel in the clear.
    let r = run(
        lossy(0.1),
        24,
        client(QoS::DATA, None, sdus.clone(), Goal::Echoes(N as usize)),
        server(None, true),
        Duration::from_secs(600),
    );
    assert!(leaks(&r.net, &sdus) >= 2 * N as usize);
}

#[test]
fn damaged_datagrams_never_reach_an_encrypted_application() {
    const N: u32 = 200;
    let mut rng = Rng(5);
    let sdus: Vec<Vec<u8>> = (0..N)
        .map(|i| sdu(&mut rng, i, 4 + (i as usize * 97) % 2000))
        .collect();
    // One datagram in ten has a bit flipped on the way.
    let impair = lossy(0.05).with_corrupt(0.1);
    let r = run(
        impair,
        31,
        client(QoS::DATA_CRYPT, Some(KEY), sdus.clone(), Goal::Drained),
        server(Some(KEY), false),
        Duration::from_secs(600),
    );
    let seen = arrivals(N as usize, r.b.app.got.iter().map(|(_, s)| s), &sdus);
    assert!(seen.iter().all(|&n| n == 1), "{seen:?}");
    assert!(r.net.net.impairment_stats().corrupted > 0);
    let (sa, sb) = (r.a.endpoint.stats(), r.b.endpoint.stats());
    assert!(sb.auth_failed > 0, "{sb:?}");
    // Damaged ACKs are refused too, and made up for by retransmission.
    assert!(sa.auth_failed > 0, "{sa:?}");
}

#[test]
fn another_key_or_none_is_refused_with_its_reason() {
    for (server_key, reason) in [
        (Some([0x24; 32]), Reason::KeyMismatch),
        (None, Reason::NoKey),
    ] {
        let r = run(
            lossy(0.0),
            41,
            client(QoS::DATA_CRYPT, Some(KEY), Vec::new(), Goal::Over),
            server(server_key, false),
            Duration::from_secs(60),
        );
        let f = r.a.app.flow;
        assert_eq!(
            r.a.app.events,
            [Event::Refused { flow: f, reason }],
            "{server_key:?}"
        );
        // The server's application never heard of it.
        assert!(r.b.app.events.is_empty());
    }
}

#[test]
fn vanished_peer_brings_the_flow_down_within_its_timeout() {
    const TIMEOUT_MS: u32 = 3_000;
    for (qos, seed) in [
        (QoS::DATA_CRYPT, 51),
        (QoS::VIDEO_CRYPT, 52),
        (QoS::RAW, 53),
    ] {
        let qos = qos.with_timeout(TIMEOUT_MS);
        let key = key_for(&qos);
        let mut rng = Rng(seed);
        let sdus: Vec<Vec<u8>> = (0..20).map(|i| sdu(&mut rng, i, 300)).collect();
        let mut net = Recorder::new(lossy(0.0), seed);
        let mut a = client(qos, key, sdus, Goal::Over);
        let mut b = server(key, false);
        let vanish = START + Duration::from_secs(10);
        simulate(&mut net, &mut [&mut a, &mut b], START, vanish);
        assert!(
            a.app.down_at.is_none(),
            "{qos:?}: down while the peer was there"
        );
        assert_eq!(b.app.got.len(), 20, "{qos:?}");
        // B vanishes; A writes into the void.
        let f = a.app.flow;
        a.endpoint.write(vanish, f, b"anyone?").unwrap();
        let ended = simulate(
            &mut net,
            &mut [&mut a],
            vanish,
            vanish + Duration::from_secs(60),
        );
        let down_at = a.app.down_at.expect("the flow went down");
        assert_eq!(ended, down_at);
        let limit = vanish + Duration::from_millis(u64::from(TIMEOUT_MS)) + DOWN_MARGIN;
        assert!(
            down_at <= limit,
            "{qos:?}: down at {down_at:?}, limit {limit:?}"
        );
        // B spoke at least every quarter timeout while it was there.
        let earliest = vanish + Duration::from_millis(u64::from(TIMEOUT_MS) * 3 / 4)
            - Duration::from_millis(50);
        assert!(down_at >= earliest, "{qos:?}: down at {down_at:?}");
        assert_eq!(a.app.events.last(), Some(&Event::Down(f)));
    }
}

/// `n` SDUs of one datagram each, written at once on a flow with `qos` over
/// `loss` random loss, until the writer drained; the SDUs and the run.
fn one_way(qos: QoS, seed: u64, n: u32, loss: f64) -> (Vec<Vec<u8>>, Run) {
    let key = key_for(&qos);
    let mut rng = Rng(seed);
    let sdus: Vec<Vec<u8>> = (0..n)
        .map(|i| sdu(&mut rng, i, 4 + (i as usize * 7) % 1100))
        .collect();
    let r = run(
        lossy(loss),
        seed,
        client(qos, key, sdus.clone(), Goal::Drained),
        server(key, false),
        Duration::from_secs(60),
    );
    (sdus, r)
}

#[test]
fn best_effort_never_retransmits() {
    const N: u32 = 400;
    // In order, a lost SDU is skipped after half a second.
    let best_effort = QoS {
        max_gap: 500,
        ..QoS::BEST_EFFORT_CRYPT
    };
    for (qos, seed) in [(QoS::RAW, 61), (QoS::RAW_CRYPT, 62), (best_effort, 63)] {
        let (sdus, r) = one_way(qos, seed, N, 0.2);
        // One datagram per SDU written, besides the ALLOC; nothing acknowledged.
        let allocs = r.net.count(A, Kind::Alloc);
        assert_eq!(r.net.all_from(A) - allocs, u64::from(N), "{qos:?}");
        assert_eq!(r.net.count(A, Kind::Data), u64::from(N), "{qos:?}");
        assert_eq!(r.net.count(B, Kind::Ack), 0, "{qos:?}");
        let sa = r.a.endpoint.stats();
        assert_eq!((sa.data_sent, sa.data_retransmitted), (u64::from(N), 0));
        let seen = arrivals(N as usize, r.b.app.got.iter().map(|(_, s)| s), &sdus);
        let got = seen.iter().filter(|&&n| n > 0).count();
        assert!(seen.iter().all(|&n| n <= 1), "{qos:?}");
        assert!(got < N as usize && got > N as usize / 2, "{qos:?}: {got}");
    }
}

#[test]
fn best_effort_in_order_skips_a_lost_sdu_within_the_reorder_wait() {
    // Best effort asks for order and sets no gap bound: a lost SDU must not
    // hold back the ones after it for more than the reorder wait, nor the
    // last ones of the stream for good.
    const N: u32 = 300;
    let wait = Config::default().reorder_wait;
    for (qos, seed) in [(QoS::BEST_EFFORT, 71), (QoS::BEST_EFFORT_CRYPT, 72)] {
        assert_eq!(qos.max_gap, u32::MAX);
        let (sdus, r) = one_way(qos, seed, N, 0.05);
        let got = &r.b.app.got;
        let order: Vec<u32> = got.iter().map(|(_, s)| index(s)).collect();
        assert!(order.windows(2).all(|w| w[0] < w[1]), "{qos:?}: {order:?}");
        arrivals(N as usize, got.iter().map(|(_, s)| s), &sdus);
        let lost = r.b.endpoint.stats().sdus_lost;
        assert!(lost > 0, "{qos:?}: the network lost nothing");
        assert_eq!(got.len() as u64 + lost, u64::from(N), "{qos:?}");
        // All SDUs left within a millisecond and crossed in 10 ± 3 ms: the last
        // is handed over at most the reorder wait after the first.
        let (first, last) = (got[0].0, got[got.len() - 1].0);
        assert!(
            last - first <= wait + Duration::from_millis(10),
            "{qos:?}: {:?} between the first and the last SDU",
            last - first
        );
    }
}

/// What an **fec** flow (or its control) did with a stream of SDUs.
struct Stream {
    delivered: usize,
    latest: Duration,
    recovered: u64,
    acks: u64,
    retransmitted: u64,
    parity: u64,
}

/// Writes `n` SDUs of 200 to 1100 bytes, one every 10 ms, on a flow with
/// `qos` over 5 % random loss, and measures what arrived and how late.
fn stream(qos: QoS, n: u32, seed: u64) -> Stream {
    const EVERY: Duration = Duration::from_millis(10);
    let key = key_for(&qos);
    let mut rng = Rng(seed);
    let sdus: Vec<Vec<u8>> = (0..n)
        .map(|i| sdu(&mut rng, i, 200 + (i as usize * 61) % 900))
        .collect();
    let impair = ImpairmentConfig::perfect()
        .with_loss(0.05)
        .with_delay(Duration::from_millis(10))
        .with_jitter(Duration::from_millis(2));
    let mut net = Recorder::new(impair, seed);
    let mut a = client(qos, key, Vec::new(), Goal::Never);
    let mut b = server(key, false);
    let f = a.app.flow;
    // Up first (the allocation retries through loss).
    let mut now = START;
    while !a.endpoint.is_up(f) {
        simulate(&mut net, &mut [&mut a, &mut b], now, now + EVERY);
        now = now + EVERY;
    }
    let first_write = now;
    for (i, s) in sdus.iter().enumerate() {
        let at = first_write + EVERY * i as u32;
        a.endpoint.write(at, f, s).unwrap();
        simulate(&mut net, &mut [&mut a, &mut b], at, at + EVERY);
    }
    let end = first_write + EVERY * n;
    simulate(
        &mut net,
        &mut [&mut UntilEnd(&mut b)],
        end,
        end + Duration::from_secs(2),
    );
    let seen = arrivals(n as usize, b.app.got.iter().map(|(_, s)| s), &sdus);
    assert!(seen.iter().all(|&c| c <= 1), "{qos:?}: an SDU twice");
    let latest = b
        .app
        .got
        .iter()
        .map(|(t, s)| t.saturating_since(first_write + EVERY * index(s)))
        .max()
        .unwrap_or_default();
    let (sa, sb) = (a.endpoint.stats(), b.endpoint.stats());
    Stream {
        delivered: seen.iter().filter(|&&c| c == 1).count(),
        latest,
        recovered: sb.sdus_recovered,
        acks: net.count(B, Kind::Ack) + sb.acks_sent,
        retransmitted: sa.data_retransmitted,
        parity: sa.parity_sent,
    }
}

#[test]
fn fec_flow_at_5_percent_loss_rebuilds_in_time_without_retransmission() {
    const N: u32 = 2_000;
    let unordered = QoS {
        max_gap: 100,
        ..QoS::RAW
    };
    for (qos, seed) in [(QoS::VIDEO, 71), (QoS::VIDEO_CRYPT, 72), (unordered, 73)] {
        assert!(Layers::for_qos(&qos).fec.is_some(), "{qos:?}");
        let s = stream(qos, N, seed);
        let share = s.delivered as f64 / f64::from(N);
        assert!(
            share >= FEC_MIN_DELIVERED,
            "{qos:?}: delivered {share:.4} of the SDUs"
        );
        let max_gap = Duration::from_millis(u64::from(qos.max_gap));
        assert!(s.latest <= max_gap, "{qos:?}: an SDU {:?} late", s.latest);
        assert!(s.recovered > 0 && s.parity > 0, "{qos:?}");
        assert_eq!((s.acks, s.retransmitted), (0, 0), "{qos:?}");
        // The same stream with a loose gap gets no parity and loses more.
        let control = QoS {
            max_gap: 1_000,
            delay: 1_000,
            ..qos
        };
        assert!(Layers::for_qos(&control).fec.is_none());
        let c = stream(control, N, seed);
        eprintln!(
            "fec {} SDUs, 5% loss, max_gap {} ms, in_order {}, cypher {}: delivered {:.2}% \
             (rebuilt {}, parity datagrams {}), latest {:?}; without parity {:.2}%",
            N,
            qos.max_gap,
            qos.in_order,
            qos.cypher_s,
            100.0 * share,
            s.recovered,
            s.parity,
            s.latest,
            100.0 * c.delivered as f64 / f64::from(N)
        );
        assert_eq!((c.parity, c.recovered), (0, 0));
        assert!(
            c.delivered < s.delivered,
            "{qos:?}: {} without parity, {} with",
            c.delivered,
            s.delivered
        );
    }
}

#[test]
fn arq_behind_a_slow_link_sends_nothing_twice_without_loss() {
    // 20 Mbit/s, 10 ms each way, a deep queue and no loss: a window of
    // fragments written at once queues for longer than a timeout measured
    // on the first of them; none of them is lost, none may go twice.
    const N: u32 = 600;
    let net = ImpairmentConfig::perfect()
        .with_delay(Duration::from_millis(10))
        .with_rate_limit(20_000_000 / 8);
    let mut rng = Rng(81);
    let sdus: Vec<Vec<u8>> = (0..N).map(|i| sdu(&mut rng, i, 1000)).collect();
    let r = run(
        net,
        81,
        client(QoS::DATA, None, sdus.clone(), Goal::Drained),
        server(None, false),
        Duration::from_secs(60),
    );
    let seen = arrivals(N as usize, r.b.app.got.iter().map(|(_, s)| s), &sdus);
    assert!(seen.iter().all(|&n| n == 1));
    let sa = r.a.endpoint.stats();
    assert_eq!(sa.data_retransmitted, 0, "{sa:?}");
}
