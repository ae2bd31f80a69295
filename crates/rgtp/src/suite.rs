//! Run-time layer selection: the suite a command line or a Manifest names,
//! built from the providers this build holds (cargo features, see
//! [`rgtp_providers::features`]).

use std::fmt;
use std::str::FromStr;

use rgtp_proto::{CipherId, FecParams, FecScheme, HashId, Key, SuiteFactory};
use rgtp_providers::{AnyCipher, AnyFec, AnyHash, Backend};

/// Builds any suite the providers implement, the cipher on the preferred
/// backend ([`Backend::preferred`]).
#[derive(Debug, Clone, Copy, Default)]
pub struct DynSuite;

/// [`DynSuite`] with the cipher on a named backend.
#[derive(Debug, Clone, Copy)]
pub struct DynSuiteOn(pub Backend);

impl SuiteFactory for DynSuite {
    type Cipher = AnyCipher;
    type Hash = AnyHash;
    type Fec = AnyFec;

    fn cipher(&self, id: CipherId, key: &Key) -> Option<AnyCipher> {
        DynSuiteOn(Backend::preferred()).cipher(id, key)
    }

    fn hash(&self, id: HashId) -> Option<AnyHash> {
        DynSuiteOn(Backend::preferred()).hash(id)
    }

    fn fec(&self, params: FecParams) -> Option<AnyFec> {
        DynSuiteOn(Backend::preferred()).fec(params)
    }

    fn min_shards(&self, params: FecParams) -> usize {
        DynSuiteOn(Backend::preferred()).min_shards(params)
    }
}

impl SuiteFactory for DynSuiteOn {
    type Cipher = AnyCipher;
    type Hash = AnyHash;
    type Fec = AnyFec;

    fn cipher(&self, id: CipherId, key: &Key) -> Option<AnyCipher> {
        AnyCipher::with_backend(id, self.0, key)
    }

    fn hash(&self, id: HashId) -> Option<AnyHash> {
        AnyHash::new(id)
    }

    fn fec(&self, params: FecParams) -> Option<AnyFec> {
        AnyFec::new(params).ok()
    }

    fn min_shards(&self, params: FecParams) -> usize {
        rgtp_providers::fec::min_shards(params)
    }
}

/// An FEC choice as written on the command line: `none`, `rs:N,K`, `raptorq:OVERHEAD`
/// (OVERHEAD a fraction such as `0.25`, or `raptorq:N,K`).
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum FecSpec {
    /// No FEC.
    None,
    /// Reed-Solomon (n, k).
    ReedSolomon {
        /// Shards per block.
        n: u8,
        /// Data shards per block.
        k: u8,
    },
    /// RaptorQ: k source symbols and n − k repair symbols per block.
    RaptorQ {
        /// Source plus repair symbols per block.
        n: u8,
        /// Source symbols per block.
        k: u8,
    },
}

/// Source symbols per RaptorQ block when only an overhead is given.
pub const RAPTORQ_DEFAULT_K: u8 = 64;

impl FecSpec {
    /// The codec parameters.
    pub fn params(&self) -> Result<FecParams, String> {
        match *self {
            FecSpec::None => Ok(FecParams::NONE),
            FecSpec::ReedSolomon { n, k } => {
                if k >= 1 && k < n {
                    Ok(FecParams {
                        scheme: FecScheme::ReedSolomon,
                        n,
                        k,
                    })
                } else {
                    Err(format!("rs:{n},{k}: need 1 <= K < N <= 255"))
                }
            }
            FecSpec::RaptorQ { n, k } => {
                if k >= 1 && k < n {
                    Ok(FecParams {
                        scheme: FecScheme::RaptorQ,
                        n,
                        k,
                    })
                } else {
                    Err(format!("raptorq:{n},{k}: need 1 <= K < N <= 255"))
                }
            }
        }
    }
}

impl FromStr for FecSpec {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, String> {
        let bad = || {
            format!("unknown FEC {s:?}: use none, rs:N,K (e.g. rs:255,223) or raptorq:OVERHEAD (e.g. raptorq:0.25)")
        };
        if s == "none" {
            return Ok(FecSpec::None);
        }
        let (scheme, args) = s.split_once(':').ok_or_else(bad)?;
        let pair = |a: &str| -> Option<(u8, u8)> {
            let (n, k) = a.split_once(',')?;
            Some((n.trim().parse().ok()?, k.trim().parse().ok()?))
        };
        let spec = match scheme {
            "rs" | "reed-solomon" => {
                let (n, k) = pair(args).ok_or_else(bad)?;
                FecSpec::ReedSolomon { n, k }
            }
            "raptorq" => match pair(args) {
                Some((n, k)) => FecSpec::RaptorQ { n, k },
                None => {
                    let overhead: f64 = args.trim().parse().map_err(|_| bad())?;
                    let k = RAPTORQ_DEFAULT_K;
                    let repair = (f64::from(k) * overhead).ceil();
                    if !(repair >= 1.0 && repair <= f64::from(255 - k)) {
                        return Err(format!(
                            "raptorq:{args}: overhead must give 1..={} repair symbols per {k}-symbol block (e.g. raptorq:0.25)",
                            255 - k
                        ));
                    }
                    FecSpec::RaptorQ {
                        n: k + repair as u8,
                        k,
                    }
                }
            },
            _ => return Err(bad()),
        };
        spec.params()?;
        Ok(spec)
    }
}

impl fmt::Display for FecSpec {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match *self {
            FecSpec::None => f.write_str("none"),
            FecSpec::ReedSolomon { n, k } => write!(f, "rs:{n},{k}"),
            FecSpec::RaptorQ { n, k } => write!(f, "raptorq:{n},{k}"),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_fec_specs() {
        assert_eq!("none".parse::<FecSpec>().unwrap(), FecSpec::None);
        assert_eq!(
            "rs:10,8".parse::<FecSpec>().unwrap(),
            FecSpec::ReedSolomon { n: 10, k: 8 }
        );
        let p = "raptorq:0.25".parse::<FecSpec>().unwrap().params().unwrap();
        assert_eq!((p.scheme, p.n, p.k), (FecScheme::RaptorQ, 80, 64));
        let p = "raptorq:80,64"
            .parse::<FecSpec>()
            .unwrap()
            .params()
            .unwrap();
        assert_eq!((p.n, p.k), (80, 64));
        for bad in [
            "rs:8,10",
            "rs:8",
            "rs:256,1",
            "raptorq:0",
            "raptorq:5",
            "lt:3",
            "",
        ] {
            assert!(bad.parse::<FecSpec>().is_err(), "{bad}");
        }
    }
}
