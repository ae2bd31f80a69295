//! One resumable pull into a file, as `rgtp pull` and `rgtp get` run it
//! ([`rgtp::files::pull_file`]), with a progress bar, and the exit statuses of the
//! library's failures.

use std::time::Duration;

use indicatif::ProgressBar;
use rgtp::driver::PullFailure;
use rgtp::files::{ErrorKind, FilesError, PullProgress};
use rgtp::Ticket;
use rgtp_proto::puller::PullError;
use rgtp_proto::PullerStats;

use crate::exit;

pub use rgtp::files::{pull_file, NotPulled, PullFileError, PullJob, Pulled};

/// A pull's progress on a bar; retries are told on standard error unless `quiet`.
pub struct BarProgress<'a> {
    /// The bar.
    pub bar: &'a ProgressBar,
    /// Print nothing but errors.
    pub quiet: bool,
}

impl PullProgress for BarProgress<'_> {
    fn update(&self, done: u64, total: u64, s: &PullerStats) {
        self.bar.set_length(total);
        self.bar.set_position(done);
        self.bar.set_message(format!(
            "rtt {:.1} ms, loss {:.1}%",
            s.srtt_us as f64 / 1000.0,
            s.loss_rate * 100.0
        ));
    }

    fn retrying(&self, error: &PullError, attempt: u32, retries: u32, wait: Duration) {
        if !self.quiet {
            self.bar.suspend(|| {
                eprintln!(
                    "{error}; retry {attempt} of {retries} in {}s",
                    wait.as_secs()
                )
            });
        }
    }
}

/// The exit status of a failure of `kind`.
pub fn exit_status(kind: ErrorKind) -> u8 {
    match kind {
        ErrorKind::Usage => exit::USAGE,
        ErrorKind::Timeout => exit::TIMEOUT,
        ErrorKind::Auth => exit::AUTH,
        ErrorKind::Merkle => exit::MERKLE,
        ErrorKind::Io => exit::IO,
        ErrorKind::Protocol | ErrorKind::Stopped => exit::PROTOCOL,
    }
}

/// The exit status and message of a library failure.
pub fn status(e: FilesError) -> (u8, String) {
    (exit_status(e.kind), e.message)
}

/// The exit status and message for a pull of `ticket` that failed with `e`.
pub fn pull_failure(e: PullFailure, ticket: &Ticket) -> (u8, String) {
    status(rgtp::files::pull_failure(e, ticket))
}
