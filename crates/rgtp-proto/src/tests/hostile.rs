//! Hostile traffic against the puller (spec §8.11): a proof-less chunk when
//! proofs were negotiated, floods of spoofed packets, a wrong key, and a
//! Manifest larger than the configured limit.

use std::cell::Cell;
use std::rc::Rc;
use std::time::Duration;

use rgtp_wire::{ChunkData, Repr};

use crate::crypto::{CipherId, CipherSuite, Key, NullCipherAs, TAG_LEN};
use crate::exposer::ExposerConfig;
use crate::puller::{PullError, PullerEvent};
use crate::Instant;

use super::emit;
use super::util::{data, exposure, exposure_with_proofs, key, Dir, Pair, ID};

/// A Chunk_Data for `index` carrying `plain`, sealed with the exposure's key: what
/// any ticket holder can make.
pub(super) fn forged_chunk(index: u32, plain: &[u8]) -> Vec<u8> {
    let cipher = NullCipherAs::new(CipherId::ChaCha20Poly1305, &key());
    let mut payload = plain.to_vec();
    let tag = cipher.seal(index, &mut payload).expect("seal");
    payload.extend_from_slice(&tag);
    emit(&Repr::ChunkData(ChunkData {
        exposure_id: ID,
        chunk_index: index,
        payload: &payload,
    }))
}

fn is_chunk_with_proof(d: &[u8], index: u32) -> bool {
    matches!(Repr::parse(d, 65_507), Ok(Repr::ChunkDataWithProof(c)) if c.chunk_index == index)
}

//= spec/rgtp-v1.md#8.11
//# From then on a chunk that authenticates but carries no proof MUST be dropped,
#[test]
fn proofless_chunk_is_dropped_when_proofs_were_negotiated() {
    let data = data(8_000);
    let mut cfg = Pair::puller_config();
    cfg.want_proofs = true;
    let mut pair = Pair::new(
        exposure_with_proofs(&data, 1_000),
        ExposerConfig::default(),
        cfg,
    );
    // The first answer for chunk 3 is replaced by an authentic forgery without a proof.
    let forged = Rc::new(Cell::new(false));
    let flag = Rc::clone(&forged);
    pair.set_hook(move |dir, d| {
        if dir == Dir::ToPuller && !flag.get() && is_chunk_with_proof(d, 3) {
            flag.set(true);
            *d = forged_chunk(3, &[0xee; 1_000]);
        }
        true
    });
    pair.drive();

    assert!(forged.get());
    assert!(pair.puller.is_complete(), "{:?}", pair.events);
    assert_eq!(pair.output, data);
    let stats = pair.puller.stats();
    assert_eq!(stats.missing_proofs, 1);
    assert_eq!(stats.auth_failures, 0);
    assert_eq!(stats.chunks_received, 8);
    assert_eq!(stats.chunks_rerequested, 1);
}

#[test]
fn proofless_chunks_are_accepted_when_the_puller_did_not_ask_for_proofs() {
    let data = data(8_000);
    let mut pair = Pair::with(exposure(&data, 1_000));
    pair.drive();
    assert!(pair.puller.is_complete());
    assert_eq!(pair.puller.stats().missing_proofs, 0);
}

/// `count` spoofed datagrams: every third is garbage, the rest well-formed
/// Chunk_Data for chunks of the exposure with a payload that fails the AEAD.
fn spoofed(count: usize, chunk_count: u32, chunk_size: usize) -> Vec<Vec<u8>> {
    let mut x = 0x9e37_79b9_u32;
    let mut next = move || {
        x ^= x << 13;
        x ^= x >> 17;
        x ^= x << 5;
        x
    };
    (0..count)
        .map(|i| {
            if i % 3 == 0 {
                let len = 1 + next() as usize % 1_200;
                (0..len).map(|_| next() as u8).collect()
            } else {
                let payload: Vec<u8> = (0..chunk_size + TAG_LEN).map(|_| next() as u8).collect();
                emit(&Repr::ChunkData(ChunkData {
                    exposure_id: ID,
                    chunk_index: next() % chunk_count,
                    payload: &payload,
                }))
            }
        })
        .collect()
}

//= spec/rgtp-v1.md#8.11
//# An authentication failure MUST NOT end a pull by itself, whatever their number
#[test]
fn ten_thousand_spoofed_packets_before_the_first_chunk_do_not_stop_the_pull() {
    let data = data(64_000);
    let mut pair = Pair::with(exposure(&data, 1_000));
    // Run the handshake; the first NAK is then on its way, no chunk yet.
    while pair.puller.manifest().is_none() {
        assert!(pair.step());
    }
    assert_eq!(pair.puller.stats().chunks_received, 0);
    pair.inject_to_puller(spoofed(10_000, 64, 1_000));
    pair.drive();

    assert!(pair.puller.is_complete(), "{:?}", pair.events);
    assert_eq!(pair.output, data);
    let stats = pair.puller.stats();
    assert!(stats.auth_failures > 6_000, "{stats:?}");
    assert!(stats.malformed > 3_000, "{stats:?}");
    assert_eq!(stats.chunks_received, 64);
}

//= spec/rgtp-v1.md#8.11
//# the pull fails with AuthFailed when the idle timeout passes with AEAD failures
//# and no chunk accepted
#[test]
fn wrong_key_is_reported_as_an_authentication_failure_within_the_idle_timeout() {
    let mut cfg = Pair::puller_config();
    cfg.key = Key::from_bytes([0x43; 32]);
    cfg.idle_timeout = Duration::from_secs(3);
    let mut pair = Pair::new(
        exposure(&data(64_000), 1_000),
        ExposerConfig::default(),
        cfg,
    );
    while pair.puller.manifest().is_none() {
        assert!(pair.step());
    }
    let accepted_at = pair.now;
    pair.drive();
    assert_eq!(
        pair.events.last(),
        Some(&PullerEvent::Failed(PullError::AuthFailed))
    );
    assert!(
        pair.now <= accepted_at + Duration::from_secs(3),
        "{:?}",
        pair.now
    );
    let stats = pair.puller.stats();
    assert!(stats.auth_failures > 0);
    assert_eq!(stats.chunks_received, 0);
}

#[test]
fn a_manifest_larger_than_the_limit_is_refused() {
    let mut cfg = Pair::puller_config();
    cfg.max_total_size = 7_999;
    let mut pair = Pair::new(exposure(&data(8_000), 1_000), ExposerConfig::default(), cfg);
    pair.drive();
    assert_eq!(
        pair.events,
        [PullerEvent::Failed(PullError::TooLarge {
            declared: 8_000,
            limit: 7_999
        })]
    );
    assert!(pair.now <= Instant::ZERO + Duration::from_secs(5));
    assert!(pair.output.is_empty());
}
