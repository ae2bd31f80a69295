//! Black-box UDP probing of an exposer, and packet builders.

use std::io;
use std::net::{SocketAddr, UdpSocket};
use std::os::fd::AsRawFd;
use std::time::{Duration, Instant};

use rgtp_wire::{
    ExposureId, IndexList, Keepalive, Manifest, Nak, NakFlags, PullFlags, PullRequest, RateReport,
    Repr, Token,
};

/// Largest UDP payload.
pub const MAX_UDP: usize = 65_507;

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

/// One UDP socket connected to the exposer: one puller address.
pub struct Probe {
    sock: UdpSocket,
    /// The exposure probed.
    pub id: ExposureId,
    /// How long silence must last to count as "no answer".
    pub quiet: Duration,
    /// Token from the last Manifest, if any.
    pub token: Option<Token>,
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

impl Probe {
    /// A fresh socket (a new puller address) connected to `addr`.
    pub fn new(addr: SocketAddr, id: ExposureId, quiet: Duration) -> io::Result<Probe> {
        let bind: SocketAddr = match addr {
            SocketAddr::V4(_) => "0.0.0.0:0".parse().expect("literal"),
            SocketAddr::V6(_) => "[::]:0".parse().expect("literal"),
        };
        let sock = UdpSocket::bind(bind)?;
        grow_recv_buffer(&sock, 16 << 20);
        sock.connect(addr)?;
        Ok(Probe {
            sock,
            id,
            quiet,
            token: None,
        })
    }

    /// This probe's local address.
    pub fn local_addr(&self) -> SocketAddr {
        self.sock.local_addr().expect("bound")
    }

    /// Sends one datagram (errors such as ICMP unreachable are ignored: silence is checked).
    pub fn send(&self, d: &[u8]) {
        let _ = self.sock.send(d);
    }

    /// Receives until nothing arrived for `quiet` after the last datagram (or `first` before
    /// the first), or `max` datagrams arrived.
    pub fn collect(&self, first: Duration, quiet: Duration, max: usize) -> Answers {
        let mut out = Answers::default();
        let mut buf = vec![0u8; MAX_UDP + 1];
        let mut deadline = Instant::now() + first;
        while out.datagrams.len() < max {
            let now = Instant::now();
            if now >= deadline {
                break;
            }
            let _ = self
                .sock
                .set_read_timeout(Some((deadline - now).max(Duration::from_millis(1))));
            match self.sock.recv(&mut buf) {
                Ok(n) => {
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

    /// Sends a Pull_Request (versions 1..1) and waits for a Manifest, retrying; adopts its token.
    pub fn handshake(&mut self, flags: PullFlags) -> Result<(Manifest, Vec<u8>), String> {
        let pr = pull_request(self.id, flags, 1, 1);
        for _ in 0..4 {
            self.send(&pr);
            let a = self.collect(
                Duration::from_millis(700),
                self.quiet.min(Duration::from_millis(100)),
                8,
            );
            for d in &a.datagrams {
                if let Ok(Repr::Manifest(m)) = Repr::parse(d, MAX_UDP) {
                    if m.exposure_id == self.id {
                        if m.token.is_some() {
                            self.token = m.token;
                        }
                        return Ok((m, d.clone()));
                    }
                }
            }
        }
        Err("no Manifest answered a valid Pull_Request (versions 1..1) within 2.8 s".into())
    }

    /// Sends a NAK for `entries` (with this probe's token, if any) and collects answers until
    /// `expect` arrived or the line went quiet.
    pub fn request(&self, entries: &[u32], flags: NakFlags, expect: usize) -> Answers {
        self.send(&nak(self.id, entries, flags, self.token));
        self.collect(Duration::from_millis(1000), self.quiet, expect)
    }

    /// Checks the exposer still answers a Pull_Request (it keeps serving).
    pub fn alive(&self) -> Result<(), String> {
        let pr = pull_request(self.id, PullFlags::empty(), 1, 1);
        for _ in 0..3 {
            self.send(&pr);
            let a = self.collect(Duration::from_millis(700), Duration::from_millis(50), 4);
            if a.datagrams
                .iter()
                .any(|d| matches!(Repr::parse(d, MAX_UDP), Ok(Repr::Manifest(_))))
            {
                return Ok(());
            }
        }
        Err("the exposer stopped answering Pull_Requests afterwards".into())
    }
}
