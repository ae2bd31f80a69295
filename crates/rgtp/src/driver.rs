//! RGTP over the stack's one driver ([`redgiant_base::driver`]).
//!
//! The loops live there; this module is RGTP's application side: what a
//! puller's events and verified chunks mean for a [`Sink`] ([`PullApp`]),
//! what serving means for an exposer ([`ServeApp`]), and the two calls every
//! front end uses, [`serve`] and [`pull`].

use std::convert::Infallible;
use std::io;
use std::path::PathBuf;
use std::sync::atomic::AtomicBool;
use std::time::Duration;

use redgiant_base::driver::{self, Application, Driver, DriverConfig, Finish};
use redgiant_base::link::Borrowed;
use redgiant_base::{DatagramEndpoint, Endpoint, Instant};
use rgtp_link::Link;
use rgtp_proto::puller::{kept_chunks, Delivered, PullError};
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
    /// Where the record of what the output holds is saved, and when it was last.
    record: Option<(PathBuf, Option<Instant>)>,
}

/// Pulls of fewer chunks hash their leaves at the end only.
const OVERLAP_FROM_CHUNKS: u32 = 4096;

/// The record of what the output holds is saved this often.
const RECORD_EVERY: Duration = Duration::from_secs(1);

impl<K> PullApp<K> {
    /// Output into `sink`.
    pub fn new(sink: K) -> Self {
        PullApp {
            sink,
            resume: None,
            leaves: None,
            proofs: None,
            record: None,
        }
    }

    /// Output into `sink`, which holds the chunks `state` records from an earlier run.
    pub fn resuming(sink: K, state: Option<ResumeState>) -> Self {
        PullApp {
            sink,
            resume: state,
            leaves: None,
            proofs: None,
            record: None,
        }
    }

    /// Saves the record of what the output holds ([`ResumeState`]) at `path` about
    /// every second while the pull runs, each time once the output holds every chunk
    /// the record claims.
    pub fn recording(mut self, path: PathBuf) -> Self {
        self.record = Some((path, None));
        self
    }
}

impl<K: Sink> PullApp<K> {
    /// The sink, once everything delivered is in it (the thread writing it, if
    /// any, has finished and given the writing back).
    pub fn into_sink(mut self) -> K {
        // A pull that completed took the writer back at its root check, and met
        // any error there; here the pull failed or stopped, and a chunk the thread
        // could not write is one the saved record never claimed (it is saved
        // only after `sync`), so a later run fetches it again.
        let _ = self.take_back_writer();
        self.sink
    }

    /// Ends the thread that writes the output, if one does, and hands its writer
    /// back to the sink; the first error it met, if any.
    fn take_back_writer(&mut self) -> io::Result<()> {
        let (writer, result) = if let Some(h) = self.leaves.as_mut().filter(|h| h.writes()) {
            h.wait()
        } else if let Some(v) = self.proofs.as_mut().filter(|v| v.writes()) {
            v.wait()
        } else {
            return Ok(());
        };
        if let Some(w) = writer {
            self.sink.attach_writer(w);
        }
        result
    }

    /// Everything delivered so far is in the output (or the error that kept it out).
    fn sync(&mut self) -> io::Result<()> {
        self.sink.flush()?;
        if let Some(h) = self.leaves.as_mut().filter(|h| h.writes()) {
            h.sync()?;
        }
        if let Some(v) = self.proofs.as_mut().filter(|v| v.writes()) {
            v.sync()?;
        }
        Ok(())
    }

    /// Starts checking proofs on another core; the thread writes the output too
    /// where the sink lets go of its writer.
    fn start_proofs<M: rgtp_proto::merkle::MerkleScheme + Clone>(
        &mut self,
        scheme: &M,
        info: &rgtp_proto::puller::ManifestInfo,
    ) {
        let (count, root) = (info.chunk_count, info.merkle_root);
        if let Some(w) = self.sink.detach_writer() {
            match Verifier::start_writing(scheme, count, root, info.chunk_size, w) {
                Ok(v) => {
                    self.proofs = Some(v);
                    return;
                }
                Err(Some(w)) => self.sink.attach_writer(w),
                // Never: a thread that did not start never took the writer.
                Err(None) => return,
            }
        }
        self.proofs = Some(Verifier::start(scheme, count, root));
    }

    /// Hands an unverified chunk to the proof checker, and writes it: into the sink,
    /// or through the checker where it writes.
    fn put_unverified(
        &mut self,
        index: u32,
        offset: u64,
        data: &[u8],
        proof: Option<&[u8]>,
    ) -> io::Result<()> {
        let Some(v) = self.proofs.as_mut() else {
            return self.sink.write_at(offset, data);
        };
        if v.writes() {
            v.push(index, data, proof)?;
            return v.check();
        }
        self.sink.write_at(offset, data)?;
        v.push(index, data, proof)
    }

    /// Hands the chunks of run `first` kept from an earlier run (bit `i` of
    /// `members`: chunk `first + i`) to the proof checker, read back from the output.
    fn check_kept<P: Pull>(&mut self, puller: &P, first: u32, members: u64) -> io::Result<()> {
        let (Some(v), Some(m)) = (self.proofs.as_mut(), puller.manifest()) else {
            // Never: only an offloading puller keeps chunks this way.
            return Err(io::Error::other(
                "kept chunks to check, and no proof checker to check them",
            ));
        };
        let data = self.sink.contents()?;
        for index in kept_chunks(first, members) {
            let r = m.chunk_range(index);
            let Some(chunk) = data.get(r.start as usize..r.end as usize) else {
                return Err(io::Error::other(
                    "the output is shorter than the chunks it was said to hold",
                ));
            };
            v.push_kept(index, chunk)?;
        }
        Ok(())
    }

    /// Starts hashing the leaves on another core; the thread writes the output too
    /// where the sink lets go of its writer.
    fn start_leaves<M: rgtp_proto::merkle::MerkleScheme + Clone>(
        &mut self,
        scheme: &M,
        chunk_count: u32,
        chunk_size: u32,
    ) {
        if let Some(w) = self.sink.detach_writer() {
            match LeafHasher::start_writing(scheme, chunk_count, chunk_size, w) {
                Ok(h) => {
                    self.leaves = Some(h);
                    return;
                }
                Err(Some(w)) => self.sink.attach_writer(w),
                // Never: a thread that did not start never took the writer.
                Err(None) => return,
            }
        }
        self.leaves = LeafHasher::start(scheme, chunk_count);
    }

    /// Writes a verified chunk: into the sink, or through the thread that writes it.
    fn put(&mut self, index: u32, offset: u64, data: &[u8]) -> io::Result<()> {
        if self.proofs.as_ref().is_some_and(|v| v.writes()) {
            // Under offloaded proofs every chunk comes out unverified, so this is
            // never reached; were it, the output is not written behind the checker's
            // back.
            return Err(io::Error::other(
                "a verified chunk arrived while the proof checker holds the output",
            ));
        }
        match self.leaves.as_mut() {
            Some(h) if h.writes() => {
                h.push(index, data);
                h.check()
            }
            Some(h) => {
                self.sink.write_at(offset, data)?;
                h.push(index, data);
                Ok(())
            }
            None => self.sink.write_at(offset, data),
        }
    }
}

impl<K: Sink, P: Pull> Application<P> for PullApp<K> {
    type Output = ();
    type Error = PullFailure;

    fn deliver(&mut self, d: Delivered<'_>) -> Result<(), PullFailure> {
        if d.unverified && self.proofs.is_some() {
            self.put_unverified(d.index, d.offset, d.data, d.proof)?;
        } else {
            self.put(d.index, d.offset, d.data)?;
        }
        Ok(())
    }

    fn settle(&mut self, puller: &mut P, now: Instant) -> Result<Option<Duration>, PullFailure> {
        let due = match self.record.as_mut() {
            Some((_, Some(last))) => now.saturating_since(*last) >= RECORD_EVERY,
            Some((_, last)) => {
                // The first record is due a second after the start.
                *last = Some(now);
                false
            }
            None => false,
        };
        if due {
            self.sync()?;
            if let Some((path, last)) = self.record.as_mut() {
                *last = Some(now);
                if let Some(s) = ResumeState::of(puller) {
                    let _ = s.save(path);
                }
            }
        }
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
                    if let Some(h) = puller.hash_scheme() {
                        self.start_proofs(h, &info);
                    }
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
                    if let Some(h) = puller.hash_scheme() {
                        self.start_leaves(h, info.chunk_count, info.chunk_size);
                    }
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
                if unverified && self.proofs.is_some() {
                    self.put_unverified(index, offset, &data, None)?;
                } else {
                    self.put(index, offset, &data)?;
                }
            }
            PullerEvent::Kept { first, members } => self.check_kept(puller, first, members)?,
            PullerEvent::VerifyRoot if self.proofs.is_some() => {
                // Every chunk passed its check, and the checker folded their leaves;
                // the checker's thread, if it writes the output, finishes first.
                self.take_back_writer()?;
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
                // The thread writing the output, if one does, finishes first.
                self.take_back_writer()?;
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
    let tick = |p: &P, _: &PullApp<K>| progress(p);
    match d.run(puller, app, stop, tick)? {
        Finish::Done(()) => Ok(()),
        Finish::Stopped => Err(PullFailure::Stopped),
    }
}
