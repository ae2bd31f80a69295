//! A deterministic simulation: one exposer and any number of pullers on an
//! in-memory network, in virtual time. The same seed gives the same packet
//! trace, byte for byte.

use std::time::Duration;

use rgtp_link::mem::SimNet;
use rgtp_proto::puller::PullError;
use rgtp_proto::{ExposerStats, Instant, Peer, Puller, PullerConfig, PullerStats};

use crate::builder::Prepared;
use crate::driver::{self, PullFailure};
use crate::sink::{MemSink, Sink};
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
}

const START: Instant = Instant::from_micros(1_000_000_000);

/// Runs pullers with `configs` (their `exposer` peer is set to [`EXPOSER`]) against
/// `prepared` over `net` until all finish or `limit` of virtual time passes.
pub fn simulate(
    prepared: &Prepared,
    configs: Vec<PullerConfig>,
    mut net: SimNet,
    limit: Duration,
) -> SimReport {
    let mut exposer = prepared.exposer();
    struct Node {
        puller: Puller<DynSuite>,
        sink: MemSink,
        result: Option<Result<(), PullError>>,
        finished_at: Instant,
    }
    let mut nodes: Vec<Node> = configs
        .into_iter()
        .map(|mut c| {
            c.exposer = EXPOSER;
            Node {
                puller: Puller::new(c, DynSuite, START),
                sink: MemSink::default(),
                result: None,
                finished_at: START,
            }
        })
        .collect();
    let mut now = START;
    let mut buf = Vec::new();
    let mut deliveries = Vec::new();
    let mut queue_max = 0;
    let end = START + limit;

    let drain = |node: &mut Node, now: Instant| {
        if node.result.is_some() {
            return;
        }
        let outcome = match driver::drain_events(&mut node.puller, &mut node.sink) {
            Ok(None) => return,
            Ok(Some(())) => Ok(()),
            Err(PullFailure::Protocol(e)) => Err(e),
            // The in-memory sink only fails on a chunk past the end: an impossible write.
            Err(PullFailure::Io(_) | PullFailure::Stopped) => Err(PullError::Timeout),
        };
        node.result = Some(outcome);
        node.finished_at = now;
    };

    loop {
        let mut progressed = true;
        while progressed {
            progressed = false;
            for (i, node) in nodes.iter_mut().enumerate() {
                if node.result.is_some() {
                    continue;
                }
                if node.puller.poll_timeout().is_some_and(|d| d <= now) {
                    node.puller.handle_timeout(now);
                }
                while let Some(t) = node.puller.poll_transmit(now, &mut buf) {
                    for d in t.datagrams(&buf) {
                        net.send(now, puller_peer(i), t.destination, d);
                    }
                    progressed = true;
                }
                drain(node, now);
            }
            queue_max = queue_max.max(exposer.queued());
            while let Some(t) = exposer.poll_transmit(now, &mut buf) {
                for d in t.datagrams(&buf) {
                    net.send(now, EXPOSER, t.destination, d);
                }
                progressed = true;
            }
            deliveries.clear();
            if net.deliver_due(now, &mut deliveries) > 0 {
                progressed = true;
            }
            for (to, from, bytes) in deliveries.iter_mut() {
                if *to == EXPOSER {
                    exposer.handle_datagram(now, *from, bytes);
                    continue;
                }
                let Peer::Mem(n) = *to else { continue };
                let Some(node) = nodes.get_mut(n as usize - 1) else {
                    continue;
                };
                if node.result.is_some() {
                    continue;
                }
                if let Some(d) = node.puller.handle_datagram(now, *from, bytes) {
                    let (offset, data) = (d.offset, d.data.to_vec());
                    if node.sink.write_at(offset, &data).is_err() {
                        node.result = Some(Err(PullError::Timeout));
                    }
                }
                drain(node, now);
            }
        }
        if nodes.iter().all(|n| n.result.is_some()) {
            break;
        }
        let next = nodes
            .iter()
            .filter(|n| n.result.is_none())
            .filter_map(|n| n.puller.poll_timeout())
            .chain(net.next_delivery())
            .min();
        match next {
            Some(t) if t <= end => now = t.max(now + Duration::from_micros(1)),
            _ => break,
        }
    }

    SimReport {
        pullers: nodes
            .into_iter()
            .map(|n| SimOutcome {
                stats: n.puller.stats(),
                elapsed: n.finished_at.saturating_since(START),
                result: match n.result {
                    Some(Ok(())) => Ok(n.sink.to_vec()),
                    Some(Err(e)) => Err(e),
                    None => Err(PullError::Timeout),
                },
            })
            .collect(),
        exposer: exposer.stats(),
        trace_hash: net.trace_hash(),
        exposer_queue_max: queue_max,
    }
}
