//! `librgtp`: the RGTP C ABI over the redgiant stack.
//!
//! The contract (semantics, NULL handling, thread-safety, environment) is documented
//! in `include/rgtp.h`; this file keeps to it. Every exported function catches panics
//! and returns `RGTP_ERR_INTERNAL` (or NULL / 0.0 / nothing) instead of unwinding into C.
#![deny(unsafe_op_in_unsafe_fn)]
// The safety contract of every exported function is the header's documentation.
#![allow(clippy::missing_safety_doc)]

mod abi;
mod files;
mod flow;
mod gtudp;
mod log;
mod surface;
mod tej;

use std::ffi::{c_char, c_float, c_int, c_void, CStr};
use std::net::{Ipv4Addr, Ipv6Addr, SocketAddr, SocketAddrV4, SocketAddrV6};
use std::panic::{catch_unwind, AssertUnwindSafe};
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use rgtp_proto::cc::Controller;
use rgtp_proto::Key;
use zeroize::Zeroizing;

pub use abi::*;
pub use flow::*;
use surface::{lock, Kind, Next, PullTarget, Resolved, Socket, State, Surface};
use surface::{SOCKET_MAGIC, SURFACE_MAGIC};

/// Runs `f`, turning a panic into `RGTP_ERR_INTERNAL`.
fn guard(f: impl FnOnce() -> Result<(), c_int>) -> c_int {
    match catch_unwind(AssertUnwindSafe(f)) {
        Ok(Ok(())) => RGTP_OK,
        Ok(Err(code)) => code,
        Err(_) => RGTP_ERR_INTERNAL,
    }
}

/// Reads the magic word every handle starts with.
///
/// # Safety
/// `p` is NULL or a pointer this library returned (documented: anything else,
/// including a handle already destroyed, is undefined behaviour, as in C).
unsafe fn magic_of(p: *const c_void) -> Option<u64> {
    if p.is_null() || !p.cast::<AtomicU64>().is_aligned() {
        return None;
    }
    // SAFETY: per the contract, `p` points to a live `Socket` or `Surface`, both
    // `#[repr(C)]` with an `AtomicU64` magic as their first field.
    Some(unsafe { &*(p as *const AtomicU64) }.load(Ordering::Acquire))
}

/// The surface behind a handle, if it is one.
unsafe fn surface<'a>(p: *const rgtp_surface_t) -> Result<&'a Surface, c_int> {
    // SAFETY: forwarded contract of `magic_of`.
    match unsafe { magic_of(p.cast()) } {
        // SAFETY: the magic says this is a live `Surface` allocated by `Box::into_raw`.
        Some(SURFACE_MAGIC) => Ok(unsafe { &*(p as *const Surface) }),
        _ => Err(RGTP_ERR_INVALID_ARG),
    }
}

/// The socket behind a handle, if it is one.
unsafe fn socket<'a>(p: *const rgtp_socket_t) -> Result<&'a Socket, c_int> {
    // SAFETY: forwarded contract of `magic_of`.
    match unsafe { magic_of(p.cast()) } {
        // SAFETY: the magic says this is a live `Socket` allocated by `Box::into_raw`.
        Some(SOCKET_MAGIC) => Ok(unsafe { &*(p as *const Socket) }),
        _ => Err(RGTP_ERR_INVALID_ARG),
    }
}

/// A copy of `*cfg`, or None for NULL.
unsafe fn config(cfg: *const rgtp_config_t) -> Option<rgtp_config_t> {
    if cfg.is_null() {
        return None;
    }
    // SAFETY: the caller passes NULL or a readable rgtp_config_t; any bit pattern of
    // its fields is a valid Rust value (bools are read as u8, fn pointers as Option).
    Some(unsafe { std::ptr::read_unaligned(cfg) })
}

/// Writes `v` through an out-pointer that must not be NULL.
unsafe fn put<T>(out: *mut T, v: T) -> Result<(), c_int> {
    if out.is_null() {
        return Err(RGTP_ERR_INVALID_ARG);
    }
    // SAFETY: the caller passes a writable `T` (header contract); alignment is not assumed.
    unsafe { std::ptr::write_unaligned(out, v) };
    Ok(())
}

fn timeout_of(ms: c_int) -> Option<Duration> {
    (ms >= 0).then(|| Duration::from_millis(ms as u64))
}

// ---------------------------------------------------------------- lifecycle

/// See rgtp.h.
#[no_mangle]
pub extern "C" fn rgtp_init() -> c_int {
    guard(|| {
        log::install();
        Ok(())
    })
}

/// See rgtp.h.
#[no_mangle]
pub extern "C" fn rgtp_cleanup() {
    let _ = guard(|| {
        log::set_callback(None, std::ptr::null_mut());
        Ok(())
    });
}

/// See rgtp.h.
#[no_mangle]
pub extern "C" fn rgtp_version() -> *const c_char {
    static VERSION: &str = concat!(env!("CARGO_PKG_VERSION"), "\0");
    VERSION.as_ptr().cast()
}

/// See rgtp.h.
#[no_mangle]
pub extern "C" fn rgtp_strerror(code: c_int) -> *const c_char {
    let s: &'static str = match code {
        RGTP_OK => "success\0",
        RGTP_ERR_NOMEM => "out of memory\0",
        RGTP_ERR_INVALID_ARG => "invalid argument\0",
        RGTP_ERR_SOCKET => "socket error\0",
        RGTP_ERR_CRYPTO_INIT => "crypto initialisation failed\0",
        RGTP_ERR_ENCRYPT => "encryption failed\0",
        RGTP_ERR_DECRYPT => "decryption failed\0",
        RGTP_ERR_AUTH_FAIL => "authentication failed\0",
        RGTP_ERR_MERKLE_FAIL => "Merkle verification failed\0",
        RGTP_ERR_FEC_FAIL => "FEC decoding failed\0",
        RGTP_ERR_TRUNCATED => "truncated packet\0",
        RGTP_ERR_CHUNK_INDEX_OOB => "chunk index out of range\0",
        RGTP_ERR_TIMEOUT => "timed out\0",
        RGTP_ERR_RATE_LIMITED => "rate limited\0",
        RGTP_ERR_NOT_SUPPORTED => "not supported\0",
        RGTP_ERR_INTERNAL => "internal error\0",
        _ => "unknown error\0",
    };
    s.as_ptr().cast()
}

/// See rgtp.h.
#[no_mangle]
pub unsafe extern "C" fn rgtp_set_allocator(alloc: *const rgtp_allocator_t) -> c_int {
    if alloc.is_null() {
        RGTP_OK
    } else {
        RGTP_ERR_NOT_SUPPORTED
    }
}

/// See rgtp.h.
#[no_mangle]
pub unsafe extern "C" fn rgtp_set_log_callback(f: rgtp_log_fn, ctx: *mut c_void) -> c_int {
    guard(|| {
        log::set_callback(f, ctx);
        Ok(())
    })
}

/// See rgtp.h.
#[no_mangle]
pub extern "C" fn rgtp_set_log_level(level: c_int) -> c_int {
    if !(RGTP_LOG_ERROR..=RGTP_LOG_DEBUG).contains(&level) {
        return RGTP_ERR_INVALID_ARG;
    }
    log::set_level(level);
    RGTP_OK
}

// ---------------------------------------------------------------- sockets

/// See rgtp.h.
#[no_mangle]
pub unsafe extern "C" fn rgtp_socket_create(
    cfg: *const rgtp_config_t,
    out: *mut *mut rgtp_socket_t,
) -> c_int {
    guard(|| {
        if out.is_null() {
            return Err(RGTP_ERR_INVALID_ARG);
        }
        // SAFETY: header contract: NULL or a readable config.
        let cfg = unsafe { config(cfg) };
        Resolved::new(cfg)?;
        let s = Box::new(Socket {
            magic: AtomicU64::new(SOCKET_MAGIC),
            config: cfg,
            congestion: std::sync::Mutex::new(Controller::DEFAULT),
        });
        // SAFETY: `out` is non-NULL and writable (header contract).
        unsafe { put(out, Box::into_raw(s).cast()) }
    })
}

/// See rgtp.h.
#[no_mangle]
pub unsafe extern "C" fn rgtp_socket_destroy(sock: *mut rgtp_socket_t) {
    let _ = guard(|| {
        // SAFETY: header contract: NULL or a live socket handle.
        let s = unsafe { socket(sock) }?;
        if s.magic.swap(0, Ordering::AcqRel) != SOCKET_MAGIC {
            return Ok(()); // lost a race with another destroy
        }
        // SAFETY: allocated by `Box::into_raw` in rgtp_socket_create; the magic was
        // ours to clear, so this is the only free.
        drop(unsafe { Box::from_raw(sock as *mut Socket) });
        Ok(())
    });
}

/// See rgtp.h.
#[no_mangle]
pub unsafe extern "C" fn rgtp_socket_set_congestion(
    sock: *mut rgtp_socket_t,
    name: *const c_char,
) -> c_int {
    guard(|| {
        // SAFETY: header contract: NULL or a live socket handle.
        let s = unsafe { socket(sock) }?;
        if name.is_null() {
            return Err(RGTP_ERR_INVALID_ARG);
        }
        // SAFETY: `name` is a NUL-terminated string (header contract), non-NULL here.
        let name = unsafe { CStr::from_ptr(name) }
            .to_str()
            .map_err(|_| RGTP_ERR_INVALID_ARG)?;
        let cc = Controller::by_name(name).ok_or(RGTP_ERR_INVALID_ARG)?;
        *lock(&s.congestion)? = cc;
        tracing::debug!(target: "rgtp_ffi", controller = cc.name, "congestion controller set");
        Ok(())
    })
}

/// See rgtp.h.
#[no_mangle]
pub unsafe extern "C" fn rgtp_socket_create_ccsds(
    _device: *const c_char,
    _cfg: *const rgtp_config_t,
) -> *mut rgtp_socket_t {
    std::ptr::null_mut()
}

/// The effective config: the call's, else the socket's, else none (NULL defaults).
fn effective(call: Option<rgtp_config_t>, sock: &Socket) -> Result<Resolved, c_int> {
    Resolved::new(call.or(sock.config))
}

// ---------------------------------------------------------------- exposer

/// The body of `rgtp_expose` and `rgtp_expose_with_key`: `key` overrides the
/// configs and `RGTP_KEY`.
///
/// # Safety
/// The pointers follow rgtp_expose's header contract.
unsafe fn expose_with(
    sock: *mut rgtp_socket_t,
    data: *const c_void,
    len: usize,
    cfg: *const rgtp_config_t,
    out: *mut *mut rgtp_surface_t,
    key: Option<Key>,
) -> Result<(), c_int> {
    // SAFETY: header contract: NULL or a live socket handle.
    let s = unsafe { socket(sock) }?;
    if out.is_null() || (data.is_null() && len > 0) || len > isize::MAX as usize {
        return Err(RGTP_ERR_INVALID_ARG);
    }
    let data: &[u8] = if len == 0 {
        &[]
    } else {
        // SAFETY: the caller passes `len` readable bytes at `data` (non-NULL here),
        // unchanged for the duration of the call; they are sealed and not kept.
        unsafe { std::slice::from_raw_parts(data.cast(), len) }
    };
    // SAFETY: header contract: NULL or a readable config.
    let r = effective(unsafe { config(cfg) }, s)?;
    let surf = surface::expose(&r, data, key)?;
    // SAFETY: `out` is non-NULL and writable.
    unsafe { put(out, Box::into_raw(surf).cast()) }
}

/// A 32-byte key at `key` (NULL → `RGTP_ERR_INVALID_ARG`).
///
/// # Safety
/// `key` is NULL or points to 32 readable bytes.
unsafe fn read_key(key: *const u8) -> Result<Key, c_int> {
    if key.is_null() {
        return Err(RGTP_ERR_INVALID_ARG);
    }
    let mut k = Zeroizing::new([0u8; 32]);
    // SAFETY: `key` points to 32 readable bytes (caller's contract), non-NULL here.
    unsafe { std::ptr::copy_nonoverlapping(key, k.as_mut_ptr(), 32) };
    Ok(Key::from_bytes(*k))
}

/// See rgtp.h.
#[no_mangle]
pub unsafe extern "C" fn rgtp_expose(
    sock: *mut rgtp_socket_t,
    data: *const c_void,
    len: usize,
    cfg: *const rgtp_config_t,
    out: *mut *mut rgtp_surface_t,
) -> c_int {
    // SAFETY: the pointers are forwarded under the header contract.
    guard(|| unsafe { expose_with(sock, data, len, cfg, out, None) })
}

/// See rgtp.h.
#[no_mangle]
pub unsafe extern "C" fn rgtp_expose_with_key(
    sock: *mut rgtp_socket_t,
    data: *const c_void,
    len: usize,
    key: *const u8,
    cfg: *const rgtp_config_t,
    out: *mut *mut rgtp_surface_t,
) -> c_int {
    guard(|| {
        // SAFETY: the pointers are forwarded under the header contract.
        unsafe {
            let key = read_key(key)?;
            expose_with(sock, data, len, cfg, out, Some(key))
        }
    })
}

/// See rgtp.h.
#[no_mangle]
pub unsafe extern "C" fn rgtp_poll(surf: *mut rgtp_surface_t, timeout_ms: c_int) -> c_int {
    guard(|| {
        // SAFETY: header contract: NULL or a live surface handle.
        let s = unsafe { surface(surf) }?;
        let timeout = timeout_of(timeout_ms);
        let handled = match &mut *lock(&s.state)? {
            State::Exposer(x) => x.poll(timeout, &s.snapshot)?,
            State::Puller(p) => p.poll(timeout, &s.snapshot)?,
        };
        if handled {
            Ok(())
        } else {
            Err(RGTP_ERR_TIMEOUT)
        }
    })
}

/// See rgtp.h.
#[no_mangle]
pub unsafe extern "C" fn rgtp_destroy_surface(surf: *mut rgtp_surface_t) {
    let _ = guard(|| {
        // SAFETY: header contract: NULL or a live surface handle.
        let s = unsafe { surface(surf) }?;
        if s.magic.swap(0, Ordering::AcqRel) != SURFACE_MAGIC {
            return Ok(());
        }
        // Wait for a call in progress on another thread (documented as the caller's
        // bug, but cheap to tolerate when it is already inside).
        drop(s.state.lock());
        // SAFETY: allocated by `Box::into_raw`; the magic was ours to clear. Dropping
        // the surface drops its `Key`, which zeroizes itself.
        drop(unsafe { Box::from_raw(surf as *mut Surface) });
        Ok(())
    });
}

/// See rgtp.h.
#[no_mangle]
pub unsafe extern "C" fn rgtp_get_exposure_id(surf: *const rgtp_surface_t, out: *mut u8) -> c_int {
    guard(|| {
        // SAFETY: header contract: NULL or a live surface handle.
        let s = unsafe { surface(surf) }?;
        if out.is_null() {
            return Err(RGTP_ERR_INVALID_ARG);
        }
        // SAFETY: `out` points to 16 writable bytes (header contract).
        unsafe { std::ptr::copy_nonoverlapping(s.exposure_id.as_ptr(), out, 16) };
        Ok(())
    })
}

/// See rgtp.h.
#[no_mangle]
pub unsafe extern "C" fn rgtp_get_manifest_info(
    surf: *const rgtp_surface_t,
    out_total_size: *mut u64,
    out_chunk_size: *mut u32,
    out_chunk_count: *mut u32,
) -> c_int {
    guard(|| {
        // SAFETY: header contract: NULL or a live surface handle.
        let s = unsafe { surface(surf) }?;
        let (total, chunk, count) = s.shape;
        // SAFETY: each non-NULL pointer points to one writable value (header contract);
        // NULL ones are skipped.
        unsafe {
            if !out_total_size.is_null() {
                *out_total_size = total;
            }
            if !out_chunk_size.is_null() {
                *out_chunk_size = chunk;
            }
            if !out_chunk_count.is_null() {
                *out_chunk_count = count;
            }
        }
        Ok(())
    })
}

/// See rgtp.h.
#[no_mangle]
pub unsafe extern "C" fn rgtp_get_key(surf: *const rgtp_surface_t, out: *mut u8) -> c_int {
    guard(|| {
        // SAFETY: header contract: NULL or a live surface handle.
        let s = unsafe { surface(surf) }?;
        if out.is_null() {
            return Err(RGTP_ERR_INVALID_ARG);
        }
        // SAFETY: `out` points to 32 writable bytes (header contract).
        unsafe { std::ptr::copy_nonoverlapping(s.key.as_bytes().as_ptr(), out, 32) };
        Ok(())
    })
}

/// See rgtp.h.
#[no_mangle]
pub unsafe extern "C" fn rgtp_get_ticket(
    surf: *const rgtp_surface_t,
    buf: *mut c_char,
    buf_len: usize,
    out_len: *mut usize,
) -> c_int {
    guard(|| {
        // SAFETY: header contract: NULL or a live surface handle.
        let s = unsafe { surface(surf) }?;
        let Some((host, port, cipher, hash)) = &s.ticket_addr else {
            return Err(RGTP_ERR_INVALID_ARG);
        };
        // Built by hand into a zeroizing buffer: no stray copy of the key's hex.
        let mut t = Zeroizing::new(String::with_capacity(256));
        t.push_str("rgtp://");
        t.push_str(host);
        t.push(':');
        t.push_str(&port.to_string());
        t.push('/');
        t.push_str(&hex::encode(s.exposure_id));
        t.push_str("?cipher=");
        t.push_str(cipher.name());
        t.push_str("&hash=");
        t.push_str(hash.name());
        t.push('#');
        const HEX: &[u8; 16] = b"0123456789abcdef";
        for b in s.key.as_bytes() {
            t.push(HEX[usize::from(b >> 4)] as char);
            t.push(HEX[usize::from(b & 15)] as char);
        }
        let need = t.len() + 1;
        if !out_len.is_null() {
            // SAFETY: non-NULL `out_len` is writable (header contract).
            unsafe { put(out_len, need) }?;
        }
        if buf.is_null() || buf_len < need {
            return Err(RGTP_ERR_INVALID_ARG);
        }
        // SAFETY: `buf` has `buf_len >= need` writable bytes (header contract).
        unsafe {
            std::ptr::copy_nonoverlapping(t.as_ptr(), buf.cast::<u8>(), t.len());
            *buf.add(t.len()) = 0;
        }
        Ok(())
    })
}

/// See rgtp.h.
#[no_mangle]
pub unsafe extern "C" fn rgtp_progress(surf: *const rgtp_surface_t) -> c_float {
    let mut p = 0.0;
    let _ = guard(|| {
        // SAFETY: header contract: NULL or a live surface handle.
        let s = unsafe { surface(surf) }?;
        p = lock(&s.snapshot)?.progress;
        Ok(())
    });
    p
}

/// See rgtp.h.
#[no_mangle]
pub unsafe extern "C" fn rgtp_get_stats(
    surf: *const rgtp_surface_t,
    out: *mut rgtp_stats_t,
) -> c_int {
    guard(|| {
        // SAFETY: header contract: NULL or a live surface handle.
        let s = unsafe { surface(surf) }?;
        let v = lock(&s.snapshot)?.stats;
        // SAFETY: `out` is NULL-checked by `put` and otherwise writable.
        unsafe { put(out, v) }
    })
}

/// See rgtp.h.
#[no_mangle]
pub unsafe extern "C" fn rgtp_get_latency_stats(
    surf: *const rgtp_surface_t,
    out: *mut rgtp_latency_stats_t,
) -> c_int {
    guard(|| {
        // SAFETY: header contract: NULL or a live surface handle.
        let s = unsafe { surface(surf) }?;
        let v = lock(&s.snapshot)?.latency;
        // SAFETY: `out` is NULL-checked by `put` and otherwise writable.
        unsafe { put(out, v) }
    })
}

// ---------------------------------------------------------------- puller

/// Reads a `struct sockaddr_storage` holding an IPv4 or IPv6 address.
unsafe fn sockaddr(p: *const libc::sockaddr_storage) -> Result<SocketAddr, c_int> {
    if p.is_null() {
        return Err(RGTP_ERR_INVALID_ARG);
    }
    // SAFETY: `p` points to a readable sockaddr_storage (header contract); reads are
    // unaligned-safe, and only the variant its family names is read.
    let family = unsafe { std::ptr::read_unaligned(p) }.ss_family;
    match c_int::from(family) {
        libc::AF_INET => {
            // SAFETY: as above; sockaddr_in fits in sockaddr_storage.
            let a = unsafe { std::ptr::read_unaligned(p.cast::<libc::sockaddr_in>()) };
            Ok(SocketAddr::V4(SocketAddrV4::new(
                Ipv4Addr::from(u32::from_be(a.sin_addr.s_addr)),
                u16::from_be(a.sin_port),
            )))
        }
        libc::AF_INET6 => {
            // SAFETY: as above; sockaddr_in6 fits in sockaddr_storage.
            let a = unsafe { std::ptr::read_unaligned(p.cast::<libc::sockaddr_in6>()) };
            Ok(SocketAddr::V6(SocketAddrV6::new(
                Ipv6Addr::from(a.sin6_addr.s6_addr),
                u16::from_be(a.sin6_port),
                a.sin6_flowinfo,
                a.sin6_scope_id,
            )))
        }
        _ => Err(RGTP_ERR_INVALID_ARG),
    }
}

unsafe fn start(
    sock: *mut rgtp_socket_t,
    cfg: *const rgtp_config_t,
    out: *mut *mut rgtp_surface_t,
    target: impl FnOnce() -> Result<PullTarget, c_int>,
) -> Result<(), c_int> {
    // SAFETY: header contract: NULL or a live socket handle.
    let s = unsafe { socket(sock) }?;
    if out.is_null() {
        return Err(RGTP_ERR_INVALID_ARG);
    }
    // SAFETY: header contract: NULL or a readable config.
    let r = effective(unsafe { config(cfg) }, s)?;
    let cc = *lock(&s.congestion)?;
    let surf = surface::pull_start(&r, target()?, cc)?;
    // SAFETY: `out` is non-NULL and writable.
    unsafe { put(out, Box::into_raw(surf).cast()) }
}

unsafe fn read_id(id: *const u8) -> Result<[u8; 16], c_int> {
    if id.is_null() {
        return Err(RGTP_ERR_INVALID_ARG);
    }
    let mut v = [0u8; 16];
    // SAFETY: `id` points to 16 readable bytes (header contract).
    unsafe { std::ptr::copy_nonoverlapping(id, v.as_mut_ptr(), 16) };
    Ok(v)
}

/// See rgtp.h.
#[no_mangle]
pub unsafe extern "C" fn rgtp_pull_start(
    sock: *mut rgtp_socket_t,
    server: *const libc::sockaddr_storage,
    exposure_id: *const u8,
    cfg: *const rgtp_config_t,
    out: *mut *mut rgtp_surface_t,
) -> c_int {
    guard(|| {
        // SAFETY: the pointers are forwarded under the header contract.
        unsafe {
            start(sock, cfg, out, || {
                Ok(PullTarget {
                    server: sockaddr(server)?,
                    exposure_id: read_id(exposure_id)?,
                    key: surface::env_key()?.ok_or(RGTP_ERR_INVALID_ARG)?,
                    cipher: None,
                    hash: None,
                })
            })
        }
    })
}

/// See rgtp.h.
#[no_mangle]
pub unsafe extern "C" fn rgtp_pull_start_with_key(
    sock: *mut rgtp_socket_t,
    server: *const libc::sockaddr_storage,
    exposure_id: *const u8,
    key: *const u8,
    cfg: *const rgtp_config_t,
    out: *mut *mut rgtp_surface_t,
) -> c_int {
    guard(|| {
        // SAFETY: the pointers are forwarded under the header contract.
        unsafe {
            start(sock, cfg, out, || {
                let key = read_key(key)?;
                Ok(PullTarget {
                    server: sockaddr(server)?,
                    exposure_id: read_id(exposure_id)?,
                    key,
                    cipher: None,
                    hash: None,
                })
            })
        }
    })
}

/// See rgtp.h.
#[no_mangle]
pub unsafe extern "C" fn rgtp_pull_start_ticket(
    sock: *mut rgtp_socket_t,
    ticket: *const c_char,
    cfg: *const rgtp_config_t,
    out: *mut *mut rgtp_surface_t,
) -> c_int {
    guard(|| {
        // SAFETY: the pointers are forwarded under the header contract.
        unsafe {
            start(sock, cfg, out, || {
                if ticket.is_null() {
                    return Err(RGTP_ERR_INVALID_ARG);
                }
                // SAFETY: `ticket` is a NUL-terminated string (header contract).
                let text = CStr::from_ptr(ticket)
                    .to_str()
                    .map_err(|_| RGTP_ERR_INVALID_ARG)?;
                let t: rgtp::Ticket = text.parse().map_err(|_| RGTP_ERR_INVALID_ARG)?;
                let server = t.socket_addr().map_err(|_| RGTP_ERR_INVALID_ARG)?;
                Ok(PullTarget {
                    server,
                    exposure_id: t.exposure_id,
                    key: t.key.clone(),
                    cipher: t.cipher,
                    hash: t.hash,
                })
            })
        }
    })
}

/// See rgtp.h.
#[no_mangle]
pub unsafe extern "C" fn rgtp_pull_next(
    surf: *mut rgtp_surface_t,
    buf: *mut c_void,
    buf_len: usize,
    out_received: *mut usize,
    out_chunk_index: *mut u32,
) -> c_int {
    guard(|| {
        // SAFETY: header contract: NULL or a live surface handle.
        let s = unsafe { surface(surf) }?;
        if s.kind != Kind::Puller
            || out_received.is_null()
            || out_chunk_index.is_null()
            || (buf.is_null() && buf_len > 0)
            || buf_len > isize::MAX as usize
        {
            return Err(RGTP_ERR_INVALID_ARG);
        }
        let buf: &mut [u8] = if buf_len == 0 {
            &mut []
        } else {
            // SAFETY: `buf` has `buf_len` writable bytes (header contract).
            unsafe { std::slice::from_raw_parts_mut(buf.cast(), buf_len) }
        };
        let mut state = lock(&s.state)?;
        let State::Puller(p) = &mut *state else {
            return Err(RGTP_ERR_INVALID_ARG);
        };
        let (received, index, code) = match p.next(buf, &s.snapshot)? {
            Next::Chunk { index, len } => (len, index, RGTP_OK),
            Next::TooSmall { len } => (len, RGTP_CHUNK_INDEX_NONE, RGTP_ERR_INVALID_ARG),
            Next::End => (0, RGTP_CHUNK_INDEX_NONE, RGTP_OK),
        };
        // SAFETY: both out-pointers are non-NULL and writable (checked above).
        unsafe {
            put(out_received, received)?;
            put(out_chunk_index, index)?;
        }
        if code == RGTP_OK {
            Ok(())
        } else {
            Err(code)
        }
    })
}
