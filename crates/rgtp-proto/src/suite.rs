//! What an exposure is sealed, hashed and coded with, and how that travels in
//! the Manifest flags (spec §4.2). Flags 0 is the upstream default suite.

use rgtp_wire::{Manifest, ManifestFlags};

use crate::crypto::{CipherId, CipherSuite, Key, KeyMode};
use crate::fec::{FecCodec, FecParams, FecScheme};
use crate::merkle::{HashId, MerkleScheme};

/// Builds the layers a Manifest asks for.
pub trait SuiteFactory {
    /// Cipher type.
    type Cipher: CipherSuite;
    /// Hash type (cloned by drivers that hash on another thread).
    type Hash: MerkleScheme + Clone;
    /// FEC type.
    type Fec: FecCodec;
    /// The cipher `id` keyed with `key`, or `None` if unsupported.
    fn cipher(&self, id: CipherId, key: &Key) -> Option<Self::Cipher>;
    /// The hash `id`, or `None` if unsupported.
    fn hash(&self, id: HashId) -> Option<Self::Hash>;
    /// A codec for `params`, or `None` if unsupported.
    fn fec(&self, params: FecParams) -> Option<Self::Fec>;
    /// Shards needed to rebuild a block with high probability.
    fn min_shards(&self, params: FecParams) -> usize {
        usize::from(params.k)
    }
}

/// The layers an exposure was prepared with.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct SuiteId {
    /// AEAD.
    pub cipher: CipherId,
    /// Merkle hash.
    pub hash: HashId,
    /// FEC scheme and (n, k).
    pub fec: FecParams,
    /// Whether chunks are served with Merkle proofs.
    pub proofs: bool,
    /// Whether chunks are sealed under the ticket key or the key derived from it.
    pub key_mode: KeyMode,
}

impl Default for SuiteId {
    /// The upstream default: ChaCha20-Poly1305, BLAKE2b-256, no FEC, no proofs,
    /// chunks under the ticket key (Manifest flags 0).
    fn default() -> Self {
        SuiteId {
            cipher: CipherId::ChaCha20Poly1305,
            hash: HashId::Blake2b256,
            fec: FecParams::NONE,
            proofs: false,
            key_mode: KeyMode::Raw,
        }
    }
}

/// Why a Manifest's suite fields cannot be used.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SuiteError {
    /// FEC_N/FEC_K are not `0, 0` and not `1 ≤ k < n`.
    BadFecParams,
    /// RaptorQ flagged without (n, k).
    RaptorQWithoutParams,
    /// The null cipher cannot be signalled.
    NullCipher,
}

impl SuiteId {
    /// Manifest flags for this suite (without the TOKEN bit).
    pub fn manifest_flags(&self) -> Result<ManifestFlags, SuiteError> {
        let mut f = ManifestFlags::empty();
        match self.cipher {
            CipherId::ChaCha20Poly1305 => {}
            CipherId::Aes256Gcm => f |= ManifestFlags::AES_256_GCM,
            CipherId::Null => return Err(SuiteError::NullCipher),
        }
        match self.hash {
            HashId::Blake2b256 => {}
            HashId::Sha256 => f |= ManifestFlags::HASH_SHA256,
            HashId::Blake3 => f |= ManifestFlags::HASH_BLAKE3,
        }
        if self.fec.scheme == FecScheme::RaptorQ {
            f |= ManifestFlags::FEC_RAPTORQ;
        }
        if self.proofs {
            f |= ManifestFlags::PROOFS;
        }
        if self.key_mode == KeyMode::Derived {
            f |= ManifestFlags::DERIVED_KEY;
        }
        Ok(f)
    }

    /// Reads the suite a Manifest announces.
    pub fn from_manifest(m: &Manifest) -> Result<SuiteId, SuiteError> {
        let cipher = if m.flags.contains(ManifestFlags::AES_256_GCM) {
            CipherId::Aes256Gcm
        } else {
            CipherId::ChaCha20Poly1305
        };
        let hash = if m.flags.contains(ManifestFlags::HASH_SHA256) {
            HashId::Sha256
        } else if m.flags.contains(ManifestFlags::HASH_BLAKE3) {
            HashId::Blake3
        } else {
            HashId::Blake2b256
        };
        let (n, k) = (m.fec_n, m.fec_k);
        let fec = match (n, k) {
            (0, 0) if m.flags.contains(ManifestFlags::FEC_RAPTORQ) => {
                return Err(SuiteError::RaptorQWithoutParams)
            }
            (0, 0) => FecParams::NONE,
            (n, k) if k >= 1 && k < n => FecParams {
                scheme: if m.flags.contains(ManifestFlags::FEC_RAPTORQ) {
                    FecScheme::RaptorQ
                } else {
                    FecScheme::ReedSolomon
                },
                n,
                k,
            },
            _ => return Err(SuiteError::BadFecParams),
        };
        Ok(SuiteId {
            cipher,
            hash,
            fec,
            proofs: m.flags.contains(ManifestFlags::PROOFS),
            key_mode: if m.flags.contains(ManifestFlags::DERIVED_KEY) {
                KeyMode::Derived
            } else {
                KeyMode::Raw
            },
        })
    }
}

/// Builds the testing layers: [`NullCipherAs`](crate::crypto::NullCipherAs) for any
/// cipher, [`TestingHash`](crate::merkle::TestingHash) for BLAKE2b-256, and
/// [`XorParity`](crate::fec::XorParity) for Reed-Solomon `(k + 1, k)`. It provides NO
/// SECURITY and is for fuzzing and tests only: it lets the core test itself with no
/// provider crate.
#[cfg(any(test, feature = "testing"))]
#[derive(Debug, Clone, Copy, Default)]
pub struct TestingSuite;

#[cfg(any(test, feature = "testing"))]
impl SuiteFactory for TestingSuite {
    type Cipher = crate::crypto::NullCipherAs;
    type Hash = crate::merkle::TestingHash;
    type Fec = crate::fec::XorParity;

    fn cipher(&self, id: CipherId, key: &Key) -> Option<Self::Cipher> {
        Some(crate::crypto::NullCipherAs::new(id, key))
    }

    fn hash(&self, id: HashId) -> Option<Self::Hash> {
        (id == HashId::Blake2b256).then_some(crate::merkle::TestingHash)
    }

    fn fec(&self, params: FecParams) -> Option<Self::Fec> {
        if params.scheme != FecScheme::ReedSolomon || params.n != params.k.wrapping_add(1) {
            return None;
        }
        crate::fec::XorParity::new(params.k)
    }
}
