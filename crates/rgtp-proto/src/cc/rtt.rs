//! The RTT estimator every controller reads.

use std::time::Duration;

use crate::latency::Latency;

/// RTT samples whose minimum stands for the current delay (a transient stall delays a
/// burst of samples; a standing queue delays all of them).
pub const RECENT_SAMPLES: usize = 16;

/// Smoothed RTT and variance (RFC 6298), the lowest RTT seen, the last
/// [`RECENT_SAMPLES`] samples, and the latency histogram of every sample.
#[derive(Debug)]
pub struct RttEstimator {
    srtt: Option<Duration>,
    rttvar: Duration,
    min_rtt: Option<Duration>,
    latest: Option<Duration>,
    /// In nanoseconds: the minimum of 16 integers is a few vector instructions.
    recent: [u64; RECENT_SAMPLES],
    recent_len: usize,
    latency: Latency,
}

impl Default for RttEstimator {
    fn default() -> Self {
        RttEstimator {
            srtt: None,
            rttvar: Duration::ZERO,
            min_rtt: None,
            latest: None,
            recent: [0; RECENT_SAMPLES],
            recent_len: 0,
            latency: Latency::default(),
        }
    }
}

impl RttEstimator {
    /// Smoothed RTT, once there is a sample.
    pub fn srtt(&self) -> Option<Duration> {
        self.srtt
    }

    /// RTT variance.
    pub fn rttvar(&self) -> Duration {
        self.rttvar
    }

    /// The lowest sample seen: the path's propagation delay, as far as is known.
    pub fn min_rtt(&self) -> Option<Duration> {
        self.min_rtt
    }

    /// The last sample taken.
    pub fn latest(&self) -> Option<Duration> {
        self.latest
    }

    /// The current delay: the least of the last [`RECENT_SAMPLES`] samples, once there
    /// are that many.
    pub fn recent_min(&self) -> Option<Duration> {
        if self.recent_len < RECENT_SAMPLES {
            return None;
        }
        self.recent.iter().copied().min().map(Duration::from_nanos)
    }

    /// Samples taken so far.
    pub fn samples(&self) -> usize {
        self.recent_len
    }

    /// Every sample taken, as a latency histogram.
    pub fn latency(&self) -> &Latency {
        &self.latency
    }

    /// Takes a sample.
    pub fn update(&mut self, sample: Duration) {
        self.recent[self.recent_len % RECENT_SAMPLES] =
            u64::try_from(sample.as_nanos()).unwrap_or(u64::MAX);
        self.recent_len += 1;
        self.latest = Some(sample);
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn smooths_as_rfc_6298_and_keeps_the_recent_minimum() {
        let mut r = RttEstimator::default();
        assert_eq!(r.srtt(), None);
        r.update(Duration::from_millis(100));
        assert_eq!(r.srtt(), Some(Duration::from_millis(100)));
        assert_eq!(r.rttvar(), Duration::from_millis(50));
        r.update(Duration::from_millis(200));
        // srtt = 7/8 100 + 1/8 200; rttvar = 3/4 50 + 1/4 100.
        assert_eq!(r.srtt(), Some(Duration::from_micros(112_500)));
        assert_eq!(r.rttvar(), Duration::from_micros(62_500));
        assert_eq!(r.min_rtt(), Some(Duration::from_millis(100)));
        assert_eq!(r.latest(), Some(Duration::from_millis(200)));
        assert_eq!(r.recent_min(), None, "fewer than RECENT_SAMPLES samples");
        for i in 0..RECENT_SAMPLES as u64 {
            r.update(Duration::from_millis(300 + i));
        }
        assert_eq!(r.recent_min(), Some(Duration::from_millis(300)));
        assert_eq!(r.min_rtt(), Some(Duration::from_millis(100)));
        // The oldest sample leaves the window; sub-microsecond samples keep their value.
        r.update(Duration::from_nanos(301_000_123));
        assert_eq!(r.recent_min(), Some(Duration::from_nanos(301_000_000)));
        r.update(Duration::from_nanos(299_999_999));
        assert_eq!(r.recent_min(), Some(Duration::from_nanos(299_999_999)));
    }
}
