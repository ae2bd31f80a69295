//! Ethernet II frames with IEEE 802.1Q tags: the one codec the raw-Ethernet
//! link and the capture tools share.
//!
//! ```text
//! dst MAC (6) | src MAC (6) | [0x8100 or 0x88A8 | TCI (2)]* | EtherType (2) | payload
//! ```
//!
//! Shaped like smoltcp's `wire/ethernet.rs`: [`Frame`] is a view over a
//! buffer with getters (and setters when the buffer is mutable), [`Repr`] the
//! parsed header. The guarantees are smoltcp's: after [`Frame::new_checked`]
//! no accessor panics, however short or odd the input; [`Repr::emit`] never
//! panics on a frame of at least [`Repr::buffer_len`] bytes. A frame may
//! stack tags (802.1ad Q-in-Q); [`Repr`] keeps the outermost, the one a link
//! filters on, and [`Frame::tag_count`] says how many there were.

use redgiant_base::link::Vlan;

/// EtherType of RGTP over raw Ethernet (upstream §7.5).
pub const ETHERTYPE_RGTP: u16 = 0x88B5;
/// EtherType of IPv4.
pub const ETHERTYPE_IPV4: u16 = 0x0800;
/// EtherType of IPv6.
pub const ETHERTYPE_IPV6: u16 = 0x86DD;
/// EtherType (TPID) of an IEEE 802.1Q tag.
pub const ETHERTYPE_VLAN: u16 = 0x8100;
/// EtherType (TPID) of an IEEE 802.1ad service tag, read like an 802.1Q one.
pub const ETHERTYPE_QINQ: u16 = 0x88A8;

/// Bytes of an untagged header: two addresses and the EtherType.
pub const HEADER_LEN: usize = 14;
/// Bytes one tag adds.
pub const TAG_LEN: usize = 4;
/// Smallest payload of a frame; shorter ones are padded to it.
pub const MIN_PAYLOAD: usize = 46;

/// The frame is shorter than its header (or one of its tags) says.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Truncated;

impl core::fmt::Display for Truncated {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.write_str("truncated Ethernet header")
    }
}

impl std::error::Error for Truncated {}

mod field {
    use core::ops::Range;

    pub(super) const DESTINATION: Range<usize> = 0..6;
    pub(super) const SOURCE: Range<usize> = 6..12;
    /// The outer EtherType, or the TPID of the first tag.
    pub(super) const ETHERTYPE: usize = 12;
    /// The tag control information of the first tag.
    pub(super) const TCI: usize = 14;
}

fn is_tag(ethertype: u16) -> bool {
    ethertype == ETHERTYPE_VLAN || ethertype == ETHERTYPE_QINQ
}

/// A read/write view of an Ethernet frame.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Frame<T: AsRef<[u8]>> {
    buffer: T,
}

impl<T: AsRef<[u8]>> Frame<T> {
    /// A view without checks; accessors may panic on a short buffer.
    pub const fn new_unchecked(buffer: T) -> Frame<T> {
        Frame { buffer }
    }

    /// A view after [`check_len`](Self::check_len): no accessor panics.
    pub fn new_checked(buffer: T) -> Result<Frame<T>, Truncated> {
        let frame = Self::new_unchecked(buffer);
        frame.check_len()?;
        Ok(frame)
    }

    /// Checks that the buffer holds the header and every tag it announces.
    pub fn check_len(&self) -> Result<(), Truncated> {
        self.walk().map(|_| ())
    }

    /// Unwraps the buffer.
    pub fn into_inner(self) -> T {
        self.buffer
    }

    /// `(tags, header length)`, reading only within the buffer.
    fn walk(&self) -> Result<(usize, usize), Truncated> {
        let b = self.buffer.as_ref();
        let mut at = field::ETHERTYPE;
        let mut tags = 0;
        loop {
            let Some(et) = b.get(at..at + 2) else {
                return Err(Truncated);
            };
            if !is_tag(u16::from_be_bytes([et[0], et[1]])) {
                return Ok((tags, at + 2));
            }
            tags += 1;
            at += TAG_LEN;
        }
    }

    fn be16(&self, at: usize) -> u16 {
        let b = self.buffer.as_ref();
        u16::from_be_bytes([b[at], b[at + 1]])
    }

    /// Destination address.
    pub fn dst_addr(&self) -> [u8; 6] {
        let mut a = [0; 6];
        a.copy_from_slice(&self.buffer.as_ref()[field::DESTINATION]);
        a
    }

    /// Source address.
    pub fn src_addr(&self) -> [u8; 6] {
        let mut a = [0; 6];
        a.copy_from_slice(&self.buffer.as_ref()[field::SOURCE]);
        a
    }

    /// How many tags precede the EtherType.
    pub fn tag_count(&self) -> usize {
        self.walk().map_or(0, |(tags, _)| tags)
    }

    /// The outermost tag, if the frame is tagged.
    pub fn vlan(&self) -> Option<Vlan> {
        is_tag(self.be16(field::ETHERTYPE)).then(|| Vlan::from_tci(self.be16(field::TCI)))
    }

    /// Bytes before the payload: 14, plus 4 per tag.
    pub fn header_len(&self) -> usize {
        self.walk().map_or(HEADER_LEN, |(_, len)| len)
    }

    /// The EtherType of the payload (after every tag).
    pub fn ethertype(&self) -> u16 {
        self.be16(self.header_len() - 2)
    }
}

impl<'a, T: AsRef<[u8]> + ?Sized> Frame<&'a T> {
    /// The payload, with any padding.
    pub fn payload(&self) -> &'a [u8] {
        &self.buffer.as_ref()[self.header_len()..]
    }
}

impl<T: AsRef<[u8]> + AsMut<[u8]>> Frame<T> {
    /// Sets the destination address.
    pub fn set_dst_addr(&mut self, a: [u8; 6]) {
        self.buffer.as_mut()[field::DESTINATION].copy_from_slice(&a);
    }

    /// Sets the source address.
    pub fn set_src_addr(&mut self, a: [u8; 6]) {
        self.buffer.as_mut()[field::SOURCE].copy_from_slice(&a);
    }

    fn set_be16(&mut self, at: usize, v: u16) {
        self.buffer.as_mut()[at..at + 2].copy_from_slice(&v.to_be_bytes());
    }

    /// Writes the EtherType, or with `vlan` an 802.1Q tag followed by it.
    pub fn set_vlan_and_ethertype(&mut self, vlan: Option<Vlan>, ethertype: u16) {
        match vlan {
            None => self.set_be16(field::ETHERTYPE, ethertype),
            Some(v) => {
                self.set_be16(field::ETHERTYPE, ETHERTYPE_VLAN);
                self.set_be16(field::TCI, v.tci());
                self.set_be16(field::TCI + 2, ethertype);
            }
        }
    }

    /// The payload, mutably.
    pub fn payload_mut(&mut self) -> &mut [u8] {
        let at = self.header_len();
        &mut self.buffer.as_mut()[at..]
    }
}

/// An Ethernet header: addresses, the outermost tag, the payload's EtherType.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Repr {
    /// Destination address.
    pub dst_addr: [u8; 6],
    /// Source address.
    pub src_addr: [u8; 6],
    /// The (outermost) 802.1Q tag.
    pub vlan: Option<Vlan>,
    /// EtherType of the payload.
    pub ethertype: u16,
}

impl Repr {
    /// Reads the header of a checked frame.
    pub fn parse<T: AsRef<[u8]> + ?Sized>(frame: &Frame<&T>) -> Result<Repr, Truncated> {
        frame.check_len()?;
        Ok(Repr {
            dst_addr: frame.dst_addr(),
            src_addr: frame.src_addr(),
            vlan: frame.vlan(),
            ethertype: frame.ethertype(),
        })
    }

    /// Bytes the header takes: 14, or 18 with a tag.
    pub const fn buffer_len(&self) -> usize {
        match self.vlan {
            None => HEADER_LEN,
            Some(_) => HEADER_LEN + TAG_LEN,
        }
    }

    /// Writes the header at the start of `frame`.
    ///
    /// # Panics
    ///
    /// When the frame is shorter than [`buffer_len`](Self::buffer_len).
    pub fn emit<T: AsRef<[u8]> + AsMut<[u8]> + ?Sized>(&self, frame: &mut Frame<&mut T>) {
        frame.set_dst_addr(self.dst_addr);
        frame.set_src_addr(self.src_addr);
        frame.set_vlan_and_ethertype(self.vlan, self.ethertype);
    }

    /// Appends the header to `out`.
    pub fn emit_to_vec(&self, out: &mut Vec<u8>) {
        let start = out.len();
        out.resize(start + self.buffer_len(), 0);
        self.emit(&mut Frame::new_unchecked(&mut out[start..]));
    }
}

/// The length of the RGTP packet in the payload of an RGTP frame, padding
/// cut off (spec §15.1): a payload that fits a minimum-size frame (at most
/// [`MIN_PAYLOAD`] bytes) ends where the packet's Length field (bytes 2..4)
/// says, when `4 <= Length <= payload`; any other payload is whole.
pub fn rgtp_len(payload: &[u8]) -> usize {
    if !(4..=MIN_PAYLOAD).contains(&payload.len()) {
        return payload.len();
    }
    let length = usize::from(u16::from_be_bytes([payload[2], payload[3]]));
    if (4..=payload.len()).contains(&length) {
        length
    } else {
        payload.len()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// 02:00:00:00:00:0b ← 02:00:00:00:00:0a, VLAN 100 PCP 5, RGTP, 4 payload bytes.
    static FRAME_BYTES: [u8; 22] = [
        0x02, 0x00, 0x00, 0x00, 0x00, 0x0b, 0x02, 0x00, 0x00, 0x00, 0x00, 0x0a, 0x81, 0x00, 0xa0,
        0x64, 0x88, 0xb5, 0x01, 0x08, 0x00, 0x04,
    ];

    static PAYLOAD_BYTES: [u8; 4] = [0x01, 0x08, 0x00, 0x04];

    fn repr() -> Repr {
        Repr {
            dst_addr: [2, 0, 0, 0, 0, 0x0b],
            src_addr: [2, 0, 0, 0, 0, 0x0a],
            vlan: Some(Vlan {
                id: 100,
                pcp: 5,
                dei: false,
            }),
            ethertype: ETHERTYPE_RGTP,
        }
    }

    #[test]
    fn test_deconstruct() {
        let frame = Frame::new_checked(&FRAME_BYTES[..]).unwrap();
        assert_eq!(frame.dst_addr(), [2, 0, 0, 0, 0, 0x0b]);
        assert_eq!(frame.src_addr(), [2, 0, 0, 0, 0, 0x0a]);
        assert_eq!(frame.vlan(), repr().vlan);
        assert_eq!(frame.tag_count(), 1);
        assert_eq!(frame.header_len(), 18);
        assert_eq!(frame.ethertype(), ETHERTYPE_RGTP);
        assert_eq!(frame.payload(), &PAYLOAD_BYTES);
    }

    #[test]
    fn test_construct() {
        let mut bytes = vec![0xa5; 22];
        let mut frame = Frame::new_unchecked(&mut bytes);
        frame.set_dst_addr([2, 0, 0, 0, 0, 0x0b]);
        frame.set_src_addr([2, 0, 0, 0, 0, 0x0a]);
        frame.set_vlan_and_ethertype(repr().vlan, ETHERTYPE_RGTP);
        frame.payload_mut().copy_from_slice(&PAYLOAD_BYTES);
        assert_eq!(&frame.into_inner()[..], &FRAME_BYTES[..]);
    }

    #[test]
    fn test_parse() {
        let frame = Frame::new_unchecked(&FRAME_BYTES[..]);
        assert_eq!(Repr::parse(&frame), Ok(repr()));
        let untagged = [&FRAME_BYTES[..12], &FRAME_BYTES[16..]].concat();
        let frame = Frame::new_unchecked(&untagged[..]);
        let want = Repr {
            vlan: None,
            ..repr()
        };
        assert_eq!(Repr::parse(&frame), Ok(want));
        assert_eq!(frame.payload(), &PAYLOAD_BYTES);
    }

    #[test]
    fn test_emit() {
        let r = repr();
        assert_eq!(r.buffer_len(), 18);
        let mut bytes = vec![0xa5; r.buffer_len()];
        r.emit(&mut Frame::new_unchecked(&mut bytes));
        assert_eq!(&bytes[..], &FRAME_BYTES[..18]);
        let mut out = vec![0xee];
        Repr { vlan: None, ..r }.emit_to_vec(&mut out);
        assert_eq!(out.len(), 15);
        assert_eq!(&out[13..], &[0x88, 0xb5]);
    }

    #[test]
    fn test_stacked_tags() {
        // An 802.1ad service tag (VLAN 7) over an 802.1Q one (VLAN 100).
        let mut f = FRAME_BYTES[..12].to_vec();
        f.extend_from_slice(&[0x88, 0xa8, 0x00, 0x07]);
        f.extend_from_slice(&FRAME_BYTES[12..]);
        let frame = Frame::new_checked(&f[..]).unwrap();
        assert_eq!(frame.tag_count(), 2);
        assert_eq!(frame.vlan(), Some(Vlan::from_tci(7)));
        assert_eq!(frame.header_len(), 22);
        assert_eq!(frame.ethertype(), ETHERTYPE_RGTP);
        assert_eq!(frame.payload(), &PAYLOAD_BYTES);
    }

    #[test]
    fn test_short_input_is_an_error_never_a_panic() {
        for len in 0..FRAME_BYTES.len() {
            let short = &FRAME_BYTES[..len];
            let checked = Frame::new_checked(short);
            assert_eq!(checked.is_err(), len < 18, "{len} bytes");
            if let Ok(frame) = checked {
                let _ = (frame.vlan(), frame.ethertype(), frame.payload());
            }
            assert_eq!(Repr::parse(&Frame::new_unchecked(short)).is_err(), len < 18);
        }
        // Tags all the way down.
        let tags = [0x81u8, 0x00].repeat(40);
        assert_eq!(Frame::new_checked(&tags[..]), Err(Truncated));
    }

    proptest::proptest! {
        #[test]
        fn test_round_trip(
            dst in proptest::array::uniform6(0u8..),
            src in proptest::array::uniform6(0u8..),
            tag in proptest::option::of((0u16..4096, 0u8..8, proptest::bool::ANY)),
            ethertype in 0u16..,
            payload in proptest::collection::vec(0u8.., 0..64),
        ) {
            let ethertype = if is_tag(ethertype) { ETHERTYPE_RGTP } else { ethertype };
            let repr = Repr {
                dst_addr: dst,
                src_addr: src,
                vlan: tag.map(|(id, pcp, dei)| Vlan { id, pcp, dei }),
                ethertype,
            };
            let mut bytes = Vec::new();
            repr.emit_to_vec(&mut bytes);
            proptest::prop_assert_eq!(bytes.len(), repr.buffer_len());
            bytes.extend_from_slice(&payload);
            let frame = Frame::new_checked(&bytes[..]).unwrap();
            proptest::prop_assert_eq!(Repr::parse(&frame), Ok(repr));
            proptest::prop_assert_eq!(frame.payload(), &payload[..]);
        }

        #[test]
        fn test_parse_never_panics(bytes in proptest::collection::vec(0u8.., 0..48)) {
            if let Ok(frame) = Frame::new_checked(&bytes[..]) {
                let _ = (frame.vlan(), frame.ethertype(), frame.payload(), Repr::parse(&frame));
            }
        }
    }

    #[test]
    fn test_rgtp_len() {
        let mut p = vec![1, 8, 0, 24];
        p.resize(46, 0);
        assert_eq!(rgtp_len(&p), 24);
        for length in [0u16, 3, 47, 0xffff] {
            p[2..4].copy_from_slice(&length.to_be_bytes());
            assert_eq!(rgtp_len(&p), 46, "Length {length}");
        }
        p[2..4].copy_from_slice(&46u16.to_be_bytes());
        assert_eq!(rgtp_len(&p), 46);
        p.push(0);
        p[2..4].copy_from_slice(&24u16.to_be_bytes());
        assert_eq!(
            rgtp_len(&p),
            47,
            "longer than a minimum frame's: never padding"
        );
        assert_eq!(rgtp_len(&[1, 2, 0]), 3);
        assert_eq!(rgtp_len(&[]), 0);
    }
}
