//! The authenticated profile: every datagram sealed with ChaCha20-Poly1305.
//!
//! After the usual header (magic, type, identity) an authenticated datagram
//! carries
//!
//! ```text
//! session (8) ‖ counter (8) ‖ sealed payload (DATA only) ‖ tag (16)
//! ```
//!
//! The session is a 64-bit value the sender draws at random when it starts;
//! the counter numbers the sender's datagrams of that session from 0. The
//! key of a session is `HKDF-SHA256(salt = session, ikm = shared key, info =
//! "redgiant gtudp auth v1")`, the nonce `0⁴ ‖ be64(counter)`, the
//! associated data every byte before the sealed payload. A counter is never
//! used twice in a session, so a nonce never repeats under one key. See
//! `spec/gtudp.md` §8.

use hkdf::Hkdf;
use ring::aead::{Aad, LessSafeKey, Nonce, UnboundKey, CHACHA20_POLY1305};
use sha2::Sha256;

/// Bytes of session and counter.
pub const PREFIX_LEN: usize = 16;
/// Bytes of the tag.
pub const TAG_LEN: usize = 16;
/// Bytes an authenticated datagram adds to the plain one.
pub const OVERHEAD: usize = PREFIX_LEN + TAG_LEN;
/// HKDF info string of the session key.
const INFO: &[u8] = b"redgiant gtudp auth v1";

/// A 256-bit shared key. Its `Debug` does not show it.
#[derive(Clone, PartialEq, Eq)]
pub struct AuthKey(pub [u8; 32]);

impl core::fmt::Debug for AuthKey {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.write_str("AuthKey(..)")
    }
}

impl AuthKey {
    /// The key from 64 hexadecimal digits.
    pub fn from_hex(hex: &str) -> Result<AuthKey, AuthKeyError> {
        let hex = hex.trim();
        if hex.len() != 64 {
            return Err(AuthKeyError::Length(hex.len()));
        }
        let mut key = [0u8; 32];
        for (i, byte) in key.iter_mut().enumerate() {
            let digits = hex.get(2 * i..2 * i + 2).ok_or(AuthKeyError::NotHex)?;
            *byte = u8::from_str_radix(digits, 16).map_err(|_| AuthKeyError::NotHex)?;
        }
        Ok(AuthKey(key))
    }

    /// The sealer of `session` under this key.
    pub fn session(&self, session: u64) -> SessionCipher {
        let hk = Hkdf::<Sha256>::new(Some(&session.to_be_bytes()), &self.0);
        let mut okm = [0u8; 32];
        hk.expand(INFO, &mut okm)
            .expect("32 bytes is a valid HKDF-SHA256 output length");
        let key = UnboundKey::new(&CHACHA20_POLY1305, &okm)
            .expect("32 bytes is ChaCha20-Poly1305's key length");
        SessionCipher(LessSafeKey::new(key))
    }
}

/// Why a key was refused.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum AuthKeyError {
    /// Not 64 hexadecimal digits long (the length found).
    Length(usize),
    /// A character is not a hexadecimal digit.
    NotHex,
}

impl core::fmt::Display for AuthKeyError {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        match self {
            AuthKeyError::Length(n) => write!(
                f,
                "a gtUDP key is 64 hexadecimal digits (32 bytes); got {n} characters"
            ),
            AuthKeyError::NotHex => f.write_str("a gtUDP key must be hexadecimal digits only"),
        }
    }
}

impl std::error::Error for AuthKeyError {}

/// The AEAD of one session.
pub struct SessionCipher(LessSafeKey);

impl core::fmt::Debug for SessionCipher {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.write_str("SessionCipher(..)")
    }
}

fn nonce(counter: u64) -> Nonce {
    let mut n = [0u8; 12];
    n[4..].copy_from_slice(&counter.to_be_bytes());
    Nonce::assume_unique_for_key(n)
}

impl SessionCipher {
    /// Seals `buf[body..]` in place with `buf[start..body]` as associated
    /// data and appends the tag.
    pub fn seal(&self, counter: u64, buf: &mut Vec<u8>, start: usize, body: usize) {
        let (head, plain) = buf.split_at_mut(body);
        let aad = &head[start..];
        let tag = self
            .0
            .seal_in_place_separate_tag(nonce(counter), Aad::from(aad), plain)
            .expect("a gtUDP payload is far below the cipher's limit");
        buf.extend_from_slice(tag.as_ref());
    }

    /// Opens `buf[body..]` (sealed payload then tag) in place with
    /// `buf[..body]` as associated data; the payload is then
    /// `buf[body..buf.len() - TAG_LEN]`. `false` if the tag does not match
    /// or the buffer is too short.
    pub fn open(&self, counter: u64, buf: &mut [u8], body: usize) -> bool {
        if buf.len() < body + TAG_LEN {
            return false;
        }
        let (head, rest) = buf.split_at_mut(body);
        self.0
            .open_in_place(nonce(counter), Aad::from(&*head), rest)
            .is_ok()
    }
}

/// The replay window: which of the last [`WINDOW`] counters of a session
/// were accepted.
pub(crate) const WINDOW: u64 = 1024;

#[derive(Debug, Clone)]
pub(crate) struct Replay {
    /// Highest counter accepted, plus one (0: none yet).
    top: u64,
    bits: [u64; (WINDOW / 64) as usize],
}

impl Replay {
    pub(crate) fn new() -> Self {
        Replay {
            top: 0,
            bits: [0; (WINDOW / 64) as usize],
        }
    }

    fn bit(c: u64) -> (usize, u64) {
        let i = c % WINDOW;
        ((i / 64) as usize, 1 << (i % 64))
    }

    /// Whether `c` is too old or already accepted.
    pub(crate) fn seen(&self, c: u64) -> bool {
        if c >= self.top {
            return false;
        }
        if self.top - c > WINDOW {
            return true;
        }
        let (w, m) = Self::bit(c);
        self.bits[w] & m != 0
    }

    /// Records `c` as accepted (after [`Replay::seen`] said no).
    pub(crate) fn accept(&mut self, c: u64) {
        if c >= self.top {
            let advance = c + 1 - self.top;
            if advance >= WINDOW {
                self.bits = [0; (WINDOW / 64) as usize];
            } else {
                for k in self.top..=c {
                    let (w, m) = Self::bit(k);
                    self.bits[w] &= !m;
                }
            }
            self.top = c + 1;
        }
        let (w, m) = Self::bit(c);
        self.bits[w] |= m;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keys_parse_from_hex_or_fail_clearly() {
        let k = AuthKey::from_hex(&"0f".repeat(32)).unwrap();
        assert_eq!(k.0, [0x0f; 32]);
        assert_eq!(AuthKey::from_hex("abcd"), Err(AuthKeyError::Length(4)));
        assert_eq!(
            AuthKey::from_hex(&"zz".repeat(32)),
            Err(AuthKeyError::NotHex)
        );
        assert_eq!(format!("{k:?}"), "AuthKey(..)");
    }

    #[test]
    fn seal_then_open_round_trips_and_any_flip_fails() {
        let c = AuthKey([7; 32]).session(42);
        let mut buf = b"head".to_vec();
        buf.extend_from_slice(b"payload");
        c.seal(9, &mut buf, 0, 4);
        assert_eq!(buf.len(), 4 + 7 + TAG_LEN);
        assert_ne!(&buf[4..11], b"payload");
        for i in 0..buf.len() {
            let mut t = buf.clone();
            t[i] ^= 1;
            assert!(!c.open(9, &mut t, 4), "flip at {i} accepted");
        }
        assert!(!c.open(10, &mut buf.clone(), 4));
        assert!(!AuthKey([7; 32]).session(43).open(9, &mut buf.clone(), 4));
        assert!(c.open(9, &mut buf, 4));
        assert_eq!(&buf[4..11], b"payload");
    }

    #[test]
    fn the_replay_window_accepts_each_counter_once() {
        let mut r = Replay::new();
        for c in [5, 3, 4, 2000, 1500, 1999] {
            assert!(!r.seen(c), "{c}");
            r.accept(c);
            assert!(r.seen(c), "{c}");
        }
        // Older than the window, never seen: refused all the same.
        assert!(r.seen(900));
        assert!(r.seen(976));
        assert!(!r.seen(977));
        assert!(!r.seen(1998));
        assert!(!r.seen(u64::MAX - 1));
    }
}
