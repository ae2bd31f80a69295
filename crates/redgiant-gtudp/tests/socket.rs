//! `GtudpSocket` over loopback UDP: datagrams both ways, confirmed sends that succeed
//! and that fail when nobody answers, read timeouts, and the authenticated profile.

use std::collections::BTreeSet;
use std::net::{SocketAddr, UdpSocket};
use std::time::{Duration, Instant};

use redgiant_gtudp::{AuthConfig, AuthKey, Config, FailReason, GtudpSocket, SendError};

fn pair(config: Config) -> (GtudpSocket, GtudpSocket) {
    let a = GtudpSocket::bind("127.0.0.1:0", config.clone()).unwrap();
    let b = GtudpSocket::bind("127.0.0.1:0", config).unwrap();
    (a, b)
}

/// Runs `a` and `b` in turn until `b` has received `n` datagrams (or `limit`).
fn exchange_within(
    a: &mut GtudpSocket,
    b: &mut GtudpSocket,
    n: usize,
    limit: Duration,
) -> BTreeSet<Vec<u8>> {
    let mut got = BTreeSet::new();
    let mut buf = vec![0u8; 2048];
    b.set_read_timeout(Some(Duration::from_millis(20)));
    let end = Instant::now() + limit;
    while got.len() < n && Instant::now() < end {
        if let Ok((len, from)) = b.recv_from(&mut buf) {
            assert_eq!(from, a.local_addr());
            assert!(
                got.insert(buf[..len].to_vec()),
                "a datagram delivered twice"
            );
        }
        a.flush(Duration::from_millis(5)).unwrap();
    }
    got
}

fn exchange(a: &mut GtudpSocket, b: &mut GtudpSocket, n: usize) -> BTreeSet<Vec<u8>> {
    exchange_within(a, b, n, Duration::from_secs(10))
}

#[test]
fn datagrams_arrive_once_and_confirmed_sends_succeed() {
    let (mut a, mut b) = pair(Config::default());
    let sent: BTreeSet<Vec<u8>> = (0..100u32)
        .map(|i| format!("datagram {i}").into_bytes())
        .collect();
    for d in &sent {
        a.send_to(d, b.local_addr()).unwrap();
    }
    assert_eq!(exchange(&mut a, &mut b, sent.len()), sent);
    // A confirmed send needs the peer to run: b answers from its own calls.
    let to = b.local_addr();
    let t = std::thread::spawn(move || {
        let mut buf = [0u8; 64];
        b.set_read_timeout(Some(Duration::from_secs(10)));
        let (n, _) = b.recv_from(&mut buf).unwrap();
        b.flush(Duration::from_secs(2)).unwrap();
        buf[..n].to_vec()
    });
    a.send_confirmed(b"confirmed", to, Duration::from_secs(10))
        .unwrap();
    assert_eq!(t.join().unwrap(), b"confirmed");
    assert!(a.flush(Duration::from_secs(5)).unwrap());
}

#[test]
fn a_confirmed_send_fails_when_nobody_answers() {
    let silent = UdpSocket::bind("127.0.0.1:0").unwrap();
    let to: SocketAddr = silent.local_addr().unwrap();
    let mut a = GtudpSocket::bind("127.0.0.1:0", Config::default()).unwrap();
    let t0 = Instant::now();
    let r = a.send_confirmed(b"anyone?", to, Duration::from_millis(700));
    assert!(
        matches!(
            r,
            Err(SendError::Failed(
                FailReason::Deadline | FailReason::Attempts
            ))
        ),
        "{r:?}"
    );
    assert!(r.unwrap_err().to_string().contains("no RECV"));
    // Bounded: the deadline, not a hang (generous for a loaded machine).
    assert!(t0.elapsed() < Duration::from_secs(30));
}

#[test]
fn recv_times_out_and_truncates_like_udp() {
    let (mut a, mut b) = pair(Config::default());
    b.set_read_timeout(Some(Duration::from_millis(50)));
    let mut buf = [0u8; 4];
    let e = b.recv_from(&mut buf).unwrap_err();
    assert_eq!(e.kind(), std::io::ErrorKind::TimedOut);
    a.send_to(b"longer than four", b.local_addr()).unwrap();
    b.set_read_timeout(Some(Duration::from_millis(20)));
    let end = Instant::now() + Duration::from_secs(10);
    loop {
        match b.recv_from(&mut buf) {
            Ok((n, _)) => {
                assert_eq!(n, 16, "the full length is reported");
                assert_eq!(&buf, b"long");
                break;
            }
            Err(_) => {
                assert!(Instant::now() < end, "nothing arrived");
                a.flush(Duration::from_millis(5)).unwrap();
            }
        }
    }
}

#[test]
fn the_authenticated_profile_works_through_the_socket_and_a_wrong_key_gets_nothing() {
    let key = AuthKey([9; 32]);
    let auth = |session| Config::default().with_auth(AuthConfig::new(key.clone(), session));
    let mut a = GtudpSocket::bind("127.0.0.1:0", auth(1)).unwrap();
    let mut b = GtudpSocket::bind("127.0.0.1:0", auth(2)).unwrap();
    a.send_to(b"sealed", b.local_addr()).unwrap();
    assert_eq!(exchange(&mut a, &mut b, 1).len(), 1);
    let other = Config::default().with_auth(AuthConfig::new(AuthKey([8; 32]), 3));
    let mut c = GtudpSocket::bind("127.0.0.1:0", other).unwrap();
    c.send_to(b"forged", b.local_addr()).unwrap();
    assert!(exchange_within(&mut c, &mut b, 1, Duration::from_secs(1)).is_empty());
    assert!(b.stats().auth_failed > 0);
}
