//! Reports: the table on standard output, JUnit XML, JSON and HTML ([`crate::html`]).

use std::fmt::Write as _;
use std::path::Path;

use crate::verdict::{Level, Outcome, Verdict};

/// True when any MUST case failed (the run's exit status is then non-zero).
pub fn must_failed(outcomes: &[Outcome]) -> bool {
    outcomes
        .iter()
        .any(|o| o.verdict == Verdict::Fail && o.info.level == Level::Must)
}

/// Counts of PASS, FAIL, SKIP.
pub fn counts(outcomes: &[Outcome]) -> (usize, usize, usize) {
    let n = |v| outcomes.iter().filter(|o| o.verdict == v).count();
    (n(Verdict::Pass), n(Verdict::Fail), n(Verdict::Skip))
}

/// One requirement level's results: MUST and SHOULD are counted apart.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct LevelCounts {
    /// Cases that passed.
    pub passed: usize,
    /// Cases that failed.
    pub failed: usize,
    /// Cases that were not applicable or not run (SKIP).
    pub na: usize,
}

impl LevelCounts {
    /// Cases that ran to a verdict (passed + failed).
    pub fn judged(&self) -> usize {
        self.passed + self.failed
    }
}

/// Counts of one level.
pub fn level_counts(outcomes: &[Outcome], level: Level) -> LevelCounts {
    let mut c = LevelCounts::default();
    for o in outcomes.iter().filter(|o| o.info.level == level) {
        match o.verdict {
            Verdict::Pass => c.passed += 1,
            Verdict::Fail => c.failed += 1,
            Verdict::Skip => c.na += 1,
        }
    }
    c
}

/// The summary line: `43 cases: MUST 30/30 passed, SHOULD 10/11 passed, 2 n/a`
/// (`passed/judged`, the cases that were not applicable counted apart).
pub fn summary(outcomes: &[Outcome]) -> String {
    let must = level_counts(outcomes, Level::Must);
    let should = level_counts(outcomes, Level::Should);
    format!(
        "{} cases: MUST {}/{} passed, SHOULD {}/{} passed, {} n/a",
        outcomes.len(),
        must.passed,
        must.judged(),
        should.passed,
        should.judged(),
        must.na + should.na
    )
}

fn one_line(s: &str, max: usize) -> String {
    let s: String = s
        .chars()
        .map(|c| if c.is_control() { ' ' } else { c })
        .collect();
    if s.chars().count() > max {
        let mut t: String = s.chars().take(max.saturating_sub(1)).collect();
        t.push('…');
        t
    } else {
        s
    }
}

/// The human-readable table.
pub fn table(outcomes: &[Outcome]) -> String {
    let mut s = String::new();
    let _ = writeln!(
        s,
        "{:<8} {:<7} {:<6} {:<4} {:<44} detail",
        "case", "section", "level", "", "title"
    );
    let _ = writeln!(s, "{}", "-".repeat(110));
    for o in outcomes {
        let _ = writeln!(
            s,
            "{:<8} {:<7} {:<6} {:<4} {:<44} {}",
            o.info.id,
            one_line(o.info.section, 7),
            o.info.level.name(),
            o.verdict.name(),
            one_line(o.info.title, 44),
            one_line(&o.detail, 100)
        );
    }
    let _ = writeln!(s, "{}", "-".repeat(110));
    let _ = writeln!(s, "{}", summary(outcomes));
    s
}

/// Escapes text for XML and HTML element content and double- or single-quoted
/// attributes (the JUnit report and the HTML pages); control characters other
/// than newline and tab, which neither may carry, become U+FFFD.
pub fn escape(s: &str) -> String {
    let mut o = String::with_capacity(s.len());
    for c in s.chars() {
        match c {
            '&' => o.push_str("&amp;"),
            '<' => o.push_str("&lt;"),
            '>' => o.push_str("&gt;"),
            '"' => o.push_str("&quot;"),
            '\'' => o.push_str("&#39;"),
            c if c.is_control() && c != '\n' && c != '\t' => o.push('\u{fffd}'),
            c => o.push(c),
        }
    }
    o
}

/// JUnit XML: one testsuite per run, one testcase per case.
pub fn junit(suite: &str, outcomes: &[Outcome]) -> String {
    let (_, f, k) = counts(outcomes);
    let total: f64 = outcomes.iter().map(|o| o.seconds).sum();
    let mut s = String::from("<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n");
    let _ = writeln!(
        s,
        "<testsuites><testsuite name=\"{}\" tests=\"{}\" failures=\"{f}\" errors=\"0\" skipped=\"{k}\" time=\"{total:.3}\">",
        escape(suite),
        outcomes.len()
    );
    for o in outcomes {
        let _ = write!(
            s,
            "  <testcase classname=\"rgtp-conformance.{}\" name=\"{} {} ({} {})\" time=\"{:.3}\"",
            o.info.target.name(),
            o.info.id,
            escape(o.info.title),
            escape(o.info.section),
            o.info.level.name(),
            o.seconds
        );
        match o.verdict {
            Verdict::Pass => {
                let _ = writeln!(
                    s,
                    "><system-out>{}</system-out></testcase>",
                    escape(&o.detail)
                );
            }
            Verdict::Fail => {
                let _ = writeln!(
                    s,
                    "><failure message=\"{}\" type=\"{}\"/></testcase>",
                    escape(&o.detail),
                    o.info.level.name()
                );
            }
            Verdict::Skip => {
                let _ = writeln!(
                    s,
                    "><skipped message=\"{}\"/></testcase>",
                    escape(&o.detail)
                );
            }
        }
    }
    s.push_str("</testsuite></testsuites>\n");
    s
}

/// Escapes a string as a JSON string literal (quotes included).
pub fn json_str(s: &str) -> String {
    let mut o = String::with_capacity(s.len() + 2);
    o.push('"');
    for c in s.chars() {
        match c {
            '"' => o.push_str("\\\""),
            '\\' => o.push_str("\\\\"),
            '\n' => o.push_str("\\n"),
            '\r' => o.push_str("\\r"),
            '\t' => o.push_str("\\t"),
            c if (c as u32) < 0x20 => {
                let _ = write!(o, "\\u{:04x}", c as u32);
            }
            c => o.push(c),
        }
    }
    o.push('"');
    o
}

fn json_level(c: LevelCounts) -> String {
    format!(
        "{{\"passed\":{},\"failed\":{},\"na\":{}}}",
        c.passed, c.failed, c.na
    )
}

/// JSON: `{"target": …, "summary": …, "passed": n, …, "must": {…}, "should": {…},
/// "cases": [{…}, …]}`.
pub fn json(target: &str, outcomes: &[Outcome]) -> String {
    let (p, f, k) = counts(outcomes);
    let mut s = String::new();
    let _ = write!(
        s,
        "{{\"target\":{},\"summary\":{},\"passed\":{p},\"failed\":{f},\"skipped\":{k},\"must_failed\":{},\"must\":{},\"should\":{},\"cases\":[",
        json_str(target),
        json_str(&summary(outcomes)),
        must_failed(outcomes),
        json_level(level_counts(outcomes, Level::Must)),
        json_level(level_counts(outcomes, Level::Should))
    );
    for (i, o) in outcomes.iter().enumerate() {
        if i > 0 {
            s.push(',');
        }
        let _ = write!(
            s,
            "\n {{\"id\":{},\"title\":{},\"section\":{},\"level\":{},\"target\":{},\"verdict\":{},\"detail\":{},\"seconds\":{:.3}}}",
            json_str(o.info.id),
            json_str(o.info.title),
            json_str(o.info.section),
            json_str(o.info.level.name()),
            json_str(o.info.target.name()),
            json_str(o.verdict.name()),
            json_str(&o.detail),
            o.seconds
        );
    }
    s.push_str("\n]}\n");
    s
}

/// Writes the requested report files.
pub fn write_files(
    target: &str,
    outcomes: &[Outcome],
    junit_path: Option<&Path>,
    json_path: Option<&Path>,
) -> std::io::Result<()> {
    if let Some(p) = junit_path {
        std::fs::write(p, junit(target, outcomes))?;
    }
    if let Some(p) = json_path {
        std::fs::write(p, json(target, outcomes))?;
    }
    Ok(())
}
