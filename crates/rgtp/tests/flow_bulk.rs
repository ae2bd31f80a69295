//! Bulk over a flow on loopback: a few MiB handed to RGTP and back
//! byte-exact; hostile offers refused with a clear error and nothing
//! written; the sender going away ends the receiver promptly.

use std::net::SocketAddr;
use std::path::Path;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Mutex;
use std::time::Duration;

use rand::{RngCore, SeedableRng};
use redgiant_flow::net::names::Names;
use redgiant_flow::net::{Flow, FlowNode, NodeConfig};
use redgiant_flow::{Config, QoS};
use rgtp::flow_bulk::{
    self, BulkError, BulkProgress, MessageError, Offer, Outcome, Quiet, RecvOptions, SendOptions,
};

const T: Duration = Duration::from_secs(20);

fn node() -> FlowNode {
    let config = NodeConfig {
        endpoint: Config::default(),
        names: Names::default(),
    };
    FlowNode::bind_with("127.0.0.1:0".parse().unwrap(), config).unwrap()
}

/// A flow from a fresh node to another; the nodes must outlive the flows.
fn pair(name: &str) -> (FlowNode, FlowNode, Flow, Flow) {
    let (a, b) = (node(), node());
    b.register(name).unwrap();
    let at: SocketAddr = b.local_addr();
    let (fa, fb) = std::thread::scope(|s| {
        let acc = s.spawn(|| b.accept(Some(T)).unwrap());
        let fa = a.alloc(&format!("{name}@{at}"), QoS::DATA, T).unwrap();
        (fa, acc.join().unwrap())
    });
    (a, b, fa, fb)
}

fn random_file(path: &Path, len: usize, seed: u64) -> Vec<u8> {
    let mut data = vec![0u8; len];
    rand_chacha::ChaCha8Rng::seed_from_u64(seed).fill_bytes(&mut data);
    std::fs::write(path, &data).unwrap();
    data
}

/// Records what was reported.
#[derive(Default)]
struct Seen {
    offer: Mutex<Option<Offer>>,
    last: AtomicU64,
    calls: AtomicU64,
}

impl BulkProgress for Seen {
    fn offer(&self, offer: &Offer) {
        *self.offer.lock().unwrap() = Some(offer.clone());
    }
    fn bytes(&self, done: u64, total: u64) {
        assert!(done <= total, "{done} > {total}");
        self.last.store(done, Ordering::Relaxed);
        self.calls.fetch_add(1, Ordering::Relaxed);
    }
}

#[test]
fn test_file_of_a_few_mib_arrives_byte_exact() {
    let src = tempfile::tempdir().unwrap();
    let dst = tempfile::tempdir().unwrap();
    let path = src.path().join("payload.bin");
    let data = random_file(&path, (3 << 20) + 4321, 1);
    let (_a, _b, fa, fb) = pair("bulk");
    let seen = Seen::default();
    let (sent, got) = std::thread::scope(|s| {
        let tx = s.spawn(|| flow_bulk::send_file(&fa, &path, &SendOptions::default(), &Quiet));
        let got = flow_bulk::recv_file(&fb, dst.path(), &RecvOptions::default(), &seen);
        (tx.join().unwrap(), got)
    });
    let (sent, got) = (sent.unwrap(), got.unwrap());
    assert_eq!(got.path, dst.path().join("payload.bin"));
    assert_eq!(std::fs::read(&got.path).unwrap(), data);
    assert_eq!(got.size, data.len() as u64);
    assert_eq!(sent.size, data.len() as u64);
    assert_eq!(sent.root, got.root);
    assert_eq!(sent.name, "payload.bin");
    assert_eq!(got.source, sent.served_from);
    assert!(got.stats.chunks_received > 0, "{:?}", got.stats);
    assert_eq!(got.stats.auth_failures, 0);
    let offer = seen.offer.lock().unwrap().clone().unwrap();
    assert_eq!(offer.size, data.len() as u64);
    assert_eq!(offer.name, "payload.bin");
    assert_eq!(seen.last.load(Ordering::Relaxed), data.len() as u64);
    assert!(seen.calls.load(Ordering::Relaxed) >= 2);
    // Nothing left beside the file: no partial copy, no resume record.
    let names: Vec<_> = std::fs::read_dir(dst.path())
        .unwrap()
        .map(|e| e.unwrap().file_name())
        .collect();
    assert_eq!(names, ["payload.bin"]);
}

#[test]
fn test_empty_file_and_a_chosen_name() {
    let src = tempfile::tempdir().unwrap();
    let dst = tempfile::tempdir().unwrap();
    let path = src.path().join("empty");
    std::fs::write(&path, b"").unwrap();
    let (_a, _b, fa, fb) = pair("bulk-empty");
    let opts = SendOptions {
        name: Some("renamed.dat".into()),
        ..SendOptions::default()
    };
    let (sent, got) = std::thread::scope(|s| {
        let tx = s.spawn(|| flow_bulk::send_file(&fa, &path, &opts, &Quiet));
        let got = flow_bulk::recv_file(&fb, dst.path(), &RecvOptions::default(), &Quiet);
        (tx.join().unwrap(), got)
    });
    let (sent, got) = (sent.unwrap(), got.unwrap());
    assert_eq!(sent.size, 0);
    assert_eq!(got.path, dst.path().join("renamed.dat"));
    assert_eq!(std::fs::read(&got.path).unwrap(), b"");
}

/// Writes `sdu` as the offer and returns the receiver's error and the
/// outcome the sender end read back.
fn hostile(sdu: &[u8], opts: &RecvOptions) -> (BulkError, Outcome) {
    let dst = tempfile::tempdir().unwrap();
    let (_a, _b, fa, fb) = pair("bulk-hostile");
    fa.write(sdu).unwrap();
    let err = flow_bulk::recv_file(&fb, dst.path(), opts, &Quiet).unwrap_err();
    let back = Outcome::parse(&fa.read(Some(T)).unwrap()).unwrap();
    assert_eq!(
        std::fs::read_dir(dst.path()).unwrap().count(),
        0,
        "something was written for a refused offer"
    );
    (err, back)
}

fn offer_bytes(size: u64, name: &str, ticket: &str) -> Vec<u8> {
    // Built by hand: Offer::to_bytes refuses bad names.
    let mut b = b"RB\x01\x01".to_vec();
    b.extend_from_slice(&size.to_be_bytes());
    b.push(name.len() as u8);
    b.extend_from_slice(&(ticket.len() as u16).to_be_bytes());
    b.extend_from_slice(name.as_bytes());
    b.extend_from_slice(ticket.as_bytes());
    b
}

const TICKET: &str = "rgtp://127.0.0.1:9/000102030405060708090a0b0c0d0e0f?cipher=aes-256-gcm&hash=sha256#0000000000000000000000000000000000000000000000000000000000000000";

#[test]
fn test_hostile_offers_are_refused() {
    let opts = RecvOptions::default();
    // A version from the future.
    let mut b = offer_bytes(10, "x", TICKET);
    b[2] = 9;
    let (e, back) = hostile(&b, &opts);
    assert!(
        matches!(e, BulkError::Message(MessageError::Version(9))),
        "{e}"
    );
    assert!(e.to_string().contains("version 9"), "{e}");
    assert!(matches!(back, Outcome::Refused(ref t) if t.contains("version 9")));

    // A size of 2^64-1 bytes: refused by number, nothing allocated.
    let (e, back) = hostile(&offer_bytes(u64::MAX, "big", TICKET), &opts);
    assert!(
        matches!(e, BulkError::TooLarge { size: u64::MAX, .. }),
        "{e}"
    );
    assert!(matches!(back, Outcome::Refused(ref t) if t.contains("more than")));

    // Names that would leave the directory.
    for name in ["../escape", "a/b", "..", "/etc/passwd"] {
        let (e, back) = hostile(&offer_bytes(10, name, TICKET), &opts);
        assert!(
            matches!(e, BulkError::Message(MessageError::Name(_))),
            "{e}"
        );
        assert!(matches!(back, Outcome::Refused(_)), "{back:?}");
    }

    // Lengths that overrun the message, and bytes after it.
    let mut b = offer_bytes(10, "x", TICKET);
    b.truncate(b.len() - 1);
    let (e, _) = hostile(&b, &opts);
    assert!(
        matches!(e, BulkError::Message(MessageError::Truncated)),
        "{e}"
    );
    let mut b = offer_bytes(10, "x", TICKET);
    b.push(0);
    let (e, _) = hostile(&b, &opts);
    assert!(
        matches!(e, BulkError::Message(MessageError::TrailingBytes)),
        "{e}"
    );

    // Not a ticket.
    let (e, _) = hostile(&offer_bytes(10, "x", "http://example/"), &opts);
    assert!(matches!(e, BulkError::Ticket(_)), "{e}");
}

#[test]
fn test_declared_size_smaller_than_the_exposure_is_refused() {
    // An offer that lies about the size: the pull refuses the larger exposure.
    let src = tempfile::tempdir().unwrap();
    let dst = tempfile::tempdir().unwrap();
    let path = src.path().join("f");
    random_file(&path, 100_000, 2);
    let (_a, _b, fa, fb) = pair("bulk-liar");
    // The honest sender's offer, read off a side flow and re-sent with a smaller size.
    let (_c, _d, ga, gb) = pair("bulk-liar-side");
    std::thread::scope(|s| {
        let tx = s.spawn(|| flow_bulk::send_file(&ga, &path, &SendOptions::default(), &Quiet));
        let honest = Offer::parse(&gb.read(Some(T)).unwrap()).unwrap();
        let lie = Offer {
            size: 1000,
            ..honest
        };
        fa.write(&lie.to_bytes().unwrap()).unwrap();
        let opts = RecvOptions {
            connect_timeout: Duration::from_secs(3),
            ..RecvOptions::default()
        };
        let e = flow_bulk::recv_file(&fb, dst.path(), &opts, &Quiet).unwrap_err();
        assert!(matches!(e, BulkError::PullFailed(_)), "{e}");
        assert!(!dst.path().join("f").exists());
        let back = Outcome::parse(&fa.read(Some(T)).unwrap()).unwrap();
        assert!(matches!(back, Outcome::Failed(_)), "{back:?}");
        // End the honest sender: its receiver refuses.
        gb.write(&Outcome::Refused("test over".into()).to_bytes())
            .unwrap();
        let e = tx.join().unwrap().unwrap_err();
        assert!(
            matches!(e, BulkError::Refused(ref t) if t == "test over"),
            "{e}"
        );
    });
}

#[test]
fn test_sender_going_away_ends_the_receiver() {
    let dst = tempfile::tempdir().unwrap();
    // Before the offer: the flow goes away, the receiver errors out.
    let (a, _b, fa, fb) = pair("bulk-gone");
    drop(fa);
    drop(a);
    let e = flow_bulk::recv_file(&fb, dst.path(), &RecvOptions::default(), &Quiet).unwrap_err();
    assert!(matches!(e, BulkError::PeerGone { .. }), "{e}");

    // During the pull: an offer whose server never answers, then the flow
    // goes away; the receiver stops without waiting for its timeouts.
    let (a, _b, fa, fb) = pair("bulk-gone-2");
    let silent = std::net::UdpSocket::bind("127.0.0.1:0").unwrap();
    let ticket = TICKET.replace(":9/", &format!(":{}/", silent.local_addr().unwrap().port()));
    fa.write(&offer_bytes(1 << 20, "never", &ticket)).unwrap();
    let opts = RecvOptions {
        connect_timeout: Duration::from_secs(600),
        idle_timeout: Duration::from_secs(600),
        ..RecvOptions::default()
    };
    std::thread::scope(|s| {
        s.spawn(|| {
            std::thread::sleep(Duration::from_millis(300));
            drop(fa);
            drop(a);
        });
        let e = flow_bulk::recv_file(&fb, dst.path(), &opts, &Quiet).unwrap_err();
        assert!(matches!(e, BulkError::PeerGone { .. }), "{e}");
    });
}

#[test]
fn test_receiver_going_away_ends_the_sender() {
    let src = tempfile::tempdir().unwrap();
    let path = src.path().join("f");
    random_file(&path, 10_000, 3);
    let (_a, b, fa, fb) = pair("bulk-rx-gone");
    std::thread::scope(|s| {
        let tx = s.spawn(|| flow_bulk::send_file(&fa, &path, &SendOptions::default(), &Quiet));
        Offer::parse(&fb.read(Some(T)).unwrap()).unwrap();
        drop(fb);
        drop(b);
        let e = tx.join().unwrap().unwrap_err();
        assert!(matches!(e, BulkError::PeerGone { .. }), "{e}");
    });
}
