//! `reno`: loss-based AIMD after TCP Reno (RFC 5681, RFC 5681 §3.1 for the growth).
//!
//! Slow start adds a chunk per delivery up to the threshold, congestion avoidance
//! a chunk per window; every loss of a request made since the last decrease halves
//! the window (once per window of requests). It reads no RTT: a queue fills until
//! it drops, which is what it is here to show beside `delay`.

use super::controller::{CcConfig, CongestionController, Context, Controller, Epoch, Signal};

/// The registration.
pub(super) const CONTROLLER: Controller = Controller {
    name: "reno",
    summary: "loss-based AIMD after TCP Reno (RFC 5681): halves on every loss episode, ignores RTT",
    make: |cfg| Box::new(Reno::new(cfg)),
};

/// The loss-signalled AIMD window.
#[derive(Debug)]
pub struct Reno {
    cwnd: f64,
    ssthresh: f64,
    max_window: f64,
    epoch: Epoch,
}

impl Reno {
    /// A controller starting at `cfg.initial_window`.
    pub fn new(cfg: &CcConfig) -> Self {
        Reno {
            cwnd: f64::from(cfg.initial_window.max(1)),
            ssthresh: f64::from(cfg.max_window),
            max_window: f64::from(cfg.max_window),
            epoch: Epoch::default(),
        }
    }
}

impl CongestionController for Reno {
    fn window(&self) -> u32 {
        (self.cwnd as u32).max(1)
    }

    fn on_signal(&mut self, signal: Signal, cx: &Context<'_>) {
        match signal {
            Signal::Delivered => {
                self.cwnd += if self.cwnd < self.ssthresh {
                    1.0
                } else {
                    1.0 / self.cwnd
                };
                self.cwnd = self.cwnd.min(self.max_window);
            }
            Signal::Lost { seq } => {
                if self.epoch.react(seq, cx.next_seq) {
                    self.ssthresh = (self.cwnd / 2.0).max(2.0);
                    self.cwnd = self.ssthresh;
                }
            }
            Signal::Rtt { .. } => {}
        }
    }
}
