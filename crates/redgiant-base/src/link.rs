//! The datagram link trait: how datagrams leave and reach a driver.
//!
//! Only drivers see links; sans-IO endpoints never do. A link sends batches
//! shaped like [`Transmit`] (one buffer plus a segment size, as UDP GSO takes
//! them) and receives batches (as UDP GRO and `recvmmsg` give them).

use std::io;
use std::sync::Arc;
use std::time::Duration;

use crate::{Peer, Transmit};

/// An IEEE 802.1Q tag: VLAN ID and priority (PCP, the TSN traffic class).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
pub struct Vlan {
    /// VLAN ID, 0..=4094 (0: priority tag only).
    pub id: u16,
    /// Priority code point, 0..=7.
    pub pcp: u8,
    /// Drop eligible indicator.
    pub dei: bool,
}

impl Vlan {
    /// The 16-bit tag control information: PCP (3 bits), DEI (1), VID (12).
    pub fn tci(&self) -> u16 {
        (u16::from(self.pcp & 7) << 13) | (u16::from(self.dei) << 12) | (self.id & 0x0fff)
    }

    /// Splits a tag control information field.
    pub fn from_tci(tci: u16) -> Vlan {
        Vlan {
            id: tci & 0x0fff,
            pcp: (tci >> 13) as u8,
            dei: tci & 0x1000 != 0,
        }
    }
}

/// How a link's datagrams look on the wire, so a recorder can write the frames
/// that were (or would have been) sent.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Framing {
    /// UDP datagrams: recorded with Ethernet/IP/UDP headers synthesised from the peers.
    Udp,
    /// Raw Ethernet frames (the link's EtherType), tagged when `vlan` is set.
    Ethernet {
        /// The 802.1Q tag the link puts on every frame it sends.
        vlan: Option<Vlan>,
    },
    /// No wire (in-memory links): recorded as UDP over IPv4 between synthetic hosts.
    Memory,
}

/// What a link can carry.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Capabilities {
    /// Largest datagram the link carries.
    pub mtu: usize,
    /// Most datagrams one [`Link::send`] may carry.
    pub max_segments: usize,
    /// Most bytes, all its datagrams together, that one [`Link::send`] hands the
    /// system in one call; a larger batch still goes out, in several calls
    /// (UDP GSO: 65,507). `usize::MAX` where only `max_segments` bounds a batch.
    pub max_batch_bytes: usize,
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

/// Memory whose bytes a link may hand to the kernel by reference instead of
/// copying them into each datagram ([`Link::lend`]): an exposer's sealed store,
/// whose datagrams lie ready back to back.
///
/// # Contract
///
/// The kernel may go on reading the pages after the send that lent them has
/// returned (a datagram queued at a receiver on this host, or on its way out of a
/// NIC), and it reads whatever they hold then. An implementor promises that the
/// bytes [`LentMemory::bytes`] returns stay at the same address and never change
/// while the value lives, and that the memory is given back to the system (an
/// anonymous mapping of its own, unmapped) rather than reused by the process once
/// it is dropped. Heap memory does not qualify: freed, it is written again, and
/// datagrams still queued would carry what was written. Breaking the promise
/// cannot make the process misbehave, only its datagrams: it is a contract on
/// what goes on the wire, not on memory safety.
pub trait LentMemory: Send + Sync {
    /// The bytes lent.
    fn bytes(&self) -> &[u8];
}

/// A datagram link.
pub trait Link {
    /// What the link can carry.
    fn capabilities(&self) -> Capabilities;

    /// This end's own address.
    fn local_peer(&self) -> Peer;

    /// How datagrams are framed on the wire (for recorders).
    fn framing(&self) -> Framing {
        Framing::Memory
    }

    /// Writes out anything the link buffers (a recorder's capture file).
    fn flush(&mut self) -> io::Result<()> {
        Ok(())
    }

    /// The 802.1Q tag of each datagram the last [`Link::recv`] returned, for
    /// links that see tags (raw Ethernet); `None` for the others.
    fn last_recv_vlans(&self) -> Option<&[Option<Vlan>]> {
        None
    }

    /// The local IP address `peer` reaches us at, when the link knows it (a
    /// UDP socket bound to an unspecified address learns it per datagram).
    fn local_ip_for(&self, _peer: &Peer) -> Option<std::net::IpAddr> {
        None
    }

    /// Offers `memory` for sends without a copy: a later [`Link::send`] whose
    /// bytes lie within it may pass its pages to the kernel by reference (the
    /// link keeps `memory` alive for as long as it might). Returns whether the
    /// link does; by default it does not, and every send copies.
    fn lend(&mut self, memory: Arc<dyn LentMemory>) -> bool {
        let _ = memory;
        false
    }

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
    fn framing(&self) -> Framing {
        (**self).framing()
    }
    fn flush(&mut self) -> io::Result<()> {
        (**self).flush()
    }
    fn last_recv_vlans(&self) -> Option<&[Option<Vlan>]> {
        (**self).last_recv_vlans()
    }
    fn local_ip_for(&self, peer: &Peer) -> Option<std::net::IpAddr> {
        (**self).local_ip_for(peer)
    }
    fn lend(&mut self, memory: Arc<dyn LentMemory>) -> bool {
        (**self).lend(memory)
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

/// A link lent to a driver for a while: `Driver::new(Borrowed(&mut link))`.
/// (A blanket `impl Link for &mut L` would shadow links' own inherent methods.)
#[derive(Debug)]
pub struct Borrowed<'a, L: ?Sized>(pub &'a mut L);

impl<L: Link + ?Sized> Link for Borrowed<'_, L> {
    fn capabilities(&self) -> Capabilities {
        self.0.capabilities()
    }
    fn local_peer(&self) -> Peer {
        self.0.local_peer()
    }
    fn framing(&self) -> Framing {
        self.0.framing()
    }
    fn flush(&mut self) -> io::Result<()> {
        self.0.flush()
    }
    fn last_recv_vlans(&self) -> Option<&[Option<Vlan>]> {
        self.0.last_recv_vlans()
    }
    fn local_ip_for(&self, peer: &Peer) -> Option<std::net::IpAddr> {
        self.0.local_ip_for(peer)
    }
    fn lend(&mut self, memory: Arc<dyn LentMemory>) -> bool {
        self.0.lend(memory)
    }
    fn send(&mut self, transmit: &Transmit, buf: &[u8]) -> io::Result<()> {
        self.0.send(transmit, buf)
    }
    fn recv(
        &mut self,
        buf: &mut [u8],
        out: &mut Vec<Received>,
        timeout: Option<Duration>,
    ) -> io::Result<usize> {
        self.0.recv(buf, out, timeout)
    }
}
