//! Expert parallelism's pass: a MoE layer's routed experts sit on the expert-parallel
//! ranks, so the routed tokens travel there and back by all-to-all (dispatch after the
//! router, combine before the shared experts). The per-rank bytes and expert times depend
//! on the routing drawn for each micro-batch ([`crate::workload::moe`]); the steps here only
//! say where they go.

use super::{insert_after, LayerPass};
use crate::workload::costs::LayerContext;
use crate::workload::layer::{Item, ModuleKind};

/// The pass.
pub const PASS: LayerPass = LayerPass {
    name: "expert parallelism",
    apply,
};

fn apply(_cx: &LayerContext, items: &mut Vec<Item>) {
    insert_after(
        items,
        |i| matches!(i, Item::Module(m) if m.kind == ModuleKind::Router),
        &[
            Item::AllToAll { to_experts: true },
            Item::Experts,
            Item::AllToAll { to_experts: false },
        ],
    );
}
