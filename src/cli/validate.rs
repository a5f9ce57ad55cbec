//! `trainsim validate`: predicted vs measured step time over a folder of scenarios.

use crate::scenario::Scenario;
use crate::simulation;
use rayon::prelude::*;
use std::fmt::Write as _;
use std::path::{Path, PathBuf};

/// One compared scenario.
#[derive(Clone, Debug)]
pub struct Row {
    /// Scenario file.
    pub path: PathBuf,
    /// Scenario name.
    pub name: String,
    /// Predicted step time, s.
    pub predicted_s: f64,
    /// Measured step time, s.
    pub measured_s: f64,
    /// Signed error, percent.
    pub error_pct: f64,
    /// Whether the plan fits in memory.
    pub fits: bool,
}

/// Every `*.toml` regular file below `dir`, sorted; `dir` itself when it is a file.
/// Symbolic links to folders are not followed (a link to a parent would never end), and
/// FIFOs and devices named `*.toml` are skipped (reading one would block).
pub fn scenario_files(dir: &Path) -> std::io::Result<Vec<PathBuf>> {
    if dir.is_file() {
        return Ok(vec![dir.to_path_buf()]);
    }
    let mut out = Vec::new();
    let mut stack = vec![dir.to_path_buf()];
    while let Some(d) = stack.pop() {
        for e in std::fs::read_dir(&d)? {
            let e = e?;
            let p = e.path();
            if e.file_type()?.is_dir() {
                stack.push(p);
            } else if p.extension().is_some_and(|x| x == "toml") && p.is_file() {
                out.push(p);
            }
        }
    }
    out.sort();
    Ok(out)
}

/// What [`compare_all`] found: compared scenarios, and files that could not be used (each
/// with its located error).
#[derive(Debug, Default)]
pub struct Comparison {
    /// Scenarios with a measured step time, predicted and compared.
    pub rows: Vec<Row>,
    /// Files that did not load or simulate, with the error (the others still run).
    pub failed: Vec<(PathBuf, String)>,
    /// Valid scenarios without `[measured] step_time_s` (nothing to compare).
    pub without_measured: usize,
}

/// Simulates every scenario with a measured step time below `path` (a folder, searched
/// recursively, or one file), in parallel, order kept; a bad file is reported and skipped.
pub fn compare_all(path: &Path) -> anyhow::Result<Comparison> {
    let files = scenario_files(path).map_err(|e| anyhow::anyhow!("cannot read {}: {e}", path.display()))?;
    let outcomes: Vec<Result<Option<Row>, String>> = files
        .par_iter()
        .map(|f| {
            let s = Scenario::load(f).map_err(|e| e.to_string())?;
            let Some(measured_s) = s.measured.as_ref().and_then(|m| m.step_time_s) else {
                return Ok(None);
            };
            let r = simulation::run_summary(&s.input).map_err(|e| format!("{}: {e}", s.path.display()))?;
            Ok(Some(Row {
                path: s.path.clone(),
                name: s.input.name.clone(),
                predicted_s: r.step_time_s,
                measured_s,
                error_pct: 100.0 * (r.step_time_s / measured_s - 1.0),
                fits: r.memory.fits,
            }))
        })
        .collect();
    let mut c = Comparison::default();
    for (f, o) in files.iter().zip(outcomes) {
        match o {
            Ok(Some(row)) => c.rows.push(row),
            Ok(None) => c.without_measured += 1,
            Err(e) => c.failed.push((f.clone(), e)),
        }
    }
    Ok(c)
}

/// Simulates every scenario with a measured step time (in parallel; order kept); the
/// first file that does not load or simulate is an error.
pub fn compare(dir: &Path) -> anyhow::Result<Vec<Row>> {
    let c = compare_all(dir)?;
    if let Some((_, e)) = c.failed.into_iter().next() {
        anyhow::bail!(e);
    }
    Ok(c.rows)
}

/// Mean absolute percentage error of `rows`.
pub fn mape_pct(rows: &[Row]) -> f64 {
    rows.iter().map(|r| r.error_pct.abs()).sum::<f64>() / rows.len().max(1) as f64
}

pub(super) fn validate(
    dir: &Path,
    check: bool,
    max_mape: f64,
    max_err: f64,
    csv: Option<&Path>,
) -> anyhow::Result<i32> {
    if !dir.exists() {
        eprintln!("error: {}: no such file or folder", dir.display());
        return Ok(2);
    }
    if !dir.is_file() && !dir.is_dir() {
        eprintln!(
            "error: {}: neither a scenario file nor a folder (a FIFO or device?)",
            dir.display()
        );
        return Ok(2);
    }
    let Comparison {
        rows,
        failed,
        without_measured,
    } = compare_all(dir)?;
    for (_, e) in &failed {
        eprintln!("error: {e}");
    }
    if rows.is_empty() {
        let what = if dir.is_file() {
            "is not a scenario with"
        } else {
            "holds no scenario with"
        };
        eprintln!(
            "error: {} {what} [measured] step_time_s ({} valid without one, {} with errors); validate compares predictions with measured step times",
            dir.display(),
            without_measured,
            failed.len()
        );
        return Ok(2);
    }
    let mut t = String::new();
    let _ = writeln!(
        t,
        "{:<48} {:>14} {:>14} {:>10}",
        "scenario", "predicted [s]", "measured [s]", "error [%]"
    );
    for r in &rows {
        let _ = writeln!(
            t,
            "{:<48} {:>14.3} {:>14.3} {:>+10.1}{}",
            r.name,
            r.predicted_s,
            r.measured_s,
            r.error_pct,
            if r.fits { "" } else { "  (does not fit in memory)" }
        );
    }
    let mape = mape_pct(&rows);
    let worst = rows.iter().map(|r| r.error_pct.abs()).fold(0.0, f64::max);
    let _ = writeln!(
        t,
        "\n{} scenarios: MAPE {:.1}%, worst |error| {:.1}%",
        rows.len(),
        mape,
        worst
    );
    print!("{t}");
    if let Some(p) = csv {
        let mut c = String::from("scenario,predicted_step_time_s,measured_step_time_s,error_pct,fits_in_memory\n");
        for r in &rows {
            let _ = writeln!(
                c,
                "{},{:.6},{:.6},{:.3},{}",
                r.name, r.predicted_s, r.measured_s, r.error_pct, r.fits
            );
        }
        crate::report::write_atomic(p, c.as_bytes())?;
    }
    if !failed.is_empty() {
        eprintln!(
            "{} file(s) could not be used (errors above); the table covers the others",
            failed.len()
        );
    }
    if check && (mape > max_mape || worst > max_err) {
        eprintln!("validation failed: MAPE {mape:.1}% (limit {max_mape}%), worst {worst:.1}% (limit {max_err}%)");
        return Ok(1);
    }
    Ok(if failed.is_empty() { 0 } else { 2 })
}
