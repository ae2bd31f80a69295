//! Flow endpoints on the in-memory network, in virtual time: loss,
//! reordering and duplication, through the one driver's `simulate`.

use std::collections::HashMap;
use std::convert::Infallible;
use std::io;
use std::time::Duration;

use redgiant_base::driver::{simulate, Application, Network, Stepper, UntilEnd};
use redgiant_base::{DatagramEndpoint, Endpoint, Instant, Peer};
use redgiant_flow::wire::{Kind, Repr};
use redgiant_flow::{Config, Event, FlowEndpoint, FlowId, QoS};
use rgtp_link::{ImpairmentConfig, SimNet};

const A: Peer = Peer::Mem(1);
const B: Peer = Peer::Mem(2);
const START: Instant = Instant::from_millis(1_000);
const NAME: &str = "sink";

/// SDU `i`: its index, then `len - 4` bytes derived from it (`len` ≥ 4).
fn sdu(i: u32, len: usize) -> Vec<u8> {
    let mut p = i.to_be_bytes().to_vec();
    p.extend((4..len.max(4)).map(|j| (j as u32).wrapping_mul(31).wrapping_add(i) as u8));
    p
}

/// Sizes from 4 bytes to three fragments.
fn size(i: u32) -> usize {
    4 + (i as usize * 397) % 3000
}

/// A [`SimNet`] that counts, per sender, the datagrams of each kind.
struct Counted {
    net: SimNet,
    kinds: HashMap<(Peer, Kind), u64>,
}

impl Counted {
    fn new(config: ImpairmentConfig, seed: u64) -> Self {
        Counted {
            net: SimNet::new(config, seed),
            kinds: HashMap::new(),
        }
    }

    fn count(&self, from: Peer, kind: Kind) -> u64 {
        self.kinds.get(&(from, kind)).copied().unwrap_or(0)
    }
}

impl Network for Counted {
    fn send(&mut self, now: Instant, from: Peer, to: Peer, data: &[u8]) {
        let r = Repr::parse(data).expect("endpoints send well-formed datagrams");
        *self.kinds.entry((from, r.kind())).or_default() += 1;
        self.net.send(now, from, to, data);
    }

    fn deliver_due(&mut self, now: Instant, out: &mut Vec<(Peer, Peer, Vec<u8>)>) -> usize {
        self.net.deliver_due(now, out)
    }

    fn next_delivery(&self) -> Option<Instant> {
        self.net.next_delivery()
    }
}

/// When the allocating side's run ends.
#[derive(Debug, Clone, Copy, PartialEq)]
enum Goal {
    /// Everything written was sent (and, with ARQ, acknowledged).
    Drained,
    /// This many SDUs came back.
    Echoes(usize),
    /// The flow went down.
    Down,
}

/// Allocates a flow to B once the run starts, writes its SDUs when the flow
/// is up, and collects what comes back.
struct Client {
    qos: QoS,
    to_write: Vec<Vec<u8>>,
    goal: Goal,
    flow: Option<FlowId>,
    up_at: Option<Instant>,
    got: Vec<Vec<u8>>,
    down_at: Option<Instant>,
    events: Vec<Event>,
}

impl Client {
    fn new(qos: QoS, to_write: Vec<Vec<u8>>, goal: Goal) -> Self {
        Client {
            qos,
            to_write,
            goal,
            flow: None,
            up_at: None,
            got: Vec::new(),
            down_at: None,
            events: Vec::new(),
        }
    }

    fn start(self) -> Stepper<FlowEndpoint, Client> {
        let mut e = FlowEndpoint::new(Config::default()).unwrap();
        let flow = e.alloc(START, B, NAME, self.qos).unwrap();
        let mut c = self;
        c.flow = Some(flow);
        Stepper::new(e, c, A)
    }
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
                self.up_at = Some(now);
                for s in self.to_write.drain(..) {
                    e.write(now, f, &s)
                        .expect("the send buffer holds every SDU");
                }
            }
            Event::Readable(f) => {
                while let Some(s) = e.read(f) {
                    self.got.push(s);
                }
            }
            Event::Down(_) => self.down_at = Some(now),
            _ => {}
        }
        let done = match self.goal {
            Goal::Drained => matches!(ev, Event::Drained(_)),
            Goal::Echoes(n) => self.got.len() >= n,
            Goal::Down => self.down_at.is_some(),
        };
        Ok(done.then_some(()))
    }
}

/// Accepts every flow to [`NAME`], collects SDUs and, with `echo`, sends
/// each back on its flow.
#[derive(Default)]
struct Server {
    echo: bool,
    got: Vec<Vec<u8>>,
    events: Vec<Event>,
}

impl Server {
    fn start(self) -> Stepper<FlowEndpoint, Server> {
        let mut e = FlowEndpoint::new(Config::default()).unwrap();
        e.register(NAME).unwrap();
        Stepper::new(e, self, B).background()
    }
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
                    self.got.push(s);
                }
            }
            _ => {}
        }
        Ok(None)
    }
}

struct Run {
    client: Client,
    client_end: FlowEndpoint,
    server: Server,
    server_end: FlowEndpoint,
    net: Counted,
}

fn run(net: ImpairmentConfig, seed: u64, client: Client, server: Server, limit: Duration) -> Run {
    let mut net = Counted::new(net, seed);
    let mut a = client.start();
    let mut b = server.start();
    let ended = simulate(&mut net, &mut [&mut a, &mut b], START, START + limit);
    assert!(
        matches!(a.outcome(), Some(Ok(()))),
        "the client did not reach its goal by {ended:?}"
    );
    // The client is finished; the server takes what is still on the way.
    simulate(
        &mut net,
        &mut [&mut UntilEnd(&mut b)],
        ended,
        ended + Duration::from_secs(1),
    );
    let (client_end, client, _) = a.into_parts();
    let (server_end, server, _) = b.into_parts();
    Run {
        client,
        client_end,
        server,
        server_end,
        net,
    }
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

fn index(s: &[u8]) -> u32 {
    u32::from_be_bytes([s[0], s[1], s[2], s[3]])
}

#[test]
fn arq_delivers_every_sdu_exactly_once_at_20_percent_loss() {
    const N: u32 = 300;
    for (qos, seed) in [(QoS::RAW.with_loss(0), 1), (QoS::DATA, 2), (QoS::DATA, 3)] {
        let sdus: Vec<Vec<u8>> = (0..N).map(|i| sdu(i, size(i))).collect();
        let r = run(
            lossy(0.2),
            seed,
            Client::new(qos, sdus.clone(), Goal::Drained),
            Server::default(),
            Duration::from_secs(600),
        );
        let mut seen = vec![0u32; N as usize];
        for s in &r.server.got {
            let i = index(s);
            assert_eq!(*s, sdus[i as usize], "SDU {i} intact");
            seen[i as usize] += 1;
        }
        assert!(seen.iter().all(|&n| n == 1), "{qos:?}: {seen:?}");
        if qos.in_order == 1 {
            let order: Vec<u32> = r.server.got.iter().map(|s| index(s)).collect();
            assert_eq!(order, (0..N).collect::<Vec<_>>());
        }
        // The loss was real and the sender made up for it.
        let stats = r.client_end.stats();
        assert!(stats.data_retransmitted > 0, "{stats:?}");
        assert!(r.server_end.stats().duplicates > 0);
        assert!(!r.client.events.iter().any(|e| matches!(e, Event::Down(_))));
    }
}

#[test]
fn in_order_delivers_in_sequence_under_reordering() {
    const N: u32 = 200;
    let sdus: Vec<Vec<u8>> = (0..N)
        .map(|i| sdu(i, 4 + (i as usize * 13) % 1500))
        .collect();
    let order = |qos: QoS, seed: u64| -> Vec<u32> {
        let r = run(
            reordering(),
            seed,
            Client::new(qos, sdus.clone(), Goal::Drained),
            Server::default(),
            Duration::from_secs(60),
        );
        r.server.got.iter().map(|s| index(s)).collect()
    };
    let in_seq: Vec<u32> = (0..N).collect();
    // Reliable and ordered.
    assert_eq!(order(QoS::DATA, 7), in_seq);
    // The network does reorder: an unordered reliable flow sees it.
    let unordered = order(QoS::RAW.with_loss(0), 7);
    assert_ne!(unordered, in_seq);
    let mut sorted = unordered.clone();
    sorted.sort_unstable();
    assert_eq!(sorted, in_seq);
}

#[test]
fn best_effort_in_order_without_loss_delivers_in_sequence() {
    // Without ARQ the client finishes once everything is sent; the server
    // keeps going in the background, so give it a second run to drain.
    const N: u32 = 150;
    let sdus: Vec<Vec<u8>> = (0..N)
        .map(|i| sdu(i, 4 + (i as usize * 13) % 1000))
        .collect();
    let mut net = SimNet::new(reordering(), 11);
    let mut a = Client::new(QoS::BEST_EFFORT, sdus, Goal::Drained).start();
    let mut b = Server::default().start();
    let t = simulate(
        &mut net,
        &mut [&mut a, &mut b],
        START,
        START + Duration::from_secs(60),
    );
    assert!(a.is_finished());
    // The client is finished; run the server alone until the network is empty.
    simulate(
        &mut net,
        &mut [&mut UntilEnd(&mut b)],
        t,
        t + Duration::from_secs(1),
    );
    assert_eq!(net.in_flight(), 0);
    let got: Vec<u32> = b.app.got.iter().map(|s| index(s)).collect();
    assert_eq!(got, (0..N).collect::<Vec<_>>());
    assert!(net.impairment_stats().reordered > 0);
}

#[test]
fn best_effort_never_retransmits() {
    const N: u32 = 400;
    let sdus: Vec<Vec<u8>> = (0..N).map(|i| sdu(i, size(i))).collect();
    let frag_len = Config::default().fragment_len();
    let fragments: u64 = sdus.iter().map(|s| s.len().div_ceil(frag_len) as u64).sum();
    let r = run(
        lossy(0.2),
        21,
        Client::new(QoS::RAW, sdus.clone(), Goal::Drained),
        Server::default(),
        Duration::from_secs(60),
    );
    // Every fragment left exactly once; nothing was acknowledged.
    assert_eq!(r.net.count(A, Kind::Data), fragments);
    assert_eq!(r.net.count(B, Kind::Ack), 0);
    assert_eq!(r.client_end.stats().data_retransmitted, 0);
    assert_eq!(r.client_end.stats().data_sent, fragments);
    // Some SDUs were lost; those that came are intact and came once.
    let got = &r.server.got;
    assert!(
        got.len() < N as usize && got.len() > N as usize / 3,
        "{}",
        got.len()
    );
    let mut seen = vec![false; N as usize];
    for s in got {
        let i = index(s) as usize;
        assert_eq!(*s, sdus[i]);
        assert!(!seen[i], "SDU {i} twice");
        seen[i] = true;
    }
}

#[test]
fn vanished_peer_brings_the_flow_down_within_the_timeout() {
    const TIMEOUT_MS: u32 = 3_000;
    // Down comes at the latest `TIMEOUT_MS` after the last datagram heard,
    // which is before the peer vanished; this margin covers the clock step.
    const MARGIN: Duration = Duration::from_millis(1);
    for qos in [QoS::DATA, QoS::RAW] {
        let qos = qos.with_timeout(TIMEOUT_MS);
        let sdus: Vec<Vec<u8>> = (0..20).map(|i| sdu(i, size(i))).collect();
        let mut net = SimNet::new(lossy(0.0), 5);
        let mut a = Client::new(qos, sdus, Goal::Down).start();
        let mut b = Server::default().start();
        // Together for ten seconds: the flow carries its SDUs, then stays up
        // on keepalives.
        let vanish = START + Duration::from_secs(10);
        simulate(&mut net, &mut [&mut a, &mut b], START, vanish);
        assert!(!a.is_finished(), "down while the peer was there");
        assert_eq!(b.app.got.len(), 20);
        // B vanishes; A keeps writing into the void.
        let f = a.app.flow.unwrap();
        a.endpoint.write(vanish, f, b"anyone?").unwrap();
        let ended = simulate(
            &mut net,
            &mut [&mut a],
            vanish,
            vanish + Duration::from_secs(60),
        );
        let down_at = a.app.down_at.expect("the flow went down");
        assert_eq!(ended, down_at);
        let limit = vanish + Duration::from_millis(u64::from(TIMEOUT_MS)) + MARGIN;
        assert!(
            down_at <= limit,
            "{qos:?}: down at {down_at:?}, limit {limit:?}"
        );
        // Not before the peer could have been silent that long: its last
        // keepalive left at most a quarter of the timeout before it vanished.
        let earliest = vanish + Duration::from_millis(u64::from(TIMEOUT_MS) * 3 / 4)
            - Duration::from_millis(50);
        assert!(down_at >= earliest, "{qos:?}: down at {down_at:?}");
        assert_eq!(a.app.events.last(), Some(&Event::Down(f)));
    }
}

#[test]
fn quiet_flow_stays_up_on_keepalives() {
    const TIMEOUT_MS: u32 = 2_000;
    let qos = QoS::RAW.with_timeout(TIMEOUT_MS);
    let mut net = Counted::new(lossy(0.1), 9);
    let mut a = Client::new(qos, Vec::new(), Goal::Down).start();
    let mut b = Server::default().start();
    let end = START + Duration::from_secs(30);
    simulate(&mut net, &mut [&mut a, &mut b], START, end);
    assert!(a.app.down_at.is_none(), "{:?}", a.app.events);
    assert!(!b.app.events.iter().any(|e| matches!(e, Event::Down(_))));
    let f = a.app.flow.unwrap();
    assert!(a.endpoint.is_up(f));
    // Each end speaks about every quarter timeout.
    let expected = 30_000 / (u64::from(TIMEOUT_MS) / 4);
    for p in [A, B] {
        let n = net.count(p, Kind::Keepalive);
        assert!(n >= expected * 9 / 10 && n <= expected + 2, "{p}: {n}");
    }
}

#[test]
fn sdus_of_0_1_and_64k_bytes_round_trip() {
    let big: Vec<u8> = (0..65_536u32).map(|i| (i * 7 + i / 251) as u8).collect();
    let sdus = vec![Vec::new(), vec![0x5a], big];
    for (qos, net, seed) in [
        (QoS::DATA, lossy(0.1), 31),
        (QoS::RAW.with_loss(0), lossy(0.1), 32),
        (QoS::RAW, ImpairmentConfig::perfect(), 33),
        (QoS::BEST_EFFORT, reordering(), 34),
    ] {
        let r = run(
            net,
            seed,
            Client::new(qos, sdus.clone(), Goal::Echoes(3)),
            Server {
                echo: true,
                ..Server::default()
            },
            Duration::from_secs(600),
        );
        let mut got = r.client.got.clone();
        if qos.in_order == 0 {
            got.sort_by_key(Vec::len);
        }
        assert_eq!(got, sdus, "{qos:?}");
        assert!(r.client.up_at.is_some());
    }
}

/// A small deterministic generator.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0
    }

    fn below(&mut self, n: u64) -> u64 {
        self.next() % n.max(1)
    }
}

#[test]
fn hostile_datagram_stream_never_panics() {
    // A real exchange first, recorded, to mutate.
    let sdus: Vec<Vec<u8>> = (0..10).map(|i| sdu(i, size(i))).collect();
    let mut net = SimNet::new(ImpairmentConfig::perfect(), 1);
    net.enable_trace();
    let mut a = Client::new(QoS::DATA, sdus, Goal::Drained).start();
    let mut b = Server::default().start();
    simulate(
        &mut net,
        &mut [&mut a, &mut b],
        START,
        START + Duration::from_secs(10),
    );
    let mut samples: Vec<Vec<u8>> = Vec::new();
    let mut buf = Vec::new();
    // Datagrams like those the endpoints send: ALLOC, DATA, ACK, control.
    for (i, q) in QoS::PRESETS.iter().enumerate() {
        let repr = Repr {
            src: FlowId(i as u32 + 1),
            dst: FlowId(0),
            message: redgiant_flow::wire::Message::Alloc {
                qos: q.1,
                name: NAME,
            },
        };
        repr.emit_vec(&mut buf);
        samples.push(std::mem::take(&mut buf));
    }
    let fa = a.app.flow.unwrap();
    let (mut e, server, _) = b.into_parts();
    let fb = match server.events.first() {
        Some(Event::Alloc { flow, .. }) => *flow,
        other => panic!("{other:?}"),
    };
    for seq in 0..4u32 {
        for count in [1u16, 2, 60, 900, u16::MAX] {
            let repr = Repr {
                src: fa,
                dst: fb,
                message: redgiant_flow::wire::Message::Data {
                    seq,
                    frag: redgiant_flow::wire::Frag { index: 0, count },
                    payload: &[0xee; 1000],
                },
            };
            repr.emit_vec(&mut buf);
            samples.push(std::mem::take(&mut buf));
        }
    }
    let config = e.config().clone();
    let mut rng = Rng(0x9e37_79b9_7f4a_7c15);
    let mut now = START + Duration::from_secs(10);
    let mut sent = 0u64;
    for round in 0..60_000u32 {
        let mut d = match rng.below(3) {
            0 => (0..rng.below(1500)).map(|_| rng.next() as u8).collect(),
            _ => {
                let mut d = samples[rng.below(samples.len() as u64) as usize].clone();
                for _ in 0..rng.below(4) {
                    let at = rng.below(d.len() as u64) as usize;
                    if let Some(b) = d.get_mut(at) {
                        *b = rng.next() as u8;
                    }
                }
                // Sometimes aim a mutated datagram at the live flow.
                if d.len() >= 10 && rng.below(2) == 0 {
                    d[2..6].copy_from_slice(&fa.0.to_be_bytes());
                    d[6..10].copy_from_slice(&fb.0.to_be_bytes());
                }
                d.truncate(rng.below(d.len() as u64 + 1) as usize + d.len() / 2);
                d
            }
        };
        let from = if rng.below(8) == 0 {
            Peer::Mem(rng.below(4) as u32)
        } else {
            A
        };
        e.handle_datagram(now, from, &mut d);
        if round % 64 == 0 {
            now = now + Duration::from_millis(rng.below(200));
            e.handle_timeout(now);
        }
        while e.poll_transmit(now, &mut buf).is_some() {
            sent += 1;
        }
        while let Some(ev) = e.poll_event() {
            match ev {
                Event::Alloc { flow, .. } if rng.below(2) == 0 => e.accept(now, flow).unwrap(),
                Event::Alloc { flow, .. } => e.refuse(now, flow).unwrap(),
                Event::Readable(f) => while e.read(f).is_some() {},
                _ => {}
            }
        }
        assert!(e.flow_count() <= config.max_flows);
        assert!(e.held(fb) <= config.recv_buffer);
        let _ = e.poll_timeout();
    }
    let stats = e.stats();
    assert!(stats.malformed > 10_000, "{stats:?}");
    assert!(
        stats.unknown_flow > 0 && stats.dropped_bad_fragment > 0,
        "{stats:?}"
    );
    assert!(sent > 0);
}
