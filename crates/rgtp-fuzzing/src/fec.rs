//! `fec`: Reed-Solomon and RaptorQ decoding under arbitrary erasures, corrupted
//! shards and malformed shapes.

use std::collections::HashMap;
use std::sync::{Mutex, OnceLock};

use arbitrary::{Arbitrary, Unstructured};
use rgtp_proto::fec::{FecCodec, FecError, FecParams, FecScheme};
use rgtp_providers::AnyFec;

type CodecCache = Mutex<HashMap<(bool, u8, u8), Option<AnyFec>>>;

/// Codecs are cached: a RaptorQ codec precomputes its encoding plan per `k`.
fn codec(params: FecParams) -> Option<AnyFec> {
    static CACHE: OnceLock<CodecCache> = OnceLock::new();
    let mut cache = CACHE.get_or_init(Default::default).lock().ok()?;
    cache
        .entry((params.scheme == FecScheme::RaptorQ, params.n, params.k))
        .or_insert_with(|| AnyFec::new(params).ok())
        .clone()
}

#[derive(Debug, Arbitrary)]
struct Corruption {
    shard: u8,
    byte: u16,
    xor: u8,
}

/// First byte: bit 0 picks RS or RaptorQ, bit 1 picks the mode. Mode 0: a real block
/// (k ≤ 32, up to 16 parity shards, shards of 1..=80 bytes) encoded, then erased and
/// corrupted. Mode 1: `reconstruct` on arbitrary, possibly ill-shaped, shards.
pub fn fec(data: &[u8]) {
    let Some((&mode, rest)) = data.split_first() else {
        return;
    };
    let scheme = if mode & 1 == 0 {
        FecScheme::ReedSolomon
    } else {
        FecScheme::RaptorQ
    };
    let mut u = Unstructured::new(rest);
    let _ = if mode & 2 == 0 {
        block(scheme, &mut u)
    } else {
        shapes(scheme, &mut u)
    };
}

fn block(scheme: FecScheme, u: &mut Unstructured<'_>) -> arbitrary::Result<()> {
    let k = u.int_in_range(1u8..=32)?;
    let m = u.int_in_range(1u8..=16)?;
    let params = FecParams {
        scheme,
        n: k + m,
        k,
    };
    let Some(codec) = codec(params) else {
        panic!("valid params {params:?} refused");
    };
    let (k, n) = (usize::from(k), usize::from(k + m));
    let len = u.int_in_range(1usize..=80)?;
    let mut data = vec![vec![0u8; len]; k];
    for d in &mut data {
        u.fill_buffer(d)?;
    }
    let mut parity = vec![vec![0u8; len]; n - k];
    {
        let refs: Vec<&[u8]> = data.iter().map(Vec::as_slice).collect();
        let mut outs: Vec<&mut [u8]> = parity.iter_mut().map(Vec::as_mut_slice).collect();
        codec
            .encode(&refs, &mut outs)
            .expect("encode of a well-shaped block");
    }
    let original: Vec<Vec<u8>> = data.iter().chain(parity.iter()).cloned().collect();
    // Erasures: one bit per shard.
    let mut shards: Vec<Option<Vec<u8>>> = Vec::with_capacity(n);
    for s in &original {
        let keep: bool = u.arbitrary()?;
        shards.push(keep.then(|| s.clone()));
    }
    let mut corrupted = vec![false; n];
    let corruptions: Vec<Corruption> = u.arbitrary()?;
    for c in corruptions.iter().take(8) {
        let i = usize::from(c.shard) % n;
        if let Some(s) = shards[i].as_mut() {
            let b = usize::from(c.byte) % len;
            s[b] ^= c.xor;
            corrupted[i] |= s[b] != original[i][b];
        }
    }
    let before = shards.clone();
    let present = shards.iter().filter(|s| s.is_some()).count();
    let clean = (0..n).all(|i| !corrupted[i] || shards[i].is_none());
    let all_data = shards[..k].iter().all(Option::is_some);
    let result = codec.reconstruct(&mut shards);
    match result {
        Ok(()) => {
            for i in 0..k {
                let s = shards[i].as_ref().expect("Ok leaves every data shard Some");
                assert_eq!(s.len(), len, "rebuilt shard {i} has the wrong length");
                if let Some(b) = &before[i] {
                    assert_eq!(s, b, "reconstruct changed received data shard {i}");
                } else if clean {
                    assert_eq!(s, &original[i], "clean shards rebuilt shard {i} wrongly");
                }
            }
            for i in k..n {
                if let (Some(s), Some(b)) = (&shards[i], &before[i]) {
                    assert_eq!(s, b, "reconstruct changed received parity shard {i}");
                }
            }
        }
        Err(e) => {
            assert_eq!(
                shards, before,
                "a failed reconstruct must leave shards untouched"
            );
            assert_ne!(e, FecError::ShapeMismatch, "well-shaped shards refused");
            assert!(!all_data, "every data shard present, yet {e:?}");
            assert!(present < n, "all {n} shards present, yet {e:?}");
            // Reed-Solomon: any k shards rebuild the block. (RaptorQ may fail with
            // k..k+1 shards, and rarely with more: RFC 6330 is probabilistic.)
            if scheme == FecScheme::ReedSolomon {
                assert!(present < k, "{present} >= k = {k} shards, yet {e:?}");
            }
        }
    }
    Ok(())
}

fn shapes(scheme: FecScheme, u: &mut Unstructured<'_>) -> arbitrary::Result<()> {
    let k = u.int_in_range(1u8..=16)?;
    let m = u.int_in_range(1u8..=8)?;
    let params = FecParams {
        scheme,
        n: k + m,
        k,
    };
    let codec = codec(params).expect("valid params");
    let count = u.int_in_range(0usize..=usize::from(k + m) + 2)?;
    let mut shards: Vec<Option<Vec<u8>>> = Vec::with_capacity(count);
    for _ in 0..count {
        let present: bool = u.arbitrary()?;
        if present {
            let len = u.int_in_range(0usize..=40)?;
            shards.push(Some(u.bytes(len)?.to_vec()));
        } else {
            shards.push(None);
        }
    }
    let before = shards.clone();
    match codec.reconstruct(&mut shards) {
        Ok(()) => {
            assert_eq!(shards.len(), usize::from(k + m));
            let len = shards[0].as_ref().map(Vec::len);
            assert!(len.is_some_and(|l| l > 0), "Ok with an empty shard");
            for (i, s) in shards.iter().take(usize::from(k)).enumerate() {
                assert_eq!(
                    s.as_ref().map(Vec::len),
                    len,
                    "data shard {i} missing or resized"
                );
            }
        }
        Err(_) => assert_eq!(
            shards, before,
            "a failed reconstruct must leave shards untouched"
        ),
    }
    // Encode with arbitrary shapes: errors, never panics.
    let dlen = u.int_in_range(0usize..=8)?;
    let plen = u.int_in_range(0usize..=8)?;
    let dcount = u.int_in_range(0usize..=usize::from(k) + 1)?;
    let pcount = u.int_in_range(0usize..=usize::from(m) + 1)?;
    let data = vec![vec![7u8; dlen]; dcount];
    let refs: Vec<&[u8]> = data.iter().map(Vec::as_slice).collect();
    let mut parity = vec![vec![0u8; plen]; pcount];
    let mut outs: Vec<&mut [u8]> = parity.iter_mut().map(Vec::as_mut_slice).collect();
    let r = codec.encode(&refs, &mut outs);
    let well_shaped =
        dcount == usize::from(k) && pcount == usize::from(m) && dlen > 0 && dlen == plen;
    assert_eq!(r.is_ok(), well_shaped, "encode shape check: {r:?}");
    Ok(())
}
