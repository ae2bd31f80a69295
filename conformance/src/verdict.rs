//! What a case is checked against and what it gave: level, target, verdict, outcome.

/// Requirement level of the spec text a case checks.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Level {
    /// MUST / MUST NOT / REQUIRED / SHALL.
    Must,
    /// SHOULD / RECOMMENDED.
    Should,
}

impl Level {
    /// "MUST" or "SHOULD".
    pub fn name(self) -> &'static str {
        match self {
            Level::Must => "MUST",
            Level::Should => "SHOULD",
        }
    }
}

/// What a case runs against.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Target {
    /// A live exposer, over UDP or raw Ethernet.
    Exposer,
    /// A puller program, against the harness's adversarial exposer.
    Puller,
    /// A librgtp.so, through the C ABI.
    Abi,
    /// The published Python package on a librgtp.so.
    Python,
    /// A packet capture of a transfer, judged offline.
    Capture,
    /// A gtUDP receiver, over UDP.
    Gtudp,
    /// A TEJ server, over TCP.
    Tej,
}

impl Target {
    /// Lower-case name, as on the command line.
    pub fn name(self) -> &'static str {
        match self {
            Target::Exposer => "exposer",
            Target::Puller => "puller",
            Target::Abi => "abi",
            Target::Python => "python",
            Target::Capture => "pcap",
            Target::Gtudp => "gtudp",
            Target::Tej => "tej",
        }
    }
}

/// PASS, FAIL or SKIP.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Verdict {
    /// The requirement holds.
    Pass,
    /// The requirement is violated.
    Fail,
    /// Not applicable or not run.
    Skip,
}

impl Verdict {
    /// Upper-case name.
    pub fn name(self) -> &'static str {
        match self {
            Verdict::Pass => "PASS",
            Verdict::Fail => "FAIL",
            Verdict::Skip => "SKIP",
        }
    }
}

/// The result of one case.
#[derive(Debug, Clone)]
pub struct Outcome {
    /// Catalogue entry.
    pub info: Info,
    /// Verdict.
    pub verdict: Verdict,
    /// One line of detail.
    pub detail: String,
    /// Wall time, seconds.
    pub seconds: f64,
}

/// Catalogue entry without the function (for listings).
#[derive(Debug, Clone, Copy)]
pub struct Info {
    /// Identifier.
    pub id: &'static str,
    /// Title.
    pub title: &'static str,
    /// Section.
    pub section: &'static str,
    /// Level.
    pub level: Level,
    /// Target.
    pub target: Target,
}
