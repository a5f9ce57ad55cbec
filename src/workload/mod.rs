//! The workload: the per-rank graph of operations of a few training iterations, built
//! from the model, the plan and the pipeline schedule.
//!
//! How it is built:
//! 1. each layer is a graph of modules with their kernel costs ([`costs`], [`layer`]), to
//!    which one pass per dimension adds its communication and splits its work
//!    ([`passes`]: TP/SP, EP, recomputation), lowered to steps;
//! 2. the schedule's program ([`crate::parallel::schedule`]) says in which order each
//!    pipeline stage runs its forward, backward, input-gradient and weight-gradient passes
//!    over micro-batches and model chunks; [`pipeline`] emits those passes, the pipeline
//!    sends, the gradient reductions, the optimizer step and the ZeRO parameter gathers
//!    as operations ([`op`]) with dependencies ([`graph`]);
//! 3. what goes on the wire ([`wire`]: element type per communication kind, gradient
//!    compression) and what lives on the host ([`offload`]) shape those operations.
//!
//! Symmetry: every data-parallel replica and every tensor-parallel rank of a pipeline
//! stage runs the same operations at the same times on symmetric links, so the graph holds
//! one representative rank per pipeline stage, each standing for `tp * cp * dp` GPUs. Flows
//! of a representative load only its own ports, which is exact while the ranks stay
//! symmetric.
//!
//! Each operation runs on one stream of its rank (compute, TP, PP or DP communication);
//! a stream runs its operations in program order, and an operation also waits for its
//! explicit dependencies (which may be on other ranks).
//!
//! Mixture-of-Experts: routing breaks the symmetry between the expert-parallel ranks of a
//! stage, so each stage also has `ep - 1` *expert lanes*: ranks that run only the routed
//! experts' GEMMs of their share of the load. The combine all-to-all after the experts
//! waits for every lane, so the slowest rank sets the pace through the dependency graph.
//! Lanes stand for no extra GPUs (multiplicity 0); with balanced routing all ranks are
//! identical and no lanes are built.

pub mod costs;
pub(crate) mod graph;
pub mod layer;
pub mod memory;
pub mod moe;
pub mod offload;
pub mod op;
pub mod passes;
pub mod pipeline;
pub mod routing;
mod stage;
pub mod wire;

pub use moe::MoeLoads;

/// Seconds a GPU of type `gpu` computes one layer's forward and backward for one
/// micro-batch (the compute steps of its lowered module graph; a MoE model's MoE layer,
/// routed experts excluded): what a balanced layer split weighs the stages by.
pub fn layer_compute_s(
    gpu: &crate::hardware::GpuSpec,
    model: &crate::model::TransformerSpec,
    plan: &crate::parallel::ParallelPlan,
    training: &crate::training::TrainingSpec,
) -> f64 {
    let cx = costs::LayerContext::new(gpu, model, plan, training);
    let moe = costs::MoeCost::new(gpu, model, plan, cx.prec, training.seq_length);
    let steps = passes::layer_steps(&cx, moe.as_ref());
    (steps.forward.iter().chain(&steps.backward))
        .map(|s| match s {
            layer::Step::Compute { time_s, .. } => *time_s,
            _ => 0.0,
        })
        .sum()
}
pub use op::{AllToAllSpec, CommKind, CommPurpose, Op, OpId, OpKind, Phase, RankInfo, Stream};
pub use pipeline::build;

use crate::hardware::GpuSpec;
use crate::model::TransformerSpec;
use crate::parallel::{ParallelPlan, Placement};
use crate::training::TrainingSpec;
use routing::RoutingSpec;

/// The operation graph of a run.
#[derive(Clone, Debug, Default)]
pub struct Workload {
    /// All operations.
    pub ops: Vec<Op>,
    /// Labels of the operations ([`Op::name`] indexes it).
    pub names: Vec<&'static str>,
    /// Flattened dependency lists.
    pub deps: Vec<OpId>,
    /// Representatives (ranks `0..stages`), then expert lanes.
    pub ranks: Vec<RankInfo>,
    /// Pipeline stages: the representative ranks.
    pub stages: u32,
    /// Iterations in the graph.
    pub iterations: u32,
    /// MoE all-to-alls referenced by [`OpKind::AllToAll`].
    pub all_to_alls: Vec<AllToAllSpec>,
    /// Routed loads (MoE models only).
    pub moe: Option<MoeLoads>,
    /// When both compute queues of a rank have an operation ready, the one of this queue
    /// takes the GPU first: the backward's, on the pipeline's critical path
    /// ([`Stream::Compute`] for DualPipe's pairs, [`Stream::Compute2`] with the all-to-all
    /// overlap, as Megatron's combined 1F1B runs the backward's modules first); `None`
    /// where one compute queue is used.
    pub compute_priority: Option<Stream>,
}

/// Everything the builder needs.
#[derive(Clone, Copy)]
pub struct WorkloadSpec<'a> {
    /// The GPU of each pipeline stage (layer costs and the optimizer step come from the
    /// stage that runs them); a single entry stands for every stage.
    pub stage_gpus: &'a [GpuSpec],
    /// Model.
    pub model: &'a TransformerSpec,
    /// Plan.
    pub plan: &'a ParallelPlan,
    /// Batch, sequence, precision.
    pub training: &'a TrainingSpec,
    /// Where the plan's groups sit (computed once per run).
    pub placement: &'a Placement,
    /// Iterations to build.
    pub iterations: u32,
    /// MoE routing.
    pub routing: &'a RoutingSpec,
    /// Seed of the routing draws.
    pub seed: u64,
    /// Element types on the wire and gradient compression.
    pub comm: &'a wire::CommSpec,
    /// Which step of a compressed run to build (compressed, warm-up, local).
    pub grad_phase: wire::GradPhase,
    /// What is offloaded to the host.
    pub offload: &'a offload::OffloadSpec,
}

impl Workload {
    /// The label of `op`.
    pub fn name(&self, op: &Op) -> &'static str {
        self.names[op.name as usize]
    }

    /// GPUs `op` stands for ([`RankInfo::gpus_for`]).
    pub fn gpus_for(&self, op: &Op) -> u32 {
        self.ranks[op.rank as usize].gpus_for(self.name(op))
    }

    /// Bytes the graph holds on the heap (operations, dependencies, ranks, all-to-all
    /// tables; the MoE load matrices are counted by their rows).
    pub fn heap_bytes(&self) -> usize {
        use std::mem::size_of;
        let moe = self.moe.as_ref().map_or(0, |m| {
            (m.per_layer_expert.iter().chain(&m.per_iteration_expert))
                .map(|r| r.len() * size_of::<f64>())
                .sum()
        });
        self.ops.capacity() * size_of::<Op>()
            + self.names.capacity() * size_of::<&str>()
            + self.deps.capacity() * size_of::<OpId>()
            + self.ranks.capacity() * size_of::<RankInfo>()
            + self.all_to_alls.capacity() * size_of::<AllToAllSpec>()
            + moe
    }
}

impl WorkloadSpec<'_> {
    /// The GPU of pipeline stage `stage`.
    pub fn gpu(&self, stage: u32) -> &GpuSpec {
        &self.stage_gpus[(stage as usize).min(self.stage_gpus.len().saturating_sub(1))]
    }
}
