//! The protocol axis of a plan: besides RGTP pulls, a run can move the plan's
//! bytes as gtUDP exchanges or as the SDUs of a flow with a QoS preset, on the
//! same simulated network (the scenario's uplink carries the sender's
//! datagrams, its downlink the answers) and with the same reproducibility
//! check (every run twice, the same trace hash).
//!
//! - `gtudp` / `gtudp-reference`: one sender, one receiver; the data is cut
//!   into datagrams of the variant's chunk size, at most [`GTUDP_WINDOW`]
//!   exchanges open at once (a new one as each settles); RTT-based timers or
//!   the reference's fixed 0.5 s.
//! - `flow:PRESET`: a flow allocated with that QoS preset (`flow:data`,
//!   `flow:video`, …; the `_crypt` ones with a pre-shared key on both ends);
//!   the data is written as SDUs of the chunk size as fast as the flow's send
//!   buffer takes them, and the receiver is given time to take what is still
//!   on the way once the sender has nothing left to send.

use std::cell::Cell;
use std::collections::VecDeque;
use std::convert::Infallible;
use std::io;
use std::rc::Rc;
use std::time::Duration;

use redgiant_base::driver::{simulate, Application, Network, Node, Stepper};
use redgiant_base::{Instant, Peer};
use redgiant_flow::{Config as FlowConfig, Event as FlowEvent, FlowEndpoint, FlowId, FlowKey, QoS};
use redgiant_gtudp::{Config as GtudpConfig, Datagram, Event as GtudpEvent, Gtudp};
use rgtp_link::impair::ImpairmentConfig;
use rgtp_link::mem::{SimNet, TraceEntry};

/// Exchanges a gtUDP sender keeps open at once.
pub const GTUDP_WINDOW: usize = 64;

/// How long, in virtual time, the receiver of a flow keeps taking datagrams after
/// the sender has nothing left to send.
const FLOW_TAIL: Duration = Duration::from_secs(2);

const SENDER: Peer = Peer::Mem(1);
const RECEIVER: Peer = Peer::Mem(2);
const START: Instant = Instant::from_millis(1_000);
const FLOW_NAME: &str = "sweep";
const FLOW_KEY: [u8; 32] = [0x5a; 32];

/// What a plan's `protocol` names.
#[derive(Debug, Clone, PartialEq)]
pub enum Protocol {
    /// RGTP pulls (the default).
    Rgtp,
    /// gtUDP exchanges; `reference` selects the reference implementation's timers.
    Gtudp {
        /// Fixed 0.5 s repetition, 6 DATA and 10 RECV at most.
        reference: bool,
    },
    /// A flow with a QoS preset.
    Flow {
        /// The preset's name.
        preset: String,
        /// Its QoS.
        qos: QoS,
    },
}

impl Protocol {
    /// Parses a plan's protocol name.
    pub fn parse(s: &str) -> Result<Protocol, String> {
        match s {
            "rgtp" => Ok(Protocol::Rgtp),
            "gtudp" => Ok(Protocol::Gtudp { reference: false }),
            "gtudp-reference" => Ok(Protocol::Gtudp { reference: true }),
            _ => {
                let presets = || {
                    QoS::PRESETS
                        .iter()
                        .map(|(n, _)| format!("flow:{n}"))
                        .collect::<Vec<_>>()
                        .join(", ")
                };
                let Some(name) = s.strip_prefix("flow:") else {
                    return Err(format!(
                        "unknown protocol {s:?}: use rgtp, gtudp, gtudp-reference or one of {}",
                        presets()
                    ));
                };
                let qos = QoS::preset(name).ok_or_else(|| {
                    format!("unknown flow QoS preset {name:?}: use one of {}", presets())
                })?;
                Ok(Protocol::Flow {
                    preset: name.to_owned(),
                    qos,
                })
            }
        }
    }
}

/// What a gtUDP or flow run measured.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct ProtocolRun {
    /// Units (datagrams or SDUs) the sender was given.
    pub units: u64,
    /// Units the receiver got intact, each counted once.
    pub delivered: u64,
    /// Payload bytes of those.
    pub delivered_bytes: u64,
    /// Units handed to the receiver more than once.
    pub duplicates_delivered: u64,
    /// Units handed over damaged (not as sent).
    pub damaged: u64,
    /// DATA sent again.
    pub retransmissions: u64,
    /// Exchanges that failed (gtUDP).
    pub failed: u64,
    /// Parity datagrams sent (flows with FEC).
    pub parity_sent: u64,
    /// SDUs rebuilt from parity (flows with FEC).
    pub recovered: u64,
    /// Virtual time from the start to the last delivery.
    pub completion: Duration,
    /// Per delivered unit: gtUDP, from opening the exchange to its confirmation;
    /// flows, from the write to the delivery. Sorted.
    pub latencies: Vec<Duration>,
    /// Bytes the sender and the receiver put on the wire.
    pub sender_bytes: u64,
    /// Bytes the receiver put on the wire.
    pub receiver_bytes: u64,
    /// Hash of the network's trace.
    pub trace_hash: u64,
    /// Every datagram delivered, when traced.
    pub trace: Option<Vec<TraceEntry>>,
}

impl ProtocolRun {
    /// The `q` quantile of the latencies (0 without any).
    pub fn latency(&self, q: f64) -> Duration {
        if self.latencies.is_empty() {
            return Duration::ZERO;
        }
        let i = ((self.latencies.len() - 1) as f64 * q).round() as usize;
        self.latencies[i.min(self.latencies.len() - 1)]
    }
}

/// The unit `i` of `data` cut into `size`-byte pieces.
fn unit(data: &[u8], size: usize, i: usize) -> &[u8] {
    let start = i * size;
    &data[start..(start + size).min(data.len())]
}

/// Unit `i` as sent: its index, then its bytes.
fn framed(data: &[u8], size: usize, i: usize) -> Vec<u8> {
    let mut v = (i as u32).to_be_bytes().to_vec();
    v.extend_from_slice(unit(data, size, i));
    v
}

/// Checks a received unit against the data; returns its index if intact.
fn check(data: &[u8], size: usize, units: usize, got: &[u8]) -> Option<usize> {
    let i = u32::from_be_bytes(got.get(..4)?.try_into().ok()?) as usize;
    (i < units && got[4..] == *unit(data, size, i)).then_some(i)
}

/// Counts what each end puts on the wire; carries it over a [`SimNet`].
struct Counted {
    net: SimNet,
    sender_bytes: u64,
    receiver_bytes: u64,
}

impl Network for Counted {
    fn send(&mut self, now: Instant, from: Peer, to: Peer, data: &[u8]) {
        if from == SENDER {
            self.sender_bytes += data.len() as u64;
        } else {
            self.receiver_bytes += data.len() as u64;
        }
        self.net.send(now, from, to, data);
    }
    fn deliver_due(&mut self, now: Instant, out: &mut Vec<(Peer, Peer, Vec<u8>)>) -> usize {
        self.net.deliver_due(now, out)
    }
    fn next_delivery(&self) -> Option<Instant> {
        self.net.next_delivery()
    }
}

fn network(path: &SimPath, trace: bool) -> Counted {
    let mut net = SimNet::new(path.downlink.clone(), path.seed);
    net.set_bottleneck(SENDER, path.uplink.clone());
    if trace {
        net.enable_trace();
    }
    Counted {
        net,
        sender_bytes: 0,
        receiver_bytes: 0,
    }
}

/// A node that tells its application the time before every call (the
/// applications here time deliveries; the endpoints do not say when).
struct Timed<'s, E: redgiant_base::DatagramEndpoint, A: Application<E>> {
    inner: &'s mut Stepper<E, A>,
    clock: Rc<Cell<Instant>>,
    /// Counted as a node the simulation waits for even if background.
    hold: bool,
}

impl<E, A> Node for Timed<'_, E, A>
where
    E: redgiant_base::DatagramEndpoint,
    A: Application<E>,
{
    fn peer(&self) -> Peer {
        self.inner.peer()
    }
    fn is_done(&self) -> bool {
        !self.hold && Node::is_done(self.inner)
    }
    fn is_background(&self) -> bool {
        !self.hold && Node::is_background(self.inner)
    }
    fn deadline(&self) -> Option<Instant> {
        self.inner.deadline()
    }
    fn step(&mut self, now: Instant, send: &mut dyn FnMut(Peer, &[u8])) -> bool {
        self.clock.set(now);
        self.inner.step(now, send)
    }
    fn input(&mut self, now: Instant, from: Peer, data: &mut [u8]) {
        self.clock.set(now);
        self.inner.input(now, from, data)
    }
    fn events(&mut self) {
        self.inner.events()
    }
}

/// The simulated path of a run.
#[derive(Debug, Clone)]
pub struct SimPath {
    /// The sender's direction (the scenario's uplink).
    pub uplink: ImpairmentConfig,
    /// The answers' direction.
    pub downlink: ImpairmentConfig,
    /// The network's seed.
    pub seed: u64,
    /// Virtual time the run may take.
    pub limit: Duration,
}

/// Runs `protocol` (gtUDP or a flow) over `path`, moving `data` in units of
/// `unit_size` bytes; keeps every delivered datagram when `trace` is set.
pub fn execute(
    protocol: &Protocol,
    path: &SimPath,
    unit_size: u32,
    data: &[u8],
    trace: bool,
) -> Result<ProtocolRun, String> {
    let size = unit_size.max(1) as usize;
    let mut net = network(path, trace);
    let (seed, limit) = (path.seed, path.limit);
    let mut run = match protocol {
        Protocol::Rgtp => return Err("an RGTP run is not a protocol run".into()),
        Protocol::Gtudp { reference } => gtudp(*reference, seed, limit, data, size, &mut net),
        Protocol::Flow { qos, .. } => flow(*qos, seed, limit, data, size, &mut net)?,
    };
    run.sender_bytes = net.sender_bytes;
    run.receiver_bytes = net.receiver_bytes;
    run.trace_hash = net.net.trace_hash();
    run.trace = net.net.trace().map(<[TraceEntry]>::to_vec);
    run.latencies.sort();
    Ok(run)
}

/// Whatever a receiver application collects.
#[derive(Default)]
struct Tally {
    seen: Vec<u32>,
    delivered_bytes: u64,
    damaged: u64,
    last: Instant,
}

impl Tally {
    fn take(&mut self, data: &[u8], size: usize, payload: &[u8], now: Instant) -> Option<usize> {
        match check(data, size, self.seen.len(), payload) {
            Some(i) => {
                self.seen[i] += 1;
                if self.seen[i] == 1 {
                    self.delivered_bytes += (payload.len() - 4) as u64;
                    self.last = self.last.max(now);
                }
                Some(i)
            }
            None => {
                self.damaged += 1;
                None
            }
        }
    }

    fn into_run(self, run: &mut ProtocolRun) {
        run.units = self.seen.len() as u64;
        run.delivered = self.seen.iter().filter(|&&n| n > 0).count() as u64;
        run.duplicates_delivered = self.seen.iter().map(|&n| n.saturating_sub(1) as u64).sum();
        run.delivered_bytes = self.delivered_bytes;
        run.damaged = self.damaged;
        run.completion = self.last.saturating_since(START);
    }
}

struct GtudpSender<'d> {
    data: &'d [u8],
    size: usize,
    next: usize,
    units: usize,
    open: VecDeque<(redgiant_gtudp::ExchangeId, Instant)>,
    settled: usize,
    failed: u64,
    latencies: Vec<Duration>,
    clock: Rc<Cell<Instant>>,
}

impl GtudpSender<'_> {
    fn fill(&mut self, e: &mut Gtudp) {
        let now = self.clock.get();
        while self.open.len() < GTUDP_WINDOW && self.next < self.units {
            let x = e.send_to(RECEIVER, &framed(self.data, self.size, self.next));
            self.open.push_back((x, now));
            self.next += 1;
        }
    }

    fn settle(&mut self, x: redgiant_gtudp::ExchangeId) -> Option<Instant> {
        let at = self.open.iter().position(|(id, _)| *id == x)?;
        let (_, opened) = self.open.remove(at)?;
        self.settled += 1;
        Some(opened)
    }
}

impl Application<Gtudp> for GtudpSender<'_> {
    type Output = ();
    type Error = io::Error;

    fn deliver(&mut self, _: Datagram<'_>) -> io::Result<()> {
        Ok(())
    }

    fn event(&mut self, e: &mut Gtudp, ev: GtudpEvent) -> io::Result<Option<()>> {
        match ev {
            GtudpEvent::Confirmed(x) => {
                if let Some(opened) = self.settle(x) {
                    self.latencies
                        .push(self.clock.get().saturating_since(opened));
                }
            }
            GtudpEvent::Failed(x, _) => {
                if self.settle(x).is_some() {
                    self.failed += 1;
                }
            }
            GtudpEvent::Received { .. } => {}
        }
        self.fill(e);
        Ok((self.settled == self.units).then_some(()))
    }
}

struct GtudpReceiver<'d> {
    data: &'d [u8],
    size: usize,
    tally: Tally,
    clock: Rc<Cell<Instant>>,
}

impl Application<Gtudp> for GtudpReceiver<'_> {
    type Output = ();
    type Error = io::Error;

    fn deliver(&mut self, d: Datagram<'_>) -> io::Result<()> {
        self.tally
            .take(self.data, self.size, d.payload, self.clock.get());
        Ok(())
    }

    fn event(&mut self, _: &mut Gtudp, _: GtudpEvent) -> io::Result<Option<()>> {
        Ok(None)
    }
}

fn gtudp(
    reference: bool,
    seed: u64,
    limit: Duration,
    data: &[u8],
    size: usize,
    net: &mut Counted,
) -> ProtocolRun {
    let config = if reference {
        GtudpConfig::reference()
    } else {
        GtudpConfig::default()
    };
    let units = data.len().div_ceil(size).max(1);
    let clock_a = Rc::new(Cell::new(START));
    let clock_b = Rc::new(Cell::new(START));
    let mut a = Gtudp::seeded(config.clone(), seed);
    let mut sender = GtudpSender {
        data,
        size,
        next: 0,
        units,
        open: VecDeque::new(),
        settled: 0,
        failed: 0,
        latencies: Vec::new(),
        clock: Rc::clone(&clock_a),
    };
    sender.fill(&mut a);
    let mut sa = Stepper::new(a, sender, SENDER);
    let receiver = GtudpReceiver {
        data,
        size,
        tally: Tally {
            seen: vec![0; units],
            ..Tally::default()
        },
        clock: Rc::clone(&clock_b),
    };
    let mut sb =
        Stepper::new(Gtudp::seeded(config, seed ^ 0x9e37), receiver, RECEIVER).background();
    simulate(
        net,
        &mut [
            &mut Timed {
                inner: &mut sa,
                clock: clock_a,
                hold: false,
            },
            &mut Timed {
                inner: &mut sb,
                clock: clock_b,
                hold: false,
            },
        ],
        START,
        START + limit,
    );
    let mut run = ProtocolRun::default();
    let (ea, sender, _) = sa.into_parts();
    let (_, receiver, _) = sb.into_parts();
    receiver.tally.into_run(&mut run);
    run.retransmissions = ea.stats().data_repeated;
    run.failed = sender.failed + (units - sender.settled) as u64;
    run.latencies = sender.latencies;
    run
}

struct FlowWriter<'d> {
    data: &'d [u8],
    size: usize,
    next: usize,
    units: usize,
    flow: FlowId,
    up: bool,
    written_at: Vec<Instant>,
    over: bool,
}

impl FlowWriter<'_> {
    fn fill(&mut self, e: &mut FlowEndpoint) {
        let now = e.now();
        while self.next < self.units {
            match e.write(now, self.flow, &framed(self.data, self.size, self.next)) {
                Ok(()) => {
                    self.written_at.push(now);
                    self.next += 1;
                }
                Err(_) => break,
            }
        }
    }
}

impl Application<FlowEndpoint> for FlowWriter<'_> {
    type Output = ();
    type Error = io::Error;

    fn deliver(&mut self, d: Infallible) -> io::Result<()> {
        match d {}
    }

    fn event(&mut self, e: &mut FlowEndpoint, ev: FlowEvent) -> io::Result<Option<()>> {
        match ev {
            FlowEvent::Up(_) => {
                self.up = true;
                self.fill(e);
            }
            FlowEvent::Drained(_) => {
                self.fill(e);
                if self.next == self.units {
                    return Ok(Some(()));
                }
            }
            FlowEvent::Down(_) | FlowEvent::Refused { .. } | FlowEvent::Closed(_) => {
                self.over = true;
                return Ok(Some(()));
            }
            _ => {}
        }
        Ok(None)
    }
}

struct FlowReader<'d> {
    data: &'d [u8],
    size: usize,
    tally: Tally,
    arrivals: Vec<(usize, Instant)>,
}

impl Application<FlowEndpoint> for FlowReader<'_> {
    type Output = ();
    type Error = io::Error;

    fn deliver(&mut self, d: Infallible) -> io::Result<()> {
        match d {}
    }

    fn event(&mut self, e: &mut FlowEndpoint, ev: FlowEvent) -> io::Result<Option<()>> {
        let now = e.now();
        match ev {
            FlowEvent::Alloc { flow, .. } => {
                let _ = e.accept(now, flow);
            }
            FlowEvent::Readable(f) => {
                while let Some(s) = e.read(f) {
                    if let Some(i) = self.tally.take(self.data, self.size, &s, now) {
                        if self.tally.seen[i] == 1 {
                            self.arrivals.push((i, now));
                        }
                    }
                }
            }
            _ => {}
        }
        Ok(None)
    }
}

fn flow(
    qos: QoS,
    seed: u64,
    limit: Duration,
    data: &[u8],
    size: usize,
    net: &mut Counted,
) -> Result<ProtocolRun, String> {
    let config = || FlowConfig {
        key: (qos.cypher_s > 0).then(|| FlowKey::new(FLOW_KEY)),
        ..FlowConfig::default()
    };
    let mut salt = [0u8; 32];
    salt[..8].copy_from_slice(&seed.to_le_bytes());
    let mut a = FlowEndpoint::seeded(config(), salt).map_err(|e| e.to_string())?;
    salt[8] = 1;
    let mut b = FlowEndpoint::seeded(config(), salt).map_err(|e| e.to_string())?;
    b.register(FLOW_NAME).map_err(|e| e.to_string())?;
    let flow = a
        .alloc(START, RECEIVER, FLOW_NAME, qos)
        .map_err(|e| e.to_string())?;
    let units = data.len().div_ceil(size).max(1);
    let writer = FlowWriter {
        data,
        size,
        next: 0,
        units,
        flow,
        up: false,
        written_at: Vec::with_capacity(units),
        over: false,
    };
    let reader = FlowReader {
        data,
        size,
        tally: Tally {
            seen: vec![0; units],
            ..Tally::default()
        },
        arrivals: Vec::new(),
    };
    let mut sa = Stepper::new(a, writer, SENDER);
    let mut sb = Stepper::new(b, reader, RECEIVER).background();
    let clock = Rc::new(Cell::new(START));
    let ended = simulate(net, &mut [&mut sa, &mut sb], START, START + limit);
    // The receiver takes what is still on the way.
    simulate(
        net,
        &mut [&mut Timed {
            inner: &mut sb,
            clock,
            hold: true,
        }],
        ended,
        ended + FLOW_TAIL,
    );
    let (ea, writer, _) = sa.into_parts();
    let (eb, reader, _) = sb.into_parts();
    let mut run = ProtocolRun::default();
    let arrivals = reader.arrivals;
    reader.tally.into_run(&mut run);
    run.latencies = arrivals
        .iter()
        .filter_map(|&(i, at)| Some(at.saturating_since(*writer.written_at.get(i)?)))
        .collect();
    let (sa_stats, sb_stats) = (ea.stats(), eb.stats());
    run.retransmissions = sa_stats.data_retransmitted;
    run.parity_sent = sa_stats.parity_sent;
    run.recovered = sb_stats.sdus_recovered;
    run.failed = u64::from(writer.over || !writer.up);
    Ok(run)
}
