//! Bulk transfers handed from a flow to RGTP (feature `flow`).
//!
//! A flow carries messages; a large file is better moved by RGTP, which
//! verifies every chunk against a Merkle root and resumes. The two meet
//! here:
//!
//! 1. [`send_file`] seals the file as an RGTP exposure under a fresh random
//!    key, serves it on a new UDP port of the address its flow leaves from,
//!    and writes one SDU on the flow: an [`Offer`] with the ticket, the
//!    file's name and its size ([`wire`]).
//! 2. [`recv_file`] reads the offer, refuses it if it is malformed, names
//!    no plain file or declares more than [`RecvOptions::max_size`], then
//!    pulls from the flow's peer (its IP, the ticket's port: a ticket never
//!    sends the receiver to a third host) into the destination directory,
//!    every chunk verified, the partial file and its resume record kept as
//!    `rgtp pull` keeps them ([`crate::files::pull_file`]). It answers with
//!    one SDU, an [`Outcome`]: ok with the Merkle root, or why not.
//! 3. The sender stops serving when the outcome arrives, when the flow goes
//!    down, or when nothing was served for [`SendOptions::idle_timeout`].
//!    The receiver stops pulling when the flow goes down.
//!
//! The flow itself only carries the two small messages, so any QoS that
//! delivers them will do; a reliable one (`loss == 0`) is the one to use.
//! Both calls report bytes done and total through a [`BulkProgress`].

pub mod wire;

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr, UdpSocket};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::{Duration, Instant as StdInstant};

use redgiant_flow::net::{Flow, FlowNetError};
use rgtp_link::udp::UdpLink;
use rgtp_link::Link;
use rgtp_proto::cc::Controller;
use rgtp_proto::puller::PullError;
use rgtp_proto::{CipherId, HashId, Peer, PullerConfig, PullerStats};
use rgtp_wire::Hash;

pub use self::wire::{check_name, MessageError, Offer, Outcome};
use crate::driver::{self, Clock};
use crate::files::{pull_failure, pull_file, PullFileError, PullJob, PullProgress, Pulled};
use crate::{Backend, ExposerBuilder, Ticket};

/// What a hand-off reports while it runs.
pub trait BulkProgress: Sync {
    /// The offer, once sent (sender) or accepted (receiver).
    fn offer(&self, _offer: &Offer) {}

    /// `done` of `total` bytes. The receiver counts bytes verified; the
    /// sender counts chunk bytes served (resends included, capped at the
    /// size) and reports `total` of `total` once the receiver confirmed.
    fn bytes(&self, done: u64, total: u64);
}

impl<F: Fn(u64, u64) + Sync> BulkProgress for F {
    fn bytes(&self, done: u64, total: u64) {
        self(done, total)
    }
}

/// A [`BulkProgress`] that ignores everything.
#[derive(Debug, Clone, Copy, Default)]
pub struct Quiet;

impl BulkProgress for Quiet {
    fn bytes(&self, _: u64, _: u64) {}
}

/// Why a hand-off failed; the text names the problem and, where there is
/// one, the fix.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum BulkError {
    /// The peer's message was malformed or refused by a check.
    #[error("bad message from the peer: {0}")]
    Message(#[from] MessageError),
    /// The offer declares more bytes than this receiver takes.
    #[error("the offer of {name:?} declares {size} bytes, more than the {max} this receiver takes (raise its limit: `rgtp flow recv-file --max-size`, RecvOptions::max_size)")]
    TooLarge {
        /// The file's name.
        name: String,
        /// The size declared.
        size: u64,
        /// The receiver's limit.
        max: u64,
    },
    /// The offer's ticket does not parse or names no UDP port.
    #[error("the offer's ticket is unusable: {0}")]
    Ticket(String),
    /// The flow failed or ended before the hand-off did.
    #[error("the flow failed: {0}")]
    Flow(#[from] FlowNetError),
    /// The peer went away (deallocated the flow or stayed silent past its QoS timeout).
    #[error("the peer went away before the transfer completed{}", kept.as_deref().map(|k| format!("; {k}")).unwrap_or_default())]
    PeerGone {
        /// What was kept for a later run, if anything.
        kept: Option<String>,
    },
    /// Nothing arrived in time.
    #[error("timed out waiting for {what} after {after:?}")]
    TimedOut {
        /// What was waited for.
        what: &'static str,
        /// How long.
        after: Duration,
    },
    /// The receiver refused the offer.
    #[error("the receiver refused the file: {0}")]
    Refused(String),
    /// The receiver's pull failed.
    #[error("the receiver's pull failed: {0}")]
    PullFailed(String),
    /// The receiver verified the file against another root than the one sealed.
    #[error("the receiver reports Merkle root {got} but the file was sealed with {sealed}")]
    RootMismatch {
        /// The root sealed.
        sealed: String,
        /// The root reported.
        got: String,
    },
    /// A file, socket or sealing step failed here.
    #[error("{0}")]
    Local(String),
}

/// How [`send_file`] seals and serves.
#[derive(Debug, Clone)]
pub struct SendOptions {
    /// The name to offer the file under (default: its last path component).
    pub name: Option<String>,
    /// AEAD.
    pub cipher: CipherId,
    /// Merkle hash.
    pub hash: HashId,
    /// Plaintext bytes per chunk.
    pub chunk_size: u32,
    /// Give up when nothing was served for this long.
    pub idle_timeout: Duration,
}

impl Default for SendOptions {
    /// AES-256-GCM, SHA-256, 1200-byte chunks, 30 s idle.
    fn default() -> Self {
        SendOptions {
            name: None,
            cipher: CipherId::Aes256Gcm,
            hash: HashId::Sha256,
            chunk_size: 1200,
            idle_timeout: Duration::from_secs(30),
        }
    }
}

/// How [`recv_file`] takes an offer.
#[derive(Debug, Clone)]
pub struct RecvOptions {
    /// The largest file taken, in bytes.
    pub max_size: u64,
    /// How long to wait for the offer.
    pub offer_timeout: Duration,
    /// Time for the sender's first answer to the pull.
    pub connect_timeout: Duration,
    /// Time without progress before the pull gives up.
    pub idle_timeout: Duration,
    /// Ignore what an earlier run left and start over.
    pub restart: bool,
    /// Tries after the first while the sender is silent.
    pub retries: u32,
}

impl Default for RecvOptions {
    /// 64 GiB at most, 60 s for the offer, 5 s to connect, 10 s idle, resume,
    /// no retries.
    fn default() -> Self {
        RecvOptions {
            max_size: 64 << 30,
            offer_timeout: Duration::from_secs(60),
            connect_timeout: Duration::from_secs(5),
            idle_timeout: Duration::from_secs(10),
            restart: false,
            retries: 0,
        }
    }
}

/// A file sent and confirmed.
#[derive(Debug, Clone)]
pub struct Sent {
    /// The name it was offered under.
    pub name: String,
    /// Its bytes.
    pub size: u64,
    /// The Merkle root both ends agree on.
    pub root: Hash,
    /// Where it was served.
    pub served_from: SocketAddr,
    /// Wall time from the offer to the confirmation.
    pub seconds: f64,
}

/// A file received.
#[derive(Debug, Clone)]
pub struct Received {
    /// Where it was written.
    pub path: PathBuf,
    /// Its bytes.
    pub size: u64,
    /// The Merkle root every chunk was verified against.
    pub root: Hash,
    /// Where it was pulled from.
    pub source: SocketAddr,
    /// The puller's counters.
    pub stats: PullerStats,
    /// Wall time of the pull.
    pub seconds: f64,
}

/// How long a reading loop waits at a time before it looks at its flags.
const POLL: Duration = Duration::from_millis(100);
/// How often the receiver's watcher looks whether the pull ended.
const WATCH: Duration = Duration::from_millis(10);
/// How long an outcome may take to be acknowledged.
const FLUSH: Duration = Duration::from_secs(5);

/// The IP this host sends from towards `peer` (the flow's own route).
fn leaving_ip(peer: SocketAddr) -> Result<IpAddr, BulkError> {
    let any: SocketAddr = match peer {
        SocketAddr::V4(_) => (Ipv4Addr::UNSPECIFIED, 0).into(),
        SocketAddr::V6(_) => (Ipv6Addr::UNSPECIFIED, 0).into(),
    };
    let s = UdpSocket::bind(any)
        .and_then(|s| s.connect(peer).map(|()| s))
        .and_then(|s| s.local_addr())
        .map_err(|e| BulkError::Local(format!("no route to the flow's peer {peer}: {e}")))?;
    Ok(s.ip())
}

/// Sends the file at `path` over `flow` (module docs): returns once the
/// receiver confirmed it with the same Merkle root.
pub fn send_file(
    flow: &Flow,
    path: &Path,
    opts: &SendOptions,
    progress: &dyn BulkProgress,
) -> Result<Sent, BulkError> {
    let name = match &opts.name {
        Some(n) => n.clone(),
        None => path
            .file_name()
            .and_then(|n| n.to_str())
            .ok_or_else(|| {
                BulkError::Local(format!(
                    "{} has no file name in UTF-8; give one",
                    path.display()
                ))
            })?
            .to_owned(),
    };
    check_name(&name).map_err(|e| BulkError::Local(e.to_string()))?;
    let ip = leaving_ip(flow.peer())?;
    let mut link = UdpLink::bind(SocketAddr::new(ip, 0))
        .map_err(|e| BulkError::Local(format!("cannot bind a UDP port on {ip}: {e}")))?;
    let caps = link.capabilities();
    let config = rgtp_proto::ExposerConfig::for_link(&caps);
    let prepared = {
        let map = map_file(path)?;
        ExposerBuilder::new()
            .with_cipher((opts.cipher, Backend::preferred()))
            .with_hash(opts.hash)
            .with_chunk_size(opts.chunk_size)
            .with_config(config)
            .expose(map.as_deref().unwrap_or(&[]))
            .map_err(|e| BulkError::Local(format!("sealing {}: {e}", path.display())))?
    };
    let manifest = prepared.exposure.manifest();
    let (size, sealed) = (manifest.total_size, manifest.merkle_root);
    let served_from = link.local_addr();
    let offer = Offer {
        size,
        name: name.clone(),
        ticket: prepared.ticket(served_from).to_string(),
    };
    let bytes = offer.to_bytes()?;
    let started = StdInstant::now();
    flow.write(&bytes)?;
    progress.offer(&offer);
    progress.bytes(0, size);

    let stop = AtomicBool::new(false);
    let chunks_sent = AtomicU64::new(0);
    let chunk = u64::from(opts.chunk_size);
    let outcome = std::thread::scope(|s| {
        let server = s.spawn(|| {
            let clock = Clock::new();
            let mut exposer = prepared.exposer();
            driver::serve(&mut exposer, &mut link, &clock, &stop, |e| {
                chunks_sent.store(e.stats().chunks_sent, Ordering::Relaxed)
            })
        });
        let outcome = wait_outcome(flow, opts, &server, &chunks_sent, |n| {
            progress.bytes((n * chunk).min(size), size)
        });
        stop.store(true, Ordering::Relaxed);
        match server.join() {
            Ok(Err(e)) if outcome.is_ok() => Err(BulkError::Local(format!(
                "serving on {served_from} failed: {e}"
            ))),
            _ => outcome,
        }
    })?;
    match outcome {
        Outcome::Ok { root } if root == sealed => {
            progress.bytes(size, size);
            Ok(Sent {
                name,
                size,
                root,
                served_from,
                seconds: started.elapsed().as_secs_f64(),
            })
        }
        Outcome::Ok { root } => Err(BulkError::RootMismatch {
            sealed: hex::encode(sealed),
            got: hex::encode(root),
        }),
        Outcome::Refused(why) => Err(BulkError::Refused(why)),
        Outcome::Failed(why) => Err(BulkError::PullFailed(why)),
    }
}

/// Waits for the receiver's outcome while the server runs.
fn wait_outcome<T>(
    flow: &Flow,
    opts: &SendOptions,
    server: &std::thread::ScopedJoinHandle<'_, T>,
    chunks_sent: &AtomicU64,
    report: impl Fn(u64),
) -> Result<Outcome, BulkError> {
    let mut last = (0u64, StdInstant::now());
    loop {
        match flow.read(Some(POLL)) {
            Ok(sdu) => return Ok(Outcome::parse(&sdu)?),
            Err(FlowNetError::TimedOut { .. }) => {}
            Err(FlowNetError::PeerGone) => return Err(BulkError::PeerGone { kept: None }),
            Err(e) => return Err(e.into()),
        }
        if server.is_finished() {
            return Err(BulkError::Local("the RGTP server stopped early".into()));
        }
        let n = chunks_sent.load(Ordering::Relaxed);
        if n != last.0 {
            last = (n, StdInstant::now());
            report(n);
        } else if last.1.elapsed() >= opts.idle_timeout {
            return Err(BulkError::TimedOut {
                what: "the receiver to pull or answer",
                after: opts.idle_timeout,
            });
        }
    }
}

/// The file's bytes, mapped (empty files need no map).
fn map_file(path: &Path) -> Result<Option<memmap2::Mmap>, BulkError> {
    let f = std::fs::File::open(path)
        .map_err(|e| BulkError::Local(format!("cannot open {}: {e}", path.display())))?;
    let meta = f
        .metadata()
        .map_err(|e| BulkError::Local(format!("{}: {e}", path.display())))?;
    if !meta.is_file() {
        return Err(BulkError::Local(format!(
            "{} is not a regular file",
            path.display()
        )));
    }
    if meta.len() == 0 {
        return Ok(None);
    }
    // SAFETY: the map is read once, while sealing; a concurrent writer could change what
    // is sealed but cannot make us read out of bounds.
    unsafe { memmap2::Mmap::map(&f) }
        .map(Some)
        .map_err(|e| BulkError::Local(format!("cannot map {}: {e}", path.display())))
}

/// Answers `flow` with `outcome`, waiting a little for it to be acknowledged.
fn answer(flow: &Flow, outcome: &Outcome) {
    if flow.write(&outcome.to_bytes()).is_ok() {
        let _ = flow.flush(FLUSH);
    }
}

/// Refuses the offer: tells the sender, then returns `e`.
fn refuse(flow: &Flow, e: BulkError) -> BulkError {
    answer(flow, &Outcome::Refused(e.to_string()));
    e
}

/// Receives one file over `flow` into `dest_dir` (module docs).
pub fn recv_file(
    flow: &Flow,
    dest_dir: &Path,
    opts: &RecvOptions,
    progress: &dyn BulkProgress,
) -> Result<Received, BulkError> {
    let sdu = match flow.read(Some(opts.offer_timeout)) {
        Ok(sdu) => sdu,
        Err(FlowNetError::TimedOut { .. }) => {
            return Err(BulkError::TimedOut {
                what: "the sender's offer",
                after: opts.offer_timeout,
            })
        }
        Err(FlowNetError::PeerGone) => return Err(BulkError::PeerGone { kept: None }),
        Err(e) => return Err(e.into()),
    };
    let offer = Offer::parse(&sdu).map_err(|e| refuse(flow, e.into()))?;
    if offer.size > opts.max_size {
        return Err(refuse(
            flow,
            BulkError::TooLarge {
                name: offer.name,
                size: offer.size,
                max: opts.max_size,
            },
        ));
    }
    let ticket: Ticket = offer
        .ticket
        .parse()
        .map_err(|e| refuse(flow, BulkError::Ticket(format!("{e}"))))?;
    if ticket.mac.is_some() || ticket.port == 0 {
        return Err(refuse(
            flow,
            BulkError::Ticket("it names no UDP port".into()),
        ));
    }
    let source = SocketAddr::new(flow.peer().ip(), ticket.port);
    std::fs::create_dir_all(dest_dir).map_err(|e| {
        refuse(
            flow,
            BulkError::Local(format!("cannot create {}: {e}", dest_dir.display())),
        )
    })?;
    let out = dest_dir.join(&offer.name);
    let any: SocketAddr = match source {
        SocketAddr::V4(_) => (Ipv4Addr::UNSPECIFIED, 0).into(),
        SocketAddr::V6(_) => (Ipv6Addr::UNSPECIFIED, 0).into(),
    };
    let mut link = UdpLink::bind(any).map_err(|e| {
        refuse(
            flow,
            BulkError::Local(format!("cannot open a UDP socket: {e}")),
        )
    })?;
    progress.offer(&offer);

    let mut cfg = PullerConfig::new(ticket.exposure_id, Peer::Ip(source), ticket.key.clone());
    cfg.expected_cipher = ticket.cipher;
    cfg.expected_hash = ticket.hash;
    cfg.deferred_root = true;
    cfg.max_payload = cfg.max_payload.min(link.capabilities().mtu);
    cfg.handshake_timeout = opts.connect_timeout;
    cfg.idle_timeout = opts.idle_timeout;
    cfg.congestion = Controller::DEFAULT;
    // An exposure larger than the offer says is refused before any chunk.
    cfg.max_total_size = offer.size;
    let job = PullJob {
        cfg,
        backend: Backend::preferred(),
        restart: opts.restart,
        retries: opts.retries,
        expect_root: None,
        sources: Vec::new(),
    };

    let stop = AtomicBool::new(false);
    let (done, gone) = (AtomicBool::new(false), AtomicBool::new(false));
    let clock = Clock::new();
    let report = Report { to: progress };
    let started = StdInstant::now();
    let pulled = std::thread::scope(|s| {
        // Watches the flow: the pull stops as soon as the sender leaves.
        s.spawn(|| {
            while !done.load(Ordering::Relaxed) {
                match flow.read(Some(WATCH)) {
                    Err(FlowNetError::TimedOut { .. } | FlowNetError::WouldBlock) => {}
                    // Nothing else is sent during a pull: ignore it.
                    Ok(_) => {}
                    Err(_) => {
                        gone.store(true, Ordering::Relaxed);
                        stop.store(true, Ordering::Relaxed);
                        return;
                    }
                }
            }
        });
        let r = pull_file(&job, &out, &mut link, &clock, &report, &stop);
        // The answer goes out before the watcher is joined.
        let r = conclude(flow, r, &offer, &ticket, &out, gone.load(Ordering::Relaxed));
        done.store(true, Ordering::Relaxed);
        r
    })?;
    let m = pulled.manifest;
    progress.bytes(m.total_size, m.total_size);
    Ok(Received {
        path: out,
        size: m.total_size,
        root: m.merkle_root,
        source,
        stats: pulled.stats,
        seconds: started.elapsed().as_secs_f64(),
    })
}

/// Answers the sender with how the pull ended, and says the same to the caller.
fn conclude(
    flow: &Flow,
    result: Result<Pulled, PullFileError>,
    offer: &Offer,
    ticket: &Ticket,
    out: &Path,
    gone: bool,
) -> Result<Pulled, BulkError> {
    let pulled = match result {
        Ok(p) => p,
        Err(PullFileError::Open(m)) => {
            answer(flow, &Outcome::Failed(m.clone()));
            return Err(BulkError::Local(m));
        }
        Err(PullFileError::Pull(n)) if gone => return Err(BulkError::PeerGone { kept: n.kept }),
        Err(PullFileError::Pull(n)) => {
            let mut m = pull_failure(n.failure, ticket).message;
            if let Some(k) = n.kept {
                m = format!("{m}; {k}");
            }
            answer(flow, &Outcome::Failed(m.clone()));
            return Err(BulkError::PullFailed(m));
        }
    };
    let m = &pulled.manifest;
    if m.total_size != offer.size {
        let _ = std::fs::remove_file(out);
        let why = format!(
            "the offer declared {} bytes but the exposure holds {}; nothing was kept",
            offer.size, m.total_size
        );
        answer(flow, &Outcome::Failed(why.clone()));
        return Err(BulkError::PullFailed(why));
    }
    answer(
        flow,
        &Outcome::Ok {
            root: m.merkle_root,
        },
    );
    Ok(pulled)
}

/// The pull's progress, as bytes.
struct Report<'a> {
    to: &'a dyn BulkProgress,
}

impl PullProgress for Report<'_> {
    fn update(&self, done: u64, total: u64, _: &PullerStats) {
        self.to.bytes(done, total);
    }

    fn retrying(&self, _: &PullError, _: u32, _: u32, _: Duration) {}
}
