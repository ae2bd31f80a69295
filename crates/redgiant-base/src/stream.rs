//! The byte-stream link trait: one connection's ordered bytes to and from a driver.
//!
//! A [`StreamLink`] is one established connection (a TCP socket, an in-memory
//! pipe, a recorder around either). Like the datagram [`crate::link::Link`],
//! only drivers see it; a [`crate::StreamEndpoint`] only ever sees bytes, the
//! close and `now`.
//!
//! # Contract
//!
//! - **Order.** Bytes come out of [`StreamLink::recv`] on one end exactly once
//!   and in the order [`StreamLink::send`] accepted them on the other: no loss,
//!   no duplicate, no reordering, whatever the link does underneath. A link
//!   that cannot keep that promise breaks the connection instead (an error).
//! - **Receiving.** [`StreamLink::recv`] waits up to its timeout and answers
//!   one of three things, which never blur: [`StreamRecv::Data`] (`n > 0`
//!   bytes at the start of the buffer), [`StreamRecv::Timeout`] (nothing yet,
//!   ask again) or [`StreamRecv::Closed`] (the peer shut down its write side
//!   after the last byte: orderly end of stream; every later call says
//!   `Closed` again). A broken connection (reset, killed, aborted) is an
//!   `Err`, never `Closed`, so a driver tells a clean end from a failure:
//!   `Closed` becomes `handle_close(now, false)`, an error `handle_close(now, true)`.
//!   An empty buffer gives `Err(InvalidInput)`.
//! - **Sending.** [`StreamLink::send`] accepts a prefix of its input, possibly
//!   shorter than the input (a partial write, as `write(2)` does), waiting up
//!   to its timeout for room when none is free. `Ok(0)` for a non-empty input
//!   means the timeout passed with no room; it is not an error. A driver
//!   sending a transmit retries with the rest until all is accepted. After
//!   [`StreamLink::shutdown_write`], or once the connection broke, `send` fails.
//! - **Timeouts.** `None` waits as long as it takes; `Some(Duration::ZERO)`
//!   does not wait at all. Links never sleep past a timeout by more than the
//!   scheduler's slack, and never return early with `Timeout` (a wait
//!   interrupted by a signal resumes).
//! - **Shutdown.** [`StreamLink::shutdown_write`] sends the end of stream
//!   after every byte already accepted (TCP's FIN); the peer reads them all,
//!   then `Closed`. Reading stays possible. Dropping a link closes it.
//!
//! # Driving one
//!
//! A driver running a [`crate::StreamEndpoint`] over a stream link with a
//! real clock loops: wait in `recv` with the endpoint's next deadline as the
//! timeout; feed what arrived to `handle_bytes` (keeping the unconsumed tail
//! for the next call); call `handle_timeout` when the deadline passed; then
//! drain `poll_transmit`, writing each transmit's bytes with `send` until all
//! were accepted. Both peers blocked in `send` on full buffers, each waiting
//! for the other to read, deadlock: a driver with much to send passes `send`
//! a bounded timeout and reads (`recv` with `Some(Duration::ZERO)`) between
//! partial writes. Bytes written by `send` may sit in the link until
//! [`StreamLink::flush`] only for links that say so (recorders flush their
//! capture file there); sockets and pipes send at once.

use std::io;
use std::time::Duration;

use crate::Peer;

/// What one [`StreamLink::recv`] found.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[must_use]
pub enum StreamRecv {
    /// `n > 0` bytes were written at the start of the buffer.
    Data(usize),
    /// The timeout passed with nothing to read; the connection is still up.
    Timeout,
    /// The peer shut down its write side and every byte before it was read:
    /// the orderly end of the stream.
    Closed,
}

/// How a stream link's bytes look on the wire, so a recorder can write the
/// segments that were (or would have been) sent.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum StreamFraming {
    /// A TCP connection: recorded as TCP segments between the real addresses.
    Tcp,
    /// No wire (in-memory pipes): recorded as TCP between synthetic hosts.
    Memory,
}

/// One connection's ordered byte stream. See the [module docs](self) for the contract.
pub trait StreamLink {
    /// This end's address.
    fn local_peer(&self) -> Peer;

    /// The other end's address.
    fn remote_peer(&self) -> Peer;

    /// How the bytes travel (for recorders).
    fn framing(&self) -> StreamFraming {
        StreamFraming::Memory
    }

    /// Largest number of bytes a recorder should put in one synthesised
    /// segment (TCP's MSS), when the link knows it.
    fn max_segment(&self) -> Option<usize> {
        None
    }

    /// Accepts a prefix of `data`, waiting up to `timeout` (`None`: as long
    /// as it takes; zero: not at all) for room when none is free. Returns how
    /// many bytes were accepted: `0` only if `data` is empty or the timeout
    /// passed. Fails once the write side was shut down or the connection broke.
    fn send(&mut self, data: &[u8], timeout: Option<Duration>) -> io::Result<usize>;

    /// Waits up to `timeout` (`None`: as long as it takes; zero: not at all)
    /// for bytes, then reads as many as are there and fit in `buf`.
    fn recv(&mut self, buf: &mut [u8], timeout: Option<Duration>) -> io::Result<StreamRecv>;

    /// Ends the stream towards the peer after the bytes already accepted.
    /// Calling it again does nothing.
    fn shutdown_write(&mut self) -> io::Result<()>;

    /// Writes out anything the link buffers (a recorder's capture file).
    fn flush(&mut self) -> io::Result<()> {
        Ok(())
    }
}

impl<L: StreamLink + ?Sized> StreamLink for Box<L> {
    fn local_peer(&self) -> Peer {
        (**self).local_peer()
    }
    fn remote_peer(&self) -> Peer {
        (**self).remote_peer()
    }
    fn framing(&self) -> StreamFraming {
        (**self).framing()
    }
    fn max_segment(&self) -> Option<usize> {
        (**self).max_segment()
    }
    fn send(&mut self, data: &[u8], timeout: Option<Duration>) -> io::Result<usize> {
        (**self).send(data, timeout)
    }
    fn recv(&mut self, buf: &mut [u8], timeout: Option<Duration>) -> io::Result<StreamRecv> {
        (**self).recv(buf, timeout)
    }
    fn shutdown_write(&mut self) -> io::Result<()> {
        (**self).shutdown_write()
    }
    fn flush(&mut self) -> io::Result<()> {
        (**self).flush()
    }
}

/// Sends all of `data`, retrying partial writes, each wait bounded by
/// `timeout`. Fails with `TimedOut` if one wait passes with no room.
pub fn send_all<L: StreamLink + ?Sized>(
    link: &mut L,
    mut data: &[u8],
    timeout: Option<Duration>,
) -> io::Result<()> {
    while !data.is_empty() {
        match link.send(data, timeout)? {
            0 => {
                return Err(io::Error::new(
                    io::ErrorKind::TimedOut,
                    format!("no room to send for {timeout:?}"),
                ))
            }
            n => data = &data[n..],
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A link that takes at most 3 bytes per send and echoes them back.
    struct Trickle {
        buf: Vec<u8>,
        shut: bool,
    }

    impl StreamLink for Trickle {
        fn local_peer(&self) -> Peer {
            Peer::Mem(0)
        }
        fn remote_peer(&self) -> Peer {
            Peer::Mem(1)
        }
        fn send(&mut self, data: &[u8], _: Option<Duration>) -> io::Result<usize> {
            if self.shut {
                return Err(io::ErrorKind::BrokenPipe.into());
            }
            let n = data.len().min(3);
            self.buf.extend_from_slice(&data[..n]);
            Ok(n)
        }
        fn recv(&mut self, buf: &mut [u8], _: Option<Duration>) -> io::Result<StreamRecv> {
            if self.buf.is_empty() {
                return Ok(if self.shut {
                    StreamRecv::Closed
                } else {
                    StreamRecv::Timeout
                });
            }
            let n = buf.len().min(self.buf.len());
            buf[..n].copy_from_slice(&self.buf[..n]);
            self.buf.drain(..n);
            Ok(StreamRecv::Data(n))
        }
        fn shutdown_write(&mut self) -> io::Result<()> {
            self.shut = true;
            Ok(())
        }
    }

    #[test]
    fn send_all_retries_partial_writes_through_a_box() {
        let mut link: Box<dyn StreamLink> = Box::new(Trickle {
            buf: Vec::new(),
            shut: false,
        });
        assert_eq!(link.framing(), StreamFraming::Memory);
        send_all(&mut link, b"hello world", None).unwrap();
        let mut buf = [0u8; 64];
        assert_eq!(link.recv(&mut buf, None).unwrap(), StreamRecv::Data(11));
        assert_eq!(&buf[..11], b"hello world");
        assert_eq!(link.recv(&mut buf, None).unwrap(), StreamRecv::Timeout);
        link.shutdown_write().unwrap();
        assert_eq!(link.recv(&mut buf, None).unwrap(), StreamRecv::Closed);
        assert!(send_all(&mut link, b"x", None).is_err());
    }
}
