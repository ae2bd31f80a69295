//! `rgtp gtudp serve --echo` and `rgtp gtudp send --expect-echo` as two
//! processes over loopback UDP, under the reference profile and under a
//! 6-byte magic with 2-byte types.
//!
//! Every child is bounded in time: the server is killed at the end of each
//! test, and a sender that outlives its limit is killed and fails the test.

use std::io::{BufRead, BufReader, Read, Write};
use std::process::{Child, Command, Output, Stdio};
use std::sync::mpsc;
use std::thread;
use std::time::{Duration, Instant};

const BIN: &str = env!("CARGO_BIN_EXE_rgtp");
const CHILD_LIMIT: Duration = Duration::from_secs(60);

const WIDE: &[&str] = &["--magic", "475455445031", "--types", "001d,005f,00ae"];

/// A running `rgtp gtudp serve`; its stdout lines arrive on `lines`.
struct Server {
    child: Child,
    port: u16,
    lines: mpsc::Receiver<String>,
}

impl Server {
    fn start(extra: &[&str]) -> Server {
        let mut child = Command::new(BIN)
            .env_remove("RGTP_LOG")
            .args(["gtudp", "serve", "--bind", "127.0.0.1:0", "--echo"])
            .args(extra)
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .expect("spawn rgtp gtudp serve");
        let stdout = child.stdout.take().unwrap();
        let (tx, lines) = mpsc::channel();
        thread::spawn(move || {
            for line in BufReader::new(stdout).lines() {
                let Ok(line) = line else { break };
                if tx.send(line).is_err() {
                    break;
                }
            }
        });
        let first = lines
            .recv_timeout(CHILD_LIMIT)
            .expect("serve printed no address");
        let port = first
            .strip_prefix("listening on 127.0.0.1:")
            .unwrap_or_else(|| panic!("first line {first:?}"))
            .parse()
            .unwrap();
        Server { child, port, lines }
    }

    /// Lines printed so far, waiting up to a second for `n` of them.
    fn received(&self, n: usize) -> Vec<String> {
        let mut out = Vec::new();
        let until = Instant::now() + Duration::from_secs(1);
        while out.len() < n {
            let left = until.saturating_duration_since(Instant::now());
            match self.lines.recv_timeout(left) {
                Ok(l) => out.push(l),
                Err(_) => break,
            }
        }
        out
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Runs `rgtp gtudp send ARGS` with `stdin`, killed after [`CHILD_LIMIT`].
fn send(args: &[&str], stdin: &[u8]) -> Output {
    let mut child = Command::new(BIN)
        .env_remove("RGTP_LOG")
        .args(["gtudp", "send"])
        .args(args)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("spawn rgtp gtudp send");
    child.stdin.take().unwrap().write_all(stdin).unwrap();
    let mut out = child.stdout.take().unwrap();
    let mut err = child.stderr.take().unwrap();
    let o = thread::spawn(move || {
        let mut v = Vec::new();
        let _ = out.read_to_end(&mut v);
        v
    });
    let e = thread::spawn(move || {
        let mut v = Vec::new();
        let _ = err.read_to_end(&mut v);
        v
    });
    let start = Instant::now();
    let status = loop {
        if let Some(s) = child.try_wait().unwrap() {
            break s;
        }
        if start.elapsed() > CHILD_LIMIT {
            let _ = child.kill();
            panic!("rgtp gtudp send ran over {CHILD_LIMIT:?}");
        }
        thread::sleep(Duration::from_millis(20));
    };
    Output {
        status,
        stdout: o.join().unwrap(),
        stderr: e.join().unwrap(),
    }
}

fn describe(o: &Output) -> String {
    format!(
        "{:?}\n--- stdout ---\n{}\n--- stderr ---\n{}",
        o.status,
        String::from_utf8_lossy(&o.stdout),
        String::from_utf8_lossy(&o.stderr)
    )
}

fn echo_round_trip(profile: &[&str]) {
    let server = Server::start(profile);
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("one.bin");
    std::fs::write(&file, b"first datagram\x00\xff").unwrap();
    let to = format!("127.0.0.1:{}", server.port);
    let mut args = vec!["--to", &to, "--expect-echo", "--timeout", "20"];
    args.extend_from_slice(profile);
    let file = file.to_str().unwrap();
    args.extend_from_slice(&[file, "-"]);
    let o = send(&args, b"line one\nline two\n");
    assert!(o.status.success(), "{}", describe(&o));
    let stdout = String::from_utf8_lossy(&o.stdout);
    assert!(
        stdout.contains("sent 3 datagrams") && stdout.contains("3 echoes"),
        "{stdout}"
    );
    let lines = server.received(3);
    assert_eq!(lines.len(), 3, "{lines:?}");
    for want in [
        "len=16 data=first datagram\\x00\\xff",
        "len=8 data=line one",
        "len=8 data=line two",
    ] {
        assert!(
            lines.iter().any(|l| l.ends_with(want)),
            "{want} in {lines:?}"
        );
    }
    assert!(lines.iter().all(|l| l.starts_with("from=127.0.0.1:")));
}

#[test]
fn echo_with_the_reference_profile() {
    echo_round_trip(&[]);
}

#[test]
fn echo_with_a_six_byte_magic_and_two_byte_types() {
    echo_round_trip(WIDE);
}

#[test]
fn a_mismatched_profile_is_not_confirmed() {
    let server = Server::start(WIDE);
    let to = format!("127.0.0.1:{}", server.port);
    let o = send(
        &["--to", &to, "--timeout", "1.5", "-"],
        b"nobody hears this\n",
    );
    assert_eq!(o.status.code(), Some(3), "{}", describe(&o));
    let stderr = String::from_utf8_lossy(&o.stderr);
    assert!(
        stderr.contains("1 of 1 datagrams not confirmed") && stderr.contains("stdin line 1"),
        "{stderr}"
    );
    assert!(server.received(1).is_empty());
}

#[test]
fn bad_profiles_are_usage_errors() {
    let o = send(&["--to", "127.0.0.1:9", "--types", "1d,5f", "-"], b"");
    assert_eq!(o.status.code(), Some(2), "{}", describe(&o));
    let o = send(&["--to", "127.0.0.1:9", "--types", "1d,5f5f,ae", "-"], b"");
    assert_eq!(o.status.code(), Some(2), "{}", describe(&o));
    let o = send(&["--to", "127.0.0.1:9", "--magic", "xyz", "-"], b"");
    assert_eq!(o.status.code(), Some(2), "{}", describe(&o));
}
