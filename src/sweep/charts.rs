//! Charts of a finished sweep, drawn from its CSV: throughput against the first axis with
//! one line per combination of the other axes (`scaling`), for two-axis sweeps a heatmap
//! of throughput per GPU with infeasible cells marked (`heatmap`), and a Pareto chart of
//! two metrics with the non-dominated front (`pareto`, e.g. time to target against cost).
//! Also the Pareto chart of a plan search.

use super::pareto::{front, Better};
use super::columns::{numeric_columns, TARGET_COLUMNS};
use super::spec::{SweepError, SweepSpec};
use crate::report::charts::sweep::{draw_heatmap, draw_lines, draw_pareto, HeatmapData, LineData, ParetoData};
use crate::report::ReportError;
use std::path::{Path, PathBuf};

/// A chart of a sweep.
#[derive(Clone, Copy, Debug, PartialEq, Eq, clap::ValueEnum)]
pub enum ChartKind {
    /// Throughput against the first axis (scaling.png).
    Scaling,
    /// Throughput per GPU over two axes (heatmap.png; two-axis sweeps).
    Heatmap,
    /// Two metrics, feasible and infeasible points, non-dominated front (pareto.png).
    Pareto,
}

/// Which charts to draw and the Pareto axes.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct ChartOptions {
    /// Charts to draw; empty: every chart that applies.
    pub kinds: Vec<ChartKind>,
    /// Pareto x column [default: cost_usd with a [target], else gpu_hours_per_step].
    pub x: Option<String>,
    /// Pareto y column [default: time_to_target_days with a [target], else step_time_s].
    pub y: Option<String>,
}

impl ChartOptions {
    fn wants(&self, k: ChartKind) -> bool {
        self.kinds.is_empty() || self.kinds.contains(&k)
    }

    /// Checks the options against the sweep before it runs: located errors for unknown or
    /// empty columns, axes without a Pareto chart, and target metrics without a `[target]`.
    pub fn check(&self, spec: &SweepSpec) -> Result<(), SweepError> {
        let bad = |message: String| SweepError::Invalid {
            path: spec.path.clone(),
            location: String::new(),
            message,
        };
        if (self.x.is_some() || self.y.is_some()) && !self.wants(ChartKind::Pareto) {
            return Err(bad(
                "--x and --y set the axes of the Pareto chart: add --chart pareto".into()
            ));
        }
        let has_target = spec.base.contains_key("target") || spec.axes.iter().any(|a| a.field.starts_with("target."));
        for (flag, v) in [("--x", &self.x), ("--y", &self.y)] {
            let Some(v) = v else { continue };
            if v.trim().is_empty() {
                return Err(bad(format!("{flag} is empty: name a column, e.g. {flag} cost_usd")));
            }
            let axis = spec.axes.iter().any(|a| a.field == *v);
            if !axis && !numeric_columns().any(|c| c == v.as_str()) {
                return Err(bad(format!(
                    "{flag} {v}: not a numeric column of the sweep; choose one of {} or an axis field",
                    numeric_columns().collect::<Vec<_>>().join(", ")
                )));
            }
            if TARGET_COLUMNS.contains(&v.as_str()) && !has_target {
                return Err(bad(format!(
                    "{flag} {v}: needs a [target] section in the base scenario {} (what to train to)",
                    spec.base_path.display()
                )));
            }
        }
        if self.x.is_some() && self.x == self.y {
            return Err(bad(
                "--x and --y name the same column: a Pareto chart needs two metrics".into(),
            ));
        }
        Ok(())
    }
}

/// Splits one CSV line (quotes honoured).
pub fn split_csv(line: &str) -> Vec<String> {
    let mut out = Vec::new();
    let mut cur = String::new();
    let mut quoted = false;
    let mut chars = line.chars().peekable();
    while let Some(c) = chars.next() {
        match (c, quoted) {
            ('"', true) if chars.peek() == Some(&'"') => {
                cur.push('"');
                chars.next();
            }
            ('"', _) => quoted = !quoted,
            (',', false) => out.push(std::mem::take(&mut cur)),
            _ => cur.push(c),
        }
    }
    out.push(cur);
    out
}

struct Table {
    header: Vec<String>,
    rows: Vec<Vec<String>>,
}

impl Table {
    fn col(&self, name: &str) -> Option<usize> {
        self.header.iter().position(|h| h == name)
    }
}

fn number(s: &str) -> Option<f64> {
    s.trim().parse::<f64>().ok().filter(|x| x.is_finite())
}

fn read_table(csv: &Path) -> Result<Table, ReportError> {
    let text = std::fs::read_to_string(csv).map_err(|e| ReportError::Io {
        path: csv.into(),
        source: e,
    })?;
    let mut lines = text.lines();
    let header = split_csv(lines.next().unwrap_or(""));
    Ok(Table {
        header,
        rows: lines.filter(|l| !l.is_empty()).map(split_csv).collect(),
    })
}

fn label_of(column: &str) -> String {
    let unit = [
        ("_days", "days"),
        ("_usd", "USD"),
        ("_kwh", "kWh"),
        ("_gib", "GiB"),
        ("_pct", "%"),
        ("_per_s_per_gpu", "tokens/s per GPU"),
        ("tokens_per_s", "tokens/s"),
        ("_per_gpu", "TFLOP/s per GPU"),
        ("gpu_hours_per_step", "GPU-hours"),
        ("_s", "s"),
    ]
    .iter()
    .find(|(suffix, _)| column.ends_with(suffix))
    .map(|(_, u)| *u);
    let better = match Better::of_column(column) {
        Better::Lower => "lower is better",
        Better::Higher => "higher is better",
    };
    match unit {
        Some(u) => format!("{column} ({u}; {better})"),
        None => format!("{column} ({better})"),
    }
}

/// The Pareto chart data of a sweep table: x and y from the named columns (defaults as in
/// [`ChartOptions`]), feasible points, infeasible points that have metrics, and the
/// non-dominated front of the feasible ones labelled by their axis values.
pub fn pareto_data(spec: &SweepSpec, csv: &Path, opts: &ChartOptions) -> Result<ParetoData, ReportError> {
    let t = read_table(csv)?;
    let feasible = t.col("feasible");
    let with_target = t
        .col("time_to_target_days")
        .is_some_and(|c| t.rows.iter().any(|r| number(&r[c]).is_some()));
    let (dx, dy) = if with_target {
        ("cost_usd", "time_to_target_days")
    } else {
        ("gpu_hours_per_step", "step_time_s")
    };
    let xn = opts.x.clone().unwrap_or_else(|| dx.to_string());
    let yn = opts.y.clone().unwrap_or_else(|| dy.to_string());
    let (Some(xc), Some(yc), Some(fc)) = (t.col(&xn), t.col(&yn), feasible) else {
        return Err(ReportError::Chart {
            path: csv.with_file_name("pareto.png"),
            message: format!("{} has no column {xn} or {yn}", csv.display()),
        });
    };
    let axes: Vec<usize> = spec.axes.iter().filter_map(|a| t.col(&a.field)).collect();
    let (mut ok, mut bad, mut labels) = (Vec::new(), Vec::new(), Vec::new());
    for row in &t.rows {
        let (Some(x), Some(y)) = (number(&row[xc]), number(&row[yc])) else {
            continue;
        };
        if row[fc] == "true" {
            ok.push((x, y));
            let l: Vec<String> = axes
                .iter()
                .map(|&c| format!("{}={}", short_field(&t.header[c]), row[c]))
                .collect();
            labels.push(l.join(" "));
        } else {
            bad.push((x, y));
        }
    }
    let f = front(&ok, Better::of_column(&xn), Better::of_column(&yn));
    Ok(ParetoData {
        title: format!("{}: {yn} vs {xn}", spec.name),
        subtitle: format!(
            "{} feasible and {} infeasible points of {}; red: not beaten on both",
            ok.len(),
            bad.len(),
            spec.path.display()
        ),
        x_label: label_of(&xn),
        y_label: label_of(&yn),
        front: f.iter().map(|&i| (ok[i].0, ok[i].1, labels[i].clone())).collect(),
        feasible: ok,
        infeasible: bad,
    })
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

/// Draws the sweep charts `opts` asks for next to `csv`; returns the files written.
pub fn draw(spec: &SweepSpec, csv: &Path, opts: &ChartOptions) -> Result<Vec<PathBuf>, ReportError> {
    let t = read_table(csv)?;
    let dir = csv.parent().unwrap_or(Path::new("."));
    let (Some(feasible), Some(tps), Some(reason)) = (t.col("feasible"), t.col("tokens_per_s"), t.col("reason")) else {
        return Ok(Vec::new());
    };
    let tps_gpu = t.col("tokens_per_s_per_gpu").unwrap_or(tps);
    let axes: Vec<usize> = spec.axes.iter().filter_map(|a| t.col(&a.field)).collect();
    let mut written = Vec::new();
    let subtitle = format!("{} points of {}", t.rows.len(), spec.path.display());
    let first = &spec.axes[0];
    // line chart: first axis numeric
    if opts.wants(ChartKind::Scaling)
        && first
            .values
            .iter()
            .all(|v| v.as_integer().is_some() || v.as_float().is_some())
    {
        let xs: Vec<f64> = first
            .values
            .iter()
            .filter_map(|v| v.as_float().or(v.as_integer().map(|i| i as f64)))
            .collect();
        let log_x = xs.len() > 2
            && xs[0] > 0.0
            && xs
                .windows(2)
                .all(|w| ((w[1] / w[0]) / (xs[1] / xs[0]) - 1.0).abs() < 1e-9 && w[1] / w[0] > 1.0);
        let mut series: Vec<(String, Vec<(f64, f64)>)> = Vec::new();
        for row in &t.rows {
            let label: Vec<String> = axes[1..]
                .iter()
                .map(|&c| format!("{}={}", short_field(&t.header[c]), row[c]))
                .collect();
            let label = if label.is_empty() {
                "all".to_string()
            } else {
                label.join(", ")
            };
            let (Some(x), true) = (number(&row[axes[0]]), row[feasible] == "true") else {
                continue;
            };
            let Some(y) = number(&row[tps]) else { continue };
            match series.iter_mut().find(|(l, _)| *l == label) {
                Some((_, p)) => p.push((x, y)),
                None => series.push((label, vec![(x, y)])),
            }
        }
        let d = LineData {
            title: format!("{}: throughput vs {}", spec.name, first.field),
            subtitle: subtitle.clone(),
            x_label: first.field.clone(),
            y_label: "Throughput (tokens/s)".into(),
            log_x,
            series,
        };
        let p = dir.join("scaling.png");
        draw_lines(&d, &p)?;
        written.push(p);
    }
    // heatmap: exactly two axes
    if opts.wants(ChartKind::Heatmap) && spec.axes.len() == 2 && spec.axes.iter().all(|a| a.zip.is_none()) {
        let label = |v: &toml::Value| super::spec::value_text(v);
        let rows: Vec<String> = spec.axes[0].values.iter().map(label).collect();
        let cols: Vec<String> = spec.axes[1].values.iter().map(label).collect();
        let mut cells = vec![vec![Err("filtered".to_string()); cols.len()]; rows.len()];
        for row in &t.rows {
            let (Some(r), Some(c)) = (
                rows.iter().position(|x| *x == row[axes[0]]),
                cols.iter().position(|x| *x == row[axes[1]]),
            ) else {
                continue;
            };
            cells[r][c] = if row[feasible] == "true" {
                number(&row[tps_gpu]).ok_or_else(|| "?".to_string())
            } else if row[reason].starts_with("out of memory") {
                Err("OOM".into())
            } else {
                Err("invalid".into())
            };
        }
        let d = HeatmapData {
            title: format!("{}: throughput per GPU", spec.name),
            subtitle,
            x_label: spec.axes[1].field.clone(),
            y_label: spec.axes[0].field.clone(),
            metric_label: "tokens/s per GPU".into(),
            columns: cols,
            rows,
            cells,
        };
        let p = dir.join("heatmap.png");
        draw_heatmap(&d, &p)?;
        written.push(p);
    }
    if opts.wants(ChartKind::Pareto) {
        let d = pareto_data(spec, csv, opts)?;
        if !d.feasible.is_empty() || !opts.kinds.is_empty() {
            let p = dir.join("pareto.png");
            draw_pareto(&d, &p)?;
            written.push(p);
        }
    }
    Ok(written)
}

fn short_field(f: &str) -> &str {
    f.rsplit('.').next().unwrap_or(f)
}

#[cfg(test)]
mod tests {
    use super::split_csv;

    #[test]
    fn csv_split_honours_quotes() {
        assert_eq!(
            split_csv("1,\"a, b\",\"say \"\"hi\"\"\",x"),
            vec!["1", "a, b", "say \"hi\"", "x"]
        );
        assert_eq!(split_csv(""), vec![""]);
    }
}
