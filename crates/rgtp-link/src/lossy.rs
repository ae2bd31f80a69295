//! [`Lossy`]: the seeded [`Impairment`] model as middleware in front of any link
//! (smoltcp's `FaultInjector`).

use std::io;
use std::net::IpAddr;
use std::time::Duration;

use redgiant_base::{Instant, Peer, SystemClock, TimeSource, Transmit};

use crate::impair::{Impairment, ImpairmentConfig, ImpairmentStats};
use crate::mem::check_transmit;
use crate::schedule::Schedule;
use crate::{Capabilities, Framing, Link, Received, Vlan};

/// Middleware that impairs the datagrams another link sends: a seeded fault
/// injector in front of any [`Link`].
///
/// Every stage of the [`Impairment`] model applies. Time comes from the
/// [`TimeSource`] it was given ([`SystemClock`] by default): a datagram due
/// at once (no delay, jitter or rate limit) leaves in the same `send`,
/// keeping its batch shape so GSO still applies underneath; one due later is
/// held and goes out on the first `send`, `recv` or `flush` at or after its
/// due time ([`poll_at`](Self::poll_at) tells when). A middleware has no thread, so
/// a held datagram waits for the link to be used; `recv` shortens its wait
/// to the next due time. Every other [`Link`] method is the wrapped link's.
#[derive(Debug)]
pub struct Lossy<L, C = SystemClock> {
    inner: L,
    impairment: Impairment,
    clock: C,
    held: Schedule<Held>,
    deliveries: Vec<(Instant, Vec<u8>)>,
    batch: Vec<u8>,
}

/// A datagram held back until its due time.
#[derive(Debug)]
struct Held {
    destination: Peer,
    bytes: Vec<u8>,
}

impl<L: Link> Lossy<L> {
    /// Wraps `inner`, impairing what it sends by `config` seeded with `seed`,
    /// on the wall clock.
    pub fn new(inner: L, config: ImpairmentConfig, seed: u64) -> Self {
        Self::with_clock(inner, config, seed, SystemClock::new())
    }
}

impl<L: Link, C: TimeSource> Lossy<L, C> {
    /// Wraps `inner`, impairing what it sends by `config` seeded with `seed`,
    /// with time from `clock`.
    pub fn with_clock(inner: L, config: ImpairmentConfig, seed: u64, clock: C) -> Self {
        Lossy {
            inner,
            impairment: Impairment::new(config, seed),
            clock,
            held: Schedule::default(),
            deliveries: Vec::new(),
            batch: Vec::new(),
        }
    }

    /// The wrapped link.
    pub fn inner(&self) -> &L {
        &self.inner
    }

    /// The wrapped link, mutably.
    pub fn inner_mut(&mut self) -> &mut L {
        &mut self.inner
    }

    /// Unwraps the link; datagrams still held are dropped.
    pub fn into_inner(self) -> L {
        self.inner
    }

    /// Impairment counters so far.
    pub fn stats(&self) -> ImpairmentStats {
        self.impairment.stats()
    }

    /// When the next held datagram is due, if any is held.
    pub fn poll_at(&self) -> Option<Instant> {
        self.held.next_at()
    }

    /// Datagrams held back, not yet due.
    pub fn held(&self) -> usize {
        self.held.len()
    }

    /// Sends every held datagram due at or before the clock's now, by due
    /// time then send order. Returns how many were sent.
    pub fn release_due(&mut self) -> io::Result<usize> {
        let now = self.clock.now();
        let mut n = 0;
        while let Some((_, h)) = self.held.pop_due(now) {
            let t = Transmit {
                destination: h.destination,
                size: h.bytes.len(),
                segment_size: None,
            };
            self.inner.send(&t, &h.bytes)?;
            n += 1;
        }
        Ok(n)
    }
}

impl<L: Link, C: TimeSource> Link for Lossy<L, C> {
    fn capabilities(&self) -> Capabilities {
        self.inner.capabilities()
    }

    fn local_peer(&self) -> Peer {
        self.inner.local_peer()
    }

    fn framing(&self) -> Framing {
        self.inner.framing()
    }

    fn flush(&mut self) -> io::Result<()> {
        self.release_due()?;
        self.inner.flush()
    }

    fn last_recv_vlans(&self) -> Option<&[Option<Vlan>]> {
        self.inner.last_recv_vlans()
    }

    fn local_ip_for(&self, peer: &Peer) -> Option<IpAddr> {
        self.inner.local_ip_for(peer)
    }

    fn lend(&mut self, memory: std::sync::Arc<dyn redgiant_base::link::LentMemory>) -> bool {
        self.inner.lend(memory)
    }

    fn send(&mut self, transmit: &Transmit, buf: &[u8]) -> io::Result<()> {
        check_transmit(transmit, buf)?;
        self.release_due()?;
        let now = self.clock.now();
        self.deliveries.clear();
        for datagram in transmit.datagrams(buf) {
            self.impairment.process(now, datagram, &mut self.deliveries);
        }
        // Hold what is due later; what is due now leaves in one batch.
        let mut i = 0;
        while i < self.deliveries.len() {
            if self.deliveries[i].0 > now {
                let (at, bytes) = self.deliveries.remove(i);
                self.held.push(
                    at,
                    Held {
                        destination: transmit.destination,
                        bytes,
                    },
                );
            } else {
                i += 1;
            }
        }
        if self.deliveries.is_empty() {
            return Ok(());
        }
        // Drops and duplicates keep the shape: full-size datagrams, then at most one short one last.
        self.batch.clear();
        for (_, bytes) in &self.deliveries {
            self.batch.extend_from_slice(bytes);
        }
        let segment_size = match self.deliveries.len() {
            1 => None,
            _ => Some(self.deliveries[0].1.len()),
        };
        let out = Transmit {
            destination: transmit.destination,
            size: self.batch.len(),
            segment_size,
        };
        self.inner.send(&out, &self.batch)
    }

    fn recv(
        &mut self,
        buf: &mut [u8],
        out: &mut Vec<Received>,
        timeout: Option<Duration>,
    ) -> io::Result<usize> {
        self.release_due()?;
        let timeout = match self.poll_at() {
            None => timeout,
            Some(at) => {
                let until_due = Duration::from_micros(
                    at.total_micros()
                        .saturating_sub(self.clock.now().total_micros()),
                );
                Some(timeout.map_or(until_due, |t| t.min(until_due)))
            }
        };
        let n = self.inner.recv(buf, out, timeout)?;
        self.release_due()?;
        Ok(n)
    }
}

#[cfg(test)]
mod tests {
    use redgiant_base::ManualClock;

    use super::*;
    use crate::mem::MemLink;

    #[test]
    fn test_lossy_middleware() {
        let (a, mut b) = MemLink::pair(ImpairmentConfig::default(), 0);
        let config = ImpairmentConfig::default()
            .with_loss(0.3)
            .with_duplicate(0.1);
        let mut a = Lossy::new(a, config, 21);
        let buf: Vec<u8> = (0..64 * 100 + 7).map(|i| (i / 100) as u8).collect();
        let t = Transmit {
            destination: b.local_peer(),
            size: buf.len(),
            segment_size: Some(100),
        };
        a.send(&t, &buf).unwrap();
        let s = a.stats();
        let expected = (65 - s.dropped + s.duplicated) as usize;
        let mut rx = vec![0; 1 << 16];
        let mut meta = Vec::new();
        b.recv(&mut rx, &mut meta, Some(Duration::from_secs(1)))
            .unwrap();
        assert_eq!(meta.len(), expected);
        // In order, each datagram intact (one index per datagram), the short one last if it survived.
        let tags: Vec<u8> = meta.iter().map(|r| rx[r.offset]).collect();
        assert!(tags.windows(2).all(|w| w[0] <= w[1]), "{tags:?}");
        for r in &meta {
            assert!(rx[r.offset..r.offset + r.len]
                .iter()
                .all(|&x| x == rx[r.offset]));
            assert_eq!(r.len, if rx[r.offset] == 64 { 7 } else { 100 });
        }
    }

    /// Receives whatever `b` has right now, without waiting.
    fn drain(b: &mut MemLink) -> Vec<Vec<u8>> {
        let mut rx = vec![0; 1 << 16];
        let mut meta = Vec::new();
        b.recv(&mut rx, &mut meta, Some(Duration::ZERO)).unwrap();
        meta.iter()
            .map(|r| rx[r.offset..r.offset + r.len].to_vec())
            .collect()
    }

    #[test]
    fn test_delay_follows_the_injected_clock() {
        let (a, mut b) = MemLink::pair(ImpairmentConfig::default(), 0);
        let clock = ManualClock::new(Instant::from_millis(1_000));
        let config = ImpairmentConfig::default().with_delay(Duration::from_millis(10));
        let mut a = Lossy::with_clock(a, config, 5, clock.clone());
        let to = b.local_peer();
        let send = |a: &mut Lossy<MemLink, ManualClock>, bytes: &[u8]| {
            let t = Transmit {
                destination: to,
                size: bytes.len(),
                segment_size: None,
            };
            a.send(&t, bytes).unwrap();
        };
        send(&mut a, b"one");
        clock.advance(Duration::from_millis(4));
        send(&mut a, b"two");
        assert_eq!(a.held(), 2);
        assert_eq!(a.poll_at(), Some(Instant::from_millis(1_010)));

        let mut rx = vec![0; 1 << 16];
        let mut meta = Vec::new();
        // Just before the first is due nothing leaves, however often the link is used.
        clock.set(Instant::from_micros(1_009_999));
        a.flush().unwrap();
        assert_eq!(a.recv(&mut rx, &mut meta, Some(Duration::ZERO)).unwrap(), 0);
        assert!(drain(&mut b).is_empty());
        // At its due time the first leaves, the second stays.
        clock.set(Instant::from_millis(1_010));
        assert_eq!(a.recv(&mut rx, &mut meta, Some(Duration::ZERO)).unwrap(), 0);
        assert_eq!(drain(&mut b), vec![b"one".to_vec()]);
        assert_eq!(a.poll_at(), Some(Instant::from_millis(1_014)));
        // Past the second's due time, the next send takes it out first.
        clock.set(Instant::from_millis(1_020));
        send(&mut a, b"three");
        assert_eq!(drain(&mut b), vec![b"two".to_vec()]);
        assert_eq!(a.poll_at(), Some(Instant::from_millis(1_030)));
        clock.advance(Duration::from_millis(10));
        a.flush().unwrap();
        assert_eq!(drain(&mut b), vec![b"three".to_vec()]);
        assert_eq!(a.held(), 0);
        assert_eq!(a.poll_at(), None);
    }

    /// A link that only reports what a raw-Ethernet link would.
    struct EthLike {
        vlans: Vec<Option<Vlan>>,
    }

    impl Link for EthLike {
        fn capabilities(&self) -> Capabilities {
            Capabilities {
                mtu: 1500,
                max_segments: 1,
                max_batch_bytes: usize::MAX,
            }
        }
        fn local_peer(&self) -> Peer {
            Peer::Ethernet([2, 0, 0, 0, 0, 1])
        }
        fn framing(&self) -> Framing {
            Framing::Ethernet {
                vlan: Some(Vlan {
                    id: 7,
                    pcp: 3,
                    dei: false,
                }),
            }
        }
        fn last_recv_vlans(&self) -> Option<&[Option<Vlan>]> {
            Some(&self.vlans)
        }
        fn local_ip_for(&self, _peer: &Peer) -> Option<IpAddr> {
            Some(IpAddr::from([192, 0, 2, 1]))
        }
        fn send(&mut self, _: &Transmit, _: &[u8]) -> io::Result<()> {
            Ok(())
        }
        fn recv(
            &mut self,
            _: &mut [u8],
            _: &mut Vec<Received>,
            _: Option<Duration>,
        ) -> io::Result<usize> {
            Ok(0)
        }
    }

    #[test]
    fn test_forwards_every_optional_method() {
        let vlans = vec![None, Some(Vlan::from_tci(0x6007))];
        let lossy = Lossy::new(
            EthLike {
                vlans: vlans.clone(),
            },
            ImpairmentConfig::default(),
            1,
        );
        assert_eq!(lossy.framing(), lossy.inner().framing());
        assert_eq!(lossy.last_recv_vlans(), Some(&vlans[..]));
        let peer = Peer::Ethernet([2, 0, 0, 0, 0, 2]);
        assert_eq!(
            lossy.local_ip_for(&peer),
            Some(IpAddr::from([192, 0, 2, 1]))
        );
        let lent = crate::lend::tests::Mapped::with(&[1; 4096]);
        let mut lossy = lossy;
        assert!(
            !lossy.lend(lent.clone()),
            "a link that copies declines lent memory"
        );
        let udp = crate::UdpLink::bind("127.0.0.1:0".parse().unwrap()).unwrap();
        let mut lossy = Lossy::new(udp, ImpairmentConfig::default(), 1);
        assert_eq!(lossy.framing(), Framing::Udp);
        assert!(lossy.lend(lent), "a UDP link takes it");
    }
}
