//! gtUDP through the C ABI: `rgtp_gtudp_*`, a blocking reliable-datagram socket
//! (`redgiant_gtudp::GtudpSocket`) behind an opaque handle. The contract is in
//! `include/rgtp.h`, section "gtUDP".

use std::ffi::{c_char, c_int, CStr};
use std::io;
use std::mem::{offset_of, size_of};
use std::net::{SocketAddr, ToSocketAddrs};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Mutex;
use std::time::Duration;

use redgiant_gtudp::{
    AuthConfig, AuthKey, Config, FailReason, GtudpSocket, Kind, Profile, SendError, Stats,
};

use crate::abi::*;
use crate::surface::lock;
use crate::{guard, magic_of};

/// Tag of a live gtUDP handle ("RGTPGTUD").
const GTUDP_MAGIC: u64 = 0x5247_5450_4754_5544;

/// Room `rgtp_gtudp_recv_from` asks for when it writes the sender's address: enough
/// for "[v6%scope]:port" and its NUL.
pub const RGTP_GTUDP_ADDRSTRLEN: usize = 64;

/// Opaque gtUDP handle as C sees it.
#[repr(C)]
#[allow(non_camel_case_types)]
pub struct rgtp_gtudp_t {
    _opaque: [u8; 0],
}

/// `rgtp_gtudp_options_t`; `size` first, so later versions can grow it.
#[repr(C)]
#[derive(Clone, Copy)]
#[allow(non_camel_case_types)]
pub struct rgtp_gtudp_options_t {
    pub size: usize,
    pub magic: *const u8,
    pub magic_len: usize,
    pub types: *const u8,
    pub types_len: usize,
    pub reference_timers: u8,
    pub key: *const u8,
    pub session: u64,
}

impl Default for rgtp_gtudp_options_t {
    fn default() -> Self {
        rgtp_gtudp_options_t {
            size: size_of::<Self>(),
            magic: std::ptr::null(),
            magic_len: 0,
            types: std::ptr::null(),
            types_len: 0,
            reference_timers: 0,
            key: std::ptr::null(),
            session: 0,
        }
    }
}

/// `rgtp_gtudp_stats_t`; `size` first, as for the options.
#[repr(C)]
#[derive(Clone, Copy, Default, Debug, PartialEq, Eq)]
#[allow(non_camel_case_types)]
pub struct rgtp_gtudp_stats_t {
    pub size: usize,
    pub datagrams_in: u64,
    pub malformed: u64,
    pub delivered: u64,
    pub duplicates: u64,
    pub data_sent: u64,
    pub data_repeated: u64,
    pub recv_sent: u64,
    pub ack_sent: u64,
    pub confirmed: u64,
    pub failed: u64,
    pub auth_failed: u64,
    pub replayed: u64,
    pub dropped: u64,
}

impl rgtp_gtudp_stats_t {
    fn from_stats(s: &Stats, dropped: u64) -> Self {
        rgtp_gtudp_stats_t {
            size: size_of::<Self>(),
            datagrams_in: s.datagrams_in,
            malformed: s.truncated + s.wrong_magic + s.unknown_type + s.trailing_bytes,
            delivered: s.delivered,
            duplicates: s.duplicates,
            data_sent: s.data_sent,
            data_repeated: s.data_repeated,
            recv_sent: s.recv_sent,
            ack_sent: s.ack_sent,
            confirmed: s.confirmed,
            failed: s.failed,
            auth_failed: s.auth_failed,
            replayed: s.replayed,
            dropped,
        }
    }
}

/// A gtUDP handle. `magic` must stay the first field (checked before any other access).
#[repr(C)]
struct Handle {
    magic: AtomicU64,
    /// Largest payload the profile allows.
    max_payload: usize,
    socket: Mutex<GtudpSocket>,
}

/// The handle behind `p`, if it is one.
unsafe fn handle<'a>(p: *const rgtp_gtudp_t) -> Result<&'a Handle, c_int> {
    // SAFETY: header contract: NULL or a pointer this library returned.
    match unsafe { magic_of(p.cast()) } {
        // SAFETY: the magic says this is a live `Handle` allocated by `Box::into_raw`.
        Some(GTUDP_MAGIC) => Ok(unsafe { &*(p as *const Handle) }),
        _ => Err(RGTP_ERR_INVALID_ARG),
    }
}

/// `len` bytes at `p` (which may be NULL when `len` is 0).
unsafe fn bytes<'a>(p: *const u8, len: usize) -> Result<&'a [u8], c_int> {
    if len == 0 {
        return Ok(&[]);
    }
    if p.is_null() || len > isize::MAX as usize {
        return Err(RGTP_ERR_INVALID_ARG);
    }
    // SAFETY: the caller passes `len` readable bytes at `p` (header contract).
    Ok(unsafe { std::slice::from_raw_parts(p, len) })
}

/// The options the caller passed, fields beyond its `size` left at their defaults.
unsafe fn options(p: *const rgtp_gtudp_options_t) -> Result<rgtp_gtudp_options_t, c_int> {
    let mut o = rgtp_gtudp_options_t::default();
    if p.is_null() {
        return Ok(o);
    }
    // SAFETY: the caller passes a readable struct starting with its size.
    let size = unsafe { std::ptr::read_unaligned(p.cast::<usize>()) };
    if size < size_of::<usize>() {
        return Err(RGTP_ERR_INVALID_ARG);
    }
    let n = size.min(size_of::<rgtp_gtudp_options_t>());
    // SAFETY: `size` readable bytes at `p` (header contract); `o` has room for `n`;
    // every field is an integer or a raw pointer, valid for any bit pattern.
    unsafe {
        std::ptr::copy_nonoverlapping(
            p.cast::<u8>(),
            (&mut o as *mut rgtp_gtudp_options_t).cast::<u8>(),
            n,
        )
    };
    let covers = |offset: usize, len: usize| offset + len <= n;
    let d = rgtp_gtudp_options_t::default();
    type O = rgtp_gtudp_options_t;
    if !covers(offset_of!(O, magic), size_of::<*const u8>())
        || !covers(offset_of!(O, magic_len), size_of::<usize>())
    {
        (o.magic, o.magic_len) = (d.magic, d.magic_len);
    }
    if !covers(offset_of!(O, types), size_of::<*const u8>())
        || !covers(offset_of!(O, types_len), size_of::<usize>())
    {
        (o.types, o.types_len) = (d.types, d.types_len);
    }
    if !covers(offset_of!(O, reference_timers), 1) {
        o.reference_timers = d.reference_timers;
    }
    if !covers(offset_of!(O, key), size_of::<*const u8>()) {
        o.key = d.key;
    }
    if !covers(offset_of!(O, session), size_of::<u64>()) {
        o.session = d.session;
    }
    Ok(o)
}

/// A session no earlier run is likely to have used.
fn random_session() -> Result<u64, c_int> {
    loop {
        let mut b = [0u8; 8];
        getrandom::getrandom(&mut b).map_err(|_| RGTP_ERR_INTERNAL)?;
        let s = u64::from_le_bytes(b);
        if s != 0 {
            return Ok(s);
        }
    }
}

/// The endpoint configuration the options describe.
unsafe fn config_of(o: &rgtp_gtudp_options_t) -> Result<Config, c_int> {
    let mut config = if o.reference_timers != 0 {
        Config::reference()
    } else {
        Config::default()
    };
    // SAFETY: header contract: `magic_len` bytes at `magic`, `types_len` at `types`.
    let magic = unsafe { bytes(o.magic, o.magic_len) }?;
    // SAFETY: as above.
    let types = unsafe { bytes(o.types, o.types_len) }?;
    if !magic.is_empty() || !types.is_empty() {
        let reference = Profile::reference();
        let (data, recv, ack) = if types.is_empty() {
            (
                reference.type_code(Kind::Data).to_vec(),
                reference.type_code(Kind::Recv).to_vec(),
                reference.type_code(Kind::Ack).to_vec(),
            )
        } else {
            if types.len() % 3 != 0 {
                return Err(RGTP_ERR_INVALID_ARG);
            }
            let w = types.len() / 3;
            (
                types[..w].to_vec(),
                types[w..2 * w].to_vec(),
                types[2 * w..].to_vec(),
            )
        };
        let profile =
            Profile::new(magic.to_vec(), data, recv, ack).map_err(|_| RGTP_ERR_INVALID_ARG)?;
        config = config.with_profile(profile);
    }
    if !o.key.is_null() {
        let mut key = [0u8; 32];
        // SAFETY: header contract: 32 readable bytes at `key`.
        key.copy_from_slice(unsafe { std::slice::from_raw_parts(o.key, 32) });
        let session = if o.session == 0 {
            random_session()?
        } else {
            o.session
        };
        config = config.with_auth(AuthConfig::new(AuthKey(key), session));
    }
    Ok(config)
}

/// The NUL-terminated string at `p` as UTF-8.
unsafe fn text<'a>(p: *const c_char) -> Result<&'a str, c_int> {
    if p.is_null() {
        return Err(RGTP_ERR_INVALID_ARG);
    }
    // SAFETY: the caller passes a NUL-terminated string (header contract).
    unsafe { CStr::from_ptr(p) }
        .to_str()
        .map_err(|_| RGTP_ERR_INVALID_ARG)
}

/// Resolves "host:port", preferring an address of `family_of`'s family.
fn resolve(s: &str, family_of: SocketAddr) -> Result<SocketAddr, c_int> {
    let all: Vec<SocketAddr> = s
        .to_socket_addrs()
        .map_err(|_| RGTP_ERR_INVALID_ARG)?
        .collect();
    all.iter()
        .find(|a| a.is_ipv4() == family_of.is_ipv4())
        .or(all.first())
        .copied()
        .ok_or(RGTP_ERR_INVALID_ARG)
}

/// Writes `s` and a NUL to `buf` (`len` bytes), or fails without writing.
unsafe fn write_text(s: &str, buf: *mut c_char, len: usize) -> Result<(), c_int> {
    if buf.is_null() || len < s.len() + 1 {
        return Err(RGTP_ERR_INVALID_ARG);
    }
    // SAFETY: `len` writable bytes at `buf` (header contract), and `s.len() + 1 <= len`.
    unsafe {
        std::ptr::copy_nonoverlapping(s.as_ptr(), buf.cast::<u8>(), s.len());
        *buf.add(s.len()) = 0;
    }
    Ok(())
}

fn io_code(e: &io::Error) -> c_int {
    match e.kind() {
        io::ErrorKind::TimedOut | io::ErrorKind::WouldBlock => RGTP_ERR_TIMEOUT,
        _ => RGTP_ERR_SOCKET,
    }
}

/// See rgtp.h.
#[no_mangle]
pub unsafe extern "C" fn rgtp_gtudp_open(
    bind_addr: *const c_char,
    opts: *const rgtp_gtudp_options_t,
    out: *mut *mut rgtp_gtudp_t,
) -> c_int {
    guard(|| {
        if out.is_null() {
            return Err(RGTP_ERR_INVALID_ARG);
        }
        // SAFETY: header contract.
        let addr = unsafe { text(bind_addr) }?;
        // SAFETY: header contract: NULL or a readable options struct.
        let o = unsafe { options(opts) }?;
        // SAFETY: the pointers inside follow the header contract.
        let config = unsafe { config_of(&o) }?;
        let addr: SocketAddr = addr
            .to_socket_addrs()
            .map_err(|_| RGTP_ERR_INVALID_ARG)?
            .next()
            .ok_or(RGTP_ERR_INVALID_ARG)?;
        let max_payload = config.max_payload;
        let socket = GtudpSocket::bind(addr, config).map_err(|_| RGTP_ERR_SOCKET)?;
        let h = Box::new(Handle {
            magic: AtomicU64::new(GTUDP_MAGIC),
            max_payload,
            socket: Mutex::new(socket),
        });
        let raw = Box::into_raw(h);
        // SAFETY: `out` is non-NULL and writable (header contract).
        unsafe { std::ptr::write_unaligned(out, raw.cast()) };
        Ok(())
    })
}

/// See rgtp.h.
#[no_mangle]
pub unsafe extern "C" fn rgtp_gtudp_close(h: *mut rgtp_gtudp_t) {
    let _ = guard(|| {
        // SAFETY: header contract: NULL or a live handle.
        let s = unsafe { handle(h) }?;
        if s.magic.swap(0, Ordering::AcqRel) != GTUDP_MAGIC {
            return Ok(()); // lost a race with another close
        }
        // SAFETY: allocated by `Box::into_raw` in rgtp_gtudp_open; the magic was ours
        // to clear, so this is the only free.
        drop(unsafe { Box::from_raw(h as *mut Handle) });
        Ok(())
    });
}

/// See rgtp.h.
#[no_mangle]
pub unsafe extern "C" fn rgtp_gtudp_local_addr(
    h: *const rgtp_gtudp_t,
    buf: *mut c_char,
    len: usize,
) -> c_int {
    guard(|| {
        // SAFETY: header contract.
        let s = unsafe { handle(h) }?;
        let addr = lock(&s.socket)?.local_addr().to_string();
        // SAFETY: header contract: `len` writable bytes at `buf`.
        unsafe { write_text(&addr, buf, len) }
    })
}

/// See rgtp.h.
#[no_mangle]
pub unsafe extern "C" fn rgtp_gtudp_send_to(
    h: *mut rgtp_gtudp_t,
    data: *const u8,
    len: usize,
    to: *const c_char,
) -> c_int {
    guard(|| {
        // SAFETY: header contract.
        let s = unsafe { handle(h) }?;
        // SAFETY: header contract.
        let data = unsafe { bytes(data, len) }?;
        // SAFETY: header contract.
        let to = unsafe { text(to) }?;
        if data.len() > s.max_payload {
            return Err(RGTP_ERR_INVALID_ARG);
        }
        let mut sock = lock(&s.socket)?;
        let to = resolve(to, sock.local_addr())?;
        sock.send_to(data, to).map_err(|e| io_code(&e))?;
        Ok(())
    })
}

/// See rgtp.h.
#[no_mangle]
pub unsafe extern "C" fn rgtp_gtudp_send_confirmed(
    h: *mut rgtp_gtudp_t,
    data: *const u8,
    len: usize,
    to: *const c_char,
    timeout_ms: u32,
) -> c_int {
    guard(|| {
        // SAFETY: header contract.
        let s = unsafe { handle(h) }?;
        // SAFETY: header contract.
        let data = unsafe { bytes(data, len) }?;
        // SAFETY: header contract.
        let to = unsafe { text(to) }?;
        if data.len() > s.max_payload {
            return Err(RGTP_ERR_INVALID_ARG);
        }
        let mut sock = lock(&s.socket)?;
        let to = resolve(to, sock.local_addr())?;
        let timeout = Duration::from_millis(u64::from(timeout_ms));
        sock.send_confirmed(data, to, timeout).map_err(|e| match e {
            SendError::Failed(FailReason::Attempts | FailReason::Deadline) => RGTP_ERR_TIMEOUT,
            SendError::Failed(FailReason::TooLarge) => RGTP_ERR_INVALID_ARG,
            SendError::Failed(FailReason::NoIdentity) => RGTP_ERR_RATE_LIMITED,
            SendError::Failed(_) => RGTP_ERR_INTERNAL,
            SendError::Io(_) => RGTP_ERR_SOCKET,
        })
    })
}

/// See rgtp.h.
#[no_mangle]
#[allow(clippy::too_many_arguments)]
pub unsafe extern "C" fn rgtp_gtudp_recv_from(
    h: *mut rgtp_gtudp_t,
    buf: *mut u8,
    cap: usize,
    len_out: *mut usize,
    from: *mut c_char,
    from_len: usize,
    timeout_ms: i32,
) -> c_int {
    guard(|| {
        // SAFETY: header contract.
        let s = unsafe { handle(h) }?;
        if len_out.is_null()
            || (buf.is_null() && cap > 0)
            || cap > isize::MAX as usize
            || (!from.is_null() && from_len < RGTP_GTUDP_ADDRSTRLEN)
        {
            return Err(RGTP_ERR_INVALID_ARG);
        }
        let out: &mut [u8] = if cap == 0 {
            &mut []
        } else {
            // SAFETY: `cap` writable bytes at `buf` (header contract).
            unsafe { std::slice::from_raw_parts_mut(buf, cap) }
        };
        let mut sock = lock(&s.socket)?;
        // A zero wait still lets the socket take in what has already arrived.
        let timeout = match timeout_ms {
            t if t < 0 => None,
            0 => Some(Duration::from_millis(1)),
            t => Some(Duration::from_millis(t as u64)),
        };
        sock.set_read_timeout(timeout);
        let (n, peer) = sock.recv_from(out).map_err(|e| io_code(&e))?;
        // SAFETY: non-NULL and writable (header contract).
        unsafe { std::ptr::write_unaligned(len_out, n) };
        if !from.is_null() {
            // SAFETY: `from_len` writable bytes, at least RGTP_GTUDP_ADDRSTRLEN.
            unsafe { write_text(&peer.to_string(), from, from_len) }?;
        }
        Ok(())
    })
}

/// See rgtp.h.
#[no_mangle]
pub unsafe extern "C" fn rgtp_gtudp_flush(h: *mut rgtp_gtudp_t, timeout_ms: u32) -> c_int {
    guard(|| {
        // SAFETY: header contract.
        let s = unsafe { handle(h) }?;
        let mut sock = lock(&s.socket)?;
        let idle = sock
            .flush(Duration::from_millis(u64::from(timeout_ms)))
            .map_err(|e| io_code(&e))?;
        if idle {
            Ok(())
        } else {
            Err(RGTP_ERR_TIMEOUT)
        }
    })
}

/// See rgtp.h.
#[no_mangle]
pub unsafe extern "C" fn rgtp_gtudp_stats(
    h: *const rgtp_gtudp_t,
    out: *mut rgtp_gtudp_stats_t,
) -> c_int {
    guard(|| {
        // SAFETY: header contract.
        let s = unsafe { handle(h) }?;
        if out.is_null() {
            return Err(RGTP_ERR_INVALID_ARG);
        }
        // SAFETY: the caller's struct starts with its size (header contract).
        let size = unsafe { std::ptr::read_unaligned(out.cast::<usize>()) };
        if size < size_of::<usize>() {
            return Err(RGTP_ERR_INVALID_ARG);
        }
        let n = size.min(size_of::<rgtp_gtudp_stats_t>());
        let stats = {
            let sock = lock(&s.socket)?;
            let mut st = rgtp_gtudp_stats_t::from_stats(&sock.stats(), sock.dropped());
            st.size = n;
            st
        };
        // SAFETY: `size >= n` writable bytes at `out` (header contract).
        unsafe {
            std::ptr::copy_nonoverlapping(
                (&stats as *const rgtp_gtudp_stats_t).cast::<u8>(),
                out.cast::<u8>(),
                n,
            )
        };
        Ok(())
    })
}
