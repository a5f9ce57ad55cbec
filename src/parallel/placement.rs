//! Where ranks sit: how the process group of each [`Dim`] lies on the cluster's nodes.
//!
//! Computed once per run ([`Placement::megatron`]) and shared by the workload, the
//! simulation and the search bounds. Megatron's default rank order puts the fastest-varying
//! dimension innermost: TP, then CP, then DP, then PP for the dense layers (inside CP, the
//! all-to-all part of a hierarchical group before its ring; DP x CP, the gradient group
//! with context parallelism, is the CP and DP ranks together, `tp` apart); the expert
//! layers reuse the same ranks as expert-TP, then EP, then expert-DP. A group whose ranks are
//! `stride` GPUs apart has `min(size, gpus_per_node / stride)` members in one node (1 once
//! the stride reaches a node).

use super::{Dim, ParallelPlan, PerDim};
use crate::network::collective::{CollectiveKind, GroupLayout};
use serde::{Deserialize, Serialize};

/// The layout of every process group of a plan.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Placement {
    /// Size and members per node of each group.
    pub layouts: PerDim<GroupLayout>,
    /// GPUs between consecutive members of each group (rank-order stride).
    pub stride_gpus: PerDim<u32>,
    /// GPUs per node the placement was computed for.
    pub gpus_per_node: u32,
}

/// Members of a group of `size` ranks, `stride` GPUs apart, inside one node.
fn members_per_node(size: u32, stride: u32, gpus_per_node: u32) -> u32 {
    if stride >= gpus_per_node {
        1
    } else {
        (gpus_per_node / stride.max(1)).min(size).max(1)
    }
}

impl Placement {
    /// Megatron placement (module docs).
    pub fn megatron(plan: &ParallelPlan, gpus_per_node: u32) -> Placement {
        let gpn = gpus_per_node.max(1);
        let mut stride = PerDim([1u32; Dim::COUNT]);
        // dense order: TP, CP (its all-to-all part, then its ring), DP, PP
        let mut s = 1u32;
        for d in [Dim::Tp, Dim::CpA2a, Dim::Cp, Dim::Dp, Dim::Pp] {
            stride[d] = s;
            s = s.saturating_mul(plan.degree(d).max(1));
        }
        stride[Dim::DpCp] = stride[Dim::CpA2a];
        stride[Dim::DpNode] = stride[plan.grad_dim()];
        // expert order: expert-TP, EP, expert-DP
        stride[Dim::Etp] = 1;
        stride[Dim::Ep] = plan.expert_tp.max(1);
        stride[Dim::ExpertDp] = plan.expert_tp.max(1).saturating_mul(plan.ep.max(1));
        let mut layouts = PerDim(Dim::ALL.map(|d| {
            let size = plan.degree(d).max(1);
            GroupLayout {
                size,
                members_per_node: members_per_node(size, stride[d], gpn),
            }
        }));
        // hpZ's group: the gradient group's members in one node
        let local = layouts[plan.grad_dim()].members_per_node;
        layouts[Dim::DpNode] = GroupLayout {
            size: local,
            members_per_node: local,
        };
        Placement {
            layouts,
            stride_gpus: stride,
            gpus_per_node: gpn,
        }
    }

    /// The layout of the group of `dim`.
    pub fn layout(&self, dim: Dim) -> GroupLayout {
        self.layouts[dim]
    }

    /// The communicator an operation of `kind` over `dim` is posted on: the dim's group,
    /// except the ring exchange (`sendrecv`, context parallelism's ring attention), whose
    /// pairs run on their own two-rank communicators ([`GroupLayout::ring_pair`]).
    pub fn comm_layout(&self, dim: Dim, kind: CollectiveKind) -> GroupLayout {
        match kind {
            CollectiveKind::SendRecv => self.layouts[dim].ring_pair(),
            _ => self.layouts[dim],
        }
    }

    /// Whether adjacent pipeline stages share a node.
    pub fn pp_neighbours_share_node(&self) -> bool {
        self.stride_gpus[Dim::Pp] < self.gpus_per_node
    }

    /// Nodes spanned by one group of `dim`.
    pub fn group_nodes(&self, dim: Dim) -> u32 {
        let l = self.layouts[dim];
        l.size.div_ceil(l.members_per_node.max(1))
    }

    /// The placement as results report it.
    pub fn summary(&self) -> PlacementSummary {
        let per_node = |d: Dim| self.layouts[d].members_per_node;
        let order: Vec<&str> = [Dim::Tp, Dim::Cp, Dim::Dp, Dim::Pp]
            .into_iter()
            .filter(|&d| d != Dim::Cp || self.layouts[d].size * self.layouts[Dim::CpA2a].size > 1)
            .map(Dim::name)
            .collect();
        PlacementSummary {
            order: order.join("-"),
            tp_members_per_node: per_node(Dim::Tp),
            dp_members_per_node: per_node(Dim::Dp),
            pp_neighbours_share_node: self.pp_neighbours_share_node(),
            dp_group_nodes: self.group_nodes(Dim::Dp),
            ep_members_per_node: per_node(Dim::Ep),
            expert_dp_members_per_node: per_node(Dim::ExpertDp),
        }
    }
}

fn one() -> u32 {
    1
}

/// Where ranks sit, as `results.json` reports it.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct PlacementSummary {
    /// Rank order, fastest-varying first.
    pub order: String,
    /// TP group members sharing a node.
    pub tp_members_per_node: u32,
    /// DP group members sharing a node.
    pub dp_members_per_node: u32,
    /// Whether adjacent pipeline stages sit in the same node.
    pub pp_neighbours_share_node: bool,
    /// Nodes spanned by one DP group.
    pub dp_group_nodes: u32,
    /// Expert-parallel group members sharing a node (the group is `ep` consecutive
    /// ranks of a stage's TP x DP block).
    #[serde(default = "one")]
    pub ep_members_per_node: u32,
    /// Expert-data-parallel group members sharing a node (stride `ep * expert_tp`).
    #[serde(default = "one")]
    pub expert_dp_members_per_node: u32,
}

#[cfg(test)]
mod tests {
    use super::super::tests_support::plan;
    use super::*;

    #[test]
    fn megatron_placement_keeps_tp_in_node_and_spreads_dp() {
        let p = Placement::megatron(&plan(8, 8, 16), 8).summary();
        assert_eq!(
            (p.tp_members_per_node, p.dp_members_per_node, p.pp_neighbours_share_node),
            (8, 1, false)
        );
        let p = Placement::megatron(&plan(2, 1, 48), 8).summary();
        assert_eq!(
            (p.tp_members_per_node, p.dp_members_per_node, p.dp_group_nodes),
            (2, 4, 12)
        );
    }

    #[test]
    fn every_group_size_is_its_degree_and_strides_follow_the_rank_order() {
        let mut p = plan(4, 2, 8);
        p.ep = 8;
        let pl = Placement::megatron(&p, 8);
        for d in Dim::ALL {
            if d == Dim::DpNode {
                // hpZ's group: the gradient group's members in one node
                assert_eq!(pl.layout(d).size, pl.layout(Dim::Dp).members_per_node);
                continue;
            }
            assert_eq!(pl.layout(d).size, p.degree(d).max(1), "{d:?}");
            assert!(pl.layout(d).members_per_node <= pl.layout(d).size);
        }
        assert_eq!(pl.stride_gpus[Dim::Dp], 4);
        assert_eq!(pl.stride_gpus[Dim::Pp], 32);
        assert_eq!(pl.layout(Dim::Ep).members_per_node, 8);
        assert_eq!(pl.layout(Dim::ExpertDp).members_per_node, 1);
    }

    /// Megatron's order with CP: TP, CP, DP, PP. The gradient group with CP is DP x CP,
    /// `tp` apart; a hierarchical CP group puts its all-to-all ranks next to each other and
    /// its ring `cp_a2a_size` CP ranks apart.
    #[test]
    fn context_parallel_groups_follow_tp_and_precede_dp() {
        let mut p = plan(2, 2, 4);
        p.cp = 8;
        let pl = Placement::megatron(&p, 8);
        assert_eq!((pl.stride_gpus[Dim::Cp], pl.layout(Dim::Cp).size), (2, 8));
        assert_eq!(pl.layout(Dim::Cp).members_per_node, 4);
        assert_eq!(pl.stride_gpus[Dim::Dp], 16);
        assert_eq!(pl.layout(Dim::DpCp).size, 32);
        assert_eq!(pl.layout(Dim::DpCp).members_per_node, 4);
        assert_eq!(pl.stride_gpus[Dim::Pp], 64);
        assert_eq!(pl.summary().order, "tp-cp-dp-pp");
        p.cp_comm_type = crate::parallel::CpCommType::A2aP2p;
        p.cp_a2a_size = 2;
        let pl = Placement::megatron(&p, 8);
        assert_eq!(
            (pl.layout(Dim::CpA2a).size, pl.layout(Dim::CpA2a).members_per_node),
            (2, 2)
        );
        assert_eq!((pl.layout(Dim::Cp).size, pl.stride_gpus[Dim::Cp]), (4, 4));
        assert_eq!(pl.layout(Dim::Cp).members_per_node, 2);
        assert_eq!(pl.stride_gpus[Dim::Dp], 16);
        // the ring's sendrecv runs on its hop's own two-rank communicator, across nodes
        // here (the ring spans 2 nodes); the other collectives on the group
        let hop = pl.comm_layout(Dim::Cp, CollectiveKind::SendRecv);
        assert_eq!((hop.size, hop.members_per_node), (2, 1));
        assert_eq!(pl.comm_layout(Dim::Cp, CollectiveKind::AllGather), pl.layout(Dim::Cp));
    }
}
