//! The puller's rate cap (`PullerConfig::max_rate`) on the simulator: the transfer
//! runs at the cap, not above it, with or without loss, and any exposer obeys it
//! because the puller only asks for what the cap allows. The exposer's cap (spec
//! §8.3.3) is told to the puller in the Manifest, and the pull runs at the lower of
//! the two.

mod common;

use std::time::Duration;

use rgtp::sim::{simulate, SimReport, EXPOSER};
use rgtp::{ExposerBuilder, FecSpec, Prepared};
use rgtp_link::impair::ImpairmentConfig;
use rgtp_link::mem::SimNet;
use rgtp_proto::{ExposerConfig, PullerConfig};

fn prepare(data: &[u8], fec: &str) -> Prepared {
    prepare_capped(data, fec, None)
}

fn prepare_capped(data: &[u8], fec: &str, rate_cap: Option<u64>) -> Prepared {
    ExposerBuilder::new()
        .with_fec(fec.parse::<FecSpec>().unwrap())
        .with_config(ExposerConfig {
            max_segments: 16,
            rate_cap,
            ..Default::default()
        })
        .expose(data)
        .unwrap()
}

fn pull(p: &Prepared, rate: Option<u64>, net: ImpairmentConfig) -> SimReport {
    let mut c = PullerConfig::new(*p.exposure.id(), EXPOSER, p.key.clone());
    c.idle_timeout = Duration::from_secs(30);
    c.max_rate = rate;
    simulate(p, vec![c], SimNet::new(net, 11), Duration::from_secs(600))
}

fn goodput(r: &SimReport, data: &[u8]) -> f64 {
    let o = &r.pullers[0];
    match &o.result {
        Ok(out) => assert!(out == data, "output differs"),
        Err(e) => panic!("pull failed: {e} ({:?})", o.stats),
    }
    data.len() as f64 / o.elapsed.as_secs_f64()
}

#[test]
fn a_pull_runs_at_its_cap_and_not_above() {
    let data = common::data(4 << 20, 21);
    let p = prepare(&data, "none");
    let fast = ImpairmentConfig::default().with_delay(Duration::from_millis(5));
    let free = goodput(&pull(&p, None, fast.clone()), &data);
    for cap in [1_000_000u64, 5_000_000] {
        let r = pull(&p, Some(cap), fast.clone());
        let g = goodput(&r, &data);
        eprintln!("cap {cap} B/s: goodput {g:.0} B/s (uncapped {free:.0})");
        assert!(
            free > 4.0 * cap as f64,
            "the path must be faster than the cap"
        );
        // Within a burst (5 ms) and one round trip of the cap...
        assert!(g <= cap as f64 * 1.03, "cap {cap}: {g:.0} B/s");
        // ...and not far under it.
        assert!(g >= cap as f64 * 0.85, "cap {cap}: {g:.0} B/s");
    }
}

#[test]
fn rerequests_and_parity_count_against_the_cap() {
    let data = common::data(2 << 20, 22);
    let cap = 2_000_000u64;
    for fec in ["none", "rs:40,32"] {
        let p = prepare(&data, fec);
        let lossy = ImpairmentConfig::default()
            .with_loss(0.05)
            .with_delay(Duration::from_millis(5));
        let r = pull(&p, Some(cap), lossy);
        let g = goodput(&r, &data);
        let s = r.pullers[0].stats;
        let x = r.exposer;
        // What the exposer sent (chunks, parity, everything) over the pull's time.
        let wire = x.bytes_out as f64 / r.pullers[0].elapsed.as_secs_f64();
        eprintln!("{fec} at 5% loss, cap {cap}: goodput {g:.0}, exposer sent {wire:.0} B/s, {s:?}");
        assert!(
            s.chunks_rerequested + s.parity_requested > 0,
            "{fec}: no repair"
        );
        // The cap is on payload asked for; headers and tags add a few percent.
        assert!(
            wire <= cap as f64 * 1.10,
            "{fec}: exposer sent {wire:.0} B/s"
        );
        assert!(g >= cap as f64 * 0.7, "{fec}: {g:.0} B/s");
    }
}

#[test]
fn a_paced_exposer_holds_any_puller_to_its_cap() {
    // The cap holds; the goodput under it is poor while pullers cannot learn it (the
    // exposer's queue delays answers past the puller's timeout, and answers to
    // re-requested entries give no RTT samples), which is why `rgtp pull --max-rate`
    // paces the requests instead.
    use redgiant_base::Paced;
    use rgtp::driver::{self, Clock};
    use std::sync::atomic::{AtomicBool, Ordering};
    use std::sync::Arc;

    let data = common::data(2_000_000, 23);
    let link = common::loopback(false);
    let p = common::prepare(ExposerBuilder::new(), &link, &data);
    let addr = link.local_addr();
    let stop = Arc::new(AtomicBool::new(false));
    let stop2 = Arc::clone(&stop);
    let exposer = p.exposer();
    let server = std::thread::spawn(move || {
        let mut link = link;
        let clock = Clock::new();
        // 2 MB/s, bursts of one GSO batch.
        let mut paced = Paced::new(exposer, 2_000_000, 64 << 10, clock.now());
        let t0 = std::time::Instant::now();
        driver::serve(&mut paced, &mut link, &clock, &stop2, |_| {}).unwrap();
        (paced.inner().stats(), t0.elapsed())
    });
    let t0 = std::time::Instant::now();
    let (r, ps) = common::pull(&p, addr, |_| {});
    let took = t0.elapsed();
    stop.store(true, Ordering::Relaxed);
    let (stats, served) = server.join().unwrap();
    eprintln!("took {took:?}, served {served:?}\npuller {ps:?}\nexposer {stats:?}");
    assert!(r.unwrap() == data, "output differs");
    // 2 MB plus headers at 2 MB/s cannot take less than about a second, however fast
    // the machine; uncapped it takes milliseconds.
    assert!(took >= Duration::from_millis(900), "took {took:?}");
    assert!(stats.bytes_out >= 2_000_000);
    // Never more than the cap allows: the rate over the time served, plus the bucket
    // (64 KiB) and the one batch that may overdraw it (64 datagrams of at most 1,500).
    let allowed = 2_000_000.0 * served.as_secs_f64() + f64::from((64 << 10) + 64 * 1500);
    assert!((stats.bytes_out as f64) <= allowed, "{stats:?}");
}

#[test]
fn the_exposers_cap_is_told_and_the_lower_cap_wins() {
    let data = common::data(4 << 20, 25);
    let p = prepare_capped(&data, "none", Some(2_000_000));
    for (own, want) in [
        (None, 2_000_000u64),
        (Some(1_000_000), 1_000_000),
        (Some(8_000_000), 2_000_000),
    ] {
        let r = pull(&p, own, ImpairmentConfig::default());
        let g = goodput(&r, &data);
        eprintln!(
            "own cap {own:?}: {g:.0} B/s, exposer sent {} bytes",
            r.exposer.bytes_out
        );
        assert!(
            g <= want as f64 * 1.03,
            "own {own:?}: {g:.0} B/s over {want}"
        );
        assert!(
            g >= want as f64 * 0.85,
            "own {own:?}: {g:.0} B/s under {want}"
        );
        // Nothing is sent twice: chunks plus headers, a little over the data.
        assert!(
            (r.exposer.bytes_out as f64) < data.len() as f64 * 1.1,
            "{:?}",
            r.exposer
        );
    }
}

#[test]
fn a_capped_exposer_serves_at_its_cap_without_waste() {
    // Against `a_paced_exposer_holds_any_puller_to_its_cap`: the same total cap, now
    // also told to the puller, which asks for no more than it and wastes nothing.
    use rgtp::driver::{self, Clock};
    use std::sync::atomic::{AtomicBool, Ordering};
    use std::sync::Arc;

    let data = common::data(2_000_000, 23);
    let link = common::loopback(false);
    let cap = 2_000_000;
    let p = ExposerBuilder::new()
        .with_config(ExposerConfig {
            rate_cap: Some(cap),
            ..common::udp_config(&link)
        })
        .expose(&data)
        .unwrap();
    let addr = link.local_addr();
    let stop = Arc::new(AtomicBool::new(false));
    let stop2 = Arc::clone(&stop);
    let exposer = p.exposer();
    let server = std::thread::spawn(move || {
        let mut link = link;
        let clock = Clock::new();
        let t0 = std::time::Instant::now();
        let e =
            driver::serve_capped(exposer, &mut link, &clock, &stop2, Some(cap), |_| {}).unwrap();
        (e.stats(), t0.elapsed())
    });
    let t0 = std::time::Instant::now();
    let (r, ps) = common::pull(&p, addr, |_| {});
    let took = t0.elapsed();
    stop.store(true, Ordering::Relaxed);
    let (stats, served) = server.join().unwrap();
    eprintln!(
        "took {took:?} ({:.0} B/s), served {served:?}\npuller {ps:?}\nexposer {stats:?}",
        data.len() as f64 / took.as_secs_f64()
    );
    assert!(r.unwrap() == data, "output differs");
    assert!(took >= Duration::from_millis(900), "took {took:?}");
    let allowed = cap as f64 * served.as_secs_f64() + driver::cap_burst(cap) as f64 + 64.0 * 1500.0;
    assert!((stats.bytes_out as f64) <= allowed, "{stats:?}");
    // The puller knew the cap: almost nothing was asked twice (the uninformed puller
    // of the test above makes the exposer send several times the data).
    assert!(
        (stats.bytes_out as f64) < data.len() as f64 * 1.5,
        "{stats:?}"
    );
}
