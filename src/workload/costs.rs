//! Kernel costs of one rank's shard of a layer, timed by the hardware kernel model: the
//! modules of [`super::layer::base_layer`]'s graph (GEMMs, attention, element-wise
//! traffic), the MoE router, shared and routed experts ([`MoeCost`]), the embedding and
//! output head, and the optimizer step.

use super::layer::{compute, Cost, ExpertPart, Item, LayerSteps, Module, ModuleKind, Overlap, Step};
use super::op::Phase;
use crate::hardware::kernel::{attention_time_s, gemm_time_s, grouped_gemm_floor_s, memory_bound_time_s};
use crate::hardware::{GpuSpec, Precision};
use crate::model::{FfnType, TransformerSpec};
use crate::network::collective::CollectiveKind;
use crate::parallel::{Dim, ParallelPlan};
use crate::training::TrainingSpec;

/// What the cost functions and the layer passes know about one rank's shard of a layer:
/// the GPU that runs it, the model, the plan and the micro-batch shape.
pub struct LayerContext<'a> {
    /// The GPU of the stage that runs the layer.
    pub gpu: &'a GpuSpec,
    /// The model.
    pub m: &'a TransformerSpec,
    /// The plan.
    pub p: &'a ParallelPlan,
    /// GEMM precision.
    pub prec: Precision,
    /// Tokens per micro-batch on this rank: its context-parallel shard, `mbs * seq / cp`.
    pub tokens: f64,
    /// Sequence length, tokens.
    pub seq: f64,
    /// Sequences per micro-batch.
    pub mbs: f64,
    /// Tensor-parallel degree.
    pub tp: f64,
    /// Context-parallel degree.
    pub cp: f64,
    /// Fused (flash) attention.
    pub flash: bool,
}

/// A GEMM's forward, input-gradient (dgrad) and weight-gradient (wgrad) costs.
#[derive(Clone, Copy, Debug, Default)]
struct Gemm {
    fwd: Cost,
    dgrad: Cost,
    wgrad: Cost,
}

impl Gemm {
    fn add(&self, o: &Gemm) -> Gemm {
        let sum = |a: Cost, b: Cost| Cost::new(a.time_s + b.time_s, a.flops + b.flops);
        Gemm {
            fwd: sum(self.fwd, o.fwd),
            dgrad: sum(self.dgrad, o.dgrad),
            wgrad: sum(self.wgrad, o.wgrad),
        }
    }

    /// A module of `kind` computing this GEMM.
    fn module(&self, kind: ModuleKind) -> Item {
        Item::Module(Module {
            kind,
            fwd: self.fwd,
            bwd_input: self.dgrad,
            bwd_weight: self.wgrad,
        })
    }
}

impl<'a> LayerContext<'a> {
    /// The shard of a layer of `m` under `p` on `gpu`, for `training`'s micro-batch shape.
    pub fn new(gpu: &'a GpuSpec, m: &'a TransformerSpec, p: &'a ParallelPlan, training: &TrainingSpec) -> Self {
        LayerContext {
            gpu,
            m,
            p,
            prec: training.precision,
            tokens: p.micro_batch_size as f64 * training.seq_length as f64 / p.cp.max(1) as f64,
            seq: training.seq_length as f64,
            mbs: p.micro_batch_size as f64,
            tp: p.tp as f64,
            cp: p.cp.max(1) as f64,
            flash: training.flash_attention,
        }
    }

    /// Forward, input-gradient (dgrad) and weight-gradient (wgrad) costs of a GEMM of
    /// the micro-batch's tokens by an `n x k` weight shard, each timed by the kernel model
    /// at its own shape (the FP8 cast of the input with the forward, of the output
    /// gradient with the dgrad).
    fn gemm(&self, n: f64, k: f64) -> Gemm {
        let m = self.tokens;
        let f = 2.0 * m * n * k;
        let cast = self.cast_s(m * k);
        Gemm {
            fwd: Cost::new(gemm_time_s(self.gpu, self.prec, m, n, k, 1.0) + cast, f),
            dgrad: Cost::new(gemm_time_s(self.gpu, self.prec, m, k, n, 1.0) + cast, f),
            wgrad: Cost::new(gemm_time_s(self.gpu, self.prec, k, n, m, 1.0), f),
        }
    }

    /// Q, K, V projections: one GEMM (MHA/GQA), or MLA's down-projections (replicated
    /// across TP ranks) and up-projections (split).
    fn attention_in(&self) -> Gemm {
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
                parts.iter().fold(Gemm::default(), |acc, g| acc.add(g))
            }
        }
    }

    /// Forward of MLA's query and key/value up-projections (what `mla_up_proj`
    /// recomputation reruns); zero for standard attention.
    pub fn mla_up_proj_fwd(&self) -> Cost {
        let crate::model::Attention::Mla {
            q_lora_rank,
            kv_lora_rank,
            qk_rope_head_dim,
            ..
        } = self.m.attention
        else {
            return Cost::default();
        };
        let heads = self.m.num_heads as f64 / self.tp;
        let kv = self.gemm(
            heads * (self.m.qk_head_dim() - qk_rope_head_dim as f64 + self.m.v_head_dim()),
            kv_lora_rank as f64,
        );
        let mut c = kv.fwd;
        if q_lora_rank > 0 {
            let q = self.gemm(heads * self.m.qk_head_dim(), q_lora_rank as f64).fwd;
            c = Cost::new(c.time_s + q.time_s, c.flops + q.flops);
        }
        c
    }

    /// Forward of the layer's two norms (what `layernorm` recomputation reruns): read 2,
    /// write 2 bytes per element of the (sequence-parallel) shard, one kernel each.
    pub fn norms_fwd(&self) -> Cost {
        let shard = if self.p.sequence_parallel { self.tp } else { 1.0 };
        Cost::new(
            memory_bound_time_s(self.gpu, 2.0 * 4.0 * self.tokens * self.m.hidden_size as f64 / shard, 2),
            0.0,
        )
    }

    /// Forward of a dense layer's MLP (what `mlp` recomputation reruns): fc1, the
    /// activation, fc2.
    pub fn mlp_fwd(&self) -> Cost {
        let (m, t) = (self.m, self.tp);
        let h = m.hidden_size as f64;
        let f = m.ffn_hidden_size as f64;
        let fc1 = self.gemm(m.ffn_in_projections() * f / t, h).fwd;
        let fc2 = self.gemm(h, f / t).fwd;
        let act = if m.ffn_type.is_gated() { 6.0 } else { 4.0 } * self.tokens * f / t;
        Cost::new(
            fc1.time_s + fc2.time_s + memory_bound_time_s(self.gpu, act, 1),
            fc1.flops + fc2.flops,
        )
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

/// The modules of one transformer layer on this rank's shard, in forward order, before
/// any dimension's pass: a dense layer, or with `moe` a layer whose MLP is the router and
/// the shared experts (the EP pass adds the routed experts and their all-to-alls).
///
/// Element-wise traffic sits where the fused kernels run it: the attention half's norm,
/// residual and dropout forward before the QKV projection and its backward (twice the
/// forward's bytes) between the MLP and the attention; the MLP half's forward (norm,
/// residual, dropout, activation) before fc1 and its backward at the activation. Every
/// GEMM's backward is its input gradient (B) and its weight gradient (W), each timed at its
/// own shape; the attention core and the element-wise work have no weights (B only).
pub fn base_layer(cx: &LayerContext, moe: Option<&MoeCost>) -> Vec<Item> {
    let m = cx.m;
    let h = m.hidden_size as f64;
    let t = cx.tp;
    let qkv = cx.attention_in();
    let (core_f, core_b) = cx.attention_core();
    let out = cx.gemm(h, m.attn_out_dim() / t);
    let (ew_attn, ew_mlp) = cx.elementwise_fwd_s();
    let ew_scale = 2.0; // backward element-wise traffic is about twice the forward's
    let module = |kind, fwd: Cost, bwd_input: Cost, bwd_weight: Cost| {
        Item::Module(Module {
            kind,
            fwd,
            bwd_input,
            bwd_weight,
        })
    };
    let none = Cost::default();
    let ew = |s: f64| Cost::new(s, 0.0);
    let mut items = vec![
        module(ModuleKind::AttnNorm, ew(ew_attn), none, none),
        qkv.module(ModuleKind::Qkv),
        module(ModuleKind::CoreAttn, Cost::of(core_f), Cost::of(core_b), none),
        out.module(ModuleKind::AttnOut),
    ];
    match moe {
        Some(c) => {
            // the activation runs inside the experts: norm and residual traffic only
            let ew_moe = ew_attn;
            let split = |bwd: (f64, f64), w: (f64, f64)| (Cost::new(bwd.0 - w.0, bwd.1 - w.1), Cost::of(w));
            let (router_b, router_w) = split(c.pre_bwd, c.pre_wgrad);
            let (shared_b, shared_w) = split(c.post_bwd, c.post_wgrad);
            items.extend([
                module(ModuleKind::MlpNorm, ew(ew_moe), ew(ew_scale * ew_attn), none),
                module(ModuleKind::Router, Cost::of(c.pre_fwd), router_b, router_w),
                module(ModuleKind::SharedExperts, Cost::of(c.post_fwd), shared_b, shared_w),
                module(ModuleKind::Act, none, ew(ew_scale * ew_moe), none),
            ]);
        }
        None => {
            let fc1 = cx.gemm(m.ffn_in_projections() * m.ffn_hidden_size as f64 / t, h);
            let fc2 = cx.gemm(h, m.ffn_hidden_size as f64 / t);
            items.extend([
                module(ModuleKind::MlpNorm, ew(ew_mlp), ew(ew_scale * ew_attn), none),
                fc1.module(ModuleKind::Fc1),
                module(ModuleKind::Act, none, ew(ew_scale * ew_mlp), none),
                fc2.module(ModuleKind::Fc2),
            ]);
        }
    }
    items
}

/// Cost of the attention core's forward (what selective recomputation reruns): every
/// attention-core module (one, or context parallelism's ring steps).
pub fn core_attention_fwd(items: &[Item]) -> Cost {
    items
        .iter()
        .filter_map(|i| match i {
            Item::Module(m) if m.kind == ModuleKind::CoreAttn => Some(m.fwd),
            _ => None,
        })
        .fold(Cost::default(), |a, c| {
            Cost::new(a.time_s + c.time_s, a.flops + c.flops)
        })
}

/// A TP collective the compute stream waits for.
fn blocking(kind: CollectiveKind, bytes: f64) -> Step {
    Step::Comm {
        dim: Dim::Tp,
        kind,
        bytes,
        overlap: Overlap::Blocking,
    }
}

/// Kernel costs of a MoE layer's sparse MLP on one GPU.
#[derive(Clone, Debug, PartialEq)]
pub struct MoeCost {
    gpu: GpuSpec,
    prec: Precision,
    hidden: f64,
    /// FFN width of each expert on this rank: `expert_ffn_hidden_size / expert_tp`.
    expert_ffn: f64,
    /// Expert tensor-parallel degree: the rank runs its experts on the tokens of its
    /// `expert_tp` ETP peers, gathered (`expert_tp` times the counts it received).
    etp: f64,
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
    /// Of `pre_bwd`, the router's weight gradient (time s, FLOPs).
    pub pre_wgrad: (f64, f64),
    /// Of `post_bwd`, the shared experts' weight gradients (time s, FLOPs).
    pub post_wgrad: (f64, f64),
    /// Tokens each expert-parallel rank routes per micro-batch (its sequence shard).
    pub tokens_per_rank: f64,
    /// Experts each expert-parallel rank holds.
    pub experts_per_rank: u32,
    /// Forward of the routed (at the balanced load) and shared experts' activations, s
    /// (what `moe_act` recomputation reruns).
    pub act_fwd_s: f64,
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
    /// Of the backward, the weight gradients' time (W), s.
    pub wgrad_s: f64,
    /// Of the backward FLOPs, the weight gradients'.
    pub wgrad_flops: f64,
}

impl ExpertTimes {
    /// (time s, FLOPs) of the experts' part of a pass: the forward (also when
    /// recomputed), the fused backward, the input gradients only, or the weight gradients.
    pub fn of(&self, part: ExpertPart) -> (f64, f64) {
        match part {
            ExpertPart::Forward => (self.fwd_s, self.fwd_flops),
            ExpertPart::Backward => (self.bwd_s, self.bwd_flops),
            ExpertPart::BackwardInput => (self.bwd_s - self.wgrad_s, self.bwd_flops - self.wgrad_flops),
            ExpertPart::Weight => (self.wgrad_s, self.wgrad_flops),
        }
    }
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
        let shared_wgrad = if fs > 0.0 {
            (
                gemm_time_s(gpu, prec, proj * fs, h, tokens, 1.0) + gemm_time_s(gpu, prec, fs, h, tokens, 1.0),
                2.0 * tokens * proj * fs * h + 2.0 * tokens * fs * h,
            )
        } else {
            (0.0, 0.0)
        };
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
            expert_ffn: moe.expert_ffn_hidden_size as f64 / p.expert_tp.max(1) as f64,
            etp: p.expert_tp.max(1) as f64,
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
            pre_wgrad: (gemm_time_s(gpu, Precision::Bf16, h, e, tokens, 1.0), router_f),
            post_wgrad: shared_wgrad,
            tokens_per_rank: tokens,
            experts_per_rank: moe.num_experts / p.ep.max(1),
            act_fwd_s: memory_bound_time_s(
                gpu,
                if m.ffn_type.is_gated() { 6.0 } else { 4.0 } * tokens * (k * moe.expert_ffn_hidden_size as f64 + fs),
                2,
            ),
        })
    }

    /// Grouped-GEMM times of one rank whose local experts received `tokens` assignments
    /// each: per expert, the up (and gate) projection, the activation and the down
    /// projection at that expert's token count (small counts lose efficiency through the
    /// GEMM ramp), scaled by the GPU's grouped-GEMM efficiency; one launch per grouped kernel.
    /// With expert tensor parallelism each count is the ETP group's (`expert_tp` times the
    /// rank's, gathered) at `1/expert_tp` of the FFN width: the same FLOPs as the rank's
    /// own tokens at the full width, in taller, narrower GEMMs.
    pub fn experts(&self, tokens: &[f64]) -> ExpertTimes {
        let g = &self.gpu;
        let over = crate::units::us_to_s(g.kernel_overhead_us);
        let (h, f, proj) = (self.hidden, self.expert_ffn, self.projections);
        let mut t = ExpertTimes::default();
        let mut act_elems = 0.0;
        let mut last: Option<(f64, f64, f64, f64)> = None;
        let mut wgrad = 0.0;
        for &received in tokens {
            if received <= 0.0 {
                continue;
            }
            let c = received * self.etp;
            let (fw, bw, ww) = match last {
                Some((lc, fw, bw, ww)) if lc == c => (fw, bw, ww),
                _ => {
                    let fw = gemm_time_s(g, self.prec, c, proj * f, h, 1.0) + gemm_time_s(g, self.prec, c, h, f, 1.0)
                        - 2.0 * over;
                    // the backward's two weight-gradient GEMMs are the weight-gradient pass's
                    let (w_up, w_down) = (
                        gemm_time_s(g, self.prec, proj * f, h, c, 1.0),
                        gemm_time_s(g, self.prec, f, h, c, 1.0),
                    );
                    let ww = w_up + w_down - 2.0 * over;
                    let bw = gemm_time_s(g, self.prec, c, h, proj * f, 1.0)
                        + w_up
                        + gemm_time_s(g, self.prec, c, f, h, 1.0)
                        + w_down
                        - 4.0 * over;
                    (fw, bw, ww)
                }
            };
            last = Some((c, fw, bw, ww));
            t.fwd_s += fw;
            t.bwd_s += bw;
            wgrad += ww;
            let flops = 2.0 * c * (proj + 1.0) * f * h;
            t.fwd_flops += flops;
            t.bwd_flops += 2.0 * flops;
            t.wgrad_flops += flops;
            act_elems += c * f;
        }
        let eff = g.grouped_gemm_efficiency.clamp(1e-3, 1.0);
        let act_bytes = if self.gated { 6.0 } else { 4.0 } * act_elems;
        t.fwd_s = t.fwd_s / eff + 2.0 * over + memory_bound_time_s(g, act_bytes, 1);
        t.bwd_s = t.bwd_s / eff + 4.0 * over + memory_bound_time_s(g, 2.0 * act_bytes, 1);
        // two of the four grouped launches are the weight gradients'
        t.wgrad_s = if wgrad > 0.0 { wgrad / eff + 2.0 * over } else { 0.0 };
        t
    }

    /// A lower bound on [`Self::experts`] of any rank whose local experts received
    /// `lane_tokens` assignments in all, however they are split between them (for each
    /// part: the forward, the fused backward, the input gradients, the weight gradients),
    /// from [`grouped_gemm_floor_s`]; less one part in a million for the simulation's
    /// picosecond rounding. Increasing and convex in `lane_tokens`.
    pub fn experts_floor(&self, lane_tokens: f64) -> ExpertTimes {
        if lane_tokens <= 0.0 {
            return ExpertTimes::default();
        }
        // the ETP group's tokens, as [`Self::experts`] runs them
        let lane_tokens = lane_tokens * self.etp;
        let g = &self.gpu;
        let over = crate::units::us_to_s(g.kernel_overhead_us);
        let (h, f, pf) = (self.hidden, self.expert_ffn, self.projections * self.expert_ffn);
        let floor = |dims: (f64, f64)| grouped_gemm_floor_s(g, self.prec, dims, lane_tokens);
        let eff = g.grouped_gemm_efficiency.clamp(1e-3, 1.0);
        let act_bytes = if self.gated { 6.0 } else { 4.0 } * lane_tokens * f;
        let margin = 1.0 - 1e-6;
        let fwd_s = (floor((pf, h)) + floor((h, f))) / eff + 2.0 * over + memory_bound_time_s(g, act_bytes, 1);
        let input_s = (floor((h, pf)) + floor((f, h))) / eff + 2.0 * over + memory_bound_time_s(g, 2.0 * act_bytes, 1);
        let wgrad_s = (floor((pf, h)) + floor((f, h))) / eff + 2.0 * over;
        let flops = 2.0 * lane_tokens * (self.projections + 1.0) * f * h;
        ExpertTimes {
            fwd_s: fwd_s * margin,
            fwd_flops: flops,
            bwd_s: (input_s + wgrad_s) * margin,
            bwd_flops: 2.0 * flops,
            wgrad_s: wgrad_s * margin,
            wgrad_flops: flops,
        }
    }
}

/// Steps of the input embedding (first model chunk) and of the output head and loss
/// (last model chunk).
pub fn embedding_and_head_steps(cx: &LayerContext) -> (LayerSteps, LayerSteps) {
    let (gpu, m, p) = (cx.gpu, cx.m, cx.p);
    let tokens = cx.tokens;
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
    let dgrad = gemm_time_s(gpu, Precision::Bf16, tokens, h, v / t, 1.0);
    let wgrad = gemm_time_s(gpu, Precision::Bf16, h, v / t, tokens, 1.0);
    let bwd_gemm = dgrad + wgrad;
    let logits = tokens * v / t;
    let f = 2.0 * tokens * v / t * h;
    let ce_fwd = memory_bound_time_s(gpu, 10.0 * logits + 4.0 * act_bytes / if sp { t } else { 1.0 }, 3);
    let ce_bwd = memory_bound_time_s(gpu, 8.0 * logits, 2);
    let mut head_f = Vec::new();
    let mut head_b = Vec::new();
    let mut head_bi = Vec::new();
    if sp {
        head_f.push(blocking(CollectiveKind::AllGather, act_bytes));
    }
    head_f.push(compute(fwd_gemm + ce_fwd, f, Phase::Forward, "output head"));
    head_b.push(compute(ce_bwd + bwd_gemm, 2.0 * f, Phase::Backward, "output head"));
    head_bi.push(compute(ce_bwd + dgrad, f, Phase::Backward, "output head"));
    if p.tp > 1 {
        let kind = if sp {
            CollectiveKind::ReduceScatter
        } else {
            CollectiveKind::AllReduce
        };
        head_b.push(blocking(kind, act_bytes));
        head_bi.push(blocking(kind, act_bytes));
    }
    // the embedding's weight gradient (a scatter-add) runs in its backward; the output
    // projection's weight gradient is a W pass of its own when the backward is split
    let emb = LayerSteps {
        forward: emb_f,
        backward_input: emb_b.clone(),
        backward: emb_b,
        weight: Vec::new(),
    };
    let head = LayerSteps {
        forward: head_f,
        backward: head_b,
        backward_input: head_bi,
        weight: vec![compute(wgrad, f, Phase::BackwardWeight, "output head wgrad")],
    };
    (emb, head)
}

/// Steps of an MTP module's input (after the main output head on the last chunk): the
/// shared embedding's lookup of the next tokens, the two norms, and the projection of the
/// concatenated `2h` hidden state to `h` (its transformer layer and the shared output head
/// are emitted as such).
pub fn mtp_input_steps(cx: &LayerContext) -> LayerSteps {
    let h = cx.m.hidden_size as f64;
    let proj = cx.gemm(h, 2.0 * h);
    // embedding read + write, two norms (read 2, write 2 bytes each)
    let ew = memory_bound_time_s(cx.gpu, (4.0 + 8.0) * cx.tokens * h, 3);
    let f = proj.fwd.flops;
    LayerSteps {
        forward: vec![compute(ew + proj.fwd.time_s, f, Phase::Forward, "mtp projection")],
        backward: vec![compute(
            2.0 * ew + proj.dgrad.time_s + proj.wgrad.time_s,
            2.0 * f,
            Phase::Backward,
            "mtp projection",
        )],
        backward_input: vec![compute(
            2.0 * ew + proj.dgrad.time_s,
            f,
            Phase::Backward,
            "mtp projection",
        )],
        weight: vec![compute(
            proj.wgrad.time_s,
            f,
            Phase::BackwardWeight,
            "mtp projection wgrad",
        )],
    }
}

/// Optimizer step time for `params_local` parameters held (sharded) on one GPU: Adam over
/// FP32 master weights reads weight, gradient and both moments and writes them back plus
/// the 16-bit copy (about 30 bytes per parameter).
pub fn optimizer_time_s(gpu: &GpuSpec, params_local: f64) -> f64 {
    memory_bound_time_s(gpu, 30.0 * params_local, 4)
}

#[cfg(test)]
#[path = "costs_tests.rs"]
mod tests;
