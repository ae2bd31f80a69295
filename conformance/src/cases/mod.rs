//! The case catalogue: every case names the requirement of `spec/rgtp-v1.md`
//! it checks (section and MUST/SHOULD level) and the target it runs against.

use std::panic::{catch_unwind, AssertUnwindSafe};
use std::time::Instant;

pub mod abi;
pub mod capture;
pub mod exposer;
pub mod puller;
pub mod python;

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
        }
    }
}

/// Why a case did not pass.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Stop {
    /// The implementation violates the requirement.
    Fail(String),
    /// The case cannot run against this implementation or exposure.
    Skip(String),
}

/// `Ok(detail)` is a pass.
pub type CaseResult = Result<String, Stop>;

/// A failure with `msg`.
pub fn fail<T>(msg: impl Into<String>) -> Result<T, Stop> {
    Err(Stop::Fail(msg.into()))
}

/// A skip with `msg`.
pub fn skip<T>(msg: impl Into<String>) -> Result<T, Stop> {
    Err(Stop::Skip(msg.into()))
}

/// Turns a harness-side error (socket, file, …) into a failure.
pub trait OrFail<T> {
    /// Fails with `what: error`.
    fn or_fail(self, what: &str) -> Result<T, Stop>;
}

impl<T, E: std::fmt::Display> OrFail<T> for Result<T, E> {
    fn or_fail(self, what: &str) -> Result<T, Stop> {
        self.map_err(|e| Stop::Fail(format!("{what}: {e}")))
    }
}

/// Fails the case with a formatted message unless the condition holds.
#[macro_export]
macro_rules! ensure {
    ($cond:expr, $($msg:tt)+) => {
        if !$cond {
            return Err($crate::cases::Stop::Fail(format!($($msg)+)));
        }
    };
}

/// One numbered case.
pub struct Case<C: ?Sized> {
    /// Identifier, e.g. `EXP-012`.
    pub id: &'static str,
    /// What is checked, in one line.
    pub title: &'static str,
    /// Spec section(s), e.g. `§3.2`.
    pub section: &'static str,
    /// Requirement level.
    pub level: Level,
    /// The check.
    pub run: fn(&C) -> CaseResult,
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

/// `--only` / `--skip`: ids or id prefixes (`EXP-01`, `PUL`); `--case`: exact ids;
/// `--section`: spec sections (`5`, `§5.1`). All given filters must agree.
#[derive(Debug, Clone, Default)]
pub struct Selection {
    /// Run only cases matching one of these (all when empty).
    pub only: Vec<String>,
    /// Never run cases matching one of these.
    pub skip: Vec<String>,
    /// Run only the cases with exactly one of these ids (all when empty).
    pub cases: Vec<String>,
    /// Run only the cases under one of these sections (all when empty).
    pub sections: Vec<String>,
}

fn matches(id: &str, pattern: &str) -> bool {
    let p = pattern.trim();
    !p.is_empty() && id.to_ascii_uppercase().starts_with(&p.to_ascii_uppercase())
}

impl Selection {
    /// True if case `id` is selected.
    pub fn selects(&self, id: &str) -> bool {
        (self.only.is_empty() || self.only.iter().any(|p| matches(id, p)))
            && !self.skip.iter().any(|p| matches(id, p))
            && crate::select::by_case_and_section(self, id)
    }
}

/// Runs the selected cases of one target, in catalogue order.
pub fn run_cases<C: ?Sized>(
    target: Target,
    cases: &[Case<C>],
    ctx: &C,
    sel: &Selection,
) -> Vec<Outcome> {
    let mut out = Vec::new();
    for c in cases.iter().filter(|c| sel.selects(c.id)) {
        let started = Instant::now();
        let _evidence = crate::evidence::CaseScope::begin(c.id);
        let r = catch_unwind(AssertUnwindSafe(|| (c.run)(ctx)));
        let (verdict, detail) = match r {
            Ok(Ok(d)) => (Verdict::Pass, d),
            Ok(Err(Stop::Fail(d))) => (Verdict::Fail, d),
            Ok(Err(Stop::Skip(d))) => (Verdict::Skip, d),
            Err(p) => {
                let msg = p
                    .downcast_ref::<String>()
                    .cloned()
                    .or_else(|| p.downcast_ref::<&str>().map(|s| s.to_string()))
                    .unwrap_or_else(|| "panic".into());
                (Verdict::Fail, format!("harness panic: {msg}"))
            }
        };
        out.push(Outcome {
            info: info(target, c),
            verdict,
            detail,
            seconds: started.elapsed().as_secs_f64(),
        });
    }
    out
}

/// Every selected case of one target as FAIL (or SKIP) with one detail: used when the
/// target cannot be set up at all.
pub fn all_with<C: ?Sized>(
    target: Target,
    cases: &[Case<C>],
    sel: &Selection,
    verdict: Verdict,
    detail: &str,
) -> Vec<Outcome> {
    cases
        .iter()
        .filter(|c| sel.selects(c.id))
        .map(|c| Outcome {
            info: info(target, c),
            verdict,
            detail: detail.to_string(),
            seconds: 0.0,
        })
        .collect()
}

fn info<C: ?Sized>(target: Target, c: &Case<C>) -> Info {
    Info {
        id: c.id,
        title: c.title,
        section: c.section,
        level: c.level,
        target,
    }
}

/// The whole catalogue, every target.
pub fn catalogue() -> Vec<Info> {
    let mut v = Vec::new();
    v.extend(exposer::CASES.iter().map(|c| info(Target::Exposer, c)));
    v.extend(puller::CASES.iter().map(|c| info(Target::Puller, c)));
    v.extend(abi::CASES.iter().map(|c| info(Target::Abi, c)));
    v.extend(python::CASES.iter().map(|c| info(Target::Python, c)));
    v.extend(capture::CASES.iter().map(|c| info(Target::Capture, c)));
    v
}
