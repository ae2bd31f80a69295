//! Replays every committed fuzz input on stable Rust: each `fuzz/corpus/<target>/*` and
//! each `fuzz/regressions/<target>/*` goes through the same function the cargo-fuzz
//! target calls. A regression (a panic, which is how targets report a bug) fails CI.

use std::panic::{catch_unwind, AssertUnwindSafe};
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Instant;

fn fuzz_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../../fuzz")
}

/// Files of `fuzz/<kind>/<target>/`, sorted, hidden files skipped.
fn inputs(kind: &str, target: &str) -> Vec<PathBuf> {
    let dir = fuzz_dir().join(kind).join(target);
    let Ok(rd) = std::fs::read_dir(&dir) else {
        return Vec::new();
    };
    let mut v: Vec<PathBuf> = rd
        .flatten()
        .map(|e| e.path())
        .filter(|p| p.is_file())
        .filter(|p| {
            !p.file_name()
                .is_some_and(|n| n.to_string_lossy().starts_with('.'))
        })
        .collect();
    v.sort();
    v
}

/// Makes sure the `ffi` target finds a fresh `librgtp.so` (as `rgtp-ffi`'s own C ABI
/// test does: `cargo test` does not refresh the uplifted cdylib).
fn build_ffi_library() {
    if std::env::var_os(rgtp_fuzzing::FFI_LIB_ENV).is_some() {
        return;
    }
    let exe = std::env::current_exe().expect("current_exe");
    let profile_dir = exe
        .parent()
        .and_then(Path::parent)
        .expect("target/<profile>/deps");
    let mut cmd = Command::new(env!("CARGO"));
    cmd.args(["build", "-p", "rgtp-ffi"]);
    if profile_dir.file_name().is_some_and(|n| n == "release") {
        cmd.arg("--release");
    }
    let st = cmd
        .current_dir(env!("CARGO_MANIFEST_DIR"))
        .status()
        .expect("cargo build");
    assert!(st.success(), "cargo build -p rgtp-ffi failed");
    let lib = profile_dir.join("librgtp.so");
    assert!(lib.exists(), "{} missing", lib.display());
    std::env::set_var(rgtp_fuzzing::FFI_LIB_ENV, lib);
}

fn replay(target: &str, f: fn(&[u8])) -> (usize, Vec<String>) {
    let mut failures = Vec::new();
    let mut n = 0;
    for kind in ["corpus", "regressions"] {
        for path in inputs(kind, target) {
            let data = std::fs::read(&path).expect("read input");
            n += 1;
            if catch_unwind(AssertUnwindSafe(|| f(&data))).is_err() {
                failures.push(format!("{target}: {}", path.display()));
            }
        }
    }
    (n, failures)
}

#[test]
fn every_corpus_and_regression_input_replays_cleanly() {
    build_ffi_library();
    let start = Instant::now();
    let mut failures = Vec::new();
    for &(target, f) in rgtp_fuzzing::TARGETS {
        let t0 = Instant::now();
        let (n, mut fail) = replay(target, f);
        eprintln!("{target}: {n} inputs in {:.2?}", t0.elapsed());
        assert!(n > 0, "no corpus for target {target}");
        failures.append(&mut fail);
    }
    eprintln!("all targets in {:.2?}", start.elapsed());
    assert!(
        failures.is_empty(),
        "{} input(s) fail:\n{}",
        failures.len(),
        failures.join("\n")
    );
}

#[test]
fn corpora_stay_small() {
    let mut total = 0u64;
    for &(target, _) in rgtp_fuzzing::TARGETS {
        for kind in ["corpus", "regressions"] {
            for p in inputs(kind, target) {
                total += std::fs::metadata(&p).map(|m| m.len()).unwrap_or(0);
            }
        }
    }
    assert!(
        total < 2 << 20,
        "committed fuzz inputs total {total} bytes (limit 2 MiB)"
    );
}
