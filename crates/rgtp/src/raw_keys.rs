//! The process-wide registry of chunk keys that sealed an exposure.
//!
//! Chunk `i` is sealed under the chunk key and the nonce `i` (spec §6.2), so a
//! second exposure under the same chunk key would reuse every nonce. That
//! happens with a raw key used twice
//! ([`ExposerBuilder::dangerous_raw_key`](crate::builder::ExposerBuilder::dangerous_raw_key)),
//! and with a derived key when a caller gives the same key and Exposure_ID
//! twice ([`ExposerBuilder::with_exposure_id`](crate::builder::ExposerBuilder::with_exposure_id)):
//! HKDF(key, Exposure_ID) is then the same key. The registry remembers a
//! fingerprint of each chunk key and refuses it for any other exposure. The one
//! exception is the same plaintext chunked and sealed the same way (same chunk
//! size, cipher, hash and Merkle root; an exposer rebuilt from a recording, spec
//! §16): its ciphertext is byte-identical, so nothing new is revealed.
//!
//! It never holds a key: the fingerprint is HKDF-SHA256 keyed with a secret
//! drawn once per process, so it cannot be checked against a guessed key
//! outside this process, and it is only compared for equality. Each exposure
//! costs one entry (about 100 bytes) for the life of the process.

use std::collections::HashMap;
use std::sync::{Mutex, OnceLock};

use hkdf::Hkdf;
use rgtp_proto::{CipherId, Exposure, HashId, Key};
use rgtp_wire::Hash;
use sha2::Sha256;

/// HKDF-SHA256 `info` of the fingerprint.
const FINGERPRINT_INFO: &[u8] = b"rgtp raw key fingerprint";

/// A keyed hash of a key; says nothing about the key outside this process.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub(crate) struct Fingerprint([u8; 32]);

/// What a raw key sealed: equal values mean byte-identical ciphertext.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Sealed {
    chunk_size: u32,
    cipher: CipherId,
    hash: HashId,
    root: Hash,
}

impl Sealed {
    fn of(x: &Exposure) -> Self {
        let suite = x.suite();
        Sealed {
            chunk_size: x.chunk_size(),
            cipher: suite.cipher,
            hash: suite.hash,
            root: x.root(),
        }
    }
}

struct Registry {
    secret: Key,
    seen: HashMap<Fingerprint, Sealed>,
}

fn registry() -> &'static Mutex<Registry> {
    static REGISTRY: OnceLock<Mutex<Registry>> = OnceLock::new();
    REGISTRY.get_or_init(|| {
        Mutex::new(Registry {
            secret: rgtp_providers::cipher::random_key(),
            seen: HashMap::new(),
        })
    })
}

fn fingerprint(secret: &Key, key: &Key) -> Fingerprint {
    let mut out = [0u8; 32];
    Hkdf::<Sha256>::new(Some(secret.as_bytes()), key.as_bytes())
        .expand(FINGERPRINT_INFO, &mut out)
        .expect("32 bytes is a valid HKDF-SHA256 output length");
    Fingerprint(out)
}

/// A chunk key that already sealed other data in this process.
#[derive(Debug, PartialEq, Eq)]
pub(crate) struct Reused;

/// Records that chunk key `key` sealed `exposure`; [`Reused`] if it already
/// sealed anything else (the builder reports `StartError::RawKeyReused` or
/// `StartError::ExposureIdReused`).
pub(crate) fn claim(key: &Key, exposure: &Exposure) -> Result<(), Reused> {
    let sealed = Sealed::of(exposure);
    let mut r = registry().lock().unwrap_or_else(|e| e.into_inner());
    let f = fingerprint(&r.secret, key);
    match r.seen.get(&f) {
        Some(prev) if *prev != sealed => Err(Reused),
        Some(_) => Ok(()),
        None => {
            r.seen.insert(f, sealed);
            Ok(())
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[cfg(all(feature = "aead-aes-gcm", feature = "hash-sha256"))]
    fn exposure(data: &[u8], chunk_size: u32) -> Exposure {
        let cipher = rgtp_providers::AnyCipher::new(CipherId::Aes256Gcm, &Key::from_bytes([9; 32]))
            .expect("cipher");
        let hash = rgtp_providers::AnyHash::new(HashId::Sha256).expect("hash");
        let fec = rgtp_providers::AnyFec::new(rgtp_proto::FecParams::NONE).expect("fec");
        let kind = rgtp_proto::KeyMode::Raw;
        Exposure::build([0; 16], data, chunk_size, &cipher, kind, &hash, &fec, false)
            .expect("exposure")
    }

    #[test]
    #[cfg(all(feature = "aead-aes-gcm", feature = "hash-sha256"))]
    fn a_key_seals_one_thing_only() {
        let key = Key::from_bytes([0x5c; 32]);
        let a = exposure(b"first file", 4);
        claim(&key, &a).expect("first claim");
        // The same bytes the same way: identical ciphertext, allowed.
        claim(&key, &exposure(b"first file", 4)).expect("identical reseal");
        for other in [exposure(b"other file", 4), exposure(b"first file", 5)] {
            assert!(matches!(claim(&key, &other), Err(Reused)));
        }
        claim(&Key::from_bytes([0x5d; 32]), &exposure(b"other file", 4)).expect("other key");
    }

    #[test]
    fn fingerprints_are_keyed() {
        let key = Key::from_bytes([1; 32]);
        let a = fingerprint(&Key::from_bytes([2; 32]), &key);
        let b = fingerprint(&Key::from_bytes([3; 32]), &key);
        assert_ne!(a, b);
        assert_ne!(a.0, *key.as_bytes());
    }
}
