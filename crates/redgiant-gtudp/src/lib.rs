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
//! - [`endpoint`]: [`Gtudp`], a sans-IO [`redgiant_base::DatagramEndpoint`]
//!   that sends, receives, suppresses duplicates and times repetitions;
//! - [`socket`] (feature `socket`, default): [`GtudpSocket`], the endpoint on a UDP
//!   socket, blocking, with `send_to`, `send_confirmed` and `recv_from`;
//! - [`id`]: identity sources, the reference's `adler32 + counter` among them.
//! - [`auth`]: the optional authenticated profile, which seals every
//!   datagram with ChaCha20-Poly1305 under a per-session key
//!   ([`Config::with_auth`]).
//!
//! Like every endpoint of the stack, [`Gtudp`] reads no clock, opens no
//! socket and draws no randomness; [`redgiant_base::driver`] runs it over any
//! link, or on virtual time.
#![warn(missing_docs, unreachable_pub)]
#![forbid(unsafe_code)]

pub mod auth;
pub mod endpoint;
pub mod id;
#[cfg(feature = "socket")]
pub mod socket;
mod table;
pub mod wire;

pub use auth::{AuthKey, AuthKeyError};
pub use endpoint::{
    AuthConfig, Config, Datagram, Event, ExchangeId, FailReason, Gtudp, RttConfig, Stats, Timers,
};
pub use id::{IdSource, ReferenceIds, SeededIds};
#[cfg(feature = "socket")]
pub use socket::{GtudpSocket, SendError};
pub use wire::{Identity, Kind, Profile, ProfileError, Repr};
