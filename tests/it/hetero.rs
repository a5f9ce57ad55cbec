//! Heterogeneous clusters (`[[cluster.groups]]`): each pipeline stage runs on its GPU
//! group's GPU and ports; a split that gives the faster GPUs more layers beats the even
//! split; groups of one GPU type change nothing; a slower cross-group fabric slows the
//! sends that cross it; and the located errors of groups that cannot hold the plan.

use crate::{repo, scenario};
use std::path::Path;
use trainsim::scenario::Scenario;
use trainsim::simulation::breakdown::Category;
use trainsim::simulation::{run_summary, RunResult};
use trainsim::workload::{CommKind, Phase};

fn shipped() -> String {
    std::fs::read_to_string(repo("scenarios/llama3-70b-h100-a100-64.toml")).expect("shipped scenario")
}

fn with_split(src: &str, split: &str) -> String {
    let s = src.replace("stage_layers = [28, 28, 12, 12]", &format!("stage_layers = {split}"));
    assert!(s.contains(split), "the shipped scenario changed");
    s
}

fn step(src: &str) -> RunResult {
    run_summary(&scenario(src).input).expect("runs")
}

fn err(src: &str) -> String {
    Scenario::from_source(src, Path::new("g.toml")).unwrap_err().to_string()
}

/// H100 stages (0-1) and A100 stages (2-3): the A100's BF16 peak is 3.2x lower, so with 20
/// layers each the A100 stages set the pace; 28/28/12/12 brings the stages' compute close
/// and the step at least 25% shorter. Per layer, an A100 stage computes 1.8-3.2x longer:
/// at most the peak ratio (989 / 312 = 3.2; the A100's calibrated GEMM efficiency is
/// higher), at least the HBM ratio (3,350 / 2,039 = 1.6) of its memory-bound kernels.
#[test]
fn a_split_that_gives_the_faster_gpus_more_layers_beats_the_even_split() {
    let src = shipped();
    let even = step(&with_split(&src, "[20, 20, 20, 20]"));
    let balanced = step(&src);
    assert!(
        balanced.step_time_s < 0.75 * even.step_time_s,
        "balanced {} s vs even {} s",
        balanced.step_time_s,
        even.step_time_s
    );
    let fwd = |r: &RunResult, s: usize| r.breakdown_per_stage[s].get(Category::Compute(Phase::Forward));
    let ratio = fwd(&even, 2) / fwd(&even, 1);
    assert!((1.8..3.2).contains(&ratio), "A100/H100 forward time per layer {ratio}");
    // each stage's memory against its own GPU's HBM
    assert_eq!(even.memory_per_stage.len(), 4);
    assert!(balanced.memory_per_stage[0].total_gib > balanced.memory_per_stage[3].total_gib);
    assert_eq!(balanced.gpu, "(32 H100-SXM + 32 A100-80GB)");
    assert_eq!(
        balanced.gpu_per_stage,
        ["H100-SXM", "H100-SXM", "A100-80GB", "A100-80GB"]
    );
    // the charts name each stage's GPU
    let bars = trainsim::report::charts::breakdown::data(&balanced).bars;
    assert_eq!(bars[2].label, "stage 2 (A100-80GB)");
}

/// `stage_layers = "balanced"` weighs each stage by its GPU's compute time per layer and
/// finds 28/28/12/12, the best split of the sweep over H100-stage layers
/// (scenarios/sweeps/hetero-split.toml); on one GPU type it is the even split.
#[test]
fn the_balanced_rule_finds_the_best_split_and_is_even_on_one_gpu_type() {
    let src = shipped();
    let auto = step(&with_split(&src, "\"balanced\""));
    assert!(auto.plan.contains("layers=28+28+12+12"), "{}", auto.plan);
    for split in ["[26, 26, 14, 14]", "[30, 30, 10, 10]", "[20, 20, 20, 20]"] {
        assert!(auto.step_time_s < step(&with_split(&src, split)).step_time_s, "{split}");
    }
    let base = std::fs::read_to_string(repo("scenarios/llama3-8b-h100-64.toml")).unwrap();
    let even = step(&base);
    let balanced = step(&base.replace(
        "recompute = \"selective\"",
        "recompute = \"selective\"\nstage_layers = \"balanced\"",
    ));
    assert!(balanced.plan.contains("layers=16+16"), "{}", balanced.plan);
    assert_eq!(even.step_time_s, balanced.step_time_s);
    // a rule it does not know, and a split it cannot make, are located errors
    let e = err(&with_split(&src, "\"even\""));
    assert!(e.contains("parallel.stage_layers") && e.contains("\"balanced\""), "{e}");
    let e = err(&with_split(&src, "\"balanced\"")
        .replace("tp = 8\npp = 4\ndp = 2", "tp = 8\npp = 4\ndp = 2\nvirtual_stages = 3"));
    assert!(
        e.contains("parallel.stage_layers") && e.contains("multiple of the 3 model chunks"),
        "{e}"
    );
}

/// Two groups of the same GPU, NIC and no slower link between them: the run is that of
/// the homogeneous cluster, number for number (MFU, energy and memory included).
#[test]
fn groups_of_one_gpu_type_change_nothing() {
    let base = std::fs::read_to_string(repo("scenarios/llama3-8b-h100-64.toml")).unwrap();
    let grouped = base.replace(
        "[cluster.gpu]\npreset = \"H100-SXM\"\n",
        "[[cluster.groups]]\nnum_gpus = 32\n[cluster.groups.gpu]\npreset = \"H100-SXM\"\n\
         [[cluster.groups]]\nnum_gpus = 32\n[cluster.groups.gpu]\npreset = \"H100-SXM\"\n",
    );
    assert!(grouped.contains("[[cluster.groups]]"));
    let (a, b) = (step(&base), step(&grouped));
    assert_eq!(a.step_time_s, b.step_time_s);
    assert_eq!(a.mfu_fraction, b.mfu_fraction);
    assert_eq!(a.memory.total_gib, b.memory.total_gib);
    // one GPU type: labelled as on a homogeneous cluster
    assert_eq!(b.gpu, "H100-SXM");
}

/// The pipeline sends between the pods cross `cross_group_gbit_per_s`: at 1 Gbit/s per NIC
/// (8 NICs for 8 GPUs: 0.125 GB/s per GPU) an activation of 2 x 4,096 x 8,192 / TP 8 bytes
/// = 8 MiB takes about 70 ms instead of 0.7 ms at 100 Gbit/s, on each of the stage 1 -> 2
/// sends of every micro-batch: the step grows, and the exposed PP time over tenfold.
#[test]
fn a_slower_fabric_between_groups_slows_the_sends_that_cross_it() {
    let src = shipped();
    let fast = step(&src);
    let slow = step(&src.replace("cross_group_gbit_per_s = 100.0", "cross_group_gbit_per_s = 1.0"));
    let pp = |r: &RunResult| r.breakdown.exposed(CommKind::Pp);
    assert!(
        slow.step_time_s > fast.step_time_s * 1.05,
        "{} vs {}",
        slow.step_time_s,
        fast.step_time_s
    );
    assert!(pp(&slow) > 10.0 * pp(&fast), "{} vs {}", pp(&slow), pp(&fast));
}

const TWO: &str = r#"name = "g"
[cluster]
num_gpus = 64
[[cluster.groups]]
num_gpus = 24
[cluster.groups.gpu]
preset = "H100-SXM"
[[cluster.groups]]
name = "old"
num_gpus = 40
[cluster.groups.gpu]
preset = "A100-80GB"
peak_bf16_tflops = 312.0
[model]
preset = "llama3-8b"
[parallel]
tp = 8
pp = 4
dp = 2
[training]
global_batch_size = 64
seq_length = 4096
"#;

/// Groups that cannot hold the plan, or that contradict the cluster, are refused with the
/// file, line, field and what is allowed.
#[test]
fn groups_that_cannot_hold_the_plan_get_located_errors() {
    // 24 + 40 GPUs with TP8 x CP2: the replica of GPUs 16..31 would span both groups
    // (line 5); with TP8 alone, stage 1's two replicas sit one on each group (allowed:
    // mixed replicas, simulated replica by replica)
    let e = err(&TWO.replace("tp = 8", "tp = 8\ncp = 2").replace("dp = 2", "dp = 1"));
    assert!(
        e.contains("g.toml:5:1")
            && e.contains("cluster.groups[0].num_gpus")
            && e.contains("GPUs 16..31")
            && e.contains("tp*cp = 16"),
        "{e}"
    );
    scenario(TWO);
    let ok = TWO
        .replace("num_gpus = 24", "num_gpus = 32")
        .replace("num_gpus = 40", "num_gpus = 32");
    scenario(&ok);
    // the groups must cover the cluster
    let e = err(&ok.replace("num_gpus = 64", "num_gpus = 72"));
    assert!(
        e.contains("cluster.num_gpus") && e.contains("must equal") && e.contains("64"),
        "{e}"
    );
    // whole nodes
    let e = err(&TWO
        .replace("num_gpus = 24", "num_gpus = 20")
        .replace("num_gpus = 40", "num_gpus = 44"));
    assert!(
        e.contains("cluster.groups[0].num_gpus") && e.contains("whole nodes"),
        "{e}"
    );
    // a group's GPU: located in its own entry (line 13), limits included
    let e = err(&ok.replace("peak_bf16_tflops = 312.0", "peak_bf16_tflops = 1e9"));
    assert!(
        e.contains("g.toml:13:1") && e.contains("cluster.groups[1].gpu.peak_bf16_tflops"),
        "{e}"
    );
    let e = err(&ok.replace("preset = \"A100-80GB\"", "preset = \"A100-81GB\""));
    assert!(
        e.contains("g.toml:12:1") && e.contains("cluster.groups[1].gpu.preset"),
        "{e}"
    );
    // not both forms of the GPU
    let e = err(&ok.replace("[cluster]\n", "[cluster.gpu]\npreset = \"H100-SXM\"\n[cluster]\n"));
    assert!(e.contains("not both"), "{e}");
    // a cross-group rate needs groups
    let single = std::fs::read_to_string(repo("scenarios/llama3-8b-h100-64.toml")).unwrap()
        + "\n[cluster.network]\ncross_group_gbit_per_s = 100.0\n";
    let e = err(&single);
    assert!(
        e.contains("cluster.network.cross_group_gbit_per_s") && e.contains("two or more"),
        "{e}"
    );
    // FP8 on a cluster with an A100 group
    let e = err(&ok.replace("seq_length = 4096", "seq_length = 4096\nprecision = \"fp8\""));
    assert!(e.contains("A100-80GB has no FP8"), "{e}");
}

/// 32 GPUs in alternating H100 and A100 nodes, TP2 PP2 DP8: each stage has four replicas
/// on H100 and four on A100. Every replica is simulated with its own GPU: the A100
/// replicas set the pace (the step is the all-A100 cluster's within 3%, well above the
/// all-H100's) and the H100 replicas wait for them at the gradient reduction. One
/// representative cannot stand for both: that mode is refused with the way out.
#[test]
fn replicas_on_different_gpu_types_each_run_at_their_own_speed() {
    let node = |gpu: &str| format!("[[cluster.groups]]\nnum_gpus = 8\n[cluster.groups.gpu]\npreset = \"{gpu}\"\n");
    let rest = "[model]\npreset = \"llama3-8b\"\n[parallel]\ntp = 2\npp = 2\ndp = 8\nmicro_batch_size = 1\n\
                [training]\nglobal_batch_size = 64\nseq_length = 4096\n";
    let cluster = |gpus: [&str; 4]| {
        let mut s = "name = \"m\"\n[cluster]\nnum_gpus = 32\ngpus_per_node = 8\n".to_string();
        for g in gpus {
            s.push_str(&node(g));
        }
        s + rest
    };
    let mixed_src = cluster(["H100-SXM", "A100-80GB", "H100-SXM", "A100-80GB"]);
    let mixed = step(&mixed_src);
    let h100 = step(&cluster(["H100-SXM"; 4]));
    let a100 = step(&cluster(["A100-80GB"; 4]));
    assert_eq!(mixed.simulation.replicas_simulated, 8);
    assert_eq!(h100.simulation.replicas_simulated, 1);
    assert!(
        mixed.step_time_s > 1.5 * h100.step_time_s && (mixed.step_time_s / a100.step_time_s - 1.0).abs() < 0.03,
        "mixed {} s, all H100 {} s, all A100 {} s",
        mixed.step_time_s,
        h100.step_time_s,
        a100.step_time_s
    );
    // half the replicas compute at H100 speed: the stage mean lies between the two
    let fwd = |r: &RunResult| r.breakdown_per_stage[0].get(Category::Compute(Phase::Forward));
    let halfway = 0.5 * (fwd(&h100) + fwd(&a100));
    assert!(
        (fwd(&mixed) / halfway - 1.0).abs() < 0.01,
        "{} vs {halfway}",
        fwd(&mixed)
    );
    // the 4 H100 replicas of each stage finish early and wait at the gradient reduction
    // for up to the A100 step's extra length; the 4 A100 replicas wait for nobody: the
    // mean over the 8 is at most half of it (measured 0.475)
    let wait = mixed.breakdown.get(Category::StragglerWait) / (a100.step_time_s - h100.step_time_s);
    assert!(
        (0.35..=0.5).contains(&wait),
        "straggler wait {wait} of the A100 step's extra length"
    );
    assert_eq!(mixed.gpu, "(16 H100-SXM + 16 A100-80GB)");
    assert_eq!(mixed.gpu_per_stage, ["H100-SXM/A100-80GB", "H100-SXM/A100-80GB"]);
    // the timeline shows the busiest replica, an A100 one (replicas 4..8 of each stage; the
    // first of equals), whose compute is the all-A100 cluster's, not replica 0's on H100
    assert_eq!(mixed.simulation.timeline_replica, 4);
    assert_eq!(h100.simulation.timeline_replica, 0);
    let compute = |src: &str| -> f64 {
        let r = trainsim::simulation::run(&scenario(src).input).unwrap();
        (r.timeline.iter())
            .filter(|t| t.stage == 0 && t.category == "forward")
            .map(|t| t.end_s - t.start_s)
            .sum()
    };
    let (shown, all_a100) = (compute(&mixed_src), compute(&cluster(["A100-80GB"; 4])));
    assert!((shown / all_a100 - 1.0).abs() < 0.01, "{shown} vs {all_a100}");
    let e = err(&mixed_src.replace("[training]", "[simulation]\nranks = \"representative\"\n[training]"));
    assert!(e.contains("simulation.ranks") && e.contains("every_replica"), "{e}");
}

/// Two H100 pods of 16 GPUs joined by a fabric of `cross` Gbit/s per NIC; `plan` places
/// the stages and replicas.
fn pods(cross: f64, plan: &str) -> String {
    let pod = |name: &str| {
        format!("[[cluster.groups]]\nname = \"{name}\"\nnum_gpus = 16\n[cluster.groups.gpu]\npreset = \"H100-SXM\"\n")
    };
    format!(
        "name = \"pods\"\n[cluster]\nnum_gpus = 32\ngpus_per_node = 8\n[cluster.network]\ncross_group_gbit_per_s = {cross:?}\n{}{}\
         [model]\npreset = \"llama3-8b\"\n[parallel]\n{plan}\nmicro_batch_size = 1\n\
         [training]\nglobal_batch_size = 32\nseq_length = 4096\n",
        pod("pod-a"),
        pod("pod-b")
    )
}

/// A data-parallel group spread over two pods runs its ring at the slower fabric's rate:
/// with TP8 DP4 (replicas on GPUs 0, 8, 16, 24: two in each pod) every byte on a GPU's NIC
/// goes through its share of the cross-pod fabric, `cross / 8 * 8 NICs / 8 GPUs` GB/s at
/// the scale-out efficiency, so the DP collectives take their NIC bytes over that rate
/// (within 3%: latency and the NVLink part) and half as long at twice the rate. With PP2
/// one stage sits in each pod and its DP group stays inside: the fabric leaves it alone.
#[test]
fn a_data_parallel_group_across_pods_runs_at_the_cross_pod_fabrics_rate() {
    let dp = |r: &RunResult| r.breakdown.total_comm(CommKind::DpGrad) + r.breakdown.total_comm(CommKind::DpParam);
    let across = "tp = 8\npp = 1\ndp = 4";
    let s10 = scenario(&pods(10.0, across));
    let eff = s10.input.cluster.scale_out_efficiency;
    let r10 = run_summary(&s10.input).expect("runs");
    let r20 = step(&pods(20.0, across));
    let one_fabric = step(&pods(0.0, across));
    let share = |gbit: f64| gbit / 8.0 * 1e9 * eff;
    let nic = r10
        .network
        .as_ref()
        .expect("network usage")
        .scale_out_bytes_per_step_per_gpu;
    for (r, gbit) in [(&r10, 10.0), (&r20, 20.0)] {
        let want = nic / share(gbit);
        assert!(
            (dp(r) / want - 1.0).abs() < 0.03,
            "{gbit} Gbit/s: DP {} s, closed form {want} s",
            dp(r)
        );
    }
    assert!(dp(&one_fabric) < 0.1 * dp(&r10), "{} vs {}", dp(&one_fabric), dp(&r10));
    assert!(r10.step_time_s > r20.step_time_s && r20.step_time_s > one_fabric.step_time_s);
    // one stage per pod: only the pipeline sends cross
    let inside = "tp = 8\npp = 2\ndp = 2";
    let (slow, fast) = (step(&pods(10.0, inside)), step(&pods(0.0, inside)));
    assert!(
        (dp(&slow) / dp(&fast) - 1.0).abs() < 0.02,
        "DP {} s vs {} s",
        dp(&slow),
        dp(&fast)
    );
    assert!(slow.breakdown.total_comm(CommKind::Pp) > 2.0 * fast.breakdown.total_comm(CommKind::Pp));
}

/// Nodes alternating between 400 and 50 Gbit/s NICs (one H100 type), TP8 DP4: each DP
/// ring has two members behind each rate. Every replica is simulated, each on its own
/// ports, and a collective completes for all its members when the slowest member's part
/// has (each receives from the others): the mean DP time over the replicas is the
/// all-50-Gbit/s cluster's (within 2%), not the halfway point of the two rates, and
/// nobody waits to start.
#[test]
fn a_collective_over_mixed_nics_completes_at_its_slowest_members_pace() {
    let cluster = |nics: [u32; 4]| {
        let mut s = "name = \"n\"\n[cluster]\nnum_gpus = 32\ngpus_per_node = 8\n".to_string();
        for (i, n) in nics.iter().enumerate() {
            s.push_str(&format!(
                "[[cluster.groups]]\nname = \"g{i}\"\nnum_gpus = 8\nnic_gbit_per_s = {n}.0\n[cluster.groups.gpu]\npreset = \"H100-SXM\"\n"
            ));
        }
        s + "[model]\npreset = \"llama3-8b\"\n[parallel]\ntp = 8\npp = 1\ndp = 4\nmicro_batch_size = 1\n\
             [training]\nglobal_batch_size = 32\nseq_length = 4096\n"
    };
    let dp = |r: &RunResult| r.breakdown.total_comm(CommKind::DpGrad) + r.breakdown.total_comm(CommKind::DpParam);
    let mixed = step(&cluster([400, 50, 400, 50]));
    let slow = step(&cluster([50; 4]));
    let fast = step(&cluster([400; 4]));
    assert_eq!(mixed.simulation.replicas_simulated, 4);
    assert!(dp(&fast) < 0.5 * dp(&slow), "{} vs {}", dp(&fast), dp(&slow));
    assert!(
        (dp(&mixed) / dp(&slow) - 1.0).abs() < 0.02,
        "mixed {} s, all 50 Gbit/s {} s, all 400 Gbit/s {} s",
        dp(&mixed),
        dp(&slow),
        dp(&fast)
    );
    assert!((mixed.step_time_s / slow.step_time_s - 1.0).abs() < 0.02);
    assert!(mixed.breakdown.get(Category::StragglerWait) < 1e-3 * mixed.step_time_s);
}
