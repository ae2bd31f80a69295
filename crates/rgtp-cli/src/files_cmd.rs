//! `rgtp send` and `rgtp get`: files and directory trees as one exposure set.
//!
//! `send` seals every file of the trees it is given as an exposure of its own and a
//! catalog naming them (`rgtp::catalog`), serves them all on one port through a
//! `rgtp::router::Router`, and prints one ticket: the catalog's. `get` pulls the
//! catalog, checks every path in it, then pulls the files one at a time over the
//! same socket (or `--parallel-files N` at once), each verified against the root the
//! catalog pins, each resumable like `rgtp pull`, and restores modes and times.

use std::fs::File;
use std::io::Write;
use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::Mutex;
use std::time::{Duration, Instant as StdInstant};

use clap::Args;
use indicatif::{HumanBytes, MultiProgress, ProgressBar, ProgressStyle};
use rgtp::catalog::{self, Catalog, CatalogError, Entry, FoundKind, Kind, MAX_CATALOG_BYTES};
use rgtp::driver::{self, Clock, PullFailure};
use rgtp::router::Router;
use rgtp::sink::MemSink;
use rgtp::{Backend, DynSuiteOn, ExposerBuilder, FecSpec, Ticket};
use rgtp_link::udp::UdpLink;
use rgtp_link::Link;
use rgtp_proto::cc::Controller;
use rgtp_proto::{CipherId, HashId, Key, Peer, Puller, PullerConfig};

use crate::exit;
use crate::transfer::{pull_failure, pull_file, NotPulled, PullFileError, PullJob};

/// What a command returns: an exit status and a message naming the problem and fix.
pub type CmdResult = Result<(), (u8, String)>;

/// `rgtp send`.
#[derive(Args, Debug)]
pub struct SendArgs {
    /// Files and directories to send; each is named in the set by its last component,
    /// and a directory brings everything under it.
    #[arg(required = true)]
    pub paths: Vec<PathBuf>,
    /// UDP port to serve on.
    #[arg(short, long, default_value_t = 9000)]
    pub port: u16,
    /// Address to bind.
    #[arg(long, default_value = "0.0.0.0")]
    pub bind: IpAddr,
    /// Host to write into the ticket (default: the bound address, or 127.0.0.1).
    #[arg(long)]
    pub advertise: Option<String>,
    /// Pre-shared key, 64 hex digits (default: a fresh random key). With a key, the
    /// same files give the same ticket after a restart and receivers resume.
    #[arg(long, env = "RGTP_KEY", hide_env_values = true, value_parser = parse_key)]
    pub key: Option<[u8; 32]>,
    /// AEAD: aes-256-gcm or chacha20-poly1305.
    #[arg(long, value_parser = parse_cipher, default_value = "aes-256-gcm")]
    pub cipher: CipherId,
    /// Merkle hash: sha256, blake3 or blake2b-256.
    #[arg(long, value_parser = parse_hash, default_value = "sha256")]
    pub hash: HashId,
    /// FEC: none, rs:N,K or raptorq:OVERHEAD.
    #[arg(long, default_value = "none")]
    pub fec: FecSpec,
    /// Plaintext bytes per chunk.
    #[arg(long, default_value_t = 1200)]
    pub chunk_size: u32,
    /// Send symbolic links as links (the default refuses them).
    #[arg(long)]
    pub keep_symlinks: bool,
    /// Print only the ticket.
    #[arg(short, long)]
    pub quiet: bool,
}

/// `rgtp get`.
#[derive(Args, Debug)]
pub struct GetArgs {
    /// The ticket `rgtp send` printed.
    pub ticket: String,
    /// Directory to write into (created if missing).
    #[arg(default_value = ".")]
    pub dest: PathBuf,
    /// Files fetched at once (each over its own socket).
    #[arg(long, default_value_t = 1, value_parser = clap::value_parser!(u32).range(1..=64))]
    pub parallel_files: u32,
    /// Start every file over, ignoring what an earlier run left.
    #[arg(long)]
    pub restart: bool,
    /// Retries per file while the sender is unreachable or silent (1, 2, 4, … 32 s apart).
    #[arg(long, default_value_t = 0, value_name = "N")]
    pub retries: u32,
    /// Cap each file's transfer at this rate (20MB/s, 160Mbit/s, bytes per second).
    #[arg(long, value_name = "RATE", value_parser = redgiant_base::parse_rate)]
    pub max_rate: Option<u64>,
    /// Seconds to wait for the sender's first answer.
    #[arg(long, default_value_t = 5)]
    pub connect_timeout: u64,
    /// Seconds without progress before a file's pull gives up.
    #[arg(long, default_value_t = 10)]
    pub idle_timeout: u64,
    /// Print one JSON object per line (a file done, the end) on standard output.
    #[arg(long)]
    pub json: bool,
    /// No progress bars.
    #[arg(short, long)]
    pub quiet: bool,
}

fn parse_key(s: &str) -> Result<[u8; 32], String> {
    hex::decode(s.trim())
        .ok()
        .and_then(|v| v.try_into().ok())
        .ok_or_else(|| "the key must be 64 hex digits (32 bytes)".to_string())
}

fn parse_cipher(s: &str) -> Result<CipherId, String> {
    CipherId::from_name(s)
        .ok_or_else(|| format!("unknown cipher {s:?}: use aes-256-gcm or chacha20-poly1305"))
}

fn parse_hash(s: &str) -> Result<HashId, String> {
    HashId::from_name(s)
        .ok_or_else(|| format!("unknown hash {s:?}: use blake3, sha256 or blake2b-256"))
}

fn catalog_error(e: CatalogError) -> (u8, String) {
    match e {
        CatalogError::Io { .. } => (exit::IO, e.to_string()),
        _ => (exit::USAGE, e.to_string()),
    }
}

/// The file's bytes, mapped (empty files need no map).
fn map(path: &Path) -> Result<Option<memmap2::Mmap>, (u8, String)> {
    let f = File::open(path).map_err(|e| {
        (
            exit::IO,
            format!(
                "cannot open {}: {e} (check its permissions)",
                path.display()
            ),
        )
    })?;
    if f.metadata().map(|m| m.len()).unwrap_or(0) == 0 {
        return Ok(None);
    }
    // SAFETY: the map is read once, while sealing; a concurrent writer could change what
    // is sealed but cannot make us read out of bounds.
    unsafe { memmap2::Mmap::map(&f) }
        .map(Some)
        .map_err(|e| (exit::IO, format!("cannot map {}: {e}", path.display())))
}

/// Seals the trees and serves them until `stop` is set.
pub fn send(a: SendArgs, stop: &AtomicBool) -> CmdResult {
    let found = catalog::scan(&a.paths, a.keep_symlinks).map_err(catalog_error)?;
    let key = a
        .key
        .map(Key::from_bytes)
        .unwrap_or_else(rgtp_providers::cipher::random_key);
    let addr = SocketAddr::new(a.bind, a.port);
    let mut link = UdpLink::bind(addr).map_err(|e| {
        (
            exit::IO,
            format!("cannot bind UDP {addr}: {e} (is the port in use? try --port 0)"),
        )
    })?;
    let caps = link.capabilities();
    let config = rgtp_proto::ExposerConfig {
        max_segments: caps.max_segments,
        max_payload: caps.mtu,
        ..Default::default()
    };
    let builder = || {
        ExposerBuilder::new()
            .with_cipher((a.cipher, Backend::preferred()))
            .with_hash(a.hash)
            .with_fec(a.fec)
            .with_chunk_size(a.chunk_size)
            .with_key(key.clone())
            .with_stable_exposure_id()
            .with_config(config.clone())
    };
    let started = StdInstant::now();
    let mut router = Router::new();
    let mut entries = Vec::with_capacity(found.len());
    let (mut files, mut bytes) = (0u64, 0u64);
    for f in &found {
        let kind = match &f.kind {
            FoundKind::Dir => Kind::Dir,
            FoundKind::Symlink(t) => Kind::Symlink { target: t.clone() },
            FoundKind::File(_) => {
                let m = map(&f.source)?;
                let data: &[u8] = m.as_deref().unwrap_or(&[]);
                let p = builder()
                    .expose(data)
                    .map_err(|e| (exit::USAGE, format!("{}: {e}", f.source.display())))?;
                files += 1;
                bytes += data.len() as u64;
                let k = Kind::File {
                    size: data.len() as u64,
                    id: hex::encode(p.exposure.id()),
                    root: hex::encode(p.exposure.manifest().merkle_root),
                };
                router.add(p.exposer());
                k
            }
        };
        entries.push(Entry {
            path: f.path.clone(),
            kind,
            mode: f.mode,
            mtime: f.mtime,
        });
    }
    let cat = Catalog {
        version: catalog::VERSION,
        entries,
    };
    let cat_bytes = cat.to_bytes();
    let p = builder()
        .expose(&cat_bytes)
        .map_err(|e| (exit::USAGE, format!("the catalog: {e}")))?;
    router.add(p.exposer());
    let local = link.local_addr();
    let mut ticket = p.ticket(local);
    ticket.host = match &a.advertise {
        Some(h) => h.clone(),
        None if local.ip().is_unspecified() => Ipv4Addr::LOCALHOST.to_string(),
        None => ticket.host,
    };
    println!("{ticket}");
    let _ = std::io::stdout().flush();
    if !a.quiet {
        eprintln!(
            "sending {files} files ({}) in {} entries on udp {local}; sealed in {:.2?}. Ctrl-C to stop.\n\
             receive with: rgtp get '{ticket}' DEST",
            HumanBytes(bytes),
            cat.entries.len(),
            started.elapsed()
        );
    }
    let clock = Clock::new();
    driver::serve(&mut router, &mut link, &clock, stop, |_| {})
        .map_err(|e| (exit::IO, format!("serving failed: {e}")))
}

/// What `get` prints with `--json`, one line each.
fn json_line(v: serde_json::Value) {
    println!("{v}");
}

/// Fetches a set into `a.dest`.
pub fn get(a: GetArgs, stop: &AtomicBool) -> CmdResult {
    let ticket: Ticket = a
        .ticket
        .parse()
        .map_err(|e| (exit::USAGE, format!("bad ticket: {e}")))?;
    let server = ticket.socket_addr().map_err(|e| {
        (
            exit::USAGE,
            format!("cannot resolve the ticket's host {:?}: {e}", ticket.host),
        )
    })?;
    let bind = |server: SocketAddr| -> Result<UdpLink, (u8, String)> {
        let any: SocketAddr = match server {
            SocketAddr::V4(_) => "0.0.0.0:0".parse().expect("literal"),
            SocketAddr::V6(_) => "[::]:0".parse().expect("literal"),
        };
        UdpLink::bind(any).map_err(|e| (exit::IO, format!("cannot open a UDP socket: {e}")))
    };
    let mut link = bind(server)?;
    let clock = Clock::new();
    let mtu = link.capabilities().mtu;
    let (key, pin_cipher, pin_hash) = (ticket.key.clone(), ticket.cipher, ticket.hash);
    let (connect, idle, max_rate) = (a.connect_timeout, a.idle_timeout, a.max_rate);
    let base = move |id| {
        let mut c = PullerConfig::new(id, Peer::Ip(server), key.clone());
        c.expected_cipher = pin_cipher;
        c.expected_hash = pin_hash;
        c.deferred_root = true;
        c.max_payload = c.max_payload.min(mtu);
        c.handshake_timeout = Duration::from_secs(connect);
        c.idle_timeout = Duration::from_secs(idle);
        c.max_rate = max_rate;
        c.congestion = Controller::DEFAULT;
        c
    };

    // The catalog, into memory, within its limit.
    let mut cfg = base(ticket.exposure_id);
    cfg.max_total_size = MAX_CATALOG_BYTES;
    let mut puller = Puller::new(cfg, DynSuiteOn(Backend::preferred()), clock.now());
    let mut sink = MemSink::default();
    driver::pull_until(&mut puller, &mut link, &clock, &mut sink, stop, |_| {})
        .map_err(|e| pull_failure(e, &ticket))?;
    let cat = match Catalog::parse(sink.data(), catalog::MAX_ENTRIES) {
        Ok(c) => c,
        Err(CatalogError::NotACatalog(_)) => {
            return Err((
                exit::USAGE,
                "this ticket names a single exposure, not a set from `rgtp send`: fetch it with `rgtp pull TICKET -o FILE`".into(),
            ))
        }
        Err(e) => return Err((exit::PROTOCOL, format!("the sender's catalog was refused: {e}"))),
    };
    std::fs::create_dir_all(&a.dest).map_err(|e| {
        (
            exit::IO,
            format!(
                "cannot create {}: {e} (check permissions)",
                a.dest.display()
            ),
        )
    })?;
    let dest = &a.dest;
    let mkdir = |path: &Path| {
        std::fs::create_dir_all(path)
            .map_err(|e| (exit::IO, format!("cannot create {}: {e}", path.display())))
    };
    for e in cat.entries.iter().filter(|e| e.kind == Kind::Dir) {
        mkdir(&catalog::safe_join(dest, &e.path).map_err(catalog_error)?)?;
    }

    // The files: a queue shared by `parallel_files` workers, each with its own socket.
    let started = StdInstant::now();
    let multi = if a.quiet || a.json {
        MultiProgress::with_draw_target(indicatif::ProgressDrawTarget::hidden())
    } else {
        MultiProgress::new()
    };
    let total = multi.add(ProgressBar::new(cat.total_bytes()));
    total.set_style(
        ProgressStyle::with_template(
            "total {bar:30.green/white} {bytes}/{total_bytes} {binary_bytes_per_sec} ETA {eta} {msg}",
        )
        .expect("template"),
    );
    let files: Vec<&Entry> = cat.files().collect();
    let next = AtomicUsize::new(0);
    let done_bytes = Mutex::new(0u64);
    let first_error: Mutex<Option<(u8, String)>> = Mutex::new(None);
    let workers = (a.parallel_files as usize).min(files.len()).max(1);
    let mut links = vec![Some(link)];
    for _ in 1..workers {
        links.push(Some(bind(server)?));
    }
    std::thread::scope(|s| {
        for mut l in links.iter_mut().map(|l| l.take().expect("one each")) {
            let (files, next, multi, total) = (&files, &next, &multi, &total);
            let (done_bytes, first_error, ticket, clock) =
                (&done_bytes, &first_error, &ticket, &clock);
            let base = &base;
            let a = &a;
            s.spawn(move || loop {
                if first_error.lock().expect("lock").is_some() {
                    return;
                }
                let i = next.fetch_add(1, Ordering::Relaxed);
                let Some(e) = files.get(i) else { return };
                let r = get_one(e, dest, a, base, &mut l, clock, multi, stop);
                match r {
                    Ok((n, secs, resumed, skipped)) => {
                        let mut d = done_bytes.lock().expect("lock");
                        *d += n;
                        total.set_position(*d);
                        if a.json {
                            json_line(serde_json::json!({
                                "event": "file", "path": e.path, "bytes": n,
                                "seconds": secs, "resumed_chunks": resumed,
                                "skipped": skipped,
                            }));
                        }
                    }
                    Err(err) => {
                        let err = match err {
                            GetOneError::Cmd(c) => c,
                            GetOneError::Pull(NotPulled { failure, kept }) => {
                                if let Some(k) = kept {
                                    multi.suspend(|| eprintln!("{k}"));
                                }
                                if let PullFailure::Stopped = failure {
                                    (exit::PROTOCOL, "interrupted".to_string())
                                } else {
                                    let (code, msg) = pull_failure(failure, ticket);
                                    (code, format!("{}: {msg}", e.path))
                                }
                            }
                        };
                        first_error.lock().expect("lock").get_or_insert(err);
                        return;
                    }
                }
            });
        }
    });
    if let Some(e) = first_error.into_inner().expect("lock") {
        total.abandon();
        return Err(e);
    }
    total.finish();

    // Links last (so no file is written through one), then directories' modes and
    // times, deepest first (writing into a directory changes its time).
    for e in &cat.entries {
        if let Kind::Symlink { target } = &e.kind {
            let at = catalog::safe_join(dest, &e.path).map_err(catalog_error)?;
            let _ = std::fs::remove_file(&at);
            std::os::unix::fs::symlink(target, &at).map_err(|err| {
                (
                    exit::IO,
                    format!("cannot create link {}: {err}", at.display()),
                )
            })?;
        }
    }
    let mut dirs: Vec<&Entry> = cat.entries.iter().filter(|e| e.kind == Kind::Dir).collect();
    dirs.sort_by_key(|e| std::cmp::Reverse(e.path.matches('/').count()));
    for e in dirs {
        let at = catalog::safe_join(dest, &e.path).map_err(catalog_error)?;
        restore_meta(&at, e)?;
    }
    let secs = started.elapsed().as_secs_f64();
    let bytes = cat.total_bytes();
    if a.json {
        json_line(serde_json::json!({
            "event": "done", "files": files.len(), "entries": cat.entries.len(),
            "bytes": bytes, "seconds": secs,
        }));
    } else if !a.quiet {
        eprintln!(
            "got {} files ({}) in {} entries into {} in {secs:.2}s ({}/s), each verified against its root",
            files.len(),
            HumanBytes(bytes),
            cat.entries.len(),
            dest.display(),
            HumanBytes((bytes as f64 / secs.max(1e-9)) as u64),
        );
    }
    Ok(())
}

enum GetOneError {
    Cmd((u8, String)),
    Pull(NotPulled),
}

/// Pulls one file of the set; returns its bytes, seconds, chunks resumed, and whether
/// it was already in place.
#[allow(clippy::too_many_arguments)]
fn get_one(
    e: &Entry,
    dest: &Path,
    a: &GetArgs,
    base: &(dyn Fn([u8; 16]) -> PullerConfig + Sync),
    link: &mut UdpLink,
    clock: &Clock,
    multi: &MultiProgress,
    stop: &AtomicBool,
) -> Result<(u64, f64, u64, bool), GetOneError> {
    let cmd = GetOneError::Cmd;
    let (id, root) = e.file_id().expect("checked by Catalog::parse");
    let Kind::File { size, .. } = e.kind else {
        unreachable!("files only")
    };
    let out = catalog::safe_join(dest, &e.path).map_err(|x| cmd(catalog_error(x)))?;
    if let Some(parent) = out.parent() {
        std::fs::create_dir_all(parent)
            .map_err(|x| cmd((exit::IO, format!("cannot create {}: {x}", parent.display()))))?;
    }
    // Already here from an earlier run (same size and time as the set says): keep it.
    if let Ok(m) = std::fs::symlink_metadata(&out) {
        if m.is_file() && m.len() == size && m.modified().ok() == Some(e.modified()) {
            return Ok((size, 0.0, 0, true));
        }
    }
    let bar = multi.add(ProgressBar::new(size));
    bar.set_style(
        ProgressStyle::with_template("{prefix:30!} {bar:30.cyan/blue} {bytes}/{total_bytes} {msg}")
            .expect("template"),
    );
    bar.set_prefix(e.path.clone());
    let job = PullJob {
        cfg: base(id),
        backend: Backend::preferred(),
        restart: a.restart,
        retries: a.retries,
        expect_root: Some(root),
        quiet: a.quiet,
    };
    let t0 = StdInstant::now();
    let r = pull_file(&job, &out, link, clock, &bar, stop);
    bar.finish_and_clear();
    let done = match r {
        Ok(d) => d,
        Err(PullFileError::Open(m)) => return Err(cmd((exit::IO, m))),
        Err(PullFileError::Pull(n)) => return Err(GetOneError::Pull(n)),
    };
    restore_meta(&out, e).map_err(cmd)?;
    Ok((
        done.manifest.total_size,
        t0.elapsed().as_secs_f64(),
        done.stats.chunks_resumed,
        false,
    ))
}

/// Permission bits (never set-user-ID, set-group-ID or sticky) and modification time;
/// nothing through a symbolic link (which could point anywhere).
fn restore_meta(path: &Path, e: &Entry) -> Result<(), (u8, String)> {
    use std::os::unix::fs::PermissionsExt;
    let io = |x: std::io::Error| (exit::IO, format!("{}: {x}", path.display()));
    if std::fs::symlink_metadata(path)
        .map_err(io)?
        .file_type()
        .is_symlink()
    {
        return Ok(());
    }
    let f = File::options()
        .write(!path.is_dir())
        .read(path.is_dir())
        .open(path)
        .map_err(io)?;
    f.set_modified(e.modified()).map_err(io)?;
    if e.mode != 0 {
        std::fs::set_permissions(path, std::fs::Permissions::from_mode(e.mode & 0o777))
            .map_err(io)?;
    }
    Ok(())
}
