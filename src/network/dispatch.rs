//! MoE token dispatch: how routed tokens reach the GPUs of their experts and come back.
//! Owns [`Dispatcher`] (Megatron's `alltoall` and `allgather` dispatchers, DeepEP's normal
//! and low-latency kernels), [`ExpertDispatch`] (one dispatch's per-rank port loads from
//! what routing sent each expert-parallel rank, with node-limited routing) and the payload
//! sizes ([`payload_bytes_per_token`]: BF16, or FP8 with its per-128-element scales).
//!
//! Closed forms per rank and direction, for `T` tokens per rank, `k` experts per token,
//! `ep` ranks, `g` per node, `N = ep / g` nodes, `b` payload bytes per token and balanced
//! routing (the code takes each rank's routed load):
//!
//! | dispatcher | NIC bytes | scale-up bytes |
//! |---|---|---|
//! | `alltoall` | `T k b (ep - g) / ep` | `T k b (g - 1) / ep` |
//! | `allgather` | `T b (ep - 1) / g` (ring over nodes) | `T b (ep - 1) (g - 1) / g` |
//! | `deepep` | `T b (N - 1) h` with `h = min(1 - (1 - 1/N)^k, M / N)` | direct part + forwarding |
//! | `deepep_low_latency` | `T k b (ep - 1) / ep` (pure RDMA) | 0 |
//!
//! `M` is the node limit (`node_limit`; DeepSeek-V3: each token to at most 4 nodes): a
//! token then reaches node `j` with probability `min(1 - (1 - s_j)^k, M s_j)` for a node
//! receiving the share `s_j` of the assignments, so on average at most `M` nodes.

use super::all_to_all::{AllToAllLoads, PortLoads};
use super::group::GroupLayout;
use serde::{Deserialize, Serialize};

/// How MoE tokens reach the experts' GPUs.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub enum Dispatcher {
    /// Every token-expert copy straight to its expert's GPU (NCCL all-to-all, Megatron's
    /// `alltoall` dispatcher); copies for the GPU's own node over NVLink.
    #[default]
    #[serde(rename = "alltoall", alias = "direct")]
    AllToAll,
    /// Megatron's `allgather` dispatcher: every rank gathers every token of the group
    /// (NCCL ring all-gather) and keeps those routed to its experts; the combine is the
    /// matching reduce-scatter. Independent of routing.
    #[serde(rename = "allgather")]
    AllGather,
    /// DeepEP's normal kernels (NVLink + RDMA): a token crosses the NIC once per remote
    /// node holding any of its experts, to the same-rail GPU there, which forwards the
    /// copies over NVLink.
    #[serde(rename = "deepep", alias = "hierarchical")]
    DeepEp,
    /// DeepEP's low-latency kernels: every token-expert copy by RDMA to its expert's GPU,
    /// peers in the same node included (no NVLink forwarding, no deduplication).
    #[serde(rename = "deepep_low_latency")]
    DeepEpLowLatency,
}

impl Dispatcher {
    /// Names accepted in scenario files, in [`Dispatcher::ALL`] order.
    pub const NAMES: &'static [&'static str] = &["alltoall", "allgather", "deepep", "deepep_low_latency"];
    /// Every dispatcher.
    pub const ALL: [Dispatcher; 4] = [
        Dispatcher::AllToAll,
        Dispatcher::AllGather,
        Dispatcher::DeepEp,
        Dispatcher::DeepEpLowLatency,
    ];
    /// Earlier names still accepted: (name, dispatcher).
    pub const ALIASES: [(&'static str, Dispatcher); 2] =
        [("direct", Dispatcher::AllToAll), ("hierarchical", Dispatcher::DeepEp)];

    /// Its scenario-file name.
    pub fn name(self) -> &'static str {
        Self::NAMES[Self::ALL.iter().position(|&d| d == self).unwrap_or(0)]
    }

    /// Whether a token crosses the NIC once per node it reaches (node deduplication), the
    /// only case where a node limit changes the bytes.
    pub fn deduplicates_nodes(self) -> bool {
        self == Dispatcher::DeepEp
    }
}

/// Elements sharing one FP32 scale in an FP8 dispatch payload (DeepEP, DeepSeek-V3's
/// 1 x 128 activation tiles).
pub const FP8_SCALE_GROUP: f64 = 128.0;

/// Bytes one token's `hidden`-wide activation takes in a dispatch payload: 2 per element
/// in BF16, or 1 per element plus a 4-byte scale per [`FP8_SCALE_GROUP`] elements in FP8.
pub fn payload_bytes_per_token(hidden: f64, fp8: bool) -> f64 {
    if fp8 {
        hidden * (1.0 + 4.0 / FP8_SCALE_GROUP)
    } else {
        2.0 * hidden
    }
}

/// Per-node sums one dispatch's ranks share ([`ExpertDispatch::node_totals`]).
struct NodeTotals {
    /// Assignments over all ranks.
    total: f64,
    /// Assignments per node.
    node_load: Vec<f64>,
    /// Probability that a token reaches each node ([`ExpertDispatch::node_hit`]; `deepep`
    /// across nodes, else empty).
    node_hit: Vec<f64>,
}

/// One MoE token dispatch over an expert-parallel group, from what routing sent each rank.
#[derive(Clone, Copy, Debug)]
pub struct ExpertDispatch<'a> {
    /// Token-expert assignments each EP rank receives (the kept loads of its experts), in
    /// rank order, one entry per rank of the group.
    pub rank_assignments: &'a [f64],
    /// The EP group: its size and EP ranks per node.
    pub layout: GroupLayout,
    /// Bytes one token (or token-expert copy) moves: [`payload_bytes_per_token`].
    pub bytes_per_assignment: f64,
    /// Tokens each rank routes (the deduplicating and gathering dispatchers move tokens,
    /// not assignments).
    pub tokens_per_rank: f64,
    /// Experts per token.
    pub top_k: u32,
    /// How tokens travel.
    pub dispatcher: Dispatcher,
    /// Node-limited routing: each token reaches at most this many nodes (`None`: any).
    pub node_limit: Option<u32>,
}

impl ExpertDispatch<'_> {
    /// Whether the group spans nodes.
    pub fn crosses_nodes(&self) -> bool {
        let ep = self.layout.size.max(1);
        ep > self.layout.members_per_node.clamp(1, ep)
    }

    fn ep_g(&self) -> (usize, usize) {
        let ep = self.layout.size.max(1) as usize;
        (ep, self.layout.members_per_node.clamp(1, ep as u32) as usize)
    }

    /// Probability that a token reaches a node receiving the share `s` of the assignments:
    /// `1 - (1 - s)^k`, capped at `M s` under a node limit `M` below the node count.
    pub fn node_hit(&self, s: f64, nodes: usize) -> f64 {
        let hit = 1.0 - (1.0 - s).max(0.0).powf(self.top_k as f64);
        match self.node_limit {
            Some(m) if (m as usize) < nodes => hit.min(m as f64 * s),
            _ => hit,
        }
    }

    /// The dispatch loads of EP rank `r`'s ports (the combine is [`PortLoads::reversed`]).
    ///
    /// `alltoall`: rank `r` sends each peer `1/ep` of what that peer receives and receives
    /// `1/ep` of its own load from each peer; peers in its node go over the scale-up port,
    /// the others through the NIC. `deepep` (when the group spans nodes and routing sent
    /// anything; inside a node it is the direct exchange over NVLink): a token crosses the
    /// NIC once per remote node it reaches ([`ExpertDispatch::node_hit`]), to the same-rail
    /// GPU there, which forwards the copies for its node's other GPUs over NVLink
    /// (`(g-1)/g` of the node's remote copies, spread over its `g` GPUs) on top of the
    /// direct scale-up loads. `deepep_low_latency`: the direct exchange with every copy on
    /// the NIC. `allgather`: the ring all-gather of every rank's tokens.
    pub fn ports(&self, r: usize) -> PortLoads {
        self.ports_with(&self.node_totals(), r)
    }

    /// What every rank's [`ExpertDispatch::ports`] shares: the total assignments, and per
    /// node its assignments and the chance a token reaches it under the deduplicating
    /// dispatcher. Computed once per dispatch, so [`ExpertDispatch::loads`]
    /// costs `O(ep + nodes)` rather than `O(ep (ep + nodes))`.
    fn node_totals(&self) -> NodeTotals {
        let (ep, g) = self.ep_g();
        let loads = self.rank_assignments;
        let total: f64 = loads.iter().sum();
        let nodes = ep.div_ceil(g);
        let node_load: Vec<f64> = (0..nodes)
            .map(|j| loads[j * g..((j + 1) * g).min(ep)].iter().sum())
            .collect();
        let node_hit = if self.dispatcher == Dispatcher::DeepEp && ep > g && total > 0.0 {
            node_load.iter().map(|&l| self.node_hit(l / total, nodes)).collect()
        } else {
            Vec::new()
        };
        NodeTotals {
            total,
            node_load,
            node_hit,
        }
    }

    fn ports_with(&self, n: &NodeTotals, r: usize) -> PortLoads {
        let (ep, g) = self.ep_g();
        let bpa = self.bytes_per_assignment;
        if self.dispatcher == Dispatcher::AllGather {
            let all = (ep - 1) as f64 * self.tokens_per_rank * bpa;
            let nic = if ep > g { all / g as f64 } else { 0.0 };
            return PortLoads {
                up_send_bytes: all - nic,
                up_recv_bytes: all - nic,
                nic_send_bytes: nic,
                nic_recv_bytes: nic,
            };
        }
        let rank_loads = self.rank_assignments;
        let total = n.total;
        let node = r / g;
        let here = node * g..((node + 1) * g).min(rank_loads.len());
        let same_node: f64 = rank_loads[here.clone()]
            .iter()
            .zip(here)
            .filter(|&(_, q)| q != r)
            .map(|(x, _)| x)
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
        match self.dispatcher {
            Dispatcher::DeepEpLowLatency => {
                return PortLoads {
                    up_send_bytes: 0.0,
                    up_recv_bytes: 0.0,
                    nic_send_bytes: direct.nic_send_bytes + direct.up_send_bytes,
                    nic_recv_bytes: direct.nic_recv_bytes + direct.up_recv_bytes,
                }
            }
            Dispatcher::DeepEp if ep > g && total > 0.0 => {}
            _ => return direct,
        }
        let t = self.tokens_per_rank;
        let nic_send: f64 = n
            .node_hit
            .iter()
            .enumerate()
            .filter(|&(j, _)| j != node)
            .map(|(_, h)| t * h)
            .sum();
        let nic_recv = (ep - peers_here) as f64 * t * n.node_hit[node] / peers_here as f64;
        // remote copies for this node, shared over its GPUs, of which (g-1)/g move on
        let remote_in = n.node_load[node] * (ep - peers_here) as f64 / ep as f64;
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
        let shared = self.node_totals();
        let ports: Vec<PortLoads> = (0..ranks.max(1)).map(|r| self.ports_with(&shared, r)).collect();
        let nccl = (self.dispatcher == Dispatcher::AllToAll).then_some(self.layout);
        AllToAllLoads::from_ranks(&ports, self.crosses_nodes(), self.remote_peers(), nccl)
    }

    /// Peers in other nodes each rank pays a per-peer cost for: `ep - g` for NCCL's
    /// all-to-all; the other nodes for the gathering ring and DeepEP's kernels (one
    /// same-rail peer per remote node; the low-latency kernels post every RDMA write from
    /// one kernel, without NCCL's per-peer proxy work).
    pub fn remote_peers(&self) -> u32 {
        let (ep, g) = self.ep_g();
        if !self.crosses_nodes() {
            0
        } else if self.dispatcher == Dispatcher::AllToAll {
            (ep - g) as u32
        } else {
            ep.div_ceil(g) as u32 - 1
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::hardware::presets::test_cluster;
    use crate::network::all_to_all::direct;
    use crate::network::topology::Fabric;

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
            ("balanced, one node", vec![512.0; 8], 8, Dispatcher::AllToAll),
            ("skewed, one node", skewed(8, 1), 8, Dispatcher::AllToAll),
            ("hierarchical in one node", skewed(8, 2), 8, Dispatcher::DeepEp),
            ("balanced, 4 nodes", vec![300.0; 32], 8, Dispatcher::AllToAll),
            ("skewed, 4 nodes", skewed(32, 3), 8, Dispatcher::AllToAll),
            ("balanced, hierarchical", vec![300.0; 32], 8, Dispatcher::DeepEp),
            ("skewed, hierarchical", skewed(64, 4), 8, Dispatcher::DeepEp),
            ("partial last node", skewed(12, 5), 8, Dispatcher::DeepEp),
            ("one rank per node", skewed(16, 6), 1, Dispatcher::DeepEp),
            ("nothing routed", vec![0.0; 16], 4, Dispatcher::DeepEp),
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
                    node_limit: None,
                };
                for r in 0..ep {
                    let want = reference(
                        &loads,
                        ep,
                        g as usize,
                        bpa,
                        dispatcher == Dispatcher::DeepEp,
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
            dispatcher: Dispatcher::AllToAll,
            node_limit: None,
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
                dispatcher: Dispatcher::AllToAll,
                node_limit: None,
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

    /// The module's closed forms, balanced routing, every dispatcher, BF16 and FP8
    /// payloads, with and without a node limit (DeepSeek-V3's shape: EP64 over 8 nodes,
    /// top-8, M = 4).
    #[test]
    fn balanced_dispatch_bytes_follow_the_closed_forms() {
        let (ep, g, k, t, h) = (64u32, 8u32, 8u32, 4096.0, 7168.0);
        let n = (ep / g) as f64;
        let (epf, gf, kf) = (ep as f64, g as f64, k as f64);
        // FP8: one byte per element and a 4-byte scale per 128 elements
        assert_eq!(payload_bytes_per_token(h, true), 7168.0 + 224.0);
        assert_eq!(payload_bytes_per_token(h, false), 2.0 * 7168.0);
        let loads = vec![t * kf; ep as usize];
        let rel = |a: f64, b: f64| (a - b).abs() <= 1e-9 * b.abs().max(1.0);
        for fp8 in [false, true] {
            let b = payload_bytes_per_token(h, fp8);
            for limit in [None, Some(4u32), Some(1), Some(8)] {
                for d in Dispatcher::ALL {
                    let x = ExpertDispatch {
                        rank_assignments: &loads,
                        layout: GroupLayout {
                            size: ep,
                            members_per_node: g,
                        },
                        bytes_per_assignment: b,
                        tokens_per_rank: t,
                        top_k: k,
                        dispatcher: d,
                        node_limit: limit,
                    };
                    let p = x.ports(0);
                    let (nic, up) = match d {
                        Dispatcher::AllToAll => (t * kf * b * (epf - gf) / epf, t * kf * b * (gf - 1.0) / epf),
                        Dispatcher::AllGather => {
                            let all = t * b * (epf - 1.0);
                            (all / gf, all * (gf - 1.0) / gf)
                        }
                        Dispatcher::DeepEp => {
                            let free = 1.0 - (1.0 - 1.0 / n).powf(kf);
                            let hit = match limit {
                                Some(m) if (m as f64) < n => free.min(m as f64 / n),
                                _ => free,
                            };
                            // the direct scale-up part plus the forwarding of the node's
                            // remote copies: (g-1)/g of them, spread over g GPUs
                            let direct_up = t * kf * b * (gf - 1.0) / epf;
                            let fwd = t * kf * (epf - gf) / epf * (gf - 1.0) / gf * b;
                            (t * b * (n - 1.0) * hit, direct_up + fwd)
                        }
                        Dispatcher::DeepEpLowLatency => (t * kf * b * (epf - 1.0) / epf, 0.0),
                    };
                    for (got, want, what) in [
                        (p.nic_send_bytes, nic, "NIC send"),
                        (p.nic_recv_bytes, nic, "NIC receive"),
                        (p.up_send_bytes, up, "scale-up send"),
                        (p.up_recv_bytes, up, "scale-up receive"),
                    ] {
                        assert!(
                            rel(got, want),
                            "{d:?} fp8 {fp8} limit {limit:?} {what}: {got} vs {want}"
                        );
                    }
                }
            }
        }
        // DeepSeek-V3's node limit: a token crosses InfiniBand to M (N-1)/N = 3.5 remote
        // nodes on average instead of N (1 - (1 - 1/N)^k) = 4.6
        let d = ExpertDispatch {
            rank_assignments: &loads,
            layout: GroupLayout {
                size: ep,
                members_per_node: g,
            },
            bytes_per_assignment: 1.0,
            tokens_per_rank: 1.0,
            top_k: k,
            dispatcher: Dispatcher::DeepEp,
            node_limit: Some(4),
        };
        assert!(rel(d.ports(0).nic_send_bytes, 3.5));
        // a limit at or above the node count changes nothing
        let free = ExpertDispatch { node_limit: None, ..d };
        let wide = ExpertDispatch {
            node_limit: Some(8),
            ..d
        };
        assert_eq!(free.ports(3), wide.ports(3));
        assert!(free.ports(0).nic_send_bytes > 4.5);
    }

    /// A node limit moves fewer bytes for skewed loads too, and never more.
    #[test]
    fn a_node_limit_never_adds_bytes() {
        let loads = skewed(64, 11);
        for m in 1..=8u32 {
            let d = ExpertDispatch {
                rank_assignments: &loads,
                layout: GroupLayout {
                    size: 64,
                    members_per_node: 8,
                },
                bytes_per_assignment: 2.0,
                tokens_per_rank: 1000.0,
                top_k: 8,
                dispatcher: Dispatcher::DeepEp,
                node_limit: Some(m),
            };
            let free = ExpertDispatch { node_limit: None, ..d };
            for r in [0, 9, 63] {
                assert!(d.ports(r).nic_send_bytes <= free.ports(r).nic_send_bytes + 1e-9);
                // on average at most m nodes per token
                assert!(d.ports(r).nic_send_bytes <= 2.0 * 1000.0 * m as f64 + 1e-9);
            }
        }
    }
}
