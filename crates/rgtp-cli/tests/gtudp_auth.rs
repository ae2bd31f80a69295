//! `rgtp gtudp serve|send --key`: the authenticated profile between two
//! processes over loopback UDP, with the same key and with different keys.
//!
//! Every child is bounded in time: the server is stopped at the end of each
//! test, and a sender that outlives its limit is killed and fails the test.

mod gtudp_cli;

use gtudp_cli::{describe, send, Server};
const KEY: &str = "000102030405060708090a0b0c0d0e0f101112131415161718191a1b1c1d1e1f";
const OTHER: &str = "ff0102030405060708090a0b0c0d0e0f101112131415161718191a1b1c1d1e1f";

#[test]
fn the_same_key_on_both_sides_echoes_every_datagram() {
    let server = Server::start(&["--key", KEY]);
    let dir = std::env::temp_dir().join(format!("rgtp-gtudp-auth-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let key_file = dir.join("key");
    std::fs::write(&key_file, format!("{KEY}\n")).unwrap();
    let o = send(
        &[
            "--to",
            &server.to(),
            "--key-file",
            key_file.to_str().unwrap(),
            "--expect-echo",
            "-",
        ],
        b"first sealed\nsecond sealed\n",
    );
    assert!(o.status.success(), "{}", describe(&o));
    let stdout = String::from_utf8_lossy(&o.stdout);
    assert!(
        stdout.contains("sent 2 datagrams") && stdout.contains("2 echoes"),
        "{stdout}"
    );
    // Datagrams may arrive in either order and their identities are random:
    // compare the payloads as a set.
    let lines = server.received(2);
    assert_eq!(lines.len(), 2, "{lines:?}");
    let mut payloads: Vec<&str> = lines
        .iter()
        .map(|l| l.split_once(" data=").map_or("", |(_, d)| d))
        .collect();
    payloads.sort();
    assert_eq!(payloads, ["first sealed", "second sealed"], "{lines:?}");
    let summary = server.stop();
    assert!(
        summary.contains("2 delivered") && summary.contains(", 0 rejected"),
        "{summary}"
    );
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn another_key_delivers_nothing_and_the_receiver_counts_rejections() {
    let server = Server::start(&["--key", KEY]);
    let o = send(
        &[
            "--to",
            &server.to(),
            "--key",
            OTHER,
            "--timeout",
            "1.5",
            "-",
        ],
        b"forged\n",
    );
    assert_eq!(o.status.code(), Some(3), "{}", describe(&o));
    let stderr = String::from_utf8_lossy(&o.stderr);
    assert!(
        stderr.contains("1 of 1 datagrams not confirmed"),
        "{stderr}"
    );
    assert!(server.received(1).is_empty());
    let summary = server.stop();
    assert!(summary.contains("0 delivered"), "{summary}");
    // Every copy the sender made was refused; it sent at least one.
    let rejected: u64 = summary
        .split(", ")
        .find_map(|p| p.split_once(" rejected ("))
        .and_then(|(n, _)| n.parse().ok())
        .unwrap_or_else(|| panic!("no rejection count in {summary:?}"));
    assert!(
        summary.contains(&format!("({rejected} forged or under another key")),
        "{summary}"
    );
    assert!(rejected >= 1, "{summary}");
}

#[test]
fn bad_keys_are_usage_errors() {
    let o = send(&["--to", "127.0.0.1:9", "--key", "abcd", "-"], b"");
    assert_eq!(o.status.code(), Some(2), "{}", describe(&o));
    let stderr = String::from_utf8_lossy(&o.stderr);
    assert!(stderr.contains("64 hexadecimal digits"), "{stderr}");
    let bad = "zz".repeat(32);
    let o = send(&["--to", "127.0.0.1:9", "--key", &bad, "-"], b"");
    assert_eq!(o.status.code(), Some(2), "{}", describe(&o));
    let o = send(
        &["--to", "127.0.0.1:9", "--key-file", "/nonexistent/key", "-"],
        b"",
    );
    assert_eq!(o.status.code(), Some(2), "{}", describe(&o));
    assert!(String::from_utf8_lossy(&o.stderr).contains("cannot read"));
}
