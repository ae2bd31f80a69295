//! The two messages of a bulk hand-off, each one SDU of the flow.
//!
//! Every integer is big-endian. Both messages start with the same header:
//!
//! ```text
//!  0      2        3      4
//!  +------+--------+------+
//!  | "RB" | version| kind |   version 1; kind 1 OFFER, 2 RESULT
//!  +------+--------+------+
//! ```
//!
//! OFFER (sender to receiver): `size` u64, `name_len` u8 (1..=255),
//! `ticket_len` u16 (1..=[`MAX_TICKET`]), then the name (UTF-8) and the
//! ticket (UTF-8), and nothing after.
//!
//! RESULT (receiver to sender): `status` u8 (0 ok, 1 refused, 2 failed),
//! `root_len` u8 (32 with ok, 0 otherwise), `text_len` u16
//! (0..=[`MAX_TEXT`]), then the Merkle root and the text (UTF-8), and
//! nothing after.
//!
//! [`Offer::parse`] and [`Outcome::parse`] check the whole message before
//! they return: every length against the bytes present and against its
//! limit, the header first, then the fixed fields, then the variable parts.
//! They never panic and allocate no more than the message's own length. A
//! declared file size is only a number here: the receiver compares it with
//! its limit before anything else is done with it.

use std::fmt;

use rgtp_wire::Hash;

/// The first two bytes of every message.
pub const MAGIC: [u8; 2] = *b"RB";
/// The version these messages have.
pub const VERSION: u8 = 1;
/// The longest ticket an OFFER carries, in bytes.
pub const MAX_TICKET: usize = 1024;
/// The longest text a RESULT carries, in bytes.
pub const MAX_TEXT: usize = 1024;
/// The longest file name, in bytes.
pub const MAX_NAME: usize = 255;

const KIND_OFFER: u8 = 1;
const KIND_RESULT: u8 = 2;
const HEADER_LEN: usize = 4;
const OFFER_FIXED: usize = HEADER_LEN + 8 + 1 + 2;
const RESULT_FIXED: usize = HEADER_LEN + 1 + 1 + 2;
const ROOT_LEN: usize = core::mem::size_of::<Hash>();

/// Why bytes are not a bulk message; the text says what was wrong.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum MessageError {
    /// Shorter than its fields say.
    Truncated,
    /// The first bytes are not `RB`: not a bulk message.
    Magic,
    /// A version this end does not speak.
    Version(u8),
    /// Not the kind expected here.
    Kind(u8),
    /// A file name that is empty, too long, not UTF-8, or names no plain
    /// file in one directory (`/`, `\`, `..`, `.`, control characters).
    Name(String),
    /// A ticket that is empty, longer than [`MAX_TICKET`] or not UTF-8.
    Ticket,
    /// A RESULT status other than 0, 1 or 2, or a root length that does not
    /// go with its status.
    Status(u8),
    /// A RESULT text longer than [`MAX_TEXT`] or not UTF-8.
    Text,
    /// Bytes after the end of the message.
    TrailingBytes,
}

impl fmt::Display for MessageError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            MessageError::Truncated => f.write_str("the message is shorter than its fields say"),
            MessageError::Magic => f.write_str(
                "not a bulk hand-off message (it does not start with \"RB\"): is the peer sending files?",
            ),
            MessageError::Version(v) => write!(
                f,
                "bulk hand-off version {v} is not spoken here (this end speaks {VERSION}); upgrade the older end"
            ),
            MessageError::Kind(k) => write!(f, "unexpected bulk message kind {k}"),
            MessageError::Name(why) => write!(f, "refused file name: {why}"),
            MessageError::Ticket => write!(
                f,
                "the ticket is empty, longer than {MAX_TICKET} bytes or not UTF-8"
            ),
            MessageError::Status(s) => write!(f, "unknown result status {s}, or a root that does not go with it"),
            MessageError::Text => write!(
                f,
                "the result text is longer than {MAX_TEXT} bytes or not UTF-8"
            ),
            MessageError::TrailingBytes => f.write_str("bytes after the end of the message"),
        }
    }
}

impl std::error::Error for MessageError {}

/// Checks `name` names a plain file inside one directory: 1 to 255 bytes,
/// not `.` or `..`, no `/`, `\`, NUL or other control character.
pub fn check_name(name: &str) -> Result<(), MessageError> {
    let bad = |why: &str| Err(MessageError::Name(format!("{name:?}: {why}")));
    if name.is_empty() {
        return bad("empty");
    }
    if name.len() > MAX_NAME {
        return bad("longer than 255 bytes");
    }
    if name == "." || name == ".." {
        return bad("names a directory, not a file");
    }
    if name.contains(['/', '\\']) {
        return bad("holds a path separator; a file is sent under its last component only");
    }
    if name.chars().any(char::is_control) {
        return bad("holds a control character");
    }
    Ok(())
}

/// The sender's offer: a file, its size, and the ticket to pull it with.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Offer {
    /// Bytes in the file.
    pub size: u64,
    /// Its name (checked by [`check_name`]).
    pub name: String,
    /// The RGTP ticket of its exposure (key included).
    pub ticket: String,
}

/// Reads the header; the kind must be `kind`.
fn header(b: &[u8], kind: u8) -> Result<(), MessageError> {
    if b.len() < HEADER_LEN {
        return Err(MessageError::Truncated);
    }
    if b[..2] != MAGIC {
        return Err(MessageError::Magic);
    }
    if b[2] != VERSION {
        return Err(MessageError::Version(b[2]));
    }
    if b[3] != kind {
        return Err(MessageError::Kind(b[3]));
    }
    Ok(())
}

/// The variable part of `b` from `at`, `len` bytes long, nothing after.
fn tail(b: &[u8], at: usize, len: usize) -> Result<&[u8], MessageError> {
    let end = at.checked_add(len).ok_or(MessageError::Truncated)?;
    match b.len() {
        n if n < end => Err(MessageError::Truncated),
        n if n > end => Err(MessageError::TrailingBytes),
        _ => Ok(&b[at..end]),
    }
}

impl Offer {
    /// Parses and checks an OFFER (module docs).
    pub fn parse(b: &[u8]) -> Result<Offer, MessageError> {
        header(b, KIND_OFFER)?;
        if b.len() < OFFER_FIXED {
            return Err(MessageError::Truncated);
        }
        let size = u64::from_be_bytes(b[4..12].try_into().expect("8 bytes"));
        let name_len = usize::from(b[12]);
        let ticket_len = usize::from(u16::from_be_bytes([b[13], b[14]]));
        if name_len == 0 {
            return Err(MessageError::Name("empty".into()));
        }
        if ticket_len == 0 || ticket_len > MAX_TICKET {
            return Err(MessageError::Ticket);
        }
        let rest = tail(b, OFFER_FIXED, name_len + ticket_len)?;
        let (name, ticket) = rest.split_at(name_len);
        let name = std::str::from_utf8(name).map_err(|_| MessageError::Name("not UTF-8".into()))?;
        check_name(name)?;
        let ticket = std::str::from_utf8(ticket).map_err(|_| MessageError::Ticket)?;
        Ok(Offer {
            size,
            name: name.to_owned(),
            ticket: ticket.to_owned(),
        })
    }

    /// Bytes [`emit`](Self::emit) writes.
    pub fn buffer_len(&self) -> usize {
        OFFER_FIXED + self.name.len() + self.ticket.len()
    }

    /// The message, after checking the name and ticket fit.
    pub fn to_bytes(&self) -> Result<Vec<u8>, MessageError> {
        check_name(&self.name)?;
        if self.ticket.is_empty() || self.ticket.len() > MAX_TICKET {
            return Err(MessageError::Ticket);
        }
        let mut b = vec![0u8; self.buffer_len()];
        self.emit(&mut b);
        Ok(b)
    }

    /// Writes the message into `b`.
    ///
    /// # Panics
    ///
    /// If `b` is not [`buffer_len`](Self::buffer_len) bytes, or the name or
    /// ticket is longer than its field holds ([`to_bytes`](Self::to_bytes)
    /// checks both).
    pub fn emit(&self, b: &mut [u8]) {
        assert_eq!(b.len(), self.buffer_len());
        b[..2].copy_from_slice(&MAGIC);
        b[2] = VERSION;
        b[3] = KIND_OFFER;
        b[4..12].copy_from_slice(&self.size.to_be_bytes());
        b[12] = u8::try_from(self.name.len()).expect("name fits a u8 length");
        let tl = u16::try_from(self.ticket.len()).expect("ticket fits a u16 length");
        b[13..15].copy_from_slice(&tl.to_be_bytes());
        let (name, ticket) = b[OFFER_FIXED..].split_at_mut(self.name.len());
        name.copy_from_slice(self.name.as_bytes());
        ticket.copy_from_slice(self.ticket.as_bytes());
    }
}

/// The receiver's answer.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Outcome {
    /// The file arrived, every chunk verified against this Merkle root.
    Ok {
        /// The root the pull verified against.
        root: Hash,
    },
    /// The receiver would not take the offer; the text says why.
    Refused(String),
    /// The pull started and did not complete; the text says why.
    Failed(String),
}

impl Outcome {
    /// Parses and checks a RESULT (module docs).
    pub fn parse(b: &[u8]) -> Result<Outcome, MessageError> {
        header(b, KIND_RESULT)?;
        if b.len() < RESULT_FIXED {
            return Err(MessageError::Truncated);
        }
        let (status, root_len) = (b[4], usize::from(b[5]));
        let text_len = usize::from(u16::from_be_bytes([b[6], b[7]]));
        let want_root = match status {
            0 => ROOT_LEN,
            1 | 2 => 0,
            s => return Err(MessageError::Status(s)),
        };
        if root_len != want_root {
            return Err(MessageError::Status(status));
        }
        if text_len > MAX_TEXT {
            return Err(MessageError::Text);
        }
        let rest = tail(b, RESULT_FIXED, root_len + text_len)?;
        let (root, text) = rest.split_at(root_len);
        let text = std::str::from_utf8(text).map_err(|_| MessageError::Text)?;
        Ok(match status {
            0 => Outcome::Ok {
                root: root.try_into().expect("checked length"),
            },
            1 => Outcome::Refused(text.to_owned()),
            _ => Outcome::Failed(text.to_owned()),
        })
    }

    /// The message; a text longer than [`MAX_TEXT`] is cut at a character
    /// boundary.
    pub fn to_bytes(&self) -> Vec<u8> {
        let (status, root, text): (u8, &[u8], &str) = match self {
            Outcome::Ok { root } => (0, root, ""),
            Outcome::Refused(t) => (1, &[], t),
            Outcome::Failed(t) => (2, &[], t),
        };
        let mut cut = text.len().min(MAX_TEXT);
        while !text.is_char_boundary(cut) {
            cut -= 1;
        }
        let text = &text.as_bytes()[..cut];
        let mut b = Vec::with_capacity(RESULT_FIXED + root.len() + text.len());
        b.extend_from_slice(&MAGIC);
        b.push(VERSION);
        b.push(KIND_RESULT);
        b.push(status);
        b.push(root.len() as u8);
        b.extend_from_slice(&(text.len() as u16).to_be_bytes());
        b.extend_from_slice(root);
        b.extend_from_slice(text);
        b
    }
}

#[cfg(test)]
mod tests {
    use proptest::prelude::*;

    use super::*;

    static OFFER_BYTES: [u8; 20] = [
        0x52, 0x42, 0x01, 0x01, // RB, version 1, OFFER
        0x00, 0x00, 0x00, 0x00, 0x00, 0x10, 0x00, 0x00, // size 1 MiB
        0x03, 0x00, 0x02, // name 3 bytes, ticket 2 bytes
        b'a', b'.', b'b', b't', b'k',
    ];

    fn offer() -> Offer {
        Offer {
            size: 1 << 20,
            name: "a.b".into(),
            ticket: "tk".into(),
        }
    }

    #[test]
    fn test_parse() {
        assert_eq!(Offer::parse(&OFFER_BYTES), Ok(offer()));
    }

    #[test]
    fn test_emit() {
        let o = offer();
        let mut b = vec![0xa5; o.buffer_len()];
        o.emit(&mut b);
        assert_eq!(b, OFFER_BYTES);
    }

    #[test]
    fn test_parse_refusals() {
        let with = |at: usize, v: u8| {
            let mut b = OFFER_BYTES.to_vec();
            b[at] = v;
            Offer::parse(&b)
        };
        assert_eq!(with(0, b'X'), Err(MessageError::Magic));
        assert_eq!(with(2, 2), Err(MessageError::Version(2)));
        assert_eq!(with(3, 2), Err(MessageError::Kind(2)));
        assert_eq!(with(12, 0), Err(MessageError::Name("empty".into())));
        assert_eq!(with(12, 200), Err(MessageError::Truncated));
        assert_eq!(with(13, 0xff), Err(MessageError::Ticket));
        assert!(matches!(with(16, b'/'), Err(MessageError::Name(_))));
        assert_eq!(with(17, 0xff), Err(MessageError::Name("not UTF-8".into())));
        let mut long = OFFER_BYTES.to_vec();
        long.push(0);
        assert_eq!(Offer::parse(&long), Err(MessageError::TrailingBytes));
        for n in 0..OFFER_BYTES.len() {
            assert_eq!(
                Offer::parse(&OFFER_BYTES[..n]),
                Err(MessageError::Truncated)
            );
        }
    }

    #[test]
    fn test_names() {
        for bad in ["", ".", "..", "a/b", "../x", "/etc", "a\\b", "x\0", "a\nb"] {
            assert!(check_name(bad).is_err(), "{bad:?}");
        }
        assert!(check_name(&"x".repeat(256)).is_err());
        for good in ["a", "..a", "a..b", "file.tar.gz", "é", &"x".repeat(255)] {
            assert_eq!(check_name(good), Ok(()), "{good:?}");
        }
    }

    #[test]
    fn test_outcome_round_trip() {
        for o in [
            Outcome::Ok { root: [7; 32] },
            Outcome::Refused("too large".into()),
            Outcome::Failed(String::new()),
        ] {
            assert_eq!(Outcome::parse(&o.to_bytes()), Ok(o));
        }
        let long = Outcome::Failed("é".repeat(MAX_TEXT));
        match Outcome::parse(&long.to_bytes()) {
            Ok(Outcome::Failed(t)) => assert!(t.len() <= MAX_TEXT && t.len() > MAX_TEXT - 2),
            other => panic!("{other:?}"),
        }
        let mut b = Outcome::Ok { root: [1; 32] }.to_bytes();
        b[4] = 1;
        assert_eq!(Outcome::parse(&b), Err(MessageError::Status(1)));
        b[4] = 9;
        assert_eq!(Outcome::parse(&b), Err(MessageError::Status(9)));
    }

    proptest! {
        #[test]
        fn prop_offer_round_trip(size: u64, name in "[a-zA-Z0-9._-]{1,64}", ticket in "[ -~]{1,300}") {
            prop_assume!(check_name(&name).is_ok());
            let o = Offer { size, name, ticket };
            prop_assert_eq!(Offer::parse(&o.to_bytes().unwrap()), Ok(o));
        }

        #[test]
        fn prop_parse_never_panics(b in proptest::collection::vec(any::<u8>(), 0..64)) {
            let _ = Offer::parse(&b);
            let _ = Outcome::parse(&b);
        }
    }
}
