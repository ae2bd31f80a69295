//! `tej_endpoint`: one TEJ [`Connection`] fed a byte stream in pieces the
//! input picks, with pings, frames and timer firings in between, checked
//! against a reference decode of the same bytes.

use std::time::Duration;

use redgiant_base::{Endpoint, Instant, StreamEndpoint};
use redgiant_tej::endpoint::{Config, Connection, Event, OutFile, OutFrame};
use redgiant_tej::wire::{DecodeError, Decoder, Limits};

const START: Instant = Instant::from_millis(1_000);

/// What a whole-stream decode gives.
struct Reference {
    /// The bytes its events stand for.
    rebuilt: Vec<u8>,
    /// Frames completed.
    frames: u64,
    error: Option<DecodeError>,
    /// No error and the stream stopped inside a frame.
    mid_frame: bool,
}

/// Decodes `stream` in one piece with the streaming decoder alone.
fn reference(stream: &[u8], limits: Limits) -> Reference {
    let mut dec = Decoder::new(limits);
    let mut rebuilt = Vec::new();
    let mut rest = stream;
    loop {
        match dec.decode(rest) {
            Ok((used, Some(ev))) => {
                rest = &rest[used..];
                // The endpoint's events encode the same way; go through them.
                let ev = match ev {
                    redgiant_tej::wire::Event::FrameStart { status, file_count } => {
                        Event::FrameStart { status, file_count }
                    }
                    redgiant_tej::wire::Event::FileStart { name, len } => Event::FileStart {
                        name: name.to_owned(),
                        len,
                    },
                    redgiant_tej::wire::Event::FileData(d) => Event::FileData(d.to_vec()),
                    redgiant_tej::wire::Event::MessageData(d) => Event::MessageData(d.to_vec()),
                    redgiant_tej::wire::Event::Message(m) => Event::Message(m.to_vec()),
                    redgiant_tej::wire::Event::MessageStart { len } => Event::MessageStart { len },
                    redgiant_tej::wire::Event::FileEnd => Event::FileEnd,
                    redgiant_tej::wire::Event::FrameEnd => Event::FrameEnd { status: 0 },
                };
                ev.wire_bytes(&mut rebuilt);
            }
            Ok((_, None)) => {
                return Reference {
                    rebuilt,
                    frames: dec.frames(),
                    error: None,
                    mid_frame: dec.finish().is_err(),
                }
            }
            Err(e) => {
                return Reference {
                    rebuilt,
                    frames: dec.frames(),
                    error: Some(e),
                    mid_frame: false,
                }
            }
        }
    }
}

/// What the connection did, as seen from outside.
#[derive(Default)]
struct Seen {
    rebuilt: Vec<u8>,
    error: Option<DecodeError>,
    pings: u64,
    frame_ends: u64,
    sent: Vec<u8>,
    closed: Option<(bool, bool)>,
    finished: bool,
    idle: bool,
    /// Inside a received frame (between FrameStart and FrameEnd).
    in_frame: bool,
    /// Status of the last frame ended.
    last_status: Option<u8>,
}

/// Drains transmits and events the way a driver does, checking each event
/// against what came before. `piece` is the length of the last input.
fn drain(c: &mut Connection, now: Instant, piece: usize, limits: Limits, seen: &mut Seen) {
    let mut buf = Vec::new();
    while let Some(t) = c.poll_transmit(now, &mut buf) {
        assert_eq!(t.size, buf.len());
        assert!(t.size > 0, "an empty transmit");
        seen.sent.extend_from_slice(&buf);
    }
    if c.poll_shutdown() {
        assert!(!seen.finished, "shut down twice");
    }
    while let Some(ev) = c.poll_event() {
        // The peer may close after this side finished; nothing else comes.
        assert!(
            !seen.finished || matches!(ev, Event::Closed { .. }),
            "an event after Finished: {ev:?}"
        );
        match &ev {
            Event::FrameStart { status, .. } => {
                assert!(*status < 0x80);
                assert!(!seen.in_frame, "a frame inside a frame");
                seen.in_frame = true;
            }
            Event::FileData(d) | Event::MessageData(d) => {
                assert!(!d.is_empty(), "an empty data piece");
                // No buffering of file bytes: each piece came from one input.
                assert!(
                    d.len() <= piece,
                    "a piece of {} from {piece} bytes",
                    d.len()
                );
            }
            Event::Message(m) => {
                assert!(!limits.stream_message);
                assert!(m.len() as u64 <= limits.max_message);
            }
            Event::FrameEnd { status } => {
                assert!(seen.in_frame, "a frame end outside a frame");
                seen.in_frame = false;
                seen.frame_ends += 1;
                seen.last_status = Some(*status);
            }
            Event::Ping => {
                assert_eq!(seen.last_status, Some(2), "a ping after a frame not a ping");
                seen.pings += 1;
            }
            Event::ProtocolError(e) => {
                assert!(seen.error.is_none(), "a second protocol error");
                assert!(c.failed());
                seen.error = Some(e.clone());
            }
            Event::IdleTimeout => {
                assert!(c.failed());
                seen.idle = true;
            }
            Event::Closed { error, mid_frame } => {
                assert!(seen.closed.is_none(), "closed twice");
                seen.closed = Some((*error, *mid_frame));
            }
            Event::Finished => seen.finished = true,
            Event::SendFailed(m) => panic!("a byte body failed: {m}"),
            Event::FileStart { .. } | Event::FileEnd | Event::MessageStart { .. } => {}
        }
        if seen.error.is_none() || matches!(ev, Event::ProtocolError(_)) {
            ev.wire_bytes(&mut seen.rebuilt);
        } else {
            assert!(
                matches!(ev, Event::Closed { .. } | Event::Finished),
                "an event after the protocol error: {ev:?}"
            );
        }
    }
    assert_eq!(c.queued(), 0, "bytes left queued after draining");
}

/// Byte 0 picks the limits, timers and how many script bytes follow; the
/// script bytes, one per step, pick a piece length (low 6 bits + 1) and what
/// happens after it (high 2 bits: nothing, time passes and timers fire, a
/// ping is queued, a small frame is queued); the rest is the stream from
/// the peer. Checks: no panic; every byte consumed; file bytes never
/// gathered; the events stand for exactly what a reference decode of the
/// whole stream gives, the same error included; after a protocol error
/// nothing but the closing events; what the connection sent decodes into
/// exactly the frames it queued; closing ends the connection cleanly.
pub fn tej_endpoint(data: &[u8]) {
    let Some((&mode, rest)) = data.split_first() else {
        return;
    };
    let nscript = (usize::from(mode >> 4) * 4).min(rest.len());
    let (script, stream) = rest.split_at(nscript);
    let limits = Limits {
        max_files: [0, 3, 1 << 16, u64::MAX][usize::from(mode & 3)],
        max_name_len: if mode & 4 == 0 { 16 } else { u16::MAX },
        max_message: if mode & 4 == 0 { 64 } else { 1 << 20 },
        stream_message: mode & 8 != 0,
    };
    let config = Config {
        limits,
        idle_timeout: (mode & 1 != 0).then_some(Duration::from_secs(2)),
        keepalive: (mode & 2 != 0).then_some(Duration::from_secs(1)),
        transmit_size: 64,
    };
    let mut c = Connection::new(config, START);
    let mut now = START;
    let mut seen = Seen::default();
    let mut queued_frames = 0u64;
    let mut rest = stream;
    let mut steps = script.iter().copied().chain(std::iter::repeat(0x3f));
    while !rest.is_empty() {
        let step = steps.next().unwrap_or(0x3f);
        let n = (usize::from(step & 0x3f) + 1).min(rest.len());
        let (piece, tail) = rest.split_at(n);
        rest = tail;
        assert_eq!(c.handle_bytes(now, piece), n, "bytes left unconsumed");
        drain(&mut c, now, n, limits, &mut seen);
        match step >> 6 {
            1 => {
                now = now + Duration::from_millis(u64::from(step & 0x3f) * 100);
                if c.poll_timeout().is_some_and(|t| t <= now) {
                    c.handle_timeout(now);
                }
            }
            2 if c.send_ping().is_ok() => queued_frames += 1,
            3 => {
                let frame = OutFrame {
                    status: step & 0x3f,
                    files: vec![OutFile::bytes("f", piece.to_vec())],
                    message: piece.to_vec(),
                };
                if c.send_frame(frame).is_ok() {
                    queued_frames += 1;
                }
            }
            _ => {}
        }
        drain(&mut c, now, n, limits, &mut seen);
    }
    c.handle_close(now, mode & 0x80 != 0);
    drain(&mut c, now, 1, limits, &mut seen);
    drain(&mut c, now, 1, limits, &mut seen);

    let r = reference(stream, limits);
    let (error, mid_frame) = seen.closed.expect("no Closed event");
    assert_eq!(error, mode & 0x80 != 0);
    if seen.idle {
        // The connection gave up early: what it saw is a prefix of the reference.
        assert!(r.rebuilt.starts_with(&seen.rebuilt));
        assert!(!mid_frame);
    } else {
        assert_eq!(seen.error, r.error, "a different protocol error");
        assert_eq!(
            seen.rebuilt, r.rebuilt,
            "events differ from the reference decode"
        );
        assert_eq!(c.frames_in(), r.frames);
        assert_eq!(seen.frame_ends, r.frames);
        assert_eq!(mid_frame, r.mid_frame, "Closed says the wrong mid_frame");
    }
    assert!(stream.starts_with(&seen.rebuilt));
    // The peer has closed: the connection ends its side.
    assert!(seen.finished, "the connection did not finish");

    // What went out is exactly the frames queued (and keepalive pings).
    let mut dec = Decoder::new(Limits {
        max_files: u64::MAX,
        max_name_len: u16::MAX,
        max_message: u64::MAX,
        stream_message: true,
    });
    let mut out = &seen.sent[..];
    loop {
        match dec.decode(out) {
            Ok((used, Some(_))) => out = &out[used..],
            Ok((_, None)) => break,
            Err(e) => panic!("the connection sent a bad stream: {e}"),
        }
    }
    assert!(dec.finish().is_ok(), "sent a partial frame");
    assert_eq!(dec.frames(), c.frames_out());
    assert!(c.frames_out() >= queued_frames);
}
