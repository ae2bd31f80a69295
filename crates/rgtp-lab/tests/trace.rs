//! Trace-driven bottlenecks under a whole pull: a constant trace against the
//! fixed rate it stands for, and a trace with a gap.

use std::time::Duration;

use rgtp::sim::{simulate, SimReport, EXPOSER};
use rgtp::{ExposerBuilder, FecSpec, Prepared};
use rgtp_link::impair::ImpairmentConfig;
use rgtp_link::mem::SimNet;
use rgtp_link::trace::DeliveryTrace;
use rgtp_proto::crypto::Key;
use rgtp_proto::PullerConfig;

const SIZE: usize = 4 << 20;

fn data() -> Vec<u8> {
    (0..SIZE as u32)
        .map(|i| (i.wrapping_mul(2_654_435_761) >> 13) as u8)
        .collect()
}

/// Exposure ids must differ across the process: one per test.
fn prepared(data: &[u8], id: u8) -> Prepared {
    ExposerBuilder::new()
        .with_fec(FecSpec::None)
        .with_chunk_size(1024)
        .with_key(Key::from_bytes([3; 32]))
        .with_exposure_id([id; 16])
        .with_token_secret([1; 32])
        .expose(data)
        .unwrap()
}

fn pull(p: &Prepared, uplink: ImpairmentConfig, seed: u64) -> SimReport {
    let mut c = PullerConfig::new(*p.exposure.id(), EXPOSER, p.key.clone());
    c.idle_timeout = Duration::from_secs(30);
    let delay = ImpairmentConfig::default().with_delay(Duration::from_millis(10));
    let mut net = SimNet::new(delay, seed);
    net.set_bottleneck(
        EXPOSER,
        uplink
            .with_delay(Duration::from_millis(10))
            .with_queue_limit(256 << 10),
    );
    simulate(p, vec![c], net, Duration::from_secs(120))
}

/// Completion time of the one puller, checking it got every byte.
fn completion(r: &SimReport, data: &[u8]) -> Duration {
    let o = &r.pullers[0];
    assert_eq!(o.result.as_deref().ok(), Some(data), "the pull completed");
    o.elapsed
}

#[test]
fn a_constant_trace_matches_its_fixed_rate() {
    let data = data();
    let p = prepared(&data, 1);
    let one_per_ms = DeliveryTrace::parse("1\n").unwrap();
    let traced = completion(
        &pull(
            &p,
            ImpairmentConfig::default().with_delivery_trace(one_per_ms),
            1,
        ),
        &data,
    );
    let fixed = completion(
        &pull(
            &p,
            ImpairmentConfig::default().with_rate_limit(1_500_000),
            1,
        ),
        &data,
    );
    let (gt, gf) = (
        SIZE as f64 / traced.as_secs_f64(),
        SIZE as f64 / fixed.as_secs_f64(),
    );
    // The link's 1.5 MB/s bounds both; each gets most of it.
    assert!(gt < 1_500_000.0 && gt > 1_000_000.0, "trace goodput {gt}");
    assert!(
        (gt - gf).abs() / gf < 0.04,
        "trace {gt:.0} B/s, fixed rate {gf:.0} B/s"
    );
}

#[test]
fn a_gap_in_the_trace_stalls_the_pull_by_about_the_gap() {
    let data = data();
    let p = prepared(&data, 2);
    // One opportunity a millisecond, except none from 500 ms to 1500 ms.
    let mut text = String::new();
    for t in (1..=500).chain(1501..=4000) {
        text.push_str(&format!("{t}\n"));
    }
    let gap = DeliveryTrace::parse(&text).unwrap();
    assert_eq!(gap.period_ms(), 4000);
    let steady = DeliveryTrace::parse("1\n").unwrap();
    let with_gap = completion(
        &pull(&p, ImpairmentConfig::default().with_delivery_trace(gap), 2),
        &data,
    );
    let without = completion(
        &pull(
            &p,
            ImpairmentConfig::default().with_delivery_trace(steady),
            2,
        ),
        &data,
    );
    let stall = with_gap.saturating_sub(without);
    assert!(
        stall >= Duration::from_millis(900) && stall <= Duration::from_millis(1400),
        "with the gap {with_gap:?}, without {without:?}"
    );
}

#[test]
fn trace_runs_are_deterministic_per_seed() {
    let data = data();
    let p = prepared(&data[..256 << 10], 3);
    let t = DeliveryTrace::parse("1\n1\n3\n7\n7\n7\n10\n").unwrap();
    let cfg = ImpairmentConfig::default()
        .with_delivery_trace(t)
        .with_loss(0.01);
    let a = pull(&p, cfg.clone(), 9);
    let b = pull(&p, cfg.clone(), 9);
    let c = pull(&p, cfg, 10);
    assert_eq!(a.trace_hash, b.trace_hash);
    assert_ne!(a.trace_hash, c.trace_hash);
    completion(&a, &data[..256 << 10]);
}

const TRACE_PLAN: &str = r#"name = "traced"
size = "32KiB"
seeds = 1

[variants]
cc = ["delay", "cubic"]

[scenarios]
trace = ["traces/fast.trace", "none"]
delay_ms = 5
"#;

#[test]
fn a_plan_names_traces_relative_to_itself_and_records_their_hash() {
    use std::fs;

    use rgtp_lab::{merge, run, Outcome, Plan, SweepOptions};
    use sha2::{Digest, Sha256};

    let dir = tempfile::tempdir().unwrap();
    fs::create_dir(dir.path().join("traces")).unwrap();
    let trace_text = "1\n1\n2\n";
    fs::write(dir.path().join("traces/fast.trace"), trace_text).unwrap();
    let plan_path = dir.path().join("plan.toml");
    fs::write(&plan_path, TRACE_PLAN).unwrap();
    let plan = Plan::load(&plan_path).unwrap();
    assert_eq!(plan.runs().len(), 4);
    let t = plan.scenarios[0].trace.as_ref().unwrap();
    assert_eq!(t.path, "traces/fast.trace");
    let sha = hex::encode(Sha256::digest(trace_text.as_bytes()));
    assert_eq!(t.sha256, sha);
    assert_eq!(t.trace.mean_rate(), 2_250_000.0);
    assert!(plan.scenarios[1].trace.is_none());
    assert!(plan.scenarios[0].uplink().delivery_trace.is_some());

    // Parsed from elsewhere with no base, the relative path is not found.
    let e = Plan::parse(TRACE_PLAN).unwrap_err().to_string();
    assert!(
        e.contains("scenarios.trace") && e.contains("line 9") && e.contains("fast.trace"),
        "{e}"
    );

    // Two shards, merged: the trace and its hash are in every output.
    let mut shards = Vec::new();
    for i in 0..2 {
        let out = dir.path().join(format!("shard{i}"));
        let mut o = SweepOptions::new(&out);
        o.jobs = 1;
        o.shard = Some((i, 2));
        assert_eq!(run(&plan, &o).unwrap(), Outcome::Complete { runs: 2 });
        shards.push(out);
    }
    let merged = dir.path().join("merged");
    assert_eq!(
        merge(&merged, &shards).unwrap(),
        Outcome::Complete { runs: 4 }
    );
    let csv = fs::read_to_string(merged.join("results.csv")).unwrap();
    let lines: Vec<&str> = csv.lines().collect();
    // The trace columns come last but for the fairness and overhead columns.
    let untail = |l: &str| l.rsplitn(3, ',').nth(2).unwrap().to_owned();
    assert!(
        untail(lines[0]).ends_with(",trace,trace_sha256"),
        "{}",
        lines[0]
    );
    assert!(untail(lines[1]).ends_with(&format!(",traces/fast.trace,{sha}")));
    assert!(untail(lines[2]).ends_with(",none,"), "{}", lines[2]);
    for l in &lines[1..] {
        assert_eq!(l.split(',').nth(16), Some("1"), "completed: {l}");
    }
    let m: serde_json::Value =
        serde_json::from_str(&fs::read_to_string(merged.join("manifest.json")).unwrap()).unwrap();
    assert_eq!(m["traces"]["traces/fast.trace"], sha.as_str());
    let json = fs::read_to_string(merged.join("results.json")).unwrap();
    assert!(json.contains(&sha));

    // The trace shapes the run: the traced rows differ from the untraced ones.
    let hash = |l: &str| l.split(',').nth(32).unwrap().to_owned();
    assert_ne!(hash(lines[1]), hash(lines[2]));

    // A trace changed after the shards ran is caught at merge.
    fs::write(dir.path().join("traces/fast.trace"), "1\n").unwrap();
    let e = merge(&dir.path().join("merged2"), &shards).unwrap_err();
    assert!(e.to_string().contains("trace file changed"), "{e}");
}

#[test]
fn a_malformed_trace_in_a_plan_names_the_key_and_the_trace_line() {
    use rgtp_lab::Plan;

    let dir = tempfile::tempdir().unwrap();
    std::fs::create_dir(dir.path().join("traces")).unwrap();
    std::fs::write(dir.path().join("traces/fast.trace"), "4\n2\n").unwrap();
    let e = Plan::parse_in(TRACE_PLAN, dir.path())
        .unwrap_err()
        .to_string();
    assert!(
        e.contains("scenarios.trace") && e.contains("trace line 2"),
        "{e}"
    );
    std::fs::write(dir.path().join("traces/fast.trace"), "").unwrap();
    let e = Plan::parse_in(TRACE_PLAN, dir.path())
        .unwrap_err()
        .to_string();
    assert!(e.contains("empty"), "{e}");
    std::fs::write(dir.path().join("traces/fast.trace"), "1\n").unwrap();
    let e = Plan::parse_in(&TRACE_PLAN.replace("\"none\"]", "3]"), dir.path())
        .unwrap_err()
        .to_string();
    assert!(e.contains("expected a trace file path"), "{e}");
}

#[test]
fn rates_in_plans_parse_as_the_command_line_does() {
    use rgtp_lab::Plan;

    let plan = |rate: &str| {
        Plan::parse(&format!(
            "name = \"r\"\nsize = 1000\nseeds = 1\n[scenarios]\nrate = \"{rate}\"\n"
        ))
    };
    for (text, bytes) in [
        ("100Mbit/s", 12_500_000),
        ("160Mbps", 20_000_000),
        ("20MB/s", 20_000_000),
        ("2MiB/s", 2 << 20),
        ("5000", 5000),
    ] {
        assert_eq!(plan(text).unwrap().scenarios[0].rate, Some(bytes), "{text}");
        assert_eq!(redgiant_base::parse_rate(text), Ok(bytes));
    }
    let e = plan("12 furlongs/s").unwrap_err().to_string();
    assert!(e.contains("scenarios.rate") && e.contains("line 5"), "{e}");
}
