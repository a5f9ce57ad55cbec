//! `trainsim collective`: owns its arguments ([`CollectiveArgs`]), the cluster its flags
//! describe, and the printing of its table, validation and fit. The computations are the
//! network's ([`crate::network::bench`], [`crate::network::fit`], [`crate::network::nccl`]).

use crate::hardware::presets::{gpu_preset, GPU_PRESETS};
use crate::hardware::ClusterSpec;
use crate::network::{bench, fit, nccl, Algorithm};
use crate::report;
use crate::scenario::Scenario;
use std::fmt::Write as _;
use std::path::{Path, PathBuf};

/// After-help of `trainsim collective`.
pub(crate) const COLLECTIVE_HELP: &str = "Examples:
  trainsim collective --gpu H100-SXM --gpus 16 --gpus-per-node 8 --nic-gbit 400 \\
      --op all_reduce --min-bytes 1K --max-bytes 8G
  trainsim collective --gpus 8 --op all_reduce --algo ring --max-bytes 8G
      force one algorithm (auto = NCCL-like choice per size: ring, tree or nvls)
  trainsim collective --scenario scenarios/llama3-8b-h100-64.toml --op all_gather
      the scenario's cluster; flags given explicitly override it
  trainsim collective --gpu B200 --gpus 1152 --gpus-per-node 4 --scale-up-domain 72
      GB200 NVL72 racks: 72 GPUs per NVLink domain
  trainsim collective --gpus 4096 --fat-tree-tiers 3 --leaves-per-pod 8 \\
      --oversubscription 2 --core-oversubscription 4 --rail-optimized --switch-latency-us 0.3
  trainsim collective --gpus 256 --torus 8x8x4 --op all_reduce
      a TPU-like 3D torus (no switched fabric)
  trainsim collective --fit all_reduce.log --gpu H100-SXM --write-fragment net.toml
      fit latency and bandwidth to a real nccl-tests log; print the residuals; write the
      [cluster.network] keys that reproduce it
  trainsim collective --validate scenarios/validation/nccl-tests
      published nccl-tests bus bandwidths against trainsim

Runs one collective over every GPU of the cluster for each size from --min-bytes doubling to
--max-bytes through the flow network, with the algorithm's decomposition into bytes per link
tier and sequential phases (docs/network.md), and prints size, count (4-byte elements),
time, algbw = size / time, busbw = algbw * 2(n-1)/n (all-reduce) or (n-1)/n (all-gather,
reduce-scatter, all-to-all), as nccl-tests does, and the algorithm. Unless a scenario or a
flag says otherwise, the achievable-bandwidth factors are those calibrated on published
nccl-tests runs for the GPU and NIC generation (src/network/calibration.rs). Writes busbw.png
(bus bandwidth vs size) and collective.csv to --out. Exit status 2 on invalid input.";

/// Arguments of `trainsim collective`.
#[derive(Clone, Debug, clap::Args)]
pub struct CollectiveArgs {
    /// Take the cluster from this scenario file (the flags below override its fields).
    #[arg(long)]
    pub scenario: Option<PathBuf>,
    /// GPU preset [default: H100-SXM].
    #[arg(long)]
    pub gpu: Option<String>,
    /// GPUs in the collective (= in the cluster) [default: 16].
    #[arg(long)]
    pub gpus: Option<u32>,
    /// GPUs per node (scale-up domain) [default: 8].
    #[arg(long)]
    pub gpus_per_node: Option<u32>,
    /// NICs per node [default: one per GPU].
    #[arg(long)]
    pub nics_per_node: Option<u32>,
    /// NIC line rate, Gbit/s [default: 400, 200 for A100].
    #[arg(long)]
    pub nic_gbit: Option<f64>,
    /// Scale-up bandwidth per GPU per direction, GB/s [default: the GPU preset's].
    #[arg(long)]
    pub scale_up_gbyte: Option<f64>,
    /// Scale-up hop latency, microseconds [default: 1.5].
    #[arg(long)]
    pub scale_up_latency_us: Option<f64>,
    /// Scale-out hop latency, microseconds [default: 4].
    #[arg(long)]
    pub scale_out_latency_us: Option<f64>,
    /// Fraction of scale-up bandwidth collectives sustain [default: calibrated for the GPU
    /// generation, printed in the table's first line; 0.8 with --scenario unless it sets one].
    #[arg(long)]
    pub scale_up_efficiency: Option<f64>,
    /// Fraction of NIC line rate collectives sustain [default: calibrated for the NIC
    /// generation, printed in the table's first line; 0.9 with --scenario unless it sets one].
    #[arg(long)]
    pub scale_out_efficiency: Option<f64>,
    /// Leaf-to-spine oversubscription ratio, at least 1 [default: 1].
    #[arg(long)]
    pub oversubscription: Option<f64>,
    /// Nodes per leaf switch [default: 16].
    #[arg(long)]
    pub nodes_per_leaf: Option<u32>,
    /// all_reduce, all_gather, reduce_scatter or all_to_all.
    #[arg(long, default_value = "all_reduce")]
    pub op: String,
    /// auto, ring, tree, nvls, hierarchical, halving_doubling, direct or pairwise.
    #[arg(long, default_value = "auto")]
    pub algo: String,
    /// Chunk of a pipelined algorithm (e.g. 512K, NCCL's Simple protocol); each hop also
    /// pays one chunk at the bottleneck rate. 0 = no pipeline fill.
    #[arg(long, default_value = "0")]
    pub chunk_bytes: String,
    /// GPUs per scale-up (NVLink) domain, a multiple of --gpus-per-node [default: one node].
    #[arg(long)]
    pub scale_up_domain: Option<u32>,
    /// Fat-tree tiers of the scale-out fabric: 2 or 3 [default: 2].
    #[arg(long)]
    pub fat_tree_tiers: Option<u32>,
    /// With 3 tiers: leaves per pod (0 = one pod) [default: 0].
    #[arg(long)]
    pub leaves_per_pod: Option<u32>,
    /// With 3 tiers: spine-to-core oversubscription, at least 1 [default: 1].
    #[arg(long)]
    pub core_oversubscription: Option<f64>,
    /// Rail-optimized fabric: NIC i of every node on rail switch i.
    #[arg(long)]
    pub rail_optimized: bool,
    /// Latency per switch above the leaf, microseconds [default: 0].
    #[arg(long)]
    pub switch_latency_us: Option<f64>,
    /// Torus dimension sizes, e.g. 8x8x4 (the whole cluster is the torus).
    #[arg(long)]
    pub torus: Option<String>,
    /// Torus link bandwidth per direction, GB/s [default: scale-up bandwidth / (2 x dims)].
    #[arg(long)]
    pub torus_link_gbyte: Option<f64>,
    /// Fraction of scale-up line rate NVLS sustains on the wire [default: calibrated].
    #[arg(long)]
    pub nvls_efficiency: Option<f64>,
    /// Fit latency and bandwidth to this nccl-tests output instead of running sizes.
    #[arg(long)]
    pub fit: Option<PathBuf>,
    /// With --fit: write the fitted [cluster.network] keys to this TOML file.
    #[arg(long, requires = "fit")]
    pub write_fragment: Option<PathBuf>,
    /// Compare every published nccl-tests case (*.json) in this folder with trainsim.
    #[arg(long)]
    pub validate: Option<PathBuf>,
    /// Smallest message (B, K, M, G, T; binary multiples).
    #[arg(long, default_value = "1K")]
    pub min_bytes: String,
    /// Largest message.
    #[arg(long, default_value = "8G")]
    pub max_bytes: String,
    /// Split each message into this many pieces run one after another, each paying the
    /// full ring latency (1 = NCCL's pipelined ring).
    #[arg(long, default_value_t = 1)]
    pub chunks: u32,
    /// Output folder for busbw.png and collective.csv [default: out/collective].
    #[arg(long, short)]
    pub out: Option<PathBuf>,
    /// Do not draw the chart.
    #[arg(long)]
    pub no_chart: bool,
}

/// The cluster of `trainsim collective`: defaults, then the scenario, then explicit flags;
/// checked like a scenario's `[cluster.network]`.
fn cluster(a: &CollectiveArgs) -> anyhow::Result<Result<ClusterSpec, String>> {
    let mut c = match &a.scenario {
        Some(p) => Scenario::load(p)?.input.cluster,
        None => bench::default_cluster(),
    };
    if let Some(name) = &a.gpu {
        let Some(g) = gpu_preset(name) else {
            let known: Vec<String> = GPU_PRESETS.iter().map(|n| format!("\"{n}\"")).collect();
            return Ok(Err(format!(
                "--gpu \"{name}\": known GPU presets are {}",
                known.join(", ")
            )));
        };
        if a.scenario.is_none() && a.nic_gbit.is_none() && g.name.starts_with("A100") {
            c.nic_gbit_per_s = 200.0;
        }
        c.gpu = g;
    }
    if let Some(v) = a.gpus_per_node {
        c.gpus_per_node = v;
        if a.nics_per_node.is_none() {
            c.nics_per_node = v;
        }
    }
    macro_rules! set {
        ($field:ident, $arg:ident) => {
            if let Some(v) = a.$arg {
                c.$field = v;
            }
        };
    }
    set!(num_gpus, gpus);
    set!(nics_per_node, nics_per_node);
    set!(nic_gbit_per_s, nic_gbit);
    set!(scale_up_latency_us, scale_up_latency_us);
    set!(scale_out_latency_us, scale_out_latency_us);
    set!(scale_up_efficiency, scale_up_efficiency);
    set!(scale_out_efficiency, scale_out_efficiency);
    set!(oversubscription, oversubscription);
    set!(nodes_per_leaf, nodes_per_leaf);
    if let Some(v) = a.scale_up_gbyte {
        c.gpu.scale_up_gbyte_per_s = v;
    }
    if a.scenario.is_none() {
        bench::apply_calibration(
            &mut c,
            a.scale_up_efficiency.is_none(),
            a.scale_out_efficiency.is_none(),
        );
    }
    let t = &mut c.topology;
    if let Some(v) = a.scale_up_domain {
        t.scale_up_domain = v;
    }
    if let Some(v) = a.fat_tree_tiers {
        t.fat_tree_tiers = v;
    }
    if let Some(v) = a.leaves_per_pod {
        t.leaves_per_pod = v;
    }
    if let Some(v) = a.core_oversubscription {
        t.core_oversubscription = v;
    }
    t.rail_optimized |= a.rail_optimized;
    if let Some(v) = a.switch_latency_us {
        t.switch_latency_us = v;
    }
    if let Some(v) = a.torus_link_gbyte {
        t.torus_link_gbyte_per_s = v;
    }
    if let Some(v) = a.nvls_efficiency {
        t.nvls_efficiency = v;
    }
    if let Some(spec) = &a.torus {
        let dims: Result<Vec<u32>, _> = spec.split(['x', 'X', ',']).map(|d| d.trim().parse::<u32>()).collect();
        match dims {
            Ok(d) if (1..=3).contains(&d.len()) && d.iter().all(|&k| k >= 1) => t.torus = d,
            _ => {
                return Ok(Err(format!(
                    "--torus \"{spec}\": expected 1 to 3 dimension sizes of at least 1, e.g. 8x8 or 4x4x8"
                )))
            }
        }
    }
    let checks: [(bool, String); 9] = [
        (
            c.num_gpus >= 2,
            format!("--gpus {}: a collective needs at least 2 GPUs", c.num_gpus),
        ),
        (c.gpus_per_node >= 1, "--gpus-per-node must be at least 1".into()),
        (
            c.num_gpus <= c.gpus_per_node || c.num_gpus % c.gpus_per_node.max(1) == 0,
            format!(
                "--gpus {} must be a multiple of --gpus-per-node {} (whole nodes)",
                c.num_gpus, c.gpus_per_node
            ),
        ),
        (
            c.nics_per_node >= 1 && c.nodes_per_leaf >= 1,
            "--nics-per-node and --nodes-per-leaf must be at least 1".into(),
        ),
        (
            c.nic_gbit_per_s.is_finite() && c.nic_gbit_per_s > 0.0 && c.gpu.scale_up_gbyte_per_s > 0.0,
            "--nic-gbit and --scale-up-gbyte must be positive".into(),
        ),
        (
            c.scale_up_latency_us >= 0.0 && c.scale_out_latency_us >= 0.0,
            "latencies must be zero or positive".into(),
        ),
        (
            c.scale_up_efficiency > 0.0 && c.scale_up_efficiency <= 1.0,
            format!(
                "--scale-up-efficiency {}: must be a fraction in (0, 1]",
                c.scale_up_efficiency
            ),
        ),
        (
            c.scale_out_efficiency > 0.0 && c.scale_out_efficiency <= 1.0,
            format!(
                "--scale-out-efficiency {}: must be a fraction in (0, 1]",
                c.scale_out_efficiency
            ),
        ),
        (
            c.oversubscription.is_finite() && c.oversubscription >= 1.0,
            format!(
                "--oversubscription {}: must be a ratio of at least 1 (1 = non-blocking, 4 = 4:1)",
                c.oversubscription
            ),
        ),
    ];
    if let Some((_, msg)) = checks.into_iter().find(|(ok, _)| !ok) {
        return Ok(Err(msg));
    }
    let t = &c.topology;
    let torus_chips: u64 = t.torus.iter().map(|&k| k as u64).product();
    let domain = t.scale_up_domain;
    let topo_checks: [(bool, String); 6] = [
        (
            t.fat_tree_tiers == 2 || t.fat_tree_tiers == 3,
            format!("--fat-tree-tiers {}: allowed values are 2 and 3", t.fat_tree_tiers),
        ),
        (
            t.core_oversubscription.is_finite() && t.core_oversubscription >= 1.0,
            format!(
                "--core-oversubscription {}: must be a ratio of at least 1",
                t.core_oversubscription
            ),
        ),
        (
            t.switch_latency_us.is_finite() && t.switch_latency_us >= 0.0 && t.torus_link_gbyte_per_s >= 0.0,
            "--switch-latency-us and --torus-link-gbyte must be zero or positive".into(),
        ),
        (
            t.nvls_efficiency >= 0.0 && t.nvls_efficiency <= 1.0,
            format!("--nvls-efficiency {}: must be a fraction in (0, 1]", t.nvls_efficiency),
        ),
        (
            domain == 0
                || (domain % c.gpus_per_node.max(1) == 0 && (c.num_gpus <= domain || c.num_gpus % domain == 0)),
            format!(
                "--scale-up-domain {domain}: must be a multiple of --gpus-per-node {} and divide --gpus {} (whole domains)",
                c.gpus_per_node, c.num_gpus
            ),
        ),
        (
            t.torus.is_empty() || torus_chips == c.num_gpus as u64,
            format!(
                "--torus {}: holds {torus_chips} chips but --gpus is {}; they must match",
                a.torus.as_deref().unwrap_or(""),
                c.num_gpus
            ),
        ),
    ];
    if let Some((_, msg)) = topo_checks.into_iter().find(|(ok, _)| !ok) {
        return Ok(Err(msg));
    }
    Ok(Ok(c))
}

/// `trainsim collective`: the table, the CSV and the chart, or `--validate`, or `--fit`.
pub fn run(a: &CollectiveArgs) -> anyhow::Result<i32> {
    let fail = |msg: String| {
        eprintln!("error: {msg}");
        Ok(2)
    };
    if let Some(dir) = &a.validate {
        return validate(dir);
    }
    let kind = match bench::parse_op(&a.op) {
        Ok(k) => k,
        Err(e) => return fail(format!("--op: {e}")),
    };
    let algo = match Algorithm::parse(&a.algo) {
        Ok(x) => x,
        Err(e) => return fail(format!("--algo: {e}")),
    };
    let chunk_bytes = match a.chunk_bytes.trim() {
        "0" => 0.0,
        v => match bench::parse_size(v) {
            Ok(b) => b,
            Err(e) => return fail(format!("--chunk-bytes: {e}")),
        },
    };
    if let Some(log) = &a.fit {
        return fit_log(a, log, algo);
    }
    let (min, max) = match (bench::parse_size(&a.min_bytes), bench::parse_size(&a.max_bytes)) {
        (Ok(lo), Ok(hi)) => (lo, hi),
        (Err(e), _) => return fail(format!("--min-bytes: {e}")),
        (_, Err(e)) => return fail(format!("--max-bytes: {e}")),
    };
    if min > max {
        return fail(format!(
            "--min-bytes {} is larger than --max-bytes {}: nothing to run",
            a.min_bytes, a.max_bytes
        ));
    }
    if a.chunks == 0 {
        return fail("--chunks must be at least 1".into());
    }
    let c = match cluster(a)? {
        Ok(c) => c,
        Err(msg) => return fail(msg),
    };
    let started = std::time::Instant::now();
    let rows = match bench::sweep_sizes(kind, algo, &c, min, max, a.chunks, chunk_bytes) {
        Ok(r) => r,
        Err(e) => return fail(e),
    };
    let wall_s = started.elapsed().as_secs_f64();
    let op = kind.name();
    let title = format!(
        "{op} over {} x {} ({} per node, {} NICs x {} Gbit/s, {}:1 spine{})",
        c.num_gpus,
        c.gpu.name,
        c.gpus_per_node,
        c.nics_per_node,
        c.nic_gbit_per_s,
        c.oversubscription,
        bench::topology_note(&c)
    );
    println!(
        "# {title}; algorithm {}; {} piece(s) per message; efficiency scale-up {:.3}, scale-out {:.3}",
        algo.name(),
        a.chunks,
        c.scale_up_efficiency,
        c.scale_out_efficiency
    );
    println!(
        "{:>14} {:>14} {:>14} {:>12} {:>12}  algorithm",
        "size (B)", "count", "time (us)", "algbw (GB/s)", "busbw (GB/s)"
    );
    let mut csv = String::from("size_bytes,count,time_us,algbw_gbyte_per_s,busbw_gbyte_per_s,algorithm\n");
    for r in &rows {
        println!(
            "{:>14} {:>14} {:>14.2} {:>12.2} {:>12.2}  {}",
            r.size_bytes,
            r.count,
            r.time_s * 1e6,
            r.algbw_gbyte_per_s,
            r.busbw_gbyte_per_s,
            r.algorithm.name()
        );
        let _ = writeln!(
            csv,
            "{},{},{:.4},{:.4},{:.4},{}",
            r.size_bytes,
            r.count,
            r.time_s * 1e6,
            r.algbw_gbyte_per_s,
            r.busbw_gbyte_per_s,
            r.algorithm.name()
        );
    }
    println!("simulated {} sizes in {:.6} s of wall time", rows.len(), wall_s);
    let dir = a
        .out
        .clone()
        .unwrap_or_else(|| Path::new(super::DEFAULT_OUT).join("collective"));
    let file = dir.join("collective.csv");
    report::write_atomic(&file, csv.as_bytes())?;
    println!("wrote {}", file.display());
    if !a.no_chart {
        let png = dir.join("busbw.png");
        let data = report::charts::busbw::data(
            op,
            title,
            vec![(
                format!("{op}, {} GPUs, {}", c.num_gpus, algo.name()),
                rows.iter().map(|r| (r.size_bytes, r.busbw_gbyte_per_s)).collect(),
            )],
        );
        report::charts::busbw::draw(&data, &png)?;
        println!("wrote {}", png.display());
    }
    Ok(0)
}

/// `trainsim collective --validate DIR`: published nccl-tests cases against trainsim.
fn validate(dir: &Path) -> anyhow::Result<i32> {
    let cases = match nccl::load_cases(dir) {
        Ok(c) => c,
        Err(e) => {
            eprintln!("error: {e}");
            return Ok(2);
        }
    };
    println!(
        "{:<40} {:<11} {:<10} {:>17} {:>16} {:>8}",
        "case", "role", "algorithm", "published (GB/s)", "trainsim (GB/s)", "error"
    );
    let mut errs = Vec::new();
    for (path, case) in &cases {
        match nccl::predict(case) {
            Ok(r) => {
                println!(
                    "{:<40} {:<11} {:<10} {:>17.1} {:>16.1} {:>+7.1}%",
                    r.name,
                    r.role,
                    r.algorithm.name(),
                    r.published_gbyte_per_s,
                    r.trainsim_gbyte_per_s,
                    r.error_fraction * 100.0
                );
                errs.push((r.error_fraction.abs(), r.name));
            }
            Err(e) => {
                eprintln!("error: {}: {e}", path.display());
                return Ok(2);
            }
        }
    }
    let mean = errs.iter().map(|e| e.0).sum::<f64>() / errs.len().max(1) as f64;
    if let Some(w) = errs.iter().max_by(|a, b| a.0.total_cmp(&b.0)) {
        println!(
            "{} cases: mean |error| {:.1}%, worst {:.1}% ({})",
            errs.len(),
            mean * 100.0,
            w.0 * 100.0,
            w.1
        );
    }
    Ok(0)
}

/// `trainsim collective --fit LOG`: alpha-beta fit of a real nccl-tests log, residuals, and
/// the `[cluster.network]` keys reproducing it on the given cluster.
fn fit_log(a: &CollectiveArgs, log_path: &Path, algo: Algorithm) -> anyhow::Result<i32> {
    let fail = |msg: String| {
        eprintln!("error: {msg}");
        Ok(2)
    };
    let name = log_path.display().to_string();
    let text = match std::fs::read(log_path) {
        Ok(b) => String::from_utf8_lossy(&b).into_owned(),
        Err(e) => return fail(format!("--fit {name}: cannot read: {e}")),
    };
    let log = match fit::parse_log(&text, &name) {
        Ok(l) => l,
        Err(e) => return fail(e),
    };
    let kind = match fit::log_op(&log, &a.op) {
        Ok(k) => k,
        Err(e) => return fail(format!("--op: {e}")),
    };
    let mut args = a.clone();
    if let Some(r) = log.ranks {
        match a.gpus {
            Some(g) if g != r => {
                return fail(format!(
                    "--gpus {g} but {name} lists {r} ranks; drop --gpus or give the matching log"
                ))
            }
            _ => args.gpus = Some(r),
        }
        if let (Some(h), None) = (log.hosts, a.gpus_per_node) {
            if r % h == 0 {
                args.gpus_per_node = Some(r / h);
            }
        }
    }
    if args.gpu.is_none() && args.scenario.is_none() {
        if let Some(p) = log.gpu.as_deref().and_then(fit::gpu_preset_for) {
            args.gpu = Some(p.to_string());
        }
    }
    let c = match cluster(&args)? {
        Ok(c) => c,
        Err(msg) => return fail(msg),
    };
    let factor = bench::bus_factor(kind, c.num_gpus);
    let f = match fit::fit_alpha_beta(&log.rows, factor, &name) {
        Ok(f) => f,
        Err(e) => return fail(e),
    };
    let largest = log.rows.iter().map(|r| r.size_bytes).fold(0.0, f64::max);
    let (used, keys) = match fit::network_keys(&f, kind, algo, &c, largest) {
        Ok(k) => k,
        Err(e) => return fail(e),
    };
    println!(
        "# fit of {name}: {} over {} x {} ({} per node), {} sizes, trainsim algorithm {}",
        kind.name(),
        c.num_gpus,
        c.gpu.name,
        c.gpus_per_node,
        log.rows.len(),
        used.name()
    );
    println!("alpha (latency)        {:>10.2} us", f.alpha_s * 1e6);
    println!("achievable busbw       {:>10.2} GB/s", f.busbw_bytes_per_s / 1e9);
    println!("rms residual           {:>10.2} %", f.rms_residual_fraction * 100.0);
    println!(
        "{:>6} {:>14} {:>14} {:>14} {:>9}",
        "line", "size (B)", "measured (us)", "fitted (us)", "residual"
    );
    for (line, size, t, m) in &f.points {
        println!(
            "{:>6} {:>14} {:>14.2} {:>14.2} {:>+8.1}%",
            line,
            size,
            t * 1e6,
            m * 1e6,
            (m - t) / t * 100.0
        );
    }
    println!("[cluster.network] keys reproducing it on this cluster:");
    for (k, v) in &keys {
        println!("  {k} = {v:.4}");
    }
    if let Some((k, v)) = keys.iter().find(|(k, v)| k.ends_with("efficiency") && *v > 1.0) {
        eprintln!(
            "warning: fitted {k} = {v:.3} exceeds line rate: NCCL probably ran another algorithm than {} (try --algo)",
            used.name()
        );
    }
    if let Some(out) = &a.write_fragment {
        let header = format!(
            "fitted by trainsim collective --fit {name}\n{} over {} x {}, algorithm {}: alpha = {:.2} us, busbw = {:.2} GB/s, rms residual {:.2}% over {} sizes",
            kind.name(),
            c.num_gpus,
            c.gpu.name,
            used.name(),
            f.alpha_s * 1e6,
            f.busbw_bytes_per_s / 1e9,
            f.rms_residual_fraction * 100.0,
            log.rows.len()
        );
        report::write_atomic(out, fit::fragment_toml(&header, &keys).as_bytes())?;
        println!("wrote {}", out.display());
    }
    Ok(0)
}
