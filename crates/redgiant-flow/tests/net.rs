//! Flows over loopback UDP: names through the file directory, static
//! entries and the directory server; reliable delivery; timeouts,
//! non-blocking reads, deallocation from another thread, size limits; one
//! flow-set thread serving a thousand flows.

use std::collections::HashMap;
use std::net::SocketAddr;
use std::path::Path;
use std::time::{Duration, Instant};

use redgiant_flow::net::directory::{self, DirectoryServer};
use redgiant_flow::net::names::{self, Names};
use redgiant_flow::net::{EventKind, Flow, FlowNetError, FlowNode, NodeConfig};
use redgiant_flow::wire::Reason;
use redgiant_flow::{Config, QoS};

const LOOPBACK: &str = "127.0.0.1:0";
const T: Duration = Duration::from_secs(10);

fn node(names: Names) -> FlowNode {
    let config = NodeConfig {
        endpoint: Config {
            max_flows: 4096,
            ..Config::default()
        },
        names,
    };
    FlowNode::bind_with(LOOPBACK.parse().unwrap(), config).unwrap()
}

fn dir_names(dir: &Path) -> Names {
    Names {
        dir: Some(dir.to_path_buf()),
        ..Names::default()
    }
}

/// Accepts one flow and echoes every message until the peer leaves.
fn echo_one(server: &FlowNode) {
    let flow = server.accept(Some(T)).unwrap();
    loop {
        match flow.read(Some(T)) {
            Ok(m) => flow.write(&m).unwrap(),
            Err(FlowNetError::PeerGone) => return,
            Err(e) => panic!("server read: {e}"),
        }
    }
}

fn ping(flow: &Flow, n: usize) {
    for i in 0..n {
        let msg = format!("ping {i} {}", "x".repeat(i * 37 % 3000));
        flow.write(msg.as_bytes()).unwrap();
        assert_eq!(flow.read(Some(T)).unwrap(), msg.as_bytes());
    }
}

#[test]
fn test_echo_through_file_directory() {
    let dir = tempfile::tempdir().unwrap();
    let server = node(dir_names(dir.path()));
    server.register("echo.files").unwrap();
    let entry = dir.path().join("echo.files");
    let text = std::fs::read_to_string(&entry).unwrap();
    assert_eq!(
        text.lines().next().unwrap(),
        server.local_addr().to_string()
    );
    let client = node(dir_names(dir.path()));
    assert_eq!(client.resolve("echo.files").unwrap(), server.local_addr());
    std::thread::scope(|s| {
        s.spawn(|| echo_one(&server));
        let flow = client.alloc("echo.files", QoS::DATA, T).unwrap();
        assert_eq!(flow.name(), "echo.files");
        assert_eq!(flow.peer(), server.local_addr());
        assert_eq!(flow.qos(), QoS::DATA);
        assert!(flow.layers().arq && flow.layers().reorder);
        ping(&flow, 20);
        flow.dealloc().unwrap();
    });
    drop(server);
    assert!(!entry.exists(), "the entry outlived its node");
    match client.alloc("echo.files", QoS::DATA, T) {
        Err(FlowNetError::UnknownName { name, .. }) => assert_eq!(name, "echo.files"),
        other => panic!("{other:?}"),
    }
}

#[test]
fn test_bind_name_registers_on_bind() {
    let dir = tempfile::tempdir().unwrap();
    let server = node(Names {
        bind: Some("auto name".into()),
        ..dir_names(dir.path())
    });
    let client = node(dir_names(dir.path()));
    assert_eq!(client.resolve("auto name").unwrap(), server.local_addr());
    std::thread::scope(|s| {
        s.spawn(|| echo_one(&server));
        let flow = client.alloc("auto name", QoS::BEST_EFFORT, T).unwrap();
        ping(&flow, 3);
    });
}

#[test]
fn test_echo_through_static_names() {
    let server = node(Names::default());
    server.register("echo.static").unwrap();
    let statics = names::parse_statics(&format!(
        "other=127.0.0.1:9,echo.static={}",
        server.local_addr()
    ))
    .unwrap();
    let client = node(Names {
        statics,
        ..Names::default()
    });
    std::thread::scope(|s| {
        s.spawn(|| echo_one(&server));
        let flow = client.alloc("echo.static", QoS::DATA, T).unwrap();
        ping(&flow, 5);
    });
    // NAME@HOST:PORT needs no lookup.
    std::thread::scope(|s| {
        s.spawn(|| echo_one(&server));
        let target = format!("echo.static@{}", server.local_addr());
        let flow = client.alloc(&target, QoS::RAW, T).unwrap();
        assert!(!flow.layers().arq);
        ping(&flow, 2);
    });
}

#[test]
fn test_echo_through_directory_server() {
    let dirsrv = DirectoryServer::spawn(LOOPBACK.parse().unwrap()).unwrap();
    let names = Names {
        server: Some(dirsrv.local_addr()),
        ..Names::default()
    };
    let server = node(names.clone());
    server.register("echo.dir").unwrap();
    assert_eq!(
        directory::lookup(dirsrv.local_addr(), "echo.dir").unwrap(),
        Some(server.local_addr())
    );
    let client = node(names);
    std::thread::scope(|s| {
        s.spawn(|| echo_one(&server));
        let flow = client.alloc("echo.dir", QoS::DATA, T).unwrap();
        ping(&flow, 5);
    });
    drop(server);
    assert_eq!(
        directory::lookup(dirsrv.local_addr(), "echo.dir").unwrap(),
        None
    );
    let err = client.alloc("echo.dir", QoS::DATA, T).unwrap_err();
    assert!(
        err.to_string()
            .contains(&format!("directory server {}", dirsrv.local_addr())),
        "{err}"
    );
}

#[test]
fn test_reliable_every_message_once_in_order() {
    let server = node(Names::default());
    server.register("sink").unwrap();
    let client = node(Names::default());
    const N: u32 = 3000;
    std::thread::scope(|s| {
        let reader = s.spawn(|| {
            let flow = server.accept(Some(T)).unwrap();
            for i in 0..N {
                let m = flow.read(Some(T)).unwrap();
                assert_eq!(u32::from_be_bytes(m[..4].try_into().unwrap()), i);
                assert_eq!(m.len(), 4 + (i as usize * 131) % 4000);
                assert!(m[4..].iter().all(|&b| b == i as u8));
            }
            // Nothing more: no duplicate comes later.
            match flow.read(Some(Duration::from_millis(300))) {
                Err(FlowNetError::TimedOut { .. }) => {}
                other => panic!("{other:?}"),
            }
        });
        let flow = client
            .alloc(&format!("sink@{}", server.local_addr()), QoS::DATA, T)
            .unwrap();
        for i in 0..N {
            let mut m = i.to_be_bytes().to_vec();
            m.resize(4 + (i as usize * 131) % 4000, i as u8);
            flow.write(&m).unwrap();
        }
        flow.flush(T).unwrap();
        reader.join().unwrap();
    });
}

#[test]
fn test_unknown_name_is_clear() {
    let dir = tempfile::tempdir().unwrap();
    let client = node(dir_names(dir.path()));
    let err = client
        .alloc("nobody-serves-this", QoS::DATA, T)
        .unwrap_err();
    assert!(matches!(err, FlowNetError::UnknownName { .. }), "{err:?}");
    let text = err.to_string();
    assert!(text.contains("\"nobody-serves-this\""), "{text}");
    assert!(text.contains("rgtp flow bind nobody-serves-this"), "{text}");
    assert!(text.contains(&dir.path().display().to_string()), "{text}");
    // A node that does not serve the name refuses it.
    let other = node(Names::default());
    let err = client
        .alloc(&format!("nope@{}", other.local_addr()), QoS::DATA, T)
        .unwrap_err();
    match &err {
        FlowNetError::Refused { name, reason, .. } => {
            assert_eq!(name, "nope");
            assert_eq!(*reason, Reason::NoSuchName);
        }
        e => panic!("{e:?}"),
    }
    assert!(err.to_string().contains("does not serve"), "{err}");
}

/// A connected pair: (client flow, server flow).
fn pair(server: &FlowNode, client: &FlowNode, qos: QoS) -> (Flow, Flow) {
    server.register("pair").unwrap();
    std::thread::scope(|s| {
        let accepted = s.spawn(|| server.accept(Some(T)).unwrap());
        let flow = client
            .alloc(&format!("pair@{}", server.local_addr()), qos, T)
            .unwrap();
        (flow, accepted.join().unwrap())
    })
}

#[test]
fn test_read_timeout_and_nonblocking() {
    let (server, client) = (node(Names::default()), node(Names::default()));
    let (c, s) = pair(&server, &client, QoS::DATA);
    let start = Instant::now();
    match c.read(Some(Duration::from_millis(200))) {
        Err(e @ FlowNetError::TimedOut { .. }) => assert!(e.to_string().contains("timed out")),
        other => panic!("{other:?}"),
    }
    let took = start.elapsed();
    assert!(took >= Duration::from_millis(200), "{took:?}");
    assert!(took < Duration::from_secs(2), "{took:?}");

    c.set_nonblocking(true);
    assert!(c.is_nonblocking());
    let start = Instant::now();
    assert!(matches!(c.read(None), Err(FlowNetError::WouldBlock)));
    assert!(start.elapsed() < Duration::from_millis(100));
    s.write(b"now there is one").unwrap();
    let deadline = Instant::now() + T;
    let got = loop {
        match c.read(None) {
            Ok(m) => break m,
            Err(FlowNetError::WouldBlock) if Instant::now() < deadline => {
                std::thread::sleep(Duration::from_millis(1))
            }
            Err(e) => panic!("{e}"),
        }
    };
    assert_eq!(got, b"now there is one");
}

#[test]
fn test_dealloc_wakes_blocked_reader() {
    let (server, client) = (node(Names::default()), node(Names::default()));
    let (c, s) = pair(&server, &client, QoS::DATA);
    std::thread::scope(|scope| {
        let reader = scope.spawn(|| {
            let r = c.read(None);
            (r, Instant::now())
        });
        std::thread::sleep(Duration::from_millis(150));
        assert!(
            !reader.is_finished(),
            "the read returned before the dealloc"
        );
        let at = Instant::now();
        c.dealloc().unwrap();
        let (r, woke) = reader.join().unwrap();
        assert!(matches!(r, Err(FlowNetError::Deallocated)), "{r:?}");
        assert!(
            woke.duration_since(at) < Duration::from_secs(1),
            "{:?}",
            woke.duration_since(at)
        );
    });
    assert!(matches!(c.write(b"x"), Err(FlowNetError::Deallocated)));
    // The peer learns it too.
    match s.read(Some(T)) {
        Err(e @ FlowNetError::PeerGone) => assert!(e.to_string().contains("allocate a new flow")),
        other => panic!("{other:?}"),
    }
}

#[test]
fn test_message_over_the_limit() {
    let (server, client) = (node(Names::default()), node(Names::default()));
    let (c, s) = pair(&server, &client, QoS::DATA);
    let max = Config::default().max_sdu;
    match c.write(&vec![7; max + 1]) {
        Err(e @ FlowNetError::TooLarge { .. }) => {
            let text = e.to_string();
            assert!(text.contains(&format!("{} bytes", max + 1)), "{text}");
            assert!(text.contains(&format!("{max}-byte limit")), "{text}");
        }
        other => panic!("{other:?}"),
    }
    // The largest allowed goes through whole.
    let big: Vec<u8> = (0..max).map(|i| (i % 251) as u8).collect();
    c.write(&big).unwrap();
    assert_eq!(s.read(Some(T)).unwrap(), big);
}

#[test]
fn test_one_flow_set_thread_serves_a_thousand_flows() {
    const FLOWS: usize = 1000;
    let dir = tempfile::tempdir().unwrap();
    let server = node(dir_names(dir.path()));
    server.register("many").unwrap();
    let client = node(dir_names(dir.path()));
    std::thread::scope(|s| {
        let srv = &server;
        let served = s.spawn(move || {
            let set = srv.flow_set();
            set.watch_allocs(true);
            let mut flows: HashMap<_, Flow> = HashMap::new();
            let (mut echoed, mut ended) = (0, 0);
            while ended < FLOWS {
                let events = set.wait(Some(T)).unwrap();
                assert!(!events.is_empty(), "no event for {T:?}");
                for ev in events {
                    match ev.kind {
                        EventKind::Alloc => {
                            let f = srv.accept(Some(Duration::ZERO)).unwrap();
                            f.set_nonblocking(true);
                            set.add(&f);
                            flows.insert(f.id(), f);
                        }
                        EventKind::Packet => {
                            let Some(f) = flows.get(&ev.flow) else {
                                continue;
                            };
                            loop {
                                match f.read(None) {
                                    Ok(m) => {
                                        f.write(&m).unwrap();
                                        echoed += 1;
                                    }
                                    Err(FlowNetError::WouldBlock) => break,
                                    Err(FlowNetError::PeerGone) => break,
                                    Err(e) => panic!("{e}"),
                                }
                            }
                        }
                        EventKind::Dealloc | EventKind::Down => {
                            if flows.remove(&ev.flow).is_some() {
                                ended += 1;
                            }
                        }
                        EventKind::Up | EventKind::Refused => {}
                    }
                }
            }
            (echoed, set.len())
        });
        let mut flows = Vec::with_capacity(FLOWS);
        for _ in 0..FLOWS {
            flows.push(client.alloc("many", QoS::DATA, T).unwrap());
        }
        for (i, f) in flows.iter().enumerate() {
            f.write(format!("flow {i}").as_bytes()).unwrap();
        }
        for (i, f) in flows.iter().enumerate() {
            assert_eq!(f.read(Some(T)).unwrap(), format!("flow {i}").as_bytes());
        }
        drop(flows);
        let (echoed, left) = served.join().unwrap();
        assert_eq!(echoed, FLOWS);
        assert_eq!(left, 0);
    });
}

#[test]
fn test_names_from_files_ignore_stale_entries() {
    let dir = tempfile::tempdir().unwrap();
    let addr: SocketAddr = "127.0.0.1:4999".parse().unwrap();
    // A process id that cannot exist on Linux (above pid_max's ceiling).
    std::fs::write(dir.path().join("stale"), format!("{addr}\n4294967295\n")).unwrap();
    assert_eq!(names::read_entry(dir.path(), "stale").unwrap(), None);
    assert!(!dir.path().join("stale").exists());
    names::write_entry(dir.path(), "live", addr).unwrap();
    assert_eq!(names::read_entry(dir.path(), "live").unwrap(), Some(addr));
    names::remove_entry(dir.path(), "live", "127.0.0.1:1".parse().unwrap());
    assert_eq!(names::read_entry(dir.path(), "live").unwrap(), Some(addr));
    names::remove_entry(dir.path(), "live", addr);
    assert_eq!(names::read_entry(dir.path(), "live").unwrap(), None);
}

#[test]
fn test_directory_entries_expire_unless_refreshed() {
    let dirsrv = DirectoryServer::spawn(LOOPBACK.parse().unwrap()).unwrap();
    let at = dirsrv.local_addr();
    // Registered once for a second, never refreshed: gone after it.
    let lone: SocketAddr = "127.0.0.1:4998".parse().unwrap();
    directory::register(at, "lone", lone, Duration::from_secs(1)).unwrap();
    assert_eq!(directory::lookup(at, "lone").unwrap(), Some(lone));
    // A node refreshes its registration every third of its lifetime.
    let server = node(Names {
        server: Some(at),
        registration_ttl: Some(Duration::from_secs(1)),
        ..Names::default()
    });
    server.register("kept").unwrap();
    std::thread::sleep(Duration::from_millis(2500));
    assert_eq!(directory::lookup(at, "lone").unwrap(), None);
    assert_eq!(
        directory::lookup(at, "kept").unwrap(),
        Some(server.local_addr())
    );
}

fn keyed_node(names: Names, key: Option<[u8; 32]>) -> FlowNode {
    let config = NodeConfig {
        endpoint: Config {
            key: key.map(redgiant_flow::FlowKey::new),
            ..Config::default()
        },
        names,
    };
    FlowNode::bind_with(LOOPBACK.parse().unwrap(), config).unwrap()
}

#[test]
fn test_encrypted_echo_and_clear_refusals() {
    let dir = tempfile::tempdir().unwrap();
    let server = keyed_node(dir_names(dir.path()), Some([0x77; 32]));
    server.register("echo.sealed").unwrap();
    let client = keyed_node(dir_names(dir.path()), Some([0x77; 32]));
    std::thread::scope(|s| {
        s.spawn(|| echo_one(&server));
        let flow = client.alloc("echo.sealed", QoS::DATA_CRYPT, T).unwrap();
        assert!(flow.layers().aead);
        ping(&flow, 20);
        flow.dealloc().unwrap();
    });
    // Another key: refused, and the error says what to do.
    let stranger = keyed_node(dir_names(dir.path()), Some([0x78; 32]));
    match stranger.alloc("echo.sealed", QoS::DATA_CRYPT, T) {
        Err(e @ FlowNetError::Refused { .. }) => {
            assert!(matches!(
                e,
                FlowNetError::Refused {
                    reason: Reason::KeyMismatch,
                    ..
                }
            ));
            assert!(e.to_string().contains("same 32-byte key"), "{e}");
        }
        other => panic!("{:?}", other.map(|f| f.id())),
    }
    // No key here: the allocation fails before anything is sent.
    let keyless = keyed_node(dir_names(dir.path()), None);
    let e = keyless
        .alloc("echo.sealed", QoS::DATA_CRYPT, T)
        .map(|f| f.id())
        .unwrap_err();
    assert!(e.to_string().contains("RGTP_FLOW_KEY"), "{e}");
    // A keyless server refuses an encrypted flow with its reason.
    keyless.register("echo.plain").unwrap();
    match client.alloc("echo.plain", QoS::DATA_CRYPT, T) {
        Err(FlowNetError::Refused { reason, .. }) => assert_eq!(reason, Reason::NoKey),
        other => panic!("{:?}", other.map(|f| f.id())),
    }
}

/// Echoes 30 messages over a flow from a node recording into a pcap; returns the
/// datagrams the capture holds and how many of them carry a 12-byte window of
/// some message.
fn recorded_echo(qos: QoS, key: Option<[u8; 32]>) -> (usize, usize) {
    let dir = tempfile::tempdir().unwrap();
    let pcap = dir.path().join("client.pcap");
    let server = keyed_node(dir_names(dir.path()), key);
    server.register("recorded").unwrap();
    let config = NodeConfig {
        endpoint: Config {
            key: key.map(redgiant_flow::FlowKey::new),
            ..Config::default()
        },
        names: dir_names(dir.path()),
    };
    let client = FlowNode::bind_recording(LOOPBACK.parse().unwrap(), config, &pcap).unwrap();
    let msgs: Vec<Vec<u8>> = (0..30)
        .map(|i| format!("secret {i:04} {}", "abcdefghij".repeat(i % 7 + 2)).into_bytes())
        .collect();
    std::thread::scope(|s| {
        s.spawn(|| echo_one(&server));
        let flow = client.alloc("recorded", qos, T).unwrap();
        for m in &msgs {
            flow.write(m).unwrap();
            assert_eq!(&flow.read(Some(T)).unwrap(), m);
        }
        flow.dealloc().unwrap();
    });
    // Dropping the node ends its driver and closes the capture.
    drop(client);
    let capture = rgtp_capture::read(&std::fs::read(&pcap).unwrap()).unwrap();
    let datagrams: Vec<Vec<u8>> = capture
        .datagrams()
        .map(|(_, d)| d.payload.clone())
        .collect();
    let leaked = datagrams
        .iter()
        .filter(|d| {
            msgs.iter()
                .any(|m| m.windows(12).any(|w| d.windows(12).any(|x| x == w)))
        })
        .count();
    (datagrams.len(), leaked)
}

#[test]
fn test_a_recorded_capture_of_an_encrypted_flow_holds_no_plaintext() {
    // Both directions of 30 echoes at least, and the handshake.
    let (n, leaked) = recorded_echo(QoS::DATA_CRYPT, Some([0x31; 32]));
    assert!(n >= 60, "{n} datagrams recorded");
    assert_eq!(leaked, 0, "{leaked} of {n} datagrams carry plaintext");
    // The same check on a plain flow finds every message, both ways.
    let (n, leaked) = recorded_echo(QoS::DATA, None);
    assert!(n >= 60, "{n} datagrams recorded");
    assert!(leaked >= 60, "{leaked} of {n} datagrams carry plaintext");
}
