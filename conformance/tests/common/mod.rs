//! Shared helpers: locating built artifacts and serving our exposer in process.
#![allow(dead_code)]

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{mpsc, Arc};
use std::thread::JoinHandle;
use std::time::Duration;

use rgtp::driver::{self, Clock};
use rgtp::{ExposerBuilder, Ticket};
use rgtp_link::udp::UdpLink;
use rgtp_link::Link;
use rgtp_proto::ExposerConfig;

const CRATE: &str = env!("CARGO_MANIFEST_DIR");

/// Silence window for the exposer cases in tests.
pub const QUIET: Duration = Duration::from_millis(150);

/// `target/<profile>`, from this test binary's path (`target/<profile>/deps/…`).
pub fn profile_dir() -> PathBuf {
    let exe = std::env::current_exe().expect("current_exe");
    exe.parent()
        .and_then(Path::parent)
        .expect("target/<profile>/deps")
        .to_path_buf()
}

/// Builds an artifact of another package (a no-op when fresh) and returns its path.
pub fn built(file: &str, args: &[&str]) -> PathBuf {
    let path = profile_dir().join(file);
    let st = Command::new(env!("CARGO"))
        .args(args)
        .current_dir(CRATE)
        .status()
        .expect("cargo");
    assert!(st.success(), "cargo {args:?} failed");
    assert!(path.exists(), "{} missing", path.display());
    path
}

/// Our exposer, run by our driver over our UDP link, until dropped.
pub struct Ours {
    pub addr: SocketAddr,
    pub ticket: Ticket,
    stop: Arc<AtomicBool>,
    handle: Option<JoinHandle<()>>,
}

impl Drop for Ours {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
        if let Some(h) = self.handle.take() {
            let _ = h.join();
        }
    }
}

/// Serves `data` with `b` (its config adjusted like `rgtp expose` does) on loopback.
pub fn serve_ours(data: &[u8], b: ExposerBuilder, config: ExposerConfig) -> Ours {
    let data = data.to_vec();
    let stop = Arc::new(AtomicBool::new(false));
    let stop2 = Arc::clone(&stop);
    let (tx, rx) = mpsc::channel();
    let handle = std::thread::spawn(move || {
        let mut link = UdpLink::bind("127.0.0.1:0".parse().unwrap()).expect("bind");
        let caps = link.capabilities();
        let config = ExposerConfig {
            max_segments: caps.max_segments,
            max_batch_bytes: caps.max_batch_bytes,
            max_payload: caps.mtu,
            ..config
        };
        let prepared = b.with_config(config).expose(&data).expect("expose");
        let addr = link.local_addr();
        tx.send((addr, prepared.ticket(addr))).unwrap();
        let mut exposer = prepared.exposer();
        let clock = Clock::new();
        driver::serve(&mut exposer, &mut link, &clock, &stop2, |_| {}).expect("serve");
    });
    let (addr, ticket) = rx.recv().expect("exposer started");
    Ours {
        addr,
        ticket,
        stop,
        handle: Some(handle),
    }
}

/// Deterministic test bytes.
pub fn bytes(n: usize, seed: u8) -> Vec<u8> {
    (0..n)
        .map(|i| (i as u8).wrapping_mul(31).wrapping_add(seed) ^ (i >> 9) as u8)
        .collect()
}
