//! `delay`: AIMD growth with decrease on a standing queue only (the default).
//!
//! The window grows by one chunk per delivery in slow start and by `1/window`
//! after it, and halves only when a loss or an RTT sample shows a standing
//! queue (upstream spec §6.3): random loss on an uncongested path is repaired
//! by FEC and re-requests, not by shrinking the window.

use std::time::Duration;

use super::controller::{
    CcConfig, CongestionController, Context, Controller, Epoch, Signal, Window,
};
use super::rtt::RttEstimator;

/// Queueing delay below which a rising RTT is not read as congestion.
pub const QUEUE_FLOOR: Duration = Duration::from_millis(10);

/// The registration.
pub(super) const CONTROLLER: Controller = Controller {
    name: "delay",
    summary:
        "AIMD growth, halved only on a standing queue (RTT), not on random loss (upstream §6.3)",
    make: |cfg| Box::new(Delay::new(cfg)),
};

/// The delay-signalled AIMD window.
#[derive(Debug)]
pub struct Delay {
    win: Window,
    epoch: Epoch,
}

impl Delay {
    /// A controller starting at `cfg.initial_window`.
    pub fn new(cfg: &CcConfig) -> Self {
        Delay {
            win: Window::new(cfg),
            epoch: Epoch::default(),
        }
    }

    fn reduce(&mut self, seq: u64, cx: &Context<'_>) {
        if !self.epoch.react(seq, cx.next_seq) {
            return;
        }
        tracing::debug!(
            cwnd = self.win.cwnd as u32,
            min_rtt_us = cx.rtt.min_rtt().map_or(0, |d| d.as_micros() as u64),
            current_us = cx.rtt.recent_min().map_or(0, |d| d.as_micros() as u64),
            "window halved: standing queue"
        );
        self.win.cut(0.5);
    }
}

/// Upstream §6.3's signal, with an absolute floor so that a path whose base RTT is
/// microseconds (loopback, a LAN) may still hold a useful window: the current delay
/// (the least of the recent RTT samples) is more than twice the lowest seen and at
/// least [`QUEUE_FLOOR`] above it.
pub fn standing_queue(rtt: &RttEstimator) -> bool {
    match (rtt.min_rtt(), rtt.recent_min()) {
        (Some(min), Some(current)) => current > min * 2 && current > min + QUEUE_FLOOR,
        _ => false,
    }
}

impl CongestionController for Delay {
    fn window(&self) -> u32 {
        self.win.chunks()
    }

    fn on_signal(&mut self, signal: Signal, cx: &Context<'_>) {
        match signal {
            Signal::Delivered => self.win.grow_aimd(),
            Signal::Lost { seq } => {
                if standing_queue(cx.rtt) {
                    self.reduce(seq, cx);
                }
            }
            // The smoothed RTT lags, and the queue a window built is only known to
            // persist once a request made under the reduced window still sees it.
            Signal::Rtt { seq: Some(seq), .. } => {
                if standing_queue(cx.rtt) {
                    self.reduce(seq, cx);
                }
            }
            Signal::Rtt { seq: None, .. } => {}
        }
    }
}
