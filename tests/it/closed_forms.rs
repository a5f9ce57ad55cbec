use crate::scenario;
use trainsim::network::collective::{ring_cost, CollectiveKind, GroupLayout};
use trainsim::network::FlowNetwork;
use trainsim::simulation::breakdown::Category;
use trainsim::units::SimTime;
use trainsim::workload::Phase;

/// A pipeline-only scenario whose communication is free (links 1e9 GB/s, zero latency, the
/// hop model: the NCCL model's sends pay p2p floors and per-channel rates)
/// and whose embedding, head and optimizer are negligible (vocabulary 64, tiny model
/// state), so every stage does the same work per micro-batch.
fn free_comm_pipeline(pp: u32, m: u32, v: u32) -> String {
    format!(
        r#"
[cluster]
num_gpus = {pp}
gpus_per_node = 1
[cluster.gpu]
preset = "A100-80GB"
scale_up_gbyte_per_s = 1e9
kernel_overhead_us = 0
[cluster.network]
collective_model = "hop"
nic_gbit_per_s = 1e10
scale_up_latency_us = 0
scale_out_latency_us = 0
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
virtual_stages = {v}
[training]
global_batch_size = {m}
seq_length = 2048
"#,
        layers = 4 * pp * v
    )
}

/// Relative tolerance on bubble closed forms. The closed forms assume identical stages;
/// here the first stage also runs the embedding and the last the output head and loss
/// (vocabulary 64, about 1% of a stage's work), which stretches the measured bubble by up
/// to 2% of itself.
const TOL: f64 = 0.03;

/// Bubble as a fraction of the pipeline phase of the step: the closed forms describe the
/// forward/backward schedule, so the optimizer step and the final synchronisation (which
/// every stage runs at the same time after the pipeline drains) are taken out.
fn pipeline_bubble(r: &trainsim::simulation::RunResult) -> f64 {
    let b = &r.breakdown;
    b.pipeline_bubble_s() / (r.step_time_s - b.get(Category::Compute(Phase::Optimizer)) - b.get(Category::Sync))
}

fn bubble(pp: u32, m: u32, v: u32) -> f64 {
    let s = scenario(&free_comm_pipeline(pp, m, v));
    pipeline_bubble(&trainsim::simulation::run(&s.input).expect("simulates"))
}

/// 1F1B: each of p stages is idle for (p-1) of the (m+p-1) slot-times of a step.
#[test]
fn one_f_one_b_bubble_is_p_minus_1_over_m_plus_p_minus_1() {
    for (p, m) in [(2, 4), (4, 4), (4, 16), (8, 8), (8, 32)] {
        let want = (p - 1) as f64 / (m + p - 1) as f64;
        let got = bubble(p, m, 1);
        assert!(
            (got - want).abs() < TOL * want,
            "p={p} m={m}: bubble {got:.4}, closed form {want:.4}"
        );
    }
}

/// Interleaved 1F1B with v chunks: bubble (p-1)/(v m + p-1).
#[test]
fn interleaved_bubble_is_p_minus_1_over_vm_plus_p_minus_1() {
    for (p, m, v) in [(4, 8, 2), (4, 8, 4), (8, 16, 3)] {
        let want = (p - 1) as f64 / (v * m + p - 1) as f64;
        let got = bubble(p, m, v);
        assert!(
            (got - want).abs() < TOL * want,
            "p={p} m={m} v={v}: bubble {got:.4}, closed form {want:.4}"
        );
    }
}

/// GPipe has the same bubble as 1F1B: (p-1)/(m+p-1).
#[test]
fn gpipe_bubble_matches_its_closed_form() {
    let src = free_comm_pipeline(4, 8, 1).replace("virtual_stages = 1", "virtual_stages = 1\nschedule = \"gpipe\"");
    let r = trainsim::simulation::run(&scenario(&src).input).unwrap();
    let want = 3.0 / 11.0;
    assert!(
        (pipeline_bubble(&r) - want).abs() < TOL * want,
        "{} vs {want}",
        pipeline_bubble(&r)
    );
}

/// Ring all-reduce on an idle network: 2(n-1)/n * S/B + 2(n-1) * latency, inside a node
/// (NVLink) and across nodes with one GPU per node (NIC).
#[test]
fn ring_all_reduce_time_on_an_idle_network() {
    let s = scenario(&free_comm_pipeline(2, 2, 1));
    let mut c = s.input.cluster.clone();
    c.scale_up_latency_us = 2.0;
    c.scale_out_latency_us = 5.0;
    c.gpu.scale_up_gbyte_per_s = 300.0;
    c.nic_gbit_per_s = 200.0;
    c.gpus_per_node = 8;
    c.nics_per_node = 8;
    let size = 1.0 * (1u64 << 30) as f64;
    for (n, g, bw, lat) in [
        (8u32, 8u32, 300e9 * c.scale_up_efficiency, 2e-6),
        (16, 1, 25e9 * c.scale_out_efficiency, 5e-6),
    ] {
        let cost = ring_cost(
            CollectiveKind::AllReduce,
            GroupLayout {
                size: n,
                members_per_node: g,
            },
            size,
            &c,
        );
        let mut net = FlowNetwork::new();
        let tx = net.add_link(bw);
        let rx = net.add_link(bw);
        let pair = [tx, rx];
        let flows: Vec<(&[u32], f64)> = cost.loads.iter().map(|(_, b)| (&pair[..], *b)).collect();
        assert!(net
            .start_transfer(SimTime::ZERO, &flows, SimTime::from_secs(cost.latency_s), 1)
            .is_none());
        let t = net.next_completion().unwrap();
        let done = net.advance(t);
        let nf = n as f64;
        let want = 2.0 * (nf - 1.0) / nf * size / bw + 2.0 * (nf - 1.0) * lat;
        let got = done[0].ready_at.as_secs();
        assert!(
            (got / want - 1.0).abs() < 1e-9,
            "n={n}: {got} s vs closed form {want} s"
        );
    }
}

/// PEERS.md workload P5 (GPT-3 175B, TP8 PP8, 8 micro-batches, real communication): the
/// bubble is the 1F1B closed form 7/15 of the pipeline phase, where peers report 0.10 s
/// (SimAI) or ignore it.
#[test]
fn peers_p5_bubble_matches_the_1f1b_closed_form() {
    let s = trainsim::scenario::Scenario::load(&crate::repo("scenarios/peers/p5-gpt3-175b-a100-64.toml")).unwrap();
    let r = trainsim::simulation::run(&s.input).unwrap();
    let want = 7.0 / 15.0;
    let got = pipeline_bubble(&r);
    assert!(
        (got - want).abs() < TOL * want,
        "bubble {got:.4} vs (p-1)/(m+p-1) = {want:.4}"
    );
}
