//! The interop matrix on a small configuration: {ours, the faulty exposer, one that
//! supports nothing} × {ours, the slow-retry puller, a puller that supports nothing}
//! over {clean, 5% loss} with a 1 MiB file, twice with one seed.

mod common;

use common::*;
use rgtp_conformance::matrix::{self, CellVerdict, Config};
use rgtp_conformance::{failing_ids, Selection};

fn config() -> Config {
    let rgtp = built("rgtp", &["build", "-p", "rgtp-cli", "--bin", "rgtp"]);
    let faulty = built(
        "examples/faulty-exposer",
        &[
            "build",
            "-p",
            "rgtp-conformance",
            "--example",
            "faulty-exposer",
        ],
    );
    let slow = built(
        "examples/slow-retry-puller",
        &[
            "build",
            "-p",
            "rgtp-conformance",
            "--example",
            "slow-retry-puller",
        ],
    );
    let text = format!(
        r#"
size = 1048576
timeout = 30
impairments = ["clean", "loss5"]

[ours]
exposer = "'{rgtp}' expose {{file}} --port {{port}} -q"
puller = "'{rgtp}' pull {{ticket}} -o {{out}} -q --connect-timeout 5 --idle-timeout 10"

[faulty]
exposer = "'{faulty}' {{file}} {{port}}"

[slow-retry]
puller = "'{slow}' {{ticket}} {{out}}"

[nothing]  # supports nothing, as exposer or as puller
exposer = "exit 127 {{file}} {{port}}"
puller = "exit 127 {{ticket}} {{out}}"
"#,
        rgtp = rgtp.display(),
        faulty = faulty.display(),
        slow = slow.display()
    );
    Config::parse(&text).expect("config")
}

#[test]
fn small_matrix_is_deterministic() {
    let config = config();
    let dir = tempfile::tempdir().unwrap();
    let first = matrix::run(&config, 42, &dir.path().join("a"), |_| {}).unwrap();
    print!("{}", matrix::table(&first));
    assert_eq!(first.cells.len(), 3 * 3 * 2);
    for e in ["ours", "faulty"] {
        for imp in ["clean", "loss5"] {
            let c = first.cell(e, "ours", imp).unwrap();
            assert_eq!(
                c.verdict,
                CellVerdict::Pass,
                "{e} × ours / {imp}: {}",
                c.detail
            );
            assert!(c.detail.contains("1048576 B byte-exact"), "{}", c.detail);
            let n = first.cell(e, "nothing", imp).unwrap();
            assert_eq!(n.verdict, CellVerdict::NotApplicable, "{}", n.detail);
        }
    }
    for p in ["ours", "nothing"] {
        for imp in ["clean", "loss5"] {
            let n = first.cell("nothing", p, imp).unwrap();
            assert_eq!(n.verdict, CellVerdict::NotApplicable, "{}", n.detail);
            assert!(n.detail.contains("unsupported"), "{}", n.detail);
        }
    }
    // The slow-retry puller pulls a clean path and fails wherever a chunk is lost,
    // saying what it did; no other cell fails.
    for e in ["ours", "faulty"] {
        let c = first.cell(e, "slow-retry", "clean").unwrap();
        assert_eq!(
            c.verdict,
            CellVerdict::Pass,
            "{e} × slow-retry: {}",
            c.detail
        );
        let c = first.cell(e, "slow-retry", "loss5").unwrap();
        assert_eq!(
            c.verdict,
            CellVerdict::Fail,
            "{e} × slow-retry: {}",
            c.detail
        );
        assert!(c.detail.contains("exit 3"), "{}", c.detail);
    }
    let failed: Vec<_> = first
        .verdicts()
        .into_iter()
        .filter(|v| v.3 == CellVerdict::Fail)
        .collect();
    assert_eq!(failed.len(), 2, "{failed:?}");
    // The loss is real: the relay dropped datagrams in the loss5 cells and none in clean.
    let lost = |imp: &str| {
        let d = &first.cell("ours", "ours", imp).unwrap().detail;
        let (_, rest) = d.split_once("toward the puller ").expect("relay counters");
        let (_, rest) = rest.split_once(" in, ").unwrap();
        rest.split(' ').next().unwrap().parse::<u64>().unwrap()
    };
    assert_eq!(lost("clean"), 0);
    assert!(lost("loss5") > 0);

    // The faulty exposer's pushed chunks do not stop a pull (they are genuine chunks of
    // the exposure), but the cell's capture shows them: judged as a recording, its
    // exposer sends chunks nobody asked for (CAP-020), and ours does not.
    let judge = |e: &str| {
        let cell = first.cell(e, "ours", "clean").unwrap();
        let (_, pcap) = cell
            .evidence
            .iter()
            .find(|(k, _)| k == "pcap")
            .expect("a pcap");
        let path = dir.path().join("a").join(pcap);
        let (_, out) = rgtp_conformance::run_capture_file(
            &path,
            rgtp_conformance::cases::capture::CaptureOptions::default(),
            &Selection::default(),
        )
        .unwrap();
        failing_ids(&out)
    };
    assert!(judge("faulty").contains("CAP-020"));
    assert!(!judge("ours").contains("CAP-020"));

    // Evidence and reports.
    let written = matrix::write(&first, &dir.path().join("a")).unwrap();
    assert_eq!(written.len(), 3);
    let html = std::fs::read_to_string(dir.path().join("a/index.html")).unwrap();
    for c in &first.cells {
        for (_, rel) in &c.evidence {
            assert!(dir.path().join("a").join(rel).exists(), "{rel}");
            assert!(html.contains(&rgtp_conformance::html::href(rel)), "{rel}");
        }
    }
    let json: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(dir.path().join("a/matrix.json")).unwrap())
            .unwrap();
    assert_eq!(json["cells"].as_array().unwrap().len(), first.cells.len());
    assert_eq!(json["seed"], 42);

    // The same seed, the same verdicts.
    let second = matrix::run(&config, 42, &dir.path().join("b"), |_| {}).unwrap();
    assert_eq!(first.verdicts(), second.verdicts());
}

#[test]
fn config_errors_are_reported() {
    assert!(Config::parse("[a]\nexposer = \"x\"\n")
        .unwrap_err()
        .contains("puller"));
    assert!(
        Config::parse("impairments = [\"fog\"]\n[a]\nexposer = \"x\"\npuller = \"y\"\n")
            .unwrap_err()
            .contains("unknown impairment")
    );
    let e = Config::parse("[a]\nexposer = \"x\"\ncolour = \"y\"\n").unwrap_err();
    assert!(e.contains("[a]") && e.contains("colour"), "{e}");
    let e = Config::parse("size = \"big\"\n[a]\nexposer = \"x\"\npuller = \"y\"\n").unwrap_err();
    assert!(e.contains("size"), "{e}");
    let e = Config::parse("[a\nexposer = 1\n").unwrap_err();
    assert!(e.contains("line 1"), "{e}");
    let c = Config::parse(
        "size = 1_000 # bytes\n[a] # one\nexposer = 'e {file}'\npuller = \"p \\\"{ticket}\\\" {out}\"\n",
    )
    .unwrap();
    assert_eq!(c.size, 1000);
    assert_eq!(c.implementations[0].exposer.as_deref(), Some("e {file}"));
    assert_eq!(
        c.implementations[0].puller.as_deref(),
        Some("p \"{ticket}\" {out}")
    );
    assert_eq!(c.impairments.len(), matrix::IMPAIRMENTS.len());
}
