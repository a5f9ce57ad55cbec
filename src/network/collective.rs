//! Collectives as flows: which bytes each rank moves over which link class.
//!
//! Algorithm modelled: NCCL's ring, over all channels. For a group of `n` ranks with `g`
//! members per node spread over `n/g` nodes, each rank sends `k * S` bytes to its ring
//! successor, with `k = 2(n-1)/n` for all-reduce and `(n-1)/n` for reduce-scatter and
//! all-gather. NCCL's channels rotate which member of a node owns the node's one
//! cross-node ring edge, so each rank's NIC carries `k*S/g` and its scale-up port
//! `k*S*(g-1)/g`; inside one node everything goes over the scale-up port. The latency is
//! one hop per ring step (`2(n-1)` steps for all-reduce, `n-1` otherwise), averaged over
//! the hop kinds of the ring.
//!
//! On an idle network this gives the textbook ring time `k*S/B + steps * latency`.
//!
//! ## Leaf-spine oversubscription
//!
//! Nodes hang off leaf switches, `P = nodes_per_leaf` consecutive nodes per leaf; leaves
//! meet at the spine, whose capacity per GPU is the NIC's divided by the oversubscription
//! ratio `r`. A group spanning `N` nodes (placed consecutively from a leaf boundary, as
//! Megatron's rank order does) lies on `L = ceil(N/P)` leaves. The ring visits the nodes in
//! order, so of its `N` node-to-node edges exactly `L` join two leaves (`L-1` between
//! consecutive leaves plus the wrap-around edge from the last leaf back to the first) when
//! `L > 1`, and none when `L = 1`. Every node-to-node edge carries the same bytes and
//! NCCL's channels spread them over the node's NICs, so of the `k*S/g` bytes a GPU's NIC
//! sends, on average a fraction `L/N` crosses the spine: `k*S/g * L/N` spine bytes per
//! GPU. Averaging over nodes is what the single representative needs, and it is exact for
//! a leaf's pooled uplinks (ECMP): a leaf's `P*g` GPUs send `P*g * k*S/g * L/N = k*S`
//! (one ring edge, as `N/L = P`) up through `P*g*B/r` of uplink, the same ratio as one GPU
//! sending `k*S/g * L/N` through `B/r`. Those bytes become a flow over the NIC and the spine
//! ([`LinkClass::CrossLeaf`]); the rest of the NIC bytes stay under the leaf. Hence a ring
//! is slowed by the spine only when `r > N/L`, i.e. roughly `r > P`: rings are spine
//! friendly, unlike all-to-all or trees, and the model says so instead of charging every
//! NIC byte to the spine.

use crate::hardware::ClusterSpec;
use serde::{Deserialize, Serialize};

/// Collective operation.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum CollectiveKind {
    /// Sum across ranks, result on every rank.
    AllReduce,
    /// Sum across ranks, each rank keeps 1/n.
    ReduceScatter,
    /// Each rank contributes 1/n, every rank gets all.
    AllGather,
    /// Each rank sends a distinct 1/n of its buffer to every rank (nccl-tests `alltoall`):
    /// `(n-1)/n * S` bytes sent per rank, bus factor `(n-1)/n`.
    AllToAll,
}

impl CollectiveKind {
    /// Names as nccl-tests and `trainsim collective --op` spell them.
    pub const NAMES: &'static [&'static str] = &["all_reduce", "all_gather", "reduce_scatter", "all_to_all"];

    /// The snake_case name (`all_reduce`, ...).
    pub fn name(self) -> &'static str {
        match self {
            CollectiveKind::AllReduce => "all_reduce",
            CollectiveKind::AllGather => "all_gather",
            CollectiveKind::ReduceScatter => "reduce_scatter",
            CollectiveKind::AllToAll => "all_to_all",
        }
    }
}

/// Which port of a GPU a load crosses.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum LinkClass {
    /// NVLink / NVSwitch (scale-up domain).
    ScaleUp,
    /// NIC into the scale-out fabric, staying under one leaf switch.
    ScaleOut,
    /// NIC, then up to the spine and down to another leaf (only with oversubscription > 1;
    /// a non-blocking spine never limits a flow its NIC does not).
    CrossLeaf,
}

/// How a process group lies on the cluster.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct GroupLayout {
    /// Ranks in the group.
    pub size: u32,
    /// Members of the group inside one node.
    pub members_per_node: u32,
}

/// The per-rank cost of one collective.
#[derive(Clone, Debug, PartialEq)]
pub struct CollectiveCost {
    /// Bytes each rank sends per link class.
    pub loads: Vec<(LinkClass, f64)>,
    /// Latency term, seconds.
    pub latency_s: f64,
}

/// Bytes each rank sends in a ring collective of `size_bytes` over `n` ranks.
pub fn ring_bytes_per_rank(kind: CollectiveKind, n: u32, size_bytes: f64) -> f64 {
    if n <= 1 {
        return 0.0;
    }
    let nf = n as f64;
    match kind {
        CollectiveKind::AllReduce => 2.0 * (nf - 1.0) / nf * size_bytes,
        CollectiveKind::ReduceScatter | CollectiveKind::AllGather | CollectiveKind::AllToAll => {
            (nf - 1.0) / nf * size_bytes
        }
    }
}

/// Ring steps (hops on the critical path).
pub fn ring_steps(kind: CollectiveKind, n: u32) -> u32 {
    if n <= 1 {
        return 0;
    }
    match kind {
        CollectiveKind::AllReduce => 2 * (n - 1),
        _ => n - 1,
    }
}

/// Per-rank loads and latency of a ring collective of `size_bytes` (the full buffer; for
/// all-gather the gathered output, for reduce-scatter the input).
///
/// An all-to-all is no ring: it is charged as NCCL runs it, every peer at once
/// ([`crate::network::algorithm::Algorithm::Direct`]), folded onto these link classes.
pub fn ring_cost(kind: CollectiveKind, layout: GroupLayout, size_bytes: f64, cluster: &ClusterSpec) -> CollectiveCost {
    if kind == CollectiveKind::AllToAll {
        return super::algorithm::direct_all_to_all(layout, size_bytes, cluster).to_collective_cost(cluster);
    }
    let n = layout.size;
    let per_rank = ring_bytes_per_rank(kind, n, size_bytes);
    let steps = ring_steps(kind, n) as f64;
    let g = layout.members_per_node.clamp(1, n.max(1)) as f64;
    let up_lat = cluster.scale_up_latency_us * 1e-6;
    let out_lat = cluster.scale_out_latency_us * 1e-6;
    if n <= 1 {
        return CollectiveCost {
            loads: vec![],
            latency_s: 0.0,
        };
    }
    if g as u32 >= n {
        return CollectiveCost {
            loads: vec![(LinkClass::ScaleUp, per_rank)],
            latency_s: steps * up_lat,
        };
    }
    let nic = per_rank / g;
    let spine = nic * spine_fraction(layout, cluster);
    let mut loads = vec![(LinkClass::ScaleOut, nic - spine)];
    if spine > 0.0 {
        loads.push((LinkClass::CrossLeaf, spine));
    }
    if g > 1.0 {
        loads.push((LinkClass::ScaleUp, per_rank * (g - 1.0) / g));
    }
    CollectiveCost {
        loads,
        latency_s: steps * (out_lat + (g - 1.0) * up_lat) / g,
    }
}

/// Fraction of a ring's NIC bytes that cross the spine (see the module docs): `L/N` for a
/// group over `N` nodes on `L > 1` leaves, 0 within one leaf or on a non-blocking fabric.
pub fn spine_fraction(layout: GroupLayout, cluster: &ClusterSpec) -> f64 {
    if cluster.oversubscription <= 1.0 {
        return 0.0;
    }
    let g = layout.members_per_node.clamp(1, layout.size.max(1));
    let nodes = layout.size.div_ceil(g);
    let leaves = nodes.div_ceil(cluster.nodes_per_leaf.max(1));
    if nodes <= 1 || leaves <= 1 {
        0.0
    } else {
        leaves as f64 / nodes as f64
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ring_moves_the_textbook_bytes() {
        let s = 1e9;
        assert_eq!(
            ring_bytes_per_rank(CollectiveKind::AllReduce, 8, s),
            2.0 * 7.0 / 8.0 * s
        );
        assert_eq!(ring_bytes_per_rank(CollectiveKind::AllGather, 4, s), 0.75 * s);
        assert_eq!(ring_bytes_per_rank(CollectiveKind::ReduceScatter, 1, s), 0.0);
        // an all-reduce is a reduce-scatter then an all-gather: bytes conserved
        for n in [2, 3, 8, 64, 1000] {
            let ar = ring_bytes_per_rank(CollectiveKind::AllReduce, n, s);
            let rs_ag = ring_bytes_per_rank(CollectiveKind::ReduceScatter, n, s)
                + ring_bytes_per_rank(CollectiveKind::AllGather, n, s);
            assert!((ar - rs_ag).abs() < 1e-6);
        }
    }

    #[test]
    fn cross_node_ring_splits_bytes_between_nic_and_nvlink_and_conserves_them() {
        let c = crate::hardware::presets::test_cluster(64, 8);
        let s = 1e9;
        let cost = ring_cost(
            CollectiveKind::AllReduce,
            GroupLayout {
                size: 64,
                members_per_node: 8,
            },
            s,
            &c,
        );
        let total: f64 = cost.loads.iter().map(|(_, b)| b).sum();
        assert!((total - ring_bytes_per_rank(CollectiveKind::AllReduce, 64, s)).abs() < 1e-3);
        assert_eq!(cost.loads[0].0, LinkClass::ScaleOut);
        assert!((cost.loads[0].1 - total / 8.0).abs() < 1e-3);
        // one member per node: everything over the NIC
        let cost = ring_cost(
            CollectiveKind::AllReduce,
            GroupLayout {
                size: 16,
                members_per_node: 1,
            },
            s,
            &c,
        );
        assert_eq!(cost.loads.len(), 1);
        assert_eq!(cost.loads[0].0, LinkClass::ScaleOut);
    }

    #[test]
    fn spine_carries_the_leaf_crossing_fraction_and_bytes_are_conserved() {
        let mut c = crate::hardware::presets::test_cluster(1024, 8);
        c.oversubscription = 4.0;
        c.nodes_per_leaf = 16;
        let s = 1e9;
        let total = ring_bytes_per_rank(CollectiveKind::AllReduce, 128, s);
        // 128 ranks, one per node, 128 nodes on 8 leaves: 8 of 128 edges cross the spine
        let layout = GroupLayout {
            size: 128,
            members_per_node: 1,
        };
        let cost = ring_cost(CollectiveKind::AllReduce, layout, s, &c);
        let sum: f64 = cost.loads.iter().map(|(_, b)| b).sum();
        assert!((sum - total).abs() < 1e-3, "bytes conserved");
        let spine: f64 = cost
            .loads
            .iter()
            .filter(|(k, _)| *k == LinkClass::CrossLeaf)
            .map(|(_, b)| b)
            .sum();
        assert!((spine - total * 8.0 / 128.0).abs() < 1e-3);
        // within one leaf, or non-blocking: no spine flow, the same loads as before
        for (size, over) in [(16, 4.0), (128, 1.0)] {
            c.oversubscription = over;
            let l = GroupLayout {
                size,
                members_per_node: 1,
            };
            let cost = ring_cost(CollectiveKind::AllReduce, l, s, &c);
            assert!(cost.loads.iter().all(|(k, _)| *k != LinkClass::CrossLeaf));
        }
        // two nodes on two leaves: both edges cross
        c.oversubscription = 2.0;
        c.nodes_per_leaf = 1;
        let l = GroupLayout {
            size: 16,
            members_per_node: 8,
        };
        assert_eq!(spine_fraction(l, &c), 1.0);
    }
}
