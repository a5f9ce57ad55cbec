//! `trainsim collective`: owns its arguments ([`CollectiveArgs`]), the cluster its flags
//! describe, and the printing of its table; [`nccl_tests`] prints the validation and the fit.
//! The computations are the network's ([`crate::network::bench`], [`crate::network::fit`],
//! [`crate::network::nccl`], [`crate::network::fitting`]).

mod nccl_tests;

use crate::hardware::fabric::{fabric_names, fabric_preset, CollectiveModel, FabricSpec};
use crate::hardware::presets::{gpu_preset, GPU_PRESETS};
use crate::hardware::ClusterSpec;
use crate::network::tuner::Protocol;
use crate::network::{bench, Algorithm};
use crate::report;
use crate::scenario::Scenario;
use std::fmt::Write as _;
use std::path::{Path, PathBuf};

/// After-help of `trainsim collective`.
pub(crate) const COLLECTIVE_HELP: &str = "Examples:
  trainsim collective --gpu H100-SXM --gpus 16 --gpus-per-node 8 --nic-gbit 400 \\
      --op all_reduce --min-bytes 8 --max-bytes 16G
  trainsim collective --gpus 8 --op all_reduce --algo ring --protocol simple --max-bytes 8G
      force one algorithm and protocol (auto = NCCL's tuner's choice per size)
  trainsim collective --fabric efa-p5 --gpus 256 --op all_to_all
      an AWS p5 cluster (32 x 100 Gb/s EFA per node)
  trainsim collective --fabric ib-ndr --sharp --gpu B200 --gpus 128 --algo collnet
      InfiniBand SHARP (NCCL's CollNet)
  trainsim collective --scenario scenarios/llama3-8b-h100-64.toml --op all_gather
      the scenario's cluster; flags given explicitly override it
  trainsim collective --gpu B200 --gpus 1152 --gpus-per-node 4 --scale-up-domain 72
      GB200 NVL72 racks: 72 GPUs per NVLink domain
  trainsim collective --gpus 4096 --fat-tree-tiers 3 --leaves-per-pod 8 \\
      --oversubscription 2 --core-oversubscription 4 --rail-optimized --switch-latency-us 0.3
  trainsim collective --gpus 256 --torus 8x8x4 --op all_reduce
      a TPU-like 3D torus (no switched fabric)
  trainsim collective --gpus 4096 --gpus-per-node 1 --model hop --scale-out-latency-us 0.5
      the textbook hop model (bytes over links plus a latency per hop), as simulators
      such as ASTRA-sim model a ring
  trainsim collective --fit all_reduce.log --gpu H100-SXM --write-fragment net.toml
      fit the NCCL model's network efficiency and latency scale to a real nccl-tests log;
      print the residuals; write the [cluster.network] keys that reproduce it
  trainsim collective --validate scenarios/validation/nccl-tests
      published nccl-tests bus bandwidths against trainsim; with the round-2 calibration
      file beside them, leave-one-system-out cross-validation of the model's constants

Runs one collective over every GPU of the cluster for each size from --min-bytes doubling to
--max-bytes and prints size, count (4-byte elements), time, algbw = size / time, busbw =
algbw * 2(n-1)/n (all-reduce), (n-1)/n (all-gather, reduce-scatter, all-to-all) or 1
(sendrecv, broadcast, reduce), as nccl-tests does, and the algorithm and protocol. The NCCL
model (default) times NCCL's algorithms and protocols as its tuner would pick them, with
constants calibrated on published nccl-tests runs (docs/network.md, docs/calibration.md);
the bytes go through the same ports as in a training run. Writes busbw.png (bus bandwidth
vs size) and collective.csv to --out. Exit status 2 on invalid input.";

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
    /// Scale-out fabric preset: ib-hdr, ib-ndr, ib-xdr, roce, spectrum-x, efa-p5, efa-p5en,
    /// efa-p6, tcpxo, slingshot, nvl72 [default: InfiniBand of the NIC rate]; sets the NIC
    /// rate and count unless given.
    #[arg(long)]
    pub fabric: Option<String>,
    /// Collective model: nccl (NCCL's tuner model) or hop (bytes plus a latency per hop)
    /// [default: nccl].
    #[arg(long)]
    pub model: Option<String>,
    /// NCCL protocol: auto, ll, ll128 or simple (NCCL model).
    #[arg(long, default_value = "auto")]
    pub protocol: String,
    /// In-network reduction (InfiniBand SHARP) available: NCCL may run CollNet.
    #[arg(long)]
    pub sharp: bool,
    /// Scale-up hop latency of the hop model, microseconds [default: 1.5].
    #[arg(long)]
    pub scale_up_latency_us: Option<f64>,
    /// Scale-out hop latency of the hop model, microseconds [default: 4].
    #[arg(long)]
    pub scale_out_latency_us: Option<f64>,
    /// Fraction of scale-up bandwidth rings and sends sustain [default: calibrated for the
    /// GPU generation, printed in the table's first line].
    #[arg(long)]
    pub scale_up_efficiency: Option<f64>,
    /// Fraction of NIC line rate bulk transfers sustain [default: calibrated, printed in
    /// the table's first line].
    #[arg(long)]
    pub scale_out_efficiency: Option<f64>,
    /// Leaf-to-spine oversubscription ratio, at least 1 [default: 1].
    #[arg(long)]
    pub oversubscription: Option<f64>,
    /// Nodes per leaf switch [default: 16].
    #[arg(long)]
    pub nodes_per_leaf: Option<u32>,
    /// all_reduce, all_gather, reduce_scatter, all_to_all, sendrecv, broadcast or reduce.
    #[arg(long, default_value = "all_reduce")]
    pub op: String,
    /// auto, ring, tree, nvls, nvls_tree, collnet, hierarchical, halving_doubling, direct
    /// or pairwise.
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
    /// Compare every published nccl-tests case (*.json) in this folder with trainsim, and
    /// cross-validate the model on the round-2 calibration file (DIR/round2/ or the file).
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
    let preset = match &a.fabric {
        Some(name) => match fabric_preset(name) {
            Some(p) => Some(p),
            None => {
                let known: Vec<String> = fabric_names().iter().map(|n| format!("\"{n}\"")).collect();
                return Ok(Err(format!(
                    "--fabric \"{name}\": known fabric presets are {}",
                    known.join(", ")
                )));
            }
        },
        None => None,
    };
    if let Some(name) = &a.gpu {
        let Some(g) = gpu_preset(name) else {
            let known: Vec<String> = GPU_PRESETS.iter().map(|n| format!("\"{n}\"")).collect();
            return Ok(Err(format!(
                "--gpu \"{name}\": known GPU presets are {}",
                known.join(", ")
            )));
        };
        if a.scenario.is_none() && a.nic_gbit.is_none() && preset.is_none() && g.name.starts_with("A100") {
            c.nic_gbit_per_s = 200.0;
        }
        c.gpu = g;
    }
    if let Some(p) = preset {
        c.fabric = FabricSpec::of(p);
        if a.nic_gbit.is_none() {
            c.nic_gbit_per_s = p.nic_gbit_per_s;
        }
        if p.scale_up_domain > 0 && a.scale_up_domain.is_none() {
            c.topology.scale_up_domain = p.scale_up_domain;
        }
    } else if a.scenario.is_none() {
        c.fabric = FabricSpec::of(crate::hardware::fabric::default_fabric(
            a.nic_gbit.unwrap_or(c.nic_gbit_per_s),
        ));
    }
    if let Some(m) = &a.model {
        match CollectiveModel::NAMES
            .iter()
            .position(|n| n.eq_ignore_ascii_case(m.trim()))
        {
            Some(i) => c.fabric.model = CollectiveModel::ALL[i],
            None => return Ok(Err(format!("--model \"{m}\": allowed values are \"nccl\", \"hop\""))),
        }
    }
    c.fabric.sharp |= a.sharp;
    if let Some(v) = a.gpus_per_node {
        c.gpus_per_node = v;
    }
    if a.nics_per_node.is_none() && (a.gpus_per_node.is_some() || preset.is_some()) {
        let per_gpu = preset.map_or(1.0, |p| p.nics_per_gpu);
        c.nics_per_node = (per_gpu * c.gpus_per_node as f64).round().max(1.0) as u32;
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
        return nccl_tests::validate(dir);
    }
    let protocol = match Protocol::parse(&a.protocol) {
        Ok(p) => p,
        Err(e) => return fail(format!("--protocol: {e}")),
    };
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
        return nccl_tests::fit_log(a, log, algo);
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
    // nccl-tests' sizes are the per-GPU buffer (all-gather's output, reduce-scatter's
    // input): a size the GPU cannot hold is not a run anyone can measure
    let hbm_bytes = c.gpu.hbm_capacity_gib * (1u64 << 30) as f64;
    if max > hbm_bytes {
        return fail(format!(
            "--max-bytes {}: sizes out of range: the buffer must fit in one {}'s {} GiB of memory \
             (at most {}G)",
            a.max_bytes,
            c.gpu.name,
            c.gpu.hbm_capacity_gib,
            (hbm_bytes / (1u64 << 30) as f64).floor()
        ));
    }
    let started = std::time::Instant::now();
    let rows = match bench::sweep_sizes(kind, algo, protocol, &c, min, max, a.chunks, chunk_bytes) {
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
        "# {title}; {} model, fabric {}; algorithm {}, protocol {}; {} piece(s) per message; efficiency scale-up {:.3}, scale-out {:.3}",
        match c.fabric.model {
            CollectiveModel::Nccl => "NCCL",
            CollectiveModel::Hop => "hop",
        },
        c.fabric.preset,
        algo.name(),
        protocol.map_or("auto", |p| p.name()),
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
            r.label()
        );
        let _ = writeln!(
            csv,
            "{},{},{:.4},{:.4},{:.4},{}",
            r.size_bytes,
            r.count,
            r.time_s * 1e6,
            r.algbw_gbyte_per_s,
            r.busbw_gbyte_per_s,
            r.label()
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
