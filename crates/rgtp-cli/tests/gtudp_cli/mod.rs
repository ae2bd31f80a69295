//! What the `rgtp gtudp` CLI tests share: a `rgtp gtudp serve --echo` child and
//! a bounded `rgtp gtudp send`. Each test binary uses part of it.
#![allow(dead_code)]

use std::io::{BufRead, BufReader, Read, Write};
use std::process::{Child, Command, Output, Stdio};
use std::sync::mpsc;
use std::thread;
use std::time::{Duration, Instant};

pub const BIN: &str = env!("CARGO_BIN_EXE_rgtp");
pub const CHILD_LIMIT: Duration = Duration::from_secs(60);

/// A running `rgtp gtudp serve --echo`; its stdout lines arrive on `lines`.
pub struct Server {
    child: Child,
    pub port: u16,
    lines: mpsc::Receiver<String>,
}

impl Server {
    pub fn start(extra: &[&str]) -> Server {
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

    pub fn to(&self) -> String {
        format!("127.0.0.1:{}", self.port)
    }

    /// Lines printed so far, waiting up to a second for `n` of them.
    pub fn received(&self, n: usize) -> Vec<String> {
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
    pub fn stop(mut self) -> String {
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
pub fn send(args: &[&str], stdin: &[u8]) -> Output {
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

pub fn describe(o: &Output) -> String {
    format!(
        "{:?}\n--- stdout ---\n{}\n--- stderr ---\n{}",
        o.status,
        String::from_utf8_lossy(&o.stdout),
        String::from_utf8_lossy(&o.stderr)
    )
}
