//! The `[cluster]` section: the GPU (a preset, its overrides, or a custom GPU) and the
//! network topology and collective algorithms.
use super::check::{quote_list, Checker};
use super::{fields, raw, ScenarioError};
use crate::hardware::presets::{gpu_preset, GPU_PRESETS};
use crate::hardware::GpuSpec;

impl Checker<'_> {
    pub(super) fn gpu(&self, g: &raw::RawGpu) -> Result<GpuSpec, ScenarioError> {
        let mut spec = match &g.preset {
            Some(name) => gpu_preset(name).ok_or_else(|| {
                self.invalid(
                    "cluster.gpu.preset",
                    format!("\"{name}\""),
                    format!(
                        "{}known GPU presets are {}",
                        fields::did_you_mean(name, GPU_PRESETS.iter().copied(), "\""),
                        quote_list(GPU_PRESETS)
                    ),
                )
            })?,
            None => {
                let need = |v: Option<f64>, f: &str| {
                    v.ok_or_else(|| {
                        self.invalid(
                            &format!("cluster.gpu.{f}"),
                            "(missing)",
                            "required when cluster.gpu.preset is not set",
                        )
                    })
                };
                let hopper = gpu_preset("H100-SXM").expect("preset exists");
                GpuSpec {
                    name: "custom".into(),
                    peak_bf16_tflops: need(g.peak_bf16_tflops, "peak_bf16_tflops")?,
                    peak_fp8_tflops: g.peak_fp8_tflops.unwrap_or(0.0),
                    hbm_capacity_gib: need(g.hbm_capacity_gib, "hbm_capacity_gib")?,
                    hbm_bandwidth_gbyte_per_s: need(g.hbm_bandwidth_gbyte_per_s, "hbm_bandwidth_gbyte_per_s")?,
                    scale_up_gbyte_per_s: need(g.scale_up_gbyte_per_s, "scale_up_gbyte_per_s")?,
                    ..hopper
                }
            }
        };
        let f = |field: &str| format!("cluster.gpu.{field}");
        macro_rules! set {
            ($name:ident, $check:ident) => {
                if let Some(v) = g.$name {
                    spec.$name = self.$check(&f(stringify!($name)), v)?;
                }
            };
        }
        set!(peak_bf16_tflops, positive);
        set!(peak_fp8_tflops, non_negative);
        set!(hbm_capacity_gib, positive);
        set!(hbm_bandwidth_gbyte_per_s, positive);
        set!(scale_up_gbyte_per_s, positive);
        set!(tdp_w, positive);
        set!(gemm_efficiency, fraction);
        set!(gemm_half_efficiency_dim, non_negative);
        set!(fp8_gemm_efficiency, fraction);
        set!(attention_fwd_efficiency, fraction);
        set!(attention_bwd_efficiency, fraction);
        set!(memory_efficiency, fraction);
        set!(kernel_overhead_us, non_negative);
        set!(grouped_gemm_efficiency, fraction);
        if let Some(v) = g.sm_count {
            spec.sm_count = self.at_least_one(&f("sm_count"), v)?;
        }
        Ok(spec)
    }

    pub(super) fn topology(
        &self,
        n: &raw::RawNetwork,
    ) -> Result<crate::hardware::cluster::TopologySpec, ScenarioError> {
        let mut t = crate::hardware::cluster::TopologySpec::default();
        if let Some(v) = n.scale_up_domain {
            t.scale_up_domain = self.at_least_one("cluster.network.scale_up_domain", v)?;
        }
        if let Some(v) = n.fat_tree_tiers {
            if v != 2 && v != 3 {
                return Err(self.invalid(
                    "cluster.network.fat_tree_tiers",
                    v,
                    "allowed values are 2 (leaf-spine) and 3 (leaf-spine-core)",
                ));
            }
            t.fat_tree_tiers = v;
        }
        if let Some(v) = n.leaves_per_pod {
            t.leaves_per_pod = self.at_least_one("cluster.network.leaves_per_pod", v)?;
        }
        if let Some(v) = n.core_oversubscription {
            t.core_oversubscription = self.at_least_one_ratio("cluster.network.core_oversubscription", v)?;
        }
        if let Some(v) = n.rail_optimized {
            t.rail_optimized = v;
        }
        if let Some(v) = n.switch_latency_us {
            t.switch_latency_us = self.non_negative("cluster.network.switch_latency_us", v)?;
        }
        Ok(t)
    }

    pub(super) fn algorithms(
        &self,
        n: &raw::RawNetwork,
    ) -> Result<crate::network::algorithm::AlgorithmChoice, ScenarioError> {
        use crate::network::algorithm::{Algorithm, AlgorithmChoice};
        let mut c = AlgorithmChoice::default();
        let allowed: [(&str, &[Algorithm]); 3] = [
            (
                "all_reduce_algorithm",
                &[
                    Algorithm::Auto,
                    Algorithm::Ring,
                    Algorithm::Tree,
                    Algorithm::Nvls,
                    Algorithm::Hierarchical,
                    Algorithm::HalvingDoubling,
                ],
            ),
            (
                "all_gather_algorithm",
                &[
                    Algorithm::Auto,
                    Algorithm::Ring,
                    Algorithm::Hierarchical,
                    Algorithm::HalvingDoubling,
                ],
            ),
            (
                "reduce_scatter_algorithm",
                &[
                    Algorithm::Auto,
                    Algorithm::Ring,
                    Algorithm::Hierarchical,
                    Algorithm::HalvingDoubling,
                ],
            ),
        ];
        for (i, (key, algos)) in allowed.iter().enumerate() {
            let given = [
                &n.all_reduce_algorithm,
                &n.all_gather_algorithm,
                &n.reduce_scatter_algorithm,
            ][i];
            if let Some(s) = given {
                let names: Vec<&str> = algos.iter().map(|a| a.name()).collect();
                let a = self.choice(&format!("cluster.network.{key}"), s, &names, algos)?;
                match i {
                    0 => c.all_reduce = a,
                    1 => c.all_gather = a,
                    _ => c.reduce_scatter = a,
                }
            }
        }
        Ok(c)
    }
}
