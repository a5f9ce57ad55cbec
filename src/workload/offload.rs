//! Offloading (ZeRO-Offload, ZeRO-Infinity): optimizer states, parameters and
//! activations kept in CPU memory or on NVMe instead of HBM, and the transfers and CPU
//! work that costs. Closed forms per GPU (`../shared/validation/round2`
//! `zero-offload-design`, `zero-infinity-bandwidth-model`):
//!
//! * **optimizer** (`"cpu"` or `"nvme"`, ZeRO >= 1): each rank's reduced gradient shard
//!   goes to the host as it is reduced (`2 P/g` bytes over PCIe, on the offload stream,
//!   overlapped with the backward); the CPU runs Adam over the shard
//!   (`P/g * gpus_per_node / cpu_adam_params_per_s`: the node's CPUs serve all its GPUs);
//!   with `"nvme"` the FP32 states and gradient (16 bytes per parameter) are read and
//!   written back during that step (`2 * 16 P/g * gpus_per_node / nvme_gbyte_per_s`,
//!   overlapped with the CPU Adam, so the step takes the longer of the two); the updated
//!   16-bit shard returns to the GPU (`2 P/g` bytes) before the parameter all-gather. The
//!   GPU waits for the CPU step (no delayed update).
//! * **parameters** (`"cpu"` or `"nvme"`, ZeRO-3 and optimizer offload): no weight shard
//!   stays in HBM; every ZeRO-3 gather first fetches the rank's shard of the layer
//!   (`2 P_layer/g` bytes) over PCIe, or from NVMe at the node's bandwidth shared by its
//!   GPUs (the slower of the two), on the gather stream, so it is prefetched like the
//!   gather.
//! * **activations** (`"cpu"`): each forward pass's stored activations go to the host on
//!   the offload stream as the pass ends; each backward pass waits for them to come back,
//!   fetched when the pass before it starts (one pass of prefetch). HBM then holds two
//!   micro-batches' activations per stage instead of the schedule's in-flight count.
//!
//! One copy at a time per GPU and direction is not modelled: the offload stream carries
//! both directions one after the other.

use crate::hardware::HostSpec;
use serde::{Deserialize, Serialize};

/// Where offloaded state lives.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum OffloadTier {
    /// Not offloaded: in HBM.
    #[default]
    None,
    /// CPU memory.
    Cpu,
    /// Local NVMe.
    Nvme,
}

impl OffloadTier {
    /// Names scenario files accept.
    pub const NAMES: &'static [&'static str] = &["none", "cpu", "nvme"];
    /// Every tier, in [`OffloadTier::NAMES`] order.
    pub const ALL: [OffloadTier; 3] = [OffloadTier::None, OffloadTier::Cpu, OffloadTier::Nvme];

    /// Whether state is offloaded.
    pub fn is_offloaded(self) -> bool {
        self != OffloadTier::None
    }
}

/// What is offloaded, and the host it goes to (`[offload]`, `[cluster.host]`).
#[derive(Clone, Debug, PartialEq, Default, Serialize, Deserialize)]
pub struct OffloadSpec {
    /// FP32 master weights, Adam moments and the optimizer step.
    pub optimizer: OffloadTier,
    /// 16-bit parameter shards (ZeRO-3).
    pub parameters: OffloadTier,
    /// Stored activations.
    pub activations: OffloadTier,
    /// The host.
    pub host: HostSpec,
    /// GPUs per node (sharing the node's CPUs and NVMe).
    pub gpus_per_node: u32,
}

impl OffloadSpec {
    /// Whether anything is offloaded.
    pub fn any(&self) -> bool {
        self.optimizer.is_offloaded() || self.parameters.is_offloaded() || self.activations.is_offloaded()
    }

    /// Seconds to move `bytes` over one GPU's PCIe link.
    pub fn pcie_s(&self, bytes: f64) -> f64 {
        bytes / (self.host.pcie_gbyte_per_s * 1e9)
    }

    /// Seconds one GPU needs to read (or write) `bytes` on its node's NVMe.
    pub fn nvme_s(&self, bytes: f64) -> f64 {
        bytes * self.gpus_per_node.max(1) as f64 / (self.host.nvme_gbyte_per_s * 1e9)
    }

    /// The CPU optimizer step of a rank holding `params` optimizer parameters, s.
    pub fn optimizer_step_s(&self, params: f64) -> f64 {
        let adam = params * self.gpus_per_node.max(1) as f64 / self.host.cpu_adam_params_per_s;
        match self.optimizer {
            OffloadTier::Nvme => adam.max(self.nvme_s(2.0 * 16.0 * params)),
            _ => adam,
        }
    }

    /// Fetching `bytes` of an offloaded parameter shard to the GPU, s.
    pub fn param_fetch_s(&self, bytes: f64) -> f64 {
        match self.parameters {
            OffloadTier::Nvme => self.pcie_s(bytes).max(self.nvme_s(bytes)),
            _ => self.pcie_s(bytes),
        }
    }

    /// Host memory per GPU, GiB.
    pub fn host_capacity_gib(&self) -> f64 {
        self.host.cpu_memory_gib / self.gpus_per_node.max(1) as f64
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn closed_forms() {
        let mut o = OffloadSpec {
            optimizer: OffloadTier::Cpu,
            host: HostSpec {
                cpu_memory_gib: 1024.0,
                pcie_gbyte_per_s: 25.0,
                nvme_gbyte_per_s: 20.0,
                cpu_adam_params_per_s: 8e9,
            },
            gpus_per_node: 8,
            ..OffloadSpec::default()
        };
        // 1e9 parameters per GPU: 8e9 per node at 8e9/s
        assert!((o.optimizer_step_s(1e9) - 1.0).abs() < 1e-12);
        assert!((o.pcie_s(50e9) - 2.0).abs() < 1e-12);
        // NVMe: 32 bytes x 1e9 x 8 GPUs / 20 GB/s = 12.8 s > 1 s of Adam
        o.optimizer = OffloadTier::Nvme;
        assert!((o.optimizer_step_s(1e9) - 12.8).abs() < 1e-9);
        o.parameters = OffloadTier::Nvme;
        // 1 GB: PCIe 0.04 s, NVMe share 8 x 1 / 20 = 0.4 s
        assert!((o.param_fetch_s(1e9) - 0.4).abs() < 1e-12);
        assert_eq!(o.host_capacity_gib(), 128.0);
    }
}
