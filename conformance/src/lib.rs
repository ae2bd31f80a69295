//! `rgtp-conformance`: a conformance suite for any RGTP v1 implementation, in the manner
//! of h2spec and quic-interop-runner. Numbered cases, each tied to a MUST or SHOULD of
//! `spec/rgtp-v1.md`, run against a live exposer (black-box, over UDP or raw Ethernet),
//! a puller program (the harness plays an adversarial exposer), a librgtp.so (C ABI),
//! the published Python package, or a recorded transfer (a pcap judged offline, exposer
//! and puller separately); results go to a table, JUnit XML, JSON and a static HTML
//! page, and, per case, to evidence ([`evidence`]: the expectation, the observation and
//! a pcap of the case's traffic).
#![warn(missing_docs)]

pub mod adversary;
pub mod cases;
pub mod command;
pub mod evidence;
pub mod faulty;
pub mod html;
pub mod matrix;
pub mod net;
pub mod reference;
pub mod relay;
pub mod report;
pub mod select;
pub mod verdict;

use std::collections::BTreeSet;
use std::net::SocketAddr;
use std::path::Path;
use std::time::Duration;

pub use select::Selection;
pub use verdict::{Level, Outcome, Target, Verdict};

/// Exit status when every MUST case passed.
pub const EXIT_OK: i32 = 0;
/// Exit status when a MUST case failed.
pub const EXIT_MUST_FAILED: i32 = 1;
/// Exit status for usage errors.
pub const EXIT_USAGE: i32 = 2;
/// Exit status when a requested target is not available in this build (every target
/// is available at present; kept for builds without one).
pub const EXIT_UNAVAILABLE: i32 = 64;

/// Runs the exposer cases against the exposer at UDP `addr` serving `ticket`'s exposure.
pub fn run_exposer(
    addr: SocketAddr,
    ticket: rgtp::Ticket,
    quiet: Duration,
    sel: &Selection,
) -> Vec<Outcome> {
    run_exposer_on(net::Endpoint::udp(addr), ticket, quiet, sel)
}

/// Runs the exposer cases against the exposer at `endpoint` (UDP or raw Ethernet).
pub fn run_exposer_on(
    endpoint: net::Endpoint,
    ticket: rgtp::Ticket,
    quiet: Duration,
    sel: &Selection,
) -> Vec<Outcome> {
    match cases::exposer::ExposerCtx::connect_to(endpoint, ticket, quiet) {
        Ok(ctx) => cases::run_cases(Target::Exposer, cases::exposer::CASES, &ctx, sel),
        Err(e) => cases::all_with(
            Target::Exposer,
            cases::exposer::CASES,
            sel,
            Verdict::Fail,
            &format!("setup: {e}"),
        ),
    }
}

/// How to start a foreign exposer by command (see [`command`]).
#[derive(Debug, Clone)]
pub struct ExposerCommand {
    /// The command template, with `{file}` and `{port}`.
    pub template: String,
    /// Read the ticket from the first line of this file instead of standard output.
    pub ticket_file: Option<std::path::PathBuf>,
    /// Bytes of the file the harness makes for it.
    pub size: usize,
    /// How long to wait for the ticket.
    pub start_timeout: Duration,
}

/// The address to reach a ticket's exposer at from this host: the ticket's, with an
/// unspecified host (`0.0.0.0`, `[::]`) read as loopback.
pub fn reachable(ticket: &rgtp::Ticket) -> Result<SocketAddr, String> {
    let mut a = ticket.socket_addr().map_err(|e| e.to_string())?;
    if a.ip().is_unspecified() {
        a.set_ip(match a {
            SocketAddr::V4(_) => std::net::Ipv4Addr::LOCALHOST.into(),
            SocketAddr::V6(_) => std::net::Ipv6Addr::LOCALHOST.into(),
        });
    }
    Ok(a)
}

/// Starts the exposer command on a file the harness makes, runs the exposer cases
/// against the ticket it gives, then kills it. An exposer command that exits 127 before
/// giving a ticket makes every case n/a; one that fails otherwise fails every case.
pub fn run_exposer_cmd(cmd: &ExposerCommand, quiet: Duration, sel: &Selection) -> Vec<Outcome> {
    let all =
        |v: Verdict, d: &str| cases::all_with(Target::Exposer, cases::exposer::CASES, sel, v, d);
    let dir = match tempfile::Builder::new()
        .prefix("rgtp-conformance-")
        .tempdir()
    {
        Ok(d) => d,
        Err(e) => return all(Verdict::Fail, &format!("setup: scratch dir: {e}")),
    };
    let file = dir.path().join("exposed.bin");
    if let Err(e) = std::fs::write(&file, cases::puller::data(cmd.size, 0x5eed)) {
        return all(Verdict::Fail, &format!("setup: writing the file: {e}"));
    }
    let port = match command::free_udp_port() {
        Ok(p) => p,
        Err(e) => return all(Verdict::Fail, &format!("setup: no free port: {e}")),
    };
    let launched = command::launch_exposer(
        &cmd.template,
        &file,
        port,
        cmd.ticket_file.as_deref(),
        cmd.start_timeout,
        dir.path(),
        "exposer",
    );
    let launched = match launched {
        Ok(l) => l,
        Err(e @ command::LaunchError::Unsupported) => return all(Verdict::Skip, &e.to_string()),
        Err(e) => return all(Verdict::Fail, &format!("setup: {e}")),
    };
    let addr = match reachable(&launched.ticket) {
        Ok(a) => a,
        Err(e) => return all(Verdict::Fail, &format!("setup: the ticket's address: {e}")),
    };
    let out = run_exposer(addr, launched.ticket.clone(), quiet, sel);
    drop(launched);
    out
}

/// Runs the puller cases against the command `cmd` (`{ticket}`, `{out}` placeholders).
pub fn run_puller(cmd: &str, timeout: Duration, size: usize, sel: &Selection) -> Vec<Outcome> {
    let dir = match tempfile::Builder::new()
        .prefix("rgtp-conformance-")
        .tempdir()
    {
        Ok(d) => d,
        Err(e) => {
            return cases::all_with(
                Target::Puller,
                cases::puller::CASES,
                sel,
                Verdict::Fail,
                &format!("scratch dir: {e}"),
            )
        }
    };
    let ctx = cases::puller::PullerCtx {
        cmd: cmd.to_string(),
        timeout,
        size,
        dir: dir.path().to_path_buf(),
    };
    cases::run_cases(Target::Puller, cases::puller::CASES, &ctx, sel)
}

/// A server command to test (`rgtp-conformance gtudp|tej --cmd`).
pub struct ServerCommand<'a> {
    /// The shell command; `{port}` becomes a port on 127.0.0.1 that was free.
    pub template: &'a str,
    /// A free port of the right kind.
    pub port: u16,
    /// Seconds to wait for it to answer.
    pub start_timeout: Duration,
}

/// Starts `cmd`, waits until `ready(addr)` says it answers, runs `cases` against it
/// with the context `ctx(addr)`, and kills it.
pub fn run_server_cmd<C>(
    target: Target,
    cases: &[cases::Case<C>],
    cmd: &ServerCommand<'_>,
    ready: impl Fn(SocketAddr) -> bool,
    ctx: impl FnOnce(SocketAddr) -> C,
    sel: &Selection,
) -> Vec<Outcome> {
    let all = |v: Verdict, d: &str| cases::all_with(target, cases, sel, v, d);
    let dir = match tempfile::Builder::new()
        .prefix("rgtp-conformance-")
        .tempdir()
    {
        Ok(d) => d,
        Err(e) => return all(Verdict::Fail, &format!("setup: scratch dir: {e}")),
    };
    let addr = SocketAddr::from(([127, 0, 0, 1], cmd.port));
    let server = command::launch_server(
        cmd.template,
        cmd.port,
        || ready(addr),
        cmd.start_timeout,
        dir.path(),
        target.name(),
    );
    let server = match server {
        Ok(s) => s,
        Err(e @ command::LaunchError::Unsupported) => return all(Verdict::Skip, &e.to_string()),
        Err(e) => return all(Verdict::Fail, &format!("setup: {e}")),
    };
    let out = cases::run_cases(target, cases, &ctx(addr), sel);
    drop(server);
    out
}

/// Runs the ABI cases against the library at `lib`.
pub fn run_abi(lib: &Path, sel: &Selection) -> Vec<Outcome> {
    match cases::abi::Api::load(lib) {
        Ok(api) => cases::run_cases(
            Target::Abi,
            cases::abi::CASES,
            &cases::abi::AbiCtx { api },
            sel,
        ),
        Err(e) => cases::all_with(Target::Abi, cases::abi::CASES, sel, Verdict::Fail, &e),
    }
}

/// Runs the Python cases: the published package from `python` (or a venv at `venv`) on `lib`.
pub fn run_python(lib: &Path, python: Option<&Path>, venv: &Path, sel: &Selection) -> Vec<Outcome> {
    let ctx = match cases::python::ensure_venv(python, venv) {
        Ok(py) => cases::python::run_driver(&py, lib, sel),
        Err(e) => {
            return cases::all_with(
                Target::Python,
                cases::python::CASES,
                sel,
                Verdict::Skip,
                &format!("no Python with rgtp 1.0.0: {e}"),
            )
        }
    };
    cases::run_cases(Target::Python, cases::python::CASES, &ctx, sel)
}

/// Runs the capture cases against a capture already read and analysed.
pub fn run_capture(ctx: &cases::capture::CaptureCtx, sel: &Selection) -> Vec<Outcome> {
    cases::run_cases(Target::Capture, cases::capture::CASES, ctx, sel)
}

/// Reads the capture file at `path` and runs the capture cases on it.
pub fn run_capture_file(
    path: &Path,
    opts: cases::capture::CaptureOptions,
    sel: &Selection,
) -> Result<(cases::capture::CaptureCtx, Vec<Outcome>), String> {
    let bytes = std::fs::read(path).map_err(|e| format!("cannot read {}: {e}", path.display()))?;
    let ctx = cases::capture::CaptureCtx::new(&bytes, opts)
        .map_err(|e| format!("{}: {e}", path.display()))?;
    let out = run_capture(&ctx, sel);
    Ok((ctx, out))
}

/// Ids of the failed cases.
pub fn failing_ids(outcomes: &[Outcome]) -> BTreeSet<String> {
    outcomes
        .iter()
        .filter(|o| o.verdict == Verdict::Fail)
        .map(|o| o.info.id.to_string())
        .collect()
}
