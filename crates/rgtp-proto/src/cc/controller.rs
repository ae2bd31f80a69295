//! The congestion-control contract between the puller and a controller.

use std::fmt;
use std::time::Duration;

use redgiant_base::Instant;

use super::rtt::RttEstimator;

/// What a controller is built from.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct CcConfig {
    /// Window at start, in chunks.
    pub initial_window: u32,
    /// Window ceiling, in chunks.
    pub max_window: u32,
}

/// The signals a receiver-driven puller has, in the order it sees them.
///
/// An RGTP puller has no acknowledgements to read: it asks for chunks and sees them
/// arrive. Every requested entry (a chunk or a parity shard) is either *delivered*
/// or declared *lost* (by request order or by timeout); answers to first requests
/// give RTT samples. Requests are numbered in the order they are sent (`seq`), so a
/// controller can tell a loss of a request made before its last reaction from one
/// made after.
#[derive(Debug, Clone, Copy)]
pub enum Signal {
    /// A requested entry arrived.
    Delivered,
    /// A requested entry was declared lost; `seq` numbers its request.
    Lost {
        /// The lost request's number.
        seq: u64,
    },
    /// An RTT sample (already added to the estimator); `seq` numbers the request it
    /// answers when the answer is unambiguous (Karn's rule).
    Rtt {
        /// The sample.
        sample: Duration,
        /// The request it answers, when known.
        seq: Option<u64>,
    },
}

/// What a controller sees with each [`Signal`].
#[derive(Debug, Clone, Copy)]
pub struct Context<'a> {
    /// The time of the event.
    pub now: Instant,
    /// The RTT estimator, updated before the call.
    pub rtt: &'a RttEstimator,
    /// The number the next request will get: a reaction now affects requests from here.
    pub next_seq: u64,
}

/// A congestion controller: how many requested entries a puller may have in flight.
///
/// The puller calls [`CongestionController::on_signal`] for every delivery, loss and
/// RTT sample, and reads [`CongestionController::window`] before each request. A
/// controller is sans-IO like the rest of the core: no clock (time comes in the
/// [`Context`]), no randomness. Register a new one in [`super::CONTROLLERS`].
pub trait CongestionController: Send + fmt::Debug + 'static {
    /// Requested entries allowed in flight, in chunks; at least 1.
    fn window(&self) -> u32;

    /// Takes one signal.
    fn on_signal(&mut self, signal: Signal, cx: &Context<'_>);
}

/// A registered controller: its name (what `--cc` takes) and how to make one.
#[derive(Clone, Copy)]
pub struct Controller {
    /// Name on the command line, in plans and in reports.
    pub name: &'static str,
    /// One line: what it reacts to and where it comes from.
    pub summary: &'static str,
    /// Makes a controller.
    pub make: fn(&CcConfig) -> Box<dyn CongestionController>,
}

impl fmt::Debug for Controller {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_tuple("Controller").field(&self.name).finish()
    }
}

impl PartialEq for Controller {
    fn eq(&self, other: &Self) -> bool {
        self.name == other.name
    }
}

impl Eq for Controller {}

/// Reacting at most once per window: a loss or a delay sample only counts as new
/// evidence when its request was sent after the last reaction (requests made before
/// it were sized by the window it replaced).
#[derive(Debug, Clone, Copy, Default)]
pub struct Epoch {
    reacted_at_seq: u64,
}

impl Epoch {
    /// Whether evidence from request `seq` is new; if it is, starts a new epoch at
    /// `next_seq`.
    pub fn react(&mut self, seq: u64, next_seq: u64) -> bool {
        if seq < self.reacted_at_seq {
            return false;
        }
        self.reacted_at_seq = next_seq;
        true
    }
}

/// A window in chunks with its slow-start threshold and ceiling, as every window
/// controller here keeps it: a chunk more per delivery below the threshold (slow
/// start, RFC 5681), what the controller's congestion avoidance says above it, and
/// a multiplicative cut that also sets the threshold.
#[derive(Debug, Clone, Copy)]
pub struct Window {
    /// The window, in chunks (fractional: avoidance grows it by fractions).
    pub cwnd: f64,
    /// Slow start ends here.
    pub ssthresh: f64,
    /// The window never grows beyond this.
    pub max: f64,
}

impl Window {
    /// `cfg.initial_window` (at least one chunk), in slow start up to `cfg.max_window`.
    pub fn new(cfg: &CcConfig) -> Self {
        Window {
            cwnd: f64::from(cfg.initial_window.max(1)),
            ssthresh: f64::from(cfg.max_window),
            max: f64::from(cfg.max_window),
        }
    }

    /// Whole chunks that may be in flight (at least one).
    pub fn chunks(&self) -> u32 {
        (self.cwnd as u32).max(1)
    }

    /// In slow start, one chunk more and `true`; above the threshold `false`, for
    /// the caller's avoidance to grow it (then [`Window::cap`]).
    pub fn slow_start(&mut self) -> bool {
        if self.cwnd < self.ssthresh {
            self.cwnd += 1.0;
            true
        } else {
            false
        }
    }

    /// Holds the window to its ceiling.
    pub fn cap(&mut self) {
        self.cwnd = self.cwnd.min(self.max);
    }

    /// One delivery under AIMD: slow start, else a chunk per window.
    pub fn grow_aimd(&mut self) {
        if !self.slow_start() {
            self.cwnd += 1.0 / self.cwnd;
        }
        self.cap();
    }

    /// Multiplicative decrease to `factor` of the window, at least two chunks; the
    /// result is the new slow-start threshold.
    pub fn cut(&mut self, factor: f64) {
        self.ssthresh = (self.cwnd * factor).max(2.0);
        self.cwnd = self.ssthresh;
    }
}
