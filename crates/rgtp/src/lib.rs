//! RGTP: the builder that assembles the layers, the drivers that run the
//! sans-IO core over links, tickets, and the pieces of the `rgtp` command.
//!
//! ```text
//!   rgtp (builder, drivers, CLI)
//!    ├── rgtp-proto      Exposer / Puller state machines, layer traits
//!    │    └── rgtp-wire  packet codec
//!    ├── rgtp-providers  AEAD, Merkle hashes, FEC codecs
//!    ├── rgtp-link       UDP, raw Ethernet, in-memory, impairments
//!    └── rgtp-capture    recording, capture files, frame synthesis
//! ```
#![warn(missing_docs, unreachable_pub)]

pub mod builder;
pub mod corpus;
pub mod driver;
pub mod inspect;
pub mod replay;
pub mod sim;
pub mod sink;
pub mod suite;
pub mod ticket;
pub mod verify;

pub use builder::{ExposerBuilder, Prepared, StartError};
pub use suite::{DynSuite, FecSpec};
pub use ticket::Ticket;
