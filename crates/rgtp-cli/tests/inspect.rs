//! `rgtp_cli::inspect` over the canonical captures in `pcaps/` and over captures
//! built here (Rate_Reports, foreign traffic, many malformed datagrams).

use std::path::{Path, PathBuf};

use rgtp::Ticket;
use rgtp_capture::{Capture, CaptureWriter};
use rgtp_cli::inspect::{inspect, type_key, Report, Verdict, PACKET_TYPES};
use rgtp_proto::puller::PullError;
use rgtp_proto::Peer;
use rgtp_wire::{
    ChunkData, IndexList, Manifest, ManifestFlags, Nak, NakFlags, PacketType, PullFlags,
    PullRequest, RateReport, Repr,
};
use serde_json::Value;
use sha2::{Digest, Sha256};

fn dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../../pcaps")
}

fn load(name: &str) -> (Capture, Value) {
    let capture = rgtp_capture::read(&std::fs::read(dir().join(format!("{name}.pcap"))).unwrap())
        .unwrap_or_else(|e| panic!("{name}: {e}"));
    let sidecar =
        serde_json::from_slice(&std::fs::read(dir().join(format!("{name}.json"))).unwrap())
            .unwrap();
    (capture, sidecar)
}

fn ticket_of(sidecar: &Value) -> Ticket {
    sidecar["ticket"].as_str().unwrap().parse().unwrap()
}

fn corpus_names() -> Vec<String> {
    let mut v: Vec<String> = std::fs::read_dir(dir())
        .unwrap()
        .filter_map(|e| {
            let p = e.unwrap().path();
            let name: String = p.file_stem()?.to_string_lossy().into();
            // gtUDP and TEJ captures are checked by pcaps_gtudp_tej.rs.
            (p.extension()? == "pcap" && !name.starts_with("gtudp-") && !name.starts_with("tej-"))
                .then_some(name)
        })
        .collect();
    v.sort();
    v
}

fn ip(s: &str) -> Peer {
    Peer::Ip(s.parse().unwrap())
}

fn emit(r: &Repr<'_>) -> Vec<u8> {
    let mut b = vec![0; r.buffer_len()];
    r.emit(&mut b);
    b
}

/// The only exposure of a capture.
fn only(r: &Report) -> &rgtp_cli::inspect::ExposureReport {
    assert_eq!(r.exposures.len(), 1, "{r}");
    &r.exposures[0]
}

#[test]
fn multi_chunk_is_whole_and_clean() {
    let (c, _) = load("multi-chunk");
    let r = inspect(&c, None);
    let x = only(&r);
    let m = x.manifest.as_ref().expect("a Manifest");
    assert_eq!(m.chunk_count, 84);
    assert_eq!(x.chunks.distinct, u64::from(m.chunk_count));
    assert_eq!(
        x.packets_of(PacketType::ChunkData).from_exposer.packets,
        u64::from(m.chunk_count)
    );
    assert_eq!(x.packets_of(PacketType::ChunkData).to_exposer.packets, 0);
    assert_eq!(x.requests.distinct_chunks, u64::from(m.chunk_count));
    assert_eq!(x.chunks.missing(), Some(0));
    assert_eq!(x.chunks.plaintext_bytes, m.total_size);
    assert_eq!(r.malformed_total(), 0);
    assert_eq!(x.requests.undelivered, 0);
    assert_eq!(x.requests.loss_seen(), Some(0.0));
    assert_eq!(x.requests.rerequests, 0);
    assert_eq!(x.chunks.seen_more_than_once, 0);
    assert_eq!(x.exposers, vec![ip("192.0.2.1:9000")]);
    assert_eq!(x.pullers, vec![ip("192.0.2.2:40000")]);
    assert!(x.goodput_bytes_per_s().unwrap() > 0.0);
    assert_eq!(r.valid_packets, c.records.len() as u64);
    assert_eq!(r.not_rgtp.frames + r.not_rgtp.udp_datagrams, 0);
    assert!(r.pull.is_none() && r.recovered.is_none());
}

#[test]
fn keepalive_is_counted_from_the_puller() {
    let (c, _) = load("keepalive");
    let r = inspect(&c, None);
    let x = only(&r);
    let k = x.packets_of(PacketType::Keepalive);
    assert_eq!((k.to_exposer.packets, k.to_exposer.bytes), (1, 32));
    assert_eq!(k.from_exposer.packets, 0);
    assert_eq!(x.packets_of(PacketType::RateReport).to_exposer.packets, 0);
    assert_eq!(x.chunks.missing(), Some(0));
    assert_eq!(r.malformed_total(), 0);
}

#[test]
fn lossy_shows_rerequests_loss_and_retransmissions() {
    let (c, sidecar) = load("lossy");
    let r = inspect(&c, None);
    let x = only(&r);
    let q = &x.requests;
    assert!(q.rerequests > 0, "{r}");
    assert!(q.loss_seen().unwrap() > 0.0, "{r}");
    assert_eq!(x.chunks.missing(), Some(0));
    assert_eq!(x.chunks.distinct, 100);
    // Recorded at the puller, every chunk arrived once: each entry beyond
    // the 100 answered ones went unanswered.
    assert_eq!(x.chunks.packets, 100);
    assert_eq!(q.undelivered, q.chunk_entries - 100);
    assert_eq!(q.rerequests, q.chunk_entries - q.distinct_chunks);
    // Every chunk asked for more than once did arrive: all were retransmitted.
    assert!(x.chunks.retransmitted > 0);
    assert_eq!(x.chunks.retransmitted, q.rerequested);
    assert_eq!(x.chunks.seen_more_than_once, 0);
    assert_eq!(x.packets_of(PacketType::PullRequest).to_exposer.packets, 3);
    assert_eq!(x.packets_of(PacketType::Nak).to_exposer.packets, q.naks);
    assert_eq!(x.exposure_id, ticket_of(&sidecar).exposure_id);
    assert_eq!(x.manifest.as_ref().unwrap().cipher, "chacha20-poly1305");
    assert_eq!(x.manifest.as_ref().unwrap().hash, "blake2b-256");
    assert_eq!(x.manifest.as_ref().unwrap().fec, "none");
}

#[test]
fn fec_captures_show_parity() {
    for (name, scheme, n, k) in [
        ("rs", "reed-solomon", 10, 8),
        ("raptorq", "raptorq", 20, 16),
    ] {
        let (c, sidecar) = load(name);
        let r = inspect(&c, None);
        let x = only(&r);
        let m = x.manifest.as_ref().unwrap();
        assert_eq!((m.fec, m.fec_n, m.fec_k), (scheme, n, k), "{name}");
        assert!(x.fec.parity_packets > 0, "{name}");
        assert_eq!(
            x.fec.parity_packets,
            x.packets_of(PacketType::FecParity).from_exposer.packets
        );
        assert_eq!(
            x.fec.parity_packets,
            sidecar["expect"]["puller"]["counters"]["parity_received"]
                .as_u64()
                .unwrap(),
            "{name}"
        );
        assert!(x.fec.blocks_with_parity > 0 && x.requests.parity_entries > 0);
        assert_eq!(x.fec.mismatched, 0);
        // The chunks never seen were all rebuilt from parity (the puller may
        // rebuild more: chunks whose re-requested copy came later).
        let counters = &sidecar["expect"]["puller"]["counters"];
        let get = |k: &str| counters[k].as_u64().unwrap();
        let missing = x.chunks.missing().unwrap();
        assert!(missing > 0, "{name}: {r}");
        assert_eq!(missing, u64::from(m.chunk_count) - x.chunks.distinct);
        assert_eq!(x.chunks.missing_fec_covered, Some(missing), "{name}");
        assert!(missing <= get("fec_recoveries"));
        assert!(x.chunks.distinct + get("fec_recoveries") >= get("chunks_received"));
    }
}

#[test]
fn truncated_packets_are_malformed_with_their_records() {
    let (c, sidecar) = load("hostile-truncated");
    let r = inspect(&c, None);
    let x = only(&r);
    // Independently: the datagrams shorter than their Length field.
    let cut: Vec<usize> = c
        .datagrams()
        .filter(|(_, d)| {
            let p = &d.payload;
            p.len() < 4 || usize::from(u16::from_be_bytes([p[2], p[3]])) != p.len()
        })
        .map(|(r, _)| r.index)
        .collect();
    assert_eq!(cut.len(), 3);
    let got: Vec<usize> = r.all_malformed().iter().map(|m| m.index).collect();
    assert_eq!(got, cut);
    assert_eq!(
        r.malformed_total(),
        sidecar["expect"]["puller"]["counters"]["malformed"]
            .as_u64()
            .unwrap()
    );
    // All three travelled between the exposure's two ends: attributed to it.
    assert_eq!(x.malformed.len(), 3);
    assert!(r.unattributed.is_empty());
    for m in &x.malformed {
        assert!(
            matches!(m.class, "length-mismatch" | "truncated"),
            "{}: {}",
            m.class,
            m.reason
        );
        assert!(
            m.reason.contains("length") || m.reason.contains("truncated"),
            "{}",
            m.reason
        );
        assert_eq!(m.src, ip("192.0.2.1:9000"));
    }
    // Not counted as chunks; the genuine copies make the transfer whole.
    assert_eq!(x.chunks.missing(), Some(0));
    let text = r.to_string();
    for i in &cut {
        assert!(text.contains(&format!("#{i} ")), "{text}");
    }
}

#[test]
fn wrong_exposure_id_is_a_second_unanswered_exposure() {
    let (c, sidecar) = load("hostile-wrong-exposure-id");
    let r = inspect(&c, None);
    assert_eq!(r.exposures.len(), 2, "{r}");
    let real = r.exposure(&ticket_of(&sidecar).exposure_id).unwrap();
    let other = r.exposure(&[0xee; 16]).expect("the ee…ee exposure");
    assert!(real.chunks.distinct > 0);
    assert_eq!(other.exposers, vec![ip("192.0.2.1:9000")]);
    assert_eq!(other.pullers, vec![ip("192.0.2.2:40000")]);
    let sent: u64 = PACKET_TYPES
        .iter()
        .map(|t| other.packets_of(*t).to_exposer.packets)
        .sum();
    let answered: u64 = PACKET_TYPES
        .iter()
        .map(|t| other.packets_of(*t).from_exposer.packets)
        .sum();
    assert!(sent >= 2, "{r}");
    assert_eq!(answered, 0);
    assert!(other.packets_of(PacketType::PullRequest).to_exposer.packets > 0);
    assert!(other.requests.chunk_entries > 0);
    assert!(other.manifest.is_none());
    assert_eq!(other.chunks.packets, 0);
    assert_eq!(other.requests.undelivered, other.requests.servable);
    assert_eq!(other.requests.loss_seen(), Some(1.0));
    assert_eq!(r.malformed_total(), 0);
}

#[test]
fn wrong_version_pull_request_is_malformed() {
    let (c, _) = load("hostile-wrong-version");
    let r = inspect(&c, None);
    let m = r.all_malformed();
    assert_eq!(m.len(), 1, "{r}");
    assert_eq!(m[0].class, "unknown-version");
    assert_eq!(m[0].reason, "unknown protocol version 2");
    // Bytes 4..20 name the real exposure.
    assert_eq!(only(&r).malformed.len(), 1);
}

#[test]
fn ethernet_vlan_peers_are_mac_addresses() {
    let (c, sidecar) = load("ethernet-vlan");
    let r = inspect(&c, None);
    let x = only(&r);
    let mac = |s: &str| Peer::Ethernet(rgtp::ticket::parse_mac(s).unwrap());
    assert_eq!(x.exposers, vec![mac(sidecar["exposer"].as_str().unwrap())]);
    assert_eq!(x.pullers, vec![mac(sidecar["puller"].as_str().unwrap())]);
    let j = r.to_json();
    assert_eq!(j["exposures"][0]["exposers"][0], sidecar["exposer"]);
    assert_eq!(j["exposures"][0]["pullers"][0], sidecar["puller"]);
    assert_eq!(x.chunks.missing(), Some(0));
    assert_eq!(r.malformed_total(), 0);
}

#[test]
fn ipv6_peers() {
    let (c, sidecar) = load("ipv6");
    let r = inspect(&c, None);
    let x = only(&r);
    assert_eq!(
        x.exposers,
        vec![ip(sidecar["exposer"].as_str().unwrap())],
        "{r}"
    );
}

#[test]
fn every_capture_pulls_with_its_ticket() {
    for name in corpus_names() {
        let (c, sidecar) = load(&name);
        let want = &sidecar["expect"]["puller"];
        assert_eq!(want["verdict"], "complete", "{name}");
        let t = ticket_of(&sidecar);
        let r = inspect(&c, Some(&t));
        let p = r.pull.as_ref().unwrap();
        assert_eq!(p.verdict, Verdict::Complete, "{name}: {r}");
        assert_eq!(p.merkle_root_verified, Some(true));
        let out = r.recovered.as_ref().expect("recovered bytes");
        let sha = hex::encode(Sha256::digest(out));
        assert_eq!(sha, sidecar["source"]["sha256"].as_str().unwrap(), "{name}");
        assert_eq!(
            out.len() as u64,
            sidecar["source"]["size"].as_u64().unwrap()
        );
        let j = r.to_json();
        assert_eq!(j["pull"]["verdict"], "complete");
        assert_eq!(j["pull"]["recovered_sha256"], sidecar["source"]["sha256"]);
        assert_eq!(j["pull"]["merkle_root_verified"], true);
        assert_eq!(j["pull"]["datagrams_fed"], want["datagrams_fed"], "{name}");
        for (k, v) in want["counters"].as_object().unwrap() {
            assert_eq!(&j["pull"]["counters"][k], v, "{name}: counter {k}");
        }
        // The recovered bytes stay out of the JSON.
        assert!(j.to_string().len() < 40_000, "{name}");
        assert!(r.to_string().contains("complete"), "{name}");
    }
}

#[test]
fn wrong_key_fails_authentication_and_recovers_nothing() {
    let (c, sidecar) = load("multi-chunk");
    let s = sidecar["ticket"].as_str().unwrap();
    let (head, key) = s.split_once('#').unwrap();
    let flipped = format!(
        "{:02x}{}",
        u8::from_str_radix(&key[..2], 16).unwrap() ^ 0x01,
        &key[2..]
    );
    let t: Ticket = format!("{head}#{flipped}").parse().unwrap();
    let r = inspect(&c, Some(&t));
    let p = r.pull.as_ref().unwrap();
    assert_eq!(p.verdict, Verdict::Failed(PullError::AuthFailed), "{r}");
    assert_eq!(p.verdict.name(), "auth-failed");
    assert!(p.stats.auth_failures > 0);
    assert_eq!(p.stats.chunks_received, 0);
    assert_eq!(p.merkle_root_verified, None);
    assert!(r.recovered.is_none());
    let j = r.to_json();
    assert_eq!(j["pull"]["verdict"], "auth-failed");
    assert_eq!(j["pull"]["recovered_bytes"], Value::Null);
    assert_eq!(
        j["pull"]["counters"]["auth_failures"],
        p.stats.auth_failures
    );
}

#[test]
fn ticket_for_an_exposure_not_in_the_capture() {
    let (c, _) = load("tiny");
    let (_, other) = load("lossy");
    let r = inspect(&c, Some(&ticket_of(&other)));
    let p = r.pull.as_ref().unwrap();
    assert!(
        matches!(p.verdict, Verdict::Incomplete { received: 0, .. }),
        "{:?}",
        p.verdict
    );
    assert!(r.recovered.is_none());
}

const X: Peer = Peer::Ip(std::net::SocketAddr::new(
    std::net::IpAddr::V4(std::net::Ipv4Addr::new(198, 51, 100, 1)),
    9000,
));
const P: Peer = Peer::Ip(std::net::SocketAddr::new(
    std::net::IpAddr::V4(std::net::Ipv4Addr::new(198, 51, 100, 2)),
    41000,
));
const ID: [u8; 16] = [0x42; 16];
const T0: u64 = 1_767_225_600_000_000;

/// A small valid exchange: Pull_Request, Manifest (3 chunks of 100 B), a NAK, the chunks.
fn exchange(w: &mut CaptureWriter<Vec<u8>>) {
    let pr = Repr::PullRequest(PullRequest {
        exposure_id: ID,
        window_size: 16,
        loss_rate_q16: 0,
        flags: PullFlags::empty(),
        version_min: 1,
        version_max: 1,
    });
    w.write_datagram(T0, P, X, None, &emit(&pr)).unwrap();
    let m = Repr::Manifest(Manifest {
        exposure_id: ID,
        total_size: 250,
        chunk_count: 3,
        chunk_size: 100,
        merkle_root: [7; 32],
        fec_n: 0,
        fec_k: 0,
        flags: ManifestFlags::AES_256_GCM | ManifestFlags::HASH_BLAKE3,
        token: None,
        rate_cap: None,
    });
    w.write_datagram(T0 + 1_000, X, P, None, &emit(&m)).unwrap();
    let nak = Repr::Nak(Nak {
        exposure_id: ID,
        flags: NakFlags::empty(),
        indices: IndexList::Slice(&[0, 1, 2]),
        token: None,
    });
    w.write_datagram(T0 + 2_000, P, X, None, &emit(&nak))
        .unwrap();
    for (i, len) in [(0u32, 116usize), (1, 116), (2, 66)] {
        let payload = vec![0xab; len];
        let c = Repr::ChunkData(ChunkData {
            exposure_id: ID,
            chunk_index: i,
            payload: &payload,
        });
        w.write_datagram(T0 + 3_000 + u64::from(i), X, P, None, &emit(&c))
            .unwrap();
    }
}

fn finish(w: CaptureWriter<Vec<u8>>) -> Capture {
    rgtp_capture::read(&w.into_inner().unwrap()).unwrap()
}

#[test]
fn rate_reports_give_rtt_loss_and_window() {
    let mut w = CaptureWriter::new(Vec::new()).unwrap();
    exchange(&mut w);
    // RTT 0 means "no sample yet" and is left out.
    let reports = [
        (0u32, 0u32, 8u32),
        (5_000, 655, 16),
        (3_000, 6553, 32),
        (9_000, 3276, 24),
        (4_000, 1310, 20),
    ];
    for (n, (rtt, loss, window)) in reports.iter().enumerate() {
        let rr = Repr::RateReport(RateReport {
            exposure_id: ID,
            rtt_us: *rtt,
            loss_rate_q16: *loss,
            window_size: *window,
            timestamp_us: T0 + 10_000 * n as u64,
        });
        w.write_datagram(T0 + 10_000 + 1_000 * n as u64, P, X, None, &emit(&rr))
            .unwrap();
    }
    let r = inspect(&finish(w), None);
    let x = only(&r);
    assert_eq!(x.rate.reports, 5);
    let s = x.rate.rtt_us.unwrap();
    assert_eq!(
        (s.min, s.median, s.max, s.last),
        (3_000, 4_000, 9_000, 4_000)
    );
    let (last, max) = x.rate.loss_percent.unwrap();
    assert!((last - 1310.0 / 65535.0 * 100.0).abs() < 1e-9);
    assert!((max - 10.0).abs() < 0.01);
    assert_eq!(x.rate.window, Some((20, 32)));
    assert_eq!(x.packets_of(PacketType::RateReport).to_exposer.packets, 5);
    assert_eq!(
        x.packets_of(PacketType::RateReport).to_exposer.bytes,
        5 * 44
    );
    let m = x.manifest.as_ref().unwrap();
    assert_eq!((m.cipher, m.hash, m.fec), ("aes-256-gcm", "blake3", "none"));
    assert!(m.problems.is_empty(), "{:?}", m.problems);
    assert_eq!(x.chunks.plaintext_bytes, 250);
    assert_eq!(x.chunks.payload_bytes, 116 + 116 + 66);
    assert_eq!(x.duration_us(), 14_000);
    let j = r.to_json();
    let rate = &j["exposures"][0]["rate"];
    assert_eq!(rate["rtt_us"]["median"], 4_000);
    assert_eq!(rate["rtt_us"]["min"], 3_000);
    assert_eq!(rate["rtt_us"]["max"], 9_000);
    assert_eq!(rate["window"]["max"], 32);
    let text = r.to_string();
    assert!(
        text.contains("min 3000 µs, median 4000 µs, max 9000 µs"),
        "{text}"
    );
}

/// An Ethernet frame with EtherType ARP.
fn arp_frame() -> Vec<u8> {
    let mut f = vec![0xff; 6];
    f.extend_from_slice(&[2, 0, 0, 0, 0, 9]);
    f.extend_from_slice(&0x0806u16.to_be_bytes());
    f.extend_from_slice(&[0, 1, 8, 0, 6, 4, 0, 1]);
    f.extend_from_slice(&[0; 20]);
    f
}

#[test]
fn foreign_traffic_is_not_rgtp_and_not_malformed() {
    let mut w = CaptureWriter::new(Vec::new()).unwrap();
    exchange(&mut w);
    w.write_frame(T0 + 5_000, &arp_frame()).unwrap();
    // A DNS query (ID 0xabcd) on port 53.
    let dns = [
        0xab, 0xcd, 0x01, 0x00, 0, 1, 0, 0, 0, 0, 0, 0, 7, b'e', b'x', b'a', b'm', b'p', b'l',
        b'e', 3, b'c', b'o', b'm', 0, 0, 1, 0, 1,
    ];
    w.write_datagram(
        T0 + 6_000,
        ip("198.51.100.2:53000"),
        ip("198.51.100.53:53"),
        None,
        &dns,
    )
    .unwrap();
    let r = inspect(&finish(w), None);
    assert_eq!(r.not_rgtp.frames, 1, "{r}");
    assert_eq!(r.not_rgtp.udp_datagrams, 1);
    assert_eq!(r.malformed_total(), 0);
    assert!(r.undecodable.is_empty());
    assert_eq!(r.valid_packets, 6);
    assert_eq!(r.exposures.len(), 1);
    let j = r.to_json();
    assert_eq!(j["not_rgtp"]["frames"], 1);
    assert_eq!(j["not_rgtp"]["udp_datagrams"], 1);
    assert_eq!(j["malformed_total"], 0);
}

#[test]
fn candidates_by_first_bytes_or_by_address_pair() {
    let mut w = CaptureWriter::new(Vec::new()).unwrap();
    exchange(&mut w);
    // On the exposure's address pair: malformed, whatever its bytes.
    w.write_datagram(T0 + 7_000, X, P, None, &[0xff, 0x00, 0x00, 0x04])
        .unwrap();
    // On other ports, but looks like RGTP (version 1, type 3): malformed, unattributed.
    w.write_datagram(
        T0 + 8_000,
        ip("203.0.113.5:1234"),
        ip("203.0.113.6:5678"),
        None,
        &[1, 3, 0, 9, 0, 0],
    )
    .unwrap();
    // On other ports and not RGTP-looking: not RGTP.
    w.write_datagram(
        T0 + 9_000,
        ip("203.0.113.5:1234"),
        ip("203.0.113.6:5678"),
        None,
        &[0x17, 0x03, 0x03, 0x00],
    )
    .unwrap();
    let r = inspect(&finish(w), None);
    assert_eq!(r.not_rgtp.udp_datagrams, 1, "{r}");
    let x = only(&r);
    assert_eq!(x.malformed.len(), 1);
    assert_eq!(x.malformed[0].class, "unknown-version");
    assert_eq!(x.malformed[0].index, 6);
    assert_eq!(r.unattributed.len(), 1);
    assert_eq!(r.unattributed[0].class, "length-mismatch");
    assert_eq!(r.unattributed[0].index, 7);
    assert_eq!(r.rgtp_datagrams(), 6 + 2);
}

#[test]
fn text_lists_the_first_20_malformed() {
    let mut w = CaptureWriter::new(Vec::new()).unwrap();
    exchange(&mut w);
    for i in 0..25u64 {
        w.write_datagram(T0 + 20_000 + i, X, P, None, &[1, 3, 0, 200, 1, 2])
            .unwrap();
    }
    let r = inspect(&finish(w), None);
    let x = only(&r);
    assert_eq!(x.malformed.len(), 25);
    let text = r.to_string();
    assert!(text.contains("… and 5 more"), "{text}");
    assert!(text.contains("#25 "), "{text}");
    assert!(!text.contains("#26 "), "{text}");
    assert_eq!(
        r.to_json()["exposures"][0]["malformed"]
            .as_array()
            .unwrap()
            .len(),
        25
    );
}

#[test]
fn retransmitted_and_duplicate_chunks() {
    let mut w = CaptureWriter::new(Vec::new()).unwrap();
    exchange(&mut w);
    // Chunk 1 asked for again and served twice more; chunk 9 is out of range.
    let nak = Repr::Nak(Nak {
        exposure_id: ID,
        flags: NakFlags::empty(),
        indices: IndexList::Slice(&[1, 9]),
        token: None,
    });
    w.write_datagram(T0 + 30_000, P, X, None, &emit(&nak))
        .unwrap();
    let payload = vec![0xcd; 116];
    let c = Repr::ChunkData(ChunkData {
        exposure_id: ID,
        chunk_index: 1,
        payload: &payload,
    });
    for t in 0..2 {
        w.write_datagram(T0 + 31_000 + t, X, P, None, &emit(&c))
            .unwrap();
    }
    let r = inspect(&finish(w), None);
    let x = only(&r);
    assert_eq!(x.requests.chunk_entries, 5);
    assert_eq!(x.requests.distinct_chunks, 4);
    assert_eq!(x.requests.rerequests, 1);
    assert_eq!(x.requests.rerequested, 1);
    assert_eq!(x.requests.out_of_range, 1);
    assert_eq!(x.requests.servable, 4);
    assert_eq!(x.requests.undelivered, 0);
    assert_eq!(x.chunks.packets, 5);
    assert_eq!(x.chunks.distinct, 3);
    assert_eq!(x.chunks.seen_more_than_once, 1);
    assert_eq!(x.chunks.extra_copies, 2);
    assert_eq!(x.chunks.retransmitted, 1);
    assert_eq!(x.chunks.unrequested, 1);
    assert_eq!(x.chunks.missing(), Some(0));
}

#[test]
fn missing_chunks_are_listed_as_ranges() {
    let mut w = CaptureWriter::new(Vec::new()).unwrap();
    let m = Repr::Manifest(Manifest {
        exposure_id: ID,
        total_size: 1000,
        chunk_count: 10,
        chunk_size: 100,
        merkle_root: [1; 32],
        fec_n: 0,
        fec_k: 0,
        flags: ManifestFlags::empty(),
        token: None,
        rate_cap: None,
    });
    w.write_datagram(T0, X, P, None, &emit(&m)).unwrap();
    let payload = vec![0; 116];
    for i in [0u32, 4, 5, 9] {
        let c = Repr::ChunkData(ChunkData {
            exposure_id: ID,
            chunk_index: i,
            payload: &payload,
        });
        w.write_datagram(T0 + 1 + u64::from(i), X, P, None, &emit(&c))
            .unwrap();
    }
    let r = inspect(&finish(w), None);
    let x = only(&r);
    assert_eq!(x.chunks.missing(), Some(6));
    assert_eq!(
        x.chunks.missing_ranges.as_deref(),
        Some(&[(1, 3), (6, 8)][..])
    );
    assert_eq!(x.chunks.missing_fec_covered, Some(0));
    assert_eq!(
        r.to_json()["exposures"][0]["chunks"]["missing_ranges"],
        serde_json::json!([[1, 3], [6, 8]])
    );
    assert!(r.to_string().contains("1-3, 6-8"));
}

#[test]
fn proof_runs_in_manifests_and_naks() {
    let mut w = CaptureWriter::new(Vec::new()).unwrap();
    let q = ip("198.51.100.3:41001");
    // P asks for proof runs and gets them; Q does not ask and gets a Manifest without.
    for (t, from, flags) in [
        (0u64, P, PullFlags::PROOFS | PullFlags::PROOF_RUNS),
        (10, q, PullFlags::PROOFS),
    ] {
        let pr = Repr::PullRequest(PullRequest {
            exposure_id: ID,
            window_size: 16,
            loss_rate_q16: 0,
            flags,
            version_min: 1,
            version_max: 1,
        });
        w.write_datagram(T0 + t, from, X, None, &emit(&pr)).unwrap();
    }
    let manifest = |flags| {
        Repr::Manifest(Manifest {
            exposure_id: ID,
            total_size: 13_000,
            chunk_count: 130,
            chunk_size: 100,
            merkle_root: [3; 32],
            fec_n: 0,
            fec_k: 0,
            flags,
            token: None,
            rate_cap: None,
        })
    };
    let m = manifest(ManifestFlags::PROOF_RUNS);
    w.write_datagram(T0 + 1_000, X, P, None, &emit(&m)).unwrap();
    let m = manifest(ManifestFlags::empty());
    w.write_datagram(T0 + 1_010, X, q, None, &emit(&m)).unwrap();
    // P: first requests with proof runs, a re-request with proofs on every chunk; Q: plain.
    let naks = [
        (
            P,
            NakFlags::PROOFS | NakFlags::PROOF_RUNS,
            &[0u32, 1, 63, 64, 65][..],
        ),
        (P, NakFlags::PROOFS | NakFlags::PROOF_RUNS, &[128, 129][..]),
        (P, NakFlags::PROOFS, &[1][..]),
        (q, NakFlags::empty(), &[0][..]),
    ];
    for (n, (from, flags, entries)) in naks.iter().enumerate() {
        let nak = Repr::Nak(Nak {
            exposure_id: ID,
            flags: *flags,
            indices: IndexList::Slice(entries),
            token: None,
        });
        w.write_datagram(T0 + 2_000 + n as u64, *from, X, None, &emit(&nak))
            .unwrap();
    }
    let r = inspect(&finish(w), None);
    let x = only(&r);
    let m = x.manifest.as_ref().unwrap();
    assert!(m.proof_runs, "the first Manifest has PROOF_RUNS");
    assert!(!m.proofs);
    assert!(m.consistent, "PROOF_RUNS is per puller: {:?}", m.problems);
    assert_eq!(m.count, 2);
    assert_eq!(x.requests.naks, 4);
    assert_eq!(x.requests.naks_with_proofs, 3);
    assert_eq!(x.requests.naks_with_proof_runs, 2);

    let j = r.to_json();
    let e = &j["exposures"][0];
    assert_eq!(e["manifest"]["proof_runs"], true);
    assert_eq!(e["manifest"]["consistent"], true);
    assert_eq!(e["requests"]["naks_with_proofs"], 3);
    assert_eq!(e["requests"]["naks_with_proof_runs"], 2);

    let text = r.to_string();
    assert!(
        text.contains("proofs no, proof runs yes, token no"),
        "{text}"
    );
    assert!(
        text.contains("  requests   4 NAKs (3 with proofs, 2 with proof runs): "),
        "{text}"
    );
}

#[test]
fn json_keys_and_values_match_the_report() {
    let (c, sidecar) = load("lossy");
    let r = inspect(&c, Some(&ticket_of(&sidecar)));
    let j = r.to_json();
    for k in [
        "format",
        "records",
        "start_us",
        "end_us",
        "duration_us",
        "rgtp_datagrams",
        "valid_packets",
        "malformed_total",
        "not_rgtp",
        "undecodable_frames",
        "exposures",
        "unattributed_malformed",
        "pull",
    ] {
        assert!(j.get(k).is_some(), "missing key {k}");
    }
    assert_eq!(j.as_object().unwrap().len(), 13, "unexpected keys: {j}");
    assert_eq!(j["format"], "pcap");
    assert_eq!(j["records"], r.records);
    assert_eq!(j["start_us"], r.start_us.unwrap());
    assert_eq!(j["valid_packets"], r.valid_packets);
    assert_eq!(j["rgtp_datagrams"], r.rgtp_datagrams());
    let x = &r.exposures[0];
    let e = &j["exposures"][0];
    for k in [
        "exposure_id",
        "exposers",
        "pullers",
        "first_us",
        "last_us",
        "duration_us",
        "packets",
        "manifest",
        "requests",
        "chunks",
        "fec",
        "rate",
        "goodput_bytes_per_s",
        "malformed",
    ] {
        assert!(e.get(k).is_some(), "missing exposure key {k}");
    }
    assert_eq!(e["exposure_id"], hex::encode(x.exposure_id));
    assert_eq!(e["exposers"][0], "192.0.2.1:9000");
    assert_eq!(e["pullers"][0], "192.0.2.2:40000");
    assert_eq!(e["duration_us"], x.duration_us());
    for t in PACKET_TYPES {
        let c = x.packets_of(t);
        let p = &e["packets"][type_key(t)];
        assert_eq!(p["to_exposer"]["packets"], c.to_exposer.packets, "{t:?}");
        assert_eq!(p["to_exposer"]["bytes"], c.to_exposer.bytes, "{t:?}");
        assert_eq!(p["from_exposer"]["packets"], c.from_exposer.packets);
        assert_eq!(p["from_exposer"]["bytes"], c.from_exposer.bytes);
    }
    let m = x.manifest.as_ref().unwrap();
    assert_eq!(e["manifest"]["chunk_count"], m.chunk_count);
    assert_eq!(e["manifest"]["total_size"], m.total_size);
    assert_eq!(e["manifest"]["chunk_size"], m.chunk_size);
    assert_eq!(e["manifest"]["merkle_root"], hex::encode(m.merkle_root));
    assert_eq!(e["manifest"]["cipher"], m.cipher);
    assert_eq!(e["manifest"]["token"], m.token);
    let q = &x.requests;
    assert_eq!(e["requests"]["naks"], q.naks);
    assert_eq!(e["requests"]["chunk_entries"], q.chunk_entries);
    assert_eq!(e["requests"]["rerequests"], q.rerequests);
    assert_eq!(e["requests"]["rerequested"], q.rerequested);
    assert_eq!(e["requests"]["undelivered"], q.undelivered);
    assert_eq!(e["requests"]["loss_seen"], q.loss_seen().unwrap());
    assert_eq!(e["chunks"]["distinct"], x.chunks.distinct);
    assert_eq!(e["chunks"]["retransmitted"], x.chunks.retransmitted);
    assert_eq!(e["chunks"]["missing"], 0);
    assert_eq!(e["fec"]["parity_packets"], 0);
    assert_eq!(e["rate"]["reports"], 0);
    assert_eq!(e["rate"]["rtt_us"], Value::Null);
    assert_eq!(e["goodput_bytes_per_s"], x.goodput_bytes_per_s().unwrap());
    let p = r.pull.as_ref().unwrap();
    assert_eq!(j["pull"]["exposer"], "192.0.2.1:9000");
    assert_eq!(j["pull"]["puller"], "192.0.2.2:40000");
    assert_eq!(j["pull"]["chunks_total"], 100);
    assert_eq!(
        j["pull"]["recovered_bytes"],
        r.recovered.as_ref().unwrap().len()
    );
    assert_eq!(
        j["pull"]["counters"]["chunks_received"],
        p.stats.chunks_received
    );
    assert_eq!(j["pull"]["datagrams_fed"], p.fed);
    // Every key the module documents appears in the JSON of this report.
    let doc = include_str!("../src/inspect.rs");
    for k in [
        "naks_with_proofs",
        "naks_with_proof_runs",
        "proof_runs",
        "missing_fec_covered",
        "seen_more_than_once",
    ] {
        assert!(doc.contains(k) && j.to_string().contains(k), "{k}");
    }
}

#[test]
fn lossy_text_report() {
    let (c, sidecar) = load("lossy");
    let t = ticket_of(&sidecar);
    let r = inspect(&c, Some(&t));
    let text = r.to_string();
    println!("{text}");
    let x = only(&r);
    assert!(text.starts_with("capture  pcap, 112 records from 2026-01-01 00:00:00"));
    assert!(text.contains(&format!("exposure {}", hex::encode(t.exposure_id))));
    assert!(text.contains("  exposer    192.0.2.1:9000\n"));
    assert!(text.contains(&format!(
        "{} re-requests ({} entries asked more than once)",
        x.requests.rerequests, x.requests.rerequested
    )));
    assert!(text.contains("none missing"));
    assert!(text.contains("  malformed  none\n"));
    assert!(text.contains("complete: every chunk authenticated"));
    assert!(text.contains("root verified"));
    assert!(text.contains(sidecar["source"]["sha256"].as_str().unwrap()));
}

proptest::proptest! {
    #![proptest_config(proptest::prelude::ProptestConfig::with_cases(64))]

    /// Damaged and arbitrary datagrams never make the inspector panic, and
    /// every datagram is counted exactly once.
    #[test]
    fn never_panics(
        cuts in proptest::collection::vec((0usize..8, 0usize..200, proptest::prelude::any::<u8>(), proptest::prelude::any::<bool>()), 0..24),
        junk in proptest::collection::vec(proptest::collection::vec(proptest::prelude::any::<u8>(), 0..64), 0..8),
    ) {
        let mut w = CaptureWriter::new(Vec::new()).unwrap();
        exchange(&mut w);
        let base = rgtp_capture::read(&{
            let mut v = CaptureWriter::new(Vec::new()).unwrap();
            exchange(&mut v);
            v.into_inner().unwrap()
        })
        .unwrap();
        let packets: Vec<Vec<u8>> = base.datagrams().map(|(_, d)| d.payload.clone()).collect();
        for (n, (which, at, byte, truncate)) in cuts.iter().enumerate() {
            let mut p = packets[which % packets.len()].clone();
            if *truncate {
                p.truncate(at % (p.len() + 1));
            } else if !p.is_empty() {
                let i = at % p.len();
                p[i] = *byte;
            }
            w.write_datagram(T0 + 100_000 + n as u64, X, P, None, &p).unwrap();
        }
        for (n, j) in junk.iter().enumerate() {
            w.write_datagram(T0 + 200_000 + n as u64, ip("203.0.113.1:5"), ip("203.0.113.2:6"), None, j)
                .unwrap();
        }
        let c = finish(w);
        let r = inspect(&c, None);
        let _ = r.to_string();
        let _ = r.to_json().to_string();
        proptest::prop_assert_eq!(
            r.rgtp_datagrams() + r.not_rgtp.udp_datagrams,
            c.datagrams().count() as u64
        );
    }
}

/// A capture taken on the sending host or on loopback, before the kernel cuts a
/// UDP GSO send into datagrams, holds each batch of chunk packets as one datagram:
/// `multi-chunk` with its exposer's chunks so batched reads as the original does,
/// packet by packet, and pulls with its ticket.
#[test]
fn segment_batches_captured_whole_are_read_packet_by_packet() {
    let (c, sidecar) = load("multi-chunk");
    let mut w = CaptureWriter::new(Vec::new()).unwrap();
    // (first record's time, src, dst, the batch so far, its packet size)
    let mut batch: Option<(u64, Peer, Peer, Vec<u8>, usize)> = None;
    let flush = |w: &mut CaptureWriter<Vec<u8>>,
                 b: &mut Option<(u64, Peer, Peer, Vec<u8>, usize)>| {
        if let Some((ts, src, dst, bytes, _)) = b.take() {
            w.write_datagram(ts, src, dst, None, &bytes).unwrap();
        }
    };
    for (r, d) in c.datagrams() {
        let chunk = matches!(Repr::parse(&d.payload, 65_507), Ok(Repr::ChunkData(_)));
        let joins = batch.as_ref().is_some_and(|(_, src, dst, bytes, size)| {
            chunk
                && (*src, *dst) == (d.src, d.dst)
                && bytes.len() % size == 0
                && bytes.len() / size < 16
                && d.payload.len() <= *size
        });
        if joins {
            batch.as_mut().unwrap().3.extend_from_slice(&d.payload);
            continue;
        }
        flush(&mut w, &mut batch);
        if chunk {
            batch = Some((r.ts_us, d.src, d.dst, d.payload.clone(), d.payload.len()));
        } else {
            w.write_datagram(r.ts_us, d.src, d.dst, None, &d.payload)
                .unwrap();
        }
    }
    flush(&mut w, &mut batch);
    let batched = finish(w);
    assert!(
        batched.records.len() + 60 < c.records.len(),
        "{} records of {}",
        batched.records.len(),
        c.records.len()
    );

    let t = ticket_of(&sidecar);
    let (a, b) = (inspect(&c, Some(&t)), inspect(&batched, Some(&t)));
    let (xa, xb) = (only(&a), only(&b));
    assert_eq!(b.malformed_total(), 0, "{b}");
    assert_eq!(b.valid_packets, a.valid_packets);
    assert_eq!(xb.chunks.distinct, xa.chunks.distinct);
    assert_eq!(
        xb.packets_of(PacketType::ChunkData).from_exposer.packets,
        xa.packets_of(PacketType::ChunkData).from_exposer.packets
    );
    let p = b.pull.as_ref().unwrap();
    assert_eq!(p.verdict, Verdict::Complete, "{b}");
    assert_eq!(b.recovered, a.recovered);
}
