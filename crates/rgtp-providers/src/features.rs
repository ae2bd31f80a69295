//! Which providers this build holds.
//!
//! Every backend sits behind a cargo feature, all on by default:
//!
//! | feature                 | provides                               |
//! |-------------------------|----------------------------------------|
//! | `aead-aes-gcm`          | cipher [`CipherId::Aes256Gcm`]         |
//! | `aead-chacha20poly1305` | cipher [`CipherId::ChaCha20Poly1305`]  |
//! | `aead-ring`             | the ring backend of the ciphers above (a [`Backend`](crate::Backend), not a provider: not in [`ENABLED`]) |
//! | `hash-sha256`           | Merkle hash [`HashId::Sha256`]         |
//! | `hash-blake2b`          | Merkle hash [`HashId::Blake2b256`]     |
//! | `hash-blake3`           | Merkle hash [`HashId::Blake3`]         |
//! | `fec-rs`                | FEC [`FecScheme::ReedSolomon`]         |
//! | `fec-raptorq`           | FEC [`FecScheme::RaptorQ`]             |
//!
//! The `Any*` constructors answer `None` (or [`FecError::InvalidParams`]) for
//! a provider left out; [`Provider::check`] says which feature brings it in.
//!
//! [`FecError::InvalidParams`]: rgtp_proto::fec::FecError::InvalidParams

use core::fmt;

use rgtp_proto::{CipherId, FecScheme, HashId};

/// The provider features this build was compiled with.
pub const ENABLED: &[&str] = &[
    #[cfg(feature = "aead-aes-gcm")]
    "aead-aes-gcm",
    #[cfg(feature = "aead-chacha20poly1305")]
    "aead-chacha20poly1305",
    #[cfg(feature = "hash-sha256")]
    "hash-sha256",
    #[cfg(feature = "hash-blake2b")]
    "hash-blake2b",
    #[cfg(feature = "hash-blake3")]
    "hash-blake3",
    #[cfg(feature = "fec-rs")]
    "fec-rs",
    #[cfg(feature = "fec-raptorq")]
    "fec-raptorq",
];

/// One layer implementation, named by the identifier a Manifest, ticket or
/// command line uses for it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Provider {
    /// An AEAD cipher suite.
    Cipher(CipherId),
    /// A Merkle hash scheme.
    Hash(HashId),
    /// An FEC scheme.
    Fec(FecScheme),
}

impl Provider {
    /// The cargo feature that brings this provider in; `None` for the ones
    /// always present (the null cipher, no FEC).
    pub fn feature(self) -> Option<&'static str> {
        match self {
            Provider::Cipher(CipherId::Aes256Gcm) => Some("aead-aes-gcm"),
            Provider::Cipher(CipherId::ChaCha20Poly1305) => Some("aead-chacha20poly1305"),
            Provider::Cipher(CipherId::Null) => None,
            Provider::Hash(HashId::Sha256) => Some("hash-sha256"),
            Provider::Hash(HashId::Blake2b256) => Some("hash-blake2b"),
            Provider::Hash(HashId::Blake3) => Some("hash-blake3"),
            Provider::Fec(FecScheme::ReedSolomon) => Some("fec-rs"),
            Provider::Fec(FecScheme::RaptorQ) => Some("fec-raptorq"),
            Provider::Fec(FecScheme::None) => None,
        }
    }

    /// `Ok` if this build holds the provider, else which feature it lacks.
    pub fn check(self) -> Result<(), NotBuilt> {
        self.check_in(ENABLED)
    }

    /// [`check`](Self::check) against the feature set `enabled` instead of
    /// this build's [`ENABLED`].
    pub fn check_in(self, enabled: &[&str]) -> Result<(), NotBuilt> {
        match self.feature() {
            Some(feature) if !enabled.contains(&feature) => Err(NotBuilt {
                provider: self,
                feature,
            }),
            _ => Ok(()),
        }
    }
}

impl fmt::Display for Provider {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match *self {
            Provider::Cipher(id) => write!(f, "cipher {}", id.name()),
            Provider::Hash(id) => write!(f, "Merkle hash {}", id.name()),
            Provider::Fec(FecScheme::None) => f.write_str("FEC none"),
            Provider::Fec(FecScheme::ReedSolomon) => f.write_str("FEC reed-solomon"),
            Provider::Fec(FecScheme::RaptorQ) => f.write_str("FEC raptorq"),
        }
    }
}

/// A provider this build leaves out, and the cargo feature that brings it in.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct NotBuilt {
    /// What was asked for.
    pub provider: Provider,
    /// The feature (of this crate, and of `rgtp`, under the same name) to enable.
    pub feature: &'static str,
}

impl fmt::Display for NotBuilt {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{} is not in this build (enable feature `{}`)",
            self.provider, self.feature
        )
    }
}

impl std::error::Error for NotBuilt {}

#[cfg(test)]
mod tests {
    use super::*;

    const ALL: [Provider; 9] = [
        Provider::Cipher(CipherId::Aes256Gcm),
        Provider::Cipher(CipherId::ChaCha20Poly1305),
        Provider::Cipher(CipherId::Null),
        Provider::Hash(HashId::Sha256),
        Provider::Hash(HashId::Blake2b256),
        Provider::Hash(HashId::Blake3),
        Provider::Fec(FecScheme::None),
        Provider::Fec(FecScheme::ReedSolomon),
        Provider::Fec(FecScheme::RaptorQ),
    ];

    #[test]
    fn names_the_missing_feature() {
        let only = ["aead-aes-gcm", "hash-sha256"];
        let err = Provider::Cipher(CipherId::ChaCha20Poly1305)
            .check_in(&only)
            .unwrap_err();
        assert_eq!(
            err.to_string(),
            "cipher chacha20-poly1305 is not in this build (enable feature `aead-chacha20poly1305`)"
        );
        assert_eq!(
            Provider::Hash(HashId::Blake3)
                .check_in(&only)
                .unwrap_err()
                .to_string(),
            "Merkle hash blake3 is not in this build (enable feature `hash-blake3`)"
        );
        assert_eq!(
            Provider::Fec(FecScheme::RaptorQ)
                .check_in(&only)
                .unwrap_err()
                .to_string(),
            "FEC raptorq is not in this build (enable feature `fec-raptorq`)"
        );
        assert_eq!(
            Provider::Cipher(CipherId::Aes256Gcm).check_in(&only),
            Ok(())
        );
        assert_eq!(Provider::Hash(HashId::Sha256).check_in(&only), Ok(()));
    }

    #[test]
    fn always_present_need_no_feature() {
        for p in ALL.into_iter().filter(|p| p.feature().is_none()) {
            assert_eq!(p.check_in(&[]), Ok(()), "{p}");
        }
    }

    /// Every feature named here is one this crate declares, and `ENABLED`
    /// lists exactly the ones this build has.
    #[test]
    fn features_match_the_build() {
        for p in ALL {
            let Some(f) = p.feature() else { continue };
            assert_eq!(p.check().is_ok(), ENABLED.contains(&f), "{p}");
        }
        let named: Vec<_> = ALL.iter().filter_map(|p| p.feature()).collect();
        assert!(ENABLED.iter().all(|f| named.contains(f)));
    }

    #[test]
    #[cfg(all(
        feature = "aead-aes-gcm",
        feature = "aead-chacha20poly1305",
        feature = "hash-sha256",
        feature = "hash-blake2b",
        feature = "hash-blake3",
        feature = "fec-rs",
        feature = "fec-raptorq"
    ))]
    fn default_build_holds_everything() {
        assert_eq!(ENABLED.len(), 7);
        for p in ALL {
            assert_eq!(p.check(), Ok(()), "{p}");
        }
    }
}
