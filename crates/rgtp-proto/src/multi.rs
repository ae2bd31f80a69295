//! Pulling one exposure from several exposers at once.
//!
//! A [`MultiPuller`] runs one [`Puller`] per source (its own handshake, token,
//! window, RTT, loss detection and rate) and schedules the chunks between them:
//! each source is given batches of chunks (whole FEC blocks) as its backlog runs
//! low, so a fast source takes more than a slow one; a chunk one source delivers
//! is taken as held by all the others; at the end, a source with nothing left to
//! do takes over chunks another has not requested yet. Every chunk is verified
//! whatever its source (the AEAD, and the Merkle proof when proofs are in use),
//! and the root is checked once over the whole.
//!
//! A source is dropped, and the chunks it owed are given to the others, when it
//! sends chunks that fail verification (a lying or corrupting source), when it
//! delivers nothing for [`MultiConfig::stall_timeout`] while it owes chunks and
//! others are there to take them, when it serves a different exposure (another
//! Manifest), or when its own pull fails. The pull fails only when no source is
//! left.
//!
//! Under [`PullerConfig::offload_proofs`] every source hands its chunks out
//! unverified, and the driver's one checker judges them whichever source brought
//! them: [`MultiPuller::handle_verdict`] gives each verdict to the source that
//! handed the chunk out. Chunks kept from an earlier run
//! ([`MultiPuller::resume_chunk`]) are judged here, with their proof runs, once
//! any source hands out a run's first chunk ([`PullerEvent::Kept`]).
//!
//! With one source, a multi-source pull is that source's [`Puller`], unchanged.

use std::collections::VecDeque;
use std::ops::Range;
use std::time::Duration;

use redgiant_base::{DatagramEndpoint, Endpoint, Instant, Peer, Transmit};
use rgtp_wire::{Hash, HASH_LEN};

use crate::latency::Latency;
use crate::puller::{ones, Delivered, Judged, KeptRuns, ManifestInfo, PullError, Verdict};
use crate::{FecScheme, Puller, PullerConfig, PullerEvent, PullerStats, SuiteFactory};

/// What a multi-source pull's driver and application need from a pull, whether one
/// source's ([`Puller`]) or several ([`MultiPuller`]).
pub trait Pull:
    for<'d> DatagramEndpoint<Event = PullerEvent, Delivery<'d> = Delivered<'d>>
{
    /// The Merkle scheme the accepted Manifest selected.
    type Hash: crate::MerkleScheme + Clone;

    /// The accepted Manifest, once there is one.
    fn manifest(&self) -> Option<ManifestInfo>;
    /// Counters (for several sources: summed, with chunks counted once).
    fn stats(&self) -> PullerStats;
    /// Fraction of chunks accepted, in [0, 1].
    fn progress(&self) -> f32;
    /// True once the pull completed or failed.
    fn is_finished(&self) -> bool;
    /// The Merkle scheme, for the driver's deferred root check.
    fn hash_scheme(&self) -> Option<&Self::Hash>;
    /// The leaves of the output, after [`PullerEvent::VerifyRoot`].
    fn handle_leaves(&mut self, leaves: Vec<Hash>);
    /// The leaves of the output and their root (see [`Puller::handle_leaves_with_root`]).
    fn handle_leaves_with_root(&mut self, leaves: Vec<Hash>, root: Hash);
    /// Whether the driver checks the root over the output at the end
    /// ([`PullerEvent::VerifyRoot`]), so it may hash leaves as chunks arrive.
    fn deferred_root(&self) -> bool;
    /// Takes chunk `idx` from an earlier run's output (see [`Puller::resume_chunk`]).
    fn resume_chunk(&mut self, idx: u32, data: &[u8]) -> bool;
    /// One bit per chunk accepted so far.
    fn received_bitmap(&self) -> &[u64];
    /// One bit per chunk taken from an earlier run and not judged yet (see
    /// [`Puller::kept_bitmap`]): still held, for a record of the output.
    fn kept_bitmap(&self) -> &[u64];
    /// The driver's verdict on a chunk handed out unverified (see
    /// [`Puller::handle_verdict`]).
    fn handle_verdict(&mut self, now: Instant, idx: u32, verdict: Verdict);
    /// True once proofs were negotiated and the driver is to check them
    /// ([`PullerConfig::offload_proofs`]).
    fn offloads_proofs(&self) -> bool;
    /// The root the driver's [`ProofChecker`](crate::puller::ProofChecker) folded
    /// over an offloaded pull's chunks, after [`PullerEvent::VerifyRoot`] (see
    /// [`Puller::handle_root`]).
    fn handle_root(&mut self, root: &Hash);
}

impl<S: SuiteFactory> Pull for Puller<S> {
    type Hash = S::Hash;

    fn manifest(&self) -> Option<ManifestInfo> {
        Puller::manifest(self)
    }
    fn stats(&self) -> PullerStats {
        Puller::stats(self)
    }
    fn progress(&self) -> f32 {
        Puller::progress(self)
    }
    fn is_finished(&self) -> bool {
        Puller::is_finished(self)
    }
    fn hash_scheme(&self) -> Option<&S::Hash> {
        Puller::hash_scheme(self)
    }
    fn handle_leaves(&mut self, leaves: Vec<Hash>) {
        Puller::handle_leaves(self, leaves)
    }
    fn handle_leaves_with_root(&mut self, leaves: Vec<Hash>, root: Hash) {
        Puller::handle_leaves_with_root(self, leaves, root)
    }
    fn deferred_root(&self) -> bool {
        self.config_deferred_root()
    }
    fn resume_chunk(&mut self, idx: u32, data: &[u8]) -> bool {
        Puller::resume_chunk(self, idx, data)
    }
    fn received_bitmap(&self) -> &[u64] {
        Puller::received_bitmap(self)
    }
    fn kept_bitmap(&self) -> &[u64] {
        Puller::kept_bitmap(self)
    }
    fn handle_verdict(&mut self, now: Instant, idx: u32, verdict: Verdict) {
        Puller::handle_verdict(self, now, idx, verdict)
    }
    fn offloads_proofs(&self) -> bool {
        Puller::offloads_proofs(self)
    }
    fn handle_root(&mut self, root: &Hash) {
        Puller::handle_root(self, root)
    }
}

/// How a multi-source pull schedules and judges its sources.
#[derive(Debug, Clone)]
pub struct MultiConfig {
    /// Chunks given to a source at a time (rounded up to whole FEC blocks).
    pub batch: u32,
    /// Chunks failing verification after which a source is dropped (when they are
    /// also more than a quarter of what it delivered).
    pub drop_after_failures: u64,
    /// A source that owes chunks and delivers none for this long is dropped, if
    /// another source is there to take its chunks.
    pub stall_timeout: Duration,
}

impl Default for MultiConfig {
    fn default() -> Self {
        MultiConfig {
            batch: 64,
            drop_after_failures: 8,
            stall_timeout: Duration::from_secs(2),
        }
    }
}

/// Why a source was dropped.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DropReason {
    /// It sent this many chunks that failed authentication or their Merkle proof.
    Forged(u64),
    /// It owed chunks and delivered none for [`MultiConfig::stall_timeout`].
    Stalled,
    /// Its Manifest describes another exposure than the first source's.
    OtherExposure,
    /// Its own pull failed.
    Failed(PullError),
}

impl core::fmt::Display for DropReason {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        match self {
            DropReason::Forged(n) => write!(f, "sent {n} chunks that failed verification"),
            DropReason::Stalled => f.write_str("stopped delivering"),
            DropReason::OtherExposure => f.write_str("serves another exposure"),
            DropReason::Failed(e) => write!(f, "{e}"),
        }
    }
}

/// Where a source stands.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SourceState {
    /// Waiting for its Manifest.
    Connecting,
    /// Serving chunks.
    Active,
    /// Dropped, and why.
    Dropped(DropReason),
}

/// One source of a multi-source pull, as reported.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct SourceReport {
    /// The exposer.
    pub peer: Peer,
    /// Where it stands.
    pub state: SourceState,
    /// Chunks it delivered first (verified).
    pub delivered: u64,
    /// Its own counters.
    pub stats: PullerStats,
}

struct Source<S: SuiteFactory> {
    puller: Puller<S>,
    state: SourceState,
    delivered: u64,
    last_delivery: Instant,
}

/// A pull of one exposure from several exposers; see the [module docs](self).
pub struct MultiPuller<S: SuiteFactory> {
    cfg: MultiConfig,
    sources: Vec<Source<S>>,
    /// The first source's Manifest, which every other must match.
    manifest: Option<ManifestInfo>,
    /// Lowest chunk never given to any source.
    next_unassigned: u32,
    /// Chunks given back by dropped sources, to give again.
    returned: VecDeque<Range<u32>>,
    /// One bit per chunk held (from any source, or resumed).
    held: Vec<u64>,
    held_count: u64,
    /// Leaves of the chunks held, to bring a late source up to date (none when the
    /// root is checked by the driver: the leaves are then all zero).
    leaves: Option<Vec<Hash>>,
    /// The source whose `VerifyRoot` was passed on: it checks the root.
    verifier: Option<usize>,
    /// Proofs are checked by the driver, whatever the source
    /// ([`PullerConfig::offload_proofs`]), once the first Manifest negotiated them.
    offload: bool,
    /// Offloading: chunks kept from an earlier run, judged with their proof runs
    /// (spec §3.6), whichever source hands out a run's first chunk.
    kept: KeptRuns,
    /// Kept chunks that passed with their runs, and that failed.
    kept_passed: u64,
    kept_failed: u64,
    /// When the first Manifest was taken, until the driver's next `handle_timeout`
    /// (due at once): no chunk is given to a source before the driver has taken the
    /// Manifest event and handed over what it holds already.
    manifest_turn: Option<Instant>,
    finished: bool,
    events: VecDeque<PullerEvent>,
    /// Next source to ask for a datagram.
    rr: usize,
    /// Datagrams from dropped sources or from no source.
    dropped_datagrams: u64,
    scratch: Vec<(u32, Hash)>,
}

impl<S: SuiteFactory + Clone> MultiPuller<S> {
    /// A pull of `cfg`'s exposure from each of `sources` (`cfg.exposer` is replaced by
    /// each in turn; `cfg.max_rate`, if set, is shared evenly between them). With one
    /// source (or none: `cfg.exposer`), this is that source's plain [`Puller`].
    pub fn new(
        cfg: PullerConfig,
        sources: &[Peer],
        multi: MultiConfig,
        factory: S,
        now: Instant,
    ) -> Self {
        let peers: Vec<Peer> = if sources.is_empty() {
            vec![cfg.exposer]
        } else {
            sources.to_vec()
        };
        let n = peers.len();
        let sources = peers
            .into_iter()
            .map(|peer| {
                let mut c = cfg.clone();
                c.exposer = peer;
                c.max_rate = cfg.max_rate.map(|r| (r / n as u64).max(1));
                let puller = if n == 1 {
                    Puller::new(c, factory.clone(), now)
                } else {
                    Puller::scheduled(c, factory.clone(), now)
                };
                Source {
                    puller,
                    state: SourceState::Connecting,
                    delivered: 0,
                    last_delivery: now,
                }
            })
            .collect();
        MultiPuller {
            cfg: multi,
            sources,
            manifest: None,
            next_unassigned: 0,
            returned: VecDeque::new(),
            held: Vec::new(),
            held_count: 0,
            leaves: None,
            verifier: None,
            offload: false,
            kept: KeptRuns::new(),
            kept_passed: 0,
            kept_failed: 0,
            manifest_turn: None,
            finished: false,
            events: VecDeque::new(),
            rr: 0,
            dropped_datagrams: 0,
            scratch: Vec::new(),
        }
    }
}

impl<S: SuiteFactory> MultiPuller<S> {
    fn solo(&self) -> bool {
        self.sources.len() == 1
    }

    fn live(&self, i: usize) -> bool {
        !matches!(self.sources[i].state, SourceState::Dropped(_))
    }

    fn active_count(&self) -> usize {
        self.sources
            .iter()
            .filter(|s| s.state == SourceState::Active)
            .count()
    }

    /// Each source: its address, state, what it delivered, its counters.
    pub fn sources(&self) -> Vec<SourceReport> {
        self.sources
            .iter()
            .map(|s| SourceReport {
                peer: s.puller.config_exposer(),
                state: s.state,
                delivered: if self.solo() {
                    s.puller.stats().chunks_received
                } else {
                    s.delivered
                },
                stats: s.puller.stats(),
            })
            .collect()
    }

    /// The accepted Manifest (the first source's).
    pub fn manifest(&self) -> Option<ManifestInfo> {
        if self.solo() {
            return self.sources[0].puller.manifest();
        }
        self.manifest
    }

    /// Counters summed over the sources, with each chunk counted once; RTT and loss
    /// are the mean over the active sources, the window their sum.
    pub fn stats(&self) -> PullerStats {
        if self.solo() {
            return self.sources[0].puller.stats();
        }
        let mut t = PullerStats::default();
        let mut active = 0u64;
        for s in &self.sources {
            let x = s.puller.stats();
            t.datagrams_sent += x.datagrams_sent;
            t.bytes_sent += x.bytes_sent;
            t.datagrams_received += x.datagrams_received;
            t.bytes_received += x.bytes_received;
            t.chunks_resumed += x.chunks_resumed;
            t.duplicates += x.duplicates;
            t.auth_failures += x.auth_failures;
            t.merkle_failures += x.merkle_failures;
            t.missing_proofs += x.missing_proofs;
            t.repaired_chunks += x.repaired_chunks;
            t.repair_fetches += x.repair_fetches;
            t.unproven_rebuilds += x.unproven_rebuilds;
            t.offloaded_checks += x.offloaded_checks;
            t.proof_run_members += x.proof_run_members;
            t.malformed += x.malformed;
            t.foreign += x.foreign;
            t.unexpected += x.unexpected;
            t.bad_manifests += x.bad_manifests;
            t.parity_received += x.parity_received;
            t.fec_recoveries += x.fec_recoveries;
            t.fec_failures += x.fec_failures;
            t.pull_requests_sent += x.pull_requests_sent;
            t.naks_sent += x.naks_sent;
            t.retransmit_naks += x.retransmit_naks;
            t.chunks_requested += x.chunks_requested;
            t.chunks_rerequested += x.chunks_rerequested;
            t.parity_requested += x.parity_requested;
            t.rate_reports_sent += x.rate_reports_sent;
            t.keepalives_sent += x.keepalives_sent;
            if s.state == SourceState::Active {
                active += 1;
                t.srtt_us += x.srtt_us;
                t.loss_rate += x.loss_rate;
                t.window += x.window;
            }
        }
        if let Some(srtt) = t.srtt_us.checked_div(active) {
            t.srtt_us = srtt;
            t.loss_rate /= active as f64;
        }
        t.foreign += self.dropped_datagrams;
        t.chunks_received = self.held_count;
        t.chunks_resumed += self.kept_passed;
        t.offloaded_checks += self.kept_passed;
        t.repaired_chunks += self.kept_failed;
        t
    }

    /// Fraction of chunks held, in [0, 1].
    pub fn progress(&self) -> f32 {
        if self.solo() {
            return self.sources[0].puller.progress();
        }
        if self.finished && self.events_complete() {
            return 1.0;
        }
        match self.manifest {
            Some(m) if m.chunk_count > 0 => self.held_count as f32 / m.chunk_count as f32,
            _ => 0.0,
        }
    }

    fn events_complete(&self) -> bool {
        self.verifier
            .map_or(self.sources.iter().any(|s| s.puller.is_complete()), |v| {
                self.sources[v].puller.is_complete()
            })
    }

    /// True once the pull completed or failed.
    pub fn is_finished(&self) -> bool {
        if self.solo() {
            return self.sources[0].puller.is_finished();
        }
        self.finished
    }

    /// True once every chunk is held and the root matched.
    pub fn is_complete(&self) -> bool {
        if self.solo() {
            return self.sources[0].puller.is_complete();
        }
        self.finished && self.events_complete()
    }

    /// The source checking the root, else the first active one (the first to answer
    /// need not be the first named), else the first whose Manifest was taken, even if
    /// dropped since, else the first live one.
    fn lead(&self) -> &Puller<S> {
        let n = self.sources.len();
        let i = self
            .verifier
            .or_else(|| (0..n).find(|&i| self.sources[i].state == SourceState::Active))
            .or_else(|| (0..n).find(|&i| self.sources[i].puller.manifest().is_some()))
            .or_else(|| (0..n).find(|&i| self.live(i)))
            .unwrap_or(0);
        &self.sources[i].puller
    }

    /// The Merkle scheme of the accepted Manifest (for deferred-root verification).
    pub fn hash_scheme(&self) -> Option<&S::Hash> {
        self.lead().hash_scheme()
    }

    /// Request-to-arrival latency at the lead source.
    pub fn latency(&self) -> &Latency {
        self.lead().latency()
    }

    /// The rate the lead source's requests are paced at (see [`Puller::rate_limit`]).
    pub fn rate_limit(&self) -> Option<u64> {
        self.lead().rate_limit()
    }

    /// What the pull would fail with if it stalled now (see [`Puller::stall_error`]).
    pub fn stall_error(&self) -> Option<PullError> {
        self.lead().stall_error()
    }

    /// One bit per chunk held so far.
    pub fn received_bitmap(&self) -> &[u64] {
        if self.solo() {
            return self.sources[0].puller.received_bitmap();
        }
        &self.held
    }

    /// One bit per chunk taken from an earlier run and not judged yet (see
    /// [`Puller::kept_bitmap`]).
    pub fn kept_bitmap(&self) -> &[u64] {
        if self.solo() {
            return self.sources[0].puller.kept_bitmap();
        }
        self.kept.bitmap()
    }

    /// Completes a deferred-root pull (see [`Puller::handle_leaves`]): given to the
    /// source that asked.
    pub fn handle_leaves(&mut self, leaves: Vec<Hash>) {
        self.check_leaves(leaves, None)
    }

    /// [`MultiPuller::handle_leaves`] with their root (see [`Puller::handle_leaves_with_root`]).
    pub fn handle_leaves_with_root(&mut self, leaves: Vec<Hash>, root: Hash) {
        self.check_leaves(leaves, Some(root))
    }

    fn check_leaves(&mut self, leaves: Vec<Hash>, root: Option<Hash>) {
        let v = if self.solo() {
            0
        } else {
            match self.verifier {
                Some(v) => v,
                None => return,
            }
        };
        let p = &mut self.sources[v].puller;
        match root {
            Some(root) => p.handle_leaves_with_root(leaves, root),
            None => p.handle_leaves(leaves),
        }
        if !self.solo() {
            self.pump(None);
        }
    }

    /// Completes a pull whose proofs the driver checked (see [`Puller::handle_root`]):
    /// given to the source whose [`PullerEvent::VerifyRoot`] was passed on.
    pub fn handle_root(&mut self, root: &Hash) {
        if self.solo() {
            return self.sources[0].puller.handle_root(root);
        }
        if let Some(v) = self.verifier {
            self.sources[v].puller.handle_root(root);
            self.pump(None);
        }
    }

    /// True once proofs were negotiated and the driver checks them, for every source
    /// ([`PullerConfig::offload_proofs`]).
    pub fn offloads_proofs(&self) -> bool {
        if self.solo() {
            return self.sources[0].puller.offloads_proofs();
        }
        self.offload
    }

    /// Takes chunk `idx` from an earlier run's output (see [`Puller::resume_chunk`]);
    /// every source then holds it. Offloading, it is judged with its proof run once
    /// some source hands out the run's first chunk ([`PullerEvent::Kept`]), and until
    /// its verdict no source asks for it.
    pub fn resume_chunk(&mut self, idx: u32, data: &[u8]) -> bool {
        if self.solo() {
            return self.sources[0].puller.resume_chunk(idx, data);
        }
        if self.offload {
            return self.keep(idx, data);
        }
        let Some(i) = (0..self.sources.len()).find(|&i| {
            self.sources[i].state == SourceState::Active && self.sources[i].puller.transferring()
        }) else {
            return false;
        };
        let now = self.sources[i].last_delivery;
        let took = self.sources[i].puller.resume_chunk(idx, data);
        if took {
            let before = self.sources[i].delivered;
            self.sync(i, now);
            // Resumed, not delivered by the source.
            self.sources[i].delivered = before;
        }
        took
    }

    /// [`MultiPuller::resume_chunk`] under offloaded proofs.
    fn keep(&mut self, idx: u32, data: &[u8]) -> bool {
        let Some(m) = self.manifest else { return false };
        let start = u64::from(idx) * u64::from(m.chunk_size);
        if self.finished
            || idx >= m.chunk_count
            || self.is_held(idx)
            || self.kept.claims(idx)
            // Given to a source already: it may be on its way.
            || idx < self.next_unassigned
            || data.len() as u64 != u64::from(m.chunk_size).min(m.total_size - start)
        {
            return false;
        }
        // A run's first chunk is fetched again, with its proof (claimed until its
        // new copy is judged); once it is in hand, its run's kept chunks would never
        // go out.
        let head = self.kept.head_of(idx);
        let in_hand = self.is_held(head)
            || head < self.next_unassigned
            || self.sources.iter().any(|s| s.puller.awaits_verdict(head));
        if !self.kept.keep(idx, in_hand) {
            return false;
        }
        for s in &mut self.sources {
            s.puller.hold_for_verdict(idx, true);
        }
        true
    }

    /// Once chunk `idx` was handed out unverified by any source: if it heads a proof
    /// run with kept chunks, hands those out to be judged with it.
    fn release_kept(&mut self, idx: u32) {
        if let Some(kept) = self.kept.release(idx) {
            self.events.push_back(kept);
        }
    }

    /// The driver's verdict on chunk `idx` (see [`Puller::handle_verdict`]): a kept
    /// chunk is judged here, any other goes to the source that handed it out.
    pub fn handle_verdict(&mut self, now: Instant, idx: u32, verdict: Verdict) {
        if self.solo() {
            return self.sources[0].puller.handle_verdict(now, idx, verdict);
        }
        if !self.offload || self.finished {
            return;
        }
        // A run's first chunk is judged through the source that handed it out: a
        // verdict none awaits is stray, and must not end its claim in the record.
        if self.kept.head_of(idx) == idx
            && !self.sources.iter().any(|s| s.puller.awaits_verdict(idx))
        {
            return;
        }
        let judged = self.kept.judge(idx);
        if judged == Judged::NotHandedOut {
            // Not handed out yet: no verdict can be due.
            return;
        }
        if judged == Judged::Kept {
            for s in &mut self.sources {
                s.puller.hold_for_verdict(idx, false);
            }
            if verdict == Verdict::Verified {
                self.kept_passed += 1;
                self.take_as_held(None, idx, [0; HASH_LEN], now);
            } else {
                // Spoiled on disk since: fetched again, with its proof.
                if verdict == Verdict::Failed {
                    self.kept_failed += 1;
                }
                self.give_back(idx);
            }
        } else {
            for i in 0..self.sources.len() {
                if !self.sources[i].puller.awaits_verdict(idx) {
                    continue;
                }
                if self.live(i) {
                    self.sources[i].puller.handle_verdict(now, idx, verdict);
                    self.sync(i, now);
                    self.judge(i, now);
                } else {
                    // From a source dropped since: what passed is as good as any.
                    self.sources[i].puller.hold_for_verdict(idx, false);
                    if verdict == Verdict::Verified {
                        self.take_as_held(None, idx, [0; HASH_LEN], now);
                    } else {
                        self.returned.push_back(idx..idx + 1);
                    }
                }
            }
        }
        self.pump(Some(now));
    }

    /// True if chunk `idx`, just handed out unverified by source `i`, is held already
    /// or waits for a verdict on another source's copy (a source may send chunks it
    /// was not asked for): then it is not handed on, and `i` forgets it. The checker
    /// sees one copy of a chunk at a time, so a copy it judges is the one written.
    fn judged_elsewhere(&mut self, i: usize, idx: u32) -> bool {
        let elsewhere = self.is_held(idx)
            || (0..self.sources.len())
                .any(|j| j != i && self.sources[j].puller.awaits_verdict(idx));
        if elsewhere {
            self.sources[i].puller.hold_for_verdict(idx, false);
        }
        elsewhere
    }

    /// Chunk `idx` is to be fetched again: by a source fetching, with its proof.
    fn give_back(&mut self, idx: u32) {
        let fetching = (0..self.sources.len()).find(|&i| {
            self.sources[i].state == SourceState::Active && self.sources[i].puller.transferring()
        });
        match fetching {
            Some(i) => self.sources[i].puller.refetch(idx),
            None => self.returned.push_back(idx..idx + 1),
        }
    }

    /// Handles one datagram, given to the source it came from.
    pub fn handle_datagram<'d>(
        &mut self,
        now: Instant,
        from: Peer,
        data: &'d mut [u8],
    ) -> Option<Delivered<'d>> {
        if self.solo() {
            return self.sources[0].puller.handle_datagram(now, from, data);
        }
        if self.finished {
            // A source that answers late must not hand out chunks after the end.
            return None;
        }
        let Some(i) = self
            .sources
            .iter()
            .position(|s| s.puller.config_exposer() == from)
            .filter(|&i| self.live(i))
        else {
            self.dropped_datagrams += 1;
            return None;
        };
        let mut d = self.sources[i].puller.handle_datagram(now, from, data);
        if d.as_ref()
            .is_some_and(|d| d.unverified && self.judged_elsewhere(i, d.index))
        {
            d = None;
        }
        self.sync(i, now);
        self.judge(i, now);
        self.pump(Some(now));
        if let Some(d) = d.as_ref().filter(|d| d.unverified) {
            self.release_kept(d.index);
        }
        // A chunk from a source just dropped for lying is still verified: keep it.
        d
    }

    /// Runs every source's expired timers, and drops stalled sources.
    pub fn handle_timeout(&mut self, now: Instant) {
        if self.solo() {
            return self.sources[0].puller.handle_timeout(now);
        }
        self.manifest_turn = None;
        for i in 0..self.sources.len() {
            if self.live(i) {
                self.sources[i].puller.handle_timeout(now);
            }
        }
        self.pump(Some(now));
        if self.active_count() > 1 {
            for i in 0..self.sources.len() {
                if self.stalled(i, now) {
                    self.drop_source(i, DropReason::Stalled);
                    if self.active_count() <= 1 {
                        break;
                    }
                }
            }
        }
    }

    fn stalled(&self, i: usize, now: Instant) -> bool {
        let s = &self.sources[i];
        s.state == SourceState::Active
            && s.puller.transferring()
            && s.puller.backlog() > 0
            && now.saturating_since(s.last_delivery) >= self.cfg.stall_timeout
    }

    /// The earliest deadline of any source (and of the stall check).
    #[must_use]
    pub fn poll_timeout(&self) -> Option<Instant> {
        if self.solo() {
            return self.sources[0].puller.poll_timeout();
        }
        if self.finished {
            return None;
        }
        let multi = self.active_count() > 1;
        (0..self.sources.len())
            .filter(|&i| self.live(i))
            .flat_map(|i| {
                let s = &self.sources[i];
                let stall = (multi
                    && s.state == SourceState::Active
                    && s.puller.transferring()
                    && s.puller.backlog() > 0)
                    .then(|| s.last_delivery + self.cfg.stall_timeout);
                s.puller.poll_timeout().into_iter().chain(stall)
            })
            .chain(self.manifest_turn)
            .min()
    }

    /// The next event, if any.
    #[must_use]
    pub fn poll_event(&mut self) -> Option<PullerEvent> {
        if self.solo() {
            return self.sources[0].puller.poll_event();
        }
        self.events.pop_front()
    }

    /// Writes the next datagram to send into `buf`: the sources take turns.
    #[must_use]
    pub fn poll_transmit(&mut self, now: Instant, buf: &mut Vec<u8>) -> Option<Transmit> {
        if self.solo() {
            return self.sources[0].puller.poll_transmit(now, buf);
        }
        if self.finished {
            return None;
        }
        self.schedule();
        let n = self.sources.len();
        for k in 0..n {
            let i = (self.rr + k) % n;
            if !self.live(i) {
                continue;
            }
            if let Some(t) = self.sources[i].puller.poll_transmit(now, buf) {
                self.rr = (i + 1) % n;
                return Some(t);
            }
        }
        None
    }

    /// Chunks per assignment: the batch, in whole FEC blocks.
    fn batch(&self) -> u32 {
        let k = self
            .manifest
            .filter(|m| m.suite.fec.scheme != FecScheme::None)
            .map_or(1, |m| u32::from(m.suite.fec.k).max(1));
        self.cfg.batch.max(1).div_ceil(k) * k
    }

    /// The next chunks no source was given yet.
    fn next_batch(&mut self) -> Option<Range<u32>> {
        if let Some(r) = self.returned.pop_front() {
            return Some(r);
        }
        let count = self.manifest?.chunk_count;
        // Skip what is held already (resumed).
        while self.next_unassigned < count && self.is_held(self.next_unassigned) {
            self.next_unassigned += 1;
        }
        if self.next_unassigned >= count {
            return None;
        }
        let batch = self.batch();
        // Batches start on block boundaries: round the end up to the next boundary.
        let end = ((self.next_unassigned / batch + 1) * batch).min(count);
        let r = self.next_unassigned..end;
        self.next_unassigned = end;
        Some(r)
    }

    /// Tops up every active source to about two windows of owed chunks; once nothing
    /// is left to give, an idle source takes half of what another has not requested.
    fn schedule(&mut self) {
        if self.manifest.is_none() || self.manifest_turn.is_some() {
            return;
        }
        for i in 0..self.sources.len() {
            let s = &self.sources[i];
            if s.state != SourceState::Active || !s.puller.transferring() {
                continue;
            }
            let target = (2 * s.puller.congestion().1 as usize).max(self.batch() as usize);
            while self.sources[i].puller.backlog() < target {
                if let Some(r) = self.next_batch() {
                    self.sources[i].puller.assign(r);
                    continue;
                }
                // Endgame: take from the source with the most not yet requested.
                let donor = (0..self.sources.len())
                    .filter(|&j| j != i && self.sources[j].state == SourceState::Active)
                    .max_by_key(|&j| self.sources[j].puller.unrequested());
                let Some(j) = donor else { break };
                let spare = self.sources[j].puller.unrequested() as u32;
                if spare < 2 || self.sources[i].puller.backlog() > 0 {
                    break;
                }
                match self.sources[j].puller.steal(spare / 2) {
                    Some(r) => self.sources[i].puller.assign(r),
                    None => break,
                }
            }
        }
    }

    fn is_held(&self, idx: u32) -> bool {
        self.held
            .get(idx as usize / 64)
            .is_some_and(|w| w & (1 << (idx % 64)) != 0)
    }

    /// Takes what source `i` accepted and gives it to every other source as held.
    fn sync(&mut self, i: usize, now: Instant) {
        self.scratch.clear();
        self.sources[i].puller.take_accepted(&mut self.scratch);
        if self.scratch.is_empty() {
            return;
        }
        let accepted = std::mem::take(&mut self.scratch);
        for &(idx, leaf) in &accepted {
            self.take_as_held(Some(i), idx, leaf, now);
        }
        self.scratch = accepted;
    }

    /// Holds chunk `idx`, which source `from` accepted (`None`: kept from an earlier
    /// run, or from a source dropped since), and gives it to every other source.
    fn take_as_held(&mut self, from: Option<usize>, idx: u32, leaf: Hash, now: Instant) {
        if self.is_held(idx) || idx as usize / 64 >= self.held.len() {
            return;
        }
        self.held[idx as usize / 64] |= 1 << (idx % 64);
        self.held_count += 1;
        if let Some(l) = self.leaves.as_mut() {
            l[idx as usize] = leaf;
        }
        if let Some(i) = from {
            self.sources[i].delivered += 1;
            self.sources[i].last_delivery = now;
        }
        for (j, s) in self.sources.iter_mut().enumerate() {
            if Some(j) != from && s.state == SourceState::Active {
                s.puller.accept_elsewhere(now, idx, leaf);
            }
        }
    }

    /// Drops source `i` if it sent too many chunks that failed verification.
    fn judge(&mut self, i: usize, _now: Instant) {
        if !self.live(i) {
            return;
        }
        let s = &self.sources[i];
        let x = s.puller.stats();
        let failures = x.auth_failures + x.merkle_failures + x.missing_proofs;
        if failures >= self.cfg.drop_after_failures && failures * 4 > s.delivered {
            self.drop_source(i, DropReason::Forged(failures));
        }
    }

    /// Drops source `i`: what it owed goes back to be given to the others.
    fn drop_source(&mut self, i: usize, why: DropReason) {
        if !self.live(i) {
            return;
        }
        tracing::debug!(source = ?self.sources[i].puller.config_exposer(), reason = %why, "source dropped");
        self.sources[i].state = SourceState::Dropped(why);
        let owed = self.sources[i].puller.take_back();
        let mut it = owed.into_iter();
        if let Some(first) = it.next() {
            let mut r = first..first + 1;
            for x in it {
                if x == r.end {
                    r.end += 1;
                } else {
                    self.returned.push_back(r);
                    r = x..x + 1;
                }
            }
            self.returned.push_back(r);
        }
        if self.verifier == Some(i) {
            // The root check cannot move: the pull ends with the source's failure.
            self.fail(match why {
                DropReason::Failed(e) => e,
                _ => PullError::MerkleFailed,
            });
            return;
        }
        if !(0..self.sources.len()).any(|j| self.live(j)) {
            self.fail(match why {
                DropReason::Failed(e) => e,
                DropReason::Forged(_) => PullError::AuthFailed,
                DropReason::OtherExposure => PullError::BadManifest,
                DropReason::Stalled => PullError::Timeout,
            });
        }
    }

    fn fail(&mut self, e: PullError) {
        if !self.finished {
            self.finished = true;
            self.events.push_back(PullerEvent::Failed(e));
        }
    }

    /// Takes every source's events: the first Manifest and the first root check pass
    /// on, later Manifests must match the first, a source's failure drops it. The end
    /// passes on last: a source may complete on chunks another rebuilt, whose
    /// [`PullerEvent::Recovered`] still waits in that other's queue.
    fn pump(&mut self, now: Option<Instant>) {
        let mut complete = false;
        for i in 0..self.sources.len() {
            while let Some(ev) = self.sources[i].puller.poll_event() {
                // A source dropped by the datagram that made it rebuild chunks still
                // hands them out: they were taken as held just before.
                let rebuilt = matches!(ev, PullerEvent::Recovered { .. });
                if self.finished || !(self.live(i) || rebuilt) {
                    continue;
                }
                match ev {
                    PullerEvent::Manifest(info) => self.on_manifest(i, info, now),
                    PullerEvent::Recovered {
                        index,
                        unverified: true,
                        ..
                    } => {
                        if !self.judged_elsewhere(i, index) {
                            self.events.push_back(ev);
                            self.release_kept(index);
                        }
                    }
                    PullerEvent::Recovered { .. } | PullerEvent::Kept { .. } => {
                        self.events.push_back(ev)
                    }
                    PullerEvent::VerifyRoot => {
                        if self.verifier.is_none() {
                            self.verifier = Some(i);
                            self.events.push_back(ev);
                        }
                    }
                    PullerEvent::Complete => {
                        if self.verifier.is_none_or(|v| v == i) {
                            self.verifier = Some(i);
                            complete = true;
                        }
                    }
                    // Once complete, a source's own failure changes nothing.
                    PullerEvent::Failed(_) if complete => {}
                    PullerEvent::Failed(e) => self.drop_source(i, DropReason::Failed(e)),
                }
            }
            if let Some(now) = now {
                self.sync(i, now);
            }
        }
        if complete && !self.finished {
            self.finished = true;
            self.events.push_back(PullerEvent::Complete);
        }
    }

    fn on_manifest(&mut self, i: usize, info: ManifestInfo, now: Option<Instant>) {
        let now = now.unwrap_or(self.sources[i].last_delivery);
        match self.manifest {
            None => {
                self.manifest = Some(info);
                let words = (info.chunk_count as usize).div_ceil(64);
                self.held = vec![0; words];
                let deferred = self.sources[i].puller.config_deferred_root();
                // Offloading, the driver folds the tree: no leaves are kept here.
                self.offload = self.sources[i].puller.offloads_proofs();
                let run_len = self.sources[i].puller.run_len();
                self.kept.size_for(info.chunk_count, run_len, self.offload);
                self.leaves = (!deferred && !self.offload)
                    .then(|| vec![[0; HASH_LEN]; info.chunk_count as usize]);
                self.sources[i].state = SourceState::Active;
                self.sources[i].last_delivery = now;
                self.manifest_turn = Some(now);
                self.events.push_back(PullerEvent::Manifest(info));
            }
            Some(m) => {
                let same = m.exposure_id == info.exposure_id
                    && m.total_size == info.total_size
                    && m.chunk_count == info.chunk_count
                    && m.chunk_size == info.chunk_size
                    && m.merkle_root == info.merkle_root
                    && m.suite == info.suite;
                if !same {
                    self.drop_source(i, DropReason::OtherExposure);
                    return;
                }
                self.sources[i].state = SourceState::Active;
                self.sources[i].last_delivery = now;
                // Bring it up to date with what the others delivered.
                for idx in ones(&self.held) {
                    let leaf = self
                        .leaves
                        .as_ref()
                        .map_or([0; HASH_LEN], |l| l[idx as usize]);
                    self.sources[i].puller.accept_elsewhere(now, idx, leaf);
                }
                // Kept chunks waiting for their runs are judged here, not asked for.
                for idx in self.kept.unjudged() {
                    self.sources[i].puller.hold_for_verdict(idx, true);
                }
            }
        }
    }
}

impl<S: SuiteFactory> Endpoint for MultiPuller<S> {
    type Event = PullerEvent;
    /// A verified chunk, decrypted in place in the receive buffer.
    type Delivery<'d> = Delivered<'d>;

    fn handle_timeout(&mut self, now: Instant) {
        MultiPuller::handle_timeout(self, now)
    }

    fn poll_transmit(&mut self, now: Instant, buf: &mut Vec<u8>) -> Option<Transmit> {
        MultiPuller::poll_transmit(self, now, buf)
    }

    fn poll_timeout(&self) -> Option<Instant> {
        MultiPuller::poll_timeout(self)
    }

    fn poll_event(&mut self) -> Option<PullerEvent> {
        MultiPuller::poll_event(self)
    }
}

impl<S: SuiteFactory> DatagramEndpoint for MultiPuller<S> {
    fn handle_datagram<'d>(
        &mut self,
        now: Instant,
        from: Peer,
        data: &'d mut [u8],
    ) -> Option<Delivered<'d>> {
        MultiPuller::handle_datagram(self, now, from, data)
    }
}

impl<S: SuiteFactory> Pull for MultiPuller<S> {
    type Hash = S::Hash;

    fn manifest(&self) -> Option<ManifestInfo> {
        MultiPuller::manifest(self)
    }
    fn stats(&self) -> PullerStats {
        MultiPuller::stats(self)
    }
    fn progress(&self) -> f32 {
        MultiPuller::progress(self)
    }
    fn is_finished(&self) -> bool {
        MultiPuller::is_finished(self)
    }
    fn hash_scheme(&self) -> Option<&S::Hash> {
        MultiPuller::hash_scheme(self)
    }
    fn handle_leaves(&mut self, leaves: Vec<Hash>) {
        MultiPuller::handle_leaves(self, leaves)
    }
    fn handle_leaves_with_root(&mut self, leaves: Vec<Hash>, root: Hash) {
        MultiPuller::handle_leaves_with_root(self, leaves, root)
    }
    fn deferred_root(&self) -> bool {
        self.lead().config_deferred_root()
    }
    fn resume_chunk(&mut self, idx: u32, data: &[u8]) -> bool {
        MultiPuller::resume_chunk(self, idx, data)
    }
    fn received_bitmap(&self) -> &[u64] {
        MultiPuller::received_bitmap(self)
    }
    fn kept_bitmap(&self) -> &[u64] {
        MultiPuller::kept_bitmap(self)
    }
    fn handle_verdict(&mut self, now: Instant, idx: u32, verdict: Verdict) {
        MultiPuller::handle_verdict(self, now, idx, verdict)
    }
    fn offloads_proofs(&self) -> bool {
        MultiPuller::offloads_proofs(self)
    }
    fn handle_root(&mut self, root: &Hash) {
        MultiPuller::handle_root(self, root)
    }
}
