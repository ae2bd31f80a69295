//! The cipher-suite layer: one AEAD key per exposure, one nonce per chunk.
//!
//! Chunks are sealed with no associated data under the nonce
//! `chunk_index as little-endian u32 ‖ 8 zero bytes` (spec §6.2), so that v1
//! ciphertexts are byte-identical across implementations. On the wire a chunk
//! payload is `ciphertext ‖ tag`.
//!
//! Because the nonce is only the chunk index, a key sealing two exposures would
//! reuse every nonce. So the key a ticket carries is not the AEAD key: by default
//! each exposure seals under [`derive_chunk_key`]`(key, Exposure_ID)` and says so
//! with the Manifest flag `DERIVED_KEY` ([`KeyMode::Derived`], spec §6.6). Sealing
//! under the ticket key itself ([`KeyMode::Raw`]) is what upstream v1 peers expect.

use core::fmt;

use hkdf::Hkdf;
use rgtp_wire::ExposureId;
use sha2::Sha256;
use subtle::ConstantTimeEq;
use zeroize::{Zeroize, ZeroizeOnDrop};

/// AEAD tag length of every suite we define.
pub const TAG_LEN: usize = 16;
/// Key length of every suite we define.
pub const KEY_LEN: usize = 32;
/// Nonce length of every suite we define.
pub const NONCE_LEN: usize = 12;

/// The nonce for a chunk: its index little-endian, then eight zero bytes.
pub fn chunk_nonce(chunk_index: u32) -> [u8; NONCE_LEN] {
    let mut n = [0u8; NONCE_LEN];
    n[..4].copy_from_slice(&chunk_index.to_le_bytes());
    n
}

/// A 256-bit exposure key. Zeroized on drop, compared in constant time, never printed.
#[derive(Clone, Zeroize, ZeroizeOnDrop)]
pub struct Key([u8; KEY_LEN]);

impl Key {
    /// Wraps raw key bytes.
    pub fn from_bytes(bytes: [u8; KEY_LEN]) -> Self {
        Key(bytes)
    }

    /// The raw bytes (for tickets and out-of-band export only).
    pub fn as_bytes(&self) -> &[u8; KEY_LEN] {
        &self.0
    }
}

impl PartialEq for Key {
    fn eq(&self, other: &Self) -> bool {
        self.0.ct_eq(&other.0).into()
    }
}

impl Eq for Key {}

impl fmt::Debug for Key {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Key(<redacted>)")
    }
}

/// HKDF-SHA256 `info` of the chunk-key derivation (spec §6.6): 17 ASCII bytes.
pub const CHUNK_KEY_INFO: &[u8] = b"rgtp-v1 chunk key";

/// The AEAD key of exposure `id` under the ticket key `key` (spec §6.6):
///
/// ```text
/// chunk_key = HKDF-SHA256(IKM = key, salt = Exposure_ID, info = "rgtp-v1 chunk key", L = 32)
/// ```
///
/// Distinct Exposure_IDs give independent keys, so two exposures under one ticket
/// key never share a (key, nonce) pair. The result zeroizes itself like any [`Key`].
pub fn derive_chunk_key(key: &Key, id: &ExposureId) -> Key {
    let hk = Hkdf::<Sha256>::new(Some(id), key.as_bytes());
    let mut out = [0u8; KEY_LEN];
    hk.expand(CHUNK_KEY_INFO, &mut out)
        .expect("32 bytes is a valid HKDF-SHA256 output length");
    let k = Key(out);
    out.zeroize();
    k
}

/// HKDF info string of [`stable_exposure_id`].
pub const STABLE_ID_INFO: &[u8] = b"redgiant stable exposure id";

/// The Exposure_ID an exposer derives for one content under one key (spec §6.1), so
/// that an exposer restarted with the same file and key serves the same exposure and
/// pullers resume: HKDF-SHA256 with the ticket key as input keying material, salt
/// `Merkle_Root ‖ Total_Size (u64 BE) ‖ Chunk_Size (u32 BE) ‖ cipher name`, info
/// [`STABLE_ID_INFO`], 16 bytes. Different content, chunking or cipher give another
/// ID and so another derived chunk key; only the same plaintext sealed the same way,
/// byte for byte the same ciphertext, shares one.
pub fn stable_exposure_id(
    key: &Key,
    cipher: CipherId,
    chunk_size: u32,
    total_size: u64,
    merkle_root: &[u8; 32],
) -> ExposureId {
    let mut salt = Vec::with_capacity(32 + 8 + 4 + 24);
    salt.extend_from_slice(merkle_root);
    salt.extend_from_slice(&total_size.to_be_bytes());
    salt.extend_from_slice(&chunk_size.to_be_bytes());
    salt.extend_from_slice(cipher.name().as_bytes());
    let hk = Hkdf::<Sha256>::new(Some(&salt), key.as_bytes());
    let mut id = [0u8; 16];
    hk.expand(STABLE_ID_INFO, &mut id)
        .expect("16 bytes is a valid HKDF-SHA256 output length");
    id
}

/// Which key an exposure's chunks are sealed under: the Manifest flag
/// `DERIVED_KEY` carries it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
pub enum KeyMode {
    /// Under [`derive_chunk_key`]`(ticket key, Exposure_ID)`; flag set. Our default.
    #[default]
    Derived,
    /// Under the ticket key itself; flag clear. What upstream v1 peers expect; safe only
    /// if the key seals nothing else (spec §6.6).
    Raw,
}

impl KeyMode {
    /// The AEAD key for exposure `id` under the ticket key `key`.
    pub fn chunk_key(self, key: &Key, id: &ExposureId) -> Key {
        match self {
            KeyMode::Derived => derive_chunk_key(key, id),
            KeyMode::Raw => key.clone(),
        }
    }
}

/// Which AEAD a suite uses; this is what the Manifest flags and tickets carry.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum CipherId {
    /// ChaCha20-Poly1305 (IETF, 96-bit nonce); the upstream default.
    ChaCha20Poly1305,
    /// AES-256-GCM.
    Aes256Gcm,
    /// No confidentiality, no integrity: fuzzing and tests only.
    Null,
}

impl CipherId {
    /// Name used on the command line and in tickets.
    pub fn name(self) -> &'static str {
        match self {
            CipherId::ChaCha20Poly1305 => "chacha20-poly1305",
            CipherId::Aes256Gcm => "aes-256-gcm",
            CipherId::Null => "null",
        }
    }

    /// Parses [`CipherId::name`] (the null cipher is not selectable by name).
    pub fn from_name(s: &str) -> Option<Self> {
        match s {
            "chacha20-poly1305" | "chacha20poly1305" | "chacha" => Some(CipherId::ChaCha20Poly1305),
            "aes-256-gcm" | "aes256gcm" | "aes" => Some(CipherId::Aes256Gcm),
            _ => None,
        }
    }
}

/// AEAD failure. Deliberately carries no detail.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct AeadError;

impl fmt::Display for AeadError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("AEAD authentication failed")
    }
}

impl std::error::Error for AeadError {}

/// One keyed AEAD. Implementations hold the expanded key and zeroize it on drop.
pub trait CipherSuite: Send + Sync + 'static {
    /// Which suite this is.
    fn id(&self) -> CipherId;

    /// Encrypts `data` in place under [`chunk_nonce`]`(chunk_index)`; returns the tag.
    fn seal(&self, chunk_index: u32, data: &mut [u8]) -> Result<[u8; TAG_LEN], AeadError>;

    /// Checks `tag` and decrypts `data` in place. On error `data` must be treated as garbage.
    fn open(&self, chunk_index: u32, data: &mut [u8], tag: &[u8; TAG_LEN])
        -> Result<(), AeadError>;
}

impl<T: CipherSuite + ?Sized> CipherSuite for Box<T> {
    fn id(&self) -> CipherId {
        (**self).id()
    }
    fn seal(&self, chunk_index: u32, data: &mut [u8]) -> Result<[u8; TAG_LEN], AeadError> {
        (**self).seal(chunk_index, data)
    }
    fn open(
        &self,
        chunk_index: u32,
        data: &mut [u8],
        tag: &[u8; TAG_LEN],
    ) -> Result<(), AeadError> {
        (**self).open(chunk_index, data, tag)
    }
}

/// A cipher that provides NO SECURITY and is for fuzzing and tests only:
/// the "ciphertext" is the plaintext and the tag is a checksum of it.
#[cfg(any(test, feature = "testing"))]
#[derive(Debug, Clone, Copy, Default)]
pub struct NullCipher;

#[cfg(any(test, feature = "testing"))]
impl NullCipher {
    fn tag(chunk_index: u32, data: &[u8]) -> [u8; TAG_LEN] {
        let mut t = [0u8; TAG_LEN];
        t[..4].copy_from_slice(&chunk_index.to_le_bytes());
        for (i, b) in data.iter().enumerate() {
            t[4 + i % 12] ^= b.rotate_left((i / 12) as u32 % 8);
        }
        t
    }
}

#[cfg(any(test, feature = "testing"))]
impl CipherSuite for NullCipher {
    fn id(&self) -> CipherId {
        CipherId::Null
    }
    fn seal(&self, chunk_index: u32, data: &mut [u8]) -> Result<[u8; TAG_LEN], AeadError> {
        Ok(Self::tag(chunk_index, data))
    }
    fn open(
        &self,
        chunk_index: u32,
        data: &mut [u8],
        tag: &[u8; TAG_LEN],
    ) -> Result<(), AeadError> {
        if bool::from(Self::tag(chunk_index, data).ct_eq(tag)) {
            Ok(())
        } else {
            Err(AeadError)
        }
    }
}

/// The [`NullCipher`] under the name of a real suite, keyed: a testing cipher that
/// provides NO SECURITY and is for fuzzing and tests only.
///
/// A Manifest cannot signal the null cipher, so an exposure sealed with
/// [`NullCipher`] cannot be served. This one reports the [`CipherId`] it stands in
/// for, so that an exposure sealed with it is announced as that suite. Its
/// "ciphertext" is the plaintext; its tag is [`NullCipher`]'s checksum masked with the
/// key, so that a changed byte or a wrong key fails [`CipherSuite::open`]. Only a peer
/// using this type can open what it seals.
#[cfg(any(test, feature = "testing"))]
#[derive(Clone)]
pub struct NullCipherAs {
    id: CipherId,
    mask: [u8; TAG_LEN],
}

#[cfg(any(test, feature = "testing"))]
impl NullCipherAs {
    /// The null cipher standing in for `id`, keyed with `key`.
    pub fn new(id: CipherId, key: &Key) -> Self {
        let mut mask = [0u8; TAG_LEN];
        mask.copy_from_slice(&key.as_bytes()[..TAG_LEN]);
        NullCipherAs { id, mask }
    }

    fn tag(&self, chunk_index: u32, data: &[u8]) -> [u8; TAG_LEN] {
        let mut t = NullCipher::tag(chunk_index, data);
        for (t, m) in t.iter_mut().zip(&self.mask) {
            *t ^= m;
        }
        t
    }
}

#[cfg(any(test, feature = "testing"))]
impl fmt::Debug for NullCipherAs {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("NullCipherAs")
            .field("id", &self.id)
            .finish_non_exhaustive()
    }
}

#[cfg(any(test, feature = "testing"))]
impl CipherSuite for NullCipherAs {
    fn id(&self) -> CipherId {
        self.id
    }
    fn seal(&self, chunk_index: u32, data: &mut [u8]) -> Result<[u8; TAG_LEN], AeadError> {
        Ok(self.tag(chunk_index, data))
    }
    fn open(
        &self,
        chunk_index: u32,
        data: &mut [u8],
        tag: &[u8; TAG_LEN],
    ) -> Result<(), AeadError> {
        if bool::from(self.tag(chunk_index, data).ct_eq(tag)) {
            Ok(())
        } else {
            Err(AeadError)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn nonce_layout() {
        assert_eq!(
            chunk_nonce(0x0403_0201),
            [1, 2, 3, 4, 0, 0, 0, 0, 0, 0, 0, 0]
        );
    }

    #[test]
    fn chunk_keys_differ_per_exposure_and_from_the_ticket_key() {
        let key = Key::from_bytes([7; 32]);
        let a = derive_chunk_key(&key, &[1; 16]);
        let b = derive_chunk_key(&key, &[2; 16]);
        assert_ne!(a, b);
        assert_ne!(a, key);
        assert_eq!(a, derive_chunk_key(&key, &[1; 16]));
        assert_eq!(KeyMode::Derived.chunk_key(&key, &[1; 16]), a);
        assert_eq!(KeyMode::Raw.chunk_key(&key, &[1; 16]), key);
        assert_eq!(KeyMode::default(), KeyMode::Derived);
    }

    #[test]
    fn key_debug_is_redacted() {
        let k = Key::from_bytes([7; 32]);
        assert!(!format!("{k:?}").contains('7'));
        assert_eq!(k, Key::from_bytes([7; 32]));
        assert_ne!(k, Key::from_bytes([8; 32]));
    }

    #[test]
    fn null_cipher_as_detects_changes_and_wrong_keys() {
        let key = Key::from_bytes([7; 32]);
        let c = NullCipherAs::new(CipherId::ChaCha20Poly1305, &key);
        assert_eq!(c.id(), CipherId::ChaCha20Poly1305);
        let mut data = *b"a chunk of plaintext";
        let tag = c.seal(5, &mut data).unwrap();
        assert_eq!(&data, b"a chunk of plaintext");
        assert_eq!(c.open(5, &mut data, &tag), Ok(()));
        assert_eq!(c.open(6, &mut data, &tag), Err(AeadError));
        let other = NullCipherAs::new(CipherId::ChaCha20Poly1305, &Key::from_bytes([8; 32]));
        assert_eq!(other.open(5, &mut data, &tag), Err(AeadError));
        data[3] ^= 1;
        assert_eq!(c.open(5, &mut data, &tag), Err(AeadError));
    }
}
