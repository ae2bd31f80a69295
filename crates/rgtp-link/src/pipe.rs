//! In-memory byte pipes: a virtual-time duplex connection for simulations
//! ([`SimPipe`]) and real-time ends for running drivers in threads ([`PipeEnd`]).
//!
//! The two ends are [`Side::A`] (`Peer::Mem(0)`) and [`Side::B`]
//! (`Peer::Mem(1)`). Each direction has its own [`PipeConfig`] and its own
//! random generator, seeded from the pipe seed and the direction, and models
//! a wire:
//!
//! - written bytes are cut into segments of at most [`PipeConfig::segment`]
//!   bytes; with a rate set, each segment occupies the wire for `len / rate`
//!   (serialisation), one after the other, so `N` bytes written at `t` are
//!   all delivered no earlier than `t + N / rate`;
//! - each segment then takes the one-way delay plus a jitter drawn uniformly
//!   in `0..=jitter`, but never arrives before the segment ahead of it: a
//!   jittered segment waits behind a slower one, as in TCP;
//! - at most [`PipeConfig::capacity`] bytes are in flight (and, for
//!   [`PipeEnd`], unread) per direction: a write beyond that is partial, as
//!   on a socket whose buffers are full;
//! - [`PipeConfig::kill_after_bytes`] and [`PipeConfig::kill_at`] break the
//!   whole connection once that many bytes were written in this direction,
//!   or at that instant. Writes on either end then fail
//!   (`ConnectionReset`); each end still receives what was written before
//!   the break, then the reset (an error from [`StreamLink::recv`]).
//!
//! Guarantees, whatever the configuration: bytes arrive in order, exactly
//! once, each direction's end of stream (`shutdown_write`) after its last
//! byte. [`SimPipe`] is deterministic: the same seed, configuration and calls
//! give the same deliveries at the same instants, and the same
//! [`SimPipe::trace_hash`]. [`PipeEnd`] runs the same model against a
//! [`TimeSource`] (the wall clock, or a [`redgiant_base::ManualClock`] a test
//! moves), so its timing is only as exact as the scheduler.

use std::collections::VecDeque;
use std::io;
use std::sync::{Arc, Condvar, Mutex, MutexGuard};
use std::time::Duration;

use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;
use redgiant_base::stream::{StreamFraming, StreamLink, StreamRecv};
use redgiant_base::{Instant, Peer, TimeSource};

/// One end of a pipe.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Side {
    /// `Peer::Mem(0)`.
    A,
    /// `Peer::Mem(1)`.
    B,
}

impl Side {
    /// The other end.
    pub fn other(self) -> Side {
        match self {
            Side::A => Side::B,
            Side::B => Side::A,
        }
    }

    /// The end's address.
    pub fn peer(self) -> Peer {
        Peer::Mem(self.index() as u32)
    }

    fn index(self) -> usize {
        match self {
            Side::A => 0,
            Side::B => 1,
        }
    }
}

/// Default segment size: a TCP MSS over Ethernet.
pub const DEFAULT_SEGMENT: usize = 1460;
/// Default bound on the bytes in flight (and unread) per direction.
pub const DEFAULT_CAPACITY: usize = 256 << 10;

/// How one direction of a pipe behaves.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PipeConfig {
    /// One-way delay of every segment.
    pub delay: Duration,
    /// Extra delay per segment, uniform in `0..=jitter` (order is kept).
    pub jitter: Duration,
    /// Bandwidth in bytes per second (`None`: unlimited).
    pub rate: Option<u64>,
    /// Largest segment the bytes are cut into.
    pub segment: usize,
    /// Most bytes in flight (and unread, for [`PipeEnd`]) in this direction.
    pub capacity: usize,
    /// Break the connection once this many bytes were written this way.
    pub kill_after_bytes: Option<u64>,
    /// Break the connection at this instant.
    pub kill_at: Option<Instant>,
}

impl Default for PipeConfig {
    fn default() -> Self {
        PipeConfig {
            delay: Duration::ZERO,
            jitter: Duration::ZERO,
            rate: None,
            segment: DEFAULT_SEGMENT,
            capacity: DEFAULT_CAPACITY,
            kill_after_bytes: None,
            kill_at: None,
        }
    }
}

impl PipeConfig {
    /// Sets the one-way delay.
    pub fn with_delay(mut self, delay: Duration) -> Self {
        self.delay = delay;
        self
    }

    /// Sets the jitter.
    pub fn with_jitter(mut self, jitter: Duration) -> Self {
        self.jitter = jitter;
        self
    }

    /// Caps the bandwidth at `bytes_per_second` (at least 1).
    pub fn with_rate(mut self, bytes_per_second: u64) -> Self {
        self.rate = Some(bytes_per_second.max(1));
        self
    }

    /// Sets the segment size (at least 1).
    pub fn with_segment(mut self, bytes: usize) -> Self {
        self.segment = bytes.max(1);
        self
    }

    /// Sets the capacity (at least 1).
    pub fn with_capacity(mut self, bytes: usize) -> Self {
        self.capacity = bytes.max(1);
        self
    }

    /// Breaks the connection after `bytes` were written in this direction.
    pub fn with_kill_after_bytes(mut self, bytes: u64) -> Self {
        self.kill_after_bytes = Some(bytes);
        self
    }

    /// Breaks the connection at `at`.
    pub fn with_kill_at(mut self, at: Instant) -> Self {
        self.kill_at = Some(at);
        self
    }
}

/// What reaches an end.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum PipeEvent {
    /// The next bytes of the stream.
    Data(Vec<u8>),
    /// The other end shut down its write side: no byte will follow.
    Closed,
    /// The connection broke: no byte will follow, and writes fail.
    Reset,
}

/// One delivery of a [`SimPipe`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Delivery {
    /// When it arrived.
    pub at: Instant,
    /// The end it arrived at.
    pub to: Side,
    /// What arrived.
    pub event: PipeEvent,
}

#[derive(Debug)]
struct Segment {
    at: Instant,
    seq: u64,
    event: PipeEvent,
}

/// One direction's wire.
#[derive(Debug)]
struct Direction {
    config: PipeConfig,
    rng: ChaCha8Rng,
    queue: VecDeque<Segment>,
    /// Data bytes queued.
    in_flight: usize,
    /// When the wire finishes serialising what was written so far.
    busy_until: Instant,
    /// Arrival of the last segment queued: no later one arrives before it.
    last_arrival: Instant,
    /// Bytes written so far.
    written: u64,
    /// The end of stream was queued.
    shut: bool,
}

impl Direction {
    fn new(config: PipeConfig, seed: u64) -> Self {
        Direction {
            config,
            rng: ChaCha8Rng::seed_from_u64(seed),
            queue: VecDeque::new(),
            in_flight: 0,
            busy_until: Instant::ZERO,
            last_arrival: Instant::ZERO,
            written: 0,
            shut: false,
        }
    }

    /// When `len` bytes handed to the wire at `now` arrive.
    fn arrival(&mut self, now: Instant, len: usize) -> Instant {
        let start = now.max(self.busy_until);
        let serialise = self.config.rate.map_or(0, |rate| {
            // Rounded up: N bytes never take less than N / rate.
            (len as u128 * 1_000_000).div_ceil(u128::from(rate.max(1))) as u64
        });
        self.busy_until = start + Duration::from_micros(serialise);
        let jitter_us = self.config.jitter.as_micros().min(u128::from(u64::MAX)) as u64;
        let jitter = if jitter_us > 0 {
            self.rng.gen_range(0..=jitter_us)
        } else {
            0
        };
        let at = (self.busy_until + self.config.delay + Duration::from_micros(jitter))
            .max(self.last_arrival);
        self.last_arrival = at;
        at
    }
}

/// A deterministic virtual-time duplex byte pipe.
///
/// Call [`send`](Self::send) and [`shutdown_write`](Self::shutdown_write) as
/// the ends write, and [`deliver_due`](Self::deliver_due) when virtual time
/// reaches [`next_delivery`](Self::next_delivery).
#[derive(Debug)]
pub struct SimPipe {
    dirs: [Direction; 2],
    seq: u64,
    /// When the connection broke.
    broken: Option<Instant>,
    trace_hash: u64,
}

impl SimPipe {
    /// A pipe with both directions configured as `config`.
    pub fn new(config: PipeConfig, seed: u64) -> Self {
        Self::with_directions(config.clone(), config, seed)
    }

    /// A pipe whose direction A → B is `a_to_b` and B → A is `b_to_a`.
    pub fn with_directions(a_to_b: PipeConfig, b_to_a: PipeConfig, seed: u64) -> Self {
        SimPipe {
            dirs: [
                Direction::new(a_to_b, mix(seed, 0)),
                Direction::new(b_to_a, mix(seed, 1)),
            ],
            seq: 0,
            broken: None,
            trace_hash: FNV_OFFSET,
        }
    }

    /// End `from` writes `data` at `now`. Returns how many bytes the pipe
    /// took (fewer than `data.len()`, maybe 0, when its capacity is reached:
    /// write the rest after a delivery). Fails once the connection broke
    /// (`ConnectionReset`) or `from` shut down its write side (`BrokenPipe`).
    pub fn send(&mut self, now: Instant, from: Side, data: &[u8]) -> io::Result<usize> {
        self.send_holding(now, from, data, 0)
    }

    /// [`send`](Self::send), with `held` more bytes of this direction
    /// counting against its capacity (delivered but not yet read).
    fn send_holding(
        &mut self,
        now: Instant,
        from: Side,
        data: &[u8],
        held: usize,
    ) -> io::Result<usize> {
        self.check_kill(now);
        if self.broken.is_some() {
            return Err(killed());
        }
        let dir = &mut self.dirs[from.index()];
        if dir.shut {
            return Err(io::Error::new(
                io::ErrorKind::BrokenPipe,
                "write side of the pipe was shut down",
            ));
        }
        let room = dir.config.capacity.saturating_sub(dir.in_flight + held);
        let mut n = data.len().min(room);
        let mut kill = false;
        if let Some(limit) = dir.config.kill_after_bytes {
            let left = limit.saturating_sub(dir.written);
            if n as u64 >= left {
                n = left as usize;
                kill = true;
            }
        }
        let segment = dir.config.segment.max(1);
        for chunk in data[..n].chunks(segment) {
            let at = dir.arrival(now, chunk.len());
            self.seq += 1;
            dir.queue.push_back(Segment {
                at,
                seq: self.seq,
                event: PipeEvent::Data(chunk.to_vec()),
            });
            dir.in_flight += chunk.len();
        }
        dir.written += n as u64;
        if kill {
            self.break_at(now);
        }
        Ok(n)
    }

    /// End `from` shuts down its write side at `now`: the other end receives
    /// [`PipeEvent::Closed`] after the last byte. Again: nothing happens.
    pub fn shutdown_write(&mut self, now: Instant, from: Side) -> io::Result<()> {
        self.check_kill(now);
        if self.broken.is_some() {
            return Err(killed());
        }
        let dir = &mut self.dirs[from.index()];
        if dir.shut {
            return Ok(());
        }
        dir.shut = true;
        let at = dir.arrival(now, 0);
        self.seq += 1;
        dir.queue.push_back(Segment {
            at,
            seq: self.seq,
            event: PipeEvent::Closed,
        });
        Ok(())
    }

    /// Breaks the connection at `now` (if still up).
    pub fn kill(&mut self, now: Instant) {
        self.check_kill(now);
        if self.broken.is_none() {
            self.break_at(now);
        }
    }

    /// When the connection broke, if it did.
    pub fn broken_at(&self) -> Option<Instant> {
        self.broken
    }

    /// When something is next due: a delivery, or a configured kill.
    pub fn next_delivery(&self) -> Option<Instant> {
        let head = self
            .dirs
            .iter()
            .filter_map(|d| d.queue.front().map(|s| s.at))
            .min();
        match (head, self.pending_kill()) {
            (Some(a), Some(b)) => Some(a.min(b)),
            (a, b) => a.or(b),
        }
    }

    /// Data bytes in flight from `from`.
    pub fn in_flight(&self, from: Side) -> usize {
        self.dirs[from.index()].in_flight
    }

    /// Bytes `from` wrote so far.
    pub fn written(&self, from: Side) -> u64 {
        self.dirs[from.index()].written
    }

    /// Appends everything due at or before `now`, by arrival time and then
    /// write order. Returns how many deliveries were appended.
    pub fn deliver_due(&mut self, now: Instant, out: &mut Vec<Delivery>) -> usize {
        self.check_kill(now);
        let mut n = 0;
        loop {
            let next = (0..2)
                .filter_map(|i| self.dirs[i].queue.front().map(|s| (s.at, s.seq, i)))
                .filter(|&(at, _, _)| at <= now)
                .min();
            let Some((_, _, i)) = next else { break };
            let Some(seg) = self.dirs[i].queue.pop_front() else {
                break;
            };
            if let PipeEvent::Data(bytes) = &seg.event {
                self.dirs[i].in_flight -= bytes.len();
            }
            let to = if i == 0 { Side::B } else { Side::A };
            self.trace_hash = fnv_delivery(self.trace_hash, seg.at, to, &seg.event);
            out.push(Delivery {
                at: seg.at,
                to,
                event: seg.event,
            });
            n += 1;
        }
        n
    }

    /// A hash of every delivery so far (time, end, event, bytes), in order.
    pub fn trace_hash(&self) -> u64 {
        self.trace_hash
    }

    fn pending_kill(&self) -> Option<Instant> {
        if self.broken.is_some() {
            return None;
        }
        self.dirs.iter().filter_map(|d| d.config.kill_at).min()
    }

    fn check_kill(&mut self, now: Instant) {
        if let Some(at) = self.pending_kill().filter(|&at| at <= now) {
            self.break_at(at);
        }
    }

    /// Breaks the connection at `at`: each end gets what was written before,
    /// then [`PipeEvent::Reset`].
    fn break_at(&mut self, at: Instant) {
        self.broken = Some(at);
        for dir in &mut self.dirs {
            let reset_at = (at + dir.config.delay).max(dir.last_arrival);
            dir.last_arrival = reset_at;
            self.seq += 1;
            dir.queue.push_back(Segment {
                at: reset_at,
                seq: self.seq,
                event: PipeEvent::Reset,
            });
        }
    }
}

fn killed() -> io::Error {
    io::Error::new(io::ErrorKind::ConnectionReset, "the pipe was killed")
}

const FNV_OFFSET: u64 = 0xcbf2_9ce4_8422_2325;
const FNV_PRIME: u64 = 0x0000_0100_0000_01b3;

fn fnv(mut h: u64, bytes: &[u8]) -> u64 {
    for &b in bytes {
        h = (h ^ u64::from(b)).wrapping_mul(FNV_PRIME);
    }
    h
}

fn fnv_delivery(h: u64, at: Instant, to: Side, event: &PipeEvent) -> u64 {
    let h = fnv(h, &at.total_micros().to_le_bytes());
    let h = fnv(h, &[to.index() as u8]);
    match event {
        PipeEvent::Data(bytes) => fnv(fnv(h, &[0]), bytes),
        PipeEvent::Closed => fnv(h, &[1]),
        PipeEvent::Reset => fnv(h, &[2]),
    }
}

/// A direction's seed (SplitMix64 finaliser over the pipe seed and the direction).
fn mix(seed: u64, direction: u64) -> u64 {
    let mut z = seed ^ direction.wrapping_mul(0xd6e8_feb8_6659_fd93);
    z = z.wrapping_add(0x9e37_79b9_7f4a_7c15);
    z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
    z ^ (z >> 31)
}

/// How a direction ended, as its receiving end saw it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Ended {
    Closed,
    Reset,
}

#[derive(Debug)]
struct Shared {
    state: Mutex<RealState>,
    /// Signalled on every change (bytes written, read, ended, killed).
    changed: Condvar,
}

#[derive(Debug)]
struct RealState {
    pipe: SimPipe,
    /// Bytes delivered to each end and not yet read.
    rx: [VecDeque<u8>; 2],
    ended: [Option<Ended>; 2],
    dropped: [bool; 2],
    scratch: Vec<Delivery>,
}

impl RealState {
    fn pump(&mut self, now: Instant) {
        self.pipe.deliver_due(now, &mut self.scratch);
        for d in self.scratch.drain(..) {
            let to = d.to.index();
            match d.event {
                PipeEvent::Data(bytes) => self.rx[to].extend(bytes),
                PipeEvent::Closed => self.ended[to] = Some(Ended::Closed),
                PipeEvent::Reset => self.ended[to] = Some(Ended::Reset),
            }
        }
    }
}

/// One end of a real-time pipe, a [`StreamLink`]: `Peer::Mem(0)` or `Peer::Mem(1)`.
///
/// Both ends run one [`SimPipe`] against the clock `C` (clones of one
/// clock: [`redgiant_base::SystemClock`] for real time); waits block on a
/// condition variable, and no thread is spawned. Dropping an end shuts down
/// its write side; the other end's writes then fail (`BrokenPipe`).
#[derive(Debug)]
pub struct PipeEnd<C: TimeSource> {
    side: Side,
    shared: Arc<Shared>,
    clock: C,
}

impl<C: TimeSource + Clone> PipeEnd<C> {
    /// Two connected ends, both directions configured as `config`.
    pub fn pair(config: PipeConfig, seed: u64, clock: C) -> (PipeEnd<C>, PipeEnd<C>) {
        Self::pair_with_directions(config.clone(), config, seed, clock)
    }

    /// Two connected ends, A → B configured as `a_to_b`, B → A as `b_to_a`.
    pub fn pair_with_directions(
        a_to_b: PipeConfig,
        b_to_a: PipeConfig,
        seed: u64,
        clock: C,
    ) -> (PipeEnd<C>, PipeEnd<C>) {
        let shared = Arc::new(Shared {
            state: Mutex::new(RealState {
                pipe: SimPipe::with_directions(a_to_b, b_to_a, seed),
                rx: [VecDeque::new(), VecDeque::new()],
                ended: [None; 2],
                dropped: [false; 2],
                scratch: Vec::new(),
            }),
            changed: Condvar::new(),
        });
        let a = PipeEnd {
            side: Side::A,
            shared: shared.clone(),
            clock: clock.clone(),
        };
        let b = PipeEnd {
            side: Side::B,
            shared,
            clock,
        };
        (a, b)
    }
}

impl<C: TimeSource> PipeEnd<C> {
    /// Which end this is.
    pub fn side(&self) -> Side {
        self.side
    }

    /// Breaks the connection now.
    pub fn kill(&self) {
        let now = self.clock.now();
        self.lock().pipe.kill(now);
        self.shared.changed.notify_all();
    }

    /// Bytes this end wrote so far.
    pub fn written(&self) -> u64 {
        self.lock().pipe.written(self.side)
    }

    fn lock(&self) -> MutexGuard<'_, RealState> {
        // A panic elsewhere leaves the queues consistent enough to keep going.
        self.shared.state.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Waits until `deadline` (wall clock), the next delivery (on `C`), or a change.
    fn wait<'a>(
        &'a self,
        state: MutexGuard<'a, RealState>,
        now: Instant,
        deadline: Option<std::time::Instant>,
    ) -> MutexGuard<'a, RealState> {
        let wall = std::time::Instant::now();
        let until_due = state
            .pipe
            .next_delivery()
            .map(|at| at.saturating_since(now));
        let until_deadline = deadline.map(|d| d.saturating_duration_since(wall));
        let wait = match (until_due, until_deadline) {
            (Some(a), Some(b)) => Some(a.min(b)),
            (a, b) => a.or(b),
        };
        match wait {
            None => self
                .shared
                .changed
                .wait(state)
                .unwrap_or_else(|e| e.into_inner()),
            Some(w) => {
                self.shared
                    .changed
                    .wait_timeout(state, w)
                    .unwrap_or_else(|e| e.into_inner())
                    .0
            }
        }
    }
}

fn wall_deadline(timeout: Option<Duration>) -> Option<std::time::Instant> {
    timeout.map(|t| {
        std::time::Instant::now()
            .checked_add(t)
            .unwrap_or_else(|| std::time::Instant::now() + Duration::from_secs(86_400 * 365))
    })
}

impl<C: TimeSource> StreamLink for PipeEnd<C> {
    fn local_peer(&self) -> Peer {
        self.side.peer()
    }

    fn remote_peer(&self) -> Peer {
        self.side.other().peer()
    }

    fn framing(&self) -> StreamFraming {
        StreamFraming::Memory
    }

    fn max_segment(&self) -> Option<usize> {
        Some(self.lock().pipe.dirs[self.side.index()].config.segment)
    }

    fn send(&mut self, data: &[u8], timeout: Option<Duration>) -> io::Result<usize> {
        if data.is_empty() {
            return Ok(0);
        }
        let deadline = wall_deadline(timeout);
        let other = self.side.other().index();
        let mut state = self.lock();
        loop {
            let now = self.clock.now();
            state.pump(now);
            if state.dropped[other] {
                return Err(io::Error::new(
                    io::ErrorKind::BrokenPipe,
                    "the other end of the pipe was dropped",
                ));
            }
            let held = state.rx[other].len();
            let n = state.pipe.send_holding(now, self.side, data, held)?;
            if n > 0 {
                drop(state);
                self.shared.changed.notify_all();
                return Ok(n);
            }
            if deadline.is_some_and(|d| d <= std::time::Instant::now()) {
                return Ok(0);
            }
            state = self.wait(state, now, deadline);
        }
    }

    fn recv(&mut self, buf: &mut [u8], timeout: Option<Duration>) -> io::Result<StreamRecv> {
        if buf.is_empty() {
            return Err(io::Error::new(
                io::ErrorKind::InvalidInput,
                "recv into an empty buffer",
            ));
        }
        let deadline = wall_deadline(timeout);
        let me = self.side.index();
        let mut state = self.lock();
        loop {
            let now = self.clock.now();
            state.pump(now);
            let rx = &mut state.rx[me];
            if !rx.is_empty() {
                let n = buf.len().min(rx.len());
                let (front, back) = rx.as_slices();
                let k = n.min(front.len());
                buf[..k].copy_from_slice(&front[..k]);
                buf[k..n].copy_from_slice(&back[..n - k]);
                rx.drain(..n);
                drop(state);
                // Room freed for the writer.
                self.shared.changed.notify_all();
                return Ok(StreamRecv::Data(n));
            }
            match state.ended[me] {
                Some(Ended::Closed) => return Ok(StreamRecv::Closed),
                Some(Ended::Reset) => return Err(killed()),
                None => {}
            }
            if deadline.is_some_and(|d| d <= std::time::Instant::now()) {
                return Ok(StreamRecv::Timeout);
            }
            state = self.wait(state, now, deadline);
        }
    }

    fn shutdown_write(&mut self) -> io::Result<()> {
        let now = self.clock.now();
        let r = self.lock().pipe.shutdown_write(now, self.side);
        self.shared.changed.notify_all();
        r
    }
}

impl<C: TimeSource> Drop for PipeEnd<C> {
    fn drop(&mut self) {
        let now = self.clock.now();
        let mut state = self.lock();
        // A broken pipe has nothing left to close.
        let _ = state.pipe.shutdown_write(now, self.side);
        state.dropped[self.side.index()] = true;
        drop(state);
        self.shared.changed.notify_all();
    }
}

#[cfg(test)]
mod tests {
    use std::thread;

    use proptest::prelude::*;
    use redgiant_base::stream::send_all;
    use redgiant_base::{ManualClock, SystemClock};

    use super::*;

    fn pattern(len: usize) -> Vec<u8> {
        (0..len as u64)
            .map(|i| (i.wrapping_mul(0x9e37_79b9_7f4a_7c15) >> 56) as u8)
            .collect()
    }

    /// Writes `writes` (sizes) from A at `gap` intervals, retrying partial
    /// writes after the next delivery, then shuts down; returns every delivery.
    fn run(config: PipeConfig, seed: u64, writes: &[usize], gap: Duration) -> Vec<Delivery> {
        let mut pipe = SimPipe::new(config, seed);
        let data = pattern(writes.iter().sum());
        let mut out = Vec::new();
        let mut now = Instant::ZERO;
        let mut offset = 0;
        for &w in writes {
            let mut rest = &data[offset..offset + w];
            offset += w;
            while !rest.is_empty() {
                let n = pipe.send(now, Side::A, rest).unwrap();
                rest = &rest[n..];
                if n == 0 {
                    now = pipe.next_delivery().expect("full pipe has bytes in flight");
                }
                pipe.deliver_due(now, &mut out);
            }
            now = now + gap;
            pipe.deliver_due(now, &mut out);
        }
        pipe.shutdown_write(now, Side::A).unwrap();
        while let Some(at) = pipe.next_delivery() {
            pipe.deliver_due(at, &mut out);
        }
        out
    }

    fn stream_of(deliveries: &[Delivery], to: Side) -> (Vec<u8>, Vec<&PipeEvent>) {
        let mut bytes = Vec::new();
        let mut ends = Vec::new();
        for d in deliveries.iter().filter(|d| d.to == to) {
            match &d.event {
                PipeEvent::Data(b) => {
                    assert!(ends.is_empty(), "data after the end of stream");
                    bytes.extend_from_slice(b);
                }
                other => ends.push(other),
            }
        }
        (bytes, ends)
    }

    fn jittery() -> PipeConfig {
        PipeConfig::default()
            .with_delay(Duration::from_millis(20))
            .with_jitter(Duration::from_millis(15))
            .with_rate(1_000_000)
            .with_segment(500)
            .with_capacity(8_000)
    }

    proptest! {
        #[test]
        fn order_and_exactly_once_under_delay_and_jitter(
            seed in any::<u64>(),
            writes in proptest::collection::vec(1usize..20_000, 1..20),
            gap_us in 0u64..5_000,
            segment in 1usize..3_000,
        ) {
            let config = jittery().with_segment(segment);
            let out = run(config, seed, &writes, Duration::from_micros(gap_us));
            let (bytes, ends) = stream_of(&out, Side::B);
            prop_assert_eq!(bytes, pattern(writes.iter().sum()));
            prop_assert_eq!(ends, vec![&PipeEvent::Closed]);
            prop_assert!(out.windows(2).all(|w| w[0].at <= w[1].at));
            prop_assert!(out.iter().all(|d| d.to == Side::B));
        }
    }

    #[test]
    fn same_seed_same_schedule() {
        let writes = [3_000, 17, 40_000, 1, 9_999];
        let gap = Duration::from_micros(700);
        let a = run(jittery(), 7, &writes, gap);
        let b = run(jittery(), 7, &writes, gap);
        let c = run(jittery(), 8, &writes, gap);
        assert_eq!(a, b);
        assert_ne!(
            a.iter().map(|d| d.at).collect::<Vec<_>>(),
            c.iter().map(|d| d.at).collect::<Vec<_>>()
        );
        let hash = |seed| {
            let mut p = SimPipe::new(jittery(), seed);
            p.send(Instant::ZERO, Side::A, &[1; 5000]).unwrap();
            p.send(Instant::ZERO, Side::B, &[2; 3000]).unwrap();
            let mut out = Vec::new();
            while let Some(at) = p.next_delivery() {
                p.deliver_due(at, &mut out);
            }
            p.trace_hash()
        };
        assert_eq!(hash(1), hash(1));
        assert_ne!(hash(1), hash(2));
    }

    #[test]
    fn bandwidth_cap_holds_in_virtual_time() {
        for (rate, len) in [(1_000u64, 5_000usize), (125_000, 1 << 20), (7, 100)] {
            let config = PipeConfig::default()
                .with_rate(rate)
                .with_capacity(usize::MAX);
            let mut pipe = SimPipe::new(config, 1);
            let t0 = Instant::from_millis(3);
            assert_eq!(pipe.send(t0, Side::A, &pattern(len)).unwrap(), len);
            let mut out = Vec::new();
            let mut last = t0;
            while let Some(at) = pipe.next_delivery() {
                pipe.deliver_due(at, &mut out);
                last = at;
            }
            let floor_us = (len as u128 * 1_000_000).div_ceil(rate as u128) as u64;
            assert!(
                last.saturating_since(t0) >= Duration::from_micros(floor_us),
                "{len} bytes at {rate} B/s took {:?}",
                last.saturating_since(t0)
            );
            // And no faster for any prefix: k bytes are never there before k / rate.
            let mut got = 0u128;
            for d in &out {
                if let PipeEvent::Data(b) = &d.event {
                    got += b.len() as u128;
                    let min = (got * 1_000_000).div_ceil(rate as u128) as u64;
                    assert!(d.at.saturating_since(t0) >= Duration::from_micros(min));
                }
            }
        }
    }

    #[test]
    fn capacity_makes_writes_partial() {
        let mut pipe = SimPipe::new(
            PipeConfig::default()
                .with_delay(Duration::from_millis(1))
                .with_capacity(1000),
            1,
        );
        assert_eq!(pipe.send(Instant::ZERO, Side::A, &[0; 600]).unwrap(), 600);
        assert_eq!(pipe.send(Instant::ZERO, Side::A, &[0; 600]).unwrap(), 400);
        assert_eq!(pipe.send(Instant::ZERO, Side::A, &[0; 600]).unwrap(), 0);
        // The other direction has its own room.
        assert_eq!(pipe.send(Instant::ZERO, Side::B, &[0; 600]).unwrap(), 600);
        let mut out = Vec::new();
        pipe.deliver_due(Instant::from_millis(1), &mut out);
        assert_eq!(pipe.in_flight(Side::A), 0);
        assert_eq!(
            pipe.send(Instant::from_millis(1), Side::A, &[0; 600])
                .unwrap(),
            600
        );
    }

    #[test]
    fn kill_after_bytes_is_seen_by_both_ends() {
        let config = PipeConfig::default().with_delay(Duration::from_millis(5));
        let mut pipe =
            SimPipe::with_directions(config.clone().with_kill_after_bytes(2_500), config, 3);
        let t = Instant::from_millis(1);
        assert_eq!(pipe.send(t, Side::B, b"from b").unwrap(), 6);
        assert_eq!(pipe.send(t, Side::A, &pattern(2_000)).unwrap(), 2_000);
        // The write that reaches the limit is cut there; the next ones fail.
        assert_eq!(pipe.send(t, Side::A, &pattern(2_000)).unwrap(), 500);
        assert_eq!(pipe.broken_at(), Some(t));
        let e = pipe.send(t, Side::A, b"x").unwrap_err();
        assert_eq!(e.kind(), io::ErrorKind::ConnectionReset);
        let e = pipe.send(t, Side::B, b"x").unwrap_err();
        assert_eq!(e.kind(), io::ErrorKind::ConnectionReset);
        assert!(pipe.shutdown_write(t, Side::B).is_err());
        let mut out = Vec::new();
        while let Some(at) = pipe.next_delivery() {
            pipe.deliver_due(at, &mut out);
        }
        let (to_b, ends_b) = stream_of(&out, Side::B);
        assert_eq!(to_b.len(), 2_500);
        assert_eq!(&to_b[2_000..], &pattern(2_000)[..500]);
        assert_eq!(ends_b, vec![&PipeEvent::Reset]);
        let (to_a, ends_a) = stream_of(&out, Side::A);
        assert_eq!(to_a, b"from b");
        assert_eq!(ends_a, vec![&PipeEvent::Reset]);
    }

    #[test]
    fn kill_at_an_instant() {
        let kill = Instant::from_millis(10);
        let mut pipe = SimPipe::new(
            PipeConfig::default()
                .with_delay(Duration::from_millis(2))
                .with_kill_at(kill),
            4,
        );
        assert_eq!(pipe.next_delivery(), Some(kill));
        assert_eq!(
            pipe.send(Instant::from_millis(9), Side::A, b"early")
                .unwrap(),
            5
        );
        let mut out = Vec::new();
        pipe.deliver_due(Instant::from_millis(11), &mut out);
        assert_eq!(pipe.broken_at(), Some(kill));
        assert!(pipe
            .send(Instant::from_millis(11), Side::A, b"late")
            .is_err());
        while let Some(at) = pipe.next_delivery() {
            pipe.deliver_due(at, &mut out);
        }
        assert_eq!(
            out,
            vec![
                Delivery {
                    at: Instant::from_millis(11),
                    to: Side::B,
                    event: PipeEvent::Data(b"early".to_vec())
                },
                Delivery {
                    at: Instant::from_millis(12),
                    to: Side::B,
                    event: PipeEvent::Reset
                },
                Delivery {
                    at: Instant::from_millis(12),
                    to: Side::A,
                    event: PipeEvent::Reset
                },
            ]
        );
    }

    #[test]
    fn ends_on_a_manual_clock() {
        let clock = ManualClock::new(Instant::from_millis(100));
        let (mut a, mut b) = PipeEnd::pair(
            PipeConfig::default().with_delay(Duration::from_millis(50)),
            1,
            clock.clone(),
        );
        assert_eq!(
            (a.local_peer(), a.remote_peer()),
            (Peer::Mem(0), Peer::Mem(1))
        );
        assert_eq!(b.side(), Side::B);
        send_all(&mut a, b"hello", None).unwrap();
        a.shutdown_write().unwrap();
        let mut buf = [0u8; 3];
        let zero = Some(Duration::ZERO);
        assert_eq!(b.recv(&mut buf, zero).unwrap(), StreamRecv::Timeout);
        clock.advance(Duration::from_millis(49));
        assert_eq!(b.recv(&mut buf, zero).unwrap(), StreamRecv::Timeout);
        clock.advance(Duration::from_millis(1));
        assert_eq!(b.recv(&mut buf, zero).unwrap(), StreamRecv::Data(3));
        assert_eq!(&buf, b"hel");
        assert_eq!(b.recv(&mut buf, zero).unwrap(), StreamRecv::Data(2));
        assert_eq!(&buf[..2], b"lo");
        assert_eq!(b.recv(&mut buf, zero).unwrap(), StreamRecv::Closed);
        assert_eq!(b.recv(&mut buf, zero).unwrap(), StreamRecv::Closed);
        assert_eq!(
            a.send(b"more", zero).unwrap_err().kind(),
            io::ErrorKind::BrokenPipe
        );
        // B can still write after A's half close.
        send_all(&mut b, b"bye", None).unwrap();
        clock.advance(Duration::from_millis(50));
        assert_eq!(a.recv(&mut buf, zero).unwrap(), StreamRecv::Data(3));
        drop(a);
        assert_eq!(
            b.send(b"x", zero).unwrap_err().kind(),
            io::ErrorKind::BrokenPipe
        );
    }

    #[test]
    fn unread_bytes_count_against_capacity() {
        let clock = ManualClock::new(Instant::ZERO);
        let (mut a, mut b) =
            PipeEnd::pair(PipeConfig::default().with_capacity(100), 1, clock.clone());
        let zero = Some(Duration::ZERO);
        assert_eq!(a.send(&[1; 150], zero).unwrap(), 100);
        let mut buf = [0u8; 60];
        assert_eq!(b.recv(&mut buf, zero).unwrap(), StreamRecv::Data(60));
        assert_eq!(a.send(&[1; 150], zero).unwrap(), 60);
        assert_eq!(a.send(&[1; 150], zero).unwrap(), 0);
    }

    #[test]
    fn kill_mid_stream_in_real_time() {
        let (mut a, mut b) = PipeEnd::pair(
            PipeConfig::default()
                .with_delay(Duration::from_millis(1))
                .with_kill_after_bytes(100_000),
            9,
            SystemClock::new(),
        );
        let reader = thread::spawn(move || {
            let mut got = 0usize;
            let mut buf = vec![0u8; 4096];
            let err = loop {
                match b.recv(&mut buf, Some(Duration::from_secs(20))) {
                    Ok(StreamRecv::Data(n)) => got += n,
                    Ok(other) => panic!("{other:?} instead of a reset"),
                    Err(e) => break e,
                }
            };
            let write = b.send(b"x", Some(Duration::ZERO)).unwrap_err();
            (got, err.kind(), write.kind())
        });
        let data = pattern(300_000);
        let mut rest = &data[..];
        let err = loop {
            match a.send(rest, Some(Duration::from_secs(20))) {
                Ok(n) => {
                    assert!(n > 0, "send timed out");
                    rest = &rest[n..];
                }
                Err(e) => break e,
            }
        };
        assert_eq!(err.kind(), io::ErrorKind::ConnectionReset);
        assert_eq!(a.written(), 100_000);
        let (got, read_err, write_err) = reader.join().unwrap();
        assert_eq!(got, 100_000);
        assert_eq!(read_err, io::ErrorKind::ConnectionReset);
        assert_eq!(write_err, io::ErrorKind::ConnectionReset);
        assert_eq!(
            a.recv(&mut [0u8; 8], Some(Duration::from_secs(20)))
                .unwrap_err()
                .kind(),
            io::ErrorKind::ConnectionReset
        );
    }

    #[test]
    fn bulk_through_real_time_ends_with_jitter() {
        let (mut a, mut b) = PipeEnd::pair(
            PipeConfig::default()
                .with_delay(Duration::from_micros(200))
                .with_jitter(Duration::from_micros(300))
                .with_segment(1000),
            5,
            SystemClock::new(),
        );
        let data = pattern(4 << 20);
        let expect = data.clone();
        let writer = thread::spawn(move || {
            send_all(&mut a, &data, Some(Duration::from_secs(20))).unwrap();
            a.shutdown_write().unwrap();
            a
        });
        let mut got = Vec::new();
        let mut buf = vec![0u8; 1 << 16];
        loop {
            match b.recv(&mut buf, Some(Duration::from_secs(20))).unwrap() {
                StreamRecv::Data(n) => got.extend_from_slice(&buf[..n]),
                StreamRecv::Closed => break,
                StreamRecv::Timeout => panic!("stalled at {}", got.len()),
            }
        }
        writer.join().unwrap();
        assert!(got == expect, "bytes differ");
    }
}
