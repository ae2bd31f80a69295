//! Many exposures behind one link: a [`Router`] hands each datagram to the exposer
//! of the Exposure_ID it names (spec §2.1: every packet carries it at offset 4) and
//! takes turns among them for what to send. It holds no protocol state of its own,
//! so each exposer keeps its own queue, budget and counters, and the bounds of one
//! exposer (the amplification limit above all) hold for each, and so for the sum.

use std::collections::HashMap;
use std::convert::Infallible;

use redgiant_base::{DatagramEndpoint, Endpoint};
use rgtp_proto::{Exposer, ExposerStats, Instant, Peer, Transmit};
use rgtp_wire::ExposureId;

/// Where the Exposure_ID sits in every RGTP packet.
const ID_AT: usize = 4;

/// Several exposers, one link.
#[derive(Default)]
pub struct Router {
    exposers: Vec<Exposer>,
    by_id: HashMap<ExposureId, usize>,
    /// Which exposer's queue to try first on the next `poll_transmit`.
    next: usize,
    /// Datagrams too short to name an exposure.
    malformed: u64,
    /// Datagrams naming an exposure none of the exposers holds.
    unknown: u64,
}

impl Router {
    /// No exposures yet.
    pub fn new() -> Self {
        Self::default()
    }

    /// Adds an exposer; one already serving the same Exposure_ID is kept instead
    /// (the same ID names the same content under one key). Returns its position.
    pub fn add(&mut self, exposer: Exposer) -> usize {
        let id = *exposer.exposure().id();
        if let Some(&i) = self.by_id.get(&id) {
            return i;
        }
        self.exposers.push(exposer);
        self.by_id.insert(id, self.exposers.len() - 1);
        self.exposers.len() - 1
    }

    /// The exposers, in the order added.
    pub fn exposers(&self) -> &[Exposer] {
        &self.exposers
    }

    /// Every exposer's counters summed, with the datagrams the router itself dropped
    /// (too short, or for no exposure here) under `malformed` and `unknown_exposure`.
    pub fn stats(&self) -> ExposerStats {
        let mut t = ExposerStats::default();
        for x in &self.exposers {
            t += x.stats();
        }
        t.malformed += self.malformed;
        t.unknown_exposure += self.unknown;
        t
    }

    /// Hands `data` to the exposer it names.
    pub fn handle_datagram(&mut self, now: Instant, from: Peer, data: &[u8]) {
        let Some(id) = data
            .get(ID_AT..ID_AT + 16)
            .and_then(|b| ExposureId::try_from(b).ok())
        else {
            self.malformed += 1;
            return;
        };
        match self.by_id.get(&id) {
            Some(&i) => self.exposers[i].handle_datagram(now, from, data),
            None => self.unknown += 1,
        }
    }

    /// The next batch from the exposers in turn, so that one busy exposure does not
    /// starve the others.
    pub fn poll_transmit(&mut self, now: Instant, buf: &mut Vec<u8>) -> Option<Transmit> {
        let n = self.exposers.len();
        for k in 0..n {
            let i = (self.next + k) % n;
            if let Some(t) = self.exposers[i].poll_transmit(now, buf) {
                self.next = (i + 1) % n;
                return Some(t);
            }
        }
        None
    }
}

impl Endpoint for Router {
    type Event = Infallible;
    type Delivery<'d> = Infallible;

    fn handle_timeout(&mut self, now: Instant) {
        for x in &mut self.exposers {
            x.handle_timeout(now);
        }
    }

    fn poll_transmit(&mut self, now: Instant, buf: &mut Vec<u8>) -> Option<Transmit> {
        Router::poll_transmit(self, now, buf)
    }

    fn poll_timeout(&self) -> Option<Instant> {
        self.exposers.iter().filter_map(|x| x.poll_timeout()).min()
    }

    fn poll_event(&mut self) -> Option<Infallible> {
        None
    }
}

impl DatagramEndpoint for Router {
    fn handle_datagram(&mut self, now: Instant, from: Peer, data: &mut [u8]) -> Option<Infallible> {
        Router::handle_datagram(self, now, from, data);
        None
    }
}
