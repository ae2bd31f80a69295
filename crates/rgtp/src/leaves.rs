//! The root check of a deferred-root pull, overlapped with the transfer: every
//! verified chunk is copied, in batches, to a thread on another core that hashes
//! its leaf while the pull goes on, so at the end only the chunks it did not see
//! (resumed from an earlier run, or sent while it was behind) are hashed.
//!
//! The receive loop never waits for it: a batch that finds the thread's queue
//! full is dropped, and its chunks are hashed at the end from the output. Only a
//! pull that keeps no output ([`LeafHasher::start_lossless`]) waits instead, since
//! it has nothing to hash them from later.

use std::sync::mpsc;
use std::thread::JoinHandle;

use rgtp_proto::merkle::{leaves_of, MerkleRootBuilder, MerkleScheme};
use rgtp_wire::{Hash, HASH_LEN};

/// Chunks a batch carries before it goes to the hashing thread.
const BATCH: usize = 128;
/// Batches queued for the hashing thread at most (bounded memory).
const QUEUE: usize = 64;

#[derive(Default)]
struct Batch {
    /// (chunk index, end of its bytes in `bytes`).
    chunks: Vec<(u32, usize)>,
    bytes: Vec<u8>,
}

struct Done {
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
    tx: Option<mpsc::SyncSender<Batch>>,
    /// Emptied batches coming back, to be reused.
    spare: mpsc::Receiver<Batch>,
    batch: Batch,
    thread: Option<JoinHandle<Done>>,
    chunk_count: u32,
    /// Batches dropped because the thread was behind.
    dropped: u64,
    /// Wait for the thread instead of dropping a batch.
    lossless: bool,
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
        Self::spawn(scheme, chunk_count, false)
    }

    /// A hasher that never drops a batch: [`LeafHasher::push`] waits while the
    /// thread is behind, so every chunk pushed is hashed, and
    /// [`LeafHasher::finish_seen`] needs no output to read back.
    pub fn start_lossless<M: MerkleScheme + Clone>(
        scheme: &M,
        chunk_count: u32,
    ) -> Option<LeafHasher> {
        Self::spawn(scheme, chunk_count, true)
    }

    fn spawn<M: MerkleScheme + Clone>(
        scheme: &M,
        chunk_count: u32,
        lossless: bool,
    ) -> Option<LeafHasher> {
        let (tx, rx) = mpsc::sync_channel::<Batch>(QUEUE);
        let (back, spare) = mpsc::channel::<Batch>();
        let scheme = scheme.clone();
        let n = chunk_count as usize;
        let thread = std::thread::Builder::new()
            .name("rgtp-leaves".into())
            .spawn(move || {
                let mut leaves = vec![[0u8; HASH_LEN]; n];
                let mut have = vec![0u64; n.div_ceil(64)];
                let mut prefix = MerkleRootBuilder::new();
                let mut prefix_len = 0;
                let mut hashed = [[0u8; HASH_LEN]; BATCH];
                for mut b in rx {
                    // A batch at a time: SHA-256 hashes several chunks together.
                    let mut start = 0;
                    for group in b.chunks.chunks(BATCH) {
                        let mut bodies: [&[u8]; BATCH] = [&[]; BATCH];
                        for (body, &(_, end)) in bodies.iter_mut().zip(group) {
                            *body = &b.bytes[start..end];
                            start = end;
                        }
                        let hashed = &mut hashed[..group.len()];
                        scheme.leaves(&bodies[..group.len()], hashed);
                        for (&(i, _), leaf) in group.iter().zip(hashed.iter()) {
                            if let Some(l) = leaves.get_mut(i as usize) {
                                *l = *leaf;
                                have[i as usize / 64] |= 1 << (i % 64);
                            }
                        }
                    }
                    b.chunks.clear();
                    b.bytes.clear();
                    let _ = back.send(b);
                    // The root's tree grows here too, over the leaves without a gap.
                    let from = prefix_len;
                    while prefix_len < n && have[prefix_len / 64] & (1 << (prefix_len % 64)) != 0 {
                        prefix_len += 1;
                    }
                    prefix.push_many(&scheme, &leaves[from..prefix_len]);
                }
                Done {
                    leaves,
                    have,
                    prefix,
                    prefix_len,
                }
            })
            .ok()?;
        Some(LeafHasher {
            tx: Some(tx),
            spare,
            batch: Batch::default(),
            thread: Some(thread),
            chunk_count,
            dropped: 0,
            lossless,
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
        let full = std::mem::replace(&mut self.batch, next);
        if self.lossless {
            if tx.send(full).is_err() {
                self.tx = None;
            }
            return;
        }
        match tx.try_send(full) {
            Ok(()) => {}
            Err(mpsc::TrySendError::Full(mut b)) => {
                // Behind: these are hashed at the end instead; never wait here.
                self.dropped += 1;
                b.chunks.clear();
                b.bytes.clear();
                self.batch = b;
            }
            Err(mpsc::TrySendError::Disconnected(_)) => self.tx = None,
        }
    }

    /// Batches dropped because the thread was behind.
    pub fn dropped(&self) -> u64 {
        self.dropped
    }

    /// Ends the hashing and returns every leaf with their Merkle root, if the thread
    /// hashed every chunk (what a [`LeafHasher::start_lossless`] hasher was given
    /// for each index); `None` if any chunk is missing.
    pub fn finish_seen<M: MerkleScheme + ?Sized>(
        mut self,
        scheme: &M,
    ) -> Option<(Vec<Hash>, Hash)> {
        self.close();
        let done = self.thread.take()?.join().ok()?;
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
                let _ = tx.send(last);
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
        self.close();
        let done = self.thread.take().and_then(|t| t.join().ok());
        let chunk = chunk_size.max(1) as usize;
        let n = contents.len().div_ceil(chunk);
        let Some(Done {
            mut leaves,
            have,
            mut prefix,
            prefix_len,
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
        // Closing the queue ends the thread; it is not waited for.
        self.tx = None;
    }
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
}
