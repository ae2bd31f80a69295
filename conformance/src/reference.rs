//! Our reference puller, in process, for the targets that need one.

use std::net::SocketAddr;
use std::time::Duration;

use rgtp::driver::{self, Clock, PullFailure};
use rgtp::sink::MemSink;
use rgtp::Ticket;
use rgtp_link::udp::UdpLink;
use rgtp_proto::{Peer, Puller, PullerConfig, SuiteFactory};

/// Pulls the exposure `ticket` names into memory with `factory`'s layers.
pub fn pull_with<S: SuiteFactory>(
    ticket: &Ticket,
    factory: S,
    proofs: bool,
    connect: Duration,
    idle: Duration,
) -> Result<Vec<u8>, PullFailure> {
    pull_configured(ticket, factory, connect, idle, |c| c.want_proofs = proofs)
}

/// [`pull_with`], the puller's configuration adjusted by `tweak` (a harness's
/// deliberately faulty puller turns features off this way).
pub fn pull_configured<S: SuiteFactory>(
    ticket: &Ticket,
    factory: S,
    connect: Duration,
    idle: Duration,
    tweak: impl FnOnce(&mut PullerConfig),
) -> Result<Vec<u8>, PullFailure> {
    let server = ticket.socket_addr()?;
    let bind: SocketAddr = match server {
        SocketAddr::V4(_) => "0.0.0.0:0".parse().expect("literal"),
        SocketAddr::V6(_) => "[::]:0".parse().expect("literal"),
    };
    let mut link = UdpLink::bind(bind)?;
    let mut cfg = PullerConfig::new(ticket.exposure_id, Peer::Ip(server), ticket.key.clone());
    cfg.expected_cipher = ticket.cipher;
    cfg.expected_hash = ticket.hash;
    cfg.handshake_timeout = connect;
    cfg.idle_timeout = idle;
    tweak(&mut cfg);
    let clock = Clock::new();
    let mut puller = Puller::new(cfg, factory, clock.now());
    let mut sink = MemSink::default();
    driver::pull(&mut puller, &mut link, &clock, &mut sink, |_| {})?;
    Ok(sink.to_vec())
}

/// Pulls with our full suite.
pub fn pull(ticket: &Ticket, connect: Duration, idle: Duration) -> Result<Vec<u8>, PullFailure> {
    pull_with(ticket, rgtp::DynSuite, false, connect, idle)
}
