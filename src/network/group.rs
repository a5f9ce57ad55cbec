//! What a collective is: owns [`CollectiveKind`], [`GroupLayout`] (how a process group lies
//! on the cluster) and the ring's textbook counts ([`ring_bytes_per_rank`], [`ring_steps`]).
//! The bottom of the network's collective stack: it imports nothing from the network.

use serde::{Deserialize, Serialize};

/// Collective operation.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
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
    /// Each rank sends `S` bytes to its successor on the group's ring and receives as much
    /// from its predecessor (nccl-tests `sendrecv`; one step of a ring exchange, as context
    /// parallelism's ring attention and pipeline neighbours use it): bus factor 1.
    SendRecv,
    /// The root's `S` bytes to every rank (nccl-tests `broadcast`): bus factor 1.
    Broadcast,
    /// Every rank's `S` bytes summed on the root (nccl-tests `reduce`): bus factor 1.
    Reduce,
}

impl CollectiveKind {
    /// Names as nccl-tests and `trainsim collective --op` spell them.
    pub const NAMES: &'static [&'static str] = &[
        "all_reduce",
        "all_gather",
        "reduce_scatter",
        "all_to_all",
        "sendrecv",
        "broadcast",
        "reduce",
    ];

    /// The snake_case name (`all_reduce`, ...).
    pub fn name(self) -> &'static str {
        match self {
            CollectiveKind::AllReduce => "all_reduce",
            CollectiveKind::AllGather => "all_gather",
            CollectiveKind::ReduceScatter => "reduce_scatter",
            CollectiveKind::AllToAll => "all_to_all",
            CollectiveKind::SendRecv => "sendrecv",
            CollectiveKind::Broadcast => "broadcast",
            CollectiveKind::Reduce => "reduce",
        }
    }
}

/// How a process group lies on the cluster.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct GroupLayout {
    /// Ranks in the group.
    pub size: u32,
    /// Members of the group inside one node.
    pub members_per_node: u32,
}

impl GroupLayout {
    /// The two-rank communicator of one hop of a ring exchange over this group, on its
    /// slowest hop: across nodes when the group spans nodes, else inside one. Transformer
    /// Engine's ring attention posts unbatched `isend`/`irecv` for `cp > 2` (batched on the
    /// two-rank group itself for `cp = 2`), and PyTorch runs every unbatched pair on its own
    /// two-rank NCCL communicator, so NCCL sizes the hop's p2p channels for two ranks, not
    /// for the whole group (a 16-node CP group would get one channel per peer).
    pub fn ring_pair(self) -> GroupLayout {
        GroupLayout {
            size: self.size.min(2),
            members_per_node: if self.members_per_node >= self.size {
                self.size.min(2)
            } else {
                1
            },
        }
    }
}

/// Bytes each rank sends in a ring collective of `size_bytes` over `n` ranks:
/// `2(n-1)/n S` for all-reduce, `(n-1)/n S` otherwise.
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
        CollectiveKind::SendRecv | CollectiveKind::Broadcast | CollectiveKind::Reduce => size_bytes,
    }
}

/// Ring steps (hops on the critical path): `2(n-1)` for all-reduce, 1 for sendrecv, `n-1`
/// otherwise (the chain of broadcast and reduce).
pub fn ring_steps(kind: CollectiveKind, n: u32) -> u32 {
    if n <= 1 {
        return 0;
    }
    match kind {
        CollectiveKind::AllReduce => 2 * (n - 1),
        CollectiveKind::SendRecv => 1,
        _ => n - 1,
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
        assert_eq!(ring_steps(CollectiveKind::AllReduce, 8), 14);
        assert_eq!(ring_steps(CollectiveKind::AllGather, 8), 7);
    }
}
