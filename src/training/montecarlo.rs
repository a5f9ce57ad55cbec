//! Monte Carlo of the wall-clock to a target: the failure / restart / checkpoint process of
//! [`super::reliability`] drawn as a seeded random renewal process, run many times, so
//! that a report can give percentiles (p10, p50, p90) beside the analytic mean.
//!
//! # Process (one run)
//!
//! The same assumptions as the analytic model (Daly 2006), so that the sample mean
//! converges to `compute_time / goodput`:
//!
//! * training advances in segments of `tau + delta` wall-clock (`tau` of work, then a
//!   checkpoint stall `delta`); `compute_s / tau` segments in all (the last one partial);
//! * unplanned interruptions arrive with exponential inter-arrival times of mean `M_u`
//!   (the job's unplanned MTBF). Each one loses the work since the last completed
//!   checkpoint and costs `R' = R` (restart + checkpoint load; plus the in-flight write
//!   when checkpoints are asynchronous) before training resumes; an interruption during
//!   that restart starts it again;
//! * planned interruptions (fraction `1 - unplanned_fraction` of all) arrive at rate
//!   `(1 - u) / M` over the time so far and cost `R` each, losing no work.
//!
//! Each run `i` draws from `crate::engine::rng::stream(seed, "failures", i)`, so the
//! samples depend only on the scenario seed, never on threads or OS entropy. A run that
//! would see more than [`MAX_INTERRUPTIONS_PER_RUN`] interruptions on average is not
//! drawn ([`wall_clock_samples_s`] returns `None`): its relative spread is then below
//! 0.1% and the mean stands for the percentiles.

use super::reliability::{ReliabilityOutcome, ReliabilitySpec};
use crate::engine::rng::{stream, SimRng};
use rand::RngExt;

/// Runs drawn by default.
pub const DEFAULT_RUNS: usize = 200;

/// Above this many expected interruptions per run the sample is not drawn.
pub const MAX_INTERRUPTIONS_PER_RUN: f64 = 1e6;

/// Purpose name of the random streams.
pub const STREAM: &str = "failures";

/// Percentiles of the wall-clock to the target, s.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Percentiles {
    /// 10th percentile, s.
    pub p10_s: f64,
    /// Median, s.
    pub p50_s: f64,
    /// 90th percentile, s.
    pub p90_s: f64,
}

impl Percentiles {
    /// The same value for all three (a deterministic run).
    pub fn constant(x: f64) -> Percentiles {
        Percentiles {
            p10_s: x,
            p50_s: x,
            p90_s: x,
        }
    }

    /// Percentiles of `samples` (linear interpolation between order statistics); `None`
    /// when empty.
    pub fn of(samples: &[f64]) -> Option<Percentiles> {
        if samples.is_empty() {
            return None;
        }
        let mut s = samples.to_vec();
        s.sort_by(f64::total_cmp);
        Some(Percentiles {
            p10_s: percentile(&s, 0.1),
            p50_s: percentile(&s, 0.5),
            p90_s: percentile(&s, 0.9),
        })
    }
}

/// The `q` quantile of ascending `sorted` (non-empty), linear interpolation.
fn percentile(sorted: &[f64], q: f64) -> f64 {
    let pos = q.clamp(0.0, 1.0) * (sorted.len() - 1) as f64;
    let (lo, hi) = (pos.floor() as usize, pos.ceil() as usize);
    sorted[lo] + (sorted[hi] - sorted[lo]) * (pos - lo as f64)
}

/// Parameters of the renewal process, s.
#[derive(Clone, Copy, Debug)]
struct Process {
    /// Work per segment.
    tau: f64,
    /// Wall-clock per segment (work + checkpoint stall).
    segment: f64,
    /// Segment wall-clock left at the start (`compute / tau` segments).
    total: f64,
    /// Mean time between unplanned interruptions (infinite: none).
    m_u: f64,
    /// Cost of an unplanned interruption before training resumes.
    restart_unplanned: f64,
    /// Mean time between planned interruptions (infinite: none).
    m_p: f64,
    /// Cost of a planned interruption.
    restart_planned: f64,
}

/// An exponential draw of mean `mean`.
fn exponential(rng: &mut SimRng, mean: f64) -> f64 {
    let u: f64 = rng.random();
    -mean * (1.0 - u).ln()
}

impl Process {
    fn one_run(&self, rng: &mut SimRng) -> f64 {
        let mut remaining = self.total;
        let mut t = 0.0;
        if self.m_u.is_finite() {
            let mut overhead = 0.0;
            loop {
                let x = exponential(rng, self.m_u);
                if x >= overhead + remaining {
                    t += overhead + remaining;
                    break;
                }
                t += x;
                let progress = x - overhead;
                if progress > 0.0 {
                    // keep the completed checkpoints; progress < remaining here
                    remaining -= (progress / self.segment).floor() * self.segment;
                }
                overhead = self.restart_unplanned;
            }
        } else {
            t = remaining;
        }
        if self.m_p.is_finite() {
            let (mut at, mut k) = (exponential(rng, self.m_p), 0u64);
            while at < t {
                k += 1;
                at += exponential(rng, self.m_p);
            }
            t += k as f64 * self.restart_planned;
        }
        t
    }
}

/// Wall-clock to the target of `runs` random runs, s: `compute_s` of training under the
/// failures and checkpoints of `spec` as evaluated in `rel`, from the streams of `seed`.
/// `None` when the process cannot be drawn (no finite mean, or more than
/// [`MAX_INTERRUPTIONS_PER_RUN`] interruptions per run).
pub fn wall_clock_samples_s(
    spec: &ReliabilitySpec,
    rel: &ReliabilityOutcome,
    compute_s: f64,
    seed: u64,
    runs: usize,
) -> Option<Vec<f64>> {
    let tau = rel.checkpoint_interval_s;
    if !(compute_s.is_finite() && compute_s >= 0.0 && tau > 0.0 && tau.is_finite()) {
        return None;
    }
    let m = rel.job_mtbf_h * 3600.0;
    let m_u = rel.job_mtbf_unplanned_h.map_or(f64::INFINITY, |h| h * 3600.0);
    let u = spec.unplanned_fraction;
    let extra = if spec.async_checkpoint {
        rel.checkpoint_write_s
    } else {
        0.0
    };
    let segment = tau + rel.checkpoint_stall_s;
    let n = compute_s / tau;
    let p = Process {
        tau,
        segment,
        total: n * segment,
        m_u: if u > 0.0 { m_u } else { f64::INFINITY },
        restart_unplanned: rel.downtime_per_interruption_s + extra,
        m_p: if u < 1.0 && m.is_finite() {
            m / (1.0 - u)
        } else {
            f64::INFINITY
        },
        restart_planned: rel.downtime_per_interruption_s,
    };
    // expected unplanned interruptions per run (Daly: e^(R'/M)(e^(s/M) - 1) per segment)
    let unplanned = if p.m_u.is_finite() {
        n * (p.restart_unplanned / p.m_u).exp() * (segment / p.m_u).exp_m1()
    } else {
        0.0
    };
    let wall_u = if p.m_u.is_finite() { unplanned * p.m_u } else { p.total };
    let planned = if p.m_p.is_finite() { wall_u / p.m_p } else { 0.0 };
    let expected = unplanned + planned;
    if !(expected.is_finite() && expected <= MAX_INTERRUPTIONS_PER_RUN && p.tau > 0.0) {
        return None;
    }
    Some(
        (0..runs)
            .map(|i| p.one_run(&mut stream(seed, STREAM, i as u64)))
            .collect(),
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::training::reliability::evaluate;

    /// A job with many failures: 1,024 GPUs at a 2,000 GPU-hour MTBF (job MTBF about 2 h),
    /// 100 days of training.
    fn case(gpu_mtbf_h: f64) -> (ReliabilitySpec, ReliabilityOutcome, f64) {
        let spec = ReliabilitySpec {
            interruptions_per_gpu_h: 1.0 / gpu_mtbf_h,
            ..ReliabilitySpec::llama3()
        };
        let rel = evaluate(&spec, 1024, 128, 70e9, 5.0);
        (spec, rel, 100.0 * 86400.0)
    }

    fn analytic_mean_s(rel: &ReliabilityOutcome, compute_s: f64) -> f64 {
        compute_s / rel.goodput_fraction
    }

    #[test]
    fn percentiles_are_ordered_and_the_mean_matches_the_analytic_model() {
        let (spec, rel, compute_s) = case(2000.0);
        let samples = wall_clock_samples_s(&spec, &rel, compute_s, 42, DEFAULT_RUNS).expect("drawn");
        assert_eq!(samples.len(), DEFAULT_RUNS);
        let p = Percentiles::of(&samples).expect("non-empty");
        assert!(p.p10_s <= p.p50_s && p.p50_s <= p.p90_s, "{p:?}");
        assert!(p.p10_s < p.p90_s, "failures spread the runs: {p:?}");
        assert!(samples.iter().all(|&s| s >= compute_s));
        let mean = samples.iter().sum::<f64>() / samples.len() as f64;
        let analytic = analytic_mean_s(&rel, compute_s);
        // many failures: about 1,200 per run
        assert!(analytic / (rel.job_mtbf_h * 3600.0) > 500.0);
        assert!(
            (mean / analytic - 1.0).abs() < 0.05,
            "sample mean {mean} vs analytic {analytic}"
        );
    }

    #[test]
    fn asynchronous_and_all_unplanned_cases_also_match_the_mean() {
        for (async_checkpoint, unplanned_fraction) in [(true, 0.9), (false, 1.0), (true, 0.0)] {
            let spec = ReliabilitySpec {
                interruptions_per_gpu_h: 1.0 / 2000.0,
                async_checkpoint,
                unplanned_fraction,
                ..ReliabilitySpec::llama3()
            };
            let rel = evaluate(&spec, 1024, 128, 70e9, 5.0);
            let compute_s = 50.0 * 86400.0;
            let s = wall_clock_samples_s(&spec, &rel, compute_s, 3, DEFAULT_RUNS).expect("drawn");
            let mean = s.iter().sum::<f64>() / s.len() as f64;
            let analytic = analytic_mean_s(&rel, compute_s);
            assert!(
                (mean / analytic - 1.0).abs() < 0.05,
                "async {async_checkpoint} u {unplanned_fraction}: {mean} vs {analytic}"
            );
        }
    }

    #[test]
    fn same_seed_same_percentiles_other_seed_other_samples() {
        let (spec, rel, compute_s) = case(2000.0);
        let a = wall_clock_samples_s(&spec, &rel, compute_s, 7, 50).expect("drawn");
        let b = wall_clock_samples_s(&spec, &rel, compute_s, 7, 50).expect("drawn");
        assert_eq!(a, b);
        assert_eq!(Percentiles::of(&a), Percentiles::of(&b));
        let c = wall_clock_samples_s(&spec, &rel, compute_s, 8, 50).expect("drawn");
        assert_ne!(a, c);
    }

    #[test]
    fn more_failures_widen_the_spread() {
        let spread = |gpu_mtbf_h: f64| {
            let (spec, rel, compute_s) = case(gpu_mtbf_h);
            let p = Percentiles::of(&wall_clock_samples_s(&spec, &rel, compute_s, 1, DEFAULT_RUNS).expect("drawn"))
                .expect("non-empty");
            (p.p90_s - p.p10_s, (p.p90_s - p.p10_s) / p.p50_s)
        };
        let (rare, rare_rel) = spread(200_000.0);
        let (some, some_rel) = spread(20_000.0);
        let (many, many_rel) = spread(2_000.0);
        assert!(rare < some && some < many, "{rare} {some} {many}");
        assert!(
            rare_rel < some_rel && some_rel < many_rel,
            "{rare_rel} {some_rel} {many_rel}"
        );
    }

    #[test]
    fn no_failures_is_deterministic_and_huge_counts_are_not_drawn() {
        let spec = ReliabilitySpec {
            interruptions_per_gpu_h: 1e-30,
            ..ReliabilitySpec::llama3()
        };
        let rel = evaluate(&spec, 8, 1, 7e9, 1.0);
        let s = wall_clock_samples_s(&spec, &rel, 3600.0, 1, 10).expect("drawn");
        let want = analytic_mean_s(&rel, 3600.0);
        assert!(s.iter().all(|&x| (x / want - 1.0).abs() < 1e-9), "{s:?} vs {want}");
        let (spec, rel, _) = case(2000.0);
        assert!(wall_clock_samples_s(&spec, &rel, 1e12, 1, 10).is_none());
        assert!(wall_clock_samples_s(&spec, &rel, f64::INFINITY, 1, 10).is_none());
    }

    #[test]
    fn percentile_interpolates() {
        let p = Percentiles::of(&[4.0, 1.0, 3.0, 2.0, 5.0]).expect("non-empty");
        assert_eq!(
            p,
            Percentiles {
                p10_s: 1.4,
                p50_s: 3.0,
                p90_s: 4.6
            }
        );
        assert_eq!(Percentiles::of(&[]), None);
    }
}
