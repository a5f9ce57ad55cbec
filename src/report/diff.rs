//! Two runs compared: what changed in their inputs and by how much each figure moved
//! (`trainsim diff`, and the explorer's side-by-side view).

use crate::simulation::RunResult;
use serde::Serialize;
use serde_json::Value;
use std::fmt::Write as _;

/// One compared figure.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct Row {
    /// What it is, e.g. "step time" or "exposed TP comm".
    pub label: String,
    /// Unit of `a` and `b` ("s", "tokens/s", "%", "GiB").
    pub unit: String,
    /// Value of the first run.
    pub a: f64,
    /// Value of the second run.
    pub b: f64,
}

impl Row {
    /// `b - a`.
    pub fn delta(&self) -> f64 {
        self.b - self.a
    }

    /// Relative change, percent (`None` when `a` is zero).
    pub fn change_pct(&self) -> Option<f64> {
        (self.a.abs() > 1e-12).then(|| 100.0 * (self.b / self.a - 1.0))
    }
}

/// Both runs' figures side by side.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct Comparison {
    /// Headline figures: step time, throughput, MFU, HFU, bubble, memory.
    pub headline: Vec<Row>,
    /// Time per step by breakdown category (stage mean), s.
    pub breakdown: Vec<Row>,
    /// `a`'s step time over `b`'s: above 1 when `b` is faster.
    pub speedup: f64,
    /// One line: "b is 1.23x faster than a" (or slower, or the same).
    pub verdict: String,
    /// Inputs that differ: (what, a, b).
    pub changed: Vec<(String, String, String)>,
}

/// "1.23x faster" / "1.23x slower" / "as fast" for a speed-up `s` (a's time over b's).
pub fn speed_words(s: f64) -> String {
    if !s.is_finite() || s <= 0.0 {
        "not comparable".into()
    } else if (s - 1.0).abs() < 0.0005 {
        "as fast as".into()
    } else if s > 1.0 {
        format!("{s:.2}x faster than")
    } else {
        format!("{:.2}x slower than", 1.0 / s)
    }
}

/// Compares `b` with `a` (the baseline). `inputs_a`/`inputs_b`: the `scenario.resolved`
/// objects of their results.json, when present, to list the inputs that changed.
pub fn compare(a: &RunResult, b: &RunResult, inputs_a: Option<&Value>, inputs_b: Option<&Value>) -> Comparison {
    let row = |label: &str, unit: &str, a: f64, b: f64| Row {
        label: label.into(),
        unit: unit.into(),
        a,
        b,
    };
    let headline = vec![
        row("step time", "s", a.step_time_s, b.step_time_s),
        row("throughput", "tokens/s", a.tokens_per_s, b.tokens_per_s),
        row(
            "throughput per GPU",
            "tokens/s",
            a.tokens_per_s_per_gpu,
            b.tokens_per_s_per_gpu,
        ),
        row("MFU", "%", 100.0 * a.mfu_fraction, 100.0 * b.mfu_fraction),
        row("HFU", "%", 100.0 * a.hfu_fraction, 100.0 * b.hfu_fraction),
        row(
            "pipeline bubble",
            "%",
            100.0 * a.bubble_fraction,
            100.0 * b.bubble_fraction,
        ),
        row("memory per GPU", "GiB", a.memory.total_gib, b.memory.total_gib),
    ];
    let cats_a = a.breakdown.categories();
    let cats_b = b.breakdown.categories();
    let mut breakdown = Vec::new();
    for (label, va) in &cats_a {
        let vb = cats_b.iter().find(|(l, _)| l == label).map(|(_, v)| *v).unwrap_or(0.0);
        if *va > 0.0 || vb > 0.0 {
            breakdown.push(row(label, "s", *va, vb));
        }
    }
    for (label, vb) in &cats_b {
        if *vb > 0.0 && !cats_a.iter().any(|(l, _)| l == label) {
            breakdown.push(row(label, "s", 0.0, *vb));
        }
    }
    let speedup = a.step_time_s / b.step_time_s;
    let mut changed = Vec::new();
    for (what, x, y) in [
        ("model", a.model.clone(), b.model.clone()),
        (
            "GPUs",
            format!("{} x {}", a.num_gpus, a.gpu),
            format!("{} x {}", b.num_gpus, b.gpu),
        ),
        ("plan", a.plan.clone(), b.plan.clone()),
        ("seed", a.seed.to_string(), b.seed.to_string()),
    ] {
        if x != y {
            changed.push((what.to_string(), x, y));
        }
    }
    if let (Some(x), Some(y)) = (inputs_a, inputs_b) {
        let mut la = Vec::new();
        let mut lb = Vec::new();
        leaves(x, "", &mut la);
        leaves(y, "", &mut lb);
        for (p, va) in &la {
            let vb = lb.iter().find(|(q, _)| q == p).map(|(_, v)| v.clone());
            if vb.as_ref() != Some(va) && p != "name" {
                changed.push((p.clone(), va.clone(), vb.unwrap_or_else(|| "(absent)".into())));
            }
        }
        for (p, vb) in &lb {
            if !la.iter().any(|(q, _)| q == p) {
                changed.push((p.clone(), "(absent)".into(), vb.clone()));
            }
        }
    }
    let verdict = format!(
        "b is {} a (step time {:.3} s -> {:.3} s)",
        speed_words(speedup),
        a.step_time_s,
        b.step_time_s
    );
    Comparison {
        headline,
        breakdown,
        speedup,
        verdict,
        changed,
    }
}

/// Every scalar of a JSON value as (dotted path, text); arrays longer than 8 as one leaf.
fn leaves(v: &Value, prefix: &str, out: &mut Vec<(String, String)>) {
    let join = |k: &str| {
        if prefix.is_empty() {
            k.to_string()
        } else {
            format!("{prefix}.{k}")
        }
    };
    match v {
        Value::Object(m) => {
            for (k, x) in m {
                leaves(x, &join(k), out);
            }
        }
        Value::Array(a) if a.len() <= 8 => {
            for (i, x) in a.iter().enumerate() {
                leaves(x, &join(&i.to_string()), out);
            }
        }
        Value::Null => {}
        other => out.push((prefix.to_string(), other.to_string())),
    }
}

fn num(x: f64, unit: &str) -> String {
    match unit {
        "s" => format!("{x:.3} s"),
        "%" => format!("{x:.1}%"),
        "GiB" => format!("{x:.1} GiB"),
        _ => format!("{x:.0}"),
    }
}

fn change(r: &Row) -> String {
    let d = r.delta();
    let abs = match r.unit.as_str() {
        "s" => format!("{d:+.3} s"),
        "%" => format!("{d:+.1} pp"),
        "GiB" => format!("{d:+.1} GiB"),
        _ => format!("{d:+.0}"),
    };
    match (r.unit.as_str(), r.change_pct()) {
        ("%", _) | (_, None) => abs,
        (_, Some(p)) => format!("{abs} ({p:+.1}%)"),
    }
}

/// The comparison as text, `a_name` and `b_name` naming the runs.
pub fn text(c: &Comparison, a_name: &str, b_name: &str) -> String {
    let mut s = String::new();
    let _ = writeln!(s, "a: {a_name}\nb: {b_name}\n");
    if c.changed.is_empty() {
        let _ = writeln!(s, "same inputs");
    } else {
        let _ = writeln!(s, "what changed (a -> b):");
        for (what, x, y) in c.changed.iter().take(24) {
            let _ = writeln!(s, "  {what:<34} {x} -> {y}");
        }
        if c.changed.len() > 24 {
            let _ = writeln!(s, "  ... and {} more", c.changed.len() - 24);
        }
    }
    let _ = writeln!(s, "\n{}\n", c.verdict);
    let _ = writeln!(s, "  {:<26} {:>14} {:>14}  change", "", "a", "b");
    for r in &c.headline {
        let _ = writeln!(
            s,
            "  {:<26} {:>14} {:>14}  {}",
            r.label,
            num(r.a, &r.unit),
            num(r.b, &r.unit),
            change(r)
        );
    }
    let _ = writeln!(s, "time per step by category (mean over pipeline stages):");
    for r in &c.breakdown {
        let _ = writeln!(
            s,
            "  {:<26} {:>14} {:>14}  {}",
            r.label,
            num(r.a, &r.unit),
            num(r.b, &r.unit),
            change(r)
        );
    }
    s
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn speed_words_read_like_hyperfine() {
        assert_eq!(speed_words(1.234), "1.23x faster than");
        assert_eq!(speed_words(0.5), "2.00x slower than");
        assert_eq!(speed_words(1.0), "as fast as");
    }

    #[test]
    fn a_run_against_itself_changes_nothing() {
        let r = super::super::charts::test_support::tiny_run();
        let c = compare(r, r, None, None);
        assert!(c.changed.is_empty() && (c.speedup - 1.0).abs() < 1e-12);
        assert!(c.headline.iter().all(|x| x.delta() == 0.0));
        let t = text(&c, "x", "y");
        assert!(t.contains("same inputs") && t.contains("as fast as"), "{t}");
    }
}
