//! The TEJ calls of the C ABI (`rgtp_tej_*`): blocking connections over TCP,
//! listeners, and received frames whose files were written under a directory.
//!
//! Three handle kinds, each `#[repr(C)]` with its magic word first, checked
//! before any other access as the RGTP handles are. A connection keeps its
//! stream behind a mutex, so calls on one connection from several threads
//! take turns. Failing calls leave their reason for `rgtp_tej_last_error`.

use std::cell::RefCell;
use std::ffi::{c_char, c_int, CStr, CString};
use std::io;
use std::os::unix::ffi::{OsStrExt, OsStringExt};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Mutex;
use std::time::Duration;

use redgiant_tej::blocking::{DirSink, TejListener, TejStream};
use redgiant_tej::{Config, OutFile, OutFrame};

use crate::abi::*;
use crate::surface::lock;
use crate::{guard, magic_of, put};

pub(crate) const TEJ_MAGIC: u64 = 0x5247_5450_5445_4a43; // "RGTPTEJC"
pub(crate) const TEJ_LISTENER_MAGIC: u64 = 0x5247_5450_5445_4a4c; // "RGTPTEJL"
pub(crate) const TEJ_FRAME_MAGIC: u64 = 0x5247_5450_5445_4a46; // "RGTPTEJF"

/// Opaque `rgtp_tej_t`.
#[allow(non_camel_case_types)]
pub enum rgtp_tej_t {}
/// Opaque `rgtp_tej_listener_t`.
#[allow(non_camel_case_types)]
pub enum rgtp_tej_listener_t {}
/// Opaque `rgtp_tej_frame_t`.
#[allow(non_camel_case_types)]
pub enum rgtp_tej_frame_t {}

/// A connection handle. `magic` must stay the first field.
#[repr(C)]
struct Tej {
    magic: AtomicU64,
    inner: Mutex<TejInner>,
}

struct TejInner {
    stream: TejStream,
    /// Kept between receives, so a frame a timeout interrupted goes on into
    /// the same files.
    sink: Option<DirSink>,
}

/// A listener handle. `magic` must stay the first field.
#[repr(C)]
struct Listener {
    magic: AtomicU64,
    listener: TejListener,
    /// The address, NUL-terminated.
    addr: Vec<u8>,
}

/// One received file: name as sent and saved path, each NUL-terminated.
struct FrameFile {
    name: Vec<u8>,
    path: Vec<u8>,
    size: u64,
}

/// A received frame handle. `magic` must stay the first field.
#[repr(C)]
struct Frame {
    magic: AtomicU64,
    status: u8,
    files: Vec<FrameFile>,
    message: Vec<u8>,
}

thread_local! {
    static LAST_ERROR: RefCell<CString> = RefCell::new(CString::default());
}

/// Keeps `msg` for `rgtp_tej_last_error` on this thread.
fn set_error(msg: &str) {
    let c = CString::new(msg.replace('\0', " ")).unwrap_or_default();
    LAST_ERROR.with(|e| *e.borrow_mut() = c);
}

/// The code of an I/O failure, its text kept for `rgtp_tej_last_error`.
fn fail(e: io::Error) -> c_int {
    set_error(&e.to_string());
    match e.kind() {
        io::ErrorKind::TimedOut | io::ErrorKind::WouldBlock => RGTP_ERR_TIMEOUT,
        io::ErrorKind::InvalidInput | io::ErrorKind::NotFound | io::ErrorKind::PermissionDenied => {
            RGTP_ERR_INVALID_ARG
        }
        _ => RGTP_ERR_SOCKET,
    }
}

/// An argument error, with its text.
fn bad_arg(msg: &str) -> c_int {
    set_error(msg);
    RGTP_ERR_INVALID_ARG
}

/// `guard`, also leaving a text for codes without one.
fn tej_guard(f: impl FnOnce() -> Result<(), c_int>) -> c_int {
    LAST_ERROR.with(|e| *e.borrow_mut() = CString::default());
    let code = guard(f);
    if code != RGTP_OK && LAST_ERROR.with(|e| e.borrow().is_empty()) {
        // SAFETY: rgtp_strerror returns a static NUL-terminated string.
        let text = unsafe { CStr::from_ptr(crate::rgtp_strerror(code)) };
        set_error(&text.to_string_lossy());
    }
    code
}

/// A handle's object if its magic says it is one.
///
/// # Safety
/// `p` is NULL or a handle this library returned (header contract).
unsafe fn handle<'a, T>(p: *const std::ffi::c_void, magic: u64) -> Result<&'a T, c_int> {
    // SAFETY: forwarded contract of `magic_of`.
    match unsafe { magic_of(p) } {
        // SAFETY: the magic says this is a live `T` allocated by `Box::into_raw`.
        Some(m) if m == magic => Ok(unsafe { &*(p as *const T) }),
        _ => Err(bad_arg("not a live handle of the expected kind")),
    }
}

/// Takes back a handle for freeing; `None` if it is not one (or lost a race).
///
/// # Safety
/// As [`handle`]; nothing uses the handle afterwards.
unsafe fn take<T>(
    p: *mut std::ffi::c_void,
    magic: u64,
    field: fn(&T) -> &AtomicU64,
) -> Option<Box<T>> {
    // SAFETY: forwarded contract.
    let h: &T = unsafe { handle(p, magic) }.ok()?;
    if field(h).swap(0, Ordering::AcqRel) != magic {
        return None;
    }
    // SAFETY: allocated by `Box::into_raw`; clearing the magic made it ours.
    Some(unsafe { Box::from_raw(p as *mut T) })
}

/// A NUL-terminated string argument.
///
/// # Safety
/// `s` is NULL or a readable NUL-terminated string.
unsafe fn c_str<'a>(s: *const c_char, what: &str) -> Result<&'a CStr, c_int> {
    if s.is_null() {
        return Err(bad_arg(&format!("{what} is NULL")));
    }
    // SAFETY: the caller passes a NUL-terminated string (header contract).
    Ok(unsafe { CStr::from_ptr(s) })
}

fn utf8<'a>(s: &'a CStr, what: &str) -> Result<&'a str, c_int> {
    s.to_str()
        .map_err(|_| bad_arg(&format!("{what} is not UTF-8")))
}

/// A byte buffer argument (NULL allowed for length 0).
///
/// # Safety
/// `p` points to `len` readable bytes, or `len` is 0.
unsafe fn bytes<'a>(p: *const u8, len: usize, what: &str) -> Result<&'a [u8], c_int> {
    match (p.is_null(), len) {
        (_, 0) => Ok(&[]),
        (true, _) => Err(bad_arg(&format!("{what} is NULL with a non-zero length"))),
        // SAFETY: caller contract.
        (false, n) => Ok(unsafe { std::slice::from_raw_parts(p, n) }),
    }
}

/// An array argument of `n` items (NULL allowed for 0).
///
/// # Safety
/// `p` points to `n` readable items, or `n` is 0.
unsafe fn array<'a, T>(p: *const T, n: usize, what: &str) -> Result<&'a [T], c_int> {
    match (p.is_null(), n) {
        (_, 0) => Ok(&[]),
        (true, _) => Err(bad_arg(&format!("{what} is NULL with a non-zero count"))),
        // SAFETY: caller contract.
        (false, n) => Ok(unsafe { std::slice::from_raw_parts(p, n) }),
    }
}

fn timeout(ms: i32) -> Option<Duration> {
    (ms >= 0).then(|| Duration::from_millis(ms as u64))
}

fn status_arg(status: u8) -> Result<u8, c_int> {
    if status > 127 {
        return Err(bad_arg(&format!(
            "status {status}: a TEJ status is 0 to 127"
        )));
    }
    Ok(status)
}

fn new_tej(stream: TejStream) -> *mut rgtp_tej_t {
    Box::into_raw(Box::new(Tej {
        magic: AtomicU64::new(TEJ_MAGIC),
        inner: Mutex::new(TejInner { stream, sink: None }),
    }))
    .cast()
}

// ---------------------------------------------------------------- errors

/// See rgtp.h.
#[no_mangle]
pub extern "C" fn rgtp_tej_last_error() -> *const c_char {
    LAST_ERROR.with(|e| e.borrow().as_ptr())
}

// ---------------------------------------------------------------- connections

/// See rgtp.h.
#[no_mangle]
pub unsafe extern "C" fn rgtp_tej_connect(addr: *const c_char, out: *mut *mut rgtp_tej_t) -> c_int {
    tej_guard(|| {
        if out.is_null() {
            return Err(bad_arg("out is NULL"));
        }
        // SAFETY: header contract.
        let addr = utf8(unsafe { c_str(addr, "addr") }?, "addr")?;
        let stream = TejStream::connect(addr, Config::default()).map_err(fail)?;
        // SAFETY: `out` is non-NULL and writable.
        unsafe { put(out, new_tej(stream)) }
    })
}

/// See rgtp.h.
#[no_mangle]
pub unsafe extern "C" fn rgtp_tej_send(
    t: *mut rgtp_tej_t,
    status: u8,
    paths: *const *const c_char,
    n_paths: usize,
    msg: *const u8,
    msg_len: usize,
) -> c_int {
    tej_guard(|| {
        // SAFETY: header contract for every pointer argument.
        let tej: &Tej = unsafe { handle(t.cast(), TEJ_MAGIC) }?;
        let status = status_arg(status)?;
        // SAFETY: as above.
        let paths = unsafe { array(paths, n_paths, "paths") }?;
        let mut list = Vec::with_capacity(paths.len());
        for (i, &p) in paths.iter().enumerate() {
            // SAFETY: as above.
            let p = unsafe { c_str(p, &format!("paths[{i}]")) }?;
            list.push(PathBuf::from(std::ffi::OsStr::from_bytes(p.to_bytes())));
        }
        // SAFETY: as above.
        let msg = unsafe { bytes(msg, msg_len, "msg") }?;
        let mut inner = lock(&tej.inner)?;
        inner.stream.send_files(status, &list, msg).map_err(fail)
    })
}

/// See rgtp.h.
#[no_mangle]
pub unsafe extern "C" fn rgtp_tej_send_bytes(
    t: *mut rgtp_tej_t,
    status: u8,
    names: *const *const c_char,
    datas: *const *const u8,
    lens: *const usize,
    n_files: usize,
    msg: *const u8,
    msg_len: usize,
) -> c_int {
    tej_guard(|| {
        // SAFETY: header contract for every pointer argument.
        let tej: &Tej = unsafe { handle(t.cast(), TEJ_MAGIC) }?;
        let status = status_arg(status)?;
        // SAFETY: as above.
        let (names, datas, lens) = unsafe {
            (
                array(names, n_files, "names")?,
                array(datas, n_files, "datas")?,
                array(lens, n_files, "lens")?,
            )
        };
        let mut files = Vec::with_capacity(n_files);
        for i in 0..n_files {
            // SAFETY: as above.
            let name = utf8(unsafe { c_str(names[i], "a name") }?, "a name")?;
            // SAFETY: as above.
            let data = unsafe { bytes(datas[i], lens[i], "a file buffer") }?;
            files.push(OutFile::bytes(name, data.to_vec()));
        }
        // SAFETY: as above.
        let msg = unsafe { bytes(msg, msg_len, "msg") }?.to_vec();
        let mut inner = lock(&tej.inner)?;
        inner
            .stream
            .send_frame(OutFrame {
                status,
                files,
                message: msg,
            })
            .map_err(fail)
    })
}

/// See rgtp.h.
#[no_mangle]
pub unsafe extern "C" fn rgtp_tej_ping(t: *mut rgtp_tej_t) -> c_int {
    tej_guard(|| {
        // SAFETY: header contract.
        let tej: &Tej = unsafe { handle(t.cast(), TEJ_MAGIC) }?;
        lock(&tej.inner)?.stream.ping().map_err(fail)
    })
}

/// See rgtp.h.
#[no_mangle]
pub unsafe extern "C" fn rgtp_tej_pings_received(t: *const rgtp_tej_t, out: *mut u64) -> c_int {
    tej_guard(|| {
        // SAFETY: header contract.
        let tej: &Tej = unsafe { handle(t.cast(), TEJ_MAGIC) }?;
        if out.is_null() {
            return Err(bad_arg("out is NULL"));
        }
        let n = lock(&tej.inner)?.stream.pings_received();
        // SAFETY: `out` is non-NULL and writable (header contract).
        unsafe { put(out, n) }
    })
}

/// See rgtp.h.
#[no_mangle]
pub unsafe extern "C" fn rgtp_tej_recv_to_dir(
    t: *mut rgtp_tej_t,
    dir: *const c_char,
    timeout_ms: i32,
    out: *mut *mut rgtp_tej_frame_t,
) -> c_int {
    tej_guard(|| {
        // SAFETY: header contract.
        let tej: &Tej = unsafe { handle(t.cast(), TEJ_MAGIC) }?;
        if out.is_null() {
            return Err(bad_arg("out is NULL"));
        }
        // SAFETY: header contract.
        let dir = unsafe { c_str(dir, "dir") }?;
        let dir = Path::new(std::ffi::OsStr::from_bytes(dir.to_bytes()));
        let mut guard = lock(&tej.inner)?;
        let inner = &mut *guard;
        let same_dir = matches!(&inner.sink, Some(s) if s.dir() == dir);
        if !same_dir {
            inner.sink = Some(DirSink::new(dir).map_err(fail)?);
        }
        let Some(sink) = inner.sink.as_mut() else {
            return Err(RGTP_ERR_INTERNAL);
        };
        inner.stream.set_read_timeout(timeout(timeout_ms));
        let got = inner.stream.recv(sink).map_err(fail)?;
        let frame = got.map(|info| {
            let files = info
                .files
                .into_iter()
                .zip(sink.saved())
                .map(|(f, p)| FrameFile {
                    name: nul_terminated(f.name.into_bytes()),
                    path: nul_terminated(p.clone().into_os_string().into_vec()),
                    size: f.len,
                })
                .collect();
            Box::into_raw(Box::new(Frame {
                magic: AtomicU64::new(TEJ_FRAME_MAGIC),
                status: info.status,
                files,
                message: info.message,
            }))
            .cast()
        });
        // SAFETY: `out` is non-NULL and writable.
        unsafe { put(out, frame.unwrap_or(std::ptr::null_mut())) }
    })
}

fn nul_terminated(mut v: Vec<u8>) -> Vec<u8> {
    v.push(0);
    v
}

/// See rgtp.h.
#[no_mangle]
pub unsafe extern "C" fn rgtp_tej_close(t: *mut rgtp_tej_t) -> c_int {
    tej_guard(|| {
        // SAFETY: header contract: nothing uses the handle after this call.
        let Some(tej) = (unsafe { take::<Tej>(t.cast(), TEJ_MAGIC, |h| &h.magic) }) else {
            return Err(bad_arg("not a live TEJ connection"));
        };
        let inner = tej.inner.into_inner().map_err(|_| RGTP_ERR_INTERNAL)?;
        inner.stream.close().map_err(fail)
    })
}

// ---------------------------------------------------------------- listeners

/// See rgtp.h.
#[no_mangle]
pub unsafe extern "C" fn rgtp_tej_listen(
    bind: *const c_char,
    out: *mut *mut rgtp_tej_listener_t,
) -> c_int {
    tej_guard(|| {
        if out.is_null() {
            return Err(bad_arg("out is NULL"));
        }
        // SAFETY: header contract.
        let bind = utf8(unsafe { c_str(bind, "bind") }?, "bind")?;
        let listener = TejListener::bind(bind, Config::default()).map_err(fail)?;
        let addr = listener.local_addr().map_err(fail)?;
        let l = Box::new(Listener {
            magic: AtomicU64::new(TEJ_LISTENER_MAGIC),
            listener,
            addr: nul_terminated(addr.to_string().into_bytes()),
        });
        // SAFETY: `out` is non-NULL and writable.
        unsafe { put(out, Box::into_raw(l).cast()) }
    })
}

/// See rgtp.h.
#[no_mangle]
pub unsafe extern "C" fn rgtp_tej_listener_addr(
    l: *const rgtp_tej_listener_t,
    buf: *mut c_char,
    buf_len: usize,
    out_len: *mut usize,
) -> c_int {
    tej_guard(|| {
        // SAFETY: header contract.
        let l: &Listener = unsafe { handle(l.cast(), TEJ_LISTENER_MAGIC) }?;
        if !out_len.is_null() {
            // SAFETY: non-NULL and writable (header contract).
            unsafe { put(out_len, l.addr.len()) }?;
        }
        if buf.is_null() || buf_len < l.addr.len() {
            return Err(bad_arg("the buffer is NULL or too small for the address"));
        }
        // SAFETY: `buf` has room for `buf_len >= addr.len()` bytes (header contract).
        unsafe { std::ptr::copy_nonoverlapping(l.addr.as_ptr(), buf.cast(), l.addr.len()) };
        Ok(())
    })
}

/// See rgtp.h.
#[no_mangle]
pub unsafe extern "C" fn rgtp_tej_accept(
    l: *mut rgtp_tej_listener_t,
    timeout_ms: i32,
    out: *mut *mut rgtp_tej_t,
) -> c_int {
    tej_guard(|| {
        // SAFETY: header contract.
        let l: &Listener = unsafe { handle(l.cast(), TEJ_LISTENER_MAGIC) }?;
        if out.is_null() {
            return Err(bad_arg("out is NULL"));
        }
        match l
            .listener
            .accept_timeout(timeout(timeout_ms))
            .map_err(fail)?
        {
            // SAFETY: `out` is non-NULL and writable.
            Some((stream, _)) => unsafe { put(out, new_tej(stream)) },
            None => {
                set_error("no connection within the timeout");
                Err(RGTP_ERR_TIMEOUT)
            }
        }
    })
}

/// See rgtp.h.
#[no_mangle]
pub unsafe extern "C" fn rgtp_tej_listener_close(l: *mut rgtp_tej_listener_t) {
    let _ = tej_guard(|| {
        // SAFETY: header contract: nothing uses the handle after this call.
        drop(unsafe { take::<Listener>(l.cast(), TEJ_LISTENER_MAGIC, |h| &h.magic) });
        Ok(())
    });
}

// ---------------------------------------------------------------- frames

/// The frame behind a handle, or None.
///
/// # Safety
/// Header contract.
unsafe fn frame<'a>(f: *const rgtp_tej_frame_t) -> Option<&'a Frame> {
    // SAFETY: forwarded.
    unsafe { handle(f.cast(), TEJ_FRAME_MAGIC) }.ok()
}

/// Writes `len` to `out_len` when it is not NULL.
///
/// # Safety
/// `out_len` is NULL or writable.
unsafe fn put_len(out_len: *mut usize, len: usize) {
    if !out_len.is_null() {
        // SAFETY: caller contract.
        unsafe { std::ptr::write_unaligned(out_len, len) };
    }
}

/// See rgtp.h.
#[no_mangle]
pub unsafe extern "C" fn rgtp_tej_frame_status(f: *const rgtp_tej_frame_t) -> u8 {
    // SAFETY: header contract.
    unsafe { frame(f) }.map_or(0, |f| f.status)
}

/// See rgtp.h.
#[no_mangle]
pub unsafe extern "C" fn rgtp_tej_frame_file_count(f: *const rgtp_tej_frame_t) -> usize {
    // SAFETY: header contract.
    unsafe { frame(f) }.map_or(0, |f| f.files.len())
}

/// See rgtp.h.
#[no_mangle]
pub unsafe extern "C" fn rgtp_tej_frame_file_name(
    f: *const rgtp_tej_frame_t,
    i: usize,
    out_len: *mut usize,
) -> *const c_char {
    // SAFETY: header contract.
    match unsafe { frame(f) }.and_then(|f| f.files.get(i)) {
        Some(file) => {
            // SAFETY: header contract.
            unsafe { put_len(out_len, file.name.len() - 1) };
            file.name.as_ptr().cast()
        }
        None => std::ptr::null(),
    }
}

/// See rgtp.h.
#[no_mangle]
pub unsafe extern "C" fn rgtp_tej_frame_file_path(
    f: *const rgtp_tej_frame_t,
    i: usize,
    out_len: *mut usize,
) -> *const c_char {
    // SAFETY: header contract.
    match unsafe { frame(f) }.and_then(|f| f.files.get(i)) {
        Some(file) => {
            // SAFETY: header contract.
            unsafe { put_len(out_len, file.path.len() - 1) };
            file.path.as_ptr().cast()
        }
        None => std::ptr::null(),
    }
}

/// See rgtp.h.
#[no_mangle]
pub unsafe extern "C" fn rgtp_tej_frame_file_size(f: *const rgtp_tej_frame_t, i: usize) -> u64 {
    // SAFETY: header contract.
    unsafe { frame(f) }
        .and_then(|f| f.files.get(i))
        .map_or(0, |file| file.size)
}

/// See rgtp.h.
#[no_mangle]
pub unsafe extern "C" fn rgtp_tej_frame_message(
    f: *const rgtp_tej_frame_t,
    out_len: *mut usize,
) -> *const u8 {
    // SAFETY: header contract.
    match unsafe { frame(f) } {
        Some(f) => {
            // SAFETY: header contract.
            unsafe { put_len(out_len, f.message.len()) };
            f.message.as_ptr()
        }
        None => {
            // SAFETY: header contract.
            unsafe { put_len(out_len, 0) };
            std::ptr::null()
        }
    }
}

/// See rgtp.h.
#[no_mangle]
pub unsafe extern "C" fn rgtp_tej_frame_free(f: *mut rgtp_tej_frame_t) {
    let _ = guard(|| {
        // SAFETY: header contract: nothing uses the handle after this call.
        drop(unsafe { take::<Frame>(f.cast(), TEJ_FRAME_MAGIC, |h| &h.magic) });
        Ok(())
    });
}
