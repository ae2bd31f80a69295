//! FEC codecs: systematic erasure codes over the encrypted chunks of a block.
//!
//! - [`ReedSolomon`]: (n, k) over GF(2^8) with polynomial 0x11D (upstream §5);
//!   any `k` of the `n` shards rebuild the block.
//! - [`RaptorQ`]: RFC 6330 with one source block of `k` symbols and repair
//!   ESIs `k..n`; any `k + RaptorQ::RECEIVE_OVERHEAD` distinct shards (or all
//!   `n`, if fewer) rebuild the block except with probability below 10⁻⁶.
//! - [`AnyFec`]: picks one of them (or [`NoFec`]) from the Manifest's [`FecParams`].
//!
//! Guarantees, for every codec here:
//! - Shapes are checked before any work: wrong shard counts, unequal or zero
//!   shard lengths give [`FecError::ShapeMismatch`]; nothing panics on them.
//! - `reconstruct` either fills every data shard and returns `Ok`, or returns
//!   an error and leaves `shards` untouched, so a caller may add shards and retry.
//! - FEC does **not** detect corruption. A corrupted input shard yields wrong
//!   rebuilt shards without any error; the AEAD open of every rebuilt chunk is
//!   what rejects them. Never use a rebuilt shard without opening it.
//!
//! The mapping onto RGTP packets is in `spec/rgtp-v1.md §7`.

pub use rgtp_proto::fec::NoFec;
use rgtp_proto::fec::{FecCodec, FecError, FecParams, FecScheme};

#[cfg(feature = "fec-raptorq")]
mod rq;
#[cfg(feature = "fec-rs")]
mod rs;
mod shape;

use self::shape::RAPTORQ_RECEIVE_OVERHEAD;

#[cfg(feature = "fec-raptorq")]
pub use rq::RaptorQ;
#[cfg(feature = "fec-rs")]
pub use rs::ReedSolomon;

/// Any of the supported codecs, chosen at run time from [`FecParams`].
#[derive(Debug, Clone)]
pub enum AnyFec {
    /// No FEC.
    None(NoFec),
    /// Reed-Solomon over GF(2^8).
    #[cfg(feature = "fec-rs")]
    ReedSolomon(ReedSolomon),
    /// RaptorQ (RFC 6330).
    #[cfg(feature = "fec-raptorq")]
    RaptorQ(RaptorQ),
}

impl AnyFec {
    /// Builds the codec `params` describe.
    ///
    /// `FecScheme::None` needs `n = k = 0`; the others need `1 ≤ k < n ≤ 255`.
    /// Anything else is [`FecError::InvalidParams`], and so is a scheme left out
    /// of this build ([`Provider::check`](crate::features::Provider::check) says which
    /// feature brings it in).
    pub fn new(params: FecParams) -> Result<AnyFec, FecError> {
        match params.scheme {
            FecScheme::None if params.n == 0 && params.k == 0 => Ok(AnyFec::None(NoFec)),
            FecScheme::None => Err(FecError::InvalidParams),
            #[cfg(feature = "fec-rs")]
            FecScheme::ReedSolomon => ReedSolomon::new(params.n, params.k).map(AnyFec::ReedSolomon),
            #[cfg(feature = "fec-raptorq")]
            FecScheme::RaptorQ => RaptorQ::new(params.n, params.k).map(AnyFec::RaptorQ),
            #[allow(unreachable_patterns)]
            _ => Err(FecError::InvalidParams),
        }
    }

    /// Shards of a block the puller should hold before calling `reconstruct`;
    /// see [`min_shards`].
    pub fn min_shards(&self) -> usize {
        min_shards(self.params())
    }
}

impl FecCodec for AnyFec {
    fn params(&self) -> FecParams {
        match self {
            AnyFec::None(c) => c.params(),
            #[cfg(feature = "fec-rs")]
            AnyFec::ReedSolomon(c) => c.params(),
            #[cfg(feature = "fec-raptorq")]
            AnyFec::RaptorQ(c) => c.params(),
        }
    }

    fn encode(&self, data: &[&[u8]], parity: &mut [&mut [u8]]) -> Result<(), FecError> {
        match self {
            AnyFec::None(c) => c.encode(data, parity),
            #[cfg(feature = "fec-rs")]
            AnyFec::ReedSolomon(c) => c.encode(data, parity),
            #[cfg(feature = "fec-raptorq")]
            AnyFec::RaptorQ(c) => c.encode(data, parity),
        }
    }

    fn reconstruct(&self, shards: &mut [Option<Vec<u8>>]) -> Result<(), FecError> {
        match self {
            AnyFec::None(c) => c.reconstruct(shards),
            #[cfg(feature = "fec-rs")]
            AnyFec::ReedSolomon(c) => c.reconstruct(shards),
            #[cfg(feature = "fec-raptorq")]
            AnyFec::RaptorQ(c) => c.reconstruct(shards),
        }
    }
}

/// How many distinct shards of a block (data or parity) the puller should
/// hold before it calls `reconstruct`.
///
/// - `None`: 0 (there is nothing to rebuild from).
/// - Reed-Solomon: `k`; any `k` shards always suffice.
/// - RaptorQ: `k + RaptorQ::RECEIVE_OVERHEAD`, capped at `n`. Fewer (but at
///   least `k`) often work too, and `reconstruct` may be tried earlier; this
///   is the count at which failure is rare enough (< 10⁻⁶) to plan around.
pub fn min_shards(params: FecParams) -> usize {
    let k = usize::from(params.k);
    match params.scheme {
        FecScheme::None => 0,
        FecScheme::ReedSolomon => k,
        FecScheme::RaptorQ => (k + RAPTORQ_RECEIVE_OVERHEAD).min(usize::from(params.n)),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    #[cfg(all(feature = "fec-rs", feature = "fec-raptorq"))]
    fn any_fec_picks_the_scheme() {
        let rs = FecParams {
            scheme: FecScheme::ReedSolomon,
            n: 6,
            k: 4,
        };
        let rq = FecParams {
            scheme: FecScheme::RaptorQ,
            n: 6,
            k: 4,
        };
        assert!(matches!(AnyFec::new(rs), Ok(AnyFec::ReedSolomon(_))));
        assert!(matches!(AnyFec::new(rq), Ok(AnyFec::RaptorQ(_))));
        assert!(matches!(AnyFec::new(FecParams::NONE), Ok(AnyFec::None(_))));
        assert_eq!(AnyFec::new(rs).map(|c| c.params()), Ok(rs));
        assert_eq!(AnyFec::new(rq).map(|c| c.params()), Ok(rq));
    }

    #[test]
    fn min_shards_per_scheme() {
        let p = |scheme, n, k| FecParams { scheme, n, k };
        assert_eq!(min_shards(FecParams::NONE), 0);
        assert_eq!(min_shards(p(FecScheme::ReedSolomon, 255, 223)), 223);
        assert_eq!(min_shards(p(FecScheme::RaptorQ, 255, 223)), 225);
        assert_eq!(min_shards(p(FecScheme::RaptorQ, 224, 223)), 224);
        assert_eq!(min_shards(p(FecScheme::RaptorQ, 2, 1)), 2);
    }
}
