//! The gtUDP and TEJ captures of `pcaps/`: they regenerate byte for byte,
//! a fresh gtUDP endpoint replaying one delivers exactly the payloads it
//! carries, the TEJ capture's TCP payloads decode to the frames it was made
//! from, and fed to a fresh TEJ connection the TEJ streams give the events
//! they should (the hostile ones end the connection cleanly).

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};

use redgiant_base::{Endpoint, Instant, Peer, StreamEndpoint};
use redgiant_gtudp::{Config, Gtudp, Profile, Repr};
use redgiant_tej::wire::{Decoder, Event, Limits};
use redgiant_tej::{Config as TejConfig, Connection, Event as TejEvent};
use rgtp_capture::frame::recorded;
use rgtp_capture::replay::replay_into;
use rgtp_cli::pcaps_gtudp_tej::{self as gen, GTUDP_COUNT, GTUDP_RECEIVER, GTUDP_SENDER};

fn dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../../pcaps")
}

fn committed(name: &str) -> Vec<u8> {
    std::fs::read(dir().join(format!("{name}.pcap"))).unwrap_or_else(|e| {
        panic!("pcaps/{name}.pcap missing ({e}): run `cargo run -p rgtp-cli --example regen-gtudp-tej-pcaps`")
    })
}

#[test]
fn captures_regenerate_byte_for_byte() {
    let tmp = tempfile::tempdir().unwrap();
    let names = gen::generate(tmp.path()).unwrap();
    assert_eq!(names, gen::NAMES);
    for name in &names {
        let fresh = std::fs::read(tmp.path().join(format!("{name}.pcap"))).unwrap();
        assert!(
            fresh == committed(name),
            "pcaps/{name}.pcap differs from a fresh generation: run `cargo run -p rgtp-cli --example regen-gtudp-tej-pcaps` and review the change"
        );
    }
    // Nothing in pcaps/ under these prefixes that no generator makes.
    for e in std::fs::read_dir(dir()).unwrap() {
        let name = e.unwrap().file_name().to_string_lossy().into_owned();
        if name.starts_with("gtudp-") || name.starts_with("tej-") {
            let stem = name.trim_end_matches(".pcap");
            assert!(gen::NAMES.contains(&stem), "pcaps/{name}: no generator");
        }
    }
}

/// The distinct DATA payloads addressed to the receiver in a capture.
fn data_payloads(capture: &rgtp_capture::Capture, profile: &Profile) -> BTreeSet<Vec<u8>> {
    let to = recorded(GTUDP_RECEIVER);
    capture
        .datagrams()
        .filter(|(_, d)| d.dst == to)
        .filter_map(|(_, d)| match Repr::parse(&d.payload, profile) {
            Ok(Repr::Data { payload, .. }) => Some(payload.to_vec()),
            _ => None,
        })
        .collect()
}

fn replay(name: &str, profile: Profile) -> (Vec<Vec<u8>>, BTreeSet<Vec<u8>>, Gtudp) {
    let capture = rgtp_capture::read(&committed(name)).unwrap();
    let carried = data_payloads(&capture, &profile);
    let mut e = Gtudp::seeded(Config::default().with_profile(profile), 77);
    let mut got = Vec::new();
    let stats = replay_into(
        &capture,
        recorded(GTUDP_RECEIVER),
        &mut e,
        |d| got.push(d.payload.to_vec()),
        |_| {},
    );
    assert!(stats.fed > 0);
    (got, carried, e)
}

#[test]
fn replaying_a_lossy_exchange_delivers_each_payload_once() {
    let (got, carried, e) = replay("gtudp-lossy", Profile::reference());
    let expected: BTreeSet<Vec<u8>> = (0..GTUDP_COUNT).map(gen::gtudp_payload).collect();
    // Every datagram got through in the end, some more than once on the wire.
    assert_eq!(carried, expected);
    assert_eq!(got.len(), expected.len(), "each delivered exactly once");
    assert_eq!(got.into_iter().collect::<BTreeSet<_>>(), expected);
    assert!(
        e.stats().duplicates > 0,
        "the capture holds no repeated DATA?"
    );
}

#[test]
fn replaying_the_magic_profile_needs_that_profile() {
    let (got, carried, _) = replay("gtudp-magic", gen::magic_profile());
    assert_eq!(carried.len(), GTUDP_COUNT as usize);
    assert_eq!(got.into_iter().collect::<BTreeSet<_>>(), carried);
    // Under the reference profile the same datagrams are not gtUDP.
    let (got, carried, e) = replay("gtudp-magic", Profile::reference());
    assert!(got.is_empty() && carried.is_empty());
    assert!(e.stats().unknown_type > 0, "read as unknown types");
}

#[test]
fn replaying_malformed_datagrams_delivers_only_the_good_one() {
    let (got, _, e) = replay("gtudp-malformed", Profile::reference());
    assert_eq!(got, vec![b"good".to_vec()]);
    let bad = gen::malformed_datagrams()
        .iter()
        .filter(|d| d.1.is_some())
        .count();
    let s = e.stats();
    assert_eq!(s.truncated + s.unknown_type + s.trailing_bytes, bad as u64);
    assert_eq!((s.truncated, s.unknown_type, s.trailing_bytes), (1, 1, 2));
    let _ = GTUDP_SENDER;
}

#[test]
fn tej_capture_decodes_to_its_frames() {
    let capture = rgtp_capture::read(&committed("tej-frames")).unwrap();
    // The capture is TCP: take the client's payloads from the raw frames.
    let bytes = committed("tej-frames");
    let mut stream = Vec::new();
    let mut segments = 0;
    let mut at = 24;
    while at + 16 <= bytes.len() {
        let len = u32::from_le_bytes(bytes[at + 8..at + 12].try_into().unwrap()) as usize;
        let frame = &bytes[at + 16..at + 16 + len];
        at += 16 + len;
        let ip = &frame[14..];
        let ihl = usize::from(ip[0] & 0x0f) * 4;
        let total = usize::from(u16::from_be_bytes([ip[2], ip[3]]));
        let tcp = &ip[ihl..total];
        let off = usize::from(tcp[12] >> 4) * 4;
        if ip[12..16] == [10, 0, 0, 1] && tcp.len() > off {
            stream.extend_from_slice(&tcp[off..]);
            segments += 1;
        }
    }
    assert_eq!(capture.records.len(), segments * 2);
    let (expected_stream, cuts) = gen::tej_stream();
    assert_eq!(stream, expected_stream);
    assert_eq!(segments, cuts.len());
    let mut dec = Decoder::new(Limits::default());
    let mut frames = Vec::new();
    let mut input = &stream[..];
    let mut cur: Option<gen::TejFrame> = None;
    loop {
        let (used, ev) = dec.decode(input).unwrap();
        input = &input[used..];
        let Some(ev) = ev else { break };
        let f = cur.get_or_insert_with(|| gen::TejFrame {
            status: 0,
            files: Vec::new(),
            message: Vec::new(),
        });
        match ev {
            Event::FrameStart { status, .. } => f.status = status,
            Event::FileStart { name, .. } => f.files.push((name.to_string(), Vec::new())),
            Event::FileData(d) => f.files.last_mut().unwrap().1.extend_from_slice(d),
            Event::Message(m) | Event::MessageData(m) => f.message.extend_from_slice(m),
            Event::FrameEnd => frames.push(cur.take().unwrap()),
            Event::FileEnd | Event::MessageStart { .. } => {}
        }
    }
    assert_eq!(frames, gen::tej_frames());
    let _: Peer = GTUDP_SENDER;
}

/// Feeds `stream` to a fresh TEJ connection in the capture's segments and
/// returns its events, the peer's close included.
fn connection_events(stream: &[u8], cuts: &[usize]) -> Vec<TejEvent> {
    let mut c = Connection::new(TejConfig::default(), Instant::ZERO);
    let mut events = Vec::new();
    let mut start = 0;
    for &end in cuts {
        assert_eq!(
            c.handle_bytes(Instant::ZERO, &stream[start..end]),
            end - start
        );
        while let Some(e) = c.poll_event() {
            events.push(e);
        }
        start = end;
    }
    c.handle_close(Instant::ZERO, false);
    while let Some(e) = c.poll_event() {
        events.push(e);
    }
    events
}

#[test]
fn tej_capture_replays_into_a_connection() {
    let (stream, cuts) = gen::tej_stream();
    let events = connection_events(&stream, &cuts);
    let frames = gen::tej_frames();
    let ends = events
        .iter()
        .filter(|e| matches!(e, TejEvent::FrameEnd { .. }))
        .count();
    assert_eq!(ends, frames.len());
    let pings = events.iter().filter(|e| **e == TejEvent::Ping).count();
    assert_eq!(pings, frames.iter().filter(|f| f.status == 2).count());
    let mut rebuilt = Vec::new();
    for e in &events {
        e.wire_bytes(&mut rebuilt);
    }
    assert_eq!(rebuilt, stream);
    assert!(events.contains(&TejEvent::Closed {
        error: false,
        mid_frame: false
    }));
}

#[test]
fn tej_hostile_streams_end_their_connection_cleanly() {
    let streams = gen::tej_hostile_streams();
    // MSB 0: the ping before it is delivered, then a protocol error.
    let (_, msb) = &streams[0];
    let events = connection_events(msb, &[msb.len()]);
    assert!(events.contains(&TejEvent::Ping));
    assert!(
        events
            .iter()
            .any(|e| matches!(e, TejEvent::ProtocolError(_))),
        "{events:?}"
    );
    // 2^63 declared bytes: the file starts, the bytes that came pass
    // through, and the close is reported mid-frame; nothing was reserved
    // for the declared length.
    let (_, huge) = &streams[1];
    let events = connection_events(huge, &[huge.len()]);
    assert!(events.contains(&TejEvent::FileStart {
        name: "h".into(),
        len: 1 << 63
    }));
    let data: usize = events
        .iter()
        .map(|e| match e {
            TejEvent::FileData(d) => d.len(),
            _ => 0,
        })
        .sum();
    assert_eq!(data, b"some bytes of it".len());
    assert_eq!(
        events.last(),
        Some(&TejEvent::Closed {
            error: false,
            mid_frame: true
        })
    );
}
