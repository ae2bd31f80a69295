//! The capture corpus in `pcaps/`: every capture replays to what its sidecar
//! says, the corpus regenerates byte for byte, and each capture shows what it
//! claims to exercise.

use std::collections::HashMap;
use std::path::{Path, PathBuf};

use rgtp::replay::{replay_expose, replay_pull, Pace, PullVerdict};
use rgtp::Ticket;
use rgtp_capture::Capture;
use rgtp_cli::corpus;
use rgtp_proto::Peer;
use rgtp_wire::Repr;
use serde_json::Value;
use sha2::{Digest, Sha256};

fn dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../../pcaps")
}

struct Entry {
    name: String,
    capture: Capture,
    sidecar: Value,
}

fn corpus_entries() -> Vec<Entry> {
    let mut out = Vec::new();
    for e in std::fs::read_dir(dir()).expect("pcaps/ exists") {
        let path = e.unwrap().path();
        let name = path.file_stem().unwrap().to_string_lossy().into_owned();
        // gtUDP and TEJ captures have their own generator and test (pcaps_gtudp_tej.rs).
        if name.starts_with("gtudp-") || name.starts_with("tej-") {
            continue;
        }
        if path.extension().is_some_and(|x| x == "pcap") {
            let sidecar_path = path.with_extension("json");
            let sidecar: Value = serde_json::from_slice(
                &std::fs::read(&sidecar_path)
                    .unwrap_or_else(|e| panic!("{name}: sidecar {sidecar_path:?}: {e}")),
            )
            .unwrap();
            let capture = rgtp_capture::read(&std::fs::read(&path).unwrap())
                .unwrap_or_else(|e| panic!("{name}: {e}"));
            out.push(Entry {
                name,
                capture,
                sidecar,
            });
        }
    }
    out.sort_by(|a, b| a.name.cmp(&b.name));
    out
}

fn scenario(name: &str) -> corpus::Scenario {
    corpus::scenarios()
        .into_iter()
        .find(|s| s.name == name)
        .unwrap_or_else(|| panic!("{name}: no scenario of that name generates it"))
}

#[test]
fn corpus_regenerates_byte_for_byte() {
    let tmp = tempfile::tempdir().unwrap();
    let names = corpus::generate(tmp.path()).unwrap();
    assert!(names.len() >= 16);
    for name in &names {
        for ext in ["pcap", "json"] {
            let fresh = std::fs::read(tmp.path().join(format!("{name}.{ext}"))).unwrap();
            let committed = std::fs::read(dir().join(format!("{name}.{ext}"))).unwrap_or_else(|e| {
                panic!("pcaps/{name}.{ext} missing ({e}): run `cargo run -p rgtp-cli --example regen-pcaps`")
            });
            assert!(
                fresh == committed,
                "pcaps/{name}.{ext} differs from a fresh generation: run `cargo run -p rgtp-cli --example regen-pcaps` and review the change"
            );
        }
    }
    let committed = corpus_entries().len();
    assert_eq!(
        committed,
        names.len(),
        "pcaps/ holds captures no scenario generates"
    );
}

fn counters(v: &Value) -> HashMap<String, u64> {
    v.as_object()
        .unwrap()
        .iter()
        .map(|(k, v)| (k.clone(), v.as_u64().unwrap()))
        .collect()
}

fn check_replays(e: &Entry, pace: Pace) {
    let ticket: Ticket = e.sidecar["ticket"].as_str().unwrap().parse().unwrap();
    let s = scenario(&e.name);
    let expect = &e.sidecar["expect"];
    let pull = replay_pull(&e.capture, &ticket, None, pace, |c| {
        c.want_proofs = s.proofs
    });
    let want = &expect["puller"];
    match &pull.verdict {
        PullVerdict::Complete(out) => {
            assert_eq!(want["verdict"], "complete", "{}", e.name);
            assert_eq!(
                hex::encode(Sha256::digest(out)),
                want["output_sha256"].as_str().unwrap(),
                "{}: replayed output differs",
                e.name
            );
            assert_eq!(
                want["output_sha256"], e.sidecar["source"]["sha256"],
                "{}: the sidecar's expected output is not the source",
                e.name
            );
        }
        PullVerdict::Failed(err) => {
            assert_eq!(want["verdict"], corpus::verdict_name(err), "{}", e.name)
        }
        other => panic!("{}: replay ended {other:?}", e.name),
    }
    assert_eq!(
        pull.fed as u64,
        want["datagrams_fed"].as_u64().unwrap(),
        "{}",
        e.name
    );
    assert_eq!(
        counters(&corpus::puller_counters(&pull.stats)),
        counters(&want["counters"]),
        "{}: puller counters",
        e.name
    );
    if expect["exposer"]["answers"] == "identical" {
        let prepared = corpus::prepare(&s);
        let exposer = ticket.peer().unwrap();
        let x = replay_expose(&e.capture, &prepared, exposer, pace);
        assert!(x.matches(), "{}: {:?}", e.name, x.first_difference());
        assert!(x.fed > 0 && !x.produced.is_empty(), "{}", e.name);
        assert_eq!(
            x.recorded.len() as u64,
            expect["exposer"]["answers_recorded"].as_u64().unwrap()
        );
        assert_eq!(
            counters(&corpus::exposer_counters(&x.stats)),
            counters(&expect["exposer"]["counters"]),
            "{}: exposer counters",
            e.name
        );
    }
}

#[test]
fn every_capture_replays_as_its_sidecar_says() {
    let entries = corpus_entries();
    assert!(entries.len() >= 16, "pcaps/ is missing captures");
    for e in &entries {
        check_replays(e, Pace::Fast);
    }
}

#[test]
fn replay_as_recorded_gives_the_same_result_and_takes_the_recorded_time() {
    let entries = corpus_entries();
    let e = entries.iter().find(|e| e.name == "multi-chunk").unwrap();
    let span = e.capture.records.last().unwrap().ts_us - e.capture.records[0].ts_us;
    assert!(span >= 2_000, "capture too short to time: {span} µs");
    let t = std::time::Instant::now();
    check_replays(e, Pace::AsRecorded { speed: 1.0 });
    // Both the puller and the exposer replays wait out the recorded spacing.
    assert!(
        t.elapsed().as_micros() as u64 >= span,
        "as-recorded replay took {:?}, the capture spans {span} µs",
        t.elapsed()
    );
}

/// Parsed RGTP packets of a capture with their direction.
fn packets(e: &Entry) -> Vec<(Peer, Peer, Vec<u8>)> {
    e.capture
        .datagrams()
        .map(|(_, d)| (d.src, d.dst, d.payload.clone()))
        .collect()
}

fn by_name<'a>(entries: &'a [Entry], name: &str) -> &'a Entry {
    entries
        .iter()
        .find(|e| e.name == name)
        .unwrap_or_else(|| panic!("pcaps/{name}.pcap missing"))
}

fn expect_counter(e: &Entry, who: &str, counter: &str) -> u64 {
    let v = if who == "puller" {
        &e.sidecar["expect"]["puller"]["counters"][counter]
    } else {
        &e.sidecar["expect"]["exposer"]["counters"][counter]
    };
    v.as_u64()
        .unwrap_or_else(|| panic!("{}: no {who} counter {counter}", e.name))
}

#[test]
fn each_capture_exercises_what_it_claims() {
    let entries = corpus_entries();
    let parse_all = |e: &Entry| -> Vec<(u8, Option<u32>)> {
        packets(e)
            .iter()
            .filter_map(|(_, _, p)| {
                let r = Repr::parse(p, 65_535).ok()?;
                let idx = match &r {
                    Repr::ChunkData(c) => Some(c.chunk_index),
                    Repr::ChunkDataWithProof(c) => Some(c.chunk_index),
                    _ => None,
                };
                Some((p[1], idx))
            })
            .collect()
    };
    // Every packet type appears somewhere in the corpus.
    let mut types = std::collections::BTreeSet::new();
    for e in &entries {
        types.extend(parse_all(e).iter().map(|(t, _)| *t));
    }
    assert!(
        types.is_superset(&[1, 2, 3, 4, 5, 6, 7, 8].into_iter().collect()),
        "packet types in the corpus: {types:?}"
    );

    // The Keepalive comes after 25 s in which the puller sent nothing, while chunks arrived.
    let quiet = by_name(&entries, "keepalive");
    let puller = quiet
        .capture
        .datagrams()
        .find(|(_, d)| d.payload.get(1) == Some(&8));
    let (keepalive, d) = puller.expect("keepalive: no Keepalive");
    let sent_before = quiet
        .capture
        .datagrams()
        .filter(|(r, x)| x.src == d.src && r.ts_us < keepalive.ts_us)
        .map(|(r, _)| r.ts_us)
        .max()
        .expect("the puller asked first");
    assert!(
        keepalive.ts_us - sent_before >= 25_000_000,
        "keepalive: sent {} µs after the puller's previous packet",
        keepalive.ts_us - sent_before
    );
    assert!(
        quiet
            .capture
            .datagrams()
            .any(|(r, x)| x.dst == d.src && r.ts_us > sent_before && r.ts_us < keepalive.ts_us),
        "keepalive: no chunk arrived during the silence"
    );

    let tiny = by_name(&entries, "tiny");
    assert_eq!(parse_all(tiny).iter().filter(|(t, _)| *t == 3).count(), 1);

    let proofs = by_name(&entries, "proofs");
    assert!(parse_all(proofs).iter().all(|(t, _)| *t != 3));
    assert!(parse_all(proofs).iter().any(|(t, _)| *t == 4));

    for fec in ["rs", "raptorq"] {
        let e = by_name(&entries, fec);
        assert!(
            parse_all(e).iter().any(|(t, _)| *t == 5),
            "{fec}: no parity"
        );
        assert!(
            expect_counter(e, "puller", "fec_recoveries") > 0,
            "{fec}: nothing rebuilt"
        );
    }

    // Recorded at the puller: a lost chunk shows as an index the puller asked for twice,
    // and as that chunk arriving after the re-request.
    let lossy = by_name(&entries, "lossy");
    let mut asked = HashMap::new();
    for (_, _, p) in packets(lossy) {
        if let Ok(Repr::Nak(n)) = Repr::parse(&p, 65_535) {
            for i in n.indices.iter() {
                *asked.entry(i).or_insert(0) += 1;
            }
        }
    }
    assert!(
        asked.values().any(|&n| n > 1),
        "lossy: no chunk was requested again"
    );
    assert!(
        parse_all(lossy).iter().filter(|(_, i)| i.is_some()).count() >= 100,
        "lossy: every chunk arrives in the end"
    );

    // The bottleneck transfer lasts long enough for the puller's Rate_Reports.
    let slow = by_name(&entries, "bottleneck");
    assert!(
        parse_all(slow).iter().filter(|(t, _)| *t == 7).count() >= 2,
        "bottleneck: no Rate_Reports"
    );

    let eth = by_name(&entries, "ethernet-vlan");
    for (_, d) in eth.capture.datagrams() {
        assert!(matches!(d.src, Peer::Ethernet(_)));
        let v = d.vlan.expect("every frame tagged");
        assert_eq!((v.id, v.pcp), (100, 5));
    }
    let v6 = by_name(&entries, "ipv6");
    assert!(v6
        .capture
        .datagrams()
        .all(|(_, d)| matches!(d.src, Peer::Ip(a) if a.is_ipv6())));

    assert!(
        expect_counter(
            by_name(&entries, "hostile-truncated"),
            "puller",
            "malformed"
        ) > 0
    );
    assert!(
        expect_counter(
            by_name(&entries, "hostile-forged-tag"),
            "puller",
            "auth_failures"
        ) > 0
    );
    assert!(
        expect_counter(
            by_name(&entries, "hostile-forged-proof"),
            "puller",
            "merkle_failures"
        ) > 0
    );
    assert!(
        expect_counter(
            by_name(&entries, "hostile-replayed-chunks"),
            "puller",
            "duplicates"
        ) > 0
    );
    let wv = by_name(&entries, "hostile-wrong-version");
    assert!(expect_counter(wv, "exposer", "version_mismatch") > 0);
    assert!(
        expect_counter(
            by_name(&entries, "hostile-wrong-exposure-id"),
            "exposer",
            "unknown_exposure"
        ) > 0
    );
    let big = by_name(&entries, "hostile-oversize-nak");
    assert!(expect_counter(big, "exposer", "over_limit") > 0);
    // Hostile or not, every transfer still completes with the right bytes.
    for e in &entries {
        assert_eq!(
            e.sidecar["expect"]["puller"]["verdict"], "complete",
            "{}",
            e.name
        );
    }
}
