//! A failing puller case says what the puller did: how it ended, its output, and the
//! datagrams it sent (Pull_Requests, NAKs) and was sent; never only "killed at the bound".

use std::net::UdpSocket;
use std::time::Duration;

use rgtp::Ticket;
use rgtp_conformance::{Selection, Verdict};
use rgtp_wire::PullFlags;

/// Runs PUL-001 (an honest exposer) against `cmd` with a short bound; its detail.
fn pul001_detail(cmd: &str) -> String {
    let sel = Selection {
        only: vec!["PUL-001".into()],
        ..Selection::default()
    };
    let out = rgtp_conformance::run_puller(cmd, Duration::from_secs(3), 50_000, &sel);
    print!("{}", rgtp_conformance::report::table(&out));
    assert_eq!(out.len(), 1);
    assert_eq!(out[0].verdict, Verdict::Fail, "{}", out[0].detail);
    out[0].detail.clone()
}

/// The one-Pull_Request puller's `main`: runs when this test binary is re-executed with
/// ONE_PR_TICKET set; a no-op in a normal test run. Sends one Pull_Request, then waits.
#[test]
fn one_pull_request_entry() {
    let Ok(ticket) = std::env::var("ONE_PR_TICKET") else {
        return;
    };
    let t: Ticket = ticket.parse().expect("ticket");
    let addr = t.socket_addr().expect("address");
    let sock = UdpSocket::bind("127.0.0.1:0").unwrap();
    let pr = rgtp_conformance::net::pull_request(t.exposure_id, PullFlags::empty(), 1, 1);
    sock.send_to(&pr, addr).unwrap();
    std::thread::sleep(Duration::from_secs(30));
}

#[test]
fn a_puller_that_never_starts_is_described() {
    let d = pul001_detail("sleep 30 # {ticket} {out}");
    assert!(d.contains("killed at the bound"), "{d}");
    assert!(d.contains("no output"), "{d}");
    assert!(
        d.contains("the puller sent 0 datagram(s) (0 B): 0 Pull_Request(s), 0 NAK(s)"),
        "{d}"
    );
    assert!(d.contains("it was sent 0 datagram(s)"), "{d}");
}

#[test]
fn a_puller_that_stops_after_one_pull_request_is_described() {
    let exe = std::env::current_exe().unwrap();
    let cmd = format!(
        "ONE_PR_TICKET={{ticket}} '{}' one_pull_request_entry --exact --test-threads=1 # {{out}}",
        exe.display()
    );
    let d = pul001_detail(&cmd);
    assert!(d.contains("killed at the bound"), "{d}");
    assert!(
        d.contains(
            "the puller sent 1 datagram(s) (36 B): 1 Pull_Request(s), 0 NAK(s) with 0 entries"
        ),
        "{d}"
    );
    // The Manifest that answered it.
    assert!(d.contains("it was sent 1 datagram(s) (72 B)"), "{d}");
    assert!(d.contains("no output"), "{d}");
}

#[test]
fn a_puller_that_exits_without_output_is_described() {
    let d = pul001_detail("exit 3 # {ticket} {out}");
    assert!(d.contains("exit 3"), "{d}");
    assert!(d.contains("no output"), "{d}");
    assert!(d.contains("0 Pull_Request(s)"), "{d}");
}
