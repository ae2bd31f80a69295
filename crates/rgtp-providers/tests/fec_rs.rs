//! Reed-Solomon codec: any n−k erasures are repaired, more are refused,
//! and bad shapes or parameters are errors, never panics.

use proptest::prelude::*;
use rand::{RngCore, SeedableRng};
use rand_chacha::ChaCha8Rng;
use rgtp_proto::fec::{FecCodec, FecError, FecParams, FecScheme};
use rgtp_providers::fec::{min_shards, AnyFec, ReedSolomon};

const PARAMS: &[(u8, u8)] = &[
    (255, 223),
    (10, 8),
    (3, 1),
    (2, 1),
    (6, 4),
    (20, 5),
    (255, 1),
    (255, 254),
];

fn random_block(seed: u64, k: usize, t: usize) -> Vec<Vec<u8>> {
    let mut rng = ChaCha8Rng::seed_from_u64(seed);
    (0..k)
        .map(|_| {
            let mut s = vec![0u8; t];
            rng.fill_bytes(&mut s);
            s
        })
        .collect()
}

/// Data followed by parity, as sent.
fn encode_all(codec: &impl FecCodec, data: &[Vec<u8>]) -> Vec<Vec<u8>> {
    let p = codec.params();
    let t = data[0].len();
    let mut parity = vec![vec![0u8; t]; p.parity()];
    let d: Vec<&[u8]> = data.iter().map(Vec::as_slice).collect();
    let mut pr: Vec<&mut [u8]> = parity.iter_mut().map(Vec::as_mut_slice).collect();
    codec.encode(&d, &mut pr).unwrap();
    let mut all = data.to_vec();
    all.extend(parity);
    all
}

/// `(n, k)`, shard size, data seed, and a set of erased indices of the given size range.
fn case(extra_erasures: bool) -> impl Strategy<Value = ((u8, u8), usize, u64, Vec<usize>)> {
    (prop::sample::select(PARAMS), 1usize..=2000, any::<u64>()).prop_flat_map(
        move |((n, k), t, seed)| {
            let n_us = usize::from(n);
            let m = usize::from(n - k);
            let sizes = if extra_erasures { m + 1..=n_us } else { 0..=m };
            let erased = sizes.prop_flat_map(move |e| {
                Just((0..n_us).collect::<Vec<_>>())
                    .prop_shuffle()
                    .prop_map(move |v| v[..e].to_vec())
            });
            (Just((n, k)), Just(t), Just(seed), erased)
        },
    )
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 96, ..ProptestConfig::default() })]

    #[test]
    fn recovers_any_n_minus_k_erasures(((n, k), t, seed, erased) in case(false)) {
        let codec = ReedSolomon::new(n, k).unwrap();
        let all = encode_all(&codec, &random_block(seed, usize::from(k), t));
        let mut rx: Vec<Option<Vec<u8>>> = all.iter().cloned().map(Some).collect();
        for &i in &erased {
            rx[i] = None;
        }
        codec.reconstruct(&mut rx).unwrap();
        for i in 0..usize::from(k) {
            prop_assert_eq!(rx[i].as_ref(), Some(&all[i]));
        }
        // Received parity is left as it was.
        for i in usize::from(k)..usize::from(n) {
            if !erased.contains(&i) {
                prop_assert_eq!(rx[i].as_ref(), Some(&all[i]));
            }
        }
    }

    #[test]
    fn refuses_more_than_n_minus_k_erasures(((n, k), t, seed, erased) in case(true)) {
        let codec = ReedSolomon::new(n, k).unwrap();
        let all = encode_all(&codec, &random_block(seed, usize::from(k), t));
        let mut rx: Vec<Option<Vec<u8>>> = all.iter().cloned().map(Some).collect();
        for &i in &erased {
            rx[i] = None;
        }
        let before = rx.clone();
        let missing_data = erased.iter().any(|&i| i < usize::from(k));
        prop_assert!(missing_data, "more than n-k erasures always hit data");
        prop_assert_eq!(codec.reconstruct(&mut rx), Err(FecError::TooFewShards));
        prop_assert_eq!(rx, before, "a failed reconstruct leaves the shards untouched");
    }
}

#[test]
fn invalid_params() {
    for (n, k) in [(0, 0), (1, 1), (5, 5), (5, 0), (4, 5), (255, 255), (1, 0)] {
        assert_eq!(
            ReedSolomon::new(n, k).err(),
            Some(FecError::InvalidParams),
            "({n}, {k})"
        );
        let p = FecParams {
            scheme: FecScheme::ReedSolomon,
            n,
            k,
        };
        assert_eq!(AnyFec::new(p).err(), Some(FecError::InvalidParams));
    }
    let bad_none = FecParams {
        scheme: FecScheme::None,
        n: 3,
        k: 1,
    };
    assert_eq!(AnyFec::new(bad_none).err(), Some(FecError::InvalidParams));
    assert!(matches!(AnyFec::new(FecParams::NONE), Ok(AnyFec::None(_))));
}

#[test]
fn shape_mismatch() {
    let codec = ReedSolomon::new(6, 4).unwrap();
    let d = [[1u8; 8]; 5];
    let mut p = [[0u8; 8]; 3];
    let mut short = [0u8; 7];
    let mut empty: [u8; 0] = [];
    let data = |m: usize| d[..m].iter().map(|s| &s[..]).collect::<Vec<_>>();

    let mut cases: Vec<(Vec<&[u8]>, usize)> =
        vec![(data(3), 2), (data(5), 2), (data(4), 1), (data(4), 3)];
    for (data, parity) in cases.drain(..) {
        let mut pr: Vec<&mut [u8]> = p[..parity].iter_mut().map(|s| &mut s[..]).collect();
        assert_eq!(codec.encode(&data, &mut pr), Err(FecError::ShapeMismatch));
    }
    // Unequal and empty shards.
    {
        let [p0, _, _] = &mut p;
        let mut pr: Vec<&mut [u8]> = vec![p0, &mut short];
        assert_eq!(
            codec.encode(&data(4), &mut pr),
            Err(FecError::ShapeMismatch)
        );
    }
    let e: [&[u8]; 4] = [&[], &[], &[], &[]];
    let mut pr: Vec<&mut [u8]> = vec![&mut empty, &mut []];
    assert_eq!(codec.encode(&e, &mut pr), Err(FecError::ShapeMismatch));
    let odd: [&[u8]; 4] = [&[1; 8], &[1; 8], &[1; 9], &[1; 8]];
    let mut p2 = [[0u8; 8]; 2];
    let mut pr: Vec<&mut [u8]> = p2.iter_mut().map(|s| &mut s[..]).collect();
    assert_eq!(codec.encode(&odd, &mut pr), Err(FecError::ShapeMismatch));

    // Reconstruct: wrong count, unequal lengths, empty shard.
    let mut rx = vec![Some(vec![1u8; 8]); 5];
    assert_eq!(codec.reconstruct(&mut rx), Err(FecError::ShapeMismatch));
    let mut rx = vec![
        Some(vec![1u8; 8]),
        None,
        Some(vec![1u8; 9]),
        Some(vec![1; 8]),
        Some(vec![1; 8]),
        None,
    ];
    assert_eq!(codec.reconstruct(&mut rx), Err(FecError::ShapeMismatch));
    let mut rx = vec![
        Some(vec![]),
        None,
        Some(vec![]),
        Some(vec![]),
        Some(vec![]),
        None,
    ];
    assert_eq!(codec.reconstruct(&mut rx), Err(FecError::ShapeMismatch));
}

#[test]
fn any_fec_dispatches_and_min_shards() {
    let p = FecParams {
        scheme: FecScheme::ReedSolomon,
        n: 10,
        k: 8,
    };
    let codec = AnyFec::new(p).unwrap();
    assert_eq!(codec.params(), p);
    assert_eq!(min_shards(p), 8);
    assert_eq!(codec.min_shards(), 8);
    assert_eq!(min_shards(FecParams::NONE), 0);
    let all = encode_all(&codec, &random_block(1, 8, 100));
    let mut rx: Vec<Option<Vec<u8>>> = all.iter().cloned().map(Some).collect();
    rx[0] = None;
    rx[7] = None;
    codec.reconstruct(&mut rx).unwrap();
    assert_eq!(rx[0].as_ref(), Some(&all[0]));
    assert_eq!(rx[7].as_ref(), Some(&all[7]));

    let none = AnyFec::new(FecParams::NONE).unwrap();
    assert_eq!(none.encode(&[], &mut []), Ok(()));
}

#[test]
fn nothing_missing_is_a_no_op() {
    let codec = ReedSolomon::new(6, 4).unwrap();
    let all = encode_all(&codec, &random_block(3, 4, 33));
    let mut rx: Vec<Option<Vec<u8>>> = all.iter().take(4).cloned().map(Some).collect();
    rx.extend([None, None]);
    let before = rx.clone();
    codec.reconstruct(&mut rx).unwrap();
    assert_eq!(rx, before);
}
