//! The parallelism plan (data, tensor, sequence, context, expert and pipeline parallelism;
//! ZeRO; recompute; micro-batching) and its feasibility checks. Owns [`ParallelPlan`] and
//! [`PlanError`]; the dimensions are [`Dim`], where their groups sit is [`placement`], the
//! pipeline schedules are [`schedule`] (the trait) and [`schedules`] (the built-in ones and
//! their table), the split of the layers over the pipeline is [`split`].

pub mod cp;
mod dim;
pub mod placement;
pub mod recompute;
pub mod schedule;
pub mod schedules;
pub mod split;

pub use cp::CpCommType;
pub use dim::{Dim, PerDim};
pub use placement::{Placement, PlacementSummary};
pub use recompute::{RecomputeModule, RecomputeModules};
pub use schedule::PipelineShape;
pub use schedules::Schedule;
pub use split::LayerSplit;

use crate::model::TransformerSpec;
use serde::{Deserialize, Serialize};
use thiserror::Error;

/// Activation recomputation.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Recompute {
    /// Keep every activation.
    None,
    /// Recompute the modules of [`ParallelPlan::recompute_modules`] (by default the
    /// attention core only, Korthikanti et al. 2022).
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
    /// Context-parallel degree: the sequence of every micro-batch split across `cp` ranks
    /// ([`cp`]).
    #[serde(default = "one")]
    pub cp: u32,
    /// How attention exchanges keys and values across the CP group.
    #[serde(default, skip_serializing_if = "CpCommType::is_default")]
    pub cp_comm_type: CpCommType,
    /// Causal load balancing: each CP rank holds two mirrored chunks of the sequence
    /// ([`cp`]); off, rank `i` holds the `i`-th contiguous `s/cp` tokens.
    #[serde(default = "yes", skip_serializing_if = "is_true")]
    pub cp_load_balance: bool,
    /// All-to-all degree of a hierarchical (`a2a+p2p`) CP group: adjacent ranks exchanging
    /// heads; the ring runs over `cp / cp_a2a_size` of them. 1 otherwise.
    #[serde(default = "one", skip_serializing_if = "is_one")]
    pub cp_a2a_size: u32,
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
    /// What selective recomputation reruns (ignored by the other modes).
    #[serde(default, skip_serializing_if = "RecomputeModules::is_default")]
    pub recompute_modules: RecomputeModules,
    /// Overlap the gradient reduction with the backward pass (bucketed).
    pub overlap_grad_reduce: bool,
    /// Overlap the parameter all-gather (ZeRO >= 1) with the next forward pass.
    pub overlap_param_gather: bool,
    /// Megatron's layer split that counts the embedding and the loss as one layer each
    /// (`account_for_embedding/loss_in_pipeline_split`): (layers + 2) must divide evenly.
    pub pipeline_split_embedding_and_loss: bool,
    /// Layers per pipeline stage when not the default split (`first_stage_layers`,
    /// `last_stage_layers`, `stage_layers`).
    #[serde(default)]
    pub layer_split: LayerSplit,
    /// Micro-batches of each data-parallel replica per step when not all alike
    /// (`parallel.replica_micro_batches`; `None`: the even split, `num_microbatches`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub replica_micro_batches: Option<Vec<u32>>,
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
    /// MoE dispatch payloads (tokens towards the experts) in FP8 with per-128-element
    /// scales (`[moe] dispatch_precision`); the combine stays BF16. The experts then keep
    /// the FP8 payload as their GEMM input, without a 16-bit copy of the routed tokens.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub moe_dispatch_fp8: bool,
    /// Zero Bubble's optimizer post-validation: no gradient-norm synchronisation of all
    /// stages before the optimizer step (the check runs after it and rolls it back in the
    /// rare case it fails), so that a stage starts its next iteration as soon as its own
    /// work is done.
    #[serde(default)]
    pub optimizer_post_validation: bool,
}

fn one() -> u32 {
    1
}

fn yes() -> bool {
    true
}

fn is_true(b: &bool) -> bool {
    *b
}

fn is_one(x: &u32) -> bool {
    *x == 1
}

/// Why a plan cannot run. Each variant is fatal for that plan only (a sweep marks the
/// point infeasible and continues).
#[derive(Clone, Debug, PartialEq, Error)]
pub enum PlanError {
    /// tp * pp * dp (* cp) does not equal the number of GPUs.
    #[error(
        "the plan uses {product} = {used} GPUs but the cluster has {gpus}; make the product equal cluster.num_gpus"
    )]
    GpuCountMismatch {
        /// The product spelt out: `tp*pp*dp = 8*8*16`, with `*cp` when cp > 1.
        product: String,
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
    /// One field's value is not allowed with the rest of the plan (scenario files locate it).
    #[error("{field} = {value}: {allowed}")]
    Field {
        /// Dotted scenario path, e.g. `parallel.cp`.
        field: &'static str,
        /// The value as a scenario writes it.
        value: String,
        /// What is allowed and why.
        allowed: String,
    },
}

impl ParallelPlan {
    /// The size of the process group of `dim`.
    pub fn degree(&self, dim: Dim) -> u32 {
        match dim {
            Dim::Tp => self.tp,
            Dim::Cp => self.cp / self.cp_a2a(),
            Dim::Dp => self.dp,
            Dim::Ep => self.ep,
            Dim::ExpertDp => self.expert_dp(),
            Dim::Pp => self.pp,
            Dim::CpA2a => self.cp_a2a(),
            Dim::DpCp => self.dp * self.cp,
            // the node's share of the gradient group: the placement knows the node size
            Dim::DpNode => self.grad_group(),
            Dim::Etp => self.expert_tp,
        }
    }

    /// The all-to-all (Ulysses) degree inside the CP group: `cp` for `a2a`,
    /// `cp_a2a_size` for `a2a+p2p`, 1 otherwise. The ring ([`Dim::Cp`]) has `cp / this`.
    pub fn cp_a2a(&self) -> u32 {
        match self.cp_comm_type {
            CpCommType::A2a => self.cp.max(1),
            CpCommType::A2aP2p => self.cp_a2a_size.clamp(1, self.cp.max(1)),
            CpCommType::P2p | CpCommType::AllGather => 1,
        }
    }

    /// The group gradients are reduced over and the optimizer sharded over: DP, or with
    /// context parallelism DP x CP (Megatron's data-parallel group with CP).
    pub fn grad_dim(&self) -> Dim {
        if self.cp > 1 {
            Dim::DpCp
        } else {
            Dim::Dp
        }
    }

    /// Ranks of [`ParallelPlan::grad_dim`]: `dp * cp`.
    pub fn grad_group(&self) -> u32 {
        self.dp * self.cp.max(1)
    }

    /// The pipeline shape the schedule fills for a step of `global_batch_size` sequences;
    /// `extra_warmup` more forwards in flight (MoE all-to-all overlap).
    pub fn pipeline_shape(&self, global_batch_size: u32, extra_warmup: u32) -> PipelineShape {
        PipelineShape {
            pp: self.pp,
            microbatches: self.num_microbatches(global_batch_size),
            virtual_stages: self.virtual_stages,
            extra_warmup,
        }
    }

    /// Forwards the schedule runs ahead of its own warm-up: one with the MoE all-to-all
    /// overlap (so that a forward and a backward are ready together in the steady state).
    pub fn extra_warmup(&self, model: &TransformerSpec) -> u32 {
        u32::from(self.moe_overlap && model.moe.is_some())
    }

    /// Micro-batches per data-parallel replica per step.
    pub fn num_microbatches(&self, global_batch_size: u32) -> u32 {
        // u64: dp and micro_batch_size may each be large before the plan is validated
        (u64::from(global_batch_size) / (u64::from(self.dp) * u64::from(self.micro_batch_size)).max(1)) as u32
    }

    /// Micro-batches data-parallel replica `r` runs per step: its entry of
    /// `replica_micro_batches`, or the even split's.
    pub fn replica_microbatches(&self, r: u32, global_batch_size: u32) -> u32 {
        match &self.replica_micro_batches {
            Some(v) => v.get(r as usize).copied().unwrap_or(0),
            None => self.num_microbatches(global_batch_size),
        }
    }

    /// GPUs of one pipeline stage (`tp * cp * dp`): the stride between stages in the rank
    /// order, where pipeline stages are the outermost dimension.
    pub fn gpus_per_stage(&self) -> u32 {
        self.tp.saturating_mul(self.cp.max(1)).saturating_mul(self.dp)
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
            ("cp", self.cp),
            ("cp_a2a_size", self.cp_a2a_size),
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
        // before any product of degrees, so that each one below is at most num_gpus (no overflow)
        let used = self.tp as u64 * self.pp as u64 * self.dp as u64 * self.cp as u64;
        if used != num_gpus as u64 {
            let product = if self.cp > 1 {
                format!("tp*pp*dp*cp = {}*{}*{}*{}", self.tp, self.pp, self.dp, self.cp)
            } else {
                format!("tp*pp*dp = {}*{}*{}", self.tp, self.pp, self.dp)
            };
            return Err(PlanError::GpuCountMismatch {
                product,
                tp: self.tp,
                pp: self.pp,
                dp: self.dp,
                used,
                gpus: num_gpus,
            });
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
                if self.expert_tp == 0 || moe.expert_ffn_hidden_size % self.expert_tp != 0 {
                    let ok: Vec<String> = (1..=64u32)
                        .filter(|d| moe.expert_ffn_hidden_size % d == 0)
                        .map(|d| d.to_string())
                        .collect();
                    return Err(PlanError::Field {
                        field: "parallel.expert_tp",
                        value: self.expert_tp.to_string(),
                        allowed: format!(
                            "expert tensor parallelism splits each expert's FFN ({} wide) over expert_tp ranks, so it must divide it; values that do (up to 64): {}",
                            moe.expert_ffn_hidden_size,
                            ok.join(", ")
                        ),
                    });
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
        self.validate_cp(model)?;
        self.try_layers_per_chunk(model.num_layers)
            .map_err(|e| PlanError::Constraint(e.message))?;
        let per_step = u64::from(self.dp) * u64::from(self.micro_batch_size);
        if global_batch_size == 0 || u64::from(global_batch_size) % per_step != 0 {
            return c(format!(
                "global_batch_size={} is not a positive multiple of dp*micro_batch_size = {}*{} = {}",
                global_batch_size, self.dp, self.micro_batch_size, per_step
            ));
        }
        let shape = self.pipeline_shape(global_batch_size, 0);
        self.schedule.get().check(&shape).map_err(PlanError::Constraint)?;
        Ok(())
    }

    /// Checks the context-parallel fields against the model.
    fn validate_cp(&self, model: &TransformerSpec) -> Result<(), PlanError> {
        let field = |field, value: String, allowed: String| Err(PlanError::Field { field, value, allowed });
        if self.cp > 1 && model.moe.is_some() {
            return field(
                "parallel.cp",
                self.cp.to_string(),
                format!(
                    "context parallelism with a Mixture-of-Experts model is not modelled yet; use cp = 1 for {}",
                    model.name
                ),
            );
        }
        if self.cp_a2a_size > 1 && self.cp_comm_type != CpCommType::A2aP2p {
            return field(
                "parallel.cp_a2a_size",
                self.cp_a2a_size.to_string(),
                format!(
                    "applies to cp_comm_type = \"a2a+p2p\" only (it is \"{}\"); remove it or set it to 1",
                    self.cp_comm_type.name()
                ),
            );
        }
        if self.cp_comm_type == CpCommType::A2aP2p && self.cp % self.cp_a2a_size != 0 {
            return field(
                "parallel.cp_a2a_size",
                self.cp_a2a_size.to_string(),
                format!(
                    "must divide cp = {} (the all-to-all groups tile the CP group); allowed: {}",
                    self.cp,
                    divisors(self.cp).join(", ")
                ),
            );
        }
        let a2a = self.cp_a2a();
        if a2a > 1 {
            let heads = model.num_heads / self.tp;
            let kv_heads = (model.num_kv_heads / self.tp).max(1);
            if heads % a2a != 0 || kv_heads % a2a != 0 {
                let (name, value) = if self.cp_comm_type == CpCommType::A2a {
                    ("parallel.cp_comm_type", format!("\"{}\"", self.cp_comm_type.name()))
                } else {
                    ("parallel.cp_a2a_size", a2a.to_string())
                };
                return field(
                    name,
                    value,
                    format!(
                        "Ulysses (all-to-all) context parallelism splits the attention heads over {a2a} CP ranks, but each TP rank holds \
                         {heads} query and {kv_heads} key/value heads (num_heads/tp, num_kv_heads/tp with tp = {}), which {a2a} does not divide; \
                         replicating key/value heads across CP ranks is not modelled: use cp_comm_type = \"p2p\" or \"all_gather\", \
                         or \"a2a+p2p\" with cp_a2a_size among {}",
                        self.tp,
                        divisors(gcd(heads, kv_heads)).join(", ")
                    ),
                );
            }
        }
        Ok(())
    }

    /// Checks what context parallelism needs of the sequence: with load balancing `2 cp`
    /// chunks (`cp` without), and fused attention.
    pub fn validate_context(&self, seq_length: u32, flash_attention: bool) -> Result<(), PlanError> {
        if self.cp <= 1 {
            return Ok(());
        }
        if !flash_attention {
            return Err(PlanError::Field {
                field: "parallel.cp",
                value: self.cp.to_string(),
                allowed:
                    "context parallelism needs fused (flash) attention; set training.flash_attention = true or cp = 1"
                        .into(),
            });
        }
        let per_rank = if self.cp_load_balance { 2 } else { 1 };
        let chunks = per_rank * self.cp;
        if seq_length % chunks != 0 {
            let fits: Vec<String> = (1..=seq_length / per_rank)
                .filter(|c| seq_length % (per_rank * c) == 0 && *c <= 64)
                .map(|c| c.to_string())
                .collect();
            return Err(PlanError::Field {
                field: "parallel.cp",
                value: self.cp.to_string(),
                allowed: format!(
                    "{} = {chunks} must divide training.seq_length = {seq_length}{}; cp values that do (up to 64): {}",
                    if self.cp_load_balance { "2*cp" } else { "cp" },
                    if self.cp_load_balance {
                        " (causal load balancing gives each CP rank two mirrored chunks of the sequence)"
                    } else {
                        ""
                    },
                    fits.join(", ")
                ),
            });
        }
        Ok(())
    }

    /// Layers held by each model chunk, in layer order (the schedule's global chunk index),
    /// or why the split asked for cannot be made.
    pub fn try_layers_per_chunk(&self, num_layers: u32) -> Result<Vec<u32>, split::SplitError> {
        // the chunk map does not depend on the micro-batch count
        let shape = PipelineShape {
            pp: self.pp,
            microbatches: 2 * self.pp,
            virtual_stages: self.virtual_stages,
            extra_warmup: 0,
        };
        split::layers_per_chunk(
            num_layers,
            &self.layer_split,
            self.pipeline_split_embedding_and_loss,
            self.schedule.get(),
            &shape,
        )
    }

    /// Layers held by each model chunk, in layer order, of a validated plan (an invalid
    /// split falls back to the default one).
    pub fn layers_per_chunk(&self, num_layers: u32) -> Vec<u32> {
        self.try_layers_per_chunk(num_layers).unwrap_or_else(|_| {
            let plain = ParallelPlan {
                layer_split: LayerSplit::default(),
                pipeline_split_embedding_and_loss: false,
                ..self.clone()
            };
            plain.try_layers_per_chunk(num_layers).unwrap_or_default()
        })
    }
}

fn divisors(n: u32) -> Vec<String> {
    (1..=n).filter(|d| n % d == 0).map(|d| d.to_string()).collect()
}

fn gcd(a: u32, b: u32) -> u32 {
    if b == 0 {
        a
    } else {
        gcd(b, a % b)
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
            cp: 1,
            cp_comm_type: CpCommType::P2p,
            cp_load_balance: true,
            cp_a2a_size: 1,
            sequence_parallel: true,
            schedule: Schedule::ONE_F_ONE_B,
            virtual_stages: 1,
            micro_batch_size: 1,
            zero_stage: 1,
            recompute: Recompute::Selective,
            recompute_modules: RecomputeModules::default(),
            overlap_grad_reduce: true,
            overlap_param_gather: true,
            pipeline_split_embedding_and_loss: false,
            layer_split: LayerSplit::default(),
            replica_micro_batches: None,
            grad_bucket_params: 40e6,
            tp_comm_overlap: false,
            ep: 1,
            expert_tp: 1,
            moe_overlap: false,
            moe_dispatch_fp8: false,
            optimizer_post_validation: false,
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
        // 96 layers on 7 stages: Megatron's uneven default (13 + 5 x 14 + 13)
        assert!(plan(8, 7, 16).validate(&m, 8 * 7 * 16, 8, 1536).is_ok());
        let l = plan(8, 7, 16).layers_per_chunk(m.num_layers);
        assert_eq!(l, vec![13, 14, 14, 14, 14, 14, 13]);
        let e = plan(8, 8, 16).validate(&m, 1024, 8, 1000).unwrap_err().to_string();
        assert!(e.contains("global_batch_size=1000"), "{e}");
    }

    #[test]
    fn embedding_and_loss_split_gives_llama405b_on_pp16_even_chunks() {
        let m = model_preset("llama3-405b").unwrap();
        let mut p = plan(8, 16, 128);
        // 126 layers do not divide by 16: Megatron's uneven default gives the same split
        assert!(p.validate(&m, 16384, 8, 2048).is_ok());
        let l = p.layers_per_chunk(m.num_layers);
        assert_eq!((l[0], l[1], l[15]), (7, 8, 7));
        p.pipeline_split_embedding_and_loss = true;
        assert!(p.validate(&m, 16384, 8, 2048).is_ok());
        let l = p.layers_per_chunk(m.num_layers);
        assert_eq!(l.iter().sum::<u32>(), 126);
        assert_eq!((l[0], l[1], l[15]), (7, 8, 7));
    }
}
