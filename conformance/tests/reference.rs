//! Our stack passes every case: our exposer (in process, our driver over our UDP link),
//! our puller (the `rgtp pull` binary through `--cmd`), and our librgtp.so (C ABI and the
//! published Python package). Also the command's reports and usage errors.

mod common;

use std::process::Command;
use std::time::Duration;

use common::*;
use rgtp::{ExposerBuilder, FecSpec};
use rgtp_conformance::{Outcome, Selection, Verdict};
use rgtp_proto::ExposerConfig;

fn assert_all_pass(what: &str, out: &[Outcome]) {
    print!("{}", rgtp_conformance::report::table(out));
    let bad: Vec<String> = out
        .iter()
        .filter(|o| o.verdict != Verdict::Pass)
        .map(|o| format!("{} {:?}: {}", o.info.id, o.verdict, o.detail))
        .collect();
    assert!(!out.is_empty(), "{what}: no case ran");
    assert!(
        bad.is_empty(),
        "{what}: not every case passed:\n{}",
        bad.join("\n")
    );
}

#[test]
fn our_exposer_passes_every_case_with_reed_solomon() {
    let ours = serve_ours(
        &bytes(100_003, 1),
        ExposerBuilder::new().with_fec(FecSpec::ReedSolomon { n: 6, k: 4 }),
        ExposerConfig::default(),
    );
    let out =
        rgtp_conformance::run_exposer(ours.addr, ours.ticket.clone(), QUIET, &Selection::default());
    assert_all_pass("our exposer (AES-GCM, SHA-256, RS)", &out);
    assert_eq!(out.len(), rgtp_conformance::cases::exposer::CASES.len());
}

#[test]
fn our_exposer_passes_every_case_upstream_suite_proofs_raptorq() {
    let ours = serve_ours(
        &bytes(40_000, 2),
        ExposerBuilder::upstream()
            .with_proofs(true)
            .with_chunk_size(700)
            .with_fec(FecSpec::RaptorQ { n: 12, k: 8 }),
        ExposerConfig::default(),
    );
    let out =
        rgtp_conformance::run_exposer(ours.addr, ours.ticket.clone(), QUIET, &Selection::default());
    assert_all_pass("our exposer (ChaCha, BLAKE2b, proofs, RaptorQ)", &out);
}

#[test]
fn our_puller_passes_every_case() {
    let rgtp = built("rgtp", &["build", "-p", "rgtp-cli", "--bin", "rgtp"]);
    let cmd = format!(
        "'{}' pull {{ticket}} -o {{out}} {{proofs}} -q --connect-timeout 2 --idle-timeout 3",
        rgtp.display()
    );
    let out = rgtp_conformance::run_puller(
        &cmd,
        Duration::from_secs(30),
        200_000,
        &Selection::default(),
    );
    assert_all_pass("rgtp pull", &out);
    assert_eq!(out.len(), rgtp_conformance::cases::puller::CASES.len());
}

#[test]
fn our_library_passes_abi_and_python_cases() {
    let lib = built("librgtp.so", &["build", "-p", "rgtp-ffi"]);
    let out = rgtp_conformance::run_abi(&lib, &Selection::default());
    assert_all_pass("librgtp.so (ABI)", &out);
    let venv = profile_dir()
        .parent()
        .unwrap()
        .join("rgtp-conformance-py")
        .join("venv");
    let out = rgtp_conformance::run_python(&lib, None, &venv, &Selection::default());
    assert_all_pass("librgtp.so (published Python package)", &out);
}

#[test]
fn command_reports_selection_and_usage_errors() {
    let bin = env!("CARGO_BIN_EXE_rgtp-conformance");
    let dir = tempfile::tempdir().unwrap();
    let ours = serve_ours(
        &bytes(5_000, 3),
        ExposerBuilder::new(),
        ExposerConfig::default(),
    );
    let (junit, json) = (dir.path().join("r.xml"), dir.path().join("r.json"));
    let st = Command::new(bin)
        .args(["--only", "EXP-00,EXP-011", "--skip", "EXP-008", "--junit"])
        .arg(&junit)
        .arg("--json")
        .arg(&json)
        .args([
            "exposer",
            "--quiet-ms",
            "150",
            "--ticket",
            &ours.ticket.to_string(),
        ])
        .output()
        .unwrap();
    let table = String::from_utf8_lossy(&st.stdout);
    assert_eq!(st.status.code(), Some(0), "{table}");
    assert!(
        table.contains("EXP-001")
            && table.contains("EXP-011")
            && !table.contains("EXP-008")
            && !table.contains("EXP-020"),
        "{table}"
    );
    let j = std::fs::read_to_string(&json).unwrap();
    assert!(
        j.contains("\"id\":\"EXP-007\"")
            && j.contains("\"must_failed\":false")
            && j.contains("\"failed\":0"),
        "{j}"
    );
    let x = std::fs::read_to_string(&junit).unwrap();
    assert!(
        x.starts_with("<?xml") && x.contains("<testsuite ") && x.contains("EXP-011"),
        "{x}"
    );
    // Every target exists: a capture is judged (tests/capture.rs), and raw Ethernet
    // (tests/eth.rs) needs an interface that exists: usage error otherwise.
    let st = Command::new(bin)
        .args(["pcap", "/nonexistent.pcap"])
        .output()
        .unwrap();
    assert_eq!(st.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&st.stderr).contains("cannot read"));
    let st = Command::new(bin)
        .args([
            "exposer",
            "02-00-5e-10-00-01",
            "--link",
            "eth:rgtp-absent0",
            "--ticket",
            &ours.ticket.to_string(),
        ])
        .output()
        .unwrap();
    assert_eq!(st.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&st.stderr).contains("rgtp-absent0"));
    // A dead address: every selected MUST case fails, exit 1.
    let dead = std::net::UdpSocket::bind("127.0.0.1:0").unwrap();
    let mut t = ours.ticket.clone();
    t.port = dead.local_addr().unwrap().port();
    let st = Command::new(bin)
        .args(["--only", "EXP-001", "exposer", "--ticket", &t.to_string()])
        .output()
        .unwrap();
    assert_eq!(
        st.status.code(),
        Some(1),
        "{}",
        String::from_utf8_lossy(&st.stdout)
    );
    let st = Command::new(bin).arg("list").output().unwrap();
    let list = String::from_utf8_lossy(&st.stdout);
    for id in [
        "EXP-012", "PUL-020", "ABI-003", "PY-004", "CAP-030", "CAP-107",
    ] {
        assert!(list.contains(id), "{list}");
    }
}
