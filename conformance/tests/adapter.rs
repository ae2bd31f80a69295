//! The example adapter of interop/c/conformance-adapter (a C program on the upstream
//! header's symbols only), built here with make and gcc against our librgtp.so, run
//! through the command contract as a puller and as an exposer.

mod common;

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Duration;

use common::*;
use rgtp_conformance::{failing_ids, ExposerCommand, Selection, Verdict};

/// Builds the adapter into `out` against the librgtp.so in `libdir`.
fn build_adapter(libdir: &Path, out: &Path) -> PathBuf {
    let src = Path::new(env!("CARGO_MANIFEST_DIR")).join("../interop/c/conformance-adapter");
    let st = Command::new("make")
        .arg("-C")
        .arg(&src)
        .arg(format!("RGTP_LIBDIR={}", libdir.display()))
        .arg(format!("OUT={}", out.display()))
        .arg("CC=gcc")
        .status()
        .expect("make");
    assert!(st.success(), "make failed on the adapter");
    let exe = out.join("adapter");
    assert!(exe.exists());
    exe
}

fn adapter() -> (tempfile::TempDir, PathBuf) {
    let lib = built("librgtp.so", &["build", "-p", "rgtp-ffi"]);
    let dir = tempfile::tempdir().unwrap();
    let exe = build_adapter(lib.parent().unwrap(), dir.path());
    let nm = Command::new("nm")
        .args(["-D", "--undefined-only"])
        .arg(&exe)
        .output();
    if let Ok(nm) = nm {
        let syms = String::from_utf8_lossy(&nm.stdout);
        for extra in [
            "rgtp_get_ticket",
            "rgtp_get_key",
            "rgtp_pull_start_ticket",
            "rgtp_pull_start_with_key",
            "rgtp_expose_with_key",
            "rgtp_get_manifest_info",
        ] {
            assert!(!syms.contains(extra), "the adapter calls {extra}");
        }
    }
    (dir, exe)
}

#[test]
fn adapter_as_a_puller() {
    let (_dir, exe) = adapter();
    let cmd = format!("'{}' pull {{ticket}} {{out}} {{proofs}}", exe.display());
    let out = rgtp_conformance::run_puller(
        &cmd,
        Duration::from_secs(30),
        200_000,
        &Selection::default(),
    );
    print!("{}", rgtp_conformance::report::table(&out));
    assert_eq!(out.len(), rgtp_conformance::cases::puller::CASES.len());
    // The upstream rgtp_pull_start takes no suite, so the ticket's pins cannot reach the
    // library and a Manifest with another suite is accepted: the one failure, and the
    // reason a pull through the upstream header alone is weaker than with a ticket.
    let expected: BTreeSet<String> = ["PUL-025".to_string()].into();
    assert_eq!(failing_ids(&out), expected);
    assert!(out.iter().all(|o| o.verdict != Verdict::Skip));
}

#[test]
fn adapter_as_an_exposer() {
    let (_dir, exe) = adapter();
    let cmd = ExposerCommand {
        template: format!("'{}' expose {{file}} {{port}}", exe.display()),
        ticket_file: None,
        size: 100_000,
        start_timeout: Duration::from_secs(20),
    };
    let out = rgtp_conformance::run_exposer_cmd(&cmd, QUIET, &Selection::default());
    print!("{}", rgtp_conformance::report::table(&out));
    assert_eq!(out.len(), rgtp_conformance::cases::exposer::CASES.len());
    assert!(failing_ids(&out).is_empty());
    assert!(!rgtp_conformance::report::must_failed(&out));
}

#[test]
fn exit_127_is_unsupported() {
    // A puller command that exits 127 makes each case n/a, and so does an exposer
    // command that exits 127 before giving a ticket.
    let sel = Selection {
        only: vec!["PUL-001".into(), "PUL-020".into()],
        ..Selection::default()
    };
    let out = rgtp_conformance::run_puller(
        "exit 127 {ticket} {out}",
        Duration::from_secs(10),
        1000,
        &sel,
    );
    assert_eq!(out.len(), 2);
    for o in &out {
        assert_eq!(o.verdict, Verdict::Skip, "{}", o.detail);
        assert!(o
            .detail
            .starts_with("n/a: unsupported by the implementation"));
    }
    let cmd = ExposerCommand {
        template: "exit 127 {file} {port}".into(),
        ticket_file: None,
        size: 1000,
        start_timeout: Duration::from_secs(10),
    };
    let out = rgtp_conformance::run_exposer_cmd(&cmd, QUIET, &Selection::default());
    assert_eq!(out.len(), rgtp_conformance::cases::exposer::CASES.len());
    assert!(out.iter().all(|o| o.verdict == Verdict::Skip
        && o.detail
            .starts_with("n/a: unsupported by the implementation")));
    // Any other early exit is a failure of every case.
    let cmd = ExposerCommand {
        template: "echo no ticket here {file} {port}; exit 3".into(),
        ..cmd
    };
    let out = rgtp_conformance::run_exposer_cmd(&cmd, QUIET, &Selection::default());
    assert!(out
        .iter()
        .all(|o| o.verdict == Verdict::Fail && o.detail.starts_with("setup: ")));
}

#[test]
fn exposer_command_with_a_ticket_file() {
    let rgtp = built("rgtp", &["build", "-p", "rgtp-cli", "--bin", "rgtp"]);
    let dir = tempfile::tempdir().unwrap();
    let tf = dir.path().join("ticket.txt");
    let cmd = ExposerCommand {
        template: format!(
            "'{}' expose {{file}} --port {{port}} -q > '{}'",
            rgtp.display(),
            tf.display()
        ),
        ticket_file: Some(tf),
        size: 50_000,
        start_timeout: Duration::from_secs(20),
    };
    let sel = Selection {
        only: vec!["EXP-00".into()],
        ..Selection::default()
    };
    let out = rgtp_conformance::run_exposer_cmd(&cmd, QUIET, &sel);
    print!("{}", rgtp_conformance::report::table(&out));
    assert!(!out.is_empty());
    assert!(failing_ids(&out).is_empty());
}
