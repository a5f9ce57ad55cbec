use crate::{repo, scenario};
use trainsim::scenario::Scenario;
use trainsim::simulation::breakdown::Category;
use trainsim::simulation::{run, RunResult};
use trainsim::workload::wire::{layer_grad_elements, BucketElements, GradPhase};
use trainsim::workload::CommKind;

/// One node of 8 H100 (or two with `num_gpus = 16`), one pipeline stage, rings forced
/// under the hop model so that every collective's bytes are the ring's closed form.
const BASE: &str = r#"
[cluster]
num_gpus = 8
[cluster.gpu]
preset = "H100-SXM"
[cluster.network]
collective_model = "hop"
all_reduce_algorithm = "ring"
all_gather_algorithm = "ring"
reduce_scatter_algorithm = "ring"
[model]
preset = "llama2-7b"
num_layers = 4
[parallel]
zero_stage = 0
overlap_grad_reduce = false
[training]
global_batch_size = 16
seq_length = 1024
[simulation]
iterations = 2
"#;

fn with(extra: &str, sets: &[(&str, &str)]) -> RunResult {
    let mut src = BASE.to_string();
    for (a, b) in sets {
        assert!(src.contains(a), "{a}");
        src = src.replacen(a, b, 1);
    }
    src.push_str(extra);
    run(&scenario(&src).input).expect("simulates")
}

fn bytes(r: &RunResult, k: CommKind) -> f64 {
    r.network.as_ref().expect("network usage").bytes_by_kind.get(k)
}

fn close(a: f64, b: f64, tol: f64) -> bool {
    (a / b - 1.0).abs() < tol
}

/// Gradient elements of the single stage: the layers, the embedding and the untied head.
fn stage_elements(src_model_layers: u32, r: u32) -> BucketElements {
    let s = scenario(BASE);
    let (m, p) = (&s.input.model, &s.input.plan);
    let mut e = BucketElements::default();
    for l in 0..src_model_layers {
        e.add(&layer_grad_elements(m, p, l, r)[0]);
    }
    for _ in 0..2 {
        e.add_matrix(m.vocab_size as f64, m.hidden_size as f64, 1.0, r);
    }
    e
}

/// Every compression method moves the closed-form bytes of round2's volume formulas, read
/// off the simulation's per-kind bytes: a ring all-reduce of S bytes sends 2(n-1)/n S per
/// GPU, a ring all-gather or reduce-scatter (n-1)/n S.
#[test]
fn compressed_collectives_move_the_closed_form_bytes() {
    let n = 8.0;
    let ar = 2.0 * (n - 1.0) / n;
    let e = stage_elements(4, 1).elements;
    // BF16, FP32 and FP8 on the wire
    let bf16 = with("", &[]);
    assert!(
        close(bytes(&bf16, CommKind::DpGrad), ar * 2.0 * e, 1e-9),
        "{}",
        bytes(&bf16, CommKind::DpGrad)
    );
    let fp32 = with("[communication]\ndp_grad_dtype = \"fp32\"\n", &[]);
    assert!(close(bytes(&fp32, CommKind::DpGrad), ar * 4.0 * e, 1e-9));
    let fp8 = with("[communication]\ndp_grad_dtype = \"fp8\"\ntp_dtype = \"fp8\"\n", &[]);
    assert!(close(bytes(&fp8, CommKind::DpGrad), ar * (1.0 + 4.0 / 128.0) * e, 1e-9));
    // 1-bit Adam: 1/8 byte per element in the compressed steps, 16x less than BF16
    let onebit = with("[communication]\ncompression = \"onebit_adam\"\n", &[]);
    assert!(close(bytes(&onebit, CommKind::DpGrad), ar * e / 8.0, 1e-9));
    let c = onebit.comm.as_ref().expect("compression summary");
    let warm = c
        .phases
        .iter()
        .find(|p| p.phase == GradPhase::Uncompressed)
        .expect("warm-up phase");
    assert!(close(warm.dp_grad_bytes_per_step_per_gpu, ar * 2.0 * e, 1e-9));
    // PowerSGD rank 4: r (n + m) per compressed matrix in two all-reduces, the rest as is
    let ps = with("[communication]\ncompression = \"powersgd\"\npowersgd_rank = 4\n", &[]);
    let el = stage_elements(4, 4);
    let want = ar * 2.0 * (4.0 * (el.rows + el.cols) + el.plain);
    assert!(
        close(bytes(&ps, CommKind::DpGrad), want, 1e-9),
        "{} vs {want}",
        bytes(&ps, CommKind::DpGrad)
    );
    assert!(bytes(&ps, CommKind::DpGrad) < 0.01 * bytes(&bf16, CommKind::DpGrad));
    // top-k: every rank's k values (2 bytes) and indices (4 bytes), all-gathered
    let tk = with("[communication]\ncompression = \"topk\"\ntopk_fraction = 0.01\n", &[]);
    let k = (0.01 * e).ceil();
    assert!(close(bytes(&tk, CommKind::DpGrad), (n - 1.0) / n * n * k * 6.0, 1e-9));
}

/// ZeRO++ on two nodes (DP16): qgZ reduce-scatters INT4 gradients, qwZ gathers INT8
/// weights in the forward, hpZ gathers the backward's weights inside the node (8 GPUs),
/// each per micro-batch; 3M -> 0.75M bytes across nodes.
#[test]
fn zeropp_moves_its_closed_form_bytes() {
    let sets = [
        ("num_gpus = 8", "num_gpus = 16"),
        ("zero_stage = 0", "zero_stage = 3"),
        ("global_batch_size = 16", "global_batch_size = 32"),
    ];
    let base = with("", &sets);
    let zpp = with("[communication]\ncompression = \"zeropp\"\n", &sets);
    let s = scenario(BASE);
    let layers: f64 = (0..4).map(|l| s.input.model.layer_dense_params(l)).sum();
    let emb = 2.0 * s.input.model.vocab_size as f64 * s.input.model.hidden_size as f64;
    let (n, node, mb) = (16.0, 8.0, 2.0);
    let rs = (n - 1.0) / n;
    // baseline ZeRO-3: BF16 reduce-scatter and two BF16 gathers per micro-batch
    assert!(close(
        bytes(&base, CommKind::DpGrad),
        mb * rs * 2.0 * (layers + emb),
        1e-9
    ));
    assert!(close(
        bytes(&base, CommKind::DpParam),
        mb * 2.0 * rs * 2.0 * layers,
        1e-9
    ));
    assert!(close(
        bytes(&zpp, CommKind::DpGrad),
        mb * rs * 0.5 * (layers + emb),
        1e-9
    ));
    let param = mb * (rs * 1.0 * layers + (node - 1.0) / node * 2.0 * layers);
    assert!(
        close(bytes(&zpp, CommKind::DpParam), param, 1e-9),
        "{} vs {param}",
        bytes(&zpp, CommKind::DpParam)
    );
    // the backward gathers left the NIC: cross-node bytes fall by more than half
    let nic = |r: &RunResult| r.network.as_ref().unwrap().scale_out_bytes_per_step_per_gpu;
    assert!(nic(&zpp) < 0.45 * nic(&base), "{} vs {}", nic(&zpp), nic(&base));
    // hpZ's secondary weight shard costs memory
    assert!(zpp.memory.weights_gib > base.memory.weights_gib);
}

/// 1-bit Adam's warm-up is simulated uncompressed and the run's mean step weighs both
/// phases; time to a target uses that mean, and a convergence penalty raises it.
#[test]
fn warm_up_phase_and_convergence_penalty_reach_time_to_target() {
    let slow_net = [(
        "collective_model = \"hop\"",
        "collective_model = \"hop\"\nnic_gbit_per_s = 25\nnics_per_node = 1",
    )];
    let sets = [slow_net[0], ("num_gpus = 8", "num_gpus = 16")];
    let target = "[target]\nloss = 2.6\n";
    let plain = with(target, &sets);
    let onebit = with(
        &format!("[communication]\ncompression = \"onebit_adam\"\n{target}"),
        &sets,
    );
    let c = onebit.comm.as_ref().unwrap();
    let (comp, warm) = (&c.phases[0], &c.phases[1]);
    assert_eq!(
        (comp.phase, warm.phase),
        (GradPhase::Compressed, GradPhase::Uncompressed)
    );
    assert_eq!(comp.step_time_s, onebit.step_time_s);
    assert!(
        comp.step_time_s < warm.step_time_s,
        "compression helps on a slow network"
    );
    assert!(close(
        c.mean_step_time_s,
        0.85 * comp.step_time_s + 0.15 * warm.step_time_s,
        1e-12
    ));
    let t = |r: &RunResult| r.to_target.as_ref().unwrap().compute_time_to_target_h;
    let steps = |r: &RunResult| r.to_target.as_ref().unwrap().steps_to_target;
    assert!(close(t(&onebit) * 3600.0, steps(&onebit) * c.mean_step_time_s, 1e-9));
    assert!(t(&onebit) < t(&plain));
    let penal = with(
        &format!("[communication]\ncompression = \"onebit_adam\"\nextra_steps_fraction = 0.25\n{target}"),
        &sets,
    );
    assert!(close(steps(&penal), 1.25 * steps(&onebit), 1e-9));
    assert!(close(t(&penal), 1.25 * t(&onebit), 1e-9));
}

/// Optimizer offload: the exposed offload time is the CPU Adam step, the upload of the
/// updated shard and the copy of the last gradient bucket's shard (the embedding's; the
/// other buckets' copies hide behind the backward); NVMe takes the longer of CPU Adam and
/// the state swap. Memory falls with every tier offloaded.
#[test]
fn offload_time_closed_forms_and_memory() {
    let z = [
        ("zero_stage = 0", "zero_stage = 1"),
        ("overlap_grad_reduce = false", "overlap_grad_reduce = true"),
    ];
    let base = with("", &z);
    let host = "[cluster.host]\ncpu_adam_params_per_s = 2e10\npcie_gbyte_per_s = 200\nnvme_gbyte_per_s = 30\n";
    let cpu = with(&format!("{host}[offload]\noptimizer = \"cpu\"\n"), &z);
    let s = scenario(BASE);
    // the optimizer's parameters on the stage: the layers, the input embedding and the
    // untied output layer (Llama 2 does not tie them; one stage holds both)
    let m = &s.input.model;
    assert!(!m.tied_embeddings);
    let e = (0..4).map(|l| m.layer_params(l)).sum::<f64>() + 2.0 * (m.vocab_size * m.hidden_size) as f64;
    let shard = e / 8.0;
    let adam = shard * 8.0 / 2e10;
    let upload = 2.0 * shard / 200e9;
    let last_bucket = 2.0 * (m.vocab_size * m.hidden_size) as f64 / 8.0 / 200e9;
    let want = adam + upload + last_bucket;
    let got = cpu.breakdown.get(Category::Offload);
    assert!(close(got, want, 0.005), "{got} vs {want}");
    let nvme = with(&format!("{host}[offload]\noptimizer = \"nvme\"\n"), &z);
    let swap = 2.0 * 16.0 * shard * 8.0 / 30e9;
    assert!(close(
        nvme.breakdown.get(Category::Offload),
        adam.max(swap) + upload + last_bucket,
        0.005
    ));
    assert!(cpu.memory.total_gib < base.memory.total_gib);
    assert_eq!(cpu.memory.optimizer_gib, 0.0);
    assert!(close(cpu.memory.host_gib, base.memory.optimizer_gib * 4.0 / 3.0, 1e-9));
    assert!(nvme.memory.nvme_gib > 0.0 && nvme.memory.host_gib == 0.0);
    // ZeRO-Infinity: parameters too, and activations
    // (four stages: the first holds four micro-batches' activations, offloaded two)
    let z3 = [
        ("zero_stage = 0", "zero_stage = 3\npp = 4"),
        ("num_gpus = 8", "num_gpus = 32"),
        ("global_batch_size = 16", "global_batch_size = 64"),
    ];
    let z3_base = with("", &z3);
    let inf = with(
        "[offload]\noptimizer = \"cpu\"\nparameters = \"cpu\"\nactivations = \"cpu\"\n",
        &z3,
    );
    assert!(inf.memory.weights_gib < z3_base.memory.weights_gib);
    assert!(inf.memory.activations_gib < z3_base.memory.activations_gib);
    assert!(inf.memory.total_gib < z3_base.memory.total_gib);
    assert!(
        inf.step_time_s > z3_base.step_time_s,
        "PCIe fetches and the CPU step cost time"
    );
    assert!(s.input.offload.host.cpu_memory_gib > 0.0);
}

/// Bad input gets located errors: compression a plan's collective does not support, an
/// unknown method, a key of another method, an unknown wire type, offloading without CPU
/// memory or outside its ZeRO stage.
#[test]
fn bad_compression_and_offload_input_gets_located_errors() {
    let err = |extra: &str, sets: &[(&str, &str)]| {
        let mut src = BASE.to_string();
        for (a, b) in sets {
            src = src.replacen(a, b, 1);
        }
        src.push_str(extra);
        Scenario::from_source(&src, std::path::Path::new("s.toml"))
            .err()
            .map(|e| e.to_string())
            .unwrap_or_else(|| panic!("accepted: {extra}"))
    };
    let e = err(
        "[communication]\ncompression = \"onebit_adam\"\n",
        &[("zero_stage = 0", "zero_stage = 1")],
    );
    assert!(
        e.contains("s.toml:") && e.contains("communication.compression") && e.contains("zero_stage"),
        "{e}"
    );
    let e = err("[communication]\ncompression = \"onebit\"\n", &[]);
    assert!(
        e.contains("communication.compression") && e.contains("\"onebit_adam\""),
        "{e}"
    );
    let e = err(
        "[communication]\ncompression = \"onebit_adam\"\npowersgd_rank = 4\n",
        &[],
    );
    assert!(
        e.contains("communication.powersgd_rank") && e.contains("\"powersgd\""),
        "{e}"
    );
    let e = err("[communication]\ndp_grad_dtype = \"int4\"\n", &[]);
    assert!(
        e.contains("communication.dp_grad_dtype") && e.contains("\"fp8\""),
        "{e}"
    );
    let e = err("[communication]\ncompression = \"zeropp\"\n", &[]);
    assert!(e.contains("ZeRO stage 3"), "{e}");
    let e = err(
        "[cluster.host]\ncpu_memory_gib = 0\n[offload]\noptimizer = \"cpu\"\n",
        &[("zero_stage = 0", "zero_stage = 2")],
    );
    assert!(
        e.contains("cluster.host.cpu_memory_gib") && e.contains("CPU memory"),
        "{e}"
    );
    let e = err("[offload]\noptimizer = \"cpu\"\n", &[]);
    assert!(e.contains("offload.optimizer") && e.contains("zero_stage >= 1"), "{e}");
    let e = err(
        "[offload]\noptimizer = \"cpu\"\nparameters = \"nvme\"\n",
        &[("zero_stage = 0", "zero_stage = 2")],
    );
    assert!(e.contains("offload.parameters") && e.contains("zero_stage = 3"), "{e}");
    let e = err("[offload]\nactivations = \"nvme\"\n", &[]);
    assert!(e.contains("offload.activations") && e.contains("\"cpu\""), "{e}");
}

/// The two example scenarios run: compression pays on their slow network, offloading fits
/// a plan that does not fit without it.
#[test]
fn example_scenarios_show_their_effect() {
    let load = |rel: &str| Scenario::load(&repo(rel)).unwrap_or_else(|e| panic!("{e}"));
    let s = load("scenarios/llama2-7b-a100-64-onebit-adam.toml");
    let r = run(&s.input).unwrap();
    let c = r.comm.as_ref().unwrap();
    assert!(c.phases[0].step_time_s < c.phases[1].step_time_s);
    let s = load("scenarios/llama2-70b-h100-8-offload.toml");
    let r = run(&s.input).unwrap();
    assert!(r.memory.fits && r.breakdown.get(Category::Offload) > 0.0);
    let mut no = s.input.clone();
    no.offload.optimizer = trainsim::workload::offload::OffloadTier::None;
    assert!(!run(&no).unwrap().memory.fits);
}
