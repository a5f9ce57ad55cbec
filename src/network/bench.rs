//! One collective at a time on an idle network, nccl-tests style: owns the computations
//! behind `trainsim collective` (sizes, bus factors, the tool's default cluster and title);
//! the printing is the CLI's.
//!
//! Each size runs through a [`super::FlowNetwork`]: with [`sweep_sizes`], any algorithm of
//! [`super::algorithm`] on the tiers of [`super::topology`], phases one after another; with
//! [`collective_time`], a ring on one representative rank's ports as the training simulation
//! charges it ([`ClusterNetwork`]). The time is the flow completion plus the latency: what
//! that collective takes on an otherwise idle fabric.

use super::algorithm::{self, Algorithm};
use super::calibration;
use super::cluster::{ClusterNetwork, CollectiveRequest};
use super::collective::nccl_cost;
use super::group::{CollectiveKind, GroupLayout};
use super::tuner::{NcclAlgorithm, Protocol};
use crate::hardware::fabric::CollectiveModel;
use crate::hardware::presets::gpu_preset;
use crate::hardware::ClusterSpec;
use crate::units::SimTime;

/// One row of the table: one message size.
#[derive(Clone, Debug, PartialEq)]
pub struct BenchRow {
    /// Message size, bytes (the full buffer: all-reduce input, all-gather output,
    /// reduce-scatter input), as nccl-tests counts it.
    pub size_bytes: f64,
    /// Elements of 4 bytes (nccl-tests' `count` for float).
    pub count: u64,
    /// Time of one collective, seconds.
    pub time_s: f64,
    /// Algorithm bandwidth: size / time, GB/s (10^9 B/s).
    pub algbw_gbyte_per_s: f64,
    /// Bus bandwidth: algbw times the bus factor ([`bus_factor`]), GB/s.
    pub busbw_gbyte_per_s: f64,
    /// The algorithm that ran (the choice of `auto` at this size).
    pub algorithm: Algorithm,
    /// The protocol that ran (NCCL model; `None` under the hop model).
    pub protocol: Option<Protocol>,
}

impl BenchRow {
    /// `ring/Simple`, or the algorithm alone under the hop model.
    pub fn label(&self) -> String {
        match self.protocol {
            Some(p) => format!("{}/{}", self.algorithm.name(), p.name()),
            None => self.algorithm.name().to_string(),
        }
    }
}

pub use super::tuner::bus_factor;

/// The group of a benchmark: every GPU of the cluster, one scale-up domain
/// (`gpus_per_node` unless `topology.scale_up_domain` says more) per unit.
pub fn whole_cluster_layout(cluster: &ClusterSpec) -> GroupLayout {
    GroupLayout {
        size: cluster.num_gpus,
        members_per_node: cluster.scale_up_domain(),
    }
}

/// The cluster `trainsim collective` starts from without a scenario: 16 H100-SXM, 8 per
/// node, one 400 Gbit/s NIC per GPU, the scenario defaults for latencies and efficiencies,
/// a non-blocking leaf-spine fabric.
pub fn default_cluster() -> ClusterSpec {
    ClusterSpec {
        gpu: gpu_preset("H100-SXM").expect("preset exists"),
        num_gpus: 16,
        gpus_per_node: 8,
        nics_per_node: 8,
        nic_gbit_per_s: 400.0,
        scale_up_latency_us: 1.5,
        scale_out_latency_us: 4.0,
        scale_up_efficiency: 0.8,
        scale_out_efficiency: 0.9,
        oversubscription: 1.0,
        nodes_per_leaf: crate::hardware::cluster::DEFAULT_NODES_PER_LEAF,
        topology: Default::default(),
        fabric: Default::default(),
        groups: Vec::new(),
        cross_group_gbit_per_s: 0.0,
    }
}

/// Sets the efficiencies calibrated for the cluster's GPU and NIC generation
/// ([`calibration::calibrated`]): the scale-up one when `scale_up` (and the generation has
/// one), the scale-out one when `scale_out`.
pub fn apply_calibration(c: &mut ClusterSpec, scale_up: bool, scale_out: bool) {
    if scale_up {
        c.scale_up_efficiency = calibration::scale_up_efficiency(&c.gpu);
    }
    if scale_out {
        c.scale_out_efficiency = calibration::scale_out_efficiency();
    }
}

/// The non-default topology of a cluster, for titles ("" when classic; else each feature
/// after ", ").
pub fn topology_note(c: &ClusterSpec) -> String {
    let t = &c.topology;
    let mut parts = Vec::new();
    if t.scale_up_domain > 0 {
        parts.push(format!("{}-GPU scale-up domains", c.scale_up_domain()));
    }
    if t.fat_tree_tiers == 3 {
        parts.push(format!(
            "3 tiers, {} leaves per pod, {}:1 core",
            t.leaves_per_pod, t.core_oversubscription
        ));
    }
    if t.rail_optimized {
        parts.push("rail-optimized".into());
    }
    if !t.torus.is_empty() {
        let d: Vec<String> = t.torus.iter().map(|k| k.to_string()).collect();
        parts.push(format!("{} torus", d.join("x")));
    }
    parts.iter().map(|p| format!(", {p}")).collect()
}

/// Seconds for one ring collective of `size_bytes` on an idle network, charged as the
/// training simulation charges it, split into `chunks` pieces run one after another (each
/// paying the full ring latency; 1 = NCCL's pipelined ring).
pub fn collective_time(
    kind: CollectiveKind,
    layout: GroupLayout,
    size_bytes: f64,
    chunks: u32,
    cluster: &ClusterSpec,
) -> f64 {
    let mut net = ClusterNetwork::new(cluster, 1);
    let chunks = chunks.max(1);
    let req = CollectiveRequest {
        kind,
        layout,
        algorithm: Algorithm::Ring,
        size_bytes: size_bytes / chunks as f64,
    };
    let mut now = SimTime::ZERO;
    for c in 0..chunks {
        now = match net.start_collective(now, 0, &req, c as u64, false).done {
            Some(done) => done.ready_at,
            None => loop {
                // one completion per flow; the transfer is done with its last flow
                let t = net
                    .next_completion()
                    .expect("engine invariant broken: an unfinished transfer has a flow");
                if let Some(done) = net.advance(t).first() {
                    break done.ready_at;
                }
            },
        };
    }
    now.as_secs()
}

/// One collective of `size_bytes` over the whole cluster on an idle network: seconds, the
/// algorithm and the protocol that ran. NCCL model (and an NCCL algorithm): [`nccl_cost`]
/// on the ports, as the training simulation charges it; otherwise the algorithm's phases
/// one after another on the fabric's tiers, pipelined phases paying one `chunk_bytes` chunk
/// per hop (0: none; see [`super::algorithm`]).
pub fn idle_collective(
    kind: CollectiveKind,
    algo: Algorithm,
    protocol: Option<Protocol>,
    cluster: &ClusterSpec,
    size_bytes: f64,
    chunk_bytes: f64,
) -> Result<(f64, Algorithm, Option<Protocol>), String> {
    let layout = whole_cluster_layout(cluster);
    let nccl =
        cluster.fabric.model == CollectiveModel::Nccl && cluster.topology.torus.is_empty() && algo.nccl().is_ok();
    if nccl {
        let c = nccl_cost(kind, algo, protocol, layout, size_bytes, cluster)?;
        let ran = match c.choice.algorithm {
            NcclAlgorithm::Nvls if layout.size > cluster.scale_up_domain() => Algorithm::NvlsTree,
            a => Algorithm::of_nccl(a),
        };
        let net = ClusterNetwork::new(cluster, 0);
        return Ok((net.cost_idle_s(&c.cost), ran, Some(c.choice.protocol)));
    }
    if protocol.is_some() {
        return Err(format!(
            "--protocol needs the NCCL model and one of its algorithms (not --model hop, --algo {}, or a torus)",
            algo.name()
        ));
    }
    let a = match algo {
        Algorithm::Auto => algorithm::select(kind, layout, size_bytes, cluster),
        a => a,
    };
    let cost = algorithm::cost(kind, a, layout, size_bytes, cluster)?;
    Ok((
        algorithm::idle_time_s(&cost, cluster, chunk_bytes),
        cost.algorithm,
        None,
    ))
}

/// Runs sizes from `min_bytes` doubling up to `max_bytes` (inclusive) under `algo` (`Auto`:
/// chosen per size) and `protocol` (`None`: chosen per size), each split into `chunks`
/// pieces run one after another ([`idle_collective`]). Errors: the algorithm or protocol
/// cannot run this collective on this cluster.
#[allow(clippy::too_many_arguments)]
pub fn sweep_sizes(
    kind: CollectiveKind,
    algo: Algorithm,
    protocol: Option<Protocol>,
    cluster: &ClusterSpec,
    min_bytes: f64,
    max_bytes: f64,
    chunks: u32,
    chunk_bytes: f64,
) -> Result<Vec<BenchRow>, String> {
    let layout = whole_cluster_layout(cluster);
    let factor = bus_factor(kind, layout.size);
    let chunks = chunks.max(1);
    let mut rows = Vec::new();
    let mut size = min_bytes.max(1.0);
    while size <= max_bytes * (1.0 + 1e-12) {
        let piece = size / chunks as f64;
        let (t, ran, proto) = idle_collective(kind, algo, protocol, cluster, piece, chunk_bytes)?;
        let time_s = chunks as f64 * t;
        let algbw = if time_s > 0.0 { size / time_s / 1e9 } else { 0.0 };
        rows.push(BenchRow {
            size_bytes: size,
            count: (size / 4.0).floor() as u64,
            time_s,
            algbw_gbyte_per_s: algbw,
            busbw_gbyte_per_s: algbw * factor,
            algorithm: ran,
            protocol: proto,
        });
        size *= 2.0;
    }
    Ok(rows)
}

/// Parses a size such as `1024`, `1K`, `8M`, `1G`, `1GiB`, `512KB` (binary multiples, as
/// nccl-tests' `-b`/`-e`).
pub fn parse_size(s: &str) -> Result<f64, String> {
    let t = s.trim();
    let digits_end = t.find(|c: char| !(c.is_ascii_digit() || c == '.')).unwrap_or(t.len());
    let (num, unit) = t.split_at(digits_end);
    let v: f64 = num
        .parse()
        .map_err(|_| format!("'{s}' is not a size (examples: 1024, 1K, 8M, 1G)"))?;
    let mult = match unit.trim().to_ascii_uppercase().as_str() {
        "" | "B" => 1.0,
        "K" | "KB" | "KIB" => 1024.0,
        "M" | "MB" | "MIB" => 1024.0f64.powi(2),
        "G" | "GB" | "GIB" => 1024.0f64.powi(3),
        "T" | "TB" | "TIB" => 1024.0f64.powi(4),
        u => return Err(format!("'{s}': unknown unit '{u}' (use B, K, M, G or T)")),
    };
    let b = v * mult;
    if !(b.is_finite() && b >= 1.0) {
        return Err(format!("'{s}': a size must be at least 1 byte"));
    }
    Ok(b)
}

/// Parses an operation name (`all_reduce`, `all_gather`, `reduce_scatter`, `all_to_all`,
/// `sendrecv`, `broadcast`, `reduce`; `-` works too, and nccl-tests' `alltoall`).
pub fn parse_op(s: &str) -> Result<CollectiveKind, String> {
    match s.trim().to_ascii_lowercase().replace('-', "_").as_str() {
        "all_reduce" | "allreduce" => Ok(CollectiveKind::AllReduce),
        "all_gather" | "allgather" => Ok(CollectiveKind::AllGather),
        "reduce_scatter" | "reducescatter" => Ok(CollectiveKind::ReduceScatter),
        "all_to_all" | "alltoall" => Ok(CollectiveKind::AllToAll),
        "sendrecv" | "send_recv" => Ok(CollectiveKind::SendRecv),
        "broadcast" | "bcast" => Ok(CollectiveKind::Broadcast),
        "reduce" => Ok(CollectiveKind::Reduce),
        _ => Err(format!(
            "unknown collective '{s}': allowed values are {}",
            CollectiveKind::NAMES
                .iter()
                .map(|n| format!("\"{n}\""))
                .collect::<Vec<_>>()
                .join(", ")
        )),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::network::collective::ring_cost;
    use crate::network::group::ring_bytes_per_rank;

    #[test]
    fn idle_time_is_the_textbook_ring_time() {
        let c = crate::hardware::presets::test_cluster(16, 8);
        let l = whole_cluster_layout(&c);
        let s = 1024.0f64.powi(3);
        let t = collective_time(CollectiveKind::AllReduce, l, s, 1, &c);
        let cost = ring_cost(CollectiveKind::AllReduce, l, s, &c);
        let nic = c.nic_bytes_per_s_per_gpu() * c.scale_out_efficiency;
        let nvl = crate::units::gbyte_per_s_to_bytes_per_s(c.gpu.scale_up_gbyte_per_s) * c.scale_up_efficiency;
        let per_rank = ring_bytes_per_rank(CollectiveKind::AllReduce, 16, s);
        let expect = (per_rank / 8.0 / nic).max(per_rank * 7.0 / 8.0 / nvl) + cost.latency_s;
        assert!((t - expect).abs() / expect < 1e-6, "{t} vs {expect}");
        // chunks one after another pay the latency once each
        let t4 = collective_time(CollectiveKind::AllReduce, l, s, 4, &c);
        assert!((t4 - (t + 3.0 * cost.latency_s)).abs() < 1e-8);
    }

    /// Two nodes on two leaves: every NIC byte crosses the spine, so at 4:1 the large-message
    /// time is 4x the NIC-bound time; under one leaf the ratio changes nothing.
    #[test]
    fn spine_oversubscription_slows_only_cross_leaf_collectives() {
        let mut c = crate::hardware::presets::test_cluster(16, 8);
        let l = whole_cluster_layout(&c);
        let s = 1024.0f64.powi(3);
        let lat = ring_cost(CollectiveKind::AllReduce, l, s, &c).latency_s;
        let flat = collective_time(CollectiveKind::AllReduce, l, s, 1, &c) - lat;
        c.oversubscription = 4.0;
        let one_leaf = collective_time(CollectiveKind::AllReduce, l, s, 1, &c) - lat;
        assert!((one_leaf - flat).abs() / flat < 1e-9);
        c.nodes_per_leaf = 1;
        let nic = c.nic_bytes_per_s_per_gpu() * c.scale_out_efficiency;
        let per_rank = ring_bytes_per_rank(CollectiveKind::AllReduce, 16, s);
        let crossing = collective_time(CollectiveKind::AllReduce, l, s, 1, &c) - lat;
        assert!((crossing - per_rank / 8.0 / (nic / 4.0)).abs() / crossing < 1e-6);
    }

    #[test]
    fn sizes_double_and_busbw_approaches_the_bottleneck() {
        let c = crate::hardware::presets::test_cluster(16, 8);
        let rows = sweep_sizes(
            CollectiveKind::AllGather,
            Algorithm::Auto,
            None,
            &c,
            1024.0,
            1024.0f64.powi(3),
            1,
            0.0,
        )
        .unwrap();
        assert_eq!(rows.len(), 21);
        assert!(rows
            .windows(2)
            .all(|w| w[1].busbw_gbyte_per_s >= w[0].busbw_gbyte_per_s));
        assert_eq!(rows[0].count, 256);
        // the NIC bounds it: 8 NICs of 45 GB/s (400 Gbit/s at 90%) carry the cross-node edge
        assert!(rows.last().unwrap().busbw_gbyte_per_s > 0.95 * 360.0);
    }

    #[test]
    fn sizes_and_ops_parse_and_bad_ones_are_named() {
        assert_eq!(parse_size("1K").unwrap(), 1024.0);
        assert_eq!(parse_size("8G").unwrap(), 8.0 * 1024.0f64.powi(3));
        assert_eq!(parse_size("1GiB").unwrap(), 1024.0f64.powi(3));
        assert!(parse_size("12Q").unwrap_err().contains("unknown unit"));
        assert!(parse_size("0").is_err());
        assert_eq!(parse_op("all-reduce").unwrap(), CollectiveKind::AllReduce);
        assert_eq!(parse_op("broadcast").unwrap(), CollectiveKind::Broadcast);
        assert!(parse_op("gather").unwrap_err().contains("\"all_gather\""));
    }
}
