//! The "expose" figure: `ExposerBuilder::new()…expose(&data)` on 16 MiB —
//! seal every chunk, hash every leaf, build the tree, and (with FEC) encode
//! the parity, all on one thread, as `rgtp expose` does before it serves.
//!
//! One bench per cipher × hash without FEC, then Reed-Solomon (rs:255,223)
//! and RaptorQ (raptorq:0.25, i.e. n=80, k=64) on the default cipher and hash.
//! Throughput is plaintext bytes.
//!
//! `cargo bench -p rgtp-benches --bench expose`

use std::hint::black_box;
use std::time::Duration;

use criterion::{criterion_group, criterion_main, Criterion, SamplingMode, Throughput};
use rgtp_proto::ExposerConfig;

use rgtp_benches::{builder, data, fec_specs, suite_label, suites, Choice, SEED};

const SIZE: usize = 16 << 20;

fn expose(c: &mut Criterion) {
    let input = data(SIZE, SEED);
    let mut cases: Vec<(String, Choice)> = suites()
        .map(|(c, h)| (suite_label(c, h), Choice::suite(c, h)))
        .collect();
    cases.extend(
        fec_specs()
            .into_iter()
            .map(|(name, spec)| (name.to_string(), Choice::fec(spec))),
    );

    let mut g = c.benchmark_group("expose/16MiB");
    g.sampling_mode(SamplingMode::Flat)
        .sample_size(10)
        .warm_up_time(Duration::from_secs(1))
        .measurement_time(Duration::from_secs(5))
        .throughput(Throughput::Bytes(SIZE as u64));
    for (name, choice) in cases {
        g.bench_function(&name, |b| {
            // Unmapping the sealed store is not part of exposing: dropped untimed.
            b.iter_with_large_drop(|| {
                builder(choice, ExposerConfig::default())
                    .expose(black_box(&input))
                    .expect("expose")
            });
        });
    }
    g.finish();
}

criterion_group!(benches, expose);
criterion_main!(benches);
