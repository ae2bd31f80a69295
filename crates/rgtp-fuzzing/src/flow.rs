//! `flow`: the flow datagram codec (spec/flow.md), then a flow endpoint fed the input,
//! plain or on encrypted and parity-protected flows.

use redgiant_base::{DatagramEndpoint, Endpoint, Instant, Peer};
use redgiant_flow::wire::{Message, Packet, Repr, SEALED_HEADER_LEN, TAG_LEN};
use redgiant_flow::{Config, Event, FlowEndpoint, FlowId, FlowKey, QoS};

const PEER: Peer = Peer::Mem(2);
const HOME: Peer = Peer::Mem(1);

/// The first byte picks the part:
///
/// - even: the rest is one datagram. Checks: the zero-copy view and the parser
///   agree on the flow ids, a datagram that parses emits bytes that parse back to
///   the same message, and emitting writes exactly `buffer_len` bytes.
///   Sealed datagrams frame back the same way, and a plain datagram of a kind
///   that is sealed lays out as the sealed one with the same fields.
/// - 1 modulo 4: the rest is a stream of datagrams (each behind a one-byte length
///   and a one-byte time step in milliseconds) from one peer to an endpoint that
///   has a registered name and a flow of its own to that peer, accepting every
///   flow asked for and reading everything readable. Checks: no panic, no more
///   flows than the limit, nothing read from a flow larger than the SDU limit.
/// - 3 modulo 4: a keyed peer allocates three flows to a keyed endpoint (encrypted
///   and reliable, encrypted with parity, plain with parity) and the rest is a
///   script of writes on them, deliveries of what the peer sent (as sent, or with
///   a byte changed), raw datagrams and time steps (the layout is at the private
///   `sealed`). Checks: no panic; every SDU read from an encrypted flow is one the
///   peer wrote on it.
pub fn flow(data: &[u8]) {
    let Some((&mode, rest)) = data.split_first() else {
        return;
    };
    match mode % 4 {
        1 => endpoint(rest),
        3 => {
            sealed(rest);
        }
        _ => codec(rest),
    }
}

fn codec(d: &[u8]) {
    let view = Packet::new_checked(d);
    let parsed = Repr::parse(d);
    if let (Ok(p), Ok(r)) = (&view, &parsed) {
        let _ = (p.version(), p.kind_code(), p.frag(), p.body(), p.seq());
        assert_eq!(
            (p.src(), p.dst()),
            (r.src, r.dst),
            "view and parser disagree on the flow ids"
        );
    }
    let Ok(repr) = parsed else {
        return;
    };
    let len = repr.buffer_len();
    let mut buf = vec![0xa5; len + 4];
    repr.emit(&mut buf[..len]);
    assert!(
        buf[len..].iter().all(|&b| b == 0xa5),
        "emit wrote past buffer_len"
    );
    assert_eq!(
        Repr::parse(&buf[..len]),
        Ok(repr),
        "emit(parse(d)) does not parse back to the same message"
    );
    match repr.message {
        Message::Sealed {
            kind,
            seq,
            frag,
            sealed,
            ..
        } => {
            // What the parser framed, read as if it were open: never a panic.
            let body = &sealed[..sealed.len() - TAG_LEN];
            let _ = Message::open(kind, seq, frag, body);
        }
        _ if !repr.is_sealed() => {
            let mut out = Vec::new();
            if let Ok(at) = repr.emit_to_seal(0x0102_0304_0506_0708, &mut out) {
                assert_eq!(at, SEALED_HEADER_LEN);
                assert_eq!(&out[at..], &buf[18..len], "the body moved");
                out.extend_from_slice(&[0; TAG_LEN]);
                let again = Repr::parse(&out).expect("the sealed layout parses");
                assert_eq!(
                    (again.src, again.dst, again.kind()),
                    (repr.src, repr.dst, repr.kind())
                );
                assert!(again.is_sealed());
            }
        }
        _ => {}
    }
}

fn endpoint(mut d: &[u8]) {
    let config = Config {
        max_flows: 8,
        max_sdu: 64 << 10,
        ..Config::default()
    };
    let Ok(mut e) = FlowEndpoint::new(config) else {
        return;
    };
    let mut now = Instant::from_millis(1);
    let _ = e.register("echo");
    let _ = e.alloc(now, PEER, "remote", QoS::DATA);
    let mut buf = Vec::new();
    let mut steps = 0;
    while d.len() >= 2 && steps < 256 {
        steps += 1;
        let (len, dt) = (usize::from(d[0]), u64::from(d[1]));
        d = &d[2..];
        let take = len.min(d.len());
        let mut datagram = d[..take].to_vec();
        d = &d[take..];
        now = now + core::time::Duration::from_millis(dt);
        e.handle_datagram(now, PEER, &mut datagram);
        if e.poll_timeout().is_some_and(|t| t <= now) {
            e.handle_timeout(now);
        }
        while e.poll_transmit(now, &mut buf).is_some() {}
        while let Some(ev) = e.poll_event() {
            let flow = match ev {
                Event::Alloc { flow, .. } => {
                    let _ = e.accept(now, flow);
                    flow
                }
                Event::Readable(flow) => flow,
                _ => continue,
            };
            while let Some(sdu) = e.read(flow) {
                assert!(sdu.len() <= 64 << 10, "an SDU over the limit was delivered");
            }
        }
        assert!(e.flow_count() <= 8, "more flows than the limit");
    }
}

/// The flows [`sealed`] runs: encrypted and reliable, encrypted with parity, plain
/// with parity.
const SEALED_QOS: [QoS; 3] = [QoS::DATA_CRYPT, QoS::VIDEO_CRYPT, QoS::VIDEO];

/// See [`flow`]. Each step takes an operation byte, then:
/// - 0: an index: deliver that datagram the peer sent, as it was;
/// - 1: an index, a position and a byte: deliver it with that byte XORed in;
/// - 2: a length and that many bytes: deliver them as a datagram from the peer;
/// - 3: a flow, a length and a fill byte: the peer writes an SDU of that size;
/// - 4: a time step in milliseconds; timers fire at both ends.
///
/// What the endpoint sends goes back to the peer. Returns how many SDUs of
/// encrypted flows were read (and checked).
fn sealed(mut d: &[u8]) -> usize {
    let key = [0x3c; 32];
    let config = || Config {
        max_flows: 8,
        max_sdu: 16 << 10,
        key: Some(FlowKey::new(key)),
        ..Config::default()
    };
    let (Ok(mut peer), Ok(mut e)) = (
        FlowEndpoint::seeded(config(), [1; 32]),
        FlowEndpoint::seeded(config(), [2; 32]),
    ) else {
        return 0;
    };
    let _ = e.register("sink");
    let mut now = Instant::from_millis(1);
    let mut flows: Vec<FlowId> = Vec::new();
    for qos in SEALED_QOS {
        if let Ok(f) = peer.alloc(now, HOME, "sink", qos) {
            flows.push(f);
        }
    }
    let mut sent: Vec<Vec<u8>> = Vec::new();
    // Per flow of the endpoint: its QoS and the SDUs the peer wrote on it.
    let mut written: Vec<(FlowId, QoS, Vec<Vec<u8>>)> = Vec::new();
    let mut buf = Vec::new();
    let mut checked = 0;
    // The handshakes, delivered faithfully.
    for _ in 0..4 {
        while let Some(t) = peer.poll_transmit(now, &mut buf) {
            sent.push(buf[..t.size].to_vec());
            e.handle_datagram(now, PEER, &mut buf[..t.size]);
        }
        checked += serve(&mut e, &mut peer, now, &mut buf, &mut written);
        while peer.poll_event().is_some() {}
    }
    let mut steps = 0;
    while let Some((&op, rest)) = d.split_first() {
        d = rest;
        steps += 1;
        if steps > 256 {
            break;
        }
        match op % 5 {
            0 | 1 => {
                let Some((&i, rest)) = d.split_first() else {
                    break;
                };
                d = rest;
                let Some(x) = sent.get(usize::from(i) % sent.len().max(1)) else {
                    continue;
                };
                let mut x = x.clone();
                if op % 5 == 1 && d.len() >= 2 && !x.is_empty() {
                    let at = usize::from(d[0]) % x.len();
                    x[at] ^= d[1].max(1);
                    d = &d[2..];
                }
                e.handle_datagram(now, PEER, &mut x);
            }
            2 => {
                let Some((&len, rest)) = d.split_first() else {
                    break;
                };
                let take = usize::from(len).min(rest.len());
                let mut x = rest[..take].to_vec();
                d = &rest[take..];
                e.handle_datagram(now, PEER, &mut x);
            }
            3 => {
                if d.len() < 3 {
                    break;
                }
                let (which, len, fill) = (d[0], usize::from(d[1]) * 17, d[2]);
                d = &d[3..];
                let Some(&f) = flows.get(usize::from(which) % flows.len().max(1)) else {
                    continue;
                };
                let sdu = vec![fill; len];
                if peer.write(now, f, &sdu).is_ok() {
                    // Each flow has a QoS of its own: that names it at both ends.
                    let qos = peer.qos(f);
                    for (_, q, w) in written.iter_mut() {
                        if Some(*q) == qos {
                            w.push(sdu.clone());
                        }
                    }
                }
                while let Some(t) = peer.poll_transmit(now, &mut buf) {
                    sent.push(buf[..t.size].to_vec());
                }
            }
            _ => {
                let Some((&dt, rest)) = d.split_first() else {
                    break;
                };
                d = rest;
                now = now + core::time::Duration::from_millis(u64::from(dt));
                e.handle_timeout(now);
                peer.handle_timeout(now);
                while let Some(t) = peer.poll_transmit(now, &mut buf) {
                    sent.push(buf[..t.size].to_vec());
                }
            }
        }
        checked += serve(&mut e, &mut peer, now, &mut buf, &mut written);
        while peer.poll_event().is_some() {}
        assert!(e.flow_count() <= 8, "more flows than the limit");
        if sent.len() > 4096 {
            sent.drain(..2048);
        }
    }
    checked
}

/// Sends what `e` has for the peer, accepts flows and reads SDUs, checking each
/// SDU of an encrypted flow against what the peer wrote; returns how many.
fn serve(
    e: &mut FlowEndpoint,
    peer: &mut FlowEndpoint,
    now: Instant,
    buf: &mut Vec<u8>,
    written: &mut Vec<(FlowId, QoS, Vec<Vec<u8>>)>,
) -> usize {
    let mut checked = 0;
    while let Some(t) = e.poll_transmit(now, buf) {
        peer.handle_datagram(now, HOME, &mut buf[..t.size]);
    }
    while let Some(ev) = e.poll_event() {
        let flow = match ev {
            Event::Alloc { flow, qos, .. } => {
                if e.accept(now, flow).is_ok() {
                    written.push((flow, qos, Vec::new()));
                }
                flow
            }
            Event::Readable(flow) => flow,
            _ => continue,
        };
        while let Some(sdu) = e.read(flow) {
            let Some((_, qos, w)) = written.iter().find(|(f, _, _)| *f == flow) else {
                continue;
            };
            if qos.cypher_s > 0 {
                assert!(
                    w.contains(&sdu),
                    "an encrypted flow delivered an SDU its peer never wrote"
                );
                checked += 1;
            }
        }
    }
    while let Some(t) = e.poll_transmit(now, buf) {
        peer.handle_datagram(now, HOME, &mut buf[..t.size]);
    }
    checked
}

#[cfg(test)]
mod tests {
    use super::*;

    fn seed(name: &str) -> Vec<u8> {
        let path = format!(
            "{}/../../fuzz/corpus/flow/{name}",
            env!("CARGO_MANIFEST_DIR")
        );
        std::fs::read(path).unwrap()
    }

    #[test]
    fn sealed_seeds_carry_sdus_on_encrypted_flows() {
        for name in [
            "seed-048-sealed-writes-delivered",
            "seed-049-sealed-replays-and-flips",
            "seed-050-sealed-parity-with-losses",
        ] {
            let d = seed(name);
            assert_eq!(d[0] % 4, 3, "{name}");
            let n = sealed(&d[1..]);
            assert!(n >= 5, "{name}: {n} SDUs checked");
        }
    }
}
