//! Leaves hashed on another core while chunks arrive are the leaves of the output.

use rgtp::leaves::LeafHasher;
use rgtp::verify::output_leaves;
use rgtp_providers::hash::Blake3;

#[test]
fn overlapped_leaves_equal_the_leaves_of_the_output() {
    let chunk = 1000u32;
    let data: Vec<u8> = (0..2_345_678usize)
        .map(|i| (i * 13 + i / 1013) as u8)
        .collect();
    let n = data.len().div_ceil(chunk as usize) as u32;
    let want = output_leaves(&Blake3, &data, chunk);
    // Every chunk, some, none: the rest is hashed at the end from the output.
    for stride in [1u32, 3, 7, u32::MAX] {
        let mut h = LeafHasher::start(&Blake3, n).expect("a thread");
        let mut i = 0u32;
        while i < n {
            let at = i as usize * chunk as usize;
            let end = (at + chunk as usize).min(data.len());
            h.push(i, &data[at..end]);
            i = i.saturating_add(stride);
        }
        // Out of range: ignored.
        h.push(n + 5, b"not a chunk");
        assert_eq!(
            h.finish(&Blake3, &data, chunk),
            want,
            "every {stride}th chunk"
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
    assert_eq!(
        h.finish(&Blake3, &data, chunk),
        output_leaves(&Blake3, &data, chunk)
    );
}
