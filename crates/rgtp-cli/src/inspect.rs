//! Inspection: what a capture shows about the RGTP traffic in it, for
//! `rgtp inspect FILE [--ticket T] [-o OUT] [--json]`.
//!
//! [`inspect`] reads every record of a [`Capture`] once, groups the RGTP
//! packets by Exposure_ID and reports, per exposure, who talked to whom, what
//! was asked for and what was answered, what never arrived, what FEC and the
//! puller's Rate_Reports say, and every malformed datagram with the
//! `rgtp-wire` reason. With a ticket it also replays the capture into a fresh
//! puller ([`replay_pull`]) and reports the verdict, the puller's counters and
//! the recovered bytes ([`Report::recovered`], for `-o`; never in the JSON).
//!
//! # What counts as what
//!
//! - A record whose frame holds no UDP datagram and no EtherType 0x88B5
//!   payload (ARP, TCP, …) is **not RGTP** (`not_rgtp.frames`). A frame that
//!   cannot be decoded (cut headers, IP fragments, impossible IP lengths) is
//!   **undecodable** (`undecodable_frames`), with the decoder's reason.
//! - A raw 0x88B5 payload is always an RGTP candidate. A UDP payload is one
//!   when its first byte is 1..=2 and its second 1..=8, or when its address
//!   pair (either way round) carried at least one valid RGTP packet in the
//!   capture; other UDP payloads (DNS, …) are **not RGTP**
//!   (`not_rgtp.udp_datagrams`).
//! - A datagram that is a segment batch captured whole (a UDP GSO send, seen on
//!   the sending host or on loopback before the kernel cuts it up:
//!   [`rgtp_wire::split_batch`]) counts as the packets it holds, each classified
//!   on its own; the replay with a ticket feeds them one by one too.
//! - A candidate that [`Repr::parse`] rejects (parsed with a payload limit of
//!   [`MAX_PAYLOAD`]) is **malformed**. It is attributed to the exposure named
//!   at bytes 4..20 when that exposure has valid packets, else to the one
//!   exposure whose address pair it travelled on, else it is
//!   **unattributed** (`unattributed_malformed`).
//! - Roles, per exposure: the **exposers** are the sources of Manifest,
//!   Chunk_Data, Chunk_Data_With_Proof and FEC_Parity and the destinations of
//!   Pull_Request, NAK, Rate_Report and Keepalive; the **pullers** are the
//!   other ends. A packet goes `to_exposer` when only its destination is an
//!   exposer, `from_exposer` when only its source is, else the way its type
//!   normally goes. Byte counts are RGTP packet bytes (no frame headers).
//! - Requests: each NAK entry is a chunk index, or a parity entry (bit 31 set,
//!   when the Manifest announces FEC or no Manifest was seen). Entries past the
//!   256th of a NAK are `over_limit` (an exposer serves only the first 256,
//!   spec §3.5); entries naming no chunk or shard of the Manifest are
//!   `out_of_range`. Keys are (puller, entry): a **re-request** is an entry a
//!   puller asked for again (`rerequests` counts the repeats, `rerequested`
//!   the entries asked for more than once).
//! - **Loss seen**: over the servable entries (neither over the limit nor out
//!   of range), per (puller, entry), `max(requested - answered, 0)` summed,
//!   divided by the servable entries requested. A capture taken at the puller
//!   shows loss both ways; one taken at the exposer shows only requests that
//!   went unanswered.
//! - Chunks: `seen_more_than_once` counts (puller, index) pairs delivered more
//!   than once, `retransmitted` those requested more than once and delivered,
//!   `unrequested` the copies beyond the number of requests (replays, or a
//!   capture that started late). `missing` lists the Manifest's chunks never
//!   seen; `missing_fec_covered` counts those in a block where the data chunks
//!   and distinct parity shards seen reach `k` (Reed-Solomon) or `min(k+2, n)`
//!   (RaptorQ, the threshold our puller decodes at).
//! - Goodput: plaintext bytes of the distinct chunks seen divided by the time
//!   from the exposure's first to its last packet.
//! - RTT: `RTT_Us` of the Rate_Reports, zeros (no sample yet) left out;
//!   the median is the lower median. Loss is `Loss_Rate_Q16 / 65535 * 100` %.
//!
//! # JSON ([`Report::to_json`]); the key names are stable
//!
//! ```text
//! format                    "pcap" | "pcapng"
//! records                   records in the file
//! start_us, end_us          first and last record time, µs since the epoch (null if empty)
//! duration_us
//! rgtp_datagrams            RGTP candidates: valid_packets + malformed_total
//! valid_packets, malformed_total
//! not_rgtp                  {frames, udp_datagrams}
//! undecodable_frames        [{index, reason}]
//! exposures                 [exposure], in order of first appearance:
//!   exposure_id             32 hex digits
//!   exposers, pullers       [address]  ("192.0.2.1:9000", "[::1]:9000", "02-00-5e-10-00-01")
//!   first_us, last_us, duration_us
//!   packets                 {pull_request, manifest, chunk_data, chunk_data_with_proof,
//!                            fec_parity, nak, rate_report, keepalive}:
//!                            {to_exposer: {packets, bytes}, from_exposer: {packets, bytes}}
//!   manifest                null | {count, total_size, chunk_count, chunk_size, merkle_root,
//!                            fec_n, fec_k, flags, cipher, hash, fec, proofs, proof_runs,
//!                            token, consistent, problems: [text]}
//!                            cipher: "aes-256-gcm" | "chacha20-poly1305";
//!                            hash: "sha256" | "blake3" | "blake2b-256";
//!                            fec: "none" | "reed-solomon" | "raptorq"
//!   requests                {naks, naks_with_proofs, naks_with_proof_runs, chunk_entries,
//!                            parity_entries, distinct_chunks, rerequests, rerequested,
//!                            over_limit, out_of_range, servable, undelivered, loss_seen}
//!                            loss_seen: fraction 0..1, null when nothing was servable
//!   chunks                  {packets, payload_bytes, distinct, seen_more_than_once,
//!                            extra_copies, retransmitted, unrequested, out_of_range,
//!                            plaintext_bytes, missing, missing_ranges: [[first, last]],
//!                            missing_fec_covered}   (missing*: null without a Manifest)
//!   fec                     {parity_packets, distinct_shards, blocks_with_parity, mismatched}
//!   rate                    {reports, rtt_us: null | {min, median, max, last},
//!                            loss_percent: null | {last, max}, window: null | {last, max}}
//!   goodput_bytes_per_s     null when the exposure lasted no time
//!   malformed               [malformed]
//! unattributed_malformed    [malformed]
//!   malformed:              {index, ts_us, src, dst, length, class, reason}
//!                            class: truncated | unknown-version | unknown-type |
//!                            length-mismatch | bad-length | bad-proof-depth |
//!                            bad-nak-count | payload-too-large | bad-flags | other
//! pull                      null | {exposure_id, exposer, puller, verdict, detail,
//!                            merkle_root_verified, datagrams_fed, chunks_total,
//!                            counters: {chunks_received, duplicates, auth_failures,
//!                              merkle_failures, malformed, foreign, unexpected,
//!                              bad_manifests, parity_received, fec_recoveries,
//!                              fec_failures},
//!                            recovered_bytes, recovered_sha256}
//!                            verdict: complete | incomplete | io-error | handshake-timeout |
//!                            bad-manifest | timeout | auth-failed | merkle-failed | failed;
//!                            merkle_root_verified: true (complete), false (merkle-failed),
//!                            null (not decided)
//! ```

use std::collections::{HashMap, HashSet};
use std::fmt;

use rgtp_capture::{Capture, FrameError};
use rgtp_proto::puller::PullError;
use rgtp_proto::{Peer, PullerStats};
use rgtp_wire::{ExposureId, ManifestFlags, NakFlags, PacketType, Repr, NAK_PARITY_BIT};
use serde_json::{json, Value};
use sha2::{Digest, Sha256};

use rgtp::replay::{replay_pull, Pace, PullVerdict};
use rgtp::Ticket;
use rgtp_capture::frame::peer_text;

/// Payload limit the inspector parses with: the Length field's maximum, so
/// that only packets no peer could accept are malformed.
pub const MAX_PAYLOAD: usize = 65_535;
/// Entries of one NAK an exposer serves (spec §3.5).
pub const NAK_SERVED: usize = 256;
/// Malformed datagrams the text rendering lists per section.
pub const MALFORMED_SHOWN: usize = 20;

/// The eight packet types, in type-byte order.
pub const PACKET_TYPES: [PacketType; 8] = [
    PacketType::PullRequest,
    PacketType::Manifest,
    PacketType::ChunkData,
    PacketType::ChunkDataWithProof,
    PacketType::FecParity,
    PacketType::Nak,
    PacketType::RateReport,
    PacketType::Keepalive,
];

/// The spec's name of a packet type (`Chunk_Data_With_Proof`).
pub fn type_name(t: PacketType) -> &'static str {
    match t {
        PacketType::PullRequest => "Pull_Request",
        PacketType::Manifest => "Manifest",
        PacketType::ChunkData => "Chunk_Data",
        PacketType::ChunkDataWithProof => "Chunk_Data_With_Proof",
        PacketType::FecParity => "FEC_Parity",
        PacketType::Nak => "NAK",
        PacketType::RateReport => "Rate_Report",
        PacketType::Keepalive => "Keepalive",
    }
}

/// The JSON key of a packet type (`chunk_data_with_proof`).
pub fn type_key(t: PacketType) -> &'static str {
    match t {
        PacketType::PullRequest => "pull_request",
        PacketType::Manifest => "manifest",
        PacketType::ChunkData => "chunk_data",
        PacketType::ChunkDataWithProof => "chunk_data_with_proof",
        PacketType::FecParity => "fec_parity",
        PacketType::Nak => "nak",
        PacketType::RateReport => "rate_report",
        PacketType::Keepalive => "keepalive",
    }
}

fn type_slot(t: PacketType) -> usize {
    t as usize - 1
}

/// Whether the exposer sends this type (Manifest, chunks, parity).
fn sent_by_exposer(t: PacketType) -> bool {
    matches!(
        t,
        PacketType::Manifest
            | PacketType::ChunkData
            | PacketType::ChunkDataWithProof
            | PacketType::FecParity
    )
}

/// Everything [`inspect`] found.
#[derive(Debug, Clone)]
pub struct Report {
    /// File format.
    pub format: rgtp_capture::Format,
    /// Records in the file.
    pub records: usize,
    /// Time of the first record, µs since the Unix epoch.
    pub start_us: Option<u64>,
    /// Time of the last record.
    pub end_us: Option<u64>,
    /// Datagrams that parsed as RGTP packets.
    pub valid_packets: u64,
    /// Frames and datagrams that are not RGTP at all.
    pub not_rgtp: NotRgtp,
    /// Frames that could not be decoded down to a datagram.
    pub undecodable: Vec<FrameProblem>,
    /// One entry per Exposure_ID with valid packets, in order of first appearance.
    pub exposures: Vec<ExposureReport>,
    /// Malformed datagrams that belong to no exposure seen.
    pub unattributed: Vec<Malformed>,
    /// The replay with the ticket, when one was given.
    pub pull: Option<PullCheck>,
    /// The bytes the replay recovered and verified (only on a complete pull).
    pub recovered: Option<Vec<u8>>,
}

/// What is not RGTP.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct NotRgtp {
    /// Frames with neither UDP nor EtherType 0x88B5 (ARP, TCP, …).
    pub frames: u64,
    /// UDP datagrams that do not look like RGTP (DNS, …).
    pub udp_datagrams: u64,
}

/// A frame that holds no datagram because it is damaged.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FrameProblem {
    /// Record index, from 0.
    pub index: usize,
    /// The frame decoder's reason.
    pub reason: String,
}

/// A datagram that looks like RGTP but does not parse.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Malformed {
    /// Record index, from 0.
    pub index: usize,
    /// Capture time, µs since the Unix epoch.
    pub ts_us: u64,
    /// Sender.
    pub src: Peer,
    /// Receiver.
    pub dst: Peer,
    /// Datagram length.
    pub len: usize,
    /// Short error class (`length-mismatch`, `truncated`, …).
    pub class: &'static str,
    /// The `rgtp-wire` error text (plus a note when the frame was captured short).
    pub reason: String,
}

/// Packets and bytes.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Count {
    /// Packets.
    pub packets: u64,
    /// RGTP packet bytes.
    pub bytes: u64,
}

impl Count {
    fn add(&mut self, len: usize) {
        self.packets += 1;
        self.bytes += len as u64;
    }
}

/// One packet type's traffic, per direction.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct TypeCounts {
    /// Towards an exposer.
    pub to_exposer: Count,
    /// From an exposer.
    pub from_exposer: Count,
}

impl TypeCounts {
    /// Both directions.
    pub fn total(&self) -> Count {
        Count {
            packets: self.to_exposer.packets + self.from_exposer.packets,
            bytes: self.to_exposer.bytes + self.from_exposer.bytes,
        }
    }
}

/// What the Manifests of an exposure say.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ManifestFacts {
    /// Manifests seen.
    pub count: u64,
    /// Plaintext size.
    pub total_size: u64,
    /// Chunks.
    pub chunk_count: u32,
    /// Plaintext bytes per chunk.
    pub chunk_size: u32,
    /// Merkle root.
    pub merkle_root: [u8; 32],
    /// FEC_N (0 without FEC).
    pub fec_n: u8,
    /// FEC_K (0 without FEC).
    pub fec_k: u8,
    /// Raw ManifestFlags.
    pub flags: u16,
    /// `aes-256-gcm` or `chacha20-poly1305`.
    pub cipher: &'static str,
    /// `sha256`, `blake3` or `blake2b-256`.
    pub hash: &'static str,
    /// `none`, `reed-solomon` or `raptorq`.
    pub fec: &'static str,
    /// Chunks carry Merkle proofs.
    pub proofs: bool,
    /// The (first) Manifest has PROOF_RUNS: the exposer honours NakFlags
    /// PROOF_RUNS (spec §3.6).
    pub proof_runs: bool,
    /// The (first) Manifest carries an address-validation token.
    pub token: bool,
    /// Every Manifest seen agrees with the first (tokens and PROOF_RUNS aside).
    pub consistent: bool,
    /// Semantic problems (spec §2.4, §8.2): chunk count, FEC parameters.
    pub problems: Vec<String>,
}

impl ManifestFacts {
    fn has_fec(&self) -> bool {
        self.fec_n != 0 || self.fec_k != 0
    }

    /// Plaintext length of chunk `i`.
    pub fn plain_len(&self, i: u32) -> u64 {
        let start = u64::from(i) * u64::from(self.chunk_size);
        self.total_size
            .saturating_sub(start)
            .min(u64::from(self.chunk_size))
    }

    /// FEC blocks (0 without FEC).
    pub fn blocks(&self) -> u64 {
        if self.fec_k == 0 {
            0
        } else {
            u64::from(self.chunk_count).div_ceil(u64::from(self.fec_k))
        }
    }
}

/// The requests (NAK entries) of an exposure.
#[derive(Debug, Clone, Copy, Default, PartialEq)]
pub struct Requests {
    /// NAKs.
    pub naks: u64,
    /// NAKs with the PROOFS flag.
    pub naks_with_proofs: u64,
    /// NAKs with the PROOF_RUNS flag (proofs only on chunks at multiples of 64, spec §3.6).
    pub naks_with_proof_runs: u64,
    /// Chunk entries.
    pub chunk_entries: u64,
    /// Parity entries.
    pub parity_entries: u64,
    /// Distinct chunk indices requested.
    pub distinct_chunks: u64,
    /// Entries repeating an earlier entry of the same puller.
    pub rerequests: u64,
    /// Distinct (puller, entry) asked for more than once.
    pub rerequested: u64,
    /// Entries past the 256th of their NAK.
    pub over_limit: u64,
    /// Entries naming no chunk or parity shard of the Manifest.
    pub out_of_range: u64,
    /// Entries an exposer should have answered (neither over the limit nor out of range).
    pub servable: u64,
    /// Servable entries never answered in the capture.
    pub undelivered: u64,
}

impl Requests {
    /// `undelivered / servable`, when anything was servable.
    pub fn loss_seen(&self) -> Option<f64> {
        (self.servable > 0).then(|| self.undelivered as f64 / self.servable as f64)
    }
}

/// The chunks of an exposure.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Chunks {
    /// Chunk_Data and Chunk_Data_With_Proof packets.
    pub packets: u64,
    /// Their sealed payload bytes, every copy.
    pub payload_bytes: u64,
    /// Distinct chunk indices seen.
    pub distinct: u64,
    /// (puller, index) delivered more than once.
    pub seen_more_than_once: u64,
    /// Copies beyond the first per (puller, index).
    pub extra_copies: u64,
    /// (puller, index) requested more than once and delivered.
    pub retransmitted: u64,
    /// Copies beyond the number of requests for them.
    pub unrequested: u64,
    /// Packets whose index is not below the Manifest's chunk count.
    pub out_of_range: u64,
    /// Plaintext bytes of the distinct chunks seen.
    pub plaintext_bytes: u64,
    /// Chunks of the Manifest never seen, as inclusive ranges (`None` without a Manifest).
    pub missing_ranges: Option<Vec<(u32, u32)>>,
    /// Of the missing chunks, those in blocks with enough shards seen to rebuild them.
    pub missing_fec_covered: Option<u64>,
}

impl Chunks {
    /// Chunks of the Manifest never seen.
    pub fn missing(&self) -> Option<u64> {
        self.missing_ranges
            .as_ref()
            .map(|r| r.iter().map(|(a, b)| u64::from(b - a) + 1).sum::<u64>())
    }
}

/// FEC parity of an exposure.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Fec {
    /// FEC_Parity packets.
    pub parity_packets: u64,
    /// Distinct (block, parity index) seen.
    pub distinct_shards: u64,
    /// Distinct blocks with parity seen.
    pub blocks_with_parity: u64,
    /// Parity whose FEC_N/FEC_K differ from the Manifest's or whose indices are out of range.
    pub mismatched: u64,
}

/// Minimum, lower median, maximum and last of a series.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Summary {
    /// Smallest.
    pub min: u32,
    /// Lower median.
    pub median: u32,
    /// Largest.
    pub max: u32,
    /// Last in capture order.
    pub last: u32,
}

impl Summary {
    /// `None` for an empty series.
    pub fn of(series: &[u32]) -> Option<Summary> {
        let last = *series.last()?;
        let mut s = series.to_vec();
        s.sort_unstable();
        Some(Summary {
            min: s[0],
            median: s[(s.len() - 1) / 2],
            max: s[s.len() - 1],
            last,
        })
    }
}

/// What the pullers' Rate_Reports say.
#[derive(Debug, Clone, Copy, Default, PartialEq)]
pub struct Rate {
    /// Rate_Reports seen.
    pub reports: u64,
    /// RTT_Us, non-zero samples.
    pub rtt_us: Option<Summary>,
    /// Loss_Rate_Q16 as a percentage: last and largest.
    pub loss_percent: Option<(f64, f64)>,
    /// Window_Size: last and largest.
    pub window: Option<(u32, u32)>,
}

/// Everything about one Exposure_ID.
#[derive(Debug, Clone)]
pub struct ExposureReport {
    /// Exposure_ID.
    pub exposure_id: ExposureId,
    /// Exposer addresses, in order of appearance.
    pub exposers: Vec<Peer>,
    /// Puller addresses, in order of appearance.
    pub pullers: Vec<Peer>,
    /// First packet, µs since the epoch.
    pub first_us: u64,
    /// Last packet.
    pub last_us: u64,
    /// Traffic per type, indexed by type byte - 1 (see [`ExposureReport::packets_of`]).
    pub packets: [TypeCounts; 8],
    /// The Manifests, if any was seen.
    pub manifest: Option<ManifestFacts>,
    /// NAK entries.
    pub requests: Requests,
    /// Chunks.
    pub chunks: Chunks,
    /// Parity.
    pub fec: Fec,
    /// Rate_Reports.
    pub rate: Rate,
    /// Malformed datagrams attributed to this exposure.
    pub malformed: Vec<Malformed>,
}

impl ExposureReport {
    /// Traffic of one packet type.
    pub fn packets_of(&self, t: PacketType) -> TypeCounts {
        self.packets[type_slot(t)]
    }

    /// Valid packets, all types.
    pub fn total_packets(&self) -> u64 {
        self.packets.iter().map(|c| c.total().packets).sum()
    }

    /// From the first to the last packet, µs.
    pub fn duration_us(&self) -> u64 {
        self.last_us.saturating_sub(self.first_us)
    }

    /// Plaintext bytes of distinct chunks per second.
    pub fn goodput_bytes_per_s(&self) -> Option<f64> {
        let d = self.duration_us();
        (d > 0).then(|| self.chunks.plaintext_bytes as f64 * 1e6 / d as f64)
    }
}

/// How the replay with the ticket ended.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Verdict {
    /// Every chunk arrived and the Merkle root verified.
    Complete,
    /// The puller gave up.
    Failed(PullError),
    /// Holding the output failed.
    Io(String),
    /// The capture ended first.
    Incomplete {
        /// Chunks verified.
        received: u64,
        /// Chunks in the exposure (0 if no Manifest was accepted).
        total: u64,
    },
}

impl Verdict {
    /// Stable name: `complete`, `incomplete`, `io-error`, or the failure's
    /// name as sidecars write it (`auth-failed`, …).
    pub fn name(&self) -> &'static str {
        match self {
            Verdict::Complete => "complete",
            Verdict::Failed(e) => crate::corpus::verdict_name(e),
            Verdict::Io(_) => "io-error",
            Verdict::Incomplete { .. } => "incomplete",
        }
    }

    /// In words.
    pub fn detail(&self) -> String {
        match self {
            Verdict::Complete => "every chunk authenticated and the Merkle root matches".into(),
            Verdict::Failed(e) => e.to_string(),
            Verdict::Io(e) => e.clone(),
            Verdict::Incomplete { received, total } => {
                format!("the capture ended with {received} of {total} chunks verified")
            }
        }
    }
}

/// The replay of the capture into a puller holding the ticket.
#[derive(Debug, Clone)]
pub struct PullCheck {
    /// The ticket's Exposure_ID.
    pub exposure_id: ExposureId,
    /// Exposer whose datagrams were fed.
    pub exposer: Option<Peer>,
    /// Puller whose received traffic was replayed.
    pub puller: Option<Peer>,
    /// Outcome.
    pub verdict: Verdict,
    /// `Some(true)` when complete, `Some(false)` on a Merkle failure, else undecided.
    pub merkle_root_verified: Option<bool>,
    /// Datagrams fed.
    pub fed: usize,
    /// Chunks in the exposure, when known.
    pub chunks_total: Option<u64>,
    /// The puller's counters.
    pub stats: PullerStats,
    /// Length of the recovered bytes.
    pub recovered_len: Option<u64>,
    /// SHA-256 of the recovered bytes.
    pub recovered_sha256: Option<[u8; 32]>,
}

// ---------------------------------------------------------------------------
// Collection

/// IPv4-mapped IPv6 addresses written as IPv4.
fn canonical(p: Peer) -> Peer {
    match p {
        Peer::Ip(a) => Peer::Ip(std::net::SocketAddr::new(a.ip().to_canonical(), a.port())),
        other => other,
    }
}

/// The pair of ends, in a fixed order.
fn pair(a: Peer, b: Peer) -> (Peer, Peer) {
    let (ka, kb) = (peer_key(a), peer_key(b));
    if ka <= kb {
        (a, b)
    } else {
        (b, a)
    }
}

fn peer_key(p: Peer) -> Vec<u8> {
    let mut v = Vec::with_capacity(19);
    p.key_bytes(&mut v);
    v
}

fn looks_rgtp(payload: &[u8]) -> bool {
    payload.len() >= 2 && (1..=2).contains(&payload[0]) && (1..=8).contains(&payload[1])
}

fn error_class(e: &rgtp_wire::Error) -> &'static str {
    use rgtp_wire::Error as E;
    match e {
        E::Truncated => "truncated",
        E::UnknownVersion(_) => "unknown-version",
        E::UnknownType(_) => "unknown-type",
        E::LengthMismatch { .. } => "length-mismatch",
        E::BadLength => "bad-length",
        E::BadProofDepth => "bad-proof-depth",
        E::BadNakCount => "bad-nak-count",
        E::PayloadTooLarge => "payload-too-large",
        E::BadFlags => "bad-flags",
        _ => "other",
    }
}

#[derive(Debug, Clone)]
enum Kind {
    PullRequest,
    Manifest(rgtp_wire::Manifest),
    Chunk {
        index: u32,
        payload_len: usize,
    },
    Parity {
        block: u32,
        p: u8,
        n: u8,
        k: u8,
    },
    Nak {
        entries: Vec<u32>,
        proofs: bool,
        proof_runs: bool,
    },
    RateReport(rgtp_wire::RateReport),
    Keepalive,
}

#[derive(Debug, Clone)]
struct Event {
    ts: u64,
    src: Peer,
    dst: Peer,
    len: usize,
    ty: PacketType,
    kind: Kind,
}

fn event(ts: u64, src: Peer, dst: Peer, len: usize, repr: &Repr<'_>) -> Event {
    let kind = match repr {
        Repr::PullRequest(_) => Kind::PullRequest,
        Repr::Manifest(m) => Kind::Manifest(*m),
        Repr::ChunkData(c) => Kind::Chunk {
            index: c.chunk_index,
            payload_len: c.payload.len(),
        },
        Repr::ChunkDataWithProof(c) => Kind::Chunk {
            index: c.chunk_index,
            payload_len: c.payload.len(),
        },
        Repr::FecParity(f) => Kind::Parity {
            block: f.block_index,
            p: f.parity_index,
            n: f.fec_n,
            k: f.fec_k,
        },
        Repr::Nak(n) => Kind::Nak {
            entries: n.indices.iter().collect(),
            proofs: n.flags.contains(NakFlags::PROOFS),
            proof_runs: n.flags.contains(NakFlags::PROOF_RUNS),
        },
        Repr::RateReport(r) => Kind::RateReport(*r),
        Repr::Keepalive(_) => Kind::Keepalive,
    };
    Event {
        ts,
        src,
        dst,
        len,
        ty: repr.packet_type(),
        kind,
    }
}

/// A NAK entry, decoded.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
enum Entry {
    Chunk(u32),
    Parity(u32, u8),
}

fn push_unique(v: &mut Vec<Peer>, p: Peer) {
    if !v.contains(&p) {
        v.push(p);
    }
}

fn manifest_facts(manifests: &[rgtp_wire::Manifest]) -> Option<ManifestFacts> {
    let m = manifests.first()?;
    let f = m.flags;
    let cipher = if f.contains(ManifestFlags::AES_256_GCM) {
        "aes-256-gcm"
    } else {
        "chacha20-poly1305"
    };
    let hash = if f.contains(ManifestFlags::HASH_SHA256) {
        "sha256"
    } else if f.contains(ManifestFlags::HASH_BLAKE3) {
        "blake3"
    } else {
        "blake2b-256"
    };
    let has_fec = m.fec_n != 0 || m.fec_k != 0;
    let fec = match (has_fec, f.contains(ManifestFlags::FEC_RAPTORQ)) {
        (false, _) => "none",
        (true, false) => "reed-solomon",
        (true, true) => "raptorq",
    };
    let mut problems = Vec::new();
    let want_count = if m.chunk_size == 0 {
        None
    } else {
        Some(m.total_size.div_ceil(u64::from(m.chunk_size)))
    };
    match want_count {
        None => problems.push("Chunk_Size is 0".to_string()),
        Some(c) if c != u64::from(m.chunk_count) => problems.push(format!(
            "Chunk_Count {} but ceil(Total_Size / Chunk_Size) = {c}",
            m.chunk_count
        )),
        _ => {}
    }
    if has_fec && !(1 <= m.fec_k && m.fec_k < m.fec_n) {
        problems.push(format!(
            "FEC_N {} and FEC_K {} do not satisfy 1 <= K < N <= 255",
            m.fec_n, m.fec_k
        ));
    }
    if !has_fec && f.contains(ManifestFlags::FEC_RAPTORQ) {
        problems.push("FEC_RAPTORQ set without FEC_N and FEC_K".to_string());
    }
    // A token and PROOF_RUNS (spec §3.6) are per puller: only a puller that asked
    // for them gets them, so Manifests of one exposure may differ in those.
    let per_puller = ManifestFlags::TOKEN | ManifestFlags::PROOF_RUNS;
    let same = |o: &rgtp_wire::Manifest| {
        (
            o.total_size,
            o.chunk_count,
            o.chunk_size,
            o.merkle_root,
            o.fec_n,
            o.fec_k,
            o.flags - per_puller,
        ) == (
            m.total_size,
            m.chunk_count,
            m.chunk_size,
            m.merkle_root,
            m.fec_n,
            m.fec_k,
            m.flags - per_puller,
        )
    };
    let consistent = manifests.iter().all(same);
    if !consistent {
        problems.push("Manifests of this exposure disagree; the first is shown".to_string());
    }
    Some(ManifestFacts {
        count: manifests.len() as u64,
        total_size: m.total_size,
        chunk_count: m.chunk_count,
        chunk_size: m.chunk_size,
        merkle_root: m.merkle_root,
        fec_n: m.fec_n,
        fec_k: m.fec_k,
        flags: f.bits(),
        cipher,
        hash,
        fec,
        proofs: f.contains(ManifestFlags::PROOFS),
        proof_runs: f.contains(ManifestFlags::PROOF_RUNS),
        token: m.token.is_some(),
        consistent,
        problems,
    })
}

/// Inclusive ranges of `0..count` absent from `seen` (sorted, deduplicated).
fn gaps(seen: &[u32], count: u32) -> Vec<(u32, u32)> {
    let mut out = Vec::new();
    let mut next: u64 = 0;
    for &i in seen.iter().filter(|&&i| i < count) {
        if u64::from(i) > next {
            out.push((next as u32, i - 1));
        }
        next = u64::from(i) + 1;
    }
    if next < u64::from(count) {
        out.push((next as u32, count - 1));
    }
    out
}

fn build_exposure(id: ExposureId, events: &[Event]) -> ExposureReport {
    let mut exposers = Vec::new();
    for e in events {
        push_unique(
            &mut exposers,
            if sent_by_exposer(e.ty) { e.src } else { e.dst },
        );
    }
    let mut pullers = Vec::new();
    for e in events {
        let p = if sent_by_exposer(e.ty) { e.dst } else { e.src };
        if !exposers.contains(&p) {
            push_unique(&mut pullers, p);
        }
    }

    let mut packets = [TypeCounts::default(); 8];
    for e in events {
        let (s, d) = (exposers.contains(&e.src), exposers.contains(&e.dst));
        let from = match (s, d) {
            (true, false) => true,
            (false, true) => false,
            _ => sent_by_exposer(e.ty),
        };
        let slot = &mut packets[type_slot(e.ty)];
        if from {
            slot.from_exposer.add(e.len);
        } else {
            slot.to_exposer.add(e.len);
        }
    }

    let manifests: Vec<_> = events
        .iter()
        .filter_map(|e| match &e.kind {
            Kind::Manifest(m) => Some(*m),
            _ => None,
        })
        .collect();
    let manifest = manifest_facts(&manifests);
    let m = manifest.as_ref();

    // Requests.
    let mut req = Requests::default();
    #[derive(Default)]
    struct Asked {
        all: u64,
        servable: u64,
    }
    let mut asked: HashMap<(Peer, Entry), Asked> = HashMap::new();
    let mut asked_order: Vec<(Peer, Entry)> = Vec::new();
    let mut chunks_asked: HashSet<u32> = HashSet::new();
    for e in events {
        let Kind::Nak {
            entries,
            proofs,
            proof_runs,
        } = &e.kind
        else {
            continue;
        };
        req.naks += 1;
        req.naks_with_proofs += u64::from(*proofs);
        req.naks_with_proof_runs += u64::from(*proof_runs);
        for (pos, &raw) in entries.iter().enumerate() {
            // Without FEC, bit 31 is part of a chunk index (spec §3.4).
            let fec_possible = match m {
                Some(m) => m.has_fec(),
                None => true,
            };
            let parity = raw & NAK_PARITY_BIT != 0 && fec_possible;
            let entry = if parity {
                Entry::Parity((raw & !NAK_PARITY_BIT) >> 8, (raw & 0xff) as u8)
            } else {
                Entry::Chunk(raw)
            };
            let in_range = match (entry, m) {
                (_, None) => true,
                (Entry::Chunk(i), Some(m)) => i < m.chunk_count,
                (Entry::Parity(b, p), Some(m)) => {
                    u64::from(b) < m.blocks() && p < m.fec_n.saturating_sub(m.fec_k)
                }
            };
            match entry {
                Entry::Chunk(i) => {
                    req.chunk_entries += 1;
                    chunks_asked.insert(i);
                }
                Entry::Parity(..) => req.parity_entries += 1,
            }
            let over = pos >= NAK_SERVED;
            req.over_limit += u64::from(over);
            req.out_of_range += u64::from(!in_range);
            let key = (e.src, entry);
            let a = asked.entry(key).or_insert_with(|| {
                asked_order.push(key);
                Asked::default()
            });
            a.all += 1;
            if !over && in_range {
                a.servable += 1;
                req.servable += 1;
            }
        }
    }
    req.distinct_chunks = chunks_asked.len() as u64;

    // Deliveries.
    let mut delivered: HashMap<(Peer, Entry), u64> = HashMap::new();
    let mut chunks = Chunks::default();
    let mut first_len: HashMap<u32, usize> = HashMap::new();
    let mut fec = Fec::default();
    let mut shards: HashSet<(u32, u8)> = HashSet::new();
    let mut blocks: HashSet<u32> = HashSet::new();
    for e in events {
        match e.kind {
            Kind::Chunk { index, payload_len } => {
                chunks.packets += 1;
                chunks.payload_bytes += payload_len as u64;
                first_len.entry(index).or_insert(payload_len);
                if m.is_some_and(|m| index >= m.chunk_count) {
                    chunks.out_of_range += 1;
                }
                *delivered.entry((e.dst, Entry::Chunk(index))).or_default() += 1;
            }
            Kind::Parity { block, p, n, k } => {
                fec.parity_packets += 1;
                shards.insert((block, p));
                blocks.insert(block);
                let ok = m.is_some_and(|m| {
                    m.has_fec()
                        && (n, k) == (m.fec_n, m.fec_k)
                        && u64::from(block) < m.blocks()
                        && p < m.fec_n.saturating_sub(m.fec_k)
                });
                if m.is_some() && !ok {
                    fec.mismatched += 1;
                }
                *delivered
                    .entry((e.dst, Entry::Parity(block, p)))
                    .or_default() += 1;
            }
            _ => {}
        }
    }
    fec.distinct_shards = shards.len() as u64;
    fec.blocks_with_parity = blocks.len() as u64;

    for key in &asked_order {
        let a = &asked[key];
        let d = delivered.get(key).copied().unwrap_or(0);
        if a.all > 1 {
            req.rerequested += 1;
            req.rerequests += a.all - 1;
        }
        req.undelivered += a.servable.saturating_sub(d);
    }
    for (key, &d) in &delivered {
        if let Entry::Chunk(_) = key.1 {
            let a = asked.get(key);
            let all = a.map_or(0, |a| a.all);
            if d > 1 {
                chunks.seen_more_than_once += 1;
                chunks.extra_copies += d - 1;
            }
            if all > 1 {
                chunks.retransmitted += 1;
            }
            chunks.unrequested += d.saturating_sub(all);
        }
    }

    let mut seen: Vec<u32> = first_len.keys().copied().collect();
    seen.sort_unstable();
    chunks.distinct = seen.len() as u64;
    chunks.plaintext_bytes = seen
        .iter()
        .map(|&i| match m {
            Some(m) if i < m.chunk_count => m.plain_len(i),
            _ => first_len[&i].saturating_sub(16) as u64,
        })
        .sum();
    if let Some(m) = m {
        chunks.missing_ranges = Some(gaps(&seen, m.chunk_count));
        let seen_set: HashSet<u32> = seen.iter().copied().collect();
        let covered = if m.has_fec() && m.fec_k >= 1 && m.fec_k < m.fec_n {
            let k = u64::from(m.fec_k);
            let need = if m.fec == "raptorq" {
                (k + 2).min(u64::from(m.fec_n))
            } else {
                k
            };
            let mut parity_per_block: HashMap<u32, u64> = HashMap::new();
            for &(b, p) in &shards {
                if p < m.fec_n - m.fec_k {
                    *parity_per_block.entry(b).or_default() += 1;
                }
            }
            parity_per_block
                .iter()
                .filter(|(&b, _)| u64::from(b) < m.blocks())
                .map(|(&b, &parity)| {
                    let start = u64::from(b) * k;
                    let end = (start + k).min(u64::from(m.chunk_count));
                    let missing = (start..end)
                        .filter(|&i| !seen_set.contains(&(i as u32)))
                        .count() as u64;
                    if missing > 0 && k - missing + parity >= need {
                        missing
                    } else {
                        0
                    }
                })
                .sum()
        } else {
            0
        };
        chunks.missing_fec_covered = Some(covered);
    }

    let reports: Vec<&rgtp_wire::RateReport> = events
        .iter()
        .filter_map(|e| match &e.kind {
            Kind::RateReport(r) => Some(r),
            _ => None,
        })
        .collect();
    let rtts: Vec<u32> = reports
        .iter()
        .map(|r| r.rtt_us)
        .filter(|&r| r > 0)
        .collect();
    let pct = |q: u32| f64::from(q) / 65535.0 * 100.0;
    let rate = Rate {
        reports: reports.len() as u64,
        rtt_us: Summary::of(&rtts),
        loss_percent: reports.last().map(|l| {
            let max = reports.iter().map(|r| r.loss_rate_q16).max().unwrap_or(0);
            (pct(l.loss_rate_q16), pct(max))
        }),
        window: reports.last().map(|l| {
            let max = reports.iter().map(|r| r.window_size).max().unwrap_or(0);
            (l.window_size, max)
        }),
    };

    ExposureReport {
        exposure_id: id,
        exposers,
        pullers,
        first_us: events.iter().map(|e| e.ts).min().unwrap_or(0),
        last_us: events.iter().map(|e| e.ts).max().unwrap_or(0),
        packets,
        manifest,
        requests: req,
        chunks,
        fec,
        rate,
        malformed: Vec::new(),
    }
}

/// Analyses `capture`; with a ticket, also replays it into a fresh puller.
///
/// Never fails: whatever the capture holds is reported.
pub fn inspect(capture: &Capture, ticket: Option<&Ticket>) -> Report {
    // Pass 1: address pairs that carried valid RGTP.
    let mut rgtp_pairs: HashSet<(Peer, Peer)> = HashSet::new();
    for (_, d) in capture.datagrams() {
        if rgtp_wire::captured_packets(&d.payload).any(|p| Repr::parse(p, MAX_PAYLOAD).is_ok()) {
            rgtp_pairs.insert(pair(canonical(d.src), canonical(d.dst)));
        }
    }

    // Pass 2: classify every record.
    let mut not_rgtp = NotRgtp::default();
    let mut undecodable = Vec::new();
    let mut order: Vec<ExposureId> = Vec::new();
    let mut events: HashMap<ExposureId, Vec<Event>> = HashMap::new();
    let mut pair_exposures: HashMap<(Peer, Peer), Vec<ExposureId>> = HashMap::new();
    let mut malformed: Vec<(Option<ExposureId>, Malformed)> = Vec::new();
    let mut valid_packets = 0;
    for r in &capture.records {
        let d = match &r.content {
            Ok(d) => d,
            Err(FrameError::NotRgtp(_)) => {
                not_rgtp.frames += 1;
                continue;
            }
            Err(e) => {
                undecodable.push(FrameProblem {
                    index: r.index,
                    reason: e.to_string(),
                });
                continue;
            }
        };
        let (src, dst) = (canonical(d.src), canonical(d.dst));
        for payload in rgtp_wire::captured_packets(&d.payload) {
            match Repr::parse(payload, MAX_PAYLOAD) {
                Ok(repr) => {
                    valid_packets += 1;
                    let id = *repr.exposure_id();
                    let list = events.entry(id).or_insert_with(|| {
                        order.push(id);
                        Vec::new()
                    });
                    list.push(event(r.ts_us, src, dst, payload.len(), &repr));
                    let ids = pair_exposures.entry(pair(src, dst)).or_default();
                    if !ids.contains(&id) {
                        ids.push(id);
                    }
                }
                Err(e) => {
                    let candidate = match d.src {
                        Peer::Ip(_) => looks_rgtp(payload) || rgtp_pairs.contains(&pair(src, dst)),
                        _ => true,
                    };
                    if !candidate {
                        not_rgtp.udp_datagrams += 1;
                        continue;
                    }
                    let mut reason = e.to_string();
                    if r.captured_len < r.orig_len {
                        reason.push_str(&format!(
                            " (frame captured short: {} of {} bytes)",
                            r.captured_len, r.orig_len
                        ));
                    }
                    let named = payload
                        .get(4..20)
                        .map(|b| <ExposureId>::try_from(b).expect("16 bytes"));
                    malformed.push((
                        named,
                        Malformed {
                            index: r.index,
                            ts_us: r.ts_us,
                            src,
                            dst,
                            len: payload.len(),
                            class: error_class(&e),
                            reason,
                        },
                    ));
                }
            }
        }
    }

    let mut exposures: Vec<ExposureReport> = order
        .iter()
        .map(|id| build_exposure(*id, &events[id]))
        .collect();
    let slot: HashMap<ExposureId, usize> =
        order.iter().enumerate().map(|(i, id)| (*id, i)).collect();
    let mut unattributed = Vec::new();
    for (named, mf) in malformed {
        let by_id = named.and_then(|id| slot.get(&id).copied());
        let by_pair = || match pair_exposures.get(&pair(mf.src, mf.dst)).map(Vec::as_slice) {
            Some([only]) => slot.get(only).copied(),
            _ => None,
        };
        match by_id.or_else(by_pair) {
            Some(i) => exposures[i].malformed.push(mf),
            None => unattributed.push(mf),
        }
    }

    let (pull, recovered) = match ticket {
        Some(t) => {
            let (check, bytes) = pull_check(capture, t, &exposures);
            (Some(check), bytes)
        }
        None => (None, None),
    };

    Report {
        format: capture.format,
        records: capture.records.len(),
        start_us: capture.records.iter().map(|r| r.ts_us).min(),
        end_us: capture.records.iter().map(|r| r.ts_us).max(),
        valid_packets,
        not_rgtp,
        undecodable,
        exposures,
        unattributed,
        pull,
        recovered,
    }
}

fn pull_check(
    capture: &Capture,
    ticket: &Ticket,
    exposures: &[ExposureReport],
) -> (PullCheck, Option<Vec<u8>>) {
    let x = exposures
        .iter()
        .find(|x| x.exposure_id == ticket.exposure_id);
    // Ask for proofs as the recorded puller did, so the replay behaves alike.
    let proofs = x.is_some_and(|x| {
        x.requests.naks_with_proofs > 0 || x.manifest.as_ref().is_some_and(|m| m.proofs)
    });
    let exposer = rgtp::replay::find_exposer(capture, Some(ticket));
    let replay = replay_pull(capture, ticket, exposer, Pace::Fast, |c| {
        c.want_proofs = proofs
    });
    let manifest_total = x
        .and_then(|x| x.manifest.as_ref())
        .map(|m| u64::from(m.chunk_count));
    let (verdict, bytes) = match replay.verdict {
        PullVerdict::Complete(b) => (Verdict::Complete, Some(b)),
        PullVerdict::Failed(e) => (Verdict::Failed(e), None),
        PullVerdict::Io(e) => (Verdict::Io(e), None),
        PullVerdict::Incomplete { received, total } => {
            (Verdict::Incomplete { received, total }, None)
        }
    };
    let chunks_total = match verdict {
        Verdict::Incomplete { total, .. } if total > 0 => Some(total),
        _ => manifest_total,
    };
    let merkle_root_verified = match verdict {
        Verdict::Complete => Some(true),
        Verdict::Failed(PullError::MerkleFailed) => Some(false),
        _ => None,
    };
    let check = PullCheck {
        exposure_id: ticket.exposure_id,
        exposer: exposer.map(canonical),
        puller: replay.puller,
        verdict,
        merkle_root_verified,
        fed: replay.fed,
        chunks_total,
        stats: replay.stats,
        recovered_len: bytes.as_ref().map(|b| b.len() as u64),
        recovered_sha256: bytes.as_ref().map(|b| Sha256::digest(b).into()),
    };
    (check, bytes)
}

// ---------------------------------------------------------------------------
// JSON

fn peers_json(v: &[Peer]) -> Value {
    Value::Array(v.iter().map(|p| Value::String(peer_text(*p))).collect())
}

fn count_json(c: Count) -> Value {
    json!({ "packets": c.packets, "bytes": c.bytes })
}

fn malformed_json(v: &[Malformed]) -> Value {
    Value::Array(
        v.iter()
            .map(|m| {
                json!({
                    "index": m.index,
                    "ts_us": m.ts_us,
                    "src": peer_text(m.src),
                    "dst": peer_text(m.dst),
                    "length": m.len,
                    "class": m.class,
                    "reason": m.reason,
                })
            })
            .collect(),
    )
}

impl ManifestFacts {
    fn to_json(&self) -> Value {
        json!({
            "count": self.count,
            "total_size": self.total_size,
            "chunk_count": self.chunk_count,
            "chunk_size": self.chunk_size,
            "merkle_root": hex::encode(self.merkle_root),
            "fec_n": self.fec_n,
            "fec_k": self.fec_k,
            "flags": self.flags,
            "cipher": self.cipher,
            "hash": self.hash,
            "fec": self.fec,
            "proofs": self.proofs,
            "proof_runs": self.proof_runs,
            "token": self.token,
            "consistent": self.consistent,
            "problems": self.problems,
        })
    }
}

impl ExposureReport {
    /// This exposure as JSON (see the module documentation for the keys).
    pub fn to_json(&self) -> Value {
        let mut packets = serde_json::Map::new();
        for t in PACKET_TYPES {
            let c = self.packets_of(t);
            packets.insert(
                type_key(t).to_string(),
                json!({
                    "to_exposer": count_json(c.to_exposer),
                    "from_exposer": count_json(c.from_exposer),
                }),
            );
        }
        let r = &self.requests;
        let c = &self.chunks;
        let f = &self.fec;
        let rate = &self.rate;
        json!({
            "exposure_id": hex::encode(self.exposure_id),
            "exposers": peers_json(&self.exposers),
            "pullers": peers_json(&self.pullers),
            "first_us": self.first_us,
            "last_us": self.last_us,
            "duration_us": self.duration_us(),
            "packets": packets,
            "manifest": self.manifest.as_ref().map(ManifestFacts::to_json),
            "requests": {
                "naks": r.naks,
                "naks_with_proofs": r.naks_with_proofs,
                "naks_with_proof_runs": r.naks_with_proof_runs,
                "chunk_entries": r.chunk_entries,
                "parity_entries": r.parity_entries,
                "distinct_chunks": r.distinct_chunks,
                "rerequests": r.rerequests,
                "rerequested": r.rerequested,
                "over_limit": r.over_limit,
                "out_of_range": r.out_of_range,
                "servable": r.servable,
                "undelivered": r.undelivered,
                "loss_seen": r.loss_seen(),
            },
            "chunks": {
                "packets": c.packets,
                "payload_bytes": c.payload_bytes,
                "distinct": c.distinct,
                "seen_more_than_once": c.seen_more_than_once,
                "extra_copies": c.extra_copies,
                "retransmitted": c.retransmitted,
                "unrequested": c.unrequested,
                "out_of_range": c.out_of_range,
                "plaintext_bytes": c.plaintext_bytes,
                "missing": c.missing(),
                "missing_ranges": c.missing_ranges.as_ref().map(|v| {
                    v.iter().map(|(a, b)| json!([a, b])).collect::<Vec<_>>()
                }),
                "missing_fec_covered": c.missing_fec_covered,
            },
            "fec": {
                "parity_packets": f.parity_packets,
                "distinct_shards": f.distinct_shards,
                "blocks_with_parity": f.blocks_with_parity,
                "mismatched": f.mismatched,
            },
            "rate": {
                "reports": rate.reports,
                "rtt_us": rate.rtt_us.map(|s| json!({
                    "min": s.min, "median": s.median, "max": s.max, "last": s.last,
                })),
                "loss_percent": rate.loss_percent.map(|(last, max)| json!({
                    "last": last, "max": max,
                })),
                "window": rate.window.map(|(last, max)| json!({
                    "last": last, "max": max,
                })),
            },
            "goodput_bytes_per_s": self.goodput_bytes_per_s(),
            "malformed": malformed_json(&self.malformed),
        })
    }
}

impl PullCheck {
    /// The replay as JSON (see the module documentation for the keys).
    pub fn to_json(&self) -> Value {
        let s = &self.stats;
        json!({
            "exposure_id": hex::encode(self.exposure_id),
            "exposer": self.exposer.map(peer_text),
            "puller": self.puller.map(peer_text),
            "verdict": self.verdict.name(),
            "detail": self.verdict.detail(),
            "merkle_root_verified": self.merkle_root_verified,
            "datagrams_fed": self.fed,
            "chunks_total": self.chunks_total,
            "counters": {
                "chunks_received": s.chunks_received,
                "duplicates": s.duplicates,
                "auth_failures": s.auth_failures,
                "merkle_failures": s.merkle_failures,
                "malformed": s.malformed,
                "foreign": s.foreign,
                "unexpected": s.unexpected,
                "bad_manifests": s.bad_manifests,
                "parity_received": s.parity_received,
                "fec_recoveries": s.fec_recoveries,
                "fec_failures": s.fec_failures,
            },
            "recovered_bytes": self.recovered_len,
            "recovered_sha256": self.recovered_sha256.map(hex::encode),
        })
    }
}

impl Report {
    /// Malformed datagrams, attributed or not.
    pub fn malformed_total(&self) -> u64 {
        (self.unattributed.len()
            + self
                .exposures
                .iter()
                .map(|x| x.malformed.len())
                .sum::<usize>()) as u64
    }

    /// RGTP candidates: valid plus malformed.
    pub fn rgtp_datagrams(&self) -> u64 {
        self.valid_packets + self.malformed_total()
    }

    /// Every malformed datagram, in record order.
    pub fn all_malformed(&self) -> Vec<&Malformed> {
        let mut v: Vec<&Malformed> = self
            .exposures
            .iter()
            .flat_map(|x| x.malformed.iter())
            .chain(self.unattributed.iter())
            .collect();
        v.sort_by_key(|m| m.index);
        v
    }

    /// The exposure with this Exposure_ID.
    pub fn exposure(&self, id: &ExposureId) -> Option<&ExposureReport> {
        self.exposures.iter().find(|x| &x.exposure_id == id)
    }

    /// The report as JSON; the recovered bytes are left out.
    pub fn to_json(&self) -> Value {
        json!({
            "format": match self.format {
                rgtp_capture::Format::Pcap => "pcap",
                rgtp_capture::Format::PcapNg => "pcapng",
            },
            "records": self.records,
            "start_us": self.start_us,
            "end_us": self.end_us,
            "duration_us": self.end_us.zip(self.start_us).map(|(e, s)| e.saturating_sub(s)),
            "rgtp_datagrams": self.rgtp_datagrams(),
            "valid_packets": self.valid_packets,
            "malformed_total": self.malformed_total(),
            "not_rgtp": {
                "frames": self.not_rgtp.frames,
                "udp_datagrams": self.not_rgtp.udp_datagrams,
            },
            "undecodable_frames": self.undecodable.iter().map(|f| json!({
                "index": f.index,
                "reason": f.reason,
            })).collect::<Vec<_>>(),
            "exposures": self.exposures.iter().map(ExposureReport::to_json).collect::<Vec<_>>(),
            "unattributed_malformed": malformed_json(&self.unattributed),
            "pull": self.pull.as_ref().map(PullCheck::to_json),
        })
    }
}

// ---------------------------------------------------------------------------
// Text

/// `2026-01-01 00:00:00.000000 UTC`.
fn utc(ts_us: u64) -> String {
    let secs = ts_us / 1_000_000;
    let days = (secs / 86_400) as i64;
    let sod = secs % 86_400;
    // Civil from days (H. Hinnant).
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = doy - (153 * mp + 2) / 5 + 1;
    let m = if mp < 10 { mp + 3 } else { mp - 9 };
    let y = yoe + era * 400 + i64::from(m <= 2);
    format!(
        "{y:04}-{m:02}-{d:02} {:02}:{:02}:{:02}.{:06} UTC",
        sod / 3600,
        sod / 60 % 60,
        sod % 60,
        ts_us % 1_000_000
    )
}

fn secs(us: u64) -> String {
    format!("{}.{:06} s", us / 1_000_000, us % 1_000_000)
}

fn rate_text(bytes_per_s: f64) -> String {
    let (v, unit) = if bytes_per_s >= 1e9 {
        (bytes_per_s / 1e9, "GB/s")
    } else if bytes_per_s >= 1e6 {
        (bytes_per_s / 1e6, "MB/s")
    } else if bytes_per_s >= 1e3 {
        (bytes_per_s / 1e3, "kB/s")
    } else {
        (bytes_per_s, "B/s")
    };
    format!("{v:.1} {unit} ({:.1} Mbit/s)", bytes_per_s * 8.0 / 1e6)
}

fn ranges_text(r: &[(u32, u32)], shown: usize) -> String {
    let mut parts: Vec<String> = r
        .iter()
        .take(shown)
        .map(|&(a, b)| {
            if a == b {
                a.to_string()
            } else {
                format!("{a}-{b}")
            }
        })
        .collect();
    if r.len() > shown {
        parts.push(format!("… and {} more ranges", r.len() - shown));
    }
    parts.join(", ")
}

fn peers_text(v: &[Peer]) -> String {
    if v.is_empty() {
        "(none seen)".to_string()
    } else {
        v.iter()
            .map(|p| peer_text(*p))
            .collect::<Vec<_>>()
            .join(", ")
    }
}

fn write_malformed(f: &mut fmt::Formatter<'_>, v: &[Malformed], indent: &str) -> fmt::Result {
    for m in v.iter().take(MALFORMED_SHOWN) {
        writeln!(
            f,
            "{indent}#{:<6} {:>5} B  {} -> {}  {}: {}",
            m.index,
            m.len,
            peer_text(m.src),
            peer_text(m.dst),
            m.class,
            m.reason
        )?;
    }
    if v.len() > MALFORMED_SHOWN {
        writeln!(f, "{indent}… and {} more", v.len() - MALFORMED_SHOWN)?;
    }
    Ok(())
}

/// `1 NAK`, `8 NAKs`.
fn pl(n: u64, one: &str, many: &str) -> String {
    format!("{n} {}", if n == 1 { one } else { many })
}

fn yes_no(b: bool) -> &'static str {
    if b {
        "yes"
    } else {
        "no"
    }
}

impl fmt::Display for ExposureReport {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        writeln!(
            f,
            "exposure {}  {} over {}",
            hex::encode(self.exposure_id),
            pl(self.total_packets(), "packet", "packets"),
            secs(self.duration_us())
        )?;
        writeln!(f, "  exposer    {}", peers_text(&self.exposers))?;
        writeln!(f, "  pullers    {}", peers_text(&self.pullers))?;
        match &self.manifest {
            Some(m) => {
                writeln!(
                    f,
                    "  manifest   {} B in {} of {} B; {}, {}, FEC {}{}, proofs {}, proof runs {}, token {}",
                    m.total_size,
                    pl(u64::from(m.chunk_count), "chunk", "chunks"),
                    m.chunk_size,
                    m.cipher,
                    m.hash,
                    m.fec,
                    if m.has_fec() {
                        format!(" n={} k={}", m.fec_n, m.fec_k)
                    } else {
                        String::new()
                    },
                    yes_no(m.proofs),
                    yes_no(m.proof_runs),
                    yes_no(m.token),
                )?;
                writeln!(
                    f,
                    "             root {}  ({} Manifest{} seen{})",
                    hex::encode(m.merkle_root),
                    m.count,
                    if m.count == 1 { "" } else { "s" },
                    if m.consistent { "" } else { ", disagreeing" }
                )?;
                for p in &m.problems {
                    writeln!(f, "             problem: {p}")?;
                }
            }
            None => writeln!(f, "  manifest   none seen")?,
        }
        writeln!(
            f,
            "  packets    {:<22} {:>10} {:>12}   {:>12} {:>12}",
            "", "to exposer", "bytes", "from exposer", "bytes"
        )?;
        for t in PACKET_TYPES {
            let c = self.packets_of(t);
            if c.total().packets == 0 {
                continue;
            }
            writeln!(
                f,
                "             {:<22} {:>10} {:>12}   {:>12} {:>12}",
                type_name(t),
                c.to_exposer.packets,
                c.to_exposer.bytes,
                c.from_exposer.packets,
                c.from_exposer.bytes
            )?;
        }
        let r = &self.requests;
        let mut flagged = Vec::new();
        if r.naks_with_proofs > 0 {
            flagged.push(format!("{} with proofs", r.naks_with_proofs));
        }
        if r.naks_with_proof_runs > 0 {
            flagged.push(format!("{} with proof runs", r.naks_with_proof_runs));
        }
        let flagged = if flagged.is_empty() {
            String::new()
        } else {
            format!(" ({})", flagged.join(", "))
        };
        writeln!(
            f,
            "  requests   {}{flagged}: {} ({}), {}",
            pl(r.naks, "NAK", "NAKs"),
            pl(r.chunk_entries, "chunk entry", "chunk entries"),
            pl(r.distinct_chunks, "distinct chunk", "distinct chunks"),
            pl(r.parity_entries, "parity entry", "parity entries")
        )?;
        writeln!(
            f,
            "             {} ({} asked more than once), {} over the {}-entry limit, {} out of range",
            pl(r.rerequests, "re-request", "re-requests"),
            pl(r.rerequested, "entry", "entries"),
            r.over_limit,
            NAK_SERVED,
            r.out_of_range
        )?;
        let c = &self.chunks;
        let of = self
            .manifest
            .as_ref()
            .map_or(String::new(), |m| format!(" of {}", m.chunk_count));
        writeln!(
            f,
            "  chunks     {} distinct{of} in {}; {} seen more than once ({}), {} retransmitted, {} unrequested, {} out of range",
            c.distinct,
            pl(c.packets, "packet", "packets"),
            c.seen_more_than_once,
            pl(c.extra_copies, "extra copy", "extra copies"),
            c.retransmitted,
            c.unrequested,
            c.out_of_range
        )?;
        match (&c.missing_ranges, c.missing(), c.missing_fec_covered) {
            (Some(_), Some(0), _) => writeln!(f, "             none missing")?,
            (Some(ranges), Some(n), covered) => writeln!(
                f,
                "             {n} never seen ({} in blocks FEC could rebuild): {}",
                covered.unwrap_or(0),
                ranges_text(ranges, 12)
            )?,
            _ => writeln!(f, "             missing: unknown without a Manifest")?,
        }
        match r.loss_seen() {
            Some(l) => writeln!(
                f,
                "  loss seen  {:.2} %  ({} of {} servable entries never answered in the capture)",
                l * 100.0,
                r.undelivered,
                r.servable
            )?,
            None => writeln!(f, "  loss seen  n/a (no servable entries)")?,
        }
        let x = &self.fec;
        if x.parity_packets == 0 {
            writeln!(f, "  fec        no parity seen")?;
        } else {
            writeln!(
                f,
                "  fec        {} parity packets, {} distinct shards in {} blocks{}",
                x.parity_packets,
                x.distinct_shards,
                x.blocks_with_parity,
                if x.mismatched > 0 {
                    format!(", {} not matching the Manifest", x.mismatched)
                } else {
                    String::new()
                }
            )?;
        }
        let rate = &self.rate;
        if rate.reports == 0 {
            writeln!(f, "  rtt        no Rate_Reports")?;
        } else {
            match rate.rtt_us {
                Some(s) => writeln!(
                    f,
                    "  rtt        min {} µs, median {} µs, max {} µs, last {} µs  ({} Rate_Reports)",
                    s.min, s.median, s.max, s.last, rate.reports
                )?,
                None => writeln!(
                    f,
                    "  rtt        no sample yet  ({} Rate_Reports)",
                    rate.reports
                )?,
            }
            if let (Some((ll, lm)), Some((wl, wm))) = (rate.loss_percent, rate.window) {
                writeln!(
                    f,
                    "             puller loss {ll:.2} % (max {lm:.2} %), window {wl} (max {wm})"
                )?;
            }
        }
        match self.goodput_bytes_per_s() {
            _ if c.distinct == 0 => writeln!(f, "  goodput    none (no chunks)")?,
            Some(g) => writeln!(
                f,
                "  goodput    {} B in {} = {}",
                c.plaintext_bytes,
                secs(self.duration_us()),
                rate_text(g)
            )?,
            None => writeln!(f, "  goodput    n/a ({} B in no time)", c.plaintext_bytes)?,
        }
        if self.malformed.is_empty() {
            writeln!(f, "  malformed  none")?;
        } else {
            writeln!(f, "  malformed  {}", self.malformed.len())?;
            write_malformed(f, &self.malformed, "             ")?;
        }
        Ok(())
    }
}

impl fmt::Display for PullCheck {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        writeln!(
            f,
            "pull {}  {}: {}",
            hex::encode(self.exposure_id),
            self.verdict.name(),
            self.verdict.detail()
        )?;
        writeln!(
            f,
            "  merkle     {}",
            match self.merkle_root_verified {
                Some(true) => "root verified",
                Some(false) => "root NOT verified",
                None => "not decided",
            }
        )?;
        if let (Some(n), Some(h)) = (self.recovered_len, self.recovered_sha256) {
            writeln!(f, "  recovered  {n} B, sha256 {}", hex::encode(h))?;
        }
        writeln!(
            f,
            "  replayed   {} datagrams from {} to {}",
            self.fed,
            self.exposer.map_or("?".to_string(), peer_text),
            self.puller.map_or("?".to_string(), peer_text)
        )?;
        let s = &self.stats;
        writeln!(
            f,
            "  puller     chunks {}{}  duplicates {}  auth failures {}  Merkle failures {}  malformed {}  FEC rebuilds {}  foreign {}",
            s.chunks_received,
            self.chunks_total.map_or(String::new(), |t| format!("/{t}")),
            s.duplicates,
            s.auth_failures,
            s.merkle_failures,
            s.malformed,
            s.fec_recoveries,
            s.foreign
        )
    }
}

impl fmt::Display for Report {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let format = match self.format {
            rgtp_capture::Format::Pcap => "pcap",
            rgtp_capture::Format::PcapNg => "pcapng",
        };
        match (self.start_us, self.end_us) {
            (Some(s), Some(e)) => writeln!(
                f,
                "capture  {format}, {} records from {} over {}",
                self.records,
                utc(s),
                secs(e.saturating_sub(s))
            )?,
            _ => writeln!(f, "capture  {format}, no records")?,
        }
        writeln!(
            f,
            "         {} RGTP datagrams ({} valid, {} malformed), {} exposure{}; not RGTP: {} frames, {} UDP datagrams; {} undecodable frames",
            self.rgtp_datagrams(),
            self.valid_packets,
            self.malformed_total(),
            self.exposures.len(),
            if self.exposures.len() == 1 { "" } else { "s" },
            self.not_rgtp.frames,
            self.not_rgtp.udp_datagrams,
            self.undecodable.len()
        )?;
        for u in self.undecodable.iter().take(MALFORMED_SHOWN) {
            writeln!(f, "         #{:<6} {}", u.index, u.reason)?;
        }
        if self.undecodable.len() > MALFORMED_SHOWN {
            writeln!(
                f,
                "         … and {} more",
                self.undecodable.len() - MALFORMED_SHOWN
            )?;
        }
        for x in &self.exposures {
            writeln!(f)?;
            write!(f, "{x}")?;
        }
        if !self.unattributed.is_empty() {
            writeln!(f)?;
            writeln!(f, "malformed, no exposure  {}", self.unattributed.len())?;
            write_malformed(f, &self.unattributed, "  ")?;
        }
        if let Some(p) = &self.pull {
            writeln!(f)?;
            write!(f, "{p}")?;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn gaps_and_summaries() {
        assert_eq!(gaps(&[0, 1, 2], 3), vec![]);
        assert_eq!(gaps(&[1, 3], 6), vec![(0, 0), (2, 2), (4, 5)]);
        assert_eq!(gaps(&[], 0), vec![]);
        assert_eq!(gaps(&[7], 2), vec![(0, 1)]);
        assert_eq!(gaps(&[], u32::MAX), vec![(0, u32::MAX - 1)]);
        let s = Summary::of(&[30, 10, 20, 40]).unwrap();
        assert_eq!((s.min, s.median, s.max, s.last), (10, 20, 40, 40));
        assert!(Summary::of(&[]).is_none());
    }

    #[test]
    fn utc_dates() {
        assert_eq!(utc(0), "1970-01-01 00:00:00.000000 UTC");
        assert_eq!(utc(1_767_225_600_000_001), "2026-01-01 00:00:00.000001 UTC");
        assert_eq!(utc(951_782_400_000_000), "2000-02-29 00:00:00.000000 UTC");
    }
}
