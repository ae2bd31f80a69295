//! Shape checks every codec runs before any work, so wrong shard counts or
//! lengths give [`FecError::ShapeMismatch`] and never a panic.

use rgtp_proto::fec::{FecError, FecParams};

/// Shards beyond `k` a RaptorQ puller waits for (`RaptorQ::RECEIVE_OVERHEAD`);
/// here so [`super::min_shards`] answers in builds without RaptorQ.
pub(super) const RAPTORQ_RECEIVE_OVERHEAD: usize = 2;

/// Checks `encode` arguments against `params`: `k` data and `n - k` parity
/// shards, all of one non-zero length. Returns that length.
#[cfg_attr(
    not(any(feature = "fec-rs", feature = "fec-raptorq")),
    allow(dead_code)
)]
pub(super) fn check_shapes(
    params: FecParams,
    data: &[&[u8]],
    parity: &mut [&mut [u8]],
) -> Result<usize, FecError> {
    if data.len() != usize::from(params.k) || parity.len() != params.parity() {
        return Err(FecError::ShapeMismatch);
    }
    let len = data.first().map_or(0, |d| d.len());
    if len == 0 || data.iter().any(|d| d.len() != len) || parity.iter().any(|p| p.len() != len) {
        return Err(FecError::ShapeMismatch);
    }
    Ok(len)
}

/// Checks `reconstruct` input against `params`: `n` entries, every present
/// shard of one non-zero length. Returns how many are present.
#[cfg_attr(
    not(any(feature = "fec-rs", feature = "fec-raptorq")),
    allow(dead_code)
)]
pub(super) fn check_received(
    params: FecParams,
    shards: &[Option<Vec<u8>>],
) -> Result<usize, FecError> {
    if shards.len() != usize::from(params.n) {
        return Err(FecError::ShapeMismatch);
    }
    let mut len = None;
    let mut present = 0;
    for shard in shards.iter().flatten() {
        if shard.is_empty() || len.is_some_and(|l| l != shard.len()) {
            return Err(FecError::ShapeMismatch);
        }
        len = Some(shard.len());
        present += 1;
    }
    Ok(present)
}

#[cfg(test)]
mod tests {
    use rgtp_proto::fec::FecScheme;

    use super::*;

    #[test]
    fn shape_checks() {
        let p = FecParams {
            scheme: FecScheme::ReedSolomon,
            n: 3,
            k: 2,
        };
        let mut out = [0u8; 4];
        assert_eq!(check_shapes(p, &[&[1; 4], &[2; 4]], &mut [&mut out]), Ok(4));
        assert_eq!(
            check_shapes(p, &[&[1; 4]], &mut [&mut out]),
            Err(FecError::ShapeMismatch)
        );
        assert_eq!(
            check_received(p, &[None, Some(vec![1]), Some(vec![2])]),
            Ok(2)
        );
        assert_eq!(
            check_received(p, &[None, None]),
            Err(FecError::ShapeMismatch)
        );
    }
}
