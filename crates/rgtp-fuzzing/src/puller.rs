//! `puller`: a [`Puller`] behind an adversarial network, after a valid Manifest.
//!
//! The puller talks to a real [`Exposer`] serving a real fixture exposure, sealed
//! with a real AEAD. Every datagram the exposer sends lands in a queue the input
//! controls: packets are delivered, dropped, duplicated, reordered, bit-flipped or
//! sent from a foreign peer, and arbitrary datagrams and forged packets are injected.
//!
//! Invariants: nothing panics; every chunk handed out (as [`Delivered`] or
//! [`PullerEvent::Recovered`]) equals the real plaintext at its index and offset
//! (offloading, the harness checks proofs as a driver does, and only the real
//! plaintext passes);
//! [`PullerEvent::Complete`] comes only once every chunk was handed out (or
//! resumed: the input may leave chunks of an earlier run in the output, some
//! spoiled, which the puller takes before the first operation) and the whole
//! equals the real plaintext; the puller sends only well-formed puller packets
//! to the exposer.
//!
//! [`Delivered`]: rgtp_proto::puller::Delivered

use std::collections::VecDeque;
use std::time::Duration;

use arbitrary::{Arbitrary, Unstructured};
use redgiant_base::driver::{Application, Stepper};
use rgtp::DynSuite;
use rgtp_proto::merkle::root_of;
use rgtp_proto::multi::Pull;
use rgtp_proto::puller::{kept_chunks, Delivered, RunChecker, Verdict};
use rgtp_proto::{
    Exposer, ExposerConfig, Instant, MerkleScheme, Peer, Puller, PullerConfig, PullerEvent,
};
use rgtp_wire::{PacketType, Repr};

use crate::fixtures::{self, Fixture};

const EXPOSER: Peer = Peer::Mem(1);
const PULLER: Peer = Peer::Mem(2);
const MAX_OPS: usize = 256;
const MAX_QUEUE: usize = 4096;

#[derive(Debug, Arbitrary)]
struct Setup {
    fixture: u8,
    want_proofs: bool,
    use_fec: bool,
    deferred_root: bool,
    pin_suite: bool,
    initial_window: u8,
    max_entries_per_nak: u8,
    offload_proofs: bool,
    /// Chunks an earlier run left in the output (index, spoiled on disk since),
    /// resumed once the Manifest is accepted.
    earlier: Vec<(u16, bool)>,
}

#[derive(Debug, Arbitrary)]
enum Op {
    /// Puller → exposer → queue.
    Flush,
    /// Deliver (and remove) queued datagram `n`.
    Deliver(u16),
    /// Deliver every queued datagram, in order.
    DeliverAll,
    /// Drop queued datagram `n`.
    Drop(u16),
    /// Deliver a copy of queued datagram `n`, keeping it queued.
    Duplicate(u16),
    /// Deliver a copy of queued datagram `n` with one byte changed.
    Mutate { n: u16, at: u16, xor: u8 },
    /// Deliver a copy of queued datagram `n` with its tail cut off.
    Truncate { n: u16, keep: u16 },
    /// Deliver a copy of queued datagram `n` from a foreign peer.
    Foreign(u16),
    /// Inject the real packet of a chunk.
    RealChunk { index: u16, proof: bool },
    /// Inject a real parity packet.
    RealParity { block: u16, p: u8 },
    /// Inject the real chunk packet of `index` with the proof of `other`.
    WrongProof { index: u16, other: u16 },
    /// Inject a real chunk's payload under another index.
    Reindex { index: u16, as_index: u16 },
    /// Inject the real Manifest again (a refresh), with an optional token.
    Manifest(Option<[u8; 16]>),
    /// Inject an arbitrary datagram.
    Raw(Vec<u8>),
    /// Inject an arbitrary well-formed packet for this exposure.
    Forged(Vec<u8>),
    /// Advance the clock and run the timers.
    Tick(u16),
    /// A driver reporting an arbitrary root (deferred-root mode misuse).
    Root([u8; 32]),
    /// Run the exchange honestly for a while.
    Drive(u8),
}

/// The harness drives the puller through the stack's one step-wise driver;
/// this is the application side it checks every output with (the `multi` target's
/// too).
pub(crate) struct Checker {
    fx: &'static Fixture,
    out: Vec<u8>,
    handed: Vec<bool>,
    complete: bool,
    /// Key holders forge chunks: one handed out that no proof vouched for may hold
    /// other bytes (what the driver's checker passes, and the whole at Complete,
    /// must still be the real plaintext).
    forgeries: bool,
    /// The puller takes up proofs where the exposure offers them, and the Manifest
    /// taken offers them: a chunk handed out as verified had its proof checked.
    proofs_asked: bool,
    vouched: bool,
    /// Verdicts reach the puller a turn after the checker gave them, as from a
    /// driver's checking thread; meanwhile, more chunks come in.
    lag: bool,
    late: Vec<(u32, Verdict)>,
    /// Offloading: the checker a driver runs, from the Manifest on, and the chunks
    /// handed out unverified (index, plaintext, proof) it judges once a turn.
    proofs: Option<RunChecker>,
    unverified: Vec<(u32, Vec<u8>, Option<Vec<u8>>)>,
    /// What an earlier run left (index, spoiled), given to the puller at the Manifest.
    earlier: Vec<(u32, bool)>,
}

struct Harness {
    fx: &'static Fixture,
    st: Stepper<Puller<DynSuite>, Checker>,
    exposer: Exposer,
    now: Instant,
    queue: VecDeque<Vec<u8>>,
}

/// See the module documentation.
pub fn puller(data: &[u8]) {
    let mut u = Unstructured::new(data);
    let Ok(setup) = Setup::arbitrary(&mut u) else {
        return;
    };
    let all = fixtures::all();
    let fx = &all[usize::from(setup.fixture) % all.len()];
    let mut cfg = PullerConfig::new(*fx.exposure.id(), EXPOSER, fx.key.clone());
    cfg.want_proofs = setup.want_proofs;
    cfg.use_fec = setup.use_fec;
    cfg.deferred_root = setup.deferred_root;
    cfg.offload_proofs = setup.offload_proofs;
    // An offloading puller takes up the proofs a fixture prepared with them sends
    // unasked, as `rgtp pull` does.
    cfg.take_offered_proofs = setup.offload_proofs;
    cfg.initial_window = u32::from(setup.initial_window.max(1));
    cfg.max_entries_per_nak = usize::from(setup.max_entries_per_nak.max(1));
    if setup.pin_suite {
        cfg.expected_cipher = Some(fx.shape.cipher);
        cfg.expected_hash = Some(fx.shape.hash);
    }
    let exposer = Exposer::new(
        fx.exposure.clone(),
        ExposerConfig {
            token_secret: [0x77; 32],
            ..Default::default()
        },
    );
    let checker = Checker::new(fx, &setup.earlier);
    let puller = Puller::new(cfg, DynSuite, Instant::from_millis(1_000));
    let mut h = Harness {
        fx,
        st: Stepper::new(puller, checker, PULLER),
        exposer,
        now: Instant::from_millis(1_000),
        queue: VecDeque::new(),
    };
    // The handshake: Pull_Request → exposer → the real Manifest.
    h.flush();
    let manifest = h
        .queue
        .iter()
        .position(|d| d.get(1) == Some(&(PacketType::Manifest as u8)))
        .expect("the exposer answers a Pull_Request with a Manifest");
    let m = h.queue.remove(manifest).expect("present");
    h.queue.clear();
    h.deliver(EXPOSER, m);
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
    fn pick(&self, n: u16) -> Option<usize> {
        (!self.queue.is_empty()).then(|| usize::from(n) % self.queue.len())
    }

    fn run(&mut self, op: Op) {
        let fx = self.fx;
        let count = fx.exposure.chunk_count();
        match op {
            Op::Flush => self.flush(),
            Op::Deliver(n) => {
                if let Some(i) = self.pick(n) {
                    let d = self.queue.remove(i).expect("in range");
                    self.deliver(EXPOSER, d);
                }
            }
            Op::DeliverAll => {
                while let Some(d) = self.queue.pop_front() {
                    self.deliver(EXPOSER, d);
                }
            }
            Op::Drop(n) => {
                if let Some(i) = self.pick(n) {
                    self.queue.remove(i);
                }
            }
            Op::Duplicate(n) => {
                if let Some(i) = self.pick(n) {
                    let d = self.queue[i].clone();
                    self.deliver(EXPOSER, d);
                }
            }
            Op::Mutate { n, at, xor } => {
                if let Some(i) = self.pick(n) {
                    let mut d = self.queue[i].clone();
                    let at = usize::from(at) % d.len().max(1);
                    if let Some(b) = d.get_mut(at) {
                        *b ^= xor;
                    }
                    self.deliver(EXPOSER, d);
                }
            }
            Op::Truncate { n, keep } => {
                if let Some(i) = self.pick(n) {
                    let mut d = self.queue[i].clone();
                    d.truncate(usize::from(keep) % d.len().max(1));
                    self.deliver(EXPOSER, d);
                }
            }
            Op::Foreign(n) => {
                if let Some(i) = self.pick(n) {
                    let d = self.queue[i].clone();
                    self.deliver(Peer::Mem(9), d);
                }
            }
            Op::RealChunk { index, proof } if count > 0 => {
                let d = fx.chunk_packet(u32::from(index) % count, proof);
                self.deliver(EXPOSER, d);
            }
            Op::RealParity { block, p } if fx.exposure.block_count() > 0 => {
                let b = u32::from(block) % fx.exposure.block_count();
                let d = fx.parity_packet(b, p % fx.parity_count());
                self.deliver(EXPOSER, d);
            }
            Op::WrongProof { index, other } if count > 0 => {
                let i = u32::from(index) % count;
                let o = u32::from(other) % count;
                let mut d = fx.chunk_packet(i, true);
                let proof = fx.chunk_packet(o, true);
                let depth = fx.exposure.tree().depth() * 32;
                d[25..25 + depth].copy_from_slice(&proof[25..25 + depth]);
                self.deliver(EXPOSER, d);
            }
            Op::Reindex { index, as_index } if count > 0 => {
                let mut d = fx.chunk_packet(u32::from(index) % count, false);
                d[20..24].copy_from_slice(&u32::from(as_index).to_be_bytes());
                self.deliver(EXPOSER, d);
            }
            Op::Manifest(token) => {
                let d = fx.manifest_packet(token);
                self.deliver(EXPOSER, d);
            }
            Op::Raw(d) => self.deliver(EXPOSER, d),
            Op::Forged(bytes) => {
                if let Ok(mut r) = Repr::arbitrary(&mut Unstructured::new(&bytes)) {
                    set_id(&mut r, *fx.exposure.id());
                    let d = fixtures::emit(&r);
                    self.deliver(EXPOSER, d);
                }
            }
            Op::Tick(ms) => self.tick(Duration::from_millis(u64::from(ms))),
            Op::Root(root) => {
                self.st.endpoint.handle_root(&root);
                self.st.events();
            }
            Op::Drive(rounds) => {
                for _ in 0..rounds % 32 {
                    if self.st.endpoint.is_finished() {
                        break;
                    }
                    self.flush();
                    while let Some(d) = self.queue.pop_front() {
                        self.deliver(EXPOSER, d);
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

    /// Puller transmits go to the exposer; its answers join the queue.
    fn flush(&mut self) {
        let (now, fx, exposer) = (self.now, self.fx, &mut self.exposer);
        let mut sent = 0;
        self.st.transmit(now, &mut |to, d| {
            sent += 1;
            assert!(sent < 100_000, "poll_transmit never returns None");
            assert_eq!(to, EXPOSER, "puller sent to a stranger");
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
            exposer.handle_datagram(now, PULLER, d);
        });
        let mut out = Vec::new();
        while let Some(t) = self.exposer.poll_transmit(self.now, &mut out) {
            for d in t.datagrams(&out) {
                if self.queue.len() < MAX_QUEUE {
                    self.queue.push_back(d.to_vec());
                }
            }
        }
        self.st.events();
    }

    fn deliver(&mut self, from: Peer, mut d: Vec<u8>) {
        self.st.input(self.now, from, &mut d);
        self.st.events();
    }
}

impl Checker {
    /// A checker of pulls of `fx`, whose output an earlier run left `earlier`
    /// (index, spoiled on disk since).
    pub(crate) fn new(fx: &'static Fixture, earlier: &[(u16, bool)]) -> Self {
        let count = fx.exposure.chunk_count() as usize;
        Checker {
            fx,
            out: vec![0; fx.data.len()],
            handed: vec![false; count],
            complete: false,
            forgeries: false,
            proofs_asked: false,
            vouched: false,
            lag: false,
            late: Vec::new(),
            proofs: None,
            unverified: Vec::new(),
            earlier: earlier
                .iter()
                .filter(|_| count > 0)
                .map(|&(i, spoiled)| (u32::from(i) % count as u32, spoiled))
                .collect(),
        }
    }

    /// With key holders forging chunks, for a puller that takes up the proofs an
    /// exposure offers if `proofs_asked`.
    pub(crate) fn with_forgeries(mut self, proofs_asked: bool) -> Self {
        self.forgeries = true;
        self.proofs_asked = proofs_asked;
        self
    }

    /// With the checker's verdicts given to the puller a turn late, if `lag`.
    pub(crate) fn with_lagging_verdicts(mut self, lag: bool) -> Self {
        self.lag = lag;
        self
    }

    /// `unverified`: handed out for the driver's checker to judge.
    fn check_chunk(&mut self, index: u32, offset: u64, data: &[u8], how: &str, unverified: bool) {
        let fx = self.fx;
        let vouched = self.vouched && !unverified;
        assert!(
            index < fx.exposure.chunk_count(),
            "{how} chunk {index} out of range"
        );
        assert_eq!(
            offset,
            u64::from(index) * u64::from(fx.shape.chunk_size),
            "{how} chunk {index} at the wrong offset"
        );
        assert!(
            data == fx.plain(index) || (self.forgeries && !vouched),
            "{how} chunk {index} differs from the real plaintext"
        );
        assert!(!self.complete, "{how} chunk {index} after Complete");
        let at = offset as usize;
        self.out[at..at + data.len()].copy_from_slice(data);
        self.handed[index as usize] = true;
    }
}

impl Checker {
    /// Writes what the earlier run left into the output (a spoiled chunk with one
    /// byte changed) and hands it to the puller, as a driver resuming a pull does.
    fn resume(&mut self, puller: &mut impl Pull) {
        let cs = self.fx.shape.chunk_size as usize;
        let mut earlier = std::mem::take(&mut self.earlier);
        // One state per chunk: the file holds one copy of it.
        earlier.sort_by_key(|&(idx, _)| idx);
        earlier.dedup_by_key(|&mut (idx, _)| idx);
        for (idx, spoiled) in earlier {
            let at = idx as usize * cs;
            let plain = self.fx.plain(idx);
            let end = at + plain.len();
            self.out[at..end].copy_from_slice(plain);
            if spoiled {
                self.out[at] ^= 0x01;
            }
            if puller.resume_chunk(idx, &self.out[at..end]) {
                self.handed[idx as usize] = true;
            }
        }
    }
}

impl<P: Pull> Application<P> for Checker {
    type Output = ();
    type Error = std::io::Error;

    fn deliver(&mut self, c: Delivered<'_>) -> std::io::Result<()> {
        self.check_chunk(c.index, c.offset, c.data, "delivered", c.unverified);
        if c.unverified {
            assert!(
                self.proofs.is_some(),
                "a chunk to check, but not offloading"
            );
            self.unverified
                .push((c.index, c.data.to_vec(), c.proof.map(<[u8]>::to_vec)));
        }
        Ok(())
    }

    /// What a driver's verifier does, at once (or its verdicts a turn late).
    fn settle(&mut self, puller: &mut P, now: Instant) -> std::io::Result<Option<Duration>> {
        for (idx, verdict) in std::mem::take(&mut self.late) {
            puller.handle_verdict(now, idx, verdict);
        }
        if let Some(checker) = self.proofs.as_mut() {
            let hash = puller.hash_scheme().expect("hash after Manifest").clone();
            let mut verdicts = Vec::new();
            for (idx, data, proof) in std::mem::take(&mut self.unverified) {
                checker.add(
                    &hash,
                    idx,
                    hash.leaf(&data),
                    proof.as_deref(),
                    &mut verdicts,
                );
            }
            let cs = self.fx.shape.chunk_size as usize;
            for (idx, verdict) in verdicts {
                // What passed is what was written (copies of a chunk waiting for
                // its verdict are dropped).
                let at = idx as usize * cs;
                let plain = self.fx.plain(idx);
                assert!(
                    verdict != Verdict::Verified || &self.out[at..at + plain.len()] == plain,
                    "chunk {idx}: wrong plaintext passed"
                );
                if self.lag {
                    self.late.push((idx, verdict));
                } else {
                    puller.handle_verdict(now, idx, verdict);
                }
            }
        }
        Ok(None)
    }

    /// Never ends the run: the harness keeps feeding a finished puller.
    fn event(&mut self, puller: &mut P, e: PullerEvent) -> std::io::Result<Option<()>> {
        match e {
            PullerEvent::Manifest(info) => {
                let m = self.fx.exposure.manifest();
                assert_eq!(info.exposure_id, m.exposure_id);
                assert_eq!(info.total_size, m.total_size, "Manifest info differs");
                assert_eq!(info.chunk_count, m.chunk_count, "Manifest info differs");
                assert_eq!(info.chunk_size, m.chunk_size, "Manifest info differs");
                assert_eq!(info.merkle_root, m.merkle_root, "Manifest info differs");
                self.vouched = self.proofs_asked && info.suite.proofs;
                if puller.offloads_proofs() {
                    let hash = puller.hash_scheme().expect("hash after Manifest");
                    self.proofs = Some(RunChecker::new(hash, info.chunk_count, info.merkle_root));
                }
                self.resume(puller);
            }
            PullerEvent::Kept { first, members } => {
                // What a driver does: read them back, and check them with their run.
                assert!(self.proofs.is_some(), "kept chunks, but not offloading");
                let cs = self.fx.shape.chunk_size as usize;
                for idx in kept_chunks(first, members) {
                    let at = idx as usize * cs;
                    let len = self.fx.plain(idx).len();
                    self.unverified
                        .push((idx, self.out[at..at + len].to_vec(), None));
                }
            }
            PullerEvent::Recovered {
                index,
                offset,
                data,
                unverified,
            } => {
                self.check_chunk(index, offset, &data, "recovered", unverified);
                if unverified {
                    self.unverified.push((index, data, None));
                }
            }
            PullerEvent::VerifyRoot if self.proofs.is_some() => {
                // What an offloading driver does: the root its checker folded.
                let root = self.proofs.as_ref().and_then(RunChecker::root);
                let root = root.expect("every chunk passed before VerifyRoot");
                assert_eq!(root, self.fx.exposure.manifest().merkle_root);
                puller.handle_root(&root);
            }
            PullerEvent::VerifyRoot => {
                // What a driver does: hash the output it wrote.
                let hash = puller.hash_scheme().expect("hash after Manifest");
                let cs = self.fx.shape.chunk_size as usize;
                let leaves: Vec<_> = self.out.chunks(cs).map(|c| hash.leaf(c)).collect();
                let root = root_of(hash, &leaves);
                puller.handle_root(&root);
            }
            PullerEvent::Complete => {
                assert!(
                    self.handed.iter().all(|&h| h),
                    "Complete before every chunk was handed out: {:?} {:?}",
                    self.handed
                        .iter()
                        .enumerate()
                        .filter(|(_, h)| !**h)
                        .map(|(i, _)| i)
                        .collect::<Vec<_>>(),
                    puller.stats()
                );
                assert!(self.out == self.fx.data, "Complete, but the whole differs");
                assert!(puller.is_finished());
                self.complete = true;
            }
            PullerEvent::Failed(_) => assert!(!self.complete, "Failed after Complete"),
        }
        Ok(None)
    }
}

fn set_id(r: &mut Repr<'_>, id: [u8; 16]) {
    match r {
        Repr::PullRequest(p) => p.exposure_id = id,
        Repr::Manifest(p) => p.exposure_id = id,
        Repr::ChunkData(p) => p.exposure_id = id,
        Repr::ChunkDataWithProof(p) => p.exposure_id = id,
        Repr::FecParity(p) => p.exposure_id = id,
        Repr::Nak(p) => p.exposure_id = id,
        Repr::RateReport(p) => p.exposure_id = id,
        Repr::Keepalive(p) => p.exposure_id = id,
    }
}
