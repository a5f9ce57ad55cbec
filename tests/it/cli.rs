use std::path::PathBuf;
use std::process::Command;

const BASE: &str = r#"name = "cli-test"
[cluster]
num_gpus = 16
gpus_per_node = 8
[cluster.gpu]
preset = "H100-SXM"
[cluster.network]
scale_out_efficiency = 0.9
[model]
preset = "llama2-7b"
[parallel]
tp = 2
pp = 2
dp = 4
recompute = "selective"
[training]
global_batch_size = 32
seq_length = 2048
"#;

fn bin() -> Command {
    Command::new(env!("CARGO_BIN_EXE_trainsim"))
}

fn write_case(name: &str, text: &str) -> PathBuf {
    let dir = std::env::temp_dir().join(format!("trainsim-cli-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let p = dir.join(format!("{name}.toml"));
    std::fs::write(&p, text).unwrap();
    p
}

/// Runs `trainsim run` on a mutated BASE; returns (exit code, stderr).
fn run_case(name: &str, from: &str, to: &str) -> (i32, String) {
    assert!(BASE.contains(from), "bad test: {from:?} not in BASE");
    let p = write_case(name, &BASE.replacen(from, to, 1));
    let out = bin()
        .args(["run", "--no-charts", "--quiet", "--out"])
        .arg(std::env::temp_dir().join("trainsim-cli-out"))
        .arg(&p)
        .output()
        .unwrap();
    (
        out.status.code().unwrap_or(-1),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

/// Each kind of bad input: exit status 2 and one message naming the file, where known the
/// line, the field and what is allowed. Nothing panics.
#[test]
fn bad_scenarios_give_located_errors_and_exit_2() {
    let cases: &[(&str, &str, &str, &[&str])] = &[
        (
            "syntax",
            "name = \"cli-test\"",
            "name = \"cli-test",
            &["syntax.toml:1:", "error:"],
        ),
        (
            "algorithm",
            "scale_out_efficiency = 0.9",
            "scale_out_efficiency = 0.9\nall_reduce_algorithm = \"butterfly\"",
            &[
                "cluster.network.all_reduce_algorithm",
                "\"butterfly\"",
                "\"ring\", \"tree\", \"nvls\"",
            ],
        ),
        (
            "algorithm-kind",
            "scale_out_efficiency = 0.9",
            // NVLS all-gather exists since issue 12; a tree never gathers
            "scale_out_efficiency = 0.9\nall_gather_algorithm = \"tree\"",
            &["cluster.network.all_gather_algorithm", "\"auto\", \"ring\", \"nvls\""],
        ),
        (
            "fat-tree-tiers",
            "scale_out_efficiency = 0.9",
            "scale_out_efficiency = 0.9\nfat_tree_tiers = 4",
            &["cluster.network.fat_tree_tiers", "2 (leaf-spine) and 3"],
        ),
        (
            "unknown-key",
            "recompute = \"selective\"",
            "recompute = \"selective\"\nrecomput = \"full\"",
            &["unknown-key.toml:16:1", "unknown field `recomput`"],
        ),
        (
            "wrong-type",
            "tp = 2",
            "tp = \"two\"",
            &["wrong-type.toml:12:", "expected u32"],
        ),
        (
            "negative-size",
            "seq_length = 2048",
            "seq_length = -2048",
            &["negative-size.toml:18:", "-2048"],
        ),
        (
            "zero-gpus",
            "num_gpus = 16",
            "num_gpus = 0",
            &["zero-gpus.toml:3:1", "cluster.num_gpus", "at least 1"],
        ),
        (
            "tp-heads",
            "tp = 2\npp = 2\ndp = 4",
            "tp = 3\npp = 2\ndp = 4",
            &["impossible plan", "32 attention heads"],
        ),
        ("gpu-count", "dp = 4", "dp = 8", &["impossible plan", "tp*pp*dp", "16"]),
        (
            "unknown-gpu",
            "preset = \"H100-SXM\"",
            "preset = \"H1000\"",
            &["cluster.gpu.preset", "\"H1000\"", "\"A100-80GB\""],
        ),
        (
            "bad-enum",
            "recompute = \"selective\"",
            "recompute = \"some\"",
            &["bad-enum.toml:15:1", "parallel.recompute", "\"full\""],
        ),
        (
            "bad-fraction",
            "scale_out_efficiency = 0.9",
            "scale_out_efficiency = 1.5",
            &[
                "bad-fraction.toml:8:1",
                "cluster.network.scale_out_efficiency",
                "(0, 1]",
            ],
        ),
        ("layers-split", "pp = 2\ndp = 4", "pp = 3\ndp = 4", &["impossible plan"]),
        (
            "batch",
            "global_batch_size = 32",
            "global_batch_size = 30",
            &["impossible plan", "global_batch_size=30"],
        ),
        (
            "missing-section",
            "[training]\nglobal_batch_size = 32\nseq_length = 2048\n",
            "",
            &["missing-section.toml", "training"],
        ),
        (
            "bad-straggler",
            "seq_length = 2048",
            "seq_length = 2048\n[stragglers]\nslow_gpus = 2\nslowdown_fraction = -0.1",
            &[
                "bad-straggler.toml:21:1",
                "stragglers.slowdown_fraction",
                "-0.1",
                "zero or a positive number",
            ],
        ),
        (
            "too-many-slow",
            "seq_length = 2048",
            "seq_length = 2048\n[stragglers]\nslow_gpus = 20\nslowdown_fraction = 0.1",
            &["stragglers.slow_gpus", "at most cluster.num_gpus = 16"],
        ),
        ("fp8-a100", "preset = \"H100-SXM\"", "preset = \"A100-80GB\"", &[]),
    ];
    for (name, from, to, want) in cases {
        if *name == "fp8-a100" {
            continue;
        }
        let (code, err) = run_case(name, from, to);
        assert_eq!(code, 2, "{name}: exit {code}, stderr: {err}");
        assert!(!err.contains("panicked"), "{name} panicked: {err}");
        for w in *want {
            assert!(err.contains(w), "{name}: expected {w:?} in: {err}");
        }
        assert!(
            err.lines().count() <= 4,
            "{name}: message should be one short paragraph: {err}"
        );
    }
    // FP8 on a GPU without FP8 tensor cores
    let (code, err) = run_case(
        "fp8-a100",
        "seq_length = 2048",
        "seq_length = 2048\nprecision = \"fp8\"",
    );
    assert_eq!(code, 0, "H100 with fp8 is valid: {err}");
    let p = write_case(
        "fp8-a100",
        &BASE
            .replace("H100-SXM", "A100-80GB")
            .replace("seq_length = 2048", "seq_length = 2048\nprecision = \"fp8\""),
    );
    let out = bin().args(["run", "--no-charts", "--quiet"]).arg(&p).output().unwrap();
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(2));
    assert!(err.contains("training.precision") && err.contains("no FP8"), "{err}");
}

#[test]
fn missing_file_is_reported_with_its_path() {
    let out = bin().args(["run", "no/such/scenario.toml"]).output().unwrap();
    assert_eq!(out.status.code(), Some(2));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("no/such/scenario.toml"), "{err}");
}

#[test]
fn help_teaches_with_examples() {
    let out = bin().arg("--help").output().unwrap();
    assert!(out.status.success());
    let s = String::from_utf8_lossy(&out.stdout);
    assert!(s.contains("Examples:") && s.contains("trainsim run scenarios/"), "{s}");
    let out = bin().args(["run", "--help"]).output().unwrap();
    assert!(String::from_utf8_lossy(&out.stdout).contains("Exit status"));
}

/// `run` writes results.json atomically: the file parses and no temp file is left.
#[test]
fn run_writes_results_json_without_temp_files() {
    let p = write_case("ok", BASE);
    let dir = std::env::temp_dir().join(format!("trainsim-cli-ok-{}", std::process::id()));
    let out = bin()
        .args(["run", "--no-charts", "--quiet", "--out"])
        .arg(&dir)
        .arg(&p)
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let r = trainsim::report::read_results(&dir.join("results.json")).unwrap();
    assert!(r.step_time_s > 0.0);
    let leftovers: Vec<_> = std::fs::read_dir(&dir)
        .unwrap()
        .flatten()
        .filter(|e| e.file_name().to_string_lossy().contains(".tmp"))
        .collect();
    assert!(leftovers.is_empty());
}

fn run_out(args: &[&str]) -> (i32, String, String) {
    let out = bin().args(args).output().unwrap();
    (
        out.status.code().unwrap_or(-1),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

fn scratch(tag: &str) -> PathBuf {
    let d = std::env::temp_dir().join(format!("trainsim-cli-{tag}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&d);
    std::fs::create_dir_all(&d).unwrap();
    d
}

/// The OS error of a missing file is said once, not twice.
#[test]
fn os_errors_are_printed_once() {
    let (code, _, err) = run_out(&["run", "no/such/scenario.toml"]);
    assert_eq!(code, 2);
    assert_eq!(err.matches("os error 2").count(), 1, "{err}");
}

/// Misspelt keys, presets and values get a "did you mean"; a plan whose GPU product counts
/// CP wrongly says so; a plan error carries the line of the field it is about.
#[test]
fn near_misses_get_did_you_mean_and_plan_errors_a_line() {
    let (code, e) = run_case("dym-key", "tp = 2", "tp = 2\nmicro_batch_sizes = 2");
    assert_eq!(code, 2);
    assert!(e.contains("did you mean `micro_batch_size`"), "{e}");
    let (_, e) = run_case("dym-preset", "\"llama2-7b\"", "\"llama2-7\"");
    assert!(e.contains("did you mean \"llama2-7b\""), "{e}");
    let (_, e) = run_case("dym-gpu", "\"H100-SXM\"", "\"H100-SMX\"");
    assert!(e.contains("did you mean \"H100-SXM\""), "{e}");
    let (_, e) = run_case("cp", "tp = 2", "tp = 2\ncp = 2");
    assert!(
        e.contains("tp*pp*dp*cp = 2*2*4*2 = 32 GPUs but the cluster has 16"),
        "{e}"
    );
    let (code, e) = run_case("plan-line", "tp = 2", "tp = 3");
    assert_eq!(code, 2);
    assert!(e.contains("plan-line.toml:12:1: impossible plan"), "{e}");
}

/// `--set` overrides any field by path, and a misspelt path is refused before simulating.
#[test]
fn set_overrides_fields_with_located_errors() {
    let p = write_case("set", BASE);
    let dir = scratch("set");
    let (code, out, err) = run_out(&[
        "run",
        p.to_str().unwrap(),
        "--no-charts",
        "--out",
        dir.to_str().unwrap(),
        "--set",
        "parallel.tp=4",
        "--set",
        "parallel.dp=2",
        "--set",
        "parallel.recompute=full",
    ]);
    assert_eq!(code, 0, "{err}");
    assert!(out.contains("TP4 PP2 DP2") && out.contains("recompute=full"), "{out}");
    let v: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(dir.join("results.json")).unwrap()).unwrap();
    assert!(v["scenario"]["source"]
        .as_str()
        .unwrap()
        .contains("--set parallel.tp=4"));
    assert_eq!(v["scenario"]["resolved"]["parallel"]["tp"], 4);
    let (code, _, err) = run_out(&["run", p.to_str().unwrap(), "--set", "parallel.micro_batch_sizes=2"]);
    assert_eq!(code, 2);
    assert!(err.contains("did you mean `parallel.micro_batch_size`"), "{err}");
    let (code, _, err) = run_out(&[
        "run",
        p.to_str().unwrap(),
        "--no-charts",
        "--set",
        "parallel.recompute=most",
    ]);
    assert_eq!(code, 2);
    assert!(
        err.contains("(--set parallel.recompute=\"most\")") && err.contains("allowed values"),
        "{err}"
    );
}

/// A sweep axis with a misspelt field is refused before any point runs (exit 2, no output).
#[test]
fn sweep_with_a_misspelt_axis_exits_2_before_simulating() {
    let dir = scratch("sweep-axis");
    std::fs::write(dir.join("base.toml"), BASE).unwrap();
    let sweep = dir.join("s.toml");
    std::fs::write(
        &sweep,
        "base = \"base.toml\"\n[[axis]]\nfield = \"parallel.micro_batch_sizes\"\nvalues = [1, 2]\n",
    )
    .unwrap();
    let out = dir.join("out");
    let (code, _, err) = run_out(&["sweep", sweep.to_str().unwrap(), "--out", out.to_str().unwrap()]);
    assert_eq!(code, 2, "{err}");
    assert!(
        err.contains("s.toml:3:1") && err.contains("did you mean `parallel.micro_batch_size`"),
        "{err}"
    );
    assert!(!out.exists(), "nothing written");
}

/// `validate FILE` works on one file; `validate DIR` reports a bad file and goes on.
#[test]
fn validate_takes_a_file_and_reports_bad_files_in_a_folder() {
    let dir = scratch("validate");
    let good = BASE.to_string() + "[measured]\nstep_time_s = 1.0\n";
    std::fs::write(dir.join("a-good.toml"), &good).unwrap();
    std::fs::write(dir.join("b-bad.toml"), BASE.replace("tp = 2", "tq = 2")).unwrap();
    let (code, out, err) = run_out(&["validate", dir.join("a-good.toml").to_str().unwrap()]);
    assert_eq!(code, 0, "{err}");
    assert!(out.contains("cli-test") && out.contains("1 scenarios"), "{out}");
    let (code, out, err) = run_out(&["validate", dir.to_str().unwrap()]);
    assert_eq!(code, 2);
    assert!(
        err.contains("b-bad.toml:") && err.contains("did you mean `tp`"),
        "{err}"
    );
    assert!(out.contains("cli-test"), "the good file is still compared: {out}");
    let (code, _, err) = run_out(&["validate", dir.join("b-bad.toml").to_str().unwrap()]);
    assert_eq!(code, 2);
    assert!(!err.contains("Not a directory"), "{err}");
}

/// The headline says whether the plan fits (out of memory, tight), and one measured
/// iteration has no spread to report.
#[test]
fn headline_carries_the_memory_verdict() {
    let oom = write_case(
        "oom",
        &BASE.replace("recompute = \"selective\"", "recompute = \"none\""),
    );
    let (_, out, _) = run_out(&[
        "run",
        oom.to_str().unwrap(),
        "--no-charts",
        "--out",
        scratch("oom").to_str().unwrap(),
        "--set",
        "training.seq_length=65536",
        "--set",
        "training.global_batch_size=4",
        "--set",
        "parallel.dp=1",
        "--set",
        "cluster.num_gpus=4",
    ]);
    let head: Vec<&str> = out.lines().take(6).collect();
    assert!(head.iter().any(|l| l.contains("DOES NOT FIT")), "{out}");
    let one = BASE.to_string() + "[simulation]\niterations = 2\n";
    let (_, out, _) = run_out(&[
        "run",
        write_case("one-iter", &one).to_str().unwrap(),
        "--no-charts",
        "--out",
        scratch("one").to_str().unwrap(),
    ]);
    assert!(
        out.contains("1 measured iteration: no spread") && !out.contains("over 1 measured"),
        "{out}"
    );
    let r = trainsim::simulation::run(&crate::scenario(BASE).input).unwrap();
    let mut m = r.memory.clone();
    (m.total_gib, m.capacity_gib, m.fits) = (77.9, 80.0, true);
    let s = trainsim::report::summary::memory_verdict(&m);
    assert!(s.contains("fits, but only 2.1 GiB (2.6%) free: at risk"), "{s}");
}

/// results.json is small (the timeline is in timeline.json), `plot` still draws the
/// timeline, report.html is self-contained, and `diff` compares two runs.
#[test]
fn results_timeline_report_and_diff() {
    let p = write_case("rtd", BASE);
    let (a, b) = (scratch("rtd-a"), scratch("rtd-b"));
    for (dir, set) in [(&a, "parallel.recompute=selective"), (&b, "parallel.recompute=full")] {
        let (code, _, err) = run_out(&[
            "run",
            p.to_str().unwrap(),
            "--quiet",
            "--out",
            dir.to_str().unwrap(),
            "--set",
            set,
        ]);
        assert_eq!(code, 0, "{err}");
    }
    let v: serde_json::Value = serde_json::from_str(&std::fs::read_to_string(a.join("results.json")).unwrap()).unwrap();
    assert_eq!(v["timeline"], serde_json::json!([]));
    assert!(v["trainsim_version"].is_string());
    let back = trainsim::report::read_results(&a.join("results.json")).unwrap();
    assert!(!back.timeline.is_empty(), "timeline read from timeline.json");
    let html = std::fs::read_to_string(a.join("report.html")).unwrap();
    assert!(html.contains("<svg") && html.contains("[parallel]"));
    std::fs::remove_file(a.join("timeline.svg")).unwrap();
    let (code, out, _) = run_out(&["plot", a.join("results.json").to_str().unwrap()]);
    assert_eq!(code, 0);
    assert!(out.contains("timeline.svg") && a.join("timeline.svg").is_file());
    let (code, out, err) = run_out(&[
        "diff",
        a.join("results.json").to_str().unwrap(),
        b.join("results.json").to_str().unwrap(),
    ]);
    assert_eq!(code, 0, "{err}");
    assert!(
        out.contains("parallel.recompute") && out.contains("slower than a") && out.contains("recompute"),
        "{out}"
    );
}

/// `schema` is JSON naming every section; `completions` writes a script; `search
/// --emit-best` writes a scenario that runs.
#[test]
fn schema_completions_and_emit_best() {
    let (code, out, _) = run_out(&["schema"]);
    assert_eq!(code, 0);
    let v: serde_json::Value = serde_json::from_str(&out).unwrap();
    assert!(
        v["properties"]["parallel"].is_object()
            && v["$defs"]["RawParallel"]["properties"]["tp"]["description"].is_string()
    );
    let (code, out, _) = run_out(&["completions", "bash"]);
    assert_eq!(code, 0);
    assert!(out.contains("trainsim") && out.contains("serve") && out.len() > 1000);
    let (first, s) = search_emit_best(&write_case("emit", BASE), "emit");
    let label = trainsim::simulation::run(&s.input).unwrap().plan;
    assert!(first.contains(&label), "{first} vs {label}");
}

/// `trainsim search SCENARIO --top 1 --emit-best`: the table's first row and the written
/// scenario, loaded.
fn search_emit_best(scenario: &std::path::Path, tag: &str) -> (String, trainsim::scenario::Scenario) {
    let dir = scratch(tag);
    let best = dir.join("best.toml");
    let (code, out, err) = run_out(&[
        "search",
        scenario.to_str().unwrap(),
        "--top",
        "1",
        "--out",
        dir.to_str().unwrap(),
        "--emit-best",
        best.to_str().unwrap(),
    ]);
    assert_eq!(code, 0, "{err}");
    assert!(out.contains("best.toml"), "{out}");
    let first = out.lines().find(|l| l.starts_with("1 ")).unwrap().to_string();
    (first, trainsim::scenario::Scenario::load(&best).unwrap())
}

/// On a cluster of H100 and A100 nodes the best plan has an uneven micro-batch split:
/// `--emit-best` writes the split, and the written scenario runs the winning plan to the
/// same step time.
#[test]
fn emit_best_writes_the_splits_of_a_heterogeneous_plan() {
    let scenario = crate::repo("scenarios/llama3-8b-h100-a100-32-split.toml");
    let (first, s) = search_emit_best(&scenario, "emit-hetero");
    assert!(first.contains("batches="), "{first}");
    let r = trainsim::simulation::run_summary(&s.input).unwrap();
    assert!(first.contains(&r.plan), "{first} vs {}", r.plan);
    assert!(
        first.contains(&format!("{:.4}", r.step_time_s)),
        "{first} vs {}",
        r.step_time_s
    );
}
