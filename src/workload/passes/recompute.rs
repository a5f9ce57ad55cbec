//! Activation recomputation: what the backward of a layer reruns first. Full: the whole
//! forward (with its communication) from the layer's input; selective (Korthikanti et al.
//! 2022): the attention core only.

use crate::parallel::Recompute;
use crate::workload::costs::{core_attention_fwd, LayerContext};
use crate::workload::layer::{compute, lower_forward, Item, Step};
use crate::workload::op::Phase;

/// The steps the backward reruns before its own work.
pub fn steps(cx: &LayerContext, items: &[Item]) -> Vec<Step> {
    match cx.p.recompute {
        Recompute::Full => lower_forward(items, Phase::Recompute),
        Recompute::Selective => {
            let c = core_attention_fwd(items);
            vec![compute(c.time_s, c.flops, Phase::Recompute, "attention recompute")]
        }
        Recompute::None => Vec::new(),
    }
}
