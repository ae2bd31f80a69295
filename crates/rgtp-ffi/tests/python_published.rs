//! Runs `tests/python_published.py` (pytest) with the published `rgtp` 1.0.0 package,
//! unmodified, loading our librgtp.so through `RGTP_LIB_PATH`.
//!
//! The venv lives in `target/rgtp-ffi-py/venv` (created with `python3 -m venv`, then
//! `pip install rgtp==1.0.0 pytest`; reused when present). Needs python3 and PyPI.

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

const CRATE: &str = env!("CARGO_MANIFEST_DIR");

fn profile_dir() -> PathBuf {
    let exe = std::env::current_exe().expect("current_exe");
    exe.parent()
        .and_then(Path::parent)
        .expect("target/<profile>/deps")
        .to_path_buf()
}

/// Builds (a no-op when fresh: `cargo test` does not refresh uplifted artifacts).
fn built(file: &str, args: &[&str]) -> PathBuf {
    let path = profile_dir().join(file);
    let st = Command::new(env!("CARGO"))
        .args(args)
        .current_dir(CRATE)
        .status()
        .expect("cargo");
    assert!(st.success(), "cargo {args:?} failed");
    assert!(path.exists(), "{} missing", path.display());
    path
}

fn status(cmd: &mut Command, secs: u64) -> bool {
    let mut child = cmd.spawn().unwrap_or_else(|e| panic!("spawn {cmd:?}: {e}"));
    let deadline = Instant::now() + Duration::from_secs(secs);
    loop {
        if let Some(st) = child.try_wait().expect("try_wait") {
            return st.success();
        }
        if Instant::now() > deadline {
            let _ = child.kill();
            let _ = child.wait();
            panic!("{cmd:?} timed out after {secs} s");
        }
        std::thread::sleep(Duration::from_millis(50));
    }
}

fn venv() -> PathBuf {
    let dir = profile_dir()
        .parent()
        .expect("target dir")
        .join("rgtp-ffi-py");
    let python = dir.join("venv/bin/python");
    let ready = python.exists()
        && status(
            Command::new(&python)
                .args([
                    "-c",
                    "import importlib.metadata as m, pytest; assert m.version('rgtp') == '1.0.0'",
                ])
                .stderr(Stdio::null()),
            60,
        );
    if !ready {
        std::fs::create_dir_all(&dir).unwrap();
        assert!(
            status(
                Command::new("python3")
                    .args(["-m", "venv"])
                    .arg(dir.join("venv")),
                120
            ),
            "python3 -m venv failed"
        );
        assert!(
            status(
                Command::new(&python).args([
                    "-m",
                    "pip",
                    "install",
                    "-q",
                    "--disable-pip-version-check",
                    "rgtp==1.0.0",
                    "pytest"
                ]),
                300
            ),
            "pip install rgtp==1.0.0 pytest failed (is PyPI reachable?)"
        );
    }
    python
}

#[test]
fn published_python_package_works_unmodified() {
    let lib = built("librgtp.so", &["build", "-p", "rgtp-ffi"]);
    let bin = built("rgtp", &["build", "-p", "rgtp-cli", "--bin", "rgtp"]);
    let python = venv();
    let mut key = [0u8; 32];
    getrandom(&mut key);
    let ok = status(
        Command::new(&python)
            .args(["-m", "pytest", "-q", "-p", "no:cacheprovider", "-x"])
            .arg(Path::new(CRATE).join("tests/python_published.py"))
            .env("RGTP_LIB_PATH", &lib)
            .env("RGTP_BIN", &bin)
            .env("RGTP_PORT", "0")
            .env("RGTP_KEY", hex(&key))
            .env_remove("RGTP_CRYPTO_BACKEND")
            .env_remove("PYTHONPATH"),
        300,
    );
    assert!(ok, "pytest failed (output above)");
}

fn getrandom(buf: &mut [u8]) {
    use std::io::Read;
    std::fs::File::open("/dev/urandom")
        .and_then(|mut f| f.read_exact(buf))
        .expect("/dev/urandom");
}

fn hex(b: &[u8]) -> String {
    b.iter().map(|x| format!("{x:02x}")).collect()
}
