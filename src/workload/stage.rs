//! The lowered steps a pipeline stage runs (per layer kind, on its GPU type), how a pass
//! emits a layer's steps, and the optimizer step (on the GPU or offloaded to the CPU):
//! the pieces [`super::pipeline::build`] assembles.

use super::costs::{self, embedding_and_head_steps, LayerContext, MoeCost};
use super::graph::{Builder, Cursor, Dep};
use super::layer::{LayerSteps, Step};
use super::moe::MoeRouter;
use super::offload::OffloadSpec;
use super::op::{OpId, OpKind, Phase, Stream};
use super::passes::layer_steps;
use super::WorkloadSpec;
use crate::hardware::GpuSpec;
use crate::parallel::schedule::PassKind;
use crate::units::SimTime;

/// The lowered steps of every kind of layer on one GPU type.
pub(super) struct StageCosts {
    pub gpu: GpuSpec,
    pub layer: LayerSteps,
    pub moe_layer: LayerSteps,
    pub emb: LayerSteps,
    pub head: LayerSteps,
    /// An MTP module's input projection (when the model has MTP modules).
    pub mtp_in: LayerSteps,
    pub moe: Option<MoeCost>,
}

impl StageCosts {
    pub fn new(spec: &WorkloadSpec, gpu: &GpuSpec) -> StageCosts {
        let cx = LayerContext::new(gpu, spec.model, spec.plan, spec.training);
        let moe = MoeCost::new(gpu, spec.model, spec.plan, cx.prec, spec.training.seq_length);
        let (emb, head) = embedding_and_head_steps(&cx);
        StageCosts {
            gpu: gpu.clone(),
            layer: layer_steps(&cx, None),
            moe_layer: layer_steps(&cx, moe.as_ref()),
            emb,
            head,
            mtp_in: costs::mtp_input_steps(&cx),
            moe,
        }
    }
}

/// The steps a pass of `kind` runs of a layer.
pub(super) fn pass_steps(kind: PassKind, s: &LayerSteps) -> &[Step] {
    match kind {
        PassKind::Forward => &s.forward,
        PassKind::Backward => &s.backward,
        PassKind::BackwardInput => &s.backward_input,
        PassKind::BackwardWeight => &s.weight,
    }
}

/// Emits the steps of pass `kind` of layer `l` of micro-batch `mb` on `rank`, a MoE layer
/// with its routing draw (the pass with `last_use` drops it).
#[allow(clippy::too_many_arguments)]
pub(super) fn emit_layer(
    b: &mut Builder,
    cur: &mut Cursor,
    router: Option<&mut MoeRouter>,
    sc: &StageCosts,
    moe_layer: bool,
    kind: PassKind,
    (rank, it, mb, l): (u32, u32, u32, u32),
    lanes: &[u32],
    last_use: bool,
) {
    match router.filter(|_| moe_layer) {
        Some(r) => {
            let inst = r.instance(sc.moe.as_ref().expect("MoE model"), it, l, mb, last_use);
            cur.emit(b, rank, (it, mb), pass_steps(kind, &sc.moe_layer), Some((&inst, lanes)));
        }
        None if moe_layer => cur.emit(b, rank, (it, mb), pass_steps(kind, &sc.moe_layer), None),
        None => cur.emit(b, rank, (it, mb), pass_steps(kind, &sc.layer), None),
    }
}

/// Pushes the optimizer step of `rank` in iteration `it` after `after`: on the GPU, or
/// (offloaded) the GPU waiting for the CPU's step; returns the op that ends it.
#[allow(clippy::too_many_arguments)]
pub(super) fn optimizer_step(
    b: &mut Builder,
    rank: u32,
    it: u32,
    off: &OffloadSpec,
    gpu: &GpuSpec,
    local_opt_params: f64,
    after: Vec<Dep>,
) -> OpId {
    if off.optimizer.is_offloaded() {
        let duration = SimTime::from_secs(off.optimizer_step_s(local_opt_params));
        let op = OpKind::HostCopy { duration, bytes: 0.0 };
        let cpu = b.push_exact(rank, Stream::Compute, op, "cpu optimizer step", (it, u32::MAX), after);
        // the step is over (the iteration's end, for the simulation)
        let done = OpKind::Compute {
            duration: SimTime::ZERO,
            flops: 0.0,
            phase: Phase::Optimizer,
        };
        b.push(
            rank,
            Stream::Compute,
            done,
            "optimizer step",
            (it, u32::MAX),
            vec![Dep::Op(cpu)],
        )
    } else {
        let op = OpKind::Compute {
            duration: SimTime::from_secs(costs::optimizer_time_s(gpu, local_opt_params)),
            flops: 0.0,
            phase: Phase::Optimizer,
        };
        b.push(rank, Stream::Compute, op, "optimizer step", (it, u32::MAX), after)
    }
}
