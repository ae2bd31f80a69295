//! `repair`: the search for wrong chunks after a root mismatch (spec §8.12), fed a
//! hostile sequence.
//!
//! A puller without proofs first receives every chunk, some of them key-holder
//! forgeries (sealed under the right key, wrong plaintext), so that its root does
//! not match (in deferred-root mode the harness hands it the output's leaves, as a
//! driver does). Then the input controls the network during the search: the real
//! exposer's answers delivered, dropped or stripped of their proofs, forgeries with
//! and without proofs, real chunks with other chunks' proofs, arbitrary datagrams,
//! and time.
//!
//! Invariants: nothing panics; `Complete` comes only when the output, as rewritten
//! by every chunk handed out, equals the real plaintext; the search never asks for
//! more than `PROBE_TRIES × max_repair_probes` chunks; nothing follows the end.

use std::collections::VecDeque;
use std::time::Duration;

use arbitrary::{Arbitrary, Unstructured};
use rgtp::DynSuite;
use rgtp_proto::{
    Exposer, ExposerConfig, Instant, MerkleScheme, Peer, Puller, PullerConfig, PullerEvent,
};
use rgtp_wire::{ChunkData, ChunkDataWithProof, Repr};

use crate::fixtures::{self, Fixture};

const EXPOSER: Peer = Peer::Mem(1);
const PULLER: Peer = Peer::Mem(2);
const MAX_OPS: usize = 256;
const MAX_QUEUE: usize = 4096;
/// `PROBE_TRIES` of the puller's search.
const PROBE_TRIES: u64 = 6;

#[derive(Debug, Arbitrary)]
struct Setup {
    fixture: u8,
    deferred_root: bool,
    use_fec: bool,
    /// Chunk `i` is forged when bit `i % 64` is set.
    forge: u64,
    max_probes: u8,
}

#[derive(Debug, Arbitrary)]
enum Op {
    /// Puller → exposer → queue.
    Flush,
    /// Deliver (and remove) queued datagram `n`.
    Deliver(u16),
    /// Deliver every queued datagram.
    DeliverAll,
    /// Drop queued datagram `n`.
    Drop(u16),
    /// Deliver queued datagram `n` without its proof.
    StripProof(u16),
    /// A key holder's chunk, without a proof.
    Forged { index: u16, xor: u8 },
    /// A key holder's chunk carrying the real proof of its index.
    ForgedWithProof { index: u16, xor: u8 },
    /// The real chunk, with or without its proof.
    RealChunk { index: u16, proof: bool },
    /// The real chunk with another chunk's proof.
    WrongProof { index: u16, other: u16 },
    /// An arbitrary datagram.
    Raw(Vec<u8>),
    /// Advance the clock and run the timers.
    Tick(u16),
    /// Run the exchange honestly for a while.
    Drive(u8),
}

struct Harness {
    fx: &'static Fixture,
    puller: Puller<DynSuite>,
    exposer: Exposer,
    now: Instant,
    queue: VecDeque<Vec<u8>>,
    out: Vec<u8>,
    complete: bool,
    ended: bool,
    max_probes: u32,
}

/// See the module documentation.
pub fn repair(data: &[u8]) {
    let mut u = Unstructured::new(data);
    let Ok(setup) = Setup::arbitrary(&mut u) else {
        return;
    };
    let all = fixtures::all();
    let fx = &all[usize::from(setup.fixture) % all.len()];
    let count = fx.exposure.chunk_count();
    if count == 0 {
        return;
    }
    let mut cfg = PullerConfig::new(*fx.exposure.id(), EXPOSER, fx.key.clone());
    cfg.deferred_root = setup.deferred_root;
    cfg.use_fec = setup.use_fec;
    cfg.max_repair_probes = u32::from(setup.max_probes.max(1));
    let now = Instant::from_millis(1_000);
    let mut h = Harness {
        fx,
        puller: Puller::new(cfg, DynSuite, now),
        exposer: Exposer::new(
            fx.exposure.clone(),
            ExposerConfig {
                token_secret: [0x77; 32],
                ..Default::default()
            },
        ),
        now,
        queue: VecDeque::new(),
        out: vec![0; fx.data.len()],
        complete: false,
        ended: false,
        max_probes: u32::from(setup.max_probes.max(1)),
    };
    h.flush();
    let Some(at) = h
        .queue
        .iter()
        .position(|d| matches!(Repr::parse(d, 65_507), Ok(Repr::Manifest(_))))
    else {
        return;
    };
    let m = h.queue.remove(at).expect("present");
    h.queue.clear();
    h.deliver(m);
    // Every chunk, some forged: the root will not match if any is.
    for i in 0..count {
        let d = if setup.forge & (1 << (i % 64)) != 0 {
            forged(fx, i, 0xa5)
        } else {
            fx.chunk_packet(i, false)
        };
        h.deliver(d);
    }
    for _ in 0..MAX_OPS {
        let Ok(op) = Op::arbitrary(&mut u) else {
            break;
        };
        h.run(op);
        h.check_bound();
    }
}

fn forged(fx: &Fixture, i: u32, xor: u8) -> Vec<u8> {
    let plain: Vec<u8> = fx.plain(i).iter().map(|b| b ^ xor.max(1)).collect();
    fx.forged_chunk_packet(i, &plain)
}

impl Harness {
    fn pick(&self, n: u16) -> Option<usize> {
        (!self.queue.is_empty()).then(|| usize::from(n) % self.queue.len())
    }

    fn index(&self, i: u16) -> u32 {
        u32::from(i) % self.fx.exposure.chunk_count()
    }

    fn run(&mut self, op: Op) {
        let fx = self.fx;
        match op {
            Op::Flush => self.flush(),
            Op::Deliver(n) => {
                if let Some(i) = self.pick(n) {
                    let d = self.queue.remove(i).expect("in range");
                    self.deliver(d);
                }
            }
            Op::DeliverAll => {
                while let Some(d) = self.queue.pop_front() {
                    self.deliver(d);
                }
            }
            Op::Drop(n) => {
                if let Some(i) = self.pick(n) {
                    self.queue.remove(i);
                }
            }
            Op::StripProof(n) => {
                if let Some(i) = self.pick(n) {
                    let d = self.queue.remove(i).expect("in range");
                    let d = match Repr::parse(&d, 65_507) {
                        Ok(Repr::ChunkDataWithProof(c)) => {
                            fixtures::emit(&Repr::ChunkData(ChunkData {
                                exposure_id: c.exposure_id,
                                chunk_index: c.chunk_index,
                                payload: c.payload,
                            }))
                        }
                        _ => d,
                    };
                    self.deliver(d);
                }
            }
            Op::Forged { index, xor } => {
                let d = forged(fx, self.index(index), xor);
                self.deliver(d);
            }
            Op::ForgedWithProof { index, xor } => {
                let i = self.index(index);
                let f = forged(fx, i, xor);
                let real = fx.chunk_packet(i, true);
                let (Ok(Repr::ChunkData(c)), Ok(Repr::ChunkDataWithProof(r))) =
                    (Repr::parse(&f, 65_507), Repr::parse(&real, 65_507))
                else {
                    return;
                };
                let d = fixtures::emit(&Repr::ChunkDataWithProof(ChunkDataWithProof {
                    exposure_id: c.exposure_id,
                    chunk_index: i,
                    proof: r.proof,
                    payload: c.payload,
                }));
                self.deliver(d);
            }
            Op::RealChunk { index, proof } => {
                let d = fx.chunk_packet(self.index(index), proof);
                self.deliver(d);
            }
            Op::WrongProof { index, other } => {
                let (i, o) = (self.index(index), self.index(other));
                let mut d = fx.chunk_packet(i, true);
                let p = fx.chunk_packet(o, true);
                let depth = fx.exposure.tree().depth() * 32;
                d[25..25 + depth].copy_from_slice(&p[25..25 + depth]);
                self.deliver(d);
            }
            Op::Raw(d) => self.deliver(d),
            Op::Tick(ms) => self.tick(Duration::from_millis(u64::from(ms))),
            Op::Drive(rounds) => {
                for _ in 0..rounds % 32 {
                    if self.puller.is_finished() {
                        break;
                    }
                    self.flush();
                    while let Some(d) = self.queue.pop_front() {
                        self.deliver(d);
                    }
                    self.tick(Duration::from_millis(30));
                }
            }
        }
    }

    fn check_bound(&self) {
        let fetched = self.puller.stats().repair_fetches;
        assert!(
            fetched <= PROBE_TRIES * u64::from(self.max_probes),
            "the search asked for {fetched} chunks, past its bound"
        );
    }

    fn tick(&mut self, by: Duration) {
        self.now = self.now + by;
        self.puller.handle_timeout(self.now);
        self.events();
    }

    fn flush(&mut self) {
        let mut buf = Vec::new();
        let mut sent = 0;
        while self.puller.poll_transmit(self.now, &mut buf).is_some() {
            sent += 1;
            assert!(sent < 100_000, "poll_transmit never returns None");
            self.exposer.handle_datagram(self.now, PULLER, &buf);
        }
        let mut out = Vec::new();
        while let Some(t) = self.exposer.poll_transmit(self.now, &mut out) {
            for d in t.datagrams(&out) {
                if self.queue.len() < MAX_QUEUE {
                    self.queue.push_back(d.to_vec());
                }
            }
        }
        self.events();
    }

    fn deliver(&mut self, mut d: Vec<u8>) {
        if let Some(c) = self.puller.handle_datagram(self.now, EXPOSER, &mut d) {
            assert!(!self.ended, "chunk {} handed out after the end", c.index);
            let at = c.offset as usize;
            self.out[at..at + c.data.len()].copy_from_slice(c.data);
        }
        self.events();
    }

    fn events(&mut self) {
        while let Some(e) = self.puller.poll_event() {
            assert!(!self.ended, "{e:?} after the end");
            match e {
                PullerEvent::Manifest(_) => {}
                PullerEvent::Recovered { offset, data, .. } => {
                    let at = offset as usize;
                    self.out[at..at + data.len()].copy_from_slice(&data);
                }
                PullerEvent::VerifyRoot => {
                    let hash = self.puller.hash_scheme().expect("hash after Manifest");
                    let cs = self.fx.shape.chunk_size as usize;
                    let leaves = self.out.chunks(cs).map(|c| hash.leaf(c)).collect();
                    self.puller.handle_leaves(leaves);
                }
                PullerEvent::Complete => {
                    assert!(self.out == self.fx.data, "Complete, but the output differs");
                    self.complete = true;
                    self.ended = true;
                }
                PullerEvent::Failed(_) => self.ended = true,
                PullerEvent::Kept { first, .. } => {
                    panic!("run {first}: kept chunks, and no resume")
                }
            }
        }
    }
}
