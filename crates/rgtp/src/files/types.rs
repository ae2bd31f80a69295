//! What the files API shares: errors, progress events, rate caps.

use std::fmt;

use rgtp_proto::multi::SourceReport;
use rgtp_proto::puller::PullError;
use rgtp_proto::PullerStats;

use super::pull::NoProgress;
use crate::catalog::CatalogError;
use crate::driver::PullFailure;
use crate::Ticket;

/// What kind of failure a [`FilesError`] is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ErrorKind {
    /// Bad options or ticket.
    Usage,
    /// No answer, or the transfer stalled.
    Timeout,
    /// Chunks failed authentication.
    Auth,
    /// The data does not match the exposure's root.
    Merkle,
    /// File, link or socket I/O.
    Io,
    /// Anything else the protocol reported.
    Protocol,
    /// The stop flag was set.
    Stopped,
}

/// A failure with a message naming the problem and, where there is one, the fix.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FilesError {
    /// What kind.
    pub kind: ErrorKind,
    /// The message.
    pub message: String,
}

impl FilesError {
    /// A failure of `kind` saying `message`.
    pub fn new(kind: ErrorKind, message: impl Into<String>) -> Self {
        Self {
            kind,
            message: message.into(),
        }
    }
}

impl fmt::Display for FilesError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.message)
    }
}

impl std::error::Error for FilesError {}

pub(crate) fn catalog_error(e: CatalogError) -> FilesError {
    match e {
        CatalogError::Io { .. } => FilesError::new(ErrorKind::Io, e.to_string()),
        _ => FilesError::new(ErrorKind::Usage, e.to_string()),
    }
}

/// The failure of a pull of `ticket` that ended with `e`.
pub fn pull_failure(e: PullFailure, ticket: &Ticket) -> FilesError {
    let (kind, message) = match e {
        PullFailure::Protocol(PullError::HandshakeTimeout) => (
            ErrorKind::Timeout,
            format!(
                "no answer from {} (is `rgtp expose` running there, and is the Exposure_ID in the ticket right?)",
                ticket.address()
            ),
        ),
        PullFailure::Protocol(PullError::Timeout) => {
            (ErrorKind::Timeout, "the transfer stalled: the exposer stopped answering".into())
        }
        PullFailure::Protocol(PullError::AuthFailed) => (
            ErrorKind::Auth,
            "chunks failed authentication: the key in the ticket does not match this exposure (or the traffic is forged)".into(),
        ),
        PullFailure::Protocol(PullError::MerkleFailed) => (
            ErrorKind::Merkle,
            "Merkle verification failed: the data does not match the exposure's root; nothing was kept".into(),
        ),
        PullFailure::Protocol(PullError::TooLarge { declared, limit }) => (
            ErrorKind::Io,
            format!("the exposure declares {declared} bytes, more than --max-size {limit}; nothing was written"),
        ),
        PullFailure::Protocol(e) => (ErrorKind::Protocol, format!("{e} (is the exposer an RGTP v1 implementation?)")),
        PullFailure::Io(e) => (ErrorKind::Io, format!("writing the output failed: {e} (check free space and permissions)")),
        PullFailure::Stopped => (ErrorKind::Stopped, "interrupted".into()),
    };
    FilesError { kind, message }
}

/// What [`fetch`](super::get::fetch) reports as it goes. Files are numbered by their place among the
/// catalog's files (`index`); events of one file come in order (started, bytes,
/// done), those of files fetched at once interleave.
#[derive(Debug, Clone)]
pub enum FilesEvent<'a> {
    /// The catalog arrived and was checked: what the set holds.
    Catalog {
        /// Regular files.
        files: usize,
        /// Entries (files, directories, links).
        entries: usize,
        /// Bytes of the files.
        bytes: u64,
    },
    /// A file's pull starts (not sent for a file already in place).
    FileStarted {
        /// Its number.
        index: usize,
        /// Its path in the set.
        path: &'a str,
        /// Its size.
        size: u64,
    },
    /// Bytes of a file verified so far; sent often.
    FileBytes {
        /// Its number.
        index: usize,
        /// Its path in the set.
        path: &'a str,
        /// Bytes so far.
        done: u64,
        /// Its size.
        size: u64,
        /// The puller's counters.
        stats: &'a PullerStats,
    },
    /// The sender did not answer; the file's pull is tried again after `wait_secs`.
    FileRetry {
        /// Its number.
        index: usize,
        /// Its path in the set.
        path: &'a str,
        /// What went wrong, with the retry's number.
        message: String,
        /// Seconds before the retry.
        wait_secs: u64,
    },
    /// A file is complete and in place.
    FileDone {
        /// Its number.
        index: usize,
        /// Its path in the set.
        path: &'a str,
        /// Its bytes.
        bytes: u64,
        /// Seconds its pull took.
        seconds: f64,
        /// Chunks that came from an earlier run.
        resumed_chunks: u64,
        /// It was already in place (same size and time): nothing was pulled.
        skipped: bool,
        /// Bytes of all the files done so far.
        total_done: u64,
        /// What each source delivered.
        sources: &'a [SourceReport],
    },
    /// A file's pull failed; `kept` says what was kept for the next run.
    FileFailed {
        /// Its number.
        index: usize,
        /// Its path in the set.
        path: &'a str,
        /// What was kept, if anything.
        kept: Option<&'a str>,
    },
}

/// Where [`fetch`](super::get::fetch) sends its events; called from the threads pulling the files.
pub trait FilesProgress: Sync {
    /// One event.
    fn on_event(&self, ev: &FilesEvent<'_>);
}

impl FilesProgress for NoProgress {
    fn on_event(&self, _: &FilesEvent<'_>) {}
}

/// Serving-side rate caps (spec §8.3.3), in bytes per second.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct ServeCaps {
    /// Everything served, paced by a token bucket; pullers are told the cap.
    pub max_rate: Option<u64>,
    /// Each puller, told to it in the Manifest.
    pub max_rate_per_connection: Option<u64>,
}

impl ServeCaps {
    /// The cap a puller of an exposure is told: the lowest of the total, the
    /// per-connection cap and `more` (a per-file cap), if any is set.
    pub fn advertised(&self, more: Option<u64>) -> Option<u64> {
        [self.max_rate, self.max_rate_per_connection, more]
            .into_iter()
            .flatten()
            .min()
    }
}

/// Pulling-side rate caps, in bytes per second: the puller asks for no more, so any
/// exposer keeps to them.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct PullCaps {
    /// The whole transfer, shared evenly by the files fetched at once.
    pub max_rate: Option<u64>,
    /// Each file.
    pub max_rate_per_file: Option<u64>,
    /// Each socket (one per file fetched at once).
    pub max_rate_per_connection: Option<u64>,
}

impl PullCaps {
    /// The cap of one file's puller when `at_once` files are fetched at once, each
    /// over its own socket. An exposer's lower cap still applies (spec §8.3.3).
    pub fn per_pull(&self, at_once: usize) -> Option<u64> {
        let share = self.max_rate.map(|t| (t / at_once.max(1) as u64).max(1));
        [share, self.max_rate_per_file, self.max_rate_per_connection]
            .into_iter()
            .flatten()
            .min()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_lowest_cap_is_advertised() {
        assert_eq!(ServeCaps::default().advertised(None), None);
        let c = ServeCaps {
            max_rate: Some(10_000_000),
            max_rate_per_connection: Some(2_000_000),
        };
        assert_eq!(c.advertised(None), Some(2_000_000));
        assert_eq!(c.advertised(Some(500_000)), Some(500_000));
        let total_only = ServeCaps {
            max_rate: Some(3_000_000),
            ..ServeCaps::default()
        };
        assert_eq!(total_only.advertised(Some(5_000_000)), Some(3_000_000));
    }

    #[test]
    fn the_total_is_shared_by_the_files_in_flight() {
        let c = PullCaps {
            max_rate: Some(8_000_000),
            max_rate_per_file: Some(3_000_000),
            max_rate_per_connection: None,
        };
        assert_eq!(c.per_pull(1), Some(3_000_000));
        assert_eq!(c.per_pull(4), Some(2_000_000));
        assert_eq!(PullCaps::default().per_pull(3), None);
        let conn = PullCaps {
            max_rate_per_connection: Some(1_000),
            ..PullCaps::default()
        };
        assert_eq!(conn.per_pull(2), Some(1_000));
    }

    #[test]
    fn pull_failures_have_kinds() {
        let t: Ticket = crate::ExposerBuilder::new()
            .expose(b"x")
            .expect("expose")
            .ticket("127.0.0.1:9".parse().expect("addr"));
        let k = |e| pull_failure(e, &t).kind;
        assert_eq!(
            k(PullFailure::Protocol(PullError::HandshakeTimeout)),
            ErrorKind::Timeout
        );
        assert_eq!(
            k(PullFailure::Protocol(PullError::AuthFailed)),
            ErrorKind::Auth
        );
        assert_eq!(k(PullFailure::Stopped), ErrorKind::Stopped);
        assert!(
            pull_failure(PullFailure::Protocol(PullError::HandshakeTimeout), &t)
                .message
                .contains("127.0.0.1:9")
        );
    }
}
