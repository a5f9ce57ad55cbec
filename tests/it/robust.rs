//! Hostile input: physical limits, checked plan arithmetic, resource guards, finite
//! results, and the fuzz harness at a small count.

use std::path::Path;
use trainsim::scenario::{limits, Scenario};

const BEGIN: &str = "<!-- limits:begin -->\n";
const END: &str = "<!-- limits:end -->";

#[test]
fn docs_state_every_physical_limit() {
    let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("docs/scenario.md");
    let doc = std::fs::read_to_string(&path).unwrap();
    let (a, b) = (
        doc.find(BEGIN).expect("limits:begin marker"),
        doc.find(END).expect("limits:end marker"),
    );
    let table = limits::docs_table();
    if std::env::var_os("UPDATE_GOLDEN").is_some() {
        let new = format!("{}{BEGIN}{table}{}", &doc[..a], &doc[b..]);
        std::fs::write(&path, new).unwrap();
        return;
    }
    assert_eq!(
        &doc[a + BEGIN.len()..b],
        table,
        "docs/scenario.md's limits table is stale: UPDATE_GOLDEN=1 cargo test --release --test it robust"
    );
}

fn shipped() -> Vec<std::path::PathBuf> {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("scenarios");
    let mut v: Vec<_> = std::fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|e| e == "toml"))
        .collect();
    v.sort();
    v
}

#[test]
fn operation_estimate_is_within_3x_of_the_built_workload() {
    use trainsim::simulation::budget::estimated_operations;
    let mut bad = Vec::new();
    for path in shipped() {
        let sc = Scenario::load(&path).unwrap();
        let r = trainsim::simulation::run(&sc.input).unwrap();
        // the estimate is one replica's; the budget multiplies it by the replicas simulated
        let built = r.simulation.operations as f64;
        let est = estimated_operations(&sc.input) as f64 * f64::from(r.simulation.replicas_simulated);
        let ratio = est / built;
        println!(
            "{}: estimated {est:.0}, built {built:.0}, ratio {ratio:.2}",
            path.display()
        );
        if !(1.0 / 3.0..=3.0).contains(&ratio) {
            bad.push(format!("{}: estimate {est} vs {built}", path.display()));
        }
    }
    assert!(bad.is_empty(), "{bad:#?}");
}

#[test]
fn oversized_workloads_are_refused_before_building_and_the_limit_can_be_raised() {
    let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("scenarios/llama3-8b-h100-64.toml");
    let src = std::fs::read_to_string(&path).unwrap();
    let set = |k: &str, v: &str| trainsim::scenario::parse_override(&format!("{k}={v}")).unwrap();
    // 2^24 sequences per step: 1M micro-batches
    let sc = Scenario::from_source_with(&src, &path, &[set("training.global_batch_size", "16777216")]).unwrap();
    let t = std::time::Instant::now();
    let e = trainsim::simulation::run(&sc.input).unwrap_err().to_string();
    assert!(t.elapsed().as_secs_f64() < 1.0, "refused quickly");
    assert!(
        e.contains("operations") && e.contains("simulation.max_operations"),
        "{e}"
    );
    // a small run under a lowered limit is refused too, and runs once it is raised again
    let small = Scenario::from_source_with(&src, &path, &[set("simulation.max_operations", "1000")]).unwrap();
    assert!(trainsim::simulation::run(&small.input).is_err());
    let ok = Scenario::from_source_with(&src, &path, &[set("simulation.max_operations", "100000")]).unwrap();
    assert!(trainsim::simulation::run(&ok.input).is_ok());
}

#[test]
fn values_past_physical_limits_are_located_errors() {
    let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("scenarios/llama3-8b-h100-64.toml");
    let src = std::fs::read_to_string(&path).unwrap();
    for (find, replace, field) in [
        (
            "gpus_per_node = 8",
            "gpus_per_node = 8\n[cluster.network]\nnic_gbit_per_s = 1e300",
            "nic_gbit_per_s",
        ),
        (
            "preset = \"H100-SXM\"",
            "preset = \"H100-SXM\"\nkernel_overhead_us = 1e30",
            "kernel_overhead_us",
        ),
        ("seq_length = 8192", "seq_length = 50000000", "seq_length"),
        (
            "global_batch_size = 256",
            "global_batch_size = 2147483648",
            "global_batch_size",
        ),
        (
            "preset = \"H100-SXM\"",
            "preset = \"H100-SXM\"\npeak_bf16_tflops = nan",
            "peak_bf16_tflops",
        ),
    ] {
        let bad = src.replacen(find, replace, 1);
        let e = Scenario::from_source(&bad, &path)
            .err()
            .map(|e| e.to_string())
            .unwrap_or_default();
        assert!(e.contains(field) && e.contains("must be"), "{field}: {e}");
        assert!(e.len() < 400, "the value is echoed short: {e}");
        assert!(e.contains("llama3-8b-h100-64.toml:"), "located: {e}");
    }
}

#[path = "../../examples/fuzz/harness.rs"]
mod harness;
#[path = "../../examples/fuzz/mutate.rs"]
mod mutate;

/// The fuzz harness at a small count (the documented run is `cargo run --release
/// --example fuzz -- --cases 100000`): no panic, hang or non-finite number, and the
/// generator reaches every outcome class that matters.
#[test]
fn fuzzed_scenarios_never_panic_hang_or_report_non_finite_numbers() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let bases: Vec<String> = shipped()
        .iter()
        .filter(|p| !p.ends_with("deepseek-v3-h800-2048.toml")) // 1.7 s a run: the example covers it
        .map(|p| std::fs::read_to_string(p).unwrap())
        .collect();
    let known = trainsim::scenario::fields::known_paths().to_vec();
    let path = root.join("scenarios/fuzz-case.toml");
    // the shipped sweep files with their base made absolute (cases are written elsewhere)
    let sweep_dir = root.join("scenarios/sweeps");
    let sweeps: Vec<String> = ["gpt3-175b-tp-pp.toml", "mixtral-8x7b-ep-capacity.toml"]
        .iter()
        .map(|f| {
            let mut t: toml::Table = toml::from_str(&std::fs::read_to_string(sweep_dir.join(f)).unwrap()).unwrap();
            let base = sweep_dir.join(t["base"].as_str().unwrap()).display().to_string();
            t.insert("base".into(), toml::Value::String(base));
            toml::to_string(&t).unwrap()
        })
        .collect();
    let scratch = std::env::temp_dir().join(format!("trainsim-fuzz-test-{}", std::process::id()));
    std::fs::create_dir_all(&scratch).unwrap();
    harness::install_panic_hook();
    let mut seen = std::collections::BTreeMap::new();
    for i in 0..300 {
        let c = mutate::case(&bases, &sweeps, &known, 7, i);
        let o = match c.kind {
            mutate::Kind::Scenario => harness::run_case(&c.text, &path),
            mutate::Kind::Sweep => harness::run_sweep_case(&c.text, &scratch.join(format!("case-{i}.toml"))),
        };
        assert!(!o.is_defect(), "case {i}: {o:?}\n{}", c.text);
        *seen.entry(o.name()).or_insert(0) += 1;
    }
    let _ = std::panic::take_hook();
    let _ = std::fs::remove_dir_all(&scratch);
    println!("{seen:?}");
    for must in ["refused (located)", "ok", "impossible plan"] {
        assert!(seen.contains_key(must), "no case ended as {must}: {seen:?}");
    }
}

#[test]
fn bad_command_line_values_and_unreadable_inputs_exit_2_naming_what_is_wrong() {
    let bin = env!("CARGO_BIN_EXE_trainsim");
    let run = |args: &[&str]| {
        let o = std::process::Command::new(bin).args(args).output().unwrap();
        (o.status.code(), String::from_utf8_lossy(&o.stderr).into_owned())
    };
    let scenario = Path::new(env!("CARGO_MANIFEST_DIR")).join("scenarios/llama3-8b-h100-64.toml");
    let (code, err) = run(&["run", "--no-charts", "-q", "--seed", "-1", scenario.to_str().unwrap()]);
    assert_eq!(code, Some(2), "{err}");
    assert!(err.contains("--seed") && err.contains("-1"), "{err}");
    // a valid file the simulation refuses as too large is the input's fault too
    let (code, err) = run(&[
        "run",
        "--no-charts",
        "-q",
        "--set",
        "training.global_batch_size=4000000",
        scenario.to_str().unwrap(),
    ]);
    assert_eq!(code, Some(2), "{err}");
    assert!(err.contains("simulation.max_operations"), "{err}");
    let bad = std::env::temp_dir().join(format!("trainsim-robust-{}.json", std::process::id()));
    std::fs::write(&bad, "not json").unwrap();
    let (code, err) = run(&["plot", bad.to_str().unwrap()]);
    assert_eq!(code, Some(2), "{err}");
    assert!(err.contains(bad.to_str().unwrap()), "{err}");
    let _ = std::fs::remove_file(&bad);
}

#[cfg(unix)]
#[test]
fn validate_skips_fifos_and_does_not_follow_links_to_parent_folders() {
    let dir = std::env::temp_dir().join(format!("trainsim-validate-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(dir.join("sub")).unwrap();
    std::os::unix::fs::symlink(&dir, dir.join("sub/up")).unwrap();
    let fifo = dir.join("pipe.toml");
    let made = std::process::Command::new("mkfifo")
        .arg(&fifo)
        .status()
        .is_ok_and(|s| s.success());
    let t = std::time::Instant::now();
    let files = trainsim::cli::validate::scenario_files(&dir).unwrap();
    assert!(t.elapsed().as_secs_f64() < 5.0);
    assert!(files.is_empty(), "{files:?}");
    if made {
        let o = std::process::Command::new(env!("CARGO_BIN_EXE_trainsim"))
            .args(["validate", fifo.to_str().unwrap()])
            .output()
            .unwrap();
        assert_eq!(o.status.code(), Some(2), "{}", String::from_utf8_lossy(&o.stderr));
    }
    let _ = std::fs::remove_dir_all(&dir);
}
