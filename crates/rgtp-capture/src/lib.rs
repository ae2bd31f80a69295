//! Capture files for RGTP: record any link (datagram or stream) to a file
//! Wireshark opens, read captures back as datagrams for replay and inspection.
//!
//! # Files: pure Rust (`pcap-file`), live capture: libpcap (`pcap`, feature `live`)
//!
//! Files are read with the pure-Rust `pcap-file` crate and written directly
//! (classic pcap is a 24-byte header and 16 bytes per record), not through
//! libpcap:
//! - reading must run inside the fuzzer and on arbitrary bytes in memory, with
//!   every malformed file an error rather than a C library's undefined state;
//! - the default build (and the README's two commands) then needs no C library,
//!   and recordings are byte-for-byte deterministic (the canonical corpus in
//!   `pcaps/` is regenerated and compared in CI);
//! - a recorder must flush and report write errors (a full disk) as they
//!   happen, which libpcap's dumper hides behind `FILE*` buffering.
//!
//! Capturing live on an interface is what libpcap is for (BPF filters, ring
//! buffers, every capture backend), so `live` uses the `pcap` crate, behind
//! the `live` feature, which needs `libpcap-dev` to build.
//!
//! Written files are classic pcap, link type Ethernet, microsecond
//! timestamps. Readable files: classic pcap (either byte order, µs or ns) and
//! pcapng, with link types Ethernet, Linux cooked (v1, v2), raw IP and BSD loopback.
#![warn(missing_docs, unreachable_pub)]

use std::io::{self, Write};

use pcap_file::pcap::PcapParser;
use pcap_file::pcapng::blocks::interface_description::InterfaceDescriptionOption;
use pcap_file::pcapng::{Block, PcapNgParser};
use pcap_file::DataLink;

use redgiant_base::Peer;
pub use rgtp_link::{Vlan, ETHERTYPE_RGTP};

pub mod frame;
#[cfg(feature = "live")]
pub mod live;
pub mod record;
pub mod replay;
pub mod stream;

pub use frame::{FrameError, LinkLayer};
pub use record::Recorder;
pub use stream::StreamRecorder;

/// Largest frame recorded in full.
pub const SNAPLEN: u32 = 262_144;

/// Writes a classic pcap file (Ethernet, microseconds, little-endian).
///
/// The format is a fixed 24-byte header and a 16-byte header per record, so
/// it is written directly; that keeps the writer flushable mid-capture.
pub struct CaptureWriter<W: Write> {
    inner: W,
    frame: Vec<u8>,
    records: u64,
}

impl<W: Write> std::fmt::Debug for CaptureWriter<W> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("CaptureWriter")
            .field("records", &self.records)
            .finish_non_exhaustive()
    }
}

/// Link type Ethernet in the tcpdump.org registry.
const LINKTYPE_ETHERNET: u32 = 1;

impl<W: Write> CaptureWriter<W> {
    /// Writes the file header.
    pub fn new(mut w: W) -> io::Result<Self> {
        let mut h = [0u8; 24];
        h[0..4].copy_from_slice(&0xa1b2_c3d4u32.to_le_bytes());
        h[4..6].copy_from_slice(&2u16.to_le_bytes());
        h[6..8].copy_from_slice(&4u16.to_le_bytes());
        // thiszone and sigfigs stay 0.
        h[16..20].copy_from_slice(&SNAPLEN.to_le_bytes());
        h[20..24].copy_from_slice(&LINKTYPE_ETHERNET.to_le_bytes());
        w.write_all(&h)?;
        Ok(CaptureWriter {
            inner: w,
            frame: Vec::with_capacity(2048),
            records: 0,
        })
    }

    /// Records one whole frame seen at `ts_us` (µs since the Unix epoch).
    pub fn write_frame(&mut self, ts_us: u64, frame: &[u8]) -> io::Result<()> {
        let kept = &frame[..frame.len().min(SNAPLEN as usize)];
        let secs = u32::try_from(ts_us / 1_000_000).unwrap_or(u32::MAX);
        let mut h = [0u8; 16];
        h[0..4].copy_from_slice(&secs.to_le_bytes());
        h[4..8].copy_from_slice(&((ts_us % 1_000_000) as u32).to_le_bytes());
        h[8..12].copy_from_slice(&(kept.len() as u32).to_le_bytes());
        h[12..16].copy_from_slice(&u32::try_from(frame.len()).unwrap_or(u32::MAX).to_le_bytes());
        self.inner.write_all(&h)?;
        self.inner.write_all(kept)?;
        self.records += 1;
        Ok(())
    }

    /// Records the frame carrying `payload` from `src` to `dst` (see [`frame::build`]).
    pub fn write_datagram(
        &mut self,
        ts_us: u64,
        src: Peer,
        dst: Peer,
        vlan: Option<Vlan>,
        payload: &[u8],
    ) -> io::Result<()> {
        let mut frame = std::mem::take(&mut self.frame);
        frame.clear();
        frame::build(src, dst, vlan, payload, &mut frame);
        let r = self.write_frame(ts_us, &frame);
        self.frame = frame;
        r
    }

    /// Records written so far.
    pub fn records(&self) -> u64 {
        self.records
    }

    /// Flushes the underlying writer.
    pub fn flush(&mut self) -> io::Result<()> {
        self.inner.flush()
    }

    /// Flushes and returns the writer.
    pub fn into_inner(mut self) -> io::Result<W> {
        self.inner.flush()?;
        Ok(self.inner)
    }
}

/// A datagram found in a capture.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Datagram {
    /// Sender.
    pub src: Peer,
    /// Receiver.
    pub dst: Peer,
    /// Outer 802.1Q tag, if any.
    pub vlan: Option<Vlan>,
    /// The datagram (an RGTP packet if well-formed).
    pub payload: Vec<u8>,
    /// Ethernet padding after the packet in a raw frame.
    pub padding: usize,
}

/// One record of a capture.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Record {
    /// Position in the file, from 0 (packet records only).
    pub index: usize,
    /// Capture time, µs since the Unix epoch.
    pub ts_us: u64,
    /// Length on the wire.
    pub orig_len: usize,
    /// Bytes captured.
    pub captured_len: usize,
    /// The datagram, or why the frame holds none.
    pub content: Result<Datagram, FrameError>,
}

/// File formats.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Format {
    /// Classic libpcap.
    Pcap,
    /// pcapng.
    PcapNg,
}

/// A whole capture, read.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Capture {
    /// File format.
    pub format: Format,
    /// Every packet record, in file order.
    pub records: Vec<Record>,
}

impl Capture {
    /// The records that hold a datagram.
    pub fn datagrams(&self) -> impl Iterator<Item = (&Record, &Datagram)> + '_ {
        self.records
            .iter()
            .filter_map(|r| r.content.as_ref().ok().map(|d| (r, d)))
    }
}

/// Why a capture could not be read.
#[derive(Debug, thiserror::Error)]
pub enum CaptureError {
    /// Neither pcap nor pcapng.
    #[error("not a capture file (neither pcap nor pcapng magic number); give a file written by rgtp --record, tcpdump -w or tshark -w")]
    NotACapture,
    /// The header or a record is damaged.
    #[error("damaged capture at byte {offset}: {reason}")]
    Damaged {
        /// Where.
        offset: usize,
        /// What the reader said.
        reason: String,
    },
    /// A link type without a decoder.
    #[error("link type {0} is not supported (capture on Ethernet, loopback or `-i any`)")]
    LinkType(u32),
    /// Reading the file failed.
    #[error("cannot read the capture: {0}")]
    Io(#[from] io::Error),
}

fn datalink_number(d: DataLink) -> u32 {
    u32::from(d)
}

fn decode_record(
    link: LinkLayer,
    index: usize,
    ts_us: u64,
    orig_len: usize,
    data: &[u8],
) -> Record {
    let content = frame::decode(link, data).map(|d| Datagram {
        src: d.src,
        dst: d.dst,
        vlan: d.vlan,
        payload: d.payload.to_vec(),
        padding: d.padding,
    });
    Record {
        index,
        ts_us,
        orig_len,
        captured_len: data.len(),
        content,
    }
}

/// Reads a capture held in memory. A file cut short ends the capture at the
/// last whole record (what a recorder killed mid-write leaves) rather than
/// failing.
pub fn read(bytes: &[u8]) -> Result<Capture, CaptureError> {
    if bytes.len() >= 4 && bytes[..4] == [0x0a, 0x0d, 0x0d, 0x0a] {
        return read_pcapng(bytes);
    }
    let (mut rest, parser) = PcapParser::new(bytes).map_err(|e| match e {
        pcap_file::PcapError::IncompleteBuffer | pcap_file::PcapError::InvalidField(_) => {
            CaptureError::NotACapture
        }
        other => CaptureError::Damaged {
            offset: 0,
            reason: other.to_string(),
        },
    })?;
    let linktype = datalink_number(parser.header().datalink);
    let link = LinkLayer::from_linktype(linktype).ok_or(CaptureError::LinkType(linktype))?;
    let mut records = Vec::new();
    while !rest.is_empty() {
        match parser.next_packet(rest) {
            Ok((r, p)) => {
                let ts = p.timestamp.as_micros().min(u128::from(u64::MAX)) as u64;
                records.push(decode_record(
                    link,
                    records.len(),
                    ts,
                    p.orig_len as usize,
                    &p.data,
                ));
                rest = r;
            }
            Err(pcap_file::PcapError::IncompleteBuffer) => break,
            Err(e) => {
                return Err(CaptureError::Damaged {
                    offset: bytes.len() - rest.len(),
                    reason: e.to_string(),
                })
            }
        }
    }
    Ok(Capture {
        format: Format::Pcap,
        records,
    })
}

fn read_pcapng(bytes: &[u8]) -> Result<Capture, CaptureError> {
    let damaged = |rest: &[u8], e: pcap_file::PcapError| CaptureError::Damaged {
        offset: bytes.len() - rest.len(),
        reason: e.to_string(),
    };
    let (mut rest, mut parser) = PcapNgParser::new(bytes).map_err(|e| damaged(bytes, e))?;
    let mut records = Vec::new();
    while !rest.is_empty() {
        let (r, block) = match parser.next_block(rest) {
            Ok(x) => x,
            Err(pcap_file::PcapError::IncompleteBuffer) => break,
            Err(e) => return Err(damaged(rest, e)),
        };
        let (iface, raw_ts, orig_len, data) = match &block {
            Block::EnhancedPacket(p) => (
                p.interface_id as usize,
                Some(p.timestamp.as_nanos()),
                p.original_len as usize,
                &p.data[..],
            ),
            Block::SimplePacket(p) => (0, None, p.original_len as usize, &p.data[..]),
            Block::Packet(p) => (
                usize::from(p.interface_id),
                Some(u128::from(p.timestamp)),
                p.original_len as usize,
                &p.data[..],
            ),
            _ => {
                rest = r;
                continue;
            }
        };
        let Some(desc) = parser.interfaces().get(iface) else {
            return Err(damaged(
                rest,
                pcap_file::PcapError::InvalidField("packet names an undeclared interface"),
            ));
        };
        let linktype = datalink_number(desc.linktype);
        let link = LinkLayer::from_linktype(linktype).ok_or(CaptureError::LinkType(linktype))?;
        // The block's 64-bit timestamp counts units of if_tsresol (default 10^-6 s);
        // pcap-file hands it over as if it were nanoseconds.
        let resol = desc
            .options
            .iter()
            .find_map(|o| match o {
                InterfaceDescriptionOption::IfTsResol(r) => Some(*r),
                _ => None,
            })
            .unwrap_or(6);
        let ts_us = raw_ts.map_or(0, |units| units_to_us(units, resol));
        records.push(decode_record(link, records.len(), ts_us, orig_len, data));
        rest = r;
    }
    Ok(Capture {
        format: Format::PcapNg,
        records,
    })
}

/// Converts a pcapng timestamp in if_tsresol units to microseconds.
fn units_to_us(units: u128, resol: u8) -> u64 {
    let us = if resol & 0x80 == 0 {
        let exp = u32::from(resol & 0x7f);
        if exp >= 6 {
            10u128.checked_pow(exp - 6).map_or(0, |div| units / div)
        } else {
            units.saturating_mul(10u128.pow(6 - exp))
        }
    } else {
        let exp = u32::from(resol & 0x7f).min(127);
        let per_sec = 1u128.checked_shl(exp).unwrap_or(0);
        units
            .saturating_mul(1_000_000)
            .checked_div(per_sec)
            .unwrap_or(0)
    };
    us.min(u128::from(u64::MAX)) as u64
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn written_captures_read_back() {
        let mut w = CaptureWriter::new(Vec::new()).unwrap();
        let a = Peer::Ip("127.0.0.1:9000".parse().unwrap());
        let b = Peer::Ip("127.0.0.1:40000".parse().unwrap());
        w.write_datagram(1_700_000_000_123_456, a, b, None, b"\x01\x02\x00\x04")
            .unwrap();
        let e1 = Peer::Ethernet([2, 0, 0, 0, 0, 1]);
        let e2 = Peer::Ethernet([2, 0, 0, 0, 0, 2]);
        let vlan = Some(Vlan {
            id: 7,
            pcp: 3,
            dei: false,
        });
        w.write_datagram(1_700_000_000_200_000, e1, e2, vlan, b"\x01\x06\x00\x05z")
            .unwrap();
        w.write_frame(1_700_000_000_300_000, &[0; 8]).unwrap();
        let bytes = w.into_inner().unwrap();
        let c = read(&bytes).unwrap();
        assert_eq!(c.format, Format::Pcap);
        assert_eq!(c.records.len(), 3);
        assert_eq!(c.records[0].ts_us, 1_700_000_000_123_456);
        let d = c.records[0].content.as_ref().unwrap();
        assert_eq!(
            (d.src, d.dst, &d.payload[..]),
            (a, b, &b"\x01\x02\x00\x04"[..])
        );
        let d = c.records[1].content.as_ref().unwrap();
        assert_eq!((d.src, d.dst, d.vlan), (e1, e2, vlan));
        assert!(c.records[2].content.is_err());
        // Cut mid-record: the whole records before the cut remain.
        let cut = read(&bytes[..bytes.len() - 3]).unwrap();
        assert_eq!(cut.records.len(), 2);
        assert!(matches!(
            read(b"hello world, not a capture"),
            Err(CaptureError::NotACapture)
        ));
    }

    #[test]
    fn pcapng_timestamps_follow_if_tsresol() {
        assert_eq!(units_to_us(1_500_000, 6), 1_500_000);
        assert_eq!(units_to_us(1_500_000_000, 9), 1_500_000);
        assert_eq!(units_to_us(15, 1), 1_500_000);
        assert_eq!(units_to_us(1 << 20, 0x80 | 20), 1_000_000);
        assert_eq!(units_to_us(u128::MAX, 0x7f), 0);
    }

    proptest::proptest! {
        #[test]
        fn read_never_panics(bytes in proptest::collection::vec(proptest::prelude::any::<u8>(), 0..256)) {
            let _ = read(&bytes);
            let mut ng = vec![0x0a, 0x0d, 0x0d, 0x0a];
            ng.extend_from_slice(&bytes);
            let _ = read(&ng);
        }
    }
}
