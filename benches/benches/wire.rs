//! Wire codec: `Repr::parse` and `Repr::emit` of every packet type.
//!
//! Throughput is the packet's length on the wire. Chunk payloads are 1216
//! bytes (a 1200-byte chunk plus its tag), proofs are 18 hashes deep, and the
//! NAK carries 256 entries and a token, as a puller sends them.
//!
//! `cargo bench -p rgtp-benches --bench wire`

use std::hint::black_box;

use criterion::{criterion_group, criterion_main, Criterion, Throughput};
use rand::RngCore;

use rgtp_benches::{rng, EXPOSURE_ID, SEED, SHARD};
use rgtp_wire::{
    ChunkData, ChunkDataWithProof, FecParity, IndexList, Keepalive, Manifest, ManifestFlags, Nak,
    NakFlags, PullFlags, PullRequest, RateReport, Repr, HASH_LEN, MAX_PAYLOAD_UDP,
};

/// Proof depth of the Chunk_Data_With_Proof case (2^18 chunks of 1200 B ≈ 300 MiB).
const PROOF_DEPTH: usize = 18;
/// Entries of the NAK case (the puller's default `max_entries_per_nak`).
const NAK_ENTRIES: u32 = 256;

struct Buffers {
    payload: Vec<u8>,
    proof: Vec<u8>,
    indices: Vec<u32>,
    token: [u8; 16],
    root: [u8; 32],
}

impl Buffers {
    fn new() -> Self {
        let mut r = rng(SEED);
        let mut payload = vec![0u8; SHARD];
        r.fill_bytes(&mut payload);
        let mut proof = vec![0u8; PROOF_DEPTH * HASH_LEN];
        r.fill_bytes(&mut proof);
        let mut token = [0u8; 16];
        r.fill_bytes(&mut token);
        let mut root = [0u8; 32];
        r.fill_bytes(&mut root);
        // Re-requests of scattered chunks, as a NAK after losses carries them.
        let indices = (0..NAK_ENTRIES).map(|i| 1_000 + i * 37).collect();
        Buffers {
            payload,
            proof,
            indices,
            token,
            root,
        }
    }

    fn reprs(&self) -> Vec<(&'static str, Repr<'_>)> {
        let id = EXPOSURE_ID;
        vec![
            (
                "pull_request",
                Repr::PullRequest(PullRequest {
                    exposure_id: id,
                    window_size: 4096,
                    loss_rate_q16: 655,
                    flags: PullFlags::FEC | PullFlags::ADDR_VALIDATION,
                    version_min: 1,
                    version_max: 1,
                }),
            ),
            (
                "manifest",
                Repr::Manifest(Manifest {
                    exposure_id: id,
                    total_size: 256 << 20,
                    chunk_count: 223_697,
                    chunk_size: 1200,
                    merkle_root: self.root,
                    fec_n: 80,
                    fec_k: 64,
                    flags: ManifestFlags::AES_256_GCM
                        | ManifestFlags::HASH_BLAKE3
                        | ManifestFlags::FEC_RAPTORQ
                        | ManifestFlags::TOKEN,
                    token: Some(self.token),
                    rate_cap: None,
                }),
            ),
            (
                "chunk_data",
                Repr::ChunkData(ChunkData {
                    exposure_id: id,
                    chunk_index: 123_456,
                    payload: &self.payload,
                }),
            ),
            (
                "chunk_data_with_proof",
                Repr::ChunkDataWithProof(ChunkDataWithProof {
                    exposure_id: id,
                    chunk_index: 123_456,
                    proof: &self.proof,
                    payload: &self.payload,
                }),
            ),
            (
                "fec_parity",
                Repr::FecParity(FecParity {
                    exposure_id: id,
                    block_index: 1_929,
                    parity_index: 7,
                    fec_n: 80,
                    fec_k: 64,
                    payload: &self.payload,
                }),
            ),
            (
                "nak",
                Repr::Nak(Nak {
                    exposure_id: id,
                    flags: NakFlags::TOKEN,
                    indices: IndexList::Slice(&self.indices),
                    token: Some(self.token),
                }),
            ),
            (
                "rate_report",
                Repr::RateReport(RateReport {
                    exposure_id: id,
                    rtt_us: 180,
                    loss_rate_q16: 655,
                    window_size: 4096,
                    timestamp_us: 1_700_000_000_000_000,
                }),
            ),
            (
                "keepalive",
                Repr::Keepalive(Keepalive {
                    exposure_id: id,
                    timestamp_us: 1_700_000_000_000_000,
                }),
            ),
        ]
    }
}

fn emitted(repr: &Repr<'_>) -> Vec<u8> {
    repr.check().expect("benchmark repr is emittable");
    let mut buf = vec![0u8; repr.buffer_len()];
    repr.emit(&mut buf);
    buf
}

fn parse(c: &mut Criterion) {
    let bufs = Buffers::new();
    let mut g = c.benchmark_group("wire/parse");
    for (name, repr) in bufs.reprs() {
        let datagram = emitted(&repr);
        // Round trip once, outside the timing: the bench must parse what it emits.
        let back = Repr::parse(&datagram, MAX_PAYLOAD_UDP).expect("round trip parses");
        assert_eq!(back, repr, "{name}: round trip");
        g.throughput(Throughput::Bytes(datagram.len() as u64));
        g.bench_function(name, |b| {
            b.iter(|| Repr::parse(black_box(&datagram), MAX_PAYLOAD_UDP));
        });
    }
    g.finish();
}

fn emit(c: &mut Criterion) {
    let bufs = Buffers::new();
    let mut g = c.benchmark_group("wire/emit");
    for (name, repr) in bufs.reprs() {
        let mut out = emitted(&repr);
        g.throughput(Throughput::Bytes(out.len() as u64));
        g.bench_function(name, |b| {
            b.iter(|| {
                black_box(&repr).emit(&mut out);
                black_box(&mut out);
            });
        });
    }
    g.finish();
}

criterion_group!(benches, parse, emit);
criterion_main!(benches);
