//! Plan search: enumerate the parallel plans of a model on a cluster, drop the impossible
//! and those that do not fit in memory, rank the rest by a cheap lower bound on step time,
//! and simulate in bound order until no unsimulated plan can beat the N-th best: the
//! discrete-event simulation decides the ranking, the bound only decides what need not be
//! simulated (branch and bound, exact for the objective).
//!
//! Space: TP in the divisors of the node size, PP up to 64 dividing the layers (or the
//! layers + 2 with Megatron's embedding/loss split), DP derived, micro-batch 1/2/4,
//! virtual stages 1/2/3/4/6, recomputation none/selective/full, ZeRO stages as asked.
//!
//! Bound: a pipeline stage must run its compute for every micro-batch, and the pipeline
//! must fill and drain: `T >= c_max * m + c_min * (p - 1) / v + optimizer`, with `c_max`
//! and `c_min` the compute time of one micro-batch on the busiest and the lightest stage
//! (communication excluded, so it is a true lower bound; a test checks it against the
//! simulation).

use crate::parallel::{ParallelPlan, Recompute, Schedule};
use crate::simulation::{self, RunInput, RunResult};
use crate::workload::costs::{compute_time_s, embedding_and_head_steps, layer_steps, optimizer_time_s};
use crate::workload::memory::memory_per_gpu;
use rayon::prelude::*;

/// Status of one candidate plan.
#[derive(Clone, Debug, PartialEq)]
pub enum Status {
    /// Not a valid plan (reason).
    Invalid(String),
    /// Valid but does not fit (GiB needed).
    OutOfMemory(f64),
    /// Not simulated: its lower bound (s) cannot beat the N-th best.
    Pruned(f64),
    /// Simulated.
    Simulated(Box<RunResult>),
}

/// One candidate.
#[derive(Clone, Debug)]
pub struct Candidate {
    /// The plan.
    pub plan: ParallelPlan,
    /// Lower bound on step time, s (0 when invalid).
    pub bound_s: f64,
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
    /// Iterations simulated per plan (warm-up included).
    pub iterations: u32,
}

/// What a search did.
#[derive(Clone, Debug)]
pub struct SearchOutcome {
    /// Every candidate, best simulated first, then pruned by bound, then infeasible.
    pub candidates: Vec<Candidate>,
    /// Candidates enumerated.
    pub enumerated: usize,
    /// Candidates that are valid and fit.
    pub feasible: usize,
    /// Candidates simulated.
    pub simulated: usize,
}

fn divisors_up_to(n: u32, max: u32) -> Vec<u32> {
    (1..=n.min(max)).filter(|d| n % d == 0).collect()
}

/// Enumerates plans for `base` (its model, cluster and batch; its plan gives the defaults
/// of fields the search does not vary).
pub fn enumerate(base: &RunInput, zero_stages: &[u32]) -> Vec<ParallelPlan> {
    let c = &base.cluster;
    let m = &base.model;
    let mut out = Vec::new();
    for tp in divisors_up_to(c.gpus_per_node, 64) {
        for pp in 1..=64u32.min(m.num_layers) {
            if c.num_gpus % (tp * pp) != 0 {
                continue;
            }
            let dp = c.num_gpus / (tp * pp);
            for split in [false, true] {
                if split && (pp == 1 || (m.num_layers) % pp == 0) {
                    continue; // the split only helps where an even split fails
                }
                for v in [1u32, 2, 3, 4, 6] {
                    if v > 1 && pp == 1 {
                        continue;
                    }
                    for mbs in [1u32, 2, 4] {
                        for recompute in [Recompute::None, Recompute::Selective, Recompute::Full] {
                            for &zero in zero_stages {
                                out.push(ParallelPlan {
                                    tp,
                                    pp,
                                    dp,
                                    sequence_parallel: tp > 1,
                                    schedule: if v > 1 {
                                        Schedule::Interleaved
                                    } else {
                                        Schedule::OneFOneB
                                    },
                                    virtual_stages: v,
                                    micro_batch_size: mbs,
                                    zero_stage: zero,
                                    recompute,
                                    pipeline_split_embedding_and_loss: split,
                                    ..base.plan.clone()
                                });
                            }
                        }
                    }
                }
            }
        }
    }
    out
}

/// Lower bound on the step time of `plan`, seconds.
pub fn lower_bound_s(base: &RunInput, plan: &ParallelPlan) -> f64 {
    let g = &base.cluster.gpu;
    let m = &base.model;
    let t = &base.training;
    let layer = layer_steps(g, m, plan, t.precision, t.seq_length, t.flash_attention);
    let (emb, head) = embedding_and_head_steps(g, m, plan, t.seq_length);
    let per_layer = compute_time_s(&layer.forward) + compute_time_s(&layer.backward);
    let chunks = plan.layers_per_chunk(m.num_layers);
    let pp = plan.pp as usize;
    let mut busiest = 0.0f64;
    let mut lightest = f64::INFINITY;
    for s in 0..pp {
        let mut c: f64 = (0..plan.virtual_stages as usize)
            .map(|v| chunks[v * pp + s] as f64 * per_layer)
            .sum();
        if s == 0 {
            c += compute_time_s(&emb.forward) + compute_time_s(&emb.backward);
        }
        if s == pp - 1 {
            c += compute_time_s(&head.forward) + compute_time_s(&head.backward);
        }
        busiest = busiest.max(c);
        lightest = lightest.min(c);
    }
    let nmb = plan.num_microbatches(t.global_batch_size) as f64;
    let fill = (plan.pp as f64 - 1.0) / plan.virtual_stages as f64;
    let params_local =
        m.total_params() / (plan.tp * plan.pp) as f64 / if plan.zero_stage >= 1 { plan.dp as f64 } else { 1.0 };
    busiest * nmb + lightest * fill + optimizer_time_s(g, params_local)
}

/// Runs the search.
pub fn search(base: &RunInput, opts: &SearchOptions) -> SearchOutcome {
    let plans = enumerate(base, &opts.zero_stages);
    let enumerated = plans.len();
    let c = &base.cluster;
    let t = &base.training;
    // screen: validity, memory, bound (cheap, parallel, order kept)
    let mut cands: Vec<Candidate> = plans
        .into_par_iter()
        .map(|plan| {
            if let Err(e) = plan.validate(&base.model, c.num_gpus, c.gpus_per_node, t.global_batch_size) {
                return Candidate {
                    plan,
                    bound_s: 0.0,
                    status: Status::Invalid(e.to_string()),
                };
            }
            let mem = memory_per_gpu(&base.model, &plan, t, c.gpu.hbm_capacity_gib);
            if !mem.fits {
                return Candidate {
                    plan,
                    bound_s: 0.0,
                    status: Status::OutOfMemory(mem.total_gib),
                };
            }
            let bound_s = lower_bound_s(base, &plan);
            Candidate {
                plan,
                bound_s,
                status: Status::Pruned(bound_s),
            }
        })
        .collect();
    let mut feasible_idx: Vec<usize> = (0..cands.len())
        .filter(|&i| matches!(cands[i].status, Status::Pruned(_)))
        .collect();
    feasible_idx.sort_by(|&a, &b| cands[a].bound_s.total_cmp(&cands[b].bound_s).then(a.cmp(&b)));
    let feasible = feasible_idx.len();
    // simulate in bound order, a batch at a time, until the bound passes the N-th best
    let batch = (rayon::current_num_threads() * 2).max(4);
    let mut best: Vec<f64> = Vec::new();
    let mut simulated = 0;
    let mut pos = 0;
    while pos < feasible_idx.len() {
        let nth = if best.len() >= opts.top.max(1) {
            best[opts.top.max(1) - 1]
        } else {
            f64::INFINITY
        };
        if cands[feasible_idx[pos]].bound_s >= nth {
            break;
        }
        let end = (pos + batch).min(feasible_idx.len());
        let ids: Vec<usize> = feasible_idx[pos..end]
            .iter()
            .copied()
            .filter(|&i| cands[i].bound_s < nth)
            .collect();
        let results: Vec<(usize, Status)> = ids
            .par_iter()
            .map(|&i| {
                let mut input = base.clone();
                input.plan = cands[i].plan.clone();
                input.iterations = opts.iterations;
                input.warmup_iterations = input.warmup_iterations.min(opts.iterations - 1);
                let st = match simulation::run(&input) {
                    Ok(r) => Status::Simulated(Box::new(r)),
                    Err(e) => Status::Invalid(e.to_string()),
                };
                (i, st)
            })
            .collect();
        for (i, st) in results {
            if let Status::Simulated(r) = &st {
                best.push(r.step_time_s);
                simulated += 1;
            }
            cands[i].status = st;
        }
        best.sort_by(f64::total_cmp);
        pos = end;
    }
    // order: simulated by step time, then pruned by bound, then the rest (stable)
    let key = |c: &Candidate| match &c.status {
        Status::Simulated(r) => (0, r.step_time_s),
        Status::Pruned(b) => (1, *b),
        Status::OutOfMemory(g) => (2, *g),
        Status::Invalid(_) => (3, 0.0),
    };
    cands.sort_by(|a, b| {
        let (ka, kb) = (key(a), key(b));
        ka.0.cmp(&kb.0).then(ka.1.total_cmp(&kb.1))
    });
    SearchOutcome {
        candidates: cands,
        enumerated,
        feasible,
        simulated,
    }
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

    /// The bound never exceeds the simulated step time, and branch and bound finds the
    /// same best plan as simulating every feasible candidate.
    #[test]
    fn bound_is_a_lower_bound_and_pruning_keeps_the_optimum() {
        let base = Scenario::from_source(SRC, Path::new("s.toml")).unwrap().input;
        let opts = SearchOptions {
            top: 1,
            zero_stages: vec![1],
            iterations: 2,
        };
        let pruned = search(&base, &opts);
        let all = search(
            &base,
            &SearchOptions {
                top: usize::MAX,
                ..opts
            },
        );
        assert!(
            pruned.simulated < all.simulated,
            "{} vs {}",
            pruned.simulated,
            all.simulated
        );
        for c in &all.candidates {
            if let Status::Simulated(r) = &c.status {
                assert!(
                    c.bound_s <= r.step_time_s * (1.0 + 1e-9),
                    "{}: bound {} > {}",
                    r.plan,
                    c.bound_s,
                    r.step_time_s
                );
            }
        }
        let best = |o: &SearchOutcome| match &o.candidates[0].status {
            Status::Simulated(r) => (r.plan.clone(), r.step_time_s),
            _ => panic!("no simulated plan"),
        };
        assert_eq!(best(&pruned), best(&all));
    }
}
