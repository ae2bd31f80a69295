//! Large transfers over loopback UDP: 256 MiB on defaults, a ≥ 60,000-chunk windowed
//! transfer, and four pullers of one exposure at once with the exposer's memory bounded.

mod common;

use std::alloc::{GlobalAlloc, Layout, System};
use std::cell::Cell;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;

use rgtp::driver::{self, Clock};
use rgtp::ExposerBuilder;

/// Counts live heap bytes per thread, for threads that opt in.
struct Counting;

thread_local! {
    static TRACK: Cell<bool> = const { Cell::new(false) };
    static LIVE: Cell<i64> = const { Cell::new(0) };
    static PEAK: Cell<i64> = const { Cell::new(0) };
}

fn note(delta: i64) {
    let _ = TRACK.try_with(|t| {
        if t.get() {
            let _ = LIVE.try_with(|l| {
                let v = l.get() + delta;
                l.set(v);
                let _ = PEAK.try_with(|p| p.set(p.get().max(v)));
            });
        }
    });
}

// SAFETY: forwards to the system allocator; the bookkeeping touches only const-initialised
// thread-locals, which never allocate.
unsafe impl GlobalAlloc for Counting {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        note(layout.size() as i64);
        unsafe { System.alloc(layout) }
    }
    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        note(-(layout.size() as i64));
        unsafe { System.dealloc(ptr, layout) }
    }
    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new: usize) -> *mut u8 {
        note(new as i64 - layout.size() as i64);
        unsafe { System.realloc(ptr, layout, new) }
    }
}

#[global_allocator]
static ALLOC: Counting = Counting;

#[test]
fn defaults_256_mib() {
    let data = common::data(256 << 20, 256);
    let link = common::loopback(false);
    let prepared = common::prepare(ExposerBuilder::new(), &link, &data);
    let server = common::Server::start(&prepared, link);
    let (out, stats) = common::pull(&prepared, server.addr, |c| c.deferred_root = true);
    server.stop();
    assert!(out.unwrap() == data);
    assert_eq!(stats.chunks_received, (256u64 << 20).div_ceil(1200));
}

#[test]
fn windowed_60000_chunks() {
    // 64-byte chunks: 62,500 chunks in 4 MB, so the window slides a long way.
    let data = common::data(4_000_000, 60);
    let link = common::loopback(false);
    let prepared = common::prepare(ExposerBuilder::new().with_chunk_size(64), &link, &data);
    assert!(prepared.exposure.chunk_count() >= 60_000);
    let server = common::Server::start(&prepared, link);
    let (out, stats) = common::pull(&prepared, server.addr, |_| {});
    server.stop();
    assert!(out.unwrap() == data);
    assert_eq!(stats.chunks_received, 62_500);
    // At most 256 entries a NAK (PullerConfig::max_entries_per_nak).
    assert!(
        stats.naks_sent >= 62_500 / 256,
        "requests are windowed batches"
    );
}

/// Serves `pullers` concurrent pulls and returns the serving thread's peak live heap bytes.
fn serve_peak(pullers: usize, data: &[u8]) -> i64 {
    let link = common::loopback(false);
    let prepared = common::prepare(ExposerBuilder::new(), &link, data);
    let addr = link.local_addr();
    let mut exposer = prepared.exposer();
    let stop = Arc::new(AtomicBool::new(false));
    let stop2 = Arc::clone(&stop);
    let server = std::thread::spawn(move || {
        let mut link = link;
        TRACK.with(|t| t.set(true));
        let clock = Clock::new();
        driver::serve(&mut exposer, &mut link, &clock, &stop2, |_| {}).unwrap();
        PEAK.with(|p| p.get())
    });
    let outs: Vec<_> = std::thread::scope(|s| {
        let hs: Vec<_> = (0..pullers)
            .map(|_| s.spawn(|| common::pull(&prepared, addr, |_| {}).0.unwrap()))
            .collect();
        hs.into_iter().map(|h| h.join().unwrap()).collect()
    });
    stop.store(true, Ordering::Relaxed);
    let peak = server.join().unwrap();
    for out in outs {
        assert!(out == data, "every puller byte-exact");
    }
    peak
}

#[test]
fn four_pullers_exposer_memory_flat() {
    let data = common::data(24 << 20, 4);
    let one = serve_peak(1, &data);
    let four = serve_peak(4, &data);
    // The exposer keeps no per-puller state: only its bounded request queue can hold more
    // when more pullers ask at once (at most queue_limit jobs of ≤ 256 entries).
    let slack = 512 << 10;
    assert!(
        four <= one + slack,
        "peak with 4 pullers {four} B vs 1 puller {one} B"
    );
    assert!(
        four < 8 << 20,
        "serving heap {four} B stays far below the 24 MiB exposure"
    );
}

/// A file over 4 GiB is exposed from a map (never read whole into memory first) and
/// pulled into a file, byte-exact.
#[test]
fn four_gib_file() {
    use std::io::{Read, Seek, SeekFrom, Write};

    let dir = tempfile::tempdir().unwrap();
    let src = dir.path().join("src.bin");
    let len: u64 = (4 << 30) + 1000;
    {
        // Sparse, with marks spread over it so that misplaced chunks would show.
        let mut f = std::fs::File::create(&src).unwrap();
        f.set_len(len).unwrap();
        for i in 0..4096u64 {
            let at = (i * 1_048_573 * 1021) % (len - 8);
            f.seek(SeekFrom::Start(at)).unwrap();
            f.write_all(&i.to_le_bytes()).unwrap();
        }
        f.seek(SeekFrom::Start(len - 8)).unwrap();
        f.write_all(b"the end!").unwrap();
    }
    let file = std::fs::File::open(&src).unwrap();
    // SAFETY: the file is private to this test and not modified while mapped.
    let map = unsafe { memmap2::Mmap::map(&file) }.unwrap();
    let link = common::loopback(false);
    let prepared = common::prepare(ExposerBuilder::new(), &link, &map);
    drop(map);
    assert_eq!(prepared.exposure.total_size(), len);
    assert!(prepared.exposure.chunk_count() > 3_500_000);
    let server = common::Server::start(&prepared, link);

    let out = dir.path().join("out.bin");
    let ticket = prepared.ticket(server.addr);
    let mut cfg = rgtp_proto::PullerConfig::new(
        ticket.exposure_id,
        rgtp_proto::Peer::Ip(server.addr),
        ticket.key.clone(),
    );
    cfg.deferred_root = true;
    let mut plink = common::loopback(false);
    let clock = Clock::new();
    let mut puller = rgtp_proto::Puller::new(cfg, rgtp::DynSuite, clock.now());
    let mut sink = rgtp::sink::FileSink::create(&out).unwrap();
    driver::pull(&mut puller, &mut plink, &clock, &mut sink, |_| {}).unwrap();
    sink.finish().unwrap();
    server.stop();
    drop(prepared);

    let (mut a, mut b) = (
        std::fs::File::open(&src).unwrap(),
        std::fs::File::open(&out).unwrap(),
    );
    assert_eq!(b.metadata().unwrap().len(), len);
    let (mut x, mut y) = (vec![0u8; 8 << 20], vec![0u8; 8 << 20]);
    loop {
        let n = a.read(&mut x).unwrap();
        if n == 0 {
            break;
        }
        b.read_exact(&mut y[..n]).unwrap();
        assert!(x[..n] == y[..n], "output differs");
    }
}
