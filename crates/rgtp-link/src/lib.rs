//! Links: the datagram and byte-stream links every protocol of the stack runs over.
//!
//! The [`Link`] and [`StreamLink`] traits and their types live in
//! [`redgiant_base`] and are re-exported here; this crate has the
//! implementations: UDP with GSO/GRO batching, raw Ethernet (AF_PACKET,
//! 802.1Q) and the [`ether`] frame codec it shares with the capture tools,
//! in-memory links, the seeded impairment model and the [`Lossy`]
//! middleware that applies it to any link; TCP and an in-memory byte pipe
//! with seeded delay, bandwidth and kill. Only drivers see links; sans-IO
//! endpoints never do.
#![warn(missing_docs, unreachable_pub)]

pub mod channels;
pub mod eth;
pub mod ether;
pub mod impair;
mod lend;
pub mod lossy;
pub mod mem;
pub mod pipe;
mod schedule;
mod sys;
pub mod tcp;
pub mod trace;
pub mod udp;

pub use redgiant_base::link::{Capabilities, Framing, LentMemory, Link, Received, Vlan};
pub use redgiant_base::stream::{StreamFraming, StreamLink, StreamRecv};
pub use redgiant_base::{Instant, Peer, Transmit};

pub use channels::Channels;
pub use eth::{EthConfig, EthLink, EthStats};
pub use ether::ETHERTYPE_RGTP;
pub use impair::{Impairment, ImpairmentConfig, ImpairmentStats};
pub use lossy::Lossy;
pub use mem::{MemLink, SimNet};
pub use pipe::{PipeConfig, PipeEnd, SimPipe};
pub use tcp::{TcpLink, TcpLinkListener};
pub use trace::{DeliveryTrace, TraceError};
pub use udp::{UdpConfig, UdpLink};

/// The in-memory network as the one driver's virtual network.
impl redgiant_base::driver::Network for SimNet {
    fn send(&mut self, now: Instant, from: Peer, to: Peer, data: &[u8]) {
        SimNet::send(self, now, from, to, data)
    }
    fn deliver_due(&mut self, now: Instant, out: &mut Vec<(Peer, Peer, Vec<u8>)>) -> usize {
        SimNet::deliver_due(self, now, out)
    }
    fn next_delivery(&self) -> Option<Instant> {
        SimNet::next_delivery(self)
    }
}
