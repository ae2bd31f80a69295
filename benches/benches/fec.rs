//! FEC layer: `encode` of one block's parity and `reconstruct` of a block that
//! lost `n − k` shards, with 1216-byte shards (a 1200-byte chunk plus its tag).
//!
//! Throughput is the block's data bytes (`k × 1216`), in both directions.
//! Erasures are `n − k` data shards, so every parity shard is used (the most
//! work a rebuild can take):
//! - `fec/reconstruct`: a different random pattern each iteration, from a pool
//!   larger than the Reed-Solomon decode-matrix cache — the cost after real losses;
//! - `fec/reconstruct_same_pattern`: the last `n − k` data shards every time,
//!   so Reed-Solomon's inverted matrix comes from its cache.
//!
//! RaptorQ cannot rebuild every pattern from exactly `k` shards (RFC 6330:
//! about 1 % fail at `k`); patterns it cannot rebuild are left out of the pool
//! and their count printed. Losing the *first* 16 data shards of an (80, 64)
//! block is one of them.
//!
//! `cargo bench -p rgtp-benches --bench fec`

use std::hint::black_box;

use criterion::{criterion_group, criterion_main, BatchSize, Criterion, Throughput};
use rand::RngCore;

use rgtp_benches::{rng, SEED, SHARD};
use rgtp_proto::{FecCodec, FecScheme};
use rgtp_providers::fec::{RaptorQ, ReedSolomon};

/// Erasure patterns per codec: more than the Reed-Solomon decode-matrix cache holds (254).
const PATTERNS: usize = 512;

struct Case {
    name: &'static str,
    codec: Box<dyn FecCodec>,
}

fn cases() -> Vec<Case> {
    vec![
        Case {
            name: "rs-255-223",
            codec: Box::new(ReedSolomon::new(255, 223).expect("valid RS")),
        },
        Case {
            name: "rs-10-8",
            codec: Box::new(ReedSolomon::new(10, 8).expect("valid RS")),
        },
        Case {
            name: "raptorq-80-64",
            codec: Box::new(RaptorQ::new(80, 64).expect("valid RaptorQ")),
        },
    ]
}

/// `k` random data shards and their `n − k` parity shards.
fn block(codec: &dyn FecCodec) -> (Vec<Vec<u8>>, Vec<Vec<u8>>) {
    let p = codec.params();
    let mut r = rng(SEED);
    let data: Vec<Vec<u8>> = (0..p.k)
        .map(|_| {
            let mut s = vec![0u8; SHARD];
            r.fill_bytes(&mut s);
            s
        })
        .collect();
    let mut parity = vec![vec![0u8; SHARD]; p.parity()];
    encode(codec, &data, &mut parity);
    (data, parity)
}

fn encode(codec: &dyn FecCodec, data: &[Vec<u8>], parity: &mut [Vec<u8>]) {
    let d: Vec<&[u8]> = data.iter().map(Vec::as_slice).collect();
    let mut p: Vec<&mut [u8]> = parity.iter_mut().map(Vec::as_mut_slice).collect();
    codec.encode(&d, &mut p).expect("encode");
}

/// The block as `reconstruct` takes it, with the data shards in `lost` missing.
fn damaged(data: &[Vec<u8>], parity: &[Vec<u8>], lost: &[usize]) -> Vec<Option<Vec<u8>>> {
    data.iter()
        .chain(parity)
        .enumerate()
        .map(|(i, s)| (!lost.contains(&i)).then(|| s.clone()))
        .collect()
}

/// Rebuilds `shards` and checks the result against `data`; `false` if the
/// codec cannot rebuild from this erasure pattern.
fn rebuilds(codec: &dyn FecCodec, mut shards: Vec<Option<Vec<u8>>>, data: &[Vec<u8>]) -> bool {
    if codec.reconstruct(&mut shards).is_err() {
        return false;
    }
    let exact = data.iter().zip(&shards).all(|(d, s)| s.as_ref() == Some(d));
    assert!(exact, "reconstruct returned Ok with wrong data");
    true
}

/// `PATTERNS` erasure patterns of `n − k` data shards each, drawn at random,
/// keeping only those the codec rebuilds (RaptorQ fails on a few patterns at
/// exactly `k` shards: RFC 6330's receive overhead).
fn patterns(codec: &dyn FecCodec, data: &[Vec<u8>], parity: &[Vec<u8>]) -> Vec<Vec<usize>> {
    let p = codec.params();
    let mut r = rng(SEED ^ 0xfec);
    let mut out = Vec::with_capacity(PATTERNS);
    let mut tried = 0;
    while out.len() < PATTERNS {
        let mut lost = rand::seq::index::sample(&mut r, usize::from(p.k), p.parity()).into_vec();
        lost.sort_unstable();
        tried += 1;
        // Reed-Solomon rebuilds from any k shards; only RaptorQ needs the check.
        if p.scheme == FecScheme::ReedSolomon || rebuilds(codec, damaged(data, parity, &lost), data)
        {
            out.push(lost);
        }
    }
    if tried > PATTERNS {
        eprintln!(
            "fec: {:?}({},{}): {} of {tried} random patterns of {} erasures not rebuildable, skipped",
            p.scheme,
            p.n,
            p.k,
            tried - PATTERNS,
            p.parity()
        );
    }
    out
}

fn bench_encode(c: &mut Criterion) {
    let mut g = c.benchmark_group("fec/encode");
    for case in cases() {
        let codec = &*case.codec;
        let (data, mut parity) = block(codec);
        let d: Vec<&[u8]> = data.iter().map(Vec::as_slice).collect();
        g.throughput(Throughput::Bytes((data.len() * SHARD) as u64));
        g.bench_function(case.name, |b| {
            b.iter(|| {
                let mut p: Vec<&mut [u8]> = parity.iter_mut().map(Vec::as_mut_slice).collect();
                codec.encode(black_box(&d), &mut p)
            });
        });
    }
    g.finish();
}

fn bench_reconstruct(c: &mut Criterion) {
    // Fresh erasure patterns, cycled: more of them than the Reed-Solomon
    // decode-matrix cache holds, so every rebuild inverts its matrix, as after
    // real losses.
    let mut g = c.benchmark_group("fec/reconstruct");
    for case in cases() {
        let codec = &*case.codec;
        let (data, parity) = block(codec);
        let pool = patterns(codec, &data, &parity);
        assert!(rebuilds(codec, damaged(&data, &parity, &pool[0]), &data));
        let mut next = pool.iter().cycle();
        g.throughput(Throughput::Bytes((data.len() * SHARD) as u64));
        g.bench_function(case.name, |b| {
            // `reconstruct` fills the block in place: a fresh damaged copy per
            // iteration, made outside the timing.
            b.iter_batched_ref(
                || damaged(&data, &parity, next.next().expect("cycle")),
                |s| codec.reconstruct(black_box(s)),
                BatchSize::LargeInput,
            );
        });
    }
    g.finish();

    // One erasure pattern over and over (the Reed-Solomon decode matrix is cached
    // after the first rebuild): the cost of the rebuild alone.
    let mut g = c.benchmark_group("fec/reconstruct_same_pattern");
    for case in cases() {
        let codec = &*case.codec;
        let (data, parity) = block(codec);
        let p = codec.params();
        // The last n − k data shards: every parity shard is used.
        let lost: Vec<usize> = (p.k - (p.n - p.k)..p.k).map(usize::from).collect();
        let shards = damaged(&data, &parity, &lost);
        assert!(
            rebuilds(codec, shards.clone(), &data),
            "{}: cannot rebuild without data shards {lost:?}",
            case.name
        );
        g.throughput(Throughput::Bytes((data.len() * SHARD) as u64));
        g.bench_function(case.name, |b| {
            b.iter_batched_ref(
                || shards.clone(),
                |s| codec.reconstruct(black_box(s)),
                BatchSize::LargeInput,
            );
        });
    }
    g.finish();
}

criterion_group!(benches, bench_encode, bench_reconstruct);
criterion_main!(benches);
