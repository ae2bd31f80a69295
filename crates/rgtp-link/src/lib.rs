//! Links: the datagram links every protocol of the stack runs over.
//!
//! The [`Link`] trait and its types live in [`redgiant_base::link`] and are
//! re-exported here; this crate has the implementations: UDP with GSO/GRO
//! batching, raw Ethernet (AF_PACKET, 802.1Q) and the [`ether`] frame codec
//! it shares with the capture tools, in-memory links, the seeded impairment
//! model and the [`Lossy`] middleware that applies it to any link. Only
//! drivers see links; sans-IO endpoints never do.
#![warn(missing_docs, unreachable_pub)]

pub mod eth;
pub mod ether;
pub mod impair;
pub mod lossy;
pub mod mem;
mod sys;
pub mod udp;

pub use redgiant_base::link::{Capabilities, Framing, Link, Received, Vlan};
pub use redgiant_base::{Instant, Peer, Transmit};

pub use eth::{EthConfig, EthLink, EthStats};
pub use ether::ETHERTYPE_RGTP;
pub use impair::{Impairment, ImpairmentConfig, ImpairmentStats};
pub use lossy::Lossy;
pub use mem::{MemLink, SimNet};
pub use udp::{UdpConfig, UdpLink};
