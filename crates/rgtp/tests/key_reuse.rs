//! One key, many exposures (spec §6.6): each exposure seals under its own key
//! derived from the key and the Exposure_ID, so two exposures never share a
//! keystream; the upstream-compatible raw-key mode refuses a key twice; pullers
//! take the key the Manifest names, over the simulator and over loopback UDP.

mod common;

use std::time::Duration;

use rgtp::sim::{simulate, EXPOSER};
use rgtp::{ExposerBuilder, Prepared, StartError};
use rgtp_link::impair::ImpairmentConfig;
use rgtp_link::mem::SimNet;
use rgtp_proto::crypto::{derive_chunk_key, TAG_LEN};
use rgtp_proto::{CipherId, HashId, Key, KeyMode, PullerConfig};
use rgtp_wire::ManifestFlags;

const CHUNK: usize = 1200;

fn xor(a: &[u8], b: &[u8]) -> Vec<u8> {
    a.iter().zip(b).map(|(x, y)| x ^ y).collect()
}

/// Chunk 0's ciphertext without its tag.
fn ct0(p: &Prepared) -> Vec<u8> {
    let c = p.exposure.ciphertext(0);
    c[..c.len() - TAG_LEN].to_vec()
}

fn builder(cipher: CipherId) -> ExposerBuilder {
    ExposerBuilder::new()
        .with_cipher(cipher)
        .with_hash(HashId::Sha256)
        .with_chunk_size(CHUNK as u32)
}

#[test]
fn two_exposures_under_one_key_share_no_keystream() {
    let key = Key::from_bytes([0x3c; 32]);
    let (a, b) = (common::data(3 * CHUNK, 1), common::data(3 * CHUNK, 2));
    for cipher in [CipherId::Aes256Gcm, CipherId::ChaCha20Poly1305] {
        let pa = builder(cipher).with_key(key.clone()).expose(&a).unwrap();
        let pb = builder(cipher).with_key(key.clone()).expose(&b).unwrap();
        // Both tickets carry the one key; the chunks are sealed under two others.
        assert_eq!(pa.key, key);
        assert_eq!(pb.key, key);
        let (ka, kb) = (
            derive_chunk_key(&key, pa.exposure.id()),
            derive_chunk_key(&key, pb.exposure.id()),
        );
        assert_ne!(ka, kb, "{cipher:?}: derived keys differ");
        assert_ne!(ka, key);
        assert_eq!(pa.exposure.suite().key_mode, KeyMode::Derived);
        assert!(pa
            .exposure
            .manifest()
            .flags
            .contains(ManifestFlags::DERIVED_KEY));
        // With a shared keystream the XOR of the ciphertexts would be the XOR of
        // the plaintexts.
        assert_ne!(
            xor(&ct0(&pa), &ct0(&pb)),
            xor(&a[..CHUNK], &b[..CHUNK]),
            "{cipher:?}: chunk 0 of both exposures shares a keystream"
        );
    }
}

#[test]
fn raw_key_mode_refuses_a_key_it_already_used() {
    let key = Key::from_bytes([0xa7; 32]);
    let (a, b) = (common::data(2 * CHUNK, 3), common::data(2 * CHUNK, 4));
    let raw = || {
        builder(CipherId::Aes256Gcm)
            .with_key(key.clone())
            .dangerous_raw_key()
    };
    let pa = raw().expose(&a).unwrap();
    assert_eq!(pa.exposure.suite().key_mode, KeyMode::Raw);
    assert!(!pa
        .exposure
        .manifest()
        .flags
        .contains(ManifestFlags::DERIVED_KEY));
    let err = raw().expose(&b).err().expect("a reused raw key is refused");
    assert!(matches!(err, StartError::RawKeyReused), "{err:?}");
    assert!(err.to_string().contains("reuse every nonce"), "{err}");
    // The same data again (an exposer rebuilt from a recording) is byte-identical.
    let again = raw().expose(&a).unwrap();
    assert_eq!(again.exposure.ciphertext(0), pa.exposure.ciphertext(0));
    // The derived mode takes the same key as often as asked.
    builder(CipherId::Aes256Gcm)
        .with_key(key.clone())
        .expose(&b)
        .unwrap();
}

#[test]
fn a_key_and_exposure_id_given_twice_seal_one_content_only() {
    let key = Key::from_bytes([0xb8; 32]);
    let id = *b"caller-chosen-id";
    let (a, b) = (common::data(2 * CHUNK, 5), common::data(2 * CHUNK, 6));
    let fixed = || {
        builder(CipherId::Aes256Gcm)
            .with_key(key.clone())
            .with_exposure_id(id)
    };
    let pa = fixed().expose(&a).unwrap();
    assert_eq!(pa.exposure.suite().key_mode, KeyMode::Derived);
    let err = fixed()
        .expose(&b)
        .err()
        .expect("other data under the same key and Exposure_ID is refused");
    assert!(matches!(err, StartError::ExposureIdReused), "{err:?}");
    assert!(err.to_string().contains("Exposure_ID"), "{err}");
    // The same data the same way again (an exposer rebuilt from a recording) is allowed.
    fixed().expose(&a).unwrap();
    // A harness playing a key holder may opt out, by a dangerous_ name.
    fixed().dangerous_allow_key_reuse().expose(&b).unwrap();
    // Another Exposure_ID derives another chunk key.
    builder(CipherId::Aes256Gcm)
        .with_key(key.clone())
        .with_exposure_id(*b"another-chosenid")
        .expose(&b)
        .unwrap();
}

fn sim_pull(p: &Prepared) -> Vec<u8> {
    let mut c = PullerConfig::new(*p.exposure.id(), EXPOSER, p.key.clone());
    c.idle_timeout = Duration::from_secs(30);
    let net = SimNet::new(ImpairmentConfig::default().with_loss(0.05), 9);
    let r = simulate(p, vec![c], net, Duration::from_secs(600));
    match &r.pullers[0].result {
        Ok(out) => out.clone(),
        Err(e) => panic!("pull failed: {e}"),
    }
}

#[test]
fn puller_pulls_derived_and_raw_key_exposures() {
    let data = common::data(200_000, 5);
    let key = Key::from_bytes([0x11; 32]);
    for cipher in [CipherId::Aes256Gcm, CipherId::ChaCha20Poly1305] {
        let derived = builder(cipher).with_key(key.clone()).expose(&data).unwrap();
        assert!(sim_pull(&derived) == data, "{cipher:?} derived");
        let raw = builder(cipher).dangerous_raw_key().expose(&data).unwrap();
        assert!(sim_pull(&raw) == data, "{cipher:?} raw");
    }
    // Over loopback UDP, the upstream suite in both modes.
    for raw in [false, true] {
        let link = common::loopback(false);
        let mut b = ExposerBuilder::upstream();
        if raw {
            b = b.dangerous_raw_key();
        }
        let prepared = common::prepare(b, &link, &data);
        let flags = prepared.exposure.manifest().flags;
        assert_eq!(flags.is_empty(), raw, "upstream suite flags {flags:?}");
        let server = common::Server::start(&prepared, link);
        let (out, stats) = common::pull(&prepared, server.addr, |_| {});
        server.stop();
        assert!(out.unwrap() == data, "udp raw={raw}");
        assert_eq!(stats.auth_failures, 0);
    }
}
