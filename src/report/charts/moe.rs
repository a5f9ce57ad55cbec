//! Expert load of a Mixture-of-Experts run: a heatmap of each expert's relative load
//! (1 = the mean expert's load) in each MoE layer, over all simulated steps. x is the
//! expert index, y the MoE layer (layer 0 at the bottom); a colour bar beside it maps
//! colour to load / mean load on a diverging scale: blue below the mean, white at the
//! mean load 1, red above it (an even load reads as a white grid).

use super::lines::nice_step;
use super::Chart;
use crate::report::ReportError;
use crate::simulation::RunResult;
use plotters::coord::Shift;
use plotters::prelude::*;
use plotters::style::text_anchor::{HPos, Pos, VPos};
use std::path::Path;

/// The expert-load heatmap's data.
#[derive(Debug, Clone, PartialEq)]
pub struct Data {
    /// Scenario name.
    pub scenario: String,
    /// Chart title (holds the scenario name, the routing and the mean max/mean load).
    pub title: String,
    /// Line under the title: model, cluster, plan, experts and steps.
    pub subtitle: String,
    /// x-axis description ("expert").
    pub x_label: String,
    /// y-axis description ("MoE layer").
    pub y_label: String,
    /// Colour-bar heading ("load / mean load").
    pub scale_label: String,
    /// Relative load per MoE layer (rows, first layer first) and expert (columns): the
    /// run's `moe.expert_load_per_layer`.
    pub loads: Vec<Vec<f64>>,
    /// Number of columns drawn (experts; the longest row).
    pub num_experts: usize,
    /// Load at the blue end of the colour scale (at most the smallest load).
    pub scale_min: f64,
    /// Load at the middle (white) of the colour scale: the mean load, 1.
    pub scale_mid: f64,
    /// Load at the red end of the colour scale (at least the largest load).
    pub scale_max: f64,
}

/// Colour-bar column width, pixels.
const LEGEND_PX: u32 = 230;
/// Height of the cell grid, pixels, at most and at least.
const GRID_MAX_PX: u32 = 600;
const GRID_MIN_PX: u32 = 320;
/// Height of one layer's row when the grid is between those bounds, pixels.
const ROW_PX: u32 = 64;
/// Colour of a cell without a finite value.
const MISSING: RGBColor = RGBColor(200, 200, 200);

/// Prepares the chart's data; `None` for a dense run or one without per-layer loads.
pub fn data(r: &RunResult) -> Option<Data> {
    let m = r.moe.as_ref()?;
    let loads = m.expert_load_per_layer.clone();
    let num_experts = loads.iter().map(Vec::len).max().unwrap_or(0);
    if num_experts == 0 {
        return None;
    }
    let (scale_min, scale_mid, scale_max) = scale(&loads);
    let full = format!(
        "{}: expert load per MoE layer (routing {}, max/mean {})",
        r.name,
        m.routing,
        super::short(m.expert_load_max_over_mean)
    );
    // a long scenario name gets the short title rather than running off the image
    let title = if super::text_px(&full, super::TITLE_PX) > super::WIDTH - 24 {
        format!(
            "{}: expert load (routing {}, max/mean {})",
            r.name,
            m.routing,
            super::short(m.expert_load_max_over_mean)
        )
    } else {
        full
    };
    let steps = r.simulation.iterations_simulated;
    Some(Data {
        scenario: r.name.clone(),
        title,
        subtitle: format!(
            "{} on {} x {}, {}; {} experts, top-{}; over {steps} simulated step{}",
            r.model,
            r.num_gpus,
            r.gpu,
            r.plan,
            m.num_experts,
            m.top_k,
            if steps == 1 { "" } else { "s" }
        ),
        x_label: "expert".into(),
        y_label: "MoE layer".into(),
        scale_label: "load / mean load".into(),
        loads,
        num_experts,
        scale_min,
        scale_mid,
        scale_max,
    })
}

/// Colour-scale ends and middle for `loads`: the smallest and largest finite load, and the
/// mean load 1 between them; widened when every load is the same.
fn scale(loads: &[Vec<f64>]) -> (f64, f64, f64) {
    let finite = || loads.iter().flatten().copied().filter(|v| v.is_finite());
    let lo = finite().fold(f64::INFINITY, f64::min);
    let hi = finite().fold(f64::NEG_INFINITY, f64::max);
    let (lo, hi) = if !lo.is_finite() {
        (0.5, 1.5)
    } else if hi - lo < 1e-9 * hi.abs().max(1.0) {
        ((lo - 0.5).max(0.0).min(lo), hi + 0.5)
    } else {
        (lo, hi)
    };
    let mid = if lo < 1.0 && 1.0 < hi { 1.0 } else { (lo + hi) / 2.0 };
    (lo, mid, hi)
}

/// Draws the chart to `path` (`.png` or `.svg`).
pub fn draw(d: &Data, path: &Path) -> Result<(), ReportError> {
    super::draw_chart(d, path)
}

impl Data {
    /// Position of `load` on the colour scale, 0 (blue, `scale_min`) to 1 (red,
    /// `scale_max`): linear from the minimum to the mean (0.5), then to the maximum.
    pub fn scale_position(&self, load: f64) -> f64 {
        let (lo, mid, hi) = (self.scale_min, self.scale_mid, self.scale_max);
        let t = if load <= mid {
            0.5 * (load - lo) / (mid - lo).max(1e-12)
        } else {
            0.5 + 0.5 * (load - mid) / (hi - mid).max(1e-12)
        };
        t.clamp(0.0, 1.0)
    }

    /// Rows (MoE layers) and columns (experts) of the grid, at least one each.
    fn grid(&self) -> (usize, usize) {
        (self.loads.len().max(1), self.num_experts.max(1))
    }
}

/// Colour at position `t` in [0, 1] of the diverging scale blue (0), white (0.5, the mean
/// load), red (1) (ColorBrewer RdBu ends).
pub fn colour(t: f64) -> RGBColor {
    const STOPS: [(f64, f64, f64); 3] = [(33.0, 102.0, 172.0), (247.0, 247.0, 247.0), (178.0, 24.0, 43.0)];
    let t = if t.is_finite() { t.clamp(0.0, 1.0) } else { 0.5 };
    let (a, b, u) = if t <= 0.5 {
        (STOPS[0], STOPS[1], t * 2.0)
    } else {
        (STOPS[1], STOPS[2], (t - 0.5) * 2.0)
    };
    let lerp = |x: f64, y: f64| (x + (y - x) * u).round() as u8;
    RGBColor(lerp(a.0, b.0), lerp(a.1, b.1), lerp(a.2, b.2))
}

/// Whether text on `c` reads better in white than in black.
fn dark(c: RGBColor) -> bool {
    (0.2126 * c.0 as f64 + 0.7152 * c.1 as f64 + 0.0722 * c.2 as f64) < 140.0
}

/// Smallest tick step, in cells of `cell_px` pixels, that puts labels at least `min_px`
/// apart: a power of two, or else 1, 2, 5 times a power of ten.
fn tick_step(cell_px: f64, min_px: f64, powers_of_two: bool) -> usize {
    let mut step = 1usize;
    let mut i = 0usize;
    while (step as f64) * cell_px < min_px && step < 1 << 20 {
        i += 1;
        step = if powers_of_two {
            1 << i
        } else {
            [1, 2, 5][i % 3] * 10usize.pow((i / 3) as u32)
        };
    }
    step
}

impl Chart for Data {
    fn size(&self) -> (u32, u32) {
        let rows = self.grid().0 as u32;
        let grid = rows.saturating_mul(ROW_PX).clamp(GRID_MIN_PX, GRID_MAX_PX);
        // header 78, margins 2 x 14, x-label area 64
        (super::WIDTH, 78 + 28 + 64 + grid)
    }

    fn render<DB: DrawingBackend>(
        &self,
        root: &DrawingArea<DB, Shift>,
    ) -> Result<(), DrawingAreaErrorKind<DB::ErrorType>> {
        let body = super::header(root, &self.title, &self.subtitle)?;
        let (plot, _side) = body.split_horizontally(super::WIDTH - LEGEND_PX);
        let (nr, nc) = self.grid();
        let mut chart = ChartBuilder::on(&plot)
            .margin(14)
            .margin_right(20)
            .x_label_area_size(64)
            .y_label_area_size(64)
            .build_cartesian_2d(0.0..nc as f64, 0.0..nr as f64)?;
        chart
            .configure_mesh()
            .disable_mesh()
            .x_labels(0)
            .y_labels(0)
            .x_desc(self.x_label.as_str())
            .y_desc(self.y_label.as_str())
            .axis_desc_style(super::font(super::LABEL_PX))
            .label_style(super::font(super::TICK_PX))
            .draw()?;
        let (left, top) = chart.backend_coord(&(0.0, nr as f64));
        let (right, bottom) = chart.backend_coord(&(nc as f64, 0.0));
        let cell_w = (right - left) as f64 / nc as f64;
        let cell_h = (bottom - top) as f64 / nr as f64;

        // cells; thin grey gaps between them (white is the mean load) while they show
        let cells = self
            .loads
            .iter()
            .enumerate()
            .flat_map(|(r, row)| (0..nc).map(move |c| (r, c, row.get(c).copied().filter(|v| v.is_finite()))));
        let fill = |v: Option<f64>| v.map_or(MISSING, |v| colour(self.scale_position(v)));
        chart.draw_series(cells.clone().map(|(r, c, v)| {
            Rectangle::new(
                [(c as f64, r as f64), (c as f64 + 1.0, (r + 1) as f64)],
                fill(v).filled(),
            )
        }))?;
        if cell_w >= 6.0 && cell_h >= 6.0 {
            chart.draw_series(cells.clone().map(|(r, c, _)| {
                Rectangle::new(
                    [(c as f64, r as f64), (c as f64 + 1.0, (r + 1) as f64)],
                    RGBColor(190, 190, 190).stroke_width(1),
                )
            }))?;
        }
        // values in the cells when they fit
        if cell_w >= super::text_px("0.000", super::TICK_PX) as f64 + 8.0 && cell_h >= super::TICK_PX as f64 + 8.0 {
            let centre = Pos::new(HPos::Center, VPos::Center);
            for (r, c, v) in cells {
                let Some(v) = v else { continue };
                let style =
                    super::font(super::TICK_PX)
                        .pos(centre)
                        .color(if dark(fill(Some(v))) { &WHITE } else { &BLACK });
                let (px, py) = chart.backend_coord(&(c as f64 + 0.5, r as f64 + 0.5));
                root.draw(&Text::new(super::short(v), (px, py), style))?;
            }
        }
        chart.draw_series(std::iter::once(Rectangle::new(
            [(0.0, 0.0), (nc as f64, nr as f64)],
            BLACK.mix(0.5).stroke_width(1),
        )))?;

        // axis ticks at cell centres: experts by powers of two, layers by 1, 2, 5, 10...
        let widest = super::text_px(&(nc - 1).to_string(), super::TICK_PX) as f64;
        let x_step = tick_step(cell_w, widest + 16.0, true);
        let below = Pos::new(HPos::Center, VPos::Top);
        for c in (0..nc).step_by(x_step) {
            let (px, py) = chart.backend_coord(&(c as f64 + 0.5, 0.0));
            root.draw(&PathElement::new(vec![(px, py), (px, py + 5)], BLACK.stroke_width(1)))?;
            root.draw(&Text::new(
                c.to_string(),
                (px, py + 8),
                super::font(super::TICK_PX).pos(below),
            ))?;
        }
        let y_step = tick_step(cell_h, super::TICK_PX as f64 + 6.0, false);
        let leftward = Pos::new(HPos::Right, VPos::Center);
        for r in (0..nr).step_by(y_step) {
            let (px, py) = chart.backend_coord(&(0.0, r as f64 + 0.5));
            root.draw(&PathElement::new(vec![(px - 5, py), (px, py)], BLACK.stroke_width(1)))?;
            root.draw(&Text::new(
                r.to_string(),
                (px - 8, py),
                super::font(super::TICK_PX).pos(leftward),
            ))?;
        }

        self.colour_bar(root, (super::WIDTH - LEGEND_PX) as i32 + 14, top, bottom)
    }
}

impl Data {
    /// Draws the colour bar, its heading at `top` and the bar below it down to `bottom`,
    /// from `x` rightwards (pixels of `root`).
    fn colour_bar<DB: DrawingBackend>(
        &self,
        root: &DrawingArea<DB, Shift>,
        x: i32,
        top: i32,
        bottom: i32,
    ) -> Result<(), DrawingAreaErrorKind<DB::ErrorType>> {
        root.draw(&Text::new(
            self.scale_label.as_str(),
            (x, top),
            super::bold(super::TICK_PX).pos(Pos::new(HPos::Left, VPos::Top)),
        ))?;
        let (y0, y1) = (top + 34, bottom.max(top + 134));
        let h = (y1 - y0) as f64;
        let (bx0, bx1) = (x + 4, x + 30);
        // bands of 2 pixels, red at the top
        let mut y = y0;
        while y < y1 {
            let t = 1.0 - ((y - y0) as f64 + 1.0) / h;
            let band = [(bx0, y), (bx1, (y + 2).min(y1))];
            root.draw(&Rectangle::new(band, colour(t).filled()))?;
            y += 2;
        }
        root.draw(&Rectangle::new([(bx0, y0), (bx1, y1)], BLACK.mix(0.6).stroke_width(1)))?;
        let at = |v: f64| y1 - (self.scale_position(v) * h).round() as i32;
        // ends and mean first, then round values in each half where they leave room
        let mut ticks = vec![
            (self.scale_max, format!("{} (max)", super::short(self.scale_max))),
            (self.scale_min, format!("{} (min)", super::short(self.scale_min))),
            (self.scale_mid, format!("{} (mean)", super::short(self.scale_mid))),
        ];
        for (a, b) in [(self.scale_min, self.scale_mid), (self.scale_mid, self.scale_max)] {
            let step = nice_step(b - a, 3.0);
            if !step.is_finite() {
                continue;
            }
            let mut v = (a / step).floor() * step + step;
            while v < b - 1e-9 * step && ticks.len() < 32 {
                ticks.push((v, super::short(v)));
                v += step;
            }
        }
        let mut taken: Vec<i32> = Vec::new();
        let right = Pos::new(HPos::Left, VPos::Center);
        for (v, label) in ticks {
            let py = at(v);
            if taken.iter().any(|&t| (t - py).abs() < super::TICK_PX as i32 + 2) {
                continue;
            }
            taken.push(py);
            root.draw(&PathElement::new(vec![(bx1, py), (bx1 + 5, py)], BLACK.stroke_width(1)))?;
            root.draw(&Text::new(label, (bx1 + 9, py), super::font(super::TICK_PX).pos(right)))?;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::super::test_support::{check_files, scratch, tiny_run};
    use super::*;
    use std::sync::OnceLock;

    /// A tiny MoE run: 8 GPUs, 4 MoE layers of 16 experts, Zipf routing.
    const SRC: &str = r#"
name = "tiny-moe-chart-test"
[cluster]
num_gpus = 8
gpus_per_node = 8
[cluster.gpu]
preset = "H100-SXM"
[model]
name = "tiny-moe"
num_layers = 4
hidden_size = 1024
num_heads = 8
ffn_hidden_size = 4096
ffn_type = "swiglu"
vocab_size = 32000
num_experts = 16
top_k = 2
expert_ffn_hidden_size = 1024
[parallel]
tp = 1
pp = 1
dp = 8
ep = 8
[training]
global_batch_size = 16
seq_length = 2048
[moe]
routing = "zipf"
zipf_exponent = 1.0
"#;

    fn moe_run() -> &'static RunResult {
        static RUN: OnceLock<RunResult> = OnceLock::new();
        RUN.get_or_init(|| {
            let s = crate::scenario::Scenario::from_source(SRC, Path::new("t.toml")).expect("tiny MoE scenario parses");
            crate::simulation::run(&s.input).expect("tiny MoE scenario runs")
        })
    }

    /// `r` with its per-layer loads replaced by a `layers` x `experts` grid, skewed
    /// towards the low expert indices and normalised to mean 1 per layer.
    fn with_grid(r: &RunResult, layers: usize, experts: usize) -> RunResult {
        let mut r = r.clone();
        let rows = (0..layers)
            .map(|l| {
                let raw: Vec<f64> = (0..experts)
                    .map(|e| 1.0 / (1.0 + ((e + 3 * l) % experts) as f64).powf(0.7))
                    .collect();
                let mean = raw.iter().sum::<f64>() / experts as f64;
                raw.iter().map(|x| x / mean).collect()
            })
            .collect();
        if let Some(m) = r.moe.as_mut() {
            m.expert_load_per_layer = rows;
            m.num_experts = experts as u32;
        }
        r
    }

    #[test]
    fn series_are_the_per_layer_loads() {
        let r = moe_run();
        let m = r.moe.as_ref().expect("a MoE run has MoE results");
        let d = data(r).expect("a MoE run has the chart");
        assert_eq!(d.scenario, r.name);
        assert_eq!(d.loads, m.expert_load_per_layer, "values are the results' series");
        assert_eq!(d.loads.len(), 4, "one row per MoE layer");
        assert!(d.loads.iter().all(|row| row.len() == 16), "one column per expert");
        assert_eq!(d.num_experts, 16);
        assert_eq!((d.x_label.as_str(), d.y_label.as_str()), ("expert", "MoE layer"));
        assert_eq!(d.scale_label, "load / mean load");
        for want in [r.name.as_str(), "expert load per MoE layer", "routing zipf", "max/mean"] {
            assert!(d.title.contains(want), "{want:?} not in {:?}", d.title);
        }
        assert!(d.title.contains(&super::super::short(m.expert_load_max_over_mean)));
        let all = || d.loads.iter().flatten().copied();
        let lo = all().fold(f64::INFINITY, f64::min);
        let hi = all().fold(f64::NEG_INFINITY, f64::max);
        assert!(hi > 1.5, "Zipf routing is skewed: max {hi}");
        assert_eq!((d.scale_min, d.scale_max), (lo, hi), "the scale covers min..max");
        assert_eq!(d.scale_mid, 1.0);
        assert_eq!(d.scale_position(lo), 0.0);
        assert_eq!(d.scale_position(1.0), 0.5);
        assert_eq!(d.scale_position(hi), 1.0);
        let mut sorted: Vec<f64> = all().collect();
        sorted.sort_by(f64::total_cmp);
        assert!(
            sorted
                .windows(2)
                .all(|w| d.scale_position(w[0]) <= d.scale_position(w[1])),
            "the scale is monotonic"
        );
    }

    #[test]
    fn dense_runs_have_no_chart() {
        assert!(tiny_run().moe.is_none());
        assert_eq!(data(tiny_run()), None);
        let mut r = moe_run().clone();
        if let Some(m) = r.moe.as_mut() {
            m.expert_load_per_layer.clear();
        }
        assert_eq!(data(&r), None, "no per-layer loads, nothing to draw");
    }

    #[test]
    fn even_or_missing_loads_still_give_a_scale() {
        let mut r = moe_run().clone();
        if let Some(m) = r.moe.as_mut() {
            m.expert_load_per_layer = vec![vec![1.0; 8]; 2];
        }
        let d = data(&r).expect("chart");
        assert!(d.scale_min < 1.0 && d.scale_mid == 1.0 && d.scale_max > 1.0, "{d:?}");
        if let Some(m) = r.moe.as_mut() {
            m.expert_load_per_layer = vec![vec![f64::NAN, 2.0, 0.5], vec![0.5]];
        }
        let d = data(&r).expect("chart");
        assert_eq!(
            (d.scale_min, d.scale_mid, d.scale_max, d.num_experts),
            (0.5, 1.0, 2.0, 3)
        );
        let dir = scratch("moe-ragged");
        draw(&d, &dir.join("expert_load.png")).expect("PNG draws");
        draw(&d, &dir.join("expert_load.svg")).expect("SVG draws");
        check_files(&dir, "expert_load", &d.title);
        let _ = std::fs::remove_dir_all(dir);
    }

    #[test]
    fn colour_scale_diverges_around_the_mean() {
        assert_eq!(colour(0.0), RGBColor(33, 102, 172));
        assert_eq!(colour(0.5), RGBColor(247, 247, 247), "the mean load is white");
        assert_eq!(colour(1.0), RGBColor(178, 24, 43));
        assert_eq!(colour(f64::NAN), colour(0.5));
        let lum = |c: RGBColor| 0.2126 * c.0 as f64 + 0.7152 * c.1 as f64 + 0.0722 * c.2 as f64;
        let steps: Vec<f64> = (0..=20).map(|i| lum(colour(i as f64 / 20.0))).collect();
        // lighter up to the mean, darker beyond it: both ends stand out from an even load
        assert!(steps[..=10].windows(2).all(|w| w[0] < w[1]), "{steps:?}");
        assert!(steps[10..].windows(2).all(|w| w[0] > w[1]), "{steps:?}");
        // blue below the mean, red above it
        let (lo, hi) = (colour(0.2), colour(0.8));
        assert!(lo.2 > lo.0 && hi.0 > hi.2, "{lo:?} {hi:?}");
        // an even load on the data's scale is white
        let mut r = moe_run().clone();
        if let Some(m) = r.moe.as_mut() {
            m.expert_load_per_layer = vec![vec![1.0; 8]; 2];
        }
        let d = data(&r).expect("chart");
        assert_eq!(colour(d.scale_position(1.0)), RGBColor(247, 247, 247));
    }

    #[test]
    fn ticks_stay_apart() {
        assert_eq!(tick_step(100.0, 40.0, true), 1);
        assert_eq!(tick_step(3.5, 44.0, true), 16);
        assert_eq!(tick_step(9.0, 22.0, false), 5);
        assert_eq!(tick_step(2.0, 22.0, false), 20);
        assert_eq!(nice_step(0.9, 3.0), 0.5);
        assert_eq!(nice_step(7.0, 3.0), 5.0);
        assert!(nice_step(0.0, 3.0).is_infinite());
    }

    #[test]
    fn draws_small_and_large_grids() {
        for (layers, experts) in [(4, 8), (60, 256)] {
            let r = with_grid(moe_run(), layers, experts);
            let d = data(&r).expect("chart");
            assert_eq!((d.loads.len(), d.num_experts), (layers, experts));
            let (w, h) = d.size();
            assert_eq!(w, super::super::WIDTH);
            assert!((490..=770).contains(&h), "{h}");
            let dir = scratch(&format!("moe-{layers}x{experts}"));
            draw(&d, &dir.join("expert_load.png")).expect("PNG draws");
            draw(&d, &dir.join("expert_load.svg")).expect("SVG draws");
            check_files(&dir, "expert_load", &d.title);
            let svg = std::fs::read_to_string(dir.join("expert_load.svg")).expect("SVG");
            for text in ["expert", "MoE layer", "load / mean load", "(mean)"] {
                assert!(svg.contains(text), "{text:?} not in the SVG");
            }
            let _ = std::fs::remove_dir_all(dir);
        }
    }
}
