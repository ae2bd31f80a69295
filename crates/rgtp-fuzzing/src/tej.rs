//! `tej`: the TEJ streaming decoder on any byte stream, cut at points the input picks.

use redgiant_tej::wire::{DecodeError, Decoder, Event, Limits};

/// What decoding a stream gave: the bytes the events stand for, frames, the error.
fn run(stream: &[u8], cuts: &[u8], limits: Limits) -> (Vec<u8>, u64, Option<DecodeError>) {
    let mut dec = Decoder::new(limits);
    let mut rebuilt = Vec::new();
    let mut rest = stream;
    let mut cut = cuts.iter().cycle();
    while !rest.is_empty() {
        let n = (usize::from(*cut.next().unwrap_or(&255)) + 1).min(rest.len());
        let (mut piece, tail) = rest.split_at(n);
        rest = tail;
        loop {
            match dec.decode(piece) {
                Ok((used, ev)) => {
                    let before = piece.len();
                    piece = &piece[used..];
                    assert!(used <= before);
                    match ev {
                        None => {
                            assert!(piece.is_empty(), "None before the input was used up");
                            break;
                        }
                        Some(ev) => rebuild(&ev, &mut rebuilt),
                    }
                }
                Err(e) => return (rebuilt, dec.frames(), Some(e)),
            }
        }
    }
    let end = dec.finish().err();
    (rebuilt, dec.frames(), end)
}

/// Appends the bytes `ev` stands for (the encoding is canonical).
fn rebuild(ev: &Event<'_>, out: &mut Vec<u8>) {
    match *ev {
        Event::FrameStart { status, file_count } => {
            assert!(status < 0x80);
            out.push(status | 0x80);
            out.push(1);
            out.extend_from_slice(&file_count.to_be_bytes());
        }
        Event::FileStart { name, len } => {
            out.extend_from_slice(&(name.len() as u16).to_be_bytes());
            out.extend_from_slice(name.as_bytes());
            out.extend_from_slice(&len.to_be_bytes());
        }
        Event::FileData(d) | Event::MessageData(d) => {
            assert!(!d.is_empty(), "empty data piece");
            out.extend_from_slice(d);
        }
        Event::Message(m) => {
            out.extend_from_slice(&(m.len() as u64).to_be_bytes());
            out.extend_from_slice(m);
        }
        Event::MessageStart { len } => out.extend_from_slice(&len.to_be_bytes()),
        Event::FileEnd | Event::FrameEnd => {}
    }
}

/// The first byte picks the limits and how many cut lengths follow; then the
/// cut lengths; the rest is the stream. Checks: no panic; the events stand
/// for exactly a prefix of the stream (all of it when no error came); and
/// the same stream fed in 256-byte pieces gives the same events, frames and error.
pub fn tej(data: &[u8]) {
    let Some((&mode, rest)) = data.split_first() else {
        return;
    };
    let ncuts = usize::from(mode >> 4).min(rest.len());
    let (cuts, stream) = rest.split_at(ncuts);
    let limits = Limits {
        max_files: [0, 3, 1 << 16, u64::MAX][usize::from(mode & 3)],
        max_name_len: if mode & 4 == 0 { 16 } else { u16::MAX },
        max_message: if mode & 4 == 0 { 64 } else { 1 << 20 },
        stream_message: mode & 8 != 0,
    };
    let (rebuilt, frames, error) = run(stream, cuts, limits);
    assert_eq!(
        &stream[..rebuilt.len()],
        &rebuilt[..],
        "events differ from the bytes"
    );
    if error.is_none() {
        assert_eq!(
            rebuilt.len(),
            stream.len(),
            "bytes left over without an error"
        );
    }
    let whole = run(stream, &[255], limits);
    assert_eq!(
        whole,
        (rebuilt, frames, error),
        "the result depends on the cuts"
    );
}
