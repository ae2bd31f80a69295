//! Systematic Reed-Solomon over GF(2^8) (spec §7.4: upstream §5.1–§5.2 name the
//! field and layout; the parity is ours, not upstream's code's), backed by
//! `reed_solomon_erasure::galois_8`.
//!
//! Field: GF(2^8) reduced by x^8 + x^4 + x^3 + x^2 + 1 (0x11D). Encoding
//! matrix: take the n×k Vandermonde matrix `V[r][c] = r^c` (r read as a field
//! element, `0^0 = 1`), multiply on the right by the inverse of its top k×k
//! block; the top k rows become the identity (systematic) and parity shard `p`
//! is `Σ_c M[k+p][c]·data[c]`, byte by byte. `spec/rgtp-v1.md §7` states it in
//! full and `tests/fec_vectors.rs` checks it against an independent model.

use core::fmt;

use reed_solomon_erasure::galois_8;
use rgtp_proto::fec::{FecCodec, FecError, FecParams, FecScheme};

use super::shape::{check_received, check_shapes};

/// Reed-Solomon (n, k) erasure code: any `k` of the `n` shards rebuild the block.
#[derive(Clone)]
pub struct ReedSolomon {
    n: u8,
    k: u8,
    /// Boxed: it holds an inline decode-matrix cache of about 1 KiB.
    inner: Box<galois_8::ReedSolomon>,
}

impl ReedSolomon {
    /// Builds the code with `k` data and `n - k` parity shards.
    ///
    /// Fails with [`FecError::InvalidParams`] unless `1 ≤ k < n ≤ 255`.
    pub fn new(n: u8, k: u8) -> Result<Self, FecError> {
        if k == 0 || k >= n {
            return Err(FecError::InvalidParams);
        }
        let inner = galois_8::ReedSolomon::new(usize::from(k), usize::from(n - k))
            .map_err(|_| FecError::InvalidParams)?;
        Ok(Self {
            n,
            k,
            inner: Box::new(inner),
        })
    }
}

impl fmt::Debug for ReedSolomon {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ReedSolomon")
            .field("n", &self.n)
            .field("k", &self.k)
            .finish()
    }
}

impl FecCodec for ReedSolomon {
    fn params(&self) -> FecParams {
        FecParams {
            scheme: FecScheme::ReedSolomon,
            n: self.n,
            k: self.k,
        }
    }

    fn encode(&self, data: &[&[u8]], parity: &mut [&mut [u8]]) -> Result<(), FecError> {
        check_shapes(self.params(), data, parity)?;
        self.inner
            .encode_sep(data, parity)
            .map_err(|_| FecError::ShapeMismatch)
    }

    fn reconstruct(&self, shards: &mut [Option<Vec<u8>>]) -> Result<(), FecError> {
        let k = usize::from(self.k);
        let present = check_received(self.params(), shards)?;
        if shards[..k].iter().all(Option::is_some) {
            return Ok(());
        }
        if present < k {
            return Err(FecError::TooFewShards);
        }
        // Only the data rows: the caller never needs rebuilt parity.
        self.inner.reconstruct_data(shards).map_err(|e| match e {
            reed_solomon_erasure::Error::TooFewShardsPresent => FecError::TooFewShards,
            _ => FecError::ShapeMismatch,
        })
    }
}
