//! The interop matrix: every configured exposer against every configured puller, over
//! seeded impairments (a [`Relay`] between them), each cell judged pass (exit 0
//! and a byte-exact file within the bound), fail (with the reason) or n/a (the puller
//! exited 127, or the exposer did before its ticket).
//!
//! The configuration is a small TOML file: optional top-level `size`, `timeout`
//! (seconds per pull), `start_timeout` (seconds to wait for an exposer's ticket) and
//! `impairments` (a list of names from [`IMPAIRMENTS`]), then one table per
//! implementation with an `exposer` and/or a `puller` command template (see
//! [`crate::command`]).

use std::fmt::Write as _;
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use rgtp_link::impair::ImpairmentConfig;

use crate::command::{self, LaunchError, UNSUPPORTED};
use crate::html::{escape, href};
use crate::relay::Relay;
use crate::report::json_str;

/// The names of the impairments a matrix can run over, in their default column order.
pub const IMPAIRMENTS: &[&str] = &["clean", "loss1", "loss5", "reorder", "bottleneck"];

/// The model of the impairment `name` (one of [`IMPAIRMENTS`]).
pub fn impairment(name: &str) -> Option<ImpairmentConfig> {
    let p = ImpairmentConfig::perfect();
    Some(match name {
        "clean" => p,
        "loss1" => p.with_loss(0.01),
        "loss5" => p.with_loss(0.05),
        "reorder" => p
            .with_reorder(0.1)
            .with_reorder_delay(Duration::from_millis(5)),
        "bottleneck" => p
            .with_rate_limit(4_000_000)
            .with_queue_limit(128 * 1024)
            .with_delay(Duration::from_millis(5)),
        _ => return None,
    })
}

/// What an impairment does, in words.
pub fn describe_impairment(name: &str) -> &'static str {
    match name {
        "clean" => "no impairment",
        "loss1" => "1% of datagrams lost, each direction",
        "loss5" => "5% of datagrams lost, each direction",
        "reorder" => "10% of datagrams held back 5 ms, each direction",
        "bottleneck" => "4 MB/s, 128 KiB queue (tail drop), 5 ms delay, each direction",
        _ => "",
    }
}

/// One implementation: a name and its command templates.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Implementation {
    /// Its table name in the configuration.
    pub name: String,
    /// Exposer command (`{file}`, `{port}`), if it has one.
    pub exposer: Option<String>,
    /// Puller command (`{ticket}`, `{out}`, `{port}`, `{proofs}`), if it has one.
    pub puller: Option<String>,
}

/// A matrix configuration.
#[derive(Debug, Clone, PartialEq)]
pub struct Config {
    /// The implementations, in file order.
    pub implementations: Vec<Implementation>,
    /// Bytes of the file exposed.
    pub size: usize,
    /// Bound on one pull.
    pub timeout: Duration,
    /// Bound on an exposer's start (its ticket).
    pub start_timeout: Duration,
    /// Impairment names, each one of [`IMPAIRMENTS`].
    pub impairments: Vec<String>,
}

impl Default for Config {
    fn default() -> Self {
        Config {
            implementations: Vec::new(),
            size: 1 << 20,
            timeout: Duration::from_secs(60),
            start_timeout: Duration::from_secs(30),
            impairments: IMPAIRMENTS.iter().map(|s| s.to_string()).collect(),
        }
    }
}

/// One implementation's table.
#[derive(serde::Deserialize)]
#[serde(deny_unknown_fields)]
struct Commands {
    exposer: Option<String>,
    puller: Option<String>,
}

/// `value` as a positive integer setting.
fn positive(key: &str, value: &toml::Value) -> Result<u64, String> {
    match value.as_integer() {
        Some(v) if v > 0 => Ok(v as u64),
        _ => Err(format!("{key} must be a positive integer, not {value}")),
    }
}

impl Config {
    /// Parses a configuration: TOML with the settings `size`, `timeout`,
    /// `start_timeout` (integers) and `impairments` (a list of names), then one
    /// table per implementation holding `exposer` and/or `puller` strings.
    pub fn parse(text: &str) -> Result<Config, String> {
        let table: toml::Table = text.parse().map_err(|e: toml::de::Error| e.to_string())?;
        let mut c = Config::default();
        for (key, value) in table {
            match (key.as_str(), value) {
                (_, toml::Value::Table(t)) => {
                    let cmd: Commands = toml::Value::Table(t)
                        .try_into()
                        .map_err(|e: toml::de::Error| format!("in [{key}]: {}", e.message()))?;
                    c.implementations.push(Implementation {
                        name: key,
                        exposer: cmd.exposer,
                        puller: cmd.puller,
                    });
                }
                ("size", v) => c.size = positive("size", &v)? as usize,
                ("timeout", v) => c.timeout = Duration::from_secs(positive("timeout", &v)?),
                ("start_timeout", v) => {
                    c.start_timeout = Duration::from_secs(positive("start_timeout", &v)?)
                }
                ("impairments", v) => {
                    let list: Vec<String> = v
                        .try_into()
                        .map_err(|_| "impairments must be a list of names".to_string())?;
                    if let Some(bad) = list.iter().find(|s| impairment(s).is_none()) {
                        return Err(format!(
                            "unknown impairment {bad:?} (known: {})",
                            IMPAIRMENTS.join(", ")
                        ));
                    }
                    c.impairments = list;
                }
                (k, _) => {
                    return Err(format!(
                        "unknown setting {k:?} (settings: size, timeout, start_timeout, impairments; an implementation is a [table] of exposer and puller strings)"
                    ))
                }
            }
        }
        if !c.implementations.iter().any(|i| i.exposer.is_some()) {
            return Err("no implementation has an exposer command".into());
        }
        if !c.implementations.iter().any(|i| i.puller.is_some()) {
            return Err("no implementation has a puller command".into());
        }
        Ok(c)
    }
}

/// A cell's verdict.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CellVerdict {
    /// Exit 0 and a byte-exact file within the bound.
    Pass,
    /// Anything else but 127.
    Fail,
    /// Exit 127 (the puller, or the exposer before its ticket): unsupported.
    NotApplicable,
}

impl CellVerdict {
    /// `pass`, `fail` or `n/a`.
    pub fn name(self) -> &'static str {
        match self {
            CellVerdict::Pass => "pass",
            CellVerdict::Fail => "fail",
            CellVerdict::NotApplicable => "n/a",
        }
    }
    fn class(self) -> &'static str {
        match self {
            CellVerdict::Pass => "pass",
            CellVerdict::Fail => "fail",
            CellVerdict::NotApplicable => "na",
        }
    }
}

/// One cell of the matrix.
#[derive(Debug, Clone)]
pub struct Cell {
    /// The exposer's implementation.
    pub exposer: String,
    /// The puller's implementation.
    pub puller: String,
    /// The impairment.
    pub impairment: String,
    /// The verdict.
    pub verdict: CellVerdict,
    /// Why (what the puller did).
    pub detail: String,
    /// Wall time of the pull.
    pub seconds: f64,
    /// Evidence files, relative to the output directory: (label, path).
    pub evidence: Vec<(String, String)>,
}

/// A finished matrix.
#[derive(Debug, Clone)]
pub struct Matrix {
    /// The seed.
    pub seed: u64,
    /// Bytes exposed.
    pub size: usize,
    /// Impairment names, in column order.
    pub impairments: Vec<String>,
    /// Exposer names, in row order.
    pub exposers: Vec<String>,
    /// Puller names, in row order.
    pub pullers: Vec<String>,
    /// Every cell, exposer-major, then puller, then impairment.
    pub cells: Vec<Cell>,
}

impl Matrix {
    /// The verdicts alone, in cell order: what must repeat under the same seed.
    pub fn verdicts(&self) -> Vec<(String, String, String, CellVerdict)> {
        self.cells
            .iter()
            .map(|c| {
                (
                    c.exposer.clone(),
                    c.puller.clone(),
                    c.impairment.clone(),
                    c.verdict,
                )
            })
            .collect()
    }

    /// The cell of (exposer, puller, impairment).
    pub fn cell(&self, exposer: &str, puller: &str, impairment: &str) -> Option<&Cell> {
        self.cells
            .iter()
            .find(|c| c.exposer == exposer && c.puller == puller && c.impairment == impairment)
    }

    /// Whether any cell failed.
    pub fn any_failed(&self) -> bool {
        self.cells.iter().any(|c| c.verdict == CellVerdict::Fail)
    }
}

/// The relay's seed for an impairment: the matrix seed and the impairment's name, so
/// every pairing meets the same draws under that impairment.
pub fn cell_seed(seed: u64, impairment: &str) -> u64 {
    let mut h = seed ^ 0xcbf2_9ce4_8422_2325;
    for b in impairment.bytes() {
        h ^= u64::from(b);
        h = h.wrapping_mul(0x0100_0000_01b3);
    }
    h
}

/// The file every exposer serves: `size` bytes drawn from `seed`.
pub fn test_file(size: usize, seed: u64) -> Vec<u8> {
    crate::cases::puller::data(size, seed | 1)
}

fn safe(name: &str) -> String {
    name.chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || c == '-' || c == '_' {
                c
            } else {
                '_'
            }
        })
        .collect()
}

/// Runs the matrix of `config` with `seed`, keeping evidence under `out`. `progress` is
/// told of each cell as it finishes.
pub fn run(
    config: &Config,
    seed: u64,
    out: &Path,
    mut progress: impl FnMut(&Cell),
) -> std::io::Result<Matrix> {
    std::fs::create_dir_all(out)?;
    let data = test_file(config.size, seed);
    let file = out.join("exposed.bin");
    std::fs::write(&file, &data)?;
    let exposers: Vec<&Implementation> = config
        .implementations
        .iter()
        .filter(|i| i.exposer.is_some())
        .collect();
    let pullers: Vec<&Implementation> = config
        .implementations
        .iter()
        .filter(|i| i.puller.is_some())
        .collect();
    let mut cells = Vec::new();
    for e in &exposers {
        let logs = out.join("exposers");
        std::fs::create_dir_all(&logs)?;
        let template = e.exposer.as_deref().expect("filtered");
        let mut launched: Option<command::Launched> = None;
        let mut failed: Option<LaunchError> = None;
        for p in &pullers {
            for imp in &config.impairments {
                let rel = format!("cells/{}__{}__{}", safe(&e.name), safe(&p.name), safe(imp));
                let dir = out.join(&rel);
                std::fs::create_dir_all(&dir)?;
                // (Re)start the exposer when it is not running; a start that failed is
                // not retried.
                if failed.is_none() && !launched.as_mut().is_some_and(|l| l.running()) {
                    launched = None;
                    let port = command::free_udp_port()?;
                    match command::launch_exposer(
                        template,
                        &file,
                        port,
                        None,
                        config.start_timeout,
                        &logs,
                        &safe(&e.name),
                    ) {
                        Ok(l) => launched = Some(l),
                        Err(err) => failed = Some(err),
                    }
                }
                if let Some(err) = &failed {
                    let verdict = match err {
                        LaunchError::Unsupported => CellVerdict::NotApplicable,
                        LaunchError::Failed(_) => CellVerdict::Fail,
                    };
                    let ename = safe(&e.name);
                    let cell = Cell {
                        exposer: e.name.clone(),
                        puller: p.name.clone(),
                        impairment: imp.clone(),
                        verdict,
                        detail: format!("exposer: {err}"),
                        seconds: 0.0,
                        evidence: vec![(
                            "exposer stderr".into(),
                            format!("exposers/{ename}.stderr"),
                        )],
                    };
                    progress(&cell);
                    cells.push(cell);
                    continue;
                }
                let l = launched.as_ref().expect("launched");
                let cell = run_cell(config, seed, e, p, imp, l, &data, &dir, &rel)?;
                progress(&cell);
                cells.push(cell);
            }
        }
    }
    Ok(Matrix {
        seed,
        size: config.size,
        impairments: config.impairments.clone(),
        exposers: exposers.iter().map(|i| i.name.clone()).collect(),
        pullers: pullers.iter().map(|i| i.name.clone()).collect(),
        cells,
    })
}

#[allow(clippy::too_many_arguments)]
fn run_cell(
    config: &Config,
    seed: u64,
    e: &Implementation,
    p: &Implementation,
    imp: &str,
    l: &command::Launched,
    data: &[u8],
    dir: &Path,
    rel: &str,
) -> std::io::Result<Cell> {
    let mut cell = Cell {
        exposer: e.name.clone(),
        puller: p.name.clone(),
        impairment: imp.to_string(),
        verdict: CellVerdict::Fail,
        detail: String::new(),
        seconds: 0.0,
        evidence: Vec::new(),
    };
    let upstream = match crate::reachable(&l.ticket) {
        Ok(a) => a,
        Err(err) => {
            cell.detail = format!("exposer: its ticket's address: {err}");
            return Ok(cell);
        }
    };
    let model = impairment(imp).expect("validated");
    let relay = Relay::spawn(upstream, model, cell_seed(seed, imp))?;
    let mut ticket = l.ticket.clone();
    ticket.host = relay.addr.ip().to_string();
    ticket.port = relay.addr.port();
    let out_file = dir.join("pulled.bin");
    let stdout = dir.join("stdout.txt");
    let stderr = dir.join("stderr.txt");
    let line = p
        .puller
        .as_deref()
        .expect("filtered")
        .replace("{ticket}", &command::quote(&ticket.to_string()))
        .replace("{out}", &command::quote(&out_file.display().to_string()))
        .replace("{port}", &command::free_udp_port()?.to_string())
        .replace("{proofs}", "");
    let _ = std::fs::remove_file(&out_file);
    let started = Instant::now();
    let mut child = Command::new("sh")
        .arg("-c")
        .arg(&line)
        .stdin(Stdio::null())
        .stdout(std::fs::File::create(&stdout)?)
        .stderr(std::fs::File::create(&stderr)?)
        .process_group(0)
        .spawn()?;
    let mut timed_out = false;
    let status = loop {
        if let Some(st) = child.try_wait()? {
            break st;
        }
        if started.elapsed() > config.timeout {
            timed_out = true;
            command::kill_group(&mut child);
            break child.wait()?;
        }
        std::thread::sleep(Duration::from_millis(20));
    };
    cell.seconds = started.elapsed().as_secs_f64();
    let (delivered, up, down) = relay.finish();
    let pcap = dir.join("relay.pcap");
    let have_pcap = Relay::write_pcap(upstream, &delivered, &pcap).is_ok();
    let path = |f: &str| format!("{rel}/{f}");
    cell.evidence.push(("stderr".into(), path("stderr.txt")));
    cell.evidence.push(("stdout".into(), path("stdout.txt")));
    if have_pcap {
        cell.evidence.push(("pcap".into(), path("relay.pcap")));
    }
    let got = std::fs::read(&out_file).ok();
    let relay_note = format!(
        "relay: toward the exposer {} in, {} lost; toward the puller {} in, {} lost, {} queue drops, {} held back",
        up.processed,
        up.dropped,
        down.processed,
        down.dropped,
        down.rate_dropped + up.rate_dropped,
        down.reordered + up.reordered
    );
    let how = match (timed_out, status.code()) {
        (true, _) => format!("killed at the {:.0}s bound", config.timeout.as_secs_f64()),
        (false, Some(c)) => format!("exit {c}"),
        (false, None) => "killed by a signal".into(),
    };
    let words = command::tail(&stderr);
    let size = match &got {
        Some(g) => format!("output {} B", g.len()),
        None => "no output".into(),
    };
    if !timed_out && status.code() == Some(UNSUPPORTED) {
        cell.verdict = CellVerdict::NotApplicable;
        cell.detail = format!("n/a: unsupported by the implementation (exit {UNSUPPORTED})");
    } else if !timed_out && status.success() && got.as_deref() == Some(data) {
        cell.verdict = CellVerdict::Pass;
        cell.detail = format!(
            "exit 0, {} B byte-exact in {:.1}s; {relay_note}",
            data.len(),
            cell.seconds
        );
    } else {
        let why = match &got {
            _ if timed_out || !status.success() => format!("{how}{words}; {size}"),
            None => format!("exit 0 but no output{words}"),
            Some(g) => format!(
                "exit 0 but the output differs ({} B vs {} B, first difference at {:?})",
                g.len(),
                data.len(),
                g.iter().zip(data).position(|(a, b)| a != b)
            ),
        };
        cell.detail = format!("{why} after {:.1}s; {relay_note}", cell.seconds);
    }
    let _ = std::fs::remove_file(&out_file);
    std::fs::write(
        dir.join("cell.txt"),
        format!(
            "exposer     {} ({})\npuller      {} ({})\nimpairment  {imp}: {} (seed {})\nexposer at  {upstream}, relay at {}\ncommand     {}\nverdict     {}\ndetail      {}\n",
            e.name,
            l.line,
            p.name,
            p.puller.as_deref().unwrap_or(""),
            describe_impairment(imp),
            cell_seed(seed, imp),
            ticket.address(),
            match line.split_once('#') {
                Some((before, _)) => format!("{before}#KEY …"),
                None => line.clone(),
            },
            cell.verdict.name(),
            cell.detail
        ),
    )?;
    cell.evidence.push(("cell".into(), path("cell.txt")));
    Ok(cell)
}

/// The matrix as a text table: one row per pairing, one column per impairment, and the
/// failures with their reasons below.
pub fn table(m: &Matrix) -> String {
    let mut s = String::new();
    let w = m
        .cells
        .iter()
        .map(|c| c.exposer.chars().count() + c.puller.chars().count() + 3)
        .max()
        .unwrap_or(0)
        .max("exposer × puller".chars().count());
    let mut row = format!("{:<w$}", "exposer × puller");
    for i in &m.impairments {
        let _ = write!(row, "  {i:<10}");
    }
    let _ = writeln!(s, "{}", row.trim_end());
    for e in &m.exposers {
        for p in &m.pullers {
            let mut row = format!("{:<w$}", format!("{e} × {p}"));
            for i in &m.impairments {
                let v = m.cell(e, p, i).map(|c| c.verdict.name()).unwrap_or("-");
                let _ = write!(row, "  {v:<10}");
            }
            let _ = writeln!(s, "{}", row.trim_end());
        }
    }
    let failed: Vec<&Cell> = m
        .cells
        .iter()
        .filter(|c| c.verdict != CellVerdict::Pass)
        .collect();
    if !failed.is_empty() {
        s.push('\n');
        for c in failed {
            let _ = writeln!(
                s,
                "{} × {} / {}: {}: {}",
                c.exposer,
                c.puller,
                c.impairment,
                c.verdict.name(),
                c.detail
            );
        }
    }
    s
}

/// The matrix as JSON.
pub fn json(m: &Matrix) -> String {
    let list = |v: &[String]| v.iter().map(|s| json_str(s)).collect::<Vec<_>>().join(", ");
    let mut s = format!(
        "{{\"seed\": {}, \"size\": {}, \"impairments\": [{}], \"exposers\": [{}], \"pullers\": [{}], \"cells\": [",
        m.seed,
        m.size,
        list(&m.impairments),
        list(&m.exposers),
        list(&m.pullers)
    );
    for (n, c) in m.cells.iter().enumerate() {
        let ev = c
            .evidence
            .iter()
            .map(|(k, v)| format!("{}: {}", json_str(k), json_str(v)))
            .collect::<Vec<_>>()
            .join(", ");
        let _ = write!(
            s,
            "{}\n  {{\"exposer\": {}, \"puller\": {}, \"impairment\": {}, \"verdict\": {}, \"detail\": {}, \"seconds\": {:.3}, \"evidence\": {{{ev}}}}}",
            if n == 0 { "" } else { "," },
            json_str(&c.exposer),
            json_str(&c.puller),
            json_str(&c.impairment),
            json_str(c.verdict.name()),
            json_str(&c.detail),
            c.seconds
        );
    }
    s.push_str("\n]}\n");
    s
}

/// The matrix as a static HTML page (the style of [`crate::html`]): the table with each
/// cell linking its evidence, then every cell's detail.
pub fn html(m: &Matrix) -> String {
    let mut s = format!(
        "<!DOCTYPE html>\n<html lang=\"en\"><head><meta charset=\"utf-8\">\
         <title>RGTP interop matrix</title><style>{}{}</style></head><body>\n\
         <h1>RGTP interop matrix</h1>\n<p class=\"summary\">seed {}, {} B file; {} pass, {} fail, {} n/a</p>\n",
        crate::html::STYLE,
        "td.pass{background:#d9f2d9}td.fail{background:#f8d0d0;font-weight:bold}td.na{background:#eee;color:#666}",
        m.seed,
        m.size,
        m.cells.iter().filter(|c| c.verdict == CellVerdict::Pass).count(),
        m.cells.iter().filter(|c| c.verdict == CellVerdict::Fail).count(),
        m.cells
            .iter()
            .filter(|c| c.verdict == CellVerdict::NotApplicable)
            .count(),
    );
    s.push_str("<table class=\"matrix\">\n<tr><th>exposer</th><th>puller</th>");
    for i in &m.impairments {
        let _ = write!(
            s,
            "<th title=\"{}\">{}</th>",
            escape(describe_impairment(i)),
            escape(i)
        );
    }
    s.push_str("</tr>\n");
    for e in &m.exposers {
        for p in &m.pullers {
            let _ = write!(s, "<tr><td>{}</td><td>{}</td>", escape(e), escape(p));
            for i in &m.impairments {
                match m.cell(e, p, i) {
                    Some(c) => {
                        let links = c
                            .evidence
                            .iter()
                            .map(|(k, v)| format!("<a href=\"{}\">{}</a>", href(v), escape(k)))
                            .collect::<Vec<_>>()
                            .join(" ");
                        let _ = write!(
                            s,
                            "<td class=\"{}\" title=\"{}\">{}<br><small>{links}</small></td>",
                            c.verdict.class(),
                            escape(&c.detail),
                            c.verdict.name()
                        );
                    }
                    None => s.push_str("<td>-</td>"),
                }
            }
            s.push_str("</tr>\n");
        }
    }
    s.push_str("</table>\n<table class=\"cells\">\n<tr><th>exposer</th><th>puller</th><th>impairment</th><th>verdict</th><th>detail</th></tr>\n");
    for c in &m.cells {
        let _ = writeln!(
            s,
            "<tr class=\"{}\"><td>{}</td><td>{}</td><td>{}</td><td class=\"v\">{}</td><td class=\"detail\">{}</td></tr>",
            c.verdict.class(),
            escape(&c.exposer),
            escape(&c.puller),
            escape(&c.impairment),
            c.verdict.name(),
            escape(&c.detail)
        );
    }
    s.push_str("</table>\n</body></html>\n");
    s
}

/// Writes `matrix.txt`, `matrix.json` and `index.html` into `out`.
pub fn write(m: &Matrix, out: &Path) -> std::io::Result<Vec<PathBuf>> {
    let files = [
        ("matrix.txt", table(m)),
        ("matrix.json", json(m)),
        ("index.html", html(m)),
    ];
    let mut written = Vec::new();
    for (name, text) in files {
        let p = out.join(name);
        std::fs::write(&p, text)?;
        written.push(p);
    }
    Ok(written)
}
