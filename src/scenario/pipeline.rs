//! A scenario's `[parallel]` section as a [`ParallelPlan`], with the pipeline part checked
//! where the file says it: the schedule's own conditions (`parallel.schedule`) and the
//! layer split (`parallel.first_stage_layers`, `last_stage_layers`, `stage_layers`,
//! `pipeline_split_embedding_and_loss`), each error located at its key; the remaining plan
//! checks are [`ParallelPlan::validate`]'s.

use super::raw::{RawMoe, RawParallel};
use super::{Checker, ScenarioError};
use crate::model::TransformerSpec;
use crate::parallel::{
    CpCommType, LayerSplit, ParallelPlan, PlanError, Recompute, RecomputeModule, RecomputeModules, Schedule,
};
use crate::training::TrainingSpec;

impl Checker<'_> {
    /// `parallel.recompute_modules`: Megatron's module names, only with selective
    /// recomputation, `mla_up_proj` only for MLA models.
    fn recompute_modules(
        &self,
        rp: &RawParallel,
        recompute: Recompute,
        model: &TransformerSpec,
    ) -> Result<RecomputeModules, ScenarioError> {
        let Some(names) = &rp.recompute_modules else {
            return Ok(RecomputeModules::default());
        };
        let field = "parallel.recompute_modules";
        if recompute != Recompute::Selective {
            return Err(self.invalid(
                field,
                format!("{names:?}"),
                format!(
                    "only applies with parallel.recompute = \"selective\" (it is \"{}\"); remove one of the two",
                    Recompute::NAMES[recompute as usize]
                ),
            ));
        }
        let mut modules = Vec::new();
        for n in names {
            let m = self.choice(field, n, RecomputeModule::NAMES, &RecomputeModule::ALL)?;
            if m == RecomputeModule::MlaUpProj && !matches!(model.attention, crate::model::Attention::Mla { .. }) {
                return Err(self.invalid(
                    field,
                    "\"mla_up_proj\"",
                    "only applies to models with multi-head latent attention (model.attention = \"mla\")",
                ));
            }
            modules.push(m);
        }
        Ok(RecomputeModules::of(&modules))
    }

    /// The plan of `[parallel]` (and the MoE overlap knob of `[moe]`), checked against the
    /// model, the cluster's `(num_gpus, gpus_per_node)` and the global batch.
    pub(super) fn plan(
        &self,
        rp: &RawParallel,
        moe: Option<&RawMoe>,
        model: &TransformerSpec,
        (num_gpus, gpus_per_node): (u32, u32),
        training: &TrainingSpec,
    ) -> Result<ParallelPlan, ScenarioError> {
        let global_batch = training.global_batch_size;
        let tp = self.at_least_one("parallel.tp", rp.tp.unwrap_or(1))?;
        let pp = self.at_least_one("parallel.pp", rp.pp.unwrap_or(1))?;
        let cp = self.at_least_one("parallel.cp", rp.cp.unwrap_or(1))?;
        let dp = match rp.dp {
            Some(d) => self.at_least_one("parallel.dp", d)?,
            // derived; a remainder is reported by the plan check below
            None => {
                let per_replica = u64::from(tp) * u64::from(pp) * u64::from(cp);
                u32::try_from(u64::from(num_gpus) / per_replica).unwrap_or(1).max(1)
            }
        };
        let cp_comm_type = match &rp.cp_comm_type {
            Some(s) => self.choice("parallel.cp_comm_type", s, CpCommType::NAMES, &CpCommType::ALL)?,
            None => CpCommType::P2p,
        };
        let cp_a2a_size = match rp.cp_a2a_size {
            Some(a) => self.at_least_one("parallel.cp_a2a_size", a)?,
            None if cp_comm_type == CpCommType::A2aP2p => default_cp_a2a_size(cp, tp, gpus_per_node, model),
            None => 1,
        };
        let virtual_stages = self.at_least_one("parallel.virtual_stages", rp.virtual_stages.unwrap_or(1))?;
        let schedule = match &rp.schedule {
            Some(s) => self.choice("parallel.schedule", s, &Schedule::names(), Schedule::ALL)?,
            None if virtual_stages > 1 => Schedule::INTERLEAVED,
            None => Schedule::ONE_F_ONE_B,
        };
        let recompute = match &rp.recompute {
            Some(s) => self.choice(
                "parallel.recompute",
                s,
                Recompute::NAMES,
                &[Recompute::None, Recompute::Selective, Recompute::Full],
            )?,
            None if rp.recompute_modules.is_some() => Recompute::Selective,
            None => Recompute::None,
        };
        let recompute_modules = self.recompute_modules(rp, recompute, model)?;
        let zero_stage = rp.zero_stage.unwrap_or(1);
        if zero_stage > 3 {
            return Err(self.invalid("parallel.zero_stage", zero_stage, "allowed values are 0, 1, 2, 3"));
        }
        let plan = ParallelPlan {
            tp,
            pp,
            dp,
            cp,
            cp_comm_type,
            cp_load_balance: rp.cp_load_balance.unwrap_or(true),
            cp_a2a_size,
            sequence_parallel: rp.sequence_parallel.unwrap_or(tp > 1),
            schedule,
            virtual_stages,
            micro_batch_size: self.at_least_one("parallel.micro_batch_size", rp.micro_batch_size.unwrap_or(1))?,
            zero_stage,
            recompute,
            recompute_modules,
            overlap_grad_reduce: rp.overlap_grad_reduce.unwrap_or(true),
            overlap_param_gather: rp.overlap_param_gather.unwrap_or(true),
            pipeline_split_embedding_and_loss: rp.pipeline_split_embedding_and_loss.unwrap_or(false),
            layer_split: LayerSplit {
                first_stage: rp.first_stage_layers,
                last_stage: rp.last_stage_layers,
                stages: match &rp.stage_layers {
                    Some(super::raw::RawStageLayers::Layers(v)) => Some(v.clone()),
                    Some(super::raw::RawStageLayers::Rule(r)) if r == "balanced" => None,
                    Some(super::raw::RawStageLayers::Rule(r)) => {
                        return Err(self.invalid(
                            "parallel.stage_layers",
                            format!("\"{r}\""),
                            "a list of layers per stage (or per model chunk), or \"balanced\"",
                        ))
                    }
                    None => None,
                },
            },
            replica_micro_batches: None,
            grad_bucket_params: self.positive("parallel.grad_bucket_params", rp.grad_bucket_params.unwrap_or(40e6))?,
            tp_comm_overlap: rp.tp_comm_overlap.unwrap_or(false),
            ep: self.at_least_one("parallel.ep", rp.ep.unwrap_or(1))?,
            expert_tp: self.at_least_one("parallel.expert_tp", rp.expert_tp.unwrap_or(1))?,
            moe_overlap: moe.and_then(|m| m.overlap_all_to_all).unwrap_or(false),
            moe_dispatch_fp8: match moe.and_then(|m| m.dispatch_precision.as_ref()) {
                Some(s) => self.choice("moe.dispatch_precision", s, &["bf16", "fp8"], &[false, true])?,
                None => false,
            },
            optimizer_post_validation: rp.optimizer_post_validation.unwrap_or(false),
        };
        self.pipeline(&plan, model, global_batch)?;
        plan.validate(model, num_gpus, gpus_per_node, global_batch)
            .and_then(|()| plan.validate_context(training.seq_length, training.flash_attention))
            .map_err(|e| match e {
                PlanError::Field { field, value, allowed } => self.invalid(field, value, allowed),
                e => {
                    let message = e.to_string();
                    ScenarioError::Plan {
                        path: self.path.to_path_buf(),
                        location: self.locate_plan(&message),
                        message,
                    }
                }
            })?;
        Ok(plan)
    }

    /// Located errors for the schedule and the split of `plan` (the remaining plan checks
    /// follow in [`ParallelPlan::validate`]).
    pub(super) fn pipeline(
        &self,
        plan: &ParallelPlan,
        model: &TransformerSpec,
        global_batch: u32,
    ) -> Result<(), ScenarioError> {
        let per_step = u64::from(plan.dp) * u64::from(plan.micro_batch_size);
        if per_step > 0 && u64::from(global_batch) % per_step == 0 {
            let shape = plan.pipeline_shape(global_batch, 0);
            if let Err(e) = plan.schedule.get().check(&shape) {
                return Err(self.invalid("parallel.schedule", format!("\"{}\"", plan.schedule.name()), e));
            }
        }
        if let Err(e) = plan.try_layers_per_chunk(model.num_layers) {
            let s = &plan.layer_split;
            let value = match e.field {
                "parallel.stage_layers" => format!("{:?}", s.stages.clone().unwrap_or_default()),
                "parallel.first_stage_layers" => s.first_stage.map(|x| x.to_string()).unwrap_or_default(),
                "parallel.last_stage_layers" => s.last_stage.map(|x| x.to_string()).unwrap_or_default(),
                _ => plan.pipeline_split_embedding_and_loss.to_string(),
            };
            return Err(self.invalid(
                e.field,
                value,
                format!(
                    "{} (model.num_layers = {}, pp = {})",
                    e.message, model.num_layers, plan.pp
                ),
            ));
        }
        Ok(())
    }
}

/// Default all-to-all degree of a hierarchical (`a2a+p2p`) CP group: the largest divisor
/// of `cp` whose all-to-all stays inside a node with the TP group and divides the query and
/// key/value heads of a TP rank.
fn default_cp_a2a_size(cp: u32, tp: u32, gpus_per_node: u32, model: &TransformerSpec) -> u32 {
    let heads = model.num_heads / tp.max(1);
    let kv_heads = (model.num_kv_heads / tp.max(1)).max(1);
    (1..=cp)
        .rev()
        .find(|&a| cp % a == 0 && a * tp <= gpus_per_node && heads % a == 0 && kv_heads % a == 0)
        .unwrap_or(1)
}

impl Checker<'_> {
    /// `parallel.stage_layers = "balanced"`: the split that evens out the stages' compute,
    /// each stage weighed by its GPU's time per layer ([`crate::workload::layer_compute_s`];
    /// the slowest of its replicas' GPUs; on one GPU type, the even split), then checked
    /// like a given split.
    pub(super) fn balance_layers(
        &self,
        plan: &mut ParallelPlan,
        cluster: &crate::hardware::ClusterSpec,
        model: &TransformerSpec,
        training: &TrainingSpec,
    ) -> Result<(), ScenarioError> {
        let chunks = plan
            .schedule
            .get()
            .chunks_per_stage(&plan.pipeline_shape(training.global_batch_size, 0));
        let split = balanced_stage_layers(plan, cluster, model, training).ok_or_else(|| {
            self.invalid(
                "parallel.stage_layers",
                "\"balanced\"",
                format!(
                    "needs model.num_layers = {} to be a multiple of the {chunks} model chunks per stage and at least one chunk per stage (pp = {})",
                    model.num_layers, plan.pp
                ),
            )
        })?;
        plan.layer_split = crate::parallel::LayerSplit {
            stages: Some(split),
            ..Default::default()
        };
        self.pipeline(plan, model, training.global_batch_size)
    }
}

/// `parallel.stage_layers = "balanced"` for `plan` on `cluster`: layers per stage (or per
/// model chunk) that even out the stages' compute, each stage weighed by its GPU's time
/// per layer ([`crate::workload::layer_compute_s`]; the slowest of its replicas' GPUs).
/// `None` when the layers cannot be split so (not a multiple of the chunks per stage).
pub fn balanced_stage_layers(
    plan: &ParallelPlan,
    cluster: &crate::hardware::ClusterSpec,
    model: &TransformerSpec,
    training: &TrainingSpec,
) -> Option<Vec<u32>> {
    let stride = plan.gpus_per_stage();
    let layer_s: Vec<f64> = (0..plan.pp)
        .map(|s| {
            // a stage whose replicas sit on several GPU types goes at its slowest's pace
            (cluster.gpus_in(s.saturating_mul(stride), stride).into_iter())
                .map(|g| crate::workload::layer_compute_s(g, model, plan, training))
                .fold(0.0, f64::max)
        })
        .collect();
    let shape = plan.pipeline_shape(training.global_batch_size, 0);
    let chunks = plan.schedule.get().chunks_per_stage(&shape);
    crate::parallel::split::balanced_split(&layer_s, model.num_layers, chunks)
}
