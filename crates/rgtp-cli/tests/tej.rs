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
