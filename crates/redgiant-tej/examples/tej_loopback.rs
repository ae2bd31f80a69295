//! Loopback benchmark: one TEJ frame carrying a large file over TCP, sender
//! and receiver in two processes, both run by the stream driver.
//!
//! ```sh
//! cargo run --release -p redgiant-tej --example tej_loopback -- [BYTES] [FILE]
//! ```
//!
//! Sends BYTES (default 1 GiB) read from FILE (default: generated, no disk)
//! to a child process that receives and discards it. Prints the goodput and
//! the receiver's peak resident memory before and after the transfer (Linux
//! `VmHWM`).

use std::io::{self, Read};
use std::process::{Command, Stdio};
use std::sync::atomic::AtomicBool;
use std::time::{Duration, Instant as StdInstant};

use redgiant_base::driver::{Application, StreamDriver};
use redgiant_tej::{Config, Connection, Event, OutFile, OutFrame};
use rgtp_link::tcp::{TcpLink, TcpLinkListener};

/// Peak resident set size in KiB, from /proc/self/status.
fn peak_kib() -> u64 {
    let s = std::fs::read_to_string("/proc/self/status").unwrap_or_default();
    s.lines()
        .find_map(|l| l.strip_prefix("VmHWM:"))
        .and_then(|v| v.split_whitespace().next()?.parse().ok())
        .unwrap_or(0)
}

/// Counts file bytes; ends when the peer closed.
#[derive(Default)]
struct Discard {
    bytes: u64,
    frames: u64,
}

impl Application<Connection> for Discard {
    type Output = ();
    type Error = io::Error;
    fn deliver(&mut self, d: core::convert::Infallible) -> io::Result<()> {
        match d {}
    }
    fn event(&mut self, _: &mut Connection, ev: Event) -> io::Result<Option<()>> {
        match ev {
            Event::FileData(d) => self.bytes += d.len() as u64,
            Event::FrameEnd { .. } => self.frames += 1,
            Event::Finished => return Ok(Some(())),
            Event::ProtocolError(e) => return Err(io::Error::new(io::ErrorKind::InvalidData, e)),
            _ => {}
        }
        Ok(None)
    }
}

/// A generated source: a repeating pattern, no disk.
struct Pattern {
    block: Vec<u8>,
    at: usize,
}

impl Read for Pattern {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let n = buf.len().min(self.block.len() - self.at);
        buf[..n].copy_from_slice(&self.block[self.at..self.at + n]);
        self.at = (self.at + n) % self.block.len();
        Ok(n)
    }
}

fn receive(port: &str) {
    let listener = TcpLinkListener::bind(format!("127.0.0.1:{port}").parse().unwrap()).unwrap();
    println!("{}", listener.local_addr().unwrap().port());
    let link = listener.accept(None).unwrap().expect("a connection");
    let before = peak_kib();
    let mut driver = StreamDriver::new(link);
    let mut conn = Connection::new(Config::default(), driver.clock().now());
    let mut app = Discard::default();
    driver
        .run(&mut conn, &mut app, &AtomicBool::new(false), |_, _| {})
        .unwrap();
    let after = peak_kib();
    println!(
        "received {} bytes in {} frames; receiver peak RSS {} KiB before, {} KiB after (+{} KiB)",
        app.bytes,
        app.frames,
        before,
        after,
        after.saturating_sub(before)
    );
}

fn main() {
    let args: Vec<String> = std::env::args().collect();
    if args.get(1).map(String::as_str) == Some("--receive") {
        return receive("0");
    }
    let size: u64 = args.get(1).map_or(1 << 30, |s| s.parse().expect("BYTES"));
    let file = args.get(2);
    let mut child = Command::new(&args[0])
        .arg("--receive")
        .stdout(Stdio::piped())
        .spawn()
        .unwrap();
    let mut out = child.stdout.take().unwrap();
    let mut port = String::new();
    let mut b = [0u8; 1];
    while out.read(&mut b).unwrap() == 1 && b[0] != b'\n' {
        port.push(b[0] as char);
    }
    let body: Box<dyn Read + Send> = match file {
        Some(f) => Box::new(std::fs::File::open(f).unwrap()),
        None => Box::new(Pattern {
            block: (0..1 << 20).map(|i: u32| (i * 7) as u8).collect(),
            at: 0,
        }),
    };
    let link = TcpLink::connect(format!("127.0.0.1:{port}"), Duration::from_secs(5)).unwrap();
    let mut driver = StreamDriver::new(link);
    let mut conn = Connection::new(Config::default(), driver.clock().now());
    let start = StdInstant::now();
    conn.send_frame(OutFrame {
        status: 1,
        files: vec![OutFile {
            name: "bench.bin".into(),
            len: size,
            body: redgiant_tej::Body::Reader(body),
        }],
        message: b"done".to_vec(),
    })
    .unwrap();
    conn.close();
    let mut app = Discard::default();
    driver
        .run(&mut conn, &mut app, &AtomicBool::new(false), |_, _| {})
        .unwrap();
    // Finished: every byte is with the kernel; the child reports when it has them all.
    let mut rest = String::new();
    out.read_to_string(&mut rest).unwrap();
    child.wait().unwrap();
    let secs = start.elapsed().as_secs_f64();
    print!("{rest}");
    println!(
        "sent {size} bytes in {secs:.3} s: {:.2} GB/s ({:.2} GiB/s)",
        size as f64 / secs / 1e9,
        size as f64 / secs / (1u64 << 30) as f64
    );
}
