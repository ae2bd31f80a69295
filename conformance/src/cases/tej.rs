//! TEJ cases: a TEJ server (optionally echoing), black-box over TCP, against
//! `spec/tej.md`. Frames are built here byte by byte from the spec's table, not
//! with our own encoder, so that a case checks the server against the spec.

use std::io::{ErrorKind, Read, Write};
use std::net::{Shutdown, SocketAddr, TcpStream};
use std::time::{Duration, Instant};

use super::{skip, Case, CaseResult, Level, OrFail};
use crate::ensure;

/// What a TEJ case needs.
pub struct TejCtx {
    /// The server under test.
    pub addr: SocketAddr,
    /// It sends every frame back unchanged.
    pub echo: bool,
    /// How long an answer (or a close) is waited for.
    pub wait: Duration,
}

/// The TEJ catalogue.
pub const CASES: &[Case<TejCtx>] = &[
    Case {
        id: "TEJ-001",
        title: "a frame with no file and a message comes back byte for byte",
        section: "§1",
        level: Level::Must,
        run: message_only,
    },
    Case {
        id: "TEJ-002",
        title: "files of 0 B, 1 B and 1 MiB with a message come back byte for byte",
        section: "§1, §2",
        level: Level::Must,
        run: files_and_message,
    },
    Case {
        id: "TEJ-003",
        title: "50 pipelined frames come back in order, byte for byte",
        section: "§1",
        level: Level::Must,
        run: pipelined,
    },
    Case {
        id: "TEJ-004",
        title: "a name is counted in UTF-8 bytes, not characters",
        section: "§1",
        level: Level::Must,
        run: utf8_name,
    },
    Case {
        id: "TEJ-005",
        title: "a ping (custom status 2) keeps the connection usable",
        section: "§1",
        level: Level::Must,
        run: ping,
    },
    Case {
        id: "TEJ-006",
        title:
            "a status byte with its top bit 0 ends that connection, and the server serves the next",
        section: "§2.2",
        level: Level::Must,
        run: msb_zero,
    },
    Case {
        id: "TEJ-007",
        title: "a version other than 1 ends that connection, and the server serves the next",
        section: "§2.2",
        level: Level::Must,
        run: bad_version,
    },
    Case {
        id: "TEJ-008",
        title: "a file declaring 2^63 bytes, cut off, costs the server nothing: it serves the next",
        section: "§2, §2.2",
        level: Level::Must,
        run: huge_declared,
    },
    Case {
        id: "TEJ-009",
        title: "a connection cut mid-frame leaves the server serving others",
        section: "§2.2",
        level: Level::Must,
        run: cut_mid_frame,
    },
];

/// One frame, laid out as spec §1's table says.
pub fn frame(status: u8, files: &[(&[u8], &[u8])], msg: &[u8]) -> Vec<u8> {
    let mut v = vec![0x80 | (status & 0x7f), 1];
    v.extend_from_slice(&(files.len() as u64).to_be_bytes());
    for (name, data) in files {
        v.extend_from_slice(&(name.len() as u16).to_be_bytes());
        v.extend_from_slice(name);
        v.extend_from_slice(&(data.len() as u64).to_be_bytes());
        v.extend_from_slice(data);
    }
    v.extend_from_slice(&(msg.len() as u64).to_be_bytes());
    v.extend_from_slice(msg);
    v
}

fn connect(ctx: &TejCtx) -> Result<TcpStream, super::Stop> {
    let s = TcpStream::connect_timeout(&ctx.addr, ctx.wait).or_fail("connect")?;
    s.set_nodelay(true).or_fail("nodelay")?;
    Ok(s)
}

/// Reads exactly `n` bytes within the case's wait (per read).
fn read_n(ctx: &TejCtx, s: &mut TcpStream, n: usize) -> Result<Vec<u8>, String> {
    let mut out = vec![0u8; n];
    let mut got = 0;
    let end = Instant::now() + ctx.wait * 4;
    while got < n {
        let left = end.saturating_duration_since(Instant::now());
        if left.is_zero() {
            return Err(format!("{got} of {n} bytes came back in time"));
        }
        let _ = s.set_read_timeout(Some(left));
        match s.read(&mut out[got..]) {
            Ok(0) => return Err(format!("closed after {got} of {n} bytes")),
            Ok(k) => got += k,
            Err(e) if e.kind() == ErrorKind::Interrupted => {}
            Err(e) => return Err(format!("{e} after {got} of {n} bytes")),
        }
    }
    Ok(out)
}

/// True if the server ends the connection (EOF or reset) within the wait.
fn closed(ctx: &TejCtx, s: &mut TcpStream) -> bool {
    let end = Instant::now() + ctx.wait * 4;
    let mut buf = [0u8; 4096];
    loop {
        let left = end.saturating_duration_since(Instant::now());
        if left.is_zero() {
            return false;
        }
        let _ = s.set_read_timeout(Some(left));
        match s.read(&mut buf) {
            Ok(0) => return true,
            Ok(_) => {}
            Err(e) if matches!(e.kind(), ErrorKind::WouldBlock | ErrorKind::TimedOut) => {
                return false
            }
            Err(_) => return true,
        }
    }
}

/// Sends `frames` on one connection and, with an echoing server, checks they come
/// back exactly; without one, checks the server keeps the connection open.
fn round_trip(ctx: &TejCtx, frames: &[Vec<u8>]) -> CaseResult {
    let mut s = connect(ctx)?;
    let all: Vec<u8> = frames.concat();
    s.write_all(&all).or_fail("send")?;
    if !ctx.echo {
        return skip("needs an echoing server (--echo) to observe");
    }
    let back = read_n(ctx, &mut s, all.len()).or_fail("echo")?;
    ensure!(back == all, "the echo differs from what was sent");
    Ok(format!(
        "{} frames, {} bytes back exactly",
        frames.len(),
        all.len()
    ))
}

/// A connection that works after an earlier one was refused.
fn still_serving(ctx: &TejCtx) -> CaseResult {
    let f = frame(0, &[(b"after", b"still here")], b"next connection");
    let mut s = connect(ctx)?;
    s.write_all(&f).or_fail("send")?;
    if ctx.echo {
        let back = read_n(ctx, &mut s, f.len()).or_fail("echo on a new connection")?;
        ensure!(back == f, "the next connection's echo differs");
    } else {
        ensure!(
            !closed(ctx, &mut s),
            "the server closed a valid connection after refusing another"
        );
    }
    Ok("the server serves a new connection".into())
}

fn message_only(ctx: &TejCtx) -> CaseResult {
    round_trip(ctx, &[frame(7, &[], "tej-001 ✓".as_bytes())])
}

fn files_and_message(ctx: &TejCtx) -> CaseResult {
    let big: Vec<u8> = (0..1u32 << 20).map(|i| (i * 31 % 251) as u8).collect();
    round_trip(
        ctx,
        &[frame(
            1,
            &[(b"empty", b""), (b"one", b"x"), (b"big.bin", &big)],
            b"three files",
        )],
    )
}

fn pipelined(ctx: &TejCtx) -> CaseResult {
    let frames: Vec<Vec<u8>> = (0..50u32)
        .map(|i| {
            let data = vec![i as u8; (i as usize * 97) % 3000];
            frame(
                (i % 100) as u8 + 3,
                &[(format!("f{i}").as_bytes(), &data)],
                format!("frame {i}").as_bytes(),
            )
        })
        .collect();
    round_trip(ctx, &frames)
}

fn utf8_name(ctx: &TejCtx) -> CaseResult {
    // "ü" is one character and two bytes: name_len must be 6, not 5.
    let f = frame(0, &[("ü.txt".as_bytes(), b"umlaut")], b"");
    ensure!(f[10..12] == [0, 6], "frame builder");
    round_trip(ctx, &[f])
}

fn ping(ctx: &TejCtx) -> CaseResult {
    let p = frame(2, &[], b"");
    let f = frame(9, &[(b"after-ping", b"data")], b"after a ping");
    let mut s = connect(ctx)?;
    s.write_all(&p).or_fail("send ping")?;
    s.write_all(&f).or_fail("send frame")?;
    if !ctx.echo {
        ensure!(
            !closed(ctx, &mut s),
            "the server closed the connection after a ping"
        );
        return Ok("connection kept after a ping".into());
    }
    // A ping may be echoed like any frame or answered with nothing (spec §1 says a
    // receiver sends nothing back; an echo server may return it unchanged).
    let first = read_n(ctx, &mut s, p.len().min(f.len())).or_fail("echo")?;
    let rest_len = if first == p {
        f.len()
    } else {
        f.len() - first.len()
    };
    let rest = read_n(ctx, &mut s, rest_len).or_fail("echo")?;
    let back = if first == p {
        rest
    } else {
        [first, rest].concat()
    };
    ensure!(back == f, "the frame after the ping came back different");
    Ok("the frame after a ping came back exactly".into())
}

fn refused_then_serving(ctx: &TejCtx, bad: &[u8], what: &str) -> CaseResult {
    let mut s = connect(ctx)?;
    s.write_all(bad).or_fail("send")?;
    ensure!(
        closed(ctx, &mut s),
        "the server kept a connection open after {what}"
    );
    still_serving(ctx)?;
    Ok(format!(
        "{what}: that connection ended; the next was served"
    ))
}

fn msb_zero(ctx: &TejCtx) -> CaseResult {
    let mut f = frame(0, &[], b"top bit clear");
    f[0] &= 0x7f;
    refused_then_serving(ctx, &f, "a status byte with its top bit 0")
}

fn bad_version(ctx: &TejCtx) -> CaseResult {
    let mut f = frame(0, &[], b"version 2");
    f[1] = 2;
    refused_then_serving(ctx, &f, "version 2")
}

fn huge_declared(ctx: &TejCtx) -> CaseResult {
    let mut f = vec![0x80, 1];
    f.extend_from_slice(&1u64.to_be_bytes());
    f.extend_from_slice(&4u16.to_be_bytes());
    f.extend_from_slice(b"huge");
    f.extend_from_slice(&(1u64 << 63).to_be_bytes());
    f.extend_from_slice(&[0u8; 4096]);
    let mut s = connect(ctx)?;
    s.write_all(&f).or_fail("send")?;
    // Give it a moment with the declaration, then cut the connection.
    std::thread::sleep(ctx.wait / 2);
    let _ = s.shutdown(Shutdown::Both);
    drop(s);
    still_serving(ctx)?;
    Ok("a 2^63-byte declaration cut off; the server served the next connection".into())
}

fn cut_mid_frame(ctx: &TejCtx) -> CaseResult {
    let f = frame(0, &[(b"half", &[7u8; 5000])], b"never finished");
    let mut s = connect(ctx)?;
    s.write_all(&f[..f.len() / 2]).or_fail("send")?;
    let _ = s.shutdown(Shutdown::Both);
    drop(s);
    still_serving(ctx)?;
    Ok("a connection cut mid-frame; the server served the next".into())
}

/// Whether a TEJ server accepts connections at `addr` (the connection is closed at
/// once, before any byte).
pub fn accepts(addr: std::net::SocketAddr) -> bool {
    std::net::TcpStream::connect_timeout(&addr, std::time::Duration::from_millis(200)).is_ok()
}
