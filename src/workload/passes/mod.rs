//! The layer passes: each dimension that changes what a layer computes or communicates is
//! one pass over the layer's module graph ([`super::layer`]). [`PASSES`] lists them in the
//! order they run; recomputation ([`recompute`]) then decides what the backward reruns.
//!
//! Adding a dimension's effect on a layer is adding one file here and one entry in
//! [`PASSES`].

pub mod cp;
pub mod ep;
pub mod recompute;
pub mod tp;

use super::costs::{base_layer, LayerContext, MoeCost};
use super::layer::{lower, Item, LayerSteps};

/// A pass over one layer's items.
pub struct LayerPass {
    /// What it models, for docs and debugging.
    pub name: &'static str,
    /// Inserts the dimension's items (communication, work) into the layer.
    pub apply: fn(&LayerContext, &mut Vec<Item>),
}

/// The passes, in the order they run.
pub const PASSES: &[LayerPass] = &[tp::PASS, cp::PASS, ep::PASS];

/// One layer's lowered passes on this rank: the base graph (dense, or MoE with `moe`), every
/// pass of [`PASSES`], then the recomputation.
pub fn layer_steps(cx: &LayerContext, moe: Option<&MoeCost>) -> LayerSteps {
    let mut items = base_layer(cx, moe);
    for pass in PASSES {
        (pass.apply)(cx, &mut items);
    }
    let rerun = recompute::steps(cx, &items, moe);
    lower(&items, &rerun)
}

/// Inserts `item` before every module for which `at` holds.
pub(crate) fn insert_before(items: &mut Vec<Item>, at: impl Fn(&Item) -> bool, item: Item) {
    let mut out = Vec::with_capacity(items.len() + 4);
    for i in items.drain(..) {
        if at(&i) {
            out.push(item);
        }
        out.push(i);
    }
    *items = out;
}

/// Inserts `new` after every module for which `at` holds.
pub(crate) fn insert_after(items: &mut Vec<Item>, at: impl Fn(&Item) -> bool, new: &[Item]) {
    let mut out = Vec::with_capacity(items.len() + 4);
    for i in items.drain(..) {
        let hit = at(&i);
        out.push(i);
        if hit {
            out.extend_from_slice(new);
        }
    }
    *items = out;
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::hardware::presets::gpu_preset;
    use crate::hardware::Precision;
    use crate::model::presets::model_preset;
    use crate::network::collective::CollectiveKind;
    use crate::parallel::{ParallelPlan, Recompute};
    use crate::training::TrainingSpec;
    use crate::workload::layer::{compute_time_s, Step};

    fn plan(tp: u32, sp: bool, rc: Recompute) -> ParallelPlan {
        let mut p = crate::parallel::tests_support::plan(tp, 1, 1);
        p.sequence_parallel = sp;
        p.recompute = rc;
        p
    }

    fn steps(p: &ParallelPlan) -> LayerSteps {
        let g = gpu_preset("A100-80GB").unwrap();
        let m = model_preset("gpt3-175b").unwrap();
        let t = TrainingSpec {
            global_batch_size: 8,
            seq_length: 2048,
            precision: Precision::Bf16,
            flash_attention: true,
        };
        layer_steps(&LayerContext::new(&g, &m, p, &t), None)
    }

    #[test]
    fn backward_costs_about_twice_forward_and_recompute_adds_a_forward() {
        let none = steps(&plan(8, true, Recompute::None));
        let full = steps(&plan(8, true, Recompute::Full));
        let (f, b) = (compute_time_s(&none.forward), compute_time_s(&none.backward));
        assert!(b / f > 1.8 && b / f < 2.6, "bwd/fwd = {}", b / f);
        let bf = compute_time_s(&full.backward);
        assert!((bf - b - f).abs() < 1e-12);
    }

    #[test]
    fn sequence_parallel_swaps_all_reduce_for_reduce_scatter_and_all_gather() {
        let kinds = |sp| -> Vec<CollectiveKind> {
            steps(&plan(8, sp, Recompute::None))
                .forward
                .iter()
                .filter_map(|s| match s {
                    Step::Comm { kind, .. } => Some(*kind),
                    _ => None,
                })
                .collect()
        };
        assert_eq!(kinds(false), vec![CollectiveKind::AllReduce; 2]);
        assert_eq!(
            kinds(true),
            vec![
                CollectiveKind::AllGather,
                CollectiveKind::ReduceScatter,
                CollectiveKind::AllGather,
                CollectiveKind::ReduceScatter
            ]
        );
    }

    #[test]
    fn without_tensor_parallelism_a_layer_is_one_step_each_way() {
        let l = steps(&plan(1, false, Recompute::None));
        assert_eq!(l.forward.len(), 1);
        assert_eq!(l.backward.len(), 1);
        assert!(matches!(l.forward[0], Step::Compute { name: "layer", .. }));
    }
}
