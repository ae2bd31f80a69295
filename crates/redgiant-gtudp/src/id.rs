//! Where a sender's identities come from.
//!
//! The endpoint never draws ambient randomness: it takes an [`IdSource`].
//! Receivers treat identities as opaque, so any source interoperates; what
//! matters is that one sender does not reuse an identity towards one peer
//! while the receiver still remembers it (see the endpoint's duplicate rule).

use crate::wire::Identity;

/// Hands out the identity of each new DATA.
pub trait IdSource: Send {
    /// The identity for a DATA carrying `payload`. The endpoint calls it
    /// again if the answer is already in use towards the same peer.
    fn next_id(&mut self, payload: &[u8]) -> Identity;
}

impl<S: IdSource + ?Sized> IdSource for Box<S> {
    fn next_id(&mut self, payload: &[u8]) -> Identity {
        (**self).next_id(payload)
    }
}

/// The reference implementation's identities: a counter, incremented before
/// every DATA, added to the Adler-32 of the payload (modulo 2³²), big-endian.
/// The reference starts the counter at a random number; here the caller
/// chooses it (draw it from a seeded generator to replay a run).
#[derive(Debug, Clone)]
pub struct ReferenceIds {
    counter: u32,
}

impl ReferenceIds {
    /// Starts at `counter`; the first DATA uses `counter + 1`.
    pub fn new(counter: u32) -> Self {
        ReferenceIds { counter }
    }
}

impl IdSource for ReferenceIds {
    fn next_id(&mut self, payload: &[u8]) -> Identity {
        self.counter = self.counter.wrapping_add(1);
        Identity::from_u32(adler32(payload).wrapping_add(self.counter))
    }
}

/// Identities from a seeded generator (SplitMix64): unpredictable to
/// anyone without the seed, repeatable from it, and independent of the
/// payload. Two draws may collide; the endpoint skips an identity still in
/// use towards the same peer.
#[derive(Debug, Clone)]
pub struct SeededIds {
    state: u64,
}

impl SeededIds {
    /// A generator from `seed`.
    pub fn new(seed: u64) -> Self {
        SeededIds { state: seed }
    }
}

impl IdSource for SeededIds {
    fn next_id(&mut self, _payload: &[u8]) -> Identity {
        self.state = self.state.wrapping_add(0x9e37_79b9_7f4a_7c15);
        let mut z = self.state;
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        z ^= z >> 31;
        Identity::from_u32((z >> 32) as u32)
    }
}

/// Adler-32 (RFC 1950) of `data`.
pub fn adler32(data: &[u8]) -> u32 {
    const MOD: u32 = 65_521;
    // 5552 bytes is the longest run before `b` can overflow a u32.
    let (mut a, mut b) = (1u32, 0u32);
    for block in data.chunks(5552) {
        for &byte in block {
            a += u32::from(byte);
            b += a;
        }
        a %= MOD;
        b %= MOD;
    }
    (b << 16) | a
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn test_adler32() {
        assert_eq!(adler32(b""), 1);
        assert_eq!(adler32(b"a"), 0x0062_0062);
        assert_eq!(adler32(b"Wikipedia"), 0x11e6_0398);
        let long = vec![0xffu8; 100_000];
        // Computed byte by byte with the modulus taken at every step.
        let (mut a, mut b) = (1u64, 0u64);
        for &x in &long {
            a = (a + u64::from(x)) % 65_521;
            b = (b + a) % 65_521;
        }
        assert_eq!(adler32(&long), ((b << 16) | a) as u32);
    }

    #[test]
    fn reference_ids_add_the_counter_after_incrementing_it() {
        let mut ids = ReferenceIds::new(u32::MAX - 1);
        assert_eq!(
            ids.next_id(b"Wikipedia"),
            Identity::from_u32(0x11e6_0398u32.wrapping_add(u32::MAX))
        );
        assert_eq!(ids.next_id(b"Wikipedia"), Identity::from_u32(0x11e6_0398));
        assert_eq!(ids.next_id(b""), Identity::from_u32(2));
    }

    #[test]
    fn seeded_ids_repeat_from_the_seed() {
        let a: Vec<_> = {
            let mut s = SeededIds::new(7);
            (0..8).map(|_| s.next_id(b"")).collect()
        };
        let mut s = SeededIds::new(7);
        let b: Vec<_> = (0..8).map(|_| s.next_id(b"x")).collect();
        assert_eq!(a, b);
        let mut other = SeededIds::new(8);
        assert_ne!(a[0], other.next_id(b""));
    }
}
