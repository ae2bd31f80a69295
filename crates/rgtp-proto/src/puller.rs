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

use std::collections::{HashMap, VecDeque};
use std::hash::{BuildHasherDefault, Hasher};
use std::time::Duration;

use rgtp_wire::{
    ExposureId, FecParity, Hash, IndexList, Keepalive, Manifest, ManifestFlags, Nak, NakFlags,
    PullFlags, PullRequest, RateReport, Repr, Token, HASH_LEN, NAK_PARITY_BIT, VERSION,
};

use crate::crypto::{CipherId, CipherSuite, Key, TAG_LEN};
use crate::exposer::{make_parity_entry, parity_entry, plain_len};
use crate::fec::{FecCodec, FecParams, FecScheme};
use crate::latency::Latency;
use crate::merkle::{self, HashId, MerkleScheme};
use crate::replay::ReplayWindow;
use crate::suite::SuiteId;
use crate::{Peer, Transmit};
use redgiant_base::Instant;

/// An in-flight entry counts as lost once this many later-requested entries were answered
/// (and 9/8 RTT passed): loss detection by order, as QUIC does, with room for reordering.
pub const PACKET_THRESHOLD: u64 = 128;

/// Queueing delay below which a rising RTT is not read as congestion.
pub const QUEUE_FLOOR: Duration = Duration::from_millis(10);

/// RTT samples whose minimum stands for the current delay (a transient stall delays a
/// burst of samples; a standing queue delays all of them).
const RECENT_SAMPLES: usize = 16;

/// Retry levels with their own backoff (2^level × RTO); later retries share the last.
const RETRY_LEVELS: usize = 6;

/// Hasher for the puller's own chunk indices (not peer-chosen, so no flooding concern):
/// a multiplicative mix is enough and far cheaper than SipHash.
#[derive(Default)]
struct IndexHasher(u64);

impl Hasher for IndexHasher {
    fn finish(&self) -> u64 {
        self.0
    }
    fn write(&mut self, bytes: &[u8]) {
        for &b in bytes {
            self.0 = (self.0.rotate_left(8) ^ u64::from(b)).wrapping_mul(0x9e37_79b9_7f4a_7c15);
        }
    }
    fn write_u32(&mut self, i: u32) {
        self.0 = u64::from(i).wrapping_mul(0x9e37_79b9_7f4a_7c15);
    }
}

/// Builds the layers a Manifest asks for.
pub trait SuiteFactory {
    /// Cipher type.
    type Cipher: CipherSuite;
    /// Hash type.
    type Hash: MerkleScheme;
    /// FEC type.
    type Fec: FecCodec;
    /// The cipher `id` keyed with `key`, or `None` if unsupported.
    fn cipher(&self, id: CipherId, key: &Key) -> Option<Self::Cipher>;
    /// The hash `id`, or `None` if unsupported.
    fn hash(&self, id: HashId) -> Option<Self::Hash>;
    /// A codec for `params`, or `None` if unsupported.
    fn fec(&self, params: FecParams) -> Option<Self::Fec>;
    /// Shards needed to rebuild a block with high probability.
    fn min_shards(&self, params: FecParams) -> usize {
        usize::from(params.k)
    }
}

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
    /// Largest chunk count accepted from a Manifest (bounds the puller's memory).
    pub max_chunks: u32,
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
}

impl core::fmt::Display for PullError {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.write_str(match self {
            PullError::HandshakeTimeout => "no Manifest from the exposer",
            PullError::BadManifest => "the exposer's Manifest was not acceptable",
            PullError::Timeout => "transfer stalled",
            PullError::AuthFailed => "chunks failed AEAD authentication",
            PullError::MerkleFailed => "Merkle verification failed",
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

#[derive(Debug, Clone, Copy)]
struct Flight {
    sent: Instant,
    attempt: u32,
    /// Request sequence number: the order entries were asked for.
    seq: u64,
}

struct Layers<S: SuiteFactory> {
    cipher: S::Cipher,
    hash: S::Hash,
    fec: Option<S::Fec>,
    min_shards: usize,
}

struct Block {
    shards: Vec<Option<Vec<u8>>>,
    have: usize,
    missing_data: usize,
}

/// The pull state machine.
pub struct Puller<S: SuiteFactory> {
    cfg: PullerConfig,
    factory: S,
    phase: Phase,
    layers: Option<Layers<S>>,
    manifest: Option<Manifest>,
    suite: SuiteId,
    token: Option<Token>,

    received: Vec<u64>,
    leaves: Vec<Hash>,
    replay: ReplayWindow,
    next_new: u32,
    retransmit: VecDeque<(u32, u32)>,
    parity_queue: VecDeque<u32>,
    inflight: HashMap<u32, Flight, BuildHasherDefault<IndexHasher>>,
    /// In-flight entries in request order, one queue per retry level (stale ones are
    /// skipped lazily). Within a level all entries share one RTO multiplier, so request
    /// order is deadline order and no entry waits behind a longer-backed-off one.
    order: [VecDeque<(u64, u32)>; RETRY_LEVELS],
    next_seq: u64,
    /// Highest request sequence number answered so far.
    largest_answered: Option<u64>,
    blocks: HashMap<u32, Block>,
    /// Parity requests per block still queued or in flight.
    parity_pending: HashMap<u32, u32>,
    /// Lost chunks waiting for their block's parity before being re-requested.
    fec_wait: HashMap<u32, Vec<(u32, u32)>>,

    cwnd: f64,
    ssthresh: f64,
    srtt: Option<Duration>,
    rttvar: Duration,
    /// Requests before this sequence number were made under a window since reduced.
    reduced_at_seq: u64,
    min_rtt: Option<Duration>,
    recent: [Duration; RECENT_SAMPLES],
    recent_len: usize,
    loss: f64,

    started: Instant,
    handshake_next: Instant,
    handshake_tries: u32,
    last_pull_request: Instant,
    last_progress: Instant,
    last_sent: Instant,
    next_rate_report: Instant,
    next_token_refresh: Instant,
    want_pull_request: bool,
    want_rate_report: bool,
    want_keepalive: bool,

    latency: Latency,
    auth_streak: u32,
    stall_auth: u64,
    stall_merkle: u64,
    events: VecDeque<PullerEvent>,
    stats: PullerStats,
}

impl<S: SuiteFactory> Puller<S> {
    /// A puller that will send its first Pull_Request on the first `poll_transmit`.
    pub fn new(cfg: PullerConfig, factory: S, now: Instant) -> Self {
        let cwnd = f64::from(cfg.initial_window.max(1));
        Puller {
            factory,
            phase: Phase::Handshake,
            layers: None,
            manifest: None,
            suite: SuiteId::default(),
            token: None,
            received: Vec::new(),
            leaves: Vec::new(),
            replay: ReplayWindow::new(),
            next_new: 0,
            retransmit: VecDeque::new(),
            parity_queue: VecDeque::new(),
            inflight: HashMap::default(),
            order: Default::default(),
            next_seq: 0,
            largest_answered: None,
            blocks: HashMap::new(),
            parity_pending: HashMap::new(),
            fec_wait: HashMap::new(),
            cwnd,
            ssthresh: f64::from(cfg.max_window),
            srtt: None,
            rttvar: Duration::ZERO,
            reduced_at_seq: 0,
            min_rtt: None,
            recent: [Duration::ZERO; RECENT_SAMPLES],
            recent_len: 0,
            loss: 0.0,
            started: now,
            handshake_next: now,
            handshake_tries: 0,
            last_pull_request: now,
            last_progress: now,
            last_sent: now,
            next_rate_report: now + cfg.rate_report_interval,
            next_token_refresh: now + cfg.token_refresh,
            want_pull_request: true,
            want_rate_report: false,
            want_keepalive: false,
            latency: Latency::default(),
            auth_streak: 0,
            stall_auth: 0,
            stall_merkle: 0,
            events: VecDeque::new(),
            stats: PullerStats::default(),
            cfg,
        }
    }

    /// Counters, with the current RTT, loss and window filled in.
    pub fn stats(&self) -> PullerStats {
        let mut s = self.stats;
        s.srtt_us = self.srtt.map_or(0, |d| d.as_micros() as u64);
        s.loss_rate = self.loss;
        s.window = self.cwnd as u32;
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

    fn is_received(&self, idx: u32) -> bool {
        self.received
            .get(idx as usize / 64)
            .is_some_and(|w| w & (1 << (idx % 64)) != 0)
    }

    fn fail(&mut self, e: PullError) {
        if !self.is_finished() {
            tracing::debug!(error = %e, "pull failed");
            self.phase = Phase::Failed;
            self.events.push_back(PullerEvent::Failed(e));
        }
    }

    fn rto(&self, attempt: u32) -> Duration {
        let base = match self.srtt {
            Some(srtt) => (srtt * 2).max(srtt + self.rttvar * 4),
            None => Duration::from_millis(200),
        };
        base.max(self.cfg.min_rto) * (1 << attempt.min(RETRY_LEVELS as u32 - 1))
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

    fn on_manifest(&mut self, now: Instant, m: &Manifest) {
        if self.phase == Phase::Transfer {
            // A refresh: same exposure description, new token.
            let same = self.manifest.is_some_and(|cur| {
                cur.total_size == m.total_size
                    && cur.chunk_count == m.chunk_count
                    && cur.chunk_size == m.chunk_size
                    && cur.merkle_root == m.merkle_root
                    && cur.fec_n == m.fec_n
                    && cur.fec_k == m.fec_k
                    && cur.flags - ManifestFlags::TOKEN == m.flags - ManifestFlags::TOKEN
            });
            if same {
                if m.token.is_some() {
                    self.token = m.token;
                }
            } else {
                self.stats.bad_manifests += 1;
            }
            return;
        }
        if self.phase != Phase::Handshake {
            return;
        }
        let Some(layers_suite) = self.validate_manifest(m) else {
            self.stats.bad_manifests += 1;
            return;
        };
        let (layers, suite) = layers_suite;
        let count = m.chunk_count as usize;
        self.received = vec![0; count.div_ceil(64)];
        // Deferred-root pulls never read the leaves: the driver hashes the output.
        self.leaves = if self.cfg.deferred_root {
            Vec::new()
        } else {
            vec![[0; HASH_LEN]; count]
        };
        self.layers = Some(layers);
        self.suite = suite;
        self.manifest = Some(Manifest { token: None, ..*m });
        self.token = m.token;
        self.phase = Phase::Transfer;
        self.last_progress = now;
        // Karn: only an unambiguous handshake gives an RTT sample.
        if self.handshake_tries == 1 {
            self.sample_rtt(now.saturating_since(self.last_pull_request), None);
        }
        self.next_token_refresh = now + self.cfg.token_refresh;
        self.events
            .push_back(PullerEvent::Manifest(self.manifest().expect("just set")));
        if m.chunk_count == 0 {
            self.finish();
        }
    }

    fn validate_manifest(&self, m: &Manifest) -> Option<(Layers<S>, SuiteId)> {
        let suite = SuiteId::from_manifest(m).ok()?;
        if self.cfg.expected_cipher.is_some_and(|c| c != suite.cipher)
            || self.cfg.expected_hash.is_some_and(|h| h != suite.hash)
        {
            return None;
        }
        // Parity entries carry the block number in 23 bits.
        if suite.fec.scheme != FecScheme::None
            && m.chunk_count.div_ceil(u32::from(suite.fec.k)) >= 1 << 23
        {
            return None;
        }
        if m.total_size == 0 {
            if m.chunk_count != 0 {
                return None;
            }
        } else {
            if m.chunk_size == 0 || m.chunk_size as usize + TAG_LEN > self.cfg.max_payload {
                return None;
            }
            if m.total_size.div_ceil(u64::from(m.chunk_size)) != u64::from(m.chunk_count) {
                return None;
            }
        }
        if m.chunk_count > self.cfg.max_chunks {
            return None;
        }
        let cipher = self.factory.cipher(suite.cipher, &self.cfg.key)?;
        let hash = self.factory.hash(suite.hash)?;
        let fec = if self.cfg.use_fec && suite.fec.scheme != FecScheme::None {
            Some(self.factory.fec(suite.fec)?)
        } else {
            None
        };
        let min_shards = self.factory.min_shards(suite.fec);
        Some((
            Layers {
                cipher,
                hash,
                fec,
                min_shards,
            },
            suite,
        ))
    }

    /// Authenticates, verifies and records one chunk; returns (index, offset, plaintext length).
    fn on_chunk(
        &mut self,
        now: Instant,
        idx: u32,
        payload: &mut [u8],
        proof: Option<&[u8]>,
    ) -> Option<(u32, u64, usize)> {
        let Some(m) = self.manifest else {
            self.stats.unexpected += 1;
            return None;
        };
        if self.phase != Phase::Transfer {
            return None;
        }
        if idx >= m.chunk_count {
            self.stats.malformed += 1;
            return None;
        }
        let plen = plain_len(m.total_size, m.chunk_size, idx);
        if payload.len() != plen + TAG_LEN {
            self.stats.malformed += 1;
            return None;
        }
        if self.is_received(idx) || self.replay.contains(idx) {
            self.stats.duplicates += 1;
            return None;
        }
        let layers = self.layers.as_ref().expect("layers exist in Transfer");
        let fec_block = layers
            .fec
            .as_ref()
            .map(|_| idx / u32::from(self.suite.fec.k));
        // FEC works on ciphertext: keep a copy before opening in place.
        let shard_copy = fec_block.map(|_| {
            let mut s = payload.to_vec();
            s.resize(m.chunk_size as usize + TAG_LEN, 0);
            s
        });
        let (body, tag) = payload.split_at_mut(plen);
        let tag: &[u8; TAG_LEN] = (&*tag).try_into().expect("length checked");
        if layers.cipher.open(idx, body, tag).is_err() {
            self.stats.auth_failures += 1;
            self.stall_auth += 1;
            self.auth_streak += 1;
            if self.auth_streak >= 32 && self.stats.chunks_received == 0 {
                self.fail(PullError::AuthFailed);
            }
            return None;
        }
        let leaf = if proof.is_some() || !self.cfg.deferred_root {
            layers.hash.leaf(body)
        } else {
            [0; HASH_LEN]
        };
        if let Some(proof) = proof {
            let siblings = proof
                .chunks_exact(HASH_LEN)
                .map(|c| <&Hash>::try_from(c).expect("32"));
            if !merkle::verify_proof(
                &layers.hash,
                &leaf,
                idx,
                m.chunk_count,
                siblings,
                &m.merkle_root,
            ) {
                self.stats.merkle_failures += 1;
                self.stall_merkle += 1;
                return None;
            }
        }
        self.auth_streak = 0;
        if let Some(f) = self.inflight.remove(&idx) {
            self.answered(now, &f);
        }
        self.on_delivery(now);
        self.accept(idx, leaf);
        if let (Some(b), Some(shard)) = (fec_block, shard_copy) {
            self.add_shard(b, (idx % u32::from(self.suite.fec.k)) as usize, shard, true);
        }
        if self.stats.chunks_received == u64::from(m.chunk_count) {
            self.finish();
        }
        Some((idx, u64::from(idx) * u64::from(m.chunk_size), plen))
    }

    fn accept(&mut self, idx: u32, leaf: Hash) {
        self.received[idx as usize / 64] |= 1 << (idx % 64);
        if let Some(l) = self.leaves.get_mut(idx as usize) {
            *l = leaf;
        }
        self.replay.check_and_set(idx);
        self.stats.chunks_received += 1;
        self.stall_auth = 0;
        self.stall_merkle = 0;
    }

    fn on_delivery(&mut self, now: Instant) {
        self.last_progress = now;
        self.loss *= 1.0 - 1.0 / 64.0;
        if self.cwnd < self.ssthresh {
            self.cwnd += 1.0;
        } else {
            self.cwnd += 1.0 / self.cwnd;
        }
        self.cwnd = self.cwnd.min(f64::from(self.cfg.max_window));
    }

    /// A loss is a congestion signal only when the RTT shows a standing queue; random
    /// loss on an uncongested path leaves the window alone (FEC and re-requests repair it).
    fn on_loss(&mut self, seq: u64) {
        self.loss = self.loss * (1.0 - 1.0 / 64.0) + 1.0 / 64.0;
        if self.congested() {
            self.reduce(seq);
        }
    }

    /// Upstream §6.3's signal, with an absolute floor so that a path whose base RTT is
    /// microseconds (loopback, a LAN) may still hold a useful window: the current delay
    /// (the least of the last [`RECENT_SAMPLES`] RTT samples) is more than twice the lowest
    /// seen and at least [`QUEUE_FLOOR`] above it.
    fn congested(&self) -> bool {
        let Some(min) = self.min_rtt else {
            return false;
        };
        if self.recent_len < RECENT_SAMPLES {
            return false;
        }
        let current = self.recent.iter().copied().min().unwrap_or(Duration::ZERO);
        current > min * 2 && current > min + QUEUE_FLOOR
    }

    /// Multiplicative decrease, on evidence from a request (`seq`) sent after the previous
    /// decrease: the smoothed RTT lags, and the queue a window built is only known to persist
    /// once a request made under the reduced window still sees it.
    fn reduce(&mut self, seq: u64) {
        if seq < self.reduced_at_seq {
            return;
        }
        tracing::debug!(
            cwnd = self.cwnd as u32,
            min_rtt_us = self.min_rtt.map_or(0, |d| d.as_micros() as u64),
            current_us = self.recent.iter().min().map_or(0, |d| d.as_micros() as u64),
            "window halved: standing queue"
        );
        self.ssthresh = (self.cwnd / 2.0).max(2.0);
        self.cwnd = self.ssthresh;
        self.reduced_at_seq = self.next_seq;
    }

    /// An in-flight entry was answered: when the answer is unambiguous (a first request,
    /// Karn's rule), advance the packet-threshold mark and sample the RTT.
    fn answered(&mut self, now: Instant, f: &Flight) {
        // An answer to a re-requested entry may be the late original: it proves nothing
        // about the order of later requests (and, moved forward, would make every older
        // outstanding entry look overtaken at once).
        if f.attempt == 0 {
            self.largest_answered = Some(self.largest_answered.map_or(f.seq, |l| l.max(f.seq)));
            self.sample_rtt(now.saturating_since(f.sent), Some(f.seq));
        }
    }

    /// Request-to-arrival latency of first-attempt chunks (and the handshake).
    pub fn latency(&self) -> &Latency {
        &self.latency
    }

    fn sample_rtt(&mut self, sample: Duration, seq: Option<u64>) {
        self.recent[self.recent_len % RECENT_SAMPLES] = sample;
        self.recent_len += 1;
        self.min_rtt = Some(self.min_rtt.map_or(sample, |m| m.min(sample)));
        self.latency
            .record(sample.as_micros().min(u64::MAX as u128) as u64);
        match self.srtt {
            None => {
                self.srtt = Some(sample);
                self.rttvar = sample / 2;
            }
            Some(srtt) => {
                let diff = srtt.abs_diff(sample);
                self.rttvar = (self.rttvar * 3 + diff) / 4;
                self.srtt = Some((srtt * 7 + sample) / 8);
            }
        }
        if let (true, Some(seq)) = (self.congested(), seq) {
            self.reduce(seq);
        }
    }

    fn on_parity(&mut self, now: Instant, p: &FecParity<'_>) {
        let Some(m) = self.manifest else {
            self.stats.unexpected += 1;
            return;
        };
        if self.phase != Phase::Transfer {
            return;
        }
        let fec = self.suite.fec;
        let shard_len = m.chunk_size as usize + TAG_LEN;
        let blocks = m.chunk_count.div_ceil(u32::from(fec.k.max(1)));
        if fec.scheme == FecScheme::None
            || p.fec_n != fec.n
            || p.fec_k != fec.k
            || p.block_index >= blocks
            || usize::from(p.parity_index) >= fec.parity()
            || p.payload.len() != shard_len
        {
            self.stats.malformed += 1;
            return;
        }
        self.stats.parity_received += 1;
        let entry = make_parity_entry(p.block_index, p.parity_index);
        if let Some(f) = self.inflight.remove(&entry) {
            self.answered(now, &f);
            self.on_delivery(now);
            self.parity_resolved(p.block_index);
        }
        if self.layers.as_ref().is_none_or(|l| l.fec.is_none()) {
            return;
        }
        let slot = usize::from(fec.k) + usize::from(p.parity_index);
        self.add_shard(p.block_index, slot, p.payload.to_vec(), false);
    }

    /// Records a shard of `block`; rebuilds missing chunks once enough shards are in.
    fn add_shard(&mut self, block: u32, slot: usize, shard: Vec<u8>, is_data: bool) {
        let m = self.manifest.expect("manifest");
        let (n, k) = (usize::from(self.suite.fec.n), usize::from(self.suite.fec.k));
        let first = block as usize * k;
        if !self.blocks.contains_key(&block) {
            let mut shards: Vec<Option<Vec<u8>>> = vec![None; n];
            let mut have = 0;
            let mut missing = 0;
            for (j, s) in shards.iter_mut().enumerate().take(k) {
                let idx = first + j;
                if idx >= m.chunk_count as usize {
                    *s = Some(vec![0; m.chunk_size as usize + TAG_LEN]);
                    have += 1;
                } else if !self.is_received(idx as u32) || (is_data && j == slot) {
                    missing += 1;
                }
            }
            if missing == 0 {
                return;
            }
            self.blocks.insert(
                block,
                Block {
                    shards,
                    have,
                    missing_data: missing,
                },
            );
        }
        let b = self.blocks.get_mut(&block).expect("inserted");
        if b.shards[slot].is_some() {
            return;
        }
        b.shards[slot] = Some(shard);
        b.have += 1;
        if is_data {
            b.missing_data -= 1;
        }
        if b.missing_data == 0 {
            self.blocks.remove(&block);
            return;
        }
        let min = self.layers.as_ref().map_or(k, |l| l.min_shards);
        if b.have >= min.min(n) {
            self.try_rebuild(block);
        }
    }

    fn try_rebuild(&mut self, block: u32) {
        let m = self.manifest.expect("manifest");
        let k = usize::from(self.suite.fec.k);
        let Some(mut b) = self.blocks.remove(&block) else {
            return;
        };
        let layers = self.layers.as_ref().expect("layers");
        let Some(fec) = layers.fec.as_ref() else {
            return;
        };
        let mut shards = b.shards.clone();
        if fec.reconstruct(&mut shards).is_err() {
            // Not enough yet (RaptorQ can need one more symbol): keep collecting.
            self.blocks.insert(block, b);
            return;
        }
        let mut rebuilt = Vec::new();
        for (j, shard) in shards.iter_mut().enumerate().take(k) {
            let idx = (block as usize * k + j) as u32;
            if idx >= m.chunk_count || self.is_received(idx) {
                continue;
            }
            let Some(mut s) = shard.take() else { continue };
            let plen = plain_len(m.total_size, m.chunk_size, idx);
            s.truncate(plen + TAG_LEN);
            let (body, tag) = s.split_at_mut(plen);
            let tag: [u8; TAG_LEN] = (&*tag).try_into().expect("16");
            if layers.cipher.open(idx, body, &tag).is_err() {
                // A corrupt parity shard poisoned the rebuild: forget parity, keep data.
                self.stats.fec_failures += 1;
                for p in b.shards.iter_mut().skip(k) {
                    if p.take().is_some() {
                        b.have -= 1;
                    }
                }
                self.blocks.insert(block, b);
                return;
            }
            s.truncate(plen);
            let leaf = if self.cfg.deferred_root {
                [0; HASH_LEN]
            } else {
                layers.hash.leaf(&s)
            };
            rebuilt.push((idx, leaf, s));
        }
        for (idx, leaf, data) in rebuilt {
            self.inflight.remove(&idx);
            self.accept(idx, leaf);
            self.stats.fec_recoveries += 1;
            self.events.push_back(PullerEvent::Recovered {
                index: idx,
                offset: u64::from(idx) * u64::from(m.chunk_size),
                data,
            });
        }
        if self.stats.chunks_received == u64::from(m.chunk_count) {
            self.finish();
        }
    }

    fn finish(&mut self) {
        let Some(m) = self.manifest else { return };
        if self.cfg.deferred_root && m.chunk_count > 0 {
            self.phase = Phase::Verifying;
            self.blocks.clear();
            self.events.push_back(PullerEvent::VerifyRoot);
            return;
        }
        let layers = self.layers.as_ref().expect("layers");
        let root = if m.chunk_count == 0 {
            layers.hash.leaf(&[])
        } else {
            merkle::root_of(&layers.hash, &self.leaves)
        };
        if bool::from(subtle::ConstantTimeEq::ct_eq(&root[..], &m.merkle_root[..])) {
            self.phase = Phase::Done;
            self.blocks.clear();
            self.events.push_back(PullerEvent::Complete);
        } else {
            self.stats.merkle_failures += 1;
            self.fail(PullError::MerkleFailed);
        }
    }

    /// The Merkle scheme of the accepted Manifest (for deferred-root verification).
    pub fn hash_scheme(&self) -> Option<&S::Hash> {
        self.layers.as_ref().map(|l| &l.hash)
    }

    /// Completes a deferred-root pull: `root` is the Merkle root the driver computed over
    /// the reassembled output. Ignored unless [`PullerEvent::VerifyRoot`] was emitted.
    pub fn handle_root(&mut self, root: &Hash) {
        if self.phase != Phase::Verifying {
            return;
        }
        let m = self.manifest.expect("verifying implies a manifest");
        if bool::from(subtle::ConstantTimeEq::ct_eq(&root[..], &m.merkle_root[..])) {
            self.phase = Phase::Done;
            self.events.push_back(PullerEvent::Complete);
        } else {
            self.stats.merkle_failures += 1;
            self.fail(PullError::MerkleFailed);
        }
    }

    /// Runs expired timers: handshake retries, loss detection, idle and periodic packets.
    pub fn handle_timeout(&mut self, now: Instant) {
        match self.phase {
            Phase::Handshake => {
                if now.saturating_since(self.started) >= self.cfg.handshake_timeout {
                    let e = if self.stats.bad_manifests > 0 {
                        PullError::BadManifest
                    } else {
                        PullError::HandshakeTimeout
                    };
                    self.fail(e);
                } else if now >= self.handshake_next {
                    self.want_pull_request = true;
                }
            }
            Phase::Transfer => {
                self.detect_losses(now);
                if now.saturating_since(self.last_progress) >= self.cfg.idle_timeout {
                    let e = if self.stall_merkle > 0 {
                        PullError::MerkleFailed
                    } else if self.stall_auth > 0 {
                        PullError::AuthFailed
                    } else {
                        PullError::Timeout
                    };
                    self.fail(e);
                    return;
                }
                if now >= self.next_rate_report {
                    self.want_rate_report = true;
                    self.next_rate_report = now + self.cfg.rate_report_interval;
                }
                if now.saturating_since(self.last_sent) >= self.cfg.keepalive_interval {
                    self.want_keepalive = true;
                }
                if self.token.is_some() && now >= self.next_token_refresh {
                    self.want_pull_request = true;
                    self.next_token_refresh = now + self.cfg.token_refresh;
                }
            }
            Phase::Verifying | Phase::Done | Phase::Failed => {}
        }
    }

    /// Time after which an entry overtaken by [`PACKET_THRESHOLD`] later answers is lost.
    fn reorder_window(&self) -> Duration {
        (self.srtt.unwrap_or(Duration::from_millis(100)) * 9 / 8).max(Duration::from_millis(1))
    }

    /// When the oldest in-flight entry will count as lost, if nothing arrives first.
    fn loss_deadline(&self, seq: u64, f: &Flight) -> Instant {
        let mut t = f.sent + self.rto(f.attempt);
        if self
            .largest_answered
            .is_some_and(|l| l >= seq + PACKET_THRESHOLD)
        {
            t = t.min(f.sent + self.reorder_window());
        }
        t
    }

    /// Declares lost the oldest entries that either were overtaken by [`PACKET_THRESHOLD`]
    /// later answers and are older than 9/8 RTT, or outlived their retransmission timeout.
    fn detect_losses(&mut self, now: Instant) {
        for level in 0..RETRY_LEVELS {
            while let Some(&(seq, entry)) = self.order[level].front() {
                let Some(f) = self.inflight.get(&entry).copied() else {
                    self.order[level].pop_front();
                    continue;
                };
                if f.seq != seq {
                    self.order[level].pop_front(); // superseded by a later request
                    continue;
                }
                if self.loss_deadline(seq, &f) > now {
                    break;
                }
                self.order[level].pop_front();
                self.inflight.remove(&entry);
                self.on_loss(f.seq);
                if entry & NAK_PARITY_BIT != 0 {
                    self.parity_resolved(parity_entry(entry).0);
                } else if !self.is_received(entry) {
                    self.chunk_lost(entry, f.attempt + 1);
                }
            }
        }
    }

    /// A lost data chunk is re-requested, unless parity for its block is still on its way:
    /// then it waits, since the block may be rebuilt without another round trip.
    fn chunk_lost(&mut self, idx: u32, attempt: u32) {
        if self.suite.fec.scheme != FecScheme::None {
            let block = idx / u32::from(self.suite.fec.k);
            let pending = self.parity_pending.get(&block).copied().unwrap_or(0) as usize;
            let waiting = self.fec_wait.get(&block).map_or(0, Vec::len);
            if pending > waiting {
                self.fec_wait.entry(block).or_default().push((idx, attempt));
                return;
            }
            // More chunks lost than parity on its way could rebuild: ask again now.
            for (i, a) in self.fec_wait.remove(&block).unwrap_or_default() {
                self.retransmit.push_back((i, a));
            }
        }
        self.retransmit.push_back((idx, attempt));
    }

    /// One parity request of `block` was answered, lost or dropped; when none is left,
    /// chunks still missing from the block are re-requested.
    fn parity_resolved(&mut self, block: u32) {
        let Some(n) = self.parity_pending.get_mut(&block) else {
            return;
        };
        *n = n.saturating_sub(1);
        if *n > 0 {
            return;
        }
        self.parity_pending.remove(&block);
        for (idx, attempt) in self.fec_wait.remove(&block).unwrap_or_default() {
            if !self.is_received(idx) {
                self.retransmit.push_back((idx, attempt));
            }
        }
    }

    /// The earliest loss deadline over the retry levels (a stale front only makes it early).
    fn next_loss_deadline(&self) -> Option<Instant> {
        self.order
            .iter()
            .filter_map(|q| q.front())
            .map(|(seq, entry)| match self.inflight.get(entry) {
                Some(f) if f.seq == *seq => self.loss_deadline(*seq, f),
                _ => Instant::ZERO,
            })
            .min()
    }

    /// The next instant [`Puller::handle_timeout`] must run, if any.
    #[must_use]
    pub fn poll_timeout(&self) -> Option<Instant> {
        match self.phase {
            Phase::Handshake => Some(
                self.handshake_next
                    .max(self.started)
                    .min(self.started + self.cfg.handshake_timeout),
            ),
            Phase::Transfer => {
                let mut t = (self.last_progress + self.cfg.idle_timeout)
                    .min(self.next_rate_report)
                    .min(self.last_sent + self.cfg.keepalive_interval);
                if self.token.is_some() {
                    t = t.min(self.next_token_refresh);
                }
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
        let repr_len = if self.want_pull_request {
            self.want_pull_request = false;
            if self.phase == Phase::Handshake {
                self.handshake_tries += 1;
                let backoff =
                    self.cfg.handshake_interval * (1 << (self.handshake_tries - 1).min(3));
                self.handshake_next = now + backoff.min(Duration::from_secs(1));
            }
            self.last_pull_request = now;
            self.stats.pull_requests_sent += 1;
            let mut flags = PullFlags::ADDR_VALIDATION;
            if self.cfg.want_proofs {
                flags |= PullFlags::PROOFS;
            }
            if self.cfg.use_fec {
                flags |= PullFlags::FEC;
            }
            self.emit(
                buf,
                &Repr::PullRequest(PullRequest {
                    exposure_id: self.cfg.exposure_id,
                    window_size: self.cwnd as u32,
                    loss_rate_q16: self.loss_q16(),
                    flags,
                    version_min: u16::from(VERSION),
                    version_max: u16::from(VERSION),
                }),
            )
        } else if self.phase != Phase::Transfer {
            return None;
        } else if self.want_rate_report {
            self.want_rate_report = false;
            self.stats.rate_reports_sent += 1;
            self.emit(
                buf,
                &Repr::RateReport(RateReport {
                    exposure_id: self.cfg.exposure_id,
                    rtt_us: self
                        .srtt
                        .map_or(0, |d| d.as_micros().min(u32::MAX as u128) as u32),
                    loss_rate_q16: self.loss_q16(),
                    window_size: self.cwnd as u32,
                    timestamp_us: now.total_micros(),
                }),
            )
        } else if let Some(len) = self.build_nak(now, buf) {
            len
        } else if self.want_keepalive {
            self.want_keepalive = false;
            self.stats.keepalives_sent += 1;
            self.emit(
                buf,
                &Repr::Keepalive(Keepalive {
                    exposure_id: self.cfg.exposure_id,
                    timestamp_us: now.total_micros(),
                }),
            )
        } else {
            return None;
        };
        self.last_sent = now;
        self.want_keepalive = false;
        self.stats.datagrams_sent += 1;
        self.stats.bytes_sent += repr_len as u64;
        Some(Transmit {
            destination: self.cfg.exposer,
            size: repr_len,
            segment_size: None,
        })
    }

    fn loss_q16(&self) -> u32 {
        (self.loss.clamp(0.0, 1.0) * 65535.0) as u32
    }

    fn emit(&self, buf: &mut Vec<u8>, repr: &Repr<'_>) -> usize {
        let len = repr.buffer_len();
        buf.resize(len, 0);
        repr.emit(buf);
        len
    }

    /// Parity shards to ask for up front for a block of `k` shards, given the loss seen.
    fn proactive_parity(&self) -> usize {
        let fec = self.suite.fec;
        let k = usize::from(fec.k) as f64;
        let l = self.loss.min(0.5);
        if l < 0.002 {
            return 0;
        }
        let extra = self
            .layers
            .as_ref()
            .map_or(0, |x| x.min_shards.saturating_sub(usize::from(fec.k)));
        let want = (k * l / (1.0 - l) * 1.5).ceil() as usize + 1 + extra;
        want.min(fec.parity())
    }

    fn build_nak(&mut self, now: Instant, buf: &mut Vec<u8>) -> Option<usize> {
        let m = self.manifest?;
        let window = self.cwnd as usize;
        if self.inflight.len() >= window {
            return None;
        }
        let room = (window - self.inflight.len()).min(self.cfg.max_entries_per_nak);
        let mut entries: Vec<u32> = Vec::with_capacity(room);
        let mut attempts: Vec<u32> = Vec::with_capacity(room);
        let mut rerequests = 0u64;
        let fec_on = self.layers.as_ref().is_some_and(|l| l.fec.is_some());
        while entries.len() < room {
            if let Some((idx, attempt)) = self.retransmit.pop_front() {
                if !self.is_received(idx) && !self.inflight.contains_key(&idx) {
                    entries.push(idx);
                    attempts.push(attempt);
                    rerequests += 1;
                }
                continue;
            }
            if let Some(e) = self.parity_queue.pop_front() {
                let (block, _) = parity_entry(e);
                if self.block_wanted(block) && !self.inflight.contains_key(&e) {
                    entries.push(e);
                    attempts.push(0);
                } else {
                    self.parity_resolved(block);
                }
                continue;
            }
            if self.next_new >= m.chunk_count {
                break;
            }
            let idx = self.next_new;
            self.next_new += 1;
            if self.is_received(idx) {
                continue;
            }
            entries.push(idx);
            attempts.push(0);
            if fec_on {
                let k = u32::from(self.suite.fec.k);
                let block = idx / k;
                let last = ((block + 1) * k).min(m.chunk_count) - 1;
                if idx == last {
                    let count = self.proactive_parity();
                    for p in 0..count {
                        self.parity_queue
                            .push_back(make_parity_entry(block, p as u8));
                    }
                    if count > 0 {
                        *self.parity_pending.entry(block).or_default() += count as u32;
                    }
                }
            }
        }
        if entries.is_empty() {
            return None;
        }
        for (&e, &attempt) in entries.iter().zip(&attempts) {
            let seq = self.next_seq;
            self.next_seq += 1;
            self.inflight.insert(
                e,
                Flight {
                    sent: now,
                    attempt,
                    seq,
                },
            );
            self.order[(attempt as usize).min(RETRY_LEVELS - 1)].push_back((seq, e));
            if e & NAK_PARITY_BIT != 0 {
                self.stats.parity_requested += 1;
            } else if attempt == 0 {
                self.stats.chunks_requested += 1;
            } else {
                self.stats.chunks_rerequested += 1;
            }
        }
        self.stats.naks_sent += 1;
        if rerequests > 0 {
            self.stats.retransmit_naks += 1;
        }
        let mut flags = NakFlags::empty();
        if self.token.is_some() {
            flags |= NakFlags::TOKEN;
        }
        if self.cfg.want_proofs {
            flags |= NakFlags::PROOFS;
        }
        let repr = Repr::Nak(Nak {
            exposure_id: self.cfg.exposure_id,
            flags,
            indices: IndexList::Slice(&entries),
            token: self.token,
        });
        Some(self.emit(buf, &repr))
    }

    /// True while some chunk of `block` is still missing.
    fn block_wanted(&self, block: u32) -> bool {
        let Some(m) = self.manifest else { return false };
        let k = u32::from(self.suite.fec.k);
        let first = block * k;
        let end = (first + k).min(m.chunk_count);
        (first..end).any(|i| !self.is_received(i))
    }
}
