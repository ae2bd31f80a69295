//! The layers an accepted Manifest selected.
//!
//! State only: the behaviour that uses it is `manifest.rs`.

use crate::suite::SuiteFactory;

/// The layers the accepted Manifest selected.
pub(super) struct Layers<S: SuiteFactory> {
    pub(super) cipher: S::Cipher,
    pub(super) hash: S::Hash,
    /// The codec, when the exposure has FEC and the puller uses it.
    pub(super) fec: Option<S::Fec>,
    /// Shards the codec needs to rebuild a block.
    pub(super) min_shards: usize,
}
