//! Every cipher × hash × FEC combination over real loopback UDP, byte-exact, at the
//! sizes where chunking has edges: 0, 1, chunk−1, chunk, chunk+1 and 10 MiB.

mod common;

use rgtp::{ExposerBuilder, FecSpec};
use rgtp_proto::{CipherId, HashId};

const CHUNK: usize = 1200;
const SIZES: [usize; 6] = [0, 1, CHUNK - 1, CHUNK, CHUNK + 1, 10 << 20];

fn run_combo(cipher: CipherId, hash: HashId, fec: &str) {
    let fec: FecSpec = fec.parse().unwrap();
    for (i, &size) in SIZES.iter().enumerate() {
        let data = common::data(size, i as u64 + 7);
        let link = common::loopback(false);
        let prepared = common::prepare(
            ExposerBuilder::new()
                .with_cipher(cipher)
                .with_hash(hash)
                .with_fec(fec),
            &link,
            &data,
        );
        let server = common::Server::start(&prepared, link);
        let (out, stats) = common::pull(&prepared, server.addr, |_| {});
        let (xstats, link) = server.stop_with_link();
        let out = out.unwrap_or_else(|e| panic!("{cipher:?}/{hash:?}/{fec} size {size}: {e}"));
        assert!(
            out == data,
            "{cipher:?}/{hash:?}/{fec} size {size}: output differs"
        );
        assert_eq!(stats.auth_failures, 0);
        assert_eq!(stats.chunks_received, size.div_ceil(CHUNK) as u64);
        assert!(xstats.chunks_sent >= stats.chunks_received - stats.fec_recoveries);
        assert_eq!(xstats.malformed, 0);
        // Stores of 1 MiB and more are mapped and lent: their batches of chunks
        // leave from the store's pages, and none had to be copied after all.
        assert_eq!(link.lend_fallbacks, 0, "size {size}");
        if size >= 1 << 20 {
            assert!(
                link.lent_batches > 0 && link.lent_batches <= link.gso_batches,
                "{cipher:?}/{hash:?}/{fec} size {size}: {link:?}"
            );
        } else {
            assert_eq!(
                link.lent_batches, 0,
                "size {size}: the store is on the heap"
            );
        }
    }
}

macro_rules! combos {
    ($($name:ident: $c:ident, $h:ident, $f:expr;)*) => {$(
        #[test]
        fn $name() {
            run_combo(CipherId::$c, HashId::$h, $f);
        }
    )*};
}

combos! {
    chacha_blake2b_none: ChaCha20Poly1305, Blake2b256, "none";
    chacha_blake2b_rs: ChaCha20Poly1305, Blake2b256, "rs:255,223";
    chacha_blake2b_raptorq: ChaCha20Poly1305, Blake2b256, "raptorq:0.25";
    chacha_sha256_none: ChaCha20Poly1305, Sha256, "none";
    chacha_sha256_rs: ChaCha20Poly1305, Sha256, "rs:255,223";
    chacha_sha256_raptorq: ChaCha20Poly1305, Sha256, "raptorq:0.25";
    chacha_blake3_none: ChaCha20Poly1305, Blake3, "none";
    chacha_blake3_rs: ChaCha20Poly1305, Blake3, "rs:255,223";
    chacha_blake3_raptorq: ChaCha20Poly1305, Blake3, "raptorq:0.25";
    aes_blake2b_none: Aes256Gcm, Blake2b256, "none";
    aes_blake2b_rs: Aes256Gcm, Blake2b256, "rs:255,223";
    aes_blake2b_raptorq: Aes256Gcm, Blake2b256, "raptorq:0.25";
    aes_sha256_none: Aes256Gcm, Sha256, "none";
    aes_sha256_rs: Aes256Gcm, Sha256, "rs:255,223";
    aes_sha256_raptorq: Aes256Gcm, Sha256, "raptorq:0.25";
    aes_blake3_none: Aes256Gcm, Blake3, "none";
    aes_blake3_rs: Aes256Gcm, Blake3, "rs:255,223";
    aes_blake3_raptorq: Aes256Gcm, Blake3, "raptorq:0.25";
}

/// Proofs on the exposer, and asked for by the puller, over IPv6.
#[test]
fn proofs_over_ipv6() {
    let data = common::data(3 * CHUNK * 37 + 5, 99);
    let link = common::loopback(true);
    let prepared = common::prepare(ExposerBuilder::new().with_proofs(true), &link, &data);
    let server = common::Server::start(&prepared, link);
    let (out, _) = common::pull(&prepared, server.addr, |_| {});
    assert!(out.unwrap() == data);
    let (out, stats) = common::pull(&prepared, server.addr, |c| c.want_proofs = true);
    assert!(out.unwrap() == data);
    assert_eq!(stats.merkle_failures, 0);
    server.stop();
}

/// A puller that asks for proofs from an exposure built without them still gets them.
#[test]
fn proofs_on_request() {
    let data = common::data(50_000, 5);
    let link = common::loopback(false);
    let prepared = common::prepare(ExposerBuilder::upstream(), &link, &data);
    let server = common::Server::start(&prepared, link);
    let (out, _) = common::pull(&prepared, server.addr, |c| {
        c.want_proofs = true;
        c.deferred_root = false;
    });
    assert!(out.unwrap() == data);
    server.stop();
}

/// Proofs checked on another core (`offload_proofs`, what `rgtp pull --proofs` does):
/// every chunk handed out (with its proof, or to be judged with its run of 64) and
/// accepted on the driver's verdict, with and without FEC, for the hashes that batch
/// and those that do not.
#[test]
fn proofs_checked_on_another_core() {
    for (hash, fec) in [
        (HashId::Sha256, "none"),
        (HashId::Sha256, "raptorq:0.25"),
        (HashId::Blake3, "rs:255,223"),
    ] {
        let fec: FecSpec = fec.parse().unwrap();
        for (i, size) in [1, CHUNK + 1, 3 << 20].into_iter().enumerate() {
            let data = common::data(size, i as u64 + 70);
            let link = common::loopback(false);
            let builder = ExposerBuilder::new()
                .with_hash(hash)
                .with_fec(fec)
                .with_proofs(true);
            let prepared = common::prepare(builder, &link, &data);
            let server = common::Server::start(&prepared, link);
            let (out, stats) = common::pull(&prepared, server.addr, |c| {
                c.want_proofs = true;
                c.offload_proofs = true;
            });
            server.stop();
            let out = out.unwrap_or_else(|e| panic!("{hash:?}/{fec} size {size}: {e}"));
            assert!(out == data, "{hash:?}/{fec} size {size}: output differs");
            assert_eq!(stats.merkle_failures, 0);
            assert_eq!(stats.missing_proofs, 0);
            assert_eq!(stats.chunks_received, size.div_ceil(CHUNK) as u64);
            assert_eq!(stats.offloaded_checks, stats.chunks_received);
            if size == 3 << 20 {
                // Proof runs (spec §3.6): most chunks came without a proof of their own.
                assert!(
                    stats.proof_run_members > stats.chunks_received / 2,
                    "{hash:?}/{fec}: {} of {} chunks without a proof",
                    stats.proof_run_members,
                    stats.chunks_received
                );
            }
        }
    }
}
