//! Per-run time series: each puller's congestion window, delivery rate and
//! smoothed RTT, sampled at a fixed step of virtual time.
//!
//! The simulator shows every puller to the [`Sampler`] before each step it takes.
//! Between two steps nothing about a puller changes, so the state seen at the
//! first step at or after a sample instant is the state at that instant: the
//! samples are exact, and taking them only reads.

use std::collections::BTreeSet;
use std::fmt::Write as _;
use std::time::Duration;

use rgtp_proto::{Instant, PullerStats};

/// One sample of one puller.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Sample {
    /// Virtual time since the run started, seconds.
    pub t_s: f64,
    /// The puller's index.
    pub puller: usize,
    /// Congestion window, chunks.
    pub window: u32,
    /// Payload accepted over the last step, bytes per second.
    pub rate_bps: f64,
    /// Smoothed RTT, milliseconds (0 before the first measurement).
    pub srtt_ms: f64,
}

/// Which runs get a time series.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SeriesSelect {
    /// No run.
    None,
    /// Every run.
    All,
    /// The first seed of each variant and scenario.
    FirstSeed,
    /// These run ids.
    Ids(BTreeSet<usize>),
}

impl std::str::FromStr for SeriesSelect {
    type Err = String;

    /// "none", "all", "first-seed" or run ids separated by commas.
    fn from_str(s: &str) -> Result<Self, String> {
        match s.trim() {
            "none" => Ok(SeriesSelect::None),
            "all" => Ok(SeriesSelect::All),
            "first-seed" => Ok(SeriesSelect::FirstSeed),
            ids => ids
                .split(',')
                .map(|i| {
                    i.trim().parse::<usize>().map_err(|_| {
                        format!("`{s}`: expected all, none, first-seed or run ids such as 0,4,7")
                    })
                })
                .collect::<Result<_, _>>()
                .map(SeriesSelect::Ids),
        }
    }
}

impl SeriesSelect {
    /// Whether run `id` with `seed` is selected, given the plan's first seed.
    pub fn selects(&self, id: usize, seed: u64, first_seed: u64) -> bool {
        match self {
            SeriesSelect::None => false,
            SeriesSelect::All => true,
            SeriesSelect::FirstSeed => seed == first_seed,
            SeriesSelect::Ids(ids) => ids.contains(&id),
        }
    }
}

#[derive(Default, Clone)]
struct Track {
    last_visit: Option<u64>,
    next_tick: u64,
    chunks_at_last_tick: u64,
}

/// Collects samples every `step` of virtual time while a run goes.
pub struct Sampler {
    step_us: u64,
    chunk_size: u64,
    origin: Option<u64>,
    tracks: Vec<Track>,
    samples: Vec<Sample>,
}

impl Sampler {
    /// A sampler for `pullers` pullers of chunks of `chunk_size` bytes.
    pub fn new(step: Duration, pullers: usize, chunk_size: u32) -> Self {
        Sampler {
            step_us: (step.as_micros() as u64).max(1),
            chunk_size: u64::from(chunk_size),
            origin: None,
            tracks: vec![Track::default(); pullers],
            samples: Vec::new(),
        }
    }

    /// Puller `i` is about to step at `now` with counters `stats`.
    pub fn observe(&mut self, i: usize, now: Instant, stats: impl FnOnce() -> PullerStats) {
        let now = now.total_micros();
        let origin = *self.origin.get_or_insert(now);
        let Some(track) = self.tracks.get(i) else {
            return;
        };
        if track.last_visit == Some(now) {
            return;
        }
        let s = stats();
        self.emit_until(i, now.saturating_sub(origin), &s);
        self.tracks[i].last_visit = Some(now);
    }

    /// Puller `i` finished `elapsed` after the start with final counters `stats`.
    pub fn finish(&mut self, i: usize, elapsed: Duration, stats: &PullerStats) {
        if i < self.tracks.len() {
            self.emit_until(i, elapsed.as_micros() as u64, stats);
        }
    }

    fn emit_until(&mut self, i: usize, t_us: u64, s: &PullerStats) {
        let step = self.step_us;
        let track = &mut self.tracks[i];
        while track.next_tick * step <= t_us {
            let tick = track.next_tick;
            let delta = s.chunks_received.saturating_sub(track.chunks_at_last_tick);
            let rate = if tick == 0 {
                0.0
            } else {
                (delta * self.chunk_size) as f64 / (step as f64 / 1e6)
            };
            self.samples.push(Sample {
                t_s: (tick * step) as f64 / 1e6,
                puller: i,
                window: s.window,
                rate_bps: rate,
                srtt_ms: s.srtt_us as f64 / 1e3,
            });
            track.chunks_at_last_tick = s.chunks_received;
            track.next_tick += 1;
        }
    }

    /// The samples, by time then puller.
    pub fn into_samples(mut self) -> Vec<Sample> {
        self.samples
            .sort_by(|a, b| a.t_s.total_cmp(&b.t_s).then(a.puller.cmp(&b.puller)));
        self.samples
    }
}

/// The CSV header of a series file.
pub const SERIES_HEADER: &str = "t_s,puller,window_chunks,rate_bps,srtt_ms";

/// The CSV text of `samples`.
pub fn series_csv(samples: &[Sample]) -> String {
    let mut out = String::from(SERIES_HEADER);
    out.push('\n');
    for s in samples {
        let _ = writeln!(
            out,
            "{},{},{},{},{}",
            s.t_s, s.puller, s.window, s.rate_bps, s.srtt_ms
        );
    }
    out
}

/// Jain's fairness index of `xs`: (Σx)² / (n·Σx²), 1 when all are equal, 1/n when
/// one has everything; 1 for one value, 0 for none or all zero.
pub fn jain(xs: &[f64]) -> f64 {
    let n = xs.len() as f64;
    let sum: f64 = xs.iter().sum();
    let sq: f64 = xs.iter().map(|x| x * x).sum();
    if xs.is_empty() || sq <= 0.0 {
        0.0
    } else {
        sum * sum / (n * sq)
    }
}
