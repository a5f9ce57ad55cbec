//! Charts of a finished sweep, drawn from its CSV ([`SweepTable`]):
//! - `scaling`: a metric (throughput by default) against the axis that doubles the GPU
//!   count or the data-parallel degree, one line per combination of the other axes, with
//!   each line's ideal scaling dashed, on log axes where they double. Only scaling sweeps
//!   get one.
//! - `heatmap` (two-axis sweeps): a metric (throughput per GPU by default) per cell, the
//!   best cell outlined, infeasible cells with the reason (out of memory with its GiB).
//! - `pareto`: two metrics with the non-dominated front; default axes that are not
//!   proportional to each other.
//!
//! Also the Pareto chart of a plan search.

use super::columns::{numeric_columns, TARGET_COLUMNS};
use super::pareto::{front, Better};
use super::spec::{SweepError, SweepSpec};
use super::table::{axis_groups, AxisGroup, SweepTable};
use crate::report::charts::lines::{decade_ticks, LineData, Series, Tick};
use crate::report::charts::sweep::{draw_heatmap, draw_pareto, HeatmapData, ParetoData};
use crate::report::ReportError;
use std::path::{Path, PathBuf};

pub use super::table::split_csv;

/// A chart of a sweep.
#[derive(Clone, Copy, Debug, PartialEq, Eq, clap::ValueEnum)]
pub enum ChartKind {
    /// A metric against the doubling GPU-count or DP axis, with ideal scaling (scaling.png;
    /// scaling sweeps).
    Scaling,
    /// A metric over two axes (heatmap.png; two-axis sweeps).
    Heatmap,
    /// Two metrics, feasible and infeasible points, non-dominated front (pareto.png).
    Pareto,
}

/// Which charts to draw, their metric and the Pareto axes.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct ChartOptions {
    /// Charts to draw; empty: every chart that applies.
    pub kinds: Vec<ChartKind>,
    /// Pareto x column [default: see [`default_pareto_x`]].
    pub x: Option<String>,
    /// Pareto y column [default: the metric when given, else time_to_target_days with a
    /// [target], else step_time_s].
    pub y: Option<String>,
    /// Metric of the scaling chart and the heatmap [default: tokens_per_s and
    /// tokens_per_s_per_gpu].
    pub metric: Option<String>,
}

/// Default metric of the scaling chart.
pub const SCALING_METRIC: &str = "tokens_per_s";
/// Default metric of the heatmap.
pub const HEATMAP_METRIC: &str = "tokens_per_s_per_gpu";

impl ChartOptions {
    fn wants(&self, k: ChartKind) -> bool {
        self.kinds.is_empty() || self.kinds.contains(&k)
    }

    /// Checks the options against the sweep before it runs: located errors for unknown or
    /// empty columns, axes without a Pareto chart, target metrics without a `[target]`,
    /// and a scaling chart asked of a sweep that is not a scaling sweep.
    pub fn check(&self, spec: &SweepSpec) -> Result<(), SweepError> {
        let bad = |message: String| SweepError::Invalid {
            path: spec.path.clone(),
            location: String::new(),
            message,
        };
        let has_target = spec.base.contains_key("target") || spec.axes.iter().any(|a| a.field.starts_with("target."));
        let fields: Vec<&str> = spec.axes.iter().map(|a| a.field.as_str()).collect();
        let base = spec.base_path.display().to_string();
        self.check_columns(&fields, has_target, &base).map_err(bad)?;
        if self.kinds.contains(&ChartKind::Scaling) {
            let t = SweepTable {
                name: spec.name.clone(),
                source: String::new(),
                header: Vec::new(),
                rows: Vec::new(),
                axes: axis_groups(spec),
            };
            if t.scaling_axis().is_none() {
                return Err(bad(NOT_SCALING.into()));
            }
        }
        Ok(())
    }

    /// Checks the options against a sweep CSV (`trainsim plot sweep.csv`).
    pub fn check_table(&self, t: &SweepTable) -> Result<(), String> {
        let fields: Vec<&str> = t
            .axes
            .iter()
            .flat_map(|a| a.fields.iter().map(String::as_str))
            .collect();
        let has_target = t.rows.iter().any(|r| t.value(r, "time_to_target_days").is_some());
        self.check_columns(&fields, has_target, &t.source)?;
        if self.kinds.contains(&ChartKind::Scaling) && t.scaling_axis().is_none() {
            return Err(NOT_SCALING.into());
        }
        if self.kinds.contains(&ChartKind::Heatmap) && t.axes.len() != 2 {
            return Err(format!(
                "--chart heatmap needs a sweep over two axes; this one has {}",
                t.axes.len()
            ));
        }
        Ok(())
    }

    /// `base`: the file a `[target]` would go in (for the message).
    fn check_columns(&self, axis_fields: &[&str], has_target: bool, base: &str) -> Result<(), String> {
        if (self.x.is_some() || self.y.is_some()) && !self.wants(ChartKind::Pareto) {
            return Err("--x and --y set the axes of the Pareto chart: add --chart pareto".into());
        }
        for (flag, v) in [("--x", &self.x), ("--y", &self.y), ("--metric", &self.metric)] {
            let Some(v) = v else { continue };
            if v.trim().is_empty() {
                return Err(format!("{flag} is empty: name a column, e.g. {flag} cost_usd"));
            }
            let axis = axis_fields.contains(&v.as_str());
            if !axis && !numeric_columns().any(|c| c == v.as_str()) {
                return Err(format!(
                    "{flag} {v}: not a numeric column of the sweep; choose one of {} or an axis field",
                    numeric_columns().collect::<Vec<_>>().join(", ")
                ));
            }
            if TARGET_COLUMNS.contains(&v.as_str()) && !has_target {
                return Err(format!(
                    "{flag} {v}: needs a [target] section in the base scenario {base} (what to train to)"
                ));
            }
        }
        if self.x.is_some() && self.x == self.y {
            return Err("--x and --y name the same column: a Pareto chart needs two metrics".into());
        }
        Ok(())
    }
}

const NOT_SCALING: &str = "--chart scaling needs a scaling sweep: an axis of cluster.num_gpus or parallel.dp \
whose values double (e.g. log = { start = 64, stop = 4096, factor = 2 })";

/// Unit of a column, from its name's suffix.
fn unit_of(column: &str) -> Option<&'static str> {
    [
        ("_days", "days"),
        ("_usd", "USD"),
        ("_kwh", "kWh"),
        ("_gib", "GiB"),
        ("_pct", "%"),
        ("_per_s_per_gpu", "tokens/s per GPU"),
        ("tokens_per_s", "tokens/s"),
        ("_per_gpu", "TFLOP/s per GPU"),
        ("gpu_hours_per_step", "GPU-hours"),
        ("num_gpus", "GPUs"),
        ("_s", "s"),
    ]
    .iter()
    .find(|(suffix, _)| column.ends_with(suffix))
    .map(|(_, u)| *u)
}

/// Axis description of a column: its name, unit and which way is better.
pub fn label_of(column: &str) -> String {
    let better = match Better::of_column(column) {
        Better::Lower => "lower is better",
        Better::Higher => "higher is better",
    };
    match unit_of(column) {
        Some(u) => format!("{column} ({u}; {better})"),
        None => format!("{column} ({better})"),
    }
}

fn short_field(f: &str) -> &str {
    f.rsplit('.').next().unwrap_or(f)
}

/// "tp=8, pp=8" for the values row `r` holds on `axes`.
fn axis_values_label(t: &SweepTable, axes: &[&AxisGroup], r: &[String], sep: &str) -> String {
    axes.iter()
        .flat_map(|a| a.fields.iter())
        .filter_map(|f| t.col(f).map(|c| format!("{}={}", short_field(f), r[c])))
        .collect::<Vec<_>>()
        .join(sep)
}

/// A count as written in the sweep file: whole numbers in full (1024, 4096), others with
/// a decimal prefix.
pub fn count_label(v: f64) -> String {
    if v.fract() == 0.0 && v.abs() < 1e15 {
        format!("{}", v as i64)
    } else {
        crate::report::charts::lines::si(v)
    }
}

/// How a metric scales with the GPU count under ideal scaling: exponent of the GPU ratio
/// (1 for throughput, 0 for per-GPU rates and utilisations), `None` when ideal scaling
/// does not fix it.
pub fn ideal_exponent(metric: &str) -> Option<f64> {
    match metric {
        "tokens_per_s" => Some(1.0),
        "tokens_per_s_per_gpu" | "model_tflops_per_gpu" | "mfu_pct" | "hfu_pct" => Some(0.0),
        _ => None,
    }
}

/// The scaling chart of a scaling sweep (an axis of [`super::table::SCALING_FIELDS`] that
/// doubles); `None` for any other sweep. Lines are the combinations of the other axes,
/// feasible points only; each line's ideal scaling runs from its smallest point.
pub fn scaling_data(t: &SweepTable, opts: &ChartOptions) -> Option<LineData> {
    let (ai, field, xs) = t.scaling_axis()?;
    let metric = opts.metric.as_deref().unwrap_or(SCALING_METRIC);
    let axis = &t.axes[ai];
    let others: Vec<&AxisGroup> = t
        .axes
        .iter()
        .enumerate()
        .filter(|(i, _)| *i != ai)
        .map(|(_, a)| a)
        .collect();
    // (label, points (x, y, GPUs))
    type Line = (String, Vec<(f64, f64, f64)>);
    let mut lines: Vec<Line> = Vec::new();
    for r in t.rows.iter().filter(|r| t.feasible(r)) {
        let (Some(i), Some(y)) = (t.axis_index(axis, r), t.value(r, metric)) else {
            continue;
        };
        let x = xs[i];
        let gpus = t.value(r, "num_gpus").unwrap_or(x);
        let label = match axis_values_label(t, &others, r, ", ") {
            l if l.is_empty() => "all points".to_string(),
            l => l,
        };
        match lines.iter_mut().find(|(l, _)| *l == label) {
            Some((_, p)) => p.push((x, y, gpus)),
            None => lines.push((label, vec![(x, y, gpus)])),
        }
    }
    let e = ideal_exponent(metric);
    let series: Vec<Series> = lines
        .into_iter()
        .map(|(label, mut p)| {
            p.sort_by(|a, b| a.0.total_cmp(&b.0));
            let reference = match (e, p.first()) {
                (Some(e), Some(&(_, y0, g0))) if p.len() > 1 => {
                    p.iter().map(|&(x, _, g)| (x, y0 * (g / g0).powf(e))).collect()
                }
                _ => Vec::new(),
            };
            Series {
                label,
                points: p.iter().map(|&(x, y, _)| (x, y)).collect(),
                reference,
            }
        })
        .collect();
    let log_y = e == Some(1.0);
    let ys = || {
        series
            .iter()
            .flat_map(|s| s.points.iter().chain(&s.reference).map(|p| p.1))
    };
    let y_ticks = if log_y {
        decade_ticks(ys().fold(f64::INFINITY, f64::min), ys().fold(0.0, f64::max))
    } else {
        Vec::new()
    };
    let (what, x_name) = match field.as_str() {
        "cluster.num_gpus" => ("GPUs", "GPUs"),
        _ => ("data-parallel degree", "Data-parallel degree"),
    };
    let metric_name = if metric == SCALING_METRIC {
        "throughput".to_string()
    } else {
        metric.to_string()
    };
    let n = series.iter().map(|s| s.points.len()).sum::<usize>();
    let mut subtitle = format!("{n} feasible points of {}", t.source);
    if e.is_some() {
        subtitle.push_str("; dashed: ideal scaling from each line's smallest point");
    }
    Some(LineData {
        title: format!("{}: {metric_name} vs {what}", t.name),
        subtitle,
        x_label: format!("{x_name} ({field}; log scale)"),
        y_label: if log_y {
            format!("{} (log scale)", label_of(metric))
        } else {
            label_of(metric)
        },
        log_x: true,
        log_y,
        x_ticks: xs
            .iter()
            .map(|&v| Tick {
                value: v,
                label: count_label(v),
            })
            .collect(),
        y_ticks,
        series,
        reference_label: "ideal scaling".into(),
        legend_heading: if others.is_empty() {
            "Series".into()
        } else {
            // short names, as in the series labels ("tp / pp / recompute")
            others
                .iter()
                .map(|a| a.fields.iter().map(|f| short_field(f)).collect::<Vec<_>>().join(" / "))
                .collect::<Vec<_>>()
                .join(", ")
        },
    })
}

/// The heatmap of a two-axis sweep (`None` otherwise): rows are the first axis, columns
/// the second; a cell is the metric of its feasible point, or "OOM" and the GiB needed,
/// "invalid" (impossible plan or scenario), or "filtered". The best feasible cell (by
/// [`Better::of_column`]) is marked.
pub fn heatmap_data(t: &SweepTable, opts: &ChartOptions) -> Option<HeatmapData> {
    let [ra, ca] = t.axes.as_slice() else {
        return None;
    };
    let metric = opts.metric.as_deref().unwrap_or(HEATMAP_METRIC);
    let rows: Vec<String> = (0..ra.values.len()).map(|i| ra.value_label(i)).collect();
    let cols: Vec<String> = (0..ca.values.len()).map(|i| ca.value_label(i)).collect();
    let mut cells = vec![vec![Err("filtered".to_string()); cols.len()]; rows.len()];
    let reason = t.col("reason");
    for row in &t.rows {
        let (Some(r), Some(c)) = (t.axis_index(ra, row), t.axis_index(ca, row)) else {
            continue;
        };
        cells[r][c] = if t.feasible(row) {
            t.value(row, metric).ok_or_else(|| "no value".to_string())
        } else if reason.is_some_and(|i| row[i].starts_with("out of memory")) {
            Err(match t.value(row, "memory_gib") {
                Some(g) => format!("OOM\n{} GiB", crate::report::charts::lines::si(g)),
                None => "OOM".into(),
            })
        } else {
            Err("invalid".into())
        };
    }
    let better = Better::of_column(metric);
    let mut best: Option<(usize, usize, f64)> = None;
    for (r, row) in cells.iter().enumerate() {
        for (c, v) in row.iter().enumerate() {
            let Ok(v) = *v else { continue };
            let wins = best.is_none_or(|(_, _, b)| match better {
                Better::Higher => v > b,
                Better::Lower => v < b,
            });
            if wins {
                best = Some((r, c, v));
            }
        }
    }
    let (title_metric, unit) = match metric {
        HEATMAP_METRIC => ("throughput per GPU".to_string(), "tokens/s per GPU".to_string()),
        m => (m.to_string(), unit_of(m).unwrap_or(m).to_string()),
    };
    Some(HeatmapData {
        title: format!("{}: {title_metric} ({unit})", t.name),
        subtitle: format!("{} points of {}", t.rows.len(), t.source),
        x_label: ca.label(),
        y_label: ra.label(),
        metric_label: unit,
        columns: cols,
        rows,
        cells,
        best: best.map(|(r, c, _)| (r, c)),
        best_label: match better {
            Better::Higher => "best (highest)".into(),
            Better::Lower => "best (lowest)".into(),
        },
    })
}

/// Pearson correlation of `pts`' x and y (0 when either is constant or fewer than 3).
fn correlation(pts: &[(f64, f64)]) -> f64 {
    let n = pts.len() as f64;
    if pts.len() < 3 {
        return 0.0;
    }
    let (mx, my) = (
        pts.iter().map(|p| p.0).sum::<f64>() / n,
        pts.iter().map(|p| p.1).sum::<f64>() / n,
    );
    let (mut sxy, mut sxx, mut syy) = (0.0, 0.0, 0.0);
    for &(x, y) in pts {
        sxy += (x - mx) * (y - my);
        sxx += (x - mx).powi(2);
        syy += (y - my).powi(2);
    }
    if sxx <= 0.0 || syy <= 0.0 {
        0.0
    } else {
        sxy / (sxx * syy).sqrt()
    }
}

/// Above this |correlation| two columns are taken to be proportional (a line, no front).
pub const COLLINEAR: f64 = 0.999;

/// Default x of the Pareto chart for y column `y`: the first of the cost of the run
/// (`cost_usd` with a target, else `gpu_hours_per_step`), `memory_gib`, `step_time_s` and
/// `num_gpus` that is not `y`, has values, and is not proportional to `y` over the feasible
/// points. (At one GPU count GPU-hours per step are the step time times a constant, and
/// the cost nearly the time to target: such a chart is a line, not a front.)
pub fn default_pareto_x(t: &SweepTable, y: &str, with_target: bool) -> String {
    let cost = if with_target { "cost_usd" } else { "gpu_hours_per_step" };
    let candidates = [cost, "memory_gib", "step_time_s", "num_gpus"];
    let pts = |x: &str| -> Vec<(f64, f64)> {
        t.rows
            .iter()
            .filter(|r| t.feasible(r))
            .filter_map(|r| Some((t.value(r, x)?, t.value(r, y)?)))
            .collect()
    };
    candidates
        .iter()
        .find(|&&x| {
            let p = pts(x);
            x != y && !p.is_empty() && correlation(&p).abs() < COLLINEAR
        })
        .unwrap_or(&candidates[0])
        .to_string()
}

/// The Pareto chart data of a sweep table: x and y from the named columns (defaults as in
/// [`ChartOptions`]), feasible points, infeasible points that have metrics, and the
/// non-dominated front of the feasible ones labelled by their axis values.
pub fn pareto_table(t: &SweepTable, opts: &ChartOptions) -> Result<ParetoData, ReportError> {
    let with_target = t.rows.iter().any(|r| t.value(r, "time_to_target_days").is_some());
    let yn = opts.y.clone().or(opts.metric.clone()).unwrap_or_else(|| {
        if with_target {
            "time_to_target_days"
        } else {
            "step_time_s"
        }
        .to_string()
    });
    let xn = opts.x.clone().unwrap_or_else(|| default_pareto_x(t, &yn, with_target));
    if t.col(&xn).is_none() || t.col(&yn).is_none() {
        return Err(ReportError::Chart {
            path: PathBuf::from(&t.source).with_file_name("pareto.png"),
            message: format!("{} has no column {xn} or {yn}", t.source),
        });
    }
    let axes: Vec<&AxisGroup> = t.axes.iter().collect();
    let (mut ok, mut bad, mut labels) = (Vec::new(), Vec::new(), Vec::new());
    for row in &t.rows {
        let (Some(x), Some(y)) = (t.value(row, &xn), t.value(row, &yn)) else {
            continue;
        };
        if t.feasible(row) {
            ok.push((x, y));
            labels.push(axis_values_label(t, &axes, row, " "));
        } else {
            bad.push((x, y));
        }
    }
    let f = front(&ok, Better::of_column(&xn), Better::of_column(&yn));
    Ok(ParetoData {
        title: format!("{}: {yn} vs {xn}", t.name),
        subtitle: format!(
            "{} feasible and {} infeasible points of {}; red: not beaten on both",
            ok.len(),
            bad.len(),
            t.source
        ),
        x_label: label_of(&xn),
        y_label: label_of(&yn),
        front: f.iter().map(|&i| (ok[i].0, ok[i].1, labels[i].clone())).collect(),
        feasible: ok,
        infeasible: bad,
    })
}

/// [`pareto_table`] of the CSV `csv` written by `spec`.
pub fn pareto_data(spec: &SweepSpec, csv: &Path, opts: &ChartOptions) -> Result<ParetoData, ReportError> {
    pareto_table(&SweepTable::from_spec(spec, csv)?, opts)
}

/// The Pareto chart of a plan search in `dir` (pareto.png): with a `[target]`, time to
/// target against energy; otherwise step time against memory per GPU. Only simulated plans
/// have both metrics; `None` when fewer than two were simulated.
pub fn draw_search_pareto(
    o: &super::search::SearchOutcome,
    name: &str,
    dir: &Path,
) -> Result<Option<PathBuf>, ReportError> {
    use super::search::Status;
    let sims: Vec<&crate::simulation::RunResult> = o
        .candidates
        .iter()
        .filter_map(|c| match &c.status {
            Status::Simulated(r) => Some(r.as_ref()),
            _ => None,
        })
        .collect();
    if sims.len() < 2 {
        return Ok(None);
    }
    let with_target = sims.iter().all(|r| r.to_target.is_some());
    let (xn, yn) = if with_target {
        ("energy_to_target_kwh", "time_to_target_days")
    } else {
        ("memory_gib", "step_time_s")
    };
    let xy = |r: &crate::simulation::RunResult| match &r.to_target {
        Some(t) if with_target => (t.energy.energy_to_target_kwh, t.wall_clock_to_target_days),
        _ => (r.memory.total_gib, r.step_time_s),
    };
    let pts: Vec<(f64, f64)> = sims.iter().map(|r| xy(r)).collect();
    let f = front(&pts, Better::Lower, Better::Lower);
    let d = ParetoData {
        title: format!("{name}: plan search, {yn} vs {xn}"),
        subtitle: format!(
            "{} simulated plans of {} candidates (others pruned by a bound or infeasible); #n: rank in search.csv",
            sims.len(),
            o.enumerated
        ),
        x_label: label_of(xn),
        y_label: label_of(yn),
        // labelled by rank (search.csv and the printed table give the plans)
        front: f.iter().map(|&i| (pts[i].0, pts[i].1, format!("#{}", i + 1))).collect(),
        feasible: pts,
        infeasible: Vec::new(),
    };
    let p = dir.join("pareto.png");
    draw_pareto(&d, &p)?;
    Ok(Some(p))
}

/// Draws the charts `opts` asks for that apply to `t` into `dir`; returns the files
/// written.
pub fn draw_table(t: &SweepTable, dir: &Path, opts: &ChartOptions) -> Result<Vec<PathBuf>, ReportError> {
    let mut written = Vec::new();
    if t.col("feasible").is_none() || t.axes.is_empty() {
        return Ok(written);
    }
    if opts.wants(ChartKind::Scaling) {
        if let Some(d) = scaling_data(t, opts) {
            let p = dir.join("scaling.png");
            crate::report::charts::lines::draw(&d, &p)?;
            written.push(p);
        }
    }
    if opts.wants(ChartKind::Heatmap) {
        if let Some(d) = heatmap_data(t, opts) {
            let p = dir.join("heatmap.png");
            draw_heatmap(&d, &p)?;
            written.push(p);
        }
    }
    if opts.wants(ChartKind::Pareto) {
        let d = pareto_table(t, opts)?;
        if !d.feasible.is_empty() || !opts.kinds.is_empty() {
            let p = dir.join("pareto.png");
            draw_pareto(&d, &p)?;
            written.push(p);
        }
    }
    Ok(written)
}

/// Draws the sweep charts `opts` asks for next to `csv`; returns the files written.
pub fn draw(spec: &SweepSpec, csv: &Path, opts: &ChartOptions) -> Result<Vec<PathBuf>, ReportError> {
    let t = SweepTable::from_spec(spec, csv)?;
    draw_table(&t, csv.parent().unwrap_or(Path::new(".")), opts)
}

#[cfg(test)]
#[path = "charts_tests.rs"]
mod tests;
