//! Proofs checked by the driver (`PullerConfig::offload_proofs`): a chunk is
//! handed out with its proof and accepted only on the driver's verdict.

use std::cell::Cell;
use std::rc::Rc;

use rgtp_wire::{ChunkDataWithProof, ManifestFlags, NakFlags, Repr};

use crate::exposer::ExposerConfig;
use crate::puller::{PullError, PullerConfig, PullerEvent, Verdict};

use super::emit;
use super::hostile::forged_chunk;
use super::util::{claimed, data, exposure, exposure_with_proofs, Dir, Pair};

const CHUNK: u32 = 1_000;

fn offloading() -> PullerConfig {
    let mut cfg = Pair::puller_config();
    cfg.want_proofs = true;
    cfg.offload_proofs = true;
    cfg
}

fn pair(data: &[u8]) -> Pair {
    pair_with(data, true)
}

/// `runs`: proofs a run at a time (spec §3.6), or with every chunk.
fn pair_with(data: &[u8], runs: bool) -> Pair {
    let mut cfg = offloading();
    cfg.proof_runs = runs;
    Pair::new(
        exposure_with_proofs(data, CHUNK),
        ExposerConfig::default(),
        cfg,
    )
}

/// If `d` is chunk `index`, replaces its payload by wrong plaintext sealed with the
/// key (a ticket holder's forgery), keeping the exposer's proof if it has one.
pub(super) fn forge_keeping_the_proof(d: &mut Vec<u8>, index: u32) -> bool {
    let proof = match Repr::parse(d, 65_507) {
        Ok(Repr::ChunkDataWithProof(c)) if c.chunk_index == index => c.proof.to_vec(),
        Ok(Repr::ChunkData(c)) if c.chunk_index == index => {
            *d = forged_chunk(index, &[0xee; CHUNK as usize]);
            return true;
        }
        _ => return false,
    };
    let bad = forged_chunk(index, &[0xee; CHUNK as usize]);
    let Ok(Repr::ChunkData(b)) = Repr::parse(&bad, 65_507) else {
        unreachable!("our own packet parses")
    };
    *d = emit(&Repr::ChunkDataWithProof(ChunkDataWithProof {
        exposure_id: b.exposure_id,
        chunk_index: index,
        payload: b.payload,
        proof: &proof,
    }));
    true
}

#[test]
fn an_offloaded_pull_completes_on_the_drivers_verdicts() {
    let data = data(50_500);
    let mut pair = pair(&data);
    pair.drive();
    assert_eq!(pair.events.last(), Some(&PullerEvent::Complete));
    assert!(pair.puller.offloads_proofs());
    assert_eq!(pair.output, data);
    let s = pair.puller.stats();
    assert_eq!(s.chunks_received, 51);
    assert_eq!(s.offloaded_checks, 51);
    assert_eq!(s.merkle_failures, 0);
    // The driver was asked for the root, and gave the one its checker folded.
    assert!(pair.events.contains(&PullerEvent::VerifyRoot));
}

#[test]
fn without_proofs_negotiated_nothing_is_offloaded() {
    let data = data(10_000);
    let mut pair = Pair::new(
        exposure(&data, CHUNK),
        ExposerConfig::default(),
        offloading(),
    );
    pair.drive();
    assert_eq!(pair.events.last(), Some(&PullerEvent::Complete));
    assert!(!pair.puller.offloads_proofs());
    assert!(pair.unverified.is_empty());
    assert_eq!(pair.output, data);
}

#[test]
fn a_chunk_waiting_for_its_verdict_is_not_accepted_and_copies_are_dropped() {
    let data = data(20_000);
    let mut pair = pair(&data);
    pair.verify = false;
    // Keep every chunk packet the exposer sends, to send again later.
    let kept = Rc::new(std::cell::RefCell::new(Vec::new()));
    let k = Rc::clone(&kept);
    pair.set_hook(move |dir, d| {
        if dir == Dir::ToPuller
            && matches!(
                Repr::parse(d, 65_507),
                Ok(Repr::ChunkDataWithProof(_) | Repr::ChunkData(_))
            )
        {
            k.borrow_mut().push(d.clone());
        }
        true
    });
    for _ in 0..200 {
        if !pair.unverified.is_empty() && pair.unverified.len() == 20 {
            break;
        }
        pair.step();
    }
    assert_eq!(pair.unverified.len(), 20, "every chunk handed out once");
    let s = pair.puller.stats();
    assert_eq!(s.chunks_received, 0, "nothing accepted without a verdict");
    assert_eq!(pair.puller.progress(), 0.0);
    // The same chunks again: dropped as duplicates, not handed out twice.
    let copies = kept.borrow().clone();
    let n = copies.len() as u64;
    pair.inject_to_puller(copies);
    pair.step();
    assert_eq!(pair.unverified.len(), 20);
    assert_eq!(pair.puller.stats().duplicates, s.duplicates + n);
    // A verdict for a chunk not waiting for one is ignored.
    pair.puller
        .handle_verdict(pair.now, 3_000, Verdict::Verified);
    let waiting = pair.unverified[0].0;
    let other = (0..20).find(|i| pair.unverified.iter().all(|u| u.0 != *i));
    assert_eq!(other, None, "all 20 wait");
    pair.puller
        .handle_verdict(pair.now, waiting, Verdict::Verified);
    pair.puller
        .handle_verdict(pair.now, waiting, Verdict::Verified);
    assert_eq!(pair.puller.stats().chunks_received, 1, "accepted once");
    // The harness's checker judges it too (its tree needs every leaf); the puller
    // ignores that second verdict.
    pair.verify = true;
    pair.check_unverified();
    pair.drive();
    assert_eq!(pair.events.last(), Some(&PullerEvent::Complete));
    assert_eq!(pair.output, data);
}

#[test]
fn a_chunk_failing_its_proof_is_requested_again_and_the_good_copy_wins() {
    for runs in [false, true] {
        a_forged_chunk_is_requested_again_and_the_good_copy_wins(runs);
    }
}

fn a_forged_chunk_is_requested_again_and_the_good_copy_wins(runs: bool) {
    let data = data(30_000);
    let mut pair = pair_with(&data, runs);
    // The first answer for chunk 7 carries wrong plaintext, sealed with the key (a
    // ticket holder's forgery), with the exposer's proof.
    let forged = Rc::new(Cell::new(0u32));
    let f = Rc::clone(&forged);
    pair.set_hook(move |dir, d| {
        if dir != Dir::ToPuller || f.get() > 0 {
            return true;
        }
        if forge_keeping_the_proof(d, 7) {
            f.set(1);
        }
        true
    });
    pair.drive();
    assert_eq!(forged.get(), 1);
    assert_eq!(pair.events.last(), Some(&PullerEvent::Complete));
    // The forgery was written, then overwritten by the good copy.
    assert_eq!(pair.output, data);
    let s = pair.puller.stats();
    if runs {
        // Chunk 7 came without a proof: its run (0..30) failed whole, chunk 0 passed
        // by its proof, and the part of the run holding 7 whose true hash that proof
        // showed (4..8) failed; those four came again with their proofs.
        assert_eq!(s.merkle_failures, 4, "{s:?}");
    } else {
        assert_eq!(s.merkle_failures, 1);
    }
    assert_eq!(s.chunks_received, 30);
}

#[test]
fn only_forgeries_end_in_merkle_failed() {
    for runs in [false, true] {
        only_forgeries_end_in_merkle_failed_with(runs);
    }
}

fn only_forgeries_end_in_merkle_failed_with(runs: bool) {
    let data = data(5_000);
    let mut pair = pair_with(&data, runs);
    // Every answer for chunk 2 is a forgery carrying the exposer's proof.
    pair.set_hook(move |dir, d| {
        if dir != Dir::ToPuller {
            return true;
        }
        forge_keeping_the_proof(d, 2);
        true
    });
    pair.drive();
    assert_eq!(
        pair.events.last(),
        Some(&PullerEvent::Failed(PullError::MerkleFailed))
    );
    assert!(pair.puller.stats().merkle_failures >= 2);
    assert_eq!(pair.puller.stats().chunks_received, 4);
}

/// Chunk packets the exposer sent, with and without proofs.
fn chunk_packets(pair: &Pair) -> (usize, usize) {
    let mut with = 0;
    let mut without = 0;
    for d in &pair.exposer_sent {
        match Repr::parse(d, 65_507) {
            Ok(Repr::ChunkDataWithProof(_)) => with += 1,
            Ok(Repr::ChunkData(_)) => without += 1,
            _ => {}
        }
    }
    (with, without)
}

//= spec/rgtp-v1.md#3.6
//# Of the chunk entries of a NAK with PROOF_RUNS, only those whose index is a
//# multiple of 64 are answered with Chunk_Data_With_Proof.
#[test]
fn proofs_come_a_run_at_a_time_once_negotiated() {
    let data = data(200_000);
    for runs in [true, false] {
        let mut pair = pair_with(&data, runs);
        pair.drive();
        assert_eq!(pair.events.last(), Some(&PullerEvent::Complete));
        assert_eq!(pair.output, data);
        let s = pair.puller.stats();
        assert_eq!((s.chunks_received, s.offloaded_checks), (200, 200));
        let manifest = pair
            .exposer_sent
            .iter()
            .find_map(|d| match Repr::parse(d, 65_507) {
                Ok(Repr::Manifest(m)) => Some(m.flags),
                _ => None,
            });
        assert_eq!(
            manifest.map(|f| f.contains(ManifestFlags::PROOF_RUNS)),
            Some(runs)
        );
        if runs {
            // Chunks 0, 64, 128 and 192 carry proofs; nothing was lost.
            assert_eq!(chunk_packets(&pair), (4, 196));
        } else {
            assert_eq!(chunk_packets(&pair), (200, 0));
        }
    }
}

#[test]
fn under_loss_chunks_asked_for_again_come_with_their_proofs() {
    let data = data(300_000);
    let mut pair = pair(&data);
    // Every 7th packet towards the puller is lost.
    let mut n = 0u32;
    pair.set_hook(move |dir, _| {
        n += 1;
        dir != Dir::ToPuller || !n.is_multiple_of(7)
    });
    pair.drive();
    assert_eq!(pair.events.last(), Some(&PullerEvent::Complete));
    assert_eq!(pair.output, data);
    let s = pair.puller.stats();
    assert_eq!(s.chunks_received, 300);
    assert_eq!(s.merkle_failures, 0);
    assert!(s.chunks_rerequested > 0);
    // Every NAK asking again asks for proofs, and none of those asks for runs.
    let mut again = 0;
    for d in &pair.puller_sent {
        if let Ok(Repr::Nak(nak)) = Repr::parse(d, 65_507) {
            let runs = nak.flags.contains(NakFlags::PROOF_RUNS);
            assert!(nak.flags.contains(NakFlags::PROOFS));
            again += usize::from(!runs);
        }
    }
    assert!(again > 0);
    let (with, _) = chunk_packets(&pair);
    assert!(with as u64 >= s.chunks_rerequested, "{with} {s:?}");
}

/// The chunk index of a chunk packet, with or without a proof.
fn chunk_of(d: &[u8]) -> Option<u32> {
    match Repr::parse(d, 65_507) {
        Ok(Repr::ChunkData(c)) => Some(c.chunk_index),
        Ok(Repr::ChunkDataWithProof(c)) => Some(c.chunk_index),
        _ => None,
    }
}

/// How many of the puller's NAKs so far name chunk `index`.
fn naks_naming(pair: &Pair, index: u32) -> usize {
    pair.puller_sent
        .iter()
        .filter_map(|d| match Repr::parse(d, 65_507) {
            Ok(r) => super::nak_indices(&r),
            Err(_) => None,
        })
        .filter(|indices| indices.contains(&index))
        .count()
}

/// A chunk that arrives late, after it was taken for lost but while it still waits in
/// the retransmission queue (requests are paced, so the queue backs up), waits for its
/// verdict like any other and is not asked for again when its turn in the queue
/// comes, however long the verdict takes.
#[test]
fn a_late_chunk_waiting_for_its_verdict_is_not_asked_for_again() {
    let data = data(100_000);
    let mut cfg = offloading();
    cfg.proof_runs = false;
    cfg.max_rate = Some(100_000);
    let mut pair = Pair::new(
        exposure_with_proofs(&data, CHUNK),
        ExposerConfig::default(),
        cfg,
    );
    pair.verify = false;
    // The first copies of chunks 10 to 39 are held back.
    let held = Rc::new(std::cell::RefCell::new(std::collections::BTreeMap::new()));
    let h = Rc::clone(&held);
    pair.set_hook(move |dir, d| match chunk_of(d) {
        Some(i) if dir == Dir::ToPuller && (10..40).contains(&i) => {
            h.borrow_mut().insert(i, d.clone()).is_some()
        }
        _ => true,
    });
    let late = 30;
    for _ in 0..100_000 {
        if pair.puller.queued_for_retransmit(late) {
            break;
        }
        pair.step();
    }
    assert!(
        pair.puller.queued_for_retransmit(late),
        "chunk {late} was taken for lost"
    );
    assert_eq!(naks_naming(&pair, late), 1, "and not asked for again yet");
    // Its first copy arrives now, late: handed out, waiting for its verdict.
    let copy = held.borrow()[&late].clone();
    pair.inject_to_puller(vec![copy]);
    pair.step();
    assert!(pair.unverified.iter().any(|u| u.0 == late));
    // Verdicts take their time: three seconds, long enough for the whole queue.
    let until = pair.now + std::time::Duration::from_secs(3);
    while pair.now < until && pair.step() {}
    assert!(!pair.puller.queued_for_retransmit(late));
    assert_eq!(
        naks_naming(&pair, late),
        1,
        "a chunk waiting for its verdict was asked for again"
    );
    assert!(naks_naming(&pair, late - 1) >= 2, "its neighbours were");
    pair.verify = true;
    pair.check_unverified();
    pair.drive();
    assert_eq!(pair.events.last(), Some(&PullerEvent::Complete));
    assert_eq!(pair.output, data);
}

/// A puller that did not ask for proofs but takes up those the exposure offers.
fn taking_offered() -> PullerConfig {
    let mut cfg = Pair::puller_config();
    cfg.deferred_root = true;
    cfg.offload_proofs = true;
    cfg.take_offered_proofs = true;
    cfg
}

#[test]
fn proofs_an_exposure_sends_unasked_are_taken_up_a_run_at_a_time() {
    let data = data(200_000);
    let mut pair = Pair::new(
        exposure_with_proofs(&data, CHUNK),
        ExposerConfig::default(),
        taking_offered(),
    );
    pair.drive();
    assert_eq!(pair.events.last(), Some(&PullerEvent::Complete));
    assert_eq!(pair.output, data);
    assert!(pair.puller.offloads_proofs());
    let s = pair.puller.stats();
    assert_eq!((s.chunks_received, s.offloaded_checks), (200, 200));
    // Only each run's first chunk came with its proof, and every NAK asked for
    // proofs: from the Manifest on they were the puller's own request.
    assert_eq!(chunk_packets(&pair), (4, 196));
    let mut naks = 0;
    for d in &pair.puller_sent {
        match Repr::parse(d, 65_507) {
            Ok(Repr::Nak(nak)) => {
                naks += 1;
                assert!(nak.flags.contains(NakFlags::PROOFS));
            }
            Ok(Repr::PullRequest(p)) => {
                assert!(!p.flags.contains(rgtp_wire::PullFlags::PROOFS));
                assert!(p.flags.contains(rgtp_wire::PullFlags::PROOF_RUNS));
            }
            _ => {}
        }
    }
    assert!(naks > 0);
}

#[test]
fn forged_proofs_sent_unasked_fail_a_pull_that_takes_them_up() {
    let data = data(5_000);
    let mut pair = Pair::new(
        exposure_with_proofs(&data, CHUNK),
        ExposerConfig::default(),
        taking_offered(),
    );
    pair.set_hook(move |dir, d| {
        if dir == Dir::ToPuller {
            forge_keeping_the_proof(d, 2);
        }
        true
    });
    pair.drive();
    assert_eq!(
        pair.events.last(),
        Some(&PullerEvent::Failed(PullError::MerkleFailed))
    );
    assert!(pair.puller.stats().merkle_failures >= 2);
}

/// A deferred-root pull of `exposure` by a puller taking up offered proofs or
/// not, driven to its end with nothing offloaded: the driver answers the root
/// check with the root over the output.
fn pulled_without_offloading(
    exposure: std::sync::Arc<crate::Exposure>,
    data: &[u8],
    take: bool,
) -> Pair {
    let mut cfg = taking_offered();
    cfg.take_offered_proofs = take;
    let mut pair = Pair::new(exposure, ExposerConfig::default(), cfg);
    pair.drive();
    assert_eq!(pair.events.last(), Some(&PullerEvent::VerifyRoot));
    pair.puller.handle_root(&pair.output_root(CHUNK));
    pair.drive();
    assert_eq!(pair.events.last(), Some(&PullerEvent::Complete));
    assert_eq!(pair.output, data);
    assert!(!pair.puller.offloads_proofs());
    pair
}

#[test]
fn a_plain_exposure_is_pulled_plainly_by_a_puller_that_would_take_up_proofs() {
    let data = data(100_000);
    let pair = pulled_without_offloading(exposure(&data, CHUNK), &data, true);
    assert_eq!(chunk_packets(&pair), (0, 100));
    for d in &pair.puller_sent {
        if let Ok(Repr::Nak(nak)) = Repr::parse(d, 65_507) {
            assert!(!nak.flags.contains(NakFlags::PROOFS));
        }
    }
}

#[test]
fn without_taking_them_up_offered_proofs_are_checked_on_the_receive_path() {
    let data = data(100_000);
    let pair = pulled_without_offloading(exposure_with_proofs(&data, CHUNK), &data, false);
    assert_eq!(chunk_packets(&pair), (100, 0));
}

/// A pull with proofs that resumes an earlier run's output: the chunks that run
/// kept are judged with their proof runs, whose first chunks are fetched with
/// their proofs; a kept chunk spoiled meanwhile fails with the part of its run that
/// proof cannot vouch for, which is fetched again.
#[test]
fn kept_chunks_are_judged_with_their_runs_and_spoiled_ones_fetched_again() {
    let data = data(329_500);
    for runs in [true, false] {
        let mut earlier = data.clone();
        // Chunks 100..150 never arrived; chunk 200 was spoiled on disk since.
        earlier[100_000..150_000].fill(0);
        earlier[200_500] ^= 0x5a;
        let held: Vec<u32> = (0..330).filter(|i| !(100..150).contains(i)).collect();
        let mut pair = pair_with(&data, runs);
        pair.earlier = Some((earlier, held.clone()));
        pair.drive();
        assert_eq!(
            pair.events.last(),
            Some(&PullerEvent::Complete),
            "runs {runs}"
        );
        assert_eq!(pair.output, data);
        // The first NAK waits until the earlier run's chunks are handed over (the
        // pair drains transmits before events): it asks for the first chunks of the
        // kept runs, then the missing (128 is among them).
        let first: Vec<u32> = pair
            .puller_sent
            .iter()
            .find_map(|d| super::nak_indices(&Repr::parse(d, 65_507).ok()?))
            .expect("a NAK");
        let heads = [0, 64, 192, 256, 320];
        assert_eq!(first[..3], [0, 64, 100], "runs {runs}");
        assert!(
            first
                .iter()
                .all(|i| heads.contains(i) || (100..150).contains(i)),
            "{first:?}"
        );
        // Fetched: those, and the part of run 3 that chunk 192's proof shows wrong
        // (chunks 200..208). Nothing else the earlier run held.
        let mut sent: Vec<u32> = pair
            .exposer_sent
            .iter()
            .filter_map(|d| chunk_of(d))
            .collect();
        sent.sort_unstable();
        sent.dedup();
        let mut want: Vec<u32> = heads.into_iter().chain(100..150).chain(200..208).collect();
        want.sort_unstable();
        assert_eq!(sent, want, "runs {runs}");
        let s = pair.puller.stats();
        assert_eq!(s.chunks_received, 330);
        assert_eq!(s.chunks_resumed, held.len() as u64 - heads.len() as u64 - 8);
        assert_eq!(s.repaired_chunks, 8);
        assert_eq!(s.merkle_failures, 0);
        let kept: Vec<u32> = pair
            .events
            .iter()
            .filter_map(|e| match e {
                PullerEvent::Kept { first, members } => {
                    // Runs 1 and 2 lack 100..150; run 5 is the last, of 10 chunks.
                    let want = match first {
                        0 | 192 | 256 => 63,
                        64 => 35,
                        128 => 42,
                        320 => 9,
                        _ => unreachable!("run {first}"),
                    };
                    assert_eq!(members.count_ones(), want, "run {first}");
                    Some(*first)
                }
                _ => None,
            })
            .collect();
        assert_eq!(
            kept,
            [0, 64, 128, 192, 256, 320],
            "each run's kept chunks once, after its first chunk"
        );
    }
}

/// Steps `pair` until the puller has taken the Manifest event.
fn until_manifest(pair: &mut Pair) {
    while !pair
        .events
        .iter()
        .any(|e| matches!(e, PullerEvent::Manifest(_)))
    {
        assert!(pair.step(), "the pull stopped before its Manifest");
    }
}

/// A pair whose puller finds chunks 0..330 but 100..150 of the right data held from
/// an earlier run, past the Manifest: the data, the chunks held, and the pair.
fn resuming_pair() -> (Vec<u8>, Vec<u32>, Pair) {
    let data = data(329_500);
    let held: Vec<u32> = (0..330).filter(|i| !(100..150).contains(i)).collect();
    let mut pair = pair(&data);
    pair.earlier = Some((data.clone(), held.clone()));
    until_manifest(&mut pair);
    (data, held, pair)
}

/// Kept chunks wait for their runs; a record of the output taken meanwhile (a pull
/// stopped again) must still claim them, and the runs' first chunks, which are in
/// the output as the earlier run left them until their new copies are judged.
#[test]
fn what_was_kept_stays_claimed_until_it_is_judged() {
    let (data, held, mut pair) = resuming_pair();
    // Nothing judged yet, nothing asked for yet: everything held is claimed.
    assert!(pair.exposer_sent.iter().all(|d| chunk_of(d).is_none()));
    assert_eq!(claimed(&pair.puller, 330), held);
    assert_eq!(pair.puller.stats().chunks_received, 0);
    pair.drive();
    assert_eq!(pair.events.last(), Some(&PullerEvent::Complete));
    assert_eq!(pair.output, data);
    assert!(pair.puller.kept_bitmap().iter().all(|&w| w == 0));
    assert_eq!(claimed(&pair.puller, 330), (0..330).collect::<Vec<_>>());
}

/// A run's first chunk is fetched again; between its new copy going out and the
/// driver's verdict on it the output holds one copy or the other, so a record of the
/// output taken then (a pull stopped again) still claims it.
#[test]
fn a_runs_first_chunk_stays_claimed_until_its_verdict() {
    let (data, held, mut pair) = resuming_pair();
    // The driver's checker is slow: no verdict comes until every run went out.
    pair.verify = false;
    let run = pair.puller.run_len();
    // The runs with chunks kept, each of which goes out with its first chunk.
    let runs = (0..330u32)
        .step_by(run as usize)
        .filter(|&h| held.iter().any(|&i| i != h && i / run == h / run))
        .count();
    let kept_events = |events: &[PullerEvent]| {
        events
            .iter()
            .filter(|e| matches!(e, PullerEvent::Kept { .. }))
            .count()
    };
    while kept_events(&pair.events) < runs {
        assert!(pair.step(), "the pull stopped before every run went out");
    }
    assert!(runs > 2, "{runs} runs of {run}");
    assert_eq!(pair.puller.stats().chunks_received, 0);
    assert_eq!(claimed(&pair.puller, 330), held);
    pair.verify = true;
    pair.drive();
    assert_eq!(pair.events.last(), Some(&PullerEvent::Complete));
    assert_eq!(pair.output, data);
    assert!(pair.puller.kept_bitmap().iter().all(|&w| w == 0));
}

/// A verdict on a kept chunk before its run's first chunk handed it out is none a
/// driver could give: it is ignored (neither taken nor fetched again), and the chunk
/// is judged with its run.
#[test]
fn a_verdict_on_a_kept_chunk_not_yet_handed_out_is_ignored() {
    let data = data(329_500);
    let mut pair = pair(&data);
    pair.earlier = Some((data.clone(), (0..330).collect()));
    until_manifest(&mut pair);
    let run = pair.puller.run_len();
    let bit = |map: &[u64], i: u32| map[i as usize / 64] & (1 << (i % 64)) != 0;
    // The last run's chunks: its first chunk is not asked for yet.
    let kept = 329;
    assert!(kept % run != 0 && bit(pair.puller.kept_bitmap(), kept));
    assert!(!pair
        .events
        .iter()
        .any(|e| matches!(e, PullerEvent::Kept { first, .. } if *first == kept / run * run)));
    let now = pair.now;
    pair.puller.handle_verdict(now, kept, Verdict::Failed);
    pair.puller.handle_verdict(now, kept, Verdict::Verified);
    assert!(bit(pair.puller.kept_bitmap(), kept), "still kept");
    assert!(!bit(pair.puller.received_bitmap(), kept), "not taken");
    pair.drive();
    assert_eq!(pair.events.last(), Some(&PullerEvent::Complete));
    assert_eq!(pair.output, data);
    let s = pair.puller.stats();
    assert_eq!(s.repaired_chunks, 0);
    assert!(
        pair.exposer_sent.iter().all(|d| chunk_of(d) != Some(kept)),
        "it was not fetched again"
    );
}

/// Proofs negotiated and checked on the receive path: a kept chunk has no proof
/// and nothing is taken.
#[test]
fn without_offloading_nothing_is_kept_once_proofs_are_negotiated() {
    let data = data(100_000);
    let mut cfg = offloading();
    cfg.offload_proofs = false;
    let mut pair = Pair::new(
        exposure_with_proofs(&data, CHUNK),
        ExposerConfig::default(),
        cfg,
    );
    pair.earlier = Some((data.clone(), (0..100).collect()));
    pair.drive();
    assert_eq!(pair.events.last(), Some(&PullerEvent::Complete));
    assert_eq!(pair.output, data);
    let s = pair.puller.stats();
    assert_eq!((s.chunks_resumed, s.chunks_requested), (0, 100));
}
