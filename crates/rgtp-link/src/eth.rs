//! The raw-Ethernet link: every RGTP packet is the payload of one Ethernet
//! frame with EtherType [`ETHERTYPE_RGTP`] (spec §1.4), optionally carrying an
//! IEEE 802.1Q tag.
//!
//! ```text
//! dst MAC (6) | src MAC (6) | [0x8100 | TCI (2)] | 0x88B5 | RGTP packet
//! ```
//!
//! Peers are [`Peer::Ethernet`] MAC addresses: unicast, broadcast
//! (`ff:ff:ff:ff:ff:ff`) or multicast (group bit set). Groups listed in
//! [`EthConfig::multicast_groups`] are joined with `PACKET_ADD_MEMBERSHIP`, so
//! the NIC lets them through; frames to groups not joined are dropped here too,
//! because some devices (veth, anything in promiscuous mode) deliver every
//! group frame.
//!
//! # The socket
//!
//! One `AF_PACKET`/`SOCK_RAW` socket, bound to the interface with protocol
//! `ETH_P_ALL`, non-blocking. A classic BPF filter attached before the bind
//! keeps everything but RGTP frames (plain or with one inline tag) in the
//! kernel, so a busy interface does not flood the receive queue. Sends are
//! `sendmmsg`, up to [`MAX_SEGMENTS`] frames a call, each gathered from one
//! shared header and the datagram in the caller's buffer; receives are
//! `recvmmsg` straight into slots (MTU plus headers) of the caller's buffer;
//! a buffer smaller than one slot gets one datagram per call through an
//! internal slot, and a datagram larger than that buffer is dropped and
//! counted. Waiting is `poll(2)`, so every [`Link::recv`] honours its own
//! timeout.
//!
//! Interface discovery (name to index, MAC address, up flag) uses
//! `pnet_datalink`, and frames are built and parsed with the [`ether`]
//! codec the capture tools share; the socket itself is not pnet's datalink channel,
//! for two reasons. The kernel strips the 802.1Q tag of a received frame and
//! hands it over only as `PACKET_AUXDATA` control data (`tp_vlan_tci` with
//! `TP_STATUS_VLAN_VALID`), which pnet's receiver never asks for, so a tagged
//! frame would look untagged. And pnet's channel has one read timeout fixed
//! when it is opened, where a driver needs a different timeout on every call.
//!
//! # VLANs
//!
//! With [`EthConfig::vlan`] set, every frame sent carries that tag (PCP and DEI
//! included) and only frames of that VLAN ID are received; without it, frames
//! are sent untagged and only untagged frames are received. A VLAN ID of 0 is
//! a priority tag and belongs to the untagged (native) VLAN, as IEEE 802.1Q
//! has it: it matches untagged frames both ways. An 802.1ad (`0x88A8`) tag is
//! read like an 802.1Q one; frames with two tags are skipped. The tag of a
//! received frame is read from `PACKET_AUXDATA`, or from the frame when it is
//! still inline; [`EthLink::last_recv_vlans`] tells it per datagram. The
//! reported MTU is the interface's: the 4-byte tag is not counted, as Linux
//! does not count it for tagged frames.
//!
//! # What is filtered
//!
//! Frames this host sent (`PACKET_OUTGOING`; the kernel is also asked not to
//! queue them at all with `PACKET_IGNORE_OUTGOING`), frames for another
//! station (`PACKET_OTHERHOST`) or for a group not joined, other EtherTypes and
//! other VLANs are skipped and counted in [`EthStats`].
//!
//! # Padding
//!
//! Ethernet pads frames to 60 bytes, so an RGTP packet under 46 bytes may
//! arrive with trailing zeros. A payload that fits in a minimum-size frame (at
//! most 46 bytes) is cut to the packet's Length field (bytes 2..4) when
//! `4 <= Length <= payload`; anything else is delivered as it came, and the
//! protocol core counts it malformed if its Length disagrees.
//!
//! # Failures
//!
//! A datagram larger than the MTU is never sent: it is counted in
//! [`EthStats::oversize`] and dropped, as the UDP link counts `EMSGSIZE`. A
//! full socket buffer (`EAGAIN`) or device queue (`ENOBUFS`) is waited out for
//! up to [`SEND_BLOCK_TIMEOUT`], then the frame is dropped and counted. An
//! interface that went down (`ENETDOWN`) drops and counts what is sent, and
//! receives simply wait until it is up again.

use std::io;
use std::mem::size_of;
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd, RawFd};
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use pnet_datalink::MacAddr;
use redgiant_base::{Peer, Transmit};

use crate::ether::{
    self, ETHERTYPE_QINQ, ETHERTYPE_VLAN, HEADER_LEN as ETH_HEADER, TAG_LEN as VLAN_TAG,
};
use crate::mem::check_transmit;
use crate::sys::poll_fd;
use crate::{Capabilities, Framing, Link, Received, Vlan, ETHERTYPE_RGTP};

/// Most frames one [`Link::send`] batch or one receive call handles.
pub const MAX_SEGMENTS: usize = 64;
/// How long one send waits for room in a full socket buffer or device queue
/// before dropping a frame.
pub const SEND_BLOCK_TIMEOUT: Duration = Duration::from_millis(100);
/// Default [`EthConfig::socket_buffer_bytes`].
pub const DEFAULT_SOCKET_BUFFER_BYTES: usize = 8 << 20;

/// The broadcast MAC address.
const BROADCAST: [u8; 6] = [0xff; 6];
/// Largest RGTP packet (its Length field is 16 bits).
const MAX_PACKET: usize = 65_535;
/// Receive slots are never sized for less than this MTU.
const MIN_SLOT_MTU: usize = 1500;
/// Headroom of a receive slot over the MTU: header and two tags.
const SLOT_OVERHEAD: usize = ETH_HEADER + 2 * VLAN_TAG;
/// Pause after `ENOBUFS`, which `poll` does not wait out.
const NOBUFS_BACKOFF: Duration = Duration::from_micros(200);
/// A boolean socket option's "on".
const ON: libc::c_int = 1;
/// Control buffer per received message: room for one `tpacket_auxdata`.
const CONTROL_WORDS: usize = 8;

/// How an [`EthLink`] is set up.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EthConfig {
    /// Interface name, e.g. `eth0` (in the network namespace the link is opened in).
    pub interface: String,
    /// 802.1Q tag put on every frame sent; only frames of its VLAN ID are received.
    /// `None`: untagged frames only.
    pub vlan: Option<Vlan>,
    /// Multicast MAC addresses to join (each must have the group bit set).
    pub multicast_groups: Vec<[u8; 6]>,
    /// Socket send and receive buffer size asked for (forced past `rmem_max` when permitted).
    pub socket_buffer_bytes: usize,
    /// Join the `PACKET_FANOUT` group with this id: links opened with the same id on
    /// one interface (in one network namespace) share its frames, each peer's frames
    /// always going to the same link (chosen from the source MAC address), so N
    /// threads serve N shares of the peers (`rgtp expose --channels N`). `None`: this
    /// link receives every frame.
    pub fanout: Option<u16>,
}

impl EthConfig {
    /// Untagged, no multicast groups, [`DEFAULT_SOCKET_BUFFER_BYTES`].
    pub fn new(interface: impl Into<String>) -> EthConfig {
        EthConfig {
            interface: interface.into(),
            vlan: None,
            multicast_groups: Vec::new(),
            socket_buffer_bytes: DEFAULT_SOCKET_BUFFER_BYTES,
            fanout: None,
        }
    }
}

/// Counters of an [`EthLink`].
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct EthStats {
    /// Frames handed to the kernel.
    pub frames_sent: u64,
    /// RGTP bytes (frame payloads) handed to the kernel.
    pub bytes_sent: u64,
    /// `sendmmsg` calls that sent at least one frame.
    pub send_calls: u64,
    /// Datagrams larger than the MTU, dropped unsent.
    pub oversize: u64,
    /// Times a send waited for room in the socket buffer or device queue.
    pub send_blocked: u64,
    /// Frames dropped because the socket buffer or device queue stayed full.
    pub send_dropped: u64,
    /// Frames the kernel refused for another reason (interface down, `EPERM`).
    pub send_errors: u64,
    /// Datagrams delivered to the caller.
    pub frames_received: u64,
    /// RGTP bytes delivered to the caller.
    pub bytes_received: u64,
    /// `recvmmsg` calls that returned frames.
    pub recv_calls: u64,
    /// Delivered datagrams whose Ethernet padding was cut off.
    pub padding_trimmed: u64,
    /// Frames dropped because they did not fit the receive slot or the caller's buffer.
    pub truncated: u64,
    /// Frames skipped: not EtherType [`ETHERTYPE_RGTP`], or too short to have one.
    /// Most never get this far: the socket filter drops them in the kernel.
    pub filtered_ethertype: u64,
    /// RGTP frames skipped: another VLAN (or untagged when a VLAN is set, and the reverse).
    pub filtered_vlan: u64,
    /// Frames skipped because this host sent them (`PACKET_OUTGOING`).
    pub filtered_own: u64,
    /// Frames skipped: unicast to another station, or to a multicast group not joined.
    pub filtered_address: u64,
    /// Frames the kernel dropped because the receive buffer was full (`PACKET_STATISTICS`).
    pub kernel_drops: u64,
}

/// A raw-Ethernet interface as a [`Link`]; see the [module documentation](self).
#[derive(Debug)]
pub struct EthLink {
    fd: OwnedFd,
    config: EthConfig,
    ifindex: i32,
    mac: [u8; 6],
    /// Multicast groups joined.
    groups: Vec<[u8; 6]>,
    /// Interface MTU as last read.
    mtu: AtomicUsize,
    /// Sum of `PACKET_STATISTICS` drops read so far (reading resets the kernel's counter).
    kernel_drops: AtomicU64,
    stats: EthStats,
    /// Tag of each datagram the last `recv` returned.
    last_vlans: Vec<Option<Vlan>>,
    /// One receive slot, for caller buffers smaller than a slot.
    scratch: Vec<u8>,
}

impl EthLink {
    /// Opens a raw socket on `config.interface`, in the calling thread's
    /// network namespace. Needs root or `CAP_NET_RAW`.
    pub fn open(config: EthConfig) -> io::Result<EthLink> {
        validate(&config)?;
        let iface = find_interface(&config.interface)?;
        if !iface.is_up() {
            return Err(io::Error::other(format!(
                "interface {name} is down: bring it up with `ip link set {name} up`",
                name = config.interface
            )));
        }
        let ifindex = i32::try_from(iface.index).map_err(|_| {
            io::Error::new(
                io::ErrorKind::InvalidData,
                format!(
                    "interface {} has index {} out of range",
                    iface.name, iface.index
                ),
            )
        })?;

        let fd = open_socket()?;
        if let Err(e) = attach_rgtp_filter(&fd) {
            // Not fatal: frames are filtered in user space as well.
            tracing::warn!(error = %e, "could not attach the RGTP socket filter; filtering in user space only");
        }
        set_option(&fd, libc::SOL_PACKET, libc::PACKET_AUXDATA, &ON)
            .map_err(|e| annotate(e, "cannot enable PACKET_AUXDATA (needed to see VLAN tags)"))?;
        // Linux 4.20+; older kernels queue our own frames and they are filtered below.
        let _ = set_option(&fd, libc::SOL_PACKET, libc::PACKET_IGNORE_OUTGOING, &ON);
        set_buffers(&fd, config.socket_buffer_bytes);
        bind(&fd, ifindex, &config.interface)?;
        check_ethernet(&fd, &config.interface)?;
        if let Some(id) = config.fanout {
            join_fanout(&fd, id).map_err(|e| {
                annotate(
                    e,
                    &format!(
                        "cannot join packet fanout group {id} on {} (another program may use that id with another mode)",
                        config.interface
                    ),
                )
            })?;
        }

        let mac = match iface.mac {
            Some(mac) => mac.octets(),
            None => local_address(&fd)?,
        };
        let mtu = interface_mtu(fd.as_raw_fd(), &config.interface)
            .map_err(|e| annotate(e, &format!("cannot read the MTU of {}", config.interface)))?;
        let mut link = EthLink {
            fd,
            ifindex,
            mac,
            groups: Vec::new(),
            mtu: AtomicUsize::new(mtu),
            kernel_drops: AtomicU64::new(0),
            stats: EthStats::default(),
            last_vlans: Vec::new(),
            scratch: Vec::new(),
            config,
        };
        for group in link.config.multicast_groups.clone() {
            link.join_multicast(group)?;
        }
        tracing::debug!(
            interface = %link.config.interface,
            ifindex,
            mac = %MacAddr::from(mac),
            mtu,
            vlan = ?link.config.vlan,
            groups = link.groups.len(),
            "Ethernet link open"
        );
        Ok(link)
    }

    /// The interface's MAC address (the source of every frame sent).
    pub fn mac(&self) -> [u8; 6] {
        self.mac
    }

    /// The interface name.
    pub fn interface(&self) -> &str {
        &self.config.interface
    }

    /// The interface index.
    pub fn interface_index(&self) -> u32 {
        self.ifindex.unsigned_abs()
    }

    /// The tag put on frames sent, and the VLAN received.
    pub fn vlan(&self) -> Option<Vlan> {
        self.config.vlan
    }

    /// Multicast groups joined.
    pub fn multicast_groups(&self) -> &[[u8; 6]] {
        &self.groups
    }

    /// Joins a multicast group (`PACKET_ADD_MEMBERSHIP`); frames sent to it are received from now on.
    pub fn join_multicast(&mut self, group: [u8; 6]) -> io::Result<()> {
        check_group(group)?;
        if group == BROADCAST || self.groups.contains(&group) {
            return Ok(());
        }
        self.membership(libc::PACKET_ADD_MEMBERSHIP, group)
            .map_err(|e| {
                annotate(
                    e,
                    &format!(
                        "cannot join multicast group {} on {}",
                        MacAddr::from(group),
                        self.config.interface
                    ),
                )
            })?;
        self.groups.push(group);
        Ok(())
    }

    /// Leaves a multicast group joined before; frames sent to it are no longer received.
    pub fn leave_multicast(&mut self, group: [u8; 6]) -> io::Result<()> {
        let Some(i) = self.groups.iter().position(|g| *g == group) else {
            return Ok(());
        };
        self.membership(libc::PACKET_DROP_MEMBERSHIP, group)?;
        self.groups.swap_remove(i);
        Ok(())
    }

    /// Counters so far.
    pub fn stats(&self) -> EthStats {
        let mut stats = self.stats;
        stats.kernel_drops = self.read_kernel_drops();
        stats
    }

    /// The 802.1Q tag of each datagram the last [`Link::recv`] returned, in
    /// the order of the [`Received`] entries it appended (`None`: untagged).
    pub fn last_recv_vlans(&self) -> &[Option<Vlan>] {
        &self.last_vlans
    }

    /// The interface MTU now (the last value read if the interface is gone).
    fn current_mtu(&self) -> usize {
        match interface_mtu(self.fd.as_raw_fd(), &self.config.interface) {
            Ok(mtu) => {
                self.mtu.store(mtu, Ordering::Relaxed);
                mtu
            }
            Err(_) => self.mtu.load(Ordering::Relaxed),
        }
    }

    /// Adds the kernel's drop counter (reset by each read) to the running sum.
    fn read_kernel_drops(&self) -> u64 {
        let mut st = libc::tpacket_stats {
            tp_packets: 0,
            tp_drops: 0,
        };
        let mut len = size_of::<libc::tpacket_stats>() as libc::socklen_t;
        // SAFETY: the fd is our open socket; `st` is a live tpacket_stats whose
        // address and size (in `len`) are passed together, and the kernel writes at most `len` bytes.
        let r = unsafe {
            libc::getsockopt(
                self.fd.as_raw_fd(),
                libc::SOL_PACKET,
                libc::PACKET_STATISTICS,
                (&mut st as *mut libc::tpacket_stats).cast(),
                &mut len,
            )
        };
        if r == 0 {
            self.kernel_drops
                .fetch_add(u64::from(st.tp_drops), Ordering::Relaxed);
        }
        self.kernel_drops.load(Ordering::Relaxed)
    }

    fn membership(&self, op: libc::c_int, group: [u8; 6]) -> io::Result<()> {
        let mut address = [0u8; 8];
        address[..6].copy_from_slice(&group);
        let mreq = libc::packet_mreq {
            mr_ifindex: self.ifindex,
            mr_type: libc::PACKET_MR_MULTICAST as libc::c_ushort,
            mr_alen: 6,
            mr_address: address,
        };
        set_option(&self.fd, libc::SOL_PACKET, op, &mreq)
    }

    /// Receive slot size for the current MTU.
    fn slot_len(&self) -> usize {
        self.current_mtu().max(MIN_SLOT_MTU) + SLOT_OVERHEAD
    }

    /// One `recvmmsg`; returns how many datagrams were delivered (0: only skipped frames).
    fn recv_once(&mut self, buf: &mut [u8], out: &mut Vec<Received>) -> io::Result<usize> {
        let slot = self.slot_len();
        let mut meta = [FrameMeta::default(); MAX_SEGMENTS];
        if buf.len() >= slot {
            let slots = (buf.len() / slot).min(MAX_SEGMENTS);
            let got = recv_frames(
                self.fd.as_raw_fd(),
                &mut buf[..slots * slot],
                slot,
                &mut meta,
            )?;
            self.stats.recv_calls += 1;
            let mut n = 0;
            for (i, m) in meta[..got].iter().enumerate() {
                let start = i * slot;
                let frame = &buf[start..start + m.len.min(slot)];
                if let Some(a) = self.classify(frame, m) {
                    self.deliver(out, a, start + a.offset);
                    n += 1;
                }
            }
            return Ok(n);
        }

        // A buffer smaller than a slot: receive one frame into scratch, copy it if it fits.
        let mut scratch = std::mem::take(&mut self.scratch);
        scratch.resize(slot, 0);
        let got = recv_frames(self.fd.as_raw_fd(), &mut scratch, slot, &mut meta[..1]);
        let n = match got {
            Ok(got) => {
                self.stats.recv_calls += 1;
                let mut n = 0;
                if got == 1 {
                    let frame = &scratch[..meta[0].len.min(slot)];
                    if let Some(a) = self.classify(frame, &meta[0]) {
                        if a.len <= buf.len() {
                            buf[..a.len].copy_from_slice(&frame[a.offset..a.offset + a.len]);
                            self.deliver(out, a, 0);
                            n = 1;
                        } else {
                            self.stats.truncated += 1;
                        }
                    }
                }
                Ok(n)
            }
            Err(e) => Err(e),
        };
        self.scratch = scratch;
        n
    }

    fn deliver(&mut self, out: &mut Vec<Received>, a: Accepted, offset: usize) {
        out.push(Received {
            from: Peer::Ethernet(a.source),
            offset,
            len: a.len,
        });
        self.last_vlans.push(a.vlan);
        self.stats.frames_received += 1;
        self.stats.bytes_received += a.len as u64;
        if a.trimmed {
            self.stats.padding_trimmed += 1;
        }
    }

    /// Decides a received frame's fate, counting the skipped ones.
    fn classify(&mut self, frame: &[u8], meta: &FrameMeta) -> Option<Accepted> {
        match parse_frame(frame, meta, self.config.vlan, &self.groups) {
            Ok(a) => Some(a),
            Err(skip) => {
                let counter = match skip {
                    Skip::Truncated => &mut self.stats.truncated,
                    Skip::Own => &mut self.stats.filtered_own,
                    Skip::EtherType => &mut self.stats.filtered_ethertype,
                    Skip::Address => &mut self.stats.filtered_address,
                    Skip::Vlan => &mut self.stats.filtered_vlan,
                };
                *counter += 1;
                None
            }
        }
    }

    /// Sends `datagrams` (all within the MTU) as frames with `header`, waiting
    /// out a full queue for up to [`SEND_BLOCK_TIMEOUT`].
    fn send_frames(
        &mut self,
        destination: [u8; 6],
        header: &[u8],
        datagrams: &[&[u8]],
    ) -> io::Result<()> {
        let n = datagrams.len().min(MAX_SEGMENTS);
        if n == 0 {
            return Ok(());
        }
        let outer = if header.len() > ETH_HEADER {
            ETHERTYPE_VLAN
        } else {
            ETHERTYPE_RGTP
        };
        let address = sockaddr_ll(self.ifindex, outer, Some(destination));
        let mut iovs = [[libc::iovec {
            iov_base: std::ptr::null_mut(),
            iov_len: 0,
        }; 2]; MAX_SEGMENTS];
        for (iov, datagram) in iovs.iter_mut().zip(&datagrams[..n]) {
            // The kernel only reads through these pointers (sendmmsg takes `*mut` for its own reasons).
            *iov = [
                libc::iovec {
                    iov_base: header.as_ptr() as *mut libc::c_void,
                    iov_len: header.len(),
                },
                libc::iovec {
                    iov_base: datagram.as_ptr() as *mut libc::c_void,
                    iov_len: datagram.len(),
                },
            ];
        }
        // SAFETY: mmsghdr is plain old data (integers and raw pointers); all zeroes is a valid value.
        let mut msgs: [libc::mmsghdr; MAX_SEGMENTS] = unsafe { std::mem::zeroed() };
        for (msg, iov) in msgs.iter_mut().zip(iovs.iter_mut()).take(n) {
            msg.msg_hdr.msg_name = (&address as *const libc::sockaddr_ll).cast_mut().cast();
            msg.msg_hdr.msg_namelen = size_of::<libc::sockaddr_ll>() as libc::socklen_t;
            msg.msg_hdr.msg_iov = iov.as_mut_ptr();
            msg.msg_hdr.msg_iovlen = 2;
        }

        let deadline = Instant::now() + SEND_BLOCK_TIMEOUT;
        let mut next = 0;
        while next < n {
            // SAFETY: msgs[next..n] are initialised and point at `address`, at
            // `iovs` and through them at `header` and the datagrams, all of
            // which outlive the call; the kernel reads them and writes only msg_len.
            let r = unsafe {
                libc::sendmmsg(
                    self.fd.as_raw_fd(),
                    msgs[next..n].as_mut_ptr(),
                    (n - next) as libc::c_uint,
                    0,
                )
            };
            if r > 0 {
                let sent = (r as usize).min(n - next);
                self.stats.send_calls += 1;
                self.stats.frames_sent += sent as u64;
                self.stats.bytes_sent += datagrams[next..next + sent]
                    .iter()
                    .map(|d| d.len() as u64)
                    .sum::<u64>();
                next += sent;
                continue;
            }
            let e = if r == 0 {
                io::Error::from(io::ErrorKind::WouldBlock)
            } else {
                io::Error::last_os_error()
            };
            match e.raw_os_error() {
                Some(libc::EINTR) => {}
                Some(code @ (libc::EAGAIN | libc::ENOBUFS)) => {
                    let left = deadline.saturating_duration_since(Instant::now());
                    if left.is_zero() {
                        self.stats.send_dropped += 1;
                        next += 1;
                        continue;
                    }
                    self.stats.send_blocked += 1;
                    if code == libc::EAGAIN {
                        poll_fd(self.fd.as_raw_fd(), libc::POLLOUT, Some(left))?;
                    } else {
                        // The device queue, not the socket, is full: poll would return at once.
                        std::thread::sleep(left.min(NOBUFS_BACKOFF));
                    }
                }
                None if r == 0 => {
                    // Nothing sent and no error: count the frame dropped rather than spin.
                    self.stats.send_dropped += 1;
                    next += 1;
                }
                Some(libc::EMSGSIZE) => {
                    // The MTU shrank since it was read.
                    self.stats.oversize += 1;
                    next += 1;
                }
                Some(libc::ENETDOWN) => {
                    tracing::debug!(interface = %self.config.interface, "interface down; frames dropped");
                    self.stats.send_errors += (n - next) as u64;
                    return Ok(());
                }
                Some(libc::EPERM | libc::EACCES) => {
                    tracing::debug!(error = %e, "Ethernet send refused; dropped");
                    self.stats.send_errors += 1;
                    next += 1;
                }
                Some(libc::ENXIO | libc::ENODEV) => {
                    return Err(io::Error::new(
                        io::ErrorKind::NotFound,
                        format!(
                            "interface {} is gone ({e}); open the link again once it is back",
                            self.config.interface
                        ),
                    ));
                }
                _ => return Err(e),
            }
        }
        Ok(())
    }
}

impl Link for EthLink {
    fn capabilities(&self) -> Capabilities {
        Capabilities {
            mtu: self.current_mtu().min(MAX_PACKET),
            max_segments: MAX_SEGMENTS,
            max_batch_bytes: usize::MAX,
        }
    }

    fn local_peer(&self) -> Peer {
        Peer::Ethernet(self.mac)
    }

    fn framing(&self) -> Framing {
        Framing::Ethernet {
            vlan: self.config.vlan,
        }
    }

    fn last_recv_vlans(&self) -> Option<&[Option<Vlan>]> {
        Some(&self.last_vlans)
    }

    fn send(&mut self, transmit: &Transmit, buf: &[u8]) -> io::Result<()> {
        check_transmit(transmit, buf)?;
        let Peer::Ethernet(destination) = transmit.destination else {
            return Err(io::Error::new(
                io::ErrorKind::InvalidInput,
                format!(
                    "a raw-Ethernet link sends only to Ethernet peers (MAC addresses), not {:?}",
                    transmit.destination
                ),
            ));
        };
        let mtu = self.current_mtu().min(MAX_PACKET);
        let (header, header_len) = frame_header(self.mac, destination, self.config.vlan);
        let mut batch: [&[u8]; MAX_SEGMENTS] = [&[]; MAX_SEGMENTS];
        let mut n = 0;
        for datagram in transmit.datagrams(buf) {
            if datagram.len() > mtu {
                self.stats.oversize += 1;
                tracing::debug!(len = datagram.len(), mtu, "datagram over the MTU; dropped");
                continue;
            }
            batch[n] = datagram;
            n += 1;
            if n == MAX_SEGMENTS {
                self.send_frames(destination, &header[..header_len], &batch[..n])?;
                n = 0;
            }
        }
        self.send_frames(destination, &header[..header_len], &batch[..n])
    }

    fn recv(
        &mut self,
        buf: &mut [u8],
        out: &mut Vec<Received>,
        timeout: Option<Duration>,
    ) -> io::Result<usize> {
        self.last_vlans.clear();
        // A timeout too large to add is as good as none.
        let deadline = timeout.and_then(|t| Instant::now().checked_add(t));
        loop {
            match self.recv_once(buf, out) {
                Ok(0) => {
                    // Only skipped frames: more may be queued, so read again
                    // without waiting, unless the time is up.
                    if deadline.is_some_and(|d| Instant::now() >= d) {
                        return Ok(0);
                    }
                    continue;
                }
                Ok(n) => return Ok(n),
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => {}
                Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
                // Reported once when the interface goes down; wait for it to come back.
                Err(e) if e.raw_os_error() == Some(libc::ENETDOWN) => {
                    tracing::debug!(interface = %self.config.interface, "interface down");
                }
                Err(e) => return Err(e),
            }
            let left = match deadline {
                None => None,
                Some(d) => {
                    let left = d.saturating_duration_since(Instant::now());
                    if left.is_zero() {
                        return Ok(0);
                    }
                    Some(left)
                }
            };
            poll_fd(self.fd.as_raw_fd(), libc::POLLIN, left)?;
        }
    }
}

/// What the kernel said about one received frame.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
struct FrameMeta {
    /// Bytes received (at most the slot).
    len: usize,
    /// The frame was larger than its slot.
    truncated: bool,
    /// `sll_pkttype`: host, broadcast, multicast, other host, outgoing.
    pkttype: u8,
    /// The tag control information the kernel stripped, if any.
    stripped_tci: Option<u16>,
}

/// A frame to deliver: its RGTP packet is `frame[offset..offset + len]`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Accepted {
    source: [u8; 6],
    offset: usize,
    len: usize,
    vlan: Option<Vlan>,
    trimmed: bool,
}

/// Why a frame was skipped.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Skip {
    Truncated,
    Own,
    EtherType,
    Address,
    Vlan,
}

/// Parses a received frame and applies the filters; pure, so it can be tested without a socket.
fn parse_frame(
    frame: &[u8],
    meta: &FrameMeta,
    want: Option<Vlan>,
    groups: &[[u8; 6]],
) -> Result<Accepted, Skip> {
    if meta.truncated {
        return Err(Skip::Truncated);
    }
    if meta.pkttype == libc::PACKET_OUTGOING {
        return Err(Skip::Own);
    }
    let eth = ether::Frame::new_checked(frame).map_err(|_| Skip::EtherType)?;
    let mut vlan = meta.stripped_tci.map(Vlan::from_tci);
    if let Some(tag) = eth.vlan() {
        if eth.tag_count() > 1 {
            // Two inline tags: the EtherType after the first is a tag, not RGTP.
            return Err(Skip::EtherType);
        }
        if eth.ethertype() == ETHERTYPE_RGTP && vlan.is_some() {
            // Two tags (Q-in-Q): not a VLAN this link speaks.
            return Err(Skip::Vlan);
        }
        vlan = Some(tag);
    }
    if eth.ethertype() != ETHERTYPE_RGTP {
        return Err(Skip::EtherType);
    }
    let destination = eth.dst_addr();
    let group = destination[0] & 1 != 0;
    if group {
        if destination != BROADCAST && !groups.contains(&destination) {
            return Err(Skip::Address);
        }
    } else if meta.pkttype == libc::PACKET_OTHERHOST {
        return Err(Skip::Address);
    }
    if vlan_id(vlan) != vlan_id(want) {
        return Err(Skip::Vlan);
    }
    let (len, trimmed) = unpadded_len(eth.payload());
    Ok(Accepted {
        source: eth.src_addr(),
        offset: eth.header_len(),
        len,
        vlan,
        trimmed,
    })
}

/// The VLAN a tag puts a frame in: untagged and priority-tagged frames are both VLAN 0.
fn vlan_id(vlan: Option<Vlan>) -> u16 {
    vlan.map_or(0, |v| v.id & 0x0fff)
}

/// The length of the RGTP packet in `payload`, and whether padding was cut off.
fn unpadded_len(payload: &[u8]) -> (usize, bool) {
    let len = ether::rgtp_len(payload);
    (len, len < payload.len())
}

/// The Ethernet header (and 802.1Q tag) of frames from `source` to `destination`; returns it and its length.
fn frame_header(
    source: [u8; 6],
    destination: [u8; 6],
    vlan: Option<Vlan>,
) -> ([u8; ETH_HEADER + VLAN_TAG], usize) {
    let mut header = [0u8; ETH_HEADER + VLAN_TAG];
    let repr = ether::Repr {
        dst_addr: destination,
        src_addr: source,
        vlan,
        ethertype: ETHERTYPE_RGTP,
    };
    let len = repr.buffer_len();
    repr.emit(&mut ether::Frame::new_unchecked(&mut header[..len]));
    (header, len)
}

/// One `recvmmsg` into `region`, one frame per `slot` bytes and per entry of
/// `meta` (whichever runs out first); fills `meta` and returns how many frames.
fn recv_frames(
    fd: RawFd,
    region: &mut [u8],
    slot: usize,
    meta: &mut [FrameMeta],
) -> io::Result<usize> {
    let mut iovs = [libc::iovec {
        iov_base: std::ptr::null_mut(),
        iov_len: 0,
    }; MAX_SEGMENTS];
    let mut count = 0;
    for (iov, chunk) in iovs
        .iter_mut()
        .zip(region.chunks_exact_mut(slot.max(1)))
        .take(meta.len())
    {
        iov.iov_base = chunk.as_mut_ptr().cast();
        iov.iov_len = chunk.len();
        count += 1;
    }
    if count == 0 {
        return Ok(0);
    }
    let mut names = [sockaddr_ll(0, 0, None); MAX_SEGMENTS];
    let mut controls = [[0u64; CONTROL_WORDS]; MAX_SEGMENTS];
    // SAFETY: mmsghdr is plain old data (integers and raw pointers); all zeroes is a valid value.
    let mut msgs: [libc::mmsghdr; MAX_SEGMENTS] = unsafe { std::mem::zeroed() };
    for (((msg, iov), name), control) in msgs
        .iter_mut()
        .zip(iovs.iter_mut())
        .zip(names.iter_mut())
        .zip(controls.iter_mut())
        .take(count)
    {
        msg.msg_hdr.msg_name = (name as *mut libc::sockaddr_ll).cast();
        msg.msg_hdr.msg_namelen = size_of::<libc::sockaddr_ll>() as libc::socklen_t;
        msg.msg_hdr.msg_iov = iov;
        msg.msg_hdr.msg_iovlen = 1;
        msg.msg_hdr.msg_control = control.as_mut_ptr().cast();
        msg.msg_hdr.msg_controllen = size_of::<[u64; CONTROL_WORDS]>() as _;
    }
    // SAFETY: msgs[..count] point at live iovecs covering disjoint chunks of
    // `region`, at live sockaddr_ll and control buffers, with their sizes; all
    // outlive the call and nothing else uses them meanwhile.
    let r = unsafe {
        libc::recvmmsg(
            fd,
            msgs.as_mut_ptr(),
            count as libc::c_uint,
            libc::MSG_DONTWAIT,
            std::ptr::null_mut(),
        )
    };
    if r < 0 {
        return Err(io::Error::last_os_error());
    }
    let got = (r as usize).min(count);
    for ((m, msg), name) in meta.iter_mut().zip(&msgs[..got]).zip(&names) {
        *m = FrameMeta {
            len: msg.msg_len as usize,
            truncated: msg.msg_hdr.msg_flags & libc::MSG_TRUNC != 0,
            pkttype: name.sll_pkttype,
            stripped_tci: stripped_tci(&msg.msg_hdr),
        };
    }
    Ok(got)
}

/// The VLAN tag the kernel stripped, from a received message's `PACKET_AUXDATA`.
fn stripped_tci(hdr: &libc::msghdr) -> Option<u16> {
    let mut tci = None;
    // SAFETY: `hdr` is a message the kernel just filled: msg_control and
    // msg_controllen describe our live control buffer, and the CMSG_* macros
    // stay within that length. The payload is read unaligned after checking
    // the header says it is large enough.
    unsafe {
        let mut cmsg = libc::CMSG_FIRSTHDR(hdr);
        while !cmsg.is_null() {
            let c = &*cmsg;
            if c.cmsg_level == libc::SOL_PACKET
                && c.cmsg_type == libc::PACKET_AUXDATA
                && c.cmsg_len as usize
                    >= libc::CMSG_LEN(size_of::<libc::tpacket_auxdata>() as u32) as usize
            {
                let aux: libc::tpacket_auxdata =
                    std::ptr::read_unaligned(libc::CMSG_DATA(cmsg).cast());
                // Kernels before 3.0 leave the flag out but still fill the TCI.
                if aux.tp_status & libc::TP_STATUS_VLAN_VALID != 0 || aux.tp_vlan_tci != 0 {
                    tci = Some(aux.tp_vlan_tci);
                }
            }
            cmsg = libc::CMSG_NXTHDR(hdr, cmsg);
        }
    }
    tci
}

/// A link-layer socket address on interface `ifindex`.
fn sockaddr_ll(ifindex: i32, protocol: u16, destination: Option<[u8; 6]>) -> libc::sockaddr_ll {
    let mut addr = [0u8; 8];
    if let Some(d) = destination {
        addr[..6].copy_from_slice(&d);
    }
    libc::sockaddr_ll {
        sll_family: libc::AF_PACKET as libc::c_ushort,
        sll_protocol: protocol.to_be(),
        sll_ifindex: ifindex,
        sll_hatype: 0,
        sll_pkttype: 0,
        sll_halen: if destination.is_some() { 6 } else { 0 },
        sll_addr: addr,
    }
}

/// Checks what the kernel cannot: VLAN fields in range, group addresses.
fn validate(config: &EthConfig) -> io::Result<()> {
    if let Some(v) = config.vlan {
        if v.id > 4094 {
            return Err(io::Error::new(
                io::ErrorKind::InvalidInput,
                format!(
                    "VLAN ID {} is out of range: use 1..=4094 (0 for a priority tag only)",
                    v.id
                ),
            ));
        }
        if v.pcp > 7 {
            return Err(io::Error::new(
                io::ErrorKind::InvalidInput,
                format!("VLAN priority (PCP) {} is out of range: use 0..=7", v.pcp),
            ));
        }
    }
    for &group in &config.multicast_groups {
        check_group(group)?;
    }
    Ok(())
}

fn check_group(group: [u8; 6]) -> io::Result<()> {
    if group[0] & 1 == 0 {
        return Err(io::Error::new(
            io::ErrorKind::InvalidInput,
            format!(
                "{} is not a multicast MAC address: the lowest bit of its first octet must be set (e.g. 01:…)",
                MacAddr::from(group)
            ),
        ));
    }
    Ok(())
}

/// Looks the interface up by name in the calling thread's network namespace.
fn find_interface(name: &str) -> io::Result<pnet_datalink::NetworkInterface> {
    let all = pnet_datalink::interfaces();
    if let Some(found) = all.iter().find(|i| i.name == name) {
        return Ok(found.clone());
    }
    let mut names: Vec<&str> = all.iter().map(|i| i.name.as_str()).collect();
    names.sort_unstable();
    names.dedup();
    let available = if names.is_empty() {
        "none found".to_string()
    } else {
        names.join(", ")
    };
    Err(io::Error::new(
        io::ErrorKind::NotFound,
        format!(
            "no network interface named {name:?} in this network namespace; available: {available}"
        ),
    ))
}

fn open_socket() -> io::Result<OwnedFd> {
    // Protocol 0: nothing is queued until the filter is attached and the socket bound.
    // SAFETY: a plain syscall with constant arguments; the result is checked.
    let raw = unsafe {
        libc::socket(
            libc::AF_PACKET,
            libc::SOCK_RAW | libc::SOCK_NONBLOCK | libc::SOCK_CLOEXEC,
            0,
        )
    };
    if raw < 0 {
        let e = io::Error::last_os_error();
        return Err(match e.raw_os_error() {
            Some(libc::EPERM | libc::EACCES) => io::Error::new(
                io::ErrorKind::PermissionDenied,
                format!(
                    "opening a raw AF_PACKET socket needs root or CAP_NET_RAW ({e}): run as root, \
                     or grant it with `setcap cap_net_raw+ep PROGRAM`"
                ),
            ),
            Some(libc::EAFNOSUPPORT) => io::Error::new(
                io::ErrorKind::Unsupported,
                format!("this kernel has no AF_PACKET sockets (CONFIG_PACKET) ({e})"),
            ),
            _ => annotate(e, "cannot open a raw AF_PACKET socket"),
        });
    }
    // SAFETY: `raw` is a fresh descriptor that nothing else owns.
    Ok(unsafe { OwnedFd::from_raw_fd(raw) })
}

/// Keeps only RGTP frames, plain or behind one inline 802.1Q/802.1ad tag.
/// (Received tags are normally stripped by the kernel before filters run.)
fn attach_rgtp_filter(fd: &OwnedFd) -> io::Result<()> {
    const LDH_ABS: u16 = (libc::BPF_LD | libc::BPF_H | libc::BPF_ABS) as u16;
    const JEQ_K: u16 = (libc::BPF_JMP | libc::BPF_JEQ | libc::BPF_K) as u16;
    const RET_K: u16 = (libc::BPF_RET | libc::BPF_K) as u16;
    let op = |code: u16, jt: u8, jf: u8, k: u32| libc::sock_filter { code, jt, jf, k };
    let mut program = [
        op(LDH_ABS, 0, 0, 12),                      // 0: A = EtherType
        op(JEQ_K, 4, 0, u32::from(ETHERTYPE_RGTP)), // 1: RGTP → 6
        op(JEQ_K, 1, 0, u32::from(ETHERTYPE_VLAN)), // 2: tagged → 4
        op(JEQ_K, 0, 3, u32::from(ETHERTYPE_QINQ)), // 3: else → 7
        op(LDH_ABS, 0, 0, (ETH_HEADER + 2) as u32), // 4: A = inner EtherType
        op(JEQ_K, 0, 1, u32::from(ETHERTYPE_RGTP)), // 5: not RGTP → 7
        op(RET_K, 0, 0, u32::MAX),                  // 6: accept whole frame
        op(RET_K, 0, 0, 0),                         // 7: drop
    ];
    let fprog = libc::sock_fprog {
        len: program.len() as libc::c_ushort,
        filter: program.as_mut_ptr(),
    };
    set_option(fd, libc::SOL_SOCKET, libc::SO_ATTACH_FILTER, &fprog)
}

/// `PACKET_FANOUT`, `PACKET_FANOUT_DATA` and the classic-BPF fanout mode, from
/// `<linux/if_packet.h>`.
const PACKET_FANOUT: libc::c_int = 18;
const PACKET_FANOUT_DATA: libc::c_int = 22;
const PACKET_FANOUT_CBPF: u32 = 6;

/// Joins the bound socket to fanout group `id`, each frame going to the group's
/// member whose place is a classic BPF program's result modulo the group size. The
/// program returns the last four bytes of the source MAC address (read at the
/// link-layer offset, wherever the kernel's data pointer stands), so one peer's
/// frames always reach the same member and the kernel never reorders a peer.
fn join_fanout(fd: &OwnedFd, id: u16) -> io::Result<()> {
    const LDW_ABS: u16 = (libc::BPF_LD | libc::BPF_W | libc::BPF_ABS) as u16;
    const RET_A: u16 = (libc::BPF_RET | libc::BPF_A) as u16;
    let arg: u32 = u32::from(id) | (PACKET_FANOUT_CBPF << 16);
    set_option(fd, libc::SOL_PACKET, PACKET_FANOUT, &arg)?;
    let op = |code: u16, k: u32| libc::sock_filter {
        code,
        jt: 0,
        jf: 0,
        k,
    };
    // Source MAC: bytes 6..12 of the frame; its last four at 8..12.
    let mut program = [op(LDW_ABS, (libc::SKF_LL_OFF + 8) as u32), op(RET_A, 0)];
    let fprog = libc::sock_fprog {
        len: program.len() as libc::c_ushort,
        filter: program.as_mut_ptr(),
    };
    set_option(fd, libc::SOL_PACKET, PACKET_FANOUT_DATA, &fprog)
}

fn bind(fd: &OwnedFd, ifindex: i32, name: &str) -> io::Result<()> {
    let addr = sockaddr_ll(ifindex, libc::ETH_P_ALL as u16, None);
    // SAFETY: `addr` is a live sockaddr_ll whose address and size are passed together.
    let r = unsafe {
        libc::bind(
            fd.as_raw_fd(),
            (&addr as *const libc::sockaddr_ll).cast(),
            size_of::<libc::sockaddr_ll>() as libc::socklen_t,
        )
    };
    if r < 0 {
        let e = io::Error::last_os_error();
        return Err(match e.raw_os_error() {
            Some(libc::ENODEV | libc::ENXIO) => io::Error::new(
                io::ErrorKind::NotFound,
                format!("interface {name} disappeared while opening ({e})"),
            ),
            _ => annotate(e, &format!("cannot bind a raw socket to {name}")),
        });
    }
    Ok(())
}

/// The bound address as the kernel reports it (hardware type and address).
fn bound_address(fd: &OwnedFd) -> io::Result<libc::sockaddr_ll> {
    let mut addr = sockaddr_ll(0, 0, None);
    let mut len = size_of::<libc::sockaddr_ll>() as libc::socklen_t;
    // SAFETY: `addr` is a live sockaddr_ll and `len` its size; the kernel writes at most `len` bytes.
    let r = unsafe {
        libc::getsockname(
            fd.as_raw_fd(),
            (&mut addr as *mut libc::sockaddr_ll).cast(),
            &mut len,
        )
    };
    if r < 0 {
        return Err(io::Error::last_os_error());
    }
    Ok(addr)
}

/// Refuses interfaces that do not carry Ethernet frames.
fn check_ethernet(fd: &OwnedFd, name: &str) -> io::Result<()> {
    let addr = bound_address(fd)?;
    match addr.sll_hatype {
        libc::ARPHRD_ETHER => Ok(()),
        libc::ARPHRD_LOOPBACK => Err(io::Error::new(
            io::ErrorKind::InvalidInput,
            format!(
                "{name} is the loopback interface, which reflects every frame back to its sender: \
                 use an Ethernet interface, or a veth pair for local tests \
                 (`ip link add veth0 type veth peer name veth1`)"
            ),
        )),
        other => Err(io::Error::new(
            io::ErrorKind::InvalidInput,
            format!(
                "{name} is not an Ethernet interface (ARP hardware type {other}); \
                 raw-Ethernet RGTP needs an Ethernet (or veth) interface, \
                 use the UDP link on IP-only devices"
            ),
        )),
    }
}

/// The interface MAC as the bound socket reports it (when pnet did not).
fn local_address(fd: &OwnedFd) -> io::Result<[u8; 6]> {
    let addr = bound_address(fd)?;
    let mut mac = [0u8; 6];
    mac.copy_from_slice(&addr.sll_addr[..6]);
    Ok(mac)
}

/// The MTU of interface `name` (`SIOCGIFMTU`), asked through any socket of its namespace.
fn interface_mtu(fd: RawFd, name: &str) -> io::Result<usize> {
    // SAFETY: ifreq is plain old data (bytes, integers, a union of those and raw pointers);
    // all zeroes is a valid value.
    let mut req: libc::ifreq = unsafe { std::mem::zeroed() };
    if name.len() >= req.ifr_name.len() || name.bytes().any(|b| b == 0) {
        return Err(io::Error::new(
            io::ErrorKind::InvalidInput,
            format!("{name:?} is not a valid interface name"),
        ));
    }
    for (dst, &src) in req.ifr_name.iter_mut().zip(name.as_bytes()) {
        *dst = src as libc::c_char;
    }
    // SAFETY: SIOCGIFMTU reads the NUL-terminated ifr_name of the ifreq we own and
    // writes its ifru_mtu member.
    let r = unsafe { libc::ioctl(fd, libc::SIOCGIFMTU as _, &mut req as *mut libc::ifreq) };
    if r < 0 {
        return Err(io::Error::last_os_error());
    }
    // SAFETY: on success the kernel wrote the mtu member of the union, an int.
    let mtu = unsafe { req.ifr_ifru.ifru_mtu };
    usize::try_from(mtu)
        .map_err(|_| io::Error::new(io::ErrorKind::InvalidData, format!("negative MTU {mtu}")))
}

fn set_option<T>(fd: &OwnedFd, level: libc::c_int, name: libc::c_int, value: &T) -> io::Result<()> {
    // SAFETY: the fd is our open socket; `value` is a live T whose address and
    // size are passed together, and the kernel only reads it.
    let r = unsafe {
        libc::setsockopt(
            fd.as_raw_fd(),
            level,
            name,
            (value as *const T).cast(),
            size_of::<T>() as libc::socklen_t,
        )
    };
    if r < 0 {
        return Err(io::Error::last_os_error());
    }
    Ok(())
}

/// Asks for `bytes` of send and receive buffer, forcing past the sysctl limits when permitted.
fn set_buffers(fd: &OwnedFd, bytes: usize) {
    let value = bytes.min(libc::c_int::MAX as usize) as libc::c_int;
    for (force, plain) in [
        (libc::SO_RCVBUFFORCE, libc::SO_RCVBUF),
        (libc::SO_SNDBUFFORCE, libc::SO_SNDBUF),
    ] {
        if set_option(fd, libc::SOL_SOCKET, force, &value).is_err() {
            let _ = set_option(fd, libc::SOL_SOCKET, plain, &value);
        }
    }
}

/// The same error with `context` in front of its message.
fn annotate(e: io::Error, context: &str) -> io::Error {
    io::Error::new(e.kind(), format!("{context}: {e}"))
}

#[cfg(test)]
mod tests {
    use super::*;

    const A: [u8; 6] = [0x02, 0, 0, 0, 0, 0xa];
    const B: [u8; 6] = [0x02, 0, 0, 0, 0, 0xb];
    const GROUP: [u8; 6] = [0x03, 0x52, 0x47, 0x54, 0x50, 0x01];

    fn meta(len: usize, pkttype: u8, stripped_tci: Option<u16>) -> FrameMeta {
        FrameMeta {
            len,
            truncated: false,
            pkttype,
            stripped_tci,
        }
    }

    /// A frame from A to `dst` carrying `payload`, tagged inline when `vlan` is set.
    fn frame(dst: [u8; 6], vlan: Option<Vlan>, payload: &[u8]) -> Vec<u8> {
        let (header, len) = frame_header(A, dst, vlan);
        let mut f = header[..len].to_vec();
        f.extend_from_slice(payload);
        f
    }

    /// An RGTP-looking packet of `len` bytes whose Length field says `length`.
    fn packet(len: usize, length: u16) -> Vec<u8> {
        let mut p: Vec<u8> = (0..len).map(|i| (i * 7 + 1) as u8).collect();
        p[0] = 1;
        p[1] = 3;
        p[2..4].copy_from_slice(&length.to_be_bytes());
        p
    }

    fn parse(f: &[u8], m: FrameMeta, want: Option<Vlan>) -> Result<Accepted, Skip> {
        parse_frame(f, &m, want, &[GROUP])
    }

    #[test]
    fn test_header_layout() {
        let (h, len) = frame_header(A, B, None);
        assert_eq!(len, 14);
        assert_eq!(&h[..6], &B);
        assert_eq!(&h[6..12], &A);
        assert_eq!(&h[12..14], &[0x88, 0xb5]);

        let v = Vlan {
            id: 100,
            pcp: 5,
            dei: true,
        };
        let (h, len) = frame_header(A, B, Some(v));
        assert_eq!(len, 18);
        assert_eq!(&h[12..14], &[0x81, 0x00]);
        assert_eq!(&h[14..16], &v.tci().to_be_bytes());
        assert_eq!(&h[16..18], &[0x88, 0xb5]);
    }

    #[test]
    fn test_parse_plain_and_tagged() {
        let p = packet(100, 100);
        let f = frame(B, None, &p);
        let a = parse(&f, meta(f.len(), libc::PACKET_HOST, None), None).unwrap();
        assert_eq!((a.source, a.offset, a.len, a.vlan), (A, 14, 100, None));
        assert_eq!(&f[a.offset..a.offset + a.len], &p[..]);

        // Inline tag.
        let v = Vlan {
            id: 100,
            pcp: 5,
            dei: false,
        };
        let f = frame(B, Some(v), &p);
        let a = parse(&f, meta(f.len(), libc::PACKET_HOST, None), Some(v)).unwrap();
        assert_eq!((a.offset, a.len, a.vlan), (18, 100, Some(v)));
        // The wanted PCP does not matter, the VID does.
        let other_pcp = Vlan { pcp: 1, ..v };
        assert!(parse(&f, meta(f.len(), 0, None), Some(other_pcp)).is_ok());
        assert_eq!(
            parse(&f, meta(f.len(), 0, None), None),
            Err(Skip::Vlan),
            "tagged frame on an untagged link"
        );

        // Stripped tag (PACKET_AUXDATA).
        let f = frame(B, None, &p);
        let m = meta(f.len(), libc::PACKET_HOST, Some(v.tci()));
        assert_eq!(parse(&f, m, Some(v)).unwrap().vlan, Some(v));
        assert_eq!(parse(&f, m, None), Err(Skip::Vlan));
        assert_eq!(parse(&f, m, Some(Vlan { id: 200, ..v })), Err(Skip::Vlan));
        // Untagged frame on a tagged link.
        assert_eq!(parse(&f, meta(f.len(), 0, None), Some(v)), Err(Skip::Vlan));
        // Stripped outer tag plus an inline inner one: Q-in-Q is not ours.
        let f = frame(B, Some(v), &p);
        assert_eq!(
            parse(&f, meta(f.len(), 0, Some(v.tci())), Some(v)),
            Err(Skip::Vlan)
        );
        // A priority tag (VID 0) is the untagged VLAN.
        let prio = Vlan {
            id: 0,
            pcp: 6,
            dei: false,
        };
        let f = frame(B, None, &p);
        let a = parse(&f, meta(f.len(), 0, Some(prio.tci())), None).unwrap();
        assert_eq!(a.vlan, Some(prio));
        assert!(parse(&f, meta(f.len(), 0, None), Some(prio)).is_ok());
    }

    #[test]
    fn test_parse_filters() {
        let p = packet(60, 60);
        let f = frame(B, None, &p);
        let m = |pkttype| meta(f.len(), pkttype, None);
        assert_eq!(parse(&f, m(libc::PACKET_OUTGOING), None), Err(Skip::Own));
        assert_eq!(
            parse(&f, m(libc::PACKET_OTHERHOST), None),
            Err(Skip::Address)
        );
        let truncated = FrameMeta {
            truncated: true,
            ..m(0)
        };
        assert_eq!(parse(&f, truncated, None), Err(Skip::Truncated));

        let mut other = f.clone();
        other[12..14].copy_from_slice(&0x0800u16.to_be_bytes());
        assert_eq!(parse(&other, m(0), None), Err(Skip::EtherType));
        // Too short for a header, or for a tag.
        assert_eq!(parse(&f[..13], m(0), None), Err(Skip::EtherType));
        let tagged = frame(B, Some(Vlan::default()), &[]);
        assert_eq!(parse(&tagged[..16], m(0), None), Err(Skip::EtherType));
        assert_eq!(parse(&[], m(0), None), Err(Skip::EtherType));

        // Group addresses: broadcast and joined groups pass, others do not.
        let f = frame(BROADCAST, None, &p);
        assert!(parse(&f, meta(f.len(), libc::PACKET_BROADCAST, None), None).is_ok());
        let f = frame(GROUP, None, &p);
        assert!(parse(&f, meta(f.len(), libc::PACKET_MULTICAST, None), None).is_ok());
        let mut unjoined = GROUP;
        unjoined[5] = 2;
        let f = frame(unjoined, None, &p);
        assert_eq!(
            parse(&f, meta(f.len(), libc::PACKET_MULTICAST, None), None),
            Err(Skip::Address)
        );
    }

    #[test]
    fn test_padding() {
        // A 24-byte packet padded to a 46-byte payload is cut to its Length.
        let mut padded = packet(24, 24);
        padded.resize(46, 0);
        let f = frame(B, None, &padded);
        let a = parse(&f, meta(f.len(), 0, None), None).unwrap();
        assert_eq!((a.len, a.trimmed), (24, true));
        // Length out of 4..=payload: delivered as it is.
        for length in [0u16, 3, 47, 0xffff] {
            let p = packet(46, length);
            assert_eq!(unpadded_len(&p), (46, false), "Length {length}");
        }
        assert_eq!(unpadded_len(&packet(46, 46)), (46, false));
        assert_eq!(unpadded_len(&packet(46, 4)), (4, true));
        // A payload longer than a minimum frame's cannot be padding.
        assert_eq!(unpadded_len(&packet(47, 24)), (47, false));
        assert_eq!(unpadded_len(&[1, 2, 0]), (3, false));
        assert_eq!(unpadded_len(&[]), (0, false));
    }

    #[test]
    fn test_parse_never_panics_on_short_or_odd_frames() {
        let f = frame(B, Some(Vlan::default()), &packet(30, 30));
        for len in 0..=f.len() {
            for pkttype in 0..8 {
                for tci in [None, Some(0), Some(0xffff)] {
                    let _ = parse(&f[..len], meta(len, pkttype, tci), None);
                    let _ = parse(&f[..len], meta(len, pkttype, tci), Some(Vlan::default()));
                }
            }
        }
    }

    #[test]
    fn test_config_validation() {
        let mut c = EthConfig::new("eth0");
        assert_eq!(c.socket_buffer_bytes, DEFAULT_SOCKET_BUFFER_BYTES);
        assert!(validate(&c).is_ok());
        c.vlan = Some(Vlan {
            id: 4095,
            pcp: 0,
            dei: false,
        });
        assert_eq!(
            validate(&c).unwrap_err().kind(),
            io::ErrorKind::InvalidInput
        );
        c.vlan = Some(Vlan {
            id: 1,
            pcp: 8,
            dei: false,
        });
        assert_eq!(
            validate(&c).unwrap_err().kind(),
            io::ErrorKind::InvalidInput
        );
        c.vlan = None;
        c.multicast_groups = vec![B];
        let e = validate(&c).unwrap_err();
        assert_eq!(e.kind(), io::ErrorKind::InvalidInput);
        assert!(e.to_string().contains("not a multicast"), "{e}");
        c.multicast_groups = vec![GROUP, BROADCAST];
        assert!(validate(&c).is_ok());
    }

    #[test]
    fn test_unknown_interface_lists_available() {
        let e = EthLink::open(EthConfig::new("no-such-if0")).unwrap_err();
        assert_eq!(e.kind(), io::ErrorKind::NotFound);
        assert!(e.to_string().contains("available:"), "{e}");
    }
}
