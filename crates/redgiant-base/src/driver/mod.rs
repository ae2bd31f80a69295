//! The one driver: runs any [`DatagramEndpoint`] over any [`Link`].
//!
//! Drivers are the only loops of the stack. Two shapes share one set of
//! rules (the calling order of [`crate::endpoint`]):
//!
//! - [`Driver`] owns a link and a [`TimeSource`] (the wall clock by default)
//!   and runs turns: send what is due, wait for datagrams no longer than the
//!   endpoint's next deadline, hand them in, fire timers. [`Driver::run`]
//!   loops until the [`Application`] says the work is done or a stop flag is
//!   set; [`Driver::turn`] is one turn, for callers that interleave their own
//!   work (the C ABI's `rgtp_poll`). An endpoint that other threads share
//!   (behind a lock) is run in halves instead: [`Driver::step`] does the
//!   work of a turn over a `&mut` endpoint without blocking and says how long
//!   to wait; [`Driver::wait`] waits on the link with no endpoint at hand, so
//!   the lock is free meanwhile.
//! - [`Stepper`] has no link and no clock: the caller moves virtual time and
//!   carries datagrams (a simulator, a capture replay, a fuzz harness).
//!   [`simulate`] runs several steppers over a virtual [`Network`].
//!
//! What the application does with the endpoint's output, writing delivered
//! data or answering an event, lives in one [`Application`] implementation
//! that every shape shares.

use std::io;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use crate::endpoint::{DatagramEndpoint, Endpoint, StreamEndpoint};
use crate::link::{Link, Received};
use crate::stream::{StreamLink, StreamRecv};
use crate::{Instant, Peer, SystemClock, TimeSource};

/// What a driver does with an endpoint's output: the application's side.
pub trait Application<E: Endpoint> {
    /// What a finished run gives back.
    type Output;
    /// Why a run failed. Link errors become this type too.
    type Error: From<io::Error>;

    /// Data the endpoint handed out while handling a datagram.
    fn deliver(&mut self, delivery: E::Delivery<'_>) -> Result<(), Self::Error>;

    /// One event. `Ok(Some(output))` ends the run.
    fn event(
        &mut self,
        endpoint: &mut E,
        event: E::Event,
    ) -> Result<Option<Self::Output>, Self::Error>;

    /// Called once a turn, after the datagrams of the turn were handed in and
    /// before the endpoint's transmits go out: work the application finished
    /// elsewhere (on a thread of its own) goes back to the endpoint here.
    /// Returns the longest the driver may wait for datagrams before calling
    /// again (`None`: no limit of its own). By default, nothing.
    fn settle(&mut self, endpoint: &mut E, now: Instant) -> Result<Option<Duration>, Self::Error> {
        let _ = (endpoint, now);
        Ok(None)
    }
}

/// Hands every pending event of `endpoint` to `app`; `Some` once the
/// application says the run is over.
///
/// Drivers call this after every datagram, and most datagrams cause no event:
/// that case costs one `poll_event`, inlined here, while the handling, whose
/// stack frame some applications make large, stays out of line.
#[inline]
pub fn drain_events<E: Endpoint, A: Application<E>>(
    endpoint: &mut E,
    app: &mut A,
) -> Result<Option<A::Output>, A::Error> {
    match endpoint.poll_event() {
        None => Ok(None),
        Some(first) => hand_out(endpoint, app, first),
    }
}

/// [`drain_events`] from its first event on.
#[inline(never)]
fn hand_out<E: Endpoint, A: Application<E>>(
    endpoint: &mut E,
    app: &mut A,
    first: E::Event,
) -> Result<Option<A::Output>, A::Error> {
    let mut next = Some(first);
    while let Some(ev) = next {
        if let Some(out) = app.event(endpoint, ev)? {
            return Ok(Some(out));
        }
        next = endpoint.poll_event();
    }
    Ok(None)
}

/// How a [`Driver`] behaves.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct DriverConfig {
    /// Longest wait for datagrams in one turn, whatever the endpoint's deadline.
    pub max_wait: Duration,
    /// Most transmits sent per flush, so new datagrams are read in between; when
    /// it is reached the next wait is zero.
    pub transmit_budget: usize,
    /// Receive buffer size in bytes (room for many GRO batches).
    pub recv_buffer: usize,
    /// How often [`Driver::run`] calls its `tick` callback.
    pub tick: Duration,
}

impl Default for DriverConfig {
    fn default() -> Self {
        DriverConfig {
            max_wait: Duration::from_millis(100),
            transmit_budget: 256,
            recv_buffer: 4 << 20,
            tick: Duration::from_millis(100),
        }
    }
}

/// What one [`Driver::turn`] did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Turn<O> {
    /// The application said the run is over.
    Done(O),
    /// The endpoint goes on.
    Continue {
        /// Datagrams received in this turn (stream drivers: 1 if any bytes were).
        received: usize,
        /// Transmits were left for the next turn (the budget ran out).
        pending: bool,
    },
}

/// What one [`Driver::step`] did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Step<O> {
    /// The application said the run is over.
    Done(O),
    /// The endpoint goes on: call [`Driver::wait`] with this (zero when
    /// transmits are pending), then step again.
    Wait(Duration),
}

/// How long a driver waits when an endpoint's deadline is still due right
/// after its timers fired and it had nothing to send: an endpoint bug (it
/// breaks the contract of [`crate::endpoint`]), which would otherwise spin
/// the driver at full speed without progress. Counted in
/// [`Driver::stuck_deadlines`].
pub const STUCK_WAIT: Duration = Duration::from_millis(1);

/// How [`Driver::run`] ended without an error.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Finish<O> {
    /// The application said the run is over.
    Done(O),
    /// The stop flag was set first.
    Stopped,
}

/// Runs endpoints over one link on a clock. See the [module docs](self).
pub struct Driver<L, C = SystemClock> {
    link: L,
    clock: C,
    config: DriverConfig,
    rbuf: Vec<u8>,
    tbuf: Vec<u8>,
    metas: Vec<Received>,
    /// `metas` holds datagrams [`Driver::wait`] received, not yet handed in.
    held: bool,
    stuck: u64,
    /// The longest wait the application's last [`Application::settle`] allowed.
    settle_cap: Option<Duration>,
}

impl<L: Link> Driver<L, SystemClock> {
    /// A driver on the wall clock with the default configuration.
    pub fn new(link: L) -> Self {
        Self::with_clock(link, SystemClock::new(), DriverConfig::default())
    }
}

impl<L: Link, C: TimeSource> Driver<L, C> {
    /// A driver on `clock`.
    pub fn with_clock(link: L, clock: C, config: DriverConfig) -> Self {
        Driver {
            link,
            clock,
            rbuf: vec![0; config.recv_buffer],
            tbuf: Vec::with_capacity(64 * 1500),
            metas: Vec::with_capacity(1024),
            held: false,
            stuck: 0,
            settle_cap: None,
            config,
        }
    }

    /// The link.
    pub fn link(&self) -> &L {
        &self.link
    }

    /// The link, mutably.
    pub fn link_mut(&mut self) -> &mut L {
        &mut self.link
    }

    /// Gives the link back.
    pub fn into_link(self) -> L {
        self.link
    }

    /// The clock.
    pub fn clock(&self) -> &C {
        &self.clock
    }

    /// Times an endpoint's deadline was still due right after its timers
    /// fired while it had nothing to send (each cost a [`STUCK_WAIT`]
    /// instead of a spin). Nonzero means the endpoint has a bug.
    pub fn stuck_deadlines(&self) -> u64 {
        self.stuck
    }

    /// The configuration.
    pub fn config(&self) -> &DriverConfig {
        &self.config
    }

    /// Sends up to the budget of transmits, each stamped with a fresh `now`.
    /// Returns how many were sent and whether the budget ran out with
    /// transmits left.
    fn send<E: Endpoint>(&mut self, endpoint: &mut E) -> io::Result<(usize, bool)> {
        for sent in 0..self.config.transmit_budget {
            let Some((t, bytes)) = endpoint.poll_transmit_ref(self.clock.now(), &mut self.tbuf)
            else {
                return Ok((sent, false));
            };
            self.link.send(&t, bytes)?;
        }
        Ok((self.config.transmit_budget, true))
    }

    /// Sends what is due, then hands out events.
    fn flush<E: DatagramEndpoint, A: Application<E>>(
        &mut self,
        endpoint: &mut E,
        app: &mut A,
    ) -> Result<(bool, Option<A::Output>), A::Error> {
        let (_, pending) = self.send(endpoint)?;
        Ok((pending, drain_events(endpoint, app)?))
    }

    /// Fires the endpoint's timers (due at `now`), sends what is due and
    /// hands out events. Returns how long the driver may wait at most: zero,
    /// or [`STUCK_WAIT`] when the endpoint left its deadline due with nothing
    /// sent (counted as stuck).
    fn fire<E: DatagramEndpoint, A: Application<E>>(
        &mut self,
        endpoint: &mut E,
        app: &mut A,
        now: Instant,
    ) -> Result<Result<Duration, A::Output>, A::Error> {
        endpoint.handle_timeout(now);
        let (sent, _) = self.send(endpoint)?;
        if let Some(out) = drain_events(endpoint, app)? {
            return Ok(Err(out));
        }
        if sent == 0 && endpoint.poll_timeout().is_some_and(|d| d <= now) {
            self.stuck += 1;
            return Ok(Ok(STUCK_WAIT));
        }
        Ok(Ok(Duration::ZERO))
    }

    /// Hands in the datagrams [`Driver::wait`] kept, if any, with what they
    /// deliver and the events they cause.
    fn hand_in<E: DatagramEndpoint, A: Application<E>>(
        &mut self,
        endpoint: &mut E,
        app: &mut A,
    ) -> Result<Option<A::Output>, A::Error> {
        if !std::mem::take(&mut self.held) {
            return Ok(None);
        }
        let now = self.clock.now();
        for m in &self.metas {
            let data = &mut self.rbuf[m.offset..m.offset + m.len];
            if let Some(d) = endpoint.handle_datagram(now, m.from, data) {
                app.deliver(d)?;
            }
            if let Some(out) = drain_events(endpoint, app)? {
                return Ok(Some(out));
            }
        }
        self.metas.clear();
        Ok(None)
    }

    /// The non-blocking half of a turn, for an endpoint shared with other
    /// threads: hands in the datagrams the last [`Driver::wait`] received
    /// (and what they deliver), fires due timers, sends what is due within
    /// the budget and hands out events. Returns how long to
    /// [`wait`](Driver::wait) before the next step: up to `max_wait`, less
    /// if a deadline comes first, zero if transmits are pending.
    pub fn step<E: DatagramEndpoint, A: Application<E>>(
        &mut self,
        endpoint: &mut E,
        app: &mut A,
        max_wait: Duration,
    ) -> Result<Step<A::Output>, A::Error> {
        if let Some(out) = self.hand_in(endpoint, app)? {
            return Ok(Step::Done(out));
        }
        let cap = app.settle(endpoint, self.clock.now())?;
        let max_wait = cap.map_or(max_wait, |c| max_wait.min(c));
        let (pending, done) = self.flush(endpoint, app)?;
        if let Some(out) = done {
            return Ok(Step::Done(out));
        }
        let now = self.clock.now();
        let wait = match endpoint.poll_timeout() {
            Some(deadline) if deadline <= now => match self.fire(endpoint, app, now)? {
                Ok(wait) => wait,
                Err(out) => return Ok(Step::Done(out)),
            },
            _ if pending => Duration::ZERO,
            Some(deadline) => deadline.saturating_since(now).min(max_wait),
            None => max_wait,
        };
        Ok(Step::Wait(wait.min(max_wait)))
    }

    /// The blocking half of a turn: waits up to `wait` for datagrams and
    /// keeps them for the next [`Driver::step`]. Needs no endpoint. Returns
    /// how many arrived; if the last ones were not handed in yet, returns
    /// their count at once without receiving more.
    pub fn wait(&mut self, wait: Duration) -> io::Result<usize> {
        if self.held {
            return Ok(self.metas.len());
        }
        self.metas.clear();
        let n = self
            .link
            .recv(&mut self.rbuf, &mut self.metas, Some(wait))?;
        self.held = !self.metas.is_empty();
        Ok(n)
    }

    /// One turn: hand in what a [`Driver::wait`] kept; send what is due and
    /// hand out events; fire a due timer; wait
    /// up to `max_wait` (less if a deadline comes first, zero if transmits are
    /// pending) for datagrams and hand each in; fire due timers; send and
    /// hand out events again.
    pub fn turn<E: DatagramEndpoint, A: Application<E>>(
        &mut self,
        endpoint: &mut E,
        app: &mut A,
        max_wait: Duration,
    ) -> Result<Turn<A::Output>, A::Error> {
        if let Some(out) = self.hand_in(endpoint, app)? {
            return Ok(Turn::Done(out));
        }
        let (pending, done) = self.flush(endpoint, app)?;
        if let Some(out) = done {
            return Ok(Turn::Done(out));
        }
        let now = self.clock.now();
        let wait = match endpoint.poll_timeout() {
            Some(deadline) if deadline <= now => match self.fire(endpoint, app, now)? {
                Ok(wait) => wait.min(max_wait),
                Err(out) => return Ok(Turn::Done(out)),
            },
            _ if pending => Duration::ZERO,
            Some(deadline) => deadline.saturating_since(now).min(max_wait),
            None => max_wait,
        };
        let wait = self.settle_cap.map_or(wait, |cap| wait.min(cap));
        self.metas.clear();
        let received = self
            .link
            .recv(&mut self.rbuf, &mut self.metas, Some(wait))?;
        let now = self.clock.now();
        for m in &self.metas {
            let data = &mut self.rbuf[m.offset..m.offset + m.len];
            if let Some(d) = endpoint.handle_datagram(now, m.from, data) {
                app.deliver(d)?;
            }
            if let Some(out) = drain_events(endpoint, app)? {
                return Ok(Turn::Done(out));
            }
        }
        self.settle_cap = app.settle(endpoint, now)?;
        if endpoint.poll_timeout().is_some_and(|d| d <= now) {
            endpoint.handle_timeout(now);
        }
        let (p, done) = self.flush(endpoint, app)?;
        if let Some(out) = done {
            return Ok(Turn::Done(out));
        }
        Ok(Turn::Continue {
            received,
            pending: p,
        })
    }

    /// Runs turns until the application says done or `stop` is set (checked
    /// every turn, so within [`DriverConfig::max_wait`]), calling `tick` about
    /// every [`DriverConfig::tick`] and once at the end.
    pub fn run<E: DatagramEndpoint, A: Application<E>>(
        &mut self,
        endpoint: &mut E,
        app: &mut A,
        stop: &AtomicBool,
        tick: impl FnMut(&E, &A),
    ) -> Result<Finish<A::Output>, A::Error> {
        let (max_wait, every) = (self.config.max_wait, self.config.tick);
        run_turns(endpoint, app, stop, every, tick, |e, a| {
            self.turn(e, a, max_wait)
        })
    }
}

/// The loop of every driver's `run`: turns until done, stopped or failed,
/// with a tick about every `every` and one at the end.
fn run_turns<E, A: Application<E>>(
    endpoint: &mut E,
    app: &mut A,
    stop: &AtomicBool,
    every: Duration,
    mut tick: impl FnMut(&E, &A),
    mut turn: impl FnMut(&mut E, &mut A) -> Result<Turn<A::Output>, A::Error>,
) -> Result<Finish<A::Output>, A::Error>
where
    E: Endpoint,
{
    let mut last_tick = std::time::Instant::now();
    let result = loop {
        if stop.load(Ordering::Relaxed) {
            break Ok(Finish::Stopped);
        }
        match turn(endpoint, app) {
            Ok(Turn::Done(out)) => break Ok(Finish::Done(out)),
            Ok(Turn::Continue { .. }) => {}
            Err(e) => break Err(e),
        }
        if last_tick.elapsed() >= every {
            tick(endpoint, app);
            last_tick = std::time::Instant::now();
        }
    };
    tick(endpoint, app);
    result
}

/// Runs a [`StreamEndpoint`] over one [`StreamLink`] on a clock: the stream
/// twin of [`Driver`], with the same turns, [`Application`] and results.
///
/// Bytes the endpoint did not consume are kept and offered again with what
/// arrives next; a transmit the link accepts only in part is finished before
/// the endpoint is asked for more, without blocking the reading side (so two
/// peers writing at once never deadlock). The end of the peer's stream
/// becomes `handle_close(now, false)`, a broken connection
/// `handle_close(now, true)` and then the error; once the endpoint says
/// [`StreamEndpoint::poll_shutdown`] and its bytes are out, the driver ends
/// the stream towards the peer.
pub struct StreamDriver<L, C = SystemClock> {
    link: L,
    clock: C,
    config: DriverConfig,
    inbuf: Vec<u8>,
    filled: usize,
    tbuf: Vec<u8>,
    /// Bytes of `tbuf` already written, while a transmit is partly out.
    written: usize,
    peer_closed: bool,
    shut: bool,
    /// Transmits taken from the endpoint so far.
    taken: u64,
    stuck: u64,
    /// The longest wait the application's last [`Application::settle`] allowed.
    settle_cap: Option<Duration>,
}

/// Longest wait for room while a transmit is partly written, before reading again.
const ROOM_WAIT: Duration = Duration::from_millis(1);

impl<L: StreamLink> StreamDriver<L, SystemClock> {
    /// A driver on the wall clock with the default configuration.
    pub fn new(link: L) -> Self {
        Self::with_clock(link, SystemClock::new(), DriverConfig::default())
    }
}

impl<L: StreamLink, C: TimeSource> StreamDriver<L, C> {
    /// A driver on `clock`; `config.recv_buffer` bounds the bytes held for
    /// the endpoint (received and not yet consumed).
    pub fn with_clock(link: L, clock: C, config: DriverConfig) -> Self {
        StreamDriver {
            link,
            clock,
            inbuf: vec![0; config.recv_buffer.max(1)],
            filled: 0,
            tbuf: Vec::new(),
            written: 0,
            peer_closed: false,
            shut: false,
            taken: 0,
            stuck: 0,
            settle_cap: None,
            config,
        }
    }

    /// The link.
    pub fn link(&self) -> &L {
        &self.link
    }

    /// The link, mutably.
    pub fn link_mut(&mut self) -> &mut L {
        &mut self.link
    }

    /// Gives the link back.
    pub fn into_link(self) -> L {
        self.link
    }

    /// The clock.
    pub fn clock(&self) -> &C {
        &self.clock
    }

    /// True once the peer ended its stream (or it broke).
    pub fn peer_closed(&self) -> bool {
        self.peer_closed
    }

    /// As [`Driver::stuck_deadlines`]: times the endpoint's deadline was
    /// still due right after its timers fired with nothing sent.
    pub fn stuck_deadlines(&self) -> u64 {
        self.stuck
    }

    /// Writes what is due without waiting: the rest of a partial transmit,
    /// then new transmits within the budget, then the end of stream when the
    /// endpoint asks. Returns whether bytes are left to write.
    fn send<E: StreamEndpoint>(&mut self, endpoint: &mut E, wait: Duration) -> io::Result<bool> {
        let mut budget = self.config.transmit_budget;
        loop {
            if self.written < self.tbuf.len() {
                let n = self.link.send(&self.tbuf[self.written..], Some(wait))?;
                self.written += n;
                if self.written < self.tbuf.len() {
                    return Ok(true);
                }
            }
            if budget == 0 {
                return Ok(true);
            }
            budget -= 1;
            match endpoint.poll_transmit(self.clock.now(), &mut self.tbuf) {
                Some(t) => {
                    self.tbuf.truncate(t.size);
                    self.written = 0;
                    self.taken += 1;
                }
                None => {
                    self.tbuf.clear();
                    self.written = 0;
                    break;
                }
            }
        }
        if !self.shut && endpoint.poll_shutdown() {
            self.shut = true;
            self.link.shutdown_write()?;
        }
        Ok(false)
    }

    fn flush<E: StreamEndpoint, A: Application<E>>(
        &mut self,
        endpoint: &mut E,
        app: &mut A,
        wait: Duration,
    ) -> Result<(bool, Option<A::Output>), A::Error> {
        let pending = self.send(endpoint, wait)?;
        Ok((pending, drain_events(endpoint, app)?))
    }

    /// Offers the bytes held to the endpoint and keeps what it left.
    fn offer<E: StreamEndpoint>(&mut self, endpoint: &mut E, now: Instant) -> io::Result<()> {
        let used = endpoint
            .handle_bytes(now, &self.inbuf[..self.filled])
            .min(self.filled);
        self.inbuf.copy_within(used..self.filled, 0);
        self.filled -= used;
        if self.filled == self.inbuf.len() {
            return Err(io::Error::new(
                io::ErrorKind::InvalidData,
                format!(
                    "the endpoint consumed nothing of a full {}-byte buffer",
                    self.inbuf.len()
                ),
            ));
        }
        Ok(())
    }

    /// One turn, as [`Driver::turn`]: write what is due and hand out events;
    /// fire a due timer; wait up to `max_wait` (less if a deadline comes
    /// first, briefly if bytes wait to be written) for bytes and offer them;
    /// fire due timers; write and hand out events again.
    pub fn turn<E: StreamEndpoint, A: Application<E>>(
        &mut self,
        endpoint: &mut E,
        app: &mut A,
        max_wait: Duration,
    ) -> Result<Turn<A::Output>, A::Error> {
        let (pending, done) = self.flush(endpoint, app, Duration::ZERO)?;
        if let Some(out) = done {
            return Ok(Turn::Done(out));
        }
        let now = self.clock.now();
        let mut wait = match endpoint.poll_timeout() {
            Some(deadline) if deadline <= now => {
                endpoint.handle_timeout(now);
                let taken = self.taken;
                if let (_, Some(out)) = self.flush(endpoint, app, Duration::ZERO)? {
                    return Ok(Turn::Done(out));
                }
                if self.taken == taken && endpoint.poll_timeout().is_some_and(|d| d <= now) {
                    self.stuck += 1;
                    STUCK_WAIT.min(max_wait)
                } else {
                    Duration::ZERO
                }
            }
            Some(deadline) => deadline.saturating_since(now).min(max_wait),
            None => max_wait,
        };
        wait = self.settle_cap.map_or(wait, |cap| wait.min(cap));
        if pending {
            // Wait for room rather than for bytes, briefly, then read what came.
            let (_, done) = self.flush(endpoint, app, wait.min(ROOM_WAIT))?;
            if let Some(out) = done {
                return Ok(Turn::Done(out));
            }
            wait = Duration::ZERO;
        }
        let mut received = 0;
        if self.peer_closed {
            // Nothing more will arrive: only the endpoint's timers can move it on.
            std::thread::sleep(wait);
        } else {
            let got = self.link.recv(&mut self.inbuf[self.filled..], Some(wait));
            let now = self.clock.now();
            match got {
                Ok(StreamRecv::Data(n)) => {
                    received = n;
                    self.filled += n;
                    self.offer(endpoint, now)?;
                }
                Ok(StreamRecv::Timeout) => {}
                Ok(StreamRecv::Closed) => {
                    self.peer_closed = true;
                    if self.filled > 0 {
                        self.offer(endpoint, now)?;
                    }
                    endpoint.handle_close(now, false);
                }
                Err(e) => {
                    self.peer_closed = true;
                    endpoint.handle_close(now, true);
                    // The application hears the endpoint's last word before the error.
                    if let Some(out) = drain_events(endpoint, app)? {
                        return Ok(Turn::Done(out));
                    }
                    return Err(e.into());
                }
            }
            if let Some(out) = drain_events(endpoint, app)? {
                return Ok(Turn::Done(out));
            }
        }
        let now = self.clock.now();
        self.settle_cap = app.settle(endpoint, now)?;
        if endpoint.poll_timeout().is_some_and(|d| d <= now) {
            endpoint.handle_timeout(now);
        }
        let (pending, done) = self.flush(endpoint, app, Duration::ZERO)?;
        if let Some(out) = done {
            return Ok(Turn::Done(out));
        }
        Ok(Turn::Continue {
            received: usize::from(received > 0),
            pending,
        })
    }

    /// Runs turns until the application says done or `stop` is set, as
    /// [`Driver::run`] does.
    pub fn run<E: StreamEndpoint, A: Application<E>>(
        &mut self,
        endpoint: &mut E,
        app: &mut A,
        stop: &AtomicBool,
        tick: impl FnMut(&E, &A),
    ) -> Result<Finish<A::Output>, A::Error> {
        let (max_wait, every) = (self.config.max_wait, self.config.tick);
        run_turns(endpoint, app, stop, every, tick, |e, a| {
            self.turn(e, a, max_wait)
        })
    }
}

/// How a run ended: the application's output or its error.
pub type Outcome<E, A> = Result<<A as Application<E>>::Output, <A as Application<E>>::Error>;

/// Drives one endpoint on virtual time: the caller moves the clock and
/// carries the datagrams. Once the application ends the run (or fails it),
/// the stepper is finished and keeps the outcome.
pub struct Stepper<E: DatagramEndpoint, A: Application<E>> {
    /// The endpoint.
    pub endpoint: E,
    /// The application.
    pub app: A,
    peer: Peer,
    background: bool,
    buf: Vec<u8>,
    outcome: Option<Outcome<E, A>>,
    /// The latest instant handed in.
    now: Instant,
    finished_at: Option<Instant>,
}

impl<E: DatagramEndpoint, A: Application<E>> Stepper<E, A> {
    /// A stepper for `endpoint` at address `peer`.
    pub fn new(endpoint: E, app: A, peer: Peer) -> Self {
        Stepper {
            endpoint,
            app,
            peer,
            background: false,
            buf: Vec::with_capacity(64 * 1500),
            outcome: None,
            now: Instant::ZERO,
            finished_at: None,
        }
    }

    /// Marks the endpoint as one that serves others and never finishes (an
    /// exposer): [`simulate`] does not wait for it.
    pub fn background(mut self) -> Self {
        self.background = true;
        self
    }

    /// The endpoint's address.
    pub fn peer(&self) -> Peer {
        self.peer
    }

    /// True once the application ended the run or it failed.
    pub fn is_finished(&self) -> bool {
        self.outcome.is_some()
    }

    /// The latest instant handed in when the run ended.
    pub fn finished_at(&self) -> Option<Instant> {
        self.finished_at
    }

    /// How the run ended, if it has.
    pub fn outcome(&self) -> Option<&Outcome<E, A>> {
        self.outcome.as_ref()
    }

    /// The endpoint, the application and the outcome.
    pub fn into_parts(self) -> (E, A, Option<Outcome<E, A>>) {
        (self.endpoint, self.app, self.outcome)
    }

    /// The endpoint's next deadline; `None` once finished.
    pub fn deadline(&self) -> Option<Instant> {
        if self.is_finished() {
            return None;
        }
        self.endpoint.poll_timeout()
    }

    fn settle(&mut self, r: Result<Option<A::Output>, A::Error>) {
        match r {
            Ok(None) => return,
            Ok(Some(out)) => self.outcome = Some(Ok(out)),
            Err(e) => self.outcome = Some(Err(e)),
        }
        self.finished_at = Some(self.now);
    }

    /// Lets the application [settle](Application::settle) what it finished
    /// elsewhere, then hands pending events to it. (Virtual time has no wait
    /// for the application's limit to cap.)
    pub fn events(&mut self) {
        if self.is_finished() {
            return;
        }
        if let Err(e) = self.app.settle(&mut self.endpoint, self.now) {
            self.settle(Err(e));
            return;
        }
        let r = drain_events(&mut self.endpoint, &mut self.app);
        self.settle(r);
    }

    /// Fires the endpoint's timers if one is due at `now`. Returns whether one was.
    pub fn fire_timers(&mut self, now: Instant) -> bool {
        if self.is_finished() || !self.endpoint.poll_timeout().is_some_and(|d| d <= now) {
            return false;
        }
        self.now = now;
        self.endpoint.handle_timeout(now);
        true
    }

    /// Calls the endpoint's `handle_timeout` at `now` whether or not a deadline
    /// is due (the contract makes an early call harmless), then hands out events.
    pub fn timeout(&mut self, now: Instant) {
        if self.is_finished() {
            return;
        }
        self.now = now;
        self.endpoint.handle_timeout(now);
        self.events();
    }

    /// Hands the datagrams of every transmit to `send(destination, bytes)`.
    /// Returns whether there were any.
    pub fn transmit(&mut self, now: Instant, send: &mut dyn FnMut(Peer, &[u8])) -> bool {
        if self.is_finished() {
            return false;
        }
        self.now = now;
        let mut any = false;
        while let Some((t, bytes)) = self.endpoint.poll_transmit_ref(now, &mut self.buf) {
            for d in t.datagrams(bytes) {
                send(t.destination, d);
            }
            any = true;
        }
        any
    }

    /// Hands a datagram in (and what it delivers to the application). Events
    /// wait for [`Stepper::events`].
    pub fn input(&mut self, now: Instant, from: Peer, data: &mut [u8]) {
        if self.is_finished() {
            return;
        }
        self.now = now;
        if let Some(d) = self.endpoint.handle_datagram(now, from, data) {
            if let Err(e) = self.app.deliver(d) {
                self.settle(Err(e));
            }
        }
    }

    /// Fires due timers, sends, then hands out events: one turn at `now` with
    /// no input. Returns whether anything was sent.
    pub fn step(&mut self, now: Instant, send: &mut dyn FnMut(Peer, &[u8])) -> bool {
        self.fire_timers(now);
        let sent = self.transmit(now, send);
        self.events();
        sent
    }
}

/// A virtual network that carries datagrams between [`Node`]s in virtual time.
pub trait Network {
    /// `from` sends `data` to `to` at `now`.
    fn send(&mut self, now: Instant, from: Peer, to: Peer, data: &[u8]);
    /// Appends `(to, from, bytes)` for every datagram due by `now`; returns how many.
    fn deliver_due(&mut self, now: Instant, out: &mut Vec<(Peer, Peer, Vec<u8>)>) -> usize;
    /// When the next datagram is due, if any is in flight.
    fn next_delivery(&self) -> Option<Instant>;
}

/// One endpoint of a [`simulate`] run, as the simulation sees it.
pub trait Node {
    /// Its address.
    fn peer(&self) -> Peer;
    /// True when the simulation need not wait for it any more.
    fn is_done(&self) -> bool;
    /// True for endpoints the simulation never waits for (they serve others).
    fn is_background(&self) -> bool;
    /// Its next deadline.
    fn deadline(&self) -> Option<Instant>;
    /// Timers, transmits and events at `now`; returns whether it sent anything.
    fn step(&mut self, now: Instant, send: &mut dyn FnMut(Peer, &[u8])) -> bool;
    /// A datagram arrives.
    fn input(&mut self, now: Instant, from: Peer, data: &mut [u8]);
    /// Pending events after a batch of inputs.
    fn events(&mut self);
}

impl<E: DatagramEndpoint, A: Application<E>> Node for Stepper<E, A> {
    fn peer(&self) -> Peer {
        self.peer
    }
    fn is_done(&self) -> bool {
        self.is_finished()
    }
    fn is_background(&self) -> bool {
        self.background
    }
    fn deadline(&self) -> Option<Instant> {
        Stepper::deadline(self)
    }
    fn step(&mut self, now: Instant, send: &mut dyn FnMut(Peer, &[u8])) -> bool {
        Stepper::step(self, now, send)
    }
    fn input(&mut self, now: Instant, from: Peer, data: &mut [u8]) {
        Stepper::input(self, now, from, data)
    }
    fn events(&mut self) {
        Stepper::events(self)
    }
}

/// A node [`simulate`] waits for until its end time, whatever the node says of
/// itself: a background server run alone for a while after its clients
/// finished, to take what is still on the way.
#[derive(Debug)]
pub struct UntilEnd<'n, N: ?Sized>(pub &'n mut N);

impl<N: Node + ?Sized> Node for UntilEnd<'_, N> {
    fn peer(&self) -> Peer {
        self.0.peer()
    }
    fn is_done(&self) -> bool {
        false
    }
    fn is_background(&self) -> bool {
        false
    }
    fn deadline(&self) -> Option<Instant> {
        self.0.deadline()
    }
    fn step(&mut self, now: Instant, send: &mut dyn FnMut(Peer, &[u8])) -> bool {
        self.0.step(now, send)
    }
    fn input(&mut self, now: Instant, from: Peer, data: &mut [u8]) {
        self.0.input(now, from, data)
    }
    fn events(&mut self) {
        self.0.events()
    }
}

/// Runs `nodes` over `net` from `start` until every node that is not
/// background is done, or virtual time passes `end`. Returns the instant the
/// run stopped at.
///
/// Each round at one instant: every node steps in order (timers, transmits
/// into the network, events); the network delivers what is due; each
/// delivery goes to its node; then every node hands out its events. Rounds
/// repeat at that instant while anything moves, then time jumps to the
/// earliest deadline or delivery (at least one microsecond on), so idle
/// stretches cost nothing. The same inputs give the same run.
pub fn simulate(
    net: &mut dyn Network,
    nodes: &mut [&mut dyn Node],
    start: Instant,
    end: Instant,
) -> Instant {
    let mut now = start;
    let mut deliveries = Vec::new();
    let waiting =
        |nodes: &[&mut dyn Node]| nodes.iter().any(|n| !n.is_background() && !n.is_done());
    loop {
        let mut progressed = true;
        while progressed && waiting(nodes) {
            progressed = false;
            for node in nodes.iter_mut() {
                if node.is_done() {
                    continue;
                }
                let from = node.peer();
                progressed |= node.step(now, &mut |to, d| net.send(now, from, to, d));
            }
            deliveries.clear();
            if net.deliver_due(now, &mut deliveries) > 0 {
                progressed = true;
            }
            for (to, from, bytes) in deliveries.iter_mut() {
                if let Some(node) = nodes.iter_mut().find(|n| n.peer() == *to) {
                    if !node.is_done() {
                        node.input(now, *from, bytes);
                    }
                }
            }
            for node in nodes.iter_mut() {
                node.events();
            }
        }
        if !waiting(nodes) {
            return now;
        }
        let next = nodes
            .iter()
            .filter(|n| !n.is_done())
            .filter_map(|n| n.deadline())
            .chain(net.next_delivery())
            .min();
        match next {
            Some(t) if t <= end => now = t.max(now + Duration::from_micros(1)),
            _ => return now,
        }
    }
}

#[cfg(test)]
mod tests;
