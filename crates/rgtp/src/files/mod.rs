//! Files and directory trees as one exposure set.
//!
//! [`prepare`] seals every file of the trees it is given as an exposure of its own
//! and a catalog naming them ([`crate::catalog`]), all to be served on one port
//! through a [`crate::router::Router`] ([`serve`]); the catalog's ticket names the
//! set. [`fetch`] pulls the catalog, checks every path in it, then pulls the files
//! one at a time (or several at once, each over its own socket), each verified
//! against the root the catalog pins and resumable ([`pull_file`]), and restores
//! modes and times. What happens on the way is reported as [`FilesEvent`]s to a
//! [`FilesProgress`]; failures are [`FilesError`]s of an [`ErrorKind`].

mod get;
mod pull;
mod send;
mod types;

pub use get::{fetch, sources, Fetched, GetOptions};
pub use pull::{
    pull_discard, pull_file, NoProgress, NotPulled, PullFileError, PullJob, PullProgress, Pulled,
};
pub use send::{prepare, serve, serve_with, Prepared, SendOptions};
pub use types::{
    pull_failure, ErrorKind, FilesError, FilesEvent, FilesProgress, PullCaps, ServeCaps,
};
