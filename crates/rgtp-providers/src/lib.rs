//! Backends for the RGTP layers: AEAD cipher suites (RustCrypto and ring), Merkle hash
//! schemes (`digest`), and FEC codecs (Reed-Solomon, RaptorQ), plus `Any*`
//! enums that pick one at run time from a Manifest or the command line.
//!
//! Each backend is a cargo feature, all on by default; [`features`] lists
//! them and names the one a missing provider needs.
#![warn(missing_docs, unreachable_pub)]
// One exception, reviewed: the ring suite's drop wipes ring's key object in
// place (cipher/ring_aead.rs), which no safe API can do.
#![deny(unsafe_code)]

pub mod cipher;
pub mod features;
pub mod fec;
pub mod hash;

pub use cipher::{AnyCipher, Backend};
pub use features::{NotBuilt, Provider};
pub use fec::AnyFec;
pub use hash::AnyHash;
