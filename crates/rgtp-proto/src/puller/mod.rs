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
//! out before anything else. After any `handle_*` call, drain
//! [`Puller::poll_transmit`], then read [`Puller::poll_timeout`], then drain
//! [`Puller::poll_event`]. Call [`Puller::handle_timeout`] when the deadline
//! passes; an extra call does nothing.
//!
//! # Layout
//! Each concern owns its state in a sub-struct of [`Puller`], in its own module:
//! - `manifest`: Manifest validation and the layers it selects;
//! - `request`: what to send next (Pull_Request, Rate_Report, Keepalive, NAKs),
//!   the request queues and their timers;
//! - `congestion`: the RTT estimator and the AIMD window;
//! - `loss`: in-flight entries, loss detection by order and by RTO;
//! - `reassembly`: FEC blocks and their rebuild;
//! - `output`: chunk authentication, Merkle checks, the received set and the root.

use std::collections::VecDeque;
use std::time::Duration;

use rgtp_wire::{ExposureId, Hash, Manifest, Repr, Token, HASH_LEN};

use crate::crypto::{CipherId, Key};
use crate::latency::Latency;
use crate::merkle::HashId;
use crate::suite::SuiteId;
use crate::{Peer, Transmit};
use redgiant_base::Instant;

mod congestion;
mod loss;
mod manifest;
mod output;
mod reassembly;
mod request;
mod tree;

pub use self::congestion::QUEUE_FLOOR;
pub use self::loss::PACKET_THRESHOLD;
pub use crate::suite::SuiteFactory;

use self::congestion::Congestion;
use self::loss::InFlight;
use self::manifest::Layers;
use self::output::Output;
use self::reassembly::Reassembly;
use self::request::{Requests, Timers};

/// Puller settings.
#[derive(Debug, Clone)]
pub struct PullerConfig {
    /// Exposure to pull.
    pub exposure_id: ExposureId,
    /// Where the exposer is.
    pub exposer: Peer,
    /// The exposure's key.
    pub key: Key,
    /// Cipher pinned by the ticket; a Manifest announcing another is refused.
    pub expected_cipher: Option<CipherId>,
    /// Hash pinned by the ticket; a Manifest announcing another is refused.
    pub expected_hash: Option<HashId>,
    /// Ask for Merkle proofs with every chunk.
    pub want_proofs: bool,
    /// Request FEC parity when the exposure has it.
    pub use_fec: bool,
    /// Window at start, in chunks.
    pub initial_window: u32,
    /// Window ceiling, in chunks.
    pub max_window: u32,
    /// Entries per NAK.
    pub max_entries_per_nak: usize,
    /// Largest payload accepted when parsing.
    pub max_payload: usize,
    /// Largest chunk count accepted from a Manifest (bounds the received bitmap).
    pub max_chunks: u32,
    /// Largest Total_Size accepted from a Manifest (CLI `--max-size`); a larger one is
    /// refused, and reported as [`PullError::TooLarge`] if no acceptable one follows.
    pub max_total_size: u64,
    /// First Pull_Request retry delay (doubles per retry, capped at 1 s).
    pub handshake_interval: Duration,
    /// Give up when no Manifest arrives within this.
    pub handshake_timeout: Duration,
    /// Give up when nothing useful arrives within this.
    pub idle_timeout: Duration,
    /// Floor of the retransmission timeout.
    pub min_rto: Duration,
    /// Keepalive when nothing was sent for this long (upstream: 25 s).
    pub keepalive_interval: Duration,
    /// Rate_Report period.
    pub rate_report_interval: Duration,
    /// Re-send Pull_Request this often to refresh the address-validation token.
    pub token_refresh: Duration,
    /// Without proofs, leave the Merkle check to the driver: instead of hashing each chunk
    /// as it arrives, emit [`PullerEvent::VerifyRoot`] once every chunk is in and let the
    /// driver hash the reassembled output (in parallel) and report the root through
    /// [`Puller::handle_root`]. Chunks are still authenticated by the AEAD on arrival.
    pub deferred_root: bool,
}

impl PullerConfig {
    /// Defaults for pulling `exposure_id` from `exposer` with `key`.
    pub fn new(exposure_id: ExposureId, exposer: Peer, key: Key) -> Self {
        PullerConfig {
            exposure_id,
            exposer,
            key,
            expected_cipher: None,
            expected_hash: None,
            want_proofs: false,
            use_fec: true,
            initial_window: 64,
            max_window: 4096,
            max_entries_per_nak: 64,
            max_payload: 65_507,
            max_chunks: 1 << 26,
            max_total_size: u64::MAX,
            handshake_interval: Duration::from_millis(250),
            handshake_timeout: Duration::from_secs(5),
            idle_timeout: Duration::from_secs(10),
            min_rto: Duration::from_millis(25),
            keepalive_interval: Duration::from_secs(25),
            rate_report_interval: Duration::from_secs(1),
            token_refresh: Duration::from_secs(20),
            deferred_root: false,
        }
    }
}

/// What a validated Manifest told the puller.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ManifestInfo {
    /// Exposure.
    pub exposure_id: ExposureId,
    /// Plaintext bytes.
    pub total_size: u64,
    /// Chunks.
    pub chunk_count: u32,
    /// Plaintext bytes per chunk.
    pub chunk_size: u32,
    /// Merkle root.
    pub merkle_root: Hash,
    /// Layers.
    pub suite: SuiteId,
}

/// Why a pull ended without the data.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum PullError {
    /// No Manifest arrived (exposer unreachable, wrong Exposure_ID, or no common version).
    HandshakeTimeout,
    /// Manifests arrived but none was acceptable.
    BadManifest,
    /// The transfer stalled with no authentication or Merkle failures seen.
    Timeout,
    /// Chunks arrived but failed authentication (wrong key, or forged traffic).
    AuthFailed,
    /// Chunks failed Merkle verification, or the root over all chunks did not match.
    MerkleFailed,
    /// The only Manifests that arrived declared more than
    /// [`PullerConfig::max_total_size`].
    TooLarge {
        /// Total_Size the (last such) Manifest declared.
        declared: u64,
        /// The configured limit.
        limit: u64,
    },
}

impl core::fmt::Display for PullError {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.write_str(match self {
            PullError::HandshakeTimeout => "no Manifest from the exposer",
            PullError::BadManifest => "the exposer's Manifest was not acceptable",
            PullError::Timeout => "transfer stalled",
            PullError::AuthFailed => "chunks failed AEAD authentication",
            PullError::MerkleFailed => "Merkle verification failed",
            PullError::TooLarge { declared, limit } => {
                return write!(
                    f,
                    "the exposure declares {declared} bytes, more than the limit of {limit}"
                )
            }
        })
    }
}

impl std::error::Error for PullError {}

/// Events for the driver.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum PullerEvent {
    /// The Manifest was accepted; size the output now.
    Manifest(ManifestInfo),
    /// A chunk rebuilt from FEC, authenticated; write it at `offset`.
    Recovered {
        /// Chunk index.
        index: u32,
        /// Byte offset in the output.
        offset: u64,
        /// Plaintext.
        data: Vec<u8>,
    },
    /// Every chunk arrived (deferred-root mode): hash the output's chunks with
    /// [`Puller::hash_scheme`], and pass the root to [`Puller::handle_root`].
    VerifyRoot,
    /// Every chunk arrived and the Merkle root over them matches.
    Complete,
    /// The pull ended without the data.
    Failed(PullError),
}

/// A verified chunk, decrypted in place in the datagram buffer.
#[derive(Debug, PartialEq, Eq)]
pub struct Delivered<'d> {
    /// Chunk index.
    pub index: u32,
    /// Byte offset in the output.
    pub offset: u64,
    /// Plaintext.
    pub data: &'d [u8],
}

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
    /// Chunks that arrived again after acceptance, or inside the replay window.
    pub duplicates: u64,
    /// Chunks that failed AEAD.
    pub auth_failures: u64,
    /// Chunks that failed their Merkle proof.
    pub merkle_failures: u64,
    /// Authentic chunks dropped for carrying no proof although proofs were negotiated.
    pub missing_proofs: u64,
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
    /// RTT, loss and the request window.
    cc: Congestion,
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
            flights: InFlight::new(),
            reassembly: Reassembly::new(),
            cc: Congestion::new(&cfg),
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
        })
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
        let (index, payload_at, proof) = {
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
                Repr::ChunkDataWithProof(c) => {
                    let mut proof = [0u8; HASH_LEN * 32];
                    proof[..c.proof.len()].copy_from_slice(c.proof);
                    (
                        c.chunk_index,
                        data.len() - c.payload.len(),
                        Some((proof, c.depth())),
                    )
                }
                _ => {
                    self.stats.unexpected += 1;
                    return None;
                }
            }
        };
        let payload = &mut data[payload_at..];
        let proof = proof.as_ref().map(|(p, d)| &p[..d * HASH_LEN]);
        let (index, offset, len) = self.on_chunk(now, index, payload, proof)?;
        Some(Delivered {
            index,
            offset,
            data: &data[payload_at..payload_at + len],
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
        let repr_len = if self.timers.want_pull_request {
            self.pull_request(now, buf)
        } else if self.phase != Phase::Transfer {
            return None;
        } else if self.timers.want_rate_report {
            self.rate_report(now, buf)
        } else if let Some(len) = self.build_nak(now, buf) {
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
