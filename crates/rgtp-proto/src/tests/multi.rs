//! A multi-source pull on virtual time: several exposers of one exposure, each
//! behind its own capped link, one [`MultiPuller`].

use std::cmp::Reverse;
use std::collections::BinaryHeap;
use std::sync::Arc;
use std::time::Duration;

use rgtp_wire::Repr;

use super::offload::forge_keeping_the_proof;
use super::util::{
    claimed, data, exposure, exposure_with, exposure_with_proofs, judge, key, read_kept,
    Unverified, ID, PULLER,
};
use crate::exposer::{Exposer, ExposerConfig, Exposure};
use crate::merkle::{MerkleScheme, TestingHash};
use crate::multi::{DropReason, MultiConfig, MultiPuller, SourceState};
use crate::puller::{PullError, PullerConfig, PullerEvent, RunChecker};
use crate::suite::TestingSuite;
use crate::{Instant, Peer};

/// One exposer and the link from it to the puller.
struct Source {
    peer: Peer,
    exposer: Exposer,
    /// Bytes per second the link carries towards the puller (a queue, no loss).
    rate: u64,
    busy_until: Instant,
    /// Flip a byte of every chunk it sends.
    corrupt: bool,
    /// Drop everything it sends from this instant on.
    silent_from: Option<Instant>,
    /// Drop one datagram in this many (deterministic).
    drop_every: Option<u64>,
    /// Replace every chunk by wrong bytes sealed with the key (a ticket holder's
    /// forgery), keeping any proof it carries.
    forge: bool,
    sent: u64,
}

/// A datagram on its way: (arrival, sequence, to the puller?, source index, bytes).
type Queued = Reverse<(Instant, u64, bool, usize, Vec<u8>)>;

struct Net {
    sources: Vec<Source>,
    puller: MultiPuller<TestingSuite>,
    now: Instant,
    latency: Duration,
    queue: BinaryHeap<Queued>,
    seq: u64,
    output: Vec<u8>,
    events: Vec<PullerEvent>,
    chunk_size: u32,
    buf: Vec<u8>,
    /// Offloading: the driver's checker, from the Manifest on, and the chunks
    /// handed out unverified that wait for it (index, plaintext, proof).
    checker: Option<RunChecker>,
    unverified: Vec<Unverified>,
    /// No verdicts are given while set.
    hold_verdicts: bool,
}

fn peer(i: usize) -> Peer {
    Peer::Mem(10 + i as u32)
}

impl Net {
    fn new(exposures: &[Arc<Exposure>], rate: u64, cfg: PullerConfig, chunk_size: u32) -> Net {
        let sources: Vec<Source> = exposures
            .iter()
            .enumerate()
            .map(|(i, e)| Source {
                peer: peer(i),
                exposer: Exposer::new(e.clone(), ExposerConfig::default()),
                rate,
                busy_until: Instant::ZERO,
                corrupt: false,
                silent_from: None,
                drop_every: None,
                forge: false,
                sent: 0,
            })
            .collect();
        let peers: Vec<Peer> = sources.iter().map(|s| s.peer).collect();
        Net {
            puller: MultiPuller::new(
                cfg,
                &peers,
                MultiConfig::default(),
                TestingSuite,
                Instant::ZERO,
            ),
            sources,
            now: Instant::ZERO,
            latency: Duration::from_millis(5),
            queue: BinaryHeap::new(),
            seq: 0,
            output: Vec::new(),
            events: Vec::new(),
            chunk_size,
            buf: Vec::new(),
            checker: None,
            unverified: Vec::new(),
            hold_verdicts: false,
        }
    }

    fn push(&mut self, at: Instant, to_puller: bool, src: usize, d: Vec<u8>) {
        self.seq += 1;
        self.queue.push(Reverse((at, self.seq, to_puller, src, d)));
    }

    fn flush(&mut self) {
        while let Some(t) = self.puller.poll_transmit(self.now, &mut self.buf) {
            let src = self
                .sources
                .iter()
                .position(|s| s.peer == t.destination)
                .expect("sent to a source");
            let d = self.buf[..t.size].to_vec();
            self.push(self.now + self.latency, false, src, d);
        }
        for i in 0..self.sources.len() {
            while let Some(t) = self.sources[i]
                .exposer
                .poll_transmit(self.now, &mut self.buf)
            {
                assert_eq!(t.destination, PULLER);
                let seg = t.segment_size.unwrap_or(t.size);
                let parts: Vec<Vec<u8>> =
                    self.buf[..t.size].chunks(seg).map(<[u8]>::to_vec).collect();
                for mut d in parts {
                    let s = &mut self.sources[i];
                    s.sent += 1;
                    if s.silent_from.is_some_and(|t| self.now >= t)
                        || s.drop_every.is_some_and(|n| s.sent.is_multiple_of(n))
                    {
                        continue;
                    }
                    if s.forge {
                        let idx = match Repr::parse(&d, 65_507) {
                            Ok(Repr::ChunkData(c)) => Some(c.chunk_index),
                            Ok(Repr::ChunkDataWithProof(c)) => Some(c.chunk_index),
                            _ => None,
                        };
                        if let Some(idx) = idx {
                            forge_keeping_the_proof(&mut d, idx);
                        }
                    }
                    // Chunks only: the Manifest goes through untouched.
                    if s.corrupt && d.len() > 512 {
                        let at = d.len() - 20;
                        d[at] ^= 0x55;
                    }
                    // Serialised on the source's capped link, then the path delay.
                    let start = s.busy_until.max(self.now);
                    let done =
                        start + Duration::from_nanos(d.len() as u64 * 1_000_000_000 / s.rate);
                    s.busy_until = done;
                    self.push(done + self.latency, true, i, d);
                }
            }
        }
        self.take_events();
    }

    /// Takes the puller's events as a driver does.
    fn take_events(&mut self) {
        while let Some(ev) = self.puller.poll_event() {
            match &ev {
                PullerEvent::Manifest(m) => {
                    self.output = vec![0; m.total_size as usize];
                    self.checker = self
                        .puller
                        .offloads_proofs()
                        .then(|| RunChecker::new(&TestingHash, m.chunk_count, m.merkle_root));
                }
                PullerEvent::Recovered {
                    index,
                    offset,
                    data,
                    unverified,
                } => {
                    let at = *offset as usize;
                    self.output[at..at + data.len()].copy_from_slice(data);
                    if *unverified {
                        self.unverified.push((*index, data.clone(), None));
                    }
                }
                PullerEvent::Kept { first, members } => {
                    let m = self.puller.manifest().expect("Manifest");
                    let kept = read_kept(&self.output, &m, *first, *members);
                    self.unverified.extend(kept);
                }
                PullerEvent::VerifyRoot if self.checker.is_some() => {
                    if let Some(root) = self.checker.as_ref().and_then(RunChecker::root) {
                        self.puller.handle_root(&root);
                    }
                }
                PullerEvent::VerifyRoot => {
                    let leaves = self
                        .output
                        .chunks(self.chunk_size as usize)
                        .map(|c| TestingHash.leaf(c))
                        .collect();
                    self.puller.handle_leaves(leaves);
                }
                _ => {}
            }
            self.events.push(ev);
        }
    }

    /// Runs the handshakes until the first Manifest is accepted, then drains the
    /// transmits and takes the events, in the documented order: the caller hands
    /// over what it holds after, as a driver does when it takes the Manifest event.
    fn until_manifest(&mut self) {
        while self.puller.manifest().is_none() {
            let before = self.now;
            self.flush();
            let next = self
                .queue
                .peek()
                .map(|Reverse(x)| x.0)
                .expect("handshake under way");
            self.now = next.max(before);
            while self.queue.peek().is_some_and(|Reverse(x)| x.0 <= self.now) {
                let Reverse((_, _, to_puller, src, mut dg)) = self.queue.pop().expect("peeked");
                if to_puller {
                    let from = self.sources[src].peer;
                    let _ = self.puller.handle_datagram(self.now, from, &mut dg);
                } else {
                    self.sources[src]
                        .exposer
                        .handle_datagram(self.now, PULLER, &dg);
                }
            }
        }
        self.flush();
    }

    /// Runs until the pull finishes; returns the virtual time it took.
    fn run(&mut self) -> Duration {
        for _ in 0..2_000_000 {
            self.flush();
            if self.puller.is_finished() {
                self.flush();
                return self.now.saturating_since(Instant::ZERO);
            }
            self.turn();
        }
        panic!("the pull did not finish");
    }

    /// Runs until `done` holds; panics if the pull finishes first.
    fn run_until(&mut self, mut done: impl FnMut(&Net) -> bool) {
        for _ in 0..2_000_000 {
            self.flush();
            if done(self) {
                return;
            }
            assert!(!self.puller.is_finished(), "the pull finished first");
            self.turn();
        }
        panic!("it never came to pass");
    }

    /// Moves virtual time to the next thing due and does it.
    fn turn(&mut self) {
        let next = [
            self.queue.peek().map(|Reverse(x)| x.0),
            self.puller.poll_timeout(),
        ]
        .into_iter()
        .chain(self.sources.iter().map(|s| s.exposer.poll_timeout()))
        .flatten()
        .min()
        .expect("something to wait for");
        self.now = self.now.max(next);
        while self.queue.peek().is_some_and(|Reverse(x)| x.0 <= self.now) {
            let Reverse((_, _, to_puller, src, mut d)) = self.queue.pop().expect("peeked");
            if to_puller {
                let from = self.sources[src].peer;
                if let Some(c) = self.puller.handle_datagram(self.now, from, &mut d) {
                    let at = c.offset as usize;
                    self.output[at..at + c.data.len()].copy_from_slice(c.data);
                    if c.unverified {
                        let proof = c.proof.map(<[u8]>::to_vec);
                        self.unverified.push((c.index, c.data.to_vec(), proof));
                    }
                }
            } else {
                self.sources[src]
                    .exposer
                    .handle_datagram(self.now, PULLER, &d);
            }
            self.flush();
        }
        self.check_unverified();
        if self.puller.poll_timeout().is_some_and(|t| t <= self.now) {
            self.puller.handle_timeout(self.now);
        }
        for s in &mut self.sources {
            if s.exposer.poll_timeout().is_some_and(|t| t <= self.now) {
                s.exposer.handle_timeout(self.now);
            }
        }
    }

    /// Checks the chunks handed out unverified, as a driver's verifier does, and
    /// gives the puller the verdicts this settles (none while `hold_verdicts`: a
    /// checker that is behind).
    fn check_unverified(&mut self) {
        if self.hold_verdicts {
            return;
        }
        let Some(checker) = self.checker.as_mut() else {
            return;
        };
        for (idx, verdict) in judge(checker, std::mem::take(&mut self.unverified)) {
            self.puller.handle_verdict(self.now, idx, verdict);
        }
        self.flush();
    }

    fn complete(&self) -> bool {
        self.events.last() == Some(&PullerEvent::Complete) && self.puller.is_complete()
    }
}

fn config(deferred: bool) -> PullerConfig {
    let mut c = PullerConfig::new(ID, peer(0), key());
    c.deferred_root = deferred;
    c
}

const RATE: u64 = 2_000_000;

fn pull_from(n: usize, len: usize, deferred: bool) -> (Net, Duration) {
    let d = data(len);
    let e = exposure(&d, 1024);
    let mut net = Net::new(&vec![e; n], RATE, config(deferred), 1024);
    let t = net.run();
    assert!(net.complete(), "{:?}", net.events.last());
    assert_eq!(net.output, d);
    (net, t)
}

#[test]
fn four_capped_sources_pull_about_four_times_as_fast_as_one() {
    let len = 2_000_000;
    let (one, t1) = pull_from(1, len, true);
    let (four, t4) = pull_from(4, len, true);
    let speedup = t1.as_secs_f64() / t4.as_secs_f64();
    assert!(
        speedup >= 3.0,
        "one source {t1:?}, four {t4:?}: {speedup:.2}x"
    );
    // Each source delivered a fair share, and no chunk was fetched twice for nothing.
    let chunks = four.puller.manifest().expect("manifest").chunk_count as u64;
    let reports = four.puller.sources();
    assert_eq!(reports.iter().map(|r| r.delivered).sum::<u64>(), chunks);
    for r in &reports {
        assert_eq!(r.state, SourceState::Active);
        assert!(r.delivered > chunks / 8, "{reports:?}");
    }
    assert_eq!(four.puller.stats().chunks_received, chunks);
    assert!(
        four.puller.stats().duplicates <= chunks / 50,
        "{:?}",
        four.puller.stats()
    );
    assert_eq!(one.puller.sources()[0].delivered, chunks);
}

/// Three sources of `e`, the second lying (`forge`: a key holder's forgeries, else
/// corrupted bytes): it is dropped, the pull completes from the others. Returns the
/// counters.
fn with_a_liar(
    d: &[u8],
    e: Arc<Exposure>,
    cfg: PullerConfig,
    chunk: u32,
    forge: bool,
) -> crate::PullerStats {
    let mut net = Net::new(&[e.clone(), e.clone(), e], RATE, cfg, chunk);
    net.sources[1].forge = forge;
    net.sources[1].corrupt = !forge;
    net.run();
    assert!(net.complete(), "{:?}", net.events.last());
    assert_eq!(net.output, d);
    let reports = net.puller.sources();
    assert!(
        matches!(reports[1].state, SourceState::Dropped(DropReason::Forged(n)) if n >= 8),
        "{reports:?}"
    );
    assert_eq!(reports[1].delivered, 0);
    assert_eq!(reports[0].state, SourceState::Active);
    assert_eq!(reports[2].state, SourceState::Active);
    net.puller.stats()
}

#[test]
fn a_source_sending_forged_chunks_is_dropped_and_the_pull_completes() {
    for deferred in [true, false] {
        let d = data(600_000);
        let s = with_a_liar(&d, exposure(&d, 1024), config(deferred), 1024, false);
        assert!(s.auth_failures >= 8);
    }
}

#[test]
fn a_source_that_goes_silent_is_dropped_and_its_chunks_fetched_elsewhere() {
    let d = data(1_500_000);
    let e = exposure(&d, 1024);
    let mut net = Net::new(&[e.clone(), e], RATE, config(true), 1024);
    net.sources[0].silent_from = Some(Instant::ZERO + Duration::from_millis(150));
    net.run();
    assert!(net.complete(), "{:?}", net.events.last());
    assert_eq!(net.output, d);
    let reports = net.puller.sources();
    assert_eq!(reports[0].state, SourceState::Dropped(DropReason::Stalled));
    assert!(reports[0].delivered > 0 && reports[1].delivered > reports[0].delivered);
}

#[test]
fn a_source_serving_another_exposure_is_dropped() {
    let d = data(300_000);
    let mut other = d.clone();
    other[1000] ^= 1;
    let (e, f) = (exposure(&d, 1024), exposure(&other, 1024));
    let mut net = Net::new(&[e, f], RATE, config(true), 1024);
    net.run();
    assert!(net.complete(), "{:?}", net.events.last());
    assert_eq!(net.output, d);
    assert_eq!(
        net.puller.sources()[1].state,
        SourceState::Dropped(DropReason::OtherExposure)
    );
}

#[test]
fn every_source_failing_fails_the_pull() {
    let d = data(200_000);
    let e = exposure(&d, 1024);
    let mut net = Net::new(&[e.clone(), e], RATE, config(true), 1024);
    net.sources[0].corrupt = true;
    net.sources[1].corrupt = true;
    net.run();
    assert_eq!(
        net.events.last(),
        Some(&PullerEvent::Failed(PullError::AuthFailed))
    );
    assert!(!net.puller.is_complete());
}

#[test]
fn lossy_sources_with_fec_complete_byte_exact() {
    let d = data(800_000);
    let fec = crate::fec::XorParity::new(8).expect("k in range");
    let e = exposure_with(&d, 1024, &fec);
    let mut net = Net::new(&[e.clone(), e.clone(), e], RATE, config(true), 1024);
    for (i, s) in net.sources.iter_mut().enumerate() {
        s.drop_every = Some(29 + i as u64 * 4);
    }
    net.run();
    assert!(net.complete(), "{:?}", net.events.last());
    assert_eq!(net.output, d);
    let s = net.puller.stats();
    assert!(s.fec_recoveries + s.chunks_rerequested > 0, "{s:?}");
}

#[test]
fn resumed_chunks_are_held_by_every_source() {
    let d = data(500_000);
    let e = exposure(&d, 1024);
    let mut net = Net::new(&[e.clone(), e], RATE, config(true), 1024);
    // Run until the Manifest, then hand over the first half as resumed.
    net.until_manifest();
    let chunks = net.puller.manifest().expect("manifest").chunk_count;
    let half = chunks / 2;
    for i in 0..half {
        let at = i as usize * 1024;
        let end = (at + 1024).min(d.len());
        net.output[at..end].copy_from_slice(&d[at..end]);
        assert!(net.puller.resume_chunk(i, &d[at..end]), "chunk {i}");
    }
    net.run();
    assert!(net.complete(), "{:?}", net.events.last());
    assert_eq!(net.output, d);
    let s = net.puller.stats();
    assert_eq!(s.chunks_resumed, u64::from(half));
    // The first request waited for them: not one is asked for.
    assert_eq!(s.chunks_requested, u64::from(chunks - half), "{s:?}");
}

fn offloading() -> PullerConfig {
    let mut c = config(false);
    c.want_proofs = true;
    c.offload_proofs = true;
    c
}

/// Chunk size of the pulls with proofs (that of the forged chunks).
const PROOF_CHUNK: u32 = 1_000;

#[test]
fn with_proofs_every_source_leaves_them_to_the_driver() {
    let d = data(700_000);
    let e = exposure_with_proofs(&d, PROOF_CHUNK);
    let mut net = Net::new(&[e.clone(), e.clone(), e], RATE, offloading(), PROOF_CHUNK);
    net.run();
    assert!(net.complete(), "{:?}", net.events.last());
    assert!(net.puller.offloads_proofs());
    assert_eq!(net.output, d);
    let s = net.puller.stats();
    assert_eq!((s.chunks_received, s.offloaded_checks), (700, 700), "{s:?}");
    assert_eq!(s.merkle_failures, 0);
    // A proof a run: most chunks came without one, judged with their runs.
    assert!(s.proof_run_members >= 600, "{s:?}");
    assert!(net.events.contains(&PullerEvent::VerifyRoot));
    let reports = net.puller.sources();
    assert_eq!(reports.iter().map(|r| r.delivered).sum::<u64>(), 700);
    for r in &reports {
        assert_eq!(r.state, SourceState::Active);
        assert!(r.delivered > 100, "{reports:?}");
    }
}

#[test]
fn a_source_forging_with_the_key_is_dropped_on_the_drivers_verdicts() {
    let d = data(600_000);
    let e = exposure_with_proofs(&d, PROOF_CHUNK);
    // Sealed with the key, so only the Merkle check tells them apart.
    let s = with_a_liar(&d, e, offloading(), PROOF_CHUNK, true);
    assert!(s.merkle_failures >= 8 && s.auth_failures == 0, "{s:?}");
}

/// Two sources of a 640-chunk exposure with proofs, offloaded, past the Manifest:
/// the data, and the network.
fn resuming_from_two() -> (Vec<u8>, Net) {
    let d = data(640_000);
    let e = exposure_with_proofs(&d, PROOF_CHUNK);
    let mut net = Net::new(&[e.clone(), e], RATE, offloading(), PROOF_CHUNK);
    net.until_manifest();
    assert!(net.puller.offloads_proofs());
    (d, net)
}

/// [`resuming_from_two`], after an earlier run left chunks `0..held` in the output:
/// all but the runs' first chunks are taken, and every one of them is claimed.
fn resumed_from_two(held: u32) -> (Vec<u8>, Net, Vec<u32>) {
    let (d, mut net) = resuming_from_two();
    net.output = d.clone();
    let held: Vec<u32> = (0..held).collect();
    for &i in &held {
        let at = i as usize * 1000;
        assert_eq!(net.puller.resume_chunk(i, &d[at..at + 1000]), i % 64 != 0);
    }
    assert_eq!(claimed(&net.puller, 640), held);
    (d, net, held)
}

/// A run's first chunk, fetched again by whichever source, stays claimed for a
/// record of the output until its verdict: the output holds one copy or the other.
#[test]
fn a_runs_first_chunk_stays_claimed_until_its_verdict_whichever_source_brings_it() {
    let (d, mut net, held) = resumed_from_two(400);
    // The checker is behind: every run with kept chunks goes out, no verdict comes.
    net.hold_verdicts = true;
    net.run_until(|n| {
        n.events
            .iter()
            .filter(|e| matches!(e, PullerEvent::Kept { .. }))
            .count()
            == 7
    });
    assert_eq!(claimed(&net.puller, 640), held);
    net.hold_verdicts = false;
    net.run();
    assert!(net.complete(), "{:?}", net.events.last());
    assert_eq!(net.output, d);
    assert!(net.puller.kept_bitmap().iter().all(|&w| w == 0));
    assert_eq!(claimed(&net.puller, 640), (0..640).collect::<Vec<_>>());
}

/// A verdict on a run's first chunk that no source handed out is stray: it ends
/// neither the chunk's claim in a record of the output nor anything else, and the
/// pull goes on to fetch and judge the chunk as before.
#[test]
fn a_stray_verdict_on_a_runs_first_chunk_leaves_its_claim() {
    let (d, mut net, held) = resumed_from_two(400);
    let now = net.now;
    net.puller
        .handle_verdict(now, 0, crate::puller::Verdict::Verified);
    net.puller
        .handle_verdict(now, 64, crate::puller::Verdict::Failed);
    assert_eq!(claimed(&net.puller, 640), held);
    net.run();
    assert!(net.complete(), "{:?}", net.events.last());
    assert_eq!(net.output, d);
    assert_eq!(claimed(&net.puller, 640), (0..640).collect::<Vec<_>>());
}

/// Resuming with proofs from several sources: the kept chunks wait for their runs'
/// first chunks, whichever source brings them; no source asks for them meanwhile;
/// one spoiled on disk fails with the part of its run the first chunk's proof
/// shows wrong, and that part is fetched again.
#[test]
fn kept_chunks_are_judged_with_their_runs_whichever_source_brings_the_first() {
    let (d, mut net) = resuming_from_two();
    // An earlier run kept chunks 0..400; chunk 130 was spoiled on disk since.
    let mut earlier = d.clone();
    earlier[130_500] ^= 0x5a;
    earlier[400_000..].fill(0);
    net.output = earlier.clone();
    let taken: Vec<u32> = (0..400u32)
        .filter(|&i| {
            let at = i as usize * 1000;
            net.puller.resume_chunk(i, &earlier[at..at + 1000])
        })
        .collect();
    // Every chunk but the first of each run of 64, which is fetched with its proof.
    let heads: Vec<u32> = (0..400).step_by(64).collect();
    assert_eq!(
        taken,
        (0..400)
            .filter(|i| !heads.contains(i))
            .collect::<Vec<u32>>()
    );
    // Until judged, all of it is still claimed for a record of the output.
    assert_eq!(claimed(&net.puller, 640).len(), 400);
    net.run();
    assert!(net.complete(), "{:?}", net.events.last());
    assert_eq!(net.output, d);
    let s = net.puller.stats();
    // Chunk 130 is in run 128..192; the proof of chunk 128 vouches for 130..132 as
    // one node, which fails whole.
    assert_eq!(s.repaired_chunks, 2, "{s:?}");
    assert_eq!(s.chunks_resumed, taken.len() as u64 - 2, "{s:?}");
    assert_eq!(s.chunks_received, 640);
    assert_eq!(s.offloaded_checks, 640, "{s:?}");
    assert_eq!(s.merkle_failures, 0);
    // Nothing kept was asked for but the two fetched again.
    assert!(
        s.chunks_requested <= 640 - taken.len() as u64,
        "{} kept: {s:?}",
        taken.len()
    );
    // Once each, in the order the sources brought the runs' first chunks.
    let mut kept: Vec<(u32, u32)> = net
        .events
        .iter()
        .filter_map(|e| match e {
            PullerEvent::Kept { first, members } => Some((*first, members.count_ones())),
            _ => None,
        })
        .collect();
    kept.sort_unstable();
    assert_eq!(
        kept,
        [
            (0, 63),
            (64, 63),
            (128, 63),
            (192, 63),
            (256, 63),
            (320, 63),
            (384, 15)
        ]
    );
    assert!(net.puller.kept_bitmap().iter().all(|&w| w == 0));
    assert_eq!(claimed(&net.puller, 640).len(), 640);
    for r in net.puller.sources() {
        assert!(r.delivered > 0, "{:?}", net.puller.sources());
    }
}

/// The first source named may be the last to answer, or never answer: the Merkle
/// scheme a driver needs at the Manifest is that of a source whose Manifest was
/// taken.
#[test]
fn the_scheme_comes_from_a_source_that_answered() {
    let d = data(300_000);
    let e = exposure(&d, 1024);
    let mut net = Net::new(&[e.clone(), e], RATE, config(true), 1024);
    net.sources[0].silent_from = Some(Instant::ZERO);
    net.until_manifest();
    assert_eq!(net.puller.sources()[0].state, SourceState::Connecting);
    assert!(net.puller.hash_scheme().is_some());
    net.run();
    assert!(net.complete(), "{:?}", net.events.last());
    assert_eq!(net.output, d);
}

/// A source may send chunks it was not asked for. A copy of a chunk whose verdict on
/// another source's copy is still to come is not handed on: the driver's checker
/// writes what it is given, and a chunk that passed passes again, so a key holder's
/// copy handed on after the real one passed would be written unchecked.
#[test]
fn a_copy_of_a_chunk_judged_elsewhere_is_not_handed_on() {
    let d = data(200_000);
    let e = exposure_with_proofs(&d, PROOF_CHUNK);
    let mut net = Net::new(&[e.clone(), e.clone()], RATE, offloading(), PROOF_CHUNK);
    net.until_manifest();
    assert!(
        net.puller
            .sources()
            .iter()
            .all(|s| s.state == SourceState::Active),
        "{:?}",
        net.puller.sources()
    );
    let now = net.now;
    let x = 10;
    let mut real = e.packet(x).to_vec();
    let got = net.puller.handle_datagram(now, peer(0), &mut real);
    assert!(got.is_some_and(|c| c.index == x && c.unverified));
    let mut forged = e.packet(x).to_vec();
    assert!(forge_keeping_the_proof(&mut forged, x));

    assert!(net
        .puller
        .handle_datagram(now, peer(1), &mut forged.clone())
        .is_none());
    // Once the real copy passed, the chunk is held by both.
    net.puller
        .handle_verdict(now, x, crate::puller::Verdict::Verified);
    assert!(net.puller.received_bitmap()[0] & (1 << x) != 0);
    assert!(net
        .puller
        .handle_datagram(now, peer(1), &mut forged)
        .is_none());
    assert_eq!(net.puller.sources()[0].delivered, 1);
}
