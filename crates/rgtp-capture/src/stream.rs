//! [`StreamRecorder`]: wraps any [`StreamLink`] and writes what it sends and
//! receives to a capture file as one TCP connection.
//!
//! Stream links hand over bytes, not segments, so the recorder synthesises
//! them: a SYN, SYN-ACK, ACK handshake before the first byte (the local end
//! opening, unless [`StreamRecorder::opened_by_peer`] says otherwise), then
//! the bytes of each `send` and `recv` cut into segments of at most the
//! link's [`StreamLink::max_segment`] (1460 when it has none), with
//! sequence numbers counting the bytes of each direction and each segment
//! acknowledging everything received so far. The local write shutdown is a
//! FIN, the peer's end of stream a FIN (each acknowledged at once), a
//! broken connection (`ConnectionReset`, `ConnectionAborted`) an RST. IP
//! and TCP checksums are valid, so Wireshark follows the stream (`tshark -z
//! follow,tcp,raw,0`) and gives back the bytes exactly; addresses are the
//! link's peers, mapped as [`crate::frame::build_tcp`] says (an in-memory
//! pipe is `10.0.0.1:9000` ↔ `10.0.0.2:9000`).
//!
//! What the recording cannot show: how the bytes were really segmented,
//! retransmitted or acknowledged on the wire, or the real initial sequence
//! numbers (the recorder always starts from the same ones, so recordings are
//! deterministic). A failed write to the capture is returned from the call
//! that caused it.

use std::fs::File;
use std::io::{self, BufWriter, Write};
use std::path::Path;
use std::time::Duration;

use redgiant_base::stream::{StreamFraming, StreamLink, StreamRecv};
use redgiant_base::Peer;

use crate::frame::{self, TcpHeader, TCP_ACK, TCP_FIN, TCP_PSH, TCP_RST, TCP_SYN};
use crate::record::{create_capture_file, wall_clock, TimeSource};
use crate::CaptureWriter;

/// Initial sequence number of the end that opened the connection.
const OPENER_ISN: u32 = 0x1000_0000;
/// Initial sequence number of the end that accepted it.
const ACCEPTER_ISN: u32 = 0x2000_0000;
/// Segment size when the link names none.
const DEFAULT_MSS: usize = 1460;
/// Receive window written in every segment.
const WINDOW: u16 = 65535;
/// Records buffered at most before the capture is flushed.
const FLUSH_EVERY: u64 = 4096;

/// One direction's sequence space.
#[derive(Debug, Clone, Copy)]
struct Half {
    /// Sequence number of the next byte (or FIN).
    next: u32,
    /// FIN written.
    fin: bool,
}

/// A stream link that records what passes through it as TCP segments.
pub struct StreamRecorder<L, W: Write = BufWriter<File>> {
    inner: L,
    writer: CaptureWriter<W>,
    clock: TimeSource,
    frame: Vec<u8>,
    local: Peer,
    remote: Peer,
    mss: usize,
    opened_by_peer: bool,
    /// The handshake was written.
    open: bool,
    /// Local → remote.
    out: Half,
    /// Remote → local.
    back: Half,
    reset: bool,
    unflushed: u64,
}

impl<L, W: Write> std::fmt::Debug for StreamRecorder<L, W> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("StreamRecorder")
            .field("writer", &self.writer)
            .field("local", &self.local)
            .field("remote", &self.remote)
            .finish_non_exhaustive()
    }
}

impl<L: StreamLink> StreamRecorder<L> {
    /// Records `link` into a new file at `path`, timestamped by the wall clock.
    pub fn create(link: L, path: &Path) -> io::Result<Self> {
        Self::with_writer(link, create_capture_file(path)?, wall_clock())
    }
}

impl<L: StreamLink, W: Write> StreamRecorder<L, W> {
    /// Records `link` into `writer`, timestamped by `clock` (µs since the Unix epoch).
    pub fn with_writer(link: L, writer: W, clock: TimeSource) -> io::Result<Self> {
        let mss = link
            .max_segment()
            .unwrap_or(DEFAULT_MSS)
            .clamp(1, 65_535 - 60);
        Ok(StreamRecorder {
            local: link.local_peer(),
            remote: link.remote_peer(),
            inner: link,
            writer: CaptureWriter::new(writer)?,
            clock,
            frame: Vec::with_capacity(2048),
            mss,
            opened_by_peer: false,
            open: false,
            out: Half {
                next: OPENER_ISN,
                fin: false,
            },
            back: Half {
                next: ACCEPTER_ISN,
                fin: false,
            },
            reset: false,
            unflushed: 0,
        })
    }

    /// Records the handshake as opened by the peer (an accepted connection).
    /// Only before the first byte; later it changes nothing.
    pub fn opened_by_peer(mut self) -> Self {
        if !self.open {
            self.opened_by_peer = true;
            self.out.next = ACCEPTER_ISN;
            self.back.next = OPENER_ISN;
        }
        self
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

    /// Flushes the capture and returns the link and the writer.
    pub fn finish(mut self) -> io::Result<(L, W)> {
        self.ensure_open()?;
        Ok((self.inner, self.writer.into_inner()?))
    }

    /// Writes one segment from `local` (outgoing) or from the peer.
    fn segment(&mut self, ts: u64, outgoing: bool, flags: u8, payload: &[u8]) -> io::Result<()> {
        let (src, dst, mine, theirs) = if outgoing {
            (self.local, self.remote, self.out, self.back)
        } else {
            (self.remote, self.local, self.back, self.out)
        };
        let hdr = TcpHeader {
            seq: mine.next,
            ack: if flags & TCP_ACK != 0 { theirs.next } else { 0 },
            flags,
            window: WINDOW,
        };
        self.frame.clear();
        frame::build_tcp(src, dst, &hdr, payload, &mut self.frame);
        self.writer.write_frame(ts, &self.frame)?;
        let advance = payload.len() as u32 + u32::from(flags & (TCP_SYN | TCP_FIN) != 0);
        let half = if outgoing {
            &mut self.out
        } else {
            &mut self.back
        };
        half.next = half.next.wrapping_add(advance);
        self.unflushed += 1;
        Ok(())
    }

    /// Writes the handshake once, before anything else.
    fn ensure_open(&mut self) -> io::Result<()> {
        if self.open {
            return Ok(());
        }
        self.open = true;
        let ts = (self.clock)();
        let opener_is_local = !self.opened_by_peer;
        self.segment(ts, opener_is_local, TCP_SYN, &[])?;
        self.segment(ts, !opener_is_local, TCP_SYN | TCP_ACK, &[])?;
        self.segment(ts, opener_is_local, TCP_ACK, &[])
    }

    fn data(&mut self, outgoing: bool, bytes: &[u8]) -> io::Result<()> {
        self.ensure_open()?;
        let ts = (self.clock)();
        for chunk in bytes.chunks(self.mss) {
            self.segment(ts, outgoing, TCP_PSH | TCP_ACK, chunk)?;
        }
        self.maybe_flush()
    }

    fn fin(&mut self, outgoing: bool) -> io::Result<()> {
        self.ensure_open()?;
        let half = if outgoing { self.out } else { self.back };
        if half.fin || self.reset {
            return Ok(());
        }
        let ts = (self.clock)();
        self.segment(ts, outgoing, TCP_FIN | TCP_ACK, &[])?;
        if outgoing {
            self.out.fin = true;
        } else {
            self.back.fin = true;
        }
        // The other end acknowledges the FIN.
        self.segment(ts, !outgoing, TCP_ACK, &[])?;
        self.maybe_flush()
    }

    fn rst(&mut self, e: &io::Error) -> io::Result<()> {
        let broken = matches!(
            e.kind(),
            io::ErrorKind::ConnectionReset | io::ErrorKind::ConnectionAborted
        );
        if !broken || self.reset {
            return Ok(());
        }
        self.ensure_open()?;
        self.reset = true;
        let ts = (self.clock)();
        self.segment(ts, false, TCP_RST | TCP_ACK, &[])?;
        self.writer.flush()
    }

    fn maybe_flush(&mut self) -> io::Result<()> {
        if self.unflushed >= FLUSH_EVERY {
            self.unflushed = 0;
            self.writer.flush()?;
        }
        Ok(())
    }
}

impl<L: StreamLink, W: Write> StreamLink for StreamRecorder<L, W> {
    fn local_peer(&self) -> Peer {
        self.local
    }

    fn remote_peer(&self) -> Peer {
        self.remote
    }

    fn framing(&self) -> StreamFraming {
        self.inner.framing()
    }

    fn max_segment(&self) -> Option<usize> {
        self.inner.max_segment()
    }

    fn send(&mut self, data: &[u8], timeout: Option<Duration>) -> io::Result<usize> {
        match self.inner.send(data, timeout) {
            Ok(n) => {
                self.data(true, &data[..n])?;
                Ok(n)
            }
            Err(e) => {
                self.rst(&e)?;
                Err(e)
            }
        }
    }

    fn recv(&mut self, buf: &mut [u8], timeout: Option<Duration>) -> io::Result<StreamRecv> {
        match self.inner.recv(buf, timeout) {
            Ok(StreamRecv::Data(n)) => {
                self.data(false, &buf[..n])?;
                Ok(StreamRecv::Data(n))
            }
            Ok(StreamRecv::Closed) => {
                self.fin(false)?;
                Ok(StreamRecv::Closed)
            }
            Ok(StreamRecv::Timeout) => {
                if self.unflushed > 0 {
                    // Idle: a good moment to make the capture readable as it stands.
                    self.unflushed = 0;
                    self.writer.flush()?;
                }
                Ok(StreamRecv::Timeout)
            }
            Err(e) => {
                self.rst(&e)?;
                Err(e)
            }
        }
    }

    fn shutdown_write(&mut self) -> io::Result<()> {
        self.inner.shutdown_write()?;
        self.fin(true)
    }

    fn flush(&mut self) -> io::Result<()> {
        self.unflushed = 0;
        self.writer.flush()?;
        self.inner.flush()
    }
}

#[cfg(test)]
mod tests {
    use pnet_packet::ethernet::EthernetPacket;
    use pnet_packet::ipv4::Ipv4Packet;
    use pnet_packet::tcp::TcpPacket;
    use pnet_packet::Packet;
    use redgiant_base::stream::send_all;
    use redgiant_base::{Instant, ManualClock};
    use rgtp_link::{PipeConfig, PipeEnd};

    use super::*;

    /// (src port's host byte, flags, seq, ack, payload, checksums ok) per frame.
    fn segments(capture: &[u8]) -> Vec<(u8, u8, u32, u32, Vec<u8>)> {
        let mut out = Vec::new();
        let mut rest = &capture[24..];
        while rest.len() >= 16 {
            let len = u32::from_le_bytes(rest[8..12].try_into().unwrap()) as usize;
            let frame = &rest[16..16 + len];
            rest = &rest[16 + len..];
            let eth = EthernetPacket::new(frame).unwrap();
            let ip = Ipv4Packet::new(eth.payload()).unwrap();
            assert_eq!(pnet_packet::ipv4::checksum(&ip), ip.get_checksum());
            let tcp = TcpPacket::new(ip.payload()).unwrap();
            let sum =
                pnet_packet::tcp::ipv4_checksum(&tcp, &ip.get_source(), &ip.get_destination());
            assert_eq!(sum, tcp.get_checksum());
            out.push((
                ip.get_source().octets()[3],
                tcp.get_flags(),
                tcp.get_sequence(),
                tcp.get_acknowledgement(),
                tcp.payload().to_vec(),
            ));
        }
        out
    }

    #[test]
    fn sequence_numbers_follow_the_bytes() {
        let clock = ManualClock::new(Instant::ZERO);
        let (a, mut b) = PipeEnd::pair(PipeConfig::default().with_segment(4), 1, clock.clone());
        let mut rec = StreamRecorder::with_writer(a, Vec::new(), Box::new(|| 7)).unwrap();
        let zero = Some(Duration::ZERO);
        send_all(&mut rec, b"abcdefghij", zero).unwrap();
        let mut buf = [0u8; 64];
        assert_eq!(b.recv(&mut buf, zero).unwrap(), StreamRecv::Data(10));
        send_all(&mut b, b"xyz", zero).unwrap();
        b.shutdown_write().unwrap();
        assert_eq!(rec.recv(&mut buf, zero).unwrap(), StreamRecv::Data(3));
        assert_eq!(rec.recv(&mut buf, zero).unwrap(), StreamRecv::Closed);
        rec.shutdown_write().unwrap();
        let (_, bytes) = rec.finish().unwrap();
        let (s, r) = (OPENER_ISN, ACCEPTER_ISN);
        let (syn, synack, ack, pa, fa) = (
            TCP_SYN,
            TCP_SYN | TCP_ACK,
            TCP_ACK,
            TCP_PSH | TCP_ACK,
            TCP_FIN | TCP_ACK,
        );
        // 10.0.0.1 is A (local, the opener), 10.0.0.2 is B.
        assert_eq!(
            segments(&bytes),
            vec![
                (1, syn, s, 0, vec![]),
                (2, synack, r, s + 1, vec![]),
                (1, ack, s + 1, r + 1, vec![]),
                // The pipe's segment size (4) is the MSS.
                (1, pa, s + 1, r + 1, b"abcd".to_vec()),
                (1, pa, s + 5, r + 1, b"efgh".to_vec()),
                (1, pa, s + 9, r + 1, b"ij".to_vec()),
                (2, pa, r + 1, s + 11, b"xyz".to_vec()),
                (2, fa, r + 4, s + 11, vec![]),
                (1, ack, s + 11, r + 5, vec![]),
                (1, fa, s + 11, r + 5, vec![]),
                (2, ack, r + 5, s + 12, vec![]),
            ]
        );
    }

    #[test]
    fn accepted_connections_and_resets() {
        let clock = ManualClock::new(Instant::ZERO);
        let (a, b) = PipeEnd::pair(PipeConfig::default(), 1, clock);
        let mut rec = StreamRecorder::with_writer(a, Vec::new(), Box::new(|| 7))
            .unwrap()
            .opened_by_peer();
        b.kill();
        let e = rec.recv(&mut [0u8; 8], Some(Duration::ZERO)).unwrap_err();
        assert_eq!(e.kind(), io::ErrorKind::ConnectionReset);
        assert!(rec.send(b"x", Some(Duration::ZERO)).is_err());
        let (_, bytes) = rec.finish().unwrap();
        let segs = segments(&bytes);
        let flags: Vec<(u8, u8)> = segs.iter().map(|s| (s.0, s.1)).collect();
        assert_eq!(
            flags,
            vec![
                (2, TCP_SYN),
                (1, TCP_SYN | TCP_ACK),
                (2, TCP_ACK),
                (2, TCP_RST | TCP_ACK)
            ]
        );
        assert_eq!(segs[0].2, OPENER_ISN);
    }
}
