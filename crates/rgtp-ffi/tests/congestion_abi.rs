//! `rgtp_socket_set_congestion` from librgtp.so, loaded with dlopen and called as C
//! would: the names it takes and refuses, and the controller the pulls started
//! afterwards run (reported in the puller's "surface created" log event).

mod dl;

use std::ffi::{c_char, c_int, c_void, CStr, CString};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, OnceLock};
use std::time::Duration;

#[path = "../src/abi.rs"]
mod abi;

use abi::{rgtp_log_event_t, rgtp_socket_t, rgtp_surface_t, RGTP_ERR_INVALID_ARG, RGTP_OK};

type Sock = *mut rgtp_socket_t;
type Surf = *mut rgtp_surface_t;
type LogFn = unsafe extern "C" fn(*const rgtp_log_event_t, *mut c_void);

struct Lib {
    socket_create: unsafe extern "C" fn(*const c_void, *mut Sock) -> c_int,
    socket_destroy: unsafe extern "C" fn(Sock),
    set_congestion: unsafe extern "C" fn(Sock, *const c_char) -> c_int,
    expose: unsafe extern "C" fn(Sock, *const c_void, usize, *const c_void, *mut Surf) -> c_int,
    get_ticket: unsafe extern "C" fn(Surf, *mut c_char, usize, *mut usize) -> c_int,
    pull_start_ticket: unsafe extern "C" fn(Sock, *const c_char, *const c_void, *mut Surf) -> c_int,
    pull_next: unsafe extern "C" fn(Surf, *mut c_void, usize, *mut usize, *mut u32) -> c_int,
    poll: unsafe extern "C" fn(Surf, c_int) -> c_int,
    destroy_surface: unsafe extern "C" fn(Surf),
    set_log_callback: unsafe extern "C" fn(Option<LogFn>, *mut c_void) -> c_int,
}

fn lib() -> &'static Lib {
    static LIB: OnceLock<Lib> = OnceLock::new();
    LIB.get_or_init(|| {
        // SAFETY: each symbol has the signature rgtp.h declares for it (configs are
        // passed as NULL only, so their pointer type does not matter).
        unsafe {
            Lib {
                socket_create: dl::sym("rgtp_socket_create"),
                socket_destroy: dl::sym("rgtp_socket_destroy"),
                set_congestion: dl::sym("rgtp_socket_set_congestion"),
                expose: dl::sym("rgtp_expose"),
                get_ticket: dl::sym("rgtp_get_ticket"),
                pull_start_ticket: dl::sym("rgtp_pull_start_ticket"),
                pull_next: dl::sym("rgtp_pull_next"),
                poll: dl::sym("rgtp_poll"),
                destroy_surface: dl::sym("rgtp_destroy_surface"),
                set_log_callback: dl::sym("rgtp_set_log_callback"),
            }
        }
    })
}

fn socket() -> Sock {
    let mut s: Sock = std::ptr::null_mut();
    // SAFETY: NULL config, valid out-pointer.
    assert_eq!(
        unsafe { (lib().socket_create)(std::ptr::null(), &mut s) },
        RGTP_OK
    );
    s
}

fn set(sock: Sock, name: Option<&str>) -> c_int {
    let c = name.map(|n| CString::new(n).unwrap());
    let p = c.as_ref().map_or(std::ptr::null(), |c| c.as_ptr());
    // SAFETY: a live (or NULL) socket and a NUL-terminated (or NULL) name.
    unsafe { (lib().set_congestion)(sock, p) }
}

#[test]
fn names_are_checked() {
    let s = socket();
    for name in ["delay", "reno", "cubic"] {
        assert_eq!(set(s, Some(name)), RGTP_OK, "{name}");
    }
    for name in ["bbr", "", "Cubic", "cubic "] {
        assert_eq!(set(s, Some(name)), RGTP_ERR_INVALID_ARG, "{name:?}");
    }
    assert_eq!(set(s, None), RGTP_ERR_INVALID_ARG);
    assert_eq!(
        set(std::ptr::null_mut(), Some("reno")),
        RGTP_ERR_INVALID_ARG
    );
    // Not a socket: a pointer without the socket's magic.
    let mut fake = [0u64; 8];
    assert_eq!(
        set(fake.as_mut_ptr().cast(), Some("reno")),
        RGTP_ERR_INVALID_ARG
    );
    // SAFETY: a live socket, destroyed once.
    unsafe { (lib().socket_destroy)(s) };
}

/// The `cc` field of every puller "surface created" event.
static SEEN: Mutex<Vec<String>> = Mutex::new(Vec::new());

unsafe extern "C" fn on_log(ev: *const rgtp_log_event_t, _ctx: *mut c_void) {
    // SAFETY: the library passes a valid event for the duration of the call.
    let ev = unsafe { &*ev };
    let s = |p: *const c_char| {
        if p.is_null() {
            String::new()
        } else {
            // SAFETY: non-NULL strings of an event are NUL-terminated.
            unsafe { CStr::from_ptr(p) }.to_string_lossy().into_owned()
        }
    };
    if s(ev.message) != "surface created" {
        return;
    }
    let kvs: Vec<(String, String)> = ev.kv[..ev.kv_count.clamp(0, 8) as usize]
        .iter()
        .map(|kv| (s(kv.key), s(kv.value)))
        .collect();
    if kvs.iter().any(|(k, v)| k == "kind" && v == "puller") {
        if let Some((_, cc)) = kvs.iter().find(|(k, _)| k == "cc") {
            SEEN.lock().unwrap().push(cc.clone());
        }
    }
}

/// An exposer surface served by a thread until the flag drops.
struct Server {
    surf: Surf,
    stop: Arc<AtomicBool>,
    thread: Option<std::thread::JoinHandle<()>>,
}

struct SendPtr(Surf);
// SAFETY: the header allows a surface to be driven from any thread.
unsafe impl Send for SendPtr {}

impl Server {
    fn start(sock: Sock, data: &[u8]) -> Server {
        let mut surf: Surf = std::ptr::null_mut();
        // SAFETY: a live socket, `data.len()` readable bytes, NULL config, out-pointer.
        let rc = unsafe {
            (lib().expose)(
                sock,
                data.as_ptr().cast(),
                data.len(),
                std::ptr::null(),
                &mut surf,
            )
        };
        assert_eq!(rc, RGTP_OK, "rgtp_expose");
        let stop = Arc::new(AtomicBool::new(false));
        let (p, flag) = (SendPtr(surf), stop.clone());
        let thread = std::thread::spawn(move || {
            let p = p;
            while !flag.load(Ordering::Relaxed) {
                // SAFETY: the surface outlives this thread (joined before destroy).
                unsafe { (lib().poll)(p.0, 20) };
            }
        });
        Server {
            surf,
            stop,
            thread: Some(thread),
        }
    }

    fn ticket(&self) -> CString {
        let mut buf = vec![0 as c_char; 1024];
        let mut need = 0usize;
        // SAFETY: a live surface, a buffer of the given length, an out-pointer.
        let rc = unsafe { (lib().get_ticket)(self.surf, buf.as_mut_ptr(), buf.len(), &mut need) };
        assert_eq!(rc, RGTP_OK);
        // SAFETY: the library wrote a NUL-terminated string.
        unsafe { CStr::from_ptr(buf.as_ptr()) }.to_owned()
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
        if let Some(t) = self.thread.take() {
            t.join().unwrap();
        }
        // SAFETY: the live exposer surface, no longer driven, destroyed once.
        unsafe { (lib().destroy_surface)(self.surf) };
    }
}

/// Pulls the whole exposure through `sock`; returns the bytes in index order.
fn pull(sock: Sock, ticket: &CStr, size: usize) -> Vec<u8> {
    let mut surf: Surf = std::ptr::null_mut();
    // SAFETY: a live socket, a NUL-terminated ticket, NULL config, out-pointer.
    let rc =
        unsafe { (lib().pull_start_ticket)(sock, ticket.as_ptr(), std::ptr::null(), &mut surf) };
    assert_eq!(rc, RGTP_OK, "rgtp_pull_start_ticket");
    let mut out = vec![0u8; size];
    let mut buf = vec![0u8; 65536];
    let mut chunk_size = 0usize;
    let mut chunks = Vec::new();
    loop {
        let (mut got, mut index) = (0usize, 0u32);
        // SAFETY: a live puller surface, a buffer of its length, two out-pointers.
        let rc = unsafe {
            (lib().pull_next)(
                surf,
                buf.as_mut_ptr().cast(),
                buf.len(),
                &mut got,
                &mut index,
            )
        };
        assert_eq!(rc, RGTP_OK, "rgtp_pull_next");
        if got == 0 {
            break;
        }
        chunk_size = chunk_size.max(got);
        chunks.push((index, buf[..got].to_vec()));
    }
    for (index, bytes) in chunks {
        let at = index as usize * chunk_size;
        out[at..at + bytes.len()].copy_from_slice(&bytes);
    }
    // SAFETY: the live puller surface, destroyed once.
    unsafe { (lib().destroy_surface)(surf) };
    out
}

#[test]
fn pulls_started_afterwards_run_the_chosen_controller() {
    // Exposers bind any free port (the variable is read by each rgtp_expose).
    std::env::set_var("RGTP_PORT", "0");
    std::env::remove_var("RGTP_KEY");
    // SAFETY: a callback that is safe to call from any thread, no context.
    assert_eq!(
        unsafe { (lib().set_log_callback)(Some(on_log), std::ptr::null_mut()) },
        RGTP_OK
    );
    let data: Vec<u8> = (0..300_000u32).map(|i| (i * 31 % 251) as u8).collect();
    let server_sock = socket();
    let server = Server::start(server_sock, &data);
    let ticket = server.ticket();

    let sock = socket();
    assert_eq!(pull(sock, &ticket, data.len()), data, "default controller");
    assert_eq!(set(sock, Some("cubic")), RGTP_OK);
    assert_eq!(pull(sock, &ticket, data.len()), data, "cubic");
    assert_eq!(set(sock, Some("reno")), RGTP_OK);
    // A refused name leaves the choice as it was.
    assert_eq!(set(sock, Some("vegas")), RGTP_ERR_INVALID_ARG);
    assert_eq!(pull(sock, &ticket, data.len()), data, "reno");
    // Another socket keeps the default.
    let other = socket();
    assert_eq!(pull(other, &ticket, data.len()), data, "other socket");

    // SAFETY: clearing the callback; live sockets destroyed once.
    unsafe {
        (lib().set_log_callback)(None, std::ptr::null_mut());
        (lib().socket_destroy)(sock);
        (lib().socket_destroy)(other);
    }
    drop(server);
    // SAFETY: the live server socket, destroyed once.
    unsafe { (lib().socket_destroy)(server_sock) };
    std::thread::sleep(Duration::from_millis(10));
    let seen = SEEN.lock().unwrap().clone();
    assert_eq!(seen, ["delay", "cubic", "reno", "delay"]);
}
