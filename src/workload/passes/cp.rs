//! Context parallelism's pass: the sequence of a micro-batch is split over the `cp` ranks
//! (every other module of the layer already works on `tokens / cp`, see
//! [`LayerContext::tokens`]); attention needs every earlier token's keys and values, so
//! this pass replaces the attention core by the variant's exchange and its share of the
//! causal attention ([`crate::parallel::cp`] says which pairs each rank computes).
//!
//! * `p2p` (ring attention, Megatron-Core/Transformer Engine): `cp` blocks of attention,
//!   block `j` against the keys and values of the rank `j` places up the ring. The K/V for
//!   block `j + 1` travels as a send/receive to the ring neighbour beside block `j`, and
//!   block `j + 1` waits for it: a step takes `max(block, transfer)`, so the overlap
//!   condition (block compute >= K/V transfer) is not a formula here but what the events
//!   do. The backward sends K/V and the partial dK/dV (twice the bytes) the same way, and
//!   the last partial dK/dV goes home before the QKV projection's backward.
//! * `all_gather` (Llama 3): all-gather K/V (blocking), local attention of the rank's
//!   queries against the whole sequence; the backward all-gathers K/V again and
//!   reduce-scatters dK/dV.
//! * `a2a` (Ulysses): all-to-all of Q, K, V from sequence to head sharding, causal
//!   attention over the whole sequence for `heads / cp` heads, all-to-all of the output back
//!   (the backward mirrors both).
//! * `a2a+p2p`: the all-to-all over `cp_a2a_size` adjacent ranks ([`Dim::CpA2a`]) around a
//!   ring over the `cp / cp_a2a_size` groups ([`Dim::Cp`]) with `heads / cp_a2a_size` heads.
//!
//! Each block is timed as a flash-attention kernel of its own shape, at the GPU's attention
//! efficiency times [`flash_relative_efficiency`] against the unsplit kernel (a short
//! key/value loop per thread block, fewer thread blocks); ring steps also pay the memory-bound merge of partial outputs (forward) and the
//! accumulation of dQ and dK/dV (backward).
//!
//! Without causal load balancing the ranks' blocks differ: the representative rank is the
//! busiest one (the last), whose blocks pace every ring step of every rank (each step's
//! send/receive couples neighbours, and the layer's collectives the whole group); its steps
//! carry the mean rank's FLOPs, so hardware FLOPs stay those executed.

use super::LayerPass;
use crate::hardware::kernel::{attention_block_time_s, flash_relative_efficiency, memory_bound_time_s, FlashShape};
use crate::model::TransformerSpec;
use crate::network::collective::CollectiveKind::{AllGather, AllToAll, ReduceScatter, SendRecv};
use crate::parallel::cp::{busiest_rank, rank_pairs, ring_step_pairs};
use crate::parallel::{CpCommType, Dim, ParallelPlan};
use crate::workload::costs::LayerContext;
use crate::workload::layer::{CommItem, Cost, Item, Module, ModuleKind, Overlap};

/// The pass.
pub const PASS: LayerPass = LayerPass {
    name: "context parallelism",
    apply,
};

/// Backward attention FLOPs per forward FLOP (flash attention recomputes the scores).
const BWD_FLOPS: f64 = 2.5;

/// One rank's context-parallel attention: shapes, bytes and block costs.
pub(crate) struct CpAttention<'a> {
    cx: &'a LayerContext<'a>,
    /// Query heads on this rank after the all-to-all (if any).
    heads: f64,
    /// Key/value width (K and V together, all local heads) per token after the all-to-all.
    kv_width: f64,
    /// Query width per token on this TP rank (before the all-to-all).
    q_width_tp: f64,
    /// Key/value width per token on this TP rank (before the all-to-all).
    kv_width_tp: f64,
    /// FLOPs per (query, key) pair per head, forward.
    pair_flops: f64,
    /// The unsplit attention kernel of this TP rank (what the efficiency constants describe).
    whole: FlashShape,
    /// All-to-all degree and ring size.
    a2a: u32,
    ring: u32,
}

impl<'a> CpAttention<'a> {
    pub(crate) fn new(cx: &'a LayerContext<'a>) -> Self {
        let m = cx.m;
        let p = cx.p;
        let (dq, dv) = (m.qk_head_dim(), m.v_head_dim());
        let heads_tp = m.num_heads as f64 / cx.tp;
        // key/value heads per TP rank (replicated when fewer than tp)
        let kv_heads = 2.0 * m.kv_dim() / (dq + dv);
        let kv_heads_tp = (kv_heads / cx.tp).max(1.0);
        let a2a = p.cp_a2a();
        let ring = p.degree(Dim::Cp).max(1);
        let a = a2a as f64;
        CpAttention {
            cx,
            heads: heads_tp / a,
            kv_width: kv_heads_tp / a * (dq + dv),
            q_width_tp: heads_tp * dq,
            kv_width_tp: kv_heads_tp * (dq + dv),
            pair_flops: 2.0 * (dq + dv),
            whole: FlashShape {
                q: cx.seq,
                kv_loop: cx.seq / 2.0,
                batch_heads: cx.mbs * heads_tp,
            },
            a2a,
            ring,
        }
    }

    /// An attention-core module computing `pairs` (query, key) pairs per head on this rank
    /// (its time) and `mean_pairs` on the mean rank (its FLOPs), as kernels of `q_rows` query
    /// rows; `merge` adds a ring step's partial-output merge and gradient accumulation.
    fn block(&self, pairs: f64, mean_pairs: f64, q_rows: f64, merge: bool) -> Item {
        let cx = self.cx;
        let g = cx.gpu;
        let bh = cx.mbs * self.heads;
        let per_pair = bh * self.pair_flops;
        let (mut fwd, mut bwd) = (Cost::default(), Cost::default());
        if pairs > 0.0 {
            let shape = FlashShape {
                q: q_rows,
                kv_loop: pairs / q_rows,
                batch_heads: bh,
            };
            let rel = flash_relative_efficiency(g, shape, self.whole);
            let f = per_pair * pairs;
            fwd.time_s = attention_block_time_s(g, f, false, rel);
            bwd.time_s = attention_block_time_s(g, BWD_FLOPS * f, true, rel);
        }
        fwd.flops = per_pair * mean_pairs;
        bwd.flops = BWD_FLOPS * fwd.flops;
        if merge {
            // forward: read the step's output (16-bit) and the running output (fp32), write
            // it back; backward: the same for dQ, and for the dK/dV partial sums
            let rows = cx.mbs * q_rows;
            let dv = self.cx.m.v_head_dim();
            let dq = self.cx.m.qk_head_dim();
            fwd.time_s += memory_bound_time_s(g, 10.0 * rows * self.heads * dv, 1);
            bwd.time_s += memory_bound_time_s(g, 10.0 * rows * (self.heads * dq + self.kv_width), 2);
        }
        Item::Module(Module {
            kind: ModuleKind::CoreAttn,
            fwd,
            bwd_input: bwd,
            bwd_weight: Cost::default(),
        })
    }

    /// Bytes of K and V (16-bit) of `tokens` tokens at width `width`.
    fn kv_bytes(&self, tokens: f64, width: f64) -> f64 {
        2.0 * self.cx.mbs * tokens * width
    }

    /// Ring attention over [`Dim::Cp`] (module docs): `ring` blocks and the exchanges
    /// between them. A ring of one rank is one causal block.
    pub(crate) fn ring_items(&self) -> Vec<Item> {
        let cx = self.cx;
        let n = self.ring;
        let lb = cx.p.cp_load_balance;
        let s = cx.seq;
        let rep = busiest_rank(n, lb);
        let q_rows = s / n as f64;
        let bytes = self.kv_bytes(q_rows, self.kv_width);
        let comm = |fwd, bwd, bytes| {
            Item::Comm(CommItem {
                dim: Dim::Cp,
                bytes,
                fwd,
                bwd,
                bwd_overlaps_weight_grad: false,
            })
        };
        let mut out = Vec::with_capacity(3 * n as usize);
        if n > 1 {
            // the last partial dK/dV returns to its owner before the QKV backward
            out.push(comm(None, Some((SendRecv, Overlap::Blocking)), bytes));
        }
        for j in 0..n {
            let last = j + 1 == n;
            if !last {
                // K/V for the next block, beside this one
                out.push(comm(Some((SendRecv, Overlap::WithNext)), None, bytes));
            }
            if last && n > 1 {
                // the last block waits for the K/V the previous exchange brought
                out.push(Item::Boundary);
            }
            let pairs = ring_step_pairs(s, n, rep, j, lb);
            let mean = (0..n).map(|r| ring_step_pairs(s, n, r, j, lb)).sum::<f64>() / n as f64;
            out.push(self.block(pairs, mean, q_rows, n > 1));
            if !last {
                // backward: K/V and the partial dK/dV, beside the block before this one
                out.push(comm(None, Some((SendRecv, Overlap::WithNext)), 2.0 * bytes));
            }
        }
        out
    }

    /// Llama 3's all-gather attention (module docs).
    pub(crate) fn all_gather_items(&self) -> Vec<Item> {
        let cx = self.cx;
        let cp = cx.p.cp;
        let lb = cx.p.cp_load_balance;
        let s = cx.seq;
        let gathered = self.kv_bytes(s, self.kv_width);
        let comm = |fwd, bwd| {
            Item::Comm(CommItem {
                dim: Dim::Cp,
                bytes: gathered,
                fwd,
                bwd,
                bwd_overlaps_weight_grad: false,
            })
        };
        let pairs = rank_pairs(s, cp, busiest_rank(cp, lb), lb);
        let mean = s * s / 2.0 / cp as f64;
        vec![
            comm(
                Some((AllGather, Overlap::Blocking)),
                Some((ReduceScatter, Overlap::Blocking)),
            ),
            self.block(pairs, mean, s / cp as f64, false),
            comm(None, Some((AllGather, Overlap::Blocking))),
        ]
    }

    /// Ulysses' all-to-alls over [`Dim::CpA2a`] around `inner`.
    pub(crate) fn a2a_items(&self, inner: Vec<Item>) -> Vec<Item> {
        if self.a2a <= 1 {
            return inner;
        }
        let tokens = self.cx.seq / self.cx.p.cp as f64;
        let a2a = |bytes| {
            Item::Comm(CommItem {
                dim: Dim::CpA2a,
                bytes,
                fwd: Some((AllToAll, Overlap::Blocking)),
                bwd: Some((AllToAll, Overlap::Blocking)),
                bwd_overlaps_weight_grad: false,
            })
        };
        let qkv = 2.0 * self.cx.mbs * tokens * (self.q_width_tp + self.kv_width_tp);
        let out_bytes = 2.0 * self.cx.mbs * tokens * self.heads * self.a2a as f64 * self.cx.m.v_head_dim();
        let mut v = vec![a2a(qkv)];
        v.extend(inner);
        v.push(a2a(out_bytes));
        v
    }

    /// The attention core's replacement for the plan's variant.
    pub(crate) fn items(&self) -> Vec<Item> {
        match self.cx.p.cp_comm_type {
            CpCommType::AllGather => self.all_gather_items(),
            CpCommType::P2p | CpCommType::A2a | CpCommType::A2aP2p => self.a2a_items(self.ring_items()),
        }
    }
}

/// Transient bytes one GPU holds for context parallelism's exchange while a layer's
/// attention runs (0 without CP), per micro-batch of `seq` tokens: the ring's K/V blocks in
/// flight (the block being used, the one arriving, and in the backward both again with
/// their dK/dV partial sums: four blocks), the all-gathered K/V and its gradient before the
/// reduce-scatter, or the all-to-all's head-sharded Q/K/V and its receive buffer.
pub fn buffer_bytes(m: &TransformerSpec, p: &ParallelPlan, seq: u32) -> f64 {
    if p.cp <= 1 {
        return 0.0;
    }
    let (dq, dv) = (m.qk_head_dim(), m.v_head_dim());
    let tp = p.tp as f64;
    let kv_heads_tp = (2.0 * m.kv_dim() / (dq + dv) / tp).max(1.0);
    let a2a = p.cp_a2a() as f64;
    let ring = p.degree(Dim::Cp).max(1) as f64;
    let b = p.micro_batch_size as f64;
    let s = seq as f64;
    // 16-bit K and V of `tokens` tokens at `heads` key/value heads
    let kv = |tokens: f64, heads: f64| 2.0 * b * tokens * heads * (dq + dv);
    match p.cp_comm_type {
        CpCommType::AllGather => 2.0 * kv(s, kv_heads_tp),
        _ => {
            let ring_bytes = if ring > 1.0 {
                4.0 * kv(s / ring, kv_heads_tp / a2a)
            } else {
                0.0
            };
            let a2a_bytes = if a2a > 1.0 {
                let q_heads_tp = m.num_heads as f64 / tp;
                2.0 * 2.0 * b * s / p.cp as f64 * (q_heads_tp * dq + kv_heads_tp * (dq + dv))
            } else {
                0.0
            };
            ring_bytes + a2a_bytes
        }
    }
}

fn apply(cx: &LayerContext, items: &mut Vec<Item>) {
    if cx.p.cp <= 1 {
        return;
    }
    let Some(at) = items
        .iter()
        .position(|i| matches!(i, Item::Module(m) if m.kind == ModuleKind::CoreAttn))
    else {
        return;
    };
    let new = CpAttention::new(cx).items();
    items.splice(at..=at, new);
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::hardware::presets::gpu_preset;
    use crate::hardware::Precision;
    use crate::model::presets::model_preset;
    use crate::network::collective::CollectiveKind;
    use crate::parallel::{ParallelPlan, Recompute};
    use crate::training::TrainingSpec;
    use crate::workload::layer::{compute_time_s, LayerSteps, Step};
    use crate::workload::passes::layer_steps;

    const SEQ: u32 = 131072;

    fn plan(tp: u32, cp: u32, kind: CpCommType, lb: bool) -> ParallelPlan {
        let mut p = crate::parallel::tests_support::plan(tp, 1, 1);
        p.cp = cp;
        p.cp_comm_type = kind;
        p.cp_load_balance = lb;
        p.recompute = Recompute::None;
        if kind == CpCommType::A2aP2p {
            p.cp_a2a_size = 2;
        }
        p
    }

    fn steps(p: &ParallelPlan) -> LayerSteps {
        let g = gpu_preset("H100-SXM").unwrap();
        let m = model_preset("llama3-8b").unwrap();
        let t = TrainingSpec {
            global_batch_size: 8,
            seq_length: SEQ,
            precision: Precision::Bf16,
            flash_attention: true,
        };
        layer_steps(&LayerContext::new(&g, &m, p, &t), None)
    }

    /// (dim, kind, bytes, overlap) of every collective of `s`.
    fn comms(s: &[Step]) -> Vec<(Dim, CollectiveKind, f64, Overlap)> {
        s.iter()
            .filter_map(|s| match s {
                Step::Comm {
                    dim,
                    kind,
                    bytes,
                    overlap,
                } => Some((*dim, *kind, *bytes, *overlap)),
                _ => None,
            })
            .collect()
    }

    fn flops(s: &[Step]) -> f64 {
        s.iter()
            .map(|s| match s {
                Step::Compute { flops, .. } => *flops,
                _ => 0.0,
            })
            .sum()
    }

    /// Ring attention sends, per rank, its K/V block `B = 2 bytes x s/cp x kv heads x (dk +
    /// dv)` (llama3-8b: 8 key/value heads of 128, 4 per TP rank at tp = 2) at each of the
    /// `cp - 1` forward steps, beside the next block; `2B` (K/V and dK/dV) at each backward
    /// step and `B` (the last dK/dV, going home, blocking) at the end: `(3cp - 2) B` per layer.
    #[test]
    fn ring_attention_sends_the_closed_form_bytes() {
        for cp in [2u32, 4, 8] {
            let l = steps(&plan(2, cp, CpCommType::P2p, true));
            let b = 2.0 * (SEQ / cp) as f64 * 4.0 * 256.0;
            let ring = |s: &[Step]| -> Vec<(f64, Overlap)> {
                comms(s)
                    .into_iter()
                    .filter(|c| c.1 == CollectiveKind::SendRecv)
                    .map(|c| {
                        assert_eq!(c.0, Dim::Cp);
                        (c.2, c.3)
                    })
                    .collect()
            };
            let f = ring(&l.forward);
            assert_eq!(f, vec![(b, Overlap::WithNext); cp as usize - 1], "cp {cp}");
            let mut want = vec![(2.0 * b, Overlap::WithNext); cp as usize - 1];
            want.push((b, Overlap::Blocking));
            assert_eq!(ring(&l.backward), want, "cp {cp}");
            let total: f64 = ring(&l.forward).iter().chain(&ring(&l.backward)).map(|c| c.0).sum();
            assert_eq!(total, (3 * cp - 2) as f64 * b);
            // cp attention blocks in each direction, separated by the exchanges
            let attn = |s: &[Step]| {
                s.iter()
                    .filter(|s| matches!(s, Step::Compute { name, .. } if name.starts_with("attention")))
                    .count()
            };
            assert!(attn(&l.forward) >= cp as usize, "{:?}", l.forward);
        }
    }

    /// All-gather CP (Llama 3): the whole sequence's K/V gathered, blocking, once forward;
    /// gathered again and the dK/dV reduce-scattered in the backward.
    #[test]
    fn all_gather_moves_the_whole_sequence_kv() {
        let l = steps(&plan(2, 4, CpCommType::AllGather, true));
        let full = 2.0 * SEQ as f64 * 4.0 * 256.0;
        let cp = |s: &[Step]| -> Vec<(CollectiveKind, f64, Overlap)> {
            comms(s)
                .into_iter()
                .filter(|c| c.0 == Dim::Cp)
                .map(|c| (c.1, c.2, c.3))
                .collect()
        };
        assert_eq!(
            cp(&l.forward),
            vec![(CollectiveKind::AllGather, full, Overlap::Blocking)]
        );
        assert_eq!(
            cp(&l.backward),
            vec![
                (CollectiveKind::AllGather, full, Overlap::Blocking),
                (CollectiveKind::ReduceScatter, full, Overlap::Blocking)
            ]
        );
    }

    /// Ulysses: all-to-all of Q, K, V (32 + 2 x 8 heads of 128 over tp = 2) before the
    /// attention and of the output (32 heads) after it, over the all-to-all group.
    #[test]
    fn ulysses_all_to_alls_qkv_and_output() {
        let l = steps(&plan(2, 4, CpCommType::A2a, true));
        let tokens = (SEQ / 4) as f64;
        let got: Vec<(Dim, CollectiveKind, f64)> = comms(&l.forward)
            .into_iter()
            .filter(|c| c.0 != Dim::Tp)
            .map(|c| (c.0, c.1, c.2))
            .collect();
        assert_eq!(
            got,
            vec![
                (
                    Dim::CpA2a,
                    CollectiveKind::AllToAll,
                    2.0 * tokens * (16.0 + 8.0) * 128.0
                ),
                (Dim::CpA2a, CollectiveKind::AllToAll, 2.0 * tokens * 16.0 * 128.0)
            ]
        );
    }

    /// Everything but attention works on `s / cp` tokens: TP collectives carry `1/cp` of
    /// the bytes; a rank's FLOPs are `1/cp` of the unsplit layer's for every variant (the
    /// causal attention shared evenly, or on average without load balancing).
    #[test]
    fn a_rank_does_one_cp_th_of_the_layer() {
        let one = steps(&plan(2, 1, CpCommType::P2p, true));
        let tp_bytes =
            |l: &LayerSteps| -> f64 { comms(&l.forward).iter().filter(|c| c.0 == Dim::Tp).map(|c| c.2).sum() };
        for kind in CpCommType::ALL {
            for lb in [true, false] {
                for cp in [2u32, 4] {
                    let l = steps(&plan(2, cp, kind, lb));
                    let r = tp_bytes(&l) / tp_bytes(&one);
                    assert!((r - 1.0 / cp as f64).abs() < 1e-12, "{kind:?} cp {cp}: {r}");
                    for (a, b) in [(&l.forward, &one.forward), (&l.backward, &one.backward)] {
                        let r = flops(a) / flops(b);
                        assert!((r * cp as f64 - 1.0).abs() < 1e-9, "{kind:?} lb {lb} cp {cp}: {r}");
                    }
                }
            }
        }
    }

    /// Without load balancing the representative is the last rank, whose attention blocks
    /// pace every ring step: `2 - 1/cp` times the balanced rank's attention pairs, so the
    /// forward takes longer by nearly that factor on the attention part.
    #[test]
    fn without_load_balancing_the_last_rank_paces_the_ring() {
        for cp in [2u32, 4, 8] {
            let attn = |lb| {
                let l = steps(&plan(1, cp, CpCommType::P2p, lb));
                compute_time_s(&l.forward)
            };
            let (balanced, unbalanced) = (attn(true), attn(false));
            let ratio = unbalanced / balanced;
            assert!(ratio > 1.3 && ratio < 2.0 - 1.0 / cp as f64, "cp {cp}: {ratio}");
        }
    }

    /// Transient buffers: four ring blocks for p2p, twice the gathered K/V for all-gather.
    #[test]
    fn buffers_follow_the_variant() {
        let m = model_preset("llama3-8b").unwrap();
        let b = 2.0 * (SEQ / 4) as f64 * 4.0 * 256.0;
        assert_eq!(buffer_bytes(&m, &plan(2, 4, CpCommType::P2p, true), SEQ), 4.0 * b);
        assert_eq!(
            buffer_bytes(&m, &plan(2, 4, CpCommType::AllGather, true), SEQ),
            2.0 * 4.0 * b
        );
        assert_eq!(buffer_bytes(&m, &plan(2, 1, CpCommType::P2p, true), SEQ), 0.0);
    }
}
