//! Puller cases: the harness plays the exposer (our `Exposure`, served through an
//! adversarial loop), runs the puller command with the ticket and checks what it leaves.

use std::collections::HashSet;
use std::net::SocketAddr;
use std::os::unix::process::CommandExt;
use std::path::PathBuf;
use std::process::{Command, Stdio};
use std::sync::Arc;
use std::time::{Duration, Instant};

use rgtp::{ExposerBuilder, FecSpec, Prepared};
use rgtp_proto::{CipherId, Exposer, Exposure, HashId, Key};
use rgtp_wire::{ChunkData, Repr};

use super::{fail, Case, CaseResult, Level, OrFail, Stop};
use crate::adversary::{self, Mangle, Out, Traffic};
use crate::ensure;
use crate::net::emit;

/// What the puller cases run against.
pub struct PullerCtx {
    /// Shell command with `{ticket}` and `{out}` placeholders (substituted shell-quoted),
    /// optionally `{port}` (a UDP port on 127.0.0.1 free when the command starts, for a
    /// puller that wants to bind a given port) and `{proofs}`: replaced by [`PROOFS_ARG`] in the cases that need the
    /// puller to ask for Merkle proofs, and by nothing elsewhere.
    pub cmd: String,
    /// Bound on one run of the command.
    pub timeout: Duration,
    /// Size of the test data.
    pub size: usize,
    /// Scratch directory.
    pub dir: PathBuf,
}

/// How a run of the puller ended.
pub struct Run {
    /// Exit code (`None`: killed by a signal or by the harness at the bound).
    pub code: Option<i32>,
    /// Killed at the bound.
    pub timed_out: bool,
    /// Wall time.
    pub elapsed: Duration,
    /// The output path given.
    pub out: PathBuf,
    /// Last line of stderr.
    pub stderr_tail: String,
    /// What passed between the puller and the harness's exposer, when one served.
    pub traffic: Option<Traffic>,
}

/// What `{proofs}` in the command stands for in the cases that need the puller to ask for
/// proofs (`rgtp pull`'s option). A puller that always asks for them leaves `{proofs}` out.
pub const PROOFS_ARG: &str = "--proofs";

/// Per-case options of one run of the command.
#[derive(Debug, Clone, Copy, Default)]
pub struct RunOpts {
    /// Substitute `{proofs}` with [`PROOFS_ARG`] (else with nothing).
    pub proofs: bool,
}

/// The exit status by which a command says "this case is not supported by the
/// implementation": the case becomes SKIP (n/a) instead of a failure. A shell also
/// exits 127 when the command is not found.
pub const UNSUPPORTED: i32 = 127;

/// A UDP port on 127.0.0.1 that was free a moment ago (bound and released), for `{port}`.
pub fn free_udp_port() -> std::io::Result<u16> {
    Ok(std::net::UdpSocket::bind("127.0.0.1:0")?
        .local_addr()?
        .port())
}

/// Quotes `s` for `sh`.
pub fn quote(s: &str) -> String {
    format!("'{}'", s.replace('\'', "'\\''"))
}

/// Runs the command with `ticket`, writing to a fresh path in the scratch dir.
pub fn run_cmd(ctx: &PullerCtx, ticket: &str, name: &str) -> Result<Run, Stop> {
    run_cmd_with(ctx, ticket, name, RunOpts::default())
}

/// [`run_cmd`] with per-case options.
pub fn run_cmd_with(ctx: &PullerCtx, ticket: &str, name: &str, opts: RunOpts) -> Result<Run, Stop> {
    crate::evidence::note_ticket(ticket);
    let out = ctx.dir.join(format!("{name}.out"));
    let _ = std::fs::remove_file(&out);
    let port = if ctx.cmd.contains("{port}") {
        free_udp_port()
            .or_fail("finding a free port for {port}")?
            .to_string()
    } else {
        String::new()
    };
    let line = ctx
        .cmd
        .replace("{ticket}", &quote(ticket))
        .replace("{out}", &quote(&out.display().to_string()))
        .replace("{port}", &port)
        .replace("{proofs}", if opts.proofs { PROOFS_ARG } else { "" });
    let err_path = ctx.dir.join(format!("{name}.stderr"));
    let err = std::fs::File::create(&err_path).or_fail("creating stderr file")?;
    let started = Instant::now();
    let mut child = Command::new("sh")
        .arg("-c")
        .arg(&line)
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(err)
        .process_group(0)
        .spawn()
        .or_fail("cannot start the puller command")?;
    let pgid = child.id() as libc::pid_t;
    let mut timed_out = false;
    let status = loop {
        if let Some(st) = child.try_wait().or_fail("waiting for the puller")? {
            break st;
        }
        if started.elapsed() > ctx.timeout {
            timed_out = true;
            // SAFETY: signals the process group this harness created for the child.
            unsafe {
                libc::kill(-pgid, libc::SIGKILL);
            }
            break child.wait().or_fail("reaping the puller")?;
        }
        std::thread::sleep(Duration::from_millis(20));
    };
    let stderr = std::fs::read_to_string(&err_path).unwrap_or_default();
    let stderr_tail = stderr
        .lines()
        .rev()
        .find(|l| !l.trim().is_empty())
        .unwrap_or("")
        .chars()
        .filter(|c| !c.is_control())
        .take(120)
        .collect();
    if !timed_out && status.code() == Some(UNSUPPORTED) {
        return Err(Stop::Skip(format!(
            "n/a: unsupported by the implementation (exit {UNSUPPORTED})"
        )));
    }
    Ok(Run {
        code: status.code(),
        timed_out,
        elapsed: started.elapsed(),
        out,
        stderr_tail,
        traffic: None,
    })
}

/// Test data: deterministic pseudo-random bytes.
pub fn data(size: usize, seed: u64) -> Vec<u8> {
    let mut x = seed.wrapping_mul(0x9e37_79b9_7f4a_7c15) | 1;
    (0..size)
        .map(|_| {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            (x >> 24) as u8
        })
        .collect()
}

struct Setup {
    data: Vec<u8>,
    prepared: Prepared,
}

fn prepare(size: usize, seed: u64, b: ExposerBuilder) -> Result<Setup, Stop> {
    let data = data(size, seed);
    let prepared = b.expose(&data).or_fail("preparing the exposure")?;
    Ok(Setup { data, prepared })
}

fn serve(s: &Setup, m: Box<dyn Mangle>) -> Result<adversary::Served, Stop> {
    let bind: SocketAddr = "127.0.0.1:0".parse().expect("literal");
    adversary::spawn(s.prepared.exposer(), bind, m).or_fail("cannot start the exposer")
}

/// What the puller did: how it ended, its last words, its output, and its traffic.
fn describe(r: &Run) -> String {
    let code = match (r.timed_out, r.code) {
        (true, _) => "killed at the bound".to_string(),
        (false, Some(c)) => format!("exit {c}"),
        (false, None) => "killed by a signal".to_string(),
    };
    let mut s = format!("{code} after {:.1}s", r.elapsed.as_secs_f64());
    if !r.stderr_tail.is_empty() {
        s += &format!(" ({})", r.stderr_tail);
    }
    s += &match std::fs::metadata(&r.out) {
        Ok(m) => format!("; output {} B", m.len()),
        Err(_) => "; no output".to_string(),
    };
    if let Some(t) = &r.traffic {
        s += &format!("; {}", t.describe());
    }
    s
}

/// Honest outcome: exit 0 and a byte-exact output file.
fn expect_success(r: &Run, data: &[u8]) -> CaseResult {
    if r.code != Some(0) {
        return fail(format!("expected exit 0 and the data; {}", describe(r)));
    }
    let got =
        std::fs::read(&r.out).map_err(|e| Stop::Fail(format!("exit 0 but no output file: {e}")))?;
    if got != data {
        let first = got.iter().zip(data).position(|(a, b)| a != b);
        return fail(format!(
            "exit 0 but the output differs ({} B vs {} B, first difference at {:?}); {}",
            got.len(),
            data.len(),
            first,
            describe(r)
        ));
    }
    Ok(format!(
        "exit 0, {} B byte-exact in {:.1}s",
        data.len(),
        r.elapsed.as_secs_f64()
    ))
}

/// Failure outcome: non-zero exit within the bound and no output file.
fn expect_failure(r: &Run, ctx: &PullerCtx) -> CaseResult {
    if r.timed_out {
        return fail(format!(
            "still running after the {:.0}s bound: {}",
            ctx.timeout.as_secs_f64(),
            describe(r)
        ));
    }
    if r.code == Some(0) {
        return fail(format!(
            "exit 0 although the exposer's traffic is not trustworthy: {}",
            describe(r)
        ));
    }
    if r.out.exists() {
        return fail(format!(
            "{}, but left an output file claiming completeness",
            describe(r)
        ));
    }
    Ok(format!("{}, no output", describe(r)))
}

fn base() -> ExposerBuilder {
    ExposerBuilder::new()
}

fn is_chunk(d: &[u8]) -> bool {
    d.len() > 24 && d[0] == 1 && (d[1] == 3 || d[1] == 4)
}

fn chunk_index(d: &[u8]) -> u32 {
    u32::from_be_bytes([d[20], d[21], d[22], d[23]])
}

/// Per-index "first transmission" tracking.
#[derive(Default)]
struct Seen(HashSet<u32>);

impl Seen {
    fn first(&mut self, i: u32) -> bool {
        self.0.insert(i)
    }
}

// ------------------------------------------------------------------ mangles

struct DropFirst {
    seen: Seen,
    manifests: usize,
}
impl Mangle for DropFirst {
    fn outbound(&mut self, _: SocketAddr, d: &[u8], out: &mut Vec<Out>) {
        if d.len() > 1 && d[1] == 2 {
            self.manifests += 1;
            if self.manifests == 1 {
                return; // lose the first Manifest too
            }
        }
        if is_chunk(d) {
            let i = chunk_index(d);
            if self.seen.first(i) && i % 3 == 1 {
                return;
            }
        }
        out.push(Out::real(d.to_vec()));
    }
}

struct Reorder(Vec<Vec<u8>>);
impl Mangle for Reorder {
    fn outbound(&mut self, _: SocketAddr, d: &[u8], out: &mut Vec<Out>) {
        if is_chunk(d) {
            self.0.push(d.to_vec());
        } else {
            out.push(Out::real(d.to_vec()));
        }
    }
    fn flush(&mut self, out: &mut Vec<Out>) {
        // Reverse pairs and then the halves: thorough but deterministic reordering.
        let mut v = std::mem::take(&mut self.0);
        for p in v.chunks_mut(2) {
            p.reverse();
        }
        let h = v.len() / 2;
        v.rotate_left(h);
        out.extend(v.into_iter().map(Out::real));
    }
}

struct Duplicate(Vec<Vec<u8>>);
impl Mangle for Duplicate {
    fn outbound(&mut self, _: SocketAddr, d: &[u8], out: &mut Vec<Out>) {
        out.push(Out::real(d.to_vec()));
        out.push(Out::real(d.to_vec()));
        if is_chunk(d) {
            self.0.push(d.to_vec());
        }
    }
    fn flush(&mut self, out: &mut Vec<Out>) {
        // Replay a few chunks of earlier requests too.
        let keep = self.0.len().saturating_sub(8);
        out.extend(self.0.drain(..).skip(keep).map(Out::real));
    }
}

struct Corrupt(Seen);
impl Mangle for Corrupt {
    fn outbound(&mut self, _: SocketAddr, d: &[u8], out: &mut Vec<Out>) {
        let mut v = d.to_vec();
        if is_chunk(d) && self.0.first(chunk_index(d)) && chunk_index(d) % 4 == 0 {
            let at = v.len() - 17; // last ciphertext byte; the tag is left alone
            v[at] ^= 0x20;
        }
        out.push(Out::real(v));
    }
}

struct ForgeTags;
impl Mangle for ForgeTags {
    fn outbound(&mut self, _: SocketAddr, d: &[u8], out: &mut Vec<Out>) {
        let mut v = d.to_vec();
        if is_chunk(d) {
            let at = v.len() - 1;
            v[at] ^= 0x01;
        }
        out.push(Out::real(v));
    }
}

struct ForgeProofs;
impl Mangle for ForgeProofs {
    fn outbound(&mut self, _: SocketAddr, d: &[u8], out: &mut Vec<Out>) {
        let mut v = d.to_vec();
        if d.len() > 26 && d[1] == 4 && d[24] > 0 {
            v[25] ^= 0x01; // first sibling hash
        }
        out.push(Out::real(v));
    }
}

struct WrongRoot;
impl Mangle for WrongRoot {
    fn outbound(&mut self, _: SocketAddr, d: &[u8], out: &mut Vec<Out>) {
        let mut v = d.to_vec();
        if d.len() >= 72 && d[1] == 2 {
            v[36] ^= 0x80;
        }
        out.push(Out::real(v));
    }
}

/// Sends, before each genuine packet, the matching packet of `other` (same key): with
/// another Exposure_ID (`spoofed` false), or with the same ID from another address.
struct Impostor {
    other: Arc<Exposure>,
    spoofed: bool,
}
impl Mangle for Impostor {
    fn outbound(&mut self, _: SocketAddr, d: &[u8], out: &mut Vec<Out>) {
        if d.len() > 1 && d[1] == 2 {
            out.push(Out {
                data: emit(&Repr::Manifest(self.other.manifest())),
                spoofed: self.spoofed,
            });
        }
        if is_chunk(d) {
            let i = chunk_index(d);
            if i < self.other.chunk_count() {
                out.push(Out {
                    data: emit(&Repr::ChunkData(ChunkData {
                        exposure_id: *self.other.id(),
                        chunk_index: i,
                        payload: self.other.ciphertext(i),
                    })),
                    spoofed: self.spoofed,
                });
            }
        }
        out.push(Out::real(d.to_vec()));
    }
}

/// A key holder on the path: the first `left` chunks answered are preceded, from
/// the exposer's own address, by the same indices of other content sealed under
/// the same key and Exposure_ID (they authenticate; only the Merkle root shows
/// them wrong).
struct Forger {
    other: Arc<Exposure>,
    left: usize,
}
impl Mangle for Forger {
    fn outbound(&mut self, _: SocketAddr, d: &[u8], out: &mut Vec<Out>) {
        if self.left > 0 && is_chunk(d) && d[1] == 3 {
            let i = chunk_index(d);
            if i < self.other.chunk_count() {
                self.left -= 1;
                out.push(Out {
                    data: emit(&Repr::ChunkData(ChunkData {
                        exposure_id: *self.other.id(),
                        chunk_index: i,
                        payload: self.other.ciphertext(i),
                    })),
                    spoofed: false,
                });
            }
        }
        out.push(Out::real(d.to_vec()));
    }
}

struct Garbage {
    count: usize,
}
impl Mangle for Garbage {
    fn outbound(&mut self, _: SocketAddr, d: &[u8], out: &mut Vec<Out>) {
        self.count += 1;
        let mut junk = Vec::new();
        junk.push(d[..d.len().min(10)].to_vec()); // truncated
        let mut v2 = d.to_vec();
        v2[0] = 2; // unknown version
        junk.push(v2);
        let mut lm = d.to_vec();
        lm.push(0); // Length mismatch
        junk.push(lm);
        let mut ty = d.to_vec();
        ty[1] = 0x09; // unknown type
        junk.push(ty);
        if is_chunk(d) {
            let mut depth = d.to_vec();
            depth[1] = 4;
            depth[24] = 40; // bad proof depth
            junk.push(depth);
            if self.count % 8 == 0 {
                // Oversize: a 60,000-byte payload for this index.
                let big = vec![0xa5u8; 60_000];
                let mut id = [0u8; 16];
                id.copy_from_slice(&d[4..20]);
                junk.push(emit(&Repr::ChunkData(ChunkData {
                    exposure_id: id,
                    chunk_index: chunk_index(d),
                    payload: &big,
                })));
            }
        }
        out.extend(junk.into_iter().map(Out::real));
        out.push(Out::real(d.to_vec()));
    }
}

/// Before the first genuine chunk, `count` datagrams from the exposer's address:
/// copies of that chunk with a corrupted tag (each fails the AEAD) and garbage.
struct FloodBeforeFirst {
    count: usize,
    done: bool,
}
impl Mangle for FloodBeforeFirst {
    fn outbound(&mut self, _: SocketAddr, d: &[u8], out: &mut Vec<Out>) {
        if is_chunk(d) && !self.done {
            self.done = true;
            for i in 0..self.count {
                let mut v = d.to_vec();
                if i % 4 == 3 {
                    v.truncate(1 + i % 23); // garbage
                } else {
                    let at = v.len() - 1 - i % 16;
                    v[at] ^= 1 << (i % 8) as u8;
                }
                out.push(Out::real(v));
            }
        }
        out.push(Out::real(d.to_vec()));
    }
}

struct IndexSwap {
    seen: Seen,
    n: u32,
}
impl Mangle for IndexSwap {
    fn outbound(&mut self, _: SocketAddr, d: &[u8], out: &mut Vec<Out>) {
        let mut v = d.to_vec();
        if is_chunk(d) {
            let i = chunk_index(d);
            let j = i ^ 1;
            if self.seen.first(i) && i % 8 == 4 && i + 1 < self.n && j + 1 < self.n {
                v[20..24].copy_from_slice(&j.to_be_bytes());
            }
        }
        out.push(Out::real(v));
    }
}

/// Before the first genuine chunk (which carries its proof), a Chunk_Data for the same
/// index without a proof, sealed under the same key and Exposure_ID over other bytes:
/// it authenticates, but its content is wrong.
struct ProoflessFirst {
    other: Arc<Exposure>,
    done: bool,
}
impl Mangle for ProoflessFirst {
    fn outbound(&mut self, _: SocketAddr, d: &[u8], out: &mut Vec<Out>) {
        if !self.done && is_chunk(d) && d[1] == 4 {
            self.done = true;
            let i = chunk_index(d);
            out.push(Out::real(emit(&Repr::ChunkData(ChunkData {
                exposure_id: *self.other.id(),
                chunk_index: i,
                payload: self.other.ciphertext(i),
            }))));
        }
        out.push(Out::real(d.to_vec()));
    }
}

struct Silence;
impl Mangle for Silence {
    fn inbound(&mut self, _: SocketAddr, _: &mut Vec<u8>) -> bool {
        false
    }
}

struct BadManifest;
impl Mangle for BadManifest {
    fn outbound(&mut self, _: SocketAddr, d: &[u8], out: &mut Vec<Out>) {
        if d.len() >= 72 && d[1] == 2 {
            let mut count = d.to_vec();
            let c = u32::from_be_bytes([d[28], d[29], d[30], d[31]]) + 1;
            count[28..32].copy_from_slice(&c.to_be_bytes());
            out.push(Out::real(count));
            let mut flags = d.to_vec();
            flags[70] |= 0x80;
            out.push(Out::real(flags));
            let mut fec = d.to_vec();
            fec[68] = 4;
            fec[69] = 9; // FEC_K > FEC_N
            out.push(Out::real(fec));
            return;
        }
        out.push(Out::real(d.to_vec()));
    }
}

// ------------------------------------------------------------------ cases

fn honest_run(ctx: &PullerCtx, name: &str, s: &Setup, m: Box<dyn Mangle>) -> Result<Run, Stop> {
    honest_run_with(ctx, name, s, m, RunOpts::default())
}

fn honest_run_with(
    ctx: &PullerCtx,
    name: &str,
    s: &Setup,
    m: Box<dyn Mangle>,
    opts: RunOpts,
) -> Result<Run, Stop> {
    let srv = serve(s, m)?;
    let ticket = s.prepared.ticket(srv.addr).to_string();
    run_served(ctx, &srv, &ticket, name, opts)
}

/// Runs the command against `srv` and records the traffic the exposer saw.
fn run_served(
    ctx: &PullerCtx,
    srv: &adversary::Served,
    ticket: &str,
    name: &str,
    opts: RunOpts,
) -> Result<Run, Stop> {
    let mut r = run_cmd_with(ctx, ticket, name, opts)?;
    r.traffic = Some(srv.traffic());
    Ok(r)
}

fn success_case(
    ctx: &PullerCtx,
    name: &str,
    b: ExposerBuilder,
    size: usize,
    m: Box<dyn Mangle>,
) -> CaseResult {
    let s = prepare(size, name.len() as u64 * 7919, b)?;
    let r = honest_run(ctx, name, &s, m)?;
    expect_success(&r, &s.data)
}

fn failure_case(ctx: &PullerCtx, name: &str, b: ExposerBuilder, m: Box<dyn Mangle>) -> CaseResult {
    let s = prepare(ctx.size, 11, b)?;
    let r = honest_run(ctx, name, &s, m)?;
    expect_failure(&r, ctx)
}

fn pul001(ctx: &PullerCtx) -> CaseResult {
    success_case(ctx, "pul001", base(), ctx.size, Box::new(adversary::Honest))
}

fn pul002(ctx: &PullerCtx) -> CaseResult {
    let b = ExposerBuilder::upstream().with_proofs(true);
    success_case(ctx, "pul002", b, ctx.size, Box::new(adversary::Honest))
}

fn pul003(ctx: &PullerCtx) -> CaseResult {
    let b = base().with_fec(FecSpec::ReedSolomon { n: 10, k: 8 });
    let m = DropFirst {
        seen: Seen::default(),
        manifests: 0,
    };
    success_case(ctx, "pul003", b, ctx.size, Box::new(m))
}

fn pul004(ctx: &PullerCtx) -> CaseResult {
    success_case(
        ctx,
        "pul004",
        base(),
        ctx.size,
        Box::new(Reorder(Vec::new())),
    )
}

fn pul005(ctx: &PullerCtx) -> CaseResult {
    success_case(
        ctx,
        "pul005",
        base(),
        ctx.size,
        Box::new(Duplicate(Vec::new())),
    )
}

fn pul006(ctx: &PullerCtx) -> CaseResult {
    success_case(
        ctx,
        "pul006",
        base(),
        ctx.size,
        Box::new(Corrupt(Seen::default())),
    )
}

fn pul007(ctx: &PullerCtx) -> CaseResult {
    let s = prepare(ctx.size, 7, base())?;
    let n = s.prepared.exposure.chunk_count();
    let r = honest_run(
        ctx,
        "pul007",
        &s,
        Box::new(IndexSwap {
            seen: Seen::default(),
            n,
        }),
    )?;
    expect_success(&r, &s.data)
}

fn pul008(ctx: &PullerCtx) -> CaseResult {
    let key = rgtp_providers::cipher::random_key();
    let s = prepare(ctx.size, 8, base().with_key(key.clone()))?;
    let other = prepare(ctx.size, 88, base().with_key(key))?;
    let m = Impostor {
        other: Arc::clone(&other.prepared.exposure),
        spoofed: false,
    };
    let r = honest_run(ctx, "pul008", &s, Box::new(m))?;
    expect_success(&r, &s.data)
}

fn pul009(ctx: &PullerCtx) -> CaseResult {
    let key = rgtp_providers::cipher::random_key();
    let id = rgtp_providers::cipher::random_exposure_id();
    let s = prepare(
        ctx.size,
        9,
        base().with_key(key.clone()).with_exposure_id(id),
    )?;
    // The impostor reuses the key and Exposure_ID on purpose.
    let other = prepare(
        ctx.size / 2 + 1,
        99,
        base()
            .with_key(key)
            .with_exposure_id(id)
            .dangerous_allow_key_reuse(),
    )?;
    let m = Impostor {
        other: Arc::clone(&other.prepared.exposure),
        spoofed: true,
    };
    let r = honest_run(ctx, "pul009", &s, Box::new(m))?;
    expect_success(&r, &s.data)
}

fn pul010(ctx: &PullerCtx) -> CaseResult {
    success_case(
        ctx,
        "pul010",
        base(),
        ctx.size,
        Box::new(Garbage { count: 0 }),
    )
}

fn pul011(ctx: &PullerCtx) -> CaseResult {
    success_case(ctx, "pul011", base(), 0, Box::new(adversary::Honest))
}

fn pul020(ctx: &PullerCtx) -> CaseResult {
    failure_case(ctx, "pul020", base(), Box::new(ForgeTags))
}

fn pul021(ctx: &PullerCtx) -> CaseResult {
    failure_case(
        ctx,
        "pul021",
        base().with_proofs(true),
        Box::new(ForgeProofs),
    )
}

fn pul022(ctx: &PullerCtx) -> CaseResult {
    failure_case(ctx, "pul022", base(), Box::new(WrongRoot))
}

fn pul023(ctx: &PullerCtx) -> CaseResult {
    failure_case(ctx, "pul023", base(), Box::new(Silence))
}

fn pul024(ctx: &PullerCtx) -> CaseResult {
    failure_case(ctx, "pul024", base(), Box::new(BadManifest))
}

fn pul025(ctx: &PullerCtx) -> CaseResult {
    // Served with the upstream suite, ticket pinning ours: the pin must refuse it.
    let s = prepare(ctx.size, 25, ExposerBuilder::upstream())?;
    let srv = serve(&s, Box::new(adversary::Honest))?;
    let mut t = s.prepared.ticket(srv.addr);
    t.cipher = Some(CipherId::Aes256Gcm);
    t.hash = Some(HashId::Sha256);
    let r = run_served(ctx, &srv, &t.to_string(), "pul025", RunOpts::default())?;
    drop(srv);
    expect_failure(&r, ctx)
}

fn pul026(ctx: &PullerCtx) -> CaseResult {
    let s = prepare(ctx.size, 26, base())?;
    let srv = serve(&s, Box::new(adversary::Honest))?;
    let mut t = s.prepared.ticket(srv.addr);
    let mut k = *t.key.as_bytes();
    k[0] ^= 1;
    t.key = Key::from_bytes(k);
    let r = run_served(ctx, &srv, &t.to_string(), "pul026", RunOpts::default())?;
    drop(srv);
    expect_failure(&r, ctx)
}

fn pul027(ctx: &PullerCtx) -> CaseResult {
    // A ticket for an exposure the exposer does not hold: silence, then non-zero.
    let s = prepare(ctx.size, 27, base())?;
    let srv = serve(&s, Box::new(adversary::Honest))?;
    let mut t = s.prepared.ticket(srv.addr);
    t.exposure_id[3] ^= 0x44;
    let r = run_served(ctx, &srv, &t.to_string(), "pul027", RunOpts::default())?;
    drop(srv);
    expect_failure(&r, ctx)
}

fn pul028(ctx: &PullerCtx) -> CaseResult {
    let m = FloodBeforeFirst {
        count: 1_000,
        done: false,
    };
    success_case(ctx, "pul028", base(), ctx.size, Box::new(m))
}

//= spec/rgtp-v1.md#8.11
//# From then on a chunk that
//# authenticates but carries no proof MUST be dropped
fn pul029(ctx: &PullerCtx) -> CaseResult {
    let key = rgtp_providers::cipher::random_key();
    let id = rgtp_providers::cipher::random_exposure_id();
    let s = prepare(
        ctx.size,
        29,
        base()
            .with_proofs(true)
            .with_key(key.clone())
            .with_exposure_id(id),
    )?;
    ensure!(
        s.prepared.exposure.chunk_count() > 0,
        "harness: the exposure has no chunks"
    );
    // Same key, Exposure_ID and size, other bytes: its chunks authenticate for ours.
    let other = prepare(
        ctx.size,
        290,
        base()
            .with_key(key)
            .with_exposure_id(id)
            .dangerous_allow_key_reuse(),
    )?;
    let m = ProoflessFirst {
        other: Arc::clone(&other.prepared.exposure),
        done: false,
    };
    let r = honest_run_with(ctx, "pul029", &s, Box::new(m), RunOpts { proofs: true })?;
    let ok = expect_success(&r, &s.data)?;
    Ok(format!(
        "{ok}; the proof-less chunk with other content was dropped"
    ))
}

//# A puller SHOULD
//# instead find the wrong chunks and fetch them again
fn pul030(ctx: &PullerCtx) -> CaseResult {
    let key = rgtp_providers::cipher::random_key();
    let id = rgtp_providers::cipher::random_exposure_id();
    let s = prepare(
        ctx.size,
        30,
        base().with_key(key.clone()).with_exposure_id(id),
    )?;
    ensure!(
        s.prepared.exposure.chunk_count() > 1,
        "harness: the exposure has too few chunks"
    );
    // Same key, Exposure_ID and size, other bytes, sealed on purpose.
    let other = prepare(
        ctx.size,
        300,
        base()
            .with_key(key)
            .with_exposure_id(id)
            .dangerous_allow_key_reuse(),
    )?;
    let m = Forger {
        other: Arc::clone(&other.prepared.exposure),
        left: 8,
    };
    let r = honest_run(ctx, "pul030", &s, Box::new(m))?;
    expect_success(&r, &s.data)
}

/// Runs an honest exposer on `s` and a puller on its ticket (for other targets' use).
pub fn honest_exposer(
    s_data: &[u8],
    b: ExposerBuilder,
) -> Result<(adversary::Served, Prepared), String> {
    let prepared = b.expose(s_data).map_err(|e| e.to_string())?;
    let bind: SocketAddr = "127.0.0.1:0".parse().expect("literal");
    let srv = adversary::spawn(prepared.exposer(), bind, Box::new(adversary::Honest))
        .map_err(|e| e.to_string())?;
    Ok((srv, prepared))
}

/// An exposer that forges every tag (for other targets' use).
pub fn forging_exposer(s_data: &[u8]) -> Result<(adversary::Served, Prepared), String> {
    let prepared = base().expose(s_data).map_err(|e| e.to_string())?;
    let bind: SocketAddr = "127.0.0.1:0".parse().expect("literal");
    let srv = adversary::spawn(prepared.exposer(), bind, Box::new(ForgeTags))
        .map_err(|e| e.to_string())?;
    Ok((srv, prepared))
}

/// Serves `exposer` honestly on loopback.
pub fn serve_exposer(exposer: Exposer) -> std::io::Result<adversary::Served> {
    adversary::spawn(
        exposer,
        "127.0.0.1:0".parse().expect("literal"),
        Box::new(adversary::Honest),
    )
}

/// The puller catalogue.
pub static CASES: &[Case<PullerCtx>] = &[
    Case {
        id: "PUL-001",
        title: "honest exposer: exit 0, output byte-exact",
        section: "§6.5",
        level: Level::Must,
        run: pul001,
    },
    Case {
        id: "PUL-002",
        title: "Chunk_Data_With_Proof accepted (upstream suite)",
        section: "§3.6",
        level: Level::Must,
        run: pul002,
    },
    Case {
        id: "PUL-003",
        title: "drops (first Manifest, 1/3 of chunks) repaired",
        section: "§8.4",
        level: Level::Must,
        run: pul003,
    },
    Case {
        id: "PUL-004",
        title: "reordered chunks: exit 0, byte-exact",
        section: "§8.7",
        level: Level::Must,
        run: pul004,
    },
    Case {
        id: "PUL-005",
        title: "duplicated and replayed chunks never accepted twice",
        section: "§8.7",
        level: Level::Must,
        run: pul005,
    },
    Case {
        id: "PUL-006",
        title: "corrupted chunks discarded, re-requested",
        section: "§6.2",
        level: Level::Must,
        run: pul006,
    },
    Case {
        id: "PUL-007",
        title: "payload under another index fails (nonce binding)",
        section: "§6.2",
        level: Level::Must,
        run: pul007,
    },
    Case {
        id: "PUL-008",
        title: "packets with another Exposure_ID ignored",
        section: "§3.8",
        level: Level::Must,
        run: pul008,
    },
    Case {
        id: "PUL-009",
        title: "packets from another source address ignored",
        section: "§3.8",
        level: Level::Must,
        run: pul009,
    },
    Case {
        id: "PUL-010",
        title: "malformed and oversize datagrams dropped",
        section: "§2.13",
        level: Level::Must,
        run: pul010,
    },
    Case {
        id: "PUL-011",
        title: "empty exposure: Manifest only, empty output",
        section: "§6.3",
        level: Level::Must,
        run: pul011,
    },
    Case {
        id: "PUL-020",
        title: "forged tags only: non-zero, no output",
        section: "§6.2",
        level: Level::Must,
        run: pul020,
    },
    Case {
        id: "PUL-021",
        title: "forged proofs: non-zero, no output",
        section: "§6.5",
        level: Level::Must,
        run: pul021,
    },
    Case {
        id: "PUL-022",
        title: "wrong Manifest root: non-zero, no output",
        section: "§6.5",
        level: Level::Must,
        run: pul022,
    },
    Case {
        id: "PUL-023",
        title: "silent exposer: non-zero within the bound",
        section: "§8.1",
        level: Level::Must,
        run: pul023,
    },
    Case {
        id: "PUL-024",
        title: "only unacceptable Manifests: non-zero, no output",
        section: "§8.2",
        level: Level::Must,
        run: pul024,
    },
    Case {
        id: "PUL-025",
        title: "suite differing from the ticket pins refused",
        section: "§10.3",
        level: Level::Must,
        run: pul025,
    },
    Case {
        id: "PUL-026",
        title: "wrong key: non-zero, no output",
        section: "§6.2",
        level: Level::Must,
        run: pul026,
    },
    Case {
        id: "PUL-027",
        title: "unknown Exposure_ID (silence): non-zero",
        section: "§3.1",
        level: Level::Must,
        run: pul027,
    },
    //= spec/rgtp-v1.md#8.11
    //# An authentication failure MUST NOT end a pull by itself, whatever their number
    //# or rate.
    Case {
        id: "PUL-028",
        title:
            "1,000 AEAD-invalid and garbage datagrams before the first chunk: exit 0, byte-exact",
        section: "§8.11",
        level: Level::Must,
        run: pul028,
    },
    Case {
        id: "PUL-029",
        title: "proofs negotiated: an authentic chunk without proof dropped",
        section: "§8.11",
        level: Level::Must,
        run: pul029,
    },
    Case {
        id: "PUL-030",
        title: "forged authentic chunks found after the root check and fetched again",
        section: "§8.12",
        level: Level::Should,
        run: pul030,
    },
];
