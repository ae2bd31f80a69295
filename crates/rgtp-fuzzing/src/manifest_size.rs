//! `manifest_size`: hostile Manifest sizes against the puller's lazy allocation
//! (spec §8.11).
//!
//! A puller is handed a Manifest with arbitrary Total_Size, Chunk_Count, Chunk_Size
//! and flags (proofs, FEC), then authentic chunks (sealed under the key, as a key
//! holder can) at arbitrary indices, with arbitrary proofs, and time. Nothing may
//! panic, and what the puller allocates must follow what arrived: under libFuzzer,
//! `manifest_size.options` caps any one allocation at 64 MiB (`malloc_limit_mb`), so
//! sizing anything by a declared 2^26 chunks of more than a bit or two fails the run.

use std::time::Duration;

use arbitrary::{Arbitrary, Unstructured};
use rgtp::DynSuite;
use rgtp_proto::{CipherId, CipherSuite, Instant, Key, Peer, Puller, PullerConfig};
use rgtp_providers::AnyCipher;
use rgtp_wire::{ChunkData, ChunkDataWithProof, Manifest, ManifestFlags, Repr};

use crate::fixtures;

const EXPOSER: Peer = Peer::Mem(1);
const ID: [u8; 16] = *b"hostile-manifest";

#[derive(Debug, Arbitrary)]
struct Input {
    total_size: u64,
    chunk_count: u32,
    chunk_size: u32,
    flags: u16,
    fec_n: u8,
    fec_k: u8,
    root: [u8; 32],
    want_proofs: bool,
    deferred_root: bool,
    /// Derive the sizes from `chunk_count` so that they are consistent.
    consistent: bool,
    chunks: Vec<(u32, u16, Option<Vec<u8>>)>,
    tick_ms: u16,
}

/// See the module documentation.
pub fn manifest_size(data: &[u8]) {
    let Ok(mut i) = Input::arbitrary(&mut Unstructured::new(data)) else {
        return;
    };
    if i.consistent {
        i.chunk_size = i.chunk_size % 1024 + 1;
        i.total_size = u64::from(i.chunk_count) * u64::from(i.chunk_size);
    }
    let key = Key::from_bytes([0x11; 32]);
    let mut cfg = PullerConfig::new(ID, EXPOSER, key.clone());
    cfg.want_proofs = i.want_proofs;
    cfg.deferred_root = i.deferred_root;
    let now = Instant::from_millis(1);
    let mut puller = Puller::new(cfg, DynSuite, now);
    let mut buf = Vec::new();
    while puller.poll_transmit(now, &mut buf).is_some() {}
    let flags = ManifestFlags::from_bits_truncate(i.flags) - ManifestFlags::TOKEN;
    let m = Manifest {
        exposure_id: ID,
        total_size: i.total_size,
        chunk_count: i.chunk_count,
        chunk_size: i.chunk_size,
        merkle_root: i.root,
        flags,
        fec_n: i.fec_n,
        fec_k: i.fec_k,
        token: None,
        // A cap when the flag says so; a chunk size of 0 makes it the invalid 0.
        rate_cap: flags
            .contains(ManifestFlags::RATE_CAP)
            .then_some(u64::from(i.chunk_size)),
    };
    let r = Repr::Manifest(m);
    if r.check().is_err() {
        return; // flags no exposer can send: the wire layer refuses them
    }
    let mut d = fixtures::emit(&r);
    puller.handle_datagram(now, EXPOSER, &mut d);
    let Some(info) = puller.manifest() else {
        return;
    };
    let chunk_key = info.suite.key_mode.chunk_key(&key, &ID);
    let cipher = AnyCipher::new(info.suite.cipher, &chunk_key)
        .or_else(|| AnyCipher::new(CipherId::ChaCha20Poly1305, &chunk_key))
        .expect("cipher");
    for (n, (index, len, proof)) in i.chunks.into_iter().take(64).enumerate() {
        let index = if info.chunk_count > 0 && n % 2 == 0 {
            index % info.chunk_count
        } else {
            index
        };
        let len = usize::from(len).min(info.chunk_size as usize).min(4096);
        let mut payload = vec![0x5a; len];
        let Ok(tag) = cipher.seal(index, &mut payload) else {
            continue;
        };
        payload.extend_from_slice(&tag);
        let r = match &proof {
            Some(p) => Repr::ChunkDataWithProof(ChunkDataWithProof {
                exposure_id: ID,
                chunk_index: index,
                proof: &p[..(p.len() / 32).min(32) * 32],
                payload: &payload,
            }),
            None => Repr::ChunkData(ChunkData {
                exposure_id: ID,
                chunk_index: index,
                payload: &payload,
            }),
        };
        if r.check().is_err() {
            continue;
        }
        let mut d = fixtures::emit(&r);
        puller.handle_datagram(now, EXPOSER, &mut d);
        while puller.poll_event().is_some() {}
    }
    let later = now + Duration::from_millis(u64::from(i.tick_ms));
    puller.handle_timeout(later);
    while puller.poll_transmit(later, &mut buf).is_some() {}
    while puller.poll_event().is_some() {}
}
