//! The command line. The only module that prints. Each subcommand is a short pipeline:
//! load, simulate, report.

pub mod validate;

use crate::report;
use crate::scenario::Scenario;
use crate::workload::CommKind;
use clap::{Parser, Subcommand};
use std::ffi::OsString;
use std::path::{Path, PathBuf};

const ABOUT: &str = "Discrete-event simulator of distributed LLM training: step time, throughput, MFU, memory and where the time goes, for a model, a cluster and a parallelism plan.";

const EXAMPLES: &str = "Examples:
  trainsim run scenarios/gpt3-175b-a100-1024.toml
      simulate the scenario; print the summary; write results.json, charts and
      report.md to plots/gpt3-175b-a100-1024/
  trainsim run my.toml --out results/my --seed 7
  trainsim run scenarios/gpt3-175b-a100-1024.toml --trace --trace-stages 0,3,7
      also write trace.json (every operation of stages 0, 3 and 7 in the last
      iteration); open it in https://ui.perfetto.dev or chrome://tracing
  trainsim validate scenarios/validation
      predicted vs measured step time for every scenario with a [measured] section
  trainsim plot plots/gpt3-175b-a100-1024/results.json
      redraw the charts from saved results without simulating again
  trainsim collective --gpu H100-SXM --gpus 16 --op all_reduce --min-bytes 1K --max-bytes 8G
      nccl-tests style table (time, algbw, busbw per size) and a bus-bandwidth chart

Scenario format: docs/scenario.md. Results format: docs/results.md.";

/// trainsim command line.
#[derive(Debug, Parser)]
#[command(name = "trainsim", version, about = ABOUT, after_help = EXAMPLES, help_expected = true)]
pub struct Cli {
    /// What to do.
    #[command(subcommand)]
    pub command: Command,
}

/// Subcommands.
#[derive(Debug, Subcommand)]
pub enum Command {
    /// Simulate one scenario: print the summary, write results.json and charts.
    #[command(
        after_help = "Examples:\n  trainsim run scenarios/gpt3-175b-a100-1024.toml --out plots/gpt3\n  trainsim run scenarios/gpt3-175b-a100-1024.toml --trace --trace-stages 0,3,7\n      also write trace.json: a Chrome trace (one process per stage, one thread per stream)\n      of the last iteration, for https://ui.perfetto.dev or chrome://tracing\n\nExit status: 0 on success (also when the plan does not fit in memory: the summary says so),\n2 when the scenario is invalid or the plan impossible, 1 on other failures."
    )]
    Run {
        /// Scenario file (TOML; see docs/scenario.md).
        scenario: PathBuf,
        /// Output folder for results.json and charts [default: plots/<scenario file stem>].
        #[arg(long, short)]
        out: Option<PathBuf>,
        /// Override the scenario's seed.
        #[arg(long)]
        seed: Option<u64>,
        /// Write results.json only, no charts and no report.md.
        #[arg(long)]
        no_charts: bool,
        /// Also write trace.json: every operation of the last iteration as a Chrome trace.
        #[arg(long)]
        trace: bool,
        /// Pipeline stages to trace, comma-separated, e.g. 0,3,7 (implies --trace) [default: all
        /// when pp <= 8, else the first, middle and last].
        #[arg(long, value_delimiter = ',')]
        trace_stages: Option<Vec<u32>>,
        /// Print nothing but errors.
        #[arg(long, short)]
        quiet: bool,
    },
    /// Compare predicted and measured step times of every scenario with a [measured] section in a folder.
    #[command(
        after_help = "Example:\n  trainsim validate scenarios/validation --check\n\nPrints one row per scenario (predicted, measured, error) and the mean absolute percentage\nerror (MAPE). With --check, exits 1 when MAPE or any single error is above its limit."
    )]
    Validate {
        /// Folder searched recursively for *.toml scenarios.
        dir: PathBuf,
        /// Exit non-zero if MAPE or any error exceeds the limits.
        #[arg(long)]
        check: bool,
        /// MAPE limit for --check, percent.
        #[arg(long, default_value_t = 10.0)]
        max_mape_pct: f64,
        /// Per-scenario error limit for --check, percent.
        #[arg(long, default_value_t = 20.0)]
        max_error_pct: f64,
        /// Also write the table as CSV to this file.
        #[arg(long)]
        csv: Option<PathBuf>,
    },
    /// Redraw the charts of a saved results.json.
    #[command(after_help = "Example:\n  trainsim plot plots/gpt3/results.json --out /tmp/charts")]
    Plot {
        /// A results.json written by `trainsim run`.
        results: PathBuf,
        /// Output folder [default: the folder of results.json].
        #[arg(long, short)]
        out: Option<PathBuf>,
    },
    /// Run a parameter sweep: a grid over scenario fields, in parallel, one row per point.
    #[command(after_help = SWEEP_HELP)]
    Sweep {
        /// Sweep file (TOML; see docs/sweep.md).
        sweep: PathBuf,
        /// Output folder for sweep.csv and sweep.jsonl [default: plots/<sweep file stem>].
        #[arg(long, short)]
        out: Option<PathBuf>,
        /// Run only the slice i of n (points with index % n == i), e.g. --shard 0/4.
        #[arg(long, value_parser = parse_shard)]
        shard: Option<(usize, usize)>,
        /// Ignore the partial results of an interrupted run and start over.
        #[arg(long)]
        restart: bool,
        /// Worker threads [default: all cores]; results are identical for any count.
        #[arg(long, short = 'j')]
        threads: Option<usize>,
        /// Print nothing but errors.
        #[arg(long, short)]
        quiet: bool,
        /// Charts to draw, comma-separated: scaling, heatmap, pareto [default: all that apply].
        #[arg(long, value_enum, value_delimiter = ',')]
        chart: Vec<crate::sweep::charts::ChartKind>,
        /// x metric of the Pareto chart: a numeric column of sweep.csv or an axis field
        /// [default: cost_usd with a [target], else gpu_hours_per_step].
        #[arg(long)]
        x: Option<String>,
        /// y metric of the Pareto chart [default: time_to_target_days with a [target], else
        /// step_time_s].
        #[arg(long)]
        y: Option<String>,
    },
    /// Find the best parallel plans for a scenario's model, cluster and batch.
    #[command(after_help = SEARCH_HELP)]
    Search(Box<SearchArgs>),
    /// One collective per message size on an idle cluster: an nccl-tests style table and chart.
    #[command(after_help = COLLECTIVE_HELP)]
    Collective(Box<CollectiveArgs>),
    /// Join the CSV slices of a sharded sweep into one file ordered by point.
    #[command(
        after_help = "Example:\n  trainsim merge --out plots/tp-pp/sweep.csv plots/tp-pp/sweep.shard-*-of-4.csv"
    )]
    Merge {
        /// Merged CSV to write.
        #[arg(long, short)]
        out: PathBuf,
        /// Shard CSVs written by `trainsim sweep --shard`.
        #[arg(required = true)]
        inputs: Vec<PathBuf>,
    },
}

const SWEEP_HELP: &str = "Example:
  trainsim sweep scenarios/sweeps/gpt3-175b-tp-pp.toml
      every (TP, PP) pair for GPT-3 175B on 1,024 A100; writes plots/gpt3-175b-tp-pp/sweep.csv
  trainsim sweep big.toml --shard 3/16 --out /scratch/big
      one slice of a sweep too large for one machine (e.g. a Slurm array task); join the
      slices with `trainsim merge`

Rows stream to sweep.csv.partial and sweep.jsonl.partial in point order and are renamed when
the sweep ends; rerunning an interrupted sweep resumes after the last complete row.
Invalid or out-of-memory points are rows with feasible=false and the reason.

Charts (unsharded runs): scaling.png, heatmap.png (two axes) and pareto.png, two metrics
with the non-dominated front, e.g.
  trainsim sweep my.toml --chart pareto --x cost_usd --y time_to_target_days";

const SEARCH_HELP: &str = "Examples:
  trainsim search scenarios/peers/p4-gpt3-175b-a100-1024.toml --zero 0,1,2,3 --top 5
  trainsim search my.toml --objective cost      (needs a [target] section)

Enumerates TP, PP (with Megatron's uneven split), virtual stages, micro-batch size,
recomputation and ZeRO stage; drops impossible plans and those that do not fit; orders the
rest by a lower bound on step time, tightens it for those that might win (the operation graph
timed without network contention) and simulates only those that can still beat the N-th best.
The simulation decides the ranking. The scenario's own plan only supplies defaults (overlap
flags, bucket size). Writes search.csv (every candidate) and pareto.png to --out.
Exit status 2 on invalid input.";

/// Arguments of `trainsim search`.
#[derive(Debug, clap::Args)]
pub struct SearchArgs {
    /// Scenario file whose model, cluster and training are kept.
    pub scenario: PathBuf,
    /// How many best plans to print (and make certain), at least 1.
    #[arg(long, default_value_t = 5)]
    pub top: usize,
    /// ZeRO stages to consider, comma-separated.
    #[arg(long, value_delimiter = ',', default_value = "1")]
    pub zero: Vec<u32>,
    /// What to minimise: step time (throughput), or, with a [target] section, wall-clock
    /// to the target, its cost or its energy.
    #[arg(long, value_enum, default_value = "throughput")]
    pub objective: crate::sweep::search::Objective,
    /// Worker threads [default: all cores]; results are identical for any count.
    #[arg(long, short = 'j')]
    pub threads: Option<usize>,
    /// Output folder for search.csv and pareto.png [default: plots/<scenario stem>-search].
    #[arg(long, short)]
    pub out: Option<PathBuf>,
}

const COLLECTIVE_HELP: &str = "Examples:
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
    /// Fraction of scale-up bandwidth collectives sustain [default: 0.8].
    #[arg(long)]
    pub scale_up_efficiency: Option<f64>,
    /// Fraction of NIC line rate collectives sustain [default: 0.9].
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
    /// Output folder for busbw.png and collective.csv [default: plots/collective].
    #[arg(long, short)]
    pub out: Option<PathBuf>,
    /// Do not draw the chart.
    #[arg(long)]
    pub no_chart: bool,
}

fn parse_shard(s: &str) -> Result<(usize, usize), String> {
    let (i, n) = s.split_once('/').ok_or("expected i/n, e.g. 0/4")?;
    let i: usize = i.trim().parse().map_err(|_| format!("'{i}' is not a whole number"))?;
    let n: usize = n.trim().parse().map_err(|_| format!("'{n}' is not a whole number"))?;
    if n == 0 || i >= n {
        return Err(format!("shard {i}/{n}: need 0 <= i < n"));
    }
    Ok((i, n))
}

/// Runs the CLI on `args`; returns the process exit code.
pub fn main_with_args<I, T>(args: I) -> i32
where
    I: IntoIterator<Item = T>,
    T: Into<OsString> + Clone,
{
    let cli = match Cli::try_parse_from(args) {
        Ok(c) => c,
        Err(e) => {
            let code = if e.use_stderr() { 2 } else { 0 };
            let _ = e.print();
            return code;
        }
    };
    match dispatch(cli) {
        Ok(code) => code,
        Err(e) => {
            let usage = e.chain().any(|c| {
                c.downcast_ref::<crate::scenario::ScenarioError>().is_some()
                    || c.downcast_ref::<crate::sweep::SweepError>().is_some()
                    || c.downcast_ref::<crate::runner::RunError>().is_some_and(|e| e.is_usage())
            });
            eprintln!("error: {e:#}");
            if usage {
                2
            } else {
                1
            }
        }
    }
}

fn dispatch(cli: Cli) -> anyhow::Result<i32> {
    match cli.command {
        Command::Run {
            scenario,
            out,
            seed,
            no_charts,
            trace,
            trace_stages,
            quiet,
        } => {
            let trace = (trace || trace_stages.is_some()).then(|| trace_stages.unwrap_or_default());
            run(&scenario, out, seed, no_charts, trace, quiet)
        }
        Command::Validate {
            dir,
            check,
            max_mape_pct,
            max_error_pct,
            csv,
        } => validate::validate(&dir, check, max_mape_pct, max_error_pct, csv.as_deref()),
        Command::Plot { results, out } => plot(&results, out),
        Command::Sweep {
            sweep,
            out,
            shard,
            restart,
            threads,
            quiet,
            chart,
            x,
            y,
        } => {
            let charts = crate::sweep::charts::ChartOptions { kinds: chart, x, y };
            run_sweep(&sweep, out, shard, restart, threads, quiet, charts)
        }
        Command::Search(a) => {
            let scenario = a.scenario.clone();
            search(&scenario, *a)
        }
        Command::Collective(a) => collective(&a),
        Command::Merge { out, inputs } => {
            let n = crate::sweep::merge_csv(&inputs, &out)?;
            println!("wrote {} ({n} points)", out.display());
            Ok(0)
        }
    }
}

fn search(path: &Path, a: SearchArgs) -> anyhow::Result<i32> {
    use crate::sweep::search::{search, table_csv, why, SearchOptions, Status};
    let usage = |message: String| crate::sweep::SweepError::Invalid {
        path: path.to_path_buf(),
        location: String::new(),
        message,
    };
    if a.top == 0 {
        return Err(usage("--top 0: give at least 1 (how many best plans to make certain and print)".into()).into());
    }
    if let Some(z) = a.zero.iter().find(|z| **z > 3) {
        return Err(usage(format!("--zero {z}: ZeRO stages are 0, 1, 2 or 3")).into());
    }
    let sc = Scenario::load(path)?;
    let pool = rayon::ThreadPoolBuilder::new()
        .num_threads(a.threads.unwrap_or(0))
        .build()?;
    let started = std::time::Instant::now();
    let opts = SearchOptions {
        top: a.top,
        zero_stages: a.zero,
        objective: a.objective,
        ..SearchOptions::default()
    };
    let o = pool.install(|| search(&sc.input, &opts)).map_err(|e| usage(e.0))?;
    let wall_s = started.elapsed().as_secs_f64();
    println!(
        "{} candidate plans, {} valid and fitting, {} bounded without contention, {} simulated, in {:.2} s ({:.0} plans/s)",
        o.enumerated,
        o.feasible,
        o.bounded,
        o.simulated,
        wall_s,
        o.enumerated as f64 / wall_s.max(1e-9)
    );
    println!("objective: {} ({})\n", o.objective.name(), o.objective.column());
    println!(
        "{:<4} {:<66} {:>12} {:>9} {:>6} {:>9} {:>8} {:>8} {:>8} {:>8} {:>9}",
        "rank",
        "plan",
        o.objective.column(),
        "step [s]",
        "MFU %",
        "compute",
        "TP exp",
        "DP exp",
        "PP exp",
        "bubble",
        "free GiB"
    );
    let sims: Vec<&crate::simulation::RunResult> = o
        .candidates
        .iter()
        .filter_map(|c| match &c.status {
            Status::Simulated(r) => Some(r.as_ref()),
            _ => None,
        })
        .collect();
    for (i, r) in sims.iter().take(a.top).enumerate() {
        let b = &r.breakdown;
        println!(
            "{:<4} {:<66} {:>12.4} {:>9.3} {:>6.1} {:>9.3} {:>8.3} {:>8.3} {:>8.3} {:>8.3} {:>9.1}",
            i + 1,
            r.plan.clone(),
            o.objective.value(r),
            r.step_time_s,
            100.0 * r.mfu_fraction,
            b.compute_s(),
            b.exposed(CommKind::Tp),
            b.exposed(CommKind::DpGrad) + b.exposed(CommKind::DpParam),
            b.exposed(CommKind::Pp),
            b.pipeline_bubble_s(),
            r.memory.capacity_gib - r.memory.total_gib
        );
        println!("     why: {}", why(r, sims.get(i + 1).map(|n| (i + 2, *n))));
    }
    println!("(seconds per step; exposed = communication not hidden behind compute)");
    let dir = a.out.unwrap_or_else(|| {
        let stem = path
            .file_stem()
            .map(|s| s.to_string_lossy().into_owned())
            .unwrap_or_else(|| "search".into());
        Path::new("plots").join(format!("{stem}-search"))
    });
    let file = dir.join("search.csv");
    report::write_atomic(&file, table_csv(&o).as_bytes())?;
    println!("\nwrote {}", file.display());
    if let Some(chart) = crate::sweep::charts::draw_search_pareto(&o, &sc.input.name, &dir)? {
        println!("wrote {}", chart.display());
    }
    Ok(0)
}

#[allow(clippy::too_many_arguments)]
fn run_sweep(
    path: &Path,
    out: Option<PathBuf>,
    shard: Option<(usize, usize)>,
    restart: bool,
    threads: Option<usize>,
    quiet: bool,
    charts: crate::sweep::charts::ChartOptions,
) -> anyhow::Result<i32> {
    use std::io::IsTerminal;
    let spec = crate::sweep::SweepSpec::load(path)?;
    charts.check(&spec)?;
    let opts = crate::sweep::SweepOptions {
        out_dir: out.unwrap_or_else(|| default_out(path)),
        shard,
        restart,
        progress: !quiet && std::io::stderr().is_terminal(),
        charts,
    };
    let pool = rayon::ThreadPoolBuilder::new()
        .num_threads(threads.unwrap_or(0))
        .build()?;
    let o = pool.install(|| crate::sweep::run_sweep(&spec, &opts))?;
    if !quiet {
        if o.resumed > 0 {
            println!("resumed after {} finished points", o.resumed);
        }
        println!(
            "{}: {} points ({} feasible among those run now) in {:.2} s ({:.0} points/s)",
            spec.name,
            o.points,
            o.feasible,
            o.wall_s,
            (o.points - o.resumed) as f64 / o.wall_s.max(1e-9)
        );
        println!("wrote {}\nwrote {}", o.csv.display(), o.jsonl.display());
        for c in &o.charts {
            println!("wrote {}", c.display());
        }
    }
    Ok(0)
}

fn default_out(scenario: &Path) -> PathBuf {
    let stem = scenario
        .file_stem()
        .map(|s| s.to_string_lossy().into_owned())
        .unwrap_or_else(|| "run".into());
    Path::new("plots").join(stem)
}

/// `trace`: stages to trace (empty: the default ones), or `None` for no trace.
fn run(
    path: &Path,
    out: Option<PathBuf>,
    seed: Option<u64>,
    no_charts: bool,
    trace: Option<Vec<u32>>,
    quiet: bool,
) -> anyhow::Result<i32> {
    let dir = out.unwrap_or_else(|| default_out(path));
    let opts = crate::runner::RunOptions {
        seed,
        trace_stages: trace,
        results_only: no_charts,
    };
    let o = match crate::runner::run_file(path, &dir, &opts) {
        Ok(o) => o,
        Err(crate::runner::RunError::Usage(m)) => {
            eprintln!("error: {m}");
            return Ok(2);
        }
        Err(e) => return Err(e.into()),
    };
    if !quiet {
        print!("{}", report::summary::summary(&o.result));
        println!("simulated in {:.3} s of wall time", o.wall_s);
        println!();
        for p in o.written {
            println!("wrote {}", p.display());
        }
    }
    Ok(0)
}

/// The cluster of `trainsim collective`: defaults, then the scenario, then explicit flags;
/// checked like a scenario's `[cluster.network]`.
fn collective_cluster(a: &CollectiveArgs) -> anyhow::Result<Result<crate::hardware::ClusterSpec, String>> {
    use crate::hardware::presets::{gpu_preset, GPU_PRESETS};
    let mut c = match &a.scenario {
        Some(p) => Scenario::load(p)?.input.cluster,
        None => {
            let gpu = gpu_preset("H100-SXM").expect("preset exists");
            crate::hardware::ClusterSpec {
                gpu,
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
            }
        }
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
        let cal = crate::network::calibration::calibrated(&c.gpu, c.nic_gbit_per_s);
        if a.scale_up_efficiency.is_none() {
            c.scale_up_efficiency = cal.scale_up.unwrap_or(c.scale_up_efficiency);
        }
        if a.scale_out_efficiency.is_none() {
            c.scale_out_efficiency = cal.scale_out;
        }
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

fn collective(a: &CollectiveArgs) -> anyhow::Result<i32> {
    use crate::network::algorithm::Algorithm;
    use crate::network::bench;
    use std::fmt::Write as _;
    let fail = |msg: String| {
        eprintln!("error: {msg}");
        Ok(2)
    };
    if let Some(dir) = &a.validate {
        return collective_validate(dir);
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
        return collective_fit(a, log, algo);
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
    let c = match collective_cluster(a)? {
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
        topology_note(&c)
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
    let dir = a.out.clone().unwrap_or_else(|| Path::new("plots").join("collective"));
    let file = dir.join("collective.csv");
    report::write_atomic(&file, csv.as_bytes())?;
    println!("wrote {}", file.display());
    if !a.no_chart {
        let png = dir.join("busbw.png");
        let data = report::charts::sweep::LineData {
            title: format!("{op} bus bandwidth vs message size"),
            subtitle: title,
            x_label: "message size (bytes, log2)".into(),
            y_label: "bus bandwidth (GB/s)".into(),
            log_x: true,
            series: vec![(
                format!("{op}, {} GPUs, {}", c.num_gpus, algo.name()),
                rows.iter().map(|r| (r.size_bytes, r.busbw_gbyte_per_s)).collect(),
            )],
        };
        report::charts::sweep::draw_lines(&data, &png)?;
        println!("wrote {}", png.display());
    }
    Ok(0)
}

/// The non-default topology of a cluster, for titles ("" when classic).
fn topology_note(c: &crate::hardware::ClusterSpec) -> String {
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

/// `trainsim collective --validate DIR`: published nccl-tests cases against trainsim.
fn collective_validate(dir: &Path) -> anyhow::Result<i32> {
    use crate::network::nccl;
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
fn collective_fit(
    a: &CollectiveArgs,
    log_path: &Path,
    algo: crate::network::algorithm::Algorithm,
) -> anyhow::Result<i32> {
    use crate::network::{bench, fit};
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
    let c = match collective_cluster(&args)? {
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

fn plot(results: &Path, out: Option<PathBuf>) -> anyhow::Result<i32> {
    let r = report::read_results(results)?;
    let dir = out.unwrap_or_else(|| results.parent().map(Path::to_path_buf).unwrap_or_default());
    for p in report::charts::draw_all(&r, &dir)? {
        println!("wrote {}", p.display());
    }
    let md = dir.join("report.md");
    report::write_atomic(&md, report::markdown::markdown(&r).as_bytes())?;
    println!("wrote {}", md.display());
    Ok(0)
}
