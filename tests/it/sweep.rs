use crate::repo;
use std::path::{Path, PathBuf};
use trainsim::sweep::{merge_csv, run_sweep, SweepOptions, SweepSpec};

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
