//! A collective as the training simulation charges one rank for it: owns [`CollectiveCost`]
//! (bytes per port and a latency), [`on_ports`] (an algorithm's phases folded onto a rank's
//! ports), [`collective_cost`] and [`ring_cost`]. Re-exports the collective vocabulary of
//! [`super::group`] ([`CollectiveKind`], [`GroupLayout`], the ring's counts).
//!
//! The simulation runs one transfer per collective, so the phases of the algorithm merge:
//! scale-up, NVLS and torus bytes go on the scale-up port (NVLS bytes scaled so that they take
//! their time at the scale-up efficiency), leaf bytes on the NIC ([`Tier::Leaf`]), spine and
//! core bytes on the NIC and the spine port ([`Tier::Spine`]) when the spine is
//! oversubscribed, else on the NIC: a non-blocking spine never limits a flow its NIC does not.
//! The latency is the sum of the phases'.
//!
//! ## Leaf-spine oversubscription
//!
//! Nodes hang off leaf switches, `P = nodes_per_leaf` consecutive nodes per leaf; leaves
//! meet at the spine, whose capacity per GPU is the NIC's divided by the oversubscription
//! ratio `r`. A group spanning `N` nodes (placed consecutively from a leaf boundary, as
//! Megatron's rank order does) lies on `L = ceil(N/P)` leaves. The ring
//! ([`super::decompose::ring`]) visits the nodes in order, so of its `N` node-to-node edges
//! exactly `L` join two leaves (`L-1` between consecutive leaves plus the wrap-around edge
//! from the last leaf back to the first) when `L > 1`, and none when `L = 1`. Every
//! node-to-node edge carries the same bytes and NCCL's channels spread them over the node's
//! NICs, so of the `k*S/g` bytes a GPU's NIC sends, on average a fraction `L/N` crosses the
//! spine: `k*S/g * L/N` spine bytes per GPU. Averaging over nodes is what the single
//! representative needs, and it is exact for a leaf's pooled uplinks (ECMP): a leaf's `P*g`
//! GPUs send `P*g * k*S/g * L/N = k*S` (one ring edge, as `N/L = P`) up through `P*g*B/r` of
//! uplink, the same ratio as one GPU sending `k*S/g * L/N` through `B/r`. Those bytes become
//! a flow over the NIC and the spine port; the rest of the NIC bytes stay under the leaf.
//! Hence a ring is slowed by the spine only when `r > N/L`, i.e. roughly `r > P`: rings are
//! spine friendly, unlike all-to-all or trees, and the model says so instead of charging
//! every NIC byte to the spine.

use super::algorithm::{cost, AlgoCost, Algorithm};
use super::calibration::constants_for;
use super::topology::{Fabric, PortCapacities, Tier};
use super::tuner::{self, Choice, Protocol, System};
use crate::hardware::cluster::TopologySpec;
use crate::hardware::fabric::CollectiveModel;
use crate::hardware::ClusterSpec;

pub use super::group::{ring_bytes_per_rank, ring_steps, CollectiveKind, GroupLayout};

/// The per-rank cost of one collective on the simulation's ports.
#[derive(Clone, Debug, PartialEq)]
pub struct CollectiveCost {
    /// Bytes each rank sends per port tier: [`Tier::ScaleUp`] (the scale-up port),
    /// [`Tier::Leaf`] (the NIC), [`Tier::Spine`] (the NIC, then the spine port).
    pub loads: Vec<(Tier, f64)>,
    /// Latency term, seconds.
    pub latency_s: f64,
}

impl CollectiveCost {
    /// Bytes the rank sends over all its ports.
    pub fn sent_bytes(&self) -> f64 {
        self.loads.iter().map(|(_, b)| b).sum()
    }
}

/// The phases of `c` folded onto a rank's ports of `cluster` (module docs).
pub fn on_ports(c: &AlgoCost, cluster: &ClusterSpec) -> CollectiveCost {
    let f = Fabric::new(cluster);
    let spine_port = PortCapacities::of(cluster).spine_oversubscribed;
    let (mut up, mut out, mut cross) = (0.0, 0.0, 0.0);
    for p in &c.phases {
        for &(t, b) in &p.loads {
            match t {
                Tier::ScaleUp | Tier::Torus => up += b,
                Tier::Nvls => up += b * f.up_bytes_per_s / f.nvls_bytes_per_s,
                Tier::Leaf => out += b,
                Tier::Spine | Tier::Core => {
                    if spine_port {
                        cross += b
                    } else {
                        out += b
                    }
                }
            }
        }
    }
    let mut loads = Vec::new();
    if out > 0.0 || cross > 0.0 {
        loads.push((Tier::Leaf, out));
    }
    if cross > 0.0 {
        loads.push((Tier::Spine, cross));
    }
    if up > 0.0 {
        loads.push((Tier::ScaleUp, up));
    }
    CollectiveCost {
        loads,
        latency_s: c.latency_s(),
    }
}

/// A collective under the NCCL model: what ran, its time on an idle network and its charge.
#[derive(Clone, Debug, PartialEq)]
pub struct NcclCharge {
    /// The algorithm and protocol NCCL's tuner (or the forced algorithm) ran.
    pub choice: Choice,
    /// The model's time on an idle, non-blocking network, seconds.
    pub time_s: f64,
    /// Port loads (wire bytes: the protocol's flags included) and the latency that makes
    /// the loads at the ports' full rate take `time_s`.
    pub cost: CollectiveCost,
}

/// Seconds the ports need for `c` at full rate, the spine as fast as the NIC.
fn port_time_s(c: &CollectiveCost, caps: &PortCapacities) -> f64 {
    let (mut up, mut nic) = (0.0, 0.0);
    for &(t, b) in &c.loads {
        if t.is_scale_out() {
            nic += b;
        } else {
            up += b;
        }
    }
    (up / caps.up_bytes_per_s).max(nic / caps.nic_bytes_per_s)
}

/// One collective under the NCCL model ([`super::tuner`]): the tuner's choice (or the
/// forced algorithm, `protocol` the forced protocol) timed by its closed form; the choice's
/// decomposition, times the protocol's wire factor, folded onto the ports; the latency the
/// rest of the time. Errors: an algorithm NCCL does not run (hierarchical, halving-doubling,
/// pairwise; a torus), one the collective or hardware cannot run, a protocol the algorithm
/// does not have.
pub fn nccl_cost(
    kind: CollectiveKind,
    algorithm: Algorithm,
    protocol: Option<Protocol>,
    layout: GroupLayout,
    size_bytes: f64,
    cluster: &ClusterSpec,
) -> Result<NcclCharge, String> {
    let forced = algorithm.nccl().map_err(|_| {
        format!(
            "--algo {} is not an NCCL algorithm: the hop model times it",
            algorithm.name()
        )
    })?;
    if !cluster.topology.torus.is_empty() {
        return Err("a torus has no NCCL model: the hop model times it".into());
    }
    // the checks of the decomposition (an all-gather tree, NVLS on A100, ...)
    if algorithm != Algorithm::Auto {
        cost(kind, algorithm, layout, size_bytes, cluster)?;
    }
    if algorithm == Algorithm::CollNet && !cluster.fabric.sharp {
        return Err(
            "--algo collnet needs in-network reduction: set sharp = true in [cluster.network] (or --sharp)".into(),
        );
    }
    let sys = System::new(cluster, layout);
    if let Some(p) = protocol {
        let c = tuner::candidates(&sys, kind, forced);
        if !c.as_slice().iter().any(|x| x.protocol == p) {
            return Err(format!(
                "--protocol {}: {} {} runs {} here",
                p.name(),
                kind.name(),
                algorithm.name(),
                c.as_slice()
                    .iter()
                    .map(|x| format!("{}/{}", x.algorithm.name(), x.protocol.name()))
                    .collect::<Vec<_>>()
                    .join(", ")
            ));
        }
    }
    let consts = constants_for(cluster);
    let pred = tuner::predict(&sys, kind, size_bytes, forced, protocol, &consts);
    let ran = match pred.choice.algorithm {
        tuner::NcclAlgorithm::Nvls if sys.domains > 1 => Algorithm::NvlsTree,
        a => Algorithm::of_nccl(a),
    };
    let mut cost = on_ports(&cost(kind, ran, layout, size_bytes, cluster)?, cluster);
    let wire = pred.choice.protocol.wire_factor();
    for l in cost.loads.iter_mut() {
        l.1 *= wire;
    }
    cost.latency_s = (pred.time_s - port_time_s(&cost, &PortCapacities::of(cluster))).max(0.0);
    Ok(NcclCharge {
        choice: pred.choice,
        time_s: pred.time_s,
        cost,
    })
}

/// Per-rank port loads and latency of one collective under `algorithm`, the way the training
/// simulation charges it. NCCL model: [`nccl_cost`] (NCCL's own choice when the forced
/// algorithm cannot run here). Hop model, and algorithms NCCL does not run: the algorithm's
/// decomposition on the cluster's fabric folded onto the ports, or [`ring_cost`] when the
/// algorithm cannot run this collective here.
pub fn collective_cost(
    kind: CollectiveKind,
    algorithm: Algorithm,
    layout: GroupLayout,
    size_bytes: f64,
    cluster: &ClusterSpec,
) -> CollectiveCost {
    if cluster.fabric.model == CollectiveModel::Nccl && cluster.topology.torus.is_empty() && algorithm.nccl().is_ok() {
        if let Ok(c) = nccl_cost(kind, algorithm, None, layout, size_bytes, cluster) {
            return c.cost;
        }
        if let Ok(c) = nccl_cost(kind, Algorithm::Auto, None, layout, size_bytes, cluster) {
            return c.cost;
        }
    }
    match cost(kind, algorithm, layout, size_bytes, cluster) {
        Ok(c) => on_ports(&c, cluster),
        Err(_) => ring_cost(kind, layout, size_bytes, cluster),
    }
}

/// The ring of `size_bytes` (the full buffer: for all-gather the gathered output, for
/// reduce-scatter the input) on the cluster's leaf-spine fabric (its other topology keys
/// set aside), folded onto the ports.
///
/// An all-to-all is no ring: it is charged as NCCL runs it, every peer at once
/// ([`Algorithm::Direct`]).
pub fn ring_cost(kind: CollectiveKind, layout: GroupLayout, size_bytes: f64, cluster: &ClusterSpec) -> CollectiveCost {
    if kind == CollectiveKind::AllToAll {
        let torus_free = ClusterSpec {
            topology: TopologySpec {
                torus: Vec::new(),
                ..cluster.topology.clone()
            },
            ..cluster.clone()
        };
        let direct = cost(kind, Algorithm::Direct, layout, size_bytes, &torus_free).unwrap_or(AlgoCost {
            algorithm: Algorithm::Direct,
            phases: vec![],
        });
        return on_ports(&direct, cluster);
    }
    let flat;
    let c = if cluster.topology == TopologySpec::default() {
        cluster
    } else {
        flat = ClusterSpec {
            topology: TopologySpec::default(),
            ..cluster.clone()
        };
        &flat
    };
    match cost(kind, Algorithm::Ring, layout, size_bytes, c) {
        Ok(ring) => on_ports(&ring, c),
        Err(_) => CollectiveCost {
            loads: vec![],
            latency_s: 0.0,
        },
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::hardware::presets::test_cluster;

    /// The ring the simulation charged before the two ring models became one, as a closed
    /// form: NIC `k S/g` of which `L/N` on the spine port when oversubscribed, scale-up
    /// `k S (g-1)/g`, latency `steps (out + (g-1) up) / g`.
    fn closed_form(kind: CollectiveKind, layout: GroupLayout, s: f64, c: &ClusterSpec) -> CollectiveCost {
        let n = layout.size;
        let per_rank = ring_bytes_per_rank(kind, n, s);
        let steps = ring_steps(kind, n) as f64;
        let g = layout.members_per_node.clamp(1, n.max(1)) as f64;
        let (up_lat, out_lat) = (c.scale_up_latency_us * 1e-6, c.scale_out_latency_us * 1e-6);
        if n <= 1 {
            return CollectiveCost {
                loads: vec![],
                latency_s: 0.0,
            };
        }
        if g as u32 >= n {
            return CollectiveCost {
                loads: vec![(Tier::ScaleUp, per_rank)],
                latency_s: steps * up_lat,
            };
        }
        let nodes = n.div_ceil(g as u32);
        let leaves = nodes.div_ceil(c.nodes_per_leaf.max(1));
        let fraction = if c.oversubscription <= 1.0 || nodes <= 1 || leaves <= 1 {
            0.0
        } else {
            leaves as f64 / nodes as f64
        };
        let nic = per_rank / g;
        let spine = nic * fraction;
        let mut loads = vec![(Tier::Leaf, nic - spine)];
        if spine > 0.0 {
            loads.push((Tier::Spine, spine));
        }
        if g > 1.0 {
            loads.push((Tier::ScaleUp, per_rank * (g - 1.0) / g));
        }
        CollectiveCost {
            loads,
            latency_s: steps * (out_lat + (g - 1.0) * up_lat) / g,
        }
    }

    /// On the default topology the ring charge is the closed form bit for bit (what keeps
    /// the golden results byte-identical).
    #[test]
    fn ring_charge_is_the_closed_form_bit_for_bit() {
        // (a 2-GPU cluster: groups larger than the cluster are charged on nodes all the same)
        for (gpus, over, per_leaf) in [
            (4096, 1.0, 16),
            (4096, 4.0, 4),
            (4096, 2.5, 1),
            (4096, 8.0, 16),
            (2, 2.0, 1),
        ] {
            let mut c = test_cluster(gpus, 8);
            c.oversubscription = over;
            c.nodes_per_leaf = per_leaf;
            for kind in [
                CollectiveKind::AllReduce,
                CollectiveKind::AllGather,
                CollectiveKind::ReduceScatter,
            ] {
                for (size, g) in [
                    (1, 1),
                    (8, 8),
                    (2, 2),
                    (64, 8),
                    (128, 1),
                    (1024, 8),
                    (16, 2),
                    (24, 8),
                    (4096, 4),
                ] {
                    let l = GroupLayout {
                        size,
                        members_per_node: g,
                    };
                    for s in [0.0, 1.0, 3e5, 1e9, 7.77e10] {
                        let want = closed_form(kind, l, s, &c);
                        let got = collective_cost(kind, Algorithm::Ring, l, s, &c);
                        let nonzero = |x: &CollectiveCost| -> Vec<(Tier, u64)> {
                            x.loads
                                .iter()
                                .filter(|(_, b)| *b > 0.0)
                                .map(|(t, b)| (*t, b.to_bits()))
                                .collect()
                        };
                        assert_eq!(nonzero(&got), nonzero(&want), "{kind:?} {l:?} {s} over {over}");
                        // bit for bit, but for the sign of a zero (no phases: an empty sum)
                        let same = got.latency_s.to_bits() == want.latency_s.to_bits()
                            || (got.latency_s == 0.0 && want.latency_s == 0.0);
                        assert!(same, "{kind:?} {l:?}: {} vs {}", got.latency_s, want.latency_s);
                        assert_eq!(ring_cost(kind, l, s, &c), got);
                    }
                }
            }
        }
    }

    /// A topology the ring cannot use (halving-doubling on 24 ranks) falls back on the ring;
    /// NVLS bytes are charged at the scale-up efficiency.
    #[test]
    fn unusable_algorithms_fall_back_on_the_ring_and_nvls_folds_onto_nvlink() {
        let c = test_cluster(64, 8);
        let l = GroupLayout {
            size: 24,
            members_per_node: 8,
        };
        let hd = collective_cost(CollectiveKind::AllGather, Algorithm::HalvingDoubling, l, 1e9, &c);
        assert_eq!(hd, ring_cost(CollectiveKind::AllGather, l, 1e9, &c));
        let node = GroupLayout {
            size: 8,
            members_per_node: 8,
        };
        let k = cost(CollectiveKind::AllReduce, Algorithm::Nvls, node, 1e9, &c).unwrap();
        let f = Fabric::new(&c);
        let folded = on_ports(&k, &c);
        let want = k.tier_bytes(Tier::Nvls) * f.up_bytes_per_s / f.nvls_bytes_per_s;
        assert_eq!(folded.loads, vec![(Tier::ScaleUp, want)]);
        assert_eq!(folded.sent_bytes(), want);
    }
}
