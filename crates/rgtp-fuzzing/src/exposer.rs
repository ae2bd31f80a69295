//! `exposer`: an [`Exposer`] fed arbitrary datagrams from arbitrary peers.
//!
//! Invariants: nothing panics; `unvalidated_bytes_out <= 3 * unvalidated_bytes_in`
//! (spec §5.1, from the exposer's own counters); independently of those counters,
//! when no request carried a token the bytes sent are at most three times the
//! bytes of the requests (§5.5); a Pull_Request gets at most one datagram and a
//! NAK at most min(entries, 256) (§3.5, §3.7); every datagram sent is a well-formed
//! answer carrying the exposure's real bytes, to a peer that asked; a batch of
//! several datagrams fits the link's bound on a batch's bytes; the byte and
//! datagram counters match what was sent.

use std::time::Duration;

use arbitrary::{Arbitrary, Unstructured};
use rgtp_proto::exposer::make_parity_entry;
use rgtp_proto::{Exposer, ExposerConfig, ExposerStats, Instant, Peer};
use rgtp_wire::{IndexList, Nak, NakFlags, PullFlags, PullRequest, Repr, MAX_PAYLOAD_UDP};

use crate::fixtures::{self, Fixture};

const MAX_OPS: usize = 256;

#[derive(Debug, Arbitrary)]
struct Setup {
    fixture: u8,
    max_segments: u8,
    /// The link's bound on a batch's bytes, if any.
    batch_bytes: Option<u16>,
    queue_limit: u16,
    small_mtu: bool,
    drain_each: bool,
    start_secs: u32,
}

#[derive(Debug, Arbitrary)]
enum PeerSel {
    Mem(u8),
    V4(u8, u16),
    V6(u8, u16),
    Eth(u8),
}

impl PeerSel {
    fn peer(&self) -> Peer {
        match *self {
            PeerSel::Mem(n) => Peer::Mem(u32::from(n % 8)),
            PeerSel::V4(a, port) => {
                Peer::Ip((std::net::Ipv4Addr::new(10, 0, 0, a % 8), port).into())
            }
            PeerSel::V6(a, port) => {
                let ip = std::net::Ipv6Addr::new(0xfd00, 0, 0, 0, 0, 0, 0, u16::from(a % 8));
                Peer::Ip((ip, port).into())
            }
            PeerSel::Eth(a) => Peer::Ethernet([2, 0, 0, 0, 0, a % 8]),
        }
    }
}

#[derive(Debug, Arbitrary)]
enum Entry {
    Chunk(u16),
    Parity(u16, u8),
    Any(u32),
}

#[derive(Debug, Arbitrary)]
enum TokenSel {
    None,
    /// A token the exposer minted (for this peer or another).
    Minted(u8),
    Random([u8; 16]),
}

#[derive(Debug, Arbitrary)]
enum Kind {
    Raw(Vec<u8>),
    PullRequest {
        flags: u32,
        version_min: u16,
        version_max: u16,
    },
    Nak {
        entries: Vec<Entry>,
        /// Repeat the entry list this many times (long NAKs, past 256 entries).
        repeat: u8,
        flags: u16,
        token: TokenSel,
    },
    Forged(Vec<u8>),
}

#[derive(Debug, Arbitrary)]
enum Op {
    Datagram { from: PeerSel, kind: Kind },
    Drain,
    Tick(u16),
}

struct Request {
    from: Peer,
    len: usize,
    max_datagrams: usize,
    token: bool,
    /// A Pull_Request with PullFlags PROOF_RUNS (spec §3.6).
    proof_runs: bool,
}

struct Harness {
    fx: &'static Fixture,
    exposer: Exposer,
    max_payload: usize,
    /// The bound on a batch's bytes the exposer was given.
    max_batch_bytes: usize,
    now: Instant,
    pending: Vec<Request>,
    minted: Vec<[u8; 16]>,
    stats: ExposerStats,
    buf: Vec<u8>,
}

/// See the module documentation.
pub fn exposer(data: &[u8]) {
    let mut u = Unstructured::new(data);
    let Ok(setup) = Setup::arbitrary(&mut u) else {
        return;
    };
    let all = fixtures::all();
    let fx = &all[usize::from(setup.fixture) % all.len()];
    let max_payload = if setup.small_mtu {
        MAX_PAYLOAD_UDP
    } else {
        65_507
    };
    let max_batch_bytes = setup.batch_bytes.map_or(usize::MAX, usize::from);
    let config = ExposerConfig {
        max_segments: usize::from(setup.max_segments % 16).max(1),
        max_batch_bytes,
        queue_limit: usize::from(setup.queue_limit % 1025).max(1),
        max_payload,
        token_secret: [0x77; 32],
        ..Default::default()
    };
    assert_eq!(config.amplification_limit, 3);
    assert_eq!(config.max_entries_per_request, 256);
    assert!(!config.dangerous_serve_unvalidated);
    let mut h = Harness {
        fx,
        exposer: Exposer::new(fx.exposure.clone(), config),
        max_payload,
        max_batch_bytes,
        now: Instant::from_micros(u64::from(setup.start_secs) * 1_000_000),
        pending: Vec::new(),
        minted: Vec::new(),
        stats: ExposerStats::default(),
        buf: Vec::new(),
    };
    for _ in 0..MAX_OPS {
        let Ok(op) = Op::arbitrary(&mut u) else {
            break;
        };
        match op {
            Op::Datagram { from, kind } => {
                let d = h.datagram(kind);
                h.receive(from.peer(), &d);
                if setup.drain_each {
                    h.drain();
                }
            }
            Op::Drain => h.drain(),
            Op::Tick(s) => h.now = h.now + Duration::from_secs(u64::from(s % 120)),
        }
    }
    h.drain();
}

impl Harness {
    fn datagram(&self, kind: Kind) -> Vec<u8> {
        let x = &self.fx.exposure;
        let id = *x.id();
        match kind {
            Kind::Raw(d) => d,
            Kind::PullRequest {
                flags,
                version_min,
                version_max,
            } => fixtures::emit(&Repr::PullRequest(PullRequest {
                exposure_id: id,
                window_size: 64,
                loss_rate_q16: 0,
                flags: PullFlags::from_bits_retain(flags),
                version_min: version_min % 3,
                version_max: version_max % 3,
            })),
            Kind::Nak {
                entries,
                repeat,
                flags,
                token,
            } => {
                let count = x.chunk_count();
                let blocks = x.block_count();
                let parity = u32::from(self.fx.parity_count());
                let one: Vec<u32> = entries
                    .iter()
                    .map(|e| match *e {
                        Entry::Chunk(i) => u32::from(i) % (count + 2),
                        Entry::Parity(b, p) => make_parity_entry(
                            u32::from(b) % (blocks + 1),
                            (u32::from(p) % (parity + 1)) as u8,
                        ),
                        Entry::Any(e) => e,
                    })
                    .collect();
                let mut list = Vec::new();
                for _ in 0..=repeat % 8 {
                    list.extend_from_slice(&one);
                }
                list.truncate(2048);
                let token = match token {
                    TokenSel::None => None,
                    TokenSel::Minted(i) if !self.minted.is_empty() => {
                        Some(self.minted[usize::from(i) % self.minted.len()])
                    }
                    TokenSel::Minted(_) => None,
                    TokenSel::Random(t) => Some(t),
                };
                let mut flags = NakFlags::from_bits_retain(flags) - NakFlags::TOKEN;
                if token.is_some() {
                    flags |= NakFlags::TOKEN;
                }
                fixtures::emit(&Repr::Nak(Nak {
                    exposure_id: id,
                    flags,
                    indices: IndexList::Slice(&list),
                    token,
                }))
            }
            Kind::Forged(bytes) => match Repr::arbitrary(&mut Unstructured::new(&bytes)) {
                Ok(r) => {
                    let mut d = fixtures::emit(&r);
                    if d.len() >= 20 {
                        d[4..20].copy_from_slice(&id);
                    }
                    d
                }
                Err(_) => Vec::new(),
            },
        }
    }

    fn receive(&mut self, from: Peer, d: &[u8]) {
        // Classify independently of the exposer: what may it answer, and how much?
        if let Ok(r) = Repr::parse(d, self.max_payload) {
            if r.exposure_id() == self.fx.exposure.id() {
                match r {
                    Repr::PullRequest(p) => self.pending.push(Request {
                        from,
                        len: d.len(),
                        max_datagrams: 1,
                        token: false,
                        proof_runs: p.flags.contains(PullFlags::PROOF_RUNS),
                    }),
                    Repr::Nak(n) => self.pending.push(Request {
                        from,
                        len: d.len(),
                        max_datagrams: n.indices.len().min(256),
                        token: n.token.is_some(),
                        proof_runs: false,
                    }),
                    _ => {}
                }
            }
        }
        self.exposer.handle_datagram(self.now, from, d);
        assert_eq!(self.exposer.poll_timeout(), None);
    }

    fn drain(&mut self) {
        let x = self.fx.exposure.clone();
        let (mut bytes, mut datagrams) = (0u64, 0u64);
        let mut guard = 0usize;
        while let Some(t) = self.exposer.poll_transmit(self.now, &mut self.buf) {
            guard += 1;
            assert!(guard <= 300 * 1025, "poll_transmit never returns None");
            assert_eq!(
                t.size,
                self.buf.len(),
                "Transmit size differs from the buffer"
            );
            assert!(
                self.pending.iter().any(|r| r.from == t.destination),
                "sent to {:?}, which asked for nothing",
                t.destination
            );
            if let Some(s) = t.segment_size {
                assert!(
                    s > 0 && t.size > s,
                    "a batch of one datagram with a segment size"
                );
                assert!(
                    t.size <= self.max_batch_bytes,
                    "a batch of {} bytes past the link's {}",
                    t.size,
                    self.max_batch_bytes
                );
            }
            for d in t.datagrams(&self.buf) {
                bytes += d.len() as u64;
                datagrams += 1;
                let r = Repr::parse(d, 65_507).expect("the exposer emits well-formed packets");
                assert_eq!(r.exposure_id(), x.id());
                match r {
                    Repr::Manifest(m) => {
                        use rgtp_wire::ManifestFlags;
                        let mut real = x.manifest();
                        real.flags |= m.flags & (ManifestFlags::TOKEN | ManifestFlags::PROOF_RUNS);
                        real.token = m.token;
                        assert_eq!(m, real, "a Manifest that is not the exposure's");
                        // PROOF_RUNS only to a peer that asked for it (spec §3.6).
                        assert!(
                            !m.flags.contains(ManifestFlags::PROOF_RUNS)
                                || self
                                    .pending
                                    .iter()
                                    .any(|r| r.from == t.destination && r.proof_runs),
                            "ManifestFlags PROOF_RUNS to a peer that did not ask"
                        );
                        if let Some(t) = m.token {
                            self.minted.push(t);
                        }
                    }
                    Repr::ChunkData(c) => {
                        assert_eq!(c.payload, x.ciphertext(c.chunk_index), "wrong chunk bytes")
                    }
                    Repr::ChunkDataWithProof(c) => {
                        assert_eq!(c.payload, x.ciphertext(c.chunk_index), "wrong chunk bytes");
                        let sibs: Vec<&[u8]> =
                            x.tree().siblings(c.chunk_index).map(|h| &h[..]).collect();
                        assert_eq!(c.proof, sibs.concat(), "wrong proof");
                    }
                    Repr::FecParity(p) => {
                        assert!(parity_in_range(self.fx, p.block_index, p.parity_index));
                        assert_eq!(p.payload, x.parity(p.block_index, p.parity_index));
                    }
                    other => panic!("the exposer sent a {:?}", other.packet_type()),
                }
            }
        }
        let s = self.exposer.stats();
        assert_eq!(
            s.bytes_out - self.stats.bytes_out,
            bytes,
            "bytes_out miscounted"
        );
        assert_eq!(
            s.datagrams_out - self.stats.datagrams_out,
            datagrams,
            "datagrams_out miscounted"
        );
        // §5.1 by the exposer's own accounting.
        assert!(
            s.unvalidated_bytes_out <= 3 * s.unvalidated_bytes_in,
            "amplification bound broken: {} out for {} in",
            s.unvalidated_bytes_out,
            s.unvalidated_bytes_in
        );
        // §5.5, independently: with no token in any request, ≤ 3 × request bytes.
        let asked: u64 = self.pending.iter().map(|r| r.len as u64).sum();
        if !self.pending.iter().any(|r| r.token) {
            assert!(
                bytes <= 3 * asked,
                "{bytes} bytes sent for {asked} bytes of unvalidated requests"
            );
        }
        // §3.5/§3.7: one Manifest per Pull_Request, at most 256 answers per NAK.
        let cap: u64 = self.pending.iter().map(|r| r.max_datagrams as u64).sum();
        assert!(
            datagrams <= cap,
            "{datagrams} datagrams for requests allowing {cap}"
        );
        self.pending.clear();
        self.stats = s;
    }
}

fn parity_in_range(fx: &Fixture, block: u32, p: u8) -> bool {
    block < fx.exposure.block_count() && p < fx.parity_count()
}
