//! `rgtp gtudp serve|send --key`: the authenticated profile between two
//! processes over loopback UDP, with the same key and with different keys.
//!
//! Every child is bounded in time: the server is stopped at the end of each
//! test, and a sender that outlives its limit is killed and fails the test.

use std::io::{BufRead, BufReader, Read, Write};
use std::process::{Child, Command, Output, Stdio};
use std::sync::mpsc;
use std::thread;
use std::time::{Duration, Instant};

const BIN: &str = env!("CARGO_BIN_EXE_rgtp");
const CHILD_LIMIT: Duration = Duration::from_secs(60);
const KEY: &str = "000102030405060708090a0b0c0d0e0f101112131415161718191a1b1c1d1e1f";
const OTHER: &str = "ff0102030405060708090a0b0c0d0e0f101112131415161718191a1b1c1d1e1f";

/// A running `rgtp gtudp serve --echo`; its stdout lines arrive on `lines`.
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
            .stderr(Stdio::piped())
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

    fn to(&self) -> String {
        format!("127.0.0.1:{}", self.port)
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

    /// Stops the server with SIGINT and returns its summary (stderr).
    fn stop(mut self) -> String {
        let pid = self.child.id().to_string();
        let status = Command::new("kill").args(["-INT", &pid]).status().unwrap();
        assert!(status.success());
        let mut err = String::new();
        let mut stderr = self.child.stderr.take().unwrap();
        let reader = thread::spawn(move || {
            let _ = stderr.read_to_string(&mut err);
            err
        });
        let start = Instant::now();
        while self.child.try_wait().unwrap().is_none() {
            if start.elapsed() > CHILD_LIMIT {
                let _ = self.child.kill();
                panic!("rgtp gtudp serve did not stop on SIGINT");
            }
            thread::sleep(Duration::from_millis(20));
        }
        reader.join().unwrap()
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

#[test]
fn the_same_key_on_both_sides_echoes_every_datagram() {
    let server = Server::start(&["--key", KEY]);
    let dir = std::env::temp_dir().join(format!("rgtp-gtudp-auth-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let key_file = dir.join("key");
    std::fs::write(&key_file, format!("{KEY}\n")).unwrap();
    let o = send(
        &[
            "--to",
            &server.to(),
            "--key-file",
            key_file.to_str().unwrap(),
            "--expect-echo",
            "-",
        ],
        b"first sealed\nsecond sealed\n",
    );
    assert!(o.status.success(), "{}", describe(&o));
    let stdout = String::from_utf8_lossy(&o.stdout);
    assert!(
        stdout.contains("sent 2 datagrams") && stdout.contains("2 echoes"),
        "{stdout}"
    );
    // Datagrams may arrive in either order and their identities are random:
    // compare the payloads as a set.
    let lines = server.received(2);
    assert_eq!(lines.len(), 2, "{lines:?}");
    let mut payloads: Vec<&str> = lines
        .iter()
        .map(|l| l.split_once(" data=").map_or("", |(_, d)| d))
        .collect();
    payloads.sort();
    assert_eq!(payloads, ["first sealed", "second sealed"], "{lines:?}");
    let summary = server.stop();
    assert!(
        summary.contains("2 delivered") && summary.contains(", 0 rejected"),
        "{summary}"
    );
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn another_key_delivers_nothing_and_the_receiver_counts_rejections() {
    let server = Server::start(&["--key", KEY]);
    let o = send(
        &[
            "--to",
            &server.to(),
            "--key",
            OTHER,
            "--timeout",
            "1.5",
            "-",
        ],
        b"forged\n",
    );
    assert_eq!(o.status.code(), Some(3), "{}", describe(&o));
    let stderr = String::from_utf8_lossy(&o.stderr);
    assert!(
        stderr.contains("1 of 1 datagrams not confirmed"),
        "{stderr}"
    );
    assert!(server.received(1).is_empty());
    let summary = server.stop();
    assert!(summary.contains("0 delivered"), "{summary}");
    // Every copy the sender made was refused; it sent at least one.
    let rejected: u64 = summary
        .split(", ")
        .find_map(|p| p.split_once(" rejected ("))
        .and_then(|(n, _)| n.parse().ok())
        .unwrap_or_else(|| panic!("no rejection count in {summary:?}"));
    assert!(
        summary.contains(&format!("({rejected} forged or under another key")),
        "{summary}"
    );
    assert!(rejected >= 1, "{summary}");
}

#[test]
fn bad_keys_are_usage_errors() {
    let o = send(&["--to", "127.0.0.1:9", "--key", "abcd", "-"], b"");
    assert_eq!(o.status.code(), Some(2), "{}", describe(&o));
    let stderr = String::from_utf8_lossy(&o.stderr);
    assert!(stderr.contains("64 hexadecimal digits"), "{stderr}");
    let bad = "zz".repeat(32);
    let o = send(&["--to", "127.0.0.1:9", "--key", &bad, "-"], b"");
    assert_eq!(o.status.code(), Some(2), "{}", describe(&o));
    let o = send(
        &["--to", "127.0.0.1:9", "--key-file", "/nonexistent/key", "-"],
        b"",
    );
    assert_eq!(o.status.code(), Some(2), "{}", describe(&o));
    assert!(String::from_utf8_lossy(&o.stderr).contains("cannot read"));
}
