//! The files calls of librgtp.so (`rgtp_send_start`, `rgtp_sender_*`, `rgtp_get`),
//! loaded with dlopen and called as C would: a tree sent and fetched on loopback,
//! its progress events, a callback that stops the transfer, and a bad ticket.

mod dl;

use std::ffi::{c_char, c_int, c_void, CStr, CString};
use std::path::Path;
use std::sync::OnceLock;

const RGTP_OK: c_int = 0;
const RGTP_ERR_INVALID_ARG: c_int = -2;
const RGTP_FILES_STOPPED: c_int = 1;

const CATALOG: c_int = 0;
const STARTED: c_int = 1;
const BYTES: c_int = 2;
const DONE: c_int = 4;

#[repr(C)]
struct Opaque {
    _p: [u8; 0],
}

#[repr(C)]
struct SendOptions {
    size: usize,
    bind: *const c_char,
    advertise: *const c_char,
    key: *const u8,
    max_rate: u64,
    max_rate_per_connection: u64,
    max_rate_per_file: u64,
    chunk_size: u32,
    keep_symlinks: bool,
}

#[repr(C)]
struct GetOptions {
    size: usize,
    parallel_files: u32,
    retries: u32,
    restart: bool,
    max_rate: u64,
    max_rate_per_file: u64,
    max_rate_per_connection: u64,
    connect_timeout_ms: u32,
    idle_timeout_ms: u32,
}

#[repr(C)]
struct Event {
    size: usize,
    kind: c_int,
    index: u64,
    path: *const c_char,
    done: u64,
    total: u64,
    files: u64,
    entries: u64,
    total_done: u64,
    seconds: f64,
    skipped: bool,
    message: *const c_char,
}

#[repr(C)]
#[derive(Default)]
struct GetResult {
    size: usize,
    files: u64,
    entries: u64,
    bytes: u64,
    seconds: f64,
}

type H = *mut Opaque;
type Cb = unsafe extern "C" fn(*const Event, *mut c_void) -> c_int;

struct Lib {
    send_start:
        unsafe extern "C" fn(*const *const c_char, usize, *const SendOptions, *mut H) -> c_int,
    ticket: unsafe extern "C" fn(H, *mut c_char, usize) -> usize,
    stop: unsafe extern "C" fn(H) -> c_int,
    free: unsafe extern "C" fn(H),
    get: unsafe extern "C" fn(
        *const c_char,
        *const c_char,
        *const GetOptions,
        Option<Cb>,
        *mut c_void,
        *mut GetResult,
    ) -> c_int,
    last_error: unsafe extern "C" fn() -> *const c_char,
}

fn lib() -> &'static Lib {
    static LIB: OnceLock<Lib> = OnceLock::new();
    LIB.get_or_init(|| {
        // SAFETY: each symbol has the signature rgtp.h declares for it.
        unsafe {
            Lib {
                send_start: dl::sym("rgtp_send_start"),
                ticket: dl::sym("rgtp_sender_ticket"),
                stop: dl::sym("rgtp_sender_stop"),
                free: dl::sym("rgtp_sender_free"),
                get: dl::sym("rgtp_get"),
                last_error: dl::sym("rgtp_files_last_error"),
            }
        }
    })
}

fn last_error() -> String {
    // SAFETY: a NUL-terminated string valid until the next files call on this thread.
    unsafe { CStr::from_ptr((lib().last_error)()) }
        .to_string_lossy()
        .into_owned()
}

/// A sender serving `paths` on loopback, freed on drop.
struct Sender(H);

impl Sender {
    fn start(paths: &[&Path]) -> Sender {
        let cs: Vec<CString> = paths
            .iter()
            .map(|p| CString::new(p.to_str().unwrap()).unwrap())
            .collect();
        let ptrs: Vec<*const c_char> = cs.iter().map(|c| c.as_ptr()).collect();
        let bind = CString::new("127.0.0.1:0").unwrap();
        let o = SendOptions {
            size: std::mem::size_of::<SendOptions>(),
            bind: bind.as_ptr(),
            advertise: std::ptr::null(),
            key: std::ptr::null(),
            max_rate: 0,
            max_rate_per_connection: 0,
            max_rate_per_file: 0,
            chunk_size: 0,
            keep_symlinks: false,
        };
        let mut h: H = std::ptr::null_mut();
        // SAFETY: live strings and options, a writable out-pointer.
        let rc = unsafe { (lib().send_start)(ptrs.as_ptr(), ptrs.len(), &o, &mut h) };
        assert_eq!(rc, RGTP_OK, "{}", last_error());
        assert!(!h.is_null());
        Sender(h)
    }

    fn ticket(&self) -> CString {
        // SAFETY: a live handle; NULL buffer only asks for the size.
        let n = unsafe { (lib().ticket)(self.0, std::ptr::null_mut(), 0) };
        assert!(n > "rgtp://".len());
        let mut small = vec![b'x' as c_char; n - 1];
        // SAFETY: as above, with a buffer one byte short: nothing is written.
        assert_eq!(
            unsafe { (lib().ticket)(self.0, small.as_mut_ptr(), n - 1) },
            n
        );
        assert!(small.iter().all(|&c| c == b'x' as c_char));
        let mut buf = vec![0 as c_char; n];
        // SAFETY: as above, with room for `n` bytes.
        assert_eq!(unsafe { (lib().ticket)(self.0, buf.as_mut_ptr(), n) }, n);
        // SAFETY: the library wrote a NUL-terminated string.
        unsafe { CStr::from_ptr(buf.as_ptr()) }.to_owned()
    }
}

impl Drop for Sender {
    fn drop(&mut self) {
        // SAFETY: a live handle, freed once.
        unsafe { (lib().free)(self.0) }
    }
}

/// An event as the test keeps it.
#[derive(Debug, Clone)]
struct Seen {
    kind: c_int,
    index: u64,
    path: String,
    done: u64,
    total: u64,
    files: u64,
    total_done: u64,
}

/// What the callback context holds: the events, and after how many to ask to stop.
struct Ctx {
    seen: Vec<Seen>,
    stop_after: Option<usize>,
}

unsafe extern "C" fn record(ev: *const Event, ctx: *mut c_void) -> c_int {
    // SAFETY: rgtp_get passes a live event and the context it was given, one call
    // at a time.
    let (ev, ctx) = unsafe { (&*ev, &mut *(ctx as *mut Ctx)) };
    let path = if ev.path.is_null() {
        String::new()
    } else {
        // SAFETY: a NUL-terminated string valid during the call.
        unsafe { CStr::from_ptr(ev.path) }
            .to_string_lossy()
            .into_owned()
    };
    ctx.seen.push(Seen {
        kind: ev.kind,
        index: ev.index,
        path,
        done: ev.done,
        total: ev.total,
        files: ev.files,
        total_done: ev.total_done,
    });
    match ctx.stop_after {
        Some(n) if ctx.seen.len() >= n => 1,
        _ => 0,
    }
}

fn get(ticket: &CStr, dest: &Path, ctx: &mut Ctx, out: &mut GetResult) -> c_int {
    let dest = CString::new(dest.to_str().unwrap()).unwrap();
    let o = GetOptions {
        size: std::mem::size_of::<GetOptions>(),
        parallel_files: 1,
        retries: 0,
        restart: false,
        max_rate: 0,
        max_rate_per_file: 0,
        max_rate_per_connection: 0,
        connect_timeout_ms: 3000,
        idle_timeout_ms: 5000,
    };
    out.size = std::mem::size_of::<GetResult>();
    // SAFETY: live strings, options, callback context and result.
    unsafe {
        (lib().get)(
            ticket.as_ptr(),
            dest.as_ptr(),
            &o,
            Some(record),
            (ctx as *mut Ctx).cast(),
            out,
        )
    }
}

fn tree(root: &Path) -> Vec<u8> {
    let t = root.join("tree");
    std::fs::create_dir_all(t.join("a/b")).unwrap();
    let big: Vec<u8> = (0..1_500_000u32).map(|i| (i % 253) as u8).collect();
    std::fs::write(t.join("big.bin"), &big).unwrap();
    std::fs::write(t.join("empty"), b"").unwrap();
    std::fs::write(t.join("a/b/deep.txt"), b"deep").unwrap();
    big
}

#[test]
fn a_tree_is_sent_and_fetched_with_progress() {
    let src = tempfile::tempdir().unwrap();
    let big = tree(src.path());
    let s = Sender::start(&[&src.path().join("tree")]);
    let ticket = s.ticket();
    assert!(ticket.to_str().unwrap().starts_with("rgtp://127.0.0.1:"));

    let dest = tempfile::tempdir().unwrap();
    let mut ctx = Ctx {
        seen: Vec::new(),
        stop_after: None,
    };
    let mut out = GetResult::default();
    let rc = get(&ticket, dest.path(), &mut ctx, &mut out);
    assert_eq!(rc, RGTP_OK, "{}", last_error());
    let total = big.len() as u64 + 4;
    assert_eq!((out.files, out.bytes), (3, total));
    assert_eq!(out.size, std::mem::size_of::<GetResult>());
    assert!(out.entries >= 6, "{}", out.entries); // tree, a, a/b and three files
    let t = dest.path().join("tree");
    assert_eq!(std::fs::read(t.join("big.bin")).unwrap(), big);
    assert_eq!(std::fs::read(t.join("empty")).unwrap(), b"");
    assert_eq!(std::fs::read(t.join("a/b/deep.txt")).unwrap(), b"deep");

    let seen = &ctx.seen;
    assert_eq!(seen[0].kind, CATALOG);
    assert_eq!((seen[0].files, seen[0].total), (3, total));
    let done: Vec<&Seen> = seen.iter().filter(|e| e.kind == DONE).collect();
    assert_eq!(done.len(), 3);
    assert_eq!(done.last().unwrap().total_done, total);
    // Each file: STARTED first, BYTES never going back, DONE last with its size.
    for d in &done {
        let mine: Vec<&Seen> = seen
            .iter()
            .filter(|e| e.kind != CATALOG && e.index == d.index)
            .collect();
        assert_eq!(mine[0].kind, STARTED, "{mine:?}");
        assert_eq!(mine[0].path, d.path);
        assert_eq!(mine.last().unwrap().kind, DONE);
        let counts: Vec<u64> = mine
            .iter()
            .filter(|e| e.kind == BYTES)
            .map(|e| e.done)
            .collect();
        assert!(counts.windows(2).all(|w| w[0] < w[1]), "{counts:?}");
        assert!(counts.iter().all(|&c| c <= mine[0].total));
    }
    let big_done = done.iter().find(|d| d.path == "tree/big.bin").unwrap();
    assert_eq!(big_done.done, big.len() as u64);

    // SAFETY: a live handle; stopping twice is allowed.
    assert_eq!(unsafe { (lib().stop)(s.0) }, RGTP_OK);
    assert_eq!(unsafe { (lib().stop)(s.0) }, RGTP_OK);
}

#[test]
fn a_callback_can_stop_the_transfer() {
    let src = tempfile::tempdir().unwrap();
    tree(src.path());
    let s = Sender::start(&[&src.path().join("tree")]);
    let dest = tempfile::tempdir().unwrap();
    let mut ctx = Ctx {
        seen: Vec::new(),
        stop_after: Some(1),
    };
    let mut out = GetResult::default();
    let rc = get(&s.ticket(), dest.path(), &mut ctx, &mut out);
    assert_eq!(rc, RGTP_FILES_STOPPED, "{}", last_error());
    assert!(last_error().contains("stopped"), "{}", last_error());
    assert_eq!(out.files, 0, "no result on a stop");
    assert!(!ctx
        .seen
        .iter()
        .any(|e| e.kind == DONE && e.path.ends_with("big.bin")));
}

#[test]
fn a_bad_ticket_is_an_invalid_argument_naming_it() {
    let dest = tempfile::tempdir().unwrap();
    let mut ctx = Ctx {
        seen: Vec::new(),
        stop_after: None,
    };
    let mut out = GetResult::default();
    let bad = CString::new("rgtp://not-a-ticket").unwrap();
    assert_eq!(
        get(&bad, dest.path(), &mut ctx, &mut out),
        RGTP_ERR_INVALID_ARG
    );
    assert!(last_error().contains("bad ticket"), "{}", last_error());
    assert!(ctx.seen.is_empty());
    // SAFETY: NULL handles are refused or ignored as the header says.
    unsafe {
        assert_eq!((lib().stop)(std::ptr::null_mut()), RGTP_ERR_INVALID_ARG);
        assert_eq!(
            (lib().ticket)(std::ptr::null_mut(), std::ptr::null_mut(), 0),
            0
        );
        (lib().free)(std::ptr::null_mut());
    }
    let mut h: H = std::ptr::null_mut();
    // SAFETY: no paths: refused before any is read.
    let rc = unsafe { (lib().send_start)(std::ptr::null(), 0, std::ptr::null(), &mut h) };
    assert_eq!(rc, RGTP_ERR_INVALID_ARG);
    assert!(h.is_null());
}
