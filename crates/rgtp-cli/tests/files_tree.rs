//! `rgtp send` / `rgtp get` at scale and under attack: a seeded tree of 1,000 files
//! (unicode and dash-leading names, 0 B to 8 MiB, chunk boundaries, modes and times
//! on files and directories, empty directories) fetched four files at a time and
//! compared entry by entry; forged listings with hostile paths, links that climb out
//! through other links of the set, and sizes that disagree with the data, each
//! refused with nothing written beside DEST; a DEST already holding a link out.

use std::collections::BTreeMap;
use std::io::{BufRead, BufReader, Read};
use std::os::unix::fs::{MetadataExt, PermissionsExt};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::thread;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use rand::{Rng, SeedableRng};
use sha2::{Digest, Sha256};

const BIN: &str = env!("CARGO_BIN_EXE_rgtp");

/// `rgtp send`'s default plaintext bytes per chunk (`--chunk-size`).
const CHUNK: usize = 1200;

fn rgtp() -> Command {
    let mut c = Command::new(BIN);
    c.env_remove("RGTP_LOG").env_remove("RGTP_KEY");
    c
}

/// A serving child (`rgtp send` or `rgtp expose`) and the ticket it printed; killed
/// when dropped.
struct Server {
    child: Child,
    ticket: String,
}

impl Server {
    /// Spawns `c` (which must print its ticket first on standard output).
    fn start(mut c: Command) -> Server {
        let mut child = c
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .spawn()
            .expect("spawn the server");
        let mut line = String::new();
        BufReader::new(child.stdout.take().expect("stdout"))
            .read_line(&mut line)
            .expect("ticket");
        assert!(line.starts_with("rgtp://"), "no ticket: {line:?}");
        Server {
            child,
            ticket: line.trim().to_string(),
        }
    }

    /// `rgtp send [extra] -- PATHS`, on loopback, any port.
    fn send(paths: &[&Path], extra: &[&str]) -> Server {
        let mut c = rgtp();
        c.args(["send", "--port", "0", "--bind", "127.0.0.1", "-q"])
            .args(extra)
            .arg("--")
            .args(paths);
        Server::start(c)
    }

    /// `rgtp expose FILE`: serves any bytes as if they were a set's catalog.
    fn expose(file: &Path) -> Server {
        let mut c = rgtp();
        c.args(["expose", "--port", "0", "--bind", "127.0.0.1", "-q"])
            .arg(file);
        Server::start(c)
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Runs a command to the end (at most three minutes): status code, stdout, stderr.
fn run(mut c: Command) -> (Option<i32>, String, String) {
    let mut child = c
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("spawn");
    let mut o = child.stdout.take().expect("stdout");
    let mut e = child.stderr.take().expect("stderr");
    let t = thread::spawn(move || {
        let mut err = String::new();
        let _ = e.read_to_string(&mut err);
        err
    });
    let mut out = String::new();
    let _ = o.read_to_string(&mut out);
    let deadline = Instant::now() + Duration::from_secs(180);
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

/// What the walk records of one path.
#[derive(Debug, PartialEq, Eq)]
enum Seen {
    Dir {
        mode: u32,
        mtime: SystemTime,
    },
    File {
        mode: u32,
        mtime: SystemTime,
        len: u64,
        sha256: [u8; 32],
    },
    Link(PathBuf),
}

/// Every path under `root` (relative, `/`-separated, `root` itself excluded).
fn walk(root: &Path) -> BTreeMap<String, Seen> {
    let mut out = BTreeMap::new();
    let mut stack = vec![String::new()];
    while let Some(rel) = stack.pop() {
        let dir = if rel.is_empty() {
            root.to_path_buf()
        } else {
            root.join(&rel)
        };
        for e in std::fs::read_dir(&dir).unwrap() {
            let e = e.unwrap();
            let name = e.file_name().into_string().expect("UTF-8 names only");
            let rel = if rel.is_empty() {
                name
            } else {
                format!("{rel}/{name}")
            };
            let m = std::fs::symlink_metadata(e.path()).unwrap();
            let (mode, mtime) = (m.mode() & 0o777, m.modified().unwrap());
            let seen = if m.file_type().is_symlink() {
                Seen::Link(std::fs::read_link(e.path()).unwrap())
            } else if m.is_dir() {
                stack.push(rel.clone());
                Seen::Dir { mode, mtime }
            } else {
                let body = std::fs::read(e.path()).unwrap();
                Seen::File {
                    mode,
                    mtime,
                    len: body.len() as u64,
                    sha256: Sha256::digest(&body).into(),
                }
            };
            out.insert(rel, seen);
        }
    }
    out
}

fn set_mtime(path: &Path, when: SystemTime) {
    std::fs::File::open(path)
        .unwrap()
        .set_modified(when)
        .unwrap_or_else(|e| panic!("{}: {e}", path.display()));
}

/// The JSON lines `rgtp get --json` printed.
fn events(out: &str) -> Vec<serde_json::Value> {
    out.lines()
        .map(|l| serde_json::from_str(l).unwrap_or_else(|e| panic!("{l:?}: {e}")))
        .collect()
}

#[test]
fn a_thousand_file_tree_arrives_byte_exact_with_metadata() {
    let mut rng = rand_chacha::ChaCha20Rng::seed_from_u64(0x7ee_1000);
    let tmp = tempfile::tempdir().unwrap();
    // The root itself looks like an option: `send` is given it after `--`.
    let src = tmp.path().join("-arbre données");
    let names = [
        "données",
        "日本語",
        "ñ",
        "🦀",
        "with space",
        "-dash",
        "..dots",
        "Ωμέγα",
        "--long-opt",
        "z",
    ];

    // Directories, at most five below the root; one chain reaches five.
    let mut dirs: Vec<String> = vec![String::new()];
    let chain = ["données", "日本語", "ñ", "🦀 crab", "-dash"];
    for depth in 1..=chain.len() {
        dirs.push(chain[..depth].join("/"));
    }
    while dirs.len() < 60 {
        let parent = dirs[rng.gen_range(0..dirs.len())].clone();
        if parent.split('/').count() >= 5 {
            continue;
        }
        let name = format!("{} {}", names[rng.gen_range(0..names.len())], dirs.len());
        dirs.push(if parent.is_empty() {
            name
        } else {
            format!("{parent}/{name}")
        });
    }
    assert!(dirs.iter().all(|d| d.split('/').count() <= 5));
    let empty = ["vide", "空/更に空", "-dash 🦀/ñ", "données/日本語/ñ/vide"];
    for d in &dirs {
        std::fs::create_dir_all(src.join(d)).unwrap();
    }
    for d in empty {
        std::fs::create_dir_all(src.join(d)).unwrap();
    }

    // Sizes: empties, every side of several chunk boundaries, a handful of 8 MiB,
    // the rest mostly small.
    let mut sizes: Vec<usize> = vec![0; 12];
    for k in [1, 2, 3, 64, 1000, 3000] {
        sizes.extend([k * CHUNK - 1, k * CHUNK, k * CHUNK + 1]);
    }
    sizes.extend([8 << 20; 6]);
    sizes.extend([(8 << 20) - 1, 1]);
    while sizes.len() < 1000 {
        sizes.push(if rng.gen_bool(0.92) {
            rng.gen_range(1..16_384)
        } else {
            rng.gen_range(16_384..400_000)
        });
    }
    assert!(sizes.iter().all(|&s| s <= 8 << 20));
    let modes = [0o600, 0o640, 0o755, 0o444, 0o644];
    let mut total = 0u64;
    let mut file_paths = Vec::with_capacity(1000);
    for (i, &size) in sizes.iter().enumerate() {
        let d = &dirs[rng.gen_range(0..dirs.len())];
        let name = format!("{} {i}.bin", names[i % names.len()]);
        let rel = if d.is_empty() {
            name
        } else {
            format!("{d}/{name}")
        };
        let path = src.join(&rel);
        let mut body = vec![0u8; size];
        rng.fill(&mut body[..]);
        std::fs::write(&path, &body).unwrap();
        total += size as u64;
        set_mtime(
            &path,
            UNIX_EPOCH + Duration::new(1_400_000_000 + i as u64 * 86_401, i as u32 * 1_013),
        );
        std::fs::set_permissions(
            &path,
            std::fs::Permissions::from_mode(modes[i % modes.len()]),
        )
        .unwrap();
        file_paths.push(rel);
    }
    // Directories' modes and times last, deepest first (a write into one moves its time).
    let mut all_dirs: Vec<String> = dirs[1..].to_vec();
    for e in empty {
        let mut at = String::new();
        for c in e.split('/') {
            at = if at.is_empty() {
                c.to_string()
            } else {
                format!("{at}/{c}")
            };
            if !all_dirs.contains(&at) {
                all_dirs.push(at.clone());
            }
        }
    }
    all_dirs.sort_by_key(|d| std::cmp::Reverse(d.matches('/').count()));
    let dir_modes = [0o755, 0o750, 0o700, 0o775];
    for (i, d) in all_dirs.iter().enumerate() {
        let p = src.join(d);
        std::fs::set_permissions(&p, std::fs::Permissions::from_mode(dir_modes[i % 4])).unwrap();
        set_mtime(
            &p,
            UNIX_EPOCH + Duration::new(1_300_000_000 + i as u64 * 7_777, 999),
        );
    }
    set_mtime(&src, UNIX_EPOCH + Duration::new(1_234_567_890, 0));

    let before = walk(&src);
    let n_files = before
        .values()
        .filter(|s| matches!(s, Seen::File { .. }))
        .count();
    let n_dirs = before.len() - n_files;
    assert_eq!(n_files, 1000);
    assert!(n_dirs >= 60, "{n_dirs}");
    assert!(total < 120 << 20, "{total}");
    for k in empty {
        assert!(std::fs::read_dir(src.join(k)).unwrap().next().is_none());
    }

    let server = Server::send(&[&src], &[]);
    let dest = tmp.path().join("réception dest");
    let mut c = rgtp();
    c.args(["get", &server.ticket])
        .arg(&dest)
        .args(["--json", "--parallel-files", "4"]);
    let t0 = Instant::now();
    let (code, out, err) = run(c);
    let took = t0.elapsed();
    assert_eq!(code, Some(0), "{err}");
    eprintln!("1,000 files, {total} bytes, fetched in {took:.2?}");

    // Same paths, kinds, bytes, modes and times (to the nanosecond: the catalog
    // carries seconds and nanoseconds), the root directory included.
    let got = tmp.path().join("réception dest/-arbre données");
    let after = walk(&got);
    let only_src: Vec<_> = before.keys().filter(|k| !after.contains_key(*k)).collect();
    let only_dest: Vec<_> = after.keys().filter(|k| !before.contains_key(*k)).collect();
    assert!(
        only_src.is_empty() && only_dest.is_empty(),
        "missing {only_src:?}, extra {only_dest:?}"
    );
    for (k, v) in &before {
        assert_eq!(Some(v), after.get(k), "{k}");
    }
    let m = |p: &Path| {
        let m = std::fs::metadata(p).unwrap();
        (m.mode() & 0o777, m.modified().unwrap())
    };
    assert_eq!(m(&src), m(&got));
    // Nothing but the set under DEST: no partial or state files left behind.
    assert_eq!(
        std::fs::read_dir(&dest).unwrap().count(),
        1,
        "DEST holds only the set's root"
    );

    let ev = events(&out);
    let (done, files) = ev.split_last().expect("events");
    assert_eq!(done["event"], "done", "{out}");
    assert_eq!(done["files"], 1000);
    assert_eq!(done["bytes"], total);
    assert_eq!(done["entries"], (1 + n_files + n_dirs) as u64);
    let mut reported: Vec<String> = files
        .iter()
        .map(|e| {
            assert_eq!(e["event"], "file", "{e}");
            e["path"].as_str().expect("a path").to_string()
        })
        .collect();
    reported.sort();
    let mut expected: Vec<String> = file_paths
        .iter()
        .map(|p| format!("-arbre données/{p}"))
        .collect();
    expected.sort();
    assert_eq!(reported, expected);
    let summed: u64 = files.iter().map(|e| e["bytes"].as_u64().unwrap()).sum();
    assert_eq!(summed, total);
}

/// A forged listing's entries, as JSON.
fn file_entry(path: &str, size: u64) -> String {
    format!(
        r#"{{"path": {}, "kind": "file", "size": {size}, "id": "{}", "root": "{}", "mode": 420, "mtime": [0, 0]}}"#,
        serde_json::to_string(path).unwrap(),
        "11".repeat(16),
        "22".repeat(32)
    )
}

fn dir_entry(path: &str) -> String {
    format!(
        r#"{{"path": {}, "kind": "dir", "mode": 493, "mtime": [0, 0]}}"#,
        serde_json::to_string(path).unwrap()
    )
}

fn link_entry(path: &str, target: &str) -> String {
    format!(
        r#"{{"path": {}, "kind": "symlink", "target": {}, "mode": 511, "mtime": [0, 0]}}"#,
        serde_json::to_string(path).unwrap(),
        serde_json::to_string(target).unwrap()
    )
}

/// The names directly under `dir`, sorted.
fn names_in(dir: &Path) -> Vec<String> {
    let mut v: Vec<String> = std::fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().file_name().into_string().unwrap())
        .collect();
    v.sort();
    v
}

#[test]
fn more_hostile_paths_in_a_forged_listing_are_refused_by_name_with_nothing_written() {
    let tmp = tempfile::tempdir().unwrap();
    let sentinel = tmp.path().join("sentinel");
    std::fs::create_dir(&sentinel).unwrap();
    let cases: Vec<(Vec<String>, &str)> = vec![
        (vec![file_entry("a//b", 5)], "a//b"),
        (vec![file_entry("a/./b", 5)], "a/./b"),
        (vec![file_entry("a/", 5)], "a/"),
        (vec![file_entry("..", 5)], ".."),
        (vec![dir_entry(".")], "."),
        (vec![file_entry("", 5)], ""),
        (vec![file_entry("a\0b", 5)], "a\0b"),
        (vec![file_entry("a\\b", 5)], "a\\b"),
        (vec![dir_entry("../sentinel")], "../sentinel"),
        (vec![file_entry("f", 5), file_entry("f/x", 5)], "f/x"),
        (vec![dir_entry("d"), dir_entry("d")], "d"),
        // Each link alone stays inside, but the second climbs through the first:
        // p/q/d is the root, so p/q/x = root/../.. lies two levels above DEST.
        (
            vec![
                dir_entry("p"),
                dir_entry("p/q"),
                link_entry("p/q/d", "../.."),
                link_entry("p/q/x", "d/../.."),
            ],
            "p/q/x",
        ),
        (vec![link_entry("up", "sub/../.."), dir_entry("sub")], "up"),
    ];
    for (entries, named) in cases {
        let listing = format!(r#"{{"rgtp-set": 1, "entries": [{}]}}"#, entries.join(", "));
        let src = tmp.path().join("listing.json");
        std::fs::write(&src, &listing).unwrap();
        let server = Server::expose(&src);
        let dest = tmp.path().join("dest");
        let mut c = rgtp();
        c.args(["get", &server.ticket, "-q"]).arg(&dest);
        let (code, _, err) = run(c);
        assert_eq!(code, Some(7), "{named:?}: {err}");
        assert!(
            err.contains("the sender's catalog was refused") && err.contains(&format!("{named:?}")),
            "{named:?}: {err}"
        );
        assert!(names_in(&sentinel).is_empty(), "{named:?}");
        assert!(!dest.exists(), "{named:?}: DEST created");
        assert_eq!(
            names_in(tmp.path()),
            ["listing.json", "sentinel"],
            "{named:?}"
        );
    }
}

#[test]
fn a_link_already_in_dest_is_not_followed() {
    let tmp = tempfile::tempdir().unwrap();
    let tree = tmp.path().join("t");
    std::fs::create_dir_all(tree.join("evil/inner")).unwrap();
    std::fs::write(tree.join("evil/x"), b"payload").unwrap();
    std::fs::write(tree.join("evil/inner/y"), b"payload").unwrap();
    let outside = tmp.path().join("outside");
    std::fs::create_dir(&outside).unwrap();
    let dest = tmp.path().join("dest");
    std::fs::create_dir_all(dest.join("t")).unwrap();
    std::os::unix::fs::symlink(&outside, dest.join("t/evil")).unwrap();
    let server = Server::send(&[&tree], &[]);
    let mut c = rgtp();
    c.args(["get", &server.ticket, "-q"]).arg(&dest);
    let (code, _, err) = run(c);
    assert_eq!(code, Some(2), "{err}");
    assert!(
        err.contains("symbolic link") && err.contains("t/evil/"),
        "{err}"
    );
    assert!(names_in(&outside).is_empty(), "{:?}", names_in(&outside));
}

/// The catalog a ticket names, pulled as a plain exposure.
fn catalog_of(ticket: &str, at: &Path) -> serde_json::Value {
    let mut c = rgtp();
    c.args(["pull", ticket, "-q", "-o"]).arg(at);
    let (code, _, err) = run(c);
    assert_eq!(code, Some(0), "{err}");
    serde_json::from_slice(&std::fs::read(at).unwrap()).unwrap()
}

#[test]
fn a_catalog_whose_sizes_disagree_with_the_files_is_refused() {
    // With a fixed key every file's Exposure_ID depends on its content only, so a
    // forged catalog naming the real files can be served as one more file of a
    // second `send` of the same tree, and fetched by its own Exposure_ID.
    let tmp = tempfile::tempdir().unwrap();
    let key = "a7".repeat(32);
    let tree = tmp.path().join("t");
    std::fs::create_dir(&tree).unwrap();
    std::fs::write(tree.join("big"), vec![0x5a; 300_000]).unwrap();
    std::fs::write(tree.join("small"), b"hello").unwrap();
    let real = {
        let s = Server::send(&[&tree], &["--key", &key]);
        catalog_of(&s.ticket, &tmp.path().join("real.json"))
    };
    assert_eq!(real["entries"][2]["path"], "t/small", "{real}");
    let forge_dir = tmp.path().join("forge");
    std::fs::create_dir(&forge_dir).unwrap();
    for (lie, size) in [("t/small", 1u64 << 40), ("t/big", 5)] {
        let mut forged = real.clone();
        for e in forged["entries"].as_array_mut().unwrap() {
            if e["path"] == lie {
                e["size"] = size.into();
            }
        }
        let forged_path = forge_dir.join("forged.json");
        std::fs::write(&forged_path, serde_json::to_vec(&forged).unwrap()).unwrap();
        let s = Server::send(&[&tree, &forged_path], &["--key", &key]);
        let served = catalog_of(&s.ticket, &tmp.path().join("served.json"));
        let id = served["entries"]
            .as_array()
            .unwrap()
            .iter()
            .find(|e| e["path"] == "forged.json")
            .expect("the forged catalog is one of the files")["id"]
            .as_str()
            .unwrap()
            .to_string();
        let own = s.ticket.split('/').nth(3).unwrap()[..32].to_string();
        let ticket = s.ticket.replacen(&own, &id, 1);
        let dest = tmp.path().join(format!("dest-{size}"));
        let mut c = rgtp();
        c.args(["get", &ticket, "-q"]).arg(&dest);
        let (code, _, err) = run(c);
        assert_eq!(code, Some(7), "{lie}: {err}");
        assert!(
            err.contains(lie) && err.contains(&size.to_string()),
            "{lie}: {err}"
        );
        // Nothing of the refused file is left: not the file, its partial copy or
        // its resume record.
        let (dir, name) = lie.split_once('/').unwrap();
        let left: Vec<String> = names_in(&dest.join(dir))
            .into_iter()
            .filter(|n| n.starts_with(name))
            .collect();
        assert!(left.is_empty(), "{lie}: {left:?} kept");
    }
}
