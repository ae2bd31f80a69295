//! Blocking TEJ over TCP, used like [`std::net::TcpStream`].
//!
//! [`TejStream`] runs the sans-IO [`Connection`] with the stack's stream
//! driver over a TCP link on the system clock. It has no thread of its own:
//! the connection moves only inside its calls.
//!
//! - Sending ([`TejStream::send_frame`], [`TejStream::send_files`],
//!   [`TejStream::send_bytes`], [`TejStream::ping`]) returns once every byte
//!   of the frame was handed to the socket. Files given as readers are read
//!   piece by piece as the socket takes them, never whole.
//! - Receiving ([`TejStream::recv`]) hands one frame's files to a
//!   [`FrameSink`] as their bytes arrive: [`DirSink`] writes them under a
//!   directory, [`MemorySink`] keeps them in memory up to a cap.
//!   [`TejStream::recv_frame`] is the short form for small frames. Ping
//!   frames are counted ([`TejStream::pings_received`]) and skipped.
//!
//! While a send waits for the socket, frames the peer sends meanwhile are
//! read and held for the next [`TejStream::recv`] (so two peers sending to
//! each other at once never deadlock), up to [`HOLD_LIMIT`] bytes; beyond
//! that the send fails.
//!
//! # Errors
//!
//! A peer breaking the protocol gives [`io::ErrorKind::InvalidData`] naming
//! the problem, and the connection is over (every later call fails the same
//! way). A clean close between frames is `Ok(None)` from `recv`; a close
//! inside a frame is [`io::ErrorKind::UnexpectedEof`]. A read timeout
//! ([`TejStream::set_read_timeout`]) is [`io::ErrorKind::TimedOut`]; the
//! connection goes on, and a frame begun continues with the next `recv` (pass
//! the same sink). An error from the sink ends that frame for the sink (its
//! [`FrameSink::abort`] is called and the rest of the frame is skipped) but
//! not the connection.

use std::collections::VecDeque;
use std::convert::Infallible;
use std::fs::{File, OpenOptions};
use std::io::{self, BufWriter, Write};
use std::net::{SocketAddr, TcpStream, ToSocketAddrs};
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use redgiant_base::driver::{Application, StreamDriver, Turn};
use rgtp_link::tcp::{TcpLink, TcpLinkListener};

use crate::endpoint::{Config, Connection, Event, OutFile, OutFrame};
use crate::wire::STATUS_PING;

/// Most bytes of the peer's frames held while a send waits for the socket.
pub const HOLD_LIMIT: u64 = 64 << 20;

/// How long [`TejStream::connect`] tries each address.
const CONNECT_TIMEOUT: Duration = Duration::from_secs(10);

/// Longest wait of one driver turn inside a call.
const SLICE: Duration = Duration::from_millis(50);

/// Where [`TejStream::recv`] puts a frame's files as they arrive.
///
/// Calls come in stream order: `frame_start`, then for each file
/// `file_start`, any number of `file_data`, `file_end`. An error from any
/// call ends the frame for the sink: [`FrameSink::abort`] follows and the
/// rest of the frame is skipped.
pub trait FrameSink {
    /// A frame begins with `file_count` files.
    fn frame_start(&mut self, status: u8, file_count: u64) -> io::Result<()> {
        let _ = (status, file_count);
        Ok(())
    }

    /// A file begins: `name` as the peer sent it (untrusted, not a path),
    /// `len` bytes follow.
    fn file_start(&mut self, name: &str, len: u64) -> io::Result<()>;

    /// The next bytes of the current file.
    fn file_data(&mut self, data: &[u8]) -> io::Result<()>;

    /// The current file is complete.
    fn file_end(&mut self) -> io::Result<()>;

    /// The frame will not be completed (an error here or on the connection):
    /// undo what is partial.
    fn abort(&mut self) {}
}

/// A received file, as the frame declared it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FileInfo {
    /// Its name as sent (untrusted).
    pub name: String,
    /// Its length in bytes.
    pub len: u64,
}

/// A frame received through a [`FrameSink`]: everything but the file bytes.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct FrameInfo {
    /// The 7-bit custom status.
    pub status: u8,
    /// Its files, in order.
    pub files: Vec<FileInfo>,
    /// Its message.
    pub message: Vec<u8>,
}

/// A frame received whole into memory ([`TejStream::recv_frame`]).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Frame {
    /// The 7-bit custom status.
    pub status: u8,
    /// Its files as (name as sent, bytes), in order.
    pub files: Vec<(String, Vec<u8>)>,
    /// Its message.
    pub message: Vec<u8>,
}

/// A [`FrameSink`] keeping one frame's files in memory, refusing a frame
/// whose files add up to more than a cap.
#[derive(Debug, Clone, Default)]
pub struct MemorySink {
    cap: u64,
    held: u64,
    files: Vec<(String, Vec<u8>)>,
}

impl MemorySink {
    /// A sink holding at most `cap` bytes of files per frame.
    pub fn new(cap: u64) -> Self {
        MemorySink {
            cap,
            held: 0,
            files: Vec::new(),
        }
    }

    /// The files of the last frame received.
    pub fn files(&self) -> &[(String, Vec<u8>)] {
        &self.files
    }

    /// Takes the files of the last frame received.
    pub fn take(&mut self) -> Vec<(String, Vec<u8>)> {
        self.held = 0;
        std::mem::take(&mut self.files)
    }
}

impl FrameSink for MemorySink {
    fn frame_start(&mut self, _: u8, _: u64) -> io::Result<()> {
        self.take();
        Ok(())
    }

    fn file_start(&mut self, name: &str, len: u64) -> io::Result<()> {
        let total = self.held.saturating_add(len);
        if total > self.cap {
            return Err(io::Error::new(
                io::ErrorKind::InvalidData,
                format!(
                    "file {name:?} of {len} bytes brings the frame to {total} bytes, \
                     over the {} byte memory cap",
                    self.cap
                ),
            ));
        }
        self.held = total;
        // The declared length is the peer's word: reserve little up front.
        let reserve = usize::try_from(len.min(1 << 20)).unwrap_or(0);
        self.files
            .push((name.to_owned(), Vec::with_capacity(reserve)));
        Ok(())
    }

    fn file_data(&mut self, data: &[u8]) -> io::Result<()> {
        match self.files.last_mut() {
            Some((_, bytes)) => {
                bytes.extend_from_slice(data);
                Ok(())
            }
            None => Err(io::Error::other("file bytes before any file")),
        }
    }

    fn file_end(&mut self) -> io::Result<()> {
        Ok(())
    }

    fn abort(&mut self) {
        self.take();
    }
}

/// A [`FrameSink`] writing each file under one directory as it arrives, under
/// its name made safe ([`safe_name`]); a name already taken gets `-1`, `-2`…
/// before its extension, so no file is ever overwritten. A file left
/// incomplete is removed.
#[derive(Debug)]
pub struct DirSink {
    dir: PathBuf,
    open: Option<(BufWriter<File>, PathBuf)>,
    saved: Vec<PathBuf>,
}

impl DirSink {
    /// A sink writing under `dir` (created if missing).
    pub fn new(dir: impl Into<PathBuf>) -> io::Result<Self> {
        let dir = dir.into();
        std::fs::create_dir_all(&dir)
            .map_err(|e| io::Error::new(e.kind(), format!("{}: {e}", dir.display())))?;
        Ok(DirSink {
            dir,
            open: None,
            saved: Vec::new(),
        })
    }

    /// The directory.
    pub fn dir(&self) -> &Path {
        &self.dir
    }

    /// Where the files of the last frame were saved, in frame order.
    pub fn saved(&self) -> &[PathBuf] {
        &self.saved
    }
}

impl FrameSink for DirSink {
    fn frame_start(&mut self, _: u8, _: u64) -> io::Result<()> {
        self.saved.clear();
        Ok(())
    }

    fn file_start(&mut self, name: &str, _: u64) -> io::Result<()> {
        let (file, path) = create_unique(&self.dir, &safe_name(name))?;
        self.saved.push(path.clone());
        self.open = Some((BufWriter::with_capacity(1 << 20, file), path));
        Ok(())
    }

    fn file_data(&mut self, data: &[u8]) -> io::Result<()> {
        match &mut self.open {
            Some((f, path)) => f
                .write_all(data)
                .map_err(|e| io::Error::new(e.kind(), format!("{}: {e}", path.display()))),
            None => Err(io::Error::other("file bytes before any file")),
        }
    }

    fn file_end(&mut self) -> io::Result<()> {
        match self.open.take() {
            Some((mut f, path)) => f
                .flush()
                .map_err(|e| io::Error::new(e.kind(), format!("{}: {e}", path.display()))),
            None => Ok(()),
        }
    }

    fn abort(&mut self) {
        if let Some((f, path)) = self.open.take() {
            drop(f);
            let _ = std::fs::remove_file(&path);
            self.saved.retain(|p| p != &path);
        }
    }
}

/// Makes a name sent by a peer safe to create inside one directory: `/`,
/// `\`, `:` and control characters become `_`; a dot that starts the name or
/// follows another dot becomes `_` (no `.`, `..`, hidden file or `..` inside);
/// a blank name becomes `unnamed`; the result is cut to at most 200 bytes.
pub fn safe_name(name: &str) -> String {
    let mut out = String::with_capacity(name.len().min(200));
    let mut prev_dot = true;
    for c in name.chars() {
        let was_dot = c == '.';
        let c = match c {
            '/' | '\\' | ':' => '_',
            c if c.is_control() => '_',
            '.' if prev_dot => '_',
            c => c,
        };
        prev_dot = was_dot;
        if out.len() + c.len_utf8() > 200 {
            break;
        }
        out.push(c);
    }
    if out.trim().is_empty() {
        out = "unnamed".to_owned();
    }
    out
}

/// Creates `dir/name`, or `dir/stem-N.ext` for the first free N (before the
/// extension); never opens an existing file.
pub fn create_unique(dir: &Path, name: &str) -> io::Result<(File, PathBuf)> {
    let (stem, ext) = match name.rfind('.') {
        Some(i) if i > 0 => name.split_at(i),
        _ => (name, ""),
    };
    let mut n = 0u32;
    loop {
        let path = match n {
            0 => dir.join(name),
            n => dir.join(format!("{stem}-{n}{ext}")),
        };
        match OpenOptions::new().write(true).create_new(true).open(&path) {
            Ok(f) => return Ok((f, path)),
            Err(e) if e.kind() == io::ErrorKind::AlreadyExists && n < 100_000 => n += 1,
            Err(e) => return Err(io::Error::new(e.kind(), format!("{}: {e}", path.display()))),
        }
    }
}

/// Bytes an event holds in memory.
fn held_bytes(ev: &Event) -> u64 {
    match ev {
        Event::FileData(d) | Event::MessageData(d) | Event::Message(d) => d.len() as u64,
        Event::FileStart { name, .. } => name.len() as u64,
        _ => 0,
    }
}

/// What the driver hands the stream: the connection's events, in order.
#[derive(Debug, Default)]
struct Inbox {
    events: VecDeque<Event>,
    held: u64,
    send_failed: Option<String>,
}

impl Inbox {
    fn pop(&mut self) -> Option<Event> {
        let ev = self.events.pop_front()?;
        self.held -= held_bytes(&ev);
        Some(ev)
    }
}

impl Application<Connection> for Inbox {
    type Output = ();
    type Error = io::Error;

    fn deliver(&mut self, d: Infallible) -> io::Result<()> {
        match d {}
    }

    fn event(&mut self, _: &mut Connection, ev: Event) -> io::Result<Option<()>> {
        match ev {
            Event::Finished => {}
            Event::SendFailed(m) => {
                self.send_failed.get_or_insert(m);
            }
            ev => {
                self.held += held_bytes(&ev);
                self.events.push_back(ev);
            }
        }
        // Over the limit, the rest waits in the connection until some is taken.
        Ok((self.held > HOLD_LIMIT).then_some(()))
    }
}

/// What one event means for a `recv` under way.
enum Step {
    More,
    Frame(FrameInfo),
    Closed,
}

/// One TEJ connection over TCP. See the [module docs](self).
pub struct TejStream {
    driver: StreamDriver<TcpLink>,
    conn: Connection,
    inbox: Inbox,
    read_timeout: Option<Duration>,
    /// The frame being received.
    current: Option<FrameInfo>,
    /// The rest of the current frame is skipped (a sink failed, or a ping).
    skipping: bool,
    pings: u64,
    /// The peer closed cleanly between frames.
    eof: bool,
    /// Why the connection is over, repeated by every later call.
    dead: Option<(io::ErrorKind, String)>,
}

impl std::fmt::Debug for TejStream {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TejStream")
            .field("peer", &self.peer_addr())
            .field("conn", &self.conn)
            .finish_non_exhaustive()
    }
}

impl TejStream {
    /// Connects to `addr` (each address it resolves to in turn, 10 s each).
    pub fn connect(addr: impl ToSocketAddrs, config: Config) -> io::Result<TejStream> {
        Ok(Self::from_link(
            TcpLink::connect(addr, CONNECT_TIMEOUT)?,
            config,
        ))
    }

    /// Runs TEJ on an established TCP connection.
    pub fn from_tcp(stream: TcpStream, config: Config) -> io::Result<TejStream> {
        Ok(Self::from_link(TcpLink::from_stream(stream)?, config))
    }

    fn from_link(link: TcpLink, config: Config) -> TejStream {
        let driver = StreamDriver::new(link);
        let conn = Connection::new(config, driver.clock().now());
        TejStream {
            driver,
            conn,
            inbox: Inbox::default(),
            read_timeout: None,
            current: None,
            skipping: false,
            pings: 0,
            eof: false,
            dead: None,
        }
    }

    /// This end's address.
    pub fn local_addr(&self) -> SocketAddr {
        self.driver.link().local_addr()
    }

    /// The peer's address.
    pub fn peer_addr(&self) -> SocketAddr {
        self.driver.link().peer_addr()
    }

    /// How long [`TejStream::recv`] waits for a frame to complete (`None`:
    /// for ever).
    pub fn set_read_timeout(&mut self, timeout: Option<Duration>) {
        self.read_timeout = timeout;
    }

    /// The read timeout.
    pub fn read_timeout(&self) -> Option<Duration> {
        self.read_timeout
    }

    /// Ping frames received so far.
    pub fn pings_received(&self) -> u64 {
        self.pings
    }

    /// True while a frame is partly received (a `recv` timed out inside it:
    /// the next `recv` goes on with it).
    pub fn in_frame(&self) -> bool {
        self.current.is_some()
    }

    /// Frames received whole so far (pings included).
    pub fn frames_received(&self) -> u64 {
        self.conn.frames_in()
    }

    fn check_alive(&self) -> io::Result<()> {
        match &self.dead {
            Some((kind, msg)) => Err(io::Error::new(*kind, msg.clone())),
            None => Ok(()),
        }
    }

    fn die(&mut self, kind: io::ErrorKind, msg: String) -> io::Error {
        self.dead.get_or_insert((kind, msg.clone()));
        io::Error::new(kind, msg)
    }

    /// One driver turn; a link error ends the connection.
    fn turn(&mut self, wait: Duration) -> io::Result<Turn<()>> {
        match self.driver.turn(&mut self.conn, &mut self.inbox, wait) {
            Ok(t) => Ok(t),
            Err(e) => Err(self.die(e.kind(), format!("connection to {}: {e}", self.peer_addr()))),
        }
    }

    /// Sends one frame; returns once all of it was handed to the socket.
    /// Files with a reader body are read as the socket takes their bytes.
    pub fn send_frame(&mut self, frame: OutFrame) -> io::Result<()> {
        self.check_alive()?;
        self.conn.send_frame(frame).map_err(|e| {
            io::Error::new(
                io::ErrorKind::InvalidInput,
                format!("frame cannot be sent: {e}"),
            )
        })?;
        self.flush()
    }

    /// Sends the files at `paths`, each under its file name, with `message`,
    /// in one frame. Each file is opened now and read as the socket takes it.
    pub fn send_files(
        &mut self,
        status: u8,
        paths: &[impl AsRef<Path>],
        message: &[u8],
    ) -> io::Result<()> {
        let mut files = Vec::with_capacity(paths.len());
        for p in paths {
            let p = p.as_ref();
            let name = p.file_name().and_then(|n| n.to_str()).ok_or_else(|| {
                io::Error::new(
                    io::ErrorKind::InvalidInput,
                    format!("{}: no UTF-8 file name to send it under", p.display()),
                )
            })?;
            let file = File::open(p)
                .map_err(|e| io::Error::new(e.kind(), format!("{}: {e}", p.display())))?;
            let len = file.metadata()?.len();
            files.push(OutFile::reader(name, len, file));
        }
        self.send_frame(OutFrame {
            status,
            files,
            message: message.to_vec(),
        })
    }

    /// Sends in-memory files (name, bytes) with `message` in one frame.
    pub fn send_bytes(
        &mut self,
        status: u8,
        files: &[(&str, &[u8])],
        message: &[u8],
    ) -> io::Result<()> {
        self.send_frame(OutFrame {
            status,
            files: files
                .iter()
                .map(|(name, data)| OutFile::bytes(*name, data.to_vec()))
                .collect(),
            message: message.to_vec(),
        })
    }

    /// Sends a ping frame (custom status 2). TEJ has no answer to it: the
    /// peer counts it ([`TejStream::pings_received`]).
    pub fn ping(&mut self) -> io::Result<()> {
        self.check_alive()?;
        self.conn
            .send_ping()
            .map_err(|e| io::Error::new(io::ErrorKind::InvalidInput, e.to_string()))?;
        self.flush()
    }

    /// Runs the connection until everything queued was handed to the socket.
    fn flush(&mut self) -> io::Result<()> {
        loop {
            if let Some(m) = self.inbox.send_failed.take() {
                return Err(self.die(io::ErrorKind::Other, format!("sending failed: {m}")));
            }
            if self.inbox.held > HOLD_LIMIT {
                return Err(io::Error::other(format!(
                    "the peer sent more than {HOLD_LIMIT} bytes of frames while ours was being \
                     sent; receive them before sending more"
                )));
            }
            let pending = match self.turn(Duration::from_millis(1))? {
                Turn::Done(()) => true,
                Turn::Continue { pending, .. } => pending,
            };
            if !pending && self.conn.queued() == 0 {
                return Ok(());
            }
        }
    }

    /// Receives the next frame, handing its files to `sink` as their bytes
    /// arrive. `Ok(None)` once the peer closed the connection between frames.
    pub fn recv(&mut self, sink: &mut impl FrameSink) -> io::Result<Option<FrameInfo>> {
        self.recv_into(sink)
    }

    /// [`TejStream::recv`] with a sink chosen at run time.
    pub fn recv_into(&mut self, sink: &mut dyn FrameSink) -> io::Result<Option<FrameInfo>> {
        let end = self.read_timeout.map(|t| Instant::now() + t);
        // Even a zero timeout reads what already arrived.
        let mut turned = false;
        loop {
            while let Some(ev) = self.inbox.pop() {
                match self.on_event(ev, sink)? {
                    Step::More => {}
                    Step::Frame(f) => return Ok(Some(f)),
                    Step::Closed => return Ok(None),
                }
            }
            if self.eof {
                return Ok(None);
            }
            if let Err(e) = self.check_alive() {
                self.abort_frame(sink);
                return Err(e);
            }
            let wait = match end {
                Some(end) => {
                    let left = end.saturating_duration_since(Instant::now());
                    if left.is_zero() && turned {
                        return Err(io::Error::new(
                            io::ErrorKind::TimedOut,
                            "no complete TEJ frame within the read timeout",
                        ));
                    }
                    left.min(SLICE)
                }
                None => SLICE,
            };
            turned = true;
            if let Err(e) = self.turn(wait) {
                // The events the connection left before breaking come first.
                if self.inbox.events.is_empty() {
                    self.abort_frame(sink);
                    return Err(e);
                }
            }
        }
    }

    /// Receives the next frame into memory, its files adding up to at most
    /// `limit` bytes (a larger frame is refused with
    /// [`io::ErrorKind::InvalidData`] and skipped).
    pub fn recv_frame(&mut self, limit: u64) -> io::Result<Option<Frame>> {
        let mut sink = MemorySink::new(limit);
        Ok(self.recv(&mut sink)?.map(|info| Frame {
            status: info.status,
            files: sink.take(),
            message: info.message,
        }))
    }

    fn abort_frame(&mut self, sink: &mut dyn FrameSink) {
        if self.current.take().is_some() && !self.skipping {
            sink.abort();
        }
        self.skipping = false;
    }

    /// Passes one event to the sink; a sink error skips the rest of the frame.
    fn on_event(&mut self, ev: Event, sink: &mut dyn FrameSink) -> io::Result<Step> {
        let to_sink = match ev {
            Event::FrameStart { status, file_count } => {
                self.current = Some(FrameInfo {
                    status,
                    files: Vec::new(),
                    message: Vec::new(),
                });
                // A ping carries nothing for the application.
                self.skipping = status == STATUS_PING;
                if self.skipping {
                    Ok(())
                } else {
                    sink.frame_start(status, file_count)
                }
            }
            Event::FileStart { name, len } => {
                let r = match self.skipping {
                    true => Ok(()),
                    false => sink.file_start(&name, len),
                };
                if let Some(f) = &mut self.current {
                    f.files.push(FileInfo { name, len });
                }
                r
            }
            Event::FileData(d) if !self.skipping => sink.file_data(&d),
            Event::FileEnd if !self.skipping => sink.file_end(),
            Event::FileData(_) | Event::FileEnd | Event::MessageStart { .. } | Event::Ping => {
                Ok(())
            }
            Event::Message(m) | Event::MessageData(m) => {
                if let Some(f) = &mut self.current {
                    f.message.extend_from_slice(&m);
                }
                Ok(())
            }
            Event::FrameEnd { status } => {
                let skipped = std::mem::take(&mut self.skipping);
                let frame = self.current.take().unwrap_or_default();
                if status == STATUS_PING {
                    self.pings += 1;
                }
                return Ok(match skipped {
                    true => Step::More,
                    false => Step::Frame(frame),
                });
            }
            Event::ProtocolError(e) => {
                self.abort_frame(sink);
                return Err(self.die(
                    io::ErrorKind::InvalidData,
                    format!("TEJ protocol error from {}: {e}", self.peer_addr()),
                ));
            }
            Event::IdleTimeout => {
                self.abort_frame(sink);
                return Err(self.die(
                    io::ErrorKind::TimedOut,
                    "nothing moved for the idle timeout; the connection is over".into(),
                ));
            }
            Event::SendFailed(m) => {
                self.abort_frame(sink);
                return Err(self.die(io::ErrorKind::Other, format!("sending failed: {m}")));
            }
            Event::Closed { error, mid_frame } => {
                let inside = mid_frame || self.current.is_some();
                self.abort_frame(sink);
                if inside {
                    return Err(self.die(
                        io::ErrorKind::UnexpectedEof,
                        format!("{} closed the connection inside a frame", self.peer_addr()),
                    ));
                }
                if error {
                    return Err(self.die(
                        io::ErrorKind::ConnectionReset,
                        format!("the connection to {} broke", self.peer_addr()),
                    ));
                }
                self.eof = true;
                return Ok(Step::Closed);
            }
            Event::Finished => Ok(()),
        };
        if let Err(e) = to_sink {
            sink.abort();
            self.skipping = true;
            return Err(e);
        }
        Ok(Step::More)
    }

    /// Ends the stream towards the peer once everything sent is out (the
    /// peer's `recv` then gives `Ok(None)`); receiving goes on. On a
    /// connection already over (its error was reported) it does nothing.
    pub fn shutdown(&mut self) -> io::Result<()> {
        if self.dead.is_some() {
            return Ok(());
        }
        self.conn.close();
        self.flush()?;
        // The end of stream goes out in the turn after the last bytes.
        self.turn(Duration::ZERO).map(|_| ())
    }

    /// Shuts the connection down and closes it.
    pub fn close(mut self) -> io::Result<()> {
        self.shutdown()
    }
}

/// A listening TCP socket handing out [`TejStream`]s.
#[derive(Debug)]
pub struct TejListener {
    listener: TcpLinkListener,
    config: Config,
}

impl TejListener {
    /// Listens on `addr` (port 0: any free port); accepted streams run with `config`.
    pub fn bind(addr: impl ToSocketAddrs, config: Config) -> io::Result<TejListener> {
        let addr = addr
            .to_socket_addrs()?
            .next()
            .ok_or_else(|| io::Error::new(io::ErrorKind::InvalidInput, "no address to bind"))?;
        Ok(TejListener {
            listener: TcpLinkListener::bind(addr)?,
            config,
        })
    }

    /// The address listened on.
    pub fn local_addr(&self) -> io::Result<SocketAddr> {
        self.listener.local_addr()
    }

    /// Waits for the next connection.
    pub fn accept(&self) -> io::Result<(TejStream, SocketAddr)> {
        loop {
            if let Some(got) = self.accept_timeout(None)? {
                return Ok(got);
            }
        }
    }

    /// Waits up to `timeout` (`None`: for ever) for the next connection;
    /// `Ok(None)` when none came.
    pub fn accept_timeout(
        &self,
        timeout: Option<Duration>,
    ) -> io::Result<Option<(TejStream, SocketAddr)>> {
        Ok(self.listener.accept(timeout)?.map(|link| {
            let peer = link.peer_addr();
            (TejStream::from_link(link, self.config), peer)
        }))
    }
}
