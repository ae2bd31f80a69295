//! The raw-Ethernet link between two network namespaces joined by a veth pair.
//!
//! Runs as root on Linux (network namespaces and raw sockets); each test builds
//! its own namespaces, so the tests run in parallel.
#![cfg(target_os = "linux")]

mod netns;

use std::io;
use std::mem::size_of;
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd};
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use netns::{Netns, VethPair};
use redgiant_base::{Peer, Transmit};
use rgtp_link::{EthConfig, EthLink, Framing, Link, Vlan, ETHERTYPE_RGTP};

const BROADCAST: [u8; 6] = [0xff; 6];
/// Locally administered multicast groups.
const GROUP_1: [u8; 6] = [0x03, 0x52, 0x47, 0x54, 0x50, 0x01];
const GROUP_2: [u8; 6] = [0x03, 0x52, 0x47, 0x54, 0x50, 0x02];
/// How long "nothing more arrives" is waited for.
const QUIET: Duration = Duration::from_millis(300);
/// Receive buffer large enough for many slots at MTU 1500.
const BIG_BUF: usize = 1 << 16;

const V100: Vlan = Vlan {
    id: 100,
    pcp: 5,
    dei: false,
};

/// Opens an [`EthLink`] inside `ns`.
fn open(ns: &Netns, config: EthConfig) -> EthLink {
    let what = format!("{config:?} in {}", ns.name());
    ns.run(move || EthLink::open(config))
        .unwrap_or_else(|e| panic!("opening {what}: {e}"))
}

fn open_vlan(ns: &Netns, iface: &str, vlan: Option<Vlan>) -> EthLink {
    let mut config = EthConfig::new(iface);
    config.vlan = vlan;
    open(ns, config)
}

/// An RGTP-looking packet of `len` bytes (4 ≤ len ≤ 65535) whose Length field is right.
fn packet(len: usize, seed: u8) -> Vec<u8> {
    let mut p: Vec<u8> = (0..len)
        .map(|i| (i as u8).wrapping_mul(31).wrapping_add(seed))
        .collect();
    p[0] = 1;
    p[1] = 3;
    p[2..4].copy_from_slice(&(len as u16).to_be_bytes());
    p
}

fn send(link: &mut EthLink, to: [u8; 6], datagram: &[u8]) {
    let transmit = Transmit {
        destination: Peer::Ethernet(to),
        size: datagram.len(),
        segment_size: None,
    };
    link.send(&transmit, datagram).unwrap();
}

/// Sends `datagrams` (all of one size but the last) as one batch.
fn send_batch(link: &mut EthLink, to: [u8; 6], datagrams: &[Vec<u8>]) {
    let buf = datagrams.concat();
    let transmit = Transmit {
        destination: Peer::Ethernet(to),
        size: buf.len(),
        segment_size: Some(datagrams[0].len()),
    };
    link.send(&transmit, &buf).unwrap();
}

#[derive(Debug, Clone, PartialEq, Eq)]
struct Got {
    from: Peer,
    data: Vec<u8>,
    vlan: Option<Vlan>,
}

/// One recv call, checked for consistency.
fn recv_once(link: &mut EthLink, buf: &mut [u8], timeout: Option<Duration>) -> Vec<Got> {
    let mut meta = Vec::new();
    let n = link.recv(buf, &mut meta, timeout).unwrap();
    assert_eq!(n, meta.len());
    assert_eq!(link.last_recv_vlans().len(), n);
    meta.iter()
        .zip(link.last_recv_vlans())
        .map(|(r, &vlan)| Got {
            from: r.from,
            data: buf[r.offset..r.offset + r.len].to_vec(),
            vlan,
        })
        .collect()
}

/// Receives until `n` datagrams arrived (or 5 s passed) through a buffer of `buf_len`.
fn recv_n(link: &mut EthLink, n: usize, buf_len: usize) -> Vec<Got> {
    let mut buf = vec![0; buf_len];
    let mut got = Vec::new();
    let deadline = Instant::now() + Duration::from_secs(5);
    while got.len() < n {
        let left = deadline.saturating_duration_since(Instant::now());
        if left.is_zero() {
            break;
        }
        got.extend(recv_once(link, &mut buf, Some(left.min(QUIET))));
    }
    got
}

/// Receives everything that arrives until [`QUIET`] passes without a datagram.
fn recv_all(link: &mut EthLink) -> Vec<Got> {
    let mut buf = vec![0; BIG_BUF];
    let mut got = Vec::new();
    loop {
        let more = recv_once(link, &mut buf, Some(QUIET));
        if more.is_empty() {
            return got;
        }
        got.extend(more);
    }
}

fn payloads(got: &[Got]) -> Vec<Vec<u8>> {
    got.iter().map(|g| g.data.clone()).collect()
}

/// A bare AF_PACKET socket to send hand-made frames.
struct RawSender {
    fd: OwnedFd,
    ifindex: i32,
}

impl RawSender {
    fn open(ns: &Netns, iface: &str) -> RawSender {
        let name = std::ffi::CString::new(iface).unwrap();
        ns.run(move || {
            // SAFETY: a plain syscall with constant arguments; the result is checked.
            let raw = unsafe { libc::socket(libc::AF_PACKET, libc::SOCK_RAW, 0) };
            assert!(raw >= 0, "socket: {}", io::Error::last_os_error());
            // SAFETY: `raw` is a fresh descriptor that nothing else owns.
            let fd = unsafe { OwnedFd::from_raw_fd(raw) };
            // SAFETY: `name` is a NUL-terminated string that outlives the call.
            let ifindex = unsafe { libc::if_nametoindex(name.as_ptr()) };
            assert!(ifindex > 0, "if_nametoindex({name:?}) failed");
            RawSender {
                fd,
                ifindex: ifindex as i32,
            }
        })
    }

    /// Sends `frame` (from the destination MAC on) as it is.
    fn send(&self, frame: &[u8]) {
        let mut addr = [0u8; 8];
        addr[..6].copy_from_slice(&frame[..6]);
        let sll = libc::sockaddr_ll {
            sll_family: libc::AF_PACKET as u16,
            sll_protocol: u16::from_ne_bytes([frame[12], frame[13]]),
            sll_ifindex: self.ifindex,
            sll_hatype: 0,
            sll_pkttype: 0,
            sll_halen: 6,
            sll_addr: addr,
        };
        // SAFETY: `frame` and `sll` are live for the call, with their sizes passed alongside.
        let r = unsafe {
            libc::sendto(
                self.fd.as_raw_fd(),
                frame.as_ptr().cast(),
                frame.len(),
                0,
                (&sll as *const libc::sockaddr_ll).cast(),
                size_of::<libc::sockaddr_ll>() as libc::socklen_t,
            )
        };
        assert_eq!(
            r,
            frame.len() as isize,
            "sendto: {}",
            io::Error::last_os_error()
        );
    }
}

/// A frame `src` → `dst` with `ethertype`, an optional inline tag, and `payload`.
fn raw_frame(
    dst: [u8; 6],
    src: [u8; 6],
    tci: Option<u16>,
    ethertype: u16,
    payload: &[u8],
) -> Vec<u8> {
    let mut f = Vec::new();
    f.extend_from_slice(&dst);
    f.extend_from_slice(&src);
    if let Some(tci) = tci {
        f.extend_from_slice(&0x8100u16.to_be_bytes());
        f.extend_from_slice(&tci.to_be_bytes());
    }
    f.extend_from_slice(&ethertype.to_be_bytes());
    f.extend_from_slice(payload);
    f
}

#[test]
fn test_unicast_both_ways() {
    let pair = VethPair::new();
    let (a_mac, b_mac) = (pair.a_mac(), pair.b_mac());
    let mut a = open(&pair.a, EthConfig::new(&pair.a_if));
    let mut b = open(&pair.b, EthConfig::new(&pair.b_if));
    assert_eq!(a.local_peer(), Peer::Ethernet(a_mac));
    assert_eq!(b.local_peer(), Peer::Ethernet(b_mac));
    assert_eq!(a.framing(), Framing::Ethernet { vlan: None });
    let caps = a.capabilities();
    assert_eq!((caps.mtu, caps.max_segments), (1500, 64));

    // A → B: 100 datagrams in one transmit (more than one sendmmsg), then a
    // batch with a short tail, then the extremes of size one by one.
    let batch: Vec<Vec<u8>> = (0..100).map(|i| packet(1200, i as u8)).collect();
    send_batch(&mut a, b_mac, &batch);
    let tail = vec![packet(1000, 1), packet(1000, 2), packet(17, 3)];
    send_batch(&mut a, b_mac, &tail);
    let singles = vec![packet(4, 9), packet(46, 8), packet(47, 7), packet(1500, 6)];
    for d in &singles {
        send(&mut a, b_mac, d);
    }
    let expected: Vec<Vec<u8>> = batch.iter().chain(&tail).chain(&singles).cloned().collect();
    let got = recv_n(&mut b, expected.len(), BIG_BUF);
    assert_eq!(payloads(&got), expected);
    assert!(got
        .iter()
        .all(|g| g.from == Peer::Ethernet(a_mac) && g.vlan.is_none()));
    assert!(recv_all(&mut b).is_empty());

    let sa = a.stats();
    assert_eq!(sa.frames_sent, expected.len() as u64, "{sa:?}");
    assert_eq!(
        sa.bytes_sent,
        expected.iter().map(|d| d.len() as u64).sum::<u64>()
    );
    assert!(sa.send_calls >= 2 + 1 + 4, "{sa:?}");
    let sb = b.stats();
    assert_eq!(sb.frames_received, expected.len() as u64, "{sb:?}");
    assert_eq!(sb.padding_trimmed, 0);

    // B → A through a buffer smaller than a receive slot: datagrams that fit
    // come through, one that does not is counted and dropped.
    let back = vec![
        packet(1000, 20),
        packet(40, 21),
        packet(1024, 22),
        packet(1200, 23),
        packet(500, 24),
    ];
    for d in &back {
        send(&mut b, a_mac, d);
    }
    let got = recv_n(&mut a, 4, 1024);
    let fitting: Vec<Vec<u8>> = back.iter().filter(|d| d.len() <= 1024).cloned().collect();
    assert_eq!(payloads(&got), fitting);
    assert!(got.iter().all(|g| g.from == Peer::Ethernet(b_mac)));
    assert_eq!(a.stats().truncated, 1, "{:?}", a.stats());
}

#[test]
fn test_broadcast() {
    let pair = VethPair::new();
    let (a_mac, b_mac) = (pair.a_mac(), pair.b_mac());
    let mut a = open(&pair.a, EthConfig::new(&pair.a_if));
    let mut b = open(&pair.b, EthConfig::new(&pair.b_if));
    let mut b2 = open(&pair.b, EthConfig::new(&pair.b_if));

    let p = packet(300, 1);
    send(&mut a, BROADCAST, &p);
    for link in [&mut b, &mut b2] {
        let got = recv_all(link);
        assert_eq!(
            got,
            vec![Got {
                from: Peer::Ethernet(a_mac),
                data: p.clone(),
                vlan: None
            }]
        );
    }
    let q = packet(64, 2);
    send(&mut b, BROADCAST, &q);
    let got = recv_all(&mut a);
    assert_eq!(payloads(&got), vec![q]);
    assert_eq!(got[0].from, Peer::Ethernet(b_mac));
}

#[test]
fn test_multicast() {
    let pair = VethPair::new();
    let mut a = open(&pair.a, EthConfig::new(&pair.a_if));
    let mut config = EthConfig::new(&pair.b_if);
    config.multicast_groups = vec![GROUP_1];
    let mut b = open(&pair.b, config);
    assert_eq!(b.multicast_groups(), &[GROUP_1]);

    // The membership reached the interface.
    let maddr = || pair.b.ip(&["maddr", "show", "dev", &pair.b_if]);
    assert!(maddr().contains("03:52:47:54:50:01"), "{}", maddr());

    // To an unjoined group first, then to the joined one: only the latter arrives.
    send(&mut a, GROUP_2, &packet(100, 2));
    send(&mut a, GROUP_1, &packet(100, 1));
    assert_eq!(payloads(&recv_all(&mut b)), vec![packet(100, 1)]);
    assert_eq!(b.stats().filtered_address, 1, "{:?}", b.stats());

    // Joining and leaving while open.
    b.join_multicast(GROUP_2).unwrap();
    b.leave_multicast(GROUP_1).unwrap();
    assert!(!maddr().contains("03:52:47:54:50:01"), "{}", maddr());
    assert!(maddr().contains("03:52:47:54:50:02"), "{}", maddr());
    send(&mut a, GROUP_1, &packet(100, 3));
    send(&mut a, GROUP_2, &packet(100, 4));
    assert_eq!(payloads(&recv_all(&mut b)), vec![packet(100, 4)]);
    assert_eq!(b.stats().filtered_address, 2);

    // A unicast address is not a group.
    let e = b.join_multicast(pair.a_mac()).unwrap_err();
    assert_eq!(e.kind(), io::ErrorKind::InvalidInput);
}

#[test]
fn test_vlan_tagged_both_ends() {
    let pair = VethPair::new();
    let b_vlan = Vlan {
        id: 100,
        pcp: 2,
        dei: true,
    };
    let mut a = open_vlan(&pair.a, &pair.a_if, Some(V100));
    let mut b = open_vlan(&pair.b, &pair.b_if, Some(b_vlan));
    assert_eq!(a.framing(), Framing::Ethernet { vlan: Some(V100) });
    // The tag is not counted in the MTU.
    assert_eq!(a.capabilities().mtu, 1500);

    let sent = vec![packet(1500, 1), packet(100, 2), packet(30, 3)];
    for d in &sent {
        send(&mut a, pair.b_mac(), d);
    }
    let got = recv_n(&mut b, 3, BIG_BUF);
    assert_eq!(payloads(&got), sent);
    // The receiver sees the sender's tag, priority included.
    assert!(
        got.iter().all(|g| g.vlan == Some(V100)),
        "{:?}",
        got[0].vlan
    );
    assert_eq!(a.stats().oversize, 0);

    let back = vec![packet(1500, 4), packet(24, 5)];
    for d in &back {
        send(&mut b, pair.a_mac(), d);
    }
    let got = recv_n(&mut a, 2, BIG_BUF);
    assert_eq!(payloads(&got), back);
    assert!(got.iter().all(|g| g.vlan == Some(b_vlan)));
    assert!(got.iter().all(|g| g.from == Peer::Ethernet(pair.b_mac())));
}

#[test]
fn test_vlan_filtering() {
    let pair = VethPair::new();
    let b_mac = pair.b_mac();
    let v200 = Vlan { id: 200, ..V100 };
    let mut a_plain = open_vlan(&pair.a, &pair.a_if, None);
    let mut a_100 = open_vlan(&pair.a, &pair.a_if, Some(V100));
    let mut b_plain = open_vlan(&pair.b, &pair.b_if, None);
    let mut b_100 = open_vlan(&pair.b, &pair.b_if, Some(V100));
    let mut b_200 = open_vlan(&pair.b, &pair.b_if, Some(v200));

    let untagged = packet(100, 1);
    let tagged = packet(100, 2);
    send(&mut a_plain, b_mac, &untagged);
    send(&mut a_100, b_mac, &tagged);

    assert_eq!(payloads(&recv_all(&mut b_plain)), vec![untagged]);
    let got = recv_all(&mut b_100);
    assert_eq!(payloads(&got), vec![tagged]);
    assert_eq!(got[0].vlan, Some(V100));
    assert!(recv_all(&mut b_200).is_empty());

    assert_eq!(b_plain.stats().filtered_vlan, 1, "{:?}", b_plain.stats());
    assert_eq!(b_100.stats().filtered_vlan, 1, "{:?}", b_100.stats());
    assert_eq!(b_200.stats().filtered_vlan, 2, "{:?}", b_200.stats());
    // Neither A link sees the other's frames.
    assert!(recv_all(&mut a_plain).is_empty());
    assert!(recv_all(&mut a_100).is_empty());
}

#[test]
fn test_mtu() {
    let pair = VethPair::new();
    let b_mac = pair.b_mac();
    let mut a = open(&pair.a, EthConfig::new(&pair.a_if));
    let mut b = open(&pair.b, EthConfig::new(&pair.b_if));
    assert_eq!(a.capabilities().mtu, 1500);

    pair.set_mtu(1400);
    assert_eq!(a.capabilities().mtu, 1400);
    assert_eq!(b.capabilities().mtu, 1400);
    // One transmit: a 1401-byte datagram (over) and a 1400-byte one (at the MTU).
    let over = packet(1401, 1);
    let at = packet(1400, 2);
    send_batch(&mut a, b_mac, &[over, at.clone()]);
    let sa = a.stats();
    assert_eq!((sa.oversize, sa.frames_sent), (1, 1), "{sa:?}");
    assert_eq!(payloads(&recv_all(&mut b)), vec![at]);

    // A larger MTU is followed too, receive slots included.
    pair.set_mtu(9000);
    assert_eq!(a.capabilities().mtu, 9000);
    let jumbo = packet(9000, 3);
    send(&mut a, b_mac, &jumbo);
    send(&mut a, b_mac, &packet(9001, 4));
    assert_eq!(payloads(&recv_all(&mut b)), vec![jumbo]);
    assert_eq!(a.stats().oversize, 2);
    assert_eq!(b.stats().truncated, 0);
}

#[test]
fn test_padding_and_foreign_frames() {
    let pair = VethPair::new();
    let (a_mac, b_mac) = (pair.a_mac(), pair.b_mac());
    let raw = RawSender::open(&pair.a, &pair.a_if);
    let mut a = open(&pair.a, EthConfig::new(&pair.a_if));
    let mut b = open(&pair.b, EthConfig::new(&pair.b_if));

    // A 24-byte packet padded with zeros to a 60-byte frame: cut to its Length.
    let short = packet(24, 1);
    let mut padded = short.clone();
    padded.resize(46, 0);
    raw.send(&raw_frame(b_mac, a_mac, None, ETHERTYPE_RGTP, &padded));
    // Another EtherType: never delivered.
    raw.send(&raw_frame(b_mac, a_mac, None, 0x88B6, &packet(100, 2)));
    // Length below 4, in a short frame: delivered as it is.
    let mut bad_length = packet(46, 3);
    bad_length[2..4].copy_from_slice(&2u16.to_be_bytes());
    raw.send(&raw_frame(b_mac, a_mac, None, ETHERTYPE_RGTP, &bad_length));
    // A Length shorter than a payload too long to be padding: delivered as it is.
    let mut long = packet(100, 4);
    long[2..4].copy_from_slice(&24u16.to_be_bytes());
    raw.send(&raw_frame(b_mac, a_mac, None, ETHERTYPE_RGTP, &long));
    // Tagged inline by hand, for an untagged link: filtered.
    raw.send(&raw_frame(
        b_mac,
        a_mac,
        Some(V100.tci()),
        ETHERTYPE_RGTP,
        &packet(80, 5),
    ));
    // For another station: filtered.
    let other = [0x02, 0, 0, 0, 0, 0x99];
    raw.send(&raw_frame(
        other,
        a_mac,
        None,
        ETHERTYPE_RGTP,
        &packet(80, 6),
    ));

    let got = recv_all(&mut b);
    assert_eq!(payloads(&got), vec![short, bad_length, long]);
    let sb = b.stats();
    assert_eq!(sb.padding_trimmed, 1, "{sb:?}");
    assert_eq!(sb.filtered_vlan, 1, "{sb:?}");
    assert_eq!(sb.filtered_address, 1, "{sb:?}");

    // Through the link: a datagram whose Length is smaller than its size.
    let mut loose = packet(30, 7);
    loose[2..4].copy_from_slice(&20u16.to_be_bytes());
    send(&mut a, b_mac, &loose);
    assert_eq!(payloads(&recv_all(&mut b)), vec![loose[..20].to_vec()]);
    assert_eq!(b.stats().padding_trimmed, 2);
}

#[test]
fn test_own_frames_not_received() {
    let pair = VethPair::new();
    let b_mac = pair.b_mac();
    let mut a = open(&pair.a, EthConfig::new(&pair.a_if));
    let mut a2 = open(&pair.a, EthConfig::new(&pair.a_if));
    let mut b = open(&pair.b, EthConfig::new(&pair.b_if));

    send(&mut a, BROADCAST, &packet(100, 1));
    send(&mut a, b_mac, &packet(100, 2));
    assert_eq!(
        payloads(&recv_all(&mut b)),
        vec![packet(100, 1), packet(100, 2)]
    );
    assert!(recv_all(&mut a).is_empty());
    assert!(recv_all(&mut a2).is_empty());
    assert_eq!(a.stats().frames_received, 0);
    assert_eq!(a2.stats().frames_received, 0);
}

#[test]
fn test_recv_timeout() {
    let pair = VethPair::new();
    let a_mac = pair.a_mac();
    let mut a = open(&pair.a, EthConfig::new(&pair.a_if));
    let mut buf = vec![0; BIG_BUF];
    let mut out = Vec::new();

    let start = Instant::now();
    assert_eq!(a.recv(&mut buf, &mut out, Some(Duration::ZERO)).unwrap(), 0);
    assert!(
        start.elapsed() < Duration::from_millis(100),
        "{:?}",
        start.elapsed()
    );

    let timeout = Duration::from_millis(200);
    // Loose upper bound (2× plus scheduling slack): only catches a recv that ignores its timeout.
    let limit = timeout * 2 + Duration::from_millis(300);
    let start = Instant::now();
    assert_eq!(a.recv(&mut buf, &mut out, Some(timeout)).unwrap(), 0);
    let elapsed = start.elapsed();
    assert!(elapsed >= timeout && elapsed < limit, "{elapsed:?}");
    assert!(out.is_empty());

    // Frames that keep arriving but are all filtered (another VLAN) do not
    // stretch the timeout.
    let mut flooder = open_vlan(&pair.b, &pair.b_if, Some(Vlan { id: 200, ..V100 }));
    let stop = AtomicBool::new(false);
    std::thread::scope(|s| {
        s.spawn(|| {
            let batch: Vec<Vec<u8>> = (0..16).map(|i| packet(200, i)).collect();
            while !stop.load(Ordering::Relaxed) {
                send_batch(&mut flooder, a_mac, &batch);
                std::thread::sleep(Duration::from_millis(1));
            }
        });
        std::thread::sleep(Duration::from_millis(50));
        let start = Instant::now();
        let n = a.recv(&mut buf, &mut out, Some(timeout)).unwrap();
        let elapsed = start.elapsed();
        stop.store(true, Ordering::Relaxed);
        assert_eq!(n, 0);
        assert!(elapsed >= timeout && elapsed < limit, "{elapsed:?}");
    });
    assert!(a.stats().filtered_vlan > 0, "{:?}", a.stats());

    // No timeout: waits until a datagram comes.
    let mut b = open(&pair.b, EthConfig::new(&pair.b_if));
    std::thread::scope(|s| {
        s.spawn(|| {
            std::thread::sleep(Duration::from_millis(100));
            send(&mut b, a_mac, &packet(50, 9));
        });
        let got = loop {
            let got = recv_once(&mut a, &mut buf, None);
            if !got.is_empty() {
                break got;
            }
        };
        assert_eq!(payloads(&got), vec![packet(50, 9)]);
    });
}

#[test]
fn test_send_refuses_other_peers_and_bad_transmits() {
    let pair = VethPair::new();
    let mut a = open(&pair.a, EthConfig::new(&pair.a_if));
    let p = packet(50, 1);
    for destination in [Peer::Ip("10.0.0.1:9000".parse().unwrap()), Peer::Mem(1)] {
        let t = Transmit {
            destination,
            size: p.len(),
            segment_size: None,
        };
        let e = a.send(&t, &p).unwrap_err();
        assert_eq!(e.kind(), io::ErrorKind::InvalidInput, "{e}");
    }
    let to_b = Peer::Ethernet(pair.b_mac());
    for (size, segment_size) in [(p.len() + 1, None), (p.len(), Some(0))] {
        let t = Transmit {
            destination: to_b,
            size,
            segment_size,
        };
        assert_eq!(
            a.send(&t, &p).unwrap_err().kind(),
            io::ErrorKind::InvalidInput
        );
    }
    assert_eq!(a.stats().frames_sent, 0);
}

#[test]
fn test_open_errors_name_the_fix() {
    let pair = VethPair::new();
    let try_open = |config: EthConfig| pair.a.run(move || EthLink::open(config));

    let e = try_open(EthConfig::new("nope0")).unwrap_err();
    assert_eq!(e.kind(), io::ErrorKind::NotFound);
    let msg = e.to_string();
    assert!(
        msg.contains("nope0") && msg.contains("veth-a") && msg.contains("lo"),
        "{msg}"
    );

    let e = try_open(EthConfig::new("lo")).unwrap_err();
    assert!(e.to_string().contains("loopback"), "{e}");

    let mut config = EthConfig::new(&pair.a_if);
    config.vlan = Some(Vlan { id: 4095, ..V100 });
    assert_eq!(
        try_open(config).unwrap_err().kind(),
        io::ErrorKind::InvalidInput
    );

    let mut config = EthConfig::new(&pair.a_if);
    config.multicast_groups = vec![pair.b_mac()];
    assert_eq!(
        try_open(config).unwrap_err().kind(),
        io::ErrorKind::InvalidInput
    );

    pair.a.ip(&["link", "set", "dev", &pair.a_if, "down"]);
    let e = try_open(EthConfig::new(&pair.a_if)).unwrap_err();
    assert!(e.to_string().contains("ip link set veth-a up"), "{e}");

    // The veth end in B is not visible from A's namespace.
    let e = try_open(EthConfig::new(&pair.b_if)).unwrap_err();
    assert_eq!(e.kind(), io::ErrorKind::NotFound);
}

#[test]
fn test_fanout_spreads_peers_by_source_mac_and_keeps_each_peer_on_one_link() {
    let pair = VethPair::new();
    let b_mac = pair.b_mac();
    let raw = RawSender::open(&pair.a, &pair.a_if);
    let fanned = |ns: &Netns, iface: &str| {
        let mut c = EthConfig::new(iface);
        c.fanout = Some(0x5247);
        open(ns, c)
    };
    // Joined in this order: member 0, then member 1.
    let mut first = fanned(&pair.b, &pair.b_if);
    let mut second = fanned(&pair.b, &pair.b_if);
    // The group's choice is the source MAC's last four bytes modulo 2; these sources
    // (unicast, locally administered, as if from four stations) end in 1, 2, 3, 4.
    let peers: Vec<[u8; 6]> = (1..=4u8).map(|i| [0x02, 0, 0, 0, 0, i]).collect();
    let mut sent: Vec<Vec<Vec<u8>>> = vec![Vec::new(); peers.len()];
    for round in 0..5u8 {
        for (i, src) in peers.iter().enumerate() {
            let p = packet(64, round * 10 + i as u8);
            raw.send(&raw_frame(b_mac, *src, None, ETHERTYPE_RGTP, &p));
            sent[i].push(p);
        }
    }
    let got_first = recv_all(&mut first);
    let got_second = recv_all(&mut second);
    let of = |got: &[Got], src: [u8; 6]| -> Vec<Vec<u8>> {
        got.iter()
            .filter(|g| g.from == Peer::Ethernet(src))
            .map(|g| g.data.clone())
            .collect()
    };
    assert_eq!(got_first.len() + got_second.len(), 20);
    // Even endings all on member 0, odd ones all on member 1, each peer's frames in
    // the order sent.
    for (i, src) in peers.iter().enumerate() {
        let (mine, other) = if src[5] % 2 == 0 {
            (&got_first, &got_second)
        } else {
            (&got_second, &got_first)
        };
        assert_eq!(of(mine, *src), sent[i], "peer {i}");
        assert!(of(other, *src).is_empty(), "peer {i} split over members");
    }
    // A link outside the group still sees every frame.
    let mut all = open(&pair.b, EthConfig::new(&pair.b_if));
    for src in &peers {
        raw.send(&raw_frame(
            b_mac,
            *src,
            None,
            ETHERTYPE_RGTP,
            &packet(64, 99),
        ));
    }
    assert_eq!(recv_all(&mut all).len(), 4);
}
