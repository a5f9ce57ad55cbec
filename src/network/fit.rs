//! Fitting a real nccl-tests log: owns the log parser, the fit of latency (alpha) and
//! achievable bus bandwidth, and the scenario keys that make trainsim reproduce them on a
//! given topology.
//!
//! In detail: [`parse_log`] (nccl-tests stdout: the `size count type redop root time algbw busbw
//! #wrong` table for out-of-place and in-place, with or without the `root` column, with or
//! without `[rank]` prefixes from mpirun), [`fit_alpha_beta`] and [`network_keys`] /
//! [`fragment_toml`]. Does not own the command line or file writes (cli).
//!
//! The model is `t(S) = alpha + S * busfactor / B`, `B` the achievable bus bandwidth, fitted
//! by least squares on relative residuals (every size weighs the same whatever its time),
//! on the out-of-place time of each row (in-place when out-of-place is missing), with
//! `alpha >= 0`. `B` becomes the efficiency of the tier that bounds the chosen algorithm on
//! the given cluster (trainsim's busbw at efficiency 1 over B), and alpha the hop latency of
//! the scale-out fabric (or of the scale-up domain for a single-domain run), the other kept.

use super::algorithm::{self, AlgoCost, Algorithm};
use super::bench::{bus_factor, parse_op};
use super::calibration::{constants_for, ModelConstants};
use super::fitting::{fit, Param};
use super::group::{CollectiveKind, GroupLayout};
use super::nccl::Point;
use super::topology::{Fabric, Tier};
use super::tuner::{self, Choice, System};
use crate::hardware::ClusterSpec;

/// One row of the table.
#[derive(Clone, Debug, PartialEq)]
pub struct LogRow {
    /// 1-based line in the file.
    pub line: usize,
    /// Message size, bytes.
    pub size_bytes: f64,
    /// Time used for the fit (out-of-place, else in-place), seconds.
    pub time_s: f64,
    /// Published bus bandwidth of that time, GB/s.
    pub busbw_gbyte_per_s: f64,
}

/// What a log says.
#[derive(Clone, Debug, PartialEq)]
pub struct NcclLog {
    /// The collective, from `# Collective test starting: X_perf` or the command line.
    pub op: Option<CollectiveKind>,
    /// Ranks listed in the `#  Rank N Group ... on HOST device ...` lines.
    pub ranks: Option<u32>,
    /// Distinct hosts of those lines.
    pub hosts: Option<u32>,
    /// GPU model of rank 0 as printed (`NVIDIA H100 80GB HBM3`).
    pub gpu: Option<String>,
    /// Result rows in file order.
    pub rows: Vec<LogRow>,
}

fn op_from_binary(text: &str) -> Option<CollectiveKind> {
    let names = [
        ("all_reduce_perf", CollectiveKind::AllReduce),
        ("all_gather_perf", CollectiveKind::AllGather),
        ("reduce_scatter_perf", CollectiveKind::ReduceScatter),
        ("alltoall_perf", CollectiveKind::AllToAll),
        ("sendrecv_perf", CollectiveKind::SendRecv),
        ("broadcast_perf", CollectiveKind::Broadcast),
        ("reduce_perf", CollectiveKind::Reduce),
    ];
    names.iter().find(|(n, _)| text.contains(n)).map(|(_, k)| *k)
}

fn num(tok: &str) -> Option<f64> {
    tok.parse::<f64>().ok().filter(|v| v.is_finite())
}

/// Parses nccl-tests stdout. `file` names the file in errors, which carry the line.
pub fn parse_log(text: &str, file: &str) -> Result<NcclLog, String> {
    let mut log = NcclLog {
        op: None,
        ranks: None,
        hosts: None,
        gpu: None,
        rows: Vec::new(),
    };
    let mut hosts: Vec<String> = Vec::new();
    let mut ranks = 0u32;
    for (i, raw) in text.lines().enumerate() {
        let line_no = i + 1;
        // mpirun --tag-output prefixes: "[1,0]<stdout>:" or "[0]"
        let mut l = raw.trim();
        while l.starts_with('[') {
            match l.find(']') {
                Some(e) => l = l[e + 1..].trim_start_matches("<stdout>:").trim(),
                None => break,
            }
        }
        if l.is_empty() {
            continue;
        }
        if let Some(h) = l.strip_prefix('#') {
            let h = h.trim();
            if log.op.is_none() && (h.starts_with("Collective test starting") || h.contains("_perf")) {
                log.op = op_from_binary(h);
            }
            let toks: Vec<&str> = h.split_whitespace().collect();
            if toks.first() == Some(&"Rank") {
                ranks += 1;
                if let Some(p) = toks.iter().position(|t| *t == "on") {
                    if let Some(host) = toks.get(p + 1) {
                        if !hosts.iter().any(|x| x == host) {
                            hosts.push(host.to_string());
                        }
                    }
                }
                if log.gpu.is_none() {
                    if let Some(p) = h.find(']') {
                        log.gpu = Some(h[p + 1..].trim().to_string());
                    }
                }
            }
            continue;
        }
        if log.op.is_none() && l.contains("_perf") {
            log.op = op_from_binary(l);
        }
        let toks: Vec<&str> = l.split_whitespace().collect();
        // a result row starts with two integers (size, count) then a type name
        let is_row = toks.len() >= 3
            && toks[0].chars().all(|c| c.is_ascii_digit())
            && toks[1].chars().all(|c| c.is_ascii_digit())
            && toks[2].chars().next().is_some_and(|c| c.is_ascii_alphabetic());
        if !is_row {
            continue;
        }
        let where_ = || format!("{file}:{line_no}");
        // size count type redop [root] time algbw busbw wrong time algbw busbw wrong
        let first_time = match toks.len() {
            13 => 5,
            12 => 4,
            // in-place columns missing (some builds print N/A only once)
            n if n >= 8 && num(toks[4]).is_none() => 5,
            n if n >= 8 => 4,
            n => {
                return Err(format!(
                    "{}: result row has {n} columns; expected nccl-tests' `size count type redop [root] time algbw busbw #wrong` for out-of-place and in-place (12 or 13 columns)",
                    where_()
                ))
            }
        };
        let size = num(toks[0]).unwrap_or(0.0);
        let pick = |k: usize| -> Option<(f64, f64)> {
            let t = num(toks.get(k)?)?;
            let b = num(toks.get(k + 2)?)?;
            (t > 0.0).then_some((t, b))
        };
        let Some((time_us, busbw)) = pick(first_time).or_else(|| pick(first_time + 4)) else {
            return Err(format!(
                "{}: no positive time in the out-of-place or in-place columns of this row: `{}`",
                where_(),
                raw.trim()
            ));
        };
        if size <= 0.0 {
            continue; // nccl-tests prints 0-byte rows for some ops: nothing to fit
        }
        log.rows.push(LogRow {
            line: line_no,
            size_bytes: size,
            time_s: time_us * 1e-6,
            busbw_gbyte_per_s: busbw,
        });
    }
    if ranks > 0 {
        log.ranks = Some(ranks);
        log.hosts = Some(hosts.len().max(1) as u32);
    }
    if log.rows.is_empty() {
        return Err(format!(
            "{file}: no result rows found; expected nccl-tests output (rows of `size count type redop root time algbw busbw #wrong ...`)"
        ));
    }
    Ok(log)
}

/// The trainsim GPU preset for a GPU name as nccl-tests prints it.
pub fn gpu_preset_for(printed: &str) -> Option<&'static str> {
    let u = printed.to_ascii_uppercase();
    let table = [
        ("H800", "H800"),
        ("H200", "H200"),
        ("H100", "H100-SXM"),
        ("B200", "B200"),
        ("A100-SXM4-40GB", "A100-40GB"),
        ("A100", "A100-80GB"),
        ("MI300X", "MI300X"),
    ];
    table.iter().find(|(k, _)| u.contains(k)).map(|(_, v)| *v)
}

/// The alpha-beta fit and its residuals.
#[derive(Clone, Debug, PartialEq)]
pub struct Fit {
    /// Latency term, seconds.
    pub alpha_s: f64,
    /// Achievable bus bandwidth, bytes/s.
    pub busbw_bytes_per_s: f64,
    /// (line, size, measured s, fitted s) per row.
    pub points: Vec<(usize, f64, f64, f64)>,
    /// Root mean square of the relative residuals.
    pub rms_residual_fraction: f64,
}

/// Fits `t = alpha + S * factor / B` to the rows (relative least squares, `alpha >= 0`).
pub fn fit_alpha_beta(rows: &[LogRow], factor: f64, file: &str) -> Result<Fit, String> {
    let mut sizes: Vec<f64> = rows.iter().map(|r| r.size_bytes).collect();
    sizes.sort_by(f64::total_cmp);
    sizes.dedup();
    if sizes.len() < 2 {
        return Err(format!(
            "{file}: {} distinct message size(s); fitting latency and bandwidth needs at least 2 (run nccl-tests with -b < -e)",
            sizes.len()
        ));
    }
    if factor <= 0.0 {
        return Err(format!("{file}: bus factor is 0 (a single rank): nothing to fit"));
    }
    // weighted least squares, weight 1/t^2: minimise sum ((t - a - x b)/t)^2
    let (mut sw, mut sx, mut st, mut sxx, mut sxt) = (0.0, 0.0, 0.0, 0.0, 0.0);
    for r in rows {
        let w = 1.0 / (r.time_s * r.time_s);
        let x = r.size_bytes * factor;
        sw += w;
        sx += w * x;
        st += w * r.time_s;
        sxx += w * x * x;
        sxt += w * x * r.time_s;
    }
    let det = sw * sxx - sx * sx;
    let (mut a, mut b) = ((st * sxx - sx * sxt) / det, (sw * sxt - sx * st) / det);
    if a.is_nan() || a < 0.0 || !det.is_finite() || det <= 0.0 {
        a = 0.0;
        b = sxt / sxx;
    }
    if !(b > 0.0 && b.is_finite()) {
        return Err(format!(
            "{file}: time does not grow with message size; cannot fit a bandwidth"
        ));
    }
    let points: Vec<(usize, f64, f64, f64)> = rows
        .iter()
        .map(|r| (r.line, r.size_bytes, r.time_s, a + r.size_bytes * factor * b))
        .collect();
    let rms = (points.iter().map(|p| ((p.3 - p.2) / p.2).powi(2)).sum::<f64>() / points.len() as f64).sqrt();
    Ok(Fit {
        alpha_s: a,
        busbw_bytes_per_s: 1.0 / b,
        points,
        rms_residual_fraction: rms,
    })
}

/// `(key, value)` pairs of a `[cluster.network]` fragment.
pub type NetworkKeys = Vec<(&'static str, f64)>;

/// Scenario keys (`[cluster.network]`) that make `algo` on `cluster` reproduce `fit`,
/// with the algorithm used and, when the bound is NVLS, the NVLS efficiency (not a scenario
/// key: `--nvls-efficiency`).
pub fn network_keys(
    fit: &Fit,
    kind: CollectiveKind,
    algo: Algorithm,
    cluster: &ClusterSpec,
    size_bytes: f64,
) -> Result<(Algorithm, NetworkKeys), String> {
    let layout = GroupLayout {
        size: cluster.num_gpus,
        members_per_node: cluster.scale_up_domain(),
    };
    let algo = match algo {
        Algorithm::Auto => algorithm::select(kind, layout, size_bytes, cluster),
        a => a,
    };
    // bandwidth at efficiency 1, no latency: which tier binds, and its busbw
    let mut ideal = cluster.clone();
    ideal.scale_up_efficiency = 1.0;
    ideal.scale_out_efficiency = 1.0;
    ideal.topology.nvls_efficiency = 1.0;
    ideal.scale_up_latency_us = 0.0;
    ideal.scale_out_latency_us = 0.0;
    ideal.topology.switch_latency_us = 0.0;
    let c = algorithm::cost(kind, algo, layout, size_bytes, &ideal)?;
    let t1 = algorithm::idle_time_s(&c, &ideal, 0.0);
    let busbw1 = size_bytes * bus_factor(kind, layout.size) / t1;
    let eff = fit.busbw_bytes_per_s / busbw1;
    let f = Fabric::new(&ideal);
    let bound = binding_tier(&c, &f);
    let mut keys: NetworkKeys = Vec::new();
    let key = match bound {
        Tier::Nvls => "nvls_efficiency",
        Tier::ScaleUp | Tier::Torus => "scale_up_efficiency",
        _ => "scale_out_efficiency",
    };
    keys.push((key, eff));
    // latency: alpha = a * up + b * out
    let lat = |up: f64, out: f64| {
        let mut x = cluster.clone();
        x.scale_up_latency_us = up;
        x.scale_out_latency_us = out;
        x.topology.switch_latency_us = 0.0;
        algorithm::cost(kind, algo, layout, size_bytes, &x).map(|c| c.latency_s() * 1e6)
    };
    let a = lat(1.0, 0.0)?;
    let b = lat(0.0, 1.0)?;
    let alpha_us = fit.alpha_s * 1e6;
    if b > 0.0 {
        let out = (alpha_us - a * cluster.scale_up_latency_us) / b;
        if out >= 0.0 {
            keys.push(("scale_out_latency_us", out));
        } else {
            keys.push(("scale_out_latency_us", 0.0));
            if a > 0.0 {
                keys.push(("scale_up_latency_us", alpha_us / a));
            }
        }
    } else if a > 0.0 {
        keys.push(("scale_up_latency_us", alpha_us / a));
    }
    Ok((algo, keys))
}

fn binding_tier(c: &AlgoCost, f: &Fabric) -> Tier {
    let mut best = (Tier::ScaleUp, 0.0);
    for p in &c.phases {
        for t in Tier::ALL {
            // a tier's link carries its own loads and those of tiers whose path crosses it
            let bytes: f64 = p
                .loads
                .iter()
                .filter(|(x, _)| x.path().contains(&t))
                .map(|(_, b)| b)
                .sum();
            let time = bytes / f.capacity(t);
            if time > best.1 {
                best = (t, time);
            }
        }
    }
    best.0
}

/// The NCCL model fitted to one log.
#[derive(Clone, Debug, PartialEq)]
pub struct ModelFit {
    /// The constants (fitted ones and the cluster's).
    pub constants: ModelConstants,
    /// The fitted constants and their values (in the units of [`Param::get`]).
    pub fitted: Vec<(Param, f64)>,
    /// (line, size, measured s, model s, choice) per row.
    pub points: Vec<(usize, f64, f64, f64, Choice)>,
    /// Root mean square of the relative time residuals.
    pub rms_residual_fraction: f64,
    /// `[cluster.network]` keys (and model constants that are not scenario keys).
    pub keys: NetworkKeys,
}

/// Fits the NCCL model's constants a log can inform to its rows (module docs) on `cluster`
/// (whole-cluster group), `algo` the algorithm NCCL ran (`Auto`: its choice).
pub fn fit_model(
    log: &NcclLog,
    kind: CollectiveKind,
    algo: Algorithm,
    cluster: &ClusterSpec,
    file: &str,
) -> Result<ModelFit, String> {
    let forced = algo.nccl().map_err(|_| {
        format!(
            "--algo {} is not an NCCL algorithm: nothing to fit the NCCL model with",
            algo.name()
        )
    })?;
    let layout = GroupLayout {
        size: cluster.num_gpus,
        members_per_node: cluster.scale_up_domain(),
    };
    let sys = System::new(cluster, layout);
    let factor = bus_factor(kind, layout.size);
    if factor <= 0.0 {
        return Err(format!("{file}: bus factor is 0 (a single rank): nothing to fit"));
    }
    let mut sizes: Vec<f64> = log.rows.iter().map(|r| r.size_bytes).collect();
    sizes.sort_by(f64::total_cmp);
    sizes.dedup();
    if sizes.len() < 2 {
        return Err(format!(
            "{file}: {} distinct message size(s); fitting latency and bandwidth needs at least 2 (run nccl-tests with -b < -e)",
            sizes.len()
        ));
    }
    let points: Vec<Point> = log
        .rows
        .iter()
        .map(|r| Point {
            system: "log".into(),
            entry: file.to_string(),
            kind,
            forced,
            sys,
            nodes: sys.domains,
            size_bytes: r.size_bytes,
            busbw_gbyte_per_s: r.size_bytes / r.time_s * factor / 1e9,
        })
        .collect();
    let multi = sys.domains > 1;
    let nvlink = if sys.generation.index() == 2 {
        Param::NvlinkBlackwell
    } else {
        Param::NvlinkHopper
    };
    let mut params = vec![if multi { Param::NetEfficiency } else { nvlink }, Param::LatencyScale];
    match kind {
        CollectiveKind::SendRecv if multi => params.extend([Param::P2pNetLatency, Param::P2pNetChannel]),
        CollectiveKind::SendRecv => params.push(Param::P2pNvlinkChannel),
        CollectiveKind::AllToAll if multi => params.push(Param::AllToAllPeer),
        CollectiveKind::AllReduce if !multi && sys.nvls => params.push(Param::NvlsFactor),
        _ => {}
    }
    let start = constants_for(cluster);
    let f = fit(&points, &params, &start);
    let c = f.constants;
    let rows: Vec<(usize, f64, f64, f64, Choice)> = log
        .rows
        .iter()
        .map(|r| {
            let p = tuner::predict(&sys, kind, r.size_bytes, forced, None, &c);
            (r.line, r.size_bytes, r.time_s, p.time_s, p.choice)
        })
        .collect();
    let rms = (rows.iter().map(|p| ((p.3 - p.2) / p.2).powi(2)).sum::<f64>() / rows.len() as f64).sqrt();
    let fitted: Vec<(Param, f64)> = f.fitted.iter().map(|p| (*p, p.get(&c))).collect();
    let keys = fitted
        .iter()
        .map(|&(p, v)| {
            let k = match p {
                Param::NetEfficiency => "scale_out_efficiency",
                Param::NvlinkHopper | Param::NvlinkBlackwell => "scale_up_efficiency",
                Param::LatencyScale => "latency_scale",
                Param::P2pNetLatency => "p2p_latency_us",
                other => other.name(),
            };
            (k, v)
        })
        .collect();
    Ok(ModelFit {
        constants: c,
        fitted,
        points: rows,
        rms_residual_fraction: rms,
        keys,
    })
}

/// Keys of a fragment that are scenario keys (the others are written as comments).
const SCENARIO_KEYS: [&str; 6] = [
    "scale_out_efficiency",
    "scale_up_efficiency",
    "latency_scale",
    "p2p_latency_us",
    "scale_out_latency_us",
    "scale_up_latency_us",
];

/// The scenario fragment: a comment with the fit, then `[cluster.network]` keys.
pub fn fragment_toml(header: &str, keys: &[(&str, f64)]) -> String {
    let mut s = String::new();
    for l in header.lines() {
        s.push_str("# ");
        s.push_str(l);
        s.push('\n');
    }
    s.push_str("[cluster.network]\n");
    for (k, v) in keys {
        if *k == "nvls_efficiency" {
            s.push_str(&format!(
                "# nvls_efficiency = {v:.4}   (not a scenario key: pass --nvls-efficiency to trainsim collective)\n"
            ));
        } else if SCENARIO_KEYS.contains(k) {
            s.push_str(&format!("{k} = {v:.4}\n"));
        } else {
            s.push_str(&format!(
                "# {k} = {v:.4}   (a model constant, not a scenario key: src/network/calibration.rs)\n"
            ));
        }
    }
    s
}

/// The collective of a log: its own, else `fallback` (parsed from `--op`).
pub fn log_op(log: &NcclLog, fallback: &str) -> Result<CollectiveKind, String> {
    match log.op {
        Some(k) => Ok(k),
        None => parse_op(fallback),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const LOG: &str = "# nThread 1 nGpus 1 minBytes 1024 maxBytes 4096 step: 2(factor)
#  Rank  0 Group  0 Pid 1 on node-a device  0 [0x18] NVIDIA H100 80GB HBM3
#  Rank  1 Group  0 Pid 2 on node-b device  0 [0x18] NVIDIA H100 80GB HBM3
#       size         count      type   redop    root     time   algbw   busbw #wrong     time   algbw   busbw #wrong
        1024           256     float     sum      -1    11.00    0.09    0.09      0    11.00    0.09    0.09      0
        2048           512     float     sum      -1    12.00    0.17    0.17      0    12.00    0.17    0.17      0
[0]     4096          1024     float     sum      -1    14.00    0.29    0.29      0    14.00    0.29    0.29      0
";

    #[test]
    fn parses_rows_ranks_hosts_and_gpu() {
        let l = parse_log(LOG, "x.txt").unwrap();
        assert_eq!(l.rows.len(), 3);
        assert_eq!((l.ranks, l.hosts), (Some(2), Some(2)));
        assert_eq!(gpu_preset_for(l.gpu.as_deref().unwrap()), Some("H100-SXM"));
        assert_eq!(l.rows[2].line, 7);
        // exact line: t = 10 us + S / 1024 B/us
        let f = fit_alpha_beta(&l.rows, 1.0, "x.txt").unwrap();
        assert!((f.alpha_s - 10e-6).abs() < 1e-9, "{f:?}");
        assert!((f.busbw_bytes_per_s - 1024.0 / 1e-6).abs() / f.busbw_bytes_per_s < 1e-6);
    }

    #[test]
    fn bad_rows_name_the_file_and_line() {
        let bad = LOG.replace(
            "2048           512     float     sum      -1    12.00    0.17    0.17      0    12.00    0.17    0.17      0",
            "2048 512 float sum -1 12.00",
        );
        let e = parse_log(&bad, "run.log").unwrap_err();
        assert!(e.starts_with("run.log:6:") && e.contains("columns"), "{e}");
        let e = parse_log("hello\n", "empty.log").unwrap_err();
        assert!(e.contains("empty.log") && e.contains("no result rows"), "{e}");
    }
}
