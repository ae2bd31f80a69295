//! The `rgtp_flow_*` calls of librgtp.so, loaded with dlopen and called as C would:
//! allocation by name and echo, the flags (access mode, non-blocking, partial reads
//! and writes), timeouts, deallocation from another thread, flow sets with their
//! event queue, broadcast groups, and the error codes the header documents.
//!
//! Names go to the default file directory, each made unique by the process id.

mod dl;

use std::ffi::{c_char, c_int, c_void, CStr, CString};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::OnceLock;
use std::time::Duration;

const RGTP_OK: c_int = 0;
const RGTP_ERR_INVALID_ARG: c_int = -2;
const RGTP_ERR_TIMEOUT: c_int = -12;
const RGTP_ERR_NOT_SUPPORTED: c_int = -14;
const WOULD_BLOCK: c_int = -100;
const DEALLOCATED: c_int = -101;
const PEER_GONE: c_int = -102;
const UNKNOWN_NAME: c_int = -103;
const TOO_LARGE: c_int = -105;
const PERMISSION: c_int = -106;

const F_RDONLY: u32 = 0o0;
const F_RDWR: u32 = 0o2;
const F_DOWN: u32 = 0o4;
const F_RNOBLOCK: u32 = 0o1000;
const F_RNOPART: u32 = 0o10000;
const F_WNOPART: u32 = 0o200000;

const EV_PKT: c_int = 1;
const EV_ALLOC: c_int = 8;
const EV_DEALLOC: c_int = 16;

const T: i32 = 10_000;
const MAX_SDU: usize = 1 << 20;

#[repr(C)]
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
struct Qos {
    size: usize,
    delay: u32,
    bandwidth: u64,
    availability: u8,
    loss: u32,
    ber: u32,
    in_order: u8,
    max_gap: u32,
    cypher_s: u16,
    timeout: u32,
}

#[repr(C)]
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
struct Event {
    flow: u64,
    kind: c_int,
}

type N = *mut c_void;
type F = *mut c_void;
type S = *mut c_void;

struct Lib {
    last_error: unsafe extern "C" fn() -> *const c_char,
    preset: unsafe extern "C" fn(*const c_char, *mut Qos) -> c_int,
    node_open: unsafe extern "C" fn(*const c_char, *mut N) -> c_int,
    node_close: unsafe extern "C" fn(N),
    node_addr: unsafe extern "C" fn(N, *mut c_char, usize) -> usize,
    register: unsafe extern "C" fn(N, *const c_char) -> c_int,
    alloc: unsafe extern "C" fn(N, *const c_char, *const Qos, i32, *mut F) -> c_int,
    accept: unsafe extern "C" fn(N, i32, *mut Qos, *mut F) -> c_int,
    join: unsafe extern "C" fn(N, *const c_char, *const Qos, i32, *mut F) -> c_int,
    write: unsafe extern "C" fn(F, *const u8, usize, i32, *mut usize) -> c_int,
    read: unsafe extern "C" fn(F, *mut u8, usize, *mut usize, i32) -> c_int,
    set_flags: unsafe extern "C" fn(F, u32) -> c_int,
    flags: unsafe extern "C" fn(F, *mut u32) -> c_int,
    id: unsafe extern "C" fn(F, *mut u64) -> c_int,
    qos: unsafe extern "C" fn(F, *mut Qos) -> c_int,
    queue_lens: unsafe extern "C" fn(F, *mut usize, *mut usize) -> c_int,
    layers: unsafe extern "C" fn(F, *mut c_char, usize) -> usize,
    dealloc: unsafe extern "C" fn(F) -> c_int,
    free: unsafe extern "C" fn(F),
    set_create: unsafe extern "C" fn(N, *mut S) -> c_int,
    set_destroy: unsafe extern "C" fn(S),
    set_add: unsafe extern "C" fn(S, F) -> c_int,
    set_watch_allocs: unsafe extern "C" fn(S, bool) -> c_int,
    set_wait: unsafe extern "C" fn(S, *mut Event, usize, *mut usize, i32) -> c_int,
}

fn lib() -> &'static Lib {
    static LIB: OnceLock<Lib> = OnceLock::new();
    LIB.get_or_init(|| {
        // SAFETY: each symbol has the signature rgtp.h declares for it.
        unsafe {
            Lib {
                last_error: dl::sym("rgtp_flow_last_error"),
                preset: dl::sym("rgtp_flow_qos_preset"),
                node_open: dl::sym("rgtp_flow_node_open"),
                node_close: dl::sym("rgtp_flow_node_close"),
                node_addr: dl::sym("rgtp_flow_node_addr"),
                register: dl::sym("rgtp_flow_register"),
                alloc: dl::sym("rgtp_flow_alloc"),
                accept: dl::sym("rgtp_flow_accept"),
                join: dl::sym("rgtp_flow_join"),
                write: dl::sym("rgtp_flow_write"),
                read: dl::sym("rgtp_flow_read"),
                set_flags: dl::sym("rgtp_flow_set_flags"),
                flags: dl::sym("rgtp_flow_flags"),
                id: dl::sym("rgtp_flow_id"),
                qos: dl::sym("rgtp_flow_qos"),
                queue_lens: dl::sym("rgtp_flow_queue_lens"),
                layers: dl::sym("rgtp_flow_layers"),
                dealloc: dl::sym("rgtp_flow_dealloc"),
                free: dl::sym("rgtp_flow_free"),
                set_create: dl::sym("rgtp_flow_set_create"),
                set_destroy: dl::sym("rgtp_flow_set_destroy"),
                set_add: dl::sym("rgtp_flow_set_add"),
                set_watch_allocs: dl::sym("rgtp_flow_set_watch_allocs"),
                set_wait: dl::sym("rgtp_flow_set_wait"),
            }
        }
    })
}

fn last_error() -> String {
    // SAFETY: the library returns a NUL-terminated string valid until the next call.
    unsafe { CStr::from_ptr((lib().last_error)()) }
        .to_string_lossy()
        .into_owned()
}

/// A name no other test (or run) uses.
fn unique(what: &str) -> String {
    static NEXT: AtomicUsize = AtomicUsize::new(0);
    format!(
        "abi-{what}-{}-{}",
        std::process::id(),
        NEXT.fetch_add(1, Ordering::Relaxed)
    )
}

fn preset(name: &str) -> Qos {
    let mut q = Qos::default();
    let c = CString::new(name).unwrap();
    // SAFETY: valid string and out-pointer.
    assert_eq!(unsafe { (lib().preset)(c.as_ptr(), &mut q) }, RGTP_OK);
    q
}

/// A node, closed on drop.
struct Node(N);

// SAFETY: the header allows every call from any thread.
unsafe impl Send for Node {}
// SAFETY: as above.
unsafe impl Sync for Node {}

impl Drop for Node {
    fn drop(&mut self) {
        // SAFETY: a live node, closed once.
        unsafe { (lib().node_close)(self.0) }
    }
}

/// A flow handle, freed on drop.
struct Fl(F);

// SAFETY: the header allows every call from any thread.
unsafe impl Send for Fl {}
// SAFETY: as above.
unsafe impl Sync for Fl {}

impl Drop for Fl {
    fn drop(&mut self) {
        // SAFETY: a live flow, freed once, no other user left.
        unsafe { (lib().free)(self.0) }
    }
}

impl Node {
    fn open() -> Node {
        let bind = CString::new("127.0.0.1:0").unwrap();
        let mut n: N = std::ptr::null_mut();
        // SAFETY: valid string and out-pointer.
        assert_eq!(unsafe { (lib().node_open)(bind.as_ptr(), &mut n) }, RGTP_OK);
        Node(n)
    }

    fn register(&self, name: &str) {
        let c = CString::new(name).unwrap();
        // SAFETY: live node, valid string.
        assert_eq!(unsafe { (lib().register)(self.0, c.as_ptr()) }, RGTP_OK);
    }

    fn alloc(&self, name: &str, qos: Option<&Qos>) -> Result<Fl, c_int> {
        let c = CString::new(name).unwrap();
        let mut f: F = std::ptr::null_mut();
        let q = qos.map_or(std::ptr::null(), |q| q as *const Qos);
        // SAFETY: live node, valid string, QoS and out-pointer.
        match unsafe { (lib().alloc)(self.0, c.as_ptr(), q, T, &mut f) } {
            RGTP_OK => Ok(Fl(f)),
            e => Err(e),
        }
    }

    fn accept(&self) -> (Fl, Qos) {
        let mut f: F = std::ptr::null_mut();
        let mut q = Qos::default();
        // SAFETY: live node, valid out-pointers.
        assert_eq!(
            unsafe { (lib().accept)(self.0, T, &mut q, &mut f) },
            RGTP_OK
        );
        (Fl(f), q)
    }

    fn join(&self, name: &str) -> Fl {
        let c = CString::new(name).unwrap();
        let mut f: F = std::ptr::null_mut();
        let q = preset("data");
        // SAFETY: live node, valid string, QoS and out-pointer.
        assert_eq!(
            unsafe { (lib().join)(self.0, c.as_ptr(), &q, T, &mut f) },
            RGTP_OK,
            "{}",
            last_error()
        );
        Fl(f)
    }
}

impl Fl {
    fn write(&self, data: &[u8]) -> Result<usize, c_int> {
        let mut n = 0usize;
        // SAFETY: live flow, valid buffer and out-pointer.
        match unsafe { (lib().write)(self.0, data.as_ptr(), data.len(), T, &mut n) } {
            RGTP_OK => Ok(n),
            e => Err(e),
        }
    }

    fn read_into(&self, cap: usize, timeout_ms: i32) -> (c_int, usize, Vec<u8>) {
        let mut buf = vec![0u8; cap];
        let mut n = 0usize;
        // SAFETY: live flow, buffer of `cap` bytes, valid out-pointer.
        let rc = unsafe { (lib().read)(self.0, buf.as_mut_ptr(), cap, &mut n, timeout_ms) };
        buf.truncate(if rc == RGTP_OK { n } else { 0 });
        (rc, n, buf)
    }

    fn read(&self) -> Result<Vec<u8>, c_int> {
        match self.read_into(MAX_SDU, T) {
            (RGTP_OK, _, b) => Ok(b),
            (e, _, _) => Err(e),
        }
    }

    fn set_flags(&self, flags: u32) {
        // SAFETY: live flow.
        assert_eq!(unsafe { (lib().set_flags)(self.0, flags) }, RGTP_OK);
    }

    fn flags(&self) -> u32 {
        let mut f = 0;
        // SAFETY: live flow, valid out-pointer.
        assert_eq!(unsafe { (lib().flags)(self.0, &mut f) }, RGTP_OK);
        f
    }

    fn id(&self) -> u64 {
        let mut id = 0;
        // SAFETY: live flow, valid out-pointer.
        assert_eq!(unsafe { (lib().id)(self.0, &mut id) }, RGTP_OK);
        id
    }

    fn dealloc(&self) -> c_int {
        // SAFETY: live flow.
        unsafe { (lib().dealloc)(self.0) }
    }

    /// (SDUs waiting to be read, fragments not yet acknowledged).
    fn queue_lens(&self) -> (usize, usize) {
        let (mut rx, mut tx) = (usize::MAX, usize::MAX);
        // SAFETY: live flow, valid out-pointers.
        assert_eq!(
            unsafe { (lib().queue_lens)(self.0, &mut rx, &mut tx) },
            RGTP_OK
        );
        (rx, tx)
    }
}

/// A flow set pointer shared with the serving thread.
struct Set(S);

// SAFETY: the header allows every call from any thread.
unsafe impl Send for Set {}
// SAFETY: as above.
unsafe impl Sync for Set {}

impl Set {
    fn p(&self) -> S {
        self.0
    }
}

/// A server node registering `name`, a client node, the client's flow to it and the
/// server's end of that flow.
fn echo_pair(name: &str) -> (Node, Node, Fl, Fl) {
    let server = Node::open();
    server.register(name);
    let client = Node::open();
    let (cf, sf) = std::thread::scope(|s| {
        let acc = s.spawn(|| server.accept());
        let cf = client.alloc(name, Some(&preset("data"))).unwrap();
        (cf, acc.join().unwrap().0)
    });
    (server, client, cf, sf)
}

#[test]
fn alloc_accept_echo_qos_layers() {
    let name = unique("echo");
    let server = Node::open();
    server.register(&name);
    let client = Node::open();
    let data = preset("data");
    assert_eq!(data.loss, 0);
    assert_eq!(data.in_order, 1);
    std::thread::scope(|s| {
        let srv = s.spawn(|| {
            let (f, q) = server.accept();
            assert_eq!(q.loss, 0, "the accepted flow carries the QoS asked for");
            while let Ok(m) = f.read() {
                f.write(&m).unwrap();
            }
        });
        let f = client.alloc(&name, Some(&data)).unwrap();
        for i in 0..50 {
            let msg = format!("message {i} {}", "y".repeat(i * 91));
            assert_eq!(f.write(msg.as_bytes()), Ok(msg.len()));
            assert_eq!(f.read().unwrap(), msg.as_bytes());
        }
        let mut q = Qos::default();
        // SAFETY: live flow, valid out-pointer.
        assert_eq!(unsafe { (lib().qos)(f.0, &mut q) }, RGTP_OK);
        assert_eq!(q, data);
        let mut buf = [0 as c_char; 128];
        // SAFETY: live flow, buffer of the given length.
        let need = unsafe { (lib().layers)(f.0, buf.as_mut_ptr(), buf.len()) };
        // SAFETY: NUL-terminated by the library.
        let layers = unsafe { CStr::from_ptr(buf.as_ptr()) }.to_str().unwrap();
        assert_eq!(need, layers.len() + 1);
        assert!(
            layers.contains("arq") && layers.contains("reorder"),
            "{layers}"
        );
        assert_eq!(f.flags(), F_RDWR);
        assert_eq!(f.dealloc(), RGTP_OK);
        assert_eq!(f.dealloc(), RGTP_OK, "dealloc twice does nothing");
        assert_eq!(f.write(b"x"), Err(DEALLOCATED));
        srv.join().unwrap();
    });
    let mut buf = [0 as c_char; 64];
    // SAFETY: live node, buffer of the given length.
    let need = unsafe { (lib().node_addr)(server.0, buf.as_mut_ptr(), buf.len()) };
    // SAFETY: NUL-terminated by the library.
    let addr = unsafe { CStr::from_ptr(buf.as_ptr()) }.to_str().unwrap();
    assert!(addr.starts_with("127.0.0.1:") && need == addr.len() + 1);
}

#[test]
fn unknown_name_and_bad_arguments() {
    let n = Node::open();
    let name = unique("nobody");
    assert_eq!(n.alloc(&name, None).err(), Some(UNKNOWN_NAME));
    let e = last_error();
    assert!(e.contains(&name) && e.contains("register"), "{e}");
    let c = CString::new("no-such-preset").unwrap();
    let mut q = Qos::default();
    // SAFETY: valid string and out-pointer.
    assert_eq!(
        unsafe { (lib().preset)(c.as_ptr(), &mut q) },
        RGTP_ERR_INVALID_ARG
    );
    assert!(last_error().contains("best_effort"), "{}", last_error());
    let mut f: F = std::ptr::null_mut();
    // SAFETY: NULL handles are documented to fail.
    unsafe {
        assert_eq!(
            (lib().alloc)(
                std::ptr::null_mut(),
                c.as_ptr(),
                std::ptr::null(),
                0,
                &mut f
            ),
            RGTP_ERR_INVALID_ARG
        );
        assert_eq!((lib().dealloc)(std::ptr::null_mut()), RGTP_ERR_INVALID_ARG);
        (lib().free)(std::ptr::null_mut());
        (lib().node_close)(std::ptr::null_mut());
        // A node handle is not a flow handle.
        assert_eq!((lib().dealloc)(n.0), RGTP_ERR_INVALID_ARG);
    }
}

#[test]
fn nonblocking_timeouts_and_dealloc_wakes_reader() {
    let (_server, _client, cf, sf) = echo_pair(&unique("timeouts"));
    cf.set_flags(F_RDWR | F_RNOBLOCK);
    assert_eq!(cf.read_into(64, T).0, WOULD_BLOCK);
    cf.set_flags(F_RDWR);
    assert_eq!(cf.read_into(64, 30).0, RGTP_ERR_TIMEOUT);
    std::thread::scope(|s| {
        let reader = s.spawn(|| cf.read_into(64, -1).0);
        std::thread::sleep(Duration::from_millis(50));
        assert_eq!(cf.dealloc(), RGTP_OK);
        assert_eq!(reader.join().unwrap(), DEALLOCATED);
    });
    // The peer learns the flow ended.
    assert_eq!(sf.read_into(64, T).0, PEER_GONE);
    assert_eq!(sf.flags() & F_DOWN, F_DOWN);
}

#[test]
fn flags_partial_reads_and_writes() {
    let (_server, _client, cf, sf) = echo_pair(&unique("flags"));
    // Access mode.
    cf.set_flags(F_RDONLY);
    assert_eq!(cf.write(b"x"), Err(PERMISSION));
    assert!(last_error().contains("read-only"));
    cf.set_flags(0o1);
    assert_eq!(cf.read_into(8, 0).0, PERMISSION);
    cf.set_flags(F_RDWR);
    // A write over the limit: an error with WNOPART, a partial write without.
    let big = vec![7u8; MAX_SDU + 10];
    cf.set_flags(F_RDWR | F_WNOPART);
    assert_eq!(cf.write(&big), Err(TOO_LARGE));
    assert!(last_error().contains("split"), "{}", last_error());
    cf.set_flags(F_RDWR);
    assert_eq!(cf.write(&big), Ok(MAX_SDU));
    assert_eq!(sf.read().unwrap().len(), MAX_SDU);
    // A read into a small buffer: the rest comes next, or an error with RNOPART.
    cf.write(b"0123456789").unwrap();
    assert_eq!(sf.read_into(4, T).2, b"0123");
    assert_eq!(sf.read_into(100, T).2, b"456789");
    sf.set_flags(F_RDWR | F_RNOPART);
    cf.write(b"abcdefgh").unwrap();
    let (rc, need, _) = sf.read_into(3, T);
    assert_eq!((rc, need), (TOO_LARGE, 8));
    assert_eq!(sf.read_into(8, T).2, b"abcdefgh", "the SDU was kept");
    // Flags that are no flags.
    // SAFETY: live flow.
    assert_eq!(
        unsafe { (lib().set_flags)(cf.0, 0o40000000) },
        RGTP_ERR_INVALID_ARG
    );
}

#[test]
fn queue_lens_count_what_waits_at_each_end() {
    let (_server, _client, cf, sf) = echo_pair(&unique("queues"));
    assert_eq!(cf.queue_lens(), (0, 0));
    for m in [&b"one"[..], b"two", b"three"] {
        cf.write(m).unwrap();
    }
    // Nothing read yet: all three reach the server's queue, and once they are
    // acknowledged the client holds nothing.
    let deadline = std::time::Instant::now() + Duration::from_secs(10);
    while (sf.queue_lens().0 < 3 || cf.queue_lens().1 > 0) && std::time::Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(5));
    }
    assert_eq!(sf.queue_lens(), (3, 0));
    assert_eq!(cf.queue_lens(), (0, 0));
    // An SDU read in part still counts until its rest is read.
    assert_eq!(sf.read_into(2, T).2, b"on");
    assert_eq!(sf.queue_lens().0, 3);
    assert_eq!(sf.read_into(8, T).2, b"e");
    assert_eq!(sf.queue_lens().0, 2);
    // Either pointer may be NULL, not both.
    let mut rx = 0;
    // SAFETY: live flow; NULL is allowed for one of the two.
    assert_eq!(
        unsafe { (lib().queue_lens)(sf.0, &mut rx, std::ptr::null_mut()) },
        RGTP_OK
    );
    assert_eq!(rx, 2);
    // SAFETY: as above.
    assert_eq!(
        unsafe { (lib().queue_lens)(sf.0, std::ptr::null_mut(), std::ptr::null_mut()) },
        RGTP_ERR_INVALID_ARG
    );
}

#[test]
fn flow_set_serves_many_flows() {
    let name = unique("set");
    let server = Node::open();
    server.register(&name);
    let client = Node::open();
    let mut s: S = std::ptr::null_mut();
    // SAFETY: live node, valid out-pointer.
    assert_eq!(unsafe { (lib().set_create)(server.0, &mut s) }, RGTP_OK);
    // SAFETY: live set.
    assert_eq!(unsafe { (lib().set_watch_allocs)(s, true) }, RGTP_OK);
    let n = 120;
    let set = Set(s);
    let clients: Vec<Fl> = std::thread::scope(|sc| {
        let srv = sc.spawn(|| {
            let s = set.p();
            let mut flows: Vec<Fl> = Vec::new();
            let mut echoed = 0;
            let mut allocs = 0;
            let mut ended = 0;
            let mut evs = [Event::default(); 16];
            while ended < n {
                let mut got = 0;
                // SAFETY: live set, array of the given length, valid out-pointer.
                let rc = unsafe { (lib().set_wait)(s, evs.as_mut_ptr(), evs.len(), &mut got, T) };
                assert_eq!(rc, RGTP_OK, "{}", last_error());
                assert!(got >= 1 && got <= evs.len());
                for ev in &evs[..got] {
                    match ev.kind {
                        EV_ALLOC => {
                            let (f, _) = server.accept();
                            // SAFETY: live set and flow.
                            assert_eq!(unsafe { (lib().set_add)(s, f.0) }, RGTP_OK);
                            f.set_flags(F_RDWR | F_RNOBLOCK);
                            flows.push(f);
                            allocs += 1;
                        }
                        EV_PKT => {
                            let f = flows.iter().find(|f| f.id() == ev.flow).unwrap();
                            while let Ok(m) = f.read() {
                                f.write(&m).unwrap();
                                echoed += 1;
                            }
                        }
                        EV_DEALLOC => ended += 1,
                        _ => {}
                    }
                }
            }
            (allocs, echoed)
        });
        let clients: Vec<Fl> = (0..n).map(|_| client.alloc(&name, None).unwrap()).collect();
        for (i, f) in clients.iter().enumerate() {
            f.write(format!("hello {i}").as_bytes()).unwrap();
        }
        for (i, f) in clients.iter().enumerate() {
            assert_eq!(f.read().unwrap(), format!("hello {i}").as_bytes());
        }
        for f in &clients {
            assert_eq!(f.dealloc(), RGTP_OK);
        }
        let (allocs, echoed) = srv.join().unwrap();
        assert_eq!((allocs, echoed), (n, n));
        clients
    });
    drop(clients);
    let mut evs = [Event::default(); 4];
    let mut got = 7;
    // SAFETY: live set, array of the given length, valid out-pointer.
    let rc = unsafe { (lib().set_wait)(s, evs.as_mut_ptr(), evs.len(), &mut got, 20) };
    assert_eq!((rc, got), (RGTP_ERR_TIMEOUT, 0));
    // SAFETY: live set, destroyed once.
    unsafe { (lib().set_destroy)(s) };
}

#[test]
fn join_broadcasts_to_every_member() {
    let name = unique("group");
    let nodes: Vec<Node> = (0..3).map(|_| Node::open()).collect();
    let members: Vec<Fl> = nodes.iter().map(|n| n.join(&name)).collect();
    for m in &members {
        assert_eq!(m.id(), u64::MAX, "a joined flow has no single id");
    }
    // Each member allocated flows to the members before it as it joined.
    members[2].write(b"from 2").unwrap();
    assert_eq!(members[0].read().unwrap(), b"from 2");
    assert_eq!(members[1].read().unwrap(), b"from 2");
    members[0].write(b"from 0").unwrap();
    let got: Vec<Vec<u8>> = vec![members[1].read().unwrap(), members[2].read().unwrap()];
    assert_eq!(got, vec![b"from 0".to_vec(), b"from 0".to_vec()]);
    // A joined flow cannot go into a flow set.
    let mut s: S = std::ptr::null_mut();
    // SAFETY: live node, valid out-pointer; then live set and flow.
    unsafe {
        assert_eq!((lib().set_create)(nodes[0].0, &mut s), RGTP_OK);
        assert_eq!((lib().set_add)(s, members[0].0), RGTP_ERR_NOT_SUPPORTED);
        (lib().set_destroy)(s);
    }
}
