//! Expert tensor parallelism (`parallel.expert_tp`): the collectives it adds around the
//! experts (closed-form sizes), the expert memory it shards, the FLOPs it leaves alone, and
//! the located errors of plans it cannot run.

use crate::scenario;
use std::path::Path;
use trainsim::network::collective::CollectiveKind;
use trainsim::parallel::Dim;
use trainsim::scenario::Scenario;
use trainsim::simulation::run;
use trainsim::workload::OpKind;

/// The small MoE model of the MoE tests (8 experts, top-2, 4 layers, hidden 1,024, expert
/// FFN 1,024) on one node of 8 H100s, GBS 16 x 2,048 tokens: TP2 DP4, EP `ep`, ETP `etp`,
/// no recomputation. `expert_tp` is on line 23.
fn src(ep: u32, etp: u32, extra: &str) -> String {
    let s = crate::moe::moe_src(8, 8, 2, extra).replace(
        "tp = 1\npp = 1\ndp = 8\nep = 8\n",
        &format!("tp = 2\npp = 1\ndp = 4\nep = {ep}\nexpert_tp = {etp}\nrecompute = \"none\"\n"),
    );
    assert!(s.contains("expert_tp"), "the MoE test scenario changed: {s}");
    s
}

/// ETP 2 around the experts: per MoE layer and micro-batch an all-gather and a
/// reduce-scatter in the forward and their mirrors in the backward, each over the ETP pair
/// and of `etp x tokens x top-k x hidden x 2` bytes (tokens: 2,048 / TP 2); none with
/// ETP 1. Expert weights, gradients and optimizer states per GPU halve; the model FLOPs and
/// the GPU's expert FLOPs do not change; the plan says `ETP2`.
#[test]
fn expert_tensor_parallelism_adds_its_collectives_and_shards_expert_memory() {
    let one = scenario(&src(4, 1, "")).input;
    let two = scenario(&src(4, 2, "")).input;
    let etp_ops = |input: &trainsim::simulation::RunInput| {
        let w = input.workload(&input.placement(), 1);
        w.ops
            .iter()
            .filter_map(|o| match o.kind {
                OpKind::Collective {
                    dim: Dim::Etp,
                    kind,
                    bytes,
                    ..
                } => Some((kind, bytes)),
                _ => None,
            })
            .collect::<Vec<_>>()
    };
    assert!(etp_ops(&one).is_empty());
    let ops = etp_ops(&two);
    let micro_batches = 4; // 16 sequences / DP 4 / MBS 1
    assert_eq!(ops.len(), 4 * micro_batches * 4, "{ops:?}");
    let want = 2.0 * (2048.0 / 2.0) * 2.0 * 1024.0 * 2.0;
    for kind in [CollectiveKind::AllGather, CollectiveKind::ReduceScatter] {
        assert_eq!(ops.iter().filter(|o| o.0 == kind).count(), 4 * micro_batches * 2);
    }
    assert!(ops.iter().all(|o| o.1 == want), "{ops:?} vs {want}");
    let (a, b) = (run(&one).unwrap(), run(&two).unwrap());
    assert!(
        b.plan.contains("EP4 ETP2") && !a.plan.contains("ETP"),
        "{} / {}",
        a.plan,
        b.plan
    );
    // the experts' parameters: 4 layers x 8 experts x 3 x 1024 x 1024, 1/ep of them per GPU
    // with ETP 1, half that with ETP 2: 2 bytes of weights each (ZeRO-1 shards the rest)
    let expert_params = 4.0 * 8.0 * 3.0 * 1024.0 * 1024.0;
    let saved_gib = 2.0 * expert_params / 4.0 / 2.0 / (1u64 << 30) as f64;
    let d = a.memory.weights_gib - b.memory.weights_gib;
    assert!((d / saved_gib - 1.0).abs() < 1e-9, "{d} vs {saved_gib}");
    assert!(b.memory.gradients_gib < a.memory.gradients_gib);
    // the experts' GEMM input is the pair's tokens, gathered: twice the rank's routed copies
    assert!(b.memory.activations_gib > a.memory.activations_gib);
    assert_eq!(a.model_flops_per_step, b.model_flops_per_step);
    // hardware FLOPs per step (HFU x step time, same GPUs): the experts' are the same
    let hw = |r: &trainsim::simulation::RunResult| r.hfu_fraction * r.step_time_s;
    assert!((hw(&a) / hw(&b) - 1.0).abs() < 1e-9, "{} vs {}", hw(&a), hw(&b));
}

/// Plans expert tensor parallelism cannot run are located: an ETP degree not dividing the
/// experts' FFN, EP x ETP not dividing TP x DP, and a dispatcher other than all-to-all.
#[test]
fn bad_expert_tensor_parallelism_is_located() {
    let err = |s: &str| Scenario::from_source(s, Path::new("s.toml")).unwrap_err().to_string();
    let e = err(&src(2, 3, ""));
    assert!(
        e.contains("s.toml:23:1")
            && e.contains("`parallel.expert_tp` = 3")
            && e.contains("must divide it")
            && e.contains("1, 2, 4, 8, 16, 32, 64"),
        "{e}"
    );
    let e = err(&src(8, 2, ""));
    assert!(
        e.contains("s.toml:22:1") && e.contains("ep*expert_tp = 16 must divide tp*dp = 8"),
        "{e}"
    );
    let e = err(&src(4, 2, "[moe]\ndispatcher = \"deepep\""));
    assert!(
        e.contains("moe.dispatcher") && e.contains("\"deepep\"") && e.contains("only the \"alltoall\" dispatcher"),
        "{e}"
    );
}
