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
//! Two extensions keep plain flows byte for byte as they were:
//! - the top bit of the kind byte ([`SEALED`]) marks a datagram of an
//!   encrypted flow. A sealed ALLOC carries the allocator's salt and a tag
//!   after the name, a sealed ALLOC_OK the acceptor's salt and a tag; any
//!   other sealed datagram carries a packet number after the header, then
//!   its body encrypted and the AEAD tag ([`Message::Sealed`]). The codec
//!   only frames them; [`crate::seal`] seals and opens, and
//!   [`Message::open`] reads the body once it is open.
//! - kind 9, PARITY, carries one fragment of a Reed-Solomon parity shard
//!   over a group of SDUs ([`Message::Parity`]).
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

/// The bit of the kind byte that marks a sealed datagram.
pub const SEALED: u8 = 0x80;

/// Length of a handshake salt.
pub const SALT_LEN: usize = 16;

/// Length of an AEAD tag.
pub const TAG_LEN: usize = 16;

/// Length of the packet number of a sealed datagram.
pub const PN_LEN: usize = 8;

/// Where the body of a sealed datagram starts: header and packet number,
/// the associated data of its AEAD.
pub const SEALED_HEADER_LEN: usize = HEADER_LEN + PN_LEN;

/// Bytes sealing adds to a datagram: packet number and tag.
pub const SEAL_OVERHEAD: usize = PN_LEN + TAG_LEN;

/// Length of the group fields that start a PARITY body.
pub const PARITY_PREFIX_LEN: usize = 3;

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
    /// A PARITY whose group has no data or no parity shards, more than 255
    /// shards in all, or a parity index not below its parity count.
    BadParity,
    /// A sealed repr of a kind that is never sealed this way (from
    /// [`Repr::validate`] only).
    NotSealable,
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
            Error::BadParity => "PARITY group fields out of range",
            Error::NotSealable => "this kind is not sealed this way",
        })
    }
}

impl std::error::Error for Error {}

/// The message kinds and their codes (without the [`SEALED`] bit).
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
    /// One fragment of a parity shard of a group of SDUs.
    Parity = 9,
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
            9 => Kind::Parity,
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
    /// The flow asks for encryption and this end has no flow key.
    NoKey = 5,
    /// The flow asks for encryption and the ALLOC's tag shows the two ends
    /// hold different keys.
    KeyMismatch = 6,
}

impl Reason {
    /// The reason of code `c`.
    pub fn from_code(c: u8) -> Option<Reason> {
        Some(match c {
            1 => Reason::NoSuchName,
            2 => Reason::Refused,
            3 => Reason::UnsupportedQoS,
            4 => Reason::NoResources,
            5 => Reason::NoKey,
            6 => Reason::KeyMismatch,
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
            Reason::NoKey => {
                "the peer has no flow key for an encrypted flow: give both ends the same \
                 32-byte key (Config::key, RGTP_FLOW_KEY or RGTP_FLOW_KEY_FILE)"
            }
            Reason::KeyMismatch => {
                "the peer holds another flow key: give both ends the same 32-byte key \
                 (Config::key, RGTP_FLOW_KEY or RGTP_FLOW_KEY_FILE)"
            }
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

    /// The kind code as found, [`SEALED`] bit included.
    pub fn kind_code(&self) -> u8 {
        self.buffer.as_ref()[field::KIND]
    }

    /// Whether the kind byte has the [`SEALED`] bit.
    pub fn is_sealed(&self) -> bool {
        self.kind_code() & SEALED != 0
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

    /// Writes the kind code (without the [`SEALED`] bit).
    pub fn set_kind(&mut self, kind: Kind) {
        self.buffer.as_mut()[field::KIND] = kind as u8;
    }

    /// Writes the kind byte as given, [`SEALED`] bit included.
    pub fn set_kind_code(&mut self, code: u8) {
        self.buffer.as_mut()[field::KIND] = code;
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

/// The group a PARITY belongs to and which of its parity shards it carries.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct Group {
    /// Data shards: the SDUs from the group's first sequence number on.
    pub data: u8,
    /// Parity shards of the group.
    pub parity: u8,
    /// Which parity shard, below `parity`.
    pub index: u8,
}

impl Group {
    fn is_valid(&self) -> bool {
        self.data > 0
            && self.parity > 0
            && usize::from(self.data) + usize::from(self.parity) <= 255
            && self.index < self.parity
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
    /// PARITY: fragment `frag` of parity shard `group.index` over the SDUs
    /// `first .. first + group.data`.
    Parity {
        /// The sequence number of the group's first SDU.
        first: u32,
        /// Where the fragment sits in the parity shard.
        frag: Frag,
        /// The group's shape and the shard's index.
        group: Group,
        /// The fragment's bytes.
        shard: &'a [u8],
    },
    /// A sealed ALLOC: an ALLOC for an encrypted flow, with the allocator's
    /// salt and a tag that proves it holds the flow key.
    SealedAlloc {
        /// The QoS asked for.
        qos: QoS,
        /// The destination name, 1 to 255 bytes of UTF-8.
        name: &'a str,
        /// The allocator's salt.
        salt: [u8; SALT_LEN],
        /// The tag over every byte before it.
        tag: [u8; TAG_LEN],
    },
    /// A sealed ALLOC_OK: the acceptor's salt and a tag under the key of
    /// its direction.
    SealedAllocOk {
        /// The acceptor's salt.
        salt: [u8; SALT_LEN],
        /// The tag over every byte before it.
        tag: [u8; TAG_LEN],
    },
    /// Any other sealed datagram (DATA, ACK, DEALLOC, KEEPALIVE, PARITY),
    /// as framed: [`Message::open`] reads the body once it is open.
    Sealed {
        /// The kind of the message inside.
        kind: Kind,
        /// The header's sequence field.
        seq: u32,
        /// The header's fragment fields.
        frag: Frag,
        /// The packet number, from which the nonce comes.
        pn: u64,
        /// The encrypted body followed by the tag (at least [`TAG_LEN`] bytes).
        sealed: &'a [u8],
    },
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

fn array<const N: usize>(input: &[u8]) -> PResult<'_, [u8; N]> {
    let (rest, b) = take(N).parse(input)?;
    let mut out = [0u8; N];
    out.copy_from_slice(b);
    Ok((rest, out))
}

fn salt_and_tag(input: &[u8]) -> PResult<'_, ([u8; SALT_LEN], [u8; TAG_LEN])> {
    let (rest, salt) = array::<SALT_LEN>(input)?;
    let (rest, tag) = array::<TAG_LEN>(rest)?;
    Ok((rest, (salt, tag)))
}

fn group(input: &[u8]) -> PResult<'_, Group> {
    let (rest, (data, parity, index)) = (be_u8, be_u8, be_u8).parse(input)?;
    let g = Group {
        data,
        parity,
        index,
    };
    if !g.is_valid() {
        return Err(nom::Err::Failure(WireError(Error::BadParity)));
    }
    Ok((rest, g))
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

/// Whether the kind has sequence and fragment fields.
fn has_frag(kind: Kind) -> bool {
    matches!(kind, Kind::Data | Kind::Ack | Kind::Parity)
}

/// Whether a datagram of this kind is sealed as [`Message::Sealed`].
fn sealed_in_body(kind: Kind) -> bool {
    matches!(
        kind,
        Kind::Data | Kind::Ack | Kind::Dealloc | Kind::Keepalive | Kind::Parity
    )
}

impl<'a> Message<'a> {
    /// The message of kind `kind` (not ALLOC, ALLOC_OK nor ALLOC_REFUSED)
    /// whose header carries `seq` and `frag` and whose body is `body`: how a
    /// [`Message::Sealed`] reads once opened. The body checks are those of
    /// a plain datagram of that kind.
    pub fn open(kind: Kind, seq: u32, frag: Frag, body: &'a [u8]) -> Result<Message<'a>, Error> {
        Ok(match kind {
            Kind::Data => Message::Data {
                seq,
                frag,
                payload: body,
            },
            Kind::Parity => {
                let (shard, group) = run(body, group)?;
                Message::Parity {
                    first: seq,
                    frag,
                    group,
                    shard,
                }
            }
            Kind::Ack => {
                no_trailing(body)?;
                Message::Ack { seq, frag }
            }
            Kind::Dealloc => {
                no_trailing(body)?;
                Message::Dealloc
            }
            Kind::Keepalive => {
                no_trailing(body)?;
                Message::Keepalive
            }
            Kind::Alloc | Kind::AllocOk | Kind::AllocRefused => return Err(Error::NotSealable),
        })
    }

    /// The sequence and fragment fields of the header.
    fn seq_frag(&self) -> (u32, Frag) {
        match *self {
            Message::Data { seq, frag, .. }
            | Message::Ack { seq, frag }
            | Message::Sealed { seq, frag, .. } => (seq, frag),
            Message::Parity { first, frag, .. } => (first, frag),
            _ => (0, Frag::default()),
        }
    }

    /// Bytes of the plain body (before any sealing).
    fn plain_body_len(&self) -> usize {
        match *self {
            Message::Alloc { name, .. } => QOS_LEN + 1 + name.len().min(MAX_NAME_LEN),
            Message::SealedAlloc { name, .. } => {
                QOS_LEN + 1 + name.len().min(MAX_NAME_LEN) + SALT_LEN + TAG_LEN
            }
            Message::SealedAllocOk { .. } => SALT_LEN + TAG_LEN,
            Message::AllocRefused(_) => 1,
            Message::Data { payload, .. } => payload.len(),
            Message::Parity { shard, .. } => PARITY_PREFIX_LEN + shard.len(),
            Message::Sealed { sealed, .. } => PN_LEN + sealed.len(),
            _ => 0,
        }
    }

    /// Writes the plain body into `body` (exactly [`Message::plain_body_len`] bytes).
    fn emit_body(&self, body: &mut [u8]) {
        match *self {
            Message::Alloc { qos, name } | Message::SealedAlloc { qos, name, .. } => {
                emit_qos(&qos, &mut body[..QOS_LEN]);
                let name = &name.as_bytes()[..name.len().min(MAX_NAME_LEN)];
                body[QOS_LEN] = name.len() as u8;
                let end = QOS_LEN + 1 + name.len();
                body[QOS_LEN + 1..end].copy_from_slice(name);
                if let Message::SealedAlloc { salt, tag, .. } = *self {
                    body[end..end + SALT_LEN].copy_from_slice(&salt);
                    body[end + SALT_LEN..].copy_from_slice(&tag);
                }
            }
            Message::SealedAllocOk { salt, tag } => {
                body[..SALT_LEN].copy_from_slice(&salt);
                body[SALT_LEN..].copy_from_slice(&tag);
            }
            Message::AllocRefused(reason) => body[0] = reason as u8,
            Message::Data { payload, .. } => body.copy_from_slice(payload),
            Message::Parity { group, shard, .. } => {
                body[..PARITY_PREFIX_LEN].copy_from_slice(&[group.data, group.parity, group.index]);
                body[PARITY_PREFIX_LEN..].copy_from_slice(shard);
            }
            Message::Sealed { pn, sealed, .. } => {
                body[..PN_LEN].copy_from_slice(&pn.to_be_bytes());
                body[PN_LEN..].copy_from_slice(sealed);
            }
            _ => {}
        }
    }
}

impl<'a> Repr<'a> {
    /// Parses a datagram; the checks run in the order of `spec/flow.md` §3
    /// (and, for sealed and PARITY datagrams, the sections that describe them).
    pub fn parse(data: &'a [u8]) -> Result<Repr<'a>, Error> {
        let p = Packet::new_checked(data)?;
        if p.version() != VERSION {
            return Err(Error::BadVersion);
        }
        let sealed = p.is_sealed();
        let kind = Kind::from_code(p.kind_code() & !SEALED).ok_or(Error::UnknownKind)?;
        if sealed && kind == Kind::AllocRefused {
            return Err(Error::UnknownKind);
        }
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
            k if has_frag(k) && !frag.is_valid() => return Err(Error::BadFragment),
            k if has_frag(k) => {}
            _ if seq != 0 || frag != Frag::default() => return Err(Error::NonZeroField),
            _ => {}
        }
        let body = &data[HEADER_LEN..];
        let message = match (kind, sealed) {
            (Kind::Alloc, false) => {
                let (rest, (qos, name)) = run(body, alloc_body)?;
                no_trailing(rest)?;
                Message::Alloc { qos, name }
            }
            (Kind::Alloc, true) => {
                let (rest, (qos, name)) = run(body, alloc_body)?;
                let (rest, (salt, tag)) = run(rest, salt_and_tag)?;
                no_trailing(rest)?;
                Message::SealedAlloc {
                    qos,
                    name,
                    salt,
                    tag,
                }
            }
            (Kind::AllocOk, true) => {
                let (rest, (salt, tag)) = run(body, salt_and_tag)?;
                no_trailing(rest)?;
                Message::SealedAllocOk { salt, tag }
            }
            (Kind::AllocRefused, _) => {
                let (rest, code) = run(body, be_u8)?;
                let reason = Reason::from_code(code).ok_or(Error::UnknownReason)?;
                no_trailing(rest)?;
                Message::AllocRefused(reason)
            }
            (Kind::AllocOk, false) => {
                no_trailing(body)?;
                Message::AllocOk
            }
            (_, true) => {
                let (sealed, pn) = run(body, be_u64)?;
                if sealed.len() < TAG_LEN {
                    return Err(Error::Truncated);
                }
                Message::Sealed {
                    kind,
                    seq,
                    frag,
                    pn,
                    sealed,
                }
            }
            (_, false) => Message::open(kind, seq, frag, body)?,
        };
        Ok(Repr { src, dst, message })
    }

    /// Checks what [`Repr::parse`] would refuse after [`Repr::emit`]: the
    /// flow ids, fragment and group fields, QoS, name and sealed kind.
    pub fn validate(&self) -> Result<(), Error> {
        let kind = self.kind();
        if self.src.0 == 0 && kind != Kind::AllocRefused {
            return Err(Error::ZeroFlowId);
        }
        match (kind, self.dst.0) {
            (Kind::Alloc, 0) => {}
            (Kind::Alloc, _) => return Err(Error::UnexpectedFlowId),
            (_, 0) => return Err(Error::ZeroFlowId),
            _ => {}
        }
        let (_, frag) = self.message.seq_frag();
        if has_frag(kind) && !frag.is_valid() {
            return Err(Error::BadFragment);
        }
        match self.message {
            Message::Alloc { qos, name } | Message::SealedAlloc { qos, name, .. } => {
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
            Message::Parity { group, .. } if !group.is_valid() => Err(Error::BadParity),
            Message::Sealed { kind, .. } if !sealed_in_body(kind) => Err(Error::NotSealable),
            Message::Sealed { sealed, .. } if sealed.len() < TAG_LEN => Err(Error::Truncated),
            _ => Ok(()),
        }
    }

    /// The message kind (of the message inside, for a sealed datagram).
    pub fn kind(&self) -> Kind {
        match self.message {
            Message::Alloc { .. } | Message::SealedAlloc { .. } => Kind::Alloc,
            Message::AllocOk | Message::SealedAllocOk { .. } => Kind::AllocOk,
            Message::AllocRefused(_) => Kind::AllocRefused,
            Message::Data { .. } => Kind::Data,
            Message::Ack { .. } => Kind::Ack,
            Message::Dealloc => Kind::Dealloc,
            Message::Keepalive => Kind::Keepalive,
            Message::Parity { .. } => Kind::Parity,
            Message::Sealed { kind, .. } => kind,
        }
    }

    /// Whether the datagram has the [`SEALED`] bit.
    pub fn is_sealed(&self) -> bool {
        matches!(
            self.message,
            Message::SealedAlloc { .. } | Message::SealedAllocOk { .. } | Message::Sealed { .. }
        )
    }

    /// Bytes [`Repr::emit`] writes.
    pub fn buffer_len(&self) -> usize {
        HEADER_LEN + self.message.plain_body_len()
    }

    fn emit_header(&self, buf: &mut [u8], sealed: bool) {
        let mut p = Packet::new_unchecked(buf);
        p.set_version(VERSION);
        p.set_kind_code(self.kind() as u8 | if sealed { SEALED } else { 0 });
        p.set_src(self.src);
        p.set_dst(self.dst);
        let (seq, frag) = self.message.seq_frag();
        p.set_seq(seq);
        p.set_frag(frag);
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
        let buf = &mut buf[..len];
        self.emit_header(buf, self.is_sealed());
        self.message.emit_body(&mut buf[HEADER_LEN..]);
    }

    /// Appends the datagram to `out`.
    pub fn emit_vec(&self, out: &mut Vec<u8>) {
        let start = out.len();
        out.resize(start + self.buffer_len(), 0);
        self.emit(&mut out[start..]);
    }

    /// Appends the datagram in the layout of a sealed one, body still in
    /// the clear: header with the [`SEALED`] bit, packet number `pn`, the
    /// plain body. Returns where the body starts in `out`; sealing it in
    /// place and appending the tag ([`crate::seal`]) finishes the datagram.
    ///
    /// Only for DATA, ACK, DEALLOC, KEEPALIVE and PARITY
    /// ([`Error::NotSealable`] otherwise, and nothing is written).
    pub fn emit_to_seal(&self, pn: u64, out: &mut Vec<u8>) -> Result<usize, Error> {
        if !sealed_in_body(self.kind()) || self.is_sealed() {
            return Err(Error::NotSealable);
        }
        let start = out.len();
        let body_len = self.message.plain_body_len();
        out.resize(start + SEALED_HEADER_LEN + body_len, 0);
        self.emit_header(&mut out[start..start + HEADER_LEN], true);
        out[start + HEADER_LEN..start + SEALED_HEADER_LEN].copy_from_slice(&pn.to_be_bytes());
        self.message
            .emit_body(&mut out[start + SEALED_HEADER_LEN..]);
        Ok(start + SEALED_HEADER_LEN)
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
