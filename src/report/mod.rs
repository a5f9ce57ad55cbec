//! Reports: the human summary, the results JSON, charts and traces. Reads only
//! [`RunResult`]; never reaches into the engine.
//!
//! Every file is written to `NAME.tmp` and renamed, so an interrupted run never leaves a
//! half-written result.

pub mod charts;
pub mod diff;
pub mod html;
pub mod markdown;
pub mod summary;
pub mod trace;

use crate::scenario::Scenario;
use crate::simulation::RunResult;
use serde::Serialize;
use serde_json::json;
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

/// trainsim's version, recorded in results.json and report.html.
pub const VERSION: &str = env!("CARGO_PKG_VERSION");

/// The scenario a result came from, as results.json and report.html record it: the file,
/// its text (with `--set` overrides applied) and every input after presets and defaults.
#[derive(Debug, Clone, Serialize)]
pub struct ScenarioRecord {
    /// Scenario file.
    pub file: String,
    /// The TOML text simulated.
    pub source: String,
    /// Every input after presets, defaults and overrides: cluster (GPU constants
    /// included), model, plan, training, simulation, stragglers, routing, collectives and
    /// the training goal.
    pub resolved: serde_json::Value,
}

impl ScenarioRecord {
    /// The record of a loaded scenario.
    pub fn of(s: &Scenario) -> ScenarioRecord {
        let i = &s.input;
        let goal = i.goal.as_ref().map(|g| {
            json!({
                "target": g.target,
                "loss_law": g.loss_law_name,
                "loss_law_constants": g.loss_law,
                "critical_batch": g.critical_batch,
                "moe_effective_params": g.effective_params,
                "reliability": g.reliability,
                "energy": g.energy,
            })
        });
        ScenarioRecord {
            file: s.path.display().to_string(),
            source: s.source.clone(),
            resolved: json!({
                "name": i.name,
                "seed": i.seed,
                "cluster": i.cluster,
                "model": i.model,
                "parallel": i.plan,
                "training": i.training,
                "simulation": {"iterations": i.iterations, "warmup_iterations": i.warmup_iterations},
                "stragglers": i.stragglers,
                "moe": i.routing,
                "collectives": i.collectives,
                "goal": goal,
            }),
        }
    }
}

#[derive(Serialize)]
struct ResultsFile<'a> {
    trainsim_version: &'a str,
    #[serde(flatten)]
    result: &'a RunResult,
    #[serde(skip_serializing_if = "Option::is_none")]
    scenario: Option<&'a ScenarioRecord>,
}

/// Results as pretty JSON (deterministic: struct field order, no wall-clock values), with
/// trainsim's version; the timeline is left out (see [`timeline_json`]).
pub fn results_json(r: &RunResult) -> Vec<u8> {
    results_json_for(r, None)
}

/// [`results_json`] recording the scenario too.
pub fn results_json_for(r: &RunResult, scenario: Option<&ScenarioRecord>) -> Vec<u8> {
    let mut lean = r.clone();
    lean.timeline = Vec::new();
    let file = ResultsFile {
        trainsim_version: VERSION,
        result: &lean,
        scenario,
    };
    let mut v = serde_json::to_vec_pretty(&file).expect("RunResult serialises");
    v.push(b'\n');
    v
}

/// The timeline of the last iteration as JSON, one span per line (written beside
/// results.json as timeline.json: for a large run it is most of the bytes).
pub fn timeline_json(r: &RunResult) -> Vec<u8> {
    let mut out = String::from("[\n");
    for (i, span) in r.timeline.iter().enumerate() {
        if i > 0 {
            out.push_str(",\n");
        }
        out.push_str(&serde_json::to_string(span).expect("span serialises"));
    }
    out.push_str("\n]\n");
    out.into_bytes()
}

/// Reads a results JSON written by [`results_json`], with the timeline from timeline.json
/// beside it when the file has none.
pub fn read_results(path: &Path) -> Result<RunResult, ReportError> {
    let read = |p: &Path| {
        std::fs::read_to_string(p).map_err(|e| ReportError::Read {
            path: p.into(),
            message: e.to_string(),
        })
    };
    let text = read(path)?;
    let mut r: RunResult = serde_json::from_str(&text).map_err(|e| ReportError::Read {
        path: path.into(),
        message: e.to_string(),
    })?;
    let tl = path.with_file_name("timeline.json");
    if r.timeline.is_empty() && tl.is_file() {
        r.timeline = serde_json::from_str(&read(&tl)?).map_err(|e| ReportError::Read {
            path: tl.clone(),
            message: e.to_string(),
        })?;
    }
    Ok(r)
}

/// Writes results.json, every chart of `r` and report.md into `dir`; returns the paths written.
pub fn write_all(r: &RunResult, dir: &Path) -> Result<Vec<PathBuf>, ReportError> {
    write_all_for(r, None, dir)
}

/// [`write_all`] recording the scenario; also writes timeline.json and the self-contained
/// report.html.
pub fn write_all_for(
    r: &RunResult,
    scenario: Option<&ScenarioRecord>,
    dir: &Path,
) -> Result<Vec<PathBuf>, ReportError> {
    let mut written = write_results(r, scenario, dir)?;
    written.extend(charts::draw_all(r, dir)?);
    let md = dir.join("report.md");
    write_atomic(&md, markdown::markdown(r).as_bytes())?;
    written.push(md);
    let html = dir.join("report.html");
    write_atomic(&html, html::report_html(r, scenario)?.as_bytes())?;
    written.push(html);
    Ok(written)
}

/// Writes results.json and timeline.json into `dir`; returns the paths written.
pub fn write_results(
    r: &RunResult,
    scenario: Option<&ScenarioRecord>,
    dir: &Path,
) -> Result<Vec<PathBuf>, ReportError> {
    let json = dir.join("results.json");
    write_atomic(&json, &results_json_for(r, scenario))?;
    let tl = dir.join("timeline.json");
    write_atomic(&tl, &timeline_json(r))?;
    Ok(vec![json, tl])
}
