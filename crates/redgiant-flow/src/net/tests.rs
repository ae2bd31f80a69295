//! The node's driver loop, seen from inside.

use super::*;

fn node(config: Config) -> FlowNode {
    let config = NodeConfig {
        endpoint: config,
        names: Names::default(),
    };
    FlowNode::bind_with("127.0.0.1:0".parse().unwrap(), config).unwrap()
}

fn wakes(node: &FlowNode) -> u64 {
    node.inner.lock().wakes
}

/// A writer blocked on a flow whose peer never reads waits for the peer:
/// it does not wake the driver, which would wake it again at once (a spin
/// of both threads at full speed while nothing moves).
#[test]
fn a_blocked_writer_and_the_driver_do_not_wake_each_other() {
    let small = Config {
        send_buffer: 8_000,
        recv_buffer: 8_000,
        ..Config::default()
    };
    let server = node(small.clone());
    server.register("sink").unwrap();
    let client = node(small);
    let target = format!("sink@{}", server.local_addr());
    let (flow, _accepted) = std::thread::scope(|s| {
        let accepting = s.spawn(|| server.accept(Some(Duration::from_secs(10))).unwrap());
        let flow = client
            .alloc(&target, QoS::DATA, Duration::from_secs(10))
            .unwrap();
        (flow, accepting.join().unwrap())
    });
    let sdu = [7u8; 1000];
    let mut written = 0;
    let blocked = loop {
        match flow.write_timeout(&sdu, Some(Duration::from_millis(200))) {
            Ok(()) => written += 1,
            Err(e) => break e,
        }
        assert!(written < 1000, "the peer's buffer never filled");
    };
    assert!(
        matches!(blocked, FlowNetError::TimedOut { .. }),
        "{blocked}"
    );
    let before = wakes(&client);
    let again = flow.write_timeout(&sdu, Some(Duration::from_millis(300)));
    assert!(matches!(again, Err(FlowNetError::TimedOut { .. })));
    assert_eq!(wakes(&client), before, "the blocked writer woke the driver");
    // The node still works: the flow ends cleanly.
    flow.dealloc().unwrap();
}

/// A node allocates flows to a name it serves itself, by address and
/// through the file directory, plain and encrypted: two flow ids of the one
/// node, carrying messages both ways.
#[test]
fn a_node_allocates_flows_to_its_own_name() {
    let dir = tempfile::tempdir().unwrap();
    let config = NodeConfig {
        endpoint: Config {
            key: Some(FlowKey::new([9; 32])),
            ..Config::default()
        },
        names: Names {
            dir: Some(dir.path().to_path_buf()),
            ..Names::default()
        },
    };
    let n = FlowNode::bind_with("0.0.0.0:0".parse().unwrap(), config).unwrap();
    n.register("me").unwrap();
    let by_address = format!("me@127.0.0.1:{}", n.local_addr().port());
    for (target, qos) in [
        (by_address.as_str(), QoS::DATA),
        ("me", QoS::RAW),
        ("me", QoS::DATA_CRYPT),
    ] {
        let (out, back) = std::thread::scope(|s| {
            let accepting = s.spawn(|| n.accept(Some(Duration::from_secs(10))).unwrap());
            let out = n.alloc(target, qos, Duration::from_secs(10)).unwrap();
            (out, accepting.join().unwrap())
        });
        assert_ne!(out.id(), back.id());
        for i in 0..50u32 {
            out.write(&i.to_be_bytes()).unwrap();
            let got = back.read(Some(Duration::from_secs(10))).unwrap();
            assert_eq!(got, i.to_be_bytes(), "{target} {qos:?}");
            back.write(&got).unwrap();
            assert_eq!(out.read(Some(Duration::from_secs(10))).unwrap(), got);
        }
        assert!(!out.is_ended() && !back.is_ended());
        out.dealloc().unwrap();
        assert!(matches!(
            back.read(Some(Duration::from_secs(10))),
            Err(FlowNetError::PeerGone)
        ));
    }
}
