//! Runs sweep points in parallel and streams one row per point, in point order, to CSV
//! and JSON Lines. Rows go to `NAME.partial` files, flushed after every chunk, and are
//! renamed to their final names when the sweep completes: an interrupted sweep leaves no
//! corrupt result, and rerunning it resumes after the last complete row.

use super::columns::{METRIC_COLUMNS, MOE_COLUMNS};
use super::merge::{meta_path, read_meta, write_meta, Meta, META_FORMAT};
use super::spec::{value_text, Point, SweepSpec};
use crate::scenario::Scenario;
use crate::simulation::breakdown::Category;
use crate::simulation::{self, RunResult};
use crate::workload::CommKind;
use rayon::prelude::*;
use serde_json::json;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::time::Instant;

/// The [`MOE_COLUMNS`] values of a run (`None` for a dense model), in that order.
fn moe_values(r: &RunResult) -> Option<[f64; 4]> {
    let m = r.moe.as_ref()?;
    let b = &r.breakdown;
    Some([
        b.exposed(CommKind::Ep),
        b.get(Category::MoeImbalance),
        m.dropped_fraction,
        m.rank_load_max_over_mean,
    ])
}

fn opt_cell(x: Option<f64>, digits: usize) -> String {
    x.filter(|v| v.is_finite())
        .map(|v| format!("{v:.digits$}"))
        .unwrap_or_default()
}

/// Outcome of one point.
#[derive(Clone, Debug, PartialEq)]
pub struct Row {
    /// Point index.
    pub index: usize,
    /// Axis values as text.
    pub axis_values: Vec<String>,
    /// Result, or why the point is infeasible.
    pub result: Result<Box<RunResult>, String>,
}

impl Row {
    /// Feasible: the plan is valid, simulates, and fits in memory.
    pub fn feasible(&self) -> bool {
        matches!(&self.result, Ok(r) if r.memory.fits)
    }

    fn reason(&self) -> String {
        match &self.result {
            Ok(r) if !r.memory.fits => format!(
                "out of memory: {:.1} GiB of {:.1} GiB",
                r.memory.total_gib, r.memory.capacity_gib
            ),
            Ok(_) => String::new(),
            Err(e) => e.clone(),
        }
    }

    /// CSV cells (metrics empty when the point did not simulate).
    pub fn csv_cells(&self) -> Vec<String> {
        let mut c = vec![self.index.to_string()];
        c.extend(self.axis_values.iter().cloned());
        c.push(self.feasible().to_string());
        c.push(self.reason());
        match &self.result {
            Ok(r) => {
                let b = &r.breakdown;
                c.extend([
                    format!("{:.6}", r.step_time_s),
                    format!("{:.1}", r.tokens_per_s),
                    format!("{:.3}", r.tokens_per_s_per_gpu),
                    format!("{:.3}", r.model_tflops_per_gpu),
                    format!("{:.3}", 100.0 * r.mfu_fraction),
                    format!("{:.3}", 100.0 * r.hfu_fraction),
                    format!("{:.3}", 100.0 * r.bubble_fraction),
                    format!("{:.6}", b.exposed(CommKind::Tp)),
                    format!("{:.6}", b.exposed(CommKind::DpGrad) + b.exposed(CommKind::DpParam)),
                    format!("{:.6}", b.exposed(CommKind::Pp)),
                    format!("{:.6}", b.exposed(CommKind::Cp)),
                    format!("{:.3}", r.memory.total_gib),
                    r.memory.fits.to_string(),
                    r.num_gpus.to_string(),
                    format!("{:.6}", r.step_time_s * r.num_gpus as f64 / 3600.0),
                ]);
                let to = r.to_target.as_ref();
                c.extend([
                    opt_cell(to.map(|t| t.wall_clock_to_target_days), 4),
                    opt_cell(to.map(|t| t.energy.cost_usd), 0),
                    opt_cell(to.map(|t| t.energy.energy_to_target_kwh), 1),
                ]);
                let moe = moe_values(r);
                c.extend(
                    [6, 6, 6, 4]
                        .iter()
                        .enumerate()
                        .map(|(i, &d)| opt_cell(moe.map(|v| v[i]), d)),
                );
                c.push(r.plan.clone());
            }
            Err(_) => c.extend(std::iter::repeat_n(String::new(), METRIC_COLUMNS.len() - 2)),
        }
        c
    }

    /// One JSON Lines record.
    pub fn json_line(&self, axes: &[String]) -> String {
        let mut m = serde_json::Map::new();
        m.insert("point".into(), json!(self.index));
        let values: serde_json::Map<String, serde_json::Value> = axes
            .iter()
            .cloned()
            .zip(self.axis_values.iter().map(|v| json!(v)))
            .collect();
        m.insert("axes".into(), serde_json::Value::Object(values));
        m.insert("feasible".into(), json!(self.feasible()));
        m.insert("reason".into(), json!(self.reason()));
        if let Ok(r) = &self.result {
            let b = &r.breakdown;
            for (k, v) in [
                ("step_time_s", r.step_time_s),
                ("tokens_per_s", r.tokens_per_s),
                ("tokens_per_s_per_gpu", r.tokens_per_s_per_gpu),
                ("model_tflops_per_gpu", r.model_tflops_per_gpu),
                ("mfu_fraction", r.mfu_fraction),
                ("hfu_fraction", r.hfu_fraction),
                ("bubble_fraction", r.bubble_fraction),
                ("exposed_tp_comm_s", b.exposed(CommKind::Tp)),
                (
                    "exposed_dp_comm_s",
                    b.exposed(CommKind::DpGrad) + b.exposed(CommKind::DpParam),
                ),
                ("exposed_pp_comm_s", b.exposed(CommKind::Pp)),
                ("exposed_cp_comm_s", b.exposed(CommKind::Cp)),
                ("memory_gib", r.memory.total_gib),
                ("gpu_hours_per_step", r.step_time_s * r.num_gpus as f64 / 3600.0),
            ] {
                m.insert(k.into(), json!(v));
            }
            m.insert("fits_in_memory".into(), json!(r.memory.fits));
            if let Some(t) = &r.to_target {
                m.insert("time_to_target_days".into(), json!(t.wall_clock_to_target_days));
                m.insert("cost_usd".into(), json!(t.energy.cost_usd));
                m.insert("energy_to_target_kwh".into(), json!(t.energy.energy_to_target_kwh));
            }
            if let Some(v) = moe_values(r) {
                for (k, x) in MOE_COLUMNS.iter().zip(v) {
                    m.insert((*k).into(), json!(x));
                }
            }
            m.insert("plan".into(), json!(r.plan));
        }
        serde_json::Value::Object(m).to_string()
    }
}

/// Simulates one point.
pub fn run_point(spec: &SweepSpec, p: &Point) -> Row {
    let axis_values = p.values.iter().map(value_text).collect();
    let table = spec.table_for(&p.values);
    let name = PathBuf::from(format!("{} point {}", spec.path.display(), p.index));
    let result = match Scenario::from_table(&table, &name) {
        Err(e) => Err(e.reason()),
        Ok(s) => simulation::run_summary(&s.input)
            .map(Box::new)
            .map_err(|e| e.to_string()),
    };
    Row {
        index: p.index,
        axis_values,
        result,
    }
}

fn csv_escape(cell: &str) -> String {
    if cell.contains([',', '"', '\n']) {
        format!("\"{}\"", cell.replace('"', "\"\""))
    } else {
        cell.to_string()
    }
}

/// CSV header of a sweep.
pub fn csv_header(spec: &SweepSpec) -> String {
    let mut h = vec!["point".to_string()];
    h.extend(spec.axes.iter().map(|a| a.field.clone()));
    h.extend(METRIC_COLUMNS.iter().map(|s| s.to_string()));
    h.iter().map(|c| csv_escape(c)).collect::<Vec<_>>().join(",")
}

/// Where a sweep writes and which points it runs.
#[derive(Clone, Debug)]
pub struct SweepOptions {
    /// Output folder.
    pub out_dir: PathBuf,
    /// Run only points with `index % n == i`.
    pub shard: Option<(usize, usize)>,
    /// Ignore partial files from an interrupted run.
    pub restart: bool,
    /// Print progress to stderr.
    pub progress: bool,
    /// Charts to draw when the sweep ends (unsharded runs).
    pub charts: super::charts::ChartOptions,
    /// Largest grid (points before filtering) to run, e.g. [`super::spec::DEFAULT_MAX_POINTS`].
    pub max_points: usize,
}

/// What a finished sweep wrote.
#[derive(Clone, Debug)]
pub struct SweepOutcome {
    /// CSV path.
    pub csv: PathBuf,
    /// JSON Lines path.
    pub jsonl: PathBuf,
    /// Charts drawn (unsharded runs only).
    pub charts: Vec<PathBuf>,
    /// Points in this run (shard).
    pub points: usize,
    /// Points resumed from an earlier, interrupted run.
    pub resumed: usize,
    /// Feasible points.
    pub feasible: usize,
    /// Wall time, s.
    pub wall_s: f64,
}

fn partial(p: &Path) -> PathBuf {
    let mut n = p.file_name().map(|n| n.to_os_string()).unwrap_or_default();
    n.push(".partial");
    p.with_file_name(n)
}

/// Complete lines of a partial file (a torn last line is dropped).
fn complete_lines(p: &Path) -> Vec<String> {
    let Ok(bytes) = std::fs::read(p) else { return Vec::new() };
    String::from_utf8_lossy(&bytes)
        .split_inclusive('\n')
        .filter(|l| l.ends_with('\n') && l.len() > 1)
        .map(|l| l.trim_end_matches('\n').to_string())
        .collect()
}

/// Runs the sweep.
pub fn run_sweep(spec: &SweepSpec, opts: &SweepOptions) -> anyhow::Result<SweepOutcome> {
    let started = Instant::now();
    // the points share the scenario's routing noise when their seeds agree: drawn once per thread
    let _noise = crate::workload::routing::cache_noise();
    let all = spec.points_limited(opts.max_points)?;
    let total = all.len();
    let points: Vec<Point> = match opts.shard {
        Some((i, n)) => all.into_iter().filter(|p| p.index % n == i).collect(),
        None => all,
    };
    let stem = match opts.shard {
        Some((i, n)) => format!("sweep.shard-{i}-of-{n}"),
        None => "sweep".to_string(),
    };
    std::fs::create_dir_all(&opts.out_dir)?;
    let csv = opts.out_dir.join(format!("{stem}.csv"));
    let jsonl = opts.out_dir.join(format!("{stem}.jsonl"));
    let (csv_part, json_part) = (partial(&csv), partial(&jsonl));
    let header = csv_header(spec);
    let axes: Vec<String> = spec.axes.iter().map(|a| a.field.clone()).collect();

    let meta_file = meta_path(&csv);
    let meta_part = partial(&meta_file);
    let meta = Meta {
        format: META_FORMAT,
        sweep: spec.name.clone(),
        identity: spec.identity(),
        shard: opts.shard,
        points: total,
        rows: points.len(),
    };

    // resume: keep the complete rows both partial files agree on, if they are of this sweep
    let mut done = 0usize;
    if !opts.restart {
        let c = complete_lines(&csv_part);
        let j = complete_lines(&json_part);
        let same = read_meta(&meta_part).is_some_and(|m| m == meta);
        if !same && (c.len() > 1 || !j.is_empty()) {
            eprintln!(
                "warning: {}: sweep file changed since the interrupted run; starting over \
                 (the partial results in {} are of another sweep file, base scenario or --set)",
                spec.path.display(),
                opts.out_dir.display()
            );
        }
        if same && c.first() == Some(&header) {
            done = (c.len() - 1).min(j.len()).min(points.len());
        }
        if done > 0 {
            let keep_c = c[..=done].join("\n") + "\n";
            let keep_j = j[..done].join("\n") + "\n";
            std::fs::write(&csv_part, keep_c)?;
            std::fs::write(&json_part, keep_j)?;
        }
    }
    let mut csv_w = std::fs::OpenOptions::new().create(true).append(true).open(&csv_part)?;
    let mut json_w = std::fs::OpenOptions::new().create(true).append(true).open(&json_part)?;
    if done == 0 {
        csv_w.set_len(0)?;
        json_w.set_len(0)?;
        writeln!(csv_w, "{header}")?;
        write_meta(&meta_part, &meta)?;
    }
    // small chunks: rows reach the partial files soon after they are computed
    let chunk = rayon::current_num_threads().max(1) * 4;
    let todo = &points[done..];
    let mut feasible = 0usize;
    let mut finished = done;
    for part in todo.chunks(chunk) {
        let rows: Vec<Row> = part.par_iter().map(|p| run_point(spec, p)).collect();
        for r in &rows {
            feasible += r.feasible() as usize;
            let cells: Vec<String> = r.csv_cells().iter().map(|c| csv_escape(c)).collect();
            writeln!(csv_w, "{}", cells.join(","))?;
            writeln!(json_w, "{}", r.json_line(&axes))?;
        }
        csv_w.flush()?;
        json_w.flush()?;
        finished += rows.len();
        if opts.progress {
            let el = started.elapsed().as_secs_f64();
            let rate = (finished - done) as f64 / el.max(1e-9);
            let eta = (points.len() - finished) as f64 / rate.max(1e-9);
            eprint!(
                "\rsweep {}: {finished}/{} points, {rate:.1} points/s, ETA {eta:.0} s   ",
                spec.name,
                points.len()
            );
        }
    }
    if opts.progress {
        eprintln!();
    }
    csv_w.sync_all()?;
    json_w.sync_all()?;
    drop((csv_w, json_w));
    std::fs::rename(&csv_part, &csv)?;
    std::fs::rename(&json_part, &jsonl)?;
    // last: a meta file names its CSV's sweep only once that CSV is complete
    std::fs::rename(&meta_part, &meta_file)?;
    let charts = if opts.shard.is_none() {
        super::charts::draw(spec, &csv, &opts.charts)?
    } else {
        Vec::new()
    };
    Ok(SweepOutcome {
        csv,
        jsonl,
        charts,
        points: points.len(),
        resumed: done,
        feasible,
        wall_s: started.elapsed().as_secs_f64(),
    })
}
