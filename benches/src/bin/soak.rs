//! Soak: exposers serving thousands of pulls over loopback UDP while a hostile
//! sender runs throughout, with RSS, open file descriptors and CPU per pull
//! sampled over time and checked for flatness.
//!
//! One exposer serves one exposure with one suite, so "mixed suites" is eight
//! exposers in this process, each on its own socket and thread: AES-256-GCM and
//! ChaCha20-Poly1305 × SHA-256 and BLAKE3, each once plain and once with Merkle
//! proofs and FEC (Reed-Solomon for one cipher, RaptorQ for the other). Pulls
//! cycle over all eight.
//!
//! The run is a sequence of rounds. A round is `--seq` pulls one after another,
//! then `--concurrency` threads (one pool for the run) doing `--per-thread` pulls
//! each at the same time;
//! every pull binds a fresh socket and checks its bytes against the source.
//! Rounds are paced so that `--pulls` pulls spread over `--duration` seconds; the
//! run stops after the last round or at the deadline, whichever comes first.
//! After each round (no pull in flight) the process trims its heap
//! (`malloc_trim`; with a fixed mmap threshold, so the allocator's caches neither
//! hide nor fake a trend) and samples its RSS (`/proc/self/statm`), its open descriptors (`/proc/self/fd`) and its CPU time
//! (`getrusage`).
//!
//! The hostile sender, from sockets on 127.0.0.1–127.0.0.5 (a fresh port every
//! few hundred datagrams), sends the exposers and the pullers it has seen
//! random garbage, truncated real datagrams, replayed real Pull_Requests, NAKs,
//! Manifests and chunks (recorded from an in-memory exchange with each exposure),
//! and forged ones (real datagrams with bytes flipped). It counts what comes back.
//!
//! Checks, after dropping the first tenth of the samples as warm-up: the median
//! of the last tenth is within the margins of the median of the first tenth for
//! RSS, descriptors and (unless `--cpu-pct off`) CPU per pull; every pull
//! succeeded with the right bytes; the hostile sender got back at most three
//! times what it sent the exposers (spec §5.1). Prints a table and exits 1 when a
//! check fails.
//!
//! ```text
//! soak [--duration 600] [--pulls 10000] [--seq 16] [--concurrency 64] [--per-thread 2]
//!      [--rss-pct 10] [--rss-kib 4096] [--fd-margin 0] [--cpu-pct 10|off] [--cpu-us 100]
//!      [--hostile-rate 2000]
//! ```

use std::fs;
use std::net::{Ipv4Addr, SocketAddr, UdpSocket};
use std::process::ExitCode;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Barrier, Mutex};
use std::thread;
use std::time::{Duration, Instant as StdInstant};

use rand::{Rng, RngCore};
use rgtp::driver::{self, Clock};
use rgtp::sink::MemSink;
use rgtp::{DynSuite, FecSpec, Prepared};
use rgtp_benches::{builder, data, rng, Choice};
use rgtp_link::udp::UdpLink;
use rgtp_link::Link;
use rgtp_proto::{
    CipherId, Exposer, ExposerConfig, ExposerStats, HashId, Instant, Peer, Puller, PullerConfig,
};

fn main() -> ExitCode {
    let opts = match Opts::parse(std::env::args().skip(1)) {
        Ok(o) => o,
        Err(e) => {
            eprintln!("soak: {e}");
            return ExitCode::from(2);
        }
    };
    if run(&opts) {
        ExitCode::SUCCESS
    } else {
        ExitCode::FAILURE
    }
}

/// Command-line settings.
#[derive(Debug, Clone)]
struct Opts {
    duration: Duration,
    pulls: u64,
    seq: u64,
    concurrency: u64,
    per_thread: u64,
    rss_pct: f64,
    rss_kib: u64,
    fd_margin: u64,
    cpu_pct: Option<f64>,
    cpu_us: f64,
    hostile_rate: u64,
}

impl Opts {
    fn parse(mut args: impl Iterator<Item = String>) -> Result<Opts, String> {
        let mut o = Opts {
            duration: Duration::from_secs(600),
            pulls: 10_000,
            seq: 16,
            concurrency: 64,
            per_thread: 2,
            rss_pct: 10.0,
            rss_kib: 4096,
            fd_margin: 0,
            cpu_pct: Some(10.0),
            cpu_us: 100.0,
            hostile_rate: 2000,
        };
        while let Some(flag) = args.next() {
            let value = args.next().ok_or(format!("{flag} needs a value"))?;
            let num = |v: &str| v.parse::<f64>().map_err(|e| format!("{flag} {v}: {e}"));
            match flag.as_str() {
                "--duration" => o.duration = Duration::from_secs_f64(num(&value)?),
                "--pulls" => o.pulls = num(&value)? as u64,
                "--seq" => o.seq = num(&value)? as u64,
                "--concurrency" => o.concurrency = num(&value)? as u64,
                "--per-thread" => o.per_thread = num(&value)? as u64,
                "--rss-pct" => o.rss_pct = num(&value)?,
                "--rss-kib" => o.rss_kib = num(&value)? as u64,
                "--fd-margin" => o.fd_margin = num(&value)? as u64,
                "--cpu-pct" if value == "off" => o.cpu_pct = None,
                "--cpu-pct" => o.cpu_pct = Some(num(&value)?),
                "--cpu-us" => o.cpu_us = num(&value)?,
                "--hostile-rate" => o.hostile_rate = num(&value)? as u64,
                _ => return Err(format!("unknown option {flag}")),
            }
        }
        if o.seq + o.concurrency * o.per_thread == 0 {
            return Err("a round needs at least one pull".into());
        }
        Ok(o)
    }

    fn per_round(&self) -> u64 {
        self.seq + self.concurrency * self.per_thread
    }
}

/// One exposure being served, as pullers and the hostile sender see it.
struct Target {
    label: String,
    addr: SocketAddr,
    prepared: Prepared,
    proofs: bool,
    data: Vec<u8>,
    /// Real datagrams of an in-memory exchange: puller → exposer, exposer → puller.
    to_exposer: Vec<Vec<u8>>,
    to_puller: Vec<Vec<u8>>,
}

/// A serving thread.
struct Server {
    stop: Arc<AtomicBool>,
    handle: thread::JoinHandle<(ExposerStats, std::io::Result<()>)>,
}

/// What the hostile sender did.
#[derive(Debug, Default)]
struct HostileCounts {
    sent: AtomicU64,
    bytes_to_exposers: AtomicU64,
    bytes_back: AtomicU64,
}

/// One sample, taken between rounds.
#[derive(Debug, Clone, Copy)]
struct Sample {
    elapsed: Duration,
    pulls: u64,
    rss_kib: u64,
    fds: u64,
    cpu_us_per_pull: f64,
    hostile: u64,
}

fn run(o: &Opts) -> bool {
    let started = StdInstant::now();
    // Every driver allocates a 2 MiB receive buffer per pull. glibc's dynamic mmap
    // threshold would soon serve those from the heap, where freed ones linger in
    // RSS by whole buffers; a fixed threshold keeps them mapped and unmapped, so
    // RSS follows what the stack holds.
    // SAFETY: mallopt has no preconditions; called before any other thread exists.
    unsafe { libc::mallopt(libc::M_MMAP_THRESHOLD, 128 * 1024) };
    let (targets, servers) = start_exposers();
    let targets = Arc::new(targets);
    println!(
        "soak: {} exposers on {}; {} pulls over {:?} in rounds of {} sequential + {}×{} concurrent; hostile ~{} datagrams/s",
        targets.len(),
        targets.iter().map(|t| t.addr.to_string()).collect::<Vec<_>>().join(" "),
        o.pulls,
        o.duration,
        o.seq,
        o.concurrency,
        o.per_thread,
        o.hostile_rate,
    );
    for t in targets.iter() {
        println!("  {:<50} {}", t.label, t.addr);
    }

    let stop = Arc::new(AtomicBool::new(false));
    let pullers_seen = Arc::new(Mutex::new(Vec::<SocketAddr>::new()));
    let counts = Arc::new(HostileCounts::default());
    let hostile = {
        let (targets, stop, seen, counts) = (
            Arc::clone(&targets),
            Arc::clone(&stop),
            Arc::clone(&pullers_seen),
            Arc::clone(&counts),
        );
        let rate = o.hostile_rate;
        thread::spawn(move || hostile(&targets, &stop, &seen, &counts, rate))
    };

    // In-flight pulls give up this long after the deadline.
    let hard_stop = Arc::new(AtomicBool::new(false));
    let rounds = o.pulls.div_ceil(o.per_round()).max(1);
    let mut samples = Vec::new();
    let mut failures = Vec::new();
    let mut done = 0u64;
    let mut cpu_before = cpu_us();
    let begin = StdInstant::now();
    println!();
    println!(
        "{:>5} {:>8} {:>7} {:>9} {:>5} {:>11} {:>9}",
        "round", "elapsed", "pulls", "RSS KiB", "fds", "CPU µs/pull", "hostile"
    );
    // The concurrent pullers: one pool of threads for the whole run, so thread
    // stacks and allocator arenas are set up once and the figures show the stack's
    // own use. Each round they start together and the round waits for all of them.
    let go = Barrier::new(o.concurrency as usize + 1);
    let finished = Barrier::new(o.concurrency as usize + 1);
    let first_of_round = AtomicU64::new(0);
    let quit = AtomicBool::new(false);
    let pool_failures = Mutex::new(Vec::new());
    thread::scope(|s| {
        for w in 0..o.concurrency {
            let (targets, seen, hard_stop) = (&targets, &pullers_seen, &hard_stop);
            let (go, finished, first_of_round, quit) = (&go, &finished, &first_of_round, &quit);
            let pool_failures = &pool_failures;
            s.spawn(move || loop {
                go.wait();
                if quit.load(Ordering::Relaxed) {
                    break;
                }
                let first = first_of_round.load(Ordering::Relaxed);
                for i in 0..o.per_thread {
                    let n = first + w * o.per_thread + i;
                    if let Err(e) = pull_one(targets, n, seen, hard_stop) {
                        pool_failures.lock().expect("lock").push(e);
                    }
                }
                finished.wait();
            });
        }
        for round in 0..rounds {
            if begin.elapsed() >= o.duration {
                break;
            }
            let mut n = round * o.per_round();
            for _ in 0..o.seq {
                if let Err(e) = pull_one(&targets, n, &pullers_seen, &hard_stop) {
                    failures.push(e);
                }
                n += 1;
            }
            first_of_round.store(n, Ordering::Relaxed);
            go.wait();
            finished.wait();
            done += o.per_round();

            // Pace: round r ends no earlier than its share of the duration.
            let due = o.duration.mul_f64((round + 1) as f64 / rounds as f64);
            if let Some(wait) = due.checked_sub(begin.elapsed()) {
                thread::sleep(wait);
            }
            let cpu_now = cpu_us();
            // Hand freed heap back first, so RSS shows what is live rather than what
            // the allocator's per-thread arenas keep cached after a concurrent phase.
            // SAFETY: malloc_trim has no preconditions.
            unsafe { libc::malloc_trim(0) };
            let sample = Sample {
                elapsed: begin.elapsed(),
                pulls: done,
                rss_kib: rss_kib(),
                fds: fd_count(),
                cpu_us_per_pull: (cpu_now - cpu_before) as f64 / o.per_round() as f64,
                hostile: counts.sent.load(Ordering::Relaxed),
            };
            cpu_before = cpu_now;
            println!(
                "{:>5} {:>7.1}s {:>7} {:>9} {:>5} {:>11.0} {:>9}",
                round + 1,
                sample.elapsed.as_secs_f64(),
                sample.pulls,
                sample.rss_kib,
                sample.fds,
                sample.cpu_us_per_pull,
                sample.hostile
            );
            samples.push(sample);
            if begin.elapsed() > o.duration + Duration::from_secs(30) {
                hard_stop.store(true, Ordering::Relaxed);
            }
        }
        quit.store(true, Ordering::Relaxed);
        go.wait();
    });
    failures.extend(pool_failures.into_inner().expect("lock"));

    stop.store(true, Ordering::Relaxed);
    hostile.join().expect("hostile thread panicked");
    let mut ok = true;
    println!();
    println!(
        "{:<50} {:>9} {:>9} {:>9} {:>9} {:>9} {:>12} {:>12}",
        "exposer",
        "requests",
        "chunks",
        "malformed",
        "bad_token",
        "unexpect",
        "unval_in",
        "unval_out"
    );
    for (t, s) in targets.iter().zip(servers) {
        s.stop.store(true, Ordering::Relaxed);
        let (st, result) = s.handle.join().expect("exposer thread panicked");
        println!(
            "{:<50} {:>9} {:>9} {:>9} {:>9} {:>9} {:>12} {:>12}",
            t.label,
            st.requests,
            st.chunks_sent,
            st.malformed,
            st.bad_token,
            st.unexpected,
            st.unvalidated_bytes_in,
            st.unvalidated_bytes_out
        );
        if let Err(e) = result {
            println!("FAIL: exposer {} stopped with {e}", t.label);
            ok = false;
        }
        if st.unvalidated_bytes_out > 3 * st.unvalidated_bytes_in {
            println!("FAIL: exposer {} sent more than 3× unvalidated", t.label);
            ok = false;
        }
    }

    let sent_x = counts.bytes_to_exposers.load(Ordering::Relaxed);
    let back = counts.bytes_back.load(Ordering::Relaxed);
    println!();
    println!(
        "hostile: {} datagrams sent, {} bytes to exposers, {} bytes came back ({:.3}×)",
        counts.sent.load(Ordering::Relaxed),
        sent_x,
        back,
        back as f64 / sent_x.max(1) as f64
    );
    if back > 3 * sent_x {
        println!("FAIL: the exposers amplified the hostile sender's traffic more than 3×");
        ok = false;
    }
    println!(
        "pulls: {} done, {} failed, in {:.1}s (total run {:.1}s)",
        done,
        failures.len(),
        begin.elapsed().as_secs_f64(),
        started.elapsed().as_secs_f64()
    );
    for f in failures.iter().take(10) {
        println!("FAIL: {f}");
    }
    ok &= failures.is_empty();
    ok &= check_flat(o, &samples);
    println!("{}", if ok { "soak: PASS" } else { "soak: FAIL" });
    ok
}

/// A figure of a sample, and its margins (percent, absolute) or `None` to report only.
type Check = (&'static str, fn(&Sample) -> f64, Option<(f64, f64)>);

/// Compares the first and last tenth of the samples after warm-up.
fn check_flat(o: &Opts, samples: &[Sample]) -> bool {
    let warm = (samples.len() / 10).max(1);
    if samples.len() < warm + 2 {
        println!("FAIL: only {} samples; run longer", samples.len());
        return false;
    }
    let rest = &samples[warm..];
    let w = (rest.len() / 10).max(1);
    let (head, tail) = (&rest[..w], &rest[rest.len() - w..]);
    let med = |s: &[Sample], f: fn(&Sample) -> f64| {
        let mut v: Vec<f64> = s.iter().map(f).collect();
        v.sort_by(f64::total_cmp);
        v[v.len() / 2]
    };
    let mut ok = true;
    println!();
    println!(
        "flatness (median of samples {}..{} vs {}..{}, after {} warm-up):",
        warm + 1,
        warm + w,
        samples.len() - w + 1,
        samples.len(),
        warm
    );
    let checks: [Check; 3] = [
        (
            "RSS KiB",
            |s| s.rss_kib as f64,
            Some((o.rss_pct, o.rss_kib as f64)),
        ),
        ("fds", |s| s.fds as f64, Some((0.0, o.fd_margin as f64))),
        (
            "CPU µs/pull",
            |s| s.cpu_us_per_pull,
            o.cpu_pct.map(|p| (p, o.cpu_us)),
        ),
    ];
    for (name, f, margin) in checks {
        let (a, b) = (med(head, f), med(tail, f));
        let verdict = match margin {
            Some((pct, abs)) => {
                let limit = a * (1.0 + pct / 100.0) + abs;
                let good = b <= limit;
                ok &= good;
                format!(
                    "limit {limit:.0} (+{pct}% +{abs}): {}",
                    if good { "flat" } else { "FAIL: grew" }
                )
            }
            None => "reported only".into(),
        };
        println!("  {name:<12} first {a:>10.0}  last {b:>10.0}  {verdict}");
    }
    ok
}

/// The eight exposures, each sealed, recorded and served on its own loopback socket.
fn start_exposers() -> (Vec<Target>, Vec<Server>) {
    let mut targets = Vec::new();
    let mut servers = Vec::new();
    let suites = [
        (CipherId::Aes256Gcm, HashId::Sha256),
        (CipherId::Aes256Gcm, HashId::Blake3),
        (CipherId::ChaCha20Poly1305, HashId::Sha256),
        (CipherId::ChaCha20Poly1305, HashId::Blake3),
    ];
    for (i, (cipher, hash)) in suites.into_iter().enumerate() {
        for extras in [false, true] {
            let n = (2 * i + usize::from(extras)) as u64;
            let fec: Option<FecSpec> = extras.then(|| {
                let spec = if cipher == CipherId::Aes256Gcm {
                    "rs:255,223"
                } else {
                    "raptorq:0.25"
                };
                spec.parse().expect("literal FEC spec")
            });
            let link = UdpLink::bind(SocketAddr::from((Ipv4Addr::LOCALHOST, 0)))
                .expect("bind loopback UDP");
            let caps = link.capabilities();
            let config = ExposerConfig::for_link(&caps);
            // 40–75 KiB, so pulls are short and many.
            let bytes = data(40 * 1024 + 5000 * n as usize, 0x50a6 + n);
            let choice = Choice {
                cipher: Some(cipher),
                hash: Some(hash),
                fec,
            };
            let prepared = builder(choice, config)
                .with_proofs(extras)
                .expose(&bytes)
                .expect("soak exposure");
            let label = format!(
                "{}+{}{}",
                cipher.name(),
                hash.name(),
                match fec {
                    Some(f) => format!(" proofs fec={f}"),
                    None => String::new(),
                }
            );
            let (to_exposer, to_puller) = record(&prepared, extras);
            let addr = link.local_addr();
            servers.push(serve(prepared.exposer(), link));
            targets.push(Target {
                label,
                addr,
                prepared,
                proofs: extras,
                data: bytes,
                to_exposer,
                to_puller,
            });
        }
    }
    (targets, servers)
}

fn serve(mut exposer: Exposer, mut link: UdpLink) -> Server {
    let stop = Arc::new(AtomicBool::new(false));
    let flag = Arc::clone(&stop);
    let handle = thread::spawn(move || {
        let clock = Clock::new();
        let r = driver::serve(&mut exposer, &mut link, &clock, &flag, |_| {});
        (exposer.stats(), r)
    });
    Server { stop, handle }
}

fn puller_config(t: &Target, exposer: SocketAddr) -> PullerConfig {
    let ticket = t.prepared.ticket(exposer);
    let mut cfg = PullerConfig::new(ticket.exposure_id, Peer::Ip(exposer), ticket.key);
    cfg.expected_cipher = ticket.cipher;
    cfg.expected_hash = ticket.hash;
    cfg.want_proofs = t.proofs;
    cfg
}

/// Real datagrams of a pull run in memory on virtual time (no socket): what a
/// puller sends the exposer and what the exposer answers, for replay.
fn record(prepared: &Prepared, proofs: bool) -> (Vec<Vec<u8>>, Vec<Vec<u8>>) {
    let xpeer = SocketAddr::from((Ipv4Addr::LOCALHOST, 9));
    let ppeer = Peer::Ip(SocketAddr::from((Ipv4Addr::LOCALHOST, 10)));
    let mut cfg = PullerConfig::new(
        *prepared.exposure.id(),
        Peer::Ip(xpeer),
        prepared.key.clone(),
    );
    cfg.want_proofs = proofs;
    let mut now = Instant::from_millis(1_000);
    let mut puller = Puller::new(cfg, DynSuite, now);
    let mut exposer = prepared.exposer();
    let (mut to_x, mut to_p) = (Vec::new(), Vec::new());
    let mut buf = Vec::new();
    for _ in 0..200 {
        puller.handle_timeout(now);
        while let Some(t) = puller.poll_transmit(now, &mut buf) {
            for d in t.datagrams(&buf) {
                exposer.handle_datagram(now, ppeer, d);
                to_x.push(d.to_vec());
            }
        }
        while let Some(t) = exposer.poll_transmit(now, &mut buf) {
            for d in t.datagrams(&buf) {
                let mut copy = d.to_vec();
                let _ = puller.handle_datagram(now, Peer::Ip(xpeer), &mut copy);
                to_p.push(d.to_vec());
            }
        }
        while puller.poll_event().is_some() {}
        if to_p.len() >= 64 || puller.is_finished() {
            break;
        }
        now = now + Duration::from_millis(5);
    }
    to_x.truncate(64);
    to_p.truncate(64);
    (to_x, to_p)
}

/// Pull number `n`: target `n mod 8`, a fresh socket, the bytes checked.
fn pull_one(
    targets: &[Target],
    n: u64,
    seen: &Mutex<Vec<SocketAddr>>,
    stop: &AtomicBool,
) -> Result<(), String> {
    let t = &targets[(n % targets.len() as u64) as usize];
    let mut link = UdpLink::bind(SocketAddr::from((Ipv4Addr::LOCALHOST, 0)))
        .map_err(|e| format!("pull {n}: bind: {e}"))?;
    {
        // The hostile sender learns recent pullers' ports (an on-path observer could).
        let mut seen = seen.lock().expect("lock");
        if seen.len() >= 256 {
            seen.remove(0);
        }
        seen.push(link.local_addr());
    }
    let clock = Clock::new();
    let mut puller = Puller::new(puller_config(t, t.addr), DynSuite, clock.now());
    let mut sink = MemSink::default();
    driver::pull_until(&mut puller, &mut link, &clock, &mut sink, stop, |_| {})
        .map_err(|e| format!("pull {n} from {}: {e}; {:?}", t.label, puller.stats()))?;
    if sink.data() != t.data.as_slice() {
        return Err(format!("pull {n} from {}: bytes differ", t.label));
    }
    Ok(())
}

/// Sends hostile datagrams at about `rate` per second until `stop`.
fn hostile(
    targets: &[Target],
    stop: &AtomicBool,
    seen: &Mutex<Vec<SocketAddr>>,
    counts: &HostileCounts,
    rate: u64,
) {
    let mut r = rng(0x0bad_5eed);
    let bind = |host: u8| {
        let s = UdpSocket::bind(SocketAddr::from((Ipv4Addr::new(127, 0, 0, host), 0)))
            .expect("bind hostile socket");
        s.set_nonblocking(true).expect("nonblocking");
        s
    };
    let mut socks: Vec<UdpSocket> = (1..=5).map(bind).collect();
    let mut buf = vec![0u8; 65536];
    let mut recv = vec![0u8; 65536];
    let batch = (rate / 100).max(1);
    let mut next = StdInstant::now();
    let mut sent = 0u64;
    while !stop.load(Ordering::Relaxed) {
        for _ in 0..batch {
            let t = &targets[r.gen_range(0..targets.len())];
            let kind = r.gen_range(0..6u8);
            let len;
            // Kinds 0–3 go to the exposer, 4–5 to a puller seen lately.
            let to_puller = kind >= 4;
            match kind {
                0 => {
                    // Random garbage.
                    len = r.gen_range(0..1500);
                    r.fill_bytes(&mut buf[..len]);
                }
                1 => {
                    // A real datagram, truncated.
                    let d = pick(&mut r, &t.to_exposer, &t.to_puller);
                    len = r.gen_range(0..d.len().max(1));
                    buf[..len].copy_from_slice(&d[..len]);
                }
                2 | 4 => {
                    // A replayed real datagram (Pull_Request, NAK, Manifest, chunk).
                    let d = pick(&mut r, &t.to_exposer, &t.to_puller);
                    len = d.len();
                    buf[..len].copy_from_slice(d);
                }
                _ => {
                    // A forged one: real, with a few bytes flipped.
                    let d = pick(&mut r, &t.to_exposer, &t.to_puller);
                    len = d.len();
                    buf[..len].copy_from_slice(d);
                    for _ in 0..r.gen_range(1..4) {
                        if len > 0 {
                            let i = r.gen_range(0..len);
                            buf[i] ^= r.gen_range(1..=255u8);
                        }
                    }
                }
            }
            let dest = if to_puller {
                let seen = seen.lock().expect("lock");
                if seen.is_empty() {
                    t.addr
                } else {
                    seen[r.gen_range(0..seen.len())]
                }
            } else {
                t.addr
            };
            let s = &socks[r.gen_range(0..socks.len())];
            if s.send_to(&buf[..len], dest).is_ok() {
                sent += 1;
                counts.sent.fetch_add(1, Ordering::Relaxed);
                if !to_puller {
                    counts
                        .bytes_to_exposers
                        .fetch_add(len as u64, Ordering::Relaxed);
                }
            }
        }
        for s in &socks {
            while let Ok(n) = s.recv(&mut recv) {
                counts.bytes_back.fetch_add(n as u64, Ordering::Relaxed);
            }
        }
        // A fresh source port now and then, so exposers meet ever new peers.
        if sent % 500 < batch {
            let i = r.gen_range(0..socks.len());
            socks[i] = bind(1 + i as u8);
        }
        next += Duration::from_millis(10);
        match next.checked_duration_since(StdInstant::now()) {
            Some(wait) => thread::sleep(wait),
            None => next = StdInstant::now(),
        }
    }
}

fn pick<'a>(r: &mut impl Rng, a: &'a [Vec<u8>], b: &'a [Vec<u8>]) -> &'a [u8] {
    let all = a.len() + b.len();
    if all == 0 {
        return &[];
    }
    let i = r.gen_range(0..all);
    if i < a.len() {
        &a[i]
    } else {
        &b[i - a.len()]
    }
}

/// Resident set size from `/proc/self/statm`, in KiB.
fn rss_kib() -> u64 {
    let statm = fs::read_to_string("/proc/self/statm").unwrap_or_default();
    let pages: u64 = statm
        .split_whitespace()
        .nth(1)
        .and_then(|v| v.parse().ok())
        .unwrap_or(0);
    // SAFETY: sysconf has no preconditions.
    let page = unsafe { libc::sysconf(libc::_SC_PAGESIZE) }.max(1) as u64;
    pages * page / 1024
}

/// Open descriptors (entries of `/proc/self/fd`, the listing's own included).
fn fd_count() -> u64 {
    fs::read_dir("/proc/self/fd").map_or(0, |d| d.count() as u64)
}

/// User plus system CPU time of the whole process, in µs.
fn cpu_us() -> u64 {
    // SAFETY: getrusage writes a plain struct we own.
    let mut ru: libc::rusage = unsafe { std::mem::zeroed() };
    // SAFETY: RUSAGE_SELF and a valid pointer.
    if unsafe { libc::getrusage(libc::RUSAGE_SELF, &mut ru) } != 0 {
        return 0;
    }
    let us = |t: libc::timeval| t.tv_sec as u64 * 1_000_000 + t.tv_usec as u64;
    us(ru.ru_utime) + us(ru.ru_stime)
}
