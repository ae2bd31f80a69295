//! The one driver runs a stream endpoint over every byte-stream link: TCP on
//! loopback and the in-memory pipe (with delay, jitter, a rate cap and small
//! segments), byte-exact in both directions, ending cleanly.

use std::sync::atomic::AtomicBool;
use std::time::Duration;

use redgiant_base::driver::{Finish, StreamDriver};
use redgiant_base::stream::{send_all, StreamLink, StreamRecv};
use redgiant_base::testing::{ShoutApp, Shouter};
use redgiant_base::SystemClock;
use rgtp_link::pipe::{PipeConfig, PipeEnd};
use rgtp_link::tcp::{TcpLink, TcpLinkListener};

/// `n` numbered lines of varied length.
fn lines(n: usize) -> Vec<u8> {
    let mut out = Vec::new();
    for i in 0..n {
        out.extend_from_slice(format!("line {i} {}\n", "x".repeat(i % 97)).as_bytes());
    }
    out
}

/// Writes `data` in odd-sized pieces, ends the stream, reads to the end.
fn client(mut link: impl StreamLink, data: &[u8]) -> Vec<u8> {
    for piece in data.chunks(777) {
        send_all(&mut link, piece, Some(Duration::from_secs(10))).unwrap();
    }
    link.shutdown_write().unwrap();
    let mut got = Vec::new();
    let mut buf = vec![0u8; 4096];
    loop {
        match link.recv(&mut buf, Some(Duration::from_secs(10))).unwrap() {
            StreamRecv::Data(n) => got.extend_from_slice(&buf[..n]),
            StreamRecv::Closed => return got,
            StreamRecv::Timeout => panic!("no answer for 10 s"),
        }
    }
}

/// Runs the shouter on `link` to its end; returns the lines it saw.
fn serve(link: impl StreamLink) -> usize {
    let mut d = StreamDriver::new(link);
    let mut app = ShoutApp::default();
    let r = d.run(
        &mut Shouter::default(),
        &mut app,
        &AtomicBool::new(false),
        |_, _| {},
    );
    assert_eq!(r.unwrap(), Finish::Done(false), "an orderly end");
    app.lines.len()
}

#[test]
fn stream_driver_over_tcp() {
    let listener = TcpLinkListener::bind("127.0.0.1:0".parse().unwrap()).unwrap();
    let addr = listener.local_addr().unwrap();
    let server = std::thread::spawn(move || {
        let link = listener
            .accept(Some(Duration::from_secs(10)))
            .unwrap()
            .expect("a connection");
        serve(link)
    });
    // Enough that both directions fill their socket buffers at once.
    let data = lines(60_000);
    let link = TcpLink::connect(addr, Duration::from_secs(5)).unwrap();
    let got = client(link, &data);
    assert_eq!(got, data.to_ascii_uppercase());
    assert_eq!(server.join().unwrap(), 60_000);
}

#[test]
fn stream_driver_over_the_pipe_with_delay_jitter_and_a_rate_cap() {
    let config = PipeConfig::default()
        .with_delay(Duration::from_millis(2))
        .with_jitter(Duration::from_millis(1))
        .with_rate(20_000_000)
        .with_segment(500)
        .with_capacity(64 * 1024);
    let (a, b) = PipeEnd::pair(config, 7, SystemClock::new());
    let server = std::thread::spawn(move || serve(b));
    let data = lines(5_000);
    let got = client(a, &data);
    assert_eq!(got, data.to_ascii_uppercase());
    assert_eq!(server.join().unwrap(), 5_000);
}
