//! Received catalogs that try to reach outside the destination through the set's
//! own links, and the documented entry limit.

use std::path::Path;

use rgtp::catalog::{Catalog, CatalogError, Entry, Kind, MAX_ENTRIES, VERSION};

fn dir(path: &str) -> Entry {
    Entry {
        path: path.into(),
        kind: Kind::Dir,
        mode: 0o755,
        mtime: (0, 0),
    }
}

fn link(path: &str, target: &str) -> Entry {
    Entry {
        path: path.into(),
        kind: Kind::Symlink {
            target: target.into(),
        },
        mode: 0o777,
        mtime: (0, 0),
    }
}

fn bytes(entries: Vec<Entry>) -> Vec<u8> {
    Catalog {
        version: VERSION,
        entries,
    }
    .to_bytes()
}

/// Lays the entries out under `dest` as a receiver would (no checks).
fn lay_out(dest: &Path, entries: &[Entry]) {
    for e in entries {
        match &e.kind {
            Kind::Dir => std::fs::create_dir_all(dest.join(&e.path)).unwrap(),
            Kind::Symlink { target } => {
                std::os::unix::fs::symlink(target, dest.join(&e.path)).unwrap()
            }
            Kind::File { .. } => unreachable!("no files here"),
        }
    }
}

#[test]
fn a_link_climbing_through_another_link_of_the_set_is_refused() {
    let escapes = [
        vec![
            dir("p"),
            dir("p/q"),
            link("p/q/d", "../.."),
            link("p/q/x", "d/../.."),
        ],
        vec![
            dir("a"),
            dir("a/b"),
            dir("a/b/c"),
            link("a/b/c/l", "../../.."),
            dir("x"),
            link("m", "a/b/c/l/./x/../../y"),
        ],
        // The climbing link listed before the one it climbs through.
        vec![dir("s"), link("s/x", "t/.."), link("s/t", "..")],
    ];
    for entries in escapes {
        // Each is lexically inside, yet the last link resolves above DEST.
        let tmp = tempfile::tempdir().unwrap();
        let dest = tmp.path().join("outer/dest");
        std::fs::create_dir_all(&dest).unwrap();
        lay_out(&dest, &entries);
        let (bad, _) = entries
            .iter()
            .rev()
            .find_map(|e| match &e.kind {
                Kind::Symlink { target } if target.contains("..") && !target.starts_with("..") => {
                    Some((e.path.clone(), target.clone()))
                }
                _ => None,
            })
            .unwrap();
        let parent = dest.join(&bad).parent().unwrap().to_path_buf();
        let target = std::fs::read_link(dest.join(&bad)).unwrap();
        // Resolve what the link's last existing prefix names (the tail may not exist).
        let mut resolved = parent.join(&target);
        while std::fs::canonicalize(&resolved).is_err() {
            resolved = resolved.parent().unwrap().to_path_buf();
        }
        let real = std::fs::canonicalize(&resolved).unwrap();
        let dest_real = std::fs::canonicalize(&dest).unwrap();
        assert!(
            !real.starts_with(&dest_real),
            "{bad}: {} is inside",
            real.display()
        );

        let e = Catalog::parse(&bytes(entries), 100).unwrap_err();
        assert!(
            matches!(&e, CatalogError::UnsafeLink { path, .. } if *path == bad),
            "{bad}: {e}"
        );
    }
}

#[test]
fn links_through_links_that_only_go_forward_or_climb_first_are_kept() {
    let entries = vec![
        dir("a"),
        dir("a/b"),
        link("a/b/l", "../.."),
        link("fwd", "a/b/l/a/b"),
        link("a/b/up", "../../a/b/l/a"),
        link("dots", "./a/./b"),
        link("plain", "a/../a/b"),
    ];
    let tmp = tempfile::tempdir().unwrap();
    lay_out(tmp.path(), &entries);
    let root = std::fs::canonicalize(tmp.path()).unwrap();
    for e in &entries[2..] {
        let real = std::fs::canonicalize(tmp.path().join(&e.path)).unwrap();
        assert!(real.starts_with(&root), "{}", e.path);
    }
    Catalog::parse(&bytes(entries), 100).unwrap();
}

#[test]
fn the_entry_limit_is_the_documented_million() {
    assert_eq!(MAX_ENTRIES, 1_000_000);
    let at_limit: Vec<Entry> = (0..MAX_ENTRIES).map(|i| dir(&format!("d{i}"))).collect();
    let mut b = bytes(at_limit);
    assert_eq!(
        Catalog::parse(&b, MAX_ENTRIES).unwrap().entries.len(),
        MAX_ENTRIES
    );
    // One more: splice a last entry into the same document.
    let end = b.iter().rposition(|&c| c == b']').unwrap();
    b.splice(
        end..end,
        br#", {"path": "one-more", "kind": "dir"}"#.iter().copied(),
    );
    let e = Catalog::parse(&b, MAX_ENTRIES).unwrap_err();
    assert!(
        matches!(e, CatalogError::TooMany(n, MAX_ENTRIES) if n == MAX_ENTRIES + 1),
        "{e}"
    );
}
