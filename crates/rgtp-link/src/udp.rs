//! The UDP link: one non-blocking socket, batched with quinn-udp.
//!
//! Sends use UDP GSO when the kernel offers it, several datagrams per
//! `sendmsg`, and fall back to one datagram per `sendmsg` when it does not or
//! when a GSO send fails with `EIO`/`EINVAL`. Receives use `recvmmsg` into
//! several 64 KiB slots of the caller's buffer, and UDP GRO, whose coalesced
//! buffers are split back into datagrams at their stride. Waiting is `poll(2)`
//! on the socket, which stays non-blocking.
//!
//! Datagrams larger than the path MTU are IP-fragmented, as by a plain socket
//! (`IP_PMTUDISC_WANT`), unless [`UdpConfig::fragment`] is off: then they carry
//! DF and the kernel refuses them (`EMSGSIZE`, counted). Either way they are
//! sent one per `sendmsg`, never in a GSO batch (the kernel refuses a batch whose
//! segments do not fit, and quinn-udp would then stop using GSO for good). The
//! path MTU is read once per destination address from the route
//! (`IP_MTU` of a connected probe socket); the first datagram that does not fit
//! is logged as a warning, and [`UdpStats::fragmented`] counts them.
//!
//! A GSO batch that lies within memory lent to the link ([`Link::lend`]: an
//! exposer's sealed store) leaves without the copy into the kernel: the kernel
//! takes its pages by reference (`vmsplice`, then `splice` onto a corked
//! datagram), and a batch that cannot go that way is copied as any other
//! ([`UdpStats::lent_batches`], [`UdpStats::lend_fallbacks`]).
//!
//! A full send buffer is waited out with `poll(POLLOUT)` for up to
//! [`UdpConfig::send_block_timeout`], then the datagrams are dropped and
//! counted. Errors a datagram's fate can cause (`EMSGSIZE`, `ECONNREFUSED`,
//! unreachable networks, `ENOBUFS`, `EPERM` from a firewall) are counted and
//! logged, not returned: UDP is unreliable anyway. Receives never lose data to
//! a small caller buffer: below 64 KiB, datagrams are staged in an internal
//! buffer and handed out over several calls.

use std::collections::VecDeque;
use std::io::{self, IoSliceMut};
use std::net::{IpAddr, SocketAddr, SocketAddrV6};
use std::os::fd::AsRawFd;
use std::time::Duration;

use quinn_udp::{RecvMeta, UdpSockRef, UdpSocketState, BATCH_SIZE};
use redgiant_base::{Peer, Transmit};
use socket2::{Domain, Protocol, Socket, Type};

use crate::mem::check_transmit;
use crate::sys::poll_fd;
use crate::{Capabilities, Link, Received};

/// Receive slot size: the largest UDP payload, or one GRO batch, fits.
const SLOT: usize = 1 << 16;
/// Largest UDP payload over IPv4 (also the bound on one GSO send's total).
const MAX_UDP_PAYLOAD_V4: usize = 65_507;
/// Slots in the internal staging buffer used for small caller buffers.
const STAGING_SLOTS: usize = 4;

/// How a [`UdpLink`] is set up.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct UdpConfig {
    /// Largest datagram the link reports in [`Capabilities::mtu`].
    pub max_datagram_size: usize,
    /// Socket send and receive buffer size asked for (forced past `rmem_max` when permitted).
    pub socket_buffer_bytes: usize,
    /// How long one send waits for room in a full send buffer before dropping.
    pub send_block_timeout: Duration,
    /// Share the port with other sockets that set it too (`SO_REUSEPORT`): the
    /// kernel spreads peers over them by address, so several threads can serve one
    /// port (`rgtp expose --channels N`).
    pub reuse_port: bool,
    /// Let IP fragment datagrams larger than the path MTU (`IP_PMTUDISC_WANT`, a
    /// plain socket's default). Off: every datagram carries DF and one that does
    /// not fit the path is refused and counted in [`UdpStats::send_errors`].
    pub fragment: bool,
}

impl Default for UdpConfig {
    fn default() -> Self {
        UdpConfig {
            max_datagram_size: MAX_UDP_PAYLOAD_V4,
            socket_buffer_bytes: 32 << 20,
            send_block_timeout: Duration::from_millis(100),
            reuse_port: false,
            fragment: true,
        }
    }
}

/// Socket buffer sizes obtained (as the kernel reports them; Linux doubles the request).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct BufferSizes {
    /// `SO_RCVBUF` as read back.
    pub recv: usize,
    /// `SO_SNDBUF` as read back.
    pub send: usize,
    /// Whether `SO_RCVBUFFORCE` was accepted.
    pub recv_forced: bool,
    /// Whether `SO_SNDBUFFORCE` was accepted.
    pub send_forced: bool,
}

/// Counters of a [`UdpLink`].
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct UdpStats {
    /// Datagrams handed to the kernel.
    pub datagrams_sent: u64,
    /// Bytes handed to the kernel.
    pub bytes_sent: u64,
    /// `sendmsg` calls that succeeded.
    pub send_calls: u64,
    /// Of those, GSO sends carrying more than one datagram.
    pub gso_batches: u64,
    /// GSO sends that failed with `EIO`/`EINVAL` and were resent one by one.
    pub gso_fallbacks: u64,
    /// Times a send waited for room in the send buffer.
    pub send_blocked: u64,
    /// Datagrams dropped because the send buffer stayed full.
    pub send_dropped: u64,
    /// Datagrams the kernel refused (counted, not returned).
    pub send_errors: u64,
    /// Datagrams larger than the path MTU toward their destination, sent one per
    /// `sendmsg` (IP-fragmented, or refused when [`UdpConfig::fragment`] is off).
    pub fragmented: u64,
    /// Datagrams received.
    pub datagrams_received: u64,
    /// Bytes received.
    pub bytes_received: u64,
    /// `recvmmsg` calls that returned data.
    pub recv_calls: u64,
    /// Receive buffers holding more than one datagram (GRO).
    pub gro_batches: u64,
    /// Datagrams dropped because the caller's buffer could not hold them.
    pub truncated: u64,
    /// GSO sends whose bytes the kernel took from lent memory by reference
    /// ([`Link::lend`]) instead of copying them (counted in `send_calls` and
    /// `gso_batches` too).
    pub lent_batches: u64,
    /// Sends from lent memory that failed and went again by copying.
    pub lend_fallbacks: u64,
}

/// A UDP socket as a [`Link`].
#[derive(Debug)]
pub struct UdpLink {
    socket: std::net::UdpSocket,
    state: UdpSocketState,
    local: SocketAddr,
    /// An `AF_INET6` socket: IPv4 destinations are sent as v4-mapped.
    ipv6: bool,
    config: UdpConfig,
    buffers: BufferSizes,
    stats: UdpStats,
    /// Staging for receives into caller buffers smaller than a slot.
    staging: Vec<u8>,
    /// Datagrams waiting in `staging`.
    staged: VecDeque<Received>,
    /// The local address each peer's datagrams arrived at (IP_PKTINFO), for a
    /// socket bound to an unspecified address; bounded.
    local_ips: std::collections::HashMap<SocketAddr, IpAddr>,
    /// The largest UDP payload that goes unfragmented to each destination address
    /// (`None`: the route could not be read); bounded.
    path_payloads: std::collections::HashMap<IpAddr, Option<usize>>,
    /// Whether a datagram too big for its path has been logged.
    warned_fragment: bool,
    /// Memory lent for sends without a copy.
    lender: crate::lend::Lender,
}

/// Most peers whose arrival address [`UdpLink`] remembers.
const LOCAL_IPS_MAX: usize = 4096;

impl TryFrom<SocketAddr> for UdpLink {
    type Error = io::Error;
    fn try_from(addr: SocketAddr) -> io::Result<Self> {
        UdpLink::bind(addr)
    }
}

impl UdpLink {
    /// Binds a UDP socket at `addr` with the default [`UdpConfig`]. An
    /// unspecified IPv6 address (`[::]`) is bound dual-stack.
    pub fn bind(addr: SocketAddr) -> io::Result<UdpLink> {
        Self::bind_with(addr, UdpConfig::default())
    }

    /// Binds a UDP socket at `addr` set up by `config`.
    pub fn bind_with(addr: SocketAddr, config: UdpConfig) -> io::Result<UdpLink> {
        let socket = Socket::new(Domain::for_address(addr), Type::DGRAM, Some(Protocol::UDP))?;
        if let SocketAddr::V6(v6) = addr {
            if v6.ip().is_unspecified() {
                socket.set_only_v6(false)?;
            }
        }
        let buffers = set_buffers(&socket, config.socket_buffer_bytes);
        socket.set_nonblocking(true)?;
        if config.reuse_port {
            socket.set_reuse_port(true)?;
        }
        socket.bind(&addr.into())?;
        let socket: std::net::UdpSocket = socket.into();
        let state = UdpSocketState::new(UdpSockRef::from(&socket))?;
        if config.fragment {
            allow_fragmentation(&socket, addr.is_ipv6())?;
        }
        let local = socket.local_addr()?;
        tracing::debug!(
            %local,
            ?buffers,
            gso = state.max_gso_segments(),
            gro = state.gro_segments(),
            "UDP link bound"
        );
        Ok(UdpLink {
            socket,
            state,
            local,
            ipv6: addr.is_ipv6(),
            config,
            buffers,
            stats: UdpStats::default(),
            staging: Vec::new(),
            staged: VecDeque::new(),
            local_ips: std::collections::HashMap::new(),
            path_payloads: std::collections::HashMap::new(),
            warned_fragment: false,
            lender: Default::default(),
        })
    }

    /// The bound address (with the port the kernel chose).
    pub fn local_addr(&self) -> SocketAddr {
        self.local
    }

    /// The socket's descriptor, for waiting on several links at once.
    pub(crate) fn raw_fd(&self) -> std::os::fd::RawFd {
        self.socket.as_raw_fd()
    }

    /// Socket buffer sizes obtained.
    pub fn buffer_sizes(&self) -> BufferSizes {
        self.buffers
    }

    /// Most datagrams per GSO send (1: no GSO). Drops to 1 if GSO sends fail.
    pub fn max_gso_segments(&self) -> usize {
        self.state.max_gso_segments()
    }

    /// Most datagrams the kernel coalesces per receive buffer (1: no GRO).
    pub fn gro_segments(&self) -> usize {
        self.state.gro_segments()
    }

    /// Counters so far.
    pub fn stats(&self) -> UdpStats {
        self.stats
    }

    /// A receive buffer size that lets one [`recv`](Link::recv) take a full batch
    /// of GRO buffers without staging.
    pub fn recommended_recv_buffer_len(&self) -> usize {
        SLOT * BATCH_SIZE
    }

    /// The socket address to hand the kernel for `addr`.
    fn kernel_destination(&self, addr: SocketAddr) -> SocketAddr {
        match addr {
            SocketAddr::V4(v4) if self.ipv6 => {
                SocketAddr::V6(SocketAddrV6::new(v4.ip().to_ipv6_mapped(), v4.port(), 0, 0))
            }
            other => other,
        }
    }

    /// The largest UDP payload that reaches `ip` unfragmented, from the route's
    /// MTU; `None` if it cannot be read. Cached per address (bounded).
    fn path_payload(&mut self, ip: IpAddr) -> Option<usize> {
        if let Some(&p) = self.path_payloads.get(&ip) {
            return p;
        }
        if self.path_payloads.len() >= LOCAL_IPS_MAX {
            self.path_payloads.clear();
        }
        let p = route_mtu(ip).map(|mtu| {
            let headers = if ip.to_canonical().is_ipv4() { 28 } else { 48 };
            mtu.saturating_sub(headers)
        });
        self.path_payloads.insert(ip, p);
        p
    }

    /// Counts `n` datagrams of `len` bytes that do not fit the path to `ip`
    /// (`payload` at most), and says so the first time.
    fn note_oversize(&mut self, ip: IpAddr, len: usize, payload: usize, n: u64) {
        self.stats.fragmented += n;
        if !self.warned_fragment {
            self.warned_fragment = true;
            let fate = if self.config.fragment {
                "IP fragments them, and a lost fragment loses the whole datagram"
            } else {
                "they are refused (fragmentation is off)"
            };
            tracing::warn!(
                "UDP datagrams of {len} bytes do not fit the path to {ip}, which carries at most {payload}: {fate}; datagrams of {payload} bytes or less go whole"
            );
        }
    }

    /// Sends `datagram` alone.
    fn send_one(&mut self, destination: SocketAddr, datagram: &[u8]) -> io::Result<()> {
        match self.send_raw(destination, datagram, None) {
            Ok(()) => Ok(()),
            Err(e) => self.absorb_send_error(e, 1),
        }
    }

    /// One `sendmsg`, waiting out a full send buffer. `Ok` also when it stayed full (dropped).
    fn send_raw(
        &mut self,
        destination: SocketAddr,
        contents: &[u8],
        segment_size: Option<usize>,
    ) -> io::Result<()> {
        let transmit = quinn_udp::Transmit {
            destination,
            ecn: None,
            contents,
            segment_size,
            src_ip: None,
        };
        let datagrams = segment_size.map_or(1, |s| contents.len().div_ceil(s)) as u64;
        let deadline = std::time::Instant::now() + self.config.send_block_timeout;
        loop {
            match self
                .state
                .try_send(UdpSockRef::from(&self.socket), &transmit)
            {
                Ok(()) => {
                    self.stats.send_calls += 1;
                    self.stats.datagrams_sent += datagrams;
                    self.stats.bytes_sent += contents.len() as u64;
                    if datagrams > 1 {
                        self.stats.gso_batches += 1;
                    }
                    return Ok(());
                }
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => {
                    let left = deadline.saturating_duration_since(std::time::Instant::now());
                    if left.is_zero() {
                        self.stats.send_dropped += datagrams;
                        return Ok(());
                    }
                    self.stats.send_blocked += 1;
                    poll_fd(self.socket.as_raw_fd(), libc::POLLOUT, Some(left))?;
                }
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(e) => return Err(e),
            }
        }
    }

    /// Sends a GSO `batch` from lent memory without a copy, if it lies there;
    /// false if the caller must send it by copying (see [`crate::lend`]).
    fn send_lent(&mut self, destination: SocketAddr, batch: &[u8], segment: usize) -> bool {
        let to = socket2::SockAddr::from(destination);
        match self
            .lender
            .send(self.socket.as_raw_fd(), &to, batch, segment)
        {
            crate::lend::Lent::Sent => {
                let datagrams = batch.len().div_ceil(segment) as u64;
                self.stats.send_calls += 1;
                self.stats.datagrams_sent += datagrams;
                self.stats.bytes_sent += batch.len() as u64;
                self.stats.gso_batches += 1;
                self.stats.lent_batches += 1;
                true
            }
            crate::lend::Lent::Failed => {
                self.stats.lend_fallbacks += 1;
                false
            }
            crate::lend::Lent::Skipped => false,
        }
    }

    /// Counts errors that are a datagram's fate; returns the others.
    fn absorb_send_error(&mut self, e: io::Error, datagrams: u64) -> io::Result<()> {
        let fate = matches!(
            e.raw_os_error(),
            Some(
                libc::EMSGSIZE
                    | libc::ECONNREFUSED
                    | libc::EHOSTUNREACH
                    | libc::ENETUNREACH
                    | libc::ENETDOWN
                    | libc::EHOSTDOWN
                    | libc::ENOBUFS
                    | libc::EPERM
                    | libc::EACCES
            )
        );
        if !fate {
            return Err(e);
        }
        self.stats.send_errors += datagrams;
        tracing::debug!(error = %e, datagrams, "UDP send failed; dropped");
        Ok(())
    }

    /// One `recvmmsg` straight into slots of `buf` (at least one slot long).
    fn recv_direct(&mut self, buf: &mut [u8], out: &mut Vec<Received>) -> io::Result<usize> {
        let slots = (buf.len() / SLOT).clamp(1, BATCH_SIZE);
        let mut chunks = buf.chunks_mut(SLOT);
        let mut iovs: [IoSliceMut<'_>; BATCH_SIZE] =
            std::array::from_fn(|_| IoSliceMut::new(chunks.next().unwrap_or(&mut [])));
        let mut meta = [RecvMeta::default(); BATCH_SIZE];
        let msgs = self.state.recv(
            UdpSockRef::from(&self.socket),
            &mut iovs[..slots],
            &mut meta[..slots],
        )?;
        self.stats.recv_calls += 1;
        let mut n = 0;
        for (i, m) in meta[..msgs].iter().enumerate() {
            let from = peer_of(m.addr);
            if let (Some(dst), Peer::Ip(a)) = (m.dst_ip, from) {
                if self.local.ip().is_unspecified() {
                    if self.local_ips.len() >= LOCAL_IPS_MAX && !self.local_ips.contains_key(&a) {
                        self.local_ips.clear();
                    }
                    self.local_ips.insert(a, dst.to_canonical());
                }
            }
            n += self.split(m, |offset, len| {
                out.push(Received {
                    from,
                    offset: i * SLOT + offset,
                    len,
                })
            });
        }
        Ok(n)
    }

    /// Fills `staging` with one `recvmmsg` if it is empty, then moves as many
    /// staged datagrams as fit into `buf`.
    fn recv_staged(&mut self, buf: &mut [u8], out: &mut Vec<Received>) -> io::Result<usize> {
        if self.staged.is_empty() {
            let mut staging = std::mem::take(&mut self.staging);
            staging.resize(SLOT * STAGING_SLOTS, 0);
            let mut received = Vec::new();
            let got = self.recv_direct(&mut staging, &mut received);
            self.staging = staging;
            got?;
            self.staged.extend(received);
        }
        let mut offset = 0;
        let mut n = 0;
        while let Some(&Received {
            from,
            offset: start,
            len,
        }) = self.staged.front()
        {
            if len > buf.len() {
                self.staged.pop_front();
                self.stats.truncated += 1;
                continue;
            }
            if offset + len > buf.len() {
                break;
            }
            self.staged.pop_front();
            buf[offset..offset + len].copy_from_slice(&self.staging[start..start + len]);
            out.push(Received { from, offset, len });
            offset += len;
            n += 1;
        }
        Ok(n)
    }

    /// Calls `f(offset, len)` for each datagram of a receive buffer; returns how many.
    fn split(&mut self, m: &RecvMeta, mut f: impl FnMut(usize, usize)) -> usize {
        self.stats.bytes_received += m.len as u64;
        let stride = if m.stride == 0 {
            m.len.max(1)
        } else {
            m.stride
        };
        if m.len == 0 {
            f(0, 0);
            self.stats.datagrams_received += 1;
            return 1;
        }
        let mut n = 0;
        let mut offset = 0;
        while offset < m.len {
            let len = stride.min(m.len - offset);
            f(offset, len);
            offset += len;
            n += 1;
        }
        if n > 1 {
            self.stats.gro_batches += 1;
        }
        self.stats.datagrams_received += n as u64;
        n
    }
}

impl Link for UdpLink {
    fn capabilities(&self) -> Capabilities {
        Capabilities {
            mtu: self.config.max_datagram_size,
            max_segments: 64,
            max_batch_bytes: MAX_UDP_PAYLOAD_V4,
        }
    }

    fn local_peer(&self) -> Peer {
        Peer::Ip(self.local)
    }

    fn framing(&self) -> crate::Framing {
        crate::Framing::Udp
    }

    fn local_ip_for(&self, peer: &Peer) -> Option<IpAddr> {
        match peer {
            Peer::Ip(a) if self.local.ip().is_unspecified() => self.local_ips.get(a).copied(),
            Peer::Ip(_) => Some(self.local.ip()),
            _ => None,
        }
    }

    fn lend(&mut self, memory: std::sync::Arc<dyn crate::LentMemory>) -> bool {
        self.lender.lend(memory)
    }

    fn send(&mut self, transmit: &Transmit, buf: &[u8]) -> io::Result<()> {
        check_transmit(transmit, buf)?;
        let Peer::Ip(destination) = transmit.destination else {
            return Err(io::Error::new(
                io::ErrorKind::InvalidInput,
                "a UDP link sends only to IP peers",
            ));
        };
        let ip = destination.ip();
        let destination = self.kernel_destination(destination);
        let contents = &buf[..transmit.size];
        let segment = transmit
            .segment_size
            .filter(|&s| s < contents.len())
            .unwrap_or(contents.len());
        if let Some(payload) = self.path_payload(ip).filter(|&p| segment > p) {
            // Too big for the path: one datagram per sendmsg, so that the kernel
            // fragments them (or refuses them one by one) and GSO stays usable.
            let oversize = contents.chunks(segment).filter(|d| d.len() > payload);
            let n = oversize.count() as u64;
            self.note_oversize(ip, segment, payload, n);
            for datagram in contents.chunks(segment) {
                self.send_one(destination, datagram)?;
            }
            return Ok(());
        }
        if segment == contents.len() {
            return self.send_one(destination, contents);
        }

        let gso = self
            .state
            .max_gso_segments()
            .min(MAX_UDP_PAYLOAD_V4 / segment);
        if gso <= 1 {
            for datagram in contents.chunks(segment) {
                self.send_one(destination, datagram)?;
            }
            return Ok(());
        }
        for batch in contents.chunks(gso * segment) {
            if batch.len() <= segment {
                self.send_one(destination, batch)?;
                continue;
            }
            if self.send_lent(destination, batch, segment) {
                continue;
            }
            match self.send_raw(destination, batch, Some(segment)) {
                Ok(()) => {}
                Err(e) if matches!(e.raw_os_error(), Some(libc::EIO | libc::EINVAL)) => {
                    // quinn-udp has already stopped offering GSO; resend one by one.
                    tracing::debug!(error = %e, "GSO send failed; falling back to single datagrams");
                    self.stats.gso_fallbacks += 1;
                    self.path_payloads.remove(&ip);
                    if self.path_payload(ip).is_some_and(|p| segment > p) {
                        // The path shrank under us (a lower path MTU learned since the
                        // last look): GSO itself works, so take it back.
                        self.state = UdpSocketState::new(UdpSockRef::from(&self.socket))?;
                        if self.config.fragment {
                            allow_fragmentation(&self.socket, self.ipv6)?;
                        }
                    }
                    for datagram in batch.chunks(segment) {
                        self.send_one(destination, datagram)?;
                    }
                }
                Err(e) => self.absorb_send_error(e, batch.len().div_ceil(segment) as u64)?,
            }
        }
        Ok(())
    }

    fn recv(
        &mut self,
        buf: &mut [u8],
        out: &mut Vec<Received>,
        timeout: Option<Duration>,
    ) -> io::Result<usize> {
        let deadline = timeout.map(|t| std::time::Instant::now() + t);
        loop {
            let got = if buf.len() >= SLOT && self.staged.is_empty() {
                self.recv_direct(buf, out)
            } else {
                self.recv_staged(buf, out)
            };
            match got {
                Ok(0) => {}
                Ok(n) => return Ok(n),
                Err(e)
                    if e.kind() == io::ErrorKind::WouldBlock
                        || e.kind() == io::ErrorKind::Interrupted => {}
                // ICMP errors surfaced on the socket say nothing about what is queued.
                Err(e)
                    if matches!(
                        e.raw_os_error(),
                        Some(libc::ECONNREFUSED | libc::ECONNRESET)
                    ) => {}
                Err(e) => return Err(e),
            }
            let left = match deadline {
                None => None,
                Some(d) => {
                    let left = d.saturating_duration_since(std::time::Instant::now());
                    if left.is_zero() {
                        return Ok(0);
                    }
                    Some(left)
                }
            };
            poll_fd(self.socket.as_raw_fd(), libc::POLLIN, left)?;
        }
    }
}

/// The peer a kernel source address stands for (v4-mapped addresses become IPv4).
fn peer_of(addr: SocketAddr) -> Peer {
    match addr {
        SocketAddr::V6(v6) => match v6.ip().to_ipv4_mapped() {
            Some(v4) => Peer::Ip(SocketAddr::new(IpAddr::V4(v4), v6.port())),
            None => Peer::Ip(addr),
        },
        v4 => Peer::Ip(v4),
    }
}

/// Asks for `bytes` of send and receive buffer, forcing past the sysctl limits when permitted.
/// Sets the socket back to a plain socket's path-MTU behaviour (quinn-udp sets DF
/// on everything): datagrams that fit carry DF, larger ones are fragmented.
#[cfg(any(target_os = "linux", target_os = "android"))]
fn allow_fragmentation(socket: &impl AsRawFd, ipv6: bool) -> io::Result<()> {
    let fd = socket.as_raw_fd();
    setsockopt_int(
        fd,
        libc::IPPROTO_IP,
        libc::IP_MTU_DISCOVER,
        libc::IP_PMTUDISC_WANT,
    )?;
    if ipv6 {
        setsockopt_int(
            fd,
            libc::IPPROTO_IPV6,
            libc::IPV6_MTU_DISCOVER,
            libc::IPV6_PMTUDISC_WANT,
        )?;
        setsockopt_int(fd, libc::IPPROTO_IPV6, libc::IPV6_DONTFRAG, 0)?;
    }
    Ok(())
}

#[cfg(not(any(target_os = "linux", target_os = "android")))]
fn allow_fragmentation(_: &impl AsRawFd, _: bool) -> io::Result<()> {
    Ok(())
}

#[cfg(any(target_os = "linux", target_os = "android"))]
fn setsockopt_int(
    fd: std::os::fd::RawFd,
    level: libc::c_int,
    name: libc::c_int,
    value: libc::c_int,
) -> io::Result<()> {
    // SAFETY: `fd` is a live socket; the value is a c_int passed with its size.
    let r = unsafe {
        libc::setsockopt(
            fd,
            level,
            name,
            (&value as *const libc::c_int).cast(),
            std::mem::size_of::<libc::c_int>() as libc::socklen_t,
        )
    };
    if r == 0 {
        Ok(())
    } else {
        Err(io::Error::last_os_error())
    }
}

/// The MTU of the route to `ip` (the path MTU the kernel knows), read from a UDP
/// socket connected to it (connecting sends nothing); `None` if there is no route.
#[cfg(any(target_os = "linux", target_os = "android"))]
fn route_mtu(ip: IpAddr) -> Option<usize> {
    let ip = ip.to_canonical();
    let addr = SocketAddr::new(ip, 9);
    let probe = Socket::new(Domain::for_address(addr), Type::DGRAM, Some(Protocol::UDP)).ok()?;
    probe.connect(&addr.into()).ok()?;
    let (level, name) = if ip.is_ipv4() {
        (libc::IPPROTO_IP, libc::IP_MTU)
    } else {
        (libc::IPPROTO_IPV6, libc::IPV6_MTU)
    };
    let mut value: libc::c_int = 0;
    let mut len = std::mem::size_of::<libc::c_int>() as libc::socklen_t;
    // SAFETY: `probe` is a live socket; `value` and `len` describe a c_int buffer.
    let r = unsafe {
        libc::getsockopt(
            probe.as_raw_fd(),
            level,
            name,
            (&mut value as *mut libc::c_int).cast(),
            &mut len,
        )
    };
    (r == 0 && value > 0).then_some(value as usize)
}

#[cfg(not(any(target_os = "linux", target_os = "android")))]
fn route_mtu(_: IpAddr) -> Option<usize> {
    None
}

fn set_buffers(socket: &Socket, bytes: usize) -> BufferSizes {
    let recv_forced = force_buffer(socket, ForceOption::Recv, bytes);
    if !recv_forced {
        let _ = socket.set_recv_buffer_size(bytes);
    }
    let send_forced = force_buffer(socket, ForceOption::Send, bytes);
    if !send_forced {
        let _ = socket.set_send_buffer_size(bytes);
    }
    BufferSizes {
        recv: socket.recv_buffer_size().unwrap_or(0),
        send: socket.send_buffer_size().unwrap_or(0),
        recv_forced,
        send_forced,
    }
}

enum ForceOption {
    Recv,
    Send,
}

#[cfg(any(target_os = "linux", target_os = "android"))]
fn force_buffer(socket: &Socket, which: ForceOption, bytes: usize) -> bool {
    let name = match which {
        ForceOption::Recv => libc::SO_RCVBUFFORCE,
        ForceOption::Send => libc::SO_SNDBUFFORCE,
    };
    let value = bytes.min(libc::c_int::MAX as usize) as libc::c_int;
    // SAFETY: the fd is a live socket owned by `socket`; the option value is a
    // c_int whose address and size are passed together.
    let r = unsafe {
        libc::setsockopt(
            socket.as_raw_fd(),
            libc::SOL_SOCKET,
            name,
            (&value as *const libc::c_int).cast(),
            std::mem::size_of::<libc::c_int>() as libc::socklen_t,
        )
    };
    r == 0
}

#[cfg(not(any(target_os = "linux", target_os = "android")))]
fn force_buffer(_: &Socket, _: ForceOption, _: usize) -> bool {
    false
}

#[cfg(test)]
mod tests {
    use std::net::{Ipv4Addr, Ipv6Addr};

    use super::*;
    use crate::lend::tests::Mapped;

    fn has_ipv6_loopback() -> bool {
        std::fs::read_to_string("/proc/net/if_inet6")
            .map(|s| {
                s.lines()
                    .any(|l| l.starts_with("00000000000000000000000000000001"))
            })
            .unwrap_or(false)
    }

    fn v4() -> SocketAddr {
        (Ipv4Addr::LOCALHOST, 0).into()
    }

    fn v6() -> SocketAddr {
        (Ipv6Addr::LOCALHOST, 0).into()
    }

    /// Receives until `n` datagrams arrived (or 5 s passed), through a buffer of `buf_len`.
    fn recv_n(link: &mut UdpLink, n: usize, buf_len: usize) -> Vec<(Peer, Vec<u8>)> {
        let mut buf = vec![0; buf_len];
        let mut got = Vec::new();
        let deadline = std::time::Instant::now() + Duration::from_secs(5);
        while got.len() < n && std::time::Instant::now() < deadline {
            let mut meta = Vec::new();
            let k = link
                .recv(&mut buf, &mut meta, Some(Duration::from_millis(500)))
                .unwrap();
            assert_eq!(k, meta.len());
            got.extend(
                meta.iter()
                    .map(|r| (r.from, buf[r.offset..r.offset + r.len].to_vec())),
            );
        }
        got
    }

    fn send(link: &mut UdpLink, to: SocketAddr, buf: &[u8], segment_size: Option<usize>) {
        let transmit = Transmit {
            destination: Peer::Ip(to),
            size: buf.len(),
            segment_size,
        };
        link.send(&transmit, buf).unwrap();
    }

    /// 64 datagrams of 1240 bytes, each tagged with its index.
    fn batch() -> Vec<u8> {
        let mut buf = vec![0; 64 * 1240];
        for (i, d) in buf.chunks_mut(1240).enumerate() {
            for (j, b) in d.iter_mut().enumerate() {
                *b = (i * 7 + j) as u8;
            }
            d[..4].copy_from_slice(&(i as u32).to_be_bytes());
        }
        buf
    }

    fn roundtrip(addr: SocketAddr) {
        let mut a = UdpLink::bind(addr).unwrap();
        let mut b = UdpLink::bind(addr).unwrap();
        eprintln!(
            "{addr}: gso {} gro {} buffers {:?} mtu {}",
            a.max_gso_segments(),
            a.gro_segments(),
            a.buffer_sizes(),
            a.capabilities().mtu
        );
        assert_eq!(a.local_peer(), Peer::Ip(a.local_addr()));
        let (pa, pb) = (a.local_addr(), b.local_addr());

        // GSO batch: 64 × 1240, received through a large and a small buffer.
        let buf = batch();
        for buf_len in [b.recommended_recv_buffer_len(), 2048] {
            send(&mut a, pb, &buf, Some(1240));
            let got = recv_n(&mut b, 64, buf_len);
            assert_eq!(got.len(), 64);
            for (i, (from, bytes)) in got.iter().enumerate() {
                assert_eq!(*from, Peer::Ip(pa));
                assert_eq!(&bytes[..], &buf[i * 1240..(i + 1) * 1240], "datagram {i}");
            }
        }
        let stats = a.stats();
        assert_eq!(stats.datagrams_sent, 128);
        if a.max_gso_segments() > 1 {
            // 52 datagrams fit in one 65507-byte GSO send.
            assert_eq!(stats.gso_batches, 4, "{stats:?}");
        }
        eprintln!("{addr}: sender {stats:?}\nreceiver {:?}", b.stats());

        // A batch as large as the link says one send carries goes out in one call
        // (what an exposer fitted to the link, `ExposerConfig::for_link`, relies on).
        let fits = a.capabilities().max_batch_bytes / 1240;
        assert_eq!(fits, 52);
        let calls = a.stats().send_calls;
        send(&mut a, pb, &buf[..fits * 1240], Some(1240));
        assert_eq!(recv_n(&mut b, fits, 1 << 16).len(), fits);
        let gso = a.max_gso_segments();
        assert_eq!(
            a.stats().send_calls - calls,
            fits.div_ceil(gso.min(fits)) as u64,
            "GSO of {gso} segments"
        );

        // A batch with a short tail, and the extremes of datagram size, in reverse.
        send(&mut b, pa, &buf[..1240 * 3 + 17], Some(1240));
        let got = recv_n(&mut a, 4, 1 << 16);
        assert_eq!(
            got.iter().map(|(_, d)| d.len()).collect::<Vec<_>>(),
            [1240, 1240, 1240, 17]
        );
        let big: Vec<u8> = (0..65_000u32).map(|i| (i % 251) as u8).collect();
        send(&mut b, pa, &[0x42], None);
        send(&mut b, pa, &big, None);
        let got = recv_n(&mut a, 2, 1 << 16);
        assert_eq!(got, vec![(Peer::Ip(pb), vec![0x42]), (Peer::Ip(pb), big)]);

        // Non-IP peers are refused.
        let t = Transmit {
            destination: Peer::Mem(1),
            size: 1,
            segment_size: None,
        };
        assert_eq!(
            a.send(&t, &[0]).unwrap_err().kind(),
            io::ErrorKind::InvalidInput
        );
    }

    #[test]
    fn test_loopback_v4() {
        roundtrip(v4());
    }

    #[test]
    fn test_loopback_v6() {
        if !has_ipv6_loopback() {
            eprintln!("skipping: no IPv6 loopback in /proc/net/if_inet6");
            return;
        }
        roundtrip(v6());
    }

    #[test]
    fn test_dual_stack() {
        if !has_ipv6_loopback() {
            eprintln!("skipping: no IPv6 loopback in /proc/net/if_inet6");
            return;
        }
        let mut any = UdpLink::bind((Ipv6Addr::UNSPECIFIED, 0).into()).unwrap();
        let mut a = UdpLink::bind(v4()).unwrap();
        let to_any = SocketAddr::from((Ipv4Addr::LOCALHOST, any.local_addr().port()));
        send(&mut a, to_any, b"hello", None);
        let got = recv_n(&mut any, 1, 1 << 16);
        // The v4-mapped source comes back as a plain IPv4 peer, and answers reach it.
        assert_eq!(got, vec![(Peer::Ip(a.local_addr()), b"hello".to_vec())]);
        send(&mut any, a.local_addr(), b"back", None);
        assert_eq!(
            recv_n(&mut a, 1, 1 << 16),
            vec![(Peer::Ip(to_any), b"back".to_vec())]
        );
    }

    /// A batch within lent memory leaves from its pages (one GSO send of 52
    /// datagrams; the 12-datagram tail, under 16 KiB, is copied), byte-exact and in
    /// order; the same bytes from the heap are copied. Over IPv4, IPv6 and to an
    /// IPv4 peer from a dual-stack socket (v4-mapped destination).
    fn lent_roundtrip(from: SocketAddr, to: SocketAddr) {
        let mut a = UdpLink::bind(from).unwrap();
        let mut b = UdpLink::bind(to).unwrap();
        if a.max_gso_segments() < 52 {
            eprintln!("skipping: no GSO here");
            return;
        }
        let buf = batch();
        let lent = Mapped::with(&buf);
        assert!(a.lend(lent.clone()));
        let pb = SocketAddr::new(to.ip(), b.local_addr().port());
        for round in 0..3 {
            send(&mut a, pb, &lent.0, Some(1240));
            let got = recv_n(&mut b, 64, 1 << 16);
            assert_eq!(got.len(), 64, "round {round}");
            for (i, (_, bytes)) in got.iter().enumerate() {
                assert_eq!(&bytes[..], &buf[i * 1240..(i + 1) * 1240], "datagram {i}");
            }
        }
        let s = a.stats();
        assert_eq!((s.lent_batches, s.gso_batches, s.lend_fallbacks), (3, 6, 0));
        assert_eq!(s.datagrams_sent, 3 * 64);
        assert_eq!(s.bytes_sent, 3 * buf.len() as u64);
        // The same bytes elsewhere are not lent.
        send(&mut a, pb, &buf, Some(1240));
        assert_eq!(recv_n(&mut b, 64, 1 << 16).len(), 64);
        assert_eq!(a.stats().lent_batches, 3);
        // Nor is a lent batch sent one datagram at a time.
        send(&mut a, pb, &lent.0[..1240], None);
        assert_eq!(recv_n(&mut b, 1, 1 << 16)[0].1, buf[..1240]);
        assert_eq!(a.stats().lent_batches, 3);
    }

    #[test]
    fn lent_batches_leave_from_the_lent_pages_v4() {
        lent_roundtrip(v4(), v4());
    }

    #[test]
    fn lent_batches_leave_from_the_lent_pages_v6() {
        if !has_ipv6_loopback() {
            eprintln!("skipping: no IPv6 loopback in /proc/net/if_inet6");
            return;
        }
        lent_roundtrip(v6(), v6());
        lent_roundtrip((Ipv6Addr::UNSPECIFIED, 0).into(), v4());
    }

    #[test]
    fn test_recv_timeout() {
        let mut a = UdpLink::bind(v4()).unwrap();
        let mut buf = vec![0; 1 << 16];
        let mut out = Vec::new();
        assert_eq!(a.recv(&mut buf, &mut out, Some(Duration::ZERO)).unwrap(), 0);
        let timeout = Duration::from_millis(200);
        let start = std::time::Instant::now();
        assert_eq!(a.recv(&mut buf, &mut out, Some(timeout)).unwrap(), 0);
        let elapsed = start.elapsed();
        assert!(out.is_empty());
        assert!(elapsed >= timeout, "{elapsed:?}");
        // Loose upper bound (2× plus scheduling slack): only catches a recv that ignores its timeout.
        assert!(
            elapsed < timeout * 2 + Duration::from_millis(300),
            "{elapsed:?}"
        );
    }
}
