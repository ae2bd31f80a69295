#![cfg(feature = "net")]
//! Broadcast groups over loopback UDP: members found through the file
//! directory and through the directory server, a write reaching every other
//! member, reads from any member, members leaving, bad group names.

use std::collections::BTreeSet;
use std::path::Path;
use std::time::Duration;

use redgiant_flow::net::directory::DirectoryServer;
use redgiant_flow::net::join::Group;
use redgiant_flow::net::join::{slot_name, MAX_MEMBERS};
use redgiant_flow::net::names::{self, Names};
use redgiant_flow::net::{FlowNetError, FlowNode, NodeConfig};
use redgiant_flow::{Config, QoS};

const LOOPBACK: &str = "127.0.0.1:0";
const T: Duration = Duration::from_secs(10);

fn node(names: Names) -> FlowNode {
    let config = NodeConfig {
        endpoint: Config::default(),
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

/// Waits until `g` has `n` other members (later joiners come in by themselves).
fn await_members(g: &Group, n: usize) {
    let deadline = std::time::Instant::now() + T;
    while g.members() != n {
        assert!(
            std::time::Instant::now() < deadline,
            "{} members, {n} expected",
            g.members()
        );
        std::thread::sleep(Duration::from_millis(5));
    }
}

/// Every member writes one message; every member reads the others'.
fn all_hear_all(groups: &[Group]) {
    for (i, g) in groups.iter().enumerate() {
        g.write(format!("from {i}").as_bytes()).unwrap();
    }
    for (i, g) in groups.iter().enumerate() {
        let mut got = BTreeSet::new();
        for _ in 1..groups.len() {
            got.insert(String::from_utf8(g.read(Some(T)).unwrap()).unwrap());
        }
        let want: BTreeSet<String> = (0..groups.len())
            .filter(|&j| j != i)
            .map(|j| format!("from {j}"))
            .collect();
        assert_eq!(got, want, "member {i}");
        g.set_nonblocking(true);
        assert!(matches!(g.read(None), Err(FlowNetError::WouldBlock)));
        g.set_nonblocking(false);
    }
}

#[test]
fn test_group_through_file_directory() {
    let dir = tempfile::tempdir().unwrap();
    let nodes: Vec<FlowNode> = (0..4).map(|_| node(dir_names(dir.path()))).collect();
    let groups: Vec<Group> = nodes
        .iter()
        .map(|n| n.join("chat", QoS::DATA, T).unwrap())
        .collect();
    // Each member holds a slot of its own.
    for k in 0..4 {
        assert!(names::read_entry(dir.path(), &slot_name("chat", k))
            .unwrap()
            .is_some());
    }
    for g in &groups {
        await_members(g, 3);
    }
    all_hear_all(&groups);

    // A member leaves: the others stop counting it, its slot is withdrawn,
    // and the rest still hear each other.
    let mut groups = groups;
    let gone = groups.remove(1);
    gone.dealloc().unwrap();
    assert!(matches!(gone.read(None), Err(FlowNetError::Deallocated)));
    assert!(matches!(gone.write(b"x"), Err(FlowNetError::Deallocated)));
    for g in &groups {
        await_members(g, 2);
    }
    assert!(names::read_entry(dir.path(), &slot_name("chat", 1))
        .unwrap()
        .is_none());
    all_hear_all(&groups);

    // A new member takes the free slot and is heard by everyone.
    let late = nodes[1].join("chat", QoS::DATA, T).unwrap();
    assert!(names::read_entry(dir.path(), &slot_name("chat", 1))
        .unwrap()
        .is_some());
    groups.push(late);
    for g in &groups {
        await_members(g, 3);
    }
    all_hear_all(&groups);
}

#[test]
fn test_group_through_directory_server() {
    let server = DirectoryServer::spawn(LOOPBACK.parse().unwrap()).unwrap();
    let names = Names {
        server: Some(server.local_addr()),
        ..Names::default()
    };
    let a = node(names.clone());
    let b = node(names.clone());
    let c = node(names);
    let groups = vec![
        a.join("room", QoS::BEST_EFFORT, T).unwrap(),
        b.join("room", QoS::BEST_EFFORT, T).unwrap(),
        c.join("room", QoS::BEST_EFFORT, T).unwrap(),
    ];
    for g in &groups {
        await_members(g, 2);
    }
    all_hear_all(&groups);
}

#[test]
fn test_lone_member_and_blocked_reader() {
    let dir = tempfile::tempdir().unwrap();
    let n = node(dir_names(dir.path()));
    let g = n.join("alone", QoS::RAW, T).unwrap();
    assert_eq!(g.members(), 0);
    // Nobody to reach: the write goes nowhere, and a read times out.
    g.write(b"anyone?").unwrap();
    assert!(matches!(
        g.read(Some(Duration::from_millis(50))),
        Err(FlowNetError::TimedOut { .. })
    ));
    // A thread blocked in read wakes when the group is left.
    std::thread::scope(|s| {
        let reader = s.spawn(|| g.read(None));
        std::thread::sleep(Duration::from_millis(50));
        g.dealloc().unwrap();
        assert!(matches!(
            reader.join().unwrap(),
            Err(FlowNetError::Deallocated)
        ));
    });
}

#[test]
fn test_group_sdu_limit_and_names() {
    let dir = tempfile::tempdir().unwrap();
    let a = node(dir_names(dir.path()));
    let b = node(dir_names(dir.path()));
    let ga = a.join("big", QoS::DATA, T).unwrap();
    let _gb = b.join("big", QoS::DATA, T).unwrap();
    await_members(&ga, 1);
    assert!(matches!(
        ga.write(&vec![0u8; (1 << 20) + 1]),
        Err(FlowNetError::TooLarge { .. })
    ));
    assert!(matches!(
        a.join("", QoS::DATA, T),
        Err(FlowNetError::BadName(_))
    ));
    let long = "g".repeat(255 - slot_name("", MAX_MEMBERS - 1).len() + 1);
    match a.join(&long, QoS::DATA, T) {
        Err(FlowNetError::BadName(why)) => assert!(why.contains("group name"), "{why}"),
        other => panic!("{other:?}"),
    }
}
