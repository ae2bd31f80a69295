//! The Wireshark dissectors `interop/wireshark/gtudp.lua` and `tej.lua`
//! decode the committed captures `pcaps/gtudp-*.pcap` and
//! `pcaps/tej-frames.pcap` to exactly what they were made from.
//!
//! Needs tshark (`apt-get install tshark`); without it the tests fail.

use std::path::{Path, PathBuf};
use std::process::Command;

use redgiant_gtudp::{Profile, Repr};
use rgtp_cli::pcaps_gtudp_tej::{self as gen, TEJ_SERVER};

fn root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../..")
}

/// Runs tshark with `script` loaded on the capture `pcaps/NAME.pcap`.
fn tshark(script: &str, name: &str, args: &[&str]) -> String {
    let home = tempfile::tempdir().expect("tempdir");
    let lua = root().join("interop/wireshark").join(script);
    let pcap = root().join("pcaps").join(format!("{name}.pcap"));
    let out = match Command::new("tshark")
        .env("HOME", home.path())
        .env("XDG_CONFIG_HOME", home.path().join(".config"))
        .env("WIRESHARK_CONFIG_DIR", home.path().join("wireshark"))
        .arg("-n")
        .arg("-X")
        .arg(format!("lua_script:{}", lua.display()))
        .arg("-r")
        .arg(&pcap)
        .args(args)
        .output()
    {
        Ok(out) => out,
        Err(e) => panic!(
            "tshark is needed to check the dissectors but cannot be run ({e}).\n\
             fix: apt-get install tshark"
        ),
    };
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        out.status.success() && !stderr.contains("Lua"),
        "tshark {args:?} failed ({}):\n{stderr}",
        out.status
    );
    String::from_utf8(out.stdout).expect("tshark output is UTF-8")
}

fn hex(b: &[u8]) -> String {
    b.iter().map(|x| format!("{x:02x}")).collect()
}

/// One row per frame: type, identity, payload, malformed.
fn gtudp_rows(name: &str, prefs: &[&str]) -> Vec<Vec<String>> {
    let mut args: Vec<&str> = prefs.to_vec();
    args.extend([
        "-T",
        "fields",
        "-E",
        "occurrence=a",
        "-e",
        "gtudp.type",
        "-e",
        "gtudp.identity",
        "-e",
        "gtudp.payload",
        "-e",
        "gtudp.malformed",
    ]);
    tshark("gtudp.lua", name, &args)
        .lines()
        .map(|l| l.split('\t').map(str::to_owned).collect())
        .collect()
}

/// What a row must say for `datagram` under `profile`.
fn expected_row(datagram: &[u8], profile: &Profile) -> Vec<String> {
    match Repr::parse(datagram, profile).expect("a well-formed datagram") {
        Repr::Data { id, payload } => vec![
            "DATA".into(),
            format!("0x{:08x}", u32::from_be_bytes(id.0)),
            hex(payload),
            String::new(),
        ],
        Repr::Recv { id } => vec![
            "RECV".into(),
            format!("0x{:08x}", u32::from_be_bytes(id.0)),
            String::new(),
            String::new(),
        ],
        Repr::Ack { id } => vec![
            "ACK".into(),
            format!("0x{:08x}", u32::from_be_bytes(id.0)),
            String::new(),
            String::new(),
        ],
    }
}

fn check_exchange(name: &str, profile: &Profile, prefs: &[&str]) {
    let capture =
        rgtp_capture::read(&std::fs::read(root().join(format!("pcaps/{name}.pcap"))).unwrap())
            .unwrap();
    let rows = gtudp_rows(name, prefs);
    let datagrams: Vec<_> = capture
        .datagrams()
        .map(|(_, d)| d.payload.clone())
        .collect();
    assert_eq!(rows.len(), datagrams.len());
    assert!(rows.iter().any(|r| r[0] == "DATA") && rows.iter().any(|r| r[0] == "RECV"));
    for (row, d) in rows.iter().zip(&datagrams) {
        assert_eq!(row, &expected_row(d, profile), "datagram {}", hex(d));
    }
}

#[test]
fn gtudp_exchange_decodes_by_decode_as_and_by_port() {
    let p = Profile::reference();
    check_exchange("gtudp-lossy", &p, &["-d", "udp.port==9000,gtudp"]);
    check_exchange("gtudp-lossy", &p, &["-o", "gtudp.port:9000"]);
}

#[test]
fn gtudp_profile_preferences() {
    let prefs = [
        "-o",
        "gtudp.magic:524754455354",
        "-o",
        "gtudp.data:d1d1",
        "-o",
        "gtudp.recv:5e5e",
        "-o",
        "gtudp.ack:acac",
        "-d",
        "udp.port==9000,gtudp",
    ];
    check_exchange("gtudp-magic", &gen::magic_profile(), &prefs);
    // With the default profile none of it is gtUDP.
    let rows = gtudp_rows("gtudp-magic", &["-d", "udp.port==9000,gtudp"]);
    assert!(!rows.is_empty());
    for r in rows {
        assert!(r[3].starts_with("unknown type 0x52"), "{r:?}");
    }
}

#[test]
fn gtudp_malformed_datagrams_are_flagged() {
    let rows = gtudp_rows("gtudp-malformed", &["-d", "udp.port==9000,gtudp"]);
    let expected = gen::malformed_datagrams();
    assert_eq!(rows.len(), expected.len());
    for (row, (d, why)) in rows.iter().zip(&expected) {
        match why {
            Some(why) => assert!(row[3].starts_with(why), "{} gave {row:?}", hex(d)),
            None => assert_eq!(row, &expected_row(d, &Profile::reference())),
        }
    }
    let verbose = tshark(
        "gtudp.lua",
        "gtudp-malformed",
        &["-d", "udp.port==9000,gtudp", "-V"],
    );
    assert_eq!(
        verbose
            .matches("[Expert Info (Error/Malformed): gtUDP: ")
            .count(),
        expected.iter().filter(|d| d.1.is_some()).count()
    );
}

#[test]
fn tej_frames_reassembled_and_split() {
    let port = format!("tcp.port=={},tej", TEJ_SERVER.port());
    let out = tshark(
        "tej.lua",
        "tej-frames",
        &[
            "-d",
            &port,
            "-Y",
            "tej",
            "-T",
            "fields",
            "-E",
            "aggregator=|",
            "-e",
            "frame.number",
            "-e",
            "tej.status.custom",
            "-e",
            "tej.status.msb",
            "-e",
            "tej.ping",
            "-e",
            "tej.version",
            "-e",
            "tej.file_count",
            "-e",
            "tej.file.name",
            "-e",
            "tej.file.length",
            "-e",
            "tej.file.data",
            "-e",
            "tej.message",
        ],
    );
    let rows: Vec<Vec<Vec<String>>> = out
        .lines()
        .map(|l| {
            l.split('\t')
                .map(|c| match c {
                    "" => Vec::new(),
                    c => c.split('|').map(str::to_owned).collect(),
                })
                .collect()
        })
        .collect();
    let frames = gen::tej_frames();
    let all = |col: usize| -> Vec<String> { rows.iter().flat_map(|r| r[col].clone()).collect() };
    let statuses: Vec<String> = frames.iter().map(|f| f.status.to_string()).collect();
    assert_eq!(all(1), statuses);
    assert!(
        all(2).iter().all(|m| m == "1" || m == "True"),
        "{:?}",
        all(2)
    );
    assert_eq!(all(2).len(), frames.len());
    assert_eq!(
        all(3).len(),
        frames.iter().filter(|f| f.status == 2).count()
    );
    assert_eq!(all(4), vec!["1".to_string(); frames.len()]);
    let counts: Vec<String> = frames.iter().map(|f| f.files.len().to_string()).collect();
    assert_eq!(all(5), counts);
    let files: Vec<&(String, Vec<u8>)> = frames.iter().flat_map(|f| &f.files).collect();
    assert_eq!(
        all(6),
        files.iter().map(|f| f.0.clone()).collect::<Vec<_>>()
    );
    assert_eq!(
        all(7),
        files
            .iter()
            .map(|f| f.1.len().to_string())
            .collect::<Vec<_>>()
    );
    let data: Vec<String> = files
        .iter()
        .filter(|f| !f.1.is_empty())
        .map(|f| hex(&f.1))
        .collect();
    assert_eq!(
        all(8)
            .iter()
            .map(|d| d.replace(':', ""))
            .collect::<Vec<_>>(),
        data
    );
    let messages: Vec<String> = frames
        .iter()
        .filter(|f| !f.message.is_empty())
        .map(|f| hex(&f.message))
        .collect();
    assert_eq!(
        all(9)
            .iter()
            .map(|d| d.replace(':', ""))
            .collect::<Vec<_>>(),
        messages
    );
    // The big frame is shown once, at its last segment; the last segment
    // holds three frames.
    let (_, cuts) = gen::tej_stream();
    assert_eq!(rows.len(), 4);
    let big = &rows[2];
    assert_eq!(big[6], vec!["big.bin".to_string()]);
    assert!(cuts.len() > 10);
    assert_eq!(rows[3][1].len(), 3, "three frames in the last segment");
    let verbose = tshark("tej.lua", "tej-frames", &["-d", &port, "-V"]);
    assert!(verbose.contains("Reassembled TCP"), "no reassembly shown");
    assert!(!verbose.contains("Malformed"));
}

#[test]
fn tej_protocol_errors_are_flagged() {
    let port = format!("tcp.port=={},tej", TEJ_SERVER.port());
    let out = tshark(
        "tej.lua",
        "tej-hostile",
        &[
            "-d",
            &port,
            "-Y",
            "tej",
            "-T",
            "fields",
            "-E",
            "aggregator=|",
            "-e",
            "tcp.srcport",
            "-e",
            "tej.status.custom",
            "-e",
            "tej.malformed",
        ],
    );
    let rows: Vec<Vec<&str>> = out.lines().map(|l| l.split('\t').collect()).collect();
    let streams = gen::tej_hostile_streams();
    assert_eq!(rows.len(), streams.len(), "{out}");
    // The ping before the bad frame is decoded, then the MSB-0 frame flagged.
    assert_eq!(rows[0][0], streams[0].0.to_string());
    assert_eq!(rows[0][1], "2");
    assert_eq!(rows[0][2], "status MSB is 0");
    // A 2^63-byte file is flagged, not waited for.
    assert_eq!(rows[1][0], streams[1].0.to_string());
    assert_eq!(rows[1][2], "declared file length too large");
    let verbose = tshark("tej.lua", "tej-hostile", &["-d", &port, "-V"]);
    assert!(
        verbose.contains("[Expert Info (Error/Malformed): TEJ status MSB is 0: a protocol error]")
    );
    assert!(verbose.contains(
        "[Expert Info (Error/Malformed): TEJ: declared file length too large to reassemble]"
    ));
}
