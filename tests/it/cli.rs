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
            "scale_out_efficiency = 0.9\nall_gather_algorithm = \"nvls\"",
            &[
                "cluster.network.all_gather_algorithm",
                "\"auto\", \"ring\", \"hierarchical\"",
            ],
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
