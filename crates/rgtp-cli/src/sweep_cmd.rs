//! `rgtp sweep`: runs a plan of variants and scenarios on the simulator.

use std::path::PathBuf;
use std::sync::atomic::Ordering;

use clap::{Args, Subcommand};
use indicatif::{ProgressBar, ProgressDrawTarget, ProgressStyle};
use rgtp_lab::{Outcome, Plan, SweepError, SweepOptions};

use super::{exit, CliResult, STOP};

const LONG_ABOUT: &str = "\
Runs every combination of a plan's variants and scenarios, once per seed, on the
deterministic simulator, and writes results.csv, results.json and manifest.json
into --out (default sweep-<name>). Each run is done twice and must give the same
trace hash. Finished runs are appended to runs.jsonl: after Ctrl-C, run the same
command with --resume to finish only the missing runs.

Every axis is a value or a list of values; the run set is their cross product
times the seeds. Example plan:

    name = \"fec-vs-loss\"
    size = \"2MiB\"              # bytes exposed in every run (B, kB, MB, KiB, MiB, ...)
    seeds = [1, 2, 3]
    sample_ms = 10               # step of the per-run time series (virtual time)
    series = \"first-seed\"      # runs with a time series: all, none, first-seed, [ids]

    [variants]
    fec = [\"none\", \"rs:40,32\", \"raptorq:0.25\"]
    cc = \"delay\"                # delay, reno, cubic
    chunk_size = 1024
    proofs = true

    [scenarios]
    loss = [0.0, 0.01, 0.05]     # random loss on the exposer's uplink
    burst = [\"off\", [0.01, 0.2, 0.8]]   # Gilbert-Elliott p, r, loss in bad state
    delay_ms = 10                # one-way, both directions
    jitter_ms = 1
    rate = \"100Mbit/s\"          # uplink rate: bit/s, B/s or \"unlimited\"
    trace = \"none\"              # or Mahimahi trace files (relative to the plan), instead of rate
    queue = \"256KiB\"            # uplink queue
    reorder = 0.0
    duplicate = 0.0
    corrupt = 0.0
    pullers = [1, 4]             # competing pullers behind the shared uplink

Runs the plan (or --series) selects also get series/run-<id>.csv, .svg and .png:
each puller's congestion window, delivery rate and smoothed RTT every sample_ms.
Runs with several pullers get Jain's fairness index of their goodputs (column
jain, fairness.svg); wire_overhead is bytes on the wire per payload byte.
Runs --pcaps selects get pcaps/run-<id>.pcap: every datagram the simulated network
delivered, as UDP between 10.0.0.1:9000 (the exposer) and 10.0.0.2… (the pullers),
stamped with virtual time (`rgtp inspect`, Wireshark with interop/wireshark/rgtp.lua).

`rgtp sweep merge OUT DIR...` joins the directories of --shard runs of one plan.";

/// Arguments of `rgtp sweep`.
#[derive(Args)]
#[command(args_conflicts_with_subcommands = true, after_long_help = LONG_ABOUT)]
pub struct SweepArgs {
    #[command(subcommand)]
    action: Option<SweepAction>,
    /// The plan (TOML).
    plan: Option<PathBuf>,
    /// Output directory (default: sweep-<plan name>).
    #[arg(long)]
    out: Option<PathBuf>,
    /// Runs in parallel (default: available cores).
    #[arg(long)]
    jobs: Option<usize>,
    /// Keep the finished runs in OUT/runs.jsonl and run only the missing ones.
    #[arg(long)]
    resume: bool,
    /// Run only every N-th run starting at I (by run id), as I/N.
    #[arg(long, value_name = "I/N")]
    shard: Option<String>,
    /// Runs that get a time series (window, rate, RTT per puller): all, none,
    /// first-seed, or run ids as 0,4,7 (default: the plan's `series`, else first-seed).
    #[arg(long, value_name = "WHICH")]
    series: Option<String>,
    /// Runs whose delivered datagrams are written as pcaps/run-<id>.pcap: all, none,
    /// first-seed, or run ids as 0,4,7 (default: none).
    #[arg(long, value_name = "WHICH")]
    pcaps: Option<String>,
    /// No progress bar.
    #[arg(short, long)]
    quiet: bool,
}

#[derive(Subcommand)]
enum SweepAction {
    /// Join shard directories of one plan into OUT.
    Merge {
        /// Where the joined results go.
        out: PathBuf,
        /// The shard directories.
        #[arg(required = true)]
        dirs: Vec<PathBuf>,
    },
}

fn code(e: &SweepError) -> u8 {
    match e {
        SweepError::Plan(_) | SweepError::Merge(_) => exit::USAGE,
        SweepError::Io(_) => exit::IO,
        SweepError::Nondeterministic { .. } | SweepError::Setup { .. } => exit::PROTOCOL,
    }
}

fn parse_shard(s: &str) -> Result<(usize, usize), (u8, String)> {
    let bad = || (exit::USAGE, format!("--shard {s}: expected I/N with I < N"));
    let (i, n) = s.split_once('/').ok_or_else(bad)?;
    let (i, n) = (
        i.parse::<usize>().map_err(|_| bad())?,
        n.parse::<usize>().map_err(|_| bad())?,
    );
    if n == 0 || i >= n {
        return Err(bad());
    }
    Ok((i, n))
}

/// Runs `rgtp sweep`.
pub fn run(a: SweepArgs) -> CliResult {
    if let Some(SweepAction::Merge { out, dirs }) = a.action {
        let r = rgtp_lab::merge(&out, &dirs).map_err(|e| (code(&e), e.to_string()))?;
        if let Outcome::Complete { runs } = r {
            eprintln!("merged {runs} runs into {}", out.display());
        }
        return Ok(());
    }
    let Some(path) = a.plan else {
        return Err((
            exit::USAGE,
            "sweep needs a PLAN (see rgtp sweep --help)".into(),
        ));
    };
    let text = std::fs::read_to_string(&path)
        .map_err(|e| (exit::IO, format!("{}: {e}", path.display())))?;
    let base = path.parent().unwrap_or(std::path::Path::new("."));
    let plan = Plan::parse_in(&text, base)
        .map_err(|e| (exit::USAGE, format!("{}: {e}", path.display())))?;
    let out = a
        .out
        .unwrap_or_else(|| PathBuf::from(format!("sweep-{}", plan.name)));
    let mut opts = SweepOptions::new(&out);
    if let Some(j) = a.jobs {
        opts.jobs = j.max(1);
    }
    opts.resume = a.resume;
    opts.shard = a.shard.as_deref().map(parse_shard).transpose()?;
    opts.series = a
        .series
        .as_deref()
        .map(|s| {
            s.parse()
                .map_err(|e| (exit::USAGE, format!("--series {e}")))
        })
        .transpose()?;
    if let Some(p) = a.pcaps.as_deref() {
        opts.pcaps = p
            .parse()
            .map_err(|e| (exit::USAGE, format!("--pcaps {e}")))?;
    }
    super::install_stop_handler();
    opts.stop = Some(&STOP);
    let bar = ProgressBar::new(0);
    if a.quiet {
        bar.set_draw_target(ProgressDrawTarget::hidden());
    }
    bar.set_style(
        ProgressStyle::with_template("{bar:40} {pos}/{len} runs, {elapsed} elapsed, ETA {eta}")
            .expect("valid template"),
    );
    let progress = |done: usize, total: usize| {
        bar.set_length(total as u64);
        bar.set_position(done as u64);
    };
    opts.progress = Some(&progress);
    let r = rgtp_lab::run(&plan, &opts);
    bar.finish_and_clear();
    match r.map_err(|e| (code(&e), e.to_string()))? {
        Outcome::Complete { runs } => {
            if !a.quiet {
                eprintln!("{runs} runs: results in {}", out.display());
            }
            Ok(())
        }
        Outcome::Interrupted { done, total } => {
            eprintln!(
                "rgtp: stopped after {done} of {total} runs; finish with: rgtp sweep {} --out {} --resume",
                path.display(),
                out.display()
            );
            if STOP.load(Ordering::Relaxed) {
                super::die_of_stop_signal();
            }
            Ok(())
        }
    }
}
