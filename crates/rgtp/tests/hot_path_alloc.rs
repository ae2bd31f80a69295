//! The per-packet path does not allocate: a pull of a few thousand chunks,
//! exposer and puller wired back to back with no link in between, is counted
//! by a global allocator, and the steady state (after the window has grown)
//! must average under one allocation per hundred chunks served and received:
//! NAKs are built and served from reused lists and tokens checked without a
//! heap buffer, so what is left is the exposer's spare lists filling up and the
//! puller's leaf store taking a page (14 in 4,683 chunks).
//!
//! Its own test binary: the counting allocator sees only this test.

use std::alloc::{GlobalAlloc, Layout, System};
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use rgtp::{DynSuite, ExposerBuilder};
use rgtp_proto::puller::{RunChecker, Verdict};
use rgtp_proto::{Instant, MerkleScheme, Peer, Puller, PullerConfig, PullerEvent};

struct Counting;

static ALLOCS: AtomicU64 = AtomicU64::new(0);

// SAFETY: forwards to the system allocator; only counts.
unsafe impl GlobalAlloc for Counting {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        ALLOCS.fetch_add(1, Ordering::Relaxed);
        System.alloc(layout)
    }
    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        System.dealloc(ptr, layout)
    }
    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        ALLOCS.fetch_add(1, Ordering::Relaxed);
        System.realloc(ptr, layout, new_size)
    }
}

#[global_allocator]
static GLOBAL: Counting = Counting;

const EXPOSER: Peer = Peer::Mem(1);
const PULLER: Peer = Peer::Mem(2);

#[test]
fn steady_state_pull_allocates_less_than_once_per_chunk() {
    // One after the other: the counter is global.
    pull_counting(false);
    // Proofs checked by the driver (`offload_proofs`): the core's pending chunks and
    // verdicts, and the driver's checker, judged here on the spot.
    pull_counting(true);
}

fn pull_counting(proofs: bool) {
    let input: Vec<u8> = (0..8_000_000usize)
        .map(|i| (i * 13 + i / 4099) as u8)
        .collect();
    let prepared = ExposerBuilder::new()
        .with_proofs(proofs)
        .expose(&input)
        .unwrap();
    let chunks = prepared.exposure.chunk_count() as u64;
    let mut exposer = prepared.exposer();
    let mut cfg = PullerConfig::new(*prepared.exposure.id(), EXPOSER, prepared.key.clone());
    cfg.idle_timeout = Duration::from_secs(30);
    cfg.want_proofs = proofs;
    cfg.offload_proofs = proofs;
    let mut checker: Option<RunChecker> = None;
    let mut verdicts = Vec::with_capacity(1 << 12);
    let mut now = Instant::from_micros(1_000_000);
    let mut puller = Puller::new(cfg, DynSuite, now);

    let mut output = vec![0u8; input.len()];
    let (mut pbuf, mut ebuf) = (Vec::with_capacity(1 << 16), Vec::with_capacity(1 << 20));
    let mut rx: Vec<u8> = Vec::with_capacity(1 << 20);
    let mut received = 0u64;
    let mut baseline: Option<(u64, u64)> = None;
    let mut done = false;
    for _round in 0..1_000_000 {
        while let Some(t) = puller.poll_transmit(now, &mut pbuf) {
            for d in t.datagrams(&pbuf) {
                exposer.handle_datagram(now, PULLER, d);
            }
        }
        now = now + Duration::from_micros(50);
        while let Some(t) = exposer.poll_transmit(now, &mut ebuf) {
            let seg = t.segment_size.unwrap_or(t.size);
            for start in (0..t.size).step_by(seg) {
                let end = (start + seg).min(t.size);
                rx.clear();
                rx.extend_from_slice(&ebuf[start..end]);
                if let Some(d) = puller.handle_datagram(now, EXPOSER, &mut rx) {
                    let at = d.offset as usize;
                    output[at..at + d.data.len()].copy_from_slice(d.data);
                    received += 1;
                    if let (true, Some(c)) = (d.unverified, checker.as_mut()) {
                        // Judged a run at a time (most chunks come without a proof).
                        let hash = puller.hash_scheme().expect("after the Manifest");
                        c.add(hash, d.index, hash.leaf(d.data), d.proof, &mut verdicts);
                    }
                    for (idx, verdict) in verdicts.drain(..) {
                        assert_eq!(verdict, Verdict::Verified);
                        puller.handle_verdict(now, idx, verdict);
                    }
                }
            }
        }
        while let Some(ev) = puller.poll_event() {
            match ev {
                PullerEvent::Manifest(m) if puller.offloads_proofs() => {
                    let hash = puller.hash_scheme().expect("after the Manifest");
                    checker = Some(RunChecker::new(hash, m.chunk_count, m.merkle_root));
                }
                PullerEvent::VerifyRoot => {
                    let root = checker.as_ref().and_then(RunChecker::root);
                    puller.handle_root(&root.expect("every chunk passed"));
                }
                PullerEvent::Complete => done = true,
                PullerEvent::Failed(e) => panic!("pull failed: {e:?}"),
                _ => {}
            }
        }
        if puller.poll_timeout().is_some_and(|d| d <= now) {
            puller.handle_timeout(now);
        }
        // Steady state: past the first quarter of the chunks (the window has
        // grown, the tables have their size).
        if baseline.is_none() && received >= chunks / 4 {
            baseline = Some((ALLOCS.load(Ordering::Relaxed), received));
        }
        if done {
            break;
        }
    }
    assert!(done, "the pull completed (proofs: {proofs})");
    assert_eq!(puller.offloads_proofs(), proofs);
    assert!(output == input, "byte-exact");
    let (start_allocs, start_received) = baseline.expect("reached the steady state");
    let allocs = ALLOCS.load(Ordering::Relaxed) - start_allocs;
    let per_chunk = allocs as f64 / (received - start_received) as f64;
    eprintln!(
        "proofs {proofs}: {allocs} allocations for {} chunks in the steady state: \
         {per_chunk:.3} per chunk",
        received - start_received
    );
    assert!(per_chunk < 0.01, "{per_chunk:.3} allocations per chunk");
}
