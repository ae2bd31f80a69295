//! The gtUDP wire format: a [`Profile`], a [`Packet`] view and a [`Repr`].
//!
//! Every gtUDP datagram is `magic ‖ type ‖ identity ‖ payload`:
//!
//! - `magic`: the profile's magic bytes, any length (none by default);
//! - `type`: one of the profile's three type codes (DATA, RECV, ACK), all of
//!   one length, at least one byte (`1d`, `5f`, `ae` by default);
//! - `identity`: four opaque bytes naming the exchange;
//! - `payload`: the application's bytes, on DATA only (possibly empty).
//!
//! Guarantees:
//! - [`Repr::parse`] never panics, whatever the input, and borrows the
//!   payload from the datagram.
//! - [`Repr::emit`] never panics on a buffer of exactly [`Repr::buffer_len`]
//!   bytes.
//! - `Repr::parse(emit(r)) == r` for every repr and valid profile.
//! - After [`Packet::new_checked`] succeeds, no accessor of the view panics.
//!
//! Checks run in a fixed order, so a datagram gets one well-defined error:
//! 1. shorter than `magic + type + 4` bytes: [`Error::Truncated`] (the
//!    reference implementation reads a short identity instead);
//! 2. the magic differs: [`Error::WrongMagic`];
//! 3. the type is none of the three: [`Error::UnknownType`];
//! 4. a RECV or ACK with bytes after the identity: [`Error::TrailingBytes`].
//!    No conforming sender emits them; refusing them keeps parse and emit
//!    inverse to each other, and a datagram that merely starts like a
//!    control packet is counted as foreign instead of acted on.

use core::fmt;

use nom::bytes::complete::{tag, take};
use nom::error::{ErrorKind, ParseError};
use nom::Parser;

/// Length of the identity field.
pub const IDENTITY_LEN: usize = 4;

/// Why a datagram is not a gtUDP packet of a profile.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum Error {
    /// Shorter than magic, type and identity together.
    Truncated,
    /// Does not start with the profile's magic.
    WrongMagic,
    /// The type field is none of the profile's three codes.
    UnknownType,
    /// A RECV or ACK longer than its header.
    TrailingBytes,
}

impl fmt::Display for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Error::Truncated => "datagram shorter than a gtUDP header",
            Error::WrongMagic => "magic bytes differ from the profile's",
            Error::UnknownType => "type field names no gtUDP packet type",
            Error::TrailingBytes => "RECV or ACK with bytes after the identity",
        })
    }
}

impl std::error::Error for Error {}

/// Why a [`Profile`] cannot be used.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum ProfileError {
    /// A type code is empty.
    EmptyType,
    /// The three type codes differ in length.
    TypeLengthsDiffer,
    /// Two type codes are equal.
    TypesNotDistinct,
}

impl fmt::Display for ProfileError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            ProfileError::EmptyType => "a packet type code is empty",
            ProfileError::TypeLengthsDiffer => "the three packet type codes differ in length",
            ProfileError::TypesNotDistinct => "two packet type codes are equal",
        })
    }
}

impl std::error::Error for ProfileError {}

/// The bytes both ends must agree on: the magic and the three type codes.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct Profile {
    magic: Vec<u8>,
    data: Vec<u8>,
    recv: Vec<u8>,
    ack: Vec<u8>,
}

impl Default for Profile {
    fn default() -> Self {
        Self::reference()
    }
}

impl Profile {
    /// The reference implementation's profile: no magic, types `1d`, `5f`, `ae`.
    pub fn reference() -> Self {
        Profile {
            magic: Vec::new(),
            data: vec![0x1d],
            recv: vec![0x5f],
            ack: vec![0xae],
        }
    }

    /// A profile with `magic` (possibly empty) and the DATA, RECV and ACK
    /// type codes, which must be non-empty, of one length and distinct.
    pub fn new(
        magic: Vec<u8>,
        data: Vec<u8>,
        recv: Vec<u8>,
        ack: Vec<u8>,
    ) -> Result<Self, ProfileError> {
        if data.is_empty() || recv.is_empty() || ack.is_empty() {
            return Err(ProfileError::EmptyType);
        }
        if data.len() != recv.len() || data.len() != ack.len() {
            return Err(ProfileError::TypeLengthsDiffer);
        }
        if data == recv || data == ack || recv == ack {
            return Err(ProfileError::TypesNotDistinct);
        }
        Ok(Profile {
            magic,
            data,
            recv,
            ack,
        })
    }

    /// The magic bytes.
    pub fn magic(&self) -> &[u8] {
        &self.magic
    }

    /// The type code of `kind`.
    pub fn type_code(&self, kind: Kind) -> &[u8] {
        match kind {
            Kind::Data => &self.data,
            Kind::Recv => &self.recv,
            Kind::Ack => &self.ack,
        }
    }

    /// Length of a type code.
    pub fn type_len(&self) -> usize {
        self.data.len()
    }

    /// Length of the header: magic, type and identity.
    pub fn header_len(&self) -> usize {
        self.magic.len() + self.type_len() + IDENTITY_LEN
    }

    fn kind_of(&self, code: &[u8]) -> Option<Kind> {
        [Kind::Data, Kind::Recv, Kind::Ack]
            .into_iter()
            .find(|&k| self.type_code(k) == code)
    }
}

/// The three packet types.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Kind {
    /// Carries a payload; answered by RECV.
    Data,
    /// Says a DATA arrived; answered by ACK.
    Recv,
    /// Says a RECV arrived; ends the exchange.
    Ack,
}

/// Four opaque bytes naming one exchange between two peers.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Default)]
pub struct Identity(pub [u8; IDENTITY_LEN]);

impl Identity {
    /// The identity whose bytes are `v` in big-endian order.
    pub const fn from_u32(v: u32) -> Self {
        Identity(v.to_be_bytes())
    }

    /// The bytes read as a big-endian number.
    pub const fn to_u32(self) -> u32 {
        u32::from_be_bytes(self.0)
    }
}

/// Eight hex digits.
impl fmt::Display for Identity {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for b in self.0 {
            write!(f, "{b:02x}")?;
        }
        Ok(())
    }
}

/// Field offsets, which depend on the profile's magic and type lengths.
mod field {
    pub(super) type Field = core::ops::Range<usize>;

    use super::{Profile, IDENTITY_LEN};

    pub(super) fn magic(p: &Profile) -> Field {
        0..p.magic.len()
    }

    pub(super) fn type_code(p: &Profile) -> Field {
        let start = p.magic.len();
        start..start + p.type_len()
    }

    pub(super) fn identity(p: &Profile) -> Field {
        let start = p.magic.len() + p.type_len();
        start..start + IDENTITY_LEN
    }

    pub(super) fn payload(p: &Profile) -> usize {
        p.header_len()
    }
}

/// A view over a gtUDP datagram of one profile.
#[derive(Debug, Clone)]
pub struct Packet<'p, T: AsRef<[u8]>> {
    buffer: T,
    profile: &'p Profile,
}

impl<'p, T: AsRef<[u8]>> Packet<'p, T> {
    /// A view without checks; accessors may panic on a short buffer.
    pub fn new_unchecked(buffer: T, profile: &'p Profile) -> Self {
        Packet { buffer, profile }
    }

    /// A view after [`Packet::check_len`].
    pub fn new_checked(buffer: T, profile: &'p Profile) -> Result<Self, Error> {
        let p = Self::new_unchecked(buffer, profile);
        p.check_len()?;
        Ok(p)
    }

    /// Fails with [`Error::Truncated`] unless the header fits.
    pub fn check_len(&self) -> Result<(), Error> {
        if self.buffer.as_ref().len() < self.profile.header_len() {
            return Err(Error::Truncated);
        }
        Ok(())
    }

    /// The magic bytes as found.
    pub fn magic(&self) -> &[u8] {
        &self.buffer.as_ref()[field::magic(self.profile)]
    }

    /// The type code as found.
    pub fn type_code(&self) -> &[u8] {
        &self.buffer.as_ref()[field::type_code(self.profile)]
    }

    /// The packet type, if the code is one of the profile's.
    pub fn kind(&self) -> Option<Kind> {
        self.profile.kind_of(self.type_code())
    }

    /// The identity.
    pub fn identity(&self) -> Identity {
        let mut id = [0; IDENTITY_LEN];
        id.copy_from_slice(&self.buffer.as_ref()[field::identity(self.profile)]);
        Identity(id)
    }

    /// Everything after the identity.
    pub fn payload(&self) -> &[u8] {
        &self.buffer.as_ref()[field::payload(self.profile)..]
    }

    /// The underlying buffer.
    pub fn into_inner(self) -> T {
        self.buffer
    }
}

impl<T: AsRef<[u8]> + AsMut<[u8]>> Packet<'_, T> {
    /// Writes the profile's magic.
    pub fn set_magic(&mut self) {
        let r = field::magic(self.profile);
        self.buffer.as_mut()[r].copy_from_slice(&self.profile.magic);
    }

    /// Writes the type code of `kind`.
    pub fn set_kind(&mut self, kind: Kind) {
        let r = field::type_code(self.profile);
        self.buffer.as_mut()[r].copy_from_slice(self.profile.type_code(kind));
    }

    /// Writes the identity.
    pub fn set_identity(&mut self, id: Identity) {
        let r = field::identity(self.profile);
        self.buffer.as_mut()[r].copy_from_slice(&id.0);
    }

    /// Everything after the identity, mutably.
    pub fn payload_mut(&mut self) -> &mut [u8] {
        let start = field::payload(self.profile);
        &mut self.buffer.as_mut()[start..]
    }
}

/// A parsed gtUDP packet.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Repr<'a> {
    /// DATA: a payload under an identity.
    Data {
        /// The exchange.
        id: Identity,
        /// The application's bytes.
        payload: &'a [u8],
    },
    /// RECV: the DATA under `id` arrived.
    Recv {
        /// The exchange.
        id: Identity,
    },
    /// ACK: the RECV under `id` arrived.
    Ack {
        /// The exchange.
        id: Identity,
    },
}

/// nom's error type for the parser: a wire [`Error`].
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

fn with<'a, O>(
    error: Error,
    mut parser: impl Parser<&'a [u8], Output = O, Error = WireError>,
) -> impl FnMut(&'a [u8]) -> PResult<'a, O> {
    move |input| parser.parse(input).map_err(|e| e.map(|_| WireError(error)))
}

impl<'a> Repr<'a> {
    /// Parses a datagram of `profile`; the checks run in the order of the
    /// [module docs](self).
    pub fn parse(data: &'a [u8], profile: &Profile) -> Result<Repr<'a>, Error> {
        Packet::new_checked(data, profile)?;
        let mut header = (
            with(Error::WrongMagic, tag(profile.magic())),
            take(profile.type_len()),
            take(IDENTITY_LEN),
        );
        let (rest, (_, code, id)) = match header.parse(data) {
            Ok(v) => v,
            Err(nom::Err::Error(e) | nom::Err::Failure(e)) => return Err(e.0),
            Err(nom::Err::Incomplete(_)) => return Err(Error::Truncated),
        };
        let kind = profile.kind_of(code).ok_or(Error::UnknownType)?;
        let mut bytes = [0; IDENTITY_LEN];
        bytes.copy_from_slice(id);
        let id = Identity(bytes);
        match kind {
            Kind::Data => Ok(Repr::Data { id, payload: rest }),
            _ if !rest.is_empty() => Err(Error::TrailingBytes),
            Kind::Recv => Ok(Repr::Recv { id }),
            Kind::Ack => Ok(Repr::Ack { id }),
        }
    }

    /// The packet type.
    pub fn kind(&self) -> Kind {
        match self {
            Repr::Data { .. } => Kind::Data,
            Repr::Recv { .. } => Kind::Recv,
            Repr::Ack { .. } => Kind::Ack,
        }
    }

    /// The identity.
    pub fn id(&self) -> Identity {
        match *self {
            Repr::Data { id, .. } | Repr::Recv { id } | Repr::Ack { id } => id,
        }
    }

    /// Bytes [`Repr::emit`] writes under `profile`.
    pub fn buffer_len(&self, profile: &Profile) -> usize {
        let payload = match self {
            Repr::Data { payload, .. } => payload.len(),
            _ => 0,
        };
        profile.header_len() + payload
    }

    /// Writes the packet into `buf`.
    ///
    /// # Panics
    ///
    /// If `buf` is shorter than [`Repr::buffer_len`]; bytes beyond it are
    /// left as they were.
    pub fn emit(&self, profile: &Profile, buf: &mut [u8]) {
        let len = self.buffer_len(profile);
        let mut p = Packet::new_unchecked(&mut buf[..len], profile);
        p.set_magic();
        p.set_kind(self.kind());
        p.set_identity(self.id());
        if let Repr::Data { payload, .. } = self {
            p.payload_mut().copy_from_slice(payload);
        }
    }

    /// Appends the packet to `out`.
    pub fn emit_vec(&self, profile: &Profile, out: &mut Vec<u8>) {
        let start = out.len();
        out.resize(start + self.buffer_len(profile), 0);
        self.emit(profile, &mut out[start..]);
    }
}

#[cfg(test)]
mod tests;
