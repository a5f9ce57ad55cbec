//! Stragglers: persistently slow GPUs and per-step random slowdowns, drawn from seeded
//! streams, turned into a compute-time factor per (iteration, pipeline stage).
//!
//! A simulated rank runs at the speed of the slowest GPU it stands for: every TP collective
//! waits for the slowest TP rank. In the representative mode one rank stands for all the
//! `tp * cp * dp` GPUs of a stage, so one slow GPU slows the whole stage in every replica;
//! in the every-replica mode ([`super::replicas`]) a rank stands for the `tp * cp` GPUs of
//! one replica, and the other replicas wait for it only where they meet (the data-parallel
//! collectives), which shows as their straggler wait. Both modes draw the same GPUs and
//! slowdowns: with slow GPUs or jitter alone a representative factor is the maximum of its
//! replicas'; with both it is the product of the stage's worst of each, which no single
//! replica may have (the representative mode's pessimism).

use crate::engine::rng::stream;
use rand::RngExt;
use serde::{Deserialize, Serialize};

/// Straggler model of a scenario (`[stragglers]`). All zero: no stragglers.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct StragglerSpec {
    /// Persistently slow GPUs, placed uniformly at random (seeded).
    pub slow_gpus: u32,
    /// Persistently slow nodes (every GPU of the node slow: cooling, power capping, a
    /// degraded host), placed uniformly at random (seeded).
    #[serde(default)]
    pub slow_nodes: u32,
    /// Extra compute time on a slow GPU or a slow node's GPU, fraction (0.05 = 5% slower).
    pub slowdown_fraction: f64,
    /// Per-GPU, per-step random slowdown: compute time is multiplied by `exp(s * |Z|)`,
    /// Z standard normal, s this value.
    pub step_jitter_fraction: f64,
}

impl StragglerSpec {
    /// True when the spec changes nothing.
    pub fn is_none(&self) -> bool {
        ((self.slow_gpus == 0 && self.slow_nodes == 0) || self.slowdown_fraction == 0.0)
            && self.step_jitter_fraction == 0.0
    }
}

fn standard_normal(rng: &mut crate::engine::rng::SimRng) -> f64 {
    // Box-Muller; u1 in (0, 1]
    let u1: f64 = 1.0 - rng.random::<f64>();
    let u2: f64 = rng.random::<f64>();
    (-2.0 * u1.ln()).sqrt() * (2.0 * std::f64::consts::PI * u2).cos()
}

/// Compute-time factor of every pipeline stage in every iteration, `[iteration][stage]`,
/// for `pp` stages of `gpus_per_stage` GPUs each, on nodes of `gpus_per_node`.
pub fn stage_factors(
    spec: &StragglerSpec,
    seed: u64,
    pp: u32,
    gpus_per_stage: u32,
    gpus_per_node: u32,
    iterations: u32,
) -> Vec<Vec<f64>> {
    replica_factors(spec, seed, pp, gpus_per_stage, gpus_per_node, 1, iterations)
}

/// Compute-time factor of every replica of every pipeline stage in every iteration,
/// `[iteration][replica * pp + stage]`, for `pp` stages of `gpus_per_stage` GPUs each
/// split into `replicas` replicas of consecutive GPUs. The draws do not depend on
/// `replicas`: each factor is the maximum over its GPUs.
pub fn replica_factors(
    spec: &StragglerSpec,
    seed: u64,
    pp: u32,
    gpus_per_stage: u32,
    gpus_per_node: u32,
    replicas: u32,
    iterations: u32,
) -> Vec<Vec<f64>> {
    let replicas = replicas.clamp(1, gpus_per_stage.max(1));
    let per_replica = (gpus_per_stage / replicas).max(1);
    let slot = |stage: u64, gpu_in_stage: u64| {
        let r = (gpu_in_stage / per_replica as u64).min(replicas as u64 - 1);
        (r * pp as u64 + stage) as usize
    };
    let n = (pp * replicas) as usize;
    let mut persistent = vec![1.0f64; n];
    if spec.slow_gpus > 0 && spec.slowdown_fraction > 0.0 {
        let total = pp as u64 * gpus_per_stage as u64;
        let mut rng = stream(seed, "slow-gpus", 0);
        for _ in 0..spec.slow_gpus.min(total as u32) {
            let gpu = rng.random_range(0..total);
            let g = gpus_per_stage as u64;
            persistent[slot(gpu / g, gpu % g)] = 1.0 + spec.slowdown_fraction;
        }
    }
    if spec.slow_nodes > 0 && spec.slowdown_fraction > 0.0 {
        let total = pp as u64 * gpus_per_stage as u64;
        let per_node = u64::from(gpus_per_node.max(1));
        let nodes = total.div_ceil(per_node);
        let mut rng = stream(seed, "slow-nodes", 0);
        for _ in 0..u64::from(spec.slow_nodes).min(nodes) {
            let node = rng.random_range(0..nodes);
            let g = gpus_per_stage as u64;
            // a node's GPUs: consecutive ranks, in one stage or (small stages) several
            for gpu in node * per_node..((node + 1) * per_node).min(total) {
                persistent[slot(gpu / g, gpu % g)] = 1.0 + spec.slowdown_fraction;
            }
        }
    }
    (0..iterations)
        .map(|it| {
            let mut f = persistent.clone();
            if spec.step_jitter_fraction > 0.0 {
                for s in 0..pp {
                    let mut rng = stream(seed, "step-jitter", ((it as u64) << 32) | s as u64);
                    let mut worst = vec![0.0f64; replicas as usize];
                    for g in 0..gpus_per_stage {
                        let z = standard_normal(&mut rng).abs();
                        let r = (g / per_replica).min(replicas - 1) as usize;
                        worst[r] = worst[r].max(z);
                    }
                    for (r, w) in worst.iter().enumerate() {
                        f[r * pp as usize + s as usize] *= (spec.step_jitter_fraction * w).exp();
                    }
                }
            }
            f
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn no_stragglers_means_unit_factors() {
        let f = stage_factors(&StragglerSpec::default(), 1, 4, 64, 8, 3);
        assert!(f.iter().flatten().all(|&x| x == 1.0));
    }

    #[test]
    fn slow_gpus_slow_their_stage_and_jitter_grows_with_stage_size() {
        let spec = StragglerSpec {
            slow_gpus: 1,
            slow_nodes: 0,
            slowdown_fraction: 0.1,
            step_jitter_fraction: 0.0,
        };
        let f = stage_factors(&spec, 7, 8, 16, 8, 2);
        assert_eq!(f[0].iter().filter(|&&x| (x - 1.1).abs() < 1e-12).count(), 1);
        assert_eq!(f[0], f[1], "persistent slowdowns persist");
        // the max of more |Z| draws is larger: more GPUs per stage, worse straggler
        let j = StragglerSpec {
            step_jitter_fraction: 0.02,
            ..Default::default()
        };
        let mean = |g: u32| stage_factors(&j, 3, 8, g, 8, 20).iter().flatten().sum::<f64>() / 160.0;
        assert!(mean(1024) > mean(8));
        assert_eq!(stage_factors(&j, 3, 8, 64, 8, 2), stage_factors(&j, 3, 8, 64, 8, 2));
        assert_ne!(stage_factors(&j, 3, 8, 64, 8, 2), stage_factors(&j, 4, 8, 64, 8, 2));
    }

    #[test]
    fn a_stage_factor_is_the_maximum_of_its_replicas() {
        let slow = StragglerSpec {
            slow_gpus: 3,
            slow_nodes: 0,
            slowdown_fraction: 0.2,
            step_jitter_fraction: 0.0,
        };
        let jitter = StragglerSpec {
            step_jitter_fraction: 0.03,
            ..Default::default()
        };
        let both = StragglerSpec {
            step_jitter_fraction: 0.03,
            ..slow.clone()
        };
        let (pp, gps, dp) = (4, 32, 8);
        let max_of_replicas = |spec: &StragglerSpec, it: usize, s: usize| {
            let f = replica_factors(spec, 5, pp, gps, 8, dp, 3);
            (0..dp as usize).map(|r| f[it][r * pp as usize + s]).fold(0.0, f64::max)
        };
        for spec in [&slow, &jitter] {
            for (it, stage) in stage_factors(spec, 5, pp, gps, 8, 3).iter().enumerate() {
                for (s, &f) in stage.iter().enumerate() {
                    assert_eq!(max_of_replicas(spec, it, s), f);
                }
            }
        }
        // with both, no replica need hold both worst draws: never above the representative
        for (it, stage) in stage_factors(&both, 5, pp, gps, 8, 3).iter().enumerate() {
            for (s, &f) in stage.iter().enumerate() {
                assert!(max_of_replicas(&both, it, s) <= f);
            }
        }
        // a slow GPU slows one replica of its stage, not all of them
        let slow = StragglerSpec {
            slow_gpus: 1,
            slow_nodes: 0,
            slowdown_fraction: 0.1,
            step_jitter_fraction: 0.0,
        };
        let f = replica_factors(&slow, 9, pp, gps, 8, dp, 1);
        assert_eq!(f[0].iter().filter(|&&x| x > 1.0).count(), 1);
    }

    #[test]
    fn a_slow_node_slows_the_replicas_on_its_gpus() {
        let spec = StragglerSpec {
            slow_nodes: 1,
            slowdown_fraction: 0.25,
            ..Default::default()
        };
        // 4 stages of 32 GPUs, 8 per node, replicas of 2 GPUs: one node is 4 replicas of
        // one stage
        let f = replica_factors(&spec, 3, 4, 32, 8, 16, 1);
        let slow: Vec<usize> = (0..f[0].len()).filter(|&i| f[0][i] > 1.0).collect();
        assert_eq!(slow.len(), 4, "{slow:?}");
        let stage = slow[0] % 4;
        assert!(slow.iter().all(|&i| i % 4 == stage));
        assert!(f[0].iter().all(|&x| x == 1.0 || x == 1.25));
        assert!(!spec.is_none());
    }
}
