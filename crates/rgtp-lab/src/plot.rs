//! SVG plots of a sweep: goodput against loss and completion-time CDFs, one
//! series per variant.

use std::collections::BTreeMap;

use plotters::prelude::*;
use plotters_backend::{BackendColor, BackendCoord, BackendTextStyle, DrawingErrorKind};

use crate::record::RunRecord;

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

type Series = BTreeMap<String, Vec<(f64, f64, f64, f64)>>;

/// Per variant, per loss: (loss, mean, min, max) goodput in MB/s over the other axes and seeds.
fn goodput_series(records: &[RunRecord]) -> Series {
    let mut by: BTreeMap<String, BTreeMap<u64, Vec<f64>>> = BTreeMap::new();
    for r in records {
        by.entry(r.variant_label())
            .or_default()
            .entry(r.loss.to_bits())
            .or_default()
            .push(r.metrics.goodput_mean_bps / 1e6);
    }
    by.into_iter()
        .map(|(k, m)| {
            let mut pts: Vec<(f64, f64, f64, f64)> = m
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

/// Goodput (MB/s, mean over seeds and other axes, bars min to max) against loss, one line per variant.
pub fn goodput_vs_loss_svg(records: &[RunRecord]) -> Result<String, String> {
    let mut svg = String::new();
    goodput_vs_loss(SVGBackend::with_string(&mut svg, SIZE), records)?;
    Ok(svg)
}

/// [`goodput_vs_loss_svg`] as a PNG, without text.
pub fn goodput_vs_loss_png(records: &[RunRecord]) -> Result<Vec<u8>, String> {
    let mut r = Raster::new(SIZE);
    goodput_vs_loss(&mut r, records)?;
    Ok(r.png())
}

/// [`completion_cdf_svg`] as a PNG, without text.
pub fn completion_cdf_png(records: &[RunRecord]) -> Result<Vec<u8>, String> {
    let mut r = Raster::new(SIZE);
    completion_cdf(&mut r, records)?;
    Ok(r.png())
}

fn goodput_vs_loss<DB: DrawingBackend>(backend: DB, records: &[RunRecord]) -> Result<(), String> {
    let series = goodput_series(records);
    let xmax = records.iter().map(|r| r.loss).fold(0.0, f64::max).max(0.01) * 1.05;
    let ymax = series
        .values()
        .flatten()
        .map(|p| p.3)
        .fold(0.0, f64::max)
        .max(1e-3)
        * 1.1;
    {
        let root = backend.into_drawing_area();
        root.fill(&WHITE).map_err(|e| e.to_string())?;
        let mut chart = ChartBuilder::on(&root)
            .caption("goodput vs loss", ("sans-serif", 22))
            .margin(15)
            .x_label_area_size(40)
            .y_label_area_size(60)
            .build_cartesian_2d(0.0..xmax, 0.0..ymax)
            .map_err(|e| e.to_string())?;
        chart
            .configure_mesh()
            .x_desc("loss")
            .y_desc("goodput (MB/s)")
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
    let mut by: BTreeMap<String, Vec<f64>> = BTreeMap::new();
    for r in records {
        by.entry(r.variant_label())
            .or_default()
            .push(r.metrics.completion_s);
    }
    for v in by.values_mut() {
        v.sort_by(f64::total_cmp);
    }
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
            .background_style(WHITE.mix(0.8))
            .border_style(BLACK)
            .draw()
            .map_err(|e| e.to_string())?;
        root.present().map_err(|e| e.to_string())?;
    }
    Ok(())
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

    /// The canvas as a PNG (8-bit RGB, uncompressed deflate blocks).
    pub fn png(&self) -> Vec<u8> {
        let mut raw = Vec::with_capacity((self.w as usize * 3 + 1) * self.h as usize);
        for row in self.rgb.chunks(self.w as usize * 3) {
            raw.push(0);
            raw.extend_from_slice(row);
        }
        let mut z = vec![0x78, 0x01];
        let mut blocks = raw.chunks(65_535).peekable();
        while let Some(b) = blocks.next() {
            z.push(u8::from(blocks.peek().is_none()));
            let n = b.len() as u16;
            z.extend_from_slice(&n.to_le_bytes());
            z.extend_from_slice(&(!n).to_le_bytes());
            z.extend_from_slice(b);
        }
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
