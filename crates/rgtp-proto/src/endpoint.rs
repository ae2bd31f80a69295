//! The [`Exposer`] and the [`Puller`] as endpoints of the stack's one
//! contract ([`redgiant_base::endpoint`]), so the one driver runs them.

use core::convert::Infallible;

use redgiant_base::{DatagramEndpoint, Endpoint, Instant, Peer, Transmit};

use crate::puller::Delivered;
use crate::{Exposer, Puller, PullerEvent, SuiteFactory};

impl Endpoint for Exposer {
    /// The exposer tells its application nothing: it serves.
    type Event = Infallible;
    type Delivery<'d> = Infallible;

    fn handle_timeout(&mut self, now: Instant) {
        Exposer::handle_timeout(self, now)
    }

    fn poll_transmit(&mut self, now: Instant, buf: &mut Vec<u8>) -> Option<Transmit> {
        Exposer::poll_transmit(self, now, buf)
    }

    fn poll_transmit_ref<'a>(
        &'a mut self,
        now: Instant,
        buf: &'a mut Vec<u8>,
    ) -> Option<(Transmit, &'a [u8])> {
        Exposer::poll_transmit_ref(self, now, buf)
    }

    fn poll_timeout(&self) -> Option<Instant> {
        Exposer::poll_timeout(self)
    }

    fn poll_event(&mut self) -> Option<Infallible> {
        None
    }
}

impl DatagramEndpoint for Exposer {
    fn handle_datagram(&mut self, now: Instant, from: Peer, data: &mut [u8]) -> Option<Infallible> {
        Exposer::handle_datagram(self, now, from, data);
        None
    }
}

impl<S: SuiteFactory> Endpoint for Puller<S> {
    type Event = PullerEvent;
    /// A verified chunk, decrypted in place in the receive buffer.
    type Delivery<'d> = Delivered<'d>;

    fn handle_timeout(&mut self, now: Instant) {
        Puller::handle_timeout(self, now)
    }

    fn poll_transmit(&mut self, now: Instant, buf: &mut Vec<u8>) -> Option<Transmit> {
        Puller::poll_transmit(self, now, buf)
    }

    fn poll_timeout(&self) -> Option<Instant> {
        Puller::poll_timeout(self)
    }

    fn poll_event(&mut self) -> Option<PullerEvent> {
        Puller::poll_event(self)
    }
}

impl<S: SuiteFactory> DatagramEndpoint for Puller<S> {
    fn handle_datagram<'d>(
        &mut self,
        now: Instant,
        from: Peer,
        data: &'d mut [u8],
    ) -> Option<Delivered<'d>> {
        Puller::handle_datagram(self, now, from, data)
    }
}
