//! The names a plan's `variants.protocol` axis takes, and the label of a variant.

use redgiant_flow::QoS;
use toml::Value;

/// gtUDP's timers and profile.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum GtudpMode {
    /// RTT-driven timers, the default profile.
    Rtt,
    /// The reference implementation's fixed 0.5 s timer and six sends.
    Reference,
    /// RTT timers, every datagram sealed (the authenticated profile).
    Auth,
}

/// A protocol a plan can name in `variants.protocol`.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Protocol {
    /// An RGTP pull.
    Rgtp,
    /// gtUDP datagrams.
    Gtudp(GtudpMode),
    /// A flow with a QoS preset (its name in [`QoS::PRESETS`]).
    Flow(&'static str, QoS),
}

impl Protocol {
    /// Parses a protocol name: "rgtp", "gtudp", "gtudp-reference",
    /// "gtudp-auth" or "flow:PRESET".
    pub fn parse(s: &str) -> Result<Protocol, String> {
        match s {
            "rgtp" => return Ok(Protocol::Rgtp),
            "gtudp" => return Ok(Protocol::Gtudp(GtudpMode::Rtt)),
            "gtudp-reference" => return Ok(Protocol::Gtudp(GtudpMode::Reference)),
            "gtudp-auth" => return Ok(Protocol::Gtudp(GtudpMode::Auth)),
            _ => {}
        }
        if let Some(name) = s.strip_prefix("flow:") {
            if let Some(&(n, q)) = QoS::PRESETS.iter().find(|(n, _)| *n == name) {
                return Ok(Protocol::Flow(n, q));
            }
        }
        let flows: Vec<String> = QoS::PRESETS
            .iter()
            .map(|(n, _)| format!("flow:{n}"))
            .collect();
        Err(format!(
            "unknown protocol `{s}` (choices: rgtp, gtudp, gtudp-reference, gtudp-auth, {})",
            flows.join(", ")
        ))
    }
}

/// Reads one value of the `variants.protocol` axis.
pub fn protocol_value(v: &Value) -> Result<String, String> {
    let Value::String(s) = v else {
        return Err(format!("expected a protocol name, found {v}"));
    };
    Protocol::parse(s)?;
    Ok(s.clone())
}

/// The label of a variant: RGTP's settings, or the protocol and payload size.
pub fn label(protocol: &str, fec: &str, cc: &str, chunk: u32, proofs: bool) -> String {
    if protocol == "rgtp" {
        format!("fec={fec} cc={cc} chunk={chunk} proofs={proofs}")
    } else {
        format!("{protocol} payload={chunk}")
    }
}
