//! TEJ as RGTP's control plane (`spec/tej.md` §5): a frame whose files are RGTP
//! tickets instead of file bytes.
//!
//! `rgtp tej send --via-rgtp PATH…` seals the paths as one `rgtp send` set, serves
//! it on a UDP port of the address its TCP connection leaves from, and sends one
//! frame of status [`STATUS_RGTP_TICKETS`] whose single file is the set's ticket.
//! `rgtp tej serve --dir DIR` pulls the set (every chunk verified against the Merkle
//! root the ticket pins) into a staging directory of DIR named after the exposure,
//! so a second attempt resumes, moves what it fetched into DIR under names that
//! overwrite nothing, and answers with a frame of status [`STATUS_RGTP_RESULT`]
//! whose message is a JSON array: one object per ticket.

use std::net::IpAddr;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant as StdInstant};

use clap::Parser;
use redgiant_base::driver::{Application, StreamDriver, Turn};
use redgiant_tej::wire::{STATUS_RGTP_RESULT, STATUS_RGTP_TICKETS};
use redgiant_tej::{Config, Connection, Event, OutFile, OutFrame};
use rgtp::driver::Clock;
use rgtp::Ticket;
use rgtp_link::tcp::TcpLink;
use serde_json::json;

use crate::files_cmd::{self, GetArgs, Prepared, SendArgs};

/// The longest ticket a receiver takes (a ticket is about 200 bytes).
pub const MAX_TICKET: u64 = 4096;

/// Exit statuses, as the rest of the command uses them.
const EXIT_USAGE: u8 = 2;
const EXIT_TIMEOUT: u8 = 3;
const EXIT_IO: u8 = 6;
const EXIT_PROTOCOL: u8 = 7;

#[derive(Parser)]
struct SendWrap {
    #[command(flatten)]
    a: SendArgs,
}

#[derive(Parser)]
struct GetWrap {
    #[command(flatten)]
    a: GetArgs,
}

/// A ticket frame being received: the tickets so far and the one under way.
#[derive(Debug, Default)]
pub struct TicketFrame {
    tickets: Vec<(String, Result<Vec<u8>, String>)>,
    current: Option<(String, Result<Vec<u8>, String>)>,
}

impl TicketFrame {
    /// A file of the frame starts.
    pub fn file_start(&mut self, name: String, len: u64) {
        let body = match len <= MAX_TICKET {
            true => Ok(Vec::new()),
            false => Err(format!(
                "a ticket of {len} bytes (at most {MAX_TICKET}): not a ticket"
            )),
        };
        self.current = Some((name, body));
    }

    /// Bytes of the current file.
    pub fn file_data(&mut self, d: &[u8]) {
        if let Some((_, Ok(b))) = &mut self.current {
            b.extend_from_slice(d);
        }
    }

    /// The current file ends.
    pub fn file_end(&mut self) {
        if let Some(t) = self.current.take() {
            self.tickets.push(t);
        }
    }
}

/// How the receiving side pulls.
#[derive(Debug, Clone)]
pub struct Receiver {
    /// Where files go; None: the server stores nothing, every ticket is refused.
    pub dir: Option<Arc<PathBuf>>,
    /// The sending peer's address: tickets must name it unless `any_host`.
    pub peer_ip: Option<IpAddr>,
    /// Pull from whatever host a ticket names.
    pub any_host: bool,
}

impl Receiver {
    /// Pulls every ticket of `frame` and returns the answer frame's message.
    pub fn pull_all(&self, frame: TicketFrame) -> Vec<u8> {
        let results: Vec<serde_json::Value> = frame
            .tickets
            .into_iter()
            .map(|(name, body)| match body.and_then(|b| self.pull_one(&b)) {
                Ok((saved, got)) => json!({
                    "name": name, "ok": true, "saved_as": saved,
                    "files": got.files, "entries": got.entries,
                    "bytes": got.bytes, "seconds": got.seconds,
                }),
                Err(error) => json!({"name": name, "ok": false, "error": error}),
            })
            .collect();
        serde_json::to_vec(&results).expect("JSON of plain values")
    }

    fn pull_one(&self, body: &[u8]) -> Result<(Vec<String>, files_cmd::Fetched), String> {
        let text = std::str::from_utf8(body)
            .map_err(|_| "the ticket is not UTF-8 text".to_string())?
            .trim();
        let ticket: Ticket = text.parse().map_err(|e| format!("bad ticket: {e}"))?;
        let Some(dir) = &self.dir else {
            return Err("this server stores no files: start it with --dir DIR".into());
        };
        let server = ticket
            .socket_addr()
            .map_err(|e| format!("cannot resolve the ticket's host {:?}: {e}", ticket.host))?;
        if !self.any_host && Some(server.ip()) != self.peer_ip {
            return Err(format!(
                "the ticket names {}, not the sending peer: refused (a server started with \
                 --pull-from-any-host pulls from other hosts)",
                server.ip()
            ));
        }
        // Named after the exposure, so a second attempt with the same set resumes.
        let staging = dir.join(format!(
            ".rgtp-incoming-{}",
            hex::encode(ticket.exposure_id)
        ));
        let args = GetWrap::try_parse_from([
            "get".as_ref(),
            text.as_ref(),
            staging.as_os_str(),
            "--quiet".as_ref(),
            "--retries".as_ref(),
            "2".as_ref(),
        ])
        .map_err(|e| e.to_string())?
        .a;
        let got = files_cmd::fetch(&args, &AtomicBool::new(false)).map_err(|(_, m)| m)?;
        let mut saved = Vec::new();
        let mut names: Vec<_> = std::fs::read_dir(&staging)
            .map_err(|e| format!("{}: {e}", staging.display()))?
            .filter_map(|e| e.ok())
            .collect();
        names.sort_by_key(|e| e.file_name());
        for e in names {
            let name = e.file_name();
            let name = name.to_string_lossy();
            let to = move_unique(&e.path(), dir, &name).map_err(|x| format!("{name}: {x}"))?;
            saved.push(to.display().to_string());
        }
        let _ = std::fs::remove_dir(&staging);
        Ok((saved, got))
    }
}

/// Moves `from` into `dir` as `name`, or `name-1`, `name-2`… (before the
/// extension) if taken: nothing already in `dir` is replaced.
fn move_unique(from: &Path, dir: &Path, name: &str) -> std::io::Result<PathBuf> {
    let (stem, ext) = match name.rfind('.') {
        Some(i) if i > 0 => (&name[..i], &name[i..]),
        _ => (name, ""),
    };
    for n in 0u32..100_000 {
        let to = dir.join(match n {
            0 => name.to_string(),
            n => format!("{stem}-{n}{ext}"),
        });
        if std::fs::symlink_metadata(&to).is_err() {
            std::fs::rename(from, &to)?;
            return Ok(to);
        }
    }
    Err(std::io::Error::other("no free name"))
}

/// What `rgtp tej send --via-rgtp` needs from its arguments.
pub struct ViaSend<'a> {
    /// Server address.
    pub to: &'a str,
    /// Files and directories.
    pub paths: &'a [PathBuf],
    /// The frame's message.
    pub message: &'a [u8],
    /// Give up after this many seconds in which the receiver neither pulled nor
    /// answered.
    pub timeout: Duration,
}

/// The sender's side of the connection: waits for the answer.
#[derive(Default)]
struct AnswerApp {
    receiving: u8,
    message: Vec<u8>,
    last_event: Option<StdInstant>,
    answer: Option<Result<Vec<u8>, (u8, String)>>,
}

impl Application<Connection> for AnswerApp {
    type Output = ();
    type Error = std::io::Error;

    fn deliver(&mut self, d: core::convert::Infallible) -> std::io::Result<()> {
        match d {}
    }

    fn event(&mut self, _: &mut Connection, ev: Event) -> std::io::Result<Option<()>> {
        self.last_event = Some(StdInstant::now());
        let mut end = |r| {
            self.answer.get_or_insert(r);
            Ok(Some(()))
        };
        match ev {
            Event::FrameStart { status, .. } => self.receiving = status,
            Event::Message(m) => self.message = m,
            Event::FrameEnd { status } if status == STATUS_RGTP_RESULT => {
                return end(Ok(std::mem::take(&mut self.message)))
            }
            Event::ProtocolError(e) => {
                return end(Err((
                    EXIT_PROTOCOL,
                    format!("the server broke the protocol: {e}"),
                )))
            }
            Event::SendFailed(m) => return end(Err((EXIT_IO, m))),
            Event::Closed { .. } => {
                return end(Err((
                    EXIT_PROTOCOL,
                    "the server closed the connection without answering the tickets \
                     (it must be `rgtp tej serve --dir DIR`; other TEJ servers store a \
                     ticket as a small file)"
                        .into(),
                )))
            }
            _ => {}
        }
        Ok(None)
    }
}

/// Runs `rgtp tej send --via-rgtp`.
pub fn send(v: ViaSend<'_>) -> Result<(), (u8, String)> {
    if v.paths.is_empty() {
        return Err((
            EXIT_USAGE,
            "--via-rgtp needs at least one file or directory".into(),
        ));
    }
    let addrs: Vec<std::net::SocketAddr> = std::net::ToSocketAddrs::to_socket_addrs(v.to)
        .map_err(|e| (EXIT_USAGE, format!("{}: {e}", v.to)))?
        .collect();
    let link = TcpLink::connect(&addrs[..], Duration::from_secs(10))
        .map_err(|e| (EXIT_IO, format!("connecting to {}: {e}", v.to)))?;
    // The set is served from the address this connection leaves from: the
    // receiver reaches it as it reaches us.
    let ip = link.local_addr().ip();
    let mut argv = vec!["send".into()];
    argv.extend(v.paths.iter().map(|p| p.clone().into_os_string()));
    argv.extend(["--port", "0", "--bind", &ip.to_string(), "--quiet"].map(Into::into));
    let send_args = SendWrap::try_parse_from(argv)
        .map_err(|e| (EXIT_USAGE, e.to_string()))?
        .a;
    let Prepared {
        mut router,
        link: mut udp,
        ticket,
        files,
        bytes,
        ..
    } = files_cmd::prepare(&send_args)?;
    let udp_addr = udp.local_addr();
    let label = v.paths[0]
        .file_name()
        .map_or_else(|| "set".to_string(), |n| n.to_string_lossy().into_owned());
    eprintln!(
        "exposed {files} files ({bytes} bytes) on udp {udp_addr}; sending the ticket to {}",
        v.to
    );

    let stop = Arc::new(AtomicBool::new(false));
    let served = Arc::new(AtomicU64::new(0));
    let server = {
        let (stop, served) = (stop.clone(), served.clone());
        std::thread::spawn(move || {
            rgtp::driver::serve(&mut router, &mut udp, &Clock::new(), &stop, |r| {
                served.store(r.stats().bytes_out, Ordering::Relaxed)
            })
        })
    };
    let finish = |r: Result<(), (u8, String)>| {
        stop.store(true, Ordering::Relaxed);
        let _ = server.join();
        eprintln!("served {} bytes over RGTP", served.load(Ordering::Relaxed));
        r
    };

    let mut driver = StreamDriver::new(link);
    // No idle timeout on the connection: it is quiet while the receiver pulls.
    let mut conn = Connection::new(Config::default(), driver.clock().now());
    let frame = OutFrame {
        status: STATUS_RGTP_TICKETS,
        files: vec![OutFile::bytes(label, ticket.to_string().into_bytes())],
        message: v.message.to_vec(),
    };
    if let Err(e) = conn.send_frame(frame) {
        return finish(Err((EXIT_USAGE, e.to_string())));
    }
    let mut app = AnswerApp::default();
    let (mut last_served, mut progress) = (0u64, StdInstant::now());
    while app.answer.is_none() {
        match driver.turn(&mut conn, &mut app, Duration::from_millis(100)) {
            Ok(Turn::Done(())) => break,
            Ok(_) => {}
            Err(e) => return finish(Err((EXIT_IO, format!("connection to {}: {e}", v.to)))),
        }
        let s = served.load(Ordering::Relaxed);
        if s != last_served {
            (last_served, progress) = (s, StdInstant::now());
        }
        if let Some(t) = app.last_event {
            progress = progress.max(t);
        }
        if progress.elapsed() > v.timeout {
            return finish(Err((
                EXIT_TIMEOUT,
                format!(
                    "the receiver neither pulled nor answered for {} s (is udp {udp_addr} \
                     reachable from it?)",
                    v.timeout.as_secs()
                ),
            )));
        }
    }
    let answer = match app.answer {
        Some(Ok(m)) => m,
        Some(Err(e)) => return finish(Err(e)),
        None => return finish(Err((EXIT_IO, "the connection ended".into()))),
    };
    finish(verdict(&answer))
}

/// Reads the receiver's answer: success when every ticket was pulled.
fn verdict(answer: &[u8]) -> Result<(), (u8, String)> {
    let results: Vec<serde_json::Value> = serde_json::from_slice(answer).map_err(|e| {
        (
            EXIT_PROTOCOL,
            format!("the receiver's answer is not the JSON array spec/tej.md §5 defines: {e}"),
        )
    })?;
    let mut failed = None;
    for r in &results {
        let name = r["name"].as_str().unwrap_or("?");
        if r["ok"].as_bool() == Some(true) {
            eprintln!(
                "{name}: pulled by the receiver, {} files, {} bytes in {:.2} s, saved as {}",
                r["files"],
                r["bytes"],
                r["seconds"].as_f64().unwrap_or(0.0),
                r["saved_as"]
            );
        } else {
            let e = r["error"].as_str().unwrap_or("no reason given");
            eprintln!("{name}: the receiver failed: {e}");
            failed.get_or_insert(format!("{name}: {e}"));
        }
    }
    match (failed, results.is_empty()) {
        (Some(e), _) => Err((EXIT_PROTOCOL, format!("the receiver did not get it: {e}"))),
        (None, true) => Err((EXIT_PROTOCOL, "the receiver answered for no ticket".into())),
        (None, false) => Ok(()),
    }
}
