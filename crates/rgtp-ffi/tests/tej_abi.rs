//! The `rgtp_tej_*` calls through the built `librgtp.so`, loaded with
//! `dlopen` as a C program (or ctypes) would load it.

mod dl;

use std::ffi::{c_char, c_int, c_void, CStr, CString};
use std::io::Write;
use std::net::TcpStream;
use std::path::{Path, PathBuf};
use std::sync::OnceLock;
use std::thread;

#[path = "../src/abi.rs"]
mod abi;
use abi::{RGTP_ERR_INVALID_ARG, RGTP_ERR_SOCKET, RGTP_ERR_TIMEOUT, RGTP_OK};

type Tej = c_void;
type Listener = c_void;
type Frame = c_void;

/// The calls under test, resolved from the library.
struct Api {
    last_error: unsafe extern "C" fn() -> *const c_char,
    connect: unsafe extern "C" fn(*const c_char, *mut *mut Tej) -> c_int,
    send:
        unsafe extern "C" fn(*mut Tej, u8, *const *const c_char, usize, *const u8, usize) -> c_int,
    send_bytes: unsafe extern "C" fn(
        *mut Tej,
        u8,
        *const *const c_char,
        *const *const u8,
        *const usize,
        usize,
        *const u8,
        usize,
    ) -> c_int,
    ping: unsafe extern "C" fn(*mut Tej) -> c_int,
    pings_received: unsafe extern "C" fn(*const Tej, *mut u64) -> c_int,
    recv_to_dir: unsafe extern "C" fn(*mut Tej, *const c_char, i32, *mut *mut Frame) -> c_int,
    frame_status: unsafe extern "C" fn(*const Frame) -> u8,
    frame_file_count: unsafe extern "C" fn(*const Frame) -> usize,
    frame_file_name: unsafe extern "C" fn(*const Frame, usize, *mut usize) -> *const c_char,
    frame_file_path: unsafe extern "C" fn(*const Frame, usize, *mut usize) -> *const c_char,
    frame_file_size: unsafe extern "C" fn(*const Frame, usize) -> u64,
    frame_message: unsafe extern "C" fn(*const Frame, *mut usize) -> *const u8,
    frame_free: unsafe extern "C" fn(*mut Frame),
    close: unsafe extern "C" fn(*mut Tej) -> c_int,
    listen: unsafe extern "C" fn(*const c_char, *mut *mut Listener) -> c_int,
    listener_addr: unsafe extern "C" fn(*const Listener, *mut c_char, usize, *mut usize) -> c_int,
    accept: unsafe extern "C" fn(*mut Listener, i32, *mut *mut Tej) -> c_int,
    listener_close: unsafe extern "C" fn(*mut Listener),
}

fn api() -> &'static Api {
    static API: OnceLock<Api> = OnceLock::new();
    API.get_or_init(|| {
        macro_rules! sym {
            ($name:literal) => {{
                // SAFETY: the symbol is the function the header declares with this type.
                unsafe { dl::sym($name) }
            }};
        }
        Api {
            last_error: sym!("rgtp_tej_last_error"),
            connect: sym!("rgtp_tej_connect"),
            send: sym!("rgtp_tej_send"),
            send_bytes: sym!("rgtp_tej_send_bytes"),
            ping: sym!("rgtp_tej_ping"),
            pings_received: sym!("rgtp_tej_pings_received"),
            recv_to_dir: sym!("rgtp_tej_recv_to_dir"),
            frame_status: sym!("rgtp_tej_frame_status"),
            frame_file_count: sym!("rgtp_tej_frame_file_count"),
            frame_file_name: sym!("rgtp_tej_frame_file_name"),
            frame_file_path: sym!("rgtp_tej_frame_file_path"),
            frame_file_size: sym!("rgtp_tej_frame_file_size"),
            frame_message: sym!("rgtp_tej_frame_message"),
            frame_free: sym!("rgtp_tej_frame_free"),
            close: sym!("rgtp_tej_close"),
            listen: sym!("rgtp_tej_listen"),
            listener_addr: sym!("rgtp_tej_listener_addr"),
            accept: sym!("rgtp_tej_accept"),
            listener_close: sym!("rgtp_tej_listener_close"),
        }
    })
}

fn last_error() -> String {
    // SAFETY: a NUL-terminated string valid until the next call on this thread.
    unsafe { CStr::from_ptr((api().last_error)()) }
        .to_string_lossy()
        .into_owned()
}

/// A listener on loopback and its address.
fn listen() -> (usize, String) {
    let a = api();
    let bind = CString::new("127.0.0.1:0").unwrap();
    let mut l = std::ptr::null_mut();
    // SAFETY: valid string and out-pointer.
    assert_eq!(unsafe { (a.listen)(bind.as_ptr(), &mut l) }, RGTP_OK);
    let mut need = 0usize;
    let mut small = [0 as c_char; 4];
    // SAFETY: a live listener; the buffer is 4 bytes.
    let rc = unsafe { (a.listener_addr)(l, small.as_mut_ptr(), small.len(), &mut need) };
    assert_eq!(rc, RGTP_ERR_INVALID_ARG, "a 4-byte buffer is too small");
    assert!(need > 10, "{need}");
    let mut buf = vec![0 as c_char; need];
    // SAFETY: as above, with room for `need` bytes.
    let rc = unsafe { (a.listener_addr)(l, buf.as_mut_ptr(), buf.len(), std::ptr::null_mut()) };
    assert_eq!(rc, RGTP_OK);
    // SAFETY: the library wrote a NUL-terminated string.
    let addr = unsafe { CStr::from_ptr(buf.as_ptr()) }
        .to_str()
        .unwrap()
        .to_owned();
    assert!(addr.starts_with("127.0.0.1:"), "{addr}");
    (l as usize, addr)
}

fn connect(addr: &str) -> *mut Tej {
    let a = api();
    let c = CString::new(addr).unwrap();
    let mut t = std::ptr::null_mut();
    // SAFETY: valid string and out-pointer.
    assert_eq!(
        unsafe { (a.connect)(c.as_ptr(), &mut t) },
        RGTP_OK,
        "{}",
        last_error()
    );
    t
}

/// A received frame, read through the accessors.
#[derive(Debug)]
struct Got {
    status: u8,
    files: Vec<(String, PathBuf, u64)>,
    message: Vec<u8>,
}

/// Receives one frame to `dir`: `Ok(None)` at a clean close, `Err(code)` on failure.
fn recv(t: *mut Tej, dir: &Path, timeout_ms: i32) -> Result<Option<Got>, c_int> {
    let a = api();
    let d = CString::new(dir.to_str().unwrap()).unwrap();
    let mut f = std::ptr::null_mut();
    // SAFETY: live handle, valid string and out-pointer.
    let rc = unsafe { (a.recv_to_dir)(t, d.as_ptr(), timeout_ms, &mut f) };
    if rc != RGTP_OK {
        return Err(rc);
    }
    if f.is_null() {
        return Ok(None);
    }
    // SAFETY: `f` is a live frame until freed below; the accessors' pointers
    // stay valid until then.
    unsafe {
        let n = (a.frame_file_count)(f);
        let mut files = Vec::new();
        for i in 0..n {
            let mut nl = 0;
            let name = (a.frame_file_name)(f, i, &mut nl);
            let name = CStr::from_ptr(name).to_str().unwrap().to_owned();
            assert_eq!(name.len(), nl);
            let path = CStr::from_ptr((a.frame_file_path)(f, i, std::ptr::null_mut()));
            files.push((
                name,
                PathBuf::from(path.to_str().unwrap()),
                (a.frame_file_size)(f, i),
            ));
        }
        assert!((a.frame_file_name)(f, n, std::ptr::null_mut()).is_null());
        let mut ml = 0;
        let m = (a.frame_message)(f, &mut ml);
        let message = match ml {
            0 => Vec::new(),
            _ => std::slice::from_raw_parts(m, ml).to_vec(),
        };
        let got = Got {
            status: (a.frame_status)(f),
            files,
            message,
        };
        (a.frame_free)(f);
        Ok(Some(got))
    }
}

#[test]
fn frames_of_paths_and_of_buffers_arrive_in_a_directory() {
    let a = api();
    let (l, addr) = listen();
    let work = tempfile::tempdir().unwrap();
    let inbox = work.path().join("inbox");
    let big: Vec<u8> = (0..300_000u32).map(|i| (i % 251) as u8).collect();
    let big_path = work.path().join("big.bin");
    std::fs::write(&big_path, &big).unwrap();
    let empty_path = work.path().join("empty");
    std::fs::write(&empty_path, b"").unwrap();

    let server_dir = inbox.clone();
    let (timed_out, wait_timeout) = std::sync::mpsc::channel();
    let server = thread::spawn(move || {
        let mut t = std::ptr::null_mut();
        // SAFETY: a live listener and an out-pointer.
        let rc = unsafe { (api().accept)(l as *mut Listener, 10_000, &mut t) };
        assert_eq!(rc, RGTP_OK, "{}", last_error());
        let first = recv(t, &server_dir, 10_000).unwrap().expect("frame 1");
        let second = recv(t, &server_dir, 10_000).unwrap().expect("frame 2");
        // The ping is counted, not returned: nothing more comes in time.
        assert_eq!(recv(t, &server_dir, 300).unwrap_err(), RGTP_ERR_TIMEOUT);
        timed_out.send(()).unwrap();
        let mut pings = 0;
        // SAFETY: live handle and out-pointer.
        assert_eq!(unsafe { (api().pings_received)(t, &mut pings) }, RGTP_OK);
        let end = recv(t, &server_dir, 10_000).unwrap();
        // SAFETY: live handle, not used afterwards.
        assert_eq!(unsafe { (api().close)(t) }, RGTP_OK);
        (first, second, pings, end.is_none())
    });

    let t = connect(&addr);
    let names = [
        CString::new("hello.txt").unwrap(),
        CString::new("../escape").unwrap(),
    ];
    let name_ptrs: Vec<*const c_char> = names.iter().map(|n| n.as_ptr()).collect();
    let datas: [&[u8]; 2] = [b"hello", b""];
    let data_ptrs: Vec<*const u8> = datas.iter().map(|d| d.as_ptr()).collect();
    let lens: Vec<usize> = datas.iter().map(|d| d.len()).collect();
    let msg = b"two in-memory files";
    // SAFETY: arrays of 2 valid items each, a valid message.
    let rc = unsafe {
        (a.send_bytes)(
            t,
            7,
            name_ptrs.as_ptr(),
            data_ptrs.as_ptr(),
            lens.as_ptr(),
            2,
            msg.as_ptr(),
            msg.len(),
        )
    };
    assert_eq!(rc, RGTP_OK, "{}", last_error());
    let paths = [
        CString::new(big_path.to_str().unwrap()).unwrap(),
        CString::new(empty_path.to_str().unwrap()).unwrap(),
    ];
    let path_ptrs: Vec<*const c_char> = paths.iter().map(|p| p.as_ptr()).collect();
    // SAFETY: 2 valid paths, no message.
    let rc = unsafe { (a.send)(t, 3, path_ptrs.as_ptr(), 2, std::ptr::null(), 0) };
    assert_eq!(rc, RGTP_OK, "{}", last_error());
    // SAFETY: live handle.
    assert_eq!(unsafe { (a.ping)(t) }, RGTP_OK);
    // Stay connected until the server saw nothing but the ping.
    wait_timeout.recv().unwrap();
    // SAFETY: live handle, not used afterwards.
    assert_eq!(unsafe { (a.close)(t) }, RGTP_OK, "{}", last_error());

    let (first, second, pings, closed) = server.join().unwrap();
    // SAFETY: live listener, not used afterwards.
    unsafe { (a.listener_close)(l as *mut Listener) };

    assert_eq!(first.status, 7);
    assert_eq!(first.message, msg);
    assert_eq!(first.files.len(), 2);
    assert_eq!(first.files[0].0, "hello.txt");
    assert_eq!(first.files[0].2, 5);
    assert_eq!(std::fs::read(&first.files[0].1).unwrap(), b"hello");
    // The name is reported as sent; the file stays inside the directory.
    assert_eq!(first.files[1].0, "../escape");
    assert_eq!(first.files[1].1.parent(), Some(inbox.as_path()));
    assert_eq!(std::fs::read(&first.files[1].1).unwrap(), b"");

    assert_eq!(second.status, 3);
    assert!(second.message.is_empty());
    let names: Vec<&str> = second.files.iter().map(|f| f.0.as_str()).collect();
    assert_eq!(names, ["big.bin", "empty"]);
    assert_eq!(second.files[0].2, big.len() as u64);
    assert!(std::fs::read(&second.files[0].1).unwrap() == big);
    assert_eq!(second.files[1].2, 0);
    assert_eq!(pings, 1);
    assert!(closed, "a clean close gives RGTP_OK and a NULL frame");
}

#[test]
fn bad_arguments_are_refused_with_a_reason() {
    let a = api();
    let (l, addr) = listen();
    let mut t = std::ptr::null_mut();
    // SAFETY: NULL handles and pointers are part of the contract.
    unsafe {
        assert_eq!((a.ping)(std::ptr::null_mut()), RGTP_ERR_INVALID_ARG);
        assert_eq!((a.connect)(std::ptr::null(), &mut t), RGTP_ERR_INVALID_ARG);
        assert!(last_error().contains("addr"), "{}", last_error());
        // A listener is not a connection.
        assert_eq!((a.ping)(l as *mut Tej), RGTP_ERR_INVALID_ARG);
        assert_eq!((a.frame_file_count)(l as *const Frame), 0);
        // Nobody connects.
        assert_eq!(
            (a.accept)(l as *mut Listener, 100, &mut t),
            RGTP_ERR_TIMEOUT
        );
    }
    let c = connect(&addr);
    let missing = CString::new("/nonexistent/file").unwrap();
    let p = [missing.as_ptr()];
    // SAFETY: a live connection; valid arrays.
    unsafe {
        assert_eq!(
            (a.send)(c, 200, std::ptr::null(), 0, std::ptr::null(), 0),
            RGTP_ERR_INVALID_ARG
        );
        assert!(last_error().contains("status 200"), "{}", last_error());
        assert_eq!(
            (a.send)(c, 1, p.as_ptr(), 1, std::ptr::null(), 0),
            RGTP_ERR_INVALID_ARG
        );
        assert!(
            last_error().contains("/nonexistent/file"),
            "{}",
            last_error()
        );
        assert_eq!(
            (a.send)(c, 1, std::ptr::null(), 1, std::ptr::null(), 0),
            RGTP_ERR_INVALID_ARG
        );
        assert_eq!((a.close)(c), RGTP_OK);
        (a.listener_close)(l as *mut Listener);
    }
}

#[test]
fn a_peer_breaking_the_protocol_is_a_socket_error_with_its_reason() {
    let a = api();
    let (l, addr) = listen();
    let mut raw = TcpStream::connect(&addr).unwrap();
    raw.write_all(&[0x05, 0x01, 0, 0, 0, 0, 0, 0, 0, 0])
        .unwrap();
    let mut t = std::ptr::null_mut();
    // SAFETY: a live listener and an out-pointer.
    assert_eq!(
        unsafe { (a.accept)(l as *mut Listener, 10_000, &mut t) },
        RGTP_OK
    );
    let dir = tempfile::tempdir().unwrap();
    assert_eq!(recv(t, dir.path(), 10_000).unwrap_err(), RGTP_ERR_SOCKET);
    let why = last_error();
    assert!(why.contains("protocol") && why.contains("top bit"), "{why}");
    // Every later call fails the same way.
    assert_eq!(recv(t, dir.path(), 10_000).unwrap_err(), RGTP_ERR_SOCKET);
    // Closing a connection already over is not a second error.
    // SAFETY: live handles, not used afterwards.
    unsafe {
        assert_eq!((a.close)(t), RGTP_OK, "{}", last_error());
        (a.listener_close)(l as *mut Listener);
    }
    drop(raw);
}
