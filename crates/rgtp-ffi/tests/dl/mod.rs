//! librgtp.so as a C program loads it, for the ABI tests: built fresh, opened
//! once per test binary with `dlopen`, its functions looked up by name.
//!
//! ```ignore
//! mod dl;
//! // SAFETY: rgtp.h declares rgtp_version with this type.
//! let version: unsafe extern "C" fn() -> *const c_char = unsafe { dl::sym("rgtp_version") };
//! ```
#![allow(dead_code)]

use std::ffi::{c_void, CString};
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::OnceLock;

/// `target/<profile>`, from this test binary's path (`target/<profile>/deps/…`).
pub fn profile_dir() -> PathBuf {
    let exe = std::env::current_exe().expect("current_exe");
    exe.parent()
        .and_then(Path::parent)
        .expect("target/<profile>/deps")
        .to_path_buf()
}

/// The library's path.
pub fn path() -> PathBuf {
    profile_dir().join("librgtp.so")
}

/// The `dlopen` handle, as an address (a handle is usable from any thread).
fn handle() -> usize {
    static HANDLE: OnceLock<usize> = OnceLock::new();
    *HANDLE.get_or_init(|| {
        // `cargo test` does not refresh the uplifted cdylib: build it (a no-op when fresh).
        let st = Command::new(env!("CARGO"))
            .args(["build", "-p", "rgtp-ffi"])
            .current_dir(env!("CARGO_MANIFEST_DIR"))
            .status()
            .expect("cargo build");
        assert!(st.success(), "cargo build -p rgtp-ffi failed");
        let path = path();
        let cpath = CString::new(path.to_str().unwrap()).unwrap();
        // SAFETY: loading our own library; its initialisers have no requirements, and
        // it stays loaded for the life of the process.
        let h = unsafe { libc::dlopen(cpath.as_ptr(), libc::RTLD_NOW | libc::RTLD_LOCAL) };
        assert!(!h.is_null(), "dlopen {} failed", path.display());
        h as usize
    })
}

/// The function `name` exported by librgtp.so, as the function pointer type `F`.
///
/// # Safety
/// `F` is the function pointer type rgtp.h declares for `name`.
pub unsafe fn sym<F: Copy>(name: &str) -> F {
    let c = CString::new(name).unwrap();
    // SAFETY: a live dlopen handle and a NUL-terminated name.
    let p = unsafe { libc::dlsym(handle() as *mut c_void, c.as_ptr()) };
    assert!(!p.is_null(), "librgtp.so does not export {name}");
    assert_eq!(std::mem::size_of::<F>(), std::mem::size_of::<*mut c_void>());
    // SAFETY: same size; the caller vouches for the type.
    unsafe { std::mem::transmute_copy(&p) }
}
