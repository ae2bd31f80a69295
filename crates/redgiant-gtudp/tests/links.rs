//! gtUDP over every datagram link, with one test body: the in-memory network
//! (lossy), plain UDP on loopback and raw Ethernet between two network
//! namespaces joined by a veth pair (root; loss added in front of the link).
//!
//! Two `Gtudp` endpoints each run on the one driver in a thread of their own;
//! the sender opens confirmed exchanges and ends when all are settled, the
//! receiver runs until told to stop. Every datagram must be confirmed and
//! delivered exactly once.
//!
//! Over raw Ethernet, gtUDP uses the framing of `spec/gtudp-links.md`: the
//! link's EtherType and a 4-byte shim carrying the length, so the padding of
//! short frames is cut off exactly. [`Shim`] implements it over any link.
//!
//! The receiver's link is recorded with rgtp-capture's `Recorder` on the
//! simulator and on UDP, and the capture replayed into a fresh endpoint.

use std::collections::{BTreeSet, HashMap};
use std::io;
use std::net::{Ipv4Addr, SocketAddr};
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use redgiant_base::driver::{Application, Driver, Finish};
use redgiant_base::link::{Capabilities, Framing, Link, Received};
use redgiant_base::{Peer, Transmit};
use redgiant_gtudp::{
    Config, Datagram, Event, ExchangeId, FailReason, Gtudp, Profile, Repr, Stats,
};
use rgtp_capture::record::wall_clock;
use rgtp_capture::replay::replay_into;
use rgtp_capture::Recorder;
use rgtp_link::udp::UdpLink;
use rgtp_link::{ImpairmentConfig, MemLink};

/// First byte of the shim in front of every gtUDP datagram on raw Ethernet.
const SHIM_MARK: u8 = 0xE7;
/// Shim length: mark, reserved zero byte, big-endian 16-bit length of shim and datagram.
const SHIM_LEN: usize = 4;

/// gtUDP's raw-Ethernet framing over any link: `E7 00 LEN(2)` then the datagram.
/// Datagrams without a valid shim are counted and dropped.
struct Shim<L> {
    inner: L,
    out: Vec<u8>,
    dropped: u64,
}

impl<L> Shim<L> {
    fn new(inner: L) -> Self {
        Shim {
            inner,
            out: Vec::new(),
            dropped: 0,
        }
    }
}

impl<L: Link> Link for Shim<L> {
    fn capabilities(&self) -> Capabilities {
        let c = self.inner.capabilities();
        Capabilities {
            mtu: c.mtu - SHIM_LEN,
            max_segments: 1,
            max_batch_bytes: c.max_batch_bytes,
        }
    }

    fn local_peer(&self) -> Peer {
        self.inner.local_peer()
    }

    fn framing(&self) -> Framing {
        self.inner.framing()
    }

    fn flush(&mut self) -> io::Result<()> {
        self.inner.flush()
    }

    fn send(&mut self, transmit: &Transmit, buf: &[u8]) -> io::Result<()> {
        for d in transmit.datagrams(&buf[..transmit.size]) {
            let total = u16::try_from(d.len() + SHIM_LEN)
                .map_err(|_| io::Error::new(io::ErrorKind::InvalidInput, "datagram too large"))?;
            self.out.clear();
            self.out.extend_from_slice(&[SHIM_MARK, 0]);
            self.out.extend_from_slice(&total.to_be_bytes());
            self.out.extend_from_slice(d);
            let t = Transmit {
                destination: transmit.destination,
                size: self.out.len(),
                segment_size: None,
            };
            self.inner.send(&t, &self.out)?;
        }
        Ok(())
    }

    fn recv(
        &mut self,
        buf: &mut [u8],
        out: &mut Vec<Received>,
        timeout: Option<Duration>,
    ) -> io::Result<usize> {
        let start = out.len();
        self.inner.recv(buf, out, timeout)?;
        let mut kept = Vec::new();
        for r in out.drain(start..) {
            let d = &buf[r.offset..r.offset + r.len];
            let declared = d
                .get(2..4)
                .map(|l| usize::from(u16::from_be_bytes([l[0], l[1]])));
            match declared {
                Some(n) if d[0] == SHIM_MARK && d[1] == 0 && n >= SHIM_LEN && n <= d.len() => kept
                    .push(Received {
                        from: r.from,
                        offset: r.offset + SHIM_LEN,
                        len: n - SHIM_LEN,
                    }),
                _ => self.dropped += 1,
            }
        }
        let n = kept.len();
        out.extend(kept);
        Ok(n)
    }
}

/// A payload of its own length and content for datagram `i`; some are
/// shorter than the Ethernet minimum, so padding is exercised.
fn payload(i: u32) -> Vec<u8> {
    let len = (i as usize * 53) % 1300;
    let mut p = i.to_be_bytes().to_vec();
    p.extend((0..len).map(|j| (j as u32 * 11 + i) as u8));
    p
}

#[derive(Default)]
struct Receiver {
    got: Vec<(Peer, Vec<u8>)>,
}

impl Application<Gtudp> for Receiver {
    type Output = ();
    type Error = io::Error;

    fn deliver(&mut self, d: Datagram<'_>) -> io::Result<()> {
        self.got.push((d.from, d.payload.to_vec()));
        Ok(())
    }

    fn event(&mut self, _: &mut Gtudp, _: Event) -> io::Result<Option<()>> {
        Ok(None)
    }
}

struct Sender {
    open: usize,
    confirmed: Vec<ExchangeId>,
    failed: Vec<(ExchangeId, FailReason)>,
}

impl Application<Gtudp> for Sender {
    type Output = ();
    type Error = io::Error;

    fn deliver(&mut self, _: Datagram<'_>) -> io::Result<()> {
        Ok(())
    }

    fn event(&mut self, _: &mut Gtudp, ev: Event) -> io::Result<Option<()>> {
        match ev {
            Event::Confirmed(x) => self.confirmed.push(x),
            Event::Failed(x, why) => self.failed.push((x, why)),
            Event::Received { .. } => {}
        }
        Ok((self.confirmed.len() + self.failed.len() == self.open).then_some(()))
    }
}

/// What one exchange over a pair of links gave.
struct Outcome {
    confirmed: usize,
    failed: Vec<(ExchangeId, FailReason)>,
    got: Vec<(Peer, Vec<u8>)>,
    sender: Stats,
    receiver: Stats,
}

/// Sends `count` confirmed datagrams from `a` to `b_peer` (the address of
/// `b` as `a` sees it) with the one driver on each side; `a_peer` is `a`
/// as `b` sees it. Opening the links is left to `open`, run on each
/// endpoint's own thread (so a link can be opened inside a namespace).
fn exchange<LA, LB>(
    open_a: impl FnOnce() -> LA + Send,
    open_b: impl FnOnce() -> LB + Send,
    b_peer: Peer,
    count: u32,
) -> (Outcome, LB)
where
    LA: Link,
    LB: Link + Send,
{
    let stop = AtomicBool::new(false);
    let config = Config::default();
    std::thread::scope(|s| {
        let receiver = s.spawn(|| {
            let mut driver = Driver::new(open_b());
            let mut b = Gtudp::seeded(config.clone(), 2);
            let mut app = Receiver::default();
            let finish = driver.run(&mut b, &mut app, &stop, |_, _| {});
            assert!(matches!(finish, Ok(Finish::Stopped)));
            (app, b.stats(), driver.into_link())
        });
        let sender = s.spawn(|| {
            let mut driver = Driver::new(open_a());
            let mut a = Gtudp::seeded(config.clone(), 1);
            for i in 0..count {
                a.send_to(b_peer, &payload(i));
            }
            let mut app = Sender {
                open: count as usize,
                confirmed: Vec::new(),
                failed: Vec::new(),
            };
            let done = AtomicBool::new(false);
            let finish = driver.run(&mut a, &mut app, &done, |_, _| {});
            // Let the receiver see the last ACKs before it is stopped.
            std::thread::sleep(Duration::from_millis(200));
            stop.store(true, Ordering::Relaxed);
            assert!(matches!(finish, Ok(Finish::Done(()))));
            (app, a.stats())
        });
        let (sender, sender_stats) = sender.join().expect("sender thread");
        let (receiver, receiver_stats, link) = receiver.join().expect("receiver thread");
        let outcome = Outcome {
            confirmed: sender.confirmed.len(),
            failed: sender.failed,
            got: receiver.got,
            sender: sender_stats,
            receiver: receiver_stats,
        };
        (outcome, link)
    })
}

/// Every exchange confirmed and every payload delivered exactly once, from `from`.
fn assert_exactly_once(o: &Outcome, from: Peer, count: u32) {
    assert!(o.failed.is_empty(), "failed exchanges: {:?}", o.failed);
    assert_eq!(o.confirmed, count as usize);
    let mut seen: HashMap<&[u8], usize> = HashMap::new();
    for (peer, p) in &o.got {
        assert_eq!(*peer, from);
        *seen.entry(p).or_default() += 1;
    }
    for i in 0..count {
        assert_eq!(seen.get(&payload(i)[..]), Some(&1), "datagram {i}");
    }
    assert_eq!(o.got.len(), count as usize);
    assert_eq!(o.receiver.delivered, u64::from(count));
    assert_eq!(o.sender.data_sent, u64::from(count));
}

/// `link`, recorded into memory with rgtp-capture's `Recorder`.
fn record<L: Link>(link: L) -> Recorder<L, Vec<u8>> {
    Recorder::with_writer(link, Vec::new(), wall_clock()).expect("in memory")
}

/// The capture the receiver's link made, replayed into a fresh endpoint,
/// delivers exactly the payloads its DATA carry, each once: all `count`.
fn check_replay<L: Link>(recorder: Recorder<L, Vec<u8>>, receiver: Peer, count: u32) {
    let (_, pcap) = recorder.finish().expect("in memory");
    let capture = rgtp_capture::read(&pcap).expect("a readable capture");
    let to = rgtp_capture::frame::recorded(receiver);
    let profile = Profile::reference();
    let mut carried = BTreeSet::new();
    let mut data_records = 0;
    for (_, d) in capture.datagrams().filter(|(_, d)| d.dst == to) {
        if let Ok(Repr::Data { payload, .. }) = Repr::parse(&d.payload, &profile) {
            carried.insert(payload.to_vec());
            data_records += 1;
        }
    }
    let expected: BTreeSet<Vec<u8>> = (0..count).map(payload).collect();
    assert_eq!(carried, expected, "the capture holds every DATA");
    let mut fresh = Gtudp::seeded(Config::default(), 99);
    let mut got = Vec::new();
    let stats = replay_into(
        &capture,
        to,
        &mut fresh,
        |d| got.push(d.payload.to_vec()),
        |_| {},
    );
    assert!(stats.fed >= data_records);
    assert_eq!(got.len(), count as usize, "each payload delivered once");
    assert_eq!(got.into_iter().collect::<BTreeSet<_>>(), expected);
}

#[test]
fn exactly_once_over_the_in_memory_network() {
    let lossy = ImpairmentConfig::perfect()
        .with_loss(0.2)
        .with_duplicate(0.1)
        .with_delay(Duration::from_millis(1));
    let (la, lb) = MemLink::pair(lossy, 7);
    let (pa, pb) = (la.local_peer(), lb.local_peer());
    const N: u32 = 150;
    let (o, recorder) = exchange(|| la, || record(lb), pb, N);
    assert_exactly_once(&o, pa, N);
    assert!(o.sender.data_repeated > 0, "nothing was lost?");
    check_replay(recorder, pb, N);
}

#[test]
fn exactly_once_over_udp() {
    let localhost = SocketAddr::from((Ipv4Addr::LOCALHOST, 0));
    let la = UdpLink::bind(localhost).unwrap();
    let lb = UdpLink::bind(localhost).unwrap();
    let (pa, pb) = (Peer::Ip(la.local_addr()), Peer::Ip(lb.local_addr()));
    const N: u32 = 300;
    let (o, recorder) = exchange(|| la, || record(lb), pb, N);
    assert_exactly_once(&o, pa, N);
    check_replay(recorder, pb, N);
}

#[cfg(target_os = "linux")]
#[path = "../../rgtp-link/tests/netns/mod.rs"]
#[allow(unreachable_pub)]
mod netns;

#[cfg(target_os = "linux")]
mod ethernet {
    use super::*;

    use super::netns::{self, VethPair};
    use rgtp_link::eth::{EthConfig, EthLink};
    use rgtp_link::lossy::Lossy;

    /// 15% of the frames each side sends are dropped before they reach the veth.
    /// (Frames of a packet socket pass the nftables egress hook untouched and
    /// reach packet sockets before the ingress hook, so the loss is put in
    /// front of the link instead.)
    fn loss() -> ImpairmentConfig {
        ImpairmentConfig::perfect().with_loss(0.15)
    }

    #[test]
    fn exactly_once_over_raw_ethernet_with_loss() {
        let pair = VethPair::new();
        let (mac_a, mac_b) = (pair.a_mac(), pair.b_mac());
        const N: u32 = 200;
        let open = |ns: &netns::Netns, iface: &str| {
            let config = EthConfig::new(iface);
            ns.run(|| EthLink::open(config).expect("open the raw-Ethernet link"))
        };
        let la = open(&pair.a, &pair.a_if);
        let lb = open(&pair.b, &pair.b_if);
        let (o, _) = exchange(
            || Shim::new(Lossy::new(la, loss(), 11)),
            || Shim::new(Lossy::new(lb, loss(), 12)),
            Peer::Ethernet(mac_b),
            N,
        );
        assert_exactly_once(&o, Peer::Ethernet(mac_a), N);
        assert!(o.sender.data_repeated > 0);
    }
}
