//! `rgtp sweep` on a tiny plan, and on a bad one.

use std::fs;
use std::process::Command;

const BIN: &str = env!("CARGO_BIN_EXE_rgtp");

const PLAN: &str = r#"name = "tiny"
size = "16KiB"
seeds = [1, 2]

[variants]
fec = ["none", "rs:20,16"]

[scenarios]
loss = [0.0, 0.05]
delay_ms = 2
"#;

#[test]
fn sweep_writes_results() {
    let dir = tempfile::tempdir().unwrap();
    let plan = dir.path().join("plan.toml");
    fs::write(&plan, PLAN).unwrap();
    let out = dir.path().join("out");
    let r = Command::new(BIN)
        .arg("sweep")
        .arg(&plan)
        .arg("--out")
        .arg(&out)
        .args(["--jobs", "2", "-q"])
        .env_remove("RGTP_LOG")
        .output()
        .unwrap();
    assert!(r.status.success(), "{}", String::from_utf8_lossy(&r.stderr));
    for name in [
        "results.csv",
        "results.json",
        "manifest.json",
        "runs.jsonl",
        "goodput-vs-loss.png",
        "goodput-vs-loss.svg",
        "completion-cdf.png",
        "completion-cdf.svg",
    ] {
        assert!(out.join(name).exists(), "{name} missing");
    }
    let csv = fs::read_to_string(out.join("results.csv")).unwrap();
    assert_eq!(csv.lines().count(), 1 + 8);
}

#[test]
fn bad_plan_exits_2_naming_the_key() {
    let dir = tempfile::tempdir().unwrap();
    let plan = dir.path().join("plan.toml");
    fs::write(
        &plan,
        PLAN.replace("delay_ms = 2", "delay_ms = 2\nbandwidth = 5"),
    )
    .unwrap();
    let r = Command::new(BIN)
        .arg("sweep")
        .arg(&plan)
        .arg("--out")
        .arg(dir.path().join("out"))
        .env_remove("RGTP_LOG")
        .output()
        .unwrap();
    assert_eq!(r.status.code(), Some(2));
    let err = String::from_utf8_lossy(&r.stderr);
    assert!(
        err.contains("bandwidth") && err.contains("line 11"),
        "{err}"
    );
}

#[test]
fn help_shows_an_example_plan() {
    let r = Command::new(BIN)
        .args(["sweep", "--help"])
        .output()
        .unwrap();
    let text = String::from_utf8_lossy(&r.stdout);
    assert!(r.status.success());
    assert!(
        text.contains("[scenarios]") && text.contains("--resume"),
        "{text}"
    );
}
