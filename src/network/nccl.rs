//! Published nccl-tests runs as validation cases: owns their file format, loading and
//! trainsim's prediction for each.
//!
//! One JSON file per case in `scenarios/validation/nccl-tests/` (JSON, not TOML, so that the
//! training-scenario loaders walking `scenarios/` do not take them for scenarios), each with
//! its source, configuration and the measured large-message bus bandwidth. In detail:
//! [`NcclCase`] (the file format), [`load_cases`], and [`predict`] (trainsim's bus
//! bandwidth for a case, on the calibrated factors of [`super::calibration`]; nothing is set
//! per case). `trainsim collective --validate DIR` prints the table; tests/it/nccl.rs asserts
//! every case within 10%.

use super::algorithm::{self, Algorithm};
use super::bench::{bus_factor, parse_op};
use super::calibration;
use super::group::GroupLayout;
use crate::hardware::presets::gpu_preset;
use crate::hardware::ClusterSpec;
use serde::Deserialize;
use std::path::{Path, PathBuf};

/// One published measurement.
#[derive(Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct NcclCase {
    /// Short identifier.
    pub name: String,
    /// Where the figure was published (URL and who said it).
    pub source: String,
    /// `calibration` (a factor of [`super::calibration`] is computed from it) or `holdout`.
    pub role: String,
    /// nccl-tests operation: all_reduce, all_gather, reduce_scatter, all_to_all.
    pub op: String,
    /// The algorithm NCCL ran, as published or as NCCL's default for that system
    /// (any name of [`Algorithm::NAMES`]).
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
    /// Algorithm trainsim ran.
    pub algorithm: Algorithm,
    /// Published bus bandwidth, GB/s.
    pub published_gbyte_per_s: f64,
    /// trainsim's bus bandwidth, GB/s.
    pub trainsim_gbyte_per_s: f64,
    /// (trainsim - published) / published.
    pub error_fraction: f64,
}

/// Every `*.json` case under `dir`, by file name.
pub fn load_cases(dir: &Path) -> Result<Vec<(PathBuf, NcclCase)>, String> {
    let rd = std::fs::read_dir(dir).map_err(|e| format!("{}: cannot read the folder: {e}", dir.display()))?;
    let mut paths: Vec<PathBuf> = rd
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| p.extension().is_some_and(|x| x == "json"))
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

/// The cluster of a case, with the calibrated factors of its GPU and NIC generation and
/// trainsim's default latencies.
pub fn case_cluster(case: &NcclCase) -> Result<ClusterSpec, String> {
    let gpu = gpu_preset(&case.gpu).ok_or_else(|| format!("case {}: unknown GPU preset '{}'", case.name, case.gpu))?;
    let cal = calibration::calibrated(&gpu, case.nic_gbit_per_s);
    Ok(ClusterSpec {
        num_gpus: case.num_gpus,
        gpus_per_node: case.gpus_per_node.max(1),
        nics_per_node: case.nics_per_node.max(1),
        nic_gbit_per_s: case.nic_gbit_per_s,
        scale_up_latency_us: 1.5,
        scale_out_latency_us: 4.0,
        scale_up_efficiency: cal.scale_up.unwrap_or(0.8),
        scale_out_efficiency: cal.scale_out,
        oversubscription: 1.0,
        nodes_per_leaf: crate::hardware::cluster::DEFAULT_NODES_PER_LEAF,
        topology: Default::default(),
        gpu,
    })
}

/// trainsim's bus bandwidth for `case`: its collective, algorithm and size over its whole
/// cluster on an idle network.
pub fn predict(case: &NcclCase) -> Result<CaseResult, String> {
    let cluster = case_cluster(case)?;
    let kind = parse_op(&case.op).map_err(|e| format!("case {}: {e}", case.name))?;
    let algo = Algorithm::parse(&case.algo).map_err(|e| format!("case {}: {e}", case.name))?;
    let layout = GroupLayout {
        size: case.num_gpus,
        members_per_node: cluster.scale_up_domain(),
    };
    let c = algorithm::cost(kind, algo, layout, case.size_bytes, &cluster)
        .map_err(|e| format!("case {}: {e}", case.name))?;
    let t = algorithm::idle_time_s(&c, &cluster, 0.0);
    let busbw = case.size_bytes / t / 1e9 * bus_factor(kind, case.num_gpus);
    Ok(CaseResult {
        name: case.name.clone(),
        role: case.role.clone(),
        algorithm: c.algorithm,
        published_gbyte_per_s: case.busbw_gbyte_per_s,
        trainsim_gbyte_per_s: busbw,
        error_fraction: (busbw - case.busbw_gbyte_per_s) / case.busbw_gbyte_per_s,
    })
}
