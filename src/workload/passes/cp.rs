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
