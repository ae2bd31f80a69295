//! Protocol tests of the Exposer and the Puller together, in memory, on virtual
//! time, with the testing layers only (see `util`).

use std::cell::Cell;
use std::rc::Rc;
use std::time::Duration;

use rgtp_wire::{
    IndexList, ManifestFlags, Nak, NakFlags, PacketType, PullFlags, PullRequest, Repr, Token,
    VERSION,
};

use crate::crypto::{KeyMode, TAG_LEN};
use crate::exposer::{Exposer, ExposerConfig};
use crate::fec::NoFec;
use crate::puller::{PullError, PullerEvent};
use crate::{Instant, Peer};

mod fec_proofs;
mod hostile;
mod multi;
mod offload;
mod repair;
mod util;

use self::util::{data, exposure, exposure_keyed, parsed, Dir, Pair, EXPOSER, ID, PULLER};

fn types(reprs: &[Repr<'_>]) -> Vec<PacketType> {
    reprs.iter().map(Repr::packet_type).collect()
}

fn nak_indices(repr: &Repr<'_>) -> Option<Vec<u32>> {
    match repr {
        Repr::Nak(n) => Some(n.indices.iter().collect()),
        _ => None,
    }
}

fn chunk_index(d: &[u8]) -> Option<u32> {
    match Repr::parse(d, 65_507) {
        Ok(Repr::ChunkData(c)) => Some(c.chunk_index),
        _ => None,
    }
}

fn emit(repr: &Repr<'_>) -> Vec<u8> {
    let mut buf = vec![0xa5; repr.buffer_len()];
    repr.emit(&mut buf);
    buf
}

fn pull_request(version_min: u16, version_max: u16) -> Vec<u8> {
    emit(&Repr::PullRequest(PullRequest {
        exposure_id: ID,
        window_size: 64,
        loss_rate_q16: 0,
        flags: PullFlags::ADDR_VALIDATION,
        version_min,
        version_max,
    }))
}

fn nak(indices: &[u32], token: Option<Token>) -> Vec<u8> {
    let mut flags = NakFlags::empty();
    if token.is_some() {
        flags |= NakFlags::TOKEN;
    }
    emit(&Repr::Nak(Nak {
        exposure_id: ID,
        flags,
        indices: IndexList::Slice(indices),
        token,
    }))
}

/// Everything the exposer sends now, one datagram per entry; all must go to `to`.
fn drain_to(exposer: &mut Exposer, now: Instant, to: Peer) -> Vec<Vec<u8>> {
    let mut buf = Vec::new();
    let mut out = Vec::new();
    while let Some(t) = exposer.poll_transmit(now, &mut buf) {
        assert_eq!(t.destination, to);
        let seg = t.segment_size.unwrap_or(t.size);
        out.extend(buf[..t.size].chunks(seg).map(<[u8]>::to_vec));
    }
    out
}

/// Everything the exposer sends the puller now.
fn drain(exposer: &mut Exposer, now: Instant) -> Vec<Vec<u8>> {
    drain_to(exposer, now, PULLER)
}

#[test]
fn handshake_delivers_the_exposure_byte_for_byte() {
    let data = data(10_000);
    let mut pair = Pair::with(exposure(&data, 1_000));
    pair.drive();

    assert!(pair.puller.is_complete());
    assert_eq!(pair.output, data);
    let PullerEvent::Manifest(info) = &pair.events[0] else {
        panic!("first event {:?}", pair.events[0]);
    };
    assert_eq!((info.total_size, info.chunk_count), (10_000, 10));
    assert_eq!(pair.events.last(), Some(&PullerEvent::Complete));

    // Pull_Request → Manifest → NAK → ten chunks, and nothing else.
    let sent = parsed(&pair.puller_sent);
    assert_eq!(
        types(&sent)[..2],
        [PacketType::PullRequest, PacketType::Nak]
    );
    assert_eq!(nak_indices(&sent[1]), Some((0..10).collect()));
    let served = parsed(&pair.exposer_sent);
    assert_eq!(types(&served)[0], PacketType::Manifest);
    assert_eq!(&types(&served)[1..], [PacketType::ChunkData; 10]);
    let stats = pair.puller.stats();
    assert_eq!(stats.chunks_received, 10);
    assert_eq!(stats.chunks_rerequested, 0);
    assert_eq!(stats.auth_failures, 0);
}

//= spec/rgtp-v1.md#6.6
//# A puller MUST seal-check chunks under the chunk key the flag names
#[test]
fn puller_takes_the_chunk_key_the_manifest_names() {
    let data = data(10_000);
    for mode in [KeyMode::Derived, KeyMode::Raw] {
        let exposure = exposure_keyed(&data, 1_000, &NoFec, mode);
        let flags = exposure.suite().manifest_flags().unwrap();
        assert_eq!(
            flags.contains(ManifestFlags::DERIVED_KEY),
            mode == KeyMode::Derived
        );
        let mut pair = Pair::with(exposure);
        pair.drive();
        assert!(pair.puller.is_complete(), "{mode:?}");
        assert_eq!(pair.output, data, "{mode:?}");
        assert_eq!(pair.puller.stats().auth_failures, 0, "{mode:?}");
    }
    // A Manifest whose flag lies about the key: every chunk fails authentication.
    let mut pair = Pair::with(exposure_keyed(&data, 1_000, &NoFec, KeyMode::Raw));
    pair.set_hook(|dir, d| {
        if dir == Dir::ToPuller && d[1] == PacketType::Manifest as u8 {
            d[71] |= ManifestFlags::DERIVED_KEY.bits() as u8;
        }
        true
    });
    for _ in 0..200 {
        if !pair.step() {
            break;
        }
    }
    assert!(!pair.puller.is_complete());
    assert!(pair.puller.stats().auth_failures > 0);
}

#[test]
fn empty_exposure_completes_on_the_manifest() {
    let mut pair = Pair::with(exposure(&[], 1_000));
    pair.drive();
    assert!(pair.puller.is_complete());
    assert!(pair.output.is_empty());
    assert_eq!(types(&parsed(&pair.exposer_sent)), [PacketType::Manifest]);
}

//= spec/rgtp-v1.md#3.2
//# An exposer MUST NOT answer a Pull_Request whose range excludes every
//# version it speaks (this includes `Version_Min > Version_Max`).
#[test]
fn exposer_is_silent_without_a_common_version() {
    let v = u16::from(VERSION);
    let mut exposer = Exposer::new(exposure(&data(100), 10), ExposerConfig::default());
    for (min, max) in [(v + 1, v + 5), (0, v - 1), (v + 1, v - 1), (v, v - 1)] {
        exposer.handle_datagram(Instant::ZERO, PULLER, &pull_request(min, max));
        assert!(
            drain(&mut exposer, Instant::ZERO).is_empty(),
            "{min}..{max}"
        );
    }
    assert_eq!(exposer.stats().version_mismatch, 4);
    assert_eq!(exposer.stats().manifests_sent, 0);

    // A range that includes version 1 is answered with a Manifest.
    exposer.handle_datagram(Instant::ZERO, PULLER, &pull_request(0, v + 5));
    let out = drain(&mut exposer, Instant::ZERO);
    assert_eq!(types(&parsed(&out)), [PacketType::Manifest]);
    assert_eq!(out[0][0], VERSION);
}

/// A Pull_Request with `flags`.
fn pull_request_with(flags: PullFlags) -> Vec<u8> {
    emit(&Repr::PullRequest(PullRequest {
        exposure_id: ID,
        window_size: 64,
        loss_rate_q16: 0,
        flags,
        version_min: 1,
        version_max: 1,
    }))
}

#[test]
fn the_rate_cap_is_told_only_to_pullers_that_understand_it() {
    let cfg = ExposerConfig {
        rate_cap: Some(2_000_000),
        ..ExposerConfig::default()
    };
    let mut exposer = Exposer::new(exposure(&data(100), 10), cfg);
    let manifest = |exposer: &mut Exposer, flags| {
        exposer.handle_datagram(Instant::ZERO, PULLER, &pull_request_with(flags));
        let out = drain(exposer, Instant::ZERO);
        let [Repr::Manifest(m)] = parsed(&out)[..] else {
            panic!("{out:?}")
        };
        (out[0].len(), m)
    };
    // An upstream puller: the plain 72-byte Manifest, as v1 says.
    let (len, m) = manifest(&mut exposer, PullFlags::empty());
    assert_eq!((len, m.rate_cap), (72, None));
    assert!(!m.flags.contains(ManifestFlags::RATE_CAP));
    // One that knows the extension: the cap, after the token when there is one.
    let (len, m) = manifest(&mut exposer, PullFlags::RATE_CAP);
    assert_eq!((len, m.rate_cap), (80, Some(2_000_000)));
    let (len, m) = manifest(
        &mut exposer,
        PullFlags::RATE_CAP | PullFlags::ADDR_VALIDATION,
    );
    assert_eq!((len, m.rate_cap), (96, Some(2_000_000)));
    assert!(m.token.is_some());
    // Within the amplification bound of an unvalidated 36-byte request (3 × 36).
    assert!(len <= 3 * 36);

    // The puller learns the cap and paces at the lower of it and its own.
    let capped = |own: Option<u64>| {
        let mut cfg = Pair::puller_config();
        cfg.max_rate = own;
        let ex = ExposerConfig {
            rate_cap: Some(50_000),
            ..ExposerConfig::default()
        };
        let mut pair = Pair::new(exposure(&data(5000), 100), ex, cfg);
        while pair.puller.manifest().is_none() && pair.step() {}
        pair
    };
    let pair = capped(None);
    assert_eq!(
        pair.puller.manifest().and_then(|m| m.rate_cap),
        Some(50_000)
    );
    assert_eq!(pair.puller.rate_limit(), Some(50_000));
    assert_eq!(capped(Some(20_000)).puller.rate_limit(), Some(20_000));
    assert_eq!(capped(Some(90_000)).puller.rate_limit(), Some(50_000));

    // A cap of 0 is no cap anyone can keep: the Manifest is refused.
    let mut pair = capped(None);
    let mut pair0 = Pair::new(
        exposure(&data(5000), 100),
        ExposerConfig {
            rate_cap: Some(50_000),
            ..ExposerConfig::default()
        },
        Pair::puller_config(),
    );
    pair0.set_hook(|dir, d| {
        if matches!(dir, Dir::ToPuller) && d.get(1) == Some(&2) && d.len() >= 80 {
            let n = d.len();
            d[n - 8..].fill(0);
        }
        true
    });
    for _ in 0..50 {
        if !pair0.step() {
            break;
        }
    }
    assert!(pair0.puller.manifest().is_none());
    assert!(pair0.puller.stats().bad_manifests >= 1);
    pair.drive();
    assert!(pair.puller.is_finished());
}

//= spec/rgtp-v1.md#3.2
//# the Manifest then carries Version = 1 in its header.
#[test]
fn puller_refuses_a_manifest_of_another_version() {
    let mut pair = Pair::with(exposure(&data(1_000), 100));
    pair.set_hook(|dir, d| {
        if dir == Dir::ToPuller && d[1] == PacketType::Manifest as u8 {
            d[0] = 2;
        }
        true
    });
    pair.drive();
    assert!(!pair
        .events
        .iter()
        .any(|e| matches!(e, PullerEvent::Manifest(_))));
    assert_eq!(
        pair.events.last(),
        Some(&PullerEvent::Failed(PullError::HandshakeTimeout))
    );
    let stats = pair.puller.stats();
    assert!(stats.malformed >= 1, "{stats:?}");
    assert_eq!(stats.chunks_received, 0);
    // It kept asking, and asked for nothing else.
    let sent = types(&parsed(&pair.puller_sent));
    assert!(sent.len() > 1);
    assert!(sent.iter().all(|t| *t == PacketType::PullRequest));
}

#[test]
fn lost_chunk_is_named_in_a_nak_and_the_transfer_completes() {
    let data = data(8_000);
    let mut pair = Pair::with(exposure(&data, 1_000));
    let mut dropped = false;
    pair.set_hook(move |dir, d| {
        if dir == Dir::ToPuller && !dropped && chunk_index(d) == Some(3) {
            dropped = true;
            return false;
        }
        true
    });
    pair.drive();

    assert!(pair.puller.is_complete());
    assert_eq!(pair.output, data);
    let naks: Vec<Vec<u32>> = parsed(&pair.puller_sent)
        .iter()
        .filter_map(nak_indices)
        .collect();
    assert_eq!(naks[0], (0..8).collect::<Vec<_>>());
    assert!(naks[1..].iter().any(|n| n == &[3]), "{naks:?}");
    let served: Vec<u32> = pair
        .exposer_sent
        .iter()
        .filter_map(|d| chunk_index(d))
        .collect();
    assert_eq!(served.iter().filter(|&&i| i == 3).count(), 2);
    let stats = pair.puller.stats();
    assert_eq!(stats.chunks_rerequested, 1);
    assert_eq!(stats.retransmit_naks, 1);
}

#[test]
fn forged_chunk_is_dropped_and_the_genuine_one_completes() {
    let data = data(8_000);
    let mut pair = Pair::with(exposure(&data, 1_000));
    let forged = Rc::new(Cell::new(false));
    let flag = Rc::clone(&forged);
    pair.set_hook(move |dir, d| {
        if dir == Dir::ToPuller && !flag.get() && chunk_index(d) == Some(5) {
            flag.set(true);
            let last_ciphertext = d.len() - TAG_LEN - 1;
            d[last_ciphertext] ^= 0x01;
        }
        true
    });
    pair.drive();

    assert!(forged.get());
    assert!(pair.puller.is_complete());
    assert_eq!(pair.output, data);
    let stats = pair.puller.stats();
    assert_eq!(stats.auth_failures, 1);
    assert_eq!(stats.chunks_received, 8);
    assert_eq!(stats.chunks_rerequested, 1);
}

//= spec/rgtp-v1.md#5.5
//# For an unvalidated request of `L` bytes the exposer starts a budget of `3*L`
//# bytes. Before sending each answer packet it subtracts its size; if a packet
//# does not fit, that packet and every later entry of the same request are
//# dropped (and SHOULD be counted).
#[test]
fn unvalidated_source_gets_at_most_three_times_its_bytes() {
    let mut exposer = Exposer::new(exposure(&data(10_000), 100), ExposerConfig::default());
    let now = Instant::ZERO;

    // A 280-byte NAK with no token asks for 64 chunks of 140-byte datagrams: six fit.
    let request = nak(&(0..64).collect::<Vec<_>>(), None);
    exposer.handle_datagram(now, PULLER, &request);
    let out = drain(&mut exposer, now);
    let sent: usize = out.iter().map(Vec::len).sum();
    assert!(!out.is_empty());
    assert_eq!(request.len(), 280);
    assert!(sent <= 3 * request.len(), "{sent} > 3 × {}", request.len());
    assert_eq!(out.len(), 6);
    assert!(
        sent + 140 > 3 * request.len(),
        "the budget is used, not wasted"
    );
    let stats = exposer.stats();
    assert_eq!(stats.chunks_sent as usize, out.len());
    assert_eq!(stats.over_budget as usize, 64 - out.len());
    assert!(stats.unvalidated_bytes_out <= 3 * stats.unvalidated_bytes_in);

    // The Manifest fits the Pull_Request's budget and carries a token...
    exposer.handle_datagram(now, PULLER, &pull_request(1, 1));
    let manifest = drain(&mut exposer, now);
    let [Repr::Manifest(m)] = parsed(&manifest)[..] else {
        panic!("one Manifest expected");
    };
    let token = m.token.expect("address validation asked for");
    // ... which, echoed, lifts the bound.
    exposer.handle_datagram(now, PULLER, &nak(&(0..64).collect::<Vec<_>>(), Some(token)));
    assert_eq!(drain(&mut exposer, now).len(), 64);
    // A token minted for another address does not.
    let before = exposer.stats();
    let request = nak(&(0..64).collect::<Vec<_>>(), Some(token));
    exposer.handle_datagram(now, EXPOSER, &request);
    let out = drain_to(&mut exposer, now, EXPOSER);
    assert!(out.iter().map(Vec::len).sum::<usize>() <= 3 * request.len());
    assert!(out.len() < 64);
    assert_eq!(exposer.stats().bad_token, before.bad_token + 1);
}

/// What a 64-entry NAK carrying `token`, sent with `victim` as its source
/// address, makes an exposer holding `secret` send: (bytes sent, request bytes).
fn spoofed_gain(secret: [u8; 32], victim: Peer, token: Token, now: Instant) -> (usize, usize) {
    let config = ExposerConfig {
        token_secret: secret,
        ..ExposerConfig::default()
    };
    let mut exposer = Exposer::new(exposure(&data(10_000), 100), config);
    let request = nak(&(0..64).collect::<Vec<_>>(), Some(token));
    exposer.handle_datagram(now, victim, &request);
    let sent = drain_to(&mut exposer, now, victim)
        .iter()
        .map(Vec::len)
        .sum::<usize>();
    (sent, request.len())
}

//= spec/rgtp-v1.md#5.3
//# The exposer secret MUST NOT be computable from anything a puller holds
//# (the ticket: key, Exposure_ID, address).
#[test]
fn ticket_holder_cannot_mint_tokens_for_another_address() {
    let now = Instant::from_micros(1_000_000);
    let victim = Peer::Mem(7);
    let key = *util::key().as_bytes();
    // Every secret a ticket holder can compute: the old default derived from
    // the ticket's key and Exposure_ID, the key itself, the all-zero config.
    let guesses = [
        crate::token::TokenKey::dangerous_secret_from_key(&key, &ID),
        key,
        [0; 32],
    ];
    // The exposer's secret: drawn at random, shared with no puller.
    let secret = [0x5a; 32];
    for guess in guesses {
        let forged = crate::token::TokenKey::new(guess).mint(&ID, &victim, now);
        let (sent, len) = spoofed_gain(secret, victim, forged, now);
        assert!(sent <= 3 * len, "forged token got {sent} bytes for {len}");
    }
    // Against an exposer that derives its secret from the key (the dangerous
    // option), the same forgery gets all 64 chunks: the bound is gone.
    let dangerous = guesses[0];
    let forged = crate::token::TokenKey::new(dangerous).mint(&ID, &victim, now);
    let (sent, len) = spoofed_gain(dangerous, victim, forged, now);
    assert_eq!(sent, 64 * 140);
    assert!(sent > 30 * len);
}

#[test]
fn deferred_root_completes_only_on_the_right_root() {
    let data = data(5_000);
    let chunk_size = 512;
    let exposure = exposure(&data, chunk_size);
    let root = exposure.root();
    let mut cfg = Pair::puller_config();
    cfg.deferred_root = true;

    let mut pair = Pair::new(exposure.clone(), ExposerConfig::default(), cfg.clone());
    pair.drive();
    assert_eq!(pair.events.last(), Some(&PullerEvent::VerifyRoot));
    assert!(!pair.puller.is_finished());
    assert_eq!(pair.puller.poll_timeout(), None);
    let mut buf = Vec::new();
    assert!(pair.puller.poll_transmit(pair.now, &mut buf).is_none());
    assert_eq!(pair.output_root(chunk_size), root);
    pair.puller.handle_root(&pair.output_root(chunk_size));
    assert_eq!(pair.puller.poll_event(), Some(PullerEvent::Complete));
    assert!(pair.puller.is_complete());
    assert_eq!(pair.puller.stats().merkle_failures, 0);

    let mut pair = Pair::new(exposure, ExposerConfig::default(), cfg);
    pair.drive();
    assert_eq!(pair.events.last(), Some(&PullerEvent::VerifyRoot));
    let mut wrong = root;
    wrong[0] ^= 0x80;
    pair.puller.handle_root(&wrong);
    assert_eq!(
        pair.puller.poll_event(),
        Some(PullerEvent::Failed(PullError::MerkleFailed))
    );
    assert!(pair.puller.is_finished() && !pair.puller.is_complete());
    assert_eq!(pair.puller.stats().merkle_failures, 1);
    // A second answer changes nothing.
    pair.puller.handle_root(&root);
    assert_eq!(pair.puller.poll_event(), None);
}

#[test]
fn pair_runs_on_virtual_time() {
    let mut pair = Pair::with(exposure(&data(3_000), 1_000));
    pair.latency = Duration::from_millis(40);
    pair.drive();
    assert!(pair.puller.is_complete());
    // Pull_Request out and Manifest back, NAK out and chunks back: two round trips.
    assert_eq!(pair.now, Instant::ZERO + Duration::from_millis(160));
    assert_eq!(pair.puller.stats().srtt_us, 80_000);
}

/// A pull that resumes an earlier run's output asks for what that run lacks and
/// nothing else, though the pair drains transmits before events: the first request
/// waits for the chunks handed over as the Manifest event is taken.
#[test]
fn a_resumed_pull_asks_only_for_what_it_lacks() {
    let data = data(100_000);
    let mut earlier = data.clone();
    earlier[40_000..60_000].fill(0);
    let mut pair = Pair::with(exposure(&data, 1_000));
    pair.earlier = Some((
        earlier,
        (0..100).filter(|i| !(40..60).contains(i)).collect(),
    ));
    pair.drive();
    assert_eq!(pair.events.last(), Some(&PullerEvent::Complete));
    assert_eq!(pair.output, data);
    let mut sent: Vec<u32> = pair
        .exposer_sent
        .iter()
        .filter_map(|d| chunk_index(d))
        .collect();
    sent.sort_unstable();
    assert_eq!(sent, (40..60).collect::<Vec<u32>>());
    let s = pair.puller.stats();
    assert_eq!((s.chunks_resumed, s.chunks_requested), (80, 20));
}

/// What drivers call, `poll_transmit_ref`, hands out a batch of consecutive chunks
/// without proofs as the slice of the store that holds their packets, and writes
/// every other batch into `buf`; batch for batch, the bytes are the ones
/// `poll_transmit` writes. Requests mix runs, gaps, repeats, the short last chunk,
/// proofs, proof runs, parity and indices out of range.
#[test]
fn batches_sent_from_the_store_are_the_batches_written_out() {
    use crate::crypto::{CipherId, Key, NullCipherAs};
    use crate::exposer::{make_parity_entry, Exposure};
    use crate::fec::XorParity;
    use crate::merkle::TestingHash;

    let data = data(100 * 100 + 37);
    let cipher = NullCipherAs::new(CipherId::ChaCha20Poly1305, &Key::from_bytes([0x42; 32]));
    let fec = XorParity::new(8).unwrap();
    let exposure = std::sync::Arc::new(
        Exposure::build(
            ID,
            &data,
            100,
            &cipher,
            KeyMode::Raw,
            &TestingHash,
            &fec,
            false,
        )
        .unwrap(),
    );
    let store = exposure.store_bytes().as_ptr_range();
    let config = ExposerConfig {
        max_segments: 16,
        dangerous_serve_unvalidated: true,
        ..ExposerConfig::default()
    };
    let mut copying = Exposer::new(std::sync::Arc::clone(&exposure), config.clone());
    let mut borrowing = Exposer::new(std::sync::Arc::clone(&exposure), config);
    let requests: Vec<(Vec<u32>, NakFlags)> = vec![
        ((0..40).collect(), NakFlags::empty()),
        ((90..101).collect(), NakFlags::empty()),
        (
            vec![3, 4, 5, 9, 10, 100, 7, 7, 8, 500, 11, 12],
            NakFlags::empty(),
        ),
        ((60..70).collect(), NakFlags::PROOFS),
        (
            (60..140).filter(|i| i % 3 != 0).collect(),
            NakFlags::PROOFS | NakFlags::PROOF_RUNS,
        ),
        (
            vec![
                20,
                21,
                make_parity_entry(2, 0),
                22,
                make_parity_entry(12, 0),
                make_parity_entry(99, 0),
                23,
            ],
            NakFlags::empty(),
        ),
    ];
    let (mut stored, mut written) = (0, 0);
    for (indices, flags) in &requests {
        let request = emit(&Repr::Nak(Nak {
            exposure_id: ID,
            flags: *flags,
            indices: IndexList::Slice(indices),
            token: None,
        }));
        let now = Instant::ZERO;
        copying.handle_datagram(now, PULLER, &request);
        borrowing.handle_datagram(now, PULLER, &request);
        let (mut a, mut b) = (Vec::new(), Vec::new());
        loop {
            let ta = copying.poll_transmit(now, &mut a);
            let tb = borrowing.poll_transmit_ref(now, &mut b);
            match (ta, tb) {
                (None, None) => break,
                (Some(ta), Some((tb, bytes))) => {
                    assert_eq!(ta, tb, "request {indices:?}");
                    assert!(bytes == &a[..ta.size], "request {indices:?}: bytes differ");
                    if store.contains(&bytes.as_ptr()) {
                        stored += 1;
                        let reprs: Vec<_> = tb
                            .datagrams(bytes)
                            .map(|d| Repr::parse(d, 65_507).unwrap())
                            .collect();
                        assert!(reprs.iter().all(|r| matches!(r, Repr::ChunkData(_))));
                    } else {
                        written += 1;
                    }
                }
                (ta, tb) => panic!("request {indices:?}: {ta:?} against {:?}", tb.map(|t| t.0)),
            }
        }
    }
    assert_eq!(copying.stats(), borrowing.stats());
    assert!(stored >= 4, "{stored} batches sent from the store");
    assert!(written >= 4, "{written} batches written out");
}

/// With proofs in runs (one chunk in 64 carries its proof, and is longer), the 62
/// chunks between a run's first two and the next run go out as two batches of 31,
/// both from the store, not as 52 from the store and 10 copied (too few for the
/// link to send from the store): a batch that would leave a small one after it is
/// halved. The datagrams and their order are those `poll_transmit` writes.
#[test]
fn runs_between_proofs_go_out_in_two_even_batches_from_the_store() {
    let data = data(200 * 1200);
    let exposure = exposure(&data, 1200);
    let store = exposure.store_bytes().as_ptr_range();
    let config = ExposerConfig {
        max_segments: 64,
        max_batch_bytes: 65_507,
        dangerous_serve_unvalidated: true,
        ..ExposerConfig::default()
    };
    let request = emit(&Repr::Nak(Nak {
        exposure_id: ID,
        flags: NakFlags::PROOFS | NakFlags::PROOF_RUNS,
        indices: IndexList::Slice(&(0..128).collect::<Vec<u32>>()),
        token: None,
    }));
    let mut copying = Exposer::new(std::sync::Arc::clone(&exposure), config.clone());
    let mut borrowing = Exposer::new(std::sync::Arc::clone(&exposure), config);
    copying.handle_datagram(Instant::ZERO, PULLER, &request);
    borrowing.handle_datagram(Instant::ZERO, PULLER, &request);
    let (mut a, mut b) = (Vec::new(), Vec::new());
    let (mut batches, mut from_store, mut served) = (Vec::new(), Vec::new(), Vec::new());
    while let Some((t, bytes)) = borrowing.poll_transmit_ref(Instant::ZERO, &mut b) {
        let copied = copying
            .poll_transmit(Instant::ZERO, &mut a)
            .expect("the same batches");
        assert_eq!(t, copied);
        assert!(bytes == &a[..t.size], "the same bytes");
        batches.push(t.datagrams(bytes).count());
        from_store.push(store.contains(&bytes.as_ptr()));
        served.extend(t.datagrams(bytes).map(|d| match Repr::parse(d, 65_507) {
            Ok(Repr::ChunkData(c)) => (c.chunk_index, false),
            Ok(Repr::ChunkDataWithProof(c)) => (c.chunk_index, true),
            other => panic!("not a chunk: {other:?}"),
        }));
    }
    assert!(copying.poll_transmit(Instant::ZERO, &mut a).is_none());
    let (served, proofs): (Vec<u32>, Vec<bool>) = served.into_iter().unzip();
    assert_eq!(
        proofs
            .iter()
            .enumerate()
            .filter(|(_, &p)| p)
            .map(|(i, _)| i)
            .collect::<Vec<_>>(),
        [0, 64]
    );
    assert_eq!(served, (0..128).collect::<Vec<u32>>());
    // A proof chunk and the next (shorter: it ends the batch), then 62 in two.
    assert_eq!(batches, [2, 31, 31, 2, 31, 31]);
    assert_eq!(from_store, [false, true, true, false, true, true]);
}

/// A batch ends before it would pass `max_batch_bytes`, so that the link can hand
/// it over in one call (UDP GSO takes at most 65,507 bytes): a request for 100
/// chunks with room for 10 packets a batch goes out as ten batches of 10, where
/// `max_segments` alone (64) makes two batches of 50 (not 64 and 36: what would
/// fill one batch and leave a small one is halved). The short last chunk still
/// joins the batch before it, and every chunk is served once.
#[test]
fn a_batch_ends_before_it_would_pass_the_links_byte_bound() {
    let data = data(99 * 100 + 37);
    let exposure = exposure(&data, 100);
    let packet = exposure.packet(0).len();
    let serve = |max_batch_bytes: usize| {
        let mut exposer = Exposer::new(
            std::sync::Arc::clone(&exposure),
            ExposerConfig {
                max_segments: 64,
                max_batch_bytes,
                dangerous_serve_unvalidated: true,
                ..ExposerConfig::default()
            },
        );
        let request = emit(&Repr::Nak(Nak {
            exposure_id: ID,
            flags: NakFlags::empty(),
            indices: IndexList::Slice(&(0..100).collect::<Vec<u32>>()),
            token: None,
        }));
        exposer.handle_datagram(Instant::ZERO, PULLER, &request);
        let (mut buf, mut batches, mut served) = (Vec::new(), Vec::new(), Vec::new());
        while let Some(t) = exposer.poll_transmit(Instant::ZERO, &mut buf) {
            assert!(t.size <= max_batch_bytes, "{} > {max_batch_bytes}", t.size);
            let n = t.datagrams(&buf[..t.size]).count();
            served.extend(t.datagrams(&buf[..t.size]).filter_map(chunk_index));
            batches.push(n);
        }
        assert_eq!(served, (0..100).collect::<Vec<u32>>());
        batches
    };
    assert_eq!(serve(10 * packet + packet / 2), vec![10; 10]);
    assert_eq!(serve(usize::MAX), vec![50, 50]);
    // Room for one packet and a half: one a batch, never none.
    assert_eq!(serve(packet + packet / 2), vec![1; 100]);
}
