//! The protocols a plan can name besides RGTP, run on the same simulated
//! network: gtUDP (one sender's datagrams to one receiver) and flows (one
//! writer's SDUs to one reader over a flow with a QoS preset).
//!
//! Both runs put the sender where the RGTP exposer sits, behind the scenario's
//! uplink (every impairment), and the receiver behind the downlink (delay
//! only), so the protocols cross the same link. The data is the plan's `size`
//! bytes cut into payloads of `chunk_size` bytes, each starting with its
//! 4-byte index (the rest is data), so the receiver can tell which one
//! arrived, whether intact and whether again.

use std::convert::Infallible;
use std::io;
use std::time::Duration;

use crate::plan::RunSpec;
use crate::protocol::{GtudpMode, Protocol};
use crate::record::ProtoMetrics;
use redgiant_base::driver::{simulate, Application, Network, Node, Stepper, UntilEnd};
use redgiant_base::{Instant, Peer};
use redgiant_flow::{Event as FlowEvent, FlowEndpoint, FlowError, FlowId, FlowKey, QoS};
use redgiant_gtudp::{AuthConfig, AuthKey, Config as GtConfig, Datagram, Event as GtEvent, Gtudp};
use rgtp_link::mem::{SimNet, TraceEntry};

/// Where the sender sits (the exposer's place in RGTP runs).
pub const SENDER: Peer = Peer::Mem(0);
/// Where the receiver sits (the first puller's place).
pub const RECEIVER: Peer = Peer::Mem(1);
const START: Instant = Instant::from_millis(1_000);
/// How long the reader of a flow keeps reading once the writer is done.
const FLOW_GRACE: Duration = Duration::from_secs(2);
const NAME: &str = "sink";
const KEY: [u8; 32] = [0x42; 32];

/// What a gtUDP or flow run gave.
#[derive(Debug, Clone)]
pub struct ProtoRun {
    /// Every payload arrived intact.
    pub complete: bool,
    /// From the start to the last first delivery (or to the end of the run
    /// when nothing arrived).
    pub completion: Duration,
    /// Data bytes delivered intact, once each (indices not counted).
    pub delivered_bytes: u64,
    /// Bytes the sender put on the wire.
    pub sender_bytes: u64,
    /// Datagrams the sender put on the wire.
    pub sender_datagrams: u64,
    /// Bytes the receiver put on the wire.
    pub receiver_bytes: u64,
    /// The protocol's own figures.
    pub metrics: ProtoMetrics,
    /// Hash of every delivery of the network.
    pub trace_hash: u64,
    /// The deliveries, when traced.
    pub trace: Option<Vec<TraceEntry>>,
}

/// A [`SimNet`] that counts what each side sends.
struct Counted {
    net: SimNet,
    sender_bytes: u64,
    sender_datagrams: u64,
    receiver_bytes: u64,
}

impl Network for Counted {
    fn send(&mut self, now: Instant, from: Peer, to: Peer, data: &[u8]) {
        if from == SENDER {
            self.sender_bytes += data.len() as u64;
            self.sender_datagrams += 1;
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

fn network(spec: &RunSpec, trace: bool) -> Counted {
    let mut net = SimNet::new(spec.scenario.downlink(), spec.seed);
    net.set_bottleneck(SENDER, spec.scenario.uplink());
    if trace {
        net.enable_trace();
    }
    Counted {
        net,
        sender_bytes: 0,
        sender_datagrams: 0,
        receiver_bytes: 0,
    }
}

/// `data` cut into payloads of `chunk` bytes, each its 4-byte index then data.
pub fn payloads(data: &[u8], chunk: u32) -> Vec<Vec<u8>> {
    let per = (chunk as usize).saturating_sub(4).max(1);
    data.chunks(per)
        .enumerate()
        .map(|(i, c)| {
            let mut p = (i as u32).to_be_bytes().to_vec();
            p.extend_from_slice(c);
            p
        })
        .collect()
}

/// What the receiving application saw: arrivals in order, checked against
/// what was sent.
#[derive(Default)]
struct Tally {
    /// Times each payload arrived intact.
    seen: Vec<u32>,
    /// Indices of intact arrivals, in arrival order (first arrivals only).
    order: Vec<u32>,
    /// Arrival time of each payload's first intact copy.
    first_at: Vec<Option<Instant>>,
    delivered_bytes: u64,
    duplicates: u64,
}

impl Tally {
    fn new(n: usize) -> Tally {
        Tally {
            seen: vec![0; n],
            first_at: vec![None; n],
            ..Tally::default()
        }
    }

    fn arrive(&mut self, now: Instant, p: &[u8], sent: &[Vec<u8>]) {
        let Some(head) = p.get(..4) else { return };
        let i = u32::from_be_bytes([head[0], head[1], head[2], head[3]]) as usize;
        if sent.get(i).is_none_or(|s| s.as_slice() != p) {
            // Damaged on the way: not a delivery.
            return;
        }
        self.seen[i] += 1;
        if self.seen[i] > 1 {
            self.duplicates += 1;
            return;
        }
        self.order.push(i as u32);
        self.first_at[i] = Some(now);
        self.delivered_bytes += (p.len() - 4) as u64;
    }

    fn delivered(&self) -> u64 {
        self.order.len() as u64
    }

    fn last(&self) -> Option<Instant> {
        self.first_at.iter().flatten().max().copied()
    }
}

fn finish(
    tally: &Tally,
    n: usize,
    ended: Instant,
    net: Counted,
    metrics: ProtoMetrics,
) -> ProtoRun {
    let last = tally.last().unwrap_or(ended);
    let trace_hash = net.net.trace_hash();
    let trace = net.net.trace().map(<[TraceEntry]>::to_vec);
    ProtoRun {
        complete: tally.delivered() == n as u64,
        completion: last - START,
        delivered_bytes: tally.delivered_bytes,
        sender_bytes: net.sender_bytes,
        sender_datagrams: net.sender_datagrams,
        receiver_bytes: net.receiver_bytes,
        metrics,
        trace_hash,
        trace,
    }
}

fn seed_bytes(seed: u64, side: u8) -> [u8; 32] {
    let mut s = [side; 32];
    s[..8].copy_from_slice(&seed.to_le_bytes());
    s
}

/// Runs `protocol` (not [`Protocol::Rgtp`]) for `spec` on `data`.
pub fn run(
    protocol: Protocol,
    spec: &RunSpec,
    data: &[u8],
    limit: Duration,
    trace: bool,
) -> Result<ProtoRun, String> {
    let sent = payloads(data, spec.variant.chunk_size);
    match protocol {
        Protocol::Rgtp => Err("an RGTP pull is not run here".into()),
        Protocol::Gtudp(mode) => run_gtudp(mode, spec, &sent, limit, trace),
        Protocol::Flow(_, qos) => run_flow(qos, spec, &sent, limit, trace),
    }
}

struct GtSender {
    open: usize,
    settled: usize,
}

impl Application<Gtudp> for GtSender {
    type Output = ();
    type Error = io::Error;

    fn deliver(&mut self, _: Datagram<'_>) -> io::Result<()> {
        Ok(())
    }

    fn event(&mut self, _: &mut Gtudp, ev: GtEvent) -> io::Result<Option<()>> {
        if matches!(ev, GtEvent::Confirmed(_) | GtEvent::Failed(..)) {
            self.settled += 1;
        }
        Ok((self.settled >= self.open).then_some(()))
    }
}

struct GtReceiver<'s> {
    now: Instant,
    sent: &'s [Vec<u8>],
    tally: Tally,
}

impl Application<Gtudp> for GtReceiver<'_> {
    type Output = ();
    type Error = io::Error;

    fn deliver(&mut self, d: Datagram<'_>) -> io::Result<()> {
        self.tally.arrive(self.now, d.payload, self.sent);
        Ok(())
    }

    fn event(&mut self, _: &mut Gtudp, _: GtEvent) -> io::Result<Option<()>> {
        Ok(None)
    }
}

/// The receiving stepper, told the time before each datagram (gtUDP hands a
/// delivery to the application without it).
struct Clocked<'s>(Stepper<Gtudp, GtReceiver<'s>>);

impl Node for Clocked<'_> {
    fn peer(&self) -> Peer {
        self.0.peer()
    }
    fn is_done(&self) -> bool {
        Node::is_done(&self.0)
    }
    fn is_background(&self) -> bool {
        Node::is_background(&self.0)
    }
    fn deadline(&self) -> Option<Instant> {
        self.0.deadline()
    }
    fn step(&mut self, now: Instant, send: &mut dyn FnMut(Peer, &[u8])) -> bool {
        self.0.step(now, send)
    }
    fn input(&mut self, now: Instant, from: Peer, data: &mut [u8]) {
        self.0.app.now = now;
        self.0.input(now, from, data)
    }
    fn events(&mut self) {
        self.0.events()
    }
}

fn run_gtudp(
    mode: GtudpMode,
    spec: &RunSpec,
    sent: &[Vec<u8>],
    limit: Duration,
    trace: bool,
) -> Result<ProtoRun, String> {
    let config = match mode {
        GtudpMode::Rtt => GtConfig::default(),
        GtudpMode::Reference => GtConfig::reference(),
        GtudpMode::Auth => GtConfig::default().with_auth(AuthConfig::new(AuthKey(KEY), 0x1234)),
    };
    if let Some(p) = sent.iter().find(|p| p.len() > config.max_payload) {
        return Err(format!(
            "a gtUDP payload of {} bytes exceeds the largest, {}",
            p.len(),
            config.max_payload
        ));
    }
    let mut receiver_config = config.clone();
    if let Some(auth) = receiver_config.auth.as_mut() {
        // Each endpoint draws its own session.
        auth.session = auth.session.wrapping_add(1);
    }
    let mut net = network(spec, trace);
    let mut a = Gtudp::seeded(config, spec.seed);
    for p in sent {
        a.send_to(RECEIVER, p);
    }
    let mut na = Stepper::new(
        a,
        GtSender {
            open: sent.len(),
            settled: 0,
        },
        SENDER,
    );
    let receiver = GtReceiver {
        now: START,
        sent,
        tally: Tally::new(sent.len()),
    };
    let mut nb = Clocked(
        Stepper::new(
            Gtudp::seeded(receiver_config, spec.seed ^ 0x55),
            receiver,
            RECEIVER,
        )
        .background(),
    );
    let ended = if sent.is_empty() {
        START
    } else {
        simulate(&mut net, &mut [&mut na, &mut nb], START, START + limit)
    };
    let s = na.endpoint.stats();
    let tally = &nb.0.app.tally;
    // Every datagram is handed over at the start.
    let lat = latencies(tally, |_| Some(START));
    let metrics = ProtoMetrics {
        sent: sent.len() as u64,
        delivered: tally.delivered(),
        duplicates: tally.duplicates,
        retransmissions: s.data_repeated,
        failed: Some(s.failed),
        latency_p50_ms: percentile(&lat, 50.0),
        latency_p99_ms: percentile(&lat, 99.0),
        ..ProtoMetrics::default()
    };
    Ok(finish(tally, sent.len(), ended, net, metrics))
}

struct Writer {
    flow: FlowId,
    up: bool,
    /// Everything written so far left the send buffer (and, with **arq**, was
    /// acknowledged).
    drained: bool,
    /// SDUs not yet written.
    pending: usize,
    /// The flow went down or was refused.
    failed: bool,
}

impl Application<FlowEndpoint> for Writer {
    type Output = ();
    type Error = io::Error;

    fn deliver(&mut self, d: Infallible) -> io::Result<()> {
        match d {}
    }

    fn event(&mut self, _: &mut FlowEndpoint, ev: FlowEvent) -> io::Result<Option<()>> {
        match ev {
            FlowEvent::Up(f) if f == self.flow => self.up = true,
            FlowEvent::Drained(f) if f == self.flow => self.drained = true,
            FlowEvent::Down(_) | FlowEvent::Refused { .. } | FlowEvent::Closed(_) => {
                self.failed = true
            }
            _ => {}
        }
        let done = self.failed || (self.pending == 0 && self.drained);
        Ok(done.then_some(()))
    }
}

/// The writer's stepper with its SDUs: written back to back as the send
/// buffer takes them, or one every `interval` once the flow is up.
struct Paced<'s> {
    st: Stepper<FlowEndpoint, Writer>,
    sdus: &'s [Vec<u8>],
    next: usize,
    interval: Duration,
    next_at: Option<Instant>,
    written_at: Vec<Instant>,
}

impl Paced<'_> {
    fn write_due(&mut self, now: Instant) {
        if !self.st.app.up || self.st.is_finished() {
            return;
        }
        let next_at = *self.next_at.get_or_insert(now);
        if now < next_at {
            return;
        }
        while self.next < self.sdus.len() {
            let flow = self.st.app.flow;
            match self.st.endpoint.write(now, flow, &self.sdus[self.next]) {
                Ok(()) => {
                    self.written_at.push(now);
                    self.next += 1;
                    self.st.app.pending -= 1;
                    self.st.app.drained = false;
                }
                Err(FlowError::WouldBlock) => {
                    if !self.interval.is_zero() {
                        self.next_at = Some(now + Duration::from_millis(1));
                    }
                    return;
                }
                Err(_) => {
                    self.st.app.failed = true;
                    return;
                }
            }
            if !self.interval.is_zero() {
                self.next_at = Some(next_at + self.interval);
                return;
            }
        }
    }
}

impl Node for Paced<'_> {
    fn peer(&self) -> Peer {
        self.st.peer()
    }
    fn is_done(&self) -> bool {
        self.st.is_finished() || self.st.app.failed
    }
    fn is_background(&self) -> bool {
        false
    }
    fn deadline(&self) -> Option<Instant> {
        let paced = (self.st.app.up && !self.interval.is_zero() && self.next < self.sdus.len())
            .then_some(self.next_at)
            .flatten();
        [self.st.deadline(), paced].into_iter().flatten().min()
    }
    fn step(&mut self, now: Instant, send: &mut dyn FnMut(Peer, &[u8])) -> bool {
        self.write_due(now);
        self.st.step(now, send)
    }
    fn input(&mut self, now: Instant, from: Peer, data: &mut [u8]) {
        self.st.input(now, from, data)
    }
    fn events(&mut self) {
        self.st.events()
    }
}

struct Reader<'s> {
    sent: &'s [Vec<u8>],
    tally: Tally,
}

impl Application<FlowEndpoint> for Reader<'_> {
    type Output = ();
    type Error = io::Error;

    fn deliver(&mut self, d: Infallible) -> io::Result<()> {
        match d {}
    }

    fn event(&mut self, e: &mut FlowEndpoint, ev: FlowEvent) -> io::Result<Option<()>> {
        let now = e.now();
        match ev {
            FlowEvent::Alloc { flow, .. } => {
                // Refusal is the endpoint's only other answer; a flow it
                // cannot accept shows as nothing delivered.
                let _ = e.accept(now, flow);
            }
            FlowEvent::Readable(f) => {
                while let Some(s) = e.read(f) {
                    self.tally.arrive(now, &s, self.sent);
                }
            }
            _ => {}
        }
        Ok(None)
    }
}

/// One SDU every tenth of the delay bound for the presets with a bound of
/// 100 ms or less (video: 10 ms, voice: 5 ms); back to back otherwise.
pub fn pacing(qos: &QoS) -> Duration {
    if qos.delay <= 100 {
        Duration::from_micros(u64::from(qos.delay) * 100)
    } else {
        Duration::ZERO
    }
}

/// Milliseconds from each payload's hand-over (`written(i)`) to its first
/// intact arrival, sorted.
fn latencies(tally: &Tally, written: impl Fn(usize) -> Option<Instant>) -> Vec<f64> {
    let mut lat: Vec<f64> = tally
        .first_at
        .iter()
        .enumerate()
        .filter_map(|(i, t)| Some(((*t)? - written(i)?).as_secs_f64() * 1e3))
        .collect();
    lat.sort_by(f64::total_cmp);
    lat
}

fn percentile(sorted: &[f64], p: f64) -> Option<f64> {
    if sorted.is_empty() {
        return None;
    }
    let rank = ((p / 100.0) * sorted.len() as f64).ceil() as usize;
    Some(sorted[rank.clamp(1, sorted.len()) - 1])
}

fn run_flow(
    qos: QoS,
    spec: &RunSpec,
    sent: &[Vec<u8>],
    limit: Duration,
    trace: bool,
) -> Result<ProtoRun, String> {
    let config = redgiant_flow::Config {
        key: (qos.cypher_s > 0).then(|| FlowKey::new(KEY)),
        ..redgiant_flow::Config::default()
    };
    let mut a = FlowEndpoint::seeded(config.clone(), seed_bytes(spec.seed, 1))
        .map_err(|e| format!("flow writer: {e:?}"))?;
    let mut b = FlowEndpoint::seeded(config, seed_bytes(spec.seed, 2))
        .map_err(|e| format!("flow reader: {e:?}"))?;
    b.register(NAME)
        .map_err(|e| format!("flow reader: {e:?}"))?;
    let flow = a
        .alloc(START, RECEIVER, NAME, qos)
        .map_err(|e| format!("flow allocation: {e:?}"))?;
    let mut net = network(spec, trace);
    let writer = Writer {
        flow,
        up: false,
        drained: true,
        pending: sent.len(),
        failed: false,
    };
    let mut na = Paced {
        st: Stepper::new(a, writer, SENDER),
        sdus: sent,
        next: 0,
        interval: pacing(&qos),
        next_at: None,
        written_at: Vec::with_capacity(sent.len()),
    };
    let mut nb = Stepper::new(
        b,
        Reader {
            sent,
            tally: Tally::new(sent.len()),
        },
        RECEIVER,
    )
    .background();
    let ended = simulate(&mut net, &mut [&mut na, &mut nb], START, START + limit);
    // What is still on the way may yet arrive: the reader alone, for a while.
    simulate(
        &mut net,
        &mut [&mut UntilEnd(&mut nb)],
        ended,
        ended + FLOW_GRACE,
    );
    let tally = &nb.app.tally;
    let lat = latencies(tally, |i| na.written_at.get(i).copied());
    let (ws, rs) = (na.st.endpoint.stats(), nb.endpoint.stats());
    let metrics = ProtoMetrics {
        sent: sent.len() as u64,
        delivered: tally.delivered(),
        duplicates: tally.duplicates,
        retransmissions: ws.data_retransmitted,
        failed: None,
        in_order: Some(tally.order.windows(2).all(|w| w[0] < w[1])),
        latency_p50_ms: percentile(&lat, 50.0),
        latency_p99_ms: percentile(&lat, 99.0),
        parity_sent: Some(ws.parity_sent),
        parity_used: Some(rs.sdus_recovered),
    };
    Ok(finish(tally, sent.len(), ended, net, metrics))
}
