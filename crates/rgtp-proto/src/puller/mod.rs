//! The puller: drives one transfer from a ticket's facts to a verified whole.
//!
//! The puller asks for the Manifest, validates it, then requests chunks
//! (NAKs listing indices, spec §3.3) within an AIMD window, opens every chunk
//! with the AEAD before handing it out, checks Merkle proofs when it has them
//! and the root over all leaves at the end, rebuilds lost chunks from FEC
//! parity, and re-requests what is still missing after its retransmission
//! timeout.
//!
//! # Calling order
//! After [`Puller::handle_datagram`] returns a [`Delivered`] chunk, write it
//! out before anything else (one that comes with a proof, under
//! [`PullerConfig::offload_proofs`], also goes to the driver's [`ProofChecker`],
//! whose verdict comes back through [`Puller::handle_verdict`]). After any
//! `handle_*` call, drain
//! [`Puller::poll_transmit`], then read [`Puller::poll_timeout`], then drain
//! [`Puller::poll_event`]. Call [`Puller::handle_timeout`] when the deadline
//! passes; an extra call does nothing. Chunks held from an earlier run go in with
//! [`Puller::resume_chunk`] as the [`PullerEvent::Manifest`] event is taken: the
//! first request waits for the `handle_timeout` that the Manifest makes due at
//! once, so none of them is asked for, in either order of draining.
//!
//! # Layout
//! Each concern keeps its state in a sub-struct of [`Puller`], in a module
//! of its own that imports nothing from this one, and its behaviour (the
//! puller's methods for it) in a second module:
//! - Manifest validation: `manifest` (behaviour), `layers` (the layers it selects);
//! - request scheduling: `request` (Pull_Request, Rate_Report, Keepalive, NAKs),
//!   `queues` (what waits to be requested, the timers);
//! - congestion: `congestion` (the controller chosen in the config, see [`crate::cc`], its RTT
//!   estimator and the smoothed loss fraction);
//! - the rate cap: `pacing` (a token bucket over the requests);
//! - loss detection and the RTO: `loss`, `inflight` (the entries in flight);
//! - FEC reassembly: `reassembly`, `blocks` (the shards collected per block);
//! - output: `output` (chunk authentication, Merkle checks, the root, the
//!   driver's verdicts), `received` (the received set, the chunks waiting for a
//!   verdict, anti-replay window), `tree` (the [`ProofChecker`] and the tree it
//!   folds);
//! - repair after a root mismatch: `repair` (locating the wrong chunks with
//!   proofs), `leaves` (the leaf hashes kept for it), `search` (its probes);
//! - `config` and `event`: the settings, and what the driver is told.

use std::collections::VecDeque;

use rgtp_wire::{Manifest, Repr, Token};

use crate::latency::Latency;
use crate::suite::SuiteId;
use crate::{Peer, Transmit};
use redgiant_base::Instant;

// State, one concern a module; none of them imports from this file.
mod bits;
mod blocks;
mod config;
mod congestion;
mod event;
mod inflight;
mod kept;
mod layers;
mod leaves;
mod pacing;
mod queues;
mod received;
mod search;
// Behaviour: the puller's methods for each concern, using the state above.
mod loss;
mod manifest;
mod output;
mod reassembly;
mod repair;
mod request;
mod runs;
mod shared;
mod tree;

pub(crate) use self::bits::ones;
pub use self::config::PullerConfig;
pub use self::event::{kept_chunks, Delivered, ManifestInfo, PullError, PullerEvent, Verdict};
pub use self::inflight::PACKET_THRESHOLD;
pub(crate) use self::kept::{Judged, KeptRuns};
pub use self::runs::{RunChecker, MAX_OPEN_RUNS};
pub use self::tree::{level_start, ProofChecker, SUBTREE_MAX, SUBTREE_NODES};
pub use crate::cc::QUEUE_FLOOR;
pub use crate::suite::SuiteFactory;

use self::blocks::Reassembly;
use self::congestion::Congestion;
use self::inflight::InFlight;
use self::layers::Layers;
use self::pacing::Pacing;
use self::queues::{Requests, Timers};
use self::received::Output;
use self::search::Search;

/// Puller counters.
#[derive(Debug, Clone, Copy, Default, PartialEq)]
pub struct PullerStats {
    /// Datagrams sent.
    pub datagrams_sent: u64,
    /// Bytes sent.
    pub bytes_sent: u64,
    /// Datagrams received.
    pub datagrams_received: u64,
    /// Bytes received.
    pub bytes_received: u64,
    /// Distinct chunks accepted (received or rebuilt).
    pub chunks_received: u64,
    /// Of those, chunks taken from an earlier run's output ([`Puller::resume_chunk`]).
    pub chunks_resumed: u64,
    /// Chunks that arrived again after acceptance, or inside the replay window.
    pub duplicates: u64,
    /// Chunks that failed AEAD.
    pub auth_failures: u64,
    /// Chunks that failed their Merkle proof.
    pub merkle_failures: u64,
    /// Authentic chunks dropped for carrying no proof although proofs were negotiated.
    pub missing_proofs: u64,
    /// Chunks found wrong after the root did not match, and replaced by copies whose
    /// proofs verified (spec §8.12); offloading, chunks kept from an earlier run that
    /// failed the check with their proof run, and are fetched again (§8.10).
    pub repaired_chunks: u64,
    /// Chunk entries requested with proofs to locate wrong chunks (spec §8.12).
    pub repair_fetches: u64,
    /// FEC-rebuilt chunks not accepted, once proofs were negotiated, because no
    /// verified proof vouched for their leaf or one contradicted it; they are
    /// requested again (spec §8.11).
    pub unproven_rebuilds: u64,
    /// Chunks accepted on the driver's verdict, their proofs checked on another core
    /// ([`PullerConfig::offload_proofs`]).
    pub offloaded_checks: u64,
    /// Of the chunks handed out for the driver to check, those that came without a
    /// proof of their own under proof runs (spec §3.6), to be judged with their run.
    pub proof_run_members: u64,
    /// Datagrams that failed to parse or had impossible field values.
    pub malformed: u64,
    /// Datagrams from a peer other than the exposer, or for another exposure.
    pub foreign: u64,
    /// Packet types a puller never receives.
    pub unexpected: u64,
    /// Manifests refused.
    pub bad_manifests: u64,
    /// Parity shards received.
    pub parity_received: u64,
    /// Chunks rebuilt by FEC.
    pub fec_recoveries: u64,
    /// FEC rebuilds that failed authentication (corrupt parity).
    pub fec_failures: u64,
    /// Pull_Requests sent.
    pub pull_requests_sent: u64,
    /// NAKs (chunk requests) sent.
    pub naks_sent: u64,
    /// NAKs that re-requested at least one chunk.
    pub retransmit_naks: u64,
    /// Chunk entries requested, first time.
    pub chunks_requested: u64,
    /// Chunk entries requested again after a timeout.
    pub chunks_rerequested: u64,
    /// Parity entries requested.
    pub parity_requested: u64,
    /// Rate_Reports sent.
    pub rate_reports_sent: u64,
    /// Keepalives sent.
    pub keepalives_sent: u64,
    /// Smoothed RTT, microseconds.
    pub srtt_us: u64,
    /// Smoothed loss fraction.
    pub loss_rate: f64,
    /// Current window, chunks.
    pub window: u32,
}

#[derive(Debug, PartialEq, Eq)]
enum Phase {
    Handshake,
    Transfer,
    Verifying,
    Done,
    Failed,
}

/// The pull state machine.
pub struct Puller<S: SuiteFactory> {
    cfg: PullerConfig,
    factory: S,
    phase: Phase,
    /// The layers the accepted Manifest selected.
    layers: Option<Layers<S>>,
    /// The accepted Manifest (its token kept apart, in `token`).
    manifest: Option<Manifest>,
    suite: SuiteId,
    /// The address-validation token echoed in NAKs.
    token: Option<Token>,
    /// Total_Size of the last Manifest refused for exceeding `max_total_size`.
    too_large: Option<u64>,

    /// Chunks accepted, their leaves, and the verification failure counts.
    output: Output,
    /// What is to be requested next.
    requests: Requests,
    /// What was requested and not yet answered.
    flights: InFlight,
    /// FEC blocks being collected.
    reassembly: Reassembly,
    /// The search for wrong chunks after a root mismatch, while it runs.
    search: Option<Search>,
    /// RTT, loss and the request window.
    cc: Congestion,
    /// The rate cap, if there is one.
    pacing: Pacing,
    /// Handshake retries, idle, keepalive, rate-report and token-refresh timers.
    timers: Timers,

    events: VecDeque<PullerEvent>,
    stats: PullerStats,
}

impl<S: SuiteFactory> Puller<S> {
    /// A puller that will send its first Pull_Request on the first `poll_transmit`.
    pub fn new(cfg: PullerConfig, factory: S, now: Instant) -> Self {
        Puller {
            factory,
            phase: Phase::Handshake,
            layers: None,
            manifest: None,
            suite: SuiteId::default(),
            token: None,
            too_large: None,
            output: Output::new(),
            requests: Requests::new(),
            flights: InFlight::new(cfg.max_window),
            reassembly: Reassembly::new(),
            search: None,
            cc: Congestion::new(&cfg),
            pacing: Pacing::default(),
            timers: Timers::new(&cfg, now),
            events: VecDeque::new(),
            stats: PullerStats::default(),
            cfg,
        }
    }

    /// Counters, with the current RTT, loss and window filled in.
    pub fn stats(&self) -> PullerStats {
        let mut s = self.stats;
        s.srtt_us = self.cc.rtt.srtt().map_or(0, |d| d.as_micros() as u64);
        s.loss_rate = self.cc.loss();
        s.window = self.cc.window();
        s
    }

    /// The accepted Manifest, once there is one.
    pub fn manifest(&self) -> Option<ManifestInfo> {
        self.manifest.map(|m| ManifestInfo {
            exposure_id: m.exposure_id,
            total_size: m.total_size,
            chunk_count: m.chunk_count,
            chunk_size: m.chunk_size,
            merkle_root: m.merkle_root,
            suite: self.suite,
            rate_cap: m.rate_cap,
        })
    }

    /// The rate requests are paced at, bytes per second: the lower of this
    /// puller's `max_rate` and the exposer's cap (spec §8.3.3); None: unpaced.
    /// Known once the Manifest is in.
    pub fn rate_limit(&self) -> Option<u64> {
        let cap = self.manifest.and_then(|m| m.rate_cap);
        match (self.cfg.max_rate, cap) {
            (Some(a), Some(b)) => Some(a.min(b)),
            (a, b) => a.or(b),
        }
    }

    /// Fraction of chunks accepted, in [0, 1].
    pub fn progress(&self) -> f32 {
        match (&self.phase, self.manifest) {
            (Phase::Done, _) => 1.0,
            (_, Some(m)) if m.chunk_count > 0 => {
                self.stats.chunks_received as f32 / m.chunk_count as f32
            }
            _ => 0.0,
        }
    }

    /// True once the pull completed or failed.
    pub fn is_finished(&self) -> bool {
        matches!(self.phase, Phase::Done | Phase::Failed)
    }

    /// True once every chunk arrived and the root matched.
    pub fn is_complete(&self) -> bool {
        self.phase == Phase::Done
    }

    /// What the pull would fail with if the idle timeout passed now (spec §8.9, §8.11):
    /// `None` outside the transfer. For drivers whose input ends without a clock
    /// running out, such as a capture replay.
    pub fn stall_error(&self) -> Option<PullError> {
        (self.phase == Phase::Transfer).then(|| self.output.stall_error())
    }

    /// Request-to-arrival latency of first-attempt chunks (and the handshake).
    pub fn latency(&self) -> &Latency {
        self.cc.rtt.latency()
    }

    /// The congestion controller's name ([`crate::cc`]) and its current window in chunks.
    pub fn congestion(&self) -> (&'static str, u32) {
        (self.cc.name(), self.cc.window())
    }

    fn fail(&mut self, e: PullError) {
        if !self.is_finished() {
            tracing::debug!(error = %e, "pull failed");
            self.phase = Phase::Failed;
            self.events.push_back(PullerEvent::Failed(e));
        }
    }

    /// Handles one datagram. A verified chunk comes back decrypted in place in `data`.
    /// Never panics; bad input is counted and dropped.
    pub fn handle_datagram<'d>(
        &mut self,
        now: Instant,
        from: Peer,
        data: &'d mut [u8],
    ) -> Option<Delivered<'d>> {
        self.stats.datagrams_received += 1;
        self.stats.bytes_received += data.len() as u64;
        if self.is_finished() {
            return None;
        }
        if from != self.cfg.exposer {
            self.stats.foreign += 1;
            return None;
        }
        let (index, payload_at, proof_len) = {
            let repr = match Repr::parse(data, self.cfg.max_payload) {
                Ok(r) => r,
                Err(_) => {
                    self.stats.malformed += 1;
                    return None;
                }
            };
            if repr.exposure_id() != &self.cfg.exposure_id {
                self.stats.foreign += 1;
                return None;
            }
            match repr {
                Repr::Manifest(m) => {
                    self.on_manifest(now, &m);
                    return None;
                }
                Repr::FecParity(p) => {
                    self.on_parity(now, &p);
                    return None;
                }
                Repr::ChunkData(c) => (c.chunk_index, data.len() - c.payload.len(), None),
                // The proof sits right before the payload.
                Repr::ChunkDataWithProof(c) => (
                    c.chunk_index,
                    data.len() - c.payload.len(),
                    Some(c.proof.len()),
                ),
                _ => {
                    self.stats.unexpected += 1;
                    return None;
                }
            }
        };
        let (head, payload) = data.split_at_mut(payload_at);
        let proof: Option<&'d [u8]> = proof_len.map(|n| &head[payload_at - n..]);
        let (index, offset, len, unverified) = self.on_chunk(now, index, payload, proof)?;
        Some(Delivered {
            index,
            offset,
            data: &payload[..len],
            proof: proof.filter(|_| unverified),
            unverified,
        })
    }

    /// Runs expired timers: handshake retries, loss detection, idle and periodic packets.
    pub fn handle_timeout(&mut self, now: Instant) {
        match self.phase {
            Phase::Handshake => {
                if now.saturating_since(self.timers.started) >= self.cfg.handshake_timeout {
                    let e = if let Some(declared) = self.too_large {
                        PullError::TooLarge {
                            declared,
                            limit: self.cfg.max_total_size,
                        }
                    } else if self.stats.bad_manifests > 0 {
                        PullError::BadManifest
                    } else {
                        PullError::HandshakeTimeout
                    };
                    self.fail(e);
                } else if now >= self.timers.handshake_next {
                    self.timers.want_pull_request = true;
                }
            }
            Phase::Transfer => {
                self.timers.manifest_turn = None;
                self.repair_clock(now);
                self.pacing.expire(now);
                self.detect_losses(now);
                if now.saturating_since(self.timers.last_progress) >= self.cfg.idle_timeout {
                    let e = self.output.stall_error();
                    self.fail(e);
                    return;
                }
                self.timers.on_timeout(now, &self.cfg, self.token.is_some());
            }
            Phase::Verifying | Phase::Done | Phase::Failed => {}
        }
    }

    /// The next instant [`Puller::handle_timeout`] must run, if any.
    #[must_use]
    pub fn poll_timeout(&self) -> Option<Instant> {
        match self.phase {
            Phase::Handshake => Some(self.timers.handshake_deadline(&self.cfg)),
            Phase::Transfer => {
                let mut t = self
                    .timers
                    .transfer_deadline(&self.cfg, self.token.is_some());
                if let Some(d) = self.next_loss_deadline() {
                    t = t.min(d);
                }
                if let Some(w) = self.pacing.wake() {
                    t = t.min(w);
                }
                Some(t)
            }
            Phase::Verifying | Phase::Done | Phase::Failed => None,
        }
    }

    /// The next event, if any.
    #[must_use]
    pub fn poll_event(&mut self) -> Option<PullerEvent> {
        self.events.pop_front()
    }

    /// Writes the next datagram to send into `buf` (cleared first).
    #[must_use]
    pub fn poll_transmit(&mut self, now: Instant, buf: &mut Vec<u8>) -> Option<Transmit> {
        buf.clear();
        if self.is_finished() || self.phase == Phase::Verifying {
            return None;
        }
        self.repair_clock(now);
        let repr_len = if self.timers.want_pull_request {
            self.pull_request(now, buf)
        } else if self.phase != Phase::Transfer {
            return None;
        } else if self.timers.want_rate_report {
            self.rate_report(now, buf)
        } else if let Some(len) = self
            .timers
            .manifest_turn
            .is_none()
            .then(|| self.build_nak(now, buf))
            .flatten()
        {
            len
        } else if self.timers.want_keepalive {
            self.keepalive(now, buf)
        } else {
            return None;
        };
        self.timers.last_sent = now;
        self.timers.want_keepalive = false;
        self.stats.datagrams_sent += 1;
        self.stats.bytes_sent += repr_len as u64;
        Some(Transmit {
            destination: self.cfg.exposer,
            size: repr_len,
            segment_size: None,
        })
    }
}
