//! The QoS-to-behaviour matrix of `tests/matrix.rs` on real UDP: two
//! [`FlowNode`]s in two network namespaces joined by a veth pair, with
//! nftables dropping datagrams at random and counting them by kind at each
//! node's egress, and a packet socket capturing what crosses the veth.
//!
//! | QoS                         | behaviour checked here |
//! |-----------------------------|------------------------|
//! | `loss = 0` (**arq**)        | every SDU exactly once and in order at 20 % drop both ways; DATA sent again |
//! | loss tolerated, loose bounds| one DATA datagram per SDU written, never acknowledged, with and without drop |
//! | `cypher_s > 0` (**aead**)   | no 12-byte window of an SDU in any captured frame; every flow datagram sealed; a plain flow shows them |
//! | `cypher_s > 0`, damage      | DATA and ACKs damaged on the way never reach the application, and are sent again; a plain flow hands them over |
//! | `cypher_s > 0`, keys        | another key or none at the server: refused with its reason, the server's application never hears of it |
//! | `timeout` (**timeout**)     | a peer whose link went down brings the flow down within the timeout plus [`DOWN_MARGIN`] |
//! | any                         | a peer whose node is dropped deallocates the flow: a DEALLOC on the wire, the flow ended |
//! | loss tolerated, tight bound (**fec**) | at 5 % drop at least [`FEC_MIN_DELIVERED`] of the SDUs, more than without parity, no retransmission, no ACK |
//!
//! | `in_order` (**reorder**)    | SDUs in sequence, exactly once, while 20 % of the datagrams are held back on the veth; an unordered flow shows the inversions |
//!
//! Reordering without netem: an HTB qdisc on the sender's veth end has a
//! 2 Mbit/s class, and nftables gives a random 20 % of the node's datagrams
//! that class as their priority, so they leave after later ones.
//!
//! Names cross the namespaces as between machines: a directory server runs
//! in the server's namespace and both nodes use it (the encrypted echo);
//! elsewhere the client allocates `NAME@HOST:PORT`.
//!
//! What nftables counts: UDP datagrams with the node's source port leaving
//! through the node's veth end (the `output` hook, before any drop on the
//! way in at the other end), by the kind byte of the flow header (sealed or
//! not). Drops are made on the way in, in the `input` hook of each
//! namespace, on datagrams to the node's port arriving through the veth, so
//! directory traffic and the node's own wake-ups are neither dropped nor
//! counted; damage is done there too, after the drops.
//!
//! Every test builds its own namespaces, so they run in parallel. They need
//! root, `ip` (iproute2) and `nft` (nftables); without them they fail with
//! a message saying so.
#![cfg(target_os = "linux")]

#[path = "../../rgtp-link/tests/netns/mod.rs"]
mod netns;

use std::collections::{HashMap, HashSet};
use std::io;
use std::net::{Ipv4Addr, SocketAddr, SocketAddrV4};
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd};
use std::process::Stdio;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use netns::{Netns, VethPair};
use redgiant_flow::net::directory::DirectoryServer;
use redgiant_flow::net::names::Names;
use redgiant_flow::net::{EventKind, Flow, FlowNetError, FlowNode, FlowSet, NodeConfig};
use redgiant_flow::wire::{Reason, Repr};
use redgiant_flow::{Config, FlowKey, Layers, QoS};

/// The server's address, in namespace `a`.
const A_IP: Ipv4Addr = Ipv4Addr::new(10, 77, 1, 1);
/// The client's address, in namespace `b`.
const B_IP: Ipv4Addr = Ipv4Addr::new(10, 77, 1, 2);
/// The UDP port of both nodes.
const PORT: u16 = 7000;
/// The directory server's port, next to the server node.
const DIRECTORY_PORT: u16 = 7700;
const NAME: &str = "sink";
const KEY: [u8; 32] = [0x42; 32];

/// How long any single wait may take before the test fails.
const T: Duration = Duration::from_secs(60);

/// How late after the QoS timeout a flow whose peer vanished may go down
/// on a real clock: the driver wakes at the endpoint's deadline, on a
/// machine that may be busy with other builds.
const DOWN_MARGIN: Duration = Duration::from_secs(2);

/// The share of SDUs an **fec** flow delivers at 5 % random drop. Groups
/// of 8 SDUs with 2 parity shards lose SDUs only when 3 or more of their
/// 10 datagrams are dropped, about one group in a hundred: of 1000 SDUs,
/// 3 are lost in the median and more than 19 once in ten thousand runs.
/// The rest of the margin is for a busy machine, where an SDU rebuilt
/// later than `max_gap` has been skipped. Without parity about 5 % of the
/// SDUs are lost (50 of 1000, standard deviation 7).
const FEC_MIN_DELIVERED: f64 = 0.97;

/// The flow header's kind codes (`spec/flow.md`), as nftables matches them
/// in the byte after the version; a sealed datagram has the top bit set.
const KINDS: [(&str, u8); 7] = [
    ("alloc", 1),
    ("alloc_ok", 2),
    ("refused", 3),
    ("data", 4),
    ("ack", 5),
    ("dealloc", 6),
    ("keepalive", 7),
];
/// The kind code of PARITY.
const PARITY: (&str, u8) = ("parity", 9);

/// The byte of a flow datagram a damaging test bed overwrites: past the
/// header and, on a sealed datagram, the packet number, so in the sealed
/// body or its tag (every sealed DATA or ACK is longer).
const DAMAGED_BYTE: usize = 30;

/// One side of the test bed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Side {
    /// The server: registers [`NAME`] and accepts.
    A,
    /// The client: allocates flows to [`NAME`].
    B,
}

/// Two namespaces joined by a veth pair, addressed, with a ruleset that
/// counts flow datagrams by kind and drops `drop_percent` of the flow
/// datagrams arriving at each side.
struct Bed {
    pair: VethPair,
}

impl Bed {
    fn new(drop_percent: u32) -> Bed {
        Bed::damaging(drop_percent, 0)
    }

    /// As [`Bed::new`], and damaging `damage_percent` of the DATA and ACK
    /// datagrams that get through and are long enough (byte
    /// [`DAMAGED_BYTE`] set to 0x55; a plain ACK is too short).
    fn damaging(drop_percent: u32, damage_percent: u32) -> Bed {
        let pair = VethPair::new();
        pair.a
            .ip(&["addr", "add", &format!("{A_IP}/24"), "dev", &pair.a_if]);
        pair.b
            .ip(&["addr", "add", &format!("{B_IP}/24"), "dev", &pair.b_if]);
        let bed = Bed { pair };
        for side in [Side::A, Side::B] {
            let rules = ruleset(bed.iface(side), drop_percent, damage_percent);
            nft(bed.ns(side), &rules);
        }
        bed
    }

    fn ns(&self, side: Side) -> &Netns {
        match side {
            Side::A => &self.pair.a,
            Side::B => &self.pair.b,
        }
    }

    fn iface(&self, side: Side) -> &str {
        match side {
            Side::A => &self.pair.a_if,
            Side::B => &self.pair.b_if,
        }
    }

    fn addr(side: Side) -> SocketAddr {
        let ip = match side {
            Side::A => A_IP,
            Side::B => B_IP,
        };
        SocketAddrV4::new(ip, PORT).into()
    }

    /// A node bound to the side's address, inside its namespace.
    fn node(&self, side: Side, key: Option<[u8; 32]>, names: Names) -> FlowNode {
        let config = NodeConfig {
            endpoint: Config {
                key: key.map(FlowKey::new),
                ..Config::default()
            },
            names,
        };
        self.ns(side)
            .run(|| FlowNode::bind_with(Bed::addr(side), config))
            .unwrap_or_else(|e| panic!("binding {side:?}: {e}"))
    }

    /// The server node, with [`NAME`] registered.
    fn server(&self, key: Option<[u8; 32]>, names: Names) -> FlowNode {
        let node = self.node(Side::A, key, names);
        self.pair
            .a
            .run(|| node.register(NAME))
            .unwrap_or_else(|e| panic!("registering {NAME}: {e}"));
        node
    }

    /// Allocates a flow from `client` (on side B) to `target`, inside B's
    /// namespace (a directory lookup opens a socket there).
    fn alloc(&self, client: &FlowNode, target: &str, qos: QoS) -> Flow {
        self.pair
            .b
            .run(|| client.alloc(target, qos, T))
            .unwrap_or_else(|e| panic!("allocating {target} with {qos:?}: {e}"))
    }

    /// The flow datagrams each side's node sent through its veth end so far.
    fn sent(&self, side: Side) -> Counts {
        Counts::read(self.ns(side))
    }

    /// DATA and ACK datagrams damaged on their way into `side`.
    fn damaged(&self, side: Side) -> u64 {
        Counts::read(self.ns(side)).get("damaged")
    }

    /// Flow datagrams dropped on their way into `side`.
    fn dropped(&self, side: Side) -> u64 {
        Counts::read(self.ns(side)).get("dropped")
    }
}

/// The server's address as a client allocates it without a directory.
fn by_address() -> String {
    format!("{NAME}@{}", Bed::addr(Side::A))
}

/// The nftables ruleset of one side (see the module docs).
fn ruleset(iface: &str, drop_percent: u32, damage_percent: u32) -> String {
    let mut counters = String::new();
    let mut rules = String::new();
    let head = format!(r#"oifname "{iface}" udp sport {PORT}"#);
    // Bits from the start of the UDP header.
    let damage_bit = (8 + DAMAGED_BYTE) * 8;
    // UDP lengths of the datagrams that have that byte.
    let damage_len = 8 + DAMAGED_BYTE;
    for (name, code) in KINDS.iter().chain([&PARITY]) {
        counters.push_str(&format!("counter {name} {{}}\n"));
        rules.push_str(&format!(
            "{head} @th,72,8 {{ {code:#04x}, {:#04x} }} counter name {name}\n",
            code | 0x80
        ));
    }
    format!(
        r#"table inet flowns {{
  {counters}
  counter total {{}}
  counter dropped {{}}
  counter damaged {{}}
  chain output {{
    type filter hook output priority 0; policy accept;
    {head} counter name total
    {rules}
  }}
  chain input {{
    type filter hook input priority 0; policy accept;
    iifname "{iface}" udp dport {PORT} numgen random mod 100 < {drop_percent} counter name dropped drop
    iifname "{iface}" udp dport {PORT} udp length > {damage_len} @th,72,8 {{ 0x04, 0x84, 0x05, 0x85 }} numgen random mod 100 < {damage_percent} counter name damaged @th,{damage_bit},8 set 0x55
  }}
}}
"#
    )
}

/// Runs `nft -f -` with `script` inside `ns`.
fn nft(ns: &Netns, script: &str) {
    let mut child = ns
        .command("nft")
        .args(["-f", "-"])
        .stdin(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("running nft inside the namespace: install nftables (apt-get install nftables)");
    io::Write::write_all(&mut child.stdin.take().unwrap(), script.as_bytes()).unwrap();
    let out = child.wait_with_output().unwrap();
    assert!(
        out.status.success(),
        "nft failed: {}\n{script}",
        String::from_utf8_lossy(&out.stderr)
    );
}

/// The packet counts of the `flowns` table's named counters.
#[derive(Debug, Clone, PartialEq, Eq)]
struct Counts(HashMap<String, u64>);

impl Counts {
    fn read(ns: &Netns) -> Counts {
        let out = ns
            .command("nft")
            .args(["list", "counters", "table", "inet", "flowns"])
            .output()
            .expect("nft");
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
        Counts(parse_counters(&String::from_utf8_lossy(&out.stdout)))
    }

    fn get(&self, name: &str) -> u64 {
        *self
            .0
            .get(name)
            .unwrap_or_else(|| panic!("no counter {name} in {:?}", self.0))
    }

    /// Datagrams of every kind counted one by one.
    fn by_kind(&self) -> u64 {
        KINDS
            .iter()
            .chain([&PARITY])
            .map(|(name, _)| self.get(name))
            .sum()
    }
}

/// `counter NAME { packets N bytes M }` blocks, as `nft list counters` prints them.
fn parse_counters(text: &str) -> HashMap<String, u64> {
    let mut out = HashMap::new();
    let mut name = None;
    let mut words = text.split_whitespace();
    while let Some(w) = words.next() {
        match w {
            "counter" => name = words.next().map(str::to_owned),
            "packets" => {
                let n = words.next().and_then(|n| n.parse().ok());
                if let (Some(name), Some(n)) = (name.take(), n) {
                    out.insert(name, n);
                }
            }
            _ => {}
        }
    }
    out
}

/// A deterministic generator for SDU contents.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0
    }

    fn bytes(&mut self, n: usize) -> Vec<u8> {
        (0..n).map(|_| self.next() as u8).collect()
    }
}

/// `n` SDUs, SDU `i` being its index then pseudo-random bytes, `len(i)`
/// bytes in all (at least 4).
fn sdus(seed: u64, n: u32, len: impl Fn(usize) -> usize) -> Vec<Vec<u8>> {
    let mut rng = Rng(seed);
    (0..n)
        .map(|i| {
            let mut s = i.to_be_bytes().to_vec();
            s.extend(rng.bytes(len(i as usize).max(4) - 4));
            s
        })
        .collect()
}

fn index(s: &[u8]) -> u32 {
    u32::from_be_bytes([s[0], s[1], s[2], s[3]])
}

/// How often each of the `sent` SDUs is in `got`; panics on a damaged SDU.
fn arrivals(got: &[Vec<u8>], sent: &[Vec<u8>]) -> Vec<u32> {
    let mut seen = vec![0u32; sent.len()];
    for s in got {
        assert!(s.len() >= 4, "an SDU of {} bytes", s.len());
        let i = index(s) as usize;
        assert!(i < sent.len(), "SDU index {i} was never written");
        assert_eq!(*s, sent[i], "SDU {i} damaged");
        seen[i] += 1;
    }
    seen
}

/// DATA datagrams the first sending of `sdus` takes on a flow with `qos`.
fn fragments(sdus: &[Vec<u8>], qos: &QoS) -> u64 {
    let per = Config::default().fragment_len_for(&Layers::for_qos(qos));
    sdus.iter()
        .map(|s| s.len().div_ceil(per).max(1) as u64)
        .sum()
}

/// Reads `flow` until the writer said it is done (`done`) and the flow
/// stayed quiet for a second after that, or the peer left.
fn drain(flow: &Flow, done: &AtomicBool) -> Vec<Vec<u8>> {
    let mut got = Vec::new();
    let mut quiet = 0;
    loop {
        match flow.read(Some(Duration::from_millis(250))) {
            Ok(s) => got.push(s),
            Err(FlowNetError::TimedOut { .. }) => {
                if done.load(Ordering::Acquire) {
                    quiet += 1;
                    if quiet >= 4 {
                        return got;
                    }
                }
            }
            Err(FlowNetError::PeerGone) => return got,
            Err(e) => panic!("reading: {e}"),
        }
    }
}

/// Reads `n` SDUs from `flow`, each within [`T`].
fn read_n(flow: &Flow, n: usize) -> Vec<Vec<u8>> {
    (0..n)
        .map(|i| {
            flow.read(Some(T))
                .unwrap_or_else(|e| panic!("reading SDU {i} of {n}: {e}"))
        })
        .collect()
}

#[test]
fn arq_delivers_every_sdu_exactly_once_at_20_percent_drop_both_ways() {
    const N: u32 = 300;
    for (qos, seed) in [(QoS::DATA, 1), (QoS::DATA_CRYPT, 2)] {
        let key = (qos.cypher_s > 0).then_some(KEY);
        let bed = Bed::new(20);
        let server = bed.server(key, Names::default());
        let client = bed.node(Side::B, key, Names::default());
        // Several fragments for many SDUs.
        let sdus = sdus(seed, N, |i| 4 + (i * 397) % 3000);
        let got = std::thread::scope(|s| {
            let reader = s.spawn(|| {
                let flow = server.accept(Some(T)).expect("accepting");
                let got = read_n(&flow, N as usize);
                // Nothing more comes.
                match flow.read(Some(Duration::from_secs(1))) {
                    Err(FlowNetError::TimedOut { .. }) => {}
                    other => panic!("{qos:?}: after {N} SDUs: {other:?}"),
                }
                // The flow stays until the writer saw everything acknowledged.
                (flow, got)
            });
            let started = Instant::now();
            let flow = bed.alloc(&client, &by_address(), qos);
            assert!(flow.layers().arq && flow.layers().reorder);
            for s in &sdus {
                flow.write(s).unwrap();
            }
            flow.flush(Duration::from_secs(300))
                .unwrap_or_else(|e| panic!("{qos:?}: flushing: {e}"));
            let (_accepted, got) = reader.join().unwrap();
            // Counted while the flow is still up: no DEALLOC yet.
            let sent = bed.sent(Side::B);
            let first = fragments(&sdus, &qos);
            eprintln!(
                "arq {qos:?}: {N} SDUs in {first} fragments, {} DATA sent, {} ACKs back, \
                 dropped {} on the way there and {} on the way back, in {:?}",
                sent.get("data"),
                bed.sent(Side::A).get("ack"),
                bed.dropped(Side::A),
                bed.dropped(Side::B),
                started.elapsed()
            );
            assert!(
                sent.get("data") > first,
                "{qos:?}: no DATA sent again: {sent:?}"
            );
            assert!(bed.dropped(Side::A) > 0 && bed.dropped(Side::B) > 0);
            got
        });
        let seen = arrivals(&got, &sdus);
        assert!(seen.iter().all(|&n| n == 1), "{qos:?}: {seen:?}");
        let order: Vec<u32> = got.iter().map(|s| index(s)).collect();
        assert_eq!(order, (0..N).collect::<Vec<_>>(), "{qos:?}");
    }
}

#[test]
fn best_effort_sends_one_data_datagram_per_sdu_with_and_without_drop() {
    const N: u32 = 400;
    // In order, a lost SDU is skipped after half a second.
    let best_effort = QoS {
        max_gap: 500,
        ..QoS::BEST_EFFORT_CRYPT
    };
    for (qos, seed) in [(QoS::RAW, 61), (QoS::RAW_CRYPT, 62), (best_effort, 63)] {
        let layers = Layers::for_qos(&qos);
        assert!(!layers.arq && layers.fec.is_none(), "{qos:?}");
        let key = (qos.cypher_s > 0).then_some(KEY);
        // Each SDU fits one datagram, sealed or not.
        let sdus = sdus(seed, N, |i| 4 + (i * 7) % 1100);
        assert_eq!(fragments(&sdus, &qos), u64::from(N));
        for drop_percent in [0, 20] {
            let bed = Bed::new(drop_percent);
            let server = bed.server(key, Names::default());
            let client = bed.node(Side::B, key, Names::default());
            let done = AtomicBool::new(false);
            let (got, sent, acks) = std::thread::scope(|s| {
                let reader = s.spawn(|| {
                    let flow = server.accept(Some(T)).expect("accepting");
                    let got = drain(&flow, &done);
                    (flow, got)
                });
                let flow = bed.alloc(&client, &by_address(), qos);
                for s in &sdus {
                    flow.write(s).unwrap();
                }
                flow.flush(T).unwrap();
                done.store(true, Ordering::Release);
                let (_accepted, got) = reader.join().unwrap();
                // Both ends are still up: no DEALLOC counted.
                (got, bed.sent(Side::B), bed.sent(Side::A).get("ack"))
            });
            let what = format!("{qos:?} at {drop_percent}% drop");
            eprintln!(
                "best effort {what}: {} DATA, {} ALLOC, {} KEEPALIVE, {} datagrams in all; \
                 {} ACKs; {} of {N} SDUs arrived",
                sent.get("data"),
                sent.get("alloc"),
                sent.get("keepalive"),
                sent.get("total"),
                acks,
                got.len()
            );
            // Exactly one DATA per SDU; besides them only the ALLOC (sent
            // again while unanswered) and keepalives; nothing acknowledged.
            assert_eq!(sent.get("data"), u64::from(N), "{what}: {sent:?}");
            assert!(sent.get("alloc") >= 1, "{what}: {sent:?}");
            assert_eq!(
                sent.get("total"),
                sent.get("data") + sent.get("alloc") + sent.get("keepalive"),
                "{what}: {sent:?}"
            );
            assert_eq!(sent.get("total"), sent.by_kind(), "{what}: {sent:?}");
            assert_eq!(acks, 0, "{what}");
            let seen = arrivals(&got, &sdus);
            assert!(seen.iter().all(|&n| n <= 1), "{what}: an SDU twice");
            if drop_percent == 0 {
                assert_eq!(got.len(), N as usize, "{what}");
            } else {
                let lost = N as usize - got.len();
                assert!(
                    lost > 0 && got.len() > N as usize / 2,
                    "{what}: {} arrived",
                    got.len()
                );
            }
            if layers.reorder {
                let order: Vec<u32> = got.iter().map(|s| index(s)).collect();
                assert!(order.windows(2).all(|w| w[0] < w[1]), "{what}: {order:?}");
            }
        }
    }
}

/// Every frame seen on one interface, both ways, by a packet socket.
struct Capture {
    stop: Arc<AtomicBool>,
    thread: JoinHandle<Vec<Vec<u8>>>,
}

impl Capture {
    /// Starts capturing on `iface` in `ns`.
    fn start(ns: &Netns, iface: &str) -> Capture {
        let fd = ns
            .run(|| packet_socket(iface))
            .expect("opening a packet socket");
        let stop = Arc::new(AtomicBool::new(false));
        let flag = stop.clone();
        let thread = std::thread::spawn(move || {
            let mut frames = Vec::new();
            let mut buf = vec![0u8; 65_536];
            loop {
                // SAFETY: `buf` is writable for `buf.len()` bytes and `fd` is open.
                let n =
                    unsafe { libc::recv(fd.as_raw_fd(), buf.as_mut_ptr().cast(), buf.len(), 0) };
                if n > 0 {
                    frames.push(buf[..n as usize].to_vec());
                } else if flag.load(Ordering::Acquire) {
                    // A timed-out wait after the stop: everything was read.
                    return frames;
                }
            }
        });
        Capture { stop, thread }
    }

    /// Stops and returns the frames.
    fn finish(self) -> Vec<Vec<u8>> {
        self.stop.store(true, Ordering::Release);
        self.thread.join().unwrap()
    }
}

/// An `AF_PACKET` socket receiving every frame of `iface` (in the calling
/// thread's namespace), with a large buffer and reads that time out.
fn packet_socket(iface: &str) -> io::Result<OwnedFd> {
    let proto = (libc::ETH_P_ALL as u16).to_be();
    let name = std::ffi::CString::new(iface).unwrap();
    // SAFETY: `name` is a valid C string.
    let index = unsafe { libc::if_nametoindex(name.as_ptr()) };
    if index == 0 {
        return Err(io::Error::last_os_error());
    }
    // SAFETY: plain socket creation; the result is checked.
    let raw = unsafe { libc::socket(libc::AF_PACKET, libc::SOCK_RAW, i32::from(proto)) };
    if raw < 0 {
        return Err(io::Error::last_os_error());
    }
    // SAFETY: `raw` is a new socket nothing else owns.
    let fd = unsafe { OwnedFd::from_raw_fd(raw) };
    // SAFETY: sockaddr_ll is plain data; zero is a valid value of each field.
    let mut addr: libc::sockaddr_ll = unsafe { std::mem::zeroed() };
    addr.sll_family = libc::AF_PACKET as u16;
    addr.sll_protocol = proto;
    addr.sll_ifindex = index as i32;
    // SAFETY: `addr` is a sockaddr_ll of the length given.
    let r = unsafe {
        libc::bind(
            fd.as_raw_fd(),
            (&addr as *const libc::sockaddr_ll).cast(),
            std::mem::size_of::<libc::sockaddr_ll>() as libc::socklen_t,
        )
    };
    if r != 0 {
        return Err(io::Error::last_os_error());
    }
    let size: libc::c_int = 16 << 20;
    let timeout = libc::timeval {
        tv_sec: 0,
        tv_usec: 100_000,
    };
    for (opt, value, len) in [
        (
            libc::SO_RCVBUFFORCE,
            (&size as *const libc::c_int).cast(),
            std::mem::size_of::<libc::c_int>(),
        ),
        (
            libc::SO_RCVTIMEO,
            (&timeout as *const libc::timeval).cast(),
            std::mem::size_of::<libc::timeval>(),
        ),
    ] {
        // SAFETY: `value` points at `len` readable bytes of the option's type.
        let r = unsafe {
            libc::setsockopt(
                fd.as_raw_fd(),
                libc::SOL_SOCKET,
                opt,
                value,
                len as libc::socklen_t,
            )
        };
        if r != 0 {
            return Err(io::Error::last_os_error());
        }
    }
    Ok(fd)
}

/// The UDP payload of an Ethernet frame carrying IPv4 UDP from or to
/// `port`.
fn udp_payload(frame: &[u8], port: u16) -> Option<&[u8]> {
    if frame.len() < 14 || frame[12..14] != [0x08, 0x00] {
        return None;
    }
    let ip = &frame[14..];
    let ihl = usize::from(*ip.first()? & 0x0f) * 4;
    if ip.len() < ihl + 8 || ip[9] != 17 {
        return None;
    }
    let udp = &ip[ihl..];
    let (sport, dport) = (
        u16::from_be_bytes([udp[0], udp[1]]),
        u16::from_be_bytes([udp[2], udp[3]]),
    );
    (sport == port || dport == port).then_some(&udp[8..])
}

/// Every 12-byte window of the SDUs.
fn windows(sdus: &[Vec<u8>]) -> HashSet<[u8; 12]> {
    sdus.iter()
        .flat_map(|s| s.windows(12))
        .map(|w| w.try_into().unwrap())
        .collect()
}

/// How many frames hold a 12-byte window of an SDU.
fn leaks(frames: &[Vec<u8>], sdus: &[Vec<u8>]) -> usize {
    let w = windows(sdus);
    frames
        .iter()
        .filter(|f| {
            f.windows(12)
                .any(|x| w.contains(<&[u8; 12]>::try_from(x).unwrap()))
        })
        .count()
}

/// Echoes `sdus` through a flow with `qos` found through the directory
/// server, capturing the veth; returns the SDUs that came back and the
/// frames.
fn captured_echo(qos: QoS, key: Option<[u8; 32]>, sdus: &[Vec<u8>]) -> (usize, Vec<Vec<u8>>) {
    let bed = Bed::new(0);
    let directory_addr: SocketAddr = SocketAddrV4::new(A_IP, DIRECTORY_PORT).into();
    let _directory = bed
        .pair
        .a
        .run(|| DirectoryServer::spawn(directory_addr))
        .expect("starting the directory server");
    let names = Names {
        server: Some(directory_addr),
        ..Names::default()
    };
    let capture = Capture::start(&bed.pair.b, &bed.pair.b_if);
    let server = bed.server(key, names.clone());
    let client = bed.node(Side::B, key, names);
    let done = AtomicBool::new(false);
    let echoed = std::thread::scope(|s| {
        s.spawn(|| {
            let flow = server.accept(Some(T)).expect("accepting");
            let mut quiet = 0;
            loop {
                match flow.read(Some(Duration::from_millis(250))) {
                    Ok(m) => flow.write(&m).unwrap(),
                    Err(FlowNetError::TimedOut { .. }) if !done.load(Ordering::Acquire) => {}
                    Err(FlowNetError::TimedOut { .. }) if quiet < 4 => quiet += 1,
                    Err(FlowNetError::TimedOut { .. } | FlowNetError::PeerGone) => return,
                    Err(e) => panic!("echo server: {e}"),
                }
            }
        });
        // Found by name alone, through the directory in the other namespace.
        let flow = bed.alloc(&client, NAME, qos);
        assert_eq!(flow.peer(), Bed::addr(Side::A));
        for s in sdus {
            flow.write(s).unwrap();
        }
        let mut echoed = 0;
        let deadline = Instant::now() + T;
        while echoed < sdus.len() && Instant::now() < deadline {
            let quiet = if qos.loss == 0 {
                T
            } else {
                Duration::from_secs(3)
            };
            match flow.read(Some(quiet)) {
                Ok(m) => {
                    assert!(arrivals(&[m], sdus).iter().sum::<u32>() == 1);
                    echoed += 1;
                }
                Err(FlowNetError::TimedOut { .. }) if qos.loss > 0 => break,
                Err(e) => panic!("{qos:?}: reading echoes: {e}"),
            }
        }
        done.store(true, Ordering::Release);
        echoed
    });
    drop(client);
    drop(server);
    (echoed, capture.finish())
}

#[test]
fn encrypted_flow_leaves_no_plaintext_on_the_veth() {
    const N: u32 = 60;
    let sdus = sdus(99, N, |i| 16 + (i * 211) % 2500);
    for qos in [QoS::DATA_CRYPT, QoS::VIDEO_CRYPT, QoS::RAW_CRYPT] {
        let (echoed, frames) = captured_echo(qos, Some(KEY), &sdus);
        let flow_datagrams: Vec<&[u8]> =
            frames.iter().filter_map(|f| udp_payload(f, PORT)).collect();
        eprintln!(
            "{qos:?}: {echoed} of {N} echoed, {} frames captured, {} flow datagrams",
            frames.len(),
            flow_datagrams.len()
        );
        if qos.loss == 0 {
            assert_eq!(echoed, N as usize, "{qos:?}");
        } else {
            // Without retransmission a real socket may lose one now and then.
            assert!(echoed >= N as usize * 9 / 10, "{qos:?}: {echoed} echoed");
        }
        // The capture saw the SDUs go and come back.
        assert!(flow_datagrams.len() >= 2 * N as usize, "{qos:?}");
        assert_eq!(leaks(&frames, &sdus), 0, "{qos:?}");
        for d in &flow_datagrams {
            let repr = Repr::parse(d)
                .unwrap_or_else(|e| panic!("{qos:?}: a datagram that is no flow datagram: {e:?}"));
            assert!(repr.is_sealed(), "{qos:?}: {repr:?}");
        }
        if Layers::for_qos(&qos).fec.is_some() {
            assert!(
                flow_datagrams.iter().any(|d| d[1] == PARITY.1 | 0x80),
                "{qos:?}: no PARITY captured"
            );
        }
    }
    // The search finds the SDUs where they travel in the clear.
    let (echoed, frames) = captured_echo(QoS::DATA, None, &sdus);
    assert_eq!(echoed, N as usize);
    assert!(leaks(&frames, &sdus) >= 2 * N as usize);
}

/// Server and client nodes on `bed` and a flow with `qos` between them:
/// the client's end, then the server's.
fn connected(bed: &Bed, qos: QoS) -> (FlowNode, FlowNode, Flow, Flow) {
    let key = (qos.cypher_s > 0).then_some(KEY);
    let server = bed.server(key, Names::default());
    let client = bed.node(Side::B, key, Names::default());
    let (flow, accepted) = std::thread::scope(|s| {
        let accepting = s.spawn(|| server.accept(Some(T)).expect("accepting"));
        let flow = bed.alloc(&client, &by_address(), qos);
        (flow, accepting.join().unwrap())
    });
    (server, client, flow, accepted)
}

/// Waits for an event of `flow` other than [`EventKind::Packet`] on
/// `set`; returns it and how long after `since` it came.
fn ending(set: &FlowSet, flow: &Flow, since: Instant) -> (EventKind, Duration) {
    while since.elapsed() < T {
        for ev in set.wait(Some(Duration::from_secs(1))).unwrap() {
            assert_eq!(ev.flow, flow.id());
            if ev.kind != EventKind::Packet {
                return (ev.kind, since.elapsed());
            }
        }
    }
    panic!("{:?}: still up after {T:?}", flow.qos())
}

#[test]
fn peer_whose_link_goes_down_brings_the_flow_down_within_its_timeout() {
    const TIMEOUT_MS: u32 = 3_000;
    let timeout = Duration::from_millis(u64::from(TIMEOUT_MS));
    for qos in [QoS::DATA_CRYPT, QoS::VIDEO_CRYPT, QoS::RAW] {
        let qos = qos.with_timeout(TIMEOUT_MS);
        let bed = Bed::new(0);
        let (_server, client, flow, accepted) = connected(&bed, qos);
        let sdus = sdus(7, 20, |_| 300);
        for s in &sdus {
            flow.write(s).unwrap();
        }
        assert_eq!(read_n(&accepted, sdus.len()), sdus, "{qos:?}");
        // The peers keep each other alive well past the timeout.
        std::thread::sleep(timeout + timeout / 2);
        assert!(!flow.is_ended(), "{qos:?}: down while the peer was there");
        let set = client.flow_set();
        set.add(&flow);
        // The server's side of the link goes down; the client writes into the void.
        let vanish = Instant::now();
        bed.pair
            .a
            .ip(&["link", "set", "dev", &bed.pair.a_if, "down"]);
        flow.write(b"anyone?").unwrap();
        let (kind, down) = ending(&set, &flow, vanish);
        assert_eq!(kind, EventKind::Down, "{qos:?}");
        eprintln!("{qos:?}: down {down:?} after the link went down (timeout {timeout:?})");
        assert!(
            down <= timeout + DOWN_MARGIN,
            "{qos:?}: down after {down:?}"
        );
        // The peer spoke at least every quarter timeout while it was there.
        assert!(down >= timeout / 2, "{qos:?}: down after only {down:?}");
        assert!(flow.is_ended());
        match flow.read(Some(Duration::ZERO)) {
            Err(FlowNetError::PeerGone) => {}
            other => panic!("{qos:?}: reading a flow that is down: {other:?}"),
        }
    }
}

#[test]
fn peer_whose_node_is_dropped_deallocates_the_flow() {
    for qos in [QoS::DATA_CRYPT, QoS::RAW] {
        let bed = Bed::new(0);
        let (server, client, flow, accepted) = connected(&bed, qos);
        flow.write(b"hello").unwrap();
        assert_eq!(accepted.read(Some(T)).unwrap(), b"hello");
        let set = client.flow_set();
        set.add(&flow);
        assert_eq!(bed.sent(Side::A).get("dealloc"), 0);
        // The node goes while its application still holds the flow.
        let gone = Instant::now();
        drop(server);
        let (kind, after) = ending(&set, &flow, gone);
        eprintln!("{qos:?}: {kind:?} {after:?} after the peer's node was dropped");
        assert_eq!(kind, EventKind::Dealloc, "{qos:?}");
        assert!(bed.sent(Side::A).get("dealloc") >= 1, "{qos:?}");
        assert!(flow.is_ended());
        match flow.read(Some(Duration::ZERO)) {
            Err(FlowNetError::PeerGone) => {}
            other => panic!("{qos:?}: reading a deallocated flow: {other:?}"),
        }
        match accepted.read(Some(Duration::ZERO)) {
            Err(FlowNetError::NodeStopped(_)) => {}
            other => panic!("{qos:?}: reading through a dropped node: {other:?}"),
        }
    }
}

#[test]
fn damaged_datagrams_never_reach_an_encrypted_application() {
    const N: u32 = 200;
    let sdus = sdus(5, N, |i| 4 + (i * 97) % 2000);
    // A tenth of the DATA and ACK datagrams damaged on the way in, and a
    // few dropped.
    let bed = Bed::damaging(5, 10);
    let (_server, _client, flow, accepted) = connected(&bed, QoS::DATA_CRYPT);
    for s in &sdus {
        flow.write(s).unwrap();
    }
    let got = read_n(&accepted, N as usize);
    flow.flush(T).unwrap();
    let seen = arrivals(&got, &sdus);
    assert!(seen.iter().all(|&n| n == 1), "{seen:?}");
    let order: Vec<u32> = got.iter().map(|s| index(s)).collect();
    assert_eq!(order, (0..N).collect::<Vec<_>>());
    let (damaged_data, damaged_acks) = (bed.damaged(Side::A), bed.damaged(Side::B));
    let sent = bed.sent(Side::B).get("data");
    let first = fragments(&sdus, &QoS::DATA_CRYPT);
    eprintln!(
        "damage: {N} SDUs in {first} fragments, {sent} DATA sent, {damaged_data} DATA and \
         {damaged_acks} ACKs damaged"
    );
    assert!(damaged_data > 0 && damaged_acks > 0);
    // Damaged DATA was refused and sent again.
    assert!(sent > first);

    // A plain flow hands damaged SDUs to its application: the check above
    // can fail.
    let bed = Bed::damaging(0, 10);
    let (_server, _client, flow, accepted) = connected(&bed, QoS::DATA);
    for s in &sdus {
        flow.write(s).unwrap();
    }
    let got = read_n(&accepted, N as usize);
    let damaged = got
        .iter()
        .filter(|s| s.len() < 4 || sdus.get(index(s) as usize) != Some(*s))
        .count();
    eprintln!("damage on a plain flow: {damaged} of {N} SDUs damaged");
    assert!(damaged > 0 && bed.damaged(Side::A) > 0);
}

#[test]
fn another_key_or_none_is_refused_with_its_reason() {
    for (server_key, reason) in [
        (Some([0x24; 32]), Reason::KeyMismatch),
        (None, Reason::NoKey),
    ] {
        let bed = Bed::new(0);
        let server = bed.server(server_key, Names::default());
        let client = bed.node(Side::B, Some(KEY), Names::default());
        let answer = bed
            .pair
            .b
            .run(|| client.alloc(&by_address(), QoS::DATA_CRYPT, T));
        match answer {
            Err(FlowNetError::Refused {
                name,
                peer,
                reason: r,
            }) => {
                assert_eq!((name.as_str(), peer, r), (NAME, Bed::addr(Side::A), reason));
            }
            other => panic!("{server_key:?}: {other:?}"),
        }
        assert!(bed.sent(Side::A).get("refused") >= 1);
        // The server's application never heard of it.
        match server.accept(Some(Duration::from_millis(500))) {
            Err(FlowNetError::TimedOut { .. }) => {}
            other => panic!("{server_key:?}: accepted {other:?}"),
        }
    }
}

/// What one stream of SDUs at 5 % drop did.
struct Stream {
    delivered: usize,
    data: u64,
    parity: u64,
    acks: u64,
    dropped: u64,
}

/// Writes `n` SDUs of 200 to 1100 bytes, one every 2 ms, on a flow with
/// `qos` through 5 % random drop both ways, on a test bed of its own.
fn stream(qos: QoS, n: u32, seed: u64) -> Stream {
    const EVERY: Duration = Duration::from_millis(2);
    let key = (qos.cypher_s > 0).then_some(KEY);
    let sdus = sdus(seed, n, |i| 200 + (i * 61) % 900);
    assert_eq!(fragments(&sdus, &qos), u64::from(n));
    let bed = Bed::new(5);
    let server = bed.server(key, Names::default());
    let client = bed.node(Side::B, key, Names::default());
    let done = AtomicBool::new(false);
    std::thread::scope(|s| {
        let reader = s.spawn(|| {
            let flow = server.accept(Some(T)).expect("accepting");
            let got = drain(&flow, &done);
            (flow, got)
        });
        let flow = bed.alloc(&client, &by_address(), qos);
        let start = Instant::now();
        for (i, s) in sdus.iter().enumerate() {
            flow.write(s).unwrap();
            let next = start + EVERY * (i as u32 + 1);
            std::thread::sleep(next.saturating_duration_since(Instant::now()));
        }
        flow.flush(T).unwrap();
        done.store(true, Ordering::Release);
        let (_accepted, got) = reader.join().unwrap();
        let seen = arrivals(&got, &sdus);
        assert!(seen.iter().all(|&c| c <= 1), "{qos:?}: an SDU twice");
        let sent = bed.sent(Side::B);
        Stream {
            delivered: got.len(),
            data: sent.get("data"),
            parity: sent.get("parity"),
            acks: bed.sent(Side::A).get("ack"),
            dropped: bed.dropped(Side::A),
        }
    })
}

#[test]
fn fec_flow_at_5_percent_drop_rebuilds_without_retransmission() {
    const N: u32 = 1_000;
    for (qos, seed) in [(QoS::VIDEO, 71), (QoS::VIDEO_CRYPT, 72)] {
        assert!(Layers::for_qos(&qos).fec.is_some(), "{qos:?}");
        // The same stream with a loose gap gets no parity.
        let control = QoS {
            max_gap: 1_000,
            delay: 1_000,
            ..qos
        };
        assert!(Layers::for_qos(&control).fec.is_none());
        let (s, c) = std::thread::scope(|scope| {
            let c = scope.spawn(|| stream(control, N, seed));
            let s = stream(qos, N, seed);
            (s, c.join().unwrap())
        });
        let share = s.delivered as f64 / f64::from(N);
        eprintln!(
            "fec {N} SDUs, 5% drop, cypher {}: delivered {:.2}% ({} DATA, {} PARITY, {} dropped \
             at the receiver); without parity {:.2}% ({} DATA, {} dropped)",
            qos.cypher_s,
            100.0 * share,
            s.data,
            s.parity,
            s.dropped,
            100.0 * c.delivered as f64 / f64::from(N),
            c.data,
            c.dropped
        );
        assert!(
            share >= FEC_MIN_DELIVERED,
            "{qos:?}: delivered {share:.4} of the SDUs"
        );
        // No retransmission, no acknowledgement: one DATA per SDU.
        assert_eq!((s.data, s.acks), (u64::from(N), 0), "{qos:?}");
        assert_eq!((c.data, c.acks, c.parity), (u64::from(N), 0, 0), "{qos:?}");
        assert!(s.parity > 0 && s.dropped > 0 && c.dropped > 0, "{qos:?}");
        assert!(
            c.delivered < s.delivered,
            "{qos:?}: {} without parity, {} with",
            c.delivered,
            s.delivered
        );
    }
}

/// Holds back `percent` of the flow datagrams leaving `side` in a 2 Mbit/s HTB
/// class (nftables sets their priority to it) while the rest leave at once, so
/// they arrive after later ones: reordering on a real veth, without netem.
fn reorder(bed: &Bed, side: Side, percent: u32) {
    let (ns, dev) = (bed.ns(side), bed.iface(side));
    for args in [
        &[
            "qdisc", "add", "dev", dev, "root", "handle", "1:", "htb", "default", "10", "r2q",
            "100000",
        ][..],
        &[
            "class", "add", "dev", dev, "parent", "1:", "classid", "1:10", "htb", "rate", "10gbit",
        ],
        &[
            "class", "add", "dev", dev, "parent", "1:", "classid", "1:20", "htb", "rate", "2mbit",
            "ceil", "2mbit", "burst", "1600", "cburst", "1600",
        ],
    ] {
        let out = ns
            .command("tc")
            .args(args)
            .output()
            .expect("running tc inside the namespace: install iproute2");
        assert!(
            out.status.success(),
            "tc {}: {}",
            args.join(" "),
            String::from_utf8_lossy(&out.stderr)
        );
    }
    nft(
        ns,
        &format!(
            "table inet reorder {{\n  chain output {{\n    type filter hook output priority 0;\n    \
             oifname \"{dev}\" udp sport {PORT} numgen random mod 100 < {percent} meta priority set 1:20\n  }}\n}}\n"
        ),
    );
}

#[test]
fn in_order_flow_delivers_in_sequence_through_reordering() {
    const N: u32 = 400;
    let sdus = sdus(7, N, |i| 200 + (i * 131) % 1000);
    let run = |qos: QoS| -> Vec<u32> {
        let bed = Bed::new(0);
        reorder(&bed, Side::B, 20);
        let server = bed.server(None, Names::default());
        let client = bed.node(Side::B, None, Names::default());
        let done = AtomicBool::new(false);
        let got = std::thread::scope(|s| {
            let reader = s.spawn(|| {
                let flow = server.accept(Some(T)).expect("accepting");
                drain(&flow, &done)
            });
            let flow = bed.alloc(&client, &by_address(), qos);
            for s in &sdus {
                flow.write(s).unwrap();
            }
            flow.flush(Duration::from_secs(120))
                .unwrap_or_else(|e| panic!("{qos:?}: flushing: {e}"));
            done.store(true, Ordering::Release);
            reader.join().unwrap()
        });
        let seen = arrivals(&got, &sdus);
        assert!(seen.iter().all(|&n| n <= 1), "{qos:?}: an SDU twice");
        got.iter().map(|s| index(s)).collect()
    };
    // SDUs handed over after one written later.
    let late = |o: &[u32]| {
        let mut top = None;
        o.iter()
            .filter(|&&i| {
                let behind = top.is_some_and(|t| i < t);
                top = top.max(Some(i));
                behind
            })
            .count()
    };
    // Unordered: the veth's reordering reaches the application.
    let raw = run(QoS::RAW);
    eprintln!(
        "reorder: raw flow {} of {N} SDUs, {} handed over late",
        raw.len(),
        late(&raw)
    );
    assert!(late(&raw) >= 10, "the veth hardly reordered: {raw:?}");
    // In order (and reliable): every SDU, in sequence.
    let data = run(QoS::DATA);
    assert_eq!(data, (0..N).collect::<Vec<_>>());
}
