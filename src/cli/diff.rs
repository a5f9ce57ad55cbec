//! `trainsim diff A B`: two results.json compared.

use crate::report;
use std::path::Path;

pub(super) const HELP: &str = "Example:
  trainsim run scenarios/gpt3-175b-a100-1024.toml --out out/a
  trainsim run scenarios/gpt3-175b-a100-1024.toml --set parallel.tp=4 --set parallel.pp=16 --out out/b
  trainsim diff out/a/results.json out/b/results.json

Prints the inputs that differ (from the scenario each results.json records), whether b is
faster or slower than a (\"1.23x faster\"), and each headline figure and breakdown category
of both with the change. Exit status 2 when a file cannot be read.";

fn inputs(path: &Path) -> Option<serde_json::Value> {
    let text = std::fs::read_to_string(path).ok()?;
    let v: serde_json::Value = serde_json::from_str(&text).ok()?;
    v.get("scenario")?.get("resolved").cloned()
}

pub(super) fn diff(a: &Path, b: &Path) -> anyhow::Result<i32> {
    let (ra, rb) = match (report::read_results(a), report::read_results(b)) {
        (Ok(x), Ok(y)) => (x, y),
        (Err(e), _) | (_, Err(e)) => {
            eprintln!("error: {e}");
            return Ok(2);
        }
    };
    let c = report::diff::compare(&ra, &rb, inputs(a).as_ref(), inputs(b).as_ref());
    let name = |p: &Path, r: &crate::simulation::RunResult| format!("{} ({}, {})", p.display(), r.name, r.plan);
    print!("{}", report::diff::text(&c, &name(a, &ra), &name(b, &rb)));
    Ok(0)
}
