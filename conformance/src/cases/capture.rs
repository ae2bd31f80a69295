//! Capture cases: a recorded transfer judged packet by packet, offline.
//!
//! The capture is read once ([`CaptureCtx::new`]) and walked in file order. Every
//! datagram from or to the exposer's address is one packet of the transfer; the
//! exposer's are judged against the **exposer** cases (`CAP-0xx`), everybody
//! else's, each address one puller, against the **puller** cases (`CAP-1xx`).
//! A packet that a middlebox sent with the exposer's source address is the
//! exposer's as far as the capture can tell, and is judged as such.
//!
//! # How answers are tied to requests
//!
//! The exposer keeps no state and never sends on its own (§1.1), so every
//! packet it sends must answer a request received earlier from the same
//! address: a Manifest answers a Pull_Request (§3.1), a chunk or a parity
//! shard answers one NAK entry naming it (§3.3, §3.4), and each request and
//! each entry is answered at most once (duplicate entries count separately).
//! Walking the capture, each answer consumes one *open* request or entry of
//! its destination for its Exposure_ID. Whether an answer finds one does not
//! depend on which it takes, so "unrequested" is exact; *which* request it is
//! charged to matters for the per-request limits (256 entries, 3× bytes,
//! proofs per NAK) and is chosen to give the exposer the benefit of the doubt
//! while following how a FIFO exposer serves: an entry within the first 256,
//! one whose NAK asked for the packet type sent, one of a validated NAK, the
//! next entry of the request being served, then the oldest request.
//!
//! # Address validation (§5)
//!
//! A NAK is validated when its token is one the exposer issued, in a Manifest
//! earlier in the capture, to the same address for the same exposure. A token
//! issued to another address (borrowed) or for another exposure, or any other
//! token once this address was issued some, is not valid: such requests are
//! bounded like tokenless ones. A token from before the capture began (no
//! token was issued to that address in the capture) cannot be judged; those
//! NAKs are left out of the bound and counted in the detail.
//!
//! # Proof runs (§3.6)
//!
//! ManifestFlags PROOF_RUNS belongs to the puller a Manifest answers, as a token and a
//! rate cap do: it may be sent only to a puller whose Pull_Request set PullFlags
//! PROOF_RUNS (CAP-015), and Manifests are compared without all three (CAP-012). Which
//! chunks of a NAK come with a proof (CAP-025) depends on the puller too: once the
//! exposer announced PROOF_RUNS to that address for that exposure, a NAK with NakFlags
//! PROOF_RUNS gets proofs on its chunks at multiples of 64 (where Manifest or NAK PROOFS
//! ask for them) and on no other chunk. An exposer that announced nothing to that
//! address may ignore the bit or, keeping no state, honour it anyway: either answer
//! passes. A puller may set the NAK bit only after a Manifest sent to it announced
//! PROOF_RUNS (CAP-109). What a puller does with a chunk that arrives without a proof,
//! waiting for its run or dropping it, is not on the wire; the replay of CAP-042 asks
//! for no proofs and judges the output by its root.
//!
//! # What the capture cannot show
//!
//! A capture taken at the puller misses requests lost on the way to the
//! exposer and answers lost on the way back; one taken at the exposer misses
//! what the network did afterwards. Neither hides an unrequested answer. A
//! network that duplicates datagrams makes a duplicate look unrequested in a
//! capture taken at the puller. Records cut by the capture's snap length are
//! left out (and counted).

use std::collections::{HashMap, HashSet};
use std::net::SocketAddr;
use std::sync::OnceLock;

use rgtp::replay::{self, Pace, PullVerdict};
use rgtp::Ticket;
use rgtp_capture::frame::peer_text;
use rgtp_capture::Capture;
use rgtp_proto::crypto::TAG_LEN;
use rgtp_proto::merkle::{proof_depth, root_of, verify_proof};
use rgtp_proto::{CipherSuite, FecCodec, FecScheme, KeyMode, MerkleScheme, Peer, SuiteId};
use rgtp_providers::{AnyCipher, AnyFec, AnyHash};
use rgtp_wire::{
    ExposureId, Hash, Manifest, ManifestFlags, NakFlags, PullFlags, Repr, Token, NAK_PARITY_BIT,
    PROOF_RUN,
};

use super::{fail, skip, Case, CaseResult, Level, Stop};

/// Parse limit: the largest packet a 16-bit Length allows. Whether a packet fits
/// the link it travelled on is CAP-005's question, not a parse error.
const PARSE_LIMIT: usize = 65_535;
/// Largest UDP payload over IPv4.
pub const MAX_UDP4: usize = 65_507;
/// Largest UDP payload over IPv6 (without jumbograms).
pub const MAX_UDP6: usize = 65_527;
/// Default MTU assumed for raw-Ethernet captures.
pub const DEFAULT_ETH_MTU: usize = 1500;
/// Largest payload of a minimum-size Ethernet frame: shorter payloads are padded.
const MIN_FRAME_PAYLOAD: usize = 46;
/// Entries an exposer serves of one NAK (§3.5).
const NAK_SERVE_LIMIT: usize = 256;
/// How far a Rate_Report or Keepalive timestamp may be from the capture's clock.
const CLOCK_SLACK_US: u64 = 24 * 3600 * 1_000_000;
/// Examples shown in a failure's detail.
const SHOW: usize = 3;

/// Options of a capture run.
#[derive(Debug, Clone, Default)]
pub struct CaptureOptions {
    /// The exposure's ticket: opens chunks, verifies proofs, replays the pull.
    pub ticket: Option<Ticket>,
    /// The exposer's address, when neither the ticket nor the first
    /// Pull_Request should decide it.
    pub exposer: Option<Peer>,
    /// MTU of a raw-Ethernet link (default 1500).
    pub eth_mtu: Option<usize>,
}

/// What the capture cases run against: a read capture, analysed once.
pub struct CaptureCtx {
    /// The capture.
    pub capture: Capture,
    /// The exposer judged.
    pub exposer: Peer,
    /// How the exposer was found, in words.
    pub exposer_from: String,
    /// The ticket, if given.
    pub ticket: Option<Ticket>,
    /// MTU of a raw-Ethernet link.
    pub eth_mtu: usize,
    a: Analysis,
    replayed: OnceLock<Replayed>,
}

/// The same peer, with IPv4-mapped IPv6 addresses written as IPv4.
pub fn canonical(p: Peer) -> Peer {
    match p {
        Peer::Ip(a) => Peer::Ip(SocketAddr::new(a.ip().to_canonical(), a.port())),
        other => other,
    }
}

/// Parses `--exposer`: a MAC address (`02-00-5e-10-00-01`, `02:00:5e:10:00:01`)
/// or a UDP address (`192.0.2.1:9000`, `[2001:db8::1]:9000`, `host:port`).
pub fn parse_peer(s: &str) -> Result<Peer, String> {
    let s = s.trim();
    if let Some(m) = rgtp::ticket::parse_mac(s) {
        return Ok(Peer::Ethernet(m));
    }
    if let Ok(a) = s.parse::<SocketAddr>() {
        return Ok(Peer::Ip(a));
    }
    use std::net::ToSocketAddrs;
    s.to_socket_addrs()
        .map_err(|e| format!("{s:?} is neither a MAC address nor HOST:PORT ({e})"))?
        .next()
        .map(Peer::Ip)
        .ok_or_else(|| format!("{s} resolves to nothing"))
}

impl CaptureCtx {
    /// Reads `bytes` (pcap or pcapng), finds the exposer and analyses the capture.
    ///
    /// The exposer is `opts.exposer` when given; else the ticket's address when
    /// the capture shows traffic to or from it; else the destination of the first
    /// Pull_Request ([`replay::find_exposer`]); else the ticket's address anyway.
    pub fn new(bytes: &[u8], opts: CaptureOptions) -> Result<CaptureCtx, String> {
        let capture = rgtp_capture::read(bytes).map_err(|e| e.to_string())?;
        Self::from_capture(capture, opts)
    }

    /// As [`CaptureCtx::new`], for a capture already read.
    pub fn from_capture(capture: Capture, opts: CaptureOptions) -> Result<CaptureCtx, String> {
        let (exposer, exposer_from) = choose_exposer(&capture, &opts)?;
        let eth_mtu = opts.eth_mtu.unwrap_or(DEFAULT_ETH_MTU);
        let a = analyse(&capture, exposer, opts.ticket.as_ref(), eth_mtu);
        Ok(CaptureCtx {
            capture,
            exposer,
            exposer_from,
            ticket: opts.ticket,
            eth_mtu,
            a,
            replayed: OnceLock::new(),
        })
    }

    /// One paragraph on what the capture holds and who is judged.
    pub fn summary(&self) -> String {
        let from = self
            .a
            .pkts
            .iter()
            .filter(|p| p.dir == Dir::FromExposer)
            .count();
        let to = self.a.pkts.len() - from;
        let pullers: Vec<String> = self.a.pullers.iter().map(|p| peer_text(*p)).collect();
        let mut s = format!(
            "{} records: {from} datagrams from the exposer, {to} to it",
            self.capture.records.len()
        );
        if self.a.foreign > 0 {
            s.push_str(&format!(
                ", {} between other addresses (ignored)",
                self.a.foreign
            ));
        }
        if self.a.other_frames > 0 {
            s.push_str(&format!(
                ", {} frames without a datagram (ignored)",
                self.a.other_frames
            ));
        }
        if self.a.cut > 0 {
            s.push_str(&format!(
                ", {} cut by the snap length (not judged)",
                self.a.cut
            ));
        }
        s.push_str(&format!(
            "\nexposer {} ({}); {} {}",
            peer_text(self.exposer),
            self.exposer_from,
            if pullers.len() == 1 {
                "puller"
            } else {
                "pullers"
            },
            if pullers.is_empty() {
                "none".to_string()
            } else {
                pullers.join(", ")
            }
        ));
        s
    }

    fn bytes(&self, p: &Pkt) -> &[u8] {
        self.capture.records[p.record]
            .content
            .as_ref()
            .map(|d| &d.payload[..])
            .unwrap_or(&[])
    }

    fn frame(&self, p: &Pkt) -> usize {
        self.capture.records[p.record].index + 1
    }

    fn replay(&self) -> &Replayed {
        self.replayed.get_or_init(|| {
            let Some(t) = &self.ticket else {
                return Replayed::default();
            };
            let r = replay::replay_pull(&self.capture, t, Some(self.exposer), Pace::Fast, |_| {});
            Replayed {
                ran: true,
                verdict: Some(r.verdict),
                stats: Some(r.stats),
                fed: r.fed,
            }
        })
    }

    /// The ticket and the first Manifest of its exposure in the capture.
    fn content(&self) -> Result<(&Ticket, Option<&Manifest>), Stop> {
        let Some(t) = &self.ticket else {
            return skip("n/a: needs --ticket (the key opens the chunks)");
        };
        Ok((t, self.a.manifests.get(&t.exposure_id)))
    }
}

#[derive(Debug, Default)]
struct Replayed {
    ran: bool,
    verdict: Option<PullVerdict>,
    stats: Option<rgtp_proto::PullerStats>,
    fed: usize,
}

fn appears(capture: &Capture, p: Peer) -> bool {
    let p = canonical(p);
    capture
        .datagrams()
        .any(|(_, d)| canonical(d.src) == p || canonical(d.dst) == p)
}

fn choose_exposer(capture: &Capture, opts: &CaptureOptions) -> Result<(Peer, String), String> {
    if let Some(p) = opts.exposer {
        return Ok((canonical(p), "--exposer".into()));
    }
    let from_ticket = opts.ticket.as_ref().and_then(|t| t.peer().ok());
    if let Some(p) = from_ticket.filter(|p| appears(capture, *p)) {
        return Ok((canonical(p), "the ticket's address".into()));
    }
    if let Some(p) = replay::find_exposer(capture, None) {
        let why = match (&opts.ticket, from_ticket) {
            (Some(t), _) => format!(
                "the destination of the first Pull_Request; the ticket's {} is not in the capture",
                t.address()
            ),
            (None, _) => "the destination of the first Pull_Request".into(),
        };
        return Ok((canonical(p), why));
    }
    if let Some(p) = from_ticket {
        return Ok((
            canonical(p),
            "the ticket's address, which the capture never shows".into(),
        ));
    }
    Err(
        "cannot tell the exposer: the capture has no Pull_Request; name it with --exposer ADDR|MAC or --ticket"
            .into(),
    )
}

// ------------------------------------------------------------------ analysis

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Dir {
    FromExposer,
    ToExposer,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum LinkKind {
    Udp4,
    Udp6,
    Eth,
}

#[derive(Debug, Clone)]
struct Pkt {
    record: usize,
    ts_us: u64,
    dir: Dir,
    /// The other end: the puller.
    peer: Peer,
    link: LinkKind,
    padding: usize,
}

/// One judgement over many packets.
#[derive(Debug, Default, Clone)]
struct Tally {
    judged: usize,
    bad: usize,
    examples: Vec<String>,
}

impl Tally {
    fn ok(&mut self) {
        self.judged += 1;
    }

    fn bad(&mut self, what: String) {
        self.judged += 1;
        self.bad += 1;
        if self.examples.len() < SHOW {
            self.examples.push(what);
        }
    }

    fn check(&mut self, good: bool, what: impl FnOnce() -> String) {
        if good {
            self.ok()
        } else {
            self.bad(what())
        }
    }

    /// PASS when nothing was bad, FAIL with examples, SKIP ("n/a") when nothing was judged.
    fn verdict(&self, noun: &str, none: &str, note: &str) -> CaseResult {
        if self.judged == 0 {
            return skip(format!("n/a: {none}"));
        }
        let note = if note.is_empty() {
            String::new()
        } else {
            format!("; {note}")
        };
        if self.bad > 0 {
            let more = if self.bad > self.examples.len() {
                "; …"
            } else {
                ""
            };
            return fail(format!(
                "{} of {} {noun} fail: {}{more}{note}",
                self.bad,
                self.judged,
                self.examples.join("; ")
            ));
        }
        Ok(format!("{} {noun}, all conform{note}", self.judged))
    }
}

#[derive(Debug, Default)]
struct Findings {
    exp_parse: Tally,
    exp_length: Tally,
    exp_reserved: Tally,
    exp_types: Tally,
    exp_size: Tally,
    manifest_solicited: Tally,
    manifest_version: Tally,
    manifest_same: Tally,
    manifest_wellformed: Tally,
    manifest_token: Tally,
    manifest_runs: Tally,
    /// Manifests answering a Pull_Request that announce PROOF_RUNS.
    manifest_runs_announced: usize,
    chunk_requested: Tally,
    parity_requested: Tally,
    nak_limit: Tally,
    chunk_fields: Tally,
    chunk_fields_unjudged: usize,
    parity_fields: Tally,
    proof_type: Tally,
    amplification: Tally,
    amplification_unverifiable: usize,
    pul_parse: Tally,
    pul_length: Tally,
    pul_reserved: Tally,
    pul_versions: Tally,
    pul_exposure: Tally,
    pul_nak_size: Tally,
    pul_token: Tally,
    pul_token_unverifiable: usize,
    pul_runs: Tally,
    /// NAKs with PROOF_RUNS from a puller sent no Manifest of that exposure in the capture.
    pul_runs_unverifiable: usize,
    pul_reports: Tally,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum TokenStatus {
    /// No token.
    Absent,
    /// Issued to this address for this exposure in the capture.
    Valid,
    /// Not issued in the capture, and this address was issued none: it may
    /// predate the capture.
    Unverifiable,
    /// Anything else: borrowed, for another exposure, or never issued.
    Invalid,
}

#[derive(Debug)]
enum ReqKind {
    Pull {
        version_ok: bool,
        asks_token: bool,
        /// PullFlags PROOF_RUNS.
        asks_runs: bool,
        answered: bool,
    },
    Nak {
        entries: usize,
        /// Position after the last entry answered (where a FIFO exposer goes on).
        cursor: usize,
        ask: ProofAsk,
        token: TokenStatus,
        /// One past the highest position answered.
        max_pos: usize,
    },
}

#[derive(Debug)]
struct Request {
    frame: usize,
    peer: Peer,
    exposure: ExposureId,
    len: usize,
    answers: usize,
    /// Bytes of its answers, and of the unrequested datagrams that followed it (§5.1).
    answered_bytes: usize,
    /// Of those, the bytes nothing asked for.
    unrequested_bytes: usize,
    kind: ReqKind,
}

impl Request {
    /// True when the 3× bound of §5.1 applies to its answers.
    fn bounded(&self) -> bool {
        match &self.kind {
            ReqKind::Pull { .. } => true,
            ReqKind::Nak { token, .. } => {
                matches!(token, TokenStatus::Absent | TokenStatus::Invalid)
            }
        }
    }

    fn name(&self) -> &'static str {
        match self.kind {
            ReqKind::Pull { .. } => "Pull_Request",
            ReqKind::Nak { .. } => "NAK",
        }
    }
}

/// Key of an open NAK entry: (puller, exposure, entry value).
type EntryKey = (Peer, ExposureId, u32);

/// What a NAK's flags ask of the proofs on its chunks (§3.6).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct ProofAsk {
    /// NakFlags PROOFS.
    proofs: bool,
    /// NakFlags PROOF_RUNS.
    runs: bool,
    /// Before the NAK, the exposer sent this puller a Manifest of this exposure with
    /// ManifestFlags PROOF_RUNS: it said it honours the NAK bit.
    announced: bool,
}

/// Whether chunk `index`, answering a NAK that asked `ask` of an exposure whose Manifest
/// has PROOFS (`manifest_proofs`) or not, may be sent with a proof (`with`) or without
/// one (§3.6).
fn proof_allowed(manifest_proofs: bool, ask: ProofAsk, index: u32, with: bool) -> bool {
    let wanted = manifest_proofs || ask.proofs;
    // Without proof runs: a proof exactly when the Manifest or the NAK has PROOFS.
    let plain = with == wanted;
    if !ask.runs {
        return plain;
    }
    // With them, chunks off a multiple of 64 come without a proof, whatever PROOFS
    // says; a run head has one when PROOFS asks for it. When nothing asks for proofs
    // §3.6 does not settle a run head's packet type, so either passes.
    let runs = if index % PROOF_RUN == 0 {
        with || !wanted
    } else {
        !with
    };
    // An exposer that did not announce the extension to this puller may ignore the
    // bit; keeping no state, it may as well honour it.
    runs || (!ask.announced && plain)
}

#[derive(Debug, Default)]
struct Analysis {
    pkts: Vec<Pkt>,
    other_frames: usize,
    foreign: usize,
    cut: usize,
    pullers: Vec<Peer>,
    /// The first Manifest the exposer sent for each exposure.
    manifests: HashMap<ExposureId, Manifest>,
    /// Exposures the exposer is known to serve (ticket, Manifests).
    served: HashSet<ExposureId>,
    reqs: Vec<Request>,
    /// Open NAK entries: (request, position).
    open: HashMap<EntryKey, Vec<(usize, usize)>>,
    asked: HashMap<EntryKey, usize>,
    sent: HashMap<EntryKey, usize>,
    last_nak: HashMap<Peer, usize>,
    /// Each puller's latest request: unrequested answers count against it.
    last_req: HashMap<Peer, usize>,
    /// Tokens the exposer issued: (to, exposure, token).
    tokens: Vec<(Peer, ExposureId, Token)>,
    /// (puller, exposure) pairs the exposer sent a Manifest to, so far in the walk.
    manifest_sent: HashSet<(Peer, ExposureId)>,
    /// Of those, the pairs sent a Manifest with ManifestFlags PROOF_RUNS (§3.6).
    runs_announced: HashSet<(Peer, ExposureId)>,
    /// Chunk and parity packets from the exposer (indices into `pkts`).
    chunks: Vec<usize>,
    parity: Vec<usize>,
    f: Findings,
}

fn link_kind(p: &Peer) -> LinkKind {
    match p {
        Peer::Ethernet(_) => LinkKind::Eth,
        Peer::Ip(SocketAddr::V6(_)) => LinkKind::Udp6,
        _ => LinkKind::Udp4,
    }
}

/// What a Manifest says about the exposure, without what belongs to the puller it
/// answers: the token (§5.2), the rate cap (§8.3.3) and PROOF_RUNS (§3.6), each sent only
/// to a puller that asked.
fn exposure_part(mut m: Manifest) -> Manifest {
    m.flags -= ManifestFlags::TOKEN | ManifestFlags::RATE_CAP | ManifestFlags::PROOF_RUNS;
    m.token = None;
    m.rate_cap = None;
    m
}

fn plain_len(m: &Manifest, i: u32) -> usize {
    rgtp_proto::exposer::plain_len(m.total_size, m.chunk_size, i)
}

fn parity_entry(block: u32, p: u8) -> u32 {
    NAK_PARITY_BIT | (block << 8) | u32::from(p)
}

/// Why a Manifest does not describe a well-formed exposure (§2.4, §4.1, §9.1, §10.3).
fn manifest_problem(m: &Manifest, ticket: Option<&Ticket>) -> Option<String> {
    let suite = match SuiteId::from_manifest(m) {
        Ok(s) => s,
        Err(e) => {
            return Some(format!(
                "suite fields not well-formed ({e:?}): FEC_N {}, FEC_K {}, flags {:#06x}",
                m.fec_n,
                m.fec_k,
                m.flags.bits()
            ))
        }
    };
    if m.total_size == 0 {
        if m.chunk_count != 0 {
            return Some(format!("Total_Size 0 with Chunk_Count {}", m.chunk_count));
        }
    } else {
        if m.chunk_size == 0 {
            return Some("Chunk_Size 0".into());
        }
        let want = m.total_size.div_ceil(u64::from(m.chunk_size));
        if u64::from(m.chunk_count) != want {
            return Some(format!(
                "Chunk_Count {} != ceil({} / {}) = {want}",
                m.chunk_count, m.total_size, m.chunk_size
            ));
        }
    }
    if suite.fec.scheme != FecScheme::None {
        let blocks = u64::from(m.chunk_count).div_ceil(u64::from(suite.fec.k));
        if blocks >= 1 << 23 {
            return Some(format!(
                "{blocks} FEC blocks, §3.4 requires fewer than 2^23"
            ));
        }
    }
    let proof = if suite.proofs {
        1 + 32 * proof_depth(m.chunk_count)
    } else {
        0
    };
    let largest = 24 + proof + m.chunk_size as usize + TAG_LEN;
    if m.chunk_count > 0 && largest > PARSE_LIMIT {
        return Some(format!(
            "its chunk packets would be {largest} B, more than the 16-bit Length allows"
        ));
    }
    if let Some(t) = ticket.filter(|t| t.exposure_id == m.exposure_id) {
        if let Some(c) = t.cipher.filter(|c| *c != suite.cipher) {
            return Some(format!(
                "announces {} but the ticket pins {}",
                suite.cipher.name(),
                c.name()
            ));
        }
        if let Some(h) = t.hash.filter(|h| *h != suite.hash) {
            return Some(format!(
                "announces {} but the ticket pins {}",
                suite.hash.name(),
                h.name()
            ));
        }
    }
    None
}

fn length_check(t: &mut Tally, b: &[u8], p: &Pkt, frame: usize) {
    if b.len() < 4 {
        return t.bad(format!(
            "frame {frame}: {} B, too short to hold a Length",
            b.len()
        ));
    }
    let declared = usize::from(u16::from_be_bytes([b[2], b[3]]));
    if declared != b.len() {
        t.bad(format!(
            "frame {frame}: Length {declared}, datagram {} B",
            b.len()
        ))
    } else if p.link == LinkKind::Eth && p.padding > 0 && b.len() + p.padding > MIN_FRAME_PAYLOAD {
        // A frame longer than the minimum needs no padding: the bytes after Length are the packet's.
        t.bad(format!(
            "frame {frame}: Length {declared}, but the frame carries {} B",
            b.len() + p.padding
        ))
    } else {
        t.ok()
    }
}

fn analyse(capture: &Capture, exposer: Peer, ticket: Option<&Ticket>, eth_mtu: usize) -> Analysis {
    let mut a = Analysis::default();
    for (i, r) in capture.records.iter().enumerate() {
        let Ok(d) = &r.content else {
            a.other_frames += 1;
            continue;
        };
        let (src, dst) = (canonical(d.src), canonical(d.dst));
        let (dir, peer) = if src == exposer && dst != exposer {
            (Dir::FromExposer, dst)
        } else if dst == exposer && src != exposer {
            (Dir::ToExposer, src)
        } else {
            a.foreign += 1;
            continue;
        };
        if r.captured_len < r.orig_len {
            a.cut += 1;
            continue;
        }
        if !a.pullers.contains(&peer) {
            a.pullers.push(peer);
        }
        a.pkts.push(Pkt {
            record: i,
            ts_us: r.ts_us,
            dir,
            peer,
            link: link_kind(&src),
            padding: d.padding,
        });
    }
    let payload = |p: &Pkt| -> &[u8] {
        capture.records[p.record]
            .content
            .as_ref()
            .map(|d| &d.payload[..])
            .unwrap_or(&[])
    };
    // The exposures served: the ticket's, and every one the exposer sent a Manifest for.
    if let Some(t) = ticket {
        a.served.insert(t.exposure_id);
    }
    for p in a.pkts.iter().filter(|p| p.dir == Dir::FromExposer) {
        if let Ok(Repr::Manifest(m)) = Repr::parse(payload(p), PARSE_LIMIT) {
            a.served.insert(m.exposure_id);
        }
    }
    for i in 0..a.pkts.len() {
        let p = a.pkts[i].clone();
        let b = payload(&p);
        let frame = capture.records[p.record].index + 1;
        match p.dir {
            Dir::FromExposer => {
                length_check(&mut a.f.exp_length, b, &p, frame);
                let max = match p.link {
                    LinkKind::Eth => eth_mtu,
                    LinkKind::Udp6 => MAX_UDP6,
                    LinkKind::Udp4 => MAX_UDP4,
                };
                a.f.exp_size.check(b.len() <= max, || {
                    format!("frame {frame}: {} B, more than the link's {max}", b.len())
                });
                match Repr::parse(b, PARSE_LIMIT) {
                    Ok(r) => {
                        a.f.exp_parse.ok();
                        exposer_packet(&mut a, i, &p, frame, b, r, ticket);
                    }
                    Err(e) => {
                        a.f.exp_parse.bad(format!(
                            "frame {frame}: {e} ({} B to {})",
                            b.len(),
                            peer_text(p.peer)
                        ));
                        charge_unrequested(&mut a, p.peer, b.len());
                    }
                }
            }
            Dir::ToExposer => {
                length_check(&mut a.f.pul_length, b, &p, frame);
                match Repr::parse(b, PARSE_LIMIT) {
                    Ok(r) => {
                        a.f.pul_parse.ok();
                        puller_packet(&mut a, &p, frame, b, r);
                    }
                    Err(e) => a.f.pul_parse.bad(format!(
                        "frame {frame}: {e} ({} B from {})",
                        b.len(),
                        peer_text(p.peer)
                    )),
                }
            }
        }
    }
    // Per-request judgements, now that every answer is known.
    for q in &a.reqs {
        if let ReqKind::Pull {
            version_ok: false,
            answered,
            ..
        } = q.kind
        {
            a.f.manifest_version.check(!answered, || {
                format!(
                    "frame {}: Pull_Request from {} excluding version 1 was answered",
                    q.frame,
                    peer_text(q.peer)
                )
            });
        }
        if let ReqKind::Nak {
            entries, max_pos, ..
        } = q.kind
        {
            if entries > NAK_SERVE_LIMIT {
                a.f.nak_limit
                    .check(q.answers <= NAK_SERVE_LIMIT && max_pos <= NAK_SERVE_LIMIT, || {
                        format!(
                            "frame {}: {entries}-entry NAK from {} drew {} answers, up to entry {max_pos}",
                            q.frame,
                            peer_text(q.peer),
                            q.answers
                        )
                    });
            }
        }
        if q.bounded() {
            a.f.amplification.check(q.answered_bytes <= 3 * q.len, || {
                format!(
                    "frame {}: {} of {} B from {} (not validated) drew {} B{} > 3 × {} = {} B",
                    q.frame,
                    q.name(),
                    q.len,
                    peer_text(q.peer),
                    q.answered_bytes,
                    if q.unrequested_bytes > 0 {
                        format!(
                            " ({} B of them unrequested, sent after it)",
                            q.unrequested_bytes
                        )
                    } else {
                        String::new()
                    },
                    q.len,
                    3 * q.len
                )
            });
        } else if matches!(
            q.kind,
            ReqKind::Nak {
                token: TokenStatus::Unverifiable,
                ..
            }
        ) {
            a.f.amplification_unverifiable += 1;
        }
    }
    a
}

/// Charges an answer (entry value `value`) to an open NAK entry of `peer`; returns the request.
#[allow(clippy::too_many_arguments)]
fn attribute(
    a: &mut Analysis,
    peer: Peer,
    exposure: ExposureId,
    value: u32,
    is_proof: bool,
    manifest_proofs: Option<bool>,
    size: usize,
) -> Option<usize> {
    let key = (peer, exposure, value);
    *a.sent.entry(key).or_default() += 1;
    let last = a.last_nak.get(&peer).copied();
    let cands = a.open.get_mut(&key)?;
    let reqs = &a.reqs;
    let best = (0..cands.len()).min_by_key(|&ci| {
        let (q, pos) = cands[ci];
        let ReqKind::Nak {
            cursor, ask, token, ..
        } = reqs[q].kind
        else {
            unreachable!("only NAK entries are open");
        };
        let over = pos >= NAK_SERVE_LIMIT;
        // Only chunk entries are charged with a Manifest's PROOFS flag known: `value`
        // is then the chunk's index.
        let mismatch = manifest_proofs.is_some_and(|mp| !proof_allowed(mp, ask, value, is_proof));
        let bound = matches!(token, TokenStatus::Absent | TokenStatus::Invalid);
        let skip = if pos >= cursor {
            pos - cursor
        } else {
            (1 << 20) + cursor - pos
        };
        (over, mismatch, bound, skip, last != Some(q), q)
    })?;
    let (q, pos) = cands.remove(best);
    let r = &mut a.reqs[q];
    r.answers += 1;
    r.answered_bytes += size;
    if let ReqKind::Nak {
        cursor, max_pos, ..
    } = &mut r.kind
    {
        *cursor = (*cursor).max(pos + 1);
        *max_pos = (*max_pos).max(pos + 1);
    }
    a.last_nak.insert(peer, q);
    Some(q)
}

/// Charges `size` bytes nothing asked for to the latest request of `peer` before them:
/// an exposer that pushes datagrams after a Pull_Request amplifies that Pull_Request (and
/// never a request that comes later).
fn charge_unrequested(a: &mut Analysis, peer: Peer, size: usize) {
    if let Some(&q) = a.last_req.get(&peer) {
        let r = &mut a.reqs[q];
        r.answered_bytes += size;
        r.unrequested_bytes += size;
    }
}

fn unrequested(a: &Analysis, what: &str, key: &EntryKey, frame: usize) -> String {
    format!(
        "frame {frame}: {what} to {}: requested {}×, sent {}×",
        peer_text(key.0),
        a.asked.get(key).copied().unwrap_or(0),
        a.sent.get(key).copied().unwrap_or(0)
    )
}

fn exposer_packet(
    a: &mut Analysis,
    i: usize,
    p: &Pkt,
    frame: usize,
    b: &[u8],
    r: Repr<'_>,
    ticket: Option<&Ticket>,
) {
    let peer = p.peer;
    match r {
        Repr::Manifest(m) => {
            a.f.exp_types.ok();
            match manifest_problem(&m, ticket) {
                None => a.f.manifest_wellformed.ok(),
                Some(why) => a.f.manifest_wellformed.bad(format!("frame {frame}: {why}")),
            }
            a.manifest_sent.insert((peer, m.exposure_id));
            if m.flags.contains(ManifestFlags::PROOF_RUNS) {
                a.runs_announced.insert((peer, m.exposure_id));
            }
            match a.manifests.get(&m.exposure_id) {
                Some(first) => a
                    .f
                    .manifest_same
                    .check(exposure_part(*first) == exposure_part(m), || {
                        format!(
                            "frame {frame}: Manifest to {} differs from the first one of exposure {}",
                            peer_text(peer),
                            hex::encode(m.exposure_id)
                        )
                    }),
                None => {
                    a.manifests.insert(m.exposure_id, m);
                }
            }
            // The Pull_Request it answers: a supported version, then one that asked for
            // what the Manifest brings (a token, PROOF_RUNS), then one whose asks match it
            // exactly, then the oldest.
            let runs = m.flags.contains(ManifestFlags::PROOF_RUNS);
            let pick = a
                .reqs
                .iter()
                .enumerate()
                .filter(|(_, q)| {
                    q.peer == peer
                        && matches!(
                            q.kind,
                            ReqKind::Pull {
                                answered: false,
                                ..
                            }
                        )
                        && q.exposure == m.exposure_id
                })
                .min_by_key(|(qi, q)| {
                    let ReqKind::Pull {
                        version_ok,
                        asks_token,
                        asks_runs,
                        ..
                    } = q.kind
                    else {
                        unreachable!()
                    };
                    let unasked = usize::from(m.token.is_some() && !asks_token)
                        + usize::from(runs && !asks_runs);
                    (
                        !version_ok,
                        unasked,
                        asks_token != m.token.is_some(),
                        asks_runs != runs,
                        *qi,
                    )
                })
                .map(|(qi, _)| qi);
            match pick {
                None => {
                    a.f.manifest_solicited.bad(format!(
                        "frame {frame}: Manifest to {} answers no open Pull_Request for its exposure",
                        peer_text(peer)
                    ));
                    charge_unrequested(a, peer, b.len());
                }
                Some(qi) => {
                    a.f.manifest_solicited.ok();
                    let q = &mut a.reqs[qi];
                    q.answers += 1;
                    q.answered_bytes += b.len();
                    if let ReqKind::Pull {
                        answered,
                        asks_token,
                        asks_runs,
                        ..
                    } = &mut q.kind
                    {
                        *answered = true;
                        let (asked, asked_runs) = (*asks_token, *asks_runs);
                        let pr_frame = q.frame;
                        a.f.manifest_token.check(asked || m.token.is_none(), || {
                            format!(
                                "frame {frame}: Manifest with a token to {}, whose Pull_Request (frame {pr_frame}) did not set ADDR_VALIDATION",
                                peer_text(peer),
                            )
                        });
                        // §3.6: PROOF_RUNS only in answer to PullFlags PROOF_RUNS.
                        a.f.manifest_runs.check(asked_runs || !runs, || {
                            format!(
                                "frame {frame}: Manifest with PROOF_RUNS to {}, whose Pull_Request (frame {pr_frame}) did not set PullFlags PROOF_RUNS",
                                peer_text(peer),
                            )
                        });
                        if runs {
                            a.f.manifest_runs_announced += 1;
                        }
                    }
                }
            }
            if let Some(t) = m.token {
                a.tokens.push((peer, m.exposure_id, t));
            }
        }
        Repr::ChunkData(_) | Repr::ChunkDataWithProof(_) => {
            a.f.exp_types.ok();
            a.chunks.push(i);
            let (id, index, payload_len, depth) = match r {
                Repr::ChunkData(c) => (c.exposure_id, c.chunk_index, c.payload.len(), None),
                Repr::ChunkDataWithProof(c) => (
                    c.exposure_id,
                    c.chunk_index,
                    c.payload.len(),
                    Some(c.depth()),
                ),
                _ => unreachable!(),
            };
            let is_proof = depth.is_some();
            let manifest = a.manifests.get(&id).copied();
            match manifest {
                None => a.f.chunk_fields_unjudged += 1,
                Some(m) => {
                    let n = m.chunk_count;
                    if index >= n {
                        a.f.chunk_fields.bad(format!(
                            "frame {frame}: chunk {index} of an exposure of {n} chunks"
                        ));
                    } else if payload_len != plain_len(&m, index) + TAG_LEN {
                        a.f.chunk_fields.bad(format!(
                            "frame {frame}: chunk {index} payload {payload_len} B, §2.5 requires {}",
                            plain_len(&m, index) + TAG_LEN
                        ));
                    } else if depth.is_some_and(|d| d != proof_depth(n)) {
                        a.f.chunk_fields.bad(format!(
                            "frame {frame}: chunk {index} proof depth {}, §2.6 requires {}",
                            depth.unwrap_or(0),
                            proof_depth(n)
                        ));
                    } else {
                        a.f.chunk_fields.ok();
                    }
                }
            }
            let manifest_proofs = manifest.map(|m| m.flags.contains(ManifestFlags::PROOFS));
            let key = (peer, id, index);
            match attribute(a, peer, id, index, is_proof, manifest_proofs, b.len()) {
                None => {
                    let what = unrequested(a, &format!("chunk {index}"), &key, frame);
                    a.f.chunk_requested.bad(what);
                    charge_unrequested(a, peer, b.len());
                }
                Some(q) => {
                    a.f.chunk_requested.ok();
                    if let (Some(mp), ReqKind::Nak { ask, .. }) = (manifest_proofs, &a.reqs[q].kind)
                    {
                        let ask = *ask;
                        let nak_frame = a.reqs[q].frame;
                        a.f.proof_type
                            .check(proof_allowed(mp, ask, index, is_proof), || {
                                format!(
                                    "frame {frame}: chunk {index} sent {} a proof; Manifest PROOFS {}, NAK (frame {nak_frame}) PROOFS {}{}",
                                    if is_proof { "with" } else { "without" },
                                    set(mp),
                                    set(ask.proofs),
                                    runs_rule(ask, index),
                                )
                            });
                    }
                }
            }
        }
        Repr::FecParity(fp) => {
            a.f.exp_types.ok();
            a.parity.push(i);
            a.f.exp_reserved.check(b[27] == 0, || {
                format!("frame {frame}: FEC_Parity Reserved byte {:#04x}", b[27])
            });
            if let Some(m) = a.manifests.get(&fp.exposure_id) {
                {
                    let problem = if m.fec_n == 0 {
                        Some("parity for an exposure without FEC".to_string())
                    } else if fp.fec_n != m.fec_n || fp.fec_k != m.fec_k {
                        Some(format!(
                            "FEC_N/FEC_K {}/{}, the Manifest says {}/{}",
                            fp.fec_n, fp.fec_k, m.fec_n, m.fec_k
                        ))
                    } else if fp.block_index >= m.chunk_count.div_ceil(u32::from(m.fec_k)) {
                        Some(format!("block {} out of range", fp.block_index))
                    } else if fp.parity_index >= m.fec_n - m.fec_k {
                        Some(format!("parity index {} out of range", fp.parity_index))
                    } else if fp.payload.len() != m.chunk_size as usize + TAG_LEN {
                        Some(format!(
                            "payload {} B, §2.7 requires Chunk_Size + 16 = {}",
                            fp.payload.len(),
                            m.chunk_size as usize + TAG_LEN
                        ))
                    } else {
                        None
                    };
                    match problem {
                        None => a.f.parity_fields.ok(),
                        Some(why) => a.f.parity_fields.bad(format!("frame {frame}: {why}")),
                    }
                }
            }
            let value = parity_entry(fp.block_index, fp.parity_index);
            let key = (peer, fp.exposure_id, value);
            match attribute(a, peer, fp.exposure_id, value, false, None, b.len()) {
                None => {
                    let what = unrequested(
                        a,
                        &format!("parity ({}, {})", fp.block_index, fp.parity_index),
                        &key,
                        frame,
                    );
                    a.f.parity_requested.bad(what);
                    charge_unrequested(a, peer, b.len());
                }
                Some(_) => a.f.parity_requested.ok(),
            }
        }
        other => {
            a.f.exp_types.bad(format!(
                "frame {frame}: sent a {:?} to {}",
                other.packet_type(),
                peer_text(peer)
            ));
            charge_unrequested(a, peer, b.len());
        }
    }
}

fn set(b: bool) -> &'static str {
    if b {
        "set"
    } else {
        "clear"
    }
}

/// The proof-run part of a CAP-025 failure: what PROOF_RUNS made of chunk `index`.
fn runs_rule(ask: ProofAsk, index: u32) -> String {
    if !ask.runs {
        return String::new();
    }
    let place = if index % PROOF_RUN == 0 {
        format!("a multiple of {PROOF_RUN}")
    } else {
        format!("not a multiple of {PROOF_RUN}")
    };
    if ask.announced {
        format!(
            ", PROOF_RUNS set and announced to this puller (chunk {index} is {place}; §3.6: a proof only on those that are)"
        )
    } else {
        format!(", PROOF_RUNS set but not announced to this puller (chunk {index} is {place})")
    }
}

fn puller_packet(a: &mut Analysis, p: &Pkt, frame: usize, b: &[u8], r: Repr<'_>) {
    let peer = p.peer;
    let id = *r.exposure_id();
    if !a.served.is_empty() {
        let served = a.served.contains(&id);
        a.f.pul_exposure.check(served, || {
            format!(
                "frame {frame}: {:?} from {} for exposure {}, which the exposer does not serve",
                r.packet_type(),
                peer_text(peer),
                hex::encode(id)
            )
        });
    }
    match r {
        Repr::PullRequest(pr) => {
            // Bits 0-4 are defined (PROOF_RUNS is bit 4, §3.6); 5-31 are reserved.
            let reserved = pr.flags.bits() & !PullFlags::all().bits();
            a.f.pul_reserved.check(reserved == 0, || {
                format!(
                    "frame {frame}: PullFlags {:#010x} set reserved bits {reserved:#010x}",
                    pr.flags.bits()
                )
            });
            let version_ok = pr.version_min <= 1 && 1 <= pr.version_max;
            a.f.pul_versions.check(version_ok, || {
                format!(
                    "frame {frame}: Pull_Request from {} offers versions [{}, {}]",
                    peer_text(peer),
                    pr.version_min,
                    pr.version_max
                )
            });
            a.last_req.insert(peer, a.reqs.len());
            a.reqs.push(Request {
                frame,
                peer,
                exposure: id,
                len: b.len(),
                answers: 0,
                answered_bytes: 0,
                unrequested_bytes: 0,
                kind: ReqKind::Pull {
                    version_ok,
                    asks_token: pr.flags.contains(PullFlags::ADDR_VALIDATION),
                    asks_runs: pr.flags.contains(PullFlags::PROOF_RUNS),
                    answered: false,
                },
            });
        }
        Repr::Nak(nak) => {
            // Bits 0-2 are defined (PROOF_RUNS is bit 2, §3.6); 3-15 are reserved.
            let reserved = nak.flags.bits() & !NakFlags::all().bits();
            a.f.pul_reserved.check(reserved == 0, || {
                format!(
                    "frame {frame}: NakFlags {:#06x} set reserved bits {reserved:#06x}",
                    nak.flags.bits()
                )
            });
            let ask = ProofAsk {
                proofs: nak.flags.contains(NakFlags::PROOFS),
                runs: nak.flags.contains(NakFlags::PROOF_RUNS),
                announced: a.runs_announced.contains(&(peer, id)),
            };
            // CAP-109 (§3.6): NakFlags PROOF_RUNS only once a Manifest announced it.
            if ask.runs {
                if ask.announced {
                    a.f.pul_runs.ok();
                } else if a.manifest_sent.contains(&(peer, id)) {
                    a.f.pul_runs.bad(format!(
                        "frame {frame}: NAK from {} sets PROOF_RUNS, but no Manifest the exposer sent it for exposure {} announced PROOF_RUNS",
                        peer_text(peer),
                        hex::encode(id)
                    ));
                } else {
                    a.f.pul_runs_unverifiable += 1;
                }
            }
            let entries = nak.indices.len();
            a.f.pul_nak_size.check(entries <= NAK_SERVE_LIMIT, || {
                format!(
                    "frame {frame}: NAK from {} lists {entries} entries",
                    peer_text(peer)
                )
            });
            let token = match nak.token {
                None => TokenStatus::Absent,
                Some(t) => {
                    let here = a
                        .tokens
                        .iter()
                        .any(|(to, x, tk)| *to == peer && *x == id && *tk == t);
                    let to_peer = a.tokens.iter().any(|(to, _, tk)| *to == peer && *tk == t);
                    let elsewhere = a.tokens.iter().find(|(to, _, tk)| *to != peer && *tk == t);
                    let peer_had = a.tokens.iter().any(|(to, _, _)| *to == peer);
                    // CAP-107: the puller echoes a token it was given, byte for byte.
                    if to_peer {
                        a.f.pul_token.ok();
                    } else if let Some((other, _, _)) = elsewhere {
                        a.f.pul_token.bad(format!(
                            "frame {frame}: NAK from {} carries the token issued to {}",
                            peer_text(peer),
                            peer_text(*other)
                        ));
                    } else if peer_had {
                        a.f.pul_token.bad(format!(
                            "frame {frame}: NAK from {} carries a token the exposer never issued to it",
                            peer_text(peer)
                        ));
                    } else {
                        a.f.pul_token_unverifiable += 1;
                    }
                    if here {
                        TokenStatus::Valid
                    } else if !peer_had && elsewhere.is_none() {
                        TokenStatus::Unverifiable
                    } else {
                        TokenStatus::Invalid
                    }
                }
            };
            let q = a.reqs.len();
            a.last_req.insert(peer, q);
            a.reqs.push(Request {
                frame,
                peer,
                exposure: id,
                len: b.len(),
                answers: 0,
                answered_bytes: 0,
                unrequested_bytes: 0,
                kind: ReqKind::Nak {
                    entries,
                    cursor: 0,
                    ask,
                    token,
                    max_pos: 0,
                },
            });
            for (pos, e) in nak.indices.iter().enumerate() {
                let key = (peer, id, e);
                a.open.entry(key).or_default().push((q, pos));
                *a.asked.entry(key).or_default() += 1;
            }
        }
        Repr::RateReport(rr) => {
            a.f.pul_reserved.check(b[32..36] == [0; 4], || {
                format!(
                    "frame {frame}: Rate_Report Reserved {}",
                    hex::encode(&b[32..36])
                )
            });
            let clock_ok = rr.timestamp_us.abs_diff(p.ts_us) <= CLOCK_SLACK_US;
            a.f.pul_reports
                .check(rr.loss_rate_q16 <= 65_535 && clock_ok, || {
                    format!(
                        "frame {frame}: Rate_Report from {}: Loss_Rate_Q16 {}, Timestamp_Us {} ({} s from the capture's clock)",
                        peer_text(peer),
                        rr.loss_rate_q16,
                        rr.timestamp_us,
                        rr.timestamp_us.abs_diff(p.ts_us) / 1_000_000
                    )
                });
        }
        Repr::Keepalive(k) => {
            a.f.pul_reserved.check(b[28..32] == [0; 4], || {
                format!(
                    "frame {frame}: Keepalive Reserved {}",
                    hex::encode(&b[28..32])
                )
            });
            a.f.pul_reports
                .check(k.timestamp_us.abs_diff(p.ts_us) <= CLOCK_SLACK_US, || {
                    format!(
                        "frame {frame}: Keepalive from {}: Timestamp_Us {} is {} s from the capture's clock",
                        peer_text(peer),
                        k.timestamp_us,
                        k.timestamp_us.abs_diff(p.ts_us) / 1_000_000
                    )
                });
        }
        // Exposer-to-puller types sent to the exposer: nothing the puller cases judge.
        _ => {}
    }
}

// ------------------------------------------------------------------ content helpers

/// A chunk packet, parsed.
struct ChunkPkt<'a> {
    index: u32,
    /// Ciphertext ‖ tag.
    payload: &'a [u8],
    /// Sibling hashes, leaf level first (Chunk_Data_With_Proof).
    proof: Option<Vec<Hash>>,
}

/// The chunk packet in `b`, if it is one of exposure `id`.
fn chunk_of<'a>(b: &'a [u8], id: &ExposureId) -> Option<ChunkPkt<'a>> {
    match Repr::parse(b, PARSE_LIMIT).ok()? {
        Repr::ChunkData(c) if c.exposure_id == *id => Some(ChunkPkt {
            index: c.chunk_index,
            payload: c.payload,
            proof: None,
        }),
        Repr::ChunkDataWithProof(c) if c.exposure_id == *id => Some(ChunkPkt {
            index: c.chunk_index,
            payload: c.payload,
            proof: Some(c.siblings().copied().collect()),
        }),
        _ => None,
    }
}

/// Opens a sealed payload (ciphertext ‖ tag) of chunk `index`.
fn open(cipher: &AnyCipher, index: u32, payload: &[u8]) -> Result<Vec<u8>, String> {
    if payload.len() < TAG_LEN {
        return Err(format!(
            "chunk {index}: a {} B payload has no tag",
            payload.len()
        ));
    }
    let (body, tag) = payload.split_at(payload.len() - TAG_LEN);
    let mut body = body.to_vec();
    let tag: [u8; TAG_LEN] = tag.try_into().expect("TAG_LEN bytes");
    cipher
        .open(index, &mut body, &tag)
        .map_err(|_| format!("chunk {index}: the tag does not verify under the ticket's key"))?;
    Ok(body)
}

fn suite_of(m: &Manifest) -> Result<SuiteId, Stop> {
    SuiteId::from_manifest(m).map_err(|e| {
        Stop::Skip(format!(
            "n/a: the Manifest names no usable suite ({e:?}; CAP-013 judges it)"
        ))
    })
}

/// The parity shards of block `b`, computed from the plaintext `out` (§7.1-§7.5).
fn block_parity(
    m: &Manifest,
    out: &[u8],
    cipher: &AnyCipher,
    codec: &AnyFec,
    b: u32,
) -> Result<Vec<Vec<u8>>, String> {
    let k = u32::from(m.fec_k);
    let cs = m.chunk_size as usize;
    let shard = cs + TAG_LEN;
    let mut data = Vec::with_capacity(k as usize);
    for j in 0..k {
        let idx = b * k + j;
        if idx >= m.chunk_count {
            data.push(vec![0u8; shard]); // virtual zero shard (§7.2)
            continue;
        }
        let off = idx as usize * cs;
        let mut v = out
            .get(off..off + plain_len(m, idx))
            .ok_or("the replayed output is shorter than the Manifest says")?
            .to_vec();
        let tag = cipher
            .seal(idx, &mut v)
            .map_err(|e| format!("sealing chunk {idx}: {e}"))?;
        v.extend_from_slice(&tag);
        v.resize(shard, 0);
        data.push(v);
    }
    let mut parity = vec![vec![0u8; shard]; usize::from(m.fec_n - m.fec_k)];
    let drefs: Vec<&[u8]> = data.iter().map(|v| &v[..]).collect();
    let mut prefs: Vec<&mut [u8]> = parity.iter_mut().map(|v| &mut v[..]).collect();
    codec
        .encode(&drefs, &mut prefs)
        .map_err(|e| format!("coding block {b}: {e}"))?;
    Ok(parity)
}

// ------------------------------------------------------------------ exposer cases

const NO_EXPOSER_DATAGRAM: &str = "no datagram from the exposer in the capture";

fn cap001(ctx: &CaptureCtx) -> CaseResult {
    ctx.a
        .f
        .exp_parse
        .verdict("datagrams from the exposer", NO_EXPOSER_DATAGRAM, "")
}

fn cap002(ctx: &CaptureCtx) -> CaseResult {
    ctx.a
        .f
        .exp_length
        .verdict("datagrams from the exposer", NO_EXPOSER_DATAGRAM, "")
}

fn cap003(ctx: &CaptureCtx) -> CaseResult {
    ctx.a.f.exp_reserved.verdict(
        "FEC_Parity packets",
        "no FEC_Parity, the only exposer packet with a Reserved field (undefined Manifest flag bits, 9-15, are parse errors, CAP-001)",
        "",
    )
}

fn cap004(ctx: &CaptureCtx) -> CaseResult {
    ctx.a.f.exp_types.verdict(
        "packets from the exposer",
        "no valid packet from the exposer",
        "",
    )
}

fn cap005(ctx: &CaptureCtx) -> CaseResult {
    ctx.a.f.exp_size.verdict(
        "datagrams from the exposer",
        NO_EXPOSER_DATAGRAM,
        &format!(
            "limits UDP/IPv4 {MAX_UDP4} B, UDP/IPv6 {MAX_UDP6} B, Ethernet MTU {} B",
            ctx.eth_mtu
        ),
    )
}

fn cap010(ctx: &CaptureCtx) -> CaseResult {
    ctx.a
        .f
        .manifest_solicited
        .verdict("Manifests", "no Manifest in the capture", "")
}

fn cap011(ctx: &CaptureCtx) -> CaseResult {
    ctx.a.f.manifest_version.verdict(
        "Pull_Requests excluding version 1",
        "no Pull_Request excluded version 1",
        "",
    )
}

fn cap012(ctx: &CaptureCtx) -> CaseResult {
    ctx.a.f.manifest_same.verdict(
        "repeated Manifests",
        "no exposure had more than one Manifest",
        "",
    )
}

fn cap013(ctx: &CaptureCtx) -> CaseResult {
    ctx.a
        .f
        .manifest_wellformed
        .verdict("Manifests", "no Manifest in the capture", "")
}

fn cap014(ctx: &CaptureCtx) -> CaseResult {
    ctx.a.f.manifest_token.verdict(
        "Manifests answering a Pull_Request",
        "no Manifest answered a Pull_Request",
        "",
    )
}

fn cap015(ctx: &CaptureCtx) -> CaseResult {
    let n = ctx.a.f.manifest_runs_announced;
    ctx.a.f.manifest_runs.verdict(
        "Manifests answering a Pull_Request",
        "no Manifest answered a Pull_Request",
        &format!("{n} with PROOF_RUNS"),
    )
}

fn cap020(ctx: &CaptureCtx) -> CaseResult {
    ctx.a
        .f
        .chunk_requested
        .verdict("chunk packets", "no chunk packet in the capture", "")
}

fn cap021(ctx: &CaptureCtx) -> CaseResult {
    ctx.a
        .f
        .parity_requested
        .verdict("FEC_Parity packets", "no FEC_Parity in the capture", "")
}

fn cap022(ctx: &CaptureCtx) -> CaseResult {
    let served: Vec<String> = ctx
        .a
        .reqs
        .iter()
        .filter_map(|q| match q.kind {
            ReqKind::Nak { entries, .. } if entries > NAK_SERVE_LIMIT => Some(format!(
                "frame {}: {entries} entries → {} answers",
                q.frame, q.answers
            )),
            _ => None,
        })
        .take(SHOW)
        .collect();
    ctx.a.f.nak_limit.verdict(
        "NAKs of more than 256 entries",
        "no NAK listed more than 256 entries",
        &served.join(", "),
    )
}

fn cap023(ctx: &CaptureCtx) -> CaseResult {
    let f = &ctx.a.f;
    let none = if f.chunk_fields_unjudged > 0 {
        "no Manifest of the chunks' exposure in the capture"
    } else {
        "no chunk packet in the capture"
    };
    f.chunk_fields.verdict("chunk packets", none, "")
}

fn cap024(ctx: &CaptureCtx) -> CaseResult {
    let f = &ctx.a.f;
    f.parity_fields.verdict(
        "FEC_Parity packets",
        if ctx.a.parity.is_empty() {
            "no FEC_Parity in the capture"
        } else {
            "no Manifest of the parity's exposure in the capture"
        },
        "",
    )
}

fn cap025(ctx: &CaptureCtx) -> CaseResult {
    ctx.a.f.proof_type.verdict(
        "requested chunk packets",
        "no requested chunk of an exposure whose Manifest is in the capture",
        "",
    )
}

fn cap030(ctx: &CaptureCtx) -> CaseResult {
    let n = ctx.a.f.amplification_unverifiable;
    let mut notes = Vec::new();
    let worst = ctx
        .a
        .reqs
        .iter()
        .filter(|q| q.bounded() && q.len > 0)
        .max_by(|x, y| (x.answered_bytes * y.len).cmp(&(y.answered_bytes * x.len)));
    if let Some(q) = worst {
        notes.push(format!(
            "highest ratio {:.2}: frame {}, {} of {} B → {} B",
            q.answered_bytes as f64 / q.len as f64,
            q.frame,
            q.name(),
            q.len,
            q.answered_bytes
        ));
    }
    if n > 0 {
        notes.push(format!(
            "{n} NAKs with tokens issued before the capture began not judged"
        ));
    }
    let note = notes.join("; ");
    ctx.a.f.amplification.verdict(
        "unvalidated requests",
        "no request from an unvalidated address",
        &note,
    )
}

fn cap040(ctx: &CaptureCtx) -> CaseResult {
    let (t, m) = ctx.content()?;
    let from_manifest = m.and_then(|m| SuiteId::from_manifest(m).ok());
    let cid = from_manifest.map(|s| s.cipher).or(t.cipher);
    // Without a Manifest, the chunk key is our default: derived (spec §6.6).
    let key = from_manifest
        .map_or(KeyMode::Derived, |s| s.key_mode)
        .chunk_key(&t.key, &t.exposure_id);
    let mut tally = Tally::default();
    let mut cipher = None;
    for &i in &ctx.a.chunks {
        let p = &ctx.a.pkts[i];
        let Some(ChunkPkt { index, payload, .. }) = chunk_of(ctx.bytes(p), &t.exposure_id) else {
            continue;
        };
        if cipher.is_none() {
            let Some(cid) = cid else {
                return skip("n/a: neither a Manifest of the ticket's exposure nor a cipher pin in the ticket names the AEAD");
            };
            cipher = Some(
                AnyCipher::new(cid, &key)
                    .ok_or_else(|| Stop::Fail(format!("{} is not available", cid.name())))?,
            );
        }
        let c = cipher.as_ref().expect("set above");
        match open(c, index, payload) {
            Ok(_) => tally.ok(),
            Err(e) => tally.bad(format!("frame {}: {e}", ctx.frame(p))),
        }
    }
    tally.verdict(
        "chunks of the ticket's exposure",
        "no chunk of the ticket's exposure in the capture",
        "",
    )
}

fn cap041(ctx: &CaptureCtx) -> CaseResult {
    let (t, m) = ctx.content()?;
    let proofs: Vec<(&Pkt, u32, &[u8], Vec<Hash>)> = ctx
        .a
        .chunks
        .iter()
        .map(|&i| &ctx.a.pkts[i])
        .filter_map(|p| match chunk_of(ctx.bytes(p), &t.exposure_id) {
            Some(ChunkPkt {
                index,
                payload,
                proof: Some(proof),
            }) => Some((p, index, payload, proof)),
            _ => None,
        })
        .collect();
    if proofs.is_empty() {
        return skip("n/a: no Chunk_Data_With_Proof of the ticket's exposure in the capture");
    }
    let Some(m) = m else {
        return skip("n/a: no Manifest (so no root) of the ticket's exposure in the capture");
    };
    let suite = suite_of(m)?;
    let key = suite.key_mode.chunk_key(&t.key, &t.exposure_id);
    let cipher = AnyCipher::new(suite.cipher, &key)
        .ok_or_else(|| Stop::Fail(format!("{} is not available", suite.cipher.name())))?;
    let hash = AnyHash::new(suite.hash)
        .ok_or_else(|| Stop::Fail(format!("{} is not available", suite.hash.name())))?;
    let mut tally = Tally::default();
    let mut unopened = 0;
    for (p, index, payload, proof) in proofs {
        let Ok(plain) = open(&cipher, index, payload) else {
            unopened += 1;
            continue;
        };
        let leaf = hash.leaf(&plain);
        let ok = verify_proof(
            &hash,
            &leaf,
            index,
            m.chunk_count,
            proof.iter(),
            &m.merkle_root,
        );
        tally.check(ok, || {
            format!(
                "frame {}: the proof of chunk {index} (depth {}) does not fold to the Manifest's root",
                ctx.frame(p),
                proof.len()
            )
        });
    }
    let note = if unopened > 0 {
        format!("{unopened} failing AEAD not judged (CAP-040)")
    } else {
        String::new()
    };
    tally.verdict(
        "proofs",
        "no proof chunk of the ticket's exposure opens under its key",
        &note,
    )
}

fn cap042(ctx: &CaptureCtx) -> CaseResult {
    let (t, m) = ctx.content()?;
    let r = ctx.replay();
    let s = r.stats.unwrap_or_default();
    let counters = format!(
        "auth failures {}, Merkle failures {}, malformed {}, duplicates {}, FEC rebuilds {}",
        s.auth_failures, s.merkle_failures, s.malformed, s.duplicates, s.fec_recoveries
    );
    match &r.verdict {
        Some(PullVerdict::Complete(out)) => {
            let Some(m) = m else {
                return Ok(format!(
                    "{} datagrams replayed: complete, {} B ({counters})",
                    r.fed,
                    out.len()
                ));
            };
            let suite = suite_of(m)?;
            let hash = AnyHash::new(suite.hash)
        .ok_or_else(|| Stop::Fail(format!("{} is not available", suite.hash.name())))?;
            let cs = (m.chunk_size as usize).max(1);
            let leaves: Vec<Hash> = out.chunks(cs).map(|c| hash.leaf(c)).collect();
            let root = root_of(&hash, &leaves);
            crate::ensure!(
                out.len() as u64 == m.total_size && root == m.merkle_root,
                "the replayed output ({} B) has root {}…, the Manifest says {} B and {}…",
                out.len(),
                hex::encode(&root[..8]),
                m.total_size,
                hex::encode(&m.merkle_root[..8])
            );
            Ok(format!(
                "{} datagrams replayed into a fresh puller: complete, {} B, root {}… = the Manifest's ({counters})",
                r.fed,
                out.len(),
                hex::encode(&root[..8])
            ))
        }
        Some(PullVerdict::Failed(e)) => fail(format!(
            "the replayed puller failed after {} datagrams: {e} ({counters})",
            r.fed
        )),
        Some(PullVerdict::Io(e)) => fail(format!("the replay failed: {e}")),
        Some(PullVerdict::Incomplete { total: 0, .. }) => skip(format!(
            "n/a: no Manifest of exposure {} reached the replayed puller",
            hex::encode(t.exposure_id)
        )),
        Some(PullVerdict::Incomplete { received, total }) => skip(format!(
            "n/a: the capture ends before the transfer does: {received} of {total} chunks verified ({counters})"
        )),
        None => skip(format!("n/a: not replayed (ran: {})", r.ran)),
    }
}

fn cap043(ctx: &CaptureCtx) -> CaseResult {
    let (t, m) = ctx.content()?;
    let parity: Vec<(&Pkt, u32, u8, &[u8])> = ctx
        .a
        .parity
        .iter()
        .map(|&i| &ctx.a.pkts[i])
        .filter_map(|p| match Repr::parse(ctx.bytes(p), PARSE_LIMIT) {
            Ok(Repr::FecParity(fp)) if fp.exposure_id == t.exposure_id => {
                Some((p, fp.block_index, fp.parity_index, fp.payload))
            }
            _ => None,
        })
        .collect();
    if parity.is_empty() {
        return skip("n/a: no FEC_Parity of the ticket's exposure in the capture");
    }
    let Some(m) = m else {
        return skip("n/a: no Manifest of the ticket's exposure in the capture");
    };
    let suite = suite_of(m)?;
    if suite.fec.scheme == FecScheme::None {
        return skip("n/a: the Manifest announces no FEC (CAP-024 judges parity sent anyway)");
    }
    let Some(PullVerdict::Complete(out)) = &ctx.replay().verdict else {
        return skip(
            "n/a: the replayed pull did not complete, so the sealed chunks to code are unknown (CAP-042)",
        );
    };
    let key = suite.key_mode.chunk_key(&t.key, &t.exposure_id);
    let cipher = AnyCipher::new(suite.cipher, &key)
        .ok_or_else(|| Stop::Fail(format!("{} is not available", suite.cipher.name())))?;
    let codec = AnyFec::new(suite.fec).map_err(|e| Stop::Fail(format!("{:?}: {e}", suite.fec)))?;
    let blocks = m.chunk_count.div_ceil(u32::from(m.fec_k));
    let mut cache: HashMap<u32, Vec<Vec<u8>>> = HashMap::new();
    let mut tally = Tally::default();
    let mut out_of_range = 0;
    for (p, b, pi, payload) in parity {
        if b >= blocks || usize::from(pi) >= suite.fec.parity() {
            out_of_range += 1;
            continue;
        }
        if let std::collections::hash_map::Entry::Vacant(e) = cache.entry(b) {
            e.insert(block_parity(m, out, &cipher, &codec, b).map_err(Stop::Fail)?);
        }
        let want = &cache[&b][usize::from(pi)];
        tally.check(payload == &want[..], || {
            format!(
                "frame {}: parity ({b}, {pi}) differs from {:?} parity of the sealed block",
                ctx.frame(p),
                suite.fec.scheme
            )
        });
    }
    let note = if out_of_range > 0 {
        format!("{out_of_range} out of range not judged (CAP-024)")
    } else {
        String::new()
    };
    tally.verdict("parity shards", "no parity shard in range", &note)
}

// ------------------------------------------------------------------ puller cases

const NO_PULLER_DATAGRAM: &str = "no datagram to the exposer in the capture";

fn cap101(ctx: &CaptureCtx) -> CaseResult {
    ctx.a
        .f
        .pul_parse
        .verdict("datagrams to the exposer", NO_PULLER_DATAGRAM, "")
}

fn cap102(ctx: &CaptureCtx) -> CaseResult {
    ctx.a
        .f
        .pul_length
        .verdict("datagrams to the exposer", NO_PULLER_DATAGRAM, "")
}

fn cap103(ctx: &CaptureCtx) -> CaseResult {
    ctx.a.f.pul_reserved.verdict(
        "Pull_Requests, NAKs, Rate_Reports and Keepalives",
        "no puller packet in the capture",
        "",
    )
}

fn cap104(ctx: &CaptureCtx) -> CaseResult {
    ctx.a
        .f
        .pul_versions
        .verdict("Pull_Requests", "no Pull_Request in the capture", "")
}

fn cap105(ctx: &CaptureCtx) -> CaseResult {
    ctx.a.f.pul_exposure.verdict(
        "requests",
        "neither a ticket nor a Manifest tells which exposures the exposer serves",
        "",
    )
}

fn cap106(ctx: &CaptureCtx) -> CaseResult {
    ctx.a
        .f
        .pul_nak_size
        .verdict("NAKs", "no NAK in the capture", "")
}

fn cap107(ctx: &CaptureCtx) -> CaseResult {
    let n = ctx.a.f.pul_token_unverifiable;
    let (none, note) = if n == 0 {
        ("no NAK carries a token".to_string(), String::new())
    } else {
        (
            format!("the {n} tokens in NAKs were issued before the capture began"),
            format!("{n} issued before the capture began not judged"),
        )
    };
    ctx.a.f.pul_token.verdict("NAKs with a token", &none, &note)
}

fn cap108(ctx: &CaptureCtx) -> CaseResult {
    ctx.a.f.pul_reports.verdict(
        "Rate_Reports and Keepalives",
        "no Rate_Report or Keepalive in the capture",
        "",
    )
}

fn cap109(ctx: &CaptureCtx) -> CaseResult {
    let n = ctx.a.f.pul_runs_unverifiable;
    let (none, note) = if n == 0 {
        ("no NAK sets PROOF_RUNS".to_string(), String::new())
    } else {
        (
            format!("the {n} NAKs with PROOF_RUNS come from pullers whose Manifest is not in the capture"),
            format!("{n} from pullers whose Manifest is not in the capture not judged"),
        )
    };
    ctx.a
        .f
        .pul_runs
        .verdict("NAKs with PROOF_RUNS", &none, &note)
}

/// The capture catalogue: `CAP-0xx` judge the exposer, `CAP-1xx` the puller(s).
pub static CASES: &[Case<CaptureCtx>] = &[
    Case {
        id: "CAP-001",
        title: "exposer: every datagram parses as RGTP v1",
        section: "§2.13",
        level: Level::Must,
        run: cap001,
    },
    Case {
        id: "CAP-002",
        title: "exposer: Length field = datagram size",
        section: "§2.1",
        level: Level::Must,
        run: cap002,
    },
    Case {
        id: "CAP-003",
        title: "exposer: Reserved fields are 0",
        section: "§2.11",
        level: Level::Must,
        run: cap003,
    },
    Case {
        id: "CAP-004",
        title: "exposer: sends only types 2-5",
        section: "§3.7",
        level: Level::Must,
        run: cap004,
    },
    Case {
        id: "CAP-005",
        title: "exposer: every packet fits the link",
        section: "§9.1",
        level: Level::Must,
        run: cap005,
    },
    Case {
        id: "CAP-010",
        title: "exposer: Manifest only for a Pull_Request, ≤1",
        section: "§3.1",
        level: Level::Must,
        run: cap010,
    },
    Case {
        id: "CAP-011",
        title: "exposer: no Manifest if versions exclude 1",
        section: "§3.2",
        level: Level::Must,
        run: cap011,
    },
    Case {
        id: "CAP-012",
        title: "exposer: repeated Manifests are the same",
        section: "§3.1",
        level: Level::Must,
        run: cap012,
    },
    Case {
        id: "CAP-013",
        title: "exposer: Manifest sizes, suite, ticket pins",
        section: "§2.4",
        level: Level::Must,
        run: cap013,
    },
    Case {
        id: "CAP-014",
        title: "exposer: token only when bit 2 asked for it",
        section: "§5.2",
        level: Level::Must,
        run: cap014,
    },
    Case {
        id: "CAP-015",
        title: "exposer: PROOF_RUNS only if the puller asked",
        section: "§3.6",
        level: Level::Must,
        run: cap015,
    },
    Case {
        id: "CAP-020",
        title: "exposer: every chunk answers a NAK entry",
        section: "§3.3",
        level: Level::Must,
        run: cap020,
    },
    Case {
        id: "CAP-021",
        title: "exposer: every parity answers a parity entry",
        section: "§3.4",
        level: Level::Must,
        run: cap021,
    },
    Case {
        id: "CAP-022",
        title: "exposer: at most 256 entries served per NAK",
        section: "§3.5",
        level: Level::Must,
        run: cap022,
    },
    Case {
        id: "CAP-023",
        title: "exposer: chunk index, payload size, depth",
        section: "§2.5",
        level: Level::Must,
        run: cap023,
    },
    Case {
        id: "CAP-024",
        title: "exposer: FEC_Parity fields match Manifest",
        section: "§7.3",
        level: Level::Must,
        run: cap024,
    },
    Case {
        id: "CAP-025",
        title: "exposer: proofs as PROOFS and PROOF_RUNS ask",
        section: "§3.6",
        level: Level::Must,
        run: cap025,
    },
    Case {
        id: "CAP-030",
        title: "exposer: unvalidated request → ≤ 3× its size",
        section: "§5.1",
        level: Level::Must,
        run: cap030,
    },
    Case {
        id: "CAP-040",
        title: "exposer: every chunk opens (ticket key)",
        section: "§6.2",
        level: Level::Must,
        run: cap040,
    },
    Case {
        id: "CAP-041",
        title: "exposer: every proof folds to the root",
        section: "§6.4",
        level: Level::Must,
        run: cap041,
    },
    Case {
        id: "CAP-042",
        title: "exposer: replayed pull completes, root ok",
        section: "§6.5",
        level: Level::Must,
        run: cap042,
    },
    Case {
        id: "CAP-043",
        title: "exposer: parity = code of the sealed block",
        section: "§7.1",
        level: Level::Must,
        run: cap043,
    },
    Case {
        id: "CAP-101",
        title: "puller: every datagram parses as RGTP v1",
        section: "§2.13",
        level: Level::Must,
        run: cap101,
    },
    Case {
        id: "CAP-102",
        title: "puller: Length field = datagram size",
        section: "§2.1",
        level: Level::Must,
        run: cap102,
    },
    Case {
        id: "CAP-103",
        title: "puller: Reserved fields and bits are 0",
        section: "§2.11",
        level: Level::Must,
        run: cap103,
    },
    Case {
        id: "CAP-104",
        title: "puller: Pull_Requests offer version 1",
        section: "§3.2",
        level: Level::Should,
        run: cap104,
    },
    Case {
        id: "CAP-105",
        title: "puller: requests name a served exposure",
        section: "§3.8",
        level: Level::Should,
        run: cap105,
    },
    Case {
        id: "CAP-106",
        title: "puller: at most 256 entries per NAK",
        section: "§3.5",
        level: Level::Should,
        run: cap106,
    },
    Case {
        id: "CAP-107",
        title: "puller: NAK token echoes its own token",
        section: "§5.3",
        level: Level::Must,
        run: cap107,
    },
    Case {
        id: "CAP-108",
        title: "puller: Rate_Report/Keepalive values sane",
        section: "§8.5",
        level: Level::Should,
        run: cap108,
    },
    Case {
        id: "CAP-109",
        title: "puller: NAK PROOF_RUNS only once announced",
        section: "§3.6",
        level: Level::Must,
        run: cap109,
    },
];
