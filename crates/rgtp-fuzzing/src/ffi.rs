//! `ffi`: the C ABI with arbitrary arguments.
//!
//! `rgtp-ffi` builds only a cdylib and a staticlib (no rlib), so this target loads the
//! built `librgtp.so` with `dlopen` and calls its exported symbols exactly as a C
//! program would. The library is not instrumented by the fuzzer: coverage feedback
//! comes from this harness only, but every panic the library catches surfaces as
//! `RGTP_ERR_INTERNAL` (-15), which this target treats as a bug.
//!
//! What is called: `rgtp_strerror` with any code; every handle-taking function with
//! NULL and with a handle of the wrong kind; `rgtp_set_log_level`/`rgtp_set_allocator`
//! with arbitrary values; `rgtp_socket_create` with arbitrary configs;
//! `rgtp_get_ticket` with arbitrary buffer sizes; `rgtp_pull_start_ticket` with
//! arbitrary strings; and a real pull from an in-process exposer, through
//! `rgtp_pull_next` with arbitrary buffer sizes, checking every chunk's bytes.
//!
//! Strings that parse as a ticket naming a host other than a loopback literal are not
//! passed to `rgtp_pull_start_ticket`: it would resolve the name and send to it, and a
//! fuzzer must stay off the network. Their parsing is covered by the `ticket` target.

use std::ffi::{c_char, c_int, c_void, CStr, CString};
use std::path::PathBuf;
use std::sync::OnceLock;

use arbitrary::{Arbitrary, Unstructured};

/// Environment variable naming the `librgtp.so` to load.
pub const FFI_LIB_ENV: &str = "RGTP_FFI_LIB";

const OK: c_int = 0;
const INVALID_ARG: c_int = -2;
const TIMEOUT: c_int = -12;
const NOT_SUPPORTED: c_int = -14;
const INTERNAL: c_int = -15;
const CHUNK_INDEX_NONE: u32 = u32::MAX;

/// The fixture exposure served by the library.
const FIXTURE_LEN: usize = 3000;
const FIXTURE_CHUNK: u32 = 512;

/// `rgtp_config_t`, field for field as in `rgtp.h`.
#[repr(C)]
#[derive(Clone, Copy)]
struct Config {
    chunk_size: u32,
    window_size: u32,
    fec_enabled: u8,
    fec_k: u8,
    fec_n: u8,
    merkle_proofs: u8,
    raw_ethernet: u8,
    eth_iface: [u8; 16],
    eth_vlan_id: u16,
    eth_vlan_pcp: u8,
    port: u16,
    timeout_ms: c_int,
    memory_profile: u32,
    alloc: Option<unsafe extern "C" fn(usize, *mut c_void) -> *mut c_void>,
    free: Option<unsafe extern "C" fn(*mut c_void, *mut c_void)>,
    ctx: *mut c_void,
}

/// An allocator the library must never call (it does not support custom allocators).
unsafe extern "C" fn never_alloc(_: usize, _: *mut c_void) -> *mut c_void {
    std::process::abort()
}

unsafe extern "C" fn never_free(_: *mut c_void, _: *mut c_void) {
    std::process::abort()
}

#[derive(Debug, Arbitrary)]
struct ArbConfig {
    chunk_size: u32,
    window_size: u32,
    fec_enabled: bool,
    fec_k: u8,
    fec_n: u8,
    merkle_proofs: u8,
    raw_ethernet: u8,
    timeout_ms: i32,
    memory_profile: u32,
    allocator: bool,
}

impl ArbConfig {
    fn config(&self) -> Config {
        Config {
            chunk_size: self.chunk_size,
            window_size: self.window_size,
            fec_enabled: u8::from(self.fec_enabled),
            fec_k: self.fec_k,
            fec_n: self.fec_n,
            merkle_proofs: self.merkle_proofs,
            raw_ethernet: self.raw_ethernet,
            eth_iface: [0; 16],
            eth_vlan_id: 0,
            eth_vlan_pcp: 0,
            // Port 0: RGTP_PORT, which this harness sets to 0 (any free port).
            port: 0,
            timeout_ms: self.timeout_ms,
            memory_profile: self.memory_profile,
            alloc: self.allocator.then_some(never_alloc as _),
            free: self.allocator.then_some(never_free as _),
            ctx: std::ptr::null_mut(),
        }
    }
}

type Sock = c_void;
type Surf = c_void;

struct Lib {
    strerror: unsafe extern "C" fn(c_int) -> *const c_char,
    version: unsafe extern "C" fn() -> *const c_char,
    init: unsafe extern "C" fn() -> c_int,
    set_log_level: unsafe extern "C" fn(c_int) -> c_int,
    set_allocator: unsafe extern "C" fn(*const [usize; 3]) -> c_int,
    socket_create: unsafe extern "C" fn(*const Config, *mut *mut Sock) -> c_int,
    socket_destroy: unsafe extern "C" fn(*mut Sock),
    expose: unsafe extern "C" fn(
        *mut Sock,
        *const c_void,
        usize,
        *const Config,
        *mut *mut Surf,
    ) -> c_int,
    poll: unsafe extern "C" fn(*mut Surf, c_int) -> c_int,
    destroy_surface: unsafe extern "C" fn(*mut Surf),
    get_exposure_id: unsafe extern "C" fn(*const Surf, *mut u8) -> c_int,
    get_manifest_info: unsafe extern "C" fn(*const Surf, *mut u64, *mut u32, *mut u32) -> c_int,
    get_key: unsafe extern "C" fn(*const Surf, *mut u8) -> c_int,
    get_ticket: unsafe extern "C" fn(*const Surf, *mut c_char, usize, *mut usize) -> c_int,
    progress: unsafe extern "C" fn(*const Surf) -> f32,
    get_stats: unsafe extern "C" fn(*const Surf, *mut u64) -> c_int,
    get_latency_stats: unsafe extern "C" fn(*const Surf, *mut u64) -> c_int,
    pull_start_ticket:
        unsafe extern "C" fn(*mut Sock, *const c_char, *const Config, *mut *mut Surf) -> c_int,
    pull_next: unsafe extern "C" fn(*mut Surf, *mut c_void, usize, *mut usize, *mut u32) -> c_int,
}

/// Where `librgtp.so` is looked for: `$RGTP_FFI_LIB`, then beside the running
/// executable (a fuzzer shipped with its library, as `.clusterfuzzlite/build.sh`
/// lays out `$OUT`), then the workspace's `target/release` and `target/debug`
/// (or `$CARGO_TARGET_DIR`'s).
pub fn ffi_library_path() -> Option<PathBuf> {
    if let Some(p) = std::env::var_os(FFI_LIB_ENV) {
        return Some(PathBuf::from(p));
    }
    let beside = std::env::current_exe()
        .ok()
        .and_then(|exe| Some(exe.parent()?.join("librgtp.so")));
    if let Some(p) = beside.filter(|p| p.exists()) {
        return Some(p);
    }
    let target = std::env::var_os("CARGO_TARGET_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../target"));
    ["release", "debug"]
        .iter()
        .map(|p| target.join(p).join("librgtp.so"))
        .find(|p| p.exists())
}

/// Reinterprets a symbol address as the function pointer type `F`.
///
/// # Safety
/// `p` must be the address of a function of type `F`.
unsafe fn fn_ptr<F: Copy>(p: *mut c_void) -> F {
    assert_eq!(std::mem::size_of::<F>(), std::mem::size_of::<*mut c_void>());
    // SAFETY: same size (checked); the caller vouches for the type.
    unsafe { std::mem::transmute_copy(&p) }
}

fn load() -> Lib {
    let path = ffi_library_path().unwrap_or_else(|| {
        panic!("librgtp.so not found: run `cargo build -p rgtp-ffi` (or set {FFI_LIB_ENV})")
    });
    let cpath = CString::new(path.to_string_lossy().into_owned()).expect("path without NUL");
    // SAFETY: dlopen with a NUL-terminated path; the handle is never closed, so the
    // symbols below stay valid for the life of the process.
    let handle = unsafe { libc::dlopen(cpath.as_ptr(), libc::RTLD_NOW | libc::RTLD_LOCAL) };
    assert!(!handle.is_null(), "dlopen {} failed", path.display());
    macro_rules! sym {
        ($name:literal) => {{
            let n = concat!($name, "\0");
            // SAFETY: NUL-terminated name, live handle.
            let p = unsafe { libc::dlsym(handle, n.as_ptr().cast()) };
            assert!(!p.is_null(), "{} missing from librgtp.so", $name);
            // SAFETY: the symbol is the function `rgtp.h` declares, with the type of the
            // field this is assigned to (the field types mirror the header).
            unsafe { fn_ptr(p) }
        }};
    }
    Lib {
        strerror: sym!("rgtp_strerror"),
        version: sym!("rgtp_version"),
        init: sym!("rgtp_init"),
        set_log_level: sym!("rgtp_set_log_level"),
        set_allocator: sym!("rgtp_set_allocator"),
        socket_create: sym!("rgtp_socket_create"),
        socket_destroy: sym!("rgtp_socket_destroy"),
        expose: sym!("rgtp_expose"),
        poll: sym!("rgtp_poll"),
        destroy_surface: sym!("rgtp_destroy_surface"),
        get_exposure_id: sym!("rgtp_get_exposure_id"),
        get_manifest_info: sym!("rgtp_get_manifest_info"),
        get_key: sym!("rgtp_get_key"),
        get_ticket: sym!("rgtp_get_ticket"),
        progress: sym!("rgtp_progress"),
        get_stats: sym!("rgtp_get_stats"),
        get_latency_stats: sym!("rgtp_get_latency_stats"),
        pull_start_ticket: sym!("rgtp_pull_start_ticket"),
        pull_next: sym!("rgtp_pull_next"),
    }
}

/// Handles shared with the serving thread.
struct Shared {
    lib: Lib,
    sock: usize,
    exposer: usize,
    ticket: CString,
    data: Vec<u8>,
}

fn check_code(what: &str, code: c_int) {
    assert_ne!(code, INTERNAL, "{what}: RGTP_ERR_INTERNAL (a caught panic)");
    assert!(
        (-14..=0).contains(&code),
        "{what}: undefined return code {code}"
    );
}

/// The library, a socket and a served fixture exposure, set up once per process.
fn shared() -> &'static Shared {
    static SHARED: OnceLock<Shared> = OnceLock::new();
    SHARED.get_or_init(|| {
        // Exposers with port 0 bind any free port; no key from the environment.
        std::env::set_var("RGTP_PORT", "0");
        std::env::remove_var("RGTP_KEY");
        std::env::remove_var("RGTP_CRYPTO_BACKEND");
        let lib = load();
        // SAFETY (all calls below): arguments follow rgtp.h; pointers are NULL or to live,
        // correctly sized locals.
        unsafe {
            assert_eq!((lib.init)(), OK);
            let mut sock = std::ptr::null_mut();
            assert_eq!((lib.socket_create)(std::ptr::null(), &mut sock), OK);
            let data = crate::fixtures::data_of(99, FIXTURE_LEN);
            let mut cfg = ArbConfig {
                chunk_size: FIXTURE_CHUNK,
                window_size: 0,
                fec_enabled: true,
                fec_k: 4,
                fec_n: 6,
                merkle_proofs: 0,
                raw_ethernet: 0,
                timeout_ms: 0,
                memory_profile: 0,
                allocator: false,
            }
            .config();
            cfg.port = 0;
            let mut surf = std::ptr::null_mut();
            let rc = (lib.expose)(sock, data.as_ptr().cast(), data.len(), &cfg, &mut surf);
            assert_eq!(rc, OK, "rgtp_expose of the fixture");
            let mut need = 0usize;
            let _ = (lib.get_ticket)(surf, std::ptr::null_mut(), 0, &mut need);
            let mut buf = vec![0u8; need];
            let rc = (lib.get_ticket)(surf, buf.as_mut_ptr().cast(), need, &mut need);
            assert_eq!(rc, OK, "rgtp_get_ticket of the fixture");
            let ticket = CStr::from_bytes_with_nul(&buf)
                .expect("NUL-terminated")
                .to_owned();
            let exposer = surf as usize;
            let poll = lib.poll as usize;
            std::thread::spawn(move || loop {
                // SAFETY: `poll` is `rgtp_poll` of the loaded library (never unloaded), and
                // the exposer surface lives for the whole process.
                let poll: unsafe extern "C" fn(*mut Surf, c_int) -> c_int =
                    fn_ptr(poll as *mut c_void);
                let rc = poll(exposer as *mut Surf, 100);
                assert!(rc == OK || rc == TIMEOUT, "rgtp_poll of the exposer: {rc}");
            });
            Shared {
                lib,
                sock: sock as usize,
                exposer,
                ticket,
                data,
            }
        }
    })
}

#[derive(Debug, Arbitrary)]
enum Op {
    Strerror(i32),
    Version,
    SetLogLevel(i32),
    SetAllocator(Option<[usize; 3]>),
    NullHandles,
    WrongKind,
    SocketCreate {
        cfg: Option<ArbConfig>,
        null_out: bool,
    },
    GetTicket {
        buf_len: u16,
        null_buf: bool,
        null_out_len: bool,
    },
    PullStartTicket {
        text: Vec<u8>,
        cfg: Option<ArbConfig>,
    },
    Pull {
        buf_lens: Vec<u16>,
        null_buf: bool,
        window: u8,
    },
}

/// See the module documentation.
pub fn ffi(data: &[u8]) {
    let s = shared();
    let mut u = Unstructured::new(data);
    for _ in 0..16 {
        let Ok(op) = Op::arbitrary(&mut u) else {
            break;
        };
        // SAFETY: every call passes NULL or valid, correctly sized pointers, and live
        // handles of this library, as rgtp.h requires.
        unsafe { run(s, op) };
    }
}

unsafe fn run(s: &Shared, op: Op) {
    let l = &s.lib;
    let sock = s.sock as *mut Sock;
    let exposer = s.exposer as *mut Surf;
    let null_s: *mut Surf = std::ptr::null_mut();
    match op {
        Op::Strerror(code) => {
            let p = unsafe { (l.strerror)(code) };
            assert!(!p.is_null(), "rgtp_strerror({code}) is NULL");
            let text = unsafe { CStr::from_ptr(p) }
                .to_str()
                .expect("UTF-8 message");
            assert!(!text.is_empty());
            assert_eq!(
                text == "unknown error",
                !(-15..=0).contains(&code),
                "{code}: {text}"
            );
        }
        Op::Version => {
            let p = unsafe { (l.version)() };
            assert!(!p.is_null());
            assert!(!unsafe { CStr::from_ptr(p) }.to_bytes().is_empty());
        }
        Op::SetLogLevel(level) => {
            let rc = unsafe { (l.set_log_level)(level) };
            check_code("rgtp_set_log_level", rc);
            assert!(rc == OK || rc == INVALID_ARG);
            // Leave logging quiet for the rest of the run.
            unsafe { (l.set_log_level)(0) };
        }
        Op::SetAllocator(a) => {
            let rc = match &a {
                Some(a) => unsafe { (l.set_allocator)(a) },
                None => unsafe { (l.set_allocator)(std::ptr::null()) },
            };
            assert_eq!(rc, if a.is_some() { NOT_SUPPORTED } else { OK });
        }
        Op::NullHandles => unsafe { null_handles(l, null_s, null_s) },
        Op::WrongKind => unsafe { null_handles(l, sock, exposer) },
        Op::SocketCreate { cfg, null_out } => {
            let c = cfg.as_ref().map(ArbConfig::config);
            let cp = c.as_ref().map_or(std::ptr::null(), |c| c as *const Config);
            let mut out: *mut Sock = std::ptr::null_mut();
            let op = if null_out {
                std::ptr::null_mut()
            } else {
                &mut out as *mut _
            };
            let rc = unsafe { (l.socket_create)(cp, op) };
            check_code("rgtp_socket_create", rc);
            if null_out {
                assert_eq!(rc, INVALID_ARG);
            }
            if rc == OK {
                assert!(!out.is_null());
                unsafe { (l.socket_destroy)(out) };
            }
        }
        Op::GetTicket {
            buf_len,
            null_buf,
            null_out_len,
        } => {
            let len = usize::from(buf_len % 512);
            let mut buf = vec![0xa5u8; len + 16];
            let bp = if null_buf {
                std::ptr::null_mut()
            } else {
                buf.as_mut_ptr().cast()
            };
            let mut need = usize::MAX;
            let np = if null_out_len {
                std::ptr::null_mut()
            } else {
                &mut need as *mut _
            };
            let rc = unsafe { (l.get_ticket)(exposer, bp, len, np) };
            let want = s.ticket.as_bytes_with_nul();
            if !null_out_len {
                assert_eq!(need, want.len(), "*out_len must be the size needed");
            }
            if !null_buf && len >= want.len() {
                assert_eq!(rc, OK);
                assert_eq!(&buf[..want.len()], want, "ticket text differs");
                assert!(
                    buf[want.len()..].iter().all(|&b| b == 0xa5),
                    "wrote past the ticket"
                );
            } else {
                assert_eq!(rc, INVALID_ARG);
                assert!(buf.iter().all(|&b| b == 0xa5), "wrote to buf on failure");
            }
        }
        Op::PullStartTicket { text, cfg } => {
            let end = text.iter().position(|&b| b == 0).unwrap_or(text.len());
            let c = CString::new(&text[..end]).expect("no NUL");
            // Stay off the network: tickets naming a non-loopback host are not started.
            if let Ok(t) = std::str::from_utf8(&text[..end])
                .map_err(|_| ())
                .and_then(|t| t.parse::<rgtp::Ticket>().map_err(|_| ()))
            {
                if !matches!(t.host.as_str(), "127.0.0.1" | "[::1]") {
                    return;
                }
            }
            let mut conf = cfg.as_ref().map_or_else(
                || {
                    ArbConfig {
                        chunk_size: 0,
                        window_size: 0,
                        fec_enabled: false,
                        fec_k: 0,
                        fec_n: 0,
                        merkle_proofs: 0,
                        raw_ethernet: 0,
                        timeout_ms: 0,
                        memory_profile: 0,
                        allocator: false,
                    }
                    .config()
                },
                ArbConfig::config,
            );
            // Never wait long for a Manifest that will not come.
            conf.timeout_ms = conf.timeout_ms.rem_euclid(50).max(1);
            let mut out: *mut Surf = std::ptr::null_mut();
            let rc = unsafe { (l.pull_start_ticket)(sock, c.as_ptr(), &conf, &mut out) };
            check_code("rgtp_pull_start_ticket", rc);
            if rc == OK {
                unsafe { (l.destroy_surface)(out) };
            }
        }
        Op::Pull {
            buf_lens,
            null_buf,
            window,
        } => unsafe { pull(s, &buf_lens, null_buf, window) },
    }
}

/// Every handle-taking call with `h` as the surface and `sk` as the socket: both NULL,
/// or each a live handle of the other kind.
unsafe fn null_handles(l: &Lib, h: *mut Surf, sk: *mut Sock) {
    let mut id = [0u8; 32];
    let (mut a, mut b, mut c) = (0u64, 0u32, 0u32);
    let mut stats = [0u64; 16];
    let mut buf = [0u8; 64];
    let (mut got, mut idx) = (0usize, 0u32);
    // SAFETY: `h` and `sk` are NULL or live handles (of the wrong kind); outs are valid.
    unsafe {
        assert_eq!((l.get_exposure_id)(h, id.as_mut_ptr()), INVALID_ARG);
        assert_eq!((l.get_key)(h, id.as_mut_ptr()), INVALID_ARG);
        assert_eq!(
            (l.get_manifest_info)(h, &mut a, &mut b, &mut c),
            INVALID_ARG
        );
        assert_eq!((l.get_stats)(h, stats.as_mut_ptr()), INVALID_ARG);
        assert_eq!((l.get_latency_stats)(h, stats.as_mut_ptr()), INVALID_ARG);
        let rc = (l.get_ticket)(h, buf.as_mut_ptr().cast(), buf.len(), &mut got);
        assert_eq!(rc, INVALID_ARG);
        assert_eq!((l.progress)(h), 0.0);
        assert_eq!((l.poll)(h, 0), INVALID_ARG);
        let rc = (l.pull_next)(h, buf.as_mut_ptr().cast(), buf.len(), &mut got, &mut idx);
        assert_eq!(rc, INVALID_ARG);
        let mut out = std::ptr::null_mut();
        let t = c"rgtp://127.0.0.1:1/00000000000000000000000000000000#0000000000000000000000000000000000000000000000000000000000000000";
        let rc = (l.pull_start_ticket)(sk, t.as_ptr(), std::ptr::null(), &mut out);
        assert_eq!(rc, INVALID_ARG);
        let rc = (l.expose)(sk, buf.as_ptr().cast(), 1, std::ptr::null(), &mut out);
        assert_eq!(rc, INVALID_ARG);
        if h.is_null() {
            (l.destroy_surface)(h);
            (l.socket_destroy)(h);
        }
    }
}

/// A real pull of the fixture, with arbitrary `rgtp_pull_next` buffer sizes.
unsafe fn pull(s: &Shared, lens: &[u16], null_buf: bool, window: u8) {
    let l = &s.lib;
    let mut cfg = ArbConfig {
        chunk_size: 0,
        window_size: u32::from(window % 8),
        fec_enabled: false,
        fec_k: 0,
        fec_n: 0,
        merkle_proofs: u8::from(window & 0x80 != 0),
        raw_ethernet: 0,
        timeout_ms: 3000,
        memory_profile: 0,
        allocator: false,
    }
    .config();
    cfg.port = 0;
    let mut surf: *mut Surf = std::ptr::null_mut();
    let rc =
        unsafe { (l.pull_start_ticket)(s.sock as *mut Sock, s.ticket.as_ptr(), &cfg, &mut surf) };
    assert_eq!(rc, OK, "pull of the in-process fixture");
    // The exposer surface is not a puller.
    let (mut got, mut idx) = (0usize, 0u32);
    let mut one = [0u8; 1];
    let rc = unsafe {
        (l.pull_next)(
            s.exposer as *mut Surf,
            one.as_mut_ptr().cast(),
            1,
            &mut got,
            &mut idx,
        )
    };
    assert_eq!(rc, INVALID_ARG);
    let count = FIXTURE_LEN.div_ceil(FIXTURE_CHUNK as usize);
    let mut seen = vec![false; count];
    let mut ended = false;
    let sizes = lens
        .iter()
        .copied()
        .chain(std::iter::repeat(FIXTURE_CHUNK as u16));
    for (step, want) in sizes.enumerate() {
        if step > count + lens.len() + 4 || ended {
            break;
        }
        let len = usize::from(want % 1024);
        let mut buf = vec![0xa5u8; len + 16];
        let null = null_buf && step == 0;
        let bp = if null {
            std::ptr::null_mut()
        } else {
            buf.as_mut_ptr().cast()
        };
        let (mut got, mut idx) = (usize::MAX, 7u32);
        let rc = unsafe { (l.pull_next)(surf, bp, len, &mut got, &mut idx) };
        check_code("rgtp_pull_next", rc);
        if null && len > 0 {
            assert_eq!(rc, INVALID_ARG, "NULL buffer with a length");
            assert_eq!((got, idx), (usize::MAX, 7), "outs written on a NULL buffer");
            continue;
        }
        match rc {
            OK if idx == CHUNK_INDEX_NONE => {
                assert_eq!(got, 0);
                assert!(seen.iter().all(|&s| s), "end of stream before every chunk");
                assert_eq!(unsafe { (l.progress)(surf) }, 1.0);
                ended = true;
            }
            OK => {
                let i = idx as usize;
                assert!(i < count, "chunk index {idx} out of range");
                assert!(!seen[i], "chunk {idx} handed out twice");
                seen[i] = true;
                assert!(got <= len);
                let start = i * FIXTURE_CHUNK as usize;
                let real = &s.data[start..(start + FIXTURE_CHUNK as usize).min(FIXTURE_LEN)];
                assert_eq!(
                    &buf[..got],
                    real,
                    "chunk {idx} differs from the exposed data"
                );
                assert!(
                    buf[got..].iter().all(|&b| b == 0xa5),
                    "wrote past the chunk"
                );
            }
            INVALID_ARG => {
                assert_eq!(idx, CHUNK_INDEX_NONE);
                assert!(got > len, "too small, yet {got} <= {len}");
                assert!(
                    buf.iter().all(|&b| b == 0xa5),
                    "wrote to a too-small buffer"
                );
            }
            other => panic!("rgtp_pull_next from a live local exposer: {other}"),
        }
    }
    let mut stats = [0u64; 16];
    assert_eq!(unsafe { (l.get_stats)(surf, stats.as_mut_ptr()) }, OK);
    unsafe { (l.destroy_surface)(surf) };
}
