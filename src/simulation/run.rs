//! One simulated training run, from typed inputs to a [`RunResult`].

use super::breakdown::{self, Breakdown, Category};
use super::trace::{Trace, TraceRequest};
use super::{simulate, SimError};
use crate::network::PortCapacities;
use crate::parallel::{Dim, ParallelPlan, PlacementSummary, Recompute};
use crate::units::{tflops_to_flops_per_s, SimTime};
use crate::workload::memory::{memory_per_gpu, memory_per_stage, with_wire_and_offload, MemoryBreakdown};
use crate::workload::wire::GradPhase;
use crate::workload::{self, CommKind, OpKind};
use serde::de::Deserializer;
use serde::ser::{SerializeMap, Serializer};
use serde::{Deserialize, Serialize};

pub use super::input::RunInput;

fn one() -> u32 {
    1
}

fn is_zero(x: &u32) -> bool {
    *x == 0
}

/// Where the bytes went: per link class and per communication kind, per GPU and step.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct NetworkUsage {
    /// Bytes a GPU sends over its scale-up (NVLink) port per step.
    pub scale_up_bytes_per_step_per_gpu: f64,
    /// Bytes a GPU sends over its NIC per step.
    pub scale_out_bytes_per_step_per_gpu: f64,
    /// Of those, bytes that cross the spine (leaf to leaf) per step.
    pub spine_bytes_per_step_per_gpu: f64,
    /// Mean utilisation of a GPU's scale-up port over the step (sent bytes / (sustained
    /// rate x step time)), fraction.
    pub scale_up_utilisation_fraction: f64,
    /// The same for its NIC, fraction.
    pub scale_out_utilisation_fraction: f64,
    /// The same for its share of the spine, fraction (0 on a non-blocking fabric).
    pub spine_utilisation_fraction: f64,
    /// Bytes per GPU per step of each communication kind, all link classes
    /// (`{kind}_bytes_per_step_per_gpu` in JSON: tp, cp, dp_grad, dp_param, pp, ep).
    #[serde(flatten)]
    pub bytes_by_kind: BytesByKind,
    /// Collective algorithm per kind, as run.
    pub algorithms: crate::network::algorithm::AlgorithmChoice,
}

/// Bytes per GPU per step of each [`CommKind`] ([`CommKind::index`]).
#[derive(Clone, Debug, Default, PartialEq)]
pub struct BytesByKind(pub [f64; CommKind::COUNT]);

impl BytesByKind {
    /// Bytes of kind `k`.
    pub fn get(&self, k: CommKind) -> f64 {
        self.0[k.index()]
    }

    fn key(k: CommKind) -> String {
        format!("{}_bytes_per_step_per_gpu", k.name())
    }
}

impl Serialize for BytesByKind {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        let mut m = s.serialize_map(Some(CommKind::COUNT))?;
        for k in CommKind::ALL {
            m.serialize_entry(&Self::key(k), &self.get(k))?;
        }
        m.end()
    }
}

impl<'de> Deserialize<'de> for BytesByKind {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<BytesByKind, D::Error> {
        let map = std::collections::HashMap::<String, serde_json::Value>::deserialize(d)?;
        let mut b = BytesByKind::default();
        for k in CommKind::ALL {
            b.0[k.index()] = map.get(&Self::key(k)).and_then(|v| v.as_f64()).unwrap_or(0.0);
        }
        Ok(b)
    }
}

/// What routing did in a MoE run. Loads are relative: 1 = the mean expert's load.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct MoeResult {
    /// Routing distribution name.
    pub routing: String,
    /// Routed experts per MoE layer.
    pub num_experts: u32,
    /// Experts per token.
    pub top_k: u32,
    /// Expert-parallel degree.
    pub ep: u32,
    /// Expert-data-parallel degree (replicas of each expert).
    pub expert_dp: u32,
    /// Capacity factor (absent: dropless).
    pub capacity_factor: Option<f64>,
    /// Token-expert assignments per step, per expert-parallel group.
    pub assignments_per_step_per_ep_group: f64,
    /// Fraction of assignments dropped by the capacity factor.
    pub dropped_fraction: f64,
    /// Mean over layers and micro-batches of max/mean expert load.
    pub expert_load_max_over_mean: f64,
    /// Mean Gini coefficient of expert loads.
    pub expert_load_gini: f64,
    /// Mean over layers and micro-batches of max/mean load of the expert-parallel ranks.
    pub rank_load_max_over_mean: f64,
    /// Mean Gini coefficient of rank loads.
    pub rank_load_gini: f64,
    /// Time per step the representative waited for slower expert-parallel ranks, s (stage mean).
    pub imbalance_wait_s: f64,
    /// Exposed all-to-all time per step, s (stage mean).
    pub exposed_all_to_all_s: f64,
    /// Relative load per MoE layer (rows) and expert (columns), over all simulated steps.
    pub expert_load_per_layer: Vec<Vec<f64>>,
    /// Relative load per simulated step (rows) and expert (columns), over all MoE layers.
    pub expert_load_per_step: Vec<Vec<f64>>,
}

fn relative(rows: &[Vec<f64>]) -> Vec<Vec<f64>> {
    rows.iter()
        .map(|r| {
            let mean = r.iter().sum::<f64>() / r.len().max(1) as f64;
            r.iter()
                .map(|x| {
                    if mean > 0.0 {
                        (x / mean * 1e4).round() / 1e4
                    } else {
                        0.0
                    }
                })
                .collect()
        })
        .collect()
}

pub use super::timeline::TimelineSpan;

/// Facts about the simulation itself.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct SimulationStats {
    /// Discrete events processed.
    pub events: u64,
    /// Operations simulated (over every replica simulated).
    pub operations: u64,
    /// Representative ranks simulated.
    pub representative_ranks: u32,
    /// GPUs they stand for.
    pub gpus_represented: u32,
    /// Data-parallel replicas simulated, each with its own ranks (1: one representative
    /// per stage stands for them all; see `simulation.ranks`).
    #[serde(default = "one")]
    pub replicas_simulated: u32,
    /// The replica the timeline shows (every-replica mode): the one whose stages computed
    /// the longest in the last iteration, which the others wait for (0 when alike).
    #[serde(default, skip_serializing_if = "is_zero")]
    pub timeline_replica: u32,
    /// Iterations simulated (warm-up included).
    pub iterations_simulated: u32,
    /// Warm-up iterations excluded.
    pub warmup_iterations: u32,
}

/// Everything a run reports. Every field carries its unit in its name.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct RunResult {
    /// Scenario name.
    pub name: String,
    /// Seed used.
    pub seed: u64,
    /// GPUs.
    pub num_gpus: u32,
    /// GPU model.
    pub gpu: String,
    /// Model name.
    pub model: String,
    /// Plan in short form, e.g. "TP8 PP8 DP16 SP VPP3 MBS1 ZeRO-1 recompute=selective schedule=interleaved".
    pub plan: String,
    /// Mean step time over measured iterations, s.
    pub step_time_s: f64,
    /// Standard deviation of step time, s.
    pub step_time_std_s: f64,
    /// Each measured iteration's time, s.
    pub step_times_s: Vec<f64>,
    /// Tokens per step.
    pub tokens_per_step: f64,
    /// Throughput, tokens/s.
    pub tokens_per_s: f64,
    /// Throughput per GPU, tokens/s.
    pub tokens_per_s_per_gpu: f64,
    /// Model FLOPs per step (see docs/results.md for the convention).
    pub model_flops_per_step: f64,
    /// Model TFLOP/s per GPU.
    pub model_tflops_per_gpu: f64,
    /// Model FLOPs utilisation vs dense peak of the GEMM precision, fraction.
    pub mfu_fraction: f64,
    /// Hardware FLOPs utilisation (recomputation included), fraction.
    pub hfu_fraction: f64,
    /// Time breakdown averaged over pipeline stages, s per step.
    pub breakdown: Breakdown,
    /// Time breakdown per pipeline stage, s per step.
    pub breakdown_per_stage: Vec<Breakdown>,
    /// Pipeline bubble as a fraction of the step (stage mean).
    pub bubble_fraction: f64,
    /// Memory of the most loaded GPU.
    pub memory: MemoryBreakdown,
    /// GPU type of each pipeline stage on a heterogeneous cluster (absent on one GPU type;
    /// "H100-SXM/A100-80GB" for a stage whose replicas sit on both).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub gpu_per_stage: Vec<String>,
    /// Memory of one GPU of each pipeline stage; index = stage (absent from results
    /// written before it was recorded).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub memory_per_stage: Vec<MemoryBreakdown>,
    /// Rank placement.
    pub placement: PlacementSummary,
    /// Bytes sent over scale-up ports per step, per GPU.
    pub scale_up_bytes_per_step_per_gpu: f64,
    /// Bytes sent over NICs per step, per GPU.
    pub scale_out_bytes_per_step_per_gpu: f64,
    /// Simulation statistics.
    pub simulation: SimulationStats,
    /// Timeline of the last iteration (at most [`super::timeline::MAX_TIMELINE_STAGES`] stages; when a stage
    /// has more than [`super::timeline::MAX_SPANS_PER_STAGE`] operations, one span per pass and no spans of
    /// the overlapped-TP stream).
    pub timeline: Vec<TimelineSpan>,
    /// Mean compute-time factor of each pipeline stage over the measured iterations, from
    /// `[stragglers]` (absent without stragglers).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub compute_slowdown_per_stage: Vec<f64>,
    /// Training to the scenario's `[target]`: time, failures, energy, cost (absent without one).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub to_target: Option<crate::training::TrainingOutcome>,
    /// Routing and expert load (MoE models only).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub moe: Option<MoeResult>,
    /// Bytes per link class and per communication kind, link utilisation.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub network: Option<NetworkUsage>,
    /// Wire element types and gradient compression: the phases of the run and its mean
    /// step time (absent when everything is BF16 and uncompressed).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub comm: Option<super::phases::CommResult>,
}

/// What [`simulate_phase`] gives: replica 0's workload, the replicas' workloads, the
/// simulation's output and the stragglers' compute factors.
type Simulated = (workload::Workload, super::ReplicaSet, super::SimOutput, Vec<Vec<f64>>);

/// Builds and simulates the graph of `input`'s steps of `phase`: the workload, the
/// simulation's output and the stragglers' compute factors (`[iteration][replica * pp +
/// stage]`).
fn simulate_phase(input: &RunInput, phase: GradPhase) -> Result<Simulated, SimError> {
    let replicas = input.replicas();
    super::budget::check(input, replicas, input.max_operations)?;
    let c = &input.cluster;
    let p = &input.plan;
    let iterations = input.iterations.max(input.warmup_iterations + 1);
    let placement = input.placement();
    let w = input.workload_in(&placement, iterations, phase);
    let layouts = input.layouts(placement);
    let factors = super::stragglers::replica_factors(
        &input.stragglers,
        input.seed,
        p.pp,
        p.gpus_per_stage(),
        c.gpus_per_node,
        replicas,
        iterations,
    );
    let set = input.replica_set(&w, &placement, iterations, phase, replicas)?;
    let out = simulate(&w, c, layouts, &factors, &set)?;
    if out.iteration_ends.last().is_some_and(|&end| end >= SimTime::LIMIT) {
        return Err(SimError::ClockRange {
            max_days: SimTime::LIMIT.as_secs() / 86_400.0,
        });
    }
    Ok((w, set, out, factors))
}

/// The plan in short form, e.g. "TP8 PP8 DP16 SP VPP3 MBS1 ZeRO-1 recompute=selective
/// schedule=interleaved".
pub fn plan_label(p: &ParallelPlan) -> String {
    let mut s = format!("TP{} PP{} DP{}", p.tp, p.pp, p.dp);
    if p.sequence_parallel && p.tp > 1 {
        s.push_str(" SP");
    }
    if p.cp > 1 {
        s.push_str(&format!(" CP{}", p.cp));
        let mut how = Vec::new();
        if p.cp_comm_type != crate::parallel::CpCommType::P2p {
            how.push(p.cp_comm_type.name().to_string());
        }
        if p.cp_comm_type == crate::parallel::CpCommType::A2aP2p {
            how.push(format!("a2a {}", p.cp_a2a()));
        }
        if !p.cp_load_balance {
            how.push("unbalanced".into());
        }
        if !how.is_empty() {
            s.push_str(&format!("({})", how.join(", ")));
        }
    }
    for d in [Dim::Ep, Dim::Etp] {
        if p.degree(d) > 1 {
            s.push_str(&format!(" {}{}", d.label(), p.degree(d)));
        }
    }
    if p.virtual_stages > 1 {
        s.push_str(&format!(" VPP{}", p.virtual_stages));
    }
    let mut recompute = Recompute::NAMES[p.recompute as usize].to_string();
    if p.recompute == Recompute::Selective && !p.recompute_modules.is_default() {
        recompute.push_str(&format!("({})", p.recompute_modules.label()));
    }
    s.push_str(&format!(
        " MBS{} ZeRO-{} recompute={recompute}",
        p.micro_batch_size, p.zero_stage
    ));
    if p.pp > 1 {
        s.push_str(&format!(" schedule={}", p.schedule.name()));
    }
    if let Some(split) = p.layer_split.label() {
        s.push_str(&format!(" layers={split}"));
    }
    if let Some(m) = &p.replica_micro_batches {
        // micro-batches per replica: each, or their range on many replicas
        let (lo, hi) = (m.iter().min(), m.iter().max());
        match (m.len() <= 16, lo, hi) {
            (true, ..) => s.push_str(&format!(
                " batches={}",
                m.iter().map(|x| x.to_string()).collect::<Vec<_>>().join("+")
            )),
            (false, Some(lo), Some(hi)) => s.push_str(&format!(" batches={lo}..{hi}")),
            _ => {}
        }
    }
    s
}

/// Simulates the run and measures it.
pub fn run(input: &RunInput) -> Result<RunResult, SimError> {
    run_with(input, None, true).map(|(r, _)| r)
}

/// [`run`] without the timeline ([`RunResult::timeline`] left empty): for sweeps, plan
/// searches and validation, which keep many results and chart none of them (a timeline
/// is up to a few MB; a search simulating thousands of plans kept gigabytes of them).
pub fn run_summary(input: &RunInput) -> Result<RunResult, SimError> {
    run_with(input, None, false).map(|(r, _)| r)
}

/// [`run`], and with `trace` also every operation of the chosen stages and iterations,
/// read off the same simulation.
pub fn run_traced(input: &RunInput, trace: Option<&TraceRequest>) -> Result<(RunResult, Option<Trace>), SimError> {
    run_with(input, trace, true)
}

fn run_with(
    input: &RunInput,
    trace: Option<&TraceRequest>,
    with_timeline: bool,
) -> Result<(RunResult, Option<Trace>), SimError> {
    let c = &input.cluster;
    let p = &input.plan;
    let t = &input.training;
    let iterations = input.iterations.max(input.warmup_iterations + 1);
    let placement = input.placement();
    let (w, set, out, factors) = simulate_phase(input, GradPhase::Compressed)?;

    let warm = input.warmup_iterations as usize;
    let ends = &out.iteration_ends;
    let mut starts = vec![SimTime::ZERO];
    starts.extend(ends.iter().copied());
    let step_times: Vec<f64> = (warm..ends.len()).map(|i| (ends[i] - starts[i]).as_secs()).collect();
    let nmeas = step_times.len() as f64;
    let mean = step_times.iter().sum::<f64>() / nmeas;
    let var = step_times.iter().map(|x| (x - mean).powi(2)).sum::<f64>() / nmeas;
    let window = (starts[warm], *ends.last().expect("at least one iteration"));

    let per_stage = breakdown::per_stage(&w, &set, &out, window, nmeas, p.pp > 1);
    let bd = breakdown::mean(&per_stage);

    let tokens = t.tokens_per_step();
    let gpus = c.num_gpus as f64;
    let model_flops = input.model.model_flops(tokens, t.seq_length);
    let peak = tflops_to_flops_per_s(c.mean_over_gpus(|g| g.peak_tflops(t.precision)));
    let mfu = model_flops / (mean * gpus * peak);
    // hardware FLOPs: every executed op in the window, times the GPUs each stands for
    // (each replica's ops for their share of them)
    let mut hw_flops = 0.0;
    for r in 0..out.replicas.max(1) {
        let wr = set.workload_of(r, &w);
        let times = &out.op_times[out.replica_ops[r as usize] as usize..];
        for (op, t) in wr.ops.iter().zip(times) {
            if let OpKind::Compute { flops, .. } = op.kind {
                if t.0 >= window.0 && t.1 <= window.1 {
                    hw_flops += flops * wr.gpus_for(op) as f64 / f64::from(out.replicas.max(1));
                }
            }
        }
    }
    let hfu = hw_flops / nmeas / (mean * gpus * peak);

    let hpz_group = placement.layout(Dim::DpNode).size;
    let host = |mem| with_wire_and_offload(mem, &input.model, p, t, &input.comm, &input.offload, hpz_group);
    let capacity_gib = input.stage_hbm_gib();
    let memory = host(memory_per_gpu(&input.model, p, t, &capacity_gib));
    let memory_per_stage = memory_per_stage(&input.model, p, t, &capacity_gib)
        .into_iter()
        .map(host)
        .collect();

    let last = iterations as usize - 1;
    let timeline_replica = if out.replicas > 1 {
        super::timeline::busiest_replica(&w, &set, &out, (starts[last], ends[last]))
    } else {
        0
    };
    let timeline = if with_timeline {
        let times = &out.op_times[out.replica_ops[timeline_replica as usize] as usize..];
        super::timeline::timeline(set.workload_of(timeline_replica, &w), times, starts[last], ends[last])
    } else {
        Vec::new()
    };

    let n_rep = w.stages as f64;
    let iters = iterations as f64;
    let mut result = RunResult {
        name: input.name.clone(),
        seed: input.seed,
        num_gpus: c.num_gpus,
        gpu: c.gpu_label(),
        model: input.model.name.clone(),
        plan: plan_label(p),
        step_time_s: mean,
        step_time_std_s: var.sqrt(),
        step_times_s: step_times,
        tokens_per_step: tokens,
        tokens_per_s: tokens / mean,
        tokens_per_s_per_gpu: tokens / mean / gpus,
        model_flops_per_step: model_flops,
        model_tflops_per_gpu: model_flops / mean / gpus / 1e12,
        mfu_fraction: mfu,
        hfu_fraction: hfu,
        bubble_fraction: bd.pipeline_bubble_s() / mean,
        breakdown: bd,
        breakdown_per_stage: per_stage,
        memory,
        memory_per_stage,
        gpu_per_stage: input.stage_gpu_labels(),
        placement: placement.summary(),
        scale_up_bytes_per_step_per_gpu: out.bytes_scale_up / n_rep / iters,
        scale_out_bytes_per_step_per_gpu: out.bytes_scale_out / n_rep / iters,
        simulation: SimulationStats {
            events: out.events,
            operations: out.op_times.len() as u64,
            representative_ranks: w.stages,
            gpus_represented: w.ranks.iter().map(|r| r.multiplicity).sum(),
            replicas_simulated: out.replicas,
            timeline_replica,
            iterations_simulated: iterations,
            warmup_iterations: input.warmup_iterations,
        },
        timeline,
        compute_slowdown_per_stage: if input.stragglers.is_none() {
            Vec::new()
        } else {
            // a stage's factor: its slowest replica's
            let slowest =
                |f: &Vec<f64>, s: usize| (s..f.len()).step_by(p.pp as usize).map(|i| f[i]).fold(0.0, f64::max);
            (0..p.pp as usize)
                .map(|s| factors[warm..].iter().map(|f| slowest(f, s)).sum::<f64>() / nmeas)
                .collect()
        },
        to_target: None,
        moe: None,
        network: None,
        comm: None,
    };
    {
        let per = |x: f64| x / n_rep / iters;
        let ports = PortCapacities::of(c);
        let util = |bytes: f64, bytes_per_s: f64| {
            if bytes_per_s > 0.0 && mean > 0.0 {
                per(bytes) / (bytes_per_s * mean)
            } else {
                0.0
            }
        };

        result.network = Some(NetworkUsage {
            scale_up_bytes_per_step_per_gpu: per(out.bytes_scale_up),
            scale_out_bytes_per_step_per_gpu: per(out.bytes_scale_out),
            spine_bytes_per_step_per_gpu: per(out.bytes_spine),
            scale_up_utilisation_fraction: util(out.bytes_scale_up, ports.up_bytes_per_s),
            scale_out_utilisation_fraction: util(out.bytes_scale_out, ports.nic_bytes_per_s),
            spine_utilisation_fraction: if ports.spine_oversubscribed {
                util(out.bytes_spine, ports.spine_bytes_per_s)
            } else {
                0.0
            },
            bytes_by_kind: BytesByKind(out.bytes_by_kind.map(per)),
            algorithms: input.collectives,
        });
    }
    // with replicas of their own routing (every-replica mode), every replica's draws
    let merged = (!set.variants.is_empty()).then(|| {
        let replicas = (0..out.replicas.max(1)).filter_map(|r| set.workload_of(r, &w).moe.as_ref());
        crate::workload::moe::MoeLoads::merged(replicas)
    });
    if let (Some(loads), Some(moe)) = (merged.as_ref().or(w.moe.as_ref()), &input.model.moe) {
        let draws = loads.draws.max(1) as f64;
        let routing = input.routing.routing.name();
        result.moe = Some(MoeResult {
            routing: routing.into(),
            num_experts: moe.num_experts,
            top_k: moe.top_k,
            ep: p.ep,
            expert_dp: p.expert_dp(),
            capacity_factor: input.routing.capacity_factor,
            assignments_per_step_per_ep_group: loads.assignments_per_iteration / iters,
            dropped_fraction: if loads.assignments_per_iteration > 0.0 {
                loads.dropped_per_iteration / loads.assignments_per_iteration
            } else {
                0.0
            },
            expert_load_max_over_mean: loads.expert_max_over_mean / draws,
            expert_load_gini: loads.expert_gini / draws,
            rank_load_max_over_mean: loads.rank_max_over_mean / draws,
            rank_load_gini: loads.rank_gini / draws,
            imbalance_wait_s: result.breakdown.get(Category::MoeImbalance),
            exposed_all_to_all_s: result.breakdown.exposed(CommKind::Ep),
            expert_load_per_layer: relative(&loads.per_layer_expert),
            expert_load_per_step: relative(&loads.per_iteration_expert),
        });
    }
    let grad_bytes = result
        .network
        .as_ref()
        .map_or(0.0, |n| n.bytes_by_kind.get(CommKind::DpGrad));
    result.comm = super::phases::comm_result(&input.comm, mean, grad_bytes, |phase| {
        let (w, _, out, _) = simulate_phase(input, phase)?;
        let ends = &out.iteration_ends;
        let start = if warm == 0 { SimTime::ZERO } else { ends[warm - 1] };
        let step = (*ends.last().expect("iterations") - start).as_secs() / (ends.len() - warm) as f64;
        let bytes = out.bytes_by_kind[CommKind::DpGrad.index()] / w.stages as f64 / iterations as f64;
        Ok((step, bytes))
    })?;
    let (run_step_s, extra_steps) = result
        .comm
        .as_ref()
        .map_or((mean, 0.0), |x| (x.mean_step_time_s, x.extra_steps_fraction));
    result.to_target = input.goal.as_ref().map(|g| {
        let step = crate::training::SimulatedStep {
            extra_steps_fraction: extra_steps,
            step_time_s: run_step_s,
            tokens_per_step: result.tokens_per_step,
            compute_s: result.breakdown.compute_s(),
            exposed_comm_s: result.breakdown.exposed_comm_s() + result.breakdown.get(Category::Sync),
        };
        crate::training::outcome(&step, &input.model, &input.cluster, input.seed, g)
    });
    // the timeline's replica, whose ops start at its offset
    let r = result.simulation.timeline_replica;
    let times = &out.op_times[out.replica_ops[r as usize] as usize..];
    let trace =
        trace.map(|req| super::trace::collect(set.workload_of(r, &w), times, &out, input.warmup_iterations, req));
    if let Some((field, value)) = super::finite::first_bad_number(&result) {
        return Err(SimError::NotFinite { field, value });
    }
    Ok((result, trace))
}
