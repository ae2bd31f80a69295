//! [`Recorder`]: wraps any link and writes every datagram it sends or
//! receives to a capture file.

use std::fs::File;
use std::io::{self, BufWriter, Write};
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};
use std::path::Path;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use redgiant_base::{Peer, Transmit};
use rgtp_link::{Capabilities, Framing, Link, Received, Vlan};

use crate::CaptureWriter;

/// Where recorded timestamps come from: µs since the Unix epoch.
pub type TimeSource = Box<dyn FnMut() -> u64 + Send>;

/// A new capture file at `path`, buffered; an error names the file and the fix.
pub(crate) fn create_capture_file(path: &Path) -> io::Result<BufWriter<File>> {
    let file = File::create(path).map_err(|e| {
        io::Error::new(
            e.kind(),
            format!(
                "cannot create capture file {}: {e} (check the directory exists and is writable)",
                path.display()
            ),
        )
    })?;
    Ok(BufWriter::with_capacity(1 << 20, file))
}

/// The wall clock, as a [`TimeSource`].
pub fn wall_clock() -> TimeSource {
    Box::new(|| {
        SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map_or(0, |d| d.as_micros() as u64)
    })
}

/// A link that records what passes through it.
///
/// Raw-Ethernet links are recorded as the frames they send (with the link's
/// 802.1Q tag); UDP and in-memory links as synthesised Ethernet/IP/UDP frames
/// (see [`crate::frame`]). A UDP socket bound to an unspecified address
/// learns the local address each peer's datagrams arrive at (`IP_PKTINFO`)
/// and the recorder writes that; before anything arrived from a peer it
/// writes the loopback address for a peer on loopback and the unspecified
/// address otherwise. A failed write to the capture is returned from `send`/`recv`,
/// so a full disk stops the transfer instead of leaving a silently partial capture.
pub struct Recorder<L, W: Write = BufWriter<File>> {
    inner: L,
    writer: CaptureWriter<W>,
    clock: TimeSource,
    vlan: Option<Vlan>,
    /// Records written since the last flush.
    unflushed: u64,
}

/// Records buffered at most before the capture is flushed, so a capture in
/// progress can be read and a killed process loses little.
const FLUSH_EVERY: u64 = 4096;

impl<L, W: Write> std::fmt::Debug for Recorder<L, W> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Recorder")
            .field("writer", &self.writer)
            .field("vlan", &self.vlan)
            .finish_non_exhaustive()
    }
}

impl<L: Link> Recorder<L> {
    /// Records `link` into a new file at `path`, timestamped by the wall clock.
    pub fn create(link: L, path: &Path) -> io::Result<Self> {
        Self::with_writer(link, create_capture_file(path)?, wall_clock())
    }
}

impl<L: Link, W: Write> Recorder<L, W> {
    /// Records `link` into `writer`, timestamped by `clock`.
    pub fn with_writer(link: L, writer: W, clock: TimeSource) -> io::Result<Self> {
        let vlan = match link.framing() {
            Framing::Ethernet { vlan } => vlan,
            Framing::Udp | Framing::Memory => None,
        };
        Ok(Recorder {
            inner: link,
            writer: CaptureWriter::new(writer)?,
            clock,
            vlan,
            unflushed: 0,
        })
    }

    /// The wrapped link.
    pub fn get_ref(&self) -> &L {
        &self.inner
    }

    /// The wrapped link, mutably.
    pub fn get_mut(&mut self) -> &mut L {
        &mut self.inner
    }

    /// Records written so far.
    pub fn records(&self) -> u64 {
        self.writer.records()
    }

    fn wrote(&mut self, n: u64) -> io::Result<()> {
        self.unflushed += n;
        if self.unflushed >= FLUSH_EVERY {
            self.unflushed = 0;
            self.writer.flush()?;
        }
        Ok(())
    }

    /// Flushes the capture and returns the link and the writer.
    pub fn finish(self) -> io::Result<(L, W)> {
        Ok((self.inner, self.writer.into_inner()?))
    }

    /// Our address as seen by `peer`.
    fn local_for(&self, peer: Peer) -> Peer {
        match (self.inner.local_peer(), peer) {
            (Peer::Ip(local), Peer::Ip(remote)) if local.ip().is_unspecified() => {
                if let Some(ip) = self.inner.local_ip_for(&peer) {
                    return Peer::Ip(SocketAddr::new(ip, local.port()));
                }
                let ip = match (local.ip(), remote.ip()) {
                    (IpAddr::V4(_), r) if r.is_loopback() => IpAddr::V4(Ipv4Addr::LOCALHOST),
                    (IpAddr::V6(_), IpAddr::V4(r)) if r.is_loopback() => {
                        IpAddr::V4(Ipv4Addr::LOCALHOST)
                    }
                    (IpAddr::V6(_), IpAddr::V6(r)) if r.is_loopback() => {
                        IpAddr::V6(Ipv6Addr::LOCALHOST)
                    }
                    (IpAddr::V6(_), r) if r.to_canonical().is_loopback() => {
                        IpAddr::V4(Ipv4Addr::LOCALHOST)
                    }
                    (IpAddr::V6(_), IpAddr::V4(_)) => IpAddr::V4(Ipv4Addr::UNSPECIFIED),
                    (l, _) => l,
                };
                Peer::Ip(SocketAddr::new(ip, local.port()))
            }
            (local, _) => local,
        }
    }
}

impl<L: Link, W: Write> Link for Recorder<L, W> {
    fn capabilities(&self) -> Capabilities {
        self.inner.capabilities()
    }

    fn local_peer(&self) -> Peer {
        self.inner.local_peer()
    }

    fn framing(&self) -> Framing {
        self.inner.framing()
    }

    fn flush(&mut self) -> io::Result<()> {
        self.unflushed = 0;
        self.writer.flush()?;
        self.inner.flush()
    }

    fn last_recv_vlans(&self) -> Option<&[Option<Vlan>]> {
        self.inner.last_recv_vlans()
    }

    fn local_ip_for(&self, peer: &Peer) -> Option<std::net::IpAddr> {
        self.inner.local_ip_for(peer)
    }

    fn lend(&mut self, memory: std::sync::Arc<dyn redgiant_base::link::LentMemory>) -> bool {
        self.inner.lend(memory)
    }

    fn send(&mut self, transmit: &Transmit, buf: &[u8]) -> io::Result<()> {
        let ts = (self.clock)();
        let src = self.local_for(transmit.destination);
        let mut n = 0;
        for d in transmit.datagrams(buf) {
            self.writer
                .write_datagram(ts, src, transmit.destination, self.vlan, d)?;
            n += 1;
        }
        self.wrote(n)?;
        self.inner.send(transmit, buf)
    }

    fn recv(
        &mut self,
        buf: &mut [u8],
        out: &mut Vec<Received>,
        timeout: Option<Duration>,
    ) -> io::Result<usize> {
        let first = out.len();
        let n = self.inner.recv(buf, out, timeout)?;
        if n > 0 {
            let ts = (self.clock)();
            // Received frames are recorded with the tag they arrived with, where the
            // link reports it (raw Ethernet), else with the link's own.
            let tags = self.inner.last_recv_vlans().filter(|t| t.len() == n);
            for (i, r) in out[first..].iter().enumerate() {
                let dst = self.local_for(r.from);
                let vlan = tags.map_or(self.vlan, |t| t[i]);
                self.writer.write_datagram(
                    ts,
                    r.from,
                    dst,
                    vlan,
                    &buf[r.offset..r.offset + r.len],
                )?;
            }
            self.wrote(n as u64)?;
        } else if self.unflushed > 0 {
            // Idle: a good moment to make the capture readable as it stands.
            self.unflushed = 0;
            self.writer.flush()?;
        }
        Ok(n)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use rgtp_link::{ImpairmentConfig, MemLink};
    use std::sync::atomic::{AtomicU64, Ordering};
    use std::sync::Arc;

    struct Bytes(&'static [u8]);

    impl rgtp_link::LentMemory for Bytes {
        fn bytes(&self) -> &[u8] {
            self.0
        }
    }

    /// A recorder passes lent memory to the link it records: a UDP link takes it,
    /// an in-memory one declines.
    #[test]
    fn lent_memory_passes_to_the_recorded_link() {
        let lent: Arc<dyn rgtp_link::LentMemory> = Arc::new(Bytes(b"sealed"));
        let clock = || -> TimeSource { Box::new(|| 0) };
        let udp = rgtp_link::UdpLink::bind("127.0.0.1:0".parse().unwrap()).unwrap();
        let mut rec = Recorder::with_writer(udp, Vec::new(), clock()).unwrap();
        assert!(rec.lend(Arc::clone(&lent)));
        let (mem, _) = MemLink::pair(ImpairmentConfig::default(), 1);
        let mut rec = Recorder::with_writer(mem, Vec::new(), clock()).unwrap();
        assert!(!rec.lend(lent));
    }

    #[test]
    fn records_both_directions_of_a_mem_link() {
        let (a, mut b) = MemLink::pair(ImpairmentConfig::default(), 1);
        let t = Arc::new(AtomicU64::new(1_000));
        let t2 = Arc::clone(&t);
        let clock: TimeSource = Box::new(move || t2.fetch_add(10, Ordering::Relaxed));
        let mut rec = Recorder::with_writer(a, Vec::new(), clock).unwrap();
        let dest = b.local_peer();
        let payload = b"\x01\x08\x00\x06hi".to_vec();
        let tx = Transmit {
            destination: dest,
            size: payload.len(),
            segment_size: None,
        };
        rec.send(&tx, &payload).unwrap();
        let mut buf = vec![0u8; 4096];
        let mut out = Vec::new();
        assert_eq!(
            b.recv(&mut buf, &mut out, Some(Duration::from_secs(1)))
                .unwrap(),
            1
        );
        let back = Transmit {
            destination: rec.local_peer(),
            size: 3,
            segment_size: None,
        };
        b.send(&back, b"abc").unwrap();
        out.clear();
        assert_eq!(
            rec.recv(&mut buf, &mut out, Some(Duration::from_secs(1)))
                .unwrap(),
            1
        );
        let (_, bytes) = rec.finish().unwrap();
        let cap = crate::read(&bytes).unwrap();
        let ds: Vec<_> = cap.datagrams().collect();
        assert_eq!(ds.len(), 2);
        assert_eq!(ds[0].0.ts_us, 1_000);
        assert_eq!(ds[0].1.payload, payload);
        assert_eq!(ds[1].1.payload, b"abc");
        assert_eq!(ds[0].1.src, ds[1].1.dst);
        assert_eq!(ds[0].1.dst, ds[1].1.src);
    }
}
