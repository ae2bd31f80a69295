//! A serving loop around our sans-IO [`Exposer`] over a plain UDP socket, with hooks that
//! drop, rewrite, reorder, duplicate or inject datagrams: the harness's adversarial exposer.

use std::io;
use std::net::{SocketAddr, UdpSocket};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::thread::JoinHandle;
use std::time::Duration;

use rgtp::driver::Clock;
use rgtp_proto::{Exposer, Peer};

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

/// A running adversarial exposer; stops when dropped.
pub struct Served {
    /// Where it listens.
    pub addr: SocketAddr,
    stop: Arc<AtomicBool>,
    handle: Option<JoinHandle<()>>,
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
        stop,
        handle: Some(handle),
    })
}
