//! Tensor (and sequence) parallelism's pass: Megatron's column-parallel GEMMs (QKV, fc1)
//! take a replicated input, row-parallel GEMMs (output projection, fc2) produce partial
//! sums. Without SP the row-parallel output is all-reduced and the column-parallel input's
//! gradient all-reduced in the backward; with SP (Korthikanti et al. 2022) the all-reduce
//! becomes a reduce-scatter after the row-parallel GEMM and an all-gather before the
//! column-parallel one, and norms and residuals act on the sequence shard. The backward's
//! input-gradient collective of a column-parallel GEMM overlaps its weight gradient
//! (Megatron's asynchronous TP all-reduce / reduce-scatter). With `tp_comm_overlap`
//! (Megatron `--tp-comm-overlap`) all-gathers pipeline with the GEMM that consumes them and
//! reduce-scatters with the GEMM that produces them.

use super::{insert_after, insert_before, LayerPass};
use crate::network::collective::CollectiveKind::{AllGather, AllReduce, ReduceScatter};
use crate::parallel::Dim;
use crate::workload::costs::LayerContext;
use crate::workload::layer::{CommItem, Item, ModuleKind, Overlap};

/// The pass.
pub const PASS: LayerPass = LayerPass {
    name: "tensor and sequence parallelism",
    apply,
};

fn is(kinds: &'static [ModuleKind]) -> impl Fn(&Item) -> bool {
    move |i| matches!(i, Item::Module(m) if kinds.contains(&m.kind))
}

fn apply(cx: &LayerContext, items: &mut Vec<Item>) {
    let p = cx.p;
    if p.tp <= 1 {
        return;
    }
    let sp = p.sequence_parallel;
    let overlap = p.tp_comm_overlap;
    let bytes = 2.0 * cx.tokens * cx.m.hidden_size as f64; // one 16-bit activation
    let column_input = CommItem {
        dim: Dim::Tp,
        bytes,
        fwd: sp.then_some((AllGather, if overlap { Overlap::WithNext } else { Overlap::Blocking })),
        bwd: Some((if sp { ReduceScatter } else { AllReduce }, Overlap::WithNext)),
        bwd_overlaps_weight_grad: true,
    };
    let row_output = CommItem {
        dim: Dim::Tp,
        bytes,
        fwd: Some((
            if sp { ReduceScatter } else { AllReduce },
            if overlap { Overlap::WithPrev } else { Overlap::Blocking },
        )),
        bwd: sp.then_some((AllGather, if overlap { Overlap::WithNext } else { Overlap::Blocking })),
        bwd_overlaps_weight_grad: false,
    };
    insert_before(items, is(&[ModuleKind::Qkv, ModuleKind::Fc1]), Item::Comm(column_input));
    insert_after(
        items,
        is(&[ModuleKind::AttnOut, ModuleKind::Fc2]),
        &[Item::Comm(row_output)],
    );
}
