//! The host side of a node, as offloading sees it: CPU memory, the PCIe link between each
//! GPU and the host, local NVMe bandwidth and the CPU's Adam throughput.
//!
//! Defaults per GPU generation (`[cluster.host]` overrides each), derived from the node
//! designs, not fitted (no measured offload table is given in `../shared/validation`):
//!
//! | GPUs | CPU memory per node | PCIe per GPU per direction | NVMe per node | CPU Adam per node |
//! |---|---|---|---|---|
//! | A100 (DGX A100) | 1024 GiB | 25 GB/s (Gen4 x16, 32 GB/s line rate x ~0.8) | 25 GB/s | 7e9 params/s |
//! | H100 / H800 / H200 / B200 / MI300X (DGX H100-like) | 2048 GiB | 50 GB/s (Gen5 x16, 64 GB/s x ~0.8) | 50 GB/s | 1.1e10 params/s |
//!
//! NVMe: ZeRO-Infinity's 28 GB/s per DGX-2 node (round2 `zero-infinity-bandwidth-model`,
//! 1792 GB/s over 64 nodes) for the Gen4 generation, twice that for Gen5 drives. CPU Adam
//! is memory bound on the host: it reads and writes the FP32 master weight and both
//! moments and reads the 16-bit gradient and writes the 16-bit weight (about 28 bytes per
//! parameter); two sockets of 8 DDR4-3200 channels (410 GB/s) or 8 DDR5-4800 channels
//! (614 GB/s) sustaining half of their peak give 7e9 and 1.1e10 parameters per second.

use serde::{Deserialize, Serialize};

/// The host resources of one node that offloading uses.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct HostSpec {
    /// CPU (host) memory per node, GiB.
    pub cpu_memory_gib: f64,
    /// Host-device PCIe bandwidth of one GPU per direction, GB/s.
    pub pcie_gbyte_per_s: f64,
    /// NVMe read (and write) bandwidth of one node, GB/s.
    pub nvme_gbyte_per_s: f64,
    /// Parameters the node's CPUs update per second with Adam (DeepSpeedCPUAdam).
    pub cpu_adam_params_per_s: f64,
}

impl HostSpec {
    /// The default host of a node of `gpu_name` GPUs (module docs).
    pub fn for_gpu(gpu_name: &str) -> HostSpec {
        if gpu_name.starts_with("A100") {
            HostSpec {
                cpu_memory_gib: 1024.0,
                pcie_gbyte_per_s: 25.0,
                nvme_gbyte_per_s: 25.0,
                cpu_adam_params_per_s: 7.0e9,
            }
        } else {
            HostSpec {
                cpu_memory_gib: 2048.0,
                pcie_gbyte_per_s: 50.0,
                nvme_gbyte_per_s: 50.0,
                cpu_adam_params_per_s: 1.1e10,
            }
        }
    }
}

impl Default for HostSpec {
    fn default() -> Self {
        HostSpec::for_gpu("H100-SXM")
    }
}
