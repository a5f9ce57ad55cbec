//! The human-readable summary printed by `trainsim run`.

use crate::simulation::RunResult;
use crate::workload::CommKind;
use std::fmt::Write;

fn pct(x: f64) -> String {
    format!("{:.1}%", 100.0 * x)
}

/// Below this fraction of HBM left free, a plan that fits is flagged: the caching
/// allocator's fragmentation, NCCL buffers and the CUDA context typically take 5-10% on
/// top of what trainsim counts.
pub const HEADROOM_WARNING_FRACTION: f64 = 0.05;

/// "31.2 GiB of 80.0 GiB — fits", with a warning when the headroom is thin, or the
/// out-of-memory verdict.
pub fn memory_verdict(m: &crate::workload::memory::MemoryBreakdown) -> String {
    let head = format!("{:.1} GiB of {:.1} GiB", m.total_gib, m.capacity_gib);
    let free = m.capacity_gib - m.total_gib;
    if !m.fits {
        format!(
            "{head} — DOES NOT FIT (out of memory by {:.1} GiB): the step time is hypothetical",
            -free
        )
    } else if free < HEADROOM_WARNING_FRACTION * m.capacity_gib {
        format!(
            "{head} — fits, but only {free:.1} GiB ({:.1}%) free: at risk (allocator fragmentation, NCCL buffers and the CUDA context usually need 5-10%)",
            100.0 * free / m.capacity_gib.max(1e-9)
        )
    } else {
        format!("{head} — fits ({free:.1} GiB free)")
    }
}

/// "std 0.012 s over 2 measured iterations", or, with one measured iteration, that there
/// is no spread to report.
pub fn step_spread(r: &RunResult) -> String {
    match r.step_times_s.len() {
        0 | 1 => "1 measured iteration: no spread to report; raise simulation.iterations for one".into(),
        n => format!("std {:.3} s over {n} measured iterations", r.step_time_std_s),
    }
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
        "  step time            {:>10.3} s   ({})",
        r.step_time_s,
        step_spread(r)
    );
    // the GiB figure aligned with the numbers of the other headline rows
    let verdict = memory_verdict(&r.memory);
    let (gib, rest) = verdict.split_once(' ').unwrap_or((verdict.as_str(), ""));
    let _ = writeln!(w, "  memory per GPU       {gib:>10} {rest}");
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
    if !r.compute_slowdown_per_stage.is_empty() {
        let worst = r.compute_slowdown_per_stage.iter().copied().fold(1.0, f64::max);
        let _ = writeln!(
            w,
            "  stragglers           slowest stage computes {:.1}% slower (mean factor over measured steps)",
            100.0 * (worst - 1.0)
        );
        let _ = writeln!(w);
    }
    let _ = writeln!(w, "time per step (mean over pipeline stages):");
    for (label, secs) in r.breakdown.categories() {
        if secs > 0.0 {
            let _ = writeln!(w, "  {:<22} {:>10.3} s  {:>6}", label, secs, pct(secs / r.step_time_s));
        }
    }
    let _ = writeln!(
        w,
        "  (communication incl. hidden: {})",
        super::comm_totals_text(&r.breakdown)
    );
    let _ = writeln!(w);
    let m = &r.memory;
    let _ = writeln!(w, "memory per GPU (stage {}): {}", m.stage, memory_verdict(m));
    for (label, gib) in m.largest_consumers() {
        let _ = writeln!(w, "  {:<22} {:>8.2} GiB", label, gib);
    }
    if m.host_capacity_gib > 0.0 || m.nvme_gib > 0.0 {
        let _ = writeln!(
            w,
            "  offloaded: {:.2} GiB in CPU memory (of {:.1} GiB per GPU), {:.2} GiB on NVMe",
            m.host_gib, m.host_capacity_gib, m.nvme_gib
        );
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
    if let Some(n) = &r.network {
        let gb = |x: f64| x / 1e9;
        let by_kind: Vec<String> = CommKind::ALL
            .iter()
            .filter(|&&k| k != CommKind::Cp || n.bytes_by_kind.get(k) > 0.0)
            .map(|&k| format!("{} {:.2}", k.short_label(), gb(n.bytes_by_kind.get(k))))
            .collect();
        let _ = writeln!(
            w,
            "network per GPU per step: NVLink {:.2} GB ({:.0}% busy), NIC {:.2} GB ({:.0}% busy), spine {:.2} GB; by kind: {} GB",
            gb(n.scale_up_bytes_per_step_per_gpu),
            100.0 * n.scale_up_utilisation_fraction,
            gb(n.scale_out_bytes_per_step_per_gpu),
            100.0 * n.scale_out_utilisation_fraction,
            gb(n.spine_bytes_per_step_per_gpu),
            by_kind.join(", "),
        );
    }
    if let Some(c) = &r.comm {
        let wire: Vec<String> = c
            .wire_dtype
            .iter()
            .filter(|(_, d)| d.as_str() != "bf16")
            .map(|(k, d)| format!("{k} {d}"))
            .collect();
        let phases: Vec<String> = c
            .phases
            .iter()
            .map(|p| {
                format!(
                    "{} {:.0}% of steps at {:.3} s ({:.3} GB DP grad)",
                    format!("{:?}", p.phase).to_lowercase(),
                    100.0 * p.steps_fraction,
                    p.step_time_s,
                    p.dp_grad_bytes_per_step_per_gpu / 1e9
                )
            })
            .collect();
        let _ = writeln!(
            w,
            "communication: compression {}{}; {}; mean step over the run {:.3} s; convergence penalty +{:.1}% steps to a target loss",
            c.method,
            if wire.is_empty() { String::new() } else { format!(", wire {}", wire.join(", ")) },
            phases.join(", "),
            c.mean_step_time_s,
            100.0 * c.extra_steps_fraction
        );
    }
    if let Some(m) = &r.moe {
        let _ = writeln!(
            w,
            "MoE ({} experts, top-{}, EP{}, routing {}): expert load max/mean {:.2} (Gini {:.3}), rank load max/mean {:.2}, dropped {:.1}%, imbalance wait {:.3} s, exposed all-to-all {:.3} s",
            m.num_experts,
            m.top_k,
            m.ep,
            m.routing,
            m.expert_load_max_over_mean,
            m.expert_load_gini,
            m.rank_load_max_over_mean,
            100.0 * m.dropped_fraction,
            m.imbalance_wait_s,
            m.exposed_all_to_all_s,
        );
    }
    let sim = &r.simulation;
    let ranks = if sim.replicas_simulated > 1 {
        format!(
            "{} ranks ({} stages x {} data-parallel replicas)",
            sim.representative_ranks * sim.replicas_simulated,
            sim.representative_ranks,
            sim.replicas_simulated
        )
    } else {
        format!("{} representative ranks", sim.representative_ranks)
    };
    let _ = writeln!(
        w,
        "simulated {} iterations ({} warm-up) of {ranks} standing for {} GPUs: {} operations, {} events",
        sim.iterations_simulated, sim.warmup_iterations, sim.gpus_represented, sim.operations, sim.events
    );
    if let Some(t) = &r.to_target {
        to_target(w, t);
    }
    s
}

/// The "training to target" block.
fn to_target(w: &mut String, t: &crate::training::TrainingOutcome) {
    let _ = writeln!(w);
    let _ = writeln!(w, "training to target ({}, loss law {}):", t.target, t.loss_law);
    let _ = writeln!(
        w,
        "  tokens / steps       {:>10.3e} / {:.0}   (loss {:.3} nats; critical batch {:.2e} tokens vs {:.2e} per step)",
        t.tokens_to_target, t.steps_to_target, t.loss_at_target_nats, t.critical_batch_tokens, t.tokens_per_step
    );
    let _ = writeln!(
        w,
        "  wall-clock           {:>10.1} days   ({:.1} days of training, goodput {})",
        t.wall_clock_to_target_days,
        t.compute_time_to_target_h / 24.0,
        pct(t.goodput_fraction)
    );
    if t.reliability.is_some() {
        let _ = writeln!(
            w,
            "  wall-clock p10/50/90 {:>10.1} / {:.1} / {:.1} days   (seeded random runs of the failure process)",
            t.wall_clock_to_target_p10_h / 24.0,
            t.wall_clock_to_target_p50_h / 24.0,
            t.wall_clock_to_target_p90_h / 24.0
        );
    }
    let _ = writeln!(w, "  GPU-hours            {:>10.3e}", t.gpu_hours);
    if let Some(r) = &t.reliability {
        let configured = match r.configured_checkpoint_interval_s {
            Some(c) => format!("configured {:.0} s", c),
            None => "used".to_string(),
        };
        let _ = writeln!(
            w,
            "  interruptions        {:>10.2} per day   ({:.0} expected; {:.0} s lost each)",
            r.interruptions_per_day, t.expected_interruptions, r.lost_work_per_interruption_s
        );
        let _ = writeln!(
            w,
            "  checkpoint           {:>10.0} GB, {:.1} s stall; optimal interval {:.0} s ({} steps), {}",
            r.checkpoint_size_gbyte,
            r.checkpoint_stall_s,
            r.optimal_checkpoint_interval_s,
            r.optimal_checkpoint_interval_steps,
            configured
        );
    }
    let e = &t.energy;
    let _ = writeln!(
        w,
        "  energy               {:>10.1} MWh   ({:.0} W per GPU, {:.2} MW facility; {:.0} t CO2e; ${:.3e})",
        e.energy_to_target_kwh / 1000.0,
        e.gpu_power_w,
        e.facility_power_w / 1e6,
        e.co2e_kg / 1000.0,
        e.cost_usd
    );
}
