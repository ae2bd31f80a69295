//! Measures how often RaptorQ fails to rebuild a block from exactly k, k+1, k+2 and k+3
//! received shards, over random erasure patterns: the evidence behind
//! `RaptorQ::RECEIVE_OVERHEAD`.
//!
//! `cargo run --release -p rgtp-providers --example raptorq_overhead` (env `TRIALS`, `KS=1,64`).

use rand::seq::SliceRandom;
use rand::{RngCore, SeedableRng};
use rand_chacha::ChaCha8Rng;
use rgtp_proto::fec::FecCodec;
use rgtp_providers::fec::RaptorQ;

fn main() {
    let mut rng = ChaCha8Rng::seed_from_u64(7);
    let trials: usize = std::env::var("TRIALS")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(200);
    let ks: Vec<u8> = match std::env::var("KS") {
        Ok(list) => list
            .split(',')
            .map(|k| k.trim().parse().expect("KS: numbers"))
            .collect(),
        Err(_) => (1..=250u8)
            .step_by(7)
            .chain([64, 100, 200, 223, 250])
            .collect(),
    };
    let mut totals = [0usize; 4];
    let mut runs = [0usize; 4];
    for k in ks {
        let codec = RaptorQ::new(255, k).expect("k < 255");
        let data: Vec<Vec<u8>> = (0..k)
            .map(|_| {
                let mut s = vec![0u8; 1];
                rng.fill_bytes(&mut s);
                s
            })
            .collect();
        let mut parity = vec![vec![0u8; 1]; usize::from(255 - k)];
        {
            let d: Vec<&[u8]> = data.iter().map(Vec::as_slice).collect();
            let mut p: Vec<&mut [u8]> = parity.iter_mut().map(Vec::as_mut_slice).collect();
            codec.encode(&d, &mut p).expect("encode");
        }
        let all: Vec<Vec<u8>> = data.iter().chain(&parity).cloned().collect();
        let mut fails = [0usize; 4];
        for (extra, fail) in fails.iter_mut().enumerate() {
            let keep = usize::from(k) + extra;
            if keep > all.len() {
                continue;
            }
            for _ in 0..trials {
                let mut order: Vec<usize> = (0..all.len()).collect();
                order.shuffle(&mut rng);
                let mut rx = vec![None; all.len()];
                for &i in &order[..keep] {
                    rx[i] = Some(all[i].clone());
                }
                match codec.reconstruct(&mut rx) {
                    Ok(()) => {
                        for (i, d) in data.iter().enumerate() {
                            assert_eq!(rx[i].as_ref(), Some(d), "wrong rebuild");
                        }
                    }
                    Err(_) => *fail += 1,
                }
                runs[extra] += 1;
            }
            totals[extra] += *fail;
        }
        println!("k={k:3} failures with k+0..3 shards: {fails:?} of {trials}");
    }
    println!("total failures {totals:?} of {runs:?}");
}
