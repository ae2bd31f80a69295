//! A recorder over `Lossy` middleware records what the wrapped link frames:
//! `Lossy` forwards `framing`, `local_ip_for` and `last_recv_vlans`.

use std::io;
use std::net::UdpSocket;
use std::time::Duration;

use redgiant_base::{Peer, Transmit};
use rgtp_capture::record::Recorder;
use rgtp_link::{Capabilities, Framing, ImpairmentConfig, Link, Lossy, Received, UdpLink, Vlan};

/// A datagram sent to 127.0.0.2 reaches `link` (bound to 0.0.0.0:`port`) and
/// is answered: the capture must name 127.0.0.2, which only the UDP link's
/// IP_PKTINFO knows, not the fallback address a recorder would guess.
fn records_the_address_datagrams_arrived_at<L: Link>(link: L, port: u16) {
    let mut rec = Recorder::with_writer(link, Vec::new(), Box::new(|| 5)).unwrap();
    let peer = UdpSocket::bind("127.0.0.1:0").unwrap();
    peer.send_to(b"\x01\x08\x00\x05!", ("127.0.0.2", port))
        .unwrap();
    let mut buf = vec![0u8; 1 << 17];
    let mut out = Vec::new();
    assert_eq!(
        rec.recv(&mut buf, &mut out, Some(Duration::from_secs(5)))
            .unwrap(),
        1
    );
    let from = out[0].from;
    let tx = Transmit {
        destination: from,
        size: 2,
        segment_size: None,
    };
    rec.send(&tx, b"ok").unwrap();
    let (_, bytes) = rec.finish().unwrap();
    let cap = rgtp_capture::read(&bytes).unwrap();
    let ds: Vec<_> = cap.datagrams().map(|(_, d)| (d.src, d.dst)).collect();
    let us = Peer::Ip(format!("127.0.0.2:{port}").parse().unwrap());
    assert_eq!(ds, vec![(from, us), (us, from)]);
}

#[test]
fn recorder_over_unspecified_udp_writes_the_address_datagrams_arrived_at() {
    let link = UdpLink::bind("0.0.0.0:0".parse().unwrap()).unwrap();
    let port = link.local_addr().port();
    records_the_address_datagrams_arrived_at(link, port);
}

#[test]
fn recorder_over_lossy_udp_writes_the_address_datagrams_arrived_at() {
    let link = UdpLink::bind("0.0.0.0:0".parse().unwrap()).unwrap();
    let port = link.local_addr().port();
    let lossy = Lossy::new(link, ImpairmentConfig::default(), 1);
    assert_eq!(lossy.framing(), Framing::Udp);
    records_the_address_datagrams_arrived_at(lossy, port);
}

const TAG: Vlan = Vlan {
    id: 7,
    pcp: 3,
    dei: false,
};

/// Frames as a tagged raw-Ethernet link would, without a socket.
struct EthLike {
    sent: usize,
}

impl Link for EthLike {
    fn capabilities(&self) -> Capabilities {
        Capabilities {
            mtu: 1500,
            max_segments: 64,
            max_batch_bytes: usize::MAX,
        }
    }
    fn local_peer(&self) -> Peer {
        Peer::Ethernet([2, 0, 0, 0, 0, 1])
    }
    fn framing(&self) -> Framing {
        Framing::Ethernet { vlan: Some(TAG) }
    }
    fn send(&mut self, _: &Transmit, _: &[u8]) -> io::Result<()> {
        self.sent += 1;
        Ok(())
    }
    fn recv(
        &mut self,
        _: &mut [u8],
        _: &mut Vec<Received>,
        _: Option<Duration>,
    ) -> io::Result<usize> {
        Ok(0)
    }
}

#[test]
fn recorder_over_lossy_ethernet_writes_tagged_frames() {
    let lossy = Lossy::new(EthLike { sent: 0 }, ImpairmentConfig::default(), 1);
    let mut rec = Recorder::with_writer(lossy, Vec::new(), Box::new(|| 5)).unwrap();
    let packet = b"\x01\x08\x00\x06hi";
    let tx = Transmit {
        destination: Peer::Ethernet([2, 0, 0, 0, 0, 2]),
        size: packet.len(),
        segment_size: None,
    };
    rec.send(&tx, packet).unwrap();
    let (lossy, bytes) = rec.finish().unwrap();
    assert_eq!(lossy.inner().sent, 1);
    let cap = rgtp_capture::read(&bytes).unwrap();
    let ds: Vec<_> = cap.datagrams().map(|(_, d)| d.clone()).collect();
    assert_eq!(ds.len(), 1);
    assert_eq!(ds[0].vlan, Some(TAG));
    assert_eq!(ds[0].src, Peer::Ethernet([2, 0, 0, 0, 0, 1]));
    assert_eq!(ds[0].dst, Peer::Ethernet([2, 0, 0, 0, 0, 2]));
    assert_eq!(ds[0].payload, packet);
}
