//! Where each pipeline stage's step time goes: one horizontal stacked bar per stage plus
//! the stage mean, segments in the breakdown's exclusive categories (so each bar's length
//! is the step time).

use super::{category_colour, Chart, RowChart, Swatch};
use crate::report::ReportError;
use crate::simulation::RunResult;
use plotters::coord::Shift;
use plotters::prelude::*;
use plotters::style::text_anchor::{HPos, Pos, VPos};
use std::path::Path;

/// One bar: a stage, or the mean over stages.
#[derive(Debug, Clone, PartialEq)]
pub struct Bar {
    /// "stage 0", "stage 1", ..., "mean".
    pub label: String,
    /// Time of each category of [`Data::categories`], in that order, in [`Data::unit`].
    pub segments: Vec<f64>,
}

impl Bar {
    /// Length of the bar (sum of its segments), in the chart unit.
    pub fn total(&self) -> f64 {
        self.segments.iter().sum()
    }
}

/// The breakdown chart's data, already in its display unit.
#[derive(Debug, Clone, PartialEq)]
pub struct Data {
    /// Scenario name.
    pub scenario: String,
    /// Chart title (holds the scenario name).
    pub title: String,
    /// Line under the title: model, cluster and plan.
    pub subtitle: String,
    /// Time unit of every value: "s" or "ms".
    pub unit: String,
    /// x-axis description, with the unit.
    pub x_label: String,
    /// Mean step time, in `unit`.
    pub step_time: f64,
    /// The exclusive categories, in stacking order (left to right).
    pub categories: Vec<String>,
    /// Bars, top to bottom: each stage in order, then the mean.
    pub bars: Vec<Bar>,
    /// Categories with non-zero time in some bar (the legend), in stacking order.
    pub legend: Vec<String>,
    /// Mean time of each legend category, in `unit` (shown in the legend).
    pub legend_values: Vec<f64>,
}

/// Prepares the chart's data from a run.
pub fn data(r: &RunResult) -> Data {
    let (unit, k) = super::time_unit(r.step_time_s);
    let categories: Vec<String> = r.breakdown.categories().iter().map(|(n, _)| n.to_string()).collect();
    let bar = |label: String, b: &crate::simulation::breakdown::Breakdown| Bar {
        label,
        segments: b.categories().iter().map(|(_, s)| s * k).collect(),
    };
    let mut bars: Vec<Bar> = r
        .breakdown_per_stage
        .iter()
        .enumerate()
        .map(|(i, b)| bar(super::stage_label(r, i), b))
        .collect();
    bars.push(bar("mean".into(), &r.breakdown));
    // a category is shown when it is more than a rounding error of the step anywhere
    let eps = 1e-9 * (r.step_time_s * k).abs();
    let mut legend = Vec::new();
    let mut legend_values = Vec::new();
    for (i, c) in categories.iter().enumerate() {
        if bars.iter().any(|b| b.segments[i] > eps) {
            legend.push(c.clone());
            legend_values.push(bars.last().map_or(0.0, |b| b.segments[i]));
        }
    }
    Data {
        scenario: r.name.clone(),
        title: format!("{}: time per step by pipeline stage", r.name),
        subtitle: format!(
            "{} on {} x {}, {}; step {} {unit}",
            r.model,
            r.num_gpus,
            r.gpu,
            r.plan,
            super::short(r.step_time_s * k)
        ),
        unit: unit.into(),
        x_label: format!("Time per step ({unit})"),
        step_time: r.step_time_s * k,
        categories,
        bars,
        legend,
        legend_values,
    }
}

/// Draws the chart to `path` (`.png` or `.svg`).
pub fn draw(d: &Data, path: &Path) -> Result<(), ReportError> {
    super::draw_chart(d, path)
}

/// Legend column width, pixels.
const LEGEND_PX: u32 = 330;

impl Data {
    fn row_px(&self) -> u32 {
        if self.bars.len() <= 20 {
            40
        } else {
            26
        }
    }
}

impl Chart for Data {
    fn size(&self) -> (u32, u32) {
        let h = 200 + self.bars.len() as u32 * self.row_px();
        (super::WIDTH, h.max(500))
    }

    fn render<DB: DrawingBackend>(
        &self,
        root: &DrawingArea<DB, Shift>,
    ) -> Result<(), DrawingAreaErrorKind<DB::ErrorType>> {
        let body = super::header(root, &self.title, &self.subtitle)?;
        let (plot, side) = body.split_horizontally(super::WIDTH - LEGEND_PX);
        let labels: Vec<String> = self.bars.iter().map(|b| b.label.clone()).collect();
        let longest = labels
            .iter()
            .map(|l| super::text_px(l, super::TICK_PX))
            .max()
            .unwrap_or(0);
        let x_max = self.bars.iter().map(Bar::total).fold(0.0, f64::max) * 1.12;
        let rows = RowChart {
            x_max,
            rows: &labels,
            label_px: longest + 44,
            x_desc: &self.x_label,
            y_desc: "Pipeline stage",
        };
        let mut chart = rows.build(root, &plot)?;
        let n = self.bars.len();
        let half = if n <= 20 { 0.36 } else { 0.4 };
        for (i, b) in self.bars.iter().enumerate() {
            let y = super::row_centre(i, n);
            let mut x = 0.0;
            for (c, &v) in self.categories.iter().zip(&b.segments) {
                if v > 0.0 {
                    let colour = category_colour(c);
                    chart.draw_series(std::iter::once(Rectangle::new(
                        [(x, y - half), (x + v, y + half)],
                        colour.filled(),
                    )))?;
                }
                x += v;
            }
            // outline and total at the end of the bar
            chart.draw_series(std::iter::once(Rectangle::new(
                [(0.0, y - half), (x, y + half)],
                BLACK.mix(0.5).stroke_width(1),
            )))?;
            let (px, py) = chart.backend_coord(&(x, y));
            root.draw(&Text::new(
                format!("{} {}", super::short(x), self.unit),
                (px + 6, py),
                super::font(super::TICK_PX).pos(Pos::new(HPos::Left, VPos::Center)),
            ))?;
        }
        // the mean bar is set apart from the stages by a line
        if n > 1 {
            let y = super::row_centre(n - 1, n) + 0.5;
            chart.draw_series(std::iter::once(PathElement::new(
                vec![(0.0, y), (x_max, y)],
                BLACK.mix(0.3).stroke_width(1),
            )))?;
        }
        let entries: Vec<(String, Swatch)> = self
            .legend
            .iter()
            .zip(&self.legend_values)
            .map(|(c, v)| {
                (
                    format!("{c}  {} {}", super::short(*v), self.unit),
                    Swatch::Fill(category_colour(c)),
                )
            })
            .collect();
        super::legend(&side.margin(14, 0, 0, 0), "Category (mean per step)", &entries)
    }
}

#[cfg(test)]
mod tests {
    use super::super::test_support::{check_files, scratch, tiny_run};
    use super::*;

    #[test]
    fn bars_are_stages_then_mean_and_sum_to_the_step() {
        let r = tiny_run();
        let d = data(r);
        assert_eq!(d.scenario, r.name);
        assert!(d.title.contains(&r.name));
        assert_eq!(d.bars.len(), r.breakdown_per_stage.len() + 1);
        assert_eq!(d.bars.len(), 5, "pp = 4 stages plus the mean");
        for (i, b) in d.bars[..4].iter().enumerate() {
            assert_eq!(b.label, format!("stage {i}"));
        }
        assert_eq!(d.bars[4].label, "mean");
        assert_eq!(d.categories.len(), r.breakdown.categories().len());
        let (unit, k) = crate::report::charts::time_unit(r.step_time_s);
        assert_eq!(d.unit, unit);
        assert!(d.x_label.contains(unit));
        assert!((d.step_time - r.step_time_s * k).abs() <= 1e-12 * d.step_time);
        for b in &d.bars {
            assert_eq!(b.segments.len(), d.categories.len());
            assert!(b.segments.iter().all(|&v| v >= 0.0));
            let rel = (b.total() - d.step_time).abs() / d.step_time;
            assert!(
                rel < 1e-6,
                "{} sums to {} vs step {} ({rel})",
                b.label,
                b.total(),
                d.step_time
            );
        }
        // the legend lists exactly the categories with time, in order
        assert!(d.legend.iter().any(|c| c == "forward") && d.legend.iter().any(|c| c == "backward"));
        assert!(d.legend.iter().any(|c| c == "pipeline bubble"), "pp = 4 has a bubble");
        assert!(
            !d.legend.iter().any(|c| c == "idle"),
            "pipelined runs report the bubble, not idle"
        );
        for (c, v) in d.legend.iter().zip(&d.legend_values) {
            let i = d
                .categories
                .iter()
                .position(|x| x == c)
                .expect("legend category exists");
            assert_eq!(*v, d.bars[4].segments[i]);
        }
        assert_eq!(d.legend.len(), d.legend_values.len());
    }

    #[test]
    fn draws_png_and_svg() {
        let d = data(tiny_run());
        let dir = scratch("breakdown");
        draw(&d, &dir.join("breakdown.png")).expect("PNG draws");
        draw(&d, &dir.join("breakdown.svg")).expect("SVG draws");
        check_files(&dir, "breakdown", &d.title);
        let svg = std::fs::read_to_string(dir.join("breakdown.svg")).expect("SVG");
        assert!(svg.contains(&d.x_label) && svg.contains("stage 3") && svg.contains("mean"));
        assert!(
            draw(&d, &dir.join("breakdown.gif")).is_err(),
            "unknown format is an error"
        );
        check_files(&dir, "breakdown", &d.title);
        let _ = std::fs::remove_dir_all(dir);
    }
}
