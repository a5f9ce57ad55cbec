//! Sweep robustness: merge refuses shards that do not make one whole sweep, resume starts
//! over when the sweep changed, oversized grids and filters are refused, `search` with no
//! fitting plan and `-j` out of range fail clearly, and a killed sweep resumes to the same
//! bytes.

use crate::repo;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

fn tmp(name: &str) -> PathBuf {
    let d = std::env::temp_dir().join(format!("trainsim-robust-{name}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&d);
    std::fs::create_dir_all(&d).unwrap();
    d
}

/// An 8-point sweep (TP x global batch) of the shipped Llama-3 8B scenario; `batches`
/// are the batch axis's values.
fn sweep_file(dir: &Path, batches: &str) -> PathBuf {
    let text = format!(
        r#"name = "robust"
base = "{}"
unset = ["parallel.dp"]
[[axis]]
field = "parallel.tp"
values = [1, 2, 4, 8]
[[axis]]
field = "training.global_batch_size"
values = [{batches}]
"#,
        repo("scenarios/llama3-8b-h100-64.toml").display()
    );
    let p = dir.join("sweep.toml");
    std::fs::write(&p, text).unwrap();
    p
}

fn trainsim(args: &[&str], paths: &[&Path]) -> (Option<i32>, String, String) {
    let out = Command::new(env!("CARGO_BIN_EXE_trainsim"))
        .args(args)
        .args(paths)
        .output()
        .unwrap();
    (
        out.status.code(),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

/// Runs a sweep to completion (exit 0) with `extra` flags; returns its stdout and stderr.
fn sweep(file: &Path, out: &Path, extra: &[&str]) -> (String, String) {
    let mut args = vec!["sweep", "--chart", "pareto", "--out", out.to_str().unwrap()];
    args.extend_from_slice(extra);
    let (code, so, se) = trainsim(&args, &[file]);
    assert_eq!(code, Some(0), "{so}{se}");
    (so, se)
}

fn read(p: &Path) -> String {
    std::fs::read_to_string(p).unwrap_or_else(|e| panic!("{}: {e}", p.display()))
}

fn outputs(dir: &Path) -> (String, String) {
    (read(&dir.join("sweep.csv")), read(&dir.join("sweep.jsonl")))
}

/// Copies a shard's CSV and meta file into `to`.
fn copy_shard(from: &Path, to: &Path, stem: &str) -> PathBuf {
    std::fs::create_dir_all(to).unwrap();
    for ext in ["csv", "meta.json"] {
        std::fs::copy(from.join(format!("{stem}.{ext}")), to.join(format!("{stem}.{ext}"))).unwrap();
    }
    to.join(format!("{stem}.csv"))
}

/// `merge` joins shards of one sweep into the unsharded file, and refuses, with exit
/// status 2 and the file named, shards of another sweep or split, a shard twice or
/// missing, and a shard cut short (mid-row, or rows lost).
#[test]
fn merge_refuses_shards_that_are_not_one_whole_sweep() {
    let d = tmp("merge");
    let file = sweep_file(&d, "64, 128");
    sweep(&file, &d.join("full"), &[]);
    let a = d.join("a");
    for s in ["0/2", "1/2"] {
        sweep(&file, &a, &["--shard", s]);
    }
    let (s0, s1) = (a.join("sweep.shard-0-of-2.csv"), a.join("sweep.shard-1-of-2.csv"));
    let merged = d.join("merged.csv");
    let (code, _, err) = trainsim(&["merge", "--out", merged.to_str().unwrap()], &[&s1, &s0]);
    assert_eq!(code, Some(0), "{err}");
    assert_eq!(read(&merged), read(&d.join("full/sweep.csv")));

    // another sweep (other batch sizes), and the same sweep with a --set override
    let other_dir = d.join("other");
    std::fs::create_dir_all(&other_dir).unwrap();
    let other = sweep_file(&other_dir, "64, 256");
    sweep(&other, &d.join("b"), &["--shard", "1/2"]);
    sweep(
        &file,
        &d.join("c"),
        &["--shard", "1/2", "--set", "training.seq_length=4096"],
    );
    sweep(&file, &d.join("e"), &["--shard", "1/3"]);
    // shard 1/2 with its last row cut in half, and with its last row removed
    let cut = copy_shard(&a, &d.join("cut"), "sweep.shard-1-of-2");
    let text = read(&cut);
    std::fs::write(&cut, &text[..text.len() - 20]).unwrap();
    let cut_nl = copy_shard(&a, &d.join("cutnl"), "sweep.shard-1-of-2");
    let last = text.trim_end().rfind('\n').unwrap() + 1;
    std::fs::write(&cut_nl, format!("{}\n", &text[..last + 12])).unwrap();
    let short = copy_shard(&a, &d.join("short"), "sweep.shard-1-of-2");
    let lines: Vec<&str> = text.lines().collect();
    std::fs::write(&short, lines[..lines.len() - 1].join("\n") + "\n").unwrap();
    let other_shard = d.join("b/sweep.shard-1-of-2.csv");
    let set_shard = d.join("c/sweep.shard-1-of-2.csv");
    let three = d.join("e/sweep.shard-1-of-3.csv");
    let cases: [(&[&Path], &Path, &str); 8] = [
        (&[&s0, &other_shard], &other_shard, "different sweeps"),
        (&[&s0, &set_shard], &set_shard, "different sweeps"),
        (&[&s0, &three], &three, "different splits"),
        (&[&s0, &s0, &s1], &s0, "given twice"),
        (
            &[&s0],
            &s0,
            "shard 1/2 of this sweep (sweep.shard-1-of-2.csv) is missing",
        ),
        (&[&s0, &cut], &cut, "cut short"),
        (&[&s0, &cut_nl], &cut_nl, "the header has"),
        (&[&s0, &short], &short, "the file is incomplete"),
    ];
    for (inputs, named, want) in cases {
        let (code, _, err) = trainsim(&["merge", "--out", d.join("m.csv").to_str().unwrap()], inputs);
        assert_eq!(code, Some(2), "{want}: {err}");
        assert!(err.contains(want), "expected {want:?} in {err}");
        assert!(err.contains(named.to_str().unwrap()), "{named:?} not named in {err}");
    }
}

/// Turns a finished sweep's files back into the partial files of an interrupted run with
/// `rows` complete rows.
fn interrupt(dir: &Path, rows: usize) {
    let (csv, jsonl) = outputs(dir);
    let c: Vec<&str> = csv.lines().take(rows + 1).collect();
    let j: Vec<&str> = jsonl.lines().take(rows).collect();
    std::fs::write(dir.join("sweep.csv.partial"), c.join("\n") + "\n").unwrap();
    std::fs::write(dir.join("sweep.jsonl.partial"), j.join("\n") + "\n").unwrap();
    std::fs::rename(dir.join("sweep.meta.json"), dir.join("sweep.meta.json.partial")).unwrap();
    for f in ["sweep.csv", "sweep.jsonl"] {
        std::fs::remove_file(dir.join(f)).unwrap();
    }
}

/// Resume keeps the rows of an interrupted run only if the sweep is the same: a changed
/// sweep file (same columns, other values) or other --set overrides start over, with a
/// warning, and give the files of a fresh run.
#[test]
fn resume_starts_over_when_the_sweep_changed() {
    let d = tmp("resume-changed");
    let file = sweep_file(&d, "64, 128");
    let p = d.join("p");
    sweep(&file, &p, &[]);
    let first = outputs(&p);
    interrupt(&p, 3);
    let (so, se) = sweep(&file, &p, &[]);
    assert!(so.contains("resumed after 3 finished points"), "{so}{se}");
    assert!(!se.contains("changed"), "{se}");
    assert_eq!(outputs(&p), first);

    // the sweep file changes between the interruption and the rerun
    interrupt(&p, 3);
    sweep_file(&d, "64, 256");
    let fresh = d.join("fresh");
    sweep(&file, &fresh, &[]);
    let (so, se) = sweep(&file, &p, &[]);
    assert!(
        se.contains("sweep file changed since the interrupted run; starting over"),
        "{se}"
    );
    assert!(!so.contains("resumed"), "{so}");
    assert_eq!(outputs(&p), outputs(&fresh));

    // same file, another --set
    interrupt(&p, 3);
    let set = ["--set", "training.seq_length=4096"];
    let fresh_set = d.join("fresh-set");
    sweep(&file, &fresh_set, &set);
    let (so, se) = sweep(&file, &p, &set);
    assert!(se.contains("starting over") && !so.contains("resumed"), "{so}{se}");
    assert_eq!(outputs(&p), outputs(&fresh_set));
}

/// A grid of 2^64 points is refused before anything is built (it once wrapped to 0
/// points), as is a grid above --max-points; 2 is the exit status.
#[test]
fn oversized_grids_are_refused_before_expansion() {
    let d = tmp("huge");
    let axes: String = [
        "parallel.tp",
        "parallel.pp",
        "parallel.micro_batch_size",
        "training.global_batch_size",
    ]
    .iter()
    .map(|f| format!("[[axis]]\nfield = \"{f}\"\nrange = {{ start = 1, stop = 65536, step = 1 }}\n"))
    .collect();
    let base = repo("scenarios/llama3-8b-h100-64.toml");
    let huge = d.join("huge.toml");
    std::fs::write(&huge, format!("base = \"{}\"\n{axes}", base.display())).unwrap();
    let spec = trainsim::sweep::SweepSpec::load(&huge).unwrap();
    let e = spec.points().unwrap_err().to_string();
    assert!(
        e.contains("18446744073709551616 points") && e.contains("--max-points"),
        "{e}"
    );
    let (code, _, err) = trainsim(&["sweep", "--quiet", "--out", d.join("o").to_str().unwrap()], &[&huge]);
    assert_eq!(code, Some(2), "{err}");
    assert!(
        err.contains("huge.toml") && err.contains("more than the limit of 10000000"),
        "{err}"
    );

    let small = sweep_file(&d, "64, 128");
    let o = d.join("o");
    let args = ["sweep", "--quiet", "--max-points", "7", "--out", o.to_str().unwrap()];
    let (code, _, err) = trainsim(&args, &[&small]);
    assert_eq!(code, Some(2), "{err}");
    assert!(err.contains("8 points (4 x 2), more than the limit of 7"), "{err}");
}

/// A filter of 100,000 nested parentheses is a clear error (exit 2), not a stack overflow.
#[test]
fn deeply_nested_filters_are_refused() {
    let d = tmp("nested");
    let file = sweep_file(&d, "64, 128");
    for (n, want) in [
        (100_000, "more than the limit of 1000"),
        (65, "nested more than 64 deep"),
    ] {
        let filter = format!("{}tp{} <= 8", "(".repeat(n), ")".repeat(n));
        let text = read(&file).replace("unset =", &format!("filters = [\"{filter}\"]\nunset ="));
        let p = d.join("nested.toml");
        std::fs::write(&p, text).unwrap();
        let (code, _, err) = trainsim(&["sweep", "--quiet", "--out", d.join("o").to_str().unwrap()], &[&p]);
        assert_eq!(code, Some(2), "{err}");
        assert!(err.contains("nested.toml") && err.contains(want), "{want}: {err}");
    }
}

/// A search where no plan fits says so, with the count and the reasons, and exits 1.
#[test]
fn search_with_no_fitting_plan_fails_clearly() {
    let d = tmp("nofit");
    let sc = d.join("huge-on-8.toml");
    std::fs::write(
        &sc,
        r#"name = "gpt3-on-8"
[cluster]
num_gpus = 8
gpus_per_node = 8
[cluster.gpu]
preset = "A100-80GB"
[model]
preset = "gpt3-175b"
[parallel]
tp = 8
pp = 1
dp = 1
[training]
global_batch_size = 64
seq_length = 2048
"#,
    )
    .unwrap();
    let (code, out, err) = trainsim(&["search", "--out", d.join("o").to_str().unwrap()], &[&sc]);
    assert_eq!(code, Some(1), "{out}{err}");
    assert!(
        err.contains("huge-on-8.toml") && err.contains("candidate plans is valid and fits"),
        "{err}"
    );
    assert!(err.contains("out of memory (the smallest needs"), "{err}");
    assert!(!out.contains("rank"), "an empty table was printed: {out}");
}

/// `-j` outside 1..=1024 is refused by name, for sweep and search.
#[test]
fn thread_counts_out_of_range_are_refused() {
    let d = tmp("threads");
    let file = sweep_file(&d, "64, 128");
    let sc = repo("scenarios/llama3-8b-h100-64.toml");
    for (cmd, j, input) in [
        ("sweep", "100000", &file),
        ("search", "100000", &sc),
        ("sweep", "0", &file),
    ] {
        let (code, _, err) = trainsim(&[cmd, "-j", j, "--out", d.join("o").to_str().unwrap()], &[input]);
        assert_eq!(code, Some(2), "{cmd} -j {j}: {err}");
        assert!(
            err.contains(&format!("-j/--threads {j}")) && err.contains("1 to 1024"),
            "{err}"
        );
    }
}

/// A sweep killed (SIGKILL) once rows reached its partial files resumes to the bytes of an
/// uninterrupted run, CSV and JSON Lines; so does one whose partial CSV ends mid-row.
#[test]
fn killed_sweep_resumes_to_the_same_bytes() {
    let d = tmp("kill");
    let file = sweep_file(&d, "1024, 2048");
    sweep(&file, &d.join("full"), &[]);
    let full = outputs(&d.join("full"));
    let b = d.join("b");
    let mut child = Command::new(env!("CARGO_BIN_EXE_trainsim"))
        .args([
            "sweep",
            "--quiet",
            "-j",
            "1",
            "--chart",
            "pareto",
            "--out",
            b.to_str().unwrap(),
        ])
        .arg(&file)
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let part = b.join("sweep.csv.partial");
    let started = std::time::Instant::now();
    // complete lines (the writer may be cut between a row's pieces); a row counts once
    // both partial files hold it, as resume requires
    let complete = |p: &std::path::Path| std::fs::read_to_string(p).map_or(0, |t| t.matches('\n').count());
    loop {
        let rows = complete(&part)
            .saturating_sub(1)
            .min(complete(&b.join("sweep.jsonl.partial")));
        if rows >= 1 {
            break;
        }
        assert!(
            child.try_wait().unwrap().is_none(),
            "the sweep ended before any row was polled"
        );
        assert!(started.elapsed().as_secs() < 120, "no row after 120 s");
        std::thread::sleep(std::time::Duration::from_millis(2));
    }
    child.kill().unwrap(); // SIGKILL
    child.wait().unwrap();
    assert!(
        part.exists() && !b.join("sweep.csv").exists(),
        "the sweep finished before it was killed"
    );
    let c = d.join("c");
    std::fs::create_dir_all(&c).unwrap();
    for f in ["sweep.csv.partial", "sweep.jsonl.partial", "sweep.meta.json.partial"] {
        std::fs::copy(b.join(f), c.join(f)).unwrap();
    }
    let (so, se) = sweep(&file, &b, &[]);
    assert!(so.contains("resumed after"), "{so}{se}");
    assert_eq!(outputs(&b), full);

    // the partial CSV cut in the middle of its last row
    let text = read(&c.join("sweep.csv.partial"));
    let last_start = text.trim_end().rfind('\n').unwrap() + 1;
    let mid = last_start + (text.len() - last_start) / 2;
    std::fs::write(c.join("sweep.csv.partial"), &text[..mid]).unwrap();
    sweep(&file, &c, &[]);
    assert_eq!(outputs(&c), full);
}
