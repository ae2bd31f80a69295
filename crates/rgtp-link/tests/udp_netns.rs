//! The UDP link over a path with a 1500-byte MTU: two network namespaces joined by
//! a veth pair. Datagrams too big for the path go out one per `sendmsg`, IP
//! fragments them (or, with fragmentation off, the kernel refuses them and the
//! link counts them), and GSO stays in use for the datagrams that fit.
//!
//! Runs as root on Linux; each test builds its own namespaces.
#![cfg(target_os = "linux")]

mod netns;

use std::net::{IpAddr, SocketAddr};
use std::time::{Duration, Instant};

use netns::VethPair;
use redgiant_base::{Peer, Transmit};
use rgtp_link::{Link, UdpConfig, UdpLink};

/// Bytes of a datagram that fits a 1500-byte path (RGTP's default chunk packet).
const FITS: usize = 1240;
/// Bytes of a datagram that does not (a 1200-byte chunk with a proof of depth 14).
const TOO_BIG: usize = 1689;

/// Two namespaces on one veth pair (MTU 1500), addressed `A` and `B` in each family.
fn path(v6: bool) -> (VethPair, IpAddr, IpAddr) {
    let pair = VethPair::new();
    pair.set_mtu(1500);
    let (a, b, prefix) = if v6 {
        ("fd52:4754::1", "fd52:4754::2", "64")
    } else {
        ("10.82.71.1", "10.82.71.2", "24")
    };
    for (ns, iface, ip) in [(&pair.a, &pair.a_if, a), (&pair.b, &pair.b_if, b)] {
        let cidr = format!("{ip}/{prefix}");
        let mut args = vec!["addr", "add", cidr.as_str(), "dev", iface.as_str()];
        if v6 {
            args.push("nodad");
        }
        ns.ip(&args);
    }
    // Each side knows the other's MAC from the start: no datagram waits for (or is
    // dropped from the queue of) an ARP or neighbour discovery still under way.
    let mac = |m: [u8; 6]| m.map(|b| format!("{b:02x}")).join(":");
    let (a_mac, b_mac) = (mac(pair.a_mac()), mac(pair.b_mac()));
    for (ns, iface, peer, lladdr) in [
        (&pair.a, &pair.a_if, b, &b_mac),
        (&pair.b, &pair.b_if, a, &a_mac),
    ] {
        ns.ip(&[
            "neigh",
            "replace",
            peer,
            "lladdr",
            lladdr,
            "dev",
            iface,
            "nud",
            "permanent",
        ]);
    }
    (pair, a.parse().unwrap(), b.parse().unwrap())
}

fn bind(ns: &netns::Netns, ip: IpAddr, config: UdpConfig) -> UdpLink {
    ns.run(move || UdpLink::bind_with(SocketAddr::new(ip, 0), config))
        .unwrap_or_else(|e| panic!("binding {ip} in {}: {e}", ns.name()))
}

/// `count` datagrams of `len` bytes, each starting with its tag and index, then a
/// byte pattern; the last is `last` bytes long.
fn batch(tag: u8, count: usize, len: usize, last: usize) -> Vec<u8> {
    let mut out = Vec::new();
    for i in 0..count {
        let n = if i + 1 == count { last } else { len };
        out.push(tag);
        out.push(i as u8);
        out.extend((2..n).map(|j| (j as u8).wrapping_mul(7).wrapping_add(tag ^ i as u8)));
    }
    out
}

fn send(link: &mut UdpLink, to: SocketAddr, buf: &[u8], segment: usize) {
    let transmit = Transmit {
        destination: Peer::Ip(to),
        size: buf.len(),
        segment_size: Some(segment),
    };
    link.send(&transmit, buf).unwrap();
}

/// Everything that arrives until nothing has for half a second.
fn drain(link: &mut UdpLink) -> Vec<Vec<u8>> {
    let mut buf = vec![0; link.recommended_recv_buffer_len()];
    let mut got = Vec::new();
    let deadline = Instant::now() + Duration::from_secs(10);
    while Instant::now() < deadline {
        let mut meta = Vec::new();
        let n = link
            .recv(&mut buf, &mut meta, Some(Duration::from_millis(500)))
            .unwrap();
        if n == 0 {
            break;
        }
        got.extend(
            meta.iter()
                .map(|r| buf[r.offset..r.offset + r.len].to_vec()),
        );
    }
    got
}

/// Sends a GSO batch of 8 datagrams too big for the path (and a short last one),
/// then a batch of 20 that fit; returns what arrived, sorted, and the sender.
fn exchange(v6: bool, config: UdpConfig) -> (Vec<Vec<u8>>, UdpLink, Vec<Vec<u8>>) {
    let (pair, a, b) = path(v6);
    let mut tx = bind(&pair.a, a, config);
    let mut rx = bind(&pair.b, b, UdpConfig::default());
    assert!(
        tx.max_gso_segments() > 1,
        "this kernel offers no UDP GSO on veth"
    );
    let big = batch(1, 9, TOO_BIG, 1000);
    let fits = batch(2, 20, FITS, FITS);
    send(&mut tx, rx.local_addr(), &big, TOO_BIG);
    send(&mut tx, rx.local_addr(), &fits, FITS);
    let mut got = drain(&mut rx);
    got.sort();
    let mut sent: Vec<Vec<u8>> = big
        .chunks(TOO_BIG)
        .chain(fits.chunks(FITS))
        .map(<[u8]>::to_vec)
        .collect();
    sent.sort();
    (got, tx, sent)
}

fn fragmented_and_whole(v6: bool) {
    let (got, tx, sent) = exchange(v6, UdpConfig::default());
    assert_eq!(got.len(), 29, "datagrams arrived: {}", got.len());
    assert!(got == sent, "a datagram arrived changed");
    let stats = tx.stats();
    assert_eq!(stats.fragmented, 8, "{stats:?}");
    assert_eq!(stats.send_errors, 0, "{stats:?}");
    assert!(
        stats.gso_batches >= 1,
        "the fitting batch went without GSO: {stats:?}"
    );
    assert_eq!(stats.gso_fallbacks, 0, "{stats:?}");
    assert!(tx.max_gso_segments() > 1, "GSO was given up");
}

#[test]
fn datagrams_too_big_for_the_path_arrive_fragmented_v4() {
    fragmented_and_whole(false);
}

#[test]
fn datagrams_too_big_for_the_path_arrive_fragmented_v6() {
    fragmented_and_whole(true);
}

#[test]
fn without_fragmentation_they_are_refused_and_counted() {
    let config = UdpConfig {
        fragment: false,
        ..UdpConfig::default()
    };
    let (got, tx, sent) = exchange(false, config);
    let fitting: Vec<Vec<u8>> = sent.into_iter().filter(|d| d.len() <= FITS).collect();
    assert!(
        got == fitting,
        "{} arrived, {} fit",
        got.len(),
        fitting.len()
    );
    let stats = tx.stats();
    assert_eq!(stats.fragmented, 8, "{stats:?}");
    assert_eq!(stats.send_errors, 8, "{stats:?}");
    assert!(stats.gso_batches >= 1, "{stats:?}");
    assert!(tx.max_gso_segments() > 1, "GSO was given up");
}
