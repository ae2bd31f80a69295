//! `spec/vectors/tej.txt`: frames built field by field by an independent
//! generator must decode to the files and message listed, in one piece and
//! byte by byte, and encode back to the same bytes; malformed streams must
//! fail with the error listed.

use std::path::Path;

use redgiant_tej::wire::{encode_frame, DecodeError, Decoder, Event, Limits};

#[derive(Debug, Default, PartialEq, Eq)]
struct Frame {
    status: u8,
    files: Vec<(String, Vec<u8>)>,
    message: Vec<u8>,
}

/// Decodes `bytes` fed in pieces of `step`; the frames completed, or the error.
fn decode(bytes: &[u8], step: usize, limits: Limits) -> Result<Vec<Frame>, DecodeError> {
    let mut dec = Decoder::new(limits);
    let mut frames = Vec::new();
    let mut cur = Frame::default();
    for mut piece in bytes.chunks(step) {
        loop {
            let (used, ev) = dec.decode(piece)?;
            piece = &piece[used..];
            match ev {
                None => break,
                Some(Event::FrameStart { status, .. }) => cur.status = status,
                Some(Event::FileStart { name, .. }) => cur.files.push((name.into(), Vec::new())),
                Some(Event::FileData(d)) => cur.files.last_mut().unwrap().1.extend_from_slice(d),
                Some(Event::Message(m)) => cur.message = m.to_vec(),
                Some(Event::FrameEnd) => frames.push(std::mem::take(&mut cur)),
                Some(_) => {}
            }
        }
    }
    dec.finish()?;
    Ok(frames)
}

fn error_name(e: &DecodeError) -> &'static str {
    match e {
        DecodeError::MsbZero { .. } => "msb-zero",
        DecodeError::BadVersion { .. } => "bad-version",
        DecodeError::TooManyFiles { .. } => "too-many-files",
        DecodeError::NameTooLong { .. } => "name-too-long",
        DecodeError::NameNotUtf8 { .. } => "name-not-utf8",
        DecodeError::MessageTooLarge { .. } => "message-too-large",
        DecodeError::Truncated => "truncated",
        _ => "other",
    }
}

#[test]
fn tej_vectors() {
    let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../spec/vectors/tej.txt");
    let text = std::fs::read_to_string(path).expect("spec/vectors/tej.txt");
    let limits = Limits {
        max_files: 4,
        max_name_len: 16,
        max_message: 64,
        stream_message: false,
    };
    let (mut good, mut bad) = (0, 0);
    let body: String = text
        .lines()
        .filter(|l| !l.starts_with('#'))
        .collect::<Vec<_>>()
        .join("\n");
    for record in body.split("\n\n").filter(|r| !r.trim().is_empty()) {
        let mut name = "";
        let mut frame = Vec::new();
        let mut want = Frame::default();
        let mut error = None;
        for line in record.lines().filter(|l| !l.trim().is_empty()) {
            let (k, v) = line
                .split_once(" = ")
                .or_else(|| line.split_once(" ="))
                .expect(line);
            let v = v.trim();
            match k.trim() {
                "name" => name = v,
                "frame" => frame = hex::decode(v).unwrap(),
                "status" => want.status = v.parse().unwrap(),
                "file" => {
                    let (n, d) = v.split_once(':').unwrap();
                    let n = String::from_utf8(hex::decode(n).unwrap()).unwrap();
                    want.files.push((n, hex::decode(d).unwrap()));
                }
                "message" => want.message = hex::decode(v).unwrap(),
                "error" => error = Some(v.to_string()),
                k => panic!("unknown key {k}"),
            }
        }
        match error {
            None => {
                good += 1;
                for step in [frame.len(), 1, 3] {
                    let got =
                        decode(&frame, step, limits).unwrap_or_else(|e| panic!("{name}: {e}"));
                    assert_eq!(got, [want], "{name} (pieces of {step})");
                    want = got.into_iter().next().unwrap();
                }
                let files: Vec<(&str, &[u8])> = want
                    .files
                    .iter()
                    .map(|(n, d)| (n.as_str(), d.as_slice()))
                    .collect();
                assert_eq!(
                    encode_frame(want.status, &files, &want.message).unwrap(),
                    frame,
                    "{name}: encoding"
                );
            }
            Some(e) => {
                bad += 1;
                for step in [frame.len(), 1] {
                    let got = decode(&frame, step, limits).expect_err(name);
                    assert_eq!(error_name(&got), e, "{name}: {got}");
                }
            }
        }
    }
    assert!(good >= 5 && bad >= 7, "{good} good and {bad} bad vectors");
}
