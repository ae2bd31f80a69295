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

use std::collections::VecDeque;
use std::sync::Arc;

use rgtp_wire::{
    ChunkData, ChunkDataWithProof, ExposureId, FecParity, Hash, Manifest, ManifestFlags, Nak,
    NakFlags, PullFlags, PullRequest, Repr, Token, HASH_LEN, NAK_PARITY_BIT, VERSION,
};

use crate::crypto::{CipherSuite, TAG_LEN};
use crate::fec::{FecCodec, FecError, FecParams, FecScheme};
use crate::latency::Latency;
use crate::merkle::{MerkleScheme, MerkleTree};
use crate::suite::{SuiteError, SuiteId};
use crate::token::TokenKey;
use crate::{Peer, Transmit};
use redgiant_base::Instant;

/// Backing memory for an exposure's ciphertext (a `Vec`, or an anonymous map for large files).
pub trait ChunkStore: Send + Sync + 'static {
    /// The bytes.
    fn bytes(&self) -> &[u8];
    /// The bytes, mutably (only during [`Exposure::build`]).
    fn bytes_mut(&mut self) -> &mut [u8];
}

impl ChunkStore for Vec<u8> {
    fn bytes(&self) -> &[u8] {
        self
    }
    fn bytes_mut(&mut self) -> &mut [u8] {
        self
    }
}

/// Why an exposure could not be built.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum BuildError {
    /// Chunk size 0, or larger than a packet can carry (with a proof, since any puller
    /// may ask for one).
    BadChunkSize,
    /// More chunks than 32-bit indices (or FEC block numbers) allow.
    TooManyChunks,
    /// The store handed in has the wrong length.
    StoreSize {
        /// Bytes needed.
        needed: usize,
        /// Bytes given.
        given: usize,
    },
    /// The suite cannot be signalled in a Manifest.
    Suite(SuiteError),
    /// The FEC codec failed.
    Fec(FecError),
    /// Sealing failed.
    Seal,
}

impl core::fmt::Display for BuildError {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        match self {
            BuildError::BadChunkSize => f.write_str(
                "chunk size must be at least 1 and small enough that a chunk with its Merkle proof fits a 65507-byte datagram",
            ),
            BuildError::TooManyChunks => f.write_str("too many chunks for 32-bit chunk indices"),
            BuildError::StoreSize { needed, given } => {
                write!(f, "chunk store has {given} bytes, {needed} needed")
            }
            BuildError::Suite(e) => write!(f, "suite cannot be signalled: {e:?}"),
            BuildError::Fec(e) => write!(f, "FEC encoding failed: {e}"),
            BuildError::Seal => f.write_str("AEAD sealing failed"),
        }
    }
}

impl std::error::Error for BuildError {}

/// Largest chunk size we accept (a chunk plus headers must fit a 65,507-byte UDP datagram).
pub const MAX_CHUNK_SIZE: u32 = 65_000;

/// Largest datagram an exposer ever emits: the UDP payload limit.
pub const MAX_DATAGRAM: usize = 65_507;

/// Size of a Chunk_Data_With_Proof carrying a full chunk of `chunk_size` for `chunk_count` chunks:
/// the exposure's largest packet, since any puller may ask for proofs.
pub fn max_packet_len(chunk_size: u32, chunk_count: u32) -> usize {
    25 + HASH_LEN * crate::merkle::proof_depth(chunk_count) + chunk_size as usize + TAG_LEN
}

/// An immutable, pre-encrypted, Merkle-committed, FEC-coded dataset.
pub struct Exposure {
    id: ExposureId,
    suite: SuiteId,
    total_size: u64,
    chunk_size: u32,
    chunk_count: u32,
    tree: MerkleTree,
    store: Box<dyn ChunkStore>,
    parity: Vec<u8>,
}

impl core::fmt::Debug for Exposure {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.debug_struct("Exposure")
            .field("id", &self.id)
            .field("suite", &self.suite)
            .field("total_size", &self.total_size)
            .field("chunk_size", &self.chunk_size)
            .field("chunk_count", &self.chunk_count)
            .finish_non_exhaustive()
    }
}

/// Rejects chunk sizes no packet can carry (checked before anything is allocated).
fn check_chunk_size(chunk_size: u32) -> Result<(), BuildError> {
    if chunk_size == 0 || chunk_size > MAX_CHUNK_SIZE {
        return Err(BuildError::BadChunkSize);
    }
    Ok(())
}

/// Number of chunks for `total` bytes in chunks of `chunk_size`.
pub fn chunk_count(total: u64, chunk_size: u32) -> u64 {
    total.div_ceil(u64::from(chunk_size.max(1)))
}

impl Exposure {
    /// Bytes of store [`Exposure::build_into`] needs.
    pub fn store_len(total_size: u64, chunk_size: u32) -> usize {
        (chunk_count(total_size, chunk_size) * (u64::from(chunk_size) + TAG_LEN as u64)) as usize
    }

    /// Seals `data` chunk by chunk into a fresh `Vec`, builds the tree and parity.
    pub fn build<C, H, F>(
        id: ExposureId,
        data: &[u8],
        chunk_size: u32,
        cipher: &C,
        hash: &H,
        fec: &F,
        proofs: bool,
    ) -> Result<Exposure, BuildError>
    where
        C: CipherSuite + ?Sized,
        H: MerkleScheme + ?Sized,
        F: FecCodec + ?Sized,
    {
        check_chunk_size(chunk_size)?;
        let store = vec![0u8; Self::store_len(data.len() as u64, chunk_size)];
        Self::build_into(
            id,
            data,
            chunk_size,
            cipher,
            hash,
            fec,
            proofs,
            Box::new(store),
        )
    }

    /// As [`Exposure::build`], sealing into a store the caller allocated
    /// (exactly [`Exposure::store_len`] bytes).
    #[allow(clippy::too_many_arguments)]
    pub fn build_into<C, H, F>(
        id: ExposureId,
        data: &[u8],
        chunk_size: u32,
        cipher: &C,
        hash: &H,
        fec: &F,
        proofs: bool,
        mut store: Box<dyn ChunkStore>,
    ) -> Result<Exposure, BuildError>
    where
        C: CipherSuite + ?Sized,
        H: MerkleScheme + ?Sized,
        F: FecCodec + ?Sized,
    {
        check_chunk_size(chunk_size)?;
        let total = data.len() as u64;
        let count = chunk_count(total, chunk_size);
        if count > u64::from(u32::MAX) {
            return Err(BuildError::TooManyChunks);
        }
        let count = count as u32;
        if max_packet_len(chunk_size, count) > MAX_DATAGRAM {
            return Err(BuildError::BadChunkSize);
        }
        let params = fec.params();
        if params.scheme != FecScheme::None {
            let blocks = count.div_ceil(u32::from(params.k));
            if blocks >= 1 << 23 {
                return Err(BuildError::TooManyChunks);
            }
        }
        let suite = SuiteId {
            cipher: cipher.id(),
            hash: hash.id(),
            fec: params,
            proofs,
        };
        suite.manifest_flags().map_err(BuildError::Suite)?;
        let stride = chunk_size as usize + TAG_LEN;
        let needed = Self::store_len(total, chunk_size);
        if store.bytes().len() != needed {
            return Err(BuildError::StoreSize {
                needed,
                given: store.bytes().len(),
            });
        }

        let mut leaves = Vec::with_capacity(count as usize);
        {
            let out = store.bytes_mut();
            for (i, plain) in data.chunks(chunk_size as usize).enumerate() {
                leaves.push(hash.leaf(plain));
                let slot = &mut out[i * stride..i * stride + plain.len() + TAG_LEN];
                let (body, tag) = slot.split_at_mut(plain.len());
                body.copy_from_slice(plain);
                let t = cipher.seal(i as u32, body).map_err(|_| BuildError::Seal)?;
                tag.copy_from_slice(&t);
            }
        }
        let tree = MerkleTree::from_leaves(hash, leaves);

        let mut exposure = Exposure {
            id,
            suite,
            total_size: total,
            chunk_size,
            chunk_count: count,
            tree,
            store,
            parity: Vec::new(),
        };
        exposure.parity = exposure.encode_parity(fec)?;
        Ok(exposure)
    }

    fn encode_parity<F: FecCodec + ?Sized>(&self, fec: &F) -> Result<Vec<u8>, BuildError> {
        let params = self.suite.fec;
        if params.scheme == FecScheme::None || self.chunk_count == 0 {
            return Ok(Vec::new());
        }
        let k = usize::from(params.k);
        let m = params.parity();
        let shard = self.shard_len();
        let blocks = self.block_count() as usize;
        let mut parity = vec![0u8; blocks * m * shard];
        let zero = vec![0u8; shard];
        let mut padded: Vec<Vec<u8>> = Vec::new();
        for b in 0..blocks {
            padded.clear();
            let mut data: Vec<&[u8]> = Vec::with_capacity(k);
            // Shards are full-length except the exposure's last chunk, which is padded.
            let mut last_padded = None;
            for j in 0..k {
                let idx = b * k + j;
                if idx >= self.chunk_count as usize {
                    data.push(&zero);
                } else {
                    let c = self.ciphertext(idx as u32);
                    if c.len() == shard {
                        data.push(c);
                    } else {
                        let mut p = c.to_vec();
                        p.resize(shard, 0);
                        last_padded = Some(p);
                        data.push(&[]);
                    }
                }
            }
            if let Some(p) = last_padded.as_ref() {
                for d in data.iter_mut() {
                    if d.is_empty() {
                        *d = p;
                    }
                }
            }
            let region = &mut parity[b * m * shard..(b + 1) * m * shard];
            let mut outs: Vec<&mut [u8]> = region.chunks_mut(shard).collect();
            fec.encode(&data, &mut outs).map_err(BuildError::Fec)?;
        }
        Ok(parity)
    }

    /// Exposure_ID.
    pub fn id(&self) -> &ExposureId {
        &self.id
    }

    /// The suite.
    pub fn suite(&self) -> SuiteId {
        self.suite
    }

    /// Plaintext size.
    pub fn total_size(&self) -> u64 {
        self.total_size
    }

    /// Plaintext bytes per chunk.
    pub fn chunk_size(&self) -> u32 {
        self.chunk_size
    }

    /// Number of chunks.
    pub fn chunk_count(&self) -> u32 {
        self.chunk_count
    }

    /// Merkle root.
    pub fn root(&self) -> Hash {
        self.tree.root()
    }

    /// FEC shard length: chunk size plus tag.
    pub fn shard_len(&self) -> usize {
        self.chunk_size as usize + TAG_LEN
    }

    /// Number of FEC blocks (0 without FEC).
    pub fn block_count(&self) -> u32 {
        match self.suite.fec.scheme {
            FecScheme::None => 0,
            _ => self.chunk_count.div_ceil(u32::from(self.suite.fec.k)),
        }
    }

    /// Ciphertext‖tag of chunk `index`.
    ///
    /// # Panics
    /// If `index >= chunk_count()`.
    pub fn ciphertext(&self, index: u32) -> &[u8] {
        let stride = self.shard_len();
        let start = index as usize * stride;
        let len = plain_len(self.total_size, self.chunk_size, index) + TAG_LEN;
        &self.store.bytes()[start..start + len]
    }

    /// Parity shard `p` of block `block`.
    ///
    /// # Panics
    /// If out of range.
    pub fn parity(&self, block: u32, p: u8) -> &[u8] {
        let m = self.suite.fec.parity();
        let shard = self.shard_len();
        let start = (block as usize * m + usize::from(p)) * shard;
        &self.parity[start..start + shard]
    }

    /// The Merkle tree.
    pub fn tree(&self) -> &MerkleTree {
        &self.tree
    }

    /// The Manifest for this exposure (without a token).
    pub fn manifest(&self) -> Manifest {
        Manifest {
            exposure_id: self.id,
            total_size: self.total_size,
            chunk_count: self.chunk_count,
            chunk_size: self.chunk_size,
            merkle_root: self.tree.root(),
            fec_n: self.suite.fec.n,
            fec_k: self.suite.fec.k,
            flags: self
                .suite
                .manifest_flags()
                .unwrap_or(ManifestFlags::empty()),
            token: None,
        }
    }

    /// Bytes held: ciphertext, parity and tree.
    pub fn memory_bytes(&self) -> usize {
        self.store.bytes().len() + self.parity.len() + self.chunk_count as usize * 2 * HASH_LEN
    }
}

/// Plaintext length of chunk `index`.
pub fn plain_len(total: u64, chunk_size: u32, index: u32) -> usize {
    let start = u64::from(index) * u64::from(chunk_size);
    (total.saturating_sub(start)).min(u64::from(chunk_size)) as usize
}

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
    /// Largest payload accepted when parsing.
    pub max_payload: usize,
    /// Serve NAKs without a token as if validated, as upstream v1 exposers do.
    /// This lifts the amplification bound; use only on trusted networks.
    pub dangerous_serve_unvalidated: bool,
    /// Secret for address-validation tokens (spec §5.3): derived from the key and
    /// Exposure_ID by the builder when left zero, or drawn from a CSPRNG.
    pub token_secret: [u8; 32],
}

impl Default for ExposerConfig {
    fn default() -> Self {
        ExposerConfig {
            amplification_limit: 3,
            max_entries_per_request: 256,
            queue_limit: 1024,
            max_segments: 1,
            max_payload: 65_507,
            dangerous_serve_unvalidated: false,
            token_secret: [0; 32],
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

enum Job {
    Manifest {
        to: Peer,
        token: Option<Token>,
        budget: Option<usize>,
        at: Instant,
    },
    Serve {
        to: Peer,
        entries: Vec<u32>,
        pos: usize,
        proofs: bool,
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
    pressure: (Instant, u32, u32),
    service: Latency,
}

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
            pressure: (Instant::ZERO, 0, 0),
            service: Latency::default(),
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
        self.pressure.1.max(self.pressure.2)
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
        let (start, cur, prev) = &mut self.pressure;
        let window = 100_000;
        let elapsed = now.total_micros().saturating_sub(start.total_micros());
        if elapsed >= 2 * window {
            *prev = 0;
            *cur = 0;
            *start = now;
        } else if elapsed >= window {
            *prev = *cur;
            *cur = 0;
            *start = *start + core::time::Duration::from_micros(window);
        }
        *cur += 1;
    }

    fn budget(&mut self, validated: bool, request_len: usize) -> Option<usize> {
        if validated || self.config.dangerous_serve_unvalidated {
            None
        } else {
            self.stats.unvalidated_bytes_in += request_len as u64;
            Some(request_len.saturating_mul(self.config.amplification_limit))
        }
    }

    fn push(&mut self, job: Job) {
        if self.queue.len() >= self.config.queue_limit {
            self.stats.busy += 1;
            return;
        }
        self.queue.push_back(job);
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
        let budget = self.budget(false, len);
        self.push(Job::Manifest {
            to: from,
            token,
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
        let entries: Vec<u32> = n.indices.iter().take(limit).collect();
        self.stats.requests += 1;
        let proofs = n.flags.contains(NakFlags::PROOFS) || self.exposure.suite.proofs;
        self.push(Job::Serve {
            to: from,
            entries,
            pos: 0,
            proofs,
            budget,
            at: now,
        });
    }

    /// Writes the next batch of datagrams into `buf` (cleared first). All datagrams of one
    /// batch go to one destination and, but for the last, have one size.
    #[must_use]
    pub fn poll_transmit(&mut self, now: Instant, buf: &mut Vec<u8>) -> Option<Transmit> {
        buf.clear();
        loop {
            let job = self.queue.front_mut()?;
            match job {
                Job::Manifest {
                    to,
                    token,
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
                    return Some(Transmit {
                        destination: to,
                        size: len,
                        segment_size: None,
                    });
                }
                Job::Serve { .. } => {
                    if let Some(t) = self.serve_batch(now, buf) {
                        return Some(t);
                    }
                }
            }
        }
    }

    /// Emits up to `max_segments` datagrams of the front Serve job; pops it when done.
    fn serve_batch(&mut self, now: Instant, buf: &mut Vec<u8>) -> Option<Transmit> {
        let exposure = Arc::clone(&self.exposure);
        let max_segments = self.config.max_segments.max(1);
        let Some(Job::Serve {
            to,
            entries,
            pos,
            proofs,
            budget,
            at,
        }) = self.queue.front_mut()
        else {
            return None;
        };
        let to = *to;
        let mut seg: Option<usize> = None;
        let mut count = 0usize;
        let mut finished_short = false;
        while *pos < entries.len() && count < max_segments && !finished_short {
            let e = entries[*pos];
            let Some(len) = entry_len(&exposure, e, *proofs) else {
                self.stats.out_of_range += 1;
                *pos += 1;
                continue;
            };
            if let Some(s) = seg {
                if len > s {
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
            let start = buf.len();
            buf.resize(start + len, 0);
            emit_entry(&exposure, e, *proofs, &mut buf[start..]);
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
            self.queue.pop_front();
            self.service
                .record(now.saturating_since(at).as_micros() as u64);
        }
        if count == 0 {
            return None;
        }
        self.stats.datagrams_out += count as u64;
        self.stats.bytes_out += buf.len() as u64;
        let size = buf.len();
        Some(Transmit {
            destination: to,
            size,
            segment_size: (count > 1).then_some(seg.unwrap_or(size)),
        })
    }
}

/// Splits a parity entry into (block, parity index).
pub fn parity_entry(e: u32) -> (u32, u8) {
    ((e & !NAK_PARITY_BIT) >> 8, (e & 0xff) as u8)
}

/// Builds a parity entry.
pub fn make_parity_entry(block: u32, p: u8) -> u32 {
    NAK_PARITY_BIT | (block << 8) | u32::from(p)
}

fn entry_len(x: &Exposure, e: u32, proofs: bool) -> Option<usize> {
    if e & NAK_PARITY_BIT != 0 {
        let (block, p) = parity_entry(e);
        if block >= x.block_count() || usize::from(p) >= x.suite.fec.parity() {
            return None;
        }
        Some(28 + x.shard_len())
    } else if e < x.chunk_count {
        let payload = plain_len(x.total_size, x.chunk_size, e) + TAG_LEN;
        Some(if proofs {
            25 + HASH_LEN * x.tree.depth() + payload
        } else {
            24 + payload
        })
    } else {
        None
    }
}

fn emit_entry(x: &Exposure, e: u32, proofs: bool, out: &mut [u8]) {
    if e & NAK_PARITY_BIT != 0 {
        let (block, p) = parity_entry(e);
        let FecParams { n, k, .. } = x.suite.fec;
        Repr::FecParity(FecParity {
            exposure_id: x.id,
            block_index: block,
            parity_index: p,
            fec_n: n,
            fec_k: k,
            payload: x.parity(block, p),
        })
        .emit(out);
    } else if proofs {
        let mut proof = [0u8; HASH_LEN * 32];
        let depth = x.tree.depth();
        x.tree.write_proof(e, &mut proof[..depth * HASH_LEN]);
        Repr::ChunkDataWithProof(ChunkDataWithProof {
            exposure_id: x.id,
            chunk_index: e,
            proof: &proof[..depth * HASH_LEN],
            payload: x.ciphertext(e),
        })
        .emit(out);
    } else {
        Repr::ChunkData(ChunkData {
            exposure_id: x.id,
            chunk_index: e,
            payload: x.ciphertext(e),
        })
        .emit(out);
    }
}
