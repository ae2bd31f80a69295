//! What the puller tells its driver: events, the verified chunk it hands out,
//! the Manifest's facts, and why a pull failed.

use rgtp_wire::{ExposureId, Hash};

use crate::suite::SuiteId;

/// What a validated Manifest told the puller.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ManifestInfo {
    /// Exposure.
    pub exposure_id: ExposureId,
    /// Plaintext bytes.
    pub total_size: u64,
    /// Chunks.
    pub chunk_count: u32,
    /// Plaintext bytes per chunk.
    pub chunk_size: u32,
    /// Merkle root.
    pub merkle_root: Hash,
    /// Layers.
    pub suite: SuiteId,
    /// The exposer's cap for this pull, bytes per second (spec §8.3.3), if it
    /// stated one.
    pub rate_cap: Option<u64>,
}

impl ManifestInfo {
    /// Where chunk `idx`'s plaintext lies in the output, in bytes: `chunk_size`
    /// long, the last chunk shorter; empty past the end.
    pub fn chunk_range(&self, idx: u32) -> core::ops::Range<u64> {
        let start = (u64::from(idx) * u64::from(self.chunk_size)).min(self.total_size);
        start
            ..start
                .saturating_add(u64::from(self.chunk_size))
                .min(self.total_size)
    }
}

/// The chunks a [`PullerEvent::Kept`] names, in order: `first + i` for each bit `i`
/// of `members`.
pub fn kept_chunks(first: u32, members: u64) -> impl Iterator<Item = u32> {
    (0..64u32)
        .filter(move |i| members & (1 << i) != 0)
        .map(move |i| first + i)
}

/// Why a pull ended without the data.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum PullError {
    /// No Manifest arrived (exposer unreachable, wrong Exposure_ID, or no common version).
    HandshakeTimeout,
    /// Manifests arrived but none was acceptable.
    BadManifest,
    /// The transfer stalled with no authentication or Merkle failures seen.
    Timeout,
    /// Chunks arrived but failed authentication (wrong key, or forged traffic).
    AuthFailed,
    /// Chunks failed Merkle verification, or the root over all chunks did not match.
    MerkleFailed,
    /// The only Manifests that arrived declared more than
    /// [`PullerConfig::max_total_size`](super::PullerConfig::max_total_size).
    TooLarge {
        /// Total_Size the (last such) Manifest declared.
        declared: u64,
        /// The configured limit.
        limit: u64,
    },
}

impl core::fmt::Display for PullError {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.write_str(match self {
            PullError::HandshakeTimeout => "no Manifest from the exposer",
            PullError::BadManifest => "the exposer's Manifest was not acceptable",
            PullError::Timeout => "transfer stalled",
            PullError::AuthFailed => "chunks failed AEAD authentication",
            PullError::MerkleFailed => "Merkle verification failed",
            PullError::TooLarge { declared, limit } => {
                return write!(
                    f,
                    "the exposure declares {declared} bytes, more than the limit of {limit}"
                )
            }
        })
    }
}

impl std::error::Error for PullError {}

/// Events for the driver.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum PullerEvent {
    /// The Manifest was accepted; size the output now.
    Manifest(ManifestInfo),
    /// A chunk rebuilt from FEC, authenticated; write it at `offset`.
    Recovered {
        /// Chunk index.
        index: u32,
        /// Byte offset in the output.
        offset: u64,
        /// Plaintext.
        data: Vec<u8>,
        /// Set only under [`PullerConfig::offload_proofs`](super::PullerConfig::offload_proofs):
        /// no proof vouched for it yet. Write it, check its leaf with
        /// [`ProofChecker::check_leaf`](super::ProofChecker::check_leaf) and report
        /// through [`Puller::handle_verdict`](super::Puller::handle_verdict).
        unverified: bool,
    },
    /// Under [`PullerConfig::offload_proofs`](super::PullerConfig::offload_proofs):
    /// chunks taken from an earlier run's output
    /// ([`Puller::resume_chunk`](super::Puller::resume_chunk)) that are now to be
    /// judged with their proof run (spec §3.6), whose first chunk was just handed out
    /// with its proof: chunk `first + i` for each bit `i` of `members`
    /// ([`kept_chunks`]). They are in the output already
    /// ([`ManifestInfo::chunk_range`]): read each back and hand it to the checker without a proof; its
    /// verdict goes to [`Puller::handle_verdict`](super::Puller::handle_verdict) like
    /// any other.
    Kept {
        /// The run's first chunk.
        first: u32,
        /// Which chunks of the run (bit `i`: chunk `first + i`).
        members: u64,
    },
    /// Every chunk arrived (deferred-root mode): hash the output's chunks with
    /// [`Puller::hash_scheme`](super::Puller::hash_scheme), and pass the root to [`Puller::handle_root`](super::Puller::handle_root).
    VerifyRoot,
    /// Every chunk arrived and the Merkle root over them matches.
    Complete,
    /// The pull ended without the data.
    Failed(PullError),
}

/// An authentic chunk, decrypted in place in the datagram buffer: verified,
/// unless it comes with the proof the driver is to check.
#[derive(Debug, PartialEq, Eq)]
pub struct Delivered<'d> {
    /// Chunk index.
    pub index: u32,
    /// Byte offset in the output.
    pub offset: u64,
    /// Plaintext.
    pub data: &'d [u8],
    /// Set only under [`PullerConfig::offload_proofs`](super::PullerConfig::offload_proofs):
    /// the chunk's Merkle proof, not checked yet. Write the chunk, check the proof
    /// (a [`ProofChecker`](super::ProofChecker)) and report through
    /// [`Puller::handle_verdict`](super::Puller::handle_verdict); until then the chunk
    /// is not accepted.
    pub proof: Option<&'d [u8]>,
    /// Set only under [`PullerConfig::offload_proofs`](super::PullerConfig::offload_proofs):
    /// the chunk is not accepted until the driver's verdict. With its `proof`, or
    /// without one under proof runs (spec §3.6): a [`RunChecker`](super::RunChecker)
    /// then judges it with its run.
    pub unverified: bool,
}

/// What the driver found when it checked a chunk handed out unverified
/// ([`PullerConfig::offload_proofs`](super::PullerConfig::offload_proofs)).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Verdict {
    /// Its proof (or, rebuilt, the hashes around it) verified, and its leaf was
    /// folded into the driver's tree: accept it.
    Verified,
    /// Its proof failed (or verified hashes contradict a rebuilt chunk): request it again.
    Failed,
    /// A rebuilt chunk nothing vouches for yet: request it again, with its proof.
    Unproven,
}

#[cfg(test)]
mod tests {
    use super::*;

    fn info(total_size: u64, chunk_size: u32) -> ManifestInfo {
        ManifestInfo {
            exposure_id: [0; 16],
            total_size,
            chunk_count: total_size.div_ceil(u64::from(chunk_size)) as u32,
            chunk_size,
            merkle_root: [0; 32],
            suite: SuiteId::default(),
            rate_cap: None,
        }
    }

    #[test]
    fn a_chunk_lies_at_its_index_times_the_chunk_size_and_the_last_is_short() {
        let m = info(2_500, 1_000);
        assert_eq!(m.chunk_range(0), 0..1_000);
        assert_eq!(m.chunk_range(1), 1_000..2_000);
        assert_eq!(m.chunk_range(2), 2_000..2_500);
        assert!(m.chunk_range(3).is_empty());
        assert!(m.chunk_range(u32::MAX).is_empty());
        let huge = info(u64::MAX, u32::MAX);
        let last = huge.chunk_range(u32::MAX);
        assert_eq!(
            last.end - last.start,
            u64::from(u32::MAX),
            "the largest index fits"
        );
    }

    #[test]
    fn kept_chunks_are_listed_in_order() {
        assert_eq!(
            kept_chunks(128, 1 | 1 << 5 | 1 << 63).collect::<Vec<_>>(),
            [128, 133, 191]
        );
        assert_eq!(kept_chunks(64, 0).count(), 0);
    }
}
