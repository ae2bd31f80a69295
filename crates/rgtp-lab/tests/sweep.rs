//! Sweeps of small plans: CSV shape, reproducibility, errors, resume and shards.

use std::fs;
use std::path::Path;

use rgtp_lab::{merge, run, Outcome, Plan, SweepOptions};

const SMALL: &str = r#"
name = "small"
size = "24KiB"
seeds = [1, 2]

[variants]
fec = ["none", "rs:20,16"]
cc = "delay"
chunk_size = 1024

[scenarios]
loss = [0.0, 0.05]
delay_ms = 5
"#;

fn sweep(plan: &Plan, dir: &Path) -> Outcome {
    let mut o = SweepOptions::new(dir);
    o.jobs = 2;
    run(plan, &o).unwrap()
}

fn csv(dir: &Path) -> String {
    fs::read_to_string(dir.join("results.csv")).unwrap()
}

#[test]
fn csv_has_a_row_per_run_and_is_reproducible() {
    let plan = Plan::parse(SMALL).unwrap();
    assert_eq!(plan.runs().len(), 8);
    let a = tempfile::tempdir().unwrap();
    let b = tempfile::tempdir().unwrap();
    assert_eq!(sweep(&plan, a.path()), Outcome::Complete { runs: 8 });
    sweep(&plan, b.path());
    let text = csv(a.path());
    let lines: Vec<&str> = text.lines().collect();
    assert_eq!(lines.len(), 9, "header and 8 rows");
    let cols = lines[0].split(',').count();
    assert!(lines[0].starts_with("run_id,fec,cc,"));
    for (i, l) in lines[1..].iter().enumerate() {
        let f: Vec<&str> = l.split(',').collect();
        assert_eq!(f.len(), cols, "row {i}: {l}");
        assert_eq!(f[0], i.to_string(), "ordered by run id");
        assert_eq!(f[16], "1", "row {i}: the puller completed: {l}");
    }
    assert_eq!(text, csv(b.path()), "same plan, same bytes");
    for name in ["results.json", "manifest.json", "runs.jsonl"] {
        assert!(a.path().join(name).exists(), "{name}");
    }
    let m: serde_json::Value =
        serde_json::from_str(&fs::read_to_string(a.path().join("manifest.json")).unwrap()).unwrap();
    assert_eq!(m["runs"], 8);
    assert_eq!(m["plan_sha256"].as_str().unwrap().len(), 64);
}

#[test]
fn another_seed_another_trace() {
    let lossy = SMALL.replace("loss = [0.0, 0.05]", "loss = [0.0, 0.3]\njitter_ms = 2");
    let p1 = Plan::parse(&lossy.replace("seeds = [1, 2]", "seeds = 1")).unwrap();
    let p2 = Plan::parse(&lossy.replace("seeds = [1, 2]", "seeds = 3")).unwrap();
    let a = rgtp_lab::sweep::execute(&p1, &p1.runs()[1]).unwrap();
    let b = rgtp_lab::sweep::execute(&p2, &p2.runs()[1]).unwrap();
    assert_eq!(a.loss, 0.3);
    assert_ne!(a.metrics.trace_hash, b.metrics.trace_hash);
}

fn err(src: &str) -> String {
    Plan::parse(src).unwrap_err().to_string()
}

#[test]
fn bad_plans_are_clear_errors() {
    let e = err(&SMALL.replace("delay_ms = 5", "delay_ms = 5\nlatency = 3"));
    assert!(e.contains("latency") && e.contains("line 14"), "{e}");
    let e = err(&SMALL.replace("loss = [0.0, 0.05]", "loss = 1.5"));
    assert!(
        e.contains("scenarios.loss") && e.contains("line 12") && e.contains("1.5"),
        "{e}"
    );
    let e = err(&SMALL.replace("cc = \"delay\"", "cc = \"vegas\""));
    assert!(
        e.contains("vegas") && e.contains("reno") && e.contains("cubic"),
        "{e}"
    );
    assert!(e.contains("line 8"), "{e}");
    let e = err(&SMALL.replace("fec = [\"none\", \"rs:20,16\"]", "fec = []"));
    assert!(e.contains("variants.fec") && e.contains("empty"), "{e}");
    let e = err(&SMALL.replace("fec = [\"none\", \"rs:20,16\"]", "fec = \"ldpc\""));
    assert!(e.contains("ldpc") && e.contains("raptorq"), "{e}");
    let e = err(&SMALL.replace("delay_ms = 5", "delay_ms = -5"));
    assert!(e.contains("negative"), "{e}");
}

#[test]
fn units_and_burst_axes() {
    assert_eq!(rgtp_lab::plan::parse_rate("100Mbit/s").unwrap(), 12_500_000);
    assert_eq!(rgtp_lab::plan::parse_rate("20MB/s").unwrap(), 20_000_000);
    assert_eq!(rgtp_lab::plan::parse_rate("5000").unwrap(), 5000);
    assert_eq!(rgtp_lab::plan::parse_bytes("64KiB").unwrap(), 65536);
    let p = Plan::parse(&SMALL.replace(
        "delay_ms = 5",
        "delay_ms = 5\nburst = [\"off\", [0.01, 0.2, 0.8]]\nrate = \"100Mbit/s\"\nqueue = \"256KiB\"",
    ))
    .unwrap();
    assert_eq!(p.scenarios.len(), 4);
    assert_eq!(p.scenarios[1].burst, Some((0.01, 0.2, 0.8)));
    assert_eq!(p.scenarios[0].rate, Some(12_500_000));
    assert_eq!(p.scenarios[0].queue, 262_144);
    let one = Plan::parse(&SMALL.replace("delay_ms = 5", "delay_ms = 5\nburst = [0.01, 0.2, 0.8]"))
        .unwrap();
    assert_eq!(one.scenarios.len(), 2, "a lone triple is one value");
}

#[test]
fn resume_finishes_only_the_missing_runs() {
    let plan = Plan::parse(SMALL).unwrap();
    let whole = tempfile::tempdir().unwrap();
    sweep(&plan, whole.path());
    let part = tempfile::tempdir().unwrap();
    let mut o = SweepOptions::new(part.path());
    o.jobs = 1;
    o.max_runs = Some(3);
    assert_eq!(
        run(&plan, &o).unwrap(),
        Outcome::Interrupted { done: 3, total: 8 }
    );
    assert!(!part.path().join("results.csv").exists());
    let log = fs::read_to_string(part.path().join("runs.jsonl")).unwrap();
    assert_eq!(log.lines().count(), 3);
    let mut o = SweepOptions::new(part.path());
    o.resume = true;
    let ran = std::sync::atomic::AtomicUsize::new(0);
    let count = |_: usize, _: usize| {
        ran.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
    };
    o.progress = Some(&count);
    assert_eq!(run(&plan, &o).unwrap(), Outcome::Complete { runs: 8 });
    assert_eq!(ran.into_inner(), 5, "only the missing runs");
    assert_eq!(csv(part.path()), csv(whole.path()));
}

#[test]
fn shards_merge_into_the_whole() {
    let plan = Plan::parse(SMALL).unwrap();
    let whole = tempfile::tempdir().unwrap();
    sweep(&plan, whole.path());
    let s0 = tempfile::tempdir().unwrap();
    let s1 = tempfile::tempdir().unwrap();
    for (i, d) in [(0, &s0), (1, &s1)] {
        let mut o = SweepOptions::new(d.path());
        o.shard = Some((i, 2));
        assert_eq!(run(&plan, &o).unwrap(), Outcome::Complete { runs: 4 });
    }
    let out = tempfile::tempdir().unwrap();
    let dirs = [s0.path().to_owned(), s1.path().to_owned()];
    assert_eq!(
        merge(out.path(), &dirs).unwrap(),
        Outcome::Complete { runs: 8 }
    );
    assert_eq!(csv(out.path()), csv(whole.path()));
    // The shards' time series (first seed: the even run ids) come along.
    for id in [0, 2, 4, 6] {
        let name = format!("series/run-{id}.csv");
        let merged = fs::read(out.path().join(&name)).unwrap();
        assert_eq!(
            merged,
            fs::read(whole.path().join(&name)).unwrap(),
            "{name}"
        );
    }
    // A shard alone is not the whole plan.
    assert!(merge(out.path(), &dirs[..1]).is_err());
    // Shards of another plan are refused.
    let other = Plan::parse(&SMALL.replace("small", "other")).unwrap();
    let od = tempfile::tempdir().unwrap();
    let mut o = SweepOptions::new(od.path());
    o.shard = Some((1, 2));
    run(&other, &o).unwrap();
    let e = merge(out.path(), &[s0.path().to_owned(), od.path().to_owned()]).unwrap_err();
    assert!(e.to_string().contains("plan"), "{e}");
}

#[test]
fn svg_plots_have_a_line_per_variant() {
    let plan = Plan::parse(SMALL).unwrap();
    let dir = tempfile::tempdir().unwrap();
    sweep(&plan, dir.path());
    let g = fs::read_to_string(dir.path().join("goodput-vs-loss.svg")).unwrap();
    let c = fs::read_to_string(dir.path().join("completion-cdf.svg")).unwrap();
    for svg in [&g, &c] {
        assert!(svg.starts_with("<svg") && svg.trim_end().ends_with("</svg>"));
        assert!(svg.contains("width=\"900\"") && svg.contains("height=\"600\""));
        for v in ["fec=none", "fec=rs:20,16"] {
            assert!(svg.contains(v), "legend names {v}");
        }
        // Two series lines (stroke width 2) plus legend swatches.
        let lines = svg.matches("<polyline").count();
        assert!(lines >= 2, "{lines} polylines");
    }
    // Each goodput line has one point per loss value.
    let line = g
        .split("<polyline")
        .find(|s| s.contains("stroke-width=\"2\""))
        .unwrap();
    let points = line
        .split("points=\"")
        .nth(1)
        .unwrap()
        .split('"')
        .next()
        .unwrap();
    assert_eq!(points.split_whitespace().count(), 2, "{points}");
}

/// Inflates deflate data made of fixed-Huffman blocks.
fn inflate(z: &[u8]) -> Vec<u8> {
    const LEN: [(usize, u32); 29] = [
        (3, 0),
        (4, 0),
        (5, 0),
        (6, 0),
        (7, 0),
        (8, 0),
        (9, 0),
        (10, 0),
        (11, 1),
        (13, 1),
        (15, 1),
        (17, 1),
        (19, 2),
        (23, 2),
        (27, 2),
        (31, 2),
        (35, 3),
        (43, 3),
        (51, 3),
        (59, 3),
        (67, 4),
        (83, 4),
        (99, 4),
        (115, 4),
        (131, 5),
        (163, 5),
        (195, 5),
        (227, 5),
        (258, 0),
    ];
    let mut pos = 0usize;
    let mut bit = |n: u32| -> usize {
        let mut v = 0;
        for k in 0..n {
            let b = (z[pos / 8] >> (pos % 8)) & 1;
            v |= (b as usize) << k;
            pos += 1;
        }
        v
    };
    let mut out: Vec<u8> = Vec::new();
    loop {
        let last = bit(1) == 1;
        match bit(2) {
            1 => loop {
                // Fixed codes arrive most significant bit first.
                let mut code = 0;
                for _ in 0..7 {
                    code = (code << 1) | bit(1);
                }
                let sym = if code <= 23 {
                    256 + code
                } else {
                    code = (code << 1) | bit(1);
                    match code {
                        0x30..=0xbf => code - 0x30,
                        0xc0..=0xc7 => 280 + code - 0xc0,
                        _ => 144 + ((code << 1) | bit(1)) - 0x190,
                    }
                };
                match sym {
                    0..=255 => out.push(sym as u8),
                    256 => break,
                    _ => {
                        let (base, extra) = LEN[sym - 257];
                        let len = base + bit(extra);
                        let mut d = 0;
                        for _ in 0..5 {
                            d = (d << 1) | bit(1);
                        }
                        let (dbase, dextra) = if d < 4 {
                            (d + 1, 0)
                        } else {
                            let e = (d as u32 - 2) / 2;
                            ((2 + (d & 1)) << e | 1, e)
                        };
                        let dist = dbase + bit(dextra);
                        assert!(dist <= out.len(), "distance {dist} before the start");
                        for _ in 0..len {
                            out.push(out[out.len() - dist]);
                        }
                    }
                }
            },
            t => panic!("block type {t}"),
        }
        if last {
            return out;
        }
    }
}

/// Reads an 8-bit RGB PNG (one zlib stream in IDAT): (w, h, rows).
fn read_png(png: &[u8]) -> (u32, u32, Vec<Vec<u8>>) {
    assert_eq!(&png[..8], b"\x89PNG\r\n\x1a\n", "signature");
    let (mut at, mut w, mut h, mut z) = (8, 0, 0, Vec::new());
    let mut kinds = Vec::new();
    while at < png.len() {
        let len = u32::from_be_bytes(png[at..at + 4].try_into().unwrap()) as usize;
        let kind = &png[at + 4..at + 8];
        let data = &png[at + 8..at + 8 + len];
        kinds.push(String::from_utf8_lossy(kind).into_owned());
        match kind {
            b"IHDR" => {
                w = u32::from_be_bytes(data[..4].try_into().unwrap());
                h = u32::from_be_bytes(data[4..8].try_into().unwrap());
                assert_eq!(&data[8..10], &[8, 2], "8-bit RGB");
            }
            b"IDAT" => z.extend_from_slice(data),
            _ => {}
        }
        at += 12 + len;
    }
    assert_eq!(kinds, ["IHDR", "IDAT", "IEND"]);
    assert_eq!(z[0] & 0x0f, 8, "deflate");
    let raw = inflate(&z[2..z.len() - 4]);
    let adler = raw.iter().fold((1u32, 0u32), |(a, b), &x| {
        let a = (a + u32::from(x)) % 65_521;
        (a, (b + a) % 65_521)
    });
    let want = u32::from_be_bytes(z[z.len() - 4..].try_into().unwrap());
    assert_eq!((adler.1 << 16) | adler.0, want, "Adler-32");
    let stride = w as usize * 3 + 1;
    assert_eq!(raw.len(), stride * h as usize);
    let rows = raw
        .chunks(stride)
        .map(|r| {
            assert_eq!(r[0], 0, "filter none");
            r[1..].to_vec()
        })
        .collect();
    (w, h, rows)
}

#[test]
fn png_plots_are_valid_and_drawn() {
    let plan = Plan::parse(SMALL).unwrap();
    let dir = tempfile::tempdir().unwrap();
    sweep(&plan, dir.path());
    for name in [
        "goodput-vs-loss.png",
        "completion-cdf.png",
        "overhead-vs-loss.png",
    ] {
        let (w, h, rows) = read_png(&fs::read(dir.path().join(name)).unwrap());
        assert_eq!((w, h), (900, 600), "{name}");
        // Inside the plot area (away from the margins), some pixels are coloured.
        let coloured = rows[30..560]
            .iter()
            .flat_map(|r| r[3 * 80..3 * 880].chunks(3))
            .filter(|p| !(p[0] == p[1] && p[1] == p[2]))
            .count();
        assert!(coloured > 200, "{name}: {coloured} coloured pixels");
    }
}
