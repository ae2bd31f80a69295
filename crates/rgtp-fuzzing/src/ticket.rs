//! `ticket`: ticket parsing on any string, and Display → parse round trips.

use arbitrary::{Arbitrary, Unstructured};
use rgtp::Ticket;
use rgtp_proto::{CipherId, HashId, Key};

#[derive(Debug, Arbitrary)]
struct Fields {
    host: HostKind,
    port: u16,
    exposure_id: [u8; 16],
    key: [u8; 32],
    cipher: Option<bool>,
    hash: Option<u8>,
}

#[derive(Debug, Arbitrary)]
enum HostKind {
    V4([u8; 4]),
    V6([u8; 16]),
    Name(String),
    Mac([u8; 6]),
}

/// First byte even: the rest, as (lossy) UTF-8, is parsed as a ticket; a ticket that
/// parses must print to a string that parses back to it. Odd: arbitrary fields are
/// printed and must parse back exactly.
pub fn ticket(data: &[u8]) {
    let Some((&mode, rest)) = data.split_first() else {
        return;
    };
    if mode & 1 == 0 {
        let text = String::from_utf8_lossy(rest);
        if let Ok(t) = text.parse::<Ticket>() {
            round_trip(&t);
        }
    } else if let Ok(f) = Fields::arbitrary(&mut Unstructured::new(rest)) {
        let (host, port, mac) = match f.host {
            HostKind::V4(a) => (std::net::Ipv4Addr::from(a).to_string(), f.port, None),
            HostKind::V6(a) => (format!("[{}]", std::net::Ipv6Addr::from(a)), f.port, None),
            HostKind::Name(s) => (s, f.port, None),
            HostKind::Mac(m) => (String::new(), 0, Some(m)),
        };
        let t = Ticket {
            host,
            port,
            mac,
            exposure_id: f.exposure_id,
            key: Key::from_bytes(f.key),
            cipher: f.cipher.map(|aes| {
                if aes {
                    CipherId::Aes256Gcm
                } else {
                    CipherId::ChaCha20Poly1305
                }
            }),
            hash: f.hash.map(|h| match h % 3 {
                0 => HashId::Blake2b256,
                1 => HashId::Sha256,
                _ => HashId::Blake3,
            }),
        };
        // Only hosts the ticket grammar can carry are expected to survive printing.
        if t.mac.is_some() || printable_host(&t.host) {
            let text = t.to_string();
            match text.parse::<Ticket>() {
                Ok(back) => assert_eq!(back, t, "Display → parse changed the ticket: {text:?}"),
                Err(e) => panic!("printed ticket {text:?} does not parse: {e}"),
            }
        }
    }
}

/// Hosts the ticket grammar can carry verbatim: not empty, no '#' or '?' (they start
/// the key and the query), and ':' only inside a bracketed IPv6 literal.
fn printable_host(h: &str) -> bool {
    !h.is_empty() && !h.contains(['#', '?']) && (h.starts_with('[') || !h.contains(':'))
}

fn round_trip(t: &Ticket) {
    let text = t.to_string();
    let back: Ticket = text
        .parse()
        .unwrap_or_else(|e| panic!("printed ticket {text:?} does not parse: {e}"));
    assert_eq!(
        &back, t,
        "parse → Display → parse changed the ticket: {text:?}"
    );
    assert_eq!(back.to_string(), text, "Display is not stable");
}
