//! Validation of the `[target]`, `[reliability]` and `[energy]` sections into a
//! [`TrainingGoal`] (see docs/scenario.md).

use super::raw::{RawEnergy, RawReliability, RawTarget};
use super::{quote_list, Checker, ScenarioError};
use crate::model::TransformerSpec;
use crate::training::convergence::{CriticalBatch, LossLaw};
use crate::training::energy::EnergySpec;
use crate::training::reliability::ReliabilitySpec;
use crate::training::{Target, TrainingGoal};

/// `[reliability] preset` names.
pub const RELIABILITY_PRESETS: &[&str] = &["llama3"];

impl Checker<'_> {
    /// ":line:1" of the `[section]` header, when present.
    fn locate_section(&self, section: &str) -> String {
        self.src
            .lines()
            .position(|l| {
                l.trim().trim_matches(|c| c == '[' || c == ']').trim() == section && l.trim().starts_with('[')
            })
            .map(|i| format!(":{}:1", i + 1))
            .unwrap_or_default()
    }

    fn probability(&self, field: &str, v: f64) -> Result<f64, ScenarioError> {
        if v.is_finite() && (0.0..=1.0).contains(&v) {
            Ok(v)
        } else {
            Err(self.invalid(field, v, "must be a fraction in [0, 1]"))
        }
    }

    /// The training goal, `None` without a `[target]` section.
    pub(super) fn goal(
        &self,
        target: Option<&RawTarget>,
        reliability: Option<&RawReliability>,
        energy: Option<&RawEnergy>,
        model: &TransformerSpec,
    ) -> Result<Option<TrainingGoal>, ScenarioError> {
        let Some(t) = target else {
            if let Some(section) = [reliability.map(|_| "reliability"), energy.map(|_| "energy")]
                .into_iter()
                .flatten()
                .next()
            {
                return Err(ScenarioError::Invalid {
                    path: self.path.to_path_buf(),
                    location: self.locate_section(section),
                    field: section.to_string(),
                    value: "(section present)".into(),
                    allowed: "needs a [target] section (loss, tokens or steps): time, failures and energy are \
                              computed for a run to a target"
                        .into(),
                });
            }
            return Ok(None);
        };
        use crate::training::convergence::{effective_params, EffectiveParamsRule};
        let rule = match &t.moe_effective_params {
            Some(s) => self.choice(
                "target.moe_effective_params",
                s,
                EffectiveParamsRule::NAMES,
                &EffectiveParamsRule::ALL,
            )?,
            None => EffectiveParamsRule::default(),
        };
        let n = effective_params(model.total_params(), model.active_params(), rule);
        let (target, loss_law_name, loss_law) = self.target(t, n)?;
        Ok(Some(TrainingGoal {
            effective_params: rule,
            target,
            loss_law_name,
            loss_law,
            critical_batch: CriticalBatch {
                scale_tokens: self.positive(
                    "target.critical_batch_scale_tokens",
                    t.critical_batch_scale_tokens
                        .unwrap_or(CriticalBatch::KAPLAN2020.scale_tokens),
                )?,
                exponent: self.positive(
                    "target.critical_batch_exponent",
                    t.critical_batch_exponent.unwrap_or(CriticalBatch::KAPLAN2020.exponent),
                )?,
            },
            reliability: reliability.map(|r| self.reliability(r)).transpose()?,
            energy: self.energy(energy)?,
        }))
    }

    fn target(&self, t: &RawTarget, n: f64) -> Result<(Target, String, LossLaw), ScenarioError> {
        let (mut law, mut name) = match &t.loss_law {
            Some(s) => {
                let law = self.choice("target.loss_law", s, LossLaw::NAMES, &LossLaw::PRESETS)?;
                let i = LossLaw::PRESETS.iter().position(|p| *p == law).unwrap_or(0);
                (law, LossLaw::NAMES[i].to_string())
            }
            None => (LossLaw::BESIROGLU2024, "besiroglu2024".to_string()),
        };
        let base = name.clone();
        let mut set = |field: &str, v: Option<f64>, slot: &mut f64| -> Result<(), ScenarioError> {
            if let Some(v) = v {
                *slot = self.positive(&format!("target.{field}"), v)?;
                name = format!("custom (from {base})");
            }
            Ok(())
        };
        set("loss_law_e", t.loss_law_e, &mut law.e)?;
        set("loss_law_a", t.loss_law_a, &mut law.a)?;
        set("loss_law_b", t.loss_law_b, &mut law.b)?;
        set("loss_law_alpha", t.loss_law_alpha, &mut law.alpha)?;
        set("loss_law_beta", t.loss_law_beta, &mut law.beta)?;

        let given: Vec<(&str, f64)> = [("loss", t.loss), ("tokens", t.tokens), ("steps", t.steps)]
            .into_iter()
            .filter_map(|(k, v)| v.map(|v| (k, v)))
            .collect();
        let one_of = "set exactly one of target.loss, target.tokens, target.steps";
        let (key, v) = match given.as_slice() {
            [one] => *one,
            [] => return Err(self.invalid("target.loss", "(missing)", one_of)),
            [first, second, ..] => {
                return Err(self.invalid(
                    &format!("target.{}", second.0),
                    second.1,
                    format!("{one_of} (target.{} is also set)", first.0),
                ))
            }
        };
        let field = format!("target.{key}");
        let v = self.positive(&field, v)?;
        let target = match key {
            "loss" => {
                let floor = law.floor(n);
                if v <= floor {
                    return Err(self.invalid(
                        &field,
                        v,
                        format!(
                            "must exceed {floor:.4}, the loss of a {:.3e}-parameter model at infinite data under loss_law {name}",
                            n
                        ),
                    ));
                }
                Target::Loss(v)
            }
            "tokens" => Target::Tokens(v),
            _ => Target::Steps(v),
        };
        Ok((target, name, law))
    }

    fn reliability(&self, r: &RawReliability) -> Result<ReliabilitySpec, ScenarioError> {
        let mut spec = ReliabilitySpec::llama3();
        if let Some(p) = &r.preset {
            self.choice("reliability.preset", p, RELIABILITY_PRESETS, &[()])
                .map_err(|_| {
                    self.invalid(
                        "reliability.preset",
                        format!("\"{p}\""),
                        format!("known reliability presets are {}", quote_list(RELIABILITY_PRESETS)),
                    )
                })?;
        }
        if let Some(h) = r.gpu_mtbf_h {
            spec.interruptions_per_gpu_h = 1.0 / self.positive("reliability.gpu_mtbf_h", h)?;
            if r.preset.is_none() {
                spec.unplanned_fraction = 1.0;
            }
        }
        if let Some(v) = r.unplanned_fraction {
            spec.unplanned_fraction = self.probability("reliability.unplanned_fraction", v)?;
        }
        if let Some(v) = r.checkpoint_bytes_per_param {
            spec.checkpoint_bytes_per_param = self.positive("reliability.checkpoint_bytes_per_param", v)?;
        }
        if let Some(v) = r.checkpoint_write_gbyte_per_s_per_node {
            spec.checkpoint_write_gbyte_per_s_per_node =
                self.positive("reliability.checkpoint_write_gbyte_per_s_per_node", v)?;
        }
        if let Some(v) = r.snapshot_gbyte_per_s_per_gpu {
            spec.snapshot_gbyte_per_s_per_gpu = self.positive("reliability.snapshot_gbyte_per_s_per_gpu", v)?;
        }
        if let Some(v) = r.restart_s {
            spec.restart_s = self.non_negative("reliability.restart_s", v)?;
        }
        if let Some(v) = r.checkpoint_interval_steps {
            spec.checkpoint_interval_steps = Some(self.at_least_one("reliability.checkpoint_interval_steps", v)?);
        }
        spec.async_checkpoint = r.async_checkpoint.unwrap_or(false);
        Ok(spec)
    }

    fn energy(&self, e: Option<&RawEnergy>) -> Result<EnergySpec, ScenarioError> {
        let mut spec = EnergySpec::default();
        let Some(e) = e else { return Ok(spec) };
        let f = |k: &str| format!("energy.{k}");
        macro_rules! set {
            ($name:ident, $check:ident) => {
                if let Some(v) = e.$name {
                    spec.$name = self.$check(&f(stringify!($name)), v)?;
                }
            };
        }
        set!(compute_power_fraction, probability);
        set!(comm_power_fraction, probability);
        set!(idle_power_fraction, probability);
        set!(host_power_per_node_w, non_negative);
        set!(nic_power_w, non_negative);
        set!(switch_power_per_nic_w, non_negative);
        set!(grid_gco2_per_kwh, non_negative);
        set!(gpu_hour_usd, non_negative);
        if let Some(v) = e.pue {
            if !(v.is_finite() && v >= 1.0) {
                return Err(self.invalid("energy.pue", v, "must be at least 1 (facility power / IT power)"));
            }
            spec.pue = v;
        }
        Ok(spec)
    }
}
