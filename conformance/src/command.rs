//! The command contract for implementations in any language: an exposer or a puller is
//! a shell command template; the harness fills in the placeholders, starts it, and reads
//! what it says (a ticket on the first line of standard output for an exposer, an exit
//! status and an output file for a puller). Exit status 127 means "unsupported".
//!
//! | placeholder | exposer command | puller command |
//! |---|---|---|
//! | `{file}` | the file to expose (made by the harness) | – |
//! | `{port}` | a UDP port on 127.0.0.1 that was free when the command started | the same, for a puller that binds a given port |
//! | `{ticket}` | – | the ticket to pull |
//! | `{out}` | – | where to write the pulled file |
//! | `{proofs}` | – | `--proofs` where the case needs Merkle proofs, else nothing |
//!
//! Every substituted value is shell-quoted except `{port}` (digits) and `{proofs}`.

use std::io::{BufRead, BufReader, Read};
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::mpsc;
use std::time::{Duration, Instant};

pub use crate::cases::puller::{free_udp_port, quote, UNSUPPORTED};

/// Why an exposer command gave no ticket.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum LaunchError {
    /// It exited with [`UNSUPPORTED`]: the implementation has no exposer (every case n/a).
    Unsupported,
    /// It failed some other way; the text says how.
    Failed(String),
}

impl std::fmt::Display for LaunchError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            LaunchError::Unsupported => write!(
                f,
                "n/a: unsupported by the implementation (exit {UNSUPPORTED})"
            ),
            LaunchError::Failed(s) => f.write_str(s),
        }
    }
}

/// A running exposer command, killed (its whole process group) when dropped.
pub struct Launched {
    child: Child,
    /// The ticket it printed (or wrote to the ticket file).
    pub ticket: rgtp::Ticket,
    /// The ticket exactly as it gave it.
    pub ticket_text: String,
    /// The command line run.
    pub line: String,
    /// Where its standard error goes.
    pub stderr: PathBuf,
    /// Where its standard output goes (after the ticket line).
    pub stdout: PathBuf,
}

impl Launched {
    /// Whether it is still running.
    pub fn running(&mut self) -> bool {
        matches!(self.child.try_wait(), Ok(None))
    }
}

impl Drop for Launched {
    fn drop(&mut self) {
        kill_group(&mut self.child);
    }
}

/// Kills the process group of `child` (started with its own group) and reaps it.
pub fn kill_group(child: &mut Child) {
    if let Ok(None) = child.try_wait() {
        // SAFETY: signals the process group the harness created for this child.
        unsafe {
            libc::kill(-(child.id() as libc::pid_t), libc::SIGKILL);
        }
    }
    let _ = child.wait();
}

/// Substitutes the exposer placeholders `{file}` and `{port}` in `template`.
pub fn exposer_line(template: &str, file: &Path, port: u16) -> String {
    template
        .replace("{file}", &quote(&file.display().to_string()))
        .replace("{port}", &port.to_string())
}

/// Starts the exposer command `template` on `file` and `port` and waits up to `timeout`
/// for its ticket: the first line of its standard output, or, with `ticket_file`, the
/// first line of that file once the command has written it. Its standard output and
/// error are kept in `logs` as `NAME.stdout` and `NAME.stderr`.
pub fn launch_exposer(
    template: &str,
    file: &Path,
    port: u16,
    ticket_file: Option<&Path>,
    timeout: Duration,
    logs: &Path,
    name: &str,
) -> Result<Launched, LaunchError> {
    let line = exposer_line(template, file, port);
    let stderr = logs.join(format!("{name}.stderr"));
    let stdout = logs.join(format!("{name}.stdout"));
    let err = std::fs::File::create(&stderr)
        .map_err(|e| LaunchError::Failed(format!("creating {}: {e}", stderr.display())))?;
    if let Some(f) = ticket_file {
        let _ = std::fs::remove_file(f);
    }
    let mut child = Command::new("sh")
        .arg("-c")
        .arg(&line)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(err)
        .process_group(0)
        .spawn()
        .map_err(|e| LaunchError::Failed(format!("cannot start the exposer command: {e}")))?;
    // The first line goes to the channel, the rest to the stdout file (read on, so
    // that the command never blocks on a full pipe).
    let (tx, rx) = mpsc::channel::<String>();
    let pipe = child.stdout.take().expect("piped");
    let out_path = stdout.clone();
    std::thread::spawn(move || {
        let mut r = BufReader::new(pipe);
        let mut first = String::new();
        let mut log = std::fs::File::create(&out_path).ok();
        if r.read_line(&mut first).unwrap_or(0) > 0 {
            if let Some(l) = log.as_mut() {
                let _ = std::io::Write::write_all(l, first.as_bytes());
            }
            let _ = tx.send(first);
        }
        let mut buf = [0u8; 4096];
        while let Ok(n) = r.read(&mut buf) {
            if n == 0 {
                break;
            }
            if let Some(l) = log.as_mut() {
                let _ = std::io::Write::write_all(l, &buf[..n]);
            }
        }
    });
    let started = Instant::now();
    let text = loop {
        if let Some(f) = ticket_file {
            if let Ok(s) = std::fs::read_to_string(f) {
                if let Some((first, _)) = s.split_once('\n') {
                    break first.trim().to_string();
                }
            }
        } else if let Ok(first) = rx.try_recv() {
            break first.trim().to_string();
        }
        match child.try_wait() {
            Ok(Some(st)) if st.code() == Some(UNSUPPORTED) => return Err(LaunchError::Unsupported),
            Ok(Some(st)) => {
                return Err(LaunchError::Failed(format!(
                    "the exposer command ended ({st}) before giving a ticket{}",
                    tail(&stderr)
                )))
            }
            Ok(None) => {}
            Err(e) => return Err(LaunchError::Failed(format!("waiting for it: {e}"))),
        }
        if started.elapsed() > timeout {
            kill_group(&mut child);
            return Err(LaunchError::Failed(format!(
                "no ticket from the exposer command within {:.0}s{}",
                timeout.as_secs_f64(),
                tail(&stderr)
            )));
        }
        std::thread::sleep(Duration::from_millis(20));
    };
    match text.parse::<rgtp::Ticket>() {
        Ok(ticket) => Ok(Launched {
            child,
            ticket,
            ticket_text: text,
            line,
            stderr,
            stdout,
        }),
        Err(e) => {
            kill_group(&mut child);
            Err(LaunchError::Failed(format!(
                "the exposer command's ticket {:?} does not parse: {e}",
                text.split('#').next().unwrap_or("")
            )))
        }
    }
}

/// ` (last stderr line: …)` of the file at `path`, or nothing when it is empty.
pub fn tail(path: &Path) -> String {
    let s = std::fs::read_to_string(path).unwrap_or_default();
    match s.lines().rev().find(|l| !l.trim().is_empty()) {
        Some(l) => format!(
            " (stderr: {})",
            l.chars()
                .filter(|c| !c.is_control())
                .take(160)
                .collect::<String>()
        ),
        None => String::new(),
    }
}

/// A running server command (gtUDP or TEJ target), killed (its whole process group)
/// when dropped.
pub struct Server {
    child: Child,
    /// The command line run.
    pub line: String,
    /// Where its standard error goes.
    pub stderr: PathBuf,
}

impl Drop for Server {
    fn drop(&mut self) {
        kill_group(&mut self.child);
    }
}

/// Starts the server command `template` with `{port}` replaced by `port` and waits
/// up to `timeout` until `ready()` says it answers (polled every 50 ms). Its standard
/// output and error are kept in `logs` as `NAME.stdout` and `NAME.stderr`. Exit
/// [`UNSUPPORTED`] before it is ready: [`LaunchError::Unsupported`].
pub fn launch_server(
    template: &str,
    port: u16,
    ready: impl Fn() -> bool,
    timeout: Duration,
    logs: &Path,
    name: &str,
) -> Result<Server, LaunchError> {
    let line = template.replace("{port}", &port.to_string());
    let stderr = logs.join(format!("{name}.stderr"));
    let open = |p: &Path| {
        std::fs::File::create(p)
            .map_err(|e| LaunchError::Failed(format!("creating {}: {e}", p.display())))
    };
    let err = open(&stderr)?;
    let out = open(&logs.join(format!("{name}.stdout")))?;
    let child = Command::new("sh")
        .arg("-c")
        .arg(&line)
        .stdin(Stdio::null())
        .stdout(out)
        .stderr(err)
        .process_group(0)
        .spawn()
        .map_err(|e| LaunchError::Failed(format!("cannot start the command: {e}")))?;
    let mut server = Server {
        child,
        line,
        stderr,
    };
    let started = Instant::now();
    loop {
        match server.child.try_wait() {
            Ok(Some(st)) if st.code() == Some(UNSUPPORTED) => return Err(LaunchError::Unsupported),
            Ok(Some(st)) => {
                return Err(LaunchError::Failed(format!(
                    "the command ended ({st}) before it answered{}",
                    tail(&server.stderr)
                )))
            }
            Ok(None) => {}
            Err(e) => return Err(LaunchError::Failed(format!("waiting for it: {e}"))),
        }
        if ready() {
            return Ok(server);
        }
        if started.elapsed() > timeout {
            return Err(LaunchError::Failed(format!(
                "the command did not answer on port {port} within {:.0}s{}",
                timeout.as_secs_f64(),
                tail(&server.stderr)
            )));
        }
        std::thread::sleep(Duration::from_millis(50));
    }
}
