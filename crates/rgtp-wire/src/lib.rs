//! RGTP v1 wire format: packet reprs, a nom parser and a hand-written emitter.
//!
//! Every multi-byte integer is big-endian. Every packet starts with the 4-byte
//! common header `Version | Type | Length`, where `Length` counts the whole
//! packet, header included, and must equal the datagram's length.
//!
//! Guarantees:
//! - [`Repr::parse`] never panics, whatever the input, and borrows variable-length
//!   parts (payloads, proofs, NAK index lists) from the datagram without copying.
//! - [`Repr::emit`] never panics on a buffer of exactly [`Repr::buffer_len`] bytes.
//! - `parse(emit(r)) == r` for every repr that [`Repr::check`] accepts (and
//!   whose payload fits the `max_payload` given to `parse`).
//! - After [`Packet::new_checked`] succeeds, no accessor of the view panics.
//!
//! Parse errors follow a fixed order, documented on [`Repr::parse`].
#![warn(missing_docs, unreachable_pub)]
#![forbid(unsafe_code)]

#[cfg(feature = "arbitrary")]
mod arbitrary_impls;
mod batch;
mod emit;
mod error;
mod packet;
mod parse;
mod repr;

pub use batch::{captured_packets, split_batch};
pub use error::Error;
pub use packet::Packet;
pub use repr::*;

/// The only protocol version this crate speaks.
pub const VERSION: u8 = 1;
/// Length of the common header.
pub const HEADER_LEN: usize = 4;
/// Largest chunk payload (ciphertext plus tag) upstream allows over UDP.
pub const MAX_PAYLOAD_UDP: usize = 1450;
/// Largest chunk payload upstream allows over raw Ethernet.
pub const MAX_PAYLOAD_ETHERNET: usize = 1430;
/// Length of an address-validation token (extension, see spec §5).
pub const TOKEN_LEN: usize = 16;
/// Length of a hash in a Merkle proof or root.
pub const HASH_LEN: usize = 32;
/// Chunks in one aligned run under NakFlags `PROOF_RUNS` (extension, spec §3.6):
/// only a run's first chunk, an index that is a multiple of this, carries its proof.
pub const PROOF_RUN: u32 = 64;

/// A 128-bit exposure identifier.
pub type ExposureId = [u8; 16];
/// A 32-byte hash.
pub type Hash = [u8; HASH_LEN];
/// An address-validation token.
pub type Token = [u8; TOKEN_LEN];
