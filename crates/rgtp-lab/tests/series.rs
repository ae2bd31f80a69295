//! Per-run time series and the fairness index.

use std::fs;
use std::path::Path;
use std::time::Duration;

use rgtp_lab::sweep::{execute, execute_sampled};
use rgtp_lab::{jain, run, Outcome, Plan, Sample, SeriesSelect, SweepOptions};

/// Two variants, two scenarios, two seeds; three pullers share the uplink.
const SHARED: &str = r#"
name = "shared"
size = "48KiB"
seeds = [1, 2]

[variants]
cc = ["delay", "reno"]
chunk_size = 1024

[scenarios]
rate = "20Mbit/s"
queue = ["16KiB", "256KiB"]
delay_ms = 5
loss = 0.01
pullers = 3
"#;

fn of(samples: &[Sample], puller: usize) -> Vec<Sample> {
    samples
        .iter()
        .filter(|s| s.puller == puller)
        .copied()
        .collect()
}

#[test]
fn sampling_only_reads_and_samples_are_exact() {
    let plan = Plan::parse(SHARED).unwrap();
    let spec = &plan.runs()[0];
    let plain = execute(&plan, spec).unwrap();
    let (rec, samples) = execute_sampled(&plan, spec, Some(Duration::from_millis(10))).unwrap();
    // Same packet trace, same measurements, with or without sampling.
    assert_eq!(rec.metrics.trace_hash, plain.metrics.trace_hash);
    assert_eq!(rec, plain);
    let samples = samples.unwrap();
    assert_eq!(rec.metrics.completed, 3);
    for p in 0..3 {
        let s = of(&samples, p);
        assert!(s.len() > 3, "puller {p}: {} samples", s.len());
        for (k, x) in s.iter().enumerate() {
            assert!((x.t_s - k as f64 * 0.01).abs() < 1e-9, "regular steps");
        }
        assert!(s.iter().any(|x| x.window > 0), "puller {p} has a window");
        assert!(s.last().unwrap().srtt_ms > 9.0, "two 5 ms hops at least");
        // The rates add up to the payload accepted by the last sample.
        let got: f64 = s.iter().map(|x| x.rate_bps * 0.01).sum();
        assert!(got <= 48.0 * 1024.0 + 1.0, "puller {p}: {got}");
        let elapsed = s.last().unwrap().t_s;
        assert!(elapsed <= rec.metrics.completion_s + 1e-9);
        assert!(got > 0.0, "puller {p} got data");
    }
    // A coarser step sees the same state at the instants both sample.
    let (_, coarse) = execute_sampled(&plan, spec, Some(Duration::from_millis(20))).unwrap();
    let coarse = coarse.unwrap();
    for p in 0..3 {
        let fine = of(&samples, p);
        for (k, c) in of(&coarse, p).iter().enumerate() {
            let f = fine[2 * k];
            assert_eq!((c.window, c.srtt_ms), (f.window, f.srtt_ms), "t={}", c.t_s);
            if k > 0 {
                let pair = (fine[2 * k - 1].rate_bps + f.rate_bps) / 2.0;
                assert!((c.rate_bps - pair).abs() < 1e-6, "t={}", c.t_s);
            }
        }
    }
}

#[test]
fn jain_index() {
    assert_eq!(jain(&[5.0, 5.0, 5.0, 5.0]), 1.0);
    assert!(
        (jain(&[8.0, 0.0, 0.0, 0.0]) - 0.25).abs() < 1e-12,
        "one of four"
    );
    assert!((jain(&[1.0, 1.0, 1.0, 0.0]) - 0.75).abs() < 1e-12);
    assert!((jain(&[1.0, 3.0]) - 0.8).abs() < 1e-12);
    assert_eq!(jain(&[7.0]), 1.0);
    assert_eq!(jain(&[]), 0.0);
    assert_eq!(jain(&[0.0, 0.0]), 0.0);
}

fn col(header: &str, name: &str) -> usize {
    header.split(',').position(|c| c == name).unwrap()
}

fn run_ids(dir: &Path) -> Vec<String> {
    let mut v: Vec<String> = fs::read_dir(dir.join("series"))
        .map(|d| {
            d.map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
                .collect()
        })
        .unwrap_or_default();
    v.sort();
    v
}

#[test]
fn sweep_writes_fairness_and_the_first_seed_series() {
    let plan = Plan::parse(SHARED).unwrap();
    assert_eq!(plan.series, SeriesSelect::FirstSeed);
    let dir = tempfile::tempdir().unwrap();
    let mut o = SweepOptions::new(dir.path());
    o.jobs = 2;
    assert_eq!(run(&plan, &o).unwrap(), Outcome::Complete { runs: 8 });

    let text = fs::read_to_string(dir.path().join("results.csv")).unwrap();
    let mut lines = text.lines();
    let header = lines.next().unwrap();
    let (j, w) = (col(header, "jain"), col(header, "wire_overhead"));
    let json: Vec<serde_json::Value> =
        serde_json::from_str(&fs::read_to_string(dir.path().join("results.json")).unwrap())
            .unwrap();
    for (line, rec) in lines.zip(&json) {
        let f: Vec<&str> = line.split(',').collect();
        let goodputs: Vec<f64> = rec["metrics"]["goodput_bps"]
            .as_array()
            .unwrap()
            .iter()
            .map(|g| g.as_f64().unwrap())
            .collect();
        assert_eq!(goodputs.len(), 3);
        let index: f64 = f[j].parse().unwrap();
        assert!(index > 1.0 / 3.0 && index <= 1.0, "{line}");
        assert!((index - jain(&goodputs)).abs() < 1e-12, "{line}");
        assert_eq!(rec["metrics"]["jain"].as_f64().unwrap(), index);
        let overhead: f64 = f[w].parse().unwrap();
        let m = &rec["metrics"];
        let wire =
            m["exposer_bytes_sent"].as_f64().unwrap() + m["puller_bytes_sent"].as_f64().unwrap();
        assert!(overhead > 1.0, "{line}");
        assert!(
            (overhead - wire / (3.0 * 48.0 * 1024.0)).abs() < 1e-9,
            "{line}"
        );
    }

    let fair = fs::read_to_string(dir.path().join("fairness.svg")).unwrap();
    assert!(fair.contains("Jain"));
    for label in [
        "cc=delay",
        "cc=reno",
        "queue=16KiB pullers=3",
        "queue=256KiB",
    ] {
        assert!(fair.contains(label), "fairness.svg names {label}");
    }
    assert!(dir.path().join("fairness.png").exists());

    // Runs 0, 2, 4, 6 are the first seed of each variant and scenario.
    let mut want = Vec::new();
    for id in [0, 2, 4, 6] {
        for ext in ["csv", "png", "svg"] {
            want.push(format!("run-{id}.{ext}"));
        }
    }
    assert_eq!(run_ids(dir.path()), want);
    let csv = fs::read_to_string(dir.path().join("series/run-2.csv")).unwrap();
    assert!(csv.starts_with("t_s,puller,window_chunks,rate_bps,srtt_ms\n"));
    let pullers: std::collections::BTreeSet<&str> = csv
        .lines()
        .skip(1)
        .map(|l| l.split(',').nth(1).unwrap())
        .collect();
    assert_eq!(pullers.len(), 3, "every puller sampled");
    let svg = fs::read_to_string(dir.path().join("series/run-2.svg")).unwrap();
    for text in [
        "congestion window",
        "delivery rate",
        "smoothed RTT",
        "puller 2",
    ] {
        assert!(svg.contains(text), "{text}");
    }
    let png = fs::read(dir.path().join("series/run-2.png")).unwrap();
    assert_eq!(&png[..8], b"\x89PNG\r\n\x1a\n");
    assert_eq!(&png[16..24], &[0, 0, 3, 132, 0, 0, 3, 132], "900 x 900");
}

#[test]
fn series_selection() {
    let none =
        Plan::parse(&SHARED.replace("seeds = [1, 2]", "seeds = 1\nseries = \"none\"")).unwrap();
    let dir = tempfile::tempdir().unwrap();
    let mut o = SweepOptions::new(dir.path());
    o.jobs = 2;
    run(&none, &o).unwrap();
    assert!(run_ids(dir.path()).is_empty());
    // The option overrides the plan.
    let dir = tempfile::tempdir().unwrap();
    let mut o = SweepOptions::new(dir.path());
    o.series = Some("3".parse().unwrap());
    run(&none, &o).unwrap();
    assert_eq!(run_ids(dir.path()), ["run-3.csv", "run-3.png", "run-3.svg"]);
    // A run the plan does not have is an error, before anything is written.
    let gone = tempfile::tempdir().unwrap();
    let out = gone.path().join("out");
    let mut o = SweepOptions::new(&out);
    o.series = Some("2,4".parse().unwrap());
    let e = run(&none, &o).unwrap_err().to_string();
    assert!(e.contains("run 4") && e.contains("0..=3"), "{e}");
    assert!(!out.exists());

    let ids = Plan::parse(&SHARED.replace(
        "seeds = [1, 2]",
        "seeds = 1\nseries = [1, 2]\nsample_ms = 5",
    ))
    .unwrap();
    assert_eq!(ids.sample, Duration::from_millis(5));
    assert_eq!(ids.series, "1,2".parse().unwrap());
    assert_eq!("all".parse(), Ok(SeriesSelect::All));
    let e = "1,x".parse::<SeriesSelect>().unwrap_err();
    assert!(e.contains("first-seed"), "{e}");
    let e = Plan::parse(&SHARED.replace("seeds = [1, 2]", "seeds = 1\nsample_ms = 0"))
        .unwrap_err()
        .to_string();
    assert!(e.contains("sample_ms") && e.contains("line 5"), "{e}");
    let e = Plan::parse(&SHARED.replace("seeds = [1, 2]", "seeds = 1\nseries = \"some\""))
        .unwrap_err()
        .to_string();
    assert!(e.contains("series"), "{e}");
}
