//! The protocol axis: gtUDP exchanges and flows on the same scenarios as RGTP
//! pulls, reproducible, with their own columns.

use rgtp_lab::plan::Plan;
use rgtp_lab::sweep::{csv, execute, execute_traced};
use rgtp_lab::RunRecord;

fn plan(protocols: &str, scenarios: &str) -> Plan {
    sized(protocols, "96KiB", scenarios)
}

fn sized(protocols: &str, size: &str, scenarios: &str) -> Plan {
    Plan::parse(&format!(
        r#"
name = "protocols"
size = "{size}"
seeds = [1]

[variants]
protocol = {protocols}
fec = ["none", "rs:20,16"]
chunk_size = 1024

[scenarios]
{scenarios}
"#
    ))
    .unwrap()
}

fn runs(plan: &Plan) -> Vec<RunRecord> {
    plan.runs()
        .iter()
        .map(|s| execute(plan, s).unwrap())
        .collect()
}

fn by<'r>(rs: &'r [RunRecord], protocol: &str) -> &'r RunRecord {
    rs.iter().find(|r| r.protocol == protocol).unwrap()
}

#[test]
fn rgtp_layers_cross_rgtp_only_and_other_protocols_get_one_variant() {
    let p = plan(
        r#"["rgtp", "gtudp", "flow:data"]"#,
        "loss = [0.0, 0.05]\ndelay_ms = 5",
    );
    let labels: Vec<String> = p.variants.iter().map(|v| v.label()).collect();
    assert_eq!(
        labels,
        [
            "fec=none cc=delay chunk=1024 proofs=true",
            "fec=rs:20,16 cc=delay chunk=1024 proofs=true",
            "gtudp chunk=1024",
            "flow:data chunk=1024",
        ]
    );
    assert_eq!(p.runs().len(), 8);
}

#[test]
fn an_unknown_protocol_or_preset_is_named_with_its_line() {
    for (bad, says) in [
        (r#""tcp""#, "unknown protocol \"tcp\""),
        (
            r#"["rgtp", "flow:bulk"]"#,
            "unknown flow QoS preset \"bulk\"",
        ),
        ("3", "expected a protocol name"),
    ] {
        let e = Plan::parse(&format!(
            "name = \"x\"\nsize = 1024\nseeds = [1]\n[variants]\nprotocol = {bad}\n"
        ))
        .unwrap_err()
        .to_string();
        assert!(e.contains("variants.protocol"), "{e}");
        assert!(e.contains("line 5"), "{e}");
        assert!(e.contains(says), "{e}");
    }
}

#[test]
fn gtudp_delivers_every_datagram_exactly_once_through_loss_reordering_and_duplication() {
    let p = sized(
        r#"["gtudp", "gtudp-reference"]"#,
        "768KiB",
        "loss = 0.1\ndelay_ms = 5\nreorder = 0.1\nduplicate = 0.1",
    );
    let rs = runs(&p);
    for r in &rs {
        let u = r.metrics.units.as_ref().unwrap();
        assert_eq!(u.sent, 768, "{}", r.protocol);
        assert_eq!(u.delivered, 768, "{}", r.protocol);
        assert_eq!(u.duplicates, 0, "{}", r.protocol);
        assert_eq!(u.failed, 0, "{}", r.protocol);
        assert_eq!(r.metrics.completed, 1);
        assert!(u.retransmissions > 0, "10% loss: {}", r.protocol);
        assert!(u.latency_p99_ms >= u.latency_p50_ms);
    }
    // The reference's fixed half-second timer against an RTT-based one on a 10 ms
    // round trip: once the first round trips are measured, a lost datagram costs
    // the RTT-based sender tens of milliseconds, the reference half a second.
    let (rtt, reference) = (by(&rs, "gtudp"), by(&rs, "gtudp-reference"));
    assert!(
        reference.metrics.completion_s > 2.0 * rtt.metrics.completion_s,
        "reference {} s, rtt {} s",
        reference.metrics.completion_s,
        rtt.metrics.completion_s
    );
    let p99 = |r: &RunRecord| r.metrics.units.as_ref().unwrap().latency_p99_ms;
    assert!(p99(reference) >= 500.0, "{}", p99(reference));
    assert!(p99(rtt) < 500.0, "{}", p99(rtt));
}

#[test]
fn reliable_flows_deliver_everything_and_unreliable_ones_never_retransmit() {
    let p = plan(
        r#"["flow:data", "flow:data_crypt", "flow:raw", "flow:video"]"#,
        "loss = 0.05\ndelay_ms = 5",
    );
    let rs = runs(&p);
    for name in ["flow:data", "flow:data_crypt"] {
        let r = by(&rs, name);
        let u = r.metrics.units.as_ref().unwrap();
        assert_eq!((u.sent, u.delivered, u.duplicates), (96, 96, 0), "{name}");
        assert!(u.retransmissions > 0, "{name}");
        assert_eq!(r.metrics.completed, 1, "{name}");
    }
    let be = by(&rs, "flow:raw");
    let u = be.metrics.units.as_ref().unwrap();
    assert_eq!(u.retransmissions, 0);
    assert!(u.delivered < 96 && u.delivered > 70, "{}", u.delivered);
    assert_eq!(u.duplicates, 0);
    assert_eq!(be.metrics.completed, 0, "not everything arrived");
    // Video: parity instead of retransmission.
    let v = by(&rs, "flow:video");
    let u = v.metrics.units.as_ref().unwrap();
    assert_eq!(u.retransmissions, 0);
    assert!(u.parity_sent > 0);
    assert!(u.delivered >= 90, "{}", u.delivered);
}

#[test]
fn a_protocol_run_is_reproduced_and_its_seed_changes_it() {
    let text = |seeds: &str| {
        let p = Plan::parse(&format!(
            "name = \"x\"\nsize = \"32KiB\"\nseeds = {seeds}\n[variants]\nprotocol = [\"gtudp\", \"flow:video\"]\n[scenarios]\nloss = 0.05\n"
        ))
        .unwrap();
        let rs = runs(&p);
        let (_, _, trace) = execute_traced(&p, &p.runs()[0], None, true).unwrap();
        (csv(&rs), trace.unwrap().len())
    };
    let (a, delivered) = text("[1]");
    assert!(delivered > 32, "{delivered}");
    assert_eq!(a, text("[1]").0, "the same seed gives the same bytes");
    let b = text("[2]").0;
    let hash = |csv: &str, row: usize| {
        let header: Vec<&str> = csv.lines().next().unwrap().split(',').collect();
        let col = header.iter().position(|h| *h == "trace_hash").unwrap();
        csv.lines()
            .nth(row)
            .unwrap()
            .split(',')
            .nth(col)
            .unwrap()
            .to_owned()
    };
    for row in [1, 2] {
        assert_ne!(hash(&a, row), hash(&b, row), "row {row}");
    }
    // RGTP rows leave the protocol columns empty; these fill them.
    let header = a.lines().next().unwrap();
    assert!(header.ends_with(",protocol,units_sent,units_delivered,units_duplicated,retransmissions,failed,latency_p50_ms,latency_p99_ms"));
    assert!(a.lines().nth(1).unwrap().contains(",gtudp,32,32,0,"), "{a}");
}
