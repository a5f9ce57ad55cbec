//! The routing draws of a MoE plan's measured iterations, as the plan search's bounds use
//! them: per (global chunk, micro-batch, pass kind), the floor of the representative's
//! own expert GEMMs (GPU time) and of the busiest expert-parallel rank's (what the pass
//! waits for before its combine), from the same seeded draws the simulation makes
//! ([`routing::draw_from`]) and [`MoeCost::experts_floor`]. Drawing costs a small part of
//! building the graph, so the search draws only for the candidates that come up.
//! Also the all-to-alls' floor at the mean load ([`balanced_all_to_all_s`]).

use super::pass_bound::PassCost;
use crate::network::ClusterNetwork;
use crate::parallel::{ParallelPlan, Placement};
use crate::simulation::RunInput;
use crate::workload::costs::{LayerContext, MoeCost};
use crate::workload::layer::{ExpertPart, LayerSteps, Step};
use crate::workload::moe::MoeRouter;
use crate::workload::passes::layer_steps;
use crate::workload::routing::{self, DrawKey};

/// A MoE layer's all-to-alls on an idle network at the mean load, back from and towards
/// the experts ([`MoeRouter::balanced_all_to_alls`]), s: each holds its pass's serial
/// chain (the experts wait for the dispatch, the combine for the experts) and no draw
/// makes it shorter; 0 where a draw could (node-deduplicated dispatchers, token drops).
pub(super) fn balanced_all_to_all_s(base: &RunInput, plan: &ParallelPlan, cost: &MoeCost) -> [f64; 2] {
    let c = &base.cluster;
    let placement = Placement::megatron(plan, c.gpus_per_node);
    let router = MoeRouter::new(cost, &base.model, plan, &placement, (&base.routing, base.seed, 0), 1);
    match router.balanced_all_to_alls() {
        Some((to, from)) => {
            let net = ClusterNetwork::new(c, 0);
            [net.all_to_all_idle_s(&from), net.all_to_all_idle_s(&to)]
        }
        None => [0.0; 2],
    }
}

/// Expert floors per (global chunk, micro-batch, pass kind), the least over the measured
/// iterations: `gpu_s` the representative's (expert rank 0's), `chain_s` the busiest
/// rank's.
pub(super) struct DrawFloors {
    microbatches: u32,
    floors: Vec<[PassCost; 4]>,
}

impl DrawFloors {
    /// `None` for dense models and balanced routing (every rank alike: the cheap bound's
    /// floor is already the draw's). `iterations` as simulated, the first a warm-up.
    /// `own_gpu`: count the representative's experts as GPU time (not with the all-to-all
    /// overlap of unpaired schedules, whose measured step was seen to hold less than an
    /// iteration's GPU time: their passes are ordered only two and three apart).
    pub fn new(
        base: &RunInput,
        plan: &ParallelPlan,
        cx: &LayerContext,
        chunks: &[u32],
        iterations: u32,
        own_gpu: bool,
    ) -> Option<Self> {
        let m = &base.model;
        let t = &base.training;
        let moe = m.moe.as_ref()?;
        if base.routing.is_balanced() {
            return None;
        }
        let cost = MoeCost::new(cx.gpu, m, plan, t.precision, t.seq_length)?;
        // the expert steps of each pass kind of a MoE layer
        let parts = |steps: &[Step]| -> Vec<ExpertPart> {
            steps
                .iter()
                .filter_map(|s| match s {
                    Step::Experts { part, .. } => Some(*part),
                    _ => None,
                })
                .collect()
        };
        let l: LayerSteps = layer_steps(cx, Some(&cost));
        let kinds = [
            parts(&l.forward),
            parts(&l.backward),
            parts(&l.backward_input),
            parts(&l.weight),
        ];
        let ep = plan.ep.max(1);
        let experts = moe.num_experts.max(1);
        let per_rank = (experts / ep).max(1) as usize;
        let assignments = cost.tokens_per_rank * ep as f64 * moe.top_k as f64;
        let moe_layers = m.num_moe_layers() + m.mtp_modules;
        let nmb = plan.num_microbatches(t.global_batch_size);
        let mut floors = vec![[PassCost::default(); 4]; chunks.len() * nmb as usize];
        let mut first = 0u32;
        for (g, &n) in chunks.iter().enumerate() {
            let layers: Vec<u32> = (first..first + n).filter(|&l| m.is_moe_layer(l)).collect();
            first += n;
            for it in 1..iterations.max(2) {
                let mut sums = vec![[PassCost::default(); 4]; nmb as usize];
                for &layer in &layers {
                    let key = |mb: u32| DrawKey {
                        iteration: it,
                        moe_layer: layer - moe.first_dense_layers,
                        microbatch: mb,
                        moe_layers,
                    };
                    let shares = routing::layer_shares(&base.routing, experts, base.seed, key(0));
                    for (mb, sum) in sums.iter_mut().enumerate() {
                        let d = routing::draw_from(&base.routing, &shares, assignments, base.seed, key(mb as u32));
                        let mut ranks = d.kept.chunks(per_rank).map(|c| c.iter().sum::<f64>());
                        let own = ranks.next().unwrap_or(0.0);
                        let busiest = ranks.fold(own, f64::max);
                        let (own, busiest) = (cost.experts_floor(own), cost.experts_floor(busiest));
                        for (k, ps) in kinds.iter().enumerate() {
                            for &p in ps {
                                if own_gpu {
                                    sum[k].gpu_s += own.of(p).0;
                                }
                                sum[k].chain_s += busiest.of(p).0;
                            }
                        }
                    }
                }
                for (mb, sum) in sums.iter().enumerate() {
                    let slot = &mut floors[g * nmb as usize + mb];
                    for k in 0..4 {
                        if it == 1 {
                            slot[k] = sum[k];
                        } else {
                            slot[k].gpu_s = slot[k].gpu_s.min(sum[k].gpu_s);
                            slot[k].chain_s = slot[k].chain_s.min(sum[k].chain_s);
                        }
                    }
                }
            }
        }
        Some(DrawFloors {
            microbatches: nmb,
            floors,
        })
    }

    /// The floors of pass kind `kind` (index) of chunk `g` for micro-batch `mb`.
    pub fn get(&self, kind: usize, g: u32, mb: u32) -> PassCost {
        self.floors
            .get(g as usize * self.microbatches as usize + mb as usize)
            .map_or(PassCost::default(), |f| f[kind])
    }

    /// `base` (a pass without drawn experts) with the draws of (`kind`, `g`, `mb`) added:
    /// the representative's experts to its GPU time, the busiest rank's to its chain.
    pub fn add(&self, base: PassCost, kind: usize, g: u32, mb: u32) -> PassCost {
        let f = self.get(kind, g, mb);
        PassCost {
            gpu_s: base.gpu_s + f.gpu_s,
            chain_s: base.chain_s.max(base.gpu_s + f.chain_s),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::scenario::Scenario;
    use crate::simulation::{simulate, ReplicaSet};
    use crate::workload::OpKind;
    use std::path::Path;

    /// A small MoE model, EP16 over two H100 nodes.
    fn input(moe: &str) -> RunInput {
        let src = format!(
            "[cluster]\nnum_gpus = 16\ngpus_per_node = 8\n[cluster.gpu]\npreset = \"H100-SXM\"\n\
             [model]\nname = \"m\"\nnum_layers = 4\nhidden_size = 1024\nnum_heads = 8\nffn_hidden_size = 4096\n\
             vocab_size = 32000\nnum_experts = 64\ntop_k = 2\nexpert_ffn_hidden_size = 1024\n\
             [parallel]\ntp = 1\npp = 1\ndp = 16\nep = 16\n[training]\nglobal_batch_size = 32\nseq_length = 2048\n\
             [moe]\n{moe}"
        );
        Scenario::from_source(&src, Path::new("s.toml")).unwrap().input
    }

    /// The floor holds on every draw: under skewed routing with the direct dispatcher every
    /// simulated all-to-all lasts at least it (the busiest port carries at least the mean);
    /// with balanced routing the first one, on an idle network, lasts it exactly; a
    /// deduplicating dispatcher under skew gets none.
    #[test]
    fn every_all_to_all_lasts_at_least_the_mean_load_floor() {
        for (moe, exact) in [
            ("routing = \"zipf\"\nzipf_exponent = 1.2", false),
            ("routing = \"balanced\"", true),
        ] {
            let base = input(moe);
            let cost = MoeCost::new(
                &base.cluster.gpu,
                &base.model,
                &base.plan,
                base.training.precision,
                base.training.seq_length,
            )
            .unwrap();
            let [from_s, to_s] = balanced_all_to_all_s(&base, &base.plan, &cost);
            // BF16 both ways (no FP8 dispatch): the dispatch and the combine move alike
            assert!(
                from_s > 0.0 && (to_s - from_s).abs() <= 1e-12 * from_s,
                "{from_s} {to_s}"
            );
            let placement = base.placement();
            let w = base.workload(&placement, 1);
            let factors = vec![vec![1.0; w.ranks.len()]; 1];
            let out = simulate(
                &w,
                &base.cluster,
                base.layouts(placement),
                &factors,
                &ReplicaSet::default(),
            )
            .unwrap();
            let mut seen = 0;
            for (i, op) in w.ops.iter().enumerate() {
                let OpKind::AllToAll { .. } = op.kind else { continue };
                let floor = if w.name(op).contains("to experts") {
                    to_s
                } else {
                    from_s
                };
                let (a, b) = out.op_times[i];
                let d = (b - a).as_secs();
                assert!(
                    d >= floor * (1.0 - 1e-9),
                    "{moe}: {} lasted {d} s < {floor} s",
                    w.name(op)
                );
                if exact && seen == 0 {
                    assert!((d / floor - 1.0).abs() < 1e-6, "{d} vs {floor}");
                }
                seen += 1;
            }
            assert!(seen >= 8, "{seen}");
        }
        let skewed_deepep = input("routing = \"zipf\"\ndispatcher = \"deepep\"");
        let cost = MoeCost::new(
            &skewed_deepep.cluster.gpu,
            &skewed_deepep.model,
            &skewed_deepep.plan,
            skewed_deepep.training.precision,
            skewed_deepep.training.seq_length,
        )
        .unwrap();
        assert_eq!(
            balanced_all_to_all_s(&skewed_deepep, &skewed_deepep.plan, &cost),
            [0.0; 2]
        );
    }
}
