//! Tests of the kernel costs of layers and experts.

use super::*;
use crate::engine::rng::stream;
use crate::hardware::presets::gpu_preset;
use crate::model::presets::model_preset;
use crate::parallel::tests_support::plan;
use rand::RngExt;

/// The experts' floor at a rank's total is below the experts' time of every split of
/// that total between the rank's experts (uneven, with empty experts), for each part,
/// in BF16 and FP8, on Mixtral- and DeepSeek-V3-shaped experts; and it is not vacuous:
/// at least half the time of the even split once experts get 1,024 tokens each (each
/// non-empty expert of the split pays the GEMM ramp and its weights' read once, the
/// floor only once per rank).
#[test]
fn experts_floor_bounds_every_split_of_the_tokens() {
    let parts = [
        ExpertPart::Forward,
        ExpertPart::Backward,
        ExpertPart::BackwardInput,
        ExpertPart::Weight,
    ];
    let mut rng = stream(7, "experts-floor-test", 0);
    let mut cases = 0;
    for (model, gpu, ep) in [("mixtral-8x7b", "H100-SXM", 4), ("deepseek-v3", "H800", 64)] {
        let m = model_preset(model).unwrap();
        let g = gpu_preset(gpu).unwrap();
        let mut p = plan(1, 1, 64);
        p.ep = ep;
        for prec in [Precision::Bf16, Precision::Fp8] {
            let cost = MoeCost::new(&g, &m, &p, prec, 4096).unwrap();
            let n = cost.experts_per_rank as usize;
            for _ in 0..200 {
                let total = rng.random_range(1.0..20_000.0f64).round();
                // a random split, some experts empty
                let w: Vec<f64> = (0..n)
                    .map(|_| {
                        if rng.random_bool(0.3) {
                            0.0
                        } else {
                            rng.random_range(0.0..1.0)
                        }
                    })
                    .collect();
                let sum: f64 = w.iter().sum();
                let split: Vec<f64> = if sum > 0.0 {
                    w.iter().map(|x| x / sum * total).collect()
                } else {
                    std::iter::once(total).chain(std::iter::repeat(0.0)).take(n).collect()
                };
                let floor = cost.experts_floor(total);
                let real = cost.experts(&split);
                let even = cost.experts(&vec![total / n as f64; n]);
                for part in parts {
                    let (f, r) = (floor.of(part).0, real.of(part).0);
                    assert!(f <= r, "{model} {prec:?} {part:?} {total}: floor {f} > {r} ({split:?})");
                    if total >= 1024.0 * n as f64 {
                        assert!(
                            f >= 0.5 * even.of(part).0.min(r),
                            "{model} {part:?} {total}: {f} vs {r}"
                        );
                    }
                }
                cases += 1;
            }
        }
    }
    assert_eq!(cases, 800);
    assert_eq!(
        MoeCost::new(
            &gpu_preset("H100-SXM").unwrap(),
            &model_preset("mixtral-8x7b").unwrap(),
            &plan(1, 1, 8),
            Precision::Bf16,
            4096
        )
        .unwrap()
        .experts_floor(0.0),
        ExpertTimes::default()
    );
}
