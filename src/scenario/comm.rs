//! The `[communication]` section (element type on the wire per communication kind,
//! gradient compression) and the `[offload]` and `[cluster.host]` sections, into a
//! [`CommSpec`] and an [`OffloadSpec`] (see docs/scenario.md).

use super::raw::{RawCommunication, RawHost, RawOffload};
use super::{Checker, ScenarioError};
use crate::hardware::HostSpec;
use crate::parallel::ParallelPlan;
use crate::workload::offload::{OffloadSpec, OffloadTier};
use crate::workload::wire::{CommSpec, Compression, Method, WireDtype, METHODS};
use crate::workload::CommKind;

impl Checker<'_> {
    /// The wire of a run: `[communication]`, checked against the plan.
    pub(super) fn comm(&self, raw: Option<&RawCommunication>, plan: &ParallelPlan) -> Result<CommSpec, ScenarioError> {
        let mut spec = CommSpec::default();
        let Some(r) = raw else { return Ok(spec) };
        let dtypes = [
            &r.tp_dtype,
            &r.cp_dtype,
            &r.dp_grad_dtype,
            &r.dp_param_dtype,
            &r.pp_dtype,
            &r.ep_dtype,
        ];
        for (k, v) in CommKind::ALL.iter().zip(dtypes) {
            if let Some(v) = v {
                let field = format!("communication.{}_dtype", k.name());
                spec.dtype[k.index()] = self.choice(&field, v, WireDtype::NAMES, &WireDtype::ALL)?;
            }
        }
        let method = match &r.compression {
            Some(s) => {
                let methods: Vec<Method> = METHODS.iter().map(|m| m.method).collect();
                self.choice("communication.compression", s, &Method::names(), &methods)?
            }
            None => Method::None,
        };
        let info = method.info();
        let mut c = Compression {
            method,
            warmup_fraction: info.default_warmup_fraction,
            ..Compression::default()
        };
        // keys of one method only
        let only = |field: &str, set: bool, methods: &[Method]| -> Result<(), ScenarioError> {
            if set && !methods.contains(&method) {
                let names: Vec<&str> = methods.iter().map(|m| m.info().name).collect();
                return Err(self.invalid(
                    &format!("communication.{field}"),
                    "(set)",
                    format!(
                        "applies to communication.compression = {} only (here \"{}\")",
                        super::quote_list(&names),
                        info.name
                    ),
                ));
            }
            Ok(())
        };
        let onebit = [Method::OnebitAdam, Method::OnebitLamb, Method::ZeroOneAdam];
        only("warmup_fraction", r.warmup_fraction.is_some(), &onebit)?;
        only("local_steps", r.local_steps.is_some(), &[Method::ZeroOneAdam])?;
        only("powersgd_rank", r.powersgd_rank.is_some(), &[Method::Powersgd])?;
        only("topk_fraction", r.topk_fraction.is_some(), &[Method::Topk])?;
        let zpp = r.zeropp_qwz.is_some() || r.zeropp_hpz.is_some() || r.zeropp_qgz.is_some();
        only("zeropp_qwz", zpp, &[Method::Zeropp])?;
        let compressing: Vec<Method> = METHODS
            .iter()
            .map(|m| m.method)
            .filter(|&m| m != Method::None)
            .collect();
        only("extra_steps_fraction", r.extra_steps_fraction.is_some(), &compressing)?;
        if let Some(w) = r.warmup_fraction {
            if !(w.is_finite() && (0.0..1.0).contains(&w)) {
                return Err(self.invalid("communication.warmup_fraction", w, "must be in [0, 1)"));
            }
            c.warmup_fraction = w;
        }
        if let Some(k) = r.local_steps {
            c.local_steps = self.at_least_one("communication.local_steps", k)?;
        }
        if let Some(k) = r.powersgd_rank {
            c.powersgd_rank = self.at_least_one("communication.powersgd_rank", k)?;
        }
        if let Some(f) = r.topk_fraction {
            if !(f > 0.0 && f <= 1.0) {
                return Err(self.invalid("communication.topk_fraction", f, "must be in (0, 1]"));
            }
            c.topk_fraction = f;
        }
        c.qwz = r.zeropp_qwz.unwrap_or(true);
        c.hpz = r.zeropp_hpz.unwrap_or(true);
        c.qgz = r.zeropp_qgz.unwrap_or(true);
        if let Some(x) = r.extra_steps_fraction {
            c.extra_steps_fraction = self.non_negative("communication.extra_steps_fraction", x)?;
        }
        if method != Method::None {
            // the method compresses the gradient exchange of the data-parallel group
            if !info.zero_stages.contains(&plan.zero_stage) {
                let stages: Vec<String> = info.zero_stages.iter().map(u32::to_string).collect();
                return Err(self.invalid(
                    "communication.compression",
                    format!("\"{}\"", info.name),
                    format!(
                        "compresses the {} of ZeRO stage {} only, and parallel.zero_stage = {} ({})",
                        match method {
                            Method::Zeropp => "parameter gathers and gradient reduce-scatter",
                            Method::Topk => "gradient all-gather",
                            _ => "gradient all-reduce",
                        },
                        stages.join(" or "),
                        plan.zero_stage,
                        "set parallel.zero_stage accordingly"
                    ),
                ));
            }
            if plan.grad_group() <= 1 {
                return Err(self.invalid(
                    "communication.compression",
                    format!("\"{}\"", info.name),
                    "compresses data-parallel gradients, and this plan has no data-parallel group (dp * cp = 1)",
                ));
            }
        }
        spec.compression = c;
        Ok(spec)
    }

    /// Offloading: `[offload]` with the host of `[cluster.host]` (defaults per GPU).
    pub(super) fn offload(
        &self,
        raw: Option<&RawOffload>,
        host: Option<&RawHost>,
        gpu_name: &str,
        gpus_per_node: u32,
        plan: &ParallelPlan,
    ) -> Result<OffloadSpec, ScenarioError> {
        let mut h = HostSpec::for_gpu(gpu_name);
        if let Some(rh) = host {
            if let Some(v) = rh.cpu_memory_gib {
                h.cpu_memory_gib = self.non_negative("cluster.host.cpu_memory_gib", v)?;
            }
            if let Some(v) = rh.pcie_gbyte_per_s {
                h.pcie_gbyte_per_s = self.positive("cluster.host.pcie_gbyte_per_s", v)?;
            }
            if let Some(v) = rh.nvme_gbyte_per_s {
                h.nvme_gbyte_per_s = self.non_negative("cluster.host.nvme_gbyte_per_s", v)?;
            }
            if let Some(v) = rh.cpu_adam_params_per_s {
                h.cpu_adam_params_per_s = self.positive("cluster.host.cpu_adam_params_per_s", v)?;
            }
        }
        let mut spec = OffloadSpec {
            host: h,
            gpus_per_node,
            ..OffloadSpec::default()
        };
        let Some(r) = raw else { return Ok(spec) };
        let tier = |field: &str, v: &Option<String>, names: &[&str]| -> Result<OffloadTier, ScenarioError> {
            match v {
                Some(s) => self.choice(&format!("offload.{field}"), s, names, &OffloadTier::ALL),
                None => Ok(OffloadTier::None),
            }
        };
        spec.optimizer = tier("optimizer", &r.optimizer, OffloadTier::NAMES)?;
        spec.parameters = tier("parameters", &r.parameters, OffloadTier::NAMES)?;
        // activations go to CPU memory only
        spec.activations = tier("activations", &r.activations, &OffloadTier::NAMES[..2])?;
        if spec.optimizer.is_offloaded() && plan.zero_stage < 1 {
            return Err(self.invalid(
                "offload.optimizer",
                format!("\"{}\"", OffloadTier::NAMES[spec.optimizer as usize]),
                "offloads each rank's optimizer shard (ZeRO-Offload): needs parallel.zero_stage >= 1",
            ));
        }
        if spec.parameters.is_offloaded() && (plan.zero_stage < 3 || !spec.optimizer.is_offloaded()) {
            return Err(self.invalid(
                "offload.parameters",
                format!("\"{}\"", OffloadTier::NAMES[spec.parameters as usize]),
                "offloads ZeRO-3 parameter shards (ZeRO-Infinity): needs parallel.zero_stage = 3 and \
                 offload.optimizer offloaded too",
            ));
        }
        let tiers = [spec.optimizer, spec.parameters, spec.activations];
        let (field, what) = if tiers.contains(&OffloadTier::Cpu) || tiers.contains(&OffloadTier::Nvme) {
            ("cluster.host.cpu_memory_gib", spec.host.cpu_memory_gib)
        } else {
            return Ok(spec);
        };
        if what <= 0.0 {
            return Err(self.invalid(
                field,
                what,
                "offloading needs CPU memory on the host (the optimizer step runs there, copies pass \
                 through it): must be positive",
            ));
        }
        if tiers.contains(&OffloadTier::Nvme) && spec.host.nvme_gbyte_per_s <= 0.0 {
            return Err(self.invalid(
                "cluster.host.nvme_gbyte_per_s",
                spec.host.nvme_gbyte_per_s,
                "offloading to \"nvme\" needs NVMe bandwidth: must be positive",
            ));
        }
        Ok(spec)
    }
}
