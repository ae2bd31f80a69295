//! What one run of a sweep measured: the records the sweep writes and the plots read.

use serde::{Deserialize, Serialize};

/// What one run measured (all in virtual time).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Metrics {
    /// Pullers that got every byte.
    pub completed: u32,
    /// Slowest puller's completion time, seconds.
    pub completion_s: f64,
    /// Goodput of each puller, bytes/s (0 for a failed puller).
    pub goodput_bps: Vec<f64>,
    /// Mean goodput over pullers, bytes/s.
    pub goodput_mean_bps: f64,
    /// NAKs sent, all pullers.
    pub naks: u64,
    /// Pull requests sent, all pullers.
    pub requests: u64,
    /// Chunks requested again, all pullers.
    pub chunks_rerequested: u64,
    /// Parity requested, all pullers.
    pub parity_requested: u64,
    /// Parity received, all pullers.
    pub parity_received: u64,
    /// Chunks rebuilt by FEC, all pullers.
    pub fec_recoveries: u64,
    /// Mean smoothed RTT at the end, microseconds.
    pub srtt_us: u64,
    /// Bytes the pullers put on the wire.
    pub puller_bytes_sent: u64,
    /// Bytes the exposer put on the wire.
    pub exposer_bytes_sent: u64,
    /// Datagrams the exposer sent.
    pub exposer_datagrams: u64,
    /// Chunks the exposer served.
    pub chunks_served: u64,
    /// Parity the exposer served.
    pub parity_served: u64,
    /// Jain's fairness index of the pullers' goodputs ([`crate::series::jain`]).
    #[serde(default)]
    pub jain: f64,
    /// Bytes both sides put on the wire per payload byte delivered to a puller
    /// (exposure size times pullers).
    #[serde(default)]
    pub wire_overhead: f64,
    /// Hash of the packet trace, hex.
    pub trace_hash: String,
}

/// One finished run: its settings and metrics.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct RunRecord {
    /// Run id.
    pub id: usize,
    /// FEC spec.
    pub fec: String,
    /// Congestion controller.
    pub cc: String,
    /// Chunk size.
    pub chunk_size: u32,
    /// Proofs on.
    pub proofs: bool,
    /// Random loss.
    pub loss: f64,
    /// Burst loss as "p/r/h" or "off".
    pub burst: String,
    /// One-way delay, ms.
    pub delay_ms: f64,
    /// Jitter, ms.
    pub jitter_ms: f64,
    /// Uplink rate, bytes/s, 0 for unlimited.
    pub rate_bps: u64,
    /// Delivery trace driving the uplink, as the plan names it ("none" without one).
    #[serde(default = "no_trace")]
    pub trace: String,
    /// SHA-256 of the trace file, hex (empty without one).
    #[serde(default)]
    pub trace_sha256: String,
    /// Uplink queue, bytes.
    pub queue: u64,
    /// Reorder probability.
    pub reorder: f64,
    /// Duplication probability.
    pub duplicate: f64,
    /// Corruption probability.
    pub corrupt: f64,
    /// Pullers.
    pub pullers: u32,
    /// Network seed.
    pub seed: u64,
    /// What was measured.
    pub metrics: Metrics,
}

fn no_trace() -> String {
    "none".into()
}

impl RunRecord {
    /// The label of the record's variant.
    pub fn variant_label(&self) -> String {
        format!(
            "fec={} cc={} chunk={} proofs={}",
            self.fec, self.cc, self.chunk_size, self.proofs
        )
    }
}
