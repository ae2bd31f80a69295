//! `spec/vectors/frames.txt`: frames built by an independent generator must
//! decode to the listed datagram, and the ones marked `build = yes` must be
//! exactly what the recorder writes.

use std::collections::HashMap;
use std::path::Path;

use redgiant_base::Peer;
use rgtp_capture::frame::{build, decode, LinkLayer};
use rgtp_capture::Vlan;

fn records() -> Vec<HashMap<String, String>> {
    let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../spec/vectors/frames.txt");
    let text = std::fs::read_to_string(path).expect("spec/vectors/frames.txt");
    text.split("\n\n")
        .map(|block| {
            block
                .lines()
                .filter(|l| !l.starts_with('#') && !l.trim().is_empty())
                .filter_map(|l| l.split_once(" = "))
                .map(|(k, v)| (k.to_string(), v.to_string()))
                .collect::<HashMap<_, _>>()
        })
        .filter(|r| r.contains_key("frame"))
        .collect()
}

fn peer(s: &str) -> Peer {
    if let Ok(a) = s.parse() {
        return Peer::Ip(a);
    }
    let b: Vec<u8> = s
        .split('-')
        .map(|x| u8::from_str_radix(x, 16).unwrap())
        .collect();
    Peer::Ethernet(b.try_into().expect("6 bytes"))
}

fn vlan(s: &str) -> Option<Vlan> {
    let (id, pcp) = s.split_once('/')?;
    Some(Vlan {
        id: id.parse().unwrap(),
        pcp: pcp.parse().unwrap(),
        dei: false,
    })
}

#[test]
fn frame_vectors() {
    let rs = records();
    assert!(rs.len() >= 7, "{} records", rs.len());
    let mut built = 0;
    for r in &rs {
        let name = &r["name"];
        let frame = hex::decode(&r["frame"]).unwrap();
        let payload = hex::decode(&r["payload"]).unwrap();
        let (src, dst, tag) = (peer(&r["src"]), peer(&r["dst"]), vlan(&r["vlan"]));
        let d = decode(LinkLayer::Ethernet, &frame).unwrap_or_else(|e| panic!("{name}: {e}"));
        assert_eq!(d.payload, &payload[..], "{name}: payload");
        assert_eq!((d.src, d.dst), (src, dst), "{name}: addresses");
        assert_eq!(
            d.vlan.map(|v| (v.id, v.pcp)),
            tag.map(|v| (v.id, v.pcp)),
            "{name}: tag"
        );
        assert_eq!(d.padding.to_string(), r["padding"], "{name}: padding");
        if r["build"] == "yes" {
            let mut out = Vec::new();
            build(src, dst, tag, &payload, &mut out);
            assert_eq!(
                hex::encode(&out),
                r["frame"],
                "{name}: the recorder writes other bytes"
            );
            built += 1;
        }
    }
    assert!(built >= 4);
}
