//! The pieces of the `rgtp` command that other crates reuse: [`inspect`]
//! (`rgtp inspect`, also run by the fuzz targets) and [`corpus`] (the
//! deterministic capture corpus in `pcaps/`, its scenarios and sidecars).
//!
//! The command itself is `src/main.rs`; the library it drives is the `rgtp`
//! crate.
#![warn(missing_docs, unreachable_pub)]

pub mod corpus;
pub mod inspect;
pub mod tej_cmd;
pub mod transfer;
