//! The command line. The only module that prints. Each subcommand is a short pipeline:
//! load, simulate, report.

pub mod validate;

use crate::report;
use crate::scenario::Scenario;
use crate::simulation;
use anyhow::Context;
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
    },
    /// Find the fastest parallel plans for a scenario's model, cluster and batch.
    #[command(
        after_help = "Example:\n  trainsim search scenarios/peers/p4-gpt3-175b-a100-1024.toml --top 5\n\nEnumerates TP, PP (with Megatron's uneven split), virtual stages, micro-batch size,\nrecomputation and ZeRO stage; drops impossible plans and those that do not fit; simulates\nin order of a lower bound on step time until no remaining plan can beat the N-th best.\nThe scenario's own plan only supplies defaults (overlap flags, bucket size)."
    )]
    Search {
        /// Scenario file whose model, cluster and training are kept.
        scenario: PathBuf,
        /// How many best plans to print (and make certain).
        #[arg(long, default_value_t = 5)]
        top: usize,
        /// ZeRO stages to consider, comma-separated.
        #[arg(long, value_delimiter = ',', default_value = "1")]
        zero: Vec<u32>,
        /// Output folder for search.csv [default: plots/<scenario stem>-search].
        #[arg(long, short)]
        out: Option<PathBuf>,
    },
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
Invalid or out-of-memory points are rows with feasible=false and the reason.";

const COLLECTIVE_HELP: &str = "Examples:
  trainsim collective --gpu H100-SXM --gpus 16 --gpus-per-node 8 --nic-gbit 400 \\
      --op all_reduce --min-bytes 1K --max-bytes 8G
  trainsim collective --scenario scenarios/llama3-8b-h100-64.toml --op all_gather
      the scenario's cluster; flags given explicitly override it

Runs one collective over every GPU of the cluster for each size from --min-bytes doubling to
--max-bytes, through the flow network and ring decomposition the training simulation uses
(NCCL ring; see src/network/collective.rs), and prints size, count (4-byte elements), time,
algbw = size / time and busbw = algbw * 2(n-1)/n (all-reduce) or (n-1)/n (all-gather,
reduce-scatter), as nccl-tests does. Writes busbw.png (bus bandwidth vs size) and
collective.csv to --out. Exit status 2 on invalid input.";

/// Arguments of `trainsim collective`.
#[derive(Debug, clap::Args)]
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
    /// all_reduce, all_gather or reduce_scatter.
    #[arg(long, default_value = "all_reduce")]
    pub op: String,
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
        } => run_sweep(&sweep, out, shard, restart, threads, quiet),
        Command::Search {
            scenario,
            top,
            zero,
            out,
        } => search(&scenario, top, zero, out),
        Command::Collective(a) => collective(&a),
        Command::Merge { out, inputs } => {
            let n = crate::sweep::merge_csv(&inputs, &out)?;
            println!("wrote {} ({n} points)", out.display());
            Ok(0)
        }
    }
}

fn search(path: &Path, top: usize, zero: Vec<u32>, out: Option<PathBuf>) -> anyhow::Result<i32> {
    use crate::sweep::search::{search, SearchOptions, Status};
    use std::fmt::Write as _;
    if let Some(z) = zero.iter().find(|z| **z > 3) {
        anyhow::bail!("--zero {z}: ZeRO stages are 0, 1, 2 or 3");
    }
    let sc = Scenario::load(path)?;
    let started = std::time::Instant::now();
    let o = search(
        &sc.input,
        &SearchOptions {
            top: top.max(1),
            zero_stages: zero,
            iterations: 2,
        },
    );
    let wall_s = started.elapsed().as_secs_f64();
    println!(
        "{} candidate plans, {} valid and fitting, {} simulated, in {:.2} s ({:.0} plans/s)\n",
        o.enumerated,
        o.feasible,
        o.simulated,
        wall_s,
        o.enumerated as f64 / wall_s.max(1e-9)
    );
    println!(
        "{:<4} {:<64} {:>10} {:>7} {:>8} {:>9} {:>9} {:>10} {:>9}",
        "rank", "plan", "step [s]", "MFU %", "bubble %", "TP exp [s]", "DP exp [s]", "recomp [s]", "mem [GiB]"
    );
    for (i, c) in o.candidates.iter().take(top).enumerate() {
        if let Status::Simulated(r) = &c.status {
            let b = &r.breakdown;
            println!(
                "{:<4} {:<64} {:>10.3} {:>7.1} {:>8.1} {:>9.3} {:>9.3} {:>10.3} {:>9.1}",
                i + 1,
                r.plan,
                r.step_time_s,
                100.0 * r.mfu_fraction,
                100.0 * r.bubble_fraction,
                b.exposed_tp_comm_s,
                b.exposed_dp_grad_comm_s + b.exposed_dp_param_comm_s,
                b.recompute_s,
                r.memory.total_gib
            );
        }
    }
    let mut csv = String::from("rank,tp,pp,dp,virtual_stages,micro_batch_size,recompute,zero_stage,split_embedding_and_loss,status,lower_bound_s,step_time_s,mfu_pct,bubble_pct,memory_gib,reason\n");
    for (i, c) in o.candidates.iter().enumerate() {
        let p = &c.plan;
        let (status, step, mfu, bubble, mem, reason) = match &c.status {
            Status::Simulated(r) => (
                "simulated",
                format!("{:.6}", r.step_time_s),
                format!("{:.3}", 100.0 * r.mfu_fraction),
                format!("{:.3}", 100.0 * r.bubble_fraction),
                format!("{:.3}", r.memory.total_gib),
                String::new(),
            ),
            Status::Pruned(_) => (
                "pruned_by_bound",
                String::new(),
                String::new(),
                String::new(),
                String::new(),
                String::new(),
            ),
            Status::OutOfMemory(g) => (
                "out_of_memory",
                String::new(),
                String::new(),
                String::new(),
                format!("{g:.3}"),
                String::new(),
            ),
            Status::Invalid(e) => (
                "invalid",
                String::new(),
                String::new(),
                String::new(),
                String::new(),
                format!("\"{}\"", e.replace('"', "'")),
            ),
        };
        let _ = writeln!(
            csv,
            "{},{},{},{},{},{},{},{},{},{status},{:.6},{step},{mfu},{bubble},{mem},{reason}",
            i + 1,
            p.tp,
            p.pp,
            p.dp,
            p.virtual_stages,
            p.micro_batch_size,
            crate::parallel::Recompute::NAMES[p.recompute as usize],
            p.zero_stage,
            p.pipeline_split_embedding_and_loss,
            c.bound_s
        );
    }
    let dir = out.unwrap_or_else(|| {
        let stem = path
            .file_stem()
            .map(|s| s.to_string_lossy().into_owned())
            .unwrap_or_else(|| "search".into());
        Path::new("plots").join(format!("{stem}-search"))
    });
    let file = dir.join("search.csv");
    report::write_atomic(&file, csv.as_bytes())?;
    println!("\nwrote {}", file.display());
    Ok(0)
}

fn run_sweep(
    path: &Path,
    out: Option<PathBuf>,
    shard: Option<(usize, usize)>,
    restart: bool,
    threads: Option<usize>,
    quiet: bool,
) -> anyhow::Result<i32> {
    use std::io::IsTerminal;
    let spec = crate::sweep::SweepSpec::load(path)?;
    let opts = crate::sweep::SweepOptions {
        out_dir: out.unwrap_or_else(|| default_out(path)),
        shard,
        restart,
        progress: !quiet && std::io::stderr().is_terminal(),
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
    let mut sc = Scenario::load(path)?;
    if let Some(s) = seed {
        sc.input.seed = s;
    }
    let pp = sc.input.plan.pp;
    let request = trace.map(|stages| simulation::trace::TraceRequest {
        stages: if stages.is_empty() {
            simulation::trace::default_trace_stages(pp)
        } else {
            stages
        },
        iterations: None,
    });
    if let Some(bad) = request.iter().flat_map(|r| &r.stages).find(|&&s| s >= pp) {
        eprintln!(
            "error: --trace-stages: stage {bad} does not exist: {} has pp = {pp}, stages 0 to {}",
            path.display(),
            pp - 1
        );
        return Ok(2);
    }
    let started = std::time::Instant::now();
    let (result, traced) = simulation::run::run_traced(&sc.input, request.as_ref())
        .with_context(|| format!("simulating {}", path.display()))?;
    let wall_s = started.elapsed().as_secs_f64();
    let dir = out.unwrap_or_else(|| default_out(path));
    let mut written = if no_charts {
        let p = dir.join("results.json");
        report::write_atomic(&p, &report::results_json(&result))?;
        vec![p]
    } else {
        report::write_all(&result, &dir)?
    };
    if let Some(t) = &traced {
        let p = dir.join("trace.json");
        report::trace::write_trace(&result, t, &p)?;
        written.push(p);
    }
    if !quiet {
        print!("{}", report::summary::summary(&result));
        println!("simulated in {wall_s:.3} s of wall time");
        println!();
        for p in written {
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
    Ok(Ok(c))
}

fn collective(a: &CollectiveArgs) -> anyhow::Result<i32> {
    use crate::network::bench;
    use std::fmt::Write as _;
    let fail = |msg: String| {
        eprintln!("error: {msg}");
        Ok(2)
    };
    let kind = match bench::parse_op(&a.op) {
        Ok(k) => k,
        Err(e) => return fail(format!("--op: {e}")),
    };
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
    let rows = bench::sweep_sizes(kind, &c, min, max, a.chunks);
    let wall_s = started.elapsed().as_secs_f64();
    let op = match kind {
        crate::network::collective::CollectiveKind::AllReduce => "all_reduce",
        crate::network::collective::CollectiveKind::AllGather => "all_gather",
        crate::network::collective::CollectiveKind::ReduceScatter => "reduce_scatter",
    };
    let title = format!(
        "{op} over {} x {} ({} per node, {} NICs x {} Gbit/s, {}:1 spine)",
        c.num_gpus, c.gpu.name, c.gpus_per_node, c.nics_per_node, c.nic_gbit_per_s, c.oversubscription
    );
    println!("# {title}; NCCL ring; {} piece(s) per message", a.chunks);
    println!(
        "{:>14} {:>14} {:>14} {:>12} {:>12}",
        "size (B)", "count", "time (us)", "algbw (GB/s)", "busbw (GB/s)"
    );
    let mut csv = String::from("size_bytes,count,time_us,algbw_gbyte_per_s,busbw_gbyte_per_s\n");
    for r in &rows {
        println!(
            "{:>14} {:>14} {:>14.2} {:>12.2} {:>12.2}",
            r.size_bytes,
            r.count,
            r.time_s * 1e6,
            r.algbw_gbyte_per_s,
            r.busbw_gbyte_per_s
        );
        let _ = writeln!(
            csv,
            "{},{},{:.4},{:.4},{:.4}",
            r.size_bytes,
            r.count,
            r.time_s * 1e6,
            r.algbw_gbyte_per_s,
            r.busbw_gbyte_per_s
        );
    }
    println!("simulated {} sizes in {:.4} s of wall time", rows.len(), wall_s);
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
                format!("{op}, {} GPUs", c.num_gpus),
                rows.iter().map(|r| (r.size_bytes, r.busbw_gbyte_per_s)).collect(),
            )],
        };
        report::charts::sweep::draw_lines(&data, &png)?;
        println!("wrote {}", png.display());
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
