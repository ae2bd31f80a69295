//! Transfers over the impaired in-memory network, in virtual time: loss, burst
//! loss, reordering, duplication and corruption; determinism; FEC against NAKs.

mod common;

use std::time::Duration;

use rgtp::sim::{simulate, SimReport, EXPOSER};
use rgtp::{ExposerBuilder, FecSpec, Prepared};
use rgtp_link::impair::ImpairmentConfig;
use rgtp_link::mem::SimNet;
use rgtp_proto::{ExposerConfig, PullerConfig};

fn impaired(loss: f64) -> ImpairmentConfig {
    ImpairmentConfig::default()
        .with_loss(loss)
        .with_delay(Duration::from_millis(10))
        .with_jitter(Duration::from_millis(2))
        .with_reorder(0.05)
        .with_duplicate(0.02)
        .with_corrupt(0.01)
}

fn prepare(fec: &str, data: &[u8]) -> Prepared {
    ExposerBuilder::new()
        .with_fec(fec.parse::<FecSpec>().unwrap())
        .with_config(ExposerConfig {
            max_segments: 16,
            ..Default::default()
        })
        .expose(data)
        .unwrap()
}

fn puller(p: &Prepared, tweak: impl Fn(&mut PullerConfig)) -> PullerConfig {
    let mut c = PullerConfig::new(*p.exposure.id(), EXPOSER, p.key.clone());
    c.idle_timeout = Duration::from_secs(30);
    tweak(&mut c);
    c
}

fn run(
    p: &Prepared,
    n: usize,
    net: ImpairmentConfig,
    seed: u64,
    tweak: impl Fn(&mut PullerConfig),
) -> SimReport {
    let configs = (0..n).map(|_| puller(p, &tweak)).collect();
    simulate(p, configs, SimNet::new(net, seed), Duration::from_secs(600))
}

fn assert_exact(r: &SimReport, data: &[u8], what: &str) {
    for (i, o) in r.pullers.iter().enumerate() {
        match &o.result {
            Ok(out) => assert!(out == data, "{what}: puller {i} output differs"),
            Err(e) => panic!("{what}: puller {i} failed: {e} ({:?})", o.stats),
        }
    }
}

#[test]
fn loss_sweep_with_reorder_duplication_corruption() {
    let data = common::data(2 << 20, 11);
    for fec in ["none", "rs:40,32", "raptorq:0.25"] {
        let p = prepare(fec, &data);
        for loss in [0.01, 0.10, 0.30] {
            let r = run(&p, 1, impaired(loss), 42, |_| {});
            assert_exact(&r, &data, &format!("{fec} at {loss}"));
            let s = r.pullers[0].stats;
            // Corruption reached the puller and was caught by the AEAD (or the parser).
            assert!(
                s.auth_failures + s.malformed > 0,
                "{fec} at {loss}: corruption unseen {s:?}"
            );
            assert!(s.duplicates > 0, "{fec} at {loss}: duplication unseen");
            assert!(
                s.chunks_rerequested > 0 || s.fec_recoveries > 0,
                "{fec} at {loss}: loss unseen"
            );
        }
    }
}

#[test]
fn burst_loss() {
    let data = common::data(1 << 20, 12);
    let p = prepare("rs:40,32", &data);
    let net = ImpairmentConfig::default()
        .with_burst_loss(0.01, 0.2, 0.8)
        .with_delay(Duration::from_millis(5));
    let r = run(&p, 1, net, 3, |_| {});
    assert_exact(&r, &data, "burst loss");
}

#[test]
fn same_seed_same_trace() {
    let data = common::data(300_000, 13);
    let p = prepare("rs:20,16", &data);
    let a = run(&p, 2, impaired(0.1), 7, |_| {});
    let b = run(&p, 2, impaired(0.1), 7, |_| {});
    let c = run(&p, 2, impaired(0.1), 8, |_| {});
    assert_exact(&a, &data, "a");
    assert_exact(&c, &data, "c");
    assert_eq!(a.trace_hash, b.trace_hash, "same seed, same packet trace");
    assert_ne!(a.trace_hash, c.trace_hash, "another seed, another trace");
    for (x, y) in a.pullers.iter().zip(&b.pullers) {
        assert_eq!(x.stats, y.stats);
        assert_eq!(x.elapsed, y.elapsed);
    }
}

/// Request round trips spent on recovery: NAKs that had to ask for a chunk again.
/// Summed over several seeds, since one lost NAK can carry 64 requests.
#[test]
fn fec_needs_fewer_round_trips_at_10_percent_loss() {
    let data = common::data(4 << 20, 14);
    let net = || {
        ImpairmentConfig::default()
            .with_loss(0.10)
            .with_delay(Duration::from_millis(10))
    };
    let seeds = [21, 22, 23];
    let rounds = |fec: &str| -> (u64, u64) {
        let p = prepare(fec, &data);
        let mut rounds = 0;
        let mut rebuilt = 0;
        for seed in seeds {
            let r = run(&p, 1, net(), seed, |_| {});
            assert_exact(&r, &data, fec);
            rounds += r.pullers[0].stats.retransmit_naks;
            rebuilt += r.pullers[0].stats.fec_recoveries;
        }
        (rounds, rebuilt)
    };
    let (none, _) = rounds("none");
    for fec in ["rs:48,32", "raptorq:0.5"] {
        let (with_fec, rebuilt) = rounds(fec);
        assert!(rebuilt > 0, "{fec}: no chunk rebuilt");
        assert!(
            with_fec < none,
            "{fec}: {with_fec} re-request round trips vs {none} without FEC"
        );
    }
}

#[test]
fn four_pullers_share_one_exposure() {
    let data = common::data(1 << 20, 15);
    let p = prepare("none", &data);
    let r = run(&p, 4, impaired(0.02), 5, |_| {});
    assert_exact(&r, &data, "four pullers");
    assert!(r.exposer_queue_max <= ExposerConfig::default().queue_limit);
}

#[test]
fn proofs_under_loss() {
    let data = common::data(500_000, 16);
    let p = ExposerBuilder::new()
        .with_proofs(true)
        .expose(&data)
        .unwrap();
    // With corruption on, a flipped bit in a proof (not the payload) passes the AEAD and is
    // caught by the proof check; the chunk is re-requested and the output stays exact.
    let r = run(&p, 1, impaired(0.05), 9, |c| c.want_proofs = true);
    assert_exact(&r, &data, "proofs with corruption");
    // Without corruption every proof checks out.
    let clean = ImpairmentConfig::default()
        .with_loss(0.05)
        .with_reorder(0.05)
        .with_duplicate(0.02);
    let r = run(&p, 1, clean, 9, |c| c.want_proofs = true);
    assert_exact(&r, &data, "proofs");
    assert_eq!(r.pullers[0].stats.merkle_failures, 0);
    assert!(r.pullers[0].stats.chunks_received > 0);
}

#[test]
fn empty_and_tiny_exposures() {
    for len in [0usize, 1, 1199, 1200, 1201] {
        let data = common::data(len, len as u64);
        let p = prepare("rs:10,8", &data);
        let r = run(&p, 1, impaired(0.05), 1, |_| {});
        assert_exact(&r, &data, &format!("{len} bytes"));
    }
}

#[test]
fn ticket_pins_cipher_and_hash_independently() {
    use rgtp_proto::puller::PullError;
    use rgtp_proto::{CipherId, HashId};
    let data = common::data(10_000, 17);
    let p = prepare("none", &data); // AES-256-GCM + SHA-256
    let perfect = ImpairmentConfig::default;
    let r = run(&p, 1, perfect(), 1, |c| {
        c.expected_cipher = Some(CipherId::ChaCha20Poly1305)
    });
    assert!(
        matches!(r.pullers[0].result, Err(PullError::BadManifest)),
        "cipher pin ignored"
    );
    let r = run(&p, 1, perfect(), 1, |c| {
        c.expected_hash = Some(HashId::Blake3)
    });
    assert!(
        matches!(r.pullers[0].result, Err(PullError::BadManifest)),
        "hash pin ignored"
    );
    let r = run(&p, 1, perfect(), 1, |c| {
        c.expected_cipher = Some(CipherId::Aes256Gcm);
        c.expected_hash = Some(HashId::Sha256);
    });
    assert_exact(&r, &data, "matching pins");
}

#[test]
fn chunk_size_bounded_by_largest_proof_packet() {
    use rgtp_proto::exposer::{max_packet_len, MAX_DATAGRAM};
    // Any puller may ask for proofs, so a chunk plus a full-depth proof must fit a datagram.
    assert!(max_packet_len(65_000, 1 << 14) <= MAX_DATAGRAM);
    assert!(max_packet_len(65_000, (1 << 14) + 1) > MAX_DATAGRAM);
    assert!(ExposerBuilder::new()
        .with_chunk_size(65_001)
        .expose(b"x")
        .is_err());
    assert!(ExposerBuilder::new()
        .with_chunk_size(65_000)
        .expose(&[7u8; 200_000])
        .is_ok());
}

/// Random loss on an uncongested path is repaired, not read as congestion: the window keeps
/// growing. A bottleneck that builds a standing queue shrinks it.
#[test]
fn window_responds_to_queues_not_to_random_loss() {
    let data = common::data(8 << 20, 18);
    let p = prepare("none", &data);
    let lossy = ImpairmentConfig::default()
        .with_loss(0.10)
        .with_delay(Duration::from_millis(10));
    let r = run(&p, 1, lossy, 4, |_| {});
    assert_exact(&r, &data, "random loss");
    let s = r.pullers[0].stats;
    assert!(s.chunks_rerequested > 0);
    assert!(
        s.window >= 1024,
        "10% random loss collapsed the window to {}",
        s.window
    );

    // 4 MB/s bottleneck with a deep buffer: the queue, not loss, is the signal.
    let bottleneck = ImpairmentConfig::default()
        .with_delay(Duration::from_millis(5))
        .with_rate_limit(4_000_000)
        .with_queue_limit(16 << 20);
    let r = run(&p, 1, bottleneck, 4, |_| {});
    assert_exact(&r, &data, "bottleneck");
    let s = r.pullers[0].stats;
    assert!(
        s.window < 1024,
        "a standing queue left the window at {}",
        s.window
    );
}
