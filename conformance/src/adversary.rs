//! A serving loop around our sans-IO [`Exposer`] over a plain UDP socket, with hooks that
//! drop, rewrite, reorder, duplicate or inject datagrams: the harness's adversarial exposer.

use std::io;
use std::net::{SocketAddr, UdpSocket};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use rgtp::driver::Clock;
use rgtp_proto::{Exposer, Peer};
use rgtp_wire::Repr;

use crate::net::{grow_recv_buffer, MAX_UDP};

/// A datagram to send.
#[derive(Debug, Clone)]
pub struct Out {
    /// Bytes.
    pub data: Vec<u8>,
    /// Send from the second socket (another source address) instead of the exposer's.
    pub spoofed: bool,
}

impl Out {
    /// From the exposer's own address.
    pub fn real(data: Vec<u8>) -> Out {
        Out {
            data,
            spoofed: false,
        }
    }
}

/// What the adversary does to traffic.
pub trait Mangle: Send {
    /// An inbound datagram, before the exposer sees it; `false` drops it.
    fn inbound(&mut self, _from: SocketAddr, _d: &mut Vec<u8>) -> bool {
        true
    }
    /// One datagram the exposer wants to send to `to`: push what to send instead.
    fn outbound(&mut self, _to: SocketAddr, d: &[u8], out: &mut Vec<Out>) {
        out.push(Out::real(d.to_vec()));
    }
    /// After the answers to one inbound datagram: flush anything held back.
    fn flush(&mut self, _out: &mut Vec<Out>) {}
}

/// Passes everything through.
pub struct Honest;
impl Mangle for Honest {}

/// Rewrites (or drops, returning `false`) an inbound datagram.
pub type InboundHook = Box<dyn FnMut(&mut Vec<u8>) -> bool + Send>;
/// Rewrites an outbound datagram.
pub type OutboundHook = Box<dyn FnMut(&mut Vec<u8>) + Send>;

/// Closures as a [`Mangle`].
pub struct Hooks {
    /// Inbound hook.
    pub inbound: InboundHook,
    /// Outbound hook.
    pub outbound: OutboundHook,
}

impl Mangle for Hooks {
    fn inbound(&mut self, _from: SocketAddr, d: &mut Vec<u8>) -> bool {
        (self.inbound)(d)
    }
    fn outbound(&mut self, _to: SocketAddr, d: &[u8], out: &mut Vec<Out>) {
        let mut v = d.to_vec();
        (self.outbound)(&mut v);
        out.push(Out::real(v));
    }
}

/// What passed between the puller and the adversarial exposer: the evidence a puller
/// case reports when the puller does not do what it should.
#[derive(Debug, Clone, Default)]
pub struct Traffic {
    /// Datagrams the puller sent.
    pub datagrams_in: usize,
    /// Their bytes.
    pub bytes_in: usize,
    /// Pull_Requests among them.
    pub pull_requests: usize,
    /// NAKs among them.
    pub naks: usize,
    /// Entries of those NAKs.
    pub nak_entries: usize,
    /// NAKs with NakFlags PROOFS.
    pub naks_with_proofs: usize,
    /// Rate_Reports and Keepalives.
    pub reports: usize,
    /// Datagrams of other types, or that do not parse.
    pub other_in: usize,
    /// Datagrams sent to the puller (after the adversary's changes).
    pub datagrams_out: usize,
    /// Their bytes.
    pub bytes_out: usize,
    /// Since the first datagram from the puller to its last.
    pub first_to_last: Option<Duration>,
    first: Option<Instant>,
}

impl Traffic {
    fn inbound(&mut self, d: &[u8]) {
        let now = Instant::now();
        let first = *self.first.get_or_insert(now);
        self.first_to_last = Some(now - first);
        self.datagrams_in += 1;
        self.bytes_in += d.len();
        match Repr::parse(d, MAX_UDP) {
            Ok(Repr::PullRequest(_)) => self.pull_requests += 1,
            Ok(Repr::Nak(n)) => {
                self.naks += 1;
                self.nak_entries += n.indices.len();
                if n.flags.contains(rgtp_wire::NakFlags::PROOFS) {
                    self.naks_with_proofs += 1;
                }
            }
            Ok(Repr::RateReport(_) | Repr::Keepalive(_)) => self.reports += 1,
            _ => self.other_in += 1,
        }
    }

    /// One line: what the puller sent and what it was sent.
    pub fn describe(&self) -> String {
        let mut s = format!(
            "the puller sent {} datagram(s) ({} B): {} Pull_Request(s), {} NAK(s) with {} entries",
            self.datagrams_in, self.bytes_in, self.pull_requests, self.naks, self.nak_entries
        );
        if self.naks_with_proofs > 0 {
            s += &format!(" ({} with PROOFS)", self.naks_with_proofs);
        }
        if self.reports > 0 {
            s += &format!(", {} Rate_Report/Keepalive", self.reports);
        }
        if self.other_in > 0 {
            s += &format!(", {} other", self.other_in);
        }
        if let Some(d) = self.first_to_last {
            s += &format!(" over {:.1} s", d.as_secs_f64());
        }
        s += &format!(
            "; it was sent {} datagram(s) ({} B)",
            self.datagrams_out, self.bytes_out
        );
        s
    }
}

/// A running adversarial exposer; stops when dropped.
pub struct Served {
    /// Where it listens.
    pub addr: SocketAddr,
    traffic: Arc<Mutex<Traffic>>,
    stop: Arc<AtomicBool>,
    handle: Option<JoinHandle<()>>,
}

impl Served {
    /// What passed so far.
    pub fn traffic(&self) -> Traffic {
        self.traffic
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .clone()
    }
}

impl Drop for Served {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
        if let Some(h) = self.handle.take() {
            let _ = h.join();
        }
    }
}

/// Serves `exposer` on `bind` through `mangle` in a thread.
pub fn spawn(
    mut exposer: Exposer,
    bind: SocketAddr,
    mut mangle: Box<dyn Mangle>,
) -> io::Result<Served> {
    let sock = UdpSocket::bind(bind)?;
    grow_recv_buffer(&sock, 8 << 20);
    let spoof = UdpSocket::bind(SocketAddr::new(bind.ip(), 0))?;
    let addr = sock.local_addr()?;
    sock.set_read_timeout(Some(Duration::from_millis(10)))?;
    let stop = Arc::new(AtomicBool::new(false));
    let stop2 = Arc::clone(&stop);
    let traffic = Arc::new(Mutex::new(Traffic::default()));
    let traffic2 = Arc::clone(&traffic);
    let tap = crate::evidence::current_tap();
    let handle = std::thread::Builder::new()
        .name("rgtp-conformance-exposer".into())
        .spawn(move || {
            let clock = Clock::new();
            let mut buf = vec![0u8; MAX_UDP + 1];
            let mut tbuf = Vec::with_capacity(MAX_UDP);
            let mut out = Vec::new();
            while !stop2.load(Ordering::Relaxed) {
                let (n, from) = match sock.recv_from(&mut buf) {
                    Ok(x) => x,
                    Err(_) => continue,
                };
                let mut d = buf[..n].to_vec();
                let mut t = traffic2.lock().unwrap_or_else(|p| p.into_inner());
                t.inbound(&d);
                drop(t);
                if let Some(t) = &tap {
                    t.harness(Peer::Ip(addr), Peer::Ip(from), false, &d);
                }
                if !mangle.inbound(from, &mut d) {
                    continue;
                }
                let now = clock.now();
                exposer.handle_datagram(now, Peer::Ip(from), &d);
                out.clear();
                while let Some(t) = exposer.poll_transmit(now, &mut tbuf) {
                    let Peer::Ip(to) = t.destination else {
                        continue;
                    };
                    for dg in t.datagrams(&tbuf) {
                        mangle.outbound(to, dg, &mut out);
                    }
                }
                mangle.flush(&mut out);
                let mut t = traffic2.lock().unwrap_or_else(|p| p.into_inner());
                t.datagrams_out += out.len();
                t.bytes_out += out.iter().map(|o| o.data.len()).sum::<usize>();
                drop(t);
                for o in &out {
                    let s = if o.spoofed { &spoof } else { &sock };
                    if let (Some(t), Ok(src)) = (&tap, s.local_addr()) {
                        t.harness(Peer::Ip(src), Peer::Ip(from), true, &o.data);
                    }
                    for _ in 0..50 {
                        match s.send_to(&o.data, from) {
                            Err(e) if e.kind() == io::ErrorKind::WouldBlock => {
                                std::thread::sleep(Duration::from_micros(200))
                            }
                            _ => break,
                        }
                    }
                }
            }
        })?;
    Ok(Served {
        addr,
        traffic,
        stop,
        handle: Some(handle),
    })
}
