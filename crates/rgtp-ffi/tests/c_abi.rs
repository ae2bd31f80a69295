//! The C ABI from C: struct layouts against the Rust definitions, the C API tests
//! (`tests/c/api_test.c`), and the C example programs (`interop/c/` at the top of the repository) built through
//! pkg-config from an `install-local.sh` prefix, exposing and pulling a file.
//!
//! Needs gcc, make and pkg-config. Every child process runs under a deadline.

use std::collections::HashMap;
use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::sync::OnceLock;
use std::time::{Duration, Instant};

#[path = "../src/abi.rs"]
mod abi;

const CRATE: &str = env!("CARGO_MANIFEST_DIR");

struct Setup {
    prefix: PathBuf,
    bin: PathBuf,
}

/// `target/<profile>`, from this test binary's path (`target/<profile>/deps/c_abi-…`).
fn profile_dir() -> PathBuf {
    let exe = std::env::current_exe().expect("current_exe");
    exe.parent()
        .and_then(Path::parent)
        .expect("target/<profile>/deps")
        .to_path_buf()
}

fn library() -> PathBuf {
    // `cargo test` does not refresh the uplifted cdylib: build it (a no-op when fresh).
    let lib = profile_dir().join("librgtp.so");
    let st = Command::new(env!("CARGO"))
        .args(["build", "-p", "rgtp-ffi"])
        .current_dir(CRATE)
        .status()
        .expect("cargo build");
    assert!(st.success(), "cargo build -p rgtp-ffi failed");
    assert!(lib.exists(), "{} missing", lib.display());
    lib
}

fn setup() -> &'static Setup {
    static SETUP: OnceLock<Setup> = OnceLock::new();
    SETUP.get_or_init(|| {
        let root = profile_dir()
            .join("rgtp-ffi-c")
            .join(std::process::id().to_string());
        let _ = std::fs::remove_dir_all(&root);
        let prefix = root.join("prefix");
        let bin = root.join("bin");
        std::fs::create_dir_all(&bin).unwrap();
        let out = run(
            Command::new("sh")
                .arg(Path::new(CRATE).join("install-local.sh"))
                .arg(&prefix)
                .arg(library()),
            30,
        );
        assert!(out.status.success(), "install-local.sh: {}", text(&out));
        // The example programs, through their Makefile and pkg-config.
        let out = run(
            Command::new("make")
                .arg("-C")
                .arg(Path::new(CRATE).join("../../interop/c"))
                .arg(format!("OUT={}", bin.display()))
                .arg(format!("PKG_CONFIG_PATH={}", pkgconfig(&prefix))),
            120,
        );
        assert!(out.status.success(), "make: {}", text(&out));
        // The API tests, with the flags pkg-config gives.
        let flags = run(
            Command::new("pkg-config")
                .args(["--cflags", "--libs", "rgtp"])
                .env("PKG_CONFIG_PATH", pkgconfig(&prefix)),
            30,
        );
        assert!(flags.status.success(), "pkg-config: {}", text(&flags));
        let flags = String::from_utf8(flags.stdout).unwrap();
        let out = run(
            Command::new("gcc")
                .args(["-std=c11", "-Wall", "-Wextra", "-Werror", "-O1", "-o"])
                .arg(bin.join("api_test"))
                .arg(Path::new(CRATE).join("tests/c/api_test.c"))
                .args(flags.split_whitespace())
                .arg("-lpthread"),
            120,
        );
        assert!(out.status.success(), "gcc api_test: {}", text(&out));
        Setup { prefix, bin }
    })
}

fn pkgconfig(prefix: &Path) -> String {
    prefix.join("lib/pkgconfig").display().to_string()
}

fn text(o: &Output) -> String {
    format!(
        "status {:?}\n--- stdout\n{}\n--- stderr\n{}",
        o.status,
        String::from_utf8_lossy(&o.stdout),
        String::from_utf8_lossy(&o.stderr)
    )
}

/// Waits for a child, killing it after `secs`.
fn wait(mut child: Child, secs: u64) -> Output {
    let deadline = Instant::now() + Duration::from_secs(secs);
    loop {
        if child.try_wait().expect("try_wait").is_some() {
            return child.wait_with_output().expect("output");
        }
        if Instant::now() > deadline {
            let _ = child.kill();
            let o = child.wait_with_output().expect("output");
            panic!("timed out after {secs} s: {}", text(&o));
        }
        std::thread::sleep(Duration::from_millis(20));
    }
}

fn run(cmd: &mut Command, secs: u64) -> Output {
    let child = cmd
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap_or_else(|e| panic!("spawn {cmd:?}: {e}"));
    wait(child, secs)
}

fn api_test(name: &str, secs: u64) {
    let s = setup();
    let out = run(
        Command::new(s.bin.join("api_test"))
            .arg(name)
            .env("RGTP_PORT", "0")
            .env_remove("RGTP_KEY")
            .env_remove("RGTP_CRYPTO_BACKEND"),
        secs,
    );
    eprintln!("{}", String::from_utf8_lossy(&out.stderr));
    assert!(out.status.success(), "api_test {name}: {}", text(&out));
}

#[test]
fn layout_matches_rust() {
    use abi::*;
    use std::mem::{align_of, offset_of, size_of};
    let s = setup();
    let exe = s.bin.join("layout");
    let out = run(
        Command::new("gcc")
            .args(["-std=c11", "-Wall", "-Werror", "-o"])
            .arg(&exe)
            .arg(Path::new(CRATE).join("tests/c/layout.c"))
            .arg(format!("-I{}", s.prefix.join("include").display())),
        60,
    );
    assert!(out.status.success(), "gcc layout: {}", text(&out));
    let out = run(&mut Command::new(&exe), 10);
    assert!(out.status.success());
    let c: HashMap<String, i64> = String::from_utf8(out.stdout)
        .unwrap()
        .lines()
        .map(|l| {
            let mut w = l.split_whitespace();
            let kind = w.next().unwrap();
            let name = w.next().unwrap();
            (format!("{kind} {name}"), w.next().unwrap().parse().unwrap())
        })
        .collect();
    macro_rules! size {
        ($t:ty) => {
            (
                concat!("size ", stringify!($t)),
                size_of::<$t>() as i64,
                concat!("align ", stringify!($t)),
                align_of::<$t>() as i64,
            )
        };
    }
    let mut want: Vec<(&str, i64)> = Vec::new();
    for (a, b, c, d) in [
        size!(rgtp_allocator_t),
        size!(rgtp_config_t),
        size!(rgtp_stats_t),
        size!(rgtp_latency_stats_t),
        size!(rgtp_log_event_t),
        size!(rgtp_send_options_t),
        size!(rgtp_get_options_t),
        size!(rgtp_files_event_t),
        size!(rgtp_get_result_t),
        size!(rgtp_sender_stats_t),
    ] {
        want.push((a, b));
        want.push((c, d));
    }
    macro_rules! off {
        ($t:ident, $($f:ident),+) => {
            $(want.push((
                concat!("offset ", stringify!($t), ".", stringify!($f)),
                offset_of!($t, $f) as i64,
            ));)+
        };
    }
    off!(rgtp_allocator_t, alloc, free, ctx);
    off!(
        rgtp_config_t,
        chunk_size,
        window_size,
        fec_enabled,
        fec_k,
        fec_n,
        merkle_proofs,
        raw_ethernet,
        eth_iface,
        eth_vlan_id,
        eth_vlan_pcp,
        port,
        timeout_ms,
        memory_profile,
        allocator
    );
    off!(
        rgtp_stats_t,
        bytes_sent,
        bytes_received,
        chunks_sent,
        chunks_received,
        auth_failures,
        malformed_packets,
        fec_recoveries,
        nak_sent,
        packet_loss_rate,
        rtt_us,
        pull_pressure
    );
    off!(
        rgtp_latency_stats_t,
        mean_us,
        jitter_us,
        p99_us,
        min_us,
        max_us,
        sample_count
    );
    off!(
        rgtp_log_event_t,
        timestamp_ns,
        level,
        component,
        message,
        kv,
        kv_count
    );
    off!(
        rgtp_send_options_t,
        bind,
        advertise,
        key,
        max_rate,
        max_rate_per_connection,
        max_rate_per_file,
        chunk_size,
        keep_symlinks
    );
    off!(
        rgtp_get_options_t,
        parallel_files,
        retries,
        restart,
        max_rate,
        max_rate_per_file,
        max_rate_per_connection,
        connect_timeout_ms,
        idle_timeout_ms,
        sources,
        n_sources
    );
    off!(
        rgtp_files_event_t,
        kind,
        index,
        path,
        done,
        total,
        files,
        entries,
        total_done,
        seconds,
        skipped,
        message
    );
    off!(rgtp_get_result_t, files, entries, bytes, seconds);
    off!(
        rgtp_sender_stats_t,
        datagrams_in,
        bytes_in,
        datagrams_out,
        bytes_out,
        pulls,
        requests,
        chunks_sent,
        parity_sent,
        dropped,
        seconds,
        serving
    );
    want.push(("const RGTP_FILES_STOPPED", i64::from(RGTP_FILES_STOPPED)));
    want.push(("const RGTP_FILES_FAILED", i64::from(RGTP_FILES_FAILED)));
    want.push((
        "offset rgtp_log_event_t.kv[1].value",
        (offset_of!(rgtp_log_event_t, kv)
            + size_of::<rgtp_log_kv_t>()
            + offset_of!(rgtp_log_kv_t, value)) as i64,
    ));
    want.push((
        "const RGTP_CHUNK_INDEX_NONE",
        i64::from(RGTP_CHUNK_INDEX_NONE),
    ));
    want.push(("const RGTP_ERR_INTERNAL", i64::from(RGTP_ERR_INTERNAL)));
    want.push(("const RGTP_ERR_TIMEOUT", i64::from(RGTP_ERR_TIMEOUT)));
    want.push(("const RGTP_LOG_DEBUG", i64::from(RGTP_LOG_DEBUG)));
    want.push((
        "const RGTP_MEMORY_PROFILE_MINIMAL",
        i64::from(RGTP_MEMORY_PROFILE_MINIMAL),
    ));
    assert_eq!(want.len(), c.len(), "C printed {c:?}");
    for (name, v) in want {
        assert_eq!(c.get(name), Some(&v), "{name}");
    }
}

#[test]
fn exported_symbols_match_the_header() {
    let lib = library();
    let out = run(
        Command::new("nm").args(["-D", "--defined-only"]).arg(&lib),
        30,
    );
    let syms = String::from_utf8_lossy(&out.stdout);
    let header = std::fs::read_to_string(Path::new(CRATE).join("include/rgtp.h")).unwrap();
    let mut declared = 0;
    for line in header.lines() {
        // Declarations look like `TYPE rgtp_name(…`.
        let Some(paren) = line.find('(') else {
            continue;
        };
        let name = line[..paren]
            .rsplit(|c: char| c.is_whitespace() || c == '*')
            .next()
            .unwrap_or("");
        if !name.starts_with("rgtp_") {
            continue;
        }
        if line.starts_with(' ')
            || line.starts_with('#')
            || line.starts_with("typedef")
            || !name.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'_')
        {
            continue;
        }
        declared += 1;
        assert!(
            syms.lines().any(|l| l.ends_with(&format!(" T {name}"))),
            "{name} not exported"
        );
    }
    // 26 RGTP calls (rgtp_socket_set_congestion among them), 8 gtUDP calls, 19 TEJ calls,
    // 7 files calls and 27 flow calls.
    assert_eq!(declared, 88, "declarations found in rgtp.h");
}

#[test]
fn c_strerror() {
    api_test("strerror", 30);
}

#[test]
fn c_handles() {
    api_test("handles", 30);
}

#[test]
fn c_poll_timeout() {
    api_test("poll_timeout", 30);
}

#[test]
fn c_transfer_stats_latency_logs() {
    api_test("transfer", 90);
}

#[test]
fn c_concurrent() {
    api_test("concurrent", 90);
}

#[test]
fn c_wrong_exposure_id_and_env_key() {
    api_test("wrong_id", 60);
}

#[test]
fn c_wrong_key() {
    api_test("wrong_key", 60);
}

#[test]
fn c_expose_with_key() {
    api_test("expose_with_key", 60);
}

#[test]
fn c_env() {
    api_test("env", 30);
}

#[test]
fn c_example_programs_transfer_a_file() {
    let s = setup();
    let dir = tempfile::tempdir().unwrap();
    let input = dir.path().join("in.bin");
    let output = dir.path().join("out.bin");
    let mut data = vec![0u8; 2_500_000 + 333];
    let mut x = 0x1234_5678_9abc_def1u64;
    for b in &mut data {
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        *b = x as u8;
    }
    std::fs::write(&input, &data).unwrap();
    let mut exposer = Command::new(s.bin.join("rgtp_expose_file"))
        .arg(&input)
        .env("RGTP_PORT", "0")
        .env_remove("RGTP_KEY")
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let mut line = String::new();
    BufReader::new(exposer.stdout.take().unwrap())
        .read_line(&mut line)
        .unwrap();
    let ticket = line.trim().to_string();
    assert!(ticket.starts_with("rgtp://127.0.0.1:"), "{ticket:?}");
    let out = run(
        Command::new(s.bin.join("rgtp_pull_file"))
            .arg(&ticket)
            .arg(&output),
        60,
    );
    let _ = exposer.kill();
    let _ = exposer.wait();
    assert!(out.status.success(), "rgtp_pull_file: {}", text(&out));
    assert!(std::fs::read(&output).unwrap() == data, "output differs");
}
