//! The flow wire format (`spec/flow.md`): a [`Packet`] view and a [`Repr`].
//!
//! Every flow datagram is an 18-byte header and a body whose shape the kind
//! fixes:
//!
//! ```text
//!  0      1      2            6            10           14       16       18
//! +------+------+------------+------------+------------+--------+--------+------
//! | ver  | kind | src flow   | dst flow   | sequence   | frag   | frag   | body
//! | 0x01 |      | (u32)      | (u32)      | (u32)      | index  | count  |
//! +------+------+------------+------------+------------+--------+--------+------
//! ```
//!
//! All integers are big-endian.
//!
//! Guarantees:
//! - [`Repr::parse`] never panics, whatever the input, and borrows the name
//!   and payload from the datagram.
//! - [`Repr::emit`] never panics on a buffer of exactly [`Repr::buffer_len`]
//!   bytes.
//! - `Repr::parse(emit(r)) == r` for every valid repr ([`Repr::validate`]).
//! - After [`Packet::new_checked`] succeeds, no accessor of the view panics.
//!
//! Checks run in a fixed order, so a malformed datagram gets one
//! well-defined [`Error`]: length, version, kind, flow ids, sequence and
//! fragment fields, then the body (see `spec/flow.md` §3).

use core::fmt;

use nom::bytes::complete::take;
use nom::error::{ErrorKind, ParseError};
use nom::number::complete::{be_u16, be_u32, be_u64, u8 as be_u8};
use nom::Parser;

use crate::qos::QoS;

/// The protocol version this crate speaks.
pub const VERSION: u8 = 1;

/// Length of the header every datagram starts with.
pub const HEADER_LEN: usize = 18;

/// Length of an encoded [`QoS`].
pub const QOS_LEN: usize = 32;

/// Longest destination name an ALLOC carries, in bytes.
pub const MAX_NAME_LEN: usize = 255;

/// Why a datagram is not a flow datagram.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum Error {
    /// Shorter than its header, or than the body its kind requires.
    Truncated,
    /// The version byte is not [`VERSION`].
    BadVersion,
    /// The kind byte names no message.
    UnknownKind,
    /// A flow id that must be non-zero is zero.
    ZeroFlowId,
    /// An ALLOC names a destination flow (it must be zero).
    UnexpectedFlowId,
    /// A message other than DATA or ACK has a non-zero sequence or fragment field.
    NonZeroField,
    /// A DATA or ACK with a fragment count of zero, or an index not below it.
    BadFragment,
    /// An ALLOC whose QoS has `in_order` other than 0 or 1.
    BadQoS,
    /// An ALLOC with an empty destination name.
    EmptyName,
    /// An ALLOC whose destination name is not UTF-8.
    NameNotUtf8,
    /// An ALLOC_REFUSED with an unknown reason code.
    UnknownReason,
    /// Bytes after the body of a message whose body has a fixed length.
    TrailingBytes,
    /// A name longer than [`MAX_NAME_LEN`] bytes, which no ALLOC can carry
    /// (from [`Repr::validate`] only).
    NameTooLong,
}

impl fmt::Display for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Error::Truncated => "datagram shorter than its header or body",
            Error::BadVersion => "unknown flow protocol version",
            Error::UnknownKind => "kind field names no flow message",
            Error::ZeroFlowId => "a flow id that must be set is zero",
            Error::UnexpectedFlowId => "ALLOC with a destination flow id",
            Error::NonZeroField => "sequence or fragment field set on a control message",
            Error::BadFragment => "fragment count zero or index not below it",
            Error::BadQoS => "QoS in_order is neither 0 nor 1",
            Error::EmptyName => "ALLOC with an empty destination name",
            Error::NameNotUtf8 => "ALLOC destination name is not UTF-8",
            Error::UnknownReason => "ALLOC_REFUSED reason code unknown",
            Error::TrailingBytes => "bytes after a fixed-length body",
            Error::NameTooLong => "destination name longer than 255 bytes",
        })
    }
}

impl std::error::Error for Error {}

/// The seven message kinds and their codes.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Kind {
    /// Asks for a flow to a name with a QoS.
    Alloc = 1,
    /// The flow is accepted.
    AllocOk = 2,
    /// The flow is refused.
    AllocRefused = 3,
    /// One fragment of an SDU.
    Data = 4,
    /// One fragment arrived.
    Ack = 5,
    /// The sender closed the flow.
    Dealloc = 6,
    /// The sender is still there.
    Keepalive = 7,
}

impl Kind {
    /// The kind of code `c`.
    pub fn from_code(c: u8) -> Option<Kind> {
        Some(match c {
            1 => Kind::Alloc,
            2 => Kind::AllocOk,
            3 => Kind::AllocRefused,
            4 => Kind::Data,
            5 => Kind::Ack,
            6 => Kind::Dealloc,
            7 => Kind::Keepalive,
            _ => return None,
        })
    }
}

/// Why a flow was refused.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Reason {
    /// Nothing is registered under the name.
    NoSuchName = 1,
    /// The application refused.
    Refused = 2,
    /// The QoS asks for a layer this end cannot provide.
    UnsupportedQoS = 3,
    /// This end has no room for another flow.
    NoResources = 4,
}

impl Reason {
    /// The reason of code `c`.
    pub fn from_code(c: u8) -> Option<Reason> {
        Some(match c {
            1 => Reason::NoSuchName,
            2 => Reason::Refused,
            3 => Reason::UnsupportedQoS,
            4 => Reason::NoResources,
            _ => return None,
        })
    }
}

impl fmt::Display for Reason {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Reason::NoSuchName => "no such name",
            Reason::Refused => "refused by the application",
            Reason::UnsupportedQoS => "QoS not supported",
            Reason::NoResources => "no room for another flow",
        })
    }
}

/// One end's name for a flow. Zero means "none yet".
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Default)]
pub struct FlowId(pub u32);

impl fmt::Display for FlowId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "flow:{}", self.0)
    }
}

/// Where a fragment sits in its SDU: `index` of `count`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
pub struct Frag {
    /// Position, from 0.
    pub index: u16,
    /// Fragments in the SDU, at least 1.
    pub count: u16,
}

impl Frag {
    /// The only fragment of an SDU that fits one datagram.
    pub const WHOLE: Frag = Frag { index: 0, count: 1 };

    fn is_valid(&self) -> bool {
        self.count > 0 && self.index < self.count
    }
}

mod field {
    pub(super) type Field = core::ops::Range<usize>;

    pub(super) const VERSION: usize = 0;
    pub(super) const KIND: usize = 1;
    pub(super) const SRC: Field = 2..6;
    pub(super) const DST: Field = 6..10;
    pub(super) const SEQ: Field = 10..14;
    pub(super) const FRAG_INDEX: Field = 14..16;
    pub(super) const FRAG_COUNT: Field = 16..18;
    pub(super) const BODY: usize = 18;
}

/// A view over a flow datagram.
#[derive(Debug, Clone)]
pub struct Packet<T: AsRef<[u8]>> {
    buffer: T,
}

fn be32(b: &[u8]) -> u32 {
    u32::from_be_bytes([b[0], b[1], b[2], b[3]])
}

fn be16(b: &[u8]) -> u16 {
    u16::from_be_bytes([b[0], b[1]])
}

impl<T: AsRef<[u8]>> Packet<T> {
    /// A view without checks; accessors may panic on a short buffer.
    pub fn new_unchecked(buffer: T) -> Self {
        Packet { buffer }
    }

    /// A view after [`Packet::check_len`].
    pub fn new_checked(buffer: T) -> Result<Self, Error> {
        let p = Self::new_unchecked(buffer);
        p.check_len()?;
        Ok(p)
    }

    /// Fails with [`Error::Truncated`] unless the header fits.
    pub fn check_len(&self) -> Result<(), Error> {
        if self.buffer.as_ref().len() < HEADER_LEN {
            return Err(Error::Truncated);
        }
        Ok(())
    }

    /// The version byte.
    pub fn version(&self) -> u8 {
        self.buffer.as_ref()[field::VERSION]
    }

    /// The kind code as found.
    pub fn kind_code(&self) -> u8 {
        self.buffer.as_ref()[field::KIND]
    }

    /// The sender's flow id.
    pub fn src(&self) -> FlowId {
        FlowId(be32(&self.buffer.as_ref()[field::SRC]))
    }

    /// The receiver's flow id.
    pub fn dst(&self) -> FlowId {
        FlowId(be32(&self.buffer.as_ref()[field::DST]))
    }

    /// The sequence number.
    pub fn seq(&self) -> u32 {
        be32(&self.buffer.as_ref()[field::SEQ])
    }

    /// The fragment index and count.
    pub fn frag(&self) -> Frag {
        let b = self.buffer.as_ref();
        Frag {
            index: be16(&b[field::FRAG_INDEX]),
            count: be16(&b[field::FRAG_COUNT]),
        }
    }

    /// Everything after the header.
    pub fn body(&self) -> &[u8] {
        &self.buffer.as_ref()[field::BODY..]
    }
}

impl<T: AsRef<[u8]> + AsMut<[u8]>> Packet<T> {
    /// Writes the version byte.
    pub fn set_version(&mut self, v: u8) {
        self.buffer.as_mut()[field::VERSION] = v;
    }

    /// Writes the kind code.
    pub fn set_kind(&mut self, kind: Kind) {
        self.buffer.as_mut()[field::KIND] = kind as u8;
    }

    /// Writes the sender's flow id.
    pub fn set_src(&mut self, id: FlowId) {
        self.buffer.as_mut()[field::SRC].copy_from_slice(&id.0.to_be_bytes());
    }

    /// Writes the receiver's flow id.
    pub fn set_dst(&mut self, id: FlowId) {
        self.buffer.as_mut()[field::DST].copy_from_slice(&id.0.to_be_bytes());
    }

    /// Writes the sequence number.
    pub fn set_seq(&mut self, seq: u32) {
        self.buffer.as_mut()[field::SEQ].copy_from_slice(&seq.to_be_bytes());
    }

    /// Writes the fragment index and count.
    pub fn set_frag(&mut self, frag: Frag) {
        let b = self.buffer.as_mut();
        b[field::FRAG_INDEX].copy_from_slice(&frag.index.to_be_bytes());
        b[field::FRAG_COUNT].copy_from_slice(&frag.count.to_be_bytes());
    }

    /// Everything after the header, mutably.
    pub fn body_mut(&mut self) -> &mut [u8] {
        &mut self.buffer.as_mut()[field::BODY..]
    }
}

/// What a datagram says, beyond the flow ids.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Message<'a> {
    /// ALLOC: a flow to `name` with `qos`.
    Alloc {
        /// The QoS asked for.
        qos: QoS,
        /// The destination name, 1 to 255 bytes of UTF-8.
        name: &'a str,
    },
    /// ALLOC_OK.
    AllocOk,
    /// ALLOC_REFUSED.
    AllocRefused(Reason),
    /// DATA: one fragment of SDU `seq`.
    Data {
        /// The SDU's sequence number.
        seq: u32,
        /// Where the fragment sits.
        frag: Frag,
        /// The fragment's bytes.
        payload: &'a [u8],
    },
    /// ACK: fragment `frag` of SDU `seq` arrived.
    Ack {
        /// The SDU's sequence number.
        seq: u32,
        /// The fragment.
        frag: Frag,
    },
    /// DEALLOC.
    Dealloc,
    /// KEEPALIVE.
    Keepalive,
}

/// A parsed flow datagram.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct Repr<'a> {
    /// The sender's flow id.
    pub src: FlowId,
    /// The receiver's flow id (zero in ALLOC).
    pub dst: FlowId,
    /// The message.
    pub message: Message<'a>,
}

/// nom's error type for the body parser: a wire [`Error`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct WireError(Error);

impl<I> ParseError<I> for WireError {
    fn from_error_kind(_input: I, _kind: ErrorKind) -> Self {
        WireError(Error::Truncated)
    }

    fn append(_input: I, _kind: ErrorKind, other: Self) -> Self {
        other
    }
}

type PResult<'a, O> = nom::IResult<&'a [u8], O, WireError>;

fn qos(input: &[u8]) -> PResult<'_, QoS> {
    let (rest, (delay, bandwidth, availability, loss, ber, in_order, max_gap, cypher_s, timeout)) =
        (
            be_u32, be_u64, be_u8, be_u32, be_u32, be_u8, be_u32, be_u16, be_u32,
        )
            .parse(input)?;
    if in_order > 1 {
        return Err(nom::Err::Failure(WireError(Error::BadQoS)));
    }
    Ok((
        rest,
        QoS {
            delay,
            bandwidth,
            availability,
            loss,
            ber,
            in_order,
            max_gap,
            cypher_s,
            timeout,
        },
    ))
}

fn alloc_body(input: &[u8]) -> PResult<'_, (QoS, &str)> {
    let (rest, qos) = qos(input)?;
    let (rest, len) = be_u8(rest)?;
    if len == 0 {
        return Err(nom::Err::Failure(WireError(Error::EmptyName)));
    }
    let (rest, name) = take(len).parse(rest)?;
    let name =
        core::str::from_utf8(name).map_err(|_| nom::Err::Failure(WireError(Error::NameNotUtf8)))?;
    Ok((rest, (qos, name)))
}

fn run<'a, O>(
    input: &'a [u8],
    parser: impl Fn(&'a [u8]) -> PResult<'a, O>,
) -> Result<(&'a [u8], O), Error> {
    parser(input).map_err(|e| match e {
        nom::Err::Error(e) | nom::Err::Failure(e) => e.0,
        nom::Err::Incomplete(_) => Error::Truncated,
    })
}

fn no_trailing(rest: &[u8]) -> Result<(), Error> {
    if rest.is_empty() {
        Ok(())
    } else {
        Err(Error::TrailingBytes)
    }
}

impl<'a> Repr<'a> {
    /// Parses a datagram; the checks run in the order of `spec/flow.md` §3.
    pub fn parse(data: &'a [u8]) -> Result<Repr<'a>, Error> {
        let p = Packet::new_checked(data)?;
        if p.version() != VERSION {
            return Err(Error::BadVersion);
        }
        let kind = Kind::from_code(p.kind_code()).ok_or(Error::UnknownKind)?;
        let (src, dst) = (p.src(), p.dst());
        if src.0 == 0 && kind != Kind::AllocRefused {
            return Err(Error::ZeroFlowId);
        }
        match (kind, dst.0) {
            (Kind::Alloc, 0) => {}
            (Kind::Alloc, _) => return Err(Error::UnexpectedFlowId),
            (_, 0) => return Err(Error::ZeroFlowId),
            _ => {}
        }
        let (seq, frag) = (p.seq(), p.frag());
        match kind {
            Kind::Data | Kind::Ack if !frag.is_valid() => return Err(Error::BadFragment),
            Kind::Data | Kind::Ack => {}
            _ if seq != 0 || frag != Frag::default() => return Err(Error::NonZeroField),
            _ => {}
        }
        let body = &data[HEADER_LEN..];
        let message = match kind {
            Kind::Alloc => {
                let (rest, (qos, name)) = run(body, alloc_body)?;
                no_trailing(rest)?;
                Message::Alloc { qos, name }
            }
            Kind::AllocRefused => {
                let (rest, code) = run(body, be_u8)?;
                let reason = Reason::from_code(code).ok_or(Error::UnknownReason)?;
                no_trailing(rest)?;
                Message::AllocRefused(reason)
            }
            Kind::Data => Message::Data {
                seq,
                frag,
                payload: body,
            },
            Kind::Ack | Kind::AllocOk | Kind::Dealloc | Kind::Keepalive => {
                no_trailing(body)?;
                match kind {
                    Kind::Ack => Message::Ack { seq, frag },
                    Kind::AllocOk => Message::AllocOk,
                    Kind::Dealloc => Message::Dealloc,
                    _ => Message::Keepalive,
                }
            }
        };
        Ok(Repr { src, dst, message })
    }

    /// Checks what [`Repr::parse`] would refuse after [`Repr::emit`]: the
    /// flow ids, fragment fields, QoS and name.
    pub fn validate(&self) -> Result<(), Error> {
        if self.src.0 == 0 && self.kind() != Kind::AllocRefused {
            return Err(Error::ZeroFlowId);
        }
        match (self.kind(), self.dst.0) {
            (Kind::Alloc, 0) => {}
            (Kind::Alloc, _) => return Err(Error::UnexpectedFlowId),
            (_, 0) => return Err(Error::ZeroFlowId),
            _ => {}
        }
        match self.message {
            Message::Data { frag, .. } | Message::Ack { frag, .. } if !frag.is_valid() => {
                Err(Error::BadFragment)
            }
            Message::Alloc { qos, name } => {
                if qos.in_order > 1 {
                    Err(Error::BadQoS)
                } else if name.is_empty() {
                    Err(Error::EmptyName)
                } else if name.len() > MAX_NAME_LEN {
                    Err(Error::NameTooLong)
                } else {
                    Ok(())
                }
            }
            _ => Ok(()),
        }
    }

    /// The message kind.
    pub fn kind(&self) -> Kind {
        match self.message {
            Message::Alloc { .. } => Kind::Alloc,
            Message::AllocOk => Kind::AllocOk,
            Message::AllocRefused(_) => Kind::AllocRefused,
            Message::Data { .. } => Kind::Data,
            Message::Ack { .. } => Kind::Ack,
            Message::Dealloc => Kind::Dealloc,
            Message::Keepalive => Kind::Keepalive,
        }
    }

    /// Bytes [`Repr::emit`] writes.
    pub fn buffer_len(&self) -> usize {
        HEADER_LEN
            + match self.message {
                Message::Alloc { name, .. } => QOS_LEN + 1 + name.len().min(MAX_NAME_LEN),
                Message::AllocRefused(_) => 1,
                Message::Data { payload, .. } => payload.len(),
                _ => 0,
            }
    }

    /// Writes the datagram into `buf`. A name longer than [`MAX_NAME_LEN`]
    /// is cut to that length (at a byte, so [`Repr::validate`] first).
    ///
    /// # Panics
    ///
    /// If `buf` is shorter than [`Repr::buffer_len`]; bytes beyond it are
    /// left as they were.
    pub fn emit(&self, buf: &mut [u8]) {
        let len = self.buffer_len();
        let mut p = Packet::new_unchecked(&mut buf[..len]);
        p.set_version(VERSION);
        p.set_kind(self.kind());
        p.set_src(self.src);
        p.set_dst(self.dst);
        let (seq, frag) = match self.message {
            Message::Data { seq, frag, .. } | Message::Ack { seq, frag } => (seq, frag),
            _ => (0, Frag::default()),
        };
        p.set_seq(seq);
        p.set_frag(frag);
        let body = p.body_mut();
        match self.message {
            Message::Alloc { qos, name } => {
                emit_qos(&qos, &mut body[..QOS_LEN]);
                let name = &name.as_bytes()[..name.len().min(MAX_NAME_LEN)];
                body[QOS_LEN] = name.len() as u8;
                body[QOS_LEN + 1..].copy_from_slice(name);
            }
            Message::AllocRefused(reason) => body[0] = reason as u8,
            Message::Data { payload, .. } => body.copy_from_slice(payload),
            _ => {}
        }
    }

    /// Appends the datagram to `out`.
    pub fn emit_vec(&self, out: &mut Vec<u8>) {
        let start = out.len();
        out.resize(start + self.buffer_len(), 0);
        self.emit(&mut out[start..]);
    }
}

fn emit_qos(q: &QoS, out: &mut [u8]) {
    let mut at = 0;
    let mut put = |b: &[u8]| {
        out[at..at + b.len()].copy_from_slice(b);
        at += b.len();
    };
    put(&q.delay.to_be_bytes());
    put(&q.bandwidth.to_be_bytes());
    put(&[q.availability]);
    put(&q.loss.to_be_bytes());
    put(&q.ber.to_be_bytes());
    put(&[q.in_order]);
    put(&q.max_gap.to_be_bytes());
    put(&q.cypher_s.to_be_bytes());
    put(&q.timeout.to_be_bytes());
}

#[cfg(test)]
mod tests;
