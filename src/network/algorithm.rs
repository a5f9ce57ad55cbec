//! Collective algorithms as NCCL (and the classic literature) run them: owns [`Algorithm`],
//! [`AlgoCost`], [`cost`] (checks a combination and assembles its phases from
//! [`super::decompose`] and [`super::all_to_all`]), [`select`] (NCCL-like automatic choice),
//! [`AlgorithmChoice`] (the training run's choice per kind) and [`idle_time_s`] (one
//! collective on an otherwise idle [`FlowNetwork`]). Does not own the topology mapping
//! ([`super::topology`]), the decompositions themselves, or the calibration
//! ([`super::calibration`]).
//!
//! The decompositions (bytes per tier, hops, phases) are tabulated in [`super::decompose`]
//! (ring, tree, NVLS, hierarchical, halving-doubling, torus) and [`super::all_to_all`]
//! (direct, pairwise).
//!
//! ## Automatic choice (`auto`), as NCCL's tuner does
//!
//! NCCL predicts each enabled algorithm's time from a latency and a bandwidth per link and
//! picks the fastest for each size. trainsim does the same with its own model: the
//! candidates are `ring` and, for all-reduce, `tree` (when the group spans more than one
//! unit) and `nvls` (when the scale-up switch reduces and a unit holds at least 2 ranks);
//! each runs on an idle network ([`idle_time_s`]) and the fastest wins (ties: the earlier in
//! that order). All-to-all is `direct` (NCCL's grouped send/receive to every peer); on a torus
//! everything is `ring`. The other algorithms are there to compare, never picked.
//!
//! ## Chunking
//!
//! A large message goes through a pipelined algorithm in chunks (NCCL's Simple protocol: 512
//! KiB per channel step). With `chunk_bytes > 0`, each hop of a pipelined phase also pays the
//! store-and-forward of one chunk at the phase's bottleneck rate: `steps x chunk / B` on top of
//! `bytes / B`, the pipeline fill. 0 (the default) charges the pure pipelined time.

use super::all_to_all::{direct, pairwise};
use super::decompose::{collnet, halving_doubling, hierarchical, nvls, ring, torus_ring, tree, units};
use super::flow::{FlowNetwork, LinkId};
use super::group::{CollectiveKind, GroupLayout};
use super::topology::{Fabric, Tier};
use super::tuner::NcclAlgorithm;
use crate::hardware::ClusterSpec;
use crate::units::SimTime;
use serde::{Deserialize, Serialize};

pub use super::decompose::Phase;

/// A collective algorithm.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Algorithm {
    /// Chosen per size as NCCL's tuner does (see the module docs).
    Auto,
    /// NCCL ring over all channels (pipelined).
    Ring,
    /// NCCL double binary tree across units, chain inside one (all-reduce).
    Tree,
    /// NVLink SHARP in-switch reduction inside a unit (all-reduce; hop model: and a tree
    /// across units; NCCL model: across units NCCL falls back to its own choice).
    Nvls,
    /// NVLS inside units, a tree across them (all-reduce; NCCL's NVLSTree).
    NvlsTree,
    /// In-network reduction (InfiniBand SHARP, NCCL's CollNet): all-reduce, all-gather.
    CollNet,
    /// Reduce-scatter inside units, the collective across units, all-gather inside units.
    Hierarchical,
    /// Recursive halving then doubling (power-of-two groups).
    HalvingDoubling,
    /// All-to-all to every peer at once.
    Direct,
    /// All-to-all one peer per step.
    Pairwise,
}

impl Algorithm {
    /// Names accepted by `--algo`.
    pub const NAMES: &'static [&'static str] = &[
        "auto",
        "ring",
        "tree",
        "nvls",
        "nvls_tree",
        "collnet",
        "hierarchical",
        "halving_doubling",
        "direct",
        "pairwise",
    ];
    const ALL: [Algorithm; 10] = [
        Algorithm::Auto,
        Algorithm::Ring,
        Algorithm::Tree,
        Algorithm::Nvls,
        Algorithm::NvlsTree,
        Algorithm::CollNet,
        Algorithm::Hierarchical,
        Algorithm::HalvingDoubling,
        Algorithm::Direct,
        Algorithm::Pairwise,
    ];

    /// The snake_case name.
    pub fn name(self) -> &'static str {
        Self::NAMES[Self::ALL.iter().position(|a| *a == self).unwrap_or(0)]
    }

    /// The NCCL algorithm it forces in the NCCL model (`Auto`: none); `Err` for the
    /// algorithms NCCL does not run (hierarchical, halving-doubling, pairwise), which the
    /// hop model times.
    pub fn nccl(self) -> Result<Option<NcclAlgorithm>, String> {
        Ok(Some(match self {
            Algorithm::Auto | Algorithm::Direct => return Ok(None),
            Algorithm::Ring => NcclAlgorithm::Ring,
            Algorithm::Tree => NcclAlgorithm::Tree,
            Algorithm::Nvls => NcclAlgorithm::Nvls,
            Algorithm::NvlsTree => NcclAlgorithm::NvlsTree,
            Algorithm::CollNet => NcclAlgorithm::CollNet,
            Algorithm::Hierarchical | Algorithm::HalvingDoubling | Algorithm::Pairwise => {
                return Err(format!(
                    "--algo {}: not an NCCL algorithm (the hop model times it)",
                    self.name()
                ))
            }
        }))
    }

    /// The trainsim algorithm of an NCCL one.
    pub fn of_nccl(a: NcclAlgorithm) -> Algorithm {
        match a {
            NcclAlgorithm::Ring | NcclAlgorithm::P2p => Algorithm::Ring,
            NcclAlgorithm::Tree => Algorithm::Tree,
            NcclAlgorithm::Nvls => Algorithm::Nvls,
            NcclAlgorithm::NvlsTree => Algorithm::NvlsTree,
            NcclAlgorithm::CollNet => Algorithm::CollNet,
            NcclAlgorithm::AllToAll => Algorithm::Direct,
        }
    }

    /// Parses a name (case-insensitive, `-` for `_`); the error lists what is allowed.
    pub fn parse(s: &str) -> Result<Algorithm, String> {
        let t = s.trim().to_ascii_lowercase().replace('-', "_");
        let t = if t == "nvlstree" { "nvls_tree".to_string() } else { t };
        match Self::NAMES.iter().position(|n| *n == t) {
            Some(i) => Ok(Self::ALL[i]),
            None => Err(format!(
                "unknown algorithm '{s}': allowed values are {}",
                quoted(Self::NAMES)
            )),
        }
    }
}

fn quoted(names: &[&str]) -> String {
    names.iter().map(|n| format!("\"{n}\"")).collect::<Vec<_>>().join(", ")
}

/// The per-rank cost of one collective under one algorithm.
#[derive(Clone, Debug, PartialEq)]
pub struct AlgoCost {
    /// The algorithm (never `Auto`).
    pub algorithm: Algorithm,
    /// Phases run one after another.
    pub phases: Vec<Phase>,
}

impl AlgoCost {
    /// Bytes one rank sends per tier, summed over phases.
    pub fn tier_bytes(&self, tier: Tier) -> f64 {
        self.phases
            .iter()
            .flat_map(|p| p.loads.iter())
            .filter(|(t, _)| *t == tier)
            .map(|(_, b)| b)
            .sum()
    }

    /// Bytes one rank sends in all (each byte counted once, on the tier it ends up on).
    pub fn bytes_per_rank(&self) -> f64 {
        self.phases.iter().flat_map(|p| p.loads.iter()).map(|(_, b)| b).sum()
    }

    /// Bytes through the NIC (leaf, spine and core loads).
    pub fn nic_bytes(&self) -> f64 {
        Tier::ALL
            .iter()
            .filter(|t| t.is_scale_out())
            .map(|t| self.tier_bytes(*t))
            .sum()
    }

    /// Total latency term, seconds.
    pub fn latency_s(&self) -> f64 {
        self.phases.iter().map(|p| p.latency_s).sum()
    }
}

/// The decomposition of `kind` under `algo` (`Auto`: the choice of [`select`]) for a group
/// laid out as `layout` (its `members_per_node` read as members per scale-up domain) on
/// `cluster`. Errors name the combination and what is allowed.
pub fn cost(
    kind: CollectiveKind,
    algo: Algorithm,
    layout: GroupLayout,
    size_bytes: f64,
    cluster: &ClusterSpec,
) -> Result<AlgoCost, String> {
    let f = Fabric::new(cluster);
    let n = layout.size;
    let (g, m) = units(layout, &f);
    let sf = size_bytes.max(0.0);
    let ar = kind == CollectiveKind::AllReduce;
    let a2a = kind == CollectiveKind::AllToAll;
    let reject = |what: &str| Err(format!("--algo {} {what}", algo.name()));
    if n <= 1 {
        return Ok(AlgoCost {
            algorithm: algo,
            phases: vec![],
        });
    }
    if !f.torus.is_empty() {
        if algo != Algorithm::Ring && algo != Algorithm::Auto {
            return reject("is not modelled on a torus: use \"ring\" (or \"auto\")");
        }
        return Ok(AlgoCost {
            algorithm: Algorithm::Ring,
            phases: torus_ring(kind, n, sf, &f)?,
        });
    }
    if a2a && !matches!(algo, Algorithm::Direct | Algorithm::Pairwise | Algorithm::Auto) {
        return reject("does not run all_to_all: use \"direct\" or \"pairwise\" (or \"auto\")");
    }
    let chain = matches!(
        kind,
        CollectiveKind::SendRecv | CollectiveKind::Broadcast | CollectiveKind::Reduce
    );
    if chain && !matches!(algo, Algorithm::Ring | Algorithm::Auto) {
        return reject(&format!(
            "does not run {}: NCCL runs it point-to-point (use \"ring\" or \"auto\")",
            kind.name()
        ));
    }
    if kind == CollectiveKind::SendRecv {
        // every rank to its ring successor: the rank at a unit boundary sends all of it out
        let x = if f.above_leaf_is_transparent() {
            super::topology::Crossing::default()
        } else {
            f.ring_crossing(m)
        };
        let loads = if m > 1 { x.split(sf) } else { vec![(Tier::ScaleUp, sf)] };
        let top = super::decompose::top_tier(&loads);
        return Ok(AlgoCost {
            algorithm: Algorithm::Ring,
            phases: vec![super::decompose::phase(loads, 1, f.hop_latency_s(top), false)],
        });
    }
    let phases = match algo {
        Algorithm::Auto => {
            return cost(
                kind,
                select(kind, layout, size_bytes, cluster),
                layout,
                size_bytes,
                cluster,
            )
        }
        Algorithm::Direct | Algorithm::Pairwise if !a2a => return reject(
            "is an all_to_all algorithm: use \"ring\", \"tree\", \"nvls\", \"hierarchical\" or \"halving_doubling\"",
        ),
        Algorithm::Ring => vec![ring(kind, layout, sf, &f)],
        Algorithm::Tree => {
            if !ar {
                return reject("runs all_reduce only (NCCL's trees are all-reduce trees)");
            }
            vec![tree(g, m, sf, &f)]
        }
        Algorithm::Nvls | Algorithm::NvlsTree => {
            let rs_ag = matches!(kind, CollectiveKind::AllGather | CollectiveKind::ReduceScatter);
            if !(ar || rs_ag && algo == Algorithm::Nvls) {
                return reject("runs all_reduce only");
            }
            if !f.nvls {
                return Err(format!(
                    "--algo {} needs NVLink SHARP (NVSwitch of H100/H200/H800/B200); {} has none",
                    algo.name(),
                    cluster.gpu.name
                ));
            }
            if g < 2 {
                return reject("needs at least 2 ranks per scale-up domain");
            }
            if !ar {
                if m > 1 {
                    return reject("runs all_gather and reduce_scatter inside one scale-up domain only");
                }
                // NVLS all-gather / reduce-scatter: a ring's bytes through the switch
                let loads = vec![(Tier::ScaleUp, sf * (g - 1) as f64 / g as f64)];
                return Ok(AlgoCost {
                    algorithm: algo,
                    phases: vec![super::decompose::phase(loads, 1, f.up_latency_s, true)],
                });
            }
            vec![nvls(g, m, sf, &f)]
        }
        Algorithm::CollNet => {
            if !matches!(kind, CollectiveKind::AllReduce | CollectiveKind::AllGather) {
                return reject("runs all_reduce and all_gather only (NCCL's CollNet)");
            }
            if m < 2 {
                return reject("needs a group spanning at least 2 scale-up domains");
            }
            vec![collnet(kind, g, m, sf, &f)]
        }
        Algorithm::Hierarchical => hierarchical(kind, g, m, sf, &f),
        Algorithm::HalvingDoubling => {
            if !n.is_power_of_two() {
                return Err(format!(
                    "--algo halving_doubling needs a power-of-two group; {n} ranks is not one (use \"ring\")"
                ));
            }
            halving_doubling(kind, n, sf, &f)
        }
        Algorithm::Direct => vec![direct(n, g, m, sf, &f, cluster.topology.rail_optimized)],
        Algorithm::Pairwise => vec![pairwise(n, m, sf, &f)],
    };
    Ok(AlgoCost {
        algorithm: algo,
        phases,
    })
}

/// The algorithms `auto` considers for `kind` on this group, in tie-break order.
pub fn candidates(kind: CollectiveKind, layout: GroupLayout, cluster: &ClusterSpec) -> Vec<Algorithm> {
    let f = Fabric::new(cluster);
    if kind == CollectiveKind::AllToAll {
        return vec![Algorithm::Direct];
    }
    let mut c = vec![Algorithm::Ring];
    if !f.torus.is_empty() || kind != CollectiveKind::AllReduce {
        return c;
    }
    let (g, m) = units(layout, &f);
    if m > 1 {
        c.push(Algorithm::Tree);
    }
    if f.nvls && g >= 2 {
        c.push(Algorithm::Nvls);
    }
    c
}

/// NCCL-like choice: the fastest candidate on an idle network (module docs).
pub fn select(kind: CollectiveKind, layout: GroupLayout, size_bytes: f64, cluster: &ClusterSpec) -> Algorithm {
    let mut best = (Algorithm::Ring, f64::INFINITY);
    for a in candidates(kind, layout, cluster) {
        if let Ok(c) = cost(kind, a, layout, size_bytes, cluster) {
            let t = idle_time_s(&c, cluster, 0.0);
            if t < best.1 {
                best = (a, t);
            }
        }
    }
    best.0
}

/// The algorithm a training run uses for each collective kind (scenario keys
/// `[cluster.network] all_reduce_algorithm` etc.). All-to-all is always `direct`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct AlgorithmChoice {
    /// All-reduce (TP without SP, DP gradients without ZeRO).
    pub all_reduce: Algorithm,
    /// All-gather (SP, ZeRO parameter gathers).
    pub all_gather: Algorithm,
    /// Reduce-scatter (SP, ZeRO gradient reduction).
    pub reduce_scatter: Algorithm,
}

impl Default for AlgorithmChoice {
    /// Rings everywhere: what the compute calibration was fitted with (docs/calibration.md).
    fn default() -> Self {
        AlgorithmChoice {
            all_reduce: Algorithm::Ring,
            all_gather: Algorithm::Ring,
            reduce_scatter: Algorithm::Ring,
        }
    }
}

impl AlgorithmChoice {
    /// NCCL's own choice everywhere (NCCL model), or rings (hop model, what its compute
    /// calibration was fitted with).
    pub fn default_for(model: crate::hardware::fabric::CollectiveModel) -> Self {
        match model {
            crate::hardware::fabric::CollectiveModel::Nccl => AlgorithmChoice {
                all_reduce: Algorithm::Auto,
                all_gather: Algorithm::Auto,
                reduce_scatter: Algorithm::Auto,
            },
            crate::hardware::fabric::CollectiveModel::Hop => AlgorithmChoice::default(),
        }
    }

    /// The algorithm for `kind`.
    pub fn for_kind(&self, kind: CollectiveKind) -> Algorithm {
        match kind {
            CollectiveKind::AllReduce => self.all_reduce,
            CollectiveKind::AllGather => self.all_gather,
            CollectiveKind::ReduceScatter => self.reduce_scatter,
            CollectiveKind::AllToAll => Algorithm::Direct,
            CollectiveKind::SendRecv | CollectiveKind::Broadcast | CollectiveKind::Reduce => Algorithm::Auto,
        }
    }
}

/// Seconds for one collective of cost `c` on an idle network: each phase's loads run as
/// concurrent flows over their tiers' links ([`Tier::path`]) of a fresh [`FlowNetwork`], then
/// its latency, phases one after another; with `chunk_bytes > 0` pipelined phases also pay
/// one chunk per hop at their bottleneck rate (module docs).
pub fn idle_time_s(c: &AlgoCost, cluster: &ClusterSpec, chunk_bytes: f64) -> f64 {
    let f = Fabric::new(cluster);
    let mut total = 0.0;
    for p in &c.phases {
        let mut net = FlowNetwork::new();
        let ids: Vec<LinkId> = Tier::ALL
            .iter()
            .map(|t| net.add_link(f.capacity(*t).max(1.0)))
            .collect();
        let paths: Vec<Vec<LinkId>> = p
            .loads
            .iter()
            .map(|(t, _)| t.path().iter().map(|x| ids[*x as usize]).collect())
            .collect();
        let flows: Vec<(&[LinkId], f64)> = paths
            .iter()
            .zip(&p.loads)
            .map(|(l, (_, b))| (l.as_slice(), *b))
            .collect();
        let mut t = 0.0;
        if net.start_transfer(SimTime::ZERO, &flows, SimTime::ZERO, 0).is_none() {
            while let Some(at) = net.next_completion() {
                if !net.advance(at).is_empty() {
                    t = at.as_secs();
                    break;
                }
            }
        }
        let mut fill = 0.0;
        if chunk_bytes > 0.0 && p.pipelined && p.steps > 0 {
            let (tier, bytes) = p
                .loads
                .iter()
                .map(|(t, b)| (*t, *b))
                .max_by(|a, b| (a.1 / f.capacity(a.0)).total_cmp(&(b.1 / f.capacity(b.0))))
                .unwrap_or((Tier::ScaleUp, 0.0));
            let chunk = chunk_bytes.min(bytes / p.steps as f64);
            fill = p.steps as f64 * chunk / f.capacity(tier);
        }
        total += t + fill + p.latency_s;
    }
    total
}

#[cfg(test)]
mod tests {
    use super::*;

    fn layout(size: u32, members: u32) -> GroupLayout {
        GroupLayout {
            size,
            members_per_node: members,
        }
    }

    #[test]
    fn names_round_trip_and_bad_ones_list_the_allowed() {
        for n in Algorithm::NAMES {
            assert_eq!(Algorithm::parse(n).unwrap().name(), *n);
        }
        assert_eq!(
            Algorithm::parse("Halving-Doubling").unwrap(),
            Algorithm::HalvingDoubling
        );
        let e = Algorithm::parse("butterfly").unwrap_err();
        assert!(e.contains("'butterfly'") && e.contains("\"pairwise\""), "{e}");
    }

    #[test]
    fn auto_prefers_nvls_in_an_h100_node_and_ring_on_a100() {
        let c = crate::hardware::presets::test_cluster(8, 8);
        assert_eq!(
            select(CollectiveKind::AllReduce, layout(8, 8), 1e9, &c),
            Algorithm::Nvls
        );
        assert_eq!(
            select(CollectiveKind::AllGather, layout(8, 8), 1e9, &c),
            Algorithm::Ring
        );
        assert_eq!(
            select(CollectiveKind::AllToAll, layout(8, 8), 1e9, &c),
            Algorithm::Direct
        );
        let mut a = c.clone();
        a.gpu = crate::hardware::presets::gpu_preset("A100-80GB").unwrap();
        assert_eq!(
            select(CollectiveKind::AllReduce, layout(8, 8), 1e9, &a),
            Algorithm::Ring
        );
        assert!(cost(CollectiveKind::AllReduce, Algorithm::Nvls, layout(8, 8), 1e9, &a)
            .unwrap_err()
            .contains("NVLink SHARP"));
        // small messages across many nodes: the tree's log-depth latency wins
        let big = crate::hardware::presets::test_cluster(4096, 8);
        let l = layout(4096, 8);
        assert_ne!(select(CollectiveKind::AllReduce, l, 1024.0, &big), Algorithm::Ring);
    }

    #[test]
    fn chunking_adds_the_pipeline_fill() {
        let c = crate::hardware::presets::test_cluster(8, 8);
        let k = cost(CollectiveKind::AllGather, Algorithm::Ring, layout(8, 8), 1e9, &c).unwrap();
        let f = Fabric::new(&c);
        let fill = idle_time_s(&k, &c, 512.0 * 1024.0) - idle_time_s(&k, &c, 0.0);
        assert!((fill - 7.0 * 512.0 * 1024.0 / f.up_bytes_per_s).abs() < 1e-9);
    }
}
