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
    /// What only gtUDP and flow runs measure (none for RGTP pulls).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub proto: Option<ProtoMetrics>,
}

/// What a gtUDP or flow run measures besides the common metrics. Fields a
/// protocol does not have are `None` (empty in the CSV).
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct ProtoMetrics {
    /// Datagrams (gtUDP) or SDUs (flows) the application handed to the sender.
    pub sent: u64,
    /// Distinct datagrams or SDUs the receiver's application got.
    pub delivered: u64,
    /// Deliveries of a datagram or SDU already delivered (0 for a correct protocol).
    pub duplicates: u64,
    /// Data repeated by the sender: gtUDP DATA repeats, flow retransmissions.
    pub retransmissions: u64,
    /// gtUDP exchanges the sender gave up on.
    pub failed: Option<u64>,
    /// Flows: whether the SDUs arrived in the order written.
    pub in_order: Option<bool>,
    /// Median latency from hand-over to first arrival, milliseconds of
    /// virtual time (gtUDP hands every datagram over at the start; a flow
    /// writes each SDU when its turn comes).
    pub latency_p50_ms: Option<f64>,
    /// 99th percentile of the same latency, milliseconds.
    pub latency_p99_ms: Option<f64>,
    /// Flows: parity datagrams the writer sent.
    pub parity_sent: Option<u64>,
    /// Flows: SDUs the reader rebuilt from parity.
    pub parity_used: Option<u64>,
}

impl ProtoMetrics {
    /// Delivered share of what was sent, percent.
    pub fn delivered_pct(&self) -> f64 {
        if self.sent == 0 {
            100.0
        } else {
            self.delivered as f64 * 100.0 / self.sent as f64
        }
    }
}

/// One finished run: its settings and metrics.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct RunRecord {
    /// Run id.
    pub id: usize,
    /// Protocol ("rgtp" for a pull; see [`crate::protocol::Protocol`]).
    #[serde(default = "rgtp", skip_serializing_if = "is_rgtp")]
    pub protocol: String,
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

fn rgtp() -> String {
    "rgtp".into()
}

fn is_rgtp(p: &str) -> bool {
    p == "rgtp"
}

fn no_trace() -> String {
    "none".into()
}

impl RunRecord {
    /// The label of the record's variant.
    pub fn variant_label(&self) -> String {
        crate::protocol::label(
            &self.protocol,
            &self.fec,
            &self.cc,
            self.chunk_size,
            self.proofs,
        )
    }
}
