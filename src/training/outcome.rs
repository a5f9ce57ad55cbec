//! Training to a target: the simulated step time scaled up to a whole run, with the
//! convergence, failure and energy models of [`super::convergence`],
//! [`super::reliability`] and [`super::energy`].
//!
//! * steps to target: from the target (steps; tokens / tokens per step; or the tokens a
//!   loss needs at this batch, `D_min (1 + B/B_crit)`);
//! * compute time = steps x simulated step time; wall-clock = compute time / goodput
//!   (1 without a `[reliability]` section);
//! * GPU-hours = wall-clock x GPUs (the machines are held through restarts).

use super::convergence::{loss_after_tokens, tokens_to_loss, CriticalBatch, LossLaw};
use super::energy::{self, EnergyOutcome, EnergySpec};
use super::montecarlo::{self, Percentiles};
use super::reliability::{self, ReliabilityOutcome, ReliabilitySpec};
use super::SimulatedStep;
use crate::hardware::ClusterSpec;
use crate::model::TransformerSpec;
use serde::{Deserialize, Deserializer, Serialize};

/// What the run trains to.
#[derive(Clone, Copy, Debug, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Target {
    /// A loss, nats per token.
    Loss(f64),
    /// A number of training tokens.
    Tokens(f64),
    /// A number of optimizer steps.
    Steps(f64),
}

/// Everything needed to turn a step time into a run to a target (the validated
/// `[target]`, `[reliability]` and `[energy]` sections).
#[derive(Clone, Debug, PartialEq)]
pub struct TrainingGoal {
    /// Which parameter count of a MoE model is the loss law's `N`.
    pub effective_params: super::convergence::EffectiveParamsRule,
    /// The target.
    pub target: Target,
    /// Name of the loss law ("hoffmann2022", "besiroglu2024", or "custom" when overridden).
    pub loss_law_name: String,
    /// Its constants.
    pub loss_law: LossLaw,
    /// Critical-batch law.
    pub critical_batch: CriticalBatch,
    /// Failures and checkpoints (`None`: no failures, no checkpoint cost).
    pub reliability: Option<ReliabilitySpec>,
    /// Power, emissions, price.
    pub energy: EnergySpec,
}

/// One point of the predicted loss curve.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct LossPoint {
    /// Wall-clock since the start, failures included (mean), h.
    pub wall_clock_h: f64,
    /// Tokens trained.
    pub tokens: f64,
    /// Predicted loss, nats per token.
    pub loss_nats: f64,
}

/// A run to a target: time, failures, energy, cost, loss curve.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct TrainingOutcome {
    /// The target as written, e.g. "tokens = 1.56e13".
    pub target: String,
    /// Loss law used.
    pub loss_law: String,
    /// Parameters of the model.
    pub params: f64,
    /// Global batch, tokens per step.
    pub tokens_per_step: f64,
    /// Predicted loss at the target, nats per token.
    pub loss_at_target_nats: f64,
    /// Loss floor of this model size (infinite data), nats per token.
    pub loss_floor_nats: f64,
    /// Critical batch at the target loss, tokens.
    pub critical_batch_tokens: f64,
    /// Tokens to the target.
    pub tokens_to_target: f64,
    /// Steps to the target.
    pub steps_to_target: f64,
    /// Tokens the target loss would need at a batch far below the critical batch.
    pub min_tokens_to_target: f64,
    /// Steps the target loss would need at a batch far above the critical batch.
    pub min_steps_to_target: f64,
    /// Training time without failures or checkpoints, h.
    pub compute_time_to_target_h: f64,
    /// Wall-clock to the target, failures and checkpoints included (mean), h;
    /// `null` in JSON when failures outpace checkpoints.
    #[serde(deserialize_with = "f64_or_inf")]
    pub wall_clock_to_target_h: f64,
    /// The same, days.
    #[serde(deserialize_with = "f64_or_inf")]
    pub wall_clock_to_target_days: f64,
    /// 10th percentile of the wall-clock to the target over [`montecarlo::DEFAULT_RUNS`]
    /// seeded random runs of the failure process (equal to the mean without
    /// `[reliability]`), h.
    #[serde(default = "f64_nan", deserialize_with = "f64_or_inf")]
    pub wall_clock_to_target_p10_h: f64,
    /// Median of the same runs, h.
    #[serde(default = "f64_nan", deserialize_with = "f64_or_inf")]
    pub wall_clock_to_target_p50_h: f64,
    /// 90th percentile of the same runs, h.
    #[serde(default = "f64_nan", deserialize_with = "f64_or_inf")]
    pub wall_clock_to_target_p90_h: f64,
    /// GPU-hours to the target (wall-clock x GPUs).
    #[serde(deserialize_with = "f64_or_inf")]
    pub gpu_hours: f64,
    /// Useful training time / wall-clock, fraction (1 without `[reliability]`).
    pub goodput_fraction: f64,
    /// Expected interruptions before the target is reached.
    #[serde(deserialize_with = "f64_or_inf")]
    pub expected_interruptions: f64,
    /// Failures and checkpoints (`None` without `[reliability]`).
    pub reliability: Option<ReliabilityOutcome>,
    /// Power, energy, emissions, cost.
    pub energy: EnergyOutcome,
    /// Predicted loss against wall-clock (points where the critical-batch law holds).
    pub loss_curve: Vec<LossPoint>,
}

/// Reads a float written as `null` (non-finite) back as infinity.
fn f64_or_inf<'de, D: Deserializer<'de>>(d: D) -> Result<f64, D::Error> {
    Ok(Option::<f64>::deserialize(d)?.unwrap_or(f64::INFINITY))
}

impl TrainingGoal {
    /// The `N` of the loss law for `model` (its total parameters when dense; for MoE by
    /// [`TrainingGoal::effective_params`]).
    pub fn loss_law_params(&self, model: &crate::model::TransformerSpec) -> f64 {
        super::convergence::effective_params(model.total_params(), model.active_params(), self.effective_params)
    }
}

/// Default of a field missing from an older results file.
fn f64_nan() -> f64 {
    f64::NAN
}

/// Points of the loss curve.
pub const LOSS_CURVE_POINTS: usize = 50;

/// Scales the simulated step `r` of `model` on `cluster` up to a run to `goal`; `seed`
/// seeds the failure process's random runs.
pub fn outcome(
    r: &SimulatedStep,
    model: &TransformerSpec,
    cluster: &ClusterSpec,
    seed: u64,
    goal: &TrainingGoal,
) -> TrainingOutcome {
    let n = goal.loss_law_params(model);
    let b = r.tokens_per_step;
    let (law, cb) = (&goal.loss_law, &goal.critical_batch);
    // a convergence penalty (gradient compression) takes more steps to a target loss; a
    // tokens or steps target trains as long and reaches what the law predicts
    let penalty = match goal.target {
        Target::Loss(_) => 1.0 + r.extra_steps_fraction.max(0.0),
        _ => 1.0,
    };
    let (tokens, target) = match goal.target {
        Target::Loss(l) => (
            // reachability was checked with the scenario; infinity if not
            tokens_to_loss(law, cb, n, l, b).unwrap_or(f64::INFINITY) * penalty,
            format!("loss = {l}"),
        ),
        Target::Tokens(t) => (t, format!("tokens = {t:e}")),
        Target::Steps(s) => (s * b, format!("steps = {s}")),
    };
    let steps = tokens / b;
    let loss = match goal.target {
        Target::Loss(l) => l,
        _ => loss_after_tokens(law, cb, n, tokens, b).unwrap_or(f64::NAN),
    };
    let d_min = law.tokens_for_loss(n, loss).unwrap_or(f64::NAN);
    let bc = cb.tokens(loss);
    let compute_s = steps * r.step_time_s;

    let c = cluster;
    let nodes = c.num_nodes();
    let rel = goal
        .reliability
        .as_ref()
        .map(|s| reliability::evaluate(s, c.num_gpus, nodes, n, r.step_time_s));
    let goodput = rel.as_ref().map(|o| o.goodput_fraction).unwrap_or(1.0);
    let wall_s = compute_s / goodput;
    let (interruptions, stalled_s) = match &rel {
        Some(o) => {
            let k = wall_s / (o.job_mtbf_h * 3600.0);
            let checkpoints = compute_s / o.checkpoint_interval_s;
            (
                k,
                k * o.downtime_per_interruption_s + checkpoints * o.checkpoint_stall_s,
            )
        }
        None => (0.0, 0.0),
    };
    // percentiles from seeded random runs; the mean stands for them when there is no
    // randomness (no [reliability]) or too many interruptions to draw
    let spread = match (&goal.reliability, &rel) {
        (Some(spec), Some(o)) => montecarlo::wall_clock_samples_s(spec, o, compute_s, seed, montecarlo::DEFAULT_RUNS)
            .and_then(|s| Percentiles::of(&s)),
        _ => None,
    }
    .unwrap_or(Percentiles::constant(wall_s));
    let gpu_hours = wall_s / 3600.0 * c.num_gpus as f64;
    let e = &goal.energy;
    // the mean board power of the cluster's GPUs (groups of different GPUs weighed by count)
    let tdp_w = c.mean_over_gpus(|g| g.tdp_w);
    let p_gpu = energy::gpu_power_w(e, tdp_w, r);
    let other = energy::other_it_power_w(e, nodes, c.nics_per_node);
    let stalled_s = stalled_s.min(wall_s);
    let en = energy::evaluate(
        e,
        tdp_w,
        c.num_gpus,
        other,
        p_gpu,
        r.step_time_s,
        wall_s - stalled_s,
        stalled_s,
        gpu_hours,
    );

    let mut loss_curve = Vec::new();
    if tokens.is_finite() {
        for i in 1..=LOSS_CURVE_POINTS {
            let t = tokens * i as f64 / LOSS_CURVE_POINTS as f64;
            if let Some(l) = loss_after_tokens(law, cb, n, t / penalty, b) {
                loss_curve.push(LossPoint {
                    wall_clock_h: t / b * r.step_time_s / goodput / 3600.0,
                    tokens: t,
                    loss_nats: l,
                });
            }
        }
    }
    TrainingOutcome {
        target,
        loss_law: goal.loss_law_name.clone(),
        params: n,
        tokens_per_step: b,
        loss_at_target_nats: loss,
        loss_floor_nats: law.floor(n),
        critical_batch_tokens: bc,
        tokens_to_target: tokens,
        steps_to_target: steps,
        min_tokens_to_target: d_min,
        min_steps_to_target: d_min / bc,
        compute_time_to_target_h: compute_s / 3600.0,
        wall_clock_to_target_h: wall_s / 3600.0,
        wall_clock_to_target_days: wall_s / 86400.0,
        wall_clock_to_target_p10_h: spread.p10_s / 3600.0,
        wall_clock_to_target_p50_h: spread.p50_s / 3600.0,
        wall_clock_to_target_p90_h: spread.p90_s / 3600.0,
        gpu_hours,
        goodput_fraction: goodput,
        expected_interruptions: interruptions,
        reliability: rel,
        energy: en,
        loss_curve,
    }
}
