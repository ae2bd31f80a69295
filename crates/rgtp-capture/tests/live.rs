//! Live capture through libpcap (feature `live`): RGTP-shaped UDP datagrams
//! sent over loopback are captured, decoded and saved as they pass.
#![cfg(feature = "live")]

use std::net::UdpSocket;
use std::time::{Duration, Instant};

use redgiant_base::Peer;
use rgtp_capture::live::{LiveCapture, LiveError};
use rgtp_capture::CaptureWriter;

fn datagram(i: u8) -> Vec<u8> {
    // A Keepalive: version 1, type 8, Length 32.
    let mut d = vec![0u8; 32];
    d[0] = 1;
    d[1] = 8;
    d[3] = 32;
    d[4..20].fill(i);
    d
}

#[test]
fn loopback_datagrams_are_captured_decoded_and_saved() {
    let rx = UdpSocket::bind("127.0.0.1:0").unwrap();
    let port = rx.local_addr().unwrap().port();
    let tx = UdpSocket::bind("127.0.0.1:0").unwrap();
    let mut cap = LiveCapture::open("lo", Some(&format!("udp dst port {port}")), 50)
        .expect("libpcap capture on lo (run as root)");
    let mut save = CaptureWriter::new(Vec::new()).unwrap();
    for i in 0..20u8 {
        tx.send_to(&datagram(i), ("127.0.0.1", port)).unwrap();
    }
    let mut seen = Vec::new();
    let deadline = Instant::now() + Duration::from_secs(10);
    while seen.len() < 20 && Instant::now() < deadline {
        if let Some(r) = cap.next_record(Some(&mut save)).unwrap() {
            let d = r.content.expect("a UDP datagram");
            assert_eq!(
                d.dst,
                Peer::Ip(format!("127.0.0.1:{port}").parse().unwrap())
            );
            assert_eq!(d.src, Peer::Ip(tx.local_addr().unwrap()));
            seen.push(d.payload);
        }
    }
    let want: Vec<Vec<u8>> = (0..20).map(datagram).collect();
    assert_eq!(seen, want, "captured payloads");
    // What was saved reads back as the same datagrams.
    let file = rgtp_capture::read(&save.into_inner().unwrap()).unwrap();
    let back: Vec<Vec<u8>> = file.datagrams().map(|(_, d)| d.payload.clone()).collect();
    assert_eq!(back, want);
    // Nothing else matches the filter: the next wait times out.
    assert!(cap.next_record::<Vec<u8>>(None).unwrap().is_none());
}

#[test]
fn unknown_interface_is_a_clear_error() {
    match LiveCapture::open("rgtp-no-such-if0", None, 10) {
        Err(LiveError::Pcap(e)) => {
            let text = LiveError::Pcap(e).to_string();
            assert!(text.contains("libpcap"), "{text}");
        }
        other => panic!("expected a libpcap error, got {other:?}"),
    }
}
