//! One resumable pull into a file, as `rgtp pull` and `rgtp get` run it: the partial
//! output and its state (`rgtp::resume`) kept when the pull stops, taken up again by
//! the next run, retries with backoff while the exposer is away.

use std::path::Path;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant as StdInstant};

use indicatif::ProgressBar;
use rgtp::driver::{self, Clock, PullApp, PullFailure};
use rgtp::resume::{state_path, ResumeState};
use rgtp::sink::FileSink;
use rgtp::{Backend, DynSuiteOn, Ticket};

use crate::exit;
use rgtp_link::Link;
use rgtp_proto::puller::{ManifestInfo, PullError};
use rgtp_proto::{Puller, PullerConfig, PullerStats};
use rgtp_wire::Hash;

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
    /// Print nothing but errors.
    pub quiet: bool,
}

/// A pull that completed: its counters and the exposure it fetched.
#[derive(Debug, Clone)]
pub struct Pulled {
    /// Counters.
    pub stats: PullerStats,
    /// The exposure.
    pub manifest: ManifestInfo,
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

/// Pulls `job` into `output` over `link`, resuming and retrying as the job says;
/// the progress bar follows it. Returns once the output is complete and renamed into
/// place, the pull failed, or `stop` was set (then with [`PullFailure::Stopped`]).
pub fn pull_file<L: Link>(
    job: &PullJob,
    output: &Path,
    link: &mut L,
    clock: &Clock,
    bar: &ProgressBar,
    stop: &AtomicBool,
) -> Result<Pulled, PullFileError> {
    let state_file = state_path(output);
    let mut restart = job.restart;
    let mut attempt = 0u32;
    loop {
        let state = if restart {
            None
        } else {
            ResumeState::load(&state_file).map_err(|e| {
                PullFileError::Open(format!(
                    "cannot read {}: {e} (use --restart to start over)",
                    state_file.display()
                ))
            })?
        };
        restart = false;
        let sink = FileSink::resumable(output, state.is_some()).map_err(|e| {
            PullFileError::Open(format!(
                "cannot create output {}: {e} (check the directory exists and is writable)",
                output.display()
            ))
        })?;
        let mut puller = Puller::new(job.cfg.clone(), DynSuiteOn(job.backend), clock.now());
        let mut app = PullApp::resuming(sink, state);
        let mut saved = StdInstant::now();
        let result = driver::pull_with(&mut puller, link, clock, &mut app, stop, |p| {
            // The record of what is in the partial file, at most a second old.
            if saved.elapsed() >= Duration::from_secs(1) {
                saved = StdInstant::now();
                if let Some(s) = ResumeState::of(p) {
                    let _ = s.save(&state_file);
                }
            }
            if let Some(m) = p.manifest() {
                bar.set_length(m.total_size);
                let done = (p.progress() as f64 * m.total_size as f64) as u64;
                bar.set_position(done.min(m.total_size));
                let s = p.stats();
                bar.set_message(format!(
                    "rtt {:.1} ms, loss {:.1}%",
                    s.srtt_us as f64 / 1000.0,
                    s.loss_rate * 100.0
                ));
            }
        });
        let sink = app.sink;
        let result = result.and_then(|()| match (job.expect_root, puller.manifest()) {
            (Some(want), Some(m)) if m.merkle_root != want => {
                Err(PullFailure::Protocol(PullError::MerkleFailed))
            }
            _ => Ok(()),
        });
        match result {
            Ok(()) => {
                sink.finish().map_err(|e| {
                    PullFileError::Open(format!("finishing {}: {e}", output.display()))
                })?;
                let _ = std::fs::remove_file(&state_file);
                let manifest = puller.manifest().expect("complete implies a Manifest");
                return Ok(Pulled {
                    stats: puller.stats(),
                    manifest,
                });
            }
            Err(PullFailure::Protocol(e @ (PullError::HandshakeTimeout | PullError::Timeout)))
                if attempt < job.retries =>
            {
                keep_for_resume(&puller, sink, &state_file);
                let wait = Duration::from_secs(1 << attempt.min(5));
                attempt += 1;
                if !job.quiet {
                    bar.suspend(|| {
                        eprintln!(
                            "{e}; retry {attempt} of {} in {}s",
                            job.retries,
                            wait.as_secs()
                        )
                    });
                }
                let until = StdInstant::now() + wait;
                while StdInstant::now() < until {
                    if stop.load(Ordering::Relaxed) {
                        return Err(PullFileError::Pull(NotPulled {
                            failure: PullFailure::Stopped,
                            kept: kept_message(&state_file, output),
                        }));
                    }
                    std::thread::sleep(Duration::from_millis(50));
                }
            }
            Err(failure) => {
                keep_for_resume(&puller, sink, &state_file);
                return Err(PullFileError::Pull(NotPulled {
                    failure,
                    kept: kept_message(&state_file, output),
                }));
            }
        }
    }
}

/// After a pull that did not finish: keeps the partial output and the record of what
/// it holds for the next run, or removes the partial file if nothing arrived.
fn keep_for_resume<S: rgtp_proto::SuiteFactory>(
    puller: &Puller<S>,
    sink: FileSink,
    state_file: &Path,
) {
    let partial = sink.partial_path().to_path_buf();
    drop(sink);
    match ResumeState::of(puller) {
        Some(s) if s.held() > 0 && s.save(state_file).is_ok() => {}
        _ => {
            let _ = std::fs::remove_file(&partial);
            let _ = std::fs::remove_file(state_file);
        }
    }
}

/// What was kept for the next run, if anything.
fn kept_message(state_file: &Path, output: &Path) -> Option<String> {
    let s = ResumeState::load(state_file).ok()??;
    Some(format!(
        "kept {} of {} chunks of {}: run the same command again to resume (--restart to start over)",
        s.held(),
        s.chunk_count,
        output.display()
    ))
}

/// The exit status and message for a pull of `ticket` that failed with `e`.
pub fn pull_failure(e: PullFailure, ticket: &Ticket) -> (u8, String) {
    match e {
        PullFailure::Protocol(PullError::HandshakeTimeout) => (
            exit::TIMEOUT,
            format!(
                "no answer from {} (is `rgtp expose` running there, and is the Exposure_ID in the ticket right?)",
                ticket.address()
            ),
        ),
        PullFailure::Protocol(PullError::Timeout) => {
            (exit::TIMEOUT, "the transfer stalled: the exposer stopped answering".into())
        }
        PullFailure::Protocol(PullError::AuthFailed) => (
            exit::AUTH,
            "chunks failed authentication: the key in the ticket does not match this exposure (or the traffic is forged)".into(),
        ),
        PullFailure::Protocol(PullError::MerkleFailed) => (
            exit::MERKLE,
            "Merkle verification failed: the data does not match the exposure's root; nothing was kept".into(),
        ),
        PullFailure::Protocol(PullError::TooLarge { declared, limit }) => (
            exit::IO,
            format!("the exposure declares {declared} bytes, more than --max-size {limit}; nothing was written"),
        ),
        PullFailure::Protocol(e) => (exit::PROTOCOL, format!("{e} (is the exposer an RGTP v1 implementation?)")),
        PullFailure::Io(e) => (exit::IO, format!("writing the output failed: {e} (check free space and permissions)")),
        PullFailure::Stopped => (exit::PROTOCOL, "interrupted".into()),
    }
}
