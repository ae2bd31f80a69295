//! Flows through the C ABI: `rgtp_flow_*`, the blocking runtime of
//! `redgiant_flow::net` (a node, flows by name with a QoS, broadcast groups,
//! flow sets) behind opaque handles, with the flags of Ouroboros' fccntl
//! (access mode, non-blocking reads and writes, no partial reads or writes).
//! The contract is in `include/rgtp.h`, section "Flows". Failing calls
//! leave their reason for `rgtp_flow_last_error`.

use std::cell::RefCell;
use std::collections::VecDeque;
use std::ffi::{c_char, c_int, CStr, CString};
use std::mem::size_of;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicU32, AtomicU64, Ordering};
use std::sync::Mutex;
use std::time::Duration;

use redgiant_flow::net::join::Group;
use redgiant_flow::net::{EventKind, Flow, FlowEvent, FlowNetError, FlowNode, FlowSet};
use redgiant_flow::{Layers, QoS};

use crate::abi::*;
use crate::{guard, magic_of, put};

const NODE_MAGIC: u64 = 0x5247_5450_464c_4e44; // "RGTPFLND"
const FLOW_MAGIC: u64 = 0x5247_5450_464c_4f57; // "RGTPFLOW"
/// Longest wait of `rgtp_flow_dealloc` for what was written to go out.
const LINGER: Duration = Duration::from_secs(2);
const SET_MAGIC: u64 = 0x5247_5450_464c_5354; // "RGTPFLST"

/// A non-blocking call found nothing to do.
pub const RGTP_FLOW_ERR_WOULD_BLOCK: c_int = -100;
/// The flow was deallocated on this end (perhaps by another thread).
pub const RGTP_FLOW_ERR_DEALLOCATED: c_int = -101;
/// The peer deallocated the flow or went silent past the QoS timeout.
pub const RGTP_FLOW_ERR_PEER_GONE: c_int = -102;
/// No node registered the name anywhere looked.
pub const RGTP_FLOW_ERR_UNKNOWN_NAME: c_int = -103;
/// The peer refused the allocation.
pub const RGTP_FLOW_ERR_REFUSED: c_int = -104;
/// An SDU larger than a flow carries, or than the read buffer (no partial read).
pub const RGTP_FLOW_ERR_TOO_LARGE: c_int = -105;
/// The access mode forbids the call (a write on a read-only flow, …).
pub const RGTP_FLOW_ERR_PERMISSION: c_int = -106;

/// fccntl flags, with Ouroboros' values.
pub const RGTP_FLOW_F_RDONLY: u32 = 0o0;
pub const RGTP_FLOW_F_WRONLY: u32 = 0o1;
pub const RGTP_FLOW_F_RDWR: u32 = 0o2;
pub const RGTP_FLOW_F_ACCMODE: u32 = 0o3;
pub const RGTP_FLOW_F_DOWN: u32 = 0o4;
pub const RGTP_FLOW_F_RNOBLOCK: u32 = 0o1000;
pub const RGTP_FLOW_F_WNOBLOCK: u32 = 0o2000;
pub const RGTP_FLOW_F_RNOPART: u32 = 0o10000;
pub const RGTP_FLOW_F_WNOPART: u32 = 0o200000;
const SETTABLE: u32 = RGTP_FLOW_F_ACCMODE
    | RGTP_FLOW_F_RNOBLOCK
    | RGTP_FLOW_F_WNOBLOCK
    | RGTP_FLOW_F_RNOPART
    | RGTP_FLOW_F_WNOPART;

/// Event types, with Ouroboros' values.
pub const RGTP_FLOW_EV_PKT: c_int = 1 << 0;
pub const RGTP_FLOW_EV_DOWN: c_int = 1 << 1;
pub const RGTP_FLOW_EV_UP: c_int = 1 << 2;
pub const RGTP_FLOW_EV_ALLOC: c_int = 1 << 3;
pub const RGTP_FLOW_EV_DEALLOC: c_int = 1 << 4;

/// Opaque handles as C sees them.
#[repr(C)]
#[allow(non_camel_case_types)]
pub struct rgtp_flow_node_t {
    _opaque: [u8; 0],
}

#[repr(C)]
#[allow(non_camel_case_types)]
pub struct rgtp_flow_t {
    _opaque: [u8; 0],
}

#[repr(C)]
#[allow(non_camel_case_types)]
pub struct rgtp_flow_set_t {
    _opaque: [u8; 0],
}

/// `rgtp_flow_qos_t`: a QoS specification; `size` first so it can grow.
#[repr(C)]
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[allow(non_camel_case_types)]
pub struct rgtp_flow_qos_t {
    pub size: usize,
    pub delay: u32,
    pub bandwidth: u64,
    pub availability: u8,
    pub loss: u32,
    pub ber: u32,
    pub in_order: u8,
    pub max_gap: u32,
    pub cypher_s: u16,
    pub timeout: u32,
}

impl From<QoS> for rgtp_flow_qos_t {
    fn from(q: QoS) -> Self {
        rgtp_flow_qos_t {
            size: size_of::<Self>(),
            delay: q.delay,
            bandwidth: q.bandwidth,
            availability: q.availability,
            loss: q.loss,
            ber: q.ber,
            in_order: q.in_order,
            max_gap: q.max_gap,
            cypher_s: q.cypher_s,
            timeout: q.timeout,
        }
    }
}

impl From<rgtp_flow_qos_t> for QoS {
    fn from(q: rgtp_flow_qos_t) -> Self {
        QoS {
            delay: q.delay,
            bandwidth: q.bandwidth,
            availability: q.availability,
            loss: q.loss,
            ber: q.ber,
            in_order: q.in_order,
            max_gap: q.max_gap,
            cypher_s: q.cypher_s,
            timeout: q.timeout,
        }
    }
}

/// `rgtp_flow_event_t`: one event of a flow set.
#[repr(C)]
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
#[allow(non_camel_case_types)]
pub struct rgtp_flow_event_t {
    /// The flow's id (`rgtp_flow_id`).
    pub flow: u64,
    /// `RGTP_FLOW_EV_*`.
    pub kind: c_int,
}

#[repr(C)]
struct NodeHandle {
    magic: AtomicU64,
    node: FlowNode,
}

enum Kind {
    Flow(Flow),
    Group(Group),
}

#[repr(C)]
struct FlowHandle {
    magic: AtomicU64,
    flags: AtomicU32,
    kind: Kind,
    /// What is left of an SDU read in part.
    rest: Mutex<Vec<u8>>,
}

#[repr(C)]
struct SetHandle {
    magic: AtomicU64,
    set: FlowSet,
    /// Events waited for but not handed out yet (the caller's array was full).
    queue: Mutex<VecDeque<FlowEvent>>,
}

thread_local! {
    static LAST_ERROR: RefCell<CString> = RefCell::new(CString::default());
}

fn set_error(msg: &str) {
    let c = CString::new(msg.replace('\0', " ")).unwrap_or_default();
    LAST_ERROR.with(|e| *e.borrow_mut() = c);
}

fn fail(code: c_int, msg: &str) -> c_int {
    set_error(msg);
    code
}

fn bad_arg(msg: &str) -> c_int {
    fail(RGTP_ERR_INVALID_ARG, msg)
}

/// The code of a runtime error, its text kept for `rgtp_flow_last_error`.
fn net_error(e: FlowNetError) -> c_int {
    let code = match &e {
        FlowNetError::UnknownName { .. } => RGTP_FLOW_ERR_UNKNOWN_NAME,
        FlowNetError::Refused { .. } => RGTP_FLOW_ERR_REFUSED,
        FlowNetError::TimedOut { .. } => RGTP_ERR_TIMEOUT,
        FlowNetError::PeerGone => RGTP_FLOW_ERR_PEER_GONE,
        FlowNetError::Deallocated => RGTP_FLOW_ERR_DEALLOCATED,
        FlowNetError::TooLarge { .. } => RGTP_FLOW_ERR_TOO_LARGE,
        FlowNetError::WouldBlock => RGTP_FLOW_ERR_WOULD_BLOCK,
        FlowNetError::BadName(_) | FlowNetError::NoSuchFlow => RGTP_ERR_INVALID_ARG,
        FlowNetError::Unsupported(_) => RGTP_ERR_NOT_SUPPORTED,
        _ => RGTP_ERR_SOCKET,
    };
    fail(code, &e.to_string())
}

/// `guard`, clearing the last error first and leaving a text for codes without one.
fn flow_guard(f: impl FnOnce() -> Result<(), c_int>) -> c_int {
    LAST_ERROR.with(|e| *e.borrow_mut() = CString::default());
    let code = guard(f);
    if code != RGTP_OK && LAST_ERROR.with(|e| e.borrow().is_empty()) {
        // SAFETY: rgtp_strerror returns a static NUL-terminated string.
        let text = unsafe { CStr::from_ptr(crate::rgtp_strerror(code)) };
        set_error(&text.to_string_lossy());
    }
    code
}

/// The object behind a handle if its magic says it is one.
///
/// # Safety
/// `p` is NULL or a handle this library returned (header contract).
unsafe fn handle<'a, T>(
    p: *const std::ffi::c_void,
    magic: u64,
    what: &str,
) -> Result<&'a T, c_int> {
    // SAFETY: forwarded contract of `magic_of`.
    match unsafe { magic_of(p) } {
        // SAFETY: the magic says this is a live `T` allocated by `Box::into_raw`.
        Some(m) if m == magic => Ok(unsafe { &*(p as *const T) }),
        _ => Err(bad_arg(&format!("not a live {what} handle"))),
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
    let h: &T = unsafe { handle(p, magic, "") }.ok()?;
    if field(h).swap(0, Ordering::AcqRel) != magic {
        return None;
    }
    // SAFETY: allocated by `Box::into_raw`; clearing the magic made it ours.
    Some(unsafe { Box::from_raw(p as *mut T) })
}

unsafe fn node<'a>(p: *const rgtp_flow_node_t) -> Result<&'a NodeHandle, c_int> {
    // SAFETY: forwarded contract.
    unsafe { handle(p.cast(), NODE_MAGIC, "flow node") }
}

unsafe fn flow<'a>(p: *const rgtp_flow_t) -> Result<&'a FlowHandle, c_int> {
    // SAFETY: forwarded contract.
    unsafe { handle(p.cast(), FLOW_MAGIC, "flow") }
}

unsafe fn set<'a>(p: *const rgtp_flow_set_t) -> Result<&'a SetHandle, c_int> {
    // SAFETY: forwarded contract.
    unsafe { handle(p.cast(), SET_MAGIC, "flow set") }
}

/// A NUL-terminated UTF-8 string argument.
///
/// # Safety
/// `s` is NULL or a readable NUL-terminated string.
unsafe fn text<'a>(s: *const c_char, what: &str) -> Result<&'a str, c_int> {
    if s.is_null() {
        return Err(bad_arg(&format!("{what} is NULL")));
    }
    // SAFETY: the caller passes a NUL-terminated string (header contract).
    unsafe { CStr::from_ptr(s) }
        .to_str()
        .map_err(|_| bad_arg(&format!("{what} is not UTF-8")))
}

/// The QoS the caller passed (NULL: the Ouroboros defaults), fields beyond
/// its `size` at their defaults.
///
/// # Safety
/// `p` is NULL or a readable `rgtp_flow_qos_t` of at least its `size` bytes.
unsafe fn qos_arg(p: *const rgtp_flow_qos_t) -> Result<QoS, c_int> {
    let mut q = rgtp_flow_qos_t::from(QoS::default());
    if p.is_null() {
        return Ok(QoS::default());
    }
    // SAFETY: a readable struct starting with its size (header contract).
    let size = unsafe { std::ptr::read_unaligned(p.cast::<usize>()) };
    if size < size_of::<usize>() {
        return Err(bad_arg("rgtp_flow_qos_t.size is smaller than a size_t"));
    }
    let n = size.min(size_of::<rgtp_flow_qos_t>());
    // SAFETY: `n` readable bytes at `p`; every field is an integer.
    unsafe {
        std::ptr::copy_nonoverlapping(
            p.cast::<u8>(),
            (&mut q as *mut rgtp_flow_qos_t).cast::<u8>(),
            n,
        )
    };
    Ok(q.into())
}

fn timeout(ms: i32) -> Option<Duration> {
    (ms >= 0).then(|| Duration::from_millis(ms as u64))
}

/// Waits "for ever" where the runtime wants a bound: a year.
fn bounded(ms: i32) -> Duration {
    timeout(ms).unwrap_or(Duration::from_secs(365 * 24 * 3600))
}

/// How long a read or write may wait: not at all when non-blocking, else `timeout_ms`.
fn wait_of(nonblocking: bool, timeout_ms: i32) -> Option<Duration> {
    if nonblocking {
        Some(Duration::ZERO)
    } else {
        timeout(timeout_ms)
    }
}

/// A read's or write's error as a code: a non-blocking call that ran out of time
/// would have blocked.
fn io_error(e: FlowNetError, nonblocking: bool) -> c_int {
    match e {
        FlowNetError::TimedOut { .. } if nonblocking => net_error(FlowNetError::WouldBlock),
        e => net_error(e),
    }
}

/// Refuses a read or write the flow's access mode (`flags`) does not allow: `mode`
/// is the mode that forbids it, `doing` what was tried, `allow` the modes that would.
fn check_access(flags: u32, mode: u32, doing: &str, allow: &str) -> Result<(), c_int> {
    if flags & RGTP_FLOW_F_ACCMODE != mode {
        return Ok(());
    }
    let name = if mode == RGTP_FLOW_F_RDONLY {
        "read-only (RGTP_FLOW_F_RDONLY)"
    } else {
        "write-only (RGTP_FLOW_F_WRONLY)"
    };
    Err(fail(
        RGTP_FLOW_ERR_PERMISSION,
        &format!("the flow is {name}; set {allow} to {doing}"),
    ))
}

/// The body of the calls that make a flow handle on node `n` into `out`: checks
/// both, runs `make` and hands out the handle.
///
/// # Safety
/// `n` and `out` as the header says for these calls.
unsafe fn open_flow(
    n: *mut rgtp_flow_node_t,
    out: *mut *mut rgtp_flow_t,
    make: impl FnOnce(&NodeHandle) -> Result<Kind, c_int>,
) -> c_int {
    flow_guard(|| {
        if out.is_null() {
            return Err(bad_arg("out is NULL"));
        }
        // SAFETY: header contract.
        let h = unsafe { node(n) }?;
        let kind = make(h)?;
        // SAFETY: `out` is non-NULL and writable (header contract).
        unsafe { std::ptr::write_unaligned(out, new_flow(kind)) };
        Ok(())
    })
}

/// Writes `s` and a NUL into `buf` if it fits; the size needed with the NUL.
///
/// # Safety
/// `buf` is NULL or has `len` writable bytes.
unsafe fn copy_text(s: &str, buf: *mut c_char, len: usize) -> usize {
    let need = s.len() + 1;
    if !buf.is_null() && len >= need {
        // SAFETY: `len >= need` writable bytes at `buf`.
        unsafe {
            std::ptr::copy_nonoverlapping(s.as_ptr(), buf.cast::<u8>(), s.len());
            *buf.add(s.len()) = 0;
        }
    }
    need
}

fn new_flow(kind: Kind) -> *mut rgtp_flow_t {
    Box::into_raw(Box::new(FlowHandle {
        magic: AtomicU64::new(FLOW_MAGIC),
        flags: AtomicU32::new(RGTP_FLOW_F_RDWR),
        kind,
        rest: Mutex::new(Vec::new()),
    }))
    .cast()
}

impl Kind {
    fn read(&self, t: Option<Duration>) -> Result<Vec<u8>, FlowNetError> {
        match self {
            Kind::Flow(f) => f.read(t),
            Kind::Group(g) => g.read(t),
        }
    }

    fn write(&self, sdu: &[u8], t: Option<Duration>) -> Result<(), FlowNetError> {
        match self {
            Kind::Flow(f) => f.write_timeout(sdu, t),
            Kind::Group(g) => g.write_timeout(sdu, t),
        }
    }

    fn dealloc(&self) -> Result<(), FlowNetError> {
        match self {
            Kind::Flow(f) => f.dealloc(),
            Kind::Group(g) => g.dealloc(),
        }
    }

    fn qos(&self) -> QoS {
        match self {
            Kind::Flow(f) => f.qos(),
            Kind::Group(g) => g.qos(),
        }
    }

    fn layers(&self) -> Layers {
        match self {
            Kind::Flow(f) => f.layers(),
            Kind::Group(g) => g.layers(),
        }
    }
}

// ---------------------------------------------------------------- errors

/// See rgtp.h.
#[no_mangle]
pub extern "C" fn rgtp_flow_last_error() -> *const c_char {
    LAST_ERROR.with(|e| e.borrow().as_ptr())
}

/// See rgtp.h.
#[no_mangle]
pub unsafe extern "C" fn rgtp_flow_qos_preset(
    name: *const c_char,
    out: *mut rgtp_flow_qos_t,
) -> c_int {
    flow_guard(|| {
        // SAFETY: header contract.
        let name = unsafe { text(name, "name") }?;
        let q = QoS::preset(name).ok_or_else(|| {
            let known: Vec<&str> = QoS::PRESETS.iter().map(|(n, _)| *n).collect();
            bad_arg(&format!(
                "no QoS preset {name:?}; the presets are {}",
                known.join(", ")
            ))
        })?;
        // SAFETY: header contract: a writable rgtp_flow_qos_t.
        unsafe { put(out, q.into()) }
    })
}

// ---------------------------------------------------------------- nodes

/// See rgtp.h.
#[no_mangle]
pub unsafe extern "C" fn rgtp_flow_node_open(
    bind: *const c_char,
    out: *mut *mut rgtp_flow_node_t,
) -> c_int {
    flow_guard(|| {
        if out.is_null() {
            return Err(bad_arg("out is NULL"));
        }
        let bind = if bind.is_null() {
            "0.0.0.0:0"
        } else {
            // SAFETY: header contract.
            unsafe { text(bind, "bind") }?
        };
        let addr: SocketAddr = redgiant_flow::net::names::resolve(bind)
            .map_err(|e| bad_arg(&format!("bind address {bind:?}: {e}")))?;
        let n = FlowNode::bind(addr).map_err(net_error)?;
        let raw = Box::into_raw(Box::new(NodeHandle {
            magic: AtomicU64::new(NODE_MAGIC),
            node: n,
        }));
        // SAFETY: `out` is non-NULL and writable (header contract).
        unsafe { std::ptr::write_unaligned(out, raw.cast()) };
        Ok(())
    })
}

/// See rgtp.h.
#[no_mangle]
pub unsafe extern "C" fn rgtp_flow_node_close(n: *mut rgtp_flow_node_t) {
    let _ = flow_guard(|| {
        // SAFETY: header contract: NULL or a live node handle, unused afterwards.
        drop(unsafe { take::<NodeHandle>(n.cast(), NODE_MAGIC, |h| &h.magic) });
        Ok(())
    });
}

/// See rgtp.h.
#[no_mangle]
pub unsafe extern "C" fn rgtp_flow_node_addr(
    n: *const rgtp_flow_node_t,
    buf: *mut c_char,
    len: usize,
) -> usize {
    let mut need = 0;
    let _ = flow_guard(|| {
        // SAFETY: header contract.
        let h = unsafe { node(n) }?;
        // SAFETY: header contract: `len` writable bytes at `buf`.
        need = unsafe { copy_text(&h.node.local_addr().to_string(), buf, len) };
        Ok(())
    });
    need
}

/// See rgtp.h.
#[no_mangle]
pub unsafe extern "C" fn rgtp_flow_register(
    n: *mut rgtp_flow_node_t,
    name: *const c_char,
) -> c_int {
    flow_guard(|| {
        // SAFETY: header contract.
        let h = unsafe { node(n) }?;
        // SAFETY: header contract.
        let name = unsafe { text(name, "name") }?;
        h.node.register(name).map_err(net_error)
    })
}

/// See rgtp.h.
#[no_mangle]
pub unsafe extern "C" fn rgtp_flow_unregister(
    n: *mut rgtp_flow_node_t,
    name: *const c_char,
) -> c_int {
    flow_guard(|| {
        // SAFETY: header contract.
        let h = unsafe { node(n) }?;
        // SAFETY: header contract.
        let name = unsafe { text(name, "name") }?;
        h.node.unregister(name);
        Ok(())
    })
}

// ---------------------------------------------------------------- allocation

/// See rgtp.h.
#[no_mangle]
pub unsafe extern "C" fn rgtp_flow_alloc(
    n: *mut rgtp_flow_node_t,
    name: *const c_char,
    qos: *const rgtp_flow_qos_t,
    timeout_ms: i32,
    out: *mut *mut rgtp_flow_t,
) -> c_int {
    // SAFETY: header contract.
    unsafe {
        open_flow(n, out, |h| {
            let (name, qos) = (text(name, "name")?, qos_arg(qos)?);
            let f = h.node.alloc(name, qos, bounded(timeout_ms));
            Ok(Kind::Flow(f.map_err(net_error)?))
        })
    }
}

/// See rgtp.h.
#[no_mangle]
pub unsafe extern "C" fn rgtp_flow_accept(
    n: *mut rgtp_flow_node_t,
    timeout_ms: i32,
    qos_out: *mut rgtp_flow_qos_t,
    out: *mut *mut rgtp_flow_t,
) -> c_int {
    // SAFETY: header contract.
    unsafe {
        open_flow(n, out, |h| {
            let f = h.node.accept(timeout(timeout_ms)).map_err(net_error)?;
            if !qos_out.is_null() {
                // NULL or a writable rgtp_flow_qos_t (header contract).
                put(qos_out, f.qos().into())?;
            }
            Ok(Kind::Flow(f))
        })
    }
}

/// See rgtp.h.
#[no_mangle]
pub unsafe extern "C" fn rgtp_flow_join(
    n: *mut rgtp_flow_node_t,
    name: *const c_char,
    qos: *const rgtp_flow_qos_t,
    timeout_ms: i32,
    out: *mut *mut rgtp_flow_t,
) -> c_int {
    // SAFETY: header contract.
    unsafe {
        open_flow(n, out, |h| {
            let (name, qos) = (text(name, "name")?, qos_arg(qos)?);
            let g = h.node.join(name, qos, bounded(timeout_ms));
            Ok(Kind::Group(g.map_err(net_error)?))
        })
    }
}

// ---------------------------------------------------------------- data

/// See rgtp.h.
#[no_mangle]
pub unsafe extern "C" fn rgtp_flow_write(
    f: *mut rgtp_flow_t,
    data: *const u8,
    len: usize,
    timeout_ms: i32,
    written: *mut usize,
) -> c_int {
    flow_guard(|| {
        // SAFETY: header contract.
        let h = unsafe { flow(f) }?;
        let data = match (data.is_null(), len) {
            (_, 0) => &[][..],
            (true, _) => return Err(bad_arg("data is NULL with a non-zero length")),
            // SAFETY: header contract: `len` readable bytes at `data`.
            (false, n) => unsafe { std::slice::from_raw_parts(data, n) },
        };
        let flags = h.flags.load(Ordering::Acquire);
        let allow = "RGTP_FLOW_F_WRONLY or RGTP_FLOW_F_RDWR";
        check_access(flags, RGTP_FLOW_F_RDONLY, "write", allow)?;
        let nonblocking = flags & RGTP_FLOW_F_WNOBLOCK != 0;
        let t = wait_of(nonblocking, timeout_ms);
        let map = |e: FlowNetError| io_error(e, nonblocking);
        let sent = match h.kind.write(data, t) {
            Ok(()) => data.len(),
            Err(FlowNetError::TooLarge { max, .. }) if flags & RGTP_FLOW_F_WNOPART == 0 => {
                h.kind.write(&data[..max], t).map_err(map)?;
                max
            }
            Err(e) => return Err(map(e)),
        };
        if !written.is_null() {
            // SAFETY: header contract: NULL or a writable size_t.
            unsafe { put(written, sent) }?;
        }
        Ok(())
    })
}

/// See rgtp.h.
#[no_mangle]
pub unsafe extern "C" fn rgtp_flow_read(
    f: *mut rgtp_flow_t,
    buf: *mut u8,
    cap: usize,
    len_out: *mut usize,
    timeout_ms: i32,
) -> c_int {
    flow_guard(|| {
        // SAFETY: header contract.
        let h = unsafe { flow(f) }?;
        if len_out.is_null() || (buf.is_null() && cap > 0) {
            return Err(bad_arg(
                "len_out is NULL, or buf is NULL with a non-zero cap",
            ));
        }
        let flags = h.flags.load(Ordering::Acquire);
        let allow = "RGTP_FLOW_F_RDONLY or RGTP_FLOW_F_RDWR";
        check_access(flags, RGTP_FLOW_F_WRONLY, "read", allow)?;
        let nonblocking = flags & RGTP_FLOW_F_RNOBLOCK != 0;
        let rest = std::mem::take(&mut *crate::surface::lock(&h.rest)?);
        let sdu = if !rest.is_empty() {
            rest
        } else {
            let t = wait_of(nonblocking, timeout_ms);
            h.kind.read(t).map_err(|e| io_error(e, nonblocking))?
        };
        let n = sdu.len().min(cap);
        if sdu.len() > cap && flags & RGTP_FLOW_F_RNOPART != 0 {
            let need = sdu.len();
            *crate::surface::lock(&h.rest)? = sdu;
            // SAFETY: `len_out` is non-NULL and writable (header contract).
            unsafe { put(len_out, need) }?;
            return Err(fail(
                RGTP_FLOW_ERR_TOO_LARGE,
                &format!(
                    "the next SDU has {need} bytes and the buffer {cap} (RGTP_FLOW_F_RNOPART: \
                     no partial reads); read again with a buffer of at least {need} bytes"
                ),
            ));
        }
        if n > 0 {
            // SAFETY: `cap >= n` writable bytes at `buf` (header contract).
            unsafe { std::ptr::copy_nonoverlapping(sdu.as_ptr(), buf, n) };
        }
        if sdu.len() > n {
            *crate::surface::lock(&h.rest)? = sdu[n..].to_vec();
        }
        // SAFETY: `len_out` is non-NULL and writable (header contract).
        unsafe { put(len_out, n) }
    })
}

/// See rgtp.h.
#[no_mangle]
pub unsafe extern "C" fn rgtp_flow_flush(f: *mut rgtp_flow_t, timeout_ms: i32) -> c_int {
    flow_guard(|| {
        // SAFETY: header contract.
        let h = unsafe { flow(f) }?;
        match &h.kind {
            Kind::Flow(fl) => fl.flush(bounded(timeout_ms)).map_err(net_error),
            Kind::Group(_) => Ok(()),
        }
    })
}

// ---------------------------------------------------------------- properties

/// See rgtp.h.
#[no_mangle]
pub unsafe extern "C" fn rgtp_flow_set_flags(f: *mut rgtp_flow_t, flags: u32) -> c_int {
    flow_guard(|| {
        // SAFETY: header contract.
        let h = unsafe { flow(f) }?;
        if flags & !(SETTABLE | RGTP_FLOW_F_DOWN) != 0 || flags & RGTP_FLOW_F_ACCMODE == 3 {
            return Err(bad_arg(&format!(
                "flags {flags:#o} hold bits that are no flag"
            )));
        }
        h.flags.store(flags & SETTABLE, Ordering::Release);
        Ok(())
    })
}

/// See rgtp.h.
#[no_mangle]
pub unsafe extern "C" fn rgtp_flow_flags(f: *const rgtp_flow_t, out: *mut u32) -> c_int {
    flow_guard(|| {
        // SAFETY: header contract.
        let h = unsafe { flow(f) }?;
        let mut flags = h.flags.load(Ordering::Acquire);
        let down = match &h.kind {
            Kind::Flow(fl) => fl.is_ended(),
            Kind::Group(_) => false,
        };
        if down {
            flags |= RGTP_FLOW_F_DOWN;
        }
        // SAFETY: header contract: a writable uint32_t.
        unsafe { put(out, flags) }
    })
}

/// See rgtp.h.
#[no_mangle]
pub unsafe extern "C" fn rgtp_flow_id(f: *const rgtp_flow_t, out: *mut u64) -> c_int {
    flow_guard(|| {
        // SAFETY: header contract.
        let h = unsafe { flow(f) }?;
        let id = match &h.kind {
            Kind::Flow(fl) => u64::from(fl.id().0),
            Kind::Group(_) => u64::MAX,
        };
        // SAFETY: header contract: a writable uint64_t.
        unsafe { put(out, id) }
    })
}

/// See rgtp.h.
#[no_mangle]
pub unsafe extern "C" fn rgtp_flow_queue_lens(
    f: *const rgtp_flow_t,
    rx: *mut usize,
    tx: *mut usize,
) -> c_int {
    flow_guard(|| {
        if rx.is_null() && tx.is_null() {
            return Err(bad_arg("rx and tx are both NULL"));
        }
        // SAFETY: header contract.
        let h = unsafe { flow(f) }?;
        let mut q = match &h.kind {
            Kind::Flow(fl) => fl.queue_lens(),
            Kind::Group(g) => g.queue_lens(),
        };
        // The rest of an SDU read in part waits here, not in the node.
        if !crate::surface::lock(&h.rest)?.is_empty() {
            q.rx += 1;
        }
        if !rx.is_null() {
            // SAFETY: header contract: NULL or a writable size_t.
            unsafe { put(rx, q.rx) }?;
        }
        if !tx.is_null() {
            // SAFETY: header contract: NULL or a writable size_t.
            unsafe { put(tx, q.tx) }?;
        }
        Ok(())
    })
}

/// See rgtp.h.
#[no_mangle]
pub unsafe extern "C" fn rgtp_flow_qos(f: *const rgtp_flow_t, out: *mut rgtp_flow_qos_t) -> c_int {
    flow_guard(|| {
        // SAFETY: header contract.
        let h = unsafe { flow(f) }?;
        // SAFETY: header contract: a writable rgtp_flow_qos_t.
        unsafe { put(out, h.kind.qos().into()) }
    })
}

/// See rgtp.h.
#[no_mangle]
pub unsafe extern "C" fn rgtp_flow_layers(
    f: *const rgtp_flow_t,
    buf: *mut c_char,
    len: usize,
) -> usize {
    let mut need = 0;
    let _ = flow_guard(|| {
        // SAFETY: header contract.
        let h = unsafe { flow(f) }?;
        // SAFETY: header contract: `len` writable bytes at `buf`.
        need = unsafe { copy_text(&h.kind.layers().to_string(), buf, len) };
        Ok(())
    });
    need
}

/// See rgtp.h.
#[no_mangle]
pub unsafe extern "C" fn rgtp_flow_peer(
    f: *const rgtp_flow_t,
    buf: *mut c_char,
    len: usize,
) -> usize {
    let mut need = 0;
    let _ = flow_guard(|| {
        // SAFETY: header contract.
        let h = unsafe { flow(f) }?;
        let peer = match &h.kind {
            Kind::Flow(fl) => format!("{}@{}", fl.name(), fl.peer()),
            Kind::Group(g) => format!("{}#*", g.name()),
        };
        // SAFETY: header contract: `len` writable bytes at `buf`.
        need = unsafe { copy_text(&peer, buf, len) };
        Ok(())
    });
    need
}

/// See rgtp.h.
#[no_mangle]
pub unsafe extern "C" fn rgtp_flow_dealloc(f: *mut rgtp_flow_t) -> c_int {
    flow_guard(|| {
        // SAFETY: header contract.
        let h = unsafe { flow(f) }?;
        if let Kind::Flow(fl) = &h.kind {
            // Linger: what was written goes out first (acknowledged, with ARQ).
            let _ = fl.flush(LINGER);
        }
        h.kind.dealloc().map_err(net_error)
    })
}

/// See rgtp.h.
#[no_mangle]
pub unsafe extern "C" fn rgtp_flow_free(f: *mut rgtp_flow_t) {
    let _ = flow_guard(|| {
        // SAFETY: header contract: NULL or a live flow handle, unused afterwards.
        drop(unsafe { take::<FlowHandle>(f.cast(), FLOW_MAGIC, |h| &h.magic) });
        Ok(())
    });
}

// ---------------------------------------------------------------- flow sets

/// See rgtp.h.
#[no_mangle]
pub unsafe extern "C" fn rgtp_flow_set_create(
    n: *mut rgtp_flow_node_t,
    out: *mut *mut rgtp_flow_set_t,
) -> c_int {
    flow_guard(|| {
        if out.is_null() {
            return Err(bad_arg("out is NULL"));
        }
        // SAFETY: header contract.
        let h = unsafe { node(n) }?;
        let raw = Box::into_raw(Box::new(SetHandle {
            magic: AtomicU64::new(SET_MAGIC),
            set: h.node.flow_set(),
            queue: Mutex::new(VecDeque::new()),
        }));
        // SAFETY: `out` is non-NULL and writable (header contract).
        unsafe { std::ptr::write_unaligned(out, raw.cast()) };
        Ok(())
    })
}

/// See rgtp.h.
#[no_mangle]
pub unsafe extern "C" fn rgtp_flow_set_destroy(s: *mut rgtp_flow_set_t) {
    let _ = flow_guard(|| {
        // SAFETY: header contract: NULL or a live set handle, unused afterwards.
        drop(unsafe { take::<SetHandle>(s.cast(), SET_MAGIC, |h| &h.magic) });
        Ok(())
    });
}

fn single(h: &FlowHandle) -> Result<&Flow, c_int> {
    match &h.kind {
        Kind::Flow(f) => Ok(f),
        Kind::Group(_) => Err(fail(
            RGTP_ERR_NOT_SUPPORTED,
            "a joined (broadcast) flow cannot be in a flow set; read it from a thread of its own",
        )),
    }
}

/// See rgtp.h.
#[no_mangle]
pub unsafe extern "C" fn rgtp_flow_set_add(s: *mut rgtp_flow_set_t, f: *mut rgtp_flow_t) -> c_int {
    flow_guard(|| {
        // SAFETY: header contract.
        let sh = unsafe { set(s) }?;
        // SAFETY: header contract.
        let fh = unsafe { flow(f) }?;
        sh.set.add(single(fh)?);
        Ok(())
    })
}

/// See rgtp.h.
#[no_mangle]
pub unsafe extern "C" fn rgtp_flow_set_remove(
    s: *mut rgtp_flow_set_t,
    f: *mut rgtp_flow_t,
) -> c_int {
    flow_guard(|| {
        // SAFETY: header contract.
        let sh = unsafe { set(s) }?;
        // SAFETY: header contract.
        let fh = unsafe { flow(f) }?;
        sh.set.remove(single(fh)?);
        Ok(())
    })
}

/// See rgtp.h.
#[no_mangle]
pub unsafe extern "C" fn rgtp_flow_set_watch_allocs(s: *mut rgtp_flow_set_t, on: bool) -> c_int {
    flow_guard(|| {
        // SAFETY: header contract.
        let sh = unsafe { set(s) }?;
        sh.set.watch_allocs(on);
        Ok(())
    })
}

fn event_kind(k: EventKind) -> c_int {
    match k {
        EventKind::Packet => RGTP_FLOW_EV_PKT,
        EventKind::Alloc => RGTP_FLOW_EV_ALLOC,
        EventKind::Up => RGTP_FLOW_EV_UP,
        EventKind::Refused | EventKind::Down => RGTP_FLOW_EV_DOWN,
        EventKind::Dealloc => RGTP_FLOW_EV_DEALLOC,
    }
}

/// See rgtp.h.
#[no_mangle]
pub unsafe extern "C" fn rgtp_flow_set_wait(
    s: *mut rgtp_flow_set_t,
    events: *mut rgtp_flow_event_t,
    cap: usize,
    n_out: *mut usize,
    timeout_ms: i32,
) -> c_int {
    flow_guard(|| {
        // SAFETY: header contract.
        let sh = unsafe { set(s) }?;
        if events.is_null() || cap == 0 || n_out.is_null() {
            return Err(bad_arg("events or n_out is NULL, or cap is 0"));
        }
        // SAFETY: header contract: a writable size_t.
        unsafe { put(n_out, 0) }?;
        let mut q = crate::surface::lock(&sh.queue)?;
        if q.is_empty() {
            drop(q);
            let got = sh.set.wait(timeout(timeout_ms)).map_err(net_error)?;
            q = crate::surface::lock(&sh.queue)?;
            q.extend(got);
        }
        if q.is_empty() {
            return Err(fail(
                RGTP_ERR_TIMEOUT,
                "no event on the flow set before the timeout",
            ));
        }
        let n = q.len().min(cap);
        for (i, ev) in q.drain(..n).enumerate() {
            let e = rgtp_flow_event_t {
                flow: u64::from(ev.flow.0),
                kind: event_kind(ev.kind),
            };
            // SAFETY: header contract: `cap > i` writable events.
            unsafe { std::ptr::write_unaligned(events.add(i), e) };
        }
        // SAFETY: as above.
        unsafe { put(n_out, n) }
    })
}
