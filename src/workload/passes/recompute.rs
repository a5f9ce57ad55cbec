//! Activation recomputation: what the backward of a layer reruns first. Full: the whole
//! forward (with its communication) from the layer's input; selective: the modules of the
//! plan's `recompute_modules` (by default the attention core only, Korthikanti et al.
//! 2022), each at its forward cost; `moe` reruns the MoE block with its all-to-alls.

use crate::parallel::{Recompute, RecomputeModule as R};
use crate::workload::costs::{core_attention_fwd, LayerContext, MoeCost};
use crate::workload::layer::{compute, lower_forward, Cost, Item, ModuleKind, Step};
use crate::workload::op::Phase;

/// The steps the backward reruns before its own work; `moe` for MoE layers.
pub fn steps(cx: &LayerContext, items: &[Item], moe: Option<&MoeCost>) -> Vec<Step> {
    match cx.p.recompute {
        Recompute::Full => lower_forward(items, Phase::Recompute),
        Recompute::Selective => selective(cx, items, moe),
        Recompute::None => Vec::new(),
    }
}

fn selective(cx: &LayerContext, items: &[Item], moe: Option<&MoeCost>) -> Vec<Step> {
    let r = cx.p.recompute_modules;
    let mut out = Vec::new();
    let mut add = |c: Cost, name: &'static str| {
        if c.time_s > 0.0 || c.flops > 0.0 {
            out.push(compute(c.time_s, c.flops, Phase::Recompute, name));
        }
    };
    if r.has(R::Layernorm) {
        add(cx.norms_fwd(), "norm recompute");
    }
    if r.has(R::MlaUpProj) {
        add(cx.mla_up_proj_fwd(), "mla up-projection recompute");
    }
    if r.has(R::CoreAttn) {
        add(core_attention_fwd(items), "attention recompute");
    }
    let at = |k: ModuleKind| items.iter().position(|i| matches!(i, Item::Module(m) if m.kind == k));
    match moe {
        Some(_) if r.has(R::Moe) => {
            // the whole block, router to shared experts, with its all-to-alls
            if let (Some(a), Some(b)) = (at(ModuleKind::Router), at(ModuleKind::SharedExperts)) {
                out.extend(lower_forward(&items[a..=b], Phase::Recompute));
            }
        }
        Some(c) => {
            if r.has(R::SharedExperts) {
                if let Some(Item::Module(m)) = at(ModuleKind::SharedExperts).map(|i| &items[i]) {
                    add(m.fwd, "shared experts recompute");
                }
            }
            if r.has(R::MoeAct) {
                add(Cost::new(c.act_fwd_s, 0.0), "moe activation recompute");
            }
        }
        None if r.has(R::Mlp) => add(cx.mlp_fwd(), "mlp recompute"),
        None => {}
    }
    out
}
