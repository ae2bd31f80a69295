//! The builder's address-validation secret (spec §5.3): by default no puller,
//! ticket holders included, can mint a token, so a request spoofing a victim's
//! address gets at most 3 times its size.

use std::net::SocketAddr;

use rgtp::ExposerBuilder;
use rgtp_proto::token::TokenKey;
use rgtp_proto::{Exposer, Instant, Key, Peer};
use rgtp_wire::{IndexList, Nak, NakFlags, Repr, Token};

const ID: [u8; 16] = *b"token-secret-tst";

fn key() -> Key {
    Key::from_bytes([0x42; 32])
}

fn builder() -> ExposerBuilder {
    ExposerBuilder::new()
        .with_key(key())
        .with_exposure_id(ID)
        .with_chunk_size(1000)
}

fn victim() -> Peer {
    Peer::Ip("198.51.100.7:4000".parse::<SocketAddr>().unwrap())
}

/// A 64-entry NAK carrying `token`.
fn nak(token: Token) -> Vec<u8> {
    let indices: Vec<u32> = (0..64).collect();
    let repr = Repr::Nak(Nak {
        exposure_id: ID,
        flags: NakFlags::TOKEN,
        indices: IndexList::Slice(&indices),
        token: Some(token),
    });
    let mut buf = vec![0xa5; repr.buffer_len()];
    repr.emit(&mut buf);
    buf
}

/// Bytes the exposer sends the victim for one spoofed NAK, and the NAK's size.
fn spoofed_gain(mut exposer: Exposer, token: Token, now: Instant) -> (usize, usize) {
    let request = nak(token);
    exposer.handle_datagram(now, victim(), &request);
    let mut buf = Vec::new();
    let mut sent = 0;
    while let Some(t) = exposer.poll_transmit(now, &mut buf) {
        assert_eq!(t.destination, victim());
        sent += t.size;
    }
    (sent, request.len())
}

/// The token a ticket holder computes the way redgiant once derived its secret.
fn forged(now: Instant) -> Token {
    let secret = TokenKey::dangerous_secret_from_key(key().as_bytes(), &ID);
    TokenKey::new(secret).mint(&ID, &victim(), now)
}

#[test]
fn default_secret_is_random_and_holds_against_ticket_holders() {
    let data = vec![0x5a; 64_000];
    let now = Instant::from_micros(7_000_000);
    let a = builder().expose(&data).unwrap();
    let b = builder().expose(&data).unwrap();
    // What a ticket holder can mint for a victim's address: the old derived
    // secret, the key itself, the all-zero secret.
    let guesses = [
        TokenKey::dangerous_secret_from_key(key().as_bytes(), &ID),
        *key().as_bytes(),
        [0; 32],
    ];
    for guess in guesses {
        let token = TokenKey::new(guess).mint(&ID, &victim(), now);
        let exposer = a.exposer();
        let (sent, len) = spoofed_gain(exposer, token, now);
        assert!(sent <= 3 * len, "forged token got {sent} bytes for {len}");
    }
    let mut exposer = a.exposer();
    exposer.handle_datagram(now, victim(), &nak(forged(now)));
    assert_eq!(exposer.stats().bad_token, 1);
    // Same file, key and Exposure_ID: same exposure, different secrets.
    assert_eq!(a.exposure.root(), b.exposure.root());
    assert_ne!(a.token_secret(), b.token_secret());
    assert_ne!(a.token_secret(), &[0; 32]);
    assert_ne!(
        a.token_secret(),
        &TokenKey::dangerous_secret_from_key(key().as_bytes(), &ID)
    );
}

#[test]
fn given_secret_reproduces_tokens() {
    // The file every test here exposes: one key and Exposure_ID seal one content.
    let data = vec![0x5a; 64_000];
    let a = builder().with_token_secret([9; 32]).expose(&data).unwrap();
    assert_eq!(a.token_secret(), &[9; 32]);
    let now = Instant::from_micros(7_000_000);
    let token = TokenKey::new([9; 32]).mint(&ID, &victim(), now);
    let (sent, _) = spoofed_gain(a.exposer(), token, now);
    assert_eq!(sent, 64 * (1000 + 40), "a valid token lifts the bound");
}

/// The old behaviour, kept behind a `dangerous_` name: a ticket holder's forged
/// token passes and the bound is gone.
#[test]
fn dangerous_secret_from_key_lets_ticket_holders_amplify() {
    let data = vec![0x5a; 64_000];
    let now = Instant::from_micros(7_000_000);
    let a = builder()
        .dangerous_token_secret_from_key()
        .expose(&data)
        .unwrap();
    let (sent, len) = spoofed_gain(a.exposer(), forged(now), now);
    assert_eq!(sent, 64 * (1000 + 40));
    assert!(sent > 100 * len);
}
