//! The all-to-all model: owns the even all-to-alls of `trainsim collective` (`direct`,
//! `pairwise`) and what the training simulation runs of an uneven one: [`PortLoads`] and
//! [`AllToAllLoads`].
//!
//! Direct (NCCL's grouped send/receive to every peer at once): a rank sends `S (g-1)/n` to
//! the peers of its unit over the scale-up port and `S (n-g)/n` through its NIC, split by the
//! all-pairs crossing of the fabric; one hop of the widest tier. Where a rail-optimized
//! fabric carries it, NCCL's PXN first moves the `(g-1)/g` of NIC bytes bound to other rails
//! over NVLink; those bytes are added to the scale-up load. Pairwise: one peer per step, each
//! of the `n-1` steps at the widest tier the group spans.
//!
//! The MoE token dispatchers ([`super::dispatch`]) fold onto the [`PortLoads`] and
//! [`AllToAllLoads`] defined here.

use super::decompose::{phase, top_tier, Phase};
use super::group::GroupLayout;
use super::topology::{Fabric, Tier};

/// The direct all-to-all of a `n`-rank group with `g` ranks in each of `m` units.
pub(crate) fn direct(n: u32, g: u32, m: u32, sf: f64, f: &Fabric, rail_optimized: bool) -> Phase {
    let x = f.all_pairs_crossing(m);
    let nic = sf * (n - g) as f64 / n as f64;
    let pxn = if rail_optimized {
        nic * (g - 1) as f64 / g as f64
    } else {
        0.0
    };
    let mut loads = vec![(Tier::ScaleUp, sf * (g - 1) as f64 / n as f64 + pxn)];
    loads.extend(x.split(nic));
    let top = top_tier(&loads);
    phase(loads, 1, f.hop_latency_s(top), false)
}

/// The pairwise all-to-all: every step pairs some ranks across the widest tier the group
/// spans.
pub(crate) fn pairwise(n: u32, m: u32, sf: f64, f: &Fabric) -> Phase {
    let top = if m <= 1 {
        Tier::ScaleUp
    } else {
        top_tier(&f.all_pairs_crossing(m).split(1.0))
    };
    phase(
        vec![(top, sf * (n - 1) as f64 / n as f64)],
        n - 1,
        (n - 1) as f64 * f.hop_latency_s(top),
        false,
    )
}

/// Bytes one rank's ports carry in one all-to-all, per direction.
#[derive(Clone, Copy, Debug, Default, PartialEq)]
pub struct PortLoads {
    /// Sent to peers in its node (scale-up port).
    pub up_send_bytes: f64,
    /// Received from peers in its node.
    pub up_recv_bytes: f64,
    /// Sent to other nodes (NIC).
    pub nic_send_bytes: f64,
    /// Received from other nodes.
    pub nic_recv_bytes: f64,
}

impl PortLoads {
    /// The same exchange run backwards (the combine after a dispatch): sends become receives.
    pub fn reversed(self) -> PortLoads {
        PortLoads {
            up_send_bytes: self.up_recv_bytes,
            up_recv_bytes: self.up_send_bytes,
            nic_send_bytes: self.nic_recv_bytes,
            nic_recv_bytes: self.nic_send_bytes,
        }
    }
}

/// One MoE all-to-all as the training simulation runs it: the representative rank's ports as
/// flows, and the busiest other rank's ports, which carry nothing but this all-to-all, so
/// their drain time on idle ports is exact and the all-to-all cannot finish before it.
#[derive(Clone, Copy, Debug, Default, PartialEq)]
pub struct AllToAllLoads {
    /// The representative rank's ports.
    pub ports: PortLoads,
    /// Largest of sent and received scale-up bytes over the other ranks.
    pub others_max_up_bytes: f64,
    /// Largest of sent and received NIC bytes over the other ranks.
    pub others_max_nic_bytes: f64,
    /// The group spans nodes (latency of a NIC hop) or stays in one (a scale-up hop).
    pub crosses_nodes: bool,
    /// Peers in other nodes each rank exchanges with (the NCCL model's per-peer cost):
    /// `ep - g` for the direct dispatcher, the other nodes for the hierarchical one.
    pub remote_peers: u32,
    /// The communicator, when the exchange is NCCL's grouped send/receive (each remote
    /// send fills its p2p channels' first chunk: [`crate::network::tuner::p2p::all_to_all_fill_s`]);
    /// `None` for kernels of their own (DeepEP's, the gathering ring).
    pub nccl_group: Option<GroupLayout>,
}

impl AllToAllLoads {
    /// From the ports of every rank simulated, the representative first (one entry: the
    /// other ranks are symmetric and need no wait), exchanging with `remote_peers` peers in
    /// other nodes (`nccl_group`: see [`AllToAllLoads::nccl_group`]).
    pub fn from_ranks(
        ranks: &[PortLoads],
        crosses_nodes: bool,
        remote_peers: u32,
        nccl_group: Option<GroupLayout>,
    ) -> AllToAllLoads {
        let busiest = ranks.iter().skip(1).fold([0.0f64, 0.0f64], |a, x| {
            [
                a[0].max(x.up_send_bytes.max(x.up_recv_bytes)),
                a[1].max(x.nic_send_bytes.max(x.nic_recv_bytes)),
            ]
        });
        AllToAllLoads {
            ports: ranks.first().copied().unwrap_or_default(),
            others_max_up_bytes: busiest[0],
            others_max_nic_bytes: busiest[1],
            crosses_nodes,
            remote_peers,
            nccl_group,
        }
    }

    /// The same exchange run backwards (the combine after a dispatch).
    pub fn reversed(self) -> AllToAllLoads {
        AllToAllLoads {
            ports: self.ports.reversed(),
            ..self
        }
    }
}
