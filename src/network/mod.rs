//! The network: owns how bytes move between GPUs, from links shared max-min fairly to the
//! decomposition of collectives into flows and the one interface the training simulation
//! uses, [`ClusterNetwork`]. Does not own time or events: the simulation asks when the next
//! flow finishes and tells the network when time advances. Long notes: docs/network.md.
//!
//! Files, each importing only those listed before it:
//!
//! | file | owns |
//! |---|---|
//! | [`flow`] | [`FlowNetwork`]: links, transfers of flows, max-min rates |
//! | [`calibration`] | achievable bandwidth per link generation (published nccl-tests runs) |
//! | [`group`] | [`CollectiveKind`], [`GroupLayout`], the ring's byte and step counts |
//! | [`topology`] | [`Tier`] (the one link vocabulary), [`PortCapacities`], [`topology::Fabric`] |
//! | [`tuner`] | the NCCL model: protocols, algorithms' closed forms, p2p, NCCL-like selection |
//! | [`decompose`] | [`decompose::Phase`]; the ring (one model), tree, NVLS, hierarchical, halving-doubling, torus |
//! | [`all_to_all`] | direct and pairwise all-to-all; [`PortLoads`] and [`AllToAllLoads`] (an uneven all-to-all as the simulation runs it) |
//! | [`dispatch`] | MoE token dispatchers ([`Dispatcher`]: alltoall, allgather, DeepEP normal and low-latency), FP8 payloads, node-limited routing: [`ExpertDispatch`]'s port loads |
//! | [`algorithm`] | [`Algorithm`], checks, NCCL-like selection, idle-network time |
//! | [`collective`] | a collective folded onto a rank's ports, as the simulation charges it |
//! | [`cluster`] | [`ClusterNetwork`]: the simulation's ports, collectives, sends, all-to-alls |
//! | [`mod@bench`], [`nccl`], [`fitting`], [`fit`] | the engines of `trainsim collective`: tables, published cases, fitting and cross-validation, log fitting |

pub mod algorithm;
pub mod all_to_all;
pub mod bench;
pub mod calibration;
pub mod cluster;
pub mod collective;
pub mod decompose;
pub mod dispatch;
pub mod fit;
pub mod fitting;
pub mod flow;
pub mod group;
pub mod nccl;
pub mod topology;
pub mod tuner;

pub use algorithm::{Algorithm, AlgorithmChoice};
pub use all_to_all::{AllToAllLoads, PortLoads};
pub use cluster::{ClusterNetwork, CollectiveRequest, SendRequest, SendRoute, Started};
pub use dispatch::{payload_bytes_per_token, Dispatcher, ExpertDispatch};
pub use flow::{Completed, FlowNetwork, LinkId, MAX_FLOW_LINKS};
pub use group::{CollectiveKind, GroupLayout};
pub use topology::{PortCapacities, Tier};
