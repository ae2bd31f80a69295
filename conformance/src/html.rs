//! The static HTML report: one self-contained page (inline CSS, no scripts), one matrix
//! row per case, every text from the catalogue or the implementation escaped.

use std::fmt::Write as _;

use crate::report::{level_counts, summary, LevelCounts};
use crate::verdict::{Level, Outcome, Verdict};

pub use crate::report::escape;

/// Percent-encodes a relative path for an `href`: `/` separates segments, every byte
/// outside the unreserved set is encoded (so no scheme such as `javascript:` survives).
pub fn href(path: &str) -> String {
    let mut o = String::with_capacity(path.len());
    for b in path.bytes() {
        match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'.' | b'_' | b'~' | b'/' => {
                o.push(b as char)
            }
            b => {
                let _ = write!(o, "%{b:02X}");
            }
        }
    }
    o
}

/// A link shown in a case's evidence cell: label and relative path.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Link {
    /// What the link is (`log`, `pcap`, …).
    pub label: String,
    /// Path relative to the page.
    pub path: String,
}

/// The name shown for a verdict: pass, fail or n/a.
pub fn verdict_text(v: Verdict) -> &'static str {
    match v {
        Verdict::Pass => "pass",
        Verdict::Fail => "fail",
        Verdict::Skip => "n/a",
    }
}

fn verdict_class(v: Verdict) -> &'static str {
    match v {
        Verdict::Pass => "pass",
        Verdict::Fail => "fail",
        Verdict::Skip => "na",
    }
}

fn link_html(l: &Link) -> String {
    format!(
        "<a href=\"{}\">{}</a>",
        escape(&href(&l.path)),
        escape(&l.label)
    )
}

/// The pages' inline style sheet.
pub const STYLE: &str = "body{font:14px/1.4 system-ui,sans-serif;margin:1.5em;color:#222}\
h1{font-size:1.4em}\
table{border-collapse:collapse;margin:1em 0}\
th,td{border:1px solid #ccc;padding:.25em .5em;text-align:left;vertical-align:top}\
th{background:#f0f0f0}\
td.detail{max-width:40em;word-break:break-word;white-space:pre-wrap}\
tr.pass td.v{background:#d9f2d9}\
tr.fail td.v{background:#f8d0d0;font-weight:bold}\
tr.na td.v{background:#eee;color:#666}\
tr.fail.MUST td.lvl{font-weight:bold}\
.summary{font-size:1.1em;font-weight:bold}\
code{font-size:.95em}";

/// The page for one run against `target`. `links[i]` are the evidence links of
/// `outcomes[i]` (missing entries: none); `run` are the run's own (the setup's traffic).
pub fn render(target: &str, outcomes: &[Outcome], links: &[Vec<Link>], run: &[Link]) -> String {
    let mut s = String::new();
    let _ = write!(
        s,
        "<!DOCTYPE html>\n<html lang=\"en\">\n<head>\n<meta charset=\"utf-8\">\n\
         <title>RGTP v1 conformance: {}</title>\n<style>{STYLE}</style>\n</head>\n<body>\n\
         <h1>RGTP v1 conformance: {}</h1>\n<p class=\"summary\">{}</p>\n",
        escape(target),
        escape(target),
        escape(&summary(outcomes))
    );
    s.push_str(
        "<table class=\"levels\">\n<tr><th>Level</th><th>passed</th><th>failed</th><th>n/a</th></tr>\n",
    );
    for level in [Level::Must, Level::Should] {
        let LevelCounts { passed, failed, na } = level_counts(outcomes, level);
        let _ = writeln!(
            s,
            "<tr><td>{}</td><td>{passed}</td><td>{failed}</td><td>{na}</td></tr>",
            level.name()
        );
    }
    s.push_str("</table>\n");
    if !run.is_empty() {
        let v: Vec<String> = run.iter().map(link_html).collect();
        let _ = writeln!(
            s,
            "<p>Traffic outside the cases (setup): {}</p>",
            v.join(" ")
        );
    }
    s.push_str(
        "<table class=\"cases\">\n<thead><tr><th>Case</th><th>Section</th><th>Level</th>\
         <th>Result</th><th>Requirement</th><th>Detail</th><th>Evidence</th></tr></thead>\n<tbody>\n",
    );
    for (i, o) in outcomes.iter().enumerate() {
        let ev: Vec<String> = links
            .get(i)
            .map(|v| v.iter().map(link_html).collect())
            .unwrap_or_default();
        let _ = writeln!(
            s,
            "<tr class=\"{} {}\" id=\"{}\"><td><code>{}</code></td><td>{}</td><td class=\"lvl\">{}</td>\
             <td class=\"v\">{}</td><td>{}</td><td class=\"detail\">{}</td><td>{}</td></tr>",
            verdict_class(o.verdict),
            o.info.level.name(),
            escape(o.info.id),
            escape(o.info.id),
            escape(o.info.section),
            o.info.level.name(),
            verdict_text(o.verdict),
            escape(o.info.title),
            escape(&o.detail),
            ev.join(" ")
        );
    }
    s.push_str("</tbody>\n</table>\n");
    s.push_str(
        "<p>Sections refer to <code>spec/rgtp-v1.md</code>. A MUST failure makes the run fail; \
         a SHOULD failure is reported but does not. n/a: the case does not apply to this \
         implementation or exposure, or could not run (the detail says why).</p>\n</body>\n</html>\n",
    );
    s
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::verdict::{Info, Target};

    fn outcome(id: &'static str, level: Level, verdict: Verdict, detail: &str) -> Outcome {
        Outcome {
            info: Info {
                id,
                title: "title <with> \"quotes\" & 'apostrophes'",
                section: "§5.1",
                level,
                target: Target::Exposer,
            },
            verdict,
            detail: detail.into(),
            seconds: 0.0,
        }
    }

    #[test]
    fn escapes_everything_it_shows() {
        assert_eq!(
            escape("<a href=\"x\">&'</a>"),
            "&lt;a href=&quot;x&quot;&gt;&amp;&#39;&lt;/a&gt;"
        );
        assert_eq!(escape("a\u{0}b"), "a\u{fffd}b");
        assert_eq!(href("EXP-001/traffic.pcap"), "EXP-001/traffic.pcap");
        assert_eq!(href("javascript:alert(1)"), "javascript%3Aalert%281%29");
        assert_eq!(href("a b/\"c\""), "a%20b/%22c%22");
        let out = [outcome(
            "EXP-001",
            Level::Must,
            Verdict::Fail,
            "<script>alert('x')</script> & \"more\"",
        )];
        let links = [vec![Link {
            label: "<pcap>".into(),
            path: "EXP-001/\"><script>.pcap".into(),
        }]];
        let page = render("exposer <&>", &out, &links, &[]);
        assert!(!page.contains("<script>"), "{page}");
        assert!(!page.contains("'x'"), "{page}");
        assert!(
            page.contains("&lt;script&gt;alert(&#39;x&#39;)&lt;/script&gt; &amp; &quot;more&quot;")
        );
        assert!(page.contains("exposer &lt;&amp;&gt;"));
        assert!(page.contains("title &lt;with&gt; &quot;quotes&quot; &amp; &#39;apostrophes&#39;"));
        assert!(page.contains("href=\"EXP-001/%22%3E%3Cscript%3E.pcap\">&lt;pcap&gt;</a>"));
        assert_eq!(page.matches("<tr class=").count(), 1);
    }

    #[test]
    fn must_and_should_are_counted_apart() {
        let out = [
            outcome("EXP-001", Level::Must, Verdict::Pass, ""),
            outcome("EXP-002", Level::Must, Verdict::Pass, ""),
            outcome("EXP-003", Level::Must, Verdict::Fail, ""),
            outcome("EXP-004", Level::Must, Verdict::Skip, ""),
            outcome("EXP-005", Level::Should, Verdict::Pass, ""),
            outcome("EXP-006", Level::Should, Verdict::Fail, ""),
            outcome("EXP-007", Level::Should, Verdict::Skip, ""),
            outcome("EXP-008", Level::Should, Verdict::Skip, ""),
        ];
        assert_eq!(
            level_counts(&out, Level::Must),
            LevelCounts {
                passed: 2,
                failed: 1,
                na: 1
            }
        );
        assert_eq!(
            level_counts(&out, Level::Should),
            LevelCounts {
                passed: 1,
                failed: 1,
                na: 2
            }
        );
        let line = "8 cases: MUST 2/3 passed, SHOULD 1/2 passed, 3 n/a";
        assert_eq!(summary(&out), line);
        assert!(crate::report::table(&out).contains(line));
        let page = render("exposer", &out, &[], &[]);
        assert!(page.contains(line));
        assert!(page.contains("<tr><td>MUST</td><td>2</td><td>1</td><td>1</td></tr>"));
        assert!(page.contains("<tr><td>SHOULD</td><td>1</td><td>1</td><td>2</td></tr>"));
        let json: serde_json::Value =
            serde_json::from_str(&crate::report::json("exposer", &out)).unwrap();
        assert_eq!(json["summary"], line);
        assert_eq!(json["must"]["passed"], 2);
        assert_eq!(json["must"]["failed"], 1);
        assert_eq!(json["must"]["na"], 1);
        assert_eq!(json["should"]["passed"], 1);
        assert_eq!(json["should"]["failed"], 1);
        assert_eq!(json["should"]["na"], 2);
        assert_eq!(json["must_failed"], true);
    }
}
