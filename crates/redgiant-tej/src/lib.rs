//! TEJ (tej-protoc v1) as a protocol of the redgiant stack.
//!
//! TEJ frames carry files and a message over one byte stream (TCP): a status
//! byte whose top bit is always set, a version byte, a file count, then each
//! file's name and bytes, then a message. `spec/tej.md` describes the format.
//!
//! - [`wire`]: the frame layout, a streaming [`wire::Decoder`] fed arbitrary
//!   slices that hands file bytes out as borrowed slices (a file of any size
//!   passes through in constant memory), and the [`wire::Encoder`] that
//!   writes frames piece by piece.
//! - [`endpoint`]: [`Connection`], a sans-IO [`redgiant_base::StreamEndpoint`]
//!   for one connection (both directions), run by
//!   [`redgiant_base::driver::StreamDriver`] over any stream link.
//!
//! - [`blocking`] (feature `net`, default): [`blocking::TejStream`] and
//!   [`blocking::TejListener`], TEJ over TCP used like
//!   [`std::net::TcpStream`], with received files streamed into a
//!   [`blocking::FrameSink`].
//!
//! # Guarantees
//!
//! - No input makes the decoder panic, and no declared length makes it
//!   allocate: names and messages grow only as their bytes arrive, and only
//!   up to the [`wire::Limits`] the receiver set.
//! - Encoding is canonical: decoding a frame and encoding its events again
//!   gives back the same bytes.
#![warn(missing_docs, unreachable_pub)]
#![forbid(unsafe_code)]

#[cfg(feature = "net")]
pub mod blocking;
pub mod endpoint;
pub mod wire;

pub use endpoint::{Body, Config, Connection, Event, OutFile, OutFrame};
pub use wire::{DecodeError, Decoder, EncodeError, Encoder, Limits};
