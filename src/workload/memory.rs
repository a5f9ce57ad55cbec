//! Memory per GPU: weights, gradients, optimizer states (by ZeRO stage), activations (by
//! recomputation mode and pipeline in-flight micro-batches) and communication buffers.
//!
//! Activation sizes follow Korthikanti et al. 2022 (Table 2), generalised to GQA and gated
//! MLPs; with fused (flash) attention the `5 a s / h` score term is absent. Context
//! parallelism divides every activation by `cp` (each rank keeps its `s / cp` tokens) and
//! adds the transient K/V buffers of its exchange; the gradient group and ZeRO's sharding
//! are DP x CP. How many
//! micro-batches' activations a stage holds is read off the schedule's program
//! ([`crate::parallel::schedule::peak_in_flight`]), not from a per-schedule formula; so is
//! what pending weight-gradient passes keep (their GEMM inputs and output gradients, M_W,
//! [`weight_grad_buffer_bytes`]) for schedules that split the backward. Schedules that keep
//! two copies of a stage's parameters (DualPipe) hold two sets of weights and gradients
//! and one optimizer state, sharded over the pair.

use crate::hardware::Precision;
use crate::model::TransformerSpec;
use crate::parallel::schedule::{peak_activation, peak_in_flight, PassKind};
use crate::parallel::{ParallelPlan, Recompute, RecomputeModule, RecomputeModules};
use crate::training::TrainingSpec;
use crate::units::BYTES_PER_GIB;
use serde::{Deserialize, Serialize};

/// Bytes of one GPU's memory by consumer (the most loaded pipeline stage).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct MemoryBreakdown {
    /// Pipeline stage this describes (the most loaded one).
    pub stage: u32,
    /// 16-bit weights, GiB.
    pub weights_gib: f64,
    /// FP32 gradient buffer, GiB.
    pub gradients_gib: f64,
    /// FP32 master weights and Adam moments, GiB.
    pub optimizer_gib: f64,
    /// Stored activations of in-flight micro-batches, GiB.
    pub activations_gib: f64,
    /// Communication buffers and framework workspace, GiB.
    pub buffers_gib: f64,
    /// Sum, GiB.
    pub total_gib: f64,
    /// HBM capacity, GiB.
    pub capacity_gib: f64,
    /// Whether the total fits in HBM (and the offloaded state in host memory).
    pub fits: bool,
    /// State offloaded to CPU memory, GiB per GPU (absent without offloading).
    #[serde(default, skip_serializing_if = "is_zero")]
    pub host_gib: f64,
    /// CPU memory per GPU (the node's over its GPUs), GiB (absent without offloading).
    #[serde(default, skip_serializing_if = "is_zero")]
    pub host_capacity_gib: f64,
    /// State offloaded to NVMe, GiB per GPU (absent without NVMe offloading).
    #[serde(default, skip_serializing_if = "is_zero")]
    pub nvme_gib: f64,
}

fn is_zero(x: &f64) -> bool {
    *x == 0.0
}

/// Memory of one GPU with the wire's compression buffers and hpZ's secondary weight shard
/// ([`super::wire`]), and offloaded state moved to the host or NVMe ([`super::offload`]):
/// the optimizer's FP32 states and gradient shard leave HBM (16-bit gradients stay),
/// offloaded parameters leave no weight shard (gathered layers are transient), offloaded
/// activations leave two micro-batches' worth per stage. `hpz_group`: GPUs of the
/// gradient group in one node.
#[allow(clippy::too_many_arguments)]
pub fn with_wire_and_offload(
    mut mem: MemoryBreakdown,
    m: &TransformerSpec,
    p: &ParallelPlan,
    tr: &TrainingSpec,
    comm: &super::wire::CommSpec,
    off: &super::offload::OffloadSpec,
    hpz_group: u32,
) -> MemoryBreakdown {
    use super::offload::OffloadTier;
    let gib = BYTES_PER_GIB;
    let shard3 = if p.zero_stage >= 3 { p.grad_group() as f64 } else { 1.0 };
    let local_params = mem.weights_gib * gib / 2.0 * shard3;
    mem.buffers_gib += comm.buffer_bytes_per_element(p.grad_group()) * local_params / gib;
    let c = &comm.compression;
    if c.method == super::wire::Method::Zeropp && c.hpz && p.zero_stage >= 3 {
        mem.weights_gib += 2.0 * local_params / hpz_group.max(1) as f64 / gib;
    }
    let mut moved = [0.0f64; 3]; // by tier: none, cpu, nvme
    if off.optimizer.is_offloaded() {
        // FP32 master weights and moments, and the FP32 gradient shard (a third of them)
        moved[off.optimizer as usize] += mem.optimizer_gib * 4.0 / 3.0;
        mem.optimizer_gib = 0.0;
        mem.gradients_gib /= 2.0;
    }
    if off.parameters.is_offloaded() {
        moved[off.parameters as usize] += mem.weights_gib;
        // the gathered layers' buffers stay, as without offloading (not counted there either)
        mem.weights_gib = 0.0;
    }
    if off.activations.is_offloaded() {
        let layers = (m.num_layers as f64 / p.pp as f64).ceil();
        let per_mb = layers
            * (0..m.num_layers)
                .map(|l| layer_activation_bytes(m, p, tr, l))
                .sum::<f64>()
            / m.num_layers.max(1) as f64;
        let keep = mem.activations_gib.min(2.0 * per_mb / gib);
        moved[off.activations as usize] += mem.activations_gib - keep;
        mem.activations_gib = keep;
    }
    mem.host_gib = moved[OffloadTier::Cpu as usize];
    mem.nvme_gib = moved[OffloadTier::Nvme as usize];
    mem.total_gib = mem.weights_gib + mem.gradients_gib + mem.optimizer_gib + mem.activations_gib + mem.buffers_gib;
    if off.any() {
        mem.host_capacity_gib = off.host_capacity_gib();
    }
    mem.fits = mem.total_gib <= mem.capacity_gib && mem.host_gib <= mem.host_capacity_gib;
    mem
}

impl MemoryBreakdown {
    /// Consumers sorted from largest to smallest, with their GiB.
    pub fn largest_consumers(&self) -> Vec<(&'static str, f64)> {
        let mut v = vec![
            ("weights", self.weights_gib),
            ("gradients", self.gradients_gib),
            ("optimizer states", self.optimizer_gib),
            ("activations", self.activations_gib),
            ("buffers", self.buffers_gib),
        ];
        v.sort_by(|a, b| b.1.total_cmp(&a.1));
        v
    }
}

/// Activation bytes one dense layer stores for one micro-batch on one GPU.
pub fn activation_bytes_per_layer(m: &TransformerSpec, p: &ParallelPlan, t: &TrainingSpec) -> f64 {
    layer_activation_bytes(m, p, t, 0)
}

/// Activation bytes layer `layer` stores for one micro-batch on one GPU. A MoE layer
/// keeps, instead of the dense MLP's tensors, `top_k` copies of its sequence shard's
/// tokens: the permuted input, the experts' GEMM inputs and activation inputs (plus the
/// shared experts' tensors).
pub fn layer_activation_bytes(m: &TransformerSpec, p: &ParallelPlan, t: &TrainingSpec, layer: u32) -> f64 {
    let (seq, flash) = (t.seq_length, t.flash_attention);
    // this rank's sequence shard under context parallelism
    let s = seq as f64 / p.cp.max(1) as f64;
    let b = p.micro_batch_size as f64;
    let h = m.hidden_size as f64;
    let tp = p.tp as f64;
    let sbh = s * b * h;
    // FP8 (Transformer Engine) keeps 1-byte copies of GEMM inputs for the weight gradient
    let gemm_in = if t.precision == Precision::Fp8 { 1.0 } else { 2.0 };
    if p.recompute == Recompute::Full {
        // only the layer input is kept
        return 2.0 * sbh / if p.sequence_parallel { tp } else { 1.0 };
    }
    let moe = m.moe.as_ref().filter(|_| m.is_moe_layer(layer));
    // what selective recomputation reruns is not kept (RecomputeModule's docs)
    let rerun = |module: RecomputeModule| p.recompute == Recompute::Selective && p.recompute_modules.has(module);
    let f_ratio = if moe.is_some() {
        0.0
    } else {
        m.ffn_hidden_size as f64 / h
    };
    let qkv = (m.q_dim() + 2.0 * m.kv_dim()) / h; // relative width of Q, K, V
                                                  // replicated across TP ranks unless SP: two norm inputs (2+2), the norms' outputs (the
                                                  // QKV and fc1 GEMM inputs), two dropout masks (1+1)
    let norm_outputs = if rerun(RecomputeModule::Layernorm) {
        0.0
    } else {
        2.0 * gemm_in
    };
    let replicated = 4.0 + norm_outputs + 2.0;
    // split across TP ranks: Q, K, V (2 bytes x widths), attention output (out-proj GEMM
    // input), MLP activation input (2 F x projections) and fc2 input (GEMM input, F wide)
    let q_k_v = if rerun(RecomputeModule::MlaUpProj) {
        0.0
    } else {
        2.0 * qkv
    };
    let mlp = if rerun(RecomputeModule::Mlp) {
        0.0
    } else {
        2.0 * f_ratio * m.ffn_in_projections() + gemm_in * f_ratio
    };
    let split = q_k_v + gemm_in + mlp;
    let mut per = if p.sequence_parallel {
        (replicated + split) / tp
    } else {
        replicated + split / tp
    };
    if let Some(moe) = moe {
        // tokens stay sharded over TP ranks inside the MoE block
        let proj = m.ffn_in_projections();
        let fe = moe.expert_ffn_hidden_size as f64 / h;
        let fs = moe.shared_expert_ffn_hidden_size as f64 * moe.num_shared_experts as f64 / h;
        // the down-projections' inputs (the activations' outputs)
        let act_out = if rerun(RecomputeModule::MoeAct) { 0.0 } else { gemm_in };
        // the routed copies: the permuted tokens (16-bit) and the experts' GEMM input; an
        // FP8 dispatch delivers the GEMM input itself (with its scales), no 16-bit copy.
        // With expert tensor parallelism the GEMM input is the ETP group's tokens, gathered
        // (`expert_tp` times the rank's); the GEMM outputs are as wide as before in all
        let etp = p.expert_tp.max(1) as f64;
        let tokens_in = if p.moe_dispatch_fp8 {
            etp * (1.0 + 4.0 / crate::network::dispatch::FP8_SCALE_GROUP)
        } else {
            2.0 + etp * gemm_in
        };
        let routed = moe.top_k as f64 * (tokens_in + 2.0 * fe * proj + act_out * fe);
        let shared = if rerun(RecomputeModule::SharedExperts) {
            0.0
        } else {
            2.0 * fs * proj + act_out * fs
        };
        if !rerun(RecomputeModule::Moe) {
            per += (routed + shared) / tp;
        }
    }
    let scores = if flash || rerun(RecomputeModule::CoreAttn) {
        0.0
    } else {
        5.0 * m.num_heads as f64 * s / h / tp
    };
    per += scores;
    sbh * per
}

/// Bytes a pending weight-gradient pass (W) of layer `layer` keeps for one micro-batch on
/// one GPU once its input-gradient pass (B) has run: every GEMM's input and output gradient
/// (Zero Bubble's M_W, `32 s b h` for a GPT layer without tensor parallelism).
pub fn weight_grad_buffer_bytes(m: &TransformerSpec, p: &ParallelPlan, t: &TrainingSpec, layer: u32) -> f64 {
    let s = t.seq_length as f64;
    let b = p.micro_batch_size as f64;
    let h = m.hidden_size as f64;
    let tp = p.tp as f64;
    // FP8 (Transformer Engine, DeepSeek-V3) runs the weight-gradient GEMMs in FP8: both
    // operands, the input and the output gradient, are kept as 1-byte copies
    let x = if t.precision == Precision::Fp8 { 1.0 } else { 2.0 };
    let proj = m.ffn_in_projections();
    // replicated across TP ranks unless SP: the QKV and MLP inputs and the gradients of
    // the output projection's and the MLP's outputs, h wide each
    let replicated = 4.0 * x;
    // split across TP ranks: the output projection's input and the QKV output gradient
    let mut split = x * (m.attn_out_dim() + m.q_dim() + 2.0 * m.kv_dim()) / h;
    match m.moe.as_ref().filter(|_| m.is_moe_layer(layer)) {
        Some(moe) => {
            let fe = moe.expert_ffn_hidden_size as f64 / h;
            let fs = moe.shared_expert_ffn_hidden_size as f64 * moe.num_shared_experts as f64 / h;
            // top_k routed copies and the shared experts: up-projection output gradient
            // and down-projection input; the routed copies' inputs and output gradients
            split += x * (moe.top_k as f64 * fe + fs) * (proj + 1.0);
            split += x * 2.0 * moe.top_k as f64;
        }
        None => {
            let f = m.ffn_hidden_size as f64 / h;
            split += x * f * (proj + 1.0);
        }
    }
    let per = if p.sequence_parallel {
        (replicated + split) / tp
    } else {
        replicated + split / tp
    };
    s * b * h * per
}

/// Memory of the most loaded GPU (the highest share of its HBM used): usually the first
/// pipeline stage (most in-flight activations, input embedding) or the last (output
/// projection and loss); uneven splits, MoE models whose first layers are dense, or other
/// schedules may load another stage more, so every stage is checked.
/// `stage_capacity_gib` holds each stage's HBM capacity; a single entry stands for all.
pub fn memory_per_gpu(
    m: &TransformerSpec,
    p: &ParallelPlan,
    tr: &TrainingSpec,
    stage_capacity_gib: &[f64],
) -> MemoryBreakdown {
    let capacity = |s: u32| {
        stage_capacity_gib
            .get(s as usize)
            .or(stage_capacity_gib.last())
            .copied()
            .unwrap_or(0.0)
    };
    let shape = p.pipeline_shape(tr.global_batch_size, p.extra_warmup(m));
    let programs = p.schedule.programs(&shape);
    let chunks = p.layers_per_chunk(m.num_layers);
    let mut best = stage_memory_of(m, p, 0, tr, capacity(0), &programs[0], &chunks);
    for stage in 1..p.pp {
        let s = stage_memory_of(m, p, stage, tr, capacity(stage), &programs[stage as usize], &chunks);
        if s.total_gib / s.capacity_gib > best.total_gib / best.capacity_gib {
            best = s;
        }
    }
    best
}

/// Memory of one GPU of every pipeline stage, stage 0 first; capacities as in
/// [`memory_per_gpu`], whose result is the entry with the largest fraction of its capacity.
pub fn memory_per_stage(
    m: &TransformerSpec,
    p: &ParallelPlan,
    tr: &TrainingSpec,
    stage_capacity_gib: &[f64],
) -> Vec<MemoryBreakdown> {
    (0..p.pp)
        .map(|stage| {
            let cap = stage_capacity_gib
                .get(stage as usize)
                .or(stage_capacity_gib.last())
                .copied()
                .unwrap_or(0.0);
            stage_memory(m, p, stage, tr, cap)
        })
        .collect()
}

/// The layers model chunk `g` holds: its share of the main layers (`firsts[g]` on) and,
/// for the last chunk, the MTP modules' layers.
fn chunk_layer_ids(m: &TransformerSpec, layers_per_chunk: &[u32], firsts: &[u32], g: usize) -> Vec<u32> {
    let mut ids: Vec<u32> = (firsts[g]..firsts[g] + layers_per_chunk[g]).collect();
    if g + 1 == layers_per_chunk.len() {
        ids.extend((0..m.mtp_modules).map(|d| m.mtp_layer(d)));
    }
    ids
}

/// Memory of one GPU of pipeline stage `stage`.
pub fn stage_memory(
    m: &TransformerSpec,
    p: &ParallelPlan,
    stage: u32,
    tr: &TrainingSpec,
    capacity_gib: f64,
) -> MemoryBreakdown {
    let shape = p.pipeline_shape(tr.global_batch_size, p.extra_warmup(m));
    let programs = p.schedule.programs(&shape);
    let passes = &programs[stage as usize];
    stage_memory_of(m, p, stage, tr, capacity_gib, passes, &p.layers_per_chunk(m.num_layers))
}

/// [`stage_memory`] with the stage's program given.
fn stage_memory_of(
    m: &TransformerSpec,
    p: &ParallelPlan,
    stage: u32,
    tr: &TrainingSpec,
    capacity_gib: f64,
    passes: &[crate::parallel::schedule::Pass],
    layers_per_chunk: &[u32],
) -> MemoryBreakdown {
    let (seq, global_batch) = (tr.seq_length, tr.global_batch_size);
    let t = p.tp as f64;
    // ZeRO shards over the gradient group: DP, or DP x CP with context parallelism
    let dp = p.grad_group() as f64;
    let schedule = p.schedule.get();
    let shape = p.pipeline_shape(global_batch, p.extra_warmup(m));
    let v = schedule.chunks_per_stage(&shape);
    let n_chunks = schedule.model_chunks(&shape) as usize;
    let chunk = |c: u32| schedule.global_chunk(stage, c, &shape) as usize;
    let chunks: Vec<usize> = (0..v).map(chunk).collect();
    // the stages holding the embedding and the output head
    let (first, last) = (chunks.contains(&0), chunks.contains(&(n_chunks - 1)));
    let emb = m.vocab_size as f64 * m.hidden_size as f64;
    let stage_layer_ids: Vec<u32> = {
        let firsts: Vec<u32> = layers_per_chunk
            .iter()
            .scan(0u32, |acc, &n| {
                let f = *acc;
                *acc += n;
                Some(f)
            })
            .collect();
        chunks
            .iter()
            .flat_map(|&g| chunk_layer_ids(m, layers_per_chunk, &firsts, g))
            .collect()
    };
    // dense parts split over TP (sharded over DP by ZeRO); routed experts split over EP
    // (sharded over the expert-data-parallel group)
    let mut params: f64 = stage_layer_ids.iter().map(|&l| m.layer_dense_params(l)).sum::<f64>() / t;
    let expert_params: f64 =
        stage_layer_ids.iter().map(|&l| m.layer_expert_params(l)).sum::<f64>() / (p.ep * p.expert_tp).max(1) as f64;
    if first {
        params += emb / t;
    }
    // output projection: its own matrix when untied, a copy of the embedding on the last
    // stage when tied and pipelined
    if last && (!m.tied_embeddings || p.pp > 1) {
        params += emb / t;
    }
    if last {
        // the MTP modules' projections and norms (their layers are in stage_layer_ids)
        params += m.mtp_modules as f64 * m.mtp_extra_params() / t;
    }
    let edp = p.expert_dp() as f64;
    let shard = |stage_min: u32, group: f64| if p.zero_stage >= stage_min { group } else { 1.0 };
    let weights = 2.0 * (params / shard(3, dp) + expert_params / shard(3, edp));
    let grads = 4.0 * (params / shard(2, dp) + expert_params / shard(2, edp));
    // copies of the parameters (DualPipe) share one optimizer state
    let copies = schedule.parameter_copies().max(1) as f64;
    let optimizer = 12.0 * (params / shard(1, dp) + expert_params / shard(1, edp)) / copies;
    let params = params + expert_params;

    let s = seq as f64 / p.cp.max(1) as f64;
    let b = p.micro_batch_size as f64;
    let h = m.hidden_size as f64;
    let per_layer = stage_layer_ids
        .iter()
        .map(|&l| layer_activation_bytes(m, p, tr, l))
        .sum::<f64>()
        / stage_layer_ids.len().max(1) as f64;
    // layers' worth of activations in flight on this stage, walking its program
    let split_backward = passes.iter().any(|ps| ps.kind == PassKind::BackwardWeight);
    let mut act = if split_backward {
        // in-flight activations (M_B) and pending W passes' buffers (M_W), per chunk
        let firsts: Vec<u32> = layers_per_chunk
            .iter()
            .scan(0u32, |acc, &n| {
                let f = *acc;
                *acc += n;
                Some(f)
            })
            .collect();
        let per_chunk: Vec<(f64, f64)> = (0..v)
            .map(|c| {
                let g = chunk(c);
                chunk_layer_ids(m, layers_per_chunk, &firsts, g)
                    .into_iter()
                    .map(|l| {
                        (
                            layer_activation_bytes(m, p, tr, l),
                            weight_grad_buffer_bytes(m, p, tr, l),
                        )
                    })
                    .fold((0.0, 0.0), |a, x| (a.0 + x.0, a.1 + x.1))
            })
            .collect();
        peak_activation(passes, |ps| per_chunk[ps.chunk as usize])
    } else {
        // layers' worth of activations in flight on this stage, walking its program
        let mtp = |g: usize| if g + 1 == n_chunks { m.mtp_modules } else { 0 };
        per_layer
            * peak_in_flight(passes, |ps| {
                (layers_per_chunk[chunk(ps.chunk)] + mtp(chunk(ps.chunk))) as f64
            })
    };
    // micro-batches whose embedding output is still held (the chunk holding the embedding)
    let embedding_in_flight = peak_in_flight(passes, |ps| if chunk(ps.chunk) == 0 { 1.0 } else { 0.0 });
    if p.recompute == Recompute::Full {
        // one layer's full activations live during its recomputation
        let mut full = p.clone();
        full.recompute = Recompute::Selective;
        full.recompute_modules = RecomputeModules::default();
        act += activation_bytes_per_layer(
            m,
            &full,
            &TrainingSpec {
                flash_attention: true,
                ..tr.clone()
            },
        );
    }
    if first {
        // embedding input and dropout for in-flight micro-batches
        act += embedding_in_flight * (8.0 * s * b + s * b * h) / t;
    }
    if last {
        // output-layer input and fp32 logits for the loss (one micro-batch)
        act += s * b * h * 4.0 * (1.0 + m.vocab_size as f64 / h) / t;
    }
    // gradient buckets (two in flight) and NCCL/framework workspace
    let buffers = 2.0 * 4.0 * p.grad_bucket_params.min(params)
        + 1.0 * BYTES_PER_GIB
        + crate::workload::passes::cp::buffer_bytes(m, p, seq);
    let gib = |x: f64| x / BYTES_PER_GIB;
    let total = weights + grads + optimizer + act + buffers;
    MemoryBreakdown {
        stage,
        weights_gib: gib(weights),
        gradients_gib: gib(grads),
        optimizer_gib: gib(optimizer),
        activations_gib: gib(act),
        buffers_gib: gib(buffers),
        total_gib: gib(total),
        capacity_gib,
        fits: gib(total) <= capacity_gib,
        host_gib: 0.0,
        host_capacity_gib: 0.0,
        nvme_gib: 0.0,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::presets::model_preset;
    use crate::parallel::tests_support::plan;

    fn training(seq_length: u32, global_batch_size: u32, flash_attention: bool) -> TrainingSpec {
        TrainingSpec {
            global_batch_size,
            seq_length,
            precision: Precision::Bf16,
            flash_attention,
        }
    }

    #[test]
    fn fp8_keeps_one_byte_gemm_inputs() {
        let m = model_preset("llama3-70b").unwrap();
        let p = plan(8, 4, 4);
        let bf16 = activation_bytes_per_layer(&m, &p, &training(8192, 128, true));
        let fp8 = activation_bytes_per_layer(
            &m,
            &p,
            &TrainingSpec {
                precision: Precision::Fp8,
                ..training(8192, 128, true)
            },
        );
        // QKV, fc1 and out-proj inputs (h wide each) and the fc2 input (F wide) drop from
        // 2 bytes to 1: s b h (3 + F/h) / tp bytes saved with SP
        let (s, h, f, tp) = (8192.0, 8192.0, 28672.0, 8.0);
        let saved = s * h * (3.0 + f / h) / tp;
        assert!((bf16 - fp8 - saved).abs() < 1.0, "{bf16} - {fp8} != {saved}");
    }

    /// Megatron-LM `theoretical_memory_usage.py` (selective recompute + SP, the case it
    /// models): weights+optimizer = params_on_most_loaded_shard * (6 + 12/dp) with the
    /// distributed optimizer, activations = s b h L (18 + 4 F/h) / t for the first stage
    /// with pp in flight (plus the embedding terms), interleaving penalty 1 + (p-1)/(p v).
    #[test]
    fn matches_megatron_theoretical_memory_within_five_percent() {
        let m = model_preset("gpt3-175b").unwrap();
        let mut p = plan(8, 8, 16);
        p.schedule = crate::parallel::Schedule::INTERLEAVED;
        p.virtual_stages = 3;
        let (s, gbs) = (2048u32, 1536u32);
        let ours = stage_memory(&m, &p, 0, &training(s, gbs, true), 80.0);

        let (h, l, v, t, pp, dp, b) = (12288.0, 96.0, 50257.0, 8.0, 8.0, 16.0, 1.0);
        let f = 49152.0;
        let layer_params = 2.0 * l * h * h * (2.0 + f / h + 2.0 / h) / l; // MHA, non-gated, per layer
        let params_shard = (l * layer_params / pp + v * h) / t;
        let weight_opt = params_shard * (6.0 + 12.0 / dp);
        let sf = s as f64;
        let mut act = sf * b * h * (18.0 + 4.0 * f / h) * l;
        act += 8.0 * sf * b * pp + sf * b * h * pp;
        act *= 1.0 + (pp - 1.0) / (pp * 3.0);
        act /= t;
        let megatron_gib = (weight_opt + act) / BYTES_PER_GIB;
        let ours_gib = ours.weights_gib + ours.gradients_gib + ours.optimizer_gib + ours.activations_gib;
        let rel = (ours_gib / megatron_gib - 1.0).abs();
        assert!(
            rel < 0.05,
            "ours {ours_gib:.2} GiB vs Megatron formula {megatron_gib:.2} GiB ({:.1}%)",
            rel * 100.0
        );
    }

    #[test]
    fn recompute_and_sharding_reduce_memory_monotonically() {
        let m = model_preset("llama3-70b").unwrap();
        let mut p = plan(8, 4, 4);
        p.zero_stage = 0;
        p.recompute = Recompute::None;
        let mem = |p: &ParallelPlan| memory_per_gpu(&m, p, &training(8192, 128, true), &[80.0]).total_gib;
        let base = mem(&p);
        p.recompute = Recompute::Full;
        let full = mem(&p);
        assert!(full < base);
        p.zero_stage = 1;
        let z1 = mem(&p);
        p.zero_stage = 3;
        let z3 = mem(&p);
        assert!(z1 < full && z3 < z1, "{full} {z1} {z3}");
    }

    /// Context parallelism keeps `1/cp` of every activation (each rank stores its `s/cp`
    /// tokens): per layer and for the whole stage (embedding and logits included); ZeRO
    /// shards the optimizer over DP x CP.
    #[test]
    fn activations_fall_as_one_over_cp() {
        let m = model_preset("llama3-70b").unwrap();
        let t = training(131072, 64, true);
        let at = |cp: u32| {
            let mut p = plan(8, 4, 4);
            p.cp = cp;
            (
                activation_bytes_per_layer(&m, &p, &t),
                memory_per_gpu(&m, &p, &t, &[80.0]),
            )
        };
        let (layer1, mem1) = at(1);
        for cp in [2u32, 4, 8, 16] {
            let (layer, mem) = at(cp);
            assert!((layer * cp as f64 / layer1 - 1.0).abs() < 1e-12, "cp {cp}");
            assert!(
                (mem.activations_gib * cp as f64 / mem1.activations_gib - 1.0).abs() < 1e-12,
                "cp {cp}: {} vs {}",
                mem.activations_gib,
                mem1.activations_gib
            );
            assert!((mem.optimizer_gib * cp as f64 / mem1.optimizer_gib - 1.0).abs() < 1e-12);
            assert!(mem.buffers_gib > mem1.buffers_gib, "ring K/V buffers");
        }
    }

    #[test]
    fn korthikanti_table2_no_parallelism_gives_34_sbh_plus_scores() {
        let mut m = model_preset("gpt3-175b").unwrap();
        m.num_kv_heads = m.num_heads;
        let mut p = plan(1, 1, 1);
        p.sequence_parallel = false;
        p.recompute = Recompute::None;
        let (s, h, a) = (2048.0, 12288.0, 96.0);
        let got = activation_bytes_per_layer(&m, &p, &training(2048, 1, false));
        let want = s * h * (34.0 + 5.0 * a * s / h);
        assert!((got / want - 1.0).abs() < 1e-9, "{got} vs {want}");
    }
}
