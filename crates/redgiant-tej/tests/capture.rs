//! A TEJ exchange recorded with rgtp-capture's `StreamRecorder`: the TCP
//! payloads of the capture, each direction put back together, decode to
//! exactly the frames that were sent and echoed.

use std::io;
use std::sync::atomic::AtomicBool;

use redgiant_base::driver::{Application, Finish, StreamDriver};
use redgiant_base::{Instant, SystemClock};
use redgiant_tej::wire::{encode_frame, Decoder, Limits};
use redgiant_tej::{Config, Connection, Event, OutFile, OutFrame};
use rgtp_capture::StreamRecorder;
use rgtp_link::pipe::{PipeConfig, PipeEnd};

/// Echoes frames back; ends when the connection does.
struct Echo;

impl Application<Connection> for Echo {
    type Output = ();
    type Error = io::Error;
    fn deliver(&mut self, d: core::convert::Infallible) -> io::Result<()> {
        match d {}
    }
    fn event(&mut self, c: &mut Connection, ev: Event) -> io::Result<Option<()>> {
        if ev == Event::Finished {
            return Ok(Some(()));
        }
        c.forward(&ev)
            .map_err(|e| io::Error::new(io::ErrorKind::InvalidData, e))?;
        Ok(None)
    }
}

/// Counts echoed frames; ends when the peer closed.
struct Count(u64);

impl Application<Connection> for Count {
    type Output = ();
    type Error = io::Error;
    fn deliver(&mut self, d: core::convert::Infallible) -> io::Result<()> {
        match d {}
    }
    fn event(&mut self, _: &mut Connection, ev: Event) -> io::Result<Option<()>> {
        match ev {
            Event::FrameEnd { .. } => self.0 += 1,
            Event::Closed { .. } => return Ok(Some(())),
            _ => {}
        }
        Ok(None)
    }
}

/// The TCP payloads of a classic pcap of Ethernet/IPv4 frames, by source address.
fn payloads(pcap: &[u8]) -> Vec<([u8; 4], Vec<u8>)> {
    let mut out = Vec::new();
    let mut at = 24;
    while at + 16 <= pcap.len() {
        let len = u32::from_le_bytes(pcap[at + 8..at + 12].try_into().unwrap()) as usize;
        let frame = &pcap[at + 16..at + 16 + len];
        at += 16 + len;
        assert_eq!(&frame[12..14], &[0x08, 0x00], "IPv4");
        let ip = &frame[14..];
        let ihl = usize::from(ip[0] & 0x0f) * 4;
        let total = usize::from(u16::from_be_bytes([ip[2], ip[3]]));
        assert_eq!(ip[9], 6, "TCP");
        let tcp = &ip[ihl..total];
        let data_off = usize::from(tcp[12] >> 4) * 4;
        out.push((ip[12..16].try_into().unwrap(), tcp[data_off..].to_vec()));
    }
    out
}

fn decode_frames(bytes: &[u8]) -> u64 {
    let mut dec = Decoder::new(Limits::default());
    let mut input = bytes;
    loop {
        let (used, ev) = dec.decode(input).unwrap();
        input = &input[used..];
        if ev.is_none() {
            break;
        }
    }
    dec.finish().unwrap();
    dec.frames()
}

#[test]
fn a_recorded_exchange_decodes_from_the_capture() {
    let dir = std::env::temp_dir().join(format!("redgiant-tej-capture-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let path = dir.join("tej.pcap");
    let (a, b) = PipeEnd::pair(
        PipeConfig::default().with_segment(700),
        3,
        SystemClock::new(),
    );
    let server = std::thread::spawn(move || {
        let mut c = Connection::new(Config::default(), Instant::ZERO);
        let r = StreamDriver::new(b).run(&mut c, &mut Echo, &AtomicBool::new(false), |_, _| {});
        assert_eq!(r.unwrap(), Finish::Done(()));
    });
    let big: Vec<u8> = (0..200_000u32).map(|i| (i % 251) as u8).collect();
    let mut sent = encode_frame(4, &[("é.txt", b"one"), ("big", &big)], b"two files").unwrap();
    sent.extend(encode_frame(2, &[], b"").unwrap());
    let mut c = Connection::new(Config::default(), Instant::ZERO);
    c.send_frame(OutFrame {
        status: 4,
        files: vec![
            OutFile::bytes("é.txt", b"one".to_vec()),
            OutFile::reader("big", big.len() as u64, io::Cursor::new(big.clone())),
        ],
        message: b"two files".to_vec(),
    })
    .unwrap();
    c.send_ping().unwrap();
    c.close();
    let recorder = StreamRecorder::create(a, &path).unwrap();
    let mut driver = StreamDriver::new(recorder);
    let mut count = Count(0);
    let r = driver.run(&mut c, &mut count, &AtomicBool::new(false), |_, _| {});
    assert_eq!(r.unwrap(), Finish::Done(()));
    assert_eq!(count.0, 2);
    server.join().unwrap();
    let (_, _) = driver.into_link().finish().unwrap();
    let pcap = std::fs::read(&path).unwrap();
    let segments = payloads(&pcap);
    let (mut to_server, mut to_client) = (Vec::new(), Vec::new());
    for (src, data) in &segments {
        match src {
            [10, 0, 0, 1] => to_server.extend_from_slice(data),
            _ => to_client.extend_from_slice(data),
        }
    }
    assert_eq!(to_server, sent, "what the capture shows going out");
    assert_eq!(to_client, sent, "and the echo coming back");
    assert_eq!(decode_frames(&to_server), 2);
    std::fs::remove_dir_all(&dir).ok();
}
