//! Black-box probing of an exposer over UDP or raw Ethernet, and packet builders.
//!
//! An [`Endpoint`] says where the exposer is and how to reach it; a [`Probe`] is one
//! puller address talking to it:
//!
//! - **UDP**: each probe is a fresh socket on a source port no earlier probe of this
//!   process used, so a new puller address every time; late answers to one case never
//!   reach the next.
//! - **Raw Ethernet** ([`EthLink`], EtherType 0x88B5): every probe shares one link
//!   on a local interface and so one puller address, the interface's MAC. A probe
//!   first drains what is still arriving for earlier ones. Cases that need two
//!   puller addresses at once say n/a ([`Endpoint::distinct_addresses`]).

use std::collections::{HashSet, VecDeque};
use std::io;
use std::net::{SocketAddr, UdpSocket};
use std::os::fd::AsRawFd;
use std::sync::{Arc, Mutex, MutexGuard, OnceLock};
use std::time::{Duration, Instant};

use rgtp_link::eth::{EthConfig, EthLink};
use rgtp_link::{Link, Received};
use rgtp_proto::{Peer, Transmit};

use rgtp_wire::{
    ExposureId, IndexList, Keepalive, Manifest, Nak, NakFlags, PullFlags, PullRequest, RateReport,
    Repr, Token,
};

/// Largest UDP payload.
pub const MAX_UDP: usize = 65_507;

/// Longest a probe drains a line that keeps sending.
pub const DRAIN_LIMIT: Duration = Duration::from_secs(3);

/// Emits a repr into a fresh buffer.
pub fn emit(r: &Repr<'_>) -> Vec<u8> {
    let mut v = vec![0u8; r.buffer_len()];
    r.emit(&mut v);
    v
}

/// A Pull_Request.
pub fn pull_request(id: ExposureId, flags: PullFlags, vmin: u16, vmax: u16) -> Vec<u8> {
    emit(&Repr::PullRequest(PullRequest {
        exposure_id: id,
        window_size: 64,
        loss_rate_q16: 0,
        flags,
        version_min: vmin,
        version_max: vmax,
    }))
}

/// A NAK; `token` sets NakFlags TOKEN.
pub fn nak(id: ExposureId, entries: &[u32], flags: NakFlags, token: Option<Token>) -> Vec<u8> {
    let mut flags = flags - NakFlags::TOKEN;
    if token.is_some() {
        flags |= NakFlags::TOKEN;
    }
    emit(&Repr::Nak(Nak {
        exposure_id: id,
        flags,
        indices: IndexList::Slice(entries),
        token,
    }))
}

/// A Rate_Report.
pub fn rate_report(id: ExposureId) -> Vec<u8> {
    emit(&Repr::RateReport(RateReport {
        exposure_id: id,
        rtt_us: 1000,
        loss_rate_q16: 0,
        window_size: 64,
        timestamp_us: 1,
    }))
}

/// A Keepalive.
pub fn keepalive(id: ExposureId) -> Vec<u8> {
    emit(&Repr::Keepalive(Keepalive {
        exposure_id: id,
        timestamp_us: 1,
    }))
}

/// Asks the kernel for a large receive buffer (forced when privileged).
pub fn grow_recv_buffer(sock: &UdpSocket, bytes: usize) {
    let v = bytes as libc::c_int;
    let fd = sock.as_raw_fd();
    // SAFETY: setsockopt on an owned, open socket with a c_int value of the right size.
    unsafe {
        let p = &v as *const libc::c_int as *const libc::c_void;
        let len = std::mem::size_of::<libc::c_int>() as libc::socklen_t;
        if libc::setsockopt(fd, libc::SOL_SOCKET, libc::SO_RCVBUFFORCE, p, len) != 0 {
            libc::setsockopt(fd, libc::SOL_SOCKET, libc::SO_RCVBUF, p, len);
        }
    }
}

/// Where the exposer under test is, and the link that reaches it.
#[derive(Clone)]
pub enum Endpoint {
    /// UDP: every probe is a fresh socket (a new puller address).
    Udp(SocketAddr),
    /// Raw Ethernet: one shared link, one puller address (the interface's MAC).
    Eth(Arc<EthEndpoint>),
}

/// The shared raw-Ethernet side of an [`Endpoint::Eth`].
pub struct EthEndpoint {
    /// The exposer's MAC address.
    pub exposer: [u8; 6],
    /// The local interface.
    pub interface: String,
    /// This end's MAC address (every probe's puller address).
    pub local: [u8; 6],
    /// The interface MTU: the largest RGTP packet a frame carries.
    pub mtu: usize,
    inner: Mutex<EthInner>,
}

struct EthInner {
    link: EthLink,
    buf: Vec<u8>,
    metas: Vec<Received>,
    /// Datagrams from the exposer received but not yet collected.
    pending: VecDeque<Vec<u8>>,
}

impl EthEndpoint {
    fn lock(&self) -> MutexGuard<'_, EthInner> {
        self.inner.lock().unwrap_or_else(|p| p.into_inner())
    }
}

impl EthInner {
    /// Receives for up to `timeout`, queueing what came from `exposer`; true if anything did.
    fn pump(&mut self, exposer: [u8; 6], timeout: Duration) -> io::Result<bool> {
        self.metas.clear();
        let n = self
            .link
            .recv(&mut self.buf, &mut self.metas, Some(timeout))?;
        let before = self.pending.len();
        for m in self.metas.iter().take(n) {
            if m.from == Peer::Ethernet(exposer) {
                self.pending
                    .push_back(self.buf[m.offset..m.offset + m.len].to_vec());
            }
        }
        Ok(self.pending.len() > before)
    }
}

impl Endpoint {
    /// An exposer at a UDP address.
    pub fn udp(addr: SocketAddr) -> Endpoint {
        Endpoint::Udp(addr)
    }

    /// An exposer at MAC address `exposer`, reached through a raw-Ethernet link on
    /// `interface` (needs root or `CAP_NET_RAW`).
    pub fn eth(interface: &str, exposer: [u8; 6]) -> io::Result<Endpoint> {
        Self::eth_tagged(interface, exposer, None)
    }

    /// [`Endpoint::eth`] with every frame tagged `vlan` (and only frames of that VLAN heard).
    pub fn eth_tagged(
        interface: &str,
        exposer: [u8; 6],
        vlan: Option<rgtp_link::Vlan>,
    ) -> io::Result<Endpoint> {
        let mut config = EthConfig::new(interface);
        config.vlan = vlan;
        let link = EthLink::open(config)?;
        let mtu = link.capabilities().mtu;
        let local = link.mac();
        let slot = mtu.max(1500) + 64;
        Ok(Endpoint::Eth(Arc::new(EthEndpoint {
            exposer,
            interface: interface.to_string(),
            local,
            mtu,
            inner: Mutex::new(EthInner {
                link,
                buf: vec![0u8; slot * 64],
                metas: Vec::with_capacity(64),
                pending: VecDeque::new(),
            }),
        })))
    }

    /// Largest datagram the link carries.
    pub fn max_datagram(&self) -> usize {
        match self {
            Endpoint::Udp(_) => MAX_UDP,
            Endpoint::Eth(e) => e.mtu,
        }
    }

    /// True when each probe gets its own puller address.
    pub fn distinct_addresses(&self) -> bool {
        matches!(self, Endpoint::Udp(_))
    }

    /// True over raw Ethernet.
    pub fn is_ethernet(&self) -> bool {
        matches!(self, Endpoint::Eth(_))
    }

    /// The exposer, as the link names it.
    pub fn describe(&self) -> String {
        match self {
            Endpoint::Udp(a) => format!("udp {a}"),
            Endpoint::Eth(e) => format!(
                "raw Ethernet {} on {}",
                rgtp_proto::Peer::Ethernet(e.exposer),
                e.interface
            ),
        }
    }
}

enum Chan {
    Udp(UdpSocket),
    Eth(Arc<EthEndpoint>),
}

/// One puller address talking to the exposer: a connected UDP socket, or the
/// shared raw-Ethernet link.
pub struct Probe {
    chan: Chan,
    /// The exposure probed.
    pub id: ExposureId,
    /// How long silence must last to count as "no answer".
    pub quiet: Duration,
    /// Token from the last Manifest, if any.
    pub token: Option<Token>,
    /// Datagrams that arrived after a handshake's Manifest, unasked (drained and
    /// counted so that no later request of the case is blamed for them).
    pub unrequested: Answers,
    /// The running case's traffic recorder (`--evidence`), if any.
    tap: Option<Arc<crate::evidence::Tap>>,
}

/// Answers collected for one request.
#[derive(Debug, Default)]
pub struct Answers {
    /// The datagrams, in arrival order.
    pub datagrams: Vec<Vec<u8>>,
}

impl Answers {
    /// Sum of the datagram sizes.
    pub fn bytes(&self) -> usize {
        self.datagrams.iter().map(Vec::len).sum()
    }
    /// Number of datagrams.
    pub fn len(&self) -> usize {
        self.datagrams.len()
    }
    /// True when nothing arrived.
    pub fn is_empty(&self) -> bool {
        self.datagrams.is_empty()
    }
    /// Short description of what arrived (types and sizes).
    pub fn describe(&self) -> String {
        let mut v: Vec<String> = self
            .datagrams
            .iter()
            .take(4)
            .map(|d| format!("type {:#04x}/{} B", d.get(1).copied().unwrap_or(0), d.len()))
            .collect();
        if self.datagrams.len() > 4 {
            v.push(format!("… {} in all", self.datagrams.len()));
        }
        v.join(", ")
    }
}

/// Source ports probes of this process have had: a new probe never gets one again, so
/// stray answers sent to an earlier probe cannot reach it.
fn used_ports() -> MutexGuard<'static, HashSet<u16>> {
    static USED: OnceLock<Mutex<HashSet<u16>>> = OnceLock::new();
    USED.get_or_init(|| Mutex::new(HashSet::new()))
        .lock()
        .unwrap_or_else(|p| p.into_inner())
}

/// A UDP socket on a source port no earlier probe used (the kernel may hand a port
/// out again once its socket is closed; such sockets are held until a fresh one is had).
fn fresh_socket(bind: SocketAddr) -> io::Result<UdpSocket> {
    let mut held = Vec::new();
    for _ in 0..64 {
        let sock = UdpSocket::bind(bind)?;
        let port = sock.local_addr()?.port();
        if used_ports().insert(port) {
            return Ok(sock);
        }
        held.push(sock);
    }
    Err(io::Error::other(
        "no source port left that no earlier probe used",
    ))
}

impl Probe {
    /// A fresh socket (a new puller address, a source port no earlier probe had)
    /// connected to `addr`.
    pub fn new(addr: SocketAddr, id: ExposureId, quiet: Duration) -> io::Result<Probe> {
        let any: std::net::IpAddr = match addr {
            SocketAddr::V4(_) => std::net::Ipv4Addr::UNSPECIFIED.into(),
            SocketAddr::V6(_) => std::net::Ipv6Addr::UNSPECIFIED.into(),
        };
        Self::new_from(any, addr, id, quiet)
    }

    /// A probe towards `addr` whose datagrams leave from the local address `from`.
    pub fn new_from(
        from: std::net::IpAddr,
        addr: SocketAddr,
        id: ExposureId,
        quiet: Duration,
    ) -> io::Result<Probe> {
        let sock = fresh_socket(SocketAddr::new(from, 0))?;
        grow_recv_buffer(&sock, 16 << 20);
        sock.connect(addr)?;
        Ok(Probe {
            chan: Chan::Udp(sock),
            id,
            quiet,
            token: None,
            unrequested: Answers::default(),
            tap: crate::evidence::current_tap(),
        })
    }

    /// The local address a UDP probe sends from (None over raw Ethernet).
    pub fn local_addr(&self) -> Option<SocketAddr> {
        match &self.chan {
            Chan::Udp(s) => s.local_addr().ok(),
            _ => None,
        }
    }

    /// A probe towards `endpoint`: a fresh UDP socket, or the shared Ethernet link
    /// after draining what is still arriving for earlier probes.
    pub fn open(endpoint: &Endpoint, id: ExposureId, quiet: Duration) -> io::Result<Probe> {
        match endpoint {
            Endpoint::Udp(addr) => Probe::new(*addr, id, quiet),
            Endpoint::Eth(e) => {
                let drain = quiet.min(Duration::from_millis(50));
                let mut inner = e.lock();
                inner.pending.clear();
                let until = Instant::now() + Duration::from_secs(2);
                while inner.pump(e.exposer, drain)? && Instant::now() < until {
                    inner.pending.clear();
                }
                inner.pending.clear();
                drop(inner);
                Ok(Probe {
                    chan: Chan::Eth(Arc::clone(e)),
                    id,
                    quiet,
                    token: None,
                    unrequested: Answers::default(),
                    tap: crate::evidence::current_tap(),
                })
            }
        }
    }

    /// This probe's own address.
    pub fn local_peer(&self) -> Peer {
        match &self.chan {
            Chan::Udp(s) => Peer::Ip(s.local_addr().expect("bound")),
            Chan::Eth(e) => Peer::Ethernet(e.local),
        }
    }

    /// Hands a datagram sent (`sent`) or received to the case's evidence recorder, if any.
    fn tap(&self, sent: bool, d: &[u8]) {
        if let Some(t) = &self.tap {
            let remote = match &self.chan {
                Chan::Udp(s) => s.peer_addr().map_or(self.local_peer(), Peer::Ip),
                Chan::Eth(e) => Peer::Ethernet(e.exposer),
            };
            t.harness(self.local_peer(), remote, sent, d);
        }
    }

    /// Sends one datagram (errors such as ICMP unreachable are ignored: silence is checked).
    pub fn send(&self, d: &[u8]) {
        self.tap(true, d);
        match &self.chan {
            Chan::Udp(s) => {
                let _ = s.send(d);
            }
            Chan::Eth(e) => {
                let t = Transmit {
                    destination: Peer::Ethernet(e.exposer),
                    size: d.len(),
                    segment_size: None,
                };
                let _ = e.lock().link.send(&t, d);
            }
        }
    }

    /// Receives until nothing arrived for `quiet` after the last datagram (or `first` before
    /// the first), or `max` datagrams arrived.
    pub fn collect(&self, first: Duration, quiet: Duration, max: usize) -> Answers {
        let sock = match &self.chan {
            Chan::Udp(s) => s,
            Chan::Eth(e) => {
                let a = collect_eth(e, first, quiet, max);
                a.datagrams.iter().for_each(|d| self.tap(false, d));
                return a;
            }
        };
        let mut out = Answers::default();
        let mut buf = vec![0u8; MAX_UDP + 1];
        let mut deadline = Instant::now() + first;
        while out.datagrams.len() < max {
            let now = Instant::now();
            if now >= deadline {
                break;
            }
            let _ = sock.set_read_timeout(Some((deadline - now).max(Duration::from_millis(1))));
            match sock.recv(&mut buf) {
                Ok(n) => {
                    self.tap(false, &buf[..n]);
                    out.datagrams.push(buf[..n].to_vec());
                    deadline = Instant::now() + quiet;
                }
                Err(e)
                    if e.kind() == io::ErrorKind::WouldBlock
                        || e.kind() == io::ErrorKind::TimedOut =>
                {
                    break
                }
                Err(_) => std::thread::sleep(Duration::from_millis(5)),
            }
        }
        out
    }

    /// Whatever arrives within the quiet window.
    pub fn listen(&self) -> Answers {
        self.collect(self.quiet, self.quiet, usize::MAX)
    }

    /// Receives and discards until the line has been silent for the quiet window (at
    /// most [`DRAIN_LIMIT`] in all): what an exposer still sends for earlier requests.
    pub fn drain(&self) -> Answers {
        let mut out = Answers::default();
        let until = Instant::now() + DRAIN_LIMIT;
        loop {
            let a = self.collect(self.quiet, self.quiet, 256);
            let done = a.is_empty();
            out.datagrams.extend(a.datagrams);
            if done || Instant::now() >= until {
                return out;
            }
        }
    }

    /// Sends a Pull_Request (versions 1..1) and waits for a Manifest, retrying; adopts its
    /// token. Then drains the line until silence, so that the case's next request starts
    /// from a quiet socket: whatever else arrived (other than Manifests, which retries
    /// may draw) is added to [`Probe::unrequested`].
    pub fn handshake(&mut self, flags: PullFlags) -> Result<(Manifest, Vec<u8>), String> {
        let pr = pull_request(self.id, flags, 1, 1);
        for _ in 0..4 {
            self.send(&pr);
            let a = self.collect(
                Duration::from_millis(700),
                self.quiet.min(Duration::from_millis(100)),
                8,
            );
            let mut found = None;
            for d in a.datagrams {
                if found.is_none() {
                    if let Ok(Repr::Manifest(m)) = Repr::parse(&d, MAX_UDP) {
                        if m.exposure_id == self.id {
                            found = Some((m, d));
                            continue;
                        }
                    }
                }
                self.note_unrequested(d);
            }
            if let Some((m, d)) = found {
                if m.token.is_some() {
                    self.token = m.token;
                }
                for d in self.drain().datagrams {
                    self.note_unrequested(d);
                }
                return Ok((m, d));
            }
        }
        Err("no Manifest answered a valid Pull_Request (versions 1..1) within 2.8 s".into())
    }

    fn note_unrequested(&mut self, d: Vec<u8>) {
        if !matches!(Repr::parse(&d, MAX_UDP), Ok(Repr::Manifest(_))) {
            self.unrequested.datagrams.push(d);
        }
    }

    /// Sends a NAK for `entries` (with this probe's token, if any) and collects answers until
    /// `expect` arrived or the line went quiet.
    pub fn request(&self, entries: &[u32], flags: NakFlags, expect: usize) -> Answers {
        self.send(&nak(self.id, entries, flags, self.token));
        self.collect(Duration::from_millis(1000), self.quiet, expect)
    }

    /// Checks the exposer still answers a Pull_Request (it keeps serving), then drains
    /// the line so that the case may go on from a quiet socket.
    pub fn alive(&self) -> Result<(), String> {
        let pr = pull_request(self.id, PullFlags::empty(), 1, 1);
        for _ in 0..3 {
            self.send(&pr);
            let a = self.collect(Duration::from_millis(700), Duration::from_millis(50), 4);
            if a.datagrams
                .iter()
                .any(|d| matches!(Repr::parse(d, MAX_UDP), Ok(Repr::Manifest(_))))
            {
                self.drain();
                return Ok(());
            }
        }
        Err("the exposer stopped answering Pull_Requests afterwards".into())
    }
}

/// [`Probe::collect`] over the shared raw-Ethernet link.
fn collect_eth(e: &EthEndpoint, first: Duration, quiet: Duration, max: usize) -> Answers {
    let mut out = Answers::default();
    let mut inner = e.lock();
    let mut deadline = Instant::now() + first;
    while out.datagrams.len() < max {
        if let Some(d) = inner.pending.pop_front() {
            out.datagrams.push(d);
            deadline = Instant::now() + quiet;
            continue;
        }
        let now = Instant::now();
        if now >= deadline {
            break;
        }
        let wait = (deadline - now).max(Duration::from_millis(1));
        if inner.pump(e.exposer, wait).is_err() {
            std::thread::sleep(Duration::from_millis(5));
        }
    }
    out
}
