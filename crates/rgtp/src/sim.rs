//! A deterministic simulation: one exposer and any number of pullers on an
//! in-memory network, in virtual time. The same seed gives the same packet
//! trace, byte for byte.

use std::cell::RefCell;
use std::time::Duration;

use rgtp_link::mem::SimNet;
use rgtp_proto::puller::PullError;
use rgtp_proto::{Exposer, ExposerStats, Instant, Peer, Puller, PullerConfig, PullerStats};

use redgiant_base::driver::{self, Node, Stepper};

use crate::builder::Prepared;
use crate::driver::{PullApp, PullFailure, ServeApp};
use crate::sink::MemSink;
use crate::suite::DynSuite;

/// The exposer's node address.
pub const EXPOSER: Peer = Peer::Mem(0);

/// Node address of puller `i`.
pub fn puller_peer(i: usize) -> Peer {
    Peer::Mem(i as u32 + 1)
}

/// How one simulated pull ended.
#[derive(Debug)]
pub struct SimOutcome {
    /// The pulled bytes, or why not.
    pub result: Result<Vec<u8>, PullError>,
    /// Its counters.
    pub stats: PullerStats,
    /// Virtual time it took.
    pub elapsed: Duration,
}

/// Everything a simulation produced.
#[derive(Debug)]
pub struct SimReport {
    /// One per puller, in order.
    pub pullers: Vec<SimOutcome>,
    /// Exposer counters.
    pub exposer: ExposerStats,
    /// Hash of the network trace (enable tracing on the `SimNet` for the full list).
    pub trace_hash: u64,
    /// Most jobs the exposer ever had queued.
    pub exposer_queue_max: usize,
    /// Every datagram the network delivered, in order, when the `SimNet` given kept
    /// its trace ([`SimNet::enable_trace`](rgtp_link::SimNet::enable_trace)).
    pub trace: Option<Vec<rgtp_link::mem::TraceEntry>>,
}

const START: Instant = Instant::from_micros(1_000_000_000);

/// The exposer as a simulation node, noting its deepest queue.
struct ExposerNode {
    stepper: Stepper<Exposer, ServeApp>,
    queue_max: usize,
}

impl Node for ExposerNode {
    fn peer(&self) -> Peer {
        self.stepper.peer()
    }
    fn is_done(&self) -> bool {
        false
    }
    fn is_background(&self) -> bool {
        true
    }
    fn deadline(&self) -> Option<Instant> {
        self.stepper.deadline()
    }
    fn step(&mut self, now: Instant, send: &mut dyn FnMut(Peer, &[u8])) -> bool {
        self.queue_max = self.queue_max.max(self.stepper.endpoint.queued());
        self.stepper.step(now, send)
    }
    fn input(&mut self, now: Instant, from: Peer, data: &mut [u8]) {
        self.stepper.input(now, from, data)
    }
    fn events(&mut self) {}
}

type PullerNode = Stepper<Puller<DynSuite>, PullApp<MemSink>>;

/// The observer of [`simulate_observed`], shared by the puller nodes.
type Observer<'a> = RefCell<&'a mut dyn FnMut(usize, Instant, &Puller<DynSuite>)>;

/// A puller node that shows its state to an observer before every step.
struct Watched<'w, 'a>(PullerNode, usize, &'w Observer<'a>);

impl Node for Watched<'_, '_> {
    fn peer(&self) -> Peer {
        self.0.peer()
    }
    fn is_done(&self) -> bool {
        self.0.is_finished()
    }
    fn is_background(&self) -> bool {
        false
    }
    fn deadline(&self) -> Option<Instant> {
        self.0.deadline()
    }
    fn step(&mut self, now: Instant, send: &mut dyn FnMut(Peer, &[u8])) -> bool {
        (self.2.borrow_mut())(self.1, now, &self.0.endpoint);
        self.0.step(now, send)
    }
    fn input(&mut self, now: Instant, from: Peer, data: &mut [u8]) {
        self.0.input(now, from, data)
    }
    fn events(&mut self) {
        self.0.events()
    }
}

/// Runs pullers with `configs` (their `exposer` peer is set to [`EXPOSER`]) against
/// `prepared` over `net` until all finish or `limit` of virtual time passes.
pub fn simulate(
    prepared: &Prepared,
    configs: Vec<PullerConfig>,
    net: SimNet,
    limit: Duration,
) -> SimReport {
    simulate_observed(prepared, configs, net, limit, &mut |_, _, _| {})
}

/// [`simulate`], showing each puller to `observe` (index, virtual time, puller)
/// before every step it takes; the observer only reads, so the run is the same.
pub fn simulate_observed(
    prepared: &Prepared,
    configs: Vec<PullerConfig>,
    mut net: SimNet,
    limit: Duration,
    observe: &mut dyn FnMut(usize, Instant, &Puller<DynSuite>),
) -> SimReport {
    let observe: Observer<'_> = RefCell::new(observe);
    let mut exposer = ExposerNode {
        stepper: Stepper::new(prepared.exposer(), ServeApp, EXPOSER).background(),
        queue_max: 0,
    };
    let mut pullers: Vec<Watched<'_, '_>> = configs
        .into_iter()
        .enumerate()
        .map(|(i, mut c)| {
            c.exposer = EXPOSER;
            let app = PullApp::new(MemSink::default());
            let node = Stepper::new(Puller::new(c, DynSuite, START), app, puller_peer(i));
            Watched(node, i, &observe)
        })
        .collect();
    // Pullers step first, then the exposer, in every round.
    let mut nodes: Vec<&mut dyn Node> = pullers.iter_mut().map(|p| p as &mut dyn Node).collect();
    nodes.push(&mut exposer);
    let ended = driver::simulate(&mut net, &mut nodes, START, START + limit);
    drop(nodes);
    SimReport {
        pullers: pullers
            .into_iter()
            .map(|Watched(p, ..)| {
                let stats = p.endpoint.stats();
                let elapsed = p.finished_at().unwrap_or(ended).saturating_since(START);
                let (_, app, outcome) = p.into_parts();
                SimOutcome {
                    stats,
                    elapsed,
                    result: match outcome {
                        Some(Ok(())) => Ok(app.sink.to_vec()),
                        Some(Err(PullFailure::Protocol(e))) => Err(e),
                        // The in-memory sink only fails on a chunk past the end: an impossible write.
                        Some(Err(_)) | None => Err(PullError::Timeout),
                    },
                }
            })
            .collect(),
        exposer: exposer.stepper.endpoint.stats(),
        trace_hash: net.trace_hash(),
        exposer_queue_max: exposer.queue_max,
        trace: net.trace().map(<[_]>::to_vec),
    }
}
