//! Plan-search benchmark (PEERS.md P6): candidate plans evaluated per second.
//!
//! ```sh
//! cargo run --release --example bench_search                 # P4 and P6 searches, ZeRO 0-3
//! cargo run --release --example bench_search -- --verify     # also simulate every feasible
//!                                                             # plan and check the top 5 and bounds
//! cargo run --release --example bench_search -- my.toml -j 2
//! # the MoE search, EP and ETP (about 10 s on 2 cores)
//! cargo run --release --example bench_search -- scenarios/mixtral-8x7b-h100-64.toml --zero 1 --tight-only
//! ```
//!
//! `--zero 0,1,2,3` sets the ZeRO stages searched (default all four); `--tight-only` runs
//! only the search with the contention-free bound, on the asked threads.
//!
//! For each scenario: the search with the cheap bound alone (the previous method) and with
//! the contention-free bound, each on the asked threads (default: all cores) and on one
//! thread; prints candidates, feasible, bounded, simulated, wall time, candidates per
//! second, and the best plan. The searches' tables must be byte-identical across thread
//! counts (checked). `--verify` runs the exhaustive search (every feasible plan simulated)
//! and checks that the pruned search's top 5 is its top 5 and that no bound exceeds a
//! simulated step time.

use std::path::PathBuf;
use std::time::Instant;
use trainsim::scenario::Scenario;
use trainsim::sweep::search::{search, SearchOptions, SearchOutcome, Status};
use trainsim::sweep::search_table::table_csv;

fn best(o: &SearchOutcome) -> String {
    match o.candidates.first().map(|c| &c.status) {
        Some(Status::Simulated(r)) => format!("{}: {:.3} s", r.plan, r.step_time_s),
        _ => "none".into(),
    }
}

fn timed(base: &trainsim::simulation::RunInput, opts: &SearchOptions, threads: usize) -> (SearchOutcome, f64) {
    let pool = rayon::ThreadPoolBuilder::new()
        .num_threads(threads)
        .build()
        .expect("thread pool");
    let t = Instant::now();
    let o = pool.install(|| search(base, opts)).expect("search runs");
    (o, t.elapsed().as_secs_f64())
}

fn main() {
    let mut files: Vec<PathBuf> = Vec::new();
    let mut threads = 0usize;
    let mut verify = false;
    let mut tight_only = false;
    let mut zero_stages: Vec<u32> = vec![0, 1, 2, 3];
    let mut args = std::env::args().skip(1);
    while let Some(a) = args.next() {
        match a.as_str() {
            "--verify" => verify = true,
            "--tight-only" => tight_only = true,
            "--zero" => {
                zero_stages = args
                    .next()
                    .map(|l| l.split(',').filter_map(|z| z.trim().parse().ok()).collect())
                    .unwrap_or_default();
                assert!(!zero_stages.is_empty(), "--zero takes a list such as 0,1,2,3");
            }
            "-j" => threads = args.next().and_then(|n| n.parse().ok()).unwrap_or(0),
            _ => files.push(a.into()),
        }
    }
    if files.is_empty() {
        files = vec![
            "scenarios/peers/p4-gpt3-175b-a100-1024.toml".into(),
            "scenarios/peers/p6-mt-nlg-530b-a100-5128.toml".into(),
        ];
    }
    let threads = if threads == 0 {
        std::thread::available_parallelism().map(|n| n.get()).unwrap_or(1)
    } else {
        threads
    };
    println!(
        "{:<28} {:<22} {:>4} {:>10} {:>8} {:>8} {:>9} {:>8} {:>12}  best plan",
        "scenario", "bound", "thr", "candidates", "feasible", "bounded", "simulated", "wall s", "candidates/s"
    );
    for f in &files {
        let sc = Scenario::load(f).unwrap_or_else(|e| panic!("{}: {e}", f.display()));
        let name = f
            .file_stem()
            .map(|s| s.to_string_lossy().into_owned())
            .unwrap_or_default();
        let name = name.chars().take(28).collect::<String>();
        for tight in [false, true].into_iter().filter(|&t| t || !tight_only) {
            let opts = SearchOptions {
                top: 5,
                zero_stages: zero_stages.clone(),
                contention_free_bound: tight,
                ..SearchOptions::default()
            };
            let mut tables = Vec::new();
            for t in [threads, 1] {
                let (o, wall_s) = timed(&sc.input, &opts, t);
                println!(
                    "{:<28} {:<22} {:>4} {:>10} {:>8} {:>8} {:>9} {:>8.2} {:>12.0}  {}",
                    name,
                    if tight {
                        "cheap + contention-free"
                    } else {
                        "cheap bound only"
                    },
                    t,
                    o.enumerated,
                    o.feasible,
                    o.bounded,
                    o.simulated,
                    wall_s,
                    o.enumerated as f64 / wall_s,
                    best(&o)
                );
                tables.push(table_csv(&o));
                if t == 1 || tight_only {
                    break;
                }
            }
            assert!(
                tables.windows(2).all(|w| w[0] == w[1]),
                "search table differs between thread counts"
            );
        }
        if verify {
            let opts = SearchOptions {
                top: usize::MAX,
                zero_stages: zero_stages.clone(),
                ..SearchOptions::default()
            };
            let (all, wall_s) = timed(&sc.input, &opts, threads);
            let (pruned, _) = timed(&sc.input, &SearchOptions { top: 5, ..opts.clone() }, threads);
            let top5 = |o: &SearchOutcome| -> Vec<String> {
                o.candidates
                    .iter()
                    .take(5)
                    .filter_map(|c| match &c.status {
                        Status::Simulated(r) => Some(format!("{} {:.6}", r.plan, r.step_time_s)),
                        _ => None,
                    })
                    .collect()
            };
            assert_eq!(top5(&all), top5(&pruned), "pruned search missed a top-5 plan");
            let mut worst = 0.0f64;
            for c in &all.candidates {
                if let Status::Simulated(r) = &c.status {
                    let cf = c.contention_free_s.unwrap_or(0.0);
                    worst = worst.max(c.bound_s / r.step_time_s).max(cf / r.step_time_s);
                }
            }
            assert!(worst <= 1.0 + 1e-6, "a bound exceeds a simulated step time ({worst})");
            println!(
                "{name:<28} verified: exhaustive search simulated {} plans in {wall_s:.1} s; same top 5; \
                 largest bound / simulated = {worst:.4}",
                all.simulated
            );
        }
    }
}
