//! Topology as the network sees it: owns [`Tier`] (the one link vocabulary of trainsim),
//! [`PortCapacities`] (what one rank's ports sustain) and [`Fabric`] (the exact mapping from a
//! [`ClusterSpec`] to per-tier capacity and latency, and the fractions of a pattern's
//! scale-out edges that climb to the spine or the core). Does not own algorithms
//! ([`super::algorithm`]) or flow sharing ([`super::FlowNetwork`]).
//!
//! ## Units and tiers
//!
//! Ranks are grouped in *units*: scale-up domains of `g` GPUs (a node, or an NVL72 rack when
//! `topology.scale_up_domain = 72`). Units hang off leaf switches, `P` units per leaf
//! (`nodes_per_leaf` nodes, times `nics_per_node` when rail-optimized, converted to units);
//! with 3 tiers, `leaves_per_pod` leaves form a pod under one spine group and pods meet at the
//! core. Per GPU and direction:
//!
//! | tier | capacity | one hop |
//! |---|---|---|
//! | `ScaleUp` | scale-up line rate x `scale_up_efficiency` | `scale_up_latency_us` |
//! | `Nvls` | scale-up line rate x NVLS efficiency | `scale_up_latency_us` |
//! | `Leaf` | NIC share x `scale_out_efficiency` | `scale_out_latency_us` |
//! | `Spine` | leaf capacity / `oversubscription` | + 2 `switch_latency_us` |
//! | `Core` | spine capacity / `core_oversubscription` | + 4 `switch_latency_us` |
//! | `Torus` | 2 links x torus link rate x `scale_up_efficiency` | `scale_up_latency_us` |
//!
//! A `Spine` flow crosses the NIC and the spine uplink; a `Core` flow the NIC, the spine and
//! the core: oversubscription only re-routes bytes, it never adds any.
//!
//! ## Ports
//!
//! The training simulation gives each representative rank three ports, each one link per
//! direction ([`super::cluster::ClusterNetwork`]): `ScaleUp` (NVLink; NVLS and torus traffic
//! run on it too), `Leaf` (the NIC) and `Spine` (the rank's share of its leaf's uplinks, a
//! port of its own only when `oversubscription > 1`; core traffic runs on it).

use crate::hardware::ClusterSpec;
use serde::{Deserialize, Serialize};

/// A link tier a load crosses: the one vocabulary for links, from the algorithms' loads to
/// the simulation's ports (module docs).
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Tier {
    /// NVLink port, point-to-point traffic through the NVSwitch.
    ScaleUp,
    /// NVLink port carrying NVLink SHARP (in-switch reduction) traffic.
    Nvls,
    /// NIC, staying under one leaf (or rail) switch.
    Leaf,
    /// NIC, then up to the spine and down to another leaf of the same pod.
    Spine,
    /// NIC, spine, then through the core to another pod (3 tiers only).
    Core,
    /// Torus links of one dimension (both directions).
    Torus,
}

impl Tier {
    /// Every tier, in order.
    pub const ALL: [Tier; 6] = [
        Tier::ScaleUp,
        Tier::Nvls,
        Tier::Leaf,
        Tier::Spine,
        Tier::Core,
        Tier::Torus,
    ];

    /// The tiers whose links a flow of this tier crosses.
    pub fn path(self) -> &'static [Tier] {
        match self {
            Tier::ScaleUp => &[Tier::ScaleUp],
            Tier::Nvls => &[Tier::Nvls],
            Tier::Leaf => &[Tier::Leaf],
            Tier::Spine => &[Tier::Leaf, Tier::Spine],
            Tier::Core => &[Tier::Leaf, Tier::Spine, Tier::Core],
            Tier::Torus => &[Tier::Torus],
        }
    }

    /// Whether the tier goes through the NIC.
    pub fn is_scale_out(self) -> bool {
        matches!(self, Tier::Leaf | Tier::Spine | Tier::Core)
    }
}

/// What one rank's ports sustain, per direction (after the efficiencies): the capacities the
/// simulation gives its links, and what utilisation is measured against.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct PortCapacities {
    /// Scale-up (NVLink) port, bytes/s.
    pub up_bytes_per_s: f64,
    /// NIC share of one GPU, bytes/s.
    pub nic_bytes_per_s: f64,
    /// Share of its leaf's spine uplinks, bytes/s (the NIC's with a non-blocking spine).
    pub spine_bytes_per_s: f64,
    /// The spine is oversubscribed (`oversubscription > 1`): spine bytes use a port of their
    /// own; otherwise they are NIC bytes (a non-blocking spine never limits a flow its NIC
    /// does not).
    pub spine_oversubscribed: bool,
}

impl PortCapacities {
    /// The ports of `cluster`.
    pub fn of(cluster: &ClusterSpec) -> PortCapacities {
        let up =
            crate::units::gbyte_per_s_to_bytes_per_s(cluster.gpu.scale_up_gbyte_per_s) * cluster.scale_up_efficiency;
        let nic = cluster.nic_bytes_per_s_per_gpu() * cluster.scale_out_efficiency;
        PortCapacities {
            up_bytes_per_s: up,
            nic_bytes_per_s: nic,
            spine_bytes_per_s: nic / cluster.oversubscription.max(1.0),
            spine_oversubscribed: cluster.oversubscription > 1.0,
        }
    }
}

/// Fractions of scale-out edges (or bytes) that cross the spine and the core.
#[derive(Clone, Copy, Debug, Default, PartialEq)]
pub struct Crossing {
    /// Between leaves of one pod (core crossings excluded).
    pub spine: f64,
    /// Between pods.
    pub core: f64,
}

impl Crossing {
    /// Splits `bytes` of NIC traffic into `(Leaf, Spine, Core)` loads (zeros dropped).
    pub fn split(self, bytes: f64) -> Vec<(Tier, f64)> {
        let core = bytes * self.core;
        let spine = bytes * self.spine;
        let leaf = bytes - core - spine;
        [(Tier::Leaf, leaf), (Tier::Spine, spine), (Tier::Core, core)]
            .into_iter()
            .filter(|(_, b)| *b > 0.0)
            .collect()
    }
}

/// Per-tier capacities and latencies of one cluster, per GPU and direction.
#[derive(Clone, Debug, PartialEq)]
pub struct Fabric {
    /// Scale-up point-to-point bandwidth, bytes/s (after efficiency).
    pub up_bytes_per_s: f64,
    /// NVLS wire bandwidth, bytes/s (after NVLS efficiency).
    pub nvls_bytes_per_s: f64,
    /// NIC share, bytes/s (after efficiency).
    pub nic_bytes_per_s: f64,
    /// Spine uplink share, bytes/s.
    pub spine_bytes_per_s: f64,
    /// Core uplink share, bytes/s.
    pub core_bytes_per_s: f64,
    /// Both links of one torus dimension, bytes/s.
    pub torus_bytes_per_s: f64,
    /// Scale-up hop, seconds.
    pub up_latency_s: f64,
    /// Scale-out hop under one leaf, seconds.
    pub out_latency_s: f64,
    /// Per switch above the leaf, seconds.
    pub switch_latency_s: f64,
    /// GPUs per scale-up domain (unit): `scale_up_domain`, else a node.
    pub unit_size: u32,
    /// Units under one leaf (or rail) switch.
    pub units_per_leaf: u32,
    /// Units under one pod (0 = one pod: 2 tiers).
    pub units_per_pod: u32,
    /// Torus dimension sizes (empty = switched fabric).
    pub torus: Vec<u32>,
    /// The scale-up switch can reduce (NVLink SHARP).
    pub nvls: bool,
}

impl Fabric {
    /// The fabric of `cluster` (validated by the caller: positive rates, ratios >= 1).
    pub fn new(cluster: &ClusterSpec) -> Fabric {
        let t = &cluster.topology;
        let line_up = crate::units::gbyte_per_s_to_bytes_per_s(cluster.gpu.scale_up_gbyte_per_s);
        let nvls_eff = if t.nvls_efficiency > 0.0 {
            t.nvls_efficiency
        } else if super::calibration::has_nvls(&cluster.gpu) {
            super::calibration::HOP_NVLS_EFFICIENCY
        } else {
            cluster.scale_up_efficiency
        };
        let ports = PortCapacities::of(cluster);
        let (nic, spine) = (ports.nic_bytes_per_s, ports.spine_bytes_per_s);
        let core = if t.fat_tree_tiers >= 3 {
            spine / t.core_oversubscription.max(1.0)
        } else {
            spine
        };
        let dims = t.torus.len().max(1) as f64;
        let torus_link = if t.torus_link_gbyte_per_s > 0.0 {
            crate::units::gbyte_per_s_to_bytes_per_s(t.torus_link_gbyte_per_s)
        } else {
            line_up / (2.0 * dims)
        };
        // the physical domain, even in a cluster smaller than one (a group never spans
        // more units than its members need)
        let unit = match t.scale_up_domain {
            0 => cluster.gpus_per_node,
            d => d,
        }
        .max(1);
        let gpus_per_leaf = cluster.effective_nodes_per_leaf() as u64 * cluster.gpus_per_node.max(1) as u64;
        let units_per_leaf = (gpus_per_leaf / unit as u64).clamp(1, u32::MAX as u64) as u32;
        let units_per_pod = if t.fat_tree_tiers >= 3 && t.leaves_per_pod > 0 {
            units_per_leaf.saturating_mul(t.leaves_per_pod)
        } else {
            0
        };
        Fabric {
            up_bytes_per_s: ports.up_bytes_per_s,
            nvls_bytes_per_s: line_up * nvls_eff,
            nic_bytes_per_s: nic,
            spine_bytes_per_s: spine,
            core_bytes_per_s: core,
            torus_bytes_per_s: 2.0 * torus_link * cluster.scale_up_efficiency,
            up_latency_s: cluster.scale_up_latency_us * 1e-6,
            out_latency_s: cluster.scale_out_latency_us * 1e-6,
            switch_latency_s: t.switch_latency_us * 1e-6,
            unit_size: unit,
            units_per_leaf,
            units_per_pod,
            torus: t.torus.clone(),
            nvls: super::calibration::has_nvls(&cluster.gpu),
        }
    }

    /// Capacity of one tier's link, bytes/s.
    pub fn capacity(&self, tier: Tier) -> f64 {
        match tier {
            Tier::ScaleUp => self.up_bytes_per_s,
            Tier::Nvls => self.nvls_bytes_per_s,
            Tier::Leaf => self.nic_bytes_per_s,
            Tier::Spine => self.spine_bytes_per_s,
            Tier::Core => self.core_bytes_per_s,
            Tier::Torus => self.torus_bytes_per_s,
        }
    }

    /// One hop over `tier`, seconds.
    pub fn hop_latency_s(&self, tier: Tier) -> f64 {
        match tier {
            Tier::ScaleUp | Tier::Nvls | Tier::Torus => self.up_latency_s,
            Tier::Leaf => self.out_latency_s,
            Tier::Spine => self.out_latency_s + 2.0 * self.switch_latency_s,
            Tier::Core => self.out_latency_s + 4.0 * self.switch_latency_s,
        }
    }

    /// Whether a byte above the leaf costs what one under it does: spine and core as fast as
    /// the NIC and no switch latency. Then which edges climb is invisible and the ring
    /// charges all its NIC bytes to the leaf.
    pub fn above_leaf_is_transparent(&self) -> bool {
        self.spine_bytes_per_s >= self.nic_bytes_per_s
            && self.core_bytes_per_s >= self.nic_bytes_per_s
            && self.switch_latency_s <= 0.0
    }

    /// Mean scale-out hop latency for edges split as `c`.
    pub fn out_hop_s(&self, c: Crossing) -> f64 {
        self.out_latency_s + 2.0 * self.switch_latency_s * (c.spine + 2.0 * c.core)
    }

    /// Leaves and pods spanned by `units` consecutive units placed from a leaf boundary.
    pub fn leaves_and_pods(&self, units: u32) -> (u32, u32) {
        let leaves = units.div_ceil(self.units_per_leaf.max(1));
        let pods = if self.units_per_pod > 0 {
            units.div_ceil(self.units_per_pod)
        } else {
            1
        };
        (leaves, pods)
    }

    /// A ring over `units` units in order: of its `units` unit-to-unit edges, `L` cross
    /// leaves when the group spans `L > 1` leaves (`L-1` between neighbours plus the wrap),
    /// and of those `Q` cross pods when it spans `Q > 1` pods (derivation in
    /// [`super::collective`]).
    pub fn ring_crossing(&self, units: u32) -> Crossing {
        if units <= 1 {
            return Crossing::default();
        }
        let (l, q) = self.leaves_and_pods(units);
        let n = units as f64;
        let leaf_x = if l > 1 { l as f64 / n } else { 0.0 };
        let core_x = if q > 1 { q as f64 / n } else { 0.0 };
        Crossing {
            spine: leaf_x - core_x,
            core: core_x,
        }
    }

    /// A tree over `units` units whose subtrees follow the leaves: of its `units - 1` edges,
    /// `L - 1` join leaves and of those `Q - 1` join pods.
    pub fn tree_crossing(&self, units: u32) -> Crossing {
        if units <= 1 {
            return Crossing::default();
        }
        let (l, q) = self.leaves_and_pods(units);
        let e = (units - 1) as f64;
        let core = (q - 1) as f64 / e;
        Crossing {
            spine: (l - 1) as f64 / e - core,
            core,
        }
    }

    /// Every unit to every other (all-to-all), seen from a unit of the first leaf: the
    /// fraction of its peers' units outside its leaf (but in its pod) and outside its pod.
    pub fn all_pairs_crossing(&self, units: u32) -> Crossing {
        if units <= 1 {
            return Crossing::default();
        }
        let in_leaf = self.units_per_leaf.min(units);
        let in_pod = if self.units_per_pod > 0 {
            self.units_per_pod.min(units)
        } else {
            units
        };
        let others = (units - 1) as f64;
        Crossing {
            spine: (in_pod - in_leaf) as f64 / others,
            core: (units - in_pod) as f64 / others,
        }
    }

    /// The highest tier joining ranks `a` and `b` (rank `r` in unit `r / unit_size`).
    pub fn tier_between(&self, a: u64, b: u64) -> Tier {
        let g = self.unit_size.max(1) as u64;
        let (ua, ub) = (a / g, b / g);
        if ua == ub {
            return Tier::ScaleUp;
        }
        if self.units_per_pod > 0 && ua / self.units_per_pod as u64 != ub / self.units_per_pod as u64 {
            return Tier::Core;
        }
        let p = self.units_per_leaf.max(1) as u64;
        if ua / p != ub / p {
            Tier::Spine
        } else {
            Tier::Leaf
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rails_widen_the_leaf_and_domains_group_nodes() {
        let mut c = crate::hardware::presets::test_cluster(1024, 8);
        c.nodes_per_leaf = 4;
        assert_eq!(Fabric::new(&c).units_per_leaf, 4);
        c.topology.rail_optimized = true;
        assert_eq!(Fabric::new(&c).units_per_leaf, 32);
        // NVL72-style: 4-GPU trays, 72-GPU domains; 18 trays per leaf = one rack per leaf
        let mut c = crate::hardware::presets::test_cluster(1152, 4);
        c.topology.scale_up_domain = 72;
        c.nodes_per_leaf = 18;
        let f = Fabric::new(&c);
        assert_eq!((f.unit_size, f.units_per_leaf), (72, 1));
    }

    #[test]
    fn crossings_count_edges_and_split_conserves_bytes() {
        let mut c = crate::hardware::presets::test_cluster(4096, 8);
        c.nodes_per_leaf = 4;
        c.topology.fat_tree_tiers = 3;
        c.topology.leaves_per_pod = 4;
        let f = Fabric::new(&c);
        // 64 nodes: 16 leaves, 4 pods: 16 of 64 ring edges leave a leaf, 4 of them a pod
        let x = f.ring_crossing(64);
        assert!((x.spine - 12.0 / 64.0).abs() < 1e-12 && (x.core - 4.0 / 64.0).abs() < 1e-12);
        let parts = x.split(1000.0);
        assert!((parts.iter().map(|p| p.1).sum::<f64>() - 1000.0).abs() < 1e-9);
        let t = f.tree_crossing(64);
        assert!((t.spine - 12.0 / 63.0).abs() < 1e-12 && (t.core - 3.0 / 63.0).abs() < 1e-12);
        assert_eq!(f.tier_between(0, 7), Tier::ScaleUp);
        assert_eq!(f.tier_between(0, 8), Tier::Leaf);
        assert_eq!(f.tier_between(0, 32), Tier::Spine);
        assert_eq!(f.tier_between(0, 128), Tier::Core);
    }
}
