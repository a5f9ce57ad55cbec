//! Collective algorithms as NCCL (and the classic literature) decompose them: which bytes
//! each rank moves over which link tier, in which sequential phases, with how many hops.
//!
//! Owns: [`Algorithm`], [`cost`] (the decomposition, callable the way the simulation calls
//! [`super::collective::ring_cost`]), [`select`] (NCCL-like automatic choice) and
//! [`idle_time_s`] (one collective on an otherwise idle [`FlowNetwork`]). Does not own the
//! topology mapping ([`super::topology`]) or the calibration ([`super::calibration`]).
//!
//! Notation: `S` the message (nccl-tests' size: all-reduce input, all-gather output,
//! reduce-scatter input, all-to-all send buffer), `n` ranks, `g` ranks per scale-up domain
//! ("unit"), `m = n/g` units. Per rank and direction:
//!
//! | algorithm | ops | scale-up bytes | NIC bytes | hops (critical path) |
//! |---|---|---|---|---|
//! | `ring` | AR, RS, AG | `k S (g-1)/g` | `k S / g` | `k'(n-1)`, mean hop |
//! | `tree` (double binary tree) | AR | `2 S (g-1)/g` (chain) | `2 S (m-1)/m / g` | `2((g-1) + ceil(log2 m))` |
//! | `nvls` (NVLink SHARP; NVLSTree across units) | AR | `S (g+1)/g` on the switch | `2 S (m-1)/m / g` | `2 + 2 ceil(log2 m)` |
//! | `hierarchical` (RS in unit, AR/RS/AG across, AG in unit) | AR, RS, AG | `k S (g-1)/g` | `k S (m-1)/m / g` | `k'(g-1) + k'(m-1)`, 3 sequential phases |
//! | `halving_doubling` (Rabenseifner / recursive doubling) | AR, RS, AG | step `i` moves `S/2^(i+1)` to rank `r xor n/2^(i+1)` | (same, steps across units) | `k' log2 n`, one phase per step |
//! | `direct` (all peers at once) | A2A | `S (g-1)/n` | `S (n-g)/n` | 1 |
//! | `pairwise` (one peer per step) | A2A | each of `n-1` steps at its slowest pair | | `n-1` |
//!
//! with `k = 2(n-1)/n` (AR) or `(n-1)/n` (RS, AG), `k' = 2` (AR) or 1. On a torus
//! (`topology.torus`) `ring` is the bidirectional multi-dimensional ring: reduce-scatter along
//! each dimension in turn on a shrinking buffer, then all-gather back; dimension `i` of size
//! `k_i` moves `S_i (k_i-1)/k_i` over its two links in `k_i - 1` hops, `S_1 = S`,
//! `S_(i+1) = S_i / k_i`.
//!
//! NIC bytes are split between leaf, spine and core by the fraction of the pattern's
//! unit-to-unit edges that cross them ([`super::topology::Fabric`]). Where a rail-optimized
//! fabric carries all-to-all traffic, NCCL's PXN first moves the `(g-1)/g` of NIC bytes bound
//! to other rails over NVLink; those bytes are added to the scale-up load.
//!
//! NVLS: each rank reads its `1/g` shard reduced by the switch from every GPU (`multimem.ld_reduce`:
//! every GPU sends `S` in all) and multicasts the result (`multimem.st`: `S/g` out, `S` in), so
//! the wire carries `S (g+1)/g` per direction, not the ring's `2 S (g-1)/g`. With one
//! calibrated wire efficiency this reproduces NVIDIA's 5- to 8-GPU H100 figures (nccl#1455).
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

use super::collective::{ring_bytes_per_rank, ring_steps, CollectiveCost, CollectiveKind, GroupLayout, LinkClass};
use super::topology::{Fabric, Tier};
use super::{FlowNetwork, LinkId};
use crate::hardware::ClusterSpec;
use crate::units::SimTime;
use serde::{Deserialize, Serialize};

/// A collective algorithm.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Algorithm {
    /// Chosen per size as NCCL's tuner does (see the module docs).
    Auto,
    /// NCCL ring over all channels (pipelined).
    Ring,
    /// NCCL double binary tree across units, chain inside one (all-reduce).
    Tree,
    /// NVLink SHARP in-switch reduction inside a unit, tree across units (all-reduce).
    Nvls,
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
        "hierarchical",
        "halving_doubling",
        "direct",
        "pairwise",
    ];
    const ALL: [Algorithm; 8] = [
        Algorithm::Auto,
        Algorithm::Ring,
        Algorithm::Tree,
        Algorithm::Nvls,
        Algorithm::Hierarchical,
        Algorithm::HalvingDoubling,
        Algorithm::Direct,
        Algorithm::Pairwise,
    ];

    /// The snake_case name.
    pub fn name(self) -> &'static str {
        Self::NAMES[Self::ALL.iter().position(|a| *a == self).unwrap_or(0)]
    }

    /// Parses a name (case-insensitive, `-` for `_`); the error lists what is allowed.
    pub fn parse(s: &str) -> Result<Algorithm, String> {
        let t = s.trim().to_ascii_lowercase().replace('-', "_");
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

/// One sequential phase: loads that move concurrently, then its hop latency.
#[derive(Clone, Debug, PartialEq)]
pub struct Phase {
    /// Bytes each rank sends per tier in this phase.
    pub loads: Vec<(Tier, f64)>,
    /// Hops on the critical path of this phase.
    pub steps: u32,
    /// Latency term of this phase, seconds.
    pub latency_s: f64,
    /// Whether the phase is a pipeline of chunks (pays the chunk fill when chunking).
    pub pipelined: bool,
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

    /// The cost on the simulation's three link classes (phases merged, as the simulation
    /// runs one transfer per collective): scale-up, NVLS and torus bytes on `ScaleUp` (NVLS
    /// bytes scaled so that they take their time at the scale-up efficiency), leaf bytes on
    /// `ScaleOut`, spine and core bytes on `CrossLeaf` when the spine is oversubscribed (else on
    /// `ScaleOut`, as [`super::collective::ring_cost`] does). For the default topology the ring
    /// gives exactly `ring_cost`'s loads and latency.
    pub fn to_collective_cost(&self, cluster: &ClusterSpec) -> CollectiveCost {
        let f = Fabric::new(cluster);
        let (mut up, mut out, mut cross) = (0.0, 0.0, 0.0);
        for p in &self.phases {
            for &(t, b) in &p.loads {
                match t {
                    Tier::ScaleUp | Tier::Torus => up += b,
                    Tier::Nvls => up += b * f.up_bytes_per_s / f.nvls_bytes_per_s,
                    Tier::Leaf => out += b,
                    Tier::Spine | Tier::Core => {
                        if cluster.oversubscription > 1.0 {
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
            loads.push((LinkClass::ScaleOut, out));
        }
        if cross > 0.0 {
            loads.push((LinkClass::CrossLeaf, cross));
        }
        if up > 0.0 {
            loads.push((LinkClass::ScaleUp, up));
        }
        CollectiveCost {
            loads,
            latency_s: self.latency_s(),
        }
    }
}

/// Ranks per unit and units of a group on this fabric.
fn shape(layout: GroupLayout, f: &Fabric) -> (u32, u32) {
    let n = layout.size.max(1);
    let g = layout.members_per_node.clamp(1, n).min(f.unit_size.max(1)).max(1);
    (g, n.div_ceil(g))
}

fn phase(loads: Vec<(Tier, f64)>, steps: u32, latency_s: f64, pipelined: bool) -> Phase {
    Phase {
        loads: loads.into_iter().filter(|(_, b)| *b > 0.0).collect(),
        steps,
        latency_s,
        pipelined,
    }
}

fn ceil_log2(x: u32) -> u32 {
    if x <= 1 {
        0
    } else {
        32 - (x - 1).leading_zeros()
    }
}

/// The decomposition of `kind` under `algo` (never `Auto`: see [`select`]) for a group laid
/// out as `layout` (its `members_per_node` read as members per scale-up domain) on `cluster`.
/// Errors name the combination and what is allowed.
pub fn cost(
    kind: CollectiveKind,
    algo: Algorithm,
    layout: GroupLayout,
    size_bytes: f64,
    cluster: &ClusterSpec,
) -> Result<AlgoCost, String> {
    let f = Fabric::new(cluster);
    let n = layout.size;
    let (g, m) = shape(layout, &f);
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
        return torus_ring(kind, n, sf, &f);
    }
    if a2a && !matches!(algo, Algorithm::Direct | Algorithm::Pairwise | Algorithm::Auto) {
        return reject("does not run all_to_all: use \"direct\" or \"pairwise\" (or \"auto\")");
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
        Algorithm::Ring => vec![ring_phase(kind, n, g, m, sf, &f)],
        Algorithm::Tree => {
            if !ar {
                return reject("runs all_reduce only (NCCL's trees are all-reduce trees)");
            }
            let x = f.tree_crossing(m);
            let mut loads = vec![(Tier::ScaleUp, 2.0 * sf * (g - 1) as f64 / g as f64)];
            loads.extend(x.split(2.0 * sf * (m - 1) as f64 / m as f64 / g as f64));
            let depth = ceil_log2(m);
            let steps = 2 * ((g - 1) + depth);
            let lat = 2.0 * ((g - 1) as f64 * f.up_latency_s + depth as f64 * f.out_hop_s(x));
            vec![phase(loads, steps, lat, true)]
        }
        Algorithm::Nvls => {
            if !ar {
                return reject("runs all_reduce only");
            }
            if !f.nvls {
                return Err(format!(
                    "--algo nvls needs NVLink SHARP (NVSwitch of H100/H200/H800/B200); {} has none",
                    cluster.gpu.name
                ));
            }
            if g < 2 {
                return reject("needs at least 2 ranks per scale-up domain");
            }
            let x = f.tree_crossing(m);
            let mut loads = vec![(Tier::Nvls, sf * (g + 1) as f64 / g as f64)];
            loads.extend(x.split(2.0 * sf * (m - 1) as f64 / m as f64 / g as f64));
            let depth = ceil_log2(m);
            let lat = 2.0 * f.up_latency_s + 2.0 * depth as f64 * f.out_hop_s(x);
            vec![phase(loads, 2 + 2 * depth, lat, true)]
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
        Algorithm::Direct => {
            let x = f.all_pairs_crossing(m);
            let nic = sf * (n - g) as f64 / n as f64;
            let pxn = if cluster.topology.rail_optimized {
                nic * (g - 1) as f64 / g as f64
            } else {
                0.0
            };
            let mut loads = vec![(Tier::ScaleUp, sf * (g - 1) as f64 / n as f64 + pxn)];
            loads.extend(x.split(nic));
            let top = top_tier(&loads);
            vec![phase(loads, 1, f.hop_latency_s(top), false)]
        }
        Algorithm::Pairwise => {
            // every step pairs some ranks across the widest tier the group spans
            let top = if m <= 1 {
                Tier::ScaleUp
            } else {
                top_tier(&f.all_pairs_crossing(m).split(1.0))
            };
            vec![phase(
                vec![(top, sf * (n - 1) as f64 / n as f64)],
                n - 1,
                (n - 1) as f64 * f.hop_latency_s(top),
                false,
            )]
        }
    };
    Ok(AlgoCost {
        algorithm: algo,
        phases,
    })
}

fn top_tier(loads: &[(Tier, f64)]) -> Tier {
    let order = [
        Tier::Core,
        Tier::Spine,
        Tier::Leaf,
        Tier::Nvls,
        Tier::ScaleUp,
        Tier::Torus,
    ];
    order
        .into_iter()
        .find(|t| loads.iter().any(|(x, b)| x == t && *b > 0.0))
        .unwrap_or(Tier::ScaleUp)
}

/// The ring of `ring_cost`, on tiers: NIC bytes `k S / g` split by the ring's edge crossings,
/// latency `steps x` the mean hop of the ring.
fn ring_phase(kind: CollectiveKind, n: u32, g: u32, m: u32, sf: f64, f: &Fabric) -> Phase {
    let per_rank = ring_bytes_per_rank(kind, n, sf);
    let steps = ring_steps(kind, n);
    if m <= 1 {
        return phase(
            vec![(Tier::ScaleUp, per_rank)],
            steps,
            steps as f64 * f.up_latency_s,
            true,
        );
    }
    let gf = g as f64;
    let x = f.ring_crossing(m);
    let mut loads = x.split(per_rank / gf);
    loads.push((Tier::ScaleUp, per_rank * (gf - 1.0) / gf));
    let hop = (f.out_hop_s(x) + (gf - 1.0) * f.up_latency_s) / gf;
    phase(loads, steps, steps as f64 * hop, true)
}

fn hierarchical(kind: CollectiveKind, g: u32, m: u32, sf: f64, f: &Fabric) -> Vec<Phase> {
    let (gf, mf) = (g as f64, m as f64);
    let intra = |bytes: f64| {
        phase(
            vec![(Tier::ScaleUp, bytes * (gf - 1.0) / gf)],
            g - 1,
            (g - 1) as f64 * f.up_latency_s,
            true,
        )
    };
    let x = f.ring_crossing(m);
    let inter = |k: f64, steps: u32| {
        phase(
            x.split(k * sf / gf * (mf - 1.0) / mf),
            steps,
            steps as f64 * f.out_hop_s(x),
            true,
        )
    };
    let mut out = Vec::new();
    match kind {
        CollectiveKind::AllReduce => {
            out.push(intra(sf));
            out.push(inter(2.0, 2 * (m - 1)));
            out.push(intra(sf));
        }
        CollectiveKind::ReduceScatter => {
            out.push(intra(sf));
            out.push(inter(1.0, m - 1));
        }
        _ => {
            out.push(inter(1.0, m - 1));
            out.push(intra(sf));
        }
    }
    out.retain(|p| p.steps > 0);
    out
}

/// Recursive halving (reduce-scatter) and doubling (all-gather): step `i` exchanges
/// `S/2^(i+1)` with the rank at distance `n/2^(i+1)`; each step is charged at the widest
/// tier any pair of that step crosses.
fn halving_doubling(kind: CollectiveKind, n: u32, sf: f64, f: &Fabric) -> Vec<Phase> {
    let log = n.trailing_zeros();
    let step = |i: u32| {
        let d = (n >> (i + 1)) as u64;
        let tier = (0..n as u64)
            .map(|r| f.tier_between(r, r ^ d))
            .max_by_key(|t| match t {
                Tier::Core => 3,
                Tier::Spine => 2,
                Tier::Leaf => 1,
                _ => 0,
            })
            .unwrap_or(Tier::ScaleUp);
        phase(
            vec![(tier, sf / (1u64 << (i + 1)) as f64)],
            1,
            f.hop_latency_s(tier),
            false,
        )
    };
    let halving: Vec<Phase> = (0..log).map(step).collect();
    let doubling: Vec<Phase> = halving.iter().rev().cloned().collect();
    match kind {
        CollectiveKind::AllReduce => halving.into_iter().chain(doubling).collect(),
        CollectiveKind::ReduceScatter => halving,
        _ => doubling,
    }
}

fn torus_ring(kind: CollectiveKind, n: u32, sf: f64, f: &Fabric) -> Result<AlgoCost, String> {
    let prod: u64 = f.torus.iter().map(|&k| k as u64).product();
    if prod != n as u64 {
        return Err(format!(
            "torus {} holds {prod} chips but the collective has {n} ranks: a torus collective spans the whole torus",
            f.torus.iter().map(|k| k.to_string()).collect::<Vec<_>>().join("x")
        ));
    }
    if kind == CollectiveKind::AllToAll {
        return Err("all_to_all is not modelled on a torus".into());
    }
    let mut rs = Vec::new();
    let mut s = sf;
    for &k in &f.torus {
        if k > 1 {
            let kf = k as f64;
            rs.push(phase(
                vec![(Tier::Torus, s * (kf - 1.0) / kf)],
                k - 1,
                (k - 1) as f64 * f.up_latency_s,
                true,
            ));
        }
        s /= k.max(1) as f64;
    }
    let ag: Vec<Phase> = rs.iter().rev().cloned().collect();
    let phases = match kind {
        CollectiveKind::AllReduce => rs.into_iter().chain(ag).collect(),
        CollectiveKind::ReduceScatter => rs,
        _ => ag,
    };
    Ok(AlgoCost {
        algorithm: Algorithm::Ring,
        phases,
    })
}

/// The all-to-all the simulation charges ([`super::collective::ring_cost`] for
/// `AllToAll`): [`Algorithm::Direct`].
pub fn direct_all_to_all(layout: GroupLayout, size_bytes: f64, cluster: &ClusterSpec) -> AlgoCost {
    let torus_free = ClusterSpec {
        topology: crate::hardware::cluster::TopologySpec {
            torus: Vec::new(),
            ..cluster.topology.clone()
        },
        ..cluster.clone()
    };
    cost(
        CollectiveKind::AllToAll,
        Algorithm::Direct,
        layout,
        size_bytes,
        &torus_free,
    )
    .unwrap_or(AlgoCost {
        algorithm: Algorithm::Direct,
        phases: vec![],
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
    let (g, m) = shape(layout, &f);
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
    /// The algorithm for `kind`.
    pub fn for_kind(&self, kind: CollectiveKind) -> Algorithm {
        match kind {
            CollectiveKind::AllReduce => self.all_reduce,
            CollectiveKind::AllGather => self.all_gather,
            CollectiveKind::ReduceScatter => self.reduce_scatter,
            CollectiveKind::AllToAll => Algorithm::Direct,
        }
    }
}

/// Per-rank link-class loads and latency of one collective under `choice`, the way the
/// training simulation charges it: the chosen algorithm's decomposition, or the ring's when
/// the algorithm cannot run this collective on this topology.
pub fn collective_cost(
    kind: CollectiveKind,
    layout: GroupLayout,
    size_bytes: f64,
    cluster: &ClusterSpec,
    choice: &AlgorithmChoice,
) -> CollectiveCost {
    let algo = choice.for_kind(kind);
    if algo == Algorithm::Ring && cluster.topology == crate::hardware::cluster::TopologySpec::default() {
        return super::collective::ring_cost(kind, layout, size_bytes, cluster);
    }
    match cost(kind, algo, layout, size_bytes, cluster) {
        Ok(c) => c.to_collective_cost(cluster),
        Err(_) => super::collective::ring_cost(kind, layout, size_bytes, cluster),
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
    use crate::network::collective::ring_cost;

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

    /// With the default topology the tiered ring is `ring_cost`, byte for byte.
    #[test]
    fn ring_on_default_topology_is_ring_cost() {
        for over in [1.0, 4.0] {
            let mut c = crate::hardware::presets::test_cluster(1024, 8);
            c.oversubscription = over;
            c.nodes_per_leaf = 4;
            for kind in [
                CollectiveKind::AllReduce,
                CollectiveKind::AllGather,
                CollectiveKind::ReduceScatter,
            ] {
                for l in [
                    layout(8, 8),
                    layout(64, 8),
                    layout(128, 1),
                    layout(1024, 8),
                    layout(16, 2),
                ] {
                    let a = cost(kind, Algorithm::Ring, l, 1e9, &c).unwrap().to_collective_cost(&c);
                    let b = ring_cost(kind, l, 1e9, &c);
                    assert!((a.latency_s - b.latency_s).abs() < 1e-15, "{kind:?} {l:?}");
                    for class in [LinkClass::ScaleUp, LinkClass::ScaleOut, LinkClass::CrossLeaf] {
                        let s = |x: &CollectiveCost| {
                            x.loads.iter().filter(|(k, _)| *k == class).map(|(_, b)| b).sum::<f64>()
                        };
                        assert!(
                            (s(&a) - s(&b)).abs() < 1e-3,
                            "{kind:?} {l:?} {class:?}: {} vs {}",
                            s(&a),
                            s(&b)
                        );
                    }
                }
            }
        }
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
