use crate::{repo, scenario};
use trainsim::cli::validate::compare;
use trainsim::simulation::{run, RunResult};
use trainsim::workload::{CommKind, OpKind};

/// A small MoE model: `experts` experts, top-`k`, on `gpus` H100s (TP1 PP1, DP = EP = gpus).
pub(crate) fn moe_src(gpus: u32, experts: u32, k: u32, moe_section: &str) -> String {
    format!(
        r#"name = "moe-test"
[cluster]
num_gpus = {gpus}
gpus_per_node = 8
[cluster.gpu]
preset = "H100-SXM"
[model]
name = "tiny-moe"
num_layers = 4
hidden_size = 1024
num_heads = 8
ffn_hidden_size = 4096
ffn_type = "swiglu"
vocab_size = 32000
num_experts = {experts}
top_k = {k}
expert_ffn_hidden_size = 1024
[parallel]
tp = 1
pp = 1
dp = {gpus}
ep = {gpus}
[training]
global_batch_size = {gb}
seq_length = 2048
{moe_section}
"#,
        gb = gpus * 2
    )
}

fn simulate(src: &str) -> RunResult {
    run(&scenario(src).input).expect("simulates")
}

/// Balanced routing, top-1, E experts over EP = E ranks: each all-to-all sends
/// (E-1)/E of a rank's tokens, 2 bytes x hidden each; peers in the node over NVLink,
/// the rest over the NIC. Exactly.
#[test]
fn balanced_top1_all_to_all_bytes_equal_the_closed_form() {
    for (gpus, per_node) in [(8u32, 8u32), (16, 8)] {
        let input = scenario(&moe_src(gpus, gpus, 1, "")).input;
        let w = input.workload(&input.placement(), 1);
        let tokens = 2048.0; // micro-batch 1 x 2,048 tokens per rank
        let bytes_per_token = 2.0 * 1024.0;
        let e = gpus as f64;
        let g = per_node as f64;
        let nvl = tokens * (g - 1.0) / e * bytes_per_token;
        let nic = tokens * (e - g) / e * bytes_per_token;
        assert!(!w.all_to_alls.is_empty());
        let a2a_ops = w
            .ops
            .iter()
            .filter(|o| matches!(o.kind, OpKind::AllToAll { .. }))
            .count();
        // 4 layers x 2 micro-batches x (2 forward + 2 backward)
        assert_eq!(a2a_ops, 4 * 2 * 4);
        for a in &w.all_to_alls {
            let (p, l) = (&a.loads.ports, &a.loads);
            for (got, want) in [
                (p.up_send_bytes, nvl),
                (p.up_recv_bytes, nvl),
                (p.nic_send_bytes, nic),
                (p.nic_recv_bytes, nic),
            ] {
                assert!(
                    (got - want).abs() <= 1e-9 * want.max(1.0),
                    "{gpus} GPUs: {got} vs {want}"
                );
            }
            // bytes conserved: what the group sends is what it receives
            assert_eq!(p.up_send_bytes + p.nic_send_bytes, p.up_recv_bytes + p.nic_recv_bytes);
            assert_eq!(
                (l.others_max_up_bytes, l.others_max_nic_bytes),
                (0.0, 0.0),
                "balanced routing builds no lanes"
            );
        }
        assert_eq!(w.ranks.len(), 1, "one representative, no expert lanes");
    }
}

/// Skew makes the slowest expert-parallel rank slower: step time and the wait for it
/// rise with the Zipf exponent, through the event graph (expert lanes + the combine join).
#[test]
fn step_time_rises_monotonically_with_routing_skew() {
    let mut last: Option<RunResult> = None;
    for s in [0.0, 0.4, 0.8, 1.2] {
        let r = simulate(&moe_src(
            16,
            64,
            2,
            &format!("[moe]\nrouting = \"zipf\"\nzipf_exponent = {s}"),
        ));
        let m = r.moe.as_ref().expect("MoE results");
        assert_eq!(m.dropped_fraction, 0.0, "dropless by default");
        if let Some(prev) = &last {
            let pm = prev.moe.as_ref().unwrap();
            assert!(
                r.step_time_s > prev.step_time_s,
                "skew {s}: {} <= {}",
                r.step_time_s,
                prev.step_time_s
            );
            assert!(m.imbalance_wait_s > pm.imbalance_wait_s, "skew {s}");
            assert!(m.rank_load_max_over_mean > pm.rank_load_max_over_mean, "skew {s}");
        }
        last = Some(r);
    }
    // balanced routing waits for nobody
    let b = simulate(&moe_src(16, 64, 2, "[moe]\nrouting = \"balanced\""));
    assert_eq!(b.moe.as_ref().unwrap().imbalance_wait_s, 0.0);
    assert!((b.moe.as_ref().unwrap().rank_load_max_over_mean - 1.0).abs() < 1e-12);
}

/// A capacity factor drops what exceeds it and caps every expert's kept load.
#[test]
fn capacity_factor_caps_expert_load_and_counts_drops() {
    let hot = "[moe]\nrouting = \"hot\"\nhot_experts = 4\nhot_fraction = 0.5";
    let dropless = simulate(&moe_src(16, 64, 2, hot));
    let capped = simulate(&moe_src(16, 64, 2, &format!("{hot}\ncapacity_factor = 1.25")));
    let (d, c) = (dropless.moe.unwrap(), capped.moe.unwrap());
    assert_eq!(d.dropped_fraction, 0.0);
    // 4 hot experts of 64 take half: each gets 8x its share, keeps 1.25x
    let want = 0.5 - 4.0 * 1.25 / 64.0;
    assert!(
        (c.dropped_fraction - want).abs() < 0.02,
        "{} vs {want}",
        c.dropped_fraction
    );
    // relative to the mean kept load, a capped expert sits at 1.25 / (1 - dropped);
    // layers differ a little in how much they drop (sampling noise)
    let cap_rel = 1.25 / (1.0 - c.dropped_fraction);
    for row in &c.expert_load_per_layer {
        assert!(row.iter().all(|&x| x <= cap_rel * 1.03), "capped at {cap_rel}: {row:?}");
    }
    let max_dropless = d.expert_load_per_layer.iter().flatten().cloned().fold(0.0, f64::max);
    assert!(
        max_dropless > 7.0,
        "without a cap the hot experts take 8x: {max_dropless}"
    );
    assert!(
        capped.step_time_s < dropless.step_time_s,
        "dropping work makes the step shorter"
    );
}

/// The per-expert load series is chart-ready: one row per simulated step (and per MoE
/// layer), one column per expert, mean 1.
#[test]
fn expert_load_series_are_in_the_results() {
    let r = simulate(&moe_src(
        16,
        64,
        2,
        "[moe]\nrouting = \"dirichlet\"\ndirichlet_alpha = 2.0",
    ));
    let m = r.moe.as_ref().unwrap();
    assert_eq!(m.expert_load_per_step.len(), r.simulation.iterations_simulated as usize);
    assert_eq!(m.expert_load_per_layer.len(), 4);
    for row in m.expert_load_per_step.iter().chain(&m.expert_load_per_layer) {
        assert_eq!(row.len(), 64);
        let mean = row.iter().sum::<f64>() / 64.0;
        assert!((mean - 1.0).abs() < 1e-3);
    }
    let json = serde_json::to_value(&r).unwrap();
    assert!(json["moe"]["expert_load_per_step"].is_array());
}

/// Same seed, same imbalanced run: identical results; another seed: other draws.
#[test]
fn routing_is_seeded_and_deterministic() {
    let src = moe_src(16, 64, 2, "[moe]\nrouting = \"lognormal\"\nlognormal_sigma = 0.5");
    let a = serde_json::to_string(&simulate(&src)).unwrap();
    let b = serde_json::to_string(&simulate(&src)).unwrap();
    assert_eq!(a, b);
    let c = serde_json::to_string(&simulate(
        &src.replace("name = \"moe-test\"", "name = \"moe-test\"\nseed = 7"),
    ))
    .unwrap();
    assert_ne!(a.replace("\"seed\":42", ""), c.replace("\"seed\":7", ""));
}

/// Published MoE runs (Megatron-Bridge 25.09, forced-balanced routing): mean absolute
/// error under 15% (issue target), each within 20%.
#[test]
fn published_moe_runs_within_fifteen_percent() {
    let rows = compare(&repo("scenarios/validation/megatron-bridge-25.09-fp8")).expect("runs");
    let moe: Vec<_> = rows.iter().filter(|r| r.name.contains("qwen3")).collect();
    assert_eq!(moe.len(), 2, "both Qwen3 runs");
    let mae = moe.iter().map(|r| r.error_pct.abs()).sum::<f64>() / moe.len() as f64;
    let table: Vec<String> = moe
        .iter()
        .map(|r| {
            format!(
                "{} {:.3} vs {:.3} ({:+.1}%)",
                r.name, r.predicted_s, r.measured_s, r.error_pct
            )
        })
        .collect();
    assert!(mae < 15.0, "MAE {mae:.1}%: {table:?}");
    assert!(moe.iter().all(|r| r.error_pct.abs() < 20.0), "{table:?}");
}

/// Parameter counts of the MoE presets: total and active within 2% of the published ones.
#[test]
fn moe_presets_match_published_total_and_active_parameters() {
    use trainsim::model::presets::model_preset;
    // (preset, total B, active B, active count excludes the input embedding): Mixtral
    // paper; Qwen3 and GPT-OSS model cards (GPT-OSS counts active parameters without the
    // embedding table); DeepSeek-V3 report (671 B / 37 B without the MTP module)
    for (name, total, active, no_embedding) in [
        ("mixtral-8x7b", 46.7, 12.9, false),
        ("mixtral-8x22b", 140.6, 39.2, false),
        ("qwen3-30b-a3b", 30.5, 3.3, false),
        ("qwen3-235b-a22b", 235.0, 22.0, false),
        ("gpt-oss-120b", 116.8, 5.13, true),
        ("deepseek-v3", 671.0, 37.0, false),
    ] {
        let m = model_preset(name).unwrap();
        let t = m.total_params() / 1e9;
        let emb = m.vocab_size as f64 * m.hidden_size as f64 / 1e9;
        let a = m.active_params() / 1e9 - if no_embedding { emb } else { 0.0 };
        assert!((t / total - 1.0).abs() < 0.02, "{name}: total {t:.2} B vs {total}");
        assert!((a / active - 1.0).abs() < 0.05, "{name}: active {a:.2} B vs {active}");
    }
}

/// DeepSeek-V3 on 2,048 H800 (EP64, PP16, DP128) runs, fits, and shows the all-to-all
/// and imbalance costs.
#[test]
fn deepseek_v3_scenario_runs() {
    let s = trainsim::scenario::Scenario::load(&repo("scenarios/deepseek-v3-h800-2048.toml")).unwrap();
    let r = run(&s.input).unwrap();
    assert!(r.memory.fits, "{:?}", r.memory);
    let m = r.moe.as_ref().unwrap();
    assert_eq!((m.ep, m.num_experts, m.top_k), (64, 256, 8));
    assert!(m.exposed_all_to_all_s > 0.0 && m.imbalance_wait_s > 0.0);
    assert_eq!(m.expert_load_per_layer.len(), 59); // 58 MoE layers + the MTP block
                                                   // the published setup, no workaround: 61 layers + MTP, DeepEP-style FP8 dispatch with
                                                   // node limit 4, partial recomputation
    assert_eq!(s.input.model.num_layers, 61);
    assert_eq!(s.input.model.mtp_modules, 1);
    assert_eq!(s.input.routing.node_limit, Some(4));
    assert!(s.input.plan.moe_dispatch_fp8);
    assert_eq!(s.input.plan.recompute, trainsim::parallel::Recompute::Selective);
}

/// Bad MoE input: exit 2 with the file, the field and what is allowed; never a panic.
#[test]
fn bad_moe_input_gives_located_errors() {
    let base = moe_src(16, 64, 2, "[moe]\nrouting = \"zipf\"");
    let dense = base
        .replace("num_experts = 64\n", "")
        .replace("top_k = 2\n", "")
        .replace("expert_ffn_hidden_size = 1024\n", "")
        .replace("ep = 16\n", "ep = 1\n");
    let cases: Vec<(&str, String, Vec<&str>)> = vec![
        (
            "routing-name",
            base.replace("routing = \"zipf\"", "routing = \"uniformish\""),
            vec!["moe.routing", "\"uniformish\"", "\"balanced\", \"dirichlet\""],
        ),
        (
            "hot-fraction",
            base.replace("routing = \"zipf\"", "routing = \"hot\"\nhot_fraction = 1.5"),
            vec!["moe.hot_fraction", "1.5", "[0, 1]"],
        ),
        (
            "hot-experts",
            base.replace("routing = \"zipf\"", "routing = \"hot\"\nhot_experts = 65"),
            vec!["moe.hot_experts", "at most model.num_experts = 64"],
        ),
        (
            "wrong-parameter",
            base.replace("routing = \"zipf\"", "routing = \"hot\"\nzipf_exponent = 1.0"),
            vec!["moe.zipf_exponent", "only applies with moe.routing = \"zipf\""],
        ),
        (
            "capacity",
            base.replace("routing = \"zipf\"", "routing = \"zipf\"\ncapacity_factor = 0.5"),
            vec!["moe.capacity_factor", "at least 1"],
        ),
        (
            "negative-skew",
            base.replace("routing = \"zipf\"", "routing = \"zipf\"\nzipf_exponent = -1"),
            vec!["moe.zipf_exponent", "-1"],
        ),
        (
            "csv-missing",
            base.replace(
                "routing = \"zipf\"",
                "routing = \"csv\"\nloads_csv = \"no-such-file.csv\"",
            ),
            vec!["moe.loads_csv", "no-such-file.csv", "could not be read"],
        ),
        (
            "csv-not-given",
            base.replace("routing = \"zipf\"", "routing = \"csv\""),
            vec!["moe.loads_csv", "required with moe.routing = \"csv\""],
        ),
        (
            "ep-divides-experts",
            base.replace("num_experts = 64", "num_experts = 24"),
            vec!["ep=16 does not divide the 24 experts"],
        ),
        (
            "top-k",
            base.replace("top_k = 2", "top_k = 65"),
            vec!["model.top_k", "65", "at most num_experts = 64"],
        ),
        (
            "moe-on-dense",
            dense.clone(),
            vec!["moe", "only applies to Mixture-of-Experts models"],
        ),
        (
            "ep-on-dense",
            dense
                .replace("ep = 1\n", "ep = 2\n")
                .replace("[moe]\nrouting = \"zipf\"", ""),
            vec!["expert parallelism ep=2 needs a Mixture-of-Experts model"],
        ),
        (
            "mla-field",
            base.replace("top_k = 2", "top_k = 2\nattention = \"standard\"\nkv_lora_rank = 512"),
            vec!["model.kv_lora_rank", "only applies with model.attention = \"mla\""],
        ),
        (
            "mla-incomplete",
            base.replace("top_k = 2", "top_k = 2\nkv_lora_rank = 512"),
            vec![
                "model.qk_nope_head_dim",
                "required (at least 1) with model.attention = \"mla\"",
            ],
        ),
        (
            "attention-name",
            base.replace("top_k = 2", "top_k = 2\nattention = \"linear\""),
            vec!["model.attention", "\"standard\", \"mla\""],
        ),
        (
            "dispatcher",
            base.replace(
                "routing = \"zipf\"",
                "routing = \"zipf\"\ndispatcher = \"deepep_normal\"",
            ),
            vec![
                "moe.dispatcher",
                "\"alltoall\", \"allgather\", \"deepep\", \"deepep_low_latency\"",
            ],
        ),
        (
            "node-limit",
            base.replace(
                "routing = \"zipf\"",
                "routing = \"zipf\"\ndispatcher = \"deepep\"\nnode_limit = 3",
            ),
            vec![
                "moe.node_limit",
                "3",
                "at most the nodes an expert-parallel group spans (2: parallel.ep = 16",
            ],
        ),
        (
            "dispatch-precision",
            base.replace("routing = \"zipf\"", "routing = \"zipf\"\ndispatch_precision = \"fp4\""),
            vec!["moe.dispatch_precision", "\"bf16\", \"fp8\""],
        ),
        (
            "recompute-module",
            base.replace(
                "[parallel]\n",
                "[parallel]\nrecompute_modules = [\"layernorm\", \"attn_core\"]\n",
            ),
            vec![
                "parallel.recompute_modules",
                "\"attn_core\"",
                "\"core_attn\", \"mla_up_proj\"",
            ],
        ),
        (
            "recompute-modules-full",
            base.replace(
                "[parallel]\n",
                "[parallel]\nrecompute = \"full\"\nrecompute_modules = [\"moe_act\"]\n",
            ),
            vec![
                "parallel.recompute_modules",
                "only applies with parallel.recompute = \"selective\"",
            ],
        ),
        (
            "mla-up-proj",
            base.replace("[parallel]\n", "[parallel]\nrecompute_modules = [\"mla_up_proj\"]\n"),
            vec!["parallel.recompute_modules", "multi-head latent attention"],
        ),
        (
            "unknown-moe-key",
            base.replace("routing = \"zipf\"", "routing = \"zipf\"\nrouter = \"x\""),
            vec!["unknown field `router`"],
        ),
    ];
    let dir = std::env::temp_dir().join(format!("trainsim-moe-cli-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    for (name, text, want) in cases {
        let p = dir.join(format!("{name}.toml"));
        std::fs::write(&p, &text).unwrap();
        let out = std::process::Command::new(env!("CARGO_BIN_EXE_trainsim"))
            .args(["run", "--no-charts", "--quiet", "--out"])
            .arg(dir.join("out"))
            .arg(&p)
            .output()
            .unwrap();
        let err = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(2), "{name}: {err}");
        assert!(!err.contains("panicked"), "{name}: {err}");
        assert!(err.contains(&format!("{name}.toml")), "{name}: file not named: {err}");
        for w in want {
            assert!(err.contains(w), "{name}: expected {w:?} in: {err}");
        }
    }
}

/// A MoE run draws the expert-load heatmap (PNG and SVG) beside the other charts, with
/// the same public function `trainsim run` and `trainsim plot` use; report.md links it.
#[test]
fn moe_run_draws_the_expert_load_heatmap() {
    let r = simulate(&moe_src(16, 64, 2, "[moe]\nrouting = \"zipf\"\nzipf_exponent = 1.0"));
    let d = trainsim::report::charts::moe::data(&r).expect("a MoE run has the expert-load chart");
    assert_eq!(d.loads, r.moe.as_ref().unwrap().expert_load_per_layer);
    assert!(
        d.title.contains("expert load") && d.title.contains("routing zipf"),
        "{}",
        d.title
    );
    let dir = std::env::temp_dir().join(format!("trainsim-moe-charts-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    let written = trainsim::report::charts::draw_all(&r, &dir).unwrap();
    for name in ["expert_load.png", "expert_load.svg"] {
        assert!(written.contains(&dir.join(name)), "{name} not in {written:?}");
    }
    let png = std::fs::read(dir.join("expert_load.png")).unwrap();
    assert!(
        png.starts_with(b"\x89PNG") && png.len() > 10_000,
        "PNG of {} bytes",
        png.len()
    );
    let svg = std::fs::read_to_string(dir.join("expert_load.svg")).unwrap();
    assert!(
        svg.contains("<svg") && svg.contains(&d.title),
        "SVG lacks the title {:?}",
        d.title
    );
    assert!(svg.contains("load / mean load") && svg.contains("MoE layer"));
    assert!(trainsim::report::markdown::markdown(&r).contains("](expert_load.png)"));
    let _ = std::fs::remove_dir_all(&dir);
}

/// Hierarchical dispatch (DeepEP/Tutel): a token crosses the NIC once per remote node it
/// needs, not once per expert, and is forwarded over NVLink there. With top-1 both variants
/// move the same NIC bytes (the forwarding adds NVLink bytes); with top-8 over 2 nodes the
/// hierarchical one moves far fewer NIC bytes and the step is not slower.
#[test]
fn hierarchical_dispatch_deduplicates_nic_bytes() {
    let run = |k: u32, d: &str| simulate(&moe_src(16, 64, k, &format!("[moe]\ndispatcher = \"{d}\"")));
    let nic = |r: &RunResult| r.network.as_ref().unwrap().scale_out_bytes_per_step_per_gpu;
    let nvl = |r: &RunResult| r.network.as_ref().unwrap().scale_up_bytes_per_step_per_gpu;
    let (d1, h1) = (run(1, "alltoall"), run(1, "deepep"));
    assert!((nic(&h1) / nic(&d1) - 1.0).abs() < 1e-9, "{} vs {}", nic(&h1), nic(&d1));
    assert!(nvl(&h1) > nvl(&d1), "forwarding inside the node");
    let (d8, h8) = (run(8, "direct"), run(8, "hierarchical")); // the earlier names
    assert!(
        nic(&h8) < 0.6 * nic(&d8),
        "NIC bytes {} vs direct {}",
        nic(&h8),
        nic(&d8)
    );
    assert!(
        h8.step_time_s <= d8.step_time_s,
        "{} > {}",
        h8.step_time_s,
        d8.step_time_s
    );
}

/// Overlapped all-to-alls (`[moe] overlap_all_to_all`): the all-to-alls leave the compute
/// queue and each backward pass runs on a second compute queue sharing the GPU, so one
/// micro-batch's all-to-all overlaps its neighbour's compute. On the published Qwen3-30B
/// configuration it hides part of the all-to-all and shortens the step; compute is never
/// doubled (one compute op at a time per GPU), so compute time is unchanged.
#[test]
fn overlapped_all_to_all_hides_communication_not_compute() {
    let path = repo("scenarios/validation/megatron-bridge-25.09-fp8/mbridge-25.09-qwen3-30b-a3b-dgx-h100-16-fp8.toml");
    let src = std::fs::read_to_string(path).unwrap();
    let base = simulate(&src);
    let over = simulate(&src.replace(
        "routing = \"balanced\"",
        "routing = \"balanced\"\noverlap_all_to_all = true",
    ));
    let (b, o) = (&base.breakdown, &over.breakdown);
    assert!(
        over.step_time_s < 0.97 * base.step_time_s,
        "{} vs {}",
        over.step_time_s,
        base.step_time_s
    );
    assert!(o.exposed(CommKind::Ep) < 0.8 * b.exposed(CommKind::Ep));
    assert!((o.compute_s() / b.compute_s() - 1.0).abs() < 1e-6, "same compute work");
    // the time breakdown still sums to the step
    assert!((o.exclusive_total_s() / over.step_time_s - 1.0).abs() < 1e-6);
}

/// With overlapped all-to-alls the backward pass, the pipeline's critical path, has the GPU
/// first (Megatron's combined 1F1B runs its backward's modules first): no forward compute op
/// (the first compute queue; backward passes run on the second) starts on a rank while a
/// backward op of that rank was ready and waiting (its dependencies and the previous op of
/// its queue done before).
#[test]
fn overlapped_all_to_all_gives_the_backward_the_gpu_first() {
    use trainsim::workload::Stream;
    let path =
        repo("scenarios/validation/megatron-bridge-25.09-fp8/mbridge-25.09-qwen3-235b-a22b-dgx-h100-256-fp8.toml");
    let src = std::fs::read_to_string(path).unwrap();
    let input = scenario(&src.replace(
        "routing = \"balanced\"",
        "routing = \"balanced\"\noverlap_all_to_all = true",
    ))
    .input;
    let placement = input.placement();
    let w = input.workload(&placement, 1);
    assert_eq!(w.compute_priority, Some(Stream::Compute2));
    let factors = vec![vec![1.0; w.ranks.len()]; 1];
    let out = trainsim::simulation::simulate(
        &w,
        &input.cluster,
        input.layouts(placement),
        &factors,
        &trainsim::simulation::ReplicaSet::default(),
    )
    .unwrap();
    let t = &out.op_times;
    // when each backward op could have started: its dependencies and its queue's previous op done
    let mut last_in_queue: std::collections::HashMap<(u32, usize), usize> = std::collections::HashMap::new();
    let mut waiting: Vec<Vec<(u64, u64)>> = vec![Vec::new(); w.ranks.len()];
    for (i, op) in w.ops.iter().enumerate() {
        let deps = &w.deps[op.deps.0 as usize..op.deps.1 as usize];
        let mut ready = deps.iter().map(|&d| t[d as usize].1.as_ps()).max().unwrap_or(0);
        if let Some(&prev) = last_in_queue.get(&(op.rank, op.stream.index())) {
            ready = ready.max(t[prev].1.as_ps());
        }
        last_in_queue.insert((op.rank, op.stream.index()), i);
        if op.stream == Stream::Compute2 && t[i].0.as_ps() > ready {
            waiting[op.rank as usize].push((ready, t[i].0.as_ps()));
        }
    }
    let (mut forwards, mut passed) = (0, 0);
    for (i, op) in w.ops.iter().enumerate() {
        if op.stream != Stream::Compute {
            continue;
        }
        forwards += 1;
        let start = t[i].0.as_ps();
        if waiting[op.rank as usize].iter().any(|&(r, s)| r < start && start < s) {
            passed += 1;
        }
    }
    assert!(forwards > 1000, "{forwards} forward compute ops");
    assert_eq!(passed, 0, "forward ops that started while a backward waited");
}

/// Hardware FLOPs count every expert-parallel rank's routed experts, not only the
/// representative's: with skewed routing and no drops, every FLOP the model needs is
/// executed somewhere, so HFU (which adds recomputation) is never below MFU (issue 17:
/// Mixtral showed HFU < MFU when only lane 0's expert load was counted).
#[test]
fn hfu_counts_every_expert_lane_and_is_at_least_mfu() {
    for routing in [
        "",
        "[moe]\nrouting = \"zipf\"\nzipf_exponent = 1.2",
        "[moe]\nrouting = \"hot\"\nhot_experts = 1\nhot_fraction = 0.6",
    ] {
        let r = simulate(&moe_src(16, 16, 2, routing));
        assert!(
            r.hfu_fraction >= r.mfu_fraction * (1.0 - 1e-9),
            "{routing}: HFU {} < MFU {}",
            r.hfu_fraction,
            r.mfu_fraction
        );
    }
}

/// The dispatch as the simulation charges it, balanced top-8 over EP16 on 2 nodes: the
/// all-to-alls towards the experts carry the dispatch payload (FP8: 1 byte per element and
/// a 4-byte scale per 128), those back the BF16 combine, in the closed forms of
/// `network::dispatch` for every dispatcher, with and without a node limit.
#[test]
fn simulated_dispatch_bytes_follow_the_closed_forms() {
    let (t, h, k, ep, g) = (2048.0, 1024.0, 8.0, 16.0, 8.0);
    let n = ep / g;
    let rel = |a: f64, b: f64| (a - b).abs() <= 1e-9 * b.abs().max(1.0);
    for (dispatcher, limit, fp8) in [
        ("alltoall", None, false),
        ("alltoall", None, true),
        ("allgather", None, true),
        ("deepep", None, false),
        ("deepep", Some(1u32), true),
        ("deepep_low_latency", None, true),
    ] {
        let mut section = format!("[moe]\ndispatcher = \"{dispatcher}\"\n");
        if let Some(m) = limit {
            section.push_str(&format!("node_limit = {m}\n"));
        }
        if fp8 {
            section.push_str("dispatch_precision = \"fp8\"\n");
        }
        let input = scenario(&moe_src(16, 64, 8, &section)).input;
        let w = input.workload(&input.placement(), 1);
        let nic_per_token = |b: f64| match dispatcher {
            "alltoall" => k * b * (ep - g) / ep,
            "allgather" => b * (ep - 1.0) / g,
            "deepep" => {
                let free = 1.0 - (1.0 - 1.0 / n).powf(k);
                let hit = limit.map_or(free, |m| free.min(m as f64 / n));
                b * (n - 1.0) * hit
            }
            _ => k * b * (ep - 1.0) / ep,
        };
        let dispatch_b = if fp8 { h + 4.0 * h / 128.0 } else { 2.0 * h };
        let (mut to, mut back) = (0, 0);
        for a in &w.all_to_alls {
            let nic = a.loads.ports.nic_send_bytes;
            if rel(nic, t * nic_per_token(dispatch_b)) {
                to += 1;
            } else if rel(nic, t * nic_per_token(2.0 * h)) {
                back += 1;
            } else {
                panic!("{dispatcher} {limit:?} fp8 {fp8}: NIC bytes {nic} match neither direction");
            }
        }
        // 4 layers x 2 micro-batches, each way once in the forward and once in the backward
        if fp8 {
            assert_eq!((to, back), (16, 16), "{dispatcher}");
        } else {
            assert_eq!(to + back, 32, "{dispatcher}");
        }
    }
}

/// Each recompute module saves the activation bytes the docs give (per token of a
/// micro-batch, `h` hidden, 1-byte GEMM inputs under FP8) and nothing else; the FLOPs it
/// re-adds are its modules' forward FLOPs.
#[test]
fn recompute_modules_save_their_activations_and_rerun_their_forward() {
    use trainsim::parallel::{Recompute, RecomputeModule as R, RecomputeModules};
    use trainsim::workload::memory::layer_activation_bytes;
    let ds = std::fs::read_to_string(repo("scenarios/deepseek-v3-h800-2048.toml")).unwrap();
    let input = scenario(&ds).input;
    let (m, tr) = (&input.model, &input.training);
    let mut p = input.plan.clone();
    p.recompute = Recompute::Selective;
    let bytes = |p: &trainsim::parallel::ParallelPlan, layer: u32| layer_activation_bytes(m, p, tr, layer);
    let with = |modules: &[R]| {
        let mut q = p.clone();
        q.recompute_modules = RecomputeModules::of(modules);
        q
    };
    let none = with(&[]);
    let sbh = tr.seq_length as f64 * m.hidden_size as f64;
    let s = tr.seq_length as f64;
    let moe = m.moe.as_ref().unwrap();
    let (fe, fs) = (
        moe.expert_ffn_hidden_size as f64,
        (moe.shared_expert_ffn_hidden_size * moe.num_shared_experts) as f64,
    );
    let gemm_in = 1.0; // FP8
    let moe_layer = 10;
    let saved = |modules: &[R], layer: u32| bytes(&none, layer) - bytes(&with(modules), layer);
    let rel = |a: f64, b: f64| (a - b).abs() <= 1e-9 * b.abs().max(1.0);
    let cases = [
        (R::CoreAttn, moe_layer, 0.0), // flash attention keeps no scores
        (R::Layernorm, moe_layer, 2.0 * gemm_in * sbh),
        (R::MlaUpProj, moe_layer, 2.0 * (m.q_dim() + 2.0 * m.kv_dim()) * s),
        (R::MoeAct, moe_layer, gemm_in * (moe.top_k as f64 * fe + fs) * s),
        (R::SharedExperts, moe_layer, (2.0 * 2.0 * fs + gemm_in * fs) * s),
        (
            R::Moe,
            moe_layer,
            // FP8 dispatch: the routed copies are the FP8 payload (1 byte + scales), no BF16 copy
            moe.top_k as f64
                * (1.0 + 4.0 / 128.0 + 2.0 * 2.0 * fe / m.hidden_size as f64 + gemm_in * fe / m.hidden_size as f64)
                * sbh
                + (2.0 * 2.0 * fs + gemm_in * fs) * s,
        ),
        (R::Mlp, 0, (2.0 * 2.0 + gemm_in) * m.ffn_hidden_size as f64 * s),
        (R::Mlp, moe_layer, 0.0),
        (R::MoeAct, 0, 0.0),
    ];
    for (module, layer, want) in cases {
        let got = saved(&[module], layer);
        assert!(
            rel(got, want),
            "{module:?} layer {layer}: saves {got} bytes, want {want}"
        );
    }
    // savings add up for disjoint modules
    let three = [R::Layernorm, R::MlaUpProj, R::MoeAct];
    let sum: f64 = three.iter().map(|&x| saved(&[x], moe_layer)).sum();
    assert!(rel(saved(&three, moe_layer), sum));

    // what the backward reruns: MLA's up-projections' forward FLOPs, the norms and the
    // activation as memory-bound work; `moe` reruns the block with its two all-to-alls
    use trainsim::workload::costs::{LayerContext, MoeCost};
    use trainsim::workload::layer::Step;
    use trainsim::workload::passes::layer_steps;
    let gpu = &input.cluster.gpu;
    let rerun = |modules: &[R]| {
        let q = with(modules);
        let cx = LayerContext::new(gpu, m, &q, tr);
        let c = MoeCost::new(gpu, m, &q, tr.precision, tr.seq_length);
        let steps = layer_steps(&cx, c.as_ref()).backward;
        let n = steps.len()
            - layer_steps(&LayerContext::new(gpu, m, &none, tr), c.as_ref())
                .backward
                .len();
        steps[..n].to_vec()
    };
    let flops = |steps: &[Step]| -> f64 {
        steps
            .iter()
            .map(|s| match s {
                Step::Compute { flops, .. } => *flops,
                _ => 0.0,
            })
            .sum()
    };
    let trainsim::model::Attention::Mla {
        q_lora_rank,
        kv_lora_rank,
        qk_nope_head_dim,
        qk_rope_head_dim,
        v_head_dim,
    } = m.attention
    else {
        panic!("DeepSeek-V3 uses MLA")
    };
    let heads = m.num_heads as f64;
    let up = 2.0
        * s
        * heads
        * (kv_lora_rank as f64 * (qk_nope_head_dim + v_head_dim) as f64
            + q_lora_rank as f64 * (qk_nope_head_dim + qk_rope_head_dim) as f64);
    assert!(rel(flops(&rerun(&[R::MlaUpProj])), up));
    for memory_bound in [R::Layernorm, R::MoeAct] {
        let r = rerun(&[memory_bound]);
        assert_eq!(r.len(), 1, "{memory_bound:?}");
        assert!(matches!(r[0], Step::Compute { flops, time_s, .. } if flops == 0.0 && time_s > 0.0));
    }
    let block = rerun(&[R::Moe]);
    let a2a = block.iter().filter(|s| matches!(s, Step::AllToAll { .. })).count();
    assert_eq!(a2a, 2, "the MoE block reruns its dispatch and combine");
    assert!(block.iter().any(|s| matches!(s, Step::Experts { .. })));
}

/// DeepSeek-V3's multi-token-prediction module is a module on the last chunk: one more
/// MoE layer's routing draws, its parameters and activations on the last stage, and more
/// work per step; the main model keeps its 61 layers.
#[test]
fn mtp_is_a_module_after_the_output_head() {
    let src = moe_src(16, 64, 2, "").replace("[parallel]\ntp = 1\npp = 1", "[parallel]\ntp = 1\npp = 2");
    let src = src.replace("dp = 16\n", "dp = 8\n").replace("ep = 16\n", "ep = 8\n");
    let plain = simulate(&src);
    let mtp = simulate(&src.replace(
        "expert_ffn_hidden_size = 1024",
        "expert_ffn_hidden_size = 1024\nmtp_modules = 1",
    ));
    let (a, b) = (plain.moe.as_ref().unwrap(), mtp.moe.as_ref().unwrap());
    assert_eq!(b.expert_load_per_layer.len(), a.expert_load_per_layer.len() + 1);
    assert!(mtp.step_time_s > plain.step_time_s);
    let input = scenario(&src.replace(
        "expert_ffn_hidden_size = 1024",
        "expert_ffn_hidden_size = 1024\nmtp_modules = 1",
    ))
    .input;
    assert_eq!(input.model.num_layers, 4);
    let mem = |i: &trainsim::simulation::RunInput| {
        trainsim::workload::memory::memory_per_stage(&i.model, &i.plan, &i.training, &[80.0])
    };
    let plain_in = scenario(&src).input;
    let (m0, m1) = (mem(&plain_in), mem(&input));
    assert_eq!(m0[0].total_gib, m1[0].total_gib, "the first stage holds no MTP");
    assert!(m1[1].activations_gib > m0[1].activations_gib && m1[1].weights_gib > m0[1].weights_gib);
}
