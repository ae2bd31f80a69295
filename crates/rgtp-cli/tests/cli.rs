//! Black-box tests of the `rgtp` binary over real loopback UDP.
//!
//! Every child process is bounded in time: a test that would hang instead kills
//! the child and fails with what it printed.

use std::io::{BufRead, BufReader, Read};
use std::net::UdpSocket;
use std::os::unix::fs::{FileTypeExt, MetadataExt};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Stdio};
use std::sync::mpsc;
use std::thread;
use std::time::{Duration, Instant};

use rand::RngCore;
use rand_chacha::rand_core::SeedableRng;

const BIN: &str = env!("CARGO_BIN_EXE_rgtp");

/// Upper bound for any one child process (loaded 2-core CI with a debug build).
const CHILD_LIMIT: Duration = Duration::from_secs(120);

fn rgtp() -> Command {
    let mut c = Command::new(BIN);
    c.env_remove("RGTP_LOG");
    c
}

/// What a finished child left behind.
struct Run {
    status: ExitStatus,
    stdout: String,
    stderr: String,
    elapsed: Duration,
}

impl Run {
    fn code(&self) -> Option<i32> {
        self.status.code()
    }

    fn describe(&self) -> String {
        format!(
            "status {:?} after {:.2?}\n--- stdout ---\n{}\n--- stderr ---\n{}",
            self.status, self.elapsed, self.stdout, self.stderr
        )
    }

    fn expect_code(&self, code: i32) {
        assert_eq!(self.code(), Some(code), "{}", self.describe());
    }
}

fn drain<R: Read + Send + 'static>(r: R) -> thread::JoinHandle<String> {
    thread::spawn(move || {
        let mut r = r;
        let mut buf = Vec::new();
        let _ = r.read_to_end(&mut buf);
        String::from_utf8_lossy(&buf).into_owned()
    })
}

/// Runs `cmd` to completion, killing it (and failing the test) past `limit`.
fn run_bounded(mut cmd: Command, limit: Duration) -> Run {
    let started = Instant::now();
    let mut child = cmd
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("spawn rgtp");
    let out = drain(child.stdout.take().expect("stdout"));
    let err = drain(child.stderr.take().expect("stderr"));
    let status = loop {
        if let Some(s) = child.try_wait().expect("try_wait") {
            break Some(s);
        }
        if started.elapsed() > limit {
            let _ = child.kill();
            let _ = child.wait();
            break None;
        }
        thread::sleep(Duration::from_millis(20));
    };
    let elapsed = started.elapsed();
    let stdout = out.join().unwrap_or_default();
    let stderr = err.join().unwrap_or_default();
    match status {
        Some(status) => Run {
            status,
            stdout,
            stderr,
            elapsed,
        },
        None => panic!(
            "rgtp did not finish within {limit:?}; killed\n--- stdout ---\n{stdout}\n--- stderr ---\n{stderr}"
        ),
    }
}

/// Waits for `child` to end, killing it (and failing the test) past `limit`.
fn wait_bounded(child: &mut Child, limit: Duration, what: &str) -> ExitStatus {
    let started = Instant::now();
    loop {
        if let Some(s) = child.try_wait().expect("try_wait") {
            return s;
        }
        if started.elapsed() > limit {
            let _ = child.kill();
            let _ = child.wait();
            panic!("{what} did not end within {limit:?}; killed");
        }
        thread::sleep(Duration::from_millis(20));
    }
}

fn data(len: usize, seed: u64) -> Vec<u8> {
    let mut v = vec![0u8; len];
    rand_chacha::ChaCha8Rng::seed_from_u64(seed).fill_bytes(&mut v);
    v
}

fn partial_of(out: &Path) -> PathBuf {
    let mut name = out.file_name().expect("file name").to_os_string();
    name.push(".rgtp-partial");
    out.with_file_name(name)
}

fn assert_no_output(out: &Path) {
    assert!(!out.exists(), "{} must not exist", out.display());
    let p = partial_of(out);
    assert!(!p.exists(), "{} must not be left behind", p.display());
}

/// A running `rgtp expose`, stopped with SIGTERM when dropped.
struct Exposer {
    child: Option<Child>,
    ticket: String,
}

impl Exposer {
    /// Exposes `file` on a free loopback port with the extra arguments.
    fn start(file: &Path, extra: &[&str]) -> Exposer {
        Self::launch(file, extra, None)
    }

    /// Exposes `input`, given on standard input (`rgtp expose -`).
    fn start_from_stdin(input: Vec<u8>, extra: &[&str]) -> Exposer {
        Self::launch(Path::new("-"), extra, Some(input))
    }

    fn launch(file: &Path, extra: &[&str], input: Option<Vec<u8>>) -> Exposer {
        let mut child = rgtp()
            .arg("expose")
            .arg(file)
            .args(["--port", "0", "--bind", "127.0.0.1", "-q"])
            .args(extra)
            .stdin(if input.is_some() {
                Stdio::piped()
            } else {
                Stdio::null()
            })
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .spawn()
            .expect("spawn rgtp expose");
        if let Some(input) = input {
            let mut stdin = child.stdin.take().expect("stdin");
            thread::spawn(move || {
                use std::io::Write;
                // Closed when the thread ends: the end of the input.
                let _ = stdin.write_all(&input);
            });
        }
        let stdout = child.stdout.take().expect("stdout");
        let (tx, rx) = mpsc::channel();
        thread::spawn(move || {
            let mut lines = BufReader::new(stdout).lines();
            let first = lines.next().and_then(Result::ok);
            let _ = tx.send(first);
            // Keep the pipe open (and drained) for as long as the exposer runs.
            for _ in lines {}
        });
        let ticket = match rx.recv_timeout(Duration::from_secs(60)) {
            Ok(Some(t)) => t,
            other => {
                let _ = child.kill();
                let status = child.wait();
                panic!("rgtp expose printed no ticket ({other:?}); status {status:?}");
            }
        };
        assert!(ticket.starts_with("rgtp://127.0.0.1:"), "ticket {ticket:?}");
        Exposer {
            child: Some(child),
            ticket,
        }
    }

    /// Sends SIGTERM and expects a clean exit soon after.
    fn stop(mut self) {
        let status = self.terminate().expect("exposer ran");
        assert!(
            status.is_some_and(|s| s.success()),
            "exposer should exit 0 on SIGTERM, got {status:?}"
        );
    }

    /// SIGTERM, then up to 10 s grace, then SIGKILL. `None` if it had to be killed.
    fn terminate(&mut self) -> Option<Option<ExitStatus>> {
        let mut child = self.child.take()?;
        let pid = libc::pid_t::try_from(child.id()).expect("pid");
        // SAFETY: plain kill(2) on the pid of a child we spawned and have not reaped.
        unsafe {
            libc::kill(pid, libc::SIGTERM);
        }
        let deadline = Instant::now() + Duration::from_secs(10);
        while Instant::now() < deadline {
            if let Ok(Some(s)) = child.try_wait() {
                return Some(Some(s));
            }
            thread::sleep(Duration::from_millis(20));
        }
        let _ = child.kill();
        let _ = child.wait();
        Some(None)
    }

    /// The ticket with its key replaced.
    fn ticket_with_key(&self, key_hex: &str) -> String {
        let (before, _) = self.ticket.split_once('#').expect("ticket has a key");
        format!("{before}#{key_hex}")
    }

    /// The ticket with its Exposure_ID replaced.
    fn ticket_with_id(&self, id_hex: &str) -> String {
        let rest = self.ticket.strip_prefix("rgtp://").expect("scheme");
        let (addr, tail) = rest.split_once('/').expect("path");
        let id_end = tail.find(['?', '#']).expect("query or key");
        format!("rgtp://{addr}/{id_hex}{}", &tail[id_end..])
    }
}

impl Drop for Exposer {
    fn drop(&mut self) {
        let _ = self.terminate();
    }
}

fn pull(ticket: &str, out: &Path, extra: &[&str]) -> Run {
    let mut c = rgtp();
    c.arg("pull")
        .arg(ticket)
        .arg("-o")
        .arg(out)
        .args(["-q", "--connect-timeout", "10", "--idle-timeout", "15"])
        .args(extra);
    run_bounded(c, CHILD_LIMIT)
}

/// Exposes `len` random bytes, pulls them, and checks the result byte for byte.
fn round_trip(len: usize, expose_extra: &[&str], pull_extra: &[&str]) -> String {
    round_trip_run(len, expose_extra, pull_extra).0
}

/// [`round_trip`], with the pull's run.
fn round_trip_run(len: usize, expose_extra: &[&str], pull_extra: &[&str]) -> (String, Run) {
    let dir = tempfile::tempdir().expect("tempdir");
    let src = dir.path().join("src.bin");
    let out = dir.path().join("out.bin");
    let bytes = data(len, len as u64 ^ 0x5eed);
    std::fs::write(&src, &bytes).expect("write source");
    let x = Exposer::start(&src, expose_extra);
    let r = pull(&x.ticket, &out, pull_extra);
    let ticket = x.ticket.clone();
    x.stop();
    assert_eq!(
        r.code(),
        Some(0),
        "pull of {len} bytes (expose {expose_extra:?}, pull {pull_extra:?}) failed: {}",
        r.describe()
    );
    let got = std::fs::read(&out).expect("read output");
    assert!(
        got == bytes,
        "output differs: {} bytes pulled, {} exposed",
        got.len(),
        bytes.len()
    );
    assert!(!partial_of(&out).exists(), "partial file left behind");
    (ticket, r)
}

// ---------------------------------------------------------------- 1. round trips

#[test]
fn round_trip_default_suite_edge_sizes() {
    for len in [0, 1, 1199, 1200, 1201, 3 << 20] {
        round_trip(len, &[], &[]);
    }
}

/// `--copy-sends` (every datagram copied into the kernel, the store's pages not
/// lent) serves the same bytes, at a size whose store is lent by default.
#[test]
fn round_trip_with_copied_sends() {
    round_trip((3 << 20) + 5, &["--copy-sends"], &[]);
}

/// `--small-pages` (the sealed store left on the pages it was sealed on) serves
/// the same bytes.
#[test]
fn round_trip_with_the_store_on_small_pages() {
    round_trip((3 << 20) + 5, &["--small-pages"], &[]);
}

/// Without `-q`, the exposer says how much of its store it moved onto huge pages
/// once it serves, on a kernel that has them.
#[test]
fn expose_moves_its_store_onto_huge_pages_and_says_so() {
    let has_huge = std::fs::read_to_string("/sys/kernel/mm/transparent_hugepage/hpage_pmd_size")
        .is_ok_and(|s| s.trim() == "2097152");
    let dir = tempfile::tempdir().expect("tempdir");
    let src = dir.path().join("src.bin");
    std::fs::write(&src, data(12 << 20, 3)).expect("write source");
    let mut child = rgtp()
        .arg("expose")
        .arg(&src)
        .args(["--port", "0", "--bind", "127.0.0.1"])
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .expect("spawn rgtp expose");
    let stderr = child.stderr.take().expect("stderr");
    let (tx, rx) = mpsc::channel();
    thread::spawn(move || {
        for line in BufReader::new(stderr).lines().map_while(Result::ok) {
            if line.starts_with("store on huge pages") {
                let _ = tx.send(line);
            }
        }
    });
    let said = rx.recv_timeout(Duration::from_secs(if has_huge { 60 } else { 2 }));
    let _ = child.kill();
    let _ = child.wait();
    if !has_huge {
        // A kernel without 2 MiB transparent huge pages: nothing to report.
        return;
    }
    let line = said.expect("no report of the store's pages within 60 s");
    // 12 MiB of chunks (and their headers) span at least five whole 2 MiB pages.
    let (moved, pieces) = line
        .strip_prefix("store on huge pages: ")
        .and_then(|r| r.split_once(" × "))
        .and_then(|(counts, _)| counts.split_once(" of "))
        .map(|(m, p)| {
            (
                m.parse::<usize>().expect("moved"),
                p.parse::<usize>().expect("pieces"),
            )
        })
        .unwrap_or_else(|| panic!("unexpected report {line:?}"));
    assert!(pieces >= 5, "{line}");
    // A piece the kernel could not move (no huge page free) is named with the reason.
    assert!(moved > 0 && moved <= pieces, "{line}");
    assert_eq!(moved < pieces, line.contains("(the kernel said:"), "{line}");
}

#[test]
fn round_trip_across_cipher_backends() {
    // Ring on one side, RustCrypto on the other, both suites: the same bytes.
    for cipher in ["aes-256-gcm", "chacha20-poly1305"] {
        round_trip(
            100_001,
            &["--cipher", cipher, "--cipher-backend", "rustcrypto"],
            &["--cipher-backend", "ring"],
        );
        round_trip(
            100_001,
            &["--cipher", cipher, "--cipher-backend", "ring"],
            &["--cipher-backend", "rustcrypto"],
        );
    }
}

#[test]
fn unknown_cipher_backend_is_a_usage_error_naming_the_choices() {
    let mut c = rgtp();
    c.args(["demo", "--size", "1k", "--cipher-backend", "openssl"]);
    let r = run_bounded(c, Duration::from_secs(60));
    r.expect_code(2);
    assert!(r.stderr.contains("ring or rustcrypto"), "{}", r.stderr);
}

#[test]
fn every_congestion_controller_pulls_byte_exact() {
    for cc in ["delay", "reno", "cubic"] {
        round_trip(300_001, &[], &["--cc", cc]);
    }
}

#[test]
fn unknown_congestion_controller_is_a_usage_error_naming_the_choices() {
    let mut c = rgtp();
    c.args(["demo", "--size", "1k", "--cc", "vegas"]);
    let r = run_bounded(c, Duration::from_secs(60));
    r.expect_code(2);
    assert!(r.stderr.contains("delay, reno, cubic"), "{}", r.stderr);
}

#[test]
fn max_rate_holds_a_pull_to_its_cap() {
    // 1 MB at 4 Mbit/s (500 kB/s) cannot take less than about two seconds, on any
    // machine; uncapped the same pull takes a fraction of that.
    let t0 = std::time::Instant::now();
    round_trip(1_000_000, &[], &["--max-rate", "4Mbit/s"]);
    let took = t0.elapsed();
    assert!(took >= Duration::from_millis(1_800), "took {took:?}");
}

#[test]
fn a_bad_rate_is_a_usage_error_naming_the_units() {
    let mut c = rgtp();
    c.args(["pull", "rgtp://127.0.0.1:9/00?x#00", "-o", "/nonexistent/x"]);
    c.args(["--max-rate", "20 parsecs/s"]);
    let r = run_bounded(c, Duration::from_secs(60));
    r.expect_code(2);
    assert!(r.stderr.contains("Mbit/s"), "{}", r.stderr);
}

#[test]
fn round_trip_chacha_blake2b() {
    let ticket = round_trip(
        (1 << 20) + 17,
        &["--cipher", "chacha20-poly1305", "--hash", "blake2b-256"],
        &[],
    );
    assert!(ticket.contains("cipher=chacha20-poly1305"), "{ticket}");
    assert!(ticket.contains("hash=blake2b-256"), "{ticket}");
}

#[test]
fn round_trip_fec_reed_solomon() {
    round_trip((1 << 20) + 17, &["--fec", "rs:10,8"], &[]);
}

#[test]
fn round_trip_fec_raptorq() {
    round_trip((1 << 20) + 17, &["--fec", "raptorq:0.25"], &[]);
}

#[test]
fn round_trip_exposer_proofs() {
    // A plain pull takes up the proofs the exposer sends anyway, and checks them a
    // run of 64 at a time off the receive path, as --proofs does (spec §8.11).
    let (_, r) = round_trip_run((1 << 20) + 17, &["--proofs"], &["--json"]);
    let v: serde_json::Value = serde_json::from_str(r.stdout.trim()).expect("pull --json");
    let chunks = v["chunk_count"].as_u64().expect("chunk_count");
    assert_eq!(v["offloaded_checks"].as_u64(), Some(chunks), "{v}");
    let members = v["proof_run_members"].as_u64().expect("proof_run_members");
    assert!(members > 0 && members < chunks, "{v}");
    // Without runs, every chunk comes with its proof and is checked alone.
    let (_, r) = round_trip_run(
        (1 << 20) + 17,
        &["--proofs"],
        &["--json", "--no-proof-runs"],
    );
    let v: serde_json::Value = serde_json::from_str(r.stdout.trim()).expect("pull --json");
    assert_eq!(v["offloaded_checks"].as_u64(), Some(chunks), "{v}");
    assert_eq!(v["proof_run_members"].as_u64(), Some(0), "{v}");
}

#[test]
fn round_trip_puller_proofs() {
    round_trip((1 << 20) + 17, &[], &["--proofs"]);
}

#[test]
fn round_trip_fec_ignored_with_no_fec() {
    round_trip((1 << 20) + 17, &["--fec", "rs:10,8"], &["--no-fec"]);
}

// ---------------------------------------------------------------- 2. bad tickets

#[test]
fn bad_tickets_are_usage_errors_naming_the_part() {
    let dir = tempfile::tempdir().expect("tempdir");
    let out = dir.path().join("out.bin");
    let id = "ab".repeat(16);
    let key = "11".repeat(32);
    let cases = [
        (format!("127.0.0.1:9000/{id}#{key}"), "rgtp://"),
        (format!("http://127.0.0.1:9000/{id}#{key}"), "rgtp://"),
        (format!("rgtp://127.0.0.1:9000/{id}#{}", &key[2..]), "key"),
        (format!("rgtp://127.0.0.1:9000/{id}"), "key"),
        (format!("rgtp://127.0.0.1:9000/abcd#{key}"), "Exposure_ID"),
        (
            format!("rgtp://127.0.0.1:9000/{}#{key}", "zz".repeat(16)),
            "Exposure_ID",
        ),
        (format!("rgtp://127.0.0.1:99999/{id}#{key}"), "PORT"),
        (format!("rgtp://127.0.0.1:x/{id}#{key}"), "PORT"),
        (format!("rgtp://127.0.0.1/{id}#{key}"), "PORT"),
    ];
    for (ticket, names) in cases {
        let r = pull(&ticket, &out, &[]);
        assert_eq!(r.code(), Some(2), "ticket {ticket:?}: {}", r.describe());
        assert!(
            r.stderr.contains("bad ticket") && r.stderr.contains(names),
            "ticket {ticket:?}: stderr should name {names:?}: {}",
            r.stderr
        );
        assert_no_output(&out);
    }
}

// ---------------------------------------------------------------- 3-5. peers that will not serve us

/// A loopback UDP port with (very probably) nothing bound to it.
fn free_port() -> u16 {
    let s = UdpSocket::bind("127.0.0.1:0").expect("bind");
    s.local_addr().expect("addr").port()
}

#[test]
fn unreachable_exposer_times_out() {
    let dir = tempfile::tempdir().expect("tempdir");
    let out = dir.path().join("out.bin");
    let ticket = format!(
        "rgtp://127.0.0.1:{}/{}#{}",
        free_port(),
        "ab".repeat(16),
        "11".repeat(32)
    );
    let mut c = rgtp();
    c.arg("pull").arg(&ticket).arg("-o").arg(&out).args([
        "-q",
        "--connect-timeout",
        "2",
        "--idle-timeout",
        "2",
    ]);
    let r = run_bounded(c, Duration::from_secs(60));
    r.expect_code(3);
    assert!(
        r.elapsed < Duration::from_secs(30),
        "the 2 s connect timeout took {:?}",
        r.elapsed
    );
    assert!(r.stderr.contains("no answer"), "{}", r.stderr);
    assert_no_output(&out);
}

/// The scheduling policy of every thread of process `pid` (field 41 of
/// /proc/PID/task/TID/stat: 0 normal, 3 batch).
fn thread_policies(pid: u32) -> Vec<u32> {
    let Ok(tasks) = std::fs::read_dir(format!("/proc/{pid}/task")) else {
        return Vec::new();
    };
    tasks
        .filter_map(|t| std::fs::read_to_string(t.ok()?.path().join("stat")).ok())
        .filter_map(|stat| {
            // Fields after the command name, which may hold spaces: state is 3rd.
            let rest = &stat[stat.rfind(')')? + 2..];
            rest.split(' ').nth(41 - 3)?.parse().ok()
        })
        .collect()
}

#[test]
fn pull_and_get_run_their_threads_under_the_policy_sched_names() {
    let dir = tempfile::tempdir().expect("tempdir");
    let dest = dir.path().join("got");
    let dest = dest.to_str().expect("a UTF-8 temporary path");
    for (command, args, policy) in [
        ("pull", &[][..], 3),
        ("pull", &["--sched", "batch"][..], 3),
        ("pull", &["--sched", "normal"][..], 0),
        ("get", &[][..], 3),
        ("get", &["--sched", "normal"][..], 0),
    ] {
        // A peer that never answers, one per run: the command waits for its first
        // answer meanwhile, and what arrives is this run's.
        let silent = UdpSocket::bind("127.0.0.1:0").expect("bind");
        let ticket = format!(
            "rgtp://127.0.0.1:{}/{}#{}",
            silent.local_addr().expect("addr").port(),
            "ab".repeat(16),
            "11".repeat(32)
        );
        let mut c = rgtp();
        c.args([command, &ticket, "-q", "--connect-timeout", "30"]);
        if command == "pull" {
            c.arg("--discard");
        } else {
            c.arg(dest);
        }
        c.args(args).stdout(Stdio::null()).stderr(Stdio::null());
        let mut child = c.spawn().expect("spawn rgtp");
        // By its first request the command has chosen its policy.
        let mut buf = [0u8; 2048];
        silent
            .set_read_timeout(Some(Duration::from_secs(30)))
            .expect("timeout");
        let got = silent.recv_from(&mut buf);
        let seen = thread_policies(child.id());
        let _ = child.kill();
        let _ = child.wait();
        got.unwrap_or_else(|e| panic!("{command} {args:?}: no first request: {e}"));
        assert!(!seen.is_empty(), "{command} {args:?}: no threads read");
        assert!(
            seen.iter().all(|&p| p == policy),
            "{command} {args:?}: thread policies {seen:?}, want all {policy}"
        );
    }
}

#[test]
fn wrong_exposure_id_times_out() {
    let dir = tempfile::tempdir().expect("tempdir");
    let src = dir.path().join("src.bin");
    let out = dir.path().join("out.bin");
    std::fs::write(&src, data(100_000, 4)).expect("write source");
    let x = Exposer::start(&src, &[]);
    let id = x
        .ticket
        .split('/')
        .nth(3)
        .and_then(|s| s.get(..32))
        .expect("id")
        .to_string();
    let other_id = if id == "00".repeat(16) {
        "01".repeat(16)
    } else {
        "00".repeat(16)
    };
    let ticket = x.ticket_with_id(&other_id);
    assert_ne!(ticket, x.ticket);
    let mut c = rgtp();
    c.arg("pull").arg(&ticket).arg("-o").arg(&out).args([
        "-q",
        "--connect-timeout",
        "2",
        "--idle-timeout",
        "2",
    ]);
    let r = run_bounded(c, Duration::from_secs(60));
    x.stop();
    r.expect_code(3);
    assert!(r.stderr.contains("Exposure_ID"), "{}", r.stderr);
    assert_no_output(&out);
}

//= spec/rgtp-v1.md#8.11
//# A puller MAY be given a limit on Total_Size
#[test]
fn an_exposure_larger_than_max_size_is_refused_and_nothing_written() {
    let dir = tempfile::tempdir().expect("tempdir");
    let src = dir.path().join("src.bin");
    let out = dir.path().join("out.bin");
    std::fs::write(&src, data(300_000, 11)).expect("write source");
    let x = Exposer::start(&src, &[]);
    let mut c = rgtp();
    c.arg("pull").arg(&x.ticket).arg("-o").arg(&out).args([
        "-q",
        "--connect-timeout",
        "2",
        "--max-size",
        "100KiB",
    ]);
    let r = run_bounded(c, CHILD_LIMIT);
    x.stop();
    r.expect_code(6);
    assert!(r.stderr.contains("300000 bytes"), "{}", r.stderr);
    assert!(r.stderr.contains("--max-size 102400"), "{}", r.stderr);
    assert_no_output(&out);
}

#[test]
fn an_exposure_within_max_size_is_pulled() {
    round_trip(300_000, &[], &["--max-size", "300000"]);
}

#[test]
fn discard_and_dev_null_verify_the_pull_and_keep_nothing() {
    let dir = tempfile::tempdir().expect("tempdir");
    let src = dir.path().join("src.bin");
    let out = dir.path().join("out.bin");
    std::fs::write(&src, data(3 << 20, 41)).expect("write source");
    let x = Exposer::start(&src, &[]);
    let kept = pull(&x.ticket, &out, &["--json"]);
    kept.expect_code(0);
    let root_of = |r: &Run| {
        let v: serde_json::Value = serde_json::from_str(r.stdout.trim()).expect("json");
        v["merkle_root"].as_str().expect("root").to_string()
    };
    let root = root_of(&kept);
    std::fs::remove_file(&out).expect("remove output");
    // Run where nothing else lives: whatever a pull wrote would show up here.
    let cwd = tempfile::tempdir().expect("tempdir");
    let null_before = std::fs::metadata("/dev/null").expect("/dev/null");
    for how in [&["--discard"][..], &["-o", "/dev/null"]] {
        let mut c = rgtp();
        c.current_dir(cwd.path())
            .arg("pull")
            .arg(&x.ticket)
            .args(how)
            .args(["--json", "--connect-timeout", "10", "--idle-timeout", "15"]);
        let r = run_bounded(c, CHILD_LIMIT);
        r.expect_code(0);
        assert_eq!(root_of(&r), root, "{how:?}");
        assert!(
            r.stderr.contains("verified against root") && r.stderr.contains("and discarded"),
            "{}",
            r.stderr
        );
        let left: Vec<_> = std::fs::read_dir(cwd.path()).expect("cwd").collect();
        assert!(left.is_empty(), "{how:?} left {left:?}");
    }
    x.stop();
    let null_after = std::fs::metadata("/dev/null").expect("/dev/null");
    assert!(null_after.file_type().is_char_device());
    assert_eq!(null_after.rdev(), null_before.rdev());
    for name in ["/dev/null.rgtp-partial", "/dev/null.rgtp-state"] {
        assert!(!Path::new(name).exists(), "{name} was created");
    }
    // Neither is a usage error that names both ways.
    let mut c = rgtp();
    c.args(["pull", "rgtp://127.0.0.1:9/00#00"]);
    let r = run_bounded(c, CHILD_LIMIT);
    r.expect_code(2);
    assert!(
        r.stderr.contains("-o FILE") && r.stderr.contains("--discard"),
        "{}",
        r.stderr
    );
    // Discarding and naming an output contradict each other.
    let mut c = rgtp();
    c.args(["pull", "rgtp://127.0.0.1:9/00#00", "--discard", "-o"])
        .arg(&out);
    run_bounded(c, CHILD_LIMIT).expect_code(2);
}

#[test]
fn wrong_key_is_an_authentication_failure() {
    let dir = tempfile::tempdir().expect("tempdir");
    let src = dir.path().join("src.bin");
    let out = dir.path().join("out.bin");
    std::fs::write(&src, data(300_000, 5)).expect("write source");
    let x = Exposer::start(&src, &[]);
    let key = x.ticket.rsplit('#').next().expect("key").to_string();
    let other_key = if key == "22".repeat(32) {
        "33".repeat(32)
    } else {
        "22".repeat(32)
    };
    let r = pull(&x.ticket_with_key(&other_key), &out, &[]);
    x.stop();
    r.expect_code(4);
    assert!(r.stderr.contains("authentication"), "{}", r.stderr);
    assert_no_output(&out);
}

// ---------------------------------------------------------------- 6. disk errors

#[test]
fn output_in_missing_directory_is_an_io_error() {
    let dir = tempfile::tempdir().expect("tempdir");
    let src = dir.path().join("src.bin");
    std::fs::write(&src, data(10_000, 6)).expect("write source");
    let x = Exposer::start(&src, &[]);
    let out = dir.path().join("no-such-dir").join("out.bin");
    let r = pull(&x.ticket, &out, &[]);
    x.stop();
    r.expect_code(6);
    assert!(
        r.stderr.contains(&out.display().to_string()),
        "stderr should name {}: {}",
        out.display(),
        r.stderr
    );
    assert_no_output(&out);
}

/// A tiny tmpfs, unmounted when dropped.
struct TinyFs {
    dir: tempfile::TempDir,
}

impl TinyFs {
    fn mount(size: &str) -> Result<TinyFs, String> {
        // SAFETY: geteuid has no preconditions.
        if unsafe { libc::geteuid() } != 0 {
            return Err("not running as root, cannot mount a tmpfs".into());
        }
        let dir = tempfile::tempdir().map_err(|e| e.to_string())?;
        let r = Command::new("mount")
            .args(["-t", "tmpfs", "-o", &format!("size={size}"), "tmpfs"])
            .arg(dir.path())
            .stdin(Stdio::null())
            .output()
            .map_err(|e| format!("cannot run mount: {e}"))?;
        if !r.status.success() {
            return Err(format!(
                "mount -t tmpfs failed ({}): {}",
                r.status,
                String::from_utf8_lossy(&r.stderr).trim()
            ));
        }
        Ok(TinyFs { dir })
    }

    fn path(&self) -> &Path {
        self.dir.path()
    }
}

impl Drop for TinyFs {
    fn drop(&mut self) {
        let _ = Command::new("umount")
            .arg(self.dir.path())
            .stdin(Stdio::null())
            .output();
    }
}

#[test]
fn pull_larger_than_free_space_is_an_io_error() {
    let fs = match TinyFs::mount("1m") {
        Ok(fs) => fs,
        Err(why) => {
            println!("SKIPPED pull_larger_than_free_space_is_an_io_error: {why}");
            eprintln!("SKIPPED pull_larger_than_free_space_is_an_io_error: {why}");
            return;
        }
    };
    let dir = tempfile::tempdir().expect("tempdir");
    let src = dir.path().join("src.bin");
    std::fs::write(&src, data(3 << 20, 7)).expect("write source");
    let x = Exposer::start(&src, &[]);
    let out = fs.path().join("out.bin");
    let r = pull(&x.ticket, &out, &[]);
    x.stop();
    r.expect_code(6);
    assert!(
        r.stderr.contains("space") || r.stderr.contains("No space"),
        "{}",
        r.stderr
    );
    assert_no_output(&out);
    let left: Vec<_> = std::fs::read_dir(fs.path())
        .expect("read tmpfs")
        .map(|e| e.expect("entry").file_name())
        .collect();
    assert!(left.is_empty(), "files left on the full disk: {left:?}");
}

// ---------------------------------------------------------------- 7. expose errors

#[test]
fn expose_missing_file_is_an_io_error_naming_it() {
    let dir = tempfile::tempdir().expect("tempdir");
    let missing = dir.path().join("does-not-exist.bin");
    let mut c = rgtp();
    c.arg("expose").arg(&missing).args(["--port", "0", "-q"]);
    let r = run_bounded(c, Duration::from_secs(60));
    r.expect_code(6);
    assert!(
        r.stderr.contains(&missing.display().to_string()),
        "stderr should name {}: {}",
        missing.display(),
        r.stderr
    );
    assert!(r.stdout.is_empty(), "no ticket expected: {}", r.stdout);
}

#[test]
fn expose_bad_fec_is_a_usage_error_naming_the_fix() {
    let dir = tempfile::tempdir().expect("tempdir");
    let src = dir.path().join("src.bin");
    std::fs::write(&src, b"hello").expect("write source");
    let mut c = rgtp();
    c.arg("expose")
        .arg(&src)
        .args(["--port", "0", "-q", "--fec", "rs:8,10"]);
    let r = run_bounded(c, Duration::from_secs(60));
    r.expect_code(2);
    assert!(r.stderr.contains("--fec"), "{}", r.stderr);
    assert!(r.stderr.contains("K < N"), "{}", r.stderr);
    assert!(r.stdout.is_empty(), "no ticket expected: {}", r.stdout);
}

// ---------------------------------------------------------------- 8. demo

#[test]
fn demo_reports_a_verified_transfer() {
    let mut c = rgtp();
    c.args(["demo", "--size", "2MiB"]);
    let r = run_bounded(c, CHILD_LIMIT);
    r.expect_code(0);
    for word in ["verified", "goodput", "retransmissions", "FEC"] {
        assert!(
            r.stdout.contains(word),
            "report lacks {word:?}: {}",
            r.stdout
        );
    }
    assert!(r.stdout.contains("2097152 bytes"), "{}", r.stdout);
}

#[test]
fn demo_runs_several_times_and_reports_each_and_their_spread() {
    let mut c = rgtp();
    c.args(["demo", "--size", "1MiB", "--runs", "2"]);
    let r = run_bounded(c, CHILD_LIMIT);
    r.expect_code(0);
    assert_eq!(
        r.stdout.matches("verified byte-exact").count(),
        2,
        "{}",
        r.stdout
    );
    assert!(r.stdout.contains("run 2 of 2"), "{}", r.stdout);
    assert!(r.stdout.contains("2 runs of 1.00 MiB"), "{}", r.stdout);
    assert!(r.stdout.contains("highest/lowest"), "{}", r.stdout);
}

#[test]
fn demo_json_gives_each_run_and_the_medians() {
    let mut c = rgtp();
    c.args([
        "demo", "--size", "600KiB", "--runs", "3", "--hash", "blake3", "--json",
    ]);
    let r = run_bounded(c, CHILD_LIMIT);
    r.expect_code(0);
    let v: serde_json::Value = serde_json::from_str(&r.stdout).expect("demo --json prints JSON");
    assert_eq!(v["size"], 600 * 1024);
    assert_eq!(v["hash"], "blake3");
    assert_eq!(v["chunk_size"], 1200);
    let runs = v["runs"].as_array().expect("runs");
    assert_eq!(runs.len(), 3);
    let chunks = (600 * 1024u64).div_ceil(1200);
    let mut goodputs = Vec::new();
    for run in runs {
        assert!(run["puller_datagrams_received"].as_u64().expect("count") >= chunks);
        assert!(run["exposer_datagrams_sent"].as_u64().expect("count") >= chunks);
        let g = run["goodput_mb_per_s"].as_f64().expect("goodput");
        assert!(g > 0.0, "{run}");
        goodputs.push(g);
    }
    goodputs.sort_by(f64::total_cmp);
    let spread = &v["goodput_mb_per_s"];
    assert_eq!(spread["median"].as_f64(), Some(goodputs[1]), "{spread}");
    assert_eq!(spread["lowest"].as_f64(), Some(goodputs[0]), "{spread}");
    assert_eq!(spread["highest"].as_f64(), Some(goodputs[2]), "{spread}");
    assert!(v["seal_mb_per_s"]["median"].as_f64().expect("seal") > 0.0);
}

/// The demo's exposer sends batches of chunks from the sealed store's own pages
/// once the store is a mapping (1 MiB and more), and copies them all with
/// `--copy-sends`; the JSON counts both, and the data arrives the same.
#[test]
fn demo_counts_the_batches_sent_from_the_store() {
    let lent = |extra: &[&str]| {
        let mut c = rgtp();
        c.args(["demo", "--size", "4MiB", "--json"]).args(extra);
        let r = run_bounded(c, CHILD_LIMIT);
        r.expect_code(0);
        let v: serde_json::Value =
            serde_json::from_str(&r.stdout).expect("demo --json prints JSON");
        let run = &v["runs"][0];
        let count = |k: &str| run[k].as_u64().unwrap_or_else(|| panic!("{k}: {run}"));
        (count("exposer_lent_batches"), count("exposer_gso_batches"))
    };
    let (lent_by_default, gso) = lent(&[]);
    assert!(
        lent_by_default > 0 && lent_by_default <= gso,
        "{lent_by_default} of {gso} GSO batches lent"
    );
    assert_eq!(lent(&["--copy-sends"]).0, 0);
}

/// A report printed into a pipe whose reader has gone ends the process as a
/// Unix tool ends, by SIGPIPE, not with a panic about the failed print.
#[test]
fn a_report_into_a_closed_pipe_ends_quietly() {
    use std::os::unix::process::ExitStatusExt;
    let mut child = rgtp()
        .args(["demo", "--size", "64KiB", "--json"])
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("spawn rgtp");
    drop(child.stdout.take());
    let err = drain(child.stderr.take().expect("stderr"));
    let status = wait_bounded(&mut child, CHILD_LIMIT, "rgtp demo");
    let stderr = err.join().unwrap_or_default();
    assert!(!stderr.contains("panicked"), "{stderr}");
    assert_eq!(status.signal(), Some(libc::SIGPIPE), "{status:?}: {stderr}");
}

#[test]
fn demo_runs_must_be_one_or_more() {
    let mut c = rgtp();
    c.args(["demo", "--size", "1k", "--runs", "0"]);
    let r = run_bounded(c, Duration::from_secs(60));
    r.expect_code(2);
    assert!(r.stderr.contains("--runs"), "{}", r.stderr);
}

// ---------------------------------------------------------------- interrupting a pull

fn signal(child: &Child, sig: libc::c_int) {
    let pid = libc::pid_t::try_from(child.id()).expect("pid");
    // SAFETY: plain kill(2) on the pid of a child we spawned and have not reaped.
    unsafe {
        libc::kill(pid, sig);
    }
}

/// Waits up to `limit` for `cond`; false if it never held.
fn wait_for(limit: Duration, mut cond: impl FnMut() -> bool) -> bool {
    let deadline = Instant::now() + limit;
    while Instant::now() < deadline {
        if cond() {
            return true;
        }
        thread::sleep(Duration::from_millis(2));
    }
    cond()
}

/// Waits for a signalled child, killing it after `limit`.
fn reap(mut child: Child, limit: Duration) -> ExitStatus {
    let deadline = Instant::now() + limit;
    loop {
        if let Some(s) = child.try_wait().expect("try_wait") {
            return s;
        }
        if Instant::now() > deadline {
            let _ = child.kill();
            let _ = child.wait();
            panic!("rgtp pull ignored the signal for {limit:?}; killed");
        }
        thread::sleep(Duration::from_millis(20));
    }
}

fn spawn_pull(ticket: &str, out: &Path) -> Child {
    rgtp()
        .arg("pull")
        .arg(ticket)
        .arg("-o")
        .arg(out)
        .args(["-q", "--connect-timeout", "60", "--idle-timeout", "60"])
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("spawn rgtp pull")
}

#[test]
fn interrupted_handshake_removes_the_partial_file() {
    use std::os::unix::process::ExitStatusExt;
    for sig in [libc::SIGINT, libc::SIGTERM] {
        let dir = tempfile::tempdir().expect("tempdir");
        let out = dir.path().join("out.bin");
        let ticket = format!(
            "rgtp://127.0.0.1:{}/{}#{}",
            free_port(),
            "ab".repeat(16),
            "11".repeat(32)
        );
        let child = spawn_pull(&ticket, &out);
        assert!(
            wait_for(Duration::from_secs(30), || partial_of(&out).exists()),
            "the pull never created its partial file"
        );
        // Let the pull get past creating the file into its handshake loop.
        thread::sleep(Duration::from_millis(200));
        signal(&child, sig);
        let status = reap(child, Duration::from_secs(10));
        assert_eq!(status.signal(), Some(sig), "status {status:?}");
        assert_no_output(&out);
    }
}

/// `rgtp pull TICKET -o OUT EXTRA…`, its standard error captured.
fn spawn_pull_with(ticket: &str, out: &Path, extra: &[&str]) -> Child {
    rgtp()
        .arg("pull")
        .arg(ticket)
        .arg("-o")
        .arg(out)
        .args(extra)
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .expect("spawn rgtp pull")
}

/// Stops a running `rgtp pull` as Ctrl-C or `kill` would (SIGTERM), which it reports
/// by ending on that signal once it has saved what it holds; returns its standard
/// error.
fn stop_pull(child: Child) -> String {
    use std::os::unix::process::ExitStatusExt;
    signal(&child, libc::SIGTERM);
    let (status, err) = finish(child, Duration::from_secs(10));
    assert_eq!(
        status.signal(),
        Some(libc::SIGTERM),
        "status {status:?}: {err}"
    );
    err
}

/// How many chunks the record beside `out` claims.
fn held_in(out: &Path) -> u64 {
    let record = std::fs::read(state_of(out)).expect("state");
    rgtp::resume::ResumeState::decode(&record)
        .expect("a state the pull wrote parses")
        .held()
}

fn state_of(out: &Path) -> PathBuf {
    let mut name = out.file_name().expect("name").to_os_string();
    name.push(".rgtp-state");
    out.with_file_name(name)
}

/// Waits for `child` (at most `limit`), returning its status and standard error.
fn finish(mut child: Child, limit: Duration) -> (ExitStatus, String) {
    let mut err = String::new();
    let mut pipe = child.stderr.take().expect("stderr piped");
    let reader = thread::spawn(move || {
        let _ = pipe.read_to_string(&mut err);
        err
    });
    let status = reap(child, limit);
    (status, reader.join().expect("stderr reader"))
}

#[test]
fn an_interrupted_pull_keeps_what_arrived_and_the_same_command_resumes() {
    interrupted_pull_resumes(&[], &[]);
}

#[test]
fn an_interrupted_pull_of_an_exposure_with_proofs_resumes_too() {
    // A plain pull takes up the proofs such an exposure offers: the chunks an
    // earlier run kept carry none, and are judged with their proof runs.
    interrupted_pull_resumes(&["--proofs"], &[]);
}

#[test]
fn an_interrupted_pull_with_proofs_resumes_too() {
    interrupted_pull_resumes(&["--proofs"], &["--proofs"]);
}

#[test]
fn an_interrupted_pull_with_proofs_from_two_exposers_resumes_too() {
    // Kept chunks are judged with their runs whichever exposer sends a run's first
    // chunk.
    let key = "5c".repeat(32);
    let expose = ["--proofs", "--key", key.as_str()];
    let dir = tempfile::tempdir().expect("tempdir");
    let src = dir.path().join("src.bin");
    std::fs::write(&src, data(16 << 20, 9)).expect("write source");
    let other = Exposer::start(&src, &expose);
    interrupted_pull_resumes(&expose, &["--proofs", "--from", &other.ticket]);
    other.stop();
}

fn interrupted_pull_resumes(expose_extra: &[&str], pull_extra: &[&str]) {
    let dir = tempfile::tempdir().expect("tempdir");
    let src = dir.path().join("src.bin");
    let out = dir.path().join("out.bin");
    let bytes = data(16 << 20, 9);
    std::fs::write(&src, &bytes).expect("write source");
    let x = Exposer::start(&src, expose_extra);
    // 4 MB/s: four seconds of transfer, so it is certainly in progress when stopped.
    let mut args = vec!["--max-rate", "4MB/s", "--connect-timeout", "60"];
    args.extend_from_slice(pull_extra);
    let child = spawn_pull_with(&x.ticket, &out, &args);
    // The state is first written a second into the transfer.
    assert!(
        wait_for(Duration::from_secs(30), || state_of(&out).exists()),
        "the pull never recorded its state"
    );
    let err = stop_pull(child);
    assert!(
        !out.exists(),
        "an unfinished pull must not produce the output"
    );
    assert!(partial_of(&out).exists() && state_of(&out).exists());
    assert!(
        err.contains("run the same command again to resume"),
        "{err}"
    );
    let held = held_in(&out);
    assert!(held > 1_000, "{held} chunks after a second at 4 MB/s");

    // Stopped again early in the next run, slowed so that most of its runs are not
    // judged yet (with proofs, the kept chunks of a run wait for its first chunk):
    // the record still claims everything the first one did.
    let mut args = vec!["--max-rate", "50kB/s", "--connect-timeout", "60"];
    args.extend_from_slice(pull_extra);
    let child = spawn_pull_with(&x.ticket, &out, &args);
    std::thread::sleep(Duration::from_millis(700));
    stop_pull(child);
    let again = held_in(&out);
    assert!(
        again >= held,
        "after a second stop the record claims {again} chunks, the first claimed {held}"
    );
    let held = again;

    // The same command again: only the rest is fetched, and the output is exact.
    let mut args = vec!["--connect-timeout", "60"];
    args.extend_from_slice(pull_extra);
    let (status, err) = finish(spawn_pull_with(&x.ticket, &out, &args), CHILD_LIMIT);
    x.stop();
    assert!(status.success(), "{status:?}: {err}");
    let resumed: u64 = err
        .split("resumed: ")
        .nth(1)
        .and_then(|r| r.split_whitespace().next())
        .and_then(|n| n.parse().ok())
        .unwrap_or_else(|| panic!("no resumed count: {err}"));
    // All the record held, but for what the first request asks for before the
    // record is read and, with proofs, the first chunk of each run of 64.
    assert!(
        resumed <= held && resumed + held / 64 + 128 >= held,
        "{resumed} of {held} resumed: {err}"
    );
    assert!(
        std::fs::read(&out).expect("output") == bytes,
        "output differs"
    );
    assert!(!partial_of(&out).exists() && !state_of(&out).exists());
}

#[test]
fn a_pull_that_failed_before_any_chunk_leaves_nothing_behind() {
    let dir = tempfile::tempdir().expect("tempdir");
    let out = dir.path().join("out.bin");
    // Nobody serves this ticket.
    let ticket = format!("rgtp://127.0.0.1:9/{}#{}", "ab".repeat(16), "cd".repeat(32));
    let (status, err) = finish(
        spawn_pull_with(&ticket, &out, &["--connect-timeout", "1"]),
        CHILD_LIMIT,
    );
    assert_eq!(status.code(), Some(3), "{err}");
    assert_no_output(&out);
    assert!(!state_of(&out).exists());
}

#[test]
fn a_resumed_pull_the_exposer_never_answers_keeps_what_was_kept() {
    let dir = tempfile::tempdir().expect("tempdir");
    let out = dir.path().join("out.bin");
    // What an earlier run left: half of a 4-chunk file.
    let state = rgtp::resume::ResumeState {
        exposure_id: [0xab; 16],
        merkle_root: [7; 32],
        total_size: 4800,
        chunk_size: 1200,
        chunk_count: 4,
        bitmap: vec![0b0011],
    };
    state.save(&state_of(&out)).expect("write state");
    let partial = data(4800, 11);
    std::fs::write(partial_of(&out), &partial).expect("write partial");
    // Nobody serves this ticket: every try's handshake times out.
    let ticket = format!("rgtp://127.0.0.1:9/{}#{}", "ab".repeat(16), "cd".repeat(32));
    let args = ["--connect-timeout", "1", "--retries", "1"];
    let (status, err) = finish(spawn_pull_with(&ticket, &out, &args), CHILD_LIMIT);
    assert_eq!(status.code(), Some(3), "{err}");
    assert!(err.contains("retry 1 of 1"), "{err}");
    assert!(!out.exists());
    assert_eq!(
        rgtp::resume::ResumeState::load(&state_of(&out)).expect("read state"),
        Some(state),
        "the state an earlier run kept must survive tries that reach nobody"
    );
    assert!(
        std::fs::read(partial_of(&out)).expect("partial kept") == partial,
        "the partial output must be left as it was"
    );
}

#[test]
fn an_exposer_restarted_with_its_key_serves_the_same_ticket_and_the_pull_carries_on() {
    let dir = tempfile::tempdir().expect("tempdir");
    let src = dir.path().join("src.bin");
    let out = dir.path().join("out.bin");
    let bytes = data(12 << 20, 10);
    std::fs::write(&src, &bytes).expect("write source");
    let key = "3c".repeat(32);
    let x = Exposer::start(&src, &["--key", &key]);
    let ticket = x.ticket.clone();
    let port = ticket
        .strip_prefix("rgtp://127.0.0.1:")
        .and_then(|r| r.split('/').next())
        .expect("port")
        .to_string();
    let args = [
        "--max-rate",
        "4MB/s",
        "--retries",
        "6",
        "--idle-timeout",
        "2",
        "--connect-timeout",
        "2",
    ];
    let child = spawn_pull_with(&ticket, &out, &args);
    assert!(
        wait_for(Duration::from_secs(30), || state_of(&out).exists()),
        "the pull never recorded its state"
    );
    x.stop();
    // The same file and key on the same port: the same exposure, the same ticket.
    let mut again = rgtp()
        .arg("expose")
        .arg(&src)
        .args(["--port", &port, "--bind", "127.0.0.1", "-q", "--key", &key])
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::inherit())
        .spawn()
        .expect("spawn rgtp expose");
    let mut first = String::new();
    BufReader::new(again.stdout.take().expect("stdout"))
        .read_line(&mut first)
        .expect("ticket line");
    let (status, err) = finish(child, CHILD_LIMIT);
    let _ = again.kill();
    let _ = again.wait();
    assert_eq!(
        first.trim(),
        ticket,
        "a restarted exposer must print the same ticket"
    );
    assert!(status.success(), "{status:?}: {err}");
    assert!(err.contains("retry 1 of 6"), "{err}");
    assert!(err.contains("resumed: "), "{err}");
    assert!(
        std::fs::read(&out).expect("output") == bytes,
        "output differs"
    );
}

// 9. A Merkle failure cannot be provoked honestly through the CLI (the exposer
// seals what it reads, and the key authenticates every chunk); the core's own
// tests cover it.

// ---------------------------------------------------------------- pre-shared keys

#[test]
fn expose_with_a_pre_shared_key() {
    let key = "5a".repeat(32);
    let ticket = round_trip(5000, &["--key", &key], &[]);
    assert!(
        ticket.ends_with(&format!("#{key}")),
        "ticket carries the given key: {ticket}"
    );

    // The same key from RGTP_KEY, the variable the C library reads.
    let dir = tempfile::tempdir().expect("tempdir");
    let src = dir.path().join("src.bin");
    std::fs::write(&src, b"hello").expect("write");
    let mut c = rgtp();
    c.arg("expose")
        .arg(&src)
        .args(["--port", "0", "-q"])
        .env("RGTP_KEY", "zz");
    let r = run_bounded(c, Duration::from_secs(30));
    assert_eq!(
        r.code(),
        Some(2),
        "a malformed RGTP_KEY is a usage error: {}",
        r.describe()
    );
    assert!(r.stderr.contains("64 hex digits"), "{}", r.describe());
}

/// Exposes `bytes` with `extra`, recording the exposer's side, pulls it, and
/// returns the ticket and chunk 0's payload (ciphertext ‖ tag) as sent.
fn expose_recorded_chunk0(
    dir: &Path,
    name: &str,
    bytes: &[u8],
    extra: &[&str],
) -> (String, Vec<u8>) {
    let src = dir.join(format!("{name}.bin"));
    let out = dir.join(format!("{name}.out"));
    let rec = dir.join(format!("{name}.pcap"));
    std::fs::write(&src, bytes).expect("write source");
    let mut args = vec!["--record", rec.to_str().unwrap()];
    args.extend_from_slice(extra);
    let x = Exposer::start(&src, &args);
    let r = pull(&x.ticket, &out, &[]);
    let ticket = x.ticket.clone();
    x.stop();
    assert_eq!(r.code(), Some(0), "{name}: {}", r.describe());
    assert!(
        std::fs::read(&out).unwrap() == bytes,
        "{name}: output differs"
    );
    let cap = rgtp_capture::read(&std::fs::read(&rec).unwrap()).unwrap();
    let chunk0 = cap
        .datagrams()
        .find_map(|(_, d)| match rgtp_wire::Repr::parse(&d.payload, 65_507) {
            Ok(rgtp_wire::Repr::ChunkData(c)) if c.chunk_index == 0 => Some(c.payload.to_vec()),
            _ => None,
        })
        .expect("chunk 0 recorded");
    (ticket, chunk0)
}

fn xor(a: &[u8], b: &[u8]) -> Vec<u8> {
    a.iter().zip(b).map(|(x, y)| x ^ y).collect()
}

//= spec/rgtp-v1.md#6.6
//# the key a ticket carries MUST NOT be used directly as the AEAD key of more
//# than one exposure
#[test]
fn one_key_two_files_share_no_keystream() {
    let dir = tempfile::tempdir().expect("tempdir");
    let key = "c3".repeat(32);
    let (a, b) = (data(3000, 21), data(3000, 22));
    let (ta, ca) = expose_recorded_chunk0(dir.path(), "a", &a, &["--key", &key]);
    let (tb, cb) = expose_recorded_chunk0(dir.path(), "b", &b, &["--key", &key]);
    assert!(ta.ends_with(&key) && tb.ends_with(&key), "{ta} {tb}");
    let n = 1200;
    assert_ne!(
        xor(&ca[..n], &cb[..n]),
        xor(&a[..n], &b[..n]),
        "chunk 0 of two exposures under one --key shares a keystream"
    );
    // The upstream-compatible raw-key mode seals under the key itself and still
    // pulls; it is the caller's promise that the key seals nothing else.
    let (_, raw) = expose_recorded_chunk0(
        dir.path(),
        "raw",
        &a,
        &["--key", &"d4".repeat(32), "--dangerous-raw-key"],
    );
    assert_eq!(raw.len(), n + 16);
}

// ---------------------------------------------------------------- recordings

#[test]
fn recordings_over_udp_show_real_addresses_and_replay() {
    let dir = tempfile::tempdir().expect("tempdir");
    let src = dir.path().join("src.bin");
    let out = dir.path().join("out.bin");
    let bytes = data(500_000, 77);
    std::fs::write(&src, &bytes).expect("write source");
    let xrec = dir.path().join("x.pcap");
    let prec = dir.path().join("p.pcap");
    let x = Exposer::start(&src, &["--record", xrec.to_str().unwrap()]);
    let r = pull(&x.ticket, &out, &["--record", prec.to_str().unwrap()]);
    let ticket_text = x.ticket.clone();
    let ticket: rgtp::Ticket = ticket_text.parse().unwrap();
    x.stop();
    assert_eq!(r.code(), Some(0), "{}", r.describe());
    assert!(std::fs::read(&out).unwrap() == bytes);
    let exposer = rgtp_proto::Peer::Ip(ticket.socket_addr().unwrap());
    for path in [&xrec, &prec] {
        let cap = rgtp_capture::read(&std::fs::read(path).unwrap()).unwrap();
        let mut to_exposer = 0;
        for (_, d) in cap.datagrams() {
            assert!(
                d.src == exposer || d.dst == exposer,
                "{:?} -> {:?}",
                d.src,
                d.dst
            );
            let other = if d.src == exposer { d.dst } else { d.src };
            assert!(
                matches!(other, rgtp_proto::Peer::Ip(a) if a.ip().is_loopback() && a.port() != 0),
                "puller address {other:?}"
            );
            to_exposer += usize::from(d.dst == exposer);
        }
        assert!(to_exposer >= 2, "requests recorded");
    }
    let rebuilt = dir.path().join("rebuilt.bin");
    let mut c = rgtp();
    c.args([
        "replay",
        prec.to_str().unwrap(),
        "--ticket",
        &ticket_text,
        "-o",
    ])
    .arg(&rebuilt);
    let r = run_bounded(c, CHILD_LIMIT);
    assert_eq!(r.code(), Some(0), "{}", r.describe());
    assert!(std::fs::read(&rebuilt).unwrap() == bytes);
    let mut c = rgtp();
    c.args([
        "replay",
        xrec.to_str().unwrap(),
        "--ticket",
        &ticket_text,
        "--source",
    ])
    .arg(&src);
    let r = run_bounded(c, CHILD_LIMIT);
    assert_eq!(r.code(), Some(0), "{}", r.describe());
    // That replay read the token secret the exposer wrote beside its capture
    // (owner-only); moved away, the replay says why it cannot reproduce tokens,
    // and named with --token-secret it reproduces them again.
    use std::os::unix::fs::PermissionsExt;
    let secret = dir.path().join("x.pcap.secret");
    let meta = std::fs::metadata(&secret).expect("expose --record writes FILE.secret");
    assert_eq!(meta.permissions().mode() & 0o777, 0o600);
    assert_eq!(std::fs::read_to_string(&secret).unwrap().trim().len(), 64);
    assert!(
        !dir.path().join("p.pcap.secret").exists(),
        "pullers hold no secret"
    );
    let kept = dir.path().join("kept.secret");
    std::fs::rename(&secret, &kept).unwrap();
    let replay_source = |extra: &[&str]| {
        let mut c = rgtp();
        c.args([
            "replay",
            xrec.to_str().unwrap(),
            "--ticket",
            &ticket_text,
            "--source",
        ])
        .arg(&src)
        .args(extra);
        run_bounded(c, CHILD_LIMIT)
    };
    let r = replay_source(&[]);
    assert_eq!(r.code(), Some(2), "{}", r.describe());
    assert!(
        r.stderr.contains("address-validation tokens") && r.stderr.contains("--token-secret"),
        "{}",
        r.describe()
    );
    let r = replay_source(&["--token-secret-from-key"]);
    assert_ne!(
        r.code(),
        Some(0),
        "the secret is not the key's: {}",
        r.describe()
    );
    let r = replay_source(&["--token-secret", kept.to_str().unwrap()]);
    assert_eq!(r.code(), Some(0), "{}", r.describe());
    // `rgtp inspect` reads the same capture: JSON facts, and with the ticket the data.
    let mut c = rgtp();
    c.args(["inspect", prec.to_str().unwrap(), "--json"]);
    let r = run_bounded(c, CHILD_LIMIT);
    assert_eq!(r.code(), Some(0), "{}", r.describe());
    let v: serde_json::Value = serde_json::from_str(&r.stdout).expect("inspect --json prints JSON");
    let x0 = &v["exposures"][0];
    assert_eq!(x0["manifest"]["total_size"], 500_000);
    assert_eq!(x0["chunks"]["distinct"], 417);
    assert_eq!(v["malformed_total"], 0);
    let inspected = dir.path().join("inspected.bin");
    let mut c = rgtp();
    c.args([
        "inspect",
        xrec.to_str().unwrap(),
        "--ticket",
        &ticket_text,
        "-o",
    ])
    .arg(&inspected);
    let r = run_bounded(c, CHILD_LIMIT);
    assert_eq!(r.code(), Some(0), "{}", r.describe());
    assert!(r.stdout.contains("root verified"), "{}", r.stdout);
    assert!(std::fs::read(&inspected).unwrap() == bytes);
    // Another file with the same size is refused before any replay.
    let other = dir.path().join("other.bin");
    std::fs::write(&other, data(500_000, 78)).unwrap();
    let mut c = rgtp();
    c.args([
        "replay",
        xrec.to_str().unwrap(),
        "--ticket",
        &ticket_text,
        "--source",
    ])
    .arg(&other);
    let r = run_bounded(c, CHILD_LIMIT);
    assert_eq!(r.code(), Some(2), "{}", r.describe());
}

// ---------------------------------------------------------------- address validation

/// A ticket holder mints a token for another address (here a socket that never
/// asked for a Manifest) the only ways the ticket allows, and sends a NAK from
/// it: by default the exposer answers with at most 3 times the NAK's size (spec
/// §5.3); an exposer run with --dangerous-token-secret-from-key floods it.
#[test]
fn ticket_holder_cannot_amplify_toward_another_address_over_udp() {
    use rgtp_proto::token::TokenKey;
    use rgtp_wire::{IndexList, Nak, NakFlags, Repr};
    let dir = tempfile::tempdir().expect("tempdir");
    let src = dir.path().join("src.bin");
    std::fs::write(&src, data(200_000, 91)).expect("write source");
    for (extra, bounded) in [
        (&[][..], true),
        (&["--dangerous-token-secret-from-key"][..], false),
    ] {
        let x = Exposer::start(&src, extra);
        let ticket: rgtp::Ticket = x.ticket.parse().unwrap();
        let exposer = ticket.socket_addr().unwrap();
        let victim = std::net::UdpSocket::bind("127.0.0.1:0").unwrap();
        victim
            .set_read_timeout(Some(Duration::from_millis(500)))
            .unwrap();
        let at = rgtp_proto::Instant::from_micros(
            std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .unwrap()
                .as_micros() as u64,
        );
        let peer = rgtp_proto::Peer::Ip(victim.local_addr().unwrap());
        let id = ticket.exposure_id;
        let guesses = [
            TokenKey::dangerous_secret_from_key(ticket.key.as_bytes(), &id),
            *ticket.key.as_bytes(),
            [0; 32],
        ];
        let indices: Vec<u32> = (0..64).collect();
        let mut sent = 0;
        let mut got = 0;
        for guess in guesses {
            let repr = Repr::Nak(Nak {
                exposure_id: id,
                flags: NakFlags::TOKEN,
                indices: IndexList::Slice(&indices),
                token: Some(TokenKey::new(guess).mint(&id, &peer, at)),
            });
            let mut nak = vec![0; repr.buffer_len()];
            repr.emit(&mut nak);
            victim.send_to(&nak, exposer).unwrap();
            sent += nak.len();
            let mut buf = [0u8; 65_536];
            while let Ok(n) = victim.recv(&mut buf) {
                got += n;
            }
        }
        x.stop();
        if bounded {
            assert!(got <= 3 * sent, "forged tokens drew {got} bytes for {sent}");
        } else {
            assert!(
                got > 30 * sent,
                "the dangerous option: {got} bytes for {sent}"
            );
        }
    }
}

// ------------------------------------------------- forged chunks on the path (§8.12)

/// A relay between a puller and an exposer that replaces the first answer for each of
/// the first `count` chunk indices ≡ 1 (mod 3) with a chunk of the same length sealed
/// under the exposure's chunk key but holding the wrong plaintext: what any ticket
/// holder on the path can make. Returns the relay's address and the number forged.
fn forging_relay(
    exposer: std::net::SocketAddr,
    key: rgtp_proto::Key,
    count: usize,
) -> (
    std::net::SocketAddr,
    std::sync::Arc<std::sync::atomic::AtomicUsize>,
) {
    use rgtp_proto::{CipherSuite, KeyMode, SuiteFactory, SuiteId};
    use rgtp_wire::{ChunkData, Repr};
    use std::collections::BTreeSet;
    use std::sync::atomic::{AtomicUsize, Ordering};

    let sock = UdpSocket::bind("127.0.0.1:0").expect("relay socket");
    let addr = sock.local_addr().expect("relay address");
    let forged = std::sync::Arc::new(AtomicUsize::new(0));
    let done = std::sync::Arc::clone(&forged);
    thread::spawn(move || {
        let mut puller = None;
        let mut cipher = None;
        let mut seen = BTreeSet::new();
        let mut buf = vec![0u8; 65_536];
        sock.set_read_timeout(Some(Duration::from_secs(60))).ok();
        while let Ok((n, from)) = sock.recv_from(&mut buf) {
            let mut d = buf[..n].to_vec();
            if from != exposer {
                puller = Some(from);
                let _ = sock.send_to(&d, exposer);
                continue;
            }
            match Repr::parse(&d, 65_507) {
                Ok(Repr::Manifest(m)) if cipher.is_none() => {
                    let suite = SuiteId::from_manifest(&m).expect("suite");
                    let k = suite.key_mode.chunk_key(&key, &m.exposure_id);
                    assert_eq!(suite.key_mode, KeyMode::Derived);
                    cipher = rgtp::DynSuite.cipher(suite.cipher, &k);
                }
                Ok(Repr::ChunkData(c))
                    if c.chunk_index % 3 == 1
                        && seen.len() < count
                        && !seen.contains(&c.chunk_index) =>
                {
                    let c_ = cipher.as_ref().expect("a Manifest came first");
                    let mut payload = vec![0xee; c.payload.len() - 16];
                    let tag = c_.seal(c.chunk_index, &mut payload).expect("seal");
                    payload.extend_from_slice(&tag);
                    seen.insert(c.chunk_index);
                    done.fetch_add(1, Ordering::Relaxed);
                    let repr = Repr::ChunkData(ChunkData {
                        exposure_id: c.exposure_id,
                        chunk_index: c.chunk_index,
                        payload: &payload,
                    });
                    d = vec![0; repr.buffer_len()];
                    repr.emit(&mut d);
                }
                _ => {}
            }
            if let Some(p) = puller {
                let _ = sock.send_to(&d, p);
            }
        }
    });
    (addr, forged)
}

#[test]
fn a_hundred_forged_chunks_on_the_path_are_repaired() {
    let dir = tempfile::tempdir().expect("tempdir");
    let src = dir.path().join("src.bin");
    let out = dir.path().join("out.bin");
    let bytes = data(3 << 20, 0xf0f0);
    std::fs::write(&src, &bytes).expect("write source");
    let x = Exposer::start(&src, &["--chunk-size", "8192"]);
    let ticket: rgtp::Ticket = x.ticket.parse().unwrap();
    let (relay, forged) = forging_relay(ticket.socket_addr().unwrap(), ticket.key.clone(), 100);
    let rest = x.ticket.strip_prefix("rgtp://").expect("scheme");
    let (_, tail) = rest.split_once('/').expect("path");
    let via_relay = format!("rgtp://{relay}/{tail}");
    let mut c = rgtp();
    c.arg("pull").arg(&via_relay).arg("-o").arg(&out).args([
        "--connect-timeout",
        "10",
        "--idle-timeout",
        "15",
    ]);
    let r = run_bounded(c, CHILD_LIMIT);
    x.stop();
    r.expect_code(0);
    assert!(
        r.stderr.contains("100 chunks did not match the root"),
        "{}",
        r.describe()
    );
    eprintln!("{}", r.stderr.trim());
    assert_eq!(forged.load(std::sync::atomic::Ordering::Relaxed), 100);
    let got = std::fs::read(&out).expect("read output");
    assert!(got == bytes, "output differs from the source");
    assert_no_output_partial(&out);
}

fn assert_no_output_partial(out: &Path) {
    assert!(!partial_of(out).exists(), "partial file left behind");
}

#[test]
fn channels_spread_one_pull_over_sockets_and_serving_threads() {
    let dir = tempfile::tempdir().unwrap();
    let src = dir.path().join("src.bin");
    let data: Vec<u8> = (0..3_000_000u32).map(|i| (i % 253) as u8).collect();
    std::fs::write(&src, &data).unwrap();
    let mut exposer = Command::new(BIN)
        .args([
            "expose",
            "--port",
            "0",
            "--bind",
            "127.0.0.1",
            "--channels",
            "3",
        ])
        .arg(&src)
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let mut line = String::new();
    BufReader::new(exposer.stdout.take().unwrap())
        .read_line(&mut line)
        .unwrap();
    let out = dir.path().join("out.bin");
    let st = Command::new(BIN)
        .args(["pull", line.trim(), "--channels", "16", "-q", "-o"])
        .arg(&out)
        .status()
        .unwrap();
    assert!(st.success());
    assert_eq!(std::fs::read(&out).unwrap(), data);
    // Ctrl-C: the exposer says what each serving thread did; the puller's 16 ports
    // were spread over more than one of them (the kernel hashes each port to one
    // thread: all 16 on one thread has a chance of 3 × 3^-16).
    unsafe {
        libc::kill(exposer.id() as i32, libc::SIGINT);
    }
    let mut err = String::new();
    exposer
        .stderr
        .take()
        .unwrap()
        .read_to_string(&mut err)
        .unwrap();
    exposer.wait().unwrap();
    let served = err
        .lines()
        .find_map(|l| l.strip_prefix("served on 3 channels: "))
        .unwrap_or_else(|| panic!("{err}"));
    let busy = served.split(", ").filter(|c| !c.starts_with("0 ")).count();
    assert!(busy >= 2, "{served}");
    // A raw-Ethernet puller is one MAC address: channels are refused on that side.
    let st = Command::new(BIN)
        .args([
            "pull",
            line.trim(),
            "--channels",
            "2",
            "--link",
            "eth:lo",
            "-o",
        ])
        .arg(&out)
        .output()
        .unwrap();
    assert_eq!(st.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&st.stderr).contains("--channels on the exposer"));
}

/// A UDP relay in front of `exposer` that flips a byte in every chunk it passes to
/// the puller (a source that lies); runs until the returned flag is set.
fn lying_relay(exposer: &str) -> (String, std::sync::Arc<std::sync::atomic::AtomicBool>) {
    use std::sync::atomic::{AtomicBool, Ordering};
    let upstream: std::net::SocketAddr = exposer.parse().expect("exposer address");
    let sock = UdpSocket::bind("127.0.0.1:0").expect("relay socket");
    sock.set_read_timeout(Some(Duration::from_millis(50)))
        .expect("timeout");
    let addr = sock.local_addr().expect("relay address").to_string();
    let stop = std::sync::Arc::new(AtomicBool::new(false));
    let flag = stop.clone();
    thread::spawn(move || {
        let mut puller = None;
        let mut buf = vec![0u8; 65_536];
        while !flag.load(Ordering::Relaxed) {
            let Ok((n, from)) = sock.recv_from(&mut buf) else {
                continue;
            };
            if from == upstream {
                let Some(to) = puller else { continue };
                if n > 512 {
                    buf[n - 20] ^= 0x55;
                }
                let _ = sock.send_to(&buf[..n], to);
            } else {
                puller = Some(from);
                let _ = sock.send_to(&buf[..n], upstream);
            }
        }
    });
    (addr, stop)
}

fn ticket_addr(ticket: &str) -> String {
    let rest = ticket.strip_prefix("rgtp://").expect("scheme");
    rest.split_once('/').expect("path").0.to_string()
}

#[test]
fn pull_from_three_exposers_at_once_uses_all_and_drops_a_liar() {
    let dir = tempfile::tempdir().expect("tempdir");
    let file = dir.path().join("data.bin");
    let body = data(3_000_000, 31);
    std::fs::write(&file, &body).expect("write");
    let key = "7a".repeat(32);
    let cap = ["--key", key.as_str(), "--max-rate", "4MB/s"];
    let (a, b, c) = (
        Exposer::start(&file, &cap),
        Exposer::start(&file, &cap),
        Exposer::start(&file, &cap),
    );
    // The same file and key: the same exposure, whichever exposer printed the ticket.
    let id = |t: &str| t.split('/').nth(3).map(|s| s[..32].to_string());
    assert_eq!(id(&a.ticket), id(&b.ticket));

    // All honest: each of the three delivers part of the file.
    let out = dir.path().join("three.bin");
    let mut cmd = rgtp();
    cmd.args(["pull", &a.ticket, "-o"]).arg(&out).args([
        "--from",
        &b.ticket,
        "--from",
        &ticket_addr(&c.ticket),
    ]);
    let run = run_bounded(cmd, CHILD_LIMIT);
    run.expect_code(0);
    assert_eq!(std::fs::read(&out).expect("output"), body);
    let delivered: Vec<u64> = run
        .stderr
        .lines()
        .filter_map(|l| l.split("delivered ").nth(1))
        .filter_map(|t| t.split(' ').next()?.parse().ok())
        .collect();
    assert_eq!(delivered.len(), 3, "{}", run.describe());
    assert!(delivered.iter().all(|&n| n > 100), "{}", run.describe());

    // One source behind a relay that corrupts every chunk: dropped, the pull completes.
    let (liar, stop) = lying_relay(&ticket_addr(&c.ticket));
    let out = dir.path().join("liar.bin");
    let mut cmd = rgtp();
    cmd.args(["pull", &a.ticket, "-o"])
        .arg(&out)
        .args(["--from", &liar, "--from", &b.ticket]);
    let run = run_bounded(cmd, CHILD_LIMIT);
    stop.store(true, std::sync::atomic::Ordering::Relaxed);
    run.expect_code(0);
    assert_eq!(std::fs::read(&out).expect("output"), body);
    assert!(
        run.stderr.contains(&format!("{liar}: dropped (sent "))
            && run.stderr.contains("chunks that failed verification"),
        "{}",
        run.describe()
    );

    // A --from naming another exposure is refused before anything is pulled.
    let other = a.ticket_with_key(&"7b".repeat(32));
    let mut cmd = rgtp();
    cmd.args(["pull", &a.ticket, "-o"])
        .arg(dir.path().join("never.bin"))
        .args(["--from", &other]);
    let run = run_bounded(cmd, CHILD_LIMIT);
    run.expect_code(2);
    assert!(
        run.stderr.contains("another exposure or key"),
        "{}",
        run.describe()
    );
    for e in [a, b, c] {
        e.stop();
    }
}

// ---------------------------------------------------------------- standard input and output

/// `rgtp pull TICKET -o - ARGS` with `TMPDIR` at `tmp`: its status, the bytes it
/// wrote to standard output, and what it said on standard error.
fn pull_to_stdout(ticket: &str, tmp: &Path, extra: &[&str]) -> (ExitStatus, Vec<u8>, String) {
    let mut child = rgtp()
        .args(["pull", ticket, "-o", "-", "-q"])
        .args(extra)
        .env("TMPDIR", tmp)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("spawn rgtp pull");
    let mut out = child.stdout.take().expect("stdout");
    let err = drain(child.stderr.take().expect("stderr"));
    let bytes = thread::spawn(move || {
        let mut v = Vec::new();
        let _ = out.read_to_end(&mut v);
        v
    });
    let status = wait_bounded(&mut child, CHILD_LIMIT, "rgtp pull -o -");
    (
        status,
        bytes.join().expect("stdout reader"),
        err.join().unwrap_or_default(),
    )
}

fn entries(dir: &Path) -> Vec<std::ffi::OsString> {
    std::fs::read_dir(dir)
        .expect("read_dir")
        .map(|e| e.expect("entry").file_name())
        .collect()
}

/// `rgtp expose -` seals what it reads on standard input; `rgtp pull -o -` writes
/// the verified whole to standard output and leaves nothing under `TMPDIR`.
#[test]
fn expose_reads_standard_input_and_pull_writes_standard_output() {
    let src = data(300_000, 41);
    let exposer = Exposer::start_from_stdin(src.clone(), &[]);
    let tmp = tempfile::tempdir().expect("tempdir");
    let (status, bytes, stderr) = pull_to_stdout(
        &exposer.ticket,
        tmp.path(),
        &["--connect-timeout", "10", "--idle-timeout", "15"],
    );
    assert!(status.success(), "{status:?}: {stderr}");
    assert!(
        bytes == src,
        "standard output differs ({} bytes)",
        bytes.len()
    );
    assert!(entries(tmp.path()).is_empty(), "{:?}", entries(tmp.path()));
    exposer.stop();
}

/// A pull to standard output that fails writes nothing there and keeps nothing: it
/// is not resumable, so it says nothing of resuming either.
#[test]
fn a_failed_pull_to_standard_output_leaves_nothing() {
    let ticket = format!(
        "rgtp://127.0.0.1:{}/{}#{}",
        free_port(),
        "ab".repeat(16),
        "11".repeat(32)
    );
    let tmp = tempfile::tempdir().expect("tempdir");
    let (status, bytes, stderr) = pull_to_stdout(
        &ticket,
        tmp.path(),
        &["--connect-timeout", "1", "--retries", "1"],
    );
    assert_eq!(status.code(), Some(3), "{stderr}");
    assert!(stderr.contains("no answer"), "{stderr}");
    assert!(!stderr.contains("resume"), "{stderr}");
    assert!(bytes.is_empty(), "{} bytes on standard output", bytes.len());
    assert!(entries(tmp.path()).is_empty(), "{:?}", entries(tmp.path()));
}

/// A pull to standard output is held under `TMPDIR` until verified; when that has no
/// room, the error says so and names the fix. A 64 KiB tmpfs, mounted in a mount
/// namespace of the pull's own, stands for a small `/tmp`.
#[test]
fn a_pull_to_standard_output_without_room_names_tmpdir() {
    let exposer = Exposer::start_from_stdin(data(300_000, 43), &[]);
    let tmp = tempfile::tempdir().expect("tempdir");
    let mut c = Command::new("unshare");
    c.args(["--mount", "--propagation", "private", "sh", "-c"])
        .arg(
            "mount -t tmpfs -o size=64k rgtp-small \"$1\" && TMPDIR=\"$1\" exec \"$0\" pull \"$2\" \
             -o - -q --connect-timeout 10 --idle-timeout 15",
        )
        .arg(BIN)
        .arg(tmp.path())
        .arg(&exposer.ticket);
    let r = run_bounded(c, CHILD_LIMIT);
    r.expect_code(6);
    assert!(r.stderr.contains("only"), "{}", r.stderr);
    assert!(r.stderr.contains("bytes are free"), "{}", r.stderr);
    assert!(r.stderr.contains("set TMPDIR"), "{}", r.stderr);
    assert!(
        r.stdout.is_empty(),
        "{} bytes on standard output",
        r.stdout.len()
    );
    assert!(entries(tmp.path()).is_empty(), "{:?}", entries(tmp.path()));
    exposer.stop();
}

/// `-o -` and `--json` would both print to standard output: a usage error.
#[test]
fn a_pull_to_standard_output_refuses_json() {
    let mut c = rgtp();
    c.args(["pull", "rgtp://127.0.0.1:9/00#00", "-o", "-", "--json"]);
    let r = run_bounded(c, CHILD_LIMIT);
    r.expect_code(2);
    assert!(r.stderr.contains("--json"), "{}", r.stderr);
    assert!(r.stdout.is_empty(), "{}", r.stdout);
}

/// A directory is not a file to expose: the error names `rgtp send`.
#[test]
fn exposing_a_directory_names_send() {
    let dir = tempfile::tempdir().expect("tempdir");
    let mut c = rgtp();
    c.arg("expose").arg(dir.path()).args(["--port", "0", "-q"]);
    let r = run_bounded(c, CHILD_LIMIT);
    r.expect_code(2);
    assert!(r.stderr.contains("is a directory"), "{}", r.stderr);
    assert!(r.stderr.contains("rgtp send"), "{}", r.stderr);
    assert!(r.stdout.is_empty(), "no ticket expected: {}", r.stdout);
}

/// `rgtp inspect -` reads the capture from standard input (`tcpdump -w - | rgtp
/// inspect -`) and says what it says of the same file.
#[test]
fn inspect_reads_a_capture_from_standard_input() {
    let pcap = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../pcaps/bottleneck.pcap");
    let mut c = rgtp();
    c.arg("inspect").arg(&pcap).arg("--json");
    let from_file = run_bounded(c, CHILD_LIMIT);
    from_file.expect_code(0);
    let mut c = Command::new("sh");
    c.args(["-c", "\"$0\" inspect - --json < \"$1\"", BIN])
        .arg(&pcap);
    let from_stdin = run_bounded(c, CHILD_LIMIT);
    from_stdin.expect_code(0);
    let v: serde_json::Value =
        serde_json::from_str(&from_stdin.stdout).expect("inspect --json prints JSON");
    assert_eq!(v["exposures"][0]["chunks"]["distinct"], 100);
    assert_eq!(from_stdin.stdout, from_file.stdout);
}

/// Ctrl-C at a pipeline `tcpdump -w - | rgtp inspect -` reaches both: the first
/// SIGINT leaves `inspect -` reading to the end of what the writer sent; a second
/// one ends it as usual.
#[test]
fn inspect_from_standard_input_outlasts_one_interrupt() {
    use std::io::Write;
    use std::os::unix::process::ExitStatusExt;
    let pcap =
        std::fs::read(Path::new(env!("CARGO_MANIFEST_DIR")).join("../../pcaps/bottleneck.pcap"))
            .expect("read the capture");
    // Whether the child catches SIGINT now (its handler, not the default), once it
    // runs `rgtp` (before the exec, it has the test's dispositions).
    let catching = |child: &Child| -> bool {
        let exec = std::fs::read(format!("/proc/{}/cmdline", child.id())).unwrap_or_default();
        if !exec.windows(7).any(|w| w == b"inspect") {
            return false;
        }
        let status =
            std::fs::read_to_string(format!("/proc/{}/status", child.id())).unwrap_or_default();
        status
            .lines()
            .find_map(|l| l.strip_prefix("SigCgt:"))
            .and_then(|m| u64::from_str_radix(m.trim(), 16).ok())
            .is_some_and(|m| m & (1 << (libc::SIGINT - 1)) != 0)
    };
    let wait_for = |child: &Child, want: bool| {
        let deadline = Instant::now() + Duration::from_secs(60);
        while catching(child) != want {
            assert!(Instant::now() < deadline, "SIGINT caught: never {want}");
            thread::sleep(Duration::from_millis(10));
        }
    };
    let interrupt = |child: &Child| {
        let pid = libc::pid_t::try_from(child.id()).expect("pid");
        // SAFETY: plain kill(2) on the pid of a child we spawned and have not reaped.
        unsafe {
            libc::kill(pid, libc::SIGINT);
        }
    };
    let spawn = || {
        rgtp()
            .args(["inspect", "-", "--json"])
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .expect("spawn rgtp inspect")
    };
    let mut child = spawn();
    let mut stdin = child.stdin.take().expect("stdin");
    stdin
        .write_all(&pcap[..pcap.len() / 2])
        .expect("first half");
    wait_for(&child, true);
    interrupt(&child);
    wait_for(&child, false);
    stdin
        .write_all(&pcap[pcap.len() / 2..])
        .expect("second half");
    drop(stdin);
    let out = child.wait_with_output().expect("wait");
    assert!(out.status.success(), "{out:?}");
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).expect("JSON");
    assert_eq!(v["exposures"][0]["chunks"]["distinct"], 100);

    let mut child = spawn();
    let stdin = child.stdin.take().expect("stdin");
    wait_for(&child, true);
    interrupt(&child);
    wait_for(&child, false);
    interrupt(&child);
    let status = wait_bounded(&mut child, CHILD_LIMIT, "inspect after a second SIGINT");
    drop(stdin);
    assert_eq!(status.signal(), Some(libc::SIGINT), "{status:?}");
}

/// `rgtp man --dir` writes a page for every command at every depth, each the same
/// bytes `rgtp man COMMAND…` prints; the main page has the exit statuses and the
/// environment as sections, every other page points back at it.
#[test]
fn manual_pages_cover_every_command() {
    let dir = tempfile::tempdir().expect("tempdir");
    let mut c = rgtp();
    c.args(["man", "--dir"]).arg(dir.path());
    let r = run_bounded(c, CHILD_LIMIT);
    r.expect_code(0);
    let mut pages: Vec<String> = entries(dir.path())
        .into_iter()
        .map(|n| n.into_string().expect("utf-8 name"))
        .collect();
    pages.sort();
    for want in [
        "rgtp.1",
        "rgtp-expose.1",
        "rgtp-pull.1",
        "rgtp-send.1",
        "rgtp-get.1",
        "rgtp-inspect.1",
        "rgtp-replay.1",
        "rgtp-demo.1",
        "rgtp-tej-serve.1",
        "rgtp-gtudp-send.1",
        "rgtp-flow-echo-server.1",
        "rgtp-sweep-merge.1",
        "rgtp-man.1",
        "rgtp-completions.1",
    ] {
        assert!(pages.iter().any(|p| p == want), "{want} missing: {pages:?}");
    }
    assert!(
        r.stderr.contains(&format!("{} manual pages", pages.len())),
        "{}",
        r.stderr
    );
    let texts: Vec<(String, String)> = pages
        .iter()
        .map(|p| {
            let text = std::fs::read_to_string(dir.path().join(p)).expect("page");
            (p.trim_end_matches(".1").to_string(), text)
        })
        .collect();
    // A command's words: its parent's (the one page that lists it among its
    // commands) and its own name (which may hold a hyphen: `flow echo-server`).
    let words = |name: &str| -> Vec<String> {
        let mut words = Vec::new();
        let mut name = name.to_string();
        while name != "rgtp" {
            let listed = format!("{}(1)", name.replace('-', "\\-"));
            let parents: Vec<&String> = texts
                .iter()
                .filter(|(n, t)| *n != name && t.contains(&listed))
                .map(|(n, _)| n)
                .collect();
            assert_eq!(parents.len(), 1, "pages listing {name}: {parents:?}");
            let own = name[parents[0].len() + 1..].to_string();
            words.insert(0, own);
            name = parents[0].clone();
        }
        words
    };
    for (name, text) in &texts {
        let page = format!("{name}.1");
        assert!(text.contains(&format!(".TH {name} 1")), "{page}: {text}");
        let mut c = rgtp();
        c.arg("man").args(words(name));
        let printed = run_bounded(c, CHILD_LIMIT);
        printed.expect_code(0);
        assert!(
            printed.stdout == *text,
            "`rgtp man` for {page} differs from the file"
        );
        if name == "rgtp" {
            for section in [".SH \"EXIT STATUS\"", ".SH ENVIRONMENT", "rgtp\\-pull(1)"] {
                assert!(text.contains(section), "{section} missing from rgtp.1");
            }
            for code in [0, 2, 3, 4, 5, 6, 7] {
                assert!(
                    text.contains(&format!(".B {code}\n")),
                    "status {code} missing"
                );
            }
        } else {
            assert!(
                text.contains(".BR rgtp (1)"),
                "{page} does not point at rgtp(1)"
            );
        }
    }
    let pull = std::fs::read_to_string(dir.path().join("rgtp-pull.1")).expect("page");
    for option in ["\\-\\-idle\\-timeout", "\\-\\-proofs", "\\-\\-retries"] {
        assert!(pull.contains(option), "rgtp-pull.1 lacks {option}");
    }
    // `--help`'s closing examples become an EXAMPLES section, commands unfilled.
    assert!(
        pull.contains(".SH EXAMPLES\n.PP\nPull into a file")
            && pull.contains(".nf\nrgtp pull \"$TICKET\" \\-o big.iso\n.fi"),
        "{pull}"
    );
}

/// A page for a command that does not exist is a usage error naming the ones that do.
#[test]
fn a_manual_page_for_an_unknown_command_names_the_known_ones() {
    let mut c = rgtp();
    c.args(["man", "tej", "nope"]);
    let r = run_bounded(c, CHILD_LIMIT);
    r.expect_code(2);
    assert!(
        r.stderr.contains("`rgtp tej` has no command \"nope\""),
        "{}",
        r.stderr
    );
    assert!(r.stderr.contains("serve, send"), "{}", r.stderr);
    assert!(r.stdout.is_empty(), "{}", r.stdout);
}

/// The bash completion script completes commands and each command's options: it is
/// sourced into bash and asked, as bash asks it on Tab.
#[test]
fn bash_completion_completes_commands_and_options() {
    let mut c = rgtp();
    c.args(["completions", "bash"]);
    let script = run_bounded(c, CHILD_LIMIT);
    script.expect_code(0);
    let dir = tempfile::tempdir().expect("tempdir");
    let path = dir.path().join("rgtp.bash");
    std::fs::write(&path, &script.stdout).expect("write script");
    let mut c = Command::new("bash");
    c.arg("-c")
        .arg(
            "source \"$0\" || exit 9
             ask() { COMP_WORDS=(\"$@\"); COMP_CWORD=$(($# - 1));
                     _rgtp rgtp \"${COMP_WORDS[COMP_CWORD]}\" \"${COMP_WORDS[COMP_CWORD-1]}\" 2>/dev/null
                     echo \"${COMPREPLY[*]}\"; }
             ask rgtp pu
             ask rgtp pull --idle
             ask rgtp tej s",
        )
        .arg(&path);
    let r = run_bounded(c, CHILD_LIMIT);
    r.expect_code(0);
    let lines: Vec<&str> = r.stdout.lines().collect();
    assert_eq!(lines.len(), 3, "{}", r.stdout);
    assert_eq!(lines[0], "pull", "{}", r.stdout);
    assert_eq!(lines[1], "--idle-timeout", "{}", r.stdout);
    let words: Vec<&str> = lines[2].split_whitespace().collect();
    assert!(
        words.contains(&"serve") && words.contains(&"send"),
        "{}",
        r.stdout
    );
}
