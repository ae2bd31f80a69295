//! `multi`: a [`MultiPuller`] pulling one exposure from two or three exposers at
//! once, each behind a network the input controls, after the first source's valid
//! Manifest.
//!
//! Every source is a real [`Exposer`] of the same fixture exposure. What each sends
//! lands in its own queue; the input delivers, drops, duplicates, mutates or
//! reorders it, hands one source's datagram to the puller as another's, silences a
//! source, injects real chunks, chunks with the wrong proof, and chunks a key
//! holder forged (sealed under the key, other bytes) from any source, whether asked
//! for or not. Proofs may be checked by the driver (offloaded; its verdicts at once,
//! or a turn late as from a checking thread), and an earlier run's output may be
//! resumed, some of it spoiled on disk.
//!
//! Invariants (the `puller` target's checker): nothing panics; a chunk handed out
//! as verified, and every chunk the driver's checker passes, is the real plaintext
//! at its index and offset; [`PullerEvent::Complete`] comes only once every chunk
//! was handed out or resumed and the whole equals the real plaintext; the puller
//! sends only well-formed puller packets, and only to its sources.
//!
//! [`PullerEvent::Complete`]: rgtp_proto::PullerEvent::Complete

use std::collections::VecDeque;
use std::time::Duration;

use arbitrary::{Arbitrary, Unstructured};
use redgiant_base::driver::Stepper;
use rgtp::DynSuite;
use rgtp_proto::multi::{MultiConfig, MultiPuller};
use rgtp_proto::{Exposer, ExposerConfig, Instant, Peer, PullerConfig};
use rgtp_wire::{PacketType, Repr};

use crate::fixtures::{self, Fixture};
use crate::puller::Checker;

const PULLER: Peer = Peer::Mem(2);
const MAX_OPS: usize = 256;
const MAX_QUEUE: usize = 4096;

fn peer(src: usize) -> Peer {
    Peer::Mem(10 + src as u32)
}

#[derive(Debug, Arbitrary)]
struct Setup {
    fixture: u8,
    /// Two or three sources.
    three: bool,
    want_proofs: bool,
    deferred_root: bool,
    offload_proofs: bool,
    /// Its top bit also says the checker's verdicts reach the puller a turn late, as
    /// from a thread (a bit of a field rather than a field of its own: the inputs
    /// kept in `fuzz/regressions/multi` keep their meaning).
    initial_window: u8,
    /// Chunks an earlier run left in the output (index, spoiled on disk since),
    /// resumed once the Manifest is accepted.
    earlier: Vec<(u16, bool)>,
}

#[derive(Debug, Arbitrary)]
enum Op {
    /// Puller → exposers → their queues.
    Flush,
    /// Deliver (and remove) datagram `n` of source `src`'s queue.
    Deliver { src: u8, n: u16 },
    /// Deliver every queued datagram, source by source.
    DeliverAll,
    /// Drop datagram `n` of source `src`'s queue.
    Drop { src: u8, n: u16 },
    /// Deliver a copy of a queued datagram, keeping it queued.
    Duplicate { src: u8, n: u16 },
    /// Deliver a copy of a queued datagram with one byte changed.
    Mutate { src: u8, n: u16, at: u16, xor: u8 },
    /// Deliver a datagram of `src`'s queue as if `as_src` had sent it.
    Swap { src: u8, n: u16, as_src: u8 },
    /// Source `src` says nothing more, for good.
    Silence(u8),
    /// Inject the real packet of a chunk from a source, asked for or not.
    RealChunk { src: u8, index: u16, proof: bool },
    /// Inject the real chunk packet of `index` with the proof of `other`.
    WrongProof { src: u8, index: u16, other: u16 },
    /// Inject a chunk a key holder forged.
    Forged { src: u8, index: u16, fill: u8 },
    /// Advance the clock and run the timers.
    Tick(u16),
    /// Run the exchange honestly for a while.
    Drive(u8),
}

struct Harness {
    fx: &'static Fixture,
    st: Stepper<MultiPuller<DynSuite>, Checker>,
    exposers: Vec<Exposer>,
    queues: Vec<VecDeque<Vec<u8>>>,
    silent: Vec<bool>,
    now: Instant,
}

/// See the module documentation.
pub fn multi(data: &[u8]) {
    let mut u = Unstructured::new(data);
    let Ok(setup) = Setup::arbitrary(&mut u) else {
        return;
    };
    let all = fixtures::all();
    let fx = &all[usize::from(setup.fixture) % all.len()];
    let n = if setup.three { 3 } else { 2 };
    let peers: Vec<Peer> = (0..n).map(peer).collect();
    let mut cfg = PullerConfig::new(*fx.exposure.id(), peers[0], fx.key.clone());
    cfg.want_proofs = setup.want_proofs;
    cfg.deferred_root = setup.deferred_root;
    cfg.offload_proofs = setup.offload_proofs;
    cfg.take_offered_proofs = setup.offload_proofs;
    cfg.initial_window = u32::from(setup.initial_window.max(1));
    let asked = cfg.want_proofs || (cfg.offload_proofs && cfg.take_offered_proofs);
    let now = Instant::from_millis(1_000);
    let puller = MultiPuller::new(cfg, &peers, MultiConfig::default(), DynSuite, now);
    let exposers = (0..n)
        .map(|_| {
            Exposer::new(
                fx.exposure.clone(),
                ExposerConfig {
                    token_secret: [0x77; 32],
                    ..Default::default()
                },
            )
        })
        .collect();
    let mut h = Harness {
        fx,
        st: Stepper::new(
            puller,
            Checker::new(fx, &setup.earlier)
                .with_forgeries(asked)
                .with_lagging_verdicts(setup.initial_window >= 128),
            PULLER,
        ),
        exposers,
        queues: vec![VecDeque::new(); n],
        silent: vec![false; n],
        now,
    };
    // The handshakes: each source's Manifest waits in its queue; the first source's
    // is delivered, the others' when the input says.
    h.flush();
    let manifest = h.queues[0]
        .iter()
        .position(|d| d.get(1) == Some(&(PacketType::Manifest as u8)))
        .expect("the exposer answers a Pull_Request with a Manifest");
    let m = h.queues[0].remove(manifest).expect("present");
    h.deliver(0, m);
    assert!(
        h.st.endpoint.manifest().is_some(),
        "the real Manifest was refused"
    );

    for _ in 0..MAX_OPS {
        let Ok(op) = Op::arbitrary(&mut u) else {
            break;
        };
        h.run(op);
        if h.st.endpoint.is_finished() && u.is_empty() {
            break;
        }
    }
}

impl Harness {
    fn src(&self, s: u8) -> usize {
        usize::from(s) % self.queues.len()
    }

    fn pick(&self, src: usize, n: u16) -> Option<usize> {
        let q = &self.queues[src];
        (!q.is_empty()).then(|| usize::from(n) % q.len())
    }

    fn run(&mut self, op: Op) {
        let fx = self.fx;
        let count = fx.exposure.chunk_count();
        match op {
            Op::Flush => self.flush(),
            Op::Deliver { src, n } => {
                let src = self.src(src);
                if let Some(i) = self.pick(src, n) {
                    let d = self.queues[src].remove(i).expect("in range");
                    self.deliver(src, d);
                }
            }
            Op::DeliverAll => {
                for src in 0..self.queues.len() {
                    while let Some(d) = self.queues[src].pop_front() {
                        self.deliver(src, d);
                    }
                }
            }
            Op::Drop { src, n } => {
                let src = self.src(src);
                if let Some(i) = self.pick(src, n) {
                    self.queues[src].remove(i);
                }
            }
            Op::Duplicate { src, n } => {
                let src = self.src(src);
                if let Some(i) = self.pick(src, n) {
                    let d = self.queues[src][i].clone();
                    self.deliver(src, d);
                }
            }
            Op::Mutate { src, n, at, xor } => {
                let src = self.src(src);
                if let Some(i) = self.pick(src, n) {
                    let mut d = self.queues[src][i].clone();
                    let at = usize::from(at) % d.len().max(1);
                    if let Some(b) = d.get_mut(at) {
                        *b ^= xor;
                    }
                    self.deliver(src, d);
                }
            }
            Op::Swap { src, n, as_src } => {
                let (src, as_src) = (self.src(src), self.src(as_src));
                if let Some(i) = self.pick(src, n) {
                    let d = self.queues[src].remove(i).expect("in range");
                    self.deliver(as_src, d);
                }
            }
            Op::Silence(src) => {
                let src = self.src(src);
                self.silent[src] = true;
                self.queues[src].clear();
            }
            Op::RealChunk { src, index, proof } if count > 0 => {
                let d = fx.chunk_packet(u32::from(index) % count, proof);
                self.deliver(self.src(src), d);
            }
            Op::WrongProof { src, index, other } if count > 0 => {
                let i = u32::from(index) % count;
                let o = u32::from(other) % count;
                let mut d = fx.chunk_packet(i, true);
                let proof = fx.chunk_packet(o, true);
                let depth = fx.exposure.tree().depth() * 32;
                d[25..25 + depth].copy_from_slice(&proof[25..25 + depth]);
                self.deliver(self.src(src), d);
            }
            Op::Forged { src, index, fill } if count > 0 => {
                let i = u32::from(index) % count;
                let mut wrong = fx.plain(i).to_vec();
                wrong.fill(fill);
                if wrong != fx.plain(i) {
                    let d = fx.forged_chunk_packet(i, &wrong);
                    self.deliver(self.src(src), d);
                }
            }
            Op::Tick(ms) => self.tick(Duration::from_millis(u64::from(ms))),
            Op::Drive(rounds) => {
                for _ in 0..rounds % 32 {
                    if self.st.endpoint.is_finished() {
                        break;
                    }
                    self.flush();
                    for src in 0..self.queues.len() {
                        while let Some(d) = self.queues[src].pop_front() {
                            self.deliver(src, d);
                        }
                    }
                    self.tick(Duration::from_millis(30));
                }
            }
            _ => {}
        }
    }

    fn tick(&mut self, by: Duration) {
        self.now = self.now + by;
        self.st.timeout(self.now);
    }

    /// Puller transmits go to their exposers; the answers join each source's queue.
    fn flush(&mut self) {
        let (now, fx) = (self.now, self.fx);
        let exposers = &mut self.exposers;
        let mut sent = 0;
        self.st.transmit(now, &mut |to, d| {
            sent += 1;
            assert!(sent < 100_000, "poll_transmit never returns None");
            let src = (0..exposers.len())
                .find(|&s| peer(s) == to)
                .unwrap_or_else(|| panic!("puller sent to a stranger, {to:?}"));
            let r = Repr::parse(d, 65_507).expect("the puller emits well-formed packets");
            assert_eq!(r.exposure_id(), fx.exposure.id());
            assert!(
                matches!(
                    r.packet_type(),
                    PacketType::PullRequest
                        | PacketType::Nak
                        | PacketType::RateReport
                        | PacketType::Keepalive
                ),
                "the puller sent a {:?}",
                r.packet_type()
            );
            exposers[src].handle_datagram(now, PULLER, d);
        });
        let mut out = Vec::new();
        for src in 0..self.exposers.len() {
            while let Some(t) = self.exposers[src].poll_transmit(self.now, &mut out) {
                for d in t.datagrams(&out) {
                    if !self.silent[src] && self.queues[src].len() < MAX_QUEUE {
                        self.queues[src].push_back(d.to_vec());
                    }
                }
            }
        }
        self.st.events();
    }

    fn deliver(&mut self, src: usize, mut d: Vec<u8>) {
        self.st.input(self.now, peer(src), &mut d);
        self.st.events();
    }
}
