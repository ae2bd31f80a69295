//! The harness catches faults: deliberately faulty exposers and a faulty puller make
//! exactly the matching cases fail.

mod common;

use std::collections::BTreeSet;
use std::net::SocketAddr;
use std::time::Duration;

use common::*;
use rgtp::{ExposerBuilder, FecSpec, Prepared, Ticket};
use rgtp_conformance::adversary::{self, Hooks, InboundHook, Mangle, OutboundHook};
use rgtp_conformance::faulty::{chunks_of, PushAfterManifest};
use rgtp_conformance::{failing_ids, Selection, Verdict};
use rgtp_proto::crypto::{AeadError, TAG_LEN};
use rgtp_proto::{CipherId, CipherSuite, ExposerConfig, FecParams, HashId, Key, SuiteFactory};
use rgtp_providers::{AnyCipher, AnyFec, AnyHash};

fn ids(v: &[&str]) -> BTreeSet<String> {
    v.iter().map(|s| s.to_string()).collect()
}

/// The exposure every faulty exposer serves.
fn prepared(config: ExposerConfig) -> Prepared {
    ExposerBuilder::new()
        .with_fec(FecSpec::ReedSolomon { n: 6, k: 4 })
        .with_config(config)
        .expose(&bytes(60_001, 9))
        .unwrap()
}

/// Serves an exposure through the harness's loop with `hooks`, runs the exposer
/// catalogue and returns the failing ids.
fn faulty_exposer(config: ExposerConfig, hooks: Hooks) -> BTreeSet<String> {
    faulty_exposer_with(prepared(config), Box::new(hooks))
}

/// Serves `prepared` through the harness's loop with `mangle`, runs the exposer
/// catalogue and returns the failing ids.
fn faulty_exposer_with(prepared: Prepared, mangle: Box<dyn Mangle>) -> BTreeSet<String> {
    let bind: SocketAddr = "127.0.0.1:0".parse().unwrap();
    let srv = adversary::spawn(prepared.exposer(), bind, mangle).unwrap();
    let ticket: Ticket = prepared.ticket(srv.addr);
    let out = rgtp_conformance::run_exposer(srv.addr, ticket, QUIET, &Selection::default());
    print!("{}", rgtp_conformance::report::table(&out));
    assert!(rgtp_conformance::report::must_failed(&out));
    failing_ids(&out)
}

fn pass_in() -> InboundHook {
    Box::new(|_| true)
}

fn pass_out() -> OutboundHook {
    Box::new(|_| {})
}

#[test]
fn exposer_answering_unsupported_versions() {
    // Rewrites every Pull_Request's version range to 1..1 before the exposer sees it.
    let hooks = Hooks {
        inbound: Box::new(|d| {
            if d.len() == 36 && d[0] == 1 && d[1] == 1 {
                d[32..36].copy_from_slice(&[0, 1, 0, 1]);
            }
            true
        }),
        outbound: pass_out(),
    };
    let failing = faulty_exposer(ExposerConfig::default(), hooks);
    assert_eq!(failing, ids(&["EXP-011", "EXP-012", "EXP-013"]));
}

#[test]
fn exposer_exceeding_the_amplification_bound() {
    let config = ExposerConfig {
        dangerous_serve_unvalidated: true,
        ..Default::default()
    };
    let hooks = Hooks {
        inbound: pass_in(),
        outbound: pass_out(),
    };
    let failing = faulty_exposer(config, hooks);
    assert_eq!(failing, ids(&["EXP-040", "EXP-041", "EXP-042", "EXP-044"]));
}

#[test]
fn exposer_with_a_wrong_merkle_root() {
    // Alters the root of every Manifest it sends: the full pull's root (EXP-022) and
    // every proof checked against it (EXP-023, and EXP-064's run heads) disagree.
    let hooks = Hooks {
        inbound: pass_in(),
        outbound: Box::new(|d| {
            if d.len() >= 72 && d[1] == 2 {
                d[40] ^= 0x10;
            }
        }),
    };
    let failing = faulty_exposer(ExposerConfig::default(), hooks);
    assert_eq!(failing, ids(&["EXP-022", "EXP-023", "EXP-064"]));
}

#[test]
fn exposer_pushing_chunks_after_its_manifest() {
    // Which cases this fault fails, and why exactly these:
    // - EXP-001, EXP-002, EXP-010 each send one Pull_Request and require exactly one
    //   answer, a Manifest; the burst makes it 1 + 8. EXP-002 is not in the list the
    //   issue gave, but it checks "exactly one answer" just as EXP-001 and EXP-010 do
    //   (a Pull_Request with ADDR_VALIDATION is still a Pull_Request, and §3.1 allows
    //   only a Manifest for it), so it fails too (a SHOULD case; it never passed on
    //   this fault, and the burst is what fails it).
    // - EXP-062 sends a Pull_Request with RATE_CAP and requires exactly one answer, too.
    // - EXP-006: Pull_Requests answered with Chunk_Data.
    // - EXP-043, EXP-044: the burst answers an unvalidated Pull_Request with far more
    //   than 3× its 36 bytes.
    // Every other case starts from a quiet socket (the handshake drains the burst) and
    // must pass: the burst is the Pull_Request's, never the next request's.
    let prepared = prepared(ExposerConfig::default());
    let burst = chunks_of(&prepared, 8);
    assert_eq!(burst.len(), 8, "the burst");
    let failing = faulty_exposer_with(prepared, Box::new(PushAfterManifest { burst }));
    assert_eq!(
        failing,
        ids(&["EXP-001", "EXP-002", "EXP-006", "EXP-010", "EXP-043", "EXP-044", "EXP-062"])
    );
}

#[test]
fn exposer_announcing_proof_runs_unasked() {
    // Sets ManifestFlags PROOF_RUNS (bit 8, high byte bit 0) in every Manifest, also
    // those answering a Pull_Request without PullFlags PROOF_RUNS.
    let hooks = Hooks {
        inbound: pass_in(),
        outbound: Box::new(|d| {
            if d.len() >= 72 && d[1] == 2 {
                d[70] |= 0x01;
            }
        }),
    };
    let failing = faulty_exposer(ExposerConfig::default(), hooks);
    assert_eq!(failing, ids(&["EXP-063"]));
}

#[test]
fn exposer_announcing_proof_runs_but_ignoring_the_nak_bit() {
    // Clears NakFlags PROOF_RUNS (bit 2) of every NAK before the exposer sees it: it
    // announced the extension, yet answers every chunk of such a NAK with its proof.
    let hooks = Hooks {
        inbound: Box::new(|d| {
            if d.len() >= 24 && d[0] == 1 && d[1] == 6 {
                d[23] &= !0x04;
            }
            true
        }),
        outbound: pass_out(),
    };
    let failing = faulty_exposer(ExposerConfig::default(), hooks);
    assert_eq!(failing, ids(&["EXP-064"]));
}

#[test]
fn exposer_without_proof_runs_is_not_blamed() {
    // Clears PullFlags PROOF_RUNS (bit 4) before the exposer sees it, as an exposer
    // without the extension ignores it: never announced, so EXP-063 passes saying so
    // and EXP-064 is n/a.
    let hooks = Hooks {
        inbound: Box::new(|d| {
            if d.len() == 36 && d[0] == 1 && d[1] == 1 {
                d[31] &= !0x10;
            }
            true
        }),
        outbound: pass_out(),
    };
    let prepared = prepared(ExposerConfig::default());
    let bind: SocketAddr = "127.0.0.1:0".parse().unwrap();
    let srv = adversary::spawn(prepared.exposer(), bind, Box::new(hooks)).unwrap();
    let ticket: Ticket = prepared.ticket(srv.addr);
    let sel = Selection {
        cases: vec!["EXP-063".into(), "EXP-064".into()],
        ..Selection::default()
    };
    let out = rgtp_conformance::run_exposer(srv.addr, ticket, QUIET, &sel);
    print!("{}", rgtp_conformance::report::table(&out));
    let verdicts: Vec<(&str, Verdict)> = out.iter().map(|o| (o.info.id, o.verdict)).collect();
    assert_eq!(
        verdicts,
        [("EXP-063", Verdict::Pass), ("EXP-064", Verdict::Skip)],
        "{out:#?}"
    );
    assert!(out[0].detail.contains("not supported"), "{}", out[0].detail);
    assert!(out[1].detail.starts_with("n/a: "), "{}", out[1].detail);
}

// ------------------------------------------------------------------ faulty puller

/// A cipher that decrypts without checking the tag (the fault under test).
struct SkipTagCheck(AnyCipher);

impl CipherSuite for SkipTagCheck {
    fn id(&self) -> CipherId {
        self.0.id()
    }
    fn seal(&self, chunk_index: u32, data: &mut [u8]) -> Result<[u8; TAG_LEN], AeadError> {
        self.0.seal(chunk_index, data)
    }
    fn open(
        &self,
        chunk_index: u32,
        data: &mut [u8],
        _tag: &[u8; TAG_LEN],
    ) -> Result<(), AeadError> {
        // Both AEADs are counter-mode: sealing zeros yields the keystream.
        let mut ks = vec![0u8; data.len()];
        self.0.seal(chunk_index, &mut ks)?;
        for (b, k) in data.iter_mut().zip(ks) {
            *b ^= k;
        }
        Ok(())
    }
}

struct SkipTagSuite;

impl SuiteFactory for SkipTagSuite {
    type Cipher = SkipTagCheck;
    type Hash = AnyHash;
    type Fec = AnyFec;
    fn cipher(&self, id: CipherId, key: &Key) -> Option<SkipTagCheck> {
        AnyCipher::new(id, key).map(SkipTagCheck)
    }
    fn hash(&self, id: HashId) -> Option<AnyHash> {
        AnyHash::new(id)
    }
    fn fec(&self, params: FecParams) -> Option<AnyFec> {
        AnyFec::new(params).ok()
    }
    fn min_shards(&self, params: FecParams) -> usize {
        rgtp_providers::fec::min_shards(params)
    }
}

/// The faulty pullers' `main`: runs when this test binary is re-executed by the
/// harness with FAULTY_TICKET and FAULTY_OUT set; a no-op in a normal test run.
/// Neither asks for proofs, and neither repairs a root mismatch (spec §8.12: a
/// SHOULD), so what they let in shows at the root check. FAULTY_KIND picks the
/// fault: `skip-tag` takes chunks without checking their tag; `no-proof-check`
/// has every layer right and only takes chunks on the AEAD alone.
#[test]
fn faulty_puller_entry() {
    let (Ok(ticket), Ok(out)) = (std::env::var("FAULTY_TICKET"), std::env::var("FAULTY_OUT"))
    else {
        return;
    };
    let no_repair = |c: &mut rgtp_proto::PullerConfig| {
        c.want_proofs = false;
        c.max_repair_probes = 0;
    };
    let (connect, idle) = (Duration::from_secs(2), Duration::from_secs(3));
    let result = match ticket.parse::<Ticket>() {
        Err(_) => std::process::exit(2),
        Ok(t) => match std::env::var("FAULTY_KIND").as_deref() {
            Ok("no-proof-check") => rgtp_conformance::reference::pull_configured(
                &t,
                rgtp::DynSuite,
                connect,
                idle,
                no_repair,
            ),
            _ => rgtp_conformance::reference::pull_configured(
                &t,
                SkipTagSuite,
                connect,
                idle,
                no_repair,
            ),
        },
    };
    let code = match result {
        Ok(data) => {
            std::fs::write(&out, data).expect("write output");
            0
        }
        Err(e) => {
            eprintln!("faulty puller: {e}");
            match e {
                rgtp::driver::PullFailure::Protocol(p) => match p {
                    rgtp_proto::puller::PullError::AuthFailed => 4,
                    rgtp_proto::puller::PullError::MerkleFailed => 5,
                    rgtp_proto::puller::PullError::BadManifest => 7,
                    _ => 3,
                },
                _ => 6,
            }
        }
    };
    std::process::exit(code);
}

#[test]
fn puller_that_skips_the_tag_check() {
    let exe = std::env::current_exe().unwrap();
    let cmd = format!(
        "FAULTY_TICKET={{ticket}} FAULTY_OUT={{out}} '{}' faulty_puller_entry --exact --nocapture --test-threads=1",
        exe.display()
    );
    let out = rgtp_conformance::run_puller(
        &cmd,
        Duration::from_secs(30),
        200_000,
        &Selection::default(),
    );
    print!("{}", rgtp_conformance::report::table(&out));
    // PUL-029 and PUL-030 too: this puller never asks for proofs (its command has no
    // `{proofs}`) and does not repair, so it takes the chunks with other content and the
    // root check fails the pull.
    assert_eq!(
        failing_ids(&out),
        ids(&["PUL-006", "PUL-007", "PUL-020", "PUL-029", "PUL-030"])
    );
}

#[test]
fn puller_that_accepts_chunks_without_the_negotiated_proof() {
    // A puller with every layer right that takes chunks on the AEAD alone and does not
    // repair: the proof-less chunk PUL-029 slips in fails the root check, the behaviour
    // the case exists to catch (our `rgtp pull` without `--proofs` now repairs it).
    let exe = std::env::current_exe().unwrap();
    let cmd = format!(
        "FAULTY_KIND=no-proof-check FAULTY_TICKET={{ticket}} FAULTY_OUT={{out}} '{}' faulty_puller_entry --exact --nocapture --test-threads=1",
        exe.display()
    );
    let sel = Selection {
        only: vec!["PUL-029".into(), "PUL-030".into()],
        ..Selection::default()
    };
    let out = rgtp_conformance::run_puller(&cmd, Duration::from_secs(30), 200_000, &sel);
    print!("{}", rgtp_conformance::report::table(&out));
    assert_eq!(failing_ids(&out), ids(&["PUL-029", "PUL-030"]));
}
