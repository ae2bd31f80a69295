//! The puller's side of congestion control: the chosen controller, the RTT
//! estimator it reads, and the smoothed loss fraction the puller reports.

use std::time::Duration;

use redgiant_base::Instant;

use crate::cc::{CcConfig, CongestionController, Context, RttEstimator, Signal};

use super::config::PullerConfig;

/// The controller with its inputs.
#[derive(Debug)]
pub(super) struct Congestion {
    ctl: Box<dyn CongestionController>,
    name: &'static str,
    loss: f64,
    /// The RTT estimator.
    pub(super) rtt: RttEstimator,
}

impl Congestion {
    pub(super) fn new(cfg: &PullerConfig) -> Self {
        Congestion {
            ctl: (cfg.congestion.make)(&CcConfig {
                initial_window: cfg.initial_window,
                max_window: cfg.max_window,
            }),
            name: cfg.congestion.name,
            loss: 0.0,
            rtt: RttEstimator::default(),
        }
    }

    /// The controller's name.
    pub(super) fn name(&self) -> &'static str {
        self.name
    }

    /// The window, in whole chunks.
    pub(super) fn window(&self) -> u32 {
        self.ctl.window().max(1)
    }

    /// Smoothed loss fraction.
    pub(super) fn loss(&self) -> f64 {
        self.loss
    }

    /// The loss fraction as Q16 for Pull_Request and Rate_Report.
    pub(super) fn loss_q16(&self) -> u32 {
        (self.loss.clamp(0.0, 1.0) * 65535.0) as u32
    }

    fn signal(&mut self, signal: Signal, now: Instant, next_seq: u64) {
        let cx = Context {
            now,
            rtt: &self.rtt,
            next_seq,
        };
        self.ctl.on_signal(signal, &cx);
    }

    /// A requested entry arrived: decay the loss estimate, tell the controller.
    pub(super) fn on_delivery(&mut self, now: Instant, next_seq: u64) {
        self.loss *= 1.0 - 1.0 / 64.0;
        self.signal(Signal::Delivered, now, next_seq);
    }

    /// The entry requested as `seq` was declared lost. `next_seq` is the sequence
    /// number the next request will get.
    pub(super) fn on_loss(&mut self, now: Instant, seq: u64, next_seq: u64) {
        self.loss = self.loss * (1.0 - 1.0 / 64.0) + 1.0 / 64.0;
        self.signal(Signal::Lost { seq }, now, next_seq);
    }

    /// Takes an RTT sample, from an unambiguous answer to request `seq` if known.
    pub(super) fn on_rtt_sample(
        &mut self,
        now: Instant,
        sample: Duration,
        seq: Option<u64>,
        next_seq: u64,
    ) {
        self.rtt.update(sample);
        self.signal(Signal::Rtt { sample, seq }, now, next_seq);
    }
}
