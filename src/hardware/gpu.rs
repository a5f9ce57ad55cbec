//! One GPU's specification and calibration constants.

use serde::{Deserialize, Serialize};

/// Numeric format of the matrix multiplies.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Precision {
    /// BF16 mixed precision (FP32 master weights and optimizer states).
    Bf16,
    /// FP16 mixed precision; same tensor-core rate as BF16.
    Fp16,
    /// FP8 GEMMs (Transformer Engine style); attention and element-wise ops stay in BF16.
    Fp8,
}

impl Precision {
    /// Names accepted in scenario files.
    pub const NAMES: &'static [&'static str] = &["bf16", "fp16", "fp8"];
}

/// Everything the compute model needs to know about one GPU.
///
/// Peak figures are dense (no sparsity) vendor numbers; efficiencies are fitted on
/// `shared/validation` only and documented in `docs/calibration.md`.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct GpuSpec {
    /// Preset name, or "custom".
    pub name: String,
    /// Dense BF16/FP16 tensor-core peak, TFLOP/s.
    pub peak_bf16_tflops: f64,
    /// Dense FP8 tensor-core peak, TFLOP/s; 0 when the GPU has no FP8 tensor cores.
    pub peak_fp8_tflops: f64,
    /// HBM capacity usable by the framework, GiB.
    pub hbm_capacity_gib: f64,
    /// HBM bandwidth, GB/s.
    pub hbm_bandwidth_gbyte_per_s: f64,
    /// Scale-up (NVLink / xGMI) bandwidth per GPU per direction, GB/s.
    pub scale_up_gbyte_per_s: f64,
    /// Streaming multiprocessors (or compute units): sets GEMM wave quantisation.
    pub sm_count: u32,
    /// Board power limit, W.
    pub tdp_w: f64,
    /// Fraction of peak a large, well-shaped BF16 GEMM sustains.
    pub gemm_efficiency: f64,
    /// Smallest GEMM dimension (m, n or k) at which a GEMM reaches half of
    /// `gemm_efficiency`: efficiency ramps as `d / (d + this)` (tile reuse, tails).
    pub gemm_half_efficiency_dim: f64,
    /// Fraction of the FP8 peak a large FP8 GEMM sustains (scaling/casting included).
    pub fp8_gemm_efficiency: f64,
    /// Fraction of BF16 peak the fused (flash) attention forward sustains.
    pub attention_fwd_efficiency: f64,
    /// Fraction of BF16 peak the fused (flash) attention backward sustains.
    pub attention_bwd_efficiency: f64,
    /// Fraction of HBM bandwidth memory-bound kernels sustain.
    pub memory_efficiency: f64,
    /// Fixed cost per kernel (launch, ramp-up, tail), microseconds.
    pub kernel_overhead_us: f64,
    /// Efficiency of a grouped GEMM (the experts of a MoE layer in one kernel) relative to
    /// separate GEMMs of each expert's shape, in (0, 1].
    #[serde(default = "one")]
    pub grouped_gemm_efficiency: f64,
}

fn one() -> f64 {
    1.0
}

impl GpuSpec {
    /// Peak matrix FLOP/s for `precision`, falling back to BF16 when FP8 is absent.
    pub fn peak_tflops(&self, precision: Precision) -> f64 {
        match precision {
            Precision::Fp8 if self.peak_fp8_tflops > 0.0 => self.peak_fp8_tflops,
            _ => self.peak_bf16_tflops,
        }
    }
}
