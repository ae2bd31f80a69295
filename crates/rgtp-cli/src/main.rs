//! The `rgtp` command: expose a file, pull one, or run a loopback demo.

use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::sync::atomic::{AtomicBool, AtomicI32, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant as StdInstant};

use clap::{CommandFactory, Parser, Subcommand};
use indicatif::{ProgressBar, ProgressStyle};

use rgtp::builder::{DEFAULT_CHUNK_SIZE, DEFAULT_CIPHER, DEFAULT_HASH};
use rgtp::driver::{self, Clock, PullFailure};
use rgtp::{Backend, ExposerBuilder, FecSpec, Ticket};
use rgtp_capture::Recorder;
use rgtp_cli::transfer::{
    pull_failure, pull_file, BarProgress, NotPulled, PullFileError, PullJob, Pulled,
};
use rgtp_link::eth::{EthConfig, EthLink};
use rgtp_link::udp::UdpLink;
use rgtp_link::Link;
use rgtp_proto::cc::Controller;
use rgtp_proto::{CipherId, ExposerStats, HashId, Peer, PullerConfig};

mod demo;
mod gtudp_cmd;
mod manual;
mod stdio;
mod sweep_cmd;

/// Exit statuses, one per kind of failure.
use rgtp_cli::exit;

#[derive(Parser)]
#[command(
    name = "rgtp",
    version,
    about = "Red Giant Transport Protocol: expose and pull files over UDP or raw Ethernet",
    after_long_help = manual::after_help()
)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Seal FILE once and serve it until Ctrl-C; prints the ticket pullers need.
    #[command(after_long_help = manual::examples::EXPOSE)]
    Expose(ExposeArgs),
    /// Pull the exposure a ticket names into OUT, verified.
    #[command(after_long_help = manual::examples::PULL)]
    Pull(PullArgs),
    /// Send files and directory trees as one exposure set; prints the ticket for `get`.
    #[command(after_long_help = manual::examples::SEND)]
    Send(rgtp_cli::files_cmd::SendArgs),
    /// Fetch the files and trees a `send` ticket names into DEST, each verified.
    #[command(after_long_help = manual::examples::GET)]
    Get(rgtp_cli::files_cmd::GetArgs),
    /// Generate data, expose and pull it over loopback UDP in one process, and report.
    #[command(after_long_help = manual::examples::DEMO)]
    Demo(DemoArgs),
    /// Feed a recorded capture into a fresh puller (rebuilds the file) or, with --source,
    /// into an exposer rebuilt from the file, and compare its answers with the recording.
    #[command(after_long_help = manual::examples::REPLAY)]
    Replay(ReplayArgs),
    /// Summarise a capture (pcap or pcapng): per exposure, packets by type, requests,
    /// retransmissions, loss, FEC, RTT, malformed packets; with --ticket, decrypt and verify.
    #[command(after_long_help = manual::examples::INSPECT)]
    Inspect(InspectArgs),
    /// TEJ (tej-protoc v1) over TCP: serve, or send files and a message.
    Tej(rgtp_cli::tej_cmd::TejArgs),
    /// gtUDP: serve, or send files as datagrams confirmed one by one.
    Gtudp(gtudp_cmd::GtudpArgs),
    /// Run a plan of protocol variants and network scenarios on the simulator: CSV, JSON, manifest.
    Sweep(sweep_cmd::SweepArgs),
    /// Flows by name over UDP: echo-server, echo, directory, bind.
    Flow(rgtp_cli::flow_cmd::FlowArgs),
    /// Print the manual page of rgtp or one of its commands (roff, for `man -l -`), or
    /// write them all with --dir.
    Man(manual::ManArgs),
    /// Print a completion script: `rgtp completions bash > /etc/bash_completion.d/rgtp`.
    Completions(manual::CompletionsArgs),
}

#[derive(clap::Args)]
struct InspectArgs {
    /// Capture file: from `rgtp expose/pull --record`, tcpdump -w or tshark -w; `-`
    /// reads standard input (`tcpdump -w - … | rgtp inspect -`, summarised at its end).
    capture: PathBuf,
    /// Decrypt and verify with this ticket (replays the exposer's packets into a puller).
    #[arg(long)]
    ticket: Option<String>,
    /// With --ticket: write the recovered, verified data here.
    #[arg(long, short, requires = "ticket")]
    output: Option<PathBuf>,
    /// Print JSON instead of text.
    #[arg(long)]
    json: bool,
}

#[derive(clap::Args)]
struct ReplayArgs {
    /// Capture file (pcap or pcapng), e.g. from `rgtp pull --record`.
    capture: PathBuf,
    /// The exposure's ticket (for its key, Exposure_ID and the exposer's address).
    #[arg(long)]
    ticket: String,
    /// Puller replay: write the rebuilt file here.
    #[arg(long, short, conflicts_with = "source")]
    output: Option<PathBuf>,
    /// Exposer replay: the file that was exposed; the exposer is rebuilt from it with the
    /// ticket's key and Exposure_ID and the recorded Manifest's suite and chunk size.
    #[arg(long)]
    source: Option<PathBuf>,
    /// Exposer replay: the recorded exposer's token secret (spec §5.3), as `rgtp expose
    /// --record CAPTURE` wrote it to CAPTURE.secret [default: CAPTURE.secret if it exists].
    /// Without it, answers carrying or honouring tokens cannot be reproduced.
    #[arg(
        long,
        value_name = "FILE",
        requires = "source",
        conflicts_with = "token_secret_from_key"
    )]
    token_secret: Option<PathBuf>,
    /// Exposer replay: the recorded exposer derived its token secret from the key (`rgtp
    /// expose --dangerous-token-secret-from-key`, or redgiant before random secrets).
    #[arg(long, requires = "source")]
    token_secret_from_key: bool,
    /// Feed packets at their recorded spacing instead of as fast as possible.
    #[arg(long)]
    as_recorded: bool,
    /// With --as-recorded: play this many times faster.
    #[arg(long, default_value_t = 1.0, requires = "as_recorded")]
    speed: f64,
    /// Print only errors.
    #[arg(long, short)]
    quiet: bool,
}

#[derive(clap::Args)]
struct SuiteArgs {
    /// AEAD: aes-256-gcm (default) or chacha20-poly1305 (upstream default).
    #[arg(long, value_parser = parse_cipher, default_value = DEFAULT_CIPHER.name())]
    cipher: CipherId,
    /// Merkle hash: sha256 (default), blake3 or blake2b-256 (upstream default).
    #[arg(long, value_parser = parse_hash, default_value = DEFAULT_HASH.name())]
    hash: HashId,
    /// FEC: none, rs:N,K (e.g. rs:255,223) or raptorq:OVERHEAD (e.g. raptorq:0.25).
    #[arg(long, default_value = "none")]
    fec: FecSpec,
    /// Prepare the exposure with Merkle proofs: chunks carry theirs, every chunk, or
    /// the first of each aligned run of 64 for a puller that asks for proof runs
    /// (spec §3.6). With `demo`, the pull checks them as `rgtp pull --proofs` does.
    #[arg(long)]
    proofs: bool,
    /// Plaintext bytes per chunk [default: 1200 over UDP, 1400 over raw Ethernet].
    #[arg(long)]
    chunk_size: Option<u32>,
    #[command(flatten)]
    backend: BackendArg,
}

/// Which code computes the AEAD: a local choice, the bytes on the wire are the same.
#[derive(clap::Args)]
struct BackendArg {
    /// AEAD implementation: ring (default; assembly, fastest) or rustcrypto.
    #[arg(long, value_parser = parse_backend, default_value_t = Backend::preferred())]
    cipher_backend: Backend,
}

/// Which link carries the datagrams.
#[derive(Clone, Debug, PartialEq, Eq)]
enum LinkArg {
    /// UDP over IPv4 or IPv6.
    Udp,
    /// Raw Ethernet frames (EtherType 0x88B5) on an interface.
    Eth(String),
}

fn parse_link(s: &str) -> Result<LinkArg, String> {
    match s.split_once(':') {
        None if s == "udp" => Ok(LinkArg::Udp),
        Some(("eth", iface)) if !iface.is_empty() => Ok(LinkArg::Eth(iface.to_string())),
        _ => Err(format!(
            "unknown link {s:?}: use udp, or eth:IFACE for raw Ethernet (e.g. eth:eth0)"
        )),
    }
}

/// Link options shared by expose and pull.
#[derive(clap::Args)]
struct LinkArgs {
    /// udp, or eth:IFACE for raw Ethernet frames (EtherType 0x88B5; needs root or CAP_NET_RAW).
    #[arg(long, value_parser = parse_link, default_value = "udp")]
    link: LinkArg,
    /// Raw Ethernet: tag frames with this 802.1Q VLAN ID (1-4094) and accept only frames of it.
    #[arg(long, value_parser = clap::value_parser!(u16).range(0..=4094))]
    vlan: Option<u16>,
    /// Raw Ethernet: 802.1Q priority (PCP, 0-7) for the TSN traffic class; implies a tag (VLAN 0 if --vlan is not given).
    #[arg(long, value_parser = clap::value_parser!(u8).range(0..=7))]
    pcp: Option<u8>,
    /// Write every datagram sent and received to this pcap file (opens in Wireshark; see `rgtp inspect`).
    #[arg(long, value_name = "FILE")]
    record: Option<PathBuf>,
    /// Spread the transfer over N sockets: a UDP pull sends from N ports, an exposer
    /// serves its port from N threads (UDP: SO_REUSEPORT, the kernel spreads pullers'
    /// ports over them; raw Ethernet: a packet fanout group, pullers spread by MAC
    /// address). Paths that balance by flow then carry it on N flows.
    #[arg(long, default_value_t = 1, value_name = "N",
          value_parser = clap::value_parser!(u32).range(1..=64))]
    channels: u32,
}

impl LinkArgs {
    fn vlan(&self) -> Option<rgtp_link::Vlan> {
        (self.vlan.is_some() || self.pcp.is_some()).then(|| rgtp_link::Vlan {
            id: self.vlan.unwrap_or(0),
            pcp: self.pcp.unwrap_or(0),
            dei: false,
        })
    }

    fn check(&self) -> Result<(), (u8, String)> {
        if self.link == LinkArg::Udp && (self.vlan.is_some() || self.pcp.is_some()) {
            return Err((
                exit::USAGE,
                "--vlan and --pcp tag raw Ethernet frames: use them with --link eth:IFACE (for UDP, use a VLAN interface instead)".into(),
            ));
        }
        Ok(())
    }

    /// The UDP settings of this command's sockets.
    fn udp_config(&self) -> rgtp_link::UdpConfig {
        rgtp_link::UdpConfig {
            reuse_port: self.channels > 1,
            ..Default::default()
        }
    }

    /// Opens the raw-Ethernet link named by `--link eth:IFACE`.
    fn open_eth(&self, iface: &str) -> Result<EthLink, (u8, String)> {
        let mut c = EthConfig::new(iface);
        c.vlan = self.vlan();
        // One fanout group per process: its N links share the interface's frames.
        c.fanout = (self.channels > 1).then(|| std::process::id() as u16);
        EthLink::open(c).map_err(|e| {
            (
                exit::IO,
                format!("cannot open raw Ethernet on {iface}: {e}"),
            )
        })
    }

    /// Wraps `link` in a recorder when `--record` asks for one.
    fn wrap(&self, link: Box<dyn Link>) -> Result<Box<dyn Link>, (u8, String)> {
        match &self.record {
            None => Ok(link),
            Some(path) => Ok(Box::new(
                Recorder::create(link, path).map_err(|e| (exit::IO, e.to_string()))?,
            )),
        }
    }
}

#[derive(clap::Args)]
struct ExposeArgs {
    /// File to expose (mapped, not read into memory first). `-`, a pipe or a device
    /// is read to its end first: sealing needs all of it.
    file: PathBuf,
    /// UDP port to serve on.
    #[arg(long, short, default_value_t = 9000)]
    port: u16,
    /// Address to bind (default all IPv4 interfaces; use :: for IPv6).
    #[arg(long, default_value = "0.0.0.0")]
    bind: IpAddr,
    /// Host to write into the ticket (default: the bound address, or 127.0.0.1 when unspecified).
    #[arg(long)]
    advertise: Option<String>,
    #[command(flatten)]
    caps: rgtp_cli::caps::ServeCaps,
    #[command(flatten)]
    link: LinkArgs,
    #[command(flatten)]
    suite: SuiteArgs,
    /// Derive the address-validation token secret from the key and Exposure_ID instead of
    /// drawing it at random (spec §5.3). Every ticket holder can then mint tokens for any
    /// address and make this exposer flood it: only for tickets kept in a trusted group.
    #[arg(long)]
    dangerous_token_secret_from_key: bool,
    /// Serve requests without address validation, as upstream v1 exposers do. This lifts the
    /// 3x amplification bound: only on networks where source addresses cannot be spoofed.
    #[arg(long)]
    dangerous_serve_unvalidated: bool,
    /// Pre-shared key, 64 hex digits (default: a fresh random key). Also read from RGTP_KEY,
    /// the variable the C library uses, so both can serve one key. With a key given, the
    /// Exposure_ID is derived from the key and the file, so the exposer restarted with
    /// the same file and key prints the same ticket and pullers resume.
    #[arg(long, env = "RGTP_KEY", hide_env_values = true, value_parser = parse_key)]
    key: Option<KeyArg>,
    /// Seal the chunks under the key itself instead of a key derived from it and the
    /// Exposure_ID (spec §6.6), as upstream v1 pullers expect. A key must then never
    /// seal anything else: two exposures under it leak the XOR of their contents and,
    /// with AES-256-GCM, let chunks be forged.
    #[arg(long)]
    dangerous_raw_key: bool,
    /// Copy every datagram into the kernel as it is sent, instead of letting the
    /// kernel take batches of chunks from the sealed store's own pages (the
    /// default, for exposures of 1 MiB and more on UDP): for comparing the two.
    #[arg(long)]
    copy_sends: bool,
    /// Leave the sealed store on the small pages it was sealed on. By default, once
    /// it serves, the exposer moves its store onto transparent huge pages (Linux
    /// 6.1 and later), 2 MiB at a time, from a thread that runs only when a CPU is
    /// idle: each send from the store then finds and pins its bytes in one huge
    /// page instead of 16 or 17 small ones. No byte of the store changes.
    #[arg(long)]
    small_pages: bool,
    /// Print only the ticket.
    #[arg(long, short)]
    quiet: bool,
}

/// A key given on the command line.
#[derive(Clone)]
struct KeyArg([u8; 32]);

fn parse_key(s: &str) -> Result<KeyArg, String> {
    let mut k = [0u8; 32];
    hex::decode_to_slice(s.trim(), &mut k)
        .map_err(|_| "the key must be 64 hex digits (32 bytes)".to_string())?;
    Ok(KeyArg(k))
}

#[derive(clap::Args)]
struct PullArgs {
    /// The ticket `rgtp expose` printed (rgtp://HOST:PORT/ID#KEY).
    ticket: String,
    /// Output file (written as OUT.rgtp-partial, renamed when verified). A pull that
    /// stops before the end keeps OUT.rgtp-partial and OUT.rgtp-state; the same command
    /// run again resumes it, fetching only what is missing. `-o /dev/null` is --discard.
    /// `-o -` writes to standard output, once the whole is verified (held in a file
    /// under $TMPDIR until then, and not resumable).
    #[arg(long, short)]
    output: Option<PathBuf>,
    /// Keep nothing: verify every chunk and the Merkle root as any pull does, then drop
    /// the bytes. Checks that an exposure is whole and measures the path without a disk
    /// in the way; nothing is kept to resume, so a retry starts from the beginning.
    #[arg(long, conflicts_with_all = ["output", "restart"])]
    discard: bool,
    /// Start over: ignore what an earlier, unfinished run of this pull left.
    #[arg(long)]
    restart: bool,
    /// When the exposer cannot be reached or stops answering, try again this many times
    /// (waiting 1, 2, 4, … up to 32 s), keeping what arrived: an exposer restarted with
    /// the same file and key serves the same exposure, and the pull carries on.
    #[arg(long, default_value_t = 0, value_name = "N")]
    retries: u32,
    /// Ask for Merkle proofs, and accept each chunk only once hashes leading to the
    /// root vouch for it: a chunk forged by a key holder costs a re-request instead
    /// of the whole pull. Checked on a second thread, an aligned run of 64 chunks at
    /// a time with one proof a run where the exposer offers proof runs (spec §3.6),
    /// whichever --from source brings them. Without --proofs, the proofs of an
    /// exposure prepared with them (`rgtp expose --proofs`) are checked the same way,
    /// since its exposer sends them anyway. A pull that resumes checks the chunks it
    /// kept with their runs, fetching the first chunk of each again.
    #[arg(long)]
    proofs: bool,
    /// Whenever proofs are checked (--proofs, or an exposure prepared with them): a
    /// proof with every chunk, each checked alone, instead of one a run of 64.
    #[arg(long)]
    no_proof_runs: bool,
    /// Another exposer of the same exposure (HOST:PORT, or its own ticket), pulled
    /// from at the same time as the ticket's; repeat for more. Every chunk is verified
    /// whatever its source; a source that sends chunks failing verification, stops
    /// answering or serves another exposure is dropped and the others carry on. Add
    /// --proofs to catch, chunk by chunk, a source that holds the key and lies.
    #[arg(long, value_name = "SOURCE")]
    from: Vec<String>,
    #[command(flatten)]
    link: LinkArgs,
    /// Do not request FEC parity.
    #[arg(long)]
    no_fec: bool,
    /// Seconds to wait for the exposer's Manifest.
    #[arg(long, default_value_t = 5)]
    connect_timeout: u64,
    /// Seconds without progress before giving up.
    #[arg(long, default_value_t = 10)]
    idle_timeout: u64,
    /// Refuse an exposure whose Manifest declares more than this many bytes
    /// (suffixes k, M, G, KiB, MiB, GiB); exit status 6.
    #[arg(long, value_parser = parse_size)]
    max_size: Option<u64>,
    #[command(flatten)]
    backend: BackendArg,
    #[command(flatten)]
    cc: CcArg,
    #[command(flatten)]
    caps: rgtp_cli::caps::PullCaps,
    /// Scheduling policy of the pull's threads (Linux): batch (the default) runs
    /// them under SCHED_BATCH, as bulk work: the same share of the CPU at the same
    /// nice value, but a burst of arriving packets never preempts the task running,
    /// which saves a context switch per burst when the CPUs are busy (eight pulls
    /// and their exposer on two cores: about 5% more goodput). normal leaves the
    /// policy the command started with (the ordinary one, unless it was started
    /// under `chrt`). Where the system refuses batch, the pull runs as it is.
    #[arg(long, value_enum, value_name = "POLICY", default_value_t = rgtp_cli::sched::Sched::Batch)]
    sched: rgtp_cli::sched::Sched,
    /// No progress bar.
    #[arg(long, short)]
    quiet: bool,
    /// Once the pull is complete, print its counters as one JSON object on standard
    /// output (the last try's, and those of earlier tries when --retries came into play).
    #[arg(long)]
    json: bool,
}

#[derive(clap::Args)]
struct DemoArgs {
    /// Bytes to transfer (suffixes k, M, G, KiB, MiB, GiB).
    #[arg(long, value_parser = parse_size, default_value = "64MiB")]
    size: u64,
    #[command(flatten)]
    suite: SuiteArgs,
    /// Seed for the generated data.
    #[arg(long, default_value_t = 1)]
    seed: u64,
    /// With --proofs: a proof with every chunk, each checked alone, instead of one
    /// a run of 64 (spec §3.6).
    #[arg(long, requires = "proofs")]
    no_proof_runs: bool,
    /// As `rgtp expose --copy-sends`: the exposer copies every datagram into the
    /// kernel instead of lending it the sealed store's pages.
    #[arg(long)]
    copy_sends: bool,
    #[command(flatten)]
    cc: CcArg,
    /// Seal and pull the same data N times, each run in a fresh store and over fresh
    /// sockets, and report each run, then the median, lowest and highest goodput
    /// and seal rate.
    #[arg(long, value_name = "N", default_value_t = 1,
          value_parser = clap::value_parser!(u32).range(1..=1000))]
    runs: u32,
    /// Print one JSON object on stdout instead of the report: the settings, each
    /// run's times and counters, and with more than one run their medians.
    #[arg(long)]
    json: bool,
}

/// The puller's congestion controller: a local choice, nothing on the wire names it.
#[derive(clap::Args)]
struct CcArg {
    /// Congestion controller: delay (default: halves on a standing queue only), reno
    /// (loss-based AIMD, RFC 5681) or cubic (RFC 9438).
    #[arg(long = "cc", value_name = "NAME", value_parser = parse_cc, default_value = Controller::DEFAULT.name)]
    controller: Controller,
}

fn parse_cc(s: &str) -> Result<Controller, String> {
    Controller::by_name(s).ok_or_else(|| {
        format!(
            "unknown congestion controller {s:?}: use one of {}",
            Controller::names()
        )
    })
}

fn parse_cipher(s: &str) -> Result<CipherId, String> {
    CipherId::from_name(s)
        .ok_or_else(|| format!("unknown cipher {s:?}: use aes-256-gcm or chacha20-poly1305"))
}

fn parse_backend(s: &str) -> Result<Backend, String> {
    let b = Backend::from_name(s)
        .ok_or_else(|| format!("unknown cipher backend {s:?}: use ring or rustcrypto"))?;
    if !b.built() {
        return Err(format!(
            "cipher backend {s} is not in this build (cargo feature aead-ring); use rustcrypto"
        ));
    }
    Ok(b)
}

fn parse_hash(s: &str) -> Result<HashId, String> {
    HashId::from_name(s)
        .ok_or_else(|| format!("unknown hash {s:?}: use blake3, sha256 or blake2b-256"))
}

fn parse_size(s: &str) -> Result<u64, String> {
    let s = s.trim();
    let split = s.find(|c: char| !c.is_ascii_digit()).unwrap_or(s.len());
    let (num, unit) = s.split_at(split);
    let n: u64 = num
        .parse()
        .map_err(|_| format!("size {s:?}: expected a number like 64MiB"))?;
    let mul: u64 = match unit.trim().to_ascii_lowercase().as_str() {
        "" | "b" => 1,
        "k" | "kb" => 1_000,
        "m" | "mb" => 1_000_000,
        "g" | "gb" => 1_000_000_000,
        "kib" => 1 << 10,
        "mib" => 1 << 20,
        "gib" => 1 << 30,
        u => return Err(format!("size unit {u:?}: use k, M, G, KiB, MiB or GiB")),
    };
    n.checked_mul(mul)
        .ok_or_else(|| format!("size {s:?} is too large"))
}

fn main() -> ExitCode {
    // Printing into a pipe whose reader is gone (`rgtp demo --json | head`) ends the
    // process quietly, as it does any Unix tool, instead of panicking on the failed
    // print. Sockets keep their errors: the standard library sends on them with
    // MSG_NOSIGNAL, and UDP and packet sockets raise no SIGPIPE.
    // SAFETY: signal(2) with the default disposition, before any thread starts.
    unsafe {
        libc::signal(libc::SIGPIPE, libc::SIG_DFL);
    }
    tracing_subscriber::fmt()
        .with_env_filter(
            // Warnings (a path too small for the datagrams, a socket filter that
            // could not be attached) show unless RGTP_LOG says otherwise.
            tracing_subscriber::EnvFilter::builder()
                .with_default_directive(tracing_subscriber::filter::LevelFilter::WARN.into())
                .with_env_var("RGTP_LOG")
                .from_env_lossy(),
        )
        .with_writer(std::io::stderr)
        .with_ansi(std::io::IsTerminal::is_terminal(&std::io::stderr()))
        .init();
    let cli = Cli::parse();
    let r = match cli.command {
        Command::Expose(a) => expose(a),
        Command::Pull(a) => pull(a),
        Command::Send(a) => {
            install_stop_handler();
            rgtp_cli::files_cmd::send(a, &STOP)
        }
        Command::Get(a) => {
            install_stop_handler();
            let r = rgtp_cli::files_cmd::get(a, &STOP);
            if r.is_err() && STOP.load(Ordering::Relaxed) {
                die_of_stop_signal()
            }
            r
        }
        Command::Demo(a) => demo::run(a),
        Command::Replay(a) => replay(a),
        Command::Inspect(a) => inspect(a),
        Command::Tej(a) => rgtp_cli::tej_cmd::run(a),
        Command::Gtudp(a) => gtudp_cmd::run(a),
        Command::Sweep(a) => sweep_cmd::run(a),
        Command::Flow(a) => {
            install_stop_handler();
            rgtp_cli::flow_cmd::run(a, &STOP)
        }
        Command::Man(a) => manual::man(Cli::command(), a),
        Command::Completions(a) => manual::completions(Cli::command(), a),
    };
    match r {
        Ok(()) => ExitCode::SUCCESS,
        Err((code, msg)) => {
            eprintln!("rgtp: error: {msg}");
            ExitCode::from(code)
        }
    }
}

type CliResult = Result<(), (u8, String)>;

/// Default chunk size over raw Ethernet: a 1400-byte chunk and its 40 bytes of
/// header and tag fit a 1500-byte MTU with room for a proof of depth 1.
const ETH_CHUNK_SIZE: u32 = 1400;

fn builder(
    s: &SuiteArgs,
    default_chunk: u32,
) -> ExposerBuilder<(CipherId, Backend), HashId, FecSpec> {
    ExposerBuilder::new()
        .with_cipher((s.cipher, s.backend.cipher_backend))
        .with_hash(s.hash)
        .with_fec(s.fec)
        .with_proofs(s.proofs)
        .with_chunk_size(s.chunk_size.unwrap_or(default_chunk))
}

/// Refuses a chunk size whose packets would not fit the link (spec §2.12).
fn check_chunk_fits(
    chunk: u32,
    len: u64,
    proofs: bool,
    mtu: usize,
    what: &str,
) -> Result<(), (u8, String)> {
    let chunks = len.div_ceil(u64::from(chunk.max(1))).max(1);
    let depth = if proofs {
        64 - (chunks - 1).leading_zeros() as usize
    } else {
        0
    };
    let overhead = if proofs { 25 + 32 * depth } else { 24 } + 16;
    let packet = chunk as usize + overhead;
    if packet > mtu {
        return Err((
            exit::USAGE,
            format!(
                "chunk packets of {packet} bytes ({chunk}-byte chunks{}) do not fit the {mtu}-byte MTU of {what}: use --chunk-size {} or less",
                if proofs { " with proofs" } else { "" },
                mtu.saturating_sub(overhead)
            ),
        ));
    }
    Ok(())
}

static STOP: AtomicBool = AtomicBool::new(false);
/// The signal that set [`STOP`].
static STOP_SIGNAL: AtomicI32 = AtomicI32::new(0);

extern "C" fn on_signal(sig: libc::c_int) {
    STOP_SIGNAL.store(sig, Ordering::Relaxed);
    STOP.store(true, Ordering::Relaxed);
}

/// The first SIGINT does nothing, a second one ends the process as usual. For a
/// reader at the end of a pipeline (`tcpdump -w - | rgtp inspect -`): Ctrl-C reaches
/// every process of it, and this one must outlast the writer to read to the end.
fn outlast_one_interrupt() {
    extern "C" fn ignore(_: libc::c_int) {}
    // SAFETY: a handler that does nothing is async-signal-safe; the struct is zeroed
    // (an empty mask) before the handler and flags are set.
    unsafe {
        let mut action: libc::sigaction = std::mem::zeroed();
        action.sa_sigaction = ignore as extern "C" fn(libc::c_int) as libc::sighandler_t;
        action.sa_flags = libc::SA_RESETHAND | libc::SA_RESTART;
        libc::sigaction(libc::SIGINT, &action, std::ptr::null_mut());
    }
}

/// Dies of the signal that stopped us, as if it had never been caught, once
/// cleanup is done (so the shell sees the usual interrupted status).
fn die_of_stop_signal() -> ! {
    let sig = match STOP_SIGNAL.load(Ordering::Relaxed) {
        0 => libc::SIGTERM,
        s => s,
    };
    // SAFETY: restoring the default disposition and raising a signal are plain libc calls.
    unsafe {
        libc::signal(sig, libc::SIG_DFL);
        libc::raise(sig);
    }
    std::process::exit(128 + sig)
}

fn install_stop_handler() {
    let handler: extern "C" fn(libc::c_int) = on_signal;
    // SAFETY: the handler only stores to an atomic, which is async-signal-safe.
    unsafe {
        libc::signal(libc::SIGINT, handler as libc::sighandler_t);
        libc::signal(libc::SIGTERM, handler as libc::sighandler_t);
    }
}

/// Where `rgtp expose --record FILE` keeps the token secret: `FILE.secret`.
fn secret_path(record: &Path) -> PathBuf {
    let mut p = record.as_os_str().to_owned();
    p.push(".secret");
    PathBuf::from(p)
}

/// Writes the token secret as 64 hex digits and a newline, readable by its owner only
/// (spec §16.1): with it, `rgtp replay --source` reproduces the recorded answers.
fn write_token_secret(path: &Path, secret: &[u8; 32]) -> CliResult {
    use std::io::Write;
    use std::os::unix::fs::{OpenOptionsExt, PermissionsExt};
    let fail = |e: std::io::Error| {
        (
            exit::IO,
            format!("cannot write the token secret to {}: {e}", path.display()),
        )
    };
    let mut f = std::fs::OpenOptions::new()
        .write(true)
        .create(true)
        .truncate(true)
        .mode(0o600)
        .open(path)
        .map_err(fail)?;
    // An existing file keeps its mode on open: tighten it before writing.
    f.set_permissions(std::fs::Permissions::from_mode(0o600))
        .map_err(fail)?;
    writeln!(f, "{}", hex::encode(secret)).map_err(fail)
}

/// Reads a token secret file written by `rgtp expose --record`.
fn read_token_secret(path: &Path) -> Result<[u8; 32], (u8, String)> {
    let text = std::fs::read_to_string(path).map_err(|e| {
        (
            exit::IO,
            format!("cannot read the token secret {}: {e}", path.display()),
        )
    })?;
    let mut secret = [0u8; 32];
    hex::decode_to_slice(text.trim(), &mut secret).map_err(|_| {
        (
            exit::USAGE,
            format!(
                "{}: a token secret is 64 hex digits (as `rgtp expose --record` writes it)",
                path.display()
            ),
        )
    })?;
    Ok(secret)
}

fn expose(a: ExposeArgs) -> CliResult {
    a.link.check()?;
    if a.link.channels > 1 && a.link.record.is_some() {
        return Err((
            exit::USAGE,
            "--record captures one socket: record with --channels 1, or capture the port with tcpdump".into(),
        ));
    }
    let (input, len) = stdio::input(&a.file)?;
    let data: &[u8] = &input;
    let (link, where_): (Box<dyn Link>, Peer) = match &a.link.link {
        LinkArg::Udp => {
            let addr = SocketAddr::new(a.bind, a.port);
            let link = UdpLink::bind_with(addr, a.link.udp_config()).map_err(|e| {
                (
                    exit::IO,
                    format!(
                        "cannot bind UDP {addr}: {e} (is the port in use? try --port 0 for any free port)"
                    ),
                )
            })?;
            let local = link.local_addr();
            (Box::new(link), Peer::Ip(local))
        }
        LinkArg::Eth(iface) => {
            let link = a.link.open_eth(iface)?;
            let mac = link.mac();
            (Box::new(link), Peer::Ethernet(mac))
        }
    };
    let default_chunk = match a.link.link {
        LinkArg::Udp => DEFAULT_CHUNK_SIZE,
        LinkArg::Eth(_) => ETH_CHUNK_SIZE,
    };
    let caps = link.capabilities();
    if let LinkArg::Eth(iface) = &a.link.link {
        check_chunk_fits(
            a.suite.chunk_size.unwrap_or(default_chunk),
            len,
            a.suite.proofs,
            caps.mtu,
            iface,
        )?;
    }
    let mut link = a.link.wrap(link)?;
    let started = StdInstant::now();
    let config = rgtp_proto::ExposerConfig {
        dangerous_serve_unvalidated: a.dangerous_serve_unvalidated,
        rate_cap: a.caps.advertised(None),
        ..rgtp_proto::ExposerConfig::for_link(&caps)
    };
    let mut b = builder(&a.suite, default_chunk).with_config(config);
    if let Some(KeyArg(k)) = &a.key {
        // A chosen key: the same file and key make the same exposure after a restart,
        // so the ticket stays valid and pullers resume (spec §6.1).
        b = b
            .with_key(rgtp_proto::Key::from_bytes(*k))
            .with_stable_exposure_id();
    }
    if a.dangerous_token_secret_from_key {
        b = b.dangerous_token_secret_from_key();
    }
    if a.dangerous_raw_key {
        b = b.dangerous_raw_key();
    }
    let prepared = b.expose(data).map_err(|e| (exit::USAGE, e.to_string()))?;
    drop(input);
    if let Some(record) = &a.link.record {
        write_token_secret(&secret_path(record), prepared.token_secret())?;
    }
    let mut ticket = prepared.ticket_for(where_);
    let shown = match where_ {
        Peer::Ip(local) => {
            ticket.host = match &a.advertise {
                Some(h) => h.clone(),
                None if local.ip().is_unspecified() => match local {
                    SocketAddr::V4(_) => Ipv4Addr::LOCALHOST.to_string(),
                    SocketAddr::V6(_) => "[::1]".into(),
                },
                None => ticket.host,
            };
            format!("udp {local}")
        }
        _ => format!(
            "raw Ethernet {} ({}{})",
            ticket.address(),
            match &a.link.link {
                LinkArg::Eth(i) => i.as_str(),
                LinkArg::Udp => "",
            },
            a.link
                .vlan()
                .map(|v| format!(", VLAN {} PCP {}", v.id, v.pcp))
                .unwrap_or_default()
        ),
    };
    println!("{ticket}");
    if !a.quiet {
        let suite = prepared.exposure.suite();
        eprintln!(
            "exposing {} ({len} bytes, {} chunks of {}) on {shown}; sealed in {:.2?}\n\
             suite: {} + {}, fec {:?} ({}/{}), proofs {}. Ctrl-C to stop.",
            if a.file == Path::new("-") {
                "standard input".into()
            } else {
                a.file.display().to_string()
            },
            prepared.exposure.chunk_count(),
            prepared.exposure.chunk_size(),
            started.elapsed(),
            suite.cipher.name(),
            suite.hash.name(),
            suite.fec.scheme,
            suite.fec.n,
            suite.fec.k,
            suite.proofs,
        );
        if let Some(c) = a.caps.describe(None) {
            eprintln!("{c}");
        }
    }
    install_stop_handler();
    let bar = if a.quiet {
        ProgressBar::hidden()
    } else {
        ProgressBar::new_spinner()
    };
    bar.set_style(
        ProgressStyle::with_template("{spinner} {elapsed_precise} {msg}").expect("template"),
    );
    let exposer = prepared.exposer();
    let clock = Clock::new();
    // More channels: the same port served by more threads, each with an exposer of
    // its own (they share the sealed exposure and the token secret) and an even share
    // of the total cap.
    let n = a.link.channels as usize;
    let share = a.caps.max_rate.map(|r| (r / n as u64).max(1));
    let per_channel = std::sync::Mutex::new(vec![ExposerStats::default(); n]);
    let mut extra: Vec<Box<dyn Link + Send>> = Vec::new();
    for _ in 1..n {
        extra.push(match (&a.link.link, where_) {
            (LinkArg::Eth(iface), _) => Box::new(a.link.open_eth(iface)?),
            (LinkArg::Udp, Peer::Ip(local)) => {
                Box::new(UdpLink::bind_with(local, a.link.udp_config()).map_err(|e| {
                    (
                        exit::IO,
                        format!("cannot open another socket on {local}: {e}"),
                    )
                })?)
            }
            (LinkArg::Udp, _) => unreachable!("a UDP link has an IP address"),
        });
    }
    if let Some(store) = prepared.lent_store().filter(|_| !a.copy_sends) {
        link.lend(Arc::clone(&store));
        for l in &mut extra {
            l.lend(Arc::clone(&store));
        }
    }
    if let Some(job) = prepared.huge_pages().filter(|_| !a.small_pages) {
        // Detached: it holds the exposure, and stops at the next piece when asked.
        let (bar, quiet) = (bar.clone(), a.quiet);
        let spawned = std::thread::Builder::new()
            .name("rgtp-pages".into())
            .spawn(move || {
                // Refused, the thread keeps the exposer's policy and moves the store all the same.
                let _ = rgtp_cli::sched::idle();
                let moved = job.run(|| STOP.load(Ordering::Relaxed));
                if !quiet && moved.pieces > 0 && !STOP.load(Ordering::Relaxed) {
                    let why = moved
                        .refused
                        .map(|k| format!(" (the kernel said: {k})"))
                        .unwrap_or_default();
                    let line = format!(
                        "store on huge pages: {} of {} × {}{why}",
                        moved.moved,
                        moved.pieces,
                        indicatif::HumanBytes(moved.piece_bytes as u64),
                    );
                    bar.suspend(|| eprintln!("{line}"));
                }
            });
        // Without a thread the store stays on small pages and serves all the same.
        drop(spawned);
    }
    let served = std::thread::scope(|s| {
        for (i, mut l) in extra.into_iter().enumerate() {
            let (exposer, per_channel) = (prepared.exposer(), &per_channel);
            s.spawn(move || {
                let r = driver::serve_capped(exposer, &mut l, &clock, &STOP, share, |x| {
                    per_channel.lock().expect("lock")[i + 1] = x.stats();
                });
                if let Err(e) = r {
                    eprintln!("rgtp: channel {}: serving failed: {e}", i + 1);
                }
            });
        }
        driver::serve_capped(exposer, &mut link, &clock, &STOP, share, |x| {
            let s = {
                let mut all = per_channel.lock().expect("lock");
                all[0] = x.stats();
                all.iter().fold(ExposerStats::default(), |mut t, s| {
                    t += *s;
                    t
                })
            };
            bar.set_message(format!(
                "requests {} · chunks sent {} · {} sent · dropped {}",
                s.requests + s.manifests_sent,
                s.chunks_sent,
                indicatif::HumanBytes(s.bytes_out),
                s.malformed + s.unknown_exposure + s.busy + s.over_budget + s.bad_token,
            ));
            bar.tick();
        })
    });
    served.map_err(|e| (exit::IO, format!("serving failed: {e}")))?;
    bar.finish();
    if n > 1 && !a.quiet {
        let all = per_channel.into_inner().expect("lock");
        let line: Vec<String> = all
            .iter()
            .map(|s| format!("{} requests", s.requests + s.manifests_sent))
            .collect();
        eprintln!("served on {n} channels: {}", line.join(", "));
    }
    link.flush()
        .map_err(|e| (exit::IO, format!("completing the capture file: {e}")))?;
    Ok(())
}

/// A puller of `ticket`'s exposure at `peer`. With `proofs` it asks for proofs (one
/// per run of 64 chunks where the exposer offers it and `proof_runs` is set) and the
/// driver checks them on another thread before a chunk is accepted (offloaded
/// proofs); without, the driver hashes the leaves on another thread and checks the
/// root (deferred root), unless the exposure was prepared with proofs: those it
/// checks as `proofs` would, since the exposer sends them anyway.
fn puller_config(ticket: &Ticket, peer: Peer, proofs: bool, proof_runs: bool) -> PullerConfig {
    let mut c = PullerConfig::new(ticket.exposure_id, peer, ticket.key.clone());
    c.expected_cipher = ticket.cipher;
    c.expected_hash = ticket.hash;
    c.want_proofs = proofs;
    c.deferred_root = !proofs;
    c.offload_proofs = true;
    c.take_offered_proofs = true;
    c.proof_runs = proof_runs;
    c
}

fn pull(a: PullArgs) -> CliResult {
    if a.output.is_none() && !a.discard {
        return Err((
            exit::USAGE,
            "no output named: give -o FILE to keep what is pulled, or --discard to verify it and keep nothing".into(),
        ));
    }
    let to_stdout = a.output.as_deref() == Some(Path::new("-"));
    if to_stdout && a.json {
        return Err((
            exit::USAGE,
            "-o - writes the pulled bytes to standard output, where --json would print too: \
             name a file with -o, or leave out --json"
                .into(),
        ));
    }
    if to_stdout && std::io::IsTerminal::is_terminal(&std::io::stdout()) {
        return Err((
            exit::USAGE,
            "-o - would print the pulled bytes on the terminal: redirect standard output \
             (> FILE, | CMD) or name a file with -o"
                .into(),
        ));
    }
    let ticket: Ticket = a
        .ticket
        .parse()
        .map_err(|e| (exit::USAGE, format!("bad ticket: {e}")))?;
    a.link.check()?;
    // Before any thread starts, so that every one of the pull's inherits it. A
    // policy the system refuses leaves the pull as it started (--sched says so).
    let _ = a.sched.apply();
    let (link, server): (Box<dyn Link>, Peer) = match (&a.link.link, ticket.mac) {
        (LinkArg::Eth(_), _) if !a.from.is_empty() => {
            return Err((
                exit::USAGE,
                "--from works over UDP only: raw Ethernet pulls from one exposer".into(),
            ))
        }
        (LinkArg::Eth(_), _) if a.link.channels > 1 => {
            return Err((
                exit::USAGE,
                "--channels on a raw-Ethernet pull: a puller is one MAC address, so its frames take one path; use --channels on the exposer (it serves pullers from N threads) or pull over UDP".into(),
            ))
        }
        (LinkArg::Udp, Some(_)) => {
            return Err((
                exit::USAGE,
                format!(
                    "the ticket names a raw-Ethernet exposer ({}): pull it with --link eth:IFACE",
                    ticket.address()
                ),
            ))
        }
        (LinkArg::Eth(_), None) => {
            return Err((
                exit::USAGE,
                "--link eth needs a ticket with a MAC address (rgtp://02-00-5e-10-00-01/…), as `rgtp expose --link eth:IFACE` prints".into(),
            ))
        }
        (LinkArg::Eth(iface), Some(mac)) => (Box::new(a.link.open_eth(iface)?), Peer::Ethernet(mac)),
        (LinkArg::Udp, None) => {
            let server = ticket.socket_addr().map_err(|e| {
                (
                    exit::USAGE,
                    format!("cannot resolve the ticket's host {:?}: {e}", ticket.host),
                )
            })?;
            let bind: SocketAddr = match server {
                SocketAddr::V4(_) => "0.0.0.0:0".parse().expect("literal"),
                SocketAddr::V6(_) => "[::]:0".parse().expect("literal"),
            };
            let link: Box<dyn Link> = match a.link.channels {
                1 => Box::new(
                    UdpLink::bind(bind)
                        .map_err(|e| (exit::IO, format!("cannot open a UDP socket: {e}")))?,
                ),
                n => Box::new(
                    rgtp_link::Channels::bind(bind, n as usize, rgtp_link::UdpConfig::default())
                        .map_err(|e| (exit::IO, format!("cannot open {n} UDP sockets: {e}")))?,
                ),
            };
            (link, Peer::Ip(server))
        }
    };
    let mtu = link.capabilities().mtu;
    let mut link = a.link.wrap(link)?;
    // Before the partial file exists: a Ctrl-C from here on stops the pull, so the
    // partial file is kept for a later run, or removed if it holds nothing.
    install_stop_handler();
    let mut cfg = puller_config(&ticket, server, a.proofs, !a.no_proof_runs);
    cfg.max_payload = cfg.max_payload.min(mtu);
    cfg.use_fec = !a.no_fec;
    cfg.handshake_timeout = Duration::from_secs(a.connect_timeout);
    cfg.idle_timeout = Duration::from_secs(a.idle_timeout);
    cfg.congestion = a.cc.controller;
    cfg.max_rate = a.caps.per_pull(1);
    if let Some(max) = a.max_size {
        cfg.max_total_size = max;
    }
    let clock = Clock::new();
    let bar = if a.quiet {
        ProgressBar::hidden()
    } else {
        ProgressBar::new(0)
    };
    bar.set_style(
        ProgressStyle::with_template(
            "{bar:40.cyan/blue} {bytes}/{total_bytes} {binary_bytes_per_sec} ETA {eta} {msg}",
        )
        .expect("template"),
    );
    let started = StdInstant::now();
    let sources = match server {
        Peer::Ip(addr) if !a.from.is_empty() => rgtp_cli::sources::sources(addr, &ticket, &a.from)?,
        _ => Vec::new(),
    };
    let job = PullJob {
        cfg,
        backend: a.backend.cipher_backend,
        restart: a.restart,
        retries: a.retries,
        expect_root: None,
        sources,
    };
    let progress = BarProgress {
        bar: &bar,
        quiet: a.quiet,
    };
    let spool = to_stdout.then(stdio::Spool::new).transpose()?;
    let keep: Option<PathBuf> = match &spool {
        Some(spool) => Some(spool.path().to_path_buf()),
        None => a
            .output
            .clone()
            .filter(|out| !rgtp::sink::is_null_device(out)),
    };
    let result = match keep.as_deref() {
        Some(out) => pull_file(&job, out, &mut link, &clock, &progress, &STOP),
        None => rgtp::files::pull_discard(&job, &mut link, &clock, &progress, &STOP),
    };
    let flushed = link.flush();
    match result {
        Ok(done) => {
            flushed.map_err(|e| (exit::IO, format!("completing the capture file: {e}")))?;
            bar.finish();
            if let Some(spool) = spool {
                spool.send()?;
            }
            if !a.quiet {
                report_pull(&done, started, keep.is_none());
            }
            if a.json {
                println!("{}", pull_json(&done, started));
            }
            Ok(())
        }
        Err(PullFileError::Open(msg)) => {
            bar.abandon();
            Err((exit::IO, msg))
        }
        Err(PullFileError::Pull(NotPulled { failure, kept })) => {
            bar.abandon();
            // What a pull to standard output held goes with it: it is not resumable.
            let resumable = spool.is_none();
            drop(spool);
            if let (Some(kept), false, true) = (&kept, a.quiet, resumable) {
                eprintln!("{kept}");
            }
            if let PullFailure::Stopped = failure {
                die_of_stop_signal()
            }
            let no_room = matches!(&failure, PullFailure::Io(e) if e.kind() == std::io::ErrorKind::StorageFull);
            let (code, mut msg) = pull_failure(failure, &ticket);
            if to_stdout && no_room {
                msg.push_str(&format!(
                    "; `-o -` holds the whole pull in {} until its root is verified: set \
                     TMPDIR to a directory with room for it",
                    std::env::temp_dir().display()
                ));
            }
            Err((code, msg))
        }
    }
}

/// The summary of a completed pull, on standard error.
fn report_pull(done: &Pulled, started: StdInstant, discarded: bool) {
    let (s, m) = (&done.stats, &done.manifest);
    let secs = started.elapsed().as_secs_f64();
    if s.chunks_resumed > 0 {
        eprintln!(
            "resumed: {} of {} chunks came from an earlier run (verified with the rest)",
            s.chunks_resumed, m.chunk_count
        );
    }
    eprintln!(
        "pulled {} bytes in {:.2}s ({}/s), verified against root {}{}; retransmitted {}, FEC rebuilt {}",
        m.total_size,
        secs,
        indicatif::HumanBytes((m.total_size as f64 / secs.max(1e-9)) as u64),
        hex::encode(&m.merkle_root[..8]),
        if discarded { " and discarded" } else { "" },
        s.chunks_rerequested,
        s.fec_recoveries,
    );
    if done.sources.len() > 1 {
        for line in rgtp_cli::sources::describe(&done.sources) {
            eprintln!("  from {line}");
        }
    }
    if s.repaired_chunks > 0 {
        eprintln!(
            "{} chunks did not match the root (authentic under the key, wrong content) and were fetched again with proofs ({} chunk requests to locate them)",
            s.repaired_chunks, s.repair_fetches
        );
    }
}

/// What `pull --json` prints: the exposure's shape, the time taken and the counters.
fn pull_json(done: &Pulled, started: StdInstant) -> serde_json::Value {
    let (s, m) = (&done.stats, &done.manifest);
    serde_json::json!({
        "total_size": m.total_size,
        "chunk_size": m.chunk_size,
        "chunk_count": m.chunk_count,
        "merkle_root": hex::encode(m.merkle_root),
        "seconds": started.elapsed().as_secs_f64(),
        "chunks_received": s.chunks_received,
        "chunks_resumed": s.chunks_resumed,
        "chunks_requested": s.chunks_requested,
        "chunks_rerequested": s.chunks_rerequested,
        "duplicates": s.duplicates,
        "fec_recoveries": s.fec_recoveries,
        "repaired_chunks": s.repaired_chunks,
        "repair_fetches": s.repair_fetches,
        "merkle_failures": s.merkle_failures,
        "offloaded_checks": s.offloaded_checks,
        "proof_run_members": s.proof_run_members,
        "datagrams_received": s.datagrams_received,
        "bytes_received": s.bytes_received,
        "earlier_tries": done.earlier_tries.iter().map(|e| serde_json::json!({
            "chunks_received": e.chunks_received,
            "chunks_resumed": e.chunks_resumed,
            "chunks_requested": e.chunks_requested,
            "chunks_rerequested": e.chunks_rerequested,
            "duplicates": e.duplicates,
        })).collect::<Vec<_>>(),
    })
}

/// Reads a capture file, or standard input for `-` (`tcpdump -w - | rgtp inspect -`).
fn read_capture(path: &Path) -> Result<rgtp_capture::Capture, (u8, String)> {
    let (bytes, name) = if path == Path::new("-") {
        outlast_one_interrupt();
        let mut bytes = Vec::new();
        std::io::Read::read_to_end(&mut std::io::stdin().lock(), &mut bytes)
            .map_err(|e| (exit::IO, format!("cannot read standard input: {e}")))?;
        (bytes, "standard input".to_string())
    } else {
        let bytes = std::fs::read(path).map_err(|e| {
            (
                exit::IO,
                format!("cannot read {}: {e} (check the path)", path.display()),
            )
        })?;
        (bytes, path.display().to_string())
    };
    rgtp_capture::read(&bytes).map_err(|e| (exit::USAGE, format!("{name}: {e}")))
}

fn inspect(a: InspectArgs) -> CliResult {
    let ticket: Option<Ticket> = a
        .ticket
        .as_deref()
        .map(str::parse)
        .transpose()
        .map_err(|e| (exit::USAGE, format!("bad ticket: {e}")))?;
    let capture = read_capture(&a.capture)?;
    let report = rgtp_cli::inspect::inspect(&capture, ticket.as_ref());
    if a.json {
        println!(
            "{}",
            serde_json::to_string_pretty(&report.to_json()).expect("JSON values print")
        );
    } else {
        print!("{report}");
    }
    let (Some(out), Some(t)) = (&a.output, &ticket) else {
        return Ok(());
    };
    match (&report.recovered, report.pull.as_ref().map(|p| &p.verdict)) {
        (Some(bytes), _) => std::fs::write(out, bytes).map_err(|e| {
            (
                exit::IO,
                format!(
                    "writing {}: {e} (check free space and permissions)",
                    out.display()
                ),
            )
        }),
        (None, Some(rgtp_cli::inspect::Verdict::Failed(e))) => {
            Err(pull_failure(PullFailure::Protocol(*e), t))
        }
        (None, Some(v)) => Err((
            exit::TIMEOUT,
            format!(
                "nothing written to {}: the pull in the capture is {}",
                out.display(),
                v.name()
            ),
        )),
        (None, None) => Err((
            exit::PROTOCOL,
            format!(
                "nothing written to {}: the capture holds no packets of the ticket's exposure",
                out.display()
            ),
        )),
    }
}

fn replay(a: ReplayArgs) -> CliResult {
    use rgtp::replay::{Pace, PullVerdict};
    let ticket: Ticket = a
        .ticket
        .parse()
        .map_err(|e| (exit::USAGE, format!("bad ticket: {e}")))?;
    let capture = read_capture(&a.capture)?;
    let pace = if a.as_recorded {
        if !(a.speed > 0.0 && a.speed.is_finite()) {
            return Err((exit::USAGE, "--speed must be a positive number".into()));
        }
        Pace::AsRecorded { speed: a.speed }
    } else {
        Pace::Fast
    };
    let exposer = rgtp::replay::find_exposer(&capture, Some(&ticket)).ok_or((
        exit::USAGE,
        "cannot tell the exposer's address: the ticket's host does not resolve and the capture has no Pull_Request".to_string(),
    ))?;
    if let Some(src) = &a.source {
        let (input, _) = stdio::input(src)?;
        let data: &[u8] = &input;
        let default_secret = secret_path(&a.capture);
        let secret = match (&a.token_secret, a.token_secret_from_key) {
            (Some(path), _) => rgtp::replay::TokenSecret::Given(read_token_secret(path)?),
            (None, true) => rgtp::replay::TokenSecret::FromKey,
            (None, false) if default_secret.exists() => {
                rgtp::replay::TokenSecret::Given(read_token_secret(&default_secret)?)
            }
            (None, false) => rgtp::replay::TokenSecret::Unknown,
        };
        let prepared = rgtp::replay::rebuild_exposer(&capture, &ticket, data, 65_507, secret)
            .map_err(|e| (exit::USAGE, e))?;
        let r = rgtp::replay::replay_expose(&capture, &prepared, exposer, pace);
        if r.fed == 0 {
            return Err((
                exit::PROTOCOL,
                format!(
                    "the capture shows no datagram sent to the exposer {} (recorded on another host?)",
                    rgtp_capture::frame::peer_text(exposer)
                ),
            ));
        }
        if let Some(diff) = r.first_difference() {
            if secret == rgtp::replay::TokenSecret::Unknown
                && rgtp::replay::holds_tokens(&capture, &ticket.exposure_id)
            {
                return Err((
                    exit::USAGE,
                    format!(
                        "the rebuilt exposer answers differently ({diff}): the capture holds address-validation tokens, which only the recorded exposer's secret reproduces, and no secret was given. `rgtp expose --record {0}` writes it to {1}; pass it with --token-secret FILE (or --token-secret-from-key if the exposer derived it from the key)",
                        a.capture.display(),
                        default_secret.display()
                    ),
                ));
            }
            return Err((
                exit::PROTOCOL,
                format!(
                    "the rebuilt exposer answers differently: {diff} ({} requests fed, {} answers recorded, {} replayed; a capture taken at the puller misses answers lost on the way)",
                    r.fed,
                    r.recorded.len(),
                    r.produced.len()
                ),
            ));
        }
        if !a.quiet {
            println!(
                "identical: {} requests fed, {} answers replayed byte for byte as recorded",
                r.fed,
                r.produced.len()
            );
        }
        return Ok(());
    }
    let Some(out) = &a.output else {
        return Err((
            exit::USAGE,
            "say what to replay: -o OUT rebuilds the file from the exposer's packets; --source FILE checks the exposer's answers".into(),
        ));
    };
    let r = rgtp::replay::replay_pull(&capture, &ticket, Some(exposer), pace, |_| {});
    let s = r.stats;
    let counters = format!(
        "{} datagrams fed; {} chunks verified, {} duplicates, {} malformed, {} failed authentication, {} failed Merkle checks, {} rebuilt by FEC",
        r.fed, s.chunks_received, s.duplicates, s.malformed, s.auth_failures, s.merkle_failures, s.fec_recoveries
    );
    match r.verdict {
        PullVerdict::Complete(bytes) => {
            std::fs::write(out, &bytes).map_err(|e| {
                (
                    exit::IO,
                    format!("writing {}: {e} (check free space and permissions)", out.display()),
                )
            })?;
            if !a.quiet {
                println!(
                    "rebuilt {} ({} bytes), verified; {counters}",
                    out.display(),
                    bytes.len()
                );
            }
            Ok(())
        }
        PullVerdict::Failed(e) => Err(pull_failure(PullFailure::Protocol(e), &ticket)),
        PullVerdict::Io(e) => Err((exit::IO, e)),
        PullVerdict::Incomplete { received, total } => Err((
            exit::TIMEOUT,
            format!("the capture ends before the transfer: {received} of {total} chunks verified; {counters}"),
        )),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Every example a command's help and manual page show parses as that command,
    /// and each command carries its own examples.
    #[test]
    fn every_example_parses() {
        let root = Cli::command();
        let mut lines = 0;
        for (name, text) in manual::examples::ALL {
            let sub = root.find_subcommand(name).expect("a command");
            assert_eq!(
                sub.get_after_long_help().map(|h| h.to_string()).as_deref(),
                Some(*text),
                "`rgtp {name} --help` does not end with its examples"
            );
            for line in text.lines().skip(1).map(str::trim) {
                if line.starts_with('#') || line.is_empty() {
                    continue;
                }
                let at = line.find("rgtp ").expect("an rgtp command line");
                let command = line[at..].split(" | ").next().unwrap_or_default();
                let words: Vec<&str> = command
                    .split_whitespace()
                    .map(|w| w.trim_matches('"'))
                    .collect();
                assert_eq!(words.get(1), Some(name), "{line}");
                if let Err(e) = Cli::try_parse_from(&words) {
                    panic!("{line}: {e}");
                }
                lines += 1;
            }
        }
        assert!(lines >= 15, "{lines} example lines");
    }
}
