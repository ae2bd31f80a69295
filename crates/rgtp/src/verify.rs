//! End-of-transfer verification of a reassembled output, using every core.

use rgtp_proto::exposer::{seal_chunks, slot_len, BuildError};
use rgtp_proto::merkle::{fill_level, leaves_of, root_of, MerkleScheme, MerkleTree};
use rgtp_wire::{ExposureId, Hash, HASH_LEN};

/// The Merkle root over `data` cut into `chunk_size` chunks, leaves hashed in parallel.
pub fn output_root<M: MerkleScheme + ?Sized>(scheme: &M, data: &[u8], chunk_size: u32) -> Hash {
    if data.is_empty() {
        return scheme.leaf(&[]);
    }
    root_of(scheme, &output_leaves(scheme, data, chunk_size))
}

/// The leaf hash of every `chunk_size` chunk of `data`, in order, hashed in parallel
/// (what [`Puller::handle_leaves`](rgtp_proto::Puller::handle_leaves) takes).
pub fn output_leaves<M: MerkleScheme + ?Sized>(
    scheme: &M,
    data: &[u8],
    chunk_size: u32,
) -> Vec<Hash> {
    let chunk = chunk_size.max(1) as usize;
    let n = data.len().div_ceil(chunk);
    let mut leaves = vec![[0u8; HASH_LEN]; n];
    let threads = cores();
    let per = n.div_ceil(threads).max(1);
    std::thread::scope(|s| {
        for (t, out) in leaves.chunks_mut(per).enumerate() {
            let first = t * per * chunk;
            let part = &data[first..(first + out.len() * chunk).min(data.len())];
            s.spawn(move || leaves_of(scheme, part, chunk, out));
        }
    });
    leaves
}

/// Threads to spread work over: one per core, at most 16.
pub(crate) fn cores() -> usize {
    std::thread::available_parallelism()
        .map_or(1, |p| p.get())
        .clamp(1, 16)
}

/// Seals `data` in chunks of `chunk_size` for exposure `id` into `store` (an
/// [`Exposure::store_len`](rgtp_proto::Exposure::store_len) store), chunk ranges
/// sealed at once on every core.
pub fn seal_parallel<C: rgtp_proto::CipherSuite + ?Sized>(
    cipher: &C,
    id: &ExposureId,
    data: &[u8],
    chunk_size: u32,
    store: &mut [u8],
) -> Result<(), BuildError> {
    on_every_core(data, chunk_size, store, &mut [], |first, plain, out, _| {
        seal_chunks(cipher, id, plain, chunk_size, first, out)
    })
}

/// [`seal_parallel`] and [`output_leaves`] in one pass over `data`: each core
/// takes a range of chunks and, 64 at a time, hashes their leaves into `leaves`
/// (one per chunk) and seals them while they are still in cache, so the data is
/// read from memory once instead of twice. For an exposure whose key does not
/// depend on its root (every one but a stable Exposure_ID's).
pub fn seal_and_hash_parallel<C, M>(
    cipher: &C,
    id: &ExposureId,
    scheme: &M,
    data: &[u8],
    chunk_size: u32,
    store: &mut [u8],
    leaves: &mut [Hash],
) -> Result<(), BuildError>
where
    C: rgtp_proto::CipherSuite + ?Sized,
    M: MerkleScheme + ?Sized,
{
    const BATCH: u32 = 64;
    let chunk = chunk_size.max(1) as usize;
    assert_eq!(
        leaves.len(),
        data.len().div_ceil(chunk),
        "one leaf per chunk"
    );
    let stride = slot_len(chunk_size);
    on_every_core(
        data,
        chunk_size,
        store,
        leaves,
        |first, plain, out, leaves| {
            for ((b, part), leaves) in (0..)
                .zip(plain.chunks(BATCH as usize * chunk))
                .zip(leaves.chunks_mut(BATCH as usize))
            {
                leaves_of(scheme, part, chunk, leaves);
                let index = b * BATCH;
                let at = (index as usize * stride).min(out.len());
                let index = first.checked_add(index).ok_or(BuildError::TooManyChunks)?;
                seal_chunks(cipher, id, part, chunk_size, index, &mut out[at..])?;
            }
            Ok(())
        },
    )
}

/// Cuts `data` into pieces of whole chunks, with the matching parts of `store`
/// and of `leaves` (one hash per chunk, or empty when none are wanted), and runs
/// `range(first chunk, plain, store part, leaves part)` on every core at once,
/// each core taking the next piece as it finishes one; inputs under 4 MiB stay
/// on this thread. Pieces, not one range per core: the pages of a fresh store
/// cost far more to touch in some parts than in others (on a VM, memory the host
/// has not backed yet), and with one range per core the slow range alone set
/// the time.
fn on_every_core<F>(
    data: &[u8],
    chunk_size: u32,
    store: &mut [u8],
    leaves: &mut [Hash],
    range: F,
) -> Result<(), BuildError>
where
    F: Fn(u32, &[u8], &mut [u8], &mut [Hash]) -> Result<(), BuildError> + Sync,
{
    let chunk = chunk_size.max(1) as usize;
    let n = data.len().div_ceil(chunk);
    let threads = cores();
    if threads == 1 || data.len() < 4 << 20 {
        return range(0, data, store, leaves);
    }
    // About 2 MiB of input a piece, and at least four pieces a core.
    let per = (PIECE_BYTES / chunk)
        .clamp(1, n.div_ceil(4 * threads).max(1))
        .max(1);
    let stride = slot_len(chunk_size);
    let mut leaves = leaves;
    let mut pieces = Vec::with_capacity(n.div_ceil(per));
    for (t, out) in store.chunks_mut(per * stride).enumerate() {
        let first = t * per;
        let plain = &data[(first * chunk).min(data.len())..((first + per) * chunk).min(data.len())];
        let take = per.min(leaves.len());
        let (mine, rest) = std::mem::take(&mut leaves).split_at_mut(take);
        leaves = rest;
        pieces.push((first, plain, out, mine));
    }
    let queue = std::sync::Mutex::new(pieces.into_iter());
    let next = || queue.lock().ok().and_then(|mut q| q.next());
    let work = || -> Result<(), BuildError> {
        while let Some((first, plain, out, mine)) = next() {
            let first = u32::try_from(first).map_err(|_| BuildError::TooManyChunks)?;
            populate(out);
            range(first, plain, out, mine)?;
        }
        Ok(())
    };
    std::thread::scope(|s| {
        let handles: Vec<_> = (0..threads).map(|_| s.spawn(work)).collect();
        handles
            .into_iter()
            .map(|h| h.join().unwrap_or(Err(BuildError::Seal)))
            .collect::<Result<Vec<()>, _>>()
            .map(|_| ())
    })
}

/// Input bytes in one piece of [`on_every_core`]'s work.
const PIECE_BYTES: usize = 2 << 20;

/// Has the kernel back the whole pages of `bytes` with memory at once
/// (`MADV_POPULATE_WRITE`, Linux 5.14 and later), instead of one page fault per
/// page as they are first written. A fresh store is written a piece at a time,
/// each populated just before it is sealed: on the 2-core VMs measured, two
/// threads writing 1 GiB of fresh anonymous memory took 0.36-0.40 s faulting it
/// in page by page and 0.24 s populating each 2 MiB first. Pages already backed
/// are left as they are, and no byte changes; where the call is refused, the
/// pages fault in as before.
fn populate(bytes: &mut [u8]) {
    #[cfg(target_os = "linux")]
    {
        const PAGE: usize = 4096;
        let start = bytes.as_mut_ptr() as usize;
        let first = start.next_multiple_of(PAGE);
        let end = (start + bytes.len()) & !(PAGE - 1);
        if end > first {
            // SAFETY: `[first, end)` lies within `bytes`, which is ours to write;
            // populating writable pages changes none of their bytes. A failure
            // (an older kernel, a larger page size) only leaves the pages as they were.
            unsafe {
                libc::madvise(
                    first as *mut libc::c_void,
                    end - first,
                    libc::MADV_POPULATE_WRITE,
                )
            };
        }
    }
    #[cfg(not(target_os = "linux"))]
    let _ = bytes;
}

/// The Merkle tree over `leaves`, each wide level hashed on every core.
pub fn tree_parallel<M: MerkleScheme + ?Sized>(scheme: &M, leaves: Vec<Hash>) -> MerkleTree {
    let threads = cores();
    MerkleTree::from_leaves_with(scheme, leaves, &|below, pad, out| {
        if threads == 1 || out.len() < 1 << 15 {
            return fill_level(scheme, below, pad, out);
        }
        let per = out.len().div_ceil(threads);
        std::thread::scope(|s| {
            for (t, part) in out.chunks_mut(per).enumerate() {
                let from = 2 * t * per;
                let to = (from + 2 * part.len()).min(below.len());
                let below = &below[from..to];
                s.spawn(move || fill_level(scheme, below, pad, part));
            }
        });
    })
}

#[cfg(test)]
mod tests {
    use super::populate;

    /// Populating changes no byte: not of pages already written, not of fresh
    /// ones, not of the partial pages at either end of an unaligned slice.
    #[test]
    fn populating_keeps_every_byte() {
        let mut map = memmap2::MmapMut::map_anon(64 << 12).expect("map");
        for (i, b) in map[..20 << 12].iter_mut().enumerate() {
            *b = (i * 7 + i / 4096) as u8;
        }
        let before = map.to_vec();
        populate(&mut map[100..(40 << 12) + 5]);
        populate(&mut map[(50 << 12) + 1..(50 << 12) + 9]);
        populate(&mut map[..]);
        assert!(map[..] == before[..]);
    }
}
