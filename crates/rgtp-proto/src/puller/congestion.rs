//! Congestion control: the RTT estimator and the AIMD request window.
//!
//! The window grows by one chunk per delivery in slow start and by `1/window`
//! after it, and halves only when a loss or an RTT sample shows a standing
//! queue (upstream §6.3): random loss on an uncongested path is repaired by FEC
//! and re-requests, not by shrinking the window.

use std::time::Duration;

use crate::latency::Latency;

use super::config::PullerConfig;

/// Queueing delay below which a rising RTT is not read as congestion.
pub const QUEUE_FLOOR: Duration = Duration::from_millis(10);

/// RTT samples whose minimum stands for the current delay (a transient stall delays a
/// burst of samples; a standing queue delays all of them).
const RECENT_SAMPLES: usize = 16;

/// Smoothed RTT and variance (RFC 6298), the lowest RTT seen, the last
/// [`RECENT_SAMPLES`] samples, and the latency histogram of every sample.
#[derive(Debug)]
pub(super) struct RttEstimator {
    srtt: Option<Duration>,
    rttvar: Duration,
    min_rtt: Option<Duration>,
    recent: [Duration; RECENT_SAMPLES],
    recent_len: usize,
    latency: Latency,
}

impl RttEstimator {
    fn new() -> Self {
        RttEstimator {
            srtt: None,
            rttvar: Duration::ZERO,
            min_rtt: None,
            recent: [Duration::ZERO; RECENT_SAMPLES],
            recent_len: 0,
            latency: Latency::default(),
        }
    }

    /// Smoothed RTT, once there is a sample.
    pub(super) fn srtt(&self) -> Option<Duration> {
        self.srtt
    }

    /// RTT variance.
    pub(super) fn rttvar(&self) -> Duration {
        self.rttvar
    }

    /// Every sample taken, as a latency histogram.
    pub(super) fn latency(&self) -> &Latency {
        &self.latency
    }

    fn update(&mut self, sample: Duration) {
        self.recent[self.recent_len % RECENT_SAMPLES] = sample;
        self.recent_len += 1;
        self.min_rtt = Some(self.min_rtt.map_or(sample, |m| m.min(sample)));
        self.latency
            .record(sample.as_micros().min(u64::MAX as u128) as u64);
        match self.srtt {
            None => {
                self.srtt = Some(sample);
                self.rttvar = sample / 2;
            }
            Some(srtt) => {
                let diff = srtt.abs_diff(sample);
                self.rttvar = (self.rttvar * 3 + diff) / 4;
                self.srtt = Some((srtt * 7 + sample) / 8);
            }
        }
    }
}

/// The AIMD window over the RTT estimator, and the smoothed loss fraction.
#[derive(Debug)]
pub(super) struct Congestion {
    cwnd: f64,
    ssthresh: f64,
    /// Requests before this sequence number were made under a window since reduced.
    reduced_at_seq: u64,
    loss: f64,
    /// The RTT estimator.
    pub(super) rtt: RttEstimator,
}

impl Congestion {
    pub(super) fn new(cfg: &PullerConfig) -> Self {
        Congestion {
            cwnd: f64::from(cfg.initial_window.max(1)),
            ssthresh: f64::from(cfg.max_window),
            reduced_at_seq: 0,
            loss: 0.0,
            rtt: RttEstimator::new(),
        }
    }

    /// The window, in whole chunks.
    pub(super) fn window(&self) -> u32 {
        self.cwnd as u32
    }

    /// Smoothed loss fraction.
    pub(super) fn loss(&self) -> f64 {
        self.loss
    }

    /// The loss fraction as Q16 for Pull_Request and Rate_Report.
    pub(super) fn loss_q16(&self) -> u32 {
        (self.loss.clamp(0.0, 1.0) * 65535.0) as u32
    }

    /// A requested entry arrived: decay the loss estimate and grow the window.
    pub(super) fn on_delivery(&mut self, max_window: u32) {
        self.loss *= 1.0 - 1.0 / 64.0;
        if self.cwnd < self.ssthresh {
            self.cwnd += 1.0;
        } else {
            self.cwnd += 1.0 / self.cwnd;
        }
        self.cwnd = self.cwnd.min(f64::from(max_window));
    }

    /// A loss is a congestion signal only when the RTT shows a standing queue; random
    /// loss on an uncongested path leaves the window alone (FEC and re-requests repair it).
    /// `next_seq` is the sequence number the next request will get.
    pub(super) fn on_loss(&mut self, seq: u64, next_seq: u64) {
        self.loss = self.loss * (1.0 - 1.0 / 64.0) + 1.0 / 64.0;
        if self.congested() {
            self.reduce(seq, next_seq);
        }
    }

    /// Takes an RTT sample; one from an unambiguous answer to request `seq` may show a
    /// standing queue and reduce the window.
    pub(super) fn on_rtt_sample(&mut self, sample: Duration, seq: Option<u64>, next_seq: u64) {
        self.rtt.update(sample);
        if let (true, Some(seq)) = (self.congested(), seq) {
            self.reduce(seq, next_seq);
        }
    }

    /// Upstream §6.3's signal, with an absolute floor so that a path whose base RTT is
    /// microseconds (loopback, a LAN) may still hold a useful window: the current delay
    /// (the least of the last [`RECENT_SAMPLES`] RTT samples) is more than twice the lowest
    /// seen and at least [`QUEUE_FLOOR`] above it.
    fn congested(&self) -> bool {
        let Some(min) = self.rtt.min_rtt else {
            return false;
        };
        if self.rtt.recent_len < RECENT_SAMPLES {
            return false;
        }
        let current = self
            .rtt
            .recent
            .iter()
            .copied()
            .min()
            .unwrap_or(Duration::ZERO);
        current > min * 2 && current > min + QUEUE_FLOOR
    }

    /// Multiplicative decrease, on evidence from a request (`seq`) sent after the previous
    /// decrease: the smoothed RTT lags, and the queue a window built is only known to persist
    /// once a request made under the reduced window still sees it.
    fn reduce(&mut self, seq: u64, next_seq: u64) {
        if seq < self.reduced_at_seq {
            return;
        }
        tracing::debug!(
            cwnd = self.cwnd as u32,
            min_rtt_us = self.rtt.min_rtt.map_or(0, |d| d.as_micros() as u64),
            current_us = self
                .rtt
                .recent
                .iter()
                .min()
                .map_or(0, |d| d.as_micros() as u64),
            "window halved: standing queue"
        );
        self.ssthresh = (self.cwnd / 2.0).max(2.0);
        self.cwnd = self.ssthresh;
        self.reduced_at_seq = next_seq;
    }
}
