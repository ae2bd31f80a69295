//! The **aead** layer: how an encrypted flow keys, seals and opens its
//! datagrams (`spec/flow.md` §6).
//!
//! Both ends hold the same 32-byte pre-shared [`FlowKey`], agreed out of
//! band. Each flow gets keys of its own from it:
//!
//! - the allocator draws a salt `sa` and sends it in a sealed ALLOC, whose
//!   last 16 bytes are a tag under `HKDF-SHA256(salt = sa, ikm = key, info =
//!   "redgiant flow v1 alloc")` over every byte before it: the acceptor
//!   tells a peer with another key (or none) from a damaged datagram;
//! - the acceptor draws a salt `sr`; the two direction keys are
//!   `HKDF-SHA256(salt = sa ‖ sr, ikm = key)` expanded with the infos
//!   `"redgiant flow v1 allocator to acceptor"` and `"redgiant flow v1
//!   acceptor to allocator"`;
//! - the sealed ALLOC_OK carries `sr` and a tag under the acceptor's
//!   direction key with packet number 0, over every byte before it: the
//!   allocator checks it before the flow counts as up.
//!
//! Every later datagram of the flow is sealed with ChaCha20-Poly1305 under
//! its direction's key: the nonce is `0⁴ ‖ be64(pn)`, where `pn` is the
//! direction's packet number (1, 2, …, never twice under one key), the
//! associated data is the 18-byte header and the packet number, and the tag
//! follows the encrypted body. A receiver opens a datagram only if its
//! packet number is new within a window of the last [`REPLAY_WINDOW`] it
//! accepted.
//!
//! Salts come from a [`SaltSource`]: HMAC-SHA256 under a random seed the
//! caller draws (the endpoint itself draws no randomness), over a counter.

use core::fmt;
use std::path::Path;

use hkdf::Hkdf;
use ring::aead::{Aad, LessSafeKey, Nonce, UnboundKey, CHACHA20_POLY1305};
use ring::hmac;
use sha2::Sha256;
use zeroize::Zeroize;

use crate::wire::{SALT_LEN, SEALED_HEADER_LEN, TAG_LEN};

/// The environment variable holding the flow key as 64 hexadecimal digits.
pub const ENV_KEY: &str = "RGTP_FLOW_KEY";

/// The environment variable naming a file that holds the flow key (64
/// hexadecimal digits, or the 32 bytes themselves).
pub const ENV_KEY_FILE: &str = "RGTP_FLOW_KEY_FILE";

/// Packet numbers a receiver remembers behind the highest it accepted.
pub const REPLAY_WINDOW: u64 = 1024;

const INFO_ALLOC: &[u8] = b"redgiant flow v1 alloc";
const INFO_TO_ACCEPTOR: &[u8] = b"redgiant flow v1 allocator to acceptor";
const INFO_TO_ALLOCATOR: &[u8] = b"redgiant flow v1 acceptor to allocator";
const SALT_LABEL: &[u8] = b"redgiant flow v1 salt";

/// A 32-byte pre-shared flow key. Its `Debug` does not show it and it is
/// wiped when dropped.
#[derive(Clone, PartialEq, Eq)]
pub struct FlowKey([u8; 32]);

impl fmt::Debug for FlowKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("FlowKey(..)")
    }
}

impl Drop for FlowKey {
    fn drop(&mut self) {
        self.0.zeroize();
    }
}

/// Why a flow key could not be read.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum FlowKeyError {
    /// Not 64 hexadecimal digits long (the length found).
    Length(usize),
    /// A character is not a hexadecimal digit.
    NotHex,
    /// The key file could not be read (its path and why).
    File(String, String),
}

impl fmt::Display for FlowKeyError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            FlowKeyError::Length(n) => write!(
                f,
                "a flow key is 64 hexadecimal digits (32 bytes), got {n} characters; \
                 make one with `openssl rand -hex 32` and give the same to both ends"
            ),
            FlowKeyError::NotHex => f.write_str(
                "a flow key must be hexadecimal digits only (64 of them); \
                 make one with `openssl rand -hex 32`",
            ),
            FlowKeyError::File(path, why) => write!(
                f,
                "cannot read the flow key file {path} named by {ENV_KEY_FILE}: {why}"
            ),
        }
    }
}

impl std::error::Error for FlowKeyError {}

impl FlowKey {
    /// The key of these 32 bytes.
    pub fn new(bytes: [u8; 32]) -> FlowKey {
        FlowKey(bytes)
    }

    /// The key from 64 hexadecimal digits (surrounding white space ignored).
    pub fn from_hex(hex: &str) -> Result<FlowKey, FlowKeyError> {
        let hex = hex.trim();
        if hex.len() != 64 {
            return Err(FlowKeyError::Length(hex.len()));
        }
        let mut key = [0u8; 32];
        for (i, byte) in key.iter_mut().enumerate() {
            let digits = hex.get(2 * i..2 * i + 2).ok_or(FlowKeyError::NotHex)?;
            *byte = u8::from_str_radix(digits, 16).map_err(|_| FlowKeyError::NotHex)?;
        }
        Ok(FlowKey(key))
    }

    /// The key in a file: exactly 32 bytes, or 64 hexadecimal digits.
    pub fn from_file(path: &Path) -> Result<FlowKey, FlowKeyError> {
        let mut bytes = std::fs::read(path)
            .map_err(|e| FlowKeyError::File(path.display().to_string(), e.to_string()))?;
        let key = match <[u8; 32]>::try_from(bytes.as_slice()) {
            Ok(raw) => Ok(FlowKey(raw)),
            Err(_) => match core::str::from_utf8(&bytes) {
                Ok(text) => FlowKey::from_hex(text),
                Err(_) => Err(FlowKeyError::NotHex),
            },
        };
        bytes.zeroize();
        key
    }

    /// The key the environment gives: [`ENV_KEY`] if set and not empty,
    /// else the file [`ENV_KEY_FILE`] names, else none.
    pub fn from_env() -> Result<Option<FlowKey>, FlowKeyError> {
        if let Some(hex) = std::env::var_os(ENV_KEY).filter(|v| !v.is_empty()) {
            return FlowKey::from_hex(&hex.to_string_lossy()).map(Some);
        }
        match std::env::var_os(ENV_KEY_FILE).filter(|v| !v.is_empty()) {
            Some(path) => FlowKey::from_file(Path::new(&path)).map(Some),
            None => Ok(None),
        }
    }

    fn expand(&self, salt: &[u8], info: &[u8]) -> LessSafeKey {
        let hk = Hkdf::<Sha256>::new(Some(salt), &self.0);
        let mut okm = [0u8; 32];
        hk.expand(info, &mut okm)
            .expect("32 bytes is a valid HKDF-SHA256 output length");
        let key = UnboundKey::new(&CHACHA20_POLY1305, &okm)
            .expect("32 bytes is ChaCha20-Poly1305's key length");
        okm.zeroize();
        LessSafeKey::new(key)
    }

    /// The tag a sealed ALLOC with salt `salt` carries over `head`, every
    /// byte of the datagram before the tag.
    pub fn alloc_tag(&self, salt: &[u8; SALT_LEN], head: &[u8]) -> [u8; TAG_LEN] {
        tag(&self.expand(salt, INFO_ALLOC), 0, head)
    }

    /// Whether `tag` is the tag of a sealed ALLOC with `salt` over `head`.
    pub fn check_alloc_tag(&self, salt: &[u8; SALT_LEN], head: &[u8], tag: &[u8; TAG_LEN]) -> bool {
        check(&self.expand(salt, INFO_ALLOC), 0, head, tag)
    }
}

fn nonce(pn: u64) -> Nonce {
    let mut n = [0u8; 12];
    n[4..].copy_from_slice(&pn.to_be_bytes());
    Nonce::assume_unique_for_key(n)
}

/// The tag of an empty message under `key` and `pn` with `aad`.
fn tag(key: &LessSafeKey, pn: u64, aad: &[u8]) -> [u8; TAG_LEN] {
    let t = key
        .seal_in_place_separate_tag(nonce(pn), Aad::from(aad), &mut [])
        .expect("an empty message is within the cipher's limit");
    let mut out = [0u8; TAG_LEN];
    out.copy_from_slice(t.as_ref());
    out
}

fn check(key: &LessSafeKey, pn: u64, aad: &[u8], t: &[u8; TAG_LEN]) -> bool {
    let mut buf = *t;
    key.open_in_place(nonce(pn), Aad::from(aad), &mut buf)
        .is_ok()
}

/// Draws handshake salts: HMAC-SHA256 under a secret seed over a counter.
pub struct SaltSource {
    key: hmac::Key,
    next: u64,
}

impl fmt::Debug for SaltSource {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("SaltSource")
            .field("next", &self.next)
            .finish_non_exhaustive()
    }
}

impl SaltSource {
    /// Salts from `seed`, which must be secret and fresh for every
    /// endpoint: two endpoints with one key and one seed would derive the
    /// same flow keys.
    pub fn new(seed: [u8; 32]) -> SaltSource {
        SaltSource {
            key: hmac::Key::new(hmac::HMAC_SHA256, &seed),
            next: 0,
        }
    }

    /// The next salt.
    pub fn draw(&mut self) -> [u8; SALT_LEN] {
        let mut ctx = hmac::Context::with_key(&self.key);
        ctx.update(SALT_LABEL);
        ctx.update(&self.next.to_be_bytes());
        self.next += 1;
        let mut out = [0u8; SALT_LEN];
        out.copy_from_slice(&ctx.sign().as_ref()[..SALT_LEN]);
        out
    }
}

/// 32 bytes from the operating system's random source, for
/// [`SaltSource::new`] (through `FlowEndpoint::seeded`).
pub fn random_seed() -> std::io::Result<[u8; 32]> {
    let mut seed = [0u8; 32];
    ring::rand::SecureRandom::fill(&ring::rand::SystemRandom::new(), &mut seed)
        .map_err(|_| std::io::Error::other("the system gave no randomness for flow salts"))?;
    Ok(seed)
}

/// Why a sealed datagram was not opened.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum OpenError {
    /// Its packet number was accepted before or is older than the window.
    Replayed,
    /// Too short, or the tag does not match: forged, damaged or another key.
    Forged,
}

/// The keys, packet counter and replay window of one encrypted flow.
pub struct FlowCipher {
    tx: LessSafeKey,
    rx: LessSafeKey,
    /// The packet number of the next datagram sealed.
    next_pn: u64,
    replay: ReplayWindow,
}

impl fmt::Debug for FlowCipher {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("FlowCipher")
            .field("next_pn", &self.next_pn)
            .finish_non_exhaustive()
    }
}

impl FlowCipher {
    fn new(key: &FlowKey, sa: &[u8; SALT_LEN], sr: &[u8; SALT_LEN], allocator: bool) -> Self {
        let mut salt = [0u8; 2 * SALT_LEN];
        salt[..SALT_LEN].copy_from_slice(sa);
        salt[SALT_LEN..].copy_from_slice(sr);
        let to_acceptor = key.expand(&salt, INFO_TO_ACCEPTOR);
        let to_allocator = key.expand(&salt, INFO_TO_ALLOCATOR);
        let (tx, rx) = if allocator {
            (to_acceptor, to_allocator)
        } else {
            (to_allocator, to_acceptor)
        };
        FlowCipher {
            tx,
            rx,
            next_pn: 1,
            replay: ReplayWindow::default(),
        }
    }

    /// The allocator's side of the flow whose salts are `sa` (its own)
    /// and `sr` (the acceptor's).
    pub fn allocator(key: &FlowKey, sa: &[u8; SALT_LEN], sr: &[u8; SALT_LEN]) -> Self {
        FlowCipher::new(key, sa, sr, true)
    }

    /// The acceptor's side of the flow whose salts are `sa` (the
    /// allocator's) and `sr` (its own).
    pub fn acceptor(key: &FlowKey, sa: &[u8; SALT_LEN], sr: &[u8; SALT_LEN]) -> Self {
        FlowCipher::new(key, sa, sr, false)
    }

    /// The acceptor's tag of a sealed ALLOC_OK over `head` (packet number 0).
    pub fn confirm_tag(&self, head: &[u8]) -> [u8; TAG_LEN] {
        tag(&self.tx, 0, head)
    }

    /// Whether `t` is the acceptor's tag of a sealed ALLOC_OK over `head`.
    pub fn check_confirm_tag(&self, head: &[u8], t: &[u8; TAG_LEN]) -> bool {
        check(&self.rx, 0, head, t)
    }

    /// The packet number the next [`FlowCipher::seal`] takes.
    pub fn next_pn(&self) -> u64 {
        self.next_pn
    }

    /// Seals `out[body..]` in place with `out[start..body]` as associated
    /// data and appends the tag; the datagram was laid out by
    /// `Repr::emit_to_seal` with [`FlowCipher::next_pn`], which this moves on.
    pub fn seal(&mut self, out: &mut Vec<u8>, start: usize, body: usize) {
        let pn = self.next_pn;
        self.next_pn += 1;
        let (head, plain) = out.split_at_mut(body);
        let t = self
            .tx
            .seal_in_place_separate_tag(nonce(pn), Aad::from(&head[start..]), plain)
            .expect("a flow datagram is far below the cipher's limit");
        out.extend_from_slice(t.as_ref());
    }

    /// Opens the sealed datagram `data` with packet number `pn` in place:
    /// afterwards its body is `data[SEALED_HEADER_LEN..data.len() - TAG_LEN]`.
    /// The packet number counts as used only if the tag matched.
    pub fn open(&mut self, pn: u64, data: &mut [u8]) -> Result<(), OpenError> {
        if data.len() < SEALED_HEADER_LEN + TAG_LEN {
            return Err(OpenError::Forged);
        }
        if self.replay.seen(pn) {
            return Err(OpenError::Replayed);
        }
        let (head, sealed) = data.split_at_mut(SEALED_HEADER_LEN);
        self.rx
            .open_in_place(nonce(pn), Aad::from(&*head), sealed)
            .map_err(|_| OpenError::Forged)?;
        self.replay.accept(pn);
        Ok(())
    }
}

/// Which of the last [`REPLAY_WINDOW`] packet numbers were accepted.
#[derive(Debug, Clone)]
struct ReplayWindow {
    /// One above the highest accepted (0: none yet).
    top: u64,
    /// Bit `n % REPLAY_WINDOW` set: `n` accepted, for `n` in the window.
    bits: [u64; (REPLAY_WINDOW / 64) as usize],
}

impl Default for ReplayWindow {
    fn default() -> Self {
        ReplayWindow {
            top: 0,
            bits: [0; (REPLAY_WINDOW / 64) as usize],
        }
    }
}

impl ReplayWindow {
    fn slot(n: u64) -> (usize, u64) {
        let i = n % REPLAY_WINDOW;
        ((i / 64) as usize, 1 << (i % 64))
    }

    fn seen(&self, n: u64) -> bool {
        if n >= self.top {
            return false;
        }
        if self.top - n > REPLAY_WINDOW {
            return true;
        }
        let (w, b) = Self::slot(n);
        self.bits[w] & b != 0
    }

    fn accept(&mut self, n: u64) {
        if n >= self.top {
            if n - self.top >= REPLAY_WINDOW {
                self.bits = [0; (REPLAY_WINDOW / 64) as usize];
            } else {
                for m in self.top..n {
                    let (w, b) = Self::slot(m);
                    self.bits[w] &= !b;
                }
            }
            self.top = n + 1;
        }
        let (w, b) = Self::slot(n);
        self.bits[w] |= b;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn test_key_from_hex_and_file() {
        let k = FlowKey::from_hex(&"a5".repeat(32)).unwrap();
        assert_eq!(k, FlowKey::new([0xa5; 32]));
        assert_eq!(format!("{k:?}"), "FlowKey(..)");
        assert_eq!(FlowKey::from_hex("abc"), Err(FlowKeyError::Length(3)));
        assert_eq!(
            FlowKey::from_hex(&"g0".repeat(32)),
            Err(FlowKeyError::NotHex)
        );
        let dir = tempfile::tempdir().unwrap();
        let hex = dir.path().join("hex");
        std::fs::write(&hex, format!("{}\n", "0f".repeat(32))).unwrap();
        assert_eq!(FlowKey::from_file(&hex).unwrap(), FlowKey::new([0x0f; 32]));
        let raw = dir.path().join("raw");
        std::fs::write(&raw, [7u8; 32]).unwrap();
        assert_eq!(FlowKey::from_file(&raw).unwrap(), FlowKey::new([7; 32]));
        let short = dir.path().join("short");
        std::fs::write(&short, [7u8; 31]).unwrap();
        assert!(FlowKey::from_file(&short).is_err());
        let missing = FlowKey::from_file(&dir.path().join("none")).unwrap_err();
        assert!(missing.to_string().contains(ENV_KEY_FILE), "{missing}");
    }

    #[test]
    fn test_salts_differ_and_follow_the_seed() {
        let mut a = SaltSource::new([1; 32]);
        let mut b = SaltSource::new([1; 32]);
        let mut c = SaltSource::new([2; 32]);
        let (a0, a1) = (a.draw(), a.draw());
        assert_ne!(a0, a1);
        assert_eq!(b.draw(), a0);
        assert_ne!(c.draw(), a0);
    }

    #[test]
    fn test_directions_seal_and_open() {
        let key = FlowKey::new([9; 32]);
        let (sa, sr) = ([1; SALT_LEN], [2; SALT_LEN]);
        let mut alloc = FlowCipher::allocator(&key, &sa, &sr);
        let mut accept = FlowCipher::acceptor(&key, &sa, &sr);
        let mut d = vec![0x11; SEALED_HEADER_LEN];
        d.extend_from_slice(b"secret");
        alloc.seal(&mut d, 0, SEALED_HEADER_LEN);
        assert_eq!(d.len(), SEALED_HEADER_LEN + 6 + TAG_LEN);
        assert_ne!(&d[SEALED_HEADER_LEN..SEALED_HEADER_LEN + 6], b"secret");
        // The allocator cannot open what it sent: the directions differ.
        assert_eq!(
            FlowCipher::allocator(&key, &sa, &sr).open(1, &mut d.clone()),
            Err(OpenError::Forged)
        );
        // Every flipped bit, header included, is refused.
        for i in 0..d.len() {
            let mut t = d.clone();
            t[i] ^= 0x40;
            assert_eq!(accept.open(1, &mut t), Err(OpenError::Forged), "{i}");
        }
        // Another packet number is another nonce.
        assert_eq!(accept.open(2, &mut d.clone()), Err(OpenError::Forged));
        let mut ok = d.clone();
        accept.open(1, &mut ok).unwrap();
        assert_eq!(&ok[SEALED_HEADER_LEN..SEALED_HEADER_LEN + 6], b"secret");
        assert_eq!(accept.open(1, &mut d), Err(OpenError::Replayed));
        // Another salt, other keys.
        let mut other = FlowCipher::acceptor(&key, &sa, &[3; SALT_LEN]);
        let mut d2 = vec![0x11; SEALED_HEADER_LEN];
        alloc.seal(&mut d2, 0, SEALED_HEADER_LEN);
        assert_eq!(other.open(2, &mut d2.clone()), Err(OpenError::Forged));
        assert_eq!(accept.open(2, &mut d2), Ok(()));
    }

    #[test]
    fn test_alloc_and_confirm_tags() {
        let key = FlowKey::new([9; 32]);
        let salt = [4; SALT_LEN];
        let t = key.alloc_tag(&salt, b"head");
        assert!(key.check_alloc_tag(&salt, b"head", &t));
        assert!(!key.check_alloc_tag(&salt, b"heae", &t));
        assert!(!FlowKey::new([8; 32]).check_alloc_tag(&salt, b"head", &t));
        let acc = FlowCipher::acceptor(&key, &salt, &[5; SALT_LEN]);
        let all = FlowCipher::allocator(&key, &salt, &[5; SALT_LEN]);
        let c = acc.confirm_tag(b"ok");
        assert!(all.check_confirm_tag(b"ok", &c));
        assert!(!acc.check_confirm_tag(b"ok", &c));
    }

    #[test]
    fn test_replay_window() {
        let mut w = ReplayWindow::default();
        for n in [3, 1, 2, 5000, 4000, 4999] {
            assert!(!w.seen(n), "{n}");
            w.accept(n);
            assert!(w.seen(n), "{n}");
        }
        // Older than the window: refused even if never seen.
        assert!(w.seen(5000 - REPLAY_WINDOW));
        assert!(!w.seen(5000 - REPLAY_WINDOW + 1));
        assert!(!w.seen(4998));
        assert!(!w.seen(u64::MAX));
    }
}
