//! The command line. The only module that prints. Each subcommand is a short pipeline:
//! load, simulate, report.

pub mod collective;
pub mod diff;
pub mod plot;
pub mod schema;
#[cfg(feature = "serve")]
pub mod serve;
pub mod validate;

pub use collective::CollectiveArgs;
use collective::COLLECTIVE_HELP;

use crate::report;
use crate::scenario::Scenario;
use crate::workload::CommKind;
use clap::{Parser, Subcommand};
use std::ffi::OsString;
use std::path::{Path, PathBuf};

const ABOUT: &str = "Discrete-event simulator of distributed LLM training: step time, throughput, MFU, memory and where the time goes, for a model, a cluster and a parallelism plan.";

const EXAMPLES: &str = "Examples:
  trainsim run scenarios/gpt3-175b-a100-1024.toml
      simulate the scenario; print the summary; write results.json, timeline.json,
      charts, report.md and report.html to out/gpt3-175b-a100-1024/
  trainsim run my.toml --out results/my --seed 7 --set parallel.tp=4 --set parallel.recompute=full
  trainsim run scenarios/gpt3-175b-a100-1024.toml --trace --trace-stages 0,3,7
      also write trace.json (every operation of stages 0, 3 and 7 in the last
      iteration); open it in https://ui.perfetto.dev or chrome://tracing
  trainsim validate scenarios/validation
      predicted vs measured step time for every scenario with a [measured] section
  trainsim plot out/gpt3-175b-a100-1024/results.json
      redraw the charts from saved results without simulating again
  trainsim plot out/gpt3-175b-tp-pp/sweep.csv --metric mfu_pct
      redraw a sweep's charts with another metric
  trainsim diff out/a/results.json out/b/results.json
      what changed between two runs and by how much
  trainsim serve
      the local web explorer: http://127.0.0.1:8765/
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
        after_help = "Examples:\n  trainsim run scenarios/gpt3-175b-a100-1024.toml --out out/gpt3\n  trainsim run scenarios/gpt3-175b-a100-1024.toml --set parallel.tp=4 --set parallel.pp=16\n  trainsim run scenarios/gpt3-175b-a100-1024.toml --trace --trace-stages 0,3,7\n      also write trace.json: a Chrome trace (one process per stage, one thread per stream)\n      of the last iteration, for https://ui.perfetto.dev or chrome://tracing\n\nExit status: 0 on success (also when the plan does not fit in memory: the summary says so),\n2 when the scenario is invalid, the plan impossible, or the run refused as too large\n(simulation.max_operations) or beyond the clock, 1 on other failures."
    )]
    Run {
        /// Scenario file (TOML; see docs/scenario.md).
        scenario: PathBuf,
        /// Output folder for results.json and charts [default: out/<scenario file stem>].
        #[arg(long, short)]
        out: Option<PathBuf>,
        /// Override a scenario field by its dotted path, e.g. --set parallel.tp=4 (repeatable;
        /// an empty value removes the field so its default applies).
        #[arg(long = "set", value_name = "PATH=VALUE", value_parser = crate::scenario::parse_override)]
        set: Vec<crate::scenario::Override>,
        /// Override the scenario's seed (0 to 2^64-1).
        #[arg(long, allow_negative_numbers = true)]
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
        /// Folder searched recursively for *.toml scenarios, or one scenario file.
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
    /// Redraw the charts of a saved results.json, or of a sweep.csv with a chosen metric.
    #[command(after_help = plot::PLOT_HELP)]
    Plot(plot::PlotArgs),
    /// Run a parameter sweep: a grid over scenario fields, in parallel, one row per point.
    #[command(after_help = SWEEP_HELP)]
    Sweep {
        /// Sweep file (TOML; see docs/sweep.md).
        sweep: PathBuf,
        /// Output folder for sweep.csv and sweep.jsonl [default: out/<sweep file stem>].
        #[arg(long, short)]
        out: Option<PathBuf>,
        /// Override a field of the base scenario, e.g. --set training.global_batch_size=2048
        /// (repeatable; a field an axis varies is refused).
        #[arg(long = "set", value_name = "PATH=VALUE", value_parser = crate::scenario::parse_override)]
        set: Vec<crate::scenario::Override>,
        /// Run only the slice i of n (points with index % n == i), e.g. --shard 0/4.
        #[arg(long, value_parser = parse_shard)]
        shard: Option<(usize, usize)>,
        /// Ignore the partial results of an interrupted run and start over.
        #[arg(long)]
        restart: bool,
        /// Worker threads, 1 to 1024 [default: all cores]; results are identical for any count.
        #[arg(long, short = 'j', value_parser = parse_threads)]
        threads: Option<usize>,
        /// Largest grid to run, in points before filters (a guard against a typo that
        /// would expand to billions of points).
        #[arg(long, default_value_t = crate::sweep::DEFAULT_MAX_POINTS)]
        max_points: usize,
        /// Print nothing but errors.
        #[arg(long, short)]
        quiet: bool,
        /// Charts to draw, comma-separated: scaling, heatmap, pareto [default: all that apply].
        #[arg(long, value_enum, value_delimiter = ',')]
        chart: Vec<crate::sweep::charts::ChartKind>,
        /// x metric of the Pareto chart: a numeric column of sweep.csv or an axis field
        /// [default: cost_usd with a [target], else gpu_hours_per_step; memory_gib when
        /// that is proportional to y, as at one GPU count].
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
        after_help = "Example:\n  trainsim merge --out plots/tp-pp/sweep.csv plots/tp-pp/sweep.shard-*-of-4.csv\n\nEach shard's sweep.shard-i-of-n.meta.json (written by `trainsim sweep --shard`) must be\nnext to it. Exit status 2, the file named, for shards of different sweeps or shard counts,\na shard given twice or missing, a point missing or twice, or a row cut short."
    )]
    Merge {
        /// Merged CSV to write.
        #[arg(long, short)]
        out: PathBuf,
        /// Shard CSVs written by `trainsim sweep --shard`.
        #[arg(required = true)]
        inputs: Vec<PathBuf>,
    },
    /// Compare two results.json: what changed and by how much, per breakdown category.
    #[command(after_help = diff::HELP)]
    Diff {
        /// The baseline results.json.
        a: PathBuf,
        /// The results.json compared with it.
        b: PathBuf,
    },
    /// Print the JSON Schema of the scenario format (for editor completion and checks).
    #[command(after_help = schema::SCHEMA_HELP)]
    Schema {
        /// Write it to this file instead of standard output.
        #[arg(long, short)]
        out: Option<PathBuf>,
    },
    /// Print a shell completion script.
    #[command(after_help = schema::COMPLETIONS_HELP)]
    Completions {
        /// bash, zsh, fish, elvish or powershell.
        shell: clap_complete::Shell,
    },
    /// Serve the local web explorer on 127.0.0.1 (change a plan, see the simulation).
    #[cfg(feature = "serve")]
    #[command(after_help = serve::HELP)]
    Serve(serve::ServeArgs),
}

const SWEEP_HELP: &str = "Example:
  trainsim sweep scenarios/sweeps/gpt3-175b-tp-pp.toml
      every (TP, PP) pair for GPT-3 175B on 1,024 A100; writes out/gpt3-175b-tp-pp/sweep.csv
  trainsim sweep big.toml --shard 3/16 --out /scratch/big
      one slice of a sweep too large for one machine (e.g. a Slurm array task); join the
      slices with `trainsim merge`

Rows stream to sweep.csv.partial and sweep.jsonl.partial in point order and are renamed when
the sweep ends; rerunning an interrupted sweep resumes after the last complete row.
Invalid or out-of-memory points are rows with feasible=false and the reason.

Charts (unsharded runs): scaling.png (scaling sweeps: an axis of cluster.num_gpus or
parallel.dp that doubles; throughput with ideal scaling, log axes), heatmap.png (two axes;
the best cell outlined, out-of-memory cells with their GiB) and pareto.png, two metrics
with the non-dominated front, e.g.
  trainsim sweep my.toml --chart pareto --x cost_usd --y time_to_target_days
Redraw them with another metric: trainsim plot out/my/sweep.csv --metric mfu_pct";

const SEARCH_HELP: &str = "Examples:
  trainsim search scenarios/peers/p4-gpt3-175b-a100-1024.toml --zero 0,1,2,3 --top 5
  trainsim search my.toml --objective cost      (needs a [target] section)

Enumerates TP, PP (with Megatron's uneven split), context parallelism (--cp; by default
1 to 32 for sequences of 16K tokens or more), virtual stages, micro-batch size,
recomputation and ZeRO stage; drops impossible plans and those that do not fit; orders the
rest by a lower bound on step time, tightens it for those that might win (the operation graph
timed without network contention) and simulates only those that can still beat the N-th best.
The simulation decides the ranking. The scenario's own plan only supplies defaults (overlap
flags, bucket size). Writes search.csv (every candidate) and pareto.png to --out.
Exit status 2 on invalid input, 1 when no candidate plan is valid and fits (the most
common reasons are printed; search.csv lists every candidate).";

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
    /// Context-parallel degrees to consider, comma-separated [default: 1, or
    /// 1,2,4,8,16,32 for sequences of 16K tokens or more or a scenario with cp > 1].
    #[arg(long, value_delimiter = ',')]
    pub cp: Vec<u32>,
    /// What to minimise: step time (throughput), or, with a [target] section, wall-clock
    /// to the target, its cost or its energy.
    #[arg(long, value_enum, default_value = "throughput")]
    pub objective: crate::sweep::search::Objective,
    /// Worker threads, 1 to 1024 [default: all cores]; results are identical for any count.
    #[arg(long, short = 'j', value_parser = parse_threads)]
    pub threads: Option<usize>,
    /// Output folder for search.csv and pareto.png [default: out/<scenario stem>-search].
    #[arg(long, short)]
    pub out: Option<PathBuf>,
    /// Override a scenario field, e.g. --set training.global_batch_size=2048 (repeatable).
    #[arg(long = "set", value_name = "PATH=VALUE", value_parser = crate::scenario::parse_override)]
    pub set: Vec<crate::scenario::Override>,
    /// Write the best plan as a runnable scenario file (the scenario with its [parallel]
    /// section replaced).
    #[arg(long, value_name = "FILE")]
    pub emit_best: Option<PathBuf>,
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

/// Most worker threads `-j` accepts.
const MAX_THREADS: usize = 1024;

fn parse_threads(s: &str) -> Result<usize, String> {
    match s.trim().parse::<usize>() {
        Ok(n) if (1..=MAX_THREADS).contains(&n) => Ok(n),
        _ => Err(format!(
            "-j/--threads {s}: give a whole number of worker threads from 1 to {MAX_THREADS} (omit -j for all cores)"
        )),
    }
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
                    || c.downcast_ref::<crate::runner::RunError>()
                        .is_some_and(|e| e.is_usage())
                    || matches!(
                        c.downcast_ref::<crate::report::ReportError>(),
                        Some(crate::report::ReportError::Read { .. })
                    )
            });
            eprintln!("error: {}", error_text(&e));
            if usage {
                2
            } else {
                1
            }
        }
    }
}

/// The error and its causes, each said once (a cause whose text the message already holds,
/// such as the OS error inside "cannot read ...: No such file", is not repeated).
pub fn error_text(e: &anyhow::Error) -> String {
    let mut msg = e.to_string();
    for c in e.chain().skip(1) {
        let t = c.to_string();
        if !msg.contains(&t) {
            msg.push_str(": ");
            msg.push_str(&t);
        }
    }
    msg
}

fn dispatch(cli: Cli) -> anyhow::Result<i32> {
    match cli.command {
        Command::Run {
            scenario,
            out,
            set,
            seed,
            no_charts,
            trace,
            trace_stages,
            quiet,
        } => {
            let trace = (trace || trace_stages.is_some()).then(|| trace_stages.unwrap_or_default());
            run(&scenario, &set, out, seed, no_charts, trace, quiet)
        }
        Command::Validate {
            dir,
            check,
            max_mape_pct,
            max_error_pct,
            csv,
        } => validate::validate(&dir, check, max_mape_pct, max_error_pct, csv.as_deref()),
        Command::Plot(a) => plot::plot(a),
        Command::Sweep {
            sweep,
            out,
            set,
            shard,
            restart,
            threads,
            max_points,
            quiet,
            chart,
            x,
            y,
        } => {
            let charts = crate::sweep::charts::ChartOptions {
                kinds: chart,
                x,
                y,
                metric: None,
            };
            run_sweep(&sweep, &set, out, shard, restart, threads, max_points, quiet, charts)
        }
        Command::Search(a) => {
            let scenario = a.scenario.clone();
            search(&scenario, *a)
        }
        Command::Collective(a) => collective::run(&a),
        Command::Merge { out, inputs } => {
            let n = crate::sweep::merge_csv(&inputs, &out)?;
            println!("wrote {} ({n} points)", out.display());
            Ok(0)
        }
        Command::Diff { a, b } => diff::diff(&a, &b),
        Command::Schema { out } => schema::schema(out.as_deref()),
        Command::Completions { shell } => schema::completions(shell),
        #[cfg(feature = "serve")]
        Command::Serve(a) => serve::serve(&a),
    }
}

fn search(path: &Path, a: SearchArgs) -> anyhow::Result<i32> {
    use crate::sweep::search::{search, SearchOptions, Status};
    use crate::sweep::search_table::{table_csv, why};
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
    if a.cp.contains(&0) {
        return Err(usage("--cp 0: context-parallel degrees are at least 1".into()).into());
    }
    let sc = Scenario::load_with(path, &a.set)?;
    let pool = rayon::ThreadPoolBuilder::new()
        .num_threads(a.threads.unwrap_or(0))
        .build()?;
    let started = std::time::Instant::now();
    let opts = SearchOptions {
        top: a.top,
        zero_stages: a.zero,
        objective: a.objective,
        cps: a.cp,
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
    let dir = a.out.unwrap_or_else(|| {
        let stem = path
            .file_stem()
            .map(|s| s.to_string_lossy().into_owned())
            .unwrap_or_else(|| "search".into());
        Path::new(DEFAULT_OUT).join(format!("{stem}-search"))
    });
    let file = dir.join("search.csv");
    if !o.candidates.iter().any(|c| matches!(c.status, Status::Simulated(_))) {
        report::write_atomic(&file, table_csv(&o).as_bytes())?;
        eprintln!(
            "error: {}: {}",
            path.display(),
            crate::sweep::search_table::none_fit(&o)
        );
        eprintln!("every candidate and its reason: {}", file.display());
        return Ok(1);
    }
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
    report::write_atomic(&file, table_csv(&o).as_bytes())?;
    println!("\nwrote {}", file.display());
    if let Some(chart) = crate::sweep::charts::draw_search_pareto(&o, &sc.input.name, &dir)? {
        println!("wrote {}", chart.display());
    }
    if let Some(best_file) = &a.emit_best {
        let best = o.candidates.iter().find(|c| matches!(c.status, Status::Simulated(_)));
        match best {
            Some(best) => {
                let text = schema::best_scenario(&sc, &best.plan, path, best_file)?;
                report::write_atomic(best_file, text.as_bytes())?;
                println!(
                    "wrote {} (the best plan as a scenario: trainsim run {})",
                    best_file.display(),
                    best_file.display()
                );
            }
            None => {
                eprintln!("error: --emit-best: no plan was simulated, so there is no best plan to write");
                return Ok(2);
            }
        }
    }
    Ok(0)
}

#[allow(clippy::too_many_arguments)]
fn run_sweep(
    path: &Path,
    set: &[crate::scenario::Override],
    out: Option<PathBuf>,
    shard: Option<(usize, usize)>,
    restart: bool,
    threads: Option<usize>,
    max_points: usize,
    quiet: bool,
    charts: crate::sweep::charts::ChartOptions,
) -> anyhow::Result<i32> {
    use std::io::IsTerminal;
    let mut spec = crate::sweep::SweepSpec::load(path)?;
    spec.apply_overrides(set)?;
    charts.check(&spec)?;
    let opts = crate::sweep::SweepOptions {
        out_dir: out.unwrap_or_else(|| default_out(path)),
        shard,
        restart,
        progress: !quiet && std::io::stderr().is_terminal(),
        charts,
        max_points,
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

/// Folder under which runs, sweeps and searches write by default (`out/<file stem>`),
/// apart from the committed example charts in plots/.
pub const DEFAULT_OUT: &str = "out";

fn default_out(scenario: &Path) -> PathBuf {
    let stem = scenario
        .file_stem()
        .map(|s| s.to_string_lossy().into_owned())
        .unwrap_or_else(|| "run".into());
    Path::new(DEFAULT_OUT).join(stem)
}

/// `trace`: stages to trace (empty: the default ones), or `None` for no trace.
fn run(
    path: &Path,
    set: &[crate::scenario::Override],
    out: Option<PathBuf>,
    seed: Option<u64>,
    no_charts: bool,
    trace: Option<Vec<u32>>,
    quiet: bool,
) -> anyhow::Result<i32> {
    let dir = out.unwrap_or_else(|| default_out(path));
    let opts = crate::runner::RunOptions {
        seed,
        overrides: set.to_vec(),
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
