//! A finished sweep as its charts read it: the rows of `sweep.csv` and the sweep's axes
//! (zipped axes grouped), taken from the sweep file or, for `trainsim plot sweep.csv`,
//! inferred from the CSV alone.

use super::spec::{value_text, SweepSpec};
use crate::report::ReportError;
use std::path::Path;

/// Fields whose doubling axis makes a sweep a scaling sweep.
pub const SCALING_FIELDS: &[&str] = &["cluster.num_gpus", "parallel.dp"];

/// One axis of the grid: its fields (several when zipped) and its values in order, one
/// text per field each (as the CSV writes them).
#[derive(Clone, Debug, PartialEq)]
pub struct AxisGroup {
    /// Dotted scenario fields, e.g. ["parallel.tp", "parallel.pp"] for a zip group.
    pub fields: Vec<String>,
    /// Values in grid order: one text per field.
    pub values: Vec<Vec<String>>,
}

impl AxisGroup {
    /// Label of value `i`: the texts joined by " / ".
    pub fn value_label(&self, i: usize) -> String {
        self.values[i].join(" / ")
    }

    /// Description of the axis: the fields joined by " / ".
    pub fn label(&self) -> String {
        self.fields.join(" / ")
    }

    /// The numeric values of `field` in order, if every value of it is a number.
    pub fn numbers(&self, field: &str) -> Option<Vec<f64>> {
        let j = self.fields.iter().position(|f| f == field)?;
        self.values.iter().map(|v| number(&v[j])).collect()
    }

    /// `(field, values)` of this axis when it makes a scaling sweep: a field of
    /// [`SCALING_FIELDS`] whose values grow by a constant factor of at least 2.
    pub fn scaling(&self) -> Option<(String, Vec<f64>)> {
        SCALING_FIELDS.iter().find_map(|f| {
            let v = self.numbers(f)?;
            doubling(&v).then(|| (f.to_string(), v))
        })
    }
}

/// Whether `v` (two or more positive values) grows by one constant factor of 2 or more.
pub fn doubling(v: &[f64]) -> bool {
    if v.len() < 2 || v[0] <= 0.0 {
        return false;
    }
    let r = v[1] / v[0];
    r >= 2.0 - 1e-9 && v.windows(2).all(|w| (w[1] / w[0] / r - 1.0).abs() < 1e-9)
}

/// The axes of `spec`, zipped ones grouped, in file order.
pub fn axis_groups(spec: &SweepSpec) -> Vec<AxisGroup> {
    let mut out: Vec<(Option<String>, AxisGroup)> = Vec::new();
    for a in &spec.axes {
        let texts: Vec<String> = a.values.iter().map(value_text).collect();
        match out.iter_mut().find(|(z, _)| z.is_some() && *z == a.zip) {
            Some((_, g)) => {
                g.fields.push(a.field.clone());
                g.values.iter_mut().zip(texts).for_each(|(v, t)| v.push(t));
            }
            None => out.push((
                a.zip.clone(),
                AxisGroup {
                    fields: vec![a.field.clone()],
                    values: texts.into_iter().map(|t| vec![t]).collect(),
                },
            )),
        }
    }
    out.into_iter().map(|(_, g)| g).collect()
}

/// A number cell, if it holds a finite one.
pub fn number(s: &str) -> Option<f64> {
    s.trim().parse::<f64>().ok().filter(|x| x.is_finite())
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

/// The rows of a sweep and its axes.
#[derive(Clone, Debug, PartialEq)]
pub struct SweepTable {
    /// Sweep name (chart titles).
    pub name: String,
    /// Where the points come from (chart subtitles): the sweep file or the CSV.
    pub source: String,
    /// Column names.
    pub header: Vec<String>,
    /// Rows, each as long as the header.
    pub rows: Vec<Vec<String>>,
    /// Axes of the grid, zipped ones grouped, in file order.
    pub axes: Vec<AxisGroup>,
}

fn read_csv(csv: &Path) -> Result<(Vec<String>, Vec<Vec<String>>), ReportError> {
    let text = std::fs::read_to_string(csv).map_err(|e| ReportError::Read {
        path: csv.into(),
        message: e.to_string(),
    })?;
    let mut lines = text.lines();
    let header = split_csv(lines.next().unwrap_or(""));
    let n = header.len();
    let rows = lines
        .filter(|l| !l.is_empty())
        .map(|l| {
            let mut r = split_csv(l);
            r.resize(n, String::new());
            r
        })
        .collect();
    Ok((header, rows))
}

impl SweepTable {
    /// The CSV `csv` written by the sweep `spec`, with the spec's axes.
    pub fn from_spec(spec: &SweepSpec, csv: &Path) -> Result<SweepTable, ReportError> {
        let (header, rows) = read_csv(csv)?;
        Ok(SweepTable {
            name: spec.name.clone(),
            source: spec.path.display().to_string(),
            header,
            rows,
            axes: axis_groups(spec),
        })
    }

    /// A sweep CSV on its own: the axes are the columns between `point` and `feasible`,
    /// values in order of first appearance; a column whose value fixes another's over
    /// every row, or the other way round, is zipped with it (one group). The name is the
    /// CSV's folder name.
    pub fn from_csv(csv: &Path) -> Result<SweepTable, ReportError> {
        let (header, rows) = read_csv(csv)?;
        let first = usize::from(header.first().is_some_and(|h| h == "point"));
        let end = header
            .iter()
            .position(|h| h == "feasible")
            .ok_or_else(|| ReportError::Chart {
                path: csv.into(),
                message: format!("{} is not a sweep CSV: it has no `feasible` column", csv.display()),
            })?;
        let mut groups: Vec<Vec<usize>> = Vec::new();
        for c in first..end {
            let joins = |g: &Vec<usize>| {
                let key = |r: &Vec<String>| g.iter().map(|&i| r[i].clone()).collect::<Vec<_>>();
                let distinct = |f: &dyn Fn(&Vec<String>) -> Vec<String>| {
                    let mut v: Vec<Vec<String>> = rows.iter().map(f).collect();
                    v.sort();
                    v.dedup();
                    v.len()
                };
                let pairs = distinct(&|r| {
                    let mut k = key(r);
                    k.push(r[c].clone());
                    k
                });
                let (own, theirs) = (distinct(&|r| vec![r[c].clone()]), distinct(&key));
                // zipped: one column's value fixes the other's (independent axes of a grid,
                // filtered or not, leave several values of each for a value of the other)
                own > 1 && theirs > 1 && (pairs == own || pairs == theirs)
            };
            match groups.iter().position(joins) {
                Some(i) => groups[i].push(c),
                None => groups.push(vec![c]),
            }
        }
        let axes = groups
            .into_iter()
            .map(|g| {
                let mut values: Vec<Vec<String>> = Vec::new();
                for r in &rows {
                    let v: Vec<String> = g.iter().map(|&i| r[i].clone()).collect();
                    if !values.contains(&v) {
                        values.push(v);
                    }
                }
                AxisGroup {
                    fields: g.iter().map(|&i| header[i].clone()).collect(),
                    values,
                }
            })
            .collect();
        let name = csv
            .parent()
            .and_then(|p| p.file_name())
            .or(csv.file_stem())
            .map(|s| s.to_string_lossy().into_owned())
            .unwrap_or_else(|| "sweep".into());
        Ok(SweepTable {
            name,
            source: csv.display().to_string(),
            header,
            rows,
            axes,
        })
    }

    /// Index of column `name`.
    pub fn col(&self, name: &str) -> Option<usize> {
        self.header.iter().position(|h| h == name)
    }

    /// Whether row `r` is feasible.
    pub fn feasible(&self, r: &[String]) -> bool {
        self.col("feasible").is_some_and(|c| r[c] == "true")
    }

    /// The number in column `name` of row `r`.
    pub fn value(&self, r: &[String], name: &str) -> Option<f64> {
        self.col(name).and_then(|c| number(&r[c]))
    }

    /// Index of the value of axis `a` that row `r` holds.
    pub fn axis_index(&self, a: &AxisGroup, r: &[String]) -> Option<usize> {
        let cols: Vec<usize> = a.fields.iter().map(|f| self.col(f)).collect::<Option<_>>()?;
        a.values
            .iter()
            .position(|v| v.iter().zip(&cols).all(|(t, &c)| r[c] == *t))
    }

    /// The axis that makes this a scaling sweep, with its index, field and values.
    pub fn scaling_axis(&self) -> Option<(usize, String, Vec<f64>)> {
        self.axes
            .iter()
            .enumerate()
            .find_map(|(i, a)| a.scaling().map(|(f, v)| (i, f, v)))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn csv_split_honours_quotes() {
        assert_eq!(
            split_csv("1,\"a, b\",\"say \"\"hi\"\"\",x"),
            vec!["1", "a, b", "say \"hi\"", "x"]
        );
        assert_eq!(split_csv(""), vec![""]);
    }

    #[test]
    fn doubling_needs_a_constant_factor_of_two_or_more() {
        assert!(doubling(&[64.0, 128.0, 256.0, 512.0]));
        assert!(doubling(&[8.0, 32.0, 128.0]));
        assert!(doubling(&[96.0, 192.0]));
        assert!(!doubling(&[1.0, 2.0, 3.0, 4.0]));
        assert!(!doubling(&[64.0, 96.0, 144.0]), "factor 1.5");
        assert!(!doubling(&[512.0, 256.0, 128.0]), "descending");
        assert!(!doubling(&[64.0]));
        assert!(!doubling(&[0.0, 0.0]));
    }

    #[test]
    fn csv_axes_are_inferred_with_zip_groups() {
        let dir = std::env::temp_dir().join(format!("trainsim-table-{}", std::process::id()));
        std::fs::create_dir_all(&dir).expect("scratch");
        let csv = dir.join("sweep.csv");
        let mut text = String::from("point,cluster.num_gpus,parallel.tp,parallel.pp,feasible,reason,tokens_per_s\n");
        let mut i = 0;
        for g in [64, 128, 256] {
            for (tp, pp) in [(8, 8), (4, 16), (8, 4)] {
                text.push_str(&format!("{i},{g},{tp},{pp},true,,{}\n", g * 100 + tp));
                i += 1;
            }
        }
        std::fs::write(&csv, text).expect("write");
        let t = SweepTable::from_csv(&csv).expect("reads");
        assert_eq!(t.rows.len(), 9);
        assert_eq!(t.axes.len(), 2, "{:?}", t.axes);
        assert_eq!(t.axes[0].fields, ["cluster.num_gpus"]);
        assert_eq!(t.axes[0].values, [["64"], ["128"], ["256"]]);
        assert_eq!(
            t.axes[1].fields,
            ["parallel.tp", "parallel.pp"],
            "zipped columns grouped"
        );
        assert_eq!(t.axes[1].value_label(1), "4 / 16");
        assert_eq!(t.axes[1].label(), "parallel.tp / parallel.pp");
        let (i, f, v) = t.scaling_axis().expect("a GPU axis that doubles");
        assert_eq!((i, f.as_str(), v), (0, "cluster.num_gpus", vec![64.0, 128.0, 256.0]));
        assert_eq!(t.axis_index(&t.axes[1], &t.rows[5]), Some(2));
        assert!(t.name.starts_with("trainsim-table-"));
        let _ = std::fs::remove_dir_all(dir);
    }
}
