//! Predicted loss against wall-clock for a run to a target: the curve with failures and
//! checkpoints included (mean), the failure-free curve (compute time only, dashed), with
//! `[reliability]` the p10-p90 band of the seeded failure runs and, when the target is a
//! loss, a horizontal line at it.

use super::{Chart, Swatch};
use crate::report::ReportError;
use crate::simulation::RunResult;
use plotters::coord::Shift;
use plotters::element::DashedPathElement;
use plotters::prelude::*;
use plotters::style::text_anchor::{HPos, Pos, VPos};
use std::path::Path;

/// Below this wall-clock the x axis is in hours, else in days.
pub const HOURS_BELOW_H: f64 = 48.0;

/// The loss chart's data, already in the x unit.
#[derive(Debug, Clone, PartialEq)]
pub struct Data {
    /// Scenario name.
    pub scenario: String,
    /// Chart title (holds the scenario name).
    pub title: String,
    /// Line under the title: model, cluster, plan, target and loss law.
    pub subtitle: String,
    /// x-axis description, with the unit.
    pub x_label: String,
    /// y-axis description, with the unit.
    pub y_label: String,
    /// x unit: "days" or "h".
    pub x_unit: String,
    /// Hours per x unit (24 or 1).
    pub hours_per_unit: f64,
    /// (wall-clock, loss) with failures and checkpoints (mean), in increasing time.
    pub with_failures: Vec<(f64, f64)>,
    /// (compute time, loss) without failures or checkpoints; empty when they cost nothing.
    pub failure_free: Vec<(f64, f64)>,
    /// The target loss, nats per token, when the target is a loss.
    pub target_loss: Option<f64>,
    /// (p10 wall-clock, p90 wall-clock, loss) along the curve: the Monte Carlo spread of
    /// the failure process at the target, scaled along the curve (wall-clock to each loss
    /// times p10/mean and p90/mean); empty without `[reliability]`.
    pub p10_p90: Vec<(f64, f64, f64)>,
}

const FAILURES_COLOUR: RGBColor = RGBColor(31, 119, 180);
const FREE_COLOUR: RGBColor = RGBColor(44, 160, 44);
const TARGET_COLOUR: RGBColor = RGBColor(214, 39, 40);
const BAND_COLOUR: RGBColor = RGBColor(158, 202, 225);

/// Prepares the chart's data; `None` when the run has no target or no loss curve.
pub fn data(r: &RunResult) -> Option<Data> {
    let t = r.to_target.as_ref()?;
    if t.loss_curve.is_empty() {
        return None;
    }
    let last_h = t.loss_curve.iter().map(|p| p.wall_clock_h).fold(0.0, f64::max);
    let (x_unit, hours_per_unit) = if last_h < HOURS_BELOW_H {
        ("h", 1.0)
    } else {
        ("days", 24.0)
    };
    let with_failures: Vec<(f64, f64)> = t
        .loss_curve
        .iter()
        .map(|p| (p.wall_clock_h / hours_per_unit, p.loss_nats))
        .collect();
    // wall-clock = compute time / goodput at every point of the curve
    let g = t.goodput_fraction;
    let failure_free = if g.is_finite() && g > 0.0 && g < 1.0 {
        with_failures.iter().map(|&(x, l)| (x * g, l)).collect()
    } else {
        Vec::new()
    };
    let mean_h = t.wall_clock_to_target_h;
    let (lo, hi) = (
        t.wall_clock_to_target_p10_h / mean_h,
        t.wall_clock_to_target_p90_h / mean_h,
    );
    let p10_p90 = if t.reliability.is_some() && lo.is_finite() && hi.is_finite() && hi > lo && mean_h > 0.0 {
        with_failures.iter().map(|&(x, l)| (x * lo, x * hi, l)).collect()
    } else {
        Vec::new()
    };
    let target_loss = t
        .target
        .starts_with("loss")
        .then_some(t.loss_at_target_nats)
        .filter(|l| l.is_finite());
    Some(Data {
        scenario: r.name.clone(),
        title: format!("{}: loss vs wall-clock to {}", r.name, t.target),
        subtitle: format!(
            "{} on {} x {}, {}; loss law {}",
            r.model, r.num_gpus, r.gpu, r.plan, t.loss_law
        ),
        x_label: format!("Wall-clock time ({})", if x_unit == "h" { "hours" } else { "days" }),
        y_label: "Loss (nats/token)".into(),
        x_unit: x_unit.into(),
        hours_per_unit,
        with_failures,
        failure_free,
        target_loss,
        p10_p90,
    })
}

/// Draws the chart to `path` (`.png` or `.svg`).
pub fn draw(d: &Data, path: &Path) -> Result<(), ReportError> {
    super::draw_chart(d, path)
}

/// Legend column width, pixels.
const LEGEND_PX: u32 = 320;

impl Chart for Data {
    fn size(&self) -> (u32, u32) {
        (super::WIDTH, 640)
    }

    fn render<DB: DrawingBackend>(
        &self,
        root: &DrawingArea<DB, Shift>,
    ) -> Result<(), DrawingAreaErrorKind<DB::ErrorType>> {
        let body = super::header(root, &self.title, &self.subtitle)?;
        let (plot, side) = body.split_horizontally(super::WIDTH - LEGEND_PX);
        let pts = self.with_failures.iter().chain(&self.failure_free);
        let (mut x1, mut y0, mut y1) = (0.0f64, f64::INFINITY, f64::NEG_INFINITY);
        for &(x, y) in pts {
            x1 = x1.max(x);
            y0 = y0.min(y);
            y1 = y1.max(y);
        }
        for &(_, x, _) in &self.p10_p90 {
            x1 = x1.max(x);
        }
        if let Some(l) = self.target_loss {
            y0 = y0.min(l);
            y1 = y1.max(l);
        }
        if !(y0.is_finite() && y1.is_finite()) {
            (y0, y1) = (0.0, 1.0);
        }
        if y1 <= y0 {
            (y0, y1) = (y0 - 0.5, y1 + 0.5);
        }
        if x1 <= 0.0 || !x1.is_finite() {
            x1 = 1.0;
        }
        let pad = (y1 - y0) * 0.06;
        let mut chart = ChartBuilder::on(&plot)
            .margin(20)
            .x_label_area_size(60)
            .y_label_area_size(90)
            .build_cartesian_2d(0.0..x1 * 1.04, (y0 - pad)..(y1 + pad))?;
        chart
            .configure_mesh()
            .x_desc(self.x_label.as_str())
            .y_desc(self.y_label.as_str())
            .axis_desc_style(super::font(super::LABEL_PX))
            .label_style(super::font(super::TICK_PX))
            .x_label_formatter(&|x| if *x == 0.0 { "0".into() } else { super::short(*x) })
            .y_label_formatter(&|y| super::short(*y))
            .bold_line_style(BLACK.mix(0.15))
            .light_line_style(TRANSPARENT)
            .draw()?;
        let mut entries = Vec::new();
        if !self.p10_p90.is_empty() {
            let mut outline: Vec<(f64, f64)> = self.p10_p90.iter().map(|&(a, _, l)| (a, l)).collect();
            outline.extend(self.p10_p90.iter().rev().map(|&(_, b, l)| (b, l)));
            chart.draw_series(std::iter::once(Polygon::new(
                outline.clone(),
                BAND_COLOUR.mix(0.45).filled(),
            )))?;
            outline.push(outline[0]);
            chart.draw_series(std::iter::once(PathElement::new(outline, BAND_COLOUR.stroke_width(1))))?;
            // at the target the spread is often a few pixels wide: mark its ends and say it
            let &(a, b, l) = self.p10_p90.last().expect("non-empty");
            let (pa, py) = chart.backend_coord(&(a, l));
            let (pb, _) = chart.backend_coord(&(b, l));
            let bar = BAND_COLOUR.mix(1.0).stroke_width(2);
            let dark = RGBColor(33, 102, 172);
            for x in [pa, pb] {
                root.draw(&PathElement::new(
                    vec![(x, py - 14), (x, py + 14)],
                    dark.stroke_width(2),
                ))?;
            }
            root.draw(&PathElement::new(vec![(pa, py - 14), (pb, py - 14)], bar))?;
            root.draw(&Text::new(
                format!(
                    "p10-p90 at target: {}-{} {}",
                    super::short(a),
                    super::short(b),
                    self.x_unit
                ),
                (pb - 6, py - 20),
                super::font(super::TICK_PX)
                    .color(&dark)
                    .pos(Pos::new(HPos::Right, VPos::Bottom)),
            ))?;
            entries.push(("p10-p90 of seeded failure runs".to_string(), Swatch::Fill(BAND_COLOUR)));
        }
        if let Some(l) = self.target_loss {
            chart.draw_series(std::iter::once(DashedPathElement::new(
                vec![(0.0, l), (x1 * 1.04, l)],
                10,
                6,
                TARGET_COLOUR.stroke_width(2),
            )))?;
            let text = format!("target loss {}", super::short(l));
            let (px, py) = chart.backend_coord(&(x1 * 0.02, l));
            root.draw(&Text::new(
                text.clone(),
                (px + 6, py + 4),
                super::bold(super::TICK_PX)
                    .color(&TARGET_COLOUR)
                    .pos(Pos::new(HPos::Left, VPos::Top)),
            ))?;
            entries.push((text, Swatch::Line(TARGET_COLOUR)));
        }
        if !self.failure_free.is_empty() {
            chart.draw_series(std::iter::once(DashedPathElement::new(
                self.failure_free.clone(),
                10,
                6,
                FREE_COLOUR.stroke_width(3),
            )))?;
            entries.push(("failure-free (compute time)".to_string(), Swatch::Line(FREE_COLOUR)));
        }
        chart.draw_series(LineSeries::new(
            self.with_failures.clone(),
            FAILURES_COLOUR.stroke_width(3),
        ))?;
        let label = if self.failure_free.is_empty() {
            "predicted loss".to_string()
        } else {
            "failures and checkpoints (mean)".to_string()
        };
        entries.insert(0, (label, Swatch::Line(FAILURES_COLOUR)));
        super::legend(&side.margin(14, 0, 0, 0), "Curve", &entries)
    }
}

#[cfg(test)]
mod tests {
    use super::super::test_support::{check_files, scratch};
    use super::*;
    use std::sync::OnceLock;

    /// The tiny chart-test run with a goal: a loss target and frequent failures.
    const SRC: &str = r#"
name = "tiny-loss-chart-test"
[cluster]
num_gpus = 16
[cluster.gpu]
preset = "H100-SXM"
[model]
preset = "llama2-7b"
[parallel]
tp = 2
pp = 4
[training]
global_batch_size = 16
seq_length = 2048
[target]
loss = 2.3
[reliability]
gpu_mtbf_h = 200
"#;

    fn run_with_goal() -> &'static RunResult {
        static RUN: OnceLock<RunResult> = OnceLock::new();
        RUN.get_or_init(|| {
            let s = crate::scenario::Scenario::from_source(SRC, Path::new("t.toml")).expect("scenario parses");
            crate::simulation::run(&s.input).expect("scenario runs")
        })
    }

    #[test]
    fn no_target_no_chart() {
        assert!(data(super::super::test_support::tiny_run()).is_none());
    }

    #[test]
    fn loss_falls_as_time_grows_and_units_are_scaled() {
        let r = run_with_goal();
        let t = r.to_target.as_ref().expect("a target");
        let d = data(r).expect("chart data");
        assert!(d.title.contains(&r.name) && d.scenario == r.name);
        assert_eq!(d.y_label, "Loss (nats/token)");
        assert!(d.with_failures.len() >= 2, "{}", d.with_failures.len());
        for w in d.with_failures.windows(2) {
            assert!(w[1].0 > w[0].0, "time grows: {w:?}");
            assert!(w[1].1 < w[0].1, "loss falls: {w:?}");
        }
        // unit: days above two days, hours below; the last point is the target
        let last = *d.with_failures.last().expect("points");
        let want_unit = if t.wall_clock_to_target_h < HOURS_BELOW_H {
            ("h", "Wall-clock time (hours)", 1.0)
        } else {
            ("days", "Wall-clock time (days)", 24.0)
        };
        assert_eq!((d.x_unit.as_str(), d.x_label.as_str(), d.hours_per_unit), want_unit);
        assert!((last.0 * d.hours_per_unit / t.wall_clock_to_target_h - 1.0).abs() < 1e-9);
        assert!((last.1 - 2.3).abs() < 1e-6, "{}", last.1);
        // failure-free: the same losses at compute time
        assert!(t.goodput_fraction < 1.0);
        assert_eq!(d.failure_free.len(), d.with_failures.len());
        for (f, w) in d.failure_free.iter().zip(&d.with_failures) {
            assert_eq!(f.1, w.1);
            assert!(f.0 < w.0);
        }
        let free_last = d.failure_free.last().expect("points").0 * d.hours_per_unit;
        assert!((free_last / t.compute_time_to_target_h - 1.0).abs() < 1e-9);
        assert_eq!(d.target_loss, Some(2.3));
        // the p10-p90 band brackets the mean curve and ends at the Monte Carlo quantiles
        assert_eq!(d.p10_p90.len(), d.with_failures.len());
        for (b, w) in d.p10_p90.iter().zip(&d.with_failures) {
            assert!(b.0 <= w.0 && w.0 <= b.1 && b.2 == w.1, "{b:?} {w:?}");
        }
        let end = d.p10_p90.last().expect("points");
        assert!((end.0 * d.hours_per_unit / t.wall_clock_to_target_p10_h - 1.0).abs() < 1e-9);
        assert!((end.1 * d.hours_per_unit / t.wall_clock_to_target_p90_h - 1.0).abs() < 1e-9);
    }

    #[test]
    fn hours_for_short_runs_days_for_long_ones() {
        let mut r = run_with_goal().clone();
        let t = r.to_target.as_mut().expect("a target");
        let scale = 10.0 / t.wall_clock_to_target_h;
        for p in &mut t.loss_curve {
            p.wall_clock_h *= scale;
        }
        let d = data(&r).expect("chart data");
        assert_eq!(d.x_unit, "h");
        assert_eq!(d.x_label, "Wall-clock time (hours)");
        assert!((d.with_failures.last().expect("points").0 - 10.0).abs() < 1e-9);
        for p in &mut r.to_target.as_mut().expect("a target").loss_curve {
            p.wall_clock_h *= 30.0;
        }
        let d = data(&r).expect("chart data");
        assert_eq!(d.x_unit, "days");
        assert!((d.with_failures.last().expect("points").0 - 300.0 / 24.0).abs() < 1e-9);
    }

    #[test]
    fn draws_png_and_svg() {
        let d = data(run_with_goal()).expect("chart data");
        let dir = scratch("loss");
        draw(&d, &dir.join("loss.png")).expect("PNG draws");
        draw(&d, &dir.join("loss.svg")).expect("SVG draws");
        check_files(&dir, "loss", &d.title);
        let svg = std::fs::read_to_string(dir.join("loss.svg")).expect("SVG");
        assert!(svg.contains(&d.x_label) && svg.contains("Loss (nats/token)"));
        assert!(svg.contains("target loss") && svg.contains("failure-free") && svg.contains("p10-p90"));
        let _ = std::fs::remove_dir_all(dir);
    }

    #[test]
    fn draw_all_draws_it_only_with_a_target() {
        let dir = scratch("loss-all");
        let files = super::super::draw_all(run_with_goal(), &dir).expect("charts draw");
        assert!(files.iter().any(|f| f.ends_with("loss.png")));
        assert!(files.iter().any(|f| f.ends_with("loss.svg")));
        check_files(&dir, "loss", &data(run_with_goal()).expect("chart data").title);
        let _ = std::fs::remove_dir_all(&dir);
        let dir = scratch("loss-none");
        let files = super::super::draw_all(super::super::test_support::tiny_run(), &dir).expect("charts draw");
        assert!(!files.iter().any(|f| f.to_string_lossy().contains("loss.")));
        let _ = std::fs::remove_dir_all(dir);
    }
}
