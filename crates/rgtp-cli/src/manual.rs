//! `rgtp man` and `rgtp completions`: manual pages and shell completion scripts,
//! both made from the same argument definitions as `--help`, so they never drift
//! from what the command accepts.

use std::io::Write;
use std::path::{Path, PathBuf};

use clap::Args;
use clap_complete::Shell;
use rgtp_cli::exit;

/// Exit statuses of every command (README: "Exit status").
const EXIT_STATUS: &[(u8, &str)] = &[
    (0, "complete and verified"),
    (exit::USAGE, "bad ticket or arguments"),
    (
        exit::TIMEOUT,
        "no answer (exposer unreachable, wrong Exposure_ID), or the transfer stalled",
    ),
    (
        exit::AUTH,
        "authentication failure: chunks failed the AEAD (wrong key)",
    ),
    (
        exit::MERKLE,
        "Merkle verification failure: the data does not match the exposure's root",
    ),
    (
        exit::IO,
        "disk or file error, including an exposure larger than the free space or --max-size",
    ),
    (exit::PROTOCOL, "other protocol failure"),
];

/// Environment variables the command reads.
const ENVIRONMENT: &[(&str, &str)] = &[
    (
        "RGTP_KEY",
        "pre-shared key for `expose --key` and `send --key` (64 hex digits)",
    ),
    (
        "RGTP_LOG",
        "log filter for standard error (default: warn; e.g. RGTP_LOG=rgtp=debug)",
    ),
    (
        "TMPDIR",
        "where `pull -o -` holds the pull until its root is verified",
    ),
];

/// What `rgtp --help` says after the commands: exit statuses and the environment
/// (the manual page has them as sections of their own).
pub fn after_help() -> String {
    let mut s = String::from("Exit status:\n");
    for (code, what) in EXIT_STATUS {
        s += &format!("  {code}  {what}\n");
    }
    s += "\nEnvironment:\n";
    for (name, what) in ENVIRONMENT {
        s += &format!("  {name:<9} {what}\n");
    }
    s += "\n`rgtp man [COMMAND]` prints a manual page; `rgtp completions SHELL` a completion script.";
    s
}

/// `rgtp man`.
#[derive(Args, Debug)]
pub struct ManArgs {
    /// The command whose page to print (`pull`, `tej serve`, …); none: rgtp(1).
    pub command: Vec<String>,
    /// Write every page (rgtp.1, rgtp-pull.1, rgtp-tej-serve.1, …) into DIR instead.
    #[arg(long, value_name = "DIR", conflicts_with = "command")]
    pub dir: Option<PathBuf>,
}

/// `rgtp completions`.
#[derive(Args, Debug)]
pub struct CompletionsArgs {
    /// bash, zsh, fish, elvish or powershell.
    pub shell: Shell,
}

/// Prints the page of `a.command` under `root`, or writes them all into `a.dir`.
pub fn man(root: clap::Command, a: ManArgs) -> Result<(), (u8, String)> {
    let mut root = root.disable_help_subcommand(true);
    root.build();
    if let Some(dir) = a.dir {
        return write_all(root, &dir);
    }
    let mut cmd = root;
    for (depth, word) in a.command.iter().enumerate() {
        let Some(sub) = cmd.find_subcommand(word).cloned() else {
            let path: Vec<&str> = std::iter::once("rgtp")
                .chain(a.command[..depth].iter().map(String::as_str))
                .collect();
            let names: Vec<&str> = cmd.get_subcommands().map(|c| c.get_name()).collect();
            let known = if names.is_empty() {
                "it has none".to_string()
            } else {
                format!("its commands are {}", names.join(", "))
            };
            return Err((
                exit::USAGE,
                format!("`{}` has no command {word:?}: {known}", path.join(" ")),
            ));
        };
        cmd = sub;
    }
    let mut out = std::io::stdout().lock();
    render(cmd, a.command.is_empty(), &mut out)
        .and_then(|()| out.flush())
        .map_err(|e| (exit::IO, format!("writing to standard output: {e}")))
}

/// One page in roff. The main page has sections of its own for the exit statuses
/// and the environment (in place of `--help`'s closing text); every other page
/// points back at it.
fn render(cmd: clap::Command, main: bool, w: &mut dyn Write) -> std::io::Result<()> {
    let examples = cmd.get_after_long_help().map(|h| h.to_string());
    let cmd = cmd.after_long_help(None::<&str>);
    let cmd = if main { cmd.version(None::<&str>) } else { cmd };
    clap_mangen::Man::new(cmd)
        .source(format!("rgtp {}", env!("CARGO_PKG_VERSION")))
        .manual("rgtp manual")
        .render(w)?;
    if main {
        writeln!(w, ".SH \"EXIT STATUS\"")?;
        for (code, what) in EXIT_STATUS {
            writeln!(w, ".TP\n.B {code}\n{}", roff_text(what))?;
        }
        writeln!(w, ".SH ENVIRONMENT")?;
        for (name, what) in ENVIRONMENT {
            writeln!(w, ".TP\n.B {}\n{}", roff_text(name), roff_text(what))?;
        }
    } else {
        if let Some(examples) = examples {
            writeln!(w, ".SH EXAMPLES")?;
            examples_roff(&examples, w)?;
        }
        writeln!(w, ".SH \"SEE ALSO\"\n.BR rgtp (1)")?;
    }
    Ok(())
}

/// [`examples`] text in roff: each run of `#` lines a paragraph, each run of
/// command lines indented and unfilled.
fn examples_roff(text: &str, w: &mut dyn Write) -> std::io::Result<()> {
    let mut in_code = false;
    let mut in_prose = false;
    for line in text.lines().skip(1).map(str::trim) {
        if let Some(prose) = line.strip_prefix('#') {
            if in_code {
                writeln!(w, ".fi\n.RE")?;
                in_code = false;
            }
            if !in_prose {
                writeln!(w, ".PP")?;
                in_prose = true;
            }
            writeln!(w, "{}", roff_text(prose.trim()))?;
        } else if !line.is_empty() {
            if !in_code {
                writeln!(w, ".RS 4\n.nf")?;
                in_code = true;
            }
            in_prose = false;
            writeln!(w, "{}", roff_text(line))?;
        }
    }
    if in_code {
        writeln!(w, ".fi\n.RE")?;
    }
    Ok(())
}

/// Plain text as a roff text line: backslashes, hyphens (which roff may turn into
/// other dashes) and apostrophes escaped.
fn roff_text(s: &str) -> String {
    s.replace('\\', "\\e")
        .replace('-', "\\-")
        .replace('\'', "\\(aq")
}

/// Every page, `rgtp.1` and one per command at any depth (`rgtp-tej-serve.1`).
fn write_all(root: clap::Command, dir: &Path) -> Result<(), (u8, String)> {
    fn pages(cmd: &clap::Command, main: bool, dir: &Path, n: &mut usize) -> std::io::Result<()> {
        let name = cmd.get_display_name().unwrap_or(cmd.get_name());
        let mut file =
            std::io::BufWriter::new(std::fs::File::create(dir.join(format!("{name}.1")))?);
        render(cmd.clone(), main, &mut file)?;
        file.flush()?;
        *n += 1;
        for sub in cmd.get_subcommands().filter(|s| !s.is_hide_set()) {
            pages(sub, false, dir, n)?;
        }
        Ok(())
    }
    std::fs::create_dir_all(dir).map_err(|e| {
        (
            exit::IO,
            format!(
                "cannot make {}: {e} (check the path and its permissions)",
                dir.display()
            ),
        )
    })?;
    let mut n = 0;
    pages(&root, true, dir, &mut n).map_err(|e| {
        (
            exit::IO,
            format!("writing the pages into {}: {e}", dir.display()),
        )
    })?;
    eprintln!(
        "{n} manual pages written to {} (read one with `man -l {}/rgtp-pull.1`)",
        dir.display(),
        dir.display()
    );
    Ok(())
}

/// Prints the completion script for `a.shell`.
pub fn completions(mut root: clap::Command, a: CompletionsArgs) -> Result<(), (u8, String)> {
    let mut out = std::io::stdout().lock();
    clap_complete::generate(a.shell, &mut root, "rgtp", &mut out);
    out.flush()
        .map_err(|e| (exit::IO, format!("writing to standard output: {e}")))
}

/// The examples each command's `--help` ends with, and its manual page's EXAMPLES
/// section. Every line that is not a `#` comment holds an `rgtp` command line that
/// parses (a unit test of the command checks them all).
pub mod examples {
    /// `rgtp expose`.
    pub const EXPOSE: &str = "\
Examples:
  # Serve a file on UDP port 9000; hand the ticket it prints to the pullers
  rgtp expose big.iso
  # Reed-Solomon parity for a lossy path, and proofs for pullers that check as they go
  rgtp expose big.iso --fec rs:20,16 --proofs
  # The same ticket after a restart, so pullers resume where they were
  RGTP_KEY=$(cat key.hex) rgtp expose big.iso
  # What a pipeline writes (read to its end first: sealing needs all of it)
  tar c photos | rgtp expose -";

    /// `rgtp pull`.
    pub const PULL: &str = "\
Examples:
  # Pull into a file, verified; the same command after a failure resumes it
  rgtp pull \"$TICKET\" -o big.iso
  # From a second exposer of the same file at once, at most 50 MB/s in all
  rgtp pull \"$TICKET\" -o big.iso --from 10.0.0.2:9000 --max-rate 50MB/s
  # Check Merkle proofs as chunks arrive, and keep a capture for `rgtp inspect`
  rgtp pull \"$TICKET\" -o big.iso --proofs --record pull.pcap
  # To standard output, once the whole is verified
  rgtp pull \"$TICKET\" -o - | tar x";

    /// `rgtp send`.
    pub const SEND: &str = "\
Examples:
  # A directory tree and a file as one set; prints one ticket for `rgtp get`
  rgtp send photos notes.txt
  # At most 100 MB/s, with a fixed key so that receivers resume after a restart
  RGTP_KEY=$(cat key.hex) rgtp send photos --max-rate 100MB/s";

    /// `rgtp get`.
    pub const GET: &str = "\
Examples:
  # Fetch the set into ~/incoming (made if missing); run again to resume
  rgtp get \"$TICKET\" ~/incoming
  # Four files at a time, retrying each while the sender is away
  rgtp get \"$TICKET\" ~/incoming --parallel-files 4 --retries 5";

    /// `rgtp inspect`.
    pub const INSPECT: &str = "\
Examples:
  # Packets by type, requests, loss, RTT and malformed packets, per exposure
  rgtp inspect pull.pcap
  # Decrypt and verify with the ticket, and write what the capture holds
  rgtp inspect pull.pcap --ticket \"$TICKET\" -o recovered.bin
  # A live capture, summarised when tcpdump stops
  tcpdump -i eth0 -w - udp port 9000 | rgtp inspect - --json";

    /// `rgtp replay`.
    pub const REPLAY: &str = "\
Examples:
  # Feed a puller's capture to a fresh puller: rebuilds and verifies the file
  rgtp replay pull.pcap --ticket \"$TICKET\" -o rebuilt.bin
  # Feed an exposer's capture (`rgtp expose --record expose.pcap`, which also wrote
  # expose.pcap.secret) to an exposer rebuilt from the file, and compare its answers
  rgtp replay expose.pcap --ticket \"$TICKET\" --source big.iso";

    /// `rgtp demo`.
    pub const DEMO: &str = "\
Examples:
  # 1 GiB ten times: median, lowest and highest goodput and seal rate
  rgtp demo --size 1GiB --runs 10
  # With parity and proofs, as one JSON object
  rgtp demo --fec rs:20,16 --proofs --json";

    /// Every command's examples, with the command they belong to.
    #[cfg(test)]
    pub const ALL: &[(&str, &str)] = &[
        ("expose", EXPOSE),
        ("pull", PULL),
        ("send", SEND),
        ("get", GET),
        ("inspect", INSPECT),
        ("replay", REPLAY),
        ("demo", DEMO),
    ];
}
