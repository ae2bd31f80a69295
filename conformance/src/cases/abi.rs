//! ABI cases: any librgtp.so, loaded at run time and driven through the C interface of
//! `crates/rgtp-ffi/include/rgtp.h` (spec §14), against our reference exposer and puller.

use std::ffi::{c_char, c_int, c_void, CStr};
use std::net::{SocketAddr, UdpSocket};
use std::path::{Path, PathBuf};
use std::ptr::{null, null_mut};
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use rgtp::{ExposerBuilder, Ticket};

use super::{fail, skip, Case, CaseResult, Level, Stop};
use crate::cases::puller::{data, forging_exposer, honest_exposer};
use crate::ensure;

const OK: c_int = 0;
const INVALID_ARG: c_int = -2;
const SOCKET: c_int = -3;
const AUTH_FAIL: c_int = -7;
const TIMEOUT: c_int = -12;
const NOT_SUPPORTED: c_int = -14;
const CHUNK_INDEX_NONE: u32 = u32::MAX;

/// `rgtp_allocator_t`.
#[repr(C)]
#[derive(Clone, Copy)]
pub struct Allocator {
    alloc: Option<unsafe extern "C" fn(usize, *mut c_void) -> *mut c_void>,
    free: Option<unsafe extern "C" fn(*mut c_void, *mut c_void)>,
    ctx: *mut c_void,
}

/// `rgtp_config_t`.
#[repr(C)]
#[derive(Clone, Copy)]
pub struct Config {
    chunk_size: u32,
    window_size: u32,
    fec_enabled: bool,
    fec_k: u8,
    fec_n: u8,
    merkle_proofs: bool,
    raw_ethernet: bool,
    eth_iface: [u8; 16],
    eth_vlan_id: u16,
    eth_vlan_pcp: u8,
    port: u16,
    timeout_ms: c_int,
    memory_profile: u32,
    allocator: Allocator,
}

impl Config {
    fn zero() -> Config {
        Config {
            chunk_size: 0,
            window_size: 0,
            fec_enabled: false,
            fec_k: 0,
            fec_n: 0,
            merkle_proofs: false,
            raw_ethernet: false,
            eth_iface: [0; 16],
            eth_vlan_id: 0,
            eth_vlan_pcp: 0,
            port: 0,
            timeout_ms: 0,
            memory_profile: 0,
            allocator: Allocator {
                alloc: None,
                free: None,
                ctx: null_mut(),
            },
        }
    }
}

/// `rgtp_stats_t`.
#[repr(C)]
#[derive(Clone, Copy, Default, Debug)]
pub struct Stats {
    bytes_sent: u64,
    bytes_received: u64,
    chunks_sent: u32,
    chunks_received: u32,
    auth_failures: u32,
    malformed_packets: u32,
    fec_recoveries: u32,
    nak_sent: u32,
    packet_loss_rate: f32,
    rtt_us: u32,
    pull_pressure: u32,
}

type Sock = *mut c_void;
type Surf = *mut c_void;

/// The library's entry points. Each is resolved on its own: a library that lacks one
/// still runs every case that does not need it, and a case that does says n/a.
#[allow(missing_docs)]
pub struct Api {
    _lib: libloading::Library,
    pub path: PathBuf,
    init: Option<unsafe extern "C" fn() -> c_int>,
    version: Option<unsafe extern "C" fn() -> *const c_char>,
    strerror: Option<unsafe extern "C" fn(c_int) -> *const c_char>,
    set_allocator: Option<unsafe extern "C" fn(*const Allocator) -> c_int>,
    socket_create: Option<unsafe extern "C" fn(*const Config, *mut Sock) -> c_int>,
    socket_destroy: Option<unsafe extern "C" fn(Sock)>,
    socket_create_ccsds: Option<unsafe extern "C" fn(*const c_char, *const Config) -> Sock>,
    expose:
        Option<unsafe extern "C" fn(Sock, *const c_void, usize, *const Config, *mut Surf) -> c_int>,
    poll: Option<unsafe extern "C" fn(Surf, c_int) -> c_int>,
    destroy_surface: Option<unsafe extern "C" fn(Surf)>,
    get_exposure_id: Option<unsafe extern "C" fn(Surf, *mut u8) -> c_int>,
    progress: Option<unsafe extern "C" fn(Surf) -> f32>,
    get_stats: Option<unsafe extern "C" fn(Surf, *mut Stats) -> c_int>,
    get_ticket: Option<unsafe extern "C" fn(Surf, *mut c_char, usize, *mut usize) -> c_int>,
    get_key: Option<unsafe extern "C" fn(Surf, *mut u8) -> c_int>,
    pull_start: Option<
        unsafe extern "C" fn(
            Sock,
            *const libc::sockaddr_storage,
            *const u8,
            *const Config,
            *mut Surf,
        ) -> c_int,
    >,
    pull_start_ticket:
        Option<unsafe extern "C" fn(Sock, *const c_char, *const Config, *mut Surf) -> c_int>,
    pull_start_with_key: Option<
        unsafe extern "C" fn(
            Sock,
            *const libc::sockaddr_storage,
            *const u8,
            *const u8,
            *const Config,
            *mut Surf,
        ) -> c_int,
    >,
    pull_next:
        Option<unsafe extern "C" fn(Surf, *mut c_void, usize, *mut usize, *mut u32) -> c_int>,
}

/// The entry point `rgtp_<field>`, or the case says n/a (a SKIP) naming the symbol.
macro_rules! need {
    ($api:ident . $f:ident) => {
        $api.$f.ok_or_else(|| {
            Stop::Skip(format!(
                "n/a: not implemented (missing symbol {})",
                concat!("rgtp_", stringify!($f))
            ))
        })
    };
}

macro_rules! sym {
    ($lib:expr, $name:literal) => {{
        // SAFETY: the symbol's type is the one rgtp.h declares for it.
        unsafe { $lib.get(concat!($name, "\0").as_bytes()) }
            .ok()
            .map(|s| *s)
    }};
}

impl Api {
    /// Loads `path` and resolves each symbol the cases use, those it has.
    pub fn load(path: &Path) -> Result<Api, String> {
        // SAFETY: loading a library runs its initialisers; that is the point of the target.
        let lib = unsafe { libloading::Library::new(path) }
            .map_err(|e| format!("cannot load {}: {e}", path.display()))?;
        Ok(Api {
            init: sym!(lib, "rgtp_init"),
            version: sym!(lib, "rgtp_version"),
            strerror: sym!(lib, "rgtp_strerror"),
            set_allocator: sym!(lib, "rgtp_set_allocator"),
            socket_create: sym!(lib, "rgtp_socket_create"),
            socket_destroy: sym!(lib, "rgtp_socket_destroy"),
            socket_create_ccsds: sym!(lib, "rgtp_socket_create_ccsds"),
            expose: sym!(lib, "rgtp_expose"),
            poll: sym!(lib, "rgtp_poll"),
            destroy_surface: sym!(lib, "rgtp_destroy_surface"),
            get_exposure_id: sym!(lib, "rgtp_get_exposure_id"),
            progress: sym!(lib, "rgtp_progress"),
            get_stats: sym!(lib, "rgtp_get_stats"),
            get_ticket: sym!(lib, "rgtp_get_ticket"),
            get_key: sym!(lib, "rgtp_get_key"),
            pull_start: sym!(lib, "rgtp_pull_start"),
            pull_start_ticket: sym!(lib, "rgtp_pull_start_ticket"),
            pull_start_with_key: sym!(lib, "rgtp_pull_start_with_key"),
            pull_next: sym!(lib, "rgtp_pull_next"),
            path: path.to_path_buf(),
            _lib: lib,
        })
    }
}

/// What the ABI cases run against.
pub struct AbiCtx {
    /// The loaded library.
    pub api: Api,
}

struct SendPtr(*mut c_void);
// SAFETY: spec §14.4: each surface has its own lock; calls from any thread are allowed.
unsafe impl Send for SendPtr {}
unsafe impl Sync for SendPtr {}

/// A library exposer (socket + surface) polled in a thread until dropped.
struct LibExposer {
    sock: Sock,
    surf: Surf,
    destroy_surface: unsafe extern "C" fn(Surf),
    socket_destroy: unsafe extern "C" fn(Sock),
    stop: Arc<AtomicBool>,
    poller: Option<std::thread::JoinHandle<()>>,
}

impl Drop for LibExposer {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
        if let Some(h) = self.poller.take() {
            let _ = h.join();
        }
        // SAFETY: handles created by this harness, destroyed once.
        unsafe {
            (self.destroy_surface)(self.surf);
            (self.socket_destroy)(self.sock);
        }
    }
}

fn free_port() -> u16 {
    UdpSocket::bind("127.0.0.1:0")
        .and_then(|s| s.local_addr())
        .map_or(0, |a| a.port())
}

fn code_name(api: &Api, c: c_int) -> String {
    let Some(strerror) = api.strerror else {
        return format!("{c}");
    };
    // SAFETY: strerror returns a static NUL-terminated string (checked non-NULL).
    let p = unsafe { strerror(c) };
    if p.is_null() {
        return format!("{c}");
    }
    format!("{c} ({})", unsafe { CStr::from_ptr(p) }.to_string_lossy())
}

fn lib_expose(api: &Api, data: &[u8], poll: bool) -> Result<LibExposer, Stop> {
    let destroy_surface = need!(api.destroy_surface)?;
    let socket_destroy = need!(api.socket_destroy)?;
    let mut cfg = Config::zero();
    cfg.port = free_port();
    let mut sock: Sock = null_mut();
    let mut surf: Surf = null_mut();
    // SAFETY: valid pointers to locals; data outlives the call (the library copies/seals it).
    unsafe {
        let rc = (need!(api.socket_create)?)(&cfg, &mut sock);
        ensure!(
            rc == OK && !sock.is_null(),
            "rgtp_socket_create: {}",
            code_name(api, rc)
        );
        let rc = (need!(api.expose)?)(sock, data.as_ptr().cast(), data.len(), &cfg, &mut surf);
        if rc != OK || surf.is_null() {
            (need!(api.socket_destroy)?)(sock);
            return fail(format!("rgtp_expose: {}", code_name(api, rc)));
        }
    }
    let stop = Arc::new(AtomicBool::new(false));
    let poller = if poll {
        let stop2 = Arc::clone(&stop);
        let s = SendPtr(surf);
        let pollf = need!(api.poll)?;
        Some(std::thread::spawn(move || {
            let s = s;
            while !stop2.load(Ordering::Relaxed) {
                // SAFETY: the surface lives until the poller is joined.
                unsafe {
                    pollf(s.0, 20);
                }
            }
        }))
    } else {
        None
    };
    Ok(LibExposer {
        sock,
        surf,
        destroy_surface,
        socket_destroy,
        stop,
        poller,
    })
}

fn ticket_of(api: &Api, surf: Surf) -> Result<String, Stop> {
    let mut need = 0usize;
    let mut small = [0 as c_char; 8];
    // SAFETY: buffers and out-pointers are valid for the given lengths.
    let rc = unsafe { (need!(api.get_ticket)?)(surf, small.as_mut_ptr(), small.len(), &mut need) };
    ensure!(
        rc == INVALID_ARG,
        "rgtp_get_ticket with an 8-byte buffer: {} (expected -2)",
        code_name(api, rc)
    );
    ensure!(
        need > 8,
        "rgtp_get_ticket did not report the size needed ({need})"
    );
    let mut buf = vec![0 as c_char; need];
    let mut len = 0usize;
    let rc = unsafe { (need!(api.get_ticket)?)(surf, buf.as_mut_ptr(), buf.len(), &mut len) };
    ensure!(
        rc == OK,
        "rgtp_get_ticket with {need} bytes: {}",
        code_name(api, rc)
    );
    let s = unsafe { CStr::from_ptr(buf.as_ptr()) }
        .to_string_lossy()
        .into_owned();
    Ok(s)
}

/// A library puller's whole pull: chunks by index, and the end-of-stream checks.
fn lib_pull_all(
    api: &Api,
    surf: Surf,
    n_expected: Option<usize>,
) -> Result<Vec<(u32, Vec<u8>)>, Stop> {
    let mut chunks = Vec::new();
    let mut buf = vec![0u8; 65_536];
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        ensure!(Instant::now() < deadline, "pull did not finish in 60 s");
        let mut got = 0usize;
        let mut idx = 0u32;
        // SAFETY: buffer and out-pointers valid.
        let rc = unsafe {
            (need!(api.pull_next)?)(surf, buf.as_mut_ptr().cast(), buf.len(), &mut got, &mut idx)
        };
        ensure!(
            rc == OK,
            "rgtp_pull_next: {} after {} chunks",
            code_name(api, rc),
            chunks.len()
        );
        if got == 0 {
            ensure!(
                idx == CHUNK_INDEX_NONE,
                "end of stream with chunk index {idx}, expected RGTP_CHUNK_INDEX_NONE"
            );
            break;
        }
        chunks.push((idx, buf[..got].to_vec()));
        if let Some(n) = n_expected {
            ensure!(chunks.len() <= n, "more chunks than the exposure has");
        }
    }
    // End of stream is sticky.
    let mut got = 1usize;
    let mut idx = 0u32;
    let rc = unsafe {
        (need!(api.pull_next)?)(surf, buf.as_mut_ptr().cast(), buf.len(), &mut got, &mut idx)
    };
    ensure!(
        rc == OK && got == 0 && idx == CHUNK_INDEX_NONE,
        "second end-of-stream call: {} / {got} B / index {idx}",
        code_name(api, rc)
    );
    let p = unsafe { (need!(api.progress)?)(surf) };
    ensure!(
        p == 1.0,
        "rgtp_progress after the last chunk is {p}, not 1.0"
    );
    Ok(chunks)
}

fn assemble(mut chunks: Vec<(u32, Vec<u8>)>) -> Result<Vec<u8>, Stop> {
    chunks.sort_by_key(|c| c.0);
    for (i, c) in chunks.iter().enumerate() {
        ensure!(
            c.0 as usize == i,
            "chunk indices not 0..n exactly once (position {i} holds {})",
            c.0
        );
    }
    Ok(chunks.into_iter().flat_map(|c| c.1).collect())
}

fn pull_ticket_surface(
    api: &Api,
    ticket: &str,
    cfg: &Config,
) -> Result<(Sock, Result<Surf, c_int>), Stop> {
    let mut sock: Sock = null_mut();
    let c = std::ffi::CString::new(ticket).map_err(|e| Stop::Fail(e.to_string()))?;
    // SAFETY: valid pointers.
    unsafe {
        let rc = (need!(api.socket_create)?)(null(), &mut sock);
        ensure!(rc == OK, "rgtp_socket_create(NULL): {}", code_name(api, rc));
        let mut surf: Surf = null_mut();
        let rc = (need!(api.pull_start_ticket)?)(sock, c.as_ptr(), cfg, &mut surf);
        Ok((sock, if rc == OK { Ok(surf) } else { Err(rc) }))
    }
}

// ------------------------------------------------------------------ cases

fn abi001(ctx: &AbiCtx) -> CaseResult {
    let api = &ctx.api;
    let mut texts = Vec::new();
    for c in (-15..=0).chain([1, -16, -100, i32::MAX, i32::MIN]) {
        // SAFETY: any int is a valid argument.
        let p = unsafe { (need!(api.strerror)?)(c) };
        ensure!(!p.is_null(), "rgtp_strerror({c}) returned NULL");
        let s = unsafe { CStr::from_ptr(p) }.to_string_lossy().into_owned();
        ensure!(!s.is_empty(), "rgtp_strerror({c}) is empty");
        if (-15..=0).contains(&c) {
            texts.push(s);
        }
    }
    let mut d = texts.clone();
    d.sort();
    d.dedup();
    ensure!(d.len() == texts.len(), "defined codes share texts");
    Ok("16 defined codes distinct, unknown codes non-NULL".into())
}

fn abi002(ctx: &AbiCtx) -> CaseResult {
    let api = &ctx.api;
    // SAFETY: no arguments.
    unsafe {
        ensure!((need!(api.init)?)() == OK, "rgtp_init failed");
        ensure!((need!(api.init)?)() == OK, "second rgtp_init failed");
        let v = (need!(api.version)?)();
        ensure!(!v.is_null(), "rgtp_version returned NULL");
        let v = CStr::from_ptr(v).to_string_lossy().into_owned();
        let ok = v.split('.').count() == 3
            && v.split('.')
                .all(|p| !p.is_empty() && p.chars().all(|c| c.is_ascii_digit()));
        ensure!(ok, "rgtp_version {v:?} is not MAJOR.MINOR.PATCH");
        Ok(format!("init twice OK, version {v}"))
    }
}

fn abi003(ctx: &AbiCtx) -> CaseResult {
    let api = &ctx.api;
    let mut id = [0u8; 16];
    let mut key = [0u8; 32];
    let mut st = Stats::default();
    let mut buf = [0u8; 64];
    let mut n = 0usize;
    let mut idx = 0u32;
    let ss = sockaddr(SocketAddr::from(([127, 0, 0, 1], 9)));
    // The upstream entry points are required; redgiant's additions are checked when the
    // library has them.
    // SAFETY: NULL handles are exactly what is being tested; out-pointers are valid.
    let mut results = unsafe {
        vec![
            ("rgtp_poll", (need!(api.poll)?)(null_mut(), 0)),
            (
                "rgtp_get_exposure_id",
                (need!(api.get_exposure_id)?)(null_mut(), id.as_mut_ptr()),
            ),
            (
                "rgtp_get_stats",
                (need!(api.get_stats)?)(null_mut(), &mut st),
            ),
            (
                "rgtp_pull_next",
                (need!(api.pull_next)?)(null_mut(), buf.as_mut_ptr().cast(), 64, &mut n, &mut idx),
            ),
            (
                "rgtp_expose",
                (need!(api.expose)?)(null_mut(), buf.as_ptr().cast(), 4, null(), &mut null_mut()),
            ),
            (
                "rgtp_socket_create(out NULL)",
                (need!(api.socket_create)?)(null(), null_mut()),
            ),
            (
                "rgtp_pull_start",
                (need!(api.pull_start)?)(null_mut(), &ss, id.as_ptr(), null(), &mut null_mut()),
            ),
        ]
    };
    let mut absent = Vec::new();
    // SAFETY: as above.
    unsafe {
        match api.get_key {
            Some(f) => results.push(("rgtp_get_key", f(null_mut(), key.as_mut_ptr()))),
            None => absent.push("rgtp_get_key"),
        }
        match api.get_ticket {
            Some(f) => results.push((
                "rgtp_get_ticket",
                f(null_mut(), buf.as_mut_ptr().cast(), 64, &mut n),
            )),
            None => absent.push("rgtp_get_ticket"),
        }
        match api.pull_start_ticket {
            Some(f) => results.push((
                "rgtp_pull_start_ticket",
                f(null_mut(), c"rgtp://x".as_ptr(), null(), &mut null_mut()),
            )),
            None => absent.push("rgtp_pull_start_ticket"),
        }
        match api.pull_start_with_key {
            Some(f) => results.push((
                "rgtp_pull_start_with_key",
                f(
                    null_mut(),
                    &ss,
                    id.as_ptr(),
                    key.as_ptr(),
                    null(),
                    &mut null_mut(),
                ),
            )),
            None => absent.push("rgtp_pull_start_with_key"),
        }
    }
    for (name, rc) in &results {
        ensure!(
            *rc == INVALID_ARG,
            "{name}(NULL handle) returned {} instead of -2",
            code_name(api, *rc)
        );
    }
    // SAFETY: destroying NULL must be harmless.
    unsafe {
        (need!(api.destroy_surface)?)(null_mut());
        (need!(api.socket_destroy)?)(null_mut());
    }
    Ok(format!(
        "{} calls with NULL handles → RGTP_ERR_INVALID_ARG; destroy(NULL) harmless{}",
        results.len(),
        if absent.is_empty() {
            String::new()
        } else {
            format!(" (not implemented, not checked: {})", absent.join(", "))
        }
    ))
}

/// Calls to a custom allocator (ABI-004), counted.
#[derive(Default)]
struct AllocCount {
    allocs: AtomicUsize,
    frees: AtomicUsize,
}

unsafe extern "C" fn counting_alloc(size: usize, ctx: *mut c_void) -> *mut c_void {
    // SAFETY: ctx is the leaked AllocCount ABI-004 registered with the allocator.
    let c = unsafe { &*(ctx as *const AllocCount) };
    c.allocs.fetch_add(1, Ordering::Relaxed);
    // SAFETY: plain malloc.
    unsafe { libc::malloc(size.max(1)) }
}

unsafe extern "C" fn counting_free(p: *mut c_void, ctx: *mut c_void) {
    // SAFETY: as in counting_alloc; p came from counting_alloc (malloc) or is NULL.
    let c = unsafe { &*(ctx as *const AllocCount) };
    c.frees.fetch_add(1, Ordering::Relaxed);
    unsafe { libc::free(p) }
}

//= spec/rgtp-v1.md#14.4
//# `rgtp_set_allocator(NULL)` restores the default; any other allocator →
//# `RGTP_ERR_NOT_SUPPORTED`
fn abi004(ctx: &AbiCtx) -> CaseResult {
    // Our library refuses custom allocators and CCSDS; the upstream header has both, so
    // an implementation that supports them conforms too, provided they work.
    let api = &ctx.api;
    let set_allocator = need!(api.set_allocator)?;
    let mut notes = Vec::new();
    // SAFETY: a valid C string and NULL config; a handle returned is destroyed once.
    unsafe {
        let s = (need!(api.socket_create_ccsds)?)(c"/dev/null".as_ptr(), null());
        if s.is_null() {
            notes.push("ccsds → NULL (not supported)".to_string());
        } else {
            (need!(api.socket_destroy)?)(s);
            notes.push("ccsds → a handle (supported), destroyed".to_string());
        }
        ensure!(
            set_allocator(null()) == OK,
            "rgtp_set_allocator(NULL) failed"
        );
    }
    // Leaked: a library that accepts the allocator may keep calling it.
    let count: &'static AllocCount = Box::leak(Box::default());
    let alloc = Allocator {
        alloc: Some(counting_alloc),
        free: Some(counting_free),
        ctx: count as *const AllocCount as *mut c_void,
    };
    // SAFETY: the allocator's functions and context live for the rest of the process.
    let rc = unsafe { set_allocator(&alloc) };
    if rc == NOT_SUPPORTED {
        notes.push("allocator NULL ok, custom → NOT_SUPPORTED".into());
        return Ok(notes.join("; "));
    }
    ensure!(
        rc == OK,
        "rgtp_set_allocator(custom) returned {} (RGTP_OK or RGTP_ERR_NOT_SUPPORTED)",
        code_name(api, rc)
    );
    // Accepted: the library must work on it, and use it.
    let used = (|| -> Result<(), Stop> {
        let e = lib_expose(api, &data(20_000, 4), false)?;
        drop(e);
        Ok(())
    })();
    // SAFETY: NULL restores the default.
    let restored = unsafe { set_allocator(null()) };
    used?;
    ensure!(
        restored == OK,
        "rgtp_set_allocator(NULL) after a custom allocator: {}",
        code_name(api, restored)
    );
    let allocs = count.allocs.load(Ordering::Relaxed);
    ensure!(
        allocs > 0,
        "rgtp_set_allocator(custom) returned RGTP_OK, but creating a socket and exposing 20 kB never called it"
    );
    notes.push(format!(
        "custom allocator accepted and used ({allocs} allocations, {} frees while exposing 20 kB)",
        count.frees.load(Ordering::Relaxed)
    ));
    Ok(notes.join("; "))
}

//= spec/rgtp-v1.md#14.2
//# `raw_ethernet` → `RGTP_ERR_NOT_SUPPORTED` (not yet implemented).
fn abi005(ctx: &AbiCtx) -> CaseResult {
    // Our library has no raw Ethernet through the ABI; the upstream one has (spec §7.5),
    // so a socket that serves over raw Ethernet conforms too.
    let api = &ctx.api;
    let socket_destroy = need!(api.socket_destroy)?;
    let mut cfg = Config::zero();
    cfg.raw_ethernet = true;
    cfg.eth_iface[..2].copy_from_slice(b"lo");
    cfg.port = free_port();
    let mut sock: Sock = null_mut();
    // SAFETY: valid pointers.
    unsafe {
        let rc = (need!(api.socket_create)?)(&cfg, &mut sock);
        if rc == NOT_SUPPORTED {
            return Ok("raw_ethernet socket → NOT_SUPPORTED".into());
        }
        if rc == SOCKET {
            return skip(
                "raw_ethernet socket on lo → RGTP_ERR_SOCKET: supported, but this process \
                 may not open a raw socket (CAP_NET_RAW), so it cannot be checked",
            );
        }
        ensure!(
            rc == OK && !sock.is_null(),
            "raw_ethernet socket on lo: {} (RGTP_OK or RGTP_ERR_NOT_SUPPORTED)",
            code_name(api, rc)
        );
        let mut surf: Surf = null_mut();
        let data = [1u8; 100];
        let rc = (need!(api.expose)?)(sock, data.as_ptr().cast(), data.len(), &cfg, &mut surf);
        if rc != OK {
            socket_destroy(sock);
            if rc == NOT_SUPPORTED {
                return Ok("rgtp_expose with raw_ethernet → NOT_SUPPORTED".into());
            }
            if rc == SOCKET {
                return skip(
                    "rgtp_expose with raw_ethernet on lo → RGTP_ERR_SOCKET: supported, but \
                     this process may not open a raw socket (CAP_NET_RAW)",
                );
            }
            return fail(format!(
                "rgtp_expose with raw_ethernet on lo: {} (RGTP_OK or RGTP_ERR_NOT_SUPPORTED)",
                code_name(api, rc)
            ));
        }
        let mut id = [0u8; 16];
        let id_rc = match api.get_exposure_id {
            Some(f) => f(surf, id.as_mut_ptr()),
            None => OK,
        };
        let poll_rc = match api.poll {
            Some(f) => f(surf, 20),
            None => OK,
        };
        if let Some(f) = api.destroy_surface {
            f(surf);
        }
        socket_destroy(sock);
        ensure!(
            id_rc == OK,
            "raw-Ethernet exposure: rgtp_get_exposure_id {}",
            code_name(api, id_rc)
        );
        ensure!(
            poll_rc == OK || poll_rc == TIMEOUT,
            "raw-Ethernet exposure: rgtp_poll {}",
            code_name(api, poll_rc)
        );
    }
    Ok("raw_ethernet supported: exposes on lo, polls".into())
}

fn abi010(ctx: &AbiCtx) -> CaseResult {
    let api = &ctx.api;
    let d = data(30_000, 10);
    let e = lib_expose(api, &d, false)?;
    let t = ticket_of(api, e.surf)?;
    let ticket: Ticket = t
        .parse()
        .map_err(|err| Stop::Fail(format!("rgtp_get_ticket gave {t:?}: {err}")))?;
    let mut id = [0u8; 16];
    let mut key = [0u8; 32];
    // SAFETY: valid out-pointers.
    unsafe {
        ensure!(
            (need!(api.get_exposure_id)?)(e.surf, id.as_mut_ptr()) == OK,
            "rgtp_get_exposure_id failed"
        );
        ensure!(
            (need!(api.get_key)?)(e.surf, key.as_mut_ptr()) == OK,
            "rgtp_get_key failed"
        );
    }
    ensure!(id != [0; 16], "Exposure_ID is all zero");
    ensure!(
        ticket.exposure_id == id,
        "ticket's Exposure_ID differs from rgtp_get_exposure_id"
    );
    ensure!(
        ticket.key.as_bytes() == &key,
        "ticket's key differs from rgtp_get_key"
    );
    // SAFETY: valid surface; poll with a short timeout and nothing arriving.
    let rc = unsafe { (need!(api.poll)?)(e.surf, 50) };
    ensure!(
        rc == OK || rc == TIMEOUT,
        "rgtp_poll with nothing arriving: {}",
        code_name(api, rc)
    );
    Ok(format!(
        "ticket {}… names the id and key",
        &t[..t.len().min(40)]
    ))
}

fn abi011(ctx: &AbiCtx) -> CaseResult {
    let api = &ctx.api;
    let d = data(200_003, 11);
    let e = lib_expose(api, &d, true)?;
    let ticket: Ticket = ticket_of(api, e.surf)?
        .parse()
        .map_err(|err| Stop::Fail(format!("ticket: {err}")))?;
    let got = crate::reference::pull(&ticket, Duration::from_secs(5), Duration::from_secs(10))
        .map_err(|err| {
            Stop::Fail(format!(
                "our puller failed against the library exposer: {err}"
            ))
        })?;
    ensure!(
        got == d,
        "our puller got {} B that differ from the {} B exposed",
        got.len(),
        d.len()
    );
    let mut st = Stats::default();
    // SAFETY: valid surface and out-pointer.
    let rc = unsafe { (need!(api.get_stats)?)(e.surf, &mut st) };
    ensure!(
        rc == OK,
        "rgtp_get_stats on the exposer: {}",
        code_name(api, rc)
    );
    Ok(format!(
        "{} B byte-exact; exposer stats: {} chunks sent",
        d.len(),
        st.chunks_sent
    ))
}

fn abi012(ctx: &AbiCtx) -> CaseResult {
    let api = &ctx.api;
    let d = data(150_001, 12);
    let (srv, prep) = honest_exposer(&d, ExposerBuilder::new()).map_err(Stop::Fail)?;
    let ticket = prep.ticket(srv.addr).to_string();
    let (sock, surf) = pull_ticket_surface(api, &ticket, &Config::zero())?;
    let surf = match surf {
        Ok(s) => s,
        Err(rc) => {
            unsafe { (need!(api.socket_destroy)?)(sock) };
            return fail(format!("rgtp_pull_start_ticket: {}", code_name(api, rc)));
        }
    };
    let r = lib_pull_all(api, surf, Some(prep.exposure.chunk_count() as usize)).and_then(assemble);
    // SAFETY: handles created above.
    unsafe {
        (need!(api.destroy_surface)?)(surf);
        (need!(api.socket_destroy)?)(sock);
    }
    let got = r?;
    ensure!(
        got == d,
        "library puller got {} B that differ from the {} B exposed",
        got.len(),
        d.len()
    );
    Ok(format!(
        "{} B byte-exact; end of stream sticky; progress 1.0",
        d.len()
    ))
}

fn sockaddr(addr: SocketAddr) -> libc::sockaddr_storage {
    // SAFETY: all-zero is a valid sockaddr_storage.
    let mut ss: libc::sockaddr_storage = unsafe { std::mem::zeroed() };
    match addr {
        SocketAddr::V4(a) => {
            let sin = libc::sockaddr_in {
                sin_family: libc::AF_INET as libc::sa_family_t,
                sin_port: a.port().to_be(),
                sin_addr: libc::in_addr {
                    s_addr: u32::from_ne_bytes(a.ip().octets()),
                },
                sin_zero: [0; 8],
            };
            // SAFETY: sockaddr_in fits in sockaddr_storage.
            unsafe { std::ptr::write((&mut ss as *mut libc::sockaddr_storage).cast(), sin) };
        }
        SocketAddr::V6(a) => {
            let sin6 = libc::sockaddr_in6 {
                sin6_family: libc::AF_INET6 as libc::sa_family_t,
                sin6_port: a.port().to_be(),
                sin6_flowinfo: 0,
                sin6_addr: libc::in6_addr {
                    s6_addr: a.ip().octets(),
                },
                sin6_scope_id: 0,
            };
            // SAFETY: sockaddr_in6 fits in sockaddr_storage.
            unsafe { std::ptr::write((&mut ss as *mut libc::sockaddr_storage).cast(), sin6) };
        }
    }
    ss
}

fn abi013(ctx: &AbiCtx) -> CaseResult {
    let api = &ctx.api;
    let d = data(40_000, 13);
    let (srv, prep) = honest_exposer(&d, ExposerBuilder::upstream()).map_err(Stop::Fail)?;
    let ss = sockaddr(srv.addr);
    let mut sock: Sock = null_mut();
    let mut surf: Surf = null_mut();
    // SAFETY: valid pointers; id and key arrays of 16 and 32 bytes.
    let rc = unsafe {
        (need!(api.socket_create)?)(null(), &mut sock);
        (need!(api.pull_start_with_key)?)(
            sock,
            &ss,
            prep.exposure.id().as_ptr(),
            prep.key.as_bytes().as_ptr(),
            null(),
            &mut surf,
        )
    };
    if rc != OK {
        unsafe { (need!(api.socket_destroy)?)(sock) };
        return fail(format!("rgtp_pull_start_with_key: {}", code_name(api, rc)));
    }
    // Too small a buffer: INVALID_ARG, size needed, the chunk stays queued.
    let mut small = [0u8; 4];
    let mut need = 0usize;
    let mut idx = 0u32;
    let rc_small = unsafe {
        (need!(api.pull_next)?)(
            surf,
            small.as_mut_ptr().cast(),
            small.len(),
            &mut need,
            &mut idx,
        )
    };
    let r = lib_pull_all(api, surf, None).and_then(assemble);
    unsafe {
        (need!(api.destroy_surface)?)(surf);
        (need!(api.socket_destroy)?)(sock);
    }
    ensure!(
        rc_small == INVALID_ARG,
        "rgtp_pull_next with a 4-byte buffer: {} (expected -2)",
        code_name(api, rc_small)
    );
    ensure!(
        need > 4,
        "rgtp_pull_next with a 4-byte buffer reported {need} B needed"
    );
    let got = r?;
    ensure!(
        got == d,
        "got {} B that differ from the {} B exposed (a chunk lost after the short buffer?)",
        got.len(),
        d.len()
    );
    Ok(format!("sockaddr + key pull of {} B byte-exact; short buffer → -2 with {need} B needed, chunk kept", d.len()))
}

fn abi014(ctx: &AbiCtx) -> CaseResult {
    let api = &ctx.api;
    let d = data(5_000, 14);
    let (srv, prep) = honest_exposer(&d, ExposerBuilder::new()).map_err(Stop::Fail)?;
    let mut t = prep.ticket(srv.addr);
    t.exposure_id[0] ^= 0xff;
    let mut cfg = Config::zero();
    cfg.timeout_ms = 1000;
    let started = Instant::now();
    // The ticket when the library takes one, else the upstream call (its key, if it
    // needs one, comes from the library's own configuration).
    let (call, (sock, surf)) = if api.pull_start_ticket.is_some() {
        (
            "rgtp_pull_start_ticket",
            pull_ticket_surface(api, &t.to_string(), &cfg)?,
        )
    } else {
        let start = need!(api.pull_start)?;
        let ss = sockaddr(srv.addr);
        let mut sock: Sock = null_mut();
        let mut surf: Surf = null_mut();
        // SAFETY: valid pointers; a 16-byte id.
        let rc = unsafe {
            let rc = (need!(api.socket_create)?)(null(), &mut sock);
            ensure!(rc == OK, "rgtp_socket_create(NULL): {}", code_name(api, rc));
            start(sock, &ss, t.exposure_id.as_ptr(), &cfg, &mut surf)
        };
        (
            "rgtp_pull_start",
            (sock, if rc == OK { Ok(surf) } else { Err(rc) }),
        )
    };
    let took = started.elapsed();
    unsafe {
        if let Ok(s) = surf {
            (need!(api.destroy_surface)?)(s);
        }
        (need!(api.socket_destroy)?)(sock);
    }
    match surf {
        Ok(_) => fail(format!("{call} succeeded for an Exposure_ID nobody serves")),
        Err(rc) => {
            ensure!(
                rc == TIMEOUT,
                "{call} for a wrong Exposure_ID gave {} (expected -12)",
                code_name(api, rc)
            );
            ensure!(
                took >= Duration::from_millis(900) && took < Duration::from_secs(5),
                "timed out after {:.2}s with timeout_ms = 1000",
                took.as_secs_f64()
            );
            Ok(format!(
                "RGTP_ERR_TIMEOUT after {:.2}s (timeout_ms 1000)",
                took.as_secs_f64()
            ))
        }
    }
}

fn abi015(ctx: &AbiCtx) -> CaseResult {
    let api = &ctx.api;
    let d = data(60_000, 15);
    let (srv, prep) = forging_exposer(&d).map_err(Stop::Fail)?;
    let ticket = prep.ticket(srv.addr).to_string();
    let (sock, surf) = pull_ticket_surface(api, &ticket, &Config::zero())?;
    let surf = match surf {
        Ok(s) => s,
        Err(rc) => {
            unsafe { (need!(api.socket_destroy)?)(sock) };
            return fail(format!("rgtp_pull_start_ticket: {}", code_name(api, rc)));
        }
    };
    let mut buf = vec![0u8; 65_536];
    let mut codes = Vec::new();
    let started = Instant::now();
    let mut delivered = 0;
    while codes.len() < 2 && started.elapsed() < Duration::from_secs(30) {
        let mut got = 0usize;
        let mut idx = 0u32;
        let rc = unsafe {
            (need!(api.pull_next)?)(surf, buf.as_mut_ptr().cast(), buf.len(), &mut got, &mut idx)
        };
        if rc == OK {
            if got == 0 {
                break;
            }
            delivered += 1;
        } else {
            codes.push(rc);
        }
    }
    unsafe {
        (need!(api.destroy_surface)?)(surf);
        (need!(api.socket_destroy)?)(sock);
    }
    ensure!(delivered == 0, "{delivered} forged chunks were handed out");
    ensure!(codes.len() == 2, "no error within 30 s");
    ensure!(
        codes[0] == AUTH_FAIL,
        "forged tags gave {} (expected -7)",
        code_name(api, codes[0])
    );
    ensure!(
        codes[1] == codes[0],
        "the failure did not stick: then {}",
        code_name(api, codes[1])
    );
    Ok(format!(
        "RGTP_ERR_AUTH_FAIL after {:.2}s, sticky",
        started.elapsed().as_secs_f64()
    ))
}

fn abi016(ctx: &AbiCtx) -> CaseResult {
    // The black-box exposer catalogue against the library's exposer.
    let api = &ctx.api;
    let d = data(50_000, 16);
    let e = lib_expose(api, &d, true)?;
    let ticket: Ticket = ticket_of(api, e.surf)?
        .parse()
        .map_err(|err| Stop::Fail(format!("ticket: {err}")))?;
    let addr = ticket
        .socket_addr()
        .map_err(|err| Stop::Fail(err.to_string()))?;
    let ectx = super::exposer::ExposerCtx::connect(addr, ticket, Duration::from_millis(150))
        .map_err(Stop::Fail)?;
    let sel = super::Selection::default();
    let out = super::run_cases(super::Target::Exposer, super::exposer::CASES, &ectx, &sel);
    let failed: Vec<&str> = out
        .iter()
        .filter(|o| o.verdict == super::Verdict::Fail && o.info.level == Level::Must)
        .map(|o| o.info.id)
        .collect();
    if !failed.is_empty() {
        return fail(format!(
            "library exposer fails MUST cases {}",
            failed.join(", ")
        ));
    }
    let passed = out
        .iter()
        .filter(|o| o.verdict == super::Verdict::Pass)
        .count();
    if passed == 0 {
        return skip("no exposer case ran");
    }
    Ok(format!(
        "library exposer passes {passed} exposer cases (no MUST failure)"
    ))
}

/// The ABI catalogue.
pub static CASES: &[Case<AbiCtx>] = &[
    Case {
        id: "ABI-001",
        title: "rgtp_strerror never NULL; codes distinct",
        section: "§14.1",
        level: Level::Must,
        run: abi001,
    },
    Case {
        id: "ABI-002",
        title: "rgtp_init idempotent, rgtp_version x.y.z",
        section: "§14.1",
        level: Level::Must,
        run: abi002,
    },
    Case {
        id: "ABI-003",
        title: "NULL handles → RGTP_ERR_INVALID_ARG",
        section: "§14.4",
        level: Level::Must,
        run: abi003,
    },
    Case {
        id: "ABI-004",
        title: "ccsds, custom allocator: NOT_SUPPORTED or working",
        section: "§14.4",
        level: Level::Must,
        run: abi004,
    },
    Case {
        id: "ABI-005",
        title: "raw_ethernet: NOT_SUPPORTED or working",
        section: "§14.2",
        level: Level::Must,
        run: abi005,
    },
    Case {
        id: "ABI-010",
        title: "expose: id, key, ticket (short buffer → size)",
        section: "§14.1",
        level: Level::Must,
        run: abi010,
    },
    Case {
        id: "ABI-011",
        title: "our puller pulls from the library exposer",
        section: "§14.3",
        level: Level::Must,
        run: abi011,
    },
    Case {
        id: "ABI-012",
        title: "library puller (ticket) pulls from our exposer",
        section: "§14.3",
        level: Level::Must,
        run: abi012,
    },
    Case {
        id: "ABI-013",
        title: "pull_start_with_key; short buffer keeps chunk",
        section: "§14.3",
        level: Level::Must,
        run: abi013,
    },
    Case {
        id: "ABI-014",
        title: "wrong Exposure_ID → TIMEOUT after timeout_ms",
        section: "§14.3",
        level: Level::Must,
        run: abi014,
    },
    Case {
        id: "ABI-015",
        title: "forged tags → AUTH_FAIL, sticky, nothing out",
        section: "§14.3",
        level: Level::Must,
        run: abi015,
    },
    Case {
        id: "ABI-016",
        title: "library exposer passes the EXP catalogue",
        section: "§3, §5",
        level: Level::Must,
        run: abi016,
    },
];
