//! RGTP over the stack's one driver ([`redgiant_base::driver`]).
//!
//! The loops live there; this module is RGTP's application side: what a
//! puller's events and verified chunks mean for a [`Sink`] ([`PullApp`]),
//! what serving means for an exposer ([`ServeApp`]), and the two calls every
//! front end uses, [`serve`] and [`pull`].

use std::convert::Infallible;
use std::io;
use std::sync::atomic::AtomicBool;
use std::time::Duration;

use redgiant_base::driver::{self, Application, Driver, DriverConfig, Finish};
use redgiant_base::link::Borrowed;
use redgiant_base::{DatagramEndpoint, Endpoint, Instant};
use rgtp_link::Link;
use rgtp_proto::puller::{Delivered, PullError};
use rgtp_proto::{Pull, Puller, PullerEvent, SuiteFactory};

use crate::leaves::LeafHasher;
use crate::proofs::Verifier;
use crate::resume::ResumeState;
use crate::sink::Sink;

/// The wall clock drivers run on (re-exported from the base crate).
pub use redgiant_base::SystemClock as Clock;

/// How a pull ended badly.
#[derive(Debug, thiserror::Error)]
pub enum PullFailure {
    /// The protocol gave up.
    #[error("{0}")]
    Protocol(PullError),
    /// Writing the output or using the link failed.
    #[error("I/O error: {0}")]
    Io(#[from] io::Error),
    /// The caller's stop flag was set before the pull completed.
    #[error("stopped before the pull completed")]
    Stopped,
}

/// A puller's application: verified chunks and recovered blocks go into the
/// sink; `VerifyRoot` is answered with the leaves of what the sink holds (the
/// puller checks their root, and repairs the chunks that spoil it, spec §8.12);
/// `Complete` ends the run, `Failed` fails it.
#[derive(Debug)]
pub struct PullApp<K> {
    /// Where the output goes.
    pub sink: K,
    /// What an earlier run of this pull left in the sink, handed to the puller when
    /// the Manifest shows it is the same exposure.
    resume: Option<ResumeState>,
    /// Leaves of delivered chunks, hashed on another core while the pull runs.
    leaves: Option<LeafHasher>,
    /// Proofs of delivered chunks, checked on another core
    /// ([`PullerConfig::offload_proofs`](rgtp_proto::PullerConfig::offload_proofs)).
    proofs: Option<Verifier>,
}

/// Pulls of fewer chunks hash their leaves at the end only.
const OVERLAP_FROM_CHUNKS: u32 = 4096;

impl<K> PullApp<K> {
    /// Output into `sink`.
    pub fn new(sink: K) -> Self {
        PullApp {
            sink,
            resume: None,
            leaves: None,
            proofs: None,
        }
    }

    /// Output into `sink`, which holds the chunks `state` records from an earlier run.
    pub fn resuming(sink: K, state: Option<ResumeState>) -> Self {
        PullApp {
            sink,
            resume: state,
            leaves: None,
            proofs: None,
        }
    }
}

impl<K: Sink, P: Pull> Application<P> for PullApp<K> {
    type Output = ();
    type Error = PullFailure;

    fn deliver(&mut self, d: Delivered<'_>) -> Result<(), PullFailure> {
        self.sink.write_at(d.offset, d.data)?;
        if let (true, Some(v)) = (d.unverified, self.proofs.as_mut()) {
            v.push(d.index, d.data, d.proof)?;
        } else if let Some(h) = self.leaves.as_mut() {
            h.push(d.index, d.data);
        }
        Ok(())
    }

    fn settle(&mut self, puller: &mut P, now: Instant) -> Result<Option<Duration>, PullFailure> {
        match self.proofs.as_mut() {
            Some(v) => Ok(v.settle(|idx, verdict| puller.handle_verdict(now, idx, verdict))?),
            None => Ok(None),
        }
    }

    fn event(&mut self, puller: &mut P, ev: PullerEvent) -> Result<Option<()>, PullFailure> {
        match ev {
            PullerEvent::Manifest(info) => {
                self.sink.manifest(&info)?;
                if puller.offloads_proofs() {
                    self.proofs = puller
                        .hash_scheme()
                        .map(|h| Verifier::start(h, info.chunk_count, info.merkle_root));
                } else if puller.deferred_root() && !self.sink.retains() {
                    // Nothing to read back at the end: every leaf is hashed as it lands.
                    let hasher = puller
                        .hash_scheme()
                        .and_then(|h| LeafHasher::start_lossless(h, info.chunk_count));
                    if hasher.is_none() {
                        return Err(io::Error::other(
                            "cannot start the thread that hashes the chunks of a pull kept nowhere",
                        )
                        .into());
                    }
                    self.leaves = hasher;
                } else if puller.deferred_root() && info.chunk_count >= OVERLAP_FROM_CHUNKS {
                    self.leaves = puller
                        .hash_scheme()
                        .and_then(|h| LeafHasher::start(h, info.chunk_count));
                }
                if let Some(state) = self.resume.take() {
                    state.resume(puller, self.sink.contents()?);
                }
            }
            PullerEvent::Recovered {
                index,
                offset,
                data,
                unverified,
            } => {
                self.sink.write_at(offset, &data)?;
                if let (true, Some(v)) = (unverified, self.proofs.as_mut()) {
                    v.push(index, &data, None)?;
                } else if let Some(h) = self.leaves.as_mut() {
                    h.push(index, &data);
                }
            }
            PullerEvent::VerifyRoot if self.proofs.is_some() => {
                // Every chunk passed its check, and the checker folded their leaves.
                match self.proofs.take().and_then(|v| v.root()) {
                    Some(root) => puller.handle_root(&root),
                    None => return Err(PullFailure::Protocol(PullError::MerkleFailed)),
                }
            }
            PullerEvent::VerifyRoot if !self.sink.retains() => {
                let seen = match (self.leaves.take(), puller.hash_scheme()) {
                    (Some(h), Some(scheme)) => h.finish_seen(scheme),
                    _ => None,
                };
                match seen {
                    Some((leaves, root)) => puller.handle_leaves_with_root(leaves, root),
                    None => {
                        return Err(io::Error::other(
                            "the leaves of some chunks were not hashed, and the output was kept nowhere to hash them from",
                        )
                        .into())
                    }
                }
            }
            PullerEvent::VerifyRoot => {
                if let (Some(m), Some(scheme)) = (puller.manifest(), puller.hash_scheme()) {
                    let contents = self.sink.contents()?;
                    match self.leaves.take() {
                        Some(h) => {
                            let (leaves, root) = h.finish(scheme, contents, m.chunk_size);
                            puller.handle_leaves_with_root(leaves, root);
                        }
                        None => puller.handle_leaves(crate::verify::output_leaves(
                            scheme,
                            contents,
                            m.chunk_size,
                        )),
                    }
                }
            }
            PullerEvent::Complete => return Ok(Some(())),
            PullerEvent::Failed(e) => return Err(PullFailure::Protocol(e)),
        }
        Ok(None)
    }
}

/// A server's application: nothing to do but serve (an [`Exposer`](rgtp_proto::Exposer),
/// a [`Router`](crate::router::Router) of several, either [`redgiant_base::Paced`]).
#[derive(Debug, Default, Clone, Copy)]
pub struct ServeApp;

impl<E> Application<E> for ServeApp
where
    E: for<'d> Endpoint<Event = Infallible, Delivery<'d> = Infallible>,
{
    type Output = Infallible;
    type Error = io::Error;

    fn deliver(&mut self, d: Infallible) -> io::Result<()> {
        match d {}
    }

    fn event(&mut self, _: &mut E, ev: Infallible) -> io::Result<Option<Infallible>> {
        match ev {}
    }
}

/// Carries out the puller's events against `sink`: `Some(())` once the pull completed.
pub fn drain_events<S: SuiteFactory>(
    puller: &mut Puller<S>,
    sink: &mut impl Sink,
) -> Result<Option<()>, PullFailure> {
    driver::drain_events(puller, &mut PullApp::new(sink))
}

/// How [`serve`] drives: a short wait so a stop is seen quickly, a tick for
/// the caller's display every 200 ms.
pub fn serve_config() -> DriverConfig {
    DriverConfig {
        max_wait: Duration::from_millis(50),
        tick: Duration::from_millis(200),
        ..DriverConfig::default()
    }
}

/// Serves until `stop` is set, calling `tick` about every 200 ms and once at the end:
/// one [`Exposer`](rgtp_proto::Exposer), or a [`Router`](crate::router::Router) of several.
pub fn serve<E: DatagramEndpoint, L: Link>(
    exposer: &mut E,
    link: &mut L,
    clock: &Clock,
    stop: &AtomicBool,
    mut tick: impl FnMut(&E),
) -> io::Result<()>
where
    ServeApp: Application<E, Error = io::Error>,
{
    let mut d = Driver::with_clock(Borrowed(link), *clock, serve_config());
    d.run(exposer, &mut ServeApp, stop, |x, _| tick(x))?;
    Ok(())
}

/// The burst a serving cap of `rate` bytes per second allows: 20 ms at the rate,
/// and never less than two full GSO batches (a transmit may overdraw the bucket once).
pub fn cap_burst(rate: u64) -> u64 {
    (rate / 50).max(128 << 10)
}

/// Serves like [`serve`], with everything the endpoint sends capped at `total` bytes
/// per second (a [`Paced`](redgiant_base::Paced) around it) when a cap is given; the
/// caps each puller is told of are the endpoint's own (spec §8.3.3). Returns the
/// endpoint when `stop` is set.
pub fn serve_capped<E: DatagramEndpoint, L: Link>(
    mut exposer: E,
    link: &mut L,
    clock: &Clock,
    stop: &AtomicBool,
    total: Option<u64>,
    mut tick: impl FnMut(&E),
) -> io::Result<E>
where
    ServeApp: Application<E, Error = io::Error>,
    ServeApp: Application<redgiant_base::Paced<E>, Error = io::Error>,
{
    match total {
        None => {
            serve(&mut exposer, link, clock, stop, tick)?;
            Ok(exposer)
        }
        Some(rate) => {
            let mut paced = redgiant_base::Paced::new(exposer, rate, cap_burst(rate), clock.now());
            serve(&mut paced, link, clock, stop, |p| tick(p.inner()))?;
            Ok(paced.into_inner())
        }
    }
}

/// Runs a pull to completion, writing verified chunks into `sink` and calling
/// `progress` about every 100 ms.
pub fn pull<S: SuiteFactory, L: Link>(
    puller: &mut Puller<S>,
    link: &mut L,
    clock: &Clock,
    sink: &mut impl Sink,
    progress: impl FnMut(&Puller<S>),
) -> Result<(), PullFailure> {
    pull_until(puller, link, clock, sink, &AtomicBool::new(false), progress)
}

/// [`pull`], giving up with [`PullFailure::Stopped`] within about 100 ms of
/// `stop` being set.
pub fn pull_until<S: SuiteFactory, L: Link>(
    puller: &mut Puller<S>,
    link: &mut L,
    clock: &Clock,
    sink: &mut impl Sink,
    stop: &AtomicBool,
    progress: impl FnMut(&Puller<S>),
) -> Result<(), PullFailure> {
    pull_with(puller, link, clock, &mut PullApp::new(sink), stop, progress)
}

/// [`pull_until`] with the application given: one that resumes an earlier run
/// ([`PullApp::resuming`]).
pub fn pull_with<P: Pull, L: Link, K: Sink>(
    puller: &mut P,
    link: &mut L,
    clock: &Clock,
    app: &mut PullApp<K>,
    stop: &AtomicBool,
    mut progress: impl FnMut(&P),
) -> Result<(), PullFailure> {
    let mut d = Driver::with_clock(Borrowed(link), *clock, DriverConfig::default());
    // A record of what the output holds (what `progress` may save) is only true
    // once the sink has handed its writes to the file.
    let tick = |p: &P, a: &PullApp<K>| {
        if a.sink.flush().is_ok() {
            progress(p)
        }
    };
    match d.run(puller, app, stop, tick)? {
        Finish::Done(()) => Ok(()),
        Finish::Stopped => Err(PullFailure::Stopped),
    }
}
