//! Plan search: enumerate the parallel plans of a model on a cluster, drop the impossible
//! and those that do not fit in memory, and find the best by an objective (throughput,
//! time to target, cost or energy) with the discrete-event simulation deciding the
//! ranking; lower bounds only decide what need not be simulated (branch and bound, exact
//! for the objective).
//!
//! Space: TP in the divisors of the node size, PP up to 64 (layers that do not divide get
//! Megatron's uneven first/last stages), context parallelism CP in
//! [`SearchOptions::cps`] (by default 1, and 1 to 32 for sequences of 16K tokens or more or
//! a scenario that already uses CP; the scenario's `cp_comm_type` and load balancing), DP
//! derived, expert parallelism EP
//! (Mixture-of-Experts models: the divisors of the expert count that divide `tp * dp`;
//! 1 for dense models), the pipeline schedule (1F1B, interleaved with virtual stages
//! 2/3/4/6, ZB-H1, ZB-H2, ZB-V, DualPipe, DualPipeV), the layer split (the default, and
//! Megatron's embedding/loss accounting where it divides), micro-batch 1/2/4,
//! recomputation none/selective/full, ZeRO stages as asked.
//!
//! Two bounds on the steady-state step time ([`super::search_bounds`]): a cheap one from
//! the per-layer costs (compute and blocking TP collectives of the busiest stage, pipeline
//! fill, optimizer; for zero-bubble and DualPipe schedules the busy time alone, tightened
//! with a pass-level run of the programs when the candidate comes up) orders the
//! candidates; a tight one (the operation graph timed without
//! network contention, about a tenth of a simulation) is computed for each candidate the
//! cheap bound cannot rule out, and only those it cannot rule out either are simulated.
//! Candidates go in fixed-size batches (the batch size does not depend on the thread
//! count), so the same candidates are simulated and the output is identical for any
//! number of threads.
//!
//! Objectives other than throughput scale the step time through the training outcome
//! (`[target]`, `[reliability]`, `[energy]`); their bound is the step-time bound times the
//! smallest factor the objective can have per second of step (goodput at most 1; GPU
//! power at least the lowest power level of `[energy]`).

pub use super::search_bounds::{contention_free_step_s, lower_bound_s, tightened_bound_s};
use crate::network::Dispatcher;
use crate::parallel::{LayerSplit, ParallelPlan, Recompute, Schedule};
use crate::simulation::{self, RunInput, RunResult};
use crate::workload::memory::memory_per_gpu;
use rayon::prelude::*;
use std::collections::BTreeSet;

/// What the search minimises.
#[derive(Clone, Copy, Debug, PartialEq, Eq, clap::ValueEnum)]
pub enum Objective {
    /// Step time (the batch is fixed, so this maximises tokens/s).
    Throughput,
    /// Wall-clock to the scenario's `[target]`, days (failures included with `[reliability]`).
    #[value(name = "time_to_target")]
    TimeToTarget,
    /// Price of the GPU-hours to the target, USD.
    Cost,
    /// Facility energy to the target, kWh.
    Energy,
}

impl Objective {
    /// Name as written on the command line.
    pub fn name(self) -> &'static str {
        match self {
            Objective::Throughput => "throughput",
            Objective::TimeToTarget => "time_to_target",
            Objective::Cost => "cost",
            Objective::Energy => "energy",
        }
    }

    /// Column name (with unit) of the objective's value.
    pub fn column(self) -> &'static str {
        match self {
            Objective::Throughput => "step_time_s",
            Objective::TimeToTarget => "time_to_target_days",
            Objective::Cost => "cost_usd",
            Objective::Energy => "energy_to_target_kwh",
        }
    }

    /// The objective's value for a simulated plan (lower is better); infinite when the
    /// result has no training outcome.
    pub fn value(self, r: &RunResult) -> f64 {
        let to = r.to_target.as_ref();
        match self {
            Objective::Throughput => Some(r.step_time_s),
            Objective::TimeToTarget => to.map(|t| t.wall_clock_to_target_days),
            Objective::Cost => to.map(|t| t.energy.cost_usd),
            Objective::Energy => to.map(|t| t.energy.energy_to_target_kwh),
        }
        .unwrap_or(f64::INFINITY)
    }

    /// Objective per second of step time, at least (see the module docs); from any
    /// simulated result of the search (`None` without a training outcome).
    fn floor_per_step_s(self, base: &RunInput, r: &RunResult) -> Option<f64> {
        if self == Objective::Throughput {
            return Some(1.0);
        }
        let to = r.to_target.as_ref()?;
        let goal = base.goal.as_ref()?;
        let c = &base.cluster;
        let steps = to.steps_to_target;
        Some(match self {
            Objective::Throughput => 1.0,
            Objective::TimeToTarget => steps / 86_400.0,
            Objective::Cost => steps * c.num_gpus as f64 / 3600.0 * goal.energy.gpu_hour_usd,
            Objective::Energy => {
                let e = &goal.energy;
                let f = e
                    .compute_power_fraction
                    .min(e.comm_power_fraction)
                    .min(e.idle_power_fraction);
                let other = crate::training::energy::other_it_power_w(e, c.num_nodes(), c.nics_per_node);
                e.pue * steps * (c.num_gpus as f64 * c.mean_over_gpus(|g| g.tdp_w) * f + other) / 3.6e6
            }
        })
        .filter(|k| k.is_finite() && *k >= 0.0)
    }
}

/// Status of one candidate plan.
#[derive(Clone, Debug, PartialEq)]
pub enum Status {
    /// Not a valid plan (reason).
    Invalid(String),
    /// Valid but does not fit (GiB needed).
    OutOfMemory(f64),
    /// Not simulated: its cheap bound (step time, s) shows it cannot beat the N-th best.
    Pruned(f64),
    /// Not simulated: its contention-free step time (s) shows it cannot beat the N-th best.
    PrunedContentionFree(f64),
    /// Simulated.
    Simulated(Box<RunResult>),
}

impl Status {
    /// Short name for tables.
    pub fn name(&self) -> &'static str {
        match self {
            Status::Invalid(_) => "invalid",
            Status::OutOfMemory(_) => "out_of_memory",
            Status::Pruned(_) => "pruned_by_bound",
            Status::PrunedContentionFree(_) => "pruned_by_contention_free_bound",
            Status::Simulated(_) => "simulated",
        }
    }
}

/// One candidate.
#[derive(Clone, Debug)]
pub struct Candidate {
    /// The plan.
    pub plan: ParallelPlan,
    /// Cheap lower bound on step time, s (0 when invalid or out of memory).
    pub bound_s: f64,
    /// Contention-free step time (a tighter lower bound), s, when computed.
    pub contention_free_s: Option<f64>,
    /// Memory of the most loaded GPU, GiB, and the GPU's capacity (valid plans).
    pub memory_gib: Option<(f64, f64)>,
    /// Outcome.
    pub status: Status,
}

/// Search limits.
#[derive(Clone, Debug)]
pub struct SearchOptions {
    /// Keep simulating until the N best are certain.
    pub top: usize,
    /// ZeRO stages to consider.
    pub zero_stages: Vec<u32>,
    /// Iterations simulated per plan (warm-up included; the first is the warm-up).
    pub iterations: u32,
    /// What to minimise.
    pub objective: Objective,
    /// Use the contention-free bound (off: the cheap bound alone, as a reference).
    pub contention_free_bound: bool,
    /// Context-parallel degrees to consider; empty: [`default_cps`].
    pub cps: Vec<u32>,
}

/// Context-parallel degrees the search considers by default: 1, 2, 4, 8, 16, 32 for a long
/// sequence (16K tokens or more) or a scenario that already uses CP, else 1 only.
pub fn default_cps(base: &RunInput) -> Vec<u32> {
    if base.training.seq_length >= 16384 || base.plan.cp > 1 {
        vec![1, 2, 4, 8, 16, 32]
    } else {
        vec![1]
    }
}

impl Default for SearchOptions {
    fn default() -> Self {
        SearchOptions {
            top: 5,
            zero_stages: vec![1],
            iterations: 2,
            objective: Objective::Throughput,
            contention_free_bound: true,
            cps: Vec::new(),
        }
    }
}

/// What a search did.
#[derive(Clone, Debug)]
pub struct SearchOutcome {
    /// Every candidate: simulated best first, then pruned (by bound), then infeasible.
    pub candidates: Vec<Candidate>,
    /// The objective ranked by.
    pub objective: Objective,
    /// Candidates enumerated.
    pub enumerated: usize,
    /// Candidates that are valid and fit.
    pub feasible: usize,
    /// Candidates whose contention-free bound was computed.
    pub bounded: usize,
    /// Candidates simulated.
    pub simulated: usize,
}

/// A search that cannot run (the message says why and what to do).
#[derive(Debug, thiserror::Error)]
#[error("{0}")]
pub struct SearchError(pub String);

/// Candidates per batch: fixed, so the simulated set does not depend on the thread count.
const BATCH: usize = 16;

fn divisors_up_to(n: u32, max: u32) -> Vec<u32> {
    (1..=n.min(max)).filter(|d| n % d == 0).collect()
}

/// Enumerates plans for `base` (its model, cluster and batch; its plan gives the defaults
/// of fields the search does not vary) over the context-parallel degrees `cps`.
pub fn enumerate(base: &RunInput, zero_stages: &[u32], cps: &[u32]) -> Vec<ParallelPlan> {
    let c = &base.cluster;
    let m = &base.model;
    let mut out = Vec::new();
    for tp in divisors_up_to(c.gpus_per_node, 64) {
        for (pp, cp) in (1..=64u32.min(m.num_layers)).flat_map(|pp| cps.iter().map(move |&cp| (pp, cp.max(1)))) {
            if c.num_gpus % (tp * pp * cp) != 0 {
                continue;
            }
            let dp = c.num_gpus / (tp * pp * cp);
            // expert parallelism, and expert tensor parallelism inside the TP group's size
            // (Megatron's default is ETP = TP) where the dispatcher can run it
            let etps = match &m.moe {
                Some(moe) if base.routing.dispatcher == Dispatcher::AllToAll => divisors_up_to(tp, tp)
                    .into_iter()
                    .filter(|etp| moe.expert_ffn_hidden_size % etp == 0)
                    .collect(),
                _ => vec![1],
            };
            let eps: Vec<(u32, u32)> = match &m.moe {
                Some(moe) => divisors_up_to(moe.num_experts, moe.num_experts)
                    .into_iter()
                    .flat_map(|ep| etps.iter().map(move |&etp| (ep, etp)))
                    .filter(|(ep, etp)| (tp * dp) % (ep * etp) == 0)
                    .collect(),
                None => vec![(1, 1)],
            };
            for (ep, expert_tp) in eps {
                for split in [false, true] {
                    // Megatron's embedding/loss accounting, where it divides the layers
                    if split && (pp == 1 || (m.num_layers + 2) % pp != 0) {
                        continue;
                    }
                    for (schedule, v) in SCHEDULES {
                        if pp == 1 && (*schedule != Schedule::ONE_F_ONE_B || *v > 1) {
                            continue;
                        }
                        let shape_of = |split: bool| ParallelPlan {
                            pp,
                            schedule: *schedule,
                            virtual_stages: *v,
                            pipeline_split_embedding_and_loss: split,
                            layer_split: LayerSplit::default(),
                            ..base.plan.clone()
                        };
                        if split
                            && shape_of(true).try_layers_per_chunk(m.num_layers).ok()
                                == shape_of(false).try_layers_per_chunk(m.num_layers).ok()
                        {
                            continue; // impossible, or the same split as the default
                        }
                        for mbs in [1u32, 2, 4] {
                            for recompute in [Recompute::None, Recompute::Selective, Recompute::Full] {
                                for &zero in zero_stages {
                                    out.push(ParallelPlan {
                                        tp,
                                        pp,
                                        dp,
                                        cp,
                                        sequence_parallel: tp > 1,
                                        schedule: *schedule,
                                        virtual_stages: *v,
                                        micro_batch_size: mbs,
                                        zero_stage: zero,
                                        recompute,
                                        pipeline_split_embedding_and_loss: split,
                                        layer_split: LayerSplit::default(),
                                        replica_micro_batches: None,
                                        ep,
                                        expert_tp,
                                        ..base.plan.clone()
                                    });
                                }
                            }
                        }
                    }
                }
            }
        }
    }
    out
}

/// Schedules the search tries, with their virtual stages (GPipe is never better than
/// 1F1B at more memory; ZB-V and DualPipeV hold two chunks per stage by construction).
const SCHEDULES: &[(Schedule, u32)] = &[
    (Schedule::ONE_F_ONE_B, 1),
    (Schedule::INTERLEAVED, 2),
    (Schedule::INTERLEAVED, 3),
    (Schedule::INTERLEAVED, 4),
    (Schedule::INTERLEAVED, 6),
    (Schedule::ZERO_BUBBLE_H1, 1),
    (Schedule::ZERO_BUBBLE_H2, 1),
    (Schedule::ZERO_BUBBLE_V, 1),
    (Schedule::DUALPIPE, 1),
    (Schedule::DUALPIPE_V, 1),
];

/// A key ordering `x` as [`f64::total_cmp`] does.
fn order_key(x: f64) -> u64 {
    let b = x.to_bits();
    if b >> 63 == 1 {
        !b
    } else {
        b | 1 << 63
    }
}

/// Objective values of the simulated candidates, sorted; the N-th best or infinity.
struct Best {
    values: Vec<f64>,
    top: usize,
    /// Objective per second of step time, at least (known after the first simulation).
    floor_per_s: Option<f64>,
}

impl Best {
    fn nth(&self) -> f64 {
        self.values.get(self.top - 1).copied().unwrap_or(f64::INFINITY)
    }

    /// Whether a plan whose step time is at least `bound_s` can still be among the N best.
    fn may_win(&self, bound_s: f64) -> bool {
        let nth = self.nth();
        match self.floor_per_s {
            // a relative margin for the picosecond rounding of simulated durations
            Some(k) => k * bound_s * (1.0 - 1e-6) < nth,
            None => true,
        }
    }

    fn add(&mut self, v: f64) {
        let at = self.values.partition_point(|x| x.total_cmp(&v).is_le());
        self.values.insert(at, v);
    }
}

/// Runs the search. Fails when the objective needs a `[target]` the scenario lacks.
pub fn search(base: &RunInput, opts: &SearchOptions) -> Result<SearchOutcome, SearchError> {
    // the candidates of one scenario share its routing noise: drawn once per thread
    let _noise = crate::workload::routing::cache_noise();
    if opts.objective != Objective::Throughput && base.goal.is_none() {
        return Err(SearchError(format!(
            "--objective {} needs a [target] section in the scenario (tokens, steps or loss to train to; \
             see docs/scenario.md); --objective throughput does not",
            opts.objective.name()
        )));
    }
    let cps = if opts.cps.is_empty() {
        default_cps(base)
    } else {
        opts.cps.clone()
    };
    // on several GPU groups: also each plan's balanced layer and micro-batch splits, and
    // bounds from the homogeneous stand-ins ([`super::search_hetero`])
    let plans = super::search_hetero::with_assignments(base, enumerate(base, &opts.zero_stages, &cps));
    let bound_bases = super::search_hetero::bound_bases(base);
    let enumerated = plans.len();
    let c = &base.cluster;
    let t = &base.training;
    // screen: validity, memory, cheap bound (parallel, order kept)
    let mut cands: Vec<Candidate> = plans
        .into_par_iter()
        .map(|plan| {
            let valid = plan
                .validate(&base.model, c.num_gpus, c.gpus_per_node, t.global_batch_size)
                .and_then(|()| plan.validate_context(t.seq_length, t.flash_attention))
                .map_err(|e| e.to_string())
                .and_then(|()| super::search_hetero::straddles_groups(c, &plan).map_or(Ok(()), Err));
            if let Err(e) = valid {
                return Candidate {
                    plan,
                    bound_s: 0.0,
                    contention_free_s: None,
                    memory_gib: None,
                    status: Status::Invalid(e),
                };
            }
            let capacity_gib = crate::simulation::input::stage_hbm_gib(c, &plan);
            let mem = memory_per_gpu(&base.model, &plan, t, &capacity_gib);
            let memory_gib = Some((mem.total_gib, mem.capacity_gib));
            if !mem.fits {
                return Candidate {
                    plan,
                    bound_s: 0.0,
                    contention_free_s: None,
                    memory_gib,
                    status: Status::OutOfMemory(mem.total_gib),
                };
            }
            let bound_s = super::search_hetero::least(&bound_bases, |b| lower_bound_s(b, &plan));
            Candidate {
                plan,
                bound_s,
                contention_free_s: None,
                memory_gib,
                status: Status::Pruned(bound_s),
            }
        })
        .collect();
    // candidates by bound, lowest first (ties in enumeration order)
    let mut queue: BTreeSet<(u64, usize)> = (0..cands.len())
        .filter(|&i| matches!(cands[i].status, Status::Pruned(_)))
        .map(|i| (order_key(cands[i].bound_s), i))
        .collect();
    let feasible = queue.len();
    let mut tightened = vec![false; cands.len()];
    // the steady state is the second iteration (the first has no parameter gathers or
    // optimizer step before it): both bounds are bounds on it
    let mut input = base.clone();
    input.iterations = opts.iterations.max(2);
    input.warmup_iterations = 1;
    let use_tight = opts.contention_free_bound && base.stragglers.is_none();
    let mut best = Best {
        values: Vec::new(),
        top: opts.top.max(1),
        floor_per_s: None,
    };
    let (mut simulated, mut bounded) = (0, 0);
    loop {
        let mut ids = Vec::with_capacity(BATCH);
        while ids.len() < BATCH {
            match queue.first() {
                Some(&(_, i)) if best.may_win(cands[i].bound_s) => {
                    queue.pop_first();
                    ids.push(i);
                }
                _ => break,
            }
        }
        if ids.is_empty() {
            break;
        }
        // tightened when they first come up (schedules without a closed-form fill: the
        // pass-level run; MoE plans with skewed routing: their routing draws); back in
        // the queue with it
        let fresh: Vec<usize> = ids.iter().copied().filter(|&i| !tightened[i]).collect();
        let tighter: Vec<Option<f64>> = fresh
            .par_iter()
            .map(|&i| {
                super::search_hetero::least_of_some(&bound_bases, |b| {
                    tightened_bound_s(b, &cands[i].plan, input.iterations)
                })
            })
            .collect();
        for (&i, b) in fresh.iter().zip(tighter) {
            tightened[i] = true;
            if let Some(b) = b {
                let b = b.max(cands[i].bound_s);
                cands[i].bound_s = b;
                cands[i].status = Status::Pruned(b);
                ids.retain(|&j| j != i);
                queue.insert((order_key(b), i));
            }
        }
        if use_tight {
            let tight: Vec<f64> = ids
                .par_iter()
                .map(|&i| super::search_hetero::least(&bound_bases, |b| contention_free_step_s(b, &cands[i].plan)))
                .collect();
            bounded += ids.len();
            for (&i, &s) in ids.iter().zip(&tight) {
                cands[i].contention_free_s = Some(s);
                if !best.may_win(s) {
                    cands[i].status = Status::PrunedContentionFree(s);
                }
            }
            ids.retain(|&i| matches!(cands[i].status, Status::Pruned(_)));
        }
        let results: Vec<Status> = ids
            .par_iter()
            .map(|&i| {
                let mut one = input.clone();
                one.plan = cands[i].plan.clone();
                match simulation::run_summary(&one) {
                    Ok(r) => Status::Simulated(Box::new(r)),
                    Err(e) => Status::Invalid(e.to_string()),
                }
            })
            .collect();
        for (i, st) in ids.into_iter().zip(results) {
            if let Status::Simulated(r) = &st {
                if best.floor_per_s.is_none() {
                    best.floor_per_s = opts.objective.floor_per_step_s(base, r);
                }
                best.add(opts.objective.value(r));
                simulated += 1;
            }
            cands[i].status = st;
        }
    }
    // order: simulated by objective (then step time), then pruned by bound, then the rest
    // (stable: ties keep the enumeration order)
    let obj = opts.objective;
    let key = |c: &Candidate| match &c.status {
        Status::Simulated(r) => (0, obj.value(r), r.step_time_s),
        Status::PrunedContentionFree(b) => (1, *b, 0.0),
        Status::Pruned(b) => (2, *b, 0.0),
        Status::OutOfMemory(g) => (3, *g, 0.0),
        Status::Invalid(_) => (4, 0.0, 0.0),
    };
    cands.sort_by(|a, b| {
        let (ka, kb) = (key(a), key(b));
        ka.0.cmp(&kb.0).then(ka.1.total_cmp(&kb.1)).then(ka.2.total_cmp(&kb.2))
    });
    Ok(SearchOutcome {
        candidates: cands,
        objective: obj,
        enumerated,
        feasible,
        bounded,
        simulated,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::scenario::Scenario;
    use std::path::Path;

    const SRC: &str = r#"
[cluster]
num_gpus = 32
[cluster.gpu]
preset = "H100-SXM"
[model]
preset = "llama2-7b"
[parallel]
tp = 1
[training]
global_batch_size = 64
seq_length = 4096
"#;

    /// Llama-2 7B on 16 GPUs: a node of H100 then a node of A100.
    const TWO_TYPES: &str = r#"
[cluster]
num_gpus = 16
gpus_per_node = 8
[[cluster.groups]]
name = "h100"
num_gpus = 8
[cluster.groups.gpu]
preset = "H100-SXM"
[[cluster.groups]]
name = "a100"
num_gpus = 8
[cluster.groups.gpu]
preset = "A100-80GB"
[model]
preset = "llama2-7b"
[parallel]
tp = 1
[training]
global_batch_size = 32
seq_length = 2048
"#;

    fn opts(top: usize) -> SearchOptions {
        SearchOptions {
            top,
            zero_stages: vec![0, 1, 3],
            ..SearchOptions::default()
        }
    }

    /// The search of `src` for its best three, and the exhaustive one (every feasible plan
    /// simulated), which it must beat `prunes` times over in simulations: both bounds never
    /// exceed any simulated step time, and branch and bound finds the same best plans.
    /// Returns the exhaustive outcome.
    fn bounds_hold_and_pruning_keeps_the_optimum(src: &str, prunes: usize) -> SearchOutcome {
        let base = Scenario::from_source(src, Path::new("s.toml")).unwrap().input;
        let pruned = search(&base, &opts(3)).unwrap();
        let all = search(&base, &opts(usize::MAX)).unwrap();
        assert!(
            pruned.simulated * prunes < all.simulated,
            "{} vs {}",
            pruned.simulated,
            all.simulated
        );
        let mut checked = 0;
        for c in &all.candidates {
            if let Status::Simulated(r) = &c.status {
                let tight = c.contention_free_s.unwrap();
                assert!(
                    c.bound_s <= r.step_time_s * (1.0 + 1e-9),
                    "{}: bound {} > simulated {}",
                    r.plan,
                    c.bound_s,
                    r.step_time_s
                );
                assert!(
                    tight <= r.step_time_s * (1.0 + 1e-6),
                    "{}: contention-free {tight} > simulated {}",
                    r.plan,
                    r.step_time_s
                );
                checked += 1;
            }
        }
        assert!(checked > 50, "too few plans to tell: {checked}");
        let top = |o: &SearchOutcome| -> Vec<(String, f64)> {
            o.candidates[..3]
                .iter()
                .map(|c| match &c.status {
                    Status::Simulated(r) => (r.plan.clone(), r.step_time_s),
                    s => panic!("not simulated: {s:?}"),
                })
                .collect()
        };
        assert_eq!(top(&pruned), top(&all));
        all
    }

    /// One GPU type: the bounds hold and pruning keeps the optimum.
    #[test]
    fn bounds_are_lower_bounds_and_pruning_keeps_the_optimum() {
        bounds_hold_and_pruning_keeps_the_optimum(SRC, 3);
    }

    /// [`TWO_TYPES`]: the bounds (the least over the types' homogeneous bounds) hold and pruning keeps the optimum; both
    /// balanced splits are searched, and the best plan has one.
    #[test]
    fn on_two_gpu_types_the_bounds_hold_and_the_balanced_splits_are_searched() {
        let all = bounds_hold_and_pruning_keeps_the_optimum(TWO_TYPES, 2);
        let label = |c: &Candidate| crate::simulation::run::plan_label(&c.plan);
        assert!(
            all.candidates.iter().any(|c| label(c).contains("layers=")),
            "no balanced layer split"
        );
        assert!(
            all.candidates.iter().any(|c| label(c).contains("batches=")),
            "no balanced micro-batch split"
        );
        let best = label(&all.candidates[0]);
        assert!(best.contains("layers=") || best.contains("batches="), "{best}");
    }

    /// A cost objective without a [target] is refused with what to add.
    #[test]
    fn objectives_beyond_throughput_need_a_target() {
        let base = Scenario::from_source(SRC, Path::new("s.toml")).unwrap().input;
        let e = search(
            &base,
            &SearchOptions {
                objective: Objective::Cost,
                ..opts(1)
            },
        )
        .unwrap_err();
        assert!(e.0.contains("[target]"), "{e}");
    }
}
