//! What waits to be requested, and the puller's clocks.
//!
//! State only: the behaviour that uses it is `request.rs`.

use super::config::PullerConfig;
use redgiant_base::Instant;
use std::collections::{HashMap, VecDeque};
use std::ops::Range;

/// Chunks and parity shards waiting to be requested.
pub(super) struct Requests {
    /// Lowest chunk index never requested.
    pub(super) next_new: u32,
    /// Lost chunks to request again, with their attempt number.
    pub(super) retransmit: VecDeque<(u32, u32)>,
    /// Parity entries to request.
    pub(super) parity_queue: VecDeque<u32>,
    /// Parity requests per block still queued or in flight.
    pub(super) parity_pending: HashMap<u32, u32>,
    /// Lost chunks waiting for their block's parity before being re-requested.
    pub(super) fec_wait: HashMap<u32, Vec<(u32, u32)>>,
    /// Whether new chunks come only from `assigned` (a puller one of several sources
    /// of a multi-source pull, see [`crate::multi`]) rather than from `next_new`.
    pub(super) scheduled: bool,
    /// Chunks assigned to this puller and not requested yet, in order.
    pub(super) assigned: VecDeque<Range<u32>>,
    /// The entries of the NAK being built and their attempt numbers: kept
    /// between NAKs so building one allocates nothing.
    pub(super) nak_scratch: (Vec<u32>, Vec<u32>),
}

impl Requests {
    /// The next assigned chunk, taken off the queue.
    pub(super) fn next_assigned(&mut self) -> Option<u32> {
        while let Some(r) = self.assigned.front_mut() {
            if let Some(i) = r.next() {
                return Some(i);
            }
            self.assigned.pop_front();
        }
        None
    }

    /// Chunks assigned and not requested yet.
    pub(super) fn assigned_len(&self) -> usize {
        self.assigned.iter().map(|r| r.len()).sum()
    }

    pub(super) fn new() -> Self {
        Requests {
            next_new: 0,
            retransmit: VecDeque::new(),
            parity_queue: VecDeque::new(),
            parity_pending: HashMap::new(),
            fec_wait: HashMap::new(),
            scheduled: false,
            assigned: VecDeque::new(),
            nak_scratch: (Vec::new(), Vec::new()),
        }
    }
}

/// The puller's clocks: handshake retries, progress, and the periodic packets.
pub(super) struct Timers {
    pub(super) started: Instant,
    pub(super) handshake_next: Instant,
    pub(super) handshake_tries: u32,
    pub(super) last_pull_request: Instant,
    pub(super) last_progress: Instant,
    pub(super) last_sent: Instant,
    pub(super) next_rate_report: Instant,
    pub(super) next_token_refresh: Instant,
    pub(super) want_pull_request: bool,
    pub(super) want_rate_report: bool,
    pub(super) want_keepalive: bool,
    /// When the Manifest was accepted, until the driver's next `handle_timeout`
    /// (due at once): no chunk is asked for before the driver has taken the
    /// Manifest event and handed over what it holds already (`resume_chunk`),
    /// whichever order it drains transmits and events in.
    pub(super) manifest_turn: Option<Instant>,
}

impl Timers {
    pub(super) fn new(cfg: &PullerConfig, now: Instant) -> Self {
        Timers {
            started: now,
            handshake_next: now,
            handshake_tries: 0,
            last_pull_request: now,
            last_progress: now,
            last_sent: now,
            next_rate_report: now + cfg.rate_report_interval,
            next_token_refresh: now + cfg.token_refresh,
            want_pull_request: true,
            want_rate_report: false,
            want_keepalive: false,
            manifest_turn: None,
        }
    }

    /// When to retry or give up the handshake.
    pub(super) fn handshake_deadline(&self, cfg: &PullerConfig) -> Instant {
        self.handshake_next
            .max(self.started)
            .min(self.started + cfg.handshake_timeout)
    }

    /// The earliest of the transfer's timers (loss detection aside).
    pub(super) fn transfer_deadline(&self, cfg: &PullerConfig, has_token: bool) -> Instant {
        let mut t = (self.last_progress + cfg.idle_timeout)
            .min(self.next_rate_report)
            .min(self.last_sent + cfg.keepalive_interval);
        if has_token {
            t = t.min(self.next_token_refresh);
        }
        if let Some(at) = self.manifest_turn {
            t = t.min(at);
        }
        t
    }

    /// Marks the periodic packets that are due in the transfer.
    pub(super) fn on_timeout(&mut self, now: Instant, cfg: &PullerConfig, has_token: bool) {
        if now >= self.next_rate_report {
            self.want_rate_report = true;
            self.next_rate_report = now + cfg.rate_report_interval;
        }
        if now.saturating_since(self.last_sent) >= cfg.keepalive_interval {
            self.want_keepalive = true;
        }
        if has_token && now >= self.next_token_refresh {
            self.want_pull_request = true;
            self.next_token_refresh = now + cfg.token_refresh;
        }
    }
}
