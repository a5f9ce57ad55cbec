//! Every-replica mode (`simulation.ranks`): one copy of the workload per data-parallel
//! replica, meeting in the collectives they share. On a symmetric cluster it equals the
//! representative mode; with a straggler on one GPU only that replica is slow and the
//! others wait for it, which the representative mode cannot show.

use crate::scenario;
use std::path::Path;
use trainsim::scenario::Scenario;
use trainsim::simulation::breakdown::Category;
use trainsim::simulation::{run, run_summary, RunResult};
use trainsim::workload::Phase;

/// Llama-3 8B on 512 H100: TP2 PP4 DP64, 8 micro-batches per replica, ZeRO-1 with the
/// gradient reduction overlapped with the backward.
const DENSE_512: &str = r#"
name = "llama3-8b-h100-512"
[cluster]
num_gpus = 512
gpus_per_node = 8
[cluster.gpu]
preset = "H100-SXM"
[model]
preset = "llama3-8b"
[parallel]
tp = 2
pp = 4
dp = 64
micro_batch_size = 1
zero_stage = 1
recompute = "selective"
[training]
global_batch_size = 512
seq_length = 4096
precision = "bf16"
"#;

fn with(src: &str, extra: &str) -> String {
    format!("{src}\n{extra}\n")
}

fn mode(src: &str, ranks: &str) -> RunResult {
    let src = if src.contains("[simulation]") {
        src.replace("[simulation]", &format!("[simulation]\nranks = \"{ranks}\""))
    } else {
        with(src, &format!("[simulation]\nranks = \"{ranks}\""))
    };
    run_summary(&scenario(&src).input).expect("runs")
}

fn close(a: f64, b: f64, rel: f64) -> bool {
    (a - b).abs() <= rel * a.abs().max(b.abs()) + 1e-12
}

/// The acceptance bar of #16: every replica within 0.5% of the representative.
fn assert_same_step(all: &RunResult, rep: &RunResult) {
    assert!(
        close(all.step_time_s, rep.step_time_s, 0.005),
        "every replica {} s vs representative {} s",
        all.step_time_s,
        rep.step_time_s
    );
}

#[test]
fn every_replica_equals_the_representative_on_a_symmetric_512_gpu_cluster() {
    let rep = mode(DENSE_512, "representative");
    let all = mode(DENSE_512, "every_replica");
    assert_eq!(rep.simulation.replicas_simulated, 1);
    assert_eq!(all.simulation.replicas_simulated, 64);
    assert_same_step(&all, &rep);
    for c in Category::ALL {
        assert!(
            close(all.breakdown.get(c), rep.breakdown.get(c), 0.005),
            "{c:?}: {} vs {}",
            all.breakdown.get(c),
            rep.breakdown.get(c)
        );
    }
    assert_eq!(all.breakdown.get(Category::StragglerWait), 0.0);
    // bytes per GPU are per replica, not summed over them
    let (a, r) = (all.network.as_ref().unwrap(), rep.network.as_ref().unwrap());
    assert!(close(
        a.scale_out_bytes_per_step_per_gpu,
        r.scale_out_bytes_per_step_per_gpu,
        1e-9
    ));
    assert!(close(
        a.scale_up_bytes_per_step_per_gpu,
        r.scale_up_bytes_per_step_per_gpu,
        1e-9
    ));
    // 64 replicas each process the representative's op completions; network ticks that
    // fall at the same instant for all replicas are shared, so fewer than 64x (13.7x on
    // the 1,024-GPU GPT-3 example), but more than half that here
    assert!(all.simulation.events > 32 * rep.simulation.events);
}

/// Mixtral 8x7B on 64 H100, EP8 over four TP2 replicas: the all-to-alls meet across
/// replicas too, and a symmetric cluster still gives the representative's step (the two
/// EP groups' Zipf draws differ only in which expert is hot).
#[test]
fn every_replica_equals_the_representative_for_moe_expert_parallelism_across_replicas() {
    let src = std::fs::read_to_string(crate::repo("scenarios/mixtral-8x7b-h100-64.toml")).unwrap();
    let rep = mode(&src, "representative");
    let all = mode(&src, "every_replica");
    assert_eq!(all.simulation.replicas_simulated, 8);
    assert_same_step(&all, &rep);
    // balanced routing: every replica runs the representative's draws, to the picosecond
    let balanced = src.replace("routing = \"zipf\"\nzipf_exponent = 0.5", "routing = \"balanced\"");
    let (rep, all) = (mode(&balanced, "representative"), mode(&balanced, "every_replica"));
    assert_eq!(all.step_times_s, rep.step_times_s);
}

/// Each expert-parallel group draws the routing of its own tokens: Mixtral with
/// Dirichlet-skewed routing, EP8 over four TP2 replicas, so two groups of four replicas.
/// Every replica's step is the slower group's, which the representative mode gives when
/// seeded with that group's routing stream; the replicas of one group run alike.
#[test]
fn each_expert_parallel_group_draws_its_own_routing_and_the_step_waits_for_the_slowest() {
    use trainsim::simulation::replicas::{routing_seed, routing_stream, RankMode};
    let src = std::fs::read_to_string(crate::repo("scenarios/mixtral-8x7b-h100-64.toml"))
        .unwrap()
        .replace(
            "routing = \"zipf\"\nzipf_exponent = 0.5",
            "routing = \"dirichlet\"\ndirichlet_alpha = 1.0",
        );
    let base = scenario(&src).input;
    assert_eq!(
        (0..8)
            .map(|r| routing_stream(&base.plan, 8, true, r))
            .collect::<Vec<_>>(),
        [0, 0, 0, 0, 1, 1, 1, 1]
    );
    let with = |seed: u64, ranks: RankMode| {
        let mut input = base.clone();
        input.seed = seed;
        input.ranks = ranks;
        run_summary(&input).expect("runs")
    };
    for seed in [1, 2] {
        // each group alone, per measured step (the routing is redrawn every step)
        let groups: Vec<Vec<f64>> = (0..2)
            .map(|k| with(routing_seed(seed, k), RankMode::Representative).step_times_s)
            .collect();
        let all = with(seed, RankMode::EveryReplica);
        assert_eq!(all.step_times_s.len(), groups[0].len());
        for (i, &t) in all.step_times_s.iter().enumerate() {
            let slowest = groups[0][i].max(groups[1][i]);
            assert!(
                close(t, slowest, 0.01),
                "seed {seed} step {i}: every replica {t} s, the groups alone {groups:?}"
            );
        }
        // the groups' draws differ (the test would not tell otherwise)
        assert!(!close(groups[0][0], groups[1][0], 0.005), "{groups:?}");
        // the routing statistics cover both groups' draws (four replicas each)
        let imbalance = |r: &RunResult| r.moe.as_ref().unwrap().expert_load_max_over_mean;
        let alone: Vec<f64> = (0..2)
            .map(|k| imbalance(&with(routing_seed(seed, k), RankMode::Representative)))
            .collect();
        assert!(!close(alone[0], alone[1], 1e-6), "{alone:?}");
        assert!(
            close(imbalance(&all), 0.5 * (alone[0] + alone[1]), 1e-9),
            "{} vs {alone:?}",
            imbalance(&all)
        );
    }
}

/// One GPU 30% slower: the representative mode slows its stage in all 64 replicas; every
/// replica slows only the one holding it, and the other 63 wait for it at the gradient
/// reduction. The step is no longer (that replica sets the pace in both), the stage's mean
/// compute is lower, and the waiting shows as straggler wait.
#[test]
fn a_straggler_on_one_gpu_slows_only_its_replica_and_the_others_wait_for_it() {
    let src = with(DENSE_512, "[stragglers]\nslow_gpus = 1\nslowdown_fraction = 0.3");
    let rep = mode(&src, "representative");
    let all = mode(&src, "every_replica");
    // auto: stragglers break the symmetry, so every replica is simulated
    let auto = run_summary(&scenario(&src).input).unwrap();
    assert_eq!(auto.simulation.replicas_simulated, 64);
    assert_eq!(auto.step_time_s, all.step_time_s);

    assert!(
        all.step_time_s <= rep.step_time_s * 1.0001,
        "{} vs {}",
        all.step_time_s,
        rep.step_time_s
    );
    let symmetric = mode(DENSE_512, "every_replica");
    // (stage 3 holds the 128K-vocabulary output layer and is the slowest; a slower
    // lighter stage lengthens the step by less than its 30%)
    assert!(
        all.step_time_s > symmetric.step_time_s * 1.01,
        "the straggler sets the pace: {} vs {}",
        all.step_time_s,
        symmetric.step_time_s
    );
    let slow_stage = (0..4)
        .max_by(|&a, &b| rep.compute_slowdown_per_stage[a].total_cmp(&rep.compute_slowdown_per_stage[b]))
        .unwrap();
    assert!(close(rep.compute_slowdown_per_stage[slow_stage], 1.3, 1e-9));
    assert_eq!(all.compute_slowdown_per_stage, rep.compute_slowdown_per_stage);
    let fwd = |r: &RunResult| r.breakdown_per_stage[slow_stage].get(Category::Compute(Phase::Forward));
    // the representative's forward is 1.3x; the replicas' mean is (63 + 1.3) / 64 of it
    let expected = fwd(&symmetric) * (63.0 + 1.3) / 64.0;
    assert!(close(fwd(&all), expected, 0.01), "{} vs {expected}", fwd(&all));
    assert!(close(fwd(&rep), fwd(&symmetric) * 1.3, 0.01));
    // the 63 faster replicas wait for the slow one at the reductions of every stage it
    // delays; averaged over the stages, a sizeable part of the step's lengthening
    // (measured: a third) though not all of it (their own bubble absorbs some)
    let wait = all.breakdown.get(Category::StragglerWait);
    let longer = all.step_time_s - symmetric.step_time_s;
    assert!(
        wait > 0.1 * longer && wait < longer,
        "straggler wait {wait} s, step {longer} s longer"
    );
    assert_eq!(rep.breakdown.get(Category::StragglerWait), 0.0);
    // the categories still sum to the step
    let sum: f64 = all.breakdown.seconds.iter().sum();
    assert!(close(sum, all.step_time_s, 1e-6), "{sum} vs {}", all.step_time_s);
}

/// Per-step jitter on every GPU: a replica's stage runs at its own GPUs' worst draw, the
/// representative at the worst over all replicas, so every replica is never slower; both
/// are deterministic.
#[test]
fn jitter_per_replica_is_never_slower_than_the_representatives_worst_case() {
    let src = with(DENSE_512, "[stragglers]\nstep_jitter_fraction = 0.05");
    let rep = mode(&src, "representative");
    let all = mode(&src, "every_replica");
    assert!(
        all.step_time_s <= rep.step_time_s * 1.0001,
        "{} vs {}",
        all.step_time_s,
        rep.step_time_s
    );
    assert!(all.breakdown.get(Category::StragglerWait) > 0.0);
    assert_eq!(mode(&src, "every_replica"), all);
}

#[test]
fn rank_modes_are_checked_and_budgeted() {
    let bad = with(DENSE_512, "[simulation]\nranks = \"every_gpu\"");
    let e = Scenario::from_source(&bad, Path::new("r.toml"))
        .unwrap_err()
        .to_string();
    assert!(
        e.contains("r.toml") && e.contains("simulation.ranks") && e.contains("every_replica"),
        "{e}"
    );
    // 64 replicas of a workload that fits the limit alone: refused in every-replica mode,
    // with the way out named; auto falls back to the representative
    let tight = with(
        DENSE_512,
        "[simulation]\nmax_operations = 20000\n[stragglers]\nslow_gpus = 1\nslowdown_fraction = 0.1",
    );
    let every = tight.replace("[simulation]", "[simulation]\nranks = \"every_replica\"");
    let e = run(&scenario(&every).input).unwrap_err().to_string();
    assert!(
        e.contains("64 data-parallel replicas") && e.contains("simulation.ranks=representative"),
        "{e}"
    );
    let auto = run_summary(&scenario(&tight).input).unwrap();
    assert_eq!(auto.simulation.replicas_simulated, 1);
}

/// A slow node (all 8 of its GPUs 20% slower): under TP2 it holds 4 replicas of one
/// stage; those run slower, the other 60 replicas of the stage wait for them. More than
/// the cluster's nodes is a located error.
#[test]
fn a_slow_node_slows_the_replicas_on_it() {
    let src = with(DENSE_512, "[stragglers]\nslow_nodes = 1\nslowdown_fraction = 0.2");
    let all = run_summary(&scenario(&src).input).unwrap();
    assert_eq!(all.simulation.replicas_simulated, 64);
    let slow = (0..4)
        .find(|&s| all.compute_slowdown_per_stage[s] > 1.0)
        .expect("a slow stage");
    assert!(close(all.compute_slowdown_per_stage[slow], 1.2, 1e-9));
    let symmetric = mode(DENSE_512, "every_replica");
    let fwd = |r: &RunResult| r.breakdown_per_stage[slow].get(Category::Compute(Phase::Forward));
    let expected = fwd(&symmetric) * (60.0 + 4.0 * 1.2) / 64.0;
    assert!(close(fwd(&all), expected, 0.01), "{} vs {expected}", fwd(&all));
    assert!(all.breakdown.get(Category::StragglerWait) > 0.0);
    let e = Scenario::from_source(&src.replace("slow_nodes = 1", "slow_nodes = 65"), Path::new("n.toml"))
        .unwrap_err()
        .to_string();
    assert!(e.contains("stragglers.slow_nodes") && e.contains("64 nodes"), "{e}");
}
