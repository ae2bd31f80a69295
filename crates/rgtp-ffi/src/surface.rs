//! Handles and the drivers behind them: an exposer served by `rgtp_poll`, a puller
//! driven by `rgtp_pull_next` (or `rgtp_poll`).

use std::collections::VecDeque;
use std::ffi::c_int;
use std::net::{Ipv4Addr, SocketAddr};
use std::sync::atomic::AtomicU64;
use std::sync::{Mutex, MutexGuard};
use std::time::Duration;

use redgiant_base::driver::{Application, Driver, DriverConfig, Turn};
use rgtp::driver::{Clock, ServeApp};
use rgtp::{DynSuite, ExposerBuilder, FecSpec};
use rgtp_link::udp::UdpLink;
use rgtp_link::Link;
use rgtp_proto::cc::Controller;
use rgtp_proto::puller::{Delivered, PullError};
use rgtp_proto::{
    CipherId, Exposer, ExposerConfig, HashId, Key, Peer, Puller, PullerConfig, PullerEvent,
};

use crate::abi::*;

pub(crate) const SOCKET_MAGIC: u64 = 0x5247_5450_534f_434b; // "RGTPSOCK"
pub(crate) const SURFACE_MAGIC: u64 = 0x5247_5450_5355_5246; // "RGTPSURF"

/// Default port for exposers without a configured one (the published CLI's).
const DEFAULT_PORT: u16 = 9000;
/// Default handshake wait of `rgtp_pull_start*`.
const DEFAULT_HANDSHAKE: Duration = Duration::from_millis(5000);
/// Default wait without progress of `rgtp_pull_next`.
const DEFAULT_IDLE: Duration = Duration::from_millis(10_000);
/// "Infinite" for the core's timers (a century; far from overflowing its clock).
const FOREVER: Duration = Duration::from_secs(100 * 365 * 86_400);
/// Longest single wait inside a driving loop, so snapshots stay fresh.
const SLICE: Duration = Duration::from_millis(50);

/// A socket: the configuration later surfaces inherit. The UDP socket itself is bound
/// lazily by each surface, which owns it.
#[repr(C)]
pub(crate) struct Socket {
    pub(crate) magic: AtomicU64,
    pub(crate) config: Option<rgtp_config_t>,
    /// The congestion controller of pulls started from now on.
    pub(crate) congestion: Mutex<Controller>,
}

#[derive(Clone, Copy, PartialEq, Eq)]
pub(crate) enum Kind {
    Exposer,
    Puller,
}

/// What `rgtp_get_stats`, `rgtp_get_latency_stats` and `rgtp_progress` read: refreshed
/// by whoever drives the surface, so these calls never wait for a running poll.
#[derive(Clone, Copy, Default)]
pub(crate) struct Snapshot {
    pub(crate) stats: rgtp_stats_t,
    pub(crate) latency: rgtp_latency_stats_t,
    pub(crate) progress: f32,
}

/// A surface handle. `magic` must stay the first field (checked before any other access).
#[repr(C)]
pub(crate) struct Surface {
    pub(crate) magic: AtomicU64,
    pub(crate) kind: Kind,
    pub(crate) exposure_id: [u8; 16],
    /// The exposure key; zeroized when the surface is dropped.
    pub(crate) key: Key,
    /// Exposer: the address written into tickets, and the suite pins.
    pub(crate) ticket_addr: Option<(String, u16, CipherId, HashId)>,
    /// Total size, chunk size and chunk count (the Manifest's), known at creation.
    pub(crate) shape: (u64, u32, u32),
    pub(crate) snapshot: Mutex<Snapshot>,
    pub(crate) state: Mutex<State>,
}

pub(crate) enum State {
    Exposer(Box<ExposerState>),
    Puller(Box<PullerState>),
}

pub(crate) fn lock<T>(m: &Mutex<T>) -> Result<MutexGuard<'_, T>, c_int> {
    m.lock().map_err(|_| RGTP_ERR_INTERNAL)
}

/// Settings resolved from a config (or NULL) and the environment.
pub(crate) struct Resolved {
    pub(crate) cfg: rgtp_config_t,
    pub(crate) null: bool,
}

impl Resolved {
    pub(crate) fn new(cfg: Option<rgtp_config_t>) -> Result<Self, c_int> {
        let null = cfg.is_none();
        let cfg = cfg.unwrap_or(rgtp_config_t {
            chunk_size: 0,
            window_size: 0,
            fec_enabled: 0,
            fec_k: 0,
            fec_n: 0,
            merkle_proofs: 0,
            raw_ethernet: 0,
            eth_iface: [0; 16],
            eth_vlan_id: 0,
            eth_vlan_pcp: 0,
            port: 0,
            timeout_ms: 0,
            memory_profile: 0,
            allocator: rgtp_allocator_t {
                alloc: None,
                free: None,
                ctx: std::ptr::null_mut(),
            },
        });
        if cfg.raw_ethernet != 0 {
            return Err(RGTP_ERR_NOT_SUPPORTED);
        }
        if cfg.allocator.alloc.is_some() || cfg.allocator.free.is_some() {
            return Err(RGTP_ERR_NOT_SUPPORTED);
        }
        if cfg.memory_profile > RGTP_MEMORY_PROFILE_MINIMAL || cfg.timeout_ms < -1 {
            return Err(RGTP_ERR_INVALID_ARG);
        }
        Ok(Resolved { cfg, null })
    }

    fn timeout(&self, default: Duration) -> Duration {
        match self.cfg.timeout_ms {
            0 => default,
            -1 => FOREVER,
            ms => Duration::from_millis(ms as u64),
        }
    }
}

/// `RGTP_KEY`, if set: 64 hex digits.
pub(crate) fn env_key() -> Result<Option<Key>, c_int> {
    let Ok(s) = std::env::var("RGTP_KEY") else {
        return Ok(None);
    };
    let mut k = zeroize::Zeroizing::new([0u8; 32]);
    hex::decode_to_slice(s.trim(), &mut k[..]).map_err(|_| RGTP_ERR_INVALID_ARG)?;
    let key = Key::from_bytes(*k);
    let mut s = s;
    zeroize::Zeroize::zeroize(&mut s);
    Ok(Some(key))
}

fn env_port() -> Result<u16, c_int> {
    match std::env::var("RGTP_PORT") {
        Ok(s) => s.trim().parse().map_err(|_| RGTP_ERR_INVALID_ARG),
        Err(_) => Ok(DEFAULT_PORT),
    }
}

/// `RGTP_DANGEROUS_RAW_KEY`: `1` seals under the key itself (spec §14.2), unset,
/// empty or `0` under the key derived from it and the Exposure_ID.
fn env_raw_key() -> Result<bool, c_int> {
    match std::env::var("RGTP_DANGEROUS_RAW_KEY").as_deref() {
        Err(_) | Ok("") | Ok("0") => Ok(false),
        Ok("1") => Ok(true),
        Ok(_) => Err(RGTP_ERR_INVALID_ARG),
    }
}

fn env_suite() -> Result<(CipherId, HashId), c_int> {
    match std::env::var("RGTP_CRYPTO_BACKEND").as_deref() {
        Err(_) | Ok("") | Ok("libsodium") => Ok((CipherId::ChaCha20Poly1305, HashId::Blake2b256)),
        Ok("openssl") => Ok((CipherId::Aes256Gcm, HashId::Sha256)),
        Ok(_) => Err(RGTP_ERR_CRYPTO_INIT),
    }
}

fn stats_u32(v: u64) -> u32 {
    v.min(u64::from(u32::MAX)) as u32
}

fn latency_of(l: &rgtp_proto::latency::Latency) -> rgtp_latency_stats_t {
    rgtp_latency_stats_t {
        mean_us: stats_u32(l.mean()),
        jitter_us: stats_u32(l.jitter()),
        p99_us: stats_u32(l.quantile(0.99)),
        min_us: stats_u32(l.min()),
        max_us: stats_u32(l.max()),
        sample_count: stats_u32(l.count()),
    }
}

/// An exposer and the driver of its UDP socket.
pub(crate) struct ExposerState {
    exposer: Exposer,
    driver: Driver<UdpLink>,
}

/// The one driver over a surface's socket, its receive buffer sized for the socket.
fn driver_for(link: UdpLink) -> Driver<UdpLink> {
    let config = DriverConfig {
        recv_buffer: link.recommended_recv_buffer_len(),
        ..DriverConfig::default()
    };
    Driver::with_clock(link, Clock::new(), config)
}

/// Builds an exposer surface (the `rgtp_expose` body after argument checks).
pub(crate) fn expose(
    r: &Resolved,
    data: &[u8],
    given_key: Option<Key>,
) -> Result<Box<Surface>, c_int> {
    let key = match given_key {
        Some(k) => Some(k),
        None if r.null => env_key()?,
        None => None,
    };
    let port = if r.cfg.port != 0 {
        r.cfg.port
    } else {
        env_port()?
    };
    let (cipher, hash) = env_suite()?;
    let raw_key = env_raw_key()?;
    let fec = if r.cfg.fec_enabled != 0 {
        let n = if r.cfg.fec_n == 0 { 255 } else { r.cfg.fec_n };
        let k = if r.cfg.fec_k == 0 { 223 } else { r.cfg.fec_k };
        FecSpec::ReedSolomon { n, k }
    } else {
        FecSpec::None
    };
    let chunk_size = if r.cfg.chunk_size == 0 {
        rgtp::builder::DEFAULT_CHUNK_SIZE
    } else {
        r.cfg.chunk_size
    };
    // Dual-stack where the host has IPv6, so IPv4 and IPv6 pullers both reach it;
    // IPv4 only where it has not.
    let mut link = UdpLink::bind(SocketAddr::new(
        std::net::Ipv6Addr::UNSPECIFIED.into(),
        port,
    ))
    .or_else(|_| UdpLink::bind(SocketAddr::new(Ipv4Addr::UNSPECIFIED.into(), port)))
    .map_err(|e| {
        tracing::error!(target: "rgtp_ffi", port, error = %e, "cannot bind the exposer socket");
        RGTP_ERR_SOCKET
    })?;
    let caps = link.capabilities();
    let config = ExposerConfig::for_link(&caps);
    let mut b = ExposerBuilder::new()
        .with_cipher(cipher)
        .with_hash(hash)
        .with_fec(fec)
        .with_proofs(r.cfg.merkle_proofs != 0)
        .with_chunk_size(chunk_size)
        .with_config(config);
    if let Some(k) = key {
        b = b.with_key(k);
    }
    if raw_key {
        b = b.dangerous_raw_key();
    }
    let prepared = b.expose(data).map_err(|e| {
        tracing::error!(target: "rgtp_ffi", error = %e, "cannot prepare the exposure");
        match e {
            rgtp::StartError::Alloc(..) => RGTP_ERR_NOMEM,
            _ => RGTP_ERR_INVALID_ARG,
        }
    })?;
    let exposer = prepared.exposer();
    // Batches of chunks leave from the sealed store's own pages, as `rgtp expose` sends them.
    if let Some(store) = prepared.lent_store() {
        link.lend(store);
    }
    let rgtp::Prepared { exposure, key, .. } = prepared;
    let local = link.local_addr();
    let host = if local.ip().is_unspecified() {
        Ipv4Addr::LOCALHOST.to_string()
    } else {
        rgtp::ticket::host_of(&local)
    };
    let id = *exposure.id();
    let shape = (
        exposure.total_size(),
        exposure.chunk_size(),
        exposure.chunk_count(),
    );
    tracing::info!(
        target: "rgtp_ffi",
        kind = "exposer",
        exposure_id = %hex::encode(id),
        port = local.port(),
        chunks = exposure.chunk_count(),
        bytes = exposure.total_size(),
        "surface created"
    );
    let state = ExposerState {
        exposer,
        driver: driver_for(link),
    };
    let snap = state.snapshot();
    Ok(Box::new(Surface {
        magic: AtomicU64::new(SURFACE_MAGIC),
        kind: Kind::Exposer,
        exposure_id: id,
        key,
        ticket_addr: Some((host, local.port(), cipher, hash)),
        shape,
        snapshot: Mutex::new(snap),
        state: Mutex::new(State::Exposer(Box::new(state))),
    }))
}

impl ExposerState {
    fn snapshot(&self) -> Snapshot {
        let s = self.exposer.stats();
        let lat = self.exposer.service_latency();
        Snapshot {
            stats: rgtp_stats_t {
                bytes_sent: s.bytes_out,
                bytes_received: s.bytes_in,
                chunks_sent: stats_u32(s.chunks_sent),
                chunks_received: 0,
                auth_failures: stats_u32(s.bad_token),
                malformed_packets: stats_u32(s.malformed),
                fec_recoveries: 0,
                nak_sent: stats_u32(s.requests),
                packet_loss_rate: 0.0,
                rtt_us: stats_u32(lat.mean()),
                pull_pressure: self.exposer.pull_pressure(),
            },
            latency: latency_of(lat),
            progress: 1.0,
        }
    }

    /// Serves for up to `timeout` (None: until a datagram was handled). True if any was.
    pub(crate) fn poll(
        &mut self,
        timeout: Option<Duration>,
        snap: &Mutex<Snapshot>,
    ) -> Result<bool, c_int> {
        let start = std::time::Instant::now();
        let mut handled = false;
        loop {
            let remaining = timeout.map(|t| t.saturating_sub(start.elapsed()));
            let wait = if handled {
                Duration::ZERO
            } else {
                remaining.map_or(SLICE, |r| r.min(SLICE))
            };
            let turn = self
                .driver
                .turn(&mut self.exposer, &mut ServeApp, wait)
                .map_err(|_| RGTP_ERR_SOCKET)?;
            // Serving never ends by itself: `Turn::Done` holds an uninhabited type.
            let Turn::Continue { received, pending } = turn;
            handled |= received > 0;
            *lock(snap)? = self.snapshot();
            if handled && !pending {
                return Ok(true);
            }
            if remaining.is_some_and(|r| r.is_zero()) {
                return Ok(handled);
            }
        }
    }
}

/// A puller, the driver of its UDP socket, and what it handed out.
pub(crate) struct PullerState {
    puller: Puller<DynSuite>,
    driver: Driver<UdpLink>,
    app: Handout,
    handed: u32,
    wait: Duration,
}

/// The C ABI's application side of a pull: verified chunks wait in `ready`
/// for `rgtp_pull_next`; the end of the pull is noted for the caller.
#[derive(Default)]
struct Handout {
    ready: VecDeque<(u32, Vec<u8>)>,
    chunk_count: Option<u32>,
    complete: bool,
    failed: Option<c_int>,
}

/// A driver error on the puller's socket.
struct SocketError;

impl From<std::io::Error> for SocketError {
    fn from(_: std::io::Error) -> Self {
        SocketError
    }
}

impl Application<Puller<DynSuite>> for Handout {
    type Output = ();
    type Error = SocketError;

    fn deliver(&mut self, d: Delivered<'_>) -> Result<(), SocketError> {
        self.ready.push_back((d.index, d.data.to_vec()));
        Ok(())
    }

    fn event(
        &mut self,
        puller: &mut Puller<DynSuite>,
        ev: PullerEvent,
    ) -> Result<Option<()>, SocketError> {
        match ev {
            PullerEvent::Manifest(info) => {
                self.chunk_count = Some(info.chunk_count);
                tracing::info!(
                    target: "rgtp_ffi",
                    exposure_id = %hex::encode(info.exposure_id),
                    bytes = info.total_size,
                    chunks = info.chunk_count,
                    chunk_size = info.chunk_size,
                    cipher = info.suite.cipher.name(),
                    hash = info.suite.hash.name(),
                    "manifest received"
                );
            }
            PullerEvent::Recovered { index, data, .. } => self.ready.push_back((index, data)),
            // deferred_root is off: the core checks the root itself; and nothing is
            // resumed, so nothing is kept.
            PullerEvent::VerifyRoot | PullerEvent::Kept { .. } => {}
            PullerEvent::Complete => {
                self.complete = true;
                let s = puller.stats();
                tracing::info!(
                    target: "rgtp_ffi",
                    chunks = s.chunks_received,
                    bytes = s.bytes_received,
                    "pull complete"
                );
                return Ok(Some(()));
            }
            PullerEvent::Failed(e) => {
                self.failed = Some(pull_error_code(e));
                tracing::warn!(target: "rgtp_ffi", error = %e, "pull failed");
                return Ok(Some(()));
            }
        }
        Ok(None)
    }
}

/// Where, what and how to pull.
pub(crate) struct PullTarget {
    pub(crate) server: SocketAddr,
    pub(crate) exposure_id: [u8; 16],
    pub(crate) key: Key,
    pub(crate) cipher: Option<CipherId>,
    pub(crate) hash: Option<HashId>,
}

fn pull_error_code(e: PullError) -> c_int {
    match e {
        PullError::HandshakeTimeout | PullError::Timeout => RGTP_ERR_TIMEOUT,
        PullError::BadManifest => RGTP_ERR_NOT_SUPPORTED,
        PullError::AuthFailed => RGTP_ERR_AUTH_FAIL,
        PullError::MerkleFailed => RGTP_ERR_MERKLE_FAIL,
        _ => RGTP_ERR_INTERNAL,
    }
}

/// Starts a pull and waits for the Manifest (the `rgtp_pull_start*` body).
pub(crate) fn pull_start(
    r: &Resolved,
    t: PullTarget,
    congestion: Controller,
) -> Result<Box<Surface>, c_int> {
    let bind: SocketAddr = match t.server {
        SocketAddr::V4(_) => (Ipv4Addr::UNSPECIFIED, 0).into(),
        SocketAddr::V6(_) => (std::net::Ipv6Addr::UNSPECIFIED, 0).into(),
    };
    let link = UdpLink::bind(bind).map_err(|_| RGTP_ERR_SOCKET)?;
    let mut pc = PullerConfig::new(t.exposure_id, Peer::Ip(t.server), t.key.clone());
    pc.expected_cipher = t.cipher;
    pc.expected_hash = t.hash;
    pc.want_proofs = r.cfg.merkle_proofs != 0;
    pc.use_fec = true;
    pc.deferred_root = false;
    pc.congestion = congestion;
    if r.cfg.window_size != 0 {
        pc.max_window = r.cfg.window_size;
        pc.initial_window = pc.initial_window.min(r.cfg.window_size);
    }
    pc.max_payload = pc.max_payload.min(link.capabilities().mtu);
    pc.handshake_timeout = r.timeout(DEFAULT_HANDSHAKE);
    let wait = r.timeout(DEFAULT_IDLE);
    pc.idle_timeout = wait;
    let driver = driver_for(link);
    let puller = Puller::new(pc, DynSuite, driver.clock().now());
    let mut st = Box::new(PullerState {
        puller,
        driver,
        app: Handout::default(),
        handed: 0,
        wait,
    });
    while st.app.chunk_count.is_none() && st.app.failed.is_none() {
        st.step(SLICE)?;
    }
    if let Some(code) = st.app.failed {
        return Err(code);
    }
    tracing::info!(
        target: "rgtp_ffi",
        kind = "puller",
        exposure_id = %hex::encode(t.exposure_id),
        server = %t.server,
        cc = st.puller.congestion().0,
        "surface created"
    );
    let snap = st.snapshot();
    let shape = st
        .puller
        .manifest()
        .map_or((0, 0, 0), |m| (m.total_size, m.chunk_size, m.chunk_count));
    Ok(Box::new(Surface {
        magic: AtomicU64::new(SURFACE_MAGIC),
        kind: Kind::Puller,
        exposure_id: t.exposure_id,
        key: t.key,
        ticket_addr: None,
        shape,
        snapshot: Mutex::new(snap),
        state: Mutex::new(State::Puller(st)),
    }))
}

/// What `rgtp_pull_next` produced.
pub(crate) enum Next {
    Chunk { index: u32, len: usize },
    TooSmall { len: usize },
    End,
}

impl PullerState {
    fn snapshot(&self) -> Snapshot {
        let s = self.puller.stats();
        let progress = match self.app.chunk_count {
            Some(n) if self.app.complete && self.handed >= n => 1.0,
            Some(n) if n > 0 => {
                // Stays below 1.0 until the last chunk is out and the root verified.
                (self.handed as f32 / n as f32).min(f32::from_bits(1.0f32.to_bits() - 1))
            }
            _ => 0.0,
        };
        Snapshot {
            stats: rgtp_stats_t {
                bytes_sent: s.bytes_sent,
                bytes_received: s.bytes_received,
                chunks_sent: 0,
                chunks_received: stats_u32(s.chunks_received),
                auth_failures: stats_u32(s.auth_failures),
                malformed_packets: stats_u32(s.malformed),
                fec_recoveries: stats_u32(s.fec_recoveries),
                nak_sent: stats_u32(s.naks_sent),
                packet_loss_rate: s.loss_rate as f32,
                rtt_us: stats_u32(s.srtt_us),
                pull_pressure: s.window,
            },
            latency: latency_of(self.puller.latency()),
            progress,
        }
    }

    /// One turn of the driver: send what is due, wait up to `max_wait` for
    /// datagrams, handle them and the timers. Returns whether any datagram arrived.
    fn step(&mut self, max_wait: Duration) -> Result<bool, c_int> {
        if self.app.complete || self.app.failed.is_some() {
            return Ok(false);
        }
        match self.driver.turn(&mut self.puller, &mut self.app, max_wait) {
            Ok(Turn::Continue { received, .. }) => Ok(received > 0),
            Ok(Turn::Done(())) => Ok(false),
            Err(SocketError) => Err(RGTP_ERR_SOCKET),
        }
    }

    /// `rgtp_poll` on a puller: drives for up to `timeout`.
    pub(crate) fn poll(
        &mut self,
        timeout: Option<Duration>,
        snap: &Mutex<Snapshot>,
    ) -> Result<bool, c_int> {
        let start = std::time::Instant::now();
        let mut got = false;
        loop {
            if let Some(code) = self.app.failed {
                *lock(snap)? = self.snapshot();
                return Err(code);
            }
            if self.app.complete {
                break;
            }
            let remaining = timeout.map(|t| t.saturating_sub(start.elapsed()));
            got |= self.step(remaining.map_or(SLICE, |r| r.min(SLICE)))?;
            *lock(snap)? = self.snapshot();
            if remaining.is_some_and(|r| r.is_zero()) || (got && timeout.is_none()) {
                break;
            }
        }
        *lock(snap)? = self.snapshot();
        Ok(got)
    }

    /// `rgtp_pull_next`: the next verified chunk, copied into `buf`.
    pub(crate) fn next(&mut self, buf: &mut [u8], snap: &Mutex<Snapshot>) -> Result<Next, c_int> {
        let start = std::time::Instant::now();
        let r = loop {
            if let Some(code) = self.app.failed {
                break Err(code);
            }
            if let Some((index, data)) = self.app.ready.front() {
                let (index, len) = (*index, data.len());
                if buf.len() < len {
                    break Ok(Next::TooSmall { len });
                }
                buf[..len].copy_from_slice(data);
                self.app.ready.pop_front();
                self.handed += 1;
                break Ok(Next::Chunk { index, len });
            }
            if self.app.complete {
                break Ok(Next::End);
            }
            let elapsed = start.elapsed();
            if elapsed >= self.wait {
                break Err(RGTP_ERR_TIMEOUT);
            }
            self.step((self.wait - elapsed).min(SLICE))?;
            *lock(snap)? = self.snapshot();
        };
        *lock(snap)? = self.snapshot();
        r
    }
}
