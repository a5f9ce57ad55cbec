//! Expert parallelism's pass: a MoE layer's routed experts sit on the expert-parallel
//! ranks, so the routed tokens travel there and back by all-to-all (dispatch after the
//! router, combine before the shared experts). The per-rank bytes and expert times depend
//! on the routing drawn for each micro-batch ([`crate::workload::moe`]); the steps here only
//! say where they go.
//!
//! **Expert tensor parallelism** (`expert_tp > 1`, Megatron ETP with the `alltoall`
//! dispatcher): each expert's FFN is split over `expert_tp` adjacent ranks ([`Dim::Etp`]).
//! After the dispatch they all-gather the tokens each received, so every one of them runs
//! the experts on the whole ETP group's tokens with `1/expert_tp` of the FFN width (the
//! expert GEMMs of [`crate::workload::costs::MoeCost`]), then reduce-scatter the partial
//! outputs back to the rank that received each token, before the combine. The backward runs
//! the mirror: a reduce-scatter of the output gradients' all-gather, and an all-gather of
//! the input gradients. Sized at the mean load (`expert_tp` ranks x tokens x top-k x hidden,
//! 16-bit); the draw's imbalance acts on the all-to-alls and the expert GEMMs.

use super::{insert_after, LayerPass};
use crate::network::collective::CollectiveKind::{AllGather, ReduceScatter};
use crate::parallel::Dim;
use crate::workload::costs::LayerContext;
use crate::workload::layer::{CommItem, Item, ModuleKind, Overlap};

/// The pass.
pub const PASS: LayerPass = LayerPass {
    name: "expert parallelism",
    apply,
};

/// Bytes of the ETP all-gather (its output) and reduce-scatter (its input): the tokens the
/// group's `expert_tp` ranks receive at the mean load, 16-bit.
pub(crate) fn etp_bytes(cx: &LayerContext) -> f64 {
    let Some(moe) = cx.m.moe.as_ref() else { return 0.0 };
    let etp = cx.p.expert_tp.max(1) as f64;
    let tokens = cx.mbs * cx.seq / cx.tp;
    etp * tokens * moe.top_k as f64 * cx.m.hidden_size as f64 * 2.0
}

fn apply(cx: &LayerContext, items: &mut Vec<Item>) {
    let etp = cx.p.expert_tp.max(1);
    let comm = |fwd, bwd| {
        Item::Comm(CommItem {
            dim: Dim::Etp,
            bytes: etp_bytes(cx),
            fwd: Some((fwd, Overlap::Blocking)),
            bwd: Some((bwd, Overlap::Blocking)),
            bwd_overlaps_weight_grad: false,
        })
    };
    let mut block = vec![Item::AllToAll { to_experts: true }];
    if etp > 1 {
        block.push(comm(AllGather, ReduceScatter));
    }
    block.push(Item::Experts);
    if etp > 1 {
        block.push(comm(ReduceScatter, AllGather));
    }
    block.push(Item::AllToAll { to_experts: false });
    insert_after(
        items,
        |i| matches!(i, Item::Module(m) if m.kind == ModuleKind::Router),
        &block,
    );
}
