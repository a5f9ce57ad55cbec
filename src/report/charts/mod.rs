//! Charts drawn with plotters, as PNG and SVG, with an embedded font (DejaVu Sans): no
//! system fonts or fontconfig needed. One file per chart kind; each prepares its data
//! (already unit-scaled) apart from drawing it, so tests can check the data series.

pub mod breakdown;
pub mod memory;
pub mod timeline;

use super::ReportError;
use crate::simulation::RunResult;
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

pub(crate) fn chart_err(path: &Path, e: impl std::fmt::Display) -> ReportError {
    ReportError::Chart { path: path.to_path_buf(), message: e.to_string() }
}

/// Draws a chart into `path` via a temp file then rename. `draw` gets the temp path.
pub(crate) fn atomic_chart(path: &Path, draw: impl FnOnce(&Path) -> Result<(), ReportError>) -> Result<(), ReportError> {
    if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
        std::fs::create_dir_all(dir).map_err(|e| ReportError::Io { path: dir.to_path_buf(), source: e })?;
    }
    let tmp = super::tmp_path(path);
    // plotters picks the encoder from the extension: keep it on the temp name
    let tmp = tmp.with_extension(format!("tmp.{}", path.extension().and_then(|e| e.to_str()).unwrap_or("png")));
    draw(&tmp)?;
    std::fs::rename(&tmp, path).map_err(|e| ReportError::Io { path: path.to_path_buf(), source: e })
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
    }
    Ok(out)
}
