use crate::scenario;
use serde_json::Value;
use std::collections::BTreeMap;
use std::process::Command;
use trainsim::report::{markdown::markdown, trace::chrome_trace};
use trainsim::simulation::run::{run_traced, RunInput};
use trainsim::simulation::trace::{default_trace_stages, TraceRequest};
use trainsim::simulation::RunResult;

/// A 1F1B pipeline, tp = 1, dp = 1, small model (as in closed_forms.rs): `pp` stages of 4
/// layers, `m` micro-batches.
fn pipeline(pp: u32, m: u32) -> String {
    format!(
        r#"
name = "trace-test"
[cluster]
num_gpus = {pp}
gpus_per_node = 1
[cluster.gpu]
preset = "A100-80GB"
[model]
num_layers = {layers}
hidden_size = 4096
num_heads = 32
ffn_hidden_size = 16384
vocab_size = 64
[parallel]
tp = 1
pp = {pp}
dp = 1
schedule = "1f1b"
[training]
global_batch_size = {m}
seq_length = 2048
"#,
        layers = 4 * pp
    )
}

/// A plan with every stream busy: TP with SP, DP with ZeRO-1, PP.
const MIXED: &str = r#"
name = "trace-mixed"
[cluster]
num_gpus = 32
gpus_per_node = 8
[cluster.gpu]
preset = "H100-SXM"
[model]
preset = "llama2-7b"
[parallel]
tp = 2
pp = 4
dp = 4
zero_stage = 1
recompute = "selective"
[training]
global_batch_size = 32
seq_length = 2048
"#;

fn input(src: &str) -> RunInput {
    let mut i = scenario(src).input;
    i.iterations = 3;
    i.warmup_iterations = 1;
    i
}

/// Runs `input` traced, returns the result, the trace JSON parsed, and the request.
fn traced(input: &RunInput, req: &TraceRequest) -> (RunResult, Value) {
    let (r, t) = run_traced(input, Some(req)).expect("simulates");
    let bytes = chrome_trace(&r, &t.expect("trace requested"));
    let v: Value = serde_json::from_slice(&bytes).expect("trace.json is valid JSON");
    (r, v)
}

fn events(v: &Value) -> &Vec<Value> {
    v["traceEvents"].as_array().expect("traceEvents array")
}

fn complete_events(v: &Value) -> Vec<&Value> {
    events(v).iter().filter(|e| e["ph"] == "X").collect()
}

fn f(e: &Value, k: &str) -> f64 {
    e[k].as_f64().unwrap_or_else(|| panic!("{k} missing in {e}"))
}

fn u(e: &Value, k: &str) -> u64 {
    e[k].as_u64().unwrap_or_else(|| panic!("{k} missing in {e}"))
}

/// Operations of `stages` in `iterations`, counted on the workload graph itself.
fn ops_in_graph(input: &RunInput, stages: &[u32], iterations: &[u32]) -> usize {
    let w = input.workload(&input.placement(), input.iterations);
    w.ops
        .iter()
        .filter(|o| stages.contains(&o.rank) && iterations.contains(&o.iteration))
        .count()
}

/// Structure: valid JSON, one process per stage and one thread per stream named, exactly
/// one complete event per simulated op of the exported stages and iterations, every
/// duration >= 0, every start within its iteration, no overlap on a (pid, tid).
#[test]
fn trace_has_one_event_per_op_within_its_iteration_and_no_overlap() {
    for (src, stages) in [(pipeline(4, 8), vec![0, 1, 2, 3]), (MIXED.to_string(), vec![0, 3])] {
        let inp = input(&src);
        let its = vec![0, 1, 2];
        let req = TraceRequest {
            stages: stages.clone(),
            iterations: Some(its.clone()),
        };
        let (r, v) = traced(&inp, &req);
        assert_eq!(v["displayTimeUnit"], "ms");
        let ev = complete_events(&v);
        assert_eq!(ev.len(), ops_in_graph(&inp, &stages, &its), "{src}");

        // metadata: a named process per exported stage, a named thread per stream
        let meta: Vec<&Value> = events(&v).iter().filter(|e| e["ph"] == "M").collect();
        for &s in &stages {
            assert!(meta.iter().any(|e| e["name"] == "process_name"
                && u(e, "pid") == s as u64
                && e["args"]["name"] == format!("stage {s}")));
            for (tid, name) in [(0, "compute"), (1, "TP comm"), (2, "PP comm"), (3, "DP comm")] {
                assert!(meta.iter().any(|e| e["name"] == "thread_name"
                    && u(e, "pid") == s as u64
                    && u(e, "tid") == tid
                    && e["args"]["name"] == name));
            }
        }

        // iteration bounds: consecutive, and the measured ones match the step times
        let bounds: BTreeMap<u64, (f64, f64)> = v["otherData"]["iterations"]
            .as_array()
            .unwrap()
            .iter()
            .map(|i| (u(i, "iteration"), (f(i, "start_us"), f(i, "end_us"))))
            .collect();
        assert_eq!(bounds.keys().copied().collect::<Vec<_>>(), vec![0, 1, 2]);
        assert_eq!(bounds[&0].0, 0.0);
        for i in 1..3u64 {
            assert_eq!(bounds[&i].0, bounds[&(i - 1)].1);
            let step_us = r.step_times_s[i as usize - 1] * 1e6;
            assert!((bounds[&i].1 - bounds[&i].0 - step_us).abs() < 1e-3, "iteration {i}");
        }

        let mut per_stream: BTreeMap<(u64, u64), Vec<(f64, f64)>> = BTreeMap::new();
        for e in &ev {
            let (ts, dur) = (f(e, "ts"), f(e, "dur"));
            assert!(dur >= 0.0, "{e}");
            let it = u(&e["args"], "iteration");
            let (lo, hi) = bounds[&it];
            assert!(
                ts >= lo - 1e-6 && ts <= hi + 1e-6,
                "{e} starts outside iteration {it} [{lo}, {hi}]"
            );
            let pid = u(e, "pid");
            assert!(stages.contains(&(pid as u32)), "{e}");
            assert!(u(e, "tid") < 4);
            assert!(e["name"].as_str().is_some_and(|n| !n.is_empty()));
            match e["cat"].as_str().unwrap() {
                "forward" | "backward" | "recompute" | "optimizer" => assert!(e["args"]["flops"].is_number(), "{e}"),
                "tp_comm" | "dp_comm" | "pp_comm" => assert!(f(&e["args"], "bytes") > 0.0, "{e}"),
                "sync" => {}
                c => panic!("unknown category {c}"),
            }
            per_stream.entry((pid, u(e, "tid"))).or_default().push((ts, ts + dur));
        }
        for (key, mut spans) in per_stream {
            spans.sort_by(|a, b| a.0.total_cmp(&b.0).then(a.1.total_cmp(&b.1)));
            for pair in spans.windows(2) {
                assert!(
                    pair[1].0 >= pair[0].1 - 1e-6,
                    "overlap on (pid, tid) {key:?}: {:?} then {:?}",
                    pair[0],
                    pair[1]
                );
            }
        }
    }
}

/// Pipeline sends counted in closed form: the first stage sends m activations, the last m
/// gradients, the middle ones both; one synchronisation and one optimizer step per stage.
#[test]
fn trace_counts_pipeline_sends_in_closed_form() {
    let (pp, m) = (4u32, 8u32);
    let inp = input(&pipeline(pp, m));
    let (_, v) = traced(&inp, &TraceRequest::default_for(pp));
    let ev = complete_events(&v);
    for s in 0..pp as u64 {
        let count = |name: &str| ev.iter().filter(|e| u(e, "pid") == s && e["name"] == name).count() as u32;
        let acts = if s + 1 < pp as u64 { m } else { 0 };
        let grads = if s > 0 { m } else { 0 };
        assert_eq!(count("send activations"), acts, "stage {s}");
        assert_eq!(count("send gradients"), grads, "stage {s}");
        assert_eq!(count("gradient-norm sync"), 1);
        assert_eq!(count("optimizer step"), 1);
        // default request: the last iteration only
        assert!(ev.iter().all(|e| u(&e["args"], "iteration") == 2));
    }
}

/// Default stages: all when pp <= 8, else first, middle, last.
#[test]
fn default_trace_stages_are_all_or_first_middle_last() {
    assert_eq!(default_trace_stages(1), vec![0]);
    assert_eq!(default_trace_stages(8), (0..8).collect::<Vec<_>>());
    assert_eq!(default_trace_stages(16), vec![0, 8, 15]);
    assert_eq!(default_trace_stages(9), vec![0, 4, 8]);
}

/// 1F1B order read back from the trace: on every stage, (pp - stage - 1) warm-up forwards,
/// then one forward and one backward alternating, then the cool-down backwards.
#[test]
fn one_f_one_b_order_in_the_trace() {
    let (pp, m) = (4u32, 8u32);
    let inp = input(&pipeline(pp, m));
    let (_, v) = traced(&inp, &TraceRequest::default_for(pp));
    let ev = complete_events(&v);
    for stage in 0..pp {
        // compute-stream passes in time order (the sort is stable: program order on ties)
        let mut compute: Vec<&&Value> = ev
            .iter()
            .filter(|e| u(e, "pid") == stage as u64 && u(e, "tid") == 0 && e["args"]["microbatch"].is_u64())
            .collect();
        compute.sort_by(|a, b| f(a, "ts").total_cmp(&f(b, "ts")));
        let mut passes: Vec<(bool, u64)> = Vec::new();
        for e in compute {
            let forward = match e["cat"].as_str().unwrap() {
                "forward" => true,
                "backward" | "recompute" => false,
                other => panic!("unexpected compute-stream category {other}"),
            };
            let p = (forward, u(&e["args"], "microbatch"));
            if passes.last() != Some(&p) {
                passes.push(p);
            }
        }
        let warmup = (pp - stage - 1) as u64;
        let mut want: Vec<(bool, u64)> = (0..warmup).map(|i| (true, i)).collect();
        for k in 0..m as u64 - warmup {
            want.push((true, warmup + k));
            want.push((false, k));
        }
        want.extend((m as u64 - warmup..m as u64).map(|i| (false, i)));
        assert_eq!(passes, want, "stage {stage}: (forward?, micro-batch) in time order");
    }
}

/// report.md: the headline step time, the tables with units, the chart links; written by
/// write_all beside the PNGs it links to.
#[test]
fn report_md_has_step_time_tables_and_image_links() {
    let inp = input(MIXED);
    let r = trainsim::simulation::run(&inp).unwrap();
    let md = markdown(&r);
    assert!(md.contains(&format!("| step time | {:.3} | s", r.step_time_s)), "{md}");
    for needle in [
        "## Time per step",
        "| category | time per step (s) | share of step |",
        "## Memory per GPU",
        "| consumer | GiB | share of HBM |",
        "## Placement",
        "![",
    ] {
        assert!(md.contains(needle), "missing {needle:?}");
    }
    let dir = std::env::temp_dir().join(format!("trainsim-report-{}", std::process::id()));
    let written = trainsim::report::write_all(&r, &dir).unwrap();
    assert!(written.contains(&dir.join("report.md")));
    let on_disk = std::fs::read_to_string(dir.join("report.md")).unwrap();
    assert_eq!(on_disk, md);
    for png in ["breakdown.png", "timeline.png", "memory.png"] {
        assert!(md.contains(&format!("]({png})")), "no link to {png}");
        assert!(dir.join(png).is_file(), "{png} not written beside report.md");
    }
    let _ = std::fs::remove_dir_all(&dir);
}

/// `trainsim run --trace-stages` writes trace.json of those stages; a stage that does not
/// exist is a usage error (exit 2).
#[test]
fn cli_writes_trace_json_for_chosen_stages() {
    let dir = std::env::temp_dir().join(format!("trainsim-trace-cli-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let sc = dir.join("mixed.toml");
    std::fs::write(&sc, MIXED).unwrap();
    let out = dir.join("out");
    let status = Command::new(env!("CARGO_BIN_EXE_trainsim"))
        .args(["run", "--quiet", "--no-charts", "--trace-stages", "0,3", "--out"])
        .arg(&out)
        .arg(&sc)
        .status()
        .unwrap();
    assert!(status.success());
    let v: Value = serde_json::from_str(&std::fs::read_to_string(out.join("trace.json")).unwrap()).unwrap();
    let pids: std::collections::BTreeSet<u64> = complete_events(&v).iter().map(|e| u(e, "pid")).collect();
    assert_eq!(pids.into_iter().collect::<Vec<_>>(), vec![0, 3]);
    assert!(!std::path::Path::new(&format!("{}.tmp", out.join("trace.json").display())).exists());

    let bad = Command::new(env!("CARGO_BIN_EXE_trainsim"))
        .args(["run", "--quiet", "--no-charts", "--trace-stages", "4", "--out"])
        .arg(&out)
        .arg(&sc)
        .output()
        .unwrap();
    assert_eq!(bad.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&bad.stderr).contains("stage 4 does not exist"));
    let _ = std::fs::remove_dir_all(&dir);
}
