//! Every-replica mode: the simulation runs one copy of the workload per data-parallel
//! replica instead of one representative for them all, so that what differs between
//! replicas (a slow GPU, a per-step slowdown on one GPU, a slow node) acts through the
//! real dependencies: each replica's pipeline runs at its own speed and the replicas meet
//! only where they really do, in the collectives they share (gradient reduction,
//! parameter gathers, the gradient-norm barrier, expert-parallel all-to-alls spanning
//! replicas). A replica is one GPU per tensor- and context-parallel rank of each stage:
//! those ranks synchronise at every layer's collectives, so the slowest sets their pace.
//! With skewed MoE routing each expert-parallel group draws its own tokens' routing
//! ([`routing_stream`]), so each step waits for the group whose draws were the slowest.
//!
//! Owns [`RankMode`] (`simulation.ranks`), the choice of the replicas simulated
//! ([`replica_count`]) and where they meet ([`sync_groups`]). On a symmetric cluster (and
//! balanced routing) the replicas are identical and every meeting is simultaneous, so the
//! result equals the representative mode's (a test holds it).

use super::ReplicaSet;
use crate::parallel::{Dim, ParallelPlan};
use crate::workload::{OpKind, Workload};
use serde::{Deserialize, Serialize};

/// Which ranks the simulation runs (`simulation.ranks`).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum RankMode {
    /// Every replica when stragglers break the replicas' symmetry and the operations fit
    /// `simulation.max_operations`, else one representative per stage.
    #[default]
    Auto,
    /// One representative rank per pipeline stage, standing for all its replicas (exact
    /// when they behave alike; a straggler slows the whole stage).
    Representative,
    /// Every data-parallel replica of every stage.
    EveryReplica,
}

impl RankMode {
    /// Every mode, in declaration order.
    pub const ALL: [RankMode; 3] = [RankMode::Auto, RankMode::Representative, RankMode::EveryReplica];

    /// Scenario names, in [`RankMode::ALL`]'s order.
    pub const NAMES: [&'static str; 3] = ["auto", "representative", "every_replica"];

    /// The mode's scenario name.
    pub fn name(self) -> &'static str {
        Self::NAMES[self as usize]
    }

    /// The mode named `name`.
    pub fn from_name(name: &str) -> Option<RankMode> {
        Self::NAMES.iter().position(|n| *n == name).map(|i| Self::ALL[i])
    }
}

/// The replicas to simulate of a plan of `dp` data-parallel replicas: all in
/// every-replica mode (and in auto mode when `asymmetric` and `base_operations * dp` fit
/// `max_operations`), else 1.
/// `required`: only every replica can simulate the plan (mixed replicas): all, whatever
/// the budget (which then refuses the run if they do not fit).
pub fn replica_count(
    mode: RankMode,
    dp: u32,
    asymmetric: bool,
    required: bool,
    base_operations: u64,
    max_operations: u64,
) -> u32 {
    let dp = dp.max(1);
    match mode {
        RankMode::Representative => 1,
        RankMode::EveryReplica => dp,
        RankMode::Auto if required => dp,
        RankMode::Auto => {
            let fits = base_operations.saturating_mul(u64::from(dp)) <= max_operations;
            if asymmetric && dp > 1 && fits {
                dp
            } else {
                1
            }
        }
    }
}

/// The consecutive replicas (of `replicas`) that one expert-parallel group spans:
/// `ep * expert_tp / (tp * cp)` of them, 1 when a replica holds whole groups, or all when
/// that does not divide them.
pub fn ep_replicas(plan: &ParallelPlan, replicas: u32) -> u32 {
    let per_replica = u64::from(plan.tp.max(1)) * u64::from(plan.cp.max(1));
    let ep_ranks = u64::from(plan.ep.max(1)) * u64::from(plan.expert_tp.max(1));
    if ep_ranks <= per_replica {
        1
    } else {
        let k = (ep_ranks / per_replica) as u32;
        if ep_ranks % per_replica == 0 && replicas % k == 0 {
            k
        } else {
            replicas.max(1)
        }
    }
}

/// Routing streams every-replica mode draws at most: expert-parallel groups past this
/// many reuse the streams in turn (each stream is one workload built and held).
pub const MAX_ROUTING_STREAMS: u32 = 16;

/// The routing stream of replica `r` of `replicas` when `routed` (a MoE model whose
/// routing is not balanced): its expert-parallel group's, each group drawing the tokens
/// its own micro-batches route (0, the representative's, for the first group; cyclic past
/// [`MAX_ROUTING_STREAMS`]). Always 0 when not `routed`.
pub fn routing_stream(plan: &ParallelPlan, replicas: u32, routed: bool, r: u32) -> u32 {
    if routed {
        r / ep_replicas(plan, replicas) % MAX_ROUTING_STREAMS
    } else {
        0
    }
}

/// The routing seed of stream `k` of a run seeded `seed`: the run's own for stream 0.
pub fn routing_seed(seed: u64, k: u32) -> u64 {
    if k == 0 {
        seed
    } else {
        crate::engine::rng::derive_seed(seed, "routing-group", u64::from(k))
    }
}

/// Where `replicas` copies of `w` meet: per op, the number of consecutive replicas whose
/// copies start together (1: the op stays within its replica).
///
/// The data-parallel collectives (gradients, parameters, expert-data-parallel, the
/// in-node hpZ group) span every replica of a stage (for the in-node and expert groups,
/// which span fewer, a slight over-synchronisation, exact when the replicas are alike);
/// an expert-parallel collective or all-to-all spans the replicas of its EP group
/// ([`ep_replicas`]).
pub fn sync_groups(w: &Workload, plan: &ParallelPlan, replicas: u32) -> Vec<u32> {
    let ep_replicas = ep_replicas(plan, replicas);
    w.ops
        .iter()
        .map(|op| match op.kind {
            OpKind::Collective { dim, .. } => match dim {
                Dim::Dp | Dim::DpCp | Dim::DpNode | Dim::ExpertDp => replicas,
                Dim::Ep => ep_replicas,
                Dim::Tp | Dim::Cp | Dim::CpA2a | Dim::Etp | Dim::Pp => 1,
            },
            OpKind::AllToAll { .. } => ep_replicas,
            _ => 1,
        })
        .collect()
}

/// The replica set of `w` for `replicas` replicas, all running `w`.
pub fn replica_set(w: &Workload, plan: &ParallelPlan, replicas: u32) -> ReplicaSet {
    ReplicaSet {
        count: replicas.max(1),
        sync_group: if replicas > 1 {
            sync_groups(w, plan, replicas)
        } else {
            Vec::new()
        },
        variants: Vec::new(),
        variant_sync: Vec::new(),
        variant_of: Vec::new(),
    }
}

impl ReplicaSet {
    /// Adds `v`, the workload of replicas on other GPUs than `base`'s or with another
    /// number of micro-batches: the same ranks, meeting the other replicas in the same
    /// collectives (rank by rank, in program order; [`super::graph::meetings`]). Refused
    /// otherwise (per-micro-batch collectives across replicas: ZeRO-3 gathers, or expert
    /// parallelism spanning replicas, with other micro-batch counts).
    pub fn add_variant(&mut self, v: Workload, base: &Workload, plan: &ParallelPlan) -> Result<(), super::SimError> {
        let sync = sync_groups(&v, plan, self.count);
        let same = v.ranks.len() == base.ranks.len()
            && v.iterations == base.iterations
            && super::graph::meetings(&v, &sync).0 == super::graph::meetings(base, &self.sync_group).0;
        if !same {
            return Err(super::SimError::Unsupported {
                what: "data-parallel replicas whose workloads meet in different collectives (with other micro-batch \
                       counts: ZeRO-3 parameter gathers per micro-batch, or expert parallelism across replicas); \
                       every member of a NCCL communicator must call its collectives as often as the others, so a \
                       real run of this split would hang at the first collective a replica skips: use an even \
                       micro-batch split (parallel.replica_micro_batches = \"even\"), or give the faster GPUs more \
                       layers (parallel.stage_layers) instead"
                    .into(),
            });
        }
        self.variants.push(v);
        self.variant_sync.push(sync);
        Ok(())
    }

    /// The workload replica `r` runs: `base`, or its variant.
    #[inline]
    pub fn workload_of<'a>(&'a self, r: u32, base: &'a Workload) -> &'a Workload {
        match self.variant_of.get(r as usize) {
            Some(&v) if v > 0 => &self.variants[v as usize - 1],
            _ => base,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn auto_simulates_every_replica_only_when_asymmetric_and_within_budget() {
        let plan = 8;
        assert_eq!(replica_count(RankMode::Auto, plan, false, false, 100, 10_000), 1);
        assert_eq!(replica_count(RankMode::Auto, plan, true, false, 100, 10_000), 8);
        assert_eq!(replica_count(RankMode::Auto, plan, true, false, 2_000, 10_000), 1);
        assert_eq!(
            replica_count(RankMode::EveryReplica, plan, false, false, 2_000, 10_000),
            8
        );
        assert_eq!(replica_count(RankMode::Auto, plan, true, true, 2_000, 10_000), 8);
        assert_eq!(replica_count(RankMode::Representative, plan, true, false, 1, 10_000), 1);
        for (i, n) in RankMode::NAMES.iter().enumerate() {
            assert_eq!(RankMode::from_name(n), Some(RankMode::ALL[i]));
            assert_eq!(RankMode::ALL[i].name(), *n);
            // the scenario name is the serde name
            assert_eq!(serde_json::to_value(RankMode::ALL[i]).unwrap(), *n);
        }
        assert_eq!(RankMode::from_name("every_gpu"), None);
    }
}
