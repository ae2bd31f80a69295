//! A seeded impairing UDP relay: the puller talks to the relay, the relay to the
//! exposer, and every datagram in either direction goes through an
//! [`rgtp_link::impair::Impairment`] of its own first. Whatever the implementations
//! are, they see the same impairment model; which datagrams are lost, corrupted,
//! duplicated or held back is decided by the seed and each datagram's place in its
//! direction's order (the n-th datagram toward the exposer meets the same draw in every
//! run with the same seed). Delivery times, and so the bottleneck's queue, follow the
//! real clock.
//!
//! The relay serves one puller: answers from the exposer go to the address the latest
//! datagram toward the exposer came from.

use std::collections::BinaryHeap;
use std::io;
use std::net::{SocketAddr, UdpSocket};
use std::os::fd::AsRawFd;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;
use std::time::{Duration, Instant as StdInstant, SystemTime, UNIX_EPOCH};

use rgtp_link::impair::{Impairment, ImpairmentConfig, ImpairmentStats};
use rgtp_link::{Instant, Peer};

/// One datagram the relay delivered.
#[derive(Debug, Clone)]
pub struct Delivered {
    /// Microseconds since the Unix epoch.
    pub ts_us: u64,
    /// Toward the exposer (else toward the puller).
    pub to_exposer: bool,
    /// The puller's address.
    pub puller: SocketAddr,
    /// The bytes delivered.
    pub data: Vec<u8>,
}

#[derive(Default)]
struct Shared {
    delivered: Vec<Delivered>,
    to_exposer: ImpairmentStats,
    to_puller: ImpairmentStats,
}

/// A running relay; stops when dropped.
pub struct Relay {
    /// Where pullers send (the address to put in their ticket).
    pub addr: SocketAddr,
    /// The exposer it relays to.
    pub upstream: SocketAddr,
    shared: Arc<Mutex<Shared>>,
    stop: Arc<AtomicBool>,
    handle: Option<JoinHandle<()>>,
}

impl Drop for Relay {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
        if let Some(h) = self.handle.take() {
            let _ = h.join();
        }
    }
}

/// The seed of the second direction, derived from the first.
fn other_seed(seed: u64) -> u64 {
    seed ^ 0x9e37_79b9_7f4a_7c15
}

impl Relay {
    /// Starts a relay on 127.0.0.1 toward `upstream`: datagrams toward the exposer go
    /// through `config` seeded with `seed`, those toward the puller through `config`
    /// with a seed derived from it.
    pub fn spawn(upstream: SocketAddr, config: ImpairmentConfig, seed: u64) -> io::Result<Relay> {
        let front = UdpSocket::bind("127.0.0.1:0")?;
        let back = UdpSocket::bind(SocketAddr::new(
            if upstream.is_ipv4() {
                std::net::Ipv4Addr::LOCALHOST.into()
            } else {
                std::net::Ipv6Addr::LOCALHOST.into()
            },
            0,
        ))?;
        front.set_nonblocking(true)?;
        back.set_nonblocking(true)?;
        crate::net::grow_recv_buffer(&front, 8 << 20);
        crate::net::grow_recv_buffer(&back, 8 << 20);
        let addr = front.local_addr()?;
        let stop = Arc::new(AtomicBool::new(false));
        let shared = Arc::new(Mutex::new(Shared::default()));
        let (stop2, shared2) = (Arc::clone(&stop), Arc::clone(&shared));
        let handle = std::thread::Builder::new()
            .name("rgtp-conformance-relay".into())
            .spawn(move || {
                let mut up = Impairment::new(config.clone(), seed);
                let mut down = Impairment::new(config, other_seed(seed));
                run(front, back, upstream, &mut up, &mut down, &stop2, &shared2);
                let mut s = shared2.lock().unwrap_or_else(|p| p.into_inner());
                s.to_exposer = up.stats();
                s.to_puller = down.stats();
            })?;
        Ok(Relay {
            addr,
            upstream,
            shared,
            stop,
            handle: Some(handle),
        })
    }

    /// Stops the relay and returns what it delivered and its counters (toward the
    /// exposer, toward the puller).
    pub fn finish(mut self) -> (Vec<Delivered>, ImpairmentStats, ImpairmentStats) {
        self.stop.store(true, Ordering::Relaxed);
        if let Some(h) = self.handle.take() {
            let _ = h.join();
        }
        let mut s = self.shared.lock().unwrap_or_else(|p| p.into_inner());
        (std::mem::take(&mut s.delivered), s.to_exposer, s.to_puller)
    }

    /// Writes `delivered` as a classic pcap between the puller's address and the
    /// exposer's (`upstream`): what each side was handed by the relay.
    pub fn write_pcap(
        upstream: SocketAddr,
        delivered: &[Delivered],
        path: &std::path::Path,
    ) -> io::Result<()> {
        let f = io::BufWriter::new(std::fs::File::create(path)?);
        let mut w = rgtp_capture::CaptureWriter::new(f)?;
        for d in delivered {
            let (src, dst) = if d.to_exposer {
                (d.puller, upstream)
            } else {
                (upstream, d.puller)
            };
            w.write_datagram(d.ts_us, Peer::Ip(src), Peer::Ip(dst), None, &d.data)?;
        }
        w.flush()
    }
}

/// A datagram waiting for its delivery time; ordered by (time, sequence).
#[derive(PartialEq, Eq, PartialOrd, Ord)]
struct Pending {
    at_us: std::cmp::Reverse<(u64, u64)>,
    to_exposer: bool,
    data: Vec<u8>,
}

fn run(
    front: UdpSocket,
    back: UdpSocket,
    upstream: SocketAddr,
    up: &mut Impairment,
    down: &mut Impairment,
    stop: &AtomicBool,
    shared: &Mutex<Shared>,
) {
    let start = StdInstant::now();
    let now = || Instant::from_micros(start.elapsed().as_micros() as u64);
    let mut puller: Option<SocketAddr> = None;
    let mut queue: BinaryHeap<Pending> = BinaryHeap::new();
    let mut seq = 0u64;
    let mut buf = vec![0u8; 65536];
    let mut out = Vec::new();
    while !stop.load(Ordering::Relaxed) {
        // Wait for a datagram or the next delivery, at most 10 ms.
        let wait_ms = match queue.peek() {
            Some(p) => {
                let due = p.at_us.0 .0;
                let n = now().total_micros();
                (due.saturating_sub(n) / 1000).min(10) as i32
            }
            None => 10,
        };
        let mut fds = [
            libc::pollfd {
                fd: front.as_raw_fd(),
                events: libc::POLLIN,
                revents: 0,
            },
            libc::pollfd {
                fd: back.as_raw_fd(),
                events: libc::POLLIN,
                revents: 0,
            },
        ];
        // SAFETY: `fds` is a valid array of two pollfd for the duration of the call.
        unsafe {
            libc::poll(fds.as_mut_ptr(), 2, wait_ms);
        }
        // Toward the exposer.
        while let Ok((n, from)) = front.recv_from(&mut buf) {
            puller = Some(from);
            out.clear();
            up.process(now(), &buf[..n], &mut out);
            for (at, d) in out.drain(..) {
                seq += 1;
                queue.push(Pending {
                    at_us: std::cmp::Reverse((at.total_micros(), seq)),
                    to_exposer: true,
                    data: d,
                });
            }
        }
        // Toward the puller.
        while let Ok((n, from)) = back.recv_from(&mut buf) {
            if from != upstream || puller.is_none() {
                continue;
            }
            out.clear();
            down.process(now(), &buf[..n], &mut out);
            for (at, d) in out.drain(..) {
                seq += 1;
                queue.push(Pending {
                    at_us: std::cmp::Reverse((at.total_micros(), seq)),
                    to_exposer: false,
                    data: d,
                });
            }
        }
        // Deliver what is due.
        let n = now().total_micros();
        while queue.peek().is_some_and(|p| p.at_us.0 .0 <= n) {
            let p = queue.pop().expect("peeked");
            let Some(to) = puller else { continue };
            let r = if p.to_exposer {
                front_to_back(&back, &p.data, upstream)
            } else {
                front_to_back(&front, &p.data, to)
            };
            if r {
                let ts_us = SystemTime::now()
                    .duration_since(UNIX_EPOCH)
                    .map(|d| d.as_micros() as u64)
                    .unwrap_or(0);
                let mut s = shared.lock().unwrap_or_else(|p| p.into_inner());
                s.delivered.push(Delivered {
                    ts_us,
                    to_exposer: p.to_exposer,
                    puller: to,
                    data: p.data,
                });
            }
        }
    }
}

/// Sends `d` to `to` from `s`, retrying briefly while the socket buffer is full.
fn front_to_back(s: &UdpSocket, d: &[u8], to: SocketAddr) -> bool {
    for _ in 0..50 {
        match s.send_to(d, to) {
            Ok(_) => return true,
            Err(e) if e.kind() == io::ErrorKind::WouldBlock => {
                std::thread::sleep(Duration::from_micros(200))
            }
            Err(_) => return false,
        }
    }
    false
}
