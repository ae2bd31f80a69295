//! The sans-IO RGTP core: the layer traits, and the [`Exposer`] and [`Puller`]
//! state machines.
//!
//! Nothing here opens a socket, reads a clock, spawns a thread or draws ambient
//! randomness. Inputs are datagrams and [`Instant`]s handed in by a driver;
//! outputs are [`Transmit`]s written into the caller's buffer, events, and the
//! next deadline. The same core therefore runs over UDP, raw Ethernet, a pcap
//! replay, a deterministic simulator and a fuzzer.
#![warn(missing_docs, unreachable_pub)]
#![forbid(unsafe_code)]

pub mod cc;
pub mod crypto;
mod endpoint;
pub mod exposer;
pub mod fec;
pub mod latency;
pub mod merkle;
pub mod multi;
pub mod puller;
pub mod replay;
pub mod suite;
pub mod token;

#[cfg(test)]
mod tests;

pub use crypto::{CipherId, CipherSuite, Key, KeyMode};
pub use exposer::{Exposer, ExposerConfig, ExposerStats, Exposure};
pub use fec::{FecCodec, FecParams, FecScheme};
pub use merkle::{HashId, MerkleScheme, MerkleTree};
pub use multi::{MultiConfig, MultiPuller, Pull};
pub use puller::{Puller, PullerConfig, PullerEvent, PullerStats};
pub use redgiant_base::{Instant, Peer, Transmit};
pub use suite::{SuiteFactory, SuiteId};
