//! `rgtp send` and `rgtp get`: trees over loopback UDP, byte-exact, with modes and
//! times; parallel files; symbolic links refused or kept; a plain ticket refused with
//! the right advice; an interrupted `get` resumed by running it again; a set from two
//! senders at once; hostile names in a forged listing (a 1,000-file tree and more
//! hostile listings: `files_tree.rs`).

use std::io::{BufRead, BufReader, Read};
use std::os::unix::fs::{MetadataExt, PermissionsExt};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::thread;
use std::time::{Duration, Instant, UNIX_EPOCH};

const BIN: &str = env!("CARGO_BIN_EXE_rgtp");

fn rgtp() -> Command {
    let mut c = Command::new(BIN);
    c.env_remove("RGTP_LOG").env_remove("RGTP_KEY");
    c
}

/// A running `rgtp send`, killed when dropped.
struct Sender {
    child: Child,
    ticket: String,
}

impl Sender {
    fn start(paths: &[&Path], extra: &[&str]) -> Sender {
        let mut child = rgtp()
            .arg("send")
            .args(paths)
            .args(["--port", "0", "--bind", "127.0.0.1", "-q"])
            .args(extra)
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .spawn()
            .expect("spawn rgtp send");
        let mut line = String::new();
        BufReader::new(child.stdout.take().expect("stdout"))
            .read_line(&mut line)
            .expect("ticket");
        assert!(line.starts_with("rgtp://"), "no ticket: {line:?}");
        Sender {
            child,
            ticket: line.trim().to_string(),
        }
    }
}

impl Drop for Sender {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Runs a command to the end (at most two minutes): status code, stdout, stderr.
fn run(mut c: Command) -> (Option<i32>, String, String) {
    let mut child = c
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("spawn");
    let (mut out, mut err) = (String::new(), String::new());
    let mut o = child.stdout.take().expect("stdout");
    let mut e = child.stderr.take().expect("stderr");
    let t = thread::spawn(move || {
        let _ = e.read_to_string(&mut err);
        err
    });
    let _ = o.read_to_string(&mut out);
    let deadline = Instant::now() + Duration::from_secs(120);
    let status = loop {
        if let Some(s) = child.try_wait().expect("wait") {
            break s;
        }
        if Instant::now() > deadline {
            let _ = child.kill();
            panic!("command hung");
        }
        thread::sleep(Duration::from_millis(20));
    };
    (status.code(), out, t.join().expect("stderr"))
}

fn bytes(len: usize, seed: u8) -> Vec<u8> {
    (0..len)
        .map(|i| (i as u32).wrapping_mul(2_654_435_761).to_le_bytes()[i % 4] ^ seed)
        .collect()
}

/// A tree with nested directories, an empty file, two equal files, odd modes and times.
fn make_tree(root: &Path) {
    std::fs::create_dir_all(root.join("sub/deeper")).unwrap();
    std::fs::create_dir_all(root.join("empty-dir")).unwrap();
    std::fs::write(root.join("big.bin"), bytes(3_000_001, 1)).unwrap();
    std::fs::write(root.join("sub/a.txt"), b"hello\n").unwrap();
    std::fs::write(root.join("sub/same.txt"), b"hello\n").unwrap();
    std::fs::write(root.join("sub/empty"), b"").unwrap();
    std::fs::write(root.join("sub/deeper/ü n i.txt"), bytes(1201, 2)).unwrap();
    std::fs::set_permissions(
        root.join("sub/a.txt"),
        std::fs::Permissions::from_mode(0o640),
    )
    .unwrap();
    std::fs::set_permissions(
        root.join("sub/deeper"),
        std::fs::Permissions::from_mode(0o750),
    )
    .unwrap();
    let old = UNIX_EPOCH + Duration::new(1_600_000_000, 123_456_789);
    for p in ["sub/a.txt", "big.bin", "sub/deeper"] {
        let f = std::fs::File::open(root.join(p)).unwrap();
        f.set_modified(old).unwrap();
    }
}

/// Every path under `a` is under `b` with the same kind, content, mode and mtime.
fn assert_same_tree(a: &Path, b: &Path) {
    let mut stack = vec![PathBuf::new()];
    let mut n = 0;
    while let Some(rel) = stack.pop() {
        let (pa, pb) = (a.join(&rel), b.join(&rel));
        let (ma, mb) = (
            std::fs::symlink_metadata(&pa).unwrap(),
            std::fs::symlink_metadata(&pb).unwrap_or_else(|e| panic!("{}: {e}", pb.display())),
        );
        assert_eq!(ma.file_type(), mb.file_type(), "{}", rel.display());
        n += 1;
        if ma.file_type().is_symlink() {
            assert_eq!(
                std::fs::read_link(&pa).unwrap(),
                std::fs::read_link(&pb).unwrap()
            );
            continue;
        }
        assert_eq!(
            ma.mode() & 0o777,
            mb.mode() & 0o777,
            "mode of {}",
            rel.display()
        );
        assert_eq!(
            ma.modified().unwrap(),
            mb.modified().unwrap(),
            "mtime of {}",
            rel.display()
        );
        if ma.is_dir() {
            for e in std::fs::read_dir(&pa).unwrap() {
                stack.push(rel.join(e.unwrap().file_name()));
            }
        } else {
            assert!(
                std::fs::read(&pa).unwrap() == std::fs::read(&pb).unwrap(),
                "content of {}",
                rel.display()
            );
        }
    }
    assert!(n > 5);
}

#[test]
fn a_tree_arrives_byte_exact_with_modes_and_times_one_file_or_three_at_a_time() {
    let dir = tempfile::tempdir().unwrap();
    let src = dir.path().join("tree");
    make_tree(&src);
    let one = dir.path().join("solo.bin");
    std::fs::write(&one, bytes(5000, 3)).unwrap();
    let s = Sender::start(&[&src, &one], &[]);
    for parallel in ["1", "3"] {
        let dest = dir.path().join(format!("dest-{parallel}"));
        let mut c = rgtp();
        c.args(["get", &s.ticket])
            .arg(&dest)
            .args(["--parallel-files", parallel, "--json"]);
        let (code, out, err) = run(c);
        assert_eq!(code, Some(0), "{err}");
        assert_same_tree(&src, &dest.join("tree"));
        assert!(std::fs::read(dest.join("solo.bin")).unwrap() == std::fs::read(&one).unwrap());
        let events: Vec<serde_json::Value> = out
            .lines()
            .map(|l| serde_json::from_str(l).expect("one JSON object a line"))
            .collect();
        let files = events.iter().filter(|e| e["event"] == "file").count();
        assert_eq!(files, 6, "{out}");
        let done = events.last().unwrap();
        assert_eq!(done["event"], "done");
        assert_eq!(done["bytes"], 3_000_001 + 6 + 6 + 1201 + 5000);
    }
}

#[test]
fn symbolic_links_are_refused_unless_kept_and_then_arrive_as_links() {
    let dir = tempfile::tempdir().unwrap();
    let src = dir.path().join("tree");
    std::fs::create_dir_all(src.join("d")).unwrap();
    std::fs::write(src.join("d/target.txt"), b"t").unwrap();
    std::os::unix::fs::symlink("target.txt", src.join("d/link")).unwrap();
    let mut c = rgtp();
    c.arg("send").arg(&src).args(["--port", "0", "-q"]);
    let (code, _, err) = run(c);
    assert_eq!(code, Some(2), "{err}");
    assert!(err.contains("--keep-symlinks"), "{err}");

    let s = Sender::start(&[&src], &["--keep-symlinks"]);
    let dest = dir.path().join("dest");
    let mut c = rgtp();
    c.args(["get", &s.ticket, "-q"]).arg(&dest);
    let (code, _, err) = run(c);
    assert_eq!(code, Some(0), "{err}");
    let link = dest.join("tree/d/link");
    assert!(std::fs::symlink_metadata(&link)
        .unwrap()
        .file_type()
        .is_symlink());
    assert_eq!(std::fs::read(&link).unwrap(), b"t");
}

#[test]
fn a_single_exposure_ticket_is_refused_with_the_command_that_fetches_it() {
    let dir = tempfile::tempdir().unwrap();
    let f = dir.path().join("f");
    std::fs::write(&f, b"plain").unwrap();
    let mut child = rgtp()
        .arg("expose")
        .arg(&f)
        .args(["--port", "0", "--bind", "127.0.0.1", "-q"])
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let mut ticket = String::new();
    BufReader::new(child.stdout.take().unwrap())
        .read_line(&mut ticket)
        .unwrap();
    let mut c = rgtp();
    c.args(["get", ticket.trim(), "-q"])
        .arg(dir.path().join("d"));
    let (code, _, err) = run(c);
    let _ = child.kill();
    let _ = child.wait();
    assert_eq!(code, Some(2), "{err}");
    assert!(err.contains("rgtp pull TICKET -o FILE"), "{err}");
}

#[test]
fn an_interrupted_get_resumes_when_run_again() {
    let dir = tempfile::tempdir().unwrap();
    let src = dir.path().join("tree");
    std::fs::create_dir_all(&src).unwrap();
    std::fs::write(src.join("big.bin"), bytes(12 << 20, 4)).unwrap();
    let s = Sender::start(&[&src], &[]);
    let dest = dir.path().join("dest");
    let state = dest.join("tree/big.bin.rgtp-state");
    let mut child = rgtp()
        .args(["get", &s.ticket, "-q", "--max-rate", "4MB/s"])
        .arg(&dest)
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let deadline = Instant::now() + Duration::from_secs(30);
    while !state.exists() {
        assert!(Instant::now() < deadline, "no state recorded");
        thread::sleep(Duration::from_millis(20));
    }
    // SAFETY: kill(2) on our own child.
    unsafe {
        libc::kill(child.id() as i32, libc::SIGKILL);
    }
    let _ = child.wait();
    assert!(!dest.join("tree/big.bin").exists());
    let mut c = rgtp();
    c.args(["get", &s.ticket, "--json"]).arg(&dest);
    let (code, out, err) = run(c);
    assert_eq!(code, Some(0), "{err}");
    let file: serde_json::Value = serde_json::from_str(out.lines().next().unwrap()).unwrap();
    assert!(file["resumed_chunks"].as_u64().unwrap() > 0, "{out}");
    assert!(
        std::fs::read(dest.join("tree/big.bin")).unwrap() == bytes(12 << 20, 4),
        "output differs"
    );
}

#[test]
fn a_senders_per_file_cap_is_told_to_the_receiver_and_kept() {
    // 1 MB served at most 1 MB/s per file: about a second however fast the machine;
    // uncapped it takes a few milliseconds. The receiver sets no cap of its own.
    let tmp = tempfile::tempdir().unwrap();
    let src = tmp.path().join("f.bin");
    let data = bytes(1_000_000, 3);
    std::fs::write(&src, &data).unwrap();
    let sender = Sender::start(
        &[&src],
        &["--max-rate-per-file", "1MB/s", "--max-rate", "4MB/s"],
    );
    let dest = tmp.path().join("dest");
    let mut c = rgtp();
    c.args(["get", &sender.ticket]).arg(&dest).arg("-q");
    let t0 = Instant::now();
    let (code, _, err) = run(c);
    let took = t0.elapsed();
    assert_eq!(code, Some(0), "{err}");
    assert_eq!(std::fs::read(dest.join("f.bin")).unwrap(), data);
    assert!(took >= Duration::from_millis(800), "took {took:?}");
}

#[test]
fn a_set_is_fetched_from_two_senders_at_once() {
    let dir = tempfile::tempdir().unwrap();
    let src = dir.path().join("tree");
    make_tree(&src);
    let key = "5c".repeat(32);
    let a = Sender::start(&[&src], &["--key", &key, "--max-rate", "8MB/s"]);
    let b = Sender::start(&[&src], &["--key", &key, "--max-rate", "8MB/s"]);
    // The same files under the same key: the same set, whichever sender printed it.
    let id = |t: &str| t.split('/').nth(3).map(|s| s[..32].to_string());
    assert_eq!(id(&a.ticket), id(&b.ticket));
    let dest = dir.path().join("dest");
    let mut c = rgtp();
    c.args(["get", &a.ticket])
        .arg(&dest)
        .args(["--from", &b.ticket, "--json"]);
    let (code, out, err) = run(c);
    assert_eq!(code, Some(0), "{err}");
    assert_same_tree(&src, &dest.join("tree"));
    // The big file came from both, each verified chunk by chunk.
    let big = out
        .lines()
        .map(|l| serde_json::from_str::<serde_json::Value>(l).expect("JSON"))
        .find(|e| e["event"] == "file" && e["bytes"] == 3_000_001)
        .expect("the big file's event");
    let sources = big["sources"].as_array().expect("per-source figures");
    assert_eq!(sources.len(), 2, "{big}");
    for s in sources {
        assert_eq!(s["state"], "active", "{big}");
        assert!(s["delivered_chunks"].as_u64().unwrap() > 100, "{big}");
    }
    // A source of another set is refused up front.
    let other = format!(
        "{}#{}",
        a.ticket.split('#').next().unwrap(),
        "5d".repeat(32)
    );
    let mut c = rgtp();
    c.args(["get", &a.ticket])
        .arg(dir.path().join("never"))
        .args(["--from", &other]);
    let (code, _, err) = run(c);
    assert_eq!(code, Some(2), "{err}");
    assert!(err.contains("another exposure or key"), "{err}");
}

/// A running `rgtp expose FILE`, killed when dropped: serves a crafted catalog as if
/// it were a set.
fn expose_raw(file: &Path) -> Sender {
    let mut child = rgtp()
        .arg("expose")
        .arg(file)
        .args(["--port", "0", "--bind", "127.0.0.1", "-q"])
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::inherit())
        .spawn()
        .expect("spawn rgtp expose");
    let mut line = String::new();
    BufReader::new(child.stdout.take().expect("stdout"))
        .read_line(&mut line)
        .expect("ticket");
    assert!(line.starts_with("rgtp://"), "no ticket: {line:?}");
    Sender {
        child,
        ticket: line.trim().to_string(),
    }
}

#[test]
fn hostile_names_in_a_forged_listing_are_refused_and_nothing_is_written() {
    let dir = tempfile::tempdir().unwrap();
    let id = "11".repeat(16);
    let root = "22".repeat(32);
    let file = |p: &str| {
        format!(
            r#"{{"path": {}, "kind": "file", "size": 5, "id": "{id}", "root": "{root}", "mode": 420, "mtime": [0, 0]}}"#,
            serde_json::to_string(p).unwrap()
        )
    };
    let link = |p: &str, t: &str| {
        format!(
            r#"{{"path": {}, "kind": "symlink", "target": {}, "mode": 511, "mtime": [0, 0]}}"#,
            serde_json::to_string(p).unwrap(),
            serde_json::to_string(t).unwrap()
        )
    };
    for (entries, named) in [
        (vec![file("../escape")], "../escape"),
        (vec![file("/etc/passwd")], "/etc/passwd"),
        (vec![file("a/../../x")], "a/../../x"),
        (vec![file("a\\..\\..\\x")], "a\\\\..\\\\..\\\\x"),
        (vec![link("l", "../../outside")], "../../outside"),
        (vec![link("l", "inside"), file("l/x")], "l/x"),
        (vec![file("same"), file("same")], "same"),
    ] {
        let listing = format!(r#"{{"rgtp-set": 1, "entries": [{}]}}"#, entries.join(", "));
        let src = dir.path().join("listing.json");
        std::fs::write(&src, &listing).unwrap();
        let s = expose_raw(&src);
        let dest = dir.path().join("dest");
        let mut c = rgtp();
        c.args(["get", &s.ticket]).arg(&dest);
        let (code, _, err) = run(c);
        assert_eq!(code, Some(7), "{named}: {err}");
        assert!(
            err.contains("the sender's catalog was refused") && err.contains(named),
            "{named}: {err}"
        );
        // Nothing written: not in DEST, not beside it.
        let beside: Vec<_> = std::fs::read_dir(dir.path())
            .unwrap()
            .map(|e| e.unwrap().file_name().into_string().unwrap())
            .filter(|n| n != "listing.json")
            .collect();
        assert!(beside.is_empty() || beside == ["dest"], "{beside:?}");
        if dest.exists() {
            assert_eq!(std::fs::read_dir(&dest).unwrap().count(), 0);
        }
    }
    // The same listing with a harmless name is taken (so the refusals above are
    // about the names): the get then fails only on the made-up file's exposure.
    let listing = format!(r#"{{"rgtp-set": 1, "entries": [{}]}}"#, file("ok.txt"));
    let src = dir.path().join("listing.json");
    std::fs::write(&src, &listing).unwrap();
    let s = expose_raw(&src);
    let mut c = rgtp();
    c.args(["get", &s.ticket, "--connect-timeout", "1"])
        .arg(dir.path().join("dest2"));
    let (code, _, err) = run(c);
    assert!(!err.contains("catalog was refused"), "{err}");
    assert_ne!(code, Some(0), "{err}");
}
