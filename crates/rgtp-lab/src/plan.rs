//! The sweep plan: a TOML file naming the variants and scenarios whose cross
//! product, times the seeds, is the run set.

use std::fmt;
use std::ops::Range;
use std::path::{Path, PathBuf};
use std::time::Duration;

use rgtp::FecSpec;
use rgtp_link::impair::ImpairmentConfig;
use rgtp_link::trace::DeliveryTrace;
use rgtp_proto::cc::{Controller, CONTROLLERS};
use serde::Deserialize;

use crate::series::SeriesSelect;
use sha2::{Digest, Sha256};
use toml::{Spanned, Value};

/// A plan that could not be read: the message names the key and the line.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PlanError(pub String);

impl fmt::Display for PlanError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl std::error::Error for PlanError {}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawPlan {
    name: String,
    size: Spanned<Value>,
    seeds: Spanned<Value>,
    sample_ms: Option<Spanned<Value>>,
    series: Option<Spanned<Value>>,
    #[serde(default)]
    variants: RawVariants,
    #[serde(default)]
    scenarios: RawScenarios,
}

#[derive(Deserialize, Default)]
#[serde(deny_unknown_fields)]
struct RawVariants {
    protocol: Option<Spanned<Value>>,
    fec: Option<Spanned<Value>>,
    cc: Option<Spanned<Value>>,
    chunk_size: Option<Spanned<Value>>,
    proofs: Option<Spanned<Value>>,
}

#[derive(Deserialize, Default)]
#[serde(deny_unknown_fields)]
struct RawScenarios {
    loss: Option<Spanned<Value>>,
    burst: Option<Spanned<Value>>,
    delay_ms: Option<Spanned<Value>>,
    jitter_ms: Option<Spanned<Value>>,
    rate: Option<Spanned<Value>>,
    trace: Option<Spanned<Value>>,
    queue: Option<Spanned<Value>>,
    reorder: Option<Spanned<Value>>,
    duplicate: Option<Spanned<Value>>,
    corrupt: Option<Spanned<Value>>,
    pullers: Option<Spanned<Value>>,
}

/// One protocol variant: what the exposer and pullers are configured with.
#[derive(Debug, Clone, PartialEq)]
pub struct Variant {
    /// The protocol run ([`crate::protocol::Protocol`] names it): "rgtp" (a pull),
    /// "gtudp", "gtudp-reference", "gtudp-auth" or "flow:PRESET".
    pub protocol: String,
    /// FEC spec as written in the plan ("none", "rs:40,32", "raptorq:0.25").
    pub fec: String,
    /// Congestion controller name.
    pub cc: String,
    /// Chunk size in bytes.
    pub chunk_size: u32,
    /// Whether chunks carry Merkle proofs.
    pub proofs: bool,
}

impl Variant {
    /// A short label for plots and legends.
    pub fn label(&self) -> String {
        crate::protocol::label(
            &self.protocol,
            &self.fec,
            &self.cc,
            self.chunk_size,
            self.proofs,
        )
    }
}

/// Burst loss as a Gilbert-Elliott chain: p (good to bad), r (bad to good), loss in bad.
pub type Burst = Option<(f64, f64, f64)>;

/// One network scenario.
#[derive(Debug, Clone, PartialEq)]
pub struct Scenario {
    /// Random loss probability on the exposer's uplink.
    pub loss: f64,
    /// Burst loss, or none.
    pub burst: Burst,
    /// One-way delay in milliseconds (both directions).
    pub delay_ms: f64,
    /// Jitter in milliseconds on the uplink.
    pub jitter_ms: f64,
    /// Uplink rate in bytes per second, or unlimited.
    pub rate: Option<u64>,
    /// A delivery trace driving the uplink instead of `rate`, or none.
    pub trace: Option<TraceRef>,
    /// Uplink queue in bytes.
    pub queue: u64,
    /// Reorder probability.
    pub reorder: f64,
    /// Duplication probability.
    pub duplicate: f64,
    /// Corruption probability.
    pub corrupt: f64,
    /// Competing pullers behind the shared uplink.
    pub pullers: u32,
}

impl Scenario {
    /// The exposer's uplink: every impairment of the scenario.
    pub fn uplink(&self) -> ImpairmentConfig {
        let mut c = ImpairmentConfig::default()
            .with_loss(self.loss)
            .with_delay(ms(self.delay_ms))
            .with_jitter(ms(self.jitter_ms))
            .with_reorder(self.reorder)
            .with_duplicate(self.duplicate)
            .with_corrupt(self.corrupt)
            .with_queue_limit(self.queue as usize);
        if let Some((p, r, h)) = self.burst {
            c = c.with_burst_loss(p, r, h);
        }
        if let Some(rate) = self.rate {
            c = c.with_rate_limit(rate);
        }
        if let Some(t) = &self.trace {
            c = c.with_delivery_trace(t.trace.clone());
        }
        c
    }

    /// The pullers' direction: delay only.
    pub fn downlink(&self) -> ImpairmentConfig {
        ImpairmentConfig::default().with_delay(ms(self.delay_ms))
    }
}

/// A delivery trace named by a plan: the path as written, the file's hash and its
/// parsed opportunities.
#[derive(Debug, Clone, PartialEq)]
pub struct TraceRef {
    /// The path as the plan wrote it (relative to the plan file).
    pub path: String,
    /// SHA-256 of the file, hex.
    pub sha256: String,
    /// The parsed trace.
    pub trace: DeliveryTrace,
}

impl TraceRef {
    /// Reads the trace at `path`, resolved against `base` when relative.
    pub fn load(path: &str, base: &Path) -> Result<TraceRef, String> {
        use std::io::Read;
        let full = base.join(path);
        let io = |e: std::io::Error| format!("{}: {e}", full.display());
        let limit = rgtp_link::trace::MAX_TRACE_BYTES;
        let mut bytes = Vec::new();
        std::fs::File::open(&full)
            .map_err(io)?
            .take(limit + 1)
            .read_to_end(&mut bytes)
            .map_err(io)?;
        if bytes.len() as u64 > limit {
            return Err(format!(
                "{}: larger than the trace limit of {limit} bytes",
                full.display()
            ));
        }
        let text = std::str::from_utf8(&bytes)
            .map_err(|_| format!("{}: the trace is not UTF-8 text", full.display()))?;
        let trace = DeliveryTrace::parse(text).map_err(|e| format!("{}: {e}", full.display()))?;
        Ok(TraceRef {
            path: path.to_owned(),
            sha256: hex::encode(Sha256::digest(&bytes)),
            trace,
        })
    }
}

fn ms(v: f64) -> Duration {
    Duration::from_secs_f64(v / 1000.0)
}

/// One run of the sweep.
#[derive(Debug, Clone, PartialEq)]
pub struct RunSpec {
    /// Position in the cross product (variants, scenarios, then seeds).
    pub id: usize,
    /// The variant.
    pub variant: Variant,
    /// The scenario.
    pub scenario: Scenario,
    /// The seed of the simulated network.
    pub seed: u64,
}

/// A parsed, checked plan.
#[derive(Debug, Clone)]
pub struct Plan {
    /// Its name.
    pub name: String,
    /// Bytes exposed in every run.
    pub size: u64,
    /// Seeds, each run once per seed.
    pub seeds: Vec<u64>,
    /// Variant axes, crossed.
    pub variants: Vec<Variant>,
    /// Scenario axes, crossed.
    pub scenarios: Vec<Scenario>,
    /// Step of the per-run time series, virtual time.
    pub sample: Duration,
    /// Runs that get a time series.
    pub series: SeriesSelect,
    /// The plan's text, as read.
    pub source: String,
    /// The directory trace paths are relative to.
    pub base: PathBuf,
}

/// Largest data size a plan may ask for.
pub const MAX_SIZE: u64 = 1 << 32;

struct Ctx<'a> {
    src: &'a str,
}

impl Ctx<'_> {
    fn line(&self, span: &Range<usize>) -> usize {
        let end = span.start.min(self.src.len());
        self.src[..end].matches('\n').count() + 1
    }

    fn err(&self, key: &str, span: &Range<usize>, msg: impl fmt::Display) -> PlanError {
        PlanError(format!(
            "plan key `{key}` (line {}): {msg}",
            self.line(span)
        ))
    }

    /// The values of an axis: a scalar or a list; `single` says whether an array is
    /// itself one value (a burst triple).
    fn axis<T>(
        &self,
        key: &str,
        raw: Option<&Spanned<Value>>,
        default: T,
        single_array: bool,
        parse: impl Fn(&Value) -> Result<T, String>,
    ) -> Result<Vec<T>, PlanError> {
        let Some(raw) = raw else {
            return Ok(vec![default]);
        };
        let span = raw.span();
        let items: Vec<&Value> = match raw.get_ref() {
            Value::Array(a) if !(single_array && a.first().is_some_and(is_number)) => {
                a.iter().collect()
            }
            v => vec![v],
        };
        if items.is_empty() {
            return Err(self.err(key, &span, "empty list: the run set would be empty"));
        }
        items
            .into_iter()
            .map(|v| parse(v).map_err(|m| self.err(key, &span, m)))
            .collect()
    }
}

fn is_number(v: &Value) -> bool {
    matches!(v, Value::Integer(_) | Value::Float(_))
}

fn number(v: &Value) -> Result<f64, String> {
    match v {
        Value::Integer(i) => Ok(*i as f64),
        Value::Float(f) if f.is_finite() => Ok(*f),
        other => Err(format!("expected a number, found {other}")),
    }
}

fn probability(v: &Value) -> Result<f64, String> {
    let p = number(v)?;
    if (0.0..=1.0).contains(&p) {
        Ok(p)
    } else {
        Err(format!("{p} is not a probability in 0..=1"))
    }
}

fn non_negative(v: &Value) -> Result<f64, String> {
    let x = number(v)?;
    if x >= 0.0 {
        Ok(x)
    } else {
        Err(format!("{x} is negative"))
    }
}

/// Parses a byte count: an integer, or a string with a suffix (k, M, G, KiB, MiB, GiB, B).
pub fn parse_bytes(s: &str) -> Result<u64, String> {
    let s = s.trim();
    let split = s
        .find(|c: char| !(c.is_ascii_digit() || c == '.'))
        .unwrap_or(s.len());
    let (num, unit) = s.split_at(split);
    let n: f64 = num
        .parse()
        .map_err(|_| format!("`{s}` is not a byte count"))?;
    let mult = match unit.trim() {
        "" | "B" => 1.0,
        "k" | "K" | "kB" | "KB" => 1e3,
        "M" | "MB" => 1e6,
        "G" | "GB" => 1e9,
        "KiB" | "Ki" => 1024.0,
        "MiB" | "Mi" => 1048576.0,
        "GiB" | "Gi" => 1073741824.0,
        u => {
            return Err(format!(
                "unknown unit `{u}` in `{s}` (B, kB, MB, GB, KiB, MiB, GiB)"
            ))
        }
    };
    Ok((n * mult).round() as u64)
}

/// Parses a rate into bytes per second ("100Mbit/s", "20MB/s", plain bytes/s).
pub use redgiant_base::parse_rate;

fn bytes_value(v: &Value) -> Result<u64, String> {
    match v {
        Value::Integer(i) if *i >= 0 => Ok(*i as u64),
        Value::String(s) => parse_bytes(s),
        other => Err(format!("expected a byte count, found {other}")),
    }
}

fn fec_value(v: &Value) -> Result<String, String> {
    let Value::String(s) = v else {
        return Err(format!("expected a FEC spec string, found {v}"));
    };
    s.parse::<FecSpec>().map_err(|e| {
        format!("unknown FEC `{s}`: {e} (choices: none, rs:N,K, raptorq:OVERHEAD or raptorq:N,K)")
    })?;
    Ok(s.clone())
}

fn cc_value(v: &Value) -> Result<String, String> {
    let Value::String(s) = v else {
        return Err(format!("expected a controller name, found {v}"));
    };
    if Controller::by_name(s).is_none() {
        let names: Vec<&str> = CONTROLLERS.iter().map(|c| c.name).collect();
        return Err(format!(
            "unknown congestion controller `{s}` (choices: {})",
            names.join(", ")
        ));
    }
    Ok(s.clone())
}

fn burst_value(v: &Value) -> Result<Burst, String> {
    match v {
        Value::String(s) if s == "off" => Ok(None),
        Value::Array(a) if a.len() == 3 => {
            let p = probability(&a[0])?;
            let r = probability(&a[1])?;
            let h = probability(&a[2])?;
            Ok(Some((p, r, h)))
        }
        other => Err(format!(
            "expected \"off\" or [p, r, loss_in_bad], found {other}"
        )),
    }
}

fn rate_value(v: &Value) -> Result<Option<u64>, String> {
    match v {
        Value::String(s) if s == "unlimited" => Ok(None),
        Value::String(s) => parse_rate(s).and_then(nonzero).map(Some),
        Value::Integer(i) if *i > 0 => Ok(Some(*i as u64)),
        other => Err(format!(
            "expected a rate (\"100Mbit/s\", \"20MB/s\", bytes/s or \"unlimited\"), found {other}"
        )),
    }
}

fn trace_value(v: &Value, base: &Path) -> Result<Option<TraceRef>, String> {
    match v {
        Value::String(s) if s == "none" => Ok(None),
        Value::String(s) if s.is_empty() => Err("empty trace path".into()),
        Value::String(s) => TraceRef::load(s, base).map(Some),
        other => Err(format!(
            "expected a trace file path (relative to the plan) or \"none\", found {other}"
        )),
    }
}

fn nonzero(x: u64) -> Result<u64, String> {
    if x == 0 {
        Err("must be positive".into())
    } else {
        Ok(x)
    }
}

impl Plan {
    /// Parses and checks a plan; trace paths are relative to the current directory.
    pub fn parse(src: &str) -> Result<Plan, PlanError> {
        Self::parse_in(src, Path::new("."))
    }

    /// Reads, parses and checks the plan file at `path`; trace paths are
    /// relative to the file's directory.
    pub fn load(path: &Path) -> Result<Plan, PlanError> {
        let src = std::fs::read_to_string(path)
            .map_err(|e| PlanError(format!("{}: {e}", path.display())))?;
        let base = path.parent().unwrap_or(Path::new("."));
        Self::parse_in(&src, base)
    }

    /// Parses and checks a plan whose trace paths are relative to `base`.
    pub fn parse_in(src: &str, base: &Path) -> Result<Plan, PlanError> {
        let base = if base.as_os_str().is_empty() {
            Path::new(".")
        } else {
            base
        };
        let base = &base.canonicalize().unwrap_or_else(|_| base.to_path_buf());
        let raw: RawPlan = toml::from_str(src).map_err(|e| PlanError(format!("bad plan: {e}")))?;
        let cx = Ctx { src };
        let size = bytes_value(raw.size.get_ref())
            .and_then(nonzero)
            .and_then(|s| {
                if s > MAX_SIZE {
                    Err(format!("{s} exceeds the largest size {MAX_SIZE}"))
                } else {
                    Ok(s)
                }
            })
            .map_err(|m| cx.err("size", &raw.size.span(), m))?;
        let seeds = cx.axis("seeds", Some(&raw.seeds), 0, false, |v| match v {
            Value::Integer(i) if *i >= 0 => Ok(*i as u64),
            other => Err(format!(
                "expected a non-negative integer seed, found {other}"
            )),
        })?;
        let sample = match &raw.sample_ms {
            None => Duration::from_millis(10),
            Some(v) => number(v.get_ref())
                .and_then(|x| {
                    if (0.1..=60_000.0).contains(&x) {
                        Ok(ms(x))
                    } else {
                        Err(format!("{x} is not a step in 0.1..=60000 ms"))
                    }
                })
                .map_err(|m| cx.err("sample_ms", &v.span(), m))?,
        };
        let series = match &raw.series {
            None => SeriesSelect::FirstSeed,
            Some(v) => match v.get_ref() {
                Value::String(s) => s.parse(),
                Value::Array(a) => a
                    .iter()
                    .map(|i| match i {
                        Value::Integer(i) if *i >= 0 => Ok(*i as usize),
                        other => Err(format!("expected a run id, found {other}")),
                    })
                    .collect::<Result<_, _>>()
                    .map(SeriesSelect::Ids),
                other => Err(format!(
                    "expected \"all\", \"none\", \"first-seed\" or a list of run ids, found {other}"
                )),
            }
            .map_err(|m| cx.err("series", &v.span(), m))?,
        };
        let v = &raw.variants;
        let protocols = cx.axis(
            "variants.protocol",
            v.protocol.as_ref(),
            "rgtp".into(),
            false,
            crate::protocol::protocol_value,
        )?;
        let fecs = cx.axis(
            "variants.fec",
            v.fec.as_ref(),
            "none".into(),
            false,
            fec_value,
        )?;
        let ccs = cx.axis(
            "variants.cc",
            v.cc.as_ref(),
            "delay".into(),
            false,
            cc_value,
        )?;
        let chunks = cx.axis(
            "variants.chunk_size",
            v.chunk_size.as_ref(),
            1024,
            false,
            |v| match v {
                Value::Integer(i) if (64..=65_000).contains(i) => Ok(*i as u32),
                other => Err(format!(
                    "expected a chunk size in 64..=65000, found {other}"
                )),
            },
        )?;
        let proofs = cx.axis(
            "variants.proofs",
            v.proofs.as_ref(),
            true,
            false,
            |v| match v {
                Value::Boolean(b) => Ok(*b),
                other => Err(format!("expected true or false, found {other}")),
            },
        )?;
        let s = &raw.scenarios;
        let loss = cx.axis("scenarios.loss", s.loss.as_ref(), 0.0, false, probability)?;
        let burst = cx.axis("scenarios.burst", s.burst.as_ref(), None, true, burst_value)?;
        let delay = cx.axis(
            "scenarios.delay_ms",
            s.delay_ms.as_ref(),
            10.0,
            false,
            non_negative,
        )?;
        let jitter = cx.axis(
            "scenarios.jitter_ms",
            s.jitter_ms.as_ref(),
            0.0,
            false,
            non_negative,
        )?;
        let rate = cx.axis("scenarios.rate", s.rate.as_ref(), None, false, rate_value)?;
        let traces = cx.axis("scenarios.trace", s.trace.as_ref(), None, false, |v| {
            trace_value(v, base)
        })?;
        let queue = cx.axis("scenarios.queue", s.queue.as_ref(), 1 << 20, false, |v| {
            bytes_value(v).and_then(nonzero)
        })?;
        let reorder = cx.axis(
            "scenarios.reorder",
            s.reorder.as_ref(),
            0.0,
            false,
            probability,
        )?;
        let dup = cx.axis(
            "scenarios.duplicate",
            s.duplicate.as_ref(),
            0.0,
            false,
            probability,
        )?;
        let corrupt = cx.axis(
            "scenarios.corrupt",
            s.corrupt.as_ref(),
            0.0,
            false,
            probability,
        )?;
        let pullers = cx.axis(
            "scenarios.pullers",
            s.pullers.as_ref(),
            1,
            false,
            |v| match v {
                Value::Integer(i) if (1..=64).contains(i) => Ok(*i as u32),
                other => Err(format!("expected 1..=64 pullers, found {other}")),
            },
        )?;

        if let Some(raw) = &v.protocol {
            if protocols.iter().any(|p| p != "rgtp") && pullers.iter().any(|&n| n > 1) {
                return Err(cx.err(
                    "variants.protocol",
                    &raw.span(),
                    "gtUDP and flow runs have one sender and one receiver: \
                     they take scenarios.pullers = 1",
                ));
            }
        }
        let mut variants = Vec::new();
        for proto in &protocols {
            if proto != "rgtp" {
                // FEC, controller and proofs are RGTP's; the other protocols
                // take only the payload size from the variant axes.
                for &k in &chunks {
                    variants.push(Variant {
                        protocol: proto.clone(),
                        fec: "none".into(),
                        cc: "none".into(),
                        chunk_size: k,
                        proofs: false,
                    });
                }
                continue;
            }
            for f in &fecs {
                for c in &ccs {
                    for &k in &chunks {
                        for &p in &proofs {
                            variants.push(Variant {
                                protocol: proto.clone(),
                                fec: f.clone(),
                                cc: c.clone(),
                                chunk_size: k,
                                proofs: p,
                            });
                        }
                    }
                }
            }
        }
        let mut scenarios = Vec::new();
        for &loss in &loss {
            for &burst in &burst {
                for &delay_ms in &delay {
                    for &jitter_ms in &jitter {
                        for &rate in &rate {
                            for trace in &traces {
                                for &queue in &queue {
                                    for &reorder in &reorder {
                                        for &duplicate in &dup {
                                            for &corrupt in &corrupt {
                                                for &pullers in &pullers {
                                                    scenarios.push(Scenario {
                                                        loss,
                                                        burst,
                                                        delay_ms,
                                                        jitter_ms,
                                                        rate,
                                                        trace: trace.clone(),
                                                        queue,
                                                        reorder,
                                                        duplicate,
                                                        corrupt,
                                                        pullers,
                                                    });
                                                }
                                            }
                                        }
                                    }
                                }
                            }
                        }
                    }
                }
            }
        }
        Ok(Plan {
            base: base.to_path_buf(),
            name: raw.name,
            size,
            seeds,
            variants,
            scenarios,
            sample,
            series,
            source: src.to_owned(),
        })
    }

    /// Every run, in run-id order.
    pub fn runs(&self) -> Vec<RunSpec> {
        let mut out = Vec::new();
        for v in &self.variants {
            for s in &self.scenarios {
                for &seed in &self.seeds {
                    out.push(RunSpec {
                        id: out.len(),
                        variant: v.clone(),
                        scenario: s.clone(),
                        seed,
                    });
                }
            }
        }
        out
    }
}
