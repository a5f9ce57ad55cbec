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
}

/// Which port of a GPU a load crosses.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum LinkClass {
    /// NVLink / NVSwitch (scale-up domain).
    ScaleUp,
    /// NIC into the scale-out fabric.
    ScaleOut,
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
        CollectiveKind::ReduceScatter | CollectiveKind::AllGather => (nf - 1.0) / nf * size_bytes,
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
pub fn ring_cost(kind: CollectiveKind, layout: GroupLayout, size_bytes: f64, cluster: &ClusterSpec) -> CollectiveCost {
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
    let mut loads = vec![(LinkClass::ScaleOut, per_rank / g)];
    if g > 1.0 {
        loads.push((LinkClass::ScaleUp, per_rank * (g - 1.0) / g));
    }
    CollectiveCost {
        loads,
        latency_s: steps * (out_lat + (g - 1.0) * up_lat) / g,
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
        let c = crate::scenario::tests::test_cluster(64, 8);
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
}
