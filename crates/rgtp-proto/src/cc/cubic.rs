//! `cubic`: the CUBIC window function (RFC 9438), counted in chunks.
//!
//! After a decrease the window follows `W(t) = C·(t − K)³ + W_max`: concave up to
//! the window where the last loss happened (`W_max`), flat around it, convex past
//! it, so it returns quickly to the last known capacity and probes beyond it
//! slowly at first. The decrease is multiplicative by β = 0.7; "fast convergence"
//! lowers `W_max` when losses come before it is reached (a new competitor); the
//! Reno-friendly estimate `W_est` keeps it at least as fast as AIMD on short RTTs
//! (RFC 9438 §4.3). Like `reno` it reacts to loss, not to delay.

use super::controller::{
    CcConfig, CongestionController, Context, Controller, Epoch, Signal, Window,
};
use redgiant_base::Instant;

/// The registration.
pub(super) const CONTROLLER: Controller = Controller {
    name: "cubic",
    summary: "loss-based, cubic window growth around the last loss (RFC 9438), β = 0.7",
    make: |cfg| Box::new(Cubic::new(cfg)),
};

/// RFC 9438's C, in chunks per second cubed.
const C: f64 = 0.4;
/// RFC 9438's multiplicative decrease factor.
const BETA: f64 = 0.7;

/// The CUBIC window.
#[derive(Debug)]
pub struct Cubic {
    win: Window,
    /// The window before the last decrease (after fast convergence).
    w_max: f64,
    /// Seconds the cubic function takes to return to `w_max`.
    k: f64,
    /// When congestion avoidance started after the last decrease.
    epoch_start: Option<Instant>,
    /// The window AIMD with the same average would have (RFC 9438 §4.3).
    w_est: f64,
    epoch: Epoch,
}

impl Cubic {
    /// A controller starting at `cfg.initial_window`, in slow start.
    pub fn new(cfg: &CcConfig) -> Self {
        Cubic {
            win: Window::new(cfg),
            w_max: 0.0,
            k: 0.0,
            epoch_start: None,
            w_est: 0.0,
            epoch: Epoch::default(),
        }
    }

    /// The cubic function at `t` seconds into the epoch.
    fn w_cubic(&self, t: f64) -> f64 {
        C * (t - self.k).powi(3) + self.w_max
    }

    fn avoid(&mut self, cx: &Context<'_>) {
        let start = *self.epoch_start.get_or_insert_with(|| {
            if self.win.cwnd >= self.w_max {
                // Growing past the last loss (or none yet): start the curve here.
                self.w_max = self.win.cwnd;
                self.k = 0.0;
            } else {
                self.k = ((self.w_max - self.win.cwnd) / C).cbrt();
            }
            self.w_est = self.win.cwnd;
            cx.now
        });
        let rtt = cx.rtt.srtt().map_or(0.0, |d| d.as_secs_f64());
        let t = cx.now.saturating_since(start).as_secs_f64();
        // The target one RTT ahead, growth capped at half the window per RTT.
        let target = self
            .w_cubic(t + rtt)
            .clamp(self.win.cwnd, self.win.cwnd * 1.5);
        // Reno-friendly region: AIMD with β = 0.7 adds 3(1-β)/(1+β) chunks per window.
        self.w_est += 3.0 * (1.0 - BETA) / (1.0 + BETA) / self.win.cwnd;
        if self.w_est > target {
            self.win.cwnd += (self.w_est - self.win.cwnd).max(0.0) / self.win.cwnd;
        } else {
            self.win.cwnd += (target - self.win.cwnd) / self.win.cwnd;
        }
    }
}

impl CongestionController for Cubic {
    fn window(&self) -> u32 {
        self.win.chunks()
    }

    fn on_signal(&mut self, signal: Signal, cx: &Context<'_>) {
        match signal {
            Signal::Delivered => {
                if !self.win.slow_start() {
                    self.avoid(cx);
                }
                self.win.cap();
            }
            Signal::Lost { seq } => {
                if self.epoch.react(seq, cx.next_seq) {
                    // Fast convergence (RFC 9438 §4.7): a loss before reaching the old
                    // maximum means less room now; release some of it.
                    self.w_max = if self.win.cwnd < self.w_max {
                        self.win.cwnd * (1.0 + BETA) / 2.0
                    } else {
                        self.win.cwnd
                    };
                    self.win.cut(BETA);
                    self.epoch_start = None;
                }
            }
            Signal::Rtt { .. } => {}
        }
    }
}
