//! `packet`: the wire parser on any datagram, and parse → emit → parse equality;
//! the cutting of captured segment batches on the same datagrams.

use arbitrary::{Arbitrary, Unstructured};
use rgtp_wire::{Packet, Repr, MAX_PAYLOAD_ETHERNET, MAX_PAYLOAD_UDP};

/// The first byte picks the mode: even, the rest is a datagram; odd, the rest
/// drives `arbitrary` to build a [`Repr`] that is emitted and parsed back.
pub fn packet(data: &[u8]) {
    let Some((&mode, rest)) = data.split_first() else {
        return;
    };
    if mode & 1 == 0 {
        datagram(rest, mode);
    } else {
        structured(rest);
    }
}

fn datagram(data: &[u8], mode: u8) {
    let max_payload = match (mode >> 1) % 4 {
        0 => MAX_PAYLOAD_UDP,
        1 => MAX_PAYLOAD_ETHERNET,
        2 => 65_507,
        _ => usize::from(mode),
    };
    // A batch is cut into pieces that make up the datagram, each declaring its own
    // size, all as long as the first but the last; a valid packet is never one.
    if let Some(pieces) = rgtp_wire::split_batch(data) {
        let pieces: Vec<&[u8]> = pieces.collect();
        assert!(pieces.len() >= 2, "a batch of one");
        assert_eq!(pieces.concat(), data, "the pieces are not the datagram");
        for (i, p) in pieces.iter().enumerate() {
            assert_eq!(usize::from(u16::from_be_bytes([p[2], p[3]])), p.len());
            assert!(
                p.len() <= pieces[0].len() && (i + 1 == pieces.len() || p.len() == pieces[0].len())
            );
        }
        assert!(
            Repr::parse(data, 65_507).is_err(),
            "a valid packet taken for a batch"
        );
    }
    // The view: after new_checked succeeds, no accessor may panic.
    if let Ok(p) = Packet::new_checked(data) {
        let _ = (p.version(), p.type_byte(), p.packet_type(), p.length());
        let _ = (p.exposure_id(), p.body().len());
    }
    let Ok(repr) = Repr::parse(data, max_payload) else {
        return;
    };
    assert_eq!(repr.check(), Ok(()), "a parsed repr must be emittable");
    let len = repr.buffer_len();
    assert_eq!(
        len,
        data.len(),
        "emit length differs from the parsed datagram"
    );
    let mut buf = vec![0xa5u8; len + 8];
    repr.emit(&mut buf[..len]);
    assert!(
        buf[len..].iter().all(|&b| b == 0xa5),
        "emit wrote past buffer_len"
    );
    let again = Repr::parse(&buf[..len], max_payload).expect("re-parse of emitted bytes");
    assert_eq!(again, repr, "parse(emit(parse(d))) != parse(d)");
    // A second emission is byte-identical (reserved fields normalised once).
    let mut buf2 = vec![0x5au8; len];
    again.emit(&mut buf2);
    assert_eq!(buf[..len], buf2[..], "emit is not deterministic");
}

fn structured(data: &[u8]) {
    let mut u = Unstructured::new(data);
    let Ok(repr) = Repr::arbitrary(&mut u) else {
        return;
    };
    assert_eq!(repr.check(), Ok(()), "arbitrary reprs must pass check");
    let len = repr.buffer_len();
    let mut buf = vec![0xa5u8; len];
    repr.emit(&mut buf);
    let parsed = Repr::parse(&buf, MAX_PAYLOAD_UDP).expect("emitted repr must parse");
    assert_eq!(parsed, repr, "parse(emit(r)) != r");
    assert_eq!(parsed.packet_type(), repr.packet_type());
}
