//! SVG charts (plotters' SVG backend): one horizontal bar chart per
//! metric, the key-exchange seeds' comparison and the loss sweep. Each
//! chart is rendered to a string, so the HTML page can inline it and
//! `--charts DIR` can write it to a file.

use std::path::{Path, PathBuf};

use plotters::prelude::*;

use super::loss::LossPoint;
use super::report::Report;
use super::seeds::SeedRow;
use super::{BenchError, Implementation};

/// One rendered chart: a file stem and its SVG text.
#[derive(Debug, Clone)]
pub struct Chart {
    /// File name without `.svg`.
    pub name: String,
    /// A one-line title (the HTML page's caption).
    pub title: String,
    /// The SVG document.
    pub svg: String,
}

fn chart_err<E: std::fmt::Debug>(e: E) -> BenchError {
    format!("chart: {e:?}").into()
}

fn color(implementation: Implementation) -> RGBColor {
    match implementation {
        Implementation::Akex => RGBColor(40, 100, 180),
        Implementation::Rustls => RGBColor(200, 120, 40),
        Implementation::Openssl => RGBColor(120, 60, 150),
    }
}

/// A horizontal bar chart of labelled values, one bar per label.
fn bars(title: &str, bars: &[(String, f64, RGBColor)]) -> Result<String, BenchError> {
    let mut svg = String::new();
    let height = 80 + 28 * bars.len() as u32;
    let max = bars.iter().map(|b| b.1).fold(0.0, f64::max).max(1e-9) * 1.15;
    {
        let root = SVGBackend::with_string(&mut svg, (900, height)).into_drawing_area();
        root.fill(&WHITE).map_err(chart_err)?;
        let mut chart = ChartBuilder::on(&root)
            .caption(title, ("sans-serif", 18))
            .margin(10)
            .x_label_area_size(30)
            .y_label_area_size(330)
            .build_cartesian_2d(0.0..max, (0..bars.len()).into_segmented())
            .map_err(chart_err)?;
        let labels: Vec<String> = bars.iter().map(|b| b.0.clone()).collect();
        chart
            .configure_mesh()
            .disable_y_mesh()
            .y_labels(bars.len())
            .y_label_formatter(&|v| label_of(&labels, v))
            .draw()
            .map_err(chart_err)?;
        chart
            .draw_series(
                bars.iter()
                    .enumerate()
                    .map(|(i, (_, v, c))| bar(i, *v, c.filled())),
            )
            .map_err(chart_err)?;
        root.present().map_err(chart_err)?;
    }
    Ok(svg)
}

/// One horizontal bar in row `i` of a segmented axis, with a small gap.
fn bar(i: usize, value: f64, style: ShapeStyle) -> Rectangle<(f64, SegmentValue<usize>)> {
    let mut r = Rectangle::new(
        [
            (0.0, SegmentValue::Exact(i)),
            (value, SegmentValue::Exact(i + 1)),
        ],
        style,
    );
    r.set_margin(3, 3, 0, 0);
    r
}

fn label_of(labels: &[String], v: &SegmentValue<usize>) -> String {
    match v {
        SegmentValue::CenterOf(i) => labels.get(*i).cloned().unwrap_or_default(),
        _ => String::new(),
    }
}

/// Every chart of `report`: one per metric, then the seeds' comparison
/// and the loss sweep when the run has them.
pub fn render(report: &Report) -> Result<Vec<Chart>, BenchError> {
    let mut charts = Vec::new();
    let protocols = report.protocols();
    for (metric, unit) in report.metrics() {
        let rows: Vec<(String, f64, RGBColor)> = protocols
            .iter()
            .filter_map(|p| {
                let r = report
                    .results
                    .iter()
                    .find(|r| &r.protocol == p && r.metric == metric)?;
                Some((p.clone(), r.value, color(r.implementation)))
            })
            .collect();
        if rows.is_empty() {
            continue;
        }
        let title = format!("{metric} ({unit})");
        charts.push(Chart {
            name: metric.replace('.', "_"),
            svg: bars(&title, &rows)?,
            title,
        });
    }
    let seeds = super::seeds::rows(report);
    if seeds.len() >= 2 {
        charts.push(seeds_chart(&seeds)?);
    }
    if !report.loss_sweep.is_empty() {
        charts.push(loss_chart(&report.loss_sweep)?);
    }
    Ok(charts)
}

/// Writes every chart as `<name>.svg` into `dir`; returns the files.
pub fn write(report: &Report, dir: &Path) -> Result<Vec<PathBuf>, BenchError> {
    std::fs::create_dir_all(dir)?;
    let mut written = Vec::new();
    for chart in render(report)? {
        let file = dir.join(format!("{}.svg", chart.name));
        std::fs::write(&file, chart.svg)?;
        written.push(file);
    }
    Ok(written)
}

/// The seeds' comparison: CPU per handshake and bytes on the wire, side
/// by side, one bar per seed.
fn seeds_chart(rows: &[SeedRow]) -> Result<Chart, BenchError> {
    let title =
        "Key-exchange seeds: CPU per handshake (both ends, in memory) and bytes on the wire";
    let mut svg = String::new();
    let height = 110 + 34 * rows.len() as u32;
    {
        let root = SVGBackend::with_string(&mut svg, (1100, height)).into_drawing_area();
        root.fill(&WHITE).map_err(chart_err)?;
        let root = root.titled(title, ("sans-serif", 18)).map_err(chart_err)?;
        let (left, right) = root.split_horizontally(700);
        let labels: Vec<String> = rows.iter().map(|r| r.label.clone()).collect();
        let panels: [(&DrawingArea<_, _>, &str, Vec<f64>, u32, RGBColor); 2] = [
            (
                &left,
                "CPU µs per handshake",
                rows.iter().map(|r| r.cpu_us.unwrap_or(0.0)).collect(),
                330,
                RGBColor(40, 100, 180),
            ),
            (
                &right,
                "bytes on the wire",
                rows.iter().map(|r| r.wire_bytes.unwrap_or(0.0)).collect(),
                10,
                RGBColor(60, 150, 90),
            ),
        ];
        for (area, caption, values, label_width, fill) in panels {
            let max = values.iter().copied().fold(0.0, f64::max).max(1.0) * 1.15;
            let mut chart = ChartBuilder::on(area)
                .caption(caption, ("sans-serif", 15))
                .margin(10)
                .x_label_area_size(30)
                .y_label_area_size(label_width)
                .build_cartesian_2d(0.0..max, (0..rows.len()).into_segmented())
                .map_err(chart_err)?;
            let labels = labels.clone();
            let show = label_width > 100;
            chart
                .configure_mesh()
                .disable_y_mesh()
                .y_labels(rows.len())
                .y_label_formatter(&move |v| {
                    if show {
                        label_of(&labels, v)
                    } else {
                        String::new()
                    }
                })
                .x_labels(5)
                .draw()
                .map_err(chart_err)?;
            chart
                .draw_series(
                    values
                        .iter()
                        .enumerate()
                        .map(|(i, v)| bar(i, *v, fill.filled())),
                )
                .map_err(chart_err)?;
        }
        root.present().map_err(chart_err)?;
    }
    Ok(Chart {
        name: "seeds".into(),
        title: title.into(),
        svg,
    })
}

/// Completion time against loss: p50 (left) and p99 (right), one line
/// per protocol.
fn loss_chart(points: &[LossPoint]) -> Result<Chart, BenchError> {
    let rtt = points.first().map_or(0.0, |p| p.rtt_ms);
    let title = format!("Handshake completion time vs packet loss (UDP, {rtt} ms added RTT)");
    let mut protocols: Vec<&str> = Vec::new();
    for p in points {
        if !protocols.contains(&p.protocol.as_str()) {
            protocols.push(&p.protocol);
        }
    }
    let palette = [
        RGBColor(40, 100, 180),
        RGBColor(200, 120, 40),
        RGBColor(60, 150, 90),
        RGBColor(150, 50, 120),
        RGBColor(90, 90, 90),
    ];
    let max_loss = points
        .iter()
        .map(|p| p.loss_percent)
        .fold(0.0, f64::max)
        .max(1.0);
    let mut svg = String::new();
    {
        let root = SVGBackend::with_string(&mut svg, (1100, 480)).into_drawing_area();
        root.fill(&WHITE).map_err(chart_err)?;
        let root = root.titled(&title, ("sans-serif", 18)).map_err(chart_err)?;
        let (left, right) = root.split_horizontally(550);
        for (area, label, pick) in [(&left, "p50 (ms)", 0usize), (&right, "p99 (ms)", 1usize)] {
            let value = |p: &LossPoint| if pick == 0 { p.p50_ms } else { p.p99_ms };
            let max = points.iter().map(value).fold(0.0, f64::max).max(1.0) * 1.1;
            let mut chart = ChartBuilder::on(area)
                .caption(label, ("sans-serif", 15))
                .margin(12)
                .x_label_area_size(35)
                .y_label_area_size(55)
                .build_cartesian_2d(0.0..max_loss * 1.05, 0.0..max)
                .map_err(chart_err)?;
            chart
                .configure_mesh()
                .x_desc("loss per packet (%)")
                .y_desc("ms")
                .draw()
                .map_err(chart_err)?;
            for (i, protocol) in protocols.iter().enumerate() {
                let c = palette[i % palette.len()];
                let series: Vec<(f64, f64)> = points
                    .iter()
                    .filter(|p| p.protocol == *protocol)
                    .map(|p| (p.loss_percent, value(p)))
                    .collect();
                chart
                    .draw_series(LineSeries::new(series.clone(), c.stroke_width(2)))
                    .map_err(chart_err)?
                    .label(short_name(protocol))
                    .legend(move |(x, y)| {
                        PathElement::new(vec![(x, y), (x + 18, y)], c.stroke_width(2))
                    });
                chart
                    .draw_series(series.iter().map(|xy| Circle::new(*xy, 3, c.filled())))
                    .map_err(chart_err)?;
            }
            chart
                .configure_series_labels()
                .position(SeriesLabelPosition::UpperLeft)
                .background_style(WHITE.mix(0.85))
                .border_style(BLACK)
                .draw()
                .map_err(chart_err)?;
        }
        root.present().map_err(chart_err)?;
    }
    Ok(Chart {
        name: "loss_sweep".into(),
        title,
        svg,
    })
}

/// A readable short name for legends.
fn short_name(protocol: &str) -> String {
    protocol
        .replace("_25519_ChaChaPoly_BLAKE2s", "")
        .replace("-x25519-mlkem768-chachapoly-sha256", "")
}
