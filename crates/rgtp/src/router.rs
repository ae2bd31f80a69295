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

    /// As [`Router::poll_transmit`], but a batch an exposer holds ready in its store
    /// is handed out from there, not copied ([`Exposer::poll_transmit_ref`]).
    pub fn poll_transmit_ref<'a>(
        &'a mut self,
        now: Instant,
        buf: &'a mut Vec<u8>,
    ) -> Option<(Transmit, &'a [u8])> {
        let n = self.exposers.len();
        for k in 0..n {
            let i = (self.next + k) % n;
            if let Some((t, stored)) = self.exposers[i].poll_transmit_stored(now, buf) {
                self.next = (i + 1) % n;
                let bytes = match stored {
                    Some(range) => &self.exposers[i].exposure().store_bytes()[range],
                    None => &buf[..t.size],
                };
                return Some((t, bytes));
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

    fn poll_transmit_ref<'a>(
        &'a mut self,
        now: Instant,
        buf: &'a mut Vec<u8>,
    ) -> Option<(Transmit, &'a [u8])> {
        Router::poll_transmit_ref(self, now, buf)
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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ExposerBuilder;

    fn exposer(data: &[u8]) -> Exposer {
        ExposerBuilder::new().expose(data).unwrap().exposer()
    }

    #[test]
    fn datagrams_go_to_the_exposure_they_name_and_the_rest_are_counted() {
        let mut r = Router::new();
        let (a, b) = (exposer(b"first"), exposer(b"second"));
        let (ida, idb) = (*a.exposure().id(), *b.exposure().id());
        assert_eq!(r.add(a), 0);
        assert_eq!(r.add(b), 1);
        let now = Instant::from_millis(1);
        let from = Peer::Mem(9);
        // Anything naming `b`'s ID goes to `b` only (it is malformed there, and counted there).
        let mut d = vec![0u8; 36];
        d[ID_AT..ID_AT + 16].copy_from_slice(&idb);
        r.handle_datagram(now, from, &d);
        assert_eq!(r.exposers()[0].stats().datagrams_in, 0);
        assert_eq!(r.exposers()[1].stats().datagrams_in, 1);
        d[ID_AT..ID_AT + 16].copy_from_slice(&ida);
        r.handle_datagram(now, from, &d);
        assert_eq!(r.exposers()[0].stats().datagrams_in, 1);
        // Too short to name one; naming none here.
        r.handle_datagram(now, from, &[1, 2, 3]);
        d[ID_AT..ID_AT + 16].copy_from_slice(&[7; 16]);
        r.handle_datagram(now, from, &d);
        let s = r.stats();
        assert_eq!(s.datagrams_in, 2);
        assert_eq!(s.unknown_exposure, 1);
        assert!(s.malformed >= 1);
        // The same exposure twice is served once.
        let again = ExposerBuilder::new()
            .with_exposure_id(ida)
            .dangerous_allow_key_reuse();
        let dup = again.expose(b"other").unwrap().exposer();
        assert_eq!(r.add(dup), 0);
        assert_eq!(r.exposers().len(), 2);
        assert!(Router::poll_transmit(&mut r, now, &mut Vec::new()).is_none());
    }

    #[test]
    fn batches_from_the_stores_are_the_batches_written_out_in_the_same_turns() {
        use rgtp_proto::ExposerConfig;
        use rgtp_wire::{IndexList, Nak, NakFlags, Repr};

        let config = ExposerConfig {
            max_segments: 8,
            dangerous_serve_unvalidated: true,
            ..ExposerConfig::default()
        };
        let prepared: Vec<_> = [50_000usize, 30_001]
            .iter()
            .map(|&len| {
                let data: Vec<u8> = (0..len).map(|i| (i % 253) as u8).collect();
                ExposerBuilder::new()
                    .with_config(config.clone())
                    .expose(&data)
                    .unwrap()
            })
            .collect();
        let (mut copying, mut borrowing) = (Router::new(), Router::new());
        for p in &prepared {
            copying.add(p.exposer());
            borrowing.add(p.exposer());
        }
        let stores: Vec<_> = prepared
            .iter()
            .map(|p| p.exposure.store_bytes().as_ptr_range())
            .collect();
        let now = Instant::from_millis(1);
        let from = Peer::Mem(3);
        // Runs of chunks (sent from the stores), and runs with proofs (written out).
        let asks: [(Vec<u32>, NakFlags); 3] = [
            ((0..30).collect(), NakFlags::empty()),
            ((3..9).chain(20..24).collect(), NakFlags::PROOFS),
            ((10..26).rev().collect(), NakFlags::empty()),
        ];
        let (mut stored, mut written) = (0, 0);
        for (indices, flags) in &asks {
            for p in &prepared {
                let nak = Repr::Nak(Nak {
                    exposure_id: *p.exposure.id(),
                    flags: *flags,
                    indices: IndexList::Slice(indices),
                    token: None,
                });
                let mut d = vec![0; nak.buffer_len()];
                nak.emit(&mut d);
                copying.handle_datagram(now, from, &d);
                borrowing.handle_datagram(now, from, &d);
            }
            let (mut a, mut b) = (Vec::new(), Vec::new());
            loop {
                let ta = Router::poll_transmit(&mut copying, now, &mut a);
                let tb = Router::poll_transmit_ref(&mut borrowing, now, &mut b);
                match (ta, tb) {
                    (None, None) => break,
                    (Some(ta), Some((tb, bytes))) => {
                        assert_eq!(ta, tb, "{indices:?}");
                        assert!(bytes == &a[..ta.size], "{indices:?}: bytes differ");
                        if stores.iter().any(|s| s.contains(&bytes.as_ptr())) {
                            stored += 1;
                        } else {
                            written += 1;
                        }
                    }
                    (ta, tb) => panic!("{indices:?}: {ta:?} against {:?}", tb.map(|t| t.0)),
                }
            }
        }
        assert_eq!(copying.stats(), borrowing.stats());
        assert!(stored >= 4, "{stored} batches sent from the stores");
        assert!(written >= 2, "{written} batches written out");
    }
}
