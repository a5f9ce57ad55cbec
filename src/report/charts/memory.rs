//! Memory per GPU by pipeline stage: one horizontal bar per stage, stacked by consumer
//! (in the most loaded stage's order, largest first), against a dashed line at the HBM
//! capacity; each bar is labelled with its total and its headroom (free GiB and share of
//! the capacity, or how far over it is), and the most loaded stage is marked. Results
//! without per-stage memory get the most loaded stage's bar only.

use super::{Chart, RowChart, Swatch};
use crate::report::ReportError;
use crate::simulation::RunResult;
use crate::workload::memory::MemoryBreakdown;
use plotters::coord::Shift;
use plotters::element::DashedPathElement;
use plotters::prelude::*;
use plotters::style::text_anchor::{HPos, Pos, VPos};
use std::path::Path;

/// Most stages drawn; more are subsampled evenly (first, last and most loaded kept).
pub const MAX_BARS: usize = 24;

/// Headroom below this share of the capacity is drawn as a warning (as in the summary).
pub const THIN_HEADROOM: f64 = crate::report::summary::HEADROOM_WARNING_FRACTION;

/// One stage's bar.
#[derive(Debug, Clone, PartialEq)]
pub struct Bar {
    /// Pipeline stage.
    pub stage: u32,
    /// Row label, e.g. "stage 3".
    pub label: String,
    /// GiB of each consumer of [`Data::labels`], in that order.
    pub values_gib: Vec<f64>,
    /// Sum of the consumers, GiB.
    pub total_gib: f64,
    /// HBM capacity of the stage's GPU, GiB.
    pub capacity_gib: f64,
    /// Label at the end of the bar: total and headroom, e.g. "71.2 GiB, 8.8 GiB free
    /// (11%)" or "95.0 GiB, 15.0 GiB OVER".
    pub note: String,
}

/// The memory chart's data, GiB.
#[derive(Debug, Clone, PartialEq)]
pub struct Data {
    /// Scenario name.
    pub scenario: String,
    /// Chart title (holds the scenario name and "fits" or "DOES NOT FIT").
    pub title: String,
    /// Lines under the title: model, cluster and plan; then the stages drawn.
    pub subtitle: String,
    /// x-axis description, with the unit.
    pub x_label: String,
    /// Consumers, largest first on the most loaded stage: weights, gradients, optimizer
    /// states, activations, buffers.
    pub labels: Vec<String>,
    /// GiB of each consumer of `labels` on the most loaded stage, in that order.
    pub values_gib: Vec<f64>,
    /// Bars, first stage at the top.
    pub bars: Vec<Bar>,
    /// Index in `bars` of the most loaded stage.
    pub most_loaded: usize,
    /// Pipeline stages in the run.
    pub stages_total: usize,
    /// Sum of the consumers on the most loaded stage, GiB.
    pub total_gib: f64,
    /// HBM capacity, GiB.
    pub capacity_gib: f64,
    /// Free memory on the most loaded stage, GiB (negative: over the capacity).
    pub headroom_gib: f64,
    /// Whether the most loaded stage fits in HBM.
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
/// Headroom between a bar and the capacity line.
const HEADROOM_COLOUR: RGBColor = RGBColor(199, 233, 192);
/// Thin headroom (under [`THIN_HEADROOM`] of the capacity).
const THIN_COLOUR: RGBColor = RGBColor(253, 208, 162);

/// GiB of `consumer` in `m`.
fn gib_of(m: &MemoryBreakdown, consumer: &str) -> f64 {
    match consumer {
        "weights" => m.weights_gib,
        "gradients" => m.gradients_gib,
        "optimizer states" => m.optimizer_gib,
        "activations" => m.activations_gib,
        _ => m.buffers_gib,
    }
}

/// "71.2 GiB, 8.8 GiB free (11%)", "79.0 GiB, 1.0 GiB free (1%): thin", "95.0 GiB, 15.0
/// GiB OVER".
pub fn headroom_note(total_gib: f64, capacity_gib: f64) -> String {
    let free = capacity_gib - total_gib;
    if free < 0.0 {
        format!("{total_gib:.1} GiB, {:.1} GiB OVER", -free)
    } else {
        let pct = if capacity_gib > 0.0 {
            100.0 * free / capacity_gib
        } else {
            0.0
        };
        let thin = if free < THIN_HEADROOM * capacity_gib {
            ": thin"
        } else {
            ""
        };
        format!("{total_gib:.1} GiB, {free:.1} GiB free ({pct:.0}%){thin}")
    }
}

/// `n` indices from `0..len` spread evenly, first and last included, plus `keep`.
fn spread_keeping(len: usize, n: usize, keep: usize) -> Vec<usize> {
    if len <= n {
        return (0..len).collect();
    }
    let mut v: Vec<usize> = (0..n).map(|i| (i * (len - 1) + (n - 1) / 2) / (n - 1).max(1)).collect();
    v.push(keep.min(len - 1));
    v.sort_unstable();
    v.dedup();
    v
}

/// Prepares the chart's data from a run.
pub fn data(r: &RunResult) -> Data {
    let m = &r.memory;
    let consumers = m.largest_consumers();
    let labels: Vec<String> = consumers.iter().map(|(n, _)| n.to_string()).collect();
    let stages: Vec<&MemoryBreakdown> = if r.memory_per_stage.is_empty() {
        vec![m]
    } else {
        r.memory_per_stage.iter().collect()
    };
    let loaded = stages.iter().position(|s| s.stage == m.stage).unwrap_or(0);
    let shown = spread_keeping(stages.len(), MAX_BARS, loaded);
    let bars: Vec<Bar> = shown
        .iter()
        .map(|&i| {
            let s = stages[i];
            let values_gib: Vec<f64> = labels.iter().map(|c| gib_of(s, c)).collect();
            Bar {
                stage: s.stage,
                label: super::stage_label(r, s.stage as usize),
                total_gib: s.total_gib,
                capacity_gib: s.capacity_gib,
                note: headroom_note(s.total_gib, s.capacity_gib),
                values_gib,
            }
        })
        .collect();
    let most_loaded = shown.iter().position(|&i| i == loaded).unwrap_or(0);
    let verdict = if m.fits { "fits" } else { "DOES NOT FIT" };
    let drawn = if shown.len() < stages.len() {
        format!("{} of {} pipeline stages drawn", shown.len(), stages.len())
    } else if stages.len() == 1 && r.memory_per_stage.is_empty() {
        "the most loaded pipeline stage (results without per-stage memory)".to_string()
    } else {
        format!("every pipeline stage ({})", stages.len())
    };
    Data {
        scenario: r.name.clone(),
        title: format!(
            "{}: memory per GPU, {} of {} GiB, {verdict}",
            r.name,
            super::short(m.total_gib),
            super::short(m.capacity_gib)
        ),
        subtitle: format!(
            "{} on {} x {}, {}\n{drawn}; most loaded: stage {} (outlined); bar ends: total and headroom",
            r.model, r.num_gpus, r.gpu, r.plan, m.stage
        ),
        x_label: "Memory per GPU (GiB)".into(),
        values_gib: consumers.iter().map(|(_, v)| *v).collect(),
        labels,
        bars,
        most_loaded,
        stages_total: stages.len(),
        total_gib: m.total_gib,
        capacity_gib: m.capacity_gib,
        headroom_gib: m.capacity_gib - m.total_gib,
        fits: m.fits,
    }
}

/// Draws the chart to `path` (`.png` or `.svg`).
pub fn draw(d: &Data, path: &Path) -> Result<(), ReportError> {
    super::draw_chart(d, path)
}

/// Legend column width, pixels.
const LEGEND_PX: u32 = 300;

impl Data {
    fn row_px(&self) -> u32 {
        if self.bars.len() <= 4 {
            64
        } else if self.bars.len() <= 12 {
            40
        } else {
            26
        }
    }
}

impl Chart for Data {
    fn size(&self) -> (u32, u32) {
        let extra = super::header_px(&self.subtitle) - super::header_px("");
        let h = 220 + extra + self.bars.len().max(1) as u32 * self.row_px();
        (super::WIDTH, h.max(440))
    }

    fn render<DB: DrawingBackend>(
        &self,
        root: &DrawingArea<DB, Shift>,
    ) -> Result<(), DrawingAreaErrorKind<DB::ErrorType>> {
        let body = super::header(root, &self.title, &self.subtitle)?;
        let (plot, side) = body.split_horizontally(super::WIDTH - LEGEND_PX);
        let rows: Vec<String> = self.bars.iter().map(|b| b.label.clone()).collect();
        let widest_note = self
            .bars
            .iter()
            .map(|b| super::text_px(&b.note, super::TICK_PX))
            .max()
            .unwrap_or(0);
        let top = self
            .bars
            .iter()
            .map(|b| b.total_gib.max(b.capacity_gib))
            .fold(0.0, f64::max);
        // room right of the longest bar for its note: the plot is about 620 px wide
        let x_max = top * (1.06 + widest_note as f64 / 560.0);
        let longest = rows
            .iter()
            .map(|l| super::text_px(l, super::TICK_PX))
            .max()
            .unwrap_or(0);
        let rc = RowChart {
            x_max,
            rows: &rows,
            label_px: longest + 44,
            x_desc: &self.x_label,
            y_desc: "Pipeline stage (one GPU of each)",
        };
        let mut chart = rc.build(root, &plot)?;
        let n = self.bars.len().max(1);
        let half = 0.3;
        for (i, b) in self.bars.iter().enumerate() {
            let y = super::row_centre(i, n);
            // headroom: from the bar's end to the capacity
            if b.capacity_gib > b.total_gib {
                let thin = b.capacity_gib - b.total_gib < THIN_HEADROOM * b.capacity_gib;
                let c = if thin { THIN_COLOUR } else { HEADROOM_COLOUR };
                chart.draw_series(std::iter::once(Rectangle::new(
                    [(b.total_gib, y - half), (b.capacity_gib, y + half)],
                    c.filled(),
                )))?;
            }
            let mut x = 0.0;
            for (c, &v) in self.labels.iter().zip(&b.values_gib) {
                if v > 0.0 {
                    chart.draw_series(std::iter::once(Rectangle::new(
                        [(x, y - half), (x + v, y + half)],
                        colour(c).filled(),
                    )))?;
                }
                x += v;
            }
            let outline = if i == self.most_loaded {
                BLACK.stroke_width(3)
            } else {
                BLACK.mix(0.5).stroke_width(1)
            };
            chart.draw_series(std::iter::once(Rectangle::new(
                [(0.0, y - half), (x, y + half)],
                outline,
            )))?;
            let (px, py) = chart.backend_coord(&(x.max(b.capacity_gib), y));
            let style = if b.total_gib > b.capacity_gib {
                super::bold(super::TICK_PX).color(&CAPACITY_COLOUR)
            } else {
                super::font(super::TICK_PX).color(&BLACK)
            };
            root.draw(&Text::new(
                b.note.as_str(),
                (px + 8, py),
                style.pos(Pos::new(HPos::Left, VPos::Center)),
            ))?;
        }
        // capacity: dashed line over the full height, labelled at the top
        let cap = self.capacity_gib;
        chart.draw_series(std::iter::once(DashedPathElement::new(
            vec![(cap, 0.0), (cap, n as f64)],
            10,
            6,
            CAPACITY_COLOUR.stroke_width(3),
        )))?;
        let text = format!("HBM capacity {} GiB", super::short(cap));
        let mut entries: Vec<(String, Swatch)> = self
            .labels
            .iter()
            .zip(&self.values_gib)
            .map(|(c, v)| (format!("{c}  {} GiB", super::short(*v)), Swatch::Fill(colour(c))))
            .collect();
        entries.push((text, Swatch::Dashed(CAPACITY_COLOUR)));
        entries.push(("headroom (free)".into(), Swatch::Fill(HEADROOM_COLOUR)));
        let thin =
            |b: &Bar| b.total_gib <= b.capacity_gib && b.capacity_gib - b.total_gib < THIN_HEADROOM * b.capacity_gib;
        if self.bars.iter().any(thin) {
            entries.push((
                format!("thin headroom (< {:.0}%)", THIN_HEADROOM * 100.0),
                Swatch::Fill(THIN_COLOUR),
            ));
        }
        entries.push(("most loaded stage".into(), Swatch::Outline(BLACK)));
        let heading = format!(
            "Consumer (stage {})",
            self.bars.get(self.most_loaded).map_or(0, |b| b.stage)
        );
        super::legend(&side.margin(14, 0, 0, 0), &heading, &entries)
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
    fn one_bar_per_stage_with_headroom() {
        let r = tiny_run();
        let d = data(r);
        assert_eq!(r.memory_per_stage.len(), 4, "the tiny run has 4 stages");
        assert_eq!(d.bars.len(), 4);
        assert_eq!(d.stages_total, 4);
        for (i, b) in d.bars.iter().enumerate() {
            assert_eq!(b.stage, i as u32);
            assert_eq!(b.label, format!("stage {i}"));
            let sum: f64 = b.values_gib.iter().sum();
            assert!((sum - b.total_gib).abs() <= 1e-9 * b.total_gib.max(1.0));
            assert_eq!(b.note, headroom_note(b.total_gib, b.capacity_gib));
        }
        let m = &d.bars[d.most_loaded];
        assert_eq!(m.stage, r.memory.stage);
        assert_eq!(m.total_gib, r.memory.total_gib);
        assert_eq!(
            m.values_gib, d.values_gib,
            "the legend's GiB are the most loaded stage's"
        );
        assert!(d
            .bars
            .iter()
            .all(|b| b.total_gib / b.capacity_gib <= m.total_gib / m.capacity_gib));
        assert_eq!(d.headroom_gib, r.memory.capacity_gib - r.memory.total_gib);
        assert!(d.subtitle.contains("every pipeline stage (4)"), "{}", d.subtitle);
        // results written before per-stage memory: the most loaded stage alone
        let mut old = r.clone();
        old.memory_per_stage.clear();
        let d = data(&old);
        assert_eq!(d.bars.len(), 1);
        assert_eq!(d.bars[0].stage, r.memory.stage);
    }

    #[test]
    fn headroom_notes_say_free_thin_or_over() {
        assert_eq!(headroom_note(60.0, 80.0), "60.0 GiB, 20.0 GiB free (25%)");
        assert_eq!(headroom_note(77.9, 80.0), "77.9 GiB, 2.1 GiB free (3%): thin");
        assert_eq!(headroom_note(95.0, 80.0), "95.0 GiB, 15.0 GiB OVER");
        assert_eq!(headroom_note(0.0, 0.0), "0.0 GiB, 0.0 GiB free (0%)");
    }

    #[test]
    fn many_stages_are_subsampled_keeping_the_most_loaded() {
        let v = spread_keeping(64, MAX_BARS, 37);
        assert!(v.len() <= MAX_BARS + 1 && v.contains(&37) && v[0] == 0 && v.last() == Some(&63));
        assert!(v.windows(2).all(|w| w[0] < w[1]));
        assert_eq!(spread_keeping(3, MAX_BARS, 1), vec![0, 1, 2]);
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
        for text in [
            "stage 0",
            "stage 3",
            "headroom (free)",
            "most loaded stage",
            "GiB free (",
        ] {
            assert!(svg.contains(text), "{text:?} not in the SVG");
        }
        let _ = std::fs::remove_dir_all(dir);
    }
}
