//! The gtUDP and TEJ captures of `pcaps/` (`gtudp-*.pcap`, `tej-*.pcap`):
//! made by code, deterministic, so a test regenerates them byte for byte.
//!
//! - `gtudp-lossy`: two gtUDP endpoints on the simulator at 30% loss with
//!   duplication, as the receiving end's wire shows it (what reached it,
//!   what it sent);
//! - `gtudp-magic`: the same exchange without loss under a profile with a
//!   6-byte magic and 2-byte type codes ([`magic_profile`]);
//! - `gtudp-malformed`: datagrams a receiver must reject: too short, an
//!   unknown type, a payload on a RECV and on an ACK, then one good DATA;
//! - `tej-frames`: one TEJ connection over TCP ([`tej_stream`]): a ping, a
//!   frame with two files and a message, a frame spanning many segments and
//!   three frames in one segment;
//! - `tej-hostile`: two connections, one sending a frame whose status MSB
//!   is 0, one declaring a file of 2^63 bytes ([`tej_hostile_streams`]).

use std::io;
use std::net::{Ipv4Addr, SocketAddr};
use std::path::Path;
use std::time::Duration;

use redgiant_base::driver::{simulate, Application, Network, Stepper};
use redgiant_base::{Instant, Peer};
use redgiant_gtudp::{Config, Datagram, Event, Gtudp, Profile, ReferenceIds};
use rgtp_capture::frame::{build_tcp, TcpHeader, TCP_ACK, TCP_PSH};
use rgtp_capture::CaptureWriter;
use rgtp_link::{ImpairmentConfig, SimNet};

/// The sending end of the gtUDP captures.
pub const GTUDP_SENDER: Peer = Peer::Mem(1);
/// The receiving end (the one whose wire is recorded).
pub const GTUDP_RECEIVER: Peer = Peer::Mem(2);
/// Where the TEJ client connects from.
pub const TEJ_CLIENT: SocketAddr =
    SocketAddr::new(std::net::IpAddr::V4(Ipv4Addr::new(10, 0, 0, 1)), 40_000);
/// The TEJ server.
pub const TEJ_SERVER: SocketAddr =
    SocketAddr::new(std::net::IpAddr::V4(Ipv4Addr::new(10, 0, 0, 2)), 47_474);

/// Capture start: 2026-01-01T00:00:00Z, so timestamps are stable.
const EPOCH: Instant = Instant::from_micros(1_767_225_600_000_000);

/// Names of the captures [`generate`] writes, without `.pcap`.
pub const NAMES: &[&str] = &[
    "gtudp-lossy",
    "gtudp-magic",
    "gtudp-malformed",
    "tej-frames",
    "tej-hostile",
];

/// Payload `i` of the gtUDP captures: its own length and content.
pub fn gtudp_payload(i: u32) -> Vec<u8> {
    let mut p = format!("datagram {i}: ").into_bytes();
    p.extend((0..(i as usize * 29) % 90).map(|j| b'a' + ((j as u32 + i) % 26) as u8));
    p
}

/// Datagrams in each gtUDP exchange capture.
pub const GTUDP_COUNT: u32 = 6;

/// The profile of `gtudp-magic`: magic `RGTEST`, types `d1d1`, `5e5e`, `acac`.
pub fn magic_profile() -> Profile {
    Profile::new(
        b"RGTEST".to_vec(),
        vec![0xd1, 0xd1],
        vec![0x5e, 0x5e],
        vec![0xac, 0xac],
    )
    .expect("a valid profile")
}

/// Records what reaches [`GTUDP_RECEIVER`] and what it sends.
struct Tap<W: io::Write> {
    net: SimNet,
    w: CaptureWriter<W>,
}

impl<W: io::Write> Network for Tap<W> {
    fn send(&mut self, now: Instant, from: Peer, to: Peer, d: &[u8]) {
        if from == GTUDP_RECEIVER {
            self.w
                .write_datagram(now.total_micros(), from, to, None, d)
                .expect("in memory");
        }
        self.net.send(now, from, to, d);
    }

    fn deliver_due(&mut self, now: Instant, out: &mut Vec<(Peer, Peer, Vec<u8>)>) -> usize {
        let first = out.len();
        let n = self.net.deliver_due(now, out);
        for (to, from, bytes) in &out[first..] {
            if *to == GTUDP_RECEIVER {
                self.w
                    .write_datagram(now.total_micros(), *from, *to, None, bytes)
                    .expect("in memory");
            }
        }
        n
    }

    fn next_delivery(&self) -> Option<Instant> {
        self.net.next_delivery()
    }
}

/// Ends when every exchange is settled.
struct Settle(u32);

impl Application<Gtudp> for Settle {
    type Output = ();
    type Error = io::Error;
    fn deliver(&mut self, _: Datagram<'_>) -> io::Result<()> {
        Ok(())
    }
    fn event(&mut self, _: &mut Gtudp, ev: Event) -> io::Result<Option<()>> {
        if matches!(ev, Event::Confirmed(_) | Event::Failed(..)) {
            self.0 -= 1;
        }
        Ok((self.0 == 0).then_some(()))
    }
}

/// Never ends; takes what comes.
struct Sink;

impl Application<Gtudp> for Sink {
    type Output = ();
    type Error = io::Error;
    fn deliver(&mut self, _: Datagram<'_>) -> io::Result<()> {
        Ok(())
    }
    fn event(&mut self, _: &mut Gtudp, _: Event) -> io::Result<Option<()>> {
        Ok(None)
    }
}

/// A gtUDP exchange of [`GTUDP_COUNT`] datagrams on the simulator, as a pcap.
fn gtudp_exchange(net: ImpairmentConfig, profile: Profile, seed: u64) -> Vec<u8> {
    let config = Config::default().with_profile(profile);
    let mut a = Gtudp::new(config.clone(), ReferenceIds::new(0x0102_0304));
    for i in 0..GTUDP_COUNT {
        a.send_confirmed(
            GTUDP_RECEIVER,
            &gtudp_payload(i),
            EPOCH + Duration::from_secs(60),
        );
    }
    let b = Gtudp::seeded(config, seed);
    let mut na = Stepper::new(a, Settle(GTUDP_COUNT), GTUDP_SENDER);
    let mut nb = Stepper::new(b, Sink, GTUDP_RECEIVER).background();
    let mut tap = Tap {
        net: SimNet::new(net, seed),
        w: CaptureWriter::new(Vec::new()).expect("in memory"),
    };
    // Let the receiver's last RECVs and the sender's ACKs cross.
    simulate(
        &mut tap,
        &mut [&mut na, &mut nb],
        EPOCH,
        EPOCH + Duration::from_secs(120),
    );
    tap.w.into_inner().expect("in memory")
}

/// Datagrams of `gtudp-malformed`, in order, reference profile: each with
/// what is wrong with it (`None`: a good DATA).
pub fn malformed_datagrams() -> Vec<(Vec<u8>, Option<&'static str>)> {
    vec![
        (vec![0x1d, 0x00, 0x01], Some("too short")),
        (vec![0x42, 0, 0, 0, 1, b'x'], Some("unknown type")),
        (vec![0x5f, 0, 0, 0, 2, b'y', b'z'], Some("payload on RECV")),
        (vec![0xae, 0, 0, 0, 3, b'!'], Some("payload on ACK")),
        ([&[0x1d, 0, 0, 0, 4][..], b"good"].concat(), None),
    ]
}

fn gtudp_malformed() -> Vec<u8> {
    let mut w = CaptureWriter::new(Vec::new()).expect("in memory");
    for (i, (d, _)) in malformed_datagrams().iter().enumerate() {
        let ts = EPOCH.total_micros() + i as u64 * 1_000;
        w.write_datagram(ts, GTUDP_SENDER, GTUDP_RECEIVER, None, d)
            .expect("in memory");
    }
    w.into_inner().expect("in memory")
}

/// One TEJ frame as `tej-frames` describes it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TejFrame {
    /// Custom status (7 bits).
    pub status: u8,
    /// Files: name and data.
    pub files: Vec<(String, Vec<u8>)>,
    /// The message.
    pub message: Vec<u8>,
}

/// The frames of `tej-frames`, in order.
pub fn tej_frames() -> Vec<TejFrame> {
    let f = |status: u8, files: &[(&str, Vec<u8>)], message: &[u8]| TejFrame {
        status,
        files: files
            .iter()
            .map(|(n, d)| (n.to_string(), d.clone()))
            .collect(),
        message: message.to_vec(),
    };
    let big: Vec<u8> = (0..6_000u32).map(|i| (i % 251) as u8).collect();
    vec![
        f(2, &[], b""),
        f(
            5,
            &[("a.txt", b"hello".to_vec()), ("été.bin", vec![0xee; 40])],
            b"two files",
        ),
        f(9, &[("big.bin", big)], b"one frame, many segments"),
        f(1, &[], b"first of three"),
        f(3, &[("x", b"1".to_vec())], b"second"),
        f(2, &[], b""),
    ]
}

/// The client's byte stream and where it is cut into segments: the first
/// two frames in one segment each, the big one in 512-byte segments, the
/// last three in one segment.
pub fn tej_stream() -> (Vec<u8>, Vec<usize>) {
    let mut stream = Vec::new();
    let mut cuts = Vec::new();
    for (i, fr) in tej_frames().iter().enumerate() {
        let files: Vec<(&str, &[u8])> = fr
            .files
            .iter()
            .map(|(n, d)| (n.as_str(), d.as_slice()))
            .collect();
        let bytes = redgiant_tej::wire::encode_frame(fr.status, &files, &fr.message)
            .expect("frames encode");
        let start = stream.len();
        stream.extend_from_slice(&bytes);
        match i {
            0 | 1 => cuts.push(stream.len()),
            2 => {
                let mut at = start;
                while at + 512 < stream.len() {
                    at += 512;
                    cuts.push(at);
                }
                cuts.push(stream.len());
            }
            _ => {}
        }
    }
    cuts.push(stream.len());
    cuts.dedup();
    (stream, cuts)
}

/// The two hostile connections of `tej-hostile`, each a client port and
/// its bytes: a ping then a frame whose status MSB is 0; a frame declaring
/// a file of 2^63 bytes (followed by a few of them).
pub fn tej_hostile_streams() -> Vec<(u16, Vec<u8>)> {
    let mut msb = redgiant_tej::wire::encode_frame(2, &[], b"").expect("a ping");
    msb.extend_from_slice(&[0x05, 1, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0]);
    let mut huge = vec![0x84, 1, 0, 0, 0, 0, 0, 0, 0, 1, 0, 1, b'h'];
    huge.extend_from_slice(&(1u64 << 63).to_be_bytes());
    huge.extend_from_slice(b"some bytes of it");
    vec![(40_001, msb), (40_002, huge)]
}

fn tej_capture() -> Vec<u8> {
    let (stream, cuts) = tej_stream();
    let mut w = CaptureWriter::new(Vec::new()).expect("in memory");
    tej_connection(&mut w, TEJ_CLIENT, &stream, &cuts, EPOCH.total_micros());
    w.into_inner().expect("in memory")
}

fn tej_hostile() -> Vec<u8> {
    let mut w = CaptureWriter::new(Vec::new()).expect("in memory");
    let mut ts = EPOCH.total_micros();
    for (port, stream) in tej_hostile_streams() {
        let client = SocketAddr::new(TEJ_CLIENT.ip(), port);
        ts = tej_connection(&mut w, client, &stream, &[stream.len()], ts);
    }
    w.into_inner().expect("in memory")
}

/// Writes `stream` from `client` to [`TEJ_SERVER`] cut at `cuts`, each
/// segment acknowledged; returns the next timestamp.
fn tej_connection(
    w: &mut CaptureWriter<Vec<u8>>,
    client: SocketAddr,
    stream: &[u8],
    cuts: &[usize],
    mut ts: u64,
) -> u64 {
    let mut frame = Vec::new();
    let (client, server) = (Peer::Ip(client), Peer::Ip(TEJ_SERVER));
    let (client_isn, server_isn) = (1_000u32, 5_000u32);
    let mut start = 0;
    for &end in cuts {
        let seg = &stream[start..end];
        let tcp = TcpHeader {
            seq: client_isn.wrapping_add(start as u32),
            ack: server_isn,
            flags: TCP_ACK | TCP_PSH,
            window: 65_535,
        };
        frame.clear();
        build_tcp(client, server, &tcp, seg, &mut frame);
        w.write_frame(ts, &frame).expect("in memory");
        ts += 100;
        // The server acknowledges each segment.
        let ack = TcpHeader {
            seq: server_isn,
            ack: client_isn.wrapping_add(end as u32),
            flags: TCP_ACK,
            window: 65_535,
        };
        frame.clear();
        build_tcp(server, client, &ack, &[], &mut frame);
        w.write_frame(ts, &frame).expect("in memory");
        ts += 100;
        start = end;
    }
    ts
}

/// The capture named `name` (one of [`NAMES`]).
pub fn capture(name: &str) -> Option<Vec<u8>> {
    let lossy = ImpairmentConfig::perfect()
        .with_loss(0.3)
        .with_duplicate(0.2)
        .with_delay(Duration::from_millis(10));
    Some(match name {
        "gtudp-lossy" => gtudp_exchange(lossy, Profile::reference(), 3),
        "gtudp-magic" => gtudp_exchange(
            ImpairmentConfig::perfect().with_delay(Duration::from_millis(10)),
            magic_profile(),
            4,
        ),
        "gtudp-malformed" => gtudp_malformed(),
        "tej-frames" => tej_capture(),
        "tej-hostile" => tej_hostile(),
        _ => return None,
    })
}

/// Writes every capture of [`NAMES`] into `dir` as `NAME.pcap`.
pub fn generate(dir: &Path) -> io::Result<Vec<String>> {
    let mut out = Vec::new();
    for name in NAMES {
        let bytes = capture(name).expect("listed");
        std::fs::write(dir.join(format!("{name}.pcap")), bytes)?;
        out.push(name.to_string());
    }
    Ok(out)
}
