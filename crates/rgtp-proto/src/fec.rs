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

/// An erasure code for tests: one XOR parity shard per block of `k` data shards.
///
/// `n = k + 1`, and any `k` of the `n` shards rebuild the block, so the
/// [`SuiteFactory::min_shards`](crate::SuiteFactory::min_shards) default of `k` is
/// exact. It reports itself as [`FecScheme::ReedSolomon`] so that a Manifest can
/// announce its `(n, k)`, but its parity is not Reed-Solomon's: only a peer using
/// this codec can rebuild from it. Compiled for this crate's tests and under the
/// `testing` feature only.
#[cfg(any(test, feature = "testing"))]
#[derive(Debug, Clone, Copy)]
pub struct XorParity {
    k: u8,
}

#[cfg(any(test, feature = "testing"))]
impl XorParity {
    /// The code over blocks of `k` data shards; `None` unless `1 <= k < 255`.
    pub fn new(k: u8) -> Option<Self> {
        (1..u8::MAX).contains(&k).then_some(XorParity { k })
    }

    fn xor_into(acc: &mut [u8], shard: &[u8]) {
        for (a, b) in acc.iter_mut().zip(shard) {
            *a ^= b;
        }
    }
}

#[cfg(any(test, feature = "testing"))]
impl FecCodec for XorParity {
    fn params(&self) -> FecParams {
        FecParams {
            scheme: FecScheme::ReedSolomon,
            n: self.k + 1,
            k: self.k,
        }
    }

    fn encode(&self, data: &[&[u8]], parity: &mut [&mut [u8]]) -> Result<(), FecError> {
        let [out] = parity else {
            return Err(FecError::ShapeMismatch);
        };
        if data.len() != usize::from(self.k) || data.iter().any(|d| d.len() != out.len()) {
            return Err(FecError::ShapeMismatch);
        }
        out.fill(0);
        for d in data {
            Self::xor_into(out, d);
        }
        Ok(())
    }

    fn reconstruct(&self, shards: &mut [Option<Vec<u8>>]) -> Result<(), FecError> {
        let k = usize::from(self.k);
        if shards.len() != k + 1 {
            return Err(FecError::ShapeMismatch);
        }
        let mut lens = shards.iter().flatten().map(Vec::len);
        let len = lens.next().ok_or(FecError::TooFewShards)?;
        if lens.any(|l| l != len) {
            return Err(FecError::ShapeMismatch);
        }
        let mut missing = (0..k).filter(|&j| shards[j].is_none());
        let Some(lost) = missing.next() else {
            return Ok(());
        };
        if missing.next().is_some() || shards[k].is_none() {
            return Err(FecError::TooFewShards);
        }
        let mut rebuilt = vec![0u8; len];
        for s in shards.iter().flatten() {
            Self::xor_into(&mut rebuilt, s);
        }
        shards[lost] = Some(rebuilt);
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn block(k: usize) -> Vec<Vec<u8>> {
        (0..k)
            .map(|j| (0..8).map(|i| (j * 31 + i * 7) as u8).collect())
            .collect()
    }

    #[test]
    fn xor_parity_rebuilds_any_single_erasure() {
        for k in 1..=5u8 {
            let code = XorParity::new(k).unwrap();
            assert_eq!(code.params().n, k + 1);
            let data = block(usize::from(k));
            let refs: Vec<&[u8]> = data.iter().map(Vec::as_slice).collect();
            let mut parity = vec![0xa5u8; 8];
            code.encode(&refs, &mut [&mut parity[..]]).unwrap();
            let all: Vec<Option<Vec<u8>>> = data
                .iter()
                .cloned()
                .chain([parity.clone()])
                .map(Some)
                .collect();
            for lost in 0..=usize::from(k) {
                let mut shards = all.clone();
                shards[lost] = None;
                code.reconstruct(&mut shards).unwrap();
                for (j, d) in data.iter().enumerate() {
                    assert_eq!(shards[j].as_ref(), Some(d), "k = {k}, lost = {lost}");
                }
            }
        }
    }

    #[test]
    fn xor_parity_refuses_what_it_cannot_rebuild() {
        let code = XorParity::new(3).unwrap();
        let data = block(3);
        let mut shards: Vec<Option<Vec<u8>>> = data.into_iter().map(Some).collect();
        shards.push(None);
        shards[0] = None;
        assert_eq!(code.reconstruct(&mut shards), Err(FecError::TooFewShards));
        shards[0] = Some(vec![0; 8]);
        shards[1] = None;
        shards[2] = None;
        shards[3] = Some(vec![0; 8]);
        assert_eq!(code.reconstruct(&mut shards), Err(FecError::TooFewShards));
        shards[1] = Some(vec![0; 7]);
        assert_eq!(code.reconstruct(&mut shards), Err(FecError::ShapeMismatch));
        assert!(XorParity::new(0).is_none());
        assert!(XorParity::new(255).is_none());
    }
}
