//! Line chart: one or more series of (x, y) points, each optionally paired with a dashed
//! reference line (ideal scaling), on linear or logarithmic axes. A logarithmic axis is
//! labelled at explicit ticks (powers of two for GPU counts and message sizes, 1-2-5
//! decades for rates), never at the plotting library's raw exponents.
//! Used by the sweep's scaling chart and the collective's bus-bandwidth chart; the callers
//! prepare the data, this file only draws it.

use super::{Chart, Swatch};
use crate::report::ReportError;
use plotters::coord::Shift;
use plotters::element::DashedPathElement;
use plotters::prelude::*;
use plotters::style::text_anchor::{HPos, Pos, VPos};
use std::path::Path;

/// A tick of an axis: a value (in data units) and its label.
#[derive(Debug, Clone, PartialEq)]
pub struct Tick {
    /// Where, in data units.
    pub value: f64,
    /// Label, e.g. "1K" or "4096".
    pub label: String,
}

/// One series: a solid line with markers, and optionally its dashed reference line.
#[derive(Debug, Clone, PartialEq)]
pub struct Series {
    /// Legend label.
    pub label: String,
    /// Points (x, y), in x order.
    pub points: Vec<(f64, f64)>,
    /// Reference line in the series' colour, dashed (e.g. ideal scaling from its first
    /// point); empty for none.
    pub reference: Vec<(f64, f64)>,
}

/// Line chart data.
#[derive(Debug, Clone, PartialEq)]
pub struct LineData {
    /// Title.
    pub title: String,
    /// Subtitle (one line per `\n`).
    pub subtitle: String,
    /// x-axis description with unit.
    pub x_label: String,
    /// y-axis description with unit.
    pub y_label: String,
    /// x on a logarithmic scale (values must be positive).
    pub log_x: bool,
    /// y on a logarithmic scale (values must be positive).
    pub log_y: bool,
    /// Explicit x ticks; empty: automatic (linear axes only).
    pub x_ticks: Vec<Tick>,
    /// Explicit y ticks; empty: automatic (linear axes only).
    pub y_ticks: Vec<Tick>,
    /// The series.
    pub series: Vec<Series>,
    /// Legend text of the dashed reference lines (e.g. "ideal scaling"), if any are drawn.
    pub reference_label: String,
    /// Legend heading.
    pub legend_heading: String,
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

/// Colour of series `i`.
pub fn series_colour(i: usize) -> RGBColor {
    PALETTE[i % PALETTE.len()]
}

/// A byte count with a binary prefix as nccl-tests and `--min-bytes` write it: 512, 1K,
/// 64K, 1M, 8G (K = 1024). Sizes that are not a whole number of the largest fitting unit
/// keep one decimal (1.5K).
pub fn binary_size(bytes: f64) -> String {
    let units = [("T", 40), ("G", 30), ("M", 20), ("K", 10)];
    for (u, p) in units {
        let v = bytes / 2f64.powi(p);
        if v >= 1.0 {
            return if (v - v.round()).abs() < 1e-9 {
                format!("{}{u}", v.round())
            } else {
                format!("{v:.1}{u}")
            };
        }
    }
    format!("{}", bytes.round())
}

/// Every power of two in `[lo, hi]` as a tick, labelled by `label`.
pub fn power_of_two_ticks(lo: f64, hi: f64, label: impl Fn(f64) -> String) -> Vec<Tick> {
    if !(lo > 0.0 && hi >= lo && hi.is_finite()) {
        return Vec::new();
    }
    let (a, b) = (lo.log2().ceil() as i32, (hi.log2() + 1e-9).floor() as i32);
    (a..=b)
        .map(|k| {
            let v = 2f64.powi(k);
            Tick {
                value: v,
                label: label(v),
            }
        })
        .collect()
}

/// A number with a decimal prefix and at most three significant digits: 500, 20k, 1.5M.
pub fn si(x: f64) -> String {
    let (v, u) = [("G", 1e9), ("M", 1e6), ("k", 1e3)]
        .into_iter()
        .find(|(_, p)| x.abs() >= *p)
        .map_or((x, ""), |(u, p)| (x / p, u));
    let digits = if v.abs() >= 100.0 {
        0
    } else if v.abs() >= 10.0 {
        1
    } else {
        2
    };
    let mut s = format!("{v:.digits$}");
    if s.contains('.') {
        s = s.trim_end_matches('0').trim_end_matches('.').to_string();
    }
    format!("{s}{u}")
}

/// A round step that cuts `range` into about `parts` pieces (1, 2 or 5 times a power of ten).
pub fn nice_step(range: f64, parts: f64) -> f64 {
    let raw = range / parts;
    if !(raw > 0.0 && raw.is_finite()) {
        return f64::INFINITY;
    }
    let mag = 10f64.powf(raw.log10().floor());
    [1.0, 2.0, 5.0, 10.0]
        .into_iter()
        .map(|m| m * mag)
        .find(|s| *s >= raw)
        .unwrap_or(10.0 * mag)
}

/// Ticks of a logarithmic axis over `[lo, hi]`: 1, 2 and 5 times the powers of ten inside
/// it (1 to 9 times them when that gives fewer than three, round linear steps when the
/// range is narrower still), labelled with [`si`].
pub fn decade_ticks(lo: f64, hi: f64) -> Vec<Tick> {
    if !(lo > 0.0 && hi >= lo && hi.is_finite()) {
        return Vec::new();
    }
    let inside = |v: f64| v >= lo * (1.0 - 1e-9) && v <= hi * (1.0 + 1e-9);
    let tick = |v: f64| Tick { value: v, label: si(v) };
    let pick = |mults: &[f64]| -> Vec<Tick> {
        let mut out = Vec::new();
        for k in (lo.log10().floor() as i32)..=(hi.log10().ceil() as i32) {
            for m in mults {
                let v = m * 10f64.powi(k);
                if inside(v) {
                    out.push(tick(v));
                }
            }
        }
        out
    };
    for mults in [&[1.0, 2.0, 5.0][..], &[1.0, 2.0, 3.0, 4.0, 5.0, 6.0, 7.0, 8.0, 9.0]] {
        let t = pick(mults);
        if t.len() >= 3 {
            return t;
        }
    }
    let step = nice_step(hi - lo, 4.0);
    if !step.is_finite() {
        return vec![tick(lo)];
    }
    let first = (lo / step - 1e-9).ceil() as i64;
    let last = (hi / step + 1e-9).floor() as i64;
    (first..=last)
        .map(|i| tick(i as f64 * step))
        .filter(|t| inside(t.value))
        .collect()
}

/// Indices of the tick labels to draw along an axis: each label spans `[pos - w/2, pos +
/// w/2]` (pixels, increasing). Every `k`-th label from the first, for the smallest `k`
/// that keeps `gap` pixels between neighbours (a regular pattern reads at a glance: 1K, 4K,
/// 16K, ...), then the last one, dropping kept labels before it that would touch it.
pub fn spaced_labels(spans: &[(f64, f64)], gap: f64) -> Vec<usize> {
    let n = spans.len();
    if n == 0 {
        return Vec::new();
    }
    let fits = |a: usize, b: usize| spans[a].0 + spans[a].1 / 2.0 + gap <= spans[b].0 - spans[b].1 / 2.0;
    let stride = (1..n).find(|&k| (k..n).step_by(k).all(|i| fits(i - k, i))).unwrap_or(n);
    let mut kept: Vec<usize> = (0..n).step_by(stride).collect();
    if kept.last() != Some(&(n - 1)) {
        while let Some(&l) = kept.last() {
            if kept.len() > 1 && !fits(l, n - 1) {
                kept.pop();
            } else {
                break;
            }
        }
        kept.push(n - 1);
    }
    kept
}

/// Draws a line chart (PNG or SVG by extension).
pub fn draw(d: &LineData, path: &Path) -> Result<(), ReportError> {
    super::draw_chart(d, path)
}

/// Legend column width, pixels.
const LEGEND_PX: u32 = 300;

impl LineData {
    /// Every point, reference lines included.
    fn all_points(&self) -> impl Iterator<Item = &(f64, f64)> {
        self.series.iter().flat_map(|s| s.points.iter().chain(&s.reference))
    }
}

/// Axis range in plotting coordinates (`f` applied), with a margin; never empty.
fn range(v: impl Iterator<Item = f64>, from_zero: bool) -> (f64, f64) {
    let (mut lo, mut hi) = (f64::INFINITY, f64::NEG_INFINITY);
    for x in v.filter(|x| x.is_finite()) {
        lo = lo.min(x);
        hi = hi.max(x);
    }
    if !lo.is_finite() {
        return (0.0, 1.0);
    }
    if from_zero {
        lo = lo.min(0.0);
    }
    if hi <= lo {
        return (lo - 0.5, hi + 0.5);
    }
    let pad = (hi - lo) * 0.05;
    (if from_zero && lo == 0.0 { 0.0 } else { lo - pad }, hi + pad)
}

impl Chart for LineData {
    fn size(&self) -> (u32, u32) {
        (super::WIDTH, 560 + super::header_px(&self.subtitle))
    }

    fn render<DB: DrawingBackend>(
        &self,
        root: &DrawingArea<DB, Shift>,
    ) -> Result<(), DrawingAreaErrorKind<DB::ErrorType>> {
        let body = super::header(root, &self.title, &self.subtitle)?;
        let (plot, side) = body.split_horizontally(super::WIDTH - LEGEND_PX);
        let (log_x, log_y) = (self.log_x, self.log_y);
        let fx = move |x: f64| if log_x { x.max(1e-300).log2() } else { x };
        let fy = move |y: f64| if log_y { y.max(1e-300).log10() } else { y };
        let ticks_x = || self.x_ticks.iter().map(|t| fx(t.value));
        let ticks_y = || self.y_ticks.iter().map(|t| fy(t.value));
        let (x0, x1) = range(self.all_points().map(|p| fx(p.0)).chain(ticks_x()), false);
        let (y0, y1) = range(self.all_points().map(|p| fy(p.1)).chain(ticks_y()), !log_y);
        let mut chart = ChartBuilder::on(&plot)
            .margin(20)
            .margin_right(30)
            .x_label_area_size(64)
            .y_label_area_size(90)
            .build_cartesian_2d(x0..x1, y0..y1)?;
        let mut mesh = chart.configure_mesh();
        mesh.x_desc(self.x_label.as_str())
            .y_desc(self.y_label.as_str())
            .axis_desc_style(super::font(super::LABEL_PX))
            .label_style(super::font(super::TICK_PX))
            .bold_line_style(BLACK.mix(0.15))
            .light_line_style(TRANSPARENT)
            .x_label_formatter(&|x| si(*x))
            .y_label_formatter(&|y| si(*y));
        if !self.x_ticks.is_empty() {
            mesh.x_labels(0).disable_x_mesh();
        }
        if !self.y_ticks.is_empty() {
            mesh.y_labels(0).disable_y_mesh();
        }
        mesh.draw()?;
        let grid = BLACK.mix(0.15).stroke_width(1);
        // explicit ticks: grid lines, tick marks, and the labels that keep apart
        let xs: Vec<(f64, f64)> = self
            .x_ticks
            .iter()
            .map(|t| {
                let (px, _) = chart.backend_coord(&(fx(t.value), y0));
                (px as f64, super::text_px(&t.label, super::TICK_PX) as f64)
            })
            .collect();
        let keep_x = spaced_labels(&xs, 10.0);
        for (i, t) in self.x_ticks.iter().enumerate() {
            let x = fx(t.value);
            chart.draw_series(std::iter::once(PathElement::new(vec![(x, y0), (x, y1)], grid)))?;
            let (px, py) = chart.backend_coord(&(x, y0));
            let long = keep_x.contains(&i);
            root.draw(&PathElement::new(
                vec![(px, py), (px, py + if long { 7 } else { 4 })],
                BLACK.stroke_width(1),
            ))?;
            if long {
                root.draw(&Text::new(
                    t.label.as_str(),
                    (px, py + 10),
                    super::font(super::TICK_PX).pos(Pos::new(HPos::Center, VPos::Top)),
                ))?;
            }
        }
        let ys: Vec<(f64, f64)> = self
            .y_ticks
            .iter()
            .map(|t| {
                let (_, py) = chart.backend_coord(&(x0, fy(t.value)));
                (-(py as f64), super::TICK_PX as f64)
            })
            .collect();
        let keep_y = spaced_labels(&ys, 4.0);
        for (i, t) in self.y_ticks.iter().enumerate() {
            let y = fy(t.value);
            chart.draw_series(std::iter::once(PathElement::new(vec![(x0, y), (x1, y)], grid)))?;
            if keep_y.contains(&i) {
                let (px, py) = chart.backend_coord(&(x0, y));
                root.draw(&PathElement::new(vec![(px - 6, py), (px, py)], BLACK.stroke_width(1)))?;
                root.draw(&Text::new(
                    t.label.as_str(),
                    (px - 10, py),
                    super::font(super::TICK_PX).pos(Pos::new(HPos::Right, VPos::Center)),
                ))?;
            }
        }
        let mut entries = Vec::new();
        for (i, s) in self.series.iter().enumerate() {
            let c = series_colour(i);
            if !s.reference.is_empty() {
                let r: Vec<(f64, f64)> = s.reference.iter().map(|&(x, y)| (fx(x), fy(y))).collect();
                chart.draw_series(std::iter::once(DashedPathElement::new(
                    r,
                    8,
                    6,
                    c.mix(0.8).stroke_width(2),
                )))?;
            }
            let line: Vec<(f64, f64)> = s.points.iter().map(|&(x, y)| (fx(x), fy(y))).collect();
            chart.draw_series(LineSeries::new(line.clone(), c.stroke_width(3)))?;
            chart.draw_series(line.iter().map(|&pt| Circle::new(pt, 5, c.filled())))?;
            entries.push((s.label.clone(), Swatch::Line(c)));
        }
        if self.series.iter().any(|s| !s.reference.is_empty()) {
            entries.push((self.reference_label.clone(), Swatch::Dashed(RGBColor(90, 90, 90))));
        }
        super::legend(&side, &self.legend_heading, &entries)
    }
}

#[cfg(test)]
mod tests {
    use super::super::test_support::{check_files, scratch};
    use super::*;

    #[test]
    fn binary_sizes_read_as_nccl_tests_prints_them() {
        let got: Vec<String> = [8.0, 512.0, 1024.0, 65536.0, 1048576.0, 8.0 * 1073741824.0, 1536.0]
            .into_iter()
            .map(binary_size)
            .collect();
        assert_eq!(got, ["8", "512", "1K", "64K", "1M", "8G", "1.5K"]);
    }

    #[test]
    fn power_of_two_ticks_cover_the_range() {
        let t = power_of_two_ticks(1024.0, 8.0 * 1073741824.0, binary_size);
        assert_eq!(t.len(), 24);
        assert_eq!(
            t[0],
            Tick {
                value: 1024.0,
                label: "1K".into()
            }
        );
        assert_eq!(t[10].label, "1M");
        assert_eq!(t[23].label, "8G");
        let g = power_of_two_ticks(64.0, 4096.0, |v| format!("{v}"));
        let labels: Vec<&str> = g.iter().map(|t| t.label.as_str()).collect();
        assert_eq!(labels, ["64", "128", "256", "512", "1024", "2048", "4096"]);
        assert!(power_of_two_ticks(0.0, 8.0, binary_size).is_empty());
    }

    #[test]
    fn decade_ticks_are_1_2_5() {
        let labels = |lo, hi| -> Vec<String> { decade_ticks(lo, hi).into_iter().map(|t| t.label).collect() };
        assert_eq!(labels(7e3, 6e5), ["10k", "20k", "50k", "100k", "200k", "500k"]);
        assert_eq!(labels(120.0, 180.0), ["120", "140", "160", "180"]);
        assert_eq!(labels(3e3, 9e3), ["3k", "4k", "5k", "6k", "7k", "8k", "9k"]);
        assert_eq!(si(1.5e6), "1.5M");
        assert_eq!(si(1.25e5), "125k");
        assert_eq!(si(0.5), "0.5");
    }

    #[test]
    fn labels_keep_apart_and_keep_both_ends() {
        // 24 ticks 40 px apart, labels 36 px wide, 10 px gap: every other one, and the last
        let spans: Vec<(f64, f64)> = (0..24).map(|i| (i as f64 * 40.0, 36.0)).collect();
        let k = spaced_labels(&spans, 10.0);
        assert_eq!(k.first(), Some(&0));
        assert_eq!(k.last(), Some(&23));
        for w in k.windows(2) {
            assert!(spans[w[1]].0 - spans[w[0]].0 >= 46.0, "{w:?}");
        }
        assert_eq!(k.len(), 12);
        // labels of uneven width still get one stride: 1K, 4K, 16K, ... not 1K, 2K, 4K, 8K, 32K
        let uneven: Vec<(f64, f64)> = (0..24)
            .map(|i| (i as f64 * 33.0, if i % 10 < 4 { 16.0 } else { 30.0 }))
            .collect();
        let k = spaced_labels(&uneven, 10.0);
        assert_eq!(&k[..4], [0, 2, 4, 6]);
        assert!(k[..k.len() - 1].windows(2).all(|w| w[1] - w[0] == 2), "{k:?}");
        assert_eq!(k.last(), Some(&23));
        assert!(spaced_labels(&[], 10.0).is_empty());
        assert_eq!(spaced_labels(&[(0.0, 10.0)], 10.0), vec![0]);
        // wide spacing keeps every label
        let wide: Vec<(f64, f64)> = (0..5).map(|i| (i as f64 * 100.0, 30.0)).collect();
        assert_eq!(spaced_labels(&wide, 10.0), vec![0, 1, 2, 3, 4]);
    }

    #[test]
    fn draws_log_axes_with_reference_lines() {
        let d = LineData {
            title: "t: throughput vs GPUs".into(),
            subtitle: "line one\nline two".into(),
            x_label: "GPUs".into(),
            y_label: "Throughput (tokens/s)".into(),
            log_x: true,
            log_y: true,
            x_ticks: power_of_two_ticks(64.0, 1024.0, |v| format!("{v}")),
            y_ticks: decade_ticks(1e4, 1.6e5),
            series: vec![Series {
                label: "a".into(),
                points: vec![(64.0, 1e4), (128.0, 1.9e4), (1024.0, 1.2e5)],
                reference: vec![(64.0, 1e4), (1024.0, 1.6e5)],
            }],
            reference_label: "ideal scaling".into(),
            legend_heading: "Series".into(),
        };
        let dir = scratch("lines");
        draw(&d, &dir.join("lines.png")).expect("PNG draws");
        draw(&d, &dir.join("lines.svg")).expect("SVG draws");
        check_files(&dir, "lines", &d.title);
        let svg = std::fs::read_to_string(dir.join("lines.svg")).expect("SVG");
        for text in ["1024", "100k", "ideal scaling", "line two"] {
            assert!(svg.contains(text), "{text:?} not in the SVG");
        }
        let _ = std::fs::remove_dir_all(dir);
    }
}
