use crate::repo;
use std::path::{Path, PathBuf};
use trainsim::sweep::charts::{pareto_data, ChartOptions};
use trainsim::sweep::pareto::{front, Better};
use trainsim::sweep::{merge_csv, run_sweep, SweepOptions, SweepSpec};
use trainsim::workload::CommKind;

fn sweep_file(dir: &Path) -> PathBuf {
    std::fs::create_dir_all(dir).unwrap();
    let base = repo("scenarios/llama3-8b-h100-64.toml");
    let text = format!(
        r#"name = "t"
base = "{}"
unset = ["parallel.dp"]
filters = ["tp * pp <= 8"]
[[axis]]
field = "parallel.tp"
values = [1, 2, 4, 8]
[[axis]]
field = "parallel.pp"
values = [1, 2, 4]
[[axis]]
field = "training.global_batch_size"
range = {{ start = 64, stop = 128, step = 64 }}
"#,
        base.display()
    );
    let p = dir.join("sweep.toml");
    std::fs::write(&p, text).unwrap();
    p
}

fn tmp(name: &str) -> PathBuf {
    std::env::temp_dir().join(format!("trainsim-sweep-{name}-{}", std::process::id()))
}

fn run(spec: &SweepSpec, out: &Path, shard: Option<(usize, usize)>, threads: usize) -> (String, String) {
    let opts = SweepOptions {
        out_dir: out.to_path_buf(),
        shard,
        restart: false,
        progress: false,
        charts: Default::default(),
        max_points: trainsim::sweep::DEFAULT_MAX_POINTS,
    };
    let pool = rayon::ThreadPoolBuilder::new().num_threads(threads).build().unwrap();
    let o = pool.install(|| run_sweep(spec, &opts)).unwrap();
    (
        std::fs::read_to_string(o.csv).unwrap(),
        std::fs::read_to_string(o.jsonl).unwrap(),
    )
}

/// Points, filters and decimal ranges expand as written; rows keep grid order.
#[test]
fn grid_expands_in_order_with_filters() {
    let spec = SweepSpec::load(&sweep_file(&tmp("grid"))).unwrap();
    let pts = spec.points().unwrap();
    // 4 x 3 x 2 = 24 combinations, minus tp*pp > 8: (4,4), (8,2), (8,4) x 2 batches
    assert_eq!(pts.len(), 24 - 6);
    assert_eq!(pts[0].values[0], toml::Value::Integer(1));
    assert_eq!(pts[1].values[2], toml::Value::Integer(128));
    assert!(pts.windows(2).all(|w| w[0].index + 1 == w[1].index));
}

/// Same sweep on 1 and 4 threads: byte-identical CSV and JSON Lines.
#[test]
fn sweep_output_is_identical_on_any_thread_count() {
    let d = tmp("threads");
    let spec = SweepSpec::load(&sweep_file(&d)).unwrap();
    let one = run(&spec, &d.join("one"), None, 1);
    let four = run(&spec, &d.join("four"), None, 4);
    assert_eq!(one, four);
    assert!(
        one.0.lines().count() == 19
            && one
                .0
                .starts_with("point,parallel.tp,parallel.pp,training.global_batch_size,feasible")
    );
}

/// An interrupted sweep (partial files, torn last line) resumes to the same files as an
/// uninterrupted run.
#[test]
fn resumed_sweep_equals_an_uninterrupted_one() {
    let d = tmp("resume");
    let spec = SweepSpec::load(&sweep_file(&d)).unwrap();
    let full = run(&spec, &d.join("full"), None, 2);
    let out = d.join("resumed");
    std::fs::create_dir_all(&out).unwrap();
    let csv_lines: Vec<&str> = full.0.lines().collect();
    let json_lines: Vec<&str> = full.1.lines().collect();
    // 7 complete rows, then half a row, as a killed process would leave
    let torn_csv = format!("{}\n{}", csv_lines[..8].join("\n"), &csv_lines[8][..10]);
    let torn_json = format!("{}\n{}", json_lines[..7].join("\n"), &json_lines[7][..10]);
    std::fs::write(out.join("sweep.csv.partial"), torn_csv).unwrap();
    std::fs::write(out.join("sweep.jsonl.partial"), torn_json).unwrap();
    // the partial files' sweep identity, without which they are not resumed
    std::fs::copy(d.join("full/sweep.meta.json"), out.join("sweep.meta.json.partial")).unwrap();
    let resumed = run(&spec, &out, None, 2);
    assert_eq!(full, resumed);
    assert!(!out.join("sweep.csv.partial").exists());
}

/// Shards merged equal the unsharded sweep.
#[test]
fn merged_shards_equal_the_unsharded_sweep() {
    let d = tmp("shards");
    let spec = SweepSpec::load(&sweep_file(&d)).unwrap();
    let full = run(&spec, &d.join("full"), None, 2);
    let out = d.join("sharded");
    let mut parts = Vec::new();
    for i in 0..3 {
        run(&spec, &out, Some((i, 3)), 1);
        parts.push(out.join(format!("sweep.shard-{i}-of-3.csv")));
    }
    let merged = out.join("merged.csv");
    assert_eq!(merge_csv(&parts, &merged).unwrap(), 18);
    assert_eq!(std::fs::read_to_string(merged).unwrap(), full.0);
}

/// Bad sweep files: located, clear errors and exit status 2.
#[test]
fn bad_sweep_files_give_clear_errors() {
    let d = tmp("bad");
    let good = std::fs::read_to_string(sweep_file(&d)).unwrap();
    let cases = [
        ("values = [1, 2, 4]", "values = []", "has no values"),
        (
            "values = [1, 2, 4]",
            "values = [1]\nrange = { start = 1, stop = 2, step = 1 }",
            "exactly one of values, range or log",
        ),
        (
            "range = { start = 64, stop = 128, step = 64 }",
            "range = { start = 64, stop = 128, step = 0 }",
            "step > 0",
        ),
        ("filters = [\"tp * pp <= 8\"]", "filters = [\"tp * <= 8\"]", "filter"),
        ("name = \"t\"", "name = \"t\"\ncolour = 3", "unknown field `colour`"),
        (
            "unset = [\"parallel.dp\"]",
            "unset = [\"parallel.nothing\"]",
            "not set in the base",
        ),
    ];
    for (from, to, want) in cases {
        let p = d.join("bad.toml");
        std::fs::write(&p, good.replacen(from, to, 1)).unwrap();
        let out = std::process::Command::new(env!("CARGO_BIN_EXE_trainsim"))
            .args(["sweep", "--quiet", "--out"])
            .arg(d.join("o"))
            .arg(&p)
            .output()
            .unwrap();
        let err = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(2), "{to}: {err}");
        assert!(
            err.contains("bad.toml") && err.contains(want),
            "{to}: expected {want:?} in {err}"
        );
    }
}

fn trainsim(args: &[&str], extra: &[&Path]) -> (Option<i32>, String, String) {
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_trainsim"))
        .args(args)
        .args(extra)
        .output()
        .unwrap();
    (
        out.status.code(),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

/// The Pareto chart's data: every feasible point with metrics is plotted, infeasible ones
/// (out of memory) apart, and the front is exactly the non-dominated feasible points.
#[test]
fn pareto_chart_data_is_the_non_dominated_set() {
    let d = tmp("pareto");
    let spec = SweepSpec::load(&sweep_file(&d)).unwrap();
    let out = d.join("out");
    let (csv, _) = run(&spec, &out, None, 2);
    assert!(out.join("pareto.png").exists());
    let opts = ChartOptions {
        x: Some("memory_gib".into()),
        y: Some("step_time_s".into()),
        ..Default::default()
    };
    let data = pareto_data(&spec, &out.join("sweep.csv"), &opts).unwrap();
    let header: Vec<&str> = csv.lines().next().unwrap().split(',').collect();
    let col = |n: &str| header.iter().position(|h| *h == n).unwrap();
    let (f, m, st) = (col("feasible"), col("memory_gib"), col("step_time_s"));
    let mut feasible = Vec::new();
    let mut infeasible = 0;
    for l in csv.lines().skip(1) {
        let c: Vec<&str> = l.split(',').collect();
        let (Ok(x), Ok(y)) = (c[m].parse::<f64>(), c[st].parse::<f64>()) else {
            continue;
        };
        if c[f] == "true" {
            feasible.push((x, y));
        } else {
            infeasible += 1;
        }
    }
    assert_eq!(data.feasible, feasible);
    assert_eq!(data.infeasible.len(), infeasible);
    assert!(data.x_label.contains("GiB") && data.y_label.contains("step_time_s (s"));
    let on_front: Vec<(f64, f64)> = data.front.iter().map(|p| (p.0, p.1)).collect();
    for p in &feasible {
        let dominated = feasible
            .iter()
            .any(|q| q.0 <= p.0 && q.1 <= p.1 && (q.0 < p.0 || q.1 < p.1));
        assert_eq!(on_front.contains(p), !dominated, "{p:?}");
    }
    assert!(on_front.windows(2).all(|w| w[0].0 <= w[1].0 && w[0].1 >= w[1].1));
    assert!(!on_front.is_empty() && on_front.len() < feasible.len());
    let idx = front(&feasible, Better::Lower, Better::Lower);
    assert_eq!(idx.len(), on_front.len());
    // default axes without a [target]: every point has 64 GPUs, so GPU-hours per step are
    // proportional to the step time (a line, not a front): memory is the x instead
    let dflt = pareto_data(&spec, &out.join("sweep.csv"), &ChartOptions::default()).unwrap();
    assert!(dflt.title.contains("step_time_s vs memory_gib"), "{}", dflt.title);
}

/// Bad chart flags of `trainsim sweep`, and a `--set` on a field an axis sets: located
/// errors and exit status 2, before any point runs.
#[test]
fn bad_sweep_chart_flags_give_clear_errors() {
    let d = tmp("badchart");
    let f = sweep_file(&d);
    let o = d.join("o");
    let cases: [(&[&str], &str); 7] = [
        (&["--set", "parallel.tp=2"], "axis `parallel.tp` sets this field"),
        (&["--chart", "pie"], "invalid value 'pie'"),
        (&["--chart", "pareto", "--x", ""], "--x is empty"),
        (
            &["--chart", "pareto", "--y", "speed"],
            "--y speed: not a numeric column",
        ),
        (&["--chart", "pareto", "--x", "cost_usd"], "needs a [target] section"),
        (&["--chart", "scaling", "--x", "memory_gib"], "add --chart pareto"),
        (&["--x", "memory_gib", "--y", "memory_gib"], "same column"),
    ];
    for (flags, want) in cases {
        let mut args = vec!["sweep", "--quiet", "--out", o.to_str().unwrap()];
        args.extend_from_slice(flags);
        let (code, _, err) = trainsim(&args, &[&f]);
        assert_eq!(code, Some(2), "{flags:?}: {err}");
        assert!(err.contains(want), "{flags:?}: expected {want:?} in {err}");
        if !want.starts_with("invalid value") {
            assert!(err.contains("sweep.toml"), "{flags:?}: not located: {err}");
        }
    }
    assert!(
        !o.join("sweep.csv").exists(),
        "a bad flag must stop the sweep before it runs"
    );
}

/// `trainsim search`: the same table on 1 and 4 threads, units in the column names, the
/// best plan first with its breakdown, and a Pareto chart.
#[test]
fn search_is_identical_on_any_thread_count() {
    let d = tmp("search");
    let sc = repo("scenarios/llama3-8b-h100-64.toml");
    let mut tables = Vec::new();
    for j in ["1", "4"] {
        let o = d.join(j);
        let (code, stdout, err) = trainsim(
            &[
                "search",
                "--zero",
                "1,3",
                "--top",
                "3",
                "-j",
                j,
                "--out",
                o.to_str().unwrap(),
            ],
            &[&sc],
        );
        assert_eq!(code, Some(0), "{err}");
        assert!(stdout.contains("why: vs #2") && stdout.contains("TP exp"), "{stdout}");
        assert!(o.join("pareto.png").exists());
        tables.push(std::fs::read_to_string(o.join("search.csv")).unwrap());
    }
    assert_eq!(tables[0], tables[1]);
    let header = tables[0].lines().next().unwrap();
    for c in [
        "step_time_s",
        "exposed_tp_comm_s",
        "pipeline_bubble_s",
        "memory_headroom_gib",
        "cost_usd",
    ] {
        assert!(header.split(',').any(|h| h == c), "{c} missing from {header}");
    }
    let first = tables[0].lines().nth(1).unwrap();
    assert!(
        first.starts_with("1,") && first.contains(",simulated,throughput,"),
        "{first}"
    );
}

/// Objectives: time to target ranks by the wall-clock to the scenario's [target].
#[test]
fn search_ranks_by_the_chosen_objective() {
    let d = tmp("objective");
    let sc = d.join("t.toml");
    std::fs::create_dir_all(&d).unwrap();
    let base = std::fs::read_to_string(repo("scenarios/llama3-8b-h100-64.toml")).unwrap();
    std::fs::write(&sc, format!("{base}\n[target]\ntokens = 1e12\n")).unwrap();
    let o = d.join("out");
    let (code, stdout, err) = trainsim(
        &[
            "search",
            "--objective",
            "time_to_target",
            "--top",
            "2",
            "--out",
            o.to_str().unwrap(),
        ],
        &[&sc],
    );
    assert_eq!(code, Some(0), "{err}");
    assert!(
        stdout.contains("objective: time_to_target (time_to_target_days)"),
        "{stdout}"
    );
    let t = std::fs::read_to_string(o.join("search.csv")).unwrap();
    let header: Vec<&str> = t.lines().next().unwrap().split(',').collect();
    let col = |n: &str| header.iter().position(|h| *h == n).unwrap();
    let rows: Vec<Vec<&str>> = t.lines().skip(1).map(|l| l.split(',').collect()).collect();
    let sim: Vec<&Vec<&str>> = rows.iter().filter(|r| r[col("status")] == "simulated").collect();
    assert!(sim.len() >= 2);
    let v = |r: &Vec<&str>| r[col("objective_value")].parse::<f64>().unwrap();
    assert!(sim.windows(2).all(|w| v(w[0]) <= v(w[1])));
    let days: f64 = sim[0][col("time_to_target_days")].parse().unwrap();
    assert!((v(sim[0]) - days).abs() < 1e-3, "{} vs {days}", v(sim[0]));
}

/// Bad search flags: clear errors and exit status 2.
#[test]
fn bad_search_flags_give_clear_errors() {
    let sc = repo("scenarios/llama3-8b-h100-64.toml");
    let o = tmp("badsearch");
    let cases: [(&[&str], &str); 4] = [
        (&["--objective", "speed"], "invalid value 'speed' for '--objective"),
        (&["--top", "0"], "--top 0"),
        (&["--zero", "5"], "--zero 5"),
        (&["--objective", "cost"], "needs a [target] section"),
    ];
    for (flags, want) in cases {
        let mut args = vec!["search", "--out", o.to_str().unwrap()];
        args.extend_from_slice(flags);
        let (code, _, err) = trainsim(&args, &[&sc]);
        assert_eq!(code, Some(2), "{flags:?}: {err}");
        assert!(err.contains(want), "{flags:?}: expected {want:?} in {err}");
        if !want.starts_with("invalid value") {
            assert!(err.contains("llama3-8b-h100-64.toml"), "{flags:?}: not located: {err}");
        }
    }
}

/// A small MoE model (64 experts, top-2, skewed routing) on 16 H100 in two nodes.
const MOE_SEARCH_SRC: &str = r#"name = "moe-search"
[cluster]
num_gpus = 16
gpus_per_node = 8
[cluster.gpu]
preset = "H100-SXM"
[model]
name = "tiny-moe"
num_layers = 4
hidden_size = 1024
num_heads = 8
ffn_hidden_size = 4096
ffn_type = "swiglu"
vocab_size = 32000
num_experts = 64
top_k = 2
expert_ffn_hidden_size = 1024
[parallel]
tp = 1
pp = 1
dp = 16
ep = 16
[training]
global_batch_size = 64
seq_length = 2048
[moe]
routing = "zipf"
zipf_exponent = 0.5
"#;

/// `trainsim search` on a MoE model enumerates expert parallelism (the divisors of the
/// expert count that divide tp*dp), keeps both bounds below every simulated step time
/// (all-to-all, expert lanes and imbalance included), finds the same best plans as
/// simulating every feasible candidate, and writes the same table on any thread count;
/// with and without the all-to-all overlap.
#[test]
fn moe_search_covers_expert_parallelism_and_keeps_the_optimum() {
    moe_search_case("");
    moe_search_case("overlap_all_to_all = true\n");
}

fn moe_search_case(moe_extra: &str) {
    use trainsim::sweep::search::{search, SearchOptions, SearchOutcome, Status};
    use trainsim::sweep::search_table::table_csv;
    let base = crate::scenario(&format!("{MOE_SEARCH_SRC}{moe_extra}")).input;
    let opts = |top: usize| SearchOptions {
        top,
        zero_stages: vec![0, 1],
        ..SearchOptions::default()
    };
    let on = |threads: usize, top: usize| -> SearchOutcome {
        let pool = rayon::ThreadPoolBuilder::new().num_threads(threads).build().unwrap();
        pool.install(|| search(&base, &opts(top))).unwrap()
    };
    let pruned = on(1, 3);
    assert_eq!(
        table_csv(&pruned),
        table_csv(&on(4, 3)),
        "table differs between thread counts"
    );
    let all = on(4, usize::MAX);
    assert_eq!(
        all.simulated, all.feasible,
        "the exhaustive search simulates every feasible plan"
    );
    assert!(
        pruned.simulated < all.simulated,
        "{} vs {}",
        pruned.simulated,
        all.simulated
    );

    // the space: ep over the divisors of 64 that divide tp*dp, all of them tried
    let mut eps: Vec<u32> = all.candidates.iter().map(|c| c.plan.ep).collect();
    eps.sort_unstable();
    eps.dedup();
    assert_eq!(eps, [1, 2, 4, 8, 16]);
    assert!(all
        .candidates
        .iter()
        .all(|c| 64 % c.plan.ep == 0 && (c.plan.tp * c.plan.dp) % c.plan.ep == 0));
    // expert tensor parallelism: the divisors of tp, with ep * etp dividing tp * dp
    let mut etps: Vec<u32> = all.candidates.iter().map(|c| c.plan.expert_tp).collect();
    etps.sort_unstable();
    etps.dedup();
    assert_eq!(etps, [1, 2, 4, 8]);
    assert!(all
        .candidates
        .iter()
        .all(|c| c.plan.tp % c.plan.expert_tp == 0 && (c.plan.tp * c.plan.dp) % (c.plan.ep * c.plan.expert_tp) == 0));
    assert!(all
        .candidates
        .iter()
        .any(|c| c.plan.expert_tp > 1 && matches!(c.status, Status::Simulated(_))));
    let mut feasible_eps: Vec<u32> = all
        .candidates
        .iter()
        .filter(|c| matches!(c.status, Status::Simulated(_)))
        .map(|c| c.plan.ep)
        .collect();
    feasible_eps.sort_unstable();
    feasible_eps.dedup();
    assert!(feasible_eps.len() >= 4, "feasible ep values: {feasible_eps:?}");

    // both bounds are lower bounds of every simulated step
    let mut moe_steps = 0;
    for c in &all.candidates {
        let Status::Simulated(r) = &c.status else { continue };
        let ep = c.plan.ep;
        assert!(
            c.bound_s <= r.step_time_s * (1.0 + 1e-9),
            "{} EP{ep}: cheap bound {} > simulated {}",
            r.plan,
            c.bound_s,
            r.step_time_s
        );
        let cf = c.contention_free_s.expect("computed for every simulated plan");
        assert!(
            cf <= r.step_time_s * (1.0 + 1e-6),
            "{} EP{ep}: contention-free {cf} > simulated {}",
            r.plan,
            r.step_time_s
        );
        // the contention-free bound sees the all-to-all and the expert lanes: it is
        // more than the cheap bound, and close to the simulation. With the all-to-all
        // overlap its longest path lets the two compute queues run side by side (it
        // ignores that they share the GPU), so it is only sound, not tighter.
        // Schedules with the optimizer post-validation have no barrier to time from:
        // their contention-free bound is 0 (no information).
        if !base.plan.moe_overlap && !c.plan.optimizer_post_validation {
            assert!(cf > c.bound_s, "{} EP{ep}: {cf} <= {}", r.plan, c.bound_s);
        }
        if ep > 1 && r.breakdown.exposed(CommKind::Ep) > 0.0 {
            moe_steps += 1;
        }
    }
    assert!(moe_steps > 20, "{moe_steps} simulated plans with an exposed all-to-all");

    // the pruned search's best plans are the exhaustive search's
    let top = |o: &SearchOutcome| -> Vec<(u32, String, f64)> {
        o.candidates[..3]
            .iter()
            .map(|c| match &c.status {
                Status::Simulated(r) => (c.plan.ep, r.plan.clone(), r.step_time_s),
                s => panic!("not simulated: {s:?}"),
            })
            .collect()
    };
    assert_eq!(top(&pruned), top(&all));
    let csv = table_csv(&pruned);
    let header: Vec<&str> = csv.lines().next().unwrap().split(',').collect();
    assert_eq!(&header[1..7], ["tp", "pp", "dp", "cp", "ep", "etp"]);
    assert!(header.contains(&"exposed_ep_comm_s") && header.contains(&"moe_imbalance_s"));
}

/// The MoE columns close the numeric block (before `plan`): filled for a MoE model, empty
/// for a dense one, and in the JSON Lines records only for MoE.
#[test]
fn moe_columns_are_filled_for_moe_runs_only() {
    let d = tmp("moecols");
    std::fs::create_dir_all(&d).unwrap();
    std::fs::write(d.join("moe.toml"), MOE_SEARCH_SRC).unwrap();
    let f = d.join("sweep.toml");
    std::fs::write(
        &f,
        "base = \"moe.toml\"\n[[axis]]\nfield = \"parallel.ep\"\nvalues = [1, 4, 16]\n\
         [[axis]]\nfield = \"moe.capacity_factor\"\nvalues = [1.0, 2.0]\n",
    )
    .unwrap();
    let spec = SweepSpec::load(&f).unwrap();
    let (csv, jsonl) = run(&spec, &d.join("out"), None, 2);
    let header: Vec<&str> = csv.lines().next().unwrap().split(',').collect();
    let moe = [
        "exposed_ep_comm_s",
        "moe_imbalance_s",
        "moe_dropped_fraction",
        "moe_rank_load_max_over_mean",
    ];
    let n = header.len();
    assert_eq!(header[n - 6..n - 5], ["energy_to_target_kwh"]);
    assert_eq!(header[n - 5..n - 1], moe);
    assert_eq!(header[n - 1], "plan");
    let rows: Vec<Vec<&str>> = csv.lines().skip(1).map(|l| l.split(',').collect()).collect();
    assert_eq!(rows.len(), 6);
    for r in &rows {
        let v: Vec<f64> = r[n - 5..n - 1].iter().map(|c| c.parse().unwrap()).collect();
        assert!(
            v[0] >= 0.0 && v[1] >= 0.0 && (0.0..1.0).contains(&v[2]) && v[3] >= 1.0,
            "{r:?}"
        );
        // ep = 1: one expert-parallel rank, so no rank imbalance
        if r[1] == "1" {
            assert_eq!(v[3], 1.0, "{r:?}");
        }
    }
    assert!(jsonl.lines().all(|l| l.contains("\"moe_dropped_fraction\":")));
    // a dense sweep leaves them empty
    let dd = tmp("moecols-dense");
    let (dense, _) = run(&SweepSpec::load(&sweep_file(&dd)).unwrap(), &dd.join("o"), None, 2);
    let dh: Vec<&str> = dense.lines().next().unwrap().split(',').collect();
    assert_eq!(dh[dh.len() - 5..dh.len() - 1], moe);
    let row: Vec<&str> = dense
        .lines()
        .skip(1)
        .find(|l| l.contains(",true,"))
        .unwrap()
        .split(',')
        .collect();
    assert!(row[dh.len() - 5..dh.len() - 1].iter().all(|c| c.is_empty()), "{row:?}");
    assert!(!row[dh.len() - 1].is_empty());
}

/// A TP x PP sweep at one GPU count draws a heatmap and no scaling chart; `trainsim plot
/// sweep.csv --metric` redraws it from the CSV alone with another metric, and rejects a
/// column that is not a metric or a chart that does not apply (exit status 2).
#[test]
fn plot_redraws_a_sweep_csv_with_another_metric() {
    let d = tmp("plot-csv");
    std::fs::create_dir_all(&d).unwrap();
    let base = repo("scenarios/llama3-8b-h100-64.toml");
    let text = format!(
        "name = \"tp-pp\"\nbase = \"{}\"\nunset = [\"parallel.dp\"]\n\
         [[axis]]\nfield = \"parallel.tp\"\nvalues = [1, 2]\n\
         [[axis]]\nfield = \"parallel.pp\"\nvalues = [1, 2]\n",
        base.display()
    );
    let spec = d.join("tp-pp.toml");
    std::fs::write(&spec, text).unwrap();
    let out = d.join("sweep");
    let (code, _, err) = trainsim(&["sweep", "--quiet", "--out"], &[&out, &spec]);
    assert_eq!(code, Some(0), "{err}");
    assert!(out.join("heatmap.png").is_file() && out.join("pareto.png").is_file());
    assert!(
        !out.join("scaling.png").exists(),
        "not a scaling sweep: no scaling chart"
    );
    let csv = out.join("sweep.csv");
    let redrawn = d.join("redrawn");
    let (code, stdout, err) = trainsim(&["plot", "--metric", "mfu_pct", "--out"], &[&redrawn, &csv]);
    assert_eq!(code, Some(0), "{err}");
    assert!(
        stdout.contains("heatmap.png") && stdout.contains("pareto.png"),
        "{stdout}"
    );
    assert!(!stdout.contains("scaling.png"), "{stdout}");
    let png = |p: &Path| std::fs::read(p).unwrap();
    assert!(png(&redrawn.join("heatmap.png")).starts_with(b"\x89PNG"));
    assert_ne!(
        png(&redrawn.join("heatmap.png")),
        png(&out.join("heatmap.png")),
        "another metric, another heatmap"
    );
    // the heatmap the CLI drew, as data: MFU, the best cell marked
    let t = trainsim::sweep::table::SweepTable::from_csv(&csv).unwrap();
    let opts = ChartOptions {
        metric: Some("mfu_pct".into()),
        ..Default::default()
    };
    let h = trainsim::sweep::charts::heatmap_data(&t, &opts).expect("two axes");
    assert!(h.title.contains("mfu_pct") && h.metric_label == "%", "{}", h.title);
    assert!(h.best.is_some() && h.best_label == "best (highest)");
    for (args, want) in [
        (
            &["plot", "--metric", "speed"][..],
            "--metric speed: not a numeric column",
        ),
        (&["plot", "--chart", "scaling"][..], "scaling sweep"),
        (&["plot", "--metric", "mfu_pct"][..], "not a sweep CSV"),
    ] {
        let input = if want == "not a sweep CSV" {
            let bad = d.join("bad.csv");
            std::fs::write(&bad, "a,b\n1,2\n").unwrap();
            bad
        } else {
            csv.clone()
        };
        let (code, _, err) = trainsim(args, &[&input]);
        assert_eq!(code, Some(2), "{args:?}: {err}");
        assert!(err.contains(want) && !err.contains("panicked"), "{args:?}: {err}");
    }
    let _ = std::fs::remove_dir_all(d);
}
