//! `rgtp sweep` on a tiny plan, and on a bad one.

use std::fs;
use std::process::Command;

const BIN: &str = env!("CARGO_BIN_EXE_rgtp");

const PLAN: &str = r#"name = "tiny"
size = "16KiB"
seeds = [1, 2]

[variants]
fec = ["none", "rs:20,16"]

[scenarios]
loss = [0.0, 0.05]
delay_ms = 2
"#;

#[test]
fn sweep_writes_results() {
    let dir = tempfile::tempdir().unwrap();
    let plan = dir.path().join("plan.toml");
    fs::write(&plan, PLAN).unwrap();
    let out = dir.path().join("out");
    let r = Command::new(BIN)
        .arg("sweep")
        .arg(&plan)
        .arg("--out")
        .arg(&out)
        .args(["--jobs", "2", "-q"])
        .env_remove("RGTP_LOG")
        .output()
        .unwrap();
    assert!(r.status.success(), "{}", String::from_utf8_lossy(&r.stderr));
    for name in [
        "results.csv",
        "results.json",
        "manifest.json",
        "runs.jsonl",
        "goodput-vs-loss.png",
        "goodput-vs-loss.svg",
        "completion-cdf.png",
        "completion-cdf.svg",
    ] {
        assert!(out.join(name).exists(), "{name} missing");
    }
    let csv = fs::read_to_string(out.join("results.csv")).unwrap();
    assert_eq!(csv.lines().count(), 1 + 8);
}

#[test]
fn bad_plan_exits_2_naming_the_key() {
    let dir = tempfile::tempdir().unwrap();
    let plan = dir.path().join("plan.toml");
    fs::write(
        &plan,
        PLAN.replace("delay_ms = 2", "delay_ms = 2\nbandwidth = 5"),
    )
    .unwrap();
    let r = Command::new(BIN)
        .arg("sweep")
        .arg(&plan)
        .arg("--out")
        .arg(dir.path().join("out"))
        .env_remove("RGTP_LOG")
        .output()
        .unwrap();
    assert_eq!(r.status.code(), Some(2));
    let err = String::from_utf8_lossy(&r.stderr);
    assert!(
        err.contains("bandwidth") && err.contains("line 11"),
        "{err}"
    );
}

#[test]
fn help_shows_an_example_plan() {
    let r = Command::new(BIN)
        .args(["sweep", "--help"])
        .output()
        .unwrap();
    let text = String::from_utf8_lossy(&r.stdout);
    assert!(r.status.success());
    assert!(
        text.contains("[scenarios]") && text.contains("--resume"),
        "{text}"
    );
}

#[test]
fn sweep_over_a_delivery_trace_records_the_trace_and_its_hash() {
    let dir = tempfile::tempdir().unwrap();
    fs::create_dir(dir.path().join("t")).unwrap();
    // The committed constant 12 Mbit/s trace, copied beside the plan.
    let repo_trace = std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../../experiments/traces/const-12mbit.trace");
    let text = fs::read(&repo_trace).unwrap();
    fs::write(dir.path().join("t/const.trace"), &text).unwrap();
    let plan = dir.path().join("plan.toml");
    fs::write(
        &plan,
        "name = \"traced\"\nsize = \"64KiB\"\nseeds = 1\n\n[variants]\ncc = [\"reno\", \"cubic\"]\n\n\
         [scenarios]\ntrace = \"t/const.trace\"\ndelay_ms = 5\n",
    )
    .unwrap();
    let out = dir.path().join("out");
    // Run from another directory: the trace path is relative to the plan.
    let r = Command::new(BIN)
        .current_dir(std::env::temp_dir())
        .arg("sweep")
        .arg(&plan)
        .arg("--out")
        .arg(&out)
        .args(["--jobs", "1", "-q"])
        .env_remove("RGTP_LOG")
        .output()
        .unwrap();
    assert!(r.status.success(), "{}", String::from_utf8_lossy(&r.stderr));
    let csv = fs::read_to_string(out.join("results.csv")).unwrap();
    let lines: Vec<&str> = csv.lines().collect();
    assert_eq!(lines.len(), 3);
    let header: Vec<&str> = lines[0].split(',').collect();
    let col = |name: &str| header.iter().position(|h| *h == name).unwrap();
    let manifest = fs::read_to_string(out.join("manifest.json")).unwrap();
    for row in &lines[1..] {
        let f: Vec<&str> = row.split(',').collect();
        assert_eq!(f[col("completed")], "1", "{row}");
        assert_eq!(f[col("trace")], "t/const.trace");
        let sha = f[col("trace_sha256")];
        assert_eq!(sha.len(), 64);
        assert!(manifest.contains(sha), "{manifest}");
        // Goodput stays under the trace's 1.5 MB/s.
        let g: f64 = f[col("goodput_mean_bps")].parse().unwrap();
        assert!(g > 0.0 && g < 1_500_000.0, "{g}");
    }

    // A malformed trace: exit 2 naming the plan key and the trace's line.
    fs::write(dir.path().join("t/const.trace"), "3\n2\n").unwrap();
    let r = Command::new(BIN)
        .arg("sweep")
        .arg(&plan)
        .arg("--out")
        .arg(dir.path().join("out2"))
        .env_remove("RGTP_LOG")
        .output()
        .unwrap();
    assert_eq!(r.status.code(), Some(2));
    let err = String::from_utf8_lossy(&r.stderr);
    assert!(
        err.contains("scenarios.trace") && err.contains("trace line 2"),
        "{err}"
    );
}

#[test]
fn the_cellular_example_plan_parses_with_its_traces() {
    let path =
        std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../../experiments/cellular.toml");
    let plan = rgtp_lab::Plan::load(&path).unwrap();
    let ccs: Vec<&str> = plan.variants.iter().map(|v| v.cc.as_str()).collect();
    assert_eq!(ccs, ["delay", "reno", "cubic"]);
    let traces: Vec<&str> = plan
        .scenarios
        .iter()
        .filter_map(|s| s.trace.as_ref().map(|t| t.path.as_str()))
        .collect();
    assert!(traces.contains(&"traces/const-12mbit.trace"));
    assert!(traces.contains(&"traces/cellular-2-24mbit.trace"));
    for s in &plan.scenarios {
        let t = &s.trace.as_ref().unwrap().trace;
        let mbit = t.mean_rate() * 8.0 / 1e6;
        assert!((2.0..=24.0).contains(&mbit), "{mbit}");
    }
}

#[test]
fn series_flag_picks_the_runs_with_a_time_series() {
    let dir = tempfile::tempdir().unwrap();
    let plan = dir.path().join("plan.toml");
    fs::write(&plan, PLAN).unwrap();
    let out = dir.path().join("out");
    let r = Command::new(BIN)
        .arg("sweep")
        .arg(&plan)
        .arg("--out")
        .arg(&out)
        .args(["--jobs", "2", "-q", "--series", "1,6"])
        .env_remove("RGTP_LOG")
        .output()
        .unwrap();
    assert!(r.status.success(), "{}", String::from_utf8_lossy(&r.stderr));
    let mut names: Vec<String> = fs::read_dir(out.join("series"))
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    names.sort();
    assert_eq!(
        names,
        [
            "run-1.csv",
            "run-1.png",
            "run-1.svg",
            "run-6.csv",
            "run-6.png",
            "run-6.svg"
        ]
    );
    for name in ["fairness.svg", "fairness.png", "overhead-vs-loss.svg"] {
        assert!(out.join(name).exists(), "{name} missing");
    }
    let csv = fs::read_to_string(out.join("results.csv")).unwrap();
    let header = csv.lines().next().unwrap();
    assert!(
        header.ends_with(",trace_sha256,jain,wire_overhead"),
        "{header}"
    );

    let r = Command::new(BIN)
        .arg("sweep")
        .arg(&plan)
        .arg("--out")
        .arg(dir.path().join("out2"))
        .args(["--series", "first"])
        .env_remove("RGTP_LOG")
        .output()
        .unwrap();
    assert_eq!(r.status.code(), Some(2));
    let err = String::from_utf8_lossy(&r.stderr);
    assert!(
        err.contains("--series") && err.contains("first-seed"),
        "{err}"
    );
}

#[test]
fn the_example_plans_parse() {
    let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../../experiments");
    let load = |name: &str| rgtp_lab::Plan::load(&dir.join(name)).unwrap();
    let chunks = load("chunk-size.toml");
    let sizes: Vec<u32> = chunks.variants.iter().map(|v| v.chunk_size).collect();
    assert!(sizes.len() >= 3, "{sizes:?}");
    let proofs = load("proofs.toml");
    let on: Vec<bool> = proofs.variants.iter().map(|v| v.proofs).collect();
    assert_eq!(on, [true, false, true, false]);
    // The controllers' fairness scenario: 100 Mbit/s, a shallow and a deep
    // queue, one and four pullers.
    let cc = load("controllers.toml");
    assert_eq!(cc.variants.len(), 3);
    let mut seen = Vec::new();
    for s in &cc.scenarios {
        assert_eq!(s.rate, Some(12_500_000));
        seen.push((s.queue, s.pullers));
    }
    seen.sort();
    assert_eq!(
        seen,
        [(32 * 1024, 1), (32 * 1024, 4), (1 << 20, 1), (1 << 20, 4)]
    );
}

#[test]
fn pcaps_flag_records_the_delivered_datagrams_of_the_runs_it_names() {
    let dir = tempfile::tempdir().unwrap();
    let plan = dir.path().join("plan.toml");
    fs::write(&plan, PLAN).unwrap();
    let sweep = |out: &std::path::Path| {
        let r = Command::new(BIN)
            .arg("sweep")
            .arg(&plan)
            .arg("--out")
            .arg(out)
            .args(["--jobs", "2", "-q", "--series", "none", "--pcaps", "0,2"])
            .env_remove("RGTP_LOG")
            .output()
            .unwrap();
        assert!(r.status.success(), "{}", String::from_utf8_lossy(&r.stderr));
    };
    let (a, b) = (dir.path().join("a"), dir.path().join("b"));
    sweep(&a);
    sweep(&b);
    let mut names: Vec<String> = fs::read_dir(a.join("pcaps"))
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    names.sort();
    assert_eq!(names, ["run-0.pcap", "run-2.pcap"]);
    let exposer: std::net::SocketAddr = "10.0.0.1:9000".parse().unwrap();
    for name in &names {
        let bytes = fs::read(a.join("pcaps").join(name)).unwrap();
        // The same plan writes the same capture.
        assert_eq!(
            bytes,
            fs::read(b.join("pcaps").join(name)).unwrap(),
            "{name}"
        );
        let cap = rgtp_capture::read(&bytes).unwrap();
        let mut chunks = std::collections::BTreeSet::new();
        for (_, d) in cap.datagrams() {
            let ends = [d.src, d.dst];
            assert!(
                ends.contains(&rgtp_proto::Peer::Ip(exposer)),
                "{name}: {ends:?}"
            );
            // Every record is an RGTP v1 packet; chunks (type 3, or 4 with a proof as
            // here: sweeps default to proofs) carry their index at 20..24.
            assert_eq!(d.payload[0], 1, "{name}");
            if d.payload[1] == 3 || d.payload[1] == 4 {
                chunks.insert(u32::from_be_bytes(d.payload[20..24].try_into().unwrap()));
            }
        }
        // 16 KiB in 1024-byte chunks: every chunk was delivered, lost or not on the way.
        assert_eq!(chunks.len(), 16, "{name}: {chunks:?}");
    }
    // A run id outside the plan is refused before anything runs.
    let r = Command::new(BIN)
        .arg("sweep")
        .arg(&plan)
        .arg("--out")
        .arg(dir.path().join("c"))
        .args(["-q", "--pcaps", "99"])
        .output()
        .unwrap();
    assert_eq!(r.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&r.stderr).contains("pcaps: run 99"));
}
