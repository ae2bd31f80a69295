//! Property tests for the AEAD suites and the chunk nonce.

use proptest::prelude::*;
use rgtp_proto::crypto::{chunk_nonce, AeadError, CipherId, CipherSuite, Key, TAG_LEN};
use rgtp_providers::cipher::{
    random_exposure_id, random_key, AeadSuite, Aes256GcmSuite, ChaCha20Poly1305Suite,
};
use rgtp_providers::{AnyCipher, Backend};

const SUITES: [CipherId; 2] = [CipherId::ChaCha20Poly1305, CipherId::Aes256Gcm];

fn suite(id: CipherId, key: [u8; 32]) -> AnyCipher {
    AnyCipher::new(id, &Key::from_bytes(key)).expect("a real suite")
}

fn any_suite() -> impl Strategy<Value = CipherId> {
    prop::sample::select(SUITES.to_vec())
}

/// Seals `plaintext` and returns `ciphertext ‖ tag` split.
fn seal(c: &AnyCipher, index: u32, plaintext: &[u8]) -> (Vec<u8>, [u8; TAG_LEN]) {
    let mut data = plaintext.to_vec();
    let tag = c
        .seal(index, &mut data)
        .expect("seal never fails for these sizes");
    (data, tag)
}

fn open(c: &AnyCipher, index: u32, ct: &[u8], tag: &[u8; TAG_LEN]) -> Result<Vec<u8>, AeadError> {
    let mut data = ct.to_vec();
    c.open(index, &mut data, tag).map(|()| data)
}

proptest! {
    #[test]
    fn round_trip(
        id in any_suite(),
        key in any::<[u8; 32]>(),
        index in any::<u32>(),
        plaintext in prop::collection::vec(any::<u8>(), 0..4096),
    ) {
        let c = suite(id, key);
        prop_assert_eq!(c.id(), id);
        let (ct, tag) = seal(&c, index, &plaintext);
        prop_assert_eq!(ct.len(), plaintext.len());
        if plaintext.len() >= 16 {
            prop_assert_ne!(&ct, &plaintext);
        }
        prop_assert_eq!(open(&c, index, &ct, &tag), Ok(plaintext));
    }

    #[test]
    fn any_flipped_bit_fails(
        id in any_suite(),
        key in any::<[u8; 32]>(),
        index in any::<u32>(),
        plaintext in prop::collection::vec(any::<u8>(), 0..4096),
        bit in any::<prop::sample::Index>(),
    ) {
        let c = suite(id, key);
        let (mut ct, mut tag) = seal(&c, index, &plaintext);
        let bit = bit.index(8 * (ct.len() + TAG_LEN));
        let (byte, mask) = (bit / 8, 1u8 << (bit % 8));
        if byte < ct.len() {
            ct[byte] ^= mask;
        } else {
            tag[byte - ct.len()] ^= mask;
        }
        prop_assert_eq!(open(&c, index, &ct, &tag), Err(AeadError));
    }

    #[test]
    fn other_index_or_key_or_suite_fails(
        id in any_suite(),
        key in any::<[u8; 32]>(),
        other_key in any::<[u8; 32]>(),
        index in any::<u32>(),
        other_index in any::<u32>(),
        plaintext in prop::collection::vec(any::<u8>(), 0..2048),
    ) {
        let c = suite(id, key);
        let (ct, tag) = seal(&c, index, &plaintext);
        if other_index != index {
            prop_assert_eq!(open(&c, other_index, &ct, &tag), Err(AeadError));
        }
        if other_key != key {
            prop_assert_eq!(open(&suite(id, other_key), index, &ct, &tag), Err(AeadError));
        }
        let other_id = if id == CipherId::Aes256Gcm {
            CipherId::ChaCha20Poly1305
        } else {
            CipherId::Aes256Gcm
        };
        prop_assert_eq!(open(&suite(other_id, key), index, &ct, &tag), Err(AeadError));
    }

    #[test]
    fn nonce_is_distinct_per_index(a in any::<u32>(), b in any::<u32>()) {
        prop_assert_eq!(chunk_nonce(a) == chunk_nonce(b), a == b);
    }

    #[test]
    fn nonce_matches_spec_layout(index in any::<u32>()) {
        let n = chunk_nonce(index);
        prop_assert_eq!(&n[..4], &index.to_le_bytes()[..]);
        prop_assert_eq!(&n[4..], &[0u8; 8][..]);
    }
}

/// Every single-bit flip of a short sealed chunk (ciphertext and tag) fails,
/// exhaustively, for both suites.
#[test]
fn every_flipped_bit_fails_exhaustively() {
    for id in SUITES {
        let c = suite(id, [0x42; 32]);
        let plaintext: Vec<u8> = (0..48u8).collect();
        let (ct, tag) = seal(&c, 7, &plaintext);
        let mut sealed = ct.clone();
        sealed.extend_from_slice(&tag);
        for bit in 0..8 * sealed.len() {
            let mut bad = sealed.clone();
            bad[bit / 8] ^= 1 << (bit % 8);
            let (bad_ct, bad_tag) = bad.split_at(ct.len());
            let bad_tag: [u8; TAG_LEN] = bad_tag.try_into().unwrap();
            assert_eq!(
                open(&c, 7, bad_ct, &bad_tag),
                Err(AeadError),
                "{id:?} bit {bit}"
            );
        }
    }
}

#[test]
fn nonce_spec_examples() {
    assert_eq!(chunk_nonce(0), [0; 12]);
    assert_eq!(chunk_nonce(1), [1, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0]);
    assert_eq!(
        chunk_nonce(0x0102_0304),
        [4, 3, 2, 1, 0, 0, 0, 0, 0, 0, 0, 0]
    );
    assert_eq!(
        chunk_nonce(u32::MAX),
        [0xff, 0xff, 0xff, 0xff, 0, 0, 0, 0, 0, 0, 0, 0]
    );
}

#[test]
fn null_cipher_is_not_constructible() {
    assert!(AnyCipher::new(CipherId::Null, &Key::from_bytes([0; 32])).is_none());
}

#[test]
fn generic_and_any_agree() {
    let key = Key::from_bytes([9; 32]);
    let pt = b"the same bytes under both paths".to_vec();
    let direct: [Box<dyn CipherSuite>; 2] = [
        Box::new(ChaCha20Poly1305Suite::new(&key)),
        Box::new(Aes256GcmSuite::new(&key)),
    ];
    for d in direct {
        let any = AnyCipher::new(d.id(), &key).unwrap();
        let (mut a, mut b) = (pt.clone(), pt.clone());
        assert_eq!(d.seal(3, &mut a), any.seal(3, &mut b));
        assert_eq!(a, b);
    }
}

#[test]
fn ring_backend_is_built_by_default_and_preferred() {
    assert!(Backend::Ring.built(), "aead-ring is a default feature");
    assert_eq!(Backend::preferred(), Backend::Ring);
    let key = Key::from_bytes([5; 32]);
    for id in SUITES {
        assert_eq!(AnyCipher::new(id, &key).unwrap().backend(), Backend::Ring);
    }
    for b in Backend::ALL {
        assert_eq!(Backend::from_name(b.name()), Some(b));
    }
    assert_eq!(Backend::from_name("openssl"), None);
}

proptest! {
    /// The backends are interchangeable: what one seals the other opens, the
    /// tags are equal, and a flipped bit fails on both.
    #[test]
    fn backends_agree(
        id in any_suite(),
        key in any::<[u8; 32]>(),
        index in any::<u32>(),
        plaintext in prop::collection::vec(any::<u8>(), 0..2048),
        flip in any::<prop::sample::Index>(),
    ) {
        let key = Key::from_bytes(key);
        let ring = AnyCipher::with_backend(id, Backend::Ring, &key).unwrap();
        let rc = AnyCipher::with_backend(id, Backend::RustCrypto, &key).unwrap();
        let (ct_ring, tag_ring) = seal(&ring, index, &plaintext);
        let (ct_rc, tag_rc) = seal(&rc, index, &plaintext);
        prop_assert_eq!(&ct_ring, &ct_rc);
        prop_assert_eq!(tag_ring, tag_rc);
        prop_assert_eq!(open(&rc, index, &ct_ring, &tag_ring).unwrap(), plaintext.clone());
        prop_assert_eq!(open(&ring, index, &ct_rc, &tag_rc).unwrap(), plaintext);
        let mut bad = ct_ring.clone();
        bad.extend_from_slice(&tag_ring);
        let i = flip.index(bad.len());
        bad[i] ^= 1;
        let (ct, tag) = bad.split_at(bad.len() - TAG_LEN);
        let tag: [u8; TAG_LEN] = tag.try_into().unwrap();
        prop_assert_eq!(open(&ring, index, ct, &tag), Err(AeadError));
        prop_assert_eq!(open(&rc, index, ct, &tag), Err(AeadError));
    }
}

#[test]
fn ring_suites_clone_and_drop_independently() {
    let key = Key::from_bytes([7; 32]);
    let a = AnyCipher::with_backend(CipherId::Aes256Gcm, Backend::Ring, &key).unwrap();
    let b = a.clone();
    let (ct, tag) = seal(&a, 1, b"clone me");
    drop(a);
    assert_eq!(open(&b, 1, &ct, &tag).unwrap(), b"clone me");
}

#[test]
fn debug_does_not_print_key_material() {
    let key = Key::from_bytes([0xab; 32]);
    let s = format!(
        "{:?} {:?} {:?}",
        AnyCipher::new(CipherId::ChaCha20Poly1305, &key).unwrap(),
        AnyCipher::with_backend(CipherId::Aes256Gcm, Backend::RustCrypto, &key).unwrap(),
        AeadSuite::<aes_gcm::Aes256Gcm>::new(&key)
    );
    assert!(
        !s.to_lowercase().contains("ab, ") && !s.contains("171"),
        "{s}"
    );
    assert!(s.contains("redacted"));
}

#[test]
fn random_keys_and_ids_differ() {
    assert_ne!(random_key(), random_key());
    assert_ne!(random_exposure_id(), random_exposure_id());
    assert_ne!(random_exposure_id(), [0u8; 16]);
}
