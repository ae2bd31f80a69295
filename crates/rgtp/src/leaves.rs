//! The root check of a deferred-root pull, overlapped with the transfer: every
//! verified chunk is copied, in batches, to a thread on another core that hashes
//! its leaf while the pull goes on, so at the end only the chunks it did not see
//! (resumed from an earlier run, or sent while it was behind) are hashed.
//!
//! The receive loop never waits for it: a batch that finds the thread's queue
//! full is dropped, and its chunks are hashed at the end from the output. Only a
//! pull that keeps no output ([`LeafHasher::start_lossless`]) waits instead, since
//! it has nothing to hash them from later, and one whose output the thread writes
//! ([`LeafHasher::start_writing`]): the thread then hands every batch to the file
//! after hashing it, so the receive loop makes one copy of each chunk, not two,
//! and the writes cost the other core.
//!
//! When the thread falls behind (two batches still with it, the one it is on
//! included), the receive loop hashes the next batch itself before handing it
//! over, and the thread only records those leaves (and writes the chunks): the
//! two share the hashing as their loads require, without either waiting for the
//! other.

use std::io;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{mpsc, Arc};
use std::thread::JoinHandle;

use crate::lend::{self, Job, Lender};
use crate::sink::FileWriter;

use rgtp_proto::merkle::{leaves_of, MerkleRootBuilder, MerkleScheme};
use rgtp_wire::{Hash, HASH_LEN};

/// Chunks a batch carries before it goes to the hashing thread.
const BATCH: usize = 128;
/// Batches queued for the hashing thread at most (bounded memory).
const QUEUE: usize = 64;
/// Batches still with the thread (the one it is on included) from which the
/// receive loop hashes the next one itself.
const AHEAD: usize = 2;

#[derive(Default)]
struct Batch {
    /// (chunk index, end of its bytes in `bytes`).
    chunks: Vec<(u32, usize)>,
    bytes: Vec<u8>,
    /// The chunks' leaves, in order, when the receive loop hashed them; else empty.
    leaves: Vec<Hash>,
}

impl Batch {
    fn clear(&mut self) {
        self.chunks.clear();
        self.bytes.clear();
        self.leaves.clear();
    }

    /// Each chunk's bytes, in order, `BATCH` at a time, with their indices.
    fn groups(&self, mut each: impl FnMut(&[(u32, usize)], &[&[u8]])) {
        let mut start = 0;
        for group in self.chunks.chunks(BATCH) {
            let mut bodies: [&[u8]; BATCH] = [&[]; BATCH];
            for (body, &(_, end)) in bodies.iter_mut().zip(group) {
                *body = &self.bytes[start..end];
                start = end;
            }
            each(group, &bodies[..group.len()]);
        }
    }

    /// Hashes every chunk's leaf into `leaves`.
    fn hash(&mut self, scheme: &dyn MerkleScheme) {
        let mut leaves = std::mem::take(&mut self.leaves);
        leaves.clear();
        self.groups(|_, bodies| {
            let from = leaves.len();
            leaves.resize(from + bodies.len(), [0u8; HASH_LEN]);
            scheme.leaves(bodies, &mut leaves[from..]);
        });
        self.leaves = leaves;
    }
}

struct Done {
    /// The writer, given back.
    writer: Option<FileWriter>,
    /// The first write that failed; nothing was written after it.
    error: Option<io::Error>,
    leaves: Vec<Hash>,
    /// One bit per chunk hashed.
    have: Vec<u64>,
    /// The tree over the leading leaves hashed without a gap.
    prefix: MerkleRootBuilder,
    /// How many leaves `prefix` holds.
    prefix_len: usize,
}

/// Hashes the leaves of chunks handed to it on a thread of its own.
pub struct LeafHasher {
    tx: Option<mpsc::SyncSender<Job<Batch>>>,
    /// Emptied batches coming back, to be reused.
    spare: mpsc::Receiver<Batch>,
    /// The lender's side of the writer, if the thread writes.
    lender: Lender,
    batch: Batch,
    thread: Option<JoinHandle<Option<Done>>>,
    /// What the thread returned, once joined.
    done: Option<Done>,
    /// The thread writes the output.
    writing: bool,
    chunk_count: u32,
    /// Batches dropped because the thread was behind.
    dropped: u64,
    /// Wait for the thread instead of dropping a batch.
    lossless: bool,
    /// The scheme, for the batches hashed here.
    scheme: Box<dyn MerkleScheme>,
    /// Batches handed to the thread that it has not finished.
    queued: Arc<AtomicUsize>,
    /// Batches still with the thread from which the next is hashed here ([`AHEAD`];
    /// tests set it to 0 or `usize::MAX`).
    ahead: usize,
    /// Batches hashed here because the thread was behind.
    hashed_here: u64,
    /// A batch could not be handed over: the thread is gone.
    tx_broken: bool,
}

impl core::fmt::Debug for LeafHasher {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.debug_struct("LeafHasher")
            .field("chunk_count", &self.chunk_count)
            .field("dropped", &self.dropped)
            .finish()
    }
}

impl LeafHasher {
    /// A hasher for an exposure of `chunk_count` chunks, hashing with `scheme`;
    /// `None` if no thread could be started (everything is then hashed at the end).
    pub fn start<M: MerkleScheme + Clone>(scheme: &M, chunk_count: u32) -> Option<LeafHasher> {
        Self::spawn(scheme, chunk_count, false, None).ok()
    }

    /// A lossless hasher ([`LeafHasher::start_lossless`]) whose thread also writes
    /// each chunk with `writer`, at its index times `chunk_size`, once hashed. The
    /// writer comes back with [`LeafHasher::wait`]; errors come out of
    /// [`LeafHasher::sync`] and [`LeafHasher::wait`]. If no thread could be started
    /// the writer is handed back.
    pub fn start_writing<M: MerkleScheme + Clone>(
        scheme: &M,
        chunk_count: u32,
        chunk_size: u32,
        writer: FileWriter,
    ) -> Result<LeafHasher, Option<FileWriter>> {
        Self::spawn(scheme, chunk_count, true, Some((writer, chunk_size)))
    }

    /// A hasher that never drops a batch: [`LeafHasher::push`] waits while the
    /// thread is behind, so every chunk pushed is hashed, and
    /// [`LeafHasher::finish_seen`] needs no output to read back.
    pub fn start_lossless<M: MerkleScheme + Clone>(
        scheme: &M,
        chunk_count: u32,
    ) -> Option<LeafHasher> {
        Self::spawn(scheme, chunk_count, true, None).ok()
    }

    fn spawn<M: MerkleScheme + Clone>(
        scheme: &M,
        chunk_count: u32,
        lossless: bool,
        writer: Option<(FileWriter, u32)>,
    ) -> Result<LeafHasher, Option<FileWriter>> {
        let (tx, rx) = mpsc::sync_channel::<Job<Batch>>(QUEUE);
        let (back, spare) = mpsc::channel::<Batch>();
        let mine: Box<dyn MerkleScheme> = Box::new(scheme.clone());
        let scheme = scheme.clone();
        let queued = Arc::new(AtomicUsize::new(0));
        let done_one = queued.clone();
        let n = chunk_count as usize;
        let writing = writer.is_some();
        let (lender, slot) = lend::lend(writer);
        let theirs = slot.clone();
        let spawned = std::thread::Builder::new()
            .name("rgtp-leaves".into())
            .spawn(move || {
                // The thread's side of the writer (writing nothing when none was lent).
                let mut out = lend::take(&theirs)?;
                drop(theirs);
                let mut leaves = vec![[0u8; HASH_LEN]; n];
                let mut have = vec![0u64; n.div_ceil(64)];
                let mut prefix = MerkleRootBuilder::new();
                let mut prefix_len = 0;
                let mut hashed = [[0u8; HASH_LEN]; BATCH];
                for job in rx {
                    let mut b = match job {
                        Job::Batch(b) => b,
                        Job::Sync => {
                            out.answer();
                            continue;
                        }
                    };
                    let mut record = |group: &[(u32, usize)], hashed: &[Hash]| {
                        for (&(i, _), leaf) in group.iter().zip(hashed) {
                            if let Some(l) = leaves.get_mut(i as usize) {
                                *l = *leaf;
                                have[i as usize / 64] |= 1 << (i % 64);
                            }
                        }
                    };
                    if b.leaves.len() == b.chunks.len() {
                        // Hashed by the receive loop.
                        record(&b.chunks, &b.leaves);
                    } else {
                        // A batch at a time: SHA-256 hashes several chunks together.
                        b.groups(|group, bodies| {
                            let hashed = &mut hashed[..group.len()];
                            scheme.leaves(bodies, hashed);
                            record(group, hashed);
                        });
                    }
                    out.write(|w, chunk_size| write_runs(w, chunk_size, &b));
                    b.clear();
                    done_one.fetch_sub(1, Ordering::Relaxed);
                    let _ = back.send(b);
                    // The root's tree grows here too, over the leaves without a gap.
                    let from = prefix_len;
                    while prefix_len < n && have[prefix_len / 64] & (1 << (prefix_len % 64)) != 0 {
                        prefix_len += 1;
                    }
                    prefix.push_many(&scheme, &leaves[from..prefix_len]);
                }
                let (writer, error) = out.end();
                Some(Done {
                    writer,
                    error,
                    leaves,
                    have,
                    prefix,
                    prefix_len,
                })
            });
        let Ok(thread) = spawned else {
            // Never started: the writer is still in the slot.
            return Err(lend::take_back(&slot));
        };
        Ok(LeafHasher {
            tx: Some(tx),
            spare,
            lender,
            batch: Batch::default(),
            thread: Some(thread),
            done: None,
            writing,
            chunk_count,
            dropped: 0,
            lossless,
            scheme: mine,
            queued,
            ahead: AHEAD,
            hashed_here: 0,
            tx_broken: false,
        })
    }

    /// Hands over chunk `index`, verified, with its plaintext.
    pub fn push(&mut self, index: u32, data: &[u8]) {
        if index >= self.chunk_count {
            return;
        }
        self.batch.bytes.extend_from_slice(data);
        self.batch.chunks.push((index, self.batch.bytes.len()));
        if self.batch.chunks.len() >= BATCH {
            self.send();
        }
    }

    fn send(&mut self) {
        let Some(tx) = self.tx.as_ref() else { return };
        let next = self.spare.try_recv().unwrap_or_default();
        let mut full = std::mem::replace(&mut self.batch, next);
        // Counted before it goes: the thread counts it off once done with it.
        if self.queued.fetch_add(1, Ordering::Relaxed) >= self.ahead {
            // The thread is behind: take this batch's hashing off it.
            full.hash(&*self.scheme);
            self.hashed_here += 1;
        }
        if self.lossless {
            if tx.send(Job::Batch(full)).is_err() {
                self.queued.fetch_sub(1, Ordering::Relaxed);
                self.tx = None;
                self.tx_broken = true;
            }
            return;
        }
        match tx.try_send(Job::Batch(full)) {
            Ok(()) => {}
            Err(mpsc::TrySendError::Full(job)) => {
                // Behind: these are hashed at the end instead; never wait here.
                self.queued.fetch_sub(1, Ordering::Relaxed);
                self.dropped += 1;
                if let Job::Batch(mut b) = job {
                    b.clear();
                    self.batch = b;
                }
            }
            Err(mpsc::TrySendError::Disconnected(_)) => {
                self.queued.fetch_sub(1, Ordering::Relaxed);
                self.tx = None;
            }
        }
    }

    /// True if the thread writes the output ([`LeafHasher::start_writing`]).
    pub fn writes(&self) -> bool {
        self.writing
    }

    /// The error of a write the thread made, if one failed (its first); cheap
    /// enough to ask after every chunk.
    pub fn check(&mut self) -> io::Result<()> {
        if self.lender.failed() {
            return self.sync();
        }
        Ok(())
    }

    /// Waits until the thread has written everything pushed so far: after this, the
    /// output holds every chunk pushed (what a record of the output may then claim).
    /// The first write error, if any; an error too if the thread is gone.
    pub fn sync(&mut self) -> io::Result<()> {
        if !self.batch.chunks.is_empty() {
            self.send();
        }
        let tx = self.tx.as_ref().ok_or_else(gone)?;
        self.lender.sync(tx)
    }

    /// Ends the thread and waits for it: every chunk pushed is hashed, and written
    /// if it writes. Gives back the writer, with the first write error if any.
    pub fn wait(&mut self) -> (Option<FileWriter>, io::Result<()>) {
        self.close();
        if let Some(t) = self.thread.take() {
            self.done = t.join().ok().flatten();
        }
        let Some(done) = self.done.as_mut() else {
            let e = io::Error::other("the thread hashing the output stopped");
            return (None, if self.writing { Err(e) } else { Ok(()) });
        };
        let result = match done.error.take() {
            Some(e) => Err(e),
            None if self.writing && self.tx_broken => Err(gone()),
            None => Ok(()),
        };
        (done.writer.take(), result)
    }

    /// Batches dropped because the thread was behind.
    pub fn dropped(&self) -> u64 {
        self.dropped
    }

    /// Batches the caller's thread hashed itself, in [`LeafHasher::push`], because
    /// the hashing thread was behind.
    pub fn hashed_here(&self) -> u64 {
        self.hashed_here
    }

    /// Ends the hashing and returns every leaf with their Merkle root, if the thread
    /// hashed every chunk (what a [`LeafHasher::start_lossless`] hasher was given
    /// for each index); `None` if any chunk is missing.
    pub fn finish_seen<M: MerkleScheme + ?Sized>(
        mut self,
        scheme: &M,
    ) -> Option<(Vec<Hash>, Hash)> {
        let _ = self.wait();
        let done = self.done.take()?;
        let n = self.chunk_count as usize;
        if done.leaves.len() != n || done.prefix_len != n {
            return None;
        }
        Some((done.leaves, done.prefix.finish(scheme)))
    }

    /// Sends the last batch and closes the queue, which ends the thread.
    fn close(&mut self) {
        if let Some(tx) = self.tx.take() {
            let last = std::mem::take(&mut self.batch);
            if !last.chunks.is_empty() {
                self.queued.fetch_add(1, Ordering::Relaxed);
                let _ = tx.send(Job::Batch(last));
            }
        }
    }

    /// Every leaf of `contents` (the whole output, in chunks of `chunk_size`): those
    /// the thread hashed, and the rest hashed now on every core; with their Merkle
    /// root, whose tree the thread built over the leaves it had without a gap.
    pub fn finish<M: MerkleScheme + ?Sized>(
        mut self,
        scheme: &M,
        contents: &[u8],
        chunk_size: u32,
    ) -> (Vec<Hash>, Hash) {
        let _ = self.wait();
        let done = self.done.take();
        let chunk = chunk_size.max(1) as usize;
        let n = contents.len().div_ceil(chunk);
        let Some(Done {
            mut leaves,
            have,
            mut prefix,
            prefix_len,
            ..
        }) = done.filter(|d| d.leaves.len() == n)
        else {
            let leaves = crate::verify::output_leaves(scheme, contents, chunk_size);
            let root = rgtp_proto::merkle::root_of(scheme, &leaves);
            return (leaves, root);
        };
        let threads = crate::verify::cores();
        let per = n.div_ceil(threads).max(1);
        std::thread::scope(|s| {
            for (t, out) in leaves.chunks_mut(per).enumerate() {
                let first = t * per;
                let have = &have;
                s.spawn(move || {
                    // Each run of chunks the thread did not see, hashed together.
                    let missing =
                        |j: usize| have[(first + j) / 64] & (1 << ((first + j) % 64)) == 0;
                    let mut j = 0;
                    while j < out.len() {
                        if !missing(j) {
                            j += 1;
                            continue;
                        }
                        let run = (j..out.len()).take_while(|&k| missing(k)).count();
                        let from = (first + j) * chunk;
                        let to = ((first + j + run) * chunk).min(contents.len());
                        leaves_of(scheme, &contents[from..to], chunk, &mut out[j..j + run]);
                        j += run;
                    }
                });
            }
        });
        prefix.push_many(scheme, &leaves[prefix_len..]);
        let root = prefix.finish(scheme);
        (leaves, root)
    }
}

impl Drop for LeafHasher {
    fn drop(&mut self) {
        if self.writing {
            // What was pushed must be in the file before anyone reads or records it.
            let _ = self.wait();
        } else {
            // Closing the queue ends the thread; it is not waited for.
            self.tx = None;
        }
    }
}

fn gone() -> io::Error {
    io::Error::other("the thread writing the output stopped")
}

/// Writes the chunks of `b` with `w`, one write per run of consecutive indices.
fn write_runs(w: &mut FileWriter, chunk_size: u64, b: &Batch) -> io::Result<()> {
    let mut start = 0;
    let mut i = 0;
    while i < b.chunks.len() {
        let first = b.chunks[i].0;
        let mut j = i + 1;
        while j < b.chunks.len() && b.chunks[j].0 == b.chunks[j - 1].0.wrapping_add(1) {
            j += 1;
        }
        let end = b.chunks[j - 1].1;
        w.write_now(u64::from(first) * chunk_size, &b.bytes[start..end])?;
        start = end;
        i = j;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use rgtp_proto::merkle::{root_of, HashId};
    use rgtp_providers::hash::AnyHash;

    const CHUNK: usize = 1_000;

    /// The first hash provider this build has.
    fn scheme() -> AnyHash {
        [HashId::Sha256, HashId::Blake3, HashId::Blake2b256]
            .into_iter()
            .find_map(AnyHash::new)
            .expect("a hash provider is built in")
    }

    fn chunks(n: usize) -> Vec<u8> {
        (0..n * CHUNK - 123).map(|i| (i * 31 % 251) as u8).collect()
    }

    fn push_all(h: &mut LeafHasher, data: &[u8], skip: Option<u32>) {
        for (i, c) in data.chunks(CHUNK).enumerate() {
            if Some(i as u32) != skip {
                h.push(i as u32, c);
            }
        }
    }

    #[test]
    fn a_lossless_hasher_hashes_every_chunk_however_far_behind_it_falls() {
        let scheme = scheme();
        // Far more batches than the queue holds, pushed without pause: a dropping
        // hasher would lose some of them.
        let n = BATCH * QUEUE * 3;
        let data = chunks(n);
        let want = crate::verify::output_leaves(&scheme, &data, CHUNK as u32);
        let mut h = LeafHasher::start_lossless(&scheme, n as u32).unwrap();
        push_all(&mut h, &data, None);
        assert_eq!(h.dropped(), 0);
        let (leaves, root) = h.finish_seen(&scheme).expect("every chunk was hashed");
        assert!(leaves == want, "leaves differ from the data's");
        assert_eq!(root, root_of(&scheme, &want));
    }

    #[test]
    fn a_lossless_hasher_missing_a_chunk_gives_no_root() {
        let scheme = scheme();
        let n = 1_000;
        let data = chunks(n);
        for skip in [0, 517, n as u32 - 1] {
            let mut h = LeafHasher::start_lossless(&scheme, n as u32).unwrap();
            push_all(&mut h, &data, Some(skip));
            assert!(h.finish_seen(&scheme).is_none(), "chunk {skip} missing");
        }
    }

    #[test]
    fn a_lossless_hasher_roots_what_it_was_given() {
        // A chunk delivered with other bytes than the exposure's gives another root,
        // which the puller then repairs (spec §8.12) or fails on.
        let scheme = scheme();
        let n = 300;
        let data = chunks(n);
        let good = root_of(
            &scheme,
            &crate::verify::output_leaves(&scheme, &data, CHUNK as u32),
        );
        let mut bad = data.clone();
        bad[150 * CHUNK + 9] ^= 1;
        let mut h = LeafHasher::start_lossless(&scheme, n as u32).unwrap();
        push_all(&mut h, &bad, None);
        let (leaves, root) = h.finish_seen(&scheme).unwrap();
        assert_ne!(root, good);
        assert_eq!(root, root_of(&scheme, &leaves));
        assert_eq!(
            leaves[150],
            crate::verify::output_leaves(&scheme, &bad[150 * CHUNK..151 * CHUNK], CHUNK as u32)[0]
        );
    }

    /// A file sink for `n` chunks of `data`, its writer taken out.
    fn detached(dir: &std::path::Path, size: u64, n: u32) -> (crate::sink::FileSink, FileWriter) {
        use crate::sink::{FileSink, Sink};
        let mut sink = FileSink::create(&dir.join("out")).unwrap();
        let info = rgtp_proto::puller::ManifestInfo {
            exposure_id: [0; 16],
            total_size: size,
            chunk_count: n,
            chunk_size: CHUNK as u32,
            merkle_root: [0; 32],
            suite: rgtp_proto::SuiteId::default(),
            rate_cap: None,
        };
        sink.manifest(&info).unwrap();
        let w = sink
            .detach_writer()
            .expect("a file sink lets go of its writer");
        (sink, w)
    }

    #[test]
    fn a_writing_hasher_puts_every_chunk_in_its_place_and_gives_the_writer_back() {
        use crate::sink::Sink;
        let scheme = scheme();
        let n = BATCH * 3 + 17;
        let data = chunks(n);
        let dir = tempfile::tempdir().unwrap();
        let (mut sink, w) = detached(dir.path(), data.len() as u64, n as u32);
        assert!(
            sink.write_at(0, &data[..CHUNK]).is_err(),
            "the writer is out"
        );
        let mut h = LeafHasher::start_writing(&scheme, n as u32, CHUNK as u32, w).unwrap();
        assert!(h.writes());
        // Out of order: runs backwards, then every other chunk, then the rest.
        let order: Vec<usize> = (BATCH..n)
            .rev()
            .filter(|i| i % 2 == 0)
            .chain((0..BATCH).filter(|i| i % 2 == 0))
            .chain((0..n).filter(|i| i % 2 == 1))
            .collect();
        assert_eq!(order.len(), n);
        let chunk = |i: usize| &data[i * CHUNK..((i + 1) * CHUNK).min(data.len())];
        for &i in &order {
            h.push(i as u32, chunk(i));
            h.check().unwrap();
        }
        // After a sync the file holds everything pushed, while the thread still runs.
        h.sync().unwrap();
        let partial = sink.partial_path().to_path_buf();
        assert!(std::fs::read(&partial).unwrap() == data, "output differs");
        let (writer, result) = h.wait();
        result.unwrap();
        sink.attach_writer(writer.expect("the writer comes back"));
        sink.write_at(5, b"again").unwrap();
        let want = crate::verify::output_leaves(&scheme, &data, CHUNK as u32);
        let (leaves, root) = h.finish(&scheme, &data, CHUNK as u32);
        assert!(leaves == want);
        assert_eq!(root, root_of(&scheme, &want));
        assert_eq!(&sink.contents().unwrap()[5..10], b"again");
    }

    #[test]
    fn batches_hashed_by_the_pushing_thread_give_the_same_leaves_and_file() {
        // `ahead` 0: every batch is hashed by the pusher, as when the thread is
        // always behind; `usize::MAX`: never, as when it keeps up. Both give the
        // data's leaves, root and file, chunks pushed out of order and a short
        // last batch included.
        let scheme = scheme();
        let n = BATCH * 5 + 17;
        let data = chunks(n);
        let want = crate::verify::output_leaves(&scheme, &data, CHUNK as u32);
        let chunk = |i: usize| &data[i * CHUNK..((i + 1) * CHUNK).min(data.len())];
        for ahead in [0, usize::MAX] {
            let dir = tempfile::tempdir().unwrap();
            let (sink, w) = detached(dir.path(), data.len() as u64, n as u32);
            let mut h = LeafHasher::start_writing(&scheme, n as u32, CHUNK as u32, w).unwrap();
            h.ahead = ahead;
            for i in (0..n)
                .filter(|i| i % 3 != 1)
                .chain((0..n).filter(|i| i % 3 == 1))
            {
                h.push(i as u32, chunk(i));
            }
            h.sync().unwrap();
            assert!(
                std::fs::read(sink.partial_path()).unwrap() == data,
                "output differs (ahead {ahead})"
            );
            let here = h.hashed_here();
            if ahead == 0 {
                assert_eq!(here, n.div_ceil(BATCH) as u64, "every batch hashed here");
            } else {
                assert_eq!(here, 0);
            }
            let (leaves, root) = h.finish(&scheme, &data, CHUNK as u32);
            assert!(leaves == want, "leaves differ (ahead {ahead})");
            assert_eq!(root, root_of(&scheme, &want));
        }
        // The lossless hasher without a file: every leaf from the pusher's hashing.
        let mut h = LeafHasher::start_lossless(&scheme, n as u32).unwrap();
        h.ahead = 0;
        push_all(&mut h, &data, None);
        let (leaves, root) = h.finish_seen(&scheme).expect("every chunk was hashed");
        assert!(leaves == want);
        assert_eq!(root, root_of(&scheme, &want));
    }

    #[test]
    fn a_write_that_fails_on_the_thread_is_reported_and_stops_the_writing() {
        let scheme = scheme();
        let n = 300;
        let data = chunks(n);
        let dir = tempfile::tempdir().unwrap();
        // The file is ten chunks long: chunk 200 falls past its end.
        let (sink, w) = detached(dir.path(), 10 * CHUNK as u64, n as u32);
        let mut h = LeafHasher::start_writing(&scheme, n as u32, CHUNK as u32, w).unwrap();
        for i in [0, 1, 200, 2] {
            h.push(i, &data[i as usize * CHUNK..(i as usize + 1) * CHUNK]);
        }
        let e = h.sync().expect_err("chunk 200 is past the end");
        assert_eq!(e.kind(), io::ErrorKind::InvalidData, "{e}");
        assert!(h.check().is_err(), "the failure stays");
        let (writer, result) = h.wait();
        assert!(writer.is_some());
        assert_eq!(
            result.expect_err("reported again").kind(),
            io::ErrorKind::InvalidData
        );
        // What came before the failed write is in the file; what came after is not.
        let out = std::fs::read(sink.partial_path()).unwrap();
        assert!(out[..2 * CHUNK] == data[..2 * CHUNK]);
        assert!(out[2 * CHUNK..3 * CHUNK].iter().all(|&b| b == 0));
    }
}
