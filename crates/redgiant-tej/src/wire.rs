//! The TEJ v1 frame: layout, a streaming decoder and an encoder.
//!
//! ```text
//! u8  status        top bit 1; low 7 bits: the custom status (2: ping)
//! u8  version       1
//! u64 file_count
//! file_count times:
//!     u16 name_len  bytes of the UTF-8 name (not characters)
//!     name
//!     u64 data_len
//!     data
//! u64 msg_len
//! msg
//! ```
//!
//! Every integer is big-endian. Frames follow each other on the stream with
//! nothing in between.
//!
//! # Decoder guarantees
//!
//! - [`Decoder::decode`] takes any slice, including one byte at a time, and
//!   gives the same events whatever the split points (apart from how file and
//!   message bytes are cut into [`Event::FileData`] and
//!   [`Event::MessageData`] pieces).
//! - It never panics, and never allocates for a declared length: file data
//!   is handed out as slices of the input, names and messages are gathered
//!   as they arrive and are refused at their length field when the
//!   [`Limits`] say so. A file declared 2^63 bytes long costs a counter.
//! - The first error is final: the decoder answers it again to every later call.

use std::fmt;

use nom::number::complete::{be_u16, be_u64, be_u8};

/// The only version this crate speaks.
pub const VERSION: u8 = 1;
/// The custom status of a ping frame.
pub const STATUS_PING: u8 = 2;
/// The custom status of a frame whose files are RGTP tickets, not file bytes
/// (`spec/tej.md` §5): the receiver pulls what each ticket names.
pub const STATUS_RGTP_TICKETS: u8 = 0x52;
/// The custom status of the answer to a [`STATUS_RGTP_TICKETS`] frame: its
/// message says, per ticket, whether the pull succeeded.
pub const STATUS_RGTP_RESULT: u8 = 0x53;
/// The bit every status byte carries.
pub const STATUS_MSB: u8 = 0x80;
/// Bytes before the first file: status, version, file count.
pub const FRAME_HEADER_LEN: usize = 10;
/// Largest name the format can carry, in bytes.
pub const MAX_NAME_LEN: usize = u16::MAX as usize;

/// What a receiver accepts. A frame beyond a limit is a protocol error,
/// caught at the length field, before anything is read into memory.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Limits {
    /// Most files in one frame.
    pub max_files: u64,
    /// Longest file name, in bytes.
    pub max_name_len: u16,
    /// Longest message gathered into one [`Event::Message`], in bytes.
    /// Ignored when `stream_message` is set.
    pub max_message: u64,
    /// Hand the message out in pieces ([`Event::MessageData`]) instead of
    /// gathering it: no length limit and no buffer.
    pub stream_message: bool,
}

impl Default for Limits {
    fn default() -> Self {
        Limits {
            max_files: 1 << 16,
            max_name_len: 1024,
            max_message: 16 << 20,
            stream_message: false,
        }
    }
}

/// Why a byte stream is not TEJ v1. Every one is final for the connection.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum DecodeError {
    /// The status byte's top bit is 0.
    MsbZero {
        /// The byte.
        status: u8,
    },
    /// The version is not 1.
    BadVersion {
        /// The version byte.
        version: u8,
    },
    /// More files than [`Limits::max_files`].
    TooManyFiles {
        /// The declared count.
        count: u64,
        /// The limit.
        limit: u64,
    },
    /// A name longer than [`Limits::max_name_len`].
    NameTooLong {
        /// The declared length in bytes.
        len: u16,
        /// The limit.
        limit: u16,
    },
    /// A name that is not UTF-8.
    NameNotUtf8 {
        /// Where the first bad byte is.
        valid_up_to: usize,
    },
    /// A message longer than [`Limits::max_message`].
    MessageTooLarge {
        /// The declared length.
        len: u64,
        /// The limit.
        limit: u64,
    },
    /// The stream ended inside a frame.
    Truncated,
}

impl fmt::Display for DecodeError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            DecodeError::MsbZero { status } => write!(
                f,
                "status byte {status:#04x} has its top bit clear (not a TEJ frame)"
            ),
            DecodeError::BadVersion { version } => {
                write!(f, "protocol version {version}, only 1 is known")
            }
            DecodeError::TooManyFiles { count, limit } => {
                write!(f, "frame declares {count} files, the limit is {limit}")
            }
            DecodeError::NameTooLong { len, limit } => {
                write!(f, "file name of {len} bytes, the limit is {limit}")
            }
            DecodeError::NameNotUtf8 { valid_up_to } => {
                write!(f, "file name is not UTF-8 (bad byte at {valid_up_to})")
            }
            DecodeError::MessageTooLarge { len, limit } => {
                write!(f, "message of {len} bytes, the limit is {limit}")
            }
            DecodeError::Truncated => write!(f, "the stream ended inside a frame"),
        }
    }
}

impl std::error::Error for DecodeError {}

/// One step of a frame, as [`Decoder::decode`] finds it. Borrowed slices
/// point into the input (file and streamed message bytes) or into the
/// decoder (the name, a gathered message).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Event<'a> {
    /// A frame begins.
    FrameStart {
        /// The custom status (7 bits, the top bit removed).
        status: u8,
        /// Files that follow.
        file_count: u64,
    },
    /// A file begins; `len` bytes of [`Event::FileData`] follow.
    FileStart {
        /// Its name, as sent (not checked as a path: see `spec/tej.md`).
        name: &'a str,
        /// Its length in bytes.
        len: u64,
    },
    /// The next bytes of the current file (never empty).
    FileData(&'a [u8]),
    /// The current file is complete.
    FileEnd,
    /// The frame's whole message (possibly empty), when it is gathered.
    Message(&'a [u8]),
    /// The message begins, when it is streamed: `len` bytes of
    /// [`Event::MessageData`] follow.
    MessageStart {
        /// Its length in bytes.
        len: u64,
    },
    /// The next bytes of a streamed message (never empty).
    MessageData(&'a [u8]),
    /// The frame is complete.
    FrameEnd,
}

/// Where the decoder is in a frame.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum State {
    /// Gathering the 10-byte frame header.
    FrameHeader,
    /// Gathering a file's 2-byte name length (`left` files to go, this one included).
    NameLen { left: u64 },
    /// Gathering a name of `len` bytes.
    Name { left: u64, len: usize },
    /// Gathering a file's 8-byte length.
    DataLen { left: u64 },
    /// Handing out a file's bytes.
    Data { left: u64, remaining: u64 },
    /// The file is done: say so.
    FileEnd { left: u64 },
    /// Gathering the 8-byte message length.
    MsgLen,
    /// Gathering or streaming the message.
    Msg { remaining: u64 },
    /// The frame is done: say so.
    FrameEnd,
    /// An error was answered; it is answered again.
    Failed,
}

/// The streaming TEJ decoder. See the [module docs](self).
///
/// ```
/// use redgiant_tej::wire::{Decoder, Event, Limits};
///
/// let frame = [0x81, 1, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 2, b'h', b'i'];
/// let mut dec = Decoder::new(Limits::default());
/// let mut input = &frame[..];
/// let mut seen = Vec::new();
/// loop {
///     let (used, event) = dec.decode(input).unwrap();
///     input = &input[used..];
///     match event {
///         Some(Event::Message(m)) => seen.push(m.to_vec()),
///         Some(_) => {}
///         None => break, // every byte consumed; feed more
///     }
/// }
/// assert_eq!(seen, [b"hi".to_vec()]);
/// assert!(dec.at_frame_boundary());
/// ```
#[derive(Debug, Clone)]
pub struct Decoder {
    limits: Limits,
    state: State,
    /// A fixed-size field being gathered.
    fixed: [u8; FRAME_HEADER_LEN],
    have: usize,
    /// The name or gathered message being collected (grows as bytes come).
    buf: Vec<u8>,
    error: Option<DecodeError>,
    frames: u64,
}

impl Decoder {
    /// A decoder at the start of a stream, enforcing `limits`.
    pub fn new(limits: Limits) -> Self {
        Decoder {
            limits,
            state: State::FrameHeader,
            fixed: [0; FRAME_HEADER_LEN],
            have: 0,
            buf: Vec::new(),
            error: None,
            frames: 0,
        }
    }

    /// The limits in force.
    pub fn limits(&self) -> &Limits {
        &self.limits
    }

    /// True between frames (no byte of a next frame seen yet).
    pub fn at_frame_boundary(&self) -> bool {
        self.state == State::FrameHeader && self.have == 0
    }

    /// Frames completed so far.
    pub fn frames(&self) -> u64 {
        self.frames
    }

    /// The stream ended: an error if it ended inside a frame.
    pub fn finish(&mut self) -> Result<(), DecodeError> {
        if let Some(e) = &self.error {
            return Err(e.clone());
        }
        if self.at_frame_boundary() {
            return Ok(());
        }
        Err(self.fail(DecodeError::Truncated))
    }

    fn fail(&mut self, e: DecodeError) -> DecodeError {
        self.state = State::Failed;
        self.error = Some(e.clone());
        self.buf = Vec::new();
        e
    }

    /// Gathers a fixed field of `need` bytes; true once complete.
    fn gather(&mut self, input: &[u8], need: usize, used: &mut usize) -> bool {
        let take = (need - self.have).min(input.len());
        self.fixed[self.have..self.have + take].copy_from_slice(&input[..take]);
        self.have += take;
        *used += take;
        self.have == need
    }

    /// Decodes from `input`: returns how many bytes were consumed and the
    /// next event. `None` means every byte was consumed and more are needed;
    /// otherwise call again with the rest of the input (possibly empty: an
    /// event can need no byte, like the end of an empty file).
    pub fn decode<'a>(
        &'a mut self,
        input: &'a [u8],
    ) -> Result<(usize, Option<Event<'a>>), DecodeError> {
        let mut used = 0;
        loop {
            let rest = &input[used..];
            match self.state {
                State::Failed => {
                    return Err(self.error.clone().unwrap_or(DecodeError::Truncated));
                }
                State::FrameHeader => {
                    // The first two bytes are checked as soon as they come.
                    if rest.is_empty() {
                        return Ok((used, None));
                    }
                    let before = self.have;
                    let done = self.gather(rest, FRAME_HEADER_LEN, &mut used);
                    if before == 0 && self.fixed[0] & STATUS_MSB == 0 {
                        return Err(self.fail(DecodeError::MsbZero {
                            status: self.fixed[0],
                        }));
                    }
                    if before <= 1 && self.have >= 2 && self.fixed[1] != VERSION {
                        return Err(self.fail(DecodeError::BadVersion {
                            version: self.fixed[1],
                        }));
                    }
                    if !done {
                        return Ok((used, None));
                    }
                    self.have = 0;
                    let (status, count) = parse_frame_header(&self.fixed);
                    if count > self.limits.max_files {
                        return Err(self.fail(DecodeError::TooManyFiles {
                            count,
                            limit: self.limits.max_files,
                        }));
                    }
                    self.state = match count {
                        0 => State::MsgLen,
                        left => State::NameLen { left },
                    };
                    return Ok((
                        used,
                        Some(Event::FrameStart {
                            status,
                            file_count: count,
                        }),
                    ));
                }
                State::NameLen { left } => {
                    if !self.gather(rest, 2, &mut used) {
                        return Ok((used, None));
                    }
                    self.have = 0;
                    let len = parse_u16(&self.fixed);
                    if len > self.limits.max_name_len {
                        return Err(self.fail(DecodeError::NameTooLong {
                            len,
                            limit: self.limits.max_name_len,
                        }));
                    }
                    self.buf.clear();
                    self.state = State::Name {
                        left,
                        len: len.into(),
                    };
                }
                State::Name { left, len } => {
                    let take = (len - self.buf.len()).min(rest.len());
                    self.buf.extend_from_slice(&rest[..take]);
                    used += take;
                    if self.buf.len() < len {
                        return Ok((used, None));
                    }
                    if let Err(e) = std::str::from_utf8(&self.buf) {
                        return Err(self.fail(DecodeError::NameNotUtf8 {
                            valid_up_to: e.valid_up_to(),
                        }));
                    }
                    self.state = State::DataLen { left };
                }
                State::DataLen { left } => {
                    if !self.gather(rest, 8, &mut used) {
                        return Ok((used, None));
                    }
                    self.have = 0;
                    let len = parse_u64(&self.fixed);
                    self.state = match len {
                        0 => State::FileEnd { left },
                        remaining => State::Data { left, remaining },
                    };
                    // Checked in State::Name; a failure here would be a bug, not input.
                    let name = std::str::from_utf8(&self.buf).unwrap_or_default();
                    return Ok((used, Some(Event::FileStart { name, len })));
                }
                State::Data { left, remaining } => {
                    if rest.is_empty() {
                        return Ok((used, None));
                    }
                    let take = clamp(remaining, rest.len());
                    let remaining = remaining - take as u64;
                    self.state = match remaining {
                        0 => State::FileEnd { left },
                        remaining => State::Data { left, remaining },
                    };
                    return Ok((used + take, Some(Event::FileData(&rest[..take]))));
                }
                State::FileEnd { left } => {
                    self.state = match left - 1 {
                        0 => State::MsgLen,
                        left => State::NameLen { left },
                    };
                    return Ok((used, Some(Event::FileEnd)));
                }
                State::MsgLen => {
                    if !self.gather(rest, 8, &mut used) {
                        return Ok((used, None));
                    }
                    self.have = 0;
                    let len = parse_u64(&self.fixed);
                    self.buf.clear();
                    if self.limits.stream_message {
                        self.state = match len {
                            0 => State::FrameEnd,
                            remaining => State::Msg { remaining },
                        };
                        return Ok((used, Some(Event::MessageStart { len })));
                    }
                    if len > self.limits.max_message {
                        return Err(self.fail(DecodeError::MessageTooLarge {
                            len,
                            limit: self.limits.max_message,
                        }));
                    }
                    self.state = State::Msg { remaining: len };
                }
                State::Msg { remaining } if self.limits.stream_message => {
                    if rest.is_empty() {
                        return Ok((used, None));
                    }
                    let take = clamp(remaining, rest.len());
                    self.state = match remaining - take as u64 {
                        0 => State::FrameEnd,
                        remaining => State::Msg { remaining },
                    };
                    return Ok((used + take, Some(Event::MessageData(&rest[..take]))));
                }
                State::Msg { remaining } => {
                    let take = clamp(remaining, rest.len());
                    self.buf.extend_from_slice(&rest[..take]);
                    used += take;
                    let remaining = remaining - take as u64;
                    if remaining > 0 {
                        self.state = State::Msg { remaining };
                        return Ok((used, None));
                    }
                    self.state = State::FrameEnd;
                    return Ok((used, Some(Event::Message(&self.buf))));
                }
                State::FrameEnd => {
                    self.state = State::FrameHeader;
                    self.frames += 1;
                    if self.buf.capacity() > 64 << 10 {
                        // A large message does not stay allocated between frames.
                        self.buf = Vec::new();
                    }
                    return Ok((used, Some(Event::FrameEnd)));
                }
            }
        }
    }
}

/// `remaining` capped at `available`, as a slice length.
fn clamp(remaining: u64, available: usize) -> usize {
    usize::try_from(remaining).map_or(available, |r| r.min(available))
}

type NomError<'a> = nom::error::Error<&'a [u8]>;

/// Status (top bit removed) and file count of a complete frame header.
fn parse_frame_header(b: &[u8; FRAME_HEADER_LEN]) -> (u8, u64) {
    let parsed = be_u8::<_, NomError<'_>>(&b[..]).and_then(|(rest, status)| {
        let (rest, _version) = be_u8::<_, NomError<'_>>(rest)?;
        let (_, count) = be_u64::<_, NomError<'_>>(rest)?;
        Ok((status & !STATUS_MSB, count))
    });
    // Ten bytes are always there: the fallback is never taken.
    parsed.unwrap_or((0, 0))
}

fn parse_u16(b: &[u8]) -> u16 {
    be_u16::<_, NomError<'_>>(b).map_or(0, |(_, v)| v)
}

fn parse_u64(b: &[u8]) -> u64 {
    be_u64::<_, NomError<'_>>(b).map_or(0, |(_, v)| v)
}

/// Why a frame cannot be encoded as asked.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum EncodeError {
    /// A custom status above 127.
    StatusOutOfRange(u8),
    /// A name longer than 65,535 bytes.
    NameTooLong(usize),
    /// A call out of order (a file before a frame, data beyond a file's length...).
    OutOfOrder(&'static str),
    /// More or fewer bytes than a file declared.
    LengthMismatch {
        /// Declared.
        declared: u64,
        /// Given.
        given: u64,
    },
}

impl fmt::Display for EncodeError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            EncodeError::StatusOutOfRange(s) => {
                write!(f, "custom status {s} does not fit in 7 bits")
            }
            EncodeError::NameTooLong(n) => {
                write!(f, "file name of {n} bytes (at most {MAX_NAME_LEN})")
            }
            EncodeError::OutOfOrder(what) => write!(f, "out of order: {what}"),
            EncodeError::LengthMismatch { declared, given } => {
                write!(f, "file declared {declared} bytes, {given} given")
            }
        }
    }
}

impl std::error::Error for EncodeError {}

/// Writes the 10-byte frame header.
pub fn emit_frame_header(
    status: u8,
    file_count: u64,
    out: &mut Vec<u8>,
) -> Result<(), EncodeError> {
    if status & STATUS_MSB != 0 {
        return Err(EncodeError::StatusOutOfRange(status));
    }
    out.push(status | STATUS_MSB);
    out.push(VERSION);
    out.extend_from_slice(&file_count.to_be_bytes());
    Ok(())
}

/// Writes a file's header: name length, name, data length.
pub fn emit_file_header(name: &str, len: u64, out: &mut Vec<u8>) -> Result<(), EncodeError> {
    let n = u16::try_from(name.len()).map_err(|_| EncodeError::NameTooLong(name.len()))?;
    out.extend_from_slice(&n.to_be_bytes());
    out.extend_from_slice(name.as_bytes());
    out.extend_from_slice(&len.to_be_bytes());
    Ok(())
}

/// A whole frame in memory (files and message given as slices).
pub fn encode_frame(
    status: u8,
    files: &[(&str, &[u8])],
    message: &[u8],
) -> Result<Vec<u8>, EncodeError> {
    let mut out = Vec::new();
    let mut enc = Encoder::new();
    enc.start_frame(status, files.len() as u64, &mut out)?;
    for (name, data) in files {
        enc.start_file(name, data.len() as u64, &mut out)?;
        enc.file_data(data, &mut out)?;
    }
    enc.message(message, &mut out)?;
    Ok(out)
}

/// Where an [`Encoder`] is in a frame.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum EncState {
    Idle,
    /// `left` file headers to go.
    Files {
        left: u64,
    },
    /// Inside a file: `remaining` of `declared` bytes to go, then `left` files.
    Data {
        left: u64,
        declared: u64,
        remaining: u64,
    },
}

/// The streaming TEJ encoder: writes a frame piece by piece into a
/// caller's buffer and checks the order (frame header, each file's header
/// then exactly its bytes, then the message). File bytes may also be
/// written elsewhere (straight from a file into a socket) and only counted
/// with [`Encoder::data_written`], so a file never has to be in memory.
#[derive(Debug, Clone)]
pub struct Encoder {
    state: EncState,
}

impl Default for Encoder {
    fn default() -> Self {
        Self::new()
    }
}

impl Encoder {
    /// An encoder between frames.
    pub fn new() -> Self {
        Encoder {
            state: EncState::Idle,
        }
    }

    /// True between frames.
    pub fn idle(&self) -> bool {
        self.state == EncState::Idle
    }

    /// Bytes still owed to the current file (0 outside one).
    pub fn remaining(&self) -> u64 {
        match self.state {
            EncState::Data { remaining, .. } => remaining,
            _ => 0,
        }
    }

    /// Begins a frame of `file_count` files with a 7-bit custom status.
    pub fn start_frame(
        &mut self,
        status: u8,
        file_count: u64,
        out: &mut Vec<u8>,
    ) -> Result<(), EncodeError> {
        if self.state != EncState::Idle {
            return Err(EncodeError::OutOfOrder("a frame inside a frame"));
        }
        emit_frame_header(status, file_count, out)?;
        self.state = EncState::Files { left: file_count };
        Ok(())
    }

    /// Begins the next file: its bytes must follow, `len` of them.
    pub fn start_file(
        &mut self,
        name: &str,
        len: u64,
        out: &mut Vec<u8>,
    ) -> Result<(), EncodeError> {
        let left = match self.state {
            EncState::Files { left } if left > 0 => left,
            EncState::Files { .. } => {
                return Err(EncodeError::OutOfOrder("more files than declared"))
            }
            EncState::Data { .. } => {
                return Err(EncodeError::OutOfOrder("a file before the last one ended"))
            }
            EncState::Idle => return Err(EncodeError::OutOfOrder("a file outside a frame")),
        };
        emit_file_header(name, len, out)?;
        self.state = self.after_data(left - 1, len, len);
        Ok(())
    }

    fn after_data(&self, left: u64, declared: u64, remaining: u64) -> EncState {
        match remaining {
            0 => EncState::Files { left },
            remaining => EncState::Data {
                left,
                declared,
                remaining,
            },
        }
    }

    /// Appends bytes of the current file.
    pub fn file_data(&mut self, data: &[u8], out: &mut Vec<u8>) -> Result<(), EncodeError> {
        self.data_written(data.len() as u64)?;
        out.extend_from_slice(data);
        Ok(())
    }

    /// Counts `n` bytes of the current file written by the caller.
    pub fn data_written(&mut self, n: u64) -> Result<(), EncodeError> {
        if n == 0 {
            return Ok(());
        }
        match self.state {
            EncState::Data {
                left,
                declared,
                remaining,
            } if n <= remaining => {
                self.state = self.after_data(left, declared, remaining - n);
                Ok(())
            }
            EncState::Data {
                declared,
                remaining,
                ..
            } => Err(EncodeError::LengthMismatch {
                declared,
                given: declared - remaining + n,
            }),
            _ => Err(EncodeError::OutOfOrder("file bytes outside a file")),
        }
    }

    /// Ends the frame with its message (possibly empty).
    pub fn message(&mut self, message: &[u8], out: &mut Vec<u8>) -> Result<(), EncodeError> {
        self.message_header(message.len() as u64, out)?;
        out.extend_from_slice(message);
        Ok(())
    }

    /// Ends the frame with the length of a message the caller writes itself.
    pub fn message_header(&mut self, len: u64, out: &mut Vec<u8>) -> Result<(), EncodeError> {
        match self.state {
            EncState::Files { left: 0 } => {}
            EncState::Files { .. } => {
                return Err(EncodeError::OutOfOrder("fewer files than declared"))
            }
            EncState::Data {
                declared,
                remaining,
                ..
            } => {
                return Err(EncodeError::LengthMismatch {
                    declared,
                    given: declared - remaining,
                })
            }
            EncState::Idle => return Err(EncodeError::OutOfOrder("a message outside a frame")),
        }
        out.extend_from_slice(&len.to_be_bytes());
        self.state = EncState::Idle;
        Ok(())
    }
}

/// Writes one frame to `w`, each file's bytes copied from its reader
/// (exactly the declared length; a shorter reader is an error), so files of
/// any size go out in constant memory.
pub fn write_frame<W: std::io::Write, R: std::io::Read>(
    w: &mut W,
    status: u8,
    files: &mut [(&str, u64, R)],
    message: &[u8],
) -> std::io::Result<()> {
    use std::io::{self, Read};
    let invalid = |e: EncodeError| io::Error::new(io::ErrorKind::InvalidInput, e);
    let mut enc = Encoder::new();
    let mut head = Vec::with_capacity(64);
    enc.start_frame(status, files.len() as u64, &mut head)
        .map_err(invalid)?;
    for (name, len, reader) in files.iter_mut() {
        enc.start_file(name, *len, &mut head).map_err(invalid)?;
        w.write_all(&head)?;
        head.clear();
        let copied = io::copy(&mut reader.take(*len), w)?;
        enc.data_written(copied).map_err(invalid)?;
        if copied < *len {
            return Err(io::Error::new(
                io::ErrorKind::UnexpectedEof,
                format!("{name}: {copied} of {len} declared bytes"),
            ));
        }
    }
    enc.message(message, &mut head).map_err(invalid)?;
    w.write_all(&head)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A frame of two files and a message: every field of the format.
    static FRAME_BYTES: [u8; 50] = [
        0x85, 0x01, // status 5, version 1
        0, 0, 0, 0, 0, 0, 0, 2, // two files
        0, 1, b'a', // name "a"
        0, 0, 0, 0, 0, 0, 0, 3, b'x', b'y', b'z', // three bytes
        0, 2, 0xc3, 0xa9, // name "é": two bytes, one character
        0, 0, 0, 0, 0, 0, 0, 0, // empty
        0, 0, 0, 0, 0, 0, 0, 4, b'p', b'i', b'n', b'g', // message
        0x82, 0x01, // a second frame begins (not complete)
    ];

    /// Owned copy of an event, to compare across calls.
    #[derive(Debug, Clone, PartialEq, Eq)]
    enum Ev {
        Start(u8, u64),
        File(String, u64),
        Data(Vec<u8>),
        FileEnd,
        Msg(Vec<u8>),
        End,
    }

    fn decode_all(
        dec: &mut Decoder,
        mut input: &[u8],
        out: &mut Vec<Ev>,
    ) -> Result<(), DecodeError> {
        loop {
            let (used, ev) = dec.decode(input)?;
            input = &input[used..];
            let ev = match ev {
                None => return Ok(()),
                Some(Event::FrameStart { status, file_count }) => Ev::Start(status, file_count),
                Some(Event::FileStart { name, len }) => Ev::File(name.into(), len),
                Some(Event::FileData(d)) => Ev::Data(d.to_vec()),
                Some(Event::FileEnd) => Ev::FileEnd,
                Some(Event::Message(m)) => Ev::Msg(m.to_vec()),
                Some(Event::MessageStart { .. }) | Some(Event::MessageData(_)) => continue,
                Some(Event::FrameEnd) => Ev::End,
            };
            out.push(ev);
        }
    }

    #[test]
    fn test_parse() {
        let mut dec = Decoder::new(Limits::default());
        let mut evs = Vec::new();
        decode_all(&mut dec, &FRAME_BYTES, &mut evs).unwrap();
        assert_eq!(
            evs,
            [
                Ev::Start(5, 2),
                Ev::File("a".into(), 3),
                Ev::Data(b"xyz".to_vec()),
                Ev::FileEnd,
                Ev::File("é".into(), 0),
                Ev::FileEnd,
                Ev::Msg(b"ping".to_vec()),
                Ev::End,
            ]
        );
        assert_eq!(dec.frames(), 1);
        assert!(!dec.at_frame_boundary());
        assert_eq!(dec.finish(), Err(DecodeError::Truncated));
    }

    #[test]
    fn test_emit() {
        let frame = encode_frame(5, &[("a", b"xyz"), ("é", b"")], b"ping").unwrap();
        assert_eq!(frame, FRAME_BYTES[..48]);
    }

    #[test]
    fn test_parse_byte_by_byte() {
        let mut dec = Decoder::new(Limits::default());
        let mut evs = Vec::new();
        for b in &FRAME_BYTES[..48] {
            decode_all(&mut dec, std::slice::from_ref(b), &mut evs).unwrap();
        }
        assert!(dec.at_frame_boundary());
        let data: Vec<u8> = evs
            .iter()
            .filter_map(|e| match e {
                Ev::Data(d) => Some(d.clone()),
                _ => None,
            })
            .flatten()
            .collect();
        assert_eq!(data, b"xyz");
        assert_eq!(evs.last(), Some(&Ev::End));
    }

    #[test]
    fn encoder_checks_the_order() {
        let mut out = vec![0xa5; 0];
        let mut enc = Encoder::new();
        assert_eq!(
            enc.start_file("a", 1, &mut out),
            Err(EncodeError::OutOfOrder("a file outside a frame"))
        );
        assert_eq!(
            enc.start_frame(0x80, 0, &mut out),
            Err(EncodeError::StatusOutOfRange(0x80))
        );
        enc.start_frame(1, 1, &mut out).unwrap();
        assert!(enc.message(b"", &mut out).is_err());
        enc.start_file("a", 2, &mut out).unwrap();
        assert_eq!(
            enc.file_data(b"abc", &mut out),
            Err(EncodeError::LengthMismatch {
                declared: 2,
                given: 3
            })
        );
        enc.file_data(b"ab", &mut out).unwrap();
        assert!(enc.start_file("b", 0, &mut out).is_err());
        enc.message(b"", &mut out).unwrap();
        assert!(enc.idle());
        let long = "x".repeat(MAX_NAME_LEN + 1);
        enc.start_frame(1, 1, &mut out).unwrap();
        assert_eq!(
            enc.start_file(&long, 0, &mut out),
            Err(EncodeError::NameTooLong(MAX_NAME_LEN + 1))
        );
    }

    #[test]
    fn write_frame_streams_readers() {
        let mut out = Vec::new();
        let mut files = [("a", 3, &b"xyz"[..]), ("é", 0, &b""[..])];
        write_frame(&mut out, 5, &mut files, b"ping").unwrap();
        assert_eq!(out, FRAME_BYTES[..48]);
        let mut short = [("a", 4, &b"xyz"[..])];
        let e = write_frame(&mut Vec::new(), 5, &mut short, b"").unwrap_err();
        assert_eq!(e.kind(), std::io::ErrorKind::UnexpectedEof);
    }

    #[test]
    fn streamed_message() {
        let limits = Limits {
            max_message: 0,
            stream_message: true,
            ..Limits::default()
        };
        let mut dec = Decoder::new(limits);
        let mut input = &FRAME_BYTES[..48];
        let mut msg = Vec::new();
        let mut start = None;
        loop {
            let (used, ev) = dec.decode(input).unwrap();
            input = &input[used..];
            match ev {
                Some(Event::MessageStart { len }) => start = Some(len),
                Some(Event::MessageData(d)) => msg.extend_from_slice(d),
                Some(Event::Message(_)) => panic!("gathered while streaming"),
                Some(_) => {}
                None => break,
            }
        }
        assert_eq!(start, Some(4));
        assert_eq!(msg, b"ping");
        assert!(dec.at_frame_boundary());
    }
}
