//! In-memory links: a virtual-time network for simulations ([`SimNet`]) and
//! real-time endpoints for running drivers in threads ([`MemLink`]).
//!
//! Both impair each direction `(from, to)` independently with its own
//! [`Impairment`], seeded from the network seed and the two addresses, so a
//! direction's fate depends only on what was sent along it.
//!
//! [`SimNet`] is deterministic: the same seed and the same calls give the same
//! deliveries in the same order (by delivery time, then by send order), and the
//! same [`SimNet::trace_hash`]. [`MemLink`] runs the same model against the
//! wall clock, so its timing is only as exact as the scheduler.

use std::collections::HashMap;
use std::io;
use std::sync::{Arc, Condvar, Mutex, MutexGuard};
use std::time::Duration;

use redgiant_base::{Instant, Peer, Transmit};

use crate::impair::{Impairment, ImpairmentConfig, ImpairmentStats};
use crate::schedule::Schedule;
use crate::{Capabilities, Link, Received};

/// One datagram as the network delivered it (kept by [`SimNet::enable_trace`]).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TraceEntry {
    /// Delivery time.
    pub at: Instant,
    /// Sender.
    pub from: Peer,
    /// Receiver.
    pub to: Peer,
    /// The bytes delivered (after any corruption).
    pub bytes: Vec<u8>,
}

/// A deterministic virtual-time network.
///
/// Nodes are any [`Peer`]s (usually [`Peer::Mem`]); there is nothing to register.
/// Call [`send`](Self::send) as nodes transmit, and [`deliver_due`](Self::deliver_due)
/// when virtual time reaches [`next_delivery`](Self::next_delivery).
#[derive(Debug)]
pub struct SimNet {
    directions: Directions,
    queue: Schedule<Queued>,
    scratch: Vec<(Instant, Vec<u8>)>,
    trace_hash: u64,
    trace: Option<Vec<TraceEntry>>,
    sent: u64,
    delivered: u64,
}

impl SimNet {
    /// A network where every direction is impaired by `config`.
    pub fn new(config: ImpairmentConfig, seed: u64) -> Self {
        SimNet {
            directions: Directions::new(config, seed),
            queue: Schedule::default(),
            scratch: Vec::new(),
            trace_hash: FNV_OFFSET,
            trace: None,
            sent: 0,
            delivered: 0,
        }
    }

    /// Impairs the direction `from → to` by `config` instead (restarting its model).
    pub fn set_direction(&mut self, from: Peer, to: Peer, config: ImpairmentConfig) {
        self.directions.set(from, to, config);
    }

    /// Sends everything `from` transmits, whoever it is for, through one impairment
    /// `config` (one queue, one rate limit, one loss model): a shared bottleneck, as
    /// pullers of one exposer behind the same uplink see it. Replaces the
    /// per-direction impairments from `from`.
    pub fn set_bottleneck(&mut self, from: Peer, config: ImpairmentConfig) {
        self.directions.set_egress(from, config);
    }

    /// Keeps every delivery in [`trace`](Self::trace) from now on.
    pub fn enable_trace(&mut self) {
        self.trace.get_or_insert_with(Vec::new);
    }

    /// Deliveries so far, if [`enable_trace`](Self::enable_trace) was called.
    pub fn trace(&self) -> Option<&[TraceEntry]> {
        self.trace.as_deref()
    }

    /// A hash of every delivery so far (time, sender, receiver, bytes), in order.
    pub fn trace_hash(&self) -> u64 {
        self.trace_hash
    }

    /// Sends `datagram` from `from` to `to` at `now`, scheduling its deliveries.
    pub fn send(&mut self, now: Instant, from: Peer, to: Peer, datagram: &[u8]) {
        self.sent += 1;
        self.scratch.clear();
        self.directions
            .get(from, to)
            .process(now, datagram, &mut self.scratch);
        for (at, bytes) in self.scratch.drain(..) {
            self.queue.push(at, Queued { from, to, bytes });
        }
    }

    /// When the next datagram is due, if any is in flight.
    pub fn next_delivery(&self) -> Option<Instant> {
        self.queue.next_at()
    }

    /// Datagrams in flight.
    pub fn in_flight(&self) -> usize {
        self.queue.len()
    }

    /// Appends `(to, from, bytes)` for every datagram due at or before `now`, by
    /// delivery time and then send order. Returns how many were appended.
    pub fn deliver_due(&mut self, now: Instant, out: &mut Vec<(Peer, Peer, Vec<u8>)>) -> usize {
        let mut n = 0;
        while let Some((at, q)) = self.queue.pop_due(now) {
            self.trace_hash = fnv_delivery(self.trace_hash, at, &q.from, &q.to, &q.bytes);
            if let Some(trace) = &mut self.trace {
                trace.push(TraceEntry {
                    at,
                    from: q.from,
                    to: q.to,
                    bytes: q.bytes.clone(),
                });
            }
            out.push((q.to, q.from, q.bytes));
            n += 1;
        }
        self.delivered += n as u64;
        n
    }

    /// Datagrams handed to [`send`](Self::send) so far.
    pub fn sent(&self) -> u64 {
        self.sent
    }

    /// Datagrams delivered so far (duplicates count twice).
    pub fn delivered(&self) -> u64 {
        self.delivered
    }

    /// The impairment counters of one direction (of `from`'s bottleneck, if it has one).
    pub fn direction_stats(&self, from: Peer, to: Peer) -> ImpairmentStats {
        if let Some(e) = self.directions.egress.get(&from) {
            return e.stats();
        }
        self.directions
            .links
            .get(&(from, to))
            .map(Impairment::stats)
            .unwrap_or_default()
    }

    /// The impairment counters summed over all directions.
    pub fn impairment_stats(&self) -> ImpairmentStats {
        self.directions.total()
    }
}

/// Default bound on the bytes queued towards one [`MemLink`] (like a socket's receive buffer).
pub const DEFAULT_RECV_QUEUE_BYTES: usize = 16 << 20;

/// Counters of one [`MemLink`] endpoint.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct MemLinkStats {
    /// Datagrams sent.
    pub sent: u64,
    /// Bytes sent.
    pub bytes_sent: u64,
    /// Datagrams received.
    pub received: u64,
    /// Bytes received.
    pub bytes_received: u64,
    /// Datagrams to this endpoint dropped because its receive queue was full.
    pub queue_dropped: u64,
    /// Datagrams to this endpoint dropped because they did not fit the receive buffer.
    pub truncated: u64,
}

/// A real-time in-memory link endpoint: node `Peer::Mem(id)` of a hub.
///
/// Deliveries are scheduled against [`std::time::Instant`] (virtual microseconds
/// since the hub was made), so delay, jitter and rate limits are felt in real
/// time. [`recv`](Link::recv) blocks on a condition variable; no thread is spawned.
#[derive(Debug)]
pub struct MemLink {
    id: u32,
    hub: Arc<Hub>,
}

impl MemLink {
    /// Two connected endpoints, `Peer::Mem(0)` and `Peer::Mem(1)`, with both
    /// directions impaired by `config`.
    pub fn pair(config: ImpairmentConfig, seed: u64) -> (MemLink, MemLink) {
        let mut nodes = Self::hub(2, config, seed).into_iter();
        match (nodes.next(), nodes.next()) {
            (Some(a), Some(b)) => (a, b),
            _ => unreachable!("a hub of two has two nodes"),
        }
    }

    /// `nodes` endpoints `Peer::Mem(0..nodes)`, each able to reach every other,
    /// with every direction impaired by `config`.
    pub fn hub(nodes: u32, config: ImpairmentConfig, seed: u64) -> Vec<MemLink> {
        let hub = Arc::new(Hub {
            epoch: std::time::Instant::now(),
            state: Mutex::new(HubState {
                directions: Directions::new(config, seed),
                nodes: (0..nodes).map(|_| NodeState::default()).collect(),
                scratch: Vec::new(),
                recv_queue_limit: DEFAULT_RECV_QUEUE_BYTES,
            }),
            ready: (0..nodes).map(|_| Condvar::new()).collect(),
        });
        (0..nodes)
            .map(|id| MemLink {
                id,
                hub: hub.clone(),
            })
            .collect()
    }

    /// Impairs the direction from this endpoint to `to` by `config` instead.
    pub fn set_direction(&self, to: Peer, config: ImpairmentConfig) {
        self.hub
            .lock()
            .directions
            .set(self.local_peer(), to, config);
    }

    /// Bounds the bytes queued towards each endpoint of the hub (default
    /// [`DEFAULT_RECV_QUEUE_BYTES`]); datagrams beyond it are dropped.
    pub fn set_recv_queue_limit(&self, bytes: usize) {
        self.hub.lock().recv_queue_limit = bytes;
    }

    /// This endpoint's counters.
    pub fn stats(&self) -> MemLinkStats {
        self.hub.lock().nodes[self.id as usize].stats
    }

    /// Impairment counters of the directions leaving this endpoint, summed.
    pub fn impairment_stats(&self) -> ImpairmentStats {
        let me = self.local_peer();
        let state = self.hub.lock();
        state
            .directions
            .links
            .iter()
            .filter(|((from, _), _)| *from == me)
            .fold(ImpairmentStats::default(), |acc, (_, imp)| {
                add_stats(acc, imp.stats())
            })
    }

    fn node_index(&self, peer: Peer) -> io::Result<usize> {
        match peer {
            Peer::Mem(id) if (id as usize) < self.hub.ready.len() => Ok(id as usize),
            other => Err(io::Error::new(
                io::ErrorKind::InvalidInput,
                format!("{other:?} is not a node of this in-memory hub"),
            )),
        }
    }
}

impl Link for MemLink {
    fn capabilities(&self) -> Capabilities {
        Capabilities {
            mtu: 65535,
            max_segments: 64,
            max_batch_bytes: usize::MAX,
        }
    }

    fn local_peer(&self) -> Peer {
        Peer::Mem(self.id)
    }

    fn send(&mut self, transmit: &Transmit, buf: &[u8]) -> io::Result<()> {
        check_transmit(transmit, buf)?;
        let to = self.node_index(transmit.destination)?;
        let from = self.local_peer();
        let now = self.hub.now();
        let mut state = self.hub.lock();
        let state = &mut *state;
        let mut queued = false;
        for datagram in transmit.datagrams(buf) {
            state.nodes[self.id as usize].stats.sent += 1;
            state.nodes[self.id as usize].stats.bytes_sent += datagram.len() as u64;
            state.scratch.clear();
            state.directions.get(from, transmit.destination).process(
                now,
                datagram,
                &mut state.scratch,
            );
            for (at, bytes) in state.scratch.drain(..) {
                let node = &mut state.nodes[to];
                if node.queued_bytes + bytes.len() > state.recv_queue_limit {
                    node.stats.queue_dropped += 1;
                    continue;
                }
                node.queued_bytes += bytes.len();
                node.queue.push(
                    at,
                    Queued {
                        from,
                        to: transmit.destination,
                        bytes,
                    },
                );
                queued = true;
            }
        }
        if queued {
            self.hub.ready[to].notify_one();
        }
        Ok(())
    }

    fn recv(
        &mut self,
        buf: &mut [u8],
        out: &mut Vec<Received>,
        timeout: Option<Duration>,
    ) -> io::Result<usize> {
        let deadline = timeout.map(|t| std::time::Instant::now() + t);
        let me = self.id as usize;
        let mut state = self.hub.lock();
        loop {
            let now = self.hub.now();
            let node = &mut state.nodes[me];
            let mut n = 0;
            let mut offset = 0;
            while let Some(len) = node.queue.peek_due(now).map(|q| q.bytes.len()) {
                if offset + len > buf.len() && n > 0 {
                    break;
                }
                let Some((_, q)) = node.queue.pop_due(now) else {
                    break;
                };
                node.queued_bytes -= len;
                if len > buf.len() {
                    node.stats.truncated += 1;
                    continue;
                }
                buf[offset..offset + len].copy_from_slice(&q.bytes);
                out.push(Received {
                    from: q.from,
                    offset,
                    len,
                });
                offset += len;
                n += 1;
                node.stats.received += 1;
                node.stats.bytes_received += len as u64;
            }
            if n > 0 {
                return Ok(n);
            }

            // Nothing due: sleep until the next delivery, the deadline, or a send.
            let wall = std::time::Instant::now();
            let next_due = node
                .queue
                .next_at()
                .map(|at| self.hub.epoch + Duration::from_micros(at.total_micros()));
            let wake = match (next_due, deadline) {
                (Some(a), Some(b)) => Some(a.min(b)),
                (a, b) => a.or(b),
            };
            if deadline.is_some_and(|d| d <= wall) {
                return Ok(0);
            }
            state = match wake {
                None => self.hub.ready[me]
                    .wait(state)
                    .unwrap_or_else(|e| e.into_inner()),
                Some(wake) => {
                    let wait = wake.saturating_duration_since(wall);
                    self.hub.ready[me]
                        .wait_timeout(state, wait)
                        .unwrap_or_else(|e| e.into_inner())
                        .0
                }
            };
        }
    }
}

/// Rejects a transmit its buffer cannot hold.
pub(crate) fn check_transmit(transmit: &Transmit, buf: &[u8]) -> io::Result<()> {
    if transmit.size > buf.len() {
        return Err(io::Error::new(
            io::ErrorKind::InvalidInput,
            "transmit larger than its buffer",
        ));
    }
    if transmit.segment_size == Some(0) {
        return Err(io::Error::new(
            io::ErrorKind::InvalidInput,
            "zero segment size",
        ));
    }
    Ok(())
}

#[derive(Debug)]
struct Hub {
    epoch: std::time::Instant,
    state: Mutex<HubState>,
    /// One per node: signalled when something is queued towards it.
    ready: Vec<Condvar>,
}

impl Hub {
    fn lock(&self) -> MutexGuard<'_, HubState> {
        // A panic elsewhere leaves queues consistent enough to keep going.
        self.state.lock().unwrap_or_else(|e| e.into_inner())
    }

    fn now(&self) -> Instant {
        Instant::from_micros(self.epoch.elapsed().as_micros().min(u64::MAX as u128) as u64)
    }
}

#[derive(Debug)]
struct HubState {
    directions: Directions,
    nodes: Vec<NodeState>,
    scratch: Vec<(Instant, Vec<u8>)>,
    recv_queue_limit: usize,
}

#[derive(Debug, Default)]
struct NodeState {
    queue: Schedule<Queued>,
    queued_bytes: usize,
    stats: MemLinkStats,
}

/// A datagram in flight.
#[derive(Debug)]
struct Queued {
    from: Peer,
    to: Peer,
    bytes: Vec<u8>,
}

/// Per-direction impairments, made on first use.
#[derive(Debug)]
struct Directions {
    default: ImpairmentConfig,
    seed: u64,
    links: HashMap<(Peer, Peer), Impairment>,
    /// Shared bottlenecks: everything a node sends goes through its one impairment.
    egress: HashMap<Peer, Impairment>,
}

impl Directions {
    fn new(default: ImpairmentConfig, seed: u64) -> Self {
        Directions {
            default,
            seed,
            links: HashMap::new(),
            egress: HashMap::new(),
        }
    }

    fn set_egress(&mut self, from: Peer, config: ImpairmentConfig) {
        let seed = direction_seed(self.seed, &from, &from);
        self.egress.insert(from, Impairment::new(config, seed));
    }

    fn set(&mut self, from: Peer, to: Peer, config: ImpairmentConfig) {
        let seed = direction_seed(self.seed, &from, &to);
        self.links.insert((from, to), Impairment::new(config, seed));
    }

    fn get(&mut self, from: Peer, to: Peer) -> &mut Impairment {
        if let Some(e) = self.egress.get_mut(&from) {
            return e;
        }
        let (default, seed) = (&self.default, self.seed);
        self.links
            .entry((from, to))
            .or_insert_with(|| Impairment::new(default.clone(), direction_seed(seed, &from, &to)))
    }

    fn total(&self) -> ImpairmentStats {
        self.links
            .values()
            .chain(self.egress.values())
            .fold(ImpairmentStats::default(), |acc, imp| {
                add_stats(acc, imp.stats())
            })
    }
}

fn add_stats(a: ImpairmentStats, b: ImpairmentStats) -> ImpairmentStats {
    ImpairmentStats {
        processed: a.processed + b.processed,
        dropped: a.dropped + b.dropped,
        duplicated: a.duplicated + b.duplicated,
        corrupted: a.corrupted + b.corrupted,
        reordered: a.reordered + b.reordered,
        rate_dropped: a.rate_dropped + b.rate_dropped,
    }
}

const FNV_OFFSET: u64 = 0xcbf2_9ce4_8422_2325;
const FNV_PRIME: u64 = 0x0000_0100_0000_01b3;

fn fnv(mut h: u64, bytes: &[u8]) -> u64 {
    for &b in bytes {
        h = (h ^ b as u64).wrapping_mul(FNV_PRIME);
    }
    h
}

fn fnv_delivery(h: u64, at: Instant, from: &Peer, to: &Peer, bytes: &[u8]) -> u64 {
    let mut head = Vec::with_capacity(64);
    head.extend_from_slice(&at.total_micros().to_le_bytes());
    from.key_bytes(&mut head);
    to.key_bytes(&mut head);
    head.extend_from_slice(&(bytes.len() as u64).to_le_bytes());
    fnv(fnv(h, &head), bytes)
}

/// A direction's seed: the network seed mixed with both addresses (SplitMix64 finaliser).
fn direction_seed(seed: u64, from: &Peer, to: &Peer) -> u64 {
    let mut key = Vec::with_capacity(40);
    from.key_bytes(&mut key);
    key.push(0xff);
    to.key_bytes(&mut key);
    let mut z = seed ^ fnv(FNV_OFFSET, &key);
    z = z.wrapping_add(0x9e37_79b9_7f4a_7c15);
    z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
    z ^ (z >> 31)
}

#[cfg(test)]
mod tests {
    use std::thread;

    use super::*;

    const A: Peer = Peer::Mem(0);
    const B: Peer = Peer::Mem(1);
    const C: Peer = Peer::Mem(2);

    fn lossy() -> ImpairmentConfig {
        ImpairmentConfig::default()
            .with_loss(0.1)
            .with_delay(Duration::from_millis(10))
            .with_jitter(Duration::from_millis(5))
            .with_reorder(0.05)
            .with_duplicate(0.02)
            .with_corrupt(0.02)
            .with_rate_limit(10_000_000)
    }

    /// A ping-pong-ish scenario: A and C send to B every 100 µs; B echoes.
    fn scenario(seed: u64) -> (u64, Vec<TraceEntry>) {
        let mut net = SimNet::new(lossy(), seed);
        net.enable_trace();
        let mut out = Vec::new();
        for i in 0..2_000u32 {
            let now = Instant::from_micros(i as u64 * 100);
            net.send(now, A, B, &i.to_be_bytes());
            net.send(now, C, B, &[i as u8; 300]);
            out.clear();
            net.deliver_due(now, &mut out);
            for (to, from, bytes) in out.drain(..) {
                net.send(now, to, from, &bytes);
            }
        }
        while let Some(at) = net.next_delivery() {
            net.deliver_due(at, &mut out);
        }
        (net.trace_hash(), net.trace().unwrap().to_vec())
    }

    #[test]
    fn test_simnet_determinism() {
        let (h1, t1) = scenario(1);
        let (h2, t2) = scenario(1);
        let (h3, t3) = scenario(2);
        assert!(t1.len() > 5_000);
        assert_eq!(h1, h2);
        assert_eq!(t1, t2);
        assert_ne!(h1, h3);
        assert_ne!(t1, t3);
    }

    #[test]
    fn test_simnet_order() {
        let mut net = SimNet::new(ImpairmentConfig::default(), 0);
        net.set_direction(
            A,
            B,
            ImpairmentConfig::default().with_delay(Duration::from_millis(5)),
        );
        let t0 = Instant::from_millis(1);
        net.send(t0, A, B, b"slow");
        net.send(t0, C, B, b"first");
        net.send(t0, B, A, b"second");
        net.send(t0 + Duration::from_millis(2), C, A, b"third");
        assert_eq!(net.next_delivery(), Some(t0));
        assert_eq!(net.in_flight(), 4);

        let mut out = Vec::new();
        assert_eq!(net.deliver_due(Instant::ZERO, &mut out), 0);
        assert_eq!(net.deliver_due(t0, &mut out), 2);
        assert_eq!(
            out,
            vec![(B, C, b"first".to_vec()), (A, B, b"second".to_vec())]
        );
        out.clear();
        assert_eq!(net.next_delivery(), Some(t0 + Duration::from_millis(2)));
        net.deliver_due(Instant::from_millis(100), &mut out);
        assert_eq!(
            out,
            vec![(A, C, b"third".to_vec()), (B, A, b"slow".to_vec())]
        );
        assert_eq!(net.next_delivery(), None);
        assert_eq!((net.sent(), net.delivered()), (4, 4));
    }

    #[test]
    fn a_bottleneck_is_shared_by_every_destination() {
        // 1,000 B/s out of A: ten 100-byte datagrams take a second to leave, whoever
        // they are for; without the bottleneck each direction would have its own rate.
        let slow = ImpairmentConfig::default().with_rate_limit(1_000);
        let mut shared = SimNet::new(ImpairmentConfig::default(), 0);
        shared.set_bottleneck(A, slow.clone());
        let mut apart = SimNet::new(slow, 0);
        let t0 = Instant::from_millis(1);
        for net in [&mut shared, &mut apart] {
            for i in 0..10 {
                net.send(t0, A, if i % 2 == 0 { B } else { C }, &[0; 100]);
            }
        }
        let last = |net: &mut SimNet| {
            let mut out = Vec::new();
            let mut at = t0;
            while let Some(t) = net.next_delivery() {
                net.deliver_due(t, &mut out);
                at = t;
            }
            assert_eq!(out.len(), 10);
            at.saturating_since(t0)
        };
        let (s, a) = (last(&mut shared), last(&mut apart));
        assert!(s >= Duration::from_millis(900), "shared: {s:?}");
        assert!(a <= Duration::from_millis(500), "per direction: {a:?}");
        assert_eq!(shared.direction_stats(A, B).processed, 10);
        assert_eq!(shared.impairment_stats().processed, 10);
    }

    fn recv_all(link: &mut MemLink, n: usize) -> Vec<(Peer, Vec<u8>)> {
        let mut buf = vec![0; 1 << 16];
        let mut got = Vec::new();
        while got.len() < n {
            let mut meta = Vec::new();
            let k = link
                .recv(&mut buf, &mut meta, Some(Duration::from_secs(5)))
                .unwrap();
            assert!(k > 0, "timed out after {} of {n}", got.len());
            assert_eq!(k, meta.len());
            got.extend(
                meta.iter()
                    .map(|r| (r.from, buf[r.offset..r.offset + r.len].to_vec())),
            );
        }
        got
    }

    #[test]
    fn test_memlink_both_directions() {
        let (mut a, mut b) = MemLink::pair(
            ImpairmentConfig::default().with_delay(Duration::from_millis(2)),
            1,
        );
        assert_eq!((a.local_peer(), b.local_peer()), (A, B));
        assert_eq!(
            a.capabilities(),
            Capabilities {
                mtu: 65535,
                max_segments: 64,
                max_batch_bytes: usize::MAX,
            }
        );
        let t = thread::spawn(move || {
            let got = recv_all(&mut b, 1);
            assert_eq!(got, vec![(A, b"ping".to_vec())]);
            b.send(
                &Transmit {
                    destination: A,
                    size: 4,
                    segment_size: None,
                },
                b"pong",
            )
            .unwrap();
            b
        });
        a.send(
            &Transmit {
                destination: B,
                size: 4,
                segment_size: None,
            },
            b"ping",
        )
        .unwrap();
        assert_eq!(recv_all(&mut a, 1), vec![(B, b"pong".to_vec())]);
        let b = t.join().unwrap();
        assert_eq!(a.stats().sent, 1);
        assert_eq!(b.stats().received, 1);

        let err = a
            .send(
                &Transmit {
                    destination: C,
                    size: 1,
                    segment_size: None,
                },
                b"x",
            )
            .unwrap_err();
        assert_eq!(err.kind(), io::ErrorKind::InvalidInput);
    }

    #[test]
    fn test_memlink_timeout() {
        let (mut a, _b) = MemLink::pair(ImpairmentConfig::default(), 1);
        let mut buf = [0; 2048];
        let mut out = Vec::new();
        let start = std::time::Instant::now();
        assert_eq!(a.recv(&mut buf, &mut out, Some(Duration::ZERO)).unwrap(), 0);
        assert_eq!(
            a.recv(&mut buf, &mut out, Some(Duration::from_millis(20)))
                .unwrap(),
            0
        );
        assert!(out.is_empty());
        // Generous: only catches a recv that ignores its timeout.
        assert!(start.elapsed() < Duration::from_secs(5));
    }

    #[test]
    fn test_memlink_batch() {
        let (mut a, mut b) = MemLink::pair(ImpairmentConfig::default(), 1);
        // 10 datagrams of 100 bytes and one of 37.
        let buf: Vec<u8> = (0..1037u32).map(|i| i as u8).collect();
        a.send(
            &Transmit {
                destination: B,
                size: buf.len(),
                segment_size: Some(100),
            },
            &buf,
        )
        .unwrap();
        let got = recv_all(&mut b, 11);
        assert_eq!(got.len(), 11);
        for (i, (from, bytes)) in got.iter().enumerate() {
            assert_eq!(*from, A);
            let want = &buf[i * 100..(i * 100 + 100).min(buf.len())];
            assert_eq!(bytes, want);
        }

        // A receive buffer that holds two datagrams at a time.
        a.send(
            &Transmit {
                destination: B,
                size: 300,
                segment_size: Some(100),
            },
            &buf,
        )
        .unwrap();
        let mut small = [0; 250];
        let mut out = Vec::new();
        assert_eq!(
            b.recv(&mut small, &mut out, Some(Duration::from_secs(1)))
                .unwrap(),
            2
        );
        assert_eq!(
            out[1],
            Received {
                from: A,
                offset: 100,
                len: 100
            }
        );
        assert_eq!(
            b.recv(&mut small, &mut out, Some(Duration::from_secs(1)))
                .unwrap(),
            1
        );
        assert_eq!(&small[..100], &buf[200..300]);

        let err = a
            .send(
                &Transmit {
                    destination: B,
                    size: 2000,
                    segment_size: None,
                },
                &buf,
            )
            .unwrap_err();
        assert_eq!(err.kind(), io::ErrorKind::InvalidInput);
    }

    #[test]
    fn test_memlink_hub() {
        let mut nodes = MemLink::hub(4, ImpairmentConfig::default(), 9);
        let mut exposer = nodes.remove(0);
        let handles: Vec<_> = nodes
            .into_iter()
            .map(|mut puller| {
                thread::spawn(move || {
                    let me = puller.local_peer();
                    let Peer::Mem(id) = me else { unreachable!() };
                    puller
                        .send(
                            &Transmit {
                                destination: A,
                                size: 1,
                                segment_size: None,
                            },
                            &[id as u8],
                        )
                        .unwrap();
                    recv_all(&mut puller, 1)
                })
            })
            .collect();
        for (from, bytes) in recv_all(&mut exposer, 3) {
            assert_eq!(from, Peer::Mem(bytes[0] as u32));
            exposer
                .send(
                    &Transmit {
                        destination: from,
                        size: 1,
                        segment_size: None,
                    },
                    &bytes,
                )
                .unwrap();
        }
        for (i, h) in handles.into_iter().enumerate() {
            assert_eq!(h.join().unwrap(), vec![(A, vec![i as u8 + 1])]);
        }
    }

    #[test]
    fn test_memlink_impaired() {
        let (mut a, mut b) = MemLink::pair(ImpairmentConfig::default().with_loss(0.5), 3);
        a.set_recv_queue_limit(1 << 20);
        let buf = [7u8; 64 * 10];
        for _ in 0..10 {
            a.send(
                &Transmit {
                    destination: B,
                    size: buf.len(),
                    segment_size: Some(10),
                },
                &buf,
            )
            .unwrap();
        }
        let dropped = a.impairment_stats().dropped as usize;
        assert!((200..440).contains(&dropped), "{dropped}");
        assert_eq!(recv_all(&mut b, 640 - dropped).len(), 640 - dropped);
        let mut out = Vec::new();
        assert_eq!(
            b.recv(&mut [0; 100], &mut out, Some(Duration::ZERO))
                .unwrap(),
            0
        );
    }
}
