//! An in-memory [`Pair`]: one [`Exposer`] and one [`Puller`] on virtual time,
//! built with the testing layers only, with no link, socket or thread.
//!
//! Each datagram takes `latency` to cross. Hooks may drop or modify a datagram
//! as it arrives. The calling order is the documented one: after every
//! `handle_*` call, drain `poll_transmit`, then drain `poll_event`, then read
//! `poll_timeout`.

use std::collections::VecDeque;
use std::sync::Arc;
use std::time::Duration;

use rgtp_wire::{ExposureId, Repr};

use crate::crypto::{CipherId, Key, KeyMode, NullCipherAs};
use crate::exposer::{Exposer, ExposerConfig, Exposure};
use crate::fec::{FecCodec, NoFec};
use crate::merkle::{self, MerkleScheme, TestingHash};
use crate::puller::{
    kept_chunks, ManifestInfo, Puller, PullerConfig, PullerEvent, RunChecker, Verdict,
};
use crate::suite::TestingSuite;
use crate::{Instant, Peer};

pub(crate) const ID: ExposureId = *b"exposure-for-tst";
pub(crate) const EXPOSER: Peer = Peer::Mem(1);
pub(crate) const PULLER: Peer = Peer::Mem(2);

pub(crate) fn key() -> Key {
    Key::from_bytes([0x42; 32])
}

/// `len` bytes of a recognisable pattern.
pub(crate) fn data(len: usize) -> Vec<u8> {
    (0..len).map(|i| (i * 7 + i / 251) as u8).collect()
}

/// An exposure of `data` sealed, hashed and coded with the testing layers, under
/// [`key`] itself.
pub(crate) fn exposure_with(data: &[u8], chunk_size: u32, fec: &dyn FecCodec) -> Arc<Exposure> {
    exposure_keyed(data, chunk_size, fec, KeyMode::Raw)
}

/// An exposure of `data` sealed under the chunk key `mode` makes from [`key`].
pub(crate) fn exposure_keyed(
    data: &[u8],
    chunk_size: u32,
    fec: &dyn FecCodec,
    mode: KeyMode,
) -> Arc<Exposure> {
    let cipher = NullCipherAs::new(CipherId::ChaCha20Poly1305, &mode.chunk_key(&key(), &ID));
    let exposure = Exposure::build(
        ID,
        data,
        chunk_size,
        &cipher,
        mode,
        &TestingHash,
        fec,
        false,
    )
    .expect("testing exposure builds");
    Arc::new(exposure)
}

/// An exposure of `data` without FEC.
pub(crate) fn exposure(data: &[u8], chunk_size: u32) -> Arc<Exposure> {
    exposure_with(data, chunk_size, &NoFec)
}

/// An exposure of `data` without FEC whose Manifest announces proofs.
pub(crate) fn exposure_with_proofs(data: &[u8], chunk_size: u32) -> Arc<Exposure> {
    let cipher = NullCipherAs::new(CipherId::ChaCha20Poly1305, &key());
    let exposure = Exposure::build(
        ID,
        data,
        chunk_size,
        &cipher,
        KeyMode::Raw,
        &TestingHash,
        &NoFec,
        true,
    )
    .expect("testing exposure builds");
    Arc::new(exposure)
}

/// Which way a datagram goes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Dir {
    ToExposer,
    ToPuller,
}

/// Sees every datagram as it arrives; returns `false` to drop it.
pub(crate) type Hook = Box<dyn FnMut(Dir, &mut Vec<u8>) -> bool>;

/// A datagram on its way.
struct InFlight {
    arrival: Instant,
    data: Vec<u8>,
}

pub(crate) struct Pair {
    pub(crate) exposer: Exposer,
    pub(crate) puller: Puller<TestingSuite>,
    pub(crate) now: Instant,
    /// One-way delay.
    pub(crate) latency: Duration,
    to_exposer: VecDeque<InFlight>,
    to_puller: VecDeque<InFlight>,
    hook: Option<Hook>,
    /// Every datagram the puller sent, in order.
    pub(crate) puller_sent: Vec<Vec<u8>>,
    /// Every datagram the exposer sent, in order.
    pub(crate) exposer_sent: Vec<Vec<u8>>,
    /// Every event the puller emitted, in order.
    pub(crate) events: Vec<PullerEvent>,
    /// The output the puller wrote (sized by its Manifest event).
    pub(crate) output: Vec<u8>,
    /// Under `offload_proofs`: chunks handed out unverified (index, plaintext, proof;
    /// none for a rebuilt chunk or one of a proof run), waiting for this driver's check.
    pub(crate) unverified: Vec<Unverified>,
    /// Whether each step checks `unverified` (a driver's verifier); off, they wait.
    pub(crate) verify: bool,
    /// The driver's checker, from an offloading puller's Manifest on.
    checker: Option<RunChecker>,
    /// What an earlier run left: its output, and the chunks its record claims,
    /// handed to the puller once its Manifest is accepted.
    pub(crate) earlier: Option<(Vec<u8>, Vec<u32>)>,
    tbuf: Vec<u8>,
}

impl Pair {
    pub(crate) fn new(exposure: Arc<Exposure>, config: ExposerConfig, cfg: PullerConfig) -> Self {
        let now = Instant::ZERO;
        Pair {
            exposer: Exposer::new(exposure, config),
            puller: Puller::new(cfg, TestingSuite, now),
            now,
            latency: Duration::from_millis(10),
            to_exposer: VecDeque::new(),
            to_puller: VecDeque::new(),
            hook: None,
            puller_sent: Vec::new(),
            exposer_sent: Vec::new(),
            events: Vec::new(),
            output: Vec::new(),
            unverified: Vec::new(),
            verify: true,
            checker: None,
            earlier: None,
            tbuf: Vec::new(),
        }
    }

    /// A pair with the default configurations.
    pub(crate) fn with(exposure: Arc<Exposure>) -> Self {
        Self::new(exposure, ExposerConfig::default(), Self::puller_config())
    }

    pub(crate) fn puller_config() -> PullerConfig {
        PullerConfig::new(ID, EXPOSER, key())
    }

    pub(crate) fn set_hook(&mut self, hook: impl FnMut(Dir, &mut Vec<u8>) -> bool + 'static) {
        self.hook = Some(Box::new(hook));
    }

    /// Drains both sides' transmits and the puller's events.
    fn flush(&mut self) {
        while let Some(t) = self.puller.poll_transmit(self.now, &mut self.tbuf) {
            assert_eq!(t.destination, EXPOSER);
            assert_eq!(t.size, self.tbuf.len());
            self.puller_sent.push(self.tbuf.clone());
            self.to_exposer.push_back(InFlight {
                arrival: self.now + self.latency,
                data: self.tbuf.clone(),
            });
        }
        // As the drivers do: batches of consecutive chunks come straight from the store.
        while let Some((t, bytes)) = self.exposer.poll_transmit_ref(self.now, &mut self.tbuf) {
            assert_eq!(t.destination, PULLER);
            for d in t.datagrams(bytes) {
                self.exposer_sent.push(d.to_vec());
                self.to_puller.push_back(InFlight {
                    arrival: self.now + self.latency,
                    data: d.to_vec(),
                });
            }
        }
        while let Some(ev) = self.puller.poll_event() {
            match &ev {
                PullerEvent::Manifest(m) => {
                    self.output = vec![0; m.total_size as usize];
                    self.checker = self
                        .puller
                        .offloads_proofs()
                        .then(|| RunChecker::new(&TestingHash, m.chunk_count, m.merkle_root));
                    if let Some((out, held)) = self.earlier.take() {
                        self.output = out;
                        let size = m.chunk_size as usize;
                        for i in held {
                            let at = i as usize * size;
                            let end = (at + size).min(self.output.len());
                            self.puller.resume_chunk(i, &self.output[at..end]);
                        }
                    }
                }
                PullerEvent::Kept { first, members } => {
                    let m = self.puller.manifest().expect("Manifest");
                    let kept = read_kept(&self.output, &m, *first, *members);
                    self.unverified.extend(kept);
                }
                PullerEvent::Recovered {
                    index,
                    offset,
                    data,
                    unverified,
                } => {
                    self.write(*offset, data);
                    if *unverified {
                        self.unverified.push((*index, data.clone(), None));
                    }
                }
                PullerEvent::VerifyRoot => {
                    if let Some(root) = self.checker.as_ref().and_then(RunChecker::root) {
                        self.puller.handle_root(&root);
                    }
                }
                _ => {}
            }
            self.events.push(ev);
        }
    }

    fn write(&mut self, offset: u64, data: &[u8]) {
        let at = offset as usize;
        self.output[at..at + data.len()].copy_from_slice(data);
    }

    /// Runs until the next thing happens; `false` when nothing ever will.
    pub(crate) fn step(&mut self) -> bool {
        self.flush();
        let next = [
            self.to_exposer.front().map(|d| d.arrival),
            self.to_puller.front().map(|d| d.arrival),
            self.puller.poll_timeout(),
        ]
        .into_iter()
        .flatten()
        .min();
        let Some(next) = next else {
            return false;
        };
        self.now = self.now.max(next);
        while self
            .to_exposer
            .front()
            .is_some_and(|d| d.arrival <= self.now)
        {
            let mut d = self.to_exposer.pop_front().expect("front").data;
            if self.deliverable(Dir::ToExposer, &mut d) {
                self.exposer.handle_datagram(self.now, PULLER, &d);
            }
        }
        while self
            .to_puller
            .front()
            .is_some_and(|d| d.arrival <= self.now)
        {
            let mut d = self.to_puller.pop_front().expect("front").data;
            if self.deliverable(Dir::ToPuller, &mut d) {
                if let Some(c) = self.puller.handle_datagram(self.now, EXPOSER, &mut d) {
                    let (index, offset, data) = (c.index, c.offset, c.data.to_vec());
                    if c.unverified {
                        let proof = c.proof.map(<[u8]>::to_vec);
                        self.unverified.push((index, data.clone(), proof));
                    }
                    self.write(offset, &data);
                }
                self.flush();
            }
        }
        if self.verify {
            self.check_unverified();
        }
        if self.puller.poll_timeout().is_some_and(|t| t <= self.now) {
            self.puller.handle_timeout(self.now);
        }
        true
    }

    /// Checks every chunk handed out unverified and gives the puller the verdicts
    /// this settles, as a driver's verifier does (a chunk whose run is not complete
    /// waits for it).
    pub(crate) fn check_unverified(&mut self) {
        let Some(checker) = self.checker.as_mut() else {
            return;
        };
        for (idx, verdict) in judge(checker, std::mem::take(&mut self.unverified)) {
            self.puller.handle_verdict(self.now, idx, verdict);
        }
        self.flush();
    }

    /// Datagrams that reach the puller now, from the exposer's address, ahead of
    /// everything already on its way (spoofed traffic from a fast attacker).
    pub(crate) fn inject_to_puller(&mut self, datagrams: Vec<Vec<u8>>) {
        for data in datagrams.into_iter().rev() {
            self.to_puller.push_front(InFlight {
                arrival: self.now,
                data,
            });
        }
    }

    fn deliverable(&mut self, dir: Dir, d: &mut Vec<u8>) -> bool {
        self.hook.as_mut().is_none_or(|h| h(dir, d))
    }

    /// Steps until the puller finishes or waits for the driver, or nothing is left to do.
    pub(crate) fn drive(&mut self) {
        for _ in 0..100_000 {
            if self.puller.is_finished() || self.waiting_for_root() || !self.step() {
                self.flush();
                return;
            }
        }
        panic!("the pair did not settle");
    }

    fn waiting_for_root(&self) -> bool {
        // Verifying has no timer; a repair after the driver's leaves has.
        self.events.last() == Some(&PullerEvent::VerifyRoot) && self.puller.poll_timeout().is_none()
    }

    /// The leaf hash of every chunk of the output, as a driver computes them in
    /// deferred-root mode.
    pub(crate) fn output_leaves(&self, chunk_size: u32) -> Vec<rgtp_wire::Hash> {
        self.output
            .chunks(chunk_size as usize)
            .map(|c| TestingHash.leaf(c))
            .collect()
    }

    /// The Merkle root over the output, as a driver computes it in deferred-root mode.
    pub(crate) fn output_root(&self, chunk_size: u32) -> rgtp_wire::Hash {
        let leaves: Vec<_> = self
            .output
            .chunks(chunk_size as usize)
            .map(|c| TestingHash.leaf(c))
            .collect();
        merkle::root_of(&TestingHash, &leaves)
    }
}

/// The chunks of the first `count` a record of `p`'s output would claim now: those
/// accepted and those kept from an earlier run not judged yet.
pub(crate) fn claimed(p: &impl crate::Pull, count: u32) -> Vec<u32> {
    let (r, k) = (p.received_bitmap(), p.kept_bitmap());
    (0..count)
        .filter(|&i| (r[i as usize / 64] | k[i as usize / 64]) & (1 << (i % 64)) != 0)
        .collect()
}

/// The parsed datagrams of `sent` (all must parse).
pub(crate) fn parsed(sent: &[Vec<u8>]) -> Vec<Repr<'_>> {
    sent.iter()
        .map(|d| Repr::parse(d, 65_507).expect("our own datagrams parse"))
        .collect()
}

/// A chunk handed out for the driver's check: index, plaintext, proof (none for a
/// rebuilt chunk, one of a proof run, or one kept from an earlier run).
pub(crate) type Unverified = (u32, Vec<u8>, Option<Vec<u8>>);

/// What a driver does on [`PullerEvent::Kept`]: reads the run's kept chunks back
/// from the output, for its checker.
pub(crate) fn read_kept(
    output: &[u8],
    m: &ManifestInfo,
    first: u32,
    members: u64,
) -> Vec<Unverified> {
    kept_chunks(first, members)
        .map(|idx| {
            let r = m.chunk_range(idx);
            (idx, output[r.start as usize..r.end as usize].to_vec(), None)
        })
        .collect()
}

/// What a driver's checker does with the chunks handed out unverified: the
/// verdicts they settle (a chunk whose run is not complete waits for it).
pub(crate) fn judge(checker: &mut RunChecker, chunks: Vec<Unverified>) -> Vec<(u32, Verdict)> {
    let mut verdicts = Vec::new();
    for (idx, data, proof) in chunks {
        let leaf = TestingHash.leaf(&data);
        checker.add(&TestingHash, idx, leaf, proof.as_deref(), &mut verdicts);
    }
    verdicts
}
