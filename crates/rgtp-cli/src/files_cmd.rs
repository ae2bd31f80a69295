//! `rgtp send` and `rgtp get`: files and directory trees as one exposure set.
//!
//! `send` seals every file of the trees it is given as an exposure of its own and a
//! catalog naming them (`rgtp::catalog`), serves them all on one port through a
//! `rgtp::router::Router`, and prints one ticket: the catalog's. `get` pulls the
//! catalog, checks every path in it, then pulls the files one at a time over the
//! same socket (or `--parallel-files N` at once), each verified against the root the
//! catalog pins, each resumable like `rgtp pull`, and restores modes and times. The
//! work is `rgtp::files`; this module turns the arguments into its options and shows
//! its progress.

use std::collections::HashMap;
use std::io::Write;
use std::net::{IpAddr, SocketAddr};
use std::path::PathBuf;
use std::sync::atomic::AtomicBool;
use std::sync::Mutex;
use std::time::{Duration, Instant as StdInstant};

use clap::Args;
use indicatif::{HumanBytes, MultiProgress, ProgressBar, ProgressStyle};
use rgtp::files::{self as lib, FilesEvent, FilesProgress, GetOptions, SendOptions};
use rgtp::FecSpec;
use rgtp_proto::{CipherId, HashId};

use crate::transfer::status;

pub use rgtp::files::{Fetched, Prepared};

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
    /// Serving rate caps.
    #[command(flatten)]
    pub caps: crate::caps::ServeCaps,
    /// Serve each file at most RATE to each puller (told to pullers, spec §8.3.3).
    #[arg(long, value_name = "RATE", value_parser = redgiant_base::parse_rate)]
    pub max_rate_per_file: Option<u64>,
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
    /// Another sender of the same set (HOST:PORT, or its own ticket), fetched from at
    /// the same time as the ticket's; repeat for more. Every sender must serve the same
    /// files with the same key and metadata (`rgtp send` with the same --key on copies
    /// made with `cp -p` or `rsync -a`); every chunk is verified whatever its source, and
    /// a sender that lies, stalls or serves other files is dropped.
    #[arg(long, value_name = "SOURCE")]
    pub from: Vec<String>,
    /// Files fetched at once (each over its own socket).
    #[arg(long, default_value_t = 1, value_parser = clap::value_parser!(u32).range(1..=64))]
    pub parallel_files: u32,
    /// Start every file over, ignoring what an earlier run left.
    #[arg(long)]
    pub restart: bool,
    /// Retries per file while the sender is unreachable or silent (1, 2, 4, … 32 s apart).
    #[arg(long, default_value_t = 0, value_name = "N")]
    pub retries: u32,
    /// Pulling rate caps.
    #[command(flatten)]
    pub caps: crate::caps::PullCaps,
    /// Seconds to wait for the sender's first answer.
    #[arg(long, default_value_t = 5)]
    pub connect_timeout: u64,
    /// Seconds without progress before a file's pull gives up.
    #[arg(long, default_value_t = 10)]
    pub idle_timeout: u64,
    /// Scheduling policy of the pulls' threads (Linux), as for `rgtp pull`: batch
    /// (the default) runs them under SCHED_BATCH, the same share of the CPU but
    /// never preempting the task running when packets arrive; normal leaves the
    /// policy the command started with. Where the system refuses batch, the pulls
    /// run as they are.
    #[arg(long, value_enum, value_name = "POLICY", default_value_t = crate::sched::Sched::Batch)]
    pub sched: crate::sched::Sched,
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

impl SendArgs {
    /// The library's options.
    pub fn options(&self) -> SendOptions {
        SendOptions {
            paths: self.paths.clone(),
            bind: SocketAddr::new(self.bind, self.port),
            advertise: self.advertise.clone(),
            key: self.key,
            cipher: self.cipher,
            hash: self.hash,
            fec: self.fec,
            chunk_size: self.chunk_size,
            keep_symlinks: self.keep_symlinks,
            caps: self.caps.lib(),
            max_rate_per_file: self.max_rate_per_file,
        }
    }
}

impl GetArgs {
    /// The library's options.
    pub fn options(&self) -> GetOptions {
        GetOptions {
            ticket: self.ticket.clone(),
            dest: self.dest.clone(),
            from: self.from.clone(),
            parallel_files: self.parallel_files,
            restart: self.restart,
            retries: self.retries,
            caps: self.caps.lib(),
            connect_timeout: Duration::from_secs(self.connect_timeout),
            idle_timeout: Duration::from_secs(self.idle_timeout),
        }
    }
}

/// Scans and seals the trees of `a` and binds the socket they will be served on.
pub fn prepare(a: &SendArgs) -> Result<Prepared, (u8, String)> {
    lib::prepare(&a.options()).map_err(status)
}

/// Seals the trees and serves them until `stop` is set.
pub fn send(a: SendArgs, stop: &AtomicBool) -> CmdResult {
    let started = StdInstant::now();
    let p = prepare(&a)?;
    let ticket = &p.ticket;
    println!("{ticket}");
    let _ = std::io::stdout().flush();
    if !a.quiet {
        eprintln!(
            "sending {} files ({}) in {} entries on udp {}; sealed in {:.2?}. Ctrl-C to stop.\n\
             receive with: rgtp get '{ticket}' DEST",
            p.files,
            HumanBytes(p.bytes),
            p.entries,
            p.link.local_addr(),
            started.elapsed()
        );
        if let Some(c) = a.caps.describe(a.max_rate_per_file) {
            eprintln!("{c}");
        }
    }
    lib::serve(p, a.caps.max_rate, stop).map_err(status)
}

/// What `get` prints with `--json`, one line each.
fn json_line(v: serde_json::Value) {
    println!("{v}");
}

/// `get`'s progress: a bar for the whole set and one per file in flight, or JSON
/// lines.
struct Bars {
    multi: MultiProgress,
    total: Mutex<Option<ProgressBar>>,
    files: Mutex<HashMap<usize, ProgressBar>>,
    quiet: bool,
    json: bool,
}

impl Bars {
    fn new(a: &GetArgs) -> Self {
        let multi = if a.quiet || a.json {
            MultiProgress::with_draw_target(indicatif::ProgressDrawTarget::hidden())
        } else {
            MultiProgress::new()
        };
        Self {
            multi,
            total: Mutex::new(None),
            files: Mutex::new(HashMap::new()),
            quiet: a.quiet,
            json: a.json,
        }
    }

    fn file(&self, index: usize) -> Option<ProgressBar> {
        self.files.lock().expect("lock").get(&index).cloned()
    }

    fn take(&self, index: usize) {
        if let Some(bar) = self.files.lock().expect("lock").remove(&index) {
            bar.finish_and_clear();
        }
    }
}

impl FilesProgress for Bars {
    fn on_event(&self, ev: &FilesEvent<'_>) {
        match ev {
            FilesEvent::Catalog { bytes, .. } => {
                let total = self.multi.add(ProgressBar::new(*bytes));
                total.set_style(
                    ProgressStyle::with_template(
                        "total {bar:30.green/white} {bytes}/{total_bytes} {binary_bytes_per_sec} ETA {eta} {msg}",
                    )
                    .expect("template"),
                );
                *self.total.lock().expect("lock") = Some(total);
            }
            FilesEvent::FileStarted { index, path, size } => {
                let bar = self.multi.add(ProgressBar::new(*size));
                bar.set_style(
                    ProgressStyle::with_template(
                        "{prefix:30!} {bar:30.cyan/blue} {bytes}/{total_bytes} {msg}",
                    )
                    .expect("template"),
                );
                bar.set_prefix(path.to_string());
                self.files.lock().expect("lock").insert(*index, bar);
            }
            FilesEvent::FileBytes {
                index,
                done,
                size,
                stats,
                ..
            } => {
                if let Some(bar) = self.file(*index) {
                    let p = crate::transfer::BarProgress {
                        bar: &bar,
                        quiet: self.quiet,
                    };
                    rgtp::files::PullProgress::update(&p, *done, *size, stats);
                }
            }
            FilesEvent::FileRetry { message, .. } => {
                if !self.quiet {
                    self.multi.suspend(|| eprintln!("{message}"));
                }
            }
            FilesEvent::FileDone {
                index,
                path,
                bytes,
                seconds,
                resumed_chunks,
                skipped,
                total_done,
                sources,
            } => {
                self.take(*index);
                if let Some(total) = &*self.total.lock().expect("lock") {
                    total.set_position(*total_done);
                }
                if self.json {
                    let mut ev = serde_json::json!({
                        "event": "file", "path": path, "bytes": bytes,
                        "seconds": seconds, "resumed_chunks": resumed_chunks,
                        "skipped": skipped,
                    });
                    if sources.len() > 1 {
                        ev["sources"] = crate::sources::json(sources);
                    }
                    json_line(ev);
                }
            }
            FilesEvent::FileFailed { index, kept, .. } => {
                self.take(*index);
                if let Some(k) = kept {
                    self.multi.suspend(|| eprintln!("{k}"));
                }
            }
        }
    }
}

/// Fetches a set into `a.dest`.
pub fn get(a: GetArgs, stop: &AtomicBool) -> CmdResult {
    // Before any pull's thread starts, so that all inherit it; a refusal leaves
    // them as they started.
    let _ = a.sched.apply();
    fetch(&a, stop).map(|_| ())
}

/// Fetches a set into `a.dest` and says what it fetched.
pub fn fetch(a: &GetArgs, stop: &AtomicBool) -> Result<Fetched, (u8, String)> {
    let bars = Bars::new(a);
    let r = lib::fetch(&a.options(), &bars, stop);
    let total = bars.total.lock().expect("lock").take();
    let got = match r {
        Ok(got) => got,
        Err(e) => {
            if let Some(t) = total {
                t.abandon();
            }
            return Err(status(e));
        }
    };
    if let Some(t) = total {
        t.finish();
    }
    let secs = got.seconds;
    if a.json {
        json_line(serde_json::json!({
            "event": "done", "files": got.files, "entries": got.entries,
            "bytes": got.bytes, "seconds": secs,
        }));
    } else if !a.quiet {
        eprintln!(
            "got {} files ({}) in {} entries into {} in {secs:.2}s ({}/s), each verified against its root",
            got.files,
            HumanBytes(got.bytes),
            got.entries,
            a.dest.display(),
            HumanBytes((got.bytes as f64 / secs.max(1e-9)) as u64),
        );
    }
    Ok(got)
}
