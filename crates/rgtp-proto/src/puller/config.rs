//! The puller's settings.

use std::time::Duration;

use rgtp_wire::ExposureId;

use crate::cc::Controller;
use crate::crypto::{CipherId, Key};
use crate::merkle::HashId;
use crate::Peer;

/// Puller settings.
#[derive(Debug, Clone)]
pub struct PullerConfig {
    /// Exposure to pull.
    pub exposure_id: ExposureId,
    /// Where the exposer is.
    pub exposer: Peer,
    /// The exposure's key.
    pub key: Key,
    /// Cipher pinned by the ticket; a Manifest announcing another is refused.
    pub expected_cipher: Option<CipherId>,
    /// Hash pinned by the ticket; a Manifest announcing another is refused.
    pub expected_hash: Option<HashId>,
    /// Ask for Merkle proofs with every chunk.
    pub want_proofs: bool,
    /// Request FEC parity when the exposure has it.
    pub use_fec: bool,
    /// Window at start, in chunks.
    pub initial_window: u32,
    /// Window ceiling, in chunks.
    pub max_window: u32,
    /// Entries per NAK, at most. A NAK asks for what room the window has when it is
    /// sent, so a larger cap means fewer, larger NAKs, never a later request: 256
    /// (1,048 bytes with a token) costs the exposer fewer wake-ups than 64.
    pub max_entries_per_nak: usize,
    /// Largest payload accepted when parsing.
    pub max_payload: usize,
    /// Largest chunk count accepted from a Manifest (bounds the received bitmap).
    pub max_chunks: u32,
    /// Largest Total_Size accepted from a Manifest (CLI `--max-size`); a larger one is
    /// refused, and reported as [`PullError::TooLarge`](super::PullError::TooLarge) if no acceptable one follows.
    pub max_total_size: u64,
    /// First Pull_Request retry delay (doubles per retry, capped at 1 s).
    pub handshake_interval: Duration,
    /// Give up when no Manifest arrives within this.
    pub handshake_timeout: Duration,
    /// Give up when nothing useful arrives within this.
    pub idle_timeout: Duration,
    /// Floor of the retransmission timeout.
    pub min_rto: Duration,
    /// Keepalive when nothing was sent for this long (upstream: 25 s).
    pub keepalive_interval: Duration,
    /// Rate_Report period.
    pub rate_report_interval: Duration,
    /// Re-send Pull_Request this often to refresh the address-validation token.
    pub token_refresh: Duration,
    /// Without proofs, leave the Merkle check to the driver: instead of hashing each chunk
    /// as it arrives, emit [`PullerEvent::VerifyRoot`](super::PullerEvent::VerifyRoot) once every chunk is in and let the
    /// driver hash the reassembled output (in parallel) and report the root through
    /// [`Puller::handle_root`](super::Puller::handle_root). Chunks are still authenticated by the AEAD on arrival.
    pub deferred_root: bool,
    /// With proofs negotiated, leave checking them to the driver, on another core:
    /// a chunk that carries a proof is opened and handed out in a [`Delivered`](super::Delivered)
    /// holding its proof, but it is not accepted until the driver reports its
    /// verdict through [`Puller::handle_verdict`](super::Puller::handle_verdict) (a
    /// [`ProofChecker`](super::ProofChecker) gives it); a chunk that fails is requested
    /// again, its spoiled bytes in the output overwritten by the good copy. FEC-rebuilt
    /// chunks are handed out the same way ([`PullerEvent::Recovered`](super::PullerEvent::Recovered)
    /// with `unverified` set), and the root check goes to the driver
    /// ([`PullerEvent::VerifyRoot`](super::PullerEvent::VerifyRoot)). Off by default: a
    /// driver that writes straight into what its user reads (the C ABI's streaming
    /// delivery) must see only verified chunks.
    pub offload_proofs: bool,
    /// With [`offload_proofs`](Self::offload_proofs), ask the exposer for proofs a
    /// run at a time (extension, spec §3.6): chunks first requested go out with only
    /// each aligned run of 64's first chunk carrying its proof, and the driver
    /// checks a run once all its chunks are in (a [`RunChecker`](super::RunChecker)),
    /// so proofs cost one packet in 64 instead of every packet. Re-requested
    /// chunks always come with their proofs. Used only when the Manifest says the
    /// exposer honours it. On by default.
    pub proof_runs: bool,
    /// With [`offload_proofs`](Self::offload_proofs), take up the proofs of an
    /// exposure prepared with them (ManifestFlags PROOFS) even without
    /// [`want_proofs`](Self::want_proofs): such an exposer sends them anyway (spec
    /// §3.6), so from the Manifest on the puller asks for them on its NAKs and
    /// checks them as `want_proofs` would, off the receive path, a run at a time
    /// where [`proof_runs`](Self::proof_runs) is negotiated (spec §8.11). Without it,
    /// proofs nobody asked for are folded to the root on the receive path, every
    /// one of them. Off by default.
    pub take_offered_proofs: bool,
    /// Most chunks the search after a root mismatch may ask for with proofs (spec
    /// §8.12); past it the pull fails with [`PullError::MerkleFailed`](super::PullError::MerkleFailed).
    pub max_repair_probes: u32,
    /// The congestion controller ([`crate::cc`]; default `delay`).
    pub congestion: Controller,
    /// Cap on the bytes requested per second (chunk and parity payload), enforced by a
    /// token bucket over the requests: what a puller does not ask for, no exposer sends.
    /// `None`: no cap.
    pub max_rate: Option<u64>,
}

impl PullerConfig {
    /// Defaults for pulling `exposure_id` from `exposer` with `key`.
    pub fn new(exposure_id: ExposureId, exposer: Peer, key: Key) -> Self {
        PullerConfig {
            exposure_id,
            exposer,
            key,
            expected_cipher: None,
            expected_hash: None,
            want_proofs: false,
            use_fec: true,
            initial_window: 64,
            max_window: 4096,
            max_entries_per_nak: 256,
            max_payload: 65_507,
            max_chunks: 1 << 26,
            max_total_size: u64::MAX,
            handshake_interval: Duration::from_millis(250),
            handshake_timeout: Duration::from_secs(5),
            idle_timeout: Duration::from_secs(10),
            min_rto: Duration::from_millis(25),
            keepalive_interval: Duration::from_secs(25),
            rate_report_interval: Duration::from_secs(1),
            token_refresh: Duration::from_secs(20),
            deferred_root: false,
            offload_proofs: false,
            proof_runs: true,
            take_offered_proofs: false,
            max_repair_probes: 65_536,
            congestion: Controller::DEFAULT,
            max_rate: None,
        }
    }
}
