//! Bitmaps of chunks: bit `i % 64` of word `i / 64` is chunk `i`.

/// Bit `idx` of a bitmap (bit `i % 64` of word `i / 64`); false past its end.
pub(crate) fn bit(map: &[u64], idx: u32) -> bool {
    map.get(idx as usize / 64)
        .is_some_and(|w| w & (1 << (idx % 64)) != 0)
}

/// Sets or clears bit `idx` of a bitmap; nothing past its end.
pub(crate) fn set_bit(map: &mut [u64], idx: u32, on: bool) {
    if let Some(w) = map.get_mut(idx as usize / 64) {
        if on {
            *w |= 1 << (idx % 64);
        } else {
            *w &= !(1 << (idx % 64));
        }
    }
}

/// The indices of the set bits of a bitmap, in order.
pub(crate) fn ones(map: &[u64]) -> impl Iterator<Item = u32> + '_ {
    map.iter().enumerate().flat_map(|(w, &word)| {
        let mut bits = word;
        std::iter::from_fn(move || {
            (bits != 0).then(|| {
                let b = bits.trailing_zeros();
                bits &= bits - 1;
                (w * 64) as u32 + b
            })
        })
    })
}

/// Clears and returns the bits of the aligned run of `len` chunks (64 or fewer, a
/// power of two) that starts at `first`, shifted down: bit `i` is chunk `first + i`.
pub(crate) fn take_run(map: &mut [u64], first: u32, len: u32) -> u64 {
    let Some(word) = map.get_mut(first as usize / 64) else {
        return 0;
    };
    let mask = if len >= 64 {
        u64::MAX
    } else {
        ((1u64 << len) - 1) << (first % 64)
    };
    let members = (*word & mask) >> (first % 64);
    *word &= !mask;
    members
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bits_are_listed_in_order() {
        let map = [1u64 << 63 | 1, 0, 1 << 5];
        assert_eq!(ones(&map).collect::<Vec<_>>(), [0, 63, 133]);
    }

    #[test]
    fn a_run_is_taken_from_its_word_and_cleared() {
        let mut map = [u64::MAX, 0b1011 << 16];
        assert_eq!(take_run(&mut map, 80, 16), 0b1011);
        assert_eq!(map, [u64::MAX, 0]);
        assert_eq!(take_run(&mut map, 0, 64), u64::MAX);
        assert_eq!(take_run(&mut map, 640, 64), 0, "past the end");
        set_bit(&mut map, 3, true);
        assert!(bit(&map, 3) && !bit(&map, 4) && !bit(&map, 9_999));
    }
}
