//! Kernel-time model: roofline with size-dependent efficiency.
//!
//! * GEMMs: `max(flops / (peak * eff * ramp * wave_eff), bytes / hbm) + overhead`, where
//!   `ramp = d / (d + gemm_half_efficiency_dim)` for the smallest dimension `d` (thin
//!   GEMMs reuse less data per tile) and `wave_eff` is the tile/wave quantisation loss of
//!   a 128x128-tiled kernel on `sm_count` SMs (small or oddly shaped GEMMs lose).
//! * Fused (flash) attention: FLOP-bound at its own efficiency, forward and backward.
//! * Memory-bound kernels (norms, activations, dropout, softmax, optimizer): bytes moved
//!   over sustained HBM bandwidth.
//!
//! Every kernel pays `kernel_overhead_us` (launch, ramp-up and tail).

use super::gpu::{GpuSpec, Precision};
use crate::units::{gbyte_per_s_to_bytes_per_s, tflops_to_flops_per_s, us_to_s};

const TILE: f64 = 128.0;

/// Fraction of the SM-waves a `m x n` (times `batch`) GEMM actually fills.
pub fn wave_efficiency(gpu: &GpuSpec, m: f64, n: f64, batch: f64) -> f64 {
    let tiles = (m / TILE).ceil() * (n / TILE).ceil() * batch.max(1.0);
    let sms = gpu.sm_count.max(1) as f64;
    let waves = (tiles / sms).ceil();
    if waves <= 0.0 {
        1.0
    } else {
        tiles / (waves * sms)
    }
}

/// Time of a (batched) GEMM `[m x k] x [k x n]`, seconds. Element size follows `precision`.
pub fn gemm_time_s(gpu: &GpuSpec, precision: Precision, m: f64, n: f64, k: f64, batch: f64) -> f64 {
    let flops = 2.0 * m * n * k * batch;
    let (peak, eff, elem_bytes) = match precision {
        Precision::Fp8 if gpu.peak_fp8_tflops > 0.0 => (gpu.peak_fp8_tflops, gpu.fp8_gemm_efficiency, 1.0),
        _ => (gpu.peak_bf16_tflops, gpu.gemm_efficiency, 2.0),
    };
    let d = m.min(n).min(k);
    let ramp = d / (d + gpu.gemm_half_efficiency_dim);
    let compute_s = flops / (tflops_to_flops_per_s(peak) * eff * ramp * wave_efficiency(gpu, m, n, batch));
    let bytes = elem_bytes * (m * k + k * n) * batch + 2.0 * m * n * batch;
    compute_s.max(memory_s(gpu, bytes)) + us_to_s(gpu.kernel_overhead_us)
}

/// A lower bound on the summed compute time (overheads excluded) of GEMMs that split
/// `tokens` rows between them, each of shape `tokens_i x a x b` in any order of the three
/// dimensions (a grouped expert GEMM: the forward's `[c x b] x [b x a]`, the weight
/// gradient's `[a x c] x [c x b]`), seconds: `alpha * (T + H * max(1, T / D))` for `T > 0`,
/// with `alpha = 2ab / (peak * eff)`, `H` the half-efficiency dimension and `D = min(a, b)`.
/// Each GEMM takes at least `2 c a b / (peak * eff * ramp)` (wave efficiency <= 1) with
/// `ramp = d / (d + H)`, `d = min(c, D)`, i.e. `alpha * (c + H * max(1, c / D))`, and the
/// sum of `max(1, c_i / D)` over the non-empty GEMMs is at least `max(1, T / D)`. And at
/// least one GEMM reads its `a x b` weights from memory. Increasing in `T`.
pub fn grouped_gemm_floor_s(gpu: &GpuSpec, precision: Precision, (a, b): (f64, f64), tokens: f64) -> f64 {
    if tokens <= 0.0 {
        return 0.0;
    }
    let (peak, eff, elem_bytes) = match precision {
        Precision::Fp8 if gpu.peak_fp8_tflops > 0.0 => (gpu.peak_fp8_tflops, gpu.fp8_gemm_efficiency, 1.0),
        _ => (gpu.peak_bf16_tflops, gpu.gemm_efficiency, 2.0),
    };
    let alpha = 2.0 * a * b / (tflops_to_flops_per_s(peak) * eff);
    let d = a.min(b).max(1.0);
    let compute_s = alpha * (tokens + gpu.gemm_half_efficiency_dim * (tokens / d).max(1.0));
    compute_s.max(memory_s(gpu, elem_bytes * a * b))
}

/// Time of a fused attention kernel doing `flops` FLOPs, seconds.
pub fn attention_time_s(gpu: &GpuSpec, flops: f64, backward: bool) -> f64 {
    let eff = if backward {
        gpu.attention_bwd_efficiency
    } else {
        gpu.attention_fwd_efficiency
    };
    flops / (tflops_to_flops_per_s(gpu.peak_bf16_tflops) * eff) + us_to_s(gpu.kernel_overhead_us)
}

/// Query rows (and key/value columns) of one flash-attention tile.
pub const FLASH_TILE: f64 = 128.0;

/// Key/value tokens' worth of work one flash-attention thread block spends outside its
/// key/value loop: loading its query tile and the first key/value tile before the loop's
/// software pipeline fills, rescaling, normalising and writing its output tile (and the
/// log-sum-exp) after it. About two 128-token tiles.
pub const FLASH_PROLOGUE_TOKENS: f64 = 256.0;

/// The shape of one fused-attention kernel.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct FlashShape {
    /// Query rows.
    pub q: f64,
    /// Key/value tokens one query tile loops over, on average (the whole key range without
    /// masking; half of it on a causal diagonal).
    pub kv_loop: f64,
    /// Sequences times heads (independent attention problems in the launch).
    pub batch_heads: f64,
}

/// Efficiency of a flash-attention kernel of shape `block` relative to one of shape
/// `whole`: a thread block pays [`FLASH_PROLOGUE_TOKENS`] of work around a key/value loop
/// of `kv_loop` tokens (efficiency `kv / (kv + prologue)`, the same ramp as the GEMMs'),
/// and `ceil(q / 128) x batch_heads` thread blocks fill the SMs in waves
/// ([`wave_efficiency`]). Splitting one attention into smaller blocks (context
/// parallelism's ring steps, a short sequence) lowers both; at most 1.
pub fn flash_relative_efficiency(gpu: &GpuSpec, block: FlashShape, whole: FlashShape) -> f64 {
    let eff = |s: FlashShape| {
        let kv = s.kv_loop.max(1.0);
        kv / (kv + FLASH_PROLOGUE_TOKENS) * wave_efficiency(gpu, s.q.max(1.0), FLASH_TILE, s.batch_heads)
    };
    (eff(block) / eff(whole)).min(1.0)
}

/// Time of a fused attention kernel doing `flops` FLOPs at `relative` times the GPU's
/// attention efficiency (see [`flash_relative_efficiency`]), seconds.
pub fn attention_block_time_s(gpu: &GpuSpec, flops: f64, backward: bool, relative: f64) -> f64 {
    let eff = if backward {
        gpu.attention_bwd_efficiency
    } else {
        gpu.attention_fwd_efficiency
    };
    flops / (tflops_to_flops_per_s(gpu.peak_bf16_tflops) * eff * relative.max(1e-3)) + us_to_s(gpu.kernel_overhead_us)
}

/// Time of `kernels` memory-bound kernels that together move `bytes`, seconds.
pub fn memory_bound_time_s(gpu: &GpuSpec, bytes: f64, kernels: u32) -> f64 {
    memory_s(gpu, bytes) + kernels as f64 * us_to_s(gpu.kernel_overhead_us)
}

fn memory_s(gpu: &GpuSpec, bytes: f64) -> f64 {
    bytes / (gbyte_per_s_to_bytes_per_s(gpu.hbm_bandwidth_gbyte_per_s) * gpu.memory_efficiency)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::hardware::presets::gpu_preset;

    #[test]
    fn large_gemm_approaches_calibrated_peak() {
        let g = gpu_preset("H100-SXM").unwrap();
        let (m, n, k) = (16384.0, 16896.0, 16384.0); // 132 * 128 columns: whole waves
        let t = gemm_time_s(&g, Precision::Bf16, m, n, k, 1.0);
        let achieved = 2.0 * m * n * k / t / 1e12;
        let expected = g.peak_bf16_tflops * g.gemm_efficiency * 16384.0 / (16384.0 + g.gemm_half_efficiency_dim);
        assert!((achieved / expected - 1.0).abs() < 0.02, "{achieved} vs {expected}");
    }

    #[test]
    fn small_and_odd_gemms_lose_efficiency() {
        let g = gpu_preset("A100-80GB").unwrap();
        let rate = |m: f64, n: f64, k: f64| 2.0 * m * n * k / gemm_time_s(&g, Precision::Bf16, m, n, k, 1.0);
        assert!(rate(256.0, 256.0, 256.0) < 0.2 * rate(8192.0, 8192.0, 8192.0));
        // one tile too many spills into a nearly empty extra wave
        assert!(wave_efficiency(&g, 128.0 * 109.0, 128.0, 1.0) < 0.55);
        assert!((wave_efficiency(&g, 128.0 * 108.0, 128.0, 1.0) - 1.0).abs() < 1e-12);
    }

    #[test]
    fn fp8_is_faster_than_bf16_on_hopper_only() {
        let h = gpu_preset("H100-SXM").unwrap();
        let a = gpu_preset("A100-80GB").unwrap();
        let d = 8192.0;
        assert!(gemm_time_s(&h, Precision::Fp8, d, d, d, 1.0) < 0.7 * gemm_time_s(&h, Precision::Bf16, d, d, d, 1.0));
        assert_eq!(
            gemm_time_s(&a, Precision::Fp8, d, d, d, 1.0),
            gemm_time_s(&a, Precision::Bf16, d, d, d, 1.0)
        );
    }

    /// A ring step's block loses against the whole sequence's kernel as its key/value loop
    /// shortens (the ramp), and nothing at equal shape.
    #[test]
    fn flash_blocks_lose_efficiency_as_they_shrink() {
        let g = gpu_preset("H100-SXM").unwrap();
        let whole = FlashShape {
            q: 131072.0,
            kv_loop: 65536.0,
            batch_heads: 8.0,
        };
        assert_eq!(flash_relative_efficiency(&g, whole, whole), 1.0);
        let rel = |c: f64| {
            flash_relative_efficiency(
                &g,
                FlashShape {
                    q: 2.0 * c,
                    kv_loop: c,
                    batch_heads: 8.0,
                },
                whole,
            )
        };
        assert!(rel(16384.0) > 0.95, "{}", rel(16384.0));
        assert!(rel(1024.0) < 0.85 && rel(1024.0) > 0.7, "{}", rel(1024.0));
        assert!(rel(128.0) < 0.4, "{}", rel(128.0));
        assert!(rel(128.0) < rel(512.0) && rel(512.0) < rel(4096.0));
    }

    #[test]
    fn memory_bound_kernel_time_is_bytes_over_bandwidth_plus_overhead() {
        let g = gpu_preset("A100-80GB").unwrap();
        let bytes = 1e9;
        let expected = bytes / (2039e9 * g.memory_efficiency) + 3.0 * g.kernel_overhead_us * 1e-6;
        assert!((memory_bound_time_s(&g, bytes, 3) - expected).abs() < 1e-12);
    }
}
