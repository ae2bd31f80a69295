//! The FEC layer: systematic erasure codes over the *encrypted* chunks of a block.
//!
//! A block is `k` consecutive chunks, each ciphertext‖tag zero-padded to the
//! shard size (`chunk_size + TAG_LEN`). The codec produces `n - k` parity
//! shards of the same size; any `k` shards (any `k` plus a small overhead for
//! RaptorQ) rebuild the block. Rebuilt chunks are still opened with the AEAD,
//! so FEC never bypasses authentication. Spec §7 gives the mapping to packets.

use core::fmt;

/// Which FEC scheme a codec implements.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum FecScheme {
    /// No parity.
    None,
    /// Reed-Solomon over GF(2^8), polynomial 0x11D.
    ReedSolomon,
    /// RaptorQ (RFC 6330) repair symbols.
    RaptorQ,
}

/// The parameters a codec was built with; these go into the Manifest.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct FecParams {
    /// Scheme.
    pub scheme: FecScheme,
    /// Shards per block, data plus parity (0 for `None`).
    pub n: u8,
    /// Data shards per block (0 for `None`).
    pub k: u8,
}

impl FecParams {
    /// No FEC.
    pub const NONE: FecParams = FecParams {
        scheme: FecScheme::None,
        n: 0,
        k: 0,
    };

    /// Parity shards per block.
    pub fn parity(&self) -> usize {
        usize::from(self.n.saturating_sub(self.k))
    }
}

/// FEC failure.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FecError {
    /// Parameters the scheme cannot take.
    InvalidParams,
    /// Shard counts or sizes do not match the parameters.
    ShapeMismatch,
    /// Not enough shards to rebuild.
    TooFewShards,
}

impl fmt::Display for FecError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            FecError::InvalidParams => f.write_str("invalid FEC parameters"),
            FecError::ShapeMismatch => f.write_str("shard count or size mismatch"),
            FecError::TooFewShards => f.write_str("too few shards to rebuild the block"),
        }
    }
}

impl std::error::Error for FecError {}

/// A systematic erasure code over one block of equal-sized shards.
pub trait FecCodec: Send + Sync + 'static {
    /// Scheme and (n, k).
    fn params(&self) -> FecParams;

    /// Fills `parity` (`n - k` shards) from `data` (`k` shards); all shards have one length.
    fn encode(&self, data: &[&[u8]], parity: &mut [&mut [u8]]) -> Result<(), FecError>;

    /// `shards` has `n` entries (data first, then parity), `None` where missing; all
    /// present shards have one length. On success every data entry (`0..k`) is `Some`.
    /// Parity entries may be left `None`.
    fn reconstruct(&self, shards: &mut [Option<Vec<u8>>]) -> Result<(), FecError>;
}

impl<T: FecCodec + ?Sized> FecCodec for Box<T> {
    fn params(&self) -> FecParams {
        (**self).params()
    }
    fn encode(&self, data: &[&[u8]], parity: &mut [&mut [u8]]) -> Result<(), FecError> {
        (**self).encode(data, parity)
    }
    fn reconstruct(&self, shards: &mut [Option<Vec<u8>>]) -> Result<(), FecError> {
        (**self).reconstruct(shards)
    }
}

/// The codec for "no FEC".
#[derive(Debug, Clone, Copy, Default)]
pub struct NoFec;

impl FecCodec for NoFec {
    fn params(&self) -> FecParams {
        FecParams::NONE
    }
    fn encode(&self, data: &[&[u8]], parity: &mut [&mut [u8]]) -> Result<(), FecError> {
        if data.is_empty() && parity.is_empty() {
            Ok(())
        } else {
            Err(FecError::ShapeMismatch)
        }
    }
    fn reconstruct(&self, _shards: &mut [Option<Vec<u8>>]) -> Result<(), FecError> {
        Err(FecError::TooFewShards)
    }
}
