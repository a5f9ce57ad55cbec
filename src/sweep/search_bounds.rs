//! Lower bounds on the steady-state step time of a plan, for the plan search.
//!
//! * [`lower_bound_s`] (cheap, from the per-layer costs only): a pipeline stage runs its
//!   compute and its blocking tensor-parallel collectives for every micro-batch, and the
//!   pipeline must fill and drain: `T >= w_max * m + w_min * (p - 1) / v + optimizer`,
//!   with `w_max` and `w_min` the work (compute plus blocking TP and ETP collectives on an idle
//!   network) of one micro-batch on the busiest and the lightest stage.
//! * [`contention_free_step_s`] (about a tenth of a simulation): the operation graph the
//!   simulation runs, timed as a longest path with every collective and transfer at its
//!   idle-network duration. The simulation obeys the same dependencies and stream orders
//!   with durations at least as long (contention only slows flows), so this bounds the
//!   simulated step time from below while capturing the pipeline bubble, blocking and
//!   overlapped TP collectives, the exposed gradient reduction and parameter gathers.
//!
//! Mixture-of-Experts: the cheap bound counts each layer as the model has it (dense or
//! MoE); each all-to-all holds its pass's chain for its idle-network time at the mean
//! load where no draw can make it shorter ([`balanced_all_to_all_s`]). A MoE pass's GPU
//! time leaves out the routed experts (the representative's own share of a draw is
//! unknown here); its serial chain adds, at each
//! expert step, a floor on the busiest expert-parallel rank's grouped GEMMs: that rank
//! keeps at least the mean assignments per rank (or one expert's capacity when the
//! capacity factor drops tokens), and [`crate::workload::costs::MoeCost::experts_floor`]
//! bounds the GEMM time of any split of them. Where a stage's passes hold one queue one
//! after the other, the stage is busy for their chains; a DualPipe pair for the larger of
//! its GPU time and either chain (the next pair waits for both); passes that overlap
//! their neighbours (the all-to-all overlap) only for their GPU time, their chains still
//! ordering the pass-level run. The contention-free bound runs the expert steps
//! of every expert-parallel lane as the simulation builds them, each all-to-all at the
//! idle-port time of its busiest port (the representative's four ports and the other
//! lanes', latency included) and the expert-data-parallel gradient reductions at their
//! idle-network time, so it includes the expert compute, the imbalance wait and the
//! unhidden all-to-all time.
//!
//! Both bound the steady-state iteration: barrier release to barrier release, which is
//! what the simulation measures after one warm-up iteration (`end_1 - end_0`, the
//! optimizer steps being the same in both iterations).

use super::draw_bound::{balanced_all_to_all_s, DrawFloors};
use super::pass_bound::{pass_bound, pass_duration, PassBound, PassCost};
use crate::network::{
    AlgorithmChoice, ClusterNetwork, CollectiveKind, CollectiveRequest, GroupLayout, SendRequest, SendRoute,
};
use crate::parallel::schedule::{Pass, PassKind};
use crate::parallel::Schedule;
use crate::parallel::{Dim, ParallelPlan, Placement};
use crate::simulation::RunInput;
use crate::workload::costs::{embedding_and_head_steps, optimizer_time_s, LayerContext, MoeCost};
use crate::workload::layer::{compute_time_s, LayerSteps, Overlap, Step};
use crate::workload::moe::busiest_rank_tokens_floor;
use crate::workload::passes::layer_steps;
use crate::workload::{self, OpKind, Stream, WorkloadSpec};

/// Seconds of a collective alone on the network, decomposed by the algorithm the
/// simulation uses for it ([`ClusterNetwork::collective_idle_s`]).
fn collective_idle_s(
    kind: CollectiveKind,
    layout: GroupLayout,
    bytes: f64,
    net: &ClusterNetwork,
    algorithms: &AlgorithmChoice,
) -> f64 {
    net.collective_idle_s(&CollectiveRequest {
        kind,
        layout,
        algorithm: algorithms.for_kind(kind),
        size_bytes: bytes,
    })
}

/// Compute plus blocking TP and expert-TP collectives (idle network) of `steps`, seconds.
fn blocking_work_s(steps: &[Step], placement: &Placement, net: &ClusterNetwork, algorithms: &AlgorithmChoice) -> f64 {
    let comm: f64 = steps
        .iter()
        .map(|s| match s {
            Step::Comm {
                dim: dim @ (Dim::Tp | Dim::Etp),
                kind,
                bytes,
                overlap: Overlap::Blocking,
            } => collective_idle_s(*kind, placement.comm_layout(*dim, *kind), *bytes, net, algorithms),
            _ => 0.0,
        })
        .sum();
    compute_time_s(steps) + comm
}

/// Cheap lower bound on the steady-state step time of `plan`, seconds (see the module
/// docs).
pub fn lower_bound_s(base: &RunInput, plan: &ParallelPlan) -> f64 {
    let c = &base.cluster;
    let g = &c.gpu;
    let m = &base.model;
    let t = &base.training;
    let net = ClusterNetwork::new(c, 0);
    let placement = Placement::megatron(plan, c.gpus_per_node);
    let cx = LayerContext::new(g, m, plan, t);
    let work = |s: &[Step]| blocking_work_s(s, &placement, &net, &base.collectives);
    let chunks = plan.layers_per_chunk(m.num_layers);
    if !is_classic(plan) {
        return busy_bound_s(base, plan, &cx, &chunks, work);
    }
    classic_bound_s(base, plan, &cx, &chunks, work, None)
}

/// The closed-form bound of the schedules with one (GPipe, 1F1B, interleaved): the
/// busiest stage's passes over all micro-batches, the lightest micro-batch's fill and
/// drain, the lightest stage's optimizer; with `draws`, each micro-batch's passes carry
/// their drawn expert floors.
fn classic_bound_s(
    base: &RunInput,
    plan: &ParallelPlan,
    cx: &LayerContext,
    chunks: &[u32],
    work: impl Fn(&[Step]) -> f64,
    draws: Option<&DrawFloors>,
) -> f64 {
    let g = cx.gpu;
    let m = &base.model;
    let t = &base.training;
    let schedule = plan.schedule.get();
    let shape = plan.pipeline_shape(t.global_batch_size, plan.extra_warmup(m));
    let v = schedule.chunks_per_stage(&shape);
    // one queue runs a stage's passes one after the other, each for its chain, unless
    // the all-to-all overlap lets neighbours share the GPU
    let serial = plan.extra_warmup(m) == 0;
    let costs = ChunkCosts::new(base, plan, cx, chunks, work);
    let pass = |c: &PassCost| if serial { c.chain_s } else { c.gpu_s };
    let (fwd, bwd) = (kind_index(PassKind::Forward), kind_index(PassKind::Backward));
    let nmb = plan.num_microbatches(t.global_batch_size);
    let mut busiest = 0.0f64;
    let mut lightest = f64::INFINITY;
    for s in 0..plan.pp {
        let global: Vec<u32> = (0..v).map(|c| schedule.global_chunk(s, c, &shape)).collect();
        let mut w: f64 = global
            .iter()
            .map(|&g| {
                let k = &costs.layers[g as usize];
                pass(&k[fwd]) + pass(&k[bwd])
            })
            .sum();
        if global.contains(&0) {
            w += costs.emb[fwd].gpu_s + costs.emb[bwd].gpu_s;
        }
        if global.contains(&(chunks.len() as u32 - 1)) {
            w += costs.head[fwd].gpu_s + costs.head[bwd].gpu_s;
        }
        match draws {
            None => {
                busiest = busiest.max(w * nmb as f64);
                lightest = lightest.min(w);
            }
            Some(d) => {
                // the drawn floors add to the layers' (the chain's mean floor is replaced
                // where the draw's busiest rank is above it)
                let layers: f64 = global
                    .iter()
                    .map(|&g| {
                        let k = &costs.layers[g as usize];
                        pass(&k[fwd]) + pass(&k[bwd])
                    })
                    .sum();
                let rest = w - layers;
                let mut total = 0.0;
                for mb in 0..nmb {
                    let x: f64 = global
                        .iter()
                        .map(|&g| {
                            let k = &costs.layers[g as usize];
                            pass(&d.add(k[fwd], fwd, g, mb)) + pass(&d.add(k[bwd], bwd, g, mb))
                        })
                        .sum::<f64>()
                        + rest;
                    total += x;
                    lightest = lightest.min(x);
                }
                busiest = busiest.max(total);
            }
        }
    }
    // the interleaved fill of `(p - 1) / v` stage times holds for chunks of equal layers;
    // with unequal ones (a split balanced over GPU types) a heavy stage's chunks can cover
    // its waits, so only the busy time is certain
    let even_chunks = chunks.iter().all(|&c| c == chunks[0]);
    let fill = if v > 1 && !even_chunks {
        0.0
    } else {
        (plan.pp as f64 - 1.0) / plan.virtual_stages as f64
    };
    let params_local = if m.moe.is_some() {
        moe_min_optimizer_params(m, plan, chunks, |s, c| schedule.global_chunk(s, c, &shape) as usize, v)
    } else {
        m.total_params()
            / (plan.tp * plan.pp) as f64
            / if plan.zero_stage >= 1 {
                plan.grad_group() as f64
            } else {
                1.0
            }
    };
    busiest + lightest * fill + optimizer_time_s(g, params_local)
}

/// The cheap bound of schedules without a closed-form fill here (zero-bubble, DualPipe),
/// from the busy time alone: every stage runs its program's passes one after the other
/// (each at the compute and blocking TP time of its chunk's layers; for MoE models, the
/// lighter of a dense and a MoE layer, per pass kind), so the step lasts at least the
/// busiest stage's busy time plus the lightest stage's optimizer step. With the optimizer
/// post-validation a stage starts its next iteration when its own work is done, and only
/// the least busy stage's time is certain. Cost: one count over the (cached) programs.
/// [`tightened_bound_s`] tightens it with the pipeline's fill and drain.
fn busy_bound_s(
    base: &RunInput,
    plan: &ParallelPlan,
    cx: &LayerContext,
    chunks: &[u32],
    work: impl Fn(&[Step]) -> f64,
) -> f64 {
    let (time, opt) = pass_times(base, plan, cx, chunks, work, None);
    let shape = plan.pipeline_shape(base.training.global_batch_size, plan.extra_warmup(&base.model));
    let schedule = plan.schedule.get();
    let programs = plan.schedule.programs(&shape);
    let paired = programs.iter().flatten().any(|p| p.with_previous);
    let overlap = plan.extra_warmup(&base.model) > 0;
    let busy = programs.iter().enumerate().map(|(s, prog)| {
        let cost = |p: &Pass| time(p.kind, schedule.global_chunk(s as u32, p.chunk, &shape), p.microbatch);
        (0..prog.len())
            .map(|i| pass_duration(prog, i, cost, overlap && !paired).1)
            .sum::<f64>()
    });
    let busy = if plan.optimizer_post_validation {
        busy.fold(f64::INFINITY, f64::min)
    } else {
        busy.fold(0.0, f64::max)
    };
    busy + opt
}

/// The cheap bound tightened, for a candidate that comes up in the search (`None` where
/// there is nothing to tighten: dense or balanced-routing MoE plans of a schedule with a
/// closed-form fill, whose cheap bound is already this). Schedules without a closed-form
/// fill here (zero-bubble, DualPipe) run their programs at pass level ([`pass_bound`]);
/// with the optimizer post-validation the stage whose first iteration ends last
/// (unknown, hence the smallest over stages) needs at least its span: the longest path
/// from its first pass to its last with nothing anchored but its first pass; otherwise all
/// stages start together after the gradient-norm barrier and the whole pipeline phase
/// bounds the step. MoE plans with skewed routing also draw their routing
/// ([`DrawFloors`], `iterations` as simulated): each micro-batch's passes carry the
/// representative's and the busiest rank's expert floors. Costs a longest path over
/// every pass of the step, plus the draws.
pub fn tightened_bound_s(base: &RunInput, plan: &ParallelPlan, iterations: u32) -> Option<f64> {
    let c = &base.cluster;
    let net = ClusterNetwork::new(c, 0);
    let placement = Placement::megatron(plan, c.gpus_per_node);
    let cx = LayerContext::new(&c.gpu, &base.model, plan, &base.training);
    let chunks = plan.layers_per_chunk(base.model.num_layers);
    let work = |s: &[Step]| blocking_work_s(s, &placement, &net, &base.collectives);
    let overlap = plan.extra_warmup(&base.model) > 0;
    if is_classic(plan) {
        // with the all-to-all overlap the closed form counts GPU time, which the draws
        // do not add to (see [`DrawFloors::new`])
        return if overlap {
            None
        } else {
            DrawFloors::new(base, plan, &cx, &chunks, iterations, true)
                .map(|d| classic_bound_s(base, plan, &cx, &chunks, work, Some(&d)))
        };
    }
    let shape = plan.pipeline_shape(base.training.global_batch_size, plan.extra_warmup(&base.model));
    let paired = plan.schedule.programs(&shape).iter().flatten().any(|p| p.with_previous);
    let draws = DrawFloors::new(base, plan, &cx, &chunks, iterations, paired || !overlap);
    let post = plan.optimizer_post_validation;
    let (r, opt) = pass_level(base, plan, &cx, &chunks, work, post, draws.as_ref());
    Some(if post {
        r.span_s.iter().copied().fold(f64::INFINITY, f64::min) + opt
    } else {
        r.end_s.max(r.busy_s.iter().copied().fold(0.0, f64::max)) + opt
    })
}

/// Schedules whose cheap bound has a closed-form fill (GPipe, 1F1B, interleaved).
fn is_classic(plan: &ParallelPlan) -> bool {
    [Schedule::GPIPE, Schedule::ONE_F_ONE_B, Schedule::INTERLEAVED].contains(&plan.schedule)
}

fn kind_index(k: PassKind) -> usize {
    match k {
        PassKind::Forward => 0,
        PassKind::Backward => 1,
        PassKind::BackwardInput => 2,
        PassKind::BackwardWeight => 3,
    }
}

/// The pass-level run of `plan`'s programs (module docs of [`pass_bound`]) with the
/// per-pass times of [`pass_times`], and the lightest stage's optimizer step, s.
fn pass_level(
    base: &RunInput,
    plan: &ParallelPlan,
    cx: &LayerContext,
    chunks: &[u32],
    work: impl Fn(&[Step]) -> f64,
    spans: bool,
    draws: Option<&DrawFloors>,
) -> (PassBound, f64) {
    let shape = plan.pipeline_shape(base.training.global_batch_size, plan.extra_warmup(&base.model));
    let (time, opt) = pass_times(base, plan, cx, chunks, work, draws);
    let overlap = plan.extra_warmup(&base.model) > 0;
    (pass_bound(plan.schedule, &shape, overlap, spans, time), opt)
}

/// What the passes of each global chunk cost, per pass kind ([`kind_index`]): its
/// layers (dense or MoE, as the model has them) and, apart, the embedding (first chunk)
/// and the head (last chunk). A MoE layer's GPU time counts no routed-expert GEMM and no
/// all-to-all (the representative's own experts get a drawn, unknown share); its chain
/// adds, at each expert step, the floor of the busiest expert rank
/// ([`MoeCost::experts_floor`] at [`busiest_rank_tokens_floor`]), which the pass waits for
/// before its combine.
struct ChunkCosts {
    layers: Vec<[PassCost; 4]>,
    emb: [PassCost; 4],
    head: [PassCost; 4],
}

impl ChunkCosts {
    fn new(
        base: &RunInput,
        plan: &ParallelPlan,
        cx: &LayerContext,
        chunks: &[u32],
        work: impl Fn(&[Step]) -> f64,
    ) -> Self {
        let m = &base.model;
        let t = &base.training;
        let moe_cost = MoeCost::new(cx.gpu, m, plan, t.precision, t.seq_length);
        let floor = moe_cost
            .as_ref()
            .map(|c| c.experts_floor(busiest_rank_tokens_floor(c, m, plan, &base.routing)))
            .unwrap_or_default();
        let a2a = moe_cost
            .as_ref()
            .map_or([0.0; 2], |c| balanced_all_to_all_s(base, plan, c));
        let pass = |steps: &[Step]| {
            let gpu_s = work(steps);
            let waits: f64 = steps
                .iter()
                .map(|s| match s {
                    Step::Experts { part, .. } => floor.of(*part).0,
                    Step::AllToAll { to_experts } => a2a[usize::from(*to_experts)],
                    _ => 0.0,
                })
                .sum();
            PassCost {
                gpu_s,
                chain_s: gpu_s + waits,
            }
        };
        let kinds = |l: &LayerSteps| {
            [
                pass(&l.forward),
                pass(&l.backward),
                pass(&l.backward_input),
                pass(&l.weight),
            ]
        };
        let dense = kinds(&layer_steps(cx, None));
        let moe = moe_cost.as_ref().map(|c| kinds(&layer_steps(cx, Some(c))));
        let (emb, head) = embedding_and_head_steps(cx);
        let mut first = 0u32;
        let layers = chunks
            .iter()
            .map(|&n| {
                let n_moe = (first..first + n).filter(|&l| m.is_moe_layer(l)).count() as f64;
                first += n;
                let n_dense = n as f64 - n_moe;
                std::array::from_fn(|i| match &moe {
                    Some(moe) => PassCost {
                        gpu_s: n_dense * dense[i].gpu_s + n_moe * moe[i].gpu_s,
                        chain_s: n_dense * dense[i].chain_s + n_moe * moe[i].chain_s,
                    },
                    None => PassCost {
                        gpu_s: n_dense * dense[i].gpu_s,
                        chain_s: n_dense * dense[i].chain_s,
                    },
                })
            })
            .collect();
        ChunkCosts {
            layers,
            emb: kinds(&emb),
            head: kinds(&head),
        }
    }
}

/// Per-pass cost `time(kind, global chunk)` ([`ChunkCosts`]), and the lightest stage's
/// optimizer step, s.
fn pass_times<'a>(
    base: &RunInput,
    plan: &ParallelPlan,
    cx: &LayerContext,
    chunks: &[u32],
    work: impl Fn(&[Step]) -> f64,
    draws: Option<&'a DrawFloors>,
) -> (impl Fn(PassKind, u32, u32) -> PassCost + 'a, f64) {
    let m = &base.model;
    let t = &base.training;
    let costs = ChunkCosts::new(base, plan, cx, chunks, work);
    let schedule = plan.schedule.get();
    let shape = plan.pipeline_shape(t.global_batch_size, plan.extra_warmup(m));
    let last = chunks.len() as u32 - 1;
    let v = schedule.chunks_per_stage(&shape);
    let params = moe_min_optimizer_params(m, plan, chunks, |s, c| schedule.global_chunk(s, c, &shape) as usize, v)
        / schedule.parameter_copies().max(1) as f64;
    let opt = optimizer_time_s(cx.gpu, params);
    let time = move |k: PassKind, g: u32, mb: u32| {
        let i = kind_index(k);
        let mut x = costs.layers.get(g as usize).map_or(PassCost::default(), |c| c[i]);
        for (on, extra) in [(g == 0, costs.emb[i]), (g == last, costs.head[i])] {
            if on {
                x.gpu_s += extra.gpu_s;
                x.chain_s += extra.chain_s;
            }
        }
        match draws {
            Some(d) => d.add(x, i, g, mb),
            None => x,
        }
    };
    (time, opt)
}

/// Per stage, the pass-level span bound of a post-validation schedule (no optimizer).
fn post_validation_spans(base: &RunInput, plan: &ParallelPlan) -> Vec<f64> {
    let c = &base.cluster;
    let net = ClusterNetwork::new(c, 0);
    let placement = Placement::megatron(plan, c.gpus_per_node);
    let cx = LayerContext::new(&c.gpu, &base.model, plan, &base.training);
    let chunks = plan.layers_per_chunk(base.model.num_layers);
    let work = |s: &[Step]| blocking_work_s(s, &placement, &net, &base.collectives);
    pass_level(base, plan, &cx, &chunks, work, true, None).0.span_s
}

/// Parameters the optimizer of the lightest pipeline stage updates, for a MoE model: the
/// dense part (attention, router, shared experts, norms) split over TP, the routed experts
/// over EP, each sharded over its data-parallel group with ZeRO (as the workload counts
/// them, without the embedding and head, which only add to the first and last stage).
/// The mean over stages would not do: with EP above TP the routed experts are spread
/// wider than the dense part, and the average of the whole model over `tp * pp` GPUs can
/// exceed what a stage holds.
fn moe_min_optimizer_params(
    m: &crate::model::TransformerSpec,
    plan: &ParallelPlan,
    chunks: &[u32],
    global: impl Fn(u32, u32) -> usize,
    chunks_per_stage: u32,
) -> f64 {
    let (dp_shard, edp_shard) = if plan.zero_stage >= 1 {
        (plan.dp as f64, plan.expert_dp() as f64)
    } else {
        (1.0, 1.0)
    };
    let ep = (plan.ep * plan.expert_tp).max(1) as f64;
    let mut first = vec![0u32; chunks.len()];
    for g in 1..chunks.len() {
        first[g] = first[g - 1] + chunks[g - 1];
    }
    (0..plan.pp)
        .map(|s| {
            (0..chunks_per_stage)
                .map(|c| {
                    let g = global(s, c);
                    (first[g]..first[g] + chunks[g])
                        .map(|l| {
                            m.layer_dense_params(l) / plan.tp as f64 / dp_shard
                                + m.layer_expert_params(l) / ep / edp_shard
                        })
                        .sum::<f64>()
                })
                .sum::<f64>()
        })
        .fold(f64::INFINITY, f64::min)
}

/// The workload the simulation builds for `plan` over `iterations`.
fn workload_of(base: &RunInput, plan: &ParallelPlan, placement: &Placement, iterations: u32) -> workload::Workload {
    let c = &base.cluster;
    workload::build(&WorkloadSpec {
        stage_gpus: std::slice::from_ref(&c.gpu),
        model: &base.model,
        plan,
        training: &base.training,
        placement,
        iterations,
        routing: &base.routing,
        seed: base.seed,
        comm: &base.comm,
        grad_phase: crate::workload::wire::GradPhase::Compressed,
        offload: &base.offload,
    })
}

/// Steady-state step time of `plan` with every collective and transfer at its idle-network
/// duration, seconds: a lower bound on the simulated step time (see the module docs).
/// Returns 0 (no information) if the graph has no second barrier.
pub fn contention_free_step_s(base: &RunInput, plan: &ParallelPlan) -> f64 {
    let c = &base.cluster;
    let net = ClusterNetwork::new(c, 0);
    let placement = Placement::megatron(plan, c.gpus_per_node);
    let pp_same_node = placement.pp_neighbours_share_node();
    let w = workload_of(base, plan, &placement, 2);
    let n = w.ops.len();
    let n_ranks = w.ranks.len();
    // ranks that close an iteration at its barrier: the pipeline stages (expert lanes
    // have none)
    let barrier_ranks = w.stages as usize;
    // without a gradient-norm barrier (optimizer post-validation) there is no common
    // instant to time from: each stage is timed alone, from its previous optimizer step
    // to its next, its dependencies on other ranks dropped (see the end)
    let post = plan.optimizer_post_validation;
    let keep = |i: usize, d: u32| !post || w.ops[d as usize].rank == w.ops[i].rank;
    // edges: explicit dependencies and each stream's program order (CSR)
    let mut stream_pred = vec![u32::MAX; n];
    let mut last = vec![u32::MAX; n_ranks * Stream::COUNT];
    let mut indeg = vec![0u32; n];
    let mut succ_start = vec![0u32; n + 1];
    for (i, op) in w.ops.iter().enumerate() {
        let q = op.rank as usize * Stream::COUNT + op.stream.index();
        stream_pred[i] = last[q];
        last[q] = i as u32;
        for &d in w.deps[op.deps.0 as usize..op.deps.1 as usize]
            .iter()
            .filter(|&&d| keep(i, d))
        {
            succ_start[d as usize + 1] += 1;
            indeg[i] += 1;
        }
        if stream_pred[i] != u32::MAX {
            succ_start[stream_pred[i] as usize + 1] += 1;
            indeg[i] += 1;
        }
    }
    for i in 0..n {
        succ_start[i + 1] += succ_start[i];
    }
    let mut succ = vec![0u32; succ_start[n] as usize];
    let mut fill = succ_start.clone();
    for (i, op) in w.ops.iter().enumerate() {
        for &d in w.deps[op.deps.0 as usize..op.deps.1 as usize]
            .iter()
            .filter(|&&d| keep(i, d))
        {
            succ[fill[d as usize] as usize] = i as u32;
            fill[d as usize] += 1;
        }
        if stream_pred[i] != u32::MAX {
            let p = stream_pred[i] as usize;
            succ[fill[p] as usize] = i as u32;
            fill[p] += 1;
        }
    }
    // durations of collectives by (group, kind, bytes), few distinct ones per plan
    let mut cache: Vec<(Dim, CollectiveKind, u64, f64)> = Vec::new();
    // sends between stages under different leaves are bounded as if under one (the spine
    // only slows them): NIC to NIC
    let send_route = if pp_same_node {
        SendRoute::SameNode
    } else {
        SendRoute::SameLeaf
    };
    // times relative to the release of the first barrier; work that does not follow it
    // is unconstrained (-inf)
    let mut start = vec![f64::NEG_INFINITY; n];
    let mut end = vec![f64::NEG_INFINITY; n];
    let mut ready: Vec<u32> = (0..n as u32).filter(|&i| indeg[i as usize] == 0).collect();
    let mut arrived: Vec<Vec<u32>> = vec![Vec::new(); w.iterations as usize];
    let mut release = vec![f64::NEG_INFINITY; w.iterations as usize];
    let mut done: Vec<u32> = Vec::new();
    while let Some(i) = ready.pop() {
        let op = &w.ops[i as usize];
        #[allow(unreachable_patterns)]
        let d = match &op.kind {
            OpKind::Compute { duration, .. } | OpKind::HostCopy { duration, .. } => duration.as_secs(),
            OpKind::Collective { dim, kind, bytes, .. } => {
                let key = (*dim, *kind, bytes.to_bits());
                match cache.iter().find(|e| (e.0, e.1, e.2) == key) {
                    Some(e) => e.3,
                    None => {
                        let layout = placement.comm_layout(*dim, *kind);
                        let s = collective_idle_s(*kind, layout, *bytes, &net, &base.collectives);
                        cache.push((key.0, key.1, key.2, s));
                        s
                    }
                }
            }
            OpKind::Send { bytes, .. } => net.send_idle_s(&SendRequest {
                route: send_route,
                group: placement.layout(Dim::Pp),
                bytes: *bytes,
            }),
            // each port alone at its capacity (the simulation's flows can only share
            // them), and the other lanes' busiest port, which the op also waits for
            OpKind::AllToAll { table } => {
                let a = &w.all_to_alls[*table as usize];
                net.all_to_all_idle_s(&a.loads)
            }
            OpKind::Barrier { iteration } => {
                let it = *iteration as usize;
                if it == 0 {
                    end[i as usize] = 0.0;
                    done.push(i);
                } else {
                    arrived[it].push(i);
                    release[it] = release[it].max(start[i as usize]);
                    if arrived[it].len() == barrier_ranks {
                        for &o in &arrived[it] {
                            end[o as usize] = release[it];
                        }
                        done.extend(arrived[it].iter().copied());
                    }
                }
                f64::NAN
            }
            _ => 0.0,
        };
        let anchor = post
            && op.iteration == 0
            && matches!(
                op.kind,
                OpKind::Compute {
                    phase: crate::workload::Phase::Optimizer,
                    ..
                }
            );
        if anchor {
            // each stage timed from the end of its own first optimizer step
            end[i as usize] = 0.0;
            done.push(i);
        } else if !d.is_nan() {
            end[i as usize] = start[i as usize] + d;
            done.push(i);
        }
        while let Some(o) = done.pop() {
            let e = end[o as usize];
            for k in succ_start[o as usize]..succ_start[o as usize + 1] {
                let s = succ[k as usize] as usize;
                start[s] = start[s].max(e);
                indeg[s] -= 1;
                if indeg[s] == 0 {
                    ready.push(s as u32);
                }
            }
        }
    }
    // between two releases every stage runs its optimizer step and, on its GPU one
    // operation at a time, the next iteration's compute (both compute queues)
    let mut gpu = vec![0.0f64; barrier_ranks];
    let mut opt_s = vec![0.0f64; barrier_ranks];
    let mut opt_end = vec![f64::NEG_INFINITY; barrier_ranks];
    for (i, op) in w.ops.iter().enumerate() {
        let r = op.rank as usize;
        if r >= barrier_ranks || !op.stream.is_compute() || op.iteration != 1 || end[i] == f64::NEG_INFINITY {
            continue;
        }
        let d = end[i] - start[i];
        if d.is_finite() && !matches!(op.kind, OpKind::Barrier { .. }) {
            if matches!(
                op.kind,
                OpKind::Compute {
                    phase: crate::workload::Phase::Optimizer,
                    ..
                }
            ) {
                opt_s[r] = d;
                opt_end[r] = end[i];
            } else {
                gpu[r] += d;
            }
        }
    }
    if post {
        // the stage that ended the first iteration last starts the second with nothing
        // else to wait for: its own path (here, without other ranks) and its pass-level
        // span bound it; not knowing which stage that is, the smallest over stages
        let spans = post_validation_spans(base, plan);
        return (0..barrier_ranks)
            .map(|r| {
                let span = spans.get(r).copied().unwrap_or(0.0) + opt_s[r];
                opt_end[r].max(span).max(gpu[r] + opt_s[r])
            })
            .fold(f64::INFINITY, f64::min)
            .max(0.0);
    }
    match release.get(1) {
        Some(r) if r.is_finite() && arrived[1].len() == barrier_ranks => {
            let busiest = (0..barrier_ranks).map(|r| gpu[r] + opt_s[r]).fold(0.0, f64::max);
            r.max(busiest)
        }
        _ => 0.0,
    }
}
