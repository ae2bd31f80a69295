//! The endpoint contract: what every protocol state machine of the stack is.
//!
//! An endpoint is sans-IO. It never opens a socket, reads a clock, spawns a
//! thread or draws ambient randomness. A driver hands it input (datagrams or
//! stream bytes) and the current [`Instant`]; the endpoint answers with
//! [`Transmit`]s written into the driver's buffer, events for the
//! application, and the next deadline at which it wants
//! [`Endpoint::handle_timeout`] called.
//!
//! # Calling order
//!
//! After any `handle_*` call a driver calls, until each returns `None`:
//! 1. [`Endpoint::poll_transmit`] (or [`Endpoint::poll_transmit_ref`], which
//!    lets the endpoint hand out bytes it already holds), sending each transmit;
//! 2. [`Endpoint::poll_event`], acting on each event;
//!
//! and then [`Endpoint::poll_timeout`] to learn when to wake up. Calling
//! `handle_timeout` early, or more than once for one deadline, does nothing
//! harmful: endpoints check their own deadlines against `now`.
//!
//! Datagram protocols implement [`DatagramEndpoint`]; byte-stream protocols
//! (framing over TCP) implement [`StreamEndpoint`]. [`crate::driver`] runs
//! either over a link.

use crate::{Instant, Peer, Transmit};

/// The half of the contract every endpoint shares: timers, transmits, events.
pub trait Endpoint {
    /// What the endpoint tells its application.
    type Event;

    /// Data handed straight to the application from the input buffer, so a
    /// bulk protocol can decrypt in place and write without a copy. Endpoints
    /// with nothing of the kind use an uninhabited type or `()`.
    type Delivery<'d>;

    /// Time passed: fire whatever deadlines are due at `now`.
    fn handle_timeout(&mut self, now: Instant);

    /// The next batch to send, written into `buf` (cleared first), or `None`
    /// when there is nothing to send now.
    #[must_use]
    fn poll_transmit(&mut self, now: Instant, buf: &mut Vec<u8>) -> Option<Transmit>;

    /// As [`Endpoint::poll_transmit`], but the bytes may be handed out from the
    /// endpoint's own memory instead of being written into `buf`: an endpoint
    /// that keeps ready datagrams (an exposer's sealed store) sends them without
    /// a copy. Returns the transmit and its `size` bytes. The drivers call this
    /// one; by default it is [`Endpoint::poll_transmit`] into `buf`.
    #[must_use]
    fn poll_transmit_ref<'a>(
        &'a mut self,
        now: Instant,
        buf: &'a mut Vec<u8>,
    ) -> Option<(Transmit, &'a [u8])> {
        let t = self.poll_transmit(now, buf)?;
        Some((t, &buf[..t.size]))
    }

    /// When to call [`Endpoint::handle_timeout`] next; `None`: no timer.
    #[must_use]
    fn poll_timeout(&self) -> Option<Instant>;

    /// The next event for the application.
    #[must_use]
    fn poll_event(&mut self) -> Option<Self::Event>;
}

/// An endpoint fed datagrams.
pub trait DatagramEndpoint: Endpoint {
    /// A datagram from `from` arrived at `now`. The endpoint may transform
    /// `data` in place (decryption) and return a view of it.
    fn handle_datagram<'d>(
        &mut self,
        now: Instant,
        from: Peer,
        data: &'d mut [u8],
    ) -> Option<Self::Delivery<'d>>;
}

/// An endpoint fed an ordered byte stream (one connection).
pub trait StreamEndpoint: Endpoint {
    /// Bytes arrived, in order, after those already consumed. Returns how many
    /// it consumed; the driver offers the rest again, with more appended, on
    /// the next call (a decoder may wait for a whole header).
    fn handle_bytes(&mut self, now: Instant, data: &[u8]) -> usize;

    /// The peer closed its side (`error`: the connection broke instead).
    fn handle_close(&mut self, now: Instant, error: bool);

    /// True once the endpoint will send nothing more: after every transmit
    /// is written, the driver ends the stream towards the peer (TCP's FIN).
    fn poll_shutdown(&mut self) -> bool {
        false
    }
}
