//! Reads `spec/vectors/packets.txt` into records (format in the file's header).
//! Shared by the tests that check the vectors (`#[path]`-included).

use std::collections::BTreeMap;

/// One vector: `name:` (valid) or `invalid:` and its `key = value` fields.
#[derive(Debug)]
pub struct Record {
    /// Started by `name:` rather than `invalid:`.
    pub valid: bool,
    /// The record's name.
    pub name: String,
    /// Its fields.
    pub fields: BTreeMap<String, String>,
}

/// The records of a vectors file's text.
pub fn records(text: &str) -> Vec<Record> {
    let mut out: Vec<Record> = Vec::new();
    for (n, line) in text.lines().enumerate() {
        let line = line.trim();
        if line.is_empty() || line.starts_with('#') {
            continue;
        }
        if let Some(name) = line.strip_prefix("name:") {
            out.push(Record {
                valid: true,
                name: name.trim().into(),
                fields: BTreeMap::new(),
            });
        } else if let Some(name) = line.strip_prefix("invalid:") {
            out.push(Record {
                valid: false,
                name: name.trim().into(),
                fields: BTreeMap::new(),
            });
        } else {
            let (key, value) = line
                .split_once('=')
                .unwrap_or_else(|| panic!("line {}: {line}", n + 1));
            let record = out
                .last_mut()
                .unwrap_or_else(|| panic!("line {}: field before record", n + 1));
            let old = record.fields.insert(key.trim().into(), value.trim().into());
            assert!(old.is_none(), "line {}: duplicate field", n + 1);
        }
    }
    out
}
