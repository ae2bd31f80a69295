//! The sans-IO RGTP core: the layer traits, and the [`Exposer`] and [`Puller`]
//! state machines.
//!
//! Nothing here opens a socket, reads a clock, spawns a thread or draws ambient
//! randomness. Inputs are datagrams and [`Instant`]s handed in by a driver;
//! outputs are [`Transmit`]s written into the caller's buffer, events, and the
//! next deadline. The same core therefore runs over UDP, raw Ethernet, a pcap
//! replay, a deterministic simulator and a fuzzer.
#![warn(missing_docs, unreachable_pub)]
#![forbid(unsafe_code)]

pub mod crypto;
pub mod exposer;
pub mod fec;
pub mod latency;
pub mod merkle;
pub mod puller;
pub mod replay;
pub mod suite;
pub mod time;
pub mod token;

use std::net::SocketAddr;

pub use crypto::{CipherId, CipherSuite, Key};
pub use exposer::{Exposer, ExposerConfig, ExposerStats, Exposure};
pub use fec::{FecCodec, FecParams, FecScheme};
pub use merkle::{HashId, MerkleScheme, MerkleTree};
pub use puller::{Puller, PullerConfig, PullerEvent, PullerStats, SuiteFactory};
pub use suite::SuiteId;
pub use time::Instant;

/// Where a datagram came from or goes to. The core only compares peers and
/// binds address-validation tokens to their bytes.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Peer {
    /// A UDP endpoint.
    Ip(SocketAddr),
    /// A raw-Ethernet station.
    Ethernet([u8; 6]),
    /// A node of an in-memory network.
    Mem(u32),
}

impl Peer {
    /// Bytes that identify the peer, for token binding.
    pub fn key_bytes(&self, out: &mut Vec<u8>) {
        match self {
            Peer::Ip(SocketAddr::V4(a)) => {
                out.push(4);
                out.extend_from_slice(&a.ip().octets());
                out.extend_from_slice(&a.port().to_be_bytes());
            }
            Peer::Ip(SocketAddr::V6(a)) => {
                out.push(6);
                out.extend_from_slice(&a.ip().octets());
                out.extend_from_slice(&a.port().to_be_bytes());
            }
            Peer::Ethernet(mac) => {
                out.push(0xe);
                out.extend_from_slice(mac);
            }
            Peer::Mem(n) => {
                out.push(0xf);
                out.extend_from_slice(&n.to_be_bytes());
            }
        }
    }
}

/// One batch of datagrams for one destination, written into the caller's buffer.
///
/// When `segment_size` is `Some(s)`, the buffer holds `size / s` datagrams of `s`
/// bytes followed by at most one shorter one (UDP GSO's shape); otherwise it holds
/// exactly one datagram of `size` bytes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[must_use]
pub struct Transmit {
    /// Destination.
    pub destination: Peer,
    /// Bytes written into the buffer.
    pub size: usize,
    /// Datagram size when the buffer holds several.
    pub segment_size: Option<usize>,
}

impl Transmit {
    /// Iterates the datagrams of a transmit's buffer.
    pub fn datagrams<'a>(&self, buf: &'a [u8]) -> impl Iterator<Item = &'a [u8]> + 'a {
        let step = self.segment_size.unwrap_or(self.size).max(1);
        buf[..self.size].chunks(step)
    }
}
