//! Validated GPU presets. Peak figures come from `shared/validation/published-runs.md`
//! table (a) (vendor datasheets); calibration constants are fitted on the validation runs
//! of that GPU (see `docs/calibration.md`), and GPUs without validation runs inherit the
//! constants of their closest architecture.

use super::gpu::GpuSpec;

struct Calib {
    gemm: f64,
    half_dim: f64,
    fp8_gemm: f64,
    attn_fwd: f64,
    attn_bwd: f64,
    mem: f64,
    overhead_us: f64,
    grouped: f64,
}

/// Ampere: fitted on the Korthikanti 2022 A100 runs.
const AMPERE: Calib = Calib {
    gemm: 0.84,
    half_dim: 256.0,
    fp8_gemm: 0.0,
    attn_fwd: 0.55,
    attn_bwd: 0.45,
    mem: 0.80,
    overhead_us: 4.0,
    grouped: GROUPED_GEMM_EFFICIENCY,
};

/// Hopper: fitted on the Megatron-Core r0.8 and NeMo H100 runs.
const HOPPER: Calib = Calib {
    gemm: 0.78,
    half_dim: 1024.0,
    fp8_gemm: 0.63,
    attn_fwd: 0.55,
    attn_bwd: 0.42,
    mem: 0.80,
    overhead_us: 3.0,
    grouped: GROUPED_GEMM_EFFICIENCY,
};

/// Blackwell: fitted on the Megatron-Bridge B200 runs.
const BLACKWELL: Calib = Calib {
    gemm: 0.75,
    half_dim: 1024.0,
    fp8_gemm: 0.60,
    attn_fwd: 0.55,
    attn_bwd: 0.42,
    mem: 0.80,
    overhead_us: 3.0,
    grouped: GROUPED_GEMM_EFFICIENCY,
};

/// Grouped (multi-expert) GEMMs relative to one GEMM of the same shape: see
/// `docs/calibration.md` ("MoE").
const GROUPED_GEMM_EFFICIENCY: f64 = 0.55;

/// CDNA3: no validation run; Hopper-like constants, flagged in the docs as unvalidated.
const CDNA3: Calib = HOPPER;

#[allow(clippy::too_many_arguments)]
fn spec(
    name: &str,
    bf16: f64,
    fp8: f64,
    hbm_gib: f64,
    hbm_gbps: f64,
    scale_up_bidir_gbps: f64,
    sms: u32,
    tdp: f64,
    c: &Calib,
) -> GpuSpec {
    GpuSpec {
        name: name.to_string(),
        peak_bf16_tflops: bf16,
        peak_fp8_tflops: fp8,
        hbm_capacity_gib: hbm_gib,
        hbm_bandwidth_gbyte_per_s: hbm_gbps,
        scale_up_gbyte_per_s: scale_up_bidir_gbps / 2.0,
        sm_count: sms,
        tdp_w: tdp,
        gemm_efficiency: c.gemm,
        gemm_half_efficiency_dim: c.half_dim,
        fp8_gemm_efficiency: c.fp8_gemm,
        attention_fwd_efficiency: c.attn_fwd,
        attention_bwd_efficiency: c.attn_bwd,
        memory_efficiency: c.mem,
        kernel_overhead_us: c.overhead_us,
        grouped_gemm_efficiency: c.grouped,
    }
}

/// Names accepted by [`gpu_preset`].
pub const GPU_PRESETS: &[&str] = &["A100-40GB", "A100-80GB", "H100-SXM", "H800", "H200", "B200", "MI300X"];

/// Looks up a GPU preset by name (case-insensitive).
pub fn gpu_preset(name: &str) -> Option<GpuSpec> {
    let n = name.to_ascii_uppercase();
    Some(match n.as_str() {
        // 40 GB = 40 GiB on the device; 1555 GB/s HBM2; NVLink3 600 GB/s bidirectional.
        "A100-40GB" | "A100-SXM4-40GB" => spec("A100-40GB", 312.0, 0.0, 40.0, 1555.0, 600.0, 108, 400.0, &AMPERE),
        "A100-80GB" | "A100-SXM4-80GB" | "A100" => {
            spec("A100-80GB", 312.0, 0.0, 80.0, 2039.0, 600.0, 108, 400.0, &AMPERE)
        }
        "H100-SXM" | "H100" | "H100-SXM5-80GB" => {
            spec("H100-SXM", 989.4, 1978.9, 80.0, 3350.0, 900.0, 132, 700.0, &HOPPER)
        }
        // H800: H100 compute with NVLink cut to 400 GB/s bidirectional; TDP as H100 (unconfirmed).
        "H800" | "H800-SXM5-80GB" => spec("H800", 989.4, 1978.9, 80.0, 3350.0, 400.0, 132, 700.0, &HOPPER),
        // H200: 141 GB HBM3e (about 140 GiB visible), 4.8 TB/s.
        "H200" | "H200-SXM-141GB" => spec("H200", 989.4, 1978.9, 140.0, 4800.0, 900.0, 132, 700.0, &HOPPER),
        // B200 (HGX, 1000 W): about 179 GiB visible of 192 GB.
        "B200" => spec("B200", 2250.0, 4500.0, 179.0, 8000.0, 1800.0, 148, 1000.0, &BLACKWELL),
        "MI300X" => spec("MI300X", 1307.4, 2614.9, 192.0, 5300.0, 896.0, 304, 750.0, &CDNA3),
        _ => return None,
    })
}

/// A DGX-H100-like cluster for unit tests anywhere in the crate: H100-SXM, one 400 Gbit/s
/// NIC per GPU, the hop model with its scenario defaults for latencies and efficiencies,
/// 16 nodes per leaf, a non-blocking fabric.
#[cfg(test)]
pub(crate) fn test_cluster(num_gpus: u32, gpus_per_node: u32) -> super::ClusterSpec {
    super::ClusterSpec {
        gpu: gpu_preset("H100-SXM").expect("preset exists"),
        num_gpus,
        gpus_per_node,
        nics_per_node: gpus_per_node,
        nic_gbit_per_s: 400.0,
        scale_up_latency_us: 1.5,
        scale_out_latency_us: 4.0,
        scale_up_efficiency: 0.8,
        scale_out_efficiency: 0.9,
        oversubscription: 1.0,
        nodes_per_leaf: 16,
        topology: Default::default(),
        fabric: super::fabric::FabricSpec::hop(),
        groups: Vec::new(),
        cross_group_gbit_per_s: 0.0,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_listed_preset_resolves_with_sane_values() {
        for name in GPU_PRESETS {
            let g = gpu_preset(name).unwrap_or_else(|| panic!("preset {name} missing"));
            assert!(g.peak_bf16_tflops > 100.0 && g.hbm_capacity_gib >= 40.0);
            assert!(g.gemm_efficiency > 0.0 && g.gemm_efficiency <= 1.0);
            assert!(g.scale_up_gbyte_per_s > 0.0);
        }
        assert!(gpu_preset("nonexistent").is_none());
        assert_eq!(gpu_preset("h100-sxm").unwrap().name, "H100-SXM");
    }

    #[test]
    fn a100_has_no_fp8_and_h100_doubles_for_fp8() {
        use crate::hardware::Precision;
        let a = gpu_preset("A100-80GB").unwrap();
        assert_eq!(a.peak_tflops(Precision::Fp8), a.peak_bf16_tflops);
        let h = gpu_preset("H100-SXM").unwrap();
        assert!((h.peak_tflops(Precision::Fp8) / h.peak_tflops(Precision::Bf16) - 2.0).abs() < 0.01);
    }
}
