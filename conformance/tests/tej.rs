//! The TEJ cases pass against `rgtp tej serve --echo`, and a server that only copies
//! bytes back without checking them fails exactly the cases about refusing bad frames.

use std::io::{Read, Write};
use std::net::TcpListener;
use std::path::PathBuf;
use std::process::{Command, Stdio};
use std::time::Duration;

fn conformance() -> PathBuf {
    PathBuf::from(env!("CARGO_BIN_EXE_rgtp-conformance"))
}

fn rgtp() -> PathBuf {
    conformance().with_file_name("rgtp")
}

fn free_port() -> u16 {
    let s = TcpListener::bind("127.0.0.1:0").expect("bind");
    s.local_addr().expect("addr").port()
}

/// Runs the TEJ cases against `addr`: exit status and the report.
fn run_cases(addr: &str, extra: &[&str]) -> (Option<i32>, String) {
    let out = Command::new(conformance())
        .args(["tej", addr])
        .args(extra)
        .output()
        .expect("rgtp-conformance");
    (
        out.status.code(),
        String::from_utf8_lossy(&out.stdout).into_owned(),
    )
}

fn verdict<'a>(report: &'a str, id: &str) -> &'a str {
    let line = report
        .lines()
        .find(|l| l.starts_with(id))
        .unwrap_or_else(|| panic!("{id} missing:\n{report}"));
    ["PASS", "FAIL", "n/a", "SKIP"]
        .into_iter()
        .find(|v| line.contains(v))
        .unwrap_or("?")
}

#[test]
fn every_case_passes_against_our_echo_server() {
    let port = free_port();
    let bind = format!("127.0.0.1:{port}");
    let mut server = Command::new(rgtp())
        .args(["tej", "serve", "--bind", &bind, "--echo"])
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("rgtp tej serve (build rgtp-cli first)");
    std::thread::sleep(Duration::from_millis(500));
    let (code, report) = run_cases(&bind, &["--echo"]);
    let _ = server.kill();
    let _ = server.wait();
    assert_eq!(code, Some(0), "{report}");
    for i in 1..=9 {
        let id = format!("TEJ-00{i}");
        assert_eq!(verdict(&report, &id), "PASS", "{id}:\n{report}");
    }
}

#[test]
fn the_harness_starts_and_stops_a_server_command() {
    let cmd = format!(
        "exec {} tej serve --bind 127.0.0.1:{{port}} --echo",
        rgtp().display()
    );
    let out = Command::new(conformance())
        .args(["tej", "--echo", "--cmd", &cmd])
        .output()
        .expect("rgtp-conformance");
    let report = String::from_utf8_lossy(&out.stdout);
    assert_eq!(out.status.code(), Some(0), "{report}");
    for i in 1..=9 {
        let id = format!("TEJ-00{i}");
        assert_eq!(verdict(&report, &id), "PASS", "{id}:\n{report}");
    }
    // An implementation without a TEJ server says so with exit 127: every case n/a.
    let out = Command::new(conformance())
        .args(["tej", "--cmd", "exit 127 # {port}"])
        .output()
        .expect("rgtp-conformance");
    let report = String::from_utf8_lossy(&out.stdout);
    assert_eq!(verdict(&report, "TEJ-001"), "n/a", "{report}");
}

#[test]
fn a_server_that_copies_bytes_back_unchecked_fails_the_refusal_cases() {
    let listener = TcpListener::bind("127.0.0.1:0").expect("bind");
    let addr = listener.local_addr().expect("addr").to_string();
    std::thread::spawn(move || {
        for conn in listener.incoming() {
            let Ok(mut c) = conn else { continue };
            std::thread::spawn(move || {
                let mut buf = [0u8; 65_536];
                while let Ok(n) = c.read(&mut buf) {
                    if n == 0 || c.write_all(&buf[..n]).is_err() {
                        break;
                    }
                }
            });
        }
    });
    let (code, report) = run_cases(&addr, &["--echo", "--wait-ms", "300"]);
    assert_ne!(code, Some(0), "a failing MUST must fail the run:\n{report}");
    for id in ["TEJ-006", "TEJ-007"] {
        assert_eq!(verdict(&report, id), "FAIL", "{id}:\n{report}");
    }
    for id in [
        "TEJ-001", "TEJ-002", "TEJ-003", "TEJ-004", "TEJ-008", "TEJ-009",
    ] {
        assert_eq!(verdict(&report, id), "PASS", "{id}:\n{report}");
    }
}
