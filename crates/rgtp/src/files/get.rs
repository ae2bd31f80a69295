//! Fetching an exposure set: the catalog, then every file.

use std::fs::File;
use std::net::{SocketAddr, ToSocketAddrs};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::Mutex;
use std::time::{Duration, Instant as StdInstant};

use rgtp_link::udp::UdpLink;
use rgtp_link::Link;
use rgtp_proto::cc::Controller;
use rgtp_proto::multi::SourceReport;
use rgtp_proto::puller::PullError;
use rgtp_proto::{MultiConfig, MultiPuller, Peer, PullerConfig, PullerStats};

use super::pull::{pull_file, NotPulled, PullFileError, PullJob, PullProgress};
use super::types::PullCaps;
use super::types::{catalog_error, pull_failure, ErrorKind, FilesError, FilesEvent, FilesProgress};
use crate::catalog::{self, Catalog, CatalogError, Entry, Kind, MAX_CATALOG_BYTES};
use crate::driver::{self, Clock, PullFailure};
use crate::sink::MemSink;
use crate::{Backend, DynSuiteOn, Ticket};

/// How to fetch a set.
#[derive(Debug, Clone)]
pub struct GetOptions {
    /// The catalog's ticket.
    pub ticket: String,
    /// Directory to write into (created if missing).
    pub dest: PathBuf,
    /// More senders of the same set (`HOST:PORT` or their own tickets), fetched from
    /// at the same time as the ticket's (see [`sources`]).
    pub from: Vec<String>,
    /// Files fetched at once, each over its own socket (at least 1).
    pub parallel_files: u32,
    /// Start every file over, ignoring what an earlier run left.
    pub restart: bool,
    /// Retries per file while the sender is unreachable or silent (1, 2, 4, … 32 s
    /// apart).
    pub retries: u32,
    /// Rate caps.
    pub caps: PullCaps,
    /// Time to wait for the sender's first answer.
    pub connect_timeout: Duration,
    /// Time without progress before a file's pull gives up.
    pub idle_timeout: Duration,
}

impl GetOptions {
    /// `ticket` into `dest`, one file at a time, no retries, no caps, 5 s to connect,
    /// 10 s idle.
    pub fn new(ticket: impl Into<String>, dest: impl Into<PathBuf>) -> Self {
        Self {
            ticket: ticket.into(),
            dest: dest.into(),
            from: Vec::new(),
            parallel_files: 1,
            restart: false,
            retries: 0,
            caps: PullCaps::default(),
            connect_timeout: Duration::from_secs(5),
            idle_timeout: Duration::from_secs(10),
        }
    }
}

/// What a completed fetch fetched.
#[derive(Debug, Clone, Copy)]
pub struct Fetched {
    /// Regular files.
    pub files: usize,
    /// Catalog entries (files, directories, links).
    pub entries: usize,
    /// Bytes of the files.
    pub bytes: u64,
    /// Wall time of the files' pulls.
    pub seconds: f64,
}

/// The exposers to pull from: the ticket's own address first, then each of `from`
/// (duplicates removed), each written `HOST:PORT` (the exposure and key are the
/// ticket's) or as a ticket of its own, which must name the same exposure with the
/// same key.
pub fn sources(
    ticket_addr: SocketAddr,
    ticket: &Ticket,
    from: &[String],
) -> Result<Vec<Peer>, FilesError> {
    let usage = |m: String| FilesError::new(ErrorKind::Usage, m);
    let mut out = vec![Peer::Ip(ticket_addr)];
    for s in from {
        let addr = if s.starts_with("rgtp://") {
            let t: Ticket = s
                .parse()
                .map_err(|e| usage(format!("--from {s}: bad ticket: {e}")))?;
            if t.exposure_id != ticket.exposure_id || t.key != ticket.key {
                return Err(usage(format!("--from {s}: this ticket names another exposure or key than the first; every source must serve the same exposure")));
            }
            t.socket_addr()
                .map_err(|e| usage(format!("--from {s}: {e}")))?
        } else {
            s.to_socket_addrs()
                .ok()
                .and_then(|mut a| a.next())
                .ok_or_else(|| {
                    usage(format!("--from {s}: not HOST:PORT or a ticket (write e.g. 10.0.0.2:7000 or rgtp://10.0.0.2:7000/…)"))
                })?
        };
        if addr.is_ipv4() != ticket_addr.is_ipv4() {
            return Err(usage(format!("--from {s}: {addr} is not of the ticket's address family ({ticket_addr}); one socket serves every source")));
        }
        let p = Peer::Ip(addr);
        if !out.contains(&p) {
            out.push(p);
        }
    }
    Ok(out)
}

fn bind(server: SocketAddr) -> Result<UdpLink, FilesError> {
    let any: SocketAddr = match server {
        SocketAddr::V4(_) => "0.0.0.0:0".parse().expect("literal"),
        SocketAddr::V6(_) => "[::]:0".parse().expect("literal"),
    };
    UdpLink::bind(any)
        .map_err(|e| FilesError::new(ErrorKind::Io, format!("cannot open a UDP socket: {e}")))
}

/// Fetches the set `o.ticket` names into `o.dest`, reporting to `progress` (from the
/// threads pulling the files), until done, failed or `stop` is set.
pub fn fetch(
    o: &GetOptions,
    progress: &dyn FilesProgress,
    stop: &AtomicBool,
) -> Result<Fetched, FilesError> {
    let usage = |m: String| FilesError::new(ErrorKind::Usage, m);
    let io = |m: String| FilesError::new(ErrorKind::Io, m);
    let ticket: Ticket = o
        .ticket
        .parse()
        .map_err(|e| usage(format!("bad ticket: {e}")))?;
    let server = ticket.socket_addr().map_err(|e| {
        usage(format!(
            "cannot resolve the ticket's host {:?}: {e}",
            ticket.host
        ))
    })?;
    let sources = if o.from.is_empty() {
        Vec::new()
    } else {
        sources(server, &ticket, &o.from)?
    };
    let mut link = bind(server)?;
    let clock = Clock::new();
    let mtu = link.capabilities().mtu;
    let (key, pin_cipher, pin_hash) = (ticket.key.clone(), ticket.cipher, ticket.hash);
    let (connect, idle) = (o.connect_timeout, o.idle_timeout);
    let base = move |id| {
        let mut c = PullerConfig::new(id, Peer::Ip(server), key.clone());
        c.expected_cipher = pin_cipher;
        c.expected_hash = pin_hash;
        c.deferred_root = true;
        c.max_payload = c.max_payload.min(mtu);
        c.handshake_timeout = connect;
        c.idle_timeout = idle;
        c.max_rate = None;
        c.congestion = Controller::DEFAULT;
        c
    };

    // The catalog, into memory, within its limit.
    let mut cfg = base(ticket.exposure_id);
    cfg.max_total_size = MAX_CATALOG_BYTES;
    let mut puller = MultiPuller::new(
        cfg,
        &sources,
        MultiConfig::default(),
        DynSuiteOn(Backend::preferred()),
        clock.now(),
    );
    let mut sink = MemSink::default();
    driver::pull_with(
        &mut puller,
        &mut link,
        &clock,
        &mut driver::PullApp::new(&mut sink),
        stop,
        |_| {},
    )
    .map_err(|e| pull_failure(e, &ticket))?;
    let cat = match Catalog::parse(sink.data(), catalog::MAX_ENTRIES) {
        Ok(c) => c,
        Err(CatalogError::NotACatalog(_)) => {
            return Err(usage(
                "this ticket names a single exposure, not a set from `rgtp send`: fetch it with `rgtp pull TICKET -o FILE`".into(),
            ))
        }
        Err(e) => {
            return Err(FilesError::new(
                ErrorKind::Protocol,
                format!("the sender's catalog was refused: {e}"),
            ))
        }
    };
    std::fs::create_dir_all(&o.dest).map_err(|e| {
        io(format!(
            "cannot create {}: {e} (check permissions)",
            o.dest.display()
        ))
    })?;
    let dest = &o.dest;
    for e in cat.entries.iter().filter(|e| e.kind == Kind::Dir) {
        let path = catalog::safe_join(dest, &e.path).map_err(catalog_error)?;
        std::fs::create_dir_all(&path)
            .map_err(|x| io(format!("cannot create {}: {x}", path.display())))?;
    }
    let files: Vec<&Entry> = cat.files().collect();
    progress.on_event(&FilesEvent::Catalog {
        files: files.len(),
        entries: cat.entries.len(),
        bytes: cat.total_bytes(),
    });

    // The files: a queue shared by `parallel_files` workers, each with its own socket.
    let started = StdInstant::now();
    let next = AtomicUsize::new(0);
    let done_bytes = Mutex::new(0u64);
    let first_error: Mutex<Option<FilesError>> = Mutex::new(None);
    let workers = (o.parallel_files as usize).min(files.len()).max(1);
    let rate = o.caps.per_pull(workers);
    let mut links = vec![Some(link)];
    for _ in 1..workers {
        links.push(Some(bind(server)?));
    }
    let one = OneFile {
        dest,
        o,
        base: &base,
        rate,
        sources: &sources,
        clock: &clock,
        progress,
        stop,
    };
    std::thread::scope(|s| {
        for mut l in links.iter_mut().map(|l| l.take().expect("one each")) {
            let (files, next, done_bytes, first_error) = (&files, &next, &done_bytes, &first_error);
            let (one, ticket) = (&one, &ticket);
            s.spawn(move || loop {
                if first_error.lock().expect("lock").is_some() {
                    return;
                }
                let i = next.fetch_add(1, Ordering::Relaxed);
                let Some(e) = files.get(i) else { return };
                match one.get(i, e, &mut l) {
                    Ok(d) => {
                        let mut total = done_bytes.lock().expect("lock");
                        *total += d.bytes;
                        progress.on_event(&FilesEvent::FileDone {
                            index: i,
                            path: &e.path,
                            bytes: d.bytes,
                            seconds: d.seconds,
                            resumed_chunks: d.resumed,
                            skipped: d.skipped,
                            total_done: *total,
                            sources: &d.sources,
                        });
                    }
                    Err(err) => {
                        let err = match err {
                            GetOneError::Files(f) => f,
                            GetOneError::Pull(NotPulled { failure, kept }) => {
                                progress.on_event(&FilesEvent::FileFailed {
                                    index: i,
                                    path: &e.path,
                                    kept: kept.as_deref(),
                                });
                                if let PullFailure::Stopped = failure {
                                    FilesError::new(ErrorKind::Stopped, "interrupted")
                                } else {
                                    let f = pull_failure(failure, ticket);
                                    FilesError::new(f.kind, format!("{}: {}", e.path, f.message))
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
        return Err(e);
    }

    // Links last (so no file is written through one), then directories' modes and
    // times, deepest first (writing into a directory changes its time).
    for e in &cat.entries {
        if let Kind::Symlink { target } = &e.kind {
            let at = catalog::safe_join(dest, &e.path).map_err(catalog_error)?;
            let _ = std::fs::remove_file(&at);
            std::os::unix::fs::symlink(target, &at)
                .map_err(|err| io(format!("cannot create link {}: {err}", at.display())))?;
        }
    }
    let mut dirs: Vec<&Entry> = cat.entries.iter().filter(|e| e.kind == Kind::Dir).collect();
    dirs.sort_by_key(|e| std::cmp::Reverse(e.path.matches('/').count()));
    for e in dirs {
        let at = catalog::safe_join(dest, &e.path).map_err(catalog_error)?;
        restore_meta(&at, e)?;
    }
    Ok(Fetched {
        files: files.len(),
        entries: cat.entries.len(),
        bytes: cat.total_bytes(),
        seconds: started.elapsed().as_secs_f64(),
    })
}

/// A file fetched.
struct FileDone {
    bytes: u64,
    seconds: f64,
    resumed: u64,
    /// Already in place from an earlier run.
    skipped: bool,
    sources: Vec<SourceReport>,
}

enum GetOneError {
    Files(FilesError),
    Pull(NotPulled),
}

/// What every file's pull shares.
struct OneFile<'a> {
    dest: &'a Path,
    o: &'a GetOptions,
    base: &'a (dyn Fn([u8; 16]) -> PullerConfig + Sync),
    rate: Option<u64>,
    sources: &'a [Peer],
    clock: &'a Clock,
    progress: &'a dyn FilesProgress,
    stop: &'a AtomicBool,
}

/// One file's pull reported as [`FilesEvent`]s.
struct FileReport<'a> {
    index: usize,
    path: &'a str,
    to: &'a dyn FilesProgress,
}

impl PullProgress for FileReport<'_> {
    fn update(&self, done: u64, total: u64, stats: &PullerStats) {
        self.to.on_event(&FilesEvent::FileBytes {
            index: self.index,
            path: self.path,
            done,
            size: total,
            stats,
        });
    }

    fn retrying(&self, error: &PullError, attempt: u32, retries: u32, wait: Duration) {
        self.to.on_event(&FilesEvent::FileRetry {
            index: self.index,
            path: self.path,
            message: format!(
                "{error}; retry {attempt} of {retries} in {}s",
                wait.as_secs()
            ),
            wait_secs: wait.as_secs(),
        });
    }
}

impl OneFile<'_> {
    /// Pulls file `index` of the set.
    fn get<L: Link>(&self, index: usize, e: &Entry, link: &mut L) -> Result<FileDone, GetOneError> {
        let files = GetOneError::Files;
        let (id, root) = e.file_id().expect("checked by Catalog::parse");
        let Kind::File { size, .. } = e.kind else {
            unreachable!("files only")
        };
        let out = catalog::safe_join(self.dest, &e.path).map_err(|x| files(catalog_error(x)))?;
        if let Some(parent) = out.parent() {
            std::fs::create_dir_all(parent).map_err(|x| {
                files(FilesError::new(
                    ErrorKind::Io,
                    format!("cannot create {}: {x}", parent.display()),
                ))
            })?;
        }
        // Already here from an earlier run (same size and time as the set says): keep it.
        if let Ok(m) = std::fs::symlink_metadata(&out) {
            if m.is_file() && m.len() == size && m.modified().ok() == Some(e.modified()) {
                return Ok(FileDone {
                    bytes: size,
                    seconds: 0.0,
                    resumed: 0,
                    skipped: true,
                    sources: Vec::new(),
                });
            }
        }
        self.progress.on_event(&FilesEvent::FileStarted {
            index,
            path: &e.path,
            size,
        });
        let mut cfg = (self.base)(id);
        cfg.max_rate = self.rate;
        // An exposure larger than the catalog says is refused before any chunk.
        cfg.max_total_size = size;
        let job = PullJob {
            cfg,
            backend: Backend::preferred(),
            restart: self.o.restart,
            retries: self.o.retries,
            expect_root: Some(root),
            sources: self.sources.to_vec(),
        };
        let report = FileReport {
            index,
            path: &e.path,
            to: self.progress,
        };
        let t0 = StdInstant::now();
        let done = match pull_file(&job, &out, link, self.clock, &report, self.stop) {
            Ok(d) => d,
            Err(PullFileError::Open(m)) => return Err(files(FilesError::new(ErrorKind::Io, m))),
            Err(PullFileError::Pull(NotPulled {
                failure: PullFailure::Protocol(PullError::TooLarge { declared, .. }),
                ..
            })) => return Err(files(size_mismatch(e, &out, size, declared))),
            Err(PullFileError::Pull(n)) => return Err(GetOneError::Pull(n)),
        };
        if done.manifest.total_size != size {
            return Err(files(size_mismatch(
                e,
                &out,
                size,
                done.manifest.total_size,
            )));
        }
        restore_meta(&out, e).map_err(files)?;
        Ok(FileDone {
            bytes: done.manifest.total_size,
            seconds: t0.elapsed().as_secs_f64(),
            resumed: done.stats.chunks_resumed,
            skipped: false,
            sources: done.sources,
        })
    }
}

/// The refusal of a file whose exposure's size is not the catalog's; whatever of it
/// was written (the file, its partial copy, its resume record) is removed.
fn size_mismatch(e: &Entry, out: &Path, size: u64, served: u64) -> FilesError {
    let mut partial = out.as_os_str().to_os_string();
    partial.push(".rgtp-partial");
    for p in [
        out.to_path_buf(),
        partial.into(),
        crate::resume::state_path(out),
    ] {
        let _ = std::fs::remove_file(p);
    }
    FilesError::new(
        ErrorKind::Protocol,
        format!(
            "{}: the sender's catalog says {size} bytes but the file it serves holds {served}; nothing was kept",
            e.path
        ),
    )
}

/// Permission bits (never set-user-ID, set-group-ID or sticky) and modification time;
/// nothing through a symbolic link (which could point anywhere).
fn restore_meta(path: &Path, e: &Entry) -> Result<(), FilesError> {
    use std::os::unix::fs::PermissionsExt;
    let io = |x: std::io::Error| FilesError::new(ErrorKind::Io, format!("{}: {x}", path.display()));
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
