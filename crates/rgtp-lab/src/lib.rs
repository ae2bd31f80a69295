//! Reproducible variant sweeps of RGTP on the deterministic simulator.
//!
//! A [`plan::Plan`] names variant axes (FEC, congestion controller, chunk size,
//! proofs) and scenario axes (loss, burst loss, delay, rate, queue, ...); the run
//! set is their cross product times the seeds. [`sweep::run`] executes every run
//! twice (the trace hashes must agree), in parallel, appending each finished run to
//! `runs.jsonl` so an interrupted sweep can resume, and writes `results.csv`,
//! `results.json`, `manifest.json` (ordered by run id) and SVG plots. Selected
//! runs also get a time series of each puller's window, rate and RTT
//! ([`series`]); runs with several pullers get Jain's fairness index. The
//! `protocol` variant axis also runs gtUDP and flows on the same scenarios
//! ([`proto`]).

pub mod plan;
pub mod plot;
pub mod proto;
pub mod protocol;
pub mod record;
pub mod series;
pub mod sweep;

pub use plan::{Plan, PlanError, RunSpec, Scenario, Variant};
pub use protocol::Protocol;
pub use record::ProtoMetrics;
pub use series::{jain, Sample, SeriesSelect};
pub use sweep::{merge, run, Metrics, Outcome, RunRecord, SweepError, SweepOptions};
