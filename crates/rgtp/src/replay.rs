//! Replay: feed a recorded capture into a fresh sans-IO core.
//!
//! - [`replay_pull`] hands a fresh [`Puller`] holding the ticket every datagram
//!   the exposer sent in the capture, in order. A complete recording rebuilds
//!   the file byte for byte; a hostile one shows what our puller makes of it.
//! - [`replay_expose`] hands an [`Exposer`](rgtp_proto::Exposer) rebuilt from the same file, key,
//!   Exposure_ID and token secret every datagram sent to the recorded exposer,
//!   and compares what it answers with what was recorded, byte for byte. The
//!   token secret is not in the ticket: [`TokenSecret`] says where it comes from.
//!
//! The core's clock is the capture's timestamps in both [`Pace`]s: replaying
//! as recorded only sleeps between records so the replay also takes the
//! recorded (or scaled) wall time; the result is the same either way.

use std::time::Duration;

use rgtp_capture::{Capture, Datagram, Record};
use rgtp_proto::puller::PullError;
use rgtp_proto::{ExposerStats, Instant, Peer, Puller, PullerConfig, PullerStats};

use redgiant_base::driver::Stepper;

use crate::builder::Prepared;
use crate::driver::{PullApp, PullFailure, ServeApp};
use crate::sink::MemSink;
use crate::suite::DynSuite;
use crate::Ticket;

/// How fast to replay.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Pace {
    /// No sleeping: timestamps only drive the core's clock.
    Fast,
    /// Sleep so records are fed at their recorded spacing, divided by `speed`.
    AsRecorded {
        /// 1.0: real time; 2.0: twice as fast.
        speed: f64,
    },
}

struct Pacer {
    pace: Pace,
    first_ts: Option<u64>,
    start: std::time::Instant,
}

impl Pacer {
    fn new(pace: Pace) -> Self {
        Pacer {
            pace,
            first_ts: None,
            start: std::time::Instant::now(),
        }
    }

    fn wait_for(&mut self, ts_us: u64) {
        let Pace::AsRecorded { speed } = self.pace else {
            return;
        };
        let first = *self.first_ts.get_or_insert(ts_us);
        let offset = ts_us.saturating_sub(first) as f64 / speed.max(1e-6);
        let due = Duration::from_micros(offset.min(1e15) as u64);
        if let Some(left) = due.checked_sub(self.start.elapsed()) {
            std::thread::sleep(left);
        }
    }
}

/// The instant a record was captured at (never before `floor`: captures can
/// have timestamps out of order).
fn instant(r: &Record, floor: Instant) -> Instant {
    Instant::from_micros(r.ts_us).max(floor)
}

/// The exposer of a capture: the ticket's address when it names one, else
/// the destination of the first Pull_Request seen.
pub fn find_exposer(capture: &Capture, ticket: Option<&Ticket>) -> Option<Peer> {
    if let Some(p) = ticket.and_then(|t| t.peer().ok()) {
        return Some(p);
    }
    capture.datagrams().find_map(|(_, d)| {
        (d.payload.len() >= 2 && d.payload[0] == rgtp_wire::VERSION && d.payload[1] == 0x01)
            .then_some(d.dst)
    })
}

/// The same peer, with IPv4-mapped IPv6 addresses written as IPv4.
fn canonical(p: Peer) -> Peer {
    match p {
        Peer::Ip(a) => Peer::Ip(std::net::SocketAddr::new(a.ip().to_canonical(), a.port())),
        other => other,
    }
}

/// How a replayed pull ended.
#[derive(Debug)]
pub enum PullVerdict {
    /// Every chunk arrived and the whole verified: the recovered bytes.
    Complete(Vec<u8>),
    /// The puller gave up (what a live pull would have reported).
    Failed(PullError),
    /// Holding the output in memory failed.
    Io(String),
    /// The capture ended before the transfer did.
    Incomplete {
        /// Chunks verified.
        received: u64,
        /// Chunks in the exposure (0 if no Manifest was seen).
        total: u64,
    },
}

/// What [`replay_pull`] found.
#[derive(Debug)]
pub struct PullReplay {
    /// The outcome.
    pub verdict: PullVerdict,
    /// The puller's counters (malformed, auth failures, duplicates, …).
    pub stats: PullerStats,
    /// Datagrams fed to the puller.
    pub fed: usize,
    /// The puller whose traffic was replayed (capture address).
    pub puller: Option<Peer>,
}

/// Feeds the capture's exposer→puller datagrams into a fresh puller holding
/// `ticket`. `exposer` defaults to [`find_exposer`]; only datagrams from it to
/// the first puller it answered are fed. `tweak` may adjust the puller's
/// configuration (its timeouts are lifted first: a replay judges content,
/// not timing).
pub fn replay_pull(
    capture: &Capture,
    ticket: &Ticket,
    exposer: Option<Peer>,
    pace: Pace,
    tweak: impl FnOnce(&mut PullerConfig),
) -> PullReplay {
    let exposer = exposer
        .or_else(|| find_exposer(capture, Some(ticket)))
        .map(canonical);
    let from_exposer = |d: &Datagram| Some(canonical(d.src)) == exposer;
    let puller_peer = capture
        .datagrams()
        .find(|(_, d)| from_exposer(d))
        .map(|(_, d)| canonical(d.dst));
    let start = capture
        .records
        .first()
        .map_or(Instant::from_micros(0), |r| Instant::from_micros(r.ts_us));
    let mut cfg = PullerConfig::new(
        ticket.exposure_id,
        exposer.unwrap_or(Peer::Mem(u32::MAX)),
        ticket.key.clone(),
    );
    cfg.expected_cipher = ticket.cipher;
    cfg.expected_hash = ticket.hash;
    cfg.handshake_timeout = Duration::from_secs(365 * 24 * 3600);
    cfg.idle_timeout = Duration::from_secs(365 * 24 * 3600);
    tweak(&mut cfg);
    let app = PullApp::new(MemSink::default());
    let local = puller_peer.unwrap_or(Peer::Mem(0));
    let mut st = Stepper::new(Puller::new(cfg, DynSuite, start), app, local);
    let mut pacer = Pacer::new(pace);
    let mut now = start;
    let mut fed = 0;
    // What the puller sends goes nowhere: the capture holds the answers.
    let discard = &mut |_: Peer, _: &[u8]| {};
    st.transmit(now, discard);
    st.events();
    for (r, d) in capture.datagrams() {
        if st.is_finished() {
            break;
        }
        if !from_exposer(d) || Some(canonical(d.dst)) != puller_peer {
            continue;
        }
        pacer.wait_for(r.ts_us);
        now = instant(r, now);
        // Every timer due by now fires at now, as a live driver's would: stepping
        // through each deadline would cost one turn per periodic timer across
        // any gap in the capture's timestamps (years, in a hostile file).
        if st.fire_timers(now) {
            st.transmit(now, discard);
            st.events();
            if st.is_finished() {
                break;
            }
        }
        let from = exposer.unwrap_or(d.src);
        for packet in rgtp_wire::captured_packets(&d.payload) {
            let mut bytes = packet.to_vec();
            fed += 1;
            st.input(now, from, &mut bytes);
            st.transmit(now, discard);
            st.events();
        }
    }
    let (puller, app, outcome) = st.into_parts();
    let stats = puller.stats();
    let verdict = match outcome {
        Some(Ok(())) => PullVerdict::Complete(app.sink.to_vec()),
        Some(Err(PullFailure::Protocol(e))) => PullVerdict::Failed(e),
        Some(Err(e)) => PullVerdict::Io(e.to_string()),
        // The capture ended with AEAD failures and nothing accepted: the evidence a
        // live puller waits its idle timeout for (spec §8.11).
        None if stats.chunks_received == 0
            && puller.stall_error() == Some(rgtp_proto::puller::PullError::AuthFailed) =>
        {
            PullVerdict::Failed(rgtp_proto::puller::PullError::AuthFailed)
        }
        None => PullVerdict::Incomplete {
            received: stats.chunks_received,
            total: puller.manifest().map_or(0, |m| u64::from(m.chunk_count)),
        },
    };
    PullReplay {
        verdict,
        stats,
        fed,
        puller: puller_peer,
    }
}

/// One datagram the exposer sent, recorded or replayed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Sent {
    /// Destination.
    pub to: Peer,
    /// Bytes.
    pub bytes: Vec<u8>,
}

/// What [`replay_expose`] found.
#[derive(Debug)]
pub struct ExposeReplay {
    /// Datagrams fed to the exposer.
    pub fed: usize,
    /// What the recorded exposer sent, in order.
    pub recorded: Vec<Sent>,
    /// What the rebuilt exposer sent, in order.
    pub produced: Vec<Sent>,
    /// The rebuilt exposer's counters.
    pub stats: ExposerStats,
}

impl ExposeReplay {
    /// True when the rebuilt exposer answered exactly as recorded.
    pub fn matches(&self) -> bool {
        self.recorded == self.produced
    }

    /// Where the answers first differ, in words.
    pub fn first_difference(&self) -> Option<String> {
        let n = self.recorded.len().max(self.produced.len());
        (0..n).find_map(|i| match (self.recorded.get(i), self.produced.get(i)) {
            (Some(a), Some(b)) if a == b => None,
            (Some(a), Some(b)) if a.to != b.to => Some(format!(
                "answer {i}: recorded to {:?}, replayed to {:?}",
                a.to, b.to
            )),
            (Some(a), Some(b)) => {
                let at = a
                    .bytes
                    .iter()
                    .zip(&b.bytes)
                    .position(|(x, y)| x != y)
                    .unwrap_or(a.bytes.len().min(b.bytes.len()));
                Some(format!(
                    "answer {i}: {} recorded bytes vs {} replayed, first difference at byte {at}",
                    a.bytes.len(),
                    b.bytes.len()
                ))
            }
            (Some(_), None) => Some(format!(
                "answer {i} and {} more were recorded but not replayed",
                self.recorded.len() - i - 1
            )),
            (None, Some(_)) => Some(format!(
                "answer {i} and {} more were replayed but not recorded",
                self.produced.len() - i - 1
            )),
            (None, None) => None,
        })
    }
}

/// Feeds every datagram the capture shows arriving at `exposer` into a fresh
/// exposer from `prepared` (rebuilt from the same file, key and Exposure_ID),
/// and collects what it answers next to what the recorded exposer sent.
pub fn replay_expose(
    capture: &Capture,
    prepared: &Prepared,
    exposer: Peer,
    pace: Pace,
) -> ExposeReplay {
    let exposer_peer = canonical(exposer);
    let mut x = Stepper::new(prepared.exposer(), ServeApp, exposer_peer);
    let mut pacer = Pacer::new(pace);
    let mut now = Instant::from_micros(0);
    let mut fed = 0;
    let mut recorded = Vec::new();
    let mut produced = Vec::new();
    for (r, d) in capture.datagrams() {
        if canonical(d.src) == exposer_peer {
            recorded.extend(rgtp_wire::captured_packets(&d.payload).map(|p| Sent {
                to: canonical(d.dst),
                bytes: p.to_vec(),
            }));
            continue;
        }
        if canonical(d.dst) != exposer_peer {
            continue;
        }
        pacer.wait_for(r.ts_us);
        now = instant(r, now);
        fed += 1;
        x.input(now, canonical(d.src), &mut d.payload.clone());
        x.transmit(now, &mut |to, dg| {
            produced.push(Sent {
                to: canonical(to),
                bytes: dg.to_vec(),
            })
        });
    }
    let stats = x.endpoint.stats();
    ExposeReplay {
        fed,
        recorded,
        produced,
        stats,
    }
}

/// The first Manifest of `exposure_id` in the capture.
pub fn find_manifest(
    capture: &Capture,
    exposure_id: &rgtp_wire::ExposureId,
) -> Option<rgtp_wire::Manifest> {
    capture
        .datagrams()
        .find_map(|(_, d)| match rgtp_wire::Repr::parse(&d.payload, 65_535) {
            Ok(rgtp_wire::Repr::Manifest(m)) if &m.exposure_id == exposure_id => Some(m),
            _ => None,
        })
}

/// The recorded exposer's address-validation token secret (spec §5.3), which
/// no ticket carries.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TokenSecret {
    /// Kept beside the recording (`rgtp expose --record FILE` writes `FILE.secret`).
    Given([u8; 32]),
    /// The recorded exposer derived it from the key and Exposure_ID
    /// (`dangerous_token_secret_from_key`, and the canonical corpus).
    FromKey,
    /// Not known: the rebuilt exposer draws its own, so answers to requests
    /// carrying a token, and Manifests carrying one, will differ.
    Unknown,
}

/// True if the capture holds an address-validation token of `exposure_id`
/// (a Manifest or a NAK carrying one): replaying its exposer needs the secret.
pub fn holds_tokens(capture: &Capture, exposure_id: &rgtp_wire::ExposureId) -> bool {
    capture
        .datagrams()
        .any(|(_, d)| match rgtp_wire::Repr::parse(&d.payload, 65_535) {
            Ok(rgtp_wire::Repr::Manifest(m)) => &m.exposure_id == exposure_id && m.token.is_some(),
            Ok(rgtp_wire::Repr::Nak(n)) => &n.exposure_id == exposure_id && n.token.is_some(),
            _ => false,
        })
}

/// Rebuilds the recorded exposer from the file it exposed: the key and
/// Exposure_ID from the ticket, the suite, chunk size and FEC from the
/// Manifest in the capture, the token secret as given. Checks the Merkle root
/// against the Manifest's, so a wrong file is caught before any replay.
pub fn rebuild_exposer(
    capture: &Capture,
    ticket: &Ticket,
    data: &[u8],
    max_payload: usize,
    secret: TokenSecret,
) -> Result<Prepared, String> {
    let m = find_manifest(capture, &ticket.exposure_id).ok_or_else(|| {
        "the capture holds no Manifest for the ticket's Exposure_ID: nothing says how the exposure was built".to_string()
    })?;
    let suite = rgtp_proto::SuiteId::from_manifest(&m)
        .map_err(|e| format!("the recorded Manifest announces no usable suite: {e:?}"))?;
    let fec = match suite.fec.scheme {
        rgtp_proto::FecScheme::None => crate::FecSpec::None,
        rgtp_proto::FecScheme::ReedSolomon => crate::FecSpec::ReedSolomon {
            n: suite.fec.n,
            k: suite.fec.k,
        },
        rgtp_proto::FecScheme::RaptorQ => crate::FecSpec::RaptorQ {
            n: suite.fec.n,
            k: suite.fec.k,
        },
    };
    let config = rgtp_proto::ExposerConfig {
        max_segments: 16,
        max_payload,
        ..Default::default()
    };
    let mut builder = crate::ExposerBuilder::new()
        .with_cipher(suite.cipher)
        .with_hash(suite.hash)
        .with_fec(fec)
        .with_proofs(suite.proofs)
        .with_chunk_size(m.chunk_size)
        .with_key(ticket.key.clone())
        .with_exposure_id(ticket.exposure_id)
        .with_config(config);
    builder = match secret {
        TokenSecret::Given(s) => builder.with_token_secret(s),
        TokenSecret::FromKey => builder.dangerous_token_secret_from_key(),
        TokenSecret::Unknown => builder,
    };
    // The recorded Manifest says which key sealed the chunks. A raw key may seal
    // this same data again (identical ciphertext), but nothing else.
    if suite.key_mode == rgtp_proto::KeyMode::Raw {
        builder = builder.dangerous_raw_key();
    }
    let prepared = builder.expose(data).map_err(|e| e.to_string())?;
    let built = prepared.exposure.manifest();
    if built.merkle_root != m.merkle_root || built.total_size != m.total_size {
        return Err(format!(
            "this file is not the one recorded: its Merkle root {} (size {}) differs from the Manifest's {} (size {})",
            hex::encode(&built.merkle_root[..8]),
            built.total_size,
            hex::encode(&m.merkle_root[..8]),
            m.total_size
        ));
    }
    Ok(prepared)
}
