//! The shape of the workspace, checked: no two modules import from each other,
//! and the base crate depends on no protocol crate.
//!
//! The import check reads every crate's `src/` (`crates/*`, `conformance`,
//! `benches`) as text. In each file it resolves `crate::a::…` and `super::…`
//! paths, and `use self::a::…` or `use a::…` of a child module the file
//! declares, to the module file they name (the longest prefix of the path that
//! is a file). A reference to the crate root (`lib.rs`, `main.rs`, the
//! facade that re-exports) or to the file itself (its inline `mod tests`
//! included) is not an import; nor is a `mod child;` declaration. It fails
//! naming every pair of files that import from each other.

use std::collections::{BTreeMap, BTreeSet};
use std::fs;
use std::path::{Path, PathBuf};

fn workspace() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../..")
}

/// The `src/` directory of every crate in the workspace.
fn source_dirs(root: &Path) -> Vec<PathBuf> {
    let mut dirs = Vec::new();
    if let Ok(entries) = fs::read_dir(root.join("crates")) {
        for e in entries.flatten() {
            dirs.push(e.path().join("src"));
        }
    }
    dirs.push(root.join("conformance/src"));
    dirs.push(root.join("benches/src"));
    dirs.retain(|d| d.is_dir());
    dirs.sort();
    dirs
}

fn rust_files(dir: &Path, out: &mut Vec<PathBuf>) {
    let Ok(entries) = fs::read_dir(dir) else {
        return;
    };
    for e in entries.flatten() {
        let p = e.path();
        if p.is_dir() {
            rust_files(&p, out);
        } else if p.extension().is_some_and(|x| x == "rs") {
            out.push(p);
        }
    }
}

/// The module path of a file under `src/`: `lib.rs` → `[]`, `a/mod.rs` and
/// `a.rs` → `[a]`, `a/b.rs` → `[a, b]`. Binaries under `src/bin/` are their
/// own roots: `bin/x.rs` → `[]` (never resolved to).
fn module_path(src: &Path, file: &Path) -> Option<Vec<String>> {
    let rel = file.strip_prefix(src).ok()?;
    let mut parts: Vec<String> = rel
        .iter()
        .map(|s| s.to_string_lossy().into_owned())
        .collect();
    if parts.first().is_some_and(|p| p == "bin") {
        return None;
    }
    let last = parts.pop()?;
    let stem = last.strip_suffix(".rs")?;
    if parts.is_empty() && (stem == "lib" || stem == "main") {
        return Some(Vec::new());
    }
    if stem != "mod" {
        parts.push(stem.to_string());
    }
    Some(parts)
}

/// The source with comments, string literals and brace char literals blanked
/// (newlines kept), so braces and paths can be read off it.
fn code_only(src: &str) -> String {
    let b = src.as_bytes();
    let mut out = String::with_capacity(src.len());
    let mut i = 0;
    while i < b.len() {
        let c = b[i];
        if c == b'/' && b.get(i + 1) == Some(&b'/') {
            while i < b.len() && b[i] != b'\n' {
                i += 1;
            }
        } else if c == b'/' && b.get(i + 1) == Some(&b'*') {
            let mut depth = 0;
            while i < b.len() {
                if b[i] == b'/' && b.get(i + 1) == Some(&b'*') {
                    depth += 1;
                    i += 2;
                } else if b[i] == b'*' && b.get(i + 1) == Some(&b'/') {
                    depth -= 1;
                    i += 2;
                    if depth == 0 {
                        break;
                    }
                } else {
                    if b[i] == b'\n' {
                        out.push('\n');
                    }
                    i += 1;
                }
            }
        } else if c == b'r'
            && matches!(b.get(i + 1), Some(b'#') | Some(b'"'))
            && !ident_before(b, i)
        {
            // Raw string: r"..." or r#"..."#.
            let mut j = i + 1;
            let mut hashes = 0;
            while b.get(j) == Some(&b'#') {
                hashes += 1;
                j += 1;
            }
            if b.get(j) != Some(&b'"') {
                out.push('r');
                i += 1;
                continue;
            }
            j += 1;
            let close: Vec<u8> = std::iter::once(b'"')
                .chain(std::iter::repeat(b'#').take(hashes))
                .collect();
            while j < b.len() && !b[j..].starts_with(&close) {
                if b[j] == b'\n' {
                    out.push('\n');
                }
                j += 1;
            }
            out.push_str("\"\"");
            i = j + close.len();
        } else if c == b'"' {
            i += 1;
            while i < b.len() && b[i] != b'"' {
                if b[i] == b'\\' {
                    i += 1;
                } else if b[i] == b'\n' {
                    out.push('\n');
                }
                i += 1;
            }
            out.push_str("\"\"");
            i += 1;
        } else if c == b'\'' && b.get(i + 2) == Some(&b'\'') {
            out.push_str("' '");
            i += 3;
        } else if c == b'\'' && b.get(i + 1) == Some(&b'\\') {
            // '\n', '\'', '\u{7b}': skip to the closing quote.
            let mut j = i + 2;
            while j < b.len() && b[j] != b'\'' {
                j += 1;
            }
            out.push_str("' '");
            i = j + 1;
        } else {
            let ch = src[i..].chars().next().unwrap_or(' ');
            out.push(ch);
            i += ch.len_utf8();
        }
    }
    out
}

fn ident_before(b: &[u8], i: usize) -> bool {
    i > 0 && (b[i - 1].is_ascii_alphanumeric() || b[i - 1] == b'_')
}

fn is_ident(c: char) -> bool {
    c.is_ascii_alphanumeric() || c == '_'
}

/// Expands a use tree (`a::{b, c::{d, e}}`) into its paths.
fn use_paths(tree: &str) -> Vec<Vec<String>> {
    fn expand(s: &str, prefix: &[String], out: &mut Vec<Vec<String>>) {
        let s = s.trim();
        if s.is_empty() {
            return;
        }
        let (head, group) = match s.find('{') {
            Some(open) => (
                &s[..open],
                Some(&s[open + 1..s.rfind('}').unwrap_or(s.len())]),
            ),
            None => (s, None),
        };
        let mut path = prefix.to_vec();
        for seg in head.split("::") {
            let seg = seg.split_whitespace().next().unwrap_or("");
            if !seg.is_empty() {
                path.push(seg.to_string());
            }
        }
        match group {
            None => out.push(path),
            Some(g) => {
                let mut depth = 0;
                let mut start = 0;
                for (i, c) in g.char_indices() {
                    match c {
                        '{' => depth += 1,
                        '}' => depth -= 1,
                        ',' if depth == 0 => {
                            expand(&g[start..i], &path, out);
                            start = i + 1;
                        }
                        _ => {}
                    }
                }
                expand(&g[start..], &path, out);
            }
        }
    }
    let mut out = Vec::new();
    expand(tree, &[], &mut out);
    out
}

/// Every module path `code` (the file of module `me`) refers to, each taken
/// in the (inline) module it is written in.
fn references(me: &[String], code: &str) -> Vec<Vec<String>> {
    let children: BTreeSet<String> = code
        .lines()
        .filter_map(|l| {
            let l = l.trim_start();
            let l = l
                .strip_prefix("pub ")
                .or(l.strip_prefix("pub(crate) "))
                .unwrap_or(l);
            let rest = l.strip_prefix("mod ")?;
            let name: String = rest.chars().take_while(|&c| is_ident(c)).collect();
            rest[name.len()..]
                .trim_start()
                .starts_with(';')
                .then_some(name)
        })
        .collect();

    let mut refs = Vec::new();
    // Inline modules (`mod tests {`) with the brace depth they close at.
    let mut inline: Vec<(String, i32)> = Vec::new();
    let mut depth = 0i32;
    let chars: Vec<char> = code.chars().collect();
    let mut i = 0;
    while i < chars.len() {
        let c = chars[i];
        let word_start = i == 0 || !is_ident(chars[i - 1]) && chars[i - 1] != ':';
        if c == '{' {
            depth += 1;
        } else if c == '}' {
            depth -= 1;
            if inline.last().is_some_and(|(_, d)| *d == depth) {
                inline.pop();
            }
        } else if word_start && starts_with(&chars, i, "mod ") {
            let name: String = chars[i + 4..]
                .iter()
                .take_while(|&&c| is_ident(c))
                .collect();
            let after: String = chars[i + 4 + name.len()..]
                .iter()
                .skip_while(|c| c.is_whitespace())
                .take(1)
                .collect();
            if after == "{" {
                inline.push((name, depth));
            }
        } else if word_start && starts_with(&chars, i, "use ") {
            let end = chars[i..]
                .iter()
                .position(|&c| c == ';')
                .map_or(chars.len(), |p| i + p);
            let tree: String = chars[i + 4..end].iter().collect();
            let here: Vec<String> = me
                .iter()
                .cloned()
                .chain(inline.iter().map(|(n, _)| n.clone()))
                .collect();
            for path in use_paths(&tree) {
                if let Some(abs) = absolute(&here, &path, &children, inline.is_empty()) {
                    refs.push(abs);
                }
            }
            i = end;
            continue;
        } else if word_start
            && (starts_with(&chars, i, "crate::") || starts_with(&chars, i, "super::"))
        {
            let text: String = chars[i..]
                .iter()
                .take_while(|&&c| is_ident(c) || c == ':')
                .collect();
            let path: Vec<String> = text
                .split("::")
                .filter(|s| !s.is_empty())
                .map(str::to_string)
                .collect();
            let here: Vec<String> = me
                .iter()
                .cloned()
                .chain(inline.iter().map(|(n, _)| n.clone()))
                .collect();
            if let Some(abs) = absolute(&here, &path, &children, false) {
                refs.push(abs);
            }
            i += text.len();
            continue;
        }
        i += 1;
    }
    refs
}

fn starts_with(chars: &[char], i: usize, s: &str) -> bool {
    s.chars()
        .enumerate()
        .all(|(k, c)| chars.get(i + k) == Some(&c))
}

/// `path` as written in module `here`, made absolute from the crate root, when
/// it starts with `crate`, `super` or `self`, or (`top_level` only) names a
/// child module declared with `mod child;`.
fn absolute(
    here: &[String],
    path: &[String],
    children: &BTreeSet<String>,
    top_level: bool,
) -> Option<Vec<String>> {
    let first = path.first()?;
    match first.as_str() {
        "crate" => Some(path[1..].to_vec()),
        "super" => {
            let mut base = here.to_vec();
            let mut rest = path;
            while rest.first().is_some_and(|s| s == "super") {
                base.pop()?;
                rest = &rest[1..];
            }
            base.extend(rest.iter().cloned());
            Some(base)
        }
        "self" => {
            let mut base = here.to_vec();
            base.extend(path[1..].iter().cloned());
            Some(base)
        }
        name if top_level && children.contains(name) => {
            let mut base = here.to_vec();
            base.extend(path.iter().cloned());
            Some(base)
        }
        _ => None,
    }
}

/// Pairs of files (relative to `root`) that import from each other.
fn two_cycles(root: &Path) -> Vec<(String, String)> {
    let mut cycles = Vec::new();
    for src in source_dirs(root) {
        let mut files = Vec::new();
        rust_files(&src, &mut files);
        let modules: BTreeMap<Vec<String>, PathBuf> = files
            .iter()
            .filter_map(|f| Some((module_path(&src, f)?, f.clone())))
            .filter(|(m, _)| !m.is_empty())
            .collect();
        let mut edges: BTreeSet<(Vec<String>, Vec<String>)> = BTreeSet::new();
        for file in &files {
            let Some(me) = module_path(&src, file) else {
                continue;
            };
            let code = code_only(&fs::read_to_string(file).unwrap_or_default());
            for path in references(&me, &code) {
                // The longest prefix of the path that is a module file.
                let Some(target) = (1..=path.len())
                    .rev()
                    .map(|n| path[..n].to_vec())
                    .find(|p| modules.contains_key(p))
                else {
                    continue;
                };
                if target != me {
                    edges.insert((me.clone(), target));
                }
            }
        }
        for (a, b) in &edges {
            if a < b && edges.contains(&(b.clone(), a.clone())) {
                let name = |m: &Vec<String>| {
                    let f = modules.get(m).expect("a module file");
                    f.strip_prefix(root).unwrap_or(f).display().to_string()
                };
                cycles.push((name(a), name(b)));
            }
        }
    }
    cycles
}

#[test]
fn no_two_modules_import_from_each_other() {
    let root = workspace();
    assert!(
        source_dirs(&root).len() >= 3,
        "found no crates under {}",
        root.display()
    );
    let cycles = two_cycles(&root);
    assert!(
        cycles.is_empty(),
        "modules that import from each other (move what both need into a module both use, or import one way):\n{}",
        cycles
            .iter()
            .map(|(a, b)| format!("  {a} <-> {b}"))
            .collect::<Vec<_>>()
            .join("\n")
    );
}

#[test]
fn the_check_sees_a_cycle() {
    let dir = std::env::temp_dir().join(format!("redgiant-layout-{}", std::process::id()));
    let src = dir.join("crates/demo/src");
    fs::create_dir_all(src.join("net")).unwrap();
    fs::write(src.join("lib.rs"), "pub mod a;\npub mod net;\n").unwrap();
    fs::write(
        src.join("a.rs"),
        "use crate::net::wire::{Frame, emit};\n// use crate::b::Nothing;\npub struct A;\n",
    )
    .unwrap();
    fs::write(
        src.join("net/mod.rs"),
        "pub mod wire;\npub use self::wire::Frame;\n",
    )
    .unwrap();
    fs::write(
        src.join("net/wire.rs"),
        "pub struct Frame;\npub fn emit() { let _ = \"crate::a\"; }\n\
         #[cfg(test)]\nmod tests {\n    use super::*;\n    fn t() { super::super::super::a::A; }\n}\n",
    )
    .unwrap();
    let cycles = two_cycles(&dir);
    fs::remove_dir_all(&dir).ok();
    assert_eq!(
        cycles,
        vec![(
            "crates/demo/src/a.rs".to_string(),
            "crates/demo/src/net/wire.rs".to_string()
        )]
    );
}

/// Every `rgtp*` crate `manifest` depends on, in any dependency table.
fn protocol_dependencies(manifest: &str) -> Vec<String> {
    let mut table = String::new();
    let mut found = Vec::new();
    for line in manifest.lines().map(str::trim) {
        if let Some(t) = line.strip_prefix('[').and_then(|l| l.strip_suffix(']')) {
            table = t.trim().to_string();
            // `[dependencies.rgtp-x]` tables.
            if let Some((kind, name)) = table.rsplit_once('.') {
                if kind.ends_with("dependencies") && name.trim_matches('"').starts_with("rgtp") {
                    found.push(format!("[{table}]"));
                }
            }
            continue;
        }
        if !table.ends_with("dependencies") {
            continue;
        }
        let name = line
            .split(['=', '.'])
            .next()
            .unwrap_or("")
            .trim()
            .trim_matches('"');
        // A renamed dependency: `wire = { package = "rgtp-wire", .. }`.
        let package = line
            .split("package")
            .nth(1)
            .and_then(|rest| rest.split('"').nth(1))
            .unwrap_or("");
        if name.starts_with("rgtp") || package.starts_with("rgtp") {
            found.push(format!("[{table}] {line}"));
        }
    }
    found
}

#[test]
fn base_depends_on_no_protocol_crate() {
    let manifest = fs::read_to_string(Path::new(env!("CARGO_MANIFEST_DIR")).join("Cargo.toml"))
        .expect("Cargo.toml");
    let found = protocol_dependencies(&manifest);
    assert!(
        found.is_empty(),
        "redgiant-base must not depend on a protocol crate: {found:?}"
    );
}

#[test]
fn the_dependency_check_sees_a_protocol_crate() {
    let manifest = r#"
[package]
name = "rgtp-pretend"

[dependencies]
redgiant-thing = "1"
rgtp-proto.workspace = true

[dev-dependencies]
wire = { package = "rgtp-wire", path = "../rgtp-wire" }

[target.'cfg(unix)'.dependencies]
"rgtp-link" = { path = "../rgtp-link" }

[dev-dependencies.rgtp-capture]
path = "../rgtp-capture"
"#;
    assert_eq!(
        protocol_dependencies(manifest),
        vec![
            "[dependencies] rgtp-proto.workspace = true",
            r#"[dev-dependencies] wire = { package = "rgtp-wire", path = "../rgtp-wire" }"#,
            r#"[target.'cfg(unix)'.dependencies] "rgtp-link" = { path = "../rgtp-link" }"#,
            "[dev-dependencies.rgtp-capture]",
        ]
    );
}
