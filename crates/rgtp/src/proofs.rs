//! Merkle proofs checked on another core ([`PullerConfig::offload_proofs`]).
//!
//! With proofs on the wire, hashing each chunk's leaf and folding its proof is
//! most of what a puller's receive loop does. Offloaded, the puller opens each
//! chunk and hands it out, with its proof if it has one; the driver writes it and
//! copies it, in batches, to a thread that hashes the leaves together (SHA-256
//! hashes several messages at once), judges them an aligned run of 64 at a time
//! with a [`RunChecker`] (one proof a run is enough, spec §3.6) and sends the
//! verdicts back, which the driver gives the puller once a turn
//! ([`Verifier::settle`]). The checker folds the tree over every leaf it passed,
//! so the root at the end costs nothing more.
//!
//! Unlike [`crate::leaves::LeafHasher`], nothing may be dropped here: every
//! chunk waits for its verdict. When the thread is behind, handing over a batch
//! waits for it (the receive loop then runs at the thread's speed); when no
//! thread can be started, batches are checked where they are handed over.
//!
//! Started with a file's writer ([`Verifier::start_writing`]), the thread also
//! writes each batch once it has checked it, before it sends the verdicts back:
//! the driver then copies each chunk once, into the batch, and a chunk the puller
//! hears has passed is already in the file. A chunk that fails is written all the
//! same and overwritten by its good copy, which comes later through the same queue.
//!
//! [`PullerConfig::offload_proofs`]: rgtp_proto::PullerConfig::offload_proofs

use std::io;
use std::sync::mpsc;
use std::thread::JoinHandle;
use std::time::Duration;

use crate::lend::{self, Job, Lender};
use crate::sink::FileWriter;

use rgtp_proto::merkle::MerkleScheme;
use rgtp_proto::puller::{RunChecker, Verdict};
use rgtp_wire::{Hash, HASH_LEN};

/// Chunks a batch carries before it goes to the checking thread.
const BATCH: usize = 128;
/// Batches queued for the thread at most (bounded memory: ~15 MB of chunks).
const QUEUE: usize = 64;
/// While verdicts are outstanding the driver waits for datagrams at most this
/// long before it looks for them again.
pub const POLL: Duration = Duration::from_millis(1);

/// Chunks handed over together: their bytes, each one's plaintext then its proof.
#[derive(Default)]
struct Batch {
    /// (chunk index, end of its plaintext in `bytes`, end of its proof; equal
    /// ends: no proof, a rebuilt chunk).
    chunks: Vec<(u32, usize, usize)>,
    bytes: Vec<u8>,
    /// The chunks are in the output already (kept from an earlier run): checked,
    /// not written.
    kept: bool,
}

/// What the thread sends back for a batch.
struct Verdicts {
    verdicts: Vec<(u32, Verdict)>,
    /// The root over every leaf that passed, once all are in.
    root: Option<Hash>,
}

/// The checker and what it works with, wherever it runs.
struct Check {
    scheme: Box<dyn MerkleScheme>,
    checker: RunChecker,
    leaves: Vec<Hash>,
}

impl Check {
    fn new(scheme: Box<dyn MerkleScheme>, chunk_count: u32, root: Hash) -> Self {
        let checker = RunChecker::new(&*scheme, chunk_count, root);
        Check {
            scheme,
            checker,
            leaves: vec![[0; HASH_LEN]; BATCH],
        }
    }

    /// Checks the chunks of `b`, appending the verdicts this settles to `out`
    /// (a chunk whose run is not complete yet has its verdict later).
    fn run(&mut self, b: &Batch, out: &mut Vec<(u32, Verdict)>) {
        let mut start = 0;
        for group in b.chunks.chunks(BATCH) {
            let mut bodies: [&[u8]; BATCH] = [&[]; BATCH];
            let mut from = start;
            for (body, &(_, data_end, proof_end)) in bodies.iter_mut().zip(group) {
                *body = &b.bytes[from..data_end];
                from = proof_end;
            }
            let leaves = &mut self.leaves[..group.len()];
            self.scheme.leaves(&bodies[..group.len()], leaves);
            for (&(idx, data_end, proof_end), leaf) in group.iter().zip(&self.leaves) {
                let proof = (proof_end > data_end).then(|| &b.bytes[data_end..proof_end]);
                self.checker.add(&*self.scheme, idx, *leaf, proof, out);
            }
            start = group.last().map_or(start, |&(_, _, end)| end);
        }
    }
}

/// What the thread gives back when it ends: the writer, and the first write error.
type Ended = (Option<FileWriter>, Option<io::Error>);

enum Runner {
    /// The checking thread, and the emptied batches it gives back.
    Thread {
        /// Closing it ends the thread (not waited for unless it writes).
        tx: Option<mpsc::SyncSender<Job<Batch>>>,
        spare: mpsc::Receiver<Batch>,
        verdicts: mpsc::Receiver<Verdicts>,
        /// The lender's side of the writer, if the thread writes.
        lender: Lender,
        thread: Option<JoinHandle<Ended>>,
    },
    /// No thread could be started: batches are checked on the spot.
    Inline {
        check: Box<Check>,
        verdicts: Vec<(u32, Verdict)>,
    },
}

/// Checks the proofs of chunks handed to it, on a thread of its own.
pub struct Verifier {
    runner: Runner,
    /// The thread writes the output.
    writing: bool,
    batch: Batch,
    chunk_count: u32,
    /// Chunks handed over whose verdict has not come back.
    outstanding: u64,
    root: Option<Hash>,
}

impl core::fmt::Debug for Verifier {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.debug_struct("Verifier")
            .field("chunk_count", &self.chunk_count)
            .field("outstanding", &self.outstanding)
            .field("root", &self.root.is_some())
            .finish()
    }
}

impl Verifier {
    /// A verifier for an exposure of `chunk_count` chunks (at least one) under
    /// Merkle root `root`, hashing with `scheme`.
    pub fn start<M: MerkleScheme + Clone>(scheme: &M, chunk_count: u32, root: Hash) -> Self {
        match Self::spawn(scheme, chunk_count, root, None) {
            Ok(v) => v,
            Err(_) => Verifier::inline(scheme, chunk_count, root),
        }
    }

    /// A verifier whose thread also writes each chunk with `writer`, at its index
    /// times `chunk_size`, once its batch is checked. The writer comes back with
    /// [`Verifier::wait`]; errors come out of [`Verifier::check`],
    /// [`Verifier::sync`] and [`Verifier::wait`]. If no thread could be started
    /// the writer is handed back.
    pub fn start_writing<M: MerkleScheme + Clone>(
        scheme: &M,
        chunk_count: u32,
        root: Hash,
        chunk_size: u32,
        writer: FileWriter,
    ) -> Result<Self, Option<FileWriter>> {
        Self::spawn(scheme, chunk_count, root, Some((writer, chunk_size)))
    }

    fn inline<M: MerkleScheme + Clone>(scheme: &M, chunk_count: u32, root: Hash) -> Self {
        Verifier {
            runner: Runner::Inline {
                check: Box::new(Check::new(Box::new(scheme.clone()), chunk_count, root)),
                verdicts: Vec::new(),
            },
            writing: false,
            batch: Batch::default(),
            chunk_count,
            outstanding: 0,
            root: None,
        }
    }

    fn spawn<M: MerkleScheme + Clone>(
        scheme: &M,
        chunk_count: u32,
        root: Hash,
        writer: Option<(FileWriter, u32)>,
    ) -> Result<Self, Option<FileWriter>> {
        let (tx, rx) = mpsc::sync_channel::<Job<Batch>>(QUEUE);
        let (back, spare) = mpsc::channel::<Batch>();
        let (vtx, verdicts) = mpsc::channel::<Verdicts>();
        let s = scheme.clone();
        let writing = writer.is_some();
        let (lender, slot) = lend::lend(writer);
        let theirs = slot.clone();
        let thread = std::thread::Builder::new()
            .name("rgtp-proofs".into())
            .spawn(move || {
                let Some(mut file) = lend::take(&theirs) else {
                    return (None, None);
                };
                drop(theirs);
                let mut check = Check::new(Box::new(s), chunk_count, root);
                for job in rx {
                    let mut b = match job {
                        Job::Batch(b) => b,
                        Job::Sync => {
                            file.answer();
                            continue;
                        }
                    };
                    let mut out = Vec::with_capacity(b.chunks.len());
                    check.run(&b, &mut out);
                    // Written before the verdicts go back.
                    if !b.kept {
                        file.write(|w, chunk_size| write_runs(w, chunk_size, &b));
                    }
                    b.chunks.clear();
                    b.bytes.clear();
                    let _ = back.send(b);
                    let root = check.checker.root();
                    if vtx
                        .send(Verdicts {
                            verdicts: out,
                            root,
                        })
                        .is_err()
                        && !file.writes()
                    {
                        // Nobody listens, and nothing is left to write.
                        return file.end();
                    }
                }
                file.end()
            });
        let Ok(thread) = thread else {
            // Never started: the writer is still in the slot.
            return Err(lend::take_back(&slot));
        };
        Ok(Verifier {
            runner: Runner::Thread {
                tx: Some(tx),
                spare,
                verdicts,
                lender,
                thread: Some(thread),
            },
            writing,
            batch: Batch::default(),
            chunk_count,
            outstanding: 0,
            root: None,
        })
    }

    /// True if the thread writes the output ([`Verifier::start_writing`]).
    pub fn writes(&self) -> bool {
        self.writing
    }

    /// The error of a write the thread made, if one failed (its first); cheap
    /// enough to ask after every chunk.
    pub fn check(&mut self) -> io::Result<()> {
        match &self.runner {
            Runner::Thread { lender, .. } if lender.failed() => self.sync(),
            _ => Ok(()),
        }
    }

    /// Waits until the thread has written everything handed over so far; the first
    /// write error, if any.
    pub fn sync(&mut self) -> io::Result<()> {
        self.send()?;
        let Runner::Thread { tx, lender, .. } = &mut self.runner else {
            return Ok(());
        };
        lender.sync(tx.as_ref().ok_or_else(stopped)?)
    }

    /// Ends the thread and waits for it: everything handed over is checked, and
    /// written if it writes. Gives back the writer, with the first write error if
    /// any. Verdicts that came back and were not settled are dropped.
    pub fn wait(&mut self) -> (Option<FileWriter>, io::Result<()>) {
        let sent = self.send();
        let Runner::Thread { tx, thread, .. } = &mut self.runner else {
            return (None, sent);
        };
        tx.take();
        let Some(t) = thread.take() else {
            return (None, sent);
        };
        match t.join() {
            Ok((writer, error)) => (writer, error.map_or(sent, Err)),
            Err(_) => (None, Err(stopped())),
        }
    }

    /// Hands over chunk `index`'s plaintext, with its proof (none: a rebuilt chunk,
    /// or one of a proof run, judged with its run). Fails only if the checking
    /// thread stopped.
    pub fn push(&mut self, index: u32, data: &[u8], proof: Option<&[u8]>) -> io::Result<()> {
        self.stage(index, data, proof, false)
    }

    /// Hands over chunk `index`'s plaintext, which the output holds already (kept
    /// from an earlier run, [`rgtp_proto::PullerEvent::Kept`]): checked with its run
    /// like any other, never written. Fails only if the checking thread stopped.
    pub fn push_kept(&mut self, index: u32, data: &[u8]) -> io::Result<()> {
        self.stage(index, data, None, true)
    }

    fn stage(
        &mut self,
        index: u32,
        data: &[u8],
        proof: Option<&[u8]>,
        kept: bool,
    ) -> io::Result<()> {
        if index >= self.chunk_count {
            return Ok(());
        }
        if self.batch.kept != kept {
            // A batch is written whole or not at all.
            self.send()?;
            self.batch.kept = kept;
        }
        self.batch.bytes.extend_from_slice(data);
        let data_end = self.batch.bytes.len();
        if let Some(p) = proof {
            self.batch.bytes.extend_from_slice(p);
        }
        self.batch
            .chunks
            .push((index, data_end, self.batch.bytes.len()));
        self.outstanding += 1;
        if self.batch.chunks.len() >= BATCH {
            self.send()?;
        }
        Ok(())
    }

    fn send(&mut self) -> io::Result<()> {
        if self.batch.chunks.is_empty() {
            return Ok(());
        }
        match &mut self.runner {
            Runner::Thread { tx, spare, .. } => {
                let tx = tx.as_ref().ok_or_else(stopped)?;
                let next = spare.try_recv().unwrap_or_default();
                let full = std::mem::replace(&mut self.batch, next);
                // Waits when the thread is behind: every chunk needs its verdict.
                tx.send(Job::Batch(full)).map_err(|_| stopped())
            }
            Runner::Inline { check, verdicts } => {
                check.run(&self.batch, verdicts);
                self.batch.chunks.clear();
                self.batch.bytes.clear();
                Ok(())
            }
        }
    }

    /// Hands over what is batched, and gives every verdict that came back to
    /// `apply`. Returns how long the driver may wait before calling again: a
    /// short [`POLL`] while verdicts are outstanding. Fails only if the checking
    /// thread stopped.
    pub fn settle(&mut self, mut apply: impl FnMut(u32, Verdict)) -> io::Result<Option<Duration>> {
        self.send()?;
        match &mut self.runner {
            Runner::Thread { verdicts, .. } => loop {
                match verdicts.try_recv() {
                    Ok(v) => {
                        self.outstanding -= v.verdicts.len() as u64;
                        if v.root.is_some() {
                            self.root = v.root;
                        }
                        for (idx, verdict) in v.verdicts {
                            apply(idx, verdict);
                        }
                    }
                    Err(mpsc::TryRecvError::Empty) => break,
                    Err(mpsc::TryRecvError::Disconnected) => return Err(stopped()),
                }
            },
            Runner::Inline { check, verdicts } => {
                self.outstanding -= verdicts.len() as u64;
                self.root = self.root.or(check.checker.root());
                for (idx, verdict) in verdicts.drain(..) {
                    apply(idx, verdict);
                }
            }
        }
        Ok((self.outstanding > 0).then_some(POLL))
    }

    /// Chunks handed over whose verdict has not come back.
    pub fn outstanding(&self) -> u64 {
        self.outstanding
    }

    /// The root over every chunk that passed, once all have.
    pub fn root(&self) -> Option<Hash> {
        self.root
    }
}

fn stopped() -> io::Error {
    io::Error::other("the thread checking Merkle proofs stopped")
}

impl Drop for Verifier {
    fn drop(&mut self) {
        if self.writing {
            // What was handed over must be in the file before anyone reads or
            // records it.
            let _ = self.wait();
        }
    }
}

/// Writes the chunks of `b` with `w`: one write per run of consecutive chunks
/// whose bytes follow each other in the batch (a proof between two ends a run).
fn write_runs(w: &mut FileWriter, chunk_size: u64, b: &Batch) -> io::Result<()> {
    let mut from = 0;
    let mut i = 0;
    while i < b.chunks.len() {
        let (first, mut end, mut proof_end) = b.chunks[i];
        let mut j = i + 1;
        while j < b.chunks.len()
            && proof_end == end
            && b.chunks[j].0 == b.chunks[j - 1].0.wrapping_add(1)
        {
            (_, end, proof_end) = b.chunks[j];
            j += 1;
        }
        w.write_now(u64::from(first) * chunk_size, &b.bytes[from..end])?;
        from = proof_end;
        i = j;
    }
    Ok(())
}
