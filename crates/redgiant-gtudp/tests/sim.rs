//! gtUDP endpoints on the in-memory network, in virtual time: loss,
//! reordering and duplication, through the one driver's `simulate`.

use std::collections::HashMap;
use std::io;
use std::time::Duration;

use redgiant_base::driver::{simulate, Application, Stepper};
use redgiant_base::{Instant, Peer};
use redgiant_gtudp::{
    AuthConfig, AuthKey, Config, Datagram, Event, ExchangeId, FailReason, Gtudp, ReferenceIds,
    Stats, Timers,
};
use rgtp_link::{ImpairmentConfig, SimNet};

const A: Peer = Peer::Mem(1);
const B: Peer = Peer::Mem(2);
const START: Instant = Instant::from_millis(1_000);

/// A payload of its own length and content for datagram `i`.
fn payload(i: u32) -> Vec<u8> {
    let len = (i as usize * 37) % 1200;
    let mut p = i.to_be_bytes().to_vec();
    p.extend((0..len).map(|j| (j as u32 * 7 + i) as u8));
    p
}

/// Sends nothing itself; collects deliveries and, with `echo`, sends each back.
#[derive(Default)]
struct Receiver {
    echo: bool,
    got: Vec<(Peer, Vec<u8>)>,
    pending_echo: Vec<(Peer, Vec<u8>)>,
}

impl Application<Gtudp> for Receiver {
    type Output = ();
    type Error = io::Error;

    fn deliver(&mut self, d: Datagram<'_>) -> io::Result<()> {
        self.got.push((d.from, d.payload.to_vec()));
        if self.echo {
            self.pending_echo.push((d.from, d.payload.to_vec()));
        }
        Ok(())
    }

    fn event(&mut self, e: &mut Gtudp, _ev: Event) -> io::Result<Option<()>> {
        for (to, p) in self.pending_echo.drain(..) {
            e.send_to(to, &p);
        }
        Ok(None)
    }
}

/// Opens its exchanges up front; the run ends when every one is settled
/// (and, with `echoes`, that many datagrams came back).
#[derive(Default)]
struct Sender {
    open: usize,
    echoes: usize,
    confirmed: Vec<ExchangeId>,
    failed: Vec<(ExchangeId, FailReason)>,
    got: Vec<Vec<u8>>,
}

impl Sender {
    fn done(&self) -> bool {
        self.confirmed.len() + self.failed.len() == self.open && self.got.len() >= self.echoes
    }
}

impl Application<Gtudp> for Sender {
    type Output = ();
    type Error = io::Error;

    fn deliver(&mut self, d: Datagram<'_>) -> io::Result<()> {
        self.got.push(d.payload.to_vec());
        Ok(())
    }

    fn event(&mut self, _: &mut Gtudp, ev: Event) -> io::Result<Option<()>> {
        match ev {
            Event::Confirmed(x) => self.confirmed.push(x),
            Event::Failed(x, why) => self.failed.push((x, why)),
            Event::Received { .. } => {}
        }
        Ok(self.done().then_some(()))
    }
}

fn harsh() -> ImpairmentConfig {
    ImpairmentConfig::perfect()
        .with_loss(0.3)
        .with_delay(Duration::from_millis(20))
        .with_jitter(Duration::from_millis(5))
        .with_reorder(0.2)
        .with_reorder_delay(Duration::from_millis(40))
        .with_duplicate(0.2)
}

struct Run {
    sender: Sender,
    sender_stats: Stats,
    receiver: Receiver,
    receiver_stats: Stats,
    ended: Instant,
}

fn run(
    net: ImpairmentConfig,
    seed: u64,
    config: Config,
    count: u32,
    deadline: Option<Duration>,
    echo: bool,
) -> Run {
    let mut net = SimNet::new(net, seed);
    let mut a = Gtudp::new(config.clone(), ReferenceIds::new(seed as u32));
    for i in 0..count {
        match deadline {
            Some(d) => a.send_confirmed(B, &payload(i), START + d),
            None => a.send_to(B, &payload(i)),
        };
    }
    let sender = Sender {
        open: count as usize,
        echoes: if echo { count as usize } else { 0 },
        ..Sender::default()
    };
    let mut na = Stepper::new(a, sender, A);
    let receiver = Receiver {
        echo,
        ..Receiver::default()
    };
    let mut config_b = config;
    if let Some(auth) = config_b.auth.as_mut() {
        // Each endpoint draws its own session.
        auth.session = auth.session.wrapping_add(1);
    }
    let mut nb = Stepper::new(Gtudp::seeded(config_b, seed ^ 0x55), receiver, B).background();
    let ended = simulate(
        &mut net,
        &mut [&mut na, &mut nb],
        START,
        START + Duration::from_secs(600),
    );
    let (ea, sender, outcome) = na.into_parts();
    assert!(matches!(outcome, Some(Ok(()))), "the sender did not finish");
    let (eb, receiver, _) = nb.into_parts();
    Run {
        sender,
        sender_stats: ea.stats(),
        receiver,
        receiver_stats: eb.stats(),
        ended,
    }
}

/// Each payload exactly once, from `A`.
fn assert_exactly_once(got: &[(Peer, Vec<u8>)], count: u32) {
    let mut seen: HashMap<&[u8], usize> = HashMap::new();
    for (from, p) in got {
        assert_eq!(*from, A);
        *seen.entry(p).or_default() += 1;
    }
    for i in 0..count {
        assert_eq!(seen.get(&payload(i)[..]), Some(&1), "datagram {i}");
    }
    assert_eq!(got.len(), count as usize);
}

#[test]
fn every_datagram_exactly_once_at_30_percent_loss() {
    const N: u32 = 300;
    for seed in [1, 2, 3] {
        let r = run(
            harsh(),
            seed,
            Config::default(),
            N,
            Some(Duration::from_secs(60)),
            false,
        );
        assert_eq!(r.sender.confirmed.len(), N as usize, "seed {seed}");
        assert!(r.sender.failed.is_empty());
        assert_exactly_once(&r.receiver.got, N);
        let s = r.sender_stats;
        assert_eq!(s.data_sent, u64::from(N));
        // A DATA and its RECV both cross with probability 0.49: about two
        // sends per datagram; far fewer than the deadline would allow.
        assert!(
            s.data_repeated < u64::from(N) * 3,
            "seed {seed}: {} repeats",
            s.data_repeated
        );
        let rs = r.receiver_stats;
        assert!(rs.duplicates > 0, "the network duplicated nothing?");
        assert_eq!(rs.delivered, u64::from(N));
        // RECVs: at most ten per datagram by the timer, plus one per duplicate DATA.
        assert!(rs.recv_sent <= u64::from(N) * 10 + rs.duplicates);
        eprintln!(
            "seed {seed}: ended after {:?}, sender {s:?}, receiver {rs:?}",
            r.ended - START
        );
    }
}

#[test]
fn reference_timers_never_deliver_twice() {
    const N: u32 = 200;
    let r = run(harsh(), 9, Config::reference(), N, None, false);
    let s = r.sender_stats;
    // With six DATA at most, a few exchanges may fail at this loss rate;
    // whatever arrived, arrived once.
    assert_eq!(r.sender.confirmed.len() + r.sender.failed.len(), N as usize);
    assert!(r.sender.failed.iter().all(|f| f.1 == FailReason::Attempts));
    assert!(s.data_sent + s.data_repeated <= u64::from(N) * 6);
    let mut seen = std::collections::HashSet::new();
    for (_, p) in &r.receiver.got {
        assert!(seen.insert(p.clone()), "delivered twice");
    }
    assert!(r.receiver.got.len() >= r.sender.confirmed.len());
}

#[test]
fn echoes_come_back_exactly_once() {
    const N: u32 = 100;
    let r = run(
        harsh(),
        4,
        Config::default(),
        N,
        Some(Duration::from_secs(60)),
        true,
    );
    assert_exactly_once(&r.receiver.got, N);
    let mut echoed = r.sender.got.clone();
    echoed.sort();
    let mut sent: Vec<Vec<u8>> = (0..N).map(payload).collect();
    sent.sort();
    assert_eq!(echoed, sent);
}

#[test]
fn send_confirmed_fails_when_the_peer_is_gone() {
    let mut net = SimNet::new(ImpairmentConfig::perfect(), 5);
    let mut a = Gtudp::seeded(Config::default(), 5);
    let gone = Peer::Mem(9);
    a.send_confirmed(gone, b"anyone?", START + Duration::from_secs(30));
    let sender = Sender {
        open: 1,
        ..Sender::default()
    };
    let mut na = Stepper::new(a, sender, A);
    let ended = simulate(
        &mut net,
        &mut [&mut na],
        START,
        START + Duration::from_secs(600),
    );
    let (a, sender, _) = na.into_parts();
    assert_eq!(sender.failed, [(ExchangeId(0), FailReason::Deadline)]);
    assert_eq!(ended, START + Duration::from_secs(30));
    // 0, 0.5, 1.5, 3.5, 7.5, 15.5, 23.5 s: backoff capped at 8 s.
    let s = a.stats();
    assert_eq!(s.data_sent + s.data_repeated, 7);
}

#[test]
fn rtt_timers_adapt_to_a_fast_network() {
    let fast = ImpairmentConfig::perfect()
        .with_loss(0.3)
        .with_delay(Duration::from_millis(1));
    let reference = run(fast.clone(), 6, Config::reference(), 200, None, false);
    let rtt = run(
        fast,
        6,
        Config {
            timers: Timers::default(),
            ..Config::default()
        },
        200,
        Some(Duration::from_secs(60)),
        false,
    );
    // Once sampled, lost DATA are repeated after milliseconds instead of
    // 0.5 s (the first burst goes out before any sample, on 0.5 s).
    assert!(
        rtt.ended - START < (reference.ended - START) / 3,
        "rtt {:?} reference {:?}",
        rtt.ended - START,
        reference.ended - START
    );
}

#[test]
fn authenticated_exactly_once_at_30_percent_loss() {
    const N: u32 = 200;
    let config = Config::default().with_auth(AuthConfig::new(AuthKey([0x42; 32]), 0x1234));
    let r = run(harsh(), 7, config, N, Some(Duration::from_secs(60)), true);
    assert_eq!(r.sender.confirmed.len(), N as usize);
    assert_exactly_once(&r.receiver.got, N);
    let mut echoed = r.sender.got.clone();
    echoed.sort();
    let mut sent: Vec<Vec<u8>> = (0..N).map(payload).collect();
    sent.sort();
    assert_eq!(echoed, sent);
    let (s, rs) = (r.sender_stats, r.receiver_stats);
    // The network's duplicates are replays of one sealed datagram: caught
    // by the replay window before the duplicate table sees them.
    assert!(rs.replayed > 0 && s.replayed > 0);
    assert_eq!(rs.auth_failed + s.auth_failed, 0);
}
