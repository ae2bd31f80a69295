//! Several UDP sockets as one link: one transfer spread over N channels.
//!
//! A [`Channels`] link sends each transmit on the next socket in turn and
//! receives from all of them, so one endpoint's traffic leaves from N source
//! ports. Paths that balance by flow (ECMP routers, NIC receive queues, an
//! exposer serving one port from N threads with `SO_REUSEPORT`) then carry one
//! transfer on N flows. The endpoint sees one link: datagrams from every socket
//! come in as if from one, and it answers whoever sent them.

use std::io;
use std::net::SocketAddr;
use std::time::Duration;

use crate::sys::poll_readable;
use crate::udp::{UdpConfig, UdpLink};
use crate::{Capabilities, Framing, Link, Peer, Received, Transmit};

/// Most channels one link opens.
pub const MAX_CHANNELS: usize = 64;

/// N UDP sockets used as one [`Link`]. See the [module docs](self).
#[derive(Debug)]
pub struct Channels {
    links: Vec<UdpLink>,
    /// The socket the next transmit goes out on.
    next_send: usize,
    /// The socket read first by the next receive (so none is starved).
    next_recv: usize,
    sent: Vec<u64>,
    received: Vec<u64>,
}

impl Channels {
    /// Binds `n` sockets (1 to [`MAX_CHANNELS`]) at `addr` with `config`. With port 0
    /// each gets a port of its own; with a fixed port, `config.reuse_port` must be set.
    pub fn bind(addr: SocketAddr, n: usize, config: UdpConfig) -> io::Result<Channels> {
        if n == 0 || n > MAX_CHANNELS {
            return Err(io::Error::new(
                io::ErrorKind::InvalidInput,
                format!("{n} channels: between 1 and {MAX_CHANNELS}"),
            ));
        }
        let links = (0..n)
            .map(|_| UdpLink::bind_with(addr, config.clone()))
            .collect::<io::Result<Vec<_>>>()?;
        Ok(Channels {
            links,
            next_send: 0,
            next_recv: 0,
            sent: vec![0; n],
            received: vec![0; n],
        })
    }

    /// The sockets' addresses, in channel order.
    pub fn local_addrs(&self) -> Vec<SocketAddr> {
        self.links.iter().map(UdpLink::local_addr).collect()
    }

    /// Transmits sent on each channel.
    pub fn sent(&self) -> &[u64] {
        &self.sent
    }

    /// Datagrams received on each channel.
    pub fn received(&self) -> &[u64] {
        &self.received
    }
}

impl Link for Channels {
    fn capabilities(&self) -> Capabilities {
        self.links[0].capabilities()
    }

    fn local_peer(&self) -> Peer {
        self.links[0].local_peer()
    }

    fn framing(&self) -> Framing {
        Framing::Udp
    }

    fn local_ip_for(&self, peer: &Peer) -> Option<std::net::IpAddr> {
        self.links[0].local_ip_for(peer)
    }

    fn lend(&mut self, memory: std::sync::Arc<dyn crate::LentMemory>) -> bool {
        let mut all = true;
        for l in &mut self.links {
            all &= l.lend(std::sync::Arc::clone(&memory));
        }
        all
    }

    fn send(&mut self, transmit: &Transmit, buf: &[u8]) -> io::Result<()> {
        let i = self.next_send;
        self.next_send = (i + 1) % self.links.len();
        self.sent[i] += 1;
        self.links[i].send(transmit, buf)
    }

    fn recv(
        &mut self,
        buf: &mut [u8],
        out: &mut Vec<Received>,
        timeout: Option<Duration>,
    ) -> io::Result<usize> {
        let deadline = timeout.map(|t| std::time::Instant::now() + t);
        let n = self.links.len();
        loop {
            // Every socket once, starting after the one read first last time; stop at
            // the first that had something (the next call starts after it).
            for k in 0..n {
                let i = (self.next_recv + k) % n;
                let got = self.links[i].recv(buf, out, Some(Duration::ZERO))?;
                if got > 0 {
                    self.received[i] += got as u64;
                    self.next_recv = (i + 1) % n;
                    return Ok(got);
                }
            }
            let left = match deadline {
                None => None,
                Some(d) => {
                    let left = d.saturating_duration_since(std::time::Instant::now());
                    if left.is_zero() {
                        return Ok(0);
                    }
                    Some(left)
                }
            };
            let fds: Vec<_> = self.links.iter().map(UdpLink::raw_fd).collect();
            poll_readable(&fds, left)?;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::HashSet;

    fn loopback() -> SocketAddr {
        "127.0.0.1:0".parse().unwrap()
    }

    #[test]
    fn transmits_go_round_the_channels_and_answers_come_back_on_any() {
        let mut ch = Channels::bind(loopback(), 3, UdpConfig::default()).unwrap();
        let mut peer = UdpLink::bind(loopback()).unwrap();
        let to = Peer::Ip(peer.local_addr());
        for k in 0..9u8 {
            let t = Transmit {
                destination: to,
                size: 1,
                segment_size: None,
            };
            ch.send(&t, &[k]).unwrap();
        }
        assert_eq!(ch.sent(), [3, 3, 3]);
        // The peer saw three source ports, three datagrams each, and answers each one.
        let mut buf = vec![0u8; 1 << 16];
        let mut got = Vec::new();
        while got.len() < 9 {
            let mut out = Vec::new();
            peer.recv(&mut buf, &mut out, Some(Duration::from_secs(5)))
                .unwrap();
            for r in &out {
                got.push((r.from, buf[r.offset..r.offset + r.len].to_vec()));
            }
        }
        let sources: HashSet<_> = got.iter().map(|(s, _)| *s).collect();
        let mine: HashSet<_> = ch.local_addrs().into_iter().map(Peer::Ip).collect();
        assert_eq!(sources, mine);
        for (src, data) in &got {
            let t = Transmit {
                destination: *src,
                size: 1,
                segment_size: None,
            };
            peer.send(&t, data).unwrap();
        }
        let mut back = Vec::new();
        while back.len() < 9 {
            let mut out = Vec::new();
            ch.recv(&mut buf, &mut out, Some(Duration::from_secs(5)))
                .unwrap();
            back.extend(out.iter().map(|r| buf[r.offset]));
        }
        back.sort_unstable();
        assert_eq!(back, (0..9).collect::<Vec<u8>>());
        assert_eq!(ch.received(), [3, 3, 3]);
        // Nothing more: a receive times out empty.
        let mut out = Vec::new();
        let n = ch
            .recv(&mut buf, &mut out, Some(Duration::from_millis(30)))
            .unwrap();
        assert_eq!(n, 0);
    }

    /// Memory lent to the channels is lent to every socket: a batch within it
    /// leaves from its pages whichever channel sends it.
    #[test]
    fn lent_memory_reaches_every_channel() {
        let mut ch = Channels::bind(loopback(), 2, UdpConfig::default()).unwrap();
        if ch.links[0].max_gso_segments() < 52 {
            eprintln!("skipping: no GSO here");
            return;
        }
        let mut peer = UdpLink::bind(loopback()).unwrap();
        let bytes: Vec<u8> = (0..52 * 1240u32).map(|i| (i % 241) as u8).collect();
        let lent = crate::lend::tests::Mapped::with(&bytes);
        assert!(ch.lend(lent.clone()));
        let t = Transmit {
            destination: Peer::Ip(peer.local_addr()),
            size: bytes.len(),
            segment_size: Some(1240),
        };
        ch.send(&t, &lent.0).unwrap();
        ch.send(&t, &lent.0).unwrap();
        let lent_batches: Vec<u64> = ch.links.iter().map(|l| l.stats().lent_batches).collect();
        assert_eq!(lent_batches, [1, 1]);
        let mut buf = vec![0u8; 1 << 16];
        let mut got = Vec::new();
        while got.len() < 104 {
            let mut out = Vec::new();
            peer.recv(&mut buf, &mut out, Some(Duration::from_secs(5)))
                .unwrap();
            got.extend(out.iter().map(|r| buf[r.offset..r.offset + r.len].to_vec()));
        }
        assert!(got[..52].concat() == bytes && got[52..].concat() == bytes);
    }

    #[test]
    fn channel_counts_are_checked() {
        assert!(Channels::bind(loopback(), 0, UdpConfig::default()).is_err());
        assert!(Channels::bind(loopback(), MAX_CHANNELS + 1, UdpConfig::default()).is_err());
    }

    #[test]
    fn sockets_sharing_a_port_need_reuse_port() {
        let first = UdpLink::bind(loopback()).unwrap();
        let taken = first.local_addr();
        assert!(Channels::bind(taken, 2, UdpConfig::default()).is_err());
        drop(first);
        let shared = UdpConfig {
            reuse_port: true,
            ..UdpConfig::default()
        };
        let a = UdpLink::bind_with(loopback(), shared.clone()).unwrap();
        let ch = Channels::bind(a.local_addr(), 2, shared).unwrap();
        assert!(ch.local_addrs().iter().all(|x| *x == a.local_addr()));
    }
}
