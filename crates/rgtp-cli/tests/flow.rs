//! `rgtp flow` as processes: an echo server found by name through the file
//! directory, RGTP_FLOW_NAMES, the directory server and `rgtp flow bind`;
//! every echo checked; an unknown name refused with a clear message.

use std::io::{BufRead, BufReader};
use std::os::unix::process::CommandExt;
use std::path::Path;
use std::process::{Child, Command, Output, Stdio};

const BIN: &str = env!("CARGO_BIN_EXE_rgtp");

/// A background `rgtp` process and the first line it printed.
struct Proc {
    child: Child,
    first: String,
    out: BufReader<std::process::ChildStdout>,
}

impl Proc {
    fn start(args: &[&str], env: &[(&str, &str)], group: bool) -> Proc {
        let mut cmd = Command::new(BIN);
        cmd.args(args)
            .env_remove("RGTP_FLOW_NAMES")
            .env_remove("RGTP_FLOW_DIRECTORY")
            .env_remove("RGTP_FLOW_BIND")
            .envs(env.iter().copied())
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit());
        if group {
            cmd.process_group(0);
        }
        let mut child = cmd.spawn().unwrap();
        let mut out = BufReader::new(child.stdout.take().unwrap());
        let mut first = String::new();
        out.read_line(&mut first).unwrap();
        Proc { child, first, out }
    }

    /// The address after `prefix` on the first line.
    fn addr(&self, prefix: &str) -> String {
        let rest = self.first.trim().strip_prefix(prefix).expect(&self.first);
        rest.split_whitespace().next().unwrap().to_string()
    }

    /// Ends it with SIGTERM (its whole group with `group`); returns what it
    /// printed after the first line.
    fn stop(mut self, group: bool) -> String {
        let target = if group {
            format!("-{}", self.child.id())
        } else {
            self.child.id().to_string()
        };
        let st = Command::new("kill")
            .args(["-TERM", "--", &target])
            .status()
            .unwrap();
        assert!(st.success());
        let mut rest = String::new();
        let mut line = String::new();
        while self.out.read_line(&mut line).unwrap() > 0 {
            rest.push_str(&line);
            line.clear();
        }
        let status = self.child.wait().unwrap();
        assert!(status.success(), "{status:?}");
        rest
    }
}

impl Drop for Proc {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn rgtp(args: &[&str], env: &[(&str, &str)]) -> Output {
    Command::new(BIN)
        .args(args)
        .env_remove("RGTP_FLOW_NAMES")
        .env_remove("RGTP_FLOW_DIRECTORY")
        .env_remove("RGTP_FLOW_BIND")
        .envs(env.iter().copied())
        .output()
        .unwrap()
}

/// Runs `rgtp flow echo NAME --json` and checks its report.
fn echo_ok(name: &str, count: u64, env: &[(&str, &str)]) -> serde_json::Value {
    let c = count.to_string();
    let out = rgtp(
        &[
            "flow", "echo", name, "--count", &c, "--size", "64", "--json",
        ],
        env,
    );
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(v["count"], count);
    assert_eq!(v["size"], 64);
    let (p50, p99) = (v["p50_us"].as_f64().unwrap(), v["p99_us"].as_f64().unwrap());
    assert!(p50 > 0.0 && p99 >= p50, "{v}");
    assert!(v["messages_per_s"].as_f64().unwrap() > 0.0, "{v}");
    v
}

fn dir_env(dir: &Path) -> String {
    dir.to_str().unwrap().to_string()
}

#[test]
fn test_echo_by_file_directory_and_static_names() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir_env(dir.path());
    let server = Proc::start(
        &[
            "flow",
            "echo-server",
            "--name",
            "cli-echo",
            "--bind",
            "127.0.0.1:0",
        ],
        &[("RGTP_FLOW_DIR", &d)],
        false,
    );
    let addr = server.addr("listening on ");
    assert!(dir.path().join("cli-echo").exists());
    let v = echo_ok("cli-echo", 300, &[("RGTP_FLOW_DIR", &d)]);
    assert_eq!(v["peer"], addr.as_str());

    // The same server through RGTP_FLOW_NAMES, from an empty file directory.
    let empty = tempfile::tempdir().unwrap();
    let names = format!("cli-echo={addr}");
    echo_ok(
        "cli-echo",
        50,
        &[
            ("RGTP_FLOW_DIR", &dir_env(empty.path())),
            ("RGTP_FLOW_NAMES", &names),
        ],
    );
    let summary = server.stop(false);
    assert!(
        summary.contains("served 2 flows, echoed 350 messages"),
        "{summary}"
    );
    assert!(!dir.path().join("cli-echo").exists(), "entry left behind");
}

#[test]
fn test_unknown_name_exits_with_a_clear_message() {
    let dir = tempfile::tempdir().unwrap();
    let out = rgtp(
        &["flow", "echo", "nobody-home", "--count", "1"],
        &[("RGTP_FLOW_DIR", &dir_env(dir.path()))],
    );
    assert_eq!(out.status.code(), Some(2));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("\"nobody-home\""), "{err}");
    assert!(
        err.contains("rgtp flow bind nobody-home -- COMMAND"),
        "{err}"
    );
}

#[test]
fn test_echo_through_directory_server() {
    let dirsrv = Proc::start(&["flow", "directory", "--bind", "127.0.0.1:0"], &[], false);
    let at = dirsrv.addr("directory on ");
    let (a, b) = (tempfile::tempdir().unwrap(), tempfile::tempdir().unwrap());
    let server = Proc::start(
        &[
            "flow",
            "echo-server",
            "--name",
            "far",
            "--bind",
            "0.0.0.0:0",
        ],
        &[
            ("RGTP_FLOW_DIR", &dir_env(a.path())),
            ("RGTP_FLOW_DIRECTORY", &at),
        ],
        false,
    );
    let v = echo_ok(
        "far",
        100,
        &[
            ("RGTP_FLOW_DIR", &dir_env(b.path())),
            ("RGTP_FLOW_DIRECTORY", &at),
        ],
    );
    let port = server
        .addr("listening on ")
        .rsplit_once(':')
        .unwrap()
        .1
        .to_string();
    assert_eq!(v["peer"], format!("127.0.0.1:{port}"));
    server.stop(false);
    // Withdrawn from the directory as the server ended.
    let out = rgtp(
        &["flow", "echo", "far", "--count", "1"],
        &[
            ("RGTP_FLOW_DIR", &dir_env(b.path())),
            ("RGTP_FLOW_DIRECTORY", &at),
        ],
    );
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains(&format!("directory server {at}")));
    dirsrv.stop(false);
}

#[test]
fn test_bind_registers_the_name_for_the_program() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir_env(dir.path());
    let wrapped = Proc::start(
        &[
            "flow",
            "bind",
            "bound-name",
            "--",
            BIN,
            "flow",
            "echo-server",
            "--name",
            "its-own",
            "--bind",
            "127.0.0.1:0",
        ],
        &[("RGTP_FLOW_DIR", &d)],
        true,
    );
    assert!(
        wrapped.first.starts_with("listening on "),
        "{}",
        wrapped.first
    );
    assert!(dir.path().join("bound-name").exists());
    assert!(dir.path().join("its-own").exists());
    echo_ok("bound-name", 20, &[("RGTP_FLOW_DIR", &d)]);
    echo_ok("its-own", 20, &[("RGTP_FLOW_DIR", &d)]);
    wrapped.stop(true);
    assert!(!dir.path().join("bound-name").exists());
}

#[test]
fn test_send_file_to_a_receiver_found_by_name() {
    let names = tempfile::tempdir().unwrap();
    let d = dir_env(names.path());
    let (src, dst) = (tempfile::tempdir().unwrap(), tempfile::tempdir().unwrap());
    let file = src.path().join("blob.bin");
    let data: Vec<u8> = (0..(1u32 << 20) + 777)
        .map(|i| (i.wrapping_mul(2_654_435_761) >> 13) as u8)
        .collect();
    std::fs::write(&file, &data).unwrap();
    let out_dir = dst.path().join("in");
    let mut recv = Proc::start(
        &[
            "flow",
            "recv-file",
            "--name",
            "cli-bulk",
            "--bind",
            "127.0.0.1:0",
            "--json",
            out_dir.to_str().unwrap(),
        ],
        &[("RGTP_FLOW_DIR", &d)],
        false,
    );
    let first: serde_json::Value = serde_json::from_str(&recv.first).unwrap();
    assert_eq!(first["name"], "cli-bulk");
    let sent = rgtp(
        &[
            "flow",
            "send-file",
            "cli-bulk",
            file.to_str().unwrap(),
            "--as",
            "copy.bin",
            "--json",
        ],
        &[("RGTP_FLOW_DIR", &d)],
    );
    assert!(
        sent.status.success(),
        "{}",
        String::from_utf8_lossy(&sent.stderr)
    );
    let sent_lines: Vec<serde_json::Value> = String::from_utf8_lossy(&sent.stdout)
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    let sent = sent_lines.last().unwrap();
    assert_eq!(sent["sent"], "copy.bin");
    assert_eq!(sent["size"], data.len() as u64);

    let mut rest = String::new();
    let mut line = String::new();
    while recv.out.read_line(&mut line).unwrap() > 0 {
        rest.push_str(&line);
        line.clear();
    }
    assert!(recv.child.wait().unwrap().success(), "{rest}");
    let lines: Vec<serde_json::Value> = rest
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    assert_eq!(lines[0]["offer"], "copy.bin");
    assert_eq!(lines[0]["size"], data.len() as u64);
    let progress: Vec<&serde_json::Value> =
        lines.iter().filter(|v| v.get("done").is_some()).collect();
    assert!(!progress.is_empty(), "{rest}");
    let last_progress = progress.last().unwrap();
    assert_eq!(last_progress["done"], data.len() as u64);
    assert_eq!(last_progress["total"], data.len() as u64);
    let got = lines.last().unwrap();
    assert_eq!(got["size"], data.len() as u64);
    assert_eq!(got["root"], sent["root"]);
    assert_eq!(got["received"], out_dir.join("copy.bin").to_str().unwrap());
    assert_eq!(std::fs::read(out_dir.join("copy.bin")).unwrap(), data);
}

#[test]
fn test_send_file_refusals_exit_with_a_clear_message() {
    let names = tempfile::tempdir().unwrap();
    let d = dir_env(names.path());
    let file = names.path().join("x");
    std::fs::write(&file, b"x").unwrap();
    // Nobody registered the name.
    let out = rgtp(
        &["flow", "send-file", "nobody-here", file.to_str().unwrap()],
        &[("RGTP_FLOW_DIR", &d)],
    );
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("\"nobody-here\""));

    // A receiver that takes 0 bytes at most refuses, and says so to the sender.
    let dst = tempfile::tempdir().unwrap();
    let mut recv = Proc::start(
        &[
            "flow",
            "recv-file",
            "--name",
            "tiny",
            "--bind",
            "127.0.0.1:0",
            "--max-size",
            "0",
            dst.path().to_str().unwrap(),
        ],
        &[("RGTP_FLOW_DIR", &d)],
        false,
    );
    let out = rgtp(
        &["flow", "send-file", "tiny", file.to_str().unwrap()],
        &[("RGTP_FLOW_DIR", &d)],
    );
    assert_eq!(out.status.code(), Some(7));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("refused") && err.contains("declares 1 bytes"),
        "{err}"
    );
    let status = recv.child.wait().unwrap();
    assert_eq!(status.code(), Some(7));
    assert_eq!(std::fs::read_dir(dst.path()).unwrap().count(), 0);
}
