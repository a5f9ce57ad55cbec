//! How many tokens and steps a model needs to reach a loss: the Chinchilla parametric loss
//! and the critical batch size.
//!
//! Losses are in nats per token (natural log), as in the papers the constants come from.
//! `N` = parameters, `D` = training tokens, `C` = training FLOPs, `B` = global batch in tokens.
//!
//! # Formulas and sources
//!
//! * **Parametric loss** (Hoffmann et al. 2022, "Training Compute-Optimal Large Language
//!   Models", arXiv:2203.15556, Eq. 2 and Sec. 3.3, Approach 3):
//!   `L(N, D) = E + A / N^alpha + B / D^beta`.
//!   Two constant sets ([`LossLaw::HOFFMANN2022`], [`LossLaw::BESIROGLU2024`]):
//!   - `hoffmann2022`: E 1.69, A 406.4, B 410.7, alpha 0.34, beta 0.28 (the rounded values
//!     printed in the paper);
//!   - `besiroglu2024`: E 1.8172, A 482.01, B 2085.43, alpha 0.3478, beta 0.3658 (Besiroglu,
//!     Erdil, Barnett, You 2024, "Chinchilla Scaling: A replication attempt",
//!     arXiv:2404.10102, refit of Approach 3 on data digitised from Hoffmann Fig. 4). The
//!     default: the rounded Hoffmann values are known to be biased (too small an
//!     exponent ratio; see the tests against Hoffmann Table 3).
//! * **Tokens for a loss** at `N` in the small-batch limit (invert the law):
//!   `D_min(L) = (B / (L - E - A / N^alpha))^(1/beta)`, defined only above the floor
//!   `E + A / N^alpha` that no amount of data reaches at this `N`.
//! * **Compute-optimal allocation** under `C = 6 N D` (Hoffmann Eq. 4 / Appendix D.2):
//!   `N_opt(C) = G (C/6)^a`, `D_opt(C) = G^-1 (C/6)^b`, with
//!   `G = (alpha A / (beta B))^(1/(alpha+beta))`, `a = beta/(alpha+beta)`, `b = alpha/(alpha+beta)`.
//!   This is the default [`Allocation::LossLaw`]. [`Allocation::Approach1`] instead uses
//!   Hoffmann's Approach 1 power law (Sec. 3.1, Table 2: `N_opt ~ C^a`, `a = 0.50`),
//!   anchored at the Approach-1 optimum the paper states for `1e21` FLOPs (Appendix D.4:
//!   2.86B parameters): `N_opt(C) = 2.86e9 (C / 1e21)^0.50`, `D_opt = C / (6 N_opt)`.
//!   Hoffmann Table 3 is this rule's projection (Approach 1); the Approach 3 laws drift
//!   from it because their exponent `a` differs (0.46 in Hoffmann's Table 2, 0.45 from the rounded
//!   constants, 0.513 for Besiroglu's refit; see the tests against Table 3). The loss itself always comes from
//!   the loss law.
//! * **Effective parameters of a mixture-of-experts model** ([`effective_params`]): the
//!   laws above were fitted on dense models, where active = total parameters. Clark et al.
//!   2022, "Unified Scaling Laws for Routed Language Models", arXiv:2202.01169, derive a
//!   dense-equivalent "effective parameter count" for routed models: it equals the active
//!   count for one expert and grows with the expert count, so an MoE's `N` lies above its
//!   active count and the total count is an optimistic bound. Rules ([`EffectiveParamsRule`]):
//!   `active` (default; `N` = active parameters, the convention of Ludziejewski et al. 2025,
//!   "Joint MoE Scaling Laws", arXiv:2502.05172, whose loss takes `N_act` and reduces to the
//!   Chinchilla form for one expert; pessimistic for an MoE), `total` (optimistic upper
//!   bound) and `geometric` (`sqrt(active * total)`, a practitioners' rule of thumb for the
//!   dense-equivalent size, e.g. A. Jiang (Mistral AI), Stanford CS25 lecture on Mixtral,
//!   2024, given there as rough and only for comparable training data; not a fitted law).
//! * **Critical batch** (Kaplan et al. 2020, "Scaling Laws for Neural Language Models",
//!   arXiv:2001.08361, Eq. 5.4 and Table 5): `B_crit(L) = B* / L^(1/alpha_B)`, with
//!   `B*` = 2e8 tokens (the paper's 2.1e8, quoted as about 2e8 in its introduction) and
//!   `alpha_B = 0.21`. The Kaplan constants were fitted on WebText2 losses; applying them
//!   to Chinchilla losses is an approximation (both are nats per token of a BPE tokenizer).
//! * **Steps and tokens at a batch** (McCandlish et al. 2018, "An Empirical Model of
//!   Large-Batch Training", arXiv:1812.06162, Eq. 2.11; Kaplan Eq. 5.2-5.3):
//!   `(S/S_min - 1)(E/E_min - 1) = 1`, i.e. `S = S_min (1 + B_crit/B)` steps and
//!   `E = E_min (1 + B/B_crit)` tokens, with `E_min = B_crit S_min`. We take the Chinchilla
//!   `D_min(L)` as `E_min` (Chinchilla batches were small against `B_crit`), so at a global
//!   batch of `B` tokens a loss `L` needs `D = D_min(L) (1 + B / B_crit(L))` tokens and
//!   `D / B = S_min (1 + B_crit / B)` steps. Above `B_crit` more data parallelism stops
//!   shortening training: the steps approach `S_min = D_min / B_crit`.
//! * **Loss after `D` tokens at batch `B`**: the smallest `L` with
//!   `L = L(N, D / (1 + B / B_crit(L)))`, found by fixed-point iteration from
//!   `L(N, D)`. Early in training (high loss, tiny `B_crit`) the iteration can have no
//!   solution: the critical-batch law does not hold there and [`loss_after_tokens`]
//!   returns `None`.

use serde::{Deserialize, Serialize};

/// Constants of `L(N, D) = E + A/N^alpha + B/D^beta` (loss in nats per token).
#[derive(Clone, Copy, Debug, PartialEq, Serialize, Deserialize)]
pub struct LossLaw {
    /// Irreducible loss E, nats.
    pub e: f64,
    /// Parameter term scale A.
    pub a: f64,
    /// Data term scale B.
    pub b: f64,
    /// Parameter exponent alpha.
    pub alpha: f64,
    /// Data exponent beta.
    pub beta: f64,
}

impl LossLaw {
    /// Hoffmann et al. 2022, Approach 3, rounded values as printed.
    pub const HOFFMANN2022: LossLaw = LossLaw {
        e: 1.69,
        a: 406.4,
        b: 410.7,
        alpha: 0.34,
        beta: 0.28,
    };
    /// Besiroglu et al. 2024 replication of Approach 3.
    pub const BESIROGLU2024: LossLaw = LossLaw {
        e: 1.8172,
        a: 482.01,
        b: 2085.43,
        alpha: 0.3478,
        beta: 0.3658,
    };
    /// Names accepted in `[target] loss_law`, in the order of [`LossLaw::PRESETS`].
    pub const NAMES: &'static [&'static str] = &["hoffmann2022", "besiroglu2024"];
    /// The constant sets named by [`LossLaw::NAMES`].
    pub const PRESETS: [LossLaw; 2] = [LossLaw::HOFFMANN2022, LossLaw::BESIROGLU2024];

    /// `L(N, D)`, nats.
    pub fn loss(&self, params: f64, tokens: f64) -> f64 {
        self.e + self.a / params.powf(self.alpha) + self.b / tokens.powf(self.beta)
    }

    /// `E + A / N^alpha`: the loss at infinite data for this model size, nats.
    pub fn floor(&self, params: f64) -> f64 {
        self.e + self.a / params.powf(self.alpha)
    }

    /// `D_min(L)`: tokens to reach `loss` at small batch, or `None` when `loss` is at or
    /// below [`LossLaw::floor`].
    pub fn tokens_for_loss(&self, params: f64, loss: f64) -> Option<f64> {
        let excess = loss - self.floor(params);
        (excess > 0.0).then(|| (self.b / excess).powf(1.0 / self.beta))
    }

    /// Compute-optimal `(N_opt, D_opt)` for `c_flops` training FLOPs with `C = 6 N D`.
    pub fn compute_optimal(&self, c_flops: f64) -> (f64, f64) {
        let s = self.alpha + self.beta;
        let g = (self.alpha * self.a / (self.beta * self.b)).powf(1.0 / s);
        let x = c_flops / 6.0;
        (g * x.powf(self.beta / s), x.powf(self.alpha / s) / g)
    }
}

/// How a FLOP budget is split into parameters and tokens (`C = 6 N D` in both rules).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Allocation {
    /// The iso-FLOP minimum of the loss law in use ([`LossLaw::compute_optimal`]).
    #[default]
    LossLaw,
    /// Hoffmann et al. 2022 Approach 1: `N_opt = 2.86e9 (C / 1e21)^0.50`, the rule behind
    /// their Table 3 (see [`Allocation::APPROACH1_EXPONENT`]).
    Approach1,
}

impl Allocation {
    /// Serde names, in the order of [`Allocation::ALL`].
    pub const NAMES: &'static [&'static str] = &["loss_law", "approach1"];
    /// The rules named by [`Allocation::NAMES`].
    pub const ALL: [Allocation; 2] = [Allocation::LossLaw, Allocation::Approach1];
    /// Approach 1 exponent `a` of `N_opt ~ C^a`: Hoffmann et al. 2022, Table 2, row
    /// "1. Minimum over training curves": 0.50 (10th-90th percentile 0.488-0.502); `b` =
    /// 0.50 too, consistent with `C = 6 N D`.
    pub const APPROACH1_EXPONENT: f64 = 0.50;
    /// Approach 1 anchor `(C, N_opt)`: Hoffmann et al. 2022, Appendix D.4 ("From our
    /// approach 1, we estimate a 2.86 billion parameter model should be optimal" for
    /// `1e21` FLOPs). Not a row of Table 3.
    pub const APPROACH1_ANCHOR: (f64, f64) = (1e21, 2.86e9);

    /// Compute-optimal `(N_opt, D_opt)` for `c_flops` training FLOPs; `law` is used only by
    /// [`Allocation::LossLaw`].
    pub fn compute_optimal(self, law: &LossLaw, c_flops: f64) -> (f64, f64) {
        match self {
            Allocation::LossLaw => law.compute_optimal(c_flops),
            Allocation::Approach1 => {
                let (c0, n0) = Self::APPROACH1_ANCHOR;
                let n = n0 * (c_flops / c0).powf(Self::APPROACH1_EXPONENT);
                (n, c_flops / (6.0 * n))
            }
        }
    }
}

/// Which parameter count of a mixture-of-experts model stands for `N` in the loss law
/// (see the module doc for the sources).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum EffectiveParamsRule {
    /// `N` = active parameters per token (pessimistic for an MoE).
    #[default]
    Active,
    /// `N` = all parameters, every expert counted (optimistic).
    Total,
    /// `N = sqrt(active * total)`, the geometric mean (rule of thumb).
    Geometric,
}

impl EffectiveParamsRule {
    /// Serde names, in the order of [`EffectiveParamsRule::ALL`].
    pub const NAMES: &'static [&'static str] = &["active", "total", "geometric"];
    /// The rules named by [`EffectiveParamsRule::NAMES`].
    pub const ALL: [EffectiveParamsRule; 3] = [
        EffectiveParamsRule::Active,
        EffectiveParamsRule::Total,
        EffectiveParamsRule::Geometric,
    ];
}

/// `N` to use in the loss law for a model with `total_params` parameters of which
/// `active_params` are used per token (`0 < active <= total`; equal for a dense model, where
/// every rule gives the same count).
pub fn effective_params(total_params: f64, active_params: f64, rule: EffectiveParamsRule) -> f64 {
    match rule {
        EffectiveParamsRule::Active => active_params,
        EffectiveParamsRule::Total => total_params,
        EffectiveParamsRule::Geometric => (active_params * total_params).sqrt(),
    }
}

/// Kaplan's critical batch `B_crit(L) = B* / L^(1/alpha_B)`.
#[derive(Clone, Copy, Debug, PartialEq, Serialize, Deserialize)]
pub struct CriticalBatch {
    /// `B*`, tokens.
    pub scale_tokens: f64,
    /// `alpha_B`.
    pub exponent: f64,
}

impl CriticalBatch {
    /// Kaplan et al. 2020: `B*` = 2e8 tokens, `alpha_B` = 0.21.
    pub const KAPLAN2020: CriticalBatch = CriticalBatch {
        scale_tokens: 2e8,
        exponent: 0.21,
    };

    /// `B_crit(L)`, tokens.
    pub fn tokens(&self, loss: f64) -> f64 {
        self.scale_tokens / loss.powf(1.0 / self.exponent)
    }
}

/// Tokens to reach `loss` at a global batch of `batch_tokens`: `D_min (1 + B / B_crit)`.
pub fn tokens_to_loss(law: &LossLaw, cb: &CriticalBatch, params: f64, loss: f64, batch_tokens: f64) -> Option<f64> {
    law.tokens_for_loss(params, loss)
        .map(|d_min| d_min * (1.0 + batch_tokens / cb.tokens(loss)))
}

/// Predicted loss after `tokens` at a global batch of `batch_tokens` (see the module doc);
/// `None` where the critical-batch law has no solution (very early in training).
pub fn loss_after_tokens(
    law: &LossLaw,
    cb: &CriticalBatch,
    params: f64,
    tokens: f64,
    batch_tokens: f64,
) -> Option<f64> {
    let f = |l: f64| law.loss(params, tokens / (1.0 + batch_tokens / cb.tokens(l)));
    let mut l = law.loss(params, tokens);
    for _ in 0..500 {
        let next = f(l);
        if !next.is_finite() || next > 20.0 {
            return None;
        }
        if (next - l).abs() <= 1e-12 * l {
            return Some(next);
        }
        l = next;
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;

    fn close(a: f64, b: f64, rel: f64) -> bool {
        (a - b).abs() <= rel * b.abs()
    }

    #[test]
    fn tokens_for_loss_inverts_the_law() {
        let law = LossLaw::BESIROGLU2024;
        let n = 70e9;
        let d = 1.4e12;
        let l = law.loss(n, d);
        assert!(close(law.tokens_for_loss(n, l).unwrap(), d, 1e-9));
        assert!(law.tokens_for_loss(n, law.floor(n)).is_none());
        assert!(law.tokens_for_loss(n, law.floor(n) - 0.1).is_none());
    }

    #[test]
    fn compute_optimal_is_the_isoflop_minimum() {
        for law in LossLaw::PRESETS {
            let c = 5.76e23;
            let (n, d) = law.compute_optimal(c);
            assert!(close(6.0 * n * d, c, 1e-9));
            let at = |n: f64| law.loss(n, c / (6.0 * n));
            let best = at(n);
            for f in [0.8, 0.9, 0.98, 1.02, 1.1, 1.25] {
                assert!(at(n * f) > best, "{law:?} {f}");
            }
        }
    }

    #[test]
    fn allocation_rules() {
        let law = LossLaw::BESIROGLU2024;
        for c in [1e19, 5.76e23, 1e28] {
            assert_eq!(Allocation::LossLaw.compute_optimal(&law, c), law.compute_optimal(c));
            let (n, d) = Allocation::Approach1.compute_optimal(&law, c);
            assert!(close(6.0 * n * d, c, 1e-12));
            // the law is unused: same split under the other constants
            assert_eq!((n, d), Allocation::Approach1.compute_optimal(&LossLaw::HOFFMANN2022, c));
            // N ~ C^0.5: 4x the FLOPs, 2x the parameters and 2x the tokens
            let (n4, d4) = Allocation::Approach1.compute_optimal(&law, 4.0 * c);
            assert!(close(n4, 2.0 * n, 1e-12) && close(d4, 2.0 * d, 1e-12));
        }
        // Hoffmann Appendix D.4: 2.86B parameters (so 58.3B tokens) at 1e21 FLOPs ...
        let (n, d) = Allocation::Approach1.compute_optimal(&law, 1e21);
        assert!(close(n, 2.86e9, 1e-12) && close(d, 1e21 / (6.0 * 2.86e9), 1e-12));
        // ... and Chinchilla itself (Hoffmann Sec. 4: 70B parameters, 1.4T tokens at the
        // Gopher budget of 5.76e23 FLOPs), which the anchor does not use
        let (n, d) = Allocation::Approach1.compute_optimal(&law, 5.76e23);
        assert!(close(n, 70e9, 0.03) && close(d, 1.4e12, 0.03), "{n:e} {d:e}");
        // serde names
        for (a, name) in Allocation::ALL.iter().zip(Allocation::NAMES) {
            assert_eq!(serde_json::to_string(a).unwrap(), format!("\"{name}\""));
            assert_eq!(serde_json::from_str::<Allocation>(&format!("\"{name}\"")).unwrap(), *a);
        }
        assert_eq!(Allocation::default(), Allocation::LossLaw);
    }

    #[test]
    fn effective_params_rules() {
        use EffectiveParamsRule::*;
        // Mixtral 8x7B (Jiang et al. 2024, arXiv:2401.04088): 46.7B total, 12.9B active
        let (total, active) = (46.7e9, 12.9e9);
        assert_eq!(effective_params(total, active, Active), active);
        assert_eq!(effective_params(total, active, Total), total);
        let g = effective_params(total, active, Geometric);
        assert!(close(g, 24.54e9, 1e-3), "{g:e}");
        assert!(active < g && g < total);
        assert!(close(g * g, total * active, 1e-12));
        // a dense model: every rule gives its parameter count
        for rule in EffectiveParamsRule::ALL {
            assert!(close(effective_params(70e9, 70e9, rule), 70e9, 1e-15));
        }
        assert_eq!(EffectiveParamsRule::default(), Active);
        for (r, name) in EffectiveParamsRule::ALL.iter().zip(EffectiveParamsRule::NAMES) {
            assert_eq!(serde_json::to_string(r).unwrap(), format!("\"{name}\""));
            let back: EffectiveParamsRule = serde_json::from_str(&format!("\"{name}\"")).unwrap();
            assert_eq!(back, *r);
        }
        // a larger effective N lowers the predicted loss at the same tokens
        let law = LossLaw::BESIROGLU2024;
        let at = |rule| law.loss(effective_params(total, active, rule), 1e12);
        assert!(at(Total) < at(Geometric) && at(Geometric) < at(Active));
    }

    #[test]
    fn critical_batch_and_steps_follow_mccandlish() {
        let cb = CriticalBatch::KAPLAN2020;
        // B_crit(2 nats) = 2e8 / 2^(1/0.21)
        assert!(close(cb.tokens(2.0), 2e8 / 2f64.powf(1.0 / 0.21), 1e-12));
        let law = LossLaw::BESIROGLU2024;
        let (n, l) = (7e9, 2.1);
        let d_min = law.tokens_for_loss(n, l).unwrap();
        let bc = cb.tokens(l);
        // at B = B_crit: twice the minimal tokens, twice the minimal steps
        let d = tokens_to_loss(&law, &cb, n, l, bc).unwrap();
        assert!(close(d, 2.0 * d_min, 1e-12));
        assert!(close(d / bc, 2.0 * d_min / bc, 1e-12));
        // (S/S_min - 1)(E/E_min - 1) = 1 at any batch
        for b in [1e5, 1e6, 1e7, 1e8] {
            let e = tokens_to_loss(&law, &cb, n, l, b).unwrap();
            let (s, s_min) = (e / b, d_min / bc);
            assert!(close((s / s_min - 1.0) * (e / d_min - 1.0), 1.0, 1e-9));
        }
    }

    #[test]
    fn loss_after_tokens_inverts_tokens_to_loss() {
        let (law, cb) = (LossLaw::BESIROGLU2024, CriticalBatch::KAPLAN2020);
        let (n, b) = (405e9, 16.8e6);
        for l in [1.95, 2.0, 2.1] {
            let d = tokens_to_loss(&law, &cb, n, l, b).unwrap();
            let back = loss_after_tokens(&law, &cb, n, d, b).unwrap();
            assert!(close(back, l, 1e-9), "{l} -> {d} -> {back}");
        }
        // the batch penalty: a larger batch reaches a higher loss on the same tokens
        let small = loss_after_tokens(&law, &cb, n, 15.6e12, 1e5).unwrap();
        let large = loss_after_tokens(&law, &cb, n, 15.6e12, 1e8).unwrap();
        assert!(large > small && small > law.loss(n, 15.6e12));
    }
}
