//! The routing draws of a MoE plan's measured iterations, as the plan search's bounds use
//! them: per (global chunk, micro-batch, pass kind), the floor of the representative's
//! own expert GEMMs (GPU time) and of the busiest expert-parallel rank's (what the pass
//! waits for before its combine), from the same seeded draws the simulation makes
//! ([`routing::draw_from`]) and [`MoeCost::experts_floor`]. Drawing costs a small part of
//! building the graph, so the search draws only for the candidates that come up.

use super::pass_bound::PassCost;
use crate::parallel::ParallelPlan;
use crate::simulation::RunInput;
use crate::workload::costs::{LayerContext, MoeCost};
use crate::workload::layer::{ExpertPart, LayerSteps, Step};
use crate::workload::passes::layer_steps;
use crate::workload::routing::{self, DrawKey};

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
