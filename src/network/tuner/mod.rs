//! The collective model in the manner of NCCL's tuner: owns [`Protocol`], [`NcclAlgorithm`],
//! [`Choice`], [`System`] (a process group on a cluster as the model sees it), [`time_s`]
//! (one closed form per algorithm and protocol), [`candidates`] and [`select`] (the choice
//! NCCL's tuner makes) and [`predict`]. Formulas and derivations: docs/network.md ("The NCCL
//! model"); NCCL's constants: [`table`]; the fitted ones: [`super::calibration`].
//!
//! Files: [`table`] (NCCL's constants), [`collectives`] (ring, broadcast, tree, NVLS,
//! NVLS-tree, CollNet), [`p2p`] (the p2p channel policy, sendrecv, all-to-all).
//!
//! Selection evaluates the same formulas twice: with NCCL's nominal constants
//! ([`super::calibration::NOMINAL`], NCCL's `latency + size / bandwidth` ring) it reproduces
//! NCCL's own choice, mistakes included; the calibrated constants then time that choice.
//! A measured tuner plugin (EFA) takes the fastest choice under the calibrated constants.

pub mod collectives;
pub mod p2p;
pub mod table;

use super::calibration::{generation, has_nvls, ModelConstants, ScaleUpGeneration, NOMINAL};
use super::group::{CollectiveKind, GroupLayout};
use crate::hardware::fabric::TunerKind;
use crate::hardware::ClusterSpec;
use serde::{Deserialize, Serialize};

/// NCCL's protocols.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Protocol {
    /// Low latency: 8 bytes of payload and 8 of flags per 16.
    Ll,
    /// 120 bytes of payload per 128-byte line.
    Ll128,
    /// Plain copies through FIFOs, full bandwidth.
    Simple,
}

impl Protocol {
    /// Every protocol, in NCCL's order.
    pub const ALL: [Protocol; 3] = [Protocol::Ll, Protocol::Ll128, Protocol::Simple];
    /// Names accepted by `--protocol` (and `auto`).
    pub const NAMES: &'static [&'static str] = &["auto", "ll", "ll128", "simple"];

    /// NCCL's spelling.
    pub fn name(self) -> &'static str {
        match self {
            Protocol::Ll => "LL",
            Protocol::Ll128 => "LL128",
            Protocol::Simple => "Simple",
        }
    }

    /// Parses `auto` (`None`), `ll`, `ll128`, `simple` (any case); the error lists them.
    pub fn parse(s: &str) -> Result<Option<Protocol>, String> {
        match s.trim().to_ascii_lowercase().as_str() {
            "auto" => Ok(None),
            "ll" => Ok(Some(Protocol::Ll)),
            "ll128" => Ok(Some(Protocol::Ll128)),
            "simple" => Ok(Some(Protocol::Simple)),
            _ => Err(format!(
                "unknown protocol '{s}': allowed values are \"auto\", \"ll\", \"ll128\", \"simple\""
            )),
        }
    }

    /// Bytes on the wire per byte of payload.
    pub fn wire_factor(self) -> f64 {
        match self {
            Protocol::Ll => 2.0,
            Protocol::Ll128 => 128.0 / 120.0,
            Protocol::Simple => 1.0,
        }
    }
}

/// The algorithms of NCCL the model times.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum NcclAlgorithm {
    /// Ring (all-reduce, all-gather, reduce-scatter; the chain of broadcast and reduce).
    Ring,
    /// Double binary tree across domains, chain inside (all-reduce).
    Tree,
    /// NVLink SHARP inside one domain.
    Nvls,
    /// NVLS inside domains, a tree across them (all-reduce).
    NvlsTree,
    /// In-network reduction (SHARP) across domains (all-reduce, all-gather).
    CollNet,
    /// Point-to-point to the ring successor (sendrecv, pipeline sends).
    P2p,
    /// Grouped send/receive to every peer.
    AllToAll,
}

impl NcclAlgorithm {
    /// NCCL's spelling.
    pub fn name(self) -> &'static str {
        match self {
            NcclAlgorithm::Ring => "Ring",
            NcclAlgorithm::Tree => "Tree",
            NcclAlgorithm::Nvls => "NVLS",
            NcclAlgorithm::NvlsTree => "NVLSTree",
            NcclAlgorithm::CollNet => "CollNet",
            NcclAlgorithm::P2p => "P2P",
            NcclAlgorithm::AllToAll => "AllToAll",
        }
    }
}

/// An algorithm and the protocol it runs.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct Choice {
    /// The algorithm.
    pub algorithm: NcclAlgorithm,
    /// The protocol.
    pub protocol: Protocol,
}

impl Choice {
    const fn new(algorithm: NcclAlgorithm, protocol: Protocol) -> Choice {
        Choice { algorithm, protocol }
    }
}

/// A process group on a cluster as the model sees it (per GPU and direction, line rates).
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct System {
    /// NVLink generation of the GPU.
    pub generation: ScaleUpGeneration,
    /// Ranks `n`.
    pub ranks: u32,
    /// Ranks per scale-up domain `g`.
    pub per_domain: u32,
    /// Domains spanned `N`.
    pub domains: u32,
    /// NVLink line rate per GPU, bytes/s.
    pub nvlink_bytes_per_s: f64,
    /// NIC line rate per GPU (its share of the node's NICs), bytes/s.
    pub nic_bytes_per_s: f64,
    /// NICs per GPU (at least 1 for NCCL's p2p channel rule).
    pub nics_per_gpu: f64,
    /// Channels NCCL's topology search finds (its tuner's per-channel caps multiply these).
    pub search_channels: u32,
    /// Channels the kernels run (twice the search's across nodes; 32 on one NVSwitch node).
    pub collective_channels: u32,
    /// NVLink SHARP in the switch.
    pub nvls: bool,
    /// SHARP in the network (CollNet).
    pub sharp: bool,
    /// Packets sprayed: no ring straggler.
    pub packet_spraying: bool,
    /// Who picks.
    pub tuner: TunerKind,
    /// Latency the network plugin reports per network hop, seconds.
    pub plugin_latency_s: f64,
    /// p2p chunk across the network, bytes.
    pub p2p_chunk_bytes: f64,
    /// Simple protocol buffer, bytes.
    pub buffer_bytes: f64,
}

impl System {
    /// The group `layout` (its `members_per_node` read as members per scale-up domain) on
    /// `cluster`.
    pub fn new(cluster: &ClusterSpec, layout: GroupLayout) -> System {
        let n = layout.size.max(1);
        let domain = match cluster.topology.scale_up_domain {
            0 => cluster.gpus_per_node,
            d => d,
        }
        .max(1);
        let g = layout.members_per_node.clamp(1, n).min(domain).max(1);
        let domains = n.div_ceil(g);
        let nic_line = crate::units::gbit_per_s_to_bytes_per_s(cluster.nic_gbit_per_s);
        let per_gpu = cluster.nic_bytes_per_s_per_gpu();
        let nics_per_gpu = cluster.nics_per_node as f64 / cluster.gpus_per_node.max(1) as f64;
        let search = |gpus: u32| -> u32 {
            let nics = (nics_per_gpu * gpus as f64).round().max(1.0);
            let c = if nic_line >= table::SEARCH_CHANNEL_BYTES_PER_S {
                nics
            } else {
                (per_gpu * gpus as f64 / table::SEARCH_CHANNEL_BYTES_PER_S).ceil()
            };
            c.clamp(1.0, 16.0) as u32
        };
        let (search_channels, collective_channels) = if domains > 1 {
            let s = search(g);
            (s, 2 * s)
        } else {
            (search(cluster.gpus_per_node.max(1)), table::ONE_NODE_CHANNELS)
        };
        let f = &cluster.fabric;
        System {
            generation: generation(&cluster.gpu),
            ranks: n,
            per_domain: g,
            domains,
            nvlink_bytes_per_s: crate::units::gbyte_per_s_to_bytes_per_s(cluster.gpu.scale_up_gbyte_per_s),
            nic_bytes_per_s: per_gpu,
            nics_per_gpu: nics_per_gpu.max(1.0),
            search_channels,
            collective_channels,
            nvls: has_nvls(&cluster.gpu),
            sharp: f.sharp,
            packet_spraying: f.packet_spraying,
            tuner: f.tuner,
            plugin_latency_s: f.latency_us * 1e-6,
            p2p_chunk_bytes: f.p2p_chunk_bytes,
            buffer_bytes: f.buffer_bytes,
        }
    }

    /// Generation index into NCCL's per-generation tables.
    pub(crate) fn gen(&self) -> usize {
        self.generation.index()
    }

    /// The domain's NIC line rate used by this group (`g` GPUs' shares), bytes/s.
    pub(crate) fn domain_nic_bytes_per_s(&self) -> f64 {
        self.per_domain as f64 * self.nic_bytes_per_s
    }

    /// Node class of NCCL's per-channel tables: 1, 2 or more domains.
    pub(crate) fn node_class(&self) -> usize {
        match self.domains {
            0 | 1 => 0,
            2 => 1,
            _ => 2,
        }
    }

    /// Ring straggler factor `1/(1 + sigma sqrt(2 ln N))` across `N >= 2` domains on a
    /// flow-routed fabric; 1 otherwise.
    pub(crate) fn straggler(&self, c: &ModelConstants) -> f64 {
        if self.domains < 2 || self.packet_spraying {
            return 1.0;
        }
        1.0 / (1.0 + c.straggler_cv * (2.0 * (self.domains as f64).ln()).sqrt())
    }
}

/// How the ring is timed: pipelined steps (the calibrated model) or NCCL's own
/// `latency + size / bandwidth` (its tuner's view, used to select).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum RingForm {
    /// Every step `max(c/b, latency + c/2b)`.
    Pipelined,
    /// `L + S/B`, NCCL's plateau factor included.
    AlphaBeta,
}

/// Seconds of one collective of `size_bytes` (nccl-tests' size) under `choice`, with
/// constants `c`.
pub fn time_s(
    sys: &System,
    kind: CollectiveKind,
    size_bytes: f64,
    choice: Choice,
    c: &ModelConstants,
    form: RingForm,
) -> f64 {
    if sys.ranks <= 1 {
        return 0.0;
    }
    let s = size_bytes.max(0.0);
    let p = choice.protocol;
    match choice.algorithm {
        NcclAlgorithm::Ring => match kind {
            CollectiveKind::Broadcast | CollectiveKind::Reduce => collectives::chain_s(sys, s, p, c),
            _ if form == RingForm::AlphaBeta => collectives::ring_alpha_beta_s(sys, kind, s, p, c),
            _ => collectives::ring_s(sys, kind, s, p, c),
        },
        NcclAlgorithm::Tree => collectives::tree_s(sys, s, p, c),
        NcclAlgorithm::Nvls => collectives::nvls_s(sys, kind, s, c),
        NcclAlgorithm::NvlsTree => collectives::nvls_tree_s(sys, kind, s, c),
        NcclAlgorithm::CollNet => collectives::collnet_s(sys, kind, s, c),
        NcclAlgorithm::P2p => p2p::sendrecv_s(sys, s, c),
        NcclAlgorithm::AllToAll => p2p::all_to_all_s(sys, s, c),
    }
}

/// nccl-tests' bus-bandwidth factor: `2(n-1)/n` for all-reduce, `(n-1)/n` for all-gather,
/// reduce-scatter and all-to-all, 1 for sendrecv, broadcast and reduce.
pub fn bus_factor(kind: CollectiveKind, n: u32) -> f64 {
    if n <= 1 {
        return 0.0;
    }
    let nf = n as f64;
    match kind {
        CollectiveKind::AllReduce => 2.0 * (nf - 1.0) / nf,
        CollectiveKind::ReduceScatter | CollectiveKind::AllGather | CollectiveKind::AllToAll => (nf - 1.0) / nf,
        CollectiveKind::SendRecv | CollectiveKind::Broadcast | CollectiveKind::Reduce => 1.0,
    }
}

/// At most 8 candidates, no allocation.
#[derive(Clone, Copy, Debug)]
pub struct Candidates {
    items: [Choice; 8],
    len: usize,
}

impl Candidates {
    fn new() -> Candidates {
        Candidates {
            items: [Choice::new(NcclAlgorithm::Ring, Protocol::Simple); 8],
            len: 0,
        }
    }

    fn push(&mut self, c: Choice) {
        if self.len < self.items.len() {
            self.items[self.len] = c;
            self.len += 1;
        }
    }

    fn all(&mut self, a: NcclAlgorithm) {
        for p in Protocol::ALL {
            self.push(Choice::new(a, p));
        }
    }

    /// The candidates, in NCCL's order (ties go to the first).
    pub fn as_slice(&self) -> &[Choice] {
        &self.items[..self.len]
    }
}

/// The (algorithm, protocol) pairs the tuner considers for `kind` on `sys`; `forced` keeps
/// one algorithm (protocols still chosen) as NCCL_ALGO does, falling back as NCCL does where
/// it cannot run (NVLS and NVLS-tree across / inside one domain swap; a tree or CollNet on
/// one domain is a ring). Checks that a forced algorithm suits the hardware are the
/// caller's ([`super::algorithm`]).
pub fn candidates(sys: &System, kind: CollectiveKind, forced: Option<NcclAlgorithm>) -> Candidates {
    use NcclAlgorithm as A;
    let mut c = Candidates::new();
    let multi = sys.domains > 1;
    let ar = kind == CollectiveKind::AllReduce;
    let nvls_ok = sys.nvls && sys.per_domain >= 2;
    match kind {
        CollectiveKind::SendRecv => {
            c.push(Choice::new(A::P2p, Protocol::Simple));
            return c;
        }
        CollectiveKind::AllToAll => {
            c.push(Choice::new(A::AllToAll, Protocol::Simple));
            return c;
        }
        CollectiveKind::Broadcast | CollectiveKind::Reduce => {
            c.all(A::Ring);
            return c;
        }
        _ => {}
    }
    match forced {
        Some(A::Ring) => c.all(A::Ring),
        Some(A::Tree) if multi && ar => c.all(A::Tree),
        Some(A::Tree) => c.all(A::Ring),
        Some(A::NvlsTree) if multi => c.push(Choice::new(A::NvlsTree, Protocol::Simple)),
        Some(A::NvlsTree | A::Nvls) if !multi => c.push(Choice::new(A::Nvls, Protocol::Simple)),
        Some(A::CollNet) if multi => c.push(Choice::new(A::CollNet, Protocol::Simple)),
        Some(A::CollNet) => c.all(A::Ring),
        // NVLS cannot span domains without CollNet: NCCL falls back to its own choice
        _ => {
            c.all(A::Ring);
            if ar && multi {
                c.all(A::Tree);
            }
            let rs_ag_ar = matches!(
                kind,
                CollectiveKind::AllReduce | CollectiveKind::AllGather | CollectiveKind::ReduceScatter
            );
            if nvls_ok && !multi && rs_ag_ar {
                c.push(Choice::new(A::Nvls, Protocol::Simple));
            }
            if nvls_ok && multi && ar {
                c.push(Choice::new(A::NvlsTree, Protocol::Simple));
            }
            if sys.sharp && multi && (ar || kind == CollectiveKind::AllGather) {
                c.push(Choice::new(A::CollNet, Protocol::Simple));
            }
        }
    }
    c
}

/// The choice of NCCL's tuner (or of a measured plugin) among `candidates` (module docs);
/// `protocol` restricts the protocols when given and some candidate runs it.
pub fn select(
    sys: &System,
    kind: CollectiveKind,
    size_bytes: f64,
    forced: Option<NcclAlgorithm>,
    protocol: Option<Protocol>,
    calibrated: &ModelConstants,
) -> Choice {
    let all = candidates(sys, kind, forced);
    let all = all.as_slice();
    let keep = |x: &Choice| match protocol {
        Some(p) if all.iter().any(|y| y.protocol == p) => x.protocol == p,
        _ => true,
    };
    let mut list = all.iter().filter(|x| keep(x));
    let first = *list.next().unwrap_or(&all[0]);
    if all.iter().filter(|x| keep(x)).count() == 1 {
        return first;
    }
    let (c, form) = match sys.tuner {
        TunerKind::Nccl => (&NOMINAL, RingForm::AlphaBeta),
        TunerKind::Measured => (calibrated, RingForm::Pipelined),
    };
    let mut best = (first, f64::INFINITY);
    for &x in all.iter().filter(|x| keep(x)) {
        let t = time_s(sys, kind, size_bytes, x, c, form);
        if t < best.1 {
            best = (x, t);
        }
    }
    best.0
}

/// A prediction: what ran and how long it took.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Prediction {
    /// The algorithm and protocol.
    pub choice: Choice,
    /// Seconds on an idle network.
    pub time_s: f64,
}

/// The tuner's choice for `kind` of `size_bytes` on `sys`, timed with `calibrated`.
pub fn predict(
    sys: &System,
    kind: CollectiveKind,
    size_bytes: f64,
    forced: Option<NcclAlgorithm>,
    protocol: Option<Protocol>,
    calibrated: &ModelConstants,
) -> Prediction {
    let choice = select(sys, kind, size_bytes, forced, protocol, calibrated);
    Prediction {
        choice,
        time_s: time_s(sys, kind, size_bytes, choice, calibrated, RingForm::Pipelined),
    }
}

/// `floor(log2(x))` for `x >= 1`, else 0.
pub(crate) fn log2_floor(x: f64) -> u32 {
    if x >= 1.0 {
        (x as u64).ilog2()
    } else {
        0
    }
}

/// The smallest power of two at least `x` (1 for `x <= 1`).
pub(crate) fn pow2_up(x: u32) -> u32 {
    x.max(1).next_power_of_two()
}
