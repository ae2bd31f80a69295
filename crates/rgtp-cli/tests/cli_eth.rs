//! `rgtp expose/pull --link eth:IFACE` between two network namespaces joined
//! by a veth pair: plain, with an 802.1Q tag, and with nftables dropping 5% of
//! frames at random; and UDP over the same kind of path, whose 1500-byte MTU
//! chunk packets with proofs do not fit. Every test creates and removes its own namespaces; they
//! need root (the README's test command runs as root).
#![cfg(target_os = "linux")]

#[path = "../../rgtp-link/tests/netns/mod.rs"]
mod netns;

use std::io::{BufRead, BufReader};
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::sync::mpsc;
use std::thread;
use std::time::{Duration, Instant};

use netns::{Netns, VethPair};
use rand::{RngCore, SeedableRng};

const BIN: &str = env!("CARGO_BIN_EXE_rgtp");

fn data(len: usize, seed: u64) -> Vec<u8> {
    let mut v = vec![0u8; len];
    rand_chacha::ChaCha8Rng::seed_from_u64(seed).fill_bytes(&mut v);
    v
}

/// `rgtp expose` running inside a namespace; SIGTERM on drop.
struct Exposer {
    child: Child,
    ticket: String,
}

impl Exposer {
    fn start(ns: &Netns, file: &Path, args: &[&str]) -> Exposer {
        Exposer::start_with(ns, file, args, Stdio::inherit())
    }

    /// [`Exposer::start`] with its standard error sent to `stderr`.
    fn start_with(ns: &Netns, file: &Path, args: &[&str], stderr: Stdio) -> Exposer {
        let mut child = ns
            .command(BIN)
            .arg("expose")
            .arg(file)
            .arg("-q")
            .args(args)
            .stdout(Stdio::piped())
            .stderr(stderr)
            .spawn()
            .expect("spawn rgtp expose");
        let stdout = child.stdout.take().expect("stdout");
        let (tx, rx) = mpsc::channel();
        thread::spawn(move || {
            let mut lines = BufReader::new(stdout).lines();
            let _ = tx.send(lines.next().and_then(Result::ok));
            for _ in lines {}
        });
        let ticket = match rx.recv_timeout(Duration::from_secs(30)) {
            Ok(Some(t)) => t,
            other => {
                let _ = child.kill();
                panic!(
                    "rgtp expose printed no ticket: {other:?}, {:?}",
                    child.wait()
                );
            }
        };
        Exposer { child, ticket }
    }

    /// SIGTERM and wait: the exposer must exit 0 (and have flushed any recording).
    fn stop(mut self) {
        let pid = libc::pid_t::try_from(self.child.id()).expect("pid");
        // SAFETY: kill(2) on our own unreaped child.
        unsafe {
            libc::kill(pid, libc::SIGTERM);
        }
        let deadline = Instant::now() + Duration::from_secs(10);
        loop {
            if let Some(s) = self.child.try_wait().expect("wait") {
                assert!(s.success(), "exposer exit status {s:?}");
                return;
            }
            assert!(Instant::now() < deadline, "exposer did not stop on SIGTERM");
            thread::sleep(Duration::from_millis(20));
        }
    }
}

impl Drop for Exposer {
    fn drop(&mut self) {
        if let Ok(None) = self.child.try_wait() {
            let _ = self.child.kill();
            let _ = self.child.wait();
        }
    }
}

/// Runs `rgtp pull` in `ns` with a time limit; returns (exit code, stderr).
fn pull(ns: &Netns, ticket: &str, out: &Path, args: &[&str]) -> (Option<i32>, String) {
    let mut c: Command = ns.command(BIN);
    c.arg("pull")
        .arg(ticket)
        .arg("-o")
        .arg(out)
        .args(["-q", "--idle-timeout", "15"])
        .args(args)
        .stdout(Stdio::null())
        .stderr(Stdio::piped());
    if !args.contains(&"--connect-timeout") {
        c.args(["--connect-timeout", "10"]);
    }
    let mut child = c.spawn().expect("spawn rgtp pull");
    let deadline = Instant::now() + Duration::from_secs(120);
    loop {
        if let Some(status) = child.try_wait().expect("wait") {
            let mut err = String::new();
            std::io::Read::read_to_string(&mut child.stderr.take().unwrap(), &mut err).ok();
            return (status.code(), err);
        }
        if Instant::now() > deadline {
            let _ = child.kill();
            panic!("rgtp pull did not finish in 120 s");
        }
        thread::sleep(Duration::from_millis(20));
    }
}

fn mac_text(m: [u8; 6]) -> String {
    rgtp_proto::Peer::Ethernet(m).to_string()
}

/// Runs `nft -f -` with `script` inside `ns`.
fn nft(ns: &Netns, script: &str) {
    let mut child = ns
        .command("nft")
        .args(["-f", "-"])
        .stdin(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("nft missing: apt-get install nftables");
    std::io::Write::write_all(&mut child.stdin.take().unwrap(), script.as_bytes()).unwrap();
    let out = child.wait_with_output().unwrap();
    assert!(
        out.status.success(),
        "nft failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
}

/// The packet counts of the named counters in `ns`'s ruleset.
fn nft_counter(ns: &Netns, name: &str) -> u64 {
    let out = ns
        .command("nft")
        .args(["list", "counter", "netdev", "rgtp", name])
        .output()
        .expect("nft");
    let text = String::from_utf8_lossy(&out.stdout);
    let after = text
        .split("packets ")
        .nth(1)
        .unwrap_or_else(|| panic!("no counter {name} in {text}"));
    after.split_whitespace().next().unwrap().parse().unwrap()
}

#[test]
fn expose_and_pull_over_raw_ethernet_with_recordings() {
    let pair = VethPair::new();
    let dir = tempfile::tempdir().unwrap();
    let src = dir.path().join("src.bin");
    let out = dir.path().join("out.bin");
    let bytes = data(3_000_000, 1);
    std::fs::write(&src, &bytes).unwrap();
    let xrec = dir.path().join("exposer.pcap");
    let prec = dir.path().join("puller.pcap");
    let link_a = format!("eth:{}", pair.a_if);
    let link_b = format!("eth:{}", pair.b_if);
    let x = Exposer::start(
        &pair.a,
        &src,
        &["--link", &link_a, "--record", xrec.to_str().unwrap()],
    );
    // The ticket names the exposer's MAC address, and default chunks are 1400 bytes.
    assert!(
        x.ticket
            .starts_with(&format!("rgtp://{}/", mac_text(pair.a_mac()))),
        "{}",
        x.ticket
    );
    let (code, err) = pull(
        &pair.b,
        &x.ticket,
        &out,
        &["--link", &link_b, "--record", prec.to_str().unwrap()],
    );
    let ticket = x.ticket.clone();
    x.stop();
    assert_eq!(code, Some(0), "pull failed: {err}");
    assert!(std::fs::read(&out).unwrap() == bytes, "output differs");

    // Both recordings hold raw 0x88B5 frames between the two MACs, and replay.
    for (path, what) in [(&prec, "puller"), (&xrec, "exposer")] {
        let cap = rgtp_capture::read(&std::fs::read(path).unwrap()).unwrap();
        let n = cap.datagrams().count();
        assert!(n > 2_000, "{what} capture has {n} datagrams");
        for (_, d) in cap.datagrams() {
            assert!(
                [d.src, d.dst].contains(&rgtp_proto::Peer::Ethernet(pair.a_mac())),
                "{what}: {:?} -> {:?}",
                d.src,
                d.dst
            );
            assert!(d.payload.len() <= 1500);
        }
        let chunk = cap
            .datagrams()
            .find(|(_, d)| d.payload.get(1) == Some(&3))
            .expect("chunks recorded");
        assert_eq!(
            chunk.1.payload.len(),
            24 + 1400 + 16,
            "default Ethernet chunk size"
        );
    }
    let replayed = dir.path().join("replayed.bin");
    let st = Command::new(BIN)
        .args(["replay", prec.to_str().unwrap(), "--ticket", &ticket, "-o"])
        .arg(&replayed)
        .status()
        .unwrap();
    assert!(st.success());
    assert!(std::fs::read(&replayed).unwrap() == bytes);
    let st = Command::new(BIN)
        .args([
            "replay",
            xrec.to_str().unwrap(),
            "--ticket",
            &ticket,
            "--source",
        ])
        .arg(&src)
        .status()
        .unwrap();
    assert!(
        st.success(),
        "exposer replay did not reproduce the recorded answers"
    );
}

#[test]
fn vlan_tagged_transfer_carries_the_tag_on_the_wire() {
    let pair = VethPair::new();
    // Count, at B's ingress, RGTP frames tagged VLAN 100 with priority 5, and untagged ones.
    nft(
        &pair.b,
        &format!(
            "table netdev rgtp {{
               counter tagged {{}}
               counter untagged {{}}
               chain in {{
                 type filter hook ingress device \"{}\" priority 0;
                 vlan id 100 vlan pcp 5 vlan type 0x88b5 counter name tagged
                 ether type 0x88b5 counter name untagged
               }}
             }}",
            pair.b_if
        ),
    );
    let dir = tempfile::tempdir().unwrap();
    let src = dir.path().join("src.bin");
    let out = dir.path().join("out.bin");
    let bytes = data(1_000_000, 2);
    std::fs::write(&src, &bytes).unwrap();
    let link_a = format!("eth:{}", pair.a_if);
    let link_b = format!("eth:{}", pair.b_if);
    let x = Exposer::start(
        &pair.a,
        &src,
        &["--link", &link_a, "--vlan", "100", "--pcp", "5"],
    );
    // A puller outside the VLAN never hears the exposer.
    let (code, err) = pull(
        &pair.b,
        &x.ticket,
        &dir.path().join("untagged.bin"),
        &["--link", &link_b, "--connect-timeout", "2"],
    );
    assert_eq!(code, Some(3), "an untagged puller must time out: {err}");
    assert!(err.contains("no answer"), "{err}");
    let rec = dir.path().join("tagged.pcap");
    let (code, err) = pull(
        &pair.b,
        &x.ticket,
        &out,
        &[
            "--link",
            &link_b,
            "--vlan",
            "100",
            "--pcp",
            "3",
            "--record",
            rec.to_str().unwrap(),
        ],
    );
    x.stop();
    assert_eq!(code, Some(0), "tagged pull failed: {err}");
    assert!(std::fs::read(&out).unwrap() == bytes);
    // The recording shows each frame's own tag: PCP 5 from the exposer, 3 from the puller.
    let cap = rgtp_capture::read(&std::fs::read(&rec).unwrap()).unwrap();
    for (_, d) in cap.datagrams() {
        let v = d.vlan.expect("tagged");
        let from_exposer = d.src == rgtp_proto::Peer::Ethernet(pair.a_mac());
        assert_eq!((v.id, v.pcp), (100, if from_exposer { 5 } else { 3 }));
    }
    let tagged = nft_counter(&pair.b, "tagged");
    assert!(
        tagged > 700,
        "only {tagged} tagged frames seen at the receiver"
    );
    assert_eq!(
        nft_counter(&pair.b, "untagged"),
        0,
        "the exposer sent untagged frames"
    );
}

#[test]
fn five_percent_random_frame_loss_is_recovered() {
    let pair = VethPair::new();
    for (ns, iface) in [(&pair.a, &pair.a_if), (&pair.b, &pair.b_if)] {
        nft(
            ns,
            &format!(
                "table netdev rgtp {{
                   counter dropped {{}}
                   chain in {{
                     type filter hook ingress device \"{iface}\" priority 0;
                     ether type 0x88b5 numgen random mod 100 < 5 counter name dropped drop
                   }}
                 }}"
            ),
        );
    }
    let dir = tempfile::tempdir().unwrap();
    let src = dir.path().join("src.bin");
    let out = dir.path().join("out.bin");
    let bytes = data(4_000_000, 3);
    std::fs::write(&src, &bytes).unwrap();
    let x = Exposer::start(&pair.a, &src, &["--link", &format!("eth:{}", pair.a_if)]);
    let (code, err) = pull(
        &pair.b,
        &x.ticket,
        &out,
        &["--link", &format!("eth:{}", pair.b_if)],
    );
    x.stop();
    assert_eq!(code, Some(0), "pull under 5% loss failed: {err}");
    assert!(std::fs::read(&out).unwrap() == bytes, "output differs");
    let dropped_b = nft_counter(&pair.b, "dropped");
    let dropped_a = nft_counter(&pair.a, "dropped");
    // About 2,860 chunk frames reach B's ingress: 5% of them is ~140.
    assert!(
        dropped_b > 50,
        "nftables dropped only {dropped_b} frames towards the puller"
    );
    eprintln!("dropped {dropped_b} frames towards the puller, {dropped_a} towards the exposer");
}

#[test]
fn an_exposer_serves_raw_ethernet_from_a_fanout_group_of_channels() {
    let pair = VethPair::new();
    let dir = tempfile::tempdir().unwrap();
    let src = dir.path().join("src.bin");
    let bytes = data(2_000_000, 7);
    std::fs::write(&src, &bytes).unwrap();
    let link_a = format!("eth:{}", pair.a_if);
    let link_b = format!("eth:{}", pair.b_if);
    let x = Exposer::start(&pair.a, &src, &["--link", &link_a, "--channels", "3"]);
    // Two pulls one after the other: each puller's frames stay with one serving
    // thread, whichever it is, and both complete byte-exact.
    for i in 0..2 {
        let out = dir.path().join(format!("out{i}.bin"));
        let (code, err) = pull(&pair.b, &x.ticket, &out, &["--link", &link_b]);
        assert_eq!(code, Some(0), "pull {i} failed: {err}");
        assert!(std::fs::read(&out).unwrap() == bytes, "output {i} differs");
    }
    // A raw-Ethernet pull has one MAC address and so one path: --channels is refused
    // on that side, naming where it belongs.
    let (code, err) = pull(
        &pair.b,
        &x.ticket,
        &dir.path().join("never.bin"),
        &["--link", &link_b, "--channels", "2"],
    );
    x.stop();
    assert_eq!(code, Some(2), "{err}");
    assert!(err.contains("--channels on the exposer"), "{err}");
}

/// `--proofs` over UDP on a path with a 1500-byte MTU: a 1200-byte chunk with its
/// proof is a 1,593-byte datagram here, too big for the path. IP fragments those,
/// the exposer says so once on standard error, and pulls complete verified, with
/// proof runs and with a proof in every packet.
#[test]
fn udp_proofs_over_a_path_with_a_1500_byte_mtu() {
    let pair = VethPair::new();
    pair.set_mtu(1500);
    pair.a
        .ip(&["addr", "add", "10.83.1.1/24", "dev", &pair.a_if]);
    pair.b
        .ip(&["addr", "add", "10.83.1.2/24", "dev", &pair.b_if]);
    let dir = tempfile::tempdir().unwrap();
    let src = dir.path().join("src.bin");
    let bytes = data(2 << 20, 7);
    std::fs::write(&src, &bytes).unwrap();
    let err_path = dir.path().join("expose.err");
    let err_file = std::fs::File::create(&err_path).unwrap();
    let x = Exposer::start_with(
        &pair.a,
        &src,
        &["--bind", "10.83.1.1", "--port", "0", "--proofs"],
        Stdio::from(err_file),
    );
    for (i, args) in [&["--proofs"][..], &["--proofs", "--no-proof-runs"]]
        .into_iter()
        .enumerate()
    {
        let out = dir.path().join(format!("out{i}.bin"));
        let (code, err) = pull(&pair.b, &x.ticket, &out, args);
        assert_eq!(code, Some(0), "pull {args:?} failed: {err}");
        assert!(
            std::fs::read(&out).unwrap() == bytes,
            "pull {args:?}: output differs"
        );
    }
    x.stop();
    let said = std::fs::read_to_string(&err_path).unwrap();
    assert_eq!(
        said.matches("do not fit the path").count(),
        1,
        "the exposer should say once that its datagrams are fragmented: {said}"
    );
    assert!(said.contains("1593 bytes"), "{said}");
}
