//! Known-answer vectors (`spec/vectors/fec.txt`), and an independent model of
//! the Reed-Solomon field and matrix that `spec/rgtp-v1.md §7` describes.

use rgtp_proto::fec::FecCodec;
use rgtp_providers::fec::{AnyFec, RaptorQ, ReedSolomon};

const VECTORS: &str = include_str!("../../../spec/vectors/fec.txt");

/// Data shard `i`, byte `j`, as `spec/vectors/fec.txt` defines it.
fn pattern(i: usize, j: usize) -> u8 {
    ((i * 29 + j * 13 + 7) % 256) as u8
}

fn pattern_block(k: usize, t: usize) -> Vec<Vec<u8>> {
    (0..k)
        .map(|i| (0..t).map(|j| pattern(i, j)).collect())
        .collect()
}

fn parity_of(codec: &dyn FecCodec, data: &[Vec<u8>]) -> Vec<Vec<u8>> {
    let t = data[0].len();
    let mut parity = vec![vec![0u8; t]; codec.params().parity()];
    let d: Vec<&[u8]> = data.iter().map(Vec::as_slice).collect();
    let mut pr: Vec<&mut [u8]> = parity.iter_mut().map(Vec::as_mut_slice).collect();
    codec.encode(&d, &mut pr).unwrap();
    parity
}

fn codec(scheme: &str, n: u8, k: u8) -> AnyFec {
    match scheme {
        "rs" => AnyFec::ReedSolomon(ReedSolomon::new(n, k).unwrap()),
        "raptorq" => AnyFec::RaptorQ(RaptorQ::new(n, k).unwrap()),
        other => panic!("unknown scheme {other}"),
    }
}

/// `(scheme, n, k, t, parity index, parity)` for each vector line.
fn vectors() -> Vec<(String, u8, u8, usize, usize, Vec<u8>)> {
    VECTORS
        .lines()
        .filter(|l| !l.starts_with('#') && !l.trim().is_empty())
        .map(|l| {
            let f: Vec<&str> = l.split_whitespace().collect();
            assert_eq!(f.len(), 6, "bad line {l:?}");
            (
                f[0].to_string(),
                f[1].parse().unwrap(),
                f[2].parse().unwrap(),
                f[3].parse().unwrap(),
                f[4].parse().unwrap(),
                hex::decode(f[5]).unwrap(),
            )
        })
        .collect()
}

#[test]
fn known_answers() {
    let vs = vectors();
    let mut blocks = 0;
    for (scheme, n, k, t, _, _) in &vs {
        let mine: Vec<_> = vs
            .iter()
            .filter(|v| (&v.0, v.1, v.2, v.3) == (scheme, *n, *k, *t))
            .collect();
        if mine[0].4 != 0 {
            continue;
        }
        blocks += 1;
        assert_eq!(
            mine.len(),
            usize::from(n - k),
            "{scheme} ({n},{k}) t={t}: one line per parity shard"
        );
        let parity = parity_of(&codec(scheme, *n, *k), &pattern_block(usize::from(*k), *t));
        for (p, v) in mine.iter().enumerate() {
            assert_eq!(v.4, p);
            assert_eq!(
                hex::encode(&parity[p]),
                hex::encode(&v.5),
                "{scheme} ({n},{k}) t={t} parity {p}"
            );
        }
    }
    assert!(blocks >= 4);
}

/// The generator of `spec/vectors/fec.txt`: every line it produces must be in the file
/// (set `RGTP_PRINT_VECTORS=1` to print them, e.g. to extend the file).
#[test]
fn vector_file_holds_every_generated_line() {
    let print = std::env::var_os("RGTP_PRINT_VECTORS").is_some();
    for (scheme, n, k, t) in [
        ("rs", 6, 4, 16),
        ("rs", 255, 223, 8),
        ("raptorq", 6, 4, 16),
        ("raptorq", 10, 3, 13),
    ] {
        let parity = parity_of(&codec(scheme, n, k), &pattern_block(usize::from(k), t));
        for (p, s) in parity.iter().enumerate() {
            let line = format!("{scheme} {n} {k} {t} {p} {}", hex::encode(s));
            if print {
                println!("{line}");
            }
            assert!(
                VECTORS
                    .lines()
                    .any(|l| l.split_whitespace().collect::<Vec<_>>()
                        == line.split_whitespace().collect::<Vec<_>>()),
                "missing from spec/vectors/fec.txt: {line}"
            );
        }
    }
}

/// GF(2^8) product reduced by x^8 + x^4 + x^3 + x^2 + 1 (0x11D), bit by bit.
fn gf_mul(mut a: u8, mut b: u8) -> u8 {
    let mut r = 0u8;
    while b != 0 {
        if b & 1 != 0 {
            r ^= a;
        }
        let carry = a & 0x80 != 0;
        a <<= 1;
        if carry {
            a ^= 0x1D; // x^8 ≡ x^4 + x^3 + x^2 + 1
        }
        b >>= 1;
    }
    r
}

fn gf_inv(a: u8) -> u8 {
    (1..=255u8)
        .find(|&b| gf_mul(a, b) == 1)
        .expect("nonzero has an inverse")
}

fn gf_pow(a: u8, e: usize) -> u8 {
    (0..e).fold(1, |acc, _| gf_mul(acc, a))
}

/// The encoding matrix as spec/rgtp-v1.md §7 words it: V[r][c] = r^c (n×k),
/// times the inverse of V's top k×k block.
fn model_matrix(n: usize, k: usize) -> Vec<Vec<u8>> {
    let v: Vec<Vec<u8>> = (0..n)
        .map(|r| (0..k).map(|c| gf_pow(r as u8, c)).collect())
        .collect();
    // Gauss-Jordan on [top | I].
    let mut a: Vec<Vec<u8>> = v[..k].to_vec();
    let mut inv: Vec<Vec<u8>> = (0..k)
        .map(|r| (0..k).map(|c| u8::from(r == c)).collect())
        .collect();
    for col in 0..k {
        let piv = (col..k)
            .find(|&r| a[r][col] != 0)
            .expect("Vandermonde top is invertible");
        a.swap(col, piv);
        inv.swap(col, piv);
        let s = gf_inv(a[col][col]);
        for c in 0..k {
            a[col][c] = gf_mul(a[col][c], s);
            inv[col][c] = gf_mul(inv[col][c], s);
        }
        for r in 0..k {
            let f = a[r][col];
            if r != col && f != 0 {
                for c in 0..k {
                    a[r][c] ^= gf_mul(f, a[col][c]);
                    inv[r][c] ^= gf_mul(f, inv[col][c]);
                }
            }
        }
    }
    v.iter()
        .map(|row| {
            (0..k)
                .map(|c| (0..k).fold(0, |acc, j| acc ^ gf_mul(row[j], inv[j][c])))
                .collect()
        })
        .collect()
}

#[test]
fn rs_field_is_0x11d() {
    for a in 0..=255u8 {
        for b in 0..=255u8 {
            assert_eq!(
                reed_solomon_erasure::galois_8::mul(a, b),
                gf_mul(a, b),
                "{a} * {b}"
            );
        }
    }
    // 2 generates the multiplicative group (0x11D is primitive).
    let mut seen = std::collections::HashSet::new();
    let mut x = 1u8;
    for _ in 0..255 {
        seen.insert(x);
        x = gf_mul(x, 2);
    }
    assert_eq!(seen.len(), 255);
}

#[test]
fn rs_matches_model() {
    for (n, k, t) in [
        (6usize, 4usize, 16usize),
        (10, 8, 5),
        (3, 1, 7),
        (40, 17, 9),
        (255, 223, 8),
    ] {
        let m = model_matrix(n, k);
        for (r, row) in m.iter().take(k).enumerate() {
            for (c, &x) in row.iter().enumerate() {
                assert_eq!(x, u8::from(r == c), "systematic top");
            }
        }
        let data = pattern_block(k, t);
        let parity = parity_of(&ReedSolomon::new(n as u8, k as u8).unwrap(), &data);
        for p in 0..n - k {
            let want: Vec<u8> = (0..t)
                .map(|j| (0..k).fold(0, |acc, c| acc ^ gf_mul(m[k + p][c], data[c][j])))
                .collect();
            assert_eq!(parity[p], want, "({n},{k}) parity {p}");
        }
    }
}
