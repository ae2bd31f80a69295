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
    let cmd = if main {
        cmd.after_long_help(None::<&str>).version(None::<&str>)
    } else {
        cmd
    };
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
        writeln!(w, ".SH \"SEE ALSO\"\n.BR rgtp (1)")?;
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
