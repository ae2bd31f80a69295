//! RGTP: the builder that assembles the layers, the drivers that run the
//! sans-IO core over links, sinks, tickets, and capture replay. The `rgtp`
//! command is the `rgtp-cli` crate.
//!
//! ```text
//!   rgtp-cli (the rgtp command, inspect, capture corpus)
//!    └── rgtp (builder, drivers, sinks, tickets, replay)
//!         ├── rgtp-proto      Exposer / Puller state machines, layer traits
//!         │    └── rgtp-wire  packet codec
//!         ├── rgtp-providers  AEAD, Merkle hashes, FEC codecs (cargo features)
//!         ├── rgtp-link       UDP, raw Ethernet, in-memory, impairments
//!         └── rgtp-capture    recording, capture files, frame synthesis
//! ```
//!
//! # Cargo features
//!
//! One per provider, forwarded to `rgtp-providers` under the same name and
//! all on by default: `aead-aes-gcm`, `aead-chacha20poly1305`, `hash-sha256`,
//! `hash-blake2b`, `hash-blake3`, `fec-rs`, `fec-raptorq`. Build with
//! `default-features = false` and the ones wanted; asking the builder for a
//! provider left out gives [`StartError::NotBuilt`], which names the feature
//! to enable.
#![warn(missing_docs, unreachable_pub)]

pub mod builder;
pub mod catalog;
pub mod driver;
pub mod files;
#[cfg(feature = "flow")]
pub mod flow_bulk;
pub mod huge;
pub mod leaves;
mod lend;
pub mod proofs;
mod raw_keys;
pub mod replay;
pub mod resume;
pub mod router;
pub mod sim;
pub mod sink;
pub mod suite;
pub mod ticket;
pub mod verify;

pub use builder::{ExposerBuilder, Prepared, StartError};
pub use rgtp_providers::Backend;
pub use suite::{DynSuite, DynSuiteOn, FecSpec};
pub use ticket::Ticket;
