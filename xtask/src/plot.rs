//! `docs/bench.svg`: the benchmark as a picture, drawn from the same rows
//! as the markdown tables. plotters' SVG backend without its font features
//! writes text as SVG `<text>` elements in a generic font family, so the
//! picture needs no font file and renders wherever SVG does.
//!
//! Panels: wall time and peak RSS per tool and job count on the corpus
//! (bars), and, when there is an entry-count series, peak RSS and wall
//! time against entry count (one line per tool).

use std::path::Path;

use anyhow::{Result, anyhow};
use plotters::coord::Shift;
use plotters::prelude::*;
use plotters::style::text_anchor::{HPos, Pos, VPos};

use crate::Row;
use crate::series::{self, TreeRows};

const FONT: &str = "sans-serif";

/// The width of one group of bars in x units. Integer x, because plotters
/// formats the labels of fixed key points only on integer axes.
const GROUP: i32 = 1000;

/// One colour per tool, the same in every panel.
fn colour(tool: &str) -> RGBColor {
    match tool {
        "repropack" => RGBColor(0x1f, 0x77, 0xb4),
        "repropack (baseline)" => RGBColor(0x9e, 0xc6, 0xe3),
        "mksquashfs" => RGBColor(0xff, 0x7f, 0x0e),
        "gensquashfs" => RGBColor(0x2c, 0xa0, 0x2c),
        _ => RGBColor(0x7f, 0x7f, 0x7f),
    }
}

/// A bar panel: `groups` along x (job counts), one bar per tool in each.
struct Bars<'a> {
    title: String,
    y_desc: &'a str,
    groups: Vec<usize>,
    /// Per tool, its value in each group (`None`: not measured there).
    series: Vec<(&'static str, Vec<Option<f64>>)>,
}

/// A line panel: one line per tool through its (entries, value) points.
struct Lines<'a> {
    title: String,
    y_desc: &'a str,
    series: Vec<(&'static str, Vec<(f64, f64)>)>,
}

type Area<'a> = DrawingArea<SVGBackend<'a>, Shift>;

fn err(e: impl std::fmt::Display) -> anyhow::Error {
    anyhow!("drawing docs/bench.svg: {e}")
}

fn draw_bars(area: &Area, p: &Bars) -> Result<()> {
    let n = p.groups.len();
    let top = p
        .series
        .iter()
        .flat_map(|(_, v)| v.iter().flatten())
        .fold(0.0f64, |a, &b| a.max(b));
    // Headroom for the value labels and the legend above the bars.
    let y_max = if top > 0.0 { top * 1.4 } else { 1.0 };
    let centres: Vec<i32> = (0..n as i32).map(|g| g * GROUP + GROUP / 2).collect();
    let mut chart = ChartBuilder::on(area)
        .caption(&p.title, (FONT, 18))
        .margin(12)
        .x_label_area_size(36)
        .y_label_area_size(56)
        .build_cartesian_2d((0..n as i32 * GROUP).with_key_points(centres), 0.0..y_max)
        .map_err(err)?;
    let groups = p.groups.clone();
    chart
        .configure_mesh()
        .disable_x_mesh()
        .light_line_style(TRANSPARENT)
        .x_desc("jobs")
        .y_desc(p.y_desc)
        .x_label_formatter(&|x| {
            let g = (*x / GROUP) as usize;
            groups.get(g).map_or(String::new(), |j| j.to_string())
        })
        .label_style((FONT, 13))
        .draw()
        .map_err(err)?;
    let k = p.series.len().max(1) as i32;
    let width = GROUP * 8 / 10 / k;
    for (i, (tool, values)) in p.series.iter().enumerate() {
        let c = colour(tool);
        let left = |g: usize| g as i32 * GROUP + GROUP / 10 + i as i32 * width;
        let bars: Vec<(usize, f64)> = values
            .iter()
            .enumerate()
            .filter_map(|(g, v)| v.map(|v| (g, v)))
            .collect();
        chart
            .draw_series(bars.iter().map(|&(g, v)| {
                Rectangle::new([(left(g), 0.0), (left(g) + width * 9 / 10, v)], c.filled())
            }))
            .map_err(err)?
            .label(*tool)
            .legend(move |(x, y)| Rectangle::new([(x, y - 5), (x + 12, y + 5)], c.filled()));
        chart
            .draw_series(bars.iter().map(|&(g, v)| {
                Text::new(
                    label(v),
                    (left(g) + width * 9 / 20, v),
                    TextStyle::from((FONT, 11).into_font())
                        .pos(Pos::new(HPos::Center, VPos::Bottom)),
                )
            }))
            .map_err(err)?;
    }
    chart
        .configure_series_labels()
        .position(SeriesLabelPosition::UpperRight)
        .background_style(WHITE.mix(0.85))
        .border_style(BLACK.mix(0.4))
        .label_font((FONT, 12))
        .draw()
        .map_err(err)?;
    Ok(())
}

/// A value printed above its bar: two significant digits or more.
fn label(v: f64) -> String {
    if v >= 100.0 {
        format!("{v:.0}")
    } else if v >= 10.0 {
        format!("{v:.1}")
    } else {
        format!("{v:.2}")
    }
}

/// An entry count as 20K, 1M, 1.5M.
fn entries_label(x: f64) -> String {
    if x >= 1e6 {
        format!("{}M", trim(x / 1e6))
    } else if x >= 1e3 {
        format!("{}K", trim(x / 1e3))
    } else {
        format!("{x:.0}")
    }
}

fn trim(v: f64) -> String {
    let s = format!("{v:.1}");
    s.strip_suffix(".0").map_or(s.clone(), str::to_string)
}

fn draw_lines(area: &Area, p: &Lines) -> Result<()> {
    let points = || p.series.iter().flat_map(|(_, v)| v.iter());
    let x_max = points().fold(0.0f64, |a, &(x, _)| a.max(x));
    let y_max = points().fold(0.0f64, |a, &(_, y)| a.max(y));
    let (x_max, y_max) = (x_max.max(1.0) * 1.05, y_max.max(1e-3) * 1.3);
    let mut chart = ChartBuilder::on(area)
        .caption(&p.title, (FONT, 18))
        .margin(12)
        .x_label_area_size(36)
        .y_label_area_size(56)
        .build_cartesian_2d(0.0..x_max, 0.0..y_max)
        .map_err(err)?;
    chart
        .configure_mesh()
        .light_line_style(TRANSPARENT)
        .x_desc("entries")
        .y_desc(p.y_desc)
        .x_label_formatter(&|x| entries_label(*x))
        .x_labels(6)
        .label_style((FONT, 13))
        .draw()
        .map_err(err)?;
    for (tool, pts) in &p.series {
        let c = colour(tool);
        chart
            .draw_series(LineSeries::new(pts.iter().copied(), c.stroke_width(2)))
            .map_err(err)?
            .label(*tool)
            .legend(move |(x, y)| PathElement::new([(x, y), (x + 14, y)], c.stroke_width(2)));
        chart
            .draw_series(pts.iter().map(|&p| Circle::new(p, 4, c.filled())))
            .map_err(err)?;
    }
    chart
        .configure_series_labels()
        .position(SeriesLabelPosition::UpperLeft)
        .background_style(WHITE.mix(0.85))
        .border_style(BLACK.mix(0.4))
        .label_font((FONT, 12))
        .draw()
        .map_err(err)?;
    Ok(())
}

/// The bars of `value` per tool and job count.
fn corpus_bars<'a>(
    rows: &[Row],
    title: String,
    y_desc: &'a str,
    value: fn(&Row) -> f64,
) -> Bars<'a> {
    let mut groups: Vec<usize> = rows.iter().map(|r| r.jobs).collect();
    groups.sort();
    groups.dedup();
    let mut series: Vec<(&'static str, Vec<Option<f64>>)> = Vec::new();
    for r in rows {
        if !series.iter().any(|(t, _)| *t == r.tool) {
            let values = groups
                .iter()
                .map(|&j| {
                    rows.iter()
                        .find(|x| x.tool == r.tool && x.jobs == j)
                        .map(value)
                })
                .collect();
            series.push((r.tool, values));
        }
    }
    Bars {
        title,
        y_desc,
        groups,
        series,
    }
}

/// The lines of `value` against entry count per tool.
fn series_lines<'a>(
    trees: &[TreeRows],
    title: String,
    y_desc: &'a str,
    value: fn(&Row) -> f64,
) -> Lines<'a> {
    let series = series::tools(trees)
        .into_iter()
        .map(|tool| {
            let pts = trees
                .iter()
                .filter_map(|t| {
                    let r = t.rows.iter().find(|r| r.tool == tool)?;
                    Some((t.entries as f64, value(r)))
                })
                .collect();
            (tool, pts)
        })
        .collect();
    Lines {
        title,
        y_desc,
        series,
    }
}

/// Writes the picture of `rows` (the corpus) and `trees` (the series) to
/// `path`. `corpus` names the corpus in the titles.
pub fn write(path: &Path, corpus: &str, rows: &[Row], trees: &[TreeRows]) -> Result<()> {
    let height = if trees.is_empty() { 420 } else { 840 };
    let root = SVGBackend::new(path, (1200, height)).into_drawing_area();
    root.fill(&WHITE).map_err(err)?;
    let (top, bottom) = if trees.is_empty() {
        (root.clone(), None)
    } else {
        let (t, b) = root.split_vertically(420);
        (t, Some(b))
    };
    let (a, b) = top.split_horizontally(600);
    draw_bars(
        &a,
        &corpus_bars(
            rows,
            format!("Wall time, {corpus}"),
            "wall s (median)",
            |r| r.wall.as_secs_f64(),
        ),
    )?;
    draw_bars(
        &b,
        &corpus_bars(rows, format!("Peak RSS, {corpus}"), "peak RSS MiB", |r| {
            r.rss_kib as f64 / 1024.0
        }),
    )?;
    if let Some(bottom) = bottom {
        let jobs = trees
            .first()
            .and_then(|t| t.rows.first())
            .map_or(0, |r| r.jobs);
        let (c, d) = bottom.split_horizontally(600);
        draw_lines(
            &c,
            &series_lines(
                trees,
                format!("Peak RSS, generated trees, {jobs} jobs"),
                "peak RSS MiB",
                |r| r.rss_kib as f64 / 1024.0,
            ),
        )?;
        draw_lines(
            &d,
            &series_lines(
                trees,
                format!("Wall time, generated trees, {jobs} jobs"),
                "wall s (median)",
                |r| r.wall.as_secs_f64(),
            ),
        )?;
    }
    root.present().map_err(err)?;
    Ok(())
}
