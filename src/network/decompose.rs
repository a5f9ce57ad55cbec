//! Collective algorithms decomposed into phases: owns [`Phase`] and the decomposition of each
//! reduction algorithm (the one ring model, [`ring`], and tree, NVLS, hierarchical,
//! halving-doubling, torus ring) into bytes per link tier and hops. The all-to-alls are in
//! [`super::all_to_all`]; choosing and checking an algorithm is [`super::algorithm`]'s.
//!
//! Notation: `S` the message (nccl-tests' size: all-reduce input, all-gather output,
//! reduce-scatter input, all-to-all send buffer), `n` ranks, `g` ranks per scale-up domain
//! ("unit"), `m = n/g` units. Per rank and direction:
//!
//! | algorithm | ops | scale-up bytes | NIC bytes | hops (critical path) |
//! |---|---|---|---|---|
//! | `ring` | AR, RS, AG | `k S (g-1)/g` | `k S / g` | `k'(n-1)`, mean hop |
//! | `tree` (double binary tree) | AR | `2 S (g-1)/g` (chain) | `2 S (m-1)/m / g` | `2((g-1) + ceil(log2 m))` |
//! | `nvls` (NVLink SHARP; NVLSTree across units) | AR | `S (g+1)/g` on the switch | `2 S (m-1)/m / g` | `2 + 2 ceil(log2 m)` |
//! | `hierarchical` (RS in unit, AR/RS/AG across, AG in unit) | AR, RS, AG | `k S (g-1)/g` | `k S (m-1)/m / g` | `k'(g-1) + k'(m-1)`, 3 sequential phases |
//! | `halving_doubling` (Rabenseifner / recursive doubling) | AR, RS, AG | step `i` moves `S/2^(i+1)` to rank `r xor n/2^(i+1)` | (same, steps across units) | `k' log2 n`, one phase per step |
//!
//! with `k = 2(n-1)/n` (AR) or `(n-1)/n` (RS, AG), `k' = 2` (AR) or 1. On a torus
//! (`topology.torus`) `ring` is the bidirectional multi-dimensional ring: reduce-scatter along
//! each dimension in turn on a shrinking buffer, then all-gather back; dimension `i` of size
//! `k_i` moves `S_i (k_i-1)/k_i` over its two links in `k_i - 1` hops, `S_1 = S`,
//! `S_(i+1) = S_i / k_i`.
//!
//! NIC bytes are split between leaf, spine and core by the fraction of the pattern's
//! unit-to-unit edges that cross them ([`Fabric`]).
//!
//! NVLS: each rank reads its `1/g` shard reduced by the switch from every GPU (`multimem.ld_reduce`:
//! every GPU sends `S` in all) and multicasts the result (`multimem.st`: `S/g` out, `S` in), so
//! the wire carries `S (g+1)/g` per direction, not the ring's `2 S (g-1)/g`. With one
//! calibrated wire efficiency this reproduces NVIDIA's 5- to 8-GPU H100 figures (nccl#1455).

use super::group::{ring_bytes_per_rank, ring_steps, CollectiveKind, GroupLayout};
use super::topology::{Crossing, Fabric, Tier};

/// One sequential phase: loads that move concurrently, then its hop latency.
#[derive(Clone, Debug, PartialEq)]
pub struct Phase {
    /// Bytes each rank sends per tier in this phase.
    pub loads: Vec<(Tier, f64)>,
    /// Hops on the critical path of this phase.
    pub steps: u32,
    /// Latency term of this phase, seconds.
    pub latency_s: f64,
    /// Whether the phase is a pipeline of chunks (pays the chunk fill when chunking).
    pub pipelined: bool,
}

/// A phase with its zero loads dropped.
pub(crate) fn phase(loads: Vec<(Tier, f64)>, steps: u32, latency_s: f64, pipelined: bool) -> Phase {
    Phase {
        loads: loads.into_iter().filter(|(_, b)| *b > 0.0).collect(),
        steps,
        latency_s,
        pipelined,
    }
}

/// Ranks per unit `g` and units `m` of a group on this fabric (`members_per_node` read as
/// members per scale-up domain).
pub(crate) fn units(layout: GroupLayout, f: &Fabric) -> (u32, u32) {
    let n = layout.size.max(1);
    let g = layout.members_per_node.clamp(1, n).min(f.unit_size.max(1)).max(1);
    (g, n.div_ceil(g))
}

pub(crate) fn ceil_log2(x: u32) -> u32 {
    if x <= 1 {
        0
    } else {
        32 - (x - 1).leading_zeros()
    }
}

/// The widest tier among `loads` that carries bytes.
pub(crate) fn top_tier(loads: &[(Tier, f64)]) -> Tier {
    let order = [
        Tier::Core,
        Tier::Spine,
        Tier::Leaf,
        Tier::Nvls,
        Tier::ScaleUp,
        Tier::Torus,
    ];
    order
        .into_iter()
        .find(|t| loads.iter().any(|(x, b)| x == t && *b > 0.0))
        .unwrap_or(Tier::ScaleUp)
}

/// NCCL's ring over all channels: the one ring model, of both the training simulation and
/// `trainsim collective`.
///
/// Each rank sends `k S` to its ring successor. NCCL's channels rotate which member of a unit
/// owns the unit's one cross-unit ring edge, so each rank's NIC carries `k S / g` and its
/// scale-up port `k S (g-1)/g`; inside one unit everything goes over the scale-up port. The
/// NIC bytes are split by the ring's edge crossings ([`Fabric::ring_crossing`]; all leaf when
/// the fabric above the leaf is transparent, [`Fabric::above_leaf_is_transparent`]). Latency:
/// one hop per step, `steps (out + (g-1) up) / g`, averaged over the hop kinds of the ring.
/// On an idle network this is the textbook ring time `k S / B + steps x latency`.
pub fn ring(kind: CollectiveKind, layout: GroupLayout, size_bytes: f64, f: &Fabric) -> Phase {
    let n = layout.size;
    let (g, m) = units(layout, f);
    let per_rank = ring_bytes_per_rank(kind, n, size_bytes);
    let steps = ring_steps(kind, n);
    if m <= 1 {
        return phase(
            vec![(Tier::ScaleUp, per_rank)],
            steps,
            steps as f64 * f.up_latency_s,
            true,
        );
    }
    let gf = g as f64;
    let x = if f.above_leaf_is_transparent() {
        Crossing::default()
    } else {
        f.ring_crossing(m)
    };
    let mut loads = x.split(per_rank / gf);
    loads.push((Tier::ScaleUp, per_rank * (gf - 1.0) / gf));
    let latency_s = steps as f64 * (f.out_hop_s(x) + (gf - 1.0) * f.up_latency_s) / gf;
    phase(loads, steps, latency_s, true)
}

/// NCCL's double binary tree across units, a chain inside each (all-reduce).
pub(crate) fn tree(g: u32, m: u32, sf: f64, f: &Fabric) -> Phase {
    let x = f.tree_crossing(m);
    let mut loads = vec![(Tier::ScaleUp, 2.0 * sf * (g - 1) as f64 / g as f64)];
    loads.extend(x.split(2.0 * sf * (m - 1) as f64 / m as f64 / g as f64));
    let depth = ceil_log2(m);
    let steps = 2 * ((g - 1) + depth);
    let lat = 2.0 * ((g - 1) as f64 * f.up_latency_s + depth as f64 * f.out_hop_s(x));
    phase(loads, steps, lat, true)
}

/// NVLink SHARP inside units, a tree across them (all-reduce; module docs).
pub(crate) fn nvls(g: u32, m: u32, sf: f64, f: &Fabric) -> Phase {
    let x = f.tree_crossing(m);
    let mut loads = vec![(Tier::Nvls, sf * (g + 1) as f64 / g as f64)];
    loads.extend(x.split(2.0 * sf * (m - 1) as f64 / m as f64 / g as f64));
    let depth = ceil_log2(m);
    let lat = 2.0 * f.up_latency_s + 2.0 * depth as f64 * f.out_hop_s(x);
    phase(loads, 2 + 2 * depth, lat, true)
}

/// CollNet (SHARP): a reduce-scatter to the unit's NIC heads and an all-gather back over
/// the scale-up port (all-reduce), each GPU's NIC sending its `S/g` shard up the switch tree
/// and receiving the reduced shard; all-gather multicasts, a GPU's NIC receiving the other
/// units' `S (m-1)/m / g`.
pub(crate) fn collnet(kind: CollectiveKind, g: u32, m: u32, sf: f64, f: &Fabric) -> Phase {
    let (gf, mf) = (g as f64, m as f64);
    let x = f.tree_crossing(m);
    let (up, nic) = if kind == CollectiveKind::AllReduce {
        (2.0 * sf * (gf - 1.0) / gf, sf / gf)
    } else {
        (sf * (gf - 1.0) / gf, sf * (mf - 1.0) / mf / gf)
    };
    let mut loads = vec![(Tier::ScaleUp, up)];
    loads.extend(x.split(nic));
    let lat = 2.0 * f.up_latency_s + f.out_hop_s(x);
    phase(loads, 3, lat, true)
}

/// Reduce-scatter inside units, the collective across units, all-gather inside units.
pub(crate) fn hierarchical(kind: CollectiveKind, g: u32, m: u32, sf: f64, f: &Fabric) -> Vec<Phase> {
    let (gf, mf) = (g as f64, m as f64);
    let intra = |bytes: f64| {
        phase(
            vec![(Tier::ScaleUp, bytes * (gf - 1.0) / gf)],
            g - 1,
            (g - 1) as f64 * f.up_latency_s,
            true,
        )
    };
    let x = f.ring_crossing(m);
    let inter = |k: f64, steps: u32| {
        phase(
            x.split(k * sf / gf * (mf - 1.0) / mf),
            steps,
            steps as f64 * f.out_hop_s(x),
            true,
        )
    };
    let mut out = Vec::new();
    match kind {
        CollectiveKind::AllReduce => {
            out.push(intra(sf));
            out.push(inter(2.0, 2 * (m - 1)));
            out.push(intra(sf));
        }
        CollectiveKind::ReduceScatter => {
            out.push(intra(sf));
            out.push(inter(1.0, m - 1));
        }
        _ => {
            out.push(inter(1.0, m - 1));
            out.push(intra(sf));
        }
    }
    out.retain(|p| p.steps > 0);
    out
}

/// Recursive halving (reduce-scatter) and doubling (all-gather): step `i` exchanges
/// `S/2^(i+1)` with the rank at distance `n/2^(i+1)`; each step is charged at the widest
/// tier any pair of that step crosses.
pub(crate) fn halving_doubling(kind: CollectiveKind, n: u32, sf: f64, f: &Fabric) -> Vec<Phase> {
    let log = n.trailing_zeros();
    let step = |i: u32| {
        let d = (n >> (i + 1)) as u64;
        let tier = (0..n as u64)
            .map(|r| f.tier_between(r, r ^ d))
            .max_by_key(|t| match t {
                Tier::Core => 3,
                Tier::Spine => 2,
                Tier::Leaf => 1,
                _ => 0,
            })
            .unwrap_or(Tier::ScaleUp);
        phase(
            vec![(tier, sf / (1u64 << (i + 1)) as f64)],
            1,
            f.hop_latency_s(tier),
            false,
        )
    };
    let halving: Vec<Phase> = (0..log).map(step).collect();
    let doubling: Vec<Phase> = halving.iter().rev().cloned().collect();
    match kind {
        CollectiveKind::AllReduce => halving.into_iter().chain(doubling).collect(),
        CollectiveKind::ReduceScatter => halving,
        _ => doubling,
    }
}

/// The bidirectional multi-dimensional ring of a torus (module docs); errors when the
/// collective does not span the whole torus, or is an all-to-all.
pub(crate) fn torus_ring(kind: CollectiveKind, n: u32, sf: f64, f: &Fabric) -> Result<Vec<Phase>, String> {
    let prod: u64 = f.torus.iter().map(|&k| k as u64).product();
    if prod != n as u64 {
        return Err(format!(
            "torus {} holds {prod} chips but the collective has {n} ranks: a torus collective spans the whole torus",
            f.torus.iter().map(|k| k.to_string()).collect::<Vec<_>>().join("x")
        ));
    }
    if kind == CollectiveKind::AllToAll {
        return Err("all_to_all is not modelled on a torus".into());
    }
    let mut rs = Vec::new();
    let mut s = sf;
    for &k in &f.torus {
        if k > 1 {
            let kf = k as f64;
            rs.push(phase(
                vec![(Tier::Torus, s * (kf - 1.0) / kf)],
                k - 1,
                (k - 1) as f64 * f.up_latency_s,
                true,
            ));
        }
        s /= k.max(1) as f64;
    }
    let ag: Vec<Phase> = rs.iter().rev().cloned().collect();
    Ok(match kind {
        CollectiveKind::AllReduce => rs.into_iter().chain(ag).collect(),
        CollectiveKind::ReduceScatter => rs,
        _ => ag,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::hardware::presets::test_cluster;

    fn layout(size: u32, members_per_node: u32) -> GroupLayout {
        GroupLayout { size, members_per_node }
    }

    fn tier(p: &Phase, t: Tier) -> f64 {
        p.loads.iter().filter(|(x, _)| *x == t).map(|(_, b)| b).sum()
    }

    #[test]
    fn cross_node_ring_splits_bytes_between_nic_and_nvlink_and_conserves_them() {
        let c = test_cluster(64, 8);
        let f = Fabric::new(&c);
        let s = 1e9;
        let p = ring(CollectiveKind::AllReduce, layout(64, 8), s, &f);
        let total: f64 = p.loads.iter().map(|(_, b)| b).sum();
        assert!((total - ring_bytes_per_rank(CollectiveKind::AllReduce, 64, s)).abs() < 1e-3);
        assert_eq!(p.loads[0].0, Tier::Leaf);
        assert!((p.loads[0].1 - total / 8.0).abs() < 1e-3);
        assert_eq!(p.steps, 126);
        let want = 126.0 * (4e-6 + 7.0 * 1.5e-6) / 8.0;
        assert!((p.latency_s - want).abs() < 1e-15);
        // one member per node: everything over the NIC
        let p = ring(CollectiveKind::AllReduce, layout(16, 1), s, &f);
        assert_eq!(p.loads.len(), 1);
        assert_eq!(p.loads[0].0, Tier::Leaf);
        // inside one node: everything over NVLink
        let p = ring(CollectiveKind::AllGather, layout(8, 8), s, &f);
        assert_eq!(p.loads, vec![(Tier::ScaleUp, 7.0 / 8.0 * s)]);
    }

    /// Of a ring over `N` nodes on `L > 1` leaves, `L` edges cross the spine: a fraction
    /// `L/N` of its NIC bytes (docs of [`super::super::collective`]), and none within a leaf
    /// or on a transparent (non-blocking, no switch latency) fabric.
    #[test]
    fn spine_carries_the_leaf_crossing_fraction_and_bytes_are_conserved() {
        let mut c = test_cluster(1024, 8);
        c.oversubscription = 4.0;
        c.nodes_per_leaf = 16;
        let s = 1e9;
        let total = ring_bytes_per_rank(CollectiveKind::AllReduce, 128, s);
        // 128 ranks, one per node, 128 nodes on 8 leaves: 8 of 128 edges cross the spine
        let p = ring(CollectiveKind::AllReduce, layout(128, 1), s, &Fabric::new(&c));
        let sum: f64 = p.loads.iter().map(|(_, b)| b).sum();
        assert!((sum - total).abs() < 1e-3, "bytes conserved");
        assert!((tier(&p, Tier::Spine) - total * 8.0 / 128.0).abs() < 1e-3);
        for (size, over) in [(16, 4.0), (128, 1.0)] {
            c.oversubscription = over;
            let p = ring(CollectiveKind::AllReduce, layout(size, 1), s, &Fabric::new(&c));
            assert_eq!(tier(&p, Tier::Spine), 0.0);
        }
        // non-blocking but with a switch latency: the crossing edges pay it
        c.topology.switch_latency_us = 1.0;
        let p = ring(CollectiveKind::AllReduce, layout(128, 1), s, &Fabric::new(&c));
        assert!((tier(&p, Tier::Spine) - total * 8.0 / 128.0).abs() < 1e-3);
        // two nodes on two leaves: both edges cross
        c.topology.switch_latency_us = 0.0;
        c.oversubscription = 2.0;
        c.nodes_per_leaf = 1;
        let p = ring(CollectiveKind::AllReduce, layout(16, 8), s, &Fabric::new(&c));
        assert_eq!(tier(&p, Tier::Leaf), 0.0);
        assert!(tier(&p, Tier::Spine) > 0.0);
    }
}
