//! Runs one fuzz case through the whole `trainsim run` pipeline in-process (load, check,
//! simulate, summary, results JSON) and classifies what happened. Shared by
//! `examples/fuzz` and `tests/it/robust.rs`.

#![allow(dead_code)]

use std::panic::{catch_unwind, AssertUnwindSafe};
use std::path::Path;
use std::time::Instant;

/// What one case did.
#[derive(Clone, Debug, PartialEq)]
pub enum Outcome {
    /// The scenario was refused with a message naming the file and a line.
    RefusedLocated,
    /// Refused with a message naming the file but no line (a missing key, a default).
    RefusedUnlocated,
    /// The plan is impossible (reported as such).
    ImpossiblePlan,
    /// Loaded, but the simulation refused it (too large, outside the clock, not finite):
    /// the kind of refusal.
    RunRefused(String),
    /// Simulated; every number finite.
    Ok,
    /// Simulated, but a number in the summary or results is NaN or infinite.
    NonFinite(String),
    /// A panic (message and place).
    Panic(String),
    /// Took longer than the hang threshold.
    Slow(f64),
}

impl Outcome {
    /// Short name for the counts.
    pub fn name(&self) -> &'static str {
        match self {
            Outcome::RefusedLocated => "refused (located)",
            Outcome::RefusedUnlocated => "refused (file, no line)",
            Outcome::ImpossiblePlan => "impossible plan",
            Outcome::RunRefused(_) => "run refused",
            Outcome::Ok => "ok",
            Outcome::NonFinite(_) => "NON-FINITE",
            Outcome::Panic(_) => "PANIC",
            Outcome::Slow(_) => "SLOW (hang)",
        }
    }
    /// A defect the harness exists to find.
    pub fn is_defect(&self) -> bool {
        matches!(self, Outcome::NonFinite(_) | Outcome::Panic(_) | Outcome::Slow(_))
    }
}

/// Seconds after which a case counts as a hang.
pub const HANG_S: f64 = 20.0;

thread_local! {
    static LAST_PANIC: std::cell::RefCell<String> = const { std::cell::RefCell::new(String::new()) };
}

/// Silences the default panic printout and keeps each thread's last panic message.
pub fn install_panic_hook() {
    std::panic::set_hook(Box::new(|info| {
        let msg = info
            .payload()
            .downcast_ref::<&str>()
            .map(|s| s.to_string())
            .or_else(|| info.payload().downcast_ref::<String>().cloned())
            .unwrap_or_default();
        let place = info
            .location()
            .map(|l| format!("{}:{}", l.file(), l.line()))
            .unwrap_or_default();
        LAST_PANIC.with(|p| *p.borrow_mut() = format!("{place}: {msg}"));
    }));
}

fn located(msg: &str) -> bool {
    // "file.toml:12:3" or "(--set ...)"
    msg.split(".toml:")
        .nth(1)
        .is_some_and(|rest| rest.starts_with(|c: char| c.is_ascii_digit()))
}

/// Runs `text` as the scenario file `path`.
pub fn run_case(text: &str, path: &Path) -> Outcome {
    timed(|| classify(text, path))
}

/// Writes `text` to a scratch sweep file, expands it (at most 10,000 points) and runs its
/// first point as `trainsim sweep` would.
pub fn run_sweep_case(text: &str, scratch: &Path) -> Outcome {
    timed(|| classify_sweep(text, scratch))
}

fn timed(f: impl FnOnce() -> Outcome) -> Outcome {
    let started = Instant::now();
    let r = catch_unwind(AssertUnwindSafe(f));
    let out = match r {
        Ok(o) => o,
        Err(_) => Outcome::Panic(LAST_PANIC.with(|p| p.borrow().clone())),
    };
    let s = started.elapsed().as_secs_f64();
    if s > HANG_S && !out.is_defect() {
        return Outcome::Slow(s);
    }
    out
}

fn classify_sweep(text: &str, scratch: &Path) -> Outcome {
    use trainsim::sweep::{run::run_point, SweepSpec};
    if std::fs::write(scratch, text).is_err() {
        return Outcome::Panic(format!("cannot write the scratch file {}", scratch.display()));
    }
    let spec = match SweepSpec::load(scratch) {
        Ok(s) => s,
        Err(e) => {
            let m = e.to_string();
            return if m.contains(&scratch.display().to_string()) {
                Outcome::RefusedLocated
            } else {
                Outcome::RefusedUnlocated
            };
        }
    };
    let points = match spec.points_limited(10_000) {
        Ok(p) => p,
        Err(_) => return Outcome::RefusedLocated,
    };
    let mut out = Outcome::RefusedLocated; // no point left after the filters
    if let Some(p) = points.first() {
        let row = run_point(&spec, p);
        let cells = row.csv_cells().join(",");
        if cells
            .split(|c: char| !c.is_alphanumeric())
            .any(|w| w == "NaN" || w == "inf")
        {
            return Outcome::NonFinite(format!("sweep row {}: {cells}", p.index));
        }
        out = match &row.result {
            Ok(_) => Outcome::Ok,
            Err(_) => Outcome::ImpossiblePlan,
        };
    }
    out
}

fn classify(text: &str, path: &Path) -> Outcome {
    use trainsim::scenario::{Scenario, ScenarioError};
    let sc = match Scenario::from_source(text, path) {
        Ok(sc) => sc,
        Err(ScenarioError::Plan { .. }) => return Outcome::ImpossiblePlan,
        Err(e) => {
            let m = e.to_string();
            return if located(&m) {
                Outcome::RefusedLocated
            } else {
                Outcome::RefusedUnlocated
            };
        }
    };
    let r = match trainsim::simulation::run(&sc.input) {
        Ok(r) => r,
        Err(e) => {
            use trainsim::simulation::SimError;
            return Outcome::RunRefused(match e {
                SimError::TooLarge { .. } => "too many operations".into(),
                SimError::ClockRange { .. } => "step beyond the clock".into(),
                SimError::NotFinite { field, .. } => format!("no meaningful {field}"),
                SimError::Unsupported { .. } => "unsupported".into(),
                SimError::Stalled { .. } => "stalled".into(),
            });
        }
    };
    let summary = trainsim::report::summary::summary(&r);
    let json = serde_json::to_string(&r).unwrap_or_default();
    // results.json writes a non-finite number as null, like an absent option: the walk
    // below over the typed result catches those; the texts are checked for NaN and inf
    for (what, s) in [("summary", &summary), ("results", &json)] {
        for bad in ["NaN", "inf"] {
            if s.split(|c: char| !c.is_alphanumeric()).any(|w| w == bad) {
                return Outcome::NonFinite(format!("{what} contains {bad}"));
            }
        }
    }
    if let Some((field, v)) = trainsim::simulation::finite::first_bad_number(&r) {
        return Outcome::NonFinite(format!("{field} = {v}"));
    }
    Outcome::Ok
}
