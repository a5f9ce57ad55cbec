//! The typed inputs of one run ([`RunInput`]) and what follows from them alone: the
//! placement, the layouts the network needs, each stage's and each replica's GPUs, the
//! replicas to simulate and the operation graph.

use super::Layouts;
use crate::hardware::ClusterSpec;
use crate::model::TransformerSpec;
use crate::network::SendRoute;
use crate::parallel::{Dim, ParallelPlan, Placement};
use crate::training::TrainingSpec;
use crate::workload::wire::GradPhase;
use crate::workload::{self, WorkloadSpec};

/// Typed inputs of one run.
#[derive(Clone, Debug)]
pub struct RunInput {
    /// Name for reports.
    pub name: String,
    /// Seed of every random stream.
    pub seed: u64,
    /// Hardware.
    pub cluster: ClusterSpec,
    /// Model.
    pub model: TransformerSpec,
    /// Plan.
    pub plan: ParallelPlan,
    /// Batch, sequence, precision.
    pub training: TrainingSpec,
    /// Iterations simulated, warm-up included.
    pub iterations: u32,
    /// Leading iterations excluded from the statistics.
    pub warmup_iterations: u32,
    /// Training to a target (`[target]`, `[reliability]`, `[energy]`), if requested.
    pub goal: Option<crate::training::TrainingGoal>,
    /// Slow GPUs and per-step slowdowns (none by default).
    pub stragglers: super::stragglers::StragglerSpec,
    /// MoE token routing (`[moe]`; balanced and dropless by default).
    pub routing: crate::workload::routing::RoutingSpec,
    /// Collective algorithm per kind (`[cluster.network] *_algorithm`; rings by default).
    pub collectives: crate::network::algorithm::AlgorithmChoice,
    /// Element types on the wire and gradient compression (`[communication]`).
    pub comm: crate::workload::wire::CommSpec,
    /// Offloading to the host (`[offload]`, `[cluster.host]`).
    pub offload: crate::workload::offload::OffloadSpec,
    /// Operations the workload may hold (`simulation.max_operations`; see [`super::budget`]).
    pub max_operations: u64,
    /// Representative ranks or every data-parallel replica (`simulation.ranks`).
    pub ranks: super::replicas::RankMode,
}

impl RunInput {
    /// Data-parallel replicas the simulation runs ([`super::replicas::replica_count`]):
    /// every one when `simulation.ranks` asks, or in auto mode when stragglers make them
    /// differ and they fit the operation budget, or when they sit on different GPU types.
    pub fn replicas(&self) -> u32 {
        let mixed = self.mixed_replicas();
        super::replicas::replica_count(
            self.ranks,
            self.plan.dp,
            !self.stragglers.is_none() || mixed,
            mixed,
            super::budget::estimated_operations(self),
            self.max_operations,
        )
    }

    /// Where the plan's groups sit on this cluster.
    pub fn placement(&self) -> Placement {
        Placement::megatron(&self.plan, self.cluster.gpus_per_node)
    }

    /// Where the plan's groups sit, as the network needs it.
    pub fn layouts(&self, placement: Placement) -> Layouts {
        Layouts {
            placement,
            // adjacent stages are `stride` GPUs apart
            pp_route: SendRoute::between(
                &self.cluster,
                placement.pp_neighbours_share_node(),
                placement.stride_gpus[Dim::Pp],
            ),
            algorithms: self.collectives,
        }
    }

    /// The GPU of every pipeline stage: its GPU group's on a heterogeneous cluster (stage
    /// `s` holds GPUs `s * gpus_per_stage ..`), of its first replica when the stage's
    /// replicas sit on several groups ([`RunInput::mixed_replicas`]).
    pub fn stage_gpus(&self) -> Vec<crate::hardware::GpuSpec> {
        self.replica_stage_gpus(0)
    }

    /// The operation graph this input simulates, over `iterations` iterations (the
    /// compressed steps of a compressed run).
    pub fn workload(&self, placement: &Placement, iterations: u32) -> workload::Workload {
        self.workload_in(placement, iterations, GradPhase::Compressed)
    }

    /// The GPU of every pipeline stage in data-parallel replica `r` (replica `r` of stage
    /// `s` starts at GPU `s * gpus_per_stage + r * tp * cp`).
    pub fn replica_stage_gpus(&self, r: u32) -> Vec<crate::hardware::GpuSpec> {
        let stride = self.plan.gpus_per_stage();
        let replica = self.plan.tp.max(1).saturating_mul(self.plan.cp.max(1));
        (0..self.plan.pp)
            .map(|s| {
                let gpu = s.saturating_mul(stride).saturating_add(r.saturating_mul(replica));
                self.cluster.gpu_at(gpu).clone()
            })
            .collect()
    }

    /// The replicas `w` is simulated as ([`super::replicas::replica_set`]), with one
    /// workload per distinct set of stage GPUs, micro-batch count and routing stream when
    /// replicas differ in any (built like `w`, over `iterations` of `phase`). Replicas of
    /// a MoE model with skewed routing differ in their routing: each expert-parallel group
    /// draws its own ([`super::replicas::routing_stream`]), so the step waits for the
    /// group whose draws were the slowest.
    pub fn replica_set(
        &self,
        w: &workload::Workload,
        placement: &Placement,
        iterations: u32,
        phase: GradPhase,
        replicas: u32,
    ) -> Result<super::ReplicaSet, super::SimError> {
        let mut set = super::replicas::replica_set(w, &self.plan, replicas);
        let routed = self.model.moe.is_some() && !self.routing.is_balanced();
        if replicas <= 1 || !(routed || self.mixed_replicas()) {
            return Ok(set);
        }
        let gbs = self.training.global_batch_size;
        let kind_of = |r: u32, gpus: &[crate::hardware::GpuSpec]| {
            let names: Vec<String> = gpus.iter().map(|g| g.name.clone()).collect();
            let stream = super::replicas::routing_stream(&self.plan, replicas, routed, r);
            (names, self.plan.replica_microbatches(r, gbs), stream)
        };
        // `kinds[v]`: the stage GPUs and micro-batches of workload `v` (0: `w`, replica 0's)
        let mut kinds = vec![kind_of(0, &self.stage_gpus())];
        for r in 0..replicas {
            let gpus = self.replica_stage_gpus(r);
            let kind = kind_of(r, &gpus);
            let v = match kinds.iter().position(|k| *k == kind) {
                Some(v) => v,
                None => {
                    let seeded = RunInput {
                        seed: super::replicas::routing_seed(self.seed, kind.2),
                        ..self.clone()
                    };
                    let v = seeded.workload_of_replica(placement, iterations, phase, &gpus, kind.1);
                    set.add_variant(v, w, &self.plan)?;
                    kinds.push(kind);
                    kinds.len() - 1
                }
            };
            set.variant_of.push(v as u32);
        }
        Ok(set)
    }

    /// Whether the replicas differ: some stage's sit on different GPU groups (the scenario
    /// allows it when each replica lies in one group), or they run different numbers of
    /// micro-batches. Only every replica can simulate it.
    pub fn mixed_replicas(&self) -> bool {
        mixed_replicas(&self.cluster, &self.plan)
    }

    /// Each stage's GPU type on a heterogeneous cluster, "A100-80GB" or, for a stage whose
    /// replicas sit on several types, "H100-SXM/A100-80GB" (empty on one GPU type).
    pub fn stage_gpu_labels(&self) -> Vec<String> {
        if !self.cluster.is_heterogeneous() {
            return Vec::new();
        }
        let stride = self.plan.gpus_per_stage();
        (0..self.plan.pp)
            .map(|s| {
                let mut names: Vec<&str> = Vec::new();
                for g in self.cluster.gpus_in(s.saturating_mul(stride), stride) {
                    if !names.contains(&g.name.as_str()) {
                        names.push(&g.name);
                    }
                }
                names.join("/")
            })
            .collect()
    }

    /// Each stage's HBM capacity: of the smallest GPU among its replicas, GiB.
    pub fn stage_hbm_gib(&self) -> Vec<f64> {
        stage_hbm_gib(&self.cluster, &self.plan)
    }

    /// [`RunInput::workload`] for the steps of `phase` (replica 0's).
    pub fn workload_in(&self, placement: &Placement, iterations: u32, phase: GradPhase) -> workload::Workload {
        let m = self.plan.replica_microbatches(0, self.training.global_batch_size);
        self.workload_of_replica(placement, iterations, phase, &self.stage_gpus(), m)
    }

    /// [`RunInput::workload_on`] for a replica of `microbatches` micro-batches per step.
    fn workload_of_replica(
        &self,
        placement: &Placement,
        iterations: u32,
        phase: GradPhase,
        stage_gpus: &[crate::hardware::GpuSpec],
        microbatches: u32,
    ) -> workload::Workload {
        let p = &self.plan;
        if microbatches == p.num_microbatches(self.training.global_batch_size) {
            return self.workload_on(placement, iterations, phase, stage_gpus);
        }
        // the builder runs `global_batch_size / (dp * micro_batch_size)` micro-batches
        let training = TrainingSpec {
            global_batch_size: microbatches.saturating_mul(p.dp).saturating_mul(p.micro_batch_size),
            ..self.training.clone()
        };
        RunInput {
            training,
            ..self.clone()
        }
        .workload_on(placement, iterations, phase, stage_gpus)
    }

    /// [`RunInput::workload_in`] with the stages on `stage_gpus` (one replica's).
    pub fn workload_on(
        &self,
        placement: &Placement,
        iterations: u32,
        phase: GradPhase,
        stage_gpus: &[crate::hardware::GpuSpec],
    ) -> workload::Workload {
        workload::build(&WorkloadSpec {
            stage_gpus,
            model: &self.model,
            plan: &self.plan,
            training: &self.training,
            placement,
            iterations,
            routing: &self.routing,
            seed: self.seed,
            comm: &self.comm,
            grad_phase: phase,
            offload: &self.offload,
        })
    }
}

/// Each stage's HBM capacity under `plan` on `cluster`: of the smallest GPU among its
/// replicas, GiB.
pub fn stage_hbm_gib(cluster: &ClusterSpec, plan: &ParallelPlan) -> Vec<f64> {
    let stride = plan.gpus_per_stage();
    (0..plan.pp)
        .map(|s| {
            (cluster.gpus_in(s.saturating_mul(stride), stride).iter())
                .map(|g| g.hbm_capacity_gib)
                .fold(f64::INFINITY, f64::min)
        })
        .collect()
}

/// Whether the replicas of `plan` differ ([`RunInput::mixed_replicas`]: GPU groups of
/// `cluster` within a stage, or micro-batch counts; the scenario checker and the run ask
/// the same question).
pub fn mixed_replicas(cluster: &ClusterSpec, plan: &ParallelPlan) -> bool {
    let stride = plan.gpus_per_stage();
    plan.replica_micro_batches.is_some()
        || cluster.is_heterogeneous() && (0..plan.pp).any(|s| cluster.mixes_groups(s.saturating_mul(stride), stride))
}
