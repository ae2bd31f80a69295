//! A pull that keeps nothing (`rgtp pull --discard`, `-o /dev/null`): every chunk is
//! verified and the root checked from leaves hashed as the chunks land, with no
//! output to read back.

mod common;

use std::sync::atomic::AtomicBool;

use rgtp::driver::{Clock, PullFailure};
use rgtp::files::{pull_discard, NoProgress, NotPulled, PullFileError, PullJob, Pulled};
use rgtp::{Backend, ExposerBuilder, Prepared};
use rgtp_proto::puller::PullError;
use rgtp_proto::{Peer, PullerConfig};

use common::{loopback, prepare, Server};

fn job(p: &Prepared, server: &Server, expect_root: Option<[u8; 32]>) -> PullJob {
    let ticket = p.ticket(server.addr);
    let mut cfg = PullerConfig::new(ticket.exposure_id, Peer::Ip(server.addr), ticket.key);
    cfg.expected_cipher = ticket.cipher;
    cfg.expected_hash = ticket.hash;
    // As `rgtp pull` sets it: the root is checked by the driver.
    cfg.deferred_root = true;
    PullJob {
        cfg,
        backend: Backend::preferred(),
        restart: false,
        retries: 0,
        expect_root,
        sources: Vec::new(),
    }
}

fn discard(len: usize, expect_root: Option<[u8; 32]>) -> (Prepared, Result<Pulled, PullFileError>) {
    let data = common::data(len, len as u64 + 5);
    let link = loopback(false);
    let p = prepare(ExposerBuilder::new(), &link, &data);
    let server = Server::start(&p, link);
    let job = job(&p, &server, expect_root);
    let mut link = loopback(false);
    let r = pull_discard(
        &job,
        &mut link,
        &Clock::new(),
        &NoProgress,
        &AtomicBool::new(false),
    );
    server.stop();
    (p, r)
}

#[test]
fn a_discarding_pull_verifies_every_chunk_against_the_root() {
    // Above and below the count from which file pulls hash during the transfer, one
    // chunk, and none.
    for len in [8 << 20, 100_000, 1_200, 0] {
        let (p, r) = discard(len, None);
        let done = r.unwrap_or_else(|e| panic!("{len} bytes: {e:?}"));
        let count = len.div_ceil(1200) as u64;
        assert_eq!(done.manifest.total_size, len as u64);
        assert_eq!(done.manifest.merkle_root, p.exposure.root());
        assert_eq!(done.stats.chunks_received, count, "{len}: {:?}", done.stats);
        assert_eq!(done.stats.merkle_failures, 0);
        assert_eq!(done.stats.repaired_chunks, 0);
    }
}

#[test]
fn a_discarding_pull_of_another_root_fails() {
    let (_, r) = discard(2 << 20, Some([7; 32]));
    match r {
        Err(PullFileError::Pull(NotPulled {
            failure: PullFailure::Protocol(PullError::MerkleFailed),
            kept: None,
        })) => {}
        other => panic!("expected a Merkle failure with nothing kept, got {other:?}"),
    }
}
