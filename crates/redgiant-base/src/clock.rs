//! Clocks: where a driver, and only a driver, gets `now`.
//!
//! Endpoints never read a clock; drivers and link middleware that need time
//! (an impairment's delay queue, a rate limiter) take a [`TimeSource`], so the
//! same code runs on the wall clock or on a clock a test or simulator moves.

use std::cell::Cell;
use std::rc::Rc;
use std::time::{SystemTime, UNIX_EPOCH};

use crate::Instant;

/// Something that tells the time.
pub trait TimeSource {
    /// The current instant.
    fn now(&self) -> Instant;
}

/// Wall-clock time as endpoints want it: microseconds since the Unix epoch,
/// advanced by a monotonic clock so it never goes backwards.
#[derive(Debug, Clone, Copy)]
pub struct SystemClock {
    origin_us: u64,
    start: std::time::Instant,
}

impl Default for SystemClock {
    fn default() -> Self {
        Self::new()
    }
}

impl SystemClock {
    /// Starts now.
    pub fn new() -> Self {
        let origin_us = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map_or(0, |d| d.as_micros() as u64);
        SystemClock {
            origin_us,
            start: std::time::Instant::now(),
        }
    }

    /// The current instant.
    pub fn now(&self) -> Instant {
        Instant::from_micros(self.origin_us + self.start.elapsed().as_micros() as u64)
    }
}

impl TimeSource for SystemClock {
    fn now(&self) -> Instant {
        SystemClock::now(self)
    }
}

/// A clock that moves only when told to: for tests and virtual time. Clones
/// share one time.
#[derive(Debug, Clone, Default)]
pub struct ManualClock {
    now: Rc<Cell<Instant>>,
}

impl ManualClock {
    /// A clock reading `start`.
    pub fn new(start: Instant) -> Self {
        ManualClock {
            now: Rc::new(Cell::new(start)),
        }
    }

    /// Sets the time (it may go backwards; callers decide).
    pub fn set(&self, now: Instant) {
        self.now.set(now);
    }

    /// Moves the time forward by `d`.
    pub fn advance(&self, d: core::time::Duration) {
        self.now.set(self.now.get() + d);
    }
}

impl TimeSource for ManualClock {
    fn now(&self) -> Instant {
        self.now.get()
    }
}

impl<T: TimeSource + ?Sized> TimeSource for &T {
    fn now(&self) -> Instant {
        (**self).now()
    }
}

impl<T: TimeSource + ?Sized> TimeSource for Box<T> {
    fn now(&self) -> Instant {
        (**self).now()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use core::time::Duration;

    #[test]
    fn system_clock_is_near_the_epoch_time_and_monotonic() {
        let c = SystemClock::new();
        let wall = SystemTime::now().duration_since(UNIX_EPOCH).unwrap();
        let a = c.now();
        let b = c.now();
        assert!(b >= a);
        let diff = (a.total_micros() as i128 - wall.as_micros() as i128).abs();
        assert!(diff < 5_000_000, "{diff} µs from the wall clock");
    }

    #[test]
    fn manual_clock_moves_only_when_told() {
        let c = ManualClock::new(Instant::from_millis(5));
        let shared = c.clone();
        assert_eq!(c.now(), Instant::from_millis(5));
        shared.advance(Duration::from_millis(3));
        assert_eq!(c.now(), Instant::from_millis(8));
        c.set(Instant::ZERO);
        assert_eq!(shared.now(), Instant::ZERO);
    }
}
