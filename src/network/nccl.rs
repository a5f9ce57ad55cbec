//! Published nccl-tests runs as calibration and validation data: owns their file formats,
//! loading, the clusters they ran on and trainsim's prediction for each point.
//!
//! Round 1 (`scenarios/validation/nccl-tests/*.json`): one JSON file per published
//! large-message figure ([`NcclCase`], [`load_cases`], [`predict`]). Round 2
//! (`scenarios/validation/nccl-tests/round2/nccl-tests-calibration.json`, a copy of
//! `../shared/validation/round2/`): 37 entries from three systems, sweeps of size and of
//! node count ([`load_round2`]; the systems' hardware from the file's descriptions in
//! [`round2_cluster`]). Both become [`Point`]s, which [`super::fitting`] fits and
//! cross-validates. Nothing here is tuned per case.

use super::calibration::{ModelConstants, CALIBRATED};
use super::group::{CollectiveKind, GroupLayout};
use super::tuner::{self, bus_factor, Choice, NcclAlgorithm, System};
use crate::hardware::fabric::{default_fabric, fabric_preset, FabricSpec};
use crate::hardware::presets::gpu_preset;
use crate::hardware::ClusterSpec;
use serde::Deserialize;
use std::path::{Path, PathBuf};

/// One published round-1 measurement.
#[derive(Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct NcclCase {
    /// Short identifier.
    pub name: String,
    /// Where the figure was published (URL and who said it).
    pub source: String,
    /// `calibration` (in the fit) or `holdout` (kept out of the round-1 factors of the
    /// previous model; every round-1 case is in today's fit, see docs/calibration.md).
    pub role: String,
    /// nccl-tests operation.
    pub op: String,
    /// The algorithm NCCL ran (`ring`, `nvls`, `auto`, ...).
    pub algo: String,
    /// GPU preset.
    pub gpu: String,
    /// GPUs in the run.
    pub num_gpus: u32,
    /// GPUs per node.
    pub gpus_per_node: u32,
    /// NICs per node.
    pub nics_per_node: u32,
    /// NIC line rate, Gbit/s.
    pub nic_gbit_per_s: f64,
    /// Message size of the figure, bytes.
    pub size_bytes: f64,
    /// Published bus bandwidth, GB/s.
    pub busbw_gbyte_per_s: f64,
    /// Anything a reader should know.
    #[serde(default)]
    pub notes: String,
}

/// trainsim against one case.
#[derive(Clone, Debug, PartialEq)]
pub struct CaseResult {
    /// Case name.
    pub name: String,
    /// `calibration` or `holdout`.
    pub role: String,
    /// Algorithm and protocol trainsim ran.
    pub choice: Choice,
    /// Published bus bandwidth, GB/s.
    pub published_gbyte_per_s: f64,
    /// trainsim's bus bandwidth, GB/s.
    pub trainsim_gbyte_per_s: f64,
    /// (trainsim - published) / published.
    pub error_fraction: f64,
}

/// Every `*.json` case directly under `dir`, by file name.
pub fn load_cases(dir: &Path) -> Result<Vec<(PathBuf, NcclCase)>, String> {
    let rd = std::fs::read_dir(dir).map_err(|e| format!("{}: cannot read the folder: {e}", dir.display()))?;
    let mut paths: Vec<PathBuf> = rd
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| p.is_file() && p.extension().is_some_and(|x| x == "json"))
        .collect();
    paths.sort();
    if paths.is_empty() {
        return Err(format!("{}: no nccl-tests case files (*.json)", dir.display()));
    }
    paths
        .into_iter()
        .map(|p| {
            let text = std::fs::read_to_string(&p).map_err(|e| format!("{}: cannot read: {e}", p.display()))?;
            let case: NcclCase = serde_json::from_str(&text).map_err(|e| format!("{}: {e}", p.display()))?;
            Ok((p, case))
        })
        .collect()
}

/// A cluster of `num_gpus` GPUs of `gpu`, NCCL model, the calibrated efficiencies.
fn cluster(
    gpu: &str,
    num_gpus: u32,
    gpus_per_node: u32,
    nics: u32,
    nic_gbit: f64,
    fabric: FabricSpec,
) -> Result<ClusterSpec, String> {
    let gpu = gpu_preset(gpu).ok_or_else(|| format!("unknown GPU preset '{gpu}'"))?;
    Ok(ClusterSpec {
        num_gpus,
        gpus_per_node: gpus_per_node.max(1),
        nics_per_node: nics.max(1),
        nic_gbit_per_s: nic_gbit,
        scale_up_latency_us: 1.5,
        scale_out_latency_us: 4.0,
        scale_up_efficiency: super::calibration::scale_up_efficiency(&gpu),
        scale_out_efficiency: super::calibration::scale_out_efficiency(),
        oversubscription: 1.0,
        nodes_per_leaf: crate::hardware::cluster::DEFAULT_NODES_PER_LEAF,
        topology: Default::default(),
        fabric,
        gpu,
        groups: Vec::new(),
        cross_group_gbit_per_s: 0.0,
    })
}

/// The cluster of a round-1 case: InfiniBand of its NIC rate, calibrated constants.
pub fn case_cluster(case: &NcclCase) -> Result<ClusterSpec, String> {
    let fabric = FabricSpec::of(default_fabric(case.nic_gbit_per_s));
    cluster(
        &case.gpu,
        case.num_gpus,
        case.gpus_per_node,
        case.nics_per_node,
        case.nic_gbit_per_s,
        fabric,
    )
    .map_err(|e| format!("case {}: {e}", case.name))
}

/// The algorithm a published run names, as the tuner's forced algorithm (`None`: NCCL's
/// own choice: "default", "auto", "P2P", a tuner plugin).
pub fn requested_algorithm(text: &str) -> Option<NcclAlgorithm> {
    let s = text.trim().to_ascii_lowercase().replace(['-', '_', ' '], "");
    if s.contains("nvlstree") {
        Some(NcclAlgorithm::NvlsTree)
    } else if s.contains("collnet") {
        Some(NcclAlgorithm::CollNet)
    } else if s.starts_with("ring") {
        Some(NcclAlgorithm::Ring)
    } else if s.starts_with("tree") {
        Some(NcclAlgorithm::Tree)
    } else if s.starts_with("nvls") {
        Some(NcclAlgorithm::Nvls)
    } else {
        None
    }
}

/// One measured point: a collective, its group on a system, the measured bus bandwidth.
#[derive(Clone, Debug, PartialEq)]
pub struct Point {
    /// System (round 2: `system_group`; round 1: `round1:` and the case name).
    pub system: String,
    /// Entry (round 2: its id; round 1: the case name).
    pub entry: String,
    /// The operation.
    pub kind: CollectiveKind,
    /// The algorithm the run forced (`None`: NCCL's choice).
    pub forced: Option<NcclAlgorithm>,
    /// The group as the model sees it.
    pub sys: System,
    /// Domains (nodes) spanned.
    pub nodes: u32,
    /// nccl-tests size, bytes.
    pub size_bytes: f64,
    /// Measured bus bandwidth, GB/s.
    pub busbw_gbyte_per_s: f64,
}

/// The point of a round-1 case.
pub fn case_point(case: &NcclCase) -> Result<Point, String> {
    let c = case_cluster(case)?;
    let kind = super::bench::parse_op(&case.op).map_err(|e| format!("case {}: {e}", case.name))?;
    let layout = GroupLayout {
        size: case.num_gpus,
        members_per_node: c.scale_up_domain(),
    };
    let sys = System::new(&c, layout);
    Ok(Point {
        system: format!("round1:{}", case.name),
        entry: case.name.clone(),
        kind,
        forced: requested_algorithm(&case.algo),
        nodes: sys.domains,
        sys,
        size_bytes: case.size_bytes,
        busbw_gbyte_per_s: case.busbw_gbyte_per_s,
    })
}

/// Predicted bus bandwidth (GB/s) of a point and the choice that ran.
pub fn predict_point(p: &Point, c: &ModelConstants) -> (f64, Choice) {
    let pr = tuner::predict(&p.sys, p.kind, p.size_bytes, p.forced, None, c);
    let busbw = p.size_bytes / pr.time_s * bus_factor(p.kind, p.sys.ranks) / 1e9;
    (busbw, pr.choice)
}

/// trainsim's bus bandwidth for a round-1 case with the calibrated constants.
pub fn predict(case: &NcclCase) -> Result<CaseResult, String> {
    let p = case_point(case)?;
    let (busbw, choice) = predict_point(&p, &CALIBRATED);
    Ok(CaseResult {
        name: case.name.clone(),
        role: case.role.clone(),
        choice,
        published_gbyte_per_s: case.busbw_gbyte_per_s,
        trainsim_gbyte_per_s: busbw,
        error_fraction: (busbw - case.busbw_gbyte_per_s) / case.busbw_gbyte_per_s,
    })
}

/// The systems of round 2, from the file's hardware descriptions: AWS p5 (8 x H100, 32 x
/// 100 Gb/s EFA, aws-ofi-nccl's tuner, NCCL_BUFFSIZE 8M, P2P chunk 512K), the H100 cluster
/// (one 400 Gb/s-class RDMA rail per GPU, inferred by the file; IB and RoCE share constants)
/// and the B200 cluster (8 x ConnectX-7 NDR with SHARP, which its CollNet entries force;
/// its other runs did not enable CollNet, NCCL's default, so NCCL's choice leaves it out).
pub fn round2_cluster(system_group: &str, num_gpus: u32) -> Option<ClusterSpec> {
    let preset = |n: &str| FabricSpec::of(fabric_preset(n).expect("preset exists"));
    let c = match system_group {
        "aws-p5-hyperpod-efa" => cluster("H100-SXM", num_gpus, 8, 32, 100.0, preset("efa-p5")),
        "xxrjun-example-cluster01" => cluster("H100-SXM", num_gpus, 8, 8, 400.0, preset("ib-ndr")),
        "together-b200-dgxc-use3a-ss" => cluster("B200", num_gpus, 8, 8, 400.0, preset("ib-ndr")),
        _ => return None,
    };
    c.ok()
}

/// The three systems of round 2, in the file's order.
pub const ROUND2_SYSTEMS: [&str; 3] = [
    "xxrjun-example-cluster01",
    "aws-p5-hyperpod-efa",
    "together-b200-dgxc-use3a-ss",
];

fn count(v: Option<&serde_json::Value>) -> Option<u32> {
    v.and_then(|x| x.as_u64()).and_then(|x| u32::try_from(x).ok())
}

/// Every point of the round-2 calibration file. Errors name the file and the entry.
pub fn load_round2(path: &Path) -> Result<Vec<Point>, String> {
    let file = path.display();
    let text = std::fs::read_to_string(path).map_err(|e| format!("{file}: cannot read: {e}"))?;
    let doc: serde_json::Value = serde_json::from_str(&text).map_err(|e| format!("{file}: {e}"))?;
    let entries = doc
        .get("entries")
        .and_then(|e| e.as_array())
        .ok_or_else(|| format!("{file}: no \"entries\" array: not an nccl-tests calibration file"))?;
    let mut out = Vec::new();
    for (i, e) in entries.iter().enumerate() {
        let id = e.get("id").and_then(|x| x.as_str()).unwrap_or("?").to_string();
        let at = |what: &str| format!("{file}: entry {i} ({id}): {what}");
        let system = e
            .get("system_group")
            .and_then(|x| x.as_str())
            .ok_or_else(|| at("no system_group"))?;
        let op = e
            .get("collective")
            .and_then(|x| x.as_str())
            .ok_or_else(|| at("no collective"))?;
        let kind = super::bench::parse_op(op).map_err(|m| at(&m))?;
        let forced = requested_algorithm(e.get("algorithm").and_then(|x| x.as_str()).unwrap_or(""));
        let points = e
            .get("points")
            .and_then(|x| x.as_array())
            .ok_or_else(|| at("no points"))?;
        for q in points {
            let nodes = count(q.get("num_nodes"))
                .or(count(e.get("num_nodes")))
                .ok_or_else(|| at("a point without num_nodes"))?;
            let ranks = count(q.get("total_gpus"))
                .or(count(e.get("total_gpus")))
                .ok_or_else(|| at("a point without total_gpus"))?;
            let size = q
                .get("size_bytes")
                .and_then(|x| x.as_f64())
                .ok_or_else(|| at("a point without size_bytes"))?;
            let busbw = q
                .get("busbw_GBps")
                .and_then(|x| x.as_f64())
                .ok_or_else(|| at("a point without busbw_GBps"))?;
            if nodes == 0
                || ranks == 0
                || ranks % nodes != 0
                || size.is_nan()
                || size < 1.0
                || busbw.is_nan()
                || busbw <= 0.0
            {
                return Err(at(&format!(
                    "point {nodes} nodes, {ranks} ranks, {size} B, {busbw} GB/s is out of range"
                )));
            }
            let c = round2_cluster(system, ranks).ok_or_else(|| at(&format!("unknown system '{system}'")))?;
            let layout = GroupLayout {
                size: ranks,
                members_per_node: ranks / nodes,
            };
            out.push(Point {
                system: system.to_string(),
                entry: id.clone(),
                kind,
                forced,
                sys: System::new(&c, layout),
                nodes,
                size_bytes: size,
                busbw_gbyte_per_s: busbw,
            });
        }
    }
    if out.is_empty() {
        return Err(format!("{file}: no points"));
    }
    Ok(out)
}

/// Where the round-2 file lies in a validation folder (`DIR/round2/...`), if there.
pub fn round2_file(dir: &Path) -> Option<PathBuf> {
    let p = dir.join("round2").join("nccl-tests-calibration.json");
    p.is_file().then_some(p)
}
