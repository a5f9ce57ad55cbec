//! Sweep files: a base scenario plus axes over any scenario field by dotted path, and
//! filters. Expands to an ordered list of points (the first axis varies slowest).
//!
//! ```toml
//! name = "tp-pp"
//! base = "../gpt3-175b-a100-1024.toml"   # relative to this file
//! unset = ["parallel.dp"]                 # keys of the base to remove (here: derive dp)
//! filters = ["tp * pp <= 64"]             # points failing a filter are dropped
//! [[axis]]
//! field = "parallel.tp"
//! values = [1, 2, 4, 8]                   # or range = {start, stop, step}, or log = {start, stop, factor}
//! [[axis]]
//! field = "parallel.pp"
//! log = { start = 1, stop = 16, factor = 2 }
//! zip = "a"                               # axes sharing a zip name advance together
//! ```

use super::expr::{self, Expr};
pub use crate::scenario::paths::{get_number, remove_path, set_path};
use serde::Deserialize;
use std::path::{Path, PathBuf};
use thiserror::Error;

/// A sweep file could not be used.
#[derive(Debug, Error)]
pub enum SweepError {
    /// File error.
    #[error("cannot read {path}: {source}")]
    Io {
        /// File.
        path: PathBuf,
        /// Cause.
        source: std::io::Error,
    },
    /// Invalid content.
    #[error("{path}{location}: {message}")]
    Invalid {
        /// File.
        path: PathBuf,
        /// ":line:column" when known.
        location: String,
        /// What is wrong and what is allowed.
        message: String,
    },
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawSweep {
    name: Option<String>,
    description: Option<String>,
    base: String,
    unset: Option<Vec<String>>,
    filters: Option<Vec<String>>,
    axis: Vec<RawAxis>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawAxis {
    field: String,
    values: Option<Vec<toml::Value>>,
    range: Option<RawRange>,
    log: Option<RawLog>,
    zip: Option<String>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawRange {
    start: f64,
    stop: f64,
    step: f64,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawLog {
    start: f64,
    stop: f64,
    factor: f64,
}

/// One axis: a field and its values.
#[derive(Clone, Debug, PartialEq)]
pub struct Axis {
    /// Dotted scenario field, e.g. `parallel.tp`.
    pub field: String,
    /// Values in order.
    pub values: Vec<toml::Value>,
    /// Zip group.
    pub zip: Option<String>,
}

/// A parsed sweep.
#[derive(Clone, Debug)]
pub struct SweepSpec {
    /// Sweep file.
    pub path: PathBuf,
    /// Name.
    pub name: String,
    /// Description.
    pub description: String,
    /// Base scenario file.
    pub base_path: PathBuf,
    /// Base scenario as a TOML table.
    pub base: toml::Table,
    /// Axes in file order.
    pub axes: Vec<Axis>,
    /// Filters with their text.
    pub filters: Vec<(String, Expr)>,
}

/// One point of the grid: its index and the value of each axis (in axis order).
#[derive(Clone, Debug, PartialEq)]
pub struct Point {
    /// Position in the full (unfiltered, unsharded) grid order after filtering.
    pub index: usize,
    /// Axis values.
    pub values: Vec<toml::Value>,
}

/// Short names usable in filters.
pub const ALIASES: &[(&str, &str)] = &[
    ("tp", "parallel.tp"),
    ("pp", "parallel.pp"),
    ("dp", "parallel.dp"),
    ("vpp", "parallel.virtual_stages"),
    ("mbs", "parallel.micro_batch_size"),
    ("gpus", "cluster.num_gpus"),
    ("gbs", "training.global_batch_size"),
];

/// Formats a number without float noise: integers as integers, others with at most 12
/// significant digits (decimal-exact grids).
fn clean_number(x: f64) -> toml::Value {
    if x.fract() == 0.0 && x.abs() < 9e15 {
        toml::Value::Integer(x as i64)
    } else {
        let s = format!("{:.12e}", x);
        toml::Value::Float(s.parse::<f64>().unwrap_or(x))
    }
}

impl SweepSpec {
    /// Reads and checks a sweep file.
    pub fn load(path: &Path) -> Result<SweepSpec, SweepError> {
        let src = std::fs::read_to_string(path).map_err(|e| SweepError::Io {
            path: path.into(),
            source: e,
        })?;
        let invalid = |location: String, message: String| SweepError::Invalid {
            path: path.into(),
            location,
            message,
        };
        let raw: RawSweep = toml::from_str(&src).map_err(|e| {
            let loc = e
                .span()
                .map(|s| {
                    let before = &src[..s.start.min(src.len())];
                    format!(
                        ":{}:{}",
                        before.matches('\n').count() + 1,
                        s.start - before.rfind('\n').map(|p| p + 1).unwrap_or(0) + 1
                    )
                })
                .unwrap_or_default();
            invalid(loc, e.message().trim().to_string())
        })?;
        let base_path = path.parent().unwrap_or(Path::new("")).join(&raw.base);
        let base_src = std::fs::read_to_string(&base_path).map_err(|e| SweepError::Io {
            path: base_path.clone(),
            source: e,
        })?;
        let mut base: toml::Table = toml::from_str(&base_src).map_err(|e| {
            invalid(
                String::new(),
                format!(
                    "base scenario {} is not valid TOML: {}",
                    base_path.display(),
                    e.message()
                ),
            )
        })?;
        for key in raw.unset.unwrap_or_default() {
            if !remove_path(&mut base, &key) {
                return Err(invalid(
                    String::new(),
                    format!("unset: `{key}` is not set in the base scenario {}", base_path.display()),
                ));
            }
        }
        if raw.axis.is_empty() {
            return Err(invalid(String::new(), "a sweep needs at least one [[axis]]".into()));
        }
        let mut axes = Vec::new();
        for (i, a) in raw.axis.into_iter().enumerate() {
            let what = format!("axis {} (`{}`)", i + 1, a.field);
            if a.field.split('.').any(|p| p.is_empty()) {
                return Err(invalid(
                    String::new(),
                    format!("{what}: field must be a dotted path like \"parallel.tp\""),
                ));
            }
            // a misspelt field would run every point unchanged: refuse it before simulating
            if let Err(m) = crate::scenario::fields::check_path(&a.field) {
                let loc = src
                    .lines()
                    .position(|l| {
                        let t = l.trim_start();
                        t.starts_with("field") && t.contains(&format!("\"{}\"", a.field))
                    })
                    .map(|i| format!(":{}:1", i + 1))
                    .unwrap_or_default();
                return Err(invalid(loc, format!("axis {}: {m}", i + 1)));
            }
            let kinds = a.values.is_some() as u8 + a.range.is_some() as u8 + a.log.is_some() as u8;
            if kinds != 1 {
                return Err(invalid(
                    String::new(),
                    format!("{what}: give exactly one of values, range or log"),
                ));
            }
            let values: Vec<toml::Value> = if let Some(v) = a.values {
                v
            } else if let Some(r) = a.range {
                if r.step.is_nan() || r.step <= 0.0 || r.stop < r.start || !r.start.is_finite() || !r.stop.is_finite() {
                    return Err(invalid(
                        String::new(),
                        format!("{what}: range needs start <= stop and step > 0"),
                    ));
                }
                let n = ((r.stop - r.start) / r.step + 1e-9).floor() as usize + 1;
                if n > 1_000_000 {
                    return Err(invalid(
                        String::new(),
                        format!("{what}: range has {n} values (limit 1,000,000)"),
                    ));
                }
                (0..n).map(|k| clean_number(r.start + k as f64 * r.step)).collect()
            } else {
                let l = a.log.expect("one kind checked");
                if l.factor.is_nan() || l.factor <= 1.0 || l.start.is_nan() || l.start <= 0.0 || l.stop < l.start {
                    return Err(invalid(
                        String::new(),
                        format!("{what}: log range needs 0 < start <= stop and factor > 1"),
                    ));
                }
                let mut v = Vec::new();
                let mut k = 0;
                loop {
                    let x = l.start * l.factor.powi(k);
                    if x > l.stop * (1.0 + 1e-12) || v.len() > 10_000 {
                        break;
                    }
                    v.push(clean_number(x));
                    k += 1;
                }
                v
            };
            if values.is_empty() {
                return Err(invalid(String::new(), format!("{what}: the axis has no values")));
            }
            axes.push(Axis {
                field: a.field,
                values,
                zip: a.zip,
            });
        }
        // zipped axes must have equal lengths
        for a in &axes {
            if let Some(z) = &a.zip {
                if let Some(b) = axes
                    .iter()
                    .find(|b| b.zip.as_ref() == Some(z) && b.values.len() != a.values.len())
                {
                    return Err(invalid(
                        String::new(),
                        format!(
                            "zipped axes `{}` ({} values) and `{}` ({} values) differ in length",
                            a.field,
                            a.values.len(),
                            b.field,
                            b.values.len()
                        ),
                    ));
                }
            }
        }
        let mut filters = Vec::new();
        for f in raw.filters.unwrap_or_default() {
            let e = expr::parse(&f).map_err(|m| {
                let shown: String = f.chars().take(60).collect();
                let more = if shown.len() < f.len() { "..." } else { "" };
                invalid(String::new(), format!("filter \"{shown}{more}\": {m}"))
            })?;
            filters.push((f, e));
        }
        let name = raw.name.unwrap_or_else(|| {
            path.file_stem()
                .map(|s| s.to_string_lossy().into_owned())
                .unwrap_or_default()
        });
        Ok(SweepSpec {
            path: path.into(),
            name,
            description: raw.description.unwrap_or_default(),
            base_path,
            base,
            axes,
            filters,
        })
    }

    /// Applies `--set` overrides to the base scenario (fields checked, with a "did you
    /// mean" hint). A field an axis sets (or a table holding one) is refused: the axis
    /// would set it again at every point and the override would silently do nothing.
    pub fn apply_overrides(&mut self, overrides: &[crate::scenario::Override]) -> Result<(), SweepError> {
        for (path, value) in overrides {
            crate::scenario::fields::check_path(path).map_err(|m| SweepError::Invalid {
                path: self.path.clone(),
                location: String::new(),
                message: format!("--set {path}: {m}"),
            })?;
            let covers = |field: &str| {
                field == path.as_str()
                    || field.strip_prefix(path.as_str()).is_some_and(|r| r.starts_with('.'))
                    || path.strip_prefix(field).is_some_and(|r| r.starts_with('.'))
            };
            if let Some(axis) = self.axes.iter().find(|a| covers(&a.field)) {
                return Err(SweepError::Invalid {
                    path: self.path.clone(),
                    location: String::new(),
                    message: format!(
                        "--set {path}: the sweep's axis `{}` sets this field at every point, so the \
                         override would do nothing; drop the --set, or change the axis's values in the sweep file",
                        axis.field
                    ),
                });
            }
            match value {
                Some(v) => set_path(&mut self.base, path, v.clone()),
                None => {
                    remove_path(&mut self.base, path);
                }
            }
        }
        Ok(())
    }

    /// Groups of axis indices that advance together (zip), in first-appearance order.
    fn groups(&self) -> Vec<Vec<usize>> {
        let mut groups: Vec<(Option<String>, Vec<usize>)> = Vec::new();
        for (i, a) in self.axes.iter().enumerate() {
            match &a.zip {
                Some(z) => match groups.iter_mut().find(|(g, _)| g.as_ref() == Some(z)) {
                    Some((_, v)) => v.push(i),
                    None => groups.push((Some(z.clone()), vec![i])),
                },
                None => groups.push((None, vec![i])),
            }
        }
        groups.into_iter().map(|(_, v)| v).collect()
    }

    /// The base scenario with one point's values applied.
    pub fn table_for(&self, values: &[toml::Value]) -> toml::Table {
        let mut t = self.base.clone();
        for (a, v) in self.axes.iter().zip(values) {
            set_path(&mut t, &a.field, v.clone());
        }
        t
    }

    /// Identity of what the sweep computes: 16 hex digits of a hash (FNV-1a, 64 bits) of
    /// its name, its base scenario after `unset` and `--set` overrides, its axes and its
    /// filters. Shards and partial files carry it, so that `merge` and resume can tell
    /// whether they belong to this sweep.
    pub fn identity(&self) -> String {
        // every part ends with a NUL, so that no two different sweeps give the same text
        let mut text = String::from("trainsim sweep 1\0");
        let mut feed = |part: &str| {
            text.push_str(part);
            text.push('\0');
        };
        feed(&self.name);
        feed(&toml::to_string(&self.base).unwrap_or_else(|_| format!("{:?}", self.base)));
        for a in &self.axes {
            feed(&a.field);
            feed(a.zip.as_deref().unwrap_or(""));
            for v in &a.values {
                feed(&v.to_string());
            }
        }
        for (filter, _) in &self.filters {
            feed(filter);
        }
        format!("{:016x}", crate::engine::rng::fnv1a(&text))
    }

    /// Points of the full grid before filtering (the product of the axis groups' lengths),
    /// computed without overflow; an error when above `max_points`, before anything is built.
    pub fn grid_size(&self, max_points: usize) -> Result<usize, SweepError> {
        let lens: Vec<usize> = self.groups().iter().map(|g| self.axes[g[0]].values.len()).collect();
        let total = lens.iter().try_fold(1u128, |acc, &n| acc.checked_mul(n as u128));
        match total {
            Some(t) if t <= max_points as u128 => Ok(t as usize),
            _ => Err(SweepError::Invalid {
                path: self.path.clone(),
                location: String::new(),
                message: format!(
                    "the grid has {} points ({}), more than the limit of {max_points}; \
                     split the sweep, add zip groups, or raise the limit with --max-points",
                    total.map_or_else(|| "more than 2^128".to_string(), |t| t.to_string()),
                    lens.iter().map(|n| n.to_string()).collect::<Vec<_>>().join(" x ")
                ),
            }),
        }
    }

    /// Every point that passes the filters, in grid order (first axis slowest), for grids
    /// of at most [`DEFAULT_MAX_POINTS`] points.
    pub fn points(&self) -> Result<Vec<Point>, SweepError> {
        self.points_limited(DEFAULT_MAX_POINTS)
    }

    /// [`SweepSpec::points`] with another limit on the grid size (before filtering).
    pub fn points_limited(&self, max_points: usize) -> Result<Vec<Point>, SweepError> {
        let total = self.grid_size(max_points)?;
        let groups = self.groups();
        let lens: Vec<usize> = groups.iter().map(|g| self.axes[g[0]].values.len()).collect();
        let mut out = Vec::new();
        for flat in 0..total {
            let mut rem = flat;
            let mut idx = vec![0usize; groups.len()];
            for gi in (0..groups.len()).rev() {
                idx[gi] = rem % lens[gi];
                rem /= lens[gi];
            }
            let mut values = vec![toml::Value::Integer(0); self.axes.len()];
            for (gi, g) in groups.iter().enumerate() {
                for &ai in g {
                    values[ai] = self.axes[ai].values[idx[gi]].clone();
                }
            }
            if self.passes(&values)? {
                out.push(Point {
                    index: out.len(),
                    values,
                });
            }
        }
        Ok(out)
    }

    fn passes(&self, values: &[toml::Value]) -> Result<bool, SweepError> {
        if self.filters.is_empty() {
            return Ok(true);
        }
        let t = self.table_for(values);
        let lookup = |f: &str| -> Option<f64> {
            let path = ALIASES.iter().find(|(a, _)| *a == f).map(|(_, p)| *p).unwrap_or(f);
            if let Some(v) = get_number(&t, path) {
                return Some(v);
            }
            // derived: dp = gpus / (tp * pp)
            if path == "parallel.dp" {
                let g = get_number(&t, "cluster.num_gpus")?;
                let tp = get_number(&t, "parallel.tp").unwrap_or(1.0);
                let pp = get_number(&t, "parallel.pp").unwrap_or(1.0);
                return Some(g / (tp * pp));
            }
            None
        };
        for (text, e) in &self.filters {
            let v = e.eval(&lookup).map_err(|m| SweepError::Invalid {
                path: self.path.clone(),
                location: String::new(),
                message: format!("filter \"{text}\": {m}"),
            })?;
            if v == 0.0 {
                return Ok(false);
            }
        }
        Ok(true)
    }
}

/// Default limit on the points of a sweep's grid (before filtering); `--max-points` raises it.
pub const DEFAULT_MAX_POINTS: usize = 10_000_000;

/// A value as it appears in CSV cells.
pub fn value_text(v: &toml::Value) -> String {
    match v {
        toml::Value::String(s) => s.clone(),
        other => other.to_string(),
    }
}
