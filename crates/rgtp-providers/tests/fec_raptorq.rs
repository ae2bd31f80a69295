//! RaptorQ codec: recovery at the declared receive overhead.

use rand::seq::SliceRandom;
use rand::{Rng, RngCore, SeedableRng};
use rand_chacha::ChaCha8Rng;
use rgtp_proto::fec::{FecCodec, FecError};
use rgtp_proto::fec::{FecParams, FecScheme};
use rgtp_providers::fec::{min_shards, AnyFec, RaptorQ};

fn random_block(rng: &mut ChaCha8Rng, k: usize, t: usize) -> Vec<Vec<u8>> {
    (0..k)
        .map(|_| {
            let mut s = vec![0u8; t];
            rng.fill_bytes(&mut s);
            s
        })
        .collect()
}

fn encode(codec: &RaptorQ, data: &[Vec<u8>]) -> Vec<Vec<u8>> {
    let p = codec.params();
    let t = data[0].len();
    let mut parity = vec![vec![0u8; t]; usize::from(p.n - p.k)];
    let d: Vec<&[u8]> = data.iter().map(Vec::as_slice).collect();
    let mut pr: Vec<&mut [u8]> = parity.iter_mut().map(Vec::as_mut_slice).collect();
    codec.encode(&d, &mut pr).unwrap();
    parity
}

/// Keeps `keep` random shards of the `n`; returns the received set.
fn erase(rng: &mut ChaCha8Rng, all: &[Vec<u8>], keep: usize) -> Vec<Option<Vec<u8>>> {
    let mut idx: Vec<usize> = (0..all.len()).collect();
    idx.shuffle(rng);
    let mut out = vec![None; all.len()];
    for &i in &idx[..keep] {
        out[i] = Some(all[i].clone());
    }
    out
}

const PARAMS: &[(u8, u8)] = &[
    (2, 1),
    (3, 1),
    (10, 1),
    (255, 1),
    (6, 4),
    (20, 10),
    (80, 64),
    (255, 200),
    (255, 223),
    (255, 254),
];

/// Any `min_shards` or more distinct shards rebuild the block.
#[test]
fn recovers_at_declared_overhead() {
    let mut rng = ChaCha8Rng::seed_from_u64(0x5eed);
    for &(n, k) in PARAMS {
        let codec = RaptorQ::new(n, k).unwrap();
        let need = min_shards(codec.params());
        assert_eq!(
            need,
            (usize::from(k) + RaptorQ::RECEIVE_OVERHEAD).min(usize::from(n))
        );
        for trial in 0..12 {
            let t = if trial == 0 {
                1
            } else {
                rng.gen_range(1..=1300)
            };
            let data = random_block(&mut rng, usize::from(k), t);
            let mut all = data.clone();
            all.extend(encode(&codec, &data));
            let keep = rng.gen_range(need..=usize::from(n));
            let mut rx = erase(&mut rng, &all, keep);
            let received = rx.clone();
            codec
                .reconstruct(&mut rx)
                .unwrap_or_else(|e| panic!("({n},{k}) t={t} keep={keep}: {e}"));
            for (i, d) in data.iter().enumerate() {
                assert_eq!(rx[i].as_ref(), Some(d), "({n},{k}) shard {i}");
            }
            for i in usize::from(k)..usize::from(n) {
                assert_eq!(rx[i], received[i], "parity entries are not disturbed");
            }
        }
    }
}

#[test]
fn fewer_than_k_is_too_few() {
    let mut rng = ChaCha8Rng::seed_from_u64(2);
    for &(n, k) in PARAMS {
        let codec = RaptorQ::new(n, k).unwrap();
        let data = random_block(&mut rng, usize::from(k), 17);
        let mut all = data.clone();
        all.extend(encode(&codec, &data));
        let keep = rng.gen_range(0..usize::from(k));
        let mut rx = erase(&mut rng, &all, keep);
        let before = rx.clone();
        assert_eq!(codec.reconstruct(&mut rx), Err(FecError::TooFewShards));
        assert_eq!(rx, before);
    }
}

/// Symbol size is the shard length, whatever it is: 1..=65535.
#[test]
fn any_shard_length() {
    let mut rng = ChaCha8Rng::seed_from_u64(3);
    let codec = RaptorQ::new(4, 2).unwrap();
    for t in [1, 2, 3, 7, 15, 16, 17, 1216, 1217, 65535] {
        let data = random_block(&mut rng, 2, t);
        let mut all = data.clone();
        all.extend(encode(&codec, &data));
        assert!(all.iter().all(|s| s.len() == t));
        let mut rx = vec![None, None, Some(all[2].clone()), Some(all[3].clone())];
        codec.reconstruct(&mut rx).unwrap();
        assert_eq!(rx[0].as_ref(), Some(&data[0]));
        assert_eq!(rx[1].as_ref(), Some(&data[1]));
    }
    let too_long = [vec![0u8; 65536], vec![0u8; 65536]];
    let d: Vec<&[u8]> = too_long.iter().map(Vec::as_slice).collect();
    let mut p = [vec![0u8; 65536], vec![0u8; 65536]];
    let mut pr: Vec<&mut [u8]> = p.iter_mut().map(Vec::as_mut_slice).collect();
    assert_eq!(codec.encode(&d, &mut pr), Err(FecError::ShapeMismatch));
    let mut rx = vec![None, Some(vec![0u8; 65536]), Some(vec![0u8; 65536]), None];
    assert_eq!(codec.reconstruct(&mut rx), Err(FecError::ShapeMismatch));
}

#[test]
fn params_and_overhead() {
    for (n, k) in [(0, 0), (1, 1), (5, 5), (5, 0), (4, 5), (255, 255)] {
        assert_eq!(
            RaptorQ::new(n, k).err(),
            Some(FecError::InvalidParams),
            "({n}, {k})"
        );
    }
    let nk = |c: RaptorQ| (c.params().n, c.params().k);
    assert_eq!(RaptorQ::with_overhead(64, 0.25).map(nk), Ok((80, 64)));
    assert_eq!(RaptorQ::with_overhead(10, 0.01).map(nk), Ok((11, 10)));
    assert_eq!(RaptorQ::with_overhead(1, 0.5).map(nk), Ok((2, 1)));
    assert_eq!(RaptorQ::with_overhead(200, 0.3).map(nk), Ok((255, 200)));
    assert_eq!(
        RaptorQ::with_overhead(255, 0.1).err(),
        Some(FecError::InvalidParams)
    );
    assert_eq!(
        RaptorQ::with_overhead(10, 0.0).err(),
        Some(FecError::InvalidParams)
    );
    assert_eq!(
        RaptorQ::with_overhead(0, 1.0).err(),
        Some(FecError::InvalidParams)
    );
    for bad in [f64::NAN, f64::INFINITY, -0.5] {
        assert_eq!(
            RaptorQ::with_overhead(10, bad).err(),
            Some(FecError::InvalidParams)
        );
    }
    let p = FecParams {
        scheme: FecScheme::RaptorQ,
        n: 80,
        k: 64,
    };
    let any = AnyFec::new(p).unwrap();
    assert_eq!(any.params(), p);
    assert_eq!(any.min_shards(), 66);
    assert_eq!(
        min_shards(FecParams {
            scheme: FecScheme::RaptorQ,
            n: 3,
            k: 2
        }),
        3
    );
}

/// The per-codec plan gives the same repair symbols as the crate's unplanned
/// encoder, with parity index p at ESI k + p.
#[test]
fn plan_matches_crate_encoder() {
    use raptorq::{ObjectTransmissionInformation, SourceBlockEncoder};
    let mut rng = ChaCha8Rng::seed_from_u64(4);
    for (n, k, t) in [(6u8, 4u8, 16usize), (80, 64, 1216), (3, 1, 5)] {
        let codec = RaptorQ::new(n, k).unwrap();
        let data = random_block(&mut rng, usize::from(k), t);
        let parity = encode(&codec, &data);
        let config =
            ObjectTransmissionInformation::new((usize::from(k) * t) as u64, t as u16, 1, 1, 1);
        let enc = SourceBlockEncoder::new(0, &config, &data.concat());
        for (p, packet) in enc.repair_packets(0, u32::from(n - k)).iter().enumerate() {
            assert_eq!(
                packet.payload_id().encoding_symbol_id(),
                u32::from(k) + p as u32
            );
            assert_eq!(packet.data(), &parity[p][..]);
        }
    }
}
