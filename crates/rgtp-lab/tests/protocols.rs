//! The `protocol` variant axis: gtUDP and flow runs on the sweep's scenarios.

use rgtp_lab::sweep::{csv, execute, CSV_HEADER};
use rgtp_lab::{run, Outcome, SweepOptions};
use rgtp_lab::{Plan, RunRecord};

fn plan(protocol: &str, size: &str, scenarios: &str, seeds: &str) -> Plan {
    let src = format!(
        "name = \"p\"\nsize = \"{size}\"\nseeds = {seeds}\n[variants]\nprotocol = {protocol}\n[scenarios]\n{scenarios}\n"
    );
    Plan::parse(&src).unwrap()
}

fn one(protocol: &str, size: &str, scenarios: &str, seed: u64) -> RunRecord {
    let p = plan(
        &format!("\"{protocol}\""),
        size,
        scenarios,
        &format!("[{seed}]"),
    );
    let runs = p.runs();
    assert_eq!(runs.len(), 1);
    execute(&p, &runs[0]).unwrap()
}

#[test]
fn the_protocol_axis_parses_and_crosses() {
    let p = plan(
        "[\"rgtp\", \"gtudp\", \"gtudp-reference\", \"gtudp-auth\", \"flow:data\", \"flow:video\"]",
        "10kB",
        "loss = [0.0, 0.05]",
        "[1, 2]",
    );
    let protos: Vec<&str> = p.variants.iter().map(|v| v.protocol.as_str()).collect();
    assert_eq!(
        protos,
        [
            "rgtp",
            "gtudp",
            "gtudp-reference",
            "gtudp-auth",
            "flow:data",
            "flow:video"
        ]
    );
    assert_eq!(p.runs().len(), 6 * 2 * 2);
    // Without the key, every variant is an RGTP pull.
    let p = Plan::parse("name = \"p\"\nsize = 1000\nseeds = 1\n").unwrap();
    assert_eq!(p.variants[0].protocol, "rgtp");
}

#[test]
fn unknown_protocols_name_the_key_and_line() {
    let src =
        "name = \"p\"\nsize = 1000\nseeds = 1\n[variants]\nprotocol = [\"gtudp\", \"flow:bulk\"]\n";
    let e = Plan::parse(src).unwrap_err().0;
    assert!(e.contains("variants.protocol"), "{e}");
    assert!(e.contains("line 5"), "{e}");
    assert!(e.contains("flow:bulk") && e.contains("flow:voice"), "{e}");
    let src = "name = \"p\"\nsize = 1000\nseeds = 1\n[variants]\nprotocol = 3\n";
    assert!(Plan::parse(src)
        .unwrap_err()
        .0
        .contains("variants.protocol"));
    let src = "name = \"p\"\nsize = 1000\nseeds = 1\n[variants]\nprotocol = \"gtudp\"\n[scenarios]\npullers = [1, 2]\n";
    let e = Plan::parse(src).unwrap_err().0;
    assert!(
        e.contains("variants.protocol") && e.contains("pullers"),
        "{e}"
    );
}

#[test]
fn gtudp_delivers_every_datagram_exactly_once_at_10_percent_loss() {
    let r = one("gtudp", "40kB", "loss = 0.1\ndelay_ms = 5", 3);
    let p = r.metrics.proto.as_ref().unwrap();
    assert_eq!(p.sent, 40);
    assert_eq!(p.delivered, p.sent);
    assert_eq!(p.duplicates, 0);
    assert_eq!(p.failed, Some(0));
    assert!(p.retransmissions > 0, "no DATA lost at 10 % loss?");
    assert_eq!(r.metrics.completed, 1);
    assert!(r.metrics.goodput_mean_bps > 0.0);
    assert!(r.metrics.wire_overhead > 1.0);
    assert_eq!(r.protocol, "gtudp");
}

#[test]
fn reference_timers_take_longer_than_rtt_timers_on_a_fast_path() {
    let sc = "loss = 0.2\ndelay_ms = 1";
    let rtt = one("gtudp", "100kB", sc, 6);
    let reference = one("gtudp-reference", "100kB", sc, 6);
    assert!(
        rtt.metrics.completion_s < reference.metrics.completion_s,
        "rtt {} reference {}",
        rtt.metrics.completion_s,
        reference.metrics.completion_s
    );
    let auth = one("gtudp-auth", "20kB", sc, 6);
    let p = auth.metrics.proto.unwrap();
    assert_eq!((p.delivered, p.duplicates), (p.sent, 0));
}

#[test]
fn a_data_flow_delivers_everything_and_best_effort_loses_without_retransmitting() {
    let r = one("flow:data", "50kB", "loss = 0.05\ndelay_ms = 5", 1);
    let p = r.metrics.proto.as_ref().unwrap();
    assert_eq!(p.delivered, p.sent);
    assert_eq!(p.delivered_pct(), 100.0);
    assert_eq!(p.in_order, Some(true));
    assert!(p.retransmissions > 0);
    assert!(p.latency_p50_ms.unwrap() >= 5.0);
    assert_eq!(r.metrics.completed, 1);

    let r = one("flow:best_effort", "100kB", "loss = 0.05\ndelay_ms = 5", 1);
    let p = r.metrics.proto.as_ref().unwrap();
    assert!(p.delivered < p.sent, "{p:?}");
    assert_eq!(p.retransmissions, 0);
    assert_eq!(p.duplicates, 0);
    assert_eq!(p.in_order, Some(true));
    assert_eq!(r.metrics.completed, 0);

    // Unordered, a lost SDU holds nothing back: the rest arrive.
    let r = one("flow:raw", "100kB", "loss = 0.05\ndelay_ms = 5", 1);
    let p = r.metrics.proto.as_ref().unwrap();
    assert!(p.delivered < p.sent, "{p:?}");
    assert!(p.delivered_pct() > 80.0, "{p:?}");
    assert_eq!(p.retransmissions, 0);
}

#[test]
fn paced_flows_spread_their_sdus() {
    let r = one("flow:video", "20kB", "loss = 0.0\ndelay_ms = 5", 1);
    let p = r.metrics.proto.as_ref().unwrap();
    assert_eq!(p.delivered, p.sent);
    // 20 SDUs, one every 10 ms.
    assert!(r.metrics.completion_s >= 0.19, "{}", r.metrics.completion_s);
    assert!(p.latency_p99_ms.unwrap() < 50.0, "{p:?}");
}

#[test]
fn runs_repeat_and_seeds_change_them() {
    let sc = "loss = 0.1\ndelay_ms = 5\njitter_ms = 2";
    for proto in ["gtudp", "flow:data"] {
        let a = one(proto, "20kB", sc, 4);
        let b = one(proto, "20kB", sc, 4);
        let c = one(proto, "20kB", sc, 5);
        assert_eq!(a.metrics.trace_hash, b.metrics.trace_hash, "{proto}");
        assert_eq!(a, b, "{proto}");
        assert_ne!(a.metrics.trace_hash, c.metrics.trace_hash, "{proto}");
    }
}

#[test]
fn the_csv_gains_protocol_columns_only_with_other_protocols() {
    let rgtp = one("rgtp", "8kB", "loss = 0.0", 1);
    let only = csv(std::slice::from_ref(&rgtp));
    let rgtp_naks = rgtp.metrics.naks.to_string();
    assert_eq!(only.lines().next().unwrap(), CSV_HEADER);
    let gt = one("gtudp", "8kB", "loss = 0.0", 1);
    let mixed = csv(&[rgtp, gt]);
    let lines: Vec<&str> = mixed.lines().collect();
    let head: Vec<&str> = lines[0].split(',').collect();
    assert!(head.len() > CSV_HEADER.split(',').count());
    let col = |row: &str, name: &str| {
        let i = head.iter().position(|h| *h == name).unwrap();
        row.split(',').nth(i).unwrap().to_owned()
    };
    assert_eq!(col(lines[1], "protocol"), "rgtp");
    assert_eq!(col(lines[1], "sent"), "");
    assert_eq!(col(lines[1], "naks"), rgtp_naks);
    assert_eq!(col(lines[2], "protocol"), "gtudp");
    assert_eq!(col(lines[2], "naks"), "");
    assert_eq!(col(lines[2], "fec"), "");
    assert_eq!(col(lines[2], "sent"), "8");
    assert_eq!(col(lines[2], "duplicates"), "0");
    assert_eq!(col(lines[2], "in_order"), "");
    assert_eq!(col(lines[2], "parity_sent"), "");
    assert!(!col(lines[2], "latency_p99_ms").is_empty());
    assert_eq!(lines[2].split(',').count(), head.len());
}

#[test]
fn a_mixed_sweep_writes_its_outputs_and_resumes() {
    let src = "name = \"mixed\"\nsize = \"8kB\"\nseeds = [1, 2]\n[variants]\nprotocol = [\"rgtp\", \"gtudp\", \"flow:voice\"]\n[scenarios]\nloss = [0.0, 0.05]\n";
    let p = Plan::parse(src).unwrap();
    let dir = tempfile::tempdir().unwrap();
    let mut opts = SweepOptions::new(dir.path());
    opts.jobs = 2;
    opts.pcaps = rgtp_lab::SeriesSelect::All;
    assert_eq!(run(&p, &opts).unwrap(), Outcome::Complete { runs: 12 });
    let text = std::fs::read_to_string(dir.path().join("results.csv")).unwrap();
    assert_eq!(text.lines().count(), 13);
    assert!(text
        .lines()
        .skip(1)
        .all(|l| l.contains(",rgtp,") || l.contains(",gtudp,") || l.contains(",flow:voice,")));
    // The goodput plot has a line per protocol, named in its legend.
    let svg = std::fs::read_to_string(dir.path().join("goodput-vs-loss.svg")).unwrap();
    for p in ["protocol=rgtp", "protocol=gtudp", "protocol=flow:voice"] {
        assert!(svg.contains(p), "{p} not in the legend");
    }
    // A gtUDP run's capture holds its datagrams.
    assert!(
        std::fs::metadata(dir.path().join("pcaps/run-4.pcap"))
            .unwrap()
            .len()
            > 8000
    );
    opts.resume = true;
    assert_eq!(run(&p, &opts).unwrap(), Outcome::Complete { runs: 12 });
    assert_eq!(
        std::fs::read_to_string(dir.path().join("results.csv")).unwrap(),
        text
    );
}

#[test]
fn every_impairment_of_the_scenario_reaches_the_other_protocols() {
    let sc = "loss = 0.1\nburst = [0.01, 0.3, 0.5]\ndelay_ms = 5\njitter_ms = 2\nreorder = 0.1\nduplicate = 0.1";
    let corrupt = format!("{sc}\ncorrupt = 0.02");
    for (proto, sc) in [
        ("gtudp", sc),
        ("gtudp-auth", corrupt.as_str()),
        ("flow:data", sc),
        // Sealed, a damaged datagram is refused and sent again.
        ("flow:data_crypt", corrupt.as_str()),
    ] {
        let r = one(proto, "60kB", sc, 8);
        let p = r.metrics.proto.as_ref().unwrap();
        assert_eq!(p.duplicates, 0, "{proto}: {p:?}");
        assert!(p.retransmissions > 0, "{proto}: {p:?}");
        assert_eq!(p.delivered, p.sent, "{proto}: {p:?}");
        if proto.starts_with("flow") {
            assert_eq!(p.in_order, Some(true), "{proto}");
        }
    }
}
