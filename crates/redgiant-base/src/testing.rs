//! Testing implementations of the base traits: a [`Link`] that reflects
//! every datagram back, a perfect virtual [`Network`], and a small
//! protocol-free endpoint ([`Pinger`]) that exercises every part of the
//! endpoint contract. The driver tests itself with them; other crates can
//! use them behind the `testing` feature.

use std::collections::VecDeque;
use std::io;
use std::time::Duration;

use crate::driver::{Application, Network};
use crate::endpoint::{DatagramEndpoint, Endpoint};
use crate::link::{Capabilities, Link, Received};
use crate::{Instant, ManualClock, Peer, Transmit};

/// A link whose far end sends every datagram straight back, dropping every
/// `drop_every`-th one (0: none). On a [`ManualClock`], a wait with nothing
/// to receive moves the clock on by the wait instead of sleeping.
#[derive(Debug)]
pub struct Reflector {
    local: Peer,
    queue: VecDeque<(Peer, Vec<u8>)>,
    clock: Option<ManualClock>,
    drop_every: usize,
    seen: usize,
    /// Datagrams sent through the link.
    pub sent: usize,
}

impl Reflector {
    /// A reflecting link at `local`.
    pub fn new(local: Peer) -> Self {
        Reflector {
            local,
            queue: VecDeque::new(),
            clock: None,
            drop_every: 0,
            seen: 0,
            sent: 0,
        }
    }

    /// Waits move `clock` instead of sleeping.
    pub fn on_clock(mut self, clock: ManualClock) -> Self {
        self.clock = Some(clock);
        self
    }

    /// Loses every `n`-th datagram sent.
    pub fn dropping_every(mut self, n: usize) -> Self {
        self.drop_every = n;
        self
    }
}

impl Link for Reflector {
    fn capabilities(&self) -> Capabilities {
        Capabilities {
            mtu: 1500,
            max_segments: 64,
            max_batch_bytes: usize::MAX,
        }
    }

    fn local_peer(&self) -> Peer {
        self.local
    }

    fn send(&mut self, t: &Transmit, buf: &[u8]) -> io::Result<()> {
        for d in t.datagrams(buf) {
            self.sent += 1;
            self.seen += 1;
            if self.drop_every != 0 && self.seen % self.drop_every == 0 {
                continue;
            }
            self.queue.push_back((t.destination, d.to_vec()));
        }
        Ok(())
    }

    fn recv(
        &mut self,
        buf: &mut [u8],
        out: &mut Vec<Received>,
        timeout: Option<Duration>,
    ) -> io::Result<usize> {
        if self.queue.is_empty() {
            match (&self.clock, timeout) {
                (Some(c), Some(t)) => c.advance(t),
                (None, Some(t)) => std::thread::sleep(t.min(Duration::from_millis(5))),
                (_, None) => {
                    return Err(io::Error::new(
                        io::ErrorKind::WouldBlock,
                        "nothing will ever arrive",
                    ))
                }
            }
            return Ok(0);
        }
        let mut offset = 0;
        let mut n = 0;
        while let Some((from, d)) = self.queue.front() {
            if offset + d.len() > buf.len() {
                break;
            }
            buf[offset..offset + d.len()].copy_from_slice(d);
            out.push(Received {
                from: *from,
                offset,
                len: d.len(),
            });
            offset += d.len();
            n += 1;
            self.queue.pop_front();
        }
        Ok(n)
    }
}

/// A virtual network with one fixed delay and no loss.
#[derive(Debug, Default)]
pub struct PerfectNetwork {
    /// One-way delay.
    pub delay: Duration,
    in_flight: VecDeque<(Instant, Peer, Peer, Vec<u8>)>,
    /// Datagrams carried.
    pub carried: usize,
}

impl PerfectNetwork {
    /// A network with one-way `delay`.
    pub fn new(delay: Duration) -> Self {
        PerfectNetwork {
            delay,
            ..Default::default()
        }
    }
}

impl Network for PerfectNetwork {
    fn send(&mut self, now: Instant, from: Peer, to: Peer, data: &[u8]) {
        self.carried += 1;
        self.in_flight
            .push_back((now + self.delay, to, from, data.to_vec()));
    }

    fn deliver_due(&mut self, now: Instant, out: &mut Vec<(Peer, Peer, Vec<u8>)>) -> usize {
        let mut n = 0;
        while self.in_flight.front().is_some_and(|f| f.0 <= now) {
            let (_, to, from, d) = self.in_flight.pop_front().expect("checked");
            out.push((to, from, d));
            n += 1;
        }
        n
    }

    fn next_delivery(&self) -> Option<Instant> {
        self.in_flight.front().map(|f| f.0)
    }
}

/// What a [`Pinger`] tells its application.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum PingEvent {
    /// Ping `n` came back.
    Echoed(u32),
    /// Every ping came back.
    Done,
    /// A ping went unanswered `max_tries` times.
    GaveUp(u32),
}

/// A protocol-free endpoint: sends pings `0..count` (4-byte big-endian
/// numbers) to `target`, a window of `window` at a time, resends one
/// unanswered for `rto`, and answers every ping it receives with the same
/// bytes, so two pingers, or one over a [`Reflector`], talk to each other.
/// Echoes are told apart from pings by their first bit.
#[derive(Debug)]
pub struct Pinger {
    target: Peer,
    count: u32,
    window: u32,
    rto: Duration,
    max_tries: u32,
    next: u32,
    outstanding: Vec<(u32, Instant, u32)>,
    answered: Vec<bool>,
    answers: VecDeque<(Peer, [u8; 4])>,
    events: VecDeque<PingEvent>,
    finished: bool,
    /// Pings sent, first copies and resends.
    pub sent: u32,
}

const ECHO: u32 = 1 << 31;

impl Pinger {
    /// A pinger that will send `count` pings to `target`.
    pub fn new(target: Peer, count: u32, window: u32, rto: Duration) -> Self {
        Pinger {
            target,
            count,
            window: window.max(1),
            rto,
            max_tries: 5,
            next: 0,
            outstanding: Vec::new(),
            answered: vec![false; count as usize],
            answers: VecDeque::new(),
            events: VecDeque::new(),
            finished: count == 0,
            sent: 0,
        }
    }
}

impl Endpoint for Pinger {
    type Event = PingEvent;
    /// The number an echo carried.
    type Delivery<'d> = u32;

    fn handle_timeout(&mut self, now: Instant) {
        let mut gave_up = None;
        for (n, due, tries) in &mut self.outstanding {
            if *due <= now {
                if *tries >= self.max_tries {
                    gave_up = Some(*n);
                    break;
                }
                // Resend: due now, so poll_transmit picks it up.
                *tries += 1;
                *due = now;
            }
        }
        if let Some(n) = gave_up {
            self.finished = true;
            self.outstanding.clear();
            self.events.push_back(PingEvent::GaveUp(n));
        }
    }

    fn poll_transmit(&mut self, now: Instant, buf: &mut Vec<u8>) -> Option<Transmit> {
        buf.clear();
        if let Some((to, bytes)) = self.answers.pop_front() {
            buf.extend_from_slice(&bytes);
            return Some(Transmit {
                destination: to,
                size: 4,
                segment_size: None,
            });
        }
        if self.finished {
            return None;
        }
        let rto = self.rto;
        let resend = self
            .outstanding
            .iter_mut()
            .find(|(_, due, _)| *due <= now)
            .map(|(n, due, _)| {
                *due = now + rto;
                *n
            });
        let n = match resend {
            Some(n) => n,
            None if self.next < self.count && (self.outstanding.len() as u32) < self.window => {
                let n = self.next;
                self.next += 1;
                self.outstanding.push((n, now + rto, 1));
                n
            }
            None => return None,
        };
        self.sent += 1;
        buf.extend_from_slice(&n.to_be_bytes());
        Some(Transmit {
            destination: self.target,
            size: 4,
            segment_size: None,
        })
    }

    fn poll_timeout(&self) -> Option<Instant> {
        self.outstanding.iter().map(|o| o.1).min()
    }

    fn poll_event(&mut self) -> Option<PingEvent> {
        self.events.pop_front()
    }
}

impl DatagramEndpoint for Pinger {
    fn handle_datagram(&mut self, _now: Instant, from: Peer, data: &mut [u8]) -> Option<u32> {
        let bytes: [u8; 4] = data.try_into().ok()?;
        let v = u32::from_be_bytes(bytes);
        if v & ECHO == 0 {
            self.answers.push_back((from, (v | ECHO).to_be_bytes()));
            return None;
        }
        let n = v & !ECHO;
        let slot = self.answered.get_mut(n as usize)?;
        if std::mem::replace(slot, true) {
            return None;
        }
        self.outstanding.retain(|o| o.0 != n);
        self.events.push_back(PingEvent::Echoed(n));
        if !self.finished && self.answered.iter().all(|&a| a) {
            self.finished = true;
            self.events.push_back(PingEvent::Done);
        }
        Some(n)
    }
}

/// An application that collects what a [`Pinger`] delivers and ends the run
/// at [`PingEvent::Done`] (or fails it at [`PingEvent::GaveUp`]).
#[derive(Debug, Default)]
pub struct PingApp {
    /// Numbers delivered, in order.
    pub delivered: Vec<u32>,
    /// Events seen, in order.
    pub events: Vec<PingEvent>,
}

impl Application<Pinger> for PingApp {
    type Output = usize;
    type Error = io::Error;

    fn deliver(&mut self, n: u32) -> io::Result<()> {
        self.delivered.push(n);
        Ok(())
    }

    fn event(&mut self, _: &mut Pinger, ev: PingEvent) -> io::Result<Option<usize>> {
        self.events.push(ev.clone());
        match ev {
            PingEvent::Done => Ok(Some(self.delivered.len())),
            PingEvent::GaveUp(n) => Err(io::Error::new(
                io::ErrorKind::TimedOut,
                format!("ping {n} unanswered"),
            )),
            PingEvent::Echoed(_) => Ok(None),
        }
    }
}

/// A stream link playing a script: it hands out the chunks of `input` one
/// per `recv`, then the end of stream (or, with `break_at_end`, a reset), and
/// accepts at most `max_write` bytes per `send` into `output`.
#[derive(Debug, Default)]
pub struct ScriptedStream {
    /// What the peer sends, one chunk per receive.
    pub input: VecDeque<Vec<u8>>,
    /// End with a broken connection instead of an orderly close.
    pub break_at_end: bool,
    /// Most bytes one send accepts (0: any number).
    pub max_write: usize,
    /// What was sent.
    pub output: Vec<u8>,
    /// Whether the write side was shut down.
    pub shut: bool,
}

impl crate::stream::StreamLink for ScriptedStream {
    fn local_peer(&self) -> Peer {
        Peer::Mem(1)
    }

    fn remote_peer(&self) -> Peer {
        Peer::Mem(2)
    }

    fn send(&mut self, data: &[u8], _timeout: Option<Duration>) -> io::Result<usize> {
        if self.shut {
            return Err(io::ErrorKind::BrokenPipe.into());
        }
        let n = match self.max_write {
            0 => data.len(),
            m => data.len().min(m),
        };
        self.output.extend_from_slice(&data[..n]);
        Ok(n)
    }

    fn recv(
        &mut self,
        buf: &mut [u8],
        _timeout: Option<Duration>,
    ) -> io::Result<crate::stream::StreamRecv> {
        use crate::stream::StreamRecv;
        let Some(chunk) = self.input.front_mut() else {
            if self.break_at_end {
                return Err(io::ErrorKind::ConnectionReset.into());
            }
            return Ok(StreamRecv::Closed);
        };
        let n = chunk.len().min(buf.len());
        buf[..n].copy_from_slice(&chunk[..n]);
        chunk.drain(..n);
        if chunk.is_empty() {
            self.input.pop_front();
        }
        Ok(StreamRecv::Data(n))
    }

    fn shutdown_write(&mut self) -> io::Result<()> {
        self.shut = true;
        Ok(())
    }
}

/// What a [`Shouter`] tells its application.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ShoutEvent {
    /// A whole line arrived.
    Line(Vec<u8>),
    /// The peer closed (`true`: the connection broke).
    Closed(bool),
    /// Every answer is out and the stream towards the peer ends.
    Finished,
}

/// A protocol-free stream endpoint: consumes whole lines only (leaving a
/// partial line for the next call), answers each in upper case, and once the
/// peer closes, ends its own stream after the answers.
#[derive(Debug, Default)]
pub struct Shouter {
    out: Vec<u8>,
    events: VecDeque<ShoutEvent>,
    closed: bool,
    finished: bool,
}

impl Endpoint for Shouter {
    type Event = ShoutEvent;
    type Delivery<'d> = core::convert::Infallible;

    fn handle_timeout(&mut self, _now: Instant) {}

    fn poll_transmit(&mut self, _now: Instant, buf: &mut Vec<u8>) -> Option<Transmit> {
        buf.clear();
        if self.out.is_empty() {
            return None;
        }
        buf.append(&mut self.out);
        Some(Transmit {
            destination: Peer::Mem(2),
            size: buf.len(),
            segment_size: None,
        })
    }

    fn poll_timeout(&self) -> Option<Instant> {
        None
    }

    fn poll_event(&mut self) -> Option<ShoutEvent> {
        self.events.pop_front()
    }
}

impl crate::endpoint::StreamEndpoint for Shouter {
    fn handle_bytes(&mut self, _now: Instant, data: &[u8]) -> usize {
        let mut used = 0;
        while let Some(nl) = data[used..].iter().position(|&b| b == b'\n') {
            let line = &data[used..used + nl + 1];
            self.out.extend(line.iter().map(u8::to_ascii_uppercase));
            self.events.push_back(ShoutEvent::Line(line.to_vec()));
            used += nl + 1;
        }
        used
    }

    fn handle_close(&mut self, _now: Instant, error: bool) {
        self.closed = true;
        self.events.push_back(ShoutEvent::Closed(error));
    }

    fn poll_shutdown(&mut self) -> bool {
        if self.finished || !self.closed || !self.out.is_empty() {
            return false;
        }
        self.finished = true;
        self.events.push_back(ShoutEvent::Finished);
        true
    }
}

/// Collects a [`Shouter`]'s lines; the run ends when the connection broke
/// (`true`) or the shouter finished after an orderly close (`false`).
#[derive(Debug, Default)]
pub struct ShoutApp {
    /// Lines seen, in order.
    pub lines: Vec<Vec<u8>>,
}

impl Application<Shouter> for ShoutApp {
    type Output = bool;
    type Error = io::Error;

    fn deliver(&mut self, d: core::convert::Infallible) -> io::Result<()> {
        match d {}
    }

    fn event(&mut self, _: &mut Shouter, ev: ShoutEvent) -> io::Result<Option<bool>> {
        match ev {
            ShoutEvent::Line(l) => {
                self.lines.push(l);
                Ok(None)
            }
            ShoutEvent::Closed(true) => Ok(Some(true)),
            ShoutEvent::Closed(false) => Ok(None),
            ShoutEvent::Finished => Ok(Some(false)),
        }
    }
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use super::*;
    use crate::link::{Borrowed, LentMemory};

    /// A link that takes lent memory: a reflector that keeps the loans.
    struct Taker(Reflector, Vec<Arc<dyn LentMemory>>);

    impl Link for Taker {
        fn capabilities(&self) -> Capabilities {
            self.0.capabilities()
        }
        fn local_peer(&self) -> Peer {
            self.0.local_peer()
        }
        fn lend(&mut self, memory: Arc<dyn LentMemory>) -> bool {
            self.1.push(memory);
            true
        }
        fn send(&mut self, t: &Transmit, buf: &[u8]) -> io::Result<()> {
            self.0.send(t, buf)
        }
        fn recv(
            &mut self,
            buf: &mut [u8],
            out: &mut Vec<Received>,
            timeout: Option<Duration>,
        ) -> io::Result<usize> {
            self.0.recv(buf, out, timeout)
        }
    }

    struct Bytes(&'static [u8]);

    impl LentMemory for Bytes {
        fn bytes(&self) -> &[u8] {
            self.0
        }
    }

    /// Lent memory passes through a box and a borrow to the link itself; a link
    /// that keeps the default (the reflector) declines it.
    #[test]
    fn lending_reaches_the_link_through_boxes_and_borrows() {
        let memory: Arc<dyn LentMemory> = Arc::new(Bytes(b"sealed"));
        let mut taker = Taker(Reflector::new(Peer::Mem(1)), Vec::new());
        assert!(Borrowed(&mut taker).lend(Arc::clone(&memory)));
        let mut boxed: Box<dyn Link> = Box::new(taker);
        assert!(boxed.lend(Arc::clone(&memory)));
        let mut copier: Box<dyn Link> = Box::new(Reflector::new(Peer::Mem(2)));
        assert!(!Borrowed(&mut copier).lend(Arc::clone(&memory)));
        // The taker holds both loans; the copier none.
        assert_eq!(Arc::strong_count(&memory), 3);
    }
}
