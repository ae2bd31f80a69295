//! Evidence and the HTML report: `--evidence DIR` against our exposer writes, per case, the
//! expectation, the observation and a pcap of exactly that case's traffic, which
//! `rgtp inspect --ticket` decodes; `index.html` links every case's files. The exposer is
//! recorded on its own side too, so each case's pcap is checked against an independent
//! capture. Also `--case` and `--section` on the command line.

mod common;

use std::collections::{HashMap, HashSet};
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{mpsc, Arc};

use common::*;
use rgtp::driver::{self, Clock};
use rgtp::{ExposerBuilder, FecSpec, Ticket};
use rgtp_capture::Recorder;
use rgtp_conformance::cases::exposer::CASES;
use rgtp_link::udp::UdpLink;
use rgtp_link::Link;
use rgtp_proto::{ExposerConfig, Peer};
use serde_json::Value;

const BIN: &str = env!("CARGO_BIN_EXE_rgtp-conformance");

/// Our exposer on loopback, its own traffic recorded into `capture` until `stop()`.
struct Recorded {
    addr: SocketAddr,
    ticket: Ticket,
    stop: Arc<AtomicBool>,
    handle: Option<std::thread::JoinHandle<()>>,
}

impl Recorded {
    fn start(data: &[u8], capture: &Path) -> Recorded {
        let data = data.to_vec();
        let capture = capture.to_path_buf();
        let stop = Arc::new(AtomicBool::new(false));
        let stop2 = Arc::clone(&stop);
        let (tx, rx) = mpsc::channel();
        let handle = std::thread::spawn(move || {
            let link = UdpLink::bind("127.0.0.1:0".parse().unwrap()).expect("bind");
            let caps = link.capabilities();
            let config = ExposerConfig::for_link(&caps);
            let prepared = ExposerBuilder::new()
                .with_fec(FecSpec::ReedSolomon { n: 6, k: 4 })
                .with_config(config)
                .expose(&data)
                .expect("expose");
            let addr = link.local_addr();
            let mut link = Recorder::create(link, &capture).expect("recorder");
            tx.send((addr, prepared.ticket(addr))).unwrap();
            let mut exposer = prepared.exposer();
            driver::serve(&mut exposer, &mut link, &Clock::new(), &stop2, |_| {}).expect("serve");
            link.finish().expect("finish the exposer's capture");
        });
        let (addr, ticket) = rx.recv().expect("exposer started");
        Recorded {
            addr,
            ticket,
            stop,
            handle: Some(handle),
        }
    }

    fn stop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
        if let Some(h) = self.handle.take() {
            h.join().expect("exposer thread");
        }
    }
}

impl Drop for Recorded {
    fn drop(&mut self) {
        self.stop();
    }
}

fn tmp(name: &str) -> PathBuf {
    let d = std::env::temp_dir().join(format!("rgtp-evidence-{}-{name}", std::process::id()));
    let _ = std::fs::remove_dir_all(&d);
    std::fs::create_dir_all(&d).unwrap();
    d
}

/// The `href` targets of a page, percent-decoded.
fn hrefs(page: &str) -> Vec<String> {
    page.split("href=\"")
        .skip(1)
        .map(|s| {
            let raw = &s[..s.find('"').expect("closing quote")];
            let raw = raw.replace("&amp;", "&");
            let mut out = Vec::new();
            let b = raw.as_bytes();
            let mut i = 0;
            while i < b.len() {
                if b[i] == b'%' && i + 2 < b.len() {
                    out.push(u8::from_str_radix(&raw[i + 1..i + 3], 16).unwrap());
                    i += 3;
                } else {
                    out.push(b[i]);
                    i += 1;
                }
            }
            String::from_utf8(out).unwrap()
        })
        .collect()
}

fn read_json(p: &Path) -> Value {
    serde_json::from_str(
        &std::fs::read_to_string(p).unwrap_or_else(|e| panic!("{}: {e}", p.display())),
    )
    .unwrap_or_else(|e| panic!("{}: {e}", p.display()))
}

type Key = (Peer, Peer, Vec<u8>);

#[test]
fn exposer_evidence_has_one_decodable_pcap_per_case() {
    let dir = tmp("exposer");
    let ev = dir.join("evidence");
    let page = dir.join("elsewhere").join("report.html");
    std::fs::create_dir_all(page.parent().unwrap()).unwrap();
    let server_pcap = dir.join("exposer-side.pcap");
    let data = bytes(30_011, 7);
    let mut ours = Recorded::start(&data, &server_pcap);
    let st = Command::new(BIN)
        .arg("--evidence")
        .arg(&ev)
        .arg("--html")
        .arg(&page)
        .args([
            "exposer",
            "--quiet-ms",
            "150",
            "--ticket",
            &ours.ticket.to_string(),
        ])
        .output()
        .unwrap();
    let table = String::from_utf8_lossy(&st.stdout).to_string();
    ours.stop();
    assert_eq!(
        st.status.code(),
        Some(0),
        "{table}\n{}",
        String::from_utf8_lossy(&st.stderr)
    );
    let must = CASES
        .iter()
        .filter(|c| c.level == rgtp_conformance::Level::Must)
        .count();
    let should = CASES.len() - must;
    let line = format!(
        "{} cases: MUST {must}/{must} passed, SHOULD {should}/{should} passed, 0 n/a",
        CASES.len()
    );
    assert!(table.contains(&line), "{table}");

    // The page in the evidence directory and the one elsewhere: one row per case, with
    // links that resolve from where each page is.
    for (p, base) in [
        (ev.join("index.html"), ev.clone()),
        (page.clone(), page.parent().unwrap().to_path_buf()),
    ] {
        let html = std::fs::read_to_string(&p).unwrap();
        assert!(html.contains(&line), "{}", p.display());
        assert_eq!(
            html.matches("<tr class=").count(),
            CASES.len(),
            "{}",
            p.display()
        );
        for c in CASES {
            assert!(
                html.contains(&format!("id=\"{}\"", c.id)),
                "{} lacks {}",
                p.display(),
                c.id
            );
        }
        let links = hrefs(&html);
        assert!(links.len() >= 2 * CASES.len(), "{links:?}");
        for l in &links {
            assert!(
                base.join(l).is_file(),
                "{}: link {l} does not resolve",
                p.display()
            );
        }
        for c in CASES {
            assert!(
                links
                    .iter()
                    .any(|l| l.ends_with(&format!("{}/case.txt", c.id))),
                "{}: no log link for {}",
                p.display(),
                c.id
            );
        }
    }
    // The setup's handshake, outside every case, is kept apart.
    let setup = rgtp_capture::read(&std::fs::read(ev.join("setup/traffic.pcap")).unwrap()).unwrap();
    let setup = rgtp_cli::inspect::inspect(&setup, Some(&ours.ticket)).to_json();
    assert!(
        setup["exposures"][0]["packets"]["manifest"]["from_exposer"]["packets"].as_u64() >= Some(1),
        "{setup}"
    );
    let results = read_json(&ev.join("results.json"));
    assert_eq!(results["must"]["passed"], must);
    assert_eq!(results["should"]["passed"], should);
    assert_eq!(results["summary"], line.as_str());

    // The exposer's own capture: every datagram it sent or received.
    let server = rgtp_capture::read(&std::fs::read(&server_pcap).unwrap()).unwrap();
    let exposer = Peer::Ip(ours.addr);
    let mut served: HashMap<Key, usize> = HashMap::new();
    let mut arrived: Vec<(u64, Peer, Vec<u8>)> = Vec::new();
    for (r, d) in server.datagrams() {
        if d.src == exposer {
            *served.entry((d.src, d.dst, d.payload.clone())).or_default() += 1;
        } else if d.dst == exposer {
            arrived.push((r.ts_us, d.src, d.payload.clone()));
        }
    }

    let mut windows = Vec::new();
    for c in CASES {
        let cdir = ev.join(c.id);
        let j = read_json(&cdir.join("case.json"));
        assert_eq!(j["id"], c.id);
        assert_eq!(j["expectation"]["section"], c.section);
        assert_eq!(j["expectation"]["level"], c.level.name());
        assert_eq!(j["expectation"]["requirement"], c.title);
        assert_eq!(j["verdict"], "PASS", "{j}");
        let log = std::fs::read_to_string(cdir.join("case.txt")).unwrap();
        assert!(log.contains(c.section) && log.contains(c.title), "{log}");
        let traffic = &j["observed"]["traffic"];
        let (start, end) = (
            traffic["started_us"].as_u64().unwrap(),
            traffic["ended_us"].as_u64().unwrap(),
        );
        assert!(start <= end, "{j}");
        windows.push((start, end, c.id));
        let pcap = cdir.join("traffic.pcap");
        if traffic["packets"] == 0 {
            assert!(!pcap.exists(), "{}: empty traffic yet a pcap", c.id);
            continue;
        }
        let cap = rgtp_capture::read(&std::fs::read(&pcap).unwrap())
            .unwrap_or_else(|e| panic!("{}: {e}", pcap.display()));
        let dgrams: Vec<_> = cap.datagrams().collect();
        assert_eq!(
            Some(dgrams.len() as u64),
            traffic["packets"].as_u64(),
            "{}",
            c.id
        );
        let harness: HashSet<Peer> = dgrams
            .iter()
            .map(|(_, d)| if d.src == exposer { d.dst } else { d.src })
            .collect();
        for (r, d) in &dgrams {
            assert!(d.src == exposer || d.dst == exposer, "{}: {d:?}", c.id);
            assert!(
                (start..=end).contains(&r.ts_us),
                "{}: a datagram at {} outside the case ({start}..{end})",
                c.id,
                r.ts_us
            );
            if d.src == exposer {
                // Each answer in a case's pcap is one the exposer sent, and claimed once.
                let n = served
                    .get_mut(&(d.src, d.dst, d.payload.clone()))
                    .filter(|n| **n > 0)
                    .unwrap_or_else(|| {
                        panic!(
                            "{}: an answer the exposer never sent (or in two cases)",
                            c.id
                        )
                    });
                *n -= 1;
            }
        }
        // Everything the exposer received from this case's addresses while it ran is
        // in the case's pcap (as sent: the exposer may have cut an oversized datagram).
        let sent: Vec<&[u8]> = dgrams
            .iter()
            .filter(|(_, d)| d.dst == exposer)
            .map(|(_, d)| &d.payload[..])
            .collect();
        let mut unclaimed = sent.clone();
        for (ts, from, p) in &arrived {
            if harness.contains(from) && (start..=end).contains(ts) {
                let i = unclaimed
                    .iter()
                    .position(|s| s == p)
                    .or_else(|| unclaimed.iter().position(|s| s.starts_with(p)))
                    .unwrap_or_else(|| {
                        panic!("{}: the exposer got a datagram missing from the pcap", c.id)
                    });
                unclaimed.swap_remove(i);
            }
        }

        // `rgtp inspect` (the library behind the command) decodes it with the ticket.
        let report = rgtp_cli::inspect::inspect(&cap, Some(&ours.ticket));
        assert_eq!(
            report.rgtp_datagrams(),
            dgrams.len() as u64,
            "{}: not every datagram is RGTP",
            c.id
        );
        let rj = report.to_json();
        if c.id == "EXP-001" {
            let x = report
                .exposure(&ours.ticket.exposure_id)
                .expect("the exposure");
            let pk = &rj["exposures"][0]["packets"];
            assert_eq!(pk["pull_request"]["to_exposer"]["packets"], 1, "{rj}");
            assert_eq!(pk["manifest"]["from_exposer"]["packets"], 1, "{rj}");
            assert_eq!(x.pullers.len(), 1, "{rj}");
            assert_eq!(report.exposures.len(), 1, "{rj}");
            for t in [
                "nak",
                "chunk_data",
                "chunk_data_with_proof",
                "fec_parity",
                "rate_report",
                "keepalive",
            ] {
                assert_eq!(pk[t]["to_exposer"]["packets"], 0, "{t}: {rj}");
                assert_eq!(pk[t]["from_exposer"]["packets"], 0, "{t}: {rj}");
            }
        }
        if c.id == "EXP-022" {
            // The full pull: chunks open under the ticket's key in the replay.
            let pull = &rj["pull"];
            assert!(
                pull["counters"]["chunks_received"].as_u64().unwrap() > 0,
                "{rj}"
            );
            assert_eq!(pull["counters"]["auth_failures"], 0, "{rj}");
            assert_eq!(pull["verdict"], "complete", "{rj}");
            assert_eq!(pull["recovered_bytes"], data.len(), "{rj}");
        }
    }
    windows.sort();
    for w in windows.windows(2) {
        assert!(w[0].1 <= w[1].0, "cases {} and {} overlap", w[0].2, w[1].2);
    }
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn case_and_section_select_a_subset() {
    let ours = serve_ours(
        &bytes(5_000, 9),
        ExposerBuilder::new(),
        ExposerConfig::default(),
    );
    let dir = tmp("subset");
    let json = dir.join("r.json");
    let run = |args: &[&str]| {
        Command::new(BIN)
            .args(args)
            .arg("--json")
            .arg(&json)
            .args([
                "exposer",
                "--quiet-ms",
                "150",
                "--ticket",
                &ours.ticket.to_string(),
            ])
            .output()
            .unwrap()
    };
    let ids = |st: &std::process::Output| -> Vec<String> {
        assert_eq!(
            st.status.code(),
            Some(0),
            "{}",
            String::from_utf8_lossy(&st.stdout)
        );
        read_json(&json)["cases"]
            .as_array()
            .unwrap()
            .iter()
            .map(|c| c["id"].as_str().unwrap().to_string())
            .collect()
    };
    // Exact ids, repeatable and comma-separated; not prefixes.
    let st = run(&["--case", "EXP-001,EXP-040", "--case", "EXP-01"]);
    assert_eq!(st.status.code(), Some(2));
    let st = run(&["--case", "EXP-001,EXP-040", "--case", "EXP-011"]);
    assert_eq!(ids(&st), ["EXP-001", "EXP-011", "EXP-040"]);
    // The Wireshark dissector reads a case's pcap (when tshark is installed).
    let ev = dir.join("ev");
    let st = run(&["--case", "EXP-001", "--evidence", ev.to_str().unwrap()]);
    assert_eq!(ids(&st), ["EXP-001"]);
    let lua = Path::new(env!("CARGO_MANIFEST_DIR")).join("../interop/wireshark/rgtp.lua");
    match Command::new("tshark")
        .arg("-X")
        .arg(format!("lua_script:{}", lua.display()))
        .arg("-r")
        .arg(ev.join("EXP-001/traffic.pcap"))
        .output()
    {
        Ok(t) if t.status.success() => {
            let text = String::from_utf8_lossy(&t.stdout);
            let lines: Vec<&str> = text.lines().collect();
            assert_eq!(lines.len(), 2, "{text}");
            assert!(
                lines[0].contains("RGTP") && lines[0].contains("Pull_Request"),
                "{text}"
            );
            assert!(
                lines[1].contains("RGTP") && lines[1].contains("Manifest"),
                "{text}"
            );
        }
        Ok(t) => panic!("tshark failed: {}", String::from_utf8_lossy(&t.stderr)),
        Err(e) => eprintln!("tshark not run ({e}): the dissector check is left out"),
    }
    // A target that cannot be set up: every case fails with `setup: …` and its evidence
    // points at the setup's traffic, the Pull_Requests nobody answered.
    let dead = std::net::UdpSocket::bind("127.0.0.1:0").unwrap();
    let mut t = ours.ticket.clone();
    t.port = dead.local_addr().unwrap().port();
    let ev = dir.join("dead");
    let st = Command::new(BIN)
        .arg("--evidence")
        .arg(&ev)
        .args([
            "--case",
            "EXP-001,EXP-002",
            "exposer",
            "--ticket",
            &t.to_string(),
        ])
        .output()
        .unwrap();
    assert_eq!(st.status.code(), Some(1));
    let cap = rgtp_capture::read(&std::fs::read(ev.join("setup/traffic.pcap")).unwrap()).unwrap();
    let rj = rgtp_cli::inspect::inspect(&cap, None).to_json();
    let pk = &rj["exposures"][0]["packets"];
    assert!(
        pk["pull_request"]["to_exposer"]["packets"].as_u64() >= Some(1),
        "{rj}"
    );
    assert_eq!(
        rj["valid_packets"], pk["pull_request"]["to_exposer"]["packets"],
        "{rj}"
    );
    let html = std::fs::read_to_string(ev.join("index.html")).unwrap();
    for id in ["EXP-001", "EXP-002"] {
        let log = std::fs::read_to_string(ev.join(id).join("case.txt")).unwrap();
        assert!(
            log.contains("setup:") && log.contains("../setup/traffic.pcap"),
            "{log}"
        );
        assert!(!ev.join(id).join("traffic.pcap").exists());
    }
    assert_eq!(
        html.matches("href=\"setup/traffic.pcap\"").count(),
        3,
        "{html}"
    );
    // Sections compose with --case and --only/--skip.
    let st = run(&["--case", "EXP-001,EXP-040", "--section", "5"]);
    assert_eq!(ids(&st), ["EXP-040"]);
    let st = run(&["--section", "§5.1", "--skip", "EXP-043"]);
    let want: Vec<&str> = CASES
        .iter()
        .filter(|c| c.section == "§5.1" && c.id != "EXP-043")
        .map(|c| c.id)
        .collect();
    assert!(!want.is_empty());
    assert_eq!(ids(&st), want);
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn puller_and_capture_evidence() {
    let dir = tmp("puller");
    // Puller: the harness exposer's traffic with the puller, as the harness saw it.
    let rgtp = built("rgtp", &["build", "-p", "rgtp-cli", "--bin", "rgtp"]);
    let cmd = format!(
        "'{}' pull {{ticket}} -o {{out}} -q --connect-timeout 2 --idle-timeout 3",
        rgtp.display()
    );
    let ev = dir.join("puller");
    let st = Command::new(BIN)
        .arg("--evidence")
        .arg(&ev)
        .args([
            "--case", "PUL-001", "puller", "--cmd", &cmd, "--size", "50000",
        ])
        .output()
        .unwrap();
    assert_eq!(
        st.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&st.stdout)
    );
    let pcap = ev.join("PUL-001").join("traffic.pcap");
    let cap = rgtp_capture::read(&std::fs::read(&pcap).unwrap()).unwrap();
    let report = rgtp_cli::inspect::inspect(&cap, None);
    let rj = report.to_json();
    assert_eq!(report.exposures.len(), 1, "{rj}");
    let pk = &rj["exposures"][0]["packets"];
    assert!(
        pk["pull_request"]["to_exposer"]["packets"]
            .as_u64()
            .unwrap()
            >= 1,
        "{rj}"
    );
    assert!(
        pk["manifest"]["from_exposer"]["packets"].as_u64().unwrap() >= 1,
        "{rj}"
    );
    let chunks = rj["exposures"][0]["chunks"]["distinct"].as_u64().unwrap();
    assert_eq!(
        Some(chunks),
        rj["exposures"][0]["manifest"]["chunk_count"].as_u64(),
        "{rj}"
    );
    // The harness's ticket for the case is kept: the chunks open and the pull replays.
    let j = read_json(&ev.join("PUL-001").join("case.json"));
    let ticket: Ticket = j["tickets"][0].as_str().unwrap().parse().unwrap();
    let log = std::fs::read_to_string(ev.join("PUL-001").join("case.txt")).unwrap();
    assert!(log.contains(&format!("--ticket '{ticket}'")), "{log}");
    let rj = rgtp_cli::inspect::inspect(&cap, Some(&ticket)).to_json();
    assert_eq!(rj["pull"]["verdict"], "complete", "{rj}");
    assert_eq!(rj["pull"]["recovered_bytes"], 50_000, "{rj}");
    let html = std::fs::read_to_string(ev.join("index.html")).unwrap();
    assert_eq!(html.matches("<tr class=").count(), 1);
    assert!(html.contains("href=\"PUL-001/traffic.pcap\""), "{html}");

    // Capture: every case points at the file judged; no pcap of its own.
    let pcaps = Path::new(env!("CARGO_MANIFEST_DIR")).join("../pcaps");
    let file = pcaps.join("multi-chunk.pcap").canonicalize().unwrap();
    let side = read_json(&pcaps.join("multi-chunk.json"));
    let ev = dir.join("pcap");
    let st = Command::new(BIN)
        .arg("--evidence")
        .arg(&ev)
        .args(["--section", "3"])
        .arg("pcap")
        .arg(&file)
        .args(["--ticket", side["ticket"].as_str().unwrap()])
        .output()
        .unwrap();
    assert_eq!(
        st.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&st.stdout)
    );
    let results = read_json(&ev.join("results.json"));
    let cases = results["cases"].as_array().unwrap();
    assert!(!cases.is_empty());
    let html = std::fs::read_to_string(ev.join("index.html")).unwrap();
    assert_eq!(html.matches("<tr class=").count(), cases.len());
    for c in cases {
        assert!(c["section"].as_str().unwrap().starts_with("§3"), "{c}");
        let cdir = ev.join(c["id"].as_str().unwrap());
        let j = read_json(&cdir.join("case.json"));
        assert_eq!(j["input"], file.display().to_string().as_str(), "{j}");
        assert!(!cdir.join("traffic.pcap").exists());
        let log = std::fs::read_to_string(cdir.join("case.txt")).unwrap();
        assert!(log.contains(&file.display().to_string()), "{log}");
    }
    let _ = std::fs::remove_dir_all(&dir);
}
