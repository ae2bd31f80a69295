//! A fixed-size latency summary: count, min, max, mean, jitter and a
//! log-linear histogram for percentiles. Constant memory, no allocation.

/// Sub-buckets per power of two (relative error of a percentile ≤ 1/16).
const SUB: usize = 16;
/// Powers of two covered: 1 µs … 2^31 µs.
const OCTAVES: usize = 32;

/// Summary of latency samples in microseconds.
#[derive(Debug, Clone, PartialEq)]
pub struct Latency {
    count: u64,
    min: u64,
    max: u64,
    sum: u128,
    jitter: f64,
    last: Option<u64>,
    buckets: [u32; SUB * OCTAVES],
}

impl Default for Latency {
    fn default() -> Self {
        Latency {
            count: 0,
            min: 0,
            max: 0,
            sum: 0,
            jitter: 0.0,
            last: None,
            buckets: [0; SUB * OCTAVES],
        }
    }
}

fn bucket(us: u64) -> usize {
    if us < SUB as u64 {
        return us as usize;
    }
    let octave = 63 - us.leading_zeros() as usize; // ≥ 4
    let sub = ((us >> (octave - 4)) & (SUB as u64 - 1)) as usize;
    ((octave - 3) * SUB + sub).min(SUB * OCTAVES - 1)
}

fn bucket_floor(b: usize) -> u64 {
    if b < SUB {
        return b as u64;
    }
    let octave = b / SUB + 3;
    let sub = (b % SUB) as u64;
    (SUB as u64 + sub) << (octave - 4)
}

impl Latency {
    /// Records one sample.
    pub fn record(&mut self, us: u64) {
        if self.count == 0 {
            self.min = us;
            self.max = us;
        } else {
            self.min = self.min.min(us);
            self.max = self.max.max(us);
        }
        self.count += 1;
        self.sum += u128::from(us);
        // RFC 3550-style interarrival jitter over consecutive samples.
        if let Some(last) = self.last {
            let d = us.abs_diff(last) as f64;
            self.jitter += (d - self.jitter) / 16.0;
        }
        self.last = Some(us);
        let b = bucket(us);
        self.buckets[b] = self.buckets[b].saturating_add(1);
    }

    /// Samples recorded.
    pub fn count(&self) -> u64 {
        self.count
    }

    /// Smallest sample (0 when empty).
    pub fn min(&self) -> u64 {
        self.min
    }

    /// Largest sample (0 when empty).
    pub fn max(&self) -> u64 {
        self.max
    }

    /// Mean (0 when empty).
    pub fn mean(&self) -> u64 {
        if self.count == 0 {
            0
        } else {
            (self.sum / u128::from(self.count)) as u64
        }
    }

    /// Smoothed variation between consecutive samples.
    pub fn jitter(&self) -> u64 {
        self.jitter.round() as u64
    }

    /// The `q`-quantile (0 < q ≤ 1), accurate to the bucket width, clamped to [min, max].
    pub fn quantile(&self, q: f64) -> u64 {
        if self.count == 0 {
            return 0;
        }
        let rank = ((q.clamp(0.0, 1.0) * self.count as f64).ceil() as u64).max(1);
        let mut seen = 0u64;
        for (b, &n) in self.buckets.iter().enumerate() {
            seen += u64::from(n);
            if seen >= rank {
                return bucket_floor(b).clamp(self.min, self.max);
            }
        }
        self.max
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn summary_of_known_samples() {
        let mut l = Latency::default();
        assert_eq!(
            (l.count(), l.min(), l.max(), l.mean(), l.quantile(0.99)),
            (0, 0, 0, 0, 0)
        );
        for us in 1..=1000u64 {
            l.record(us);
        }
        assert_eq!(
            (l.count(), l.min(), l.max(), l.mean()),
            (1000, 1, 1000, 500)
        );
        let p99 = l.quantile(0.99);
        assert!((990 * 15 / 16..=990).contains(&p99), "p99 {p99}");
        assert!(
            l.jitter() >= 1 && l.jitter() <= 2,
            "steady +1 steps: jitter {}",
            l.jitter()
        );
    }

    #[test]
    fn buckets_are_monotonic_and_cover_the_range() {
        let mut prev = 0;
        for us in [
            0u64,
            1,
            15,
            16,
            17,
            31,
            32,
            100,
            1_000,
            65_535,
            1 << 30,
            u64::MAX,
        ] {
            let b = bucket(us);
            assert!(b >= prev);
            assert!(bucket_floor(b) <= us);
            prev = b;
        }
    }
}
