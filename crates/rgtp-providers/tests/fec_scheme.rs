//! Which Reed-Solomon code our parity is (spec §7.4): pins the statement of
//! `spec/rgtp-v1.md` §4.2 and §7.4 to the code, so neither can drift alone.
//!
//! - Our parity for the input of `spec/vectors/fec.txt` is the parity of that
//!   file, byte for byte (the Vandermonde-derived systematic matrix).
//! - It is not the parity of the textbook systematic RS over the same field
//!   (remainder of division by g(x) = (x - 1)(x - 2)..(x - 2^(n-k-1))), which
//!   is what "systematic Reed-Solomon over GF(2^8), 0x11D" alone (upstream §5)
//!   would suggest: the field and the layout do not determine the parity, the
//!   generator matrix does, and upstream's spec does not give one.

use rgtp_proto::fec::FecCodec;
use rgtp_providers::fec::ReedSolomon;

const VECTORS: &str = include_str!("../../../spec/vectors/fec.txt");

/// GF(2^8) product, reduced by x^8 + x^4 + x^3 + x^2 + 1.
fn mul(mut a: u8, mut b: u8) -> u8 {
    let mut p = 0u8;
    while b != 0 {
        if b & 1 != 0 {
            p ^= a;
        }
        let carry = a & 0x80 != 0;
        a <<= 1;
        if carry {
            a ^= 0x1d;
        }
        b >>= 1;
    }
    p
}

fn pattern_block(k: usize, t: usize) -> Vec<Vec<u8>> {
    (0..k)
        .map(|i| {
            (0..t)
                .map(|j| ((i * 29 + j * 13 + 7) % 256) as u8)
                .collect()
        })
        .collect()
}

fn our_parity(n: u8, k: u8, data: &[Vec<u8>]) -> Vec<Vec<u8>> {
    let rs = ReedSolomon::new(n, k).unwrap();
    let mut parity = vec![vec![0u8; data[0].len()]; usize::from(n - k)];
    let d: Vec<&[u8]> = data.iter().map(Vec::as_slice).collect();
    let mut p: Vec<&mut [u8]> = parity.iter_mut().map(Vec::as_mut_slice).collect();
    rs.encode(&d, &mut p).unwrap();
    parity
}

/// The parity lines of `fec.txt` for `rs n k`.
fn vector_parity(n: u8, k: u8) -> Vec<Vec<u8>> {
    VECTORS
        .lines()
        .filter(|l| l.starts_with(&format!("rs {n} {k} ")))
        .map(|l| hex::decode(l.split_whitespace().nth(5).unwrap()).unwrap())
        .collect()
}

/// Textbook systematic RS, per byte position: the n-k remainder coefficients
/// of m(x) * x^(n-k) mod g(x), m(x) = sum of D_i[j] x^(k-1-i), highest first.
fn generator_polynomial_parity(n: u8, k: u8, data: &[Vec<u8>]) -> Vec<Vec<u8>> {
    let m = usize::from(n - k);
    // g(x), coefficients highest degree first, monic.
    let mut g = vec![1u8];
    let mut root = 1u8;
    for _ in 0..m {
        let mut next = vec![0u8; g.len() + 1];
        for (i, c) in g.iter().enumerate() {
            next[i] ^= c;
            next[i + 1] ^= mul(*c, root);
        }
        g = next;
        root = mul(root, 2);
    }
    let t = data[0].len();
    let mut parity = vec![vec![0u8; t]; m];
    for j in 0..t {
        let mut rem = vec![0u8; m];
        for shard in data {
            let feedback = shard[j] ^ rem[0];
            rem.rotate_left(1);
            rem[m - 1] = 0;
            for (r, gc) in rem.iter_mut().zip(&g[1..]) {
                *r ^= mul(feedback, *gc);
            }
        }
        for (p, r) in rem.iter().enumerate() {
            parity[p][j] = *r;
        }
    }
    parity
}

#[test]
fn our_parity_is_the_vandermonde_code_of_the_vectors() {
    for (n, k, t) in [(6u8, 4u8, 16usize), (255, 223, 8)] {
        let data = pattern_block(usize::from(k), t);
        let ours = our_parity(n, k, &data);
        assert_eq!(ours, vector_parity(n, k), "rs {n} {k}");
        let textbook = generator_polynomial_parity(n, k, &data);
        let reversed: Vec<Vec<u8>> = textbook.iter().rev().cloned().collect();
        assert_ne!(ours, textbook, "rs {n} {k}: §7.4 says ours is not g(x)-RS");
        assert_ne!(ours, reversed, "rs {n} {k}");
    }
}

/// The model of the textbook code is itself right: its codewords vanish at
/// the roots 1, 2, .., 2^(n-k-1), so the difference above is one of codes.
#[test]
fn generator_polynomial_model_is_a_reed_solomon_code() {
    let (n, k) = (10u8, 6u8);
    let data = pattern_block(usize::from(k), 5);
    let parity = generator_polynomial_parity(n, k, &data);
    for j in 0..5 {
        // Codeword, highest degree first: data then parity.
        let word: Vec<u8> = data
            .iter()
            .map(|d| d[j])
            .chain(parity.iter().map(|p| p[j]))
            .collect();
        let mut root = 1u8;
        for _ in 0..(n - k) {
            let value = word.iter().fold(0u8, |acc, c| mul(acc, root) ^ c);
            assert_eq!(value, 0, "byte {j}: c(2^i) != 0");
            root = mul(root, 2);
        }
    }
}
