//! NCCL's public constants that the tuner model reads, never fitted. Values from
//! NVIDIA/nccl v2.29.7 (identical on master 5067397): src/graph/tuning.cc unless noted;
//! read to learn how NCCL predicts time, the formulas of [`super`] are trainsim's own.

use super::{NcclAlgorithm, Protocol};

/// Base latency per call, seconds, by algorithm and protocol (tree, ring; the others 0).
pub fn base_latency_s(a: NcclAlgorithm, p: Protocol) -> f64 {
    let us = match (a, p) {
        (NcclAlgorithm::Tree, Protocol::Ll) => 6.8,
        (NcclAlgorithm::Tree, Protocol::Ll128) => 14.0,
        (NcclAlgorithm::Tree, Protocol::Simple) => 8.4,
        (NcclAlgorithm::Ring, Protocol::Ll) => 6.6,
        (NcclAlgorithm::Ring, Protocol::Ll128) => 14.0,
        (NcclAlgorithm::Ring, Protocol::Simple) => 8.4,
        _ => 0.0,
    };
    us * 1e-6
}

/// Hardware latency of one NVLink hop, seconds (`hwLat[NVLINK]`).
pub fn nvlink_hop_s(a: NcclAlgorithm, p: Protocol) -> f64 {
    let us = match (a, p) {
        (NcclAlgorithm::Tree, Protocol::Ll) => 0.6,
        (NcclAlgorithm::Tree, Protocol::Ll128) => 1.25,
        (NcclAlgorithm::Tree, Protocol::Simple) => 4.0,
        (NcclAlgorithm::Ring, Protocol::Ll) => 0.6,
        (NcclAlgorithm::Ring, Protocol::Ll128) => 1.9,
        (NcclAlgorithm::Ring, Protocol::Simple) => 3.4,
        (NcclAlgorithm::CollNet, _) => 3.7,
        (NcclAlgorithm::Nvls | NcclAlgorithm::NvlsTree, _) => 25.0,
        _ => 0.0,
    };
    us * 1e-6
}

/// Hardware latency of one network hop, seconds (`hwLat[NET]`), before the plugin's.
pub fn net_hop_s(a: NcclAlgorithm, p: Protocol) -> f64 {
    let us = match (a, p) {
        (NcclAlgorithm::Tree, Protocol::Ll) => 5.0,
        (NcclAlgorithm::Tree, Protocol::Ll128) => 8.5,
        (NcclAlgorithm::Tree, Protocol::Simple) => 14.0,
        (NcclAlgorithm::Ring, Protocol::Ll) => 2.7,
        (NcclAlgorithm::Ring, Protocol::Ll128) => 4.0,
        (NcclAlgorithm::Ring, Protocol::Simple) => 14.0,
        (NcclAlgorithm::CollNet, _) => 31.0,
        (NcclAlgorithm::Nvls, _) => 18.0,
        (NcclAlgorithm::NvlsTree, _) => 20.9,
        _ => 0.0,
    };
    us * 1e-6
}

/// Host-side network overhead bounding an intra-node step of a multi-node ring from below
/// (`getNetOverhead`, x86 Intel), seconds; three times that for Simple.
pub const NET_OVERHEAD_S: f64 = 1e-6;
/// NCCL's "plateau" factor on the latency of multi-node Simple ring all-reduce.
pub const RING_SIMPLE_PLATEAU: f64 = 1.4;
/// `nvlsEfficiency`: Hopper, Blackwell.
pub const NVLS_EFFICIENCY: [f64; 3] = [0.85, 0.85, 0.74];
/// Per-channel tree bandwidth caps, bytes/s, by generation and node class (1, 2, >2 nodes).
pub const PER_CHANNEL_TREE: [[f64; 3]; 3] = [
    [24.0e9, 23.6e9, 17.8e9],
    [38.7e9, 41.4e9, 36.0e9],
    [70.0e9, 42.8e9, 24.0e9],
];
/// The same for tree LL128.
pub const PER_CHANNEL_TREE_LL128: [[f64; 3]; 3] = [
    [20.0e9, 20.0e9, 20.0e9],
    [36.7e9, 36.7e9, 29.0e9],
    [55.6e9, 31.67e9, 20.0e9],
];
/// Per-channel ring LL128 caps, bytes/s, by generation.
pub const PER_CHANNEL_RING_LL128: [f64; 3] = [20.0e9, 36.7e9, 40.0e9];
/// LL bandwidth caps across nodes (Intel CPU row): 2 nodes, more, bytes/s.
pub const LL_MAX_MULTI_NODE: [f64; 2] = [39.0e9, 20.4e9];
/// LL bandwidth caps on one node, by generation, bytes/s.
pub const LL_MAX_ONE_NODE: [f64; 3] = [87.7e9, 141.0e9, 282.0e9];
/// Ring LL128 payload factor (120 of 128 bytes, with NCCL's margin).
pub const LL128_FACTOR: f64 = 0.92;
/// Tree all-reduce bandwidth factor.
pub const TREE_FACTOR: f64 = 0.92;
/// Tree LL bandwidth divisor.
pub const TREE_LL_DIVISOR: f64 = 3.8;

/// `treeCorrectionFactor[protocol][log2(bytes/64)]`, 64 B to 256 MiB.
pub fn tree_correction(p: Protocol, log2_size_over_64: usize) -> f64 {
    const LL: [f64; 24] = [
        1.0, 1.0, 1.0, 1.0, 0.9, 0.8, 0.7, 0.7, 0.7, 0.7, 0.6, 0.5, 0.4, 0.4, 0.5, 0.6, 0.7, 0.8, 0.9, 1.0, 1.0, 1.0,
        1.0, 1.0,
    ];
    const LL128: [f64; 24] = [
        1.0, 1.0, 1.0, 1.0, 1.0, 0.9, 0.8, 0.8, 0.8, 0.7, 0.6, 0.6, 0.6, 0.6, 0.6, 0.6, 0.8, 0.9, 0.9, 0.9, 0.9, 1.0,
        1.0, 1.0,
    ];
    const SIMPLE: [f64; 24] = [
        0.9, 0.9, 0.9, 0.9, 0.9, 0.9, 0.9, 0.8, 0.7, 0.6, 0.6, 0.5, 0.5, 0.5, 0.5, 0.6, 0.7, 0.8, 0.7, 0.7, 0.8, 0.9,
        0.9, 0.9,
    ];
    let t = match p {
        Protocol::Ll => &LL,
        Protocol::Ll128 => &LL128,
        Protocol::Simple => &SIMPLE,
    };
    t.get(log2_size_over_64).copied().unwrap_or(1.0)
}

/// Threads per channel (src/include/comm.h): LL and Simple 512, LL128 640.
pub fn threads(p: Protocol) -> f64 {
    match p {
        Protocol::Ll128 => 640.0,
        _ => 512.0,
    }
}

/// Bytes per thread below which NCCL drops channels for small messages (enqueue.cc).
pub fn thread_threshold_bytes(p: Protocol) -> f64 {
    match p {
        Protocol::Simple => 64.0,
        _ => 8.0,
    }
}

/// `NCCL_STEPS`.
pub const STEPS: f64 = 8.0;
/// Payload one ring step moves per channel at most (enqueue.cc `calcCollChunking`), bytes.
pub fn ring_chunk_bytes(p: Protocol, buffer_bytes: f64) -> f64 {
    match p {
        // stepSize x chunkSteps (NCCL_STEPS/2)
        Protocol::Simple => (buffer_bytes / STEPS).floor() * (STEPS / 2.0),
        // DEFAULT_LL128_BUFFSIZE / NCCL_STEPS, 120 of 128 bytes payload
        Protocol::Ll128 => (120.0 * 640.0 * STEPS * 8.0 / STEPS * 15.0 / 16.0).floor(),
        // DEFAULT_LL_BUFFSIZE / NCCL_STEPS, 8 of 16 bytes payload
        Protocol::Ll => 8.0 * 512.0 * STEPS * 16.0 / STEPS / 2.0,
    }
}

/// NCCL's assumed bandwidth of one p2p channel across the network
/// (`NCCL_P2P_PER_CHANNEL_NET_BW`, paths.cc), bytes/s.
pub const P2P_PER_CHANNEL_NET_BYTES_PER_S: f64 = 14e9;
/// `NCCL_MAX_DEV_WORK_P2P_PER_BATCH`.
pub const MAX_P2P_PER_BATCH: u32 = 8;
/// `P2P_NVL_CHUNKSIZE`, bytes.
pub const P2P_NVLINK_CHUNK_BYTES: f64 = 512.0 * 1024.0;
/// Below this many bytes per channel p2p uses LL (`P2P_LL_THRESHOLD`).
pub const P2P_LL_THRESHOLD_BYTES: f64 = 16384.0;
/// Channels on one NVSwitch node: 16 found by the search, doubled.
pub const ONE_NODE_CHANNELS: u32 = 32;
/// NCCL's per-channel speed of a network search (sm90/sm100 `speedArrayInter` top), bytes/s:
/// NICs slower than this are pooled into channels of this speed.
pub const SEARCH_CHANNEL_BYTES_PER_S: f64 = 25e9;
