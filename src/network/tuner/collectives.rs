//! Closed forms of NCCL's collective algorithms: ring (pipelined, and NCCL's own
//! `L + S/B`), the chain of broadcast and reduce, tree, NVLS, NVLS-tree and CollNet. Seconds
//! from bytes; every formula is derived in docs/network.md ("The NCCL model").

use super::super::calibration::ModelConstants;
use super::super::group::CollectiveKind;
use super::table::*;
use super::{bus_factor, log2_floor, NcclAlgorithm, Protocol, System};

/// One NVLink hop of algorithm `a`, seconds: NCCL's table times the latency scale.
pub(crate) fn nvlink_hop(a: NcclAlgorithm, p: Protocol, c: &ModelConstants) -> f64 {
    nvlink_hop_s(a, p) * c.latency_scale
}

/// One network hop: NCCL's table times the latency scale, plus the plugin's latency (twice
/// for Simple: data and flush).
pub(crate) fn net_hop(sys: &System, a: NcclAlgorithm, p: Protocol, c: &ModelConstants) -> f64 {
    let plugin = sys.plugin_latency_s * if p == Protocol::Simple { 2.0 } else { 1.0 };
    net_hop_s(a, p) * c.latency_scale + plugin
}

fn nvlink_bandwidth(sys: &System, c: &ModelConstants) -> f64 {
    sys.nvlink_bytes_per_s * c.nvlink(sys.generation)
}

/// The ring's bandwidth (what every rank forwards), protocol included, bytes/s.
fn ring_bandwidth(sys: &System, p: Protocol, c: &ModelConstants) -> f64 {
    let nvl = nvlink_bandwidth(sys, c);
    let bw = if sys.domains <= 1 {
        nvl
    } else {
        nvl.min(sys.domain_nic_bytes_per_s() * c.net_efficiency * sys.straggler(c))
    };
    match p {
        Protocol::Simple => bw,
        Protocol::Ll128 => (bw * LL128_FACTOR).min(sys.search_channels as f64 * PER_CHANNEL_RING_LL128[sys.gen()]),
        Protocol::Ll => {
            let cap = match sys.domains {
                0 | 1 => LL_MAX_ONE_NODE[sys.gen()],
                2 => LL_MAX_MULTI_NODE[0],
                _ => LL_MAX_MULTI_NODE[1],
            };
            (bw * 0.5).min(cap)
        }
    }
}

/// Latency of an intra-domain and of a cross-domain ring step, seconds.
fn ring_hops(sys: &System, p: Protocol, c: &ModelConstants) -> (f64, f64) {
    let mut intra = nvlink_hop(NcclAlgorithm::Ring, p, c);
    if sys.domains > 1 {
        let overhead = NET_OVERHEAD_S * if p == Protocol::Simple { 3.0 } else { 1.0 };
        intra = intra.max(overhead * c.latency_scale);
        (intra, net_hop(sys, NcclAlgorithm::Ring, p, c))
    } else {
        (intra, 0.0)
    }
}

/// Ring steps and how many of them cross domains.
fn ring_steps(sys: &System, kind: CollectiveKind) -> (f64, f64) {
    let n = sys.ranks as f64;
    let m = sys.domains as f64;
    let inter = if sys.domains > 1 { m } else { 1.0 };
    match kind {
        CollectiveKind::AllReduce => (2.0 * (n - 1.0), 2.0 * (inter - 1.0)),
        _ => (n - 1.0, inter - 1.0),
    }
}

/// Channels used for `s` bytes: NCCL drops channels while a channel would get fewer than
/// `threads x threshold` bytes; taken as a real number so time stays monotone.
fn channels_for(sys: &System, s: f64, p: Protocol, per_rank_divisor: f64) -> f64 {
    let nch = sys.collective_channels as f64;
    let thr = thread_threshold_bytes(p) * if p == Protocol::Ll { per_rank_divisor } else { 1.0 };
    (s / (threads(p) * thr)).clamp(1.0, nch)
}

/// A step streams `c` bytes in two slices: the next hop starts once the first slice lands,
/// so the hop latency hides behind half a step.
fn step_s(chunk: f64, per_channel_bytes_per_s: f64, latency_s: f64) -> f64 {
    (chunk / per_channel_bytes_per_s).max(latency_s + chunk / (2.0 * per_channel_bytes_per_s))
}

/// The pipelined ring (all-reduce, all-gather, reduce-scatter): `base + loops x steps x
/// max(c/b, l + c/2b)` with `c = S / (n x channels x loops)` bytes per step and channel.
pub fn ring_s(sys: &System, kind: CollectiveKind, s: f64, p: Protocol, c: &ModelConstants) -> f64 {
    let n = sys.ranks as f64;
    let bw = ring_bandwidth(sys, p, c);
    let nch = sys.collective_channels as f64;
    let nc = channels_for(sys, s, p, n);
    let per_channel = bw / nch;
    let (steps, inter) = ring_steps(sys, kind);
    let (intra_l, inter_l) = ring_hops(sys, p, c);
    let l_hop = ((steps - inter) * intra_l + inter * inter_l) / steps;
    let chunk = ring_chunk_bytes(p, sys.buffer_bytes);
    let loops = (s / (n * nc * chunk)).ceil().max(1.0);
    let cstep = s / (n * nc * loops);
    base_latency_s(NcclAlgorithm::Ring, p) * c.latency_scale + loops * steps * step_s(cstep, per_channel, l_hop)
}

/// NCCL's own ring time, `L + S F / B` with its plateau factor (multi-node Simple
/// all-reduce), as its tuner predicts it; used to select, never to charge.
pub fn ring_alpha_beta_s(sys: &System, kind: CollectiveKind, s: f64, p: Protocol, c: &ModelConstants) -> f64 {
    let n = sys.ranks as f64;
    let bw = ring_bandwidth(sys, p, c);
    let nch = sys.collective_channels as f64;
    let (steps, inter) = ring_steps(sys, kind);
    let (intra_l, inter_l) = ring_hops(sys, p, c);
    let mut lat =
        base_latency_s(NcclAlgorithm::Ring, p) * c.latency_scale + (steps - inter) * intra_l + inter * inter_l;
    if p == Protocol::Simple && sys.domains > 1 && kind == CollectiveKind::AllReduce && s / (nch * n) >= 64.0 {
        lat *= RING_SIMPLE_PLATEAU;
    }
    lat + s * bus_factor(kind, sys.ranks) / bw
}

/// Broadcast and reduce: a pipelined chain over the ring's `n-1` hops, the first chunk
/// filling the chain then the others streaming.
pub fn chain_s(sys: &System, s: f64, p: Protocol, c: &ModelConstants) -> f64 {
    let bw = ring_bandwidth(sys, p, c);
    let nch = sys.collective_channels as f64;
    let nc = channels_for(sys, s, p, 1.0);
    let per_channel = bw / nch;
    let hops = (sys.ranks - 1) as f64;
    let inter = sys.domains.saturating_sub(1) as f64;
    let (intra_l, inter_l) = ring_hops(sys, p, c);
    let l_hop = ((hops - inter) * intra_l + inter * inter_l) / hops;
    let chunk = ring_chunk_bytes(p, sys.buffer_bytes);
    let loops = (s / (nc * chunk)).ceil().max(1.0);
    let first = chunk.min(s / nc);
    base_latency_s(NcclAlgorithm::Ring, p) * c.latency_scale
        + (hops - 1.0) * step_s(first, per_channel, l_hop)
        + loops * step_s(s / (nc * loops), per_channel, l_hop)
}

/// Double binary tree across domains, a chain inside each (all-reduce): NCCL's bandwidth
/// caps and correction factors, `2 (g-1)` NVLink and `2 floor(log2 N)` network levels.
pub fn tree_s(sys: &System, s: f64, p: Protocol, c: &ModelConstants) -> f64 {
    let ci = sys.node_class();
    let nch = sys.search_channels as f64;
    let net = sys.domain_nic_bytes_per_s() * c.net_efficiency;
    let nvl = nvlink_bandwidth(sys, c);
    let mut bw = (net.min(nvl) * TREE_FACTOR).min(nch * PER_CHANNEL_TREE[sys.gen()][ci]);
    match p {
        Protocol::Ll => {
            let cap = LL_MAX_MULTI_NODE[if sys.domains == 2 { 0 } else { 1 }];
            bw = (bw / TREE_LL_DIVISOR).min(cap)
        }
        Protocol::Ll128 => bw = (bw * 120.0 / 128.0).min(nch * PER_CHANNEL_TREE_LL128[sys.gen()][ci]),
        Protocol::Simple => {}
    }
    let ls = log2_floor(((s.max(0.0) as u64) >> 6) as f64) as usize;
    if ls < 23 {
        bw *= tree_correction(p, ls);
    }
    let algbw = bw / 2.0;
    let g = sys.per_domain as f64;
    let levels = log2_floor(sys.domains as f64) as f64;
    let lat = base_latency_s(NcclAlgorithm::Tree, p) * c.latency_scale
        + 2.0 * ((g - 1.0) * nvlink_hop(NcclAlgorithm::Tree, p, c) + levels * net_hop(sys, NcclAlgorithm::Tree, p, c));
    lat + s / algbw
}

/// NVLS bus bandwidth inside one domain: all-reduce reads every GPU's copy of a shard and
/// multicasts the result (`S (g+1)/g` per link and direction, NCCL's nvlsEfficiency and the
/// fitted wire factor); all-gather and reduce-scatter carry a ring's bytes.
fn nvls_bus_bytes_per_s(sys: &System, kind: CollectiveKind, c: &ModelConstants) -> f64 {
    let g = sys.per_domain as f64;
    if kind == CollectiveKind::AllReduce {
        let algbw = sys.nvlink_bytes_per_s * g / (g + 1.0) * NVLS_EFFICIENCY[sys.gen()] * c.nvls_factor;
        algbw * bus_factor(kind, sys.per_domain)
    } else {
        nvlink_bandwidth(sys, c)
    }
}

/// NVLink SHARP inside one domain (all-reduce, all-gather, reduce-scatter).
pub fn nvls_s(sys: &System, kind: CollectiveKind, s: f64, c: &ModelConstants) -> f64 {
    let bus = nvls_bus_bytes_per_s(sys, kind, c);
    nvlink_hop(NcclAlgorithm::Nvls, Protocol::Simple, c) + s * bus_factor(kind, sys.ranks) / bus
}

/// NVLS inside each domain, a tree per NVLS head across them (all-reduce): at two domains
/// each NIC carries half the data, beyond the tree's NIC side runs at the fitted fraction.
pub fn nvls_tree_s(sys: &System, kind: CollectiveKind, s: f64, c: &ModelConstants) -> f64 {
    let intra = nvls_bus_bytes_per_s(sys, CollectiveKind::AllReduce, c);
    let factor = if sys.domains == 2 {
        2.0
    } else {
        c.nvls_tree_net_efficiency
    };
    let inter = sys.domain_nic_bytes_per_s() * c.net_efficiency * factor;
    let bus = intra.min(inter);
    let levels = log2_floor(sys.domains as f64) as f64;
    let lat = nvlink_hop(NcclAlgorithm::NvlsTree, Protocol::Simple, c)
        + 2.0 * levels * net_hop(sys, NcclAlgorithm::NvlsTree, Protocol::Simple, c);
    lat + s * bus_factor(kind, sys.ranks) / bus
}

/// CollNet / SHARP (all-reduce; all-gather by switch multicast): an intra-domain
/// reduce-scatter and all-gather around one in-network step.
pub fn collnet_s(sys: &System, kind: CollectiveKind, s: f64, c: &ModelConstants) -> f64 {
    let g = sys.per_domain as f64;
    let m = sys.domains as f64;
    let mut algbw = if kind == CollectiveKind::AllReduce {
        sys.domain_nic_bytes_per_s() * c.collnet_efficiency
    } else {
        sys.domain_nic_bytes_per_s() * c.net_efficiency * m / (m - 1.0).max(1.0)
    };
    if g > 1.0 {
        algbw = algbw.min(nvlink_bandwidth(sys, c) / (2.0 * (g - 1.0) / g));
    }
    let lat = 2.0 * (nvlink_hop(NcclAlgorithm::CollNet, Protocol::Simple, c) + (g - 1.0) * 0.4e-6 * c.latency_scale)
        + net_hop(sys, NcclAlgorithm::CollNet, Protocol::Simple, c);
    lat + s / algbw
}
