//! The bodies of redgiant's fuzz targets, as plain functions.
//!
//! Each `pub fn <target>(data: &[u8])` is one cargo-fuzz target (`fuzz/fuzz_targets/<target>.rs`
//! only calls it) and is also replayed over every committed corpus and regression input by
//! `tests/replay.rs` on stable Rust. A target panics exactly when it found a bug: a panic in
//! the code under test, or a broken invariant checked here with `assert!`.
//!
//! | target         | input                                                             |
//! |----------------|-------------------------------------------------------------------|
//! | `packet`       | a datagram, or an `arbitrary` [`rgtp_wire::Repr`]                 |
//! | `ticket`       | a ticket string, or `arbitrary` ticket fields                     |
//! | `merkle_proof` | a proof to check, or a real tree's proof and one mutation         |
//! | `fec`          | RS / RaptorQ shards with erasures and corruptions                 |
//! | `puller`       | datagrams (real, mutated or arbitrary) after a valid Manifest     |
//! | `multi`        | two or three sources' datagrams (real, mutated, swapped, forged by a key holder) |
//! | `exposer`      | datagrams from arbitrary peers                                    |
//! | `ffi`          | C ABI calls with arbitrary arguments (loads the built `librgtp.so`) |
//! | `pcap`         | a selector byte and capture bytes, replayed and inspected          |
//! | `proofs`       | NAKs asking for proofs, the answers (mutated) to a proof puller, tree edits |
//! | `repair`       | a hostile network during the search for wrong chunks (§8.12)      |
//! | `chunk_key`    | a key and Exposure_ID: HKDF chunk key vs raw, a flipped key flag  |
//! | `manifest_size`| hostile Manifest sizes and authentic chunks at arbitrary indices  |
//! | `tej`          | a TEJ byte stream, cut where the input says                       |
//! | `gtudp_packet` | a profile and a gtUDP datagram                                    |
//! | `gtudp_endpoint` | a script: two gtUDP endpoints over a network the input drives   |
//! | `tej_endpoint` | a TEJ connection: a stream in pieces, pings, frames and timers   |
//! | `catalog`      | an exposure set's catalog (JSON) as `rgtp get` receives it       |
//! | `flow`         | a flow datagram, or a stream of them into a flow endpoint        |
#![warn(missing_docs, unreachable_pub)]

pub mod fixtures;

mod catalog;
mod chunk_key;
mod exposer;
mod fec;
mod ffi;
mod flow;
mod gtudp;
mod manifest_size;
mod merkle_proof;
mod multi;
mod packet;
mod pcap;
mod proofs;
mod puller;
mod repair;
mod tej;
mod tej_endpoint;
mod ticket;

pub use catalog::catalog;
pub use chunk_key::chunk_key;
pub use exposer::exposer;
pub use fec::fec;
pub use ffi::{ffi, ffi_library_path, FFI_LIB_ENV};
pub use flow::flow;
pub use gtudp::{gtudp_endpoint, gtudp_packet};
pub use manifest_size::manifest_size;
pub use merkle_proof::merkle_proof;
pub use multi::multi;
pub use packet::packet;
pub use pcap::pcap;
pub use proofs::proofs;
pub use puller::puller;
pub use repair::repair;
pub use tej::tej;
pub use tej_endpoint::tej_endpoint;
pub use ticket::ticket;

/// A target body.
pub type Target = fn(&[u8]);

/// Every target by name, for the replay test and the seed generator.
pub const TARGETS: &[(&str, Target)] = &[
    ("packet", packet),
    ("ticket", ticket),
    ("merkle_proof", merkle_proof),
    ("fec", fec),
    ("puller", puller),
    ("multi", multi),
    ("exposer", exposer),
    ("ffi", ffi),
    ("pcap", pcap),
    ("proofs", proofs),
    ("repair", repair),
    ("chunk_key", chunk_key),
    ("manifest_size", manifest_size),
    ("tej", tej),
    ("gtudp_packet", gtudp_packet),
    ("gtudp_endpoint", gtudp_endpoint),
    ("tej_endpoint", tej_endpoint),
    ("catalog", catalog),
    ("flow", flow),
];
