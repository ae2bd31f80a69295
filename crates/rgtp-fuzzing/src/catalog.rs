//! `catalog`: an exposure set's catalog (`rgtp::catalog`) parsed from any bytes.
//!
//! What is accepted must be safe to act on: every path relative, made only of
//! normal components, inside the destination when joined to it; every symbolic
//! link's target inside the set; no path twice; every file's Exposure_ID and root
//! well formed; and the catalog prints to bytes that parse back to itself.

use std::collections::HashSet;
use std::path::{Component, Path};

use rgtp::catalog::{Catalog, Kind};

/// Parses `data` as a catalog and checks what an accepted one promises.
pub fn catalog(data: &[u8]) {
    let Ok(c) = Catalog::parse(data, 10_000) else {
        return;
    };
    assert!(c.entries.len() <= 10_000);
    let mut seen = HashSet::new();
    for e in &c.entries {
        assert!(
            seen.insert(e.path.as_str()),
            "duplicate {:?} accepted",
            e.path
        );
        let p = Path::new(&e.path);
        assert!(
            p.components().all(|x| matches!(x, Component::Normal(_))),
            "unsafe path {:?} accepted",
            e.path
        );
        assert!(!e.path.contains('\\') && !e.path.contains('\0'));
        match &e.kind {
            Kind::File { .. } => assert!(e.file_id().is_some(), "{:?}", e.path),
            Kind::Symlink { target } => {
                // Resolving the target from the link's directory stays at or below the root.
                let mut depth = e.path.split('/').count() as i64 - 1;
                assert!(!target.starts_with('/'));
                for part in target.split('/') {
                    match part {
                        "" | "." => {}
                        ".." => depth -= 1,
                        _ => depth += 1,
                    }
                    assert!(depth >= 0, "link {:?} -> {target:?} leaves the set", e.path);
                }
            }
            Kind::Dir => {}
        }
    }
    let again = Catalog::parse(&c.to_bytes(), 10_000).expect("a printed catalog parses");
    assert_eq!(again, c);
}
