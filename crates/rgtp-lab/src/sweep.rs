//! Executing a plan: runs, records, outputs, resume, shards and merging.

use std::collections::BTreeMap;
use std::fmt;
use std::fs::{self, File, OpenOptions};
use std::io::{BufRead, BufReader, Write};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::Mutex;
use std::time::{Duration, Instant};

use rgtp::sim::{simulate, simulate_observed, SimReport, EXPOSER};
use rgtp::{ExposerBuilder, FecSpec, Prepared};
use rgtp_link::mem::SimNet;
use rgtp_proto::cc::Controller;
use rgtp_proto::crypto::Key;
use rgtp_proto::{ExposerConfig, PullerConfig};
use sha2::{Digest, Sha256};

use crate::plan::{Plan, PlanError, RunSpec};
use crate::proto::ProtoRun;
use crate::protocol::Protocol;
pub use crate::record::{Metrics, ProtoMetrics, RunRecord};
use crate::series::{jain, series_csv, Sample, Sampler, SeriesSelect};

/// Virtual time a run may take before its pullers are cut off.
pub const RUN_LIMIT: Duration = Duration::from_secs(3600);

/// Why a sweep failed.
#[derive(Debug)]
pub enum SweepError {
    /// The plan is malformed.
    Plan(PlanError),
    /// A run gave two different trace hashes on the same inputs.
    Nondeterministic {
        /// The run id.
        id: usize,
        /// The two hashes.
        hashes: (u64, u64),
    },
    /// A run could not be set up.
    Setup {
        /// The run id.
        id: usize,
        /// Why.
        reason: String,
    },
    /// Reading or writing the output directory failed.
    Io(String),
    /// Shard directories do not belong to one plan, or runs are missing.
    Merge(String),
}

impl fmt::Display for SweepError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            SweepError::Plan(e) => write!(f, "{e}"),
            SweepError::Nondeterministic { id, hashes } => write!(
                f,
                "run {id} is not deterministic: trace hashes {:016x} and {:016x}",
                hashes.0, hashes.1
            ),
            SweepError::Setup { id, reason } => write!(f, "run {id}: {reason}"),
            SweepError::Io(e) => write!(f, "{e}"),
            SweepError::Merge(e) => write!(f, "merge: {e}"),
        }
    }
}

impl std::error::Error for SweepError {}

impl From<PlanError> for SweepError {
    fn from(e: PlanError) -> Self {
        SweepError::Plan(e)
    }
}

fn io(path: &Path, e: std::io::Error) -> SweepError {
    SweepError::Io(format!("{}: {e}", path.display()))
}

/// Deterministic data of `size` bytes.
fn data(size: u64) -> Vec<u8> {
    let mut x: u64 = 0x9e37_79b9_7f4a_7c15;
    (0..size)
        .map(|_| {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            x as u8
        })
        .collect()
}

fn prepare(plan: &Plan, spec: &RunSpec, data: &[u8]) -> Result<Prepared, SweepError> {
    let setup = |reason: String| SweepError::Setup {
        id: spec.id,
        reason,
    };
    let fec: FecSpec = spec.variant.fec.parse().map_err(setup)?;
    let mut id = [0u8; 16];
    id[..8].copy_from_slice(&(spec.id as u64).to_le_bytes());
    id[8..].copy_from_slice(&plan.size.to_le_bytes());
    ExposerBuilder::new()
        .with_fec(fec)
        .with_chunk_size(spec.variant.chunk_size)
        .with_proofs(spec.variant.proofs)
        .with_key(Key::from_bytes([7; 32]))
        .with_exposure_id(id)
        .with_token_secret([9; 32])
        .with_config(ExposerConfig {
            max_segments: 16,
            ..Default::default()
        })
        .expose(data)
        .map_err(|e| setup(e.to_string()))
}

fn simulate_once(
    p: &Prepared,
    spec: &RunSpec,
    sampler: Option<&mut Sampler>,
    trace: bool,
) -> Result<SimReport, SweepError> {
    let cc = Controller::by_name(&spec.variant.cc).ok_or_else(|| SweepError::Setup {
        id: spec.id,
        reason: format!("unknown controller {}", spec.variant.cc),
    })?;
    let configs = (0..spec.scenario.pullers)
        .map(|_| {
            let mut c = PullerConfig::new(*p.exposure.id(), EXPOSER, p.key.clone());
            c.idle_timeout = Duration::from_secs(30);
            c.congestion = cc;
            c
        })
        .collect();
    let mut net = SimNet::new(spec.scenario.downlink(), spec.seed);
    net.set_bottleneck(EXPOSER, spec.scenario.uplink());
    if trace {
        net.enable_trace();
    }
    let Some(sampler) = sampler else {
        return Ok(simulate(p, configs, net, RUN_LIMIT));
    };
    let report = simulate_observed(p, configs, net, RUN_LIMIT, &mut |i, now, puller| {
        sampler.observe(i, now, || puller.stats())
    });
    for (i, o) in report.pullers.iter().enumerate() {
        sampler.finish(i, o.elapsed, &o.stats);
    }
    Ok(report)
}

/// Executes one run twice and checks both give the same trace hash.
pub fn execute(plan: &Plan, spec: &RunSpec) -> Result<RunRecord, SweepError> {
    execute_sampled(plan, spec, None).map(|(r, _)| r)
}

/// [`execute`], with the first of the two simulations sampled every `sample`
/// of virtual time when given; the second is not, so the trace-hash check also
/// holds sampling to leaving the run unchanged.
pub fn execute_sampled(
    plan: &Plan,
    spec: &RunSpec,
    sample: Option<Duration>,
) -> Result<(RunRecord, Option<Vec<Sample>>), SweepError> {
    execute_traced(plan, spec, sample, false).map(|(r, s, _)| (r, s))
}

/// Every datagram a run's network delivered (see [`execute_traced`]).
pub type Deliveries = Vec<rgtp_link::mem::TraceEntry>;

/// What [`execute_traced`] returns: the run's record, its time series if sampled,
/// and its deliveries if traced.
pub type Traced = (RunRecord, Option<Vec<Sample>>, Option<Deliveries>);

/// [`execute_sampled`], also returning every datagram the second simulation's
/// network delivered when `trace` is set (kept beside the trace hash, so the run
/// is the same).
pub fn execute_traced(
    plan: &Plan,
    spec: &RunSpec,
    sample: Option<Duration>,
    trace: bool,
) -> Result<Traced, SweepError> {
    let bytes = data(plan.size);
    let protocol = Protocol::parse(&spec.variant.protocol).map_err(|reason| SweepError::Setup {
        id: spec.id,
        reason,
    })?;
    if protocol != Protocol::Rgtp {
        let setup = |reason| SweepError::Setup {
            id: spec.id,
            reason,
        };
        let a = crate::proto::run(protocol, spec, &bytes, RUN_LIMIT, false).map_err(setup)?;
        let b = crate::proto::run(protocol, spec, &bytes, RUN_LIMIT, trace).map_err(setup)?;
        if a.trace_hash != b.trace_hash {
            return Err(SweepError::Nondeterministic {
                id: spec.id,
                hashes: (a.trace_hash, b.trace_hash),
            });
        }
        return Ok((proto_record(plan, spec, a), None, b.trace));
    }
    let p = prepare(plan, spec, &bytes)?;
    let mut sampler = sample.map(|step| {
        Sampler::new(
            step,
            spec.scenario.pullers as usize,
            spec.variant.chunk_size,
        )
    });
    let a = simulate_once(&p, spec, sampler.as_mut(), false)?;
    let mut b = simulate_once(&p, spec, None, trace)?;
    if a.trace_hash != b.trace_hash {
        return Err(SweepError::Nondeterministic {
            id: spec.id,
            hashes: (a.trace_hash, b.trace_hash),
        });
    }
    Ok((
        record(plan, spec, &a, &bytes),
        sampler.map(Sampler::into_samples),
        b.trace.take(),
    ))
}

/// Writes the datagrams run `id` delivered as `pcaps/run-<id>.pcap` in `out`:
/// Ethernet frames carrying UDP, the simulator's nodes as hosts `10.0.0.1` (the
/// exposer) and up (pullers), timestamps in the run's virtual time. Datagrams the
/// scenario dropped are not in it. `rgtp inspect` and Wireshark read it.
pub fn write_pcap(
    out: &Path,
    id: usize,
    trace: &[rgtp_link::mem::TraceEntry],
) -> Result<(), SweepError> {
    let dir = out.join("pcaps");
    fs::create_dir_all(&dir).map_err(|e| io(&dir, e))?;
    let path = dir.join(format!("run-{id}.pcap"));
    let f = File::create(&path).map_err(|e| io(&path, e))?;
    let mut w =
        rgtp_capture::CaptureWriter::new(std::io::BufWriter::new(f)).map_err(|e| io(&path, e))?;
    for d in trace {
        w.write_datagram(d.at.total_micros(), d.from, d.to, None, &d.bytes)
            .map_err(|e| io(&path, e))?;
    }
    w.into_inner().map_err(|e| io(&path, e))?;
    Ok(())
}

/// Writes the time series of run `rec` as `series/run-<id>.csv`, `.svg` and
/// `.png` under `out`.
pub fn write_series(out: &Path, rec: &RunRecord, samples: &[Sample]) -> Result<(), SweepError> {
    let dir = out.join("series");
    fs::create_dir_all(&dir).map_err(|e| io(&dir, e))?;
    let plot = |e: String| SweepError::Io(format!("plot: {e}"));
    let id = rec.id;
    let link = match (rec.trace.as_str(), rec.rate_bps) {
        ("none", 0) => "unlimited".to_owned(),
        ("none", r) => format!("{}Mbit/s", r as f64 * 8.0 / 1e6),
        (t, _) => t.to_owned(),
    };
    let title = format!(
        "run {id}: {}; loss={} delay={}ms {link} queue={}KiB pullers={} seed={}",
        rec.variant_label(),
        rec.loss,
        rec.delay_ms,
        rec.queue / 1024,
        rec.pullers,
        rec.seed
    );
    let files: [(&str, Vec<u8>); 3] = [
        ("csv", series_csv(samples).into_bytes()),
        (
            "svg",
            crate::plot::series_svg(&title, samples)
                .map_err(plot)?
                .into_bytes(),
        ),
        (
            "png",
            crate::plot::series_png(&title, samples).map_err(plot)?,
        ),
    ];
    for (ext, bytes) in files {
        let p = dir.join(format!("run-{id}.{ext}"));
        fs::write(&p, bytes).map_err(|e| io(&p, e))?;
    }
    Ok(())
}

fn record(plan: &Plan, spec: &RunSpec, r: &SimReport, data: &[u8]) -> RunRecord {
    let n = r.pullers.len().max(1);
    let mut m = Metrics {
        completed: 0,
        completion_s: 0.0,
        goodput_bps: Vec::new(),
        goodput_mean_bps: 0.0,
        naks: 0,
        requests: 0,
        chunks_rerequested: 0,
        parity_requested: 0,
        parity_received: 0,
        fec_recoveries: 0,
        srtt_us: 0,
        jain: 0.0,
        wire_overhead: 0.0,
        puller_bytes_sent: 0,
        exposer_bytes_sent: r.exposer.bytes_out,
        exposer_datagrams: r.exposer.datagrams_out,
        chunks_served: r.exposer.chunks_sent,
        parity_served: r.exposer.parity_sent,
        trace_hash: format!("{:016x}", r.trace_hash),
        proto: None,
    };
    let mut srtt = 0u64;
    for o in &r.pullers {
        let ok = matches!(&o.result, Ok(out) if out == data);
        let secs = o.elapsed.as_secs_f64();
        let g = if ok && secs > 0.0 {
            plan.size as f64 / secs
        } else {
            0.0
        };
        if ok {
            m.completed += 1;
        }
        m.completion_s = m.completion_s.max(secs);
        m.goodput_bps.push(g);
        let s = &o.stats;
        m.naks += s.naks_sent;
        m.requests += s.pull_requests_sent;
        m.chunks_rerequested += s.chunks_rerequested;
        m.parity_requested += s.parity_requested;
        m.parity_received += s.parity_received;
        m.fec_recoveries += s.fec_recoveries;
        m.puller_bytes_sent += s.bytes_sent;
        srtt += s.srtt_us;
    }
    m.srtt_us = srtt / n as u64;
    m.goodput_mean_bps = m.goodput_bps.iter().sum::<f64>() / n as f64;
    m.jain = jain(&m.goodput_bps);
    let payload = plan.size as f64 * n as f64;
    m.wire_overhead = (m.exposer_bytes_sent + m.puller_bytes_sent) as f64 / payload;
    settings(spec, m)
}

/// The record of a gtUDP or flow run: the sender stands where the exposer
/// does, the receiver where the puller does; RGTP's own counters stay 0 (empty
/// in the CSV).
fn proto_record(plan: &Plan, spec: &RunSpec, r: ProtoRun) -> RunRecord {
    let secs = r.completion.as_secs_f64();
    let g = if secs > 0.0 {
        r.delivered_bytes as f64 / secs
    } else {
        0.0
    };
    let m = Metrics {
        completed: u32::from(r.complete),
        completion_s: secs,
        goodput_bps: vec![g],
        goodput_mean_bps: g,
        naks: 0,
        requests: 0,
        chunks_rerequested: 0,
        parity_requested: 0,
        parity_received: 0,
        fec_recoveries: 0,
        srtt_us: 0,
        puller_bytes_sent: r.receiver_bytes,
        exposer_bytes_sent: r.sender_bytes,
        exposer_datagrams: r.sender_datagrams,
        chunks_served: 0,
        parity_served: 0,
        jain: jain(&[g]),
        wire_overhead: (r.sender_bytes + r.receiver_bytes) as f64 / plan.size as f64,
        trace_hash: format!("{:016x}", r.trace_hash),
        proto: Some(r.metrics),
    };
    settings(spec, m)
}

fn settings(spec: &RunSpec, m: Metrics) -> RunRecord {
    let sc = &spec.scenario;
    RunRecord {
        id: spec.id,
        protocol: spec.variant.protocol.clone(),
        fec: spec.variant.fec.clone(),
        cc: spec.variant.cc.clone(),
        chunk_size: spec.variant.chunk_size,
        proofs: spec.variant.proofs,
        loss: sc.loss,
        burst: match sc.burst {
            None => "off".into(),
            Some((p, q, h)) => format!("{p}/{q}/{h}"),
        },
        delay_ms: sc.delay_ms,
        jitter_ms: sc.jitter_ms,
        rate_bps: sc.rate.unwrap_or(0),
        trace: sc
            .trace
            .as_ref()
            .map_or_else(|| "none".into(), |t| t.path.clone()),
        trace_sha256: sc
            .trace
            .as_ref()
            .map_or_else(String::new, |t| t.sha256.clone()),
        queue: sc.queue,
        reorder: sc.reorder,
        duplicate: sc.duplicate,
        corrupt: sc.corrupt,
        pullers: sc.pullers,
        seed: spec.seed,
        metrics: m,
    }
}

/// How to run a sweep.
pub struct SweepOptions<'a> {
    /// Output directory.
    pub out: PathBuf,
    /// Worker threads.
    pub jobs: usize,
    /// Keep the runs already in `runs.jsonl` and run only the missing ones.
    pub resume: bool,
    /// Run only ids with `id % n == i`.
    pub shard: Option<(usize, usize)>,
    /// When set, no new run is started.
    pub stop: Option<&'a AtomicBool>,
    /// Start at most this many runs (then stop as if interrupted).
    pub max_runs: Option<usize>,
    /// Called after each finished run with (finished, total).
    pub progress: Option<&'a (dyn Fn(usize, usize) + Sync)>,
    /// Runs that get a time series, instead of the plan's choice.
    pub series: Option<SeriesSelect>,
    /// Runs whose delivered datagrams are written as `pcaps/run-<id>.pcap`.
    pub pcaps: SeriesSelect,
}

impl SweepOptions<'_> {
    /// Defaults: every run, on the available cores.
    pub fn new(out: impl Into<PathBuf>) -> Self {
        SweepOptions {
            out: out.into(),
            jobs: std::thread::available_parallelism().map_or(1, |n| n.get()),
            resume: false,
            shard: None,
            stop: None,
            max_runs: None,
            progress: None,
            series: None,
            pcaps: SeriesSelect::None,
        }
    }
}

/// How a sweep ended.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Outcome {
    /// Every selected run finished and the outputs were written.
    Complete {
        /// Runs in the outputs.
        runs: usize,
    },
    /// Stopped early; finished runs are in `runs.jsonl`.
    Interrupted {
        /// Runs finished so far.
        done: usize,
        /// Runs selected.
        total: usize,
    },
}

fn read_records(path: &Path) -> Result<BTreeMap<usize, RunRecord>, SweepError> {
    let mut out = BTreeMap::new();
    let f = match File::open(path) {
        Ok(f) => f,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(out),
        Err(e) => return Err(io(path, e)),
    };
    for line in BufReader::new(f).lines() {
        let line = line.map_err(|e| io(path, e))?;
        // A line cut short by an interruption is not a finished run.
        if let Ok(mut r) = serde_json::from_str::<RunRecord>(&line) {
            // Records from before the fairness column: it follows from the goodputs.
            r.metrics.jain = jain(&r.metrics.goodput_bps);
            out.insert(r.id, r);
        }
    }
    Ok(out)
}

/// Runs (or resumes) a sweep of `plan` into `opts.out`.
pub fn run(plan: &Plan, opts: &SweepOptions<'_>) -> Result<Outcome, SweepError> {
    let started = Instant::now();
    let series = opts.series.as_ref().unwrap_or(&plan.series);
    for (what, sel) in [("series", series), ("pcaps", &opts.pcaps)] {
        if let SeriesSelect::Ids(ids) = sel {
            let n = plan.runs().len();
            if let Some(id) = ids.iter().find(|&&id| id >= n) {
                return Err(SweepError::Plan(PlanError(format!(
                    "{what}: run {id} is not in the plan (its runs are 0..={})",
                    n - 1
                ))));
            }
        }
    }
    fs::create_dir_all(&opts.out).map_err(|e| io(&opts.out, e))?;
    let jsonl = opts.out.join("runs.jsonl");
    let selected: Vec<RunSpec> = plan
        .runs()
        .into_iter()
        .filter(|r| !matches!(opts.shard, Some((i, n)) if r.id % n != i))
        .collect();
    let mut done = if opts.resume {
        read_records(&jsonl)?
    } else {
        BTreeMap::new()
    };
    done.retain(|id, _| selected.iter().any(|r| r.id == *id));
    // Rewrite the log with only whole records, so appends start on a fresh line.
    {
        let mut f = File::create(&jsonl).map_err(|e| io(&jsonl, e))?;
        for r in done.values() {
            writeln!(
                f,
                "{}",
                serde_json::to_string(r).expect("record serialises")
            )
            .map_err(|e| io(&jsonl, e))?;
        }
    }
    let todo: Vec<&RunSpec> = selected
        .iter()
        .filter(|r| !done.contains_key(&r.id))
        .collect();
    let total = selected.len();
    let log = Mutex::new(
        OpenOptions::new()
            .append(true)
            .open(&jsonl)
            .map_err(|e| io(&jsonl, e))?,
    );
    let results = Mutex::new(done);
    let next = AtomicUsize::new(0);
    let failed: Mutex<Option<SweepError>> = Mutex::new(None);
    let abort = AtomicBool::new(false);
    let jobs = opts.jobs.max(1).min(todo.len().max(1));
    let first_seed = plan.seeds.first().copied().unwrap_or(0);
    std::thread::scope(|s| {
        for _ in 0..jobs {
            s.spawn(|| loop {
                if abort.load(Ordering::Relaxed)
                    || opts.stop.is_some_and(|f| f.load(Ordering::Relaxed))
                {
                    return;
                }
                let i = next.fetch_add(1, Ordering::Relaxed);
                if i >= todo.len() || opts.max_runs.is_some_and(|m| i >= m) {
                    return;
                }
                let spec = todo[i];
                let sample = series
                    .selects(spec.id, spec.seed, first_seed)
                    .then_some(plan.sample);
                let pcap = opts.pcaps.selects(spec.id, spec.seed, first_seed);
                let done =
                    execute_traced(plan, spec, sample, pcap).and_then(|(rec, samples, trace)| {
                        if let Some(t) = trace {
                            write_pcap(&opts.out, rec.id, &t)?;
                        }
                        match samples {
                            Some(s) => write_series(&opts.out, &rec, &s).map(|()| rec),
                            None => Ok(rec),
                        }
                    });
                match done {
                    Ok(rec) => {
                        let line = serde_json::to_string(&rec).expect("record serialises");
                        let w = writeln!(log.lock().unwrap(), "{line}");
                        if let Err(e) = w {
                            *failed.lock().unwrap() = Some(io(&jsonl, e));
                            abort.store(true, Ordering::Relaxed);
                            return;
                        }
                        let mut res = results.lock().unwrap();
                        res.insert(rec.id, rec);
                        if let Some(p) = opts.progress {
                            p(res.len(), total);
                        }
                    }
                    Err(e) => {
                        failed.lock().unwrap().get_or_insert(e);
                        abort.store(true, Ordering::Relaxed);
                        return;
                    }
                }
            });
        }
    });
    if let Some(e) = failed.into_inner().unwrap() {
        return Err(e);
    }
    let results = results.into_inner().unwrap();
    if results.len() < total {
        return Ok(Outcome::Interrupted {
            done: results.len(),
            total,
        });
    }
    let records: Vec<RunRecord> = results.into_values().collect();
    write_outputs(plan, &records, &opts.out, opts.shard, started.elapsed())?;
    Ok(Outcome::Complete {
        runs: records.len(),
    })
}

/// The plan's SHA-256, hex.
pub fn plan_hash(plan: &Plan) -> String {
    hex::encode(Sha256::digest(plan.source.as_bytes()))
}

fn git_commit() -> String {
    std::process::Command::new("git")
        .args(["rev-parse", "HEAD"])
        .output()
        .ok()
        .filter(|o| o.status.success())
        .and_then(|o| String::from_utf8(o.stdout).ok())
        .map(|s| s.trim().to_owned())
        .filter(|s| !s.is_empty())
        .unwrap_or_else(|| "unknown".into())
}

/// The CSV header.
pub const CSV_HEADER: &str = "run_id,fec,cc,chunk_size,proofs,loss,burst,delay_ms,jitter_ms,rate_bps,queue,reorder,duplicate,corrupt,pullers,seed,completed,completion_s,goodput_mean_bps,goodput_min_bps,naks,requests,chunks_rerequested,parity_requested,parity_received,fec_recoveries,srtt_us,puller_bytes_sent,exposer_bytes_sent,exposer_datagrams,chunks_served,parity_served,trace_hash,trace,trace_sha256,jain,wire_overhead";

/// The columns added to [`CSV_HEADER`] when a sweep runs protocols other
/// than RGTP (a sweep of RGTP pulls only keeps the header above).
pub const CSV_PROTO_HEADER: &str = "protocol,sent,delivered,delivered_pct,duplicates,retransmissions,failed,in_order,latency_p50_ms,latency_p99_ms,parity_sent,parity_used";

/// The CSV text of `records` (ordered as given). With a protocol other than
/// RGTP among them, every row gains the [`CSV_PROTO_HEADER`] columns, and the
/// columns that belong to RGTP alone (FEC, controller, proofs, NAKs, requests,
/// re-requests, parity, recoveries, SRTT, chunks and parity served) are empty
/// in the other protocols' rows, as the new columns are in RGTP's rows.
pub fn csv(records: &[RunRecord]) -> String {
    let mixed = records.iter().any(|r| r.protocol != "rgtp");
    let mut out = String::from(CSV_HEADER);
    if mixed {
        out.push(',');
        out.push_str(CSV_PROTO_HEADER);
    }
    out.push('\n');
    for r in records {
        let m = &r.metrics;
        let gmin = m.goodput_bps.iter().copied().fold(f64::INFINITY, f64::min);
        let gmin = if gmin.is_finite() { gmin } else { 0.0 };
        let rgtp = r.protocol == "rgtp";
        let only = |v: String| if rgtp { v } else { String::new() };
        out.push_str(&format!(
            "{},{},{},{},{},{},{},{},{},{},{},{},{},{},{},{},{},{},{},{},{},{},{},{},{},{},{},{},{},{},{},{},{},{},{},{},{}",
            r.id, only(r.fec.replace(',', ";")), only(r.cc.clone()), r.chunk_size,
            only(r.proofs.to_string()), r.loss, r.burst,
            r.delay_ms, r.jitter_ms, r.rate_bps, r.queue, r.reorder, r.duplicate, r.corrupt,
            r.pullers, r.seed, m.completed, m.completion_s, m.goodput_mean_bps, gmin,
            only(m.naks.to_string()), only(m.requests.to_string()),
            only(m.chunks_rerequested.to_string()), only(m.parity_requested.to_string()),
            only(m.parity_received.to_string()), only(m.fec_recoveries.to_string()),
            only(m.srtt_us.to_string()), m.puller_bytes_sent, m.exposer_bytes_sent,
            m.exposer_datagrams, only(m.chunks_served.to_string()),
            only(m.parity_served.to_string()), m.trace_hash,
            r.trace.replace(',', ";"), r.trace_sha256, m.jain, m.wire_overhead
        ));
        if mixed {
            out.push(',');
            out.push_str(&r.protocol);
            out.push_str(&proto_columns(m.proto.as_ref()));
        }
        out.push('\n');
    }
    out
}

fn proto_columns(p: Option<&ProtoMetrics>) -> String {
    fn opt<T: ToString>(v: Option<T>) -> String {
        v.map_or_else(String::new, |v| v.to_string())
    }
    let Some(p) = p else {
        return ",".repeat(11);
    };
    format!(
        ",{},{},{},{},{},{},{},{},{},{},{}",
        p.sent,
        p.delivered,
        p.delivered_pct(),
        p.duplicates,
        p.retransmissions,
        opt(p.failed),
        opt(p.in_order),
        opt(p.latency_p50_ms),
        opt(p.latency_p99_ms),
        opt(p.parity_sent),
        opt(p.parity_used)
    )
}

fn write_outputs(
    plan: &Plan,
    records: &[RunRecord],
    out: &Path,
    shard: Option<(usize, usize)>,
    wall: Duration,
) -> Result<(), SweepError> {
    let write = |name: &str, text: String| {
        let p = out.join(name);
        fs::write(&p, text).map_err(|e| io(&p, e))
    };
    write("results.csv", csv(records))?;
    write(
        "results.json",
        serde_json::to_string_pretty(records).expect("records serialise"),
    )?;
    let plot = |e: String| SweepError::Io(format!("plot: {e}"));
    write(
        "goodput-vs-loss.svg",
        crate::plot::goodput_vs_loss_svg(records).map_err(plot)?,
    )?;
    write(
        "completion-cdf.svg",
        crate::plot::completion_cdf_svg(records).map_err(plot)?,
    )?;
    write(
        "overhead-vs-loss.svg",
        crate::plot::overhead_vs_loss_svg(records).map_err(plot)?,
    )?;
    write(
        "fairness.svg",
        crate::plot::fairness_svg(records).map_err(plot)?,
    )?;
    for (name, png) in [
        (
            "goodput-vs-loss.png",
            crate::plot::goodput_vs_loss_png(records),
        ),
        (
            "completion-cdf.png",
            crate::plot::completion_cdf_png(records),
        ),
        (
            "overhead-vs-loss.png",
            crate::plot::overhead_vs_loss_png(records),
        ),
        ("fairness.png", crate::plot::fairness_png(records)),
    ] {
        let p = out.join(name);
        fs::write(&p, png.map_err(plot)?).map_err(|e| io(&p, e))?;
    }
    let manifest = serde_json::json!({
        "name": plan.name,
        "plan_sha256": plan_hash(plan),
        "plan": plan.source,
        "git_commit": git_commit(),
        "version": env!("CARGO_PKG_VERSION"),
        "seeds": plan.seeds,
        "runs": records.len(),
        "runs_in_plan": plan.runs().len(),
        "shard": shard.map(|(i, n)| format!("{i}/{n}")),
        "wall_time_s": wall.as_secs_f64(),
        "plan_dir": plan.base.to_string_lossy(),
        "traces": trace_manifest(plan),
    });
    write(
        "manifest.json",
        serde_json::to_string_pretty(&manifest).expect("manifest serialises"),
    )
}

/// The delivery traces a plan uses: path (as written) to SHA-256, in path order.
pub fn trace_manifest(plan: &Plan) -> BTreeMap<String, String> {
    plan.scenarios
        .iter()
        .filter_map(|s| s.trace.as_ref())
        .map(|t| (t.path.clone(), t.sha256.clone()))
        .collect()
}

/// Copies the `run-*` time-series files of `from` (if any) into `to`.
fn copy_series(from: &Path, to: &Path) -> Result<(), SweepError> {
    let entries = match fs::read_dir(from) {
        Ok(e) => e,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(()),
        Err(e) => return Err(io(from, e)),
    };
    fs::create_dir_all(to).map_err(|e| io(to, e))?;
    for entry in entries {
        let entry = entry.map_err(|e| io(from, e))?;
        let name = entry.file_name();
        if name.to_string_lossy().starts_with("run-") && entry.path().is_file() {
            let dest = to.join(&name);
            if dest != entry.path() {
                fs::copy(entry.path(), &dest).map_err(|e| io(&dest, e))?;
            }
        }
    }
    Ok(())
}

/// Joins shard directories of one plan into `out` (with their time series).
pub fn merge(out: &Path, dirs: &[PathBuf]) -> Result<Outcome, SweepError> {
    let started = Instant::now();
    let mut source: Option<(String, String, String, serde_json::Value)> = None;
    let mut all = BTreeMap::new();
    for d in dirs {
        let mp = d.join("manifest.json");
        let text = fs::read_to_string(&mp).map_err(|e| io(&mp, e))?;
        let m: serde_json::Value = serde_json::from_str(&text)
            .map_err(|e| SweepError::Merge(format!("{}: {e}", mp.display())))?;
        let hash = m["plan_sha256"].as_str().unwrap_or_default().to_owned();
        let plan = m["plan"].as_str().unwrap_or_default().to_owned();
        let dir = m["plan_dir"].as_str().unwrap_or(".").to_owned();
        let traces = m["traces"].clone();
        match &source {
            None => source = Some((hash, plan, dir, traces)),
            Some((h, ..)) if *h != hash => {
                return Err(SweepError::Merge(format!(
                    "{} is from plan {hash}, not {h}",
                    d.display()
                )))
            }
            Some((.., t)) if *t != traces => {
                return Err(SweepError::Merge(format!(
                    "{} ran with other trace files",
                    d.display()
                )))
            }
            _ => {}
        }
        all.extend(read_records(&d.join("runs.jsonl"))?);
    }
    let (_, text, dir, traces) =
        source.ok_or_else(|| SweepError::Merge("no directories".into()))?;
    let plan = Plan::parse_in(&text, Path::new(&dir))?;
    let now = serde_json::to_value(trace_manifest(&plan)).expect("hashes serialise");
    if !traces.is_null() && traces != now {
        return Err(SweepError::Merge(
            "a trace file changed since the shards ran".into(),
        ));
    }
    let expected = plan.runs().len();
    if all.len() != expected || all.keys().any(|&id| id >= expected) {
        return Err(SweepError::Merge(format!(
            "{} of {expected} runs present",
            all.len()
        )));
    }
    fs::create_dir_all(out).map_err(|e| io(out, e))?;
    for d in dirs {
        copy_series(&d.join("series"), &out.join("series"))?;
        copy_series(&d.join("pcaps"), &out.join("pcaps"))?;
    }
    let records: Vec<RunRecord> = all.into_values().collect();
    let jsonl: String = records
        .iter()
        .map(|r| serde_json::to_string(r).expect("record serialises") + "\n")
        .collect();
    let p = out.join("runs.jsonl");
    fs::write(&p, jsonl).map_err(|e| io(&p, e))?;
    write_outputs(&plan, &records, out, None, started.elapsed())?;
    Ok(Outcome::Complete {
        runs: records.len(),
    })
}
