//! `chunk_key`: the chunk key an exposure seals under (spec §6.6), HKDF-derived or raw.
//!
//! For an arbitrary key and Exposure_ID: the raw mode is the key itself; the derived
//! mode is `derive_chunk_key`, depends on both inputs and is not the key; a Manifest
//! announces `DERIVED_KEY` exactly for the derived mode and reads back the same mode.
//! Then a small exposure is sealed in the mode the input picks and a puller is given
//! its Manifest, possibly with the `DERIVED_KEY` flag flipped (an attacker's or a
//! confused peer's): whatever the puller opens, it hands out only the real plaintext.

use arbitrary::{Arbitrary, Unstructured};
use rgtp::DynSuite;
use rgtp_proto::crypto::derive_chunk_key;
use rgtp_proto::{
    CipherId, Exposure, FecParams, HashId, Instant, Key, KeyMode, Peer, Puller, PullerConfig,
    SuiteId,
};
use rgtp_providers::{AnyCipher, AnyFec, AnyHash};
use rgtp_wire::{ChunkData, ManifestFlags, Repr};

use crate::fixtures;

const EXPOSER: Peer = Peer::Mem(1);

#[derive(Debug, Arbitrary)]
struct Input {
    key: [u8; 32],
    id: [u8; 16],
    other_id: [u8; 16],
    derived: bool,
    aes: bool,
    flip_flag: bool,
    data: Vec<u8>,
    chunk_size: u8,
}

/// See the module documentation.
pub fn chunk_key(data: &[u8]) {
    let Ok(i) = Input::arbitrary(&mut Unstructured::new(data)) else {
        return;
    };
    let key = Key::from_bytes(i.key);
    assert_eq!(
        KeyMode::Raw.chunk_key(&key, &i.id).as_bytes(),
        key.as_bytes(),
        "the raw mode is the key itself"
    );
    let derived = KeyMode::Derived.chunk_key(&key, &i.id);
    assert_eq!(derived.as_bytes(), derive_chunk_key(&key, &i.id).as_bytes());
    assert_ne!(
        derived.as_bytes(),
        key.as_bytes(),
        "a derived key is not the key"
    );
    if i.other_id != i.id {
        assert_ne!(
            derived.as_bytes(),
            derive_chunk_key(&key, &i.other_id).as_bytes(),
            "two Exposure_IDs derive one key"
        );
    }

    let mode = if i.derived {
        KeyMode::Derived
    } else {
        KeyMode::Raw
    };
    let cipher_id = if i.aes {
        CipherId::Aes256Gcm
    } else {
        CipherId::ChaCha20Poly1305
    };
    let chunk_size = u32::from(i.chunk_size.max(1));
    let data = &i.data[..i.data.len().min(512)];
    let cipher = AnyCipher::new(cipher_id, &mode.chunk_key(&key, &i.id)).expect("cipher");
    let hash = AnyHash::new(HashId::Sha256).expect("hash");
    let fec = AnyFec::new(FecParams::NONE).expect("fec");
    let Ok(x) = Exposure::build(i.id, data, chunk_size, &cipher, mode, &hash, &fec, false) else {
        return;
    };
    let mut m = x.manifest();
    assert_eq!(m.flags.contains(ManifestFlags::DERIVED_KEY), i.derived);
    assert_eq!(SuiteId::from_manifest(&m).expect("suite").key_mode, mode);

    let now = Instant::from_millis(1);
    let mut puller = Puller::new(PullerConfig::new(i.id, EXPOSER, key), DynSuite, now);
    let mut buf = Vec::new();
    while puller.poll_transmit(now, &mut buf).is_some() {}
    if i.flip_flag {
        m.flags ^= ManifestFlags::DERIVED_KEY;
    }
    let mut d = fixtures::emit(&Repr::Manifest(m));
    puller.handle_datagram(now, EXPOSER, &mut d);
    for c in 0..x.chunk_count() {
        let mut d = fixtures::emit(&Repr::ChunkData(ChunkData {
            exposure_id: i.id,
            chunk_index: c,
            payload: x.ciphertext(c),
        }));
        if let Some(got) = puller.handle_datagram(now, EXPOSER, &mut d) {
            assert!(!i.flip_flag, "a chunk opened under the wrong chunk key");
            let at = got.index as usize * chunk_size as usize;
            assert!(
                got.data == &data[at..at + got.data.len()],
                "chunk {c} differs"
            );
        }
    }
}
