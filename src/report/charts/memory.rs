//! Memory of the most loaded GPU: one horizontal stacked bar by consumer (largest first),
//! against a dashed line at the HBM capacity.

use super::{Chart, RowChart, Swatch};
use crate::report::ReportError;
use crate::simulation::RunResult;
use plotters::coord::Shift;
use plotters::element::DashedPathElement;
use plotters::prelude::*;
use plotters::style::text_anchor::{HPos, Pos, VPos};
use std::path::Path;

/// The memory chart's data, GiB.
#[derive(Debug, Clone, PartialEq)]
pub struct Data {
    /// Scenario name.
    pub scenario: String,
    /// Chart title (holds the scenario name and "fits" or "DOES NOT FIT").
    pub title: String,
    /// Line under the title: model, cluster and plan.
    pub subtitle: String,
    /// x-axis description, with the unit.
    pub x_label: String,
    /// Label of the bar, e.g. "stage 0".
    pub bar_label: String,
    /// Consumers, largest first: weights, gradients, optimizer states, activations, buffers.
    pub labels: Vec<String>,
    /// GiB of each consumer of `labels`, in that order.
    pub values_gib: Vec<f64>,
    /// Sum of the consumers, GiB.
    pub total_gib: f64,
    /// HBM capacity, GiB.
    pub capacity_gib: f64,
    /// Whether the total fits in HBM.
    pub fits: bool,
}

/// Fixed colour of a memory consumer.
fn colour(consumer: &str) -> RGBColor {
    match consumer {
        "weights" => RGBColor(31, 119, 180),
        "gradients" => RGBColor(255, 127, 14),
        "optimizer states" => RGBColor(44, 160, 44),
        "activations" => RGBColor(148, 103, 189),
        "buffers" => RGBColor(140, 86, 75),
        _ => RGBColor(127, 127, 127),
    }
}

const CAPACITY_COLOUR: RGBColor = RGBColor(214, 39, 40);

/// Prepares the chart's data from a run.
pub fn data(r: &RunResult) -> Data {
    let m = &r.memory;
    let consumers = m.largest_consumers();
    let verdict = if m.fits { "fits" } else { "DOES NOT FIT" };
    Data {
        scenario: r.name.clone(),
        title: format!(
            "{}: memory per GPU, {} of {} GiB, {verdict}",
            r.name,
            super::short(m.total_gib),
            super::short(m.capacity_gib)
        ),
        subtitle: format!(
            "{} on {} x {}, {}; most loaded GPU (pipeline stage {})",
            r.model, r.num_gpus, r.gpu, r.plan, m.stage
        ),
        x_label: "Memory per GPU (GiB)".into(),
        bar_label: format!("stage {}", m.stage),
        labels: consumers.iter().map(|(n, _)| n.to_string()).collect(),
        values_gib: consumers.iter().map(|(_, v)| *v).collect(),
        total_gib: m.total_gib,
        capacity_gib: m.capacity_gib,
        fits: m.fits,
    }
}

/// Draws the chart to `path` (`.png` or `.svg`).
pub fn draw(d: &Data, path: &Path) -> Result<(), ReportError> {
    super::draw_chart(d, path)
}

/// Legend column width, pixels.
const LEGEND_PX: u32 = 300;

impl Chart for Data {
    fn size(&self) -> (u32, u32) {
        (super::WIDTH, 440)
    }

    fn render<DB: DrawingBackend>(
        &self,
        root: &DrawingArea<DB, Shift>,
    ) -> Result<(), DrawingAreaErrorKind<DB::ErrorType>> {
        let body = super::header(root, &self.title, &self.subtitle)?;
        let (plot, side) = body.split_horizontally(super::WIDTH - LEGEND_PX);
        let labels = [self.bar_label.clone()];
        let x_max = self.total_gib.max(self.capacity_gib) * 1.15;
        let rc = RowChart {
            x_max,
            rows: &labels,
            label_px: super::text_px(&self.bar_label, super::TICK_PX) + 44,
            x_desc: &self.x_label,
            y_desc: "GPU",
        };
        let mut chart = rc.build(root, &plot)?;
        let (y, half) = (super::row_centre(0, 1), 0.22);
        let mut x = 0.0;
        for (c, &v) in self.labels.iter().zip(&self.values_gib) {
            if v > 0.0 {
                chart.draw_series(std::iter::once(Rectangle::new(
                    [(x, y - half), (x + v, y + half)],
                    colour(c).filled(),
                )))?;
            }
            x += v;
        }
        chart.draw_series(std::iter::once(Rectangle::new(
            [(0.0, y - half), (x, y + half)],
            BLACK.mix(0.5).stroke_width(1),
        )))?;
        let (px, py) = chart.backend_coord(&(x, y));
        root.draw(&Text::new(
            format!("{} GiB", super::short(self.total_gib)),
            (px + 6, py),
            super::font(super::TICK_PX).pos(Pos::new(HPos::Left, VPos::Center)),
        ))?;
        // capacity: dashed line over the full height, labelled at the top
        let cap = self.capacity_gib;
        chart.draw_series(std::iter::once(DashedPathElement::new(
            vec![(cap, 0.0), (cap, 1.0)],
            10,
            6,
            CAPACITY_COLOUR.stroke_width(3),
        )))?;
        let (cx, top) = chart.backend_coord(&(cap, 1.0));
        let text = format!("HBM capacity {} GiB", super::short(cap));
        // label left of the line, unless that would run into the y axis
        let (left, _) = chart.backend_coord(&(0.0, 1.0));
        let width = super::text_px(&text, super::TICK_PX) as i32;
        let (tx, hpos) = if cx - 8 - width > left {
            (cx - 8, HPos::Right)
        } else {
            (cx + 8, HPos::Left)
        };
        root.draw(&Text::new(
            text.as_str(),
            (tx, top + 6),
            super::bold(super::TICK_PX)
                .color(&CAPACITY_COLOUR)
                .pos(Pos::new(hpos, VPos::Top)),
        ))?;
        let mut entries: Vec<(String, Swatch)> = self
            .labels
            .iter()
            .zip(&self.values_gib)
            .map(|(c, v)| (format!("{c}  {} GiB", super::short(*v)), Swatch::Fill(colour(c))))
            .collect();
        entries.push((text, Swatch::Line(CAPACITY_COLOUR)));
        super::legend(&side.margin(14, 0, 0, 0), "Consumer", &entries)
    }
}

#[cfg(test)]
mod tests {
    use super::super::test_support::{check_files, scratch, tiny_run};
    use super::*;

    #[test]
    fn segments_sum_to_the_total() {
        let r = tiny_run();
        let d = data(r);
        assert!(d.title.contains(&r.name) && d.scenario == r.name);
        assert_eq!(d.labels.len(), 5);
        assert_eq!(d.values_gib.len(), 5);
        let mut sorted = d.labels.clone();
        sorted.sort();
        assert_eq!(
            sorted,
            vec!["activations", "buffers", "gradients", "optimizer states", "weights"]
        );
        assert!(d.values_gib.windows(2).all(|w| w[0] >= w[1]), "largest first");
        let sum: f64 = d.values_gib.iter().sum();
        assert!(
            (sum - d.total_gib).abs() <= 1e-9 * d.total_gib,
            "{sum} vs {}",
            d.total_gib
        );
        assert_eq!(d.total_gib, r.memory.total_gib);
        assert_eq!(d.capacity_gib, r.memory.capacity_gib);
        assert!(d.capacity_gib > 0.0);
        assert_eq!(d.fits, d.total_gib <= d.capacity_gib);
        assert!(d.title.contains(if d.fits { "fits" } else { "DOES NOT FIT" }));
        assert_eq!(d.x_label, "Memory per GPU (GiB)");
    }

    #[test]
    fn title_says_when_it_does_not_fit() {
        let mut r = tiny_run().clone();
        r.memory.capacity_gib = r.memory.total_gib / 2.0;
        r.memory.fits = false;
        let d = data(&r);
        assert!(!d.fits && d.title.contains("DOES NOT FIT"));
        let dir = scratch("memory-oom");
        draw(&d, &dir.join("memory.png")).expect("PNG draws");
        draw(&d, &dir.join("memory.svg")).expect("SVG draws");
        check_files(&dir, "memory", &d.title);
        let _ = std::fs::remove_dir_all(dir);
    }

    #[test]
    fn draws_png_and_svg() {
        let d = data(tiny_run());
        let dir = scratch("memory");
        draw(&d, &dir.join("memory.png")).expect("PNG draws");
        draw(&d, &dir.join("memory.svg")).expect("SVG draws");
        check_files(&dir, "memory", &d.title);
        let svg = std::fs::read_to_string(dir.join("memory.svg")).expect("SVG");
        assert!(svg.contains("HBM capacity") && svg.contains(&d.x_label));
        let _ = std::fs::remove_dir_all(dir);
    }
}
