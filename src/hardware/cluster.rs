//! A cluster: nodes of GPUs joined by a scale-up domain (NVSwitch) inside each node and
//! NICs into a leaf-spine scale-out fabric between nodes (non-blocking unless
//! `oversubscription` > 1). The nodes are identical, or form GPU groups ([`GpuGroup`]: a
//! heterogeneous cluster, e.g. H100 and A100 pods), each group its own GPU type and NIC
//! rate, joined by a possibly slower cross-group fabric.
//!
//! Owns the hardware description only. [`TopologySpec`] adds what `trainsim collective`
//! and the collective algorithms of `crate::network::algorithm` use beyond that: a
//! scale-up domain larger than a node (NVL72), 2- or 3-tier fat trees, rail-optimized
//! fabrics and 2D/3D tori. Every field has a serde default, so scenarios written before it
//! keep working and mean what they meant.

use super::fabric::FabricSpec;
use super::gpu::GpuSpec;
use serde::{Deserialize, Serialize};

/// The hardware a scenario runs on.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct ClusterSpec {
    /// The GPU model (of the first group when the cluster has [`ClusterSpec::groups`]).
    pub gpu: GpuSpec,
    /// Total GPUs.
    pub num_gpus: u32,
    /// GPUs per node (= per scale-up domain).
    pub gpus_per_node: u32,
    /// Scale-out NICs per node.
    pub nics_per_node: u32,
    /// Line rate of one NIC, Gbit/s.
    pub nic_gbit_per_s: f64,
    /// One-hop latency inside the scale-up domain, microseconds (hop model; and the
    /// end-of-iteration barrier).
    pub scale_up_latency_us: f64,
    /// One-hop latency across the scale-out fabric, microseconds (hop model; and the
    /// end-of-iteration barrier).
    pub scale_out_latency_us: f64,
    /// Fraction of scale-up bandwidth that rings and sends sustain (NCCL model: the
    /// calibrated NVLink efficiency of the GPU generation unless the scenario says).
    pub scale_up_efficiency: f64,
    /// Fraction of NIC line rate that bulk transfers sustain (NCCL model: the calibrated
    /// network efficiency unless the scenario says).
    pub scale_out_efficiency: f64,
    /// Leaf-to-spine oversubscription of the scale-out fabric (1 = non-blocking; 4 = 4:1):
    /// spine bandwidth per GPU is its NIC bandwidth divided by this.
    #[serde(default = "one")]
    pub oversubscription: f64,
    /// Nodes under one leaf switch; traffic between leaves crosses the spine.
    #[serde(default = "default_nodes_per_leaf")]
    pub nodes_per_leaf: u32,
    /// Fabric shape beyond a 2-tier leaf-spine (all defaults: what the fields above say).
    #[serde(default)]
    pub topology: TopologySpec,
    /// The scale-out fabric's constants and the collective model (default: InfiniBand NDR,
    /// NCCL model; [`super::fabric`]).
    #[serde(default)]
    pub fabric: FabricSpec,
    /// GPU groups of a heterogeneous cluster, in GPU-rank order, covering `num_gpus`
    /// (empty: every GPU is `gpu` behind NICs of `nic_gbit_per_s`).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub groups: Vec<GpuGroup>,
    /// Line rate of one NIC for traffic leaving its group (two pods joined by a slower
    /// fabric), Gbit/s; 0 = the NICs' own rate (one fabric).
    #[serde(default, skip_serializing_if = "is_zero")]
    pub cross_group_gbit_per_s: f64,
}

/// A run of consecutive GPUs (whole nodes) of one type in a heterogeneous cluster.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct GpuGroup {
    /// Name in reports (e.g. "h100-pod").
    pub name: String,
    /// The group's GPU.
    pub gpu: GpuSpec,
    /// GPUs in the group.
    pub num_gpus: u32,
    /// Line rate of one of its nodes' NICs, Gbit/s.
    pub nic_gbit_per_s: f64,
    /// Fraction of its GPUs' scale-up bandwidth that rings and sends sustain.
    pub scale_up_efficiency: f64,
}

fn is_zero(x: &f64) -> bool {
    *x == 0.0
}

/// Topology details: each maps to per-link-class bandwidth, latency and hop counts in
/// `crate::network::topology`. The default is the classic cluster: one scale-up domain
/// per node, a 2-tier leaf-spine, no rails, no torus.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct TopologySpec {
    /// GPUs in one scale-up (NVLink) domain; 0 = `gpus_per_node`. 72 for a GB200 NVL72
    /// rack of 4-GPU trays: collectives inside the rack stay on NVLink.
    pub scale_up_domain: u32,
    /// Fat-tree tiers of the scale-out fabric: 2 (leaf-spine) or 3 (leaf-spine-core).
    pub fat_tree_tiers: u32,
    /// 3 tiers: leaves per pod (under one spine group); traffic between pods crosses the
    /// core. 0 = every leaf in one pod.
    pub leaves_per_pod: u32,
    /// 3 tiers: spine-to-core oversubscription (1 = non-blocking): core bandwidth per GPU is
    /// the spine's divided by this.
    pub core_oversubscription: f64,
    /// Rail-optimized: NIC i of every node hangs off rail switch i. A rail switch has a leaf's
    /// radix, so same-rail traffic (what NCCL's rings and trees send, with PXN moving data to
    /// the right rail over NVLink) stays under one switch for `nodes_per_leaf * nics_per_node`
    /// nodes instead of `nodes_per_leaf`.
    pub rail_optimized: bool,
    /// Latency added per switch traversed above the leaf, microseconds (a spine crossing
    /// goes up and down: 2 switches; a core crossing 4).
    pub switch_latency_us: f64,
    /// 2D/3D torus dimension sizes (TPU-like pod; empty = none). The whole cluster is then one
    /// torus of `product(torus)` chips, each with two links per dimension (+ and -) of
    /// `torus_link_gbyte_per_s`; there is no switched scale-out fabric.
    pub torus: Vec<u32>,
    /// Bandwidth of one torus link per direction, GB/s; 0 = the GPU's scale-up bandwidth
    /// divided over its `2 * dims` links.
    pub torus_link_gbyte_per_s: f64,
    /// Fraction of scale-up line rate that NVLink SHARP (NVLS) all-reduce sustains on the
    /// wire; 0 = the calibrated value for the GPU generation (`crate::network::calibration`).
    pub nvls_efficiency: f64,
}

impl Default for TopologySpec {
    fn default() -> Self {
        Self {
            scale_up_domain: 0,
            fat_tree_tiers: 2,
            leaves_per_pod: 0,
            core_oversubscription: 1.0,
            rail_optimized: false,
            switch_latency_us: 0.0,
            torus: Vec::new(),
            torus_link_gbyte_per_s: 0.0,
            nvls_efficiency: 0.0,
        }
    }
}

/// Nodes per leaf switch when a scenario does not say.
pub const DEFAULT_NODES_PER_LEAF: u32 = 16;

fn one() -> f64 {
    1.0
}

fn default_nodes_per_leaf() -> u32 {
    DEFAULT_NODES_PER_LEAF
}

impl ClusterSpec {
    /// Whether the cluster mixes GPU groups.
    pub fn is_heterogeneous(&self) -> bool {
        self.groups.len() > 1
    }

    /// Index of the group holding GPU `gpu` (0 on a homogeneous cluster; the last group
    /// past the end).
    pub fn group_of_gpu(&self, gpu: u32) -> usize {
        let mut end = 0u64;
        for (i, g) in self.groups.iter().enumerate() {
            end += g.num_gpus as u64;
            if (gpu as u64) < end {
                return i;
            }
        }
        self.groups.len().saturating_sub(1)
    }

    /// The GPU type of GPU `gpu` (rank order).
    pub fn gpu_at(&self, gpu: u32) -> &GpuSpec {
        self.groups.get(self.group_of_gpu(gpu)).map_or(&self.gpu, |g| &g.gpu)
    }

    /// The GPU types of GPUs `first .. first + count` (rank order), one per group they
    /// touch, in order (the one GPU type of a homogeneous cluster).
    pub fn gpus_in(&self, first: u32, count: u32) -> Vec<&GpuSpec> {
        if self.groups.is_empty() {
            return vec![&self.gpu];
        }
        self.groups_in(first, count).map(|g| &self.groups[g].gpu).collect()
    }

    /// The GPU groups that GPUs `first .. first + count` (rank order) touch.
    fn groups_in(&self, first: u32, count: u32) -> std::ops::RangeInclusive<usize> {
        let last = first.saturating_add(count.max(1) - 1);
        self.group_of_gpu(first)..=self.group_of_gpu(last)
    }

    /// The first group whose last GPU does not close a run of `unit` consecutive GPUs
    /// (a data-parallel replica of `tp * cp` GPUs would straddle it and the next): its
    /// index and the GPU it ends before. `None` when every group holds whole runs.
    pub fn group_cutting_runs_of(&self, unit: u64) -> Option<(usize, u64)> {
        let unit = unit.max(1);
        let mut end = 0u64;
        for (i, g) in self.groups.iter().enumerate().take(self.groups.len().saturating_sub(1)) {
            end += u64::from(g.num_gpus);
            if end % unit != 0 {
                return Some((i, end));
            }
        }
        None
    }

    /// Whether GPUs `first .. first + count` sit on groups that differ (GPU type or NIC
    /// rate): one representative cannot stand for them.
    pub fn mixes_groups(&self, first: u32, count: u32) -> bool {
        let kind = |g: usize| {
            let g = &self.groups[g];
            (g.gpu.name.as_str(), g.nic_gbit_per_s.to_bits())
        };
        !self.groups.is_empty() && {
            let range = self.groups_in(first, count);
            let first_kind = kind(*range.start());
            range.into_iter().any(|g| kind(g) != first_kind)
        }
    }

    /// The cluster as group `g`'s GPUs see it: its GPU and NIC rate, no groups (itself on
    /// a homogeneous cluster).
    pub fn group_cluster(&self, g: usize) -> ClusterSpec {
        let mut c = self.clone();
        c.groups = Vec::new();
        if let Some(group) = self.groups.get(g) {
            c.gpu = group.gpu.clone();
            c.nic_gbit_per_s = group.nic_gbit_per_s;
            c.scale_up_efficiency = group.scale_up_efficiency;
        }
        c
    }

    /// `(GPU, GPUs)` of every group (the one GPU type of a homogeneous cluster).
    pub fn gpu_counts(&self) -> Vec<(&GpuSpec, u32)> {
        if self.groups.is_empty() {
            vec![(&self.gpu, self.num_gpus)]
        } else {
            self.groups.iter().map(|g| (&g.gpu, g.num_gpus)).collect()
        }
    }

    /// Mean over the cluster's GPUs of `f(gpu)` (peak TFLOP/s for MFU, TDP for energy).
    pub fn mean_over_gpus(&self, f: impl Fn(&GpuSpec) -> f64) -> f64 {
        let counts = self.gpu_counts();
        let n: f64 = counts.iter().map(|&(_, k)| k as f64).sum();
        counts.iter().map(|&(g, k)| f(g) * k as f64).sum::<f64>() / n.max(1.0)
    }

    /// The GPU types in reports ("{num_gpus} x {label}"): "H100-SXM", or
    /// "(32 H100-SXM + 32 A100-80GB)".
    pub fn gpu_label(&self) -> String {
        if !self.is_heterogeneous() {
            return self.gpu.name.clone();
        }
        // GPUs of one type counted together, in order of first appearance
        let mut counts: Vec<(&str, u64)> = Vec::new();
        for g in &self.groups {
            match counts.iter_mut().find(|(n, _)| *n == g.gpu.name) {
                Some((_, c)) => *c += u64::from(g.num_gpus),
                None => counts.push((&g.gpu.name, u64::from(g.num_gpus))),
            }
        }
        if let [(name, _)] = counts[..] {
            return name.to_string();
        }
        let parts: Vec<String> = counts.iter().map(|(n, c)| format!("{c} {n}")).collect();
        format!("({})", parts.join(" + "))
    }

    /// Cross-group bandwidth of one GPU per direction, bytes/s (before efficiency); `None`
    /// when groups share one fabric at their NICs' rates.
    pub fn cross_group_bytes_per_s_per_gpu(&self) -> Option<f64> {
        (self.cross_group_gbit_per_s > 0.0).then(|| {
            crate::units::gbit_per_s_to_bytes_per_s(self.cross_group_gbit_per_s) * self.nics_per_node as f64
                / self.gpus_per_node.max(1) as f64
        })
    }

    /// Number of nodes.
    pub fn num_nodes(&self) -> u32 {
        self.num_gpus.div_ceil(self.gpus_per_node.max(1))
    }

    /// Scale-out bandwidth available to one GPU per direction, bytes/s (before efficiency).
    pub fn nic_bytes_per_s_per_gpu(&self) -> f64 {
        crate::units::gbit_per_s_to_bytes_per_s(self.nic_gbit_per_s) * self.nics_per_node as f64
            / self.gpus_per_node.max(1) as f64
    }

    /// GPUs in one scale-up domain (at least 1, at most the cluster).
    pub fn scale_up_domain(&self) -> u32 {
        let d = match self.topology.scale_up_domain {
            0 => self.gpus_per_node,
            d => d,
        };
        d.clamp(1, self.num_gpus.max(1))
    }

    /// Nodes that reach each other through one leaf (or rail) switch: `nodes_per_leaf`, times
    /// `nics_per_node` on a rail-optimized fabric.
    pub fn effective_nodes_per_leaf(&self) -> u32 {
        let p = self.nodes_per_leaf.max(1);
        if self.topology.rail_optimized {
            p.saturating_mul(self.nics_per_node.max(1))
        } else {
            p
        }
    }
}
