//! Context parallelism (CP): the sequence of every micro-batch split over `cp` ranks, and
//! how attention gets the keys and values of the other ranks' tokens ([`CpCommType`]).
//!
//! Owns the communication variants and the causal chunk layout: which tokens each CP rank
//! holds and how many (query, key) pairs of the causal mask it computes at each ring step
//! ([`ring_step_pairs`], [`rank_pairs`]). What the work costs and what is sent is the CP
//! layer pass (`workload::passes::cp`).
//!
//! **Load balancing** (Megatron-Core, Llama 3): the sequence is cut into `2 cp` chunks and
//! rank `i` holds chunks `i` and `2 cp - 1 - i`, so every rank computes the same share of
//! the causal triangle, `s²/(2 cp)` pairs. Without it rank `i` holds the `i`-th contiguous
//! `s/cp` tokens: the last rank attends to the whole sequence, `(cp - ½) (s/cp)²` pairs,
//! and rank 0 only to itself, `½ (s/cp)²`; the worst rank does `2 - 1/cp` times the
//! balanced share.

use serde::{Deserialize, Serialize};

/// How attention exchanges keys and values across the CP group (Megatron-Core
/// `--cp-comm-type`).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub enum CpCommType {
    /// Ring attention: K/V blocks travel around the CP ring as `cp - 1` send/receive steps,
    /// each overlapped with the attention of the block already there; the backward passes
    /// K/V and the partial dK/dV the same way.
    #[default]
    #[serde(rename = "p2p")]
    P2p,
    /// Llama 3: all-gather K and V once per layer, local attention, reduce-scatter dK/dV
    /// in the backward (the all-gather is not overlapped).
    #[serde(rename = "all_gather")]
    AllGather,
    /// DeepSpeed-Ulysses: all-to-all from sequence-sharded to head-sharded Q, K, V, attention
    /// over the whole sequence for `heads / cp` heads, all-to-all of the output back.
    #[serde(rename = "a2a")]
    A2a,
    /// Hierarchical (USP, Megatron `hierarchical_context_parallel_sizes`): all-to-all over
    /// `cp_a2a_size` adjacent ranks, ring attention over the `cp / cp_a2a_size` groups.
    #[serde(rename = "a2a+p2p")]
    A2aP2p,
}

impl CpCommType {
    /// Names accepted in scenario files.
    pub const NAMES: &'static [&'static str] = &["p2p", "all_gather", "a2a", "a2a+p2p"];

    /// Every variant, in [`CpCommType::NAMES`] order.
    pub const ALL: [CpCommType; 4] = [
        CpCommType::P2p,
        CpCommType::AllGather,
        CpCommType::A2a,
        CpCommType::A2aP2p,
    ];

    /// The scenario name.
    pub fn name(self) -> &'static str {
        Self::NAMES[self as usize]
    }

    /// Whether this is the default ([`CpCommType::P2p`]); serde skips it.
    pub fn is_default(&self) -> bool {
        *self == CpCommType::P2p
    }
}

/// The chunks (indices on a grid of `2 cp` equal chunks of the sequence) CP rank `rank`
/// holds: `[i, 2cp-1-i]` with load balancing, `[2i, 2i+1]` (one contiguous `s/cp`) without.
pub fn rank_chunks(cp: u32, rank: u32, load_balance: bool) -> [u32; 2] {
    if load_balance {
        [rank, 2 * cp - 1 - rank]
    } else {
        [2 * rank, 2 * rank + 1]
    }
}

/// Causal (query, key) pairs between query chunk `q` and key chunk `k` of `c` tokens each:
/// all `c²` when the keys precede, `c²/2` on the diagonal (the triangle, as FLOP counts take
/// it), none when they follow.
fn chunk_pairs(q: u32, k: u32, c: f64) -> f64 {
    match k.cmp(&q) {
        std::cmp::Ordering::Less => c * c,
        std::cmp::Ordering::Equal => c * c / 2.0,
        std::cmp::Ordering::Greater => 0.0,
    }
}

/// Causal pairs CP rank `rank` computes at ring step `step` (keys and values of rank
/// `rank - step` mod `cp`, step 0 being its own), for a sequence of `seq` tokens.
pub fn ring_step_pairs(seq: f64, cp: u32, rank: u32, step: u32, load_balance: bool) -> f64 {
    let c = seq / (2 * cp) as f64;
    let from = (rank + cp - step % cp) % cp;
    let qs = rank_chunks(cp, rank, load_balance);
    let ks = rank_chunks(cp, from, load_balance);
    qs.iter()
        .flat_map(|&q| ks.iter().map(move |&k| chunk_pairs(q, k, c)))
        .sum()
}

/// Causal pairs CP rank `rank` computes in all: its queries against the whole sequence.
pub fn rank_pairs(seq: f64, cp: u32, rank: u32, load_balance: bool) -> f64 {
    (0..cp).map(|j| ring_step_pairs(seq, cp, rank, j, load_balance)).sum()
}

/// The CP rank that computes the most pairs (the last one without load balancing; all are
/// equal with it).
pub fn busiest_rank(cp: u32, load_balance: bool) -> u32 {
    if load_balance {
        0
    } else {
        cp.saturating_sub(1)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_round_trip_through_serde() {
        for t in CpCommType::ALL {
            let json = serde_json::to_string(&t).unwrap();
            assert_eq!(json, format!("\"{}\"", t.name()));
        }
    }

    /// Every rank's pairs sum to the causal triangle `s²/2`, with or without balancing.
    #[test]
    fn ranks_share_the_causal_triangle() {
        let s = 8192.0;
        for cp in [1, 2, 4, 8, 32] {
            for lb in [true, false] {
                let total: f64 = (0..cp).map(|r| rank_pairs(s, cp, r, lb)).sum();
                assert!((total / (s * s / 2.0) - 1.0).abs() < 1e-12, "cp {cp} lb {lb}");
            }
        }
    }

    /// Load balancing gives every rank `s²/(2cp)` pairs and the same work at every ring
    /// step; without it the last rank does `(cp - ½)(s/cp)²`, i.e. `2 - 1/cp` times as much.
    #[test]
    fn load_balancing_halves_the_worst_rank() {
        let s = 131072.0;
        for cp in [2u32, 4, 8, 16] {
            let balanced = s * s / (2.0 * cp as f64);
            for r in 0..cp {
                assert!((rank_pairs(s, cp, r, true) / balanced - 1.0).abs() < 1e-12);
                for j in 0..cp {
                    let step = ring_step_pairs(s, cp, r, j, true);
                    assert!((step * cp as f64 / balanced - 1.0).abs() < 1e-12);
                }
            }
            let l = s / cp as f64;
            let worst = (0..cp).map(|r| rank_pairs(s, cp, r, false)).fold(0.0, f64::max);
            assert_eq!(worst, rank_pairs(s, cp, busiest_rank(cp, false), false));
            assert!((worst / ((cp as f64 - 0.5) * l * l) - 1.0).abs() < 1e-12);
            let ratio = worst / balanced;
            assert!((ratio - (2.0 - 1.0 / cp as f64)).abs() < 1e-12, "cp {cp}: {ratio}");
        }
    }
}
