//! Transmits: what an endpoint asks a driver to send.

use crate::Peer;

/// One batch of datagrams for one destination, written into the caller's buffer.
///
/// When `segment_size` is `Some(s)`, the buffer holds `size / s` datagrams of `s`
/// bytes followed by at most one shorter one (UDP GSO's shape); otherwise it holds
/// exactly one datagram of `size` bytes. Byte-stream endpoints hand out their
/// bytes the same way, with `segment_size` `None`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[must_use]
pub struct Transmit {
    /// Destination.
    pub destination: Peer,
    /// Bytes written into the buffer.
    pub size: usize,
    /// Datagram size when the buffer holds several.
    pub segment_size: Option<usize>,
}

impl Transmit {
    /// Iterates the datagrams of a transmit's buffer.
    pub fn datagrams<'a>(&self, buf: &'a [u8]) -> impl Iterator<Item = &'a [u8]> + 'a {
        let step = self.segment_size.unwrap_or(self.size).max(1);
        buf[..self.size].chunks(step)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn test_datagrams() {
        let buf = [1u8, 2, 3, 4, 5, 6, 7];
        let t = Transmit {
            destination: Peer::Mem(1),
            size: 7,
            segment_size: Some(3),
        };
        let d: Vec<&[u8]> = t.datagrams(&buf).collect();
        assert_eq!(d, [&[1, 2, 3][..], &[4, 5, 6], &[7]]);
        let one = Transmit {
            segment_size: None,
            ..t
        };
        assert_eq!(one.datagrams(&buf).count(), 1);
    }
}
