//! Backends for the RGTP layers: AEAD cipher suites (RustCrypto), Merkle hash
//! schemes (`digest`), and FEC codecs (Reed-Solomon, RaptorQ), plus `Any*`
//! enums that pick one at run time from a Manifest or the command line.
#![warn(missing_docs, unreachable_pub)]
#![forbid(unsafe_code)]

pub mod cipher;
pub mod fec;
pub mod hash;

pub use cipher::AnyCipher;
pub use fec::AnyFec;
pub use hash::AnyHash;
