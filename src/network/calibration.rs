//! Calibration: owns the fitted constants of the collective model ([`ModelConstants`]:
//! [`CALIBRATED`], fitted on published nccl-tests runs only, and [`NOMINAL`], NCCL's own view
//! used to pick algorithms as NCCL does), the GPU generations they depend on, and nothing else.
//!
//! The 12 fitted constants (docs/calibration.md, "Collectives"; fitted by
//! `trainsim collective --validate` on the 37 round-2 cases of
//! `scenarios/validation/nccl-tests/round2/` and the 15 round-1 cases):
//!
//! | constant | value | meaning |
//! |---|---|---|
//! | `net_efficiency` | 0.924 | achievable fraction of NIC line rate for bulk transfers |
//! | `straggler_cv` | 0.057 | spread of per-step time across a ring's node crossings (flow-routed fabrics) |
//! | `nvlink_efficiency` | 0.772 / 0.802 / 0.756 | NVLink 3/4/5 fraction for SM-driven rings and sends (A100 from round 1) |
//! | `nvls_factor` | 0.809 | NVLS all-reduce wire factor on top of NCCL's nvlsEfficiency |
//! | `nvls_tree_net_efficiency` | 0.782 | NIC side of NVLS-tree beyond two domains |
//! | `collnet_efficiency` | 0.748 | SHARP all-reduce algbw over the domain's NIC rate |
//! | `p2p_net_channel_bytes_per_s` | 14.7 GB/s | one p2p channel across the network |
//! | `p2p_nvlink_channel_bytes_per_s` | 20.4 GB/s | one p2p channel over NVLink |
//! | `latency_scale` | 3.20 | nccl-tests hop latency over NCCL's latency table |
//! | `p2p_net_latency_s` | 29.4 us | p2p floor across nodes |
//! | `all_to_all_peer_latency_s` | 4.88 us | all-to-all cost per remote peer per call (beside the sends' chunk fill) |
//! | `p2p_nvlink_latency_s` | 10 us | p2p floor inside a domain (prior: no data) |
//! | `all_to_all_net_efficiency` | 0.95 | all-to-all NIC efficiency relative to the bulk one (prior) |

use crate::hardware::{ClusterSpec, GpuSpec};

/// Scale-up link generation of a GPU preset.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum ScaleUpGeneration {
    /// A100.
    NvLink3,
    /// H100, H200, H800.
    NvLink4,
    /// B200, GB200.
    NvLink5,
    /// No calibration data (MI300X, custom GPUs): NVLink4's constants, no NVLS.
    Unknown,
}

impl ScaleUpGeneration {
    /// Index into per-generation tables (Ampere, Hopper, Blackwell; unknown as Hopper).
    pub fn index(self) -> usize {
        match self {
            ScaleUpGeneration::NvLink3 => 0,
            ScaleUpGeneration::NvLink4 | ScaleUpGeneration::Unknown => 1,
            ScaleUpGeneration::NvLink5 => 2,
        }
    }
}

/// Which NVLink generation a GPU (by preset name) has.
pub fn generation(gpu: &GpuSpec) -> ScaleUpGeneration {
    let n = gpu.name.to_ascii_uppercase();
    if n.starts_with("A100") {
        ScaleUpGeneration::NvLink3
    } else if n.starts_with("H100") || n.starts_with("H200") || n.starts_with("H800") || n.starts_with("H20") {
        ScaleUpGeneration::NvLink4
    } else if n.starts_with("B200") || n.starts_with("GB200") || n.starts_with("B300") {
        ScaleUpGeneration::NvLink5
    } else {
        ScaleUpGeneration::Unknown
    }
}

/// Whether the GPU's NVSwitch reduces in the switch (NVLink SHARP, third-generation
/// NVSwitch and later: Hopper and Blackwell).
pub fn has_nvls(gpu: &GpuSpec) -> bool {
    matches!(generation(gpu), ScaleUpGeneration::NvLink4 | ScaleUpGeneration::NvLink5)
}

/// NVLS wire efficiency of the hop model (480 GB/s busbw of 8 H100 = algbw 480/1.75, the
/// wire carrying algbw x 9/8 of 450 GB/s; NVIDIA, nccl-tests#212).
pub const HOP_NVLS_EFFICIENCY: f64 = 480.0 / 1.75 * 9.0 / 8.0 / 450.0;

/// The fitted constants of the collective model (module docs), in SI units.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct ModelConstants {
    /// Fraction of NIC line rate bulk transfers reach.
    pub net_efficiency: f64,
    /// Coefficient of variation of per-step time across a ring's node crossings.
    pub straggler_cv: f64,
    /// NVLink fraction for rings and sends, per generation (Ampere, Hopper, Blackwell).
    pub nvlink_efficiency: [f64; 3],
    /// NVLS all-reduce wire factor on top of NCCL's nvlsEfficiency.
    pub nvls_factor: f64,
    /// NVLS-tree NIC efficiency beyond two domains (relative to `net_efficiency`).
    pub nvls_tree_net_efficiency: f64,
    /// SHARP all-reduce: algbw over the domain's NIC line rate.
    pub collnet_efficiency: f64,
    /// One p2p channel across the network, bytes/s.
    pub p2p_net_channel_bytes_per_s: f64,
    /// One p2p channel over NVLink, bytes/s.
    pub p2p_nvlink_channel_bytes_per_s: f64,
    /// Measured hop latency over NCCL's latency table.
    pub latency_scale: f64,
    /// Point-to-point floor across domains, seconds.
    pub p2p_net_latency_s: f64,
    /// Point-to-point floor inside a domain, seconds.
    pub p2p_nvlink_latency_s: f64,
    /// All-to-all cost per remote peer per call, seconds.
    pub all_to_all_peer_latency_s: f64,
    /// All-to-all NIC efficiency relative to `net_efficiency` (many concurrent flows per
    /// NIC; a prior, not fitted).
    pub all_to_all_net_efficiency: f64,
}

impl ModelConstants {
    /// The NVLink efficiency of a generation.
    pub fn nvlink(&self, g: ScaleUpGeneration) -> f64 {
        self.nvlink_efficiency[g.index()]
    }
}

/// The calibrated constants: the in-sample fit ([`super::fitting::fit`], with its prior
/// [`super::fitting::PRIOR_WEIGHT`]) on every point of the round-2 calibration file,
/// `../shared/validation/round2/nccl-tests-calibration.json` (copied to
/// `scenarios/validation/nccl-tests/round2/`: AWS p5 EFA, an H100 IB cluster, a B200 IB
/// cluster), and the 15 round-1 cases of `../shared/validation` beside it; refit with
/// `trainsim collective --validate scenarios/validation/nccl-tests` (LOSO table in
/// docs/network.md).
pub const CALIBRATED: ModelConstants = ModelConstants {
    net_efficiency: 0.9244,
    straggler_cv: 0.0570,
    nvlink_efficiency: [0.772, 0.8015, 0.7559],
    nvls_factor: 0.8092,
    nvls_tree_net_efficiency: 0.7824,
    collnet_efficiency: 0.7476,
    p2p_net_channel_bytes_per_s: 14.6679e9,
    p2p_nvlink_channel_bytes_per_s: 20.4473e9,
    latency_scale: 3.1995,
    p2p_net_latency_s: 29.4474e-6,
    p2p_nvlink_latency_s: 10e-6,
    all_to_all_peer_latency_s: 4.8816e-6,
    all_to_all_net_efficiency: 0.95,
};

/// What a constant is when no data inform it (the prior of a fit).
pub const PRIOR: ModelConstants = ModelConstants {
    net_efficiency: 0.92,
    straggler_cv: 0.05,
    nvlink_efficiency: [0.772, 0.82, 0.755],
    nvls_factor: 0.80,
    nvls_tree_net_efficiency: 0.75,
    collnet_efficiency: 0.765,
    p2p_net_channel_bytes_per_s: 14e9,
    p2p_nvlink_channel_bytes_per_s: 20e9,
    latency_scale: 1.0,
    p2p_net_latency_s: 25e-6,
    p2p_nvlink_latency_s: 10e-6,
    all_to_all_peer_latency_s: 3e-6,
    all_to_all_net_efficiency: 0.95,
};

/// NCCL's own view of the machine, used only to pick an algorithm and protocol as NCCL's
/// tuner does: 48 of 50 GB/s per 400G NIC, NVLink at line rate, no straggler, its latency
/// table as is, NVLS (nCh-1)/nCh = 15/16, NVLS-tree not derated, CollNet 0.9 x 0.85, its
/// 14 GB/s per p2p channel, no per-call constants.
pub const NOMINAL: ModelConstants = ModelConstants {
    net_efficiency: 0.96,
    straggler_cv: 0.0,
    nvlink_efficiency: [1.0, 1.0, 1.0],
    nvls_factor: 15.0 / 16.0,
    nvls_tree_net_efficiency: 1.0,
    collnet_efficiency: 0.765,
    p2p_net_channel_bytes_per_s: 14e9,
    p2p_nvlink_channel_bytes_per_s: 20e9,
    latency_scale: 1.0,
    p2p_net_latency_s: 0.0,
    p2p_nvlink_latency_s: 0.0,
    all_to_all_peer_latency_s: 0.0,
    all_to_all_net_efficiency: 1.0,
};

/// The calibrated NVLink efficiency of a GPU (the scenario default of
/// `scale_up_efficiency` under the NCCL model).
pub fn scale_up_efficiency(gpu: &GpuSpec) -> f64 {
    CALIBRATED.nvlink(generation(gpu))
}

/// The calibrated network efficiency (the scenario default of `scale_out_efficiency` under
/// the NCCL model, every fabric: no fabric has a constant of its own).
pub fn scale_out_efficiency() -> f64 {
    CALIBRATED.net_efficiency
}

/// The constants a cluster runs with: the calibrated ones, with its efficiencies (the
/// scenario's `scale_up_efficiency` for its GPU generation, `scale_out_efficiency`) and the
/// fabric's overrides of the latency scale and the p2p latency.
pub fn constants_for(cluster: &ClusterSpec) -> ModelConstants {
    let mut c = CALIBRATED;
    c.net_efficiency = cluster.scale_out_efficiency;
    c.nvlink_efficiency[generation(&cluster.gpu).index()] = cluster.scale_up_efficiency;
    if let Some(v) = cluster.fabric.latency_scale {
        c.latency_scale = v;
    }
    if let Some(us) = cluster.fabric.p2p_latency_us {
        c.p2p_net_latency_s = us * 1e-6;
    }
    c
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::hardware::presets::gpu_preset;

    #[test]
    fn generations_and_nvls_follow_the_presets() {
        let g = |n: &str| gpu_preset(n).unwrap();
        assert_eq!(generation(&g("A100-80GB")), ScaleUpGeneration::NvLink3);
        assert!(!has_nvls(&g("A100-40GB")) && has_nvls(&g("H800")) && has_nvls(&g("B200")));
        assert!(!has_nvls(&g("MI300X")));
        assert_eq!(scale_up_efficiency(&g("MI300X")), scale_up_efficiency(&g("H100-SXM")));
        assert!((HOP_NVLS_EFFICIENCY - 0.6857).abs() < 1e-3);
    }
}
