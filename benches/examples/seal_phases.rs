//! Where sealing's time goes: the work itself against the memory it writes.
//!
//! Seals SIZE bytes (default 1 GiB) as `ExposerBuilder::expose` does, on every
//! core (AES-256-GCM with the default backend, SHA-256 leaves, 1200-byte chunks),
//! a few rounds; each round times
//! - `fresh`: sealing into a new anonymous store, whose pages are populated a
//!   piece at a time just before they are written (what `rgtp expose` and
//!   `rgtp demo` pay);
//! - `warm`: sealing the same data again into that store, now backed (the work
//!   alone, but for the populate calls, which walk pages already there: about
//!   0.05 s per GiB on the 2-core VMs measured);
//! - `tree`: building the Merkle tree over the leaves.
//!
//! `cargo run --release -p rgtp-benches --example seal_phases -- [SIZE_MIB] [ROUNDS]`

use std::time::{Duration, Instant};

use rgtp_proto::crypto::CipherId;
use rgtp_proto::merkle::HashId;
use rgtp_proto::Exposure;
use rgtp_providers::cipher::AnyCipher;
use rgtp_providers::hash::AnyHash;

const CHUNK: u32 = 1200;

fn main() {
    let mut args = std::env::args().skip(1);
    let mib: usize = args.next().map_or(1024, |a| a.parse().expect("SIZE_MIB"));
    let rounds: usize = args.next().map_or(3, |a| a.parse().expect("ROUNDS"));
    let size = mib << 20;
    let data = rgtp_benches::data(size, rgtp_benches::SEED);
    let key = rgtp_providers::cipher::random_key();
    let cipher = AnyCipher::new(CipherId::Aes256Gcm, &key).expect("AES-256-GCM");
    let hash = AnyHash::new(HashId::Sha256).expect("SHA-256");
    let id = rgtp_providers::cipher::random_exposure_id();
    let store_len = Exposure::store_len(size as u64, CHUNK);
    let n = size.div_ceil(CHUNK as usize);
    let rate = |d: Duration| size as f64 / 1e6 / d.as_secs_f64();
    println!(
        "sealing {mib} MiB ({n} chunks of {CHUNK} B) on {} threads",
        cores()
    );
    for round in 1..=rounds {
        let mut store = memmap2::MmapMut::map_anon(store_len).expect("map the store");
        let mut leaves = vec![[0u8; 32]; n];
        let seal = |store: &mut [u8], leaves: &mut [[u8; 32]]| {
            let t = Instant::now();
            rgtp::verify::seal_and_hash_parallel(&cipher, &id, &hash, &data, CHUNK, store, leaves)
                .expect("seal");
            t.elapsed()
        };
        let fresh = seal(&mut store, &mut leaves);
        let warm = seal(&mut store, &mut leaves);
        let t = Instant::now();
        let tree = rgtp::verify::tree_parallel(&hash, leaves);
        let tree_time = t.elapsed();
        std::hint::black_box(tree.root());
        println!(
            "round {round}: fresh {:>7.1} ms ({:>5.0} MB/s)  warm {:>7.1} ms ({:>5.0} MB/s)  tree {:>6.1} ms",
            fresh.as_secs_f64() * 1e3,
            rate(fresh),
            warm.as_secs_f64() * 1e3,
            rate(warm),
            tree_time.as_secs_f64() * 1e3,
        );
    }
}

fn cores() -> usize {
    std::thread::available_parallelism().map_or(1, |p| p.get())
}
