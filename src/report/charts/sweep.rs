//! Sweep charts: a heatmap of a metric over two axes (the best cell outlined, infeasible
//! cells marked with the reason, out-of-memory ones with their GiB), and a Pareto chart of
//! two metrics (feasible and infeasible points, the non-dominated front drawn as a line).
//! The scaling chart is a [`super::lines::LineData`].
//! The sweep module prepares the data; this file only draws it.

use super::{Chart, Swatch};
use crate::report::ReportError;
use plotters::coord::Shift;
use plotters::prelude::*;
use plotters::style::text_anchor::{HPos, Pos, VPos};
use std::path::Path;

/// Heatmap data: `values[row][col]`, `None` for infeasible cells (with a short reason).
#[derive(Debug, Clone, PartialEq)]
pub struct HeatmapData {
    /// Title.
    pub title: String,
    /// Subtitle.
    pub subtitle: String,
    /// Column axis description.
    pub x_label: String,
    /// Row axis description.
    pub y_label: String,
    /// Metric description with unit (colour scale).
    pub metric_label: String,
    /// Column labels.
    pub columns: Vec<String>,
    /// Row labels.
    pub rows: Vec<String>,
    /// Cell values, or why the cell has none (one line per `\n`, e.g. "OOM\n569 GiB").
    pub cells: Vec<Vec<Result<f64, String>>>,
    /// The best feasible cell (row, column), outlined.
    pub best: Option<(usize, usize)>,
    /// Legend text of the best cell's outline, e.g. "best (highest)".
    pub best_label: String,
}

/// Pareto chart data: every point of two metrics, and the non-dominated front.
#[derive(Debug, Clone, PartialEq)]
pub struct ParetoData {
    /// Title.
    pub title: String,
    /// Subtitle.
    pub subtitle: String,
    /// x-axis description with unit (and which way is better).
    pub x_label: String,
    /// y-axis description with unit.
    pub y_label: String,
    /// Feasible points (x, y).
    pub feasible: Vec<(f64, f64)>,
    /// Infeasible points with metrics (e.g. plans that do not fit in memory).
    pub infeasible: Vec<(f64, f64)>,
    /// The non-dominated feasible points, in x order, with a short label each.
    pub front: Vec<(f64, f64, String)>,
}

const PALETTE: [RGBColor; 8] = [
    RGBColor(31, 119, 180),
    RGBColor(255, 127, 14),
    RGBColor(44, 160, 44),
    RGBColor(214, 39, 40),
    RGBColor(148, 103, 189),
    RGBColor(140, 86, 75),
    RGBColor(227, 119, 194),
    RGBColor(23, 190, 207),
];

/// Draws a heatmap (PNG or SVG by extension).
pub fn draw_heatmap(d: &HeatmapData, path: &Path) -> Result<(), ReportError> {
    super::draw_chart(d, path)
}

/// Draws a Pareto chart (PNG or SVG by extension).
pub fn draw_pareto(d: &ParetoData, path: &Path) -> Result<(), ReportError> {
    super::draw_chart(d, path)
}

/// Axis range with a margin, never empty.
fn span(v: impl Iterator<Item = f64>) -> (f64, f64) {
    let (mut lo, mut hi) = (f64::INFINITY, f64::NEG_INFINITY);
    for x in v.filter(|x| x.is_finite()) {
        lo = lo.min(x);
        hi = hi.max(x);
    }
    if !lo.is_finite() {
        return (0.0, 1.0);
    }
    let pad = if hi > lo {
        (hi - lo) * 0.06
    } else {
        lo.abs().max(1.0) * 0.05
    };
    (lo - pad, hi + pad)
}

impl Chart for ParetoData {
    fn size(&self) -> (u32, u32) {
        (super::WIDTH, 700)
    }

    fn render<DB: DrawingBackend>(
        &self,
        root: &DrawingArea<DB, Shift>,
    ) -> Result<(), DrawingAreaErrorKind<DB::ErrorType>> {
        let body = super::header(root, &self.title, &self.subtitle)?;
        let (plot, side) = body.split_horizontally(super::WIDTH - 300);
        let all = || self.feasible.iter().chain(&self.infeasible);
        let (x0, x1) = span(all().map(|p| p.0));
        let (y0, y1) = span(all().map(|p| p.1));
        let mut chart = ChartBuilder::on(&plot)
            .margin(20)
            .x_label_area_size(60)
            .y_label_area_size(90)
            .build_cartesian_2d(x0..x1, y0..y1)?;
        chart
            .configure_mesh()
            .x_desc(self.x_label.as_str())
            .y_desc(self.y_label.as_str())
            .axis_desc_style(super::font(super::LABEL_PX))
            .label_style(super::font(super::TICK_PX))
            .x_label_formatter(&|x| super::short(*x))
            .y_label_formatter(&|y| super::short(*y))
            .draw()?;
        let grey = RGBColor(190, 190, 190);
        let blue = PALETTE[0];
        let red = PALETTE[3];
        chart.draw_series(self.infeasible.iter().map(|&p| Cross::new(p, 5, grey.stroke_width(2))))?;
        chart.draw_series(self.feasible.iter().map(|&p| Circle::new(p, 4, blue.mix(0.6).filled())))?;
        let line: Vec<(f64, f64)> = self.front.iter().map(|p| (p.0, p.1)).collect();
        chart.draw_series(LineSeries::new(line.clone(), red.stroke_width(3)))?;
        chart.draw_series(line.iter().map(|&p| Circle::new(p, 7, red.stroke_width(3))))?;
        let label_style = super::font(super::TICK_PX - 3).pos(Pos::new(HPos::Left, VPos::Bottom));
        for p in self.front.iter().take(12) {
            chart.draw_series(std::iter::once(Text::new(p.2.clone(), (p.0, p.1), label_style.clone())))?;
        }
        let entries = vec![
            (format!("feasible ({})", self.feasible.len()), Swatch::Fill(blue)),
            (format!("infeasible ({})", self.infeasible.len()), Swatch::Fill(grey)),
            (format!("Pareto front ({})", self.front.len()), Swatch::Line(red)),
        ];
        super::legend(&side, "Points", &entries)
    }
}

/// Outline of the best heatmap cell.
const BEST: RGBColor = RGBColor(230, 85, 13);

/// Colour of a value in [0, 1] on a white-to-blue scale.
fn shade(t: f64) -> RGBColor {
    let t = t.clamp(0.0, 1.0);
    let lerp = |a: f64, b: f64| (a + (b - a) * t).round() as u8;
    RGBColor(lerp(239.0, 8.0), lerp(243.0, 69.0), lerp(255.0, 148.0))
}

impl Chart for HeatmapData {
    fn size(&self) -> (u32, u32) {
        (super::WIDTH, 160 + 60 * self.rows.len().max(1) as u32 + 60)
    }

    fn render<DB: DrawingBackend>(
        &self,
        root: &DrawingArea<DB, Shift>,
    ) -> Result<(), DrawingAreaErrorKind<DB::ErrorType>> {
        let body = super::header(root, &self.title, &self.subtitle)?;
        let (plot, side) = body.split_horizontally(super::WIDTH - 300);
        let (nc, nr) = (self.columns.len().max(1), self.rows.len().max(1));
        let vals: Vec<f64> = self
            .cells
            .iter()
            .flatten()
            .filter_map(|c| c.as_ref().ok().copied())
            .collect();
        let lo = vals.iter().copied().fold(f64::INFINITY, f64::min);
        let hi = vals.iter().copied().fold(f64::NEG_INFINITY, f64::max);
        let mut chart = ChartBuilder::on(&plot)
            .margin(20)
            .x_label_area_size(60)
            .y_label_area_size(110)
            .build_cartesian_2d(0.0..nc as f64, 0.0..nr as f64)?;
        let cols = self.columns.clone();
        let rows = self.rows.clone();
        chart
            .configure_mesh()
            .disable_mesh()
            .x_desc(self.x_label.as_str())
            .y_desc(self.y_label.as_str())
            .axis_desc_style(super::font(super::LABEL_PX))
            .label_style(super::font(super::TICK_PX))
            .x_labels(nc * 2 + 1)
            .y_labels(nr * 2 + 1)
            .x_label_formatter(&move |x| {
                let i = (*x - 0.5).round();
                if (x - 0.5 - i).abs() < 1e-6 && i >= 0.0 && (i as usize) < cols.len() {
                    cols[i as usize].clone()
                } else {
                    String::new()
                }
            })
            .y_label_formatter(&move |y| {
                let i = (*y - 0.5).round();
                if (y - 0.5 - i).abs() < 1e-6 && i >= 0.0 && (i as usize) < rows.len() {
                    rows[i as usize].clone()
                } else {
                    String::new()
                }
            })
            .draw()?;
        let centre = Pos::new(HPos::Center, VPos::Center);
        for (r, row) in self.cells.iter().enumerate() {
            for (c, cell) in row.iter().enumerate() {
                let (x, y) = (c as f64, r as f64);
                let (fill, text, dark) = match cell {
                    Ok(v) => {
                        let t = if hi > lo { (v - lo) / (hi - lo) } else { 1.0 };
                        (shade(t), super::short(*v), t > 0.55)
                    }
                    Err(reason) => (RGBColor(200, 200, 200), reason.clone(), false),
                };
                chart.draw_series(std::iter::once(Rectangle::new(
                    [(x, y), (x + 1.0, y + 1.0)],
                    fill.filled(),
                )))?;
                chart.draw_series(std::iter::once(Rectangle::new(
                    [(x, y), (x + 1.0, y + 1.0)],
                    WHITE.stroke_width(2),
                )))?;
                let text = if self.best == Some((r, c)) {
                    format!("{text}\nbest")
                } else {
                    text
                };
                let lines: Vec<&str> = text.lines().collect();
                let colour = if dark { &WHITE } else { &BLACK };
                let (cx, cy) = chart.backend_coord(&(x + 0.5, y + 0.5));
                let step = super::TICK_PX as i32 + 4;
                let top = cy - step * (lines.len() as i32 - 1) / 2;
                for (i, l) in lines.iter().enumerate() {
                    let style = if self.best == Some((r, c)) && i == 0 {
                        super::bold(super::TICK_PX)
                    } else {
                        super::font(super::TICK_PX)
                    };
                    root.draw(&Text::new(
                        l.to_string(),
                        (cx, top + step * i as i32),
                        style.pos(centre).color(colour),
                    ))?;
                }
            }
        }
        if let Some((r, c)) = self.best {
            let (x, y) = (c as f64, r as f64);
            chart.draw_series(std::iter::once(Rectangle::new(
                [(x + 0.03, y + 0.05), (x + 0.97, y + 0.95)],
                BEST.stroke_width(4),
            )))?;
        }
        let mut entries = vec![
            (
                format!("{} (low)", super::short(if lo.is_finite() { lo } else { 0.0 })),
                Swatch::Fill(shade(0.0)),
            ),
            (
                format!("{} (high)", super::short(if hi.is_finite() { hi } else { 0.0 })),
                Swatch::Fill(shade(1.0)),
            ),
            ("infeasible".to_string(), Swatch::Fill(RGBColor(200, 200, 200))),
        ];
        if self.best.is_some() {
            entries.push((self.best_label.clone(), Swatch::Outline(BEST)));
        }
        super::legend(&side, &self.metric_label, &entries)
    }
}
