//! Reports: the human summary, the results JSON, charts and traces. Reads only
//! [`RunResult`]; never reaches into the engine.
//!
//! Every file is written to `NAME.tmp` and renamed, so an interrupted run never leaves a
//! half-written result.

pub mod charts;
pub mod markdown;
pub mod summary;
pub mod trace;

use crate::simulation::RunResult;
use std::io::Write;
use std::path::{Path, PathBuf};
use thiserror::Error;

/// A report could not be written.
#[derive(Debug, Error)]
pub enum ReportError {
    /// File-system error on `path`.
    #[error("cannot write {path}: {source}")]
    Io {
        /// File.
        path: PathBuf,
        /// Cause.
        source: std::io::Error,
    },
    /// A chart failed to render.
    #[error("cannot draw chart {path}: {message}")]
    Chart {
        /// File.
        path: PathBuf,
        /// Cause.
        message: String,
    },
    /// Results JSON could not be read back.
    #[error("cannot read results {path}: {message}")]
    Read {
        /// File.
        path: PathBuf,
        /// Cause.
        message: String,
    },
}

/// Communication per dimension including its hidden part, s per step, as text:
/// "TP 1.797 s, DP 0.460 s, PP 0.159 s" (CP and EP only when they communicate).
pub fn comm_totals_text(b: &crate::simulation::breakdown::Breakdown) -> String {
    use crate::parallel::Dim;
    [Dim::Tp, Dim::Cp, Dim::Dp, Dim::Pp, Dim::Ep]
        .into_iter()
        .map(|d| (d, b.total_comm_of_dim(d)))
        .filter(|&(d, s)| s > 0.0 || matches!(d, Dim::Tp | Dim::Dp | Dim::Pp))
        .map(|(d, s)| format!("{} {s:.3} s", d.label()))
        .collect::<Vec<_>>()
        .join(", ")
}

/// Writes `bytes` to `path` atomically (temp file in the same folder, then rename).
pub fn write_atomic(path: &Path, bytes: &[u8]) -> Result<(), ReportError> {
    let io = |e| ReportError::Io {
        path: path.to_path_buf(),
        source: e,
    };
    if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
        std::fs::create_dir_all(dir).map_err(io)?;
    }
    let tmp = tmp_path(path);
    let mut f = std::fs::File::create(&tmp).map_err(io)?;
    f.write_all(bytes).map_err(io)?;
    f.sync_all().map_err(io)?;
    drop(f);
    std::fs::rename(&tmp, path).map_err(io)
}

/// `path` with `.tmp` appended to its file name.
pub fn tmp_path(path: &Path) -> PathBuf {
    let mut name = path.file_name().map(|n| n.to_os_string()).unwrap_or_default();
    name.push(".tmp");
    path.with_file_name(name)
}

/// Results as pretty JSON (deterministic: struct field order, no wall-clock values).
pub fn results_json(r: &RunResult) -> Vec<u8> {
    let mut v = serde_json::to_vec_pretty(r).expect("RunResult serialises");
    v.push(b'\n');
    v
}

/// Reads a results JSON written by [`results_json`].
pub fn read_results(path: &Path) -> Result<RunResult, ReportError> {
    let text = std::fs::read_to_string(path).map_err(|e| ReportError::Read {
        path: path.into(),
        message: e.to_string(),
    })?;
    serde_json::from_str(&text).map_err(|e| ReportError::Read {
        path: path.into(),
        message: e.to_string(),
    })
}

/// Writes results.json, every chart of `r` and report.md into `dir`; returns the paths written.
pub fn write_all(r: &RunResult, dir: &Path) -> Result<Vec<PathBuf>, ReportError> {
    let mut written = Vec::new();
    let json = dir.join("results.json");
    write_atomic(&json, &results_json(r))?;
    written.push(json);
    written.extend(charts::draw_all(r, dir)?);
    let md = dir.join("report.md");
    write_atomic(&md, markdown::markdown(r).as_bytes())?;
    written.push(md);
    Ok(written)
}
