//! Address-validation tokens (extension, spec §5.3).
//!
//! A token is a 128-bit keyed BLAKE2b MAC over the Exposure_ID, the peer's
//! address and a time epoch, under a secret the exposer draws at start-up. It
//! proves that the puller received a Manifest at that address, so the exposer
//! may send it more than the amplification limit allows for unvalidated
//! addresses. Tokens need no per-puller state: the exposer recomputes them.

use blake2::digest::consts::U16;
use blake2::digest::Mac;
use blake2::Blake2bMac;
use subtle::ConstantTimeEq;
use zeroize::{Zeroize, ZeroizeOnDrop};

use rgtp_wire::{ExposureId, Token};

use crate::Peer;
use redgiant_base::{Instant, PeerKey};

/// A token is valid in the epoch it was minted in and the next one.
pub const EPOCH_MICROS: u64 = 30_000_000;

/// The exposer's token secret.
#[derive(Clone, Zeroize, ZeroizeOnDrop)]
pub struct TokenKey([u8; 32]);

impl TokenKey {
    /// Wraps a secret. It must be one the exposer does not share: drawn from a
    /// CSPRNG (what `rgtp`'s builder does by default), or kept beside a recording
    /// for replay (spec §5.3, §16.2).
    pub fn new(secret: [u8; 32]) -> Self {
        TokenKey(secret)
    }

    fn epoch(now: Instant) -> u64 {
        now.total_micros() / EPOCH_MICROS
    }

    fn mac(&self, id: &ExposureId, peer: &Peer, epoch: u64) -> Token {
        let mut m =
            <Blake2bMac<U16> as Mac>::new_from_slice(&self.0).expect("32-byte key is valid");
        m.update(b"rgtp-v1 token");
        m.update(id);
        m.update(address_bytes(peer, &peer.key()));
        m.update(&epoch.to_be_bytes());
        m.finalize().into_bytes().into()
    }

    /// A secret computed from the exposure's AEAD key and Exposure_ID: a keyed
    /// BLAKE2b-256 of `"rgtp-v1 token secret" || Exposure_ID` under the key.
    ///
    /// Dangerous: every ticket carries the key and the Exposure_ID, so whoever
    /// holds the ticket can compute this secret, mint tokens for any address
    /// and make the exposer send a spoofed victim everything a validated
    /// puller gets (spec §5.3). It exists for exposers that must agree on tokens
    /// without sharing anything but the ticket, and for tests and simulations
    /// whose keys are public anyway. Exposers should draw their secret at random.
    pub fn dangerous_secret_from_key(key: &[u8; 32], id: &ExposureId) -> [u8; 32] {
        use blake2::digest::consts::U32;
        let mut m = <Blake2bMac<U32> as Mac>::new_from_slice(key).expect("32-byte key is valid");
        m.update(b"rgtp-v1 token secret");
        m.update(id);
        m.finalize().into_bytes().into()
    }

    /// The token for `peer` now.
    pub fn mint(&self, id: &ExposureId, peer: &Peer, now: Instant) -> Token {
        self.mac(id, peer, Self::epoch(now))
    }

    /// True if `token` was minted for `peer` in this epoch or the previous one.
    pub fn validate(&self, id: &ExposureId, peer: &Peer, now: Instant, token: &Token) -> bool {
        let e = Self::epoch(now);
        let cur = self.mac(id, peer, e).ct_eq(token);
        let prev = self.mac(id, peer, e.saturating_sub(1)).ct_eq(token);
        bool::from(cur | prev)
    }
}

impl core::fmt::Debug for TokenKey {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.write_str("TokenKey(<redacted>)")
    }
}

/// The address a token vouches for (spec §5.3): the peer's key bytes, for UDP
/// without the port, so a puller that sends from several ports (`--channels`)
/// or whose NAT changes its port keeps its validation; the bound of §5.1
/// protects an address, and a port adds nothing to that.
fn address_bytes<'k>(peer: &Peer, key: &'k PeerKey) -> &'k [u8] {
    let b = key.as_bytes();
    match peer {
        Peer::Ip(_) => &b[..b.len() - 2],
        _ => b,
    }
}

#[cfg(test)]
mod tests {
    use std::net::SocketAddr;

    use super::*;

    /// The address bytes a token covers are a peer's key bytes, less the port of
    /// a UDP address, as they were when each was a `Vec`: earlier tokens stay valid.
    #[test]
    fn a_token_covers_the_peer_key_without_the_port() {
        let mut v6 = vec![6, 0x20, 0x01, 0x0d, 0xb8];
        v6.extend_from_slice(&[0; 11]);
        v6.push(1);
        let cases: [(Peer, Vec<u8>); 4] = [
            (
                Peer::Ip("192.0.2.7:4000".parse().unwrap()),
                vec![4, 192, 0, 2, 7],
            ),
            (Peer::Ip("[2001:db8::1]:53".parse().unwrap()), v6),
            (
                Peer::Ethernet([2, 0, 0x5e, 0x10, 0, 1]),
                vec![0xe, 2, 0, 0x5e, 0x10, 0, 1],
            ),
            (Peer::Mem(0x0102_0304), vec![0xf, 1, 2, 3, 4]),
        ];
        for (p, want) in cases {
            assert_eq!(address_bytes(&p, &p.key()), &want[..], "{p:?}");
        }
    }

    #[test]
    fn bound_to_address_exposure_and_time() {
        let k = TokenKey::new([9; 32]);
        let id = [1u8; 16];
        let a = Peer::Ip("127.0.0.1:5000".parse::<SocketAddr>().unwrap());
        let b = Peer::Ip("127.0.0.2:5000".parse::<SocketAddr>().unwrap());
        let a6 = Peer::Ip("[::ffff:127.0.0.1]:5000".parse::<SocketAddr>().unwrap());
        let t0 = Instant::from_micros(5);
        let tok = k.mint(&id, &a, t0);
        assert!(k.validate(&id, &a, t0, &tok));
        assert!(!k.validate(&id, &b, t0, &tok));
        assert!(!k.validate(&id, &a6, t0, &tok));
        // Another port of the same address: the same puller (spec §5.3).
        let a2 = Peer::Ip("127.0.0.1:5001".parse::<SocketAddr>().unwrap());
        assert!(k.validate(&id, &a2, t0, &tok));
        assert!(!k.validate(&[2; 16], &a, t0, &tok));
        assert!(k.validate(&id, &a, Instant::from_micros(EPOCH_MICROS + 1), &tok));
        assert!(!k.validate(&id, &a, Instant::from_micros(2 * EPOCH_MICROS + 1), &tok));
        assert!(!TokenKey::new([8; 32]).validate(&id, &a, t0, &tok));
    }
}
