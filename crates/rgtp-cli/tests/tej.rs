//! `rgtp tej serve` and `rgtp tej send` as processes: hostile names stay in
//! the directory, a bad connection leaves the server serving, echoes are
//! checked byte for byte.

use std::io::{BufRead, BufReader, Read, Write};
use std::net::TcpStream;
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use redgiant_tej::wire::encode_frame;

const BIN: &str = env!("CARGO_BIN_EXE_rgtp");

struct Server {
    child: Child,
    addr: String,
    out: BufReader<std::process::ChildStdout>,
}

impl Server {
    fn start(args: &[&str]) -> Server {
        let mut child = Command::new(BIN)
            .args(["tej", "serve", "--bind", "127.0.0.1:0"])
            .args(args)
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .unwrap();
        let mut out = BufReader::new(child.stdout.take().unwrap());
        let mut line = String::new();
        out.read_line(&mut line).unwrap();
        let addr = line
            .trim()
            .strip_prefix("listening on ")
            .expect(&line)
            .to_string();
        Server { child, addr, out }
    }

    /// The next frame line the server prints.
    fn frame_line(&mut self) -> String {
        let mut line = String::new();
        self.out.read_line(&mut line).unwrap();
        assert!(line.starts_with("frame from "), "{line}");
        line
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Writes `bytes`, ends the stream, reads until the server closes.
fn exchange(addr: &str, bytes: &[u8]) -> Vec<u8> {
    let mut s = TcpStream::connect(addr).unwrap();
    s.set_read_timeout(Some(Duration::from_secs(30))).unwrap();
    s.write_all(bytes).unwrap();
    s.shutdown(std::net::Shutdown::Write).unwrap();
    let mut back = Vec::new();
    s.read_to_end(&mut back).unwrap();
    back
}

#[test]
fn hostile_names_stay_inside_the_directory() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("store");
    let mut server = Server::start(&["--dir", dir.to_str().unwrap()]);
    let names = [
        "../escape.txt",
        "/etc/passwd",
        "..",
        "",
        "a/b/c",
        "same",
        "same",
        "été☃",
    ];
    let files: Vec<(&str, &[u8])> = names.iter().map(|n| (*n, n.as_bytes())).collect();
    exchange(&server.addr, &encode_frame(3, &files, b"m").unwrap());
    let line = server.frame_line();
    assert!(line.contains("status 3, 8 files"), "{line}");
    let mut stored: Vec<String> = std::fs::read_dir(&dir)
        .unwrap()
        .map(|e| e.unwrap().file_name().into_string().unwrap())
        .collect();
    stored.sort();
    assert_eq!(
        stored,
        [
            "__",
            "___escape.txt",
            "_etc_passwd",
            "a_b_c",
            "same",
            "same-1",
            "unnamed",
            "été☃"
        ]
    );
    assert_eq!(
        std::fs::read(dir.join("_etc_passwd")).unwrap(),
        b"/etc/passwd"
    );
    assert_eq!(
        std::fs::read_dir(tmp.path()).unwrap().count(),
        1,
        "nothing outside the directory"
    );
}

#[test]
fn a_bad_connection_leaves_the_server_serving_and_echo_is_exact() {
    let tmp = tempfile::tempdir().unwrap();
    let mut server = Server::start(&["--echo"]);
    // Not TEJ: closed at the first byte, nothing echoed.
    assert_eq!(exchange(&server.addr, b"GET / HTTP/1.1\r\n\r\n"), b"");
    // A frame cut short: the good frame before it comes back, then the close.
    let good = encode_frame(1, &[("a", b"abc")], b"").unwrap();
    let mut cut = good.clone();
    cut.extend_from_slice(&good[..15]);
    let back = exchange(&server.addr, &cut);
    assert!(
        back.len() >= good.len() && cut.starts_with(&back),
        "{back:?}"
    );
    server.frame_line();
    // And the server still serves `rgtp tej send`.
    let file = tmp.path().join("data.bin");
    std::fs::write(&file, vec![7u8; 3 << 20]).unwrap();
    let st = Command::new(BIN)
        .args([
            "tej",
            "send",
            "--to",
            &server.addr,
            "-m",
            "hello",
            "--repeat",
            "3",
            "--expect-echo",
        ])
        .arg(&file)
        .stderr(Stdio::piped())
        .output()
        .unwrap();
    assert!(
        st.status.success(),
        "{}",
        String::from_utf8_lossy(&st.stderr)
    );
    assert!(String::from_utf8_lossy(&st.stderr).contains("3 echoed frames verified"));
}

/// `rgtp send` serving `path` on `bind`; returns the process and its ticket.
fn rgtp_send(path: &std::path::Path, bind: &str) -> (Child, String) {
    let mut child = Command::new(BIN)
        .args(["send", "--port", "0", "--bind", bind, "-q"])
        .arg(path)
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let mut line = String::new();
    BufReader::new(child.stdout.take().unwrap())
        .read_line(&mut line)
        .unwrap();
    (child, line.trim().to_string())
}

/// `rgtp tej send` with `args`: exit status and standard error.
fn tej_send(args: &[&str]) -> (i32, String) {
    let out = Command::new(BIN)
        .args(["tej", "send"])
        .args(args)
        .output()
        .unwrap();
    (
        out.status.code().unwrap_or(-1),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

#[test]
fn via_rgtp_the_receiver_pulls_trees_and_overwrites_nothing() {
    let tmp = tempfile::tempdir().unwrap();
    let src = tmp.path().join("photos");
    std::fs::create_dir_all(src.join("2026")).unwrap();
    let big: Vec<u8> = (0..5_000_000u32).map(|i| (i * 7 % 251) as u8).collect();
    std::fs::write(src.join("2026/big.raw"), &big).unwrap();
    std::fs::write(src.join("empty"), b"").unwrap();
    let note = tmp.path().join("note.txt");
    std::fs::write(&note, b"see photos").unwrap();
    let dir = tmp.path().join("store");
    let mut server = Server::start(&["--dir", dir.to_str().unwrap()]);

    let (code, err) = tej_send(&[
        "--to",
        &server.addr,
        "--via-rgtp",
        src.to_str().unwrap(),
        note.to_str().unwrap(),
        "-m",
        "hello",
    ]);
    assert_eq!(code, 0, "{err}");
    assert!(err.contains("pulled by the receiver, 3 files"), "{err}");
    let mut line = String::new();
    server.out.read_line(&mut line).unwrap();
    assert!(
        line.starts_with("tickets from") && line.contains(&hex::encode("hello")),
        "{line}"
    );
    assert_eq!(std::fs::read(dir.join("photos/2026/big.raw")).unwrap(), big);
    assert_eq!(std::fs::read(dir.join("photos/empty")).unwrap(), b"");
    assert_eq!(std::fs::read(dir.join("note.txt")).unwrap(), b"see photos");

    // Again: what is there stays, the new copy gets a new name, no staging is left.
    let (code, err) = tej_send(&["--to", &server.addr, "--via-rgtp", note.to_str().unwrap()]);
    assert_eq!(code, 0, "{err}");
    let mut names: Vec<String> = std::fs::read_dir(&dir)
        .unwrap()
        .map(|e| e.unwrap().file_name().into_string().unwrap())
        .collect();
    names.sort();
    assert_eq!(names, ["note-1.txt", "note.txt", "photos"]);
}

#[test]
fn via_rgtp_refuses_third_hosts_unless_allowed_and_needs_a_directory() {
    let tmp = tempfile::tempdir().unwrap();
    let file = tmp.path().join("f.bin");
    std::fs::write(&file, vec![9u8; 100_000]).unwrap();
    // A set served on 127.0.0.2: another host than the TEJ peer (127.0.0.1).
    let (mut exposer, ticket) = rgtp_send(&file, "127.0.0.2");
    assert!(ticket.starts_with("rgtp://127.0.0.2:"), "{ticket}");
    let frame = |t: &str| encode_frame(0x52, &[("f", t.as_bytes())], b"").unwrap();

    let dir = tmp.path().join("store");
    let server = Server::start(&["--dir", dir.to_str().unwrap()]);
    let back = String::from_utf8_lossy(&exchange(&server.addr, &frame(&ticket))).into_owned();
    assert!(
        back.contains(r#""ok":false"#) && back.contains("refused"),
        "{back}"
    );
    assert!(!dir.join("f.bin").exists());
    // Not a ticket, and a ticket too long to be one: refused, the server goes on.
    let back =
        String::from_utf8_lossy(&exchange(&server.addr, &frame("rgtp://nonsense"))).into_owned();
    assert!(back.contains("bad ticket"), "{back}");
    let long = "x".repeat(5000);
    let back = String::from_utf8_lossy(&exchange(&server.addr, &frame(&long))).into_owned();
    assert!(back.contains("not a ticket"), "{back}");

    let open = Server::start(&["--dir", dir.to_str().unwrap(), "--pull-from-any-host"]);
    let back = String::from_utf8_lossy(&exchange(&open.addr, &frame(&ticket))).into_owned();
    assert!(back.contains(r#""ok":true"#), "{back}");
    assert_eq!(
        std::fs::read(dir.join("f.bin")).unwrap(),
        vec![9u8; 100_000]
    );

    // A server with nowhere to store says so, and the sender fails with its reason.
    let nodir = Server::start(&[]);
    let (code, err) = tej_send(&["--to", &nodir.addr, "--via-rgtp", file.to_str().unwrap()]);
    assert_eq!(code, 7, "{err}");
    assert!(err.contains("start it with --dir DIR"), "{err}");
    let _ = exposer.kill();
    let _ = exposer.wait();
}
