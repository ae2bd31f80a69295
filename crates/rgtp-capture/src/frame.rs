//! Frames: building the bytes a link put on the wire, and finding the RGTP
//! datagram inside a captured frame.
//!
//! Raw-Ethernet links record their frames as sent: destination, source, an
//! optional 802.1Q tag, EtherType `0x88B5`, the RGTP packet. UDP links hand
//! the kernel payloads, not frames, so the recorder synthesises
//! Ethernet/IPv4-or-IPv6/UDP headers carrying the real addresses and ports,
//! with valid IP and UDP checksums (pnet_packet computes them) so Wireshark shows no errors. The MAC
//! addresses of synthesised frames are not real: they are the locally
//! administered `02:00:` followed by the last four bytes of the IP address.
//!
//! In-memory peers (`Peer::Mem(n)`) become UDP hosts `10.0.0.0 + n + 1`, port
//! [`MEM_PORT`]: the simulator's exposer (node 0) is `10.0.0.1:9000`.

use std::fmt;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};

use pnet_packet::ipv4::Ipv4Packet;
use pnet_packet::tcp::TcpPacket;
use pnet_packet::udp::UdpPacket;
use redgiant_base::Peer;
use rgtp_link::ether::{self, ETHERTYPE_IPV4, ETHERTYPE_IPV6};
use rgtp_link::{Vlan, ETHERTYPE_RGTP};

/// UDP port given to in-memory peers in recordings.
pub const MEM_PORT: u16 = 9000;
const IPPROTO_UDP: u8 = 17;

/// The UDP endpoint a recording shows for an in-memory node.
pub fn mem_addr(n: u32) -> SocketAddr {
    let ip = Ipv4Addr::from(0x0a00_0000u32.wrapping_add(n.wrapping_add(1) & 0x00ff_ffff));
    SocketAddr::new(IpAddr::V4(ip), MEM_PORT)
}

/// The MAC address synthesised for an IP host.
pub fn synthetic_mac(ip: IpAddr) -> [u8; 6] {
    let o = match ip {
        IpAddr::V4(v4) => v4.octets(),
        IpAddr::V6(v6) => {
            let b = v6.octets();
            [b[12], b[13], b[14], b[15]]
        }
    };
    [0x02, 0x00, o[0], o[1], o[2], o[3]]
}

/// A peer as recordings show it: an in-memory node becomes its UDP address
/// ([`mem_addr`]); the others are themselves.
pub fn recorded(p: Peer) -> Peer {
    match p {
        Peer::Mem(n) => Peer::Ip(mem_addr(n)),
        other => other,
    }
}

/// A peer as recordings and their sidecars write it: the [`Display`](std::fmt::Display)
/// of [`recorded`] (`10.0.0.1:9000` for `Peer::Mem(0)`, `02-00-5e-10-00-01`).
pub fn peer_text(p: Peer) -> String {
    recorded(p).to_string()
}

fn as_socket(p: Peer) -> Option<SocketAddr> {
    match recorded(p) {
        Peer::Ip(a) => Some(a),
        Peer::Mem(_) | Peer::Ethernet(_) => None,
    }
}

fn mac_of(p: Peer) -> [u8; 6] {
    match p {
        Peer::Ethernet(m) => m,
        other => {
            synthetic_mac(as_socket(other).map_or(IpAddr::V4(Ipv4Addr::UNSPECIFIED), |a| a.ip()))
        }
    }
}

fn to_v6(ip: IpAddr) -> Ipv6Addr {
    match ip {
        IpAddr::V4(v4) => v4.to_ipv6_mapped(),
        IpAddr::V6(v6) => v6,
    }
}

fn push_ethernet(
    out: &mut Vec<u8>,
    dst: [u8; 6],
    src: [u8; 6],
    vlan: Option<Vlan>,
    ethertype: u16,
) {
    ether::Repr {
        dst_addr: dst,
        src_addr: src,
        vlan,
        ethertype,
    }
    .emit_to_vec(out);
}

/// Appends the frame carrying `payload` from `src` to `dst` to `out`.
///
/// Two Ethernet peers give a raw RGTP frame (tagged when `vlan` is set); IP
/// and in-memory peers give Ethernet/IP/UDP (IPv6 when either address is
/// IPv6, IPv4-mapped addresses then standing for IPv4 ones). A payload too
/// large for the IP length fields is cut to fit (the capture then records the
/// original length).
pub fn build(src: Peer, dst: Peer, vlan: Option<Vlan>, payload: &[u8], out: &mut Vec<u8>) {
    let (Some(s), Some(d)) = (as_socket(src), as_socket(dst)) else {
        push_ethernet(out, mac_of(dst), mac_of(src), vlan, ETHERTYPE_RGTP);
        out.extend_from_slice(payload);
        return;
    };
    let (smac, dmac) = (synthetic_mac(s.ip()), synthetic_mac(d.ip()));
    match (s.ip(), d.ip()) {
        (IpAddr::V4(sip), IpAddr::V4(dip)) => {
            let payload = &payload[..payload.len().min(65_535 - 28)];
            push_ethernet(out, dmac, smac, vlan, ETHERTYPE_IPV4);
            let total = (20 + 8 + payload.len()) as u16;
            let mut ip = [0u8; 20];
            ip[0] = 0x45;
            ip[2..4].copy_from_slice(&total.to_be_bytes());
            ip[6] = 0x40; // don't fragment
            ip[8] = 64;
            ip[9] = IPPROTO_UDP;
            ip[12..16].copy_from_slice(&sip.octets());
            ip[16..20].copy_from_slice(&dip.octets());
            let c = pnet_packet::ipv4::checksum(&Ipv4Packet::new(&ip).expect("20 bytes"));
            ip[10..12].copy_from_slice(&c.to_be_bytes());
            out.extend_from_slice(&ip);
            push_udp(out, s.port(), d.port(), payload, |udp| {
                pnet_packet::udp::ipv4_checksum(udp, &sip, &dip)
            });
        }
        (sip, dip) => {
            let (sip, dip) = (to_v6(sip), to_v6(dip));
            let payload = &payload[..payload.len().min(65_535 - 8)];
            push_ethernet(out, dmac, smac, vlan, ETHERTYPE_IPV6);
            let ulen = (8 + payload.len()) as u16;
            let mut ip = [0u8; 40];
            ip[0] = 0x60;
            ip[4..6].copy_from_slice(&ulen.to_be_bytes());
            ip[6] = IPPROTO_UDP;
            ip[7] = 64;
            ip[8..24].copy_from_slice(&sip.octets());
            ip[24..40].copy_from_slice(&dip.octets());
            out.extend_from_slice(&ip);
            push_udp(out, s.port(), d.port(), payload, |udp| {
                pnet_packet::udp::ipv6_checksum(udp, &sip, &dip)
            });
        }
    }
}

/// Appends a UDP header and `payload`, with the checksum `checksum` computes
/// over them (pnet's, with the IP pseudo-header). A computed 0 is sent as
/// 0xffff: 0 means "no checksum" over IPv4 and is forbidden over IPv6.
fn push_udp(
    out: &mut Vec<u8>,
    sport: u16,
    dport: u16,
    payload: &[u8],
    checksum: impl FnOnce(&UdpPacket<'_>) -> u16,
) {
    let start = out.len();
    let ulen = (8 + payload.len()) as u16;
    out.extend_from_slice(&sport.to_be_bytes());
    out.extend_from_slice(&dport.to_be_bytes());
    out.extend_from_slice(&ulen.to_be_bytes());
    out.extend_from_slice(&[0, 0]);
    out.extend_from_slice(payload);
    let mut c = checksum(&UdpPacket::new(&out[start..]).expect("8-byte header"));
    if c == 0 {
        c = 0xffff;
    }
    out[start + 6..start + 8].copy_from_slice(&c.to_be_bytes());
}

/// The fields of a synthesised TCP header (see [`build_tcp`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct TcpHeader {
    /// Sequence number.
    pub seq: u32,
    /// Acknowledgement number (meaningful with [`TCP_ACK`]).
    pub ack: u32,
    /// Flags: [`TCP_FIN`], [`TCP_SYN`], [`TCP_RST`], [`TCP_PSH`], [`TCP_ACK`].
    pub flags: u8,
    /// Receive window.
    pub window: u16,
}

/// TCP flag FIN.
pub const TCP_FIN: u8 = 0x01;
/// TCP flag SYN.
pub const TCP_SYN: u8 = 0x02;
/// TCP flag RST.
pub const TCP_RST: u8 = 0x04;
/// TCP flag PSH.
pub const TCP_PSH: u8 = 0x08;
/// TCP flag ACK.
pub const TCP_ACK: u8 = 0x10;
const IPPROTO_TCP: u8 = 6;

/// Appends the Ethernet/IP/TCP frame carrying `payload` from `src` to `dst`
/// with the header `tcp` (no options), IP and TCP checksums valid.
///
/// Addresses map as in [`build`]: IPv6 when either address is IPv6,
/// in-memory peers become `10.0.0.0 + n + 1` port [`MEM_PORT`]. Ethernet
/// peers carry no TCP and become the unspecified IPv4 address, port 0. A
/// payload too large for the IP length fields is cut to fit.
pub fn build_tcp(src: Peer, dst: Peer, tcp: &TcpHeader, payload: &[u8], out: &mut Vec<u8>) {
    let unknown = SocketAddr::new(IpAddr::V4(Ipv4Addr::UNSPECIFIED), 0);
    let s = as_socket(src).unwrap_or(unknown);
    let d = as_socket(dst).unwrap_or(unknown);
    let (smac, dmac) = (synthetic_mac(s.ip()), synthetic_mac(d.ip()));
    match (s.ip(), d.ip()) {
        (IpAddr::V4(sip), IpAddr::V4(dip)) => {
            let payload = &payload[..payload.len().min(65_535 - 40)];
            push_ethernet(out, dmac, smac, None, ETHERTYPE_IPV4);
            let mut ip = [0u8; 20];
            ip[0] = 0x45;
            ip[2..4].copy_from_slice(&((40 + payload.len()) as u16).to_be_bytes());
            ip[6] = 0x40; // don't fragment
            ip[8] = 64;
            ip[9] = IPPROTO_TCP;
            ip[12..16].copy_from_slice(&sip.octets());
            ip[16..20].copy_from_slice(&dip.octets());
            let c = pnet_packet::ipv4::checksum(&Ipv4Packet::new(&ip).expect("20 bytes"));
            ip[10..12].copy_from_slice(&c.to_be_bytes());
            out.extend_from_slice(&ip);
            push_tcp(out, s.port(), d.port(), tcp, payload, |seg| {
                pnet_packet::tcp::ipv4_checksum(seg, &sip, &dip)
            });
        }
        (sip, dip) => {
            let (sip, dip) = (to_v6(sip), to_v6(dip));
            let payload = &payload[..payload.len().min(65_535 - 20)];
            push_ethernet(out, dmac, smac, None, ETHERTYPE_IPV6);
            let mut ip = [0u8; 40];
            ip[0] = 0x60;
            ip[4..6].copy_from_slice(&((20 + payload.len()) as u16).to_be_bytes());
            ip[6] = IPPROTO_TCP;
            ip[7] = 64;
            ip[8..24].copy_from_slice(&sip.octets());
            ip[24..40].copy_from_slice(&dip.octets());
            out.extend_from_slice(&ip);
            push_tcp(out, s.port(), d.port(), tcp, payload, |seg| {
                pnet_packet::tcp::ipv6_checksum(seg, &sip, &dip)
            });
        }
    }
}

/// Appends a 20-byte TCP header and `payload`, with the checksum `checksum`
/// computes over them (pnet's, with the IP pseudo-header).
fn push_tcp(
    out: &mut Vec<u8>,
    sport: u16,
    dport: u16,
    tcp: &TcpHeader,
    payload: &[u8],
    checksum: impl FnOnce(&TcpPacket<'_>) -> u16,
) {
    let start = out.len();
    out.extend_from_slice(&sport.to_be_bytes());
    out.extend_from_slice(&dport.to_be_bytes());
    out.extend_from_slice(&tcp.seq.to_be_bytes());
    out.extend_from_slice(&tcp.ack.to_be_bytes());
    out.push(5 << 4); // data offset: 5 words, no options
    out.push(tcp.flags);
    out.extend_from_slice(&tcp.window.to_be_bytes());
    out.extend_from_slice(&[0, 0, 0, 0]); // checksum, urgent pointer
    out.extend_from_slice(payload);
    let c = checksum(&TcpPacket::new(&out[start..]).expect("20-byte header"));
    out[start + 16..start + 18].copy_from_slice(&c.to_be_bytes());
}

/// Link-layer header types a capture can have (the tcpdump.org registry numbers).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LinkLayer {
    /// 1: Ethernet.
    Ethernet,
    /// 0: BSD loopback (4-byte address family, host order).
    Null,
    /// 108: OpenBSD loopback (4-byte address family, network order).
    Loop,
    /// 101, 228, 229: a bare IP packet.
    RawIp,
    /// 113: Linux "cooked" capture (`-i any`).
    LinuxSll,
    /// 276: Linux "cooked" capture v2.
    LinuxSll2,
}

impl LinkLayer {
    /// The link layer with registry number `n`, if supported.
    pub fn from_linktype(n: u32) -> Option<LinkLayer> {
        Some(match n {
            1 => LinkLayer::Ethernet,
            0 => LinkLayer::Null,
            108 => LinkLayer::Loop,
            12 | 14 | 101 | 228 | 229 => LinkLayer::RawIp,
            113 => LinkLayer::LinuxSll,
            276 => LinkLayer::LinuxSll2,
            _ => return None,
        })
    }
}

/// One RGTP-candidate datagram found in a frame.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Decoded<'a> {
    /// Sender (`Peer::Ip` for UDP, `Peer::Ethernet` for raw frames).
    pub src: Peer,
    /// Receiver.
    pub dst: Peer,
    /// Outer 802.1Q tag, if any.
    pub vlan: Option<Vlan>,
    /// The datagram: a UDP payload, or a raw frame's payload up to the RGTP Length.
    pub payload: &'a [u8],
    /// Bytes after the RGTP Length in a raw frame (Ethernet padding).
    pub padding: usize,
}

/// Why a frame holds no datagram.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum FrameError {
    /// Shorter than the headers it announces.
    Truncated(&'static str),
    /// Not UDP, not EtherType 0x88B5 (e.g. ARP, TCP): not RGTP at all.
    NotRgtp(String),
    /// A fragment of a larger IP packet (reassembly is not done).
    Fragment,
    /// An IP header that cannot be right (bad version, lengths).
    BadHeader(&'static str),
}

impl fmt::Display for FrameError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            FrameError::Truncated(what) => write!(f, "truncated {what}"),
            FrameError::NotRgtp(what) => write!(f, "not RGTP: {what}"),
            FrameError::Fragment => write!(f, "IP fragment (not reassembled)"),
            FrameError::BadHeader(what) => write!(f, "bad {what}"),
        }
    }
}

impl std::error::Error for FrameError {}

fn be16(b: &[u8], at: usize) -> u16 {
    u16::from_be_bytes([b[at], b[at + 1]])
}

/// Finds the datagram in `frame`, captured on a link of type `link`.
pub fn decode(link: LinkLayer, frame: &[u8]) -> Result<Decoded<'_>, FrameError> {
    match link {
        LinkLayer::Ethernet => decode_ethernet(frame),
        LinkLayer::Null | LinkLayer::Loop => {
            if frame.len() < 4 {
                return Err(FrameError::Truncated("loopback header"));
            }
            decode_ip(&frame[4..], None)
        }
        LinkLayer::RawIp => decode_ip(frame, None),
        LinkLayer::LinuxSll => {
            if frame.len() < 16 {
                return Err(FrameError::Truncated("Linux cooked header"));
            }
            // Cooked headers carry the sender's link address only; the receiver is
            // the capturing host, whose address they omit (written as all zeros).
            let macs = (be16(frame, 4) == 6).then(|| (mac6(&frame[6..12]), [0; 6]));
            decode_ethertype(be16(frame, 14), &frame[16..], None, macs)
        }
        LinkLayer::LinuxSll2 => {
            if frame.len() < 20 {
                return Err(FrameError::Truncated("Linux cooked v2 header"));
            }
            let macs = (frame[11] == 6).then(|| (mac6(&frame[12..18]), [0; 6]));
            decode_ethertype(be16(frame, 0), &frame[20..], None, macs)
        }
    }
}

fn mac6(b: &[u8]) -> [u8; 6] {
    let mut m = [0u8; 6];
    m.copy_from_slice(&b[..6]);
    m
}

fn decode_ethernet(frame: &[u8]) -> Result<Decoded<'_>, FrameError> {
    let eth = ether::Frame::new_checked(frame).map_err(|_| {
        FrameError::Truncated(if frame.len() < ether::HEADER_LEN {
            "Ethernet header"
        } else {
            "802.1Q tag"
        })
    })?;
    let (src, dst) = (eth.src_addr(), eth.dst_addr());
    decode_ethertype(eth.ethertype(), eth.payload(), eth.vlan(), Some((src, dst)))
}

fn decode_ethertype(
    ethertype: u16,
    rest: &[u8],
    vlan: Option<Vlan>,
    macs: Option<([u8; 6], [u8; 6])>,
) -> Result<Decoded<'_>, FrameError> {
    match ethertype {
        ETHERTYPE_RGTP => {
            let (src, dst) = macs.unwrap_or(([0; 6], [0; 6]));
            // Frames shorter than 60 bytes are padded: in a payload of at most 46 bytes
            // the RGTP Length says where the packet ends (spec §15.1). Longer payloads
            // are never padded and are kept whole (a disagreeing Length is malformed).
            let end = ether::rgtp_len(rest);
            Ok(Decoded {
                src: Peer::Ethernet(src),
                dst: Peer::Ethernet(dst),
                vlan,
                payload: &rest[..end],
                padding: rest.len() - end,
            })
        }
        ETHERTYPE_IPV4 | ETHERTYPE_IPV6 => decode_ip(rest, vlan),
        other => Err(FrameError::NotRgtp(format!("EtherType {other:#06x}"))),
    }
}

fn decode_ip(pkt: &[u8], vlan: Option<Vlan>) -> Result<Decoded<'_>, FrameError> {
    let Some(&first) = pkt.first() else {
        return Err(FrameError::Truncated("IP header"));
    };
    match first >> 4 {
        4 => {
            if pkt.len() < 20 {
                return Err(FrameError::Truncated("IPv4 header"));
            }
            let ihl = usize::from(first & 0x0f) * 4;
            if ihl < 20 {
                return Err(FrameError::BadHeader("IPv4 header length"));
            }
            if pkt.len() < ihl {
                return Err(FrameError::Truncated("IPv4 options"));
            }
            let total = usize::from(be16(pkt, 2));
            if total < ihl {
                return Err(FrameError::BadHeader("IPv4 total length"));
            }
            let flags_frag = be16(pkt, 6);
            if flags_frag & 0x3fff != 0 {
                return Err(FrameError::Fragment);
            }
            if pkt[9] != IPPROTO_UDP {
                return Err(FrameError::NotRgtp(format!("IP protocol {}", pkt[9])));
            }
            let src = IpAddr::V4(Ipv4Addr::new(pkt[12], pkt[13], pkt[14], pkt[15]));
            let dst = IpAddr::V4(Ipv4Addr::new(pkt[16], pkt[17], pkt[18], pkt[19]));
            // A capture may hold fewer bytes than the header says (snap length) or
            // more (Ethernet padding): keep what both allow.
            let end = total.min(pkt.len());
            decode_udp(&pkt[ihl..end], src, dst, vlan)
        }
        6 => {
            if pkt.len() < 40 {
                return Err(FrameError::Truncated("IPv6 header"));
            }
            let plen = usize::from(be16(pkt, 4));
            let next = pkt[6];
            if next != IPPROTO_UDP {
                return Err(FrameError::NotRgtp(format!("IPv6 next header {next}")));
            }
            let mut s = [0u8; 16];
            let mut d = [0u8; 16];
            s.copy_from_slice(&pkt[8..24]);
            d.copy_from_slice(&pkt[24..40]);
            let end = (40 + plen).min(pkt.len());
            decode_udp(
                &pkt[40..end],
                IpAddr::V6(Ipv6Addr::from(s)),
                IpAddr::V6(Ipv6Addr::from(d)),
                vlan,
            )
        }
        v => Err(FrameError::NotRgtp(format!("IP version {v}"))),
    }
}

fn decode_udp(
    seg: &[u8],
    src: IpAddr,
    dst: IpAddr,
    vlan: Option<Vlan>,
) -> Result<Decoded<'_>, FrameError> {
    if seg.len() < 8 {
        return Err(FrameError::Truncated("UDP header"));
    }
    let ulen = usize::from(be16(seg, 4));
    if ulen < 8 {
        return Err(FrameError::BadHeader("UDP length"));
    }
    if ulen > seg.len() {
        return Err(FrameError::Truncated(
            "UDP payload (snap length too small?)",
        ));
    }
    Ok(Decoded {
        src: Peer::Ip(SocketAddr::new(src, be16(seg, 0))),
        dst: Peer::Ip(SocketAddr::new(dst, be16(seg, 2))),
        vlan,
        payload: &seg[8..ulen],
        padding: 0,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ip(s: &str) -> Peer {
        Peer::Ip(s.parse().unwrap())
    }

    #[test]
    fn udp_v4_round_trip_with_valid_checksums() {
        let mut f = Vec::new();
        build(
            ip("192.0.2.1:9000"),
            ip("192.0.2.2:40000"),
            None,
            b"\x01\x02\x00\x05x",
            &mut f,
        );
        assert_eq!(f.len(), 14 + 20 + 8 + 5);
        // Checksums verify: recomputing over the finished headers gives what is there.
        let iph = Ipv4Packet::new(&f[14..34]).unwrap();
        assert_eq!(pnet_packet::ipv4::checksum(&iph), iph.get_checksum());
        let d = decode(LinkLayer::Ethernet, &f).unwrap();
        assert_eq!(d.src, ip("192.0.2.1:9000"));
        assert_eq!(d.dst, ip("192.0.2.2:40000"));
        assert_eq!(d.payload, b"\x01\x02\x00\x05x");
        let udp = UdpPacket::new(&f[34..]).unwrap();
        let (sip, dip) = ("192.0.2.1".parse().unwrap(), "192.0.2.2".parse().unwrap());
        assert_eq!(
            pnet_packet::udp::ipv4_checksum(&udp, &sip, &dip),
            udp.get_checksum()
        );
    }

    #[test]
    fn udp_v6_and_mixed_families() {
        let mut f = Vec::new();
        build(
            ip("[2001:db8::1]:9000"),
            ip("127.0.0.1:5"),
            None,
            b"abc",
            &mut f,
        );
        assert_eq!(be16(&f, 12), ETHERTYPE_IPV6);
        let d = decode(LinkLayer::Ethernet, &f).unwrap();
        assert_eq!(d.src, ip("[2001:db8::1]:9000"));
        assert_eq!(d.dst, ip("[::ffff:127.0.0.1]:5"));
        assert_eq!(d.payload, b"abc");
    }

    #[test]
    fn raw_ethernet_with_tag_and_padding() {
        let a = Peer::Ethernet([2, 0, 0, 0, 0, 1]);
        let b = Peer::Ethernet([0xff; 6]);
        let vlan = Vlan {
            id: 100,
            pcp: 5,
            dei: false,
        };
        let mut f = Vec::new();
        build(a, b, Some(vlan), &[1, 8, 0, 6, 9, 9], &mut f);
        assert_eq!(&f[12..14], &[0x81, 0x00]);
        assert_eq!(be16(&f, 16), ETHERTYPE_RGTP);
        f.resize(60, 0);
        let d = decode(LinkLayer::Ethernet, &f).unwrap();
        assert_eq!((d.src, d.dst, d.vlan), (a, b, Some(vlan)));
        assert_eq!(d.payload, &[1, 8, 0, 6, 9, 9]);
        assert_eq!(d.padding, 60 - 18 - 6);
        // A longer payload is never padding: kept whole for the parser to judge.
        let mut long = Vec::new();
        let mut pkt = vec![1, 8, 0, 6];
        pkt.resize(100, 7);
        build(a, b, None, &pkt, &mut long);
        let d = decode(LinkLayer::Ethernet, &long).unwrap();
        assert_eq!((d.payload.len(), d.padding), (100, 0));
    }

    #[test]
    fn mem_peers_become_udp_hosts() {
        let mut f = Vec::new();
        build(Peer::Mem(0), Peer::Mem(1), None, b"z", &mut f);
        let d = decode(LinkLayer::Ethernet, &f).unwrap();
        assert_eq!(d.src, ip("10.0.0.1:9000"));
        assert_eq!(d.dst, ip("10.0.0.2:9000"));
    }

    #[test]
    fn cooked_captures_keep_the_sender_mac() {
        let mut sll = vec![0u8; 16];
        sll[4..6].copy_from_slice(&6u16.to_be_bytes());
        sll[6..12].copy_from_slice(&[2, 0, 0, 0, 0, 9]);
        sll[14..16].copy_from_slice(&ETHERTYPE_RGTP.to_be_bytes());
        sll.extend_from_slice(&[1, 8, 0, 4]);
        let d = decode(LinkLayer::LinuxSll, &sll).unwrap();
        assert_eq!(d.src, Peer::Ethernet([2, 0, 0, 0, 0, 9]));
        let mut sll2 = vec![0u8; 20];
        sll2[0..2].copy_from_slice(&ETHERTYPE_RGTP.to_be_bytes());
        sll2[11] = 6;
        sll2[12..18].copy_from_slice(&[2, 0, 0, 0, 0, 7]);
        sll2.extend_from_slice(&[1, 8, 0, 4]);
        let d = decode(LinkLayer::LinuxSll2, &sll2).unwrap();
        assert_eq!(d.src, Peer::Ethernet([2, 0, 0, 0, 0, 7]));
        assert_eq!(d.payload, &[1, 8, 0, 4]);
    }

    #[test]
    fn decode_reports_why() {
        assert_eq!(
            decode(LinkLayer::Ethernet, &[0; 10]),
            Err(FrameError::Truncated("Ethernet header"))
        );
        let mut arp = vec![0u8; 42];
        arp[12..14].copy_from_slice(&0x0806u16.to_be_bytes());
        assert!(matches!(
            decode(LinkLayer::Ethernet, &arp),
            Err(FrameError::NotRgtp(_))
        ));
        let mut f = Vec::new();
        build(ip("192.0.2.1:1"), ip("192.0.2.2:2"), None, b"hello", &mut f);
        f[14 + 6] = 0x20; // more fragments
        assert_eq!(decode(LinkLayer::Ethernet, &f), Err(FrameError::Fragment));
        f.truncate(14 + 20 + 4);
        f[14 + 6] = 0;
        assert_eq!(
            decode(LinkLayer::Ethernet, &f),
            Err(FrameError::Truncated("UDP header"))
        );
    }

    #[test]
    fn tcp_segments_have_valid_checksums() {
        use pnet_packet::Packet;
        let hdr = TcpHeader {
            seq: 1000,
            ack: 2000,
            flags: TCP_PSH | TCP_ACK,
            window: 65535,
        };
        let mut f = Vec::new();
        build_tcp(
            ip("192.0.2.1:5000"),
            ip("192.0.2.2:80"),
            &hdr,
            b"GET /",
            &mut f,
        );
        assert_eq!(f.len(), 14 + 20 + 20 + 5);
        let iph = Ipv4Packet::new(&f[14..34]).unwrap();
        assert_eq!(iph.get_next_level_protocol().0, IPPROTO_TCP);
        assert_eq!(pnet_packet::ipv4::checksum(&iph), iph.get_checksum());
        let seg = TcpPacket::new(&f[34..]).unwrap();
        let (sip, dip) = ("192.0.2.1".parse().unwrap(), "192.0.2.2".parse().unwrap());
        assert_eq!(
            pnet_packet::tcp::ipv4_checksum(&seg, &sip, &dip),
            seg.get_checksum()
        );
        assert_eq!(
            (seg.get_sequence(), seg.get_acknowledgement()),
            (1000, 2000)
        );
        assert_eq!((seg.get_source(), seg.get_destination()), (5000, 80));
        assert_eq!(seg.payload(), b"GET /");

        f.clear();
        build_tcp(ip("[::1]:1"), ip("[::1]:2"), &hdr, b"", &mut f);
        assert_eq!(be16(&f, 12), ETHERTYPE_IPV6);
        let seg = TcpPacket::new(&f[54..]).unwrap();
        let lo = "::1".parse().unwrap();
        assert_eq!(
            pnet_packet::tcp::ipv6_checksum(&seg, &lo, &lo),
            seg.get_checksum()
        );
        // Not a datagram: the decoder says so rather than misreading it.
        assert!(matches!(
            decode(LinkLayer::Ethernet, &f),
            Err(FrameError::NotRgtp(_))
        ));
    }

    proptest::proptest! {
        #[test]
        fn decode_never_panics(link in 0u32..300, bytes in proptest::collection::vec(proptest::prelude::any::<u8>(), 0..128)) {
            if let Some(l) = LinkLayer::from_linktype(link) {
                let _ = decode(l, &bytes);
            }
        }
    }
}
