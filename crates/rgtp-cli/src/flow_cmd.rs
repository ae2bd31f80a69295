//! `rgtp flow`: flows over UDP by name.
//!
//! - `rgtp flow echo-server [--name NAME] [--bind ADDR]` registers NAME
//!   (default `echo`) and echoes every message of every flow from one
//!   thread, through a flow set.
//! - `rgtp flow echo NAME [--qos PRESET] [--count N] [--size B]` allocates
//!   a flow to NAME, sends N messages one after the other, checks each echo
//!   byte for byte and reports round-trip percentiles and messages/s.
//! - `rgtp flow directory --bind HOST:PORT` runs a directory server, for
//!   names across machines (nodes use it when `RGTP_FLOW_DIRECTORY` is set).
//! - `rgtp flow bind NAME -- COMMAND…` runs COMMAND with `RGTP_FLOW_BIND=NAME`:
//!   every flow node the program binds (from the environment) registers NAME.
//! - `rgtp flow recv-file --name NAME DIR` registers NAME, accepts one flow
//!   and receives the file offered on it into DIR (`rgtp::flow_bulk`: the
//!   bytes move over RGTP, every chunk verified).
//! - `rgtp flow send-file NAME FILE` allocates a flow to NAME and sends FILE
//!   that way.
//!
//! Names are looked up as `redgiant_flow::net::names` describes. `--json`
//! prints one JSON object per line instead of text.

use std::collections::HashMap;
use std::net::{SocketAddr, UdpSocket};
use std::process::Command;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use redgiant_flow::net::names::{self, ENV_BIND};
use redgiant_flow::net::{directory, EventKind, Flow, FlowNetError, FlowNode};
use redgiant_flow::QoS;
use rgtp::flow_bulk::{self, BulkError, BulkProgress, Offer};

use crate::exit;

/// A failure: exit status and message.
pub type FlowResult = Result<(), (u8, String)>;

/// `rgtp flow`.
#[derive(clap::Args, Debug)]
pub struct FlowArgs {
    #[command(subcommand)]
    command: FlowCommand,
}

#[derive(clap::Subcommand, Debug)]
enum FlowCommand {
    /// Register a name and echo every message on every flow to it (one thread).
    EchoServer(EchoServerArgs),
    /// Send messages over a flow to NAME, check each echo, report round trips.
    Echo(EchoArgs),
    /// Run a directory server: names registered over UDP, expiring unless refreshed.
    Directory(DirectoryArgs),
    /// Run COMMAND with RGTP_FLOW_BIND=NAME: the flow nodes it binds register NAME.
    Bind(BindArgs),
    /// Send FILE to NAME: offered on a flow, pulled by the receiver over RGTP.
    SendFile(SendFileArgs),
    /// Register NAME, accept one flow and receive the file offered on it into DIR.
    RecvFile(RecvFileArgs),
}

#[derive(clap::Args, Debug)]
struct SendFileArgs {
    /// The name to allocate a flow to (or NAME@HOST:PORT).
    name: String,
    /// The file to send.
    file: std::path::PathBuf,
    /// Offer the file under this name (default: its own).
    #[arg(long = "as", value_name = "FILE_NAME")]
    as_name: Option<String>,
    /// QoS preset of the flow carrying the offer and the answer.
    #[arg(long, default_value = "data")]
    qos: String,
    /// Seconds to wait for the allocation, and without progress before giving up.
    #[arg(long, default_value_t = 30.0)]
    timeout: f64,
    /// The local UDP address of the flow node.
    #[arg(long, default_value = "0.0.0.0:0")]
    bind: String,
    /// Print JSON lines (progress, then the result).
    #[arg(long)]
    json: bool,
    /// No progress line.
    #[arg(long)]
    quiet: bool,
}

#[derive(clap::Args, Debug)]
struct RecvFileArgs {
    /// The name to register.
    #[arg(long)]
    name: String,
    /// The directory to write into (created if missing).
    dir: std::path::PathBuf,
    /// The UDP address of the flow node (port 0: any; the address is printed).
    #[arg(long, default_value = "0.0.0.0:0")]
    bind: String,
    /// The largest file taken, in bytes.
    #[arg(long, default_value_t = 64 << 30)]
    max_size: u64,
    /// Seconds to wait for a sender (0: without limit), then for its offer.
    #[arg(long, default_value_t = 0.0)]
    timeout: f64,
    /// Start over, ignoring what an earlier run left.
    #[arg(long)]
    restart: bool,
    /// Print JSON lines (listening, progress, then the result).
    #[arg(long)]
    json: bool,
    /// No progress line.
    #[arg(long)]
    quiet: bool,
}

#[derive(clap::Args, Debug)]
struct EchoServerArgs {
    /// The name to register.
    #[arg(long, default_value = "echo")]
    name: String,
    /// The UDP address to listen on (port 0: any; the address is printed).
    #[arg(long, default_value = "0.0.0.0:0")]
    bind: String,
    /// Print JSON lines.
    #[arg(long)]
    json: bool,
}

#[derive(clap::Args, Debug)]
struct EchoArgs {
    /// The name to allocate a flow to (or NAME@HOST:PORT).
    name: String,
    /// QoS preset: raw, best_effort, video, voice, data, …
    #[arg(long, default_value = "data")]
    qos: String,
    /// Messages to send.
    #[arg(long, default_value_t = 1000)]
    count: u64,
    /// Bytes per message.
    #[arg(long, default_value_t = 64)]
    size: usize,
    /// Seconds to wait for the allocation and for each echo.
    #[arg(long, default_value_t = 10.0)]
    timeout: f64,
    /// The local UDP address to bind.
    #[arg(long, default_value = "0.0.0.0:0")]
    bind: String,
    /// Print JSON lines.
    #[arg(long)]
    json: bool,
}

#[derive(clap::Args, Debug)]
struct DirectoryArgs {
    /// The UDP address to serve on.
    #[arg(long, value_name = "HOST:PORT")]
    bind: String,
    /// Print JSON lines.
    #[arg(long)]
    json: bool,
}

#[derive(clap::Args, Debug)]
struct BindArgs {
    /// The name the program's flow nodes register.
    name: String,
    /// The program and its arguments.
    #[arg(last = true, required = true, value_name = "COMMAND")]
    command: Vec<String>,
}

/// Runs `rgtp flow`; servers stop once `stop` is set.
pub fn run(args: FlowArgs, stop: &AtomicBool) -> FlowResult {
    match args.command {
        FlowCommand::EchoServer(a) => echo_server(a, stop),
        FlowCommand::Echo(a) => echo(a),
        FlowCommand::Directory(a) => directory_server(a, stop),
        FlowCommand::Bind(a) => bind(a),
        FlowCommand::SendFile(a) => send_file(a),
        FlowCommand::RecvFile(a) => recv_file(a, stop),
    }
}

fn failure(e: FlowNetError) -> (u8, String) {
    let code = match e {
        FlowNetError::UnknownName { .. } | FlowNetError::BadName(_) => exit::USAGE,
        FlowNetError::TimedOut { .. } => exit::TIMEOUT,
        FlowNetError::Io(_) => exit::IO,
        _ => exit::PROTOCOL,
    };
    (code, e.to_string())
}

fn parse_addr(s: &str, what: &str) -> Result<SocketAddr, (u8, String)> {
    names::resolve(s).map_err(|e| (exit::USAGE, format!("{what} {s:?}: {e}")))
}

fn echo_server(a: EchoServerArgs, stop: &AtomicBool) -> FlowResult {
    let addr = parse_addr(&a.bind, "--bind")?;
    let node = FlowNode::bind(addr).map_err(failure)?;
    node.register(&a.name).map_err(failure)?;
    if a.json {
        println!(
            "{}",
            serde_json::json!({"listening": node.local_addr().to_string(), "name": a.name})
        );
    } else {
        println!("listening on {} as {:?}", node.local_addr(), a.name);
    }
    let set = node.flow_set();
    set.watch_allocs(true);
    let mut flows: HashMap<_, Flow> = HashMap::new();
    let (mut accepted, mut echoed) = (0u64, 0u64);
    while !stop.load(Ordering::Relaxed) {
        let events = set
            .wait(Some(Duration::from_millis(250)))
            .map_err(failure)?;
        for ev in events {
            match ev.kind {
                EventKind::Alloc => match node.accept(Some(Duration::ZERO)) {
                    Ok(f) => {
                        f.set_nonblocking(true);
                        set.add(&f);
                        flows.insert(f.id(), f);
                        accepted += 1;
                    }
                    Err(FlowNetError::TimedOut { .. }) => {}
                    Err(e) => return Err(failure(e)),
                },
                EventKind::Packet => {
                    let Some(f) = flows.get(&ev.flow) else {
                        continue;
                    };
                    while let Ok(m) = f.read(None) {
                        match f.write(&m) {
                            Ok(()) => echoed += 1,
                            // The send buffer is full: drop the echo, as UDP would.
                            Err(FlowNetError::WouldBlock) => {}
                            Err(_) => break,
                        }
                    }
                }
                EventKind::Dealloc | EventKind::Down => {
                    flows.remove(&ev.flow);
                }
                EventKind::Up | EventKind::Refused => {}
            }
        }
    }
    if a.json {
        println!(
            "{}",
            serde_json::json!({"flows": accepted, "echoed": echoed})
        );
    } else {
        println!("served {accepted} flows, echoed {echoed} messages");
    }
    Ok(())
}

/// The `i`th message of `size` bytes: `i` big-endian, then a pattern.
fn message(i: u64, size: usize, buf: &mut Vec<u8>) {
    buf.clear();
    buf.extend((0..size).map(|j| (i as usize).wrapping_mul(31).wrapping_add(j) as u8));
    let tag = i.to_be_bytes();
    let n = size.min(8);
    buf[..n].copy_from_slice(&tag[8 - n..]);
}

fn percentile(sorted: &[Duration], p: usize) -> Duration {
    if sorted.is_empty() {
        return Duration::ZERO;
    }
    sorted[(sorted.len() - 1) * p / 100]
}

fn echo(a: EchoArgs) -> FlowResult {
    let qos = QoS::preset(&a.qos).ok_or_else(|| {
        let names: Vec<&str> = QoS::PRESETS.iter().map(|(n, _)| *n).collect();
        (
            exit::USAGE,
            format!(
                "unknown QoS preset {:?}: use one of {}",
                a.qos,
                names.join(", ")
            ),
        )
    })?;
    if !(a.timeout > 0.0 && a.timeout.is_finite()) {
        return Err((
            exit::USAGE,
            "--timeout must be a positive number of seconds".into(),
        ));
    }
    let timeout = Duration::from_secs_f64(a.timeout);
    let addr = parse_addr(&a.bind, "--bind")?;
    let node = FlowNode::bind(addr).map_err(failure)?;
    let flow = node.alloc(&a.name, qos, timeout).map_err(failure)?;
    let mut rtts = Vec::with_capacity(a.count as usize);
    let mut buf = Vec::with_capacity(a.size);
    let start = Instant::now();
    for i in 0..a.count {
        message(i, a.size, &mut buf);
        let sent = Instant::now();
        flow.write(&buf).map_err(failure)?;
        let back = flow.read(Some(timeout)).map_err(|e| match e {
            FlowNetError::TimedOut { .. } => (
                exit::TIMEOUT,
                format!(
                    "no echo of message {i} within {timeout:?} (QoS {} may lose messages; \
                     use --qos data to have them resent)",
                    a.qos
                ),
            ),
            e => failure(e),
        })?;
        rtts.push(sent.elapsed());
        if back != buf {
            let at = back.iter().zip(&buf).position(|(x, y)| x != y);
            return Err((
                exit::PROTOCOL,
                format!(
                    "echo of message {i} differs: {} bytes back for {} sent, first difference at {}",
                    back.len(),
                    buf.len(),
                    at.map_or("the end".to_string(), |p| format!("byte {p}"))
                ),
            ));
        }
    }
    let elapsed = start.elapsed();
    let _ = flow.dealloc();
    rtts.sort_unstable();
    let (p50, p99) = (percentile(&rtts, 50), percentile(&rtts, 99));
    let rate = a.count as f64 / elapsed.as_secs_f64().max(1e-9);
    let us = |d: Duration| d.as_secs_f64() * 1e6;
    if a.json {
        println!(
            "{}",
            serde_json::json!({
                "name": a.name,
                "peer": flow.peer().to_string(),
                "qos": a.qos,
                "count": a.count,
                "size": a.size,
                "p50_us": us(p50),
                "p99_us": us(p99),
                "messages_per_s": rate,
                "elapsed_s": elapsed.as_secs_f64(),
            })
        );
    } else {
        println!(
            "{} messages of {} bytes to {:?} at {} (qos {}): all echoed intact; \
             round trip p50 {:.1} µs, p99 {:.1} µs; {:.0} messages/s",
            a.count,
            a.size,
            a.name,
            flow.peer(),
            a.qos,
            us(p50),
            us(p99),
            rate
        );
    }
    Ok(())
}

fn directory_server(a: DirectoryArgs, stop: &AtomicBool) -> FlowResult {
    let addr = parse_addr(&a.bind, "--bind")?;
    let socket =
        UdpSocket::bind(addr).map_err(|e| (exit::IO, format!("cannot bind {addr}: {e}")))?;
    let local = socket.local_addr().map_err(|e| (exit::IO, e.to_string()))?;
    if a.json {
        println!("{}", serde_json::json!({"directory": local.to_string()}));
    } else {
        println!("directory on {local}");
    }
    directory::serve(&socket, stop).map_err(|e| (exit::IO, format!("directory on {local}: {e}")))
}

fn bind(a: BindArgs) -> FlowResult {
    names::check_name(&a.name).map_err(failure)?;
    let (program, args) = a
        .command
        .split_first()
        .ok_or_else(|| (exit::USAGE, "give the command to run after --".to_string()))?;
    let status = Command::new(program)
        .args(args)
        .env(ENV_BIND, &a.name)
        .status()
        .map_err(|e| (exit::IO, format!("cannot run {program:?}: {e}")))?;
    match status.code() {
        Some(0) => Ok(()),
        Some(c) => Err((
            u8::try_from(c).unwrap_or(exit::PROTOCOL),
            format!("{program} exited with status {c}"),
        )),
        None => Err((exit::PROTOCOL, format!("{program} ended by a signal"))),
    }
}

/// A hand-off's progress: a bar on standard error, or JSON lines at most
/// five a second.
struct BulkLine {
    bar: indicatif::ProgressBar,
    json: bool,
    last: std::sync::Mutex<Option<Instant>>,
}

impl BulkLine {
    fn new(json: bool, quiet: bool, verb: &str) -> BulkLine {
        let bar = if json || quiet {
            indicatif::ProgressBar::hidden()
        } else {
            indicatif::ProgressBar::new(0)
        };
        bar.set_style(
            indicatif::ProgressStyle::with_template(&format!(
                "{verb} {{prefix}} {{bar:30.cyan/blue}} {{bytes}}/{{total_bytes}} {{binary_bytes_per_sec}} ETA {{eta}}"
            ))
            .expect("template"),
        );
        BulkLine {
            bar,
            json,
            last: std::sync::Mutex::new(None),
        }
    }
}

impl BulkProgress for BulkLine {
    fn offer(&self, offer: &Offer) {
        self.bar.set_prefix(offer.name.clone());
        self.bar.set_length(offer.size);
        if self.json {
            println!(
                "{}",
                serde_json::json!({"offer": offer.name, "size": offer.size})
            );
        }
    }

    fn bytes(&self, done: u64, total: u64) {
        self.bar.set_length(total);
        self.bar.set_position(done);
        if self.json {
            let mut last = self.last.lock().unwrap_or_else(|p| p.into_inner());
            let due = !matches!(*last, Some(t) if t.elapsed() < Duration::from_millis(200));
            if due || done == total {
                *last = Some(Instant::now());
                println!("{}", serde_json::json!({"done": done, "total": total}));
            }
        }
    }
}

fn bulk_failure(e: BulkError) -> (u8, String) {
    match e {
        BulkError::Flow(f) => failure(f),
        e => {
            let code = match &e {
                BulkError::TimedOut { .. } => exit::TIMEOUT,
                BulkError::Local(_) => exit::IO,
                _ => exit::PROTOCOL,
            };
            (code, e.to_string())
        }
    }
}

fn seconds(v: f64, what: &str) -> Result<Duration, (u8, String)> {
    if !(v >= 0.0 && v.is_finite()) {
        return Err((
            exit::USAGE,
            format!("{what} must be a number of seconds, 0 or more"),
        ));
    }
    Ok(Duration::from_secs_f64(v))
}

fn send_file(a: SendFileArgs) -> FlowResult {
    let qos = QoS::preset(&a.qos).ok_or_else(|| {
        let names: Vec<&str> = QoS::PRESETS.iter().map(|(n, _)| *n).collect();
        (
            exit::USAGE,
            format!(
                "unknown QoS preset {:?}: use one of {}",
                a.qos,
                names.join(", ")
            ),
        )
    })?;
    let timeout = seconds(a.timeout, "--timeout")?.max(Duration::from_millis(100));
    let addr = parse_addr(&a.bind, "--bind")?;
    let node = FlowNode::bind(addr).map_err(failure)?;
    let flow = node.alloc(&a.name, qos, timeout).map_err(failure)?;
    let opts = flow_bulk::SendOptions {
        name: a.as_name,
        idle_timeout: timeout,
        ..flow_bulk::SendOptions::default()
    };
    let line = BulkLine::new(a.json, a.quiet, "sending");
    let sent = flow_bulk::send_file(&flow, &a.file, &opts, &line);
    line.bar.finish_and_clear();
    let sent = sent.map_err(bulk_failure)?;
    let _ = flow.dealloc();
    let rate = sent.size as f64 / sent.seconds.max(1e-9) / (1 << 20) as f64;
    if a.json {
        println!(
            "{}",
            serde_json::json!({
                "sent": sent.name,
                "to": a.name,
                "size": sent.size,
                "root": hex::encode(sent.root),
                "served_from": sent.served_from.to_string(),
                "seconds": sent.seconds,
                "mib_per_s": rate,
            })
        );
    } else {
        println!(
            "sent {} as {:?} to {:?}: {} bytes in {:.2} s ({:.1} MiB/s), verified by the receiver against root {}",
            a.file.display(),
            sent.name,
            a.name,
            sent.size,
            sent.seconds,
            rate,
            hex::encode(sent.root)
        );
    }
    Ok(())
}

fn recv_file(a: RecvFileArgs, stop: &AtomicBool) -> FlowResult {
    let timeout = seconds(a.timeout, "--timeout")?;
    let addr = parse_addr(&a.bind, "--bind")?;
    let node = FlowNode::bind(addr).map_err(failure)?;
    node.register(&a.name).map_err(failure)?;
    if a.json {
        println!(
            "{}",
            serde_json::json!({"listening": node.local_addr().to_string(), "name": a.name})
        );
    } else {
        println!("listening on {} as {:?}", node.local_addr(), a.name);
    }
    let started = Instant::now();
    let flow = loop {
        if stop.load(Ordering::Relaxed) {
            return Err((exit::PROTOCOL, "stopped before a sender came".into()));
        }
        if !timeout.is_zero() && started.elapsed() >= timeout {
            return Err((
                exit::TIMEOUT,
                format!(
                    "no sender allocated a flow to {:?} within {timeout:?}",
                    a.name
                ),
            ));
        }
        match node.accept(Some(Duration::from_millis(250))) {
            Ok(f) => break f,
            Err(FlowNetError::TimedOut { .. }) => {}
            Err(e) => return Err(failure(e)),
        }
    };
    let mut opts = flow_bulk::RecvOptions {
        max_size: a.max_size,
        restart: a.restart,
        ..flow_bulk::RecvOptions::default()
    };
    if !timeout.is_zero() {
        opts.offer_timeout = timeout;
    }
    let line = BulkLine::new(a.json, a.quiet, "receiving");
    let got = flow_bulk::recv_file(&flow, &a.dir, &opts, &line);
    line.bar.finish_and_clear();
    let got = got.map_err(bulk_failure)?;
    let rate = got.size as f64 / got.seconds.max(1e-9) / (1 << 20) as f64;
    if a.json {
        println!(
            "{}",
            serde_json::json!({
                "received": got.path.display().to_string(),
                "size": got.size,
                "root": hex::encode(got.root),
                "from": got.source.to_string(),
                "seconds": got.seconds,
                "mib_per_s": rate,
            })
        );
    } else {
        println!(
            "received {} ({} bytes) from {} in {:.2} s ({:.1} MiB/s), every chunk verified against root {}",
            got.path.display(),
            got.size,
            got.source,
            got.seconds,
            rate,
            hex::encode(got.root)
        );
    }
    Ok(())
}
