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
#![warn(missing_docs, unreachable_pub)]

pub mod builder;
pub mod driver;
pub mod replay;
pub mod sim;
pub mod sink;
pub mod suite;
pub mod ticket;
pub mod verify;

pub use builder::{ExposerBuilder, Prepared, StartError};
pub use suite::{DynSuite, FecSpec};
pub use ticket::Ticket;
