//! Plots of a sweep: goodput and wire overhead against loss and completion-time
//! CDFs (one line per variant), Jain's fairness index per variant and scenario,
//! and per-run time series of each puller's window, rate and RTT.

use std::collections::BTreeMap;

use plotters::prelude::*;
use plotters_backend::{BackendColor, BackendCoord, BackendTextStyle, DrawingErrorKind};

use crate::record::RunRecord;
use crate::series::Sample;

/// Plot width and height in pixels.
pub const SIZE: (u32, u32) = (900, 600);

fn colour(i: usize) -> RGBColor {
    const P: [RGBColor; 8] = [
        RGBColor(31, 119, 180),
        RGBColor(255, 127, 14),
        RGBColor(44, 160, 44),
        RGBColor(214, 39, 40),
        RGBColor(148, 103, 189),
        RGBColor(140, 86, 75),
        RGBColor(227, 119, 194),
        RGBColor(23, 190, 207),
    ];
    P[i % P.len()]
}

type Series = Vec<(String, Vec<(f64, f64, f64, f64)>)>;

/// Records grouped by variant in order of first appearance (the plan's order),
/// each group labelled by the variant settings that differ between records.
fn by_variant(records: &[RunRecord]) -> Vec<(String, Vec<&RunRecord>)> {
    let all: Vec<&RunRecord> = records.iter().collect();
    let (labels, _) = differing(&all);
    let mut out: Vec<(String, Vec<&RunRecord>)> = Vec::new();
    for (r, label) in records.iter().zip(labels) {
        let label = if label.is_empty() {
            r.variant_label()
        } else {
            label
        };
        match out.iter_mut().find(|(k, _)| *k == label) {
            Some((_, v)) => v.push(r),
            None => out.push((label, vec![r])),
        }
    }
    out
}

/// The top of a y axis whose data reach `top`, leaving room above the data for a
/// legend of `entries` lines in the upper right corner.
fn headroom(top: f64, entries: usize) -> f64 {
    let legend = (entries as f64 * 20.0 + 30.0) / 480.0;
    top / (1.0 - legend.min(0.6))
}

/// Per variant, per loss: (loss, mean, min, max) of `metric` over the other axes and seeds.
fn loss_series(records: &[RunRecord], metric: fn(&RunRecord) -> f64) -> Series {
    by_variant(records)
        .into_iter()
        .map(|(k, rs)| {
            let mut by: BTreeMap<u64, Vec<f64>> = BTreeMap::new();
            for r in rs {
                by.entry(r.loss.to_bits()).or_default().push(metric(r));
            }
            let mut pts: Vec<(f64, f64, f64, f64)> = by
                .into_iter()
                .map(|(l, v)| {
                    let mean = v.iter().sum::<f64>() / v.len() as f64;
                    let lo = v.iter().copied().fold(f64::INFINITY, f64::min);
                    let hi = v.iter().copied().fold(f64::NEG_INFINITY, f64::max);
                    (f64::from_bits(l), mean, lo, hi)
                })
                .collect();
            pts.sort_by(|a, b| a.0.total_cmp(&b.0));
            (k, pts)
        })
        .collect()
}

/// A metric against loss: its caption, axis label, value and lowest y-axis top.
struct VsLoss {
    caption: &'static str,
    y_desc: &'static str,
    metric: fn(&RunRecord) -> f64,
    y_floor: f64,
}

const GOODPUT: VsLoss = VsLoss {
    caption: "goodput vs loss",
    y_desc: "goodput (MB/s)",
    metric: |r| r.metrics.goodput_mean_bps / 1e6,
    y_floor: 1e-3,
};

const OVERHEAD: VsLoss = VsLoss {
    caption: "wire overhead vs loss",
    y_desc: "bytes on the wire / payload bytes",
    metric: |r| r.metrics.wire_overhead,
    y_floor: 1.0,
};

/// Goodput (MB/s, mean over seeds and other axes, bars min to max) against loss, one line per variant.
pub fn goodput_vs_loss_svg(records: &[RunRecord]) -> Result<String, String> {
    let mut svg = String::new();
    vs_loss(SVGBackend::with_string(&mut svg, SIZE), records, &GOODPUT)?;
    Ok(svg)
}

/// [`goodput_vs_loss_svg`] as a PNG, without text.
pub fn goodput_vs_loss_png(records: &[RunRecord]) -> Result<Vec<u8>, String> {
    let mut r = Raster::new(SIZE);
    vs_loss(&mut r, records, &GOODPUT)?;
    Ok(r.png())
}

/// Wire overhead (bytes both sides sent per payload byte delivered; mean, bars min
/// to max) against loss, one line per variant.
pub fn overhead_vs_loss_svg(records: &[RunRecord]) -> Result<String, String> {
    let mut svg = String::new();
    vs_loss(SVGBackend::with_string(&mut svg, SIZE), records, &OVERHEAD)?;
    Ok(svg)
}

/// [`overhead_vs_loss_svg`] as a PNG, without text.
pub fn overhead_vs_loss_png(records: &[RunRecord]) -> Result<Vec<u8>, String> {
    let mut r = Raster::new(SIZE);
    vs_loss(&mut r, records, &OVERHEAD)?;
    Ok(r.png())
}

/// [`completion_cdf_svg`] as a PNG, without text.
pub fn completion_cdf_png(records: &[RunRecord]) -> Result<Vec<u8>, String> {
    let mut r = Raster::new(SIZE);
    completion_cdf(&mut r, records)?;
    Ok(r.png())
}

fn vs_loss<DB: DrawingBackend>(
    backend: DB,
    records: &[RunRecord],
    what: &VsLoss,
) -> Result<(), String> {
    let series = loss_series(records, what.metric);
    let xmax = records.iter().map(|r| r.loss).fold(0.0, f64::max).max(0.01) * 1.05;
    let top = series
        .iter()
        .flat_map(|(_, pts)| pts)
        .map(|p| p.3)
        .fold(0.0, f64::max)
        .max(what.y_floor);
    let ymax = headroom(top * 1.05, series.len());
    {
        let root = backend.into_drawing_area();
        root.fill(&WHITE).map_err(|e| e.to_string())?;
        let mut chart = ChartBuilder::on(&root)
            .caption(what.caption, ("sans-serif", 22))
            .margin(15)
            .x_label_area_size(40)
            .y_label_area_size(60)
            .build_cartesian_2d(0.0..xmax, 0.0..ymax)
            .map_err(|e| e.to_string())?;
        chart
            .configure_mesh()
            .x_desc("loss")
            .y_desc(what.y_desc)
            .draw()
            .map_err(|e| e.to_string())?;
        for (i, (label, pts)) in series.iter().enumerate() {
            let c = colour(i);
            chart
                .draw_series(LineSeries::new(
                    pts.iter().map(|p| (p.0, p.1)),
                    c.stroke_width(2),
                ))
                .map_err(|e| e.to_string())?
                .label(label.as_str())
                .legend(move |(x, y)| PathElement::new([(x, y), (x + 20, y)], c));
            chart
                .draw_series(
                    pts.iter()
                        .map(|p| ErrorBar::new_vertical(p.0, p.2, p.1, p.3, c.filled(), 6)),
                )
                .map_err(|e| e.to_string())?;
        }
        chart
            .configure_series_labels()
            .position(SeriesLabelPosition::UpperRight)
            .background_style(WHITE.mix(0.8))
            .border_style(BLACK)
            .draw()
            .map_err(|e| e.to_string())?;
        root.present().map_err(|e| e.to_string())?;
    }
    Ok(())
}

/// Empirical CDF of the completion time (seconds) per variant.
pub fn completion_cdf_svg(records: &[RunRecord]) -> Result<String, String> {
    let mut svg = String::new();
    completion_cdf(SVGBackend::with_string(&mut svg, SIZE), records)?;
    Ok(svg)
}

fn completion_cdf<DB: DrawingBackend>(backend: DB, records: &[RunRecord]) -> Result<(), String> {
    let by: Vec<(String, Vec<f64>)> = by_variant(records)
        .into_iter()
        .map(|(k, rs)| {
            let mut v: Vec<f64> = rs.iter().map(|r| r.metrics.completion_s).collect();
            v.sort_by(f64::total_cmp);
            (k, v)
        })
        .collect();
    let xmax = records
        .iter()
        .map(|r| r.metrics.completion_s)
        .fold(0.0, f64::max)
        .max(1e-3)
        * 1.05;
    {
        let root = backend.into_drawing_area();
        root.fill(&WHITE).map_err(|e| e.to_string())?;
        let mut chart = ChartBuilder::on(&root)
            .caption("completion time CDF", ("sans-serif", 22))
            .margin(15)
            .x_label_area_size(40)
            .y_label_area_size(60)
            .build_cartesian_2d(0.0..xmax, 0.0..1.0)
            .map_err(|e| e.to_string())?;
        chart
            .configure_mesh()
            .x_desc("completion time (s, virtual)")
            .y_desc("fraction of runs")
            .draw()
            .map_err(|e| e.to_string())?;
        for (i, (label, v)) in by.iter().enumerate() {
            let c = colour(i);
            let n = v.len() as f64;
            let mut pts = vec![(0.0, 0.0)];
            for (k, &t) in v.iter().enumerate() {
                pts.push((t, k as f64 / n));
                pts.push((t, (k + 1) as f64 / n));
            }
            chart
                .draw_series(LineSeries::new(pts, c.stroke_width(2)))
                .map_err(|e| e.to_string())?
                .label(label.as_str())
                .legend(move |(x, y)| PathElement::new([(x, y), (x + 20, y)], c));
        }
        chart
            .configure_series_labels()
            .position(SeriesLabelPosition::LowerRight)
            .background_style(WHITE.mix(0.8))
            .border_style(BLACK)
            .draw()
            .map_err(|e| e.to_string())?;
        root.present().map_err(|e| e.to_string())?;
    }
    Ok(())
}

/// Size of a time-series plot: three panels stacked.
pub const SERIES_SIZE: (u32, u32) = (900, 900);

/// Window, delivery rate and smoothed RTT of each puller over virtual time, in
/// three stacked panels.
pub fn series_svg(title: &str, samples: &[Sample]) -> Result<String, String> {
    let mut svg = String::new();
    series(
        SVGBackend::with_string(&mut svg, SERIES_SIZE),
        title,
        samples,
    )?;
    Ok(svg)
}

/// [`series_svg`] as a PNG, without text.
pub fn series_png(title: &str, samples: &[Sample]) -> Result<Vec<u8>, String> {
    let mut r = Raster::new(SERIES_SIZE);
    series(&mut r, title, samples)?;
    Ok(r.png())
}

type Panel = (&'static str, fn(&Sample) -> f64);

const PANELS: [Panel; 3] = [
    ("congestion window (chunks)", |s| f64::from(s.window)),
    ("delivery rate (MB/s)", |s| s.rate_bps / 1e6),
    ("smoothed RTT (ms)", |s| s.srtt_ms),
];

fn series<DB: DrawingBackend>(backend: DB, title: &str, samples: &[Sample]) -> Result<(), String> {
    let mut by: BTreeMap<usize, Vec<&Sample>> = BTreeMap::new();
    for s in samples {
        by.entry(s.puller).or_default().push(s);
    }
    let tmax = samples.iter().map(|s| s.t_s).fold(0.0, f64::max).max(1e-3);
    let root = backend.into_drawing_area();
    root.fill(&WHITE).map_err(|e| e.to_string())?;
    let root = root
        .titled(title, ("sans-serif", 16))
        .map_err(|e| e.to_string())?;
    let areas = root.split_evenly((PANELS.len(), 1));
    for (k, ((desc, value), area)) in PANELS.iter().zip(&areas).enumerate() {
        let top = samples.iter().map(value).fold(0.0, f64::max).max(1e-3) * 1.05;
        // The legend goes in the upper right of the first panel.
        let ymax = if k == 0 {
            headroom(top, by.len()) * 1.2
        } else {
            top
        };
        let mut chart = ChartBuilder::on(area)
            .margin(10)
            .x_label_area_size(35)
            .y_label_area_size(70)
            .build_cartesian_2d(0.0..tmax, 0.0..ymax)
            .map_err(|e| e.to_string())?;
        let mut mesh = chart.configure_mesh();
        mesh.y_desc(*desc);
        if k + 1 == PANELS.len() {
            mesh.x_desc("virtual time (s)");
        }
        mesh.draw().map_err(|e| e.to_string())?;
        for (i, (puller, pts)) in by.iter().enumerate() {
            let c = colour(i);
            chart
                .draw_series(LineSeries::new(
                    pts.iter().map(|s| (s.t_s, value(s))),
                    c.stroke_width(2),
                ))
                .map_err(|e| e.to_string())?
                .label(format!("puller {puller}"))
                .legend(move |(x, y)| PathElement::new([(x, y), (x + 20, y)], c));
        }
        if k == 0 {
            chart
                .configure_series_labels()
                .position(SeriesLabelPosition::UpperRight)
                .background_style(WHITE.mix(0.8))
                .border_style(BLACK)
                .draw()
                .map_err(|e| e.to_string())?;
        }
    }
    root.present().map_err(|e| e.to_string())
}

/// The settings in which `records` differ, as "key=value" pairs per record: the
/// variant fields, then the scenario fields (pullers always shown).
fn differing(records: &[&RunRecord]) -> (Vec<String>, Vec<String>) {
    type Field = (&'static str, fn(&RunRecord) -> String);
    const VARIANT: [Field; 5] = [
        ("protocol", |r| r.protocol.clone()),
        ("fec", |r| r.fec.clone()),
        ("cc", |r| r.cc.clone()),
        ("chunk", |r| r.chunk_size.to_string()),
        ("proofs", |r| r.proofs.to_string()),
    ];
    const SCENARIO: [Field; 7] = [
        ("loss", |r| r.loss.to_string()),
        ("burst", |r| r.burst.clone()),
        ("delay", |r| format!("{}ms", r.delay_ms)),
        ("rate", |r| {
            format!("{}Mbit/s", r.rate_bps as f64 * 8.0 / 1e6)
        }),
        ("trace", |r| r.trace.clone()),
        ("queue", |r| format!("{}KiB", r.queue / 1024)),
        ("pullers", |r| r.pullers.to_string()),
    ];
    let label = |fields: &[Field], r: &RunRecord, always: &str| {
        let parts: Vec<String> = fields
            .iter()
            .filter(|(name, f)| *name == always || records.iter().any(|o| f(o) != f(records[0])))
            .map(|(name, f)| format!("{name}={}", f(r)))
            .collect();
        parts.join(" ")
    };
    records
        .iter()
        .map(|r| (label(&VARIANT, r, ""), label(&SCENARIO, r, "pullers")))
        .unzip()
}

/// Jain's fairness index per variant (bars) per scenario (groups), mean over
/// seeds, for the runs with more than one puller.
pub fn fairness_svg(records: &[RunRecord]) -> Result<String, String> {
    let mut svg = String::new();
    fairness(SVGBackend::with_string(&mut svg, SIZE), records)?;
    Ok(svg)
}

/// [`fairness_svg`] as a PNG, without text.
pub fn fairness_png(records: &[RunRecord]) -> Result<Vec<u8>, String> {
    let mut r = Raster::new(SIZE);
    fairness(&mut r, records)?;
    Ok(r.png())
}

fn fairness<DB: DrawingBackend>(backend: DB, records: &[RunRecord]) -> Result<(), String> {
    let shared: Vec<&RunRecord> = records.iter().filter(|r| r.pullers > 1).collect();
    let (variants, scenarios) = differing(&shared);
    let variants: Vec<String> = variants
        .into_iter()
        .zip(&shared)
        .map(|(l, r)| if l.is_empty() { r.variant_label() } else { l })
        .collect();
    // Variants and scenarios in run order (the plan's order).
    let mut vs: Vec<&String> = Vec::new();
    for v in &variants {
        if !vs.contains(&v) {
            vs.push(v);
        }
    }
    let mut ss: Vec<&String> = Vec::new();
    for s in &scenarios {
        if !ss.contains(&s) {
            ss.push(s);
        }
    }
    let mut cells: BTreeMap<(usize, usize), Vec<f64>> = BTreeMap::new();
    for ((r, v), s) in shared.iter().zip(&variants).zip(&scenarios) {
        let vi = vs.iter().position(|x| *x == v).unwrap_or(0);
        let si = ss.iter().position(|x| *x == s).unwrap_or(0);
        cells.entry((si, vi)).or_default().push(r.metrics.jain);
    }
    let n = ss.len().max(1);
    let root = backend.into_drawing_area();
    root.fill(&WHITE).map_err(|e| e.to_string())?;
    let caption = if shared.is_empty() {
        "Jain's fairness index (no run with several pullers)"
    } else {
        "Jain's fairness index of the pullers' goodputs"
    };
    let mut chart = ChartBuilder::on(&root)
        .caption(caption, ("sans-serif", 22))
        .margin(15)
        .x_label_area_size(40)
        .y_label_area_size(60)
        .build_cartesian_2d(-0.5..n as f64 - 0.5, 0.0..headroom(1.02, vs.len()))
        .map_err(|e| e.to_string())?;
    let names: Vec<String> = ss.iter().map(|s| s.to_string()).collect();
    let x_label = |x: &f64| {
        let i = x.round();
        if (x - i).abs() < 1e-6 && i >= 0.0 {
            names.get(i as usize).cloned().unwrap_or_default()
        } else {
            String::new()
        }
    };
    chart
        .configure_mesh()
        .disable_x_mesh()
        .x_labels(n * 10)
        .x_label_formatter(&x_label)
        .y_desc("Jain's index (mean over seeds)")
        .draw()
        .map_err(|e| e.to_string())?;
    let width = 0.8 / vs.len().max(1) as f64;
    for (vi, label) in vs.iter().enumerate() {
        let c = colour(vi);
        let bars: Vec<Rectangle<(f64, f64)>> = cells
            .iter()
            .filter(|((_, v), _)| *v == vi)
            .map(|((si, _), xs)| {
                let mean = xs.iter().sum::<f64>() / xs.len() as f64;
                let x0 = *si as f64 - 0.4 + vi as f64 * width;
                Rectangle::new([(x0, 0.0), (x0 + width * 0.9, mean)], c.filled())
            })
            .collect();
        chart
            .draw_series(bars)
            .map_err(|e| e.to_string())?
            .label(label.as_str())
            .legend(move |(x, y)| Rectangle::new([(x, y - 5), (x + 15, y + 5)], c.filled()));
    }
    chart
        .configure_series_labels()
        .position(SeriesLabelPosition::UpperRight)
        .background_style(WHITE.mix(0.9))
        .border_style(BLACK)
        .draw()
        .map_err(|e| e.to_string())?;
    root.present().map_err(|e| e.to_string())
}

/// An RGB pixel buffer that plotters draws into; text is left out (no font needed).
pub struct Raster {
    w: u32,
    h: u32,
    rgb: Vec<u8>,
}

impl Raster {
    /// A white canvas.
    pub fn new((w, h): (u32, u32)) -> Self {
        Raster {
            w,
            h,
            rgb: vec![255; w as usize * h as usize * 3],
        }
    }

    /// The canvas as a PNG (8-bit RGB; one fixed-Huffman deflate block whose
    /// matches repeat the previous pixel or the row above).
    pub fn png(&self) -> Vec<u8> {
        let mut raw = Vec::with_capacity((self.w as usize * 3 + 1) * self.h as usize);
        for row in self.rgb.chunks(self.w as usize * 3) {
            raw.push(0);
            raw.extend_from_slice(row);
        }
        let stride = self.w as usize * 3 + 1;
        let mut z = vec![0x78, 0x01];
        z.extend_from_slice(&deflate(&raw, stride));
        z.extend_from_slice(&adler32(&raw).to_be_bytes());
        let mut ihdr = Vec::new();
        ihdr.extend_from_slice(&self.w.to_be_bytes());
        ihdr.extend_from_slice(&self.h.to_be_bytes());
        ihdr.extend_from_slice(&[8, 2, 0, 0, 0]);
        let mut out = b"\x89PNG\r\n\x1a\n".to_vec();
        for (kind, data) in [(b"IHDR", &ihdr[..]), (b"IDAT", &z[..]), (b"IEND", &[][..])] {
            out.extend_from_slice(&(data.len() as u32).to_be_bytes());
            let start = out.len();
            out.extend_from_slice(kind);
            out.extend_from_slice(data);
            let crc = crc32(&out[start..]);
            out.extend_from_slice(&crc.to_be_bytes());
        }
        out
    }
}

const LEN_BASE: [u16; 29] = [
    3, 4, 5, 6, 7, 8, 9, 10, 11, 13, 15, 17, 19, 23, 27, 31, 35, 43, 51, 59, 67, 83, 99, 115, 131,
    163, 195, 227, 258,
];
const LEN_EXTRA: [u8; 29] = [
    0, 0, 0, 0, 0, 0, 0, 0, 1, 1, 1, 1, 2, 2, 2, 2, 3, 3, 3, 3, 4, 4, 4, 4, 5, 5, 5, 5, 0,
];
const DIST_BASE: [u16; 30] = [
    1, 2, 3, 4, 5, 7, 9, 13, 17, 25, 33, 49, 65, 97, 129, 193, 257, 385, 513, 769, 1025, 1537,
    2049, 3073, 4097, 6145, 8193, 12289, 16385, 24577,
];
const DIST_EXTRA: [u8; 30] = [
    0, 0, 0, 0, 1, 1, 2, 2, 3, 3, 4, 4, 5, 5, 6, 6, 7, 7, 8, 8, 9, 9, 10, 10, 11, 11, 12, 12, 13,
    13,
];

/// Bits into bytes, least significant first, as deflate packs them.
#[derive(Default)]
struct Bits {
    out: Vec<u8>,
    acc: u64,
    n: u32,
}

impl Bits {
    fn put(&mut self, bits: u32, n: u32) {
        self.acc |= u64::from(bits) << self.n;
        self.n += n;
        while self.n >= 8 {
            self.out.push(self.acc as u8);
            self.acc >>= 8;
            self.n -= 8;
        }
    }

    /// A Huffman code, sent most significant bit first.
    fn code(&mut self, code: u32, n: u32) {
        self.put(code.reverse_bits() >> (32 - n), n);
    }

    fn literal(&mut self, sym: u16) {
        let s = u32::from(sym);
        match sym {
            0..=143 => self.code(0x30 + s, 8),
            144..=255 => self.code(0x190 + s - 144, 9),
            256..=279 => self.code(s - 256, 7),
            _ => self.code(0xc0 + s - 280, 8),
        }
    }

    fn finish(mut self) -> Vec<u8> {
        if self.n > 0 {
            self.out.push(self.acc as u8);
        }
        self.out
    }
}

/// The slot of `v` in a deflate base table: the last base not above it.
fn slot(bases: &[u16], v: usize) -> usize {
    bases
        .iter()
        .rposition(|&b| usize::from(b) <= v)
        .unwrap_or(0)
}

/// `data` as one final deflate block with the fixed Huffman codes. Matches are
/// looked for only 3 bytes back (the previous pixel) and `stride` back (the
/// row above), which is where plots repeat themselves.
fn deflate(data: &[u8], stride: usize) -> Vec<u8> {
    let mut b = Bits::default();
    b.put(1, 1); // final block
    b.put(1, 2); // fixed Huffman codes
    let run = |i: usize, d: usize| {
        if d > i || d > 32_768 {
            return 0;
        }
        data[i..]
            .iter()
            .zip(&data[i - d..])
            .take(258)
            .take_while(|(a, b)| a == b)
            .count()
    };
    let mut i = 0;
    while i < data.len() {
        let (len, dist) = [3, stride]
            .into_iter()
            .map(|d| (run(i, d), d))
            .max()
            .unwrap_or((0, 0));
        if len < 3 {
            b.literal(u16::from(data[i]));
            i += 1;
            continue;
        }
        let l = slot(&LEN_BASE, len);
        b.literal(257 + l as u16);
        b.put(
            (len - usize::from(LEN_BASE[l])) as u32,
            u32::from(LEN_EXTRA[l]),
        );
        let d = slot(&DIST_BASE, dist);
        b.code(d as u32, 5);
        b.put(
            (dist - usize::from(DIST_BASE[d])) as u32,
            u32::from(DIST_EXTRA[d]),
        );
        i += len;
    }
    b.literal(256);
    b.finish()
}

fn adler32(data: &[u8]) -> u32 {
    let (mut a, mut b) = (1u32, 0u32);
    for &x in data {
        a = (a + u32::from(x)) % 65_521;
        b = (b + a) % 65_521;
    }
    (b << 16) | a
}

fn crc32(data: &[u8]) -> u32 {
    let mut c = !0u32;
    for &x in data {
        c ^= u32::from(x);
        for _ in 0..8 {
            c = if c & 1 != 0 {
                0xedb8_8320 ^ (c >> 1)
            } else {
                c >> 1
            };
        }
    }
    !c
}

impl DrawingBackend for &mut Raster {
    type ErrorType = std::convert::Infallible;

    fn get_size(&self) -> (u32, u32) {
        (self.w, self.h)
    }

    fn ensure_prepared(&mut self) -> Result<(), DrawingErrorKind<Self::ErrorType>> {
        Ok(())
    }

    fn present(&mut self) -> Result<(), DrawingErrorKind<Self::ErrorType>> {
        Ok(())
    }

    fn draw_pixel(
        &mut self,
        (x, y): BackendCoord,
        c: BackendColor,
    ) -> Result<(), DrawingErrorKind<Self::ErrorType>> {
        if x < 0 || y < 0 || x >= self.w as i32 || y >= self.h as i32 {
            return Ok(());
        }
        let i = (y as usize * self.w as usize + x as usize) * 3;
        let a = c.alpha.clamp(0.0, 1.0);
        for (k, v) in [c.rgb.0, c.rgb.1, c.rgb.2].into_iter().enumerate() {
            let old = f64::from(self.rgb[i + k]);
            self.rgb[i + k] = (old * (1.0 - a) + f64::from(v) * a).round() as u8;
        }
        Ok(())
    }

    fn draw_text<TStyle: BackendTextStyle>(
        &mut self,
        _text: &str,
        _style: &TStyle,
        _pos: BackendCoord,
    ) -> Result<(), DrawingErrorKind<Self::ErrorType>> {
        Ok(())
    }
}
