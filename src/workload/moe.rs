//! MoE layers at run time: the routing of each (iteration, layer, micro-batch) drawn from
//! the seeded distribution ([`super::routing`]) and turned into per-lane expert times and
//! the all-to-alls' port loads ([`MoeInstance`]), and the load statistics of the run
//! ([`MoeLoads`]).

use super::costs::{ExpertTimes, MoeCost};
use super::op::AllToAllSpec;
use super::routing::{self, DrawKey, RoutingSpec};
use crate::model::TransformerSpec;
use crate::network::{payload_bytes_per_token, AllToAllLoads, Dispatcher, ExpertDispatch, GroupLayout};
use crate::parallel::{Dim, ParallelPlan, Placement};
use std::collections::HashMap;
use std::rc::Rc;

/// Routed-load statistics of the run, from the routing draws.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct MoeLoads {
    /// Token-expert assignments routed per iteration (all MoE layers, all micro-batches).
    pub assignments_per_iteration: f64,
    /// Assignments dropped per iteration (capacity factor).
    pub dropped_per_iteration: f64,
    /// Kept assignments per MoE layer and expert, summed over micro-batches and iterations.
    pub per_layer_expert: Vec<Vec<f64>>,
    /// Kept assignments per iteration and expert, summed over layers and micro-batches.
    pub per_iteration_expert: Vec<Vec<f64>>,
    /// Mean over draws of (max / mean) expert load.
    pub expert_max_over_mean: f64,
    /// Mean over draws of the expert-load Gini coefficient.
    pub expert_gini: f64,
    /// Mean over draws of (max / mean) load of the expert-parallel ranks.
    pub rank_max_over_mean: f64,
    /// Mean over draws of the rank-load Gini coefficient.
    pub rank_gini: f64,
    /// Draws made.
    pub draws: u64,
}

impl MoeLoads {
    /// The statistics of several expert-parallel groups' draws together (each of `loads`
    /// one group's; every-replica mode, where each group draws its own routing): the mean
    /// group's assignments and drops, the loads summed, the per-draw statistics over every
    /// draw.
    pub fn merged<'a>(loads: impl IntoIterator<Item = &'a MoeLoads>) -> MoeLoads {
        let mut m = MoeLoads::default();
        let mut groups = 0u32;
        let add = |into: &mut Vec<Vec<f64>>, from: &[Vec<f64>]| {
            into.resize(into.len().max(from.len()), Vec::new());
            for (a, b) in into.iter_mut().zip(from) {
                a.resize(a.len().max(b.len()), 0.0);
                for (x, y) in a.iter_mut().zip(b) {
                    *x += y;
                }
            }
        };
        for l in loads {
            groups += 1;
            m.assignments_per_iteration += l.assignments_per_iteration;
            m.dropped_per_iteration += l.dropped_per_iteration;
            add(&mut m.per_layer_expert, &l.per_layer_expert);
            add(&mut m.per_iteration_expert, &l.per_iteration_expert);
            m.expert_max_over_mean += l.expert_max_over_mean;
            m.expert_gini += l.expert_gini;
            m.rank_max_over_mean += l.rank_max_over_mean;
            m.rank_gini += l.rank_gini;
            m.draws += l.draws;
        }
        let n = f64::from(groups.max(1));
        m.assignments_per_iteration /= n;
        m.dropped_per_iteration /= n;
        m
    }
}

/// One drawn MoE layer instance (layer, micro-batch): per-lane expert times and the two
/// all-to-alls' port loads.
#[derive(Clone)]
pub(crate) struct MoeInstance {
    /// Expert time per lane (lane 0: the representative).
    pub lanes: Vec<ExpertTimes>,
    pub to_experts: AllToAllSpec,
    pub from_experts: AllToAllSpec,
}

/// A lower bound on the assignments the busiest expert-parallel rank keeps in any draw
/// of [`MoeRouter::instance`]: the `experts` experts are split into ranks of
/// `experts / ep` (at least one), so without drops the busiest holds at least the mean of
/// the `assignments` (every rank's tokens, `top_k` copies each); if the capacity factor
/// drops any, one expert keeps exactly its capacity. `cost` sizes the micro-batch.
pub(crate) fn busiest_rank_tokens_floor(
    cost: &MoeCost,
    m: &TransformerSpec,
    p: &ParallelPlan,
    routing: &RoutingSpec,
) -> f64 {
    let Some(moe) = m.moe.as_ref() else { return 0.0 };
    let ep = p.ep.max(1);
    let experts = moe.num_experts.max(1);
    let per_rank = (experts / ep).max(1);
    let ranks = experts.div_ceil(per_rank) as f64;
    let assignments = cost.tokens_per_rank * ep as f64 * moe.top_k as f64;
    let mean = assignments / ranks;
    match routing.capacity_factor {
        Some(cf) => mean.min(cf * assignments / experts as f64),
        None => mean,
    }
}

/// Draws the routing of each MoE layer instance and turns it into lane times and
/// all-to-all port loads.
pub(crate) struct MoeRouter<'a> {
    /// Tokens each expert-parallel rank routes per micro-batch.
    tokens_per_rank: f64,
    routing: &'a RoutingSpec,
    seed: u64,
    experts: u32,
    ep: u32,
    lanes: u32,
    /// Assignments per EP group and micro-batch.
    assignments: f64,
    /// Bytes per token (or token-expert copy) moved towards the experts (BF16 or FP8).
    dispatch_bytes: f64,
    /// Bytes per token (or copy) moved back (the combine, BF16).
    combine_bytes: f64,
    /// EP peers per node.
    peers_per_node: u32,
    first_dense: u32,
    /// MoE layers in the model.
    moe_layers: u32,
    /// How tokens travel, and the node limit of routing.
    dispatcher: Dispatcher,
    node_limit: Option<u32>,
    /// Experts per token, as a float.
    top_k: f64,
    pub loads: MoeLoads,
    /// Draws of the current (iteration, layer, micro-batch), reused by the backward.
    cache: HashMap<(u32, u32, u32), Rc<MoeInstance>>,
    /// Expected expert shares per (iteration, MoE layer), shared by its micro-batches.
    shares: HashMap<(u32, u32), Vec<f64>>,
}

impl<'a> MoeRouter<'a> {
    pub fn new(
        cost: &MoeCost,
        m: &TransformerSpec,
        p: &ParallelPlan,
        placement: &Placement,
        (routing, seed, iterations): (&'a RoutingSpec, u64, u32),
        lanes: u32,
    ) -> Self {
        let moe = m.moe.as_ref().expect("MoeCost exists only for MoE models");
        // the MTP modules' layers draw after the main ones
        let n_moe = (m.num_moe_layers() + m.mtp_modules) as usize;
        MoeRouter {
            tokens_per_rank: cost.tokens_per_rank,
            routing,
            seed,
            experts: moe.num_experts,
            ep: p.ep.max(1),
            lanes,
            assignments: cost.tokens_per_rank * p.ep.max(1) as f64 * moe.top_k as f64,
            dispatch_bytes: payload_bytes_per_token(m.hidden_size as f64, p.moe_dispatch_fp8),
            combine_bytes: payload_bytes_per_token(m.hidden_size as f64, false),
            peers_per_node: placement.layout(Dim::Ep).members_per_node.clamp(1, p.ep.max(1)),
            first_dense: moe.first_dense_layers,
            moe_layers: n_moe as u32,
            dispatcher: routing.dispatcher,
            node_limit: routing.node_limit,
            top_k: moe.top_k as f64,
            loads: MoeLoads {
                per_layer_expert: vec![vec![0.0; moe.num_experts as usize]; n_moe],
                per_iteration_expert: vec![vec![0.0; moe.num_experts as usize]; iterations as usize],
                ..MoeLoads::default()
            },
            cache: HashMap::new(),
            shares: HashMap::new(),
        }
    }

    /// The instance of MoE layer `layer` (model layer index) for micro-batch `mb`, its expert
    /// times from `cost` (the kernel costs on the GPU of the layer's stage). The forward
    /// draws it; the passes after reuse it, the one with `last_use` (the fused backward, or
    /// the weight-gradient pass of a split one) drops it.
    pub fn instance(&mut self, cost: &MoeCost, it: u32, layer: u32, mb: u32, last_use: bool) -> Rc<MoeInstance> {
        let key = (it, layer, mb);
        if last_use {
            if let Some(inst) = self.cache.remove(&key) {
                return inst;
            }
        } else if let Some(inst) = self.cache.get(&key) {
            return Rc::clone(inst);
        }
        let moe_layer = layer - self.first_dense;
        let draw_key = DrawKey {
            iteration: it,
            moe_layer,
            microbatch: mb,
            moe_layers: self.moe_layers,
        };
        let (routing, experts, seed) = (self.routing, self.experts, self.seed);
        let shares = self
            .shares
            .entry((it, moe_layer))
            .or_insert_with(|| routing::layer_shares(routing, experts, seed, draw_key));
        let d = routing::draw_from(self.routing, shares, self.assignments, self.seed, draw_key);
        let per_rank = (self.experts / self.ep).max(1) as usize;
        let rank_loads: Vec<f64> = d.kept.chunks(per_rank).map(|c| c.iter().sum()).collect();
        // statistics
        let l = &mut self.loads;
        l.assignments_per_iteration += self.assignments;
        l.dropped_per_iteration += d.dropped;
        for (e, &c) in d.kept.iter().enumerate() {
            l.per_layer_expert[moe_layer as usize][e] += c;
            l.per_iteration_expert[it as usize][e] += c;
        }
        let (em, eg) = routing::imbalance(&d.kept);
        let (rm, rg) = routing::imbalance(&rank_loads);
        l.expert_max_over_mean += em;
        l.expert_gini += eg;
        l.rank_max_over_mean += rm;
        l.rank_gini += rg;
        l.draws += 1;
        // lane times
        let lanes: Vec<ExpertTimes> = if self.lanes == 1 {
            vec![cost.experts(&d.kept[..per_rank])]
        } else {
            d.kept.chunks(per_rank).map(|c| cost.experts(c)).collect()
        };
        let simulated = if self.lanes == 1 { 1 } else { self.ep as usize };
        let (to, from) = self.all_to_alls(&rank_loads, simulated);
        let inst = Rc::new(MoeInstance {
            lanes,
            to_experts: AllToAllSpec {
                loads: to,
                wait_from: None,
            },
            from_experts: AllToAllSpec {
                loads: from,
                wait_from: None,
            },
        });
        self.cache.insert(key, Rc::clone(&inst));
        inst
    }

    /// The all-to-all port loads of the EP ranks `0..simulated` (lane 0 the
    /// representative; the network's model of the dispatch) for the kept assignments per
    /// rank `rank_loads`: towards the experts (the dispatch and, in the backward, the
    /// gradient of the combine, in the dispatch payload) and back (the combine and the
    /// gradient of the dispatch, BF16).
    fn all_to_alls(&self, rank_loads: &[f64], simulated: usize) -> (AllToAllLoads, AllToAllLoads) {
        let dispatch = ExpertDispatch {
            rank_assignments: rank_loads,
            layout: GroupLayout {
                size: self.ep,
                members_per_node: self.peers_per_node,
            },
            bytes_per_assignment: self.dispatch_bytes,
            tokens_per_rank: self.tokens_per_rank,
            top_k: self.top_k as u32,
            dispatcher: self.dispatcher,
            node_limit: self.node_limit,
        };
        let back = ExpertDispatch {
            bytes_per_assignment: self.combine_bytes,
            ..dispatch
        };
        (dispatch.loads(simulated), back.loads(simulated).reversed())
    }

    /// [`MoeRouter::all_to_alls`] with every rank at the mean load (what balanced routing
    /// draws, every time). A floor on any draw's all-to-all time, as the simulation costs
    /// it, where skew cannot lower traffic: the direct dispatcher (the copies crossing
    /// nodes are `1 - 1/nodes` of all whatever the shares, so the busiest port carries at
    /// least the mean) with every lane simulated (skewed routing) and nothing dropped;
    /// `None` where it can (node-deduplicated dispatchers, token drops).
    pub fn balanced_all_to_alls(&self) -> Option<(AllToAllLoads, AllToAllLoads)> {
        let exact = self.routing.is_balanced() && self.routing.capacity_factor.is_none_or(|cf| cf >= 1.0);
        let floor = self.dispatcher == Dispatcher::AllToAll && self.routing.capacity_factor.is_none();
        (exact || floor).then(|| {
            let ranks = vec![self.assignments / f64::from(self.ep); self.ep as usize];
            self.all_to_alls(&ranks, 1)
        })
    }
}
