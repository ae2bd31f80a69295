//! The GTU cases pass against `rgtp gtudp serve --echo`, in the reference profile and in a
//! 6-byte-magic, 2-byte-type profile.

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
    let s = std::net::UdpSocket::bind("127.0.0.1:0").expect("bind");
    s.local_addr().expect("addr").port()
}

fn run_against_ours(profile: &[&str]) {
    let port = free_port();
    let bind = format!("127.0.0.1:{port}");
    let mut server = Command::new(rgtp())
        .args(["gtudp", "serve", "--bind", &bind, "--echo"])
        .args(profile)
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("rgtp gtudp serve (build rgtp-cli first)");
    std::thread::sleep(Duration::from_millis(500));
    let out = Command::new(conformance())
        .args(["gtudp", &bind, "--echo"])
        .args(profile)
        .output()
        .expect("rgtp-conformance");
    let _ = server.kill();
    let _ = server.wait();
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(out.status.success(), "{text}");
    for id in [
        "GTU-001", "GTU-002", "GTU-003", "GTU-004", "GTU-005", "GTU-006",
    ] {
        assert!(
            text.lines()
                .any(|l| l.starts_with(id) && l.contains("PASS")),
            "{id} did not pass:\n{text}"
        );
    }
}

#[test]
fn reference_profile_passes() {
    run_against_ours(&[]);
}

#[test]
fn six_byte_magic_two_byte_types_passes() {
    run_against_ours(&["--magic", "524721676e74", "--types", "0101,0202,0303"]);
}
