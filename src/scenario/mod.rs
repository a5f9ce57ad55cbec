//! Scenario files: TOML in, a typed, validated [`Scenario`] out.
//!
//! Parsing happens once, at the edge: [`raw`] mirrors the file with serde (unknown keys
//! rejected), then [`Scenario::from_source`] resolves presets, applies defaults, checks
//! every value and the plan's feasibility, and reports the first problem with its file,
//! line, column, field, value and what is allowed.

mod check;
mod comm;
pub mod error;
pub mod fields;
mod goal;
mod hardware;
pub mod limits;
mod model;
pub mod paths;
mod pipeline;
pub mod raw;
mod replica_batches;
pub use pipeline::balanced_stage_layers;
pub use replica_batches::balanced_replica_batches;
mod routing;

pub use error::ScenarioError;

use crate::hardware::Precision;
use crate::simulation::RunInput;
use crate::training::TrainingSpec;
use check::{quote_list, Checker};
use raw::RawScenario;
use std::path::{Path, PathBuf};

/// A measured result that comes with a scenario, for `trainsim validate`.
#[derive(Clone, Debug, PartialEq)]
pub struct Measured {
    /// Measured step (iteration) time, s.
    pub step_time_s: Option<f64>,
    /// Measured throughput per GPU, tokens/s.
    pub tokens_per_s_per_gpu: Option<f64>,
    /// Where the figure comes from.
    pub source: String,
    /// Identifier in the source data set.
    pub id: String,
}

/// A validated scenario.
#[derive(Clone, Debug)]
pub struct Scenario {
    /// File it came from.
    pub path: PathBuf,
    /// Description.
    pub description: String,
    /// Everything the simulation needs.
    pub input: RunInput,
    /// Measured result, if the file carries one.
    pub measured: Option<Measured>,
    /// The scenario as TOML text: the file as written, or, with overrides, the file's
    /// table with them applied (what results.json and report.html record).
    pub source: String,
}

/// One `--set path=value` override: a dotted field path and its TOML value (`None`:
/// remove the field, so its default applies).
pub type Override = (String, Option<toml::Value>);

/// Parses `path=value`: the value as TOML (`4`, `0.5`, `true`, `"x"`, `[1, 2]`), a bare
/// word as a string, nothing after `=` as "remove the field". The path is checked against
/// the scenario format, with a "did you mean" hint.
pub fn parse_override(s: &str) -> Result<Override, String> {
    let Some((path, value)) = s.split_once('=') else {
        return Err(format!(
            "--set {s}: expected path=value, e.g. --set parallel.tp=4 (see docs/scenario.md for the fields)"
        ));
    };
    let (path, value) = (path.trim(), value.trim());
    fields::check_path(path).map_err(|m| format!("--set {s}: {m}"))?;
    if value.is_empty() {
        return Ok((path.to_string(), None));
    }
    let v = match toml::from_str::<toml::Table>(&format!("v = {value}")) {
        Ok(mut t) => t.remove("v").expect("key v parsed"),
        Err(_) => toml::Value::String(value.to_string()),
    };
    Ok((path.to_string(), Some(v)))
}

fn override_text(o: &Override) -> String {
    match &o.1 {
        Some(v) => format!("{}={}", o.0, v),
        None => format!("{}= (removed)", o.0),
    }
}

/// Default seed of every random stream.
pub const DEFAULT_SEED: u64 = 42;

impl Scenario {
    /// Reads and validates a scenario file.
    pub fn load(path: &Path) -> Result<Scenario, ScenarioError> {
        let src = std::fs::read_to_string(path).map_err(|e| ScenarioError::Io {
            path: path.to_path_buf(),
            source: e,
        })?;
        Scenario::from_source(&src, path)
    }

    /// Validates a scenario given as a TOML table (sweep points); `path` names it in messages.
    pub fn from_table(table: &toml::Table, path: &Path) -> Result<Scenario, ScenarioError> {
        let src = toml::to_string(table).map_err(|e| ScenarioError::Plan {
            path: path.to_path_buf(),
            location: String::new(),
            message: e.to_string(),
        })?;
        Scenario::from_source(&src, path)
    }

    /// Validates scenario text; `path` is used in messages and for the default name.
    pub fn from_source(src: &str, path: &Path) -> Result<Scenario, ScenarioError> {
        let raw: RawScenario = toml::from_str(src).map_err(|e| parse_error(src, path, &e))?;
        let checker = Checker { src, path };
        // huge and non-finite values first: nothing below multiplies or allocates by them;
        // then the sections' rules, then the lower ends of the physical limits
        let table = toml::from_str::<toml::Table>(src).unwrap_or_default();
        checker.within_limits(&table, limits::Ends::Upper)?;
        let mut s = checker.convert(raw)?;
        checker.within_limits(&table, limits::Ends::Both)?;
        s.source = src.to_string();
        Ok(s)
    }

    /// [`Scenario::load`] with `--set` overrides applied.
    pub fn load_with(path: &Path, overrides: &[Override]) -> Result<Scenario, ScenarioError> {
        let src = std::fs::read_to_string(path).map_err(|e| ScenarioError::Io {
            path: path.to_path_buf(),
            source: e,
        })?;
        Scenario::from_source_with(&src, path, overrides)
    }

    /// [`Scenario::from_source`] with overrides applied to the file's table. Errors in
    /// fields the file sets keep their line in the file; errors in overridden fields name
    /// the override.
    pub fn from_source_with(src: &str, path: &Path, overrides: &[Override]) -> Result<Scenario, ScenarioError> {
        if overrides.is_empty() {
            return Scenario::from_source(src, path);
        }
        let mut table: toml::Table = toml::from_str(src).map_err(|e| parse_error(src, path, &e))?;
        for o in overrides {
            fields::check_path(&o.0).map_err(|message| ScenarioError::Override {
                setting: override_text(o),
                message,
            })?;
            match &o.1 {
                Some(v) => paths::set_path(&mut table, &o.0, v.clone()),
                None => {
                    paths::remove_path(&mut table, &o.0);
                }
            }
        }
        let raw = <RawScenario as serde::Deserialize>::deserialize(toml::Value::Table(table.clone())).map_err(|e| {
            ScenarioError::Override {
                setting: overrides.iter().map(override_text).collect::<Vec<_>>().join(", "),
                message: e.message().trim().to_string(),
            }
        })?;
        let checker = Checker { src, path };
        let mut s = checker
            .within_limits(&table, limits::Ends::Upper)
            .and_then(|()| checker.convert(raw))
            .and_then(|s| checker.within_limits(&table, limits::Ends::Both).map(|()| s))
            .map_err(|e| match e {
                ScenarioError::Invalid {
                    path,
                    field,
                    value,
                    allowed,
                    ..
                } if overrides.iter().any(|o| o.0 == field) => ScenarioError::Invalid {
                    path,
                    location: format!(" (--set {field}={value})"),
                    field,
                    value,
                    allowed,
                },
                other => other,
            })?;
        let sets: Vec<String> = overrides
            .iter()
            .map(|o| format!("--set {}", override_text(o)))
            .collect();
        s.source = format!(
            "# {} with {}\n{}",
            path.display(),
            sets.join(" "),
            toml::to_string(&table).unwrap_or_default()
        );
        Ok(s)
    }
}

fn line_col(src: &str, offset: usize) -> (usize, usize) {
    let before = &src[..offset.min(src.len())];
    let line = before.matches('\n').count() + 1;
    let col = before.rfind('\n').map(|p| offset - p).unwrap_or(offset + 1);
    (line, col)
}

fn parse_error(src: &str, path: &Path, e: &toml::de::Error) -> ScenarioError {
    let (line, column) = e.span().map(|s| line_col(src, s.start)).unwrap_or((1, 1));
    let snippet = check::clip(src.lines().nth(line - 1).unwrap_or("").to_string());
    let mut message = check::clip_to(e.message().trim().to_string(), 400);
    if message.starts_with("unknown field") {
        message = unknown_field_message(&message);
    }
    if message.contains("expected u32") || message.contains("expected u64") {
        message.push_str(" (a non-negative whole number is required here)");
    }
    ScenarioError::Parse {
        path: path.to_path_buf(),
        line,
        column,
        message,
        snippet,
    }
}

/// serde's "unknown field `x`, expected one of `a`, `b`" with a "did you mean" hint, or
/// the reason when `x` names something trainsim does not model yet.
fn unknown_field_message(message: &str) -> String {
    let ticks: Vec<&str> = message.split('`').skip(1).step_by(2).collect();
    let Some((unknown, expected)) = ticks.split_first() else {
        return format!("{message} (see docs/scenario.md for every field)");
    };
    if let Some(why) = fields::not_modelled(unknown) {
        return format!("unknown field `{unknown}`: {why}");
    }
    let hint = fields::did_you_mean(unknown, expected.iter().copied(), "`");
    let known = if expected.is_empty() {
        String::new()
    } else {
        format!(
            "; fields here: {}",
            expected.iter().map(|k| format!("`{k}`")).collect::<Vec<_>>().join(", ")
        )
    };
    format!("unknown field `{unknown}`: {hint}(see docs/scenario.md for every field{known})")
}

impl Checker<'_> {
    fn convert(&self, r: RawScenario) -> Result<Scenario, ScenarioError> {
        let groups = r.cluster.groups.as_deref().unwrap_or(&[]);
        let gpu = match (&r.cluster.gpu, groups.first()) {
            (Some(g), None) => self.gpu(g, None)?,
            (None, Some(g0)) => self.gpu(&g0.gpu, Some(0))?,
            (Some(_), Some(_)) => {
                return Err(self.invalid(
                    "cluster.gpu",
                    "(a section)",
                    "give either [cluster.gpu] (one GPU type) or [[cluster.groups]] (each with its own [cluster.groups.gpu]), not both",
                ))
            }
            (None, None) => {
                return Err(self.invalid(
                    "cluster.gpu",
                    "(missing)",
                    "a [cluster.gpu] section (a preset or the GPU's fields) is required, or [[cluster.groups]] of GPUs",
                ))
            }
        };
        let num_gpus = self.at_least_one("cluster.num_gpus", r.cluster.num_gpus)?;
        let gpus_per_node = self.at_least_one("cluster.gpus_per_node", r.cluster.gpus_per_node.unwrap_or(8))?;
        if num_gpus > gpus_per_node && num_gpus % gpus_per_node != 0 {
            return Err(self.invalid(
                "cluster.num_gpus",
                num_gpus,
                format!("must be a multiple of gpus_per_node = {gpus_per_node} (whole nodes)"),
            ));
        }
        let n = r.cluster.network.unwrap_or_default();
        let host = r.cluster.host;
        let mut cluster = self.cluster(&n, gpu, num_gpus, gpus_per_node)?;
        self.gpu_groups(&mut cluster, groups, &n)?;
        let collectives = self.algorithms(&n, cluster.fabric.model)?;
        let model = self.model(&r.model)?;

        let t = &r.training;
        let precision = match &t.precision {
            Some(s) => self.choice(
                "training.precision",
                s,
                Precision::NAMES,
                &[Precision::Bf16, Precision::Fp16, Precision::Fp8],
            )?,
            None => Precision::Bf16,
        };
        if let Some((g, _)) =
            (cluster.gpu_counts().into_iter()).find(|(g, _)| precision == Precision::Fp8 && g.peak_fp8_tflops <= 0.0)
        {
            return Err(self.invalid(
                "training.precision",
                "\"fp8\"",
                format!("GPU {} has no FP8 tensor cores; use \"bf16\" or \"fp16\"", g.name),
            ));
        }
        let training = TrainingSpec {
            global_batch_size: self.at_least_one("training.global_batch_size", t.global_batch_size)?,
            seq_length: self.at_least_one("training.seq_length", t.seq_length)?,
            precision,
            flash_attention: t.flash_attention.unwrap_or(true),
        };

        let mut plan = self.plan(
            &r.parallel,
            r.moe.as_ref(),
            &model,
            (num_gpus, gpus_per_node),
            &training,
        )?;
        self.stages_in_groups(&cluster, &plan)?;
        if matches!(r.parallel.stage_layers, Some(raw::RawStageLayers::Rule(_))) {
            self.balance_layers(&mut plan, &cluster, &model, &training)?;
        }
        plan.replica_micro_batches = self.replica_batches(
            r.parallel.replica_micro_batches.as_ref(),
            &plan,
            &cluster,
            &model,
            &training,
        )?;

        let comm = self.comm(r.communication.as_ref(), &plan)?;
        let offload = self.offload(
            r.offload.as_ref(),
            host.as_ref(),
            &cluster.gpu.name,
            gpus_per_node,
            &plan,
        )?;
        let goal = self.goal(r.target.as_ref(), r.reliability.as_ref(), r.energy.as_ref(), &model)?;
        let routing = self.routing(r.moe.as_ref(), &model, &plan, gpus_per_node)?;
        let sim = r.simulation.unwrap_or_default();
        let ranks = match &sim.ranks {
            None => crate::simulation::replicas::RankMode::default(),
            Some(v) => {
                use crate::simulation::replicas::RankMode;
                self.choice("simulation.ranks", v, &RankMode::NAMES, &RankMode::ALL)?
            }
        };
        if ranks == crate::simulation::replicas::RankMode::Representative
            && crate::simulation::input::mixed_replicas(&cluster, &plan)
        {
            return Err(self.invalid(
                "simulation.ranks",
                "\"representative\"",
                if plan.replica_micro_batches.is_some() {
                    "the data-parallel replicas run different numbers of micro-batches \
                     (parallel.replica_micro_batches), which one representative cannot stand for: use \"auto\" or \
                     \"every_replica\""
                } else {
                    "the data-parallel replicas of a stage sit on different GPU groups, which one representative \
                     cannot stand for: use \"auto\" or \"every_replica\" (or groups of whole stages, multiples of \
                     tp*cp*dp GPUs)"
                },
            ));
        }
        let warmup_iterations = sim.warmup_iterations.unwrap_or(1);
        let iterations = self.at_least_one("simulation.iterations", sim.iterations.unwrap_or(3))?;
        if iterations <= warmup_iterations {
            return Err(self.invalid(
                "simulation.iterations",
                iterations,
                format!("must exceed simulation.warmup_iterations = {warmup_iterations}"),
            ));
        }
        let measured = match r.measured {
            Some(m) => {
                if let Some(v) = m.step_time_s {
                    self.positive("measured.step_time_s", v)?;
                }
                if let Some(v) = m.tokens_per_s_per_gpu {
                    self.positive("measured.tokens_per_s_per_gpu", v)?;
                }
                Some(Measured {
                    step_time_s: m.step_time_s,
                    tokens_per_s_per_gpu: m.tokens_per_s_per_gpu,
                    source: m.source.unwrap_or_default(),
                    id: m.id.unwrap_or_default(),
                })
            }
            None => None,
        };
        let name = r.name.unwrap_or_else(|| {
            self.path
                .file_stem()
                .map(|s| s.to_string_lossy().into_owned())
                .unwrap_or_else(|| "scenario".into())
        });
        let stragglers = match r.stragglers {
            None => crate::simulation::stragglers::StragglerSpec::default(),
            Some(st) => {
                let spec = crate::simulation::stragglers::StragglerSpec {
                    slow_gpus: st.slow_gpus.unwrap_or(0),
                    slow_nodes: st.slow_nodes.unwrap_or(0),
                    slowdown_fraction: self
                        .non_negative("stragglers.slowdown_fraction", st.slowdown_fraction.unwrap_or(0.0))?,
                    step_jitter_fraction: self.non_negative(
                        "stragglers.step_jitter_fraction",
                        st.step_jitter_fraction.unwrap_or(0.0),
                    )?,
                };
                if spec.slow_gpus > num_gpus {
                    return Err(self.invalid(
                        "stragglers.slow_gpus",
                        spec.slow_gpus,
                        format!("must be at most cluster.num_gpus = {num_gpus}"),
                    ));
                }
                let nodes = num_gpus.div_ceil(gpus_per_node.max(1));
                if spec.slow_nodes > nodes {
                    return Err(self.invalid(
                        "stragglers.slow_nodes",
                        spec.slow_nodes,
                        format!(
                            "must be at most the cluster's {nodes} nodes (cluster.num_gpus / cluster.gpus_per_node)"
                        ),
                    ));
                }
                if (spec.slow_gpus > 0 || spec.slow_nodes > 0) && spec.slowdown_fraction == 0.0 {
                    return Err(self.invalid(
                        "stragglers.slowdown_fraction",
                        0,
                        "must be positive when stragglers.slow_gpus or stragglers.slow_nodes > 0",
                    ));
                }
                spec
            }
        };
        Ok(Scenario {
            path: self.path.to_path_buf(),
            description: r.description.unwrap_or_default(),
            input: RunInput {
                name,
                seed: r.seed.unwrap_or(DEFAULT_SEED),
                cluster,
                model,
                plan,
                training,
                iterations,
                warmup_iterations,
                goal,
                stragglers,
                routing,
                collectives,
                comm,
                offload,
                max_operations: sim
                    .max_operations
                    .unwrap_or(crate::simulation::budget::DEFAULT_MAX_OPERATIONS),
                ranks,
            },
            measured,
            source: String::new(),
        })
    }
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;

    const GOOD: &str = r#"
[cluster]
num_gpus = 64
[cluster.gpu]
preset = "H100-SXM"
[model]
preset = "llama3-8b"
[parallel]
tp = 2
pp = 2
[training]
global_batch_size = 64
seq_length = 4096
"#;

    fn err(src: &str) -> String {
        Scenario::from_source(src, Path::new("s.toml")).unwrap_err().to_string()
    }

    #[test]
    fn defaults_fill_in_dp_sp_and_network() {
        let s = Scenario::from_source(GOOD, Path::new("dir/my-run.toml")).unwrap();
        assert_eq!(s.input.name, "my-run");
        assert_eq!(s.input.plan.dp, 16);
        assert!(s.input.plan.sequence_parallel);
        assert_eq!(s.input.cluster.nic_gbit_per_s, 400.0);
        assert_eq!(s.input.seed, DEFAULT_SEED);
    }

    #[test]
    fn errors_name_file_line_field_value_and_what_is_allowed() {
        let e = err(&GOOD.replace("tp = 2", "tp = 2\nrecompute = \"most\""));
        assert!(
            e.contains("s.toml:")
                && e.contains("parallel.recompute")
                && e.contains("\"most\"")
                && e.contains("\"selective\""),
            "{e}"
        );
        let e = err(&GOOD.replace("tp = 2", "tq = 2"));
        assert!(e.contains("s.toml:9:1") && e.contains("unknown field `tq`"), "{e}");
        let e = err(&GOOD.replace("num_gpus = 64", "num_gpus = -8"));
        assert!(e.contains("s.toml:3:") && e.contains("-8"), "{e}");
        let e = err(&GOOD.replace("tp = 2", "tp = 3"));
        assert!(e.contains("impossible plan") && e.contains("32 attention heads"), "{e}");
        let e = err(&GOOD.replace("\"llama3-8b\"", "\"llama9\""));
        assert!(e.contains("model.preset") && e.contains("\"llama3-70b\""), "{e}");
    }
}
