//! The exposer: an immutable, pre-encrypted [`Exposure`] and the stateless
//! [`Exposer`] state machine that serves it.
//!
//! All cryptographic work happens once, in [`Exposure::build`]: every chunk is
//! sealed, the Merkle tree is built and FEC parity is computed. Serving is a
//! table look-up and a copy. The exposer keeps no per-puller state: a request
//! becomes a bounded job in a bounded queue, and a validated address is proven
//! by a token the puller echoes, not remembered (spec §5).
//!
//! # Calling order
//! After any `handle_*` call, drain [`Exposer::poll_transmit`] until it
//! returns `None`. [`Exposer::poll_timeout`] is always `None`: the exposer has
//! no timers. An extra [`Exposer::handle_timeout`] does nothing.
//!
//! # Layout
//! - `exposure`: the [`Exposure`] (sealing, tree, parity) and the packet each
//!   requested entry becomes;
//! - `budget`: the amplification budget of unvalidated addresses and the pull
//!   pressure;
//! - this module: the serving state machine, its configuration and counters.

use std::collections::VecDeque;
use std::sync::Arc;

use rgtp_wire::{
    ManifestFlags, Nak, NakFlags, PullFlags, PullRequest, Repr, Token, NAK_PARITY_BIT, PROOF_RUN,
    VERSION,
};

use crate::latency::Latency;
use crate::token::TokenKey;
use crate::{Peer, Transmit};
use redgiant_base::Instant;

mod budget;
mod exposure;

pub use self::exposure::{
    chunk_count, make_parity_entry, max_packet_len, parity_entry, plain_len, seal_chunks, slot_len,
    BuildError, ChunkStore, Exposure, MAX_CHUNK_SIZE, MAX_DATAGRAM,
};

use self::budget::{amplification_budget, Pressure};

/// A batch to send: its transmit and, when its bytes are not in the caller's buffer,
/// where in the exposure's store they lie.
type Batch = (Transmit, Option<core::ops::Range<usize>>);
use self::exposure::{emit_entry, entry_len};

/// Exposer settings.
#[derive(Debug, Clone)]
pub struct ExposerConfig {
    /// Most bytes sent per byte received from an unvalidated address (spec §5.2). Default 3.
    pub amplification_limit: usize,
    /// Most entries of one NAK that are served. Default 256.
    pub max_entries_per_request: usize,
    /// Most queued jobs; requests beyond are dropped and counted. Default 1024.
    pub queue_limit: usize,
    /// Most datagrams per [`Transmit`] (the link's GSO limit). Default 1.
    pub max_segments: usize,
    /// Most bytes per [`Transmit`], its datagrams together (the link's
    /// [`Capabilities::max_batch_bytes`](redgiant_base::link::Capabilities)): a
    /// batch that would pass it ends before, so that it goes out in one system
    /// call, never as a full send and a short one. Default `usize::MAX`.
    pub max_batch_bytes: usize,
    /// Largest payload accepted when parsing.
    pub max_payload: usize,
    /// Serve NAKs without a token as if validated, as upstream v1 exposers do.
    /// This lifts the amplification bound; use only on trusted networks.
    pub dangerous_serve_unvalidated: bool,
    /// Secret for address-validation tokens (spec §5.3). It must be one no
    /// puller can know: a secret derivable from the ticket lets every ticket
    /// holder mint tokens for any address. [`Exposer::new`] uses it as given
    /// (the core has no RNG); `rgtp`'s builder replaces the all-zero default
    /// with one drawn from a CSPRNG.
    pub token_secret: [u8; 32],
    /// The most bytes per second this exposer serves one puller (spec §8.3.3),
    /// stated in the Manifest to pullers that set PullFlags `RATE_CAP`, which then
    /// ask for no more. None: unlimited. A cap on the exposer's total is the
    /// driver's ([`redgiant_base::Paced`]); this one is each puller's.
    pub rate_cap: Option<u64>,
}

impl Default for ExposerConfig {
    fn default() -> Self {
        ExposerConfig {
            amplification_limit: 3,
            max_entries_per_request: 256,
            queue_limit: 1024,
            max_segments: 1,
            max_batch_bytes: usize::MAX,
            max_payload: 65_507,
            dangerous_serve_unvalidated: false,
            token_secret: [0; 32],
            rate_cap: None,
        }
    }
}

impl ExposerConfig {
    /// The defaults, fitted to the link the exposer serves on: as many datagrams
    /// and bytes a batch as one send of it carries, and its largest datagram as the
    /// largest request parsed.
    pub fn for_link(caps: &redgiant_base::link::Capabilities) -> Self {
        ExposerConfig {
            max_segments: caps.max_segments,
            max_batch_bytes: caps.max_batch_bytes,
            max_payload: caps.mtu,
            ..Self::default()
        }
    }
}

/// What the exposer did and what it dropped, and why.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct ExposerStats {
    /// Datagrams received.
    pub datagrams_in: u64,
    /// Bytes received.
    pub bytes_in: u64,
    /// Datagrams sent.
    pub datagrams_out: u64,
    /// Bytes sent.
    pub bytes_out: u64,
    /// Bytes received from unvalidated addresses.
    pub unvalidated_bytes_in: u64,
    /// Bytes sent in answer to unvalidated requests.
    pub unvalidated_bytes_out: u64,
    /// Pull_Requests answered with a Manifest.
    pub manifests_sent: u64,
    /// NAKs accepted (requests).
    pub requests: u64,
    /// Chunks sent.
    pub chunks_sent: u64,
    /// Parity shards sent.
    pub parity_sent: u64,
    /// Datagrams that failed to parse.
    pub malformed: u64,
    /// Datagrams for another exposure.
    pub unknown_exposure: u64,
    /// Pull_Requests with no version overlap (left unanswered).
    pub version_mismatch: u64,
    /// NAKs with a token that did not validate.
    pub bad_token: u64,
    /// Entries not served because the amplification budget ran out.
    pub over_budget: u64,
    /// Entries naming no chunk or parity shard.
    pub out_of_range: u64,
    /// Entries past the per-request limit.
    pub over_limit: u64,
    /// Requests dropped because the queue was full.
    pub busy: u64,
    /// Packet types an exposer never receives.
    pub unexpected: u64,
    /// Rate_Reports received.
    pub rate_reports: u64,
    /// Keepalives received.
    pub keepalives: u64,
}

impl core::ops::AddAssign for ExposerStats {
    /// Adds another exposer's counters (a router's total over its exposures).
    fn add_assign(&mut self, o: ExposerStats) {
        self.datagrams_in += o.datagrams_in;
        self.bytes_in += o.bytes_in;
        self.datagrams_out += o.datagrams_out;
        self.bytes_out += o.bytes_out;
        self.unvalidated_bytes_in += o.unvalidated_bytes_in;
        self.unvalidated_bytes_out += o.unvalidated_bytes_out;
        self.manifests_sent += o.manifests_sent;
        self.requests += o.requests;
        self.chunks_sent += o.chunks_sent;
        self.parity_sent += o.parity_sent;
        self.malformed += o.malformed;
        self.unknown_exposure += o.unknown_exposure;
        self.version_mismatch += o.version_mismatch;
        self.bad_token += o.bad_token;
        self.over_budget += o.over_budget;
        self.out_of_range += o.out_of_range;
        self.over_limit += o.over_limit;
        self.busy += o.busy;
        self.unexpected += o.unexpected;
        self.rate_reports += o.rate_reports;
        self.keepalives += o.keepalives;
    }
}

enum Job {
    Manifest {
        to: Peer,
        token: Option<Token>,
        rate_cap: Option<u64>,
        /// Answer PullFlags `PROOF_RUNS` (spec §3.6).
        proof_runs: bool,
        budget: Option<usize>,
        at: Instant,
    },
    Serve {
        to: Peer,
        entries: Vec<u32>,
        pos: usize,
        proofs: bool,
        /// NakFlags `PROOF_RUNS`: of the chunks, only each run's first has its proof.
        runs: bool,
        budget: Option<usize>,
        at: Instant,
    },
}

/// The serving state machine. Cheap to create; many may share one `Arc<Exposure>`.
pub struct Exposer {
    exposure: Arc<Exposure>,
    config: ExposerConfig,
    tokens: TokenKey,
    queue: VecDeque<Job>,
    stats: ExposerStats,
    pressure: Pressure,
    service: Latency,
    /// The entry lists of served requests, emptied, for the next NAKs to fill:
    /// serving allocates nothing once a few are here.
    spare: Vec<Vec<u32>>,
}

/// Emptied entry lists an exposer keeps for reuse, at most.
const SPARE_LISTS: usize = 16;

impl Exposer {
    /// Serves `exposure` with `config`.
    pub fn new(exposure: Arc<Exposure>, config: ExposerConfig) -> Self {
        let tokens = TokenKey::new(config.token_secret);
        Exposer {
            exposure,
            config,
            tokens,
            queue: VecDeque::new(),
            stats: ExposerStats::default(),
            pressure: Pressure::new(),
            service: Latency::default(),
            spare: Vec::new(),
        }
    }

    /// The exposure served.
    pub fn exposure(&self) -> &Arc<Exposure> {
        &self.exposure
    }

    /// Counters.
    pub fn stats(&self) -> ExposerStats {
        self.stats
    }

    /// Requests seen in the last 100 ms window (upstream's pull pressure).
    pub fn pull_pressure(&self) -> u32 {
        self.pressure.get()
    }

    /// Service latency: from a request's arrival to its last datagram leaving, µs.
    pub fn service_latency(&self) -> &Latency {
        &self.service
    }

    /// Queued jobs (bounded by `queue_limit`).
    pub fn queued(&self) -> usize {
        self.queue.len()
    }

    /// Handles one datagram. Never panics; bad input is counted and dropped.
    pub fn handle_datagram(&mut self, now: Instant, from: Peer, data: &[u8]) {
        self.stats.datagrams_in += 1;
        self.stats.bytes_in += data.len() as u64;
        let repr = match Repr::parse(data, self.config.max_payload) {
            Ok(r) => r,
            Err(e) => {
                self.stats.malformed += 1;
                tracing::debug!(?from, error = %e, "malformed datagram dropped");
                return;
            }
        };
        if repr.exposure_id() != self.exposure.id() {
            self.stats.unknown_exposure += 1;
            return;
        }
        match repr {
            Repr::PullRequest(p) => self.on_pull_request(now, from, &p, data.len()),
            Repr::Nak(n) => self.on_nak(now, from, &n, data.len()),
            Repr::RateReport(_) => {
                self.stats.rate_reports += 1;
                self.note_pressure(now);
            }
            Repr::Keepalive(_) => self.stats.keepalives += 1,
            _ => self.stats.unexpected += 1,
        }
    }

    /// The exposer has no timers; this does nothing.
    pub fn handle_timeout(&mut self, _now: Instant) {}

    /// Always `None`.
    #[must_use]
    pub fn poll_timeout(&self) -> Option<Instant> {
        None
    }

    fn note_pressure(&mut self, now: Instant) {
        self.pressure.note(now);
    }

    fn budget(&mut self, validated: bool, request_len: usize) -> Option<usize> {
        amplification_budget(
            self.config.amplification_limit,
            self.config.dangerous_serve_unvalidated,
            &mut self.stats.unvalidated_bytes_in,
            validated,
            request_len,
        )
    }

    fn push(&mut self, job: Job) {
        if self.queue.len() >= self.config.queue_limit {
            self.stats.busy += 1;
            self.recycle(job);
            return;
        }
        self.queue.push_back(job);
    }

    /// Keeps a finished or refused job's entry list for a later NAK.
    fn recycle(&mut self, job: Job) {
        if let Job::Serve { mut entries, .. } = job {
            if self.spare.len() < SPARE_LISTS {
                entries.clear();
                self.spare.push(entries);
            }
        }
    }

    fn on_pull_request(&mut self, now: Instant, from: Peer, p: &PullRequest, len: usize) {
        self.note_pressure(now);
        let v = u16::from(VERSION);
        if p.version_min > v || p.version_max < v {
            self.stats.version_mismatch += 1;
            return;
        }
        let token = p
            .flags
            .contains(PullFlags::ADDR_VALIDATION)
            .then(|| self.tokens.mint(self.exposure.id(), &from, now));
        let rate_cap = self
            .config
            .rate_cap
            .filter(|_| p.flags.contains(PullFlags::RATE_CAP));
        let budget = self.budget(false, len);
        self.push(Job::Manifest {
            to: from,
            token,
            rate_cap,
            proof_runs: p.flags.contains(PullFlags::PROOF_RUNS),
            budget,
            at: now,
        });
    }

    fn on_nak(&mut self, now: Instant, from: Peer, n: &Nak<'_>, len: usize) {
        self.note_pressure(now);
        let validated = match n.token {
            Some(t) => {
                let ok = self.tokens.validate(self.exposure.id(), &from, now, &t);
                if !ok {
                    self.stats.bad_token += 1;
                }
                ok
            }
            None => false,
        };
        let budget = self.budget(validated, len);
        let limit = self.config.max_entries_per_request;
        let total = n.indices.len();
        if total > limit {
            self.stats.over_limit += (total - limit) as u64;
        }
        let mut entries = self.spare.pop().unwrap_or_default();
        entries.extend(n.indices.iter().take(limit));
        self.stats.requests += 1;
        let proofs = n.flags.contains(NakFlags::PROOFS) || self.exposure.suite().proofs;
        self.push(Job::Serve {
            to: from,
            entries,
            pos: 0,
            proofs,
            runs: n.flags.contains(NakFlags::PROOF_RUNS),
            budget,
            at: now,
        });
    }

    /// Writes the next batch of datagrams into `buf` (cleared first). All datagrams of one
    /// batch go to one destination and, but for the last, have one size.
    #[must_use]
    pub fn poll_transmit(&mut self, now: Instant, buf: &mut Vec<u8>) -> Option<Transmit> {
        self.next_batch(now, buf, false).map(|(t, _)| t)
    }

    /// As [`Exposer::poll_transmit`], but a batch of consecutive chunks without proofs
    /// is not copied: it is handed out as the slice of the exposure's store that holds
    /// their packets back to back. Other batches are written into `buf`. Returns the
    /// transmit and its bytes.
    #[must_use]
    pub fn poll_transmit_ref<'a>(
        &'a mut self,
        now: Instant,
        buf: &'a mut Vec<u8>,
    ) -> Option<(Transmit, &'a [u8])> {
        let (t, stored) = self.poll_transmit_stored(now, buf)?;
        let bytes = match stored {
            Some(range) => &self.exposure.store_bytes()[range],
            None => &buf[..t.size],
        };
        Some((t, bytes))
    }

    /// [`Exposer::poll_transmit_ref`] for a caller that holds several exposers and
    /// cannot keep one borrowed while it asks the next: the batch's bytes are
    /// `exposure().store_bytes()[range]` when a range is given, else `buf[..size]`.
    #[must_use]
    pub fn poll_transmit_stored(
        &mut self,
        now: Instant,
        buf: &mut Vec<u8>,
    ) -> Option<(Transmit, Option<core::ops::Range<usize>>)> {
        self.next_batch(now, buf, true)
    }

    /// The next batch: in `buf`, or (when `borrow`) the range of the store that holds it.
    fn next_batch(&mut self, now: Instant, buf: &mut Vec<u8>, borrow: bool) -> Option<Batch> {
        buf.clear();
        loop {
            let job = self.queue.front_mut()?;
            match job {
                Job::Manifest {
                    to,
                    token,
                    rate_cap,
                    proof_runs,
                    budget,
                    at,
                } => {
                    let at = *at;
                    let to = *to;
                    let mut m = self.exposure.manifest();
                    if let Some(t) = token {
                        m.flags |= ManifestFlags::TOKEN;
                        m.token = Some(*t);
                    }
                    if let Some(cap) = rate_cap {
                        m.flags |= ManifestFlags::RATE_CAP;
                        m.rate_cap = Some((*cap).max(1));
                    }
                    if *proof_runs {
                        m.flags |= ManifestFlags::PROOF_RUNS;
                    }
                    let repr = Repr::Manifest(m);
                    let len = repr.buffer_len();
                    let budget = *budget;
                    self.queue.pop_front();
                    self.service
                        .record(now.saturating_since(at).as_micros() as u64);
                    if budget.is_some_and(|b| len > b) {
                        self.stats.over_budget += 1;
                        continue;
                    }
                    if budget.is_some() {
                        self.stats.unvalidated_bytes_out += len as u64;
                    }
                    buf.resize(len, 0);
                    repr.emit(buf);
                    self.stats.manifests_sent += 1;
                    self.stats.datagrams_out += 1;
                    self.stats.bytes_out += len as u64;
                    let t = Transmit {
                        destination: to,
                        size: len,
                        segment_size: None,
                    };
                    return Some((t, None));
                }
                Job::Serve { .. } => {
                    if let Some(t) = self.serve_batch(now, buf, borrow) {
                        return Some(t);
                    }
                }
            }
        }
    }

    /// Emits up to `max_segments` datagrams of the front Serve job; pops it when done.
    /// With `borrow`, a batch of consecutive chunks without proofs is not copied into
    /// `buf`: its range in the store is returned instead.
    fn serve_batch(&mut self, now: Instant, buf: &mut Vec<u8>, borrow: bool) -> Option<Batch> {
        let exposure = Arc::clone(&self.exposure);
        let max_segments = self.config.max_segments.max(1);
        let max_bytes = self.config.max_batch_bytes;
        let Some(Job::Serve {
            to,
            entries,
            pos,
            proofs,
            runs,
            budget,
            at,
        }) = self.queue.front_mut()
        else {
            return None;
        };
        let to = *to;
        let limit = batch_limit(
            &exposure,
            &entries[*pos..],
            *proofs,
            *runs,
            max_segments,
            max_bytes,
        );
        let mut seg: Option<usize> = None;
        let mut count = 0usize;
        let mut size = 0usize;
        let mut finished_short = false;
        // While the batch is consecutive chunks without proofs: the first and how many,
        // not copied yet.
        let mut stored: Option<(u32, u32)> = None;
        while *pos < entries.len() && count < limit && !finished_short {
            let e = entries[*pos];
            let proof = carries_proof(e, *proofs, *runs);
            let Some(len) = entry_len(&exposure, e, proof) else {
                self.stats.out_of_range += 1;
                *pos += 1;
                continue;
            };
            if let Some(s) = seg {
                if len > s || size + len > max_bytes {
                    break;
                }
                if len < s {
                    finished_short = true;
                }
            }
            if let Some(b) = budget {
                if len > *b {
                    self.stats.over_budget += (entries.len() - *pos) as u64;
                    *pos = entries.len();
                    break;
                }
                *b -= len;
                self.stats.unvalidated_bytes_out += len as u64;
            }
            seg.get_or_insert(len);
            size += len;
            let bare = !proof && e & NAK_PARITY_BIT == 0;
            match stored {
                None if borrow && bare && count == 0 => stored = Some((e, 1)),
                Some((first, n)) if bare && first.checked_add(n) == Some(e) => {
                    stored = Some((first, n + 1));
                }
                _ => {
                    if let Some((first, n)) = stored.take() {
                        // The run is broken: what it held goes into `buf` after all.
                        let range = exposure.packets_range(first, n);
                        buf.extend_from_slice(&exposure.store_bytes()[range]);
                    }
                    if bare {
                        buf.extend_from_slice(exposure.packet(e));
                    } else {
                        let start = buf.len();
                        buf.resize(start + len, 0);
                        emit_entry(&exposure, e, proof, &mut buf[start..]);
                    }
                }
            }
            if e & NAK_PARITY_BIT != 0 {
                self.stats.parity_sent += 1;
            } else {
                self.stats.chunks_sent += 1;
            }
            count += 1;
            *pos += 1;
        }
        if *pos >= entries.len() {
            let at = *at;
            if let Some(done) = self.queue.pop_front() {
                self.recycle(done);
            }
            self.service
                .record(now.saturating_since(at).as_micros() as u64);
        }
        if count == 0 {
            return None;
        }
        self.stats.datagrams_out += count as u64;
        self.stats.bytes_out += size as u64;
        let t = Transmit {
            destination: to,
            size,
            segment_size: (count > 1).then_some(seg.unwrap_or(size)),
        };
        let stored = stored.map(|(first, n)| exposure.packets_range(first, n));
        debug_assert_eq!(
            stored.as_ref().map_or(buf.len(), |r| r.len()),
            size,
            "the batch's bytes"
        );
        Some((t, stored))
    }
}

/// How many datagrams the batch starting at `rest[0]` may take: as many as a batch
/// holds (`max_segments`, and as many of its length as fit in `max_bytes`), but
/// where the datagrams of that length that follow would fill one batch and leave a
/// small one after it, half of them (rounded up), so both batches are about equal.
/// A small batch costs a send of its own all the same, and one too small for the
/// link to send from the store without a copy (under 16 KiB over UDP) is copied:
/// with proofs in runs, the 62 chunks between a run's first two (a proof and the
/// shorter chunk that ends its batch) and the next run went out as 52 and a copied
/// 10; now as 31 and 31. The datagrams and their order are the same.
fn batch_limit(
    x: &Exposure,
    rest: &[u32],
    proofs: bool,
    runs: bool,
    max_segments: usize,
    max_bytes: usize,
) -> usize {
    let len_of = |e: u32| entry_len(x, e, carries_proof(e, proofs, runs));
    let Some(first) = rest.first().and_then(|&e| len_of(e)) else {
        return max_segments;
    };
    let cap = max_segments.min(max_bytes / first.max(1)).max(1);
    let run = rest
        .iter()
        .take(2 * cap + 1)
        .take_while(|&&e| len_of(e) == Some(first))
        .count();
    if run > cap && run <= 2 * cap {
        run.div_ceil(2)
    } else {
        cap
    }
}

/// Whether entry `e` of a Serve job goes out with its proof: every chunk when the
/// request asked for proofs, or only each run's first with `PROOF_RUNS` (spec §3.6).
fn carries_proof(e: u32, proofs: bool, runs: bool) -> bool {
    proofs && (!runs || e.is_multiple_of(PROOF_RUN))
}
