//! The rate cap: a token bucket over the bytes the puller asks for.
//!
//! A puller drives the transfer, so capping what it requests caps what it
//! receives, with any exposer. Each requested entry (chunk or parity shard)
//! costs one chunk's bytes; the bucket holds a few milliseconds' worth.

use redgiant_base::{Instant, TokenBucket};

/// The bucket, once the chunk size is known, and when it will next allow a request.
#[derive(Debug, Default)]
pub(super) struct Pacing {
    bucket: Option<(TokenBucket, u64)>,
    wake: Option<Instant>,
}

impl Pacing {
    /// Caps requests at `rate` bytes per second of `unit`-byte entries (no cap: `None`).
    pub(super) fn start(&mut self, rate: Option<u64>, unit: u64, now: Instant) {
        self.bucket = rate.map(|rate| {
            // 5 ms at the rate, and never less than four entries.
            let burst = (rate / 200).max(4 * unit);
            (TokenBucket::new(rate, burst, now), unit.max(1))
        });
    }

    /// How many of `room` entries may be requested at `now`.
    pub(super) fn clip(&mut self, now: Instant, room: usize) -> usize {
        match &mut self.bucket {
            None => room,
            Some((b, unit)) => {
                let n = usize::try_from(b.allowance(now, *unit)).unwrap_or(usize::MAX);
                if n == 0 {
                    self.wake = Some(b.ready_at(now, *unit));
                }
                n.min(room)
            }
        }
    }

    /// `n` entries were requested at `now`.
    pub(super) fn spend(&mut self, now: Instant, n: usize) {
        if let Some((b, unit)) = &mut self.bucket {
            b.spend(now, *unit * n as u64);
            self.wake = (b.allowance(now, *unit) == 0).then(|| b.ready_at(now, *unit));
        }
    }

    /// When the bucket next allows a request, if it is what holds requests back.
    pub(super) fn wake(&self) -> Option<Instant> {
        self.wake
    }

    /// Forgets a wake-up time that has come: the next request decides afresh.
    pub(super) fn expire(&mut self, now: Instant) {
        if self.wake.is_some_and(|w| w <= now) {
            self.wake = None;
        }
    }
}
