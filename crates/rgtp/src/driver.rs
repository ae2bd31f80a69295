//! Drivers: the only loops. Each owns a link and the clock, feeds the sans-IO
//! core datagrams and time, and carries out what it asks for.

use std::io;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use rgtp_link::{Link, Received};
use rgtp_proto::puller::PullError;
use rgtp_proto::{Exposer, Instant, Puller, PullerEvent, SuiteFactory};

use crate::sink::Sink;

/// The wall clock drivers run on (re-exported from the base crate).
pub use redgiant_base::SystemClock as Clock;

/// Receive buffer size: room for many GRO batches.
const RECV_BUF: usize = 4 << 20;

/// Serves until `stop` is set, calling `tick` about every 200 ms.
pub fn serve<L: Link>(
    exposer: &mut Exposer,
    link: &mut L,
    clock: &Clock,
    stop: &AtomicBool,
    mut tick: impl FnMut(&Exposer),
) -> io::Result<()> {
    let mut rbuf = vec![0u8; RECV_BUF];
    let mut tbuf = Vec::with_capacity(64 * 1500);
    let mut metas: Vec<Received> = Vec::with_capacity(1024);
    let mut last_tick = std::time::Instant::now();
    while !stop.load(Ordering::Relaxed) {
        metas.clear();
        // While work is queued, only peek for new requests.
        let wait = if exposer.queued() > 0 {
            Duration::ZERO
        } else {
            Duration::from_millis(50)
        };
        link.recv(&mut rbuf, &mut metas, Some(wait))?;
        let now = clock.now();
        for m in &metas {
            exposer.handle_datagram(now, m.from, &rbuf[m.offset..m.offset + m.len]);
        }
        // Send a bounded amount per turn so new requests are read in between.
        for _ in 0..256 {
            let Some(t) = exposer.poll_transmit(now, &mut tbuf) else {
                break;
            };
            link.send(&t, &tbuf)?;
        }
        if last_tick.elapsed() >= Duration::from_millis(200) {
            tick(exposer);
            last_tick = std::time::Instant::now();
        }
    }
    tick(exposer);
    Ok(())
}

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

fn send_all<S: SuiteFactory, L: Link>(
    puller: &mut Puller<S>,
    link: &mut L,
    now: Instant,
    buf: &mut Vec<u8>,
) -> io::Result<()> {
    while let Some(t) = puller.poll_transmit(now, buf) {
        link.send(&t, buf)?;
    }
    Ok(())
}

/// Carries out the puller's events against `sink`: `Some(())` once the pull completed.
pub fn drain_events<S: SuiteFactory>(
    puller: &mut Puller<S>,
    sink: &mut impl Sink,
) -> Result<Option<()>, PullFailure> {
    while let Some(ev) = puller.poll_event() {
        match ev {
            PullerEvent::Manifest(info) => sink.manifest(&info)?,
            PullerEvent::Recovered { offset, data, .. } => sink.write_at(offset, &data)?,
            PullerEvent::VerifyRoot => {
                let (Some(m), Some(scheme)) = (puller.manifest(), puller.hash_scheme()) else {
                    continue;
                };
                let root = crate::verify::output_root(scheme, sink.contents()?, m.chunk_size);
                puller.handle_root(&root);
            }
            PullerEvent::Complete => return Ok(Some(())),
            PullerEvent::Failed(e) => return Err(PullFailure::Protocol(e)),
        }
    }
    Ok(None)
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
    mut progress: impl FnMut(&Puller<S>),
) -> Result<(), PullFailure> {
    let mut rbuf = vec![0u8; RECV_BUF];
    let mut tbuf = Vec::with_capacity(2048);
    let mut metas: Vec<Received> = Vec::with_capacity(1024);
    let mut last_progress = std::time::Instant::now();
    loop {
        if stop.load(Ordering::Relaxed) {
            return Err(PullFailure::Stopped);
        }
        let now = clock.now();
        send_all(puller, link, now, &mut tbuf)?;
        if drain_events(puller, sink)?.is_some() {
            progress(puller);
            return Ok(());
        }
        let wait = match puller.poll_timeout() {
            Some(deadline) if deadline <= now => {
                puller.handle_timeout(now);
                continue;
            }
            Some(deadline) => deadline
                .saturating_since(now)
                .min(Duration::from_millis(100)),
            None => Duration::from_millis(100),
        };
        metas.clear();
        link.recv(&mut rbuf, &mut metas, Some(wait))?;
        let now = clock.now();
        for m in &metas {
            if let Some(d) =
                puller.handle_datagram(now, m.from, &mut rbuf[m.offset..m.offset + m.len])
            {
                sink.write_at(d.offset, d.data)?;
            }
            if drain_events(puller, sink)?.is_some() {
                progress(puller);
                return Ok(());
            }
        }
        if puller.poll_timeout().is_some_and(|d| d <= now) {
            puller.handle_timeout(now);
        }
        if last_progress.elapsed() >= Duration::from_millis(100) {
            progress(puller);
            last_progress = std::time::Instant::now();
        }
    }
}
