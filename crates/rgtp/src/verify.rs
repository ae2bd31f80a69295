//! End-of-transfer verification of a reassembled output, using every core.

use rgtp_proto::merkle::{root_of, MerkleScheme};
use rgtp_wire::{Hash, HASH_LEN};

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
    let threads = std::thread::available_parallelism()
        .map_or(1, |p| p.get())
        .clamp(1, 16);
    let per = n.div_ceil(threads).max(1);
    std::thread::scope(|s| {
        for (t, out) in leaves.chunks_mut(per).enumerate() {
            let first = t * per;
            s.spawn(move || {
                for (j, leaf) in out.iter_mut().enumerate() {
                    let start = (first + j) * chunk;
                    let end = (start + chunk).min(data.len());
                    *leaf = scheme.leaf(&data[start..end]);
                }
            });
        }
    });
    leaves
}
