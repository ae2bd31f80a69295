//! Peers: where a datagram came from or goes to.

use core::fmt;
use std::net::SocketAddr;

/// Where a datagram came from or goes to. Endpoints only compare peers and
/// bind address-validation tokens to their bytes; links map them to sockets,
/// stations or simulator nodes.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Peer {
    /// A UDP (or TCP) endpoint.
    Ip(SocketAddr),
    /// A raw-Ethernet station.
    Ethernet([u8; 6]),
    /// A node of an in-memory network.
    Mem(u32),
}

impl Peer {
    /// Bytes that identify the peer, for token binding: a one-byte kind
    /// (4, 6, 0x0e, 0x0f) then the address (and port, big-endian).
    pub fn key_bytes(&self, out: &mut Vec<u8>) {
        out.extend_from_slice(self.key().as_bytes());
    }

    /// The bytes of [`Peer::key_bytes`], in an array: no allocation.
    pub fn key(&self) -> PeerKey {
        let mut k = PeerKey {
            bytes: [0; PeerKey::MAX],
            len: 0,
        };
        let mut put = |part: &[u8]| {
            let at = usize::from(k.len);
            k.bytes[at..at + part.len()].copy_from_slice(part);
            k.len += part.len() as u8;
        };
        match self {
            Peer::Ip(SocketAddr::V4(a)) => {
                put(&[4]);
                put(&a.ip().octets());
                put(&a.port().to_be_bytes());
            }
            Peer::Ip(SocketAddr::V6(a)) => {
                put(&[6]);
                put(&a.ip().octets());
                put(&a.port().to_be_bytes());
            }
            Peer::Ethernet(mac) => {
                put(&[0xe]);
                put(mac);
            }
            Peer::Mem(n) => {
                put(&[0xf]);
                put(&n.to_be_bytes());
            }
        }
        k
    }
}

/// A peer's identifying bytes ([`Peer::key`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PeerKey {
    bytes: [u8; PeerKey::MAX],
    len: u8,
}

impl PeerKey {
    /// The longest key: kind, IPv6 address, port.
    const MAX: usize = 1 + 16 + 2;

    /// The key's bytes.
    pub fn as_bytes(&self) -> &[u8] {
        &self.bytes[..usize::from(self.len)]
    }
}

/// Writes a MAC address as tickets do: `02-00-5e-10-00-01`.
pub fn fmt_mac(mac: &[u8; 6], f: &mut impl fmt::Write) -> fmt::Result {
    for (i, b) in mac.iter().enumerate() {
        if i > 0 {
            f.write_char('-')?;
        }
        write!(f, "{b:02x}")?;
    }
    Ok(())
}

/// `192.0.2.1:9000`, `[2001:db8::1]:9000`, `02-00-5e-10-00-01`, or `mem:7`.
impl fmt::Display for Peer {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Peer::Ip(a) => write!(f, "{a}"),
            Peer::Ethernet(m) => fmt_mac(m, f),
            Peer::Mem(n) => write!(f, "mem:{n}"),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn test_display() {
        assert_eq!(
            Peer::Ip("192.0.2.1:9000".parse().unwrap()).to_string(),
            "192.0.2.1:9000"
        );
        assert_eq!(
            Peer::Ip("[2001:db8::1]:9".parse().unwrap()).to_string(),
            "[2001:db8::1]:9"
        );
        assert_eq!(
            Peer::Ethernet([2, 0, 0x5e, 0x10, 0, 1]).to_string(),
            "02-00-5e-10-00-01"
        );
        assert_eq!(Peer::Mem(7).to_string(), "mem:7");
    }

    #[test]
    fn test_key_bytes() {
        let mut out = Vec::new();
        Peer::Ip("192.0.2.1:9000".parse().unwrap()).key_bytes(&mut out);
        assert_eq!(out, [4, 192, 0, 2, 1, 0x23, 0x28]);
        out.clear();
        Peer::Ethernet([1, 2, 3, 4, 5, 6]).key_bytes(&mut out);
        assert_eq!(out, [0xe, 1, 2, 3, 4, 5, 6]);
        out.clear();
        Peer::Mem(0x0102_0304).key_bytes(&mut out);
        assert_eq!(out, [0xf, 1, 2, 3, 4]);
        // The longest key: kind, 16 address bytes, port.
        let v6 = Peer::Ip("[2001:db8::1]:53".parse().unwrap()).key();
        let mut want = vec![6, 0x20, 0x01, 0x0d, 0xb8];
        want.extend_from_slice(&[0; 11]);
        want.extend_from_slice(&[1, 0, 53]);
        assert_eq!(v6.as_bytes(), &want[..]);
    }
}
