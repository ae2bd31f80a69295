//! gtUDP one way over loopback: `gtudp-oneway [COUNT] [SIZE] [WINDOW] [auth]`.
//!
//! A receiver endpoint runs on its own thread and a sender on the main one,
//! each on the one driver over its own `UdpLink` on 127.0.0.1. The sender
//! keeps WINDOW exchanges open (default 256) until COUNT datagrams of SIZE
//! bytes (defaults 200 000 and 1200) are all confirmed, then prints the
//! payload goodput, the repeats and the receiver's deliveries. Both ends use
//! the default configuration, duplicate memory included; with `auth`, the
//! authenticated profile under a fixed key.

use std::io;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant as WallInstant};

use redgiant_base::driver::{Application, Driver, Turn};
use redgiant_base::Peer;
use redgiant_gtudp::{AuthConfig, AuthKey, Config, Datagram, Event, Gtudp, ReferenceIds};
use rgtp_link::UdpLink;

struct Sink {
    delivered: u64,
    bytes: u64,
}

impl Application<Gtudp> for Sink {
    type Output = ();
    type Error = io::Error;

    fn deliver(&mut self, d: Datagram<'_>) -> io::Result<()> {
        self.delivered += 1;
        self.bytes += d.payload.len() as u64;
        Ok(())
    }

    fn event(&mut self, _: &mut Gtudp, _: Event) -> io::Result<Option<()>> {
        Ok(None)
    }
}

struct Source {
    to: Peer,
    payload: Vec<u8>,
    count: u64,
    opened: u64,
    settled: u64,
    failed: u64,
    window: u64,
}

impl Source {
    fn fill(&mut self, e: &mut Gtudp) {
        while self.opened < self.count && self.opened - self.settled < self.window {
            self.payload[..8].copy_from_slice(&self.opened.to_be_bytes());
            e.send_to(self.to, &self.payload);
            self.opened += 1;
        }
    }
}

impl Application<Gtudp> for Source {
    type Output = ();
    type Error = io::Error;

    fn deliver(&mut self, _: Datagram<'_>) -> io::Result<()> {
        Ok(())
    }

    fn event(&mut self, e: &mut Gtudp, ev: Event) -> io::Result<Option<()>> {
        match ev {
            Event::Confirmed(_) => self.settled += 1,
            Event::Failed(..) => {
                self.settled += 1;
                self.failed += 1;
            }
            Event::Received { .. } => {}
        }
        self.fill(e);
        Ok((self.settled == self.count).then_some(()))
    }
}

fn arg(n: usize, default: u64) -> u64 {
    std::env::args()
        .nth(n)
        .map(|s| s.parse().expect("a number"))
        .unwrap_or(default)
}

fn main() -> io::Result<()> {
    let count = arg(1, 200_000);
    let size = arg(2, 1200).max(8) as usize;
    let window = arg(3, 256).max(1);
    let auth = std::env::args().nth(4).is_some_and(|a| a == "auth");
    // Sessions differ per end; a benchmark's fixed key and sessions are fine.
    let config = move |session: u64| {
        let c = Config::default();
        if auth {
            c.with_auth(AuthConfig::new(AuthKey([0x42; 32]), session))
        } else {
            c
        }
    };
    let loopback = "127.0.0.1:0".parse().expect("literal");
    let rlink = UdpLink::bind(loopback)?;
    let to = Peer::Ip(rlink.local_addr());
    let stop = Arc::new(AtomicBool::new(false));
    let receiver = {
        let stop = stop.clone();
        std::thread::spawn(move || {
            let mut ep = Gtudp::new(config(1), ReferenceIds::new(1));
            let mut sink = Sink {
                delivered: 0,
                bytes: 0,
            };
            let mut driver = Driver::new(rlink);
            driver
                .run(&mut ep, &mut sink, &stop, |_, _| {})
                .expect("receiver");
            (sink.delivered, sink.bytes, ep.stats())
        })
    };
    let mut ep = Gtudp::new(config(2), ReferenceIds::new(2));
    let mut source = Source {
        to,
        payload: vec![0x5a; size],
        count,
        opened: 0,
        settled: 0,
        failed: 0,
        window,
    };
    let mut driver = Driver::new(UdpLink::bind(loopback)?);
    let start = WallInstant::now();
    source.fill(&mut ep);
    let limit = Duration::from_secs(120);
    while source.settled < count && start.elapsed() < limit {
        if let Turn::Done(()) = driver.turn(&mut ep, &mut source, Duration::from_millis(50))? {
            break;
        }
    }
    if source.settled < count {
        eprintln!(
            "gtudp-oneway: gave up after {limit:?}, {} settled",
            source.settled
        );
    }
    let took = start.elapsed();
    // Let the receiver see the last ACKs, then stop it.
    std::thread::sleep(Duration::from_millis(100));
    stop.store(true, Ordering::Relaxed);
    let (delivered, bytes, rstats) = receiver.join().expect("receiver thread");
    let s = ep.stats();
    let secs = took.as_secs_f64();
    println!(
        "gtudp one-way{}: {count} x {size} B, window {window}: {:.1} MB/s payload goodput \
         ({:.0} datagrams/s) in {took:.2?}; {} repeats, {} failed; receiver delivered {delivered} \
         ({bytes} B), {} duplicates, {} refused (table full)",
        if auth { " (authenticated)" } else { "" },
        (count as f64 * size as f64) / secs / 1e6,
        count as f64 / secs,
        s.data_repeated,
        source.failed,
        rstats.duplicates,
        rstats.refused_full,
    );
    Ok(())
}
