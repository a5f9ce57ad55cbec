//! `parallel.replica_micro_batches`: how a step's micro-batches are shared among the
//! data-parallel replicas: evenly (the default), as listed, or `"balanced"` (each replica's
//! share by the speed of its GPUs, so that faster replicas of a heterogeneous cluster take
//! more of the batch).

use super::check::Checker;
use super::error::ScenarioError;
use super::raw::RawStageLayers;
use crate::hardware::ClusterSpec;
use crate::model::TransformerSpec;
use crate::parallel::ParallelPlan;
use crate::training::TrainingSpec;

const FIELD: &str = "parallel.replica_micro_batches";

/// Micro-batches per replica for the step time `per_mb_s[r] * (m_r + fill)` of each
/// replica (`fill`: the pipeline's fill and drain, `pp - 1` micro-batch times), at least
/// one each, `total` in all: the split that minimises the slowest replica's time (one
/// micro-batch at a time to the replica that would finish it first; ties to the lower
/// replica).
pub fn balanced_batches(per_mb_s: &[f64], total: u32, fill: u32) -> Vec<u32> {
    let mut m = vec![1u32; per_mb_s.len()];
    for _ in per_mb_s.len() as u32..total {
        let finish = |r: usize| per_mb_s[r] * f64::from(m[r] + 1 + fill);
        let best = (0..m.len()).fold(0, |b, r| if finish(r) < finish(b) { r } else { b });
        m[best] += 1;
    }
    m
}

impl Checker<'_> {
    /// The micro-batches of each replica (`None`: the even split), checked: `dp` entries of
    /// at least one, summing to the step's micro-batches, each a count the schedule runs.
    pub(super) fn replica_batches(
        &self,
        raw: Option<&RawStageLayers>,
        plan: &ParallelPlan,
        cluster: &ClusterSpec,
        model: &TransformerSpec,
        training: &TrainingSpec,
    ) -> Result<Option<Vec<u32>>, ScenarioError> {
        let total = plan
            .num_microbatches(training.global_batch_size)
            .saturating_mul(plan.dp);
        let split = match raw {
            None => return Ok(None),
            Some(RawStageLayers::Rule(r)) if r == "even" => return Ok(None),
            Some(RawStageLayers::Rule(r)) if r == "balanced" => {
                balanced_batches(&replica_times(plan, cluster, model, training), total, plan.pp - 1)
            }
            Some(RawStageLayers::Rule(r)) => {
                return Err(self.invalid(
                    FIELD,
                    format!("\"{r}\""),
                    format!(
                        "\"even\", \"balanced\", or a list of dp = {} micro-batch counts",
                        plan.dp
                    ),
                ))
            }
            Some(RawStageLayers::Layers(v)) => v.clone(),
        };
        let shown = || {
            let s = format!("{split:?}");
            if s.len() > 80 {
                format!("{}...]", &s[..76])
            } else {
                s
            }
        };
        let sum: u64 = split.iter().map(|&m| u64::from(m)).sum();
        if split.len() != plan.dp as usize || split.contains(&0) || sum != u64::from(total) {
            return Err(self.invalid(
                FIELD,
                shown(),
                format!(
                    "dp = {} counts of at least 1, summing to the step's {total} micro-batches \
                     (training.global_batch_size = {} / parallel.micro_batch_size = {})",
                    plan.dp, training.global_batch_size, plan.micro_batch_size
                ),
            ));
        }
        if let Err(e) = schedule_runs(&split, plan, model, training) {
            return Err(self.invalid(FIELD, shown(), e));
        }
        Ok((split.iter().any(|&m| m != split[0])).then_some(split))
    }
}

/// Whether the schedule of `plan` runs each replica's count of `split` (else why not).
pub(crate) fn schedule_runs(
    split: &[u32],
    plan: &ParallelPlan,
    model: &TransformerSpec,
    training: &TrainingSpec,
) -> Result<(), String> {
    for &m in split {
        let mut shape = plan.pipeline_shape(training.global_batch_size, plan.extra_warmup(model));
        shape.microbatches = m;
        if let Err(e) = plan.schedule.get().check(&shape) {
            return Err(format!(
                "a replica of {m} micro-batches: {e} (schedule {})",
                plan.schedule.name()
            ));
        }
    }
    Ok(())
}

/// `parallel.replica_micro_batches = "balanced"` for `plan` on `cluster`, checked: the
/// split, `None` when it is the even one or the schedule cannot run it.
pub fn balanced_replica_batches(
    plan: &ParallelPlan,
    cluster: &ClusterSpec,
    model: &TransformerSpec,
    training: &TrainingSpec,
) -> Option<Vec<u32>> {
    let total = plan
        .num_microbatches(training.global_batch_size)
        .saturating_mul(plan.dp);
    let split = balanced_batches(&replica_times(plan, cluster, model, training), total, plan.pp - 1);
    let uneven = split.iter().any(|&m| m != split[0]);
    (uneven && schedule_runs(&split, plan, model, training).is_ok()).then_some(split)
}

/// Each replica's time per micro-batch: its slowest stage's layers times that stage's
/// GPU's time per layer ([`crate::workload::layer_compute_s`]).
fn replica_times(
    plan: &ParallelPlan,
    cluster: &ClusterSpec,
    model: &TransformerSpec,
    training: &TrainingSpec,
) -> Vec<f64> {
    let shape = plan.pipeline_shape(training.global_batch_size, 0);
    let schedule = plan.schedule.get();
    let chunks = plan.layers_per_chunk(model.num_layers);
    let stage_layers: Vec<u32> = (0..plan.pp)
        .map(|s| {
            (0..schedule.chunks_per_stage(&shape))
                .map(|c| {
                    chunks
                        .get(schedule.global_chunk(s, c, &shape) as usize)
                        .copied()
                        .unwrap_or(0)
                })
                .sum()
        })
        .collect();
    let (stride, replica) = (plan.gpus_per_stage(), plan.tp.max(1) * plan.cp.max(1));
    (0..plan.dp)
        .map(|r| {
            (0..plan.pp)
                .map(|s| {
                    let gpu = cluster.gpu_at(s.saturating_mul(stride).saturating_add(r.saturating_mul(replica)));
                    f64::from(stage_layers[s as usize]) * crate::workload::layer_compute_s(gpu, model, plan, training)
                })
                .fold(0.0, f64::max)
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::balanced_batches;

    /// Two replicas, one twice as fast per micro-batch: 16 micro-batches go about 2:1,
    /// the split that minimises the slower finish (checked against every split).
    #[test]
    fn the_balanced_split_minimises_the_slowest_replica() {
        let t = [1.0, 2.0];
        for fill in [0, 3] {
            let m = balanced_batches(&t, 16, fill);
            assert_eq!(m.iter().sum::<u32>(), 16);
            let worst = |a: u32| (t[0] * f64::from(a + fill)).max(t[1] * f64::from(16 - a + fill));
            let best = (1..16).map(worst).fold(f64::INFINITY, f64::min);
            assert_eq!(worst(m[0]), best, "fill {fill}: {m:?}");
        }
        assert_eq!(balanced_batches(&[1.0, 2.0], 16, 0), vec![11, 5]);
        assert_eq!(balanced_batches(&[1.0; 4], 8, 3), vec![2; 4]);
    }
}
