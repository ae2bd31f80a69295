//! Flows on loopback, against RGTP (benches/flow.sh).
//!
//! (a) 64-byte SDUs over a reliable flow (QoS `data`): round trips of one
//!     message at a time to an echoing peer (p50, p99), and messages/s of a
//!     one-way stream where the flow's send window bounds what is
//!     outstanding (each blocking write waits while the window is full).
//! (b) Bulk goodput of one file, three ways: written as SDUs through a
//!     reliable flow (loss = 0) into a file at the receiver; a plain RGTP
//!     pull of the same bytes (sealed beforehand, as `rgtp expose` would
//!     have them; sealing timed apart); the flow hand-off of
//!     `rgtp::flow_bulk`, timed from the sender's call (sealing included)
//!     to the receiver holding the verified file.
//!
//! Each figure is taken `--runs` times; medians are printed, with ratios.
//! Every received file is compared with the source.
//!
//!   flow-bench [--runs 5] [--size-mib 64] [--sdu 65536] [--pings 5000] [--messages 50000]

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::atomic::AtomicBool;
use std::time::{Duration, Instant};

use rand::{RngCore, SeedableRng};
use redgiant_flow::net::names::Names;
use redgiant_flow::net::{Flow, FlowNetError, FlowNode, NodeConfig};
use redgiant_flow::{Config, QoS};
use rgtp::driver::{self, Clock};
use rgtp::files::{pull_file, NoProgress, PullJob};
use rgtp::flow_bulk::{self, Quiet, RecvOptions, SendOptions};
use rgtp::{Backend, ExposerBuilder};
use rgtp_link::udp::UdpLink;
use rgtp_link::Link;
use rgtp_proto::{Peer, PullerConfig};

const T: Duration = Duration::from_secs(60);

struct Args {
    runs: usize,
    size: usize,
    sdu: usize,
    pings: usize,
    messages: usize,
}

fn args() -> Args {
    let mut a = Args {
        runs: 5,
        size: 64 << 20,
        sdu: 64 << 10,
        pings: 5000,
        messages: 50_000,
    };
    let mut it = std::env::args().skip(1);
    while let Some(k) = it.next() {
        let mut v = || -> usize {
            it.next()
                .and_then(|v| v.parse().ok())
                .unwrap_or_else(|| usage(&k))
        };
        match k.as_str() {
            "--runs" => a.runs = v().max(1),
            "--size-mib" => a.size = v() << 20,
            "--sdu" => a.sdu = v().max(1),
            "--pings" => a.pings = v().max(1),
            "--messages" => a.messages = v().max(1),
            _ => usage(&k),
        }
    }
    a
}

fn usage(at: &str) -> ! {
    eprintln!(
        "flow-bench: bad argument {at:?}\nusage: flow-bench [--runs 5] [--size-mib 64] [--sdu 65536] [--pings 5000] [--messages 50000]"
    );
    std::process::exit(2)
}

fn node() -> FlowNode {
    let config = NodeConfig {
        endpoint: Config::default(),
        names: Names::default(),
    };
    FlowNode::bind_with("127.0.0.1:0".parse().unwrap(), config).expect("bind a flow node")
}

/// Two nodes and a reliable flow between them (the nodes must outlive it).
fn pair(name: &str) -> (FlowNode, FlowNode, Flow, Flow) {
    let (a, b) = (node(), node());
    b.register(name).expect("register");
    let at: SocketAddr = b.local_addr();
    let (fa, fb) = std::thread::scope(|s| {
        let acc = s.spawn(|| b.accept(Some(T)).expect("accept"));
        let fa = a
            .alloc(&format!("{name}@{at}"), QoS::DATA, T)
            .expect("alloc");
        (fa, acc.join().unwrap())
    });
    (a, b, fa, fb)
}

/// The median, NaN (printed as such) if every run failed.
fn median(v: &mut [f64]) -> f64 {
    if v.is_empty() {
        return f64::NAN;
    }
    v.sort_by(|a, b| a.total_cmp(b));
    v[v.len() / 2]
}

fn percentile(sorted: &[Duration], p: usize) -> Duration {
    sorted[(sorted.len() - 1) * p / 100]
}

/// Round trips of one 64-byte message at a time: (p50 µs, p99 µs).
fn ping_pong(pings: usize) -> (f64, f64) {
    let (_a, _b, fa, fb) = pair("bench-echo");
    let mut rtts = Vec::with_capacity(pings);
    std::thread::scope(|s| {
        s.spawn(|| loop {
            match fb.read(Some(T)) {
                Ok(m) => fb.write(&m).expect("echo"),
                Err(FlowNetError::PeerGone | FlowNetError::Deallocated) => return,
                Err(e) => panic!("echo side: {e}"),
            }
        });
        let mut msg = [0u8; 64];
        for i in 0..pings {
            msg[..8].copy_from_slice(&(i as u64).to_be_bytes());
            let t0 = Instant::now();
            fa.write(&msg).expect("write");
            let back = fa.read(Some(T)).expect("echo back");
            rtts.push(t0.elapsed());
            assert_eq!(back, msg, "echo {i} differs");
        }
        fa.dealloc().unwrap();
    });
    rtts.sort_unstable();
    let us = |d: Duration| d.as_secs_f64() * 1e6;
    (us(percentile(&rtts, 50)), us(percentile(&rtts, 99)))
}

/// How long a reader waits for the next SDU before calling the run stalled.
const STALL: Duration = Duration::from_secs(15);

/// Runs `write` on another thread while `read` runs here; if either fails,
/// both ends are deallocated so the other wakes, and the first error is
/// returned. Otherwise the seconds both took.
fn one_way(
    fa: &Flow,
    fb: &Flow,
    write: impl FnOnce() -> Result<(), String> + Send,
    read: impl FnOnce() -> Result<(), String>,
) -> Result<f64, String> {
    let t0 = Instant::now();
    std::thread::scope(|s| {
        let tx = s.spawn(write);
        let rx = read();
        if rx.is_err() {
            let _ = fb.dealloc();
            let _ = fa.dealloc();
        }
        let tx = tx.join().unwrap();
        rx.and(tx).map(|()| t0.elapsed().as_secs_f64())
    })
}

/// One-way 64-byte messages as fast as the flow's window lets: messages/s.
fn stream(messages: usize) -> Result<f64, String> {
    let (_a, _b, fa, fb) = pair("bench-stream");
    let secs = one_way(
        &fa,
        &fb,
        || {
            let mut msg = [7u8; 64];
            for i in 0..messages {
                msg[..8].copy_from_slice(&(i as u64).to_be_bytes());
                fa.write(&msg).map_err(|e| format!("write {i}: {e}"))?;
            }
            Ok(())
        },
        || {
            for i in 0..messages {
                let m = fb
                    .read(Some(STALL))
                    .map_err(|e| format!("message {i} of {messages}: {e}"))?;
                assert_eq!(m.len(), 64);
                assert_eq!(m[..8], (i as u64).to_be_bytes(), "out of order");
            }
            Ok(())
        },
    )?;
    Ok(messages as f64 / secs)
}

/// The file written as SDUs of `sdu` bytes through a reliable flow and
/// written to `out` by the receiver: seconds.
fn flow_sdus(data: &[u8], sdu: usize, out: &Path) -> Result<f64, String> {
    use std::io::Write;
    let (_a, _b, fa, fb) = pair("bench-sdus");
    one_way(
        &fa,
        &fb,
        || {
            for part in data.chunks(sdu) {
                fa.write(part).map_err(|e| format!("write: {e}"))?;
            }
            fa.flush(T).map_err(|e| format!("flush: {e}"))
        },
        || {
            let mut f = std::io::BufWriter::new(std::fs::File::create(out).expect("create"));
            let mut got = 0;
            while got < data.len() {
                let m = fb
                    .read(Some(STALL))
                    .map_err(|e| format!("after {got} of {} bytes: {e}", data.len()))?;
                got += m.len();
                f.write_all(&m).expect("write out");
            }
            f.into_inner().expect("flush out").sync_data().ok();
            Ok(())
        },
    )
}

/// The file sealed (seconds) and pulled with plain RGTP into `out` (seconds).
fn rgtp_pull(data: &[u8], out: &Path) -> (f64, f64) {
    let mut link = UdpLink::bind("127.0.0.1:0".parse().unwrap()).expect("bind");
    let caps = link.capabilities();
    let config = rgtp_proto::ExposerConfig::for_link(&caps);
    let o = SendOptions::default();
    let t0 = Instant::now();
    let prepared = ExposerBuilder::new()
        .with_cipher((o.cipher, Backend::preferred()))
        .with_hash(o.hash)
        .with_chunk_size(o.chunk_size)
        .with_config(config)
        .expose(data)
        .expect("seal");
    let seal = t0.elapsed().as_secs_f64();
    let ticket = prepared.ticket(link.local_addr());
    let stop = AtomicBool::new(false);
    let pull = std::thread::scope(|s| {
        s.spawn(|| {
            let mut e = prepared.exposer();
            driver::serve(&mut e, &mut link, &Clock::new(), &stop, |_| {}).expect("serve")
        });
        let mut plink = UdpLink::bind("127.0.0.1:0".parse().unwrap()).expect("bind");
        let mut cfg = PullerConfig::new(
            ticket.exposure_id,
            Peer::Ip(ticket.socket_addr().unwrap()),
            ticket.key.clone(),
        );
        cfg.deferred_root = true;
        cfg.max_payload = cfg.max_payload.min(plink.capabilities().mtu);
        let job = PullJob {
            cfg,
            backend: Backend::preferred(),
            restart: true,
            retries: 0,
            expect_root: None,
            sources: Vec::new(),
        };
        let t0 = Instant::now();
        let r = pull_file(
            &job,
            out,
            &mut plink,
            &Clock::new(),
            &NoProgress,
            &AtomicBool::new(false),
        );
        let secs = t0.elapsed().as_secs_f64();
        stop.store(true, std::sync::atomic::Ordering::Relaxed);
        if let Err(e) = r {
            panic!("pull: {e:?}");
        }
        secs
    });
    (seal, pull)
}

/// The flow hand-off of `src` into `dir`: seconds from the sender's call
/// (sealing included) to the receiver holding the file, verified.
fn hand_off(src: &Path, dir: &Path) -> f64 {
    let (_a, _b, fa, fb) = pair("bench-bulk");
    let t0 = Instant::now();
    std::thread::scope(|s| {
        let rx = s.spawn(|| {
            flow_bulk::recv_file(&fb, dir, &RecvOptions::default(), &Quiet).expect("recv_file");
            t0.elapsed().as_secs_f64()
        });
        flow_bulk::send_file(&fa, src, &SendOptions::default(), &Quiet).expect("send_file");
        rx.join().unwrap()
    })
}

fn check_same(path: &Path, data: &[u8], what: &str) {
    let got = std::fs::read(path).expect("read output");
    assert!(got == data, "{what}: the output differs from the source");
    std::fs::remove_file(path).expect("remove output");
}

fn main() {
    let a = args();
    let scratch: PathBuf = std::env::temp_dir().join(format!("flow-bench-{}", std::process::id()));
    std::fs::create_dir_all(&scratch).expect("scratch dir");
    let src = scratch.join("source.bin");
    let mut data = vec![0u8; a.size];
    rand_chacha::ChaCha8Rng::seed_from_u64(7).fill_bytes(&mut data);
    std::fs::write(&src, &data).expect("write source");
    let out_dir = scratch.join("out");
    std::fs::create_dir_all(&out_dir).expect("out dir");

    println!(
        "flow-bench on loopback: {} runs, medians; 64-byte SDUs over QoS data; bulk {} MiB",
        a.runs,
        a.size >> 20
    );
    let (mut p50, mut p99, mut rate) = (Vec::new(), Vec::new(), Vec::new());
    let mut stalled: Vec<String> = Vec::new();
    for _ in 0..a.runs {
        let (x, y) = ping_pong(a.pings);
        p50.push(x);
        p99.push(y);
        match stream(a.messages) {
            Ok(r) => rate.push(r),
            Err(e) => stalled.push(format!("64-byte stream: {e}")),
        }
    }
    let (p50, p99, rate) = (median(&mut p50), median(&mut p99), median(&mut rate));
    println!(
        "(a) 64-byte SDUs: round trip p50 {p50:.1} µs, p99 {p99:.1} µs ({} ping-pongs a run); \
         one-way {rate:.0} messages/s ({} a run)",
        a.pings, a.messages
    );

    let (mut sdus, mut seal, mut pull, mut hand) = (Vec::new(), Vec::new(), Vec::new(), Vec::new());
    for run in 0..a.runs {
        let out = out_dir.join("sdus.bin");
        match flow_sdus(&data, a.sdu, &out) {
            Ok(t) => {
                sdus.push(t);
                check_same(&out, &data, "flow SDUs");
            }
            Err(e) => {
                stalled.push(format!("flow SDUs, run {}: {e}", run + 1));
                let _ = std::fs::remove_file(&out);
            }
        }

        let out = out_dir.join("pull.bin");
        let (s, p) = rgtp_pull(&data, &out);
        seal.push(s);
        pull.push(p);
        check_same(&out, &data, "RGTP pull");

        let dir = out_dir.join(format!("handoff-{run}"));
        hand.push(hand_off(&src, &dir));
        check_same(&dir.join("source.bin"), &data, "flow hand-off");
        let _ = std::fs::remove_dir(&dir);
    }
    let mib = a.size as f64 / (1 << 20) as f64;
    let (sdus, seal, pull, hand) = (
        median(&mut sdus),
        median(&mut seal),
        median(&mut pull),
        median(&mut hand),
    );
    let g = |s: f64| mib / s;
    println!("(b) bulk of {mib:.0} MiB, goodput (MiB/s, median wall time):");
    println!(
        "    flow, SDUs of {} B (loss 0) {:>8.1} MiB/s  ({sdus:.3} s)",
        a.sdu,
        g(sdus)
    );
    println!(
        "    RGTP pull (sealed before)     {:>8.1} MiB/s  ({pull:.3} s; sealing {seal:.3} s apart)",
        g(pull)
    );
    println!(
        "    RGTP seal + pull              {:>8.1} MiB/s  ({:.3} s)",
        g(seal + pull),
        seal + pull
    );
    println!(
        "    flow hand-off (seal+offer+pull) {:>8.1} MiB/s  ({hand:.3} s)",
        g(hand)
    );
    println!(
        "    goodput ratios: RGTP pull / flow SDUs {:.2}; hand-off / flow SDUs {:.2}; hand-off / (seal + pull) {:.2}",
        sdus / pull,
        sdus / hand,
        (seal + pull) / hand
    );
    if !stalled.is_empty() {
        println!("runs that stalled (no SDU for {STALL:?}; left out of the medians):");
        for s in &stalled {
            println!("    {s}");
        }
    }
    let _ = std::fs::remove_dir_all(&scratch);
}
