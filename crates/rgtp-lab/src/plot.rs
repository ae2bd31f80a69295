//! SVG plots of a sweep: goodput against loss and completion-time CDFs, one
//! series per variant.

use std::collections::BTreeMap;

use plotters::prelude::*;

use crate::sweep::RunRecord;

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
    let series = goodput_series(records);
    let xmax = records.iter().map(|r| r.loss).fold(0.0, f64::max).max(0.01) * 1.05;
    let ymax = series
        .values()
        .flatten()
        .map(|p| p.3)
        .fold(0.0, f64::max)
        .max(1e-3)
        * 1.1;
    let mut svg = String::new();
    {
        let root = SVGBackend::with_string(&mut svg, SIZE).into_drawing_area();
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
    Ok(svg)
}

/// Empirical CDF of the completion time (seconds) per variant.
pub fn completion_cdf_svg(records: &[RunRecord]) -> Result<String, String> {
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
    let mut svg = String::new();
    {
        let root = SVGBackend::with_string(&mut svg, SIZE).into_drawing_area();
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
    Ok(svg)
}
