//! Tickets: everything a puller needs, in one string.
//!
//! `rgtp://HOST:PORT/EXPOSURE_ID_HEX?cipher=NAME&hash=NAME#KEY_HEX`, or over
//! raw Ethernet `rgtp://02-00-5e-10-00-01/EXPOSURE_ID_HEX…` (a MAC address
//! instead of host and port).
//!
//! The key rides in the fragment, which never goes on the wire. The query
//! parameters are optional: when present they pin the suite, and a Manifest
//! announcing another one is refused. IPv6 hosts are bracketed (`[::1]:9000`).

use std::fmt;
use std::net::{SocketAddr, ToSocketAddrs};
use std::str::FromStr;

use rgtp_proto::{CipherId, HashId, Key};
use rgtp_wire::ExposureId;

/// A parsed ticket.
#[derive(Clone, PartialEq, Eq)]
pub struct Ticket {
    /// `host:port` as written (resolved by [`Ticket::socket_addr`]); empty when `mac` is set.
    pub host: String,
    /// Port (0 when `mac` is set).
    pub port: u16,
    /// The exposer's MAC address, for raw Ethernet (instead of host and port).
    pub mac: Option<[u8; 6]>,
    /// Exposure_ID.
    pub exposure_id: ExposureId,
    /// The AEAD key.
    pub key: Key,
    /// Pinned cipher, if any.
    pub cipher: Option<CipherId>,
    /// Pinned hash, if any.
    pub hash: Option<HashId>,
}

impl fmt::Debug for Ticket {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Ticket")
            .field("host", &self.host)
            .field("port", &self.port)
            .field(
                "mac",
                &self.mac.map(|m| rgtp_proto::Peer::Ethernet(m).to_string()),
            )
            .field("exposure_id", &hex::encode(self.exposure_id))
            .field("cipher", &self.cipher)
            .field("hash", &self.hash)
            .finish_non_exhaustive()
    }
}

/// Why a string is not a ticket; each names the part to fix.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum TicketError {
    /// Missing `rgtp://`.
    #[error("a ticket starts with rgtp:// (copy the whole line `rgtp expose` printed)")]
    Scheme,
    /// Host or port unreadable.
    #[error("the address part must be HOST:PORT, e.g. 127.0.0.1:9000 or [::1]:9000, or a MAC address such as 02-00-5e-10-00-01")]
    Address,
    /// Exposure_ID not 32 hex digits.
    #[error("the Exposure_ID after the address must be 32 hex digits")]
    ExposureId,
    /// Key not 64 hex digits.
    #[error("the key after '#' must be 64 hex digits; without it the data cannot be decrypted")]
    Key,
    /// Unknown query parameter or value.
    #[error("unknown ticket parameter {0:?} (known: cipher=chacha20-poly1305|aes-256-gcm, hash=blake2b-256|sha256|blake3)")]
    Param(String),
}

impl Ticket {
    /// The exposer as a peer: its MAC address, or its resolved UDP address.
    pub fn peer(&self) -> std::io::Result<rgtp_proto::Peer> {
        match self.mac {
            Some(m) => Ok(rgtp_proto::Peer::Ethernet(m)),
            None => self.socket_addr().map(rgtp_proto::Peer::Ip),
        }
    }

    /// Where the exposer is, as written in the ticket (`HOST:PORT` or the MAC address).
    pub fn address(&self) -> String {
        match self.mac {
            Some(m) => rgtp_proto::Peer::Ethernet(m).to_string(),
            None => format!("{}:{}", self.host, self.port),
        }
    }

    /// Resolves the address (first result).
    pub fn socket_addr(&self) -> std::io::Result<SocketAddr> {
        if self.mac.is_some() {
            return Err(std::io::Error::new(
                std::io::ErrorKind::InvalidInput,
                "this ticket names a raw-Ethernet exposer (a MAC address): pull it with --link eth:IFACE",
            ));
        }
        let host = self.host.trim_start_matches('[').trim_end_matches(']');
        (host, self.port).to_socket_addrs()?.next().ok_or_else(|| {
            std::io::Error::new(
                std::io::ErrorKind::NotFound,
                format!("cannot resolve {host}"),
            )
        })
    }
}

/// Reads `02-00-5e-10-00-01` or `02:00:5e:10:00:01`.
pub fn parse_mac(s: &str) -> Option<[u8; 6]> {
    let sep = if s.contains('-') { '-' } else { ':' };
    let mut out = [0u8; 6];
    let mut parts = s.split(sep);
    for b in &mut out {
        let p = parts.next()?;
        if p.len() != 2 {
            return None;
        }
        *b = u8::from_str_radix(p, 16).ok()?;
    }
    parts.next().is_none().then_some(out)
}

fn parse_hex<const N: usize>(s: &str) -> Option<[u8; N]> {
    let mut out = [0u8; N];
    if s.len() != 2 * N {
        return None;
    }
    hex::decode_to_slice(s, &mut out).ok()?;
    Some(out)
}

impl FromStr for Ticket {
    type Err = TicketError;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let rest = s
            .trim()
            .strip_prefix("rgtp://")
            .ok_or(TicketError::Scheme)?;
        let (before_key, key) = rest.split_once('#').ok_or(TicketError::Key)?;
        let key = Key::from_bytes(parse_hex::<32>(key).ok_or(TicketError::Key)?);
        let (path, query) = match before_key.split_once('?') {
            Some((p, q)) => (p, Some(q)),
            None => (before_key, None),
        };
        let (addr, id) = path.rsplit_once('/').ok_or(TicketError::ExposureId)?;
        let exposure_id = parse_hex::<16>(id).ok_or(TicketError::ExposureId)?;
        let mac = parse_mac(addr);
        let (host, port) = match mac {
            Some(_) => ("", 0),
            None => {
                let (host, port) = addr.rsplit_once(':').ok_or(TicketError::Address)?;
                if host.is_empty() || (host.contains(':') && !host.starts_with('[')) {
                    return Err(TicketError::Address);
                }
                (host, port.parse().map_err(|_| TicketError::Address)?)
            }
        };
        let mut t = Ticket {
            host: host.to_string(),
            port,
            mac,
            exposure_id,
            key,
            cipher: None,
            hash: None,
        };
        for kv in query
            .into_iter()
            .flat_map(|q| q.split('&'))
            .filter(|kv| !kv.is_empty())
        {
            match kv.split_once('=') {
                Some(("cipher", v)) => {
                    t.cipher = Some(CipherId::from_name(v).ok_or(TicketError::Param(kv.into()))?)
                }
                Some(("hash", v)) => {
                    t.hash = Some(HashId::from_name(v).ok_or(TicketError::Param(kv.into()))?)
                }
                _ => return Err(TicketError::Param(kv.into())),
            }
        }
        Ok(t)
    }
}

impl fmt::Display for Ticket {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "rgtp://{}/{}",
            self.address(),
            hex::encode(self.exposure_id)
        )?;
        let mut sep = '?';
        if let Some(c) = self.cipher {
            write!(f, "{sep}cipher={}", c.name())?;
            sep = '&';
        }
        if let Some(h) = self.hash {
            write!(f, "{sep}hash={}", h.name())?;
        }
        write!(f, "#{}", hex::encode(self.key.as_bytes()))
    }
}

/// Host text for an address: IPv6 bracketed.
pub fn host_of(addr: &SocketAddr) -> String {
    match addr {
        SocketAddr::V4(a) => a.ip().to_string(),
        SocketAddr::V6(a) => format!("[{}]", a.ip()),
    }
}

#[cfg(test)]
mod tests {
    use proptest::prelude::*;

    use super::*;

    #[test]
    fn round_trip_v4_and_v6() {
        for host in ["127.0.0.1", "[::1]", "example.invalid"] {
            let t = Ticket {
                host: host.into(),
                port: 9000,
                mac: None,
                exposure_id: [0xab; 16],
                key: Key::from_bytes([0x11; 32]),
                cipher: Some(CipherId::Aes256Gcm),
                hash: Some(HashId::Blake3),
            };
            let s = t.to_string();
            assert_eq!(s.parse::<Ticket>().unwrap(), t, "{s}");
        }
    }

    #[test]
    fn mac_tickets() {
        let id = "ab".repeat(16);
        let key = "11".repeat(32);
        for addr in ["02-00-5e-10-00-01", "02:00:5E:10:00:01"] {
            let t: Ticket = format!("rgtp://{addr}/{id}#{key}").parse().unwrap();
            assert_eq!(t.mac, Some([2, 0, 0x5e, 0x10, 0, 1]));
            assert_eq!(
                t.peer().unwrap(),
                rgtp_proto::Peer::Ethernet([2, 0, 0x5e, 0x10, 0, 1])
            );
            assert!(t.socket_addr().is_err());
            let again: Ticket = t.to_string().parse().unwrap();
            assert_eq!(again, t);
            assert!(t.to_string().starts_with("rgtp://02-00-5e-10-00-01/"));
        }
        for bad in [
            "02-00-5e-10-00",
            "02-00-5e-10-00-01-02",
            "02-00-5e-10-00-0g",
            "02-00-5e:10-00-01",
        ] {
            assert_eq!(
                format!("rgtp://{bad}/{id}#{key}").parse::<Ticket>(),
                Err(TicketError::Address),
                "{bad}"
            );
        }
    }

    #[test]
    fn errors_name_the_part() {
        let id = "ab".repeat(16);
        let key = "11".repeat(32);
        let ok = format!("rgtp://127.0.0.1:9000/{id}#{key}");
        assert!(ok.parse::<Ticket>().is_ok());
        assert_eq!("http://x".parse::<Ticket>(), Err(TicketError::Scheme));
        assert_eq!(
            format!("rgtp://127.0.0.1:9000/{id}").parse::<Ticket>(),
            Err(TicketError::Key)
        );
        assert_eq!(
            format!("rgtp://127.0.0.1:9000/{id}#{}", &key[2..]).parse::<Ticket>(),
            Err(TicketError::Key)
        );
        assert_eq!(
            format!("rgtp://127.0.0.1:9000/abcd#{key}").parse::<Ticket>(),
            Err(TicketError::ExposureId)
        );
        assert_eq!(
            format!("rgtp://127.0.0.1:x/{id}#{key}").parse::<Ticket>(),
            Err(TicketError::Address)
        );
        assert_eq!(
            format!("rgtp://::1:9/{id}#{key}").parse::<Ticket>(),
            Err(TicketError::Address)
        );
        assert!(matches!(
            format!("rgtp://h:9/{id}?cipher=rot13#{key}").parse::<Ticket>(),
            Err(TicketError::Param(_))
        ));
    }

    #[test]
    fn debug_hides_key() {
        let t: Ticket = format!("rgtp://h:1/{}#{}", "00".repeat(16), "5a".repeat(32))
            .parse()
            .unwrap();
        assert!(!format!("{t:?}").contains("5a5a"));
    }

    proptest! {
        #[test]
        fn arbitrary_strings_never_panic(s in ".{0,200}") {
            let _ = s.parse::<Ticket>();
        }
    }
}
