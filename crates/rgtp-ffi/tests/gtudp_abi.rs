//! The `rgtp_gtudp_*` calls of librgtp.so, loaded with dlopen and called as C would:
//! datagrams between two handles on loopback, the error codes the header documents,
//! the magic/types profile and the keyed profile.

mod dl;

use std::ffi::{c_char, c_int, CStr, CString};
use std::path::Path;
use std::process::Command;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, OnceLock};
use std::time::{Duration, Instant};

const CRATE: &str = env!("CARGO_MANIFEST_DIR");

const RGTP_OK: c_int = 0;
const RGTP_ERR_INVALID_ARG: c_int = -2;
const RGTP_ERR_TIMEOUT: c_int = -12;
const ADDRSTRLEN: usize = 64;

#[repr(C)]
struct Opaque {
    _p: [u8; 0],
}

#[repr(C)]
#[derive(Clone, Copy)]
struct Options {
    size: usize,
    magic: *const u8,
    magic_len: usize,
    types: *const u8,
    types_len: usize,
    reference_timers: bool,
    key: *const u8,
    session: u64,
}

impl Default for Options {
    fn default() -> Self {
        Options {
            size: std::mem::size_of::<Options>(),
            magic: std::ptr::null(),
            magic_len: 0,
            types: std::ptr::null(),
            types_len: 0,
            reference_timers: false,
            key: std::ptr::null(),
            session: 0,
        }
    }
}

#[repr(C)]
#[derive(Clone, Copy, Default, Debug, PartialEq, Eq)]
struct Stats {
    size: usize,
    datagrams_in: u64,
    malformed: u64,
    delivered: u64,
    duplicates: u64,
    data_sent: u64,
    data_repeated: u64,
    recv_sent: u64,
    ack_sent: u64,
    confirmed: u64,
    failed: u64,
    auth_failed: u64,
    replayed: u64,
    dropped: u64,
}

type H = *mut Opaque;

struct Lib {
    open: unsafe extern "C" fn(*const c_char, *const Options, *mut H) -> c_int,
    close: unsafe extern "C" fn(H),
    local_addr: unsafe extern "C" fn(H, *mut c_char, usize) -> c_int,
    send_to: unsafe extern "C" fn(H, *const u8, usize, *const c_char) -> c_int,
    send_confirmed: unsafe extern "C" fn(H, *const u8, usize, *const c_char, u32) -> c_int,
    recv_from:
        unsafe extern "C" fn(H, *mut u8, usize, *mut usize, *mut c_char, usize, i32) -> c_int,
    flush: unsafe extern "C" fn(H, u32) -> c_int,
    stats: unsafe extern "C" fn(H, *mut Stats) -> c_int,
}

fn lib() -> &'static Lib {
    static LIB: OnceLock<Lib> = OnceLock::new();
    LIB.get_or_init(|| {
        // SAFETY: each symbol has the signature rgtp.h declares for it.
        unsafe {
            Lib {
                open: dl::sym("rgtp_gtudp_open"),
                close: dl::sym("rgtp_gtudp_close"),
                local_addr: dl::sym("rgtp_gtudp_local_addr"),
                send_to: dl::sym("rgtp_gtudp_send_to"),
                send_confirmed: dl::sym("rgtp_gtudp_send_confirmed"),
                recv_from: dl::sym("rgtp_gtudp_recv_from"),
                flush: dl::sym("rgtp_gtudp_flush"),
                stats: dl::sym("rgtp_gtudp_stats"),
            }
        }
    })
}

/// An open handle, closed on drop; handed between threads one at a time.
struct Gt(H);

// SAFETY: the header allows a handle to be used from any thread (calls serialize).
unsafe impl Send for Gt {}
// SAFETY: as above; every call on one handle takes its lock.
unsafe impl Sync for Gt {}

impl Drop for Gt {
    fn drop(&mut self) {
        // SAFETY: a live handle from rgtp_gtudp_open, closed once.
        unsafe { (lib().close)(self.0) }
    }
}

struct Received {
    code: c_int,
    len: usize,
    data: Vec<u8>,
    from: String,
}

impl Gt {
    fn open(opts: Option<&Options>) -> Gt {
        let addr = CString::new("127.0.0.1:0").unwrap();
        let mut h: H = std::ptr::null_mut();
        let o = opts.map_or(std::ptr::null(), |o| o as *const Options);
        // SAFETY: valid string, options and out-pointer.
        let rc = unsafe { (lib().open)(addr.as_ptr(), o, &mut h) };
        assert_eq!(rc, RGTP_OK, "rgtp_gtudp_open");
        assert!(!h.is_null());
        Gt(h)
    }

    fn addr(&self) -> String {
        let mut buf = [0 as c_char; ADDRSTRLEN];
        // SAFETY: live handle, buffer of the given length.
        let rc = unsafe { (lib().local_addr)(self.0, buf.as_mut_ptr(), buf.len()) };
        assert_eq!(rc, RGTP_OK);
        // SAFETY: the library wrote a NUL-terminated string.
        unsafe { CStr::from_ptr(buf.as_ptr()) }
            .to_str()
            .unwrap()
            .to_owned()
    }

    fn send_to(&self, data: &[u8], to: &str) -> c_int {
        let to = CString::new(to).unwrap();
        // SAFETY: live handle, valid buffer and string.
        unsafe { (lib().send_to)(self.0, data.as_ptr(), data.len(), to.as_ptr()) }
    }

    fn send_confirmed(&self, data: &[u8], to: &str, timeout_ms: u32) -> c_int {
        let to = CString::new(to).unwrap();
        // SAFETY: live handle, valid buffer and string.
        unsafe {
            (lib().send_confirmed)(self.0, data.as_ptr(), data.len(), to.as_ptr(), timeout_ms)
        }
    }

    fn recv(&self, cap: usize, timeout_ms: i32) -> Received {
        let mut buf = vec![0u8; cap];
        let mut len = usize::MAX;
        let mut from = [0 as c_char; ADDRSTRLEN];
        // SAFETY: live handle, buffers of the given lengths.
        let code = unsafe {
            (lib().recv_from)(
                self.0,
                buf.as_mut_ptr(),
                cap,
                &mut len,
                from.as_mut_ptr(),
                from.len(),
                timeout_ms,
            )
        };
        let from = if code == RGTP_OK {
            // SAFETY: the library wrote a NUL-terminated string.
            unsafe { CStr::from_ptr(from.as_ptr()) }
                .to_str()
                .unwrap()
                .to_owned()
        } else {
            String::new()
        };
        buf.truncate(len.min(cap));
        Received {
            code,
            len,
            data: buf,
            from,
        }
    }

    fn flush(&self, timeout_ms: u32) -> c_int {
        // SAFETY: live handle.
        unsafe { (lib().flush)(self.0, timeout_ms) }
    }

    fn stats(&self) -> Stats {
        let mut s = Stats {
            size: std::mem::size_of::<Stats>(),
            ..Stats::default()
        };
        // SAFETY: live handle, writable struct with its size set.
        assert_eq!(unsafe { (lib().stats)(self.0, &mut s) }, RGTP_OK);
        assert_eq!(s.size, std::mem::size_of::<Stats>());
        s
    }
}

/// Echoes every datagram `gt` receives back to its sender until `stop`; returns how
/// many it echoed.
fn echo(gt: Arc<Gt>, stop: Arc<AtomicBool>) -> std::thread::JoinHandle<usize> {
    std::thread::spawn(move || {
        let mut n = 0;
        while !stop.load(Ordering::Acquire) {
            let r = gt.recv(65_535, 50);
            match r.code {
                RGTP_OK => {
                    assert_eq!(gt.send_to(&r.data, &r.from), RGTP_OK);
                    n += 1;
                }
                RGTP_ERR_TIMEOUT => {}
                c => panic!("recv_from in the echo thread: {c}"),
            }
        }
        gt.flush(3000);
        n
    })
}

/// `a` sends each payload confirmed to an echoing `b` and gets it back.
fn round_trip(a_opts: Option<&Options>, b_opts: Option<&Options>, payloads: &[&[u8]]) {
    let a = Gt::open(a_opts);
    let b = Arc::new(Gt::open(b_opts));
    let b_addr = b.addr();
    let stop = Arc::new(AtomicBool::new(false));
    let t = echo(b.clone(), stop.clone());
    for p in payloads {
        assert_eq!(
            a.send_confirmed(p, &b_addr, 5000),
            RGTP_OK,
            "{} bytes",
            p.len()
        );
        let r = a.recv(65_535, 5000);
        assert_eq!(r.code, RGTP_OK, "echo of {} bytes", p.len());
        assert_eq!(r.len, p.len());
        assert_eq!(&r.data[..], *p);
        assert_eq!(r.from, b_addr);
    }
    assert_eq!(a.flush(5000), RGTP_OK);
    stop.store(true, Ordering::Release);
    assert_eq!(t.join().unwrap(), payloads.len());
    let (sa, sb) = (a.stats(), b.stats());
    assert_eq!(sa.confirmed, payloads.len() as u64);
    assert_eq!(sa.delivered, payloads.len() as u64);
    assert_eq!(sb.delivered, payloads.len() as u64);
    assert_eq!(sa.failed, 0);
    assert_eq!(sb.auth_failed + sb.malformed, 0);
}

fn pattern(n: usize) -> Vec<u8> {
    (0..n).map(|i| (i * 31 + 7) as u8).collect()
}

#[test]
fn datagrams_of_0_1_and_1200_bytes_go_both_ways() {
    let big = pattern(1200);
    round_trip(None, None, &[b"", b"x", &big]);
}

#[test]
fn local_addr_is_the_bound_loopback_port() {
    let a = Gt::open(None);
    let addr = a.addr();
    let parsed: std::net::SocketAddr = addr.parse().expect("ip:port");
    assert!(parsed.ip().is_loopback());
    assert_ne!(parsed.port(), 0);
}

#[test]
fn send_to_is_delivered_once_and_a_small_buffer_truncates() {
    let a = Gt::open(None);
    let b = Gt::open(None);
    let data = pattern(1200);
    assert_eq!(a.send_to(&data, &b.addr()), RGTP_OK);
    let r = b.recv(100, 5000);
    assert_eq!(r.code, RGTP_OK);
    assert_eq!(r.len, 1200, "the full length is reported");
    assert_eq!(r.data, data[..100]);
    assert_eq!(r.from, a.addr());
    // Let the exchange finish: a repeats nothing more, b hands out no duplicate.
    let a = Arc::new(a);
    let stop = Arc::new(AtomicBool::new(false));
    let t = echo(a.clone(), stop.clone());
    assert_eq!(b.flush(5000), RGTP_OK);
    assert_eq!(b.recv(2000, 300).code, RGTP_ERR_TIMEOUT);
    stop.store(true, Ordering::Release);
    assert_eq!(t.join().unwrap(), 0);
    assert_eq!(b.stats().delivered, 1);
    let sa = a.stats();
    assert_eq!((sa.confirmed, sa.failed), (1, 0), "b's RECV confirmed it");
}

#[test]
fn send_confirmed_to_a_closed_port_times_out_within_its_timeout() {
    let dead = std::net::UdpSocket::bind("127.0.0.1:0").unwrap();
    let to = dead.local_addr().unwrap().to_string();
    drop(dead);
    let a = Gt::open(None);
    let start = Instant::now();
    assert_eq!(a.send_confirmed(b"anyone?", &to, 800), RGTP_ERR_TIMEOUT);
    let took = start.elapsed();
    assert!(
        took >= Duration::from_millis(700),
        "gave up early: {took:?}"
    );
    assert!(took < Duration::from_millis(2500), "overran: {took:?}");
    assert_eq!(a.stats().failed, 1);
}

#[test]
fn recv_from_times_out_with_the_timeout_code() {
    let a = Gt::open(None);
    let start = Instant::now();
    let r = a.recv(1500, 250);
    let took = start.elapsed();
    assert_eq!(r.code, RGTP_ERR_TIMEOUT);
    assert_eq!(r.len, usize::MAX, "len_out untouched on failure");
    assert!(took >= Duration::from_millis(240), "{took:?}");
    assert!(took < Duration::from_millis(2000), "{took:?}");
    let start = Instant::now();
    assert_eq!(a.recv(1500, 0).code, RGTP_ERR_TIMEOUT);
    assert!(start.elapsed() < Duration::from_millis(500));
}

#[test]
fn null_and_garbage_arguments_are_rejected() {
    let l = lib();
    let addr = CString::new("127.0.0.1:0").unwrap();
    let bad = CString::new("not an address").unwrap();
    let mut h: H = std::ptr::null_mut();
    // SAFETY (this block): every pointer is NULL, valid, or a deliberately wrong-kind
    // but readable and aligned object, which the header says is rejected.
    unsafe {
        assert_eq!(
            (l.open)(std::ptr::null(), std::ptr::null(), &mut h),
            RGTP_ERR_INVALID_ARG
        );
        assert_eq!(
            (l.open)(addr.as_ptr(), std::ptr::null(), std::ptr::null_mut()),
            RGTP_ERR_INVALID_ARG
        );
        assert_eq!(
            (l.open)(bad.as_ptr(), std::ptr::null(), &mut h),
            RGTP_ERR_INVALID_ARG
        );
        let tiny = Options {
            size: 0,
            ..Options::default()
        };
        assert_eq!((l.open)(addr.as_ptr(), &tiny, &mut h), RGTP_ERR_INVALID_ARG);
        let four = [1u8, 2, 3, 4];
        let uneven = Options {
            types: four.as_ptr(),
            types_len: 4,
            ..Options::default()
        };
        assert_eq!(
            (l.open)(addr.as_ptr(), &uneven, &mut h),
            RGTP_ERR_INVALID_ARG
        );
        let same = [7u8, 7, 9];
        let equal = Options {
            types: same.as_ptr(),
            types_len: 3,
            ..Options::default()
        };
        assert_eq!(
            (l.open)(addr.as_ptr(), &equal, &mut h),
            RGTP_ERR_INVALID_ARG
        );
        let dangling = Options {
            magic: std::ptr::null(),
            magic_len: 4,
            ..Options::default()
        };
        assert_eq!(
            (l.open)(addr.as_ptr(), &dangling, &mut h),
            RGTP_ERR_INVALID_ARG
        );
        assert!(h.is_null(), "nothing written on failure");

        // A readable, aligned object that is not a gtUDP handle.
        let mut garbage = [0x5247_5450_534f_434b_u64, 0, 0, 0, 0, 0, 0, 0];
        let g = garbage.as_mut_ptr().cast::<Opaque>();
        let to = CString::new("127.0.0.1:9").unwrap();
        let mut buf = [0u8; 16];
        let mut len = 0usize;
        let mut text = [0 as c_char; ADDRSTRLEN];
        let mut st = Stats {
            size: std::mem::size_of::<Stats>(),
            ..Stats::default()
        };
        for bad_h in [std::ptr::null_mut(), g] {
            assert_eq!(
                (l.local_addr)(bad_h, text.as_mut_ptr(), text.len()),
                RGTP_ERR_INVALID_ARG
            );
            assert_eq!(
                (l.send_to)(bad_h, buf.as_ptr(), 1, to.as_ptr()),
                RGTP_ERR_INVALID_ARG
            );
            assert_eq!(
                (l.send_confirmed)(bad_h, buf.as_ptr(), 1, to.as_ptr(), 10),
                RGTP_ERR_INVALID_ARG
            );
            assert_eq!(
                (l.recv_from)(
                    bad_h,
                    buf.as_mut_ptr(),
                    buf.len(),
                    &mut len,
                    std::ptr::null_mut(),
                    0,
                    10
                ),
                RGTP_ERR_INVALID_ARG
            );
            assert_eq!((l.flush)(bad_h, 10), RGTP_ERR_INVALID_ARG);
            assert_eq!((l.stats)(bad_h, &mut st), RGTP_ERR_INVALID_ARG);
            (l.close)(bad_h); // a no-op: the tag does not match
        }
        assert_eq!(garbage[0], 0x5247_5450_534f_434b, "close left it alone");

        let a = Gt::open(None);
        let mut small = [0 as c_char; 4];
        assert_eq!(
            (l.local_addr)(a.0, small.as_mut_ptr(), small.len()),
            RGTP_ERR_INVALID_ARG
        );
        assert_eq!(small, [0; 4], "nothing written");
        assert_eq!(
            (l.local_addr)(a.0, std::ptr::null_mut(), 64),
            RGTP_ERR_INVALID_ARG
        );
        assert_eq!(
            (l.send_to)(a.0, std::ptr::null(), 5, to.as_ptr()),
            RGTP_ERR_INVALID_ARG
        );
        assert_eq!(
            (l.send_to)(a.0, buf.as_ptr(), 1, std::ptr::null()),
            RGTP_ERR_INVALID_ARG
        );
        assert_eq!(
            (l.send_to)(a.0, buf.as_ptr(), 1, bad.as_ptr()),
            RGTP_ERR_INVALID_ARG
        );
        let huge = vec![0u8; 70_000];
        assert_eq!(
            (l.send_confirmed)(a.0, huge.as_ptr(), huge.len(), to.as_ptr(), 100),
            RGTP_ERR_INVALID_ARG
        );
        assert_eq!(
            (l.recv_from)(
                a.0,
                buf.as_mut_ptr(),
                buf.len(),
                std::ptr::null_mut(),
                std::ptr::null_mut(),
                0,
                10
            ),
            RGTP_ERR_INVALID_ARG
        );
        assert_eq!(
            (l.recv_from)(
                a.0,
                std::ptr::null_mut(),
                8,
                &mut len,
                std::ptr::null_mut(),
                0,
                10
            ),
            RGTP_ERR_INVALID_ARG
        );
        assert_eq!(
            (l.recv_from)(
                a.0,
                buf.as_mut_ptr(),
                buf.len(),
                &mut len,
                text.as_mut_ptr(),
                ADDRSTRLEN - 1,
                10
            ),
            RGTP_ERR_INVALID_ARG
        );
        assert_eq!((l.stats)(a.0, std::ptr::null_mut()), RGTP_ERR_INVALID_ARG);
        let mut zero = Stats::default();
        assert_eq!((l.stats)(a.0, &mut zero), RGTP_ERR_INVALID_ARG);
        assert_eq!(
            a.stats().data_sent,
            0,
            "nothing was sent by the failed calls"
        );
        (l.close)(std::ptr::null_mut());
    }
}

#[test]
fn stats_fill_only_what_the_caller_sized() {
    let a = Gt::open(None);
    let b = Gt::open(None);
    assert_eq!(a.send_to(b"one", &b.addr()), RGTP_OK);
    assert_eq!(b.recv(16, 5000).code, RGTP_OK);
    let mut s = Stats {
        size: std::mem::size_of::<usize>() + 3 * 8,
        datagrams_in: 111,
        malformed: 111,
        delivered: 111,
        duplicates: 111,
        ..Stats::default()
    };
    // SAFETY: live handle; the struct has room for more than `size` says.
    assert_eq!(unsafe { (lib().stats)(b.0, &mut s) }, RGTP_OK);
    assert_eq!(s.size, std::mem::size_of::<usize>() + 3 * 8);
    assert!(s.datagrams_in >= 1);
    assert_eq!(s.malformed, 0);
    assert_eq!(s.delivered, 1);
    assert_eq!(s.duplicates, 111, "beyond size: untouched");
}

#[test]
fn a_magic_and_types_profile_round_trips() {
    let magic = *b"GTUDP1";
    let types = [0x10, 0x01, 0x20, 0x02, 0x30, 0x03];
    let o = Options {
        magic: magic.as_ptr(),
        magic_len: magic.len(),
        types: types.as_ptr(),
        types_len: types.len(),
        reference_timers: true,
        ..Options::default()
    };
    round_trip(Some(&o), Some(&o), &[b"", b"profiled", &pattern(1200)]);
}

#[test]
fn a_keyed_profile_round_trips() {
    let key = [0x42u8; 32];
    let o = Options {
        key: key.as_ptr(),
        ..Options::default()
    };
    let fixed = Options {
        key: key.as_ptr(),
        session: 77,
        ..Options::default()
    };
    round_trip(Some(&o), Some(&fixed), &[b"", b"k", &pattern(1200)]);
}

#[test]
fn a_mismatched_key_never_delivers() {
    let (k1, k2) = ([1u8; 32], [2u8; 32]);
    let a = Gt::open(Some(&Options {
        key: k1.as_ptr(),
        ..Options::default()
    }));
    let b = Arc::new(Gt::open(Some(&Options {
        key: k2.as_ptr(),
        ..Options::default()
    })));
    let stop = Arc::new(AtomicBool::new(false));
    let t = echo(b.clone(), stop.clone());
    assert_eq!(
        a.send_confirmed(b"secret", &b.addr(), 1500),
        RGTP_ERR_TIMEOUT
    );
    stop.store(true, Ordering::Release);
    assert_eq!(t.join().unwrap(), 0, "b handed nothing out");
    let sb = b.stats();
    assert_eq!(sb.delivered, 0);
    assert!(sb.auth_failed >= 1, "{sb:?}");
    // A plain peer is not understood either.
    let plain = Gt::open(None);
    assert_eq!(plain.send_to(b"plain", &b.addr()), RGTP_OK);
    assert_eq!(b.recv(64, 600).code, RGTP_ERR_TIMEOUT);
    assert_eq!(b.stats().delivered, 0);
}

/// The header's structs, as a C compiler lays them out, against the layout this test
/// (and the library, see `stats_fill_only_what_the_caller_sized`) uses. Needs gcc.
#[test]
fn header_layout_matches() {
    use std::mem::offset_of;
    let dir = dl::profile_dir().join("rgtp-ffi-gtudp-layout");
    std::fs::create_dir_all(&dir).unwrap();
    let src = dir.join("layout.c");
    let exe = dir.join(format!("layout-{}", std::process::id()));
    std::fs::write(
        &src,
        r#"#include <stdio.h>
#include <stddef.h>
#include "rgtp.h"
#define O(T, f) printf(#T "." #f " %zu\n", offsetof(T, f))
int main(void) {
    printf("options %zu\nstats %zu\nADDRSTRLEN %d\n", sizeof(rgtp_gtudp_options_t),
           sizeof(rgtp_gtudp_stats_t), RGTP_GTUDP_ADDRSTRLEN);
    O(rgtp_gtudp_options_t, magic); O(rgtp_gtudp_options_t, magic_len);
    O(rgtp_gtudp_options_t, types); O(rgtp_gtudp_options_t, types_len);
    O(rgtp_gtudp_options_t, reference_timers); O(rgtp_gtudp_options_t, key);
    O(rgtp_gtudp_options_t, session);
    O(rgtp_gtudp_stats_t, datagrams_in); O(rgtp_gtudp_stats_t, delivered);
    O(rgtp_gtudp_stats_t, dropped);
    return 0;
}
"#,
    )
    .unwrap();
    let st = Command::new("gcc")
        .args(["-std=c11", "-Wall", "-Werror", "-I"])
        .arg(Path::new(CRATE).join("include"))
        .arg(&src)
        .arg("-o")
        .arg(&exe)
        .status()
        .expect("gcc");
    assert!(st.success(), "gcc failed on the header");
    let out = Command::new(&exe).output().expect("run layout");
    let _ = std::fs::remove_file(&exe);
    let got = String::from_utf8(out.stdout).unwrap();
    let expect = [
        ("options", size_of::<Options>()),
        ("stats", size_of::<Stats>()),
        ("ADDRSTRLEN", ADDRSTRLEN),
        ("rgtp_gtudp_options_t.magic", offset_of!(Options, magic)),
        (
            "rgtp_gtudp_options_t.magic_len",
            offset_of!(Options, magic_len),
        ),
        ("rgtp_gtudp_options_t.types", offset_of!(Options, types)),
        (
            "rgtp_gtudp_options_t.types_len",
            offset_of!(Options, types_len),
        ),
        (
            "rgtp_gtudp_options_t.reference_timers",
            offset_of!(Options, reference_timers),
        ),
        ("rgtp_gtudp_options_t.key", offset_of!(Options, key)),
        ("rgtp_gtudp_options_t.session", offset_of!(Options, session)),
        (
            "rgtp_gtudp_stats_t.datagrams_in",
            offset_of!(Stats, datagrams_in),
        ),
        ("rgtp_gtudp_stats_t.delivered", offset_of!(Stats, delivered)),
        ("rgtp_gtudp_stats_t.dropped", offset_of!(Stats, dropped)),
    ];
    let lines: Vec<&str> = got.lines().collect();
    assert_eq!(lines.len(), expect.len(), "{got}");
    for (line, (name, value)) in lines.iter().zip(expect) {
        assert_eq!(*line, format!("{name} {value}"));
    }
}
