//! A cluster: identical nodes of GPUs joined by a scale-up domain (NVSwitch) inside each
//! node and NICs into a leaf-spine scale-out fabric between nodes (non-blocking unless
//! `oversubscription` > 1).

use super::gpu::GpuSpec;
use serde::{Deserialize, Serialize};

/// The hardware a scenario runs on.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct ClusterSpec {
    /// The GPU model (all GPUs identical in this version).
    pub gpu: GpuSpec,
    /// Total GPUs.
    pub num_gpus: u32,
    /// GPUs per node (= per scale-up domain).
    pub gpus_per_node: u32,
    /// Scale-out NICs per node.
    pub nics_per_node: u32,
    /// Line rate of one NIC, Gbit/s.
    pub nic_gbit_per_s: f64,
    /// One-hop latency inside the scale-up domain, microseconds.
    pub scale_up_latency_us: f64,
    /// One-hop latency across the scale-out fabric, microseconds.
    pub scale_out_latency_us: f64,
    /// Fraction of scale-up bandwidth that collectives sustain (NCCL bus bandwidth / link rate).
    pub scale_up_efficiency: f64,
    /// Fraction of NIC line rate that collectives sustain.
    pub scale_out_efficiency: f64,
    /// Leaf-to-spine oversubscription of the scale-out fabric (1 = non-blocking; 4 = 4:1):
    /// spine bandwidth per GPU is its NIC bandwidth divided by this.
    #[serde(default = "one")]
    pub oversubscription: f64,
    /// Nodes under one leaf switch; traffic between leaves crosses the spine.
    #[serde(default = "default_nodes_per_leaf")]
    pub nodes_per_leaf: u32,
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
    /// Number of nodes.
    pub fn num_nodes(&self) -> u32 {
        self.num_gpus.div_ceil(self.gpus_per_node.max(1))
    }

    /// Scale-out bandwidth available to one GPU per direction, bytes/s (before efficiency).
    pub fn nic_bytes_per_s_per_gpu(&self) -> f64 {
        crate::units::gbit_per_s_to_bytes_per_s(self.nic_gbit_per_s) * self.nics_per_node as f64
            / self.gpus_per_node.max(1) as f64
    }
}
