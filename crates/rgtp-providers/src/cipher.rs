//! AEAD suites: RustCrypto AEADs behind [`rgtp_proto::CipherSuite`], and the
//! same suites on ring ([`ring_aead`], feature `aead-ring`).
//!
//! A suite ([`CipherId`]) is what the wire and the ticket name; a
//! [`Backend`] is which code computes it. Both backends give the same bytes,
//! so the choice is local: [`AnyCipher::new`] takes the fastest one built
//! ([`Backend::preferred`]) and [`AnyCipher::with_backend`] a named one.
//!
//! Every suite seals chunk `i` under [`chunk_nonce`]`(i)` (the index as a
//! little-endian `u32`, then eight zero bytes; upstream §4.2) with **no
//! associated data** and a 16-byte tag, so ciphertexts are byte-identical to
//! any other v1 implementation's. `spec/vectors/aead.txt` pins this down.
//!
//! Key hygiene: the expanded key state is wiped when a suite is dropped.
//! ChaCha20-Poly1305 always does this; for AES-256-GCM this crate turns on the
//! `zeroize` features of `aes-gcm`, `aes`, `ghash` and `polyval`, which wipe
//! the AES round keys and the GHASH key on drop. Moving a suite by value may
//! leave a stale copy behind (as with any Rust value), so keep suites in
//! place (for instance behind an `Arc`) once built.
//!
//! Keys and exposure IDs come from the operating system's CSPRNG
//! ([`random_key`], [`random_exposure_id`]; upstream §4.3).

use core::fmt;

use aead::consts::{U12, U16, U32};
use aead::generic_array::GenericArray;
use aead::{AeadInPlace, KeyInit};
use rgtp_proto::crypto::{chunk_nonce, AeadError, CipherId, CipherSuite, Key, TAG_LEN};
use zeroize::Zeroizing;

#[cfg(feature = "aead-ring")]
pub mod ring_aead;
#[cfg(feature = "aead-ring")]
pub use ring_aead::RingSuite;

/// Which implementation computes a suite. The wire bytes are the same.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Backend {
    /// The RustCrypto crates (`aes-gcm`, `chacha20poly1305`): portable Rust
    /// with AES-NI/CLMUL where the CPU has them.
    RustCrypto,
    /// ring's assembly (feature `aead-ring`).
    Ring,
}

impl Backend {
    /// Every backend, in order of preference.
    pub const ALL: [Backend; 2] = [Backend::Ring, Backend::RustCrypto];

    /// The name the command line and the C ABI use.
    pub fn name(self) -> &'static str {
        match self {
            Backend::RustCrypto => "rustcrypto",
            Backend::Ring => "ring",
        }
    }

    /// The backend called `name` ([`name`](Self::name)).
    pub fn from_name(name: &str) -> Option<Backend> {
        Backend::ALL.into_iter().find(|b| b.name() == name)
    }

    /// Whether this build holds the backend.
    pub fn built(self) -> bool {
        match self {
            Backend::RustCrypto => true,
            Backend::Ring => cfg!(feature = "aead-ring"),
        }
    }

    /// The fastest backend this build holds: ring when built (measured by
    /// `benches/benches/cipher.rs`: about four times RustCrypto's AES-256-GCM
    /// rate at 1200 bytes on x86-64), else RustCrypto.
    pub fn preferred() -> Backend {
        if Backend::Ring.built() {
            Backend::Ring
        } else {
            Backend::RustCrypto
        }
    }
}

impl fmt::Display for Backend {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// A RustCrypto AEAD that RGTP can use: 256-bit key, 96-bit nonce, 128-bit tag.
pub trait RgtpAead:
    AeadInPlace<NonceSize = U12, TagSize = U16> + KeyInit<KeySize = U32> + Send + Sync + 'static
{
    /// The identifier carried in Manifest flags and tickets.
    const ID: CipherId;
}

#[cfg(feature = "aead-chacha20poly1305")]
impl RgtpAead for chacha20poly1305::ChaCha20Poly1305 {
    const ID: CipherId = CipherId::ChaCha20Poly1305;
}

#[cfg(feature = "aead-aes-gcm")]
impl RgtpAead for aes_gcm::Aes256Gcm {
    const ID: CipherId = CipherId::Aes256Gcm;
}

/// One keyed AEAD sealing chunks under their index nonce with empty AAD.
pub struct AeadSuite<A: RgtpAead> {
    aead: A,
}

/// ChaCha20-Poly1305 (IETF); the upstream default.
#[cfg(feature = "aead-chacha20poly1305")]
pub type ChaCha20Poly1305Suite = AeadSuite<chacha20poly1305::ChaCha20Poly1305>;

/// AES-256-GCM.
#[cfg(feature = "aead-aes-gcm")]
pub type Aes256GcmSuite = AeadSuite<aes_gcm::Aes256Gcm>;

impl<A: RgtpAead> AeadSuite<A> {
    /// Expands `key` for this AEAD.
    pub fn new(key: &Key) -> Self {
        AeadSuite {
            aead: A::new(GenericArray::from_slice(key.as_bytes())),
        }
    }
}

impl<A: RgtpAead + Clone> Clone for AeadSuite<A> {
    fn clone(&self) -> Self {
        AeadSuite {
            aead: self.aead.clone(),
        }
    }
}

impl<A: RgtpAead> fmt::Debug for AeadSuite<A> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "AeadSuite({}, <key redacted>)", A::ID.name())
    }
}

impl<A: RgtpAead> CipherSuite for AeadSuite<A> {
    fn id(&self) -> CipherId {
        A::ID
    }

    fn seal(&self, chunk_index: u32, data: &mut [u8]) -> Result<[u8; TAG_LEN], AeadError> {
        let nonce = chunk_nonce(chunk_index);
        self.aead
            .encrypt_in_place_detached(GenericArray::from_slice(&nonce), &[], data)
            .map(Into::into)
            .map_err(|_| AeadError)
    }

    fn open(
        &self,
        chunk_index: u32,
        data: &mut [u8],
        tag: &[u8; TAG_LEN],
    ) -> Result<(), AeadError> {
        let nonce = chunk_nonce(chunk_index);
        self.aead
            .decrypt_in_place_detached(
                GenericArray::from_slice(&nonce),
                &[],
                data,
                GenericArray::from_slice(tag),
            )
            .map_err(|_| AeadError)
    }
}

/// A suite picked at run time from a Manifest, ticket or command line.
// One per exposure, built once and kept in place: the size difference between
// the variants is not worth a pointer chase on every chunk.
#[allow(clippy::large_enum_variant)]
#[derive(Clone, Debug)]
pub enum AnyCipher {
    /// ChaCha20-Poly1305.
    #[cfg(feature = "aead-chacha20poly1305")]
    ChaCha20Poly1305(ChaCha20Poly1305Suite),
    /// AES-256-GCM.
    #[cfg(feature = "aead-aes-gcm")]
    Aes256Gcm(Aes256GcmSuite),
    /// Either suite on ring.
    #[cfg(feature = "aead-ring")]
    Ring(RingSuite),
}

impl AnyCipher {
    /// Builds the suite `id` keyed with `key` on the [preferred](Backend::preferred)
    /// backend; `None` for [`CipherId::Null`], which is never chosen at run
    /// time, and for a suite left out of this build
    /// ([`Provider::check`](crate::features::Provider::check) says which feature
    /// brings it in).
    pub fn new(id: CipherId, key: &Key) -> Option<AnyCipher> {
        Self::with_backend(id, Backend::preferred(), key)
    }

    /// [`new`](Self::new) on `backend`; `None` also when this build lacks
    /// the backend. `aead-ring` speeds up the suites whose own feature is on;
    /// it does not bring in a suite by itself.
    pub fn with_backend(id: CipherId, backend: Backend, key: &Key) -> Option<AnyCipher> {
        if crate::features::Provider::Cipher(id).check().is_err() {
            return None;
        }
        match backend {
            #[cfg(feature = "aead-ring")]
            Backend::Ring => RingSuite::new(id, key).map(AnyCipher::Ring),
            Backend::RustCrypto => match id {
                #[cfg(feature = "aead-chacha20poly1305")]
                CipherId::ChaCha20Poly1305 => {
                    Some(AnyCipher::ChaCha20Poly1305(AeadSuite::new(key)))
                }
                #[cfg(feature = "aead-aes-gcm")]
                CipherId::Aes256Gcm => Some(AnyCipher::Aes256Gcm(AeadSuite::new(key))),
                _ => {
                    let _ = key;
                    None
                }
            },
            #[allow(unreachable_patterns)]
            _ => None,
        }
    }

    /// The backend computing this suite.
    pub fn backend(&self) -> Backend {
        match *self {
            #[cfg(feature = "aead-chacha20poly1305")]
            AnyCipher::ChaCha20Poly1305(_) => Backend::RustCrypto,
            #[cfg(feature = "aead-aes-gcm")]
            AnyCipher::Aes256Gcm(_) => Backend::RustCrypto,
            #[cfg(feature = "aead-ring")]
            AnyCipher::Ring(_) => Backend::Ring,
        }
    }
}

// `match *self` with `ref` bindings, so that a build with no suite at all
// (an empty enum) still compiles.
#[cfg_attr(
    not(any(
        feature = "aead-aes-gcm",
        feature = "aead-chacha20poly1305",
        feature = "aead-ring"
    )),
    allow(unused_variables)
)]
impl CipherSuite for AnyCipher {
    fn id(&self) -> CipherId {
        match *self {
            #[cfg(feature = "aead-chacha20poly1305")]
            AnyCipher::ChaCha20Poly1305(ref s) => s.id(),
            #[cfg(feature = "aead-aes-gcm")]
            AnyCipher::Aes256Gcm(ref s) => s.id(),
            #[cfg(feature = "aead-ring")]
            AnyCipher::Ring(ref s) => s.id(),
        }
    }

    fn seal(&self, chunk_index: u32, data: &mut [u8]) -> Result<[u8; TAG_LEN], AeadError> {
        match *self {
            #[cfg(feature = "aead-chacha20poly1305")]
            AnyCipher::ChaCha20Poly1305(ref s) => s.seal(chunk_index, data),
            #[cfg(feature = "aead-aes-gcm")]
            AnyCipher::Aes256Gcm(ref s) => s.seal(chunk_index, data),
            #[cfg(feature = "aead-ring")]
            AnyCipher::Ring(ref s) => s.seal(chunk_index, data),
        }
    }

    fn open(
        &self,
        chunk_index: u32,
        data: &mut [u8],
        tag: &[u8; TAG_LEN],
    ) -> Result<(), AeadError> {
        match *self {
            #[cfg(feature = "aead-chacha20poly1305")]
            AnyCipher::ChaCha20Poly1305(ref s) => s.open(chunk_index, data, tag),
            #[cfg(feature = "aead-aes-gcm")]
            AnyCipher::Aes256Gcm(ref s) => s.open(chunk_index, data, tag),
            #[cfg(feature = "aead-ring")]
            AnyCipher::Ring(ref s) => s.open(chunk_index, data, tag),
        }
    }
}

/// A fresh 256-bit exposure key from the operating system's CSPRNG.
///
/// # Panics
/// If the operating system cannot supply random bytes (there is no safe
/// fallback for key material).
pub fn random_key() -> Key {
    let mut bytes = Zeroizing::new([0u8; 32]);
    fill_random(&mut bytes[..]);
    Key::from_bytes(*bytes)
}

/// A fresh 128-bit exposure ID from the operating system's CSPRNG (upstream §4.3).
///
/// # Panics
/// If the operating system cannot supply random bytes.
pub fn random_exposure_id() -> [u8; 16] {
    let mut id = [0u8; 16];
    fill_random(&mut id);
    id
}

fn fill_random(buf: &mut [u8]) {
    if let Err(e) = getrandom::getrandom(buf) {
        panic!("OS random number generator unavailable: {e}");
    }
}
