//! Token routing of Mixture-of-Experts layers as a seeded random process: for every
//! iteration, MoE layer and micro-batch, how many token assignments each expert of an
//! expert-parallel group receives, and how many a capacity factor drops.
//!
//! Owns: [`Routing`] (the distribution), [`RoutingSpec`] (distribution + capacity) and
//! [`draw`]. Skew is persistent per layer (a layer's popular experts stay popular within a
//! step and, for Zipf and the hot set, across steps); each micro-batch adds multinomial
//! sampling noise. `Balanced` is exact (forced-balanced benchmarks), with no noise.

use crate::engine::hash::FastMap;
use crate::engine::rng::{stream, SimRng};
use rand::RngExt;
use serde::{Deserialize, Serialize};
use std::cell::RefCell;
use std::rc::Rc;
use std::sync::atomic::{AtomicUsize, Ordering};

/// How tokens pick experts.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case", tag = "kind")]
pub enum Routing {
    /// Every expert receives exactly its share (forced balancing, as MoE benchmarks use).
    Balanced,
    /// Expert shares drawn per layer and step from a symmetric Dirichlet(`alpha`)
    /// (small alpha: strong skew; large alpha: near balance).
    Dirichlet {
        /// Concentration.
        alpha: f64,
    },
    /// Expert popularity follows Zipf's law with `exponent` (fixed ranking per layer).
    Zipf {
        /// Exponent (0: balanced).
        exponent: f64,
    },
    /// Expert shares proportional to a log-normal draw with `sigma` per layer and step.
    LogNormal {
        /// Standard deviation of the log-load.
        sigma: f64,
    },
    /// `experts` hot experts per layer take `fraction` of all assignments.
    HotSet {
        /// Hot experts per layer.
        experts: u32,
        /// Share of assignments they take, in [0, 1].
        fraction: f64,
    },
    /// Like the hot set, but the hot experts move to the next ones every `every_steps`
    /// iterations (a rotating hotspot).
    Rotating {
        /// Hot experts per layer.
        experts: u32,
        /// Share of assignments they take, in [0, 1].
        fraction: f64,
        /// Iterations between moves.
        every_steps: u32,
    },
    /// Relative expert loads replayed from measurements: row `r` is used for the `r`-th
    /// (iteration, MoE layer) pair, cycling.
    Replay {
        /// Rows of per-expert relative loads.
        rows: Vec<Vec<f64>>,
    },
}

impl Routing {
    /// Names accepted in scenario files.
    pub const NAMES: &'static [&'static str] =
        &["balanced", "dirichlet", "zipf", "lognormal", "hot", "rotating", "csv"];

    /// The scenario-file name of this distribution (one of [`Routing::NAMES`]).
    pub fn name(&self) -> &'static str {
        Self::NAMES[match self {
            Routing::Balanced => 0,
            Routing::Dirichlet { .. } => 1,
            Routing::Zipf { .. } => 2,
            Routing::LogNormal { .. } => 3,
            Routing::HotSet { .. } => 4,
            Routing::Rotating { .. } => 5,
            Routing::Replay { .. } => 6,
        }]
    }
}

/// How tokens travel to the experts: the network's dispatch model.
pub use crate::network::Dispatcher;

/// Routing of a run.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct RoutingSpec {
    /// Distribution of assignments over experts.
    pub routing: Routing,
    /// Capacity factor: an expert keeps at most `capacity_factor * assignments / experts`
    /// tokens and drops the rest; `None` is dropless.
    pub capacity_factor: Option<f64>,
    /// How tokens travel to the experts.
    #[serde(default)]
    pub dispatcher: Dispatcher,
    /// Node-limited routing: each token reaches experts on at most this many nodes of its
    /// expert-parallel group (DeepSeek-V3: 4); `None` for no limit.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub node_limit: Option<u32>,
}

impl Default for RoutingSpec {
    fn default() -> Self {
        RoutingSpec {
            routing: Routing::Balanced,
            capacity_factor: None,
            dispatcher: Dispatcher::AllToAll,
            node_limit: None,
        }
    }
}

impl RoutingSpec {
    /// Whether every draw is exactly balanced (then all expert-parallel ranks are
    /// identical and one stands for all).
    pub fn is_balanced(&self) -> bool {
        matches!(self.routing, Routing::Balanced)
    }
}

/// Where a draw sits in the run.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct DrawKey {
    /// Training iteration.
    pub iteration: u32,
    /// MoE layer index (0-based over MoE layers of the whole model).
    pub moe_layer: u32,
    /// Micro-batch.
    pub microbatch: u32,
    /// MoE layers in the model (a replayed row is chosen per (iteration, MoE layer)).
    pub moe_layers: u32,
}

/// Token assignments per expert for one MoE layer and micro-batch of one EP group.
#[derive(Clone, Debug, PartialEq)]
pub struct ExpertLoad {
    /// Assignments each expert computes (after drops).
    pub kept: Vec<f64>,
    /// Assignments dropped by the capacity limit.
    pub dropped: f64,
}

/// Draws the assignments of `assignments` token-expert pairs over `experts` experts.
/// Conservation: `sum(kept) + dropped == assignments` (to rounding).
pub fn draw(spec: &RoutingSpec, experts: u32, assignments: f64, seed: u64, key: DrawKey) -> ExpertLoad {
    draw_from(spec, &layer_shares(spec, experts, seed, key), assignments, seed, key)
}

/// The expected share of each of `experts` experts (sums to 1) for the layer and
/// iteration of `key`: the same for every micro-batch, so a caller drawing many
/// micro-batches computes it once.
pub fn layer_shares(spec: &RoutingSpec, experts: u32, seed: u64, key: DrawKey) -> Vec<f64> {
    shares(spec, experts.max(1) as usize, seed, key)
}

/// [`draw`] with the layer's [`layer_shares`] given.
pub fn draw_from(spec: &RoutingSpec, shares: &[f64], assignments: f64, seed: u64, key: DrawKey) -> ExpertLoad {
    let e = shares.len();
    let mut counts: Vec<f64> = if spec.is_balanced() {
        vec![assignments / e as f64; e]
    } else {
        // multinomial sampling noise of this micro-batch (normal approximation)
        let z = sample_noise(seed, index(key, 2), e);
        let raw: Vec<f64> = shares
            .iter()
            .zip(z.iter())
            .map(|(&p, &z)| {
                let mean = assignments * p;
                let sd = (assignments * p * (1.0 - p)).max(0.0).sqrt();
                (mean + sd * z).max(0.0)
            })
            .collect();
        let sum: f64 = raw.iter().sum();
        if sum > 0.0 {
            raw.iter().map(|c| c * assignments / sum).collect()
        } else {
            vec![assignments / e as f64; e]
        }
    };
    let mut dropped = 0.0;
    if let Some(cf) = spec.capacity_factor {
        let cap = cf * assignments / e as f64;
        for c in counts.iter_mut() {
            if *c > cap {
                dropped += *c - cap;
                *c = cap;
            }
        }
    }
    ExpertLoad { kept: counts, dropped }
}

/// Cached noise vectors by (seed, draw index, experts), and the values held.
type NoiseCache = (FastMap<(u64, u64, usize), Rc<[f64]>>, usize);

thread_local! {
    /// Standard normal noise of each micro-batch's draw by (seed, draw index, experts), kept
    /// while a [`NoiseCacheGuard`] lives: the noise does not depend on the plan (the load
    /// scales it), so a plan search evaluating many plans of one scenario draws it once per
    /// thread. The values are those a fresh stream gives. Cleared past
    /// [`NOISE_CACHE_VALUES`] values, and once no guard lives.
    static NOISE: RefCell<NoiseCache> = RefCell::new((FastMap::default(), 0));
}

/// Values the noise cache of a thread holds at most (8 bytes each).
const NOISE_CACHE_VALUES: usize = 1 << 22;

/// Live [`NoiseCacheGuard`]s.
static NOISE_CACHE_USERS: AtomicUsize = AtomicUsize::new(0);

/// Keeps the routing noise of every draw for reuse while it lives ([`cache_noise`]). A
/// single run draws each micro-batch once and does not keep it (a DeepSeek-V3 run would
/// hold 36 MB of it for nothing).
pub struct NoiseCacheGuard(());

/// Reuse routing noise across the plans evaluated until the guard drops (plan search).
pub fn cache_noise() -> NoiseCacheGuard {
    NOISE_CACHE_USERS.fetch_add(1, Ordering::Relaxed);
    NoiseCacheGuard(())
}

impl Drop for NoiseCacheGuard {
    fn drop(&mut self) {
        NOISE_CACHE_USERS.fetch_sub(1, Ordering::Relaxed);
    }
}

/// `e` standard normal draws of the stream (`seed`, "routing-sample", `index`), in order.
fn sample_noise(seed: u64, index: u64, e: usize) -> Rc<[f64]> {
    let fresh = || -> Rc<[f64]> {
        let mut rng = stream(seed, "routing-sample", index);
        (0..e).map(|_| normal(&mut rng)).collect()
    };
    NOISE.with(|cache| {
        let mut cache = cache.borrow_mut();
        if NOISE_CACHE_USERS.load(Ordering::Relaxed) == 0 {
            if cache.1 > 0 {
                *cache = (FastMap::default(), 0);
            }
            return fresh();
        }
        if let Some(z) = cache.0.get(&(seed, index, e)) {
            return Rc::clone(z);
        }
        let z = fresh();
        if cache.1 + e > NOISE_CACHE_VALUES {
            cache.0.clear();
            cache.1 = 0;
        }
        cache.1 += e;
        cache.0.insert((seed, index, e), Rc::clone(&z));
        z
    })
}

fn index(key: DrawKey, salt: u64) -> u64 {
    ((key.iteration as u64) << 40) ^ ((key.moe_layer as u64) << 20) ^ key.microbatch as u64 ^ (salt << 60)
}

/// Expected share of each expert (sums to 1).
fn shares(spec: &RoutingSpec, e: usize, seed: u64, key: DrawKey) -> Vec<f64> {
    let layer_key = DrawKey { microbatch: 0, ..key };
    let normalise = |v: Vec<f64>| -> Vec<f64> {
        let s: f64 = v.iter().sum();
        if s > 0.0 && s.is_finite() {
            v.iter().map(|x| x / s).collect()
        } else {
            vec![1.0 / e as f64; e]
        }
    };
    match &spec.routing {
        Routing::Balanced => vec![1.0 / e as f64; e],
        Routing::Dirichlet { alpha } => {
            let mut rng = stream(seed, "routing-dirichlet", index(layer_key, 0));
            normalise((0..e).map(|_| gamma(&mut rng, *alpha)).collect())
        }
        Routing::LogNormal { sigma } => {
            let mut rng = stream(seed, "routing-lognormal", index(layer_key, 0));
            normalise((0..e).map(|_| (sigma * normal(&mut rng)).exp()).collect())
        }
        Routing::Zipf { exponent } => {
            // a fixed popularity ranking per layer
            let perm = permutation(e, seed, key.moe_layer);
            let mut v = vec![0.0; e];
            for (rank, &expert) in perm.iter().enumerate() {
                v[expert] = 1.0 / ((rank + 1) as f64).powf(*exponent);
            }
            normalise(v)
        }
        Routing::HotSet { experts, fraction } => hot(e, *experts, *fraction, &permutation(e, seed, key.moe_layer)),
        Routing::Rotating {
            experts,
            fraction,
            every_steps,
        } => {
            let k = (*experts as usize).min(e);
            let shift = (key.iteration / (*every_steps).max(1)) as usize * k.max(1);
            let order: Vec<usize> = (0..e).map(|i| (i + shift + key.moe_layer as usize) % e).collect();
            hot(e, *experts, *fraction, &order)
        }
        Routing::Replay { rows } => {
            if rows.is_empty() {
                return vec![1.0 / e as f64; e];
            }
            // rows in (iteration, MoE layer) order, cycling
            let r = key.iteration as usize * key.moe_layers.max(1) as usize + key.moe_layer as usize;
            let row = &rows[r % rows.len()];
            normalise((0..e).map(|i| row.get(i).copied().unwrap_or(0.0).max(0.0)).collect())
        }
    }
}

/// The first `k` experts of `order` share `fraction`; the others share the rest.
fn hot(e: usize, k: u32, fraction: f64, order: &[usize]) -> Vec<f64> {
    let k = (k as usize).min(e);
    let mut v = vec![0.0; e];
    for (i, &expert) in order.iter().enumerate() {
        v[expert] = if i < k {
            fraction / k as f64
        } else if e > k {
            (1.0 - fraction) / (e - k) as f64
        } else {
            0.0
        };
    }
    v
}

/// A seeded permutation of `0..e` for layer `layer` (Fisher-Yates).
fn permutation(e: usize, seed: u64, layer: u32) -> Vec<usize> {
    let mut rng = stream(seed, "routing-rank", layer as u64);
    let mut p: Vec<usize> = (0..e).collect();
    for i in (1..e).rev() {
        let j = (rng.random::<f64>() * (i + 1) as f64) as usize;
        p.swap(i, j.min(i));
    }
    p
}

/// A standard normal draw (Box-Muller).
fn normal(rng: &mut SimRng) -> f64 {
    let u1: f64 = rng.random();
    let u2: f64 = rng.random();
    (-2.0 * (1.0 - u1).ln()).sqrt() * (2.0 * std::f64::consts::PI * u2).cos()
}

/// A Gamma(`alpha`, 1) draw (Marsaglia-Tsang; boosted for alpha < 1).
fn gamma(rng: &mut SimRng, alpha: f64) -> f64 {
    if alpha < 1.0 {
        let u: f64 = rng.random();
        return gamma(rng, alpha + 1.0) * u.max(f64::MIN_POSITIVE).powf(1.0 / alpha);
    }
    let d = alpha - 1.0 / 3.0;
    let c = 1.0 / (9.0 * d).sqrt();
    loop {
        let x = normal(rng);
        let v = (1.0 + c * x).powi(3);
        if v <= 0.0 {
            continue;
        }
        let u: f64 = rng.random();
        if u.ln() < 0.5 * x * x + d - d * v + d * v.ln() {
            return d * v;
        }
    }
}

/// Imbalance statistics of loads: (max / mean, Gini coefficient).
pub fn imbalance(loads: &[f64]) -> (f64, f64) {
    let n = loads.len();
    if n == 0 {
        return (1.0, 0.0);
    }
    let sum: f64 = loads.iter().sum();
    let mean = sum / n as f64;
    if mean <= 0.0 {
        return (1.0, 0.0);
    }
    let max = loads.iter().cloned().fold(0.0, f64::max);
    // loads are non-negative, where the bit patterns order as the values do (an integer
    // sort: several times faster than a float comparator); equal keys are identical
    // values, so an unstable sort gives the same sequence
    let mut sorted: Vec<u64> = loads.iter().map(|&x| if x > 0.0 { x.to_bits() } else { 0 }).collect();
    sorted.sort_unstable();
    let weighted: f64 = (sorted.iter().enumerate())
        .map(|(i, &x)| (2 * (i + 1)) as f64 * f64::from_bits(x))
        .sum();
    let gini = weighted / (n as f64 * sum) - (n as f64 + 1.0) / n as f64;
    (max / mean, gini.max(0.0))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn key(i: u32, l: u32, m: u32) -> DrawKey {
        DrawKey {
            iteration: i,
            moe_layer: l,
            microbatch: m,
            moe_layers: 20,
        }
    }

    #[test]
    fn replayed_rows_follow_iteration_then_layer() {
        // 2 MoE layers: rows 0, 1 are iteration 0's layers, rows 2, 3 iteration 1's
        let rows: Vec<Vec<f64>> = (0..4)
            .map(|r| (0..4).map(|e| if e == r { 1.0 } else { 0.0 }).collect())
            .collect();
        let spec = RoutingSpec {
            routing: Routing::Replay { rows },
            capacity_factor: None,
            ..RoutingSpec::default()
        };
        for (it, layer) in [(0, 0), (0, 1), (1, 0), (1, 1), (2, 0)] {
            let k = DrawKey {
                iteration: it,
                moe_layer: layer,
                microbatch: 0,
                moe_layers: 2,
            };
            let want = ((it * 2 + layer) % 4) as usize;
            assert_eq!(shares(&spec, 4, 1, k)[want], 1.0, "iteration {it}, layer {layer}");
        }
    }

    fn all_kinds() -> Vec<Routing> {
        vec![
            Routing::Balanced,
            Routing::Dirichlet { alpha: 0.5 },
            Routing::Zipf { exponent: 1.0 },
            Routing::LogNormal { sigma: 0.7 },
            Routing::HotSet {
                experts: 4,
                fraction: 0.5,
            },
            Routing::Rotating {
                experts: 2,
                fraction: 0.4,
                every_steps: 1,
            },
            Routing::Replay {
                rows: vec![vec![1.0, 2.0, 3.0], vec![0.0, 1.0]],
            },
        ]
    }

    #[test]
    fn tokens_are_conserved_for_every_distribution_with_and_without_capacity() {
        for routing in all_kinds() {
            for cf in [None, Some(1.0), Some(1.25)] {
                let spec = RoutingSpec {
                    routing: routing.clone(),
                    capacity_factor: cf,
                    ..RoutingSpec::default()
                };
                for m in 0..5 {
                    let a = 65536.0;
                    let d = draw(&spec, 64, a, 7, key(1, 3, m));
                    let kept: f64 = d.kept.iter().sum();
                    assert!((kept + d.dropped - a).abs() < 1e-6 * a, "{routing:?} {cf:?}");
                    assert!(d.kept.iter().all(|&c| c >= 0.0));
                    if let Some(cf) = cf {
                        let cap = cf * a / 64.0;
                        assert!(
                            d.kept.iter().all(|&c| c <= cap + 1e-9),
                            "capacity caps per-expert tokens"
                        );
                    } else {
                        assert_eq!(d.dropped, 0.0);
                    }
                }
            }
        }
    }

    #[test]
    fn balanced_is_exact_and_draws_are_reproducible() {
        let spec = RoutingSpec::default();
        let d = draw(&spec, 8, 800.0, 1, key(0, 0, 0));
        assert_eq!(d.kept, vec![100.0; 8]);
        let spec = RoutingSpec {
            routing: Routing::Dirichlet { alpha: 1.0 },
            capacity_factor: None,
            ..RoutingSpec::default()
        };
        assert_eq!(
            draw(&spec, 32, 1e4, 9, key(2, 1, 0)),
            draw(&spec, 32, 1e4, 9, key(2, 1, 0))
        );
        assert_ne!(
            draw(&spec, 32, 1e4, 9, key(2, 1, 0)),
            draw(&spec, 32, 1e4, 10, key(2, 1, 0))
        );
    }

    #[test]
    fn skew_parameters_order_the_imbalance() {
        let mean_max = |routing: Routing| -> f64 {
            let spec = RoutingSpec {
                routing,
                capacity_factor: None,
                ..RoutingSpec::default()
            };
            (0..20)
                .map(|l| imbalance(&draw(&spec, 64, 1e6, 3, key(0, l, 0)).kept).0)
                .sum::<f64>()
                / 20.0
        };
        let z: Vec<f64> = [0.0, 0.5, 1.0, 1.5]
            .iter()
            .map(|&s| mean_max(Routing::Zipf { exponent: s }))
            .collect();
        assert!(z.windows(2).all(|w| w[1] > w[0]), "{z:?}");
        let d: Vec<f64> = [10.0, 1.0, 0.1]
            .iter()
            .map(|&a| mean_max(Routing::Dirichlet { alpha: a }))
            .collect();
        assert!(d.windows(2).all(|w| w[1] > w[0]), "{d:?}");
    }

    #[test]
    fn gini_and_max_over_mean_of_known_loads() {
        assert_eq!(imbalance(&[1.0, 1.0, 1.0, 1.0]), (1.0, 0.0));
        let (m, g) = imbalance(&[0.0, 0.0, 0.0, 4.0]);
        assert_eq!(m, 4.0);
        assert!((g - 0.75).abs() < 1e-12);
    }
}
