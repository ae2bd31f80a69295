//! The exposer cases over raw Ethernet: `rgtp expose --link eth:VETH_A` in one network
//! namespace, the harness on the other end of a veth pair (`--link eth:VETH_B`).
//!
//! Runs as root on Linux (network namespaces and raw sockets), like the link's own
//! tests; the namespaces and the exposer are removed when the test ends, also when it
//! fails.
#![cfg(target_os = "linux")]

mod common;
#[path = "../../crates/rgtp-link/tests/netns/mod.rs"]
mod netns;

use std::io::{BufRead, BufReader};
use std::process::{Child, Command, Stdio};
use std::sync::mpsc;
use std::time::Duration;

use common::*;
use netns::VethPair;
use rgtp::Ticket;
use rgtp_conformance::net::Endpoint;
use rgtp_conformance::{Selection, Verdict};

/// Kills and reaps the child when dropped.
struct Running(Child);

impl Drop for Running {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// Starts `rgtp expose FILE --link eth:IFACE -q ARGS` inside the pair's namespace `a`
/// and returns it with the ticket it printed.
fn expose_on(pair: &VethPair, file: &std::path::Path, args: &[&str]) -> (Running, Ticket) {
    let rgtp = built("rgtp", &["build", "-p", "rgtp-cli", "--bin", "rgtp"]);
    let link = format!("eth:{}", pair.a_if);
    let mut child = pair
        .a
        .command(rgtp.to_str().expect("UTF-8 path"))
        .arg("expose")
        .arg(file)
        .args(["--link", &link, "-q"])
        .args(args)
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("ip netns exec rgtp expose");
    let stdout = child.stdout.take().expect("piped");
    let mut stderr = child.stderr.take().expect("piped");
    let running = Running(child);
    let (tx, rx) = mpsc::channel();
    std::thread::spawn(move || {
        let mut line = String::new();
        let _ = BufReader::new(stdout).read_line(&mut line);
        let _ = tx.send(line);
    });
    let line = rx.recv_timeout(Duration::from_secs(60)).unwrap_or_default();
    if line.trim().is_empty() {
        drop(running);
        let mut err = String::new();
        let _ = std::io::Read::read_to_string(&mut stderr, &mut err);
        panic!("rgtp expose --link {link} printed no ticket; stderr: {err}");
    }
    let ticket: Ticket = line
        .trim()
        .parse()
        .unwrap_or_else(|e| panic!("bad ticket {line:?}: {e}"));
    (running, ticket)
}

#[test]
fn exposer_cases_pass_over_raw_ethernet() {
    let pair = VethPair::new();
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("data.bin");
    std::fs::write(&file, bytes(60_001, 4)).unwrap();
    let (_exposer, ticket) = expose_on(&pair, &file, &["--fec", "rs:6,4"]);
    assert_eq!(
        ticket.mac,
        Some(pair.a_mac()),
        "the ticket names the exposer's MAC: {ticket}"
    );

    // In process, the link opened inside namespace b.
    let iface = pair.b_if.clone();
    let mac = ticket.mac.unwrap();
    let endpoint = pair
        .b
        .run(move || Endpoint::eth(&iface, mac))
        .expect("raw Ethernet in namespace b");
    let out =
        rgtp_conformance::run_exposer_on(endpoint, ticket.clone(), QUIET, &Selection::default());
    print!("{}", rgtp_conformance::report::table(&out));
    assert_eq!(out.len(), rgtp_conformance::cases::exposer::CASES.len());
    let bad: Vec<String> = out
        .iter()
        .filter(|o| o.verdict == Verdict::Fail)
        .map(|o| format!("{}: {}", o.info.id, o.detail))
        .collect();
    assert!(
        bad.is_empty(),
        "failed over raw Ethernet:\n{}",
        bad.join("\n")
    );
    // Only what cannot be done with one MAC and frames of at most the MTU is n/a.
    let skipped: Vec<&str> = out
        .iter()
        .filter(|o| o.verdict == Verdict::Skip)
        .map(|o| o.info.id)
        .collect();
    assert_eq!(skipped, ["EXP-042", "EXP-056"], "{out:#?}");

    // The command, inside namespace b: the MAC comes from the ticket.
    let bin = env!("CARGO_BIN_EXE_rgtp-conformance");
    let link = format!("eth:{}", pair.b_if);
    let st = pair
        .b
        .command(bin)
        .args(["--only", "EXP-00,EXP-02", "exposer", "--quiet-ms", "150"])
        .args(["--ticket", &ticket.to_string(), "--link", &link])
        .output()
        .unwrap();
    let table = String::from_utf8_lossy(&st.stdout);
    assert_eq!(
        st.status.code(),
        Some(0),
        "{table}{}",
        String::from_utf8_lossy(&st.stderr)
    );
    assert!(
        table.contains("EXP-001") && table.contains("EXP-029"),
        "{table}"
    );
    // An explicit MAC that is not the exposer's: nothing answers, every case fails.
    let st = pair
        .b
        .command(bin)
        .args(["--only", "EXP-001", "exposer", "02-00-5e-00-00-99"])
        .args(["--ticket", &ticket.to_string(), "--link", &link])
        .output()
        .unwrap();
    assert_eq!(
        st.status.code(),
        Some(1),
        "{}",
        String::from_utf8_lossy(&st.stdout)
    );
}

#[test]
fn exposer_cases_pass_over_a_vlan() {
    let pair = VethPair::new();
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("data.bin");
    std::fs::write(&file, bytes(30_000, 5)).unwrap();
    let (_exposer, ticket) = expose_on(&pair, &file, &["--vlan", "42", "--pcp", "4"]);
    let bin = env!("CARGO_BIN_EXE_rgtp-conformance");
    let link = format!("eth:{}", pair.b_if);
    let run = |extra: &[&str]| {
        pair.b
            .command(bin)
            .args([
                "--only",
                "EXP-001,EXP-010,EXP-020",
                "exposer",
                "--quiet-ms",
                "150",
            ])
            .args(["--ticket", &ticket.to_string(), "--link", &link])
            .args(extra)
            .output()
            .unwrap()
    };
    // Probes on the exposer's VLAN are answered.
    let st = run(&["--vlan", "42", "--pcp", "4"]);
    assert_eq!(
        st.status.code(),
        Some(0),
        "{}{}",
        String::from_utf8_lossy(&st.stdout),
        String::from_utf8_lossy(&st.stderr)
    );
    // Untagged probes never reach a tagged exposer: the cases fail.
    let st = run(&[]);
    assert_eq!(
        st.status.code(),
        Some(1),
        "{}",
        String::from_utf8_lossy(&st.stdout)
    );
}

#[test]
fn ethernet_link_usage_errors() {
    let bin = env!("CARGO_BIN_EXE_rgtp-conformance");
    let udp_ticket = "rgtp://127.0.0.1:9/00112233445566778899aabbccddeeff#000102030405060708090a0b0c0d0e0f101112131415161718191a1b1c1d1e1f";
    // A UDP ticket over Ethernet needs the MAC given.
    let st = Command::new(bin)
        .args(["exposer", "--ticket", udp_ticket, "--link", "eth:lo"])
        .output()
        .unwrap();
    assert_eq!(st.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&st.stderr).contains("MAC"));
    // No such interface.
    let st = Command::new(bin)
        .args(["exposer", "02-00-5e-10-00-01", "--ticket", udp_ticket])
        .args(["--link", "eth:rgtp-no-such0"])
        .output()
        .unwrap();
    assert_eq!(st.status.code(), Some(2));
    assert!(
        String::from_utf8_lossy(&st.stderr).contains("rgtp-no-such0"),
        "{}",
        String::from_utf8_lossy(&st.stderr)
    );
    // A VLAN tag over UDP is a usage error naming the fix.
    let st = Command::new(bin)
        .args(["exposer", "--ticket", udp_ticket, "--vlan", "5"])
        .output()
        .unwrap();
    assert_eq!(st.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&st.stderr).contains("--link eth"));
}
