//! Tests of the kernel costs of layers and experts.

use super::*;
use crate::engine::rng::stream;
use crate::hardware::presets::gpu_preset;
use crate::model::presets::model_preset;
use crate::parallel::tests_support::plan;
use rand::RngExt;

/// The experts' floor at a rank's total is below the experts' time of every split of
/// that total between the rank's experts (uneven, with empty experts), for each part,
/// in BF16 and FP8, on Mixtral- and DeepSeek-V3-shaped experts (Mixtral also split over
/// two expert-tensor-parallel ranks); and it is not vacuous:
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
    for (model, gpu, ep, etp) in [
        ("mixtral-8x7b", "H100-SXM", 4, 1),
        ("mixtral-8x7b", "H100-SXM", 4, 2),
        ("deepseek-v3", "H800", 64, 1),
    ] {
        let m = model_preset(model).unwrap();
        let g = gpu_preset(gpu).unwrap();
        let mut p = plan(1, 1, 64);
        p.ep = ep;
        p.expert_tp = etp;
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
    assert_eq!(cases, 1200);
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

/// Expert tensor parallelism splits the expert FLOPs: a rank of an ETP pair runs the
/// experts on both ranks' tokens (gathered) at half the FFN width, so its FLOPs are those
/// of its own tokens at the full width, half of what one rank would do with the pair's
/// tokens; the GEMMs are taller and narrower, so the time differs.
#[test]
fn expert_tensor_parallelism_splits_the_expert_flops() {
    let g = gpu_preset("H100-SXM").unwrap();
    let m = model_preset("mixtral-8x7b").unwrap();
    let mut p = plan(2, 1, 4);
    p.ep = 2;
    let one = MoeCost::new(&g, &m, &p, Precision::Bf16, 4096).unwrap();
    p.expert_tp = 2;
    let two = MoeCost::new(&g, &m, &p, Precision::Bf16, 4096).unwrap();
    assert_eq!(one.experts_per_rank, two.experts_per_rank);
    let received = [900.0, 1500.0, 0.0, 3000.0];
    let pair: Vec<f64> = received.iter().map(|c| 2.0 * c).collect();
    let (a, b, whole) = (one.experts(&received), two.experts(&received), one.experts(&pair));
    let close = |x: f64, y: f64| (x / y - 1.0).abs() < 1e-12;
    for part in [ExpertPart::Forward, ExpertPart::Backward, ExpertPart::Weight] {
        assert!(close(b.of(part).1, a.of(part).1), "{part:?}");
        assert!(close(2.0 * b.of(part).1, whole.of(part).1), "{part:?}");
    }
    let f = 2.0 * (900.0 + 1500.0 + 3000.0) * 2.0 * 3.0 * 14336.0 * 4096.0 / 2.0;
    assert!(close(b.fwd_flops, f), "{} vs {f}", b.fwd_flops);
    assert!(b.fwd_s != a.fwd_s && b.fwd_s < whole.fwd_s);
}
