//! Cipher layer: `seal` and `open` of one chunk, in place, under its index
//! nonce, for every AEAD the providers offer on every backend (through
//! `AnyCipher`, as the exposer and puller call it). Bench ids are
//! `cipher/seal/<suite>@<backend>/<size>`; `Backend::preferred` (the default)
//! is chosen from these figures.
//!
//! Throughput is plaintext bytes. Sizes: 1200 B (the default chunk) and 8 KiB.
//!
//! `cargo bench -p rgtp-benches --bench cipher`

use std::hint::black_box;

use criterion::{criterion_group, criterion_main, BatchSize, BenchmarkId, Criterion, Throughput};

use rgtp_benches::{data, key, CHUNK, CIPHERS, SEED};
use rgtp_proto::CipherSuite;
use rgtp_providers::{AnyCipher, Backend};

const SIZES: [usize; 2] = [CHUNK, 8 << 10];
const INDEX: u32 = 4_242;

/// Every suite on every backend this build holds.
fn variants() -> impl Iterator<Item = (rgtp_proto::CipherId, Backend)> {
    CIPHERS.into_iter().flat_map(|id| {
        Backend::ALL
            .into_iter()
            .filter(|b| b.built())
            .map(move |b| (id, b))
    })
}

fn seal(c: &mut Criterion) {
    let mut g = c.benchmark_group("cipher/seal");
    for (id, backend) in variants() {
        let cipher = AnyCipher::with_backend(id, backend, &key()).expect("real cipher");
        let name = format!("{}@{backend}", id.name());
        for size in SIZES {
            let mut buf = data(size, SEED);
            g.throughput(Throughput::Bytes(size as u64));
            g.bench_with_input(BenchmarkId::new(&name, size), &size, |b, _| {
                // Sealing ciphertext again costs the same as sealing plaintext.
                b.iter(|| cipher.seal(black_box(INDEX), black_box(&mut buf)));
            });
        }
    }
    g.finish();
}

fn open(c: &mut Criterion) {
    let mut g = c.benchmark_group("cipher/open");
    for (id, backend) in variants() {
        let cipher = AnyCipher::with_backend(id, backend, &key()).expect("real cipher");
        let name = format!("{}@{backend}", id.name());
        for size in SIZES {
            let plain = data(size, SEED);
            let mut sealed = plain.clone();
            let tag = cipher.seal(INDEX, &mut sealed).expect("seal");
            let mut check = sealed.clone();
            cipher.open(INDEX, &mut check, &tag).expect("open");
            assert!(check == plain, "{name}: open(seal(x)) != x");
            g.throughput(Throughput::Bytes(size as u64));
            g.bench_with_input(BenchmarkId::new(&name, size), &size, |b, _| {
                // Opening decrypts in place: every iteration gets a fresh ciphertext copy,
                // made outside the timed part.
                b.iter_batched_ref(
                    || sealed.clone(),
                    |buf| cipher.open(black_box(INDEX), black_box(buf), black_box(&tag)),
                    BatchSize::SmallInput,
                );
            });
        }
    }
    g.finish();
}

criterion_group!(benches, seal, open);
criterion_main!(benches);
