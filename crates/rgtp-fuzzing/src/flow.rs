//! `flow`: the flow datagram codec (spec/flow.md), then a flow endpoint fed the input.

use redgiant_base::{DatagramEndpoint, Endpoint, Instant, Peer};
use redgiant_flow::wire::{Packet, Repr};
use redgiant_flow::{Config, Event, FlowEndpoint, QoS};

const PEER: Peer = Peer::Mem(2);

/// The first byte picks the part:
///
/// - even: the rest is one datagram. Checks: the zero-copy view and the parser
///   agree on the flow ids, a datagram that parses emits bytes that parse back to
///   the same message, and emitting writes exactly `buffer_len` bytes.
/// - odd: the rest is a stream of datagrams (each behind a one-byte length and a
///   one-byte time step in milliseconds) from one peer to an endpoint that has a
///   registered name and a flow of its own to that peer, accepting every flow
///   asked for and reading everything readable. Checks: no panic, no more flows
///   than the limit, nothing read from a flow larger than the SDU limit.
pub fn flow(data: &[u8]) {
    let Some((&mode, rest)) = data.split_first() else {
        return;
    };
    if mode % 2 == 0 {
        codec(rest);
    } else {
        endpoint(rest);
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
