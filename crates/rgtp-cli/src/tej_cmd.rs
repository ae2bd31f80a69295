//! `rgtp tej`: serve and send TEJ (tej-protoc v1) frames over TCP.
//!
//! - `rgtp tej serve --bind HOST:PORT [--dir DIR] [--echo]` accepts any
//!   number of connections, one thread each, and prints one line per frame
//!   received. With `--dir` it stores each file under DIR as it arrives,
//!   under a name made safe (see [`redgiant_tej::blocking::safe_name`]); with `--echo` it sends every
//!   frame back unchanged, piece by piece as it arrives, holding at most
//!   `--echo-backlog-mib` of echo the peer has not read. A connection that
//!   breaks the protocol, stays idle or lets its echo pile up is closed; the
//!   server goes on.
//! - `rgtp tej send --to HOST:PORT [FILE…] [-m MESSAGE] [--status N]` sends
//!   one frame (or `--repeat` of them, pipelined) with the files read as the
//!   socket takes them; `--expect-echo` waits for every frame to come back
//!   and checks each byte for byte (SHA-256 of the frame as sent and as
//!   echoed).
//! - `rgtp tej send --via-rgtp PATH…` sends RGTP tickets instead of file bytes
//!   and `rgtp tej serve --dir DIR` pulls what they name (see [`crate::tej_via`]).

use std::fs::File;
use std::io::{self, IsTerminal, Read, Write};
use std::net::{SocketAddr, TcpListener};
use std::path::PathBuf;
use std::sync::atomic::AtomicBool;
use std::sync::Arc;
use std::time::{Duration, Instant as StdInstant};

use indicatif::{ProgressBar, ProgressStyle};
use redgiant_base::driver::{Application, StreamDriver, Turn};
use redgiant_base::SystemClock;
use redgiant_tej::blocking::{create_unique, safe_name};
use redgiant_tej::wire::{self, Limits, STATUS_RGTP_RESULT, STATUS_RGTP_TICKETS};
use redgiant_tej::{Config, Connection, Event, OutFile, OutFrame};
use rgtp_link::tcp::TcpLink;
use sha2::{Digest, Sha256};

use crate::tej_via::{Receiver, TicketFrame, ViaSend};

/// Exit statuses, as the rest of the command uses them.
const EXIT_USAGE: u8 = 2;
const EXIT_TIMEOUT: u8 = 3;
const EXIT_IO: u8 = 6;
const EXIT_PROTOCOL: u8 = 7;

/// A failure: exit status and message.
pub type TejResult = Result<(), (u8, String)>;

/// `rgtp tej`.
#[derive(clap::Args, Debug)]
pub struct TejArgs {
    #[command(subcommand)]
    command: TejCommand,
}

#[derive(clap::Subcommand, Debug)]
enum TejCommand {
    /// Accept TEJ connections: store received files under --dir, echo frames back with --echo.
    Serve(ServeArgs),
    /// Send FILEs and a message as one TEJ frame (or --repeat frames, pipelined).
    Send(SendArgs),
}

#[derive(clap::Args, Debug)]
struct ServeArgs {
    /// Address to listen on (port 0: any; the address is printed).
    #[arg(long)]
    bind: String,
    /// Store received files here (names made safe; never overwrites).
    #[arg(long)]
    dir: Option<PathBuf>,
    /// Send every frame back unchanged.
    #[arg(long)]
    echo: bool,
    /// With --echo: close a connection whose peer leaves more than this many MiB of
    /// echoed bytes unread.
    #[arg(long, default_value_t = 256)]
    echo_backlog_mib: u64,
    /// Close a connection after this many seconds with no byte either way (0: never).
    #[arg(long, default_value_t = 300)]
    idle_timeout: u64,
    /// Most files in one frame.
    #[arg(long, default_value_t = 1 << 16)]
    max_files: u64,
    /// Longest file name, in UTF-8 bytes.
    #[arg(long, default_value_t = 1024)]
    max_name_len: u16,
    /// Longest message, in bytes.
    #[arg(long, default_value_t = 16 << 20)]
    max_message: u64,
    /// Pull what RGTP tickets name even when the ticket's host is not the peer that
    /// sent it (by default refused: a peer could otherwise make this server send
    /// requests to a third host).
    #[arg(long)]
    pull_from_any_host: bool,
}

#[derive(clap::Args, Debug)]
struct SendArgs {
    /// Server address.
    #[arg(long)]
    to: String,
    /// Files to send (each under its file name).
    files: Vec<PathBuf>,
    /// The frame's message.
    #[arg(short, long, default_value = "")]
    message: String,
    /// Custom status, 0 to 127 (2 is a ping).
    #[arg(long, default_value_t = 1)]
    status: u8,
    /// Send the frame this many times, back to back.
    #[arg(long, default_value_t = 1)]
    repeat: u64,
    /// Wait for every frame to be echoed and check it byte for byte.
    #[arg(long)]
    expect_echo: bool,
    /// Give up after this many seconds with no byte either way (with --via-rgtp: in
    /// which the receiver neither pulled nor answered).
    #[arg(long, default_value_t = 60)]
    timeout: u64,
    /// Send RGTP tickets instead of the bytes: the FILEs (and directories) are served
    /// over RGTP from this host and the receiver pulls them, every chunk verified
    /// (spec/tej.md §5; the receiver must be `rgtp tej serve --dir DIR`).
    #[arg(long, conflicts_with_all = ["expect_echo", "repeat", "status"])]
    via_rgtp: bool,
}

/// Runs `rgtp tej …`.
pub fn run(args: TejArgs) -> TejResult {
    match args.command {
        TejCommand::Serve(a) => serve(a),
        TejCommand::Send(a) => send(a),
    }
}

fn seconds(s: u64) -> Option<Duration> {
    (s > 0).then(|| Duration::from_secs(s))
}

fn serve(a: ServeArgs) -> TejResult {
    if let Some(dir) = &a.dir {
        std::fs::create_dir_all(dir).map_err(|e| (EXIT_IO, format!("{}: {e}", dir.display())))?;
    }
    let listener =
        TcpListener::bind(&a.bind).map_err(|e| (EXIT_USAGE, format!("binding {}: {e}", a.bind)))?;
    let local = listener
        .local_addr()
        .map_err(|e| (EXIT_IO, e.to_string()))?;
    println!("listening on {local}");
    let config = Config {
        limits: Limits {
            max_files: a.max_files,
            max_name_len: a.max_name_len,
            max_message: a.max_message,
            stream_message: false,
        },
        idle_timeout: seconds(a.idle_timeout),
        ..Config::default()
    };
    let dir = a.dir.map(Arc::new);
    for stream in listener.incoming() {
        let stream = match stream {
            Ok(s) => s,
            Err(e) => {
                eprintln!("rgtp: accept: {e}");
                std::thread::sleep(Duration::from_millis(50));
                continue;
            }
        };
        let dir = dir.clone();
        let echo = a.echo.then_some(a.echo_backlog_mib << 20);
        let any_host = a.pull_from_any_host;
        std::thread::spawn(move || {
            let peer = stream
                .peer_addr()
                .map_or_else(|_| "?".to_string(), |p| p.to_string());
            let link = match TcpLink::from_stream(stream) {
                Ok(l) => l,
                Err(e) => return eprintln!("rgtp: {peer}: {e}"),
            };
            let receiver = Receiver {
                dir: dir.clone(),
                peer_ip: Some(link.peer_addr().ip()),
                any_host,
            };
            let mut driver = StreamDriver::new(link);
            let mut app = ServeApp::new(peer.clone(), dir, echo, receiver, *driver.clock());
            let mut conn = Connection::new(config, driver.clock().now());
            let r = driver.run(&mut conn, &mut app, &AtomicBool::new(false), |_, _| {});
            app.abandon_file();
            match r {
                Ok(_) => eprintln!("rgtp: {peer}: closed after {} frames", conn.frames_in()),
                Err(e) => eprintln!("rgtp: {peer}: {e} (after {} frames)", conn.frames_in()),
            }
        });
    }
    Ok(())
}

/// The server's side of one connection.
struct ServeApp {
    peer: String,
    dir: Option<Arc<PathBuf>>,
    /// Echo, with the most unread echoed bytes allowed.
    echo: Option<u64>,
    file: Option<(io::BufWriter<File>, PathBuf)>,
    names: Vec<String>,
    status: u8,
    message: Vec<u8>,
    /// How RGTP tickets are pulled, and the ticket frame under way.
    receiver: Receiver,
    tickets: Option<TicketFrame>,
    /// The driver's clock.
    clock: SystemClock,
}

impl ServeApp {
    fn new(
        peer: String,
        dir: Option<Arc<PathBuf>>,
        echo: Option<u64>,
        receiver: Receiver,
        clock: SystemClock,
    ) -> Self {
        ServeApp {
            peer,
            dir,
            echo,
            file: None,
            names: Vec::new(),
            status: 0,
            message: Vec::new(),
            receiver,
            tickets: None,
            clock,
        }
    }

    /// Removes a file left incomplete.
    fn abandon_file(&mut self) {
        if let Some((f, path)) = self.file.take() {
            drop(f);
            let _ = std::fs::remove_file(&path);
            eprintln!("rgtp: {}: removed incomplete {}", self.peer, path.display());
        }
    }
}

impl Application<Connection> for ServeApp {
    type Output = ();
    type Error = io::Error;

    fn deliver(&mut self, d: core::convert::Infallible) -> io::Result<()> {
        match d {}
    }

    fn event(&mut self, conn: &mut Connection, ev: Event) -> io::Result<Option<()>> {
        if let Some(backlog) = self.echo {
            conn.forward(&ev)
                .map_err(|e| io::Error::new(io::ErrorKind::InvalidData, e))?;
            if conn.queued() > backlog {
                eprintln!(
                    "rgtp: {}: more than {backlog} echoed bytes unread; closing",
                    self.peer
                );
                return Ok(Some(()));
            }
        }
        match ev {
            Event::FrameStart { status, .. } => {
                self.status = status;
                self.names.clear();
                if status == STATUS_RGTP_TICKETS && self.echo.is_none() {
                    self.tickets = Some(TicketFrame::default());
                }
            }
            Event::FileStart { name, len } if self.tickets.is_some() => {
                self.names.push(name.clone());
                if let Some(t) = &mut self.tickets {
                    t.file_start(name, len);
                }
            }
            Event::FileData(d) if self.tickets.is_some() => {
                if let Some(t) = &mut self.tickets {
                    t.file_data(&d);
                }
            }
            Event::FileEnd if self.tickets.is_some() => {
                if let Some(t) = &mut self.tickets {
                    t.file_end();
                }
            }
            Event::FileStart { name, .. } => {
                if let Some(dir) = &self.dir {
                    let (f, path) = create_unique(dir, &safe_name(&name))?;
                    self.names.push(path.display().to_string());
                    self.file = Some((io::BufWriter::with_capacity(1 << 20, f), path));
                } else {
                    self.names.push(name);
                }
            }
            Event::FileData(d) => {
                if let Some((f, _)) = &mut self.file {
                    f.write_all(&d)?;
                }
            }
            Event::FileEnd => {
                if let Some((mut f, _)) = self.file.take() {
                    f.flush()?;
                }
            }
            Event::Message(m) => self.message = m,
            Event::FrameEnd { .. } if self.tickets.is_some() => {
                let frame = self.tickets.take().expect("checked");
                println!(
                    "tickets from {}: {} [{}], message {} bytes: {}; pulling",
                    self.peer,
                    self.names.len(),
                    self.names.join(", "),
                    self.message.len(),
                    hex::encode(&self.message)
                );
                let answer = self.receiver.pull_all(frame);
                println!(
                    "pulled for {}: {}",
                    self.peer,
                    String::from_utf8_lossy(&answer)
                );
                // The pulls took their time; the connection was not idle meanwhile.
                conn.restart_idle(self.clock.now());
                conn.send_frame(OutFrame {
                    status: STATUS_RGTP_RESULT,
                    files: Vec::new(),
                    message: answer,
                })
                .map_err(|e| io::Error::new(io::ErrorKind::InvalidData, e))?;
            }
            Event::FrameEnd { .. } => {
                println!(
                    "frame from {}: status {}, {} files [{}], message {} bytes: {}",
                    self.peer,
                    self.status,
                    self.names.len(),
                    self.names.join(", "),
                    self.message.len(),
                    hex::encode(&self.message)
                );
            }
            Event::ProtocolError(e) => {
                eprintln!("rgtp: {}: protocol error: {e}; closing", self.peer);
                return Ok(Some(()));
            }
            Event::IdleTimeout => {
                eprintln!("rgtp: {}: idle, closing", self.peer);
                return Ok(Some(()));
            }
            Event::Closed { error: true, .. } => return Ok(Some(())),
            Event::Closed {
                mid_frame: true, ..
            } => {
                // The frame can never be finished (nor its echo): the connection is over.
                eprintln!("rgtp: {}: the stream ended inside a frame", self.peer);
                return Ok(Some(()));
            }
            Event::Finished => return Ok(Some(())),
            _ => {}
        }
        Ok(None)
    }
}

/// The frame `send` builds, once per repeat.
struct Plan {
    status: u8,
    files: Vec<(String, PathBuf, u64)>,
    message: Vec<u8>,
    /// Bytes of one frame on the wire.
    frame_len: u64,
}

impl Plan {
    fn new(a: &SendArgs) -> Result<Plan, (u8, String)> {
        if a.status > 127 {
            return Err((EXIT_USAGE, format!("--status {}: 0 to 127", a.status)));
        }
        let mut files = Vec::new();
        let mut frame_len = 10 + 8 + a.message.len() as u64;
        for path in &a.files {
            let name = path
                .file_name()
                .and_then(|n| n.to_str())
                .ok_or_else(|| {
                    (
                        EXIT_USAGE,
                        format!("{}: no UTF-8 file name", path.display()),
                    )
                })?
                .to_string();
            if name.len() > wire::MAX_NAME_LEN {
                return Err((EXIT_USAGE, format!("{name}: a name is at most 65535 bytes")));
            }
            let len = std::fs::metadata(path)
                .map_err(|e| (EXIT_IO, format!("{}: {e}", path.display())))?
                .len();
            frame_len += 2 + name.len() as u64 + 8 + len;
            files.push((name, path.clone(), len));
        }
        Ok(Plan {
            status: a.status,
            files,
            message: a.message.clone().into_bytes(),
            frame_len,
        })
    }

    fn frame(&self) -> io::Result<OutFrame> {
        let mut files = Vec::new();
        for (name, path, len) in &self.files {
            let f = File::open(path)?;
            files.push(OutFile::reader(name.clone(), *len, f));
        }
        Ok(OutFrame {
            status: self.status,
            files,
            message: self.message.clone(),
        })
    }

    /// SHA-256 of one frame as it goes on the wire (reads the files once).
    fn digest(&self) -> io::Result<[u8; 32]> {
        let mut h = Sha256::new();
        let mut head = Vec::new();
        wire::emit_frame_header(self.status, self.files.len() as u64, &mut head)
            .map_err(|e| io::Error::new(io::ErrorKind::InvalidInput, e))?;
        h.update(&head);
        let mut buf = vec![0u8; 1 << 20];
        for (name, path, len) in &self.files {
            head.clear();
            wire::emit_file_header(name, *len, &mut head)
                .map_err(|e| io::Error::new(io::ErrorKind::InvalidInput, e))?;
            h.update(&head);
            let mut f = File::open(path)?.take(*len);
            loop {
                match f.read(&mut buf)? {
                    0 => break,
                    n => h.update(&buf[..n]),
                }
            }
        }
        h.update((self.message.len() as u64).to_be_bytes());
        h.update(&self.message);
        Ok(h.finalize().into())
    }
}

/// The sender's side: checks echoed frames against the digest.
struct SendApp {
    want: Option<[u8; 32]>,
    frames: u64,
    hasher: Sha256,
    echoed: u64,
    mismatch: Option<u64>,
    done_sending: bool,
    outcome: Option<Result<(), (u8, String)>>,
}

impl Application<Connection> for SendApp {
    type Output = ();
    type Error = io::Error;

    fn deliver(&mut self, d: core::convert::Infallible) -> io::Result<()> {
        match d {}
    }

    fn event(&mut self, _: &mut Connection, ev: Event) -> io::Result<Option<()>> {
        let mut bytes = Vec::new();
        ev.wire_bytes(&mut bytes);
        self.hasher.update(&bytes);
        let end = |app: &mut Self, r: Result<(), (u8, String)>| {
            app.outcome.get_or_insert(r);
            Ok(Some(()))
        };
        match ev {
            Event::FrameEnd { .. } => {
                let got: [u8; 32] = std::mem::take(&mut self.hasher).finalize().into();
                if self.want.is_some_and(|w| w != got) && self.mismatch.is_none() {
                    self.mismatch = Some(self.echoed);
                }
                self.echoed += 1;
                if self.want.is_some() && self.echoed == self.frames {
                    return end(self, self.verdict());
                }
            }
            Event::ProtocolError(e) => {
                return end(
                    self,
                    Err((EXIT_PROTOCOL, format!("the server broke the protocol: {e}"))),
                )
            }
            Event::SendFailed(m) => return end(self, Err((EXIT_IO, m))),
            Event::IdleTimeout => {
                return end(self, Err((EXIT_TIMEOUT, "no progress: timed out".into())))
            }
            Event::Finished => {
                self.done_sending = true;
            }
            Event::Closed { error, .. } => {
                if self.want.is_some() {
                    let r = match error {
                        true => Err((EXIT_IO, "the connection broke".into())),
                        false => self.verdict(),
                    };
                    return end(self, r);
                }
                if !self.done_sending {
                    return end(
                        self,
                        Err((
                            EXIT_IO,
                            "the server closed before the frames were out".into(),
                        )),
                    );
                }
                return end(self, Ok(()));
            }
            _ => {}
        }
        Ok(None)
    }
}

impl SendApp {
    fn verdict(&self) -> Result<(), (u8, String)> {
        if let Some(i) = self.mismatch {
            return Err((
                EXIT_PROTOCOL,
                format!("echoed frame {i} differs from the frame sent"),
            ));
        }
        if self.echoed != self.frames {
            return Err((
                EXIT_PROTOCOL,
                format!("{} of {} frames echoed", self.echoed, self.frames),
            ));
        }
        Ok(())
    }
}

fn send(a: SendArgs) -> TejResult {
    if a.via_rgtp {
        return crate::tej_via::send(ViaSend {
            to: &a.to,
            paths: &a.files,
            message: a.message.as_bytes(),
            timeout: Duration::from_secs(a.timeout.max(1)),
        });
    }
    let plan = Plan::new(&a)?;
    let addr: Vec<SocketAddr> = std::net::ToSocketAddrs::to_socket_addrs(&a.to)
        .map_err(|e| (EXIT_USAGE, format!("{}: {e}", a.to)))?
        .collect();
    let want = match a.expect_echo {
        true => Some(plan.digest().map_err(|e| (EXIT_IO, e.to_string()))?),
        false => None,
    };
    let link = TcpLink::connect(&addr[..], Duration::from_secs(10))
        .map_err(|e| (EXIT_IO, format!("connecting to {}: {e}", a.to)))?;
    let config = Config {
        idle_timeout: seconds(a.timeout),
        ..Config::default()
    };
    let mut driver = StreamDriver::new(link);
    let mut conn = Connection::new(config, driver.clock().now());
    let mut app = SendApp {
        want,
        frames: a.repeat,
        hasher: Sha256::new(),
        echoed: 0,
        mismatch: None,
        done_sending: false,
        outcome: None,
    };
    let total = plan.frame_len.saturating_mul(a.repeat);
    // Frames are queued as the socket drains, so at most one frame's readers are open.
    let mut queued_frames = 0u64;
    let bar = std::io::stderr().is_terminal().then(|| {
        let bar = ProgressBar::new(total);
        bar.set_style(
            ProgressStyle::with_template(
                "{bar:40} {bytes}/{total_bytes} {binary_bytes_per_sec} {msg}",
            )
            .expect("template"),
        );
        bar
    });
    let start = StdInstant::now();
    let mut sent_frames_bytes = 0u64;
    loop {
        while queued_frames < a.repeat && conn.queued() < 4 << 20 {
            let frame = plan.frame().map_err(|e| (EXIT_IO, e.to_string()))?;
            conn.send_frame(frame)
                .map_err(|e| (EXIT_USAGE, e.to_string()))?;
            queued_frames += 1;
            sent_frames_bytes += plan.frame_len;
            if queued_frames == a.repeat {
                conn.close();
            }
        }
        if a.repeat == 0 {
            conn.close();
        }
        let r = driver.turn(&mut conn, &mut app, Duration::from_millis(100));
        if let Some(bar) = &bar {
            bar.set_position(sent_frames_bytes - conn.queued());
            bar.set_message(format!("{} echoed", app.echoed));
        }
        match r {
            Ok(Turn::Done(())) => break,
            Ok(_) => {}
            Err(e) => {
                app.outcome
                    .get_or_insert(Err((EXIT_IO, format!("connection to {}: {e}", a.to))));
                break;
            }
        }
    }
    if let Some(bar) = bar {
        bar.finish_and_clear();
    }
    let secs = start.elapsed().as_secs_f64();
    let outcome = app.outcome.take().unwrap_or(Ok(()));
    if outcome.is_ok() {
        eprintln!(
            "sent {} frames, {} bytes in {:.3} s ({:.1} MB/s){}",
            a.repeat,
            total,
            secs,
            total as f64 / secs.max(1e-9) / 1e6,
            match a.expect_echo {
                true => format!("; {} echoed frames verified", app.echoed),
                false => String::new(),
            }
        );
    }
    outcome
}
