//! Merkle layer: leaf hashing of a chunk, tree building, and proofs, for every
//! hash the providers offer (through `AnyHash`, as the exposer and puller call it).
//!
//! Throughput:
//! - `hash/leaf`: chunk bytes hashed (1200 B per leaf);
//! - `hash/leaves`: the same, 128 chunks at a time through `MerkleScheme::leaves`
//!   (`batch`) and one by one (`one-by-one`);
//! - `hash/from_leaves`, `hash/root_of`: the data the 65,536 leaves stand
//!   for (65,536 × 1200 B = 75 MiB), so the figure compares directly with the
//!   leaf rate: the tree adds `1/rate_tree` seconds per byte on top of `1/rate_leaf`;
//! - `hash/proof`: the proof's bytes (16 × 32 B), written then verified.
//!
//! `cargo bench -p rgtp-benches --bench hash`

use std::hint::black_box;

use criterion::{criterion_group, criterion_main, BatchSize, Criterion, Throughput};
use rand::RngCore;

use rgtp_benches::{data, rng, CHUNK, HASHES, SEED};
use rgtp_proto::merkle::{proof_depth, root_of, verify_proof};
use rgtp_proto::{MerkleScheme, MerkleTree};
use rgtp_providers::AnyHash;
use rgtp_wire::Hash;

const LEAVES: usize = 65_536;

fn random_leaves() -> Vec<Hash> {
    let mut r = rng(SEED);
    (0..LEAVES)
        .map(|_| {
            let mut h = [0u8; 32];
            r.fill_bytes(&mut h);
            h
        })
        .collect()
}

fn leaf(c: &mut Criterion) {
    let chunk = data(CHUNK, SEED);
    let mut g = c.benchmark_group("hash/leaf");
    g.throughput(Throughput::Bytes(CHUNK as u64));
    for id in HASHES {
        let scheme = AnyHash::new(id).expect("real hash");
        g.bench_function(id.name(), |b| b.iter(|| scheme.leaf(black_box(&chunk))));
    }
    g.finish();
}

/// A batch of leaves as the puller's leaf thread hashes them (128 chunks) and as
/// sealing does: through `MerkleScheme::leaves`, which SHA-256 hashes several at a
/// time, against `leaf` one by one. Throughput in chunk bytes, as `hash/leaf`.
fn leaves(c: &mut Criterion) {
    const BATCH: usize = 128;
    let chunks = data(CHUNK * BATCH, SEED);
    let bodies: Vec<&[u8]> = chunks.chunks(CHUNK).collect();
    let mut out = vec![[0u8; 32]; BATCH];
    let mut g = c.benchmark_group("hash/leaves");
    g.throughput(Throughput::Bytes((CHUNK * BATCH) as u64));
    for id in HASHES {
        let scheme = AnyHash::new(id).expect("real hash");
        let one: Vec<Hash> = bodies.iter().map(|b| scheme.leaf(b)).collect();
        scheme.leaves(&bodies, &mut out);
        assert_eq!(out, one, "{}: batched leaves agree", id.name());
        g.bench_function(format!("{}/batch", id.name()), |b| {
            b.iter(|| scheme.leaves(black_box(&bodies), &mut out));
        });
        g.bench_function(format!("{}/one-by-one", id.name()), |b| {
            b.iter(|| {
                for (o, c) in out.iter_mut().zip(black_box(&bodies)) {
                    *o = scheme.leaf(c);
                }
            });
        });
    }
    g.finish();
}

fn tree(c: &mut Criterion) {
    let leaves = random_leaves();
    let covered = (LEAVES * CHUNK) as u64;
    for id in HASHES {
        let scheme = AnyHash::new(id).expect("real hash");
        let root = MerkleTree::from_leaves(&scheme, leaves.clone()).root();
        assert_eq!(
            root,
            root_of(&scheme, &leaves),
            "{}: roots agree",
            id.name()
        );
    }

    let mut g = c.benchmark_group("hash/from_leaves");
    g.throughput(Throughput::Bytes(covered));
    for id in HASHES {
        let scheme = AnyHash::new(id).expect("real hash");
        g.bench_function(id.name(), |b| {
            // The tree takes its leaves by value: the copy is made outside the timing.
            b.iter_batched(
                || leaves.clone(),
                |l| MerkleTree::from_leaves(&scheme, l),
                BatchSize::LargeInput,
            );
        });
    }
    g.finish();

    let mut g = c.benchmark_group("hash/root_of");
    g.throughput(Throughput::Bytes(covered));
    for id in HASHES {
        let scheme = AnyHash::new(id).expect("real hash");
        g.bench_function(id.name(), |b| {
            b.iter(|| root_of(&scheme, black_box(&leaves)));
        });
    }
    g.finish();
}

fn proof(c: &mut Criterion) {
    let leaves = random_leaves();
    let count = LEAVES as u32;
    let depth = proof_depth(count);
    let index = 40_961;
    let mut g = c.benchmark_group("hash/proof");
    g.throughput(Throughput::Bytes((depth * 32) as u64));
    for id in HASHES {
        let scheme = AnyHash::new(id).expect("real hash");
        let tree = MerkleTree::from_leaves(&scheme, leaves.clone());
        let root = tree.root();
        let leaf = tree.leaves()[index as usize];
        let mut out = vec![0u8; depth * 32];
        // Outside the timing: the proof the bench writes is a good one.
        tree.write_proof(index, &mut out);
        let siblings = out
            .chunks_exact(32)
            .map(|s| <&Hash>::try_from(s).expect("32-byte sibling"));
        assert!(verify_proof(&scheme, &leaf, index, count, siblings, &root));
        g.bench_function(id.name(), |b| {
            b.iter(|| {
                tree.write_proof(black_box(index), &mut out);
                let siblings = out
                    .chunks_exact(32)
                    .map(|s| <&Hash>::try_from(s).expect("32-byte sibling"));
                verify_proof(&scheme, &leaf, index, count, siblings, black_box(&root))
            });
        });
    }
    g.finish();
}

criterion_group!(benches, leaf, leaves, tree, proof);
criterion_main!(benches);
