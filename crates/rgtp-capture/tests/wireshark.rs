//! Checks the Wireshark dissector `interop/wireshark/rgtp.lua` against
//! `rgtp-wire`: every record of `spec/vectors/packets.txt` is written into a
//! capture over UDP/IPv4, UDP/IPv6 (port 9000 and, for IPv4, a port only the
//! heuristic claims), raw Ethernet, raw Ethernet with an 802.1Q tag and raw
//! Ethernet padded to the 60-byte minimum; tshark runs the dissector over it,
//! and every packet's printed fields must be what `rgtp-wire` parses from the
//! same datagram (as `rgtp-capture`'s frame decoder finds it), and every
//! malformed one must carry the same error class. Captures in `pcaps/` are
//! checked the same way.
//!
//! Needs tshark (`apt-get install tshark`); without it the test fails.

use std::collections::{BTreeMap, BTreeSet};
use std::fmt::Write as _;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::Command;

use redgiant_base::Peer;
use rgtp_capture::frame::{self, LinkLayer};
use rgtp_capture::{CaptureWriter, Vlan};
use rgtp_wire::{Error, Repr, MAX_PAYLOAD_ETHERNET, MAX_PAYLOAD_UDP};

const VECTORS: &str = include_str!(concat!(
    env!("CARGO_MANIFEST_DIR"),
    "/../../spec/vectors/packets.txt"
));

/// redgiant's own payload limit (spec §2.12), the dissector's `redgiant` setting.
const MAX_PAYLOAD_REDGIANT: usize = 65507;
/// The UDP port the dissector registers by default.
const RGTP_PORT: u16 = 9000;

fn workspace() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../..")
        .canonicalize()
        .expect("workspace root")
}

fn script() -> PathBuf {
    let path = workspace().join("interop/wireshark/rgtp.lua");
    assert!(path.is_file(), "{} is missing", path.display());
    path
}

// ---------------------------------------------------------------------------
// spec/vectors/packets.txt (format in its header; read as in rgtp-wire's tests)
// ---------------------------------------------------------------------------

#[path = "../../rgtp-wire/tests/support/packet_records.rs"]
mod packet_records;
use packet_records::{records, Record};

impl Record {
    fn bytes(&self) -> Vec<u8> {
        let compact: String = self.fields["hex"].split_whitespace().collect();
        unhex(&compact).unwrap_or_else(|| panic!("{}: bad hex", self.name))
    }

    fn max_payload(&self) -> Option<usize> {
        self.fields.get("max_payload").map(|v| {
            v.parse()
                .unwrap_or_else(|e| panic!("{}: max_payload: {e}", self.name))
        })
    }
}

fn unhex(s: &str) -> Option<Vec<u8>> {
    s.as_bytes()
        .chunks(2)
        .map(|pair| match pair {
            [_, _] => u8::from_str_radix(std::str::from_utf8(pair).ok()?, 16).ok(),
            _ => None,
        })
        .collect()
}

fn hex(bytes: &[u8]) -> String {
    let mut s = String::with_capacity(bytes.len() * 2);
    for b in bytes {
        let _ = write!(s, "{b:02x}");
    }
    s
}

/// The error's name as the vectors file (and the dissector's `rgtp.malformed`) writes it.
fn error_name(error: &Error) -> String {
    match error {
        Error::Truncated => "Truncated".into(),
        Error::UnknownVersion(v) => format!("UnknownVersion({v})"),
        Error::UnknownType(t) => format!("UnknownType({t})"),
        Error::LengthMismatch { declared, actual } => {
            format!("LengthMismatch({declared}, {actual})")
        }
        Error::BadLength => "BadLength".into(),
        Error::BadProofDepth => "BadProofDepth".into(),
        Error::BadNakCount => "BadNakCount".into(),
        Error::PayloadTooLarge => "PayloadTooLarge".into(),
        Error::BadFlags => "BadFlags".into(),
        other => format!("{other:?}"),
    }
}

/// The dissector's expert item for an error class.
fn expert_field(error: &Error) -> &'static str {
    match error {
        Error::Truncated => "rgtp.malformed.truncated",
        Error::UnknownVersion(_) => "rgtp.malformed.unknown_version",
        Error::UnknownType(_) => "rgtp.malformed.unknown_type",
        Error::LengthMismatch { .. } => "rgtp.malformed.length_mismatch",
        Error::BadLength => "rgtp.malformed.bad_length",
        Error::BadProofDepth => "rgtp.malformed.bad_proof_depth",
        Error::BadNakCount => "rgtp.malformed.bad_nak_count",
        Error::PayloadTooLarge => "rgtp.malformed.payload_too_large",
        Error::BadFlags => "rgtp.malformed.bad_flags",
        other => panic!("no expert item for {other:?}"),
    }
}

// ---------------------------------------------------------------------------
// tshark fields
// ---------------------------------------------------------------------------

#[derive(Clone, Copy, PartialEq, Eq)]
enum Kind {
    /// Integers, printed decimal or 0x-hex, several comma-separated.
    Int,
    /// Booleans, printed 1/0 or True/False.
    Bool,
    /// Byte strings, printed as hex (colons removed), several comma-separated.
    Bytes,
    /// Printed as is.
    Str,
    /// Present or not (expert items, Lua errors).
    Presence,
}

/// Every field the test reads, in `-e` order (frame.number first).
const FIELDS: &[(&str, Kind)] = &[
    ("frame.number", Kind::Int),
    ("rgtp.version", Kind::Int),
    ("rgtp.type", Kind::Int),
    ("rgtp.length", Kind::Int),
    ("rgtp.exposure_id", Kind::Bytes),
    ("rgtp.malformed", Kind::Str),
    ("rgtp.pull.window_size", Kind::Int),
    ("rgtp.pull.loss_rate_q16", Kind::Int),
    ("rgtp.pull.flags", Kind::Int),
    ("rgtp.pull.flags.proofs", Kind::Bool),
    ("rgtp.pull.flags.fec", Kind::Bool),
    ("rgtp.pull.flags.addr_validation", Kind::Bool),
    ("rgtp.pull.flags.rate_cap", Kind::Bool),
    ("rgtp.pull.flags.proof_runs", Kind::Bool),
    ("rgtp.pull.version_min", Kind::Int),
    ("rgtp.pull.version_max", Kind::Int),
    ("rgtp.manifest.total_size", Kind::Int),
    ("rgtp.manifest.chunk_count", Kind::Int),
    ("rgtp.manifest.chunk_size", Kind::Int),
    ("rgtp.manifest.merkle_root", Kind::Bytes),
    ("rgtp.manifest.fec_n", Kind::Int),
    ("rgtp.manifest.fec_k", Kind::Int),
    ("rgtp.manifest.flags", Kind::Int),
    ("rgtp.manifest.flags.aes_256_gcm", Kind::Bool),
    ("rgtp.manifest.flags.hash_sha256", Kind::Bool),
    ("rgtp.manifest.flags.hash_blake3", Kind::Bool),
    ("rgtp.manifest.flags.fec_raptorq", Kind::Bool),
    ("rgtp.manifest.flags.proofs", Kind::Bool),
    ("rgtp.manifest.flags.token", Kind::Bool),
    ("rgtp.manifest.flags.derived_key", Kind::Bool),
    ("rgtp.manifest.flags.rate_cap", Kind::Bool),
    ("rgtp.manifest.flags.proof_runs", Kind::Bool),
    ("rgtp.manifest.rate_cap", Kind::Int),
    ("rgtp.chunk.index", Kind::Int),
    ("rgtp.chunk.payload", Kind::Bytes),
    ("rgtp.chunk.payload_len", Kind::Int),
    ("rgtp.proof.depth", Kind::Int),
    ("rgtp.proof.node", Kind::Bytes),
    ("rgtp.fec.block_index", Kind::Int),
    ("rgtp.fec.parity_index", Kind::Int),
    ("rgtp.fec.fec_n", Kind::Int),
    ("rgtp.fec.fec_k", Kind::Int),
    ("rgtp.fec.payload", Kind::Bytes),
    ("rgtp.nak.count", Kind::Int),
    ("rgtp.nak.flags", Kind::Int),
    ("rgtp.nak.flags.token", Kind::Bool),
    ("rgtp.nak.flags.proofs", Kind::Bool),
    ("rgtp.nak.flags.proof_runs", Kind::Bool),
    ("rgtp.nak.entry", Kind::Int),
    ("rgtp.nak.entry.parity", Kind::Bool),
    ("rgtp.nak.entry.chunk", Kind::Int),
    ("rgtp.nak.entry.block", Kind::Int),
    ("rgtp.nak.entry.parity_index", Kind::Int),
    ("rgtp.rate.rtt_us", Kind::Int),
    ("rgtp.rate.loss_rate_q16", Kind::Int),
    ("rgtp.rate.window_size", Kind::Int),
    ("rgtp.rate.timestamp_us", Kind::Int),
    ("rgtp.keepalive.timestamp_us", Kind::Int),
    ("rgtp.token", Kind::Bytes),
    ("rgtp.padding", Kind::Bytes),
    ("rgtp.malformed.truncated", Kind::Presence),
    ("rgtp.malformed.unknown_version", Kind::Presence),
    ("rgtp.malformed.unknown_type", Kind::Presence),
    ("rgtp.malformed.length_mismatch", Kind::Presence),
    ("rgtp.malformed.bad_length", Kind::Presence),
    ("rgtp.malformed.bad_flags", Kind::Presence),
    ("rgtp.malformed.bad_proof_depth", Kind::Presence),
    ("rgtp.malformed.bad_nak_count", Kind::Presence),
    ("rgtp.malformed.payload_too_large", Kind::Presence),
    // Wireshark's own signs of a dissector failure.
    ("_ws.lua.error", Kind::Presence),
    ("_ws.malformed.expert", Kind::Presence),
];

/// Header and per-type fields, compared field by field for a well-formed packet.
fn is_packet_field(name: &str) -> bool {
    name.starts_with("rgtp.") && !name.starts_with("rgtp.malformed")
}

fn normalise(kind: Kind, raw: &str) -> String {
    let raw = raw.trim();
    if raw.is_empty() {
        return String::new();
    }
    match kind {
        Kind::Int => raw
            .split(',')
            .map(|v| {
                let v = v.trim();
                let n = match v.strip_prefix("0x") {
                    Some(h) => u64::from_str_radix(h, 16),
                    None => v.parse(),
                };
                n.map_or_else(|_| format!("?{v}"), |n| n.to_string())
            })
            .collect::<Vec<_>>()
            .join(","),
        Kind::Bool => raw
            .split(',')
            .map(|v| match v.trim() {
                "1" | "True" | "true" => "1",
                "0" | "False" | "false" => "0",
                _ => "?",
            })
            .collect::<Vec<_>>()
            .join(","),
        Kind::Bytes => raw
            .split(',')
            .map(|v| {
                let v = v.trim();
                if v == "<MISSING>" {
                    String::new()
                } else {
                    v.replace(':', "").to_ascii_lowercase()
                }
            })
            .collect::<Vec<_>>()
            .join(","),
        Kind::Str => raw.to_string(),
        Kind::Presence => "present".into(),
    }
}

/// One frame as tshark printed it: field → normalised value ("" when absent).
type Row = BTreeMap<&'static str, String>;

struct Tshark {
    rows: BTreeMap<u64, Row>,
}

fn tshark_binary() -> String {
    match Command::new("tshark").arg("--version").output() {
        Ok(out) if out.status.success() => "tshark".into(),
        Ok(out) => panic!(
            "`tshark --version` failed ({}): {}\nfix: apt-get install tshark",
            out.status,
            String::from_utf8_lossy(&out.stderr)
        ),
        Err(e) => panic!(
            "tshark is needed to test interop/wireshark/rgtp.lua but cannot be run ({e}).\n\
             fix: apt-get install tshark   (Debian/Ubuntu: DEBIAN_FRONTEND=noninteractive apt-get install -y tshark)"
        ),
    }
}

/// tshark reading `capture` with the dissector, in a clean profile (no personal
/// preferences or plugins) kept in the directory returned with it.
fn tshark_with_dissector(capture: &Path) -> (Command, tempfile::TempDir) {
    let home = tempfile::tempdir().expect("tempdir");
    let mut cmd = Command::new(tshark_binary());
    cmd.env("HOME", home.path())
        .env("XDG_CONFIG_HOME", home.path().join(".config"))
        .env("WIRESHARK_CONFIG_DIR", home.path().join("wireshark"))
        .arg("-n")
        .arg("-X")
        .arg(format!("lua_script:{}", script().display()))
        .arg("-r")
        .arg(capture);
    (cmd, home)
}

/// Runs tshark with the dissector over `capture` in a clean profile (no
/// personal preferences or plugins), with extra `args` (`-o`, `-d`).
fn run_tshark(capture: &Path, args: &[String]) -> Tshark {
    let (mut cmd, _home) = tshark_with_dissector(capture);
    cmd.args(args)
        .args(["-T", "fields", "-E", "separator=/t", "-E", "occurrence=a"])
        .args(["-E", "aggregator=,", "-E", "quote=n"]);
    for (name, _) in FIELDS {
        cmd.arg("-e").arg(name);
    }
    let out = cmd.output().expect("run tshark");
    let stderr = String::from_utf8_lossy(&out.stderr);
    let complaints: Vec<&str> = stderr
        .lines()
        .filter(|l| !l.trim().is_empty())
        .filter(|l| !l.contains("Running as user") && !l.contains("could be dangerous"))
        .collect();
    assert!(
        out.status.success(),
        "tshark failed ({}) on {}:\n{stderr}",
        out.status,
        capture.display()
    );
    for line in &complaints {
        let lower = line.to_ascii_lowercase();
        assert!(
            !lower.contains("lua") && !lower.contains("error"),
            "tshark complained on {}:\n{stderr}",
            capture.display()
        );
    }
    let stdout = String::from_utf8(out.stdout).expect("tshark output is UTF-8");
    let mut rows = BTreeMap::new();
    for line in stdout.lines() {
        let cols: Vec<&str> = line.split('\t').collect();
        assert_eq!(
            cols.len(),
            FIELDS.len(),
            "tshark printed {} columns, expected {}: {line:?}",
            cols.len(),
            FIELDS.len()
        );
        let mut row = Row::new();
        for ((name, kind), raw) in FIELDS.iter().zip(&cols) {
            row.insert(*name, normalise(*kind, raw));
        }
        let number: u64 = row["frame.number"].parse().expect("frame.number");
        rows.insert(number, row);
    }
    Tshark { rows }
}

// ---------------------------------------------------------------------------
// What the dissector must print, from rgtp-wire
// ---------------------------------------------------------------------------

fn join<T: ToString>(values: impl IntoIterator<Item = T>) -> String {
    values
        .into_iter()
        .map(|v| v.to_string())
        .collect::<Vec<_>>()
        .join(",")
}

fn bit(flags: u64, mask: u64) -> String {
    if flags & mask != 0 { "1" } else { "0" }.into()
}

/// Bytes after the packet in a raw Ethernet frame.
#[derive(Debug, Clone, Copy)]
enum Padding<'a> {
    /// Known bytes (frames the test wrote).
    Exact(&'a [u8]),
    /// Only the count is known (frames read back from a corpus).
    Len(usize),
}

impl Padding<'_> {
    /// Checks tshark's `rgtp.padding` (normalised hex).
    fn check(&self, got: &str) -> Result<(), String> {
        match *self {
            Padding::Exact(bytes) if got == hex(bytes) => Ok(()),
            Padding::Len(n) if got.len() == 2 * n => Ok(()),
            Padding::Exact(bytes) => Err(format!(
                "rgtp.padding = {got:?}, frame has {:?}",
                hex(bytes)
            )),
            Padding::Len(n) => Err(format!("rgtp.padding = {got:?}, frame has {n} bytes")),
        }
    }
}

/// Every packet field (see [`is_packet_field`]) of a well-formed packet,
/// except `rgtp.padding`.
fn expected_fields(repr: &Repr<'_>, data: &[u8]) -> Row {
    let mut m = Row::new();
    m.insert("rgtp.version", "1".into());
    m.insert("rgtp.type", (repr.packet_type() as u8).to_string());
    m.insert("rgtp.length", data.len().to_string());
    m.insert("rgtp.exposure_id", hex(repr.exposure_id()));
    match repr {
        Repr::PullRequest(p) => {
            let flags = u64::from(p.flags.bits());
            m.insert("rgtp.pull.window_size", p.window_size.to_string());
            m.insert("rgtp.pull.loss_rate_q16", p.loss_rate_q16.to_string());
            m.insert("rgtp.pull.flags", flags.to_string());
            m.insert("rgtp.pull.flags.proofs", bit(flags, 1));
            m.insert("rgtp.pull.flags.fec", bit(flags, 2));
            m.insert("rgtp.pull.flags.addr_validation", bit(flags, 4));
            m.insert("rgtp.pull.flags.rate_cap", bit(flags, 8));
            m.insert("rgtp.pull.flags.proof_runs", bit(flags, 0x10));
            m.insert("rgtp.pull.version_min", p.version_min.to_string());
            m.insert("rgtp.pull.version_max", p.version_max.to_string());
        }
        Repr::Manifest(p) => {
            let flags = u64::from(p.flags.bits());
            m.insert("rgtp.manifest.total_size", p.total_size.to_string());
            m.insert("rgtp.manifest.chunk_count", p.chunk_count.to_string());
            m.insert("rgtp.manifest.chunk_size", p.chunk_size.to_string());
            m.insert("rgtp.manifest.merkle_root", hex(&p.merkle_root));
            m.insert("rgtp.manifest.fec_n", p.fec_n.to_string());
            m.insert("rgtp.manifest.fec_k", p.fec_k.to_string());
            m.insert("rgtp.manifest.flags", flags.to_string());
            m.insert("rgtp.manifest.flags.aes_256_gcm", bit(flags, 0x01));
            m.insert("rgtp.manifest.flags.hash_sha256", bit(flags, 0x02));
            m.insert("rgtp.manifest.flags.hash_blake3", bit(flags, 0x04));
            m.insert("rgtp.manifest.flags.fec_raptorq", bit(flags, 0x08));
            m.insert("rgtp.manifest.flags.proofs", bit(flags, 0x10));
            m.insert("rgtp.manifest.flags.token", bit(flags, 0x20));
            m.insert("rgtp.manifest.flags.derived_key", bit(flags, 0x40));
            m.insert("rgtp.manifest.flags.rate_cap", bit(flags, 0x80));
            m.insert("rgtp.manifest.flags.proof_runs", bit(flags, 0x100));
            if let Some(cap) = p.rate_cap {
                m.insert("rgtp.manifest.rate_cap", cap.to_string());
            }
            if let Some(token) = &p.token {
                m.insert("rgtp.token", hex(token));
            }
        }
        Repr::ChunkData(p) => {
            m.insert("rgtp.chunk.index", p.chunk_index.to_string());
            m.insert("rgtp.chunk.payload", hex(p.payload));
            m.insert("rgtp.chunk.payload_len", p.payload.len().to_string());
        }
        Repr::ChunkDataWithProof(p) => {
            m.insert("rgtp.chunk.index", p.chunk_index.to_string());
            m.insert("rgtp.proof.depth", p.depth().to_string());
            m.insert("rgtp.proof.node", join(p.siblings().map(|h| hex(h))));
            m.insert("rgtp.chunk.payload", hex(p.payload));
            m.insert("rgtp.chunk.payload_len", p.payload.len().to_string());
        }
        Repr::FecParity(p) => {
            m.insert("rgtp.fec.block_index", p.block_index.to_string());
            m.insert("rgtp.fec.parity_index", p.parity_index.to_string());
            m.insert("rgtp.fec.fec_n", p.fec_n.to_string());
            m.insert("rgtp.fec.fec_k", p.fec_k.to_string());
            m.insert("rgtp.fec.payload", hex(p.payload));
        }
        Repr::Nak(p) => {
            let flags = u64::from(p.flags.bits());
            let entries: Vec<u32> = p.indices.iter().collect();
            let parity = |e: &&u32| **e & rgtp_wire::NAK_PARITY_BIT != 0;
            m.insert("rgtp.nak.count", entries.len().to_string());
            m.insert("rgtp.nak.flags", flags.to_string());
            m.insert("rgtp.nak.flags.token", bit(flags, 1));
            m.insert("rgtp.nak.flags.proofs", bit(flags, 2));
            m.insert("rgtp.nak.flags.proof_runs", bit(flags, 4));
            m.insert("rgtp.nak.entry", join(&entries));
            m.insert(
                "rgtp.nak.entry.parity",
                join(entries.iter().map(|e| u8::from(parity(&e)))),
            );
            m.insert(
                "rgtp.nak.entry.chunk",
                join(entries.iter().filter(|e| !parity(e))),
            );
            m.insert(
                "rgtp.nak.entry.block",
                join(entries.iter().filter(parity).map(|e| (e >> 8) & 0x7f_ffff)),
            );
            m.insert(
                "rgtp.nak.entry.parity_index",
                join(entries.iter().filter(parity).map(|e| e & 0xff)),
            );
            if let Some(token) = &p.token {
                m.insert("rgtp.token", hex(token));
            }
        }
        Repr::RateReport(p) => {
            m.insert("rgtp.rate.rtt_us", p.rtt_us.to_string());
            m.insert("rgtp.rate.loss_rate_q16", p.loss_rate_q16.to_string());
            m.insert("rgtp.rate.window_size", p.window_size.to_string());
            m.insert("rgtp.rate.timestamp_us", p.timestamp_us.to_string());
        }
        Repr::Keepalive(p) => {
            m.insert("rgtp.keepalive.timestamp_us", p.timestamp_us.to_string());
        }
    }
    m
}

/// How a frame's datagram reaches the dissector.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Carrier {
    /// Raw Ethernet, EtherType 0x88B5: always dissected.
    Ethernet,
    /// UDP to or from the registered port (or a `-d` port): dissected unless empty.
    UdpPort,
    /// UDP on another port: dissected only if the heuristic takes it.
    UdpHeuristic,
}

impl Carrier {
    fn of(src: Peer, dst: Peer, ports: &BTreeSet<u16>) -> Carrier {
        match (src, dst) {
            (Peer::Ip(s), Peer::Ip(t)) => {
                if ports.contains(&s.port()) || ports.contains(&t.port()) {
                    Carrier::UdpPort
                } else {
                    Carrier::UdpHeuristic
                }
            }
            _ => Carrier::Ethernet,
        }
    }
}

/// The heuristic's rule: the header checks of spec §2.13 pass.
fn heuristic_accepts(data: &[u8]) -> bool {
    const FIXED: [usize; 9] = [0, 36, 72, 24, 25, 28, 24, 44, 32];
    data.len() >= 24
        && data[0] == 1
        && (1..=8).contains(&data[1])
        && usize::from(u16::from_be_bytes([data[2], data[3]])) == data.len()
        && data.len() >= FIXED[usize::from(data[1])]
}

/// Checks one frame's row against rgtp-wire's parse of its datagram. Returns
/// the parse outcome's class name ("ok" or the error), for coverage counts.
fn check_frame(
    what: &str,
    row: Option<&Row>,
    data: &[u8],
    padding: Padding<'_>,
    carrier: Carrier,
    limit: usize,
    failures: &mut Vec<String>,
) -> Option<String> {
    let mut fail = |msg: String| failures.push(format!("{what}: {msg}"));
    let Some(row) = row else {
        fail("tshark printed no line for this frame".into());
        return None;
    };
    if !row["_ws.lua.error"].is_empty() {
        fail("Lua error in the dissector (run tshark -V to see it)".into());
    }
    if !row["_ws.malformed.expert"].is_empty() {
        fail("dissector threw an exception (Wireshark's \"Malformed Packet\")".into());
    }
    let claimed = match carrier {
        Carrier::Ethernet => true,
        // UDP never hands an empty payload to a subdissector.
        Carrier::UdpPort => !data.is_empty(),
        Carrier::UdpHeuristic => heuristic_accepts(data),
    };
    let shown = !row["rgtp.version"].is_empty() || !row["rgtp.malformed"].is_empty();
    if !claimed {
        if shown {
            fail(format!(
                "shown as RGTP, but the heuristic must not take {}",
                hex(data)
            ));
        }
        return None;
    }
    if !shown {
        fail(format!("not shown as RGTP: {}", hex(data)));
        return None;
    }
    if let Err(msg) = padding.check(&row["rgtp.padding"]) {
        fail(msg);
    }
    let parsed = Repr::parse(data, limit);
    match &parsed {
        Ok(repr) => {
            let expected = expected_fields(repr, data);
            if !row["rgtp.malformed"].is_empty() {
                fail(format!(
                    "flagged malformed ({}), but rgtp-wire parses it",
                    row["rgtp.malformed"]
                ));
            }
            for (name, _) in FIELDS
                .iter()
                .filter(|(n, _)| is_packet_field(n) && *n != "rgtp.padding")
            {
                let want = expected.get(name).map_or("", String::as_str);
                let got = &row[name];
                if got != want {
                    fail(format!("{name} = {got:?}, rgtp-wire says {want:?}"));
                }
            }
            for (name, kind) in FIELDS {
                if *kind == Kind::Presence && !row[name].is_empty() {
                    fail(format!("unexpected expert item {name}"));
                }
            }
            Some("ok".into())
        }
        Err(error) => {
            let want = error_name(error);
            if row["rgtp.malformed"] != want {
                fail(format!(
                    "rgtp.malformed = {:?}, rgtp-wire says {want:?}",
                    row["rgtp.malformed"]
                ));
            }
            let expert = expert_field(error);
            for (name, kind) in FIELDS {
                if *kind == Kind::Presence && name.starts_with("rgtp.malformed.") {
                    let present = !row[name].is_empty();
                    if present != (*name == expert) {
                        fail(format!(
                            "expert item {name} {}",
                            if present { "present" } else { "missing" }
                        ));
                    }
                }
            }
            // Header fields are shown as far as the datagram has them.
            let header = [
                ("rgtp.version", data.first().map(|v| v.to_string())),
                ("rgtp.type", data.get(1).map(|v| v.to_string())),
                (
                    "rgtp.length",
                    data.get(2..4)
                        .map(|b| u16::from_be_bytes([b[0], b[1]]).to_string()),
                ),
            ];
            for (name, want) in header {
                let want = want.unwrap_or_default();
                if row[name] != want {
                    fail(format!("{name} = {:?}, datagram has {want:?}", row[name]));
                }
            }
            Some(want.split('(').next().unwrap_or_default().to_string())
        }
    }
}

// ---------------------------------------------------------------------------
// Captures
// ---------------------------------------------------------------------------

fn ip(s: &str) -> Peer {
    Peer::Ip(s.parse::<SocketAddr>().expect("socket address"))
}

const MAC_A: [u8; 6] = [0x02, 0x52, 0x47, 0x00, 0x00, 0x01];
const MAC_B: [u8; 6] = [0x02, 0x52, 0x47, 0x00, 0x00, 0x02];

/// One frame written to a capture, and what it carries.
struct Written {
    what: String,
    frame: Vec<u8>,
}

struct Builder {
    writer: CaptureWriter<Vec<u8>>,
    frames: Vec<Written>,
}

impl Builder {
    fn new() -> Builder {
        Builder {
            writer: CaptureWriter::new(Vec::new()).expect("capture header"),
            frames: Vec::new(),
        }
    }

    fn frame(&mut self, what: String, frame: Vec<u8>) {
        let ts = 1_748_217_600_000_000 + self.frames.len() as u64;
        self.writer.write_frame(ts, &frame).expect("write frame");
        self.frames.push(Written { what, frame });
    }

    fn datagram(&mut self, what: String, src: Peer, dst: Peer, vlan: Option<Vlan>, payload: &[u8]) {
        let mut frame = Vec::new();
        frame::build(src, dst, vlan, payload, &mut frame);
        self.frame(what, frame);
    }

    /// Every way the dissector can see `payload`.
    fn all_carriers(&mut self, name: &str, payload: &[u8]) {
        let udp4 = |p: u16| ip(&format!("192.0.2.1:{p}"));
        let udp4b = |p: u16| ip(&format!("192.0.2.2:{p}"));
        self.datagram(
            format!("{name} over UDP/IPv4"),
            udp4(40000),
            udp4b(RGTP_PORT),
            None,
            payload,
        );
        self.datagram(
            format!("{name} over UDP/IPv6"),
            ip(&format!("[2001:db8::2]:{RGTP_PORT}")),
            ip("[2001:db8::1]:40000"),
            None,
            payload,
        );
        self.datagram(
            format!("{name} over UDP/IPv4, heuristic"),
            udp4(40001),
            udp4b(40002),
            None,
            payload,
        );
        self.datagram(
            format!("{name} over raw Ethernet"),
            Peer::Ethernet(MAC_A),
            Peer::Ethernet(MAC_B),
            None,
            payload,
        );
        self.datagram(
            format!("{name} over raw Ethernet, 802.1Q"),
            Peer::Ethernet(MAC_B),
            Peer::Ethernet(MAC_A),
            Some(Vlan {
                id: 5,
                pcp: 3,
                dei: false,
            }),
            payload,
        );
        // As a receiving NIC delivers it: padded to the 60-byte minimum.
        let mut frame = Vec::new();
        frame::build(
            Peer::Ethernet(MAC_A),
            Peer::Ethernet(MAC_B),
            None,
            payload,
            &mut frame,
        );
        if frame.len() < 60 {
            frame.resize(60, 0);
            self.frame(format!("{name} over raw Ethernet, padded"), frame);
        }
    }

    fn finish(self, dir: &Path, file: &str) -> (PathBuf, Vec<Written>) {
        let path = dir.join(file);
        let bytes = self.writer.into_inner().expect("finish capture");
        std::fs::write(&path, bytes).expect("write capture");
        (path, self.frames)
    }
}

/// Checks every frame of a capture the test wrote.
fn check_written(
    path: &Path,
    frames: &[Written],
    tshark_args: &[String],
    limit_udp: usize,
    limit_ethernet: usize,
    failures: &mut Vec<String>,
) -> (Tshark, BTreeMap<String, usize>) {
    let out = run_tshark(path, tshark_args);
    let ports = BTreeSet::from([RGTP_PORT]);
    let mut seen = BTreeMap::new();
    for (i, w) in frames.iter().enumerate() {
        let number = i as u64 + 1;
        let d = frame::decode(LinkLayer::Ethernet, &w.frame).unwrap_or_else(|e| {
            panic!("{}: rgtp-capture cannot decode its own frame: {e}", w.what)
        });
        let carrier = Carrier::of(d.src, d.dst, &ports);
        let limit = if carrier == Carrier::Ethernet {
            limit_ethernet
        } else {
            limit_udp
        };
        let padding = Padding::Exact(&w.frame[w.frame.len() - d.padding..]);
        let what = format!("{} (frame {number} of {})", w.what, path.display());
        if let Some(class) = check_frame(
            &what,
            out.rows.get(&number),
            d.payload,
            padding,
            carrier,
            limit,
            failures,
        ) {
            *seen.entry(class).or_default() += 1;
        }
    }
    (out, seen)
}

fn report(failures: &[String]) {
    if !failures.is_empty() {
        let shown: Vec<&str> = failures.iter().take(60).map(String::as_str).collect();
        panic!(
            "{} mismatch(es) between interop/wireshark/rgtp.lua and rgtp-wire:\n  {}{}",
            failures.len(),
            shown.join("\n  "),
            if failures.len() > shown.len() {
                "\n  ..."
            } else {
                ""
            }
        );
    }
}

#[test]
fn dissector_agrees_with_rgtp_wire_on_every_vector() {
    let records = records(VECTORS);
    assert!(records.len() > 40, "too few vectors read");
    let dir = tempfile::tempdir().expect("tempdir");
    let mut failures = Vec::new();

    // The vectors' own expectations hold for rgtp-wire (as in its tests).
    for r in &records {
        let bytes = r.bytes();
        let limit = r.max_payload().unwrap_or(MAX_PAYLOAD_UDP);
        match (r.valid, Repr::parse(&bytes, limit)) {
            (true, Ok(_)) => {}
            (false, Err(e)) => assert_eq!(error_name(&e), r.fields["error"], "{}", r.name),
            (valid, result) => panic!("{}: valid = {valid}, rgtp-wire: {result:?}", r.name),
        }
    }

    // 1. Every record over every carrier, default preferences. Records with
    //    their own payload limit are included too: the expectation is
    //    rgtp-wire's parse under the dissector's default limits.
    let mut b = Builder::new();
    for r in &records {
        b.all_carriers(&r.name, &r.bytes());
    }
    let (path, frames) = b.finish(dir.path(), "vectors.pcap");
    let (_, seen) = check_written(
        &path,
        &frames,
        &[],
        MAX_PAYLOAD_UDP,
        MAX_PAYLOAD_ETHERNET,
        &mut failures,
    );
    eprintln!(
        "{}: {} frames, outcomes {seen:?}",
        path.display(),
        frames.len()
    );
    // Every type parsed, every error class flagged.
    let classes: BTreeSet<&str> = seen.keys().map(String::as_str).collect();
    for class in [
        "ok",
        "Truncated",
        "UnknownVersion",
        "UnknownType",
        "LengthMismatch",
        "BadLength",
        "BadFlags",
        "BadProofDepth",
        "BadNakCount",
        "PayloadTooLarge",
    ] {
        assert!(
            classes.contains(class),
            "no frame of class {class}: {seen:?}"
        );
    }

    // 2. The malformed records exactly as the vectors file has them: over UDP,
    //    with the record's payload limit, the dissector's class is the
    //    record's `error` line.
    let mut by_limit: BTreeMap<usize, Vec<&Record>> = BTreeMap::new();
    for r in records.iter().filter(|r| !r.valid) {
        by_limit
            .entry(r.max_payload().unwrap_or(MAX_PAYLOAD_UDP))
            .or_default()
            .push(r);
    }
    for (limit, group) in by_limit {
        let mut b = Builder::new();
        for r in &group {
            b.datagram(
                format!("{} (max_payload {limit})", r.name),
                ip("192.0.2.1:40000"),
                ip(&format!("192.0.2.2:{RGTP_PORT}")),
                None,
                &r.bytes(),
            );
        }
        let (path, frames) = b.finish(dir.path(), &format!("malformed-{limit}.pcap"));
        let args = vec![
            "-o".to_string(),
            "rgtp.payload_limit:custom".to_string(),
            "-o".to_string(),
            format!("rgtp.max_payload:{limit}"),
        ];
        let (out, _) = check_written(&path, &frames, &args, limit, limit, &mut failures);
        for (i, r) in group.iter().enumerate() {
            if r.bytes().is_empty() {
                continue; // never handed to a UDP subdissector; checked over Ethernet above
            }
            let got = out
                .rows
                .get(&(i as u64 + 1))
                .map_or("", |row| row["rgtp.malformed"].as_str());
            if got != r.fields["error"] {
                failures.push(format!(
                    "{}: rgtp.malformed = {got:?}, the vectors say {:?}",
                    r.name, r.fields["error"]
                ));
            }
        }
    }
    report(&failures);
}

#[test]
fn dissector_agrees_with_rgtp_wire_on_the_pcaps_corpus() {
    let dir = workspace().join("pcaps");
    let mut files: Vec<PathBuf> = match std::fs::read_dir(&dir) {
        Ok(entries) => entries
            .filter_map(|e| e.ok().map(|e| e.path()))
            .filter(|p| {
                matches!(
                    p.extension().and_then(|e| e.to_str()),
                    Some("pcap") | Some("pcapng")
                )
            })
            // gtUDP and TEJ captures have dissectors and a test of their own.
            .filter(|p| {
                let name = p.file_name().and_then(|n| n.to_str()).unwrap_or("");
                !name.starts_with("gtudp-") && !name.starts_with("tej-")
            })
            .collect(),
        Err(_) => Vec::new(),
    };
    files.sort();
    // Even without a corpus tshark must be there: this test never skips.
    tshark_binary();
    let mut failures = Vec::new();
    for path in &files {
        let bytes = std::fs::read(path).expect("read capture");
        let capture =
            rgtp_capture::read(&bytes).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
        // Decode every UDP port that carries well-formed RGTP as RGTP (the
        // corpus may use ports other dissectors claim first).
        let mut ports = BTreeSet::from([RGTP_PORT]);
        for (_, d) in capture.datagrams() {
            if Repr::parse(&d.payload, MAX_PAYLOAD_REDGIANT).is_ok() {
                for peer in [d.src, d.dst] {
                    if let Peer::Ip(a) = peer {
                        ports.insert(a.port());
                    }
                }
            }
        }
        let mut args = vec!["-o".to_string(), "rgtp.payload_limit:redgiant".to_string()];
        for port in &ports {
            args.push("-d".into());
            args.push(format!("udp.port=={port},rgtp"));
        }
        let out = run_tshark(path, &args);
        let mut checked = 0usize;
        for (record, d) in capture.datagrams() {
            let number = record.index as u64 + 1;
            let carrier = Carrier::of(d.src, d.dst, &ports);
            if record.captured_len < record.orig_len {
                continue; // cut by the snapshot length
            }
            let padding = Padding::Len(d.padding);
            let what = format!("{} frame {number}", path.display());
            if check_frame(
                &what,
                out.rows.get(&number),
                &d.payload,
                padding,
                carrier,
                MAX_PAYLOAD_REDGIANT,
                &mut failures,
            )
            .is_some()
            {
                checked += 1;
            }
        }
        eprintln!("{}: {checked} RGTP packets checked", path.display());
    }
    report(&failures);
}

/// A UDP GSO send captured uncut (spec §1.4) is dissected packet by packet, on the
/// registered port and by the heuristic alike; a datagram that only looks like a
/// batch (one piece declaring another size) stays one malformed packet.
#[test]
fn dissector_cuts_a_batch_captured_uncut_into_its_packets() {
    let chunk = |i: u32, len: usize| {
        let payload = vec![0x5a; len];
        let r = Repr::ChunkData(rgtp_wire::ChunkData {
            exposure_id: [7; 16],
            chunk_index: i,
            payload: &payload,
        });
        let mut b = vec![0; r.buffer_len()];
        r.emit(&mut b);
        b
    };
    let batch = [chunk(0, 1216), chunk(1, 1216), chunk(2, 600)].concat();
    let mut odd = [chunk(3, 1216), chunk(4, 1216)].concat();
    odd[1240 + 3] ^= 1; // the second piece's Length no longer its size
    let dir = tempfile::tempdir().expect("tempdir");
    let path = dir.path().join("batch.pcap");
    let mut w = CaptureWriter::new(Vec::new()).expect("writer");
    let (x, p) = (ip("192.0.2.1:9000"), ip("192.0.2.2:40000"));
    let (hx, hp) = (ip("192.0.2.1:41000"), ip("192.0.2.2:40001"));
    w.write_datagram(1, x, p, None, &batch).expect("write");
    w.write_datagram(2, hx, hp, None, &batch).expect("write");
    w.write_datagram(3, x, p, None, &odd).expect("write");
    std::fs::write(&path, w.into_inner().expect("capture")).expect("write capture");

    let (mut cmd, _home) = tshark_with_dissector(&path);
    let out = cmd
        .args(["-T", "fields", "-E", "separator=/t", "-E", "occurrence=a"])
        .args(["-E", "aggregator=,", "-E", "quote=n"])
        .args([
            "-e",
            "rgtp.chunk.index",
            "-e",
            "rgtp.length",
            "-e",
            "rgtp.malformed",
        ])
        .output()
        .expect("run tshark");
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let stdout = String::from_utf8(out.stdout).expect("UTF-8");
    let rows: Vec<Vec<&str>> = stdout.lines().map(|l| l.split('\t').collect()).collect();
    assert_eq!(rows.len(), 3, "{stdout}");
    for row in &rows[..2] {
        assert_eq!(row[0], "0,1,2", "{stdout}");
        assert_eq!(row[1], "1240,1240,624", "{stdout}");
        assert_eq!(row[2], "", "{stdout}");
    }
    assert_eq!(rows[2][1], "1240", "one packet: {stdout}");
    assert!(rows[2][2].contains("LengthMismatch"), "{stdout}");
}
