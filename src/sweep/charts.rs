//! Default charts of a finished sweep, drawn from its CSV: throughput against the first
//! axis with one line per combination of the other axes, and, for two-axis sweeps, a
//! heatmap of throughput per GPU with infeasible cells marked.

use super::spec::SweepSpec;
use crate::report::charts::sweep::{draw_heatmap, draw_lines, HeatmapData, LineData};
use crate::report::ReportError;
use std::path::{Path, PathBuf};

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

/// Draws the default sweep charts next to `csv`; returns the files written.
pub fn draw(spec: &SweepSpec, csv: &Path) -> Result<Vec<PathBuf>, ReportError> {
    let text = std::fs::read_to_string(csv).map_err(|e| ReportError::Io {
        path: csv.into(),
        source: e,
    })?;
    let mut lines = text.lines();
    let header = split_csv(lines.next().unwrap_or(""));
    let t = Table {
        header,
        rows: lines.filter(|l| !l.is_empty()).map(split_csv).collect(),
    };
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
    if first
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
    if spec.axes.len() == 2 && spec.axes.iter().all(|a| a.zip.is_none()) {
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
