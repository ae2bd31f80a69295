//! Protocol-neutral replay: the datagrams of a capture addressed to one
//! peer, handed to any [`DatagramEndpoint`] at their capture times.
//!
//! The endpoint sees what that peer's wire showed, in order; what it sends
//! in answer goes nowhere (it is counted), as nobody is there to answer
//! back. Use it to check what a fresh endpoint makes of a recorded
//! exchange: what it delivers, what it counts as malformed.

use redgiant_base::{DatagramEndpoint, Instant, Peer};

use crate::Capture;

/// What a [`replay_into`] did.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct ReplayStats {
    /// Datagrams handed to the endpoint.
    pub fed: u64,
    /// Datagrams of the capture addressed to someone else.
    pub skipped: u64,
    /// Records that held no datagram.
    pub unreadable: u64,
    /// Transmits the endpoint produced (discarded).
    pub transmits: u64,
}

/// Feeds every datagram of `capture` whose destination is `to` (as the
/// capture writes it, see [`crate::frame::recorded`]) to `endpoint` at its
/// capture time, firing due timers first and draining transmits and events
/// after each, as a driver does. `deliver` gets what the endpoint hands out,
/// `event` each event.
pub fn replay_into<E: DatagramEndpoint>(
    capture: &Capture,
    to: Peer,
    endpoint: &mut E,
    mut deliver: impl FnMut(E::Delivery<'_>),
    mut event: impl FnMut(E::Event),
) -> ReplayStats {
    let mut stats = ReplayStats::default();
    let mut buf = Vec::new();
    let mut data = Vec::new();
    let mut last = Instant::ZERO;
    for record in &capture.records {
        let Ok(d) = &record.content else {
            stats.unreadable += 1;
            continue;
        };
        if d.dst != to {
            stats.skipped += 1;
            continue;
        }
        // Capture times may step back; the endpoint's clock must not.
        let now = Instant::from_micros(record.ts_us).max(last);
        last = now;
        if endpoint.poll_timeout().is_some_and(|t| t <= now) {
            endpoint.handle_timeout(now);
        }
        data.clear();
        data.extend_from_slice(&d.payload);
        if let Some(out) = endpoint.handle_datagram(now, d.src, &mut data) {
            deliver(out);
        }
        stats.fed += 1;
        while endpoint.poll_transmit(now, &mut buf).is_some() {
            stats.transmits += 1;
        }
        while let Some(e) = endpoint.poll_event() {
            event(e);
        }
    }
    stats
}
