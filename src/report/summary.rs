//! The human-readable summary printed by `trainsim run`.

use crate::simulation::RunResult;
use std::fmt::Write;

fn pct(x: f64) -> String {
    format!("{:.1}%", 100.0 * x)
}

/// Formats the summary of one run.
pub fn summary(r: &RunResult) -> String {
    let mut s = String::new();
    let w = &mut s;
    let _ = writeln!(w, "{} — {} on {} x {}", r.name, r.model, r.num_gpus, r.gpu);
    let _ = writeln!(w, "plan: {}", r.plan);
    let _ = writeln!(w);
    let _ = writeln!(
        w,
        "  step time            {:>10.3} s   (std {:.3} s over {} measured iterations)",
        r.step_time_s,
        r.step_time_std_s,
        r.step_times_s.len()
    );
    let _ = writeln!(
        w,
        "  throughput           {:>10.0} tokens/s   ({:.1} tokens/s per GPU)",
        r.tokens_per_s, r.tokens_per_s_per_gpu
    );
    let _ = writeln!(w, "  model TFLOP/s/GPU    {:>10.1}", r.model_tflops_per_gpu);
    let _ = writeln!(
        w,
        "  MFU / HFU            {:>10} / {}",
        pct(r.mfu_fraction),
        pct(r.hfu_fraction)
    );
    let _ = writeln!(w, "  pipeline bubble      {:>10}", pct(r.bubble_fraction));
    let _ = writeln!(w);
    let _ = writeln!(w, "time per step (mean over pipeline stages):");
    for (label, secs) in r.breakdown.categories() {
        if secs > 0.0 {
            let _ = writeln!(w, "  {:<22} {:>10.3} s  {:>6}", label, secs, pct(secs / r.step_time_s));
        }
    }
    let b = &r.breakdown;
    let _ = writeln!(
        w,
        "  (communication incl. hidden: TP {:.3} s, DP {:.3} s, PP {:.3} s)",
        b.total_tp_comm_s, b.total_dp_comm_s, b.total_pp_comm_s
    );
    let _ = writeln!(w);
    let m = &r.memory;
    let verdict = if m.fits { "fits" } else { "DOES NOT FIT (out of memory)" };
    let _ = writeln!(
        w,
        "memory per GPU (stage {}): {:.1} GiB of {:.1} GiB — {}",
        m.stage, m.total_gib, m.capacity_gib, verdict
    );
    for (label, gib) in m.largest_consumers() {
        let _ = writeln!(w, "  {:<22} {:>8.2} GiB", label, gib);
    }
    if !m.fits {
        let _ = writeln!(w, "  the step time above is hypothetical: this plan cannot run; try more recomputation, a higher ZeRO stage, more TP/PP or a smaller micro-batch");
    }
    let _ = writeln!(w);
    let p = &r.placement;
    let _ = writeln!(
        w,
        "placement ({}): TP group {} per node; DP group {} per node over {} nodes; adjacent PP stages {}",
        p.order,
        p.tp_members_per_node,
        p.dp_members_per_node,
        p.dp_group_nodes,
        if p.pp_neighbours_share_node {
            "share a node"
        } else {
            "on different nodes"
        }
    );
    let sim = &r.simulation;
    let _ = writeln!(
        w,
        "simulated {} iterations ({} warm-up) of {} representative ranks standing for {} GPUs: {} operations, {} events",
        sim.iterations_simulated, sim.warmup_iterations, sim.representative_ranks, sim.gpus_represented, sim.operations, sim.events
    );
    s
}
