//! Exposure sets: many files and directories behind one ticket.
//!
//! `rgtp send` exposes every file of a tree as an exposure of its own (Exposure_IDs
//! derived from the key and the content, spec §6.1) and one more, the *catalog*: a
//! JSON document naming each entry's relative path, kind, size, permissions,
//! modification time and, for a file, its Exposure_ID and Merkle root. The ticket
//! names the catalog; `rgtp get` pulls it, checks every path it names, then pulls
//! the files. `spec/files.md` describes the format.
//!
//! A catalog comes from whoever holds the key, so it is authentic but not trusted:
//! [`Catalog::parse`] refuses anything that could write outside the destination
//! (absolute paths, `..`, empty or `.` components, backslashes, NUL), duplicate
//! paths, and more entries than a receiver allows, before anything is created.

use std::collections::HashSet;
use std::fs;
use std::io;
use std::path::{Component, Path, PathBuf};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use rgtp_wire::{ExposureId, Hash};
use serde::{Deserialize, Serialize};

/// The value of the catalog's `rgtp-set` member: the format's version.
pub const VERSION: u32 = 1;

/// The most bytes of catalog a receiver accepts by default.
pub const MAX_CATALOG_BYTES: u64 = 64 << 20;

/// The most entries a receiver accepts by default.
pub const MAX_ENTRIES: usize = 1_000_000;

/// The longest relative path accepted, in bytes.
pub const MAX_PATH: usize = 4096;

/// What an entry is.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "lowercase")]
pub enum Kind {
    /// A directory.
    Dir,
    /// A regular file, served as its own exposure.
    File {
        /// Bytes.
        size: u64,
        /// Its Exposure_ID, hex.
        id: String,
        /// Its Merkle root, hex.
        root: String,
    },
    /// A symbolic link, kept as a link (`rgtp send --keep-symlinks`).
    Symlink {
        /// Where it points, relative to its own directory.
        target: String,
    },
}

/// One path of the set.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Entry {
    /// Relative path, `/`-separated.
    pub path: String,
    /// What it is.
    #[serde(flatten)]
    pub kind: Kind,
    /// Permission bits (`0o777` at most are applied).
    #[serde(default)]
    pub mode: u32,
    /// Modification time: seconds and nanoseconds since the Unix epoch.
    #[serde(default)]
    pub mtime: (u64, u32),
}

/// The document a set's ticket names.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Catalog {
    /// Format version ([`VERSION`]).
    #[serde(rename = "rgtp-set")]
    pub version: u32,
    /// Every path, parents before children.
    pub entries: Vec<Entry>,
}

/// Why a catalog, a path or a tree was refused.
#[derive(Debug, thiserror::Error)]
pub enum CatalogError {
    /// Not a catalog at all (a single-file exposure, or garbage).
    #[error("not an exposure set: {0}")]
    NotACatalog(String),
    /// A version this build does not read.
    #[error("exposure set format version {0} is not supported (this build reads {VERSION})")]
    Version(u32),
    /// Too many entries.
    #[error("the set lists {0} entries, more than the limit of {1}")]
    TooMany(usize, usize),
    /// A path that could leave the destination, or is not a plain relative path.
    #[error("unsafe path {path:?} in the set: {why}")]
    UnsafePath {
        /// The path as given.
        path: String,
        /// What is wrong with it.
        why: &'static str,
    },
    /// A symbolic link pointing outside the destination.
    #[error("symbolic link {path:?} points outside the destination ({target:?})")]
    UnsafeLink {
        /// The link.
        path: String,
        /// Its target.
        target: String,
    },
    /// The same path twice.
    #[error("the set lists {0:?} twice")]
    Duplicate(String),
    /// A file's Exposure_ID or root is not the hex it should be.
    #[error("entry {0:?} has a malformed Exposure_ID or Merkle root")]
    BadId(String),
    /// Reading the tree to send failed.
    #[error("{path}: {err}")]
    Io {
        /// Where.
        path: PathBuf,
        /// What.
        err: io::Error,
    },
    /// A symbolic link in a tree to send, without `--keep-symlinks`.
    #[error("{0} is a symbolic link: pass --keep-symlinks to send it as a link, or remove it")]
    Symlink(PathBuf),
    /// Something that is neither file, directory nor link.
    #[error("{0} is not a regular file, directory or symbolic link")]
    Special(PathBuf),
}

impl Catalog {
    /// The catalog's bytes.
    pub fn to_bytes(&self) -> Vec<u8> {
        serde_json::to_vec_pretty(self).expect("a catalog always serialises")
    }

    /// Parses and checks a received catalog: every path relative and safe, no
    /// duplicates, at most `max_entries`, symbolic links pointing inside the set (and
    /// climbing nowhere after passing through another of its links), files with
    /// well-formed IDs and roots.
    pub fn parse(bytes: &[u8], max_entries: usize) -> Result<Catalog, CatalogError> {
        #[derive(Deserialize)]
        struct Probe {
            #[serde(rename = "rgtp-set")]
            version: u32,
        }
        let probe: Probe =
            serde_json::from_slice(bytes).map_err(|e| CatalogError::NotACatalog(e.to_string()))?;
        if probe.version != VERSION {
            return Err(CatalogError::Version(probe.version));
        }
        let c: Catalog =
            serde_json::from_slice(bytes).map_err(|e| CatalogError::NotACatalog(e.to_string()))?;
        if c.entries.len() > max_entries {
            return Err(CatalogError::TooMany(c.entries.len(), max_entries));
        }
        let mut seen = HashSet::with_capacity(c.entries.len());
        for e in &c.entries {
            check_path(&e.path)?;
            if !seen.insert(e.path.as_str()) {
                return Err(CatalogError::Duplicate(e.path.clone()));
            }
            match &e.kind {
                Kind::File { .. } => {
                    e.file_id()
                        .ok_or_else(|| CatalogError::BadId(e.path.clone()))?;
                }
                Kind::Symlink { target } => check_link(&e.path, target)?,
                Kind::Dir => {}
            }
        }
        // Nothing may sit under a link (it would be written through it) or a file.
        let leaves: HashSet<&str> = c
            .entries
            .iter()
            .filter(|e| e.kind != Kind::Dir)
            .map(|e| e.path.as_str())
            .collect();
        for e in &c.entries {
            let mut at = 0;
            while let Some(i) = e.path[at..].find('/') {
                let parent = &e.path[..at + i];
                if leaves.contains(parent) {
                    return Err(CatalogError::UnsafePath {
                        path: e.path.clone(),
                        why: "it lies under a link or a file of the set",
                    });
                }
                at += i + 1;
            }
        }
        let links: HashSet<&str> = c
            .entries
            .iter()
            .filter(|e| matches!(e.kind, Kind::Symlink { .. }))
            .map(|e| e.path.as_str())
            .collect();
        for e in &c.entries {
            if let Kind::Symlink { target } = &e.kind {
                check_link_via_links(&e.path, target, &links)?;
            }
        }
        Ok(c)
    }

    /// Bytes of all files.
    pub fn total_bytes(&self) -> u64 {
        self.entries
            .iter()
            .map(|e| match e.kind {
                Kind::File { size, .. } => size,
                _ => 0,
            })
            .sum()
    }

    /// Files in the set.
    pub fn files(&self) -> impl Iterator<Item = &Entry> {
        self.entries
            .iter()
            .filter(|e| matches!(e.kind, Kind::File { .. }))
    }
}

impl Entry {
    /// A file's Exposure_ID and Merkle root.
    pub fn file_id(&self) -> Option<(ExposureId, Hash)> {
        let Kind::File { id, root, .. } = &self.kind else {
            return None;
        };
        let id: ExposureId = hex::decode(id).ok()?.try_into().ok()?;
        let root: Hash = hex::decode(root).ok()?.try_into().ok()?;
        Some((id, root))
    }

    /// The modification time.
    pub fn modified(&self) -> SystemTime {
        UNIX_EPOCH + Duration::new(self.mtime.0, self.mtime.1.min(999_999_999))
    }
}

/// Refuses a path that is not a plain relative path of normal components.
pub fn check_path(path: &str) -> Result<(), CatalogError> {
    let bad = |why| {
        Err(CatalogError::UnsafePath {
            path: path.to_string(),
            why,
        })
    };
    if path.is_empty() {
        return bad("empty");
    }
    if path.len() > MAX_PATH {
        return bad("longer than 4096 bytes");
    }
    if path.contains('\0') {
        return bad("contains NUL");
    }
    if path.contains('\\') {
        return bad("contains a backslash");
    }
    if path.starts_with('/') {
        return bad("absolute");
    }
    for c in path.split('/') {
        match c {
            "" => return bad("an empty component (// or a trailing /)"),
            "." => return bad("a . component"),
            ".." => return bad("a .. component"),
            _ => {}
        }
    }
    Ok(())
}

/// Refuses a link whose target is absolute or climbs out of the set's root.
fn check_link(path: &str, target: &str) -> Result<(), CatalogError> {
    let bad = || {
        Err(CatalogError::UnsafeLink {
            path: path.to_string(),
            target: target.to_string(),
        })
    };
    if target.is_empty() || target.starts_with('/') || target.contains('\0') {
        return bad();
    }
    // Depth of the link's directory below the root, then walk the target.
    let mut depth = path.split('/').count() as i64 - 1;
    for c in target.split('/') {
        match c {
            "" | "." => {}
            ".." => {
                depth -= 1;
                if depth < 0 {
                    return bad();
                }
            }
            _ => depth += 1,
        }
    }
    Ok(())
}

/// Refuses a link whose target climbs (`..`) after passing through another link of
/// the set: the count in [`check_link`] holds only while every component it walks is
/// a directory (`d` a link to the root, `d/../..` lies above it).
fn check_link_via_links(
    path: &str,
    target: &str,
    links: &HashSet<&str>,
) -> Result<(), CatalogError> {
    let mut at: Vec<&str> = path.split('/').collect();
    at.pop();
    let mut through_link = false;
    for c in target.split('/') {
        match c {
            "" | "." => {}
            ".." if through_link => {
                return Err(CatalogError::UnsafeLink {
                    path: path.to_string(),
                    target: target.to_string(),
                })
            }
            ".." => {
                at.pop();
            }
            _ => {
                at.push(c);
                through_link |= links.contains(at.join("/").as_str());
            }
        }
    }
    Ok(())
}

/// `dest` joined with a checked relative `path`, refusing to pass through anything
/// under `dest` that is a symbolic link (which could lead outside it).
pub fn safe_join(dest: &Path, path: &str) -> Result<PathBuf, CatalogError> {
    check_path(path)?;
    let mut out = dest.to_path_buf();
    let parts: Vec<&str> = path.split('/').collect();
    for (i, c) in parts.iter().enumerate() {
        out.push(c);
        let last = i + 1 == parts.len();
        if let Ok(m) = fs::symlink_metadata(&out) {
            if m.file_type().is_symlink() && !last {
                return Err(CatalogError::UnsafePath {
                    path: path.to_string(),
                    why: "a directory on its way is a symbolic link",
                });
            }
        }
    }
    debug_assert!(out
        .strip_prefix(dest)
        .is_ok_and(|r| r.components().all(|c| matches!(c, Component::Normal(_)))));
    Ok(out)
}

/// One path of a tree to send, found by [`scan`].
#[derive(Debug, Clone)]
pub struct Found {
    /// Where it is on disk.
    pub source: PathBuf,
    /// Its path in the set.
    pub path: String,
    /// Directory, file or link (the file's ID and root are filled in later).
    pub kind: FoundKind,
    /// Permission bits.
    pub mode: u32,
    /// Modification time.
    pub mtime: (u64, u32),
}

/// What [`scan`] found.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum FoundKind {
    /// A directory.
    Dir,
    /// A regular file of this many bytes.
    File(u64),
    /// A symbolic link to this target.
    Symlink(String),
}

/// Walks `roots` (files or directories): each is named in the set by its last
/// component, and directories bring everything under them, parents first, in
/// name order. Symbolic links are refused unless `keep_symlinks`.
pub fn scan(roots: &[PathBuf], keep_symlinks: bool) -> Result<Vec<Found>, CatalogError> {
    let mut out = Vec::new();
    for root in roots {
        let name = root
            .file_name()
            .and_then(|n| n.to_str())
            .ok_or_else(|| CatalogError::Io {
                path: root.clone(),
                err: io::Error::new(
                    io::ErrorKind::InvalidInput,
                    "needs a UTF-8 file name (not . or ..)",
                ),
            })?;
        walk(root, name.to_string(), keep_symlinks, &mut out)?;
    }
    let mut seen = HashSet::new();
    for f in &out {
        if !seen.insert(f.path.clone()) {
            return Err(CatalogError::Duplicate(f.path.clone()));
        }
    }
    Ok(out)
}

fn walk(
    source: &Path,
    path: String,
    keep_symlinks: bool,
    out: &mut Vec<Found>,
) -> Result<(), CatalogError> {
    use std::os::unix::fs::PermissionsExt;
    let io = |err| CatalogError::Io {
        path: source.to_path_buf(),
        err,
    };
    let m = fs::symlink_metadata(source).map_err(io)?;
    let mtime = m
        .modified()
        .ok()
        .and_then(|t| t.duration_since(UNIX_EPOCH).ok())
        .map_or((0, 0), |d| (d.as_secs(), d.subsec_nanos()));
    let mode = m.permissions().mode() & 0o7777;
    let ft = m.file_type();
    let kind = if ft.is_symlink() {
        if !keep_symlinks {
            return Err(CatalogError::Symlink(source.to_path_buf()));
        }
        let t = fs::read_link(source).map_err(io)?;
        let t = t.to_str().ok_or_else(|| {
            io(io::Error::new(
                io::ErrorKind::InvalidData,
                "link target is not UTF-8",
            ))
        })?;
        FoundKind::Symlink(t.to_string())
    } else if ft.is_dir() {
        FoundKind::Dir
    } else if ft.is_file() {
        FoundKind::File(m.len())
    } else {
        return Err(CatalogError::Special(source.to_path_buf()));
    };
    let is_dir = kind == FoundKind::Dir;
    out.push(Found {
        source: source.to_path_buf(),
        path: path.clone(),
        kind,
        mode,
        mtime,
    });
    if is_dir {
        let mut children: Vec<_> = fs::read_dir(source)
            .map_err(io)?
            .collect::<Result<Vec<_>, _>>()
            .map_err(io)?;
        children.sort_by_key(|e| e.file_name());
        for c in children {
            let name = c.file_name();
            let name = name.to_str().ok_or_else(|| {
                io(io::Error::new(
                    io::ErrorKind::InvalidData,
                    format!("{:?} is not a UTF-8 name", c.path()),
                ))
            })?;
            walk(&c.path(), format!("{path}/{name}"), keep_symlinks, out)?;
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn file(path: &str) -> Entry {
        Entry {
            path: path.into(),
            kind: Kind::File {
                size: 3,
                id: "11".repeat(16),
                root: "22".repeat(32),
            },
            mode: 0o644,
            mtime: (1_700_000_000, 5),
        }
    }

    fn catalog(entries: Vec<Entry>) -> Vec<u8> {
        Catalog {
            version: VERSION,
            entries,
        }
        .to_bytes()
    }

    #[test]
    fn a_catalog_round_trips() {
        let c = Catalog {
            version: VERSION,
            entries: vec![
                Entry {
                    path: "d".into(),
                    kind: Kind::Dir,
                    mode: 0o755,
                    mtime: (1, 2),
                },
                file("d/a.txt"),
                Entry {
                    path: "d/l".into(),
                    kind: Kind::Symlink {
                        target: "a.txt".into(),
                    },
                    mode: 0o777,
                    mtime: (3, 4),
                },
            ],
        };
        let parsed = Catalog::parse(&c.to_bytes(), 10).unwrap();
        assert_eq!(parsed, c);
        assert_eq!(parsed.total_bytes(), 3);
        assert_eq!(parsed.entries[1].file_id(), Some(([0x11; 16], [0x22; 32])));
    }

    #[test]
    fn every_path_that_could_leave_the_destination_is_refused() {
        for bad in [
            "",
            "/etc/passwd",
            "../x",
            "a/../../x",
            "a/./b",
            "a//b",
            "a/",
            ".",
            "a\\..\\b",
            "a\0b",
        ] {
            let e = Catalog::parse(&catalog(vec![file(bad)]), 10).unwrap_err();
            assert!(matches!(e, CatalogError::UnsafePath { .. }), "{bad:?}: {e}");
        }
        let long = "a/".repeat(2049) + "b";
        assert!(check_path(&long).is_err());
        for ok in ["a", "a/b/c", "..a", "a..", ".hidden/x", "é/ü"] {
            check_path(ok).unwrap();
        }
    }

    #[test]
    fn links_out_of_the_set_duplicates_bad_ids_and_floods_are_refused() {
        let link = |p: &str, t: &str| Entry {
            path: p.into(),
            kind: Kind::Symlink { target: t.into() },
            mode: 0,
            mtime: (0, 0),
        };
        for (p, t) in [
            ("l", "../x"),
            ("d/l", "../../x"),
            ("l", "/etc"),
            ("d/l", ""),
        ] {
            let e = Catalog::parse(&catalog(vec![link(p, t)]), 10).unwrap_err();
            assert!(
                matches!(e, CatalogError::UnsafeLink { .. }),
                "{p} -> {t}: {e}"
            );
        }
        Catalog::parse(&catalog(vec![link("d/l", "../y"), link("m", "d/./y")]), 10).unwrap();
        // A file under a link of the set (written through the link) or under a file.
        for entries in [
            vec![link("l", "d"), file("l/x")],
            vec![file("l/x"), link("l", "d")],
            vec![file("f"), file("f/x")],
            vec![link("a/l", "b"), file("a/l/deep/x")],
        ] {
            let e = Catalog::parse(&catalog(entries), 10).unwrap_err();
            assert!(
                matches!(&e, CatalogError::UnsafePath { why, .. } if why.contains("under a link")),
                "{e}"
            );
        }
        let e = Catalog::parse(&catalog(vec![file("a"), file("a")]), 10).unwrap_err();
        assert!(matches!(e, CatalogError::Duplicate(_)), "{e}");
        let mut f = file("a");
        f.kind = Kind::File {
            size: 1,
            id: "zz".into(),
            root: "00".into(),
        };
        let e = Catalog::parse(&catalog(vec![f]), 10).unwrap_err();
        assert!(matches!(e, CatalogError::BadId(_)), "{e}");
        let many: Vec<Entry> = (0..11).map(|i| file(&format!("f{i}"))).collect();
        let e = Catalog::parse(&catalog(many), 10).unwrap_err();
        assert!(matches!(e, CatalogError::TooMany(11, 10)), "{e}");
        for junk in [
            &b"hello"[..],
            b"{}",
            b"{\"rgtp-set\": 2, \"entries\": []}",
            b"",
        ] {
            assert!(Catalog::parse(junk, 10).is_err());
        }
    }

    #[test]
    fn safe_join_refuses_a_symlinked_directory_on_the_way() {
        let dir = tempfile::tempdir().unwrap();
        let outside = tempfile::tempdir().unwrap();
        std::os::unix::fs::symlink(outside.path(), dir.path().join("evil")).unwrap();
        assert!(safe_join(dir.path(), "evil/x").is_err());
        assert_eq!(
            safe_join(dir.path(), "ok/x").unwrap(),
            dir.path().join("ok/x")
        );
        assert!(safe_join(dir.path(), "../x").is_err());
    }

    #[test]
    fn scan_walks_parents_first_and_refuses_links_unless_kept() {
        let dir = tempfile::tempdir().unwrap();
        let root = dir.path().join("tree");
        fs::create_dir_all(root.join("b")).unwrap();
        fs::write(root.join("b/2.txt"), b"22").unwrap();
        fs::write(root.join("a.txt"), b"1").unwrap();
        let found = scan(std::slice::from_ref(&root), false).unwrap();
        let paths: Vec<_> = found.iter().map(|f| f.path.as_str()).collect();
        assert_eq!(paths, ["tree", "tree/a.txt", "tree/b", "tree/b/2.txt"]);
        assert_eq!(found[3].kind, FoundKind::File(2));
        std::os::unix::fs::symlink("a.txt", root.join("l")).unwrap();
        let e = scan(std::slice::from_ref(&root), false).unwrap_err();
        assert!(e.to_string().contains("--keep-symlinks"), "{e}");
        let found = scan(&[root], true).unwrap();
        assert!(found
            .iter()
            .any(|f| f.kind == FoundKind::Symlink("a.txt".into())));
    }
}
