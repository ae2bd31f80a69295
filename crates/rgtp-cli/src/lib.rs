//! The pieces of the `rgtp` command that other crates reuse: [`inspect`]
//! (`rgtp inspect`, also run by the fuzz targets) and [`corpus`] (the
//! deterministic capture corpus in `pcaps/`, its scenarios and sidecars).
//!
//! The command itself is `src/main.rs`; the library it drives is the `rgtp`
//! crate.
#![warn(missing_docs, unreachable_pub)]

/// Exit statuses of the `rgtp` command (README: "Exit statuses").
pub mod exit {
    /// Bad arguments or ticket.
    pub const USAGE: u8 = 2;
    /// No answer, or the transfer stalled.
    pub const TIMEOUT: u8 = 3;
    /// Chunks failed authentication.
    pub const AUTH: u8 = 4;
    /// The data does not match the exposure's root.
    pub const MERKLE: u8 = 5;
    /// File or link I/O.
    pub const IO: u8 = 6;
    /// Anything else the protocol reported.
    pub const PROTOCOL: u8 = 7;
}

pub mod caps;
pub mod corpus;
pub mod files_cmd;
pub mod flow_cmd;
pub mod inspect;
pub mod pcaps_gtudp_tej;
pub mod sched;
pub mod sources;
pub mod tej_cmd;
pub mod tej_via;
pub mod transfer;
