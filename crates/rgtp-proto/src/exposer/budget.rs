//! What an exposer may spend, and how hard it is being pulled.
//!
//! An address is validated by the token it echoes (spec §5.3). A request from
//! an address not yet validated gets a budget of `amplification_limit` times
//! its own length (spec §5.2): every datagram of the answer is charged to it,
//! and what does not fit is dropped and counted, never sent. Pull pressure
//! counts requests per 100 ms window, the current one and the last.

use core::time::Duration;

use redgiant_base::Instant;

/// Length of one pull-pressure window, µs.
const PRESSURE_WINDOW_US: u64 = 100_000;

/// Requests seen in the current and the previous 100 ms window.
#[derive(Debug)]
pub(super) struct Pressure {
    start: Instant,
    current: u32,
    previous: u32,
}

impl Pressure {
    pub(super) fn new() -> Self {
        Pressure {
            start: Instant::ZERO,
            current: 0,
            previous: 0,
        }
    }

    /// Counts one request at `now`.
    pub(super) fn note(&mut self, now: Instant) {
        let elapsed = now.total_micros().saturating_sub(self.start.total_micros());
        if elapsed >= 2 * PRESSURE_WINDOW_US {
            self.previous = 0;
            self.current = 0;
            self.start = now;
        } else if elapsed >= PRESSURE_WINDOW_US {
            self.previous = self.current;
            self.current = 0;
            self.start = self.start + Duration::from_micros(PRESSURE_WINDOW_US);
        }
        self.current += 1;
    }

    /// The busier of the two windows.
    pub(super) fn get(&self) -> u32 {
        self.current.max(self.previous)
    }
}

/// The byte budget for answering a request of `request_len` bytes: `None` (unbounded)
/// when the address is validated or the configuration waives the check.
pub(super) fn amplification_budget(
    limit: usize,
    serve_unvalidated: bool,
    unvalidated_bytes_in: &mut u64,
    validated: bool,
    request_len: usize,
) -> Option<usize> {
    if validated || serve_unvalidated {
        None
    } else {
        *unvalidated_bytes_in += request_len as u64;
        Some(request_len.saturating_mul(limit))
    }
}
