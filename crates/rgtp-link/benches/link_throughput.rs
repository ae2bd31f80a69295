//! Throughput sanity check for the links: `cargo bench -p rgtp-link`.
//!
//! Pushes batches of 64 × 1240-byte datagrams through a [`MemLink`] pair and a
//! loopback [`UdpLink`] pair, then 256 MiB of bulk bytes through a loopback
//! [`TcpLink`] and an unimpaired [`PipeEnd`] pair (sender and receiver in
//! separate threads), and prints datagrams and bytes per second. No
//! assertions: numbers to eyeball.

use std::net::{Ipv4Addr, SocketAddr};
use std::thread;
use std::time::{Duration, Instant};

use redgiant_base::stream::{send_all, StreamLink, StreamRecv};
use redgiant_base::{SystemClock, Transmit};
use rgtp_link::{
    ImpairmentConfig, Link, MemLink, PipeConfig, PipeEnd, TcpLink, TcpLinkListener, UdpLink,
};

const SEGMENT: usize = 1240;
const BATCH: usize = 64;
const BATCHES: usize = 2_000;

fn run<L: Link + Send + 'static>(name: &str, mut tx: L, mut rx: L) {
    let destination = rx.local_peer();
    let total = BATCH * BATCHES;
    let receiver = thread::spawn(move || {
        let mut buf = vec![0; 1 << 21];
        let mut meta = Vec::new();
        let mut got = 0;
        let mut bytes = 0;
        while got < total {
            meta.clear();
            if rx
                .recv(&mut buf, &mut meta, Some(Duration::from_millis(500)))
                .unwrap()
                == 0
            {
                break; // the rest was dropped
            }
            got += meta.len();
            bytes += meta.iter().map(|r| r.len).sum::<usize>();
        }
        (got, bytes)
    });
    let buf = vec![0x5a; SEGMENT * BATCH];
    let transmit = Transmit {
        destination,
        size: buf.len(),
        segment_size: Some(SEGMENT),
    };
    let start = Instant::now();
    for _ in 0..BATCHES {
        tx.send(&transmit, &buf).unwrap();
    }
    let (got, bytes) = receiver.join().unwrap();
    let secs = start.elapsed().as_secs_f64();
    println!(
        "{name:>10}: {got}/{total} datagrams in {secs:.3} s: {:.0} datagrams/s, {:.2} Gbit/s",
        got as f64 / secs,
        bytes as f64 * 8.0 / secs / 1e9
    );
}

const STREAM_BYTES: usize = 256 << 20;
const STREAM_WRITE: usize = 64 << 10;

fn run_stream<L: StreamLink + Send + 'static>(name: &'static str, mut tx: L, mut rx: L) {
    let timeout = Some(Duration::from_secs(30));
    let receiver = thread::spawn(move || {
        let mut buf = vec![0; STREAM_WRITE];
        let mut bytes = 0;
        loop {
            match rx.recv(&mut buf, timeout).unwrap() {
                StreamRecv::Data(n) => bytes += n,
                StreamRecv::Closed => break bytes,
                StreamRecv::Timeout => panic!("{name}: stalled after {bytes} bytes"),
            }
        }
    });
    let buf = vec![0x5a; STREAM_WRITE];
    let start = Instant::now();
    for _ in 0..STREAM_BYTES / STREAM_WRITE {
        send_all(&mut tx, &buf, timeout).unwrap();
    }
    tx.shutdown_write().unwrap();
    let bytes = receiver.join().unwrap();
    let secs = start.elapsed().as_secs_f64();
    println!(
        "{name:>10}: {bytes} bytes in {secs:.3} s: {:.2} Gbit/s",
        bytes as f64 * 8.0 / secs / 1e9
    );
}

fn main() {
    let (a, b) = MemLink::pair(ImpairmentConfig::default(), 1);
    b.set_recv_queue_limit(1 << 30);
    run("MemLink", a, b);

    let addr = SocketAddr::from((Ipv4Addr::LOCALHOST, 0));
    let a = UdpLink::bind(addr).unwrap();
    let b = UdpLink::bind(addr).unwrap();
    println!(
        "UDP: GSO {} GRO {} buffers {:?}",
        a.max_gso_segments(),
        b.gro_segments(),
        b.buffer_sizes()
    );
    run("UdpLink", a, b);

    let listener = TcpLinkListener::bind(addr).unwrap();
    let tx = TcpLink::connect(listener.local_addr().unwrap(), Duration::from_secs(5)).unwrap();
    let rx = listener
        .accept(Some(Duration::from_secs(5)))
        .unwrap()
        .unwrap();
    run_stream("TcpLink", tx, rx);

    let (a, b) = PipeEnd::pair(PipeConfig::default(), 1, SystemClock::new());
    run_stream("PipeEnd", a, b);
}
