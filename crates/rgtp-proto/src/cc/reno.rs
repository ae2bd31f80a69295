//! `reno`: loss-based AIMD after TCP Reno (RFC 5681, RFC 5681 §3.1 for the growth).
//!
//! Slow start adds a chunk per delivery up to the threshold, congestion avoidance
//! a chunk per window; every loss of a request made since the last decrease halves
//! the window (once per window of requests). It reads no RTT: a queue fills until
//! it drops, which is what it is here to show beside `delay`.

use super::controller::{
    CcConfig, CongestionController, Context, Controller, Epoch, Signal, Window,
};

/// The registration.
pub(super) const CONTROLLER: Controller = Controller {
    name: "reno",
    summary: "loss-based AIMD after TCP Reno (RFC 5681): halves on every loss episode, ignores RTT",
    make: |cfg| Box::new(Reno::new(cfg)),
};

/// The loss-signalled AIMD window.
#[derive(Debug)]
pub struct Reno {
    win: Window,
    epoch: Epoch,
}

impl Reno {
    /// A controller starting at `cfg.initial_window`.
    pub fn new(cfg: &CcConfig) -> Self {
        Reno {
            win: Window::new(cfg),
            epoch: Epoch::default(),
        }
    }
}

impl CongestionController for Reno {
    fn window(&self) -> u32 {
        self.win.chunks()
    }

    fn on_signal(&mut self, signal: Signal, cx: &Context<'_>) {
        match signal {
            Signal::Delivered => self.win.grow_aimd(),
            Signal::Lost { seq } => {
                if self.epoch.react(seq, cx.next_seq) {
                    self.win.cut(0.5);
                }
            }
            Signal::Rtt { .. } => {}
        }
    }
}
