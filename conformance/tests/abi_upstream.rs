//! The ABI target against a library with only the upstream C header's symbols: a small
//! C shim, built here with gcc, that exports exactly those and forwards each call to our
//! librgtp.so (opened privately, so none of its other symbols show through). Every case
//! the upstream symbols allow must run; the ones that need redgiant's additions say n/a.

mod common;

use std::collections::BTreeMap;
use std::path::Path;
use std::process::Command;

use common::*;
use rgtp_conformance::{Selection, Verdict};

/// The upstream header's entry points (see /work/shared/reference/c-abi.md), forwarded.
const SHIM: &str = r#"
#include <dlfcn.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>

static void *real(const char *name) {
    static void *lib;
    if (!lib) lib = dlopen(REAL_LIB, RTLD_NOW | RTLD_LOCAL);
    void *f = lib ? dlsym(lib, name) : NULL;
    if (!f) { fprintf(stderr, "shim: %s: %s\n", name, dlerror()); abort(); }
    return f;
}

#define FWD(ret, name, params, args) \
    ret name params { return ((ret (*) params) real(#name)) args; }

FWD(int, rgtp_init, (void), ())
FWD(void, rgtp_cleanup, (void), ())
FWD(const char *, rgtp_version, (void), ())
FWD(const char *, rgtp_strerror, (int c), (c))
FWD(int, rgtp_set_allocator, (const void *a), (a))
FWD(int, rgtp_set_log_callback, (void *fn, void *ctx), (fn, ctx))
FWD(int, rgtp_set_log_level, (int l), (l))
FWD(int, rgtp_socket_create, (const void *cfg, void **out), (cfg, out))
FWD(void, rgtp_socket_destroy, (void *s), (s))
FWD(void *, rgtp_socket_create_ccsds, (const char *d, const void *cfg), (d, cfg))
FWD(int, rgtp_expose, (void *s, const void *d, size_t n, const void *cfg, void **out),
    (s, d, n, cfg, out))
FWD(int, rgtp_poll, (void *s, int t), (s, t))
FWD(void, rgtp_destroy_surface, (void *s), (s))
FWD(int, rgtp_get_exposure_id, (const void *s, uint8_t *out), (s, out))
FWD(float, rgtp_progress, (const void *s), (s))
FWD(int, rgtp_get_stats, (const void *s, void *out), (s, out))
FWD(int, rgtp_get_latency_stats, (const void *s, void *out), (s, out))
FWD(int, rgtp_pull_start,
    (void *s, const void *srv, const uint8_t *id, const void *cfg, void **out),
    (s, srv, id, cfg, out))
FWD(int, rgtp_pull_next, (void *s, void *b, size_t n, size_t *got, uint32_t *idx),
    (s, b, n, got, idx))
"#;

/// Builds the shim in `dir`, forwarding to `real`.
fn build_shim(dir: &Path, real: &Path) -> std::path::PathBuf {
    let src = dir.join("upstream_shim.c");
    std::fs::write(&src, SHIM).unwrap();
    let out = dir.join("librgtp-upstream.so");
    let st = Command::new("gcc")
        .args(["-shared", "-fPIC", "-O1", "-Wall", "-Werror", "-o"])
        .arg(&out)
        .arg(&src)
        .arg(format!("-DREAL_LIB=\"{}\"", real.display()))
        .arg("-ldl")
        .status()
        .expect("gcc");
    assert!(st.success(), "gcc failed on the shim");
    out
}

#[test]
fn library_with_only_the_upstream_symbols() {
    let real = built("librgtp.so", &["build", "-p", "rgtp-ffi"]);
    let dir = tempfile::tempdir().unwrap();
    let shim = build_shim(dir.path(), &real);
    let nm = Command::new("nm")
        .args(["-D", "--defined-only"])
        .arg(&shim)
        .output();
    if let Ok(nm) = nm {
        let syms = String::from_utf8_lossy(&nm.stdout);
        assert!(
            !syms.contains("rgtp_get_ticket"),
            "the shim must hide our additions"
        );
    }
    // rgtp_pull_start takes no key; ours reads it from RGTP_KEY (spec §14.2). Nothing else
    // in this test process uses the variable.
    std::env::set_var("RGTP_KEY", "11".repeat(32));
    let out = rgtp_conformance::run_abi(&shim, &Selection::default());
    print!("{}", rgtp_conformance::report::table(&out));
    let verdicts: BTreeMap<&str, (Verdict, &str)> = out
        .iter()
        .map(|o| (o.info.id, (o.verdict, o.detail.as_str())))
        .collect();
    assert_eq!(verdicts.len(), rgtp_conformance::cases::abi::CASES.len());
    // The cases the upstream symbols cover run, and pass on our library behind them.
    for id in [
        "ABI-001", "ABI-002", "ABI-003", "ABI-004", "ABI-005", "ABI-014",
    ] {
        let (v, d) = verdicts[id];
        assert_eq!(v, Verdict::Pass, "{id}: {d}");
    }
    // ABI-003 notes the additions it could not check.
    assert!(verdicts["ABI-003"].1.contains("rgtp_get_ticket"));
    // The cases that need a key or ticket call (redgiant additions) say n/a.
    for id in [
        "ABI-010", "ABI-011", "ABI-012", "ABI-013", "ABI-015", "ABI-016",
    ] {
        let (v, d) = verdicts[id];
        assert_eq!(v, Verdict::Skip, "{id}: {d}");
        assert!(
            d.starts_with("n/a: not implemented (missing symbol rgtp_"),
            "{id}: {d}"
        );
    }
    assert!(!rgtp_conformance::report::must_failed(&out));
}
