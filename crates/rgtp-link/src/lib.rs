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
