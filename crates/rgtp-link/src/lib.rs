//! Links: how datagrams leave and reach a driver.
//!
//! Only drivers see links; the sans-IO core never does. A link sends batches
//! shaped like [`rgtp_proto::Transmit`] (one buffer plus a segment size, as UDP
//! GSO takes them) and receives batches (as UDP GRO and `recvmmsg` give them).
#![warn(missing_docs, unreachable_pub)]

use std::io;
use std::time::Duration;

use rgtp_proto::{Peer, Transmit};

pub mod impair;
pub mod mem;
pub mod udp;

pub use impair::{Impairment, ImpairmentConfig, ImpairmentStats, Lossy};
pub use mem::{MemLink, SimNet};
pub use udp::{UdpConfig, UdpLink};

/// What a link can carry.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Capabilities {
    /// Largest datagram (RGTP packet) the link carries.
    pub mtu: usize,
    /// Most datagrams one [`Link::send`] may carry.
    pub max_segments: usize,
}

/// One received datagram's metadata; the bytes are `buf[offset..offset + len]`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Received {
    /// Sender.
    pub from: Peer,
    /// Offset in the receive buffer.
    pub offset: usize,
    /// Length.
    pub len: usize,
}

/// A datagram link.
pub trait Link {
    /// What the link can carry.
    fn capabilities(&self) -> Capabilities;

    /// This end's own address.
    fn local_peer(&self) -> Peer;

    /// Sends the datagrams of `transmit` held in `buf[..transmit.size]`.
    /// A full send queue is not an error: the link may drop (and count) or block briefly.
    fn send(&mut self, transmit: &Transmit, buf: &[u8]) -> io::Result<()>;

    /// Waits up to `timeout` (`None`: forever; zero: do not wait) for datagrams,
    /// then receives as many as fit in `buf`, appending one [`Received`] per
    /// datagram to `out`. Returns the number received (0 on timeout).
    fn recv(
        &mut self,
        buf: &mut [u8],
        out: &mut Vec<Received>,
        timeout: Option<Duration>,
    ) -> io::Result<usize>;
}

impl<L: Link + ?Sized> Link for Box<L> {
    fn capabilities(&self) -> Capabilities {
        (**self).capabilities()
    }
    fn local_peer(&self) -> Peer {
        (**self).local_peer()
    }
    fn send(&mut self, transmit: &Transmit, buf: &[u8]) -> io::Result<()> {
        (**self).send(transmit, buf)
    }
    fn recv(
        &mut self,
        buf: &mut [u8],
        out: &mut Vec<Received>,
        timeout: Option<Duration>,
    ) -> io::Result<usize> {
        (**self).recv(buf, out, timeout)
    }
}
