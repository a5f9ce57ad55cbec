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
    /// The token all-to-all of a MoE layer over the expert-parallel group, towards the
    /// experts (forward dispatch, backward gradient of the combine) or back from them. Its
    /// per-rank bytes depend on the routed load of the micro-batch.
    AllToAll {
        /// Towards the ranks holding the experts.
        to_experts: bool,
    },
    /// The routed experts' grouped GEMMs on every expert-parallel rank; each rank's time
    /// depends on the load routed to it ([`MoeCost::experts`]).
    Experts {
        /// Breakdown phase.
        phase: Phase,
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

    /// Q, K, V projections: one GEMM (MHA/GQA), or MLA's down-projections (replicated
    /// across TP ranks) and up-projections (split).
    fn attention_in(&self) -> ((f64, f64), (f64, f64)) {
        let h = self.m.hidden_size as f64;
        match self.m.attention {
            crate::model::Attention::Standard => self.gemm((self.m.q_dim() + 2.0 * self.m.kv_dim()) / self.tp, h),
            crate::model::Attention::Mla {
                q_lora_rank,
                kv_lora_rank,
                qk_rope_head_dim,
                ..
            } => {
                let heads = self.m.num_heads as f64 / self.tp;
                let (ql, kvl) = (q_lora_rank as f64, kv_lora_rank as f64);
                let mut parts = vec![
                    self.gemm(kvl + qk_rope_head_dim as f64, h),
                    self.gemm(
                        heads * (self.m.qk_head_dim() - qk_rope_head_dim as f64 + self.m.v_head_dim()),
                        kvl,
                    ),
                ];
                if q_lora_rank > 0 {
                    parts.push(self.gemm(ql, h));
                    parts.push(self.gemm(heads * self.m.qk_head_dim(), ql));
                } else {
                    parts.push(self.gemm(heads * self.m.qk_head_dim(), h));
                }
                parts.iter().fold(((0.0, 0.0), (0.0, 0.0)), |acc, (f, b)| {
                    ((acc.0 .0 + f.0, acc.0 .1 + f.1), (acc.1 .0 + b.0, acc.1 .1 + b.1))
                })
            }
        }
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
            let f = 2.0 * b * heads * s * s * (self.m.qk_head_dim() + self.m.v_head_dim()) * 0.5;
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

/// Builds one transformer layer's steps for this plan on this GPU: a dense layer, or with
/// `moe` a layer whose MLP is the router, the token all-to-alls, the routed experts and
/// the shared experts.
pub fn layer_steps(
    gpu: &GpuSpec,
    m: &TransformerSpec,
    p: &ParallelPlan,
    prec: Precision,
    seq: u32,
    flash: bool,
    moe: bool,
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
    let (qkv_f, qkv_b) = cx.attention_in();
    let (core_f, core_b) = cx.attention_core();
    let (out_f, out_b) = cx.gemm(h, m.attn_out_dim() / t);
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
    // MoE MLP (tokens stay sharded over TP ranks): router + permute before the dispatch,
    // unpermute + shared experts after the combine
    let moe_cost = if moe { MoeCost::new(gpu, m, p, prec, seq) } else { None };
    let (pre_f, post_f, pre_b, post_b) = moe_cost
        .as_ref()
        .map(|c| (c.pre_fwd, c.post_fwd, c.pre_bwd, c.post_bwd))
        .unwrap_or_default();
    let moe_block = |phase: Phase, lead_s: f64| -> Vec<Step> {
        vec![
            compute(lead_s + pre_f.0, pre_f.1, phase, "router"),
            Step::AllToAll { to_experts: true },
            Step::Experts { phase },
            Step::AllToAll { to_experts: false },
            compute(post_f.0, post_f.1, phase, "shared experts"),
        ]
    };
    let moe_on = moe_cost.is_some();
    let ew_moe = ew_attn; // norm + residual only: the activation runs inside the experts
    let forward_of = |phase: Phase| -> Vec<Step> {
        if moe_on {
            let mut v = if !tp_on {
                vec![]
            } else if sp {
                vec![
                    compute(ew_attn, 0.0, phase, "norm"),
                    tp(AllGather, Blocking),
                    compute(attn_f.0, attn_f.1, phase, "attention"),
                    tp(ReduceScatter, Blocking),
                ]
            } else {
                vec![
                    compute(ew_attn + attn_f.0, attn_f.1, phase, "attention"),
                    tp(AllReduce, Blocking),
                ]
            };
            if !tp_on {
                let mut b = moe_block(phase, ew_attn + attn_f.0 + ew_moe);
                if let Step::Compute { flops, name, .. } = &mut b[0] {
                    *flops += attn_f.1;
                    *name = "attention + router";
                }
                v.extend(b);
            } else {
                v.extend(moe_block(phase, ew_moe));
            }
            return v;
        }
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
    if moe_on {
        // shared experts and unpermute, the expert block, router and permute; then the
        // attention as in a dense layer
        backward.extend([
            compute(post_b.0 + ew_scale * ew_moe, post_b.1, Backward, "shared experts"),
            Step::AllToAll { to_experts: true },
            Step::Experts { phase: Backward },
            Step::AllToAll { to_experts: false },
            compute(pre_b.0, pre_b.1, Backward, "router"),
        ]);
        if !tp_on {
            backward.push(compute(
                attn_first.0 + qkv_w.0 + ew_scale * ew_attn,
                attn_first.1 + qkv_w.1,
                Backward,
                "attention",
            ));
        } else if sp {
            backward.extend([
                compute(ew_scale * ew_attn, 0.0, Backward, "norm"),
                tp(AllGather, Blocking),
                compute(attn_first.0, attn_first.1, Backward, "attention"),
                tp(ReduceScatter, WithNext),
                compute(qkv_w.0, qkv_w.1, Backward, "attention wgrad"),
            ]);
        } else {
            backward.extend([
                compute(ew_scale * ew_attn + attn_first.0, attn_first.1, Backward, "attention"),
                tp(AllReduce, WithNext),
                compute(qkv_w.0, qkv_w.1, Backward, "attention wgrad"),
            ]);
        }
    } else if !tp_on {
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

/// Kernel costs of a MoE layer's sparse MLP on one GPU.
#[derive(Clone, Debug, PartialEq)]
pub struct MoeCost {
    gpu: GpuSpec,
    prec: Precision,
    hidden: f64,
    expert_ffn: f64,
    projections: f64,
    gated: bool,
    /// (time s, FLOPs) of router + permute, forward.
    pub pre_fwd: (f64, f64),
    /// (time s, FLOPs) of unpermute + shared experts, forward.
    pub post_fwd: (f64, f64),
    /// (time s, FLOPs) of router + permute, backward.
    pub pre_bwd: (f64, f64),
    /// (time s, FLOPs) of unpermute + shared experts, backward.
    pub post_bwd: (f64, f64),
    /// Tokens each expert-parallel rank routes per micro-batch (its sequence shard).
    pub tokens_per_rank: f64,
    /// Experts each expert-parallel rank holds.
    pub experts_per_rank: u32,
}

/// Expert-GEMM time of one expert-parallel rank for one micro-batch.
#[derive(Clone, Copy, Debug, Default, PartialEq)]
pub struct ExpertTimes {
    /// Forward time, s.
    pub fwd_s: f64,
    /// Forward FLOPs.
    pub fwd_flops: f64,
    /// Backward time (dgrad + wgrad), s.
    pub bwd_s: f64,
    /// Backward FLOPs.
    pub bwd_flops: f64,
}

impl MoeCost {
    /// Costs for model `m` under plan `p`; `None` for dense models.
    pub fn new(gpu: &GpuSpec, m: &TransformerSpec, p: &ParallelPlan, prec: Precision, seq: u32) -> Option<MoeCost> {
        let moe = m.moe.as_ref()?;
        let h = m.hidden_size as f64;
        let tokens = p.micro_batch_size as f64 * seq as f64 / p.tp as f64;
        let k = moe.top_k as f64;
        let e = moe.num_experts as f64;
        let proj = m.ffn_in_projections();
        // router GEMM (BF16), top-k and softmax, permute: gather the k copies of each token
        let router_f = 2.0 * tokens * e * h;
        let router =
            gemm_time_s(gpu, Precision::Bf16, tokens, e, h, 1.0) + memory_bound_time_s(gpu, 4.0 * tokens * e, 2);
        let permute_bytes = 2.0 * 2.0 * tokens * k * h;
        let fs = moe.shared_expert_ffn_hidden_size as f64 * moe.num_shared_experts as f64;
        let (shared_f, shared_b) = if fs > 0.0 {
            let f1 = 2.0 * tokens * proj * fs * h;
            let f2 = 2.0 * tokens * fs * h;
            let act = if m.ffn_type.is_gated() { 6.0 } else { 4.0 } * tokens * fs;
            (
                (
                    gemm_time_s(gpu, prec, tokens, proj * fs, h, 1.0)
                        + gemm_time_s(gpu, prec, tokens, h, fs, 1.0)
                        + memory_bound_time_s(gpu, act, 1),
                    f1 + f2,
                ),
                (
                    gemm_time_s(gpu, prec, tokens, h, proj * fs, 1.0)
                        + gemm_time_s(gpu, prec, proj * fs, h, tokens, 1.0)
                        + gemm_time_s(gpu, prec, tokens, fs, h, 1.0)
                        + gemm_time_s(gpu, prec, fs, h, tokens, 1.0)
                        + memory_bound_time_s(gpu, 2.0 * act, 1),
                    2.0 * (f1 + f2),
                ),
            )
        } else {
            ((0.0, 0.0), (0.0, 0.0))
        };
        let unpermute = memory_bound_time_s(gpu, permute_bytes, 1);
        Some(MoeCost {
            gpu: gpu.clone(),
            prec,
            hidden: h,
            expert_ffn: moe.expert_ffn_hidden_size as f64,
            projections: proj,
            gated: m.ffn_type.is_gated(),
            pre_fwd: (router + memory_bound_time_s(gpu, permute_bytes, 1), router_f),
            post_fwd: (unpermute + shared_f.0, shared_f.1),
            pre_bwd: (
                gemm_time_s(gpu, Precision::Bf16, tokens, h, e, 1.0)
                    + gemm_time_s(gpu, Precision::Bf16, h, e, tokens, 1.0)
                    + memory_bound_time_s(gpu, permute_bytes, 2),
                2.0 * router_f,
            ),
            post_bwd: (unpermute + shared_b.0, shared_b.1),
            tokens_per_rank: tokens,
            experts_per_rank: moe.num_experts / p.ep.max(1),
        })
    }

    /// Grouped-GEMM times of one rank whose local experts received `tokens` assignments
    /// each: per expert, the up (and gate) projection, the activation and the down
    /// projection at that expert's token count (small counts lose efficiency through the
    /// GEMM ramp), scaled by the GPU's grouped-GEMM efficiency; one launch per grouped kernel.
    pub fn experts(&self, tokens: &[f64]) -> ExpertTimes {
        let g = &self.gpu;
        let over = crate::units::us_to_s(g.kernel_overhead_us);
        let (h, f, proj) = (self.hidden, self.expert_ffn, self.projections);
        let mut t = ExpertTimes::default();
        let mut act_elems = 0.0;
        let mut last: Option<(f64, f64, f64)> = None;
        for &c in tokens {
            if c <= 0.0 {
                continue;
            }
            let (fw, bw) = match last {
                Some((lc, fw, bw)) if lc == c => (fw, bw),
                _ => {
                    let fw = gemm_time_s(g, self.prec, c, proj * f, h, 1.0) + gemm_time_s(g, self.prec, c, h, f, 1.0)
                        - 2.0 * over;
                    let bw = gemm_time_s(g, self.prec, c, h, proj * f, 1.0)
                        + gemm_time_s(g, self.prec, proj * f, h, c, 1.0)
                        + gemm_time_s(g, self.prec, c, f, h, 1.0)
                        + gemm_time_s(g, self.prec, f, h, c, 1.0)
                        - 4.0 * over;
                    (fw, bw)
                }
            };
            last = Some((c, fw, bw));
            t.fwd_s += fw;
            t.bwd_s += bw;
            let flops = 2.0 * c * (proj + 1.0) * f * h;
            t.fwd_flops += flops;
            t.bwd_flops += 2.0 * flops;
            act_elems += c * f;
        }
        let eff = g.grouped_gemm_efficiency.clamp(1e-3, 1.0);
        let act_bytes = if self.gated { 6.0 } else { 4.0 } * act_elems;
        t.fwd_s = t.fwd_s / eff + 2.0 * over + memory_bound_time_s(g, act_bytes, 1);
        t.bwd_s = t.bwd_s / eff + 4.0 * over + memory_bound_time_s(g, 2.0 * act_bytes, 1);
        t
    }
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
        let none = layer_steps(
            &g,
            &m,
            &plan(8, true, Recompute::None),
            Precision::Bf16,
            2048,
            true,
            false,
        );
        let full = layer_steps(
            &g,
            &m,
            &plan(8, true, Recompute::Full),
            Precision::Bf16,
            2048,
            true,
            false,
        );
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
            layer_steps(
                &g,
                &m,
                &plan(8, sp, Recompute::None),
                Precision::Bf16,
                2048,
                true,
                false,
            )
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
