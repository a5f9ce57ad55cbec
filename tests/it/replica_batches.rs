//! `parallel.replica_micro_batches`: a step's micro-batches shared unevenly among the
//! data-parallel replicas. Each replica runs its own count (every replica simulated), the
//! step is the slowest replica's, `"balanced"` gives the faster GPUs more and beats the
//! even split on a mixed cluster, and bad splits get located errors.

use crate::scenario;
use std::path::Path;
use trainsim::scenario::Scenario;
use trainsim::simulation::{run, run_summary, RunResult};

/// 32 GPUs in nodes of `gpus` (8 each), Llama-3 8B, TP2 PP2 DP8, `gbs` sequences of 4,096
/// tokens; `extra` goes under `[parallel]`. Replicas 0-3 of each stage sit on the first
/// and third nodes' type, replicas 4-7 on the second and fourth's.
fn cluster(gpus: [&str; 4], gbs: u32, extra: &str) -> String {
    let mut s = "name = \"split\"\n[cluster]\nnum_gpus = 32\ngpus_per_node = 8\n".to_string();
    for g in gpus {
        s.push_str(&format!(
            "[[cluster.groups]]\nnum_gpus = 8\n[cluster.groups.gpu]\npreset = \"{g}\"\n"
        ));
    }
    s + &format!(
        "[model]\npreset = \"llama3-8b\"\n[parallel]\ntp = 2\npp = 2\ndp = 8\nmicro_batch_size = 1\n{extra}\n\
         [training]\nglobal_batch_size = {gbs}\nseq_length = 4096\n"
    )
}

const MIXED: [&str; 4] = ["H100-SXM", "A100-80GB", "H100-SXM", "A100-80GB"];

fn step(src: &str) -> RunResult {
    run_summary(&scenario(src).input).expect("runs")
}

fn err(src: &str) -> String {
    Scenario::from_source(src, Path::new("split.toml"))
        .unwrap_err()
        .to_string()
}

/// On alternating H100 and A100 nodes the even split (8 micro-batches each) runs at the
/// A100's pace. `"balanced"` weighs each replica by its GPU's compute per micro-batch and
/// gives the H100 replicas 12 and the A100 ones 4: the step is at least 30% shorter, beats
/// the neighbouring splits 13/3 and 11/5, and is within 3% of the slower of the two halves
/// run alone (all-H100 with 12 micro-batches each, all-A100 with 4: each half's pace).
#[test]
fn a_balanced_micro_batch_split_gives_the_faster_replicas_more_and_beats_the_even_split() {
    let even = step(&cluster(MIXED, 64, ""));
    let balanced = step(&cluster(MIXED, 64, "replica_micro_batches = \"balanced\""));
    assert!(
        balanced.plan.ends_with("batches=12+12+12+12+4+4+4+4"),
        "{}",
        balanced.plan
    );
    assert_eq!(balanced.simulation.replicas_simulated, 8);
    assert!(
        balanced.step_time_s < 0.7 * even.step_time_s,
        "balanced {} s, even {} s",
        balanced.step_time_s,
        even.step_time_s
    );
    for (h, a) in [(13, 3), (11, 5)] {
        let list = format!("replica_micro_batches = [{h}, {h}, {h}, {h}, {a}, {a}, {a}, {a}]");
        let other = step(&cluster(MIXED, 64, &list));
        assert!(
            balanced.step_time_s < other.step_time_s,
            "{h}/{a}: {} s vs balanced {} s",
            other.step_time_s,
            balanced.step_time_s
        );
    }
    let h100 = step(&cluster(["H100-SXM"; 4], 12 * 8, ""));
    let a100 = step(&cluster(["A100-80GB"; 4], 4 * 8, ""));
    let pace = h100.step_time_s.max(a100.step_time_s);
    assert!(
        (balanced.step_time_s / pace - 1.0).abs() < 0.03,
        "balanced {} s, all-H100 x12 {} s, all-A100 x4 {} s",
        balanced.step_time_s,
        h100.step_time_s,
        a100.step_time_s
    );
    // the batch is the same: tokens per step do not change, throughput follows the step
    assert_eq!(balanced.tokens_per_step, even.tokens_per_step);
    let speedup = balanced.tokens_per_s / even.tokens_per_s;
    assert!((speedup - even.step_time_s / balanced.step_time_s).abs() < 1e-9);
}

/// On one GPU type, replicas of 10 and 6 micro-batches: the step is the 10-replica's
/// (that of an even split of 10 each, within 2%), the 6-replicas wait at the gradient
/// reduction, and a list of equal counts is the even split itself.
#[test]
fn the_step_is_the_slowest_replicas_and_an_even_list_is_the_default() {
    let h100 = ["H100-SXM"; 4];
    let uneven = step(&cluster(
        h100,
        64,
        "replica_micro_batches = [10, 6, 10, 6, 10, 6, 10, 6]",
    ));
    let ten = step(&cluster(h100, 80, ""));
    assert!(
        (uneven.step_time_s / ten.step_time_s - 1.0).abs() < 0.02,
        "{} vs {}",
        uneven.step_time_s,
        ten.step_time_s
    );
    let wait = uneven
        .breakdown
        .get(trainsim::simulation::breakdown::Category::StragglerWait);
    assert!(wait > 0.1 * uneven.step_time_s, "wait {wait} s");
    let even = run(&scenario(&cluster(h100, 64, "")).input).unwrap();
    let listed = run(&scenario(&cluster(h100, 64, "replica_micro_batches = [8, 8, 8, 8, 8, 8, 8, 8]")).input).unwrap();
    assert_eq!(
        serde_json::to_string(&listed).unwrap(),
        serde_json::to_string(&even).unwrap()
    );
    assert_eq!(listed.simulation.replicas_simulated, 1);
}

/// Splits that cannot be run are refused with the file, line, field and what is allowed;
/// one that would change the replicas' cross-replica collectives (expert parallelism
/// spanning replicas) is refused when the run is built.
#[test]
fn bad_micro_batch_splits_get_located_errors() {
    let h100 = ["H100-SXM"; 4];
    for (value, want) in [
        ("[8, 8, 8, 8, 8, 8, 8]", "dp = 8 counts"),
        ("[16, 0, 8, 8, 8, 8, 8, 8]", "at least 1"),
        ("[9, 8, 8, 8, 8, 8, 8, 8]", "summing to the step's 64 micro-batches"),
        ("\"fastest\"", "\"even\", \"balanced\""),
    ] {
        let e = err(&cluster(h100, 64, &format!("replica_micro_batches = {value}")));
        assert!(
            e.contains("split.toml:28:") && e.contains("parallel.replica_micro_batches") && e.contains(want),
            "{value}: {e}"
        );
    }
    // the interleaved schedule needs at least pp micro-batches per replica; one
    // representative cannot stand for replicas that differ
    for (extra, want) in [
        (
            "schedule = \"interleaved\"\nvirtual_stages = 2\nreplica_micro_batches = [15, 1, 8, 8, 8, 8, 8, 8]",
            ["a replica of 1 micro-batches", "interleaved"],
        ),
        (
            "replica_micro_batches = [10, 6, 10, 6, 10, 6, 10, 6]\n[simulation]\nranks = \"representative\"",
            ["simulation.ranks", "different numbers of micro-batches"],
        ),
    ] {
        let e = err(&cluster(h100, 64, extra));
        assert!(want.iter().all(|w| e.contains(w)), "{e}");
    }
    // Mixtral's EP8 spans four TP2 replicas: their all-to-alls would no longer pair up
    let src = std::fs::read_to_string(crate::repo("scenarios/mixtral-8x7b-h100-64.toml")).unwrap();
    let src = src.replace(
        "micro_batch_size = 1\n",
        "micro_batch_size = 1\nreplica_micro_batches = [33, 31, 32, 32, 32, 32, 32, 32]\n",
    );
    let e = run_summary(&scenario(&src).input).unwrap_err().to_string();
    assert!(
        e.contains("not supported") && e.contains("replica_micro_batches") && e.contains("hang"),
        "{e}"
    );
    // ZeRO-3 gathers the parameters for every micro-batch: replicas of other counts would
    // call the all-gathers a different number of times (a real run hangs)
    let e = run_summary(
        &scenario(&cluster(
            h100,
            64,
            "zero_stage = 3\nreplica_micro_batches = [10, 6, 10, 6, 10, 6, 10, 6]",
        ))
        .input,
    )
    .unwrap_err()
    .to_string();
    assert!(
        e.contains("ZeRO-3") && e.contains("hang") && e.contains("stage_layers"),
        "{e}"
    );
    let even = "zero_stage = 3\nreplica_micro_batches = [8, 8, 8, 8, 8, 8, 8, 8]";
    assert!(run_summary(&scenario(&cluster(h100, 64, even)).input).is_ok());
}
