//! `rgtp gtudp`: serve and send gtUDP datagrams over UDP, on the one driver.

use std::collections::HashMap;
use std::io::{self, BufRead, Write};
use std::net::{Ipv4Addr, Ipv6Addr, SocketAddr, ToSocketAddrs};
use std::path::PathBuf;
use std::sync::atomic::Ordering;
use std::time::Duration;

use rand::RngCore;
use redgiant_base::driver::{Application, Driver, Finish, Turn};
use redgiant_base::{Peer, SystemClock};
use redgiant_gtudp::{
    AuthConfig, AuthKey, Config, Datagram, Event, ExchangeId, FailReason, Gtudp, Profile,
    ReferenceIds, Timers,
};
use rgtp_link::udp::UdpLink;

use super::exit;

#[derive(clap::Args)]
pub(crate) struct GtudpArgs {
    #[command(subcommand)]
    command: GtudpCommand,
}

#[derive(clap::Subcommand)]
enum GtudpCommand {
    /// Receive gtUDP datagrams until Ctrl-C, printing one line per datagram.
    Serve(ServeArgs),
    /// Send each FILE as one gtUDP datagram and wait for each to be confirmed.
    Send(SendArgs),
}

#[derive(clap::Args)]
struct ProfileArgs {
    /// Magic bytes in hex at the start of every datagram (default: none).
    #[arg(long, value_name = "HEX", default_value = "")]
    magic: String,
    /// DATA, RECV and ACK type codes in hex, all of one length.
    #[arg(long, value_name = "HEX,HEX,HEX", default_value = "1d,5f,ae")]
    types: String,
    /// Repeat after the reference implementation's fixed 0.5 s instead of
    /// a timeout from measured round trips.
    #[arg(long)]
    reference_timers: bool,
    /// Use the authenticated profile with this 32-byte key, in hex (64
    /// digits); the peer must use the same key.
    #[arg(long, value_name = "HEX", conflicts_with = "key_file")]
    key: Option<String>,
    /// Like --key, reading the hex key from a file.
    #[arg(long, value_name = "PATH")]
    key_file: Option<PathBuf>,
}

#[derive(clap::Args)]
struct ServeArgs {
    /// Address to listen on.
    #[arg(long, value_name = "HOST:PORT")]
    bind: String,
    /// Send each datagram back to its sender.
    #[arg(long)]
    echo: bool,
    #[command(flatten)]
    profile: ProfileArgs,
}

#[derive(clap::Args)]
struct SendArgs {
    /// Where to send.
    #[arg(long, value_name = "HOST:PORT")]
    to: String,
    /// Wait for every datagram to come back (from `serve --echo`).
    #[arg(long)]
    expect_echo: bool,
    /// Seconds to wait for every confirmation (and echo).
    #[arg(long, default_value_t = 10.0)]
    timeout: f64,
    /// Datagrams in flight at once.
    #[arg(long, default_value_t = 64)]
    window: usize,
    #[command(flatten)]
    profile: ProfileArgs,
    /// Files, each sent as one datagram; `-` sends each line of stdin as one.
    #[arg(required = true, value_name = "FILE")]
    files: Vec<PathBuf>,
}

type Failure = (u8, String);

pub(crate) fn run(args: GtudpArgs) -> Result<(), Failure> {
    match args.command {
        GtudpCommand::Serve(a) => serve(a),
        GtudpCommand::Send(a) => send(a),
    }
}

fn usage(msg: String) -> Failure {
    (exit::USAGE, msg)
}

fn config(p: &ProfileArgs) -> Result<Config, Failure> {
    let magic = hex::decode(p.magic.trim())
        .map_err(|e| usage(format!("--magic {:?} is not hex: {e}", p.magic)))?;
    let types: Vec<Vec<u8>> = p
        .types
        .split(',')
        .map(|t| hex::decode(t.trim()))
        .collect::<Result<_, _>>()
        .map_err(|e| usage(format!("--types {:?} is not hex: {e}", p.types)))?;
    let [data, recv, ack]: [Vec<u8>; 3] = types.try_into().map_err(|_| {
        usage(format!(
            "--types {:?}: give three type codes, DATA,RECV,ACK",
            p.types
        ))
    })?;
    let profile = Profile::new(magic, data, recv, ack)
        .map_err(|e| usage(format!("--types {:?}: {e}", p.types)))?;
    let mut config = Config::default().with_profile(profile);
    if p.reference_timers {
        config.timers = Timers::Reference;
    }
    let key = match (&p.key, &p.key_file) {
        (Some(hex), _) => Some(AuthKey::from_hex(hex).map_err(|e| usage(format!("--key: {e}")))?),
        (None, Some(path)) => {
            let text = std::fs::read_to_string(path)
                .map_err(|e| usage(format!("--key-file {}: cannot read: {e}", path.display())))?;
            Some(
                AuthKey::from_hex(&text)
                    .map_err(|e| usage(format!("--key-file {}: {e}", path.display())))?,
            )
        }
        (None, None) => None,
    };
    if let Some(key) = key {
        // A fresh random session for every run (spec/gtudp.md §8).
        let session = rand::rngs::OsRng.next_u64();
        config = config.with_auth(AuthConfig::new(key, session));
    }
    Ok(config)
}

fn resolve(s: &str) -> Result<SocketAddr, Failure> {
    s.to_socket_addrs()
        .map_err(|e| usage(format!("cannot resolve {s:?}: {e} (use HOST:PORT)")))?
        .next()
        .ok_or_else(|| usage(format!("{s:?} resolves to no address")))
}

/// A gtUDP endpoint with reference-style identities from a random counter.
fn endpoint(config: Config) -> Gtudp {
    Gtudp::new(config, ReferenceIds::new(rand::thread_rng().next_u32()))
}

/// `from=ADDR id=HEX len=N data=TEXT`, the payload with non-printable
/// bytes (and backslashes) escaped as `\xNN`.
fn describe(d: &Datagram<'_>) -> String {
    let mut text = String::with_capacity(d.payload.len());
    for &b in d.payload {
        if (0x20..0x7f).contains(&b) && b != b'\\' {
            text.push(b as char);
        } else {
            text.push_str(&format!("\\x{b:02x}"));
        }
    }
    format!(
        "from={} id={} len={} data={text}",
        d.from,
        d.id,
        d.payload.len()
    )
}

struct ServeApp {
    echo: bool,
    echoes: Vec<(Peer, Vec<u8>)>,
}

impl Application<Gtudp> for ServeApp {
    type Output = ();
    type Error = io::Error;

    fn deliver(&mut self, d: Datagram<'_>) -> io::Result<()> {
        let mut out = io::stdout().lock();
        writeln!(out, "{}", describe(&d))?;
        out.flush()?;
        if self.echo {
            self.echoes.push((d.from, d.payload.to_vec()));
        }
        Ok(())
    }

    fn event(&mut self, e: &mut Gtudp, ev: Event) -> io::Result<Option<()>> {
        for (to, p) in self.echoes.drain(..) {
            e.send_to(to, &p);
        }
        if let Event::Failed(x, why) = ev {
            eprintln!("rgtp: echo {} not confirmed: {why:?}", x.0);
        }
        Ok(None)
    }
}

fn serve(a: ServeArgs) -> Result<(), Failure> {
    let config = config(&a.profile)?;
    let addr = resolve(&a.bind)?;
    let link =
        UdpLink::bind(addr).map_err(|e| (exit::IO, format!("cannot bind UDP {addr}: {e}")))?;
    let local = link.local_addr();
    println!("listening on {local}");
    let _ = io::stdout().flush();
    super::install_stop_handler();
    let mut ep = endpoint(config);
    let mut app = ServeApp {
        echo: a.echo,
        echoes: Vec::new(),
    };
    let mut driver = Driver::new(link);
    match driver.run(&mut ep, &mut app, &super::STOP, |_, _| {}) {
        Ok(Finish::Done(())) | Ok(Finish::Stopped) => {}
        Err(e) => return Err((exit::IO, format!("gtUDP on {local}: {e}"))),
    }
    let s = ep.stats();
    eprint!(
        "rgtp: gtudp serve: {} delivered, {} duplicates, {} foreign datagrams",
        s.delivered,
        s.duplicates,
        s.truncated + s.wrong_magic + s.unknown_type + s.trailing_bytes
    );
    if ep.config().auth.is_some() {
        eprint!(
            ", {} rejected ({} forged or under another key, {} replayed)",
            s.auth_failed + s.replayed + s.sessions_full,
            s.auth_failed,
            s.replayed
        );
    }
    eprintln!();
    if super::STOP.load(Ordering::Relaxed) {
        super::die_of_stop_signal();
    }
    Ok(())
}

/// One datagram to send: where it came from, for messages, and its bytes.
struct Item {
    name: String,
    payload: Vec<u8>,
}

fn items(files: &[PathBuf]) -> Result<Vec<Item>, Failure> {
    let mut out = Vec::new();
    for f in files {
        if f.as_os_str() == "-" {
            for (i, line) in io::stdin().lock().split(b'\n').enumerate() {
                let mut line = line.map_err(|e| (exit::IO, format!("cannot read stdin: {e}")))?;
                if line.last() == Some(&b'\r') {
                    line.pop();
                }
                out.push(Item {
                    name: format!("stdin line {}", i + 1),
                    payload: line,
                });
            }
            continue;
        }
        let payload = std::fs::read(f)
            .map_err(|e| (exit::IO, format!("cannot read {}: {e}", f.display())))?;
        out.push(Item {
            name: f.display().to_string(),
            payload,
        });
    }
    Ok(out)
}

struct SendApp {
    to: Peer,
    deadline: redgiant_base::Instant,
    window: usize,
    items: Vec<Item>,
    next: usize,
    open: HashMap<ExchangeId, usize>,
    failed: Vec<(usize, FailReason)>,
    confirmed: usize,
    /// Echoes still expected, by payload: how many copies.
    awaited: HashMap<Vec<u8>, usize>,
    echoes: usize,
}

impl SendApp {
    fn fill(&mut self, e: &mut Gtudp) {
        while self.open.len() < self.window && self.next < self.items.len() {
            let x = e.send_confirmed(self.to, &self.items[self.next].payload, self.deadline);
            self.open.insert(x, self.next);
            self.next += 1;
        }
    }

    fn settled(&self) -> bool {
        self.next == self.items.len() && self.open.is_empty()
    }

    fn done(&self) -> bool {
        self.settled() && (self.awaited.is_empty() || !self.failed.is_empty())
    }
}

impl Application<Gtudp> for SendApp {
    type Output = ();
    type Error = io::Error;

    fn deliver(&mut self, d: Datagram<'_>) -> io::Result<()> {
        if let Some(n) = self.awaited.get_mut(d.payload) {
            *n -= 1;
            if *n == 0 {
                self.awaited.remove(d.payload);
            }
            self.echoes += 1;
        } else {
            eprintln!("rgtp: unexpected datagram: {}", describe(&d));
        }
        Ok(())
    }

    fn event(&mut self, e: &mut Gtudp, ev: Event) -> io::Result<Option<()>> {
        match ev {
            Event::Confirmed(x) => {
                self.open.remove(&x);
                self.confirmed += 1;
            }
            Event::Failed(x, why) => {
                if let Some(i) = self.open.remove(&x) {
                    self.failed.push((i, why));
                }
            }
            Event::Received { .. } => {}
        }
        self.fill(e);
        Ok(self.done().then_some(()))
    }
}

fn send(a: SendArgs) -> Result<(), Failure> {
    let config = config(&a.profile)?;
    if !(a.timeout.is_finite() && a.timeout > 0.0) {
        return Err(usage(format!(
            "--timeout {}: give positive seconds",
            a.timeout
        )));
    }
    let timeout = Duration::from_secs_f64(a.timeout);
    let to = resolve(&a.to)?;
    let items = items(&a.files)?;
    let too_big = items.iter().find(|i| i.payload.len() > config.max_payload);
    if let Some(i) = too_big {
        return Err(usage(format!(
            "{} has {} bytes; one gtUDP datagram carries at most {}",
            i.name,
            i.payload.len(),
            config.max_payload
        )));
    }
    let local: SocketAddr = match to {
        SocketAddr::V4(_) => (Ipv4Addr::UNSPECIFIED, 0).into(),
        SocketAddr::V6(_) => (Ipv6Addr::UNSPECIFIED, 0).into(),
    };
    let link =
        UdpLink::bind(local).map_err(|e| (exit::IO, format!("cannot bind UDP {local}: {e}")))?;
    let clock = SystemClock::new();
    let start = clock.now();
    let mut awaited = HashMap::new();
    if a.expect_echo {
        for i in &items {
            *awaited.entry(i.payload.clone()).or_insert(0) += 1;
        }
    }
    let mut app = SendApp {
        to: Peer::Ip(to),
        deadline: start + timeout,
        window: a.window.max(1),
        items,
        next: 0,
        open: HashMap::new(),
        failed: Vec::new(),
        confirmed: 0,
        awaited,
        echoes: 0,
    };
    let mut ep = endpoint(config);
    app.fill(&mut ep);
    let mut driver = Driver::new(link);
    let io_err = |e: io::Error| (exit::IO, format!("gtUDP to {to}: {e}"));
    let wait = Duration::from_millis(20);
    if !app.done() {
        loop {
            if let Turn::Done(()) = driver.turn(&mut ep, &mut app, wait).map_err(io_err)? {
                break;
            }
            if driver.clock().now() > start + timeout + wait {
                break;
            }
        }
    }
    // Let the peer's exchanges towards us (echoes) finish: our RECVs need its ACKs.
    let linger = driver.clock().now() + Duration::from_secs(2);
    while !ep.is_idle() && driver.clock().now() < linger {
        driver.turn(&mut ep, &mut app, wait).map_err(io_err)?;
    }
    if let Some(&(i, why)) = app.failed.first() {
        let why = match why {
            FailReason::Deadline => format!("no RECV within {timeout:?}"),
            other => format!("{other:?}"),
        };
        return Err((
            exit::TIMEOUT,
            format!(
                "{} of {} datagrams not confirmed by {to}; first: {} ({why})",
                app.failed.len(),
                app.items.len(),
                app.items[i].name
            ),
        ));
    }
    if !app.settled() {
        return Err((
            exit::TIMEOUT,
            format!(
                "{} of {} datagrams not confirmed by {to} within {timeout:?}",
                app.items.len() - app.confirmed,
                app.items.len()
            ),
        ));
    }
    if !app.awaited.is_empty() {
        let missing: usize = app.awaited.values().sum();
        return Err((
            exit::TIMEOUT,
            format!(
                "{missing} of {} echoes did not come back from {to} within {timeout:?}",
                app.items.len()
            ),
        ));
    }
    let s = ep.stats();
    print!("sent {} datagrams to {to}, all confirmed", app.items.len());
    if a.expect_echo {
        print!(", {} echoes", app.echoes);
    }
    println!(" ({} repeats)", s.data_repeated);
    Ok(())
}
