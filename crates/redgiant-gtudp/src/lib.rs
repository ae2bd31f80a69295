//! gtUDP on the redgiant stack.
//!
//! gtUDP makes single UDP datagrams reliable with a three-way exchange: the
//! sender repeats a DATA until the receiver's RECV arrives and answers it
//! with an ACK; the receiver repeats its RECV until that ACK arrives. It has
//! no ordering, no streams and no congestion control: each datagram is its
//! own exchange. `spec/gtudp.md` describes the protocol and where this
//! implementation departs from the reference one.
//!
//! - [`wire`]: the [`Profile`] (magic and type codes) and the codec, a
//!   [`wire::Packet`] view and a [`Repr`] parsed with nom;
//! - [`id`]: identity sources, the reference's `adler32 + counter` among them.
#![warn(missing_docs, unreachable_pub)]
#![forbid(unsafe_code)]

pub mod id;
pub mod wire;

pub use id::{IdSource, ReferenceIds, SeededIds};
pub use wire::{Identity, Kind, Profile, ProfileError, Repr};
