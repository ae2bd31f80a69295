//! The TEJ connection endpoint: directly on virtual time, and run by the one
//! stream driver over the in-memory pipe (delay, jitter, a rate cap, small
//! segments, a mid-stream kill) and over TCP on loopback.

use std::io;
use std::sync::atomic::AtomicBool;
use std::time::Duration;

use redgiant_base::driver::{Application, DriverConfig, Finish, StreamDriver};
use redgiant_base::{Endpoint, Instant, ManualClock, StreamEndpoint, SystemClock};
use redgiant_tej::wire::{encode_frame, DecodeError, Limits};
use redgiant_tej::{Config, Connection, Event, OutFile, OutFrame};
use rgtp_link::pipe::{PipeConfig, PipeEnd};
use rgtp_link::tcp::{TcpLink, TcpLinkListener};

/// Drains `c`'s transmits into one byte string.
fn drain(c: &mut Connection, now: Instant) -> Vec<u8> {
    let (mut out, mut buf) = (Vec::new(), Vec::new());
    while let Some(t) = c.poll_transmit(now, &mut buf) {
        out.extend_from_slice(&buf[..t.size]);
    }
    out
}

fn events(c: &mut Connection) -> Vec<Event> {
    std::iter::from_fn(|| c.poll_event()).collect()
}

/// A frame with a file of `n` pseudo-random bytes.
fn data(n: usize, seed: u8) -> Vec<u8> {
    (0..n)
        .map(|i| (i as u8).wrapping_mul(31).wrapping_add(seed))
        .collect()
}

#[test]
fn frames_from_bytes_and_readers_encode_as_the_reference_layout() {
    let now = Instant::ZERO;
    let mut a = Connection::new(Config::default(), now);
    let big = data(1 << 20, 3);
    a.send_frame(OutFrame {
        status: 9,
        files: vec![
            OutFile::bytes("mem.bin", b"abc".to_vec()),
            OutFile::reader("read.bin", big.len() as u64, io::Cursor::new(big.clone())),
            OutFile::bytes("empty", Vec::new()),
        ],
        message: b"hi".to_vec(),
    })
    .unwrap();
    a.send_ping().unwrap();
    assert_eq!(a.frames_out(), 2);
    let wire = drain(&mut a, now);
    let mut want = encode_frame(
        9,
        &[("mem.bin", b"abc"), ("read.bin", &big), ("empty", b"")],
        b"hi",
    )
    .unwrap();
    want.extend_from_slice(&encode_frame(2, &[], b"").unwrap());
    assert_eq!(wire, want);
    assert_eq!(a.queued(), 0);
}

#[test]
fn a_bad_frame_queues_nothing() {
    let mut a = Connection::new(Config::default(), Instant::ZERO);
    let r = a.send_frame(OutFrame {
        status: 200,
        ..OutFrame::default()
    });
    assert!(r.is_err());
    let r = a.send_frame(OutFrame {
        status: 1,
        files: vec![OutFile::bytes("x".repeat(70_000), vec![])],
        message: vec![],
    });
    assert!(r.is_err());
    let short = OutFile {
        name: "short".into(),
        len: 10,
        body: redgiant_tej::Body::Bytes(vec![1; 9]),
    };
    let r = a.send_frame(OutFrame {
        status: 1,
        files: vec![OutFile::bytes("ok", vec![2; 5]), short],
        message: vec![],
    });
    assert_eq!(
        r,
        Err(redgiant_tej::EncodeError::LengthMismatch {
            declared: 10,
            given: 9
        })
    );
    assert_eq!(a.queued(), 0);
    assert!(drain(&mut a, Instant::ZERO).is_empty());
    a.send_ping().unwrap();
    assert_eq!(
        drain(&mut a, Instant::ZERO),
        encode_frame(2, &[], b"").unwrap()
    );
}

#[test]
fn pings_are_reported_and_echo_is_byte_exact() {
    let now = Instant::ZERO;
    let mut server = Connection::new(Config::default(), now);
    let mut stream = encode_frame(2, &[], b"").unwrap();
    stream.extend(encode_frame(5, &[("é☃.txt", b"snow"), ("z", b"")], b"msg").unwrap());
    // Byte by byte: every event is forwarded as it comes.
    let mut seen = Vec::new();
    for b in &stream {
        assert_eq!(server.handle_bytes(now, std::slice::from_ref(b)), 1);
        for ev in events(&mut server) {
            server.forward(&ev).unwrap();
            seen.push(ev);
        }
    }
    assert_eq!(seen.iter().filter(|e| **e == Event::Ping).count(), 1);
    assert_eq!(server.frames_in(), 2);
    let mut rebuilt = Vec::new();
    seen.iter().for_each(|e| e.wire_bytes(&mut rebuilt));
    assert_eq!(rebuilt, stream);
    assert_eq!(drain(&mut server, now), stream);
}

#[test]
fn a_protocol_error_ends_only_this_connection() {
    let now = Instant::ZERO;
    let mut c = Connection::new(Config::default(), now);
    c.send_ping().unwrap();
    let mut bad = encode_frame(1, &[], b"ok").unwrap();
    bad.extend_from_slice(&[0x01, 0x01, 0, 0]);
    assert_eq!(c.handle_bytes(now, &bad), bad.len());
    let evs = events(&mut c);
    assert_eq!(
        evs.last(),
        Some(&Event::ProtocolError(DecodeError::MsbZero { status: 1 }))
    );
    assert!(evs.contains(&Event::Message(b"ok".to_vec())));
    // Later bytes are swallowed; what was queued still goes out, then the stream ends.
    assert_eq!(c.handle_bytes(now, b"\x81\x01more"), 6);
    assert!(events(&mut c).is_empty());
    assert!(!c.poll_shutdown(), "the ping is still queued");
    assert_eq!(drain(&mut c, now), encode_frame(2, &[], b"").unwrap());
    assert!(c.poll_shutdown());
    assert_eq!(events(&mut c), [Event::Finished]);
    assert_eq!(c.poll_timeout(), None);
}

#[test]
fn idle_timeout_and_keepalive_follow_the_deadline() {
    let config = Config {
        idle_timeout: Some(Duration::from_secs(10)),
        keepalive: Some(Duration::from_secs(3)),
        ..Config::default()
    };
    let t0 = Instant::from_millis(1000);
    let mut c = Connection::new(config, t0);
    assert_eq!(c.poll_timeout(), Some(t0 + Duration::from_secs(3)));
    let t = t0 + Duration::from_secs(3);
    c.handle_timeout(t);
    // A keepalive ping; sending counts as activity.
    assert_eq!(drain(&mut c, t), encode_frame(2, &[], b"").unwrap());
    assert_eq!(c.poll_timeout(), Some(t + Duration::from_secs(3)));
    // An early timeout does nothing.
    c.handle_timeout(t + Duration::from_secs(1));
    assert!(events(&mut c).is_empty());
    // Mid-frame no ping can go out, so no keepalive deadline is set (only the idle one).
    c.start_frame(1, 1).unwrap();
    assert_eq!(c.poll_timeout(), Some(t + Duration::from_secs(10)));
    c.start_file("f", 0).unwrap();
    c.message(b"").unwrap();
    assert_eq!(c.poll_timeout(), Some(t + Duration::from_secs(3)));
    let config = Config {
        idle_timeout: Some(Duration::from_secs(10)),
        ..Config::default()
    };
    let mut c = Connection::new(config, t0);
    c.handle_bytes(t0 + Duration::from_secs(4), b"\x81");
    assert_eq!(c.poll_timeout(), Some(t0 + Duration::from_secs(14)));
    // Work done for the peer meanwhile (a pull a frame asked for) counts as activity.
    let mut busy = Connection::new(config, t0);
    busy.restart_idle(t0 + Duration::from_secs(30));
    busy.handle_timeout(t0 + Duration::from_secs(35));
    assert!(events(&mut busy).is_empty() && !busy.failed());
    assert_eq!(busy.poll_timeout(), Some(t0 + Duration::from_secs(40)));
    c.handle_timeout(t0 + Duration::from_secs(14));
    assert_eq!(events(&mut c), [Event::IdleTimeout]);
    assert!(c.failed());
    assert!(c.poll_shutdown());
}

#[test]
fn a_short_reader_fails_the_connection() {
    let now = Instant::ZERO;
    let mut c = Connection::new(Config::default(), now);
    c.send_frame(OutFrame {
        status: 1,
        files: vec![OutFile::reader(
            "short",
            100,
            io::Cursor::new(vec![1u8; 40]),
        )],
        message: vec![],
    })
    .unwrap();
    let sent = drain(&mut c, now);
    assert_eq!(sent.len(), 10 + 2 + 5 + 8 + 40);
    assert!(
        matches!(events(&mut c).as_slice(), [Event::SendFailed(m)] if m.contains("60 bytes early"))
    );
    assert!(c.poll_shutdown());
}

#[test]
fn close_mid_frame_is_reported() {
    let now = Instant::ZERO;
    let mut c = Connection::new(Config::default(), now);
    c.handle_bytes(now, &encode_frame(1, &[("a", b"abc")], b"").unwrap()[..14]);
    let _ = events(&mut c);
    c.handle_close(now, false);
    assert_eq!(
        events(&mut c),
        [Event::Closed {
            error: false,
            mid_frame: true
        }]
    );
    assert!(c.poll_shutdown());
}

/// A received frame, gathered.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
struct Frame {
    status: u8,
    files: Vec<(String, Vec<u8>)>,
    message: Vec<u8>,
}

/// Echoes every frame back as it arrives; ends when the connection does.
#[derive(Default)]
struct Echo {
    error: Option<DecodeError>,
}

impl Application<Connection> for Echo {
    type Output = ();
    type Error = io::Error;
    fn deliver(&mut self, d: core::convert::Infallible) -> io::Result<()> {
        match d {}
    }
    fn event(&mut self, c: &mut Connection, ev: Event) -> io::Result<Option<()>> {
        match ev {
            Event::Finished => Ok(Some(())),
            Event::ProtocolError(e) => {
                self.error = Some(e);
                Ok(None)
            }
            ev => {
                c.forward(&ev)
                    .map_err(|e| io::Error::new(io::ErrorKind::InvalidData, e))?;
                Ok(None)
            }
        }
    }
}

/// Gathers frames; ends when the peer closed.
#[derive(Default)]
struct Collect {
    frames: Vec<Frame>,
    cur: Frame,
    pings: usize,
}

impl Application<Connection> for Collect {
    type Output = bool;
    type Error = io::Error;
    fn deliver(&mut self, d: core::convert::Infallible) -> io::Result<()> {
        match d {}
    }
    fn event(&mut self, _: &mut Connection, ev: Event) -> io::Result<Option<bool>> {
        match ev {
            Event::FrameStart { status, .. } => self.cur.status = status,
            Event::FileStart { name, .. } => self.cur.files.push((name, Vec::new())),
            Event::FileData(d) => self.cur.files.last_mut().unwrap().1.extend_from_slice(&d),
            Event::Message(m) => self.cur.message = m,
            Event::FrameEnd { .. } => self.frames.push(std::mem::take(&mut self.cur)),
            Event::Ping => self.pings += 1,
            Event::Closed { error, mid_frame } => return Ok(Some(!error && !mid_frame)),
            Event::ProtocolError(e) => return Err(io::Error::new(io::ErrorKind::InvalidData, e)),
            _ => {}
        }
        Ok(None)
    }
}

fn frames_to_send() -> (Vec<OutFrame>, Vec<Frame>) {
    let mut out = Vec::new();
    let mut want = Vec::new();
    for i in 0..20u8 {
        let files: Vec<(String, Vec<u8>)> = (0..i % 4)
            .map(|j| {
                (
                    format!("f{i}-{j}-é"),
                    data(usize::from(i) * 997 * usize::from(j), i),
                )
            })
            .collect();
        let message = format!("frame {i}").into_bytes();
        let status = if i % 5 == 0 { 2 } else { i };
        want.push(Frame {
            status,
            files: files.clone(),
            message: message.clone(),
        });
        out.push(OutFrame {
            status,
            files: files
                .into_iter()
                .map(|(n, d)| {
                    if d.len() % 2 == 0 {
                        OutFile::bytes(n, d)
                    } else {
                        OutFile::reader(n, d.len() as u64, io::Cursor::new(d))
                    }
                })
                .collect(),
            message,
        });
    }
    // One large file through a reader.
    let big = data(24 << 20, 77);
    want.push(Frame {
        status: 1,
        files: vec![("big".into(), big.clone())],
        message: vec![],
    });
    out.push(OutFrame {
        status: 1,
        files: vec![OutFile::reader(
            "big",
            big.len() as u64,
            io::Cursor::new(big),
        )],
        message: vec![],
    });
    (out, want)
}

/// Sends the frames over `link`, closes, gathers the echo; returns the echo.
fn client(link: impl redgiant_base::StreamLink) -> Collect {
    let (frames, _) = frames_to_send();
    let mut c = Connection::new(Config::default(), Instant::ZERO);
    for f in frames {
        c.send_frame(f).unwrap();
    }
    c.close();
    let mut d = StreamDriver::new(link);
    let mut app = Collect::default();
    let r = d.run(&mut c, &mut app, &AtomicBool::new(false), |_, _| {});
    assert_eq!(
        r.unwrap(),
        Finish::Done(true),
        "an orderly end between frames"
    );
    app
}

fn server(link: impl redgiant_base::StreamLink) -> Echo {
    let mut c = Connection::new(Config::default(), Instant::ZERO);
    let mut d = StreamDriver::new(link);
    let mut app = Echo::default();
    let r = d.run(&mut c, &mut app, &AtomicBool::new(false), |_, _| {});
    assert_eq!(r.unwrap(), Finish::Done(()));
    app
}

#[test]
fn echo_over_the_pipe_with_delay_jitter_rate_cap_and_small_segments() {
    let config = PipeConfig::default()
        .with_delay(Duration::from_millis(2))
        .with_jitter(Duration::from_millis(1))
        .with_rate(400_000_000)
        .with_segment(1400)
        .with_capacity(256 * 1024);
    let (a, b) = PipeEnd::pair(config, 11, SystemClock::new());
    let srv = std::thread::spawn(move || server(b));
    let got = client(a);
    let (_, want) = frames_to_send();
    assert_eq!(got.frames, want);
    assert_eq!(
        got.pings, 5,
        "statuses 0, 5, 10, 15 became pings, and 2 is one"
    );
    assert_eq!(srv.join().unwrap().error, None);
}

#[test]
fn echo_over_tcp() {
    let listener = TcpLinkListener::bind("127.0.0.1:0".parse().unwrap()).unwrap();
    let addr = listener.local_addr().unwrap();
    let srv = std::thread::spawn(move || {
        server(
            listener
                .accept(Some(Duration::from_secs(10)))
                .unwrap()
                .expect("a connection"),
        )
    });
    let got = client(TcpLink::connect(addr, Duration::from_secs(5)).unwrap());
    let (_, want) = frames_to_send();
    assert_eq!(got.frames, want);
    assert_eq!(srv.join().unwrap().error, None);
}

#[test]
fn a_killed_pipe_is_a_broken_connection() {
    let config = PipeConfig::default().with_kill_after_bytes(5000);
    let (a, b) = PipeEnd::pair(config, 5, SystemClock::new());
    let srv = std::thread::spawn(move || {
        let mut c = Connection::new(Config::default(), Instant::ZERO);
        let mut app = Collect::default();
        let r = StreamDriver::new(b).run(&mut c, &mut app, &AtomicBool::new(false), |_, _| {});
        (r.map_err(|e| e.kind()), app.frames.len())
    });
    let mut c = Connection::new(Config::default(), Instant::ZERO);
    c.send_frame(OutFrame {
        status: 1,
        files: vec![OutFile::bytes("x", vec![0; 100_000])],
        message: vec![],
    })
    .unwrap();
    let r = StreamDriver::new(a).run(
        &mut c,
        &mut Collect::default(),
        &AtomicBool::new(false),
        |_, _| {},
    );
    assert!(r.is_err(), "the sender sees the break");
    let (r, frames) = srv.join().unwrap();
    // The receiver hears Closed { error: true } (ends with Some(false)) or the link error.
    assert!(matches!(r, Ok(Finish::Done(false)) | Err(_)), "{r:?}");
    assert_eq!(frames, 0);
}

#[test]
fn a_protocol_error_over_the_driver_closes_the_stream() {
    let link = redgiant_base::testing::ScriptedStream {
        input: [
            b"\x81\x01\0\0\0\0\0\0\0\0\0\0\0\0\0\0\0\0".to_vec(),
            b"GET / HTTP/1.1\r\n".to_vec(),
        ]
        .into(),
        ..Default::default()
    };
    let clock = ManualClock::new(Instant::ZERO);
    let mut d = StreamDriver::with_clock(link, clock, DriverConfig::default());
    let mut c = Connection::new(
        Config {
            limits: Limits::default(),
            ..Config::default()
        },
        Instant::ZERO,
    );
    let mut app = Echo::default();
    let r = d.run(&mut c, &mut app, &AtomicBool::new(false), |_, _| {});
    assert_eq!(r.unwrap(), Finish::Done(()));
    assert_eq!(app.error, Some(DecodeError::MsbZero { status: b'G' }));
    let link = d.into_link();
    assert!(link.shut);
    assert_eq!(
        link.output,
        encode_frame(1, &[], b"").unwrap(),
        "the good frame was echoed"
    );
}
