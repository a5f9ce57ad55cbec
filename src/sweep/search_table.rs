//! The plan search's output as a table: the ranked candidates as CSV (units in the
//! column names) and why each simulated plan ranks above the next.

use super::search::{SearchOutcome, Status};
use crate::parallel::Recompute;
use crate::simulation::breakdown::Category;
use crate::simulation::RunResult;
use crate::workload::CommKind;
use std::fmt::Write as _;

/// Columns of the search table (units in the names).
pub const TABLE_COLUMNS: &[&str] = &[
    "rank",
    "tp",
    "pp",
    "dp",
    "cp",
    "ep",
    "etp",
    "schedule",
    "virtual_stages",
    "micro_batch_size",
    "recompute",
    "zero_stage",
    "split_embedding_and_loss",
    "status",
    "objective",
    "objective_value",
    "lower_bound_step_time_s",
    "contention_free_step_time_s",
    "step_time_s",
    "tokens_per_s",
    "mfu_pct",
    "compute_s",
    "exposed_tp_comm_s",
    "exposed_cp_comm_s",
    "exposed_dp_grad_comm_s",
    "exposed_dp_param_comm_s",
    "exposed_pp_comm_s",
    "pipeline_bubble_s",
    "exposed_ep_comm_s",
    "moe_imbalance_s",
    "memory_gib",
    "memory_headroom_gib",
    "time_to_target_days",
    "cost_usd",
    "energy_to_target_kwh",
    "reason",
];

fn opt(x: Option<f64>, digits: usize) -> String {
    x.filter(|v| v.is_finite())
        .map(|v| format!("{v:.digits$}"))
        .unwrap_or_default()
}

/// Every candidate as CSV, in rank order (see [`TABLE_COLUMNS`]).
pub fn table_csv(o: &SearchOutcome) -> String {
    let mut s = TABLE_COLUMNS.join(",");
    s.push('\n');
    for (i, c) in o.candidates.iter().enumerate() {
        let p = &c.plan;
        let r = match &c.status {
            Status::Simulated(r) => Some(r.as_ref()),
            _ => None,
        };
        let b = r.map(|r| &r.breakdown);
        // MoE breakdown columns: empty for dense models
        let moe = r.filter(|r| r.moe.is_some()).map(|r| &r.breakdown);
        let to = r.and_then(|r| r.to_target.as_ref());
        let bound = match c.status {
            Status::Invalid(_) | Status::OutOfMemory(_) => None,
            _ => Some(c.bound_s),
        };
        let reason = match &c.status {
            Status::Invalid(e) => format!("\"{}\"", e.replace('"', "'")),
            Status::OutOfMemory(g) => format!(
                "\"out of memory: {g:.1} GiB of {:.1} GiB\"",
                c.memory_gib.map(|m| m.1).unwrap_or(0.0)
            ),
            _ => String::new(),
        };
        let cells = [
            (i + 1).to_string(),
            p.tp.to_string(),
            p.pp.to_string(),
            p.dp.to_string(),
            p.cp.to_string(),
            p.ep.to_string(),
            p.expert_tp.to_string(),
            p.schedule.name().to_string(),
            p.virtual_stages.to_string(),
            p.micro_batch_size.to_string(),
            Recompute::NAMES[p.recompute as usize].to_string(),
            p.zero_stage.to_string(),
            p.pipeline_split_embedding_and_loss.to_string(),
            c.status.name().to_string(),
            o.objective.name().to_string(),
            opt(r.map(|r| o.objective.value(r)), 6),
            opt(bound, 6),
            opt(c.contention_free_s, 6),
            opt(r.map(|r| r.step_time_s), 6),
            opt(r.map(|r| r.tokens_per_s), 1),
            opt(r.map(|r| 100.0 * r.mfu_fraction), 3),
            opt(b.map(|b| b.compute_s()), 6),
            opt(b.map(|b| b.exposed(CommKind::Tp)), 6),
            opt(b.map(|b| b.exposed(CommKind::Cp)), 6),
            opt(b.map(|b| b.exposed(CommKind::DpGrad)), 6),
            opt(b.map(|b| b.exposed(CommKind::DpParam)), 6),
            opt(b.map(|b| b.exposed(CommKind::Pp)), 6),
            opt(b.map(|b| b.pipeline_bubble_s()), 6),
            opt(moe.map(|b| b.exposed(CommKind::Ep)), 6),
            opt(moe.map(|b| b.get(Category::MoeImbalance)), 6),
            opt(c.memory_gib.map(|m| m.0), 3),
            opt(c.memory_gib.map(|m| m.1 - m.0), 3),
            opt(to.map(|t| t.wall_clock_to_target_days), 4),
            opt(to.map(|t| t.energy.cost_usd), 0),
            opt(to.map(|t| t.energy.energy_to_target_kwh), 1),
            reason,
        ];
        s.push_str(&cells.join(","));
        s.push('\n');
    }
    s
}

/// Why `r` ranks above `next` (the plan ranked just below it): the breakdown categories
/// that differ most, e.g. "vs #2: bubble -0.21 s, exposed TP +0.05 s".
pub fn why(r: &RunResult, next: Option<(usize, &RunResult)>) -> String {
    let Some((rank, n)) = next else {
        return "no simulated plan below it".into();
    };
    let (a, b) = (&r.breakdown, &n.breakdown);
    let mut diffs = [
        ("compute", a.compute_s() - b.compute_s()),
        ("exposed TP", a.exposed(CommKind::Tp) - b.exposed(CommKind::Tp)),
        ("exposed CP", a.exposed(CommKind::Cp) - b.exposed(CommKind::Cp)),
        (
            "exposed DP",
            a.exposed(CommKind::DpGrad) + a.exposed(CommKind::DpParam)
                - b.exposed(CommKind::DpGrad)
                - b.exposed(CommKind::DpParam),
        ),
        ("exposed PP", a.exposed(CommKind::Pp) - b.exposed(CommKind::Pp)),
        ("bubble", a.pipeline_bubble_s() - b.pipeline_bubble_s()),
        (
            "exposed EP all-to-all",
            a.exposed(CommKind::Ep) - b.exposed(CommKind::Ep),
        ),
        (
            "MoE imbalance wait",
            a.get(Category::MoeImbalance) - b.get(Category::MoeImbalance),
        ),
    ];
    diffs.sort_by(|x, y| y.1.abs().total_cmp(&x.1.abs()));
    let mut s = format!("vs #{rank}: step {:+.3} s (", r.step_time_s - n.step_time_s);
    let parts: Vec<String> = diffs
        .iter()
        .filter(|d| d.1.abs() >= 0.0005)
        .take(3)
        .map(|d| format!("{} {:+.3} s", d.0, d.1))
        .collect();
    if parts.is_empty() {
        s.push_str("same breakdown");
    } else {
        s.push_str(&parts.join(", "));
    }
    let _ = write!(
        s,
        "); memory {:.1} GiB, headroom {:.1} GiB",
        r.memory.total_gib,
        r.memory.capacity_gib - r.memory.total_gib
    );
    s
}

/// Why no plan of a search could run: how many candidates there were and the most common
/// reasons (reasons that differ only in their numbers count as one, shown by an example).
pub fn none_fit(o: &SearchOutcome) -> String {
    let mut groups: Vec<(String, usize, String)> = Vec::new();
    let mut least_oom: Option<(f64, f64)> = None;
    for c in &o.candidates {
        let reason = match &c.status {
            Status::Invalid(r) => r.clone(),
            Status::OutOfMemory(_) => {
                if let Some((need, cap)) = c.memory_gib {
                    if least_oom.is_none_or(|(n, _)| need < n) {
                        least_oom = Some((need, cap));
                    }
                }
                "out of memory".to_string()
            }
            _ => continue,
        };
        let key: String = reason.chars().filter(|ch| !ch.is_ascii_digit() && *ch != '.').collect();
        match groups.iter_mut().find(|g| g.0 == key) {
            Some(g) => g.1 += 1,
            None => groups.push((key, 1, reason)),
        }
    }
    groups.sort_by_key(|g| std::cmp::Reverse(g.1));
    let mut s = format!(
        "none of the {} candidate plans is valid and fits in memory; most common reasons:",
        o.enumerated
    );
    for (_, n, example) in groups.iter().take(3) {
        let example = match (example.as_str(), least_oom) {
            ("out of memory", Some((need, cap))) => {
                format!("out of memory (the smallest needs {need:.1} GiB of {cap:.1} GiB)")
            }
            _ => example.clone(),
        };
        let _ = write!(s, "\n  {n} plans: {example}");
    }
    s.push_str("\n(try more GPUs, a smaller model or batch, --zero 1,2,3, or a GPU with more memory)");
    s
}
