//! `report.md`: a self-contained Markdown report of one run, with summary tables and the
//! charts embedded as relative links to the PNGs written beside it.

use crate::simulation::breakdown::Category;
use crate::simulation::RunResult;
use crate::workload::Phase;
use std::fmt::Write;

/// Chart files the report links to, with their captions (written by
/// [`charts::draw_all`](super::charts::draw_all) into the same folder).
pub const CHART_LINKS: [(&str, &str); 3] = [
    ("breakdown.png", "time per step, per pipeline stage"),
    (
        "timeline.png",
        "timeline of one iteration (compute, TP, PP, DP streams)",
    ),
    ("memory.png", "memory per GPU"),
];

fn pct(x: f64) -> String {
    format!("{:.1}%", 100.0 * x)
}

/// Escapes text for a Markdown table cell.
fn cell(s: &str) -> String {
    s.replace('|', "\\|").replace('\n', " ")
}

/// Bytes in decimal GB, for network volumes.
fn gb(bytes: f64) -> String {
    format!("{:.2}", bytes / 1e9)
}

/// The Markdown report of `r`.
pub fn markdown(r: &RunResult) -> String {
    let mut s = String::new();
    let w = &mut s;
    let _ = writeln!(w, "# {}\n", cell(&r.name));
    let _ = writeln!(
        w,
        "{} on {} x {}, plan `{}`.\n",
        cell(&r.model),
        r.num_gpus,
        cell(&r.gpu),
        r.plan
    );

    let _ = writeln!(w, "## Headline\n");
    let _ = writeln!(w, "| metric | value | unit |");
    let _ = writeln!(w, "|---|---:|---|");
    let _ = writeln!(
        w,
        "| step time | {:.3} | s ({}) |",
        r.step_time_s,
        super::summary::step_spread(r)
    );
    let _ = writeln!(w, "| throughput | {:.0} | tokens/s |", r.tokens_per_s);
    let _ = writeln!(w, "| throughput per GPU | {:.1} | tokens/s |", r.tokens_per_s_per_gpu);
    let _ = writeln!(w, "| tokens per step | {:.0} | tokens |", r.tokens_per_step);
    let _ = writeln!(w, "| model TFLOP/s per GPU | {:.1} | TFLOP/s |", r.model_tflops_per_gpu);
    let _ = writeln!(w, "| MFU | {} | of dense peak |", pct(r.mfu_fraction));
    let _ = writeln!(w, "| HFU | {} | of dense peak |", pct(r.hfu_fraction));
    let _ = writeln!(w, "| pipeline bubble | {} | of the step |", pct(r.bubble_fraction));
    let m = &r.memory;
    let _ = writeln!(
        w,
        "| memory per GPU | {:.1} | GiB: {} |",
        m.total_gib,
        super::summary::memory_verdict(m)
    );
    let _ = writeln!(w);

    let _ = writeln!(w, "## Time per step\n");
    let _ = writeln!(
        w,
        "Mean over pipeline stages; each instant counts once, compute first, so communication\n\
         appears only where no compute hides it. The rows sum to the step time.\n"
    );
    let _ = writeln!(w, "| category | time per step (s) | share of step |");
    let _ = writeln!(w, "|---|---:|---:|");
    for (label, secs) in r.breakdown.categories() {
        if secs > 0.0 {
            let _ = writeln!(w, "| {label} | {secs:.3} | {} |", pct(secs / r.step_time_s));
        }
    }
    let _ = writeln!(w, "| **step** | **{:.3}** | **100.0%** |", r.step_time_s);
    let _ = writeln!(
        w,
        "\nCommunication including the hidden part, per step: {}.\n",
        super::comm_totals_text(&r.breakdown)
    );
    if r.breakdown_per_stage.len() > 1 {
        let _ = writeln!(w, "Per pipeline stage, s per step:\n");
        let _ = writeln!(
            w,
            "| stage | forward | backward | recompute | optimizer | exposed comm | bubble |"
        );
        let _ = writeln!(w, "|---:|---:|---:|---:|---:|---:|---:|");
        for (i, st) in r.breakdown_per_stage.iter().enumerate() {
            let comm = st.exposed_comm_s() + st.get(Category::Sync);
            let phase = |p: Phase| st.get(Category::Compute(p));
            let _ = writeln!(
                w,
                "| {i} | {:.3} | {:.3} | {:.3} | {:.3} | {:.3} | {:.3} |",
                phase(Phase::Forward),
                phase(Phase::Backward) + phase(Phase::BackwardWeight),
                phase(Phase::Recompute),
                phase(Phase::Optimizer),
                comm,
                st.pipeline_bubble_s()
            );
        }
        let _ = writeln!(w, "\n(exposed comm = every kind of communication + synchronisation)\n");
    }

    let _ = writeln!(w, "## Memory per GPU (stage {})\n", m.stage);
    let _ = writeln!(w, "| consumer | GiB | share of HBM |");
    let _ = writeln!(w, "|---|---:|---:|");
    for (label, gib) in [
        ("weights", m.weights_gib),
        ("gradients", m.gradients_gib),
        ("optimizer states", m.optimizer_gib),
        ("activations", m.activations_gib),
        ("buffers", m.buffers_gib),
    ] {
        let _ = writeln!(w, "| {label} | {gib:.2} | {} |", pct(gib / m.capacity_gib));
    }
    let _ = writeln!(
        w,
        "| **total** | **{:.2}** | **{}** |",
        m.total_gib,
        pct(m.total_gib / m.capacity_gib)
    );
    let _ = writeln!(w, "| capacity | {:.2} | 100.0% |", m.capacity_gib);
    if !m.fits {
        let _ = writeln!(
            w,
            "\n**This plan does not fit in memory**: the step time above is hypothetical."
        );
    }
    let _ = writeln!(w);

    let p = &r.placement;
    let _ = writeln!(w, "## Placement and traffic\n");
    let _ = writeln!(w, "| item | value |");
    let _ = writeln!(w, "|---|---|");
    let _ = writeln!(w, "| rank order (fastest first) | {} |", cell(&p.order));
    let _ = writeln!(w, "| TP group members per node | {} |", p.tp_members_per_node);
    let _ = writeln!(w, "| DP group members per node | {} |", p.dp_members_per_node);
    let _ = writeln!(w, "| nodes per DP group | {} |", p.dp_group_nodes);
    let _ = writeln!(
        w,
        "| adjacent pipeline stages | {} |",
        if p.pp_neighbours_share_node {
            "share a node (scale-up)"
        } else {
            "on different nodes (NIC)"
        }
    );
    let _ = writeln!(
        w,
        "| scale-up bytes sent per GPU per step | {} GB |",
        gb(r.scale_up_bytes_per_step_per_gpu)
    );
    let _ = writeln!(
        w,
        "| NIC bytes sent per GPU per step | {} GB |",
        gb(r.scale_out_bytes_per_step_per_gpu)
    );
    let _ = writeln!(w);

    if let Some(t) = &r.to_target {
        let _ = writeln!(w, "## Training to target ({})\n", cell(&t.target));
        let _ = writeln!(w, "| metric | value |");
        let _ = writeln!(w, "|---|---:|");
        let _ = writeln!(w, "| tokens to target | {:.3e} |", t.tokens_to_target);
        let _ = writeln!(w, "| steps to target | {:.0} |", t.steps_to_target);
        let _ = writeln!(w, "| wall-clock | {:.1} days |", t.wall_clock_to_target_days);
        if t.reliability.is_some() {
            let _ = writeln!(
                w,
                "| wall-clock p10 / p50 / p90 | {:.1} / {:.1} / {:.1} days |",
                t.wall_clock_to_target_p10_h / 24.0,
                t.wall_clock_to_target_p50_h / 24.0,
                t.wall_clock_to_target_p90_h / 24.0
            );
        }
        let _ = writeln!(w, "| goodput | {} |", pct(t.goodput_fraction));
        let _ = writeln!(w, "| GPU-hours | {:.3e} |", t.gpu_hours);
        let _ = writeln!(w, "| energy | {:.1} MWh |", t.energy.energy_to_target_kwh / 1000.0);
        let _ = writeln!(w);
    }

    let _ = writeln!(w, "## Charts\n");
    for (file, caption) in CHART_LINKS {
        let _ = writeln!(w, "**{caption}**\n\n![{caption}]({file})\n");
    }
    if r.to_target.is_some() {
        let _ = writeln!(w, "**loss vs wall-clock**\n\n![loss vs wall-clock](loss.png)\n");
    }
    if super::charts::moe::data(r).is_some() {
        let _ = writeln!(
            w,
            "**expert load per MoE layer (load / mean load)**\n\n\
             ![expert load per MoE layer](expert_load.png)\n"
        );
    }
    let _ = writeln!(
        w,
        "Each chart also exists as SVG beside this file. With `trainsim run --trace`, `trace.json`\n\
         holds every operation and opens in <https://ui.perfetto.dev> or chrome://tracing.\n"
    );

    let sim = &r.simulation;
    let _ = writeln!(w, "## Simulation\n");
    let _ = writeln!(
        w,
        "{} iterations simulated ({} warm-up, left out of the statistics) of {} representative\n\
         ranks standing for {} GPUs: {} operations, {} events. Seed {}. Field definitions:\n\
         docs/results.md in the trainsim repository.",
        sim.iterations_simulated,
        sim.warmup_iterations,
        sim.representative_ranks,
        sim.gpus_represented,
        sim.operations,
        sim.events,
        r.seed
    );
    s
}
