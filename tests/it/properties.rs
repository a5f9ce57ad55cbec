use crate::scenario;
use trainsim::parallel::Dim;
use trainsim::workload::CommKind;

const BASE: &str = r#"
[cluster]
num_gpus = 64
[cluster.gpu]
preset = "H100-SXM"
[cluster.network]
nic_gbit_per_s = 400
[model]
preset = "llama2-13b"
[parallel]
tp = 2
pp = 4
dp = 8
[training]
global_batch_size = 64
seq_length = 4096
"#;

fn step(src: &str) -> trainsim::simulation::RunResult {
    trainsim::simulation::run(&scenario(src).input).expect("simulates")
}

/// Slower scale-out links never make a step faster, and make DP communication longer.
#[test]
fn step_time_is_monotone_in_nic_bandwidth() {
    let mut last = 0.0;
    let mut last_dp = 0.0;
    for gbit in [800, 400, 200, 100, 25] {
        let r = step(&BASE.replace("nic_gbit_per_s = 400", &format!("nic_gbit_per_s = {gbit}")));
        assert!(
            r.step_time_s >= last * (1.0 - 1e-9),
            "{gbit} Gbit/s: {} < {last}",
            r.step_time_s
        );
        assert!(
            r.breakdown.total_comm_of_dim(Dim::Dp) >= last_dp,
            "DP comm shrank at {gbit} Gbit/s"
        );
        last = r.step_time_s;
        last_dp = r.breakdown.total_comm_of_dim(Dim::Dp);
    }
}

/// More micro-batches per step shrink the bubble fraction.
#[test]
fn bubble_fraction_falls_with_more_microbatches() {
    let mut last = 1.0;
    for gbs in [32, 64, 128, 256] {
        let r = step(&BASE.replace("global_batch_size = 64", &format!("global_batch_size = {gbs}")));
        assert!(r.bubble_fraction < last, "gbs {gbs}: {} !< {last}", r.bubble_fraction);
        last = r.bubble_fraction;
    }
}

/// The exclusive breakdown categories add up to the step time on every stage.
#[test]
fn breakdown_categories_sum_to_the_step_time() {
    for extra in ["", "recompute = \"full\"", "zero_stage = 3", "tp_comm_overlap = true"] {
        let r = step(&BASE.replace("dp = 8", &format!("dp = 8\n{extra}")));
        for (i, b) in r.breakdown_per_stage.iter().enumerate() {
            let rel = (b.exclusive_total_s() / r.step_time_s - 1.0).abs();
            assert!(
                rel < 1e-6,
                "{extra}: stage {i} sums to {} vs step {}",
                b.exclusive_total_s(),
                r.step_time_s
            );
        }
    }
}

/// Full recomputation costs time (a forward per backward) and saves memory.
#[test]
fn recomputation_trades_time_for_memory() {
    let none = step(&BASE.replace("dp = 8", "dp = 8\nrecompute = \"none\""));
    let full = step(&BASE.replace("dp = 8", "dp = 8\nrecompute = \"full\""));
    assert!(full.step_time_s > none.step_time_s * 1.15);
    assert!(full.memory.activations_gib < none.memory.activations_gib / 3.0);
    assert!(full.hfu_fraction > full.mfu_fraction * 1.2);
    assert!((none.hfu_fraction / none.mfu_fraction - 1.0).abs() < 0.02);
}

/// A faster GPU (all else equal) never slows the step.
#[test]
fn faster_compute_never_slows_a_step() {
    let slow = step(BASE);
    let fast = step(&BASE.replace(
        "preset = \"H100-SXM\"",
        "preset = \"H100-SXM\"\npeak_bf16_tflops = 1500",
    ));
    assert!(fast.step_time_s < slow.step_time_s);
}

/// Bytes conserved: the NIC bytes the simulation moved equal those the ring algorithm
/// prescribes for the DP collectives (gradient reduce-scatter + parameter all-gather).
#[test]
fn scale_out_bytes_match_the_ring_prescription() {
    use trainsim::network::collective::{ring_bytes_per_rank, CollectiveKind};
    // tp=8 fills a node: every DP group has one member per node; pp=1 so no p2p
    let src = BASE.replace("tp = 2\npp = 4\ndp = 8", "tp = 8\npp = 1\ndp = 8");
    let s = scenario(&src);
    let r = trainsim::simulation::run(&s.input).unwrap();
    let m = &s.input.model;
    let params_local = m.total_params() / 8.0 - m.hidden_size as f64 / 8.0; // final norm weight is not in the graph
    let per_iter = ring_bytes_per_rank(CollectiveKind::ReduceScatter, 8, 2.0 * params_local)
        + ring_bytes_per_rank(CollectiveKind::AllGather, 8, 2.0 * params_local);
    let rel = (r.scale_out_bytes_per_step_per_gpu / per_iter - 1.0).abs();
    assert!(
        rel < 0.01,
        "simulated {} B vs prescribed {} B",
        r.scale_out_bytes_per_step_per_gpu,
        per_iter
    );
}

/// Stragglers: a slow GPU slows its whole stage and so the step, monotonically in the
/// slowdown; per-step jitter gives a spread across iterations that depends on the seed.
#[test]
fn stragglers_emerge_in_the_step_time() {
    let with = |extra: &str| {
        step(&format!(
            "{BASE}\n[simulation]\niterations = 4\n[stragglers]\n{extra}\n"
        ))
    };
    let base = step(BASE).step_time_s;
    let mut last = base;
    for f in [0.05, 0.1, 0.2] {
        let r = with(&format!("slow_gpus = 1\nslowdown_fraction = {f}"));
        assert!(r.step_time_s > last, "slowdown {f}: {} !> {last}", r.step_time_s);
        // one stage of four is slow: the step grows by less than the slowdown itself
        assert!(r.step_time_s < base * (1.0 + f) * 1.001);
        last = r.step_time_s;
    }
    let a = with("step_jitter_fraction = 0.02\n");
    assert!(a.step_time_std_s > 0.0 && a.step_time_s > base);
    let b = step(&format!(
        "seed = 9\n{BASE}\n[simulation]\niterations = 4\n[stragglers]\nstep_jitter_fraction = 0.02\n"
    ));
    assert_ne!(a.step_times_s, b.step_times_s);
}

/// Llama-3-8B data parallel over 64 nodes, one node per leaf, plain all-reduce of the
/// gradients at the end of the backward: every ring edge between nodes crosses the spine.
const SPINE: &str = r#"name = "spine"
[cluster]
num_gpus = 512
gpus_per_node = 8
[cluster.gpu]
preset = "H100-SXM"
[cluster.network]
nodes_per_leaf = 1
[model]
preset = "llama3-8b"
[parallel]
tp = 1
pp = 1
dp = 512
zero_stage = 0
overlap_grad_reduce = false
[training]
global_batch_size = 512
seq_length = 4096
"#;

/// Training traffic travels over the same links as the collectives: a 4:1 oversubscribed
/// spine slows the step (the DP all-reduce crosses it), monotonically; a rail-optimized
/// fabric keeps same-rail ring traffic under the rail switch and recovers the
/// non-blocking step; the bytes per kind follow the ring's 2(n-1)/n S.
#[test]
fn oversubscribed_spine_slows_training_and_rails_recover_it() {
    // rings, as NCCL_ALGO=Ring forces them (the NCCL model's own choice at 512 ranks is not a ring)
    let with = |extra: &str| {
        step(&SPINE.replace(
            "nodes_per_leaf = 1",
            &format!("nodes_per_leaf = 1\nall_reduce_algorithm = \"ring\"\n{extra}"),
        ))
    };
    let flat = with("");
    let mut last = flat.step_time_s;
    for over in [2.0, 4.0, 8.0] {
        let r = with(&format!("oversubscription = {over}"));
        assert!(r.step_time_s > last, "{over}:1 spine: {} <= {last}", r.step_time_s);
        last = r.step_time_s;
    }
    // one node per leaf: every NIC byte of the ring crosses the spine, whose share per GPU
    // at 4:1 is a quarter of the NIC, so the exposed all-reduce (about 0.09 s of a 0.55 s
    // step) takes about 4x as long: a step at least 20% longer
    let four = with("oversubscription = 4");
    assert!(
        four.step_time_s > 1.2 * flat.step_time_s,
        "visible: {} vs {}",
        four.step_time_s,
        flat.step_time_s
    );
    let rails = with("oversubscription = 4\nrail_optimized = true");
    assert!(rails.step_time_s < four.step_time_s);
    assert!((rails.step_time_s / flat.step_time_s - 1.0).abs() < 0.02);
    let n = four.network.as_ref().expect("network usage");
    assert!(n.spine_bytes_per_step_per_gpu > 0.0 && n.spine_utilisation_fraction > 0.0);
    assert_eq!(flat.network.as_ref().unwrap().spine_utilisation_fraction, 0.0);
    // 16-bit gradients of every parameter, ring all-reduce over 512 ranks
    let model = trainsim::model::presets::model_preset("llama3-8b").unwrap();
    let want = 2.0 * 511.0 / 512.0 * 2.0 * model.total_params();
    let got = n.bytes_by_kind.get(CommKind::DpGrad);
    assert!((got / want - 1.0).abs() < 1e-6, "{got} vs {want}");
    assert_eq!(
        n.bytes_by_kind.get(CommKind::Tp) + n.bytes_by_kind.get(CommKind::Pp) + n.bytes_by_kind.get(CommKind::Ep),
        0.0
    );
}

/// The collective algorithm is a scenario choice. Hop model: `auto` never picks something
/// slower than the ring on the idle network. NCCL model: `auto` is NCCL's tuner's choice by
/// NCCL's own constants, which may be slower than the ring (as real NCCL sometimes is), by
/// little here. A forced tree runs and changes the step.
#[test]
fn collective_algorithm_choice_is_honoured() {
    let with = |extra: &str| step(&SPINE.replace("nodes_per_leaf = 1", &format!("nodes_per_leaf = 1\n{extra}")));
    let ring = with("collective_model = \"hop\"\nall_reduce_algorithm = \"ring\"");
    let auto = with("collective_model = \"hop\"\nall_reduce_algorithm = \"auto\"");
    assert!(auto.step_time_s <= ring.step_time_s * 1.001);
    let ring = with("all_reduce_algorithm = \"ring\"");
    let auto = with("");
    assert!(
        (auto.step_time_s / ring.step_time_s - 1.0).abs() < 0.02,
        "{} vs {}",
        auto.step_time_s,
        ring.step_time_s
    );
    let tree = with("all_reduce_algorithm = \"tree\"");
    assert_eq!(
        tree.network.as_ref().unwrap().algorithms.all_reduce,
        trainsim::network::algorithm::Algorithm::Tree
    );
    assert_ne!(tree.step_time_s, ring.step_time_s);
}
