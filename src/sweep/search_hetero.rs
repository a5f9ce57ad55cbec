//! Plan search on a cluster of several GPU groups ([`crate::hardware::ClusterSpec::groups`]).
//!
//! Owns what the search adds there: the assignments searched beyond the homogeneous plan
//! space (each plan also with its layers balanced over the stages' GPUs,
//! `stage_layers = "balanced"`, and its micro-batches balanced over the replicas' GPUs,
//! `replica_micro_batches = "balanced"`), the plans a cluster cannot take (a replica
//! straddling two groups), and bounds that stay lower bounds: the least of the homogeneous
//! bounds over the cluster's GPU types, each on one fabric at the fastest NIC. Replacing
//! every GPU by the fastest type, and every link by the fastest, can only shorten the step
//! (with the same layer and micro-batch split: the faster replicas' share is the slowest to
//! run there), as long as that type is at least as fast at every kernel, which holds for
//! real GPU generations; the least over the types is then at most the fastest type's.

use crate::hardware::ClusterSpec;
use crate::parallel::{LayerSplit, ParallelPlan};
use crate::simulation::input::mixed_replicas;
use crate::simulation::RunInput;

/// The homogeneous stand-ins whose bounds bound a plan on `base`'s cluster: `base` itself
/// on one GPU type; else one per GPU type, every GPU of that type behind the fastest
/// group's NICs and NVLink efficiency, with no slower cross-group fabric.
pub(super) fn bound_bases(base: &RunInput) -> Vec<RunInput> {
    let c = &base.cluster;
    if !c.is_heterogeneous() {
        return vec![base.clone()];
    }
    let nic = c
        .groups
        .iter()
        .map(|g| g.nic_gbit_per_s)
        .fold(c.nic_gbit_per_s, f64::max);
    let up = (c.groups.iter())
        .map(|g| g.scale_up_efficiency)
        .fold(c.scale_up_efficiency, f64::max);
    let mut out: Vec<RunInput> = Vec::new();
    for g in &c.groups {
        if out.iter().any(|b| b.cluster.gpu == g.gpu) {
            continue;
        }
        let cluster = ClusterSpec {
            gpu: g.gpu.clone(),
            nic_gbit_per_s: nic,
            scale_up_efficiency: up,
            groups: Vec::new(),
            cross_group_gbit_per_s: 0.0,
            ..c.clone()
        };
        out.push(RunInput {
            cluster,
            ..base.clone()
        });
    }
    out
}

/// The least of `bound` over `bases` ([`bound_bases`]).
pub(super) fn least(bases: &[RunInput], bound: impl Fn(&RunInput) -> f64) -> f64 {
    bases.iter().map(bound).fold(f64::INFINITY, f64::min)
}

/// The least of an optional `bound` over `bases`: `None` (no information) when one of
/// them has none.
pub(super) fn least_of_some(bases: &[RunInput], bound: impl Fn(&RunInput) -> Option<f64>) -> Option<f64> {
    bases
        .iter()
        .map(bound)
        .try_fold(f64::INFINITY, |m, b| b.map(|b| m.min(b)))
}

/// Why `plan` cannot run on `cluster`'s groups: a data-parallel replica of a stage (its
/// `tp * cp` GPUs, the innermost dimensions of the rank order) straddling two groups.
pub(super) fn straddles_groups(cluster: &ClusterSpec, plan: &ParallelPlan) -> Option<String> {
    let replica = u64::from(plan.tp.max(1)) * u64::from(plan.cp.max(1));
    cluster.group_cutting_runs_of(replica).map(|(i, end)| {
        format!(
            "a data-parallel replica of tp*cp = {replica} GPUs would straddle GPU groups (group '{}' ends at GPU \
             {end})",
            cluster.groups[i].name
        )
    })
}

/// `plans` and, on a cluster of several GPU groups, each also with its layers balanced
/// over its stages' GPUs (when that split differs from the plan's) and, where a stage's
/// replicas sit on different groups, each of those also with its micro-batches balanced
/// over the replicas (when that split is not even and the schedule runs it).
pub(super) fn with_assignments(base: &RunInput, plans: Vec<ParallelPlan>) -> Vec<ParallelPlan> {
    let c = &base.cluster;
    if !c.is_heterogeneous() {
        return plans;
    }
    let (m, t) = (&base.model, &base.training);
    let mut out = Vec::with_capacity(plans.len() * 2);
    for plan in plans {
        let mut layered = vec![plan.clone()];
        if plan.pp > 1 && straddles_groups(c, &plan).is_none() {
            if let Some(split) = crate::scenario::balanced_stage_layers(&plan, c, m, t) {
                let balanced = ParallelPlan {
                    layer_split: LayerSplit {
                        stages: Some(split),
                        ..LayerSplit::default()
                    },
                    ..plan.clone()
                };
                // (on stages of one speed it is the plan's own split)
                let chunks = |p: &ParallelPlan| p.try_layers_per_chunk(m.num_layers).ok();
                if chunks(&balanced).is_some() && chunks(&balanced) != chunks(&plan) {
                    layered.push(balanced);
                }
            }
        }
        for p in layered {
            let batches = (mixed_replicas(c, &p) && straddles_groups(c, &p).is_none())
                .then(|| crate::scenario::balanced_replica_batches(&p, c, m, t))
                .flatten();
            let balanced = batches.map(|b| ParallelPlan {
                replica_micro_batches: Some(b),
                ..p.clone()
            });
            out.push(p);
            out.extend(balanced);
        }
    }
    out
}
