//! The `[cluster]` section: the GPU (a preset, its overrides, or a custom GPU) and the
//! network topology and collective algorithms.
use super::check::{quote_list, Checker};
use super::{fields, raw, ScenarioError};
use crate::hardware::fabric::{default_fabric, fabric_names, fabric_preset, CollectiveModel, FabricSpec};
use crate::hardware::presets::{gpu_preset, GPU_PRESETS};
use crate::hardware::{ClusterSpec, GpuSpec};

impl Checker<'_> {
    /// The GPU of `[cluster.gpu]`, or of `[[cluster.groups]]` entry `i`'s `gpu`.
    pub(super) fn gpu(&self, g: &raw::RawGpu, group: Option<usize>) -> Result<GpuSpec, ScenarioError> {
        let prefix = match group {
            Some(i) => format!("cluster.groups[{i}].gpu"),
            None => "cluster.gpu".to_string(),
        };
        let mut spec = match &g.preset {
            Some(name) => gpu_preset(name).ok_or_else(|| {
                self.invalid(
                    &format!("{prefix}.preset"),
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
                            &format!("{prefix}.{f}"),
                            "(missing)",
                            format!("required when {prefix}.preset is not set"),
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
        let f = |field: &str| format!("{prefix}.{field}");
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

    /// The cluster of `[cluster.network]` on `gpu`: the fabric preset (named, else
    /// InfiniBand of the NIC rate) gives the NIC rate and count, the NVLink domain and the
    /// NCCL model's constants unless the scenario sets them; the efficiencies default to the
    /// calibrated ones under the NCCL model, 0.8 and 0.9 under the hop model.
    pub(super) fn cluster(
        &self,
        n: &raw::RawNetwork,
        gpu: GpuSpec,
        num_gpus: u32,
        gpus_per_node: u32,
    ) -> Result<ClusterSpec, ScenarioError> {
        let names = fabric_names();
        let named = match &n.fabric {
            Some(name) => Some(fabric_preset(name).ok_or_else(|| {
                self.invalid(
                    "cluster.network.fabric",
                    format!("\"{name}\""),
                    format!(
                        "{}known fabric presets are {}",
                        fields::did_you_mean(name, names.iter().copied(), "\""),
                        quote_list(&names)
                    ),
                )
            })?),
            None => None,
        };
        let gpu_nic = if gpu.name.starts_with("A100") { 200.0 } else { 400.0 };
        let nic_gbit = self.positive(
            "cluster.network.nic_gbit_per_s",
            n.nic_gbit_per_s.or(named.map(|p| p.nic_gbit_per_s)).unwrap_or(gpu_nic),
        )?;
        let preset = named.unwrap_or_else(|| default_fabric(nic_gbit));
        let nics = match n.nics_per_node {
            Some(v) => v,
            None if named.is_some() => (preset.nics_per_gpu * gpus_per_node as f64).round().max(1.0) as u32,
            None => gpus_per_node,
        };
        let mut fabric = FabricSpec::of(preset);
        if let Some(m) = &n.collective_model {
            fabric.model = self.choice(
                "cluster.network.collective_model",
                m,
                CollectiveModel::NAMES,
                &CollectiveModel::ALL,
            )?;
        }
        if let Some(v) = n.fabric_latency_us {
            fabric.latency_us = self.non_negative("cluster.network.fabric_latency_us", v)?;
        }
        if let Some(v) = n.sharp {
            fabric.sharp = v;
        }
        if let Some(v) = n.packet_spraying {
            fabric.packet_spraying = v;
        }
        if let Some(v) = n.latency_scale {
            fabric.latency_scale = Some(self.positive("cluster.network.latency_scale", v)?);
        }
        if let Some(v) = n.p2p_latency_us {
            fabric.p2p_latency_us = Some(self.non_negative("cluster.network.p2p_latency_us", v)?);
        }
        let nccl = fabric.model == CollectiveModel::Nccl;
        let (up_eff, out_eff) = if nccl {
            (
                crate::network::calibration::scale_up_efficiency(&gpu),
                crate::network::calibration::scale_out_efficiency(),
            )
        } else {
            (0.8, 0.9)
        };
        let mut topology = self.topology(n)?;
        if n.scale_up_domain.is_none() && preset.scale_up_domain > 0 {
            topology.scale_up_domain = preset.scale_up_domain;
        }
        Ok(ClusterSpec {
            num_gpus,
            gpus_per_node,
            nics_per_node: self.at_least_one("cluster.network.nics_per_node", nics)?,
            nic_gbit_per_s: nic_gbit,
            scale_up_latency_us: self.non_negative(
                "cluster.network.scale_up_latency_us",
                n.scale_up_latency_us.unwrap_or(1.5),
            )?,
            scale_out_latency_us: self.non_negative(
                "cluster.network.scale_out_latency_us",
                n.scale_out_latency_us.unwrap_or(4.0),
            )?,
            scale_up_efficiency: self.fraction(
                "cluster.network.scale_up_efficiency",
                n.scale_up_efficiency.unwrap_or(up_eff),
            )?,
            scale_out_efficiency: self.fraction(
                "cluster.network.scale_out_efficiency",
                n.scale_out_efficiency.unwrap_or(out_eff),
            )?,
            oversubscription: self
                .at_least_one_ratio("cluster.network.oversubscription", n.oversubscription.unwrap_or(1.0))?,
            nodes_per_leaf: self.at_least_one(
                "cluster.network.nodes_per_leaf",
                n.nodes_per_leaf
                    .unwrap_or(crate::hardware::cluster::DEFAULT_NODES_PER_LEAF),
            )?,
            topology,
            fabric,
            gpu,
            groups: Vec::new(),
            cross_group_gbit_per_s: 0.0,
        })
    }

    /// `[[cluster.groups]]` onto `cluster` (whose `gpu` is already the first group's): each
    /// group whole nodes, together exactly `num_gpus`; a group's NIC rate defaults to the
    /// cluster's (200 Gbit/s for A100 nodes unless `[cluster.network]` sets it), its NVLink
    /// efficiency to its GPU's calibrated one; `cross_group_gbit_per_s` only with groups.
    pub(super) fn gpu_groups(
        &self,
        cluster: &mut ClusterSpec,
        groups: &[raw::RawGpuGroup],
        n: &raw::RawNetwork,
    ) -> Result<(), ScenarioError> {
        if let Some(v) = n.cross_group_gbit_per_s {
            if groups.len() < 2 {
                return Err(self.invalid(
                    "cluster.network.cross_group_gbit_per_s",
                    v,
                    "applies between GPU groups: give two or more [[cluster.groups]], or remove it",
                ));
            }
            cluster.cross_group_gbit_per_s = self.non_negative("cluster.network.cross_group_gbit_per_s", v)?;
        }
        let nccl = cluster.fabric.model == CollectiveModel::Nccl;
        let mut total = 0u64;
        let mut out = Vec::new();
        for (i, g) in groups.iter().enumerate() {
            let field = |k: &str| format!("cluster.groups[{i}].{k}");
            let num_gpus = self.at_least_one(&field("num_gpus"), g.num_gpus)?;
            if num_gpus % cluster.gpus_per_node != 0 {
                return Err(self.invalid(
                    &field("num_gpus"),
                    num_gpus,
                    format!(
                        "a group is whole nodes: a multiple of cluster.gpus_per_node = {}",
                        cluster.gpus_per_node
                    ),
                ));
            }
            total += num_gpus as u64;
            let gpu = self.gpu(&g.gpu, Some(i))?;
            let nic_default = match n.nic_gbit_per_s {
                None if gpu.name.starts_with("A100") => 200.0,
                _ => cluster.nic_gbit_per_s,
            };
            let nic_gbit_per_s = self.positive(&field("nic_gbit_per_s"), g.nic_gbit_per_s.unwrap_or(nic_default))?;
            let scale_up_efficiency = match n.scale_up_efficiency {
                Some(v) => v,
                None if nccl => crate::network::calibration::scale_up_efficiency(&gpu),
                None => cluster.scale_up_efficiency,
            };
            out.push(crate::hardware::cluster::GpuGroup {
                name: g.name.clone().unwrap_or_else(|| format!("group{i}")),
                gpu,
                num_gpus,
                nic_gbit_per_s,
                scale_up_efficiency,
            });
        }
        if !groups.is_empty() && total != cluster.num_gpus as u64 {
            let parts: Vec<String> = out.iter().map(|g| format!("{} x{}", g.name, g.num_gpus)).collect();
            return Err(self.invalid(
                "cluster.num_gpus",
                cluster.num_gpus,
                format!(
                    "must equal the GPUs of the [[cluster.groups]], {total} ({})",
                    parts.join(" + ")
                ),
            ));
        }
        if let Some(first) = out.first() {
            cluster.nic_gbit_per_s = first.nic_gbit_per_s;
            cluster.scale_up_efficiency = first.scale_up_efficiency;
        }
        cluster.groups = out;
        Ok(())
    }

    /// On a cluster of GPU groups, every pipeline stage (its `tp * cp * dp` consecutive
    /// GPUs) must sit in one group: the representative rank of a stage runs one GPU type.
    /// Checks that every data-parallel replica of every stage (`tp * cp` consecutive GPUs)
    /// lies in one GPU group (a stage's replicas may sit on different groups: mixed
    /// replicas, simulated in the every-replica mode).
    pub(super) fn stages_in_groups(
        &self,
        cluster: &ClusterSpec,
        plan: &crate::parallel::ParallelPlan,
    ) -> Result<(), ScenarioError> {
        let replica = u64::from(plan.tp.max(1)) * u64::from(plan.cp.max(1));
        let Some((i, end)) = cluster.group_cutting_runs_of(replica) else {
            return Ok(());
        };
        let (g, s) = (&cluster.groups[i], end / replica);
        Err(self.invalid(
            &format!("cluster.groups[{i}].num_gpus"),
            g.num_gpus,
            format!(
                "the {} GPUs of a data-parallel replica of a stage (GPUs {}..{}) would span groups {} and \
                         {}: each group must hold whole replicas, multiples of tp*cp = {replica} GPUs (tensor and \
                         context parallelism are the innermost dimensions of the rank order)",
                replica,
                s * replica,
                (s + 1) * replica - 1,
                g.name,
                cluster.groups[i + 1].name
            ),
        ))
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
        model: CollectiveModel,
    ) -> Result<crate::network::algorithm::AlgorithmChoice, ScenarioError> {
        use crate::network::algorithm::{Algorithm, AlgorithmChoice};
        let mut c = AlgorithmChoice::default_for(model);
        let allowed: [(&str, &[Algorithm]); 3] = [
            (
                "all_reduce_algorithm",
                &[
                    Algorithm::Auto,
                    Algorithm::Ring,
                    Algorithm::Tree,
                    Algorithm::Nvls,
                    Algorithm::NvlsTree,
                    Algorithm::CollNet,
                    Algorithm::Hierarchical,
                    Algorithm::HalvingDoubling,
                ],
            ),
            (
                "all_gather_algorithm",
                &[
                    Algorithm::Auto,
                    Algorithm::Ring,
                    Algorithm::Nvls,
                    Algorithm::CollNet,
                    Algorithm::Hierarchical,
                    Algorithm::HalvingDoubling,
                ],
            ),
            (
                "reduce_scatter_algorithm",
                &[
                    Algorithm::Auto,
                    Algorithm::Ring,
                    Algorithm::Nvls,
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
