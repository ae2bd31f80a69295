//! The AEAD suites on ring's assembly: AES-256-GCM (AES-NI or VAES with
//! carry-less-multiply GHASH) and ChaCha20-Poly1305 (SIMD), byte-identical to
//! the RustCrypto backend — same nonce rule, no associated data, 16-byte tag —
//! and several times faster per chunk on x86-64 and aarch64.
//!
//! Key hygiene: ring keeps its expanded key (AES round keys, the GHASH key
//! table) inline in the key object and does not wipe it on drop. This suite
//! keeps that object in its own heap allocation and overwrites every byte of
//! it when the suite is dropped, so the backend leaves no more behind than
//! the RustCrypto one does.

use core::fmt;
use core::mem::{ManuallyDrop, MaybeUninit};

use rgtp_proto::crypto::{chunk_nonce, AeadError, CipherId, CipherSuite, Key, TAG_LEN};
use ring::aead::{Aad, LessSafeKey, Nonce, Tag, UnboundKey, AES_256_GCM, CHACHA20_POLY1305};
use zeroize::Zeroize;

/// One keyed ring AEAD sealing chunks under their index nonce with empty AAD.
pub struct RingSuite {
    id: CipherId,
    /// Never moved out of its box, so the wipe on drop covers the only copy.
    key: Box<ManuallyDrop<LessSafeKey>>,
}

impl RingSuite {
    /// Expands `key` for suite `id`; `None` for a suite ring does not have
    /// (the null cipher).
    pub fn new(id: CipherId, key: &Key) -> Option<RingSuite> {
        let algorithm = match id {
            CipherId::Aes256Gcm => &AES_256_GCM,
            CipherId::ChaCha20Poly1305 => &CHACHA20_POLY1305,
            _ => return None,
        };
        // Both algorithms take exactly 32 bytes, so this cannot fail.
        let unbound = UnboundKey::new(algorithm, key.as_bytes()).ok()?;
        Some(RingSuite {
            id,
            key: Box::new(ManuallyDrop::new(LessSafeKey::new(unbound))),
        })
    }
}

impl Clone for RingSuite {
    fn clone(&self) -> Self {
        RingSuite {
            id: self.id,
            key: Box::new(ManuallyDrop::new(LessSafeKey::clone(&self.key))),
        }
    }
}

impl Drop for RingSuite {
    #[allow(unsafe_code)]
    fn drop(&mut self) {
        let slot: *mut ManuallyDrop<LessSafeKey> = &mut *self.key;
        // SAFETY: the key is dropped exactly once, here, and never used again;
        // afterwards its bytes are only overwritten through `MaybeUninit<u8>`
        // (valid for any, even uninitialised, memory) before the box frees the
        // allocation without running a destructor (`ManuallyDrop`).
        unsafe {
            ManuallyDrop::drop(&mut *slot);
            core::slice::from_raw_parts_mut(
                slot.cast::<MaybeUninit<u8>>(),
                core::mem::size_of::<ManuallyDrop<LessSafeKey>>(),
            )
            .zeroize();
        }
    }
}

impl fmt::Debug for RingSuite {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "RingSuite({}, <key redacted>)", self.id.name())
    }
}

impl CipherSuite for RingSuite {
    fn id(&self) -> CipherId {
        self.id
    }

    fn seal(&self, chunk_index: u32, data: &mut [u8]) -> Result<[u8; TAG_LEN], AeadError> {
        let nonce = Nonce::assume_unique_for_key(chunk_nonce(chunk_index));
        let tag = self
            .key
            .seal_in_place_separate_tag(nonce, Aad::empty(), data)
            .map_err(|_| AeadError)?;
        let mut out = [0u8; TAG_LEN];
        out.copy_from_slice(tag.as_ref());
        Ok(out)
    }

    fn open(
        &self,
        chunk_index: u32,
        data: &mut [u8],
        tag: &[u8; TAG_LEN],
    ) -> Result<(), AeadError> {
        let nonce = Nonce::assume_unique_for_key(chunk_nonce(chunk_index));
        let tag = Tag::from(*tag);
        self.key
            .open_in_place_separate_tag(nonce, Aad::empty(), tag, data, 0..)
            .map(|_| ())
            .map_err(|_| AeadError)
    }
}
