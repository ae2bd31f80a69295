//! Shared set-up for the RGTP benchmarks: seeded data, the suites to compare,
//! exposures with a fixed key, and one loopback transfer (real UDP or the
//! deterministic simulator).
//!
//! Everything here is deterministic except the UDP transfer's timing: data
//! comes from a seeded ChaCha RNG, keys and Exposure_IDs are fixed.
#![warn(missing_docs)]

use std::net::{Ipv4Addr, SocketAddr};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::thread;
use std::time::{Duration, Instant};

use rand::RngCore;
use rand_chacha::rand_core::SeedableRng;
use rand_chacha::ChaCha8Rng;

use rgtp::driver::{self, Clock};
use rgtp::sim;
use rgtp::sink::MemSink;
use rgtp::{DynSuite, ExposerBuilder, FecSpec, Prepared};
use rgtp_link::mem::SimNet;
use rgtp_link::udp::UdpLink;
use rgtp_link::{ImpairmentConfig, Link};
use rgtp_proto::{CipherId, ExposerConfig, HashId, Key, Peer, Puller, PullerConfig};

/// Seed of every generated buffer unless a bench says otherwise.
pub const SEED: u64 = 0x5247_5450; // "RGTP"

/// Plaintext bytes per chunk, as the builder's default.
pub const CHUNK: usize = rgtp::builder::DEFAULT_CHUNK_SIZE as usize;

/// Ciphertext plus tag of a default chunk: the FEC shard and Chunk_Data payload size.
pub const SHARD: usize = CHUNK + rgtp_proto::crypto::TAG_LEN;

/// Every cipher the providers offer (the null test cipher excluded).
pub const CIPHERS: [CipherId; 2] = [CipherId::ChaCha20Poly1305, CipherId::Aes256Gcm];

/// Every Merkle hash the providers offer.
pub const HASHES: [HashId; 3] = [HashId::Blake2b256, HashId::Sha256, HashId::Blake3];

/// The fixed key of every benchmark exposure.
pub const KEY: [u8; 32] = [0x42; 32];

/// The fixed Exposure_ID of every benchmark exposure.
pub const EXPOSURE_ID: [u8; 16] = *b"rgtp-benchmark!!";

/// `len` bytes from a ChaCha8 stream seeded with `seed`.
pub fn data(len: usize, seed: u64) -> Vec<u8> {
    let mut v = vec![0u8; len];
    rng(seed).fill_bytes(&mut v);
    v
}

/// A seeded ChaCha8 RNG, for benches that need more than one buffer.
pub fn rng(seed: u64) -> ChaCha8Rng {
    ChaCha8Rng::seed_from_u64(seed)
}

/// The benchmark key as a [`Key`].
pub fn key() -> Key {
    Key::from_bytes(KEY)
}

/// Every (cipher, hash) pair, ChaCha20-Poly1305 first.
pub fn suites() -> impl Iterator<Item = (CipherId, HashId)> {
    CIPHERS
        .into_iter()
        .flat_map(|c| HASHES.into_iter().map(move |h| (c, h)))
}

/// `cipher+hash`, e.g. `aes-256-gcm+blake3`.
pub fn suite_label(cipher: CipherId, hash: HashId) -> String {
    format!("{}+{}", cipher.name(), hash.name())
}

/// The FEC settings compared, as the command line names them, with the defaults
/// (`rgtp::builder::DEFAULT_CIPHER` and `DEFAULT_HASH`) for the other layers.
pub fn fec_specs() -> Vec<(&'static str, FecSpec)> {
    ["rs:255,223", "raptorq:0.25"]
        .into_iter()
        .map(|s| (s, s.parse().expect("literal FEC spec")))
        .collect()
}

/// A layer choice for [`prepare`]; `None` keeps the builder's default.
#[derive(Debug, Clone, Copy, Default)]
pub struct Choice {
    /// Cipher, or the default.
    pub cipher: Option<CipherId>,
    /// Hash, or the default.
    pub hash: Option<HashId>,
    /// FEC, or none (the default).
    pub fec: Option<FecSpec>,
}

impl Choice {
    /// The builder's defaults.
    pub fn defaults() -> Self {
        Self::default()
    }

    /// A cipher and hash, no FEC.
    pub fn suite(cipher: CipherId, hash: HashId) -> Self {
        Choice {
            cipher: Some(cipher),
            hash: Some(hash),
            fec: None,
        }
    }

    /// Default cipher and hash with this FEC.
    pub fn fec(fec: FecSpec) -> Self {
        Choice {
            fec: Some(fec),
            ..Self::default()
        }
    }
}

/// `ExposerBuilder::new()` with the fixed key and Exposure_ID, `choice` applied,
/// and `config` for serving.
pub fn builder(choice: Choice, config: ExposerConfig) -> ExposerBuilder {
    let mut b = ExposerBuilder::new()
        .with_key(key())
        .with_exposure_id(EXPOSURE_ID)
        // Many inputs under one fixed key and Exposure_ID, none of them secret.
        .dangerous_allow_key_reuse()
        .with_config(config);
    if let Some(c) = choice.cipher {
        b = b.with_cipher(c);
    }
    if let Some(h) = choice.hash {
        b = b.with_hash(h);
    }
    if let Some(f) = choice.fec {
        b = b.with_fec(f);
    }
    b
}

/// The serving settings a loopback UDP link supports (GSO batch, datagram size),
/// as `rgtp demo` uses them.
pub fn udp_config() -> ExposerConfig {
    let link = bind_loopback();
    let caps = link.capabilities();
    ExposerConfig::for_link(&caps)
}

/// Seals `data` with `choice`, serving settings for loopback UDP.
///
/// # Panics
/// If the builder refuses the combination.
pub fn prepare(data: &[u8], choice: Choice) -> Prepared {
    builder(choice, udp_config())
        .expose(data)
        .expect("benchmark exposure")
}

fn bind_loopback() -> UdpLink {
    UdpLink::bind(SocketAddr::from((Ipv4Addr::LOCALHOST, 0))).expect("bind loopback UDP")
}

fn puller_config(prepared: &Prepared, exposer: Peer) -> PullerConfig {
    let suite = prepared.exposure.suite();
    let mut c = PullerConfig::new(*prepared.exposure.id(), exposer, prepared.key.clone());
    c.expected_cipher = Some(suite.cipher);
    c.expected_hash = Some(suite.hash);
    c
}

/// One pull of `prepared` over loopback UDP, the exposer serving from its own
/// thread as in `rgtp demo`. Returns the time from the puller's start to the
/// verified end of the pull (binding and thread start-up are not counted).
///
/// # Panics
/// If the pull fails, the exposer fails, or the pulled bytes differ from `expected`.
pub fn udp_transfer(prepared: &Prepared, expected: &[u8]) -> Duration {
    let mut xlink = bind_loopback();
    let server_addr = xlink.local_addr();
    let mut exposer = prepared.exposer();
    let stop = Arc::new(AtomicBool::new(false));
    let server = {
        let stop = Arc::clone(&stop);
        thread::spawn(move || {
            let clock = Clock::new();
            driver::serve(&mut exposer, &mut xlink, &clock, &stop, |_| {})
        })
    };

    let mut plink = bind_loopback();
    let clock = Clock::new();
    let mut sink = MemSink::default();
    let started = Instant::now();
    let mut puller = Puller::new(
        puller_config(prepared, Peer::Ip(server_addr)),
        DynSuite,
        clock.now(),
    );
    let result = driver::pull(&mut puller, &mut plink, &clock, &mut sink, |_| {});
    let elapsed = started.elapsed();

    stop.store(true, Ordering::Relaxed);
    let served = server.join().expect("exposer thread panicked");
    if let Err(e) = result {
        panic!(
            "loopback pull failed: {e}; puller stats {:?}",
            puller.stats()
        );
    }
    served.expect("exposer failed");
    assert!(
        sink.data() == expected,
        "pulled data differs from the source"
    );
    elapsed
}

/// One pull of `prepared` in the deterministic simulator over a perfect
/// in-memory network; returns the wall time `simulate` took.
///
/// # Panics
/// If the pull does not complete within 10 minutes of virtual time, or the pulled
/// bytes differ from `expected`.
pub fn sim_transfer(prepared: &Prepared, expected: &[u8]) -> Duration {
    let net = SimNet::new(ImpairmentConfig::perfect(), SEED);
    let config = puller_config(prepared, sim::EXPOSER);
    let started = Instant::now();
    let report = sim::simulate(prepared, vec![config], net, Duration::from_secs(600));
    let elapsed = started.elapsed();
    let outcome = report.pullers.into_iter().next().expect("one puller");
    match outcome.result {
        Ok(got) => assert!(got == expected, "simulated pull differs from the source"),
        Err(e) => panic!(
            "simulated pull failed: {e:?} after {:?} virtual; stats {:?}",
            outcome.elapsed, outcome.stats
        ),
    }
    elapsed
}
