//! The parallelism dimensions: one typed key ([`Dim`]) from which process groups, placement,
//! communication kinds, breakdown categories, trace categories and chart colours are all
//! derived. Owns [`Dim`] only; what each dimension does to the work lives in its workload
//! pass, where it sits on the cluster in [`super::placement`].

use serde::{Deserialize, Serialize};

/// A parallelism dimension, i.e. a kind of process group.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Dim {
    /// Tensor parallelism (Megatron column/row split of every GEMM); sequence parallelism
    /// shards the element-wise work of the same group.
    Tp,
    /// Context parallelism: the sequence split across ranks, attention exchanging K/V.
    Cp,
    /// Data parallelism: replicas that reduce gradients (and shard optimizer state, ZeRO).
    Dp,
    /// Expert parallelism: the routed experts of a MoE layer spread over ranks.
    Ep,
    /// Expert data parallelism: replicas of the same experts (their gradient group).
    ExpertDp,
    /// Pipeline parallelism: consecutive layers on consecutive stages.
    Pp,
    /// The all-to-all (Ulysses) part of a context-parallel group: the `cp` ranks of
    /// `cp_comm_type = "a2a"`, or the `cp_a2a_size` adjacent ranks of `"a2a+p2p"` (whose
    /// ring is then [`Dim::Cp`]).
    CpA2a,
    /// Data parallelism together with context parallelism (Megatron's data-parallel group
    /// with CP, `dp * cp` ranks): the group gradients are reduced over and the distributed
    /// optimizer is sharded over when `cp > 1`.
    DpCp,
    /// The members of the gradient group ([`Dim::Dp`] or [`Dim::DpCp`]) inside one node:
    /// the group of ZeRO++'s hierarchical partitioning (hpZ), whose backward parameter
    /// gathers stay on the scale-up fabric.
    DpNode,
    /// Expert tensor parallelism (Megatron ETP): each expert's weights split over
    /// `expert_tp` adjacent ranks, which gather the tokens routed to them before the expert
    /// GEMMs and reduce-scatter the partial outputs after.
    Etp,
}

impl Dim {
    /// Number of dimensions (size of arrays indexed by [`Dim::index`]).
    pub const COUNT: usize = 10;

    /// Every dimension, in index order.
    pub const ALL: [Dim; Dim::COUNT] = [
        Dim::Tp,
        Dim::Cp,
        Dim::Dp,
        Dim::Ep,
        Dim::ExpertDp,
        Dim::Pp,
        Dim::CpA2a,
        Dim::DpCp,
        Dim::DpNode,
        Dim::Etp,
    ];

    /// Dense index into `[T; Dim::COUNT]` arrays.
    pub fn index(self) -> usize {
        self as usize
    }

    /// The snake_case name (scenario keys, JSON): `tp`, `cp`, `dp`, `ep`, `expert_dp`, `pp`,
    /// `cp_a2a`, `dp_cp`, `dp_node`, `etp`.
    pub fn name(self) -> &'static str {
        match self {
            Dim::Tp => "tp",
            Dim::Cp => "cp",
            Dim::Dp => "dp",
            Dim::Ep => "ep",
            Dim::ExpertDp => "expert_dp",
            Dim::Pp => "pp",
            Dim::CpA2a => "cp_a2a",
            Dim::DpCp => "dp_cp",
            Dim::DpNode => "dp_node",
            Dim::Etp => "etp",
        }
    }

    /// The short label of plans and charts: `TP`, `CP`, `DP`, `EP`, `EDP`, `PP`, `CP-A2A`,
    /// `DPxCP`, `DP-node`, `ETP`.
    pub fn label(self) -> &'static str {
        match self {
            Dim::Tp => "TP",
            Dim::Cp => "CP",
            Dim::Dp => "DP",
            Dim::Ep => "EP",
            Dim::ExpertDp => "EDP",
            Dim::Pp => "PP",
            Dim::CpA2a => "CP-A2A",
            Dim::DpCp => "DPxCP",
            Dim::DpNode => "DP-node",
            Dim::Etp => "ETP",
        }
    }
}

/// One value per dimension, indexed by [`Dim`].
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct PerDim<T>(pub [T; Dim::COUNT]);

impl<T> std::ops::Index<Dim> for PerDim<T> {
    type Output = T;
    fn index(&self, d: Dim) -> &T {
        &self.0[d.index()]
    }
}

impl<T> std::ops::IndexMut<Dim> for PerDim<T> {
    fn index_mut(&mut self, d: Dim) -> &mut T {
        &mut self.0[d.index()]
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn indices_names_and_serde_names_agree() {
        for (i, d) in Dim::ALL.iter().enumerate() {
            assert_eq!(d.index(), i);
            let json = serde_json::to_string(d).unwrap();
            assert_eq!(json, format!("\"{}\"", d.name()));
        }
        let mut labels: Vec<&str> = Dim::ALL.iter().map(|d| d.label()).collect();
        labels.sort_unstable();
        labels.dedup();
        assert_eq!(labels.len(), Dim::COUNT, "labels are distinct");
    }
}
