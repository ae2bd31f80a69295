//! The 256-bit anti-replay window of upstream §4.7.
//!
//! The window remembers which of the 256 sequence numbers `base..base + 256`
//! it has seen. A number below `base` is too old; one at or past `base + 256`
//! slides the window forward so that it becomes the newest slot.
//!
//! The puller runs every chunk index through this window first. Because a
//! receiver-driven transfer may have thousands of chunks in flight, a chunk
//! index below `base` is not necessarily a replay: the puller then falls back
//! to its exact per-exposure bitmap (spec §8.3). The window therefore never
//! lets a replay through, and never discards a chunk that is still wanted.

/// Result of offering a sequence number to the window.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Verdict {
    /// First sighting; now recorded.
    Accepted,
    /// Seen before.
    Replay,
    /// Below the window.
    TooOld,
}

/// A 256-bit sliding bitmap over 32-bit sequence numbers.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ReplayWindow {
    bitmap: [u64; 4],
    base: u32,
}

impl ReplayWindow {
    /// Window width in sequence numbers.
    pub const WIDTH: u32 = 256;

    /// An empty window starting at 0.
    pub fn new() -> Self {
        Self::default()
    }

    /// Sequence number of bit 0.
    pub fn base(&self) -> u32 {
        self.base
    }

    /// True if `seq` is inside the window and recorded.
    pub fn contains(&self, seq: u32) -> bool {
        match seq.checked_sub(self.base) {
            Some(off) if off < Self::WIDTH => self.bit(off),
            _ => false,
        }
    }

    /// Offers `seq`: records and accepts it once, rejects replays and numbers below the window.
    pub fn check_and_set(&mut self, seq: u32) -> Verdict {
        if seq < self.base {
            return Verdict::TooOld;
        }
        let off = seq - self.base;
        if off >= Self::WIDTH {
            self.advance(off - Self::WIDTH + 1);
            return self.check_and_set(seq);
        }
        if self.bit(off) {
            return Verdict::Replay;
        }
        self.bitmap[(off / 64) as usize] |= 1 << (off % 64);
        Verdict::Accepted
    }

    fn bit(&self, off: u32) -> bool {
        self.bitmap[(off / 64) as usize] & (1 << (off % 64)) != 0
    }

    /// Slides the base forward by `by`, forgetting the bits that fall off.
    fn advance(&mut self, by: u32) {
        if by >= Self::WIDTH {
            self.bitmap = [0; 4];
        } else {
            let words = (by / 64) as usize;
            let bits = by % 64;
            let mut out = [0u64; 4];
            for (i, slot) in out.iter_mut().enumerate() {
                let src = i + words;
                if src < 4 {
                    let mut v = self.bitmap[src] >> bits;
                    if bits != 0 && src + 1 < 4 {
                        v |= self.bitmap[src + 1] << (64 - bits);
                    }
                    *slot = v;
                }
            }
            self.bitmap = out;
        }
        self.base = self.base.saturating_add(by);
    }
}

#[cfg(test)]
mod tests {
    use std::collections::HashSet;

    use proptest::prelude::*;

    use super::*;

    #[test]
    fn accept_once_then_replay() {
        let mut w = ReplayWindow::new();
        assert_eq!(w.check_and_set(5), Verdict::Accepted);
        assert_eq!(w.check_and_set(5), Verdict::Replay);
        assert_eq!(w.check_and_set(255), Verdict::Accepted);
        assert_eq!(w.base(), 0);
    }

    #[test]
    fn slides_past_256() {
        let mut w = ReplayWindow::new();
        assert_eq!(w.check_and_set(3), Verdict::Accepted);
        assert_eq!(w.check_and_set(256), Verdict::Accepted);
        assert_eq!(w.base(), 1);
        assert!(w.contains(3), "bit 3 survives a one-step slide");
        assert_eq!(w.check_and_set(3), Verdict::Replay);
        assert_eq!(w.check_and_set(1000), Verdict::Accepted);
        assert_eq!(w.base(), 1000 - 255);
        assert_eq!(w.check_and_set(3), Verdict::TooOld);
        assert_eq!(w.check_and_set(256), Verdict::TooOld);
        assert_eq!(w.check_and_set(1000), Verdict::Replay);
        assert_eq!(w.check_and_set(999), Verdict::Accepted);
    }

    #[test]
    fn slide_keeps_bits_across_words() {
        let mut w = ReplayWindow::new();
        for s in [70u32, 130, 200, 255] {
            w.check_and_set(s);
        }
        w.check_and_set(255 + 65);
        assert_eq!(w.base(), 65);
        for s in [70u32, 130, 200, 255, 320] {
            assert!(w.contains(s), "{s} kept");
            assert_eq!(w.check_and_set(s), Verdict::Replay);
        }
        assert!(!w.contains(71));
    }

    #[test]
    fn top_of_range() {
        let mut w = ReplayWindow::new();
        assert_eq!(w.check_and_set(u32::MAX), Verdict::Accepted);
        assert_eq!(w.check_and_set(u32::MAX), Verdict::Replay);
        assert_eq!(w.check_and_set(u32::MAX - 255), Verdict::Accepted);
        assert_eq!(w.check_and_set(u32::MAX - 256), Verdict::TooOld);
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(2000))]

        /// Against a model: a number is accepted iff never accepted before and not below the
        /// window; the base never decreases; everything in the window that was accepted is remembered.
        #[test]
        fn matches_model(seqs in proptest::collection::vec(0u32..2000, 1..400)) {
            let mut w = ReplayWindow::new();
            let mut seen = HashSet::new();
            let mut last_base = 0;
            for s in seqs {
                let v = w.check_and_set(s);
                prop_assert!(w.base() >= last_base);
                last_base = w.base();
                match v {
                    Verdict::Accepted => prop_assert!(seen.insert(s), "{} accepted twice", s),
                    Verdict::Replay => prop_assert!(seen.contains(&s)),
                    Verdict::TooOld => prop_assert!(s < w.base()),
                }
                for &t in &seen {
                    if t >= w.base() {
                        prop_assert!(w.contains(t));
                    }
                }
            }
        }
    }
}
