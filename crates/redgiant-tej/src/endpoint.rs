//! [`Connection`]: one TEJ connection, both directions, as a sans-IO
//! [`StreamEndpoint`].
//!
//! # Receiving
//!
//! Bytes handed to [`StreamEndpoint::handle_bytes`] go through the streaming
//! [`Decoder`]; every byte is consumed at once. Its steps come out as
//! [`Event`]s in order. A stream driver lends the endpoint its input and
//! takes events by value, so file bytes are copied once, into
//! [`Event::FileData`] pieces no larger than one `handle_bytes` input; a
//! driver drains the events after each call, so memory stays bounded by the
//! driver's receive buffer whatever a file's size.
//!
//! # Sending: frames, files from readers or pushed piece by piece
//!
//! The endpoint never opens a file. An application queues frames two ways:
//!
//! - [`Connection::send_frame`] queues a whole [`OutFrame`]; each file's
//!   body is a [`Body`]: bytes, or a reader the endpoint pulls from only as
//!   fast as the link takes bytes ([`Endpoint::poll_transmit`] reads the
//!   next piece straight into the driver's transmit buffer). A 100 GB file
//!   goes out in constant memory.
//! - [`Connection::start_frame`], [`Connection::start_file`],
//!   [`Connection::file_data`] and [`Connection::message`] build a frame
//!   piece by piece, as the pieces become known (an echo forwards each
//!   received piece as it arrives); the [`Encoder`] checks their order.
//!
//! Queued bytes wait in the endpoint until the link takes them: an
//! application that queues faster than its peer reads holds the difference
//! ([`Connection::queued`] tells how much).
//!
//! # Pings, idle timeout, errors, closing
//!
//! A frame with custom status 2 is a ping: its events come like any frame's,
//! then [`Event::Ping`]. TEJ has no pong, so pings are reported, not
//! answered (two endpoints answering each other would never stop);
//! [`Config::keepalive`] sends a ping when nothing was sent for that long.
//! With [`Config::idle_timeout`], a connection on which no byte moved either
//! way for that long reports [`Event::IdleTimeout`] and ends its stream.
//!
//! A protocol error ([`DecodeError`]) is final for this connection only:
//! [`Event::ProtocolError`], every later byte is discarded, and the stream
//! towards the peer ends once the bytes already queued are out. The
//! application usually ends the run there, which drops the connection.
//!
//! Once the peer ended its stream ([`Event::Closed`]) and everything queued
//! is out, or after [`Connection::close`], the endpoint ends its own stream
//! ([`StreamEndpoint::poll_shutdown`], then [`Event::Finished`]).
//!
//! # Calling order
//!
//! That of [`redgiant_base::endpoint`]: after any `handle_*`, drain
//! [`Endpoint::poll_transmit`], then [`Endpoint::poll_event`], then read
//! [`Endpoint::poll_timeout`]. Frames may be queued at any time.

use std::collections::VecDeque;
use std::fmt;
use std::io::Read;
use std::time::Duration;

use redgiant_base::{Endpoint, Instant, Peer, StreamEndpoint, Transmit};

use crate::wire::{self, DecodeError, Decoder, EncodeError, Encoder, Limits, STATUS_PING};

/// How a [`Connection`] behaves.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Config {
    /// What frames from the peer may hold.
    pub limits: Limits,
    /// End the connection after this long with no byte in either direction.
    pub idle_timeout: Option<Duration>,
    /// Send a ping after this long with nothing sent.
    pub keepalive: Option<Duration>,
    /// Largest transmit (bytes handed to the link at once).
    pub transmit_size: usize,
}

impl Default for Config {
    fn default() -> Self {
        Config {
            limits: Limits::default(),
            idle_timeout: None,
            keepalive: None,
            transmit_size: 256 << 10,
        }
    }
}

/// What a [`Connection`] tells its application, in stream order.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Event {
    /// A frame begins.
    FrameStart {
        /// The 7-bit custom status.
        status: u8,
        /// Files that follow.
        file_count: u64,
    },
    /// A file begins; `len` bytes of [`Event::FileData`] follow.
    FileStart {
        /// Its name as sent: untrusted, not a path.
        name: String,
        /// Its length.
        len: u64,
    },
    /// The next bytes of the current file.
    FileData(Vec<u8>),
    /// The current file is complete.
    FileEnd,
    /// The frame's message, possibly empty (gathered up to
    /// [`Limits::max_message`]).
    Message(Vec<u8>),
    /// A streamed message begins ([`Limits::stream_message`]).
    MessageStart {
        /// Its length.
        len: u64,
    },
    /// The next bytes of a streamed message.
    MessageData(Vec<u8>),
    /// The frame is complete.
    FrameEnd {
        /// Its custom status again.
        status: u8,
    },
    /// The frame just ended was a ping (custom status 2).
    Ping,
    /// The peer broke the protocol; this connection is over.
    ProtocolError(DecodeError),
    /// A file queued with [`Body::Reader`] failed or ended early; the frame
    /// cannot be finished, so the connection ends.
    SendFailed(String),
    /// Nothing moved for [`Config::idle_timeout`]; the connection ends.
    IdleTimeout,
    /// The peer ended its stream (`error`: the connection broke) and the
    /// stream was, or was not, between frames.
    Closed {
        /// The connection broke instead of closing.
        error: bool,
        /// It ended inside a frame.
        mid_frame: bool,
    },
    /// Everything queued is out and the stream towards the peer ends.
    Finished,
}

impl Event {
    /// Appends the bytes this event stands for on the wire: the frame
    /// header, a file header, file bytes, the message with its length.
    /// Encoding is canonical, so the events of a frame give back exactly
    /// the bytes received. Events outside a frame add nothing.
    pub fn wire_bytes(&self, out: &mut Vec<u8>) {
        match self {
            Event::FrameStart { status, file_count } => {
                // The status came from a decoded frame: it fits in 7 bits.
                let _ = wire::emit_frame_header(*status & 0x7f, *file_count, out);
            }
            Event::FileStart { name, len } => {
                let _ = wire::emit_file_header(name, *len, out);
            }
            Event::FileData(d) | Event::MessageData(d) => out.extend_from_slice(d),
            Event::Message(m) => {
                out.extend_from_slice(&(m.len() as u64).to_be_bytes());
                out.extend_from_slice(m);
            }
            Event::MessageStart { len } => out.extend_from_slice(&len.to_be_bytes()),
            _ => {}
        }
    }
}

/// A file's bytes, for [`Connection::send_frame`].
pub enum Body {
    /// Bytes in memory.
    Bytes(Vec<u8>),
    /// A reader giving at least the declared length; it is read only as the
    /// link takes bytes, and never beyond the declared length.
    Reader(Box<dyn Read + Send>),
}

impl fmt::Debug for Body {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Body::Bytes(b) => write!(f, "Bytes({} bytes)", b.len()),
            Body::Reader(_) => f.write_str("Reader"),
        }
    }
}

/// A file to send.
#[derive(Debug)]
pub struct OutFile {
    /// Its name (at most 65,535 bytes of UTF-8).
    pub name: String,
    /// Its length: exactly what the body gives.
    pub len: u64,
    /// Its bytes.
    pub body: Body,
}

impl OutFile {
    /// A file held in memory.
    pub fn bytes(name: impl Into<String>, data: Vec<u8>) -> Self {
        OutFile {
            name: name.into(),
            len: data.len() as u64,
            body: Body::Bytes(data),
        }
    }

    /// A file read from `reader`, `len` bytes.
    pub fn reader(name: impl Into<String>, len: u64, reader: impl Read + Send + 'static) -> Self {
        OutFile {
            name: name.into(),
            len,
            body: Body::Reader(Box::new(reader)),
        }
    }
}

/// A frame to send.
#[derive(Debug, Default)]
pub struct OutFrame {
    /// The 7-bit custom status.
    pub status: u8,
    /// Its files.
    pub files: Vec<OutFile>,
    /// Its message.
    pub message: Vec<u8>,
}

/// Queued bytes join the last piece while it is smaller than this.
const JOIN_BELOW: usize = 64 << 10;

/// A piece of the outgoing stream.
enum Piece {
    Bytes(Vec<u8>),
    Reader {
        name: String,
        left: u64,
        reader: Box<dyn Read + Send>,
    },
}

/// One TEJ connection. See the [module docs](self).
pub struct Connection {
    config: Config,
    decoder: Decoder,
    encoder: Encoder,
    /// Outgoing pieces, in order; bytes are appended to a last `Bytes` piece.
    out: VecDeque<Piece>,
    /// Bytes queued and not yet handed to the link (readers: declared).
    queued: u64,
    /// The status of the frame being received.
    receiving: u8,
    events: VecDeque<Event>,
    last_in: Instant,
    last_out: Instant,
    failed: bool,
    peer_closed: bool,
    close_asked: bool,
    finished: bool,
    frames_in: u64,
    frames_out: u64,
    /// Bytes of a forwarded streamed message still to come.
    streaming_message: u64,
}

impl fmt::Debug for Connection {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Connection")
            .field("queued", &self.queued)
            .field("frames_in", &self.frames_in)
            .field("frames_out", &self.frames_out)
            .field("failed", &self.failed)
            .field("peer_closed", &self.peer_closed)
            .finish_non_exhaustive()
    }
}

impl Connection {
    /// A connection established at `now`.
    pub fn new(config: Config, now: Instant) -> Self {
        Connection {
            decoder: Decoder::new(config.limits),
            encoder: Encoder::new(),
            out: VecDeque::new(),
            queued: 0,
            receiving: 0,
            events: VecDeque::new(),
            last_in: now,
            last_out: now,
            failed: false,
            peer_closed: false,
            close_asked: false,
            finished: false,
            frames_in: 0,
            frames_out: 0,
            streaming_message: 0,
            config,
        }
    }

    /// Bytes queued and not yet handed to the link.
    pub fn queued(&self) -> u64 {
        self.queued
    }

    /// Frames received whole.
    pub fn frames_in(&self) -> u64 {
        self.frames_in
    }

    /// Frames queued whole.
    pub fn frames_out(&self) -> u64 {
        self.frames_out
    }

    /// True once the peer ended its stream.
    pub fn peer_closed(&self) -> bool {
        self.peer_closed
    }

    /// True once a protocol error, a failed body or the idle timeout ended
    /// the connection.
    pub fn failed(&self) -> bool {
        self.failed
    }

    /// Counts `now` as activity for the idle timeout: an application that was
    /// busy on the peer's behalf for a while (pulling what a frame named, say)
    /// calls it so the connection does not time out for the time it took.
    pub fn restart_idle(&mut self, now: Instant) {
        self.last_in = self.last_in.max(now);
    }

    /// Ends the stream towards the peer once everything queued is out
    /// (receiving goes on).
    pub fn close(&mut self) {
        self.close_asked = true;
    }

    /// Queues a whole frame. Nothing is queued if it cannot be encoded.
    pub fn send_frame(&mut self, frame: OutFrame) -> Result<(), EncodeError> {
        if !self.encoder.idle() {
            return Err(EncodeError::OutOfOrder("a frame inside a frame"));
        }
        // Check every header first so a bad frame leaves nothing behind.
        let mut check = Encoder::new();
        let mut scratch = Vec::new();
        check.start_frame(frame.status, frame.files.len() as u64, &mut scratch)?;
        for f in &frame.files {
            scratch.clear();
            check.start_file(&f.name, f.len, &mut scratch)?;
            if let Body::Bytes(b) = &f.body {
                if b.len() as u64 != f.len {
                    return Err(EncodeError::LengthMismatch {
                        declared: f.len,
                        given: b.len() as u64,
                    });
                }
            }
            check.data_written(f.len)?;
        }
        self.start_frame(frame.status, frame.files.len() as u64)?;
        for f in frame.files {
            self.start_file(&f.name, f.len)?;
            match f.body {
                Body::Bytes(b) => self.push_data(b)?,
                Body::Reader(reader) if f.len > 0 => {
                    self.encoder.data_written(f.len)?;
                    self.queued += f.len;
                    self.out.push_back(Piece::Reader {
                        name: f.name,
                        left: f.len,
                        reader,
                    });
                }
                Body::Reader(_) => {}
            }
        }
        self.message(&frame.message)
    }

    /// Queues an empty ping frame.
    pub fn send_ping(&mut self) -> Result<(), EncodeError> {
        self.send_frame(OutFrame {
            status: STATUS_PING,
            ..OutFrame::default()
        })
    }

    /// Encodes a header (or message) with the encoder and queues it; nothing
    /// is queued if the encoder refuses.
    fn push_bytes(
        &mut self,
        f: impl FnOnce(&mut Encoder, &mut Vec<u8>) -> Result<(), EncodeError>,
    ) -> Result<(), EncodeError> {
        let mut head = Vec::new();
        f(&mut self.encoder, &mut head)?;
        self.enqueue(&head);
        Ok(())
    }

    /// Puts bytes at the end of the outgoing stream; small writes join the last piece.
    fn enqueue(&mut self, data: &[u8]) {
        self.queued += data.len() as u64;
        match self.out.back_mut() {
            Some(Piece::Bytes(buf)) if buf.len() < JOIN_BELOW => buf.extend_from_slice(data),
            _ => self.out.push_back(Piece::Bytes(data.to_vec())),
        }
    }

    fn push_data(&mut self, data: Vec<u8>) -> Result<(), EncodeError> {
        self.encoder.data_written(data.len() as u64)?;
        if data.len() < JOIN_BELOW {
            self.enqueue(&data);
        } else {
            self.queued += data.len() as u64;
            self.out.push_back(Piece::Bytes(data));
        }
        Ok(())
    }

    /// Begins a frame piece by piece: `file_count` files must follow.
    pub fn start_frame(&mut self, status: u8, file_count: u64) -> Result<(), EncodeError> {
        self.push_bytes(|e, b| e.start_frame(status, file_count, b))
    }

    /// Begins the next file of the frame begun: `len` bytes must follow.
    pub fn start_file(&mut self, name: &str, len: u64) -> Result<(), EncodeError> {
        self.push_bytes(|e, b| e.start_file(name, len, b))
    }

    /// Queues bytes of the current file.
    pub fn file_data(&mut self, data: &[u8]) -> Result<(), EncodeError> {
        self.encoder.data_written(data.len() as u64)?;
        self.enqueue(data);
        Ok(())
    }

    /// Ends the frame begun with its message.
    pub fn message(&mut self, message: &[u8]) -> Result<(), EncodeError> {
        self.push_bytes(|e, b| e.message(message, b))?;
        self.frames_out += 1;
        Ok(())
    }

    /// Queues the outgoing counterpart of a received event, so frames
    /// are sent back piece by piece as they arrive (an echo). Events that
    /// are not part of a frame are ignored.
    pub fn forward(&mut self, event: &Event) -> Result<(), EncodeError> {
        match event {
            Event::FrameStart { status, file_count } => self.start_frame(*status, *file_count),
            Event::FileStart { name, len } => self.start_file(name, *len),
            Event::FileData(d) | Event::MessageData(d) => self.push_data_or_message(d),
            Event::Message(m) => self.message(m),
            Event::MessageStart { len } => {
                self.push_bytes(|e, b| e.message_header(*len, b))?;
                self.frames_out += 1;
                self.streaming_message = *len;
                Ok(())
            }
            _ => Ok(()),
        }
    }

    fn push_data_or_message(&mut self, d: &[u8]) -> Result<(), EncodeError> {
        if self.streaming_message == 0 {
            return self.file_data(d);
        }
        let n = d.len() as u64;
        if n > self.streaming_message {
            return Err(EncodeError::OutOfOrder("message bytes beyond the message"));
        }
        self.streaming_message -= n;
        self.enqueue(d);
        Ok(())
    }

    fn fail(&mut self, event: Event) {
        if !self.failed {
            self.failed = true;
            self.events.push_back(event);
        }
    }

    fn idle_deadline(&self) -> Option<Instant> {
        let last = self.last_in.max(self.last_out);
        self.config.idle_timeout.map(|t| last + t)
    }

    fn keepalive_deadline(&self) -> Option<Instant> {
        // Mid-frame a ping cannot go out: no deadline until the frame is done.
        if self.failed || self.close_asked || self.finished || !self.encoder.idle() {
            return None;
        }
        self.config.keepalive.map(|k| self.last_out + k)
    }
}

/// Turns one decoder step into events (`receiving`: the status of the frame
/// under way; `frames_in`: frames completed).
fn on_decoded(
    ev: wire::Event<'_>,
    receiving: &mut u8,
    frames_in: &mut u64,
    events: &mut VecDeque<Event>,
) {
    let ev = match ev {
        wire::Event::FrameStart { status, file_count } => {
            *receiving = status;
            Event::FrameStart { status, file_count }
        }
        wire::Event::FileStart { name, len } => Event::FileStart {
            name: name.to_owned(),
            len,
        },
        wire::Event::FileData(d) => Event::FileData(d.to_vec()),
        wire::Event::FileEnd => Event::FileEnd,
        wire::Event::Message(m) => Event::Message(m.to_vec()),
        wire::Event::MessageStart { len } => Event::MessageStart { len },
        wire::Event::MessageData(d) => Event::MessageData(d.to_vec()),
        wire::Event::FrameEnd => {
            *frames_in += 1;
            events.push_back(Event::FrameEnd { status: *receiving });
            if *receiving == STATUS_PING {
                events.push_back(Event::Ping);
            }
            return;
        }
    };
    events.push_back(ev);
}

impl Endpoint for Connection {
    type Event = Event;
    type Delivery<'d> = core::convert::Infallible;

    fn handle_timeout(&mut self, now: Instant) {
        if self.failed || self.finished {
            return;
        }
        if self.idle_deadline().is_some_and(|d| d <= now) {
            self.fail(Event::IdleTimeout);
            return;
        }
        if self.keepalive_deadline().is_some_and(|d| d <= now) {
            // A ping frame always encodes.
            let _ = self.send_ping();
            self.last_out = now;
        }
    }

    fn poll_transmit(&mut self, now: Instant, buf: &mut Vec<u8>) -> Option<Transmit> {
        buf.clear();
        let max = self.config.transmit_size.max(1);
        while buf.len() < max {
            let Some(front) = self.out.front_mut() else {
                break;
            };
            match front {
                Piece::Bytes(b) => {
                    let take = b.len().min(max - buf.len());
                    buf.extend_from_slice(&b[..take]);
                    if take == b.len() {
                        self.out.pop_front();
                    } else {
                        b.drain(..take);
                    }
                    self.queued -= take as u64;
                }
                Piece::Reader { name, left, reader } => {
                    let want =
                        usize::try_from(*left).map_or(max - buf.len(), |l| l.min(max - buf.len()));
                    let start = buf.len();
                    buf.resize(start + want, 0);
                    let got = match reader.read(&mut buf[start..]) {
                        Ok(0) => Err(format!("{name}: the source ended {left} bytes early")),
                        Ok(n) => Ok(n),
                        Err(e) if e.kind() == std::io::ErrorKind::Interrupted => Ok(0),
                        Err(e) => Err(format!("{name}: {e}")),
                    };
                    match got {
                        Ok(n) => {
                            buf.truncate(start + n);
                            *left -= n as u64;
                            self.queued -= n as u64;
                            if *left == 0 {
                                self.out.pop_front();
                            }
                        }
                        Err(msg) => {
                            buf.truncate(start);
                            // The declared length cannot be kept: nothing after it can go out.
                            self.out.clear();
                            self.queued = 0;
                            self.fail(Event::SendFailed(msg));
                            break;
                        }
                    }
                }
            }
        }
        if buf.is_empty() {
            return None;
        }
        self.last_out = now;
        Some(Transmit {
            destination: Peer::Mem(1),
            size: buf.len(),
            segment_size: None,
        })
    }

    fn poll_timeout(&self) -> Option<Instant> {
        if self.failed || self.finished {
            return None;
        }
        match (self.idle_deadline(), self.keepalive_deadline()) {
            (Some(a), Some(b)) => Some(a.min(b)),
            (a, b) => a.or(b),
        }
    }

    fn poll_event(&mut self) -> Option<Event> {
        self.events.pop_front()
    }
}

impl StreamEndpoint for Connection {
    fn handle_bytes(&mut self, now: Instant, mut data: &[u8]) -> usize {
        let all = data.len();
        if all > 0 {
            self.last_in = now;
        }
        if self.failed {
            return all;
        }
        loop {
            match self.decoder.decode(data) {
                Ok((used, ev)) => {
                    data = &data[used..];
                    let Some(ev) = ev else { break };
                    on_decoded(
                        ev,
                        &mut self.receiving,
                        &mut self.frames_in,
                        &mut self.events,
                    );
                }
                Err(e) => {
                    self.fail(Event::ProtocolError(e));
                    break;
                }
            }
        }
        all
    }

    fn handle_close(&mut self, _now: Instant, error: bool) {
        if self.peer_closed {
            return;
        }
        self.peer_closed = true;
        let mid_frame = !self.failed && !self.decoder.at_frame_boundary();
        self.events.push_back(Event::Closed { error, mid_frame });
    }

    fn poll_shutdown(&mut self) -> bool {
        if self.finished || !self.out.is_empty() {
            return false;
        }
        let done_sending = self.encoder.idle() && (self.peer_closed || self.close_asked);
        if !(self.failed || done_sending) {
            return false;
        }
        self.finished = true;
        self.events.push_back(Event::Finished);
        true
    }
}
