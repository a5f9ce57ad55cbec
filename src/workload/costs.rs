//! Per-layer kernel costs: the forward and backward of one transformer layer (and of the
//! embedding and output head) as a short list of [`Step`]s, compute segments separated by
//! tensor-parallel collectives, each compute segment timed by the hardware kernel model.

use crate::hardware::kernel::{attention_time_s, gemm_time_s, memory_bound_time_s};
use crate::hardware::{GpuSpec, Precision};
use crate::model::{FfnType, TransformerSpec};
use crate::network::collective::CollectiveKind;
use crate::parallel::{ParallelPlan, Recompute as RecomputeMode};

/// What a compute step is doing, for the time breakdown.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Phase {
    /// Forward pass.
    Forward,
    /// Backward pass.
    Backward,
    /// Re-run forward work (activation recomputation).
    Recompute,
    /// Optimizer step.
    Optimizer,
}

/// How a TP collective relates to the compute around it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Overlap {
    /// Runs on the compute stream: compute waits for it.
    Blocking,
    /// Runs on the TP stream beside the next compute step; the step after waits for it.
    WithNext,
    /// Runs on the TP stream beside the previous compute step (chunked GEMM + collective
    /// pipelining, e.g. a reduce-scatter fed by the GEMM producing it); the next compute
    /// step waits for it.
    WithPrev,
}

/// One element of a layer's pass.
#[derive(Clone, Debug, PartialEq)]
pub enum Step {
    /// A fused segment of kernels on the compute stream.
    Compute {
        /// Duration, seconds.
        time_s: f64,
        /// FLOPs executed (matrix multiplies and attention).
        flops: f64,
        /// Breakdown phase.
        phase: Phase,
        /// Short label for traces.
        name: &'static str,
    },
    /// A tensor-parallel collective over `bytes` (full buffer).
    Tp {
        /// The collective.
        kind: CollectiveKind,
        /// Buffer size, bytes.
        bytes: f64,
        /// Relation to compute.
        overlap: Overlap,
    },
}

/// Shapes shared by the cost functions.
struct Ctx<'a> {
    gpu: &'a GpuSpec,
    m: &'a TransformerSpec,
    p: &'a ParallelPlan,
    prec: Precision,
    /// Tokens per micro-batch.
    tokens: f64,
    seq: f64,
    mbs: f64,
    tp: f64,
    flash: bool,
}

impl Ctx<'_> {
    /// (time, flops) of a forward GEMM and of its backward (dgrad + wgrad).
    fn gemm(&self, n: f64, k: f64) -> ((f64, f64), (f64, f64)) {
        let m = self.tokens;
        let f = 2.0 * m * n * k;
        let cast = self.cast_s(m * k);
        let fwd = gemm_time_s(self.gpu, self.prec, m, n, k, 1.0) + cast;
        let bwd =
            gemm_time_s(self.gpu, self.prec, m, k, n, 1.0) + gemm_time_s(self.gpu, self.prec, k, n, m, 1.0) + cast;
        ((fwd, f), (bwd, 2.0 * f))
    }

    /// FP8 cast/amax traffic for `elems` input elements (zero for 16-bit).
    fn cast_s(&self, elems: f64) -> f64 {
        if self.prec == Precision::Fp8 && self.gpu.peak_fp8_tflops > 0.0 {
            // read 2 bytes, write 1 byte; fused into neighbouring kernels (no extra launch)
            memory_bound_time_s(self.gpu, 3.0 * elems, 0)
        } else {
            0.0
        }
    }

    /// Attention core (scores, softmax, weighted sum): ((fwd time, flops), (bwd time, flops)).
    fn attention_core(&self) -> ((f64, f64), (f64, f64)) {
        let heads = self.m.num_heads as f64 / self.tp;
        let d = self.m.head_dim as f64;
        let s = self.seq;
        let b = self.mbs;
        if self.flash {
            // causal: half the score matrix; backward does 2.5x the forward FLOPs
            let f = 4.0 * b * heads * s * s * d * 0.5;
            (
                (attention_time_s(self.gpu, f, false), f),
                (attention_time_s(self.gpu, 2.5 * f, true), 2.5 * f),
            )
        } else {
            // unfused: two batched GEMMs over the full s x s matrix plus memory-bound
            // scale/mask/softmax/dropout passes over it (2-byte scores, 1-byte mask)
            let batch = b * heads;
            let p16 = Precision::Bf16;
            let f = 4.0 * batch * s * s * d;
            let elems = batch * s * s;
            let fwd = gemm_time_s(self.gpu, p16, s, s, d, batch)
                + gemm_time_s(self.gpu, p16, s, d, s, batch)
                + memory_bound_time_s(self.gpu, 9.0 * elems, 2);
            let bwd = 2.0 * gemm_time_s(self.gpu, p16, s, s, d, batch)
                + 2.0 * gemm_time_s(self.gpu, p16, s, d, s, batch)
                + memory_bound_time_s(self.gpu, 13.0 * elems, 2);
            ((fwd, f), (bwd, 2.0 * f))
        }
    }

    /// Memory-bound element-wise traffic of one layer forward, seconds, split into the
    /// attention half (LN + residual/dropout) and the MLP half (LN + residual/dropout +
    /// activation). Norms and residuals act on the sequence shard under SP.
    fn elementwise_fwd_s(&self) -> (f64, f64) {
        let h = self.m.hidden_size as f64;
        let f = self.m.ffn_hidden_size as f64;
        let shard = if self.p.sequence_parallel { self.tp } else { 1.0 };
        let th = self.tokens * h / shard;
        // LN: read 2 + write 2 bytes; residual + dropout: read 4, write 2, mask 1
        let norm_resid = (4.0 + 7.0) * th;
        let act_bytes = match self.m.ffn_type {
            FfnType::Swiglu => 6.0,
            _ => 4.0,
        } * self.tokens
            * f
            / self.tp;
        (
            memory_bound_time_s(self.gpu, norm_resid, 2),
            memory_bound_time_s(self.gpu, norm_resid + act_bytes, 3),
        )
    }
}

/// The steps of one layer's forward and backward (backward includes recomputation).
#[derive(Clone, Debug, PartialEq)]
pub struct LayerSteps {
    /// Forward pass.
    pub forward: Vec<Step>,
    /// Backward pass, with any recomputation first.
    pub backward: Vec<Step>,
}

fn compute(time_s: f64, flops: f64, phase: Phase, name: &'static str) -> Step {
    Step::Compute {
        time_s,
        flops,
        phase,
        name,
    }
}

/// A TP collective the compute stream waits for.
fn blocking(kind: CollectiveKind, bytes: f64) -> Step {
    Step::Tp {
        kind,
        bytes,
        overlap: Overlap::Blocking,
    }
}

/// Builds one transformer layer's steps for this plan on this GPU.
pub fn layer_steps(
    gpu: &GpuSpec,
    m: &TransformerSpec,
    p: &ParallelPlan,
    prec: Precision,
    seq: u32,
    flash: bool,
) -> LayerSteps {
    let cx = Ctx {
        gpu,
        m,
        p,
        prec,
        tokens: p.micro_batch_size as f64 * seq as f64,
        seq: seq as f64,
        mbs: p.micro_batch_size as f64,
        tp: p.tp as f64,
        flash,
    };
    let h = m.hidden_size as f64;
    let t = cx.tp;
    let (qkv_f, qkv_b) = cx.gemm((m.q_dim() + 2.0 * m.kv_dim()) / t, h);
    let (core_f, core_b) = cx.attention_core();
    let (out_f, out_b) = cx.gemm(h, m.q_dim() / t);
    let (fc1_f, fc1_b) = cx.gemm(m.ffn_in_projections() * m.ffn_hidden_size as f64 / t, h);
    let (fc2_f, fc2_b) = cx.gemm(h, m.ffn_hidden_size as f64 / t);
    let (ew_attn, ew_mlp) = cx.elementwise_fwd_s();

    let act_bytes = 2.0 * cx.tokens * h; // one full activation tensor, 16-bit
    let tp_on = p.tp > 1;
    let sp = p.sequence_parallel && tp_on;
    let tp = |kind, overlap| Step::Tp {
        kind,
        bytes: act_bytes,
        overlap,
    };
    use CollectiveKind::*;
    use Overlap::*;
    use Phase::*;

    let attn_f = (qkv_f.0 + core_f.0 + out_f.0, qkv_f.1 + core_f.1 + out_f.1);
    let mlp_f = (fc1_f.0 + fc2_f.0, fc1_f.1 + fc2_f.1);
    let forward_of = |phase: Phase| -> Vec<Step> {
        if !tp_on {
            return vec![compute(
                ew_attn + attn_f.0 + ew_mlp + mlp_f.0,
                attn_f.1 + mlp_f.1,
                phase,
                "layer",
            )];
        }
        if sp {
            vec![
                compute(ew_attn, 0.0, phase, "norm"),
                tp(AllGather, Blocking),
                compute(attn_f.0, attn_f.1, phase, "attention"),
                tp(ReduceScatter, Blocking),
                compute(ew_mlp, 0.0, phase, "norm"),
                tp(AllGather, Blocking),
                compute(mlp_f.0, mlp_f.1, phase, "mlp"),
                tp(ReduceScatter, Blocking),
            ]
        } else {
            vec![
                compute(ew_attn + attn_f.0, attn_f.1, phase, "attention"),
                tp(AllReduce, Blocking),
                compute(ew_mlp + mlp_f.0, mlp_f.1, phase, "mlp"),
                tp(AllReduce, Blocking),
            ]
        }
    };
    let forward = forward_of(Forward);

    // backward: the row-parallel GEMM (fc2, out-proj), the activation / attention core and
    // the column-parallel dgrad first; then the column-parallel input-gradient collective
    // overlapped with its wgrad GEMM (Megatron's async TP all-reduce / reduce-scatter).
    let ew_scale = 2.0; // backward element-wise traffic is about twice the forward's
    let core_bwd = core_b;
    let mut backward = Vec::new();
    match p.recompute {
        RecomputeMode::Full => backward.extend(forward_of(Phase::Recompute)),
        // the checkpointed attention core is re-run when the layer's backward begins
        RecomputeMode::Selective => backward.push(compute(core_f.0, core_f.1, Recompute, "attention recompute")),
        RecomputeMode::None => {}
    }
    // split each column-parallel backward into dgrad and wgrad halves
    let half = |x: (f64, f64)| (x.0 / 2.0, x.1 / 2.0);
    let (fc1_d, fc1_w) = (half(fc1_b), half(fc1_b));
    let (qkv_d, qkv_w) = (half(qkv_b), half(qkv_b));
    let mlp_first = (fc2_b.0 + ew_scale * ew_mlp + fc1_d.0, fc2_b.1 + fc1_d.1);
    let attn_first = (out_b.0 + core_bwd.0 + qkv_d.0, out_b.1 + core_bwd.1 + qkv_d.1);
    if !tp_on {
        backward.push(compute(
            mlp_first.0 + fc1_w.0 + attn_first.0 + qkv_w.0 + ew_scale * ew_attn,
            mlp_first.1 + fc1_w.1 + attn_first.1 + qkv_w.1,
            Backward,
            "layer",
        ));
    } else if sp {
        backward.extend([
            tp(AllGather, Blocking),
            compute(mlp_first.0, mlp_first.1, Backward, "mlp"),
            tp(ReduceScatter, WithNext),
            compute(fc1_w.0, fc1_w.1, Backward, "mlp wgrad"),
            compute(ew_scale * ew_attn, 0.0, Backward, "norm"),
            tp(AllGather, Blocking),
            compute(attn_first.0, attn_first.1, Backward, "attention"),
            tp(ReduceScatter, WithNext),
            compute(qkv_w.0, qkv_w.1, Backward, "attention wgrad"),
        ]);
    } else {
        backward.extend([
            compute(mlp_first.0, mlp_first.1, Backward, "mlp"),
            tp(AllReduce, WithNext),
            compute(fc1_w.0, fc1_w.1, Backward, "mlp wgrad"),
            compute(ew_scale * ew_attn + attn_first.0, attn_first.1, Backward, "attention"),
            tp(AllReduce, WithNext),
            compute(qkv_w.0, qkv_w.1, Backward, "attention wgrad"),
        ]);
    }
    let mut forward = forward;
    if p.tp_comm_overlap && tp_on {
        // Megatron --tp-comm-overlap: all-gathers pipeline with the GEMM that consumes
        // them, reduce-scatters with the GEMM that produces them
        for s in forward.iter_mut() {
            if let Step::Tp { kind, overlap, .. } = s {
                *overlap = if *kind == ReduceScatter || *kind == AllReduce {
                    WithPrev
                } else {
                    WithNext
                };
            }
        }
        for s in backward.iter_mut() {
            if let Step::Tp { overlap, .. } = s {
                *overlap = WithNext;
            }
        }
    }
    LayerSteps { forward, backward }
}

/// Steps of the input embedding (first model chunk) and of the output head and loss
/// (last model chunk).
pub fn embedding_and_head_steps(
    gpu: &GpuSpec,
    m: &TransformerSpec,
    p: &ParallelPlan,
    seq: u32,
) -> (LayerSteps, LayerSteps) {
    let tokens = p.micro_batch_size as f64 * seq as f64;
    let h = m.hidden_size as f64;
    let v = m.vocab_size as f64;
    let t = p.tp as f64;
    let act_bytes = 2.0 * tokens * h;
    let sp = p.sequence_parallel && p.tp > 1;
    let mut emb_f = vec![compute(
        memory_bound_time_s(gpu, 2.0 * act_bytes, 1),
        0.0,
        Phase::Forward,
        "embedding",
    )];
    let mut emb_b = vec![compute(
        memory_bound_time_s(gpu, 3.0 * act_bytes, 1),
        0.0,
        Phase::Backward,
        "embedding",
    )];
    if p.tp > 1 {
        // vocab-parallel embedding: partial lookups summed across TP
        let kind = if sp {
            CollectiveKind::ReduceScatter
        } else {
            CollectiveKind::AllReduce
        };
        emb_f.push(blocking(kind, act_bytes));
        if sp {
            emb_b.insert(0, blocking(CollectiveKind::AllGather, act_bytes));
        }
    }
    // output head: final norm, vocab-parallel projection, fused cross-entropy (fp32 logits);
    // the output layer stays in BF16 under FP8 recipes (Transformer Engine keeps it out of FP8)
    let fwd_gemm = gemm_time_s(gpu, Precision::Bf16, tokens, v / t, h, 1.0);
    let bwd_gemm = gemm_time_s(gpu, Precision::Bf16, tokens, h, v / t, 1.0)
        + gemm_time_s(gpu, Precision::Bf16, h, v / t, tokens, 1.0);
    let logits = tokens * v / t;
    let f = 2.0 * tokens * v / t * h;
    let ce_fwd = memory_bound_time_s(gpu, 10.0 * logits + 4.0 * act_bytes / if sp { t } else { 1.0 }, 3);
    let ce_bwd = memory_bound_time_s(gpu, 8.0 * logits, 2);
    let mut head_f = Vec::new();
    let mut head_b = Vec::new();
    if sp {
        head_f.push(blocking(CollectiveKind::AllGather, act_bytes));
    }
    head_f.push(compute(fwd_gemm + ce_fwd, f, Phase::Forward, "output head"));
    head_b.push(compute(ce_bwd + bwd_gemm, 2.0 * f, Phase::Backward, "output head"));
    if p.tp > 1 {
        let kind = if sp {
            CollectiveKind::ReduceScatter
        } else {
            CollectiveKind::AllReduce
        };
        head_b.push(blocking(kind, act_bytes));
    }
    (
        LayerSteps {
            forward: emb_f,
            backward: emb_b,
        },
        LayerSteps {
            forward: head_f,
            backward: head_b,
        },
    )
}

/// Optimizer step time for `params_local` parameters held (sharded) on one GPU: Adam over
/// FP32 master weights reads weight, gradient and both moments and writes them back plus
/// the 16-bit copy (about 30 bytes per parameter).
pub fn optimizer_time_s(gpu: &GpuSpec, params_local: f64) -> f64 {
    memory_bound_time_s(gpu, 30.0 * params_local, 4)
}

/// Sum of compute time in `steps`, seconds.
pub fn compute_time_s(steps: &[Step]) -> f64 {
    steps
        .iter()
        .map(|s| match s {
            Step::Compute { time_s, .. } => *time_s,
            _ => 0.0,
        })
        .sum()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::hardware::presets::gpu_preset;
    use crate::model::presets::model_preset;

    use crate::parallel::Recompute;

    fn plan(tp: u32, sp: bool, rc: Recompute) -> ParallelPlan {
        let mut p = crate::parallel::tests_support::plan(tp, 1, 1);
        p.sequence_parallel = sp;
        p.recompute = rc;
        p
    }

    #[test]
    fn backward_costs_about_twice_forward_and_recompute_adds_a_forward() {
        let g = gpu_preset("A100-80GB").unwrap();
        let m = model_preset("gpt3-175b").unwrap();
        let none = layer_steps(&g, &m, &plan(8, true, Recompute::None), Precision::Bf16, 2048, true);
        let full = layer_steps(&g, &m, &plan(8, true, Recompute::Full), Precision::Bf16, 2048, true);
        let (f, b) = (compute_time_s(&none.forward), compute_time_s(&none.backward));
        assert!(b / f > 1.8 && b / f < 2.6, "bwd/fwd = {}", b / f);
        let bf = compute_time_s(&full.backward);
        assert!((bf - b - f).abs() < 1e-12);
    }

    #[test]
    fn sequence_parallel_swaps_all_reduce_for_reduce_scatter_and_all_gather() {
        let g = gpu_preset("A100-80GB").unwrap();
        let m = model_preset("gpt3-175b").unwrap();
        let kinds = |sp| -> Vec<CollectiveKind> {
            layer_steps(&g, &m, &plan(8, sp, Recompute::None), Precision::Bf16, 2048, true)
                .forward
                .iter()
                .filter_map(|s| {
                    if let Step::Tp { kind, .. } = s {
                        Some(*kind)
                    } else {
                        None
                    }
                })
                .collect()
        };
        assert_eq!(kinds(false), vec![CollectiveKind::AllReduce; 2]);
        assert_eq!(
            kinds(true),
            vec![
                CollectiveKind::AllGather,
                CollectiveKind::ReduceScatter,
                CollectiveKind::AllGather,
                CollectiveKind::ReduceScatter
            ]
        );
    }
}
