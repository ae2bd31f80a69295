//! Exposer cases: any live exposer, black-box over UDP or raw Ethernet. The harness is a
//! puller that knows the ticket (so it can open chunks and check the root) and misbehaves
//! on purpose. Over raw Ethernet every probe has the one MAC address of the local
//! interface, so the case that needs a second puller address (EXP-042) and the one that
//! needs datagrams larger than a frame (EXP-056) say n/a.

use std::net::SocketAddr;
use std::time::Duration;

use rgtp::Ticket;
use rgtp_proto::merkle::{proof_depth, root_of, verify_proof};
use rgtp_proto::{CipherSuite, FecCodec, FecScheme, KeyMode, MerkleScheme, SuiteId};
use rgtp_providers::{AnyCipher, AnyFec, AnyHash};
use rgtp_wire::{
    Hash, Manifest, ManifestFlags, NakFlags, PullFlags, Repr, NAK_PARITY_BIT, PROOF_RUN,
};

use super::{fail, skip, Case, CaseResult, Level, OrFail, Stop};
use crate::ensure;
use crate::net::{self, Answers, Endpoint, Probe, MAX_UDP};

/// What the exposer cases run against.
pub struct ExposerCtx {
    /// Where the exposer is, and the link that reaches it.
    pub endpoint: Endpoint,
    /// The ticket (Exposure_ID, key, pins).
    pub ticket: Ticket,
    /// Silence window.
    pub quiet: Duration,
    /// Largest exposure (in chunks) EXP-022 pulls in full.
    pub full_pull_limit: u32,
    /// The Manifest from the setup handshake.
    pub manifest: Manifest,
    cipher: Option<AnyCipher>,
    hash: AnyHash,
    suite: Option<SuiteId>,
}

impl ExposerCtx {
    /// Handshakes once over UDP (to learn the Manifest) and prepares the suite.
    pub fn connect(
        addr: SocketAddr,
        ticket: Ticket,
        quiet: Duration,
    ) -> Result<ExposerCtx, String> {
        Self::connect_to(Endpoint::udp(addr), ticket, quiet)
    }

    /// Handshakes once through `endpoint` (to learn the Manifest) and prepares the suite.
    pub fn connect_to(
        endpoint: Endpoint,
        ticket: Ticket,
        quiet: Duration,
    ) -> Result<ExposerCtx, String> {
        let mut p = Probe::open(&endpoint, ticket.exposure_id, quiet).map_err(|e| e.to_string())?;
        let (manifest, _) = p.handshake(PullFlags::ADDR_VALIDATION)?;
        let suite = SuiteId::from_manifest(&manifest).ok();
        let cipher = suite.and_then(|s| {
            let key = s.key_mode.chunk_key(&ticket.key, &ticket.exposure_id);
            AnyCipher::new(s.cipher, &key)
        });
        let hash_id = suite.map_or(rgtp_proto::HashId::Blake2b256, |s| s.hash);
        let hash =
            AnyHash::new(hash_id).ok_or_else(|| format!("{} is not available", hash_id.name()))?;
        Ok(ExposerCtx {
            endpoint,
            ticket,
            quiet,
            full_pull_limit: 1 << 16,
            manifest,
            cipher,
            hash,
            suite,
        })
    }

    fn probe(&self) -> Result<Probe, Stop> {
        Probe::open(&self.endpoint, self.ticket.exposure_id, self.quiet)
            .or_fail("cannot open a probe")
    }

    /// A probe that handshook with ADDR_VALIDATION (holds a token if the exposer gives one).
    fn validated(&self) -> Result<Probe, Stop> {
        let mut p = self.probe()?;
        p.handshake(PullFlags::ADDR_VALIDATION)
            .map_err(Stop::Fail)?;
        Ok(p)
    }

    fn n(&self) -> u32 {
        self.manifest.chunk_count
    }

    fn need_chunks(&self) -> Result<u32, Stop> {
        if self.n() == 0 {
            return skip("the exposure has no chunks");
        }
        Ok(self.n())
    }

    fn plain_len(&self, i: u32) -> usize {
        rgtp_proto::exposer::plain_len(self.manifest.total_size, self.manifest.chunk_size, i)
    }

    /// Opens a sealed payload of chunk `i`.
    fn open(&self, i: u32, payload: &[u8]) -> Result<Vec<u8>, String> {
        let Some(c) = self.cipher.as_ref() else {
            return Err("the Manifest names no usable suite".into());
        };
        if payload.len() < 16 {
            return Err(format!(
                "chunk {i}: payload of {} bytes has no tag",
                payload.len()
            ));
        }
        let (body, tag) = payload.split_at(payload.len() - 16);
        let mut body = body.to_vec();
        let tag: [u8; 16] = tag.try_into().expect("16 bytes");
        c.open(i, &mut body, &tag).map_err(|_| {
            format!("chunk {i}: the AEAD tag does not verify under the ticket's key")
        })?;
        Ok(body)
    }
}

/// A chunk answer, parsed.
struct ChunkAnswer {
    index: u32,
    payload: Vec<u8>,
    proof: Option<Vec<Hash>>,
}

fn chunk_answer(ctx: &ExposerCtx, d: &[u8]) -> Result<ChunkAnswer, String> {
    let r =
        Repr::parse(d, MAX_UDP).map_err(|e| format!("unparsable answer ({} B): {e}", d.len()))?;
    ensure_id(ctx, &r)?;
    match r {
        Repr::ChunkData(c) => Ok(ChunkAnswer {
            index: c.chunk_index,
            payload: c.payload.to_vec(),
            proof: None,
        }),
        Repr::ChunkDataWithProof(c) => Ok(ChunkAnswer {
            index: c.chunk_index,
            payload: c.payload.to_vec(),
            proof: Some(c.siblings().copied().collect()),
        }),
        other => Err(format!("expected a chunk, got {:?}", other.packet_type())),
    }
}

fn ensure_id(ctx: &ExposerCtx, r: &Repr<'_>) -> Result<(), String> {
    if r.exposure_id() != &ctx.ticket.exposure_id {
        return Err(format!(
            "answer carries Exposure_ID {} instead of {}",
            hex::encode(r.exposure_id()),
            hex::encode(ctx.ticket.exposure_id)
        ));
    }
    Ok(())
}

/// Checks each answer is chunk `expected[i]`, of the right length, opening under the key.
fn check_chunks(ctx: &ExposerCtx, a: &Answers, expected: &[u32]) -> Result<Vec<ChunkAnswer>, Stop> {
    let got: Vec<ChunkAnswer> = a
        .datagrams
        .iter()
        .map(|d| chunk_answer(ctx, d))
        .collect::<Result<_, _>>()
        .map_err(Stop::Fail)?;
    let idx: Vec<u32> = got.iter().map(|c| c.index).collect();
    if idx != expected {
        return fail(format!(
            "served {} chunks {}; expected {} in order {}",
            idx.len(),
            short(&idx),
            expected.len(),
            short(expected)
        ));
    }
    for c in &got {
        let want = ctx.plain_len(c.index) + 16;
        ensure!(
            c.payload.len() == want,
            "chunk {}: payload {} B, §2.5 requires plain_len + 16 = {want} B",
            c.index,
            c.payload.len()
        );
    }
    Ok(got)
}

fn short(v: &[u32]) -> String {
    if v.len() <= 8 {
        format!("{v:?}")
    } else {
        format!("{:?}…(+{})", &v[..8], v.len() - 8)
    }
}

fn sample_indices(n: u32) -> Vec<u32> {
    let mut v = vec![0, n / 2, n - 1, 1 % n, n / 3];
    v.dedup();
    v
}

/// Sends `datagrams` from a validated probe: no answer within the quiet window, and the
/// exposer still answers a Pull_Request afterwards.
fn silent_and_alive(ctx: &ExposerCtx, p: &Probe, datagrams: &[Vec<u8>], what: &str) -> CaseResult {
    for d in datagrams {
        p.send(d);
    }
    let a = p.listen();
    ensure!(
        a.is_empty(),
        "answered {what}: {} datagram(s) ({})",
        a.len(),
        a.describe()
    );
    p.alive().map_err(Stop::Fail)?;
    let _ = ctx;
    Ok(format!(
        "{} datagram(s) of {what}: silent, still serving",
        datagrams.len()
    ))
}

/// A valid, servable NAK from a validated probe, to be mutated.
fn good_nak(ctx: &ExposerCtx, p: &Probe) -> Vec<u8> {
    let entries: Vec<u32> = if ctx.n() == 0 {
        vec![0]
    } else {
        vec![0, 1 % ctx.n()]
    };
    net::nak(ctx.ticket.exposure_id, &entries, NakFlags::empty(), p.token)
}

fn set_len(d: &mut [u8]) {
    let l = d.len() as u16;
    d[2..4].copy_from_slice(&l.to_be_bytes());
}

// ------------------------------------------------------------------ handshake

fn exp001(ctx: &ExposerCtx) -> CaseResult {
    let p = ctx.probe()?;
    p.send(&net::pull_request(
        ctx.ticket.exposure_id,
        PullFlags::empty(),
        1,
        1,
    ));
    let a = p.listen();
    ensure!(
        a.len() == 1,
        "expected exactly one answer, got {} ({})",
        a.len(),
        a.describe()
    );
    let d = &a.datagrams[0];
    match Repr::parse(d, MAX_UDP) {
        Ok(Repr::Manifest(m)) => {
            ensure!(
                d.len() == 72,
                "Manifest is {} B; without PullFlags bit 2 it is 72",
                d.len()
            );
            ensure!(
                m.token.is_none(),
                "Manifest carries a token nobody asked for"
            );
            Ok("one 72-byte Manifest".into())
        }
        Ok(r) => fail(format!("answered with {:?}", r.packet_type())),
        Err(e) => fail(format!("answer does not parse: {e}")),
    }
}

fn exp002(ctx: &ExposerCtx) -> CaseResult {
    let p = ctx.probe()?;
    p.send(&net::pull_request(
        ctx.ticket.exposure_id,
        PullFlags::ADDR_VALIDATION,
        1,
        1,
    ));
    let a = p.listen();
    ensure!(
        a.len() == 1,
        "expected exactly one answer, got {} ({})",
        a.len(),
        a.describe()
    );
    let d = &a.datagrams[0];
    let Ok(Repr::Manifest(m)) = Repr::parse(d, MAX_UDP) else {
        return fail("the answer is not a valid Manifest");
    };
    ensure!(
        d.len() == 88 && m.flags.contains(ManifestFlags::TOKEN) && m.token.is_some(),
        "Manifest is {} B without a token: the exposer does not implement address validation",
        d.len()
    );
    Ok("88-byte Manifest with TOKEN".into())
}

fn exp003(ctx: &ExposerCtx) -> CaseResult {
    let p = ctx.probe()?;
    p.send(&net::pull_request(
        ctx.ticket.exposure_id,
        PullFlags::empty(),
        1,
        1,
    ));
    let a = p.listen();
    let d = a.datagrams.first().ok_or(Stop::Fail("no answer".into()))?;
    ensure!(
        d.len() >= 4 && d[0] == 1,
        "Version byte is {} (MUST be 1)",
        d.first().copied().unwrap_or(0)
    );
    ensure!(
        usize::from(u16::from_be_bytes([d[2], d[3]])) == d.len(),
        "Length field {} != datagram size {}",
        u16::from_be_bytes([d[2], d[3]]),
        d.len()
    );
    let r =
        Repr::parse(d, MAX_UDP).map_err(|e| Stop::Fail(format!("Manifest does not parse: {e}")))?;
    ensure_id(ctx, &r).map_err(Stop::Fail)?;
    Ok("Version 1, Length = size, Exposure_ID = ticket's".into())
}

fn exp062(ctx: &ExposerCtx) -> CaseResult {
    let p = ctx.probe()?;
    p.send(&net::pull_request(
        ctx.ticket.exposure_id,
        PullFlags::RATE_CAP,
        1,
        1,
    ));
    let a = p.listen();
    ensure!(
        a.len() == 1,
        "expected exactly one answer, got {} ({})",
        a.len(),
        a.describe()
    );
    let d = &a.datagrams[0];
    let m = match Repr::parse(d, MAX_UDP) {
        Ok(Repr::Manifest(m)) => m,
        Ok(r) => return fail(format!("answered with {:?}", r.packet_type())),
        Err(e) => return fail(format!("answer does not parse: {e}")),
    };
    match m.rate_cap {
        None => {
            ensure!(d.len() == 72, "Manifest is {} B without a cap", d.len());
            Ok("plain 72-byte Manifest (no cap)".into())
        }
        Some(cap) => {
            ensure!(
                d.len() == 80,
                "Manifest with a cap is {} B, not 80",
                d.len()
            );
            ensure!(cap >= 1, "Rate_Cap 0: no puller can keep to it");
            Ok(format!("80-byte Manifest, Rate_Cap {cap} B/s"))
        }
    }
}

/// The Manifest a fresh probe's handshake with `flags` draws, and the probe.
fn manifest_for(ctx: &ExposerCtx, flags: PullFlags) -> Result<(Manifest, Probe), Stop> {
    let mut p = ctx.probe()?;
    let (m, _) = p.handshake(flags).map_err(Stop::Fail)?;
    Ok((m, p))
}

/// What a Manifest describes, without what depends on the Pull_Request it answers.
fn exposure_part(mut m: Manifest) -> Manifest {
    m.flags -= ManifestFlags::TOKEN | ManifestFlags::PROOF_RUNS | ManifestFlags::RATE_CAP;
    m.token = None;
    m.rate_cap = None;
    m
}

//= spec/rgtp-v1.md#3.6
//# An exposer that honours the NAK bit below answers such a Pull_Request with
//# ManifestFlags bit 8 (PROOF_RUNS) set, and never sets it otherwise
fn exp063(ctx: &ExposerCtx) -> CaseResult {
    let asks = PullFlags::ADDR_VALIDATION | PullFlags::PROOFS;
    for (what, m) in [
        ("the setup handshake's Manifest", ctx.manifest),
        (
            "a Pull_Request without PROOF_RUNS",
            manifest_for(ctx, asks)?.0,
        ),
    ] {
        ensure!(
            !m.flags.contains(ManifestFlags::PROOF_RUNS),
            "{what} was answered with ManifestFlags PROOF_RUNS ({:#06x}); it is sent only to a puller that set PullFlags PROOF_RUNS",
            m.flags.bits()
        );
    }
    let (m, _) = manifest_for(ctx, asks | PullFlags::PROOF_RUNS)?;
    ensure!(
        exposure_part(m) == exposure_part(ctx.manifest),
        "the Manifest answering PullFlags PROOF_RUNS describes another exposure (flags {:#06x})",
        m.flags.bits()
    );
    if m.flags.contains(ManifestFlags::PROOF_RUNS) {
        Ok("PROOF_RUNS only in the Manifest answering PullFlags PROOF_RUNS: the extension is supported".into())
    } else {
        Ok(
            "no PROOF_RUNS in any Manifest, asked for or not: the extension is not supported"
                .into(),
        )
    }
}

/// Chunk `index`'s `proof` (of an exposure of `n` chunks) has the depth §6.4
/// requires and folds from the leaf of `plain` to the Manifest's root.
fn proof_holds(
    ctx: &ExposerCtx,
    n: u32,
    index: u32,
    plain: &[u8],
    proof: &[Hash],
) -> Result<(), Stop> {
    let depth = proof_depth(n);
    ensure!(
        proof.len() == depth,
        "chunk {index}: proof depth {}, §6.4 requires ceil(log2 {n}) = {depth}",
        proof.len()
    );
    let leaf = ctx.hash.leaf(plain);
    ensure!(
        verify_proof(
            &ctx.hash,
            &leaf,
            index,
            n,
            proof.iter(),
            &ctx.manifest.merkle_root
        ),
        "chunk {index}: the proof does not verify against the Manifest's root"
    );
    Ok(())
}

/// A chunk entry of a NAK with PROOF_RUNS that is answered with its proof.
fn run_head(i: u32) -> bool {
    i % PROOF_RUN == 0
}

//= spec/rgtp-v1.md#3.6
//# Of the chunk entries of a NAK with PROOF_RUNS, only
//# those whose index is a multiple of 64 are answered with
//# Chunk_Data_With_Proof.
fn exp064(ctx: &ExposerCtx) -> CaseResult {
    let n = ctx.need_chunks()?;
    let (m, p) = manifest_for(
        ctx,
        PullFlags::ADDR_VALIDATION | PullFlags::PROOFS | PullFlags::PROOF_RUNS,
    )?;
    if !m.flags.contains(ManifestFlags::PROOF_RUNS) {
        return skip(
            "n/a: the Manifest answering PullFlags PROOF_RUNS has no ManifestFlags PROOF_RUNS \
             (the extension is not supported)",
        );
    }
    let depth = proof_depth(n);
    // A run head comes with its proof, which must fit the link (§2.6, §9.1): ask only
    // for the heads that do. The other chunks come without one and always fit.
    let max = ctx.endpoint.max_datagram();
    let fits = |i: u32| 25 + 32 * depth + ctx.plain_len(i) + 16 <= max;
    let mut wanted: Vec<u32> = [0, 1, PROOF_RUN - 1, PROOF_RUN, PROOF_RUN + 1]
        .into_iter()
        .filter(|&i| i < n)
        .collect();
    if !wanted.contains(&(n - 1)) {
        wanted.push(n - 1);
    }
    let entries: Vec<u32> = wanted
        .iter()
        .copied()
        .filter(|&i| !run_head(i) || fits(i))
        .collect();
    let left_out = wanted.len() - entries.len();
    if entries.is_empty() {
        return skip(format!(
            "n/a: chunk 0 with its depth-{depth} proof is {} B, more than the link carries ({max} B)",
            25 + 32 * depth + ctx.plain_len(0) + 16
        ));
    }
    let a = p.request(
        &entries,
        NakFlags::PROOFS | NakFlags::PROOF_RUNS,
        entries.len(),
    );
    let got = check_chunks(ctx, &a, &entries)?;
    let mut heads = 0usize;
    for c in &got {
        let plain = ctx.open(c.index, &c.payload).map_err(Stop::Fail)?;
        match (&c.proof, run_head(c.index)) {
            (Some(proof), true) => {
                proof_holds(ctx, n, c.index, &plain, proof)?;
                heads += 1;
            }
            (None, true) => {
                return fail(format!(
                    "chunk {} (a multiple of {PROOF_RUN}) of a NAK with PROOFS and PROOF_RUNS came without its proof",
                    c.index
                ))
            }
            (Some(_), false) => {
                return fail(format!(
                    "chunk {} (not a multiple of {PROOF_RUN}) of a NAK with PROOF_RUNS came with a proof; only run heads carry one",
                    c.index
                ))
            }
            (None, false) => {}
        }
    }
    Ok(format!(
        "chunks {entries:?} with PROOFS|PROOF_RUNS: {heads} run head(s) with a depth-{depth} proof that verifies, {} without, all open{}",
        got.len() - heads,
        if left_out > 0 {
            format!(
                "; {left_out} run head(s) left out: with a proof they exceed the link's {max} B"
            )
        } else {
            String::new()
        }
    ))
}

fn exp004(ctx: &ExposerCtx) -> CaseResult {
    let m = &ctx.manifest;
    ensure!(
        m.flags.bits() & 0xfe00 == 0,
        "undefined flag bits set: {:#06x}",
        m.flags.bits()
    );
    let suite = SuiteId::from_manifest(m)
        .map_err(|e| Stop::Fail(format!("suite not well-formed: {e:?}")))?;
    if let Some(c) = ctx.ticket.cipher {
        ensure!(
            c == suite.cipher,
            "flags announce {} but the ticket pins {}",
            suite.cipher.name(),
            c.name()
        );
    }
    if let Some(h) = ctx.ticket.hash {
        ensure!(
            h == suite.hash,
            "flags announce {} but the ticket pins {}",
            suite.hash.name(),
            h.name()
        );
    }
    Ok(format!(
        "flags {:#06x}: {} + {}, FEC {:?}({}, {}), proofs {}",
        m.flags.bits(),
        suite.cipher.name(),
        suite.hash.name(),
        suite.fec.scheme,
        suite.fec.n,
        suite.fec.k,
        suite.proofs
    ))
}

fn exp005(ctx: &ExposerCtx) -> CaseResult {
    let m = &ctx.manifest;
    if m.total_size == 0 {
        ensure!(
            m.chunk_count == 0,
            "Total_Size 0 with Chunk_Count {}",
            m.chunk_count
        );
        return Ok("empty exposure, 0 chunks".into());
    }
    ensure!(m.chunk_size >= 1, "Chunk_Size 0");
    // The largest chunk payload the link carries: a UDP payload, or a frame less the
    // Chunk_Data header (and the proof, when every chunk carries one).
    let max_payload = match &ctx.endpoint {
        Endpoint::Udp(_) => MAX_UDP,
        Endpoint::Eth(e) => {
            let proof = if m.flags.contains(ManifestFlags::PROOFS) {
                1 + 32 * proof_depth(m.chunk_count)
            } else {
                0
            };
            e.mtu.saturating_sub(24 + proof)
        }
    };
    ensure!(
        m.chunk_size as usize + 16 <= max_payload,
        "Chunk_Size {} + 16 exceeds the largest payload the link carries ({max_payload} B)",
        m.chunk_size
    );
    let want = m.total_size.div_ceil(u64::from(m.chunk_size));
    ensure!(
        u64::from(m.chunk_count) == want,
        "Chunk_Count {} != ceil({} / {}) = {want}",
        m.chunk_count,
        m.total_size,
        m.chunk_size
    );
    Ok(format!(
        "{} B in {} chunks of {}",
        m.total_size, m.chunk_count, m.chunk_size
    ))
}

fn exp006(ctx: &ExposerCtx) -> CaseResult {
    let p = ctx.probe()?;
    let pr = net::pull_request(
        ctx.ticket.exposure_id,
        PullFlags::ADDR_VALIDATION | PullFlags::PROOFS | PullFlags::FEC,
        1,
        1,
    );
    for _ in 0..3 {
        p.send(&pr);
    }
    // Everything until silence: an exposer that pushes unasked chunks after its Manifest
    // is caught here, by the case its datagrams belong to.
    let a = p.drain();
    let mut others = Vec::new();
    for d in &a.datagrams {
        match Repr::parse(d, MAX_UDP) {
            Ok(Repr::Manifest(_)) => {}
            Ok(r) => others.push(format!("{:?}", r.packet_type())),
            Err(e) => others.push(format!("unparsable ({e})")),
        }
    }
    if !others.is_empty() {
        let bytes: usize = a.bytes();
        let mut kinds = others.clone();
        kinds.dedup();
        return fail(format!(
            "3 Pull_Requests (108 B) drew {} datagrams, {bytes} B: {} Manifest(s) and {} unrequested ({}{})",
            a.len(),
            a.len() - others.len(),
            others.len(),
            kinds.iter().take(4).cloned().collect::<Vec<_>>().join(", "),
            if kinds.len() > 4 { ", …" } else { "" }
        ));
    }
    ensure!(a.len() == 3, "3 Pull_Requests got {} Manifests", a.len());
    Ok("3 Pull_Requests → 3 Manifests, nothing else".into())
}

fn exp007(ctx: &ExposerCtx) -> CaseResult {
    let mut p = ctx.probe()?;
    let (a, _) = p
        .handshake(PullFlags::ADDR_VALIDATION)
        .map_err(Stop::Fail)?;
    let (b, _) = p
        .handshake(PullFlags::ADDR_VALIDATION)
        .map_err(Stop::Fail)?;
    let strip = |mut m: Manifest| {
        m.flags -= ManifestFlags::TOKEN;
        m.token = None;
        m
    };
    ensure!(
        strip(a) == strip(b),
        "a repeated Pull_Request got a different Manifest"
    );
    ensure!(
        strip(a) == strip(ctx.manifest),
        "another puller address got a different Manifest"
    );
    let mut d = String::from("repeated Manifests describe the same exposure");
    if !p.unrequested.is_empty() {
        // Not this case's to judge (EXP-006's), but worth a word.
        d += &format!(
            "; {} unrequested datagram(s) after them drained ({})",
            p.unrequested.len(),
            p.unrequested.describe()
        );
    }
    Ok(d)
}

fn exp008(ctx: &ExposerCtx) -> CaseResult {
    let p = ctx.probe()?;
    let mut id = ctx.ticket.exposure_id;
    id[0] ^= 0x5a;
    id[15] ^= 0xa5;
    p.send(&net::pull_request(id, PullFlags::ADDR_VALIDATION, 1, 1));
    p.send(&net::pull_request([0; 16], PullFlags::empty(), 1, 1));
    let a = p.listen();
    ensure!(
        a.is_empty(),
        "answered a Pull_Request for an unknown Exposure_ID ({})",
        a.describe()
    );
    p.alive().map_err(Stop::Fail)?;
    Ok("silent for unknown Exposure_IDs".into())
}

// ------------------------------------------------------------------ versions

fn version_answered(ctx: &ExposerCtx, vmin: u16, vmax: u16) -> Result<Answers, Stop> {
    let p = ctx.probe()?;
    p.send(&net::pull_request(
        ctx.ticket.exposure_id,
        PullFlags::ADDR_VALIDATION,
        vmin,
        vmax,
    ));
    Ok(p.listen())
}

fn exp010(ctx: &ExposerCtx) -> CaseResult {
    let a = version_answered(ctx, 0, 7)?;
    ensure!(
        a.len() == 1,
        "range [0, 7] includes 1 but got {} answers",
        a.len()
    );
    let d = &a.datagrams[0];
    ensure!(
        matches!(Repr::parse(d, MAX_UDP), Ok(Repr::Manifest(_))) && d[0] == 1,
        "answer is not a version-1 Manifest"
    );
    Ok("[0, 7] answered with a version-1 Manifest".into())
}

fn version_silent(ctx: &ExposerCtx, vmin: u16, vmax: u16) -> CaseResult {
    let a = version_answered(ctx, vmin, vmax)?;
    ensure!(
        a.is_empty(),
        "answered a Pull_Request with versions [{vmin}, {vmax}] ({})",
        a.describe()
    );
    Ok(format!("[{vmin}, {vmax}]: silent"))
}

fn exp011(ctx: &ExposerCtx) -> CaseResult {
    version_silent(ctx, 2, 9)
}

fn exp012(ctx: &ExposerCtx) -> CaseResult {
    version_silent(ctx, 0, 0)
}

fn exp013(ctx: &ExposerCtx) -> CaseResult {
    version_silent(ctx, 1, 0)?;
    version_silent(ctx, 3, 1)
}

fn header_version(ctx: &ExposerCtx, v: u8) -> CaseResult {
    let p = ctx.validated()?;
    let mut pr = net::pull_request(ctx.ticket.exposure_id, PullFlags::ADDR_VALIDATION, 1, 1);
    pr[0] = v;
    let mut nak = good_nak(ctx, &p);
    nak[0] = v;
    silent_and_alive(ctx, &p, &[pr, nak], &format!("header Version {v}"))
}

fn exp014(ctx: &ExposerCtx) -> CaseResult {
    header_version(ctx, 2)
}

fn exp015(ctx: &ExposerCtx) -> CaseResult {
    header_version(ctx, 0)
}

// ------------------------------------------------------------------ serving

fn exp020(ctx: &ExposerCtx) -> CaseResult {
    let n = ctx.need_chunks()?;
    let p = ctx.validated()?;
    let entries: Vec<u32> = (0..n.min(64)).collect();
    let a = p.request(&entries, NakFlags::empty(), entries.len());
    check_chunks(ctx, &a, &entries)?;
    Ok(format!(
        "{} entries → {} chunks in order, lengths per §2.5",
        entries.len(),
        a.len()
    ))
}

fn exp021(ctx: &ExposerCtx) -> CaseResult {
    let n = ctx.need_chunks()?;
    let p = ctx.validated()?;
    let entries = sample_indices(n);
    let a = p.request(&entries, NakFlags::empty(), entries.len());
    let got = check_chunks(ctx, &a, &entries)?;
    for c in &got {
        ctx.open(c.index, &c.payload).map_err(Stop::Fail)?;
    }
    Ok(format!("{} chunks open under nonce(index)", got.len()))
}

fn exp022(ctx: &ExposerCtx) -> CaseResult {
    let n = ctx.n();
    if n > ctx.full_pull_limit {
        return skip(format!(
            "{n} chunks exceed the full-pull limit {}",
            ctx.full_pull_limit
        ));
    }
    if ctx.cipher.is_none() {
        return fail("the Manifest names no usable suite");
    }
    let mut p = ctx.validated()?;
    let mut leaves: Vec<Option<Hash>> = vec![None; n as usize];
    for _round in 0..6 {
        let missing: Vec<u32> = (0..n).filter(|&i| leaves[i as usize].is_none()).collect();
        if missing.is_empty() {
            break;
        }
        let _ = p.handshake(PullFlags::ADDR_VALIDATION);
        for batch in missing.chunks(64) {
            let a = p.request(batch, NakFlags::empty(), batch.len());
            for d in &a.datagrams {
                let c = chunk_answer(ctx, d).map_err(Stop::Fail)?;
                ensure!(c.index < n, "served chunk {} of {n}", c.index);
                let plain = ctx.open(c.index, &c.payload).map_err(Stop::Fail)?;
                leaves[c.index as usize] = Some(ctx.hash.leaf(&plain));
            }
        }
    }
    let got = leaves.iter().filter(|l| l.is_some()).count();
    ensure!(
        got == n as usize,
        "only {got} of {n} chunks could be pulled"
    );
    let leaves: Vec<Hash> = leaves.into_iter().map(|l| l.expect("all")).collect();
    let root = root_of(&ctx.hash, &leaves);
    ensure!(
        root == ctx.manifest.merkle_root,
        "root over the {n} served chunks is {}…, the Manifest says {}…",
        hex::encode(&root[..8]),
        hex::encode(&ctx.manifest.merkle_root[..8])
    );
    Ok(format!("all {n} chunks pulled; root matches the Manifest"))
}

fn exp023(ctx: &ExposerCtx) -> CaseResult {
    let n = ctx.need_chunks()?;
    let depth = proof_depth(n);
    // A chunk with its proof must fit the link (§2.6, §9.1): ask only for those that do.
    let max = ctx.endpoint.max_datagram();
    let fits = |i: u32| 25 + 32 * depth + ctx.plain_len(i) + 16 <= max;
    let sample = sample_indices(n);
    let entries: Vec<u32> = sample.iter().copied().filter(|&i| fits(i)).collect();
    if entries.is_empty() {
        return skip(format!(
            "n/a: a chunk of {} B with its depth-{depth} proof is {} B, more than the link carries ({max} B)",
            ctx.manifest.chunk_size,
            25 + 32 * depth + ctx.plain_len(0) + 16
        ));
    }
    let left_out = sample.len() - entries.len();
    let p = ctx.validated()?;
    let a = p.request(&entries, NakFlags::PROOFS, entries.len());
    let got = check_chunks(ctx, &a, &entries)?;
    for c in &got {
        let Some(proof) = &c.proof else {
            return fail(format!(
                "chunk {} of a NAK with PROOFS came without a proof",
                c.index
            ));
        };
        let plain = ctx.open(c.index, &c.payload).map_err(Stop::Fail)?;
        proof_holds(ctx, n, c.index, &plain, proof)?;
    }
    Ok(format!(
        "{} proofs of depth {depth} verify against the root{}",
        got.len(),
        if left_out > 0 {
            format!(
                "; {left_out} sampled chunks left out: with a proof they exceed the link's {max} B"
            )
        } else {
            String::new()
        }
    ))
}

fn exp024(ctx: &ExposerCtx) -> CaseResult {
    let n = ctx.need_chunks()?;
    let p = ctx.validated()?;
    let a = p.request(&[0, n - 1], NakFlags::empty(), 2);
    let got = check_chunks(ctx, &a, &[0, n - 1])?;
    let flagged = ctx.manifest.flags.contains(ManifestFlags::PROOFS);
    for c in &got {
        ensure!(
            c.proof.is_some() == flagged,
            "chunk {} sent {} a proof although the Manifest PROOFS flag is {}",
            c.index,
            if flagged { "without" } else { "with" },
            if flagged { "set" } else { "clear" }
        );
    }
    Ok(format!(
        "plain NAK answered with {} (PROOFS flag {})",
        if flagged {
            "Chunk_Data_With_Proof"
        } else {
            "Chunk_Data"
        },
        if flagged { "set" } else { "clear" }
    ))
}

fn exp025(ctx: &ExposerCtx) -> CaseResult {
    let n = ctx.need_chunks()?;
    let p = ctx.validated()?;
    let entries = vec![2 % n, 0, 2 % n, 1 % n, n - 1, 0];
    let a = p.request(&entries, NakFlags::empty(), entries.len() + 1);
    check_chunks(ctx, &a, &entries)?;
    Ok(format!(
        "{entries:?} served in list order, duplicates included"
    ))
}

fn exp026(ctx: &ExposerCtx) -> CaseResult {
    let n = ctx.need_chunks()?;
    let p = ctx.validated()?;
    let entries: Vec<u32> = (0..300u32).map(|i| (i * 7) % n).collect();
    let a = p.request(&entries, NakFlags::empty(), usize::MAX);
    check_chunks(ctx, &a, &entries[..256])?;
    Ok("300 entries → exactly the first 256 served".into())
}

fn exp027(ctx: &ExposerCtx) -> CaseResult {
    let n = ctx.need_chunks()?;
    let p = ctx.validated()?;
    let fec = ctx.suite.is_some_and(|s| s.fec.scheme != FecScheme::None);
    let mut entries = vec![0, n, n.saturating_add(5), 1 % n, !NAK_PARITY_BIT];
    if !fec && n < NAK_PARITY_BIT {
        entries.push(NAK_PARITY_BIT); // a chunk index without FEC: out of range
    }
    entries.push(n - 1);
    let expected: Vec<u32> = entries.iter().copied().filter(|&e| e < n).collect();
    let a = p.request(&entries, NakFlags::empty(), expected.len() + 1);
    check_chunks(ctx, &a, &expected)?;
    Ok(format!(
        "{} entries, {} in range: only those served",
        entries.len(),
        expected.len()
    ))
}

fn fec_params(ctx: &ExposerCtx) -> Result<rgtp_proto::FecParams, Stop> {
    match ctx.suite.map(|s| s.fec) {
        Some(f) if f.scheme != FecScheme::None => Ok(f),
        _ => skip("the exposure has no FEC"),
    }
}

fn parity_entry(block: u32, p: u8) -> u32 {
    NAK_PARITY_BIT | (block << 8) | u32::from(p)
}

fn exp028(ctx: &ExposerCtx) -> CaseResult {
    let n = ctx.need_chunks()?;
    let f = fec_params(ctx)?;
    let blocks = n.div_ceil(u32::from(f.k));
    let m = f.parity() as u8;
    let p = ctx.validated()?;
    let last = blocks - 1;
    let mut entries = vec![
        parity_entry(0, 0),
        parity_entry(blocks, 0),
        parity_entry(last, m - 1),
    ];
    entries.push(parity_entry(0, m)); // p >= n - k: out of range
    entries.push(parity_entry(last, 0));
    let expected = [(0u32, 0u8), (last, m - 1), (last, 0)];
    let a = p.request(&entries, NakFlags::empty(), expected.len() + 1);
    ensure!(
        a.len() == expected.len(),
        "expected {} parity answers, got {} ({})",
        expected.len(),
        a.len(),
        a.describe()
    );
    let shard = ctx.manifest.chunk_size as usize + 16;
    for (d, &(b, pi)) in a.datagrams.iter().zip(&expected) {
        let r = Repr::parse(d, MAX_UDP).map_err(|e| Stop::Fail(format!("parity answer: {e}")))?;
        ensure_id(ctx, &r).map_err(Stop::Fail)?;
        let Repr::FecParity(fp) = r else {
            return fail(format!(
                "a parity entry was answered with {:?}",
                r.packet_type()
            ));
        };
        ensure!(
            fp.block_index == b && fp.parity_index == pi,
            "answered ({}, {}) for entry ({b}, {pi})",
            fp.block_index,
            fp.parity_index
        );
        ensure!(
            fp.fec_n == f.n && fp.fec_k == f.k,
            "FEC_N/FEC_K {}/{} differ from the Manifest's",
            fp.fec_n,
            fp.fec_k
        );
        ensure!(
            fp.payload.len() == shard,
            "parity payload {} B, §2.7 requires Chunk_Size + 16 = {shard}",
            fp.payload.len()
        );
        ensure!(
            d[27] == 0,
            "Reserved byte is {:#04x}, MUST be 0 (§2.11)",
            d[27]
        );
        ensure!(d.len() == 28 + shard, "FEC_Parity is {} B", d.len());
    }
    Ok(format!(
        "{blocks} blocks, {m} parity each: valid entries served in order, out-of-range skipped"
    ))
}

fn exp029(ctx: &ExposerCtx) -> CaseResult {
    let n = ctx.need_chunks()?;
    let f = fec_params(ctx)?;
    let codec = AnyFec::new(f).map_err(|e| Stop::Fail(format!("FEC {:?}: {e}", f)))?;
    let k = u32::from(f.k);
    let shard = ctx.manifest.chunk_size as usize + 16;
    let p = ctx.validated()?;
    // Block 0 without chunk 0: every other data shard and all parity.
    let data_idx: Vec<u32> = (1..k.min(n)).collect();
    let mut entries = data_idx.clone();
    let m = f.parity() as u8;
    entries.extend((0..m).map(|pi| parity_entry(0, pi)));
    let a = p.request(&entries, NakFlags::empty(), entries.len());
    ensure!(
        a.len() == entries.len(),
        "asked {} shards, got {}",
        entries.len(),
        a.len()
    );
    let mut shards: Vec<Option<Vec<u8>>> = vec![None; usize::from(f.n)];
    for j in n.min(k)..k {
        shards[j as usize] = Some(vec![0u8; shard]); // virtual zero shards
    }
    for d in &a.datagrams {
        match Repr::parse(d, MAX_UDP) {
            Ok(Repr::ChunkData(c)) if c.chunk_index < k => {
                let mut s = c.payload.to_vec();
                s.resize(shard, 0);
                shards[c.chunk_index as usize] = Some(s);
            }
            Ok(Repr::ChunkDataWithProof(c)) if c.chunk_index < k => {
                let mut s = c.payload.to_vec();
                s.resize(shard, 0);
                shards[c.chunk_index as usize] = Some(s);
            }
            Ok(Repr::FecParity(fp)) if fp.block_index == 0 && fp.parity_index < m => {
                shards[usize::from(f.k) + usize::from(fp.parity_index)] = Some(fp.payload.to_vec());
            }
            Ok(r) => return fail(format!("unexpected answer {:?}", r.packet_type())),
            Err(e) => return fail(format!("unparsable answer: {e}")),
        }
    }
    codec
        .reconstruct(&mut shards)
        .map_err(|e| Stop::Fail(format!("decoding block 0 failed: {e}")))?;
    let mut rebuilt = shards[0].clone().expect("decoded");
    rebuilt.truncate(ctx.plain_len(0) + 16);
    let plain = ctx
        .open(0, &rebuilt)
        .map_err(|e| Stop::Fail(format!("rebuilt chunk 0: {e}")))?;
    let b = p.request(&[0], NakFlags::empty(), 1);
    let direct = check_chunks(ctx, &b, &[0])?;
    let direct = ctx.open(0, &direct[0].payload).map_err(Stop::Fail)?;
    ensure!(
        plain == direct,
        "chunk 0 rebuilt from parity differs from the served chunk 0"
    );
    Ok(format!(
        "{:?}({}, {}): chunk 0 rebuilt from parity, authenticates",
        f.scheme, f.n, f.k
    ))
}

fn exp030(ctx: &ExposerCtx) -> CaseResult {
    let p = ctx.validated()?;
    let d: Vec<Vec<u8>> = (0..5)
        .map(|_| net::rate_report(ctx.ticket.exposure_id))
        .collect();
    silent_and_alive(ctx, &p, &d, "Rate_Reports")
}

fn exp031(ctx: &ExposerCtx) -> CaseResult {
    let p = ctx.validated()?;
    let d: Vec<Vec<u8>> = (0..5)
        .map(|_| net::keepalive(ctx.ticket.exposure_id))
        .collect();
    silent_and_alive(ctx, &p, &d, "Keepalives")
}

fn exp032(ctx: &ExposerCtx) -> CaseResult {
    let p = ctx.validated()?;
    let id = ctx.ticket.exposure_id;
    let payload = vec![0x42u8; 64];
    let proof = vec![0u8; 32];
    let d = vec![
        net::emit(&Repr::Manifest(ctx.manifest)),
        net::emit(&Repr::ChunkData(rgtp_wire::ChunkData {
            exposure_id: id,
            chunk_index: 0,
            payload: &payload,
        })),
        net::emit(&Repr::ChunkDataWithProof(rgtp_wire::ChunkDataWithProof {
            exposure_id: id,
            chunk_index: 0,
            proof: &proof,
            payload: &payload,
        })),
        net::emit(&Repr::FecParity(rgtp_wire::FecParity {
            exposure_id: id,
            block_index: 0,
            parity_index: 0,
            fec_n: 6,
            fec_k: 4,
            payload: &payload,
        })),
    ];
    silent_and_alive(ctx, &p, &d, "exposer-to-puller packet types 2-5")
}

// ------------------------------------------------------------------ amplification

/// Sends `d` from `p` and returns the bytes answered.
fn answered_bytes(p: &Probe, d: &[u8]) -> usize {
    p.send(d);
    p.listen().bytes()
}

fn bounded(p: &Probe, d: &[u8], what: &str) -> Result<String, Stop> {
    let got = answered_bytes(p, d);
    ensure!(
        got <= 3 * d.len(),
        "{what} of {} B from an unvalidated address was answered with {got} B > 3 × {} = {} B",
        d.len(),
        d.len(),
        3 * d.len()
    );
    Ok(format!("{what} {} B → {got} B", d.len()))
}

fn entries_for(n: u32, count: usize) -> Vec<u32> {
    (0..count as u32).map(|i| i % n).collect()
}

fn exp040(ctx: &ExposerCtx) -> CaseResult {
    let n = ctx.need_chunks()?;
    let p = ctx.probe()?;
    let id = ctx.ticket.exposure_id;
    let mut notes = Vec::new();
    for count in [1usize, 64, 256] {
        let d = net::nak(id, &entries_for(n, count), NakFlags::empty(), None);
        notes.push(bounded(&p, &d, &format!("{count}-entry NAK"))?);
    }
    let d = net::nak(id, &entries_for(n, 64), NakFlags::PROOFS, None);
    notes.push(bounded(&p, &d, "64-entry NAK with PROOFS")?);
    Ok(notes.join("; "))
}

fn exp041(ctx: &ExposerCtx) -> CaseResult {
    let n = ctx.need_chunks()?;
    let p = ctx.probe()?;
    let forged: [u8; 16] = rand::random();
    let d = net::nak(
        ctx.ticket.exposure_id,
        &entries_for(n, 64),
        NakFlags::empty(),
        Some(forged),
    );
    bounded(&p, &d, "64-entry NAK with a forged token")
}

fn exp042(ctx: &ExposerCtx) -> CaseResult {
    if !ctx.endpoint.distinct_addresses() {
        return skip(
            "n/a over raw Ethernet: needs a second puller address, and the harness has one MAC",
        );
    }
    let n = ctx.need_chunks()?;
    let a = ctx.validated()?;
    let Some(token) = a.token else {
        return skip("the exposer issues no tokens");
    };
    // A token vouches for an IP address, not a port (spec §5.3): the other puller
    // needs another address. On IPv4 loopback that is 127.0.0.2 (or .3).
    let (Some(mine), Endpoint::Udp(to)) = (a.local_addr(), &ctx.endpoint) else {
        return skip("needs a UDP exposer");
    };
    let other =
        match (mine.ip(), to.ip()) {
            (std::net::IpAddr::V4(m), std::net::IpAddr::V4(t)) if t.is_loopback() => {
                let o = if m == std::net::Ipv4Addr::new(127, 0, 0, 2) {
                    3
                } else {
                    2
                };
                std::net::IpAddr::V4(std::net::Ipv4Addr::new(127, 0, 0, o))
            }
            _ => return skip(
                "n/a: needs a second local address towards the exposer (run it on IPv4 loopback)",
            ),
        };
    let b = Probe::new_from(other, *to, ctx.ticket.exposure_id, ctx.quiet)
        .or_fail("cannot open a probe from a second address")?;
    let d = net::nak(
        ctx.ticket.exposure_id,
        &entries_for(n, 64),
        NakFlags::empty(),
        Some(token),
    );
    bounded(&b, &d, "64-entry NAK with another address's token")
}

fn exp043(ctx: &ExposerCtx) -> CaseResult {
    let p = ctx.probe()?;
    let id = ctx.ticket.exposure_id;
    let a = bounded(
        &p,
        &net::pull_request(id, PullFlags::empty(), 1, 1),
        "Pull_Request",
    )?;
    let b = bounded(
        &p,
        &net::pull_request(id, PullFlags::ADDR_VALIDATION, 1, 1),
        "Pull_Request with bit 2",
    )?;
    Ok(format!("{a}; {b}"))
}

fn exp044(ctx: &ExposerCtx) -> CaseResult {
    let n = ctx.need_chunks()?;
    let p = ctx.probe()?;
    let id = ctx.ticket.exposure_id;
    let mut reqs = vec![
        net::pull_request(id, PullFlags::ADDR_VALIDATION, 1, 1),
        net::pull_request(id, PullFlags::empty(), 1, 1),
        net::nak(id, &entries_for(n, 4), NakFlags::empty(), None),
        net::nak(id, &entries_for(n, 16), NakFlags::PROOFS, None),
        net::nak(id, &entries_for(n, 300), NakFlags::empty(), None),
        net::nak(id, &entries_for(n, 1000), NakFlags::PROOFS, None),
        net::rate_report(id),
        net::keepalive(id),
        vec![1, 6, 0, 3],
    ];
    if let Ok(f) = fec_params(ctx) {
        let e: Vec<u32> = (0..f.parity() as u8)
            .map(|pi| parity_entry(0, pi))
            .collect();
        reqs.push(net::nak(id, &e, NakFlags::empty(), None));
    }
    let mut sent = 0usize;
    let mut got = 0usize;
    for r in &reqs {
        sent += r.len();
        p.send(r);
        std::thread::sleep(Duration::from_millis(5));
    }
    got += p.listen().bytes();
    ensure!(
        got <= 3 * sent,
        "{} unvalidated requests, {sent} B in all, drew {got} B > 3× ({} B)",
        reqs.len(),
        3 * sent
    );
    Ok(format!(
        "{} mixed unvalidated requests: {sent} B in, {got} B out (ratio {:.2})",
        reqs.len(),
        got as f64 / sent as f64
    ))
}

fn exp045(ctx: &ExposerCtx) -> CaseResult {
    let n = ctx.need_chunks()?;
    let p = ctx.validated()?;
    // The largest NAK one datagram of the link carries.
    let max = (ctx.endpoint.max_datagram() - 24 - if p.token.is_some() { 16 } else { 0 }) / 4;
    let entries = entries_for(n, max);
    let d = net::nak(ctx.ticket.exposure_id, &entries, NakFlags::empty(), p.token);
    p.send(&d);
    let a = p.listen();
    ensure!(
        a.len() <= 256,
        "a {max}-entry NAK drew {} answers (at most 256 per request, §3.5/§9.2)",
        a.len()
    );
    if p.token.is_some() {
        check_chunks(ctx, &a, &entries[..256])?;
    }
    p.alive().map_err(Stop::Fail)?;
    Ok(format!(
        "{max}-entry NAK ({} B) → {} answers, the first 256 entries; still serving",
        d.len(),
        a.len()
    ))
}

// ------------------------------------------------------------------ malformed input

fn exp050(ctx: &ExposerCtx) -> CaseResult {
    let p = ctx.validated()?;
    let mut short_pr = net::pull_request(ctx.ticket.exposure_id, PullFlags::ADDR_VALIDATION, 1, 1);
    short_pr.truncate(35);
    set_len(&mut short_pr);
    let mut short_nak = good_nak(ctx, &p);
    short_nak.truncate(20);
    set_len(&mut short_nak);
    let d = vec![vec![], vec![1], vec![1, 1, 0], short_pr, short_nak];
    silent_and_alive(ctx, &p, &d, "truncated datagrams")
}

fn exp051(ctx: &ExposerCtx) -> CaseResult {
    let p = ctx.validated()?;
    let good = good_nak(ctx, &p);
    let d: Vec<Vec<u8>> = [0x00u8, 0x09, 0x10, 0xff]
        .iter()
        .map(|&t| {
            let mut x = good.clone();
            x[1] = t;
            x
        })
        .collect();
    silent_and_alive(ctx, &p, &d, "unknown packet types 0x00, 0x09, 0x10, 0xff")
}

fn exp052(ctx: &ExposerCtx) -> CaseResult {
    let p = ctx.validated()?;
    let good = good_nak(ctx, &p);
    let mut longer = good.clone();
    longer.push(0);
    let mut shorter_field = good.clone();
    let l = (good.len() - 4) as u16;
    shorter_field[2..4].copy_from_slice(&l.to_be_bytes());
    let mut bigger_field = good.clone();
    bigger_field[2..4].copy_from_slice(&0xffffu16.to_be_bytes());
    let mut pr = net::pull_request(ctx.ticket.exposure_id, PullFlags::ADDR_VALIDATION, 1, 1);
    pr[3] = 35;
    silent_and_alive(
        ctx,
        &p,
        &[longer, shorter_field, bigger_field, pr],
        "Length ≠ datagram size",
    )
}

fn exp053(ctx: &ExposerCtx) -> CaseResult {
    let p = ctx.validated()?;
    let mut pr = net::pull_request(ctx.ticket.exposure_id, PullFlags::ADDR_VALIDATION, 1, 1);
    pr.extend_from_slice(&[0, 0, 0, 0]);
    set_len(&mut pr);
    let mut rr = net::rate_report(ctx.ticket.exposure_id);
    rr.push(0);
    set_len(&mut rr);
    silent_and_alive(ctx, &p, &[pr], "an over-long Pull_Request (BadLength)")?;
    silent_and_alive(ctx, &p, &[rr], "an over-long Rate_Report (BadLength)")
}

fn exp054(ctx: &ExposerCtx) -> CaseResult {
    let p = ctx.validated()?;
    let good = good_nak(ctx, &p);
    // NAK_Count one more than the entries present.
    let mut more = good.clone();
    let c = u16::from_be_bytes([more[20], more[21]]) + 1;
    more[20..22].copy_from_slice(&c.to_be_bytes());
    // TOKEN bit flipped: length no longer matches.
    let mut flipped = good.clone();
    flipped[23] ^= 0x01;
    // Count 0 with entries present.
    let mut zero = good.clone();
    zero[20..22].copy_from_slice(&0u16.to_be_bytes());
    silent_and_alive(
        ctx,
        &p,
        &[more, flipped, zero],
        "NAKs whose NAK_Count disagrees with Length",
    )
}

fn exp055(ctx: &ExposerCtx) -> CaseResult {
    let p = ctx.validated()?;
    let id = ctx.ticket.exposure_id;
    let mut deep = Vec::new();
    deep.extend_from_slice(&[1, 4, 0, 0]);
    deep.extend_from_slice(&id);
    deep.extend_from_slice(&0u32.to_be_bytes());
    deep.push(33);
    deep.extend(vec![0u8; 33 * 32 + 16]);
    set_len(&mut deep);
    let mut beyond = deep.clone();
    beyond[24] = 20; // 25 + 640 > Length
    beyond.truncate(25 + 100);
    set_len(&mut beyond);
    silent_and_alive(
        ctx,
        &p,
        &[deep, beyond],
        "Chunk_Data_With_Proof with a bad Proof_Depth",
    )
}

fn exp056(ctx: &ExposerCtx) -> CaseResult {
    if let Endpoint::Eth(e) = &ctx.endpoint {
        return skip(format!(
            "n/a over raw Ethernet: a frame carries at most the MTU ({} B), so nothing oversize can be sent",
            e.mtu
        ));
    }
    let p = ctx.validated()?;
    let id = ctx.ticket.exposure_id;
    let big = vec![0x5au8; MAX_UDP - 24];
    let cd = net::emit(&Repr::ChunkData(rgtp_wire::ChunkData {
        exposure_id: id,
        chunk_index: 0,
        payload: &big,
    }));
    let big2 = vec![0x5au8; 4000];
    let fp = net::emit(&Repr::FecParity(rgtp_wire::FecParity {
        exposure_id: id,
        block_index: 0,
        parity_index: 0,
        fec_n: 6,
        fec_k: 4,
        payload: &big2,
    }));
    // An oversize datagram whose header claims a NAK.
    let mut junk = good_nak(ctx, &p);
    junk.resize(MAX_UDP, 0xee);
    silent_and_alive(
        ctx,
        &p,
        &[cd, fp, junk],
        "oversize datagrams (65507-byte payloads)",
    )
}

fn exp057(ctx: &ExposerCtx) -> CaseResult {
    let p = ctx.validated()?;
    let mut m = net::emit(&Repr::Manifest(ctx.manifest));
    m[70] |= 0x80; // undefined flag bit 15
    let mut both = net::emit(&Repr::Manifest(ctx.manifest));
    both[71] |= 0x06;
    silent_and_alive(ctx, &p, &[m, both], "Manifests with BadFlags")
}

fn exp058(ctx: &ExposerCtx) -> CaseResult {
    let p = ctx.validated()?;
    let mut rng_state = 0x9e37_79b9_7f4a_7c15u64;
    let mut next = || {
        rng_state ^= rng_state << 13;
        rng_state ^= rng_state >> 7;
        rng_state ^= rng_state << 17;
        rng_state
    };
    let good = good_nak(ctx, &p);
    let mut d = Vec::new();
    for i in 0..200usize {
        let len = (next() % 120) as usize;
        let mut x: Vec<u8> = (0..len).map(|_| next() as u8).collect();
        if i % 2 == 0 && len >= 4 {
            // Plausible header, wrong version.
            x[0] = [0u8, 2, 3, 0xff][i % 4];
            x[1] = (next() % 9) as u8;
            set_len(&mut x);
        } else if !x.is_empty() && x[0] == 1 {
            x[0] = 0;
        }
        d.push(x);
    }
    // Also the servable NAK with every version byte but 1.
    for v in [0u8, 2, 0x11, 0x81] {
        let mut x = good.clone();
        x[0] = v;
        d.push(x);
    }
    silent_and_alive(
        ctx,
        &p,
        &d,
        "random datagrams with a version byte other than 1",
    )
}

fn exp060(ctx: &ExposerCtx) -> CaseResult {
    let n = ctx.need_chunks()?;
    let p = ctx.validated()?;
    let mut id = ctx.ticket.exposure_id;
    id[7] ^= 0xff;
    let d = vec![
        net::nak(id, &[0, 1 % n], NakFlags::empty(), p.token),
        net::rate_report(id),
        net::keepalive(id),
    ];
    silent_and_alive(ctx, &p, &d, "requests for another Exposure_ID")
}

//= spec/rgtp-v1.md#6.6
//# the key a ticket carries MUST NOT be used directly as the AEAD key of
//# more than one exposure
fn exp061(ctx: &ExposerCtx) -> CaseResult {
    let suite = ctx
        .suite
        .ok_or_else(|| Stop::Fail("the Manifest names no usable suite".into()))?;
    if suite.key_mode == KeyMode::Raw {
        return fail(
            "Manifest flag DERIVED_KEY clear: chunks are sealed under the ticket's key itself, \
             so any other exposure under that key reuses every nonce (raw-key mode)",
        );
    }
    ctx.need_chunks()?;
    let p = ctx.validated()?;
    let a = p.request(&[0], NakFlags::empty(), 1);
    let got = check_chunks(ctx, &a, &[0])?;
    let sealed = &got[0].payload;
    let plain = ctx.open(0, sealed).map_err(Stop::Fail)?;
    // The same plaintext sealed under the ticket's key directly, as a raw-key
    // exposure under that key would: the keystreams must differ.
    let raw = AnyCipher::new(suite.cipher, &ctx.ticket.key)
        .ok_or_else(|| Stop::Fail(format!("{} is not available", suite.cipher.name())))?;
    let mut under_raw = plain.clone();
    raw.seal(0, &mut under_raw)
        .or_fail("sealing under the ticket's key")?;
    ensure!(
        under_raw[..] != sealed[..plain.len()],
        "chunk 0 is sealed with the keystream of the ticket's key itself"
    );
    let (body, tag) = sealed.split_at(sealed.len() - 16);
    let mut body = body.to_vec();
    ensure!(
        raw.open(0, &mut body, tag.try_into().expect("16 bytes"))
            .is_err(),
        "chunk 0 also opens under the ticket's key itself"
    );
    Ok(
        "DERIVED_KEY set; chunk 0 opens under HKDF(key, Exposure_ID), not under the key itself"
            .into(),
    )
}

/// The exposer catalogue.
pub static CASES: &[Case<ExposerCtx>] = &[
    Case {
        id: "EXP-001",
        title: "Pull_Request answered by exactly one 72-byte Manifest",
        section: "§3.1",
        level: Level::Must,
        run: exp001,
    },
    Case {
        id: "EXP-002",
        title: "PullFlags ADDR_VALIDATION: 88-byte Manifest with TOKEN",
        section: "§5.2",
        level: Level::Should,
        run: exp002,
    },
    Case {
        id: "EXP-003",
        title: "Manifest header: Version 1, Length, Exposure_ID of ticket",
        section: "§2.1",
        level: Level::Must,
        run: exp003,
    },
    Case {
        id: "EXP-004",
        title: "Manifest flags name a valid suite matching the ticket",
        section: "§4.1",
        level: Level::Must,
        run: exp004,
    },
    Case {
        id: "EXP-005",
        title: "Manifest sizes: Chunk_Count = ceil(Total/Chunk_Size)",
        section: "§2.4",
        level: Level::Must,
        run: exp005,
    },
    Case {
        id: "EXP-006",
        title: "Pull_Request never answered with chunks or parity",
        section: "§3.1",
        level: Level::Must,
        run: exp006,
    },
    Case {
        id: "EXP-007",
        title: "repeated Pull_Requests describe the same exposure",
        section: "§3.1",
        level: Level::Must,
        run: exp007,
    },
    Case {
        id: "EXP-008",
        title: "unknown Exposure_ID: silent",
        section: "§3.8",
        level: Level::Must,
        run: exp008,
    },
    Case {
        id: "EXP-010",
        title: "version range [0,7] containing 1 is answered",
        section: "§3.2",
        level: Level::Must,
        run: exp010,
    },
    Case {
        id: "EXP-011",
        title: "silent when Version_Min exceeds its version",
        section: "§3.2",
        level: Level::Must,
        run: exp011,
    },
    Case {
        id: "EXP-012",
        title: "silent when Version_Max is below its version",
        section: "§3.2",
        level: Level::Must,
        run: exp012,
    },
    Case {
        id: "EXP-013",
        title: "silent when Version_Min > Version_Max",
        section: "§3.2",
        level: Level::Must,
        run: exp013,
    },
    Case {
        id: "EXP-014",
        title: "header Version 2: dropped, keeps serving",
        section: "§2.13",
        level: Level::Must,
        run: exp014,
    },
    Case {
        id: "EXP-015",
        title: "header Version 0: dropped, keeps serving",
        section: "§2.13",
        level: Level::Must,
        run: exp015,
    },
    Case {
        id: "EXP-020",
        title: "NAK served one Chunk_Data per entry, lengths",
        section: "§3.3",
        level: Level::Must,
        run: exp020,
    },
    Case {
        id: "EXP-021",
        title: "served chunks open under the ticket key",
        section: "§6.2",
        level: Level::Must,
        run: exp021,
    },
    Case {
        id: "EXP-022",
        title: "root over all served chunks = Manifest root",
        section: "§6.3",
        level: Level::Must,
        run: exp022,
    },
    Case {
        id: "EXP-023",
        title: "NakFlags PROOFS: proofs of depth d verify vs root",
        section: "§3.6",
        level: Level::Must,
        run: exp023,
    },
    Case {
        id: "EXP-024",
        title: "plain NAK: packet type follows Manifest PROOFS",
        section: "§3.6",
        level: Level::Must,
        run: exp024,
    },
    Case {
        id: "EXP-025",
        title: "entries served in list order, duplicates too",
        section: "§3.3",
        level: Level::Must,
        run: exp025,
    },
    Case {
        id: "EXP-026",
        title: "at most the first 256 entries of a NAK served",
        section: "§3.5",
        level: Level::Must,
        run: exp026,
    },
    Case {
        id: "EXP-027",
        title: "out-of-range chunk entries skipped, rest served",
        section: "§3.5",
        level: Level::Must,
        run: exp027,
    },
    Case {
        id: "EXP-028",
        title: "parity entries: FEC_Parity fields, sizes, range",
        section: "§3.4",
        level: Level::Must,
        run: exp028,
    },
    Case {
        id: "EXP-029",
        title: "FEC parity rebuilds a chunk that authenticates",
        section: "§7.6",
        level: Level::Must,
        run: exp029,
    },
    Case {
        id: "EXP-030",
        title: "Rate_Report never answered",
        section: "§9.5",
        level: Level::Must,
        run: exp030,
    },
    Case {
        id: "EXP-031",
        title: "Keepalive never answered",
        section: "§9.5",
        level: Level::Must,
        run: exp031,
    },
    Case {
        id: "EXP-032",
        title: "packet types 2-5 sent to it never answered",
        section: "§3.7",
        level: Level::Must,
        run: exp032,
    },
    Case {
        id: "EXP-040",
        title: "tokenless NAK answered with ≤ 3× its size",
        section: "§5.1",
        level: Level::Must,
        run: exp040,
    },
    Case {
        id: "EXP-041",
        title: "NAK with a forged token stays under the bound",
        section: "§5.2",
        level: Level::Must,
        run: exp041,
    },
    Case {
        id: "EXP-042",
        title: "token bound to its address: reuse elsewhere bounded",
        section: "§5.3",
        level: Level::Must,
        run: exp042,
    },
    Case {
        id: "EXP-043",
        title: "Pull_Request answer ≤ 3 × 36 bytes",
        section: "§5.1",
        level: Level::Must,
        run: exp043,
    },
    Case {
        id: "EXP-044",
        title: "mixed unvalidated traffic: bytes out ≤ 3× bytes in",
        section: "§5.5",
        level: Level::Must,
        run: exp044,
    },
    Case {
        id: "EXP-045",
        title: "largest NAK: first 256 served, keeps serving",
        section: "§9.2",
        level: Level::Must,
        run: exp045,
    },
    Case {
        id: "EXP-050",
        title: "truncated datagrams dropped silently",
        section: "§2.13",
        level: Level::Must,
        run: exp050,
    },
    Case {
        id: "EXP-051",
        title: "unknown packet types dropped silently",
        section: "§2.13",
        level: Level::Must,
        run: exp051,
    },
    Case {
        id: "EXP-052",
        title: "Length ≠ datagram size dropped silently",
        section: "§2.13",
        level: Level::Must,
        run: exp052,
    },
    Case {
        id: "EXP-053",
        title: "over-long fixed-size packets dropped (BadLength)",
        section: "§2.13",
        level: Level::Must,
        run: exp053,
    },
    Case {
        id: "EXP-054",
        title: "bad NAK_Count dropped silently",
        section: "§2.13",
        level: Level::Must,
        run: exp054,
    },
    Case {
        id: "EXP-055",
        title: "bad Proof_Depth dropped silently",
        section: "§2.13",
        level: Level::Must,
        run: exp055,
    },
    Case {
        id: "EXP-056",
        title: "oversize payloads dropped silently",
        section: "§2.13",
        level: Level::Must,
        run: exp056,
    },
    Case {
        id: "EXP-057",
        title: "Manifest with BadFlags dropped silently",
        section: "§2.11",
        level: Level::Must,
        run: exp057,
    },
    Case {
        id: "EXP-058",
        title: "200 random bad-version datagrams: no crash, silent",
        section: "§2.13",
        level: Level::Must,
        run: exp058,
    },
    Case {
        id: "EXP-060",
        title: "NAK/reports for another Exposure_ID ignored",
        section: "§3.8",
        level: Level::Must,
        run: exp060,
    },
    Case {
        id: "EXP-061",
        title: "per-exposure chunk key: DERIVED_KEY, no keystream of the ticket key",
        section: "§6.6",
        level: Level::Should,
        run: exp061,
    },
    Case {
        id: "EXP-062",
        title: "PullFlags RATE_CAP: the Manifest is the plain one, or carries RATE_CAP and a Rate_Cap of at least 1 in 8 more bytes",
        section: "§8.3.3",
        level: Level::Must,
        run: exp062,
    },
    Case {
        id: "EXP-063",
        title: "ManifestFlags PROOF_RUNS only in answer to PullFlags PROOF_RUNS (or never, without the extension)",
        section: "§3.6",
        level: Level::Must,
        run: exp063,
    },
    Case {
        id: "EXP-064",
        title: "NakFlags PROOF_RUNS: proofs exactly on chunks at multiples of 64, and they verify",
        section: "§3.6",
        level: Level::Must,
        run: exp064,
    },
];
