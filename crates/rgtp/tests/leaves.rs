//! Leaves hashed on another core while chunks arrive are the leaves of the output,
//! and the root built along with them is theirs.

use rgtp::leaves::LeafHasher;
use rgtp::verify::output_leaves;
use rgtp_proto::merkle::{root_of, MerkleScheme};
use rgtp_providers::hash::{Blake3, Sha256};

#[test]
fn overlapped_leaves_equal_the_leaves_of_the_output() {
    overlapped_leaves_are_the_outputs(&Blake3);
    // SHA-256 hashes batches of chunks together, on the thread and at the end.
    overlapped_leaves_are_the_outputs(&Sha256::new());
}

fn overlapped_leaves_are_the_outputs<M: MerkleScheme + Clone>(scheme: &M) {
    let chunk = 1000u32;
    let data: Vec<u8> = (0..2_345_678usize)
        .map(|i| (i * 13 + i / 1013) as u8)
        .collect();
    let n = data.len().div_ceil(chunk as usize) as u32;
    // One leaf at a time, the reference.
    let want: Vec<_> = data
        .chunks(chunk as usize)
        .map(|c| scheme.leaf(c))
        .collect();
    assert_eq!(output_leaves(scheme, &data, chunk), want);
    let want = (want.clone(), root_of(scheme, &want));
    // Every chunk, some, none, the first half: the rest is hashed at the end
    // from the output, in runs (the last one ending on the short last chunk).
    for (stride, upto) in [(1u32, n), (2, n), (3, n), (7, n), (u32::MAX, n), (1, n / 2)] {
        let mut h = LeafHasher::start(scheme, n).expect("a thread");
        let mut i = 0u32;
        while i < upto {
            let at = i as usize * chunk as usize;
            let end = (at + chunk as usize).min(data.len());
            h.push(i, &data[at..end]);
            i = i.saturating_add(stride);
        }
        // Out of range: ignored.
        h.push(n + 5, b"not a chunk");
        assert_eq!(
            h.finish(scheme, &data, chunk),
            want,
            "every {stride}th chunk up to {upto}"
        );
    }
}

#[test]
fn a_chunk_pushed_in_reverse_order_is_still_placed_by_index() {
    let chunk = 64u32;
    let data: Vec<u8> = (0..64 * 300).map(|i| (i % 251) as u8).collect();
    let mut h = LeafHasher::start(&Blake3, 300).expect("a thread");
    for i in (0..300u32).rev() {
        let at = i as usize * 64;
        h.push(i, &data[at..at + 64]);
    }
    let leaves = output_leaves(&Blake3, &data, chunk);
    let root = root_of(&Blake3, &leaves);
    assert_eq!(h.finish(&Blake3, &data, chunk), (leaves, root));
}

#[test]
fn a_gap_late_in_the_output_is_filled_in_before_the_root() {
    // The first 250 chunks in order (the tree grows over them on the thread), then
    // chunk 251 onwards: 250 is hashed only at the end.
    let chunk = 64u32;
    let data: Vec<u8> = (0..64 * 300).map(|i| (i * 7 % 253) as u8).collect();
    let mut h = LeafHasher::start(&Blake3, 300).expect("a thread");
    for i in (0..250u32).chain(251..300) {
        let at = i as usize * 64;
        h.push(i, &data[at..at + 64]);
    }
    let leaves = output_leaves(&Blake3, &data, chunk);
    let (got, root) = h.finish(&Blake3, &data, chunk);
    assert_eq!(got, leaves);
    assert_eq!(root, root_of(&Blake3, &leaves));
    // A spoiled output byte in the gap changes the root.
    let mut spoiled = data.clone();
    spoiled[250 * 64] ^= 1;
    let mut h = LeafHasher::start(&Blake3, 300).expect("a thread");
    for i in (0..250u32).chain(251..300) {
        let at = i as usize * 64;
        h.push(i, &data[at..at + 64]);
    }
    assert_ne!(h.finish(&Blake3, &spoiled, chunk).1, root);
}
