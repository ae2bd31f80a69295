//! The blocking API over loopback TCP: a client and a server thread each.

use std::io::{self, Write};
use std::net::{SocketAddr, TcpStream};
use std::path::Path;
use std::thread;
use std::time::{Duration, Instant};

use redgiant_tej::blocking::{
    safe_name, DirSink, Frame, FrameSink, MemorySink, TejListener, TejStream,
};
use redgiant_tej::{Config, OutFile, OutFrame};

const MIB: usize = 1 << 20;

fn listener() -> (TejListener, SocketAddr) {
    let l = TejListener::bind("127.0.0.1:0", Config::default()).unwrap();
    let addr = l.local_addr().unwrap();
    (l, addr)
}

/// Bytes that differ from one position to the next.
fn pattern(len: usize, seed: u8) -> Vec<u8> {
    (0..len)
        .map(|i| (i as u32).wrapping_mul(2_654_435_761).to_be_bytes()[0] ^ seed)
        .collect()
}

/// Runs `server` on the accepted side in a thread and `client` on a connected
/// stream; gives back what each returned.
fn pair<S, C, T, R>(server: S, client: C) -> (T, R)
where
    S: FnOnce(TejStream) -> T + Send + 'static,
    T: Send + 'static,
    C: FnOnce(TejStream) -> R,
{
    let (l, addr) = listener();
    let t = thread::spawn(move || {
        let (s, _) = l.accept().unwrap();
        server(s)
    });
    let c = TejStream::connect(addr, Config::default()).unwrap();
    let r = client(c);
    (t.join().expect("server thread"), r)
}

/// A server that echoes every frame back whole (small frames) until the client closes.
fn echo_server(mut s: TejStream) {
    while let Some(f) = s.recv_frame(64 * MIB as u64).unwrap() {
        let files: Vec<(&str, &[u8])> = f.files.iter().map(|(n, d)| (n.as_str(), &d[..])).collect();
        s.send_bytes(f.status, &files, &f.message).unwrap();
    }
}

fn roundtrip(files: Vec<(String, Vec<u8>)>, message: &[u8]) {
    let sent = Frame {
        status: 5,
        files: files.clone(),
        message: message.to_vec(),
    };
    let ((), got) = pair(echo_server, |mut c| {
        let refs: Vec<(&str, &[u8])> = files.iter().map(|(n, d)| (n.as_str(), &d[..])).collect();
        c.send_bytes(5, &refs, message).unwrap();
        let got = c.recv_frame(64 * MIB as u64).unwrap().expect("a frame");
        c.close().unwrap();
        got
    });
    assert_eq!(got, sent);
}

#[test]
fn empty_and_one_byte_files_come_back() {
    roundtrip(vec![("empty".into(), Vec::new())], b"");
    roundtrip(vec![("one".into(), vec![0xa5])], b"m");
}

#[test]
fn a_mebibyte_file_streamed_from_a_reader_comes_back() {
    let data = pattern(MIB, 7);
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("big.bin");
    std::fs::write(&path, &data).unwrap();
    let ((), got) = pair(echo_server, |mut c| {
        c.send_files(9, &[&path], b"big one").unwrap();
        let got = c.recv_frame(2 * MIB as u64).unwrap().expect("a frame");
        c.close().unwrap();
        got
    });
    assert_eq!(got.status, 9);
    assert_eq!(got.message, b"big one");
    assert_eq!(got.files.len(), 1);
    assert_eq!(got.files[0].0, "big.bin");
    assert!(got.files[0].1 == data, "the file changed on its way");
}

#[test]
fn several_files_and_a_message_in_one_frame() {
    roundtrip(
        vec![
            ("a.txt".into(), b"alpha".to_vec()),
            ("b.bin".into(), pattern(70_000, 1)),
            ("empty".into(), Vec::new()),
            ("été☃".into(), b"unicode name".to_vec()),
        ],
        "a message with ☃".as_bytes(),
    );
}

#[test]
fn fifty_pipelined_frames_arrive_in_order() {
    let (l, addr) = listener();
    let server = thread::spawn(move || {
        let (mut s, _) = l.accept().unwrap();
        let mut got = Vec::new();
        while let Some(f) = s.recv_frame(MIB as u64).unwrap() {
            got.push(f);
        }
        got
    });
    let mut c = TejStream::connect(addr, Config::default()).unwrap();
    for i in 0..50u8 {
        let body = pattern(1000 + usize::from(i) * 37, i);
        c.send_frame(OutFrame {
            status: 10 + i,
            files: vec![OutFile::bytes(format!("f{i}"), body)],
            message: vec![i; usize::from(i)],
        })
        .unwrap();
    }
    c.close().unwrap();
    let got = server.join().unwrap();
    assert_eq!(got.len(), 50);
    for (i, f) in got.iter().enumerate() {
        let i = i as u8;
        assert_eq!(f.status, 10 + i);
        assert_eq!(
            f.files,
            vec![(format!("f{i}"), pattern(1000 + usize::from(i) * 37, i))]
        );
        assert_eq!(f.message, vec![i; usize::from(i)]);
    }
}

#[test]
fn pings_are_counted_and_skipped() {
    let ((), (pings, frame)) = pair(
        |mut s| {
            let f = s
                .recv_frame(1024)
                .unwrap()
                .expect("the frame after the pings");
            assert_eq!(f.message, b"after");
            assert_eq!(s.pings_received(), 2);
            // Pings go the other way too.
            s.ping().unwrap();
            s.send_bytes(1, &[], b"reply").unwrap();
            assert_eq!(s.recv_frame(1024).unwrap(), None);
        },
        |mut c| {
            c.ping().unwrap();
            c.ping().unwrap();
            c.send_bytes(1, &[], b"after").unwrap();
            let f = c.recv_frame(1024).unwrap().expect("the reply");
            let pings = c.pings_received();
            c.close().unwrap();
            (pings, f)
        },
    );
    assert_eq!(pings, 1);
    assert_eq!(frame.message, b"reply");
    assert_eq!(frame.status, 1);
}

#[test]
fn a_frame_over_the_memory_cap_is_refused_and_the_next_one_arrives() {
    let ((), err) = pair(
        |mut s| {
            s.send_bytes(1, &[("small", b"1234"), ("large", &[0u8; 5000])], b"")
                .unwrap();
            s.send_bytes(1, &[("next", b"ok")], b"second").unwrap();
            s.close().unwrap();
        },
        |mut c| {
            let err = c.recv_frame(1000).unwrap_err();
            let next = c.recv_frame(1000).unwrap().expect("the frame after");
            assert_eq!(next.files, vec![("next".to_string(), b"ok".to_vec())]);
            assert_eq!(next.message, b"second");
            assert_eq!(c.recv_frame(1000).unwrap(), None);
            err
        },
    );
    assert_eq!(err.kind(), io::ErrorKind::InvalidData);
    let msg = err.to_string();
    assert!(
        msg.contains("\"large\"") && msg.contains("memory cap"),
        "{msg}"
    );
}

#[test]
fn a_peer_breaking_the_protocol_gets_invalid_data_and_the_listener_goes_on() {
    let (l, addr) = listener();
    let server = thread::spawn(move || {
        let mut results = Vec::new();
        for _ in 0..2 {
            let (mut s, _) = l.accept().unwrap();
            s.set_read_timeout(Some(Duration::from_secs(10)));
            results.push(s.recv_frame(1024).map(|f| f.map(|f| f.message)));
            // Every later call says the same.
            if results.len() == 1 {
                let again = s.recv_frame(1024).unwrap_err();
                assert_eq!(again.kind(), io::ErrorKind::InvalidData);
            }
        }
        results
    });
    // A status byte with its top bit clear.
    let mut raw = TcpStream::connect(addr).unwrap();
    raw.write_all(&[0x01, 0x01, 0, 0, 0, 0, 0, 0, 0, 0])
        .unwrap();
    let mut good = TejStream::connect(addr, Config::default()).unwrap();
    good.send_bytes(3, &[], b"fine").unwrap();
    good.close().unwrap();
    let results = server.join().unwrap();
    let err = results[0].as_ref().unwrap_err();
    assert_eq!(err.kind(), io::ErrorKind::InvalidData);
    assert!(err.to_string().contains("top bit"), "{err}");
    assert_eq!(results[1].as_ref().unwrap().as_deref(), Some(&b"fine"[..]));
    drop(raw);
}

#[test]
fn a_read_timeout_is_timed_out_and_the_connection_goes_on() {
    let (l, addr) = listener();
    let server = thread::spawn(move || {
        let (mut s, _) = l.accept().unwrap();
        s.set_read_timeout(Some(Duration::from_millis(200)));
        let t = Instant::now();
        let err = s.recv_frame(1024).unwrap_err();
        assert_eq!(err.kind(), io::ErrorKind::TimedOut);
        assert!(t.elapsed() >= Duration::from_millis(200));
        s.set_read_timeout(Some(Duration::from_secs(10)));
        s.recv_frame(1024).unwrap().map(|f| f.message)
    });
    let mut c = TejStream::connect(addr, Config::default()).unwrap();
    thread::sleep(Duration::from_millis(600));
    c.send_bytes(1, &[], b"late").unwrap();
    assert_eq!(server.join().unwrap().as_deref(), Some(&b"late"[..]));
}

#[test]
fn a_close_inside_a_frame_is_unexpected_eof() {
    let (l, addr) = listener();
    let server = thread::spawn(move || {
        let (mut s, _) = l.accept().unwrap();
        let mut sink = MemorySink::new(1024);
        let err = s.recv(&mut sink).unwrap_err();
        (err, sink.files().len())
    });
    let mut raw = TcpStream::connect(addr).unwrap();
    // One file of 10 bytes announced, 3 sent.
    let mut head = vec![0x81, 0x01, 0, 0, 0, 0, 0, 0, 0, 1, 0, 1, b'x'];
    head.extend_from_slice(&10u64.to_be_bytes());
    head.extend_from_slice(b"abc");
    raw.write_all(&head).unwrap();
    raw.shutdown(std::net::Shutdown::Write).unwrap();
    let (err, kept) = server.join().unwrap();
    assert_eq!(err.kind(), io::ErrorKind::UnexpectedEof, "{err}");
    assert_eq!(kept, 0, "the partial file was dropped");
}

fn names_in(dir: &Path) -> Vec<String> {
    let mut v: Vec<String> = std::fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().file_name().into_string().unwrap())
        .collect();
    v.sort();
    v
}

#[test]
fn dir_sink_keeps_every_file_inside_its_directory() {
    let root = tempfile::tempdir().unwrap();
    let dir = root.path().join("in");
    let evil = [
        "../x",
        "/etc/passwd",
        "a/b",
        "..",
        ".",
        ".hidden",
        "a\\..\\b",
        "c:d",
        "",
    ];
    let sink_dir = dir.clone();
    let ((info, saved), ()) = pair(
        move |mut s| {
            let mut sink = DirSink::new(&sink_dir).unwrap();
            let info = s.recv(&mut sink).unwrap().expect("a frame");
            let saved = sink.saved().to_vec();
            assert_eq!(s.recv(&mut sink).unwrap(), None);
            (info, saved)
        },
        |mut c| {
            let files: Vec<(&str, &[u8])> = evil.iter().map(|n| (*n, n.as_bytes())).collect();
            c.send_bytes(1, &files, b"").unwrap();
            c.close().unwrap();
        },
    );
    let sent: Vec<&str> = info.files.iter().map(|f| f.name.as_str()).collect();
    assert_eq!(sent, evil, "names are reported as sent");
    assert_eq!(saved.len(), evil.len());
    for (p, name) in saved.iter().zip(evil) {
        assert_eq!(p.parent(), Some(dir.as_path()), "{name:?} saved at {p:?}");
        assert_eq!(std::fs::read(p).unwrap(), name.as_bytes());
    }
    // Nothing outside the directory: the root holds only it.
    assert_eq!(names_in(root.path()), ["in"]);
    let names = names_in(&dir);
    assert_eq!(names.len(), evil.len(), "{names:?}");
    for n in &names {
        assert!(
            !n.starts_with('.') && !n.contains('/') && !n.contains(".."),
            "{n}"
        );
    }
    // Each file holds its original name as its bytes.
    let mut contents: Vec<String> = names
        .iter()
        .map(|n| std::fs::read_to_string(dir.join(n)).unwrap())
        .collect();
    contents.sort();
    let mut want: Vec<String> = evil.iter().map(|s| s.to_string()).collect();
    want.sort();
    assert_eq!(contents, want);
}

#[test]
fn safe_names() {
    for (name, want) in [
        ("report.pdf", "report.pdf"),
        ("../x", "___x"),
        ("/etc/passwd", "_etc_passwd"),
        ("a/b", "a_b"),
        ("a..b", "a._b"),
        ("..", "__"),
        (".bashrc", "_bashrc"),
        ("", "unnamed"),
        (" ", "unnamed"),
        ("nl\n\0", "nl__"),
        ("été", "été"),
    ] {
        assert_eq!(safe_name(name), want, "{name:?}");
    }
    let long = safe_name(&"é".repeat(300));
    assert!(long.len() <= 200 && long.chars().all(|c| c == 'é'));
}

#[test]
fn repeated_names_do_not_overwrite() {
    let dir = tempfile::tempdir().unwrap();
    let mut sink = DirSink::new(dir.path()).unwrap();
    sink.frame_start(1, 3).unwrap();
    for body in [b"one", b"two", b"3rd"] {
        sink.file_start("same.txt", 3).unwrap();
        sink.file_data(body).unwrap();
        sink.file_end().unwrap();
    }
    assert_eq!(
        names_in(dir.path()),
        ["same-1.txt", "same-2.txt", "same.txt"]
    );
    assert_eq!(
        std::fs::read(dir.path().join("same-2.txt")).unwrap(),
        b"3rd"
    );
    // An aborted file is removed.
    sink.frame_start(1, 1).unwrap();
    sink.file_start("partial", 10).unwrap();
    sink.file_data(b"abc").unwrap();
    sink.abort();
    assert!(!dir.path().join("partial").exists());
    assert!(sink.saved().is_empty());
}

#[test]
fn connecting_to_nothing_fails_clearly() {
    let (l, addr) = listener();
    drop(l);
    let err = TejStream::connect(addr, Config::default()).unwrap_err();
    assert_eq!(err.kind(), io::ErrorKind::ConnectionRefused, "{err}");
}

#[test]
fn a_zero_timeout_takes_a_frame_already_there() {
    let (l, addr) = listener();
    let server = thread::spawn(move || {
        let (mut s, _) = l.accept().unwrap();
        s.set_read_timeout(Some(Duration::ZERO));
        let first = s.recv_frame(1024).unwrap_err().kind();
        thread::sleep(Duration::from_millis(300));
        (first, s.recv_frame(1024).unwrap().map(|f| f.message))
    });
    let mut c = TejStream::connect(addr, Config::default()).unwrap();
    thread::sleep(Duration::from_millis(100));
    c.send_bytes(1, &[], b"there").unwrap();
    let (first, then) = server.join().unwrap();
    assert_eq!(first, io::ErrorKind::TimedOut);
    assert_eq!(then.as_deref(), Some(&b"there"[..]));
}

#[test]
fn hostile_names_never_leave_the_directory() {
    for name in [
        "../../etc/passwd",
        "a..b...c",
        "...",
        ".",
        "a\\b:c",
        "new\nline\0",
        "./.././x",
        "..\\..\\win",
    ] {
        let safe = safe_name(name);
        assert!(
            !safe.contains("..")
                && !safe.starts_with('.')
                && !safe.contains(['/', '\\', ':'])
                && !safe.chars().any(char::is_control)
                && !safe.is_empty(),
            "{name:?} -> {safe:?}"
        );
    }
}

#[test]
fn colliding_names_get_a_number_before_the_extension() {
    use redgiant_tej::blocking::create_unique;
    let dir = tempfile::tempdir().unwrap();
    let name = |n: &str| {
        create_unique(dir.path(), n)
            .unwrap()
            .1
            .file_name()
            .unwrap()
            .to_str()
            .unwrap()
            .to_string()
    };
    let got: Vec<String> = (0..3).map(|_| name("a.txt")).collect();
    assert_eq!(got, ["a.txt", "a-1.txt", "a-2.txt"]);
    assert_eq!(name("noext"), "noext");
    assert_eq!(name("noext"), "noext-1");
    assert_eq!(name(".hidden"), ".hidden");
    assert_eq!(name(".hidden"), ".hidden-1");
}
