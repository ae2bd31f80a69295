//! A token bucket: the sans-IO pacer every protocol of the stack caps its rate with.
//!
//! Tokens are bytes. They accrue at `rate` bytes per second up to `burst`; sending
//! spends them. A send may overdraw the bucket (a datagram larger than what is left
//! still goes once any token is there), and the debt is repaid before the next one:
//! over any interval the bytes sent are at most `burst + rate × interval` plus one
//! datagram. Time comes from the caller, like everything in an endpoint; the bucket
//! says when it will next allow a send so the endpoint can report a deadline.

use core::time::Duration;

use crate::time::Instant;
use crate::{DatagramEndpoint, Endpoint, Peer, Transmit};

/// Microseconds in a second: tokens are kept in byte-microseconds per second.
const SCALE: i128 = 1_000_000;

/// A token bucket over [`Instant`]s.
#[derive(Debug, Clone)]
pub struct TokenBucket {
    rate: u64,
    burst: u64,
    /// Bytes × 1,000,000 (so that one microsecond at any rate is a whole number).
    tokens: i128,
    last: Instant,
}

impl TokenBucket {
    /// A full bucket of `burst` bytes filling at `rate` bytes per second (`rate` ≥ 1).
    pub fn new(rate: u64, burst: u64, now: Instant) -> Self {
        TokenBucket {
            rate: rate.max(1),
            burst,
            tokens: i128::from(burst) * SCALE,
            last: now,
        }
    }

    /// The rate, bytes per second.
    pub fn rate(&self) -> u64 {
        self.rate
    }

    /// The burst, bytes.
    pub fn burst(&self) -> u64 {
        self.burst
    }

    fn refill(&mut self, now: Instant) {
        if now <= self.last {
            return;
        }
        let us = i128::from(now.total_micros() - self.last.total_micros());
        self.tokens =
            (self.tokens + us * i128::from(self.rate)).min(i128::from(self.burst) * SCALE);
        self.last = now;
    }

    /// Whole bytes available at `now` (0 while in debt).
    pub fn available(&mut self, now: Instant) -> u64 {
        self.refill(now);
        u64::try_from((self.tokens / SCALE).max(0)).unwrap_or(u64::MAX)
    }

    /// How many sends of `unit` bytes may go at `now`: every whole `unit` available,
    /// or one if any token is there and `unit` is more than the burst holds.
    pub fn allowance(&mut self, now: Instant, unit: u64) -> u64 {
        let unit = unit.max(1);
        let have = self.available(now);
        if have >= unit {
            have / unit
        } else if self.tokens > 0 && unit > self.burst {
            1
        } else {
            0
        }
    }

    /// Spends `bytes` (going into debt if there are fewer).
    pub fn spend(&mut self, now: Instant, bytes: u64) {
        self.refill(now);
        self.tokens -= i128::from(bytes) * SCALE;
    }

    /// When [`TokenBucket::allowance`] for `unit` will first be non-zero (`now` if it is).
    pub fn ready_at(&mut self, now: Instant, unit: u64) -> Instant {
        self.refill(now);
        let need = i128::from(unit.max(1).min(self.burst.max(1))) * SCALE;
        // Overdrawing is allowed once any token is there: wait for more than zero.
        let need = if unit > self.burst { 1 } else { need };
        if self.tokens >= need {
            return now;
        }
        let missing = need - self.tokens;
        let rate = i128::from(self.rate);
        let us = (missing + rate - 1) / rate;
        now + Duration::from_micros(u64::try_from(us).unwrap_or(u64::MAX))
    }
}

/// Any endpoint with what it sends capped at a rate: its transmits go out while the
/// bucket holds a token, then wait for the next (the endpoint is asked for nothing
/// meanwhile, so what it would send stays queued inside it, as it is while a link
/// is busy). Everything else passes straight through.
#[derive(Debug)]
pub struct Paced<E> {
    inner: E,
    bucket: TokenBucket,
    wake: Option<Instant>,
}

impl<E> Paced<E> {
    /// `inner`, capped at `rate` bytes per second with bursts of `burst` bytes (one
    /// transmit may overdraw the bucket: make `burst` at least a batch of datagrams).
    pub fn new(inner: E, rate: u64, burst: u64, now: Instant) -> Self {
        Paced {
            inner,
            bucket: TokenBucket::new(rate, burst, now),
            wake: None,
        }
    }

    /// The endpoint.
    pub fn inner(&self) -> &E {
        &self.inner
    }

    /// The endpoint, to change.
    pub fn inner_mut(&mut self) -> &mut E {
        &mut self.inner
    }

    /// The cap, bytes per second.
    pub fn rate(&self) -> u64 {
        self.bucket.rate()
    }

    /// The endpoint, unwrapped.
    pub fn into_inner(self) -> E {
        self.inner
    }

    /// True if the bucket holds a token; otherwise notes when it will, to wake then.
    fn may_send(&mut self, now: Instant) -> bool {
        if self.bucket.allowance(now, 1) == 0 {
            self.wake = Some(self.bucket.ready_at(now, 1));
            return false;
        }
        true
    }
}

impl<E: Endpoint> Endpoint for Paced<E> {
    type Event = E::Event;
    type Delivery<'d> = E::Delivery<'d>;

    fn handle_timeout(&mut self, now: Instant) {
        if self.wake.is_some_and(|w| w <= now) {
            self.wake = None;
        }
        self.inner.handle_timeout(now);
    }

    fn poll_transmit(&mut self, now: Instant, buf: &mut Vec<u8>) -> Option<Transmit> {
        if !self.may_send(now) {
            return None;
        }
        let t = self.inner.poll_transmit(now, buf)?;
        self.bucket.spend(now, t.size as u64);
        Some(t)
    }

    fn poll_transmit_ref<'a>(
        &'a mut self,
        now: Instant,
        buf: &'a mut Vec<u8>,
    ) -> Option<(Transmit, &'a [u8])> {
        if !self.may_send(now) {
            return None;
        }
        let (t, bytes) = self.inner.poll_transmit_ref(now, buf)?;
        self.bucket.spend(now, t.size as u64);
        Some((t, bytes))
    }

    fn poll_timeout(&self) -> Option<Instant> {
        match (self.inner.poll_timeout(), self.wake) {
            (Some(a), Some(b)) => Some(a.min(b)),
            (a, b) => a.or(b),
        }
    }

    fn poll_event(&mut self) -> Option<E::Event> {
        self.inner.poll_event()
    }
}

impl<E: DatagramEndpoint> DatagramEndpoint for Paced<E> {
    fn handle_datagram<'d>(
        &mut self,
        now: Instant,
        from: Peer,
        data: &'d mut [u8],
    ) -> Option<E::Delivery<'d>> {
        self.inner.handle_datagram(now, from, data)
    }
}

/// Parses a rate into bytes per second: a plain number of bytes per second, or a
/// number with a unit — bytes `B/s`, `kB/s`, `MB/s`, `GB/s` (powers of 1000),
/// `KiB/s`, `MiB/s`, `GiB/s` (powers of 1024), or bits `bit/s`, `kbit/s`,
/// `Mbit/s`, `Gbit/s` (also `Mb/s`, `Mbps`). Decimals are allowed (`2.5MB/s`).
/// Zero and sub-byte rates are refused.
pub fn parse_rate(s: &str) -> Result<u64, String> {
    let t = s.trim();
    let split = t
        .find(|c: char| !(c.is_ascii_digit() || c == '.'))
        .unwrap_or(t.len());
    let (num, unit) = t.split_at(split);
    let n: f64 = num
        .parse()
        .map_err(|_| format!("rate {s:?}: expected a number, like 20MB/s or 160Mbit/s"))?;
    let unit = unit.trim();
    let unit = unit
        .strip_suffix("/s")
        .or_else(|| unit.strip_suffix("ps"))
        .unwrap_or(unit);
    let bytes_per: f64 = match unit {
        "" | "B" => 1.0,
        "k" | "kB" | "KB" => 1e3,
        "M" | "MB" => 1e6,
        "G" | "GB" => 1e9,
        "KiB" => 1024.0,
        "MiB" => 1024.0 * 1024.0,
        "GiB" => 1024.0 * 1024.0 * 1024.0,
        "b" | "bit" => 1.0 / 8.0,
        "kb" | "kbit" | "Kbit" => 1e3 / 8.0,
        "Mb" | "Mbit" => 1e6 / 8.0,
        "Gb" | "Gbit" => 1e9 / 8.0,
        u => {
            return Err(format!(
                "rate unit {u:?} in {s:?}: use B/s, kB/s, MB/s, GB/s, KiB/s, MiB/s, GiB/s, \
                 kbit/s, Mbit/s or Gbit/s"
            ))
        }
    };
    let v = n * bytes_per;
    if !v.is_finite() || v >= u64::MAX as f64 {
        return Err(format!("rate {s:?} is too large"));
    }
    if v < 1.0 {
        return Err(format!(
            "rate {s:?} is less than one byte per second (leave the cap out for no cap)"
        ));
    }
    Ok(v.round() as u64)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Sends a 1,000-byte datagram whenever asked.
    struct Firehose;

    impl Endpoint for Firehose {
        type Event = ();
        type Delivery<'d> = ();
        fn handle_timeout(&mut self, _: Instant) {}
        fn poll_transmit(&mut self, _: Instant, buf: &mut Vec<u8>) -> Option<Transmit> {
            buf.clear();
            buf.resize(1_000, 0xaa);
            Some(Transmit {
                destination: Peer::Mem(1),
                size: 1_000,
                segment_size: None,
            })
        }
        fn poll_timeout(&self) -> Option<Instant> {
            None
        }
        fn poll_event(&mut self) -> Option<()> {
            None
        }
    }

    #[test]
    fn a_paced_endpoint_sends_at_the_rate_and_says_when_it_may_send_again() {
        let mut p = Paced::new(Firehose, 100_000, 5_000, t(0));
        let mut buf = Vec::new();
        let mut sent = 0u64;
        let mut now = t(0);
        let end = t(2_000);
        while now < end {
            while let Some(tx) = p.poll_transmit(now, &mut buf) {
                sent += tx.size as u64;
            }
            let wake = p
                .poll_timeout()
                .expect("a paced endpoint waiting has a deadline");
            assert!(wake > now);
            now = wake;
            p.handle_timeout(now);
        }
        // Two seconds at 100 kB/s plus the first burst and one overdraw.
        assert!(sent <= 200_000 + 5_000 + 1_000, "{sent}");
        assert!(sent >= 195_000, "{sent}");
    }

    #[test]
    fn rates_parse_in_bytes_and_bits() {
        for (s, v) in [
            ("1000000", 1_000_000),
            ("20MB/s", 20_000_000),
            ("2.5MB/s", 2_500_000),
            ("160Mbit/s", 20_000_000),
            ("160Mbps", 20_000_000),
            ("160Mb/s", 20_000_000),
            ("1Gbit/s", 125_000_000),
            ("20MiB/s", 20 << 20),
            ("64 kB/s", 64_000),
            ("8bit/s", 1),
        ] {
            assert_eq!(parse_rate(s), Ok(v), "{s}");
        }
        for bad in ["", "fast", "20XB/s", "0", "1bit/s", "1e999MB/s", "-5MB/s"] {
            let e = parse_rate(bad).unwrap_err();
            assert!(e.contains("rate"), "{bad}: {e}");
        }
    }

    fn t(ms: u64) -> Instant {
        Instant::from_millis(1_000 + ms)
    }

    #[test]
    fn starts_full_refills_at_the_rate_and_caps_at_the_burst() {
        let mut b = TokenBucket::new(1_000_000, 10_000, t(0));
        assert_eq!(b.available(t(0)), 10_000);
        b.spend(t(0), 10_000);
        assert_eq!(b.available(t(0)), 0);
        assert_eq!(
            b.available(t(3)),
            3_000,
            "1 MB/s is 1,000 bytes a millisecond"
        );
        assert_eq!(b.available(t(1_000)), 10_000, "capped at the burst");
        // Time going backwards changes nothing.
        assert_eq!(b.available(t(500)), 10_000);
    }

    #[test]
    fn allowance_counts_whole_units_and_ready_at_says_when() {
        let mut b = TokenBucket::new(1_200_000, 12_000, t(0));
        assert_eq!(b.allowance(t(0), 1_200), 10);
        b.spend(t(0), 12_000);
        assert_eq!(b.allowance(t(0), 1_200), 0);
        assert_eq!(b.ready_at(t(0), 1_200), t(1));
        assert_eq!(b.allowance(t(1), 1_200), 1);
        assert_eq!(b.ready_at(t(1), 1_200), t(1));
    }

    #[test]
    fn a_unit_larger_than_the_burst_overdraws_then_repays() {
        let mut b = TokenBucket::new(1_000, 500, t(0));
        assert_eq!(b.allowance(t(0), 2_000), 1);
        b.spend(t(0), 2_000); // 1,500 in debt
        assert_eq!(b.allowance(t(0), 2_000), 0);
        // Debt repaid after 1.5 s, then any token lets the next one go.
        let ready = b.ready_at(t(0), 2_000);
        assert_eq!(ready, t(1_500) + Duration::from_micros(1));
        assert_eq!(b.allowance(t(1_400), 2_000), 0);
        assert_eq!(b.allowance(ready, 2_000), 1);
    }

    #[test]
    fn over_a_long_run_the_bytes_sent_never_exceed_burst_plus_rate_times_time() {
        // Greedy sender of 1,200-byte datagrams at 2 MB/s, polled every 250 µs.
        let (rate, burst, unit) = (2_000_000u64, 24_000u64, 1_200u64);
        let mut b = TokenBucket::new(rate, burst, t(0));
        let mut sent = 0u64;
        for step in 0..40_000u64 {
            let now = t(0) + Duration::from_micros(step * 250);
            let n = b.allowance(now, unit);
            b.spend(now, n * unit);
            sent += n * unit;
            let elapsed = now.saturating_since(t(0)).as_micros() as u64;
            assert!(
                sent <= burst + rate * elapsed / 1_000_000 + unit,
                "step {step}"
            );
        }
        // And the cap is met, not undershot: 10 s at 2 MB/s.
        let expected = burst + rate * 10 - 2 * unit;
        assert!(sent >= expected, "{sent} < {expected}");
    }
}
