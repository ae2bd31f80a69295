//! Exposure sets through the C ABI: `rgtp_send_start` seals files and trees and
//! serves them from a background thread behind an opaque sender handle;
//! `rgtp_get` fetches a set into a directory, blocking, with a progress
//! callback that can ask it to stop. The contract is in `include/rgtp.h`,
//! section "Files". Failing calls leave their reason for
//! `rgtp_files_last_error`.

use std::cell::RefCell;
use std::collections::HashMap;
use std::ffi::{c_char, c_int, c_void, CStr, CString};
use std::mem::{offset_of, size_of};
use std::net::{SocketAddr, ToSocketAddrs};
use std::os::unix::ffi::OsStrExt;
use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use rgtp::files::{self, ErrorKind, FilesError, FilesEvent, FilesProgress};
use rgtp_proto::ExposerStats;

use crate::abi::*;
use crate::surface::lock;
use crate::{guard, magic_of, put};

const SENDER_MAGIC: u64 = 0x5247_5450_5345_4e44; // "RGTPSEND"

/// Most extra senders one `rgtp_get` takes.
const MAX_SOURCES: usize = 64;

/// Bytes events of one file are passed on at most this often (and at its end).
const BYTES_EVERY: Duration = Duration::from_millis(50);

/// Opaque `rgtp_sender_t`.
#[allow(non_camel_case_types)]
pub enum rgtp_sender_t {}

/// `rgtp_files_progress_cb`.
#[allow(non_camel_case_types)]
pub type rgtp_files_progress_cb =
    Option<unsafe extern "C" fn(*const rgtp_files_event_t, *mut c_void) -> c_int>;

/// A sender handle. `magic` must stay the first field.
#[repr(C)]
struct Sender {
    magic: AtomicU64,
    /// The ticket, NUL-terminated.
    ticket: Vec<u8>,
    stop: Arc<AtomicBool>,
    serving: Mutex<Option<JoinHandle<Result<(), FilesError>>>>,
    /// What has been served, as of the serving thread's last tick (about every 200 ms).
    served: Arc<Mutex<ExposerStats>>,
    /// When serving started.
    started: Instant,
}

thread_local! {
    static LAST_ERROR: RefCell<CString> = RefCell::new(CString::default());
}

fn set_error(msg: &str) {
    let c = CString::new(msg.replace('\0', " ")).unwrap_or_default();
    LAST_ERROR.with(|e| *e.borrow_mut() = c);
}

fn bad_arg(msg: &str) -> c_int {
    set_error(msg);
    RGTP_ERR_INVALID_ARG
}

/// The code of a library failure, its message kept.
fn fail(e: FilesError) -> c_int {
    set_error(&e.message);
    match e.kind {
        ErrorKind::Usage => RGTP_ERR_INVALID_ARG,
        ErrorKind::Timeout => RGTP_ERR_TIMEOUT,
        ErrorKind::Auth => RGTP_ERR_AUTH_FAIL,
        ErrorKind::Merkle => RGTP_ERR_MERKLE_FAIL,
        ErrorKind::Io | ErrorKind::Protocol => RGTP_ERR_SOCKET,
        ErrorKind::Stopped => RGTP_FILES_STOPPED,
    }
}

/// `guard`, clearing the last error first and leaving a text for codes without one.
fn files_guard(f: impl FnOnce() -> Result<(), c_int>) -> c_int {
    LAST_ERROR.with(|e| *e.borrow_mut() = CString::default());
    let code = guard(f);
    if code < RGTP_OK && LAST_ERROR.with(|e| e.borrow().is_empty()) {
        // SAFETY: rgtp_strerror returns a static NUL-terminated string.
        let text = unsafe { CStr::from_ptr(crate::rgtp_strerror(code)) };
        set_error(&text.to_string_lossy());
    }
    code
}

/// A NUL-terminated UTF-8 string argument, or None for NULL.
///
/// # Safety
/// `s` is NULL or a readable NUL-terminated string.
unsafe fn opt_str<'a>(s: *const c_char, what: &str) -> Result<Option<&'a str>, c_int> {
    if s.is_null() {
        return Ok(None);
    }
    // SAFETY: caller contract.
    let s = unsafe { CStr::from_ptr(s) };
    s.to_str()
        .map(Some)
        .map_err(|_| bad_arg(&format!("{what} is not UTF-8")))
}

/// A size-prefixed struct the caller passed (or `T::default()` for NULL), fields
/// beyond its size left at their defaults. `fields` lists each field's offset and
/// size, so a field only partly covered is reset too.
///
/// # Safety
/// `p` is NULL or points to a readable struct starting with its size in bytes;
/// every field of `T` is valid for any bit pattern.
unsafe fn sized<T: Copy + Default>(p: *const T, fields: &[(usize, usize)]) -> Result<T, c_int> {
    let mut o = T::default();
    if p.is_null() {
        return Ok(o);
    }
    // SAFETY: caller contract.
    let size = unsafe { std::ptr::read_unaligned(p.cast::<usize>()) };
    if size < size_of::<usize>() {
        return Err(bad_arg("the options' size is smaller than a size_t"));
    }
    let n = size.min(size_of::<T>());
    // SAFETY: `n` readable bytes at `p`, room for them in `o`; any bit pattern is valid.
    unsafe { std::ptr::copy_nonoverlapping(p.cast::<u8>(), (&mut o as *mut T).cast::<u8>(), n) };
    let d = T::default();
    for &(off, len) in fields {
        if off + len > n {
            // SAFETY: the field lies inside both structs.
            unsafe {
                std::ptr::copy_nonoverlapping(
                    (&d as *const T).cast::<u8>().add(off),
                    (&mut o as *mut T).cast::<u8>().add(off),
                    len,
                )
            };
        }
    }
    Ok(o)
}

/// Writes as much of `full` into the caller's size-prefixed struct `out` as its
/// size says (at most all of it), and sets its size to the bytes written.
///
/// # Safety
/// `out` points to a writable struct starting with its size in bytes.
unsafe fn write_sized<T: Copy>(out: *mut T, full: &T) -> Result<(), c_int> {
    // SAFETY: caller contract.
    let size = unsafe { std::ptr::read_unaligned(out.cast::<usize>()) };
    let n = size.min(size_of::<T>());
    if n < size_of::<usize>() {
        return Err(bad_arg("the result's size is smaller than a size_t"));
    }
    // SAFETY: `n` writable bytes at `out`; `full` has at least `n`.
    unsafe {
        std::ptr::copy_nonoverlapping((full as *const T).cast::<u8>(), out.cast::<u8>(), n);
        std::ptr::write_unaligned(out.cast::<usize>(), n);
    }
    Ok(())
}

macro_rules! fields {
    ($t:ty: $($f:ident),+) => {
        &[$((offset_of!($t, $f), size_of_field(|s: &$t| &s.$f))),+]
    };
}

fn size_of_field<T, F>(_: impl Fn(&T) -> &F) -> usize {
    size_of::<F>()
}

fn rate(r: u64) -> Option<u64> {
    (r != 0).then_some(r)
}

/// The sender behind a handle, if it is one.
///
/// # Safety
/// `p` is NULL or a handle this library returned.
unsafe fn sender<'a>(p: *const rgtp_sender_t) -> Result<&'a Sender, c_int> {
    // SAFETY: forwarded contract of `magic_of`.
    match unsafe { magic_of(p.cast()) } {
        // SAFETY: the magic says this is a live `Sender` allocated by `Box::into_raw`.
        Some(SENDER_MAGIC) => Ok(unsafe { &*(p as *const Sender) }),
        _ => Err(bad_arg("not a live sender")),
    }
}

impl Sender {
    /// Stops serving and waits for the thread; the serving error, if any.
    fn stop(&self) -> Result<(), c_int> {
        self.stop.store(true, Ordering::Relaxed);
        let Some(t) = lock(&self.serving)?.take() else {
            return Ok(());
        };
        match t.join() {
            Ok(r) => r.map_err(fail),
            Err(_) => Err(RGTP_ERR_INTERNAL),
        }
    }
}

// ---------------------------------------------------------------- errors

/// See rgtp.h.
#[no_mangle]
pub extern "C" fn rgtp_files_last_error() -> *const c_char {
    LAST_ERROR.with(|e| e.borrow().as_ptr())
}

// ---------------------------------------------------------------- sending

/// See rgtp.h.
#[no_mangle]
pub unsafe extern "C" fn rgtp_send_start(
    paths: *const *const c_char,
    n_paths: usize,
    opts: *const rgtp_send_options_t,
    out: *mut *mut rgtp_sender_t,
) -> c_int {
    files_guard(|| {
        if out.is_null() {
            return Err(bad_arg("out is NULL"));
        }
        if paths.is_null() || n_paths == 0 {
            return Err(bad_arg("no paths to send"));
        }
        // SAFETY: `n_paths` readable pointers (header contract).
        let list = unsafe { std::slice::from_raw_parts(paths, n_paths) };
        let mut ps = Vec::with_capacity(n_paths);
        for (i, &p) in list.iter().enumerate() {
            if p.is_null() {
                return Err(bad_arg(&format!("paths[{i}] is NULL")));
            }
            // SAFETY: a NUL-terminated string (header contract).
            let p = unsafe { CStr::from_ptr(p) };
            ps.push(PathBuf::from(std::ffi::OsStr::from_bytes(p.to_bytes())));
        }
        type O = rgtp_send_options_t;
        // SAFETY: header contract.
        let o: O = unsafe {
            sized(
                opts,
                fields!(O: bind, advertise, key, max_rate, max_rate_per_connection,
                    max_rate_per_file, chunk_size, keep_symlinks),
            )
        }?;
        let mut so = files::SendOptions::new(ps);
        // SAFETY: header contract for the string fields.
        if let Some(b) = unsafe { opt_str(o.bind, "bind") }? {
            so.bind = b
                .to_socket_addrs()
                .ok()
                .and_then(|mut a| a.next())
                .ok_or_else(|| bad_arg(&format!("bind {b:?} is not HOST:PORT")))?;
        } else {
            so.bind = SocketAddr::from(([0, 0, 0, 0], 0));
        }
        // SAFETY: as above.
        so.advertise = unsafe { opt_str(o.advertise, "advertise") }?.map(str::to_string);
        if !o.key.is_null() {
            let mut k = [0u8; 32];
            // SAFETY: 32 readable bytes at `key` (header contract).
            unsafe { std::ptr::copy_nonoverlapping(o.key, k.as_mut_ptr(), 32) };
            so.key = Some(k);
        }
        so.caps = files::ServeCaps {
            max_rate: rate(o.max_rate),
            max_rate_per_connection: rate(o.max_rate_per_connection),
        };
        so.max_rate_per_file = rate(o.max_rate_per_file);
        if o.chunk_size != 0 {
            so.chunk_size = o.chunk_size;
        }
        so.keep_symlinks = o.keep_symlinks != 0;
        let prepared = files::prepare(&so).map_err(fail)?;
        let mut ticket = prepared.ticket.to_string().into_bytes();
        ticket.push(0);
        let stop = Arc::new(AtomicBool::new(false));
        let served = Arc::new(Mutex::new(ExposerStats::default()));
        let serving = {
            let stop = stop.clone();
            let served = served.clone();
            let max_rate = so.caps.max_rate;
            std::thread::Builder::new()
                .name("rgtp-send".into())
                .spawn(move || {
                    files::serve_with(prepared, max_rate, &stop, |st| {
                        if let Ok(mut s) = served.lock() {
                            *s = *st;
                        }
                    })
                })
                .map_err(|e| {
                    set_error(&format!("cannot start the serving thread: {e}"));
                    RGTP_ERR_INTERNAL
                })?
        };
        let s = Box::new(Sender {
            magic: AtomicU64::new(SENDER_MAGIC),
            ticket,
            stop,
            serving: Mutex::new(Some(serving)),
            served,
            started: Instant::now(),
        });
        // SAFETY: `out` is non-NULL and writable.
        unsafe { put(out, Box::into_raw(s).cast()) }
    })
}

/// See rgtp.h.
#[no_mangle]
pub unsafe extern "C" fn rgtp_sender_ticket(
    s: *const rgtp_sender_t,
    buf: *mut c_char,
    buf_len: usize,
) -> usize {
    let mut needed = 0;
    files_guard(|| {
        // SAFETY: header contract.
        let s = unsafe { sender(s) }?;
        needed = s.ticket.len();
        if !buf.is_null() && buf_len >= needed {
            // SAFETY: `buf` has room for `buf_len >= needed` bytes (header contract).
            unsafe { std::ptr::copy_nonoverlapping(s.ticket.as_ptr(), buf.cast(), needed) };
        }
        Ok(())
    });
    needed
}

/// See rgtp.h.
#[no_mangle]
pub unsafe extern "C" fn rgtp_sender_stats(
    s: *const rgtp_sender_t,
    out: *mut rgtp_sender_stats_t,
) -> c_int {
    files_guard(|| {
        // SAFETY: header contract.
        let s = unsafe { sender(s) }?;
        if out.is_null() {
            return Err(bad_arg("out is NULL"));
        }
        let st = *lock(&s.served)?;
        let serving = match lock(&s.serving)?.as_ref() {
            Some(t) => !t.is_finished(),
            None => false,
        };
        let full = rgtp_sender_stats_t {
            size: size_of::<rgtp_sender_stats_t>(),
            datagrams_in: st.datagrams_in,
            bytes_in: st.bytes_in,
            datagrams_out: st.datagrams_out,
            bytes_out: st.bytes_out,
            pulls: st.manifests_sent,
            requests: st.requests,
            chunks_sent: st.chunks_sent,
            parity_sent: st.parity_sent,
            dropped: st.malformed
                + st.unknown_exposure
                + st.version_mismatch
                + st.bad_token
                + st.busy
                + st.unexpected,
            seconds: s.started.elapsed().as_secs_f64(),
            serving: u8::from(serving),
        };
        // SAFETY: a writable struct starting with its size (header contract).
        unsafe { write_sized(out, &full) }
    })
}

/// See rgtp.h.
#[no_mangle]
pub unsafe extern "C" fn rgtp_sender_stop(s: *mut rgtp_sender_t) -> c_int {
    files_guard(|| {
        // SAFETY: header contract.
        unsafe { sender(s) }?.stop()
    })
}

/// See rgtp.h.
#[no_mangle]
pub unsafe extern "C" fn rgtp_sender_free(s: *mut rgtp_sender_t) {
    files_guard(|| {
        // SAFETY: header contract: NULL or a live handle nothing uses afterwards.
        let Ok(h) = (unsafe { sender(s) }) else {
            return Ok(());
        };
        if h.magic.swap(0, Ordering::AcqRel) != SENDER_MAGIC {
            return Ok(());
        }
        let _ = h.stop();
        // SAFETY: allocated by `Box::into_raw`; clearing the magic made it ours.
        drop(unsafe { Box::from_raw(s as *mut Sender) });
        Ok(())
    });
}

// ---------------------------------------------------------------- getting

/// Events passed to a C callback, one call at a time, bytes events thinned out.
struct CProgress {
    cb: rgtp_files_progress_cb,
    ctx: *mut c_void,
    stop: AtomicBool,
    /// Per file: when its last bytes event was passed on, and its count.
    state: Mutex<HashMap<u64, (Instant, u64)>>,
}

// SAFETY: `ctx` is only handed to the callback, under the `state` lock; the header
// tells callers the callback runs on threads the call starts.
unsafe impl Sync for CProgress {}

impl FilesProgress for CProgress {
    fn on_event(&self, ev: &FilesEvent<'_>) {
        let Some(cb) = self.cb else { return };
        let Ok(mut state) = self.state.lock() else {
            return;
        };
        let mut e = rgtp_files_event_t {
            size: size_of::<rgtp_files_event_t>(),
            kind: RGTP_FILES_CATALOG,
            index: 0,
            path: std::ptr::null(),
            done: 0,
            total: 0,
            files: 0,
            entries: 0,
            total_done: 0,
            seconds: 0.0,
            skipped: 0,
            message: std::ptr::null(),
        };
        let c = |s: &str| CString::new(s.replace('\0', " ")).unwrap_or_default();
        let (path, message): (Option<CString>, Option<CString>) = match ev {
            FilesEvent::Catalog {
                files,
                entries,
                bytes,
            } => {
                (e.files, e.entries, e.total) = (*files as u64, *entries as u64, *bytes);
                (None, None)
            }
            FilesEvent::FileStarted { index, path, size } => {
                (e.kind, e.index, e.total) = (RGTP_FILES_STARTED, *index as u64, *size);
                (Some(c(path)), None)
            }
            FilesEvent::FileBytes {
                index,
                path,
                done,
                size,
                ..
            } => {
                let i = *index as u64;
                let now = Instant::now();
                match state.get(&i) {
                    Some(&(_, last)) if *done <= last => return,
                    Some(&(at, _)) if *done < *size && now - at < BYTES_EVERY => return,
                    _ => {}
                }
                state.insert(i, (now, *done));
                (e.kind, e.index, e.done, e.total) = (RGTP_FILES_BYTES, i, *done, *size);
                (Some(c(path)), None)
            }
            FilesEvent::FileRetry {
                index,
                path,
                message,
                ..
            } => {
                (e.kind, e.index) = (RGTP_FILES_RETRY, *index as u64);
                (Some(c(path)), Some(c(message)))
            }
            FilesEvent::FileDone {
                index,
                path,
                bytes,
                seconds,
                skipped,
                total_done,
                ..
            } => {
                state.remove(&(*index as u64));
                (e.kind, e.index, e.done, e.total) =
                    (RGTP_FILES_DONE, *index as u64, *bytes, *bytes);
                (e.seconds, e.skipped, e.total_done) = (*seconds, u8::from(*skipped), *total_done);
                (Some(c(path)), None)
            }
            FilesEvent::FileFailed { index, path, kept } => {
                (e.kind, e.index) = (RGTP_FILES_FAILED, *index as u64);
                (Some(c(path)), kept.map(c))
            }
        };
        e.path = path.as_ref().map_or(std::ptr::null(), |p| p.as_ptr());
        e.message = message.as_ref().map_or(std::ptr::null(), |m| m.as_ptr());
        // SAFETY: the caller's callback and context (header contract); `e` and its
        // strings live until it returns.
        if unsafe { cb(&e, self.ctx) } != 0 {
            self.stop.store(true, Ordering::Relaxed);
        }
    }
}

/// See rgtp.h.
#[no_mangle]
pub unsafe extern "C" fn rgtp_get(
    ticket: *const c_char,
    dest: *const c_char,
    opts: *const rgtp_get_options_t,
    cb: rgtp_files_progress_cb,
    ctx: *mut c_void,
    out: *mut rgtp_get_result_t,
) -> c_int {
    files_guard(|| {
        // SAFETY: header contract.
        let Some(ticket) = (unsafe { opt_str(ticket, "ticket") })? else {
            return Err(bad_arg("ticket is NULL"));
        };
        let dest = if dest.is_null() {
            PathBuf::from(".")
        } else {
            // SAFETY: a NUL-terminated string (header contract).
            let d = unsafe { CStr::from_ptr(dest) };
            PathBuf::from(std::ffi::OsStr::from_bytes(d.to_bytes()))
        };
        type O = rgtp_get_options_t;
        // SAFETY: header contract.
        let o: O = unsafe {
            sized(
                opts,
                fields!(O: parallel_files, retries, restart, max_rate, max_rate_per_file,
                    max_rate_per_connection, connect_timeout_ms, idle_timeout_ms, sources,
                    n_sources),
            )
        }?;
        let mut go = files::GetOptions::new(ticket, dest);
        if o.n_sources > 0 {
            if o.sources.is_null() {
                return Err(bad_arg("sources is NULL but n_sources is not 0"));
            }
            if o.n_sources > MAX_SOURCES {
                return Err(bad_arg(&format!(
                    "{} sources: at most {MAX_SOURCES} more senders",
                    o.n_sources
                )));
            }
            // SAFETY: `n_sources` readable pointers (header contract).
            let list = unsafe { std::slice::from_raw_parts(o.sources, o.n_sources) };
            for (i, &p) in list.iter().enumerate() {
                // SAFETY: NULL or a NUL-terminated string (header contract).
                match unsafe { opt_str(p, &format!("sources[{i}]")) }? {
                    Some(src) => go.from.push(src.to_string()),
                    None => return Err(bad_arg(&format!("sources[{i}] is NULL"))),
                }
            }
        }
        go.parallel_files = o.parallel_files.clamp(1, 64);
        go.retries = o.retries;
        go.restart = o.restart != 0;
        go.caps = files::PullCaps {
            max_rate: rate(o.max_rate),
            max_rate_per_file: rate(o.max_rate_per_file),
            max_rate_per_connection: rate(o.max_rate_per_connection),
        };
        if o.connect_timeout_ms != 0 {
            go.connect_timeout = Duration::from_millis(o.connect_timeout_ms.into());
        }
        if o.idle_timeout_ms != 0 {
            go.idle_timeout = Duration::from_millis(o.idle_timeout_ms.into());
        }
        let progress = CProgress {
            cb,
            ctx,
            stop: AtomicBool::new(false),
            state: Mutex::new(HashMap::new()),
        };
        let got = files::fetch(&go, &progress, &progress.stop).map_err(|e| {
            if progress.stop.load(Ordering::Relaxed) {
                set_error("stopped by the progress callback");
                RGTP_FILES_STOPPED
            } else {
                fail(e)
            }
        })?;
        if !out.is_null() {
            let full = rgtp_get_result_t {
                size: size_of::<rgtp_get_result_t>(),
                files: got.files as u64,
                entries: got.entries as u64,
                bytes: got.bytes,
                seconds: got.seconds,
            };
            // SAFETY: a writable struct starting with its size (header contract).
            unsafe { write_sized(out, &full) }?;
        }
        Ok(())
    })
}
