//! `rgtp gtudp serve --echo` and `rgtp gtudp send --expect-echo` as two
//! processes over loopback UDP, under the reference profile and under a
//! 6-byte magic with 2-byte types.
//!
//! Every child is bounded in time: the server is killed at the end of each
//! test, and a sender that outlives its limit is killed and fails the test.

mod gtudp_cli;

use gtudp_cli::{describe, send, Server};

const WIDE: &[&str] = &["--magic", "475455445031", "--types", "001d,005f,00ae"];

fn echo_round_trip(profile: &[&str]) {
    let server = Server::start(profile);
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("one.bin");
    std::fs::write(&file, b"first datagram\x00\xff").unwrap();
    let to = server.to();
    let mut args = vec!["--to", &to, "--expect-echo", "--timeout", "20"];
    args.extend_from_slice(profile);
    let file = file.to_str().unwrap();
    args.extend_from_slice(&[file, "-"]);
    let o = send(&args, b"line one\nline two\n");
    assert!(o.status.success(), "{}", describe(&o));
    let stdout = String::from_utf8_lossy(&o.stdout);
    assert!(
        stdout.contains("sent 3 datagrams") && stdout.contains("3 echoes"),
        "{stdout}"
    );
    let lines = server.received(3);
    assert_eq!(lines.len(), 3, "{lines:?}");
    for want in [
        "len=16 data=first datagram\\x00\\xff",
        "len=8 data=line one",
        "len=8 data=line two",
    ] {
        assert!(
            lines.iter().any(|l| l.ends_with(want)),
            "{want} in {lines:?}"
        );
    }
    assert!(lines.iter().all(|l| l.starts_with("from=127.0.0.1:")));
}

#[test]
fn echo_with_the_reference_profile() {
    echo_round_trip(&[]);
}

#[test]
fn echo_with_a_six_byte_magic_and_two_byte_types() {
    echo_round_trip(WIDE);
}

#[test]
fn a_mismatched_profile_is_not_confirmed() {
    let server = Server::start(WIDE);
    let to = server.to();
    let o = send(
        &["--to", &to, "--timeout", "1.5", "-"],
        b"nobody hears this\n",
    );
    assert_eq!(o.status.code(), Some(3), "{}", describe(&o));
    let stderr = String::from_utf8_lossy(&o.stderr);
    assert!(
        stderr.contains("1 of 1 datagrams not confirmed") && stderr.contains("stdin line 1"),
        "{stderr}"
    );
    assert!(server.received(1).is_empty());
}

#[test]
fn bad_profiles_are_usage_errors() {
    let o = send(&["--to", "127.0.0.1:9", "--types", "1d,5f", "-"], b"");
    assert_eq!(o.status.code(), Some(2), "{}", describe(&o));
    let o = send(&["--to", "127.0.0.1:9", "--types", "1d,5f5f,ae", "-"], b"");
    assert_eq!(o.status.code(), Some(2), "{}", describe(&o));
    let o = send(&["--to", "127.0.0.1:9", "--magic", "xyz", "-"], b"");
    assert_eq!(o.status.code(), Some(2), "{}", describe(&o));
}
