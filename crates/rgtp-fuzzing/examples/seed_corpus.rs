//! Regenerates the committed seed corpora under `fuzz/corpus/<target>/`, deterministically.
//!
//! ```sh
//! cargo run -p rgtp-fuzzing --example seed_corpus
//! ```
//!
//! Seeds: the hex datagrams of `spec/vectors/packets.txt`, real packets emitted for
//! the fixture exposures and the first packet of each kind in every capture of `pcaps/`
//! (`packet`); printed and malformed tickets (`ticket`); the `pcaps/` captures behind
//! their scenario's selector byte (`pcap`); the frames of `spec/vectors/tej.txt` behind
//! mode bytes (`tej`); and, for
//! the structured targets whose input drives `arbitrary`, fixed pseudo-random byte
//! strings of several lengths (for `repair`, behind a prefix that forges chunks). Files are named `seed-*`; entries the fuzzer adds (named
//! by their SHA-1) are left alone, and `seed-*` files are rewritten in place.

use std::path::{Path, PathBuf};

use rgtp_fuzzing::fixtures;
use rgtp_proto::{CipherId, HashId, Key};
use rgtp_wire::{IndexList, Nak, NakFlags, PullFlags, PullRequest, Repr};

fn root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../..")
}

/// SplitMix64: a fixed, dependency-free byte stream.
struct Stream(u64);

impl Stream {
    fn bytes(&mut self, n: usize) -> Vec<u8> {
        (0..n)
            .map(|_| {
                self.0 = self.0.wrapping_add(0x9e37_79b9_7f4a_7c15);
                let mut z = self.0;
                z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
                z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
                (z ^ (z >> 31)) as u8
            })
            .collect()
    }
}

struct Corpus {
    dir: PathBuf,
    n: usize,
}

impl Corpus {
    fn new(target: &str) -> Self {
        let dir = root().join("fuzz/corpus").join(target);
        std::fs::create_dir_all(&dir).expect("create corpus dir");
        for e in std::fs::read_dir(&dir).expect("read corpus dir").flatten() {
            if e.file_name().to_string_lossy().starts_with("seed-") {
                std::fs::remove_file(e.path()).expect("remove old seed");
            }
        }
        Corpus { dir, n: 0 }
    }

    fn add(&mut self, name: &str, data: &[u8]) {
        let path = self.dir.join(format!("seed-{:03}-{name}", self.n));
        std::fs::write(path, data).expect("write seed");
        self.n += 1;
    }

    fn random(&mut self, seed: u64, lens: &[usize], prefix: &[u8]) {
        let mut s = Stream(seed);
        for &len in lens {
            let mut d = prefix.to_vec();
            d.extend(s.bytes(len));
            self.add(&format!("random{len}"), &d);
        }
    }
}

/// The `hex = …` datagrams of a vectors file.
fn vector_packets(file: &str) -> Vec<(String, Vec<u8>)> {
    let text = std::fs::read_to_string(root().join("spec/vectors").join(file)).expect("vectors");
    let mut name = String::from("unnamed");
    let mut out = Vec::new();
    for line in text.lines() {
        let line = line.trim();
        if let Some(n) = line
            .strip_prefix("name:")
            .or_else(|| line.strip_prefix("invalid:"))
        {
            name = n.trim().to_string();
        } else if let Some(v) = line.strip_prefix("hex") {
            let v = v.trim_start().trim_start_matches('=');
            let hex: String = v.chars().filter(|c| !c.is_whitespace()).collect();
            if let Ok(bytes) = hex::decode(&hex) {
                out.push((name.clone(), bytes));
            }
        }
    }
    out
}

fn packet() {
    let mut c = Corpus::new("packet");
    for (name, bytes) in vector_packets("packets.txt") {
        let mut d = vec![0u8];
        d.extend(&bytes);
        let name: String = name
            .chars()
            .map(|ch| if ch.is_ascii_alphanumeric() { ch } else { '_' })
            .collect();
        c.add(&format!("vector-{name}"), &d);
    }
    for (i, fx) in fixtures::all().iter().enumerate() {
        let mut real = vec![fx.manifest_packet(None), fx.manifest_packet(Some([9; 16]))];
        if fx.exposure.chunk_count() > 0 {
            real.push(fx.chunk_packet(0, false));
            real.push(fx.chunk_packet(fx.exposure.chunk_count() - 1, true));
        }
        if fx.exposure.block_count() > 0 {
            real.push(fx.parity_packet(0, 0));
        }
        let entries = [0u32, 1, 0x8000_0000];
        real.push(fixtures::emit(&Repr::Nak(Nak {
            exposure_id: *fx.exposure.id(),
            flags: NakFlags::TOKEN | NakFlags::PROOFS,
            indices: IndexList::Slice(&entries),
            token: Some([3; 16]),
        })));
        real.push(fixtures::emit(&Repr::PullRequest(PullRequest {
            exposure_id: *fx.exposure.id(),
            window_size: 64,
            loss_rate_q16: 0,
            flags: PullFlags::ADDR_VALIDATION | PullFlags::PROOFS,
            version_min: 1,
            version_max: 1,
        })));
        for (j, p) in real.iter().enumerate() {
            let mut d = vec![0u8];
            d.extend(p);
            c.add(&format!("fixture{i}-{j}"), &d);
        }
    }
    // The first datagram of each kind (type byte, and whether it parses) in every capture
    // of pcaps/: the hostile ones bring truncated, forged and wrong-version packets.
    for sc in rgtp_cli::corpus::scenarios() {
        let file = std::fs::read(root().join("pcaps").join(format!("{}.pcap", sc.name)))
            .expect("pcaps/ holds the corpus");
        let cap = rgtp_capture::read(&file).expect("corpus captures read");
        let mut seen = std::collections::BTreeSet::new();
        for (_, d) in cap.datagrams() {
            let kind = (
                d.payload.get(1).copied(),
                Repr::parse(&d.payload, 65_535).is_ok(),
            );
            if seen.insert(kind) {
                let mut x = vec![0u8];
                x.extend(&d.payload);
                c.add(&format!("pcap-{}", sc.name), &x);
            }
        }
    }
    c.random(1, &[16, 64, 256, 1024], &[1]);
}

fn ticket() {
    let mut c = Corpus::new("ticket");
    let id = "ab".repeat(16);
    let key = "11".repeat(32);
    let printed = rgtp::Ticket {
        host: "[::1]".into(),
        port: 9000,
        mac: None,
        exposure_id: [0xcd; 16],
        key: Key::from_bytes([0x22; 32]),
        cipher: Some(CipherId::Aes256Gcm),
        hash: Some(HashId::Blake3),
    }
    .to_string();
    let texts = [
        printed,
        format!("rgtp://127.0.0.1:9000/{id}#{key}"),
        format!("rgtp://02-00-5e-10-00-01/{id}?cipher=aes-256-gcm#{key}"),
        format!("rgtp://127.0.0.1:9000/{id}?cipher=aes-256-gcm&hash=sha256#{key}"),
        format!("rgtp://example.invalid:1/{id}?hash=blake2b-256&cipher=chacha#{key}"),
        format!("  rgtp://h:65535/{}#{}  ", id.to_uppercase(), key),
        format!("rgtp://::1:9/{id}#{key}"),
        format!("rgtp://h:9/{id}?cipher=rot13#{key}"),
        format!("rgtp://h:x/{id}#{key}"),
        format!("rgtp://h:9/{id}#{}", &key[1..]),
        "http://x".into(),
        "rgtp://".into(),
    ];
    for (i, t) in texts.iter().enumerate() {
        let mut d = vec![0u8];
        d.extend(t.as_bytes());
        c.add(&format!("text{i}"), &d);
    }
    c.random(2, &[32, 96, 200], &[1]);
}

/// The first `n` records of a classic pcap file.
fn first_records(pcap: &[u8], n: usize) -> Vec<u8> {
    let mut end = 24;
    for _ in 0..n {
        if end + 16 > pcap.len() {
            break;
        }
        let incl =
            u32::from_le_bytes(pcap[end + 8..end + 12].try_into().expect("4 bytes")) as usize;
        end += 16 + incl;
    }
    pcap[..end.min(pcap.len())].to_vec()
}

/// Captures from `pcaps/`, each behind the selector byte of its scenario; the
/// smallest whole, the others cut to their first records (handshake, requests,
/// the first chunks and whatever the attack put there) to keep the corpus small.
fn pcap() {
    let mut c = Corpus::new("pcap");
    for (i, s) in rgtp_cli::corpus::scenarios().iter().enumerate() {
        let file = std::fs::read(root().join("pcaps").join(format!("{}.pcap", s.name)))
            .expect("pcaps/ holds the corpus (cargo run -p rgtp-cli --example regen-pcaps)");
        let keep = if file.len() <= 4096 { usize::MAX } else { 14 };
        let mut d = vec![i as u8];
        d.extend(first_records(&file, keep));
        c.add(s.name, &d);
    }
}

/// The frames of `spec/vectors/tej.txt`, each behind three mode bytes
/// (limits, cut lengths): whole, in small cuts, with the message streamed.
fn tej() {
    let mut c = Corpus::new("tej");
    let text = std::fs::read_to_string(root().join("spec/vectors/tej.txt")).expect("vectors");
    let frames = text
        .lines()
        .filter_map(|l| l.strip_prefix("frame = "))
        .filter_map(|h| hex::decode(h.trim()).ok());
    for (i, frame) in frames.enumerate() {
        for (mode, cuts) in [(0x00, &[][..]), (0x35, &[0, 2, 6][..]), (0x2e, &[9, 0][..])] {
            let mut d = vec![mode];
            d.extend_from_slice(cuts);
            d.extend_from_slice(&frame);
            c.add(&format!("vector{i}-mode{mode:02x}"), &d);
        }
    }
    c.random(60, &[32, 128, 512], &[0x17]);
}

/// `gtudp_packet`: every datagram of `spec/vectors/gtudp.txt` behind its profile
/// (shape byte, magic, the three codes); `gtudp_endpoint`: scripts of sends,
/// deliveries, losses, copies, delays and injections, and random ones.
fn gtudp() {
    let text = std::fs::read_to_string(root().join("spec/vectors/gtudp.txt")).expect("vectors");
    let mut c = Corpus::new("gtudp_packet");
    for record in text.split("\n\n") {
        let field = |name: &str| {
            record.lines().find_map(|l| {
                let (k, v) = l.split_once('=')?;
                (k.trim() == name).then(|| v.trim().to_string())
            })
        };
        let (Some(magic), Some(types), Some(packet), Some(expect)) = (
            field("magic"),
            field("types"),
            field("packet"),
            field("expect"),
        ) else {
            continue;
        };
        let magic = hex::decode(magic).expect("hex magic");
        let codes: Vec<Vec<u8>> = types
            .split(',')
            .map(|t| hex::decode(t).expect("hex"))
            .collect();
        let mut d = vec![magic.len() as u8 | ((codes[0].len() as u8 - 1) << 3)];
        d.extend(&magic);
        for code in &codes {
            d.extend(code);
        }
        d.extend(hex::decode(packet).expect("hex packet"));
        let kind = field("kind").unwrap_or_default().replace('-', "bad");
        c.add(&format!("vector-{kind}-{expect}"), &d);
    }
    let mut c = Corpus::new("gtudp_endpoint");
    // Ops: 0 send (len), 8 send with deadline (len), 1 deliver, 3 drop, 4 copy,
    // 5 hold back, 6 wait (×8 ms), 7 inject to B (len, bytes), 15 inject to A.
    let clean = [0, 12, 1, 1, 1, 0, 0, 1, 1, 1];
    let lossy = [
        8, 200, 3, 6, 70, 1, 4, 1, 1, 6, 200, 5, 1, 2, 1, 1, 6, 255, 1, 1, 1,
    ];
    let inject = [7, 5, 0x1d, 0, 0, 0, 1, 15, 5, 0x5f, 1, 2, 3, 4, 2, 2];
    let late = [
        0, 3, 1, 1, 1, 6, 255, 6, 255, 6, 255, 4, 1, 1, 1, 0, 3, 1, 1, 1,
    ];
    for (name, mode, script) in [
        ("clean-rtt", 0u8, &clean[..]),
        ("clean-reference", 1, &clean[..]),
        ("lossy", 0, &lossy[..]),
        ("inject", 0x21, &inject[..]),
        ("late-copy", 0xf0, &late[..]),
    ] {
        let mut d = vec![mode];
        d.extend_from_slice(script);
        c.add(name, &d);
    }
    c.random(60, &[32, 128, 512], &[0]);
}

fn main() {
    packet();
    tej();
    ticket();
    pcap();
    let mut c = Corpus::new("merkle_proof");
    for mode in 0u8..6 {
        c.random(10 + u64::from(mode), &[64, 400], &[mode]);
    }
    let mut c = Corpus::new("fec");
    for mode in 0u8..4 {
        c.random(20 + u64::from(mode), &[48, 300, 1500], &[mode]);
    }
    let mut c = Corpus::new("puller");
    c.random(30, &[64, 128, 256, 512, 1024, 2048, 4096, 4096], &[]);
    let mut c = Corpus::new("exposer");
    c.random(40, &[64, 128, 256, 512, 1024, 2048, 4096, 4096], &[]);
    let mut c = Corpus::new("ffi");
    c.random(50, &[16, 32, 64, 128, 256, 512], &[]);
    let mut c = Corpus::new("proofs");
    for fixture in 0u8..6 {
        c.random(60 + u64::from(fixture), &[96, 600], &[fixture]);
    }
    let mut c = Corpus::new("repair");
    for fixture in 0u8..6 {
        // Fixture, deferred root, FEC, forged-chunk bits, probe cap; then the operations.
        for (deferred, forge) in [(0u8, 0x0101_0101_0101_0101u64), (1, 0x8000_0000_0000_0001)] {
            let mut prefix = vec![fixture, deferred, 1];
            prefix.extend_from_slice(&forge.to_le_bytes());
            prefix.push(200);
            c.random(70 + u64::from(fixture), &[256, 2048], &prefix);
        }
    }
    let mut c = Corpus::new("chunk_key");
    c.random(80, &[64, 128, 256, 600], &[]);
    let mut c = Corpus::new("manifest_size");
    c.random(90, &[64, 128, 512, 2048], &[]);
    gtudp();
    println!(
        "seed corpora written under {}",
        root().join("fuzz/corpus").display()
    );
}
