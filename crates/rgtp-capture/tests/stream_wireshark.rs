//! Stream recordings are what Wireshark understands as TCP: a pipe session
//! and TCP sessions (IPv4, IPv6) are recorded through [`StreamRecorder`],
//! then `tshark -z follow,tcp,raw,0` must give back exactly the bytes sent
//! each way, with every IP and TCP checksum verified good and no expert
//! warning (no "previous segment not captured", no out-of-order segment).
//!
//! Needs tshark (`apt-get install tshark`); without it the test fails.

use std::path::Path;
use std::process::Command;
use std::thread;
use std::time::Duration;

use redgiant_base::stream::{send_all, StreamLink, StreamRecv};
use redgiant_base::SystemClock;
use rgtp_capture::StreamRecorder;
use rgtp_link::{PipeConfig, PipeEnd, TcpLink, TcpLinkListener};

const LONG: Option<Duration> = Some(Duration::from_secs(30));

fn pattern(len: usize, salt: u64) -> Vec<u8> {
    (0..len as u64)
        .map(|i| ((i ^ salt).wrapping_mul(0x9e37_79b9_7f4a_7c15) >> 56) as u8)
        .collect()
}

fn tshark(args: &[&str]) -> String {
    let home = tempfile::tempdir().expect("tempdir");
    let out = match Command::new("tshark")
        .env("HOME", home.path())
        .env("XDG_CONFIG_HOME", home.path().join(".config"))
        .env("WIRESHARK_CONFIG_DIR", home.path().join("wireshark"))
        .arg("-n")
        .args(args)
        .output()
    {
        Ok(out) => out,
        Err(e) => panic!(
            "tshark is needed to check stream recordings but cannot be run ({e}).\n\
             fix: apt-get install tshark   (Debian/Ubuntu: DEBIAN_FRONTEND=noninteractive apt-get install -y tshark)"
        ),
    };
    assert!(
        out.status.success(),
        "tshark {args:?} failed ({}):\n{}",
        out.status,
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout).expect("tshark output is UTF-8")
}

fn unhex(s: &str) -> Vec<u8> {
    (0..s.len() / 2)
        .map(|i| u8::from_str_radix(&s[2 * i..2 * i + 2], 16).expect("hex"))
        .collect()
}

/// The bytes of TCP stream 0 each way (from the opener, from the accepter),
/// as Wireshark reassembles them.
fn follow(capture: &Path) -> (Vec<u8>, Vec<u8>) {
    let path = capture.to_str().expect("UTF-8 path");
    let text = tshark(&["-r", path, "-q", "-z", "follow,tcp,raw,0"]);
    let (mut a, mut b) = (Vec::new(), Vec::new());
    let body = text
        .split_once("Node 1: ")
        .unwrap_or_else(|| panic!("no follow output:\n{text}"))
        .1;
    for line in body.lines().skip(1) {
        if line.starts_with("====") {
            break;
        }
        match line.strip_prefix('\t') {
            Some(hex) => b.extend(unhex(hex.trim())),
            None => a.extend(unhex(line.trim())),
        }
    }
    (a, b)
}

/// Checks every frame is TCP with good checksums and carries no expert
/// warning; returns the number of frames.
fn check_frames(capture: &Path) -> usize {
    let path = capture.to_str().expect("UTF-8 path");
    let out = tshark(&[
        "-r",
        path,
        "-o",
        "ip.check_checksum:TRUE",
        "-o",
        "tcp.check_checksum:TRUE",
        "-T",
        "fields",
        "-E",
        "separator=/t",
        "-E",
        "occurrence=a",
        "-e",
        "frame.number",
        "-e",
        "ip.checksum.status",
        "-e",
        "tcp.checksum.status",
        "-e",
        "_ws.expert.severity",
        "-e",
        "_ws.expert.message",
    ]);
    let mut frames = 0;
    for line in out.lines() {
        frames += 1;
        let cols: Vec<&str> = line.split('\t').collect();
        assert_eq!(cols.len(), 5, "{line:?}");
        // Wireshark's checksum status: 0 bad, 1 good, 2 unverified. IPv6 has no header checksum.
        assert!(cols[1].is_empty() || cols[1] == "1", "IP checksum: {line}");
        assert_eq!(cols[2], "1", "TCP checksum: {line}");
        // Severity: chat 0x200000, note 0x400000, warning 0x600000, error 0x800000.
        for sev in cols[3].split(',').filter(|s| !s.is_empty()) {
            let sev: u32 = sev
                .trim_start_matches("0x")
                .parse::<u32>()
                .ok()
                .or_else(|| u32::from_str_radix(sev.trim_start_matches("0x"), 16).ok())
                .unwrap_or(0);
            assert!(sev < 0x0060_0000, "expert warning: {line}");
        }
    }
    frames
}

/// Runs one session: the recorded end sends `ours` then shuts down, the other
/// end sends `theirs` then shuts down, each reads the other's until the end.
fn session<L, M>(recorded: L, other: M, ours: &[u8], theirs: &[u8], capture: &Path)
where
    L: StreamLink + Send + 'static,
    M: StreamLink + Send + 'static,
{
    let mut rec = StreamRecorder::create(recorded, capture).unwrap();
    let mut other = other;
    let send_back = theirs.to_vec();
    let peer = thread::spawn(move || {
        send_all(&mut other, &send_back, LONG).unwrap();
        other.shutdown_write().unwrap();
        read_to_end(&mut other)
    });
    send_all(&mut rec, ours, LONG).unwrap();
    rec.shutdown_write().unwrap();
    let got = read_to_end(&mut rec);
    rec.finish().unwrap();
    assert!(got == theirs, "bytes received differ");
    assert!(
        peer.join().unwrap() == ours,
        "bytes the peer received differ"
    );
}

fn read_to_end(link: &mut impl StreamLink) -> Vec<u8> {
    let mut got = Vec::new();
    let mut buf = vec![0u8; 1 << 16];
    loop {
        match link.recv(&mut buf, LONG).unwrap() {
            StreamRecv::Data(n) => got.extend_from_slice(&buf[..n]),
            StreamRecv::Closed => return got,
            StreamRecv::Timeout => panic!("stalled after {} bytes", got.len()),
        }
    }
}

fn check(capture: &Path, ours: &[u8], theirs: &[u8]) {
    let frames = check_frames(capture);
    // Handshake, every segment of at most 1460 bytes each way, two FINs and their ACKs.
    assert!(
        frames >= 7 + (ours.len() + theirs.len()) / 1460,
        "{frames} frames"
    );
    let (a, b) = follow(capture);
    assert_eq!(a.len(), ours.len(), "bytes from the opener");
    assert!(a == ours, "followed stream from the opener differs");
    assert_eq!(b.len(), theirs.len(), "bytes from the accepter");
    assert!(b == theirs, "followed stream from the accepter differs");
}

#[test]
fn recorded_pipe_follows_in_wireshark() {
    let dir = tempfile::tempdir().unwrap();
    let capture = dir.path().join("pipe.pcap");
    let (a, b) = PipeEnd::pair(
        PipeConfig::default()
            .with_delay(Duration::from_micros(300))
            .with_jitter(Duration::from_micros(200)),
        11,
        SystemClock::new(),
    );
    let (ours, theirs) = (pattern(300_000, 1), pattern(100_000, 2));
    session(a, b, &ours, &theirs, &capture);
    check(&capture, &ours, &theirs);
}

fn tcp_session(listen: &str) {
    let dir = tempfile::tempdir().unwrap();
    let capture = dir.path().join("tcp.pcap");
    let l = TcpLinkListener::bind(listen.parse().unwrap()).unwrap();
    let client = TcpLink::connect(l.local_addr().unwrap(), Duration::from_secs(5)).unwrap();
    let server = l.accept(LONG).unwrap().expect("a connection");
    let (ours, theirs) = (pattern(500_000, 3), pattern(200_000, 4));
    session(client, server, &ours, &theirs, &capture);
    check(&capture, &ours, &theirs);
}

#[test]
fn recorded_tcp_v4_follows_in_wireshark() {
    tcp_session("127.0.0.1:0");
}

#[test]
fn recorded_tcp_v6_follows_in_wireshark() {
    assert!(
        std::net::TcpListener::bind("[::1]:0").is_ok(),
        "IPv6 loopback unavailable: this test needs ::1 (enable IPv6 on lo)"
    );
    tcp_session("[::1]:0");
}
