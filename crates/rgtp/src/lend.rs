//! A file sink's writer lent to the background thread of a pull (the leaf hasher's,
//! [`crate::leaves`], or the proof checker's, [`crate::proofs`]), so that the
//! thread that already holds a copy of each chunk writes it, off the receive path.
//!
//! The thread keeps the first error its writes meet and writes nothing after it;
//! the lender sees a flag at the cost of one atomic load, and asks for the error,
//! or for proof that everything handed over is written, with a [`Job::Sync`].

use std::io;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{mpsc, Arc, Mutex};

use crate::sink::FileWriter;

/// What a lending thread is handed.
pub(crate) enum Job<B> {
    /// Work on a batch of chunks (and write it).
    Batch(B),
    /// Answer once everything handed over before is written.
    Sync,
}

/// A thread's answer to [`Job::Sync`]: the first write error, if any.
type Answer = Result<(), (io::ErrorKind, String)>;

/// The thread's side: the writer, and the first error its writes met.
pub(crate) struct Borrowed {
    writer: Option<FileWriter>,
    chunk_size: u64,
    error: Option<io::Error>,
    failed: Arc<AtomicBool>,
    answers: mpsc::Sender<Answer>,
}

/// The lender's side.
pub(crate) struct Lender {
    failed: Arc<AtomicBool>,
    answers: mpsc::Receiver<Answer>,
}

/// Where the thread takes its side from, once started; if it never starts, the
/// writer is taken back from here ([`take_back`]).
pub(crate) type Slot = Arc<Mutex<Option<Borrowed>>>;

/// Lends `writer` (chunk `i` at `i * chunk_size`), or nothing: the lender's side,
/// and the slot the thread takes its side from.
pub(crate) fn lend(writer: Option<(FileWriter, u32)>) -> (Lender, Slot) {
    let failed = Arc::new(AtomicBool::new(false));
    let (tx, rx) = mpsc::channel();
    let (writer, chunk_size) = match writer {
        Some((w, size)) => (Some(w), u64::from(size)),
        None => (None, 0),
    };
    let borrowed = Borrowed {
        writer,
        chunk_size,
        error: None,
        failed: failed.clone(),
        answers: tx,
    };
    let lender = Lender {
        failed,
        answers: rx,
    };
    (lender, Arc::new(Mutex::new(Some(borrowed))))
}

/// The thread's side, taken from `slot` when the thread starts.
pub(crate) fn take(slot: &Slot) -> Option<Borrowed> {
    slot.lock().ok().and_then(|mut b| b.take())
}

/// The writer, from a slot whose thread never started.
pub(crate) fn take_back(slot: &Slot) -> Option<FileWriter> {
    take(slot).and_then(|b| b.writer)
}

impl Borrowed {
    /// True if there is a writer to write with.
    pub(crate) fn writes(&self) -> bool {
        self.writer.is_some()
    }

    /// Writes with `f` (given the writer and the chunk size), unless an earlier
    /// write failed; keeps the error if this one does.
    pub(crate) fn write(&mut self, f: impl FnOnce(&mut FileWriter, u64) -> io::Result<()>) {
        if self.error.is_some() {
            return;
        }
        if let Some(w) = self.writer.as_mut() {
            if let Err(e) = f(w, self.chunk_size) {
                self.fail(e);
            }
        }
    }

    fn fail(&mut self, e: io::Error) {
        self.failed.store(true, Ordering::Relaxed);
        self.error = Some(e);
    }

    /// Answers a [`Job::Sync`]: hands what the writer gathered to the file first.
    pub(crate) fn answer(&mut self) {
        if self.error.is_none() {
            if let Some(Err(e)) = self.writer.as_mut().map(|w| w.flush()) {
                self.fail(e);
            }
        }
        let _ = self.answers.send(match &self.error {
            Some(e) => Err((e.kind(), e.to_string())),
            None => Ok(()),
        });
    }

    /// The writer, to give back, and the first error.
    pub(crate) fn end(self) -> (Option<FileWriter>, Option<io::Error>) {
        (self.writer, self.error)
    }
}

impl Lender {
    /// True once a write on the thread failed.
    pub(crate) fn failed(&self) -> bool {
        self.failed.load(Ordering::Relaxed)
    }

    /// Sends a [`Job::Sync`] on `tx` and waits for its answer.
    pub(crate) fn sync<B>(&self, tx: &mpsc::SyncSender<Job<B>>) -> io::Result<()> {
        let gone = || io::Error::other("the thread writing the output stopped");
        tx.send(Job::Sync).map_err(|_| gone())?;
        match self.answers.recv() {
            Ok(Ok(())) => Ok(()),
            Ok(Err((kind, msg))) => Err(io::Error::new(kind, msg)),
            Err(_) => Err(gone()),
        }
    }
}
