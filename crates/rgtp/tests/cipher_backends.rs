//! The cipher backends are interchangeable on the wire: an exposure sealed on
//! one is byte-identical to the same exposure sealed on the other, and a
//! puller on the preferred backend pulls from an exposer on the other.

use std::time::Duration;

use rgtp::sim::{simulate, EXPOSER};
use rgtp::{Backend, ExposerBuilder};
use rgtp_link::impair::ImpairmentConfig;
use rgtp_link::mem::SimNet;
use rgtp_proto::fec::NoFec;
use rgtp_proto::{CipherId, Exposure, HashId, Key, KeyMode, PullerConfig};
use rgtp_providers::{AnyCipher, AnyHash};

const SUITES: [CipherId; 2] = [CipherId::Aes256Gcm, CipherId::ChaCha20Poly1305];

fn data(len: usize) -> Vec<u8> {
    (0..len).map(|i| (i * 31 + i / 977) as u8).collect()
}

#[test]
fn both_backends_seal_the_same_exposure() {
    let input = data(300_000);
    let key = Key::from_bytes([0x42; 32]);
    let hash = AnyHash::new(HashId::Sha256).unwrap();
    for id in SUITES {
        let sealed: Vec<Exposure> = [Backend::Ring, Backend::RustCrypto]
            .into_iter()
            .map(|b| {
                let chunk_key = KeyMode::Derived.chunk_key(&key, &[7; 16]);
                let cipher = AnyCipher::with_backend(id, b, &chunk_key).unwrap();
                Exposure::build(
                    [7; 16],
                    &input,
                    1200,
                    &cipher,
                    KeyMode::Derived,
                    &hash,
                    &NoFec,
                    false,
                )
                .unwrap()
            })
            .collect();
        let (ring, rc) = (&sealed[0], &sealed[1]);
        assert_eq!(ring.manifest(), rc.manifest(), "{}", id.name());
        for i in 0..ring.chunk_count() {
            assert_eq!(
                ring.ciphertext(i),
                rc.ciphertext(i),
                "{} chunk {i}",
                id.name()
            );
        }
    }
}

#[test]
fn preferred_backend_pulls_from_a_rustcrypto_exposer() {
    assert_eq!(Backend::preferred(), Backend::Ring);
    let input = data(500_000);
    for id in SUITES {
        let prepared = ExposerBuilder::new()
            .with_cipher((id, Backend::RustCrypto))
            .expose(&input)
            .unwrap();
        let mut c = PullerConfig::new(*prepared.exposure.id(), EXPOSER, prepared.key.clone());
        c.expected_cipher = Some(id);
        let net = SimNet::new(ImpairmentConfig::perfect(), 1);
        let report = simulate(&prepared, vec![c], net, Duration::from_secs(60));
        let got = report.pullers.into_iter().next().unwrap().result;
        assert_eq!(got.as_deref(), Ok(&input[..]), "{}", id.name());
    }
}
