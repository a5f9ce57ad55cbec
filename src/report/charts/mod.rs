//! Charts drawn with plotters, as PNG and SVG, with an embedded font (DejaVu Sans): no
//! system fonts or fontconfig needed. One file per chart kind; each prepares its data
//! (already unit-scaled) apart from drawing it, so tests can check the data series.

pub mod breakdown;
pub mod busbw;
pub mod lines;
pub mod loss;
pub mod memory;
pub mod moe;
pub mod sweep;
pub mod timeline;

use super::ReportError;
use crate::simulation::RunResult;
use plotters::coord::types::RangedCoordf64;
use plotters::coord::Shift;
use plotters::prelude::*;
use plotters::style::text_anchor::{HPos, Pos, VPos};
use plotters::style::{register_font, FontStyle};
use std::path::{Path, PathBuf};
use std::sync::Once;

static FONTS: Once = Once::new();

/// Registers the embedded font for every family the charts use.
pub fn ensure_fonts() {
    FONTS.call_once(|| {
        // Registration only fails on a malformed font file; the embedded one is valid.
        let _ = register_font("sans-serif", FontStyle::Normal, dejavu::sans::regular());
        let _ = register_font("sans-serif", FontStyle::Bold, dejavu::sans::bold());
    });
}

/// Chart image width, pixels.
pub const WIDTH: u32 = 1200;

/// Title font size, pixels.
pub const TITLE_PX: u32 = 26;
/// Subtitle, axis-description and row-label font size, pixels.
pub const LABEL_PX: u32 = 18;
/// Tick-label and legend font size, pixels.
pub const TICK_PX: u32 = 16;
/// Height of the title block (title and subtitle), pixels.
const HEADER_PX: u32 = 78;
/// Font family every chart uses (registered by [`ensure_fonts`]).
const FAMILY: &str = "sans-serif";

pub(crate) fn chart_err(path: &Path, e: impl std::fmt::Display) -> ReportError {
    ReportError::Chart {
        path: path.to_path_buf(),
        message: e.to_string(),
    }
}

/// Draws a chart into `path` via a temp file then rename. `draw` gets the temp path.
pub(crate) fn atomic_chart(
    path: &Path,
    draw: impl FnOnce(&Path) -> Result<(), ReportError>,
) -> Result<(), ReportError> {
    if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
        std::fs::create_dir_all(dir).map_err(|e| ReportError::Io {
            path: dir.to_path_buf(),
            source: e,
        })?;
    }
    let tmp = super::tmp_path(path);
    // plotters picks the encoder from the extension: keep it on the temp name
    let tmp = tmp.with_extension(format!(
        "tmp.{}",
        path.extension().and_then(|e| e.to_str()).unwrap_or("png")
    ));
    if let Err(e) = draw(&tmp) {
        // a backend may still have written a partial image while being dropped
        let _ = std::fs::remove_file(&tmp);
        return Err(e);
    }
    std::fs::rename(&tmp, path).map_err(|e| ReportError::Io {
        path: path.to_path_buf(),
        source: e,
    })
}

/// Draws every chart that applies to `r` into `dir`, PNG and SVG.
pub fn draw_all(r: &RunResult, dir: &Path) -> Result<Vec<PathBuf>, ReportError> {
    ensure_fonts();
    let mut out = Vec::new();
    for ext in ["png", "svg"] {
        let p = dir.join(format!("breakdown.{ext}"));
        breakdown::draw(&breakdown::data(r), &p)?;
        out.push(p);
        let p = dir.join(format!("timeline.{ext}"));
        timeline::draw(&timeline::data(r), &p)?;
        out.push(p);
        let p = dir.join(format!("memory.{ext}"));
        memory::draw(&memory::data(r), &p)?;
        out.push(p);
        if let Some(d) = loss::data(r) {
            let p = dir.join(format!("loss.{ext}"));
            loss::draw(&d, &p)?;
            out.push(p);
        }
        if let Some(d) = moe::data(r) {
            let p = dir.join(format!("expert_load.{ext}"));
            moe::draw(&d, &p)?;
            out.push(p);
        }
    }
    Ok(out)
}

/// Renders a chart to SVG text in memory (for the explorer and report.html).
pub(crate) fn svg_text(chart: &impl Chart) -> Result<String, ReportError> {
    ensure_fonts();
    let mut text = String::new();
    {
        let root = SVGBackend::with_string(&mut text, chart.size()).into_drawing_area();
        root.fill(&WHITE)
            .and_then(|_| chart.render(&root))
            .and_then(|_| root.present())
            .map_err(|e| chart_err(Path::new("(in-memory SVG)"), e))?;
    }
    Ok(text)
}

/// Every chart [`draw_all`] draws for `r`, as (file stem, SVG text), in the same order.
pub fn svg_all(r: &RunResult) -> Result<Vec<(&'static str, String)>, ReportError> {
    let mut out = vec![
        ("breakdown", svg_text(&breakdown::data(r))?),
        ("timeline", svg_text(&timeline::data(r))?),
        ("memory", svg_text(&memory::data(r))?),
    ];
    if let Some(d) = loss::data(r) {
        out.push(("loss", svg_text(&d)?));
    }
    if let Some(d) = moe::data(r) {
        out.push(("expert_load", svg_text(&d)?));
    }
    Ok(out)
}

/// A stage's bar label: "stage 2", or on a heterogeneous cluster "stage 2 (A100-80GB)".
pub fn stage_label(r: &crate::simulation::RunResult, stage: usize) -> String {
    match r.gpu_per_stage.get(stage) {
        Some(gpu) => format!("stage {stage} ({gpu})"),
        None => format!("stage {stage}"),
    }
}

/// Chart time unit for a typical duration: milliseconds below one second, else seconds.
/// Returns the unit's name and the factor from seconds to it.
pub fn time_unit(typical_s: f64) -> (&'static str, f64) {
    if typical_s < 1.0 {
        ("ms", 1e3)
    } else {
        ("s", 1.0)
    }
}

/// Fixed colour of a time category, under both the breakdown's names ("exposed TP comm")
/// and the timeline's ("tp_comm"), so that both charts agree.
pub fn category_colour(category: &str) -> RGBColor {
    match category {
        "forward" => RGBColor(31, 119, 180),
        "backward" => RGBColor(255, 127, 14),
        // weight-gradient passes (W) apart from the backward (B, or B+W fused)
        "backward_weight" | "backward (weight)" => RGBColor(140, 109, 49),
        "recompute" => RGBColor(148, 103, 189),
        "optimizer" => RGBColor(140, 86, 75),
        "exposed TP comm" | "tp_comm" => RGBColor(214, 39, 40),
        "exposed DP grad comm" | "dp_comm" => RGBColor(44, 160, 44),
        "exposed DP param comm" => RGBColor(152, 223, 138),
        "exposed PP comm" | "pp_comm" => RGBColor(227, 119, 194),
        "sync" => RGBColor(23, 190, 207),
        "exposed EP all-to-all" | "ep_comm" => RGBColor(255, 187, 120),
        "MoE imbalance wait" => RGBColor(188, 189, 34),
        "exposed offload" | "offload" => RGBColor(23, 100, 150),
        "pipeline bubble" => RGBColor(199, 199, 199),
        "idle" => RGBColor(150, 150, 150),
        _ => RGBColor(188, 189, 34),
    }
}

/// One chart: its pixel size and how to draw it on any plotters backend.
pub(crate) trait Chart {
    /// Width and height, pixels.
    fn size(&self) -> (u32, u32);
    /// Draws onto `root` (the whole image, white background already filled).
    fn render<DB: DrawingBackend>(
        &self,
        root: &DrawingArea<DB, Shift>,
    ) -> Result<(), DrawingAreaErrorKind<DB::ErrorType>>;
}

/// Draws `chart` into `path`: SVG for `.svg`, PNG for `.png` (other extensions are an
/// error), atomically.
pub(crate) fn draw_chart(chart: &impl Chart, path: &Path) -> Result<(), ReportError> {
    ensure_fonts();
    let ext = path.extension().and_then(|e| e.to_str()).map(str::to_ascii_lowercase);
    let svg = match ext.as_deref() {
        Some("svg") => true,
        Some("png") => false,
        _ => return Err(chart_err(path, "unsupported chart format (use .png or .svg)")),
    };
    let size = chart.size();
    atomic_chart(path, |tmp| {
        if svg {
            let root = SVGBackend::new(tmp, size).into_drawing_area();
            root.fill(&WHITE)
                .and_then(|_| chart.render(&root))
                .and_then(|_| root.present())
                .map_err(|e| chart_err(path, e))
        } else {
            let root = BitMapBackend::new(tmp, size).into_drawing_area();
            root.fill(&WHITE)
                .and_then(|_| chart.render(&root))
                .and_then(|_| root.present())
                .map_err(|e| chart_err(path, e))
        }
    })
}

/// Font of `px` pixels.
pub(crate) fn font(px: u32) -> TextStyle<'static> {
    TextStyle::from((FAMILY, px).into_font())
}

/// Bold font of `px` pixels.
pub(crate) fn bold(px: u32) -> TextStyle<'static> {
    TextStyle::from((FAMILY, px, FontStyle::Bold).into_font())
}

/// Height of the title block of a chart whose subtitle is `subtitle` (one line per `\n`),
/// pixels.
pub(crate) fn header_px(subtitle: &str) -> u32 {
    HEADER_PX + (subtitle.lines().count().max(1) as u32 - 1) * SUBTITLE_LINE_PX
}

/// Pixels between subtitle lines.
const SUBTITLE_LINE_PX: u32 = LABEL_PX + 6;

/// Draws the centred title and subtitle (one line per `\n`); returns the area below them
/// ([`header_px`] high).
pub(crate) fn header<DB: DrawingBackend>(
    root: &DrawingArea<DB, Shift>,
    title: &str,
    subtitle: &str,
) -> Result<DrawingArea<DB, Shift>, DrawingAreaErrorKind<DB::ErrorType>> {
    let w = root.dim_in_pixel().0 as i32;
    let centre = Pos::new(HPos::Center, VPos::Top);
    root.draw(&Text::new(title, (w / 2, 12), bold(TITLE_PX).pos(centre)))?;
    for (i, line) in subtitle.lines().enumerate() {
        // a long plan label gets a smaller font rather than running off the image
        let sub_px = if text_px(line, LABEL_PX) as i32 > w - 24 {
            TICK_PX
        } else {
            LABEL_PX
        };
        root.draw(&Text::new(
            line,
            (w / 2, 12 + TITLE_PX as i32 + 10 + (i as u32 * SUBTITLE_LINE_PX) as i32),
            font(sub_px).pos(centre),
        ))?;
    }
    Ok(root.split_vertically(header_px(subtitle)).1)
}

/// A legend entry's swatch.
pub(crate) enum Swatch {
    /// Filled box.
    Fill(RGBColor),
    /// Thick line.
    Line(RGBColor),
    /// Thick dashed line.
    Dashed(RGBColor),
    /// Empty box with a thick outline.
    Outline(RGBColor),
}

/// Draws a legend (heading, then one swatch and label per entry, top-down) into `area`.
pub(crate) fn legend<DB: DrawingBackend>(
    area: &DrawingArea<DB, Shift>,
    heading: &str,
    entries: &[(String, Swatch)],
) -> Result<(), DrawingAreaErrorKind<DB::ErrorType>> {
    let x = 8;
    let mut y = 24;
    area.draw(&Text::new(heading, (x, y), bold(TICK_PX)))?;
    y += 30;
    for (label, swatch) in entries {
        match swatch {
            Swatch::Fill(c) => {
                area.draw(&Rectangle::new([(x, y), (x + 22, y + 18)], c.filled()))?;
                area.draw(&Rectangle::new(
                    [(x, y), (x + 22, y + 18)],
                    BLACK.mix(0.6).stroke_width(1),
                ))?;
            }
            Swatch::Line(c) => area.draw(&PathElement::new(vec![(x, y + 9), (x + 22, y + 9)], c.stroke_width(3)))?,
            Swatch::Dashed(c) => {
                for x0 in [x, x + 9, x + 18] {
                    area.draw(&PathElement::new(vec![(x0, y + 9), (x0 + 5, y + 9)], c.stroke_width(3)))?;
                }
            }
            Swatch::Outline(c) => area.draw(&Rectangle::new([(x + 1, y + 1), (x + 21, y + 17)], c.stroke_width(3)))?,
        }
        area.draw(&Text::new(
            label.as_str(),
            (x + 30, y + 9),
            font(TICK_PX).pos(Pos::new(HPos::Left, VPos::Center)),
        ))?;
        y += 27;
    }
    Ok(())
}

/// A chart of horizontal rows: x is a quantity from 0 to `x_max`, y holds `rows` rows of
/// height 1, row 0 at the top (y from `rows - 1` to `rows`). Draws the mesh, the axis
/// descriptions and each row's label, right-aligned left of the plot.
pub(crate) struct RowChart<'a> {
    /// Upper end of the x axis.
    pub x_max: f64,
    /// Row labels, top to bottom.
    pub rows: &'a [String],
    /// Width of the row-label area, pixels.
    pub label_px: u32,
    /// x-axis description.
    pub x_desc: &'a str,
    /// y-axis description.
    pub y_desc: &'a str,
}

/// The chart context of a [`RowChart`].
pub(crate) type RowContext<'a, DB> = ChartContext<'a, DB, Cartesian2d<RangedCoordf64, RangedCoordf64>>;

/// y coordinate of the centre of row `i` of `n` (row 0 at the top).
pub(crate) fn row_centre(i: usize, n: usize) -> f64 {
    (n - i) as f64 - 0.5
}

impl RowChart<'_> {
    /// Builds the chart in `area`; `root` is the whole image (row labels go there).
    pub(crate) fn build<'a, DB: DrawingBackend>(
        &self,
        root: &DrawingArea<DB, Shift>,
        area: &'a DrawingArea<DB, Shift>,
    ) -> Result<RowContext<'a, DB>, DrawingAreaErrorKind<DB::ErrorType>> {
        let n = self.rows.len().max(1);
        let x_max = if self.x_max > 0.0 && self.x_max.is_finite() {
            self.x_max
        } else {
            1.0
        };
        let mut chart = ChartBuilder::on(area)
            .margin(14)
            .margin_right(28)
            .x_label_area_size(64)
            .y_label_area_size(self.label_px)
            .build_cartesian_2d(0.0..x_max, 0.0..n as f64)?;
        chart
            .configure_mesh()
            .disable_y_mesh()
            .y_labels(0)
            .x_labels(10)
            .x_desc(self.x_desc)
            .y_desc(self.y_desc)
            .axis_desc_style(font(LABEL_PX))
            .label_style(font(TICK_PX))
            .bold_line_style(BLACK.mix(0.15))
            .light_line_style(TRANSPARENT)
            .draw()?;
        let right = Pos::new(HPos::Right, VPos::Center);
        for (i, label) in self.rows.iter().enumerate() {
            let (px, py) = chart.backend_coord(&(0.0, row_centre(i, n)));
            root.draw(&Text::new(label.as_str(), (px - 8, py), font(TICK_PX).pos(right)))?;
        }
        Ok(chart)
    }
}

/// Pixel width of `text` in the chart font, approximately (for sizing label areas).
pub(crate) fn text_px(text: &str, px: u32) -> u32 {
    // DejaVu Sans averages about 0.52 em per character in these labels; err on the wide side
    (text.chars().count() as f64 * px as f64 * 0.58).ceil() as u32
}

/// Short number: three significant digits, no exponent for ordinary magnitudes.
pub(crate) fn short(x: f64) -> String {
    let a = x.abs();
    if a < 1e-12 {
        "0".into()
    } else if a >= 100.0 {
        format!("{x:.0}")
    } else if a >= 10.0 {
        format!("{x:.1}")
    } else if a >= 1.0 {
        format!("{x:.2}")
    } else {
        format!("{x:.3}")
    }
}

#[cfg(test)]
pub(crate) mod test_support {
    //! A tiny simulated run shared by the chart tests, and scratch folders.

    use crate::simulation::RunResult;
    use std::path::{Path, PathBuf};
    use std::sync::atomic::{AtomicU32, Ordering};
    use std::sync::OnceLock;

    const SRC: &str = r#"
name = "tiny-chart-test"
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
"#;

    /// The tiny run (simulated once per test process).
    pub fn tiny_run() -> &'static RunResult {
        static RUN: OnceLock<RunResult> = OnceLock::new();
        RUN.get_or_init(|| {
            let s = crate::scenario::Scenario::from_source(SRC, Path::new("t.toml")).expect("tiny scenario parses");
            crate::simulation::run(&s.input).expect("tiny scenario runs")
        })
    }

    /// A fresh, empty scratch folder.
    pub fn scratch(tag: &str) -> PathBuf {
        static N: AtomicU32 = AtomicU32::new(0);
        let nanos = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map(|d| d.as_nanos())
            .unwrap_or(0);
        let d = std::env::temp_dir().join(format!(
            "trainsim-charts-{tag}-{}-{nanos}-{}",
            std::process::id(),
            N.fetch_add(1, Ordering::Relaxed)
        ));
        std::fs::create_dir_all(&d).expect("scratch folder");
        d
    }

    /// Checks a drawn PNG and SVG and that no temp file is left in `dir`.
    pub fn check_files(dir: &Path, stem: &str, title: &str) {
        let png = std::fs::read(dir.join(format!("{stem}.png"))).expect("PNG written");
        assert!(
            png.starts_with(&[0x89, b'P', b'N', b'G', 0x0d, 0x0a, 0x1a, 0x0a]),
            "PNG magic"
        );
        let svg = std::fs::read_to_string(dir.join(format!("{stem}.svg"))).expect("SVG written");
        assert!(svg.contains("<svg"), "SVG root");
        assert!(svg.contains(title), "SVG holds the title {title:?}");
        for e in std::fs::read_dir(dir).expect("scratch readable") {
            let name = e.expect("entry").file_name().to_string_lossy().into_owned();
            assert!(!name.contains(".tmp"), "temp file left behind: {name}");
        }
    }
}
