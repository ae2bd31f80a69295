//! Whole transfers of 32 MiB, verified byte for byte:
//!
//! - `transfer/udp`: over real loopback UDP (127.0.0.1), the exposer serving
//!   from its own thread through `rgtp::driver::serve`, the puller running
//!   `rgtp::driver::pull` into a `MemSink`, as `rgtp demo` does. Only the pull
//!   is timed (socket set-up and the exposer thread's start and stop are not),
//!   so the figure is goodput.
//! - `transfer/sim`: the same pull in the deterministic simulator
//!   (`rgtp::sim::simulate` over a perfect `SimNet`), the wall time of the whole
//!   simulation: the protocol core's cost without sockets.
//!
//! Cases: the defaults, every other cipher × hash, and Reed-Solomon
//! (rs:255,223) and RaptorQ (raptorq:0.25) on the default cipher and hash.
//! Exposures are sealed once per case, outside the timing.
//!
//! `cargo bench -p rgtp-benches --bench transfer`

use std::time::Duration;

use criterion::{criterion_group, criterion_main, Criterion, SamplingMode, Throughput};

use rgtp::builder::{DEFAULT_CIPHER, DEFAULT_HASH};
use rgtp::Prepared;
use rgtp_benches::{
    data, fec_specs, prepare, sim_transfer, suite_label, suites, udp_transfer, Choice, SEED,
};

const SIZE: usize = 32 << 20;

fn cases() -> Vec<(String, Choice)> {
    let mut cases = vec![(
        format!("defaults={}", suite_label(DEFAULT_CIPHER, DEFAULT_HASH)),
        Choice::defaults(),
    )];
    cases.extend(
        suites()
            .filter(|&s| s != (DEFAULT_CIPHER, DEFAULT_HASH))
            .map(|(c, h)| (suite_label(c, h), Choice::suite(c, h))),
    );
    cases.extend(
        fec_specs()
            .into_iter()
            .map(|(name, spec)| (name.to_string(), Choice::fec(spec))),
    );
    cases
}

fn transfer(c: &mut Criterion) {
    let input = data(SIZE, SEED);
    let cases = cases();
    group(c, "transfer/udp", &cases, &input, udp_transfer);
    group(c, "transfer/sim", &cases, &input, sim_transfer);
}

/// One benchmark group: every case, pulled by `run`.
fn group(
    c: &mut Criterion,
    name: &str,
    cases: &[(String, Choice)],
    input: &[u8],
    run: fn(&Prepared, &[u8]) -> Duration,
) {
    let mut g = c.benchmark_group(name);
    g.sampling_mode(SamplingMode::Flat)
        .sample_size(10)
        .warm_up_time(Duration::from_secs(1))
        .measurement_time(Duration::from_secs(5))
        .throughput(Throughput::Bytes(SIZE as u64));
    for (case, choice) in cases {
        // Sealed on first use, so a filter that skips the case skips its set-up too.
        let mut prepared = None;
        g.bench_function(case, |b| {
            let prepared = prepared.get_or_insert_with(|| prepare(input, *choice));
            b.iter_custom(|iters| (0..iters).map(|_| run(prepared, input)).sum());
        });
    }
    g.finish();
}

criterion_group!(benches, transfer);
criterion_main!(benches);
