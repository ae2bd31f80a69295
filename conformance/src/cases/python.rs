//! Python cases: the published `rgtp` 1.0.0 package, unmodified, on a librgtp.so.
//! The harness prepares a venv (`pip install rgtp==1.0.0`), runs
//! `conformance/python/driver.py` (embedded in the binary) once, and reads its verdicts.

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use rgtp::ExposerBuilder;

use super::{fail, Case, CaseResult, Level, Stop};
use crate::cases::puller::{data, honest_exposer};

/// The driver script.
pub const DRIVER: &str = include_str!("../../python/driver.py");

/// What the Python cases run against.
pub struct PythonCtx {
    /// Verdicts by case id: (passed, detail).
    pub results: HashMap<String, (bool, String)>,
    /// Set when the driver could not run at all.
    pub setup_error: Option<String>,
}

fn run_bounded(cmd: &mut Command, secs: u64) -> Result<std::process::Output, String> {
    let mut child = cmd
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .map_err(|e| format!("cannot run {cmd:?}: {e}"))?;
    let deadline = Instant::now() + Duration::from_secs(secs);
    loop {
        if child.try_wait().map_err(|e| e.to_string())?.is_some() {
            return child.wait_with_output().map_err(|e| e.to_string());
        }
        if Instant::now() > deadline {
            let _ = child.kill();
            let _ = child.wait();
            return Err(format!("{cmd:?} timed out after {secs} s"));
        }
        std::thread::sleep(Duration::from_millis(50));
    }
}

fn has_package(python: &Path) -> bool {
    run_bounded(
        Command::new(python).args([
            "-c",
            "import importlib.metadata as m; assert m.version('rgtp') == '1.0.0'",
        ]),
        60,
    )
    .is_ok_and(|o| o.status.success())
}

/// A Python with rgtp 1.0.0: `python` if given, else a venv at `venv` (created and
/// filled with `pip install rgtp==1.0.0` when missing).
pub fn ensure_venv(python: Option<&Path>, venv: &Path) -> Result<PathBuf, String> {
    if let Some(p) = python {
        return if has_package(p) {
            Ok(p.to_path_buf())
        } else {
            Err(format!("{} has no rgtp 1.0.0", p.display()))
        };
    }
    let py = venv.join("bin/python");
    if py.exists() && has_package(&py) {
        return Ok(py);
    }
    std::fs::create_dir_all(venv).map_err(|e| format!("{}: {e}", venv.display()))?;
    let o = run_bounded(Command::new("python3").args(["-m", "venv"]).arg(venv), 180)?;
    if !o.status.success() {
        return Err(format!(
            "python3 -m venv failed: {}",
            String::from_utf8_lossy(&o.stderr).trim()
        ));
    }
    let o = run_bounded(
        Command::new(&py).args([
            "-m",
            "pip",
            "install",
            "-q",
            "--disable-pip-version-check",
            "rgtp==1.0.0",
        ]),
        600,
    )?;
    if !o.status.success() {
        return Err(format!(
            "pip install rgtp==1.0.0 failed (is PyPI reachable?): {}",
            String::from_utf8_lossy(&o.stderr).trim()
        ));
    }
    Ok(py)
}

/// Runs the driver against `lib` with a reference exposer, and collects verdicts.
pub fn run_driver(python: &Path, lib: &Path, sel: &super::Selection) -> PythonCtx {
    let fail_all = |e: String| PythonCtx {
        results: HashMap::new(),
        setup_error: Some(e),
    };
    let dir = match tempfile::tempdir() {
        Ok(d) => d,
        Err(e) => return fail_all(e.to_string()),
    };
    let script = dir.path().join("driver.py");
    let payload = data(333_333, 42);
    let data_path = dir.path().join("ref.bin");
    if let Err(e) =
        std::fs::write(&script, DRIVER).and_then(|_| std::fs::write(&data_path, &payload))
    {
        return fail_all(e.to_string());
    }
    let (srv, prep) = match honest_exposer(&payload, ExposerBuilder::upstream()) {
        Ok(x) => x,
        Err(e) => return fail_all(e),
    };
    let ids: Vec<&str> = CASES
        .iter()
        .filter(|c| sel.selects(c.id, c.section))
        .map(|c| c.id)
        .collect();
    let lib = std::fs::canonicalize(lib).unwrap_or_else(|_| lib.to_path_buf());
    let out = run_bounded(
        Command::new(python)
            .arg(&script)
            .args(&ids)
            .env("RGTP_LIB_PATH", &lib)
            .env("REF_HOST", srv.addr.ip().to_string())
            .env("REF_PORT", srv.addr.port().to_string())
            .env("REF_ID", hex::encode(prep.exposure.id()))
            .env("REF_KEY", hex::encode(prep.key.as_bytes()))
            .env("REF_DATA", &data_path)
            .env_remove("RGTP_CRYPTO_BACKEND")
            .env_remove("PYTHONPATH")
            .current_dir(dir.path()),
        300,
    );
    drop(srv);
    let out = match out {
        Ok(o) => o,
        Err(e) => return fail_all(e),
    };
    let stdout = String::from_utf8_lossy(&out.stdout);
    let mut results = HashMap::new();
    for line in stdout.lines() {
        let mut f = line.splitn(4, '\t');
        if f.next() != Some("RESULT") {
            continue;
        }
        let (Some(id), Some(v), Some(d)) = (f.next(), f.next(), f.next()) else {
            continue;
        };
        results.insert(id.to_string(), (v == "PASS", d.to_string()));
    }
    let setup_error = if results.is_empty() {
        let err = String::from_utf8_lossy(&out.stderr);
        Some(format!(
            "driver produced no verdicts ({}): {}",
            out.status,
            err.lines().last().unwrap_or("")
        ))
    } else {
        None
    };
    PythonCtx {
        results,
        setup_error,
    }
}

fn verdict(ctx: &PythonCtx, id: &str) -> CaseResult {
    if let Some(e) = &ctx.setup_error {
        return fail(e.clone());
    }
    match ctx.results.get(id) {
        Some((true, d)) => Ok(d.clone()),
        Some((false, d)) => Err(Stop::Fail(d.clone())),
        None => fail("the driver reported nothing for this case (crashed?)"),
    }
}

fn py001(c: &PythonCtx) -> CaseResult {
    verdict(c, "PY-001")
}
fn py002(c: &PythonCtx) -> CaseResult {
    verdict(c, "PY-002")
}
fn py003(c: &PythonCtx) -> CaseResult {
    verdict(c, "PY-003")
}
fn py004(c: &PythonCtx) -> CaseResult {
    verdict(c, "PY-004")
}
fn py005(c: &PythonCtx) -> CaseResult {
    verdict(c, "PY-005")
}
fn py006(c: &PythonCtx) -> CaseResult {
    verdict(c, "PY-006")
}

/// The Python catalogue.
pub static CASES: &[Case<PythonCtx>] = &[
    Case {
        id: "PY-001",
        title: "rgtp 1.0.0 loads the library; strerror texts",
        section: "§14.1",
        level: Level::Must,
        run: py001,
    },
    Case {
        id: "PY-002",
        title: "NULL surfaces raise RgtpError(-2)",
        section: "§14.4",
        level: Level::Must,
        run: py002,
    },
    Case {
        id: "PY-003",
        title: "expose, exposure_id, poll through the package",
        section: "§14.2",
        level: Level::Must,
        run: py003,
    },
    Case {
        id: "PY-004",
        title: "package pull from the reference exposer",
        section: "§14.3",
        level: Level::Must,
        run: py004,
    },
    Case {
        id: "PY-005",
        title: "package pull from a library exposer",
        section: "§14.3",
        level: Level::Must,
        run: py005,
    },
    Case {
        id: "PY-006",
        title: "wrong Exposure_ID raises RgtpError(-12)",
        section: "§14.3",
        level: Level::Must,
        run: py006,
    },
];
