//! One resumable pull into a file: the partial output and its state
//! ([`crate::resume`]) kept when the pull stops, taken up again by the next run,
//! retries with backoff while the exposer is away.

use std::path::Path;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant as StdInstant};

use rgtp_link::Link;
use rgtp_proto::multi::SourceReport;
use rgtp_proto::puller::{ManifestInfo, PullError};
use rgtp_proto::{MultiConfig, MultiPuller, Peer, Pull, PullerConfig, PullerStats};
use rgtp_wire::Hash;

use crate::driver::{self, Clock, PullApp, PullFailure};
use crate::resume::{state_path, ResumeState};
use crate::sink::{DiscardSink, FileSink, FileWriter, Sink};
use crate::{Backend, DynSuiteOn};

/// How to run one pull.
#[derive(Debug, Clone)]
pub struct PullJob {
    /// The puller's settings.
    pub cfg: PullerConfig,
    /// Which AEAD code to use.
    pub backend: Backend,
    /// Ignore what an earlier run left.
    pub restart: bool,
    /// Tries after the first when the exposer is unreachable or silent.
    pub retries: u32,
    /// The root the exposure must have (an exposure set's catalog pins it).
    pub expect_root: Option<Hash>,
    /// Every exposer of the exposure to pull from at once (each chunk verified whatever
    /// its source; a lying or stalled source dropped); empty: `cfg.exposer` alone.
    pub sources: Vec<Peer>,
}

/// What a running pull reports.
pub trait PullProgress {
    /// Bytes of the exposure verified so far out of `total`, with the puller's
    /// counters; called often, from the pulling thread.
    fn update(&self, done: u64, total: u64, stats: &PullerStats);

    /// The exposer did not answer (`error`); retry `attempt` of `retries` starts after
    /// `wait`.
    fn retrying(&self, error: &PullError, attempt: u32, retries: u32, wait: Duration);
}

/// A [`PullProgress`] that ignores everything.
#[derive(Debug, Clone, Copy, Default)]
pub struct NoProgress;

impl PullProgress for NoProgress {
    fn update(&self, _: u64, _: u64, _: &PullerStats) {}
    fn retrying(&self, _: &PullError, _: u32, _: u32, _: Duration) {}
}

/// A pull that completed: its counters and the exposure it fetched.
#[derive(Debug, Clone)]
pub struct Pulled {
    /// Counters.
    pub stats: PullerStats,
    /// The exposure.
    pub manifest: ManifestInfo,
    /// Each source: what it delivered, and whether it was dropped and why.
    pub sources: Vec<SourceReport>,
    /// The counters of the tries before the last, which timed out (`stats` are the
    /// last try's).
    pub earlier_tries: Vec<PullerStats>,
}

/// Why a pull ended without its output, with what was kept for the next run.
#[derive(Debug)]
pub struct NotPulled {
    /// Why.
    pub failure: PullFailure,
    /// A message on what was kept (chunks held, how to resume), if anything was.
    pub kept: Option<String>,
}

/// Or an I/O error opening the output before the pull started.
#[derive(Debug)]
pub enum PullFileError {
    /// The pull ran and did not complete.
    Pull(NotPulled),
    /// The output or its state could not be opened: the message says which and why.
    Open(String),
}

/// Pulls `job` into `output` over `link`, resuming and retrying as the job says,
/// reporting to `progress`. Returns once the output is complete and renamed into
/// place, the pull failed, or `stop` was set (then with [`PullFailure::Stopped`]).
pub fn pull_file<L: Link>(
    job: &PullJob,
    output: &Path,
    link: &mut L,
    clock: &Clock,
    progress: &dyn PullProgress,
    stop: &AtomicBool,
) -> Result<Pulled, PullFileError> {
    pull_into(job, Some(output), link, clock, progress, stop)
}

/// Pulls `job` over `link` and keeps nothing: every chunk is verified and the root
/// checked as [`pull_file`] does, then the bytes are dropped ([`DiscardSink`]). It
/// retries as the job says, each try from the start (nothing is kept to resume).
pub fn pull_discard<L: Link>(
    job: &PullJob,
    link: &mut L,
    clock: &Clock,
    progress: &dyn PullProgress,
    stop: &AtomicBool,
) -> Result<Pulled, PullFileError> {
    pull_into(job, None, link, clock, progress, stop)
}

/// Where a pull's bytes go: a file that can be resumed, or nowhere.
enum Out {
    File(FileSink),
    Discard(DiscardSink),
}

impl Sink for Out {
    fn manifest(&mut self, info: &ManifestInfo) -> std::io::Result<()> {
        match self {
            Out::File(s) => s.manifest(info),
            Out::Discard(s) => s.manifest(info),
        }
    }
    fn write_at(&mut self, offset: u64, data: &[u8]) -> std::io::Result<()> {
        match self {
            Out::File(s) => s.write_at(offset, data),
            Out::Discard(s) => s.write_at(offset, data),
        }
    }
    fn contents(&self) -> std::io::Result<&[u8]> {
        match self {
            Out::File(s) => s.contents(),
            Out::Discard(s) => s.contents(),
        }
    }
    fn flush(&self) -> std::io::Result<()> {
        match self {
            Out::File(s) => s.flush(),
            Out::Discard(s) => s.flush(),
        }
    }
    fn retains(&self) -> bool {
        matches!(self, Out::File(_))
    }
    fn detach_writer(&mut self) -> Option<FileWriter> {
        match self {
            Out::File(s) => s.detach_writer(),
            Out::Discard(_) => None,
        }
    }
    fn attach_writer(&mut self, writer: FileWriter) {
        if let Out::File(s) = self {
            s.attach_writer(writer)
        }
    }
}

fn pull_into<L: Link>(
    job: &PullJob,
    output: Option<&Path>,
    link: &mut L,
    clock: &Clock,
    progress: &dyn PullProgress,
    stop: &AtomicBool,
) -> Result<Pulled, PullFileError> {
    let state_file = output.map(state_path);
    let mut restart = job.restart;
    let mut attempt = 0u32;
    let mut earlier_tries = Vec::new();
    loop {
        let state = match &state_file {
            Some(state_file) if !restart => ResumeState::load(state_file).map_err(|e| {
                PullFileError::Open(format!(
                    "cannot read {}: {e} (use --restart to start over)",
                    state_file.display()
                ))
            })?,
            _ => None,
        };
        restart = false;
        let sink = match output {
            None => Out::Discard(DiscardSink),
            Some(output) => {
                Out::File(FileSink::resumable(output, state.is_some()).map_err(|e| {
                    PullFileError::Open(if e.kind() == std::io::ErrorKind::InvalidInput {
                        format!("cannot write output {}: {e}", output.display())
                    } else {
                        format!(
                        "cannot create output {}: {e} (check the directory exists and is writable)",
                        output.display()
                    )
                    })
                })?)
            }
        };
        let mut puller = MultiPuller::new(
            job.cfg.clone(),
            &job.sources,
            MultiConfig::default(),
            DynSuiteOn(job.backend),
            clock.now(),
        );
        let mut app = PullApp::resuming(sink, state);
        if let Some(state_file) = state_file.as_ref() {
            // The record of what is in the partial file, at most a second old.
            app = app.recording(state_file.clone());
        }
        let result = driver::pull_with(&mut puller, link, clock, &mut app, stop, |p| {
            if let Some(m) = p.manifest() {
                let done = (p.progress() as f64 * m.total_size as f64) as u64;
                progress.update(done.min(m.total_size), m.total_size, &p.stats());
            }
        });
        let sink = app.into_sink();
        let result = result.and_then(|()| match (job.expect_root, puller.manifest()) {
            (Some(want), Some(m)) if m.merkle_root != want => {
                Err(PullFailure::Protocol(PullError::MerkleFailed))
            }
            _ => Ok(()),
        });
        match result {
            Ok(()) => {
                if let (Out::File(sink), Some(output), Some(state_file)) =
                    (sink, output, state_file.as_ref())
                {
                    sink.finish().map_err(|e| {
                        PullFileError::Open(format!("finishing {}: {e}", output.display()))
                    })?;
                    let _ = std::fs::remove_file(state_file);
                }
                let manifest = puller.manifest().expect("complete implies a Manifest");
                return Ok(Pulled {
                    stats: puller.stats(),
                    manifest,
                    sources: puller.sources(),
                    earlier_tries,
                });
            }
            Err(PullFailure::Protocol(e @ (PullError::HandshakeTimeout | PullError::Timeout)))
                if attempt < job.retries =>
            {
                keep_for_resume(&puller, sink, state_file.as_deref());
                earlier_tries.push(puller.stats());
                let wait = Duration::from_secs(1 << attempt.min(5));
                attempt += 1;
                progress.retrying(&e, attempt, job.retries, wait);
                let until = StdInstant::now() + wait;
                while StdInstant::now() < until {
                    if stop.load(Ordering::Relaxed) {
                        return Err(PullFileError::Pull(NotPulled {
                            failure: PullFailure::Stopped,
                            kept: kept_message(state_file.as_deref(), output),
                        }));
                    }
                    std::thread::sleep(Duration::from_millis(50));
                }
            }
            Err(failure) => {
                keep_for_resume(&puller, sink, state_file.as_deref());
                return Err(PullFileError::Pull(NotPulled {
                    failure,
                    kept: kept_message(state_file.as_deref(), output),
                }));
            }
        }
    }
}

/// After a pull that did not finish: keeps the partial output and the record of what
/// it holds for the next run, or removes the partial file if nothing arrived.
fn keep_for_resume(puller: &impl Pull, sink: Out, state_file: Option<&Path>) {
    let (Out::File(sink), Some(state_file)) = (sink, state_file) else {
        return;
    };
    let partial = sink.partial_path().to_path_buf();
    drop(sink);
    match ResumeState::of(puller) {
        Some(s) if s.held() > 0 && s.save(state_file).is_ok() => {}
        // No Manifest this time (the exposer never answered): what an earlier try or
        // run kept is still good for the next one.
        None if state_file.exists() => {}
        _ => {
            let _ = std::fs::remove_file(&partial);
            let _ = std::fs::remove_file(state_file);
        }
    }
}

/// What was kept for the next run, if anything.
fn kept_message(state_file: Option<&Path>, output: Option<&Path>) -> Option<String> {
    let (state_file, output) = (state_file?, output?);
    let s = ResumeState::load(state_file).ok()??;
    Some(format!(
        "kept {} of {} chunks of {}: run the same command again to resume (--restart to start over)",
        s.held(),
        s.chunk_count,
        output.display()
    ))
}
