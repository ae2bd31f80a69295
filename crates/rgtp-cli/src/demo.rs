//! `rgtp demo`: generate data, seal it, serve it and pull it over loopback UDP in
//! one process, checking every chunk against the source; once or `--runs N` times,
//! as a report or as JSON.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant as StdInstant};

use indicatif::{ProgressBar, ProgressStyle};
use rand::RngCore;
use rand_chacha::rand_core::SeedableRng;
use rgtp::driver::{self, Clock};
use rgtp::sink::CheckSink;
use rgtp::DynSuiteOn;
use rgtp_link::udp::{UdpLink, UdpStats};
use rgtp_link::Link;
use rgtp_proto::{ExposerStats, Peer, Puller, PullerStats, SuiteId};

use super::{builder, exit, pull_failure, puller_config, CliResult, DemoArgs, DEFAULT_CHUNK_SIZE};

/// What one run measured.
struct Run {
    seal: Duration,
    pull: Duration,
    puller: PullerStats,
    exposer: ExposerStats,
    /// The exposer's socket.
    exposer_link: UdpStats,
    suite: SuiteId,
    chunk_size: u32,
}

impl Run {
    fn seal_mb_per_s(&self, size: u64) -> f64 {
        size as f64 / 1e6 / self.seal.as_secs_f64().max(1e-9)
    }

    fn goodput_mb_per_s(&self, size: u64) -> f64 {
        size as f64 / 1e6 / self.pull.as_secs_f64().max(1e-9)
    }
}

pub(super) fn run(a: DemoArgs) -> CliResult {
    let size = usize::try_from(a.size).map_err(|_| (exit::USAGE, "size too large".to_string()))?;
    eprintln!("generating {} of data…", indicatif::HumanBytes(a.size));
    let mut data = vec![0u8; size];
    rand_chacha::ChaCha8Rng::seed_from_u64(a.seed).fill_bytes(&mut data);
    let mut runs = Vec::with_capacity(a.runs as usize);
    for i in 0..a.runs {
        let r = once(&a, &data)?;
        if !a.json {
            if a.runs > 1 {
                println!("run {} of {}", i + 1, a.runs);
            }
            report(&a, &r);
        }
        runs.push(r);
    }
    if a.json {
        println!(
            "{}",
            serde_json::to_string_pretty(&json(&a, &runs)).expect("JSON values print")
        );
    } else if a.runs > 1 {
        summary(&a, &runs);
    }
    Ok(())
}

/// Seals `data` into a fresh store, serves it on one thread and pulls it on this
/// one, each chunk compared with the source as it lands.
fn once(a: &DemoArgs, data: &[u8]) -> Result<Run, (u8, String)> {
    let mut link = UdpLink::bind("127.0.0.1:0".parse().expect("literal"))
        .map_err(|e| (exit::IO, format!("cannot bind loopback UDP: {e}")))?;
    let caps = link.capabilities();
    let config = rgtp_proto::ExposerConfig::for_link(&caps);
    let t0 = StdInstant::now();
    let prepared = builder(&a.suite, DEFAULT_CHUNK_SIZE)
        .with_config(config)
        .expose(data)
        .map_err(|e| (exit::USAGE, e.to_string()))?;
    let seal = t0.elapsed();
    let ticket = prepared.ticket(link.local_addr());
    if let Some(store) = prepared.lent_store().filter(|_| !a.copy_sends) {
        link.lend(store);
    }
    let mut exposer = prepared.exposer();
    let stop = Arc::new(AtomicBool::new(false));
    let stop2 = Arc::clone(&stop);
    let server = std::thread::spawn(move || {
        let clock = Clock::new();
        let r = driver::serve(&mut exposer, &mut link, &clock, &stop2, |_| {});
        (r, exposer.stats(), link.stats())
    });

    let mut plink = UdpLink::bind("127.0.0.1:0".parse().expect("literal"))
        .map_err(|e| (exit::IO, format!("cannot bind loopback UDP: {e}")))?;
    let server_addr = ticket
        .socket_addr()
        .map_err(|e| (exit::IO, e.to_string()))?;
    let clock = Clock::new();
    // A demo with --proofs pulls as `rgtp pull --proofs` does: every chunk checked
    // against the root before it is accepted.
    let mut cfg = puller_config(
        &ticket,
        Peer::Ip(server_addr),
        a.suite.proofs,
        !a.no_proof_runs,
    );
    cfg.congestion = a.cc.controller;
    let mut puller = Puller::new(cfg, DynSuiteOn(a.suite.backend.cipher_backend), clock.now());
    // Each chunk is compared with the source as it lands: no copy of the output.
    let mut sink = CheckSink::new(data);
    let bar = if a.json {
        ProgressBar::hidden()
    } else {
        ProgressBar::new(a.size)
    };
    bar.set_style(
        ProgressStyle::with_template(
            "{bar:40.cyan/blue} {bytes}/{total_bytes} {binary_bytes_per_sec} ETA {eta}",
        )
        .expect("template"),
    );
    let t1 = StdInstant::now();
    let r = driver::pull(&mut puller, &mut plink, &clock, &mut sink, |p| {
        bar.set_position((p.progress() as f64 * a.size as f64) as u64);
    });
    let pull = t1.elapsed();
    bar.finish_and_clear();
    stop.store(true, Ordering::Relaxed);
    let (serve_result, exposer_stats, exposer_link) = server
        .join()
        .map_err(|_| (exit::PROTOCOL, "exposer thread panicked".to_string()))?;
    serve_result.map_err(|e| (exit::IO, format!("exposer failed: {e}")))?;
    r.map_err(|e| pull_failure(e, &ticket))?;
    if !sink.is_complete() {
        return Err((
            exit::MERKLE,
            format!(
                "pulled data differs from the source ({} chunks differ)",
                sink.mismatched()
            ),
        ));
    }
    Ok(Run {
        seal,
        pull,
        puller: puller.stats(),
        exposer: exposer_stats,
        exposer_link,
        suite: prepared.exposure.suite(),
        chunk_size: prepared.exposure.chunk_size(),
    })
}

fn report(a: &DemoArgs, r: &Run) {
    let (s, x, suite) = (&r.puller, &r.exposer, r.suite);
    println!("rgtp demo: loopback UDP transfer, verified byte-exact");
    println!(
        "  size            {} ({} bytes)",
        indicatif::HumanBytes(a.size),
        a.size
    );
    println!(
        "  suite           {} ({}) + {}, fec {:?} {}/{}, proofs {}, chunk {} B",
        suite.cipher.name(),
        a.suite.backend.cipher_backend,
        suite.hash.name(),
        suite.fec.scheme,
        suite.fec.n,
        suite.fec.k,
        suite.proofs,
        r.chunk_size
    );
    println!(
        "  expose (seal)   {:.3} s ({:.0} MB/s)",
        r.seal.as_secs_f64(),
        r.seal_mb_per_s(a.size)
    );
    println!("  pull            {:.3} s", r.pull.as_secs_f64());
    println!(
        "  goodput         {:.1} MB/s ({:.2} Gbit/s)",
        r.goodput_mb_per_s(a.size),
        r.goodput_mb_per_s(a.size) * 8.0 / 1e3
    );
    println!(
        "  packets         puller sent {} / received {}; exposer sent {} / received {}",
        s.datagrams_sent, s.datagrams_received, x.datagrams_out, x.datagrams_in
    );
    let l = &r.exposer_link;
    println!(
        "  exposer sends   {} calls, {} GSO batches, {} of them from the store's pages (no copy)",
        l.send_calls, l.gso_batches, l.lent_batches
    );
    println!(
        "  requests        {} NAKs ({} carrying re-requests), {} Pull_Requests",
        s.naks_sent, s.retransmit_naks, s.pull_requests_sent
    );
    println!(
        "  retransmissions {} chunks re-requested, {} duplicates received",
        s.chunks_rerequested, s.duplicates
    );
    println!(
        "  FEC             {} parity received, {} chunks rebuilt",
        s.parity_received, s.fec_recoveries
    );
    println!(
        "  RTT / loss      {:.2} ms / {:.2}%, final window {} chunks ({})",
        s.srtt_us as f64 / 1000.0,
        s.loss_rate * 100.0,
        s.window,
        a.cc.controller.name
    );
}

/// The median, lowest and highest of `values` (not empty).
fn spread(mut values: Vec<f64>) -> (f64, f64, f64) {
    values.sort_by(f64::total_cmp);
    let n = values.len();
    let median = if n % 2 == 1 {
        values[n / 2]
    } else {
        (values[n / 2 - 1] + values[n / 2]) / 2.0
    };
    (median, values[0], values[n - 1])
}

fn summary(a: &DemoArgs, runs: &[Run]) {
    let (gm, gmin, gmax) = spread(runs.iter().map(|r| r.goodput_mb_per_s(a.size)).collect());
    let (sm, smin, smax) = spread(runs.iter().map(|r| r.seal_mb_per_s(a.size)).collect());
    println!(
        "rgtp demo: {} runs of {}",
        runs.len(),
        indicatif::HumanBytes(a.size)
    );
    println!(
        "  goodput         median {gm:.1} MB/s, lowest {gmin:.1}, highest {gmax:.1} (highest/lowest {:.2})",
        gmax / gmin.max(1e-9)
    );
    println!("  seal            median {sm:.0} MB/s, lowest {smin:.0}, highest {smax:.0}");
}

fn json(a: &DemoArgs, runs: &[Run]) -> serde_json::Value {
    let first = &runs[0];
    let each: Vec<serde_json::Value> = runs
        .iter()
        .map(|r| {
            let (s, x) = (&r.puller, &r.exposer);
            serde_json::json!({
                "seal_seconds": r.seal.as_secs_f64(),
                "seal_mb_per_s": r.seal_mb_per_s(a.size),
                "pull_seconds": r.pull.as_secs_f64(),
                "goodput_mb_per_s": r.goodput_mb_per_s(a.size),
                "puller_datagrams_sent": s.datagrams_sent,
                "puller_datagrams_received": s.datagrams_received,
                "exposer_datagrams_sent": x.datagrams_out,
                "exposer_datagrams_received": x.datagrams_in,
                "exposer_send_calls": r.exposer_link.send_calls,
                "exposer_gso_batches": r.exposer_link.gso_batches,
                "exposer_lent_batches": r.exposer_link.lent_batches,
                "naks_sent": s.naks_sent,
                "retransmit_naks": s.retransmit_naks,
                "pull_requests_sent": s.pull_requests_sent,
                "chunks_rerequested": s.chunks_rerequested,
                "duplicates": s.duplicates,
                "parity_received": s.parity_received,
                "fec_recoveries": s.fec_recoveries,
                "srtt_ms": s.srtt_us as f64 / 1000.0,
                "loss_rate": s.loss_rate,
                "final_window": s.window,
            })
        })
        .collect();
    let (gm, gmin, gmax) = spread(runs.iter().map(|r| r.goodput_mb_per_s(a.size)).collect());
    let (sm, smin, smax) = spread(runs.iter().map(|r| r.seal_mb_per_s(a.size)).collect());
    serde_json::json!({
        "size": a.size,
        "seed": a.seed,
        "cipher": first.suite.cipher.name(),
        "cipher_backend": a.suite.backend.cipher_backend.to_string(),
        "hash": first.suite.hash.name(),
        "fec": {
            "scheme": format!("{:?}", first.suite.fec.scheme),
            "n": first.suite.fec.n,
            "k": first.suite.fec.k,
        },
        "proofs": first.suite.proofs,
        "chunk_size": first.chunk_size,
        "congestion": a.cc.controller.name,
        "runs": each,
        "goodput_mb_per_s": {"median": gm, "lowest": gmin, "highest": gmax},
        "seal_mb_per_s": {"median": sm, "lowest": smin, "highest": smax},
    })
}

#[cfg(test)]
mod tests {
    use super::spread;

    #[test]
    fn the_median_of_an_even_count_is_the_mean_of_the_middle_two() {
        assert_eq!(spread(vec![3.0, 1.0, 2.0]), (2.0, 1.0, 3.0));
        assert_eq!(spread(vec![4.0, 1.0, 3.0, 2.0]), (2.5, 1.0, 4.0));
        assert_eq!(spread(vec![7.0]), (7.0, 7.0, 7.0));
    }
}
