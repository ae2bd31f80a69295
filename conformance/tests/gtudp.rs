//! The GTU cases pass against `rgtp gtudp serve --echo`, in the reference profile and in a
//! 6-byte-magic, 2-byte-type profile (started by the harness with `--cmd`), and fail
//! where a receiver with the reference implementation's faults breaks the spec.

use std::collections::HashSet;
use std::net::UdpSocket;
use std::path::PathBuf;
use std::process::{Command, Stdio};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
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

const ALL: [&str; 9] = [
    "GTU-001", "GTU-002", "GTU-003", "GTU-004", "GTU-005", "GTU-006", "GTU-007", "GTU-008",
    "GTU-009",
];

/// The case ids the report marks FAIL.
fn failing(text: &str) -> Vec<&str> {
    ALL.into_iter()
        .filter(|id| {
            text.lines()
                .any(|l| l.starts_with(id) && l.contains(" FAIL "))
        })
        .collect()
}

fn assert_all_pass(out: &std::process::Output) {
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(out.status.success(), "{text}");
    for id in ALL {
        assert!(
            text.lines()
                .any(|l| l.starts_with(id) && l.contains("PASS")),
            "{id} did not pass:\n{text}"
        );
    }
}

#[test]
fn reference_profile_passes() {
    let port = free_port();
    let bind = format!("127.0.0.1:{port}");
    let mut server = Command::new(rgtp())
        .args(["gtudp", "serve", "--bind", &bind, "--echo"])
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("rgtp gtudp serve (build rgtp-cli first)");
    std::thread::sleep(Duration::from_millis(500));
    let out = Command::new(conformance())
        .args(["gtudp", &bind, "--echo"])
        .output()
        .expect("rgtp-conformance");
    let _ = server.kill();
    let _ = server.wait();
    assert_all_pass(&out);
}

#[test]
fn six_byte_magic_two_byte_types_passes_when_the_harness_starts_the_server() {
    let profile = ["--magic", "524721676e74", "--types", "0101,0202,0303"];
    let cmd = format!(
        "exec {} gtudp serve --bind 127.0.0.1:{{port}} --echo {}",
        rgtp().display(),
        profile.join(" ")
    );
    let out = Command::new(conformance())
        .args(["gtudp", "--echo", "--cmd", &cmd])
        .args(profile)
        .output()
        .expect("rgtp-conformance");
    assert_all_pass(&out);
}

/// A gtUDP echo receiver with the reference implementation's faults (spec §7): it
/// answers datagrams too short for an identity, keys identities without the peer,
/// forgets an identity at its ACK (so a later copy is delivered again), and sends each
/// RECV once, never repeating it. Serves until `stop`.
fn faulty_receiver(stop: Arc<AtomicBool>) -> (String, std::thread::JoinHandle<()>) {
    let s = UdpSocket::bind("127.0.0.1:0").unwrap();
    s.set_read_timeout(Some(Duration::from_millis(50))).unwrap();
    let addr = s.local_addr().unwrap().to_string();
    let h = std::thread::spawn(move || {
        let mut open: HashSet<[u8; 4]> = HashSet::new();
        let mut next = 0x5eed_0000u32;
        let mut buf = vec![0u8; 65_536];
        while !stop.load(Ordering::Relaxed) {
            let Ok((n, from)) = s.recv_from(&mut buf) else {
                continue;
            };
            let d = &buf[..n];
            let Some((&kind, rest)) = d.split_first() else {
                continue;
            };
            let mut id = [0u8; 4];
            let k = rest.len().min(4);
            id[..k].copy_from_slice(&rest[..k]);
            let payload = &rest[k..];
            let reply = |kind: u8, id: [u8; 4], payload: &[u8]| {
                let mut v = vec![kind];
                v.extend_from_slice(&id);
                v.extend_from_slice(payload);
                let _ = s.send_to(&v, from);
            };
            match kind {
                0x1d => {
                    reply(0x5f, id, &[]);
                    if open.insert(id) {
                        next = next.wrapping_add(1);
                        reply(0x1d, next.to_be_bytes(), payload);
                    }
                }
                0x5f => reply(0xae, id, &[]),
                0xae => {
                    open.remove(&id);
                }
                _ => {}
            }
        }
    });
    (addr, h)
}

#[test]
fn a_receiver_with_the_reference_faults_fails_the_cases_that_name_them() {
    let stop = Arc::new(AtomicBool::new(false));
    let (addr, h) = faulty_receiver(stop.clone());
    let out = Command::new(conformance())
        .args(["gtudp", &addr, "--echo"])
        .output()
        .expect("rgtp-conformance");
    stop.store(true, Ordering::Relaxed);
    h.join().unwrap();
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(!out.status.success(), "{text}");
    assert_eq!(
        failing(&text),
        ["GTU-003", "GTU-005", "GTU-006", "GTU-009"],
        "{text}"
    );
}
