//! The wire error: one variant per class of malformed packet.

use core::fmt;

/// Why a datagram is not a well-formed RGTP v1 packet.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum Error {
    /// Shorter than the common header or than its type's fixed part.
    Truncated,
    /// Version byte is not one this crate speaks (0 included).
    UnknownVersion(u8),
    /// Type byte names no packet type.
    UnknownType(u8),
    /// The header's Length differs from the datagram's length.
    LengthMismatch {
        /// Length field.
        declared: u16,
        /// Bytes actually present.
        actual: usize,
    },
    /// A fixed-size packet whose length is not its type's size.
    BadLength,
    /// Proof_Depth disagrees with the packet's length (or exceeds 32).
    BadProofDepth,
    /// NAK_Count disagrees with the packet's length.
    BadNakCount,
    /// Payload larger than the caller's MTU limit.
    PayloadTooLarge,
    /// Flags with a reserved or contradictory combination.
    BadFlags,
}

impl fmt::Display for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Error::Truncated => f.write_str("packet truncated"),
            Error::UnknownVersion(v) => write!(f, "unknown protocol version {v}"),
            Error::UnknownType(t) => write!(f, "unknown packet type {t:#04x}"),
            Error::LengthMismatch { declared, actual } => {
                write!(f, "length field {declared} but datagram has {actual} bytes")
            }
            Error::BadLength => f.write_str("wrong length for a fixed-size packet type"),
            Error::BadProofDepth => f.write_str("proof depth inconsistent with packet length"),
            Error::BadNakCount => f.write_str("NAK count inconsistent with packet length"),
            Error::PayloadTooLarge => f.write_str("payload exceeds the MTU limit"),
            Error::BadFlags => f.write_str("reserved or contradictory flags"),
        }
    }
}

impl std::error::Error for Error {}
