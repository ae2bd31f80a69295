//! The case catalogue: every case names the requirement of `spec/rgtp-v1.md`
//! it checks (section and MUST/SHOULD level) and the target it runs against.

use std::panic::{catch_unwind, AssertUnwindSafe};
use std::time::Instant;

pub mod abi;
pub mod capture;
pub mod exposer;
pub mod gtudp;
pub mod puller;
pub mod python;
pub mod tej;

pub use crate::select::Selection;
pub use crate::verdict::{Info, Level, Outcome, Target, Verdict};

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

/// Runs the selected cases of one target, in catalogue order.
pub fn run_cases<C: ?Sized>(
    target: Target,
    cases: &[Case<C>],
    ctx: &C,
    sel: &Selection,
) -> Vec<Outcome> {
    let mut out = Vec::new();
    for c in cases.iter().filter(|c| sel.selects(c.id, c.section)) {
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
        .filter(|c| sel.selects(c.id, c.section))
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
    v.extend(gtudp::CASES.iter().map(|c| info(Target::Gtudp, c)));
    v.extend(tej::CASES.iter().map(|c| info(Target::Tej, c)));
    v
}

/// `--case` values that name no case of the catalogue.
pub fn unknown_cases(sel: &Selection) -> Vec<String> {
    let cat = catalogue();
    sel.cases
        .iter()
        .filter(|c| !cat.iter().any(|i| i.id.eq_ignore_ascii_case(c.trim())))
        .cloned()
        .collect()
}
