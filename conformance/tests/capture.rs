//! The capture target judges recorded transfers: every capture of `pcaps/` (honest
//! ones pass every applicable case, hostile ones fail exactly the cases their attack
//! breaks), captures built here with `CaptureWriter` around our sans-IO exposer in
//! which the exposer, or the puller, misbehaves in one known way, and a pull with proof
//! runs between our exposer and our puller over loopback UDP, recorded by the relay.

mod common;

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Duration;

use common::{bytes, serve_ours};
use rgtp::{ExposerBuilder, FecSpec, Prepared, Ticket};
use rgtp_capture::CaptureWriter;
use rgtp_conformance::cases::capture::{CaptureCtx, CaptureOptions, CASES};
use rgtp_conformance::relay::Relay;
use rgtp_conformance::{failing_ids, Outcome, Selection, Verdict};
use rgtp_conformance::{net, reference};
use rgtp_link::impair::ImpairmentConfig;
use rgtp_proto::{Exposer, ExposerConfig, Instant, Peer};
use rgtp_wire::{ManifestFlags, NakFlags, PullFlags, Repr, Token, NAK_PARITY_BIT, PROOF_RUN};

fn ids(v: &[&str]) -> BTreeSet<String> {
    v.iter().map(|s| s.to_string()).collect()
}

fn pcaps() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../pcaps")
}

fn sidecar(name: &str) -> serde_json::Value {
    let text = std::fs::read_to_string(pcaps().join(format!("{name}.json"))).unwrap();
    serde_json::from_str(&text).unwrap()
}

fn judge_file(name: &str, ticket: Option<Ticket>) -> Vec<Outcome> {
    let bytes = std::fs::read(pcaps().join(format!("{name}.pcap"))).unwrap();
    let opts = CaptureOptions {
        ticket,
        ..Default::default()
    };
    let ctx = CaptureCtx::new(&bytes, opts).unwrap_or_else(|e| panic!("{name}: {e}"));
    println!("== {name}: {}", ctx.summary());
    let out = rgtp_conformance::run_capture(&ctx, &Selection::default());
    print!("{}", rgtp_conformance::report::table(&out));
    out
}

fn verdict_of<'a>(out: &'a [Outcome], id: &str) -> &'a Outcome {
    out.iter()
        .find(|o| o.info.id == id)
        .unwrap_or_else(|| panic!("no {id}"))
}

/// What each capture of the corpus must give.
struct Expect {
    name: &'static str,
    /// Failing cases when judged with the sidecar's ticket.
    failing: &'static [&'static str],
    /// Failing cases without a ticket (AEAD, proofs and replay are then n/a).
    failing_without_ticket: &'static [&'static str],
    /// Cases that must PASS (judged, not n/a) with the ticket.
    pass: &'static [&'static str],
}

/// Decided from the sidecars: what the middlebox did, from whose address, and what the
/// honest peers answered.
const CORPUS: &[Expect] = &[
    Expect {
        name: "tiny",
        failing: &[],
        failing_without_ticket: &[],
        pass: &[
            "CAP-010", "CAP-014", "CAP-020", "CAP-023", "CAP-030", "CAP-040", "CAP-042",
        ],
    },
    // A bottleneck with queue drops, recorded at the puller: Rate_Reports to judge.
    Expect {
        name: "bottleneck",
        failing: &[],
        failing_without_ticket: &[],
        pass: &["CAP-020", "CAP-030", "CAP-040", "CAP-042", "CAP-108"],
    },
    // Chunks trickling down a slow path, recorded at the puller: its Keepalive after
    // 25 s of silence to judge.
    Expect {
        name: "keepalive",
        failing: &[],
        failing_without_ticket: &[],
        pass: &["CAP-020", "CAP-030", "CAP-040", "CAP-042", "CAP-108"],
    },
    Expect {
        name: "multi-chunk",
        failing: &[],
        failing_without_ticket: &[],
        pass: &[
            "CAP-020", "CAP-025", "CAP-030", "CAP-040", "CAP-042", "CAP-107",
        ],
    },
    Expect {
        name: "proofs",
        failing: &[],
        failing_without_ticket: &[],
        pass: &["CAP-023", "CAP-025", "CAP-041", "CAP-042"],
    },
    // FEC on an 8% lossy path, recorded at the puller: parity requested and checked.
    Expect {
        name: "rs",
        failing: &[],
        failing_without_ticket: &[],
        pass: &["CAP-003", "CAP-021", "CAP-024", "CAP-043", "CAP-042"],
    },
    Expect {
        name: "raptorq",
        failing: &[],
        failing_without_ticket: &[],
        pass: &["CAP-003", "CAP-021", "CAP-024", "CAP-043", "CAP-042"],
    },
    // Loss both ways and reordering, recorded at the puller.
    Expect {
        name: "lossy",
        failing: &[],
        failing_without_ticket: &[],
        pass: &["CAP-020", "CAP-030", "CAP-040", "CAP-042", "CAP-106"],
    },
    Expect {
        name: "ethernet-vlan",
        failing: &[],
        failing_without_ticket: &[],
        pass: &["CAP-002", "CAP-005", "CAP-020", "CAP-042"],
    },
    Expect {
        name: "ipv6",
        failing: &[],
        failing_without_ticket: &[],
        pass: &["CAP-005", "CAP-020", "CAP-042"],
    },
    // Chunk copies cut short, sent with the exposer's address: the exposer side fails
    // parsing and Length; the genuine copies still make a complete transfer.
    Expect {
        name: "hostile-truncated",
        failing: &["CAP-001", "CAP-002"],
        failing_without_ticket: &["CAP-001", "CAP-002"],
        pass: &["CAP-020", "CAP-040", "CAP-042", "CAP-101"],
    },
    // Tags altered in flight: AEAD fails; re-requested copies complete the transfer.
    Expect {
        name: "hostile-forged-tag",
        failing: &["CAP-040"],
        failing_without_ticket: &[],
        pass: &["CAP-020", "CAP-023", "CAP-042"],
    },
    // Proofs altered in flight: the chunks still open, the proofs do not fold.
    Expect {
        name: "hostile-forged-proof",
        failing: &["CAP-041"],
        failing_without_ticket: &[],
        pass: &["CAP-020", "CAP-023", "CAP-025", "CAP-040", "CAP-042"],
    },
    // Genuine chunks sent again: no NAK entry is left for the copies.
    Expect {
        name: "hostile-replayed-chunks",
        failing: &["CAP-020"],
        failing_without_ticket: &["CAP-020"],
        pass: &["CAP-023", "CAP-040", "CAP-042"],
    },
    // A Pull_Request for versions [2, 2] and a datagram with header version 2, from the
    // puller's address: puller-side failures; the exposer stayed silent to both.
    Expect {
        name: "hostile-wrong-version",
        failing: &["CAP-101", "CAP-104"],
        failing_without_ticket: &["CAP-101", "CAP-104"],
        pass: &["CAP-010", "CAP-011", "CAP-020", "CAP-030", "CAP-042"],
    },
    // Copies of the puller's requests naming Exposure_ID ee…ee: flagged on the puller
    // side (SHOULD); the exposer answered none of them.
    Expect {
        name: "hostile-wrong-exposure-id",
        failing: &["CAP-105"],
        failing_without_ticket: &["CAP-105"],
        pass: &["CAP-010", "CAP-020", "CAP-030", "CAP-107", "CAP-042"],
    },
    // A tokenless 1000-entry NAK: flagged on the puller side (SHOULD); the exposer served
    // 9 chunks, inside both the 256-entry limit and its 3× budget.
    Expect {
        name: "hostile-oversize-nak",
        failing: &["CAP-106"],
        failing_without_ticket: &["CAP-106"],
        pass: &["CAP-020", "CAP-022", "CAP-030", "CAP-042"],
    },
];

#[test]
fn every_corpus_capture_is_judged_as_expected() {
    let listed: BTreeSet<String> = CORPUS.iter().map(|e| e.name.to_string()).collect();
    let present: BTreeSet<String> = std::fs::read_dir(pcaps())
        .unwrap()
        .filter_map(|e| {
            let p = e.unwrap().path();
            let name = p.file_stem()?.to_string_lossy().into_owned();
            // gtUDP and TEJ captures are not RGTP transfers to judge.
            (p.extension()? == "pcap" && !name.starts_with("gtudp-") && !name.starts_with("tej-"))
                .then_some(name)
        })
        .collect();
    assert_eq!(
        listed, present,
        "every capture of pcaps/ has a row in CORPUS"
    );
    let mut problems = Vec::new();
    for e in CORPUS {
        let side = sidecar(e.name);
        let ticket: Ticket = side["ticket"].as_str().unwrap().parse().unwrap();
        let out = judge_file(e.name, Some(ticket));
        assert_eq!(out.len(), CASES.len());
        let failing = failing_ids(&out);
        if failing != ids(e.failing) {
            problems.push(format!(
                "{}: failing {failing:?}, expected {:?}",
                e.name, e.failing
            ));
        }
        for id in e.pass {
            let o = verdict_of(&out, id);
            if o.verdict != Verdict::Pass {
                problems.push(format!("{}: {id} is {:?}: {}", e.name, o.verdict, o.detail));
            }
        }
        // A replay that completes is what the sidecar says the puller did.
        let complete = side["expect"]["puller"]["verdict"] == "complete";
        let cap042 = verdict_of(&out, "CAP-042");
        if complete != (cap042.verdict == Verdict::Pass) {
            problems.push(format!(
                "{}: CAP-042 {:?} vs sidecar",
                e.name, cap042.verdict
            ));
        }
        // n/a is never silent: every skip says why.
        for o in out.iter().filter(|o| o.verdict == Verdict::Skip) {
            if !o.detail.starts_with("n/a: ") {
                problems.push(format!(
                    "{}: {} skipped without a reason",
                    e.name, o.info.id
                ));
            }
        }
        let out = judge_file(e.name, None);
        let failing = failing_ids(&out);
        if failing != ids(e.failing_without_ticket) {
            problems.push(format!(
                "{} without a ticket: failing {failing:?}, expected {:?}",
                e.name, e.failing_without_ticket
            ));
        }
        for id in ["CAP-040", "CAP-041", "CAP-042", "CAP-043"] {
            let o = verdict_of(&out, id);
            if o.verdict != Verdict::Skip || !o.detail.contains("--ticket") {
                problems.push(format!("{} without a ticket: {id} {:?}", e.name, o.verdict));
            }
        }
    }
    assert!(problems.is_empty(), "\n{}", problems.join("\n"));
}

#[test]
fn hostile_requests_are_charged_to_the_puller_side() {
    // The middlebox's requests carry the puller's address: only CAP-1xx cases fail, and
    // the details name what the exposer did with them.
    for name in [
        "hostile-wrong-version",
        "hostile-wrong-exposure-id",
        "hostile-oversize-nak",
    ] {
        let out = judge_file(name, None);
        for id in failing_ids(&out) {
            assert!(
                id.starts_with("CAP-1"),
                "{name}: {id} fails on the exposer side"
            );
        }
    }
    let out = judge_file("hostile-oversize-nak", None);
    let d = &verdict_of(&out, "CAP-022").detail;
    assert!(d.contains("1000 entries → 9 answers"), "{d}");
    let d = &verdict_of(&out, "CAP-030").detail;
    assert!(d.contains("NAK of 4024 B → 11160 B"), "{d}");
    let out = judge_file("hostile-wrong-version", None);
    let d = &verdict_of(&out, "CAP-104").detail;
    assert!(d.contains("offers versions [2, 2]"), "{d}");
    // Truncated copies are the exposer's: its address sent them.
    let out = judge_file("hostile-truncated", None);
    assert!(verdict_of(&out, "CAP-001")
        .detail
        .contains("length field 1240"));
    assert_eq!(verdict_of(&out, "CAP-101").verdict, Verdict::Pass);
}

// ------------------------------------------------------------------ synthetic captures

const EXPOSER: &str = "192.0.2.1:9000";
const PULLER: &str = "192.0.2.2:40000";
const OTHER: &str = "192.0.2.3:40001";

/// Our sans-IO exposer answering requests in virtual time, every datagram recorded
/// unless a step says otherwise.
struct Recording {
    exposer: Exposer,
    ticket: Ticket,
    w: CaptureWriter<Vec<u8>>,
    ts: u64,
    ex: Peer,
    buf: Vec<u8>,
}

fn peer(s: &str) -> Peer {
    Peer::Ip(s.parse().unwrap())
}

impl Recording {
    fn new(prepared: Prepared) -> Recording {
        let ex = peer(EXPOSER);
        Recording {
            exposer: prepared.exposer(),
            ticket: prepared.ticket_for(ex),
            w: CaptureWriter::new(Vec::new()).unwrap(),
            ts: 1_767_225_600_000_000,
            ex,
            buf: Vec::new(),
        }
    }

    fn plain(size: usize) -> Recording {
        Recording::new(ExposerBuilder::new().expose(&bytes(size, 7)).unwrap())
    }

    /// Serving every request in full, as upstream exposers do (no 3× bound).
    fn unbounded(size: usize) -> Recording {
        let config = ExposerConfig {
            dangerous_serve_unvalidated: true,
            ..Default::default()
        };
        Recording::new(
            ExposerBuilder::new()
                .with_config(config)
                .expose(&bytes(size, 7))
                .unwrap(),
        )
    }

    fn tick(&mut self) -> u64 {
        self.ts += 100;
        self.ts
    }

    fn id(&self) -> [u8; 16] {
        self.ticket.exposure_id
    }

    /// A datagram from `from` that the exposer handles; recorded when `record`. Its
    /// answers are recorded and returned.
    fn ask_from(&mut self, from: &str, d: &[u8], record: bool) -> Vec<Vec<u8>> {
        let ts = self.tick();
        let from = peer(from);
        if record {
            self.w.write_datagram(ts, from, self.ex, None, d).unwrap();
        }
        let now = Instant::from_micros(ts);
        self.exposer.handle_datagram(now, from, d);
        let mut out = Vec::new();
        while let Some(t) = self.exposer.poll_transmit(now, &mut self.buf) {
            out.extend(t.datagrams(&self.buf).map(<[u8]>::to_vec));
        }
        for o in &out {
            let ts = self.tick();
            self.w.write_datagram(ts, self.ex, from, None, o).unwrap();
        }
        out
    }

    fn ask(&mut self, d: &[u8], record: bool) -> Vec<Vec<u8>> {
        self.ask_from(PULLER, d, record)
    }

    /// A datagram from the puller that the exposer never sees (recorded only).
    fn puller_sends(&mut self, d: &[u8]) {
        let ts = self.tick();
        self.w
            .write_datagram(ts, peer(PULLER), self.ex, None, d)
            .unwrap();
    }

    /// Pull_Request with `flags` from `from`, recorded when `record`: the Manifest's
    /// flags and token.
    fn handshake_with(
        &mut self,
        from: &str,
        flags: PullFlags,
        record: bool,
    ) -> (ManifestFlags, Option<Token>) {
        let pr = net::pull_request(self.id(), flags, 1, 1);
        let a = self.ask_from(from, &pr, record);
        match Repr::parse(&a[0], 65_535) {
            Ok(Repr::Manifest(m)) => (m.flags, m.token),
            other => panic!("no Manifest: {other:?}"),
        }
    }

    /// Pull_Request with ADDR_VALIDATION from `from`: the token of the Manifest.
    fn handshake_from(&mut self, from: &str) -> Option<Token> {
        self.handshake_with(from, PullFlags::ADDR_VALIDATION, true)
            .1
    }

    fn handshake(&mut self) -> Option<Token> {
        self.handshake_from(PULLER)
    }

    fn judge(self, with_ticket: bool) -> (BTreeSet<String>, Vec<Outcome>) {
        let bytes = self.w.into_inner().unwrap();
        let opts = CaptureOptions {
            ticket: with_ticket.then(|| self.ticket.clone()),
            ..Default::default()
        };
        let ctx = CaptureCtx::new(&bytes, opts).unwrap();
        println!("{}", ctx.summary());
        let out = rgtp_conformance::run_capture(&ctx, &Selection::default());
        print!("{}", rgtp_conformance::report::table(&out));
        (failing_ids(&out), out)
    }
}

fn all(n: u32) -> Vec<u32> {
    (0..n).collect()
}

#[test]
fn synthetic_honest_transfer_passes() {
    let mut r = Recording::plain(24_000); // 20 chunks
    let token = r.handshake();
    let nak = net::nak(r.id(), &all(20), NakFlags::empty(), token);
    assert_eq!(r.ask(&nak, true).len(), 20);
    let (failing, out) = r.judge(true);
    assert!(failing.is_empty(), "{failing:?}");
    assert_eq!(verdict_of(&out, "CAP-042").verdict, Verdict::Pass);
}

#[test]
fn exposer_sending_unrequested_chunks_and_parity() {
    let mut r = Recording::new(
        ExposerBuilder::new()
            .with_fec(FecSpec::ReedSolomon { n: 6, k: 4 })
            .expose(&bytes(24_000, 7))
            .unwrap(),
    );
    let token = r.handshake();
    let id = r.id();
    r.ask(
        &net::nak(id, &(0..10).collect::<Vec<_>>(), NakFlags::empty(), token),
        true,
    );
    // The exposer "sends" chunks 10..19 and two parity shards nobody asked for: the
    // NAKs that drew them are not in the capture.
    r.ask(
        &net::nak(id, &(10..20).collect::<Vec<_>>(), NakFlags::empty(), token),
        false,
    );
    let parity = [NAK_PARITY_BIT, NAK_PARITY_BIT | 1];
    r.ask(&net::nak(id, &parity, NakFlags::empty(), token), false);
    let (failing, out) = r.judge(true);
    assert_eq!(failing, ids(&["CAP-020", "CAP-021"]));
    let d = &verdict_of(&out, "CAP-020").detail;
    assert!(
        d.starts_with("10 of 20 chunk packets fail") && d.contains("chunk 10"),
        "{d}"
    );
    assert!(verdict_of(&out, "CAP-021").detail.contains("parity (0, 0)"));
    // The content is genuine: it opens and rebuilds the exposure; the parity is right.
    for id in ["CAP-040", "CAP-042", "CAP-043"] {
        assert_eq!(verdict_of(&out, id).verdict, Verdict::Pass, "{id}");
    }
}

#[test]
fn exposer_pushing_a_burst_after_a_pull_request() {
    // A 36-byte Pull_Request answered by its Manifest and then 64 chunks (about 79 kB)
    // nobody asked for, as upstream's C library does; then a tokenless one-entry NAK
    // that the exposer answers within its budget. The burst counts against the
    // Pull_Request it follows, not against nothing and not against the later NAK.
    let prepared = ExposerBuilder::new().expose(&bytes(90_000, 7)).unwrap();
    // The burst: chunks as any exposer of this exposure sends them to anybody.
    let mut pusher = Exposer::new(
        std::sync::Arc::clone(&prepared.exposure),
        ExposerConfig {
            dangerous_serve_unvalidated: true,
            ..prepared.config.clone()
        },
    );
    let mut r = Recording::new(prepared);
    let id = r.id();
    let pr = net::pull_request(id, PullFlags::empty(), 1, 1);
    assert_eq!(r.ask(&pr, true).len(), 1);
    let now = Instant::from_micros(r.ts);
    pusher.handle_datagram(
        now,
        peer(PULLER),
        &net::nak(id, &all(64), NakFlags::empty(), None),
    );
    let mut burst = Vec::new();
    while let Some(t) = pusher.poll_transmit(now, &mut r.buf) {
        burst.extend(t.datagrams(&r.buf).map(<[u8]>::to_vec));
    }
    assert_eq!(burst.len(), 64);
    let burst_bytes: usize = burst.iter().map(Vec::len).sum();
    assert!(burst_bytes > 79_000, "{burst_bytes}");
    for d in &burst {
        let ts = r.tick();
        r.w.write_datagram(ts, r.ex, peer(PULLER), None, d).unwrap();
    }
    let later = net::nak(id, &[70], NakFlags::empty(), None);
    let answered: usize = r.ask(&later, true).iter().map(Vec::len).sum();
    assert!(answered <= 3 * later.len());
    let (failing, out) = r.judge(true);
    assert!(failing.contains("CAP-030"), "{failing:?}");
    // The unrequested chunks themselves are CAP-020's.
    assert!(failing.contains("CAP-020"), "{failing:?}");
    let d = &verdict_of(&out, "CAP-030").detail;
    assert!(
        d.contains(&format!(
            "Pull_Request of 36 B from {PULLER} (not validated) drew {} B ({burst_bytes} B of them unrequested, sent after it)",
            72 + burst_bytes
        )),
        "{d}"
    );
    assert!(!d.contains("NAK of"), "the later NAK is not blamed: {d}");
}

#[test]
fn exposer_exceeding_the_amplification_bound() {
    let mut r = Recording::unbounded(24_000);
    let id = r.id();
    r.ask(&net::pull_request(id, PullFlags::empty(), 1, 1), true);
    // A tokenless 20-entry NAK (104 B, budget 312 B) served in full.
    assert_eq!(
        r.ask(&net::nak(id, &all(20), NakFlags::empty(), None), true)
            .len(),
        20
    );
    let (failing, out) = r.judge(true);
    assert_eq!(failing, ids(&["CAP-030"]));
    let d = &verdict_of(&out, "CAP-030").detail;
    assert!(
        d.contains("NAK of 104 B") && d.contains("> 3 × 104 = 312 B"),
        "{d}"
    );
}

#[test]
fn exposer_honouring_a_borrowed_token() {
    let mut r = Recording::unbounded(24_000);
    let id = r.id();
    r.handshake();
    // Another address's token: not valid for this puller, so the bound applies.
    let theirs = r.handshake_from(OTHER);
    r.ask(&net::nak(id, &all(20), NakFlags::empty(), theirs), true);
    let (failing, out) = r.judge(false);
    assert_eq!(failing, ids(&["CAP-030", "CAP-107"]));
    assert!(verdict_of(&out, "CAP-107").detail.contains(OTHER));
}

#[test]
fn exposer_serving_past_256_entries_and_an_unasked_manifest() {
    let mut r = Recording::plain(24_000);
    let token = r.handshake();
    let id = r.id();
    // The capture shows one 300-entry NAK; the exposer was fed 256 + 44, so it answered
    // all 300: 44 answers past the limit.
    let entries: Vec<u32> = (0..300).map(|i| i % 20).collect();
    r.puller_sends(&net::nak(id, &entries, NakFlags::empty(), token));
    r.ask(
        &net::nak(id, &entries[..256], NakFlags::empty(), token),
        false,
    );
    r.ask(
        &net::nak(id, &entries[256..], NakFlags::empty(), token),
        false,
    );
    // A Manifest whose Pull_Request is not in the capture.
    r.ask(&net::pull_request(id, PullFlags::empty(), 1, 1), false);
    let (failing, out) = r.judge(true);
    assert_eq!(failing, ids(&["CAP-010", "CAP-022", "CAP-106"]));
    assert!(verdict_of(&out, "CAP-022")
        .detail
        .contains("drew 300 answers"));
    assert_eq!(
        verdict_of(&out, "CAP-106").info.level,
        rgtp_conformance::Level::Should
    );
}

#[test]
fn exposer_ignoring_nak_proofs() {
    let mut r = Recording::plain(24_000);
    let token = r.handshake();
    let id = r.id();
    // The puller asked for proofs; the exposer saw a plain NAK and sent Chunk_Data.
    r.puller_sends(&net::nak(id, &[3, 4], NakFlags::PROOFS, token));
    r.ask(&net::nak(id, &[3, 4], NakFlags::empty(), token), false);
    let (failing, _) = r.judge(true);
    assert_eq!(failing, ids(&["CAP-025"]));
}

#[test]
fn puller_with_bad_reserved_fields_and_reports() {
    let mut r = Recording::plain(2_400);
    let id = r.id();
    let mut pr = net::pull_request(id, PullFlags::ADDR_VALIDATION, 1, 1);
    pr[28] = 0x80; // PullFlags bit 31
    let a = r.ask(&pr, true);
    let Ok(Repr::Manifest(m)) = Repr::parse(&a[0], 65_535) else {
        panic!("no Manifest")
    };
    r.ask(&net::nak(id, &[0, 1], NakFlags::empty(), m.token), true);
    let mut rr = net::rate_report(id); // timestamp 1 µs: decades from the capture's clock
    rr[24..28].copy_from_slice(&70_000u32.to_be_bytes()); // Loss_Rate_Q16 > 65535
    rr[32] = 1; // Reserved
    r.ask(&rr, true);
    let (failing, out) = r.judge(true);
    assert_eq!(failing, ids(&["CAP-103", "CAP-108"]));
    let d = &verdict_of(&out, "CAP-103").detail;
    assert!(
        d.contains("PullFlags 0x80000004") && d.contains("Rate_Report Reserved"),
        "{d}"
    );
    assert!(verdict_of(&out, "CAP-108")
        .detail
        .contains("Loss_Rate_Q16 70000"));
}

// ------------------------------------------------------------------ proof runs (§3.6)

/// What a puller that judges runs asks for in its Pull_Request.
const RUNS_PULL: PullFlags = PullFlags::ADDR_VALIDATION
    .union(PullFlags::PROOFS)
    .union(PullFlags::PROOF_RUNS);
/// What it sets on NAKs asking for chunks the first time.
const RUNS_NAK: NakFlags = NakFlags::PROOFS.union(NakFlags::PROOF_RUNS);

/// Chunk packets in answers: (with a proof, without).
fn proofs_in(answers: &[Vec<u8>]) -> (Vec<u32>, Vec<u32>) {
    let (mut with, mut without) = (Vec::new(), Vec::new());
    for d in answers {
        match Repr::parse(d, 65_535) {
            Ok(Repr::ChunkDataWithProof(c)) => with.push(c.chunk_index),
            Ok(Repr::ChunkData(c)) => without.push(c.chunk_index),
            _ => {}
        }
    }
    (with, without)
}

fn assert_pass(out: &[Outcome], cases: &[&str]) {
    for id in cases {
        let o = verdict_of(out, id);
        assert_eq!(o.verdict, Verdict::Pass, "{id}: {}", o.detail);
    }
}

#[test]
fn synthetic_transfer_with_proof_runs_passes() {
    // 150 chunks: runs start at 0, 64 and 128 (the last one short).
    let mut r = Recording::plain(180_000);
    let id = r.id();
    let (flags, token) = r.handshake_with(PULLER, RUNS_PULL, true);
    assert!(flags.contains(ManifestFlags::PROOF_RUNS), "{flags:?}");
    // First requests, 64 entries a NAK at most as our puller sends them: proofs on run
    // heads only.
    let mut answers = Vec::new();
    for part in all(150).chunks(64) {
        answers.extend(r.ask(&net::nak(id, part, RUNS_NAK, token), true));
    }
    let (with, without) = proofs_in(&answers);
    assert_eq!(with, [0, 64, 128]);
    assert_eq!(without.len(), 147);
    // A re-request goes out with PROOFS alone: every chunk with its proof.
    let again = r.ask(&net::nak(id, &[1, 65, 149], NakFlags::PROOFS, token), true);
    assert_eq!(proofs_in(&again).0, [1, 65, 149]);
    // Another puller, which did not ask for proof runs: its Manifest has no PROOF_RUNS,
    // which does not make it another exposure (CAP-012).
    let (flags, theirs) = r.handshake_with(OTHER, PullFlags::ADDR_VALIDATION, true);
    assert!(!flags.contains(ManifestFlags::PROOF_RUNS), "{flags:?}");
    r.ask_from(
        OTHER,
        &net::nak(id, &[0, 1], NakFlags::PROOFS, theirs),
        true,
    );
    let (failing, out) = r.judge(true);
    assert!(failing.is_empty(), "{failing:?}");
    assert_pass(
        &out,
        &[
            "CAP-012", "CAP-015", "CAP-025", "CAP-041", "CAP-042", "CAP-103", "CAP-109",
        ],
    );
    let d = &verdict_of(&out, "CAP-015").detail;
    assert!(d.contains("1 with PROOF_RUNS"), "{d}");
    let d = &verdict_of(&out, "CAP-025").detail;
    assert!(d.starts_with("155 requested chunk packets"), "{d}");
    let d = &verdict_of(&out, "CAP-041").detail;
    assert!(d.starts_with("8 proofs"), "{d}");
}

#[test]
fn pull_with_proof_runs_over_udp_passes() {
    // Our exposer of an exposure prepared with proofs (`rgtp expose --proofs`) on
    // loopback, and our puller as `rgtp pull --proofs` configures it (proofs checked on
    // another core, a run at a time), through a relay that records what each side was
    // handed. Proofs are negotiated (ManifestFlags PROOFS), and NakFlags PROOF_RUNS
    // overrides the exposure's PROOFS flag off the run heads. 300 chunks: five runs, the
    // last one short.
    let data = bytes(360_000, 11);
    let exposure = ExposerBuilder::new().with_proofs(true);
    let ours = serve_ours(&data, exposure, ExposerConfig::default());
    let relay = Relay::spawn(ours.addr, ImpairmentConfig::perfect(), 7).unwrap();
    let mut via = ours.ticket.clone();
    via.host = relay.addr.ip().to_string();
    via.port = relay.addr.port();
    let got = reference::pull_configured(
        &via,
        rgtp::DynSuite,
        Duration::from_secs(5),
        Duration::from_secs(10),
        |c| {
            c.want_proofs = true;
            c.offload_proofs = true;
            c.proof_runs = true;
            c.deferred_root = false;
        },
    )
    .unwrap();
    assert!(got == data, "the pulled bytes differ");
    let (delivered, _, _) = relay.finish();
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("proof-runs.pcap");
    Relay::write_pcap(ours.addr, &delivered, &path).unwrap();
    let bytes = std::fs::read(&path).unwrap();
    // The capture shows what it is meant to: PROOF_RUNS asked, announced and used, and
    // most chunks sent without proofs (re-requested ones, if any, carry theirs).
    let (mut runs_naks, mut announced) = (0, false);
    let (mut heads, mut with, mut without) = (0, 0, 0);
    for d in delivered.iter().map(|d| &d.data) {
        match Repr::parse(d, 65_535) {
            Ok(Repr::Nak(n)) if n.flags.contains(NakFlags::PROOF_RUNS) => runs_naks += 1,
            Ok(Repr::Manifest(m)) => announced |= m.flags.contains(ManifestFlags::PROOF_RUNS),
            Ok(Repr::ChunkDataWithProof(c)) => {
                with += 1;
                heads += usize::from(c.chunk_index % PROOF_RUN == 0);
            }
            Ok(Repr::ChunkData(_)) => without += 1,
            _ => {}
        }
    }
    println!(
        "announced {announced}, {runs_naks} NAKs with PROOF_RUNS, chunks: {with} with a proof ({heads} run heads), {without} without"
    );
    assert!(announced && runs_naks > 0 && heads >= 5 && without >= 150);
    let opts = CaptureOptions {
        ticket: Some(ours.ticket.clone()),
        ..Default::default()
    };
    let ctx = CaptureCtx::new(&bytes, opts).unwrap();
    println!("{}", ctx.summary());
    let out = rgtp_conformance::run_capture(&ctx, &Selection::default());
    print!("{}", rgtp_conformance::report::table(&out));
    let failing = failing_ids(&out);
    assert!(failing.is_empty(), "{failing:?}");
    assert_pass(
        &out,
        &[
            "CAP-015", "CAP-020", "CAP-023", "CAP-025", "CAP-040", "CAP-041", "CAP-042", "CAP-103",
            "CAP-109",
        ],
    );
}

#[test]
fn exposer_answering_a_proof_runs_nak_with_proofs_on_every_chunk() {
    // It announced PROOF_RUNS, then served the NAK as if the bit were clear: chunks 1,
    // 63 and 65 carry proofs §3.6 says they do not.
    let mut r = Recording::plain(120_000); // 100 chunks
    let id = r.id();
    let (flags, token) = r.handshake_with(PULLER, RUNS_PULL, true);
    assert!(flags.contains(ManifestFlags::PROOF_RUNS));
    let entries = [0, 1, 63, 64, 65];
    r.puller_sends(&net::nak(id, &entries, RUNS_NAK, token));
    let a = r.ask(&net::nak(id, &entries, NakFlags::PROOFS, token), false);
    assert_eq!(proofs_in(&a).0, entries);
    let (failing, out) = r.judge(true);
    assert_eq!(failing, ids(&["CAP-025"]));
    let d = &verdict_of(&out, "CAP-025").detail;
    assert!(
        d.starts_with("3 of 5 requested chunk packets fail")
            && d.contains("chunk 1 sent with a proof")
            && d.contains(
                "PROOF_RUNS set and announced to this puller (chunk 1 is not a multiple of 64"
            ),
        "{d}"
    );
    // The proofs themselves are genuine, and the puller did nothing wrong.
    assert_pass(&out, &["CAP-041", "CAP-109"]);
}

#[test]
fn exposer_leaving_out_a_run_heads_proof() {
    // It announced PROOF_RUNS, then answered chunk 64 of a NAK with PROOFS and
    // PROOF_RUNS without its proof (as if PROOFS were clear); chunk 65 rightly has none.
    let mut r = Recording::plain(120_000);
    let id = r.id();
    let (_, token) = r.handshake_with(PULLER, RUNS_PULL, true);
    r.puller_sends(&net::nak(id, &[64, 65], RUNS_NAK, token));
    let a = r.ask(&net::nak(id, &[64, 65], NakFlags::PROOF_RUNS, token), false);
    assert_eq!(proofs_in(&a), (vec![], vec![64, 65]));
    let (failing, out) = r.judge(true);
    assert_eq!(failing, ids(&["CAP-025"]));
    let d = &verdict_of(&out, "CAP-025").detail;
    assert!(
        d.starts_with("1 of 2 requested chunk packets fail")
            && d.contains("chunk 64 sent without a proof; Manifest PROOFS clear, NAK")
            && d.contains("PROOFS set, PROOF_RUNS set and announced"),
        "{d}"
    );
}

#[test]
fn proof_runs_nak_without_the_extension_announced() {
    // The puller never asked for proof runs, so its Manifest has no PROOF_RUNS; its NAK
    // sets the bit all the same: the puller's fault (CAP-109). The exposer may ignore the
    // bit or honour it: either answer passes CAP-025.
    for honour in [true, false] {
        let mut r = Recording::plain(120_000);
        let id = r.id();
        let asks = PullFlags::ADDR_VALIDATION | PullFlags::PROOFS;
        let (flags, token) = r.handshake_with(PULLER, asks, true);
        assert!(!flags.contains(ManifestFlags::PROOF_RUNS));
        let entries = [0, 1, 64, 65];
        r.puller_sends(&net::nak(id, &entries, RUNS_NAK, token));
        let served = if honour { RUNS_NAK } else { NakFlags::PROOFS };
        let a = r.ask(&net::nak(id, &entries, served, token), false);
        let want: &[u32] = if honour { &[0, 64] } else { &entries };
        assert_eq!(proofs_in(&a).0, want);
        let (failing, out) = r.judge(true);
        assert_eq!(failing, ids(&["CAP-109"]), "honour {honour}");
        assert_pass(&out, &["CAP-015", "CAP-025"]);
        let d = &verdict_of(&out, "CAP-109").detail;
        assert!(
            d.contains("sets PROOF_RUNS, but no Manifest the exposer sent it"),
            "{d}"
        );
    }
}

#[test]
fn exposer_announcing_proof_runs_unasked() {
    // The recorded Pull_Request has no PullFlags PROOF_RUNS; the Manifest answering it
    // (drawn by one that had) announces the extension anyway.
    let mut r = Recording::plain(24_000);
    let id = r.id();
    r.puller_sends(&net::pull_request(id, PullFlags::ADDR_VALIDATION, 1, 1));
    let (flags, token) = r.handshake_with(PULLER, RUNS_PULL, false);
    assert!(flags.contains(ManifestFlags::PROOF_RUNS));
    r.ask(&net::nak(id, &[0, 1], RUNS_NAK, token), true);
    let (failing, out) = r.judge(true);
    assert_eq!(failing, ids(&["CAP-015"]));
    let d = &verdict_of(&out, "CAP-015").detail;
    assert!(
        d.contains("Manifest with PROOF_RUNS to 192.0.2.2:40000, whose Pull_Request (frame 1) did not set PullFlags PROOF_RUNS"),
        "{d}"
    );
    // Once announced, the puller may use the bit, and the exposer must honour it.
    assert_pass(&out, &["CAP-025", "CAP-109"]);
}

// ------------------------------------------------------------------ the command

#[test]
fn pcap_command_exit_status_and_reports() {
    let bin = env!("CARGO_BIN_EXE_rgtp-conformance");
    let file = |n: &str| pcaps().join(format!("{n}.pcap"));
    let ticket = |n: &str| sidecar(n)["ticket"].as_str().unwrap().to_string();
    // Honest: exit 0; the summary names the exposer and how it was found.
    let st = Command::new(bin)
        .arg("pcap")
        .arg(file("multi-chunk"))
        .args(["--ticket", &ticket("multi-chunk")])
        .output()
        .unwrap();
    let text = String::from_utf8_lossy(&st.stdout);
    assert_eq!(st.status.code(), Some(0), "{text}");
    assert!(
        text.contains("exposer 192.0.2.1:9000 (the ticket's address)"),
        "{text}"
    );
    // A MUST fails: exit 1, JUnit and JSON written.
    let dir = tempfile::tempdir().unwrap();
    let (junit, json) = (dir.path().join("r.xml"), dir.path().join("r.json"));
    let st = Command::new(bin)
        .arg("--junit")
        .arg(&junit)
        .arg("--json")
        .arg(&json)
        .arg("pcap")
        .arg(file("hostile-forged-tag"))
        .args(["--ticket", &ticket("hostile-forged-tag")])
        .output()
        .unwrap();
    assert_eq!(st.status.code(), Some(1));
    let j = std::fs::read_to_string(&json).unwrap();
    assert!(
        j.contains("\"target\":\"pcap\"") && j.contains("\"must_failed\":true"),
        "{j}"
    );
    let x = std::fs::read_to_string(&junit).unwrap();
    assert!(
        x.contains("rgtp-conformance.pcap") && x.contains("<failure"),
        "{x}"
    );
    // Only SHOULD cases fail: exit 0.
    let st = Command::new(bin)
        .arg("pcap")
        .arg(file("hostile-oversize-nak"))
        .output()
        .unwrap();
    assert_eq!(st.status.code(), Some(0));
    assert!(String::from_utf8_lossy(&st.stdout).contains("CAP-106"));
    // --only/--skip, and --exposer naming the exposer explicitly.
    let st = Command::new(bin)
        .args(["--only", "CAP-00,CAP-020", "--skip", "CAP-005", "pcap"])
        .arg(file("hostile-replayed-chunks"))
        .args(["--exposer", "192.0.2.1:9000"])
        .output()
        .unwrap();
    let text = String::from_utf8_lossy(&st.stdout);
    assert_eq!(st.status.code(), Some(1), "{text}");
    assert!(
        text.contains("CAP-001")
            && text.contains("CAP-020")
            && !text.contains("CAP-005")
            && !text.contains("CAP-101")
            && text.contains("(--exposer)"),
        "{text}"
    );
    // Raw Ethernet: --exposer takes a MAC.
    let st = Command::new(bin)
        .arg("pcap")
        .arg(file("ethernet-vlan"))
        .args(["--exposer", "02-00-5e-10-00-01"])
        .output()
        .unwrap();
    assert_eq!(st.status.code(), Some(0));
    // Usage errors: no file, not a capture, a bad ticket, an exposer not in the capture.
    for args in [
        vec!["pcap".to_string(), "/nonexistent.pcap".into()],
        vec![
            "pcap".into(),
            concat!(env!("CARGO_MANIFEST_DIR"), "/Cargo.toml").into(),
        ],
        vec![
            "pcap".into(),
            file("tiny").display().to_string(),
            "--ticket".into(),
            "rgtp://nope".into(),
        ],
        vec![
            "pcap".into(),
            file("tiny").display().to_string(),
            "--exposer".into(),
            "nope".into(),
        ],
    ] {
        let st = Command::new(bin).args(&args).output().unwrap();
        assert_eq!(st.status.code(), Some(2), "{args:?}");
        assert!(!st.stderr.is_empty());
    }
}
