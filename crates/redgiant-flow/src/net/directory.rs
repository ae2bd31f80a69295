//! The flow directory server and its client: names across machines.
//!
//! A directory server keeps `name → HOST:PORT` entries that flow nodes
//! register over UDP and that expire unless refreshed. Messages are
//! described in `spec/flow.md` ("Names"); in short, every message is
//!
//! ```text
//! "FD" | ver 1 | kind | request id (u32) | ttl s (u16) | address | name len (u8) | name
//! ```
//!
//! with the address as a family byte (0 none, 4, 6), the IP and a port.
//! Kinds: REGISTER 1, UNREGISTER 2, LOOKUP 3; answers REGISTERED 0x11,
//! UNREGISTERED 0x12, FOUND 0x13, NOT_FOUND 0x14, FULL 0x15.
//!
//! The server trusts whoever sends: run it on a network whose hosts may
//! name flows.

use std::collections::HashMap;
use std::io;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr, UdpSocket};
use std::sync::atomic::{AtomicBool, AtomicU32, Ordering};
use std::sync::Arc;
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use super::error::FlowNetError;
use crate::wire::MAX_NAME_LEN;

/// The first two bytes of every directory message.
pub const MAGIC: [u8; 2] = *b"FD";
/// The version this implementation speaks.
pub const VERSION: u8 = 1;
/// Longest registration a server grants, in seconds.
pub const MAX_TTL: u16 = 300;
/// Most entries a server holds.
pub const MAX_ENTRIES: usize = 4096;

/// What a directory message says.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    /// Asks the server to map a name to an address for `ttl` seconds.
    Register = 1,
    /// Asks the server to forget a name if it maps to the address given.
    Unregister = 2,
    /// Asks where a name is.
    Lookup = 3,
    /// A registration was taken (its `ttl` is what was granted).
    Registered = 0x11,
    /// An unregistration was handled (whether or not an entry went).
    Unregistered = 0x12,
    /// The name's address (`ttl`: seconds it has left).
    Found = 0x13,
    /// The server has no entry for the name.
    NotFound = 0x14,
    /// The server holds as many entries as it may.
    Full = 0x15,
}

impl Kind {
    fn from_code(c: u8) -> Option<Kind> {
        Some(match c {
            1 => Kind::Register,
            2 => Kind::Unregister,
            3 => Kind::Lookup,
            0x11 => Kind::Registered,
            0x12 => Kind::Unregistered,
            0x13 => Kind::Found,
            0x14 => Kind::NotFound,
            0x15 => Kind::Full,
            _ => return None,
        })
    }
}

/// One directory message.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Message {
    /// What it says.
    pub kind: Kind,
    /// Chosen by the asker, repeated in the answer.
    pub id: u32,
    /// Seconds (see [`Kind`]); 0 where unused.
    pub ttl: u16,
    /// The address, where the kind has one.
    pub addr: Option<SocketAddr>,
    /// The name (1 to 255 bytes of UTF-8).
    pub name: String,
}

impl Message {
    /// The message's bytes.
    pub fn encode(&self) -> Vec<u8> {
        let mut out = Vec::with_capacity(32 + self.name.len());
        out.extend_from_slice(&MAGIC);
        out.push(VERSION);
        out.push(self.kind as u8);
        out.extend_from_slice(&self.id.to_be_bytes());
        out.extend_from_slice(&self.ttl.to_be_bytes());
        match self.addr {
            None => out.push(0),
            Some(SocketAddr::V4(a)) => {
                out.push(4);
                out.extend_from_slice(&a.ip().octets());
                out.extend_from_slice(&a.port().to_be_bytes());
            }
            Some(SocketAddr::V6(a)) => {
                out.push(6);
                out.extend_from_slice(&a.ip().octets());
                out.extend_from_slice(&a.port().to_be_bytes());
            }
        }
        let name = &self.name.as_bytes()[..self.name.len().min(MAX_NAME_LEN)];
        out.push(name.len() as u8);
        out.extend_from_slice(name);
        out
    }

    /// Parses a message; `None` if it is not one (wrong magic or version,
    /// unknown kind or family, short, trailing bytes, empty or non-UTF-8 name).
    pub fn parse(b: &[u8]) -> Option<Message> {
        if b.len() < 11 || b[..2] != MAGIC || b[2] != VERSION {
            return None;
        }
        let kind = Kind::from_code(b[3])?;
        let id = u32::from_be_bytes(b[4..8].try_into().ok()?);
        let ttl = u16::from_be_bytes(b[8..10].try_into().ok()?);
        let (addr, rest) = match b[10] {
            0 => (None, &b[11..]),
            4 => {
                let a: [u8; 4] = b.get(11..15)?.try_into().ok()?;
                let p = u16::from_be_bytes(b.get(15..17)?.try_into().ok()?);
                (Some(SocketAddr::new(Ipv4Addr::from(a).into(), p)), &b[17..])
            }
            6 => {
                let a: [u8; 16] = b.get(11..27)?.try_into().ok()?;
                let p = u16::from_be_bytes(b.get(27..29)?.try_into().ok()?);
                (Some(SocketAddr::new(Ipv6Addr::from(a).into(), p)), &b[29..])
            }
            _ => return None,
        };
        let (&n, name) = rest.split_first()?;
        if n == 0 || name.len() != usize::from(n) {
            return None;
        }
        let name = std::str::from_utf8(name).ok()?.to_owned();
        Some(Message {
            kind,
            id,
            ttl,
            addr,
            name,
        })
    }
}

/// A fresh request id.
fn request_id() -> u32 {
    static NEXT: AtomicU32 = AtomicU32::new(0);
    let t = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.subsec_nanos());
    t ^ std::process::id().rotate_left(16) ^ NEXT.fetch_add(0x9e37_79b9, Ordering::Relaxed)
}

/// A socket on the unspecified address of `server`'s family.
fn client_socket(server: SocketAddr) -> io::Result<UdpSocket> {
    let local: SocketAddr = match server {
        SocketAddr::V4(_) => (Ipv4Addr::UNSPECIFIED, 0).into(),
        SocketAddr::V6(_) => (Ipv6Addr::UNSPECIFIED, 0).into(),
    };
    let s = UdpSocket::bind(local)?;
    s.connect(server)?;
    Ok(s)
}

/// Sends `req` and waits for its answer: three tries, 250, 500 and 1000 ms.
fn request(server: SocketAddr, req: &Message) -> Result<Message, FlowNetError> {
    let socket = client_socket(server)?;
    let bytes = req.encode();
    let mut buf = [0u8; 512];
    for wait in [250u64, 500, 1000] {
        socket.send(&bytes)?;
        let deadline = Instant::now() + Duration::from_millis(wait);
        loop {
            let left = deadline.saturating_duration_since(Instant::now());
            if left.is_zero() {
                break;
            }
            socket.set_read_timeout(Some(left))?;
            match socket.recv(&mut buf) {
                Ok(n) => {
                    if let Some(m) = Message::parse(&buf[..n]).filter(|m| m.id == req.id) {
                        return Ok(m);
                    }
                }
                Err(e)
                    if matches!(
                        e.kind(),
                        io::ErrorKind::WouldBlock
                            | io::ErrorKind::TimedOut
                            | io::ErrorKind::Interrupted
                    ) => {}
                // No server on that port (ICMP); the next try may find one.
                Err(e) if e.kind() == io::ErrorKind::ConnectionRefused => break,
                Err(e) => return Err(e.into()),
            }
        }
    }
    Err(FlowNetError::Directory(format!(
        "no answer from the directory server at {server}; start one with \
         `rgtp flow directory --bind {server}` or fix RGTP_FLOW_DIRECTORY"
    )))
}

/// Asks `server` where `name` is.
pub fn lookup(server: SocketAddr, name: &str) -> Result<Option<SocketAddr>, FlowNetError> {
    let answer = request(
        server,
        &Message {
            kind: Kind::Lookup,
            id: request_id(),
            ttl: 0,
            addr: None,
            name: name.to_owned(),
        },
    )?;
    match (answer.kind, answer.addr) {
        (Kind::Found, Some(a)) if answer.name == name => Ok(Some(a)),
        (Kind::NotFound, _) => Ok(None),
        _ => Err(FlowNetError::Directory(format!(
            "the directory server at {server} answered a lookup of {name:?} with {:?}",
            answer.kind
        ))),
    }
}

/// A REGISTER of `name` at `addr` for `ttl`.
pub fn register_message(name: &str, addr: SocketAddr, ttl: Duration) -> Message {
    Message {
        kind: Kind::Register,
        id: request_id(),
        ttl: ttl.as_secs().clamp(1, u64::from(MAX_TTL)) as u16,
        addr: Some(addr),
        name: name.to_owned(),
    }
}

/// Registers `name` at `addr` with `server` and waits for the answer; an
/// unspecified IP is replaced by the address the server sees us at.
pub fn register(
    server: SocketAddr,
    name: &str,
    addr: SocketAddr,
    ttl: Duration,
) -> Result<(), FlowNetError> {
    let answer = request(server, &register_message(name, addr, ttl))?;
    match answer.kind {
        Kind::Registered => Ok(()),
        Kind::Full => Err(FlowNetError::Directory(format!(
            "the directory server at {server} holds as many names as it may; \
             unregister some or run another"
        ))),
        k => Err(FlowNetError::Directory(format!(
            "the directory server at {server} answered a registration of {name:?} with {k:?}"
        ))),
    }
}

/// Asks `server` to forget `name` if it maps to `addr`, waiting briefly.
pub fn unregister(server: SocketAddr, name: &str, addr: SocketAddr) -> Result<(), FlowNetError> {
    request(
        server,
        &Message {
            kind: Kind::Unregister,
            id: request_id(),
            ttl: 0,
            addr: Some(addr),
            name: name.to_owned(),
        },
    )
    .map(drop)
}

/// A socket a node keeps to refresh its registrations without waiting.
#[derive(Debug)]
pub(crate) struct Refresher {
    socket: UdpSocket,
}

impl Refresher {
    pub(crate) fn new(server: SocketAddr) -> io::Result<Refresher> {
        let socket = client_socket(server)?;
        socket.set_nonblocking(true)?;
        Ok(Refresher { socket })
    }

    /// Sends REGISTERs again (answers are read and dropped).
    pub(crate) fn refresh(&self, names: &[String], addr: SocketAddr, ttl: Duration) {
        let mut buf = [0u8; 512];
        while self.socket.recv(&mut buf).is_ok() {}
        for name in names {
            let _ = self
                .socket
                .send(&register_message(name, addr, ttl).encode());
        }
    }
}

/// One entry of a server.
#[derive(Debug, Clone, Copy)]
struct Entry {
    addr: SocketAddr,
    expires: Instant,
}

/// The table of a directory server, without I/O.
#[derive(Debug, Default)]
pub struct Table {
    entries: HashMap<String, Entry>,
}

impl Table {
    /// The answer to `req` from `from` at `now`, if it deserves one.
    pub fn answer(&mut self, now: Instant, from: SocketAddr, req: &Message) -> Option<Message> {
        let reply = |kind, ttl, addr| Message {
            kind,
            id: req.id,
            ttl,
            addr,
            name: req.name.clone(),
        };
        match req.kind {
            Kind::Register => {
                let addr = substitute(req.addr?, from);
                let ttl = req.ttl.clamp(1, MAX_TTL);
                if self.entries.len() >= MAX_ENTRIES && !self.entries.contains_key(&req.name) {
                    self.expire(now);
                    if self.entries.len() >= MAX_ENTRIES {
                        return Some(reply(Kind::Full, 0, None));
                    }
                }
                let expires = now + Duration::from_secs(u64::from(ttl));
                self.entries
                    .insert(req.name.clone(), Entry { addr, expires });
                Some(reply(Kind::Registered, ttl, Some(addr)))
            }
            Kind::Unregister => {
                let addr = substitute(req.addr?, from);
                if self.entries.get(&req.name).is_some_and(|e| e.addr == addr) {
                    self.entries.remove(&req.name);
                }
                Some(reply(Kind::Unregistered, 0, None))
            }
            Kind::Lookup => match self.entries.get(&req.name) {
                Some(e) if e.expires > now => {
                    let left = e.expires.saturating_duration_since(now).as_secs();
                    Some(reply(Kind::Found, left as u16, Some(e.addr)))
                }
                Some(_) => {
                    self.entries.remove(&req.name);
                    Some(reply(Kind::NotFound, 0, None))
                }
                None => Some(reply(Kind::NotFound, 0, None)),
            },
            _ => None,
        }
    }

    /// Drops expired entries.
    pub fn expire(&mut self, now: Instant) {
        self.entries.retain(|_, e| e.expires > now);
    }

    /// Entries held (expired ones not yet dropped included).
    pub fn len(&self) -> usize {
        self.entries.len()
    }

    /// True if no entry is held.
    pub fn is_empty(&self) -> bool {
        self.entries.is_empty()
    }
}

/// `addr` with an unspecified IP replaced by `from`'s.
fn substitute(addr: SocketAddr, from: SocketAddr) -> SocketAddr {
    if addr.ip().is_unspecified() {
        let ip = match from.ip() {
            IpAddr::V6(v6) => v6.to_ipv4_mapped().map_or(IpAddr::V6(v6), IpAddr::V4),
            v4 => v4,
        };
        SocketAddr::new(ip, addr.port())
    } else {
        addr
    }
}

/// A directory server running on its own thread until dropped.
#[derive(Debug)]
pub struct DirectoryServer {
    local: SocketAddr,
    stop: Arc<AtomicBool>,
    thread: Option<JoinHandle<io::Result<()>>>,
}

impl DirectoryServer {
    /// Binds `addr` and serves on a new thread.
    pub fn spawn(addr: SocketAddr) -> io::Result<DirectoryServer> {
        let socket = UdpSocket::bind(addr)?;
        let local = socket.local_addr()?;
        let stop = Arc::new(AtomicBool::new(false));
        let flag = stop.clone();
        let thread = std::thread::Builder::new()
            .name("flow-directory".into())
            .spawn(move || serve(&socket, &flag))?;
        Ok(DirectoryServer {
            local,
            stop,
            thread: Some(thread),
        })
    }

    /// The bound address.
    pub fn local_addr(&self) -> SocketAddr {
        self.local
    }
}

impl Drop for DirectoryServer {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

/// Answers directory requests on `socket` until `stop` is set (checked at
/// least every 200 ms).
pub fn serve(socket: &UdpSocket, stop: &AtomicBool) -> io::Result<()> {
    let mut table = Table::default();
    let mut buf = [0u8; 1024];
    let mut last_sweep = Instant::now();
    socket.set_read_timeout(Some(Duration::from_millis(200)))?;
    while !stop.load(Ordering::Relaxed) {
        let now = Instant::now();
        if now.duration_since(last_sweep) >= Duration::from_secs(10) {
            table.expire(now);
            last_sweep = now;
        }
        let (n, from) = match socket.recv_from(&mut buf) {
            Ok(r) => r,
            Err(e)
                if matches!(
                    e.kind(),
                    io::ErrorKind::WouldBlock
                        | io::ErrorKind::TimedOut
                        | io::ErrorKind::Interrupted
                        | io::ErrorKind::ConnectionRefused
                        | io::ErrorKind::ConnectionReset
                ) =>
            {
                continue
            }
            Err(e) => return Err(e),
        };
        let Some(req) = Message::parse(&buf[..n]) else {
            continue;
        };
        if let Some(answer) = table.answer(Instant::now(), from, &req) {
            let _ = socket.send_to(&answer.encode(), from);
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn test_vectors() {
        let reg = Message {
            kind: Kind::Register,
            id: 0x0102_0304,
            ttl: 30,
            addr: Some("192.0.2.7:9000".parse().unwrap()),
            name: "echo".into(),
        };
        let bytes = reg.encode();
        assert_eq!(
            hex(&bytes),
            "4644 01 01 01020304 001e 04 c0000207 2328 04 6563686f".replace(' ', "")
        );
        assert_eq!(Message::parse(&bytes), Some(reg));
        let lookup = Message {
            kind: Kind::Lookup,
            id: 7,
            ttl: 0,
            addr: None,
            name: "echo".into(),
        };
        assert_eq!(
            hex(&lookup.encode()),
            "4644 01 03 00000007 0000 00 04 6563686f".replace(' ', "")
        );
        let mut bad = lookup.encode();
        bad.push(0);
        assert_eq!(Message::parse(&bad), None);
        bad = lookup.encode();
        bad[2] = 2;
        assert_eq!(Message::parse(&bad), None);
        bad = lookup.encode();
        bad[10] = 5;
        assert_eq!(Message::parse(&bad), None);
    }

    fn hex(b: &[u8]) -> String {
        b.iter().map(|x| format!("{x:02x}")).collect()
    }

    #[test]
    fn test_table_expiry_and_substitution() {
        let mut t = Table::default();
        let t0 = Instant::now();
        let from: SocketAddr = "198.51.100.2:4444".parse().unwrap();
        let reg = register_message("n", "0.0.0.0:7000".parse().unwrap(), Duration::from_secs(2));
        let ok = t.answer(t0, from, &reg).unwrap();
        assert_eq!(ok.kind, Kind::Registered);
        assert_eq!(ok.addr, Some("198.51.100.2:7000".parse().unwrap()));
        let look = Message {
            kind: Kind::Lookup,
            id: 9,
            ttl: 0,
            addr: None,
            name: "n".into(),
        };
        let found = t.answer(t0 + Duration::from_secs(1), from, &look).unwrap();
        assert_eq!(found.kind, Kind::Found);
        assert_eq!(found.id, 9);
        assert_eq!(found.addr, Some("198.51.100.2:7000".parse().unwrap()));
        let gone = t.answer(t0 + Duration::from_secs(3), from, &look).unwrap();
        assert_eq!(gone.kind, Kind::NotFound);
        assert!(t.is_empty());
        // An unregistration from another address leaves the entry.
        t.answer(t0, from, &reg).unwrap();
        let mut un = reg.clone();
        un.kind = Kind::Unregister;
        t.answer(t0, "203.0.113.9:1".parse().unwrap(), &un).unwrap();
        assert_eq!(t.len(), 1);
        t.answer(t0, from, &un).unwrap();
        assert!(t.is_empty());
    }
}
