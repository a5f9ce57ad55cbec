//! Calibration: owns the achievable-bandwidth factors per link generation, fitted on
//! published nccl-tests runs, and nothing else.
//!
//! Each constant is the published large-message bus bandwidth
//! of one calibration case in `scenarios/validation/nccl-tests/` divided by what trainsim's
//! decomposition moves at line rate (the test `nccl_calibration_constants_come_from_their_cases`
//! in tests/it/nccl.rs recomputes every one from its case file). Nothing is tuned per case:
//! the other cases of that folder are held out. Derivations: docs/network.md.
//!
//! | link | factor | from |
//! |---|---|---|
//! | NVLink3 (A100), ring | 231.58 / 300 = 0.772 | Azure ND A100 v4, 8 GPUs, all_reduce 8 GiB |
//! | NVLink4 (H100/H200/H800), ring | 370 / 450 = 0.822 | NVIDIA (nccl-tests#212): ring busbw ~370 GB/s |
//! | NVLink4, NVLS (in-switch reduction) | 480 / 1.75 x 9/8 / 450 = 0.686 | NVIDIA (nccl-tests#212): 8-GPU NVLS all_reduce ~480 GB/s |
//! | NVLink5 (B200/GB200), ring | 679.61 / 900 = 0.755 | Azure ND GB200 v6, 4 GPUs, ring all_reduce 8 GiB |
//! | InfiniBand HDR 200G (and slower) | 192 / 200 = 0.96 | NVIDIA (nccl#812): DGX A100, 8 x HDR, ring 192 GB/s |
//! | InfiniBand NDR 400G (and faster) | 380 / 400 = 0.95 | NVIDIA GTC24 via nccl#1649: multi-node ring ~380 GB/s |
//!
//! NVLink5 NVLS has no published figure found: it borrows NVLink4's factor (extrapolated).
//! GPUs of no listed generation (MI300X) keep the scenario's own efficiencies.

use crate::hardware::GpuSpec;

/// NVLink3 (A100) ring: Azure ND A100 v4 8-GPU all_reduce busbw 231.58 GB/s at 8 GiB.
pub const NVLINK3_RING: f64 = 231.58 / 300.0;
/// NVLink4 (Hopper) ring: 370 GB/s busbw of 450 GB/s.
pub const NVLINK4_RING: f64 = 370.0 / 450.0;
/// NVLink4 NVLS: 480 GB/s busbw on 8 GPUs = algbw 480 / (2 x 7/8); the wire carries
/// algbw x 9/8 (see `algorithm` docs) of 450 GB/s.
pub const NVLINK4_NVLS: f64 = 480.0 / 1.75 * 9.0 / 8.0 / 450.0;
/// NVLink5 (Blackwell) ring: Azure ND GB200 v6, 4 GPUs, 679.61 GB/s at 8 GiB of 900 GB/s.
pub const NVLINK5_RING: f64 = 679.61 / 900.0;
/// InfiniBand HDR (200 Gbit/s per GPU): DGX A100 ring all_reduce 192 GB/s over 8 x 25 GB/s.
pub const IB_HDR: f64 = 192.0 / 200.0;
/// InfiniBand NDR (400 Gbit/s per GPU): multi-node H100 ring all_reduce ~380 GB/s over 8 x 50 GB/s.
pub const IB_NDR: f64 = 380.0 / 400.0;

/// Scale-up link generation of a GPU preset.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ScaleUpGeneration {
    /// A100.
    NvLink3,
    /// H100, H200, H800.
    NvLink4,
    /// B200, GB200.
    NvLink5,
    /// No calibration data (MI300X, custom GPUs).
    Unknown,
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

/// Calibrated factors for one GPU and NIC rate.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Efficiencies {
    /// Ring (point-to-point) traffic over the scale-up domain; `None`: not calibrated.
    pub scale_up: Option<f64>,
    /// NVLS traffic on the wire; `None` when the GPU has no NVLS or no data.
    pub nvls: Option<f64>,
    /// NIC line rate.
    pub scale_out: f64,
}

/// The calibrated factors for `gpu` with NICs of `nic_gbit_per_s`.
pub fn calibrated(gpu: &GpuSpec, nic_gbit_per_s: f64) -> Efficiencies {
    let (scale_up, nvls) = match generation(gpu) {
        ScaleUpGeneration::NvLink3 => (Some(NVLINK3_RING), None),
        ScaleUpGeneration::NvLink4 => (Some(NVLINK4_RING), Some(NVLINK4_NVLS)),
        ScaleUpGeneration::NvLink5 => (Some(NVLINK5_RING), Some(NVLINK4_NVLS)),
        ScaleUpGeneration::Unknown => (None, None),
    };
    Efficiencies {
        scale_up,
        nvls,
        scale_out: if nic_gbit_per_s <= 200.0 { IB_HDR } else { IB_NDR },
    }
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
        let e = calibrated(&g("H100-SXM"), 400.0);
        assert!((e.nvls.unwrap() - 0.6857).abs() < 1e-3 && e.scale_out == IB_NDR);
        assert_eq!(calibrated(&g("A100-80GB"), 200.0).scale_out, IB_HDR);
    }
}
