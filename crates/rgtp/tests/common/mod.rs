//! Shared helpers for the end-to-end tests.
#![allow(dead_code)]

use std::net::SocketAddr;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;

use rand::RngCore;
use rand_chacha::rand_core::SeedableRng;

use rgtp::builder::{CipherProvider, FecProvider, HashProvider};
use rgtp::driver::{self, Clock, PullFailure};
use rgtp::sink::MemSink;
use rgtp::{DynSuite, ExposerBuilder, Prepared};
use rgtp_link::udp::{UdpLink, UdpStats};
use rgtp_link::Link;
use rgtp_proto::{ExposerConfig, ExposerStats, Peer, Puller, PullerConfig, PullerStats};

/// Deterministic pseudo-random bytes.
pub fn data(len: usize, seed: u64) -> Vec<u8> {
    let mut v = vec![0u8; len];
    rand_chacha::ChaCha8Rng::seed_from_u64(seed).fill_bytes(&mut v);
    v
}

/// The config every UDP exposer in the tests uses: the link's GSO batch.
pub fn udp_config(link: &UdpLink) -> ExposerConfig {
    ExposerConfig {
        max_segments: link.capabilities().max_segments,
        max_payload: link.capabilities().mtu,
        ..Default::default()
    }
}

/// A running exposer on loopback UDP; stops and reports when dropped via [`Server::stop`].
pub struct Server {
    pub addr: SocketAddr,
    stop: Arc<AtomicBool>,
    handle: Option<std::thread::JoinHandle<(ExposerStats, UdpStats)>>,
}

impl Server {
    /// Serves `prepared` on `link`, its store lent to the link as `rgtp expose` does
    /// (batches of chunks leave from the store's pages without a copy).
    pub fn start(prepared: &Prepared, mut link: UdpLink) -> Server {
        if let Some(store) = prepared.lent_store() {
            assert!(link.lend(store), "a UDP link takes lent memory");
        }
        let addr = link.local_addr();
        let mut exposer = prepared.exposer();
        let stop = Arc::new(AtomicBool::new(false));
        let stop2 = Arc::clone(&stop);
        let handle = std::thread::spawn(move || {
            let mut link = link;
            let clock = Clock::new();
            driver::serve(&mut exposer, &mut link, &clock, &stop2, |_| {}).expect("serve");
            (exposer.stats(), link.stats())
        });
        Server {
            addr,
            stop,
            handle: Some(handle),
        }
    }

    /// Stops serving and returns the exposer's counters.
    pub fn stop(self) -> ExposerStats {
        self.stop_with_link().0
    }

    /// Stops serving and returns the exposer's counters and its link's.
    pub fn stop_with_link(mut self) -> (ExposerStats, UdpStats) {
        self.stop.store(true, Ordering::Relaxed);
        self.handle
            .take()
            .expect("once")
            .join()
            .expect("exposer thread")
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
        if let Some(h) = self.handle.take() {
            let _ = h.join();
        }
    }
}

/// Binds a loopback UDP link (IPv6 when `v6`).
pub fn loopback(v6: bool) -> UdpLink {
    let a: SocketAddr = if v6 { "[::1]:0" } else { "127.0.0.1:0" }.parse().unwrap();
    UdpLink::bind(a).expect("bind loopback")
}

/// Prepares `data` with `builder` for serving on `link`.
pub fn prepare<C: CipherProvider, H: HashProvider, F: FecProvider>(
    builder: ExposerBuilder<C, H, F>,
    link: &UdpLink,
    data: &[u8],
) -> Prepared {
    builder
        .with_config(udp_config(link))
        .expose(data)
        .expect("expose")
}

/// Pulls from `server` with `tweak` applied to the default puller config.
pub fn pull(
    prepared: &Prepared,
    server: SocketAddr,
    tweak: impl FnOnce(&mut PullerConfig),
) -> (Result<Vec<u8>, PullFailure>, PullerStats) {
    let ticket = prepared.ticket(server);
    let mut cfg = PullerConfig::new(ticket.exposure_id, Peer::Ip(server), ticket.key.clone());
    cfg.expected_cipher = ticket.cipher;
    cfg.expected_hash = ticket.hash;
    tweak(&mut cfg);
    let mut link = loopback(server.is_ipv6());
    let clock = Clock::new();
    let mut puller = Puller::new(cfg, DynSuite, clock.now());
    let mut sink = MemSink::default();
    let r = driver::pull(&mut puller, &mut link, &clock, &mut sink, |_| {});
    (r.map(|()| sink.to_vec()), puller.stats())
}
