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
    Case {
        id: "GTU-007",
        title: "a DATA with an empty payload is answered (and echoed empty)",
        section: "§1",
        level: Level::Must,
        run: empty_payload,
    },
    Case {
        id: "GTU-008",
        title: "a DATA with the largest payload UDP over IPv4 carries (65 507 − header bytes) is answered (and echoed whole)",
        section: "§1",
        level: Level::Should,
        run: largest_payload,
    },
    Case {
        id: "GTU-009",
        title: "with no ACK, the RECV is repeated by a timer: at least once, never sooner than 20 ms apart, at most 10 repetitions",
        section: "§4, §5",
        level: Level::Must,
        run: recv_repeated,
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

/// Sends DATA(`id`, `payload`), requires its RECV and confirms it with an ACK.
fn confirmed(
    ctx: &GtudpCtx,
    s: &UdpSocket,
    id: Identity,
    payload: &[u8],
) -> Result<(), super::Stop> {
    send(ctx, s, &Repr::Data { id, payload })?;
    ensure!(
        wait_recv(ctx, s, id, answer_wait(ctx)),
        "no RECV for identity {:08x} (a DATA of {} bytes)",
        id.to_u32(),
        payload.len()
    );
    send(ctx, s, &Repr::Ack { id })
}

fn data_answered(ctx: &GtudpCtx) -> CaseResult {
    let s = sock(ctx)?;
    let id = fresh_id(1);
    confirmed(ctx, &s, id, b"gtu-001")?;
    Ok(format!("RECV {:08x} received", id.to_u32()))
}

fn quiet_after_ack(ctx: &GtudpCtx) -> CaseResult {
    let s = sock(ctx)?;
    let id = fresh_id(2);
    confirmed(ctx, &s, id, b"gtu-002")?;
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
    confirmed(ctx, &s, fresh_id(33), b"after").map_err(|_| {
        super::Stop::Fail("no RECV for a valid DATA after the malformed ones".into())
    })?;
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

/// Confirms a DATA of `payload` and, with an echo, requires exactly one echo of it.
fn answered_and_echoed(ctx: &GtudpCtx, tag: u32, payload: &[u8]) -> CaseResult {
    let s = sock(ctx)?;
    confirmed(ctx, &s, fresh_id(tag), payload)?;
    if !ctx.echo {
        return Ok(format!("a {}-byte DATA answered", payload.len()));
    }
    let n = echoes(ctx, &s, payload, answer_wait(ctx))?;
    ensure!(
        n == 1,
        "{n} echo(es) of a {}-byte payload (expected 1)",
        payload.len()
    );
    Ok(format!("a {}-byte DATA answered and echoed", payload.len()))
}

fn empty_payload(ctx: &GtudpCtx) -> CaseResult {
    answered_and_echoed(ctx, 7, b"")
}

fn largest_payload(ctx: &GtudpCtx) -> CaseResult {
    if !ctx.addr.is_ipv4() {
        return skip("the limit is stated for IPv4");
    }
    let len = 65_507 - ctx.profile.header_len();
    let payload: Vec<u8> = (0..len).map(|i| (i % 251) as u8).collect();
    answered_and_echoed(ctx, 8, &payload)
}

fn recv_repeated(ctx: &GtudpCtx) -> CaseResult {
    let s = sock(ctx)?;
    let id = fresh_id(9);
    send(
        ctx,
        &s,
        &Repr::Data {
            id,
            payload: b"gtu-009",
        },
    )?;
    // Echoes are confirmed (so they do not clutter the count); our RECV is never
    // acknowledged. Both timer modes repeat within 1.5 s of the first RECV (0.5 s,
    // then 0.5 s and 1 s before any RTT sample); 3 s shows the spacing too.
    let start = Instant::now();
    let end = start + Duration::from_secs(3);
    let mut at = Vec::new();
    let mut buf = vec![0u8; 65_536];
    while Instant::now() < end {
        let left = end.saturating_duration_since(Instant::now());
        let _ = s.set_read_timeout(Some(left.max(Duration::from_millis(1))));
        let Ok(n) = s.recv(&mut buf) else { break };
        match Repr::parse(&buf[..n], &ctx.profile) {
            Ok(Repr::Recv { id: got }) if got == id => at.push(start.elapsed()),
            Ok(Repr::Data { id: echo, .. }) => send(ctx, &s, &Repr::Recv { id: echo })?,
            Ok(Repr::Recv { id: other }) => send(ctx, &s, &Repr::Ack { id: other })?,
            _ => {}
        }
    }
    // Now end it, so the endpoint does not go on repeating into the next case.
    send(ctx, &s, &Repr::Ack { id })?;
    ensure!(!at.is_empty(), "no RECV for identity {:08x}", id.to_u32());
    ensure!(
        at.len() >= 2,
        "the RECV was not repeated within 3 s without an ACK"
    );
    ensure!(
        at.len() <= 11,
        "{} RECVs in 3 s: more than the 10 repetitions allowed",
        at.len()
    );
    let closest = at.windows(2).map(|w| w[1] - w[0]).min().unwrap_or_default();
    ensure!(
        closest >= Duration::from_millis(20),
        "two RECVs {:.1} ms apart (the timer's floor is 20 ms)",
        closest.as_secs_f64() * 1e3
    );
    Ok(format!(
        "{} RECVs in 3 s, the closest {:.0} ms apart",
        at.len(),
        closest.as_secs_f64() * 1e3
    ))
}

/// Whether a gtUDP receiver answers at `addr` in `profile`: one DATA (a readiness
/// probe the endpoint delivers like any other), its RECV within 200 ms, our ACK.
pub fn answers(addr: SocketAddr, profile: &Profile) -> bool {
    let ctx = GtudpCtx {
        addr,
        profile: profile.clone(),
        echo: false,
        quiet: Duration::from_millis(50),
    };
    let Ok(s) = sock(&ctx) else { return false };
    let id = fresh_id(0x9e);
    if send(
        &ctx,
        &s,
        &Repr::Data {
            id,
            payload: b"rgtp-conformance: ready?",
        },
    )
    .is_err()
    {
        return false;
    }
    let ok = wait_recv(&ctx, &s, id, Duration::from_millis(200));
    if ok {
        let _ = send(&ctx, &s, &Repr::Ack { id });
    }
    ok
}
