//! The `rgtp-conformance` command.

use std::net::{SocketAddr, ToSocketAddrs};
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::time::Duration;

use clap::{Parser, Subcommand};
use rgtp_conformance::evidence::{self, RunInfo, Traffic};
use rgtp_conformance::{
    cases, html, report, Outcome, Selection, EXIT_MUST_FAILED, EXIT_OK, EXIT_USAGE,
};

/// RGTP v1 conformance suite: numbered cases tied to MUST/SHOULD of spec/rgtp-v1.md.
#[derive(Parser)]
#[command(name = "rgtp-conformance", version)]
struct Cli {
    /// Write JUnit XML here.
    #[arg(long, global = true)]
    junit: Option<PathBuf>,
    /// Write JSON here.
    #[arg(long, global = true)]
    json: Option<PathBuf>,
    /// Run only these cases: ids or prefixes, comma-separated (e.g. EXP-01,PUL-020).
    #[arg(long, global = true, value_delimiter = ',')]
    only: Vec<String>,
    /// Skip these cases: ids or prefixes, comma-separated.
    #[arg(long, global = true, value_delimiter = ',')]
    skip: Vec<String>,
    /// Run only these cases: exact ids, repeatable or comma-separated (e.g. EXP-001,EXP-040).
    #[arg(long = "case", global = true, value_delimiter = ',', value_name = "ID")]
    cases: Vec<String>,
    /// Run only the cases under these spec sections, repeatable or comma-separated:
    /// `5` takes §5 and §5.x, `§5.1` takes §5.1 and §5.1.x.
    #[arg(
        long = "section",
        global = true,
        value_delimiter = ',',
        value_name = "§N"
    )]
    sections: Vec<String>,
    /// Write per-case evidence here (expectation, observation, traffic as pcap), with
    /// index.html and results.json.
    #[arg(long, global = true, value_name = "DIR")]
    evidence: Option<PathBuf>,
    /// Write the static HTML report here.
    #[arg(long, global = true, value_name = "FILE")]
    html: Option<PathBuf>,
    #[command(subcommand)]
    target: TargetCmd,
}

#[derive(Subcommand)]
enum TargetCmd {
    /// Test a live exposer, black-box over UDP or raw Ethernet.
    Exposer {
        /// Exposer address: HOST:PORT, or a MAC address with --link eth:IFACE (default: the ticket's).
        addr: Option<String>,
        /// The exposure's ticket (rgtp://…#KEY); not with --cmd.
        #[arg(long, required_unless_present = "cmd", conflicts_with = "cmd")]
        ticket: Option<String>,
        /// Start the exposer with this shell command instead: `{file}` (a file the
        /// harness makes) and `{port}` (a free UDP port) are substituted; the ticket is
        /// the first line of its standard output (or of --ticket-file). Exit 127 before
        /// the ticket: every case n/a. The command is killed after the cases.
        #[arg(long, conflicts_with = "addr")]
        cmd: Option<String>,
        /// With --cmd: read the ticket from the first line of this file.
        #[arg(long, requires = "cmd")]
        ticket_file: Option<PathBuf>,
        /// With --cmd: bytes of the file exposed.
        #[arg(long, default_value_t = 300_000)]
        size: usize,
        /// With --cmd: seconds to wait for the ticket.
        #[arg(long, default_value_t = 20)]
        start_timeout: u64,
        /// Link: udp (default), or eth:IFACE for raw Ethernet frames on a local
        /// interface (EtherType 0x88B5; needs root or CAP_NET_RAW).
        #[arg(long, default_value = "udp")]
        link: String,
        /// Raw Ethernet: tag probes with this 802.1Q VLAN ID and hear only that VLAN.
        #[arg(long, value_parser = clap::value_parser!(u16).range(0..=4094))]
        vlan: Option<u16>,
        /// Raw Ethernet: 802.1Q priority (PCP, 0-7) of the probes.
        #[arg(long, value_parser = clap::value_parser!(u8).range(0..=7))]
        pcp: Option<u8>,
        /// Silence window in milliseconds: how long "no answer" is waited for.
        #[arg(long, default_value_t = 300)]
        quiet_ms: u64,
    },
    /// Test a puller program against the harness's adversarial exposer.
    Puller {
        /// Shell command; `{ticket}` and `{out}` are substituted (already shell-quoted),
        /// `{port}` by a free UDP port. Exit 127 makes a case n/a (unsupported).
        /// Optional `{proofs}` becomes `--proofs` in the cases where the puller must ask
        /// for Merkle proofs (PUL-029), and nothing elsewhere.
        #[arg(long)]
        cmd: String,
        /// Bound on one run of the command, seconds.
        #[arg(long, default_value_t = 60)]
        timeout: u64,
        /// Bytes exposed per case.
        #[arg(long, default_value_t = 300_000)]
        size: usize,
    },
    /// Test a librgtp.so through its C ABI.
    Abi {
        /// Path of the library.
        #[arg(long)]
        lib: PathBuf,
    },
    /// Judge a recorded transfer (pcap or pcapng) packet by packet, offline.
    Pcap {
        /// The capture file (rgtp --record, tcpdump -w, tshark -w, Wireshark).
        file: PathBuf,
        /// The exposure's ticket: opens chunks, verifies proofs, replays the pull.
        #[arg(long)]
        ticket: Option<String>,
        /// The exposer's address, HOST:PORT or MAC (default: the ticket's, else the
        /// destination of the first Pull_Request).
        #[arg(long)]
        exposer: Option<String>,
        /// MTU of a raw-Ethernet capture's link, bytes.
        #[arg(long, default_value_t = cases::capture::DEFAULT_ETH_MTU)]
        mtu: usize,
    },
    /// Test the published Python package rgtp 1.0.0 on a librgtp.so.
    Python {
        /// Path of the library.
        #[arg(long)]
        lib: PathBuf,
        /// A Python that already has rgtp 1.0.0 (default: a venv under target/).
        #[arg(long)]
        python: Option<PathBuf>,
        /// Where to create the venv.
        #[arg(long)]
        venv: Option<PathBuf>,
    },
    /// Run every configured exposer against every configured puller over seeded
    /// impairments and print the interop matrix.
    Matrix {
        /// The configuration (see conformance/matrix.example.toml).
        config: PathBuf,
        /// Where to keep the evidence and write matrix.txt, matrix.json, index.html
        /// (default: a fresh directory under the system's temporary directory).
        #[arg(long)]
        out: Option<PathBuf>,
        /// Seed of the impairments' draws.
        #[arg(long, default_value_t = 1)]
        seed: u64,
    },
    /// Test a gtUDP receiver (spec/gtudp.md), black-box over UDP.
    Gtudp {
        /// The receiver's address, HOST:PORT (or --cmd).
        #[arg(required_unless_present = "cmd")]
        addr: Option<String>,
        /// Start the receiver with this shell command instead: `{port}` becomes a UDP
        /// port on 127.0.0.1 that was free; the harness waits until a DATA there is
        /// answered, runs the cases, and kills the command. Exit 127: every case n/a.
        #[arg(long, conflicts_with = "addr")]
        cmd: Option<String>,
        /// With --cmd: seconds to wait for the receiver to answer.
        #[arg(long, default_value_t = 20)]
        start_timeout: u64,
        /// Magic of the profile, hex (default: none, the reference profile).
        #[arg(long, default_value = "")]
        magic: String,
        /// Type codes DATA,RECV,ACK, hex (default: the reference's).
        #[arg(long, default_value = "1d,5f,ae")]
        types: String,
        /// The receiver echoes every delivered payload back to its sender.
        #[arg(long)]
        echo: bool,
        /// Silence window in milliseconds: how long "no answer" is waited for.
        #[arg(long, default_value_t = 300)]
        quiet_ms: u64,
    },
    /// Test a TEJ server (spec/tej.md), black-box over TCP.
    Tej {
        /// The server's address, HOST:PORT (or --cmd).
        #[arg(required_unless_present = "cmd")]
        addr: Option<String>,
        /// Start the server with this shell command instead: `{port}` becomes a TCP
        /// port on 127.0.0.1 that was free; the harness waits until it accepts a
        /// connection, runs the cases, and kills the command. Exit 127: every case n/a.
        #[arg(long, conflicts_with = "addr")]
        cmd: Option<String>,
        /// With --cmd: seconds to wait for the server to accept.
        #[arg(long, default_value_t = 20)]
        start_timeout: u64,
        /// The server sends every frame back unchanged (`rgtp tej serve --echo`).
        #[arg(long)]
        echo: bool,
        /// Milliseconds an answer or a close is waited for (each read waits up to four times this).
        #[arg(long, default_value_t = 1000)]
        wait_ms: u64,
    },
    /// List the catalogue.
    List,
}

fn free_tcp_port() -> std::io::Result<u16> {
    Ok(std::net::TcpListener::bind("127.0.0.1:0")?
        .local_addr()?
        .port())
}

/// A gtUDP or TEJ target: a running server at `addr`, or a command to start.
struct ServerTarget<'a> {
    cmd: Option<&'a str>,
    addr: Option<&'a str>,
    start_timeout: u64,
    port: fn() -> std::io::Result<u16>,
}

impl ServerTarget<'_> {
    fn run<C>(
        &self,
        cli: &Cli,
        target: cases::Target,
        catalogue: &[cases::Case<C>],
        ready: impl Fn(SocketAddr) -> bool,
        ctx: impl FnOnce(SocketAddr) -> C,
        sel: &rgtp_conformance::Selection,
    ) -> i32 {
        let (described, out) = if let Some(template) = self.cmd {
            if !template.contains("{port}") {
                eprintln!("rgtp-conformance: --cmd must contain {{port}}");
                return EXIT_USAGE;
            }
            let port = match (self.port)() {
                Ok(p) => p,
                Err(e) => {
                    eprintln!("rgtp-conformance: no free port: {e}");
                    return EXIT_USAGE;
                }
            };
            let c = rgtp_conformance::ServerCommand {
                template,
                port,
                start_timeout: Duration::from_secs(self.start_timeout),
            };
            let out = exec(cli, || {
                rgtp_conformance::run_server_cmd(target, catalogue, &c, ready, ctx, sel)
            });
            (template.to_string(), out)
        } else {
            let addr = match resolve(self.addr.unwrap_or_default()) {
                Ok(a) => a,
                Err(e) => {
                    eprintln!("rgtp-conformance: {e}");
                    return EXIT_USAGE;
                }
            };
            let c = ctx(addr);
            let out = exec(cli, || cases::run_cases(target, catalogue, &c, sel));
            (addr.to_string(), out)
        };
        let info = RunInfo {
            target: target.name().to_string(),
            subject: described,
            ..RunInfo::default()
        };
        finish(&info, &out, cli)
    }
}

fn gtudp_profile(magic: &str, types: &str) -> Result<redgiant_gtudp::wire::Profile, String> {
    let magic =
        hex::decode(magic.trim()).map_err(|e| format!("--magic {magic:?} is not hex: {e}"))?;
    let codes = types
        .split(',')
        .map(|t| hex::decode(t.trim()))
        .collect::<Result<Vec<_>, _>>()
        .map_err(|e| format!("--types {types:?} is not hex: {e}"))?;
    let [data, recv, ack]: [Vec<u8>; 3] = codes
        .try_into()
        .map_err(|_| format!("--types {types:?}: give three codes, DATA,RECV,ACK"))?;
    redgiant_gtudp::wire::Profile::new(magic, data, recv, ack)
        .map_err(|e| format!("--types {types:?}: {e}"))
}

/// `target/rgtp-conformance-py/venv`, beside the `debug`/`release` directory this binary is in.
fn default_venv() -> PathBuf {
    let exe = std::env::current_exe().unwrap_or_default();
    let target = exe
        .parent()
        .and_then(Path::parent)
        .map(Path::to_path_buf)
        .unwrap_or_else(|| PathBuf::from("target"));
    target.join("rgtp-conformance-py").join("venv")
}

fn resolve(s: &str) -> Result<SocketAddr, String> {
    s.to_socket_addrs()
        .map_err(|e| format!("cannot resolve {s}: {e}"))?
        .next()
        .ok_or_else(|| format!("{s} resolves to nothing"))
}

/// Runs `f` (the cases of one target), recording each case's traffic when evidence is asked for.
fn exec(cli: &Cli, f: impl FnOnce() -> Vec<Outcome>) -> (Vec<Outcome>, Traffic) {
    if cli.evidence.is_some() {
        evidence::record(f)
    } else {
        (f(), Traffic::default())
    }
}

fn finish(info: &RunInfo, (outcomes, traffic): &(Vec<Outcome>, Traffic), cli: &Cli) -> i32 {
    let target = info.target.as_str();
    print!("{}", report::table(outcomes));
    if let Err(e) = report::write_files(target, outcomes, cli.junit.as_deref(), cli.json.as_deref())
    {
        eprintln!("rgtp-conformance: writing reports: {e}");
        return EXIT_USAGE;
    }
    let mut links = (Vec::new(), Vec::new());
    if let Some(dir) = &cli.evidence {
        match evidence::write(dir, info, outcomes, traffic) {
            Ok(l) => links = l,
            Err(e) => {
                eprintln!(
                    "rgtp-conformance: writing evidence into {}: {e}",
                    dir.display()
                );
                return EXIT_USAGE;
            }
        }
    }
    if let Some(page) = &cli.html {
        let (cases, run) = match &cli.evidence {
            Some(dir) => (
                evidence::relink(&links.0, dir, page),
                evidence::relink(&[links.1], dir, page).remove(0),
            ),
            None => (Vec::new(), Vec::new()),
        };
        if let Some(parent) = page.parent().filter(|p| !p.as_os_str().is_empty()) {
            let _ = std::fs::create_dir_all(parent);
        }
        if let Err(e) = std::fs::write(page, html::render(target, outcomes, &cases, &run)) {
            eprintln!("rgtp-conformance: writing {}: {e}", page.display());
            return EXIT_USAGE;
        }
    }
    if report::must_failed(outcomes) {
        EXIT_MUST_FAILED
    } else {
        EXIT_OK
    }
}

fn run(cli: &Cli) -> i32 {
    let sel = Selection {
        only: cli.only.clone(),
        skip: cli.skip.clone(),
        cases: cli.cases.clone(),
        sections: cli.sections.clone(),
    };
    let unknown = cases::unknown_cases(&sel);
    if !unknown.is_empty() {
        eprintln!(
            "rgtp-conformance: --case {}: no such case (rgtp-conformance list)",
            unknown.join(",")
        );
        return EXIT_USAGE;
    }
    let info = |target: &str, subject: String| RunInfo {
        target: target.to_string(),
        subject,
        ..RunInfo::default()
    };
    match &cli.target {
        TargetCmd::Exposer {
            addr,
            ticket,
            link,
            vlan,
            pcp,
            quiet_ms,
            cmd,
            ticket_file,
            size,
            start_timeout,
        } => {
            let quiet = Duration::from_millis(*quiet_ms);
            if let Some(template) = cmd {
                if link != "udp" {
                    eprintln!("rgtp-conformance: --cmd tests an exposer over UDP");
                    return EXIT_USAGE;
                }
                let c = rgtp_conformance::ExposerCommand {
                    template: template.clone(),
                    ticket_file: ticket_file.clone(),
                    size: *size,
                    start_timeout: Duration::from_secs(*start_timeout),
                };
                let info = RunInfo {
                    decode: Some(format!(
                        "rgtp inspect {} --ticket TICKET (TICKET: the one the command printed)",
                        evidence::PCAP
                    )),
                    ..info("exposer", template.clone())
                };
                let out = exec(cli, || rgtp_conformance::run_exposer_cmd(&c, quiet, &sel));
                return finish(&info, &out, cli);
            }
            let ticket = ticket.as_deref().unwrap_or_default();
            let ticket: rgtp::Ticket = match ticket.parse() {
                Ok(t) => t,
                Err(e) => {
                    eprintln!("rgtp-conformance: bad ticket: {e}");
                    return EXIT_USAGE;
                }
            };
            let decode = Some(format!(
                "rgtp inspect {} --ticket TICKET (TICKET: the ticket given to --ticket)",
                evidence::PCAP
            ));
            if let Some(iface) = link.strip_prefix("eth:") {
                let mac = match addr {
                    Some(a) => rgtp::ticket::parse_mac(a).ok_or_else(|| {
                        format!("over --link eth:{iface} the exposer is a MAC address such as 02-00-5e-10-00-01, not {a:?}")
                    }),
                    None => ticket.mac.ok_or_else(|| {
                        format!("the ticket names {}, not a MAC address: give the exposer's MAC (rgtp-conformance exposer MAC --link eth:{iface} …)", ticket.address())
                    }),
                };
                let mac = match mac {
                    Ok(m) => m,
                    Err(e) => {
                        eprintln!("rgtp-conformance: {e}");
                        return EXIT_USAGE;
                    }
                };
                if iface.is_empty() {
                    eprintln!("rgtp-conformance: --link eth:IFACE needs an interface name");
                    return EXIT_USAGE;
                }
                let tag = (vlan.is_some() || pcp.is_some()).then(|| rgtp_link::Vlan {
                    id: vlan.unwrap_or(0),
                    pcp: pcp.unwrap_or(0),
                    dei: false,
                });
                let endpoint = match rgtp_conformance::net::Endpoint::eth_tagged(iface, mac, tag) {
                    Ok(e) => e,
                    Err(e) => {
                        eprintln!(
                            "rgtp-conformance: cannot open raw Ethernet on {iface}: {e} (needs root or CAP_NET_RAW)"
                        );
                        return EXIT_USAGE;
                    }
                };
                let info = RunInfo {
                    decode,
                    ..info("exposer", endpoint.describe())
                };
                let out = exec(cli, || {
                    rgtp_conformance::run_exposer_on(endpoint, ticket, quiet, &sel)
                });
                return finish(&info, &out, cli);
            }
            if link != "udp" {
                eprintln!("rgtp-conformance: unknown --link {link:?} (udp or eth:IFACE)");
                return EXIT_USAGE;
            }
            if vlan.is_some() || pcp.is_some() {
                eprintln!("rgtp-conformance: --vlan and --pcp tag raw Ethernet frames: use them with --link eth:IFACE");
                return EXIT_USAGE;
            }
            let addr = match addr {
                Some(a) => resolve(a),
                None => ticket.socket_addr().map_err(|e| e.to_string()),
            };
            let addr = match addr {
                Ok(a) => a,
                Err(e) => {
                    eprintln!("rgtp-conformance: {e}");
                    return EXIT_USAGE;
                }
            };
            let info = RunInfo {
                decode,
                ..info("exposer", format!("udp {addr}"))
            };
            let out = exec(cli, || {
                rgtp_conformance::run_exposer(addr, ticket, quiet, &sel)
            });
            finish(&info, &out, cli)
        }
        TargetCmd::Puller { cmd, timeout, size } => {
            if !cmd.contains("{ticket}") || !cmd.contains("{out}") {
                eprintln!("rgtp-conformance: --cmd must contain {{ticket}} and {{out}}");
                return EXIT_USAGE;
            }
            let info = RunInfo {
                decode: Some(format!("rgtp inspect {}", evidence::PCAP)),
                ..info("puller", cmd.clone())
            };
            let out = exec(cli, || {
                rgtp_conformance::run_puller(cmd, Duration::from_secs(*timeout), *size, &sel)
            });
            finish(&info, &out, cli)
        }
        TargetCmd::Abi { lib } => {
            let out = exec(cli, || rgtp_conformance::run_abi(lib, &sel));
            finish(&info("abi", lib.display().to_string()), &out, cli)
        }
        TargetCmd::Pcap {
            file,
            ticket,
            exposer,
            mtu,
        } => {
            let ticket = match ticket.as_deref().map(str::parse::<rgtp::Ticket>) {
                None => None,
                Some(Ok(t)) => Some(t),
                Some(Err(e)) => {
                    eprintln!("rgtp-conformance: bad ticket: {e}");
                    return EXIT_USAGE;
                }
            };
            let exposer = match exposer.as_deref().map(cases::capture::parse_peer) {
                None => None,
                Some(Ok(p)) => Some(p),
                Some(Err(e)) => {
                    eprintln!("rgtp-conformance: --exposer: {e}");
                    return EXIT_USAGE;
                }
            };
            let opts = cases::capture::CaptureOptions {
                ticket,
                exposer,
                eth_mtu: Some(*mtu),
            };
            match rgtp_conformance::run_capture_file(file, opts, &sel) {
                Ok((ctx, out)) => {
                    println!("{}: {}\n", file.display(), ctx.summary());
                    let input = std::fs::canonicalize(file).unwrap_or_else(|_| file.clone());
                    let info = RunInfo {
                        input: Some(input.clone()),
                        ..info("pcap", input.display().to_string())
                    };
                    finish(&info, &(out, Traffic::default()), cli)
                }
                Err(e) => {
                    eprintln!("rgtp-conformance: {e}");
                    EXIT_USAGE
                }
            }
        }
        TargetCmd::Python { lib, python, venv } => {
            let venv = venv.clone().unwrap_or_else(default_venv);
            let out = exec(cli, || {
                rgtp_conformance::run_python(lib, python.as_deref(), &venv, &sel)
            });
            finish(&info("python", lib.display().to_string()), &out, cli)
        }
        TargetCmd::Matrix { config, out, seed } => run_matrix(config, out.as_deref(), *seed),
        TargetCmd::Gtudp {
            addr,
            cmd,
            start_timeout,
            magic,
            types,
            echo,
            quiet_ms,
        } => {
            let profile = match gtudp_profile(magic, types) {
                Ok(p) => p,
                Err(e) => {
                    eprintln!("rgtp-conformance: {e}");
                    return EXIT_USAGE;
                }
            };
            let ctx = |addr| cases::gtudp::GtudpCtx {
                addr,
                profile: profile.clone(),
                echo: *echo,
                quiet: Duration::from_millis(*quiet_ms),
            };
            let server = ServerTarget {
                cmd: cmd.as_deref(),
                addr: addr.as_deref(),
                start_timeout: *start_timeout,
                port: rgtp_conformance::command::free_udp_port,
            };
            server.run(
                cli,
                cases::Target::Gtudp,
                cases::gtudp::CASES,
                |a| cases::gtudp::answers(a, &profile),
                ctx,
                &sel,
            )
        }
        TargetCmd::Tej {
            addr,
            cmd,
            start_timeout,
            echo,
            wait_ms,
        } => {
            let ctx = |addr| cases::tej::TejCtx {
                addr,
                echo: *echo,
                wait: Duration::from_millis(*wait_ms),
            };
            let server = ServerTarget {
                cmd: cmd.as_deref(),
                addr: addr.as_deref(),
                start_timeout: *start_timeout,
                port: free_tcp_port,
            };
            server.run(
                cli,
                cases::Target::Tej,
                cases::tej::CASES,
                cases::tej::accepts,
                ctx,
                &sel,
            )
        }
        TargetCmd::List => {
            for c in cases::catalogue() {
                println!(
                    "{:<8} {:<8} {:<7} {:<6} {}",
                    c.id,
                    c.target.name(),
                    c.section,
                    c.level.name(),
                    c.title
                );
            }
            EXIT_OK
        }
    }
}

fn run_matrix(config: &Path, out: Option<&Path>, seed: u64) -> i32 {
    use rgtp_conformance::matrix;
    let text = match std::fs::read_to_string(config) {
        Ok(t) => t,
        Err(e) => {
            eprintln!("rgtp-conformance: {}: {e}", config.display());
            return EXIT_USAGE;
        }
    };
    let cfg = match matrix::Config::parse(&text) {
        Ok(c) => c,
        Err(e) => {
            eprintln!("rgtp-conformance: {}: {e}", config.display());
            return EXIT_USAGE;
        }
    };
    let out = match out {
        Some(o) => o.to_path_buf(),
        None => match tempfile::Builder::new()
            .prefix("rgtp-matrix-")
            .tempdir()
            .map(tempfile::TempDir::keep)
        {
            Ok(d) => d,
            Err(e) => {
                eprintln!("rgtp-conformance: scratch dir: {e}");
                return EXIT_USAGE;
            }
        },
    };
    let m = matrix::run(&cfg, seed, &out, |c| {
        eprintln!(
            "{} × {} / {}: {}",
            c.exposer,
            c.puller,
            c.impairment,
            c.verdict.name()
        )
    });
    let m = match m {
        Ok(m) => m,
        Err(e) => {
            eprintln!("rgtp-conformance: matrix: {e}");
            return EXIT_USAGE;
        }
    };
    print!("{}", matrix::table(&m));
    match matrix::write(&m, &out) {
        Ok(_) => println!(
            "\nseed {seed}; evidence, matrix.json and index.html in {}",
            out.display()
        ),
        Err(e) => {
            eprintln!("rgtp-conformance: writing into {}: {e}", out.display());
            return EXIT_USAGE;
        }
    }
    if m.any_failed() {
        EXIT_MUST_FAILED
    } else {
        EXIT_OK
    }
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    ExitCode::from(run(&cli) as u8)
}
