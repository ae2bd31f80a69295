//! A blocking gtUDP socket, used like [`std::net::UdpSocket`].
//!
//! [`GtudpSocket`] runs the sans-IO [`Gtudp`] endpoint with the stack's one driver
//! over a UDP link on the system clock. It has no thread of its own: the protocol
//! (repeating DATA and RECV, answering, timing out exchanges) makes progress inside
//! each call, so a socket that is never called does not answer its peers. Call
//! [`GtudpSocket::flush`] before dropping it to let open exchanges finish.

use std::collections::{HashMap, HashSet, VecDeque};
use std::fmt;
use std::io;
use std::net::{SocketAddr, ToSocketAddrs};
use std::time::Duration;

use redgiant_base::driver::{Application, Driver, Turn};
use redgiant_base::Peer;
use rgtp_link::udp::UdpLink;

use crate::endpoint::{Config, Datagram, Event, ExchangeId, FailReason, Gtudp, Stats};

/// Most received datagrams kept for [`GtudpSocket::recv_from`]; beyond it new ones are
/// dropped (and counted) even though their RECV went out.
pub const INBOX_LIMIT: usize = 65_536;

/// Why a confirmed send did not succeed.
#[derive(Debug)]
pub enum SendError {
    /// The exchange ended without the peer's RECV.
    Failed(FailReason),
    /// The socket failed.
    Io(io::Error),
}

impl fmt::Display for SendError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            SendError::Failed(FailReason::Attempts) => {
                f.write_str("no RECV from the peer after every repetition of the DATA")
            }
            SendError::Failed(FailReason::Deadline) => {
                f.write_str("no RECV from the peer before the deadline")
            }
            SendError::Failed(FailReason::TooLarge) => {
                f.write_str("the payload is larger than the profile allows; nothing was sent")
            }
            SendError::Failed(FailReason::NoIdentity) => {
                f.write_str("no free identity for the exchange; nothing was sent")
            }
            SendError::Io(e) => write!(f, "socket error: {e}"),
        }
    }
}

impl std::error::Error for SendError {}

impl From<io::Error> for SendError {
    fn from(e: io::Error) -> Self {
        SendError::Io(e)
    }
}

/// What the driver hands the socket: datagrams for `recv_from`, the outcome of the
/// exchanges someone waits for.
#[derive(Default)]
struct Inbox {
    datagrams: VecDeque<(Vec<u8>, SocketAddr)>,
    dropped: u64,
    awaited: HashSet<ExchangeId>,
    outcomes: HashMap<ExchangeId, Result<(), FailReason>>,
}

impl Application<Gtudp> for Inbox {
    type Output = ();
    type Error = io::Error;

    fn deliver(&mut self, d: Datagram<'_>) -> io::Result<()> {
        match d.from {
            Peer::Ip(from) if self.datagrams.len() < INBOX_LIMIT => {
                self.datagrams.push_back((d.payload.to_vec(), from));
            }
            _ => self.dropped += 1,
        }
        Ok(())
    }

    fn event(&mut self, _: &mut Gtudp, ev: Event) -> io::Result<Option<()>> {
        let (x, outcome) = match ev {
            Event::Confirmed(x) => (x, Ok(())),
            Event::Failed(x, why) => (x, Err(why)),
            Event::Received { .. } => return Ok(None),
        };
        if self.awaited.remove(&x) {
            self.outcomes.insert(x, outcome);
        }
        Ok(None)
    }
}

/// A gtUDP endpoint on a UDP socket.
pub struct GtudpSocket {
    driver: Driver<UdpLink>,
    endpoint: Gtudp,
    inbox: Inbox,
    read_timeout: Option<Duration>,
}

/// How long one driver turn may wait while a call waits for something.
const SLICE: Duration = Duration::from_millis(20);

impl GtudpSocket {
    /// Binds a UDP socket at `addr` and runs gtUDP with `config` on it.
    pub fn bind(addr: impl ToSocketAddrs, config: Config) -> io::Result<GtudpSocket> {
        let addr = addr
            .to_socket_addrs()?
            .next()
            .ok_or_else(|| io::Error::new(io::ErrorKind::InvalidInput, "no address to bind"))?;
        let link = UdpLink::bind(addr)?;
        let mut seed = [0u8; 8];
        ring::rand::SecureRandom::fill(&ring::rand::SystemRandom::new(), &mut seed)
            .map_err(|_| io::Error::other("no randomness for the identity counter"))?;
        Ok(GtudpSocket {
            driver: Driver::new(link),
            endpoint: Gtudp::seeded(config, u64::from_le_bytes(seed)),
            inbox: Inbox::default(),
            read_timeout: None,
        })
    }

    /// The bound address.
    pub fn local_addr(&self) -> SocketAddr {
        self.driver.link().local_addr()
    }

    /// How long [`GtudpSocket::recv_from`] waits (`None`: for ever).
    pub fn set_read_timeout(&mut self, t: Option<Duration>) {
        self.read_timeout = t;
    }

    /// Counters of the endpoint.
    pub fn stats(&self) -> Stats {
        self.endpoint.stats()
    }

    /// Datagrams dropped because nobody read them ([`INBOX_LIMIT`]).
    pub fn dropped(&self) -> u64 {
        self.inbox.dropped
    }

    fn turn(&mut self, wait: Duration) -> io::Result<()> {
        match self
            .driver
            .turn(&mut self.endpoint, &mut self.inbox, wait)?
        {
            Turn::Done(()) | Turn::Continue { .. } => Ok(()),
        }
    }

    /// Sends `buf` to `to` as one DATA, repeated until the peer's RECV or the
    /// profile's limits; returns at once. The outcome is not reported: use
    /// [`GtudpSocket::send_confirmed`] to learn it.
    pub fn send_to(&mut self, buf: &[u8], to: SocketAddr) -> io::Result<ExchangeId> {
        let x = self.endpoint.send_to(Peer::Ip(to), buf);
        self.turn(Duration::ZERO)?;
        Ok(x)
    }

    /// Sends `buf` to `to` and waits until the peer confirms it (its RECV), or the
    /// exchange fails: no RECV within `timeout`, or after every repetition.
    pub fn send_confirmed(
        &mut self,
        buf: &[u8],
        to: SocketAddr,
        timeout: Duration,
    ) -> Result<(), SendError> {
        let deadline = self.driver.clock().now() + timeout;
        let x = self.endpoint.send_confirmed(Peer::Ip(to), buf, deadline);
        self.inbox.awaited.insert(x);
        loop {
            if let Some(r) = self.inbox.outcomes.remove(&x) {
                return r.map_err(SendError::Failed);
            }
            // The endpoint fails the exchange at its deadline; the extra second only
            // guards against a clock that stalls.
            if self.driver.clock().now() > deadline + Duration::from_secs(1) {
                self.inbox.awaited.remove(&x);
                return Err(SendError::Failed(FailReason::Deadline));
            }
            self.turn(SLICE)?;
        }
    }

    /// Receives one datagram: copies its payload into `buf` (cut to `buf`'s length,
    /// as UDP does) and returns its full length and its sender. Waits up to the read
    /// timeout, then fails with [`io::ErrorKind::TimedOut`].
    pub fn recv_from(&mut self, buf: &mut [u8]) -> io::Result<(usize, SocketAddr)> {
        let end = self.read_timeout.map(|t| self.driver.clock().now() + t);
        loop {
            if let Some((d, from)) = self.inbox.datagrams.pop_front() {
                let n = d.len().min(buf.len());
                buf[..n].copy_from_slice(&d[..n]);
                return Ok((d.len(), from));
            }
            let wait = match end {
                Some(end) => {
                    let now = self.driver.clock().now();
                    if now >= end {
                        return Err(io::Error::new(
                            io::ErrorKind::TimedOut,
                            "no gtUDP datagram within the read timeout",
                        ));
                    }
                    end.saturating_since(now).min(SLICE)
                }
                None => SLICE,
            };
            self.turn(wait)?;
        }
    }

    /// Runs the protocol until every open exchange (ours and our peers' towards us)
    /// has ended, or `timeout` passed; returns whether everything ended.
    pub fn flush(&mut self, timeout: Duration) -> io::Result<bool> {
        let end = self.driver.clock().now() + timeout;
        while !self.endpoint.is_idle() {
            if self.driver.clock().now() >= end {
                return Ok(false);
            }
            self.turn(SLICE)?;
        }
        Ok(true)
    }
}
