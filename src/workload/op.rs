//! The operation graph's vocabulary: operations, the streams they run on, what they do and
//! which kind of communication they are ([`CommKind`], derived from the [`Dim`] of their
//! group and their purpose, and the key of every per-kind table downstream).

use crate::network::collective::CollectiveKind;
use crate::network::AllToAllLoads;
use crate::parallel::Dim;
use crate::units::SimTime;
use serde::{Deserialize, Serialize};

/// Index of an operation in [`super::Workload::ops`].
pub type OpId = u32;

/// What a compute operation is doing, for the time breakdown.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Phase {
    /// Forward pass.
    Forward,
    /// Backward pass (input gradients, and weight gradients unless the schedule splits them).
    Backward,
    /// Weight-gradient pass of schedules that split the backward (zero-bubble W passes).
    BackwardWeight,
    /// Re-run forward work (activation recomputation).
    Recompute,
    /// Optimizer step.
    Optimizer,
}

impl Phase {
    /// snake_case name (trace and timeline categories).
    pub fn name(self) -> &'static str {
        match self {
            Phase::Forward => "forward",
            Phase::Backward => "backward",
            Phase::BackwardWeight => "backward_weight",
            Phase::Recompute => "recompute",
            Phase::Optimizer => "optimizer",
        }
    }
}

/// Streams of a rank; each runs its operations one at a time, in order.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Stream {
    /// Kernels, and collectives the compute must wait for.
    Compute,
    /// Tensor-parallel collectives overlapped with compute.
    Tp,
    /// Pipeline sends.
    Pp,
    /// Data-parallel gradient and parameter collectives.
    Dp,
    /// ZeRO-3 / FSDP parameter all-gathers, prefetched ahead of the compute on their own
    /// stream (so they never queue behind gradient reductions).
    DpGather,
    /// A second compute queue: the backward passes when MoE all-to-alls overlap with
    /// another micro-batch's compute. It shares the GPU with [`Stream::Compute`]: one
    /// compute op at a time per rank.
    Compute2,
    /// MoE all-to-alls of forward passes when they overlap with compute.
    Ep,
    /// MoE all-to-alls of backward passes when they overlap with compute (a queue of its
    /// own, so the two passes' all-to-alls do not wait for each other in program order;
    /// on the wire they share the links).
    Ep2,
    /// Context-parallel exchanges overlapped with compute.
    Cp,
    /// Host-device copies of offloaded state (gradients, parameters, activations).
    Offload,
}

impl Stream {
    /// Number of streams per rank.
    pub const COUNT: usize = 10;

    /// Every stream, in [`Stream::index`] order.
    pub const ALL: [Stream; Stream::COUNT] = [
        Stream::Compute,
        Stream::Tp,
        Stream::Pp,
        Stream::Dp,
        Stream::DpGather,
        Stream::Compute2,
        Stream::Ep,
        Stream::Ep2,
        Stream::Cp,
        Stream::Offload,
    ];

    /// Whether ops of this stream occupy the GPU's compute units (one at a time per rank).
    pub fn is_compute(self) -> bool {
        matches!(self, Stream::Compute | Stream::Compute2)
    }

    /// Dense index.
    pub fn index(self) -> usize {
        self as usize
    }

    /// The stream that overlaps collectives of `dim` with compute.
    pub fn overlapping(dim: Dim) -> Stream {
        match dim {
            Dim::Tp => Stream::Tp,
            Dim::Cp | Dim::CpA2a => Stream::Cp,
            Dim::Dp | Dim::ExpertDp | Dim::DpCp | Dim::DpNode => Stream::Dp,
            Dim::Ep | Dim::Etp => Stream::Ep,
            Dim::Pp => Stream::Pp,
        }
    }
}

/// Why a collective runs, for the breakdown.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum CommPurpose {
    /// Activations (or their gradients) of the layer being computed.
    Activations,
    /// Gradient reduction.
    Gradients,
    /// Parameter all-gather (ZeRO / distributed optimizer).
    Parameters,
}

/// A kind of communication, as the breakdown, the byte counts, the trace and the charts
/// tell them apart. Derived from the group's [`Dim`] and the purpose ([`CommKind::of`]).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum CommKind {
    /// Tensor-parallel activations.
    Tp,
    /// Context-parallel key/value exchange.
    Cp,
    /// Data-parallel (and expert-data-parallel) gradient reduction.
    DpGrad,
    /// Data-parallel parameter all-gathers (ZeRO).
    DpParam,
    /// Pipeline sends.
    Pp,
    /// MoE token all-to-all.
    Ep,
}

impl CommKind {
    /// Number of kinds.
    pub const COUNT: usize = 6;

    /// Every kind, in index order (which is also the breakdown's priority order).
    pub const ALL: [CommKind; CommKind::COUNT] = [
        CommKind::Tp,
        CommKind::Cp,
        CommKind::DpGrad,
        CommKind::DpParam,
        CommKind::Pp,
        CommKind::Ep,
    ];

    /// Dense index.
    pub fn index(self) -> usize {
        self as usize
    }

    /// The kind of a collective over the group of `dim` moving `purpose`.
    pub fn of(dim: Dim, purpose: CommPurpose) -> CommKind {
        match (dim, purpose) {
            (Dim::Tp, _) => CommKind::Tp,
            (Dim::Cp | Dim::CpA2a, _) => CommKind::Cp,
            (Dim::Pp, _) => CommKind::Pp,
            (Dim::Ep | Dim::Etp, _) => CommKind::Ep,
            (Dim::Dp | Dim::ExpertDp | Dim::DpCp | Dim::DpNode, CommPurpose::Parameters) => CommKind::DpParam,
            (Dim::Dp | Dim::ExpertDp | Dim::DpCp | Dim::DpNode, _) => CommKind::DpGrad,
        }
    }

    /// snake_case name of keys such as `{name}_bytes_per_step_per_gpu` and
    /// `exposed_{name}_comm_s`.
    pub fn name(self) -> &'static str {
        match self {
            CommKind::Tp => "tp",
            CommKind::Cp => "cp",
            CommKind::DpGrad => "dp_grad",
            CommKind::DpParam => "dp_param",
            CommKind::Pp => "pp",
            CommKind::Ep => "ep",
        }
    }

    /// The dimension whose group communicates (gradients and parameters both over DP).
    pub fn dim(self) -> Dim {
        match self {
            CommKind::Tp => Dim::Tp,
            CommKind::Cp => Dim::Cp,
            CommKind::DpGrad | CommKind::DpParam => Dim::Dp,
            CommKind::Pp => Dim::Pp,
            CommKind::Ep => Dim::Ep,
        }
    }

    /// Short label: "TP", "CP", "DP grad", "DP param", "PP", "EP".
    pub fn short_label(self) -> &'static str {
        match self {
            CommKind::Tp => "TP",
            CommKind::Cp => "CP",
            CommKind::DpGrad => "DP grad",
            CommKind::DpParam => "DP param",
            CommKind::Pp => "PP",
            CommKind::Ep => "EP",
        }
    }

    /// Legend text, e.g. "TP comm", "DP grad comm", "EP all-to-all".
    pub fn label(self) -> &'static str {
        match self {
            CommKind::Tp => "TP comm",
            CommKind::Cp => "CP comm",
            CommKind::DpGrad => "DP grad comm",
            CommKind::DpParam => "DP param comm",
            CommKind::Pp => "PP comm",
            CommKind::Ep => "EP all-to-all",
        }
    }

    /// Category of traces and timelines, one per dimension: `tp_comm`, `cp_comm`,
    /// `dp_comm` (gradients and parameters), `pp_comm`, `ep_comm`.
    pub fn trace_name(self) -> &'static str {
        match self.dim() {
            Dim::Tp => "tp_comm",
            Dim::Cp | Dim::CpA2a => "cp_comm",
            Dim::Pp => "pp_comm",
            Dim::Ep | Dim::Etp => "ep_comm",
            Dim::Dp | Dim::ExpertDp | Dim::DpCp | Dim::DpNode => "dp_comm",
        }
    }
}

/// What an operation does.
#[derive(Clone, Debug, PartialEq)]
pub enum OpKind {
    /// Kernels on the GPU.
    Compute {
        /// Duration.
        duration: SimTime,
        /// FLOPs executed (for HFU).
        flops: f64,
        /// Phase for the breakdown.
        phase: Phase,
    },
    /// A collective over the process group of `dim`.
    Collective {
        /// The group.
        dim: Dim,
        /// Operation.
        kind: CollectiveKind,
        /// Buffer size, bytes.
        bytes: f64,
        /// What the bytes are (gradients, parameters, activations).
        purpose: CommPurpose,
    },
    /// Point-to-point activation or gradient transfer to another pipeline rank.
    Send {
        /// Destination representative.
        to: u32,
        /// Bytes.
        bytes: f64,
    },
    /// Synchronisation of all ranks (gradient-norm all-reduce before the optimizer).
    Barrier {
        /// Iteration it closes.
        iteration: u32,
    },
    /// Work off the GPU that a rank's stream waits for: a host-device copy over PCIe (or
    /// NVMe) or the CPU optimizer step of offloading ([`super::offload`]).
    HostCopy {
        /// Duration.
        duration: SimTime,
        /// Bytes copied (0 for CPU work).
        bytes: f64,
    },
    /// A MoE token all-to-all over the expert-parallel group: [`super::Workload::all_to_alls`].
    AllToAll {
        /// Index into [`super::Workload::all_to_alls`].
        table: u32,
    },
}

impl OpKind {
    /// The communication kind of a communicating op (`None` for compute and barriers).
    pub fn comm_kind(&self) -> Option<CommKind> {
        match self {
            OpKind::Collective { dim, purpose, .. } => Some(CommKind::of(*dim, *purpose)),
            OpKind::Send { .. } => Some(CommKind::Pp),
            OpKind::AllToAll { .. } => Some(CommKind::Ep),
            OpKind::Compute { .. } | OpKind::Barrier { .. } | OpKind::HostCopy { .. } => None,
        }
    }

    /// Trace and timeline category: the phase of compute, `{dim}_comm` of communication,
    /// `sync` of barriers.
    pub fn trace_category(&self) -> &'static str {
        match self {
            OpKind::Compute { phase, .. } => phase.name(),
            OpKind::Barrier { .. } => "sync",
            OpKind::HostCopy { .. } => "offload",
            other => other.comm_kind().map(CommKind::trace_name).unwrap_or("sync"),
        }
    }
}

/// One MoE all-to-all of the graph: the network's loads of the representative's ports (and
/// the other lanes' busiest ports), and where the wait for slower lanes begins.
#[derive(Clone, Debug, PartialEq)]
pub struct AllToAllSpec {
    /// Bytes per port, as the network runs them ([`crate::network::ExpertDispatch`]).
    pub loads: AllToAllLoads,
    /// The op after which the compute stream waits for the slowest lane (combine
    /// direction only), for the breakdown.
    pub wait_from: Option<OpId>,
}

impl AllToAllSpec {
    /// Bytes the representative sends.
    pub fn sent_bytes(&self) -> f64 {
        self.loads.ports.up_send_bytes + self.loads.ports.nic_send_bytes
    }
}

/// Index of an op's label in its workload's table of labels.
pub type NameId = u16;

/// One operation.
#[derive(Clone, Debug, PartialEq)]
pub struct Op {
    /// Representative rank.
    pub rank: u32,
    /// Stream it runs on.
    pub stream: Stream,
    /// What it does.
    pub kind: OpKind,
    /// Short label: an index into [`super::Workload::names`] ([`super::Workload::name`]),
    /// two bytes rather than a sixteen-byte string reference in every op.
    pub name: NameId,
    /// Training iteration.
    pub iteration: u32,
    /// Micro-batch, or `u32::MAX` when not tied to one.
    pub microbatch: u32,
    /// Dependencies: a range of [`super::Workload::deps`].
    pub deps: (u32, u32),
}

/// A representative rank.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct RankInfo {
    /// Pipeline stage.
    pub stage: u32,
    /// GPUs it stands for (0 for expert lanes).
    pub multiplicity: u32,
    /// Expert lane (0: the stage's representative).
    #[serde(default)]
    pub lane: u32,
    /// GPUs it stands for when it runs routed experts ([`EXPERTS_OP`]): every
    /// expert-parallel rank of the stage is a lane of its own when routing makes them
    /// differ, each standing for `tp * cp * dp / ep` GPUs; otherwise the representative runs
    /// them for all its GPUs.
    #[serde(default)]
    pub expert_multiplicity: u32,
}

/// Name of the routed experts' compute ops (their FLOPs count per [`RankInfo::expert_multiplicity`]).
pub const EXPERTS_OP: &str = "experts";

impl RankInfo {
    /// GPUs an op named `name` of this rank stands for: its expert multiplicity for
    /// routed experts ([`EXPERTS_OP`]), its multiplicity otherwise.
    pub fn gpus_for(&self, name: &str) -> u32 {
        if name == EXPERTS_OP {
            self.expert_multiplicity
        } else {
            self.multiplicity
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn comm_kinds_index_and_derive_from_dims() {
        for (i, k) in CommKind::ALL.iter().enumerate() {
            assert_eq!(k.index(), i);
        }
        assert_eq!(CommKind::of(Dim::ExpertDp, CommPurpose::Gradients), CommKind::DpGrad);
        assert_eq!(CommKind::of(Dim::Dp, CommPurpose::Parameters), CommKind::DpParam);
        assert_eq!(CommKind::DpParam.trace_name(), "dp_comm");
        assert_eq!(OpKind::Send { to: 1, bytes: 1.0 }.trace_category(), "pp_comm");
    }

    #[test]
    fn streams_list_in_index_order() {
        for (i, s) in Stream::ALL.iter().enumerate() {
            assert_eq!(s.index(), i);
        }
    }
}
