//! The canonical capture corpus (`pcaps/`): deterministic transfers in the
//! simulator, recorded at one end, each with a JSON sidecar saying what it
//! holds and what replaying it must give.
//!
//! Everything is derived from each scenario's seed (data, key, Exposure_ID,
//! the network's impairments) and time is virtual, so [`generate`] writes the
//! same bytes on every machine; `cargo run -p rgtp-cli --example regen-pcaps`
//! rewrites `pcaps/`, and a test checks the committed files against a fresh run.
//!
//! Hostile captures come from a middlebox between the two ends that inserts,
//! alters or repeats packets; the honest peers react as they would live, so
//! the capture shows both the attack and the answer to it.

use std::io;
use std::net::SocketAddr;
use std::path::Path;
use std::time::Duration;

use rand::{Rng, RngCore, SeedableRng};
use rand_chacha::ChaCha8Rng;
use rgtp_capture::{CaptureWriter, Vlan};
use rgtp_link::{ImpairmentConfig, SimNet};
use rgtp_proto::{CipherId, HashId, Instant, Key, Peer, Puller, PullerConfig, PullerStats};
use serde_json::{json, Value};
use sha2::{Digest, Sha256};

use redgiant_base::driver::{self, Network, Stepper};

use rgtp::builder::{ExposerBuilder, Prepared};
use rgtp::driver::{PullApp, PullFailure, ServeApp};
use rgtp::sink::MemSink;
use rgtp::suite::{DynSuite, FecSpec};

/// Virtual start time of every scenario: 2026-01-01T00:00:00Z.
const START_US: u64 = 1_767_225_600_000_000;

/// Which end a capture was recorded at.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Side {
    /// What the puller sent and received.
    Puller,
    /// What the exposer sent and received.
    Exposer,
}

impl Side {
    fn name(self) -> &'static str {
        match self {
            Side::Puller => "puller",
            Side::Exposer => "exposer",
        }
    }
}

/// What the middlebox does.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Attack {
    /// Nothing.
    None,
    /// Before some chunks, a copy cut short.
    Truncated,
    /// The first copy of some chunks with a flipped AEAD tag byte.
    ForgedTag,
    /// The first copy of some chunks with a flipped Merkle proof byte.
    ForgedProof,
    /// Chunks sent again later, verbatim.
    ReplayedChunks,
    /// Pull_Requests from the puller's address with version 2.
    WrongVersion,
    /// Requests for an Exposure_ID the exposer does not serve.
    WrongExposureId,
    /// A NAK asking for 1000 chunks at once.
    OversizeNak,
}

/// One capture of the corpus.
#[derive(Debug, Clone)]
pub struct Scenario {
    /// File stem.
    pub name: &'static str,
    /// One line on what it shows.
    pub description: &'static str,
    /// Tags: what it exercises.
    pub exercises: &'static [&'static str],
    /// Seed for data, key, Exposure_ID and impairments.
    pub seed: u64,
    /// Dataset size.
    pub size: usize,
    /// Suite.
    pub cipher: CipherId,
    /// Merkle hash.
    pub hash: HashId,
    /// FEC.
    pub fec: FecSpec,
    /// Proofs on every chunk.
    pub proofs: bool,
    /// Chunk size.
    pub chunk_size: u32,
    /// Exposer and puller addresses.
    pub exposer: Peer,
    /// Puller address.
    pub puller: Peer,
    /// 802.1Q tag on raw-Ethernet frames.
    pub vlan: Option<Vlan>,
    /// Impairment exposer→puller.
    pub down: ImpairmentConfig,
    /// Impairment puller→exposer.
    pub up: ImpairmentConfig,
    /// Middlebox.
    pub attack: Attack,
    /// Where it is recorded.
    pub side: Side,
    /// Cap on the puller's window (more round trips, so FEC and loss estimates come into play).
    pub max_window: Option<u32>,
    /// A puller that speaks only when it must: no Rate_Reports, no token
    /// refreshes, and a retransmission floor longer than the transfer, so once
    /// it has asked for everything it is silent and, after 25 s, sends a
    /// Keepalive (spec §8.6).
    pub quiet_puller: bool,
}

fn ip(s: &str) -> Peer {
    Peer::Ip(s.parse::<SocketAddr>().expect("literal address"))
}

fn lossy(loss: f64) -> ImpairmentConfig {
    ImpairmentConfig {
        loss,
        delay: Duration::from_millis(5),
        jitter: Duration::from_millis(2),
        reorder: 0.05,
        ..ImpairmentConfig::perfect()
    }
}

fn base(
    name: &'static str,
    description: &'static str,
    exercises: &'static [&'static str],
    seed: u64,
) -> Scenario {
    let path = ImpairmentConfig {
        delay: Duration::from_millis(1),
        ..ImpairmentConfig::perfect()
    };
    Scenario {
        name,
        description,
        exercises,
        seed,
        size: 40_000,
        cipher: CipherId::Aes256Gcm,
        hash: HashId::Sha256,
        fec: FecSpec::None,
        proofs: false,
        chunk_size: 1200,
        exposer: ip("192.0.2.1:9000"),
        puller: ip("192.0.2.2:40000"),
        vlan: None,
        down: path.clone(),
        up: path,
        attack: Attack::None,
        side: Side::Exposer,
        max_window: None,
        quiet_puller: false,
    }
}

/// The corpus.
pub fn scenarios() -> Vec<Scenario> {
    let e1 = Peer::Ethernet([0x02, 0x00, 0x5e, 0x10, 0x00, 0x01]);
    let e2 = Peer::Ethernet([0x02, 0x00, 0x5e, 0x10, 0x00, 0x02]);
    vec![
        Scenario {
            size: 100,
            ..base("tiny", "a 100-byte file in one chunk over UDP/IPv4", &["handshake", "single-chunk"], 1)
        },
        Scenario {
            size: 100_000,
            ..base("multi-chunk", "100 kB in 84 chunks over UDP/IPv4, no loss", &["windowed-requests", "last-chunk-short"], 2)
        },
        Scenario {
            proofs: true,
            hash: HashId::Blake3,
            ..base("proofs", "every chunk with its Merkle proof (BLAKE3)", &["chunk-with-proof", "blake3"], 3)
        },
        Scenario {
            fec: FecSpec::ReedSolomon { n: 10, k: 8 },
            down: lossy(0.08),
            side: Side::Puller,
            size: 200_000,
            max_window: Some(24),
            ..base("rs", "Reed-Solomon(10,8) parity rebuilding chunks lost on an 8% lossy path", &["fec-parity", "reed-solomon", "loss"], 4)
        },
        Scenario {
            fec: FecSpec::RaptorQ { n: 20, k: 16 },
            down: lossy(0.08),
            side: Side::Puller,
            size: 200_000,
            max_window: Some(24),
            ..base("raptorq", "RaptorQ(20,16) parity rebuilding chunks lost on an 8% lossy path", &["fec-parity", "raptorq", "loss"], 5)
        },
        Scenario {
            down: lossy(0.15),
            up: lossy(0.1),
            side: Side::Puller,
            size: 120_000,
            cipher: CipherId::ChaCha20Poly1305,
            hash: HashId::Blake2b256,
            ..base("lossy", "15%/10% loss with reordering: NAK retransmissions, upstream suite", &["retransmission", "loss", "reordering", "upstream-suite"], 6)
        },
        Scenario {
            exposer: e1,
            puller: e2,
            vlan: Some(Vlan { id: 100, pcp: 5, dei: false }),
            chunk_size: 1400,
            ..base("ethernet-vlan", "raw Ethernet (EtherType 0x88B5) frames tagged VLAN 100, PCP 5", &["raw-ethernet", "vlan"], 7)
        },
        Scenario {
            exposer: ip("[2001:db8::1]:9000"),
            puller: ip("[2001:db8::2]:40000"),
            ..base("ipv6", "UDP over IPv6", &["ipv6"], 8)
        },
        Scenario {
            attack: Attack::Truncated,
            side: Side::Puller,
            ..base("hostile-truncated", "chunk packets cut short ahead of the genuine ones", &["malformed", "truncated"], 9)
        },
        Scenario {
            attack: Attack::ForgedTag,
            side: Side::Puller,
            ..base("hostile-forged-tag", "chunks whose AEAD tag was altered in flight, then requested again", &["aead", "forgery", "retransmission"], 10)
        },
        Scenario {
            attack: Attack::ForgedProof,
            proofs: true,
            side: Side::Puller,
            ..base("hostile-forged-proof", "chunks whose Merkle proof was altered in flight", &["merkle-proof", "forgery"], 11)
        },
        Scenario {
            attack: Attack::ReplayedChunks,
            side: Side::Puller,
            ..base("hostile-replayed-chunks", "genuine chunk packets sent again later", &["duplicates", "replay"], 12)
        },
        Scenario {
            attack: Attack::WrongVersion,
            ..base("hostile-wrong-version", "Pull_Requests asking for version 2 only: the exposer stays silent to them", &["version-negotiation"], 13)
        },
        Scenario {
            attack: Attack::WrongExposureId,
            ..base("hostile-wrong-exposure-id", "requests for an Exposure_ID not served here", &["exposure-id"], 14)
        },
        Scenario {
            attack: Attack::OversizeNak,
            ..base("hostile-oversize-nak", "a NAK listing 1000 chunks: the exposer serves at most 256, within its amplification budget", &["nak-limits", "amplification"], 15)
        },
        Scenario {
            down: ImpairmentConfig {
                delay: Duration::from_millis(10),
                rate_limit: Some(50_000),
                queue_limit_bytes: 30_000,
                ..ImpairmentConfig::perfect()
            },
            up: ImpairmentConfig {
                delay: Duration::from_millis(10),
                ..ImpairmentConfig::perfect()
            },
            side: Side::Puller,
            size: 120_000,
            ..base("bottleneck", "a 400 kbit/s bottleneck with a 30 kB queue: queue drops, RTT growth, Rate_Reports over 2.5 s", &["congestion", "rate-report", "queue-loss"], 16)
        },
        Scenario {
            down: ImpairmentConfig {
                delay: Duration::from_millis(10),
                rate_limit: Some(700),
                ..ImpairmentConfig::perfect()
            },
            up: ImpairmentConfig {
                delay: Duration::from_millis(10),
                ..ImpairmentConfig::perfect()
            },
            side: Side::Puller,
            size: 20_000,
            quiet_puller: true,
            ..base("keepalive", "17 chunks asked for at once trickle down a 5.6 kbit/s path for 30 s: the puller, with nothing to say for 25 s, sends a Keepalive", &["keepalive", "virtual-time"], 17)
        },
    ]
}

/// A scenario's dataset.
pub fn dataset(s: &Scenario) -> Vec<u8> {
    let mut data = vec![0u8; s.size];
    ChaCha8Rng::seed_from_u64(s.seed).fill_bytes(&mut data);
    data
}

/// Seals a scenario's dataset with its key and Exposure_ID; its token secret is
/// derived from the key (a simulation whose keys are published).
pub fn prepare(s: &Scenario) -> Prepared {
    let mut rng = ChaCha8Rng::seed_from_u64(s.seed ^ 0x6b65_7973);
    let mut key = [0u8; 32];
    let mut id = [0u8; 16];
    rng.fill_bytes(&mut key);
    rng.fill_bytes(&mut id);
    let mut config = rgtp_proto::ExposerConfig {
        max_segments: 16,
        ..Default::default()
    };
    if let Peer::Ethernet(_) = s.exposer {
        config.max_payload = 1500;
    }
    ExposerBuilder::new()
        .with_cipher(s.cipher)
        .with_hash(s.hash)
        .with_fec(s.fec)
        .with_proofs(s.proofs)
        .with_chunk_size(s.chunk_size)
        .with_key(Key::from_bytes(key))
        .with_exposure_id(id)
        .with_config(config)
        // A simulation with its keys published in its sidecars: nothing to
        // protect, and a secret anyone can recompute from the ticket keeps
        // the captures' tokens as they were (spec §16.3).
        .dangerous_token_secret_from_key()
        .expose(&dataset(s))
        .expect("corpus scenarios are valid")
}

/// What running a scenario gave.
#[derive(Debug)]
pub struct Run {
    /// The capture file's bytes.
    pub pcap: Vec<u8>,
    /// The sidecar.
    pub sidecar: Value,
}

struct Middlebox {
    attack: Attack,
    rng: ChaCha8Rng,
    seen_chunks: Vec<Vec<u8>>,
    hits: u32,
    /// Datagrams the middlebox originates: (when, from, to, bytes).
    extra: Vec<(Instant, Peer, Peer, Vec<u8>)>,
    exposure_id: [u8; 16],
}

fn is_chunk(d: &[u8]) -> bool {
    d.len() > 24 && d[0] == 1 && (d[1] == 0x03 || d[1] == 0x04)
}

impl Middlebox {
    /// Called for every datagram about to enter the network; may alter it or add others.
    fn on_send(&mut self, now: Instant, from: Peer, to: Peer, d: &mut [u8], to_exposer: bool) {
        const HITS: u32 = 3;
        match self.attack {
            Attack::None => {}
            Attack::Truncated
                if !to_exposer && is_chunk(d) && self.hits < HITS && self.rng.gen_bool(0.2) =>
            {
                self.hits += 1;
                let cut = self.rng.gen_range(1..d.len());
                self.extra.push((now, from, to, d[..cut].to_vec()));
            }
            Attack::ForgedTag
                if !to_exposer
                    && d.len() > 40
                    && d[1] == 0x03
                    && self.hits < HITS
                    && self.rng.gen_bool(0.2) =>
            {
                self.hits += 1;
                let last = d.len() - 1 - self.rng.gen_range(0..16);
                d[last] ^= 0x5a;
            }
            Attack::ForgedProof
                if !to_exposer
                    && d.len() > 57
                    && d[1] == 0x04
                    && d[24] > 0
                    && d[23] & 1 == 0
                    && self.hits < HITS
                    && self.rng.gen_bool(0.2) =>
            {
                self.hits += 1;
                // The sibling nearest the leaf of an even chunk: a puller reads a
                // proof only up to the first node it already knows, so a flip higher
                // up (or beside an odd chunk whose leaf the previous proof vouched
                // for) may go unread, rightly, on a genuine chunk; this one is read
                // by every verifier.
                let at = 25 + self.rng.gen_range(0..32);
                d[at] ^= 0x01;
            }
            Attack::ReplayedChunks if !to_exposer && is_chunk(d) => {
                self.seen_chunks.push(d.to_vec());
                if self.hits < 12 && self.seen_chunks.len().is_multiple_of(5) {
                    self.hits += 1;
                    let pick = self.rng.gen_range(0..self.seen_chunks.len() - 1);
                    self.extra
                        .push((now, from, to, self.seen_chunks[pick].clone()));
                }
            }
            Attack::WrongVersion if to_exposer && d[1] == 0x01 && self.hits < 2 => {
                self.hits += 1;
                let mut bad = d.to_vec();
                bad[32..34].copy_from_slice(&2u16.to_be_bytes()); // Version_Min
                bad[34..36].copy_from_slice(&2u16.to_be_bytes()); // Version_Max
                self.extra.push((now, from, to, bad.clone()));
                let mut v2 = bad;
                v2[0] = 2; // and a version-2 header
                self.extra.push((now, from, to, v2));
            }
            Attack::WrongExposureId if to_exposer && self.hits < 2 => {
                self.hits += 1;
                let mut other = d.to_vec();
                other[4..20].copy_from_slice(&[0xee; 16]);
                self.extra.push((now, from, to, other));
            }
            Attack::OversizeNak if to_exposer && d[1] == 0x06 && self.hits < 1 => {
                self.hits += 1;
                let n: u16 = 1000;
                let mut nak = Vec::with_capacity(24 + 4 * usize::from(n));
                nak.extend_from_slice(&[1, 6]);
                nak.extend_from_slice(&(24 + 4 * n).to_be_bytes());
                nak.extend_from_slice(&self.exposure_id);
                nak.extend_from_slice(&n.to_be_bytes());
                nak.extend_from_slice(&[0, 0]);
                for i in 0..u32::from(n) {
                    nak.extend_from_slice(&(i % 40).to_be_bytes());
                }
                self.extra.push((now, from, to, nak));
            }
            _ => {}
        }
    }
}

fn puller_json(s: &PullerStats) -> Value {
    json!({
        "chunks_received": s.chunks_received,
        "duplicates": s.duplicates,
        "auth_failures": s.auth_failures,
        "merkle_failures": s.merkle_failures,
        "malformed": s.malformed,
        "foreign": s.foreign,
        "parity_received": s.parity_received,
        "fec_recoveries": s.fec_recoveries,
    })
}

/// The puller counters a sidecar records, from a replay.
pub fn puller_counters(s: &PullerStats) -> Value {
    puller_json(s)
}

/// The exposer counters a sidecar records.
pub fn exposer_counters(s: &rgtp_proto::ExposerStats) -> Value {
    json!({
        "datagrams_in": s.datagrams_in,
        "datagrams_out": s.datagrams_out,
        "manifests_sent": s.manifests_sent,
        "chunks_sent": s.chunks_sent,
        "parity_sent": s.parity_sent,
        "malformed": s.malformed,
        "unknown_exposure": s.unknown_exposure,
        "version_mismatch": s.version_mismatch,
        "bad_token": s.bad_token,
        "over_budget": s.over_budget,
        "over_limit": s.over_limit,
    })
}

/// Where the scenario loop writes what the recorded end sees.
/// The network of a scenario as the endpoints see it: the simulated network
/// with the middlebox on its path and a recorder at one end.
struct Tap {
    net: SimNet,
    mb: Middlebox,
    w: CaptureWriter<Vec<u8>>,
    vlan: Option<Vlan>,
    recorded_end: Peer,
    exposer: Peer,
}

impl Tap {
    fn record(&mut self, ts: Instant, from: Peer, to: Peer, d: &[u8]) {
        self.w
            .write_datagram(ts.total_micros(), from, to, self.vlan, d)
            .expect("in memory");
    }

    /// Sends the middlebox's packets from `first` on that are due by `now`;
    /// returns how many.
    fn flush_extra(&mut self, now: Instant, first: usize) -> usize {
        let mut sent = 0;
        let mut i = first;
        while i < self.mb.extra.len() {
            if self.mb.extra[i].0 <= now {
                let (_, from, to, d) = self.mb.extra.remove(i);
                if from == self.recorded_end {
                    self.record(now, from, to, &d);
                }
                self.net.send(now, from, to, &d);
                sent += 1;
            } else {
                i += 1;
            }
        }
        sent
    }
}

impl Network for Tap {
    fn send(&mut self, now: Instant, from: Peer, to: Peer, d: &[u8]) {
        let mut d = d.to_vec();
        let before = self.mb.extra.len();
        self.mb.on_send(now, from, to, &mut d, to == self.exposer);
        // What the middlebox sends now goes ahead of the packet that triggered it.
        self.flush_extra(now, before);
        if from == self.recorded_end {
            self.record(now, from, to, &d);
        }
        self.net.send(now, from, to, &d);
    }

    fn deliver_due(&mut self, now: Instant, out: &mut Vec<(Peer, Peer, Vec<u8>)>) -> usize {
        // Middlebox packets enter the network when due, unimpaired in content.
        let injected = self.flush_extra(now, 0);
        let first = out.len();
        let n = self.net.deliver_due(now, out);
        for (to, from, bytes) in &out[first..] {
            if *to == self.recorded_end {
                self.w
                    .write_datagram(now.total_micros(), *from, *to, self.vlan, bytes)
                    .expect("in memory");
            }
        }
        n + injected
    }

    fn next_delivery(&self) -> Option<Instant> {
        self.net
            .next_delivery()
            .into_iter()
            .chain(self.mb.extra.iter().map(|e| e.0))
            .min()
    }
}

/// Runs one scenario.
pub fn run(s: &Scenario) -> Run {
    let prepared = prepare(s);
    let data = dataset(s);
    let mut net = SimNet::new(s.down.clone(), s.seed);
    net.set_direction(s.puller, s.exposer, s.up.clone());
    net.set_direction(s.exposer, s.puller, s.down.clone());
    let start = Instant::from_micros(START_US);
    let mut cfg = PullerConfig::new(*prepared.exposure.id(), s.exposer, prepared.key.clone());
    cfg.want_proofs = s.proofs;
    cfg.use_fec = true;
    if let Some(w) = s.max_window {
        cfg.max_window = w;
        cfg.initial_window = cfg.initial_window.min(w);
    }
    if let Peer::Ethernet(_) = s.exposer {
        cfg.max_payload = 1500;
    }
    if s.quiet_puller {
        let never = Duration::from_secs(3600);
        cfg.rate_report_interval = never;
        cfg.token_refresh = never;
        cfg.min_rto = Duration::from_secs(60);
    }
    let app = PullApp::new(MemSink::default());
    let mut puller = Stepper::new(Puller::new(cfg, DynSuite, start), app, s.puller);
    let mut exposer = Stepper::new(prepared.exposer(), ServeApp, s.exposer).background();
    let mut tap = Tap {
        net,
        mb: Middlebox {
            attack: s.attack,
            rng: ChaCha8Rng::seed_from_u64(s.seed ^ 0x6d62),
            seen_chunks: Vec::new(),
            hits: 0,
            extra: Vec::new(),
            exposure_id: *prepared.exposure.id(),
        },
        w: CaptureWriter::new(Vec::new()).expect("in memory"),
        vlan: s.vlan,
        recorded_end: match s.side {
            Side::Puller => s.puller,
            Side::Exposer => s.exposer,
        },
        exposer: s.exposer,
    };
    let end = start + Duration::from_secs(120);
    let mut now = driver::simulate(&mut tap, &mut [&mut puller, &mut exposer], start, end);
    // Let the network drain what is still in flight to the recorded end (late duplicates).
    let tail_end = now + Duration::from_millis(50);
    let mut deliveries = Vec::new();
    while let Some(t) = tap.net.next_delivery().filter(|t| *t <= tail_end) {
        now = t.max(now);
        deliveries.clear();
        tap.net.deliver_due(now, &mut deliveries);
        for (to, from, bytes) in &deliveries {
            if *to == tap.recorded_end {
                tap.record(now, *from, *to, bytes);
            }
        }
    }
    let exposer = exposer.endpoint;
    let (puller, app, outcome) = puller.into_parts();
    let result = match outcome {
        Some(Ok(())) => Some(Ok(())),
        Some(Err(PullFailure::Protocol(e))) => Some(Err(e)),
        Some(Err(e)) => panic!("in-memory sink failed: {e}"),
        None => Some(Err(rgtp_proto::puller::PullError::Timeout)),
    };
    let sink = app.sink;
    let w = tap.w;
    let pcap = w.into_inner().expect("in memory");
    let stats = puller.stats();
    let verdict = match &result {
        Some(Ok(())) => "complete".to_string(),
        Some(Err(e)) => verdict_name(e).to_string(),
        None => "incomplete".to_string(),
    };
    if verdict == "complete" {
        assert_eq!(
            sink.data(),
            &data[..],
            "scenario {}: live pull differs",
            s.name
        );
    }
    let ticket = prepared.ticket_for(s.exposer);
    let expect = expectations(s, &prepared, &ticket, &pcap, &data);
    let sidecar = json!({
        "name": s.name,
        "description": s.description,
        "exercises": s.exercises,
        "ticket": ticket.to_string(),
        "token_secret": hex::encode(prepared.token_secret()),
        "exposer": rgtp_capture::frame::peer_text(s.exposer),
        "puller": rgtp_capture::frame::peer_text(s.puller),
        "recorded_at": s.side.name(),
        "source": {
            "generator": "chacha8",
            "seed": s.seed,
            "size": s.size,
            "sha256": hex::encode(Sha256::digest(&data)),
        },
        "suite": {
            "cipher": s.cipher.name(),
            "hash": s.hash.name(),
            "fec": s.fec.to_string(),
            "proofs": s.proofs,
            "chunk_size": s.chunk_size,
        },
        "live": {
            "verdict": verdict,
            "puller": puller_json(&stats),
            "exposer": exposer_counters(&exposer.stats()),
        },
        "expect": expect,
        "regenerate": "cargo run -p rgtp-cli --example regen-pcaps",
    });
    Run { pcap, sidecar }
}

/// Replays a fresh capture both ways and says what every later replay must give.
fn expectations(
    s: &Scenario,
    prepared: &Prepared,
    ticket: &rgtp::Ticket,
    pcap: &[u8],
    data: &[u8],
) -> Value {
    use rgtp::replay::{replay_expose, replay_pull, Pace, PullVerdict};
    let capture = rgtp_capture::read(pcap).expect("the recorder writes readable captures");
    let pull = replay_pull(&capture, ticket, None, Pace::Fast, |c| {
        c.want_proofs = s.proofs
    });
    let (verdict, output) = match &pull.verdict {
        PullVerdict::Complete(out) => {
            assert_eq!(
                out, data,
                "scenario {}: replayed pull differs from the dataset",
                s.name
            );
            (
                "complete".to_string(),
                Some(hex::encode(Sha256::digest(out))),
            )
        }
        PullVerdict::Failed(e) => (verdict_name(e).to_string(), None),
        PullVerdict::Io(e) => panic!("scenario {}: {e}", s.name),
        PullVerdict::Incomplete { .. } => ("incomplete".to_string(), None),
    };
    let exposer = if s.side == Side::Exposer {
        let x = replay_expose(&capture, prepared, s.exposer, Pace::Fast);
        assert!(
            x.matches(),
            "scenario {}: the rebuilt exposer does not answer as recorded: {:?}",
            s.name,
            x.first_difference()
        );
        json!({
            "answers": "identical",
            "requests_fed": x.fed,
            "answers_recorded": x.recorded.len(),
            "counters": exposer_counters(&x.stats),
        })
    } else {
        json!({
            "answers": "not-checked",
            "why": "recorded at the puller: requests lost on the way never reached the exposer",
        })
    };
    json!({
        "puller": {
            "verdict": verdict,
            "output_sha256": output,
            "datagrams_fed": pull.fed,
            "counters": puller_json(&pull.stats),
        },
        "exposer": exposer,
    })
}

/// How sidecars name a puller's outcome.
pub fn verdict_name(e: &rgtp_proto::puller::PullError) -> &'static str {
    use rgtp_proto::puller::PullError as E;
    match e {
        E::HandshakeTimeout => "handshake-timeout",
        E::BadManifest => "bad-manifest",
        E::Timeout => "timeout",
        E::AuthFailed => "auth-failed",
        E::MerkleFailed => "merkle-failed",
        _ => "failed",
    }
}

/// Writes every scenario's `NAME.pcap` and `NAME.json` into `dir`.
pub fn generate(dir: &Path) -> io::Result<Vec<String>> {
    std::fs::create_dir_all(dir)?;
    let mut names = Vec::new();
    for s in scenarios() {
        let r = run(&s);
        std::fs::write(dir.join(format!("{}.pcap", s.name)), &r.pcap)?;
        let mut text = serde_json::to_string_pretty(&r.sidecar).expect("json");
        text.push('\n');
        std::fs::write(dir.join(format!("{}.json", s.name)), text)?;
        names.push(s.name.to_string());
    }
    Ok(names)
}
