//! `gtudp_packet` and `gtudp_endpoint`: the gtUDP codec on any datagram and
//! profile, and two gtUDP endpoints over a network the input controls.

use std::collections::{HashMap, HashSet, VecDeque};
use std::time::Duration;

use redgiant_base::endpoint::{DatagramEndpoint, Endpoint};
use redgiant_base::{Instant, Peer};
use redgiant_gtudp::wire::Packet;
use redgiant_gtudp::{Config, Event, ExchangeId, Gtudp, Identity, Profile, ReferenceIds, Repr};

/// A profile from the first bytes: a shape byte (magic length in the low 3
/// bits, type length 1..=3 above them), the magic, then the DATA, RECV and
/// ACK codes. Returns it and the rest of the input; `None` when the input is
/// too short or the codes are not distinct.
fn profile(data: &[u8]) -> Option<(Profile, &[u8])> {
    let (&shape, rest) = data.split_first()?;
    let magic_len = usize::from(shape & 7);
    let type_len = 1 + usize::from((shape >> 3) % 3);
    if rest.len() < magic_len + 3 * type_len {
        return None;
    }
    let (magic, rest) = rest.split_at(magic_len);
    let (codes, rest) = rest.split_at(3 * type_len);
    let (data_code, others) = codes.split_at(type_len);
    let (recv, ack) = others.split_at(type_len);
    let p = Profile::new(
        magic.to_vec(),
        data_code.to_vec(),
        recv.to_vec(),
        ack.to_vec(),
    )
    .ok()?;
    Some((p, rest))
}

/// The first bytes pick a profile; the rest is a datagram: parse it, and
/// check that emitting the result gives the datagram back exactly.
pub fn gtudp_packet(data: &[u8]) {
    let Some((profile, datagram)) = profile(data) else {
        return;
    };
    if let Ok(p) = Packet::new_checked(datagram, &profile) {
        let _ = (
            p.magic(),
            p.type_code(),
            p.kind(),
            p.identity(),
            p.payload(),
        );
    }
    let reference = Repr::parse(datagram, &Profile::reference());
    let Ok(repr) = Repr::parse(datagram, &profile) else {
        return;
    };
    let len = repr.buffer_len(&profile);
    assert_eq!(len, datagram.len(), "buffer_len differs from the datagram");
    let mut buf = vec![0xa5; len + 4];
    repr.emit(&profile, &mut buf);
    assert_eq!(&buf[..len], datagram, "emit(parse(d)) != d");
    assert!(
        buf[len..].iter().all(|&b| b == 0xa5),
        "emit wrote past buffer_len"
    );
    if profile == Profile::reference() {
        assert_eq!(reference, Ok(repr));
    }
}

const A: Peer = Peer::Mem(1);
const B: Peer = Peer::Mem(2);
const MALLORY: Peer = Peer::Mem(3);

/// Two endpoints, A sending to B, over a network the input drives byte by
/// byte: open an exchange, deliver, drop, duplicate or hold back the oldest
/// datagram in flight, let time pass, or inject bytes from a third address.
///
/// Checks: B hands out only payloads A sent, and a (sender, identity) again
/// only once its last copy is older than the duplicate TTL; A confirms only
/// exchanges whose payload B handed out; every exchange is confirmed or
/// failed once at most; no timer is in the past after `handle_timeout`.
pub fn gtudp_endpoint(data: &[u8]) {
    let mut input = data.iter().copied();
    let Some(mode) = input.next() else {
        return;
    };
    let mut config = if mode & 1 == 0 {
        Config::default()
    } else {
        Config::reference()
    };
    config.dedup_capacity = 1 + usize::from(mode >> 1) % 64;
    config.dedup_ttl = Duration::from_millis(200 + 1000 * u64::from(mode >> 4));
    // The oracle below allows a second delivery only a TTL after the last copy.
    config.dedup_linger = config.dedup_ttl;
    let mut a = Gtudp::new(config.clone(), ReferenceIds::new(u32::from(mode) << 24));
    let mut b = Gtudp::new(config.clone(), ReferenceIds::new(7));
    let mut now = Instant::from_millis(1);
    let mut net: VecDeque<(Peer, Peer, Vec<u8>)> = VecDeque::new();
    let mut sent: HashMap<ExchangeId, Vec<u8>> = HashMap::new();
    let mut settled: HashSet<ExchangeId> = HashSet::new();
    // When B last saw a copy of each DATA it handed out.
    let mut last_copy: HashMap<(Peer, Identity), Instant> = HashMap::new();
    let ttl = config.dedup_ttl;
    let profile = config.profile.clone();
    let mut delivered_payloads: Vec<Vec<u8>> = Vec::new();
    let mut buf = Vec::new();
    let mut step = 0u32;

    while let Some(op) = input.next() {
        step += 1;
        match op % 8 {
            0 => {
                let len = usize::from(input.next().unwrap_or(0));
                let payload: Vec<u8> = (0..len).map(|i| (i as u32 * 31 + step) as u8).collect();
                let x = if op & 8 == 0 {
                    a.send_to(B, &payload)
                } else {
                    a.send_confirmed(B, &payload, now + Duration::from_millis(u64::from(op) * 40))
                };
                sent.insert(x, payload);
            }
            1 | 2 => {
                if let Some((from, to, mut d)) = net.pop_front() {
                    let e = if to == A { &mut a } else { &mut b };
                    let duplicates = e.stats().duplicates;
                    let got = e
                        .handle_datagram(now, from, &mut d)
                        .map(|g| (g.from, g.id, g.payload.to_vec()));
                    let copy = e.stats().duplicates > duplicates;
                    if let Some((from, id, payload)) = got {
                        assert_eq!(to, B, "A never receives DATA from B");
                        // Handed out again only once the last copy is older than the TTL.
                        if let Some(&last) = last_copy.get(&(from, id)) {
                            assert!(
                                now.saturating_since(last) >= ttl,
                                "({from}, {id}) handed out twice within the TTL"
                            );
                        }
                        last_copy.insert((from, id), now);
                        delivered_payloads.push(payload);
                    } else if copy {
                        if let Ok(Repr::Data { id, .. }) = Repr::parse(&d, &profile) {
                            last_copy.insert((from, id), now);
                        }
                    }
                }
            }
            3 => {
                net.pop_front();
            }
            4 => {
                if let Some(f) = net.front().cloned() {
                    net.push_back(f);
                }
            }
            5 => {
                if let Some(f) = net.pop_front() {
                    net.push_back(f);
                }
            }
            6 => now = now + Duration::from_millis(u64::from(input.next().unwrap_or(0)) * 8),
            _ => {
                let len = usize::from(input.next().unwrap_or(0) % 16);
                let mut d: Vec<u8> = input.by_ref().take(len).collect();
                let to_b = op & 8 == 0;
                let e = if to_b { &mut b } else { &mut a };
                if let Some(got) = e.handle_datagram(now, MALLORY, &mut d) {
                    assert_eq!(got.from, MALLORY);
                }
            }
        }
        for (from, e) in [(A, &mut a), (B, &mut b)] {
            if e.poll_timeout().is_some_and(|t| t <= now) {
                e.handle_timeout(now);
            }
            while let Some(t) = e.poll_transmit(now, &mut buf) {
                assert_eq!(t.size, buf.len());
                if let Some(s) = t.segment_size {
                    assert_eq!(t.size % s, 0, "a batch of unequal datagrams");
                }
                for d in t.datagrams(&buf) {
                    assert!(d.len() >= e.config().profile.header_len());
                    if t.destination != MALLORY {
                        net.push_back((from, t.destination, d.to_vec()));
                    }
                }
            }
            assert!(
                !matches!(e.poll_timeout(), Some(t) if t <= now),
                "a timer in the past after handle_timeout and poll_transmit"
            );
        }
        while let Some(ev) = a.poll_event() {
            match ev {
                Event::Confirmed(x) => {
                    assert!(settled.insert(x), "exchange settled twice");
                    let p = &sent[&x];
                    assert!(
                        delivered_payloads.contains(p),
                        "confirmed a payload B never handed out"
                    );
                }
                Event::Failed(x, _) => assert!(settled.insert(x), "exchange settled twice"),
                Event::Received { from, .. } => {
                    assert_eq!(from, MALLORY, "A received DATA from B");
                }
            }
        }
        while let Some(ev) = b.poll_event() {
            assert!(matches!(ev, Event::Received { .. }), "B opened no exchange");
        }
        if net.len() > 4096 {
            net.truncate(4096);
        }
    }
    // Everything B handed out from A was sent by A.
    for p in &delivered_payloads {
        assert!(
            sent.values().any(|s| s == p),
            "B handed out a payload A never sent"
        );
    }
}
