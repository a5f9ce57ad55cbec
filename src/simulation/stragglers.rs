//! Stragglers: persistently slow GPUs and per-step random slowdowns, drawn from seeded
//! streams, turned into a compute-time factor per (iteration, pipeline stage).
//!
//! A stage's representative runs at the speed of the slowest of the `tp * dp` GPUs it
//! stands for: every TP collective waits for the slowest TP rank, and the end-of-step
//! data-parallel reduction makes every replica wait for the slowest one, so the step time
//! is that of the replica holding the slowest GPU. (The faster replicas' waiting is not
//! shown per replica; their breakdown is the representative's.)

use crate::engine::rng::stream;
use rand::RngExt;
use serde::{Deserialize, Serialize};

/// Straggler model of a scenario (`[stragglers]`). All zero: no stragglers.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct StragglerSpec {
    /// Persistently slow GPUs, placed uniformly at random (seeded).
    pub slow_gpus: u32,
    /// Extra compute time on a slow GPU, fraction (0.05 = 5% slower).
    pub slowdown_fraction: f64,
    /// Per-GPU, per-step random slowdown: compute time is multiplied by `exp(s * |Z|)`,
    /// Z standard normal, s this value.
    pub step_jitter_fraction: f64,
}

impl StragglerSpec {
    /// True when the spec changes nothing.
    pub fn is_none(&self) -> bool {
        (self.slow_gpus == 0 || self.slowdown_fraction == 0.0) && self.step_jitter_fraction == 0.0
    }
}

fn standard_normal(rng: &mut crate::engine::rng::SimRng) -> f64 {
    // Box-Muller; u1 in (0, 1]
    let u1: f64 = 1.0 - rng.random::<f64>();
    let u2: f64 = rng.random::<f64>();
    (-2.0 * u1.ln()).sqrt() * (2.0 * std::f64::consts::PI * u2).cos()
}

/// Compute-time factor of every pipeline stage in every iteration, `[iteration][stage]`,
/// for `pp` stages of `gpus_per_stage` GPUs each.
pub fn stage_factors(spec: &StragglerSpec, seed: u64, pp: u32, gpus_per_stage: u32, iterations: u32) -> Vec<Vec<f64>> {
    let mut persistent = vec![1.0f64; pp as usize];
    if spec.slow_gpus > 0 && spec.slowdown_fraction > 0.0 {
        let total = pp as u64 * gpus_per_stage as u64;
        let mut rng = stream(seed, "slow-gpus", 0);
        for _ in 0..spec.slow_gpus.min(total as u32) {
            let gpu = rng.random_range(0..total);
            persistent[(gpu / gpus_per_stage as u64) as usize] = 1.0 + spec.slowdown_fraction;
        }
    }
    (0..iterations)
        .map(|it| {
            (0..pp)
                .map(|s| {
                    let mut f = persistent[s as usize];
                    if spec.step_jitter_fraction > 0.0 {
                        let mut rng = stream(seed, "step-jitter", ((it as u64) << 32) | s as u64);
                        let worst = (0..gpus_per_stage)
                            .map(|_| standard_normal(&mut rng).abs())
                            .fold(0.0, f64::max);
                        f *= (spec.step_jitter_fraction * worst).exp();
                    }
                    f
                })
                .collect()
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn no_stragglers_means_unit_factors() {
        let f = stage_factors(&StragglerSpec::default(), 1, 4, 64, 3);
        assert!(f.iter().flatten().all(|&x| x == 1.0));
    }

    #[test]
    fn slow_gpus_slow_their_stage_and_jitter_grows_with_stage_size() {
        let spec = StragglerSpec {
            slow_gpus: 1,
            slowdown_fraction: 0.1,
            step_jitter_fraction: 0.0,
        };
        let f = stage_factors(&spec, 7, 8, 16, 2);
        assert_eq!(f[0].iter().filter(|&&x| (x - 1.1).abs() < 1e-12).count(), 1);
        assert_eq!(f[0], f[1], "persistent slowdowns persist");
        // the max of more |Z| draws is larger: more GPUs per stage, worse straggler
        let j = StragglerSpec {
            step_jitter_fraction: 0.02,
            ..Default::default()
        };
        let mean = |g: u32| stage_factors(&j, 3, 8, g, 20).iter().flatten().sum::<f64>() / 160.0;
        assert!(mean(1024) > mean(8));
        assert_eq!(stage_factors(&j, 3, 8, 64, 2), stage_factors(&j, 3, 8, 64, 2));
        assert_ne!(stage_factors(&j, 3, 8, 64, 2), stage_factors(&j, 4, 8, 64, 2));
    }
}
