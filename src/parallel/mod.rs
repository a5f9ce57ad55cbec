//! The parallelism plan (data, tensor, sequence, pipeline parallelism; ZeRO; recompute;
//! micro-batching), its feasibility checks, and the rank-to-GPU placement.
//!
//! Placement follows Megatron's default order: TP ranks are adjacent (inside a node), then
//! DP, then PP outermost. Owns [`ParallelPlan`], [`PlanError`] and [`Placement`].

use crate::model::TransformerSpec;
use serde::{Deserialize, Serialize};
use thiserror::Error;

/// Pipeline schedule.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Schedule {
    /// All forwards, then all backwards.
    Gpipe,
    /// One-forward-one-backward (PipeDream-flush), Megatron's default.
    #[serde(rename = "1f1b")]
    OneFOneB,
    /// Interleaved 1F1B with `virtual_stages` model chunks per GPU.
    Interleaved,
}

impl Schedule {
    /// Names accepted in scenario files.
    pub const NAMES: &'static [&'static str] = &["gpipe", "1f1b", "interleaved"];
}

/// Activation recomputation.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Recompute {
    /// Keep every activation.
    None,
    /// Recompute the attention core only (Korthikanti et al. 2022).
    Selective,
    /// Keep only each layer's input; rerun the whole layer forward before its backward.
    Full,
}

impl Recompute {
    /// Names accepted in scenario files.
    pub const NAMES: &'static [&'static str] = &["none", "selective", "full"];
}

/// How a run splits work across GPUs.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct ParallelPlan {
    /// Tensor-parallel degree (Megatron column/row split).
    pub tp: u32,
    /// Pipeline-parallel degree.
    pub pp: u32,
    /// Data-parallel degree.
    pub dp: u32,
    /// Sequence parallelism: TP all-reduces become reduce-scatter + all-gather.
    pub sequence_parallel: bool,
    /// Pipeline schedule.
    pub schedule: Schedule,
    /// Model chunks per pipeline rank (interleaved schedule); 1 otherwise.
    pub virtual_stages: u32,
    /// Sequences per micro-batch.
    pub micro_batch_size: u32,
    /// ZeRO stage: 0 none, 1 optimizer states sharded (= Megatron distributed optimizer),
    /// 2 + gradients, 3 + parameters.
    pub zero_stage: u32,
    /// Activation recomputation.
    pub recompute: Recompute,
    /// Overlap the gradient reduction with the backward pass (bucketed).
    pub overlap_grad_reduce: bool,
    /// Overlap the parameter all-gather (ZeRO >= 1) with the next forward pass.
    pub overlap_param_gather: bool,
    /// Megatron's layer split that counts the embedding and the loss as one layer each
    /// (`account_for_embedding/loss_in_pipeline_split`): (layers + 2) must divide evenly.
    pub pipeline_split_embedding_and_loss: bool,
    /// Gradient-reduction bucket size, parameters (Megatron default 40 M).
    pub grad_bucket_params: f64,
    /// Overlap TP collectives with the GEMMs beside them (Megatron `--tp-comm-overlap`).
    pub tp_comm_overlap: bool,
    /// Expert-parallel degree: the routed experts of each MoE layer are spread over `ep`
    /// GPUs of a stage's `tp * dp` GPUs (1 for dense models).
    #[serde(default = "one")]
    pub ep: u32,
    /// Expert tensor parallelism (Megatron ETP); only 1 (experts not split) is modelled.
    #[serde(default = "one")]
    pub expert_tp: u32,
    /// MoE all-to-all overlap (`[moe] overlap_all_to_all`, Megatron's EP communication
    /// overlap): all-to-alls on their own stream, backward passes on a second compute queue
    /// sharing the GPU, and one more warm-up forward so that a forward and a backward are
    /// ready together in the steady state (one more micro-batch of activations in flight).
    #[serde(default)]
    pub moe_overlap: bool,
}

fn one() -> u32 {
    1
}

/// Why a plan cannot run. Each variant is fatal for that plan only (a sweep marks the
/// point infeasible and continues).
#[derive(Clone, Debug, PartialEq, Error)]
pub enum PlanError {
    /// tp * pp * dp does not equal the number of GPUs.
    #[error("the plan uses tp*pp*dp = {tp}*{pp}*{dp} = {used} GPUs but the cluster has {gpus}; make the product equal cluster.num_gpus")]
    GpuCountMismatch {
        /// TP.
        tp: u32,
        /// PP.
        pp: u32,
        /// DP.
        dp: u32,
        /// Product.
        used: u64,
        /// Cluster size.
        gpus: u32,
    },
    /// A divisibility or range constraint failed.
    #[error("{0}")]
    Constraint(String),
}

impl ParallelPlan {
    /// Micro-batches per data-parallel replica per step.
    pub fn num_microbatches(&self, global_batch_size: u32) -> u32 {
        global_batch_size / (self.dp * self.micro_batch_size)
    }

    /// Expert-data-parallel degree: replicas of each expert within a stage
    /// (`tp * dp / (ep * expert_tp)`), the group its gradients are reduced over.
    pub fn expert_dp(&self) -> u32 {
        (self.tp * self.dp / (self.ep * self.expert_tp).max(1)).max(1)
    }

    /// Checks the plan against a model, cluster size and batch; returns the first violation.
    pub fn validate(
        &self,
        model: &TransformerSpec,
        num_gpus: u32,
        gpus_per_node: u32,
        global_batch_size: u32,
    ) -> Result<(), PlanError> {
        let c = |msg: String| Err(PlanError::Constraint(msg));
        for (name, v) in [
            ("tp", self.tp),
            ("pp", self.pp),
            ("dp", self.dp),
            ("virtual_stages", self.virtual_stages),
            ("micro_batch_size", self.micro_batch_size),
        ] {
            if v == 0 {
                return c(format!("parallel.{name} must be at least 1"));
            }
        }
        if model.num_heads % self.tp != 0 {
            return c(format!(
                "tensor parallelism tp={} does not divide the {} attention heads; choose tp among the divisors of {}",
                self.tp, model.num_heads, model.num_heads
            ));
        }
        if model.num_kv_heads % self.tp != 0 && self.tp % model.num_kv_heads != 0 {
            return c(format!(
                "tensor parallelism tp={} and the {} key/value heads do not divide one another",
                self.tp, model.num_kv_heads
            ));
        }
        if model.ffn_hidden_size % self.tp != 0 {
            return c(format!(
                "tensor parallelism tp={} does not divide ffn_hidden_size={}",
                self.tp, model.ffn_hidden_size
            ));
        }
        match &model.moe {
            None if self.ep > 1 => {
                return c(format!(
                    "expert parallelism ep={} needs a Mixture-of-Experts model; {} is dense (set parallel.ep = 1)",
                    self.ep, model.name
                ))
            }
            Some(moe) => {
                if self.ep == 0 || moe.num_experts % self.ep != 0 {
                    return c(format!(
                        "expert parallelism ep={} does not divide the {} experts; choose ep among the divisors of {}",
                        self.ep, moe.num_experts, moe.num_experts
                    ));
                }
                if self.expert_tp != 1 {
                    return c(format!(
                        "parallel.expert_tp={} is not modelled yet; only expert_tp = 1 (experts not split) is",
                        self.expert_tp
                    ));
                }
                if (self.tp * self.dp) % (self.ep * self.expert_tp) != 0 {
                    return c(format!(
                        "ep*expert_tp = {} must divide tp*dp = {} (expert-parallel groups are carved out of a stage's tensor- and data-parallel GPUs)",
                        self.ep * self.expert_tp,
                        self.tp * self.dp
                    ));
                }
                if moe.top_k == 0 || moe.top_k > moe.num_experts {
                    return c(format!(
                        "model.top_k={} must be between 1 and num_experts={}",
                        moe.top_k, moe.num_experts
                    ));
                }
            }
            None => {}
        }
        let used = self.tp as u64 * self.pp as u64 * self.dp as u64;
        if used != num_gpus as u64 {
            return Err(PlanError::GpuCountMismatch {
                tp: self.tp,
                pp: self.pp,
                dp: self.dp,
                used,
                gpus: num_gpus,
            });
        }
        if self.tp > gpus_per_node && self.tp % gpus_per_node != 0
            || self.tp < gpus_per_node && gpus_per_node % self.tp != 0
        {
            return c(format!(
                "tp={} must divide, or be a multiple of, gpus_per_node={}",
                self.tp, gpus_per_node
            ));
        }
        if self.zero_stage > 3 {
            return c(format!(
                "parallel.zero_stage={} is not one of 0, 1, 2, 3",
                self.zero_stage
            ));
        }
        match self.schedule {
            Schedule::Interleaved if self.virtual_stages < 2 => {
                return c("the interleaved schedule needs parallel.virtual_stages >= 2".into());
            }
            Schedule::Interleaved if self.pp < 2 => {
                return c("the interleaved schedule needs pp >= 2".into());
            }
            Schedule::Gpipe | Schedule::OneFOneB if self.virtual_stages != 1 => {
                return c(format!(
                    "virtual_stages={} needs schedule = \"interleaved\"",
                    self.virtual_stages
                ));
            }
            _ => {}
        }
        let chunks = self.pp * self.virtual_stages;
        let layers = model.num_layers + if self.pipeline_split_embedding_and_loss { 2 } else { 0 };
        if layers % chunks != 0 {
            return c(format!(
                "{} layers{} cannot be split evenly over pp*virtual_stages = {} model chunks; choose pp*virtual_stages dividing {}{}",
                model.num_layers,
                if self.pipeline_split_embedding_and_loss { " (+2 for embedding and loss)" } else { "" },
                chunks,
                layers,
                if self.pipeline_split_embedding_and_loss { "" } else { ", or set parallel.pipeline_split_embedding_and_loss = true" }
            ));
        }
        if self.pipeline_split_embedding_and_loss && layers / chunks < 2 {
            return c("pipeline_split_embedding_and_loss needs at least 2 layer slots per model chunk".into());
        }
        let per_step = self.dp * self.micro_batch_size;
        if global_batch_size == 0 || global_batch_size % per_step != 0 {
            return c(format!(
                "global_batch_size={} is not a positive multiple of dp*micro_batch_size = {}*{} = {}",
                global_batch_size, self.dp, self.micro_batch_size, per_step
            ));
        }
        let m = self.num_microbatches(global_batch_size);
        if self.schedule == Schedule::Interleaved && m % self.pp != 0 {
            return c(format!(
                "the interleaved schedule needs the micro-batch count ({m}) to be a multiple of pp ({})",
                self.pp
            ));
        }
        Ok(())
    }

    /// Layers held by each model chunk, in pipeline order (chunk index = virtual * pp + stage).
    pub fn layers_per_chunk(&self, num_layers: u32) -> Vec<u32> {
        let chunks = (self.pp * self.virtual_stages) as usize;
        if self.pipeline_split_embedding_and_loss {
            let per = (num_layers + 2) as usize / chunks;
            (0..chunks)
                .map(|c| {
                    let mut n = per as u32;
                    if c == 0 {
                        n -= 1;
                    }
                    if c == chunks - 1 {
                        n -= 1;
                    }
                    n
                })
                .collect()
        } else {
            vec![num_layers / chunks as u32; chunks]
        }
    }
}

/// Where ranks sit: how each process group maps onto nodes.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Placement {
    /// Rank order, fastest-varying first.
    pub order: String,
    /// TP group members sharing a node.
    pub tp_members_per_node: u32,
    /// DP group members sharing a node.
    pub dp_members_per_node: u32,
    /// Whether adjacent pipeline stages sit in the same node.
    pub pp_neighbours_share_node: bool,
    /// Nodes spanned by one DP group.
    pub dp_group_nodes: u32,
    /// Expert-parallel group members sharing a node (the group is `ep` consecutive
    /// ranks of a stage's TP x DP block).
    #[serde(default = "one")]
    pub ep_members_per_node: u32,
    /// Expert-data-parallel group members sharing a node (stride `ep * expert_tp`).
    #[serde(default = "one")]
    pub expert_dp_members_per_node: u32,
}

impl Placement {
    /// Megatron placement: TP fastest, then DP, then PP.
    pub fn megatron(plan: &ParallelPlan, gpus_per_node: u32) -> Placement {
        let tp_in_node = plan.tp.min(gpus_per_node);
        let dp_stride = plan.tp;
        let dp_in_node = if dp_stride >= gpus_per_node {
            1
        } else {
            (gpus_per_node / dp_stride).min(plan.dp)
        };
        let pp_stride = plan.tp * plan.dp;
        let ep_stride = plan.ep * plan.expert_tp;
        let edp_in_node = if ep_stride >= gpus_per_node {
            1
        } else {
            (gpus_per_node / ep_stride).min(plan.expert_dp())
        };
        Placement {
            order: "tp-dp-pp".into(),
            tp_members_per_node: tp_in_node,
            dp_members_per_node: dp_in_node.max(1),
            pp_neighbours_share_node: pp_stride < gpus_per_node,
            dp_group_nodes: plan.dp.div_ceil(dp_in_node.max(1)),
            ep_members_per_node: plan.ep.min(gpus_per_node / plan.expert_tp.min(gpus_per_node)).max(1),
            expert_dp_members_per_node: edp_in_node.max(1),
        }
    }
}

/// Plans for unit tests elsewhere in the crate.
#[cfg(test)]
pub(crate) mod tests_support {
    use super::*;

    /// A Megatron-like plan: SP, 1F1B, distributed optimizer, selective recompute.
    pub(crate) fn plan(tp: u32, pp: u32, dp: u32) -> ParallelPlan {
        ParallelPlan {
            tp,
            pp,
            dp,
            sequence_parallel: true,
            schedule: Schedule::OneFOneB,
            virtual_stages: 1,
            micro_batch_size: 1,
            zero_stage: 1,
            recompute: Recompute::Selective,
            overlap_grad_reduce: true,
            overlap_param_gather: true,
            pipeline_split_embedding_and_loss: false,
            grad_bucket_params: 40e6,
            tp_comm_overlap: false,
            ep: 1,
            expert_tp: 1,
            moe_overlap: false,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::tests_support::plan;
    use super::*;
    use crate::model::presets::model_preset;

    #[test]
    fn infeasible_plans_are_reported_not_panicked() {
        let m = model_preset("gpt3-175b").unwrap();
        assert!(plan(8, 8, 16).validate(&m, 1024, 8, 1536).is_ok());
        assert!(matches!(
            plan(8, 8, 16).validate(&m, 1000, 8, 1536),
            Err(PlanError::GpuCountMismatch { .. })
        ));
        let e = plan(7, 8, 16).validate(&m, 7 * 128, 8, 1536).unwrap_err().to_string();
        assert!(e.contains("does not divide the 96 attention heads"), "{e}");
        let e = plan(8, 7, 16)
            .validate(&m, 8 * 7 * 16, 8, 1536)
            .unwrap_err()
            .to_string();
        assert!(e.contains("cannot be split evenly"), "{e}");
        let e = plan(8, 8, 16).validate(&m, 1024, 8, 1000).unwrap_err().to_string();
        assert!(e.contains("global_batch_size=1000"), "{e}");
    }

    #[test]
    fn embedding_and_loss_split_gives_llama405b_on_pp16_even_chunks() {
        let m = model_preset("llama3-405b").unwrap();
        let mut p = plan(8, 16, 128);
        assert!(p.validate(&m, 16384, 8, 2048).is_err());
        p.pipeline_split_embedding_and_loss = true;
        assert!(p.validate(&m, 16384, 8, 2048).is_ok());
        let l = p.layers_per_chunk(m.num_layers);
        assert_eq!(l.iter().sum::<u32>(), 126);
        assert_eq!((l[0], l[1], l[15]), (7, 8, 7));
    }

    #[test]
    fn megatron_placement_keeps_tp_in_node_and_spreads_dp() {
        let p = Placement::megatron(&plan(8, 8, 16), 8);
        assert_eq!(
            (p.tp_members_per_node, p.dp_members_per_node, p.pp_neighbours_share_node),
            (8, 1, false)
        );
        let p = Placement::megatron(&plan(2, 1, 48), 8);
        assert_eq!(
            (p.tp_members_per_node, p.dp_members_per_node, p.dp_group_nodes),
            (2, 4, 12)
        );
    }
}
