//! UDP sends without a copy, from memory lent to the link ([`LentMemory`]).
//!
//! A `sendmsg` copies every byte it sends into the kernel's buffers: for an
//! exposer, whose sealed store already holds its datagrams back to back, that
//! copy is most of what serving costs. A GSO batch that lies within lent memory
//! goes out in three calls instead: `vmsplice` puts references to its pages into a
//! pipe, a `sendmsg` of no bytes with `MSG_MORE` corks the socket on the
//! destination and the segment size (`UDP_SEGMENT`), and `splice` moves the pages
//! from the pipe onto the corked datagram, which leaves when the last byte is in.
//! The kernel then reads the datagrams from the lent pages themselves: a receiver
//! on this host copies them out of those pages, a NIC reads them from there.
//!
//! The corked datagram starts empty because it can hold at most 17 pieces of
//! pages (`MAX_SKB_FRAGS`), and a batch of up to 65,507 bytes spans 17 pages
//! where it does not start on a page boundary: a first datagram copied in would
//! take a piece of its own and leave one page too few.
//!
//! Whatever goes wrong leaves the socket as a plain send would: the kernel
//! discards a corked datagram when adding to it fails, or when sending it does;
//! the cork is then released (`UDP_CORK` off, which sends nothing where nothing
//! is left), the pipe is dropped with whatever it still held, and the caller
//! sends the batch again by copying. Batches larger than one datagram may be are
//! never lent, so no part of one is refused before the kernel has taken it in.
//! Where the pipe cannot be had at all (no `vmsplice`, pipes too small), lending
//! stops for good and every send copies.

use std::collections::BTreeMap;
use std::io;
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd, RawFd};
use std::sync::Arc;

use socket2::SockAddr;

use crate::LentMemory;

/// Smallest batch worth the two extra calls: below this, copying costs less.
pub(crate) const LEND_MIN_BYTES: usize = 16 << 10;

/// Largest batch lent: the most one UDP datagram over IPv4 may carry.
const LEND_MAX_BYTES: usize = 65_507;

/// Pipe capacity asked for: room for the pages of the largest GSO batch (64 KiB,
/// 17 pages at most when unaligned) several times over.
const PIPE_BYTES: libc::c_int = 256 << 10;

/// Memory lent to one socket, and the pipe its pages go through.
#[derive(Default)]
pub(crate) struct Lender {
    /// Lent memory by start address (regions do not overlap: each is memory of
    /// its own), so a send finds its region in a few steps among thousands.
    lent: BTreeMap<usize, Arc<dyn LentMemory>>,
    pipe: Option<Pipe>,
    /// Lending failed in a way that will not mend: every send copies.
    off: bool,
}

impl std::fmt::Debug for Lender {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Lender")
            .field("regions", &self.lent.len())
            .field("off", &self.off)
            .finish()
    }
}

/// What became of a batch offered to [`Lender::send`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Lent {
    /// Sent from the lent pages.
    Sent,
    /// Not lent memory, or too small: the caller copies, nothing was tried.
    Skipped,
    /// Tried and failed, the socket left as it was: the caller copies.
    Failed,
}

struct Pipe {
    read: OwnedFd,
    write: OwnedFd,
    /// Page references the pipe holds at most.
    slots: usize,
}

impl Lender {
    /// Lends `memory`; false if lending has stopped on this socket.
    pub(crate) fn lend(&mut self, memory: Arc<dyn LentMemory>) -> bool {
        if self.off {
            return false;
        }
        self.lent.insert(memory.bytes().as_ptr() as usize, memory);
        true
    }

    /// Whether `bytes` lie wholly within one lent region.
    fn covers(&self, bytes: &[u8]) -> bool {
        let start = bytes.as_ptr() as usize;
        let end = start + bytes.len();
        self.lent
            .range(..=start)
            .next_back()
            .is_some_and(|(&from, m)| end <= from + m.bytes().len())
    }

    /// Sends `batch` (datagrams of `segment` bytes, the last one possibly shorter)
    /// to `destination` on `socket` from the lent pages, if it lies within lent
    /// memory and is worth it.
    pub(crate) fn send(
        &mut self,
        socket: RawFd,
        destination: &SockAddr,
        batch: &[u8],
        segment: usize,
    ) -> Lent {
        if self.off
            || !(LEND_MIN_BYTES..=LEND_MAX_BYTES).contains(&batch.len())
            || segment >= batch.len()
            || !self.covers(batch)
        {
            return Lent::Skipped;
        }
        let Ok(segment) = u16::try_from(segment) else {
            return Lent::Skipped;
        };
        let page = page_size();
        let start = batch.as_ptr() as usize;
        let pages = (start + batch.len()).div_ceil(page) - start / page;
        let pipe = match self.pipe.take() {
            Some(p) => p,
            None => match Pipe::new() {
                Ok(p) => p,
                Err(e) => return self.stop(&e),
            },
        };
        if pages > pipe.slots {
            self.pipe = Some(pipe);
            return Lent::Skipped;
        }
        // The pages first: nothing is corked yet if they cannot be had.
        match pipe.take_pages(batch) {
            Ok(n) if n == batch.len() => {}
            // A partial take leaves pages in the pipe: it goes with `pipe`.
            Ok(_) => return Lent::Failed,
            Err(e) => return self.stop(&e),
        }
        if cork(socket, destination, segment).is_err() {
            // A send that fails discards what it would have corked; the pipe
            // still holds the pages, and goes.
            release_cork(socket);
            return Lent::Failed;
        }
        match pipe.give_to(socket, batch.len()) {
            Ok(n) if n == batch.len() => {
                self.pipe = Some(pipe);
                Lent::Sent
            }
            _ => {
                release_cork(socket);
                Lent::Failed
            }
        }
    }

    /// Lending cannot work here: say so once and copy from now on.
    fn stop(&mut self, e: &io::Error) -> Lent {
        tracing::debug!(error = %e, "sends from lent memory unavailable; copying instead");
        self.off = true;
        self.lent.clear();
        Lent::Failed
    }
}

impl Pipe {
    fn new() -> io::Result<Pipe> {
        let mut fds = [0 as libc::c_int; 2];
        // SAFETY: `fds` has room for the two descriptors pipe2 writes.
        if unsafe { libc::pipe2(fds.as_mut_ptr(), libc::O_CLOEXEC | libc::O_NONBLOCK) } != 0 {
            return Err(io::Error::last_os_error());
        }
        // SAFETY: pipe2 succeeded, so both are open descriptors that nothing else owns.
        let (read, write) = unsafe { (OwnedFd::from_raw_fd(fds[0]), OwnedFd::from_raw_fd(fds[1])) };
        // SAFETY: fcntl on a descriptor we own; F_SETPIPE_SZ takes an int.
        let size = unsafe { libc::fcntl(write.as_raw_fd(), libc::F_SETPIPE_SZ, PIPE_BYTES) };
        // Refused (a lower pipe-max-size): the pipe keeps its default size.
        // SAFETY: as above; F_GETPIPE_SZ takes no argument.
        let size = if size > 0 {
            size
        } else {
            unsafe { libc::fcntl(write.as_raw_fd(), libc::F_GETPIPE_SZ) }
        };
        if size <= 0 {
            return Err(io::Error::last_os_error());
        }
        Ok(Pipe {
            read,
            write,
            slots: size as usize / page_size(),
        })
    }

    /// References to the pages of `bytes` into the pipe; the bytes taken.
    fn take_pages(&self, bytes: &[u8]) -> io::Result<usize> {
        let iov = libc::iovec {
            iov_base: bytes.as_ptr() as *mut libc::c_void,
            iov_len: bytes.len(),
        };
        // SAFETY: `iov` describes `bytes`, which the kernel only reads (vmsplice takes
        // the pages by reference; the `LentMemory` contract keeps them unchanged).
        let n = unsafe { libc::vmsplice(self.write.as_raw_fd(), &iov, 1, libc::SPLICE_F_NONBLOCK) };
        if n < 0 {
            return Err(io::Error::last_os_error());
        }
        Ok(n as usize)
    }

    /// Moves `len` bytes of pages from the pipe onto the datagram corked on `socket`.
    fn give_to(&self, socket: RawFd, len: usize) -> io::Result<usize> {
        let mut done = 0;
        while done < len {
            // SAFETY: plain descriptors; null offsets (a pipe and a socket have none).
            let n = unsafe {
                libc::splice(
                    self.read.as_raw_fd(),
                    std::ptr::null_mut(),
                    socket,
                    std::ptr::null_mut(),
                    len - done,
                    0,
                )
            };
            if n <= 0 {
                return if done > 0 {
                    Ok(done)
                } else {
                    Err(io::Error::last_os_error())
                };
            }
            done += n as usize;
        }
        Ok(done)
    }
}

/// Starts a datagram to `destination` on `socket` with no bytes yet, held open
/// (`MSG_MORE`) and cut into segments of `segment` bytes when it leaves.
fn cork(socket: RawFd, destination: &SockAddr, segment: u16) -> io::Result<()> {
    const SPACE: usize = 32;
    // SAFETY: CMSG_SPACE only computes a size.
    debug_assert!(unsafe { libc::CMSG_SPACE(2) } as usize <= SPACE);
    #[repr(align(8))]
    struct Control([u8; SPACE]);
    let mut control = Control([0; SPACE]);
    // SAFETY: an all-zero msghdr is valid (no name, no data, no control).
    let mut msg: libc::msghdr = unsafe { std::mem::zeroed() };
    msg.msg_name = destination.as_ptr() as *mut libc::c_void;
    msg.msg_namelen = destination.len();
    msg.msg_control = control.0.as_mut_ptr().cast();
    // SAFETY: as above.
    msg.msg_controllen = unsafe { libc::CMSG_SPACE(2) } as _;
    // SAFETY: `msg` points at `control`, aligned and large enough for one cmsg of
    // a u16, so CMSG_FIRSTHDR is that header and CMSG_DATA lies within it.
    unsafe {
        let c = libc::CMSG_FIRSTHDR(&msg);
        (*c).cmsg_level = libc::SOL_UDP;
        (*c).cmsg_type = libc::UDP_SEGMENT;
        (*c).cmsg_len = libc::CMSG_LEN(2) as _;
        std::ptr::write_unaligned(libc::CMSG_DATA(c).cast::<u16>(), segment);
    }
    // SAFETY: `msg` is fully set up above and lives across the call.
    if unsafe { libc::sendmsg(socket, &msg, libc::MSG_MORE) } < 0 {
        return Err(io::Error::last_os_error());
    }
    Ok(())
}

/// Sends whatever is still corked on `socket` (nothing, after a failed send: the
/// kernel discards a corked datagram when adding to it or sending it fails), so
/// the next send starts clean.
fn release_cork(socket: RawFd) {
    let off: libc::c_int = 0;
    // SAFETY: setsockopt reads one int from `off`.
    unsafe {
        libc::setsockopt(
            socket,
            libc::SOL_UDP,
            libc::UDP_CORK,
            (&off as *const libc::c_int).cast(),
            std::mem::size_of::<libc::c_int>() as libc::socklen_t,
        )
    };
}

fn page_size() -> usize {
    // SAFETY: sysconf has no preconditions.
    let p = unsafe { libc::sysconf(libc::_SC_PAGESIZE) };
    if p > 0 {
        p as usize
    } else {
        4096
    }
}

#[cfg(test)]
pub(crate) mod tests {
    use std::net::UdpSocket;
    use std::time::Duration;

    use super::*;

    /// Memory for lending in tests: an anonymous mapping of its own, filled once.
    pub(crate) struct Mapped(pub(crate) memmap2::Mmap);

    impl Mapped {
        pub(crate) fn with(bytes: &[u8]) -> Arc<Mapped> {
            let mut m = memmap2::MmapMut::map_anon(bytes.len()).unwrap();
            m.copy_from_slice(bytes);
            Arc::new(Mapped(m.make_read_only().unwrap()))
        }
    }

    impl LentMemory for Mapped {
        fn bytes(&self) -> &[u8] {
            &self.0
        }
    }

    fn loopback() -> UdpSocket {
        UdpSocket::bind("127.0.0.1:0").unwrap()
    }

    fn to(socket: &UdpSocket) -> SockAddr {
        SockAddr::from(socket.local_addr().unwrap())
    }

    /// Every datagram that arrives within `wait` of the last (the receiver has no
    /// GRO, so a GSO batch arrives one datagram at a time).
    fn recv_all(socket: &UdpSocket, wait: Duration) -> Vec<Vec<u8>> {
        socket.set_read_timeout(Some(wait)).unwrap();
        let mut buf = vec![0; 1 << 16];
        let mut got = Vec::new();
        while let Ok(n) = socket.recv(&mut buf) {
            got.push(buf[..n].to_vec());
        }
        got
    }

    /// A lent send the kernel refuses leaves nothing behind: no part of it
    /// reaches its destination, and the next send, to someone else, goes out alone
    /// and whole instead of being appended to a datagram left corked. Refused here
    /// for carrying 200 segments (the kernel cuts a datagram into 64 at most, 128
    /// in later kernels, and says so only as it leaves, after every page is in).
    /// The lender still works afterwards, from a start that is not on a page
    /// boundary (the batch then spans 17 pages, as many as a datagram takes).
    #[test]
    fn a_failed_lent_send_leaves_the_socket_clean() {
        let (a, b, c) = (loopback(), loopback(), loopback());
        let bytes: Vec<u8> = (0..80 * 1240u32).map(|i| (i % 253) as u8).collect();
        let lent = Mapped::with(&bytes);
        let mut lender = Lender::default();
        assert!(lender.lend(lent.clone()));
        let many = &lent.0[..200 * 300];
        assert_eq!(lender.send(a.as_raw_fd(), &to(&b), many, 300), Lent::Failed);
        a.send_to(b"hello", c.local_addr().unwrap()).unwrap();
        assert_eq!(
            recv_all(&c, Duration::from_millis(300)),
            [b"hello".to_vec()]
        );
        assert_eq!(
            recv_all(&b, Duration::from_millis(100)),
            Vec::<Vec<u8>>::new()
        );

        let ok = &lent.0[3000..3000 + 52 * 1240];
        assert_eq!(lender.send(a.as_raw_fd(), &to(&b), ok, 1240), Lent::Sent);
        let got = recv_all(&b, Duration::from_millis(300));
        assert_eq!(got.len(), 52);
        assert!(got.concat() == ok);
    }

    /// Only batches wholly within lent memory, of several datagrams and of
    /// 16 KiB to one datagram's worth are lent; nothing is tried for the others.
    #[test]
    fn only_lent_bytes_are_lent() {
        /// The first half of a mapping, lent.
        struct FirstHalf(Arc<Mapped>);
        impl LentMemory for FirstHalf {
            fn bytes(&self) -> &[u8] {
                &self.0 .0[..32 << 10]
            }
        }
        let (a, b) = (loopback(), loopback());
        let bytes = vec![7u8; 128 << 10];
        let map = Mapped::with(&bytes);
        let mut lender = Lender::default();
        let (fd, to) = (a.as_raw_fd(), to(&b));
        assert_eq!(lender.send(fd, &to, &map.0[..20_000], 1000), Lent::Skipped);
        lender.lend(Arc::new(FirstHalf(map.clone())));
        // From the heap; partly past the lent half; too small; one datagram.
        assert_eq!(lender.send(fd, &to, &bytes[..20_000], 1000), Lent::Skipped);
        assert_eq!(
            lender.send(fd, &to, &map.0[16 << 10..48 << 10], 1000),
            Lent::Skipped
        );
        assert_eq!(
            lender.send(fd, &to, &map.0[..LEND_MIN_BYTES - 1], 1000),
            Lent::Skipped
        );
        assert_eq!(
            lender.send(fd, &to, &map.0[..20_000], 20_000),
            Lent::Skipped
        );
        assert_eq!(lender.send(fd, &to, &map.0[..20_000], 1000), Lent::Sent);
        // Larger than a datagram, even where all of it is lent.
        lender.lend(map.clone());
        assert_eq!(
            lender.send(fd, &to, &map.0[..LEND_MAX_BYTES + 1], 1000),
            Lent::Skipped
        );
        assert_eq!(
            lender.send(fd, &to, &map.0[..LEND_MAX_BYTES], 1000),
            Lent::Sent
        );
        assert_eq!(recv_all(&b, Duration::from_millis(300)).len(), 20 + 66);
    }
}
