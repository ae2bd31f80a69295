//! Segment batches captured whole.
//!
//! A sender using UDP GSO hands the kernel several packets back to back in one
//! buffer, each `gso_size` bytes long but the last (no longer), and the kernel cuts
//! them into datagrams. A capture taken on the sending host, or on loopback, where
//! the buffer travels uncut, records the batch as one datagram. On the path every
//! packet has a datagram of its own (spec §1.4); a capture tool cuts the batch up
//! again to read it, by the packets' own Length fields.

use crate::{HEADER_LEN, VERSION};

/// The packets of `datagram` when it is a segment batch captured whole: two or
/// more packets, each starting with version 1 and a Length equal to its own size,
/// all as long as the first but the last, which is no longer. `None` for anything
/// else, a single packet included. The packets are not parsed.
#[must_use]
pub fn split_batch(datagram: &[u8]) -> Option<std::slice::Chunks<'_, u8>> {
    let declared = |p: &[u8]| -> Option<usize> {
        (p.len() >= HEADER_LEN && p[0] == VERSION)
            .then(|| usize::from(u16::from_be_bytes([p[2], p[3]])))
    };
    let size = declared(datagram)?;
    if size < HEADER_LEN || size >= datagram.len() {
        return None;
    }
    datagram
        .chunks(size)
        .all(|p| declared(p) == Some(p.len()))
        .then(|| datagram.chunks(size))
}

/// The packets a captured datagram holds: those of a segment batch captured whole
/// ([`split_batch`]), else the datagram itself (a packet, or something malformed).
pub fn captured_packets(datagram: &[u8]) -> impl Iterator<Item = &[u8]> {
    let batch = split_batch(datagram);
    let whole = batch.is_none().then_some(datagram);
    whole.into_iter().chain(batch.into_iter().flatten())
}

#[cfg(test)]
mod tests {
    use super::{captured_packets, split_batch};

    /// A packet of `len` bytes that declares `len`, filled with `fill`.
    fn packet(len: usize, fill: u8) -> Vec<u8> {
        let mut p = vec![fill; len];
        p[0] = 1;
        p[1] = 3;
        p[2..4].copy_from_slice(&(len as u16).to_be_bytes());
        p
    }

    #[test]
    fn a_batch_is_cut_at_its_packets_and_the_last_may_be_short() {
        let mut d = [packet(1240, 0xa5), packet(1240, 0x5a), packet(700, 0x11)].concat();
        let parts: Vec<&[u8]> = split_batch(&d).expect("a batch").collect();
        assert_eq!(parts.len(), 3);
        assert_eq!(parts[1], &packet(1240, 0x5a)[..]);
        assert_eq!(parts[2], &packet(700, 0x11)[..]);
        // Equal sizes throughout.
        d.truncate(2480);
        assert_eq!(split_batch(&d).expect("a batch").count(), 2);
        assert_eq!(captured_packets(&d).count(), 2);
        // A packet alone, or anything else, is itself.
        let one = packet(1240, 0xa5);
        assert_eq!(captured_packets(&one).collect::<Vec<_>>(), [&one[..]]);
        assert_eq!(
            captured_packets(&[9, 9]).collect::<Vec<_>>(),
            [&[9u8, 9][..]]
        );
    }

    #[test]
    fn anything_else_is_not_a_batch() {
        let one = packet(1240, 0xa5);
        assert!(split_batch(&one).is_none(), "one packet");
        // A second packet declaring another size, or longer than the first.
        let bad_len = [packet(1240, 0), packet(1000, 0), packet(1000, 0)].concat();
        assert!(split_batch(&bad_len).is_none());
        let longer = [packet(600, 0), packet(1200, 0)].concat();
        assert!(split_batch(&longer).is_none());
        // Another version, a stub, a Length under the header, a short datagram.
        let mut v2 = [packet(600, 0), packet(600, 0)].concat();
        v2[600] = 2;
        assert!(split_batch(&v2).is_none());
        let stub = [packet(600, 0), vec![1, 3]].concat();
        assert!(split_batch(&stub).is_none());
        let mut tiny = packet(8, 0);
        tiny[2..4].copy_from_slice(&2u16.to_be_bytes());
        assert!(split_batch(&tiny).is_none());
        assert!(split_batch(&[1, 3, 0]).is_none());
        assert!(split_batch(&[]).is_none());
    }
}
