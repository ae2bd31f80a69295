//! GTU cases: a gtUDP receiver (optionally echoing), black-box over UDP, against
//! `spec/gtudp.md`.

use std::net::{SocketAddr, UdpSocket};
use std::time::{Duration, Instant};

use redgiant_gtudp::wire::{Identity, Profile, Repr};

use super::{fail, skip, Case, CaseResult, Level, OrFail};
use crate::ensure;

/// What a gtUDP case needs.
pub struct GtudpCtx {
    /// The endpoint under test.
    pub addr: SocketAddr,
    /// Its profile.
    pub profile: Profile,
    /// It sends every delivered payload back as a DATA to its sender.
    pub echo: bool,
    /// How long "no answer" is waited for.
    pub quiet: Duration,
}

/// The GTU catalogue.
pub const CASES: &[Case<GtudpCtx>] = &[
    Case {
        id: "GTU-001",
        title: "a DATA is answered with a RECV carrying the same identity",
        section: "§4",
        level: Level::Must,
        run: data_answered,
    },
    Case {
        id: "GTU-002",
        title: "no RECV is repeated after the ACK",
        section: "§4",
        level: Level::Must,
        run: quiet_after_ack,
    },
    Case {
        id: "GTU-003",
        title: "truncated, wrong-magic, unknown-type and RECV-with-payload datagrams draw no answer and leave later exchanges intact",
        section: "§1.1",
        level: Level::Must,
        run: malformed_dropped,
    },
    Case {
        id: "GTU-004",
        title: "a RECV for an unknown identity is answered by an ACK",
        section: "§4",
        level: Level::Should,
        run: unknown_recv_acked,
    },
    Case {
        id: "GTU-005",
        title: "a duplicate DATA, before and after the ACK, is delivered once (one echo)",
        section: "§4, §6",
        level: Level::Must,
        run: duplicate_once,
    },
    Case {
        id: "GTU-006",
        title: "two peers using the same identity are both delivered (one echo each)",
        section: "§6",
        level: Level::Must,
        run: per_peer,
    },
];

fn sock(ctx: &GtudpCtx) -> Result<UdpSocket, super::Stop> {
    let bind = if ctx.addr.is_ipv4() {
        "0.0.0.0:0"
    } else {
        "[::]:0"
    };
    let s = UdpSocket::bind(bind).or_fail("bind")?;
    s.connect(ctx.addr).or_fail("connect")?;
    Ok(s)
}

fn send(ctx: &GtudpCtx, s: &UdpSocket, r: &Repr) -> Result<(), super::Stop> {
    let mut v = Vec::new();
    r.emit_vec(&ctx.profile, &mut v);
    s.send(&v).or_fail("send")?;
    Ok(())
}

/// Every datagram received for `d`, parsed (unparseable ones as `None`).
fn collect(s: &UdpSocket, d: Duration) -> Vec<Vec<u8>> {
    let end = Instant::now() + d;
    let mut out = Vec::new();
    let mut buf = vec![0u8; 65_536];
    loop {
        let left = end.saturating_duration_since(Instant::now());
        if left.is_zero() {
            return out;
        }
        let _ = s.set_read_timeout(Some(left.max(Duration::from_millis(1))));
        match s.recv(&mut buf) {
            Ok(n) => out.push(buf[..n].to_vec()),
            Err(_) => return out,
        }
    }
}

/// Waits up to `d` for a RECV of `id`, answering nothing.
fn wait_recv(ctx: &GtudpCtx, s: &UdpSocket, id: Identity, d: Duration) -> bool {
    let end = Instant::now() + d;
    let mut buf = vec![0u8; 65_536];
    while Instant::now() < end {
        let left = end.saturating_duration_since(Instant::now());
        let _ = s.set_read_timeout(Some(left.max(Duration::from_millis(1))));
        let Ok(n) = s.recv(&mut buf) else {
            return false;
        };
        if matches!(Repr::parse(&buf[..n], &ctx.profile), Ok(Repr::Recv { id: got }) if got == id) {
            return true;
        }
    }
    false
}

fn fresh_id(tag: u32) -> Identity {
    let t = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.subsec_nanos())
        .unwrap_or(0);
    Identity::from_u32(t ^ tag.rotate_left(16))
}

fn answer_wait(ctx: &GtudpCtx) -> Duration {
    ctx.quiet.max(Duration::from_millis(300)) * 4
}

fn data_answered(ctx: &GtudpCtx) -> CaseResult {
    let s = sock(ctx)?;
    let id = fresh_id(1);
    send(
        ctx,
        &s,
        &Repr::Data {
            id,
            payload: b"gtu-001",
        },
    )?;
    ensure!(
        wait_recv(ctx, &s, id, answer_wait(ctx)),
        "no RECV for identity {:08x}",
        id.to_u32()
    );
    send(ctx, &s, &Repr::Ack { id })?;
    Ok(format!("RECV {:08x} received", id.to_u32()))
}

fn quiet_after_ack(ctx: &GtudpCtx) -> CaseResult {
    let s = sock(ctx)?;
    let id = fresh_id(2);
    send(
        ctx,
        &s,
        &Repr::Data {
            id,
            payload: b"gtu-002",
        },
    )?;
    ensure!(
        wait_recv(ctx, &s, id, answer_wait(ctx)),
        "no RECV for identity {:08x}",
        id.to_u32()
    );
    send(ctx, &s, &Repr::Ack { id })?;
    // RECVs already on their way when the ACK left are not counted.
    let _ = collect(&s, Duration::from_millis(50));
    let later = collect(&s, ctx.quiet.max(Duration::from_millis(1200)));
    let recvs = later
        .iter()
        .filter(|d| matches!(Repr::parse(d, &ctx.profile), Ok(Repr::Recv { id: got }) if got == id))
        .count();
    ensure!(recvs == 0, "{recvs} RECV(s) after the ACK");
    Ok("no RECV after the ACK".into())
}

fn malformed_dropped(ctx: &GtudpCtx) -> CaseResult {
    let s = sock(ctx)?;
    let id = fresh_id(3);
    let mut bad: Vec<(&str, Vec<u8>)> = Vec::new();
    let mut data = Vec::new();
    Repr::Data { id, payload: b"x" }.emit_vec(&ctx.profile, &mut data);
    let header = ctx.profile.header_len();
    bad.push(("truncated", data[..header - 1].to_vec()));
    if !ctx.profile.magic().is_empty() {
        let mut m = data.clone();
        m[0] ^= 0xff;
        bad.push(("wrong magic", m));
    }
    let mut t = data.clone();
    let m = ctx.profile.magic().len();
    // A type code differing from all three in its first byte.
    let codes: Vec<u8> = [
        redgiant_gtudp::wire::Kind::Data,
        redgiant_gtudp::wire::Kind::Recv,
        redgiant_gtudp::wire::Kind::Ack,
    ]
    .iter()
    .map(|k| ctx.profile.type_code(*k)[0])
    .collect();
    let Some(other) = (0u8..=255).find(|b| !codes.contains(b)) else {
        return skip("no unused type byte");
    };
    t[m] = other;
    bad.push(("unknown type", t));
    let mut rp = Vec::new();
    Repr::Recv { id }.emit_vec(&ctx.profile, &mut rp);
    rp.extend_from_slice(b"payload");
    bad.push(("RECV with payload", rp));
    let mut ap = Vec::new();
    Repr::Ack { id }.emit_vec(&ctx.profile, &mut ap);
    ap.extend_from_slice(b"payload");
    bad.push(("ACK with payload", ap));
    for (what, d) in &bad {
        s.send(d).or_fail("send")?;
        let got = collect(&s, ctx.quiet);
        if !got.is_empty() {
            return fail(format!("{what}: {} answer(s)", got.len()));
        }
    }
    let id2 = fresh_id(33);
    send(
        ctx,
        &s,
        &Repr::Data {
            id: id2,
            payload: b"after",
        },
    )?;
    ensure!(
        wait_recv(ctx, &s, id2, answer_wait(ctx)),
        "no RECV for a valid DATA after the malformed ones"
    );
    send(ctx, &s, &Repr::Ack { id: id2 })?;
    Ok(format!(
        "{} malformed datagrams unanswered; later DATA answered",
        bad.len()
    ))
}

fn unknown_recv_acked(ctx: &GtudpCtx) -> CaseResult {
    let s = sock(ctx)?;
    let id = fresh_id(4);
    send(ctx, &s, &Repr::Recv { id })?;
    let got = collect(&s, answer_wait(ctx));
    let acks = got
        .iter()
        .filter(|d| matches!(Repr::parse(d, &ctx.profile), Ok(Repr::Ack { id: g }) if g == id))
        .count();
    ensure!(
        acks >= 1,
        "no ACK for an unknown RECV (\"answer with ACK(id)\")"
    );
    Ok(format!("{acks} ACK"))
}

/// Counts the echoes (DATA carrying `payload`) for `d`, confirming each with a RECV
/// and answering RECVs with ACKs.
fn echoes(
    ctx: &GtudpCtx,
    s: &UdpSocket,
    payload: &[u8],
    d: Duration,
) -> Result<usize, super::Stop> {
    let mut ids = Vec::new();
    for dg in collect_answering(ctx, s, d)? {
        if let Ok(Repr::Data { id, payload: p }) = Repr::parse(&dg, &ctx.profile) {
            if p == payload && !ids.contains(&id) {
                ids.push(id);
            }
        }
    }
    Ok(ids.len())
}

fn collect_answering(
    ctx: &GtudpCtx,
    s: &UdpSocket,
    d: Duration,
) -> Result<Vec<Vec<u8>>, super::Stop> {
    let end = Instant::now() + d;
    let mut out = Vec::new();
    let mut buf = vec![0u8; 65_536];
    while Instant::now() < end {
        let left = end.saturating_duration_since(Instant::now());
        let _ = s.set_read_timeout(Some(left.max(Duration::from_millis(1))));
        let Ok(n) = s.recv(&mut buf) else { break };
        let dg = buf[..n].to_vec();
        match Repr::parse(&dg, &ctx.profile) {
            Ok(Repr::Data { id, .. }) => send(ctx, s, &Repr::Recv { id })?,
            Ok(Repr::Recv { id }) => send(ctx, s, &Repr::Ack { id })?,
            _ => {}
        }
        out.push(dg);
    }
    Ok(out)
}

fn duplicate_once(ctx: &GtudpCtx) -> CaseResult {
    if !ctx.echo {
        return skip("needs --echo: delivery is observed through the echo");
    }
    let s = sock(ctx)?;
    let id = fresh_id(5);
    let payload = format!("gtu-005 {:08x}", id.to_u32()).into_bytes();
    send(
        ctx,
        &s,
        &Repr::Data {
            id,
            payload: &payload,
        },
    )?;
    send(
        ctx,
        &s,
        &Repr::Data {
            id,
            payload: &payload,
        },
    )?;
    let before = collect_answering(ctx, &s, answer_wait(ctx))?;
    send(ctx, &s, &Repr::Ack { id })?;
    send(
        ctx,
        &s,
        &Repr::Data {
            id,
            payload: &payload,
        },
    )?;
    let n_before = before
        .iter()
        .filter(|d| matches!(Repr::parse(d, &ctx.profile), Ok(Repr::Data { payload: p, .. }) if p == payload.as_slice()))
        .map(|d| Repr::parse(d, &ctx.profile).map(|r| r.id()).ok())
        .collect::<std::collections::HashSet<_>>()
        .len();
    let n_after = echoes(ctx, &s, &payload, answer_wait(ctx))?;
    // The echo's own repetitions share one identity; distinct identities are deliveries.
    ensure!(
        n_before + n_after == 1,
        "{} echo(es) for one identity sent three times",
        n_before + n_after
    );
    Ok("exactly one echo".into())
}

fn per_peer(ctx: &GtudpCtx) -> CaseResult {
    if !ctx.echo {
        return skip("needs --echo: delivery is observed through the echo");
    }
    let a = sock(ctx)?;
    let b = sock(ctx)?;
    let id = fresh_id(6);
    let payload = format!("gtu-006 {:08x}", id.to_u32()).into_bytes();
    send(
        ctx,
        &a,
        &Repr::Data {
            id,
            payload: &payload,
        },
    )?;
    send(
        ctx,
        &b,
        &Repr::Data {
            id,
            payload: &payload,
        },
    )?;
    let wait = answer_wait(ctx);
    let (ea, eb) = std::thread::scope(|sc| {
        let ha = sc.spawn(|| echoes(ctx, &a, &payload, wait));
        let eb = echoes(ctx, &b, &payload, wait);
        (ha.join().unwrap_or_else(|_| fail("thread")), eb)
    });
    let (ea, eb) = (ea?, eb?);
    ensure!(
        ea == 1 && eb == 1,
        "echoes: first peer {ea}, second peer {eb} (expected 1 each)"
    );
    Ok("each peer delivered once".into())
}
