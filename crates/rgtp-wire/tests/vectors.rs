//! Checks every record of `spec/vectors/packets.txt` (format in its header).

use rgtp_wire::{
    ChunkData, ChunkDataWithProof, Error, FecParity, IndexList, Keepalive, Manifest, ManifestFlags,
    Nak, NakFlags, PullFlags, PullRequest, RateReport, Repr, MAX_PAYLOAD_UDP, PROOF_RUN,
};

const VECTORS: &str = include_str!(concat!(
    env!("CARGO_MANIFEST_DIR"),
    "/../../spec/vectors/packets.txt"
));

#[path = "support/packet_records.rs"]
mod packet_records;
use packet_records::{records, Record};

impl Record {
    fn get(&self, key: &str) -> &str {
        self.fields
            .get(key)
            .unwrap_or_else(|| panic!("{}: missing `{key}`", self.name))
    }

    fn int(&self, key: &str) -> u64 {
        let value = self.get(key);
        match value.strip_prefix("0x") {
            Some(hex) => u64::from_str_radix(hex, 16),
            None => value.parse(),
        }
        .unwrap_or_else(|e| panic!("{}: `{key}`: {e}", self.name))
    }

    fn int_as<T: TryFrom<u64>>(&self, key: &str) -> T {
        T::try_from(self.int(key)).unwrap_or_else(|_| panic!("{}: `{key}` out of range", self.name))
    }

    fn bytes(&self, key: &str) -> Vec<u8> {
        let compact: String = self.get(key).split_whitespace().collect();
        hex::decode(compact).unwrap_or_else(|e| panic!("{}: `{key}`: {e}", self.name))
    }

    fn array<const N: usize>(&self, key: &str) -> [u8; N] {
        self.bytes(key)
            .try_into()
            .unwrap_or_else(|_| panic!("{}: `{key}` needs {N} bytes", self.name))
    }

    fn token(&self) -> Option<[u8; 16]> {
        self.fields
            .contains_key("token")
            .then(|| self.array("token"))
    }

    fn rate_cap(&self) -> Option<u64> {
        self.fields
            .contains_key("rate_cap")
            .then(|| self.int("rate_cap"))
    }

    fn max_payload(&self) -> usize {
        if self.fields.contains_key("max_payload") {
            self.int_as("max_payload")
        } else {
            MAX_PAYLOAD_UDP
        }
    }
}

/// The error's name as written in the vectors file.
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

/// Owned storage the repr of a valid record borrows from.
struct Owned {
    proof: Vec<u8>,
    payload: Vec<u8>,
    indices: Vec<u32>,
}

fn owned(record: &Record) -> Owned {
    let optional = |key: &str| {
        if record.fields.contains_key(key) {
            record.bytes(key)
        } else {
            Vec::new()
        }
    };
    let indices = match record.fields.get("indices") {
        Some(list) if !list.is_empty() => list
            .split(',')
            .map(|entry| {
                let entry = entry.trim();
                match entry.strip_prefix("0x") {
                    Some(hex) => u32::from_str_radix(hex, 16),
                    None => entry.parse(),
                }
                .unwrap_or_else(|e| panic!("{}: index `{entry}`: {e}", record.name))
            })
            .collect(),
        _ => Vec::new(),
    };
    Owned {
        proof: optional("proof"),
        payload: optional("payload"),
        indices,
    }
}

fn build<'a>(record: &Record, owned: &'a Owned) -> Repr<'a> {
    let exposure_id = record.array("exposure_id");
    match record.get("type") {
        "PullRequest" => Repr::PullRequest(PullRequest {
            exposure_id,
            window_size: record.int_as("window_size"),
            loss_rate_q16: record.int_as("loss_rate_q16"),
            flags: PullFlags::from_bits_retain(record.int_as("flags")),
            version_min: record.int_as("version_min"),
            version_max: record.int_as("version_max"),
        }),
        "Manifest" => Repr::Manifest(Manifest {
            exposure_id,
            total_size: record.int("total_size"),
            chunk_count: record.int_as("chunk_count"),
            chunk_size: record.int_as("chunk_size"),
            merkle_root: record.array("merkle_root"),
            fec_n: record.int_as("fec_n"),
            fec_k: record.int_as("fec_k"),
            flags: ManifestFlags::from_bits_retain(record.int_as("flags")),
            token: record.token(),
            rate_cap: record.rate_cap(),
        }),
        "ChunkData" => Repr::ChunkData(ChunkData {
            exposure_id,
            chunk_index: record.int_as("chunk_index"),
            payload: &owned.payload,
        }),
        "ChunkDataWithProof" => Repr::ChunkDataWithProof(ChunkDataWithProof {
            exposure_id,
            chunk_index: record.int_as("chunk_index"),
            proof: &owned.proof,
            payload: &owned.payload,
        }),
        "FecParity" => Repr::FecParity(FecParity {
            exposure_id,
            block_index: record.int_as("block_index"),
            parity_index: record.int_as("parity_index"),
            fec_n: record.int_as("fec_n"),
            fec_k: record.int_as("fec_k"),
            payload: &owned.payload,
        }),
        "Nak" => Repr::Nak(Nak {
            exposure_id,
            flags: NakFlags::from_bits_retain(record.int_as("flags")),
            indices: IndexList::Slice(&owned.indices),
            token: record.token(),
        }),
        "RateReport" => Repr::RateReport(RateReport {
            exposure_id,
            rtt_us: record.int_as("rtt_us"),
            loss_rate_q16: record.int_as("loss_rate_q16"),
            window_size: record.int_as("window_size"),
            timestamp_us: record.int("timestamp_us"),
        }),
        "Keepalive" => Repr::Keepalive(Keepalive {
            exposure_id,
            timestamp_us: record.int("timestamp_us"),
        }),
        other => panic!("{}: unknown type `{other}`", record.name),
    }
}

#[test]
fn test_vectors() {
    let records = records(VECTORS);
    let mut seen_types = std::collections::BTreeSet::new();
    let mut seen_errors = std::collections::BTreeSet::new();
    for record in &records {
        let bytes = record.bytes("hex");
        if record.valid {
            let owned = owned(record);
            let repr = build(record, &owned);
            seen_types.insert(record.get("type").to_owned());
            assert_eq!(repr.check(), Ok(()), "{}", record.name);
            assert_eq!(repr.buffer_len(), bytes.len(), "{}", record.name);
            let mut buf = vec![0xa5; repr.buffer_len()];
            repr.emit(&mut buf);
            assert_eq!(
                hex::encode(&buf),
                hex::encode(&bytes),
                "{}: emit",
                record.name
            );
            assert_eq!(
                Repr::parse(&bytes, record.max_payload()),
                Ok(repr),
                "{}: parse",
                record.name
            );
        } else {
            let expected = record.get("error");
            let result = Repr::parse(&bytes, record.max_payload());
            let got = match result {
                Ok(repr) => panic!("{}: parsed as {repr:?}, expected {expected}", record.name),
                Err(e) => error_name(&e),
            };
            assert_eq!(got, expected, "{}", record.name);
            seen_errors.insert(expected.split('(').next().unwrap_or_default().to_owned());
        }
    }
    // The file covers every packet type and every error class.
    assert_eq!(seen_types.len(), 8, "{seen_types:?}");
    assert_eq!(seen_errors.len(), 9, "{seen_errors:?}");
}

/// The record named `name`, parsed.
fn parsed<'a>(records: &'a [Record], name: &str) -> (&'a Record, Vec<u8>) {
    let record = records
        .iter()
        .find(|r| r.name == name)
        .unwrap_or_else(|| panic!("no record `{name}`"));
    (record, record.bytes("hex"))
}

#[test]
fn proof_runs_vectors_carry_the_defined_bits() {
    let records = records(VECTORS);

    let (r, bytes) = parsed(&records, "pull_request_proof_runs");
    let Ok(Repr::PullRequest(p)) = Repr::parse(&bytes, r.max_payload()) else {
        panic!("{}: not a Pull_Request", r.name);
    };
    assert_eq!(
        p.flags,
        PullFlags::PROOFS
            | PullFlags::ADDR_VALIDATION
            | PullFlags::RATE_CAP
            | PullFlags::PROOF_RUNS
    );

    for name in ["manifest_proof_runs", "manifest_token_rate_cap_proof_runs"] {
        let (r, bytes) = parsed(&records, name);
        let Ok(Repr::Manifest(m)) = Repr::parse(&bytes, r.max_payload()) else {
            panic!("{name}: not a Manifest");
        };
        assert!(m.flags.contains(ManifestFlags::PROOF_RUNS), "{name}");
    }
    // PROOF_RUNS adds no bytes: the same Manifest without it is as long.
    let (r, bytes) = parsed(&records, "manifest_token_rate_cap_proof_runs");
    let Ok(Repr::Manifest(mut m)) = Repr::parse(&bytes, r.max_payload()) else {
        panic!("{}: not a Manifest", r.name);
    };
    m.flags -= ManifestFlags::PROOF_RUNS;
    assert_eq!(Repr::Manifest(m).buffer_len(), bytes.len());

    let (r, bytes) = parsed(&records, "nak_proof_runs");
    let Ok(Repr::Nak(n)) = Repr::parse(&bytes, r.max_payload()) else {
        panic!("{}: not a NAK", r.name);
    };
    assert_eq!(n.flags, NakFlags::PROOFS | NakFlags::PROOF_RUNS);
    let heads: Vec<u32> = n.indices.iter().filter(|i| i % PROOF_RUN == 0).collect();
    assert_eq!(heads, [0, 64], "the entries answered with their proofs");
    assert!(n.indices.iter().any(|i| i % PROOF_RUN != 0));

    // The undefined-bit vectors use bit 9, the lowest bit ManifestFlags does not define.
    let lowest_undefined = (ManifestFlags::all().bits() + 1).trailing_zeros();
    assert_eq!(
        lowest_undefined, 9,
        "ManifestFlags defines a new bit: move the undefined-bit vectors above it"
    );
    for name in [
        "manifest_undefined_flag",
        "manifest_proof_runs_undefined_flag",
    ] {
        let (r, bytes) = parsed(&records, name);
        assert_eq!(r.get("error"), "BadFlags", "{name}");
        let flags = u16::from_be_bytes([bytes[70], bytes[71]]);
        assert_ne!(flags & (1 << lowest_undefined), 0, "{name}: {flags:#06x}");
    }
}
