//! Resuming a pull over loopback UDP: a pull stopped half way leaves its partial
//! output and state; the next run asks only for the rest, repairs what was spoiled
//! on disk meanwhile, and refuses to reuse the state of another exposure.

mod common;

use std::path::Path;
use std::sync::atomic::{AtomicBool, Ordering};

use rgtp::driver::{self, Clock, PullApp, PullFailure};
use rgtp::resume::{state_path, ResumeState};
use rgtp::sink::FileSink;
use rgtp::{DynSuite, ExposerBuilder, Prepared};
use rgtp_proto::{Peer, Puller, PullerConfig, PullerStats};

use common::{loopback, prepare, Server};

/// How the pull checks chunks.
#[derive(Debug, Clone, Copy, PartialEq)]
enum Check {
    /// No proofs: the root over the output at the end.
    Root,
    /// Proofs, each folded on the receive path.
    Proofs,
    /// Proofs a run at a time, checked on another thread (as `rgtp pull --proofs`).
    Offloaded,
}

/// One run of `rgtp pull`'s resumable path, stopped once `stop_after` chunks are in
/// (if given, at 4 MB/s so that it stops part way). Returns the outcome and the puller's counters; saves the state when it
/// stops unfinished, removes it when it completes.
fn run(
    p: &Prepared,
    server: &Server,
    out: &Path,
    stop_after: Option<u64>,
    check: Check,
) -> (Result<(), PullFailure>, PullerStats) {
    let ticket = p.ticket(server.addr);
    let mut cfg = PullerConfig::new(ticket.exposure_id, Peer::Ip(server.addr), ticket.key);
    cfg.want_proofs = check != Check::Root;
    cfg.deferred_root = check == Check::Root;
    cfg.offload_proofs = check == Check::Offloaded;
    if stop_after.is_some() {
        // Slow enough for the progress callback (every 100 ms) to stop it half way.
        cfg.max_rate = Some(4_000_000);
    }
    let state_file = state_path(out);
    let state = ResumeState::load(&state_file).unwrap();
    let sink = FileSink::resumable(out, state.is_some()).unwrap();
    let mut app = PullApp::resuming(sink, state);
    let clock = Clock::new();
    let mut puller = Puller::new(cfg, DynSuite, clock.now());
    let mut link = loopback(false);
    let stop = AtomicBool::new(false);
    let r = driver::pull_with(&mut puller, &mut link, &clock, &mut app, &stop, |p| {
        if stop_after.is_some_and(|n| p.stats().chunks_received >= n) {
            stop.store(true, Ordering::Relaxed);
        }
    });
    // Everything delivered is in the file once the sink is handed back.
    let sink = app.into_sink();
    match &r {
        Ok(()) => {
            sink.finish().unwrap();
            let _ = std::fs::remove_file(&state_file);
        }
        Err(_) => {
            if let Some(s) = ResumeState::of(&puller) {
                s.save(&state_file).unwrap();
            }
        }
    }
    (r, puller.stats())
}

fn partial(out: &Path) -> std::path::PathBuf {
    out.with_file_name(format!(
        "{}.rgtp-partial",
        out.file_name().unwrap().to_str().unwrap()
    ))
}

#[test]
fn a_stopped_pull_resumes_asking_only_for_the_rest() {
    for check in [Check::Root, Check::Proofs, Check::Offloaded] {
        let proofs = check != Check::Root;
        let data = common::data(8 << 20, 31);
        let link = loopback(false);
        let p = prepare(ExposerBuilder::new().with_proofs(proofs), &link, &data);
        let server = Server::start(&p, link);
        let dir = tempfile::tempdir().unwrap();
        let out = dir.path().join("out.bin");

        let (r, first) = run(&p, &server, &out, Some(2_000), check);
        assert!(matches!(r, Err(PullFailure::Stopped)), "{r:?}");
        assert!(partial(&out).exists() && state_path(&out).exists());
        let held = ResumeState::load(&state_path(&out))
            .unwrap()
            .unwrap()
            .held();
        assert!(held >= 2_000, "{held}");

        let (r, second) = run(&p, &server, &out, None, check);
        r.unwrap();
        assert!(std::fs::read(&out).unwrap() == data, "output differs");
        assert!(!state_path(&out).exists() && !partial(&out).exists());
        let count = data.len().div_ceil(1200) as u64;
        match check {
            // A resumed chunk has no proof: checked on the receive path, none is taken.
            Check::Proofs => assert_eq!(second.chunks_resumed, 0),
            Check::Root => {
                assert_eq!(second.chunks_resumed, held);
                assert_eq!(second.chunks_requested, count - held, "{second:?}");
            }
            // Judged with their runs: each run's first chunk is fetched, with its proof.
            Check::Offloaded => {
                let heads = held.div_ceil(64) + 1;
                assert!(
                    second.chunks_resumed <= held && second.chunks_resumed + heads >= held,
                    "{held} held: {second:?}"
                );
                assert_eq!(
                    second.chunks_requested,
                    count - second.chunks_resumed,
                    "{second:?}"
                );
                assert_eq!(second.offloaded_checks, count, "{second:?}");
            }
        }
        let stats = server.stop();
        eprintln!("{check:?}: first {first:?}\nsecond {second:?}\nexposer {stats:?}");
    }
}

#[test]
fn chunks_spoiled_on_disk_are_found_and_fetched_again() {
    chunks_spoiled_on_disk(Check::Root);
}

#[test]
fn chunks_spoiled_on_disk_are_found_by_their_runs_and_fetched_again() {
    chunks_spoiled_on_disk(Check::Offloaded);
}

fn chunks_spoiled_on_disk(check: Check) {
    let data = common::data(4 << 20, 32);
    let link = loopback(false);
    let p = prepare(
        ExposerBuilder::new().with_proofs(check != Check::Root),
        &link,
        &data,
    );
    let server = Server::start(&p, link);
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("out.bin");
    let (r, _) = run(&p, &server, &out, Some(1_500), check);
    assert!(r.is_err());
    // Spoil two chunks the state records as held, neither the first of a run of 64
    // (which a pull with proofs fetches again anyway).
    let state = ResumeState::load(&state_path(&out)).unwrap().unwrap();
    let held: Vec<u32> = state.chunks().filter(|i| i % 64 != 0).collect();
    let mut bytes = std::fs::read(partial(&out)).unwrap();
    for &i in [held[3], held[held.len() / 2]].iter() {
        bytes[i as usize * 1200 + 7] ^= 0x40;
    }
    std::fs::write(partial(&out), &bytes).unwrap();
    let (r, second) = run(&p, &server, &out, None, check);
    r.unwrap();
    assert!(
        std::fs::read(&out).unwrap() == data,
        "spoiled output delivered"
    );
    if check == Check::Root {
        assert_eq!(second.repaired_chunks, 2, "{second:?}");
    } else {
        // Each fails with the part of its run its run's first proof cannot vouch
        // for, which is fetched again: at most a run each.
        assert!((2..=126).contains(&second.repaired_chunks), "{second:?}");
    }
}

#[test]
fn the_state_of_another_exposure_is_not_used() {
    let link = loopback(false);
    let a = common::data(2 << 20, 33);
    let pa = prepare(ExposerBuilder::new(), &link, &a);
    let server = Server::start(&pa, link);
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("out.bin");
    let (r, _) = run(&pa, &server, &out, Some(500), Check::Root);
    assert!(r.is_err());
    drop(server);
    // Another exposure into the same output: the old state does not match its Manifest.
    let link = loopback(false);
    let b = common::data(2 << 20, 34);
    let pb = prepare(ExposerBuilder::new(), &link, &b);
    let server = Server::start(&pb, link);
    let (r, second) = run(&pb, &server, &out, None, Check::Root);
    r.unwrap();
    assert_eq!(second.chunks_resumed, 0);
    assert!(std::fs::read(&out).unwrap() == b);
}

/// The record `rgtp pull` saves every second while it runs is what a later run
/// trusts after a crash: each chunk it claims must already be in the file, even
/// while a thread of the pull is still writing the chunks that came after.
#[test]
fn the_record_saved_while_pulling_claims_only_chunks_already_in_the_file() {
    let data = common::data(8 << 20, 35);
    let link = loopback(false);
    let p = prepare(ExposerBuilder::new(), &link, &data);
    let server = Server::start(&p, link);
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("out.bin");
    let state_file = state_path(&out);
    let ticket = p.ticket(server.addr);
    let mut cfg = PullerConfig::new(ticket.exposure_id, Peer::Ip(server.addr), ticket.key);
    cfg.deferred_root = true;
    // About 3 s in all: the record is saved twice before it is stopped.
    cfg.max_rate = Some(3_000_000);
    let sink = FileSink::resumable(&out, false).unwrap();
    let mut app = PullApp::resuming(sink, None).recording(state_file.clone());
    let clock = Clock::new();
    let mut puller = Puller::new(cfg, DynSuite, clock.now());
    let mut link = loopback(false);
    let stop = AtomicBool::new(false);
    let mut claims = Vec::new();
    let r = driver::pull_with(&mut puller, &mut link, &clock, &mut app, &stop, |_| {
        let Some(s) = ResumeState::load(&state_file).unwrap() else {
            return;
        };
        let on_disk = std::fs::read(partial(&out)).unwrap();
        for i in s.chunks() {
            let at = i as usize * 1200;
            let end = (at + 1200).min(data.len());
            assert!(
                on_disk[at..end] == data[at..end],
                "the record claims chunk {i}, which is not in the file yet"
            );
        }
        if claims.last() != Some(&s.held()) {
            claims.push(s.held());
        }
        if claims.len() >= 2 {
            stop.store(true, Ordering::Relaxed);
        }
    });
    assert!(matches!(r, Err(PullFailure::Stopped)), "{r:?}");
    assert_eq!(claims.len(), 2, "records seen: {claims:?}");
    assert!(claims[0] > 0 && claims[0] < claims[1], "{claims:?}");
    drop(app.into_sink());
    server.stop();
}
