//! The run pipeline as a library call: a scenario in, the simulated result (and trace) out,
//! and its files written. The command line, the explorer server and any other front end
//! call these functions; none of them simulates or writes by itself.
//!
//! Owns [`RunOptions`], [`RunOutcome`], [`RunError`], [`simulate`] and [`write_outputs`].

use crate::report::{self, ReportError, ScenarioRecord};
use crate::scenario::{Override, Scenario, ScenarioError};
use crate::simulation::run::run_traced;
use crate::simulation::trace::{default_trace_stages, Trace, TraceRequest};
use crate::simulation::{RunResult, SimError};
use std::path::{Path, PathBuf};
use thiserror::Error;

/// Why a run produced no result. [`RunError::is_usage`] tells input errors (exit status 2
/// on the command line) from failures.
#[derive(Debug, Error)]
pub enum RunError {
    /// The scenario is invalid or its plan impossible.
    #[error(transparent)]
    Scenario(#[from] ScenarioError),
    /// A run option does not fit the scenario.
    #[error("{0}")]
    Usage(String),
    /// The simulation could not finish.
    #[error("simulating {path}: {source}")]
    Simulation {
        /// Scenario file.
        path: PathBuf,
        /// Cause.
        source: SimError,
    },
    /// A result file could not be written.
    #[error(transparent)]
    Report(#[from] ReportError),
}

impl RunError {
    /// Whether the input was wrong (rather than the run failing): a bad scenario or flag,
    /// or a valid one the simulation refuses as too large, too long for its clock, or
    /// without a meaningful result. A stalled simulation is a bug, not the input's fault.
    pub fn is_usage(&self) -> bool {
        match self {
            RunError::Scenario(_) | RunError::Usage(_) => true,
            RunError::Simulation { source, .. } => !matches!(source, SimError::Stalled { .. }),
            RunError::Report(_) => false,
        }
    }
}

/// What a run writes.
#[derive(Clone, Debug, Default)]
pub struct RunOptions {
    /// Overrides the scenario's seed.
    pub seed: Option<u64>,
    /// Overrides of scenario fields by dotted path (`--set parallel.tp=4`).
    pub overrides: Vec<Override>,
    /// Stages to trace (empty: the default ones), or `None` for no trace.
    pub trace_stages: Option<Vec<u32>>,
    /// results.json only: no charts, no report.md.
    pub results_only: bool,
}

/// A finished run.
#[derive(Clone, Debug)]
pub struct RunOutcome {
    /// The result.
    pub result: RunResult,
    /// The trace, if asked for.
    pub trace: Option<Trace>,
    /// Wall time of the simulation, s.
    pub wall_s: f64,
    /// Files written.
    pub written: Vec<PathBuf>,
}

/// The trace request of `opts` for a scenario with `pp` stages; a stage that does not exist
/// is a usage error naming the scenario.
fn trace_request(opts: &RunOptions, sc: &Scenario) -> Result<Option<TraceRequest>, RunError> {
    let pp = sc.input.plan.pp;
    let Some(stages) = &opts.trace_stages else {
        return Ok(None);
    };
    let stages = if stages.is_empty() {
        default_trace_stages(pp)
    } else {
        stages.clone()
    };
    if let Some(bad) = stages.iter().find(|&&s| s >= pp) {
        return Err(RunError::Usage(format!(
            "--trace-stages: stage {bad} does not exist: {} has pp = {pp}, stages 0 to {}",
            sc.path.display(),
            pp - 1
        )));
    }
    Ok(Some(TraceRequest {
        stages,
        iterations: None,
    }))
}

/// Simulates `sc` (with the options' seed and trace) and measures the wall time.
pub fn simulate(sc: &Scenario, opts: &RunOptions) -> Result<(RunResult, Option<Trace>, f64), RunError> {
    let request = trace_request(opts, sc)?;
    let mut input = sc.input.clone();
    if let Some(s) = opts.seed {
        input.seed = s;
    }
    let started = std::time::Instant::now();
    let (result, trace) = run_traced(&input, request.as_ref()).map_err(|source| RunError::Simulation {
        path: sc.path.clone(),
        source,
    })?;
    Ok((result, trace, started.elapsed().as_secs_f64()))
}

/// Writes results.json and timeline.json (and, unless `results_only`, the charts,
/// report.md and report.html) and the trace into `dir`, recording `scenario` in them;
/// returns the files written.
pub fn write_outputs(
    result: &RunResult,
    scenario: Option<&ScenarioRecord>,
    trace: Option<&Trace>,
    dir: &Path,
    results_only: bool,
) -> Result<Vec<PathBuf>, ReportError> {
    let mut written = if results_only {
        report::write_results(result, scenario, dir)?
    } else {
        report::write_all_for(result, scenario, dir)?
    };
    if let Some(t) = trace {
        let p = dir.join("trace.json");
        report::trace::write_trace(result, t, &p)?;
        written.push(p);
    }
    Ok(written)
}

/// Loads the scenario at `path` (with the options' overrides), simulates it and writes its
/// outputs into `dir`.
pub fn run_file(path: &Path, dir: &Path, opts: &RunOptions) -> Result<RunOutcome, RunError> {
    let mut sc = Scenario::load_with(path, &opts.overrides)?;
    if let Some(s) = opts.seed {
        sc.input.seed = s;
    }
    let (result, trace, wall_s) = simulate(&sc, opts)?;
    let record = ScenarioRecord::of(&sc);
    let written = write_outputs(&result, Some(&record), trace.as_ref(), dir, opts.results_only)?;
    Ok(RunOutcome {
        result,
        trace,
        wall_s,
        written,
    })
}
