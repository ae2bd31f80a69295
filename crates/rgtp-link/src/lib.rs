//! Links: the datagram and byte-stream links every protocol of the stack runs over.
//!
//! The [`Link`] and [`StreamLink`] traits and their types live in
//! [`redgiant_base`] and are re-exported here; this crate has the
//! implementations: UDP with GSO/GRO batching, raw Ethernet (AF_PACKET,
//! 802.1Q), in-memory links and the seeded impairment model; TCP and an
//! in-memory byte pipe with seeded delay, bandwidth and kill. Only drivers
//! see links; sans-IO endpoints never do.
#![warn(missing_docs, unreachable_pub)]

pub mod eth;
pub mod impair;
pub mod mem;
pub mod pipe;
mod sys;
pub mod tcp;
pub mod udp;

pub use redgiant_base::link::{Capabilities, Framing, Link, Received, Vlan};
pub use redgiant_base::stream::{StreamFraming, StreamLink, StreamRecv};
pub use redgiant_base::{Instant, Peer, Transmit};

pub use eth::{EthConfig, EthLink, EthStats};
pub use impair::{Impairment, ImpairmentConfig, ImpairmentStats, Lossy};
pub use mem::{MemLink, SimNet};
pub use pipe::{PipeConfig, PipeEnd, SimPipe};
pub use tcp::{TcpLink, TcpLinkListener};
pub use udp::{UdpConfig, UdpLink};

/// EtherType of RGTP over raw Ethernet (upstream §7.5).
pub const ETHERTYPE_RGTP: u16 = 0x88B5;
