//! The all-to-all model: owns the even all-to-alls of `trainsim collective` (`direct`,
//! `pairwise`) and the uneven MoE token all-to-all of the training simulation
//! ([`ExpertDispatch`]: per-rank port loads from routed loads, direct or node-deduplicated
//! dispatch), with [`PortLoads`] and [`AllToAllLoads`] (what the simulation runs).
//!
//! Direct (NCCL's grouped send/receive to every peer at once): a rank sends `S (g-1)/n` to
//! the peers of its unit over the scale-up port and `S (n-g)/n` through its NIC, split by the
//! all-pairs crossing of the fabric; one hop of the widest tier. Where a rail-optimized
//! fabric carries it, NCCL's PXN first moves the `(g-1)/g` of NIC bytes bound to other rails
//! over NVLink; those bytes are added to the scale-up load. Pairwise: one peer per step, each
//! of the `n-1` steps at the widest tier the group spans.
//!
//! The MoE dispatch is the direct all-to-all with uneven loads: rank `r` sends each peer
//! `1/n` of what that peer's experts receive (routing is the same on every source rank), so
//! with balanced loads [`ExpertDispatch::ports`] gives `direct`'s bytes (tested below).

use super::decompose::{phase, top_tier, Phase};
use super::group::GroupLayout;
use super::topology::{Fabric, Tier};
use serde::{Deserialize, Serialize};

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

/// How MoE tokens reach the experts' GPUs.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Dispatcher {
    /// Every token-expert copy straight to its expert's GPU (NCCL all-to-all, Megatron's
    /// `alltoall` dispatcher).
    #[default]
    Direct,
    /// A token crosses the NIC once per remote node holding any of its experts, to the
    /// same-rail GPU there, which forwards the copies over NVLink (DeepEP, Tutel's 2D
    /// all-to-all).
    Hierarchical,
}

impl Dispatcher {
    /// Names accepted in scenario files.
    pub const NAMES: &'static [&'static str] = &["direct", "hierarchical"];
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
}

impl AllToAllLoads {
    /// From the ports of every rank simulated, the representative first (one entry: the
    /// other ranks are symmetric and need no wait), exchanging with `remote_peers` peers in
    /// other nodes.
    pub fn from_ranks(ranks: &[PortLoads], crosses_nodes: bool, remote_peers: u32) -> AllToAllLoads {
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

/// One MoE token dispatch over an expert-parallel group, from what routing sent each rank.
#[derive(Clone, Copy, Debug)]
pub struct ExpertDispatch<'a> {
    /// Token-expert assignments each EP rank receives (the kept loads of its experts), in
    /// rank order, one entry per rank of the group.
    pub rank_assignments: &'a [f64],
    /// The EP group: its size and EP ranks per node.
    pub layout: GroupLayout,
    /// Bytes one token-expert assignment moves.
    pub bytes_per_assignment: f64,
    /// Tokens each rank routes (the hierarchical dispatcher sends tokens, not assignments).
    pub tokens_per_rank: f64,
    /// Experts per token.
    pub top_k: u32,
    /// Direct or node-deduplicated.
    pub dispatcher: Dispatcher,
}

impl ExpertDispatch<'_> {
    /// Whether the group spans nodes.
    pub fn crosses_nodes(&self) -> bool {
        let ep = self.layout.size.max(1);
        ep > self.layout.members_per_node.clamp(1, ep)
    }

    /// The dispatch loads of EP rank `r`'s ports (the combine is [`PortLoads::reversed`]).
    ///
    /// Direct: rank `r` sends each peer `1/ep` of what that peer receives and receives `1/ep`
    /// of its own load from each peer; peers in its node go over the scale-up port, the others
    /// through the NIC. Hierarchical (only when the group spans nodes and routing sent
    /// anything): a token crosses the NIC once per remote node holding any of its experts,
    /// with probability `1 - (1 - s_j)^top_k` for a node receiving the share `s_j` of the
    /// assignments, to the same-rail GPU there, which forwards the copies for its node's
    /// other GPUs over NVLink (`(g-1)/g` of the node's remote copies, spread over its `g`
    /// GPUs) on top of the direct scale-up loads.
    pub fn ports(&self, r: usize) -> PortLoads {
        let rank_loads = self.rank_assignments;
        let ep = self.layout.size.max(1) as usize;
        let g = self.layout.members_per_node.clamp(1, ep as u32) as usize;
        let bpa = self.bytes_per_assignment;
        let total: f64 = rank_loads.iter().sum();
        let node = r / g;
        let same_node: f64 = rank_loads
            .iter()
            .enumerate()
            .filter(|&(q, _)| q != r && q / g == node)
            .map(|(_, x)| x)
            .sum();
        let peers_here = ((node + 1) * g).min(ep) - node * g;
        let other_nodes = total - same_node - rank_loads[r];
        let own = rank_loads[r];
        let direct = PortLoads {
            up_send_bytes: same_node / ep as f64 * bpa,
            up_recv_bytes: own * (peers_here - 1) as f64 / ep as f64 * bpa,
            nic_send_bytes: other_nodes / ep as f64 * bpa,
            nic_recv_bytes: own * (ep - peers_here) as f64 / ep as f64 * bpa,
        };
        if self.dispatcher != Dispatcher::Hierarchical || ep <= g || total <= 0.0 {
            return direct;
        }
        let top_k = self.top_k as f64;
        let nodes = ep.div_ceil(g);
        let node_load = |j: usize| -> f64 { rank_loads[j * g..((j + 1) * g).min(ep)].iter().sum() };
        let hit = |j: usize| 1.0 - (1.0 - node_load(j) / total).max(0.0).powf(top_k);
        let t = self.tokens_per_rank;
        let nic_send: f64 = (0..nodes).filter(|&j| j != node).map(|j| t * hit(j)).sum();
        let nic_recv = (ep - peers_here) as f64 * t * hit(node) / peers_here as f64;
        // remote copies for this node, shared over its GPUs, of which (g-1)/g move on
        let remote_in = node_load(node) * (ep - peers_here) as f64 / ep as f64;
        let forward = remote_in / peers_here as f64 * (peers_here - 1) as f64 / peers_here as f64;
        let forwarded_to_me = own * (ep - peers_here) as f64 / ep as f64 * (peers_here - 1) as f64 / peers_here as f64;
        PortLoads {
            up_send_bytes: direct.up_send_bytes + forward * bpa,
            up_recv_bytes: direct.up_recv_bytes + forwarded_to_me * bpa,
            nic_send_bytes: nic_send * bpa,
            nic_recv_bytes: nic_recv * bpa,
        }
    }

    /// The dispatch as the simulation runs it, with ranks `0..ranks` simulated (rank 0 the
    /// representative; 1 when the other ranks are symmetric).
    pub fn loads(&self, ranks: usize) -> AllToAllLoads {
        let ports: Vec<PortLoads> = (0..ranks.max(1)).map(|r| self.ports(r)).collect();
        AllToAllLoads::from_ranks(&ports, self.crosses_nodes(), self.remote_peers())
    }

    /// Peers in other nodes each rank exchanges with: `ep - g` (direct), the other nodes
    /// (hierarchical: one same-rail peer per remote node).
    pub fn remote_peers(&self) -> u32 {
        let ep = self.layout.size.max(1);
        let g = self.layout.members_per_node.clamp(1, ep);
        if !self.crosses_nodes() {
            0
        } else if self.dispatcher == Dispatcher::Hierarchical {
            ep.div_ceil(g) - 1
        } else {
            ep - g
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::hardware::presets::test_cluster;

    /// The port closure of `MoeRouter::instance` (src/workload/mod.rs) as it stood when this
    /// function took over from it, verbatim but for its inputs: the reference the function
    /// must reproduce bit for bit.
    #[allow(clippy::too_many_arguments)]
    fn reference(
        rank_loads: &[f64],
        ep: usize,
        g: usize,
        bpa: f64,
        hierarchical: bool,
        top_k: f64,
        tokens_per_rank: f64,
        r: usize,
    ) -> [f64; 4] {
        let total: f64 = rank_loads.iter().sum();
        let node = r / g;
        let same_node: f64 = rank_loads
            .iter()
            .enumerate()
            .filter(|&(q, _)| q != r && q / g == node)
            .map(|(_, x)| x)
            .sum();
        let peers_here = ((node + 1) * g).min(ep) - node * g;
        let other_nodes = total - same_node - rank_loads[r];
        let own = rank_loads[r];
        let direct = [
            same_node / ep as f64 * bpa,
            own * (peers_here - 1) as f64 / ep as f64 * bpa,
            other_nodes / ep as f64 * bpa,
            own * (ep - peers_here) as f64 / ep as f64 * bpa,
        ];
        if !hierarchical || ep <= g || total <= 0.0 {
            return direct;
        }
        let nodes = ep.div_ceil(g);
        let node_load = |j: usize| -> f64 { rank_loads[j * g..((j + 1) * g).min(ep)].iter().sum() };
        let hit = |j: usize| 1.0 - (1.0 - node_load(j) / total).max(0.0).powf(top_k);
        let t = tokens_per_rank;
        let nic_send: f64 = (0..nodes).filter(|&j| j != node).map(|j| t * hit(j)).sum();
        let nic_recv = (ep - peers_here) as f64 * t * hit(node) / peers_here as f64;
        let remote_in = node_load(node) * (ep - peers_here) as f64 / ep as f64;
        let forward = remote_in / peers_here as f64 * (peers_here - 1) as f64 / peers_here as f64;
        let forwarded_to_me = own * (ep - peers_here) as f64 / ep as f64 * (peers_here - 1) as f64 / peers_here as f64;
        [
            direct[0] + forward * bpa,
            direct[1] + forwarded_to_me * bpa,
            nic_send * bpa,
            nic_recv * bpa,
        ]
    }

    fn skewed(ep: usize, seed: u64) -> Vec<f64> {
        // deterministic, uneven, with a zero and a heavy rank
        let mut x = seed.wrapping_mul(0x9E37_79B9_7F4A_7C15) | 1;
        (0..ep)
            .map(|i| {
                x ^= x << 13;
                x ^= x >> 7;
                x ^= x << 17;
                match i {
                    1 => 0.0,
                    2 => 9000.5,
                    _ => (x % 5000) as f64 + 0.25,
                }
            })
            .collect()
    }

    #[test]
    fn port_loads_reproduce_the_workload_closure_exactly() {
        let bpa = 2.0 * 4096.0;
        let cases: Vec<(&str, Vec<f64>, u32, Dispatcher)> = vec![
            ("balanced, one node", vec![512.0; 8], 8, Dispatcher::Direct),
            ("skewed, one node", skewed(8, 1), 8, Dispatcher::Direct),
            ("hierarchical in one node", skewed(8, 2), 8, Dispatcher::Hierarchical),
            ("balanced, 4 nodes", vec![300.0; 32], 8, Dispatcher::Direct),
            ("skewed, 4 nodes", skewed(32, 3), 8, Dispatcher::Direct),
            ("balanced, hierarchical", vec![300.0; 32], 8, Dispatcher::Hierarchical),
            ("skewed, hierarchical", skewed(64, 4), 8, Dispatcher::Hierarchical),
            ("partial last node", skewed(12, 5), 8, Dispatcher::Hierarchical),
            ("one rank per node", skewed(16, 6), 1, Dispatcher::Hierarchical),
            ("nothing routed", vec![0.0; 16], 4, Dispatcher::Hierarchical),
        ];
        for (name, loads, g, dispatcher) in cases {
            let ep = loads.len();
            for top_k in [1u32, 2, 8] {
                let d = ExpertDispatch {
                    rank_assignments: &loads,
                    layout: GroupLayout {
                        size: ep as u32,
                        members_per_node: g,
                    },
                    bytes_per_assignment: bpa,
                    tokens_per_rank: 1234.0,
                    top_k,
                    dispatcher,
                };
                for r in 0..ep {
                    let want = reference(
                        &loads,
                        ep,
                        g as usize,
                        bpa,
                        dispatcher == Dispatcher::Hierarchical,
                        top_k as f64,
                        1234.0,
                        r,
                    );
                    let p = d.ports(r);
                    let got = [p.up_send_bytes, p.up_recv_bytes, p.nic_send_bytes, p.nic_recv_bytes];
                    assert_eq!(
                        got.map(f64::to_bits),
                        want.map(f64::to_bits),
                        "{name}, top-{top_k}, rank {r}"
                    );
                }
                assert_eq!(d.crosses_nodes(), ep > g as usize, "{name}");
            }
        }
    }

    #[test]
    fn the_representative_waits_for_the_busiest_other_rank() {
        let loads = skewed(16, 7);
        let d = ExpertDispatch {
            rank_assignments: &loads,
            layout: GroupLayout {
                size: 16,
                members_per_node: 8,
            },
            bytes_per_assignment: 10.0,
            tokens_per_rank: 100.0,
            top_k: 2,
            dispatcher: Dispatcher::Direct,
        };
        let all = d.loads(16);
        assert_eq!(all.ports, d.ports(0));
        let up = (1..16)
            .map(|r| d.ports(r).up_send_bytes.max(d.ports(r).up_recv_bytes))
            .fold(0.0, f64::max);
        assert_eq!(all.others_max_up_bytes, up);
        assert!(all.crosses_nodes && all.others_max_nic_bytes > 0.0);
        // one simulated rank: nothing to wait for
        let one = d.loads(1);
        assert_eq!((one.others_max_up_bytes, one.others_max_nic_bytes), (0.0, 0.0));
        // the combine runs it backwards
        let back = all.reversed();
        assert_eq!(back.ports.nic_send_bytes, all.ports.nic_recv_bytes);
        assert_eq!(back.others_max_nic_bytes, all.others_max_nic_bytes);
    }

    /// Balanced routing is the even all-to-all: the MoE dispatch moves [`direct`]'s bytes.
    #[test]
    fn balanced_dispatch_is_the_direct_all_to_all() {
        let c = test_cluster(256, 8);
        for (ep, g) in [(8u32, 8u32), (32, 8), (64, 4), (16, 1)] {
            let per_rank = 1000.0;
            let loads = vec![per_rank; ep as usize];
            let bpa = 16.0;
            let d = ExpertDispatch {
                rank_assignments: &loads,
                layout: GroupLayout {
                    size: ep,
                    members_per_node: g,
                },
                bytes_per_assignment: bpa,
                tokens_per_rank: 500.0,
                top_k: 2,
                dispatcher: Dispatcher::Direct,
            };
            let p = d.ports(0);
            // what one rank sends in all: its share of every rank's load
            let send_buffer = per_rank * bpa;
            let f = Fabric::new(&c);
            let k = direct(ep, g, ep / g, send_buffer, &f, false);
            let bytes = |scale_out: bool| -> f64 {
                k.loads
                    .iter()
                    .filter(|(t, _)| t.is_scale_out() == scale_out)
                    .map(|(_, b)| b)
                    .sum()
            };
            let rel = |a: f64, b: f64| (a - b).abs() <= 1e-9 * b.max(1.0);
            assert!(rel(p.up_send_bytes, bytes(false)), "ep {ep} g {g}");
            assert!(rel(p.nic_send_bytes, bytes(true)), "ep {ep} g {g}");
            assert_eq!(p.up_send_bytes, p.up_recv_bytes);
            assert_eq!(p.nic_send_bytes, p.nic_recv_bytes);
        }
    }
}
