//! RaptorQ (RFC 6330) over one block, backed by the `raptorq` crate.
//!
//! One block is one RFC 6330 source block (Z = 1 source block, N = 1
//! sub-block, alignment Al = 1) of `k` source symbols; the symbol size T is
//! the shard length, so no padding is ever needed. Data shard `i` is source
//! symbol ESI `i`; parity shard `p` is repair symbol ESI `k + p`.

use core::fmt;

use raptorq::{
    EncodingPacket, ObjectTransmissionInformation, PayloadId, SourceBlockDecoder,
    SourceBlockEncoder, SourceBlockEncodingPlan,
};
use rgtp_proto::fec::{FecCodec, FecError, FecParams, FecScheme};

use super::shape::{check_received, check_shapes, RAPTORQ_RECEIVE_OVERHEAD};

/// RaptorQ repair symbols for a block of `k` source symbols.
///
/// Unlike Reed-Solomon, `k` received shards do not always suffice: see
/// [`RaptorQ::RECEIVE_OVERHEAD`].
#[derive(Clone)]
pub struct RaptorQ {
    n: u8,
    k: u8,
    /// The precomputed intermediate-symbol solve for `k` source symbols; it
    /// does not depend on the symbol size, so one plan serves every block.
    plan: SourceBlockEncodingPlan,
}

impl RaptorQ {
    /// Extra shards, beyond `k`, that the receiver should hold: any
    /// `k + RECEIVE_OVERHEAD` distinct shards of a block (or all `n`, if
    /// fewer) rebuild it except with probability below 10⁻⁶.
    ///
    /// This is RFC 6330's stated performance (failure < 10⁻² at K, < 10⁻⁴ at
    /// K+1, < 10⁻⁶ at K+2 received symbols). The example `raptorq_overhead`
    /// (`cargo run -p rgtp-providers --example raptorq_overhead`) measures it over random erasure
    /// patterns with ESIs below 255: about 0.6 % failures at k, 3·10⁻⁵ at
    /// k+1, none in ~347 000 trials at k+2.
    pub const RECEIVE_OVERHEAD: usize = RAPTORQ_RECEIVE_OVERHEAD;

    /// Builds the code for `k` source and `n - k` repair symbols per block.
    ///
    /// Fails with [`FecError::InvalidParams`] unless `1 ≤ k < n ≤ 255`.
    pub fn new(n: u8, k: u8) -> Result<Self, FecError> {
        if k == 0 || k >= n {
            return Err(FecError::InvalidParams);
        }
        let plan = SourceBlockEncodingPlan::generate(u16::from(k));
        Ok(Self { n, k, plan })
    }

    /// Builds the code for `k` source symbols and `ceil(k · overhead)` repair
    /// symbols, with `n` capped at 255.
    ///
    /// Fails with [`FecError::InvalidParams`] if `k` is 0, `overhead` is not
    /// a finite non-negative number, or the result has no repair symbol.
    pub fn with_overhead(k: u8, overhead: f64) -> Result<Self, FecError> {
        if !overhead.is_finite() || overhead < 0.0 {
            return Err(FecError::InvalidParams);
        }
        let repair = (f64::from(k) * overhead).ceil();
        // An integer in [k, 255], so the cast is exact.
        let n = (f64::from(k) + repair).min(f64::from(u8::MAX)) as u8;
        Self::new(n, k)
    }

    fn config(&self, symbol_size: usize) -> Result<ObjectTransmissionInformation, FecError> {
        let t = u16::try_from(symbol_size).map_err(|_| FecError::ShapeMismatch)?;
        let transfer_length = u64::from(self.k) * u64::from(t);
        Ok(ObjectTransmissionInformation::new(
            transfer_length,
            t,
            1,
            1,
            1,
        ))
    }
}

impl fmt::Debug for RaptorQ {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("RaptorQ")
            .field("n", &self.n)
            .field("k", &self.k)
            .finish()
    }
}

impl FecCodec for RaptorQ {
    fn params(&self) -> FecParams {
        FecParams {
            scheme: FecScheme::RaptorQ,
            n: self.n,
            k: self.k,
        }
    }

    fn encode(&self, data: &[&[u8]], parity: &mut [&mut [u8]]) -> Result<(), FecError> {
        let t = check_shapes(self.params(), data, parity)?;
        let config = self.config(t)?;
        // The crate takes the source block as one contiguous buffer.
        let block = data.concat();
        let encoder = SourceBlockEncoder::with_encoding_plan(0, &config, &block, &self.plan);
        let repair_count = u32::from(self.n - self.k);
        for (out, packet) in parity
            .iter_mut()
            .zip(encoder.repair_packets(0, repair_count))
        {
            out.copy_from_slice(packet.data());
        }
        Ok(())
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
        let t = shards.iter().flatten().map(Vec::len).next().unwrap_or(0);
        let config = self.config(t)?;
        let mut decoder = SourceBlockDecoder::new(0, &config, config.transfer_length());
        // The decoder takes ownership of symbols; copy so `shards` stays intact
        // if decoding fails and the caller retries with more shards.
        let packets = shards.iter().enumerate().filter_map(|(esi, shard)| {
            let esi = u32::try_from(esi).ok()?;
            Some(EncodingPacket::new(
                PayloadId::new(0, esi),
                shard.as_ref()?.clone(),
            ))
        });
        let block = decoder.decode(packets).ok_or(FecError::TooFewShards)?;
        for (shard, symbol) in shards[..k].iter_mut().zip(block.chunks_exact(t)) {
            if shard.is_none() {
                *shard = Some(symbol.to_vec());
            }
        }
        Ok(())
    }
}
