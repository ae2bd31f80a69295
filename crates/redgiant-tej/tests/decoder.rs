//! The decoder against arbitrary splits, malformed streams and hostile lengths.

use proptest::prelude::*;

use redgiant_tej::wire::{encode_frame, DecodeError, Decoder, Event, Limits};

#[derive(Debug, Clone, Default, PartialEq, Eq)]
struct Frame {
    status: u8,
    files: Vec<(String, Vec<u8>)>,
    message: Vec<u8>,
}

impl Frame {
    fn encode(&self) -> Vec<u8> {
        let files: Vec<(&str, &[u8])> = self
            .files
            .iter()
            .map(|(n, d)| (n.as_str(), d.as_slice()))
            .collect();
        encode_frame(self.status, &files, &self.message).unwrap()
    }
}

/// Feeds `pieces` in order; the frames completed, or the first error.
fn decode_pieces<'a>(
    dec: &mut Decoder,
    pieces: impl IntoIterator<Item = &'a [u8]>,
) -> Result<Vec<Frame>, DecodeError> {
    let mut frames = Vec::new();
    let mut cur = Frame::default();
    for mut piece in pieces {
        loop {
            let (used, ev) = dec.decode(piece)?;
            piece = &piece[used..];
            match ev {
                None => break,
                Some(Event::FrameStart { status, .. }) => cur.status = status,
                Some(Event::FileStart { name, .. }) => cur.files.push((name.into(), Vec::new())),
                Some(Event::FileData(d)) => {
                    assert!(!d.is_empty());
                    cur.files.last_mut().unwrap().1.extend_from_slice(d)
                }
                Some(Event::Message(m)) => cur.message = m.to_vec(),
                Some(Event::FrameEnd) => frames.push(std::mem::take(&mut cur)),
                Some(_) => {}
            }
        }
        assert!(piece.is_empty(), "None only once every byte is consumed");
    }
    Ok(frames)
}

fn decode_all(bytes: &[u8]) -> Result<Vec<Frame>, DecodeError> {
    let mut dec = Decoder::new(Limits::default());
    let frames = decode_pieces(&mut dec, [bytes])?;
    dec.finish()?;
    Ok(frames)
}

fn frame_strategy() -> impl Strategy<Value = Frame> {
    (
        0u8..128,
        prop::collection::vec(
            ("\\PC{0,12}", prop::collection::vec(any::<u8>(), 0..300)),
            0..5,
        ),
        prop::collection::vec(any::<u8>(), 0..200),
    )
        .prop_map(|(status, files, message)| Frame {
            status,
            files,
            message,
        })
}

proptest! {
    #[test]
    fn round_trip_at_random_split_points(
        frames in prop::collection::vec(frame_strategy(), 1..5),
        cuts in prop::collection::vec(any::<prop::sample::Index>(), 0..20),
    ) {
        let bytes: Vec<u8> = frames.iter().flat_map(Frame::encode).collect();
        let mut at: Vec<usize> = cuts.iter().map(|i| i.index(bytes.len() + 1)).collect();
        at.push(0);
        at.push(bytes.len());
        at.sort_unstable();
        let pieces = at.windows(2).map(|w| &bytes[w[0]..w[1]]);
        let mut dec = Decoder::new(Limits::default());
        let got = decode_pieces(&mut dec, pieces).unwrap();
        prop_assert_eq!(dec.finish(), Ok(()));
        prop_assert_eq!(dec.frames(), frames.len() as u64);
        prop_assert_eq!(got, frames);
    }

    #[test]
    fn no_panic_on_arbitrary_input(bytes in prop::collection::vec(any::<u8>(), 0..2000), step in 1usize..64) {
        let limits = Limits { max_files: 8, max_name_len: 64, max_message: 1024, stream_message: false };
        let mut dec = Decoder::new(limits);
        let first = decode_pieces(&mut dec, bytes.chunks(step));
        let _ = dec.finish();
        // An error is final and answered again.
        if let Err(e) = first {
            prop_assert_eq!(dec.decode(b"\x81").map(|_| ()), Err(e));
        }
    }

    #[test]
    fn no_panic_on_mutated_frames(frame in frame_strategy(), flips in prop::collection::vec((any::<prop::sample::Index>(), any::<u8>()), 1..4)) {
        let mut bytes = frame.encode();
        for (i, b) in flips {
            let i = i.index(bytes.len());
            bytes[i] ^= b;
        }
        let _ = decode_all(&bytes);
    }
}

fn header(status: u8, version: u8, count: u64) -> Vec<u8> {
    let mut b = vec![status, version];
    b.extend_from_slice(&count.to_be_bytes());
    b
}

#[test]
fn msb_zero_is_refused_at_the_first_byte() {
    let mut dec = Decoder::new(Limits::default());
    assert_eq!(
        dec.decode(&[0x02]).unwrap_err(),
        DecodeError::MsbZero { status: 2 }
    );
    // Every byte value without the top bit.
    for b in 0..0x80u8 {
        assert_eq!(
            decode_all(&header(b, 1, 0)),
            Err(DecodeError::MsbZero { status: b })
        );
    }
}

#[test]
fn every_version_but_one_is_refused() {
    for v in (0..=255u8).filter(|&v| v != 1) {
        let mut dec = Decoder::new(Limits::default());
        assert_eq!(
            decode_pieces(&mut dec, [&[0x81][..], &[v][..]]),
            Err(DecodeError::BadVersion { version: v })
        );
    }
}

#[test]
fn limits_are_checked_at_the_length_fields() {
    let limits = Limits {
        max_files: 2,
        max_name_len: 4,
        max_message: 8,
        stream_message: false,
    };
    let check = |bytes: &[u8]| {
        let mut dec = Decoder::new(limits);
        decode_pieces(&mut dec, [bytes]).map(|_| ())
    };
    assert_eq!(
        check(&header(0x81, 1, 3)),
        Err(DecodeError::TooManyFiles { count: 3, limit: 2 })
    );
    assert_eq!(
        check(&header(0x81, 1, u64::MAX)),
        Err(DecodeError::TooManyFiles {
            count: u64::MAX,
            limit: 2
        })
    );
    let mut b = header(0x81, 1, 1);
    b.extend_from_slice(&5u16.to_be_bytes());
    assert_eq!(
        check(&b),
        Err(DecodeError::NameTooLong { len: 5, limit: 4 })
    );
    let mut b = header(0x81, 1, 0);
    b.extend_from_slice(&9u64.to_be_bytes());
    assert_eq!(
        check(&b),
        Err(DecodeError::MessageTooLarge { len: 9, limit: 8 })
    );
    let mut b = header(0x81, 1, 0);
    b.extend_from_slice(&u64::MAX.to_be_bytes());
    assert_eq!(
        check(&b),
        Err(DecodeError::MessageTooLarge {
            len: u64::MAX,
            limit: 8
        })
    );
    // At the limits: accepted.
    let ok = Frame {
        status: 3,
        files: vec![("abcd".into(), vec![1]), ("é".into(), vec![])],
        message: vec![7; 8],
    };
    let mut dec = Decoder::new(limits);
    assert_eq!(decode_pieces(&mut dec, [&ok.encode()[..]]), Ok(vec![ok]));
}

#[test]
fn names_are_utf8_byte_counted() {
    // "é☃": 2 characters, 5 bytes. A length of 2 (characters) cuts a character.
    let mut b = header(0x81, 1, 1);
    b.extend_from_slice(&2u16.to_be_bytes());
    b.extend_from_slice("é☃".as_bytes());
    b.extend_from_slice(&0u64.to_be_bytes());
    b.extend_from_slice(&0u64.to_be_bytes());
    assert!(
        decode_all(&b).is_err(),
        "a character count is not a byte count"
    );
    let mut b = header(0x81, 1, 1);
    b.extend_from_slice(&2u16.to_be_bytes());
    b.extend_from_slice(&[0xc3, 0x28]);
    assert_eq!(
        decode_all(&b),
        Err(DecodeError::NameNotUtf8 { valid_up_to: 0 })
    );
    let f = Frame {
        status: 1,
        files: vec![("é☃".into(), b"x".to_vec())],
        message: vec![],
    };
    let bytes = f.encode();
    assert_eq!(&bytes[10..12], &5u16.to_be_bytes());
    assert_eq!(decode_all(&bytes), Ok(vec![f]));
}

#[test]
fn truncation_anywhere_is_reported_at_the_end() {
    let f = Frame {
        status: 1,
        files: vec![("a".into(), b"xyz".to_vec())],
        message: b"m".to_vec(),
    };
    let bytes = f.encode();
    for cut in 1..bytes.len() {
        assert_eq!(
            decode_all(&bytes[..cut]),
            Err(DecodeError::Truncated),
            "cut at {cut}"
        );
    }
    assert_eq!(decode_all(&[]), Ok(vec![]));
}

#[test]
fn a_huge_declared_length_costs_no_memory() {
    // A 2^63-byte file: the decoder hands out what comes and holds a counter.
    let mut b = header(0x81, 1, 1);
    b.extend_from_slice(&1u16.to_be_bytes());
    b.push(b'f');
    b.extend_from_slice(&(1u64 << 63).to_be_bytes());
    let mut dec = Decoder::new(Limits::default());
    let (mut input, mut data) = (&b[..], 0usize);
    let chunk = vec![0x5a; 1 << 20];
    let mut passes = 0;
    loop {
        let (used, ev) = dec.decode(input).unwrap();
        input = &input[used..];
        match ev {
            Some(Event::FrameStart { .. }) => {}
            Some(Event::FileStart { len, .. }) => assert_eq!(len, 1 << 63),
            Some(Event::FileData(d)) => data += d.len(),
            Some(e) => panic!("{e:?}"),
            None if passes < 64 => {
                passes += 1;
                input = &chunk;
            }
            None => break,
        }
    }
    assert_eq!(data, 64 << 20);
    assert!(std::mem::size_of_val(&dec) < 256);
    assert_eq!(dec.finish(), Err(DecodeError::Truncated));
}
