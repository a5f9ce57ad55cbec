//! Calibration of the GPU efficiency constants on the validation scenarios.
//!
//! For one GPU family and precision, evaluates a grid of (GEMM peak efficiency,
//! half-efficiency dimension) and prints the MAPE of step time on
//! the matching scenarios of `scenarios/validation`, best first. The chosen values go into
//! `src/hardware/presets.rs`; `docs/calibration.md` records the fit.
//!
//! Usage: `cargo run --release --example calibrate -- A100 bf16|fp16|fp8 [DIR]`

use rayon::prelude::*;
use std::path::Path;
use trainsim::hardware::Precision;
use trainsim::scenario::Scenario;

fn files(dir: &Path, out: &mut Vec<std::path::PathBuf>) {
    for e in std::fs::read_dir(dir).expect("readable folder").flatten() {
        let p = e.path();
        if p.is_dir() {
            files(&p, out);
        } else if p.extension().is_some_and(|x| x == "toml") {
            out.push(p);
        }
    }
}

fn main() {
    let args: Vec<String> = std::env::args().collect();
    let family = args.get(1).map(String::as_str).unwrap_or("A100");
    let prec = args.get(2).map(String::as_str).unwrap_or("fp16");
    let dir = args.get(3).map(String::as_str).unwrap_or("scenarios/validation");
    let mut paths = Vec::new();
    files(Path::new(dir), &mut paths);
    paths.sort();
    let want_fp8 = prec == "fp8";
    let scenarios: Vec<Scenario> = paths
        .iter()
        .filter_map(|p| Scenario::load(p).ok())
        .filter(|s| {
            s.input.cluster.gpu.name.starts_with(family)
                && (s.input.training.precision == Precision::Fp8) == want_fp8
                && s.measured.as_ref().and_then(|m| m.step_time_s).is_some()
        })
        .collect();
    println!("{} scenarios for {family} {prec}", scenarios.len());
    // (peak efficiency, half-efficiency dimension) grid; FP8 sweeps the FP8 efficiency
    let start = if want_fp8 { 0.45 } else { 0.66 };
    let grid: Vec<(f64, f64)> = (0..10)
        .flat_map(|i| [64.0, 128.0, 256.0, 512.0, 1024.0].map(|half| (start + 0.03 * i as f64, half)))
        .collect();
    let mut fits: Vec<Fit> = grid
        .par_iter()
        .map(|&(gemm, half)| {
            let errors_pct: Vec<f64> = scenarios
                .iter()
                .map(|s| {
                    let mut input = s.input.clone();
                    let g = &mut input.cluster.gpu;
                    if want_fp8 {
                        g.fp8_gemm_efficiency = gemm;
                    } else {
                        g.gemm_efficiency = gemm;
                    }
                    g.gemm_half_efficiency_dim = half;
                    input.iterations = 2;
                    let r = trainsim::simulation::run(&input).expect("simulates");
                    let measured = s.measured.as_ref().and_then(|m| m.step_time_s).expect("filtered above");
                    100.0 * (r.step_time_s / measured - 1.0)
                })
                .collect();
            let mape = errors_pct.iter().map(|e| e.abs()).sum::<f64>() / errors_pct.len() as f64;
            let worst = errors_pct.iter().map(|e| e.abs()).fold(0.0, f64::max);
            Fit {
                mape,
                worst,
                gemm,
                half,
                errors_pct,
            }
        })
        .collect();
    fits.sort_by(|a, b| a.mape.total_cmp(&b.mape));
    for f in fits.iter().take(8) {
        let e: Vec<String> = f.errors_pct.iter().map(|x| format!("{x:+.1}")).collect();
        println!(
            "MAPE {:5.2}% worst {:5.1}%  efficiency {:.2} half_dim {:>4}  [{}]",
            f.mape,
            f.worst,
            f.gemm,
            f.half,
            e.join(" ")
        );
    }
}

struct Fit {
    mape: f64,
    worst: f64,
    gemm: f64,
    half: f64,
    errors_pct: Vec<f64>,
}
