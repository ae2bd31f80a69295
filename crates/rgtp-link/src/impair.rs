//! A seeded impairment model: loss (uniform and Gilbert–Elliott bursts), delay,
//! jitter, reordering, duplication, corruption, and a rate-limited drop-tail queue.
//!
//! [`Impairment`] is pure: it reads no clock, spawns no thread and draws no
//! ambient randomness. Time is handed in as an [`Instant`], and every random
//! decision comes from a [`ChaCha8Rng`] seeded by the caller, so the same seed
//! and the same inputs always give the same deliveries.
//!
//! Each datagram goes through these stages, in this order:
//!
//! 1. the bottleneck queue (only with a rate limit or a delivery trace): the
//!    datagram waits behind the bytes already queued and takes `len / rate` to
//!    serialise, or leaves in the trace's delivery opportunities
//!    ([`crate::trace`]); if the queue would exceed
//!    [`ImpairmentConfig::queue_limit_bytes`] it is dropped (drop-tail, counted
//!    in [`ImpairmentStats::rate_dropped`]);
//! 2. loss: uniform, or Gilbert–Elliott when a burst model is set;
//! 3. corruption: one random bit flipped;
//! 4. propagation: `delay` plus uniform jitter in `[0, jitter]`. Jitter alone
//!    never reorders (a datagram is never delivered before an earlier one);
//!    reordering comes only from the `reorder` probability, which holds a
//!    datagram back by an extra [`ImpairmentConfig::reorder_delay`] so later
//!    ones overtake it;
//! 5. duplication: a second copy delivered at the same time, after the first.

use std::time::Duration;

use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;
use redgiant_base::Instant;

use crate::trace::{DeliveryTrace, TraceQueue};

/// What an impaired link does to datagrams. [`Default`] is a perfect link.
///
/// Probabilities outside `[0, 1]` behave as if clamped (NaN as 0).
#[derive(Debug, Clone, PartialEq)]
pub struct ImpairmentConfig {
    /// Probability that a datagram is lost (in the good state when a burst model is set).
    pub loss: f64,
    /// Gilbert–Elliott burst loss: `(p(good→bad), p(bad→good), loss in bad)`.
    /// In the good state the loss probability is [`loss`](Self::loss).
    pub burst_loss: Option<(f64, f64, f64)>,
    /// Fixed one-way delay.
    pub delay: Duration,
    /// Extra delay drawn uniformly from `[0, jitter]` per datagram (never reorders).
    pub jitter: Duration,
    /// Probability that a datagram is held back by [`reorder_delay`](Self::reorder_delay)
    /// so that later datagrams overtake it.
    pub reorder: f64,
    /// How long a reordered datagram is held back.
    pub reorder_delay: Duration,
    /// Probability that a datagram is delivered twice.
    pub duplicate: f64,
    /// Probability that one random bit of a datagram is flipped.
    pub corrupt: f64,
    /// Bottleneck rate in bytes per second (`None`: unlimited; `Some(0)`: nothing passes).
    pub rate_limit: Option<u64>,
    /// Bytes the bottleneck queue holds before it drops (only with a rate limit
    /// or a delivery trace).
    pub queue_limit_bytes: usize,
    /// A trace-driven bottleneck: datagrams leave in the trace's delivery
    /// opportunities. Takes the place of [`rate_limit`](Self::rate_limit) when set.
    pub delivery_trace: Option<DeliveryTrace>,
}

impl Default for ImpairmentConfig {
    fn default() -> Self {
        Self::perfect()
    }
}

impl ImpairmentConfig {
    /// A perfect link: no loss, no delay, unlimited rate.
    pub const fn perfect() -> Self {
        ImpairmentConfig {
            loss: 0.0,
            burst_loss: None,
            delay: Duration::ZERO,
            jitter: Duration::ZERO,
            reorder: 0.0,
            reorder_delay: Duration::from_millis(1),
            duplicate: 0.0,
            corrupt: 0.0,
            rate_limit: None,
            queue_limit_bytes: 1 << 20,
            delivery_trace: None,
        }
    }

    /// Sets the uniform loss probability.
    pub fn with_loss(mut self, p: f64) -> Self {
        self.loss = p;
        self
    }

    /// Sets Gilbert–Elliott burst loss.
    pub fn with_burst_loss(
        mut self,
        p_good_to_bad: f64,
        p_bad_to_good: f64,
        loss_in_bad: f64,
    ) -> Self {
        self.burst_loss = Some((p_good_to_bad, p_bad_to_good, loss_in_bad));
        self
    }

    /// Sets the fixed one-way delay.
    pub fn with_delay(mut self, delay: Duration) -> Self {
        self.delay = delay;
        self
    }

    /// Sets the jitter bound.
    pub fn with_jitter(mut self, jitter: Duration) -> Self {
        self.jitter = jitter;
        self
    }

    /// Sets the reordering probability.
    pub fn with_reorder(mut self, p: f64) -> Self {
        self.reorder = p;
        self
    }

    /// Sets how long a reordered datagram is held back.
    pub fn with_reorder_delay(mut self, d: Duration) -> Self {
        self.reorder_delay = d;
        self
    }

    /// Sets the duplication probability.
    pub fn with_duplicate(mut self, p: f64) -> Self {
        self.duplicate = p;
        self
    }

    /// Sets the corruption probability.
    pub fn with_corrupt(mut self, p: f64) -> Self {
        self.corrupt = p;
        self
    }

    /// Sets the bottleneck rate in bytes per second.
    pub fn with_rate_limit(mut self, bytes_per_second: u64) -> Self {
        self.rate_limit = Some(bytes_per_second);
        self
    }

    /// Sends datagrams through a trace-driven bottleneck instead of a fixed rate.
    pub fn with_delivery_trace(mut self, trace: DeliveryTrace) -> Self {
        self.delivery_trace = Some(trace);
        self
    }

    /// Sets the bottleneck queue size in bytes.
    pub fn with_queue_limit(mut self, bytes: usize) -> Self {
        self.queue_limit_bytes = bytes;
        self
    }

    /// Whether every datagram passes unchanged and at once.
    pub fn is_perfect(&self) -> bool {
        !positive(self.loss)
            && !matches!(self.burst_loss, Some((g2b, _, lb)) if positive(g2b) && positive(lb))
            && self.delay.is_zero()
            && self.jitter.is_zero()
            && !positive(self.reorder)
            && !positive(self.duplicate)
            && !positive(self.corrupt)
            && self.rate_limit.is_none()
            && self.delivery_trace.is_none()
    }
}

/// What an [`Impairment`] did so far.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct ImpairmentStats {
    /// Datagrams handed to [`Impairment::process`].
    pub processed: u64,
    /// Datagrams lost (uniform or burst loss).
    pub dropped: u64,
    /// Datagrams delivered twice.
    pub duplicated: u64,
    /// Datagrams with a bit flipped.
    pub corrupted: u64,
    /// Datagrams held back so later ones overtake them.
    pub reordered: u64,
    /// Datagrams dropped because the bottleneck queue was full.
    pub rate_dropped: u64,
}

/// A seeded impairment: see the [module docs](self) for the model.
#[derive(Debug, Clone)]
pub struct Impairment {
    config: ImpairmentConfig,
    rng: ChaCha8Rng,
    /// Gilbert–Elliott state.
    bad: bool,
    /// When the bottleneck finishes sending what is queued, in nanoseconds.
    busy_until_ns: u64,
    /// The queue of a trace-driven bottleneck.
    trace_queue: TraceQueue,
    /// Latest delivery time of a datagram that was not held back.
    last_in_order: Instant,
    stats: ImpairmentStats,
}

impl Impairment {
    /// A new impairment with its own random stream.
    pub fn new(config: ImpairmentConfig, seed: u64) -> Self {
        Impairment {
            config,
            rng: ChaCha8Rng::seed_from_u64(seed),
            bad: false,
            busy_until_ns: 0,
            trace_queue: TraceQueue::default(),
            last_in_order: Instant::ZERO,
            stats: ImpairmentStats::default(),
        }
    }

    /// The configuration.
    pub fn config(&self) -> &ImpairmentConfig {
        &self.config
    }

    /// Counters so far.
    pub fn stats(&self) -> ImpairmentStats {
        self.stats
    }

    /// Runs one datagram sent at `now` through the model, appending zero, one or
    /// two deliveries (time, bytes) to `out`. Delivery times are never before `now`.
    pub fn process(&mut self, now: Instant, datagram: &[u8], out: &mut Vec<(Instant, Vec<u8>)>) {
        self.stats.processed += 1;

        // 1. Bottleneck queue.
        let departure = if let Some(trace) = &self.config.delivery_trace {
            self.trace_queue
                .enqueue(trace, now, datagram.len(), self.config.queue_limit_bytes)
        } else {
            match self.config.rate_limit {
                None => Some(now),
                Some(rate) => self.enqueue(now, datagram.len(), rate),
            }
        };
        let Some(departure) = departure else {
            self.stats.rate_dropped += 1;
            return;
        };

        // 2. Loss.
        if self.lose() {
            self.stats.dropped += 1;
            return;
        }

        // 3. Corruption.
        let mut bytes = datagram.to_vec();
        if chance(&mut self.rng, self.config.corrupt) && !bytes.is_empty() {
            let bit = self.rng.gen_range(0..bytes.len() * 8);
            bytes[bit / 8] ^= 1 << (bit % 8);
            self.stats.corrupted += 1;
        }

        // 4. Propagation.
        let mut at = departure + self.config.delay;
        if !self.config.jitter.is_zero() {
            let jitter_us = self.config.jitter.as_micros().min(u64::MAX as u128) as u64;
            at = at + Duration::from_micros(self.rng.gen_range(0..=jitter_us));
        }
        if chance(&mut self.rng, self.config.reorder) {
            at = at + self.config.reorder_delay;
            self.stats.reordered += 1;
        } else {
            at = at.max(self.last_in_order);
            self.last_in_order = at;
        }

        // 5. Duplication.
        if chance(&mut self.rng, self.config.duplicate) {
            self.stats.duplicated += 1;
            out.push((at, bytes.clone()));
        }
        out.push((at, bytes));
    }

    /// Queues `len` bytes behind the bottleneck; returns when they finish
    /// serialising, or `None` when the queue is full.
    fn enqueue(&mut self, now: Instant, len: usize, rate: u64) -> Option<Instant> {
        if rate == 0 {
            return None;
        }
        let now_ns = now.total_micros().saturating_mul(1000);
        let start_ns = self.busy_until_ns.max(now_ns);
        // Bytes still queued at `now`, rounded up.
        let backlog = ((start_ns - now_ns) as u128 * rate as u128).div_ceil(1_000_000_000);
        if backlog + len as u128 > self.config.queue_limit_bytes as u128 {
            return None;
        }
        let serialise_ns = (len as u128 * 1_000_000_000).div_ceil(rate as u128);
        let finish_ns = (start_ns as u128 + serialise_ns).min(u64::MAX as u128) as u64;
        self.busy_until_ns = finish_ns;
        Some(Instant::from_micros(finish_ns.div_ceil(1000)))
    }

    /// Whether the next datagram is lost, stepping the burst model.
    fn lose(&mut self) -> bool {
        let Some((g2b, b2g, loss_bad)) = self.config.burst_loss else {
            return chance(&mut self.rng, self.config.loss);
        };
        let flip = if self.bad { b2g } else { g2b };
        if chance(&mut self.rng, flip) {
            self.bad = !self.bad;
        }
        let p = if self.bad { loss_bad } else { self.config.loss };
        chance(&mut self.rng, p)
    }
}

/// True with probability `p`, clamped to `[0, 1]` (NaN: never). Draws only when `p > 0`.
fn chance(rng: &mut ChaCha8Rng, p: f64) -> bool {
    positive(p) && rng.gen::<f64>() < p
}

/// `p > 0` (false for NaN).
fn positive(p: f64) -> bool {
    p > 0.0
}

#[cfg(test)]
mod tests {
    use super::*;

    fn run(
        config: &ImpairmentConfig,
        seed: u64,
        n: usize,
        gap: Duration,
    ) -> Vec<(Instant, Vec<u8>)> {
        let mut imp = Impairment::new(config.clone(), seed);
        let mut out = Vec::new();
        for i in 0..n {
            let now = Instant::ZERO + gap * i as u32;
            imp.process(now, &(i as u32).to_be_bytes(), &mut out);
        }
        out
    }

    fn everything() -> ImpairmentConfig {
        ImpairmentConfig::default()
            .with_loss(0.05)
            .with_delay(Duration::from_millis(10))
            .with_jitter(Duration::from_millis(3))
            .with_reorder(0.05)
            .with_duplicate(0.05)
            .with_corrupt(0.05)
            .with_rate_limit(1_000_000)
            .with_queue_limit(2_000)
    }

    #[test]
    fn test_perfect() {
        let config = ImpairmentConfig::default();
        assert!(config.is_perfect());
        assert!(!everything().is_perfect());
        let out = run(&config, 1, 100, Duration::from_micros(7));
        assert_eq!(out.len(), 100);
        for (i, (at, bytes)) in out.iter().enumerate() {
            assert_eq!(*at, Instant::ZERO + Duration::from_micros(7) * i as u32);
            assert_eq!(bytes, &(i as u32).to_be_bytes());
        }
    }

    #[test]
    fn test_determinism() {
        let config = everything();
        let a = run(&config, 42, 10_000, Duration::from_micros(50));
        let b = run(&config, 42, 10_000, Duration::from_micros(50));
        assert_eq!(a, b);
        let c = run(&config, 43, 10_000, Duration::from_micros(50));
        assert_ne!(a, c);
    }

    #[test]
    fn test_loss_rate() {
        const N: usize = 100_000;
        for p in [0.01, 0.10, 0.30] {
            let mut imp = Impairment::new(ImpairmentConfig::default().with_loss(p), 7);
            let mut out = Vec::new();
            for _ in 0..N {
                imp.process(Instant::ZERO, b"x", &mut out);
            }
            let lost = (N - out.len()) as f64 / N as f64;
            assert_eq!(imp.stats().dropped as usize, N - out.len());
            // Binomial standard deviation is at most 0.0015 here; allow ~5 sigma.
            let sigma = (p * (1.0 - p) / N as f64).sqrt();
            assert!((lost - p).abs() < 5.0 * sigma, "p={p}: lost {lost}");
        }
    }

    #[test]
    fn test_duplicate() {
        const N: usize = 10_000;
        let mut imp = Impairment::new(ImpairmentConfig::default().with_duplicate(0.2), 3);
        let mut out = Vec::new();
        for i in 0..N {
            let before = out.len();
            imp.process(
                Instant::from_micros(i as u64),
                &(i as u32).to_be_bytes(),
                &mut out,
            );
            let got = &out[before..];
            assert!(got.len() == 1 || got.len() == 2);
            if got.len() == 2 {
                assert_eq!(got[0], got[1]);
            }
        }
        let dup = imp.stats().duplicated as usize;
        assert_eq!(out.len(), N + dup);
        assert!((1700..2300).contains(&dup), "{dup}");
    }

    #[test]
    fn test_corrupt_flips_one_bit() {
        const N: usize = 10_000;
        let mut imp = Impairment::new(ImpairmentConfig::default().with_corrupt(0.5), 9);
        let mut out = Vec::new();
        let mut corrupted = 0;
        for i in 0..N {
            let original: Vec<u8> = (0..100).map(|j| (i + j) as u8).collect();
            out.clear();
            imp.process(Instant::ZERO, &original, &mut out);
            assert_eq!(out.len(), 1);
            let flipped: u32 = original
                .iter()
                .zip(&out[0].1)
                .map(|(a, b)| (a ^ b).count_ones())
                .sum();
            assert!(flipped <= 1);
            corrupted += flipped as u64;
        }
        assert_eq!(corrupted, imp.stats().corrupted);
        assert!((4500..5500).contains(&corrupted), "{corrupted}");
        // An empty datagram has no bit to flip.
        out.clear();
        imp.process(Instant::ZERO, &[], &mut out);
        assert_eq!(out[0].1, Vec::<u8>::new());
    }

    #[test]
    fn test_reorder() {
        let config = ImpairmentConfig::default()
            .with_delay(Duration::from_millis(5))
            .with_jitter(Duration::from_millis(2))
            .with_reorder(0.1);
        let out = run(&config, 11, 1_000, Duration::from_micros(100));
        assert_eq!(out.len(), 1_000);
        // Sort by delivery time (stable: ties keep send order) and count inversions.
        let mut order: Vec<(Instant, u32)> = out
            .iter()
            .map(|(at, b)| (*at, u32::from_be_bytes(b[..4].try_into().unwrap())))
            .collect();
        order.sort_by_key(|&(at, _)| at);
        let overtaken = order.windows(2).filter(|w| w[0].1 > w[1].1).count();
        assert!(overtaken > 50, "{overtaken}");

        // Jitter alone never reorders.
        let config = ImpairmentConfig::default().with_jitter(Duration::from_millis(2));
        let out = run(&config, 11, 1_000, Duration::from_micros(100));
        assert!(out.windows(2).all(|w| w[0].0 <= w[1].0));
    }

    #[test]
    fn test_rate_limit() {
        // 1 MB/s: a 1000-byte datagram takes 1 ms to serialise.
        let config = ImpairmentConfig::default()
            .with_rate_limit(1_000_000)
            .with_queue_limit(10_000);
        let mut imp = Impairment::new(config, 5);
        let mut out = Vec::new();
        for _ in 0..20 {
            imp.process(Instant::ZERO, &[0; 1000], &mut out);
        }
        // Ten fit in the queue; the rest are dropped.
        assert_eq!(out.len(), 10);
        assert_eq!(imp.stats().rate_dropped, 10);
        for (i, (at, _)) in out.iter().enumerate() {
            assert_eq!(*at, Instant::from_millis(i as u64 + 1));
        }
        // Once the queue drains, datagrams pass again.
        out.clear();
        imp.process(Instant::from_millis(100), &[0; 1000], &mut out);
        assert_eq!(out, vec![(Instant::from_millis(101), vec![0; 1000])]);

        let mut imp = Impairment::new(ImpairmentConfig::default().with_rate_limit(0), 5);
        imp.process(Instant::ZERO, b"x", &mut out);
        assert_eq!(imp.stats().rate_dropped, 1);
    }

    #[test]
    fn test_delivery_trace() {
        // One opportunity every 2 ms (6 Mbit/s), 5 ms of propagation, a 4500-byte queue.
        let trace = DeliveryTrace::parse("2\n").unwrap();
        let config = ImpairmentConfig::default()
            .with_delivery_trace(trace)
            .with_rate_limit(1) // ignored: the trace takes its place
            .with_delay(Duration::from_millis(5))
            .with_queue_limit(4_500);
        assert!(!config.is_perfect());
        let mut imp = Impairment::new(config, 5);
        let mut out = Vec::new();
        for _ in 0..5 {
            imp.process(Instant::ZERO, &[1; 1500], &mut out);
        }
        let at: Vec<Instant> = out.iter().map(|(at, _)| *at).collect();
        assert_eq!(
            at,
            vec![
                Instant::from_millis(7),
                Instant::from_millis(9),
                Instant::from_millis(11)
            ]
        );
        assert_eq!(imp.stats().rate_dropped, 2);
    }

    #[test]
    fn test_burst_loss() {
        const N: usize = 100_000;
        // Mean bad run 10 datagrams, all lost; good state lossless.
        let config = ImpairmentConfig::default().with_burst_loss(0.01, 0.1, 1.0);
        let mut imp = Impairment::new(config, 13);
        let mut lost = Vec::with_capacity(N);
        let mut out = Vec::new();
        for _ in 0..N {
            out.clear();
            imp.process(Instant::ZERO, b"x", &mut out);
            lost.push(out.is_empty());
        }
        let losses = lost.iter().filter(|&&l| l).count();
        let runs = lost.windows(2).filter(|w| !w[0] && w[1]).count().max(1);
        let mean_run = losses as f64 / runs as f64;
        // Stationary loss is 0.01 / 0.11 ≈ 9%; uniform loss at 9% has mean run ≈ 1.1.
        assert!(
            (0.06..0.12).contains(&(losses as f64 / N as f64)),
            "{losses}"
        );
        assert!(mean_run > 5.0, "{mean_run}");
    }
}
