//! The network of one simulated cluster: owns [`ClusterNetwork`], the one interface between
//! the training simulation and the network. It builds each representative rank's ports as
//! links of a [`FlowNetwork`] and turns the simulation's requests (a collective, a
//! point-to-point send, a MoE all-to-all) into flows over them; it also says what each would
//! take alone on an idle network (the search's bounds) and what the ports carried.
//!
//! Each rank has three ports, each a link per direction (transmit, receive): scale-up, NIC and
//! its share of the spine ([`super::topology`]). A collective's loads ([`collective_cost`])
//! become one flow per port tier over the rank's own transmit and receive links (the other
//! members are symmetric); a send runs from the sender's transmit links to the receiver's
//! receive links; a MoE all-to-all puts each of the representative's four port loads on its
//! link and waits for the busiest other rank's ports to drain ([`AllToAllLoads`]).
//!
//! On a heterogeneous cluster each rank's ports, collective charges and NCCL constants are
//! those of its GPU group ([`ClusterSpec::group_cluster`]); a send between two groups runs
//! NIC to NIC (through the sender's share of the cross-group fabric when it is slower), and a
//! collective whose members sit on several groups puts its NIC bytes through that share too.

use super::algorithm::Algorithm;
use super::all_to_all::AllToAllLoads;
use super::calibration::{constants_for, ModelConstants};
use super::collective::{collective_cost, CollectiveCost};
use super::flow::{Completed, FlowNetwork, LinkId};
use super::group::{CollectiveKind, GroupLayout};
use super::topology::{PortCapacities, Tier};
use super::tuner::{p2p, System};
use crate::engine::hash::FastMap;
use crate::hardware::fabric::CollectiveModel;
use crate::hardware::ClusterSpec;
use crate::units::SimTime;

/// One collective a rank takes part in.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct CollectiveRequest {
    /// The operation.
    pub kind: CollectiveKind,
    /// The group it runs over.
    pub layout: GroupLayout,
    /// The algorithm (`Auto`: NCCL-like choice per size).
    pub algorithm: Algorithm,
    /// The message, bytes (all-reduce input, all-gather output, reduce-scatter input).
    pub size_bytes: f64,
}

/// Where the two ranks of a point-to-point send sit.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum SendRoute {
    /// In one node: scale-up port to scale-up port.
    SameNode,
    /// Under one leaf, or any nodes of a non-blocking fabric: NIC to NIC.
    #[default]
    SameLeaf,
    /// Under different leaves of an oversubscribed fabric: NIC, spine, spine, NIC.
    CrossSpine,
}

impl SendRoute {
    /// The route between two ranks `stride_gpus` apart in rank order (ranks placed from a
    /// leaf boundary, as Megatron's order places adjacent pipeline stages `tp * dp` apart):
    /// [`SendRoute::SameNode`] when the placement puts them in one node, across the spine
    /// once the stride spans a leaf's nodes on an oversubscribed fabric.
    pub fn between(cluster: &ClusterSpec, same_node: bool, stride_gpus: u32) -> SendRoute {
        let stride_nodes = stride_gpus / cluster.gpus_per_node.max(1);
        if same_node {
            SendRoute::SameNode
        } else if PortCapacities::of(cluster).spine_oversubscribed && stride_nodes >= cluster.effective_nodes_per_leaf()
        {
            SendRoute::CrossSpine
        } else {
            SendRoute::SameLeaf
        }
    }
}

/// One point-to-point send (a pipeline send).
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct SendRequest {
    /// Where the two ranks sit.
    pub route: SendRoute,
    /// The communicator the send is posted on (Megatron: the pipeline group): under the NCCL
    /// model its size sets the channels per peer.
    pub group: GroupLayout,
    /// Bytes.
    pub bytes: f64,
}

/// A started collective.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Started {
    /// Bytes the rank sends over all its ports.
    pub sent_bytes: f64,
    /// Set when the collective moves no bytes: it is done at `ready_at`.
    pub done: Option<Completed>,
}

/// A rank's ports: transmit and receive link of each.
#[derive(Clone, Copy, Debug)]
struct RankPorts {
    up_tx: LinkId,
    up_rx: LinkId,
    nic_tx: LinkId,
    nic_rx: LinkId,
    /// Leaf-to-spine and spine-to-leaf share of this rank (used only when oversubscribed).
    spine_tx: LinkId,
    spine_rx: LinkId,
    /// Share of the cross-group fabric (only with a slower one between groups).
    cross_tx: Option<LinkId>,
    /// The rank's GPU group ([`ClusterNetwork::groups`]).
    group: u8,
}

/// What the ranks of one GPU group see of the network.
#[derive(Clone, Debug)]
struct GroupNet {
    cluster: ClusterSpec,
    caps: PortCapacities,
    /// The NCCL model's constants for this group (`None`: the hop model).
    nccl: Option<ModelConstants>,
}

impl GroupNet {
    fn of(cluster: ClusterSpec) -> GroupNet {
        GroupNet {
            caps: PortCapacities::of(&cluster),
            nccl: (cluster.fabric.model == CollectiveModel::Nccl).then(|| constants_for(&cluster)),
            cluster,
        }
    }
}

#[derive(Clone, Debug)]
struct Charge {
    cost: CollectiveCost,
    sent_bytes: f64,
    latency: SimTime,
}

/// The simulation's network: ports of the representative ranks on a [`FlowNetwork`], and
/// the cluster they belong to.
#[derive(Clone, Debug)]
pub struct ClusterNetwork {
    /// Per GPU group (one on a homogeneous cluster); the idle-time queries use the first.
    groups: Vec<GroupNet>,
    /// One hop: scale-up, NIC to NIC under a leaf, NIC to NIC across the spine, seconds.
    up_latency_s: f64,
    out_latency_s: f64,
    spine_latency_s: f64,
    flows: FlowNetwork,
    ports: Vec<RankPorts>,
    /// Collective charges by group and request: a run has few distinct collectives.
    charges: FastMap<(u8, CollectiveKind, GroupLayout, Algorithm, u64), Charge>,
}

impl ClusterNetwork {
    /// The network of `ranks` representative ranks of `cluster` (0 ranks: for the idle-time
    /// queries only).
    pub fn new(cluster: &ClusterSpec, ranks: u32) -> ClusterNetwork {
        Self::with_groups(cluster, &vec![0; ranks as usize])
    }

    /// The network of representative ranks whose GPU groups ([`ClusterSpec::groups`]) are
    /// `rank_groups` (all 0 on a homogeneous cluster).
    pub fn with_groups(cluster: &ClusterSpec, rank_groups: &[u8]) -> ClusterNetwork {
        let n_groups = cluster.groups.len().max(1);
        let groups: Vec<GroupNet> = (0..n_groups).map(|g| GroupNet::of(cluster.group_cluster(g))).collect();
        let cross = cluster
            .cross_group_bytes_per_s_per_gpu()
            .map(|b| b * cluster.scale_out_efficiency);
        let mut flows = FlowNetwork::new();
        let ports = rank_groups
            .iter()
            .map(|&g| {
                let group = (g as usize).min(n_groups - 1);
                let caps = groups[group].caps;
                RankPorts {
                    up_tx: flows.add_link(caps.up_bytes_per_s),
                    up_rx: flows.add_link(caps.up_bytes_per_s),
                    nic_tx: flows.add_link(caps.nic_bytes_per_s),
                    nic_rx: flows.add_link(caps.nic_bytes_per_s),
                    spine_tx: flows.add_link(caps.spine_bytes_per_s),
                    spine_rx: flows.add_link(caps.spine_bytes_per_s),
                    cross_tx: cross.filter(|_| n_groups > 1).map(|b| flows.add_link(b)),
                    group: group as u8,
                }
            })
            .collect();
        ClusterNetwork {
            groups,
            up_latency_s: cluster.scale_up_latency_us * 1e-6,
            out_latency_s: cluster.scale_out_latency_us * 1e-6,
            spine_latency_s: (cluster.scale_out_latency_us + 2.0 * cluster.topology.switch_latency_us) * 1e-6,
            flows,
            ports,
            charges: FastMap::default(),
        }
    }

    /// What each rank's ports sustain (of the first GPU group).
    pub fn capacities(&self) -> PortCapacities {
        self.groups[0].caps
    }

    /// The per-rank port loads and latency of a collective (see [`collective_cost`]), on
    /// the first GPU group.
    pub fn collective_cost(&self, req: &CollectiveRequest) -> CollectiveCost {
        collective_cost(
            req.kind,
            req.algorithm,
            req.layout,
            req.size_bytes,
            &self.groups[0].cluster,
        )
    }

    fn charge(&mut self, group: u8, req: &CollectiveRequest) -> &Charge {
        let key = (group, req.kind, req.layout, req.algorithm, req.size_bytes.to_bits());
        let cluster = &self.groups[group as usize].cluster;
        self.charges.entry(key).or_insert_with(|| {
            let cost = collective_cost(req.kind, req.algorithm, req.layout, req.size_bytes, cluster);
            Charge {
                sent_bytes: cost.sent_bytes(),
                latency: SimTime::from_secs(cost.latency_s),
                cost,
            }
        })
    }

    /// Starts `rank`'s part of a collective at `now`: one flow per port tier over the rank's
    /// transmit and receive links, then the collective's latency. Completes as `tag`.
    ///
    /// `across_groups`: the members sit on more than one GPU group. A ring runs at its
    /// slowest edge's rate, so every byte on the rank's NIC then also crosses its share of
    /// the cross-group fabric (when one is set).
    pub fn start_collective(
        &mut self,
        now: SimTime,
        rank: u32,
        req: &CollectiveRequest,
        tag: u64,
        across_groups: bool,
    ) -> Started {
        let p = self.ports[rank as usize];
        let charge = self.charge(p.group, req);
        let (sent_bytes, latency) = (charge.sent_bytes, charge.latency);
        let cross = p.cross_tx.filter(|_| across_groups);
        let mut paths = [[0 as LinkId; 5]; 3];
        let mut lens = [0usize; 3];
        let mut bytes = [0.0f64; 3];
        let n = charge.cost.loads.len().min(3);
        for (k, &(tier, b)) in charge.cost.loads.iter().take(3).enumerate() {
            let (mut path, mut len) = match tier {
                Tier::Leaf => ([p.nic_tx, p.nic_rx, 0, 0, 0], 2),
                Tier::Spine => ([p.nic_tx, p.nic_rx, p.spine_tx, p.spine_rx, 0], 4),
                _ => ([p.up_tx, p.up_rx, 0, 0, 0], 2),
            };
            if let (Some(x), Tier::Leaf | Tier::Spine) = (cross, tier) {
                path[len] = x;
                len += 1;
            }
            paths[k] = path;
            lens[k] = len;
            bytes[k] = b;
        }
        let flows: [(&[LinkId], f64); 3] = [
            (&paths[0][..lens[0]], bytes[0]),
            (&paths[1][..lens[1]], bytes[1]),
            (&paths[2][..lens[2]], bytes[2]),
        ];
        let done = self.flows.start_transfer(now, &flows[..n], latency, tag);
        Started { sent_bytes, done }
    }

    /// Starts a point-to-point send from rank `from` to rank `to`. Completes as `tag` after
    /// the send's latency ([`ClusterNetwork::send_idle_s`]).
    pub fn start_send(&mut self, now: SimTime, from: u32, to: u32, req: &SendRequest, tag: u64) -> Option<Completed> {
        let (s, d) = (self.ports[from as usize], self.ports[to as usize]);
        let (path, n): ([LinkId; 4], usize) = match req.route {
            // between GPU groups: NIC to NIC, through the cross-group fabric if slower
            _ if s.group != d.group => match s.cross_tx {
                Some(x) => ([s.nic_tx, x, d.nic_rx, 0], 3),
                None => ([s.nic_tx, d.nic_rx, 0, 0], 2),
            },
            SendRoute::SameNode => ([s.up_tx, d.up_rx, 0, 0], 2),
            SendRoute::CrossSpine => ([s.nic_tx, s.spine_tx, d.spine_rx, d.nic_rx], 4),
            SendRoute::SameLeaf => ([s.nic_tx, d.nic_rx, 0, 0], 2),
        };
        let req = SendRequest {
            route: if s.group != d.group && req.route == SendRoute::SameNode {
                SendRoute::SameLeaf
            } else {
                req.route
            },
            ..*req
        };
        let latency = SimTime::from_secs(self.send_latency_in(s.group, &req));
        self.flows.start_transfer(now, &[(&path[..n], req.bytes)], latency, tag)
    }

    /// Starts a MoE all-to-all: the representative `rank`'s four port loads as flows on its
    /// own links, and no completion before the busiest other rank's ports have drained on
    /// idle links (they carry nothing else), plus one hop. Completes as `tag`.
    pub fn start_all_to_all(&mut self, now: SimTime, rank: u32, a: &AllToAllLoads, tag: u64) -> Option<Completed> {
        let p = self.ports[rank as usize];
        let latency = SimTime::from_secs(self.all_to_all_latency_in(p.group, a));
        let caps = self.groups[p.group as usize].caps;
        let others_s = (a.others_max_up_bytes / caps.up_bytes_per_s).max(a.others_max_nic_bytes / caps.nic_bytes_per_s);
        let not_before = now + SimTime::from_secs(others_s) + latency;
        let (up_tx, up_rx, nic_tx, nic_rx) = ([p.up_tx], [p.up_rx], [p.nic_tx], [p.nic_rx]);
        let all: [(&[LinkId], f64); 4] = [
            (&up_tx[..], a.ports.up_send_bytes),
            (&up_rx[..], a.ports.up_recv_bytes),
            (&nic_tx[..], a.ports.nic_send_bytes),
            (&nic_rx[..], a.ports.nic_recv_bytes),
        ];
        let mut flows: [(&[LinkId], f64); 4] = all;
        let mut n = 0;
        for f in all {
            if f.1 > 0.0 {
                flows[n] = f;
                n += 1;
            }
        }
        self.flows
            .start_transfer_not_before(now, &flows[..n], latency, not_before, tag)
    }

    /// The send's time beyond its bytes at the route's full rate: the hop latency (hop
    /// model), or NCCL's p2p time (floor, pipeline fill, channels per peer) less that.
    fn send_latency_s(&self, req: &SendRequest) -> f64 {
        self.send_latency_in(0, req)
    }

    /// [`ClusterNetwork::send_latency_s`] from a rank of GPU group `group`.
    fn send_latency_in(&self, group: u8, req: &SendRequest) -> f64 {
        let g = &self.groups[group as usize];
        let Some(c) = &g.nccl else {
            return match req.route {
                SendRoute::SameNode => self.up_latency_s,
                SendRoute::SameLeaf => self.out_latency_s,
                SendRoute::CrossSpine => self.spine_latency_s,
            };
        };
        let remote = req.route != SendRoute::SameNode;
        let sys = System::new(&g.cluster, req.group);
        let cap = if remote {
            g.caps.nic_bytes_per_s
        } else {
            g.caps.up_bytes_per_s
        };
        (p2p::send_s(&sys, req.bytes, remote, c) - req.bytes / cap).max(0.0)
    }

    /// The all-to-all's time beyond its ports at full rate: one hop (hop model), or NCCL's
    /// fixed cost, which grows with the remote peers, plus its lower NIC efficiency.
    fn all_to_all_latency_s(&self, a: &AllToAllLoads) -> f64 {
        self.all_to_all_latency_in(0, a)
    }

    /// [`ClusterNetwork::all_to_all_latency_s`] for a rank of GPU group `group`.
    fn all_to_all_latency_in(&self, group: u8, a: &AllToAllLoads) -> f64 {
        let g = &self.groups[group as usize];
        let Some(c) = &g.nccl else {
            return if a.crosses_nodes {
                self.out_latency_s
            } else {
                self.up_latency_s
            };
        };
        let nic = a
            .ports
            .nic_send_bytes
            .max(a.ports.nic_recv_bytes)
            .max(a.others_max_nic_bytes);
        let slower = nic / g.caps.nic_bytes_per_s * (1.0 / c.all_to_all_net_efficiency - 1.0);
        let remote = if a.crosses_nodes { a.remote_peers.max(1) } else { 0 };
        let fill = match a.nccl_group {
            Some(layout) if remote > 0 => {
                p2p::all_to_all_fill_s(&System::new(&g.cluster, layout), nic / f64::from(remote), remote, c)
            }
            _ => 0.0,
        };
        p2p::all_to_all_latency_s(remote, c) + fill + slower
    }

    /// When the next flow will finish at current rates, if any flow is active.
    pub fn next_completion(&mut self) -> Option<SimTime> {
        self.flows.next_completion()
    }

    /// Advances to `now` and returns the transfers done by then (sorted by tag).
    pub fn advance(&mut self, now: SimTime) -> Vec<Completed> {
        self.flows.advance(now)
    }

    /// [`ClusterNetwork::advance`] into `done` (cleared first), reusing its buffer.
    pub fn advance_into(&mut self, now: SimTime, done: &mut Vec<Completed>) {
        self.flows.advance_into(now, done)
    }

    /// Bytes the ranks sent through their `port` (scale-up, NIC as [`Tier::Leaf`], or spine),
    /// summed over ranks, up to the last update of the flows; 0 for tiers without a port.
    pub fn bytes_sent(&self, port: Tier) -> f64 {
        let link = |p: &RankPorts| match port {
            Tier::ScaleUp => Some(p.up_tx),
            Tier::Leaf => Some(p.nic_tx),
            Tier::Spine => Some(p.spine_tx),
            _ => None,
        };
        self.ports
            .iter()
            .filter_map(|p| link(p).map(|l| self.flows.bytes_carried(l)))
            .sum()
    }

    /// Seconds a collective takes alone on the network: its latency plus its busiest port's
    /// bytes at that port's full capacity (a lower bound of any max-min fair share of it).
    pub fn collective_idle_s(&self, req: &CollectiveRequest) -> f64 {
        self.cost_idle_s(&self.collective_cost(req))
    }

    /// Seconds of a charge alone on the network (see [`ClusterNetwork::collective_idle_s`]).
    pub fn cost_idle_s(&self, cost: &CollectiveCost) -> f64 {
        let (mut up, mut nic, mut spine) = (0.0, 0.0, 0.0);
        for (tier, b) in &cost.loads {
            match tier {
                Tier::Leaf => nic += b,
                Tier::Spine => {
                    nic += b;
                    spine += b;
                }
                _ => up += b,
            }
        }
        let c = &self.groups[0].caps;
        cost.latency_s
            + (up / c.up_bytes_per_s)
                .max(nic / c.nic_bytes_per_s)
                .max(spine / c.spine_bytes_per_s)
    }

    /// Seconds a send takes alone on the network: its bytes at the route's rate plus its
    /// latency (under the NCCL model, on a non-blocking route, NCCL's p2p time).
    pub fn send_idle_s(&self, req: &SendRequest) -> f64 {
        let c = &self.groups[0].caps;
        let bytes_per_s = match req.route {
            SendRoute::SameNode => c.up_bytes_per_s,
            SendRoute::SameLeaf => c.nic_bytes_per_s,
            SendRoute::CrossSpine => c.spine_bytes_per_s,
        };
        req.bytes / bytes_per_s + self.send_latency_s(req)
    }

    /// Seconds a MoE all-to-all takes alone on the network: each of the representative's
    /// ports and the busiest other rank's alone at capacity, plus one hop.
    pub fn all_to_all_idle_s(&self, a: &AllToAllLoads) -> f64 {
        let c = &self.groups[0].caps;
        let ports = [
            a.ports.up_send_bytes / c.up_bytes_per_s,
            a.ports.up_recv_bytes / c.up_bytes_per_s,
            a.ports.nic_send_bytes / c.nic_bytes_per_s,
            a.ports.nic_recv_bytes / c.nic_bytes_per_s,
            a.others_max_up_bytes / c.up_bytes_per_s,
            a.others_max_nic_bytes / c.nic_bytes_per_s,
        ];
        ports.into_iter().fold(0.0, f64::max) + self.all_to_all_latency_s(a)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::hardware::presets::test_cluster;
    use crate::network::all_to_all::PortLoads;

    fn run_to_end(net: &mut ClusterNetwork) -> Vec<Completed> {
        let mut done = Vec::new();
        while let Some(t) = net.next_completion() {
            done.extend(net.advance(t));
        }
        done
    }

    fn close(a: f64, b: f64) -> bool {
        (a - b).abs() <= 1e-9 * b.abs().max(1e-12)
    }

    /// Alone on the network, a collective takes its idle time; its bytes show on the ports.
    #[test]
    fn a_collective_alone_takes_its_idle_time_and_its_bytes_show_on_the_ports() {
        let mut c = test_cluster(1024, 8);
        c.oversubscription = 4.0;
        c.nodes_per_leaf = 2;
        let mut net = ClusterNetwork::new(&c, 2);
        let req = CollectiveRequest {
            kind: CollectiveKind::AllReduce,
            layout: GroupLayout {
                size: 64,
                members_per_node: 8,
            },
            algorithm: Algorithm::Ring,
            size_bytes: 1e9,
        };
        let started = net.start_collective(SimTime::ZERO, 1, &req, 7, false);
        assert!(started.done.is_none());
        let done = run_to_end(&mut net);
        assert_eq!(done.len(), 1);
        assert_eq!(done[0].tag, 7);
        assert!(close(done[0].ready_at.as_secs(), net.collective_idle_s(&req)));
        let cost = net.collective_cost(&req);
        assert_eq!(started.sent_bytes, cost.sent_bytes());
        let on = |t: Tier| cost.loads.iter().filter(|(x, _)| *x == t).map(|(_, b)| b).sum::<f64>();
        assert!(close(net.bytes_sent(Tier::ScaleUp), on(Tier::ScaleUp)));
        assert!(close(net.bytes_sent(Tier::Leaf), on(Tier::Leaf) + on(Tier::Spine)));
        assert!(close(net.bytes_sent(Tier::Spine), on(Tier::Spine)));
        assert!(on(Tier::Spine) > 0.0);
        // a group of one moves nothing and is done after no time
        let solo = CollectiveRequest {
            layout: GroupLayout {
                size: 1,
                members_per_node: 1,
            },
            ..req
        };
        let s = net.start_collective(SimTime(5), 0, &solo, 8, false);
        assert_eq!(s.done.map(|d| d.ready_at), Some(SimTime(5)));
    }

    #[test]
    fn sends_take_their_route() {
        let mut c = test_cluster(256, 8);
        c.oversubscription = 4.0;
        c.nodes_per_leaf = 2;
        c.topology.switch_latency_us = 0.5;
        let caps = PortCapacities::of(&c);
        let bytes = 1e8;
        for (route, bytes_per_s, hop_us) in [
            (SendRoute::SameNode, caps.up_bytes_per_s, 1.5),
            (SendRoute::SameLeaf, caps.nic_bytes_per_s, 4.0),
            (SendRoute::CrossSpine, caps.spine_bytes_per_s, 5.0),
        ] {
            let mut net = ClusterNetwork::new(&c, 2);
            let req = SendRequest {
                route,
                group: GroupLayout {
                    size: 8,
                    members_per_node: 1,
                },
                bytes,
            };
            assert!(net.start_send(SimTime::ZERO, 0, 1, &req, 1).is_none());
            let done = run_to_end(&mut net);
            let want = bytes / bytes_per_s + hop_us * 1e-6;
            assert!(close(done[0].ready_at.as_secs(), want), "{route:?}");
            assert!(close(net.send_idle_s(&req), want), "{route:?}");
            let port = if route == SendRoute::SameNode {
                Tier::ScaleUp
            } else {
                Tier::Leaf
            };
            assert!(close(net.bytes_sent(port), bytes));
        }
        // stages 4 nodes apart under 2-node leaves cross the spine, but only when it is
        // oversubscribed, and never when they share a node
        assert_eq!(SendRoute::between(&c, false, 32), SendRoute::CrossSpine);
        assert_eq!(SendRoute::between(&c, false, 8), SendRoute::SameLeaf);
        assert_eq!(SendRoute::between(&c, true, 32), SendRoute::SameNode);
        c.oversubscription = 1.0;
        assert_eq!(SendRoute::between(&c, false, 32), SendRoute::SameLeaf);
    }

    /// The representative's ports drain first; the op still waits for the busiest other
    /// rank's ports, then one hop.
    #[test]
    fn an_all_to_all_waits_for_the_busiest_other_rank() {
        let c = test_cluster(64, 8);
        let caps = PortCapacities::of(&c);
        let a = AllToAllLoads {
            ports: PortLoads {
                up_send_bytes: 1e6,
                up_recv_bytes: 2e6,
                nic_send_bytes: 3e6,
                nic_recv_bytes: 0.0,
            },
            others_max_up_bytes: 0.0,
            others_max_nic_bytes: 9e7,
            crosses_nodes: true,
            remote_peers: 56,
            nccl_group: None,
        };
        let mut net = ClusterNetwork::new(&c, 1);
        assert!(net.start_all_to_all(SimTime::ZERO, 0, &a, 3).is_none());
        let done = run_to_end(&mut net);
        let want = 9e7 / caps.nic_bytes_per_s + 4e-6;
        assert!(close(done[0].ready_at.as_secs(), want));
        assert!(close(net.all_to_all_idle_s(&a), want));
        // nothing to move here, and nobody to wait for: one scale-up hop
        let idle = AllToAllLoads {
            crosses_nodes: false,
            ..AllToAllLoads::default()
        };
        let d = net.start_all_to_all(SimTime(10), 0, &idle, 4).unwrap();
        assert_eq!(d.ready_at, SimTime(10) + SimTime::from_secs(1.5e-6));
    }

    /// NCCL's all-to-all (the direct dispatcher) pays its remote sends' chunk fill in
    /// training as in nccl-tests; a kernel of its own (DeepEP) does not.
    #[test]
    fn the_direct_all_to_all_pays_its_sends_fill() {
        let mut c = test_cluster(64, 8);
        c.fabric = crate::hardware::fabric::FabricSpec::of(crate::hardware::fabric::fabric_preset("ib-ndr").unwrap());
        let layout = GroupLayout {
            size: 64,
            members_per_node: 8,
        };
        let a = AllToAllLoads {
            ports: PortLoads {
                nic_send_bytes: 56.0 * 4e6,
                nic_recv_bytes: 56.0 * 4e6,
                ..PortLoads::default()
            },
            crosses_nodes: true,
            remote_peers: 56,
            ..AllToAllLoads::default()
        };
        let direct = AllToAllLoads {
            nccl_group: Some(layout),
            ..a
        };
        let net = ClusterNetwork::new(&c, 1);
        let consts = crate::network::calibration::constants_for(&c);
        let fill = p2p::all_to_all_fill_s(&System::new(&c, layout), 4e6, 56, &consts);
        assert!(fill > 0.0);
        let (d, n) = (net.all_to_all_idle_s(&direct), net.all_to_all_idle_s(&a));
        assert!(close(d, n + fill), "{d} vs {n} + {fill}");
    }

    /// A ring exchange over 16 nodes, one GPU per node (a CP ring with TP 8): posted on the
    /// whole group NCCL gives each remote peer one p2p channel; on the hop's own two-rank
    /// communicator two, so the same bytes take about half the time at large sizes.
    #[test]
    fn a_ring_hop_on_its_own_pair_gets_the_channels_of_two_ranks() {
        let mut c = test_cluster(128, 8);
        c.fabric = crate::hardware::fabric::FabricSpec::default();
        c.nics_per_node = 8;
        c.nic_gbit_per_s = 400.0;
        let net = ClusterNetwork::new(&c, 1);
        let group = GroupLayout {
            size: 16,
            members_per_node: 1,
        };
        let pair = group.ring_pair();
        assert_eq!((pair.size, pair.members_per_node), (2, 1));
        let t = |layout, size_bytes| {
            net.collective_idle_s(&CollectiveRequest {
                kind: CollectiveKind::SendRecv,
                layout,
                algorithm: Algorithm::Auto,
                size_bytes,
            })
        };
        // 256 MiB: bytes / (1 x 14.8 GB/s) on the group, / (2 x 14.8 GB/s) on the pair
        // (both under the NIC's 50 GB/s), plus the same 30 us floor and pipeline fill:
        // just under 2
        let s = 256.0 * 1024.0 * 1024.0;
        let ratio = t(group, s) / t(pair, s);
        assert!((1.8..2.05).contains(&ratio), "{ratio}");
        // the pair never loses, and a group of two is its own pair
        for s in [8.0, 1e4, 1e6, 1e8] {
            assert!(t(pair, s) <= t(group, s) * (1.0 + 1e-12), "{s}");
        }
        let two = GroupLayout {
            size: 2,
            members_per_node: 2,
        };
        assert_eq!(two.ring_pair(), two);
        let in_node = GroupLayout {
            size: 8,
            members_per_node: 8,
        };
        assert_eq!(in_node.ring_pair(), two);
    }
}
