//! What an application asks of a flow ([`QoS`]) and what the stack builds
//! for it ([`Layers`]).
//!
//! A [`QoS`] carries the fields of an Ouroboros QoS specification, with the
//! same units and the same defaults. The application states what it needs;
//! [`Layers::for_qos`] picks the layers that give it:
//!
//! | QoS field            | layer                                      |
//! |----------------------|--------------------------------------------|
//! | `loss == 0`          | `arq`: per-fragment acknowledgement and retransmission |
//! | `loss > 0` and `min(max_gap, delay) <= 250` ms | `fec`: Reed-Solomon parity over groups of SDUs, losses rebuilt without a round trip |
//! | `in_order == 1`      | `reorder`: SDUs handed out in sequence order |
//! | `cypher_s > 0`       | `aead`: every datagram after the allocation sealed with ChaCha20-Poly1305 |
//! | `0 < bandwidth < MAX`| `pacer`: sending capped at `bandwidth` bit/s |
//! | `timeout > 0`        | `timeout`: the flow goes down after that long without a word from the peer |
//!
//! **fec** is chosen where **arq** cannot serve: the application tolerates
//! loss, so it takes no retransmission, but it wants gaps no longer than
//! [`FEC_MAX_GAP_MS`], which is less than a retransmission round (a
//! timeout of at least one round trip, then the trip again) takes on a
//! wide-area path. A group holds up to [`Fec::data`] SDUs (8) and gets
//! parity shards in the ratio [`Fec::parity`]`/`[`Fec::data`] (2 for 8, at
//! least 1); a group closes when full or [`Fec::flush`] after its first
//! SDU was written (half the tighter of `max_gap` and `delay`), so a lost
//! SDU is rebuilt within that bound plus one trip. `availability` and
//! `ber` select no layer; `max_gap` also bounds how long a reordering flow
//! without retransmission waits for a missing SDU before skipping it.

use core::fmt;
use std::time::Duration;

/// One million, the unit of several defaults.
const MILLION: u32 = 1_000_000;

/// The peer timeout every preset carries: two minutes, in milliseconds.
pub const DEFAULT_TIMEOUT_MS: u32 = 120_000;

/// The tightest of `max_gap` and `delay`, in milliseconds, at or below
/// which a loss-tolerant flow gets **fec**.
pub const FEC_MAX_GAP_MS: u32 = 250;

/// A QoS specification: what the application needs from a flow.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct QoS {
    /// Largest acceptable one-way delay, in milliseconds.
    pub delay: u32,
    /// Bandwidth the flow needs, in bits per second; 0: none stated,
    /// `u64::MAX`: as much as there is.
    pub bandwidth: u64,
    /// Availability as a class of nines (3: 99.9 %).
    pub availability: u8,
    /// Packet loss the application tolerates; 0: none, so lost packets are
    /// retransmitted.
    pub loss: u32,
    /// Bit error rate tolerated, in errors per billion bits.
    pub ber: u32,
    /// 1: SDUs are handed out in the order they were written; 0: as they come.
    pub in_order: u8,
    /// Longest interruption the application tolerates, in milliseconds.
    pub max_gap: u32,
    /// Requested encryption strength in bits; 0: no encryption.
    pub cypher_s: u16,
    /// Peer timeout in milliseconds: a flow whose peer stays silent this
    /// long goes down; 0: never.
    pub timeout: u32,
}

impl Default for QoS {
    /// The defaults of an unqualified Ouroboros QoS specification: loss and
    /// errors tolerated, no ordering, a two-minute peer timeout.
    fn default() -> Self {
        QoS {
            delay: MILLION,
            bandwidth: 0,
            availability: 0,
            loss: 1,
            ber: MILLION,
            in_order: 0,
            max_gap: MILLION,
            cypher_s: 0,
            timeout: DEFAULT_TIMEOUT_MS,
        }
    }
}

/// Builds a preset from the values Ouroboros gives it.
#[allow(clippy::too_many_arguments)]
const fn preset(
    delay: u32,
    bandwidth: u64,
    availability: u8,
    loss: u32,
    ber: u32,
    in_order: u8,
    max_gap: u32,
    cypher_s: u16,
) -> QoS {
    QoS {
        delay,
        bandwidth,
        availability,
        loss,
        ber,
        in_order,
        max_gap,
        cypher_s,
        timeout: DEFAULT_TIMEOUT_MS,
    }
}

impl QoS {
    /// Raw datagrams: loss, errors and reordering all tolerated.
    pub const RAW: QoS = preset(u32::MAX, 0, 0, 1, 1, 0, u32::MAX, 0);
    /// Raw datagrams without bit errors.
    pub const RAW_NO_ERRORS: QoS = preset(u32::MAX, 0, 0, 1, 0, 0, u32::MAX, 0);
    /// Raw datagrams without bit errors, encrypted.
    pub const RAW_CRYPT: QoS = preset(u32::MAX, 0, 0, 1, 0, 0, u32::MAX, 256);
    /// Best effort: loss tolerated, delivered in order.
    pub const BEST_EFFORT: QoS = preset(u32::MAX, 0, 0, 1, 0, 1, u32::MAX, 0);
    /// Best effort, encrypted.
    pub const BEST_EFFORT_CRYPT: QoS = preset(u32::MAX, 0, 0, 1, 0, 1, u32::MAX, 256);
    /// Video: 100 ms delay and gap, all the bandwidth there is, in order.
    pub const VIDEO: QoS = preset(100, u64::MAX, 3, 1, 0, 1, 100, 0);
    /// Video, encrypted.
    pub const VIDEO_CRYPT: QoS = preset(100, u64::MAX, 3, 1, 0, 1, 100, 256);
    /// Voice: 50 ms delay and gap, 100 kbit/s, in order.
    pub const VOICE: QoS = preset(50, 100_000, 5, 1, 0, 1, 50, 0);
    /// Voice, encrypted.
    pub const VOICE_CRYPT: QoS = preset(50, 100_000, 5, 1, 0, 1, 50, 256);
    /// Data: nothing lost, in order.
    pub const DATA: QoS = preset(1000, 0, 0, 0, 0, 1, 2000, 0);
    /// Data, encrypted.
    pub const DATA_CRYPT: QoS = preset(1000, 0, 0, 0, 0, 1, 2000, 256);

    /// Every preset with its name.
    pub const PRESETS: [(&'static str, QoS); 11] = [
        ("raw", QoS::RAW),
        ("raw_no_errors", QoS::RAW_NO_ERRORS),
        ("raw_crypt", QoS::RAW_CRYPT),
        ("best_effort", QoS::BEST_EFFORT),
        ("best_effort_crypt", QoS::BEST_EFFORT_CRYPT),
        ("video", QoS::VIDEO),
        ("video_crypt", QoS::VIDEO_CRYPT),
        ("voice", QoS::VOICE),
        ("voice_crypt", QoS::VOICE_CRYPT),
        ("data", QoS::DATA),
        ("data_crypt", QoS::DATA_CRYPT),
    ];

    /// The preset called `name` (as in [`QoS::PRESETS`]).
    pub fn preset(name: &str) -> Option<QoS> {
        QoS::PRESETS
            .iter()
            .find(|(n, _)| *n == name)
            .map(|&(_, q)| q)
    }

    /// The same QoS with another peer timeout (milliseconds; 0: none).
    pub const fn with_timeout(mut self, timeout_ms: u32) -> QoS {
        self.timeout = timeout_ms;
        self
    }

    /// The same QoS with another loss tolerance (0: retransmit).
    pub const fn with_loss(mut self, loss: u32) -> QoS {
        self.loss = loss;
        self
    }

    /// The same QoS with ordering on or off.
    pub const fn with_in_order(mut self, in_order: bool) -> QoS {
        self.in_order = in_order as u8;
        self
    }

    /// The same QoS with another bandwidth (bit/s).
    pub const fn with_bandwidth(mut self, bandwidth: u64) -> QoS {
        self.bandwidth = bandwidth;
        self
    }
}

/// The shape of the **fec** layer: how SDUs are grouped and protected.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct Fec {
    /// Most SDUs in a group (data shards).
    pub data: u8,
    /// Parity shards of a full group; a group closed early gets
    /// `ceil(n * parity / data)` for its `n` SDUs.
    pub parity: u8,
    /// How long after its first SDU a group that is not full closes.
    pub flush: Duration,
}

impl Fec {
    /// The shape for a flow whose tighter bound of `max_gap` and `delay`
    /// is `bound_ms`: groups of 8 SDUs with 2 parity shards, closed after
    /// half the bound (at least one millisecond).
    pub fn for_bound(bound_ms: u32) -> Fec {
        Fec {
            data: 8,
            parity: 2,
            flush: Duration::from_millis(u64::from(bound_ms / 2).max(1)),
        }
    }

    /// Parity shards for a group of `n` SDUs (`1 ..= data`).
    pub fn parity_for(&self, n: usize) -> usize {
        (n * usize::from(self.parity))
            .div_ceil(usize::from(self.data).max(1))
            .max(1)
    }
}

/// The layers a flow runs, chosen from its QoS.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
pub struct Layers {
    /// Acknowledge every fragment and retransmit what is not acknowledged.
    pub arq: bool,
    /// Hand SDUs out in sequence order.
    pub reorder: bool,
    /// Forward error correction: parity over groups of SDUs.
    pub fec: Option<Fec>,
    /// Authenticated encryption.
    pub aead: bool,
    /// Cap on the sending rate, in bits per second.
    pub pacer: Option<u64>,
    /// How long the peer may stay silent before the flow goes down.
    pub timeout: Option<Duration>,
}

impl Layers {
    /// The layers that give `qos` (see the module table).
    pub fn for_qos(qos: &QoS) -> Layers {
        let bound = qos.max_gap.min(qos.delay);
        Layers {
            arq: qos.loss == 0,
            reorder: qos.in_order != 0,
            fec: (qos.loss > 0 && bound <= FEC_MAX_GAP_MS).then(|| Fec::for_bound(bound)),
            aead: qos.cypher_s > 0,
            pacer: (qos.bandwidth > 0 && qos.bandwidth < u64::MAX).then_some(qos.bandwidth),
            timeout: (qos.timeout > 0).then(|| Duration::from_millis(u64::from(qos.timeout))),
        }
    }

    /// The names of the selected layers, in stack order from the application
    /// down: `reorder`, `arq`, `fec`, `aead`, `pacer`, `timeout`.
    pub fn names(&self) -> Vec<&'static str> {
        let mut out = Vec::new();
        for (on, name) in [
            (self.reorder, "reorder"),
            (self.arq, "arq"),
            (self.fec.is_some(), "fec"),
            (self.aead, "aead"),
            (self.pacer.is_some(), "pacer"),
            (self.timeout.is_some(), "timeout"),
        ] {
            if on {
                out.push(name);
            }
        }
        out
    }
}

/// The selected layers with their parameters, e.g.
/// `reorder + fec 8+2 + pacer 100000 bit/s + timeout 120 s`; `none` when empty.
impl fmt::Display for Layers {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let names = self.names();
        if names.is_empty() {
            return f.write_str("none");
        }
        for (i, name) in names.iter().enumerate() {
            if i > 0 {
                f.write_str(" + ")?;
            }
            f.write_str(name)?;
            match *name {
                "pacer" => write!(f, " {} bit/s", self.pacer.unwrap_or(0))?,
                "fec" => {
                    if let Some(fec) = self.fec {
                        write!(f, " {}+{}", fec.data, fec.parity)?;
                    }
                }
                "timeout" => write!(f, " {:?}", self.timeout.unwrap_or_default())?,
                _ => {}
            }
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn test_default_matches_an_unqualified_spec() {
        let q = QoS::default();
        assert_eq!(q.delay, 1_000_000);
        assert_eq!(q.loss, 1);
        assert_eq!(q.ber, 1_000_000);
        assert_eq!(q.in_order, 0);
        assert_eq!(q.max_gap, 1_000_000);
        assert_eq!(q.cypher_s, 0);
        assert_eq!(q.timeout, 120_000);
        assert_eq!(Layers::for_qos(&q).names(), ["timeout"]);
    }

    #[test]
    fn test_loss_zero_selects_arq() {
        let q = QoS::default().with_loss(0);
        assert!(Layers::for_qos(&q).arq);
        assert!(!Layers::for_qos(&q.with_loss(1)).arq);
        assert!(!Layers::for_qos(&q.with_loss(1000)).arq);
    }

    #[test]
    fn test_in_order_selects_reorder() {
        assert!(Layers::for_qos(&QoS::default().with_in_order(true)).reorder);
        assert!(!Layers::for_qos(&QoS::default().with_in_order(false)).reorder);
        // Any non-zero value asks for order.
        let q = QoS {
            in_order: 7,
            ..QoS::default()
        };
        assert!(Layers::for_qos(&q).reorder);
    }

    #[test]
    fn test_cypher_selects_aead() {
        assert!(Layers::for_qos(&QoS::DATA_CRYPT).aead);
        assert!(!Layers::for_qos(&QoS::DATA).aead);
        let q = QoS {
            cypher_s: 128,
            ..QoS::RAW
        };
        assert!(Layers::for_qos(&q).aead);
    }

    #[test]
    fn test_bandwidth_selects_pacer() {
        assert_eq!(Layers::for_qos(&QoS::VOICE).pacer, Some(100_000));
        // None stated, or unbounded: nothing to pace to.
        assert_eq!(Layers::for_qos(&QoS::DATA).pacer, None);
        assert_eq!(Layers::for_qos(&QoS::VIDEO).pacer, None);
        assert_eq!(
            Layers::for_qos(&QoS::RAW.with_bandwidth(8_000_000)).pacer,
            Some(8_000_000)
        );
    }

    #[test]
    fn test_timeout_selects_timeout() {
        assert_eq!(
            Layers::for_qos(&QoS::RAW.with_timeout(1500)).timeout,
            Some(Duration::from_millis(1500))
        );
        assert_eq!(Layers::for_qos(&QoS::RAW.with_timeout(0)).timeout, None);
    }

    #[test]
    fn test_tight_gap_with_loss_selects_fec() {
        // Loss tolerated and a gap no retransmission round can keep.
        let fec = Layers::for_qos(&QoS::VIDEO).fec.unwrap();
        assert_eq!((fec.data, fec.parity), (8, 2));
        assert_eq!(fec.flush, Duration::from_millis(50));
        assert_eq!(
            Layers::for_qos(&QoS::VOICE).fec.unwrap().flush,
            Duration::from_millis(25)
        );
        // The delay bound counts as well as the gap.
        let q = QoS {
            delay: 80,
            ..QoS::RAW
        };
        assert_eq!(
            Layers::for_qos(&q).fec.unwrap().flush,
            Duration::from_millis(40)
        );
        // At the threshold, yes; above it, no.
        let at = |gap| QoS {
            max_gap: gap,
            ..QoS::RAW
        };
        assert!(Layers::for_qos(&at(FEC_MAX_GAP_MS)).fec.is_some());
        assert!(Layers::for_qos(&at(FEC_MAX_GAP_MS + 1)).fec.is_none());
        assert!(Layers::for_qos(&at(0)).fec.is_some());
        // No loss tolerated: retransmission, never parity.
        let reliable = Layers::for_qos(&QoS::VOICE.with_loss(0));
        assert!(reliable.arq && reliable.fec.is_none());
        // Loose bounds: neither.
        for q in [QoS::RAW, QoS::BEST_EFFORT, QoS::default(), QoS::DATA] {
            assert!(Layers::for_qos(&q).fec.is_none(), "{q:?}");
        }
    }

    #[test]
    fn test_parity_scales_with_the_group() {
        let fec = Fec::for_bound(100);
        assert_eq!(fec.parity_for(8), 2);
        assert_eq!(fec.parity_for(5), 2);
        assert_eq!(fec.parity_for(4), 1);
        assert_eq!(fec.parity_for(1), 1);
        assert_eq!(Fec::for_bound(1).flush, Duration::from_millis(1));
        assert_eq!(Fec::for_bound(0).flush, Duration::from_millis(1));
    }

    #[test]
    fn test_presets_layers() {
        let names = |n: &str| Layers::for_qos(&QoS::preset(n).unwrap()).names();
        assert_eq!(names("raw"), ["timeout"]);
        assert_eq!(names("raw_crypt"), ["aead", "timeout"]);
        assert_eq!(names("best_effort"), ["reorder", "timeout"]);
        assert_eq!(names("video"), ["reorder", "fec", "timeout"]);
        assert_eq!(names("video_crypt"), ["reorder", "fec", "aead", "timeout"]);
        assert_eq!(names("voice"), ["reorder", "fec", "pacer", "timeout"]);
        assert_eq!(
            names("voice_crypt"),
            ["reorder", "fec", "aead", "pacer", "timeout"]
        );
        assert_eq!(names("data"), ["reorder", "arq", "timeout"]);
        assert_eq!(names("data_crypt"), ["reorder", "arq", "aead", "timeout"]);
        assert_eq!(QoS::preset("nonesuch"), None);
    }

    #[test]
    fn test_preset_values() {
        assert_eq!(QoS::VOICE.delay, 50);
        assert_eq!(QoS::VOICE.availability, 5);
        assert_eq!(QoS::VOICE.max_gap, 50);
        assert_eq!(QoS::VIDEO.bandwidth, u64::MAX);
        assert_eq!(QoS::VIDEO.availability, 3);
        assert_eq!(QoS::DATA.max_gap, 2000);
        assert_eq!(QoS::DATA.delay, 1000);
        assert_eq!(QoS::RAW.ber, 1);
        assert_eq!(QoS::RAW_NO_ERRORS.ber, 0);
        for (name, q) in QoS::PRESETS {
            assert_eq!(q.timeout, DEFAULT_TIMEOUT_MS, "{name}");
            assert_eq!(q.cypher_s != 0, name.ends_with("_crypt"), "{name}");
        }
    }

    #[test]
    fn test_display() {
        assert_eq!(
            Layers::for_qos(&QoS::VOICE).to_string(),
            "reorder + fec 8+2 + pacer 100000 bit/s + timeout 120s"
        );
        assert_eq!(Layers::default().to_string(), "none");
    }
}
