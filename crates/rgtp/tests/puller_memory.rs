//! The puller's memory follows what was verified, not what a Manifest declared
//! (spec §8.11): a Manifest announcing 2^26 chunks with proofs costs a pulling
//! puller well under 64 MiB. A counting global allocator measures the peak.

use std::alloc::{GlobalAlloc, Layout, System};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use rgtp::DynSuite;
use rgtp_proto::{
    CipherId, CipherSuite, HashId, Instant, Key, MerkleScheme, Peer, Puller, PullerConfig,
    PullerEvent, SuiteFactory,
};
use rgtp_wire::{ChunkData, ChunkDataWithProof, Hash, Manifest, ManifestFlags, Repr};

/// Counts live heap bytes and their high-water mark.
struct Counting;

static LIVE: AtomicUsize = AtomicUsize::new(0);
static PEAK: AtomicUsize = AtomicUsize::new(0);

fn grew(by: usize) {
    let now = LIVE.fetch_add(by, Ordering::Relaxed) + by;
    PEAK.fetch_max(now, Ordering::Relaxed);
}

unsafe impl GlobalAlloc for Counting {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        grew(layout.size());
        System.alloc(layout)
    }
    unsafe fn alloc_zeroed(&self, layout: Layout) -> *mut u8 {
        grew(layout.size());
        System.alloc_zeroed(layout)
    }
    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        LIVE.fetch_sub(layout.size(), Ordering::Relaxed);
        System.dealloc(ptr, layout)
    }
    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        if new_size > layout.size() {
            grew(new_size - layout.size());
        } else {
            LIVE.fetch_sub(layout.size() - new_size, Ordering::Relaxed);
        }
        System.realloc(ptr, layout, new_size)
    }
}

#[global_allocator]
static GLOBAL: Counting = Counting;

const ID: [u8; 16] = *b"hostile-manifest";
const EXPOSER: Peer = Peer::Mem(1);
const CHUNKS: u32 = 1 << 26;
const CHUNK_SIZE: u32 = 1_024;

fn emit(repr: &Repr<'_>) -> Vec<u8> {
    let mut buf = vec![0; repr.buffer_len()];
    repr.emit(&mut buf);
    buf
}

#[test]
fn a_manifest_of_two_to_the_26_chunks_costs_under_64_mib() {
    let key = Key::from_bytes([7; 32]);
    let cipher = DynSuite
        .cipher(CipherId::ChaCha20Poly1305, &key)
        .expect("cipher");
    let hash = DynSuite.hash(HashId::Blake2b256).expect("hash");

    // Chunk 0 with a proof of arbitrary siblings; the Manifest's root is what they fold to,
    // so the chunk verifies.
    let plain = vec![0x5a; CHUNK_SIZE as usize];
    let siblings: Vec<Hash> = (0..26u8).map(|i| [i; 32]).collect();
    let mut root = hash.leaf(&plain);
    for s in &siblings {
        root = hash.node(&root, s);
    }
    let mut sealed = plain.clone();
    let tag = cipher.seal(0, &mut sealed).expect("seal");
    sealed.extend_from_slice(&tag);
    let proof: Vec<u8> = siblings.concat();
    let chunk0 = emit(&Repr::ChunkDataWithProof(ChunkDataWithProof {
        exposure_id: ID,
        chunk_index: 0,
        proof: &proof,
        payload: &sealed,
    }));
    let manifest = emit(&Repr::Manifest(Manifest {
        exposure_id: ID,
        total_size: u64::from(CHUNKS) * u64::from(CHUNK_SIZE),
        chunk_count: CHUNKS,
        chunk_size: CHUNK_SIZE,
        merkle_root: root,
        fec_n: 0,
        fec_k: 0,
        flags: ManifestFlags::PROOFS,
        token: None,
        rate_cap: None,
    }));
    // AEAD-invalid chunks, as anyone could send.
    let forged: Vec<Vec<u8>> = (1..21u32)
        .map(|i| {
            emit(&Repr::ChunkData(ChunkData {
                exposure_id: ID,
                chunk_index: i * 100_003 % CHUNKS,
                payload: &[0xa5; CHUNK_SIZE as usize + 16],
            }))
        })
        .collect();

    let base = LIVE.load(Ordering::Relaxed);
    PEAK.store(base, Ordering::Relaxed);

    let mut cfg = PullerConfig::new(ID, EXPOSER, key);
    cfg.want_proofs = true;
    cfg.deferred_root = false;
    let mut now = Instant::from_micros(1_000_000);
    let mut puller = Puller::new(cfg, DynSuite, now);
    let mut buf = Vec::new();
    let mut events = Vec::new();
    let mut turn = |p: &mut Puller<DynSuite>, now: Instant, events: &mut Vec<PullerEvent>| {
        while p.poll_transmit(now, &mut buf).is_some() {}
        events.extend(std::iter::from_fn(|| p.poll_event()));
    };
    turn(&mut puller, now, &mut events);
    let mut d = manifest.clone();
    puller.handle_datagram(now, EXPOSER, &mut d);
    turn(&mut puller, now, &mut events);
    assert!(
        matches!(events[..], [PullerEvent::Manifest(m)] if m.chunk_count == CHUNKS),
        "{events:?}"
    );
    for f in &forged {
        let mut d = f.clone();
        assert!(puller.handle_datagram(now, EXPOSER, &mut d).is_none());
        turn(&mut puller, now, &mut events);
    }
    let mut d = chunk0.clone();
    let got = puller
        .handle_datagram(now, EXPOSER, &mut d)
        .map(|c| c.index);
    assert_eq!(got, Some(0));
    turn(&mut puller, now, &mut events);
    for _ in 0..20 {
        now = now + Duration::from_millis(300);
        puller.handle_timeout(now);
        turn(&mut puller, now, &mut events);
    }

    let stats = puller.stats();
    assert_eq!(stats.chunks_received, 1);
    assert_eq!(stats.auth_failures, 20);
    assert!(!puller.is_finished());
    let peak = PEAK.load(Ordering::Relaxed) - base;
    assert!(
        peak < 64 << 20,
        "the puller peaked at {} MiB for a Manifest it has verified one chunk of",
        peak >> 20
    );
    eprintln!("peak {} KiB", peak >> 10);
    drop(puller);
}
