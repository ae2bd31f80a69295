//! The congestion controllers side by side on the simulator: each delivers every byte,
//! and they differ where their designs say they should (random loss, a deep queue,
//! competing pullers).

mod common;

use std::time::Duration;

use rgtp::sim::{simulate, SimReport, EXPOSER};
use rgtp::{ExposerBuilder, Prepared};
use rgtp_link::impair::ImpairmentConfig;
use rgtp_link::mem::SimNet;
use rgtp_proto::cc::{Controller, CONTROLLERS};
use rgtp_proto::{ExposerConfig, PullerConfig};

fn prepare(data: &[u8]) -> Prepared {
    ExposerBuilder::new()
        .with_config(ExposerConfig {
            max_segments: 16,
            ..Default::default()
        })
        .expose(data)
        .unwrap()
}

fn run(p: &Prepared, cc: Controller, pullers: usize, net: ImpairmentConfig) -> SimReport {
    run_on(p, cc, pullers, SimNet::new(net, 7))
}

fn run_on(p: &Prepared, cc: Controller, pullers: usize, net: SimNet) -> SimReport {
    let configs = (0..pullers)
        .map(|_| {
            let mut c = PullerConfig::new(*p.exposure.id(), EXPOSER, p.key.clone());
            c.idle_timeout = Duration::from_secs(30);
            c.congestion = cc;
            c
        })
        .collect();
    simulate(p, configs, net, Duration::from_secs(600))
}

fn exact(r: &SimReport, data: &[u8], what: &str) {
    for (i, o) in r.pullers.iter().enumerate() {
        match &o.result {
            Ok(out) => assert!(out == data, "{what}: puller {i} output differs"),
            Err(e) => panic!("{what}: puller {i} failed: {e} ({:?})", o.stats),
        }
    }
}

fn cc(name: &str) -> Controller {
    Controller::by_name(name).unwrap()
}

#[test]
fn the_registry_names_each_controller_once_and_delay_is_the_default() {
    let names: Vec<_> = CONTROLLERS.iter().map(|c| c.name).collect();
    assert_eq!(names, ["delay", "reno", "cubic"]);
    assert_eq!(Controller::default(), cc("delay"));
    assert!(Controller::by_name("bbr9").is_none());
    assert_eq!(Controller::names(), "delay, reno, cubic");
    let p = prepare(b"x");
    let c = PullerConfig::new(*p.exposure.id(), EXPOSER, p.key.clone());
    assert_eq!(c.congestion, cc("delay"));
}

#[test]
fn random_loss_shrinks_the_loss_based_windows_only() {
    let data = common::data(4 << 20, 3);
    let p = prepare(&data);
    let net = ImpairmentConfig::default()
        .with_loss(0.05)
        .with_delay(Duration::from_millis(10));
    let mut windows = Vec::new();
    for c in CONTROLLERS {
        let r = run(&p, *c, 1, net.clone());
        exact(&r, &data, c.name);
        windows.push((c.name, r.pullers[0].stats.window, r.pullers[0].elapsed));
    }
    eprintln!("5% random loss, 10 ms: (controller, final window, time) {windows:?}");
    let w = |n: &str| windows.iter().find(|x| x.0 == n).unwrap().1;
    assert!(w("delay") >= 1024, "{windows:?}");
    assert!(w("reno") * 8 < w("delay"), "{windows:?}");
    assert!(w("cubic") * 4 < w("delay"), "{windows:?}");
    // Less window, slower transfer: the loss-based ones pay for reading loss as congestion.
    let t = |n: &str| windows.iter().find(|x| x.0 == n).unwrap().2;
    assert!(t("reno") > t("delay"), "{windows:?}");
}

#[test]
fn loss_based_controllers_fill_a_deep_queue_delay_does_not() {
    let data = common::data(8 << 20, 4);
    let p = prepare(&data);
    // 4 MB/s bottleneck, 10 ms round trip, a buffer deeper than any window.
    let net = ImpairmentConfig::default()
        .with_delay(Duration::from_millis(5))
        .with_rate_limit(4_000_000)
        .with_queue_limit(16 << 20);
    let mut rtts = Vec::new();
    for c in CONTROLLERS {
        let r = run(&p, *c, 1, net.clone());
        exact(&r, &data, c.name);
        let s = r.pullers[0].stats;
        rtts.push((c.name, s.srtt_us, s.window, r.pullers[0].elapsed));
    }
    eprintln!("4 MB/s deep queue: (controller, srtt us, window, time) {rtts:?}");
    let rtt = |n: &str| rtts.iter().find(|x| x.0 == n).unwrap().1;
    assert!(rtt("reno") > 4 * rtt("delay"), "{rtts:?}");
    assert!(rtt("cubic") > 4 * rtt("delay"), "{rtts:?}");
}

/// Jain's fairness index: 1 when every share is equal, 1/n when one takes all.
fn jain(x: &[f64]) -> f64 {
    let sum: f64 = x.iter().sum();
    let sq: f64 = x.iter().map(|v| v * v).sum();
    sum * sum / (x.len() as f64 * sq)
}

#[test]
fn competing_pullers_share_a_bottleneck_under_each_controller() {
    assert!((jain(&[1.0, 1.0, 1.0]) - 1.0).abs() < 1e-12);
    assert!((jain(&[1.0, 0.0, 0.0, 0.0]) - 0.25).abs() < 1e-12);
    let data = common::data(2 << 20, 5);
    let p = prepare(&data);
    let mut rows = Vec::new();
    for c in CONTROLLERS {
        // Four pullers behind the exposer's one 4 MB/s uplink with a 256 KiB buffer.
        let mut net = SimNet::new(
            ImpairmentConfig::default().with_delay(Duration::from_millis(5)),
            7,
        );
        net.set_bottleneck(
            EXPOSER,
            ImpairmentConfig::default()
                .with_delay(Duration::from_millis(5))
                .with_rate_limit(4_000_000)
                .with_queue_limit(256 << 10),
        );
        let r = run_on(&p, *c, 4, net);
        exact(&r, &data, c.name);
        let rates: Vec<f64> = r
            .pullers
            .iter()
            .map(|o| data.len() as f64 / o.elapsed.as_secs_f64())
            .collect();
        let total_time = r.pullers.iter().map(|o| o.elapsed).max().unwrap();
        rows.push((c.name, jain(&rates), rates, total_time));
    }
    eprintln!("4 pullers, shared 4 MB/s: (controller, Jain, per-puller B/s, last done) {rows:?}");
    for (name, j, _, t) in &rows {
        // 8 MiB through 4 MB/s takes 2.1 s at best: each controller keeps the
        // bottleneck busy and no puller starves.
        assert!(*j > 0.8, "{name}: Jain {j}: {rows:?}");
        assert!(t.as_secs_f64() < 6.0, "{name}: {rows:?}");
    }
}
